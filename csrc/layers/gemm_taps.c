/* C = init + sum over taps of A_a B_a: the convolutions' forward products, where OpenBLAS's
 * packing does not pay, and (gemm_affine) eval's refined adjacency with its affine epilogue.
 *
 * A 1x1 convolution is one such product (one tap), a (k,1) temporal convolution k of them over
 * time-shifted column windows of the same input. Measured alone on this network's shapes against
 * OpenBLAS 0.3 (one core, Zen 5, OpenBLAS's bias fill included): 1.04-1.36x at K = 64, 1.08-1.16x
 * for five taps of 16 channels, about even at K = 128, 0.82-0.89x at K = 256. Inside the network
 * (other ops between the products, caches shared) the whole NTU forward ran 9-13% faster with the
 * kernel up to K * taps = 256, the same with it everywhere: OpenBLAS keeps the deeper products.
 * The gradient products stay in OpenBLAS too: this kernel on W^T (transposed in place or copied)
 * made a training step 1-3% slower, and a dot-product form of dW ran at 0.5-0.9x OpenBLAS.
 *
 * The kernel packs nothing: B's rows are read in place (contiguous runs of 48 columns), A's values
 * are broadcast straight from the weights, and an 8 x 48 tile of C lives in 24 registers from its
 * initial value (bias, or C itself) to its one store. Remainder columns run under a lane mask,
 * remainder rows as 4-, 2- and 1-row tiles. Only AVX-512 machines take it; elsewhere the same
 * contract is met by a fill and one BLAS call per tap. */
#include <string.h>

#include "layers/layers.h"

#define TAPS_MAX_K 256 /* K * taps at or below which the kernel runs (see above) */
#define TAPS_MAX 16    /* taps the kernel takes: a temporal kernel is at most 15 long */

static void taps_blas(float *C, int ldc, const float *const *A, int lda, const float *const *B, const int *ldb,
                      int taps, int M, int N, int K, const float *bias, int accumulate) {
    float beta = 1.0f;
    if (!accumulate && bias)
        rows_fill(C, ldc, bias, M, N);
    else if (!accumulate)
        beta = 0.0f;
    else if (bias)
        for (int r = 0; r < M; r++)
            for (int j = 0; j < N; j++) C[(size_t)r * ldc + j] += bias[r];
    for (int a = 0; a < taps; a++, beta = 1.0f) gemm(0, 0, M, N, K, A[a], lda, B[a], ldb[a], beta, C, ldc);
}

#if defined(__GNUC__) && defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")
#include <immintrin.h>

#define TAPS_MR 8 /* rows of a full tile */
#define TAPS_NC 3 /* 16-lane vectors of columns of a full tile */

/* Rows [0, MR) x columns [0, 16 * nc) of C (the last vector's lanes under `tail`); A, B already
 * offset to the tile's first row and column. */
static inline __attribute__((always_inline)) void taps_tile(float *C, int ldc, const float *const *A, int lda,
                                                            const float *const *B, const int *ldb, int taps, int K,
                                                            const float *bias, int accumulate, float scale,
                                                            const float *cbase, const int AFF, const int MR,
                                                            const int nc, __mmask16 tail, const float *pf) {
    __m512 acc[TAPS_MR][TAPS_NC];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
        const __m512 b0 = _mm512_set1_ps(bias ? bias[r] : 0.0f);
#pragma GCC unroll 3
        for (int j = 0; j < nc; j++) {
            acc[r][j] = b0;
            if (accumulate) {
                const float *c = C + (size_t)r * ldc + 16 * j;
                acc[r][j] += j < nc - 1 ? _mm512_loadu_ps(c) : _mm512_maskz_loadu_ps(tail, c);
            }
        }
    }
    for (int a = 0; a < taps; a++) {
        const float *Aa = A[a], *Ba = B[a];
        const size_t lb = (size_t)ldb[a];
        for (int k = 0; k < K; k++) {
            __m512 b[TAPS_NC];
            if (pf && a == 0) { /* the next panel's row k: 48 floats, three or four lines */
                const float *q = pf + k * lb;
                __builtin_prefetch(q, 0, 3);
                __builtin_prefetch(q + 16, 0, 3);
                __builtin_prefetch(q + 32, 0, 3);
                __builtin_prefetch(q + 47, 0, 3);
            }
#pragma GCC unroll 3
            for (int j = 0; j < nc; j++)
                b[j] = j < nc - 1 ? _mm512_loadu_ps(Ba + k * lb + 16 * j) : _mm512_maskz_loadu_ps(tail, Ba + k * lb + 16 * j);
#pragma GCC unroll 8
            for (int r = 0; r < MR; r++) {
                const __m512 av = _mm512_set1_ps(Aa[(size_t)r * lda + k]);
#pragma GCC unroll 3
                for (int j = 0; j < nc; j++) acc[r][j] = _mm512_fmadd_ps(av, b[j], acc[r][j]);
            }
        }
    }
    if (AFF) { /* the affine epilogue: scale * (product + bias) + cbase[column] */
        const __m512 sc = _mm512_set1_ps(scale);
#pragma GCC unroll 3
        for (int j = 0; j < nc; j++) {
            const __m512 cb = j < nc - 1 ? _mm512_loadu_ps(cbase + 16 * j) : _mm512_maskz_loadu_ps(tail, cbase + 16 * j);
#pragma GCC unroll 8
            for (int r = 0; r < MR; r++) acc[r][j] = _mm512_fmadd_ps(acc[r][j], sc, cb);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 3
        for (int j = 0; j < nc; j++) {
            float *c = C + (size_t)r * ldc + 16 * j;
            if (j < nc - 1)
                _mm512_storeu_ps(c, acc[r][j]);
            else
                _mm512_mask_storeu_ps(c, tail, acc[r][j]);
        }
}

/* One column panel [n0, n0 + 16 * nc): full tiles of rows, then 4, 2, 1. */
static inline __attribute__((always_inline)) void taps_panel(float *C, int ldc, const float *const *A, int lda,
                                                             const float *const *B, const int *ldb, int taps, int M,
                                                             int K, const float *bias, int accumulate, float scale,
                                                             const float *cbase, const int AFF, const int nc,
                                                             __mmask16 tail, const float *pf) {
    const float *Ai[TAPS_MAX];
    int i = 0;
#define TAPS_ROWS(MR)                                                                                       \
    for (; i + (MR) <= M; i += (MR)) {                                                                      \
        for (int a = 0; a < taps; a++) Ai[a] = A[a] + (size_t)i * lda;                                    \
        taps_tile(C + (size_t)i * ldc, ldc, Ai, lda, B, ldb, taps, K, bias ? bias + i : NULL, accumulate, \
                  scale, cbase, AFF, (MR), nc, tail, i ? NULL : pf);                                      \
    }
    TAPS_ROWS(TAPS_MR)
    TAPS_ROWS(4)
    TAPS_ROWS(2)
    TAPS_ROWS(1)
#undef TAPS_ROWS
}

static inline __attribute__((always_inline)) void taps_all(float *C, int ldc, const float *const *A, int lda,
                                                           const float *const *B, const int *ldb, int taps, int M,
                                                           int N, int K, const float *bias, int accumulate,
                                                           float scale, const float *cbase, const int AFF) {
    const float *Bn[TAPS_MAX];
    for (int n0 = 0; n0 < N; n0 += 16 * TAPS_NC) {
        const int w = N - n0 < 16 * TAPS_NC ? N - n0 : 16 * TAPS_NC, nc = (w + 15) / 16;
        const __mmask16 tail = (__mmask16)((1u << (w - 16 * (nc - 1))) - 1u);
        for (int a = 0; a < taps; a++) Bn[a] = B[a] + n0;
        float *Cn = C + n0;
        const float *cb = cbase ? cbase + n0 : NULL;
        /* B's rows are read in place, K of them ldb apart: too many streams for the hardware
         * prefetcher, so a panel's first row tile (the one that brings its B into cache) fetches
         * the next panel's, one row per step of k */
        const float *pf = n0 + 16 * TAPS_NC < N ? B[0] + n0 + 16 * TAPS_NC : NULL;
        switch (nc) { /* each width its own copy: no run-time branches in the tile */
        case 3: taps_panel(Cn, ldc, A, lda, Bn, ldb, taps, M, K, bias, accumulate, scale, cb, AFF, 3, tail, pf); break;
        case 2: taps_panel(Cn, ldc, A, lda, Bn, ldb, taps, M, K, bias, accumulate, scale, cb, AFF, 2, tail, pf); break;
        default: taps_panel(Cn, ldc, A, lda, Bn, ldb, taps, M, K, bias, accumulate, scale, cb, AFF, 1, tail, pf); break;
        }
    }
}
/* dst[j][i] = src[i][j] for the rows x cols block at src (rows, cols <= 16): sixteen masked
 * loads, the 16 x 16 transpose in registers (unpack, shuffle, two lane permutes), and
 * masked stores. */
static inline void transpose_block16(float *dst, int ldd, const float *src, int lds, int rows, int cols) {
    const __mmask16 mc = (__mmask16)((1u << cols) - 1u), mr = (__mmask16)((1u << rows) - 1u);
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = i < rows ? _mm512_maskz_loadu_ps(mc, src + (size_t)i * lds) : _mm512_setzero_ps();
    for (int i = 0; i < 16; i += 2) { /* pairs of rows interleaved */
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) { /* 4 x 4 blocks within each 128-bit lane */
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    /* r[4q + k] holds, in lane L of its four 128-bit lanes, column 4L + k of rows 4q..4q+3: move the
     * lanes so that output row 4L + k gathers rows 0..15 */
    for (int k = 0; k < 4; k++) {
        const __m512 a = _mm512_shuffle_f32x4(r[k], r[4 + k], _MM_SHUFFLE(2, 0, 2, 0));
        const __m512 b = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], _MM_SHUFFLE(2, 0, 2, 0));
        const __m512 c = _mm512_shuffle_f32x4(r[k], r[4 + k], _MM_SHUFFLE(3, 1, 3, 1));
        const __m512 d = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], _MM_SHUFFLE(3, 1, 3, 1));
        t[k] = _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0));      /* lane 0: column k */
        t[8 + k] = _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1));  /* lane 2: column 8 + k */
        t[4 + k] = _mm512_shuffle_f32x4(c, d, _MM_SHUFFLE(2, 0, 2, 0));  /* lane 1: column 4 + k */
        t[12 + k] = _mm512_shuffle_f32x4(c, d, _MM_SHUFFLE(3, 1, 3, 1)); /* lane 3: column 12 + k */
    }
    for (int j = 0; j < cols; j++) _mm512_mask_storeu_ps(dst + (size_t)j * ldd, mr, t[j]);
}
/* dst [cols][ldd] = src [rows][lds] transposed, by 16 x 16 blocks. */
static void transpose_avx512(float *dst, int ldd, const float *src, int lds, int rows, int cols) {
    for (int i = 0; i < rows; i += 16)
        for (int j = 0; j < cols; j += 16)
            transpose_block16(dst + (size_t)j * ldd + i, ldd, src + (size_t)i * lds + j, lds,
                              rows - i < 16 ? rows - i : 16, cols - j < 16 ? cols - j : 16);
}

/* Two copies: the convolutions' without the affine epilogue, the adjacency's with it. */
static void taps_avx512(float *C, int ldc, const float *const *A, int lda, const float *const *B, const int *ldb,
                        int taps, int M, int N, int K, const float *bias, int accumulate) {
    taps_all(C, ldc, A, lda, B, ldb, taps, M, N, K, bias, accumulate, 1.0f, NULL, 0);
}
static void affine_avx512(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K,
                          const float *bias, float scale, const float *cbase) {
    taps_all(C, ldc, &A, lda, &B, &ldb, 1, M, N, K, bias, 0, scale, cbase, 1);
}
#pragma GCC pop_options
#endif

void gemm_taps(float *C, int ldc, const float *const *A, int lda, const float *const *B, const int *ldb, int taps,
               int M, int N, int K, const float *bias, int accumulate) {
    if (M <= 0 || N <= 0) return;
#if defined(__GNUC__) && defined(__x86_64__)
    if (cpu_has_avx512() && taps <= TAPS_MAX && K > 0 && K * taps <= TAPS_MAX_K) {
        taps_avx512(C, ldc, A, lda, B, ldb, taps, M, N, K, bias, accumulate);
        return;
    }
#endif
    taps_blas(C, ldc, A, lda, B, ldb, taps, M, N, K, bias, accumulate);
}

void gemm_accumulate(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K) {
    if (M <= 0 || N <= 0) return;
#if defined(__GNUC__) && defined(__x86_64__)
    if (cpu_has_avx512() && K > 0) {
        taps_avx512(C, ldc, &A, lda, &B, &ldb, 1, M, N, K, NULL, 1);
        return;
    }
#endif
    gemm(0, 0, M, N, K, A, lda, B, ldb, 1.0f, C, ldc);
}

void transpose_f32(float *dst, int ldd, const float *src, int lds, int rows, int cols) {
#if defined(__GNUC__) && defined(__x86_64__)
    if (cpu_has_avx512()) {
        transpose_avx512(dst, ldd, src, lds, rows, cols);
        return;
    }
#endif
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) dst[(size_t)j * ldd + i] = src[(size_t)i * lds + j];
}

void gemm_affine(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K,
                 const float *bias, float scale, const float *cbase) {
    if (M <= 0 || N <= 0) return;
#if defined(__GNUC__) && defined(__x86_64__)
    if (cpu_has_avx512() && K > 0 && K <= TAPS_MAX_K) {
        affine_avx512(C, ldc, A, lda, B, ldb, M, N, K, bias, scale, cbase);
        return;
    }
#endif
    taps_blas(C, ldc, &A, lda, &B, &ldb, 1, M, N, K, bias, 0);
    for (int r = 0; r < M; r++) scale_add(C + (size_t)r * ldc, C + (size_t)r * ldc, scale, cbase, (size_t)N);
}

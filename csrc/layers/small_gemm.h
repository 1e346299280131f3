/* The register-blocked small-product kernel of the CTR-GC aggregation, as a template: ctrgc.c
 * includes it once per vector width, with
 *     SG_VW      lanes per vector (8: AVX2 / SSE pairs; 16: AVX-512)
 *     SG(x)      the name x with the width's suffix
 *     SG_MR1..4  rows per tile for 1..4 vectors of columns (MR * NC accumulators: enough
 *                independent FMAs to hide their latency, few enough to stay in registers)
 *     SG_MASKED  1: the last vector of a row is loaded and stored under a lane mask (AVX-512),
 *                so B needs no padding and the epilogue runs from the registers; 0: B is
 *                zero-padded to whole vectors and the tile is staged through a buffer
 * C[M][N] = sum over nA operand pairs of A_a B_a, each K deep, then an epilogue (tile_out).
 * A_a is read as A_a[i*lda + k], or A_a[k*lda + i] when trans_a; B_a = Bs[a] is [K][ldb]
 * (ldb >= N when masked, else ldb = SG_VW * NC, zero-padded past N). No include guard:
 * included on purpose twice; the end undefines the parameters, ready for the next width. */

typedef float SG(vec) __attribute__((vector_size(SG_VW * sizeof(float))));

static inline __attribute__((always_inline)) SG(vec) SG(load)(const float *p) {
    SG(vec) r;
    memcpy(&r, p, sizeof r);
    return r;
}

#if SG_MASKED
/* The first `lanes` values at p, zeros after; nothing past them is touched. */
static inline __attribute__((always_inline)) SG(vec) SG(load_part)(const float *p, int lanes) {
    return (SG(vec))_mm512_maskz_loadu_ps((__mmask16)((1u << lanes) - 1u), p);
}
static inline __attribute__((always_inline)) void SG(store_part)(float *p, SG(vec) v, int lanes) {
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << lanes) - 1u), (__m512)v);
}
#endif

/* Rows [i0, i0 + MR) of C. */
static inline __attribute__((always_inline)) void SG(tile)(const tile_out *o, const float *const *As, int nA, int lda,
                                                         int trans_a, const float *const *Bs, int ldb, int i0, int N,
                                                         int K, const int MR, const int NC) {
    SG(vec) acc[12][4];
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NC; j++) acc[r][j] = (SG(vec)){0};
    const int tail = N - SG_VW * (NC - 1); /* lanes of the last vector: 1..SG_VW */
    (void)tail;
    for (int a = 0; a < nA; a++) {
        const float *A = As[a], *B = Bs[a];
        for (int k = 0; k < K; k++) {
            SG(vec) b[4];
            for (int j = 0; j < NC; j++) {
#if SG_MASKED
                b[j] = j < NC - 1 ? SG(load)(B + (size_t)k * ldb + SG_VW * j)
                                  : SG(load_part)(B + (size_t)k * ldb + SG_VW * j, tail);
#else
                b[j] = SG(load)(B + (size_t)k * ldb + SG_VW * j);
#endif
            }
            for (int r = 0; r < MR; r++) {
                const float ar = trans_a ? A[(size_t)k * lda + i0 + r] : A[(size_t)(i0 + r) * lda + k];
                for (int j = 0; j < NC; j++) acc[r][j] += ar * b[j];
            }
        }
    }
    float *c = o->C + (size_t)i0 * N;
    const float sh = o->shift;
#if SG_MASKED
    /* straight from the registers: whole vectors, then the row's last one under its mask */
    const float *bs = o->base ? o->base + (size_t)i0 * N : NULL;
    /* unrolled, so the accumulators stay registers (an indexed acc would live in memory) */
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int j = 0; j < NC; j++) {
            const size_t at = (size_t)r * N + SG_VW * j;
            const int lanes = j < NC - 1 ? SG_VW : tail;
            SG(vec) v = acc[r][j] + sh;
            if (bs) v += lanes == SG_VW ? SG(load)(bs + at) : SG(load_part)(bs + at, lanes);
            if (o->relu) v = (SG(vec))_mm512_max_ps((__m512)v, _mm512_setzero_ps()); /* NaN -> 0, as v > 0 ? v : 0 */
            if (lanes == SG_VW)
                memcpy(c + at, &v, sizeof v);
            else
                SG(store_part)(c + at, v, lanes);
        }
#else
    /* The tile's rows are contiguous in C (ldc = N): stage them compactly, in order, each vector
     * store overwriting the padding lanes of the one before, then run the epilogue over MR*N
     * contiguous values as whole vectors. */
    float buf[12 * 64 + 64];
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NC; j++) memcpy(buf + r * N + SG_VW * j, &acc[r][j], sizeof(SG(vec)));
    const int count = MR * N;
    if (o->base) {
        const float *bs = o->base + (size_t)i0 * N;
        if (o->relu) {
            for (int e = 0; e < count; e++) {
                const float v = buf[e] + sh + bs[e];
                c[e] = v > 0.0f ? v : 0.0f;
            }
        } else {
            for (int e = 0; e < count; e++) c[e] = buf[e] + sh + bs[e];
        }
    } else if (o->relu) {
        for (int e = 0; e < count; e++) {
            const float v = buf[e] + sh;
            c[e] = v > 0.0f ? v : 0.0f;
        }
    } else {
        for (int e = 0; e < count; e++) c[e] = buf[e] + sh;
    }
#endif
}

/* All M rows: blocks of MR, then of 4 and 2 (short T at the deep blocks leaves long tails), then one. */
static inline __attribute__((always_inline)) void SG(rows)(const tile_out *o, const float *const *As, int nA, int lda,
                                                         int trans_a, const float *const *Bs, int ldb, int M, int N,
                                                         int K, const int MR, const int NC) {
    int i = 0;
    for (; i + MR <= M; i += MR) SG(tile)(o, As, nA, lda, trans_a, Bs, ldb, i, N, K, MR, NC);
    if (MR > 4)
        for (; i + 4 <= M; i += 4) SG(tile)(o, As, nA, lda, trans_a, Bs, ldb, i, N, K, 4, NC);
    if (MR > 2)
        for (; i + 2 <= M; i += 2) SG(tile)(o, As, nA, lda, trans_a, Bs, ldb, i, N, K, 2, NC);
    for (; i < M; i++) SG(tile)(o, As, nA, lda, trans_a, Bs, ldb, i, N, K, 1, NC);
}

/* Every (layout, width) pair its own copy: the loops then carry no run-time branches. */
static inline __attribute__((always_inline)) void SG(gemm)(const tile_out *o, const float *const *As, int nA, int lda,
                                                         int trans_a, const float *const *Bs, int ldb, int M, int N,
                                                         int K) {
#define SG_CASES(TA)                                                            \
    switch ((N + SG_VW - 1) / SG_VW) {                                          \
    case 1: SG(rows)(o, As, nA, lda, TA, Bs, ldb, M, N, K, SG_MR1, 1); break;   \
    case 2: SG(rows)(o, As, nA, lda, TA, Bs, ldb, M, N, K, SG_MR2, 2); break;   \
    case 3: SG(rows)(o, As, nA, lda, TA, Bs, ldb, M, N, K, SG_MR3, 3); break;   \
    default: SG(rows)(o, As, nA, lda, TA, Bs, ldb, M, N, K, SG_MR4, 4); break;  \
    }
    if (trans_a) {
        SG_CASES(1)
    } else {
        SG_CASES(0)
    }
#undef SG_CASES
}

#undef SG_VW
#undef SG
#undef SG_MASKED
#undef SG_MR1
#undef SG_MR2
#undef SG_MR3
#undef SG_MR4

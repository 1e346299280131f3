/* Channel-wise topology refinement: the relation and the per-channel graph aggregation. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"

/* tanh that vectorises (libm's tanhf is a call per value, a fifth of the relation's time):
 * |x| < 0.625 by an odd polynomial, else 1 - 2 / (exp(2|x|) + 1) with exp from a degree-6
 * polynomial on [-ln2/2, ln2/2] scaled by 2^n; both branches are computed and one selected, so
 * the loop has no branches. Within 2-3 ulp of tanhf over the floats. */
static inline __attribute__((always_inline)) float tanh_branchless(float x) {
    const float a0 = fabsf(x), ax = a0 < 9.0f ? a0 : 9.0f; /* tanh(9) rounds to 1 in float */
    const float z = ax * ax;
    const float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                          1.33314422036e-1f) * z - 3.33332819422e-1f) * z * ax + ax;
    /* exp(2 ax) = 2^n exp(r), r = 2 ax - n ln2 */
    const float y = 2.0f * ax, n = (float)(int32_t)(y * 1.44269504089f + 0.5f); /* y >= 0: truncation rounds */
    const float r = (y - n * 0.693359375f) + n * 2.12194440e-4f;
    const float p = ((((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r +
                       1.6666665459e-1f) * r + 5.0000001201e-1f) * r * r) + r + 1.0f;
    union { float f; int32_t i; } scale = {.i = ((int32_t)n + 127) << 23};
    const float large = 1.0f - 2.0f / (p * scale.f + 1.0f);
    const float t = ax < 0.625f ? small : large;
    return x < 0.0f ? -t : t;
}

CTRGCN_HOT_BODY(ctrgc_relation, (float *relT, const float *q, const float *k, int R, int V)) {
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) {
            const float kv = k[(size_t)r * V + v];
            const float *qr = q + (size_t)r * V;
            float *dst = relT + ((size_t)r * V + v) * V;
#pragma omp simd
            for (int u = 0; u < V; u++) dst[u] = tanh_branchless(qr[u] - kv);
        }
}
CTRGCN_HOT_ENTRY(ctrgc_relation, (float *relT, const float *q, const float *k, int R, int V), (relT, q, k, R, V))

/* The aggregation is, per channel, a few small matrix products (T x V by V x V). They are too
 * small for BLAS calls to pay, so a register-blocked kernel does them: MR output rows at a time,
 * the V columns as NC 8-wide vectors held in registers (MR * NC = 8 to 12 accumulators, enough
 * independent FMAs to hide their latency), B zero-padded to whole vectors. The forward runs the
 * three subsets as one product (K = 3V), so each output row is stored once, with its epilogue.
 * Joints beyond 32 take a plain loop. */
/* 8-wide vectors as GCC vector types: AVX registers in the AVX2 copy, SSE pairs in the plain one
 * (whose ABI note about passing such vectors does not concern these inlined helpers). */
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float v8 __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

static inline __attribute__((always_inline)) v8 load8(const float *p) {
    v8 r;
    memcpy(&r, p, sizeof r);
    return r;
}

/* The epilogue of an output tile: C[r][j] = act(shift + base[r][j] + tile[r][j]) for j < N. */
typedef struct {
    float *C;
    int ldc;
    const float *base; /* NULL: none; same leading dimension as C */
    float shift;
    int relu;
} tile_out;

/* Rows [i0, i0+MR) of sum_a A_a B_a over nA operand pairs, each K deep: A_a read as
 * A_a[i*lda + k], or A_a[k*lda + i] when trans_a; B_a = Bp + a*K*8*NC, [K][8*NC] zero-padded. */
static inline __attribute__((always_inline)) void tile_mr_nc(const tile_out *o, const float *const *As, int nA, int lda,
                                                             int trans_a, const float *Bp, int i0, int N, int K,
                                                             const int MR, const int NC) {
    const int ldb = 8 * NC;
    v8 acc[8][4];
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NC; j++) acc[r][j] = (v8){0};
    for (int a = 0; a < nA; a++) {
        const float *A = As[a], *B = Bp + (size_t)a * K * ldb;
        for (int k = 0; k < K; k++) {
            v8 b[4];
            for (int j = 0; j < NC; j++) b[j] = load8(B + (size_t)k * ldb + 8 * j);
            for (int r = 0; r < MR; r++) {
                const float ar = trans_a ? A[(size_t)k * lda + i0 + r] : A[(size_t)(i0 + r) * lda + k];
                for (int j = 0; j < NC; j++) acc[r][j] += ar * b[j];
            }
        }
    }
    for (int r = 0; r < MR; r++) {
        float *c = o->C + (size_t)(i0 + r) * o->ldc;
        const float *bs = o->base ? o->base + (size_t)(i0 + r) * o->ldc : NULL;
        for (int j = 0; j < NC; j++) {
            v8 v = acc[r][j] + o->shift;
            if (8 * j + 8 <= N) { /* a whole vector of output columns */
                if (bs) v += load8(bs + 8 * j);
                if (o->relu) v = (v8)((v8i)v & (v8i)(v > (v8){0}));
                memcpy(c + 8 * j, &v, sizeof v);
            } else {
                for (int q = 0; q < N - 8 * j; q++) {
                    const float e = v[q] + (bs ? bs[8 * j + q] : 0.0f);
                    c[8 * j + q] = o->relu && !(e > 0.0f) ? 0.0f : e;
                }
            }
        }
    }
}

/* All M rows: blocks of MR, then single rows. */
static inline __attribute__((always_inline)) void gemm_nc(const tile_out *o, const float *const *As, int nA, int lda,
                                                          int trans_a, const float *Bp, int M, int N, int K, const int MR,
                                                          const int NC) {
    int i = 0;
    for (; i + MR <= M; i += MR) tile_mr_nc(o, As, nA, lda, trans_a, Bp, i, N, K, MR, NC);
    for (; i < M; i++) tile_mr_nc(o, As, nA, lda, trans_a, Bp, i, N, K, 1, NC);
}

CTRGCN_HOT_BODY(small_gemm, (const tile_out *o, const float *const *As, int nA, int lda, int trans_a, const float *Bp,
                             int M, int N, int K)) {
    /* every (layout, width) pair its own copy: the loops then carry no run-time branches */
#define SMALL_GEMM_CASES(TA)                                                  \
    switch ((N + 7) / 8) {                                                    \
    case 1: gemm_nc(o, As, nA, lda, TA, Bp, M, N, K, 8, 1); break;            \
    case 2: gemm_nc(o, As, nA, lda, TA, Bp, M, N, K, 6, 2); break;            \
    case 3: gemm_nc(o, As, nA, lda, TA, Bp, M, N, K, 4, 3); break;            \
    default: gemm_nc(o, As, nA, lda, TA, Bp, M, N, K, 3, 4); break;           \
    }
    if (trans_a) {
        SMALL_GEMM_CASES(1)
    } else {
        SMALL_GEMM_CASES(0)
    }
#undef SMALL_GEMM_CASES
}
CTRGCN_HOT_ENTRY(small_gemm, (const tile_out *o, const float *const *As, int nA, int lda, int trans_a, const float *Bp,
                              int M, int N, int K), (o, As, nA, lda, trans_a, Bp, M, N, K))

/* dst[r][0..8*nc) = src[r*lds + c] (c < cols) then zeros; transposed: src[c*lds + r]. */
static void pad_rows(float *dst, const float *src, int rows, int cols, int lds, int transposed) {
    const int ld = ((cols + 7) / 8) * 8;
    for (int r = 0; r < rows; r++) {
        float *d = dst + (size_t)r * ld;
        for (int c = 0; c < cols; c++) d[c] = transposed ? src[(size_t)c * lds + r] : src[(size_t)r * lds + c];
        for (int c = cols; c < ld; c++) d[c] = 0.0f;
    }
}

#define SMALL_V 32
#define MAX_SUB 3

void ctrgc_aggregate_rows(float *y, const float *val, const float *AT, const float *base, const float *shift, int C,
                          int c0, int c1, int T, int V, int nsub, int relu) {
    float Bp[MAX_SUB * SMALL_V * SMALL_V];
    const int ldp = ((V + 7) / 8) * 8;
    for (int c = c0; c < c1; c++) {
        float *yc = y + (size_t)c * T * V;
        const float *bc = base ? base + (size_t)c * T * V : NULL;
        const float sh = shift ? shift[c] : 0.0f;
        if (V <= SMALL_V && nsub <= MAX_SUB) {
            const float *As[MAX_SUB];
            for (int i = 0; i < nsub; i++) {
                As[i] = val + ((size_t)i * C + c) * T * V;
                pad_rows(Bp + (size_t)i * V * ldp, AT + ((size_t)i * C + c) * V * V, V, V, V, 0);
            }
            const tile_out o = {yc, V, bc, sh, relu};
            small_gemm(&o, As, nsub, V, 0, Bp, T, V, V);
            continue;
        }
        for (size_t e = 0; e < (size_t)T * V; e++) yc[e] = sh + (bc ? bc[e] : 0.0f);
        for (int i = 0; i < nsub; i++) {
            const float *A = AT + ((size_t)i * C + c) * V * V;
            const float *vr = val + ((size_t)i * C + c) * T * V;
            for (int t = 0; t < T; t++)
                for (int v = 0; v < V; v++) {
                    const float a = vr[(size_t)t * V + v];
                    for (int u = 0; u < V; u++) yc[(size_t)t * V + u] += a * A[(size_t)v * V + u];
                }
        }
        if (relu) relu_inplace(yc, (size_t)T * V);
    }
}

void ctrgc_aggregate(float *y, const float *val, const float *AT, const float *base, const float *shift, int C, int T,
                     int V, int nsub, int relu) {
    ctrgc_aggregate_rows(y, val, AT, base, shift, C, 0, C, T, V, nsub, relu);
}

void ctrgc_aggregate_backward_rows(float *dval, float *dAT, const float *dy, const float *val, const float *AT, int C,
                                   int c0, int c1, int T, int V, int nsub, float *dyp) {
    float Bp[SMALL_V * SMALL_V];
    if (V > SMALL_V) dyp = NULL; /* the plain loop needs no padded copy */
    for (int c = c0; c < c1; c++) {
        const float *g = dy + (size_t)c * T * V;
        if (dyp) pad_rows(dyp, g, T, V, V, 0);
        for (int i = 0; i < nsub; i++) {
            const float *A = AT + ((size_t)i * C + c) * V * V;
            const float *vr = val + ((size_t)i * C + c) * T * V;
            float *dv = dval + ((size_t)i * C + c) * T * V, *dA = dAT + ((size_t)i * C + c) * V * V;
            if (dyp) {
                pad_rows(Bp, A, V, V, V, 1); /* AT transposed: [u][v] */
                const tile_out ov = {dv, V, NULL, 0.0f, 0}, oa = {dA, V, NULL, 0.0f, 0};
                small_gemm(&ov, &g, 1, V, 0, Bp, T, V, V);   /* dval = dy AT^T */
                small_gemm(&oa, &vr, 1, V, 1, dyp, V, V, T); /* dAT = val^T dy */
            } else {
                memset(dA, 0, sizeof(float) * (size_t)V * V);
                for (int t = 0; t < T; t++)
                    for (int v = 0; v < V; v++) {
                        float acc = 0.0f;
                        const float a = vr[(size_t)t * V + v];
                        for (int u = 0; u < V; u++) {
                            acc += g[(size_t)t * V + u] * A[(size_t)v * V + u];
                            dA[(size_t)v * V + u] += a * g[(size_t)t * V + u];
                        }
                        dv[(size_t)t * V + v] = acc;
                    }
            }
        }
    }
}

void ctrgc_aggregate_backward(float *dval, float *dAT, const float *dy, const float *val, const float *AT, int C, int T,
                              int V, int nsub) {
    float *dyp = V <= SMALL_V ? malloc(sizeof(float) * (size_t)T * 32) : NULL;
    ctrgc_aggregate_backward_rows(dval, dAT, dy, val, AT, C, 0, C, T, V, nsub, dyp);
    free(dyp);
}

void ctrgc_relation_backward(float *dq, float *dk, const float *drelT, const float *relT, int R, int V) {
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) {
            const float *g = drelT + ((size_t)r * V + v) * V, *rl = relT + ((size_t)r * V + v) * V;
            float sum = 0.0f;
            for (int u = 0; u < V; u++) {
                const float d = g[u] * (1.0f - rl[u] * rl[u]);
                dq[(size_t)r * V + u] += d;
                sum += d;
            }
            dk[(size_t)r * V + v] -= sum;
        }
}

/* Channel-wise topology refinement: the relation and the per-channel graph aggregation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"

void ctrgc_relation(float *relT, const float *q, const float *k, int R, int V) {
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) {
            const float kv = k[(size_t)r * V + v];
            float *dst = relT + ((size_t)r * V + v) * V;
            for (int u = 0; u < V; u++) dst[u] = tanhf(q[(size_t)r * V + u] - kv);
        }
}

/* The aggregation is, per channel, a few small matrix products (T x V by V x V). They are too
 * small for BLAS calls to pay, so a register-blocked kernel does them: two output rows at a time,
 * the V columns as up to four 8-wide vectors held in registers, B zero-padded to whole vectors.
 * Joints beyond 32 take a plain loop. */
/* 8-wide vectors as GCC vector types: AVX registers in the AVX2 copy, SSE pairs in the plain one
 * (whose ABI note about passing such vectors does not concern these inlined helpers). */
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float v8 __attribute__((vector_size(32)));

static inline __attribute__((always_inline)) v8 load8(const float *p) {
    v8 r;
    memcpy(&r, p, sizeof r);
    return r;
}

/* C[M][N] (ldc) += A[M][K] B[K][N]; A read as A[i*lda + k], or A[k*lda + i] when trans_a; Bp is
 * [K][8*NC] zero-padded. */
static inline __attribute__((always_inline)) void small_gemm_nc(float *C, int ldc, const float *A, int lda, int trans_a,
                                                                const float *Bp, int M, int N, int K, const int NC) {
    const int ldb = 8 * NC;
    for (int i = 0; i < M; i += 2) {
        const int two = i + 1 < M;
        v8 acc0[4] = {0}, acc1[4] = {0};
        for (int k = 0; k < K; k++) {
            const float a0 = trans_a ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
            const float a1 = two ? (trans_a ? A[(size_t)k * lda + i + 1] : A[(size_t)(i + 1) * lda + k]) : 0.0f;
            const float *b = Bp + (size_t)k * ldb;
            for (int j = 0; j < NC; j++) {
                const v8 bj = load8(b + 8 * j);
                acc0[j] += a0 * bj;
                acc1[j] += a1 * bj;
            }
        }
        float row[2][32] = {{0}};
        memcpy(row[0], acc0, sizeof(float) * 8 * NC);
        memcpy(row[1], acc1, sizeof(float) * 8 * NC);
        for (int r = 0; r < 1 + two; r++)
            for (int j = 0; j < N; j++) C[(size_t)(i + r) * ldc + j] += row[r][j];
    }
}

CTRGCN_HOT_BODY(small_gemm_acc, (float *C, int ldc, const float *A, int lda, int trans_a, const float *Bp, int M, int N,
                                 int K)) {
    switch ((N + 7) / 8) {
    case 1: small_gemm_nc(C, ldc, A, lda, trans_a, Bp, M, N, K, 1); break;
    case 2: small_gemm_nc(C, ldc, A, lda, trans_a, Bp, M, N, K, 2); break;
    case 3: small_gemm_nc(C, ldc, A, lda, trans_a, Bp, M, N, K, 3); break;
    default: small_gemm_nc(C, ldc, A, lda, trans_a, Bp, M, N, K, 4); break;
    }
}
CTRGCN_HOT_ENTRY(small_gemm_acc, (float *C, int ldc, const float *A, int lda, int trans_a, const float *Bp, int M,
                                  int N, int K), (C, ldc, A, lda, trans_a, Bp, M, N, K))

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

void ctrgc_aggregate_rows(float *y, const float *val, const float *AT, const float *base, const float *shift, int C,
                          int c0, int c1, int T, int V, int nsub, int relu) {
    float Bp[SMALL_V * SMALL_V];
    for (int c = c0; c < c1; c++) {
        float *yc = y + (size_t)c * T * V;
        const float sh = shift ? shift[c] : 0.0f;
        for (size_t e = 0; e < (size_t)T * V; e++) yc[e] = sh + (base ? base[(size_t)c * T * V + e] : 0.0f);
        for (int i = 0; i < nsub; i++) {
            const float *A = AT + ((size_t)i * C + c) * V * V;
            const float *vr = val + ((size_t)i * C + c) * T * V;
            if (V <= SMALL_V) {
                pad_rows(Bp, A, V, V, V, 0);
                small_gemm_acc(yc, V, vr, V, 0, Bp, T, V, V);
            } else {
                for (int t = 0; t < T; t++)
                    for (int v = 0; v < V; v++) {
                        const float a = vr[(size_t)t * V + v];
                        for (int u = 0; u < V; u++) yc[(size_t)t * V + u] += a * A[(size_t)v * V + u];
                    }
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
            memset(dv, 0, sizeof(float) * (size_t)T * V);
            memset(dA, 0, sizeof(float) * (size_t)V * V);
            if (dyp) {
                pad_rows(Bp, A, V, V, V, 1);                   /* AT transposed: [u][v] */
                small_gemm_acc(dv, V, g, V, 0, Bp, T, V, V);   /* dval = dy AT^T */
                small_gemm_acc(dA, V, vr, V, 1, dyp, V, V, T); /* dAT = val^T dy */
            } else {
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

/* Layer kernels: raw pointers and sizes, no allocation, no knowledge of the model.
 * Activations of one person are channel-major [C][T][V]; a "row" is one channel's T*V values.
 * Forward kernels that say "accumulates" add into their output (callers prefill biases). */
#ifndef CTRGCN_LAYERS_H
#define CTRGCN_LAYERS_H
#include <stddef.h>

#define CTRGCN_AGG_MAXV 128 /* = CTRGCN_MAX_JOINTS */

/* Hot loops are compiled twice and picked at load time: plain x86-64 and AVX2+FMA. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define CTRGCN_HOT __attribute__((target_clones("default", "arch=haswell")))
#else
#define CTRGCN_HOT
#endif

/* C[M,N] = A[M,K] (opA) @ B[K,N] (opB) + beta*C, row-major with leading dimensions.
 * trans_a / trans_b: 0 = as stored, 1 = transposed. The only BLAS call of the project. */
void gemm(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda,
          const float *B, int ldb, float beta, float *C, int ldc);
void blas_set_threads(int threads);

/* y[rows][cols] (ldy) = b[row] (or 0 when b is NULL). */
void rows_fill(float *y, int ldy, const float *b, int rows, int cols);
/* y = max(y, 0) over n values. */
void relu_inplace(float *y, size_t n);
/* y[c][t][v] = x[c][s*t][v], t < To: the time subsampling of a stride-s 1x1 convolution. */
void time_subsample(float *y, const float *x, int C, int T, int V, int stride);

/* Temporal convolution, kernel (k,1), dilation d, stride s, zero padding (k-1)*d/2; accumulates.
 * x [cin][T][V] (row stride ldx), w [k][cout][cin] (taps outermost), y [cout][To][V] (row stride
 * ldy), To = (T + 2*pad - d*(k-1) - 1)/s + 1. Done as k GEMMs over time-shifted column windows;
 * for s > 1 the input is first split into s phases (phase_buf: cin*T*V floats). */
void tconv_forward(float *y, int ldy, const float *x, int ldx, const float *w, int cin, int cout,
                   int T, int V, int k, int dil, int stride, float *phase_buf);
int tconv_out_frames(int T, int k, int dil, int stride);

/* Max-pool over time (kernel 3, stride s, padding 1 that never wins), then scale[c]*m, accumulated
 * into y [C][To][V] (row stride ldy). x [C][T][V] (row stride ldx). */
void maxpool_t_forward(float *y, int ldy, const float *x, int ldx, const float *scale, int C, int T,
                       int V, int stride);

/* xm[c][v] = mean over t of x[c][t][v]. */
void mean_time(float *xm, const float *x, int C, int T, int V);

/* CTR-GC relation, transposed: relT[r][v][u] = tanh(q[r][u] - k[r][v]). q, k: [R][V]. */
void ctrgc_relation(float *relT, const float *q, const float *k, int R, int V);

/* CTR-GC aggregation over nsub subsets, fused with the unit's epilogue:
 * y[c][t][u] = relu?( shift[c] + base[c][t][u] + sum_i sum_v val[i*C + c][t][v] * AT[i][c][v][u] )
 * val: [nsub*C][T][V]; AT: [nsub][C][V][V] (the refined adjacency, transposed); base may be NULL;
 * shift may be NULL. */
void ctrgc_aggregate(float *y, const float *val, const float *AT, const float *base,
                     const float *shift, int C, int T, int V, int nsub, int relu);

#endif

/* Layer kernels: raw pointers and sizes, no allocation, no knowledge of the model.
 * Activations of one person are channel-major [C][T][V]; a "row" is one channel's T*V values.
 * Forward kernels that say "accumulates" add into their output (callers prefill biases). */
#ifndef CTRGCN_LAYERS_H
#define CTRGCN_LAYERS_H
#include <stddef.h>

#define CTRGCN_AGG_MAXV 128 /* = CTRGCN_MAX_JOINTS */

/* Hot loops are compiled three times, for plain x86-64, AVX2+FMA and AVX-512, and the CPU's
 * features pick one at run time (GCC's target_clones dispatches "arch=" clones on the CPU model, not
 * on its features, so AMD parts would never get the fast copies). Cores with full-width 512-bit
 * units (AMD Zen 5, Intel server parts) run the AVX-512 copy at twice the AVX2 rate. A hot function
 * is written as
 *     CTRGCN_HOT_BODY(name, (params)) { ... }
 *     CTRGCN_HOT_ENTRY(name, (params), (args))                                                  */
#if defined(__GNUC__) && defined(__x86_64__)
int cpu_has_avx2_fma(void);
int cpu_has_avx512(void);
#define CTRGCN_AVX512 "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"
#define CTRGCN_HOT_BODY(name, params) static inline __attribute__((always_inline)) void name##_body params
#define CTRGCN_HOT_ENTRY(name, params, args)                                                      \
    __attribute__((target("avx2,fma"))) static void name##_avx2 params { name##_body args; }      \
    __attribute__((target(CTRGCN_AVX512))) static void name##_avx512 params { name##_body args; } \
    void name params {                                                                            \
        if (cpu_has_avx512())                                                                     \
            name##_avx512 args;                                                                   \
        else if (cpu_has_avx2_fma())                                                              \
            name##_avx2 args;                                                                     \
        else                                                                                      \
            name##_body args;                                                                     \
    }
#else
#define CTRGCN_HOT_BODY(name, params) static inline void name##_body params
#define CTRGCN_HOT_ENTRY(name, params, args) \
    void name params { name##_body args; }
#endif

/* C[M,N] = A[M,K] (opA) @ B[K,N] (opB) + beta*C, row-major with leading dimensions.
 * trans_a / trans_b: 0 = as stored, 1 = transposed. The only BLAS call of the project. */
void gemm(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda,
          const float *B, int ldb, float beta, float *C, int ldc);
void blas_set_threads(int threads);
/* C[M][N] (ldc) = scale * (A[M][K] B[K][N] + bias[row]) + cbase[column]: a product with an affine
 * epilogue (the refined adjacency's alpha and shared graph), same kernel as gemm_taps. */
void gemm_affine(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K,
                 const float *bias, float scale, const float *cbase);
/* C[M][N] (ldc) = init + sum over `taps` of A_a[M][K] (lda) B_a[K][N] (ldb[a]), with
 * init = (accumulate ? C : 0) + (bias ? bias[row] : 0). The convolutions' forward: one tap for a
 * 1x1 convolution, k time-shifted windows for a temporal one (layers/gemm_taps.c). */
void gemm_taps(float *C, int ldc, const float *const *A, int lda, const float *const *B, const int *ldb, int taps,
               int M, int N, int K, const float *bias, int accumulate);
/* C += A B with the same kernel at any depth K (the weight gradients, on a transposed input;
 * OpenBLAS where the CPU has no AVX-512). */
void gemm_accumulate(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K);
/* dst [cols][ldd] = src [rows][lds] transposed (16 x 16 blocks in registers where there is AVX-512). */
void transpose_f32(float *dst, int ldd, const float *src, int lds, int rows, int cols);

/* Asks for the cache lines of p[0..bytes) ahead of their use, where a loop jumps between short
 * blocks faster than the hardware prefetcher locks on: the aggregation's per-channel operands (1-4
 * KB each, six to eight streams; with the batch out of cache a product waited on memory, at a
 * quarter of its in-cache speed at the deep blocks, and fetching the next channel doubled that)
 * and BatchNorm's per-person rows of a channel. */
static inline void prefetch_span(const void *p, size_t bytes) {
    for (size_t b = 0; b < bytes; b += 64) __builtin_prefetch((const char *)p + b, 0, 3);
}

/* y[rows][cols] (ldy) = b[row] (or 0 when b is NULL). */
void rows_fill(float *y, int ldy, const float *b, int rows, int cols);
/* *s += sum a[0..n), accumulated in double. */
void sum_f64(const float *a, size_t n, double *s);
/* The double sums over float rows (this one, BatchNorm's moments) keep F64_LANES independent
 * partial sums: with fewer, the adds' latency, not the memory, sets the pace (one chain of four
 * lanes ran at about one value a cycle). f64_total folds the lanes pairwise. */
#define F64_LANES 16
static inline double f64_total(double *a) {
    for (int w = F64_LANES / 2; w > 0; w /= 2)
        for (int k = 0; k < w; k++) a[k] += a[k + w];
    return a[0];
}
/* Streaming passes over n values: y = max(a + b, 0) (b may be NULL; y may be a, in place); dx = y > 0 ? dy : 0;
 * dst += src; y = a * x + b. */
void add_relu(float *y, const float *a, const float *b, size_t n);
void relu_grad(float *dx, const float *dy, const float *y, size_t n);
void add_into(float *dst, const float *src, size_t n);
void scale_add(float *y, const float *x, float a, const float *b, size_t n);
/* Output frames of a (k,1) convolution with dilation d, stride s, zero padding (k-1)*d/2. */
int tconv_out_frames(int T, int k, int dil, int stride);

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
/* The same for channels [c0, c1) of C only (y, base: the whole person's rows). */
void ctrgc_aggregate_rows(float *y, const float *val, const float *AT, const float *base, const float *shift, int C,
                          int c0, int c1, int T, int V, int nsub, int relu);

/* ---- backward (training) ------------------------------------------------------------------
 * Input gradients accumulate (+=) into dx; parameter gradients accumulate into dw / db. */

/* CTR-GC aggregation backward for one person (no ReLU / base / shift: those belong to the caller).
 * dy [C][T][V]; val [nsub*C][T][V]; AT [nsub][C][V][V].
 * dval[i*C+c][t][v] = sum_u dy[c][t][u] AT[i][c][v][u]            (written, not accumulated)
 * dAT[i][c][v][u]   = sum_t val[i*C+c][t][v] dy[c][t][u]           (written) */
void ctrgc_aggregate_backward(float *dval, float *dAT, const float *dy, const float *val, const float *AT, int C,
                              int T, int V, int nsub);
/* The same for channels [c0, c1); dyp: T*32 floats of scratch. */
void ctrgc_aggregate_backward_rows(float *dval, float *dAT, const float *dy, const float *val, const float *AT, int C,
                                   int c0, int c1, int T, int V, int nsub, float *dyp);

/* Relation backward: given drelT [R][V][V] and relT, dq[r][u] += sum_v g, dk[r][v] -= sum_u g with
 * g = drelT * (1 - relT^2). */
void ctrgc_relation_backward(float *dq, float *dk, const float *drelT, const float *relT, int R, int V);

/* Softmax cross-entropy against soft targets (rows summing to 1): returns the mean loss over N,
 * writes dlogits = (softmax - target) / N. */
double softmax_xent(const float *logits, const float *target, int N, int K, float *dlogits);


#endif

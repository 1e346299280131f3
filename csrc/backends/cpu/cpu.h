/* Internal to the CPU backend: the context and how an op splits its work over threads.
 *
 * Ops thread themselves. Called from a lane (an eval pass already running on one thread per
 * person), an op runs on its caller's thread; called from the driver at batch level, it splits
 * persons over threads, and splits one person's rows or columns when there are fewer persons
 * than threads (batch 1, one person: both cores still work). */
#ifndef CTRGCN_CPU_H
#define CTRGCN_CPU_H
#include <stddef.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backends/backend.h"
#include "layers/layers.h"

struct backend_ctx {
    int threads;
    float *scratch;      /* `slots` blocks of `scratch_per` floats */
    size_t scratch_per;
    int slots;
};

/* Threads an op may start here: 1 inside a lane, the context's count at batch level. */
static inline int cpu_team(const backend_ctx *c) {
#ifdef _OPENMP
    return omp_in_parallel() ? 1 : c->threads;
#else
    (void)c;
    return 1;
#endif
}

/* The scratch slot of the calling thread: the lane's when inside one, else 0 + thread number.
 * Take the base before the op's own parallel region. */
static inline int cpu_slot_base(void) {
#ifdef _OPENMP
    return omp_in_parallel() ? omp_get_thread_num() : 0;
#else
    return 0;
#endif
}
static inline int cpu_thread(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}
static inline float *cpu_scratch(const backend_ctx *c, int slot) { return c->scratch + c->scratch_per * (size_t)slot; }

/* Parts to cut each person into so that n persons give at least `team` work items. */
static inline int cpu_parts(int n, int team) { return n >= team ? 1 : (team + n - 1) / n; }
/* [lo, hi) of part p of `total` in `parts`, boundaries rounded to multiples of `align`. */
static inline void cpu_range(int total, int parts, int p, int align, int *lo, int *hi) {
    const int chunk = ((total + parts - 1) / parts + align - 1) / align * align;
    *lo = p * chunk < total ? p * chunk : total;
    *hi = (p + 1) * chunk < total ? (p + 1) * chunk : total;
}

/* db[r] += sum of row r of d [rows][ldd] over its first cols values (in double). */
static inline void rowsum_add(float *db, const float *d, int ldd, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        double s = 0.0;
        sum_f64(d + (size_t)r * ldd, (size_t)cols, &s);
        db[r] += (float)s;
    }
}

/* The per-op entry points, defined in conv.c, graph.c, norm.c and head.c. */
void cpu_conv1x1_forward(backend_ctx *ctx, float *y, size_t ldy, const float *x, size_t ldx, const float *W,
                         const float *b, int n, int co, int ci, int T, int V, int stride, int accumulate);
void cpu_conv1x1_backward(backend_ctx *ctx, float *dx, size_t lddx, float *dW, float *db, const float *dy,
                          size_t lddy, const float *x, size_t ldx, const float *W, int n, int co, int ci, int T, int V,
                          int stride);
void cpu_tconv_forward(backend_ctx *ctx, float *y, size_t ldy, const float *x, size_t ldx, const float *W,
                       const float *b, int n, int co, int ci, int T, int V, int k, int dil, int stride);
void cpu_tconv_backward(backend_ctx *ctx, float *dx, size_t lddx, float *dW, float *db, const float *dy, size_t lddy,
                        const float *x, size_t ldx, const float *W, int n, int co, int ci, int T, int V, int k,
                        int dil, int stride);
void cpu_maxpool_forward(backend_ctx *ctx, float *y, size_t ldy, const float *x, size_t ldx, int *argmax,
                         const float *scale, const float *shift, int n, int C, int T, int V, int stride);
void cpu_maxpool_backward(backend_ctx *ctx, float *dx, size_t lddx, const float *dy, size_t lddy, const int *argmax,
                          int n, int C, int T, int V, int stride);

void cpu_mean_time_forward(backend_ctx *ctx, float *y, const float *x, size_t ldx, int n, int C, int T, int V);
void cpu_mean_time_backward(backend_ctx *ctx, float *dx, size_t lddx, const float *dy, int n, int C, int T, int V);
void cpu_relation_forward(backend_ctx *ctx, float *rel, const float *qk, int n, int nrel, int R, int V);
void cpu_relation_backward(backend_ctx *ctx, float *dqk, const float *drel, const float *rel, int n, int nrel, int R,
                           int V);
void cpu_adjacency_forward(backend_ctx *ctx, float *AT, float *pre, const float *rel, const float *W4, const float *b4,
                           const float *alpha, const float *PA, int n, int nrel, int C, int R, int V);
void cpu_adjacency_backward(backend_ctx *ctx, float *drel, float *dW4, float *db4, float *dalpha, float *dPA,
                            float *dAT, const float *pre, const float *rel, const float *W4, const float *alpha, int n,
                            int nrel, int C, int R, int V);
void cpu_aggregate_forward(backend_ctx *ctx, float *y, size_t ldy, const float *val, size_t ldval, const float *AT,
                           const float *base, size_t ldbase, const float *shift, int relu, int n, int C, int T, int V);
void cpu_aggregate_backward(backend_ctx *ctx, float *dval, size_t lddval, float *dAT, const float *dy, size_t lddy,
                            const float *val, size_t ldval, const float *AT, int n, int C, int T, int V);

void cpu_bn_forward(backend_ctx *ctx, float *y, size_t ldy, const float *x, size_t ldx, int n, int C, size_t L,
                    const float *gamma, const float *beta, float *stat, float *run_mean, float *run_var,
                    float momentum);
void cpu_bn_backward(backend_ctx *ctx, float *dx, size_t lddx, const float *dy, size_t lddy, const float *x,
                     size_t ldx, int n, int C, size_t L, const float *gamma, const float *stat, float *dgamma,
                     float *dbeta);
void cpu_affine_forward(backend_ctx *ctx, float *y, const float *x, size_t ldn, int n, int C, size_t L,
                        const float *scale, const float *shift);
void cpu_add_relu_forward(backend_ctx *ctx, float *y, const float *a, const float *b, size_t count);
void cpu_relu_backward(backend_ctx *ctx, float *dx, const float *dy, const float *y, size_t count);
void cpu_accumulate(backend_ctx *ctx, float *dst, const float *src, size_t count);
size_t cpu_count_nonfinite(backend_ctx *ctx, const float *x, size_t count);

void cpu_input_forward(backend_ctx *ctx, float *y, const float *x, int N, int C, int T, int V, int M);
void cpu_persons_forward(backend_ctx *ctx, float *y, const float *x, int N, int C, int T, int V, int M);
void cpu_persons_backward(backend_ctx *ctx, float *dx, const float *dy, int N, int C, int T, int V, int M);
void cpu_pool_forward(backend_ctx *ctx, float *feat, const float *x, int N, int M, int F, size_t L);
void cpu_pool_backward(backend_ctx *ctx, float *dx, const float *dfeat, int N, int M, int F, size_t L);
void cpu_linear_forward(backend_ctx *ctx, float *y, const float *x, const float *W, const float *b, int N, int K,
                        int F);
void cpu_linear_backward(backend_ctx *ctx, float *dx, float *dW, float *db, const float *dy, const float *x,
                         const float *W, int N, int K, int F);
void cpu_xent_forward(backend_ctx *ctx, double *loss, float *dlogits, const float *logits, const float *targets, int N,
                      int K);
void cpu_sgd_update(backend_ctx *ctx, float *p, const float *g, float *v, size_t count, float lr, float momentum,
                    float weight_decay, int nesterov, int first_step);

#endif

/* The backend table: the one seam between the model driver and a device.
 *
 * A backend is a context (threads, scratch, streams: its own business), memory hooks, and every
 * op the driver needs as a named, batch-level forward/backward pair over raw pointers it
 * allocated. The driver (core/driver.c) walks the spec and calls these; it never asks which
 * device it runs on. A new backend fills this table, registers in backends/registry.c, and the
 * backend-ops suite (tests/test_backend_ops.py) runs every op of it against NumPy.
 *
 * Conventions. Activations are person-major: person i of a batch tensor starts at x + i*ldx
 * (ldx floats, so a tensor can be a channel slice of a larger one) and holds rows of L = T*V
 * floats, one per channel. Forward ops write their output unless they say "accumulates";
 * backward ops accumulate (+=) into parameter gradients (dW, db, ...) and into input gradients
 * named "dx ... accumulated", and write the ones named "written". Scalars that training updates
 * (alpha) are passed by pointer: they live where the backend keeps the parameters.
 */
#ifndef CTRGCN_BACKEND_H
#define CTRGCN_BACKEND_H
#include <stddef.h>

#include "ctrgcn.h"

typedef struct backend_ctx backend_ctx;
typedef void (*lane_fn)(void *arg, int chunk, int lane);

/* The batch-level ops, in table order, as X(name, (parameters)): from this one list come the
 * table's fields below, each backend's declarations (cpu_<name> in cpu/cpu.h, cuda_<name> in
 * cuda/common.cuh) and the entries of its table. Every op returns nothing: a backend that can fail
 * mid-op records it in its context (the CUDA backend reports through the core's error slot). */
#define CTRGCN_BACKEND_OPS(X)                                                                                          \
    /* ---- input layout: x [N][C][T][V][M] -> y [N][M*V*C][T] (data_bn's channel order m, v, c) */                    \
    X(input_forward, (backend_ctx *ctx, float *y, const float *x, int N, int C, int T, int V, int M))                  \
    /* y [N][M*V*C][T] -> persons [N*M][C][T][V]; backward: dx written from dy. */                                     \
    X(persons_forward, (backend_ctx *ctx, float *y, const float *x, int N, int C, int T, int V, int M))                \
    X(persons_backward, (backend_ctx *ctx, float *dx, const float *dy, int N, int C, int T, int V, int M))             \
                                                                                                                       \
    /* ---- normalisation and elementwise ---- */                                                                      \
    /* Train-mode BatchNorm over n persons x C channels x L: batch statistics (biased variance)                        \
     * normalise; stat receives [mean | invstd] (2C); running statistics (when run_mean is not                         \
     * NULL) move by momentum with the unbiased variance. The epilogue: y = act(BN(x) + res), res                      \
     * (persons ldres apart) may be NULL, act is ReLU when relu: the block's sums and activations                      \
     * in the same pass. y may alias x when ldy == ldx (not res). */                                                   \
    X(bn_forward, (backend_ctx *ctx, float *y, size_t ldy, const float *x, size_t ldx, int n, int C, size_t L,         \
                   const float *gamma, const float *beta, float *stat, float *run_mean, float *run_var,                \
                   float momentum, const float *res, size_t ldres, int relu))                                          \
    /* dx written (may alias dy); dgamma, dbeta accumulated. */                                                        \
    X(bn_backward, (backend_ctx *ctx, float *dx, size_t lddx, const float *dy, size_t lddy, const float *x,            \
                    size_t ldx, int n, int C, size_t L, const float *gamma, const float *stat, float *dgamma,          \
                    float *dbeta))                                                                                     \
    /* Eval BatchNorm, folded: y = scale[c] * x + shift[c] (eval only: no backward). */                                \
    X(affine_forward, (backend_ctx *ctx, float *y, const float *x, size_t ldn, int n, int C, size_t L,                 \
                       const float *scale, const float *shift))                                                        \
    /* y = max(a + b, 0) over count values; b may be NULL (plain ReLU); y may alias a. */                              \
    X(add_relu_forward, (backend_ctx *ctx, float *y, const float *a, const float *b, size_t count))                    \
    /* dx = dy where y > 0, else 0 (written; may alias dy). */                                                         \
    X(relu_backward, (backend_ctx *ctx, float *dx, const float *dy, const float *y, size_t count))                     \
    /* dst += src over count values: the backward of an addition, routed to one input. */                              \
    X(accumulate, (backend_ctx *ctx, float *dst, const float *src, size_t count))                                      \
                                                                                                                       \
    /* ---- convolutions and pooling ---- */                                                                           \
    /* 1x1 convolution with stride s over time: y_i [co][To*V] = W [co][ci] x_i[:, ::s] + b (b may                     \
     * be NULL); with accumulate, added to y. */                                                                       \
    X(conv1x1_forward, (backend_ctx *ctx, float *y, size_t ldy, const float *x, size_t ldx, const float *W,            \
                        const float *b, int n, int co, int ci, int T, int V, int stride, int accumulate))              \
    /* dx accumulated (NULL: not wanted); dW [co][ci], db accumulated (db may be NULL). */                             \
    X(conv1x1_backward, (backend_ctx *ctx, float *dx, size_t lddx, float *dW, float *db, const float *dy, size_t lddy, \
                         const float *x, size_t ldx, const float *W, int n, int co, int ci, int T, int V, int stride)) \
    /* Temporal convolution (k,1), dilation d, stride s, zero padding (k-1)d/2: W [k][co][ci] (taps                    \
     * outermost), y_i [co][To][V] = b + sum_j W_j x_i(shifted) (written). */                                          \
    X(tconv_forward, (backend_ctx *ctx, float *y, size_t ldy, const float *x, size_t ldx, const float *W,              \
                      const float *b, int n, int co, int ci, int T, int V, int k, int dil, int stride))                \
    X(tconv_backward, (backend_ctx *ctx, float *dx, size_t lddx, float *dW, float *db, const float *dy, size_t lddy,   \
                       const float *x, size_t ldx, const float *W, int n, int co, int ci, int T, int V, int k,         \
                       int dil, int stride))                                                                           \
    /* Max-pool over time (kernel 3, stride s, padding 1), then y = scale[c] * max + shift[c]                          \
     * (scale / shift NULL: 1 / 0). argmax (NULL in eval) records the winning frame. */                                \
    X(maxpool_forward, (backend_ctx *ctx, float *y, size_t ldy, const float *x, size_t ldx, int *argmax,               \
                        const float *scale, const float *shift, int n, int C, int T, int V, int stride))               \
    /* dx[c][argmax][v] += dy (dx accumulated). */                                                                     \
    X(maxpool_backward, (backend_ctx *ctx, float *dx, size_t lddx, const float *dy, size_t lddy, const int *argmax,    \
                         int n, int C, int T, int V, int stride))                                                      \
                                                                                                                       \
    /* ---- channel-wise topology refinement (CTR-GC) ---- */                                                          \
    /* y_i [C][V] = mean over t of x_i [C][T][V]; backward: dx_i += dy_i / T (accumulated). */                         \
    X(mean_time_forward, (backend_ctx *ctx, float *y, const float *x, size_t ldx, int n, int C, int T, int V))         \
    X(mean_time_backward, (backend_ctx *ctx, float *dx, size_t lddx, const float *dy, int n, int C, int T, int V))     \
    /* qk_i [2*nrel*R][V] (q rows of every relation, then k rows) -> rel_i [nrel*R][V][V],                             \
     * rel[r][v][u] = tanh(q[r][u] - k[r][v]); backward: dqk written. */                                               \
    X(relation_forward, (backend_ctx *ctx, float *rel, const float *qk, int n, int nrel, int R, int V))                \
    X(relation_backward, (backend_ctx *ctx, float *dqk, const float *drel, const float *rel, int n, int nrel, int R,   \
                          int V))                                                                                      \
    /* Refined adjacency of the three subsets, transposed: AT_i[j][c][v][u] = alpha * pre[j*C+c][v][u] +              \
     * PA[j][u][v] with pre_i [3C][V*V] = W4 [3C][R] rel_i(j) + b4 (subset j reads relation j, or                       \
     * relation 0 when nrel = 1); pre is not kept. Backward reads dAT (and b4 for dalpha, which is                     \
     * sum dAT * pre): drel written; dW4, db4, dalpha, dPA accumulated. */                                             \
    X(adjacency_forward, (backend_ctx *ctx, float *AT, const float *rel, const float *W4, const float *b4,             \
                          const float *alpha, const float *PA, int n, int nrel, int C, int R, int V))                  \
    X(adjacency_backward, (backend_ctx *ctx, float *drel, float *dW4, float *db4, float *dalpha, float *dPA,           \
                           const float *dAT, const float *rel, const float *W4, const float *b4, const float *alpha,   \
                           int n, int nrel, int C, int R, int V))                                                      \
    /* y_i [C][T][V] = act(shift[c] + base_i[c] + sum_j val_i[j*C+c] @ AT_i[j][c]) over the three                      \
     * subsets; base / shift may be NULL; act is ReLU when relu. Backward (no base/shift/ReLU:                         \
     * the driver routes those): dval_i rows [0, 3C) and dAT written. */                                               \
    X(aggregate_forward, (backend_ctx *ctx, float *y, size_t ldy, const float *val, size_t ldval, const float *AT,     \
                          const float *base, size_t ldbase, const float *shift, int relu, int n, int C, int T, int V)) \
    X(aggregate_backward, (backend_ctx *ctx, float *dval, size_t lddval, float *dAT, const float *dy, size_t lddy,     \
                           const float *val, size_t ldval, const float *AT, int n, int C, int T, int V))               \
                                                                                                                       \
    /* ---- head, loss, optimizer ---- */                                                                              \
    /* feat [N][F] = mean over the M persons of sample n and the L values of each row of x                             \
     * [N*M][F][L]; backward: dx written (dfeat / (M*L) broadcast). */                                                 \
    X(pool_forward, (backend_ctx *ctx, float *feat, const float *x, int N, int M, int F, size_t L))                    \
    X(pool_backward, (backend_ctx *ctx, float *dx, const float *dfeat, int N, int M, int F, size_t L))                 \
    /* y [N][K] = x [N][F] W^T + b; backward: dx written, dW, db accumulated. */                                       \
    X(linear_forward, (backend_ctx *ctx, float *y, const float *x, const float *W, const float *b, int N, int K,       \
                       int F))                                                                                         \
    X(linear_backward, (backend_ctx *ctx, float *dx, float *dW, float *db, const float *dy, const float *x,            \
                        const float *W, int N, int K, int F))                                                          \
    /* Mean softmax cross-entropy against soft targets [N][K]: loss[0] (double, on the backend);                       \
     * its gradient dlogits = (softmax - target) / N written. */                                                       \
    X(xent_forward, (backend_ctx *ctx, double *loss, float *dlogits, const float *logits, const float *targets, int N, \
                     int K))                                                                                           \
    /* SGD with momentum over count values: d = g + wd*p; v = mu*v + d (v = d on the first step);                      \
     * p -= lr * (nesterov ? d + mu*v : v). */                                                                         \
    X(sgd_update, (backend_ctx *ctx, float *p, const float *g, float *v, size_t count, float lr, float momentum,       \
                   float weight_decay, int nesterov, int first_step))

typedef struct ctrgcn_backend {
    const char *name;
    /* ---- context and schedule ---- */
    ctrgcn_status (*init)(backend_ctx **out, int threads);
    void (*release)(backend_ctx *ctx);
    /* Scratch the ops may use: `floats` per worker, planned once per shape. */
    ctrgcn_status (*reserve)(backend_ctx *ctx, size_t floats);
    /* Persons one eval pass carries (0 = the whole batch). The CPU carries one person through all
     * ten blocks per thread so its activations stay in cache; a GPU wants the whole batch. */
    int eval_chunk;
    /* Persons per pass of training's graph step (refined adjacency and aggregation, forward and
     * backward; 0 = the whole batch). The adjacencies and their gradients (3C x V x V floats a
     * person: the largest tensors of a block) then live only for a pass and the backward recomputes
     * them: the CPU takes one person per thread, so they stay in cache instead of going to memory
     * and back three times; a GPU takes the whole batch. */
    int (*train_chunk)(backend_ctx *ctx);
    /* How many passes run at once for `chunks` passes, and running them: fn(arg, chunk, lane)
     * for every chunk, with lane < lanes identifying the workspace to use. */
    int (*lanes)(backend_ctx *ctx, int chunks);
    void (*run_lanes)(backend_ctx *ctx, int chunks, int lanes, lane_fn fn, void *arg);

    /* ---- memory ---- */
    void *(*alloc)(backend_ctx *ctx, size_t bytes); /* NULL when out of memory */
    void (*free)(backend_ctx *ctx, void *p);
    void (*upload)(backend_ctx *ctx, void *dst, const void *host_src, size_t bytes);
    void (*download)(backend_ctx *ctx, void *host_dst, const void *src, size_t bytes);
    void (*zero)(backend_ctx *ctx, void *p, size_t bytes);
    void (*sync)(backend_ctx *ctx);
    /* The session's op profiler turned on or off (it syncs around every op): a backend that records
     * passes to replay them (CUDA graphs) runs them directly while it is on, so that each op runs,
     * and is timed and counted, once. */
    void (*profiling)(backend_ctx *ctx, int on);
    /* Values that are NaN or infinite among x[0..count). */
    size_t (*count_nonfinite)(backend_ctx *ctx, const float *x, size_t count);
    /* Whether everything since the last check ran: CTRGCN_OK, or the status of the first failure
     * of an op or hook (which return nothing), its message raised into the core's error slot. The
     * session checks after every call; a failed call leaves nothing it uploaded trusted. */
    ctrgcn_status (*check)(backend_ctx *ctx);

    /* ---- the ops: one field per entry of CTRGCN_BACKEND_OPS ---- */
#define CTRGCN_BACKEND_FIELD(name, params) void (*name) params;
    CTRGCN_BACKEND_OPS(CTRGCN_BACKEND_FIELD)
#undef CTRGCN_BACKEND_FIELD
} ctrgcn_backend;

/* backends/registry.c: NULL and a message when the name is unknown or not built. */
const ctrgcn_backend *backend_find(const char *name);
extern const ctrgcn_backend ctrgcn_cpu_backend;

#endif

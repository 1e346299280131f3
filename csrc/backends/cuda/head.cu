/* CUDA pooling, classifier head, soft-target cross-entropy and SGD. The loss and SGD run on the
 * device, so a training step moves only the batch in and the logits and loss out. */
#include "backends/cuda/common.cuh"

/* One warp per feature: each person's row mean in double (as the reference pools frames and
 * joints, then persons), then the mean over persons. */
static __global__ void pool_kernel(float *feat, const float *x, int M, int F, size_t L, size_t outputs) {
    const size_t w = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x & 31;
    if (w >= outputs) return;
    const size_t n = w / F, ch = w % F;
    double total = 0.0;
    for (int m = 0; m < M; m++) {
        const float *r = x + ((n * M + m) * F + ch) * L;
        double acc = 0.0;
        for (size_t j = lane; j < L; j += 32) acc += r[j];
        for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
        acc = __shfl_sync(0xffffffffu, acc, 0);
        total += (float)(acc / (double)L);
    }
    if (lane == 0) feat[w] = (float)(total / M);
}
void cuda_pool_forward(backend_ctx *c, float *feat, const float *x, int N, int M, int F, size_t L) {
    const size_t outputs = (size_t)N * F, threads = outputs * 32;
    LAUNCH_GRID(c, pool_kernel, (unsigned)((threads + CUDA_THREADS - 1) / CUDA_THREADS), CUDA_THREADS, 0, feat, x, M, F,
                L, outputs);
}

static __global__ void pool_back_kernel(float *dx, const float *dfeat, int M, int F, size_t L, float scale,
                                        size_t count) {
    GRID_STRIDE(e, count) {
        const size_t row = e / L, p = row / F, ch = row % F;
        dx[e] = dfeat[(p / M) * F + ch] * scale;
    }
}
void cuda_pool_backward(backend_ctx *c, float *dx, const float *dfeat, int N, int M, int F, size_t L) {
    const size_t count = (size_t)N * M * F * L;
    const float scale = 1.0f / (float)((double)M * (double)L);
    LAUNCH(c, pool_back_kernel, count, dx, dfeat, M, F, L, scale, count);
}

/* y[n][o] += b[o] */
static __global__ void col_bias_kernel(float *y, const float *b, int K, size_t count) {
    GRID_STRIDE(e, count) y[e] += b[e % K];
}
void cuda_linear_forward(backend_ctx *c, float *y, const float *x, const float *W, const float *b, int N, int K,
                         int F) {
    gemm_rm(c, 0, 1, N, K, F, 1.0f, x, F, 0, W, F, 0, 0.0f, y, K, 0, 1);
    if (b) LAUNCH(c, col_bias_kernel, (size_t)N * K, y, b, K, (size_t)N * K);
}

/* db[o] += sum_n dy[n][o] */
static __global__ void col_sum_kernel(float *db, const float *dy, int N, int K) {
    GRID_STRIDE(o, (size_t)K) {
        double s = 0.0;
        for (int n = 0; n < N; n++) s += dy[(size_t)n * K + o];
        db[o] += (float)s;
    }
}
void cuda_linear_backward(backend_ctx *c, float *dx, float *dW, float *db, const float *dy, const float *x,
                          const float *W, int N, int K, int F) {
    gemm_rm(c, 1, 0, K, F, N, 1.0f, dy, K, 0, x, F, 0, 1.0f, dW, F, 0, 1);
    if (db) LAUNCH(c, col_sum_kernel, (size_t)K, db, dy, N, K);
    if (dx) gemm_rm(c, 0, 0, N, F, K, 1.0f, dy, K, 0, W, F, 0, 0.0f, dx, F, 0, 1);
}

/* One thread per row: log-sum-exp in double, the row's loss into rowloss, its gradient written. */
static __global__ void xent_rows_kernel(double *rowloss, float *dlogits, const float *logits, const float *targets,
                                        int N, int K) {
    GRID_STRIDE(i, (size_t)N) {
        const float *z = logits + i * K, *t = targets + i * K;
        double mx = z[0];
        for (int k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
        double se = 0.0;
        for (int k = 0; k < K; k++) se += exp(z[k] - mx);
        const double lse = mx + log(se);
        double l = 0.0;
        for (int k = 0; k < K; k++) {
            l -= t[k] * (z[k] - lse);
            dlogits[i * K + k] = (float)((exp(z[k] - lse) - t[k]) / N);
        }
        rowloss[i] = l;
    }
}
static __global__ void xent_total_kernel(double *loss, const double *rowloss, int N) {
    double s = 0.0;
    for (int i = 0; i < N; i++) s += rowloss[i];
    loss[0] = s / N;
}
void cuda_xent_forward(backend_ctx *c, double *loss, float *dlogits, const float *logits, const float *targets, int N,
                       int K) {
    double *rowloss = (double *)cuda_scratch(c, 1, sizeof(double) * N);
    if (!rowloss) return;
    LAUNCH(c, xent_rows_kernel, (size_t)N, rowloss, dlogits, logits, targets, N, K);
    LAUNCH_GRID(c, xent_total_kernel, 1, 1, 0, loss, rowloss, N);
}

static __global__ void sgd_kernel(float *p, const float *g, float *v, size_t count, float lr, float mu, float wd,
                                  int nesterov, int first) {
    GRID_STRIDE(j, count) {
        const float d = g[j] + wd * p[j];
        const float vj = first ? d : mu * v[j] + d;
        v[j] = vj;
        p[j] -= lr * (nesterov ? d + mu * vj : vj);
    }
}
void cuda_sgd_update(backend_ctx *c, float *p, const float *g, float *v, size_t count, float lr, float momentum,
                     float weight_decay, int nesterov, int first_step) {
    LAUNCH(c, sgd_kernel, count, p, g, v, count, lr, momentum, weight_decay, nesterov, first_step);
}

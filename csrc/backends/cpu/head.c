/* CPU input layout, pooling and classifier head, loss and optimizer. */
#include "backends/cpu/cpu.h"
#include "layers/layers.h"

void cpu_input_forward(backend_ctx *ctx, float *y, const float *x, int N, int C, int T, int V, int M) {
    const int mvc = M * V * C, team = cpu_team(ctx);
#pragma omp parallel for num_threads(team) schedule(static)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int t = 0; t < T; t++)
                for (int v = 0; v < V; v++)
                    for (int m = 0; m < M; m++)
                        y[((size_t)n * mvc + (size_t)m * V * C + (size_t)v * C + c) * T + t] =
                            x[((((size_t)n * C + c) * T + t) * V + v) * M + m];
}

/* y from x between the batch layout [N][M*V*C][T] and the persons' [N*M][C][T][V]: towards the
 * persons (forward) or back (backward), over the same pairs of elements. */
static void persons_copy(backend_ctx *ctx, float *y, const float *x, int N, int C, int T, int V, int M,
                         int to_persons) {
    const int mvc = M * V * C, team = cpu_team(ctx);
#pragma omp parallel for num_threads(team) schedule(static)
    for (int p = 0; p < N * M; p++) {
        const int n = p / M, m = p % M;
        for (int c = 0; c < C; c++)
            for (int t = 0; t < T; t++)
                for (int v = 0; v < V; v++) {
                    const size_t batch = ((size_t)n * mvc + (size_t)m * V * C + (size_t)v * C + c) * T + t;
                    const size_t person = (((size_t)p * C + c) * T + t) * V + v;
                    if (to_persons)
                        y[person] = x[batch];
                    else
                        y[batch] = x[person];
                }
    }
}

void cpu_persons_forward(backend_ctx *ctx, float *y, const float *x, int N, int C, int T, int V, int M) {
    persons_copy(ctx, y, x, N, C, T, V, M, 1);
}

void cpu_persons_backward(backend_ctx *ctx, float *dx, const float *dy, int N, int C, int T, int V, int M) {
    persons_copy(ctx, dx, dy, N, C, T, V, M, 0);
}

/* Over (sample, channel) pairs: at batch 1 each thread takes the channels it wrote last. */
void cpu_pool_forward(backend_ctx *ctx, float *feat, const float *x, int N, int M, int F, size_t L) {
    const int team = cpu_team(ctx);
#pragma omp parallel for num_threads(team) schedule(static) collapse(2)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < F; c++) {
            double total = 0.0;
            for (int m = 0; m < M; m++) {
                /* each row's mean first, as the reference pools frames and joints, then persons */
                double acc = 0.0;
                const float *r = x + (((size_t)n * M + m) * F + c) * L;
                for (size_t j = 0; j < L; j++) acc += r[j];
                total += (float)(acc / (double)L);
            }
            feat[(size_t)n * F + c] = (float)(total / M);
        }
}

void cpu_pool_backward(backend_ctx *ctx, float *dx, const float *dfeat, int N, int M, int F, size_t L) {
    const int team = cpu_team(ctx);
    const float scale = 1.0f / (float)((double)M * (double)L);
#pragma omp parallel for num_threads(team) schedule(static)
    for (int p = 0; p < N * M; p++)
        for (int c = 0; c < F; c++) {
            const float g = dfeat[(size_t)(p / M) * F + c] * scale;
            float *d = dx + ((size_t)p * F + c) * L;
            for (size_t j = 0; j < L; j++) d[j] = g;
        }
}

void cpu_linear_forward(backend_ctx *ctx, float *y, const float *x, const float *W, const float *b, int N, int K,
                        int F) {
    (void)ctx;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < K; o++) {
            double acc = b ? b[o] : 0.0;
            for (int c = 0; c < F; c++) acc += (double)W[(size_t)o * F + c] * x[(size_t)n * F + c];
            y[(size_t)n * K + o] = (float)acc;
        }
}

void cpu_linear_backward(backend_ctx *ctx, float *dx, float *dW, float *db, const float *dy, const float *x,
                         const float *W, int N, int K, int F) {
    (void)ctx;
    gemm(1, 0, K, F, N, dy, K, x, F, 1.0f, dW, F);
    if (db)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < K; o++) db[o] += dy[(size_t)n * K + o];
    if (dx) gemm(0, 0, N, F, K, dy, K, W, F, 0.0f, dx, F);
}

void cpu_xent_forward(backend_ctx *ctx, double *loss, float *dlogits, const float *logits, const float *targets, int N,
                      int K) {
    (void)ctx;
    *loss = softmax_xent(logits, targets, N, K, dlogits);
}

void cpu_sgd_update(backend_ctx *ctx, float *p, const float *g, float *v, size_t count, float lr, float momentum,
                    float weight_decay, int nesterov, int first_step) {
    const int team = cpu_team(ctx);
#pragma omp parallel for num_threads(team) schedule(static)
    for (size_t j = 0; j < count; j++) {
        const float d = g[j] + weight_decay * p[j];
        v[j] = first_step ? d : momentum * v[j] + d;
        p[j] -= lr * (nesterov ? d + momentum * v[j] : v[j]);
    }
}

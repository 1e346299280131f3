/* CPU BatchNorm (train mode and folded eval) and the elementwise ops over a batch. */
#include <math.h>

#include "backends/cpu/cpu.h"

#define BN_EPS 1e-5

void cpu_bn_forward(backend_ctx *ctx, float *y, size_t ldy, const float *x, size_t ldx, int n, int C, size_t L,
                    const float *gamma, const float *beta, float *stat, float *run_mean, float *run_var,
                    float momentum) {
    const double count = (double)n * (double)L;
    const int team = cpu_team(ctx);
#pragma omp parallel for num_threads(team) schedule(static)
    for (int c = 0; c < C; c++) {
        /* two passes in double: the variance of activations far from zero stays accurate */
        double s = 0.0;
        for (int i = 0; i < n; i++) {
            const float *xr = x + i * ldx + (size_t)c * L;
            for (size_t j = 0; j < L; j++) s += xr[j];
        }
        const double mu = s / count;
        double ss = 0.0;
        for (int i = 0; i < n; i++) {
            const float *xr = x + i * ldx + (size_t)c * L;
            for (size_t j = 0; j < L; j++) ss += (xr[j] - mu) * (xr[j] - mu);
        }
        const double var = ss / count, is = 1.0 / sqrt(var + BN_EPS);
        stat[c] = (float)mu;
        stat[C + c] = (float)is;
        if (run_mean) {
            run_mean[c] = (float)((1.0 - momentum) * run_mean[c] + momentum * mu);
            run_var[c] = (float)((1.0 - momentum) * run_var[c] + momentum * (count > 1 ? ss / (count - 1) : var));
        }
        /* centre first: a*x + (beta - mu*a) loses digits when |mu| >> std */
        const float a = (float)(gamma[c] * is), m = (float)mu, b = beta[c];
        for (int i = 0; i < n; i++) {
            const float *xr = x + i * ldx + (size_t)c * L;
            float *yr = y + i * ldy + (size_t)c * L;
            for (size_t j = 0; j < L; j++) yr[j] = (xr[j] - m) * a + b;
        }
    }
}

void cpu_bn_backward(backend_ctx *ctx, float *dx, size_t lddx, const float *dy, size_t lddy, const float *x,
                     size_t ldx, int n, int C, size_t L, const float *gamma, const float *stat, float *dgamma,
                     float *dbeta) {
    const double count = (double)n * (double)L;
    const int team = cpu_team(ctx);
#pragma omp parallel for num_threads(team) schedule(static)
    for (int c = 0; c < C; c++) {
        const double mu = stat[c], is = stat[C + c];
        double sdy = 0.0, sdyx = 0.0;
        for (int i = 0; i < n; i++) {
            const float *g = dy + i * lddy + (size_t)c * L, *xr = x + i * ldx + (size_t)c * L;
            for (size_t j = 0; j < L; j++) {
                sdy += g[j];
                sdyx += g[j] * ((xr[j] - mu) * is);
            }
        }
        dgamma[c] += (float)sdyx;
        dbeta[c] += (float)sdy;
        /* dx = gamma*is * (dy - mean(dy) - xhat*mean(dy*xhat)) */
        const double k = gamma[c] * is, m1 = sdy / count, m2 = sdyx / count;
        for (int i = 0; i < n; i++) {
            const float *g = dy + i * lddy + (size_t)c * L, *xr = x + i * ldx + (size_t)c * L;
            float *d = dx + i * lddx + (size_t)c * L;
            for (size_t j = 0; j < L; j++) d[j] = (float)(k * (g[j] - m1 - (xr[j] - mu) * is * m2));
        }
    }
}

void cpu_affine_forward(backend_ctx *ctx, float *y, const float *x, size_t ldn, int n, int C, size_t L,
                        const float *scale, const float *shift) {
    const int team = cpu_team(ctx);
#pragma omp parallel for num_threads(team) schedule(static)
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++) {
            const float *xr = x + i * ldn + (size_t)c * L;
            float *yr = y + i * ldn + (size_t)c * L;
            for (size_t j = 0; j < L; j++) yr[j] = scale[c] * xr[j] + shift[c];
        }
}

void cpu_add_relu_forward(backend_ctx *ctx, float *y, const float *a, const float *b, size_t count) {
    const int team = cpu_team(ctx);
    if (b) {
#pragma omp parallel for num_threads(team) schedule(static)
        for (size_t e = 0; e < count; e++) {
            const float v = a[e] + b[e];
            y[e] = v > 0.0f ? v : 0.0f;
        }
    } else {
#pragma omp parallel for num_threads(team) schedule(static)
        for (size_t e = 0; e < count; e++) y[e] = a[e] > 0.0f ? a[e] : 0.0f;
    }
}

void cpu_relu_backward(backend_ctx *ctx, float *dx, const float *dy, const float *y, size_t count) {
    const int team = cpu_team(ctx);
#pragma omp parallel for num_threads(team) schedule(static)
    for (size_t e = 0; e < count; e++) dx[e] = y[e] > 0.0f ? dy[e] : 0.0f;
}

void cpu_accumulate(backend_ctx *ctx, float *dst, const float *src, size_t count) {
    const int team = cpu_team(ctx);
#pragma omp parallel for num_threads(team) schedule(static)
    for (size_t e = 0; e < count; e++) dst[e] += src[e];
}

size_t cpu_count_nonfinite(backend_ctx *ctx, const float *x, size_t count) {
    size_t bad = 0;
    const int team = cpu_team(ctx);
#pragma omp parallel for num_threads(team) schedule(static) reduction(+ : bad)
    for (size_t e = 0; e < count; e++) bad += !isfinite(x[e]);
    return bad;
}

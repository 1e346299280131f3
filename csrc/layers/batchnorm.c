/* Train-mode BatchNorm and the loss: the reductions over a whole batch. */
#include <math.h>

#include "layers/layers.h"

#define BN_EPS 1e-5

void bn_train_forward(float *y, const float *x, int n, size_t ldn, int C, size_t L, const float *gamma,
                      const float *beta, float *mean, float *invstd, float *run_mean, float *run_var, float momentum,
                      int threads) {
    const double count = (double)n * (double)L;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
#endif
    for (int c = 0; c < C; c++) {
        /* two passes in double: the variance of activations far from zero stays accurate */
        double s = 0.0;
        for (int i = 0; i < n; i++) {
            const float *xr = x + (size_t)i * ldn + (size_t)c * L;
            for (size_t j = 0; j < L; j++) s += xr[j];
        }
        const double mu = s / count;
        double ss = 0.0;
        for (int i = 0; i < n; i++) {
            const float *xr = x + (size_t)i * ldn + (size_t)c * L;
            for (size_t j = 0; j < L; j++) {
                const double d = xr[j] - mu;
                ss += d * d;
            }
        }
        const double var = ss / count;
        const double is = 1.0 / sqrt(var + BN_EPS);
        mean[c] = (float)mu;
        invstd[c] = (float)is;
        if (run_mean) {
            run_mean[c] = (float)((1.0 - momentum) * run_mean[c] + momentum * mu);
            const double unbiased = count > 1 ? ss / (count - 1) : var;
            run_var[c] = (float)((1.0 - momentum) * run_var[c] + momentum * unbiased);
        }
        const float a = (float)(gamma[c] * is), b = (float)(beta[c] - mu * gamma[c] * is);
        for (int i = 0; i < n; i++) {
            const float *xr = x + (size_t)i * ldn + (size_t)c * L;
            float *yr = y + (size_t)i * ldn + (size_t)c * L;
            for (size_t j = 0; j < L; j++) yr[j] = a * xr[j] + b;
        }
    }
}

void bn_train_backward(float *dx, const float *dy, const float *x, int n, size_t ldn, int C, size_t L,
                       const float *gamma, const float *mean, const float *invstd, float *dgamma, float *dbeta,
                       int threads) {
    const double count = (double)n * (double)L;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
#endif
    for (int c = 0; c < C; c++) {
        const double mu = mean[c], is = invstd[c];
        double sdy = 0.0, sdyx = 0.0;
        for (int i = 0; i < n; i++) {
            const float *g = dy + (size_t)i * ldn + (size_t)c * L, *xr = x + (size_t)i * ldn + (size_t)c * L;
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
            const float *g = dy + (size_t)i * ldn + (size_t)c * L, *xr = x + (size_t)i * ldn + (size_t)c * L;
            float *d = dx + (size_t)i * ldn + (size_t)c * L;
            for (size_t j = 0; j < L; j++) d[j] = (float)(k * (g[j] - m1 - (xr[j] - mu) * is * m2));
        }
    }
}

double softmax_xent(const float *logits, const float *target, int N, int K, float *dlogits) {
    double total = 0.0;
    for (int i = 0; i < N; i++) {
        const float *z = logits + (size_t)i * K, *t = target + (size_t)i * K;
        double mx = z[0];
        for (int k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
        double se = 0.0;
        for (int k = 0; k < K; k++) se += exp(z[k] - mx);
        const double lse = mx + log(se);
        for (int k = 0; k < K; k++) {
            total -= t[k] * (z[k] - lse);
            if (dlogits) dlogits[(size_t)i * K + k] = (float)((exp(z[k] - lse) - t[k]) / N);
        }
    }
    return total / N;
}

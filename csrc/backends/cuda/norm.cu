/* CUDA BatchNorm (train mode and folded eval), elementwise ops and the input layouts. Channel
 * statistics are sums in double over n persons x L values, split into S partial blocks per channel
 * and finished in a fixed order, so a result never depends on scheduling (no floating-point
 * atomics). */
#include "backends/cuda/common.cuh"

#define BN_EPS 1e-5

/* ---- layouts -------------------------------------------------------------------------------- */
static __global__ void input_kernel(float *y, const float *x, size_t count, int C, int T, int V, int M) {
    GRID_STRIDE(e, count) y[e] = x[idx_input_src(e, C, T, V, M)];
}
static __global__ void persons_kernel(float *y, const float *x, size_t count, int C, int T, int V, int M) {
    GRID_STRIDE(e, count) y[e] = x[idx_persons_src(e, C, T, V, M)];
}
static __global__ void persons_back_kernel(float *dx, const float *dy, size_t count, int C, int T, int V, int M) {
    GRID_STRIDE(e, count) dx[idx_persons_src(e, C, T, V, M)] = dy[e];
}

void cuda_input_forward(backend_ctx *c, float *y, const float *x, int N, int C, int T, int V, int M) {
    const size_t count = (size_t)N * C * T * V * M;
    LAUNCH(c, input_kernel, count, y, x, count, C, T, V, M);
}
void cuda_persons_forward(backend_ctx *c, float *y, const float *x, int N, int C, int T, int V, int M) {
    const size_t count = (size_t)N * C * T * V * M;
    LAUNCH(c, persons_kernel, count, y, x, count, C, T, V, M);
}
void cuda_persons_backward(backend_ctx *c, float *dx, const float *dy, int N, int C, int T, int V, int M) {
    const size_t count = (size_t)N * C * T * V * M;
    LAUNCH(c, persons_back_kernel, count, dx, dy, count, C, T, V, M);
}

/* ---- BatchNorm -------------------------------------------------------------------------------- */
/* Partial sums of channel c over its n*L values: part[c*S + s] = sum of f(x) over the values
 * k = s*B + t (mod S*B); f(x) = x (mean NULL), (x - mean)^2, or with dy given: dy and
 * dy * (x - mu) * is into part and part2. */
static __global__ void channel_partials(double *part, double *part2, const float *x, size_t ldx, const float *dy,
                                        size_t lddy, int n, size_t L, const double *mean, const float *stat, int C,
                                        int S) {
    __shared__ double sh[32];
    const int ch = blockIdx.x, s = blockIdx.y;
    const size_t total = (size_t)n * L;
    double a = 0.0, b = 0.0;
    const double mu = stat ? (double)stat[ch] : (mean ? mean[ch] : 0.0), is = stat ? (double)stat[C + ch] : 0.0;
    for (size_t k = (size_t)s * blockDim.x + threadIdx.x; k < total; k += (size_t)S * blockDim.x) {
        const size_t i = k / L, j = k % L;
        const float v = x[i * ldx + (size_t)ch * L + j];
        if (dy) {
            const float g = dy[i * lddy + (size_t)ch * L + j];
            a += g;
            b += g * ((v - mu) * is);
        } else if (mean) {
            a += (v - mu) * (v - mu);
        } else {
            a += v;
        }
    }
    a = block_sum(a, sh);
    if (part2) b = block_sum(b, sh);
    if (threadIdx.x == 0) {
        part[ch * S + s] = a;
        if (part2) part2[ch * S + s] = b;
    }
}

static __global__ void bn_mean_kernel(double *mean, const double *part, int C, int S, double count) {
    GRID_STRIDE(ch, (size_t)C) {
        double t = 0.0;
        for (int s = 0; s < S; s++) t += part[ch * S + s];
        mean[ch] = t / count;
    }
}

/* coef[c] = gamma*is, coef[C+c] = mean (as floats of the normalisation) */
static __global__ void bn_stats_kernel(double *coef, float *stat, float *run_mean, float *run_var, const double *mean,
                                       const double *part, const float *gamma, int C, int S, double count,
                                       float momentum) {
    GRID_STRIDE(ch, (size_t)C) {
        double ss = 0.0;
        for (int s = 0; s < S; s++) ss += part[ch * S + s];
        const double mu = mean[ch], var = ss / count, is = 1.0 / sqrt(var + BN_EPS);
        stat[ch] = (float)mu;
        stat[C + ch] = (float)is;
        if (run_mean) {
            run_mean[ch] = (float)((1.0 - momentum) * run_mean[ch] + momentum * mu);
            run_var[ch] = (float)((1.0 - momentum) * run_var[ch] + momentum * (count > 1 ? ss / (count - 1) : var));
        }
        coef[ch] = (double)(float)(gamma[ch] * is);
        coef[C + ch] = (double)(float)mu;
    }
}

/* y = act(BN(x) + res): res may be NULL; act is ReLU (NaN -> 0, as add_relu) when relu */
static __global__ void bn_apply_kernel(float *y, size_t ldy, const float *x, size_t ldx, int C, size_t L,
                                       const double *coef, const float *beta, const float *res, size_t ldres,
                                       int relu, size_t count) {
    GRID_STRIDE(e, count) {
        const size_t per = (size_t)C * L, i = e / per, r = e % per, ch = r / L, j = r % L;
        const float a = (float)coef[ch], m = (float)coef[C + ch];
        /* centre first: a*x + (beta - mu*a) loses digits when |mu| >> std */
        float v = (x[i * ldx + ch * L + j] - m) * a + beta[ch];
        if (res) v += res[i * ldres + r];
        if (relu) v = v > 0.0f ? v : 0.0f;
        y[i * ldy + r] = v;
    }
}

static int partial_blocks(size_t total) {
    size_t s = total / 4096;
    return (int)(s < 1 ? 1 : s > 64 ? 64 : s);
}

void cuda_bn_forward(backend_ctx *c, float *y, size_t ldy, const float *x, size_t ldx, int n, int C, size_t L,
                     const float *gamma, const float *beta, float *stat, float *run_mean, float *run_var,
                     float momentum, const float *res, size_t ldres, int relu) {
    const size_t total = (size_t)n * L;
    const int S = partial_blocks(total);
    double *red = (double *)cuda_scratch(c, 1, sizeof(double) * ((size_t)C * S + 3 * (size_t)C));
    if (!red) return;
    double *part = red, *mean = red + (size_t)C * S, *coef = mean + C;
    const double count = (double)n * (double)L;
    const dim3 grid(C, S);
    LAUNCH_GRID(c, channel_partials, grid, CUDA_THREADS, 0, part, NULL, x, ldx, NULL, 0, n, L, NULL, NULL, C, S);
    LAUNCH(c, bn_mean_kernel, (size_t)C, mean, part, C, S, count);
    LAUNCH_GRID(c, channel_partials, grid, CUDA_THREADS, 0, part, NULL, x, ldx, NULL, 0, n, L, mean, NULL, C, S);
    LAUNCH(c, bn_stats_kernel, (size_t)C, coef, stat, run_mean, run_var, mean, part, gamma, C, S, count, momentum);
    LAUNCH(c, bn_apply_kernel, (size_t)n * C * L, y, ldy, x, ldx, C, L, coef, beta, res, ldres, relu,
           (size_t)n * C * L);
}

/* coef: [k | m1 | m2] per channel; dgamma, dbeta accumulated */
static __global__ void bn_back_stats_kernel(double *coef, float *dgamma, float *dbeta, const double *p1,
                                            const double *p2, const float *gamma, const float *stat, int C, int S,
                                            double count) {
    GRID_STRIDE(ch, (size_t)C) {
        double sdy = 0.0, sdyx = 0.0;
        for (int s = 0; s < S; s++) {
            sdy += p1[ch * S + s];
            sdyx += p2[ch * S + s];
        }
        dgamma[ch] += (float)sdyx;
        dbeta[ch] += (float)sdy;
        coef[ch] = gamma[ch] * (double)stat[C + ch];
        coef[C + ch] = sdy / count;
        coef[2 * C + ch] = sdyx / count;
    }
}

static __global__ void bn_back_apply_kernel(float *dx, size_t lddx, const float *dy, size_t lddy, const float *x,
                                            size_t ldx, int C, size_t L, const double *coef, const float *stat,
                                            size_t count) {
    GRID_STRIDE(e, count) {
        const size_t per = (size_t)C * L, i = e / per, r = e % per, ch = r / L;
        const double mu = stat[ch], is = stat[C + ch];
        const double g = dy[i * lddy + r], v = x[i * ldx + r];
        /* dx = gamma*is * (dy - mean(dy) - xhat*mean(dy*xhat)) */
        dx[i * lddx + r] = (float)(coef[ch] * (g - coef[C + ch] - (v - mu) * is * coef[2 * C + ch]));
    }
}

void cuda_bn_backward(backend_ctx *c, float *dx, size_t lddx, const float *dy, size_t lddy, const float *x, size_t ldx,
                      int n, int C, size_t L, const float *gamma, const float *stat, float *dgamma, float *dbeta) {
    const size_t total = (size_t)n * L;
    const int S = partial_blocks(total);
    double *red = (double *)cuda_scratch(c, 1, sizeof(double) * (2 * (size_t)C * S + 3 * (size_t)C));
    if (!red) return;
    double *p1 = red, *p2 = red + (size_t)C * S, *coef = p2 + (size_t)C * S;
    const dim3 grid(C, S);
    LAUNCH_GRID(c, channel_partials, grid, CUDA_THREADS, 0, p1, p2, x, ldx, dy, lddy, n, L, NULL, stat, C, S);
    LAUNCH(c, bn_back_stats_kernel, (size_t)C, coef, dgamma, dbeta, p1, p2, gamma, stat, C, S, (double)total);
    /* every sum is in before dx overwrites dy (they may alias) */
    LAUNCH(c, bn_back_apply_kernel, (size_t)n * C * L, dx, lddx, dy, lddy, x, ldx, C, L, coef, stat,
           (size_t)n * C * L);
}

/* ---- elementwise -------------------------------------------------------------------------------- */
static __global__ void affine_kernel(float *y, const float *x, size_t ldn, int C, size_t L, const float *scale,
                                     const float *shift, size_t count) {
    GRID_STRIDE(e, count) {
        const size_t per = (size_t)C * L, i = e / per, r = e % per, ch = r / L;
        y[i * ldn + r] = scale[ch] * x[i * ldn + r] + shift[ch];
    }
}
void cuda_affine_forward(backend_ctx *c, float *y, const float *x, size_t ldn, int n, int C, size_t L,
                         const float *scale, const float *shift) {
    const size_t count = (size_t)n * C * L;
    LAUNCH(c, affine_kernel, count, y, x, ldn, C, L, scale, shift, count);
}

static __global__ void add_relu_kernel(float *y, const float *a, const float *b, size_t count) {
    GRID_STRIDE(e, count) {
        const float v = b ? a[e] + b[e] : a[e];
        y[e] = v > 0.0f ? v : 0.0f;
    }
}
void cuda_add_relu_forward(backend_ctx *c, float *y, const float *a, const float *b, size_t count) {
    LAUNCH(c, add_relu_kernel, count, y, a, b, count);
}

static __global__ void relu_back_kernel(float *dx, const float *dy, const float *y, size_t count) {
    GRID_STRIDE(e, count) dx[e] = y[e] > 0.0f ? dy[e] : 0.0f;
}
void cuda_relu_backward(backend_ctx *c, float *dx, const float *dy, const float *y, size_t count) {
    LAUNCH(c, relu_back_kernel, count, dx, dy, y, count);
}

static __global__ void accumulate_kernel(float *dst, const float *src, size_t count) {
    GRID_STRIDE(e, count) dst[e] += src[e];
}
void cuda_accumulate(backend_ctx *c, float *dst, const float *src, size_t count) {
    LAUNCH(c, accumulate_kernel, count, dst, src, count);
}

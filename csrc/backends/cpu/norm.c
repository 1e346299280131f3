/* CPU BatchNorm (train mode and folded eval) and the elementwise ops over a batch.
 *
 * These ops move data and do little arithmetic, so they are written to stream: statistics in one
 * pass (moments about a pivot, in four double lanes), branch-free selects that vectorise, and
 * the row loops compiled for AVX2 where the CPU has it. */
#include <math.h>

#include "backends/cpu/cpu.h"
#include "layers/layers.h"

#define BN_EPS 1e-5

/* s[0] += sum (x - p), s[1] += sum (x - p)^2 over L values, in double. Moments about a pivot p
 * near the mean keep the one-pass variance exact to double rounding (no cancellation that
 * matters in float32 results), while reading the data once; F64_LANES partial sums (layers.h). */
CTRGCN_HOT_BODY(row_moments, (const float *x, size_t L, double p, double *s)) {
    double a[F64_LANES] = {0}, b[F64_LANES] = {0};
    size_t j = 0;
    for (; j + F64_LANES <= L; j += F64_LANES)
        for (int k = 0; k < F64_LANES; k++) {
            const double d = (double)x[j + k] - p;
            a[k] += d;
            b[k] += d * d;
        }
    for (; j < L; j++) {
        const double d = (double)x[j] - p;
        a[0] += d;
        b[0] += d * d;
    }
    s[0] += f64_total(a);
    s[1] += f64_total(b);
}
CTRGCN_HOT_ENTRY(row_moments, (const float *x, size_t L, double p, double *s), (x, L, p, s))

/* s[0] += sum g, s[1] += sum g * (x - mu) over L values, in double. */
CTRGCN_HOT_BODY(row_dot_moments, (const float *g, const float *x, size_t L, double mu, double *s)) {
    double a[F64_LANES] = {0}, b[F64_LANES] = {0};
    size_t j = 0;
    for (; j + F64_LANES <= L; j += F64_LANES)
        for (int k = 0; k < F64_LANES; k++) {
            const double gk = g[j + k];
            a[k] += gk;
            b[k] += gk * ((double)x[j + k] - mu);
        }
    for (; j < L; j++) {
        a[0] += g[j];
        b[0] += (double)g[j] * ((double)x[j] - mu);
    }
    s[0] += f64_total(a);
    s[1] += f64_total(b);
}
CTRGCN_HOT_ENTRY(row_dot_moments, (const float *g, const float *x, size_t L, double mu, double *s), (g, x, L, mu, s))

/* y = act((x - m) * a + b + res): centred first, since a*x + (b - m*a) loses digits when |m| >> std;
 * res may be NULL; act is ReLU (as add_relu: NaN -> 0) when relu. */
CTRGCN_HOT_BODY(row_normalise, (float *y, const float *x, size_t L, float m, float a, float b, const float *res,
                                int relu)) {
    if (res && relu)
        for (size_t j = 0; j < L; j++) {
            const float v = (x[j] - m) * a + b + res[j];
            y[j] = v > 0.0f ? v : 0.0f;
        }
    else if (relu)
        for (size_t j = 0; j < L; j++) {
            const float v = (x[j] - m) * a + b;
            y[j] = v > 0.0f ? v : 0.0f;
        }
    else if (res)
        for (size_t j = 0; j < L; j++) y[j] = (x[j] - m) * a + b + res[j];
    else
        for (size_t j = 0; j < L; j++) y[j] = (x[j] - m) * a + b;
}
CTRGCN_HOT_ENTRY(row_normalise, (float *y, const float *x, size_t L, float m, float a, float b, const float *res,
                                 int relu),
                 (y, x, L, m, a, b, res, relu))

/* d = k * (g - m1) - h * (x - mu): BatchNorm's input gradient with its batch terms folded in. */
CTRGCN_HOT_BODY(row_bn_grad, (float *d, const float *g, const float *x, size_t L, float k, float m1, float h, float mu)) {
    for (size_t j = 0; j < L; j++) d[j] = k * (g[j] - m1) - h * (x[j] - mu);
}
CTRGCN_HOT_ENTRY(row_bn_grad, (float *d, const float *g, const float *x, size_t L, float k, float m1, float h, float mu),
                 (d, g, x, L, k, m1, h, mu))

/* BatchNorm reads a channel as n rows of L values, one per person, ld apart: a new stream every
 * few KB (1 KB at the deep blocks), too short for the hardware prefetcher to lock on. So the
 * statistics pass asks for the row PF_BYTES ahead in (channel, person) order, the next channel's
 * first rows included; the second pass finds the channel in cache. */
#define PF_BYTES 16384
static inline int rows_ahead(size_t L) {
    const size_t d = PF_BYTES / (sizeof(float) * (L ? L : 1));
    return d ? (int)d : 1;
}
static inline void prefetch_row(const float *x, size_t ld, size_t L, int n, int C, int c, int i, int ahead) {
    const int j = c * n + i + ahead, cc = j / n;
    if (cc < C) prefetch_span(x + (size_t)(j % n) * ld + (size_t)cc * L, sizeof(float) * L);
}

void cpu_bn_forward(backend_ctx *ctx, float *y, size_t ldy, const float *x, size_t ldx, int n, int C, size_t L,
                    const float *gamma, const float *beta, float *stat, float *run_mean, float *run_var,
                    float momentum, const float *res, size_t ldres, int relu) {
    const double count = (double)n * (double)L;
    const int team = cpu_team(ctx);
#pragma omp parallel for num_threads(team) schedule(static)
    for (int c = 0; c < C; c++) {
        const double p = L > 0 ? x[(size_t)c * L] : 0.0; /* the pivot: any value of the channel */
        double s[2] = {0.0, 0.0};
        const int ahead = rows_ahead(L);
        for (int i = 0; i < n; i++) {
            prefetch_row(x, ldx, L, n, C, c, i, ahead);
            row_moments(x + i * ldx + (size_t)c * L, L, p, s);
        }
        const double dm = s[0] / count, mu = p + dm;
        const double ss = s[1] - s[0] * dm; /* sum of squared deviations from mu */
        const double var = (ss > 0.0 ? ss : 0.0) / count, is = 1.0 / sqrt(var + BN_EPS);
        stat[c] = (float)mu;
        stat[C + c] = (float)is;
        if (run_mean) {
            run_mean[c] = (float)((1.0 - momentum) * run_mean[c] + momentum * mu);
            run_var[c] = (float)((1.0 - momentum) * run_var[c] + momentum * (count > 1 ? ss / (count - 1) : var));
        }
        const float a = (float)(gamma[c] * is), m = (float)mu, b = beta[c];
        for (int i = 0; i < n; i++)
            row_normalise(y + i * ldy + (size_t)c * L, x + i * ldx + (size_t)c * L, L, m, a, b,
                          res ? res + i * ldres + (size_t)c * L : NULL, relu);
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
        double s[2] = {0.0, 0.0};
        const int ahead = rows_ahead(2 * L); /* two streams */
        for (int i = 0; i < n; i++) {
            prefetch_row(dy, lddy, L, n, C, c, i, ahead);
            prefetch_row(x, ldx, L, n, C, c, i, ahead);
            row_dot_moments(dy + i * lddy + (size_t)c * L, x + i * ldx + (size_t)c * L, L, mu, s);
        }
        const double sdy = s[0], sdyx = s[1] * is; /* sum dy, sum dy * xhat */
        dgamma[c] += (float)sdyx;
        dbeta[c] += (float)sdy;
        /* dx = gamma*is * (dy - mean(dy) - xhat*mean(dy*xhat)) */
        const double k = gamma[c] * is, m1 = sdy / count, m2 = sdyx / count;
        for (int i = 0; i < n; i++)
            row_bn_grad(dx + i * lddx + (size_t)c * L, dy + i * lddy + (size_t)c * L, x + i * ldx + (size_t)c * L, L,
                        (float)k, (float)m1, (float)(k * is * m2), (float)mu);
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

/* The streaming ops cut the tensor on 16-value (64-byte) lines. */
#define LINE 16

void cpu_add_relu_forward(backend_ctx *ctx, float *y, const float *a, const float *b, size_t count) {
    const int team = cpu_team(ctx);
#pragma omp parallel for num_threads(team) schedule(static)
    for (int p = 0; p < team; p++) {
        size_t lo, hi;
        cpu_span(count, team, p, LINE, &lo, &hi);
        if (hi > lo) add_relu(y + lo, a + lo, b ? b + lo : NULL, hi - lo);
    }
}

void cpu_relu_backward(backend_ctx *ctx, float *dx, const float *dy, const float *y, size_t count) {
    const int team = cpu_team(ctx);
#pragma omp parallel for num_threads(team) schedule(static)
    for (int p = 0; p < team; p++) {
        size_t lo, hi;
        cpu_span(count, team, p, LINE, &lo, &hi);
        if (hi > lo) relu_grad(dx + lo, dy + lo, y + lo, hi - lo);
    }
}

void cpu_accumulate(backend_ctx *ctx, float *dst, const float *src, size_t count) {
    const int team = cpu_team(ctx);
#pragma omp parallel for num_threads(team) schedule(static)
    for (int p = 0; p < team; p++) {
        size_t lo, hi;
        cpu_span(count, team, p, LINE, &lo, &hi);
        if (hi > lo) add_into(dst + lo, src + lo, hi - lo);
    }
}

size_t cpu_count_nonfinite(backend_ctx *ctx, const float *x, size_t count) {
    size_t bad = 0;
    const int team = cpu_team(ctx);
#pragma omp parallel for num_threads(team) schedule(static) reduction(+ : bad)
    for (size_t e = 0; e < count; e++) bad += !isfinite(x[e]);
    return bad;
}

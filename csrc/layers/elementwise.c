#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"

#if defined(__GNUC__) && defined(__x86_64__)
int cpu_has_avx2_fma(void) {
    static int known = -1; /* a benign race: every thread computes the same answer */
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return known;
}

/* CTRGCN_NO_AVX512=1 keeps the AVX2 copies (to compare the two, or on a CPU that throttles). */
int cpu_has_avx512(void) {
    static int known = -1; /* a benign race, as above */
    if (known < 0) {
        const char *off = getenv("CTRGCN_NO_AVX512");
        __builtin_cpu_init();
        known = !(off && *off && *off != '0') && cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f") &&
                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512dq");
    }
    return known;
}
#endif

/* A hot loop too: it runs before every biased GEMM, and with 16-byte stores it took 5% of a
 * batch-1 forward. */
CTRGCN_HOT_BODY(rows_fill, (float *y, int ldy, const float *b, int rows, int cols)) {
    for (int r = 0; r < rows; r++) {
        float *yr = y + (size_t)r * ldy;
        const float v = b ? b[r] : 0.0f;
        for (int j = 0; j < cols; j++) yr[j] = v;
    }
}
CTRGCN_HOT_ENTRY(rows_fill, (float *y, int ldy, const float *b, int rows, int cols), (y, ldy, b, rows, cols))

/* The streaming passes of the backends' elementwise ops, as hot loops (AVX2 / AVX-512 copies):
 * called from an OpenMP region, a loop is compiled for plain x86-64 and moves 16 bytes a store. */
CTRGCN_HOT_BODY(add_relu, (float *y, const float *a, const float *b, size_t n)) {
    if (b) {
        for (size_t i = 0; i < n; i++) {
            const float v = a[i] + b[i];
            y[i] = v > 0.0f ? v : 0.0f;
        }
    } else {
        for (size_t i = 0; i < n; i++) y[i] = a[i] > 0.0f ? a[i] : 0.0f;
    }
}
CTRGCN_HOT_ENTRY(add_relu, (float *y, const float *a, const float *b, size_t n), (y, a, b, n))

CTRGCN_HOT_BODY(relu_grad, (float *dx, const float *dy, const float *y, size_t n)) {
    for (size_t i = 0; i < n; i++) {
        const float g = dy[i]; /* loaded unconditionally: the select then vectorises */
        dx[i] = y[i] > 0.0f ? g : 0.0f;
    }
}
CTRGCN_HOT_ENTRY(relu_grad, (float *dx, const float *dy, const float *y, size_t n), (dx, dy, y, n))

CTRGCN_HOT_BODY(add_into, (float *dst, const float *src, size_t n)) {
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}
CTRGCN_HOT_ENTRY(add_into, (float *dst, const float *src, size_t n), (dst, src, n))

CTRGCN_HOT_BODY(scale_add, (float *y, const float *x, float a, const float *b, size_t n)) {
    for (size_t i = 0; i < n; i++) y[i] = a * x[i] + b[i];
}
CTRGCN_HOT_ENTRY(scale_add, (float *y, const float *x, float a, const float *b, size_t n), (y, x, a, b, n))

CTRGCN_HOT_BODY(mean_time, (float *xm, const float *x, int C, int T, int V)) {
    const float inv = 1.0f / (float)T;
    for (int c = 0; c < C; c++) {
        float *m = xm + (size_t)c * V;
        for (int v = 0; v < V; v++) m[v] = 0.0f;
        for (int t = 0; t < T; t++) {
            const float *xr = x + ((size_t)c * T + t) * V;
            for (int v = 0; v < V; v++) m[v] += xr[v];
        }
        for (int v = 0; v < V; v++) m[v] *= inv;
    }
}
CTRGCN_HOT_ENTRY(mean_time, (float *xm, const float *x, int C, int T, int V), (xm, x, C, T, V))

/* Sums in double over float rows, in F64_LANES lanes so they vectorise (see layers.h). */
CTRGCN_HOT_BODY(sum_f64, (const float *a, size_t n, double *s)) {
    double l[F64_LANES] = {0};
    size_t j = 0;
    for (; j + F64_LANES <= n; j += F64_LANES)
        for (int k = 0; k < F64_LANES; k++) l[k] += a[j + k];
    for (; j < n; j++) l[0] += a[j];
    *s += f64_total(l);
}
CTRGCN_HOT_ENTRY(sum_f64, (const float *a, size_t n, double *s), (a, n, s))

/* CUDA convolutions and pooling over a batch: the 1x1 convolution (stride over time), the temporal
 * convolution as k GEMMs over time-shifted windows, and the time max-pool. Every GEMM is one cuBLAS
 * strided-batched call over the persons (person i of a tensor sits ld floats after person i-1).
 * Parameter gradients sum over persons: each person's product goes to a partial in scratch and one
 * GEMV adds them up, which keeps the sum free of atomics and its order fixed. A stride over time
 * goes through a gathered copy (1x1) or a phase split (temporal), as on the CPU. */
#include "backends/cuda/memory.cuh" /* cuda_zero */

/* buf [n][ci][To*V] = x_i[:, ::s] */
static __global__ void subsample_kernel(float *buf, const float *x, size_t ldx, int ci, int T, int V, int s,
                                        size_t ToV, size_t count) {
    GRID_STRIDE(e, count) {
        const size_t per = (size_t)ci * ToV, i = e / per, r = e % per, ch = r / ToV, col = r % ToV;
        buf[e] = x[i * ldx + ch * (size_t)T * V + idx_strided_col(col, V, s)];
    }
}
/* dx_i[:, ::s] += buf [n][ci][To*V] */
static __global__ void unsubsample_add_kernel(float *dx, size_t lddx, const float *buf, int ci, int T, int V, int s,
                                              size_t ToV, size_t count) {
    GRID_STRIDE(e, count) {
        const size_t per = (size_t)ci * ToV, i = e / per, r = e % per, ch = r / ToV, col = r % ToV;
        dx[i * lddx + ch * (size_t)T * V + idx_strided_col(col, V, s)] += buf[e];
    }
}

void cuda_conv1x1_forward(backend_ctx *c, float *y, size_t ldy, const float *x, size_t ldx, const float *W,
                          const float *b, int n, int co, int ci, int T, int V, int stride, int accumulate) {
    const int To = (T - 1) / stride + 1;
    const size_t ToV = (size_t)To * V, TV = (size_t)T * V;
    const float *src = x;
    size_t lds = TV, sS = ldx;
    if (stride > 1) {
        float *buf = (float *)cuda_scratch(c, 0, sizeof(float) * n * ci * ToV);
        if (!buf) return;
        LAUNCH(c, subsample_kernel, (size_t)n * ci * ToV, buf, x, ldx, ci, T, V, stride, ToV, (size_t)n * ci * ToV);
        src = buf;
        lds = ToV;
        sS = (size_t)ci * ToV;
    }
    gemm_rm(c, 0, 0, co, (int)ToV, ci, 1.0f, W, ci, 0, src, (int)lds, (long long)sS, accumulate ? 1.0f : 0.0f, y,
            (int)ToV, (long long)ldy, n);
    rows_bias(c, y, ldy, b, n, co, ToV, 0);
}

void cuda_conv1x1_backward(backend_ctx *c, float *dx, size_t lddx, float *dW, float *db, const float *dy, size_t lddy,
                           const float *x, size_t ldx, const float *W, int n, int co, int ci, int T, int V,
                           int stride) {
    const int To = (T - 1) / stride + 1;
    const size_t ToV = (size_t)To * V, TV = (size_t)T * V;
    const size_t gather = stride > 1 ? (size_t)n * ci * ToV : 0, partial = n > 1 ? (size_t)n * co * ci : 0;
    float *buf = (float *)cuda_scratch(c, 0, sizeof(float) * (gather + (partial > gather ? partial : gather)));
    if (!buf) return;
    const float *src = x;
    size_t lds = TV, sS = ldx;
    if (stride > 1) {
        LAUNCH(c, subsample_kernel, gather, buf, x, ldx, ci, T, V, stride, ToV, gather);
        src = buf;
        lds = ToV;
        sS = (size_t)ci * ToV;
    }
    float *part = buf + gather;
    /* dW += sum_i dy_i src_i^T */
    if (n == 1) {
        gemm_rm(c, 0, 1, co, ci, (int)ToV, 1.0f, dy, (int)ToV, 0, src, (int)lds, 0, 1.0f, dW, ci, 0, 1);
    } else {
        gemm_rm(c, 0, 1, co, ci, (int)ToV, 1.0f, dy, (int)ToV, (long long)lddy, src, (int)lds, (long long)sS, 0.0f,
                part, ci, (long long)co * ci, n);
        sum_persons_add(c, dW, part, n, (size_t)co * ci);
    }
    rows_sum_add(c, db, dy, lddy, n, co, ToV);
    if (!dx) return;
    if (stride == 1) {
        gemm_rm(c, 1, 0, ci, (int)ToV, co, 1.0f, W, ci, 0, dy, (int)ToV, (long long)lddy, 1.0f, dx, (int)TV,
                (long long)lddx, n);
        return;
    }
    /* the gathered copy is spent: W^T dy lands there, then in dx's strided columns */
    gemm_rm(c, 1, 0, ci, (int)ToV, co, 1.0f, W, ci, 0, dy, (int)ToV, (long long)lddy, 0.0f, buf, (int)ToV,
            (long long)ci * ToV, n);
    LAUNCH(c, unsubsample_add_kernel, gather, dx, lddx, buf, ci, T, V, stride, ToV, gather);
}

/* ---- temporal convolution -------------------------------------------------------------------- */
/* Phase split of x: person i's phases at buf + i*ci*T*V, phase p at offset ci*V*phase_start(p),
 * laid [ci][len_p][V]. */
static __global__ void phase_split_kernel(float *buf, const float *x, size_t ldx, int ci, int T, int V, int s,
                                          size_t count) {
    GRID_STRIDE(e, count) {
        const size_t per = (size_t)ci * T * V, i = e / per, r = e % per;
        const int ch = (int)(r / ((size_t)T * V)), t = (int)(r / V % T), v = (int)(r % V);
        const int p = t % s, tp = t / s, len = phase_len(T, p, s);
        buf[i * per + (size_t)ci * V * phase_start(T, p, s) + ((size_t)ch * len + tp) * V + v] = x[i * ldx + r];
    }
}
/* dx_i[c][t][v] += G_i (phase-split layout) */
static __global__ void phase_merge_add_kernel(float *dx, size_t lddx, const float *G, int ci, int T, int V, int s,
                                              size_t count) {
    GRID_STRIDE(e, count) {
        const size_t per = (size_t)ci * T * V, i = e / per, r = e % per;
        const int ch = (int)(r / ((size_t)T * V)), t = (int)(r / V % T), v = (int)(r % V);
        const int p = t % s, tp = t / s, len = phase_len(T, p, s);
        dx[i * lddx + r] += G[i * per + (size_t)ci * V * phase_start(T, p, s) + ((size_t)ch * len + tp) * V + v];
    }
}

typedef struct {
    const float *base[8]; /* phase p of person 0 */
    int ld[8];            /* row length of phase p */
    long long stride;     /* person to person */
} phase_view;

/* x itself (stride 1) or its phase split in buf. */
static phase_view phases_of(backend_ctx *c, const float *x, size_t ldx, float *buf, int n, int ci, int T, int V,
                            int s) {
    phase_view ph;
    if (s == 1) {
        ph.base[0] = x;
        ph.ld[0] = T * V;
        ph.stride = (long long)ldx;
        return ph;
    }
    const size_t count = (size_t)n * ci * T * V;
    LAUNCH(c, phase_split_kernel, count, buf, x, ldx, ci, T, V, s, count);
    for (int p = 0; p < s; p++) {
        ph.base[p] = buf + (size_t)ci * V * phase_start(T, p, s);
        ph.ld[p] = phase_len(T, p, s) * V;
    }
    ph.stride = (long long)ci * T * V;
    return ph;
}

static int out_frames(int T, int k, int dil, int s) {
    const int pad = (k - 1) * dil / 2;
    return (T + 2 * pad - dil * (k - 1) - 1) / s + 1;
}

void cuda_tconv_forward(backend_ctx *c, float *y, size_t ldy, const float *x, size_t ldx, const float *W,
                        const float *b, int n, int co, int ci, int T, int V, int k, int dil, int stride) {
    const int pad = (k - 1) * dil / 2, To = out_frames(T, k, dil, stride);
    const size_t ToV = (size_t)To * V;
    float *buf = NULL;
    if (stride > 1 && !(buf = (float *)cuda_scratch(c, 0, sizeof(float) * n * ci * T * V))) return;
    const phase_view ph = phases_of(c, x, ldx, buf, n, ci, T, V, stride);
    rows_bias(c, y, ldy, b, n, co, ToV, 1);
    for (int j = 0; j < k; j++) {
        int p, sh, t0, t1;
        if (!tap_window(T, j, dil, pad, stride, To, &p, &sh, &t0, &t1)) continue;
        gemm_rm(c, 0, 0, co, (t1 - t0) * V, ci, 1.0f, W + (size_t)j * co * ci, ci, 0, ph.base[p] + (size_t)(t0 + sh) * V,
                ph.ld[p], ph.stride, 1.0f, y + (size_t)t0 * V, (int)ToV, (long long)ldy, n);
    }
}

void cuda_tconv_backward(backend_ctx *c, float *dx, size_t lddx, float *dW, float *db, const float *dy, size_t lddy,
                         const float *x, size_t ldx, const float *W, int n, int co, int ci, int T, int V, int k,
                         int dil, int stride) {
    const int pad = (k - 1) * dil / 2, To = out_frames(T, k, dil, stride);
    const size_t ToV = (size_t)To * V, TV = (size_t)T * V, tapw = (size_t)co * ci;
    const size_t split = stride > 1 ? (size_t)n * ci * TV : 0, partial = n > 1 ? (size_t)n * k * tapw : 0;
    float *buf = (float *)cuda_scratch(c, 0, sizeof(float) * (2 * split + partial));
    if (!buf) return;
    const phase_view ph = phases_of(c, x, ldx, buf, n, ci, T, V, stride);
    float *part = buf + split, *G = part + partial;
    /* dW_j += sum_i dy_i(window) x_i(window)^T: taps without a window keep a zero partial */
    if (n > 1) cuda_zero(c, part, sizeof(float) * partial);
    for (int j = 0; j < k; j++) {
        int p, sh, t0, t1;
        if (!tap_window(T, j, dil, pad, stride, To, &p, &sh, &t0, &t1)) continue;
        const float *d = dy + (size_t)t0 * V, *xs = ph.base[p] + (size_t)(t0 + sh) * V;
        if (n == 1)
            gemm_rm(c, 0, 1, co, ci, (t1 - t0) * V, 1.0f, d, (int)ToV, 0, xs, ph.ld[p], 0, 1.0f, dW + j * tapw, ci, 0,
                    1);
        else
            gemm_rm(c, 0, 1, co, ci, (t1 - t0) * V, 1.0f, d, (int)ToV, (long long)lddy, xs, ph.ld[p], ph.stride, 0.0f,
                    part + j * tapw, ci, (long long)(k * tapw), n);
    }
    if (n > 1) sum_persons_add(c, dW, part, n, k * tapw);
    rows_sum_add(c, db, dy, lddy, n, co, ToV);
    if (!dx) return;
    /* dx(window) += W_j^T dy(window); into a zeroed phase split of dx when strided */
    float *gbase = dx;
    long long gstride = (long long)lddx;
    if (stride > 1) {
        cuda_zero(c, G, sizeof(float) * split);
        gbase = G;
        gstride = (long long)ci * TV;
    }
    for (int j = 0; j < k; j++) {
        int p, sh, t0, t1;
        if (!tap_window(T, j, dil, pad, stride, To, &p, &sh, &t0, &t1)) continue;
        float *g = stride > 1 ? gbase + (size_t)ci * V * phase_start(T, p, stride) : gbase;
        const int ldg = stride > 1 ? phase_len(T, p, stride) * V : (int)TV;
        gemm_rm(c, 1, 0, ci, (t1 - t0) * V, co, 1.0f, W + j * tapw, ci, 0, dy + (size_t)t0 * V, (int)ToV,
                (long long)lddy, 1.0f, g + (size_t)(t0 + sh) * V, ldg, gstride, n);
    }
    if (stride > 1) LAUNCH(c, phase_merge_add_kernel, split, dx, lddx, G, ci, T, V, stride, split);
}

/* ---- max-pool over time ------------------------------------------------------------------------ */
static __global__ void maxpool_kernel(float *y, size_t ldy, const float *x, size_t ldx, int *argmax,
                                      const float *scale, const float *shift, int C, int T, int V, int s, int To,
                                      size_t count) {
    GRID_STRIDE(e, count) {
        const size_t ToV = (size_t)To * V, per = (size_t)C * ToV, i = e / per, r = e % per;
        const int ch = (int)(r / ToV), t = (int)(r % ToV / V), v = (int)(r % V);
        const float *xr = x + i * ldx + (size_t)ch * T * V;
        int lo, hi;
        pool_window(t, s, T, &lo, &hi);
        int best = lo;
        float m = xr[(size_t)lo * V + v];
        for (int tt = lo + 1; tt <= hi; tt++)
            if (xr[(size_t)tt * V + v] > m) { /* the first maximum wins, as in PyTorch */
                m = xr[(size_t)tt * V + v];
                best = tt;
            }
        y[i * ldy + r] = (scale ? scale[ch] : 1.0f) * m + (shift ? shift[ch] : 0.0f);
        if (argmax) argmax[e] = best;
    }
}

void cuda_maxpool_forward(backend_ctx *c, float *y, size_t ldy, const float *x, size_t ldx, int *argmax,
                          const float *scale, const float *shift, int n, int C, int T, int V, int stride) {
    const int To = (T - 1) / stride + 1;
    const size_t count = (size_t)n * C * To * V;
    LAUNCH(c, maxpool_kernel, count, y, ldy, x, ldx, argmax, scale, shift, C, T, V, stride, To, count);
}

/* Each input value gathers the outputs whose winner it was: no two threads write one value. */
static __global__ void maxpool_back_kernel(float *dx, size_t lddx, const float *dy, size_t lddy, const int *argmax,
                                           int C, int T, int V, int s, int To, size_t count) {
    GRID_STRIDE(e, count) {
        const size_t TV = (size_t)T * V, per = (size_t)C * TV, i = e / per, r = e % per;
        const int ch = (int)(r / TV), tt = (int)(r % TV / V), v = (int)(r % V);
        int t0, t1;
        pool_inverse(tt, s, To, &t0, &t1);
        const size_t row = (i * C + ch) * (size_t)To * V;
        float acc = dx[i * lddx + r];
        for (int t = t0; t <= t1; t++)
            if (argmax[row + (size_t)t * V + v] == tt) acc += dy[i * lddy + (size_t)ch * To * V + (size_t)t * V + v];
        dx[i * lddx + r] = acc;
    }
}

void cuda_maxpool_backward(backend_ctx *c, float *dx, size_t lddx, const float *dy, size_t lddy, const int *argmax,
                           int n, int C, int T, int V, int stride) {
    const int To = (T - 1) / stride + 1;
    const size_t count = (size_t)n * C * T * V;
    LAUNCH(c, maxpool_back_kernel, count, dx, lddx, dy, lddy, argmax, C, T, V, stride, To, count);
}

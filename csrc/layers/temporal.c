/* Temporal layers: the dilated (k,1) convolution and the time max-pool. */
#include <string.h>

#include "layers/layers.h"

int tconv_out_frames(int T, int k, int dil, int stride) {
    const int pad = (k - 1) * dil / 2;
    return (T + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}

void tconv_forward(float *y, int ldy, const float *x, int ldx, const float *w, int cin, int cout,
                   int T, int V, int k, int dil, int stride, float *phase_buf) {
    const int pad = (k - 1) * dil / 2;
    const int To = tconv_out_frames(T, k, dil, stride);
    /* Phase p holds input frames p, p+s, p+2s, ...: output frame t of tap j reads input frame
     * s*t + o (o = j*d - pad), which is frame t + (o-p)/s of phase p = o mod s: a contiguous window. */
    const float *phase[8];
    int phase_len[8], phase_ld[8];
    if (stride == 1) {
        phase[0] = x;
        phase_len[0] = T;
        phase_ld[0] = ldx;
    } else {
        float *dst = phase_buf;
        for (int p = 0; p < stride; p++) {
            const int len = T > p ? (T - p + stride - 1) / stride : 0;
            for (int c = 0; c < cin; c++)
                for (int t = 0; t < len; t++)
                    memcpy(dst + ((size_t)c * len + t) * V, x + (size_t)c * ldx + (size_t)(p + t * stride) * V,
                           sizeof(float) * V);
            phase[p] = dst;
            phase_len[p] = len;
            phase_ld[p] = len * V;
            dst += (size_t)cin * len * V;
        }
    }
    for (int j = 0; j < k; j++) {
        const int o = j * dil - pad;
        const int p = ((o % stride) + stride) % stride;
        const int sh = (o - p) / stride;
        int t0 = sh < 0 ? -sh : 0;
        int t1 = phase_len[p] - sh < To ? phase_len[p] - sh : To;
        if (t1 <= t0) continue;
        gemm(0, 0, cout, (t1 - t0) * V, cin, w + (size_t)j * cout * cin, cin,
             phase[p] + (size_t)(t0 + sh) * V, phase_ld[p], 1.0f, y + (size_t)t0 * V, ldy);
    }
}

CTRGCN_HOT_BODY(maxpool_t_forward, (float *y, int ldy, const float *x, int ldx, const float *scale, int C, int T, int V, int stride)) {
    const int To = (T - 1) / stride + 1;
    for (int c = 0; c < C; c++) {
        const float s = scale ? scale[c] : 1.0f;
        for (int t = 0; t < To; t++) {
            const int c0 = t * stride - 1;
            const int lo = c0 < 0 ? 0 : c0, hi = c0 + 2 < T - 1 ? c0 + 2 : T - 1;
            float *yr = y + (size_t)c * ldy + (size_t)t * V;
            const float *x0 = x + (size_t)c * ldx + (size_t)lo * V;
            for (int v = 0; v < V; v++) {
                float m = x0[v];
                for (int tt = lo + 1; tt <= hi; tt++) {
                    const float a = x0[(size_t)(tt - lo) * V + v];
                    m = a > m ? a : m;
                }
                yr[v] += s * m;
            }
        }
    }
}
CTRGCN_HOT_ENTRY(maxpool_t_forward, (float *y, int ldy, const float *x, int ldx, const float *scale, int C, int T, int V, int stride), (y, ldy, x, ldx, scale, C, T, V, stride))

void tconv_backward(const float *dy, int ldy, const float *x, int ldx, const float *w, float *dx, float *dw,
                    int cin, int cout, int T, int V, int k, int dil, int stride, float *phase_buf) {
    const int pad = (k - 1) * dil / 2;
    const int To = tconv_out_frames(T, k, dil, stride);
    /* Same phase trick as the forward: the input gradient of phase p accumulates in its own
     * buffer and is interleaved back into dx at the end. */
    const float *xp[8];
    float *dxp[8];
    int len[8], ld[8];
    if (stride == 1) {
        xp[0] = x;
        dxp[0] = dx;
        len[0] = T;
        ld[0] = ldx;
    } else {
        float *dst = phase_buf, *gdst = phase_buf + (size_t)cin * T * V;
        for (int p = 0; p < stride; p++) {
            len[p] = T > p ? (T - p + stride - 1) / stride : 0;
            for (int c = 0; c < cin; c++)
                for (int t = 0; t < len[p]; t++)
                    memcpy(dst + ((size_t)c * len[p] + t) * V, x + (size_t)c * ldx + (size_t)(p + t * stride) * V,
                           sizeof(float) * V);
            memset(gdst, 0, sizeof(float) * (size_t)cin * len[p] * V);
            xp[p] = dst;
            dxp[p] = gdst;
            ld[p] = len[p] * V;
            dst += (size_t)cin * len[p] * V;
            gdst += (size_t)cin * len[p] * V;
        }
    }
    for (int j = 0; j < k; j++) {
        const int o = j * dil - pad;
        const int p = ((o % stride) + stride) % stride;
        const int sh = (o - p) / stride;
        const int t0 = sh < 0 ? -sh : 0;
        const int t1 = len[p] - sh < To ? len[p] - sh : To;
        if (t1 <= t0) continue;
        const int cols = (t1 - t0) * V;
        /* dW_j += dy_window @ x_window^T;  dx_window += W_j^T @ dy_window */
        gemm(0, 1, cout, cin, cols, dy + (size_t)t0 * V, ldy, xp[p] + (size_t)(t0 + sh) * V, ld[p], 1.0f,
             dw + (size_t)j * cout * cin, cin);
        gemm(1, 0, cin, cols, cout, w + (size_t)j * cout * cin, cin, dy + (size_t)t0 * V, ldy, 1.0f,
             dxp[p] + (size_t)(t0 + sh) * V, ld[p]);
    }
    if (stride > 1)
        for (int p = 0; p < stride; p++)
            for (int c = 0; c < cin; c++)
                for (int t = 0; t < len[p]; t++) {
                    float *d = dx + (size_t)c * ldx + (size_t)(p + t * stride) * V;
                    const float *g = dxp[p] + ((size_t)c * len[p] + t) * V;
                    for (int v = 0; v < V; v++) d[v] += g[v];
                }
}

void maxpool_t_forward_idx(float *y, int ldy, const float *x, int ldx, int *argmax, int C, int T, int V,
                           int stride) {
    const int To = (T - 1) / stride + 1;
    for (int c = 0; c < C; c++)
        for (int t = 0; t < To; t++) {
            const int c0 = t * stride - 1;
            const int lo = c0 < 0 ? 0 : c0, hi = c0 + 2 < T - 1 ? c0 + 2 : T - 1;
            float *yr = y + (size_t)c * ldy + (size_t)t * V;
            int *ar = argmax + ((size_t)c * To + t) * V;
            for (int v = 0; v < V; v++) {
                int best = lo;
                float m = x[(size_t)c * ldx + (size_t)lo * V + v];
                for (int tt = lo + 1; tt <= hi; tt++) {
                    const float a = x[(size_t)c * ldx + (size_t)tt * V + v];
                    if (a > m) { /* first maximum wins, as PyTorch's max-pool picks it */
                        m = a;
                        best = tt;
                    }
                }
                yr[v] = m;
                ar[v] = best;
            }
        }
}

void maxpool_t_backward(float *dx, int ldx, const float *dy, int ldy, const int *argmax, int C, int To, int V) {
    for (int c = 0; c < C; c++)
        for (int t = 0; t < To; t++) {
            const float *g = dy + (size_t)c * ldy + (size_t)t * V;
            const int *ar = argmax + ((size_t)c * To + t) * V;
            for (int v = 0; v < V; v++) dx[(size_t)c * ldx + (size_t)ar[v] * V + v] += g[v];
        }
}

/* CPU convolutions and pooling over a batch: the 1x1 convolution (stride over time), the
 * temporal convolution as k GEMMs over time-shifted column windows, and the time max-pool.
 * Work items are (person, part): rows or columns of one person when persons are fewer than
 * threads. Parameter gradients are split by output rows, so no thread partials are summed. */
#include <string.h>

#include "backends/cpu/cpu.h"
#include "layers/layers.h"

/* Columns [c0, c1) of x[:, ::s] (x rows of T*V, output columns of To*V) against buf [ci][c1-c0]:
 * gathered into buf (scatter 0), or buf added back into x's columns (scatter 1). Output column
 * col is joint col % V of frame (col / V) * s: runs of one frame are contiguous in x. */
static void strided_cols(float *buf, float *x, int ci, int T, int V, int s, int c0, int c1, int scatter) {
    const int w = c1 - c0;
    for (int col = c0; col < c1;) {
        const int t = col / V, v = col % V, run = V - v < c1 - col ? V - v : c1 - col;
        for (int c = 0; c < ci; c++) {
            float *xs = x + (size_t)c * T * V + (size_t)t * s * V + v, *d = buf + (size_t)c * w + (col - c0);
            if (scatter)
                for (int j = 0; j < run; j++) xs[j] += d[j];
            else
                memcpy(d, xs, sizeof(float) * (size_t)run);
        }
        col += run;
    }
}
static void subsample_cols(float *buf, const float *x, int ci, int T, int V, int s, int c0, int c1) {
    strided_cols(buf, (float *)x, ci, T, V, s, c0, c1, 0); /* read only: scatter 0 */
}

/* ---- time phases: the strided reads of both convolutions, and their parameter gradients ---- */
typedef struct {
    const float *x[8];
    int len[8], ld[8];
} phases;

/* Phase p holds frames p, p+s, ...: tap j at output frame t reads frame s*t + o (o = j*d - pad),
 * which is frame t + (o - p)/s of phase p = o mod s, a contiguous column window. Phases [0, used)
 * are copied to buf (a 1x1 convolution reads phase 0 alone: x[:, ::s]). */
static void split_phases(phases *ph, const float *x, int ci, int T, int V, int s, int used, float *buf) {
    if (s == 1) {
        ph->x[0] = x;
        ph->len[0] = T;
        ph->ld[0] = T * V;
        return;
    }
    for (int p = 0; p < used; p++) {
        const int len = T > p ? (T - p + s - 1) / s : 0;
        for (int c = 0; c < ci; c++)
            for (int t = 0; t < len; t++)
                memcpy(buf + ((size_t)c * len + t) * V, x + ((size_t)c * T + (size_t)(p + t * s)) * V, sizeof(float) * V);
        ph->x[p] = buf;
        ph->len[p] = len;
        ph->ld[p] = len * V;
        buf += (size_t)ci * len * V;
    }
}

/* The window of tap j: phase p, frame shift sh, output frames [t0, t1). 0 when empty. */
static int tap_window(const phases *ph, int j, int dil, int pad, int s, int To, int *p, int *sh, int *t0, int *t1) {
    const int o = j * dil - pad;
    *p = ((o % s) + s) % s;
    *sh = (o - *p) / s;
    *t0 = *sh < 0 ? -*sh : 0;
    *t1 = ph->len[*p] - *sh < To ? ph->len[*p] - *sh : To;
    return *t1 > *t0;
}

/* Rows and input channels from which the own kernel takes a weight gradient: 32 for a 1x1
 * convolution, TAPS_DW_MIN for a temporal one (whose transposed input serves all its taps) */
#define DW_OWN_MIN 32
#define TAPS_DW_MIN 16
static int dw_own(int rows, int ci, int k) {
#if defined(__GNUC__) && defined(__x86_64__)
    const int least = k > 1 ? TAPS_DW_MIN : DW_OWN_MIN;
    return rows >= least && ci >= least && cpu_has_avx512();
#else
    (void)rows, (void)ci, (void)k;
    return 0;
#endif
}

/* The taps of one person: dW [k][co'][ci] += dy_window x_window^T for rows [r0, r1) of dy
 * (dW's rows at ldw = ci, starting at row r0 of each tap's block), db[r0..r1) += their row sums. */
static void person_param_grads(float *dW, float *db, const float *dy, const float *x, float *buf, int co, int ci,
                               int r0, int r1, int T, int V, int k, int dil, int stride) {
    const int pad = (k - 1) * dil / 2, To = tconv_out_frames(T, k, dil, stride), ToV = To * V;
    const float *d = dy + (size_t)r0 * ToV;
    phases ph;
    if (stride == 1 && dw_own(r1 - r0, ci, k)) {
        /* x transposed into buf ([T*V][ci]: the phases' room, unused at stride 1), then the
         * convolutions' own kernel, dW_j += dy_window (x^T)_window: a tap's window of x^T is a run
         * of its rows, so one transpose serves every tap. Alone, with the operands in cache, a 1x1
         * gradient ran 1.1-1.2x OpenBLAS's NT product, the transpose included, at 64-128 channels
         * (even at 256, slower below 32 rows or input channels, which OpenBLAS keeps); in a training
         * step, where the operands come from memory, the op gains 2-6% (CTRGCN 78 -> 76 ms, lightV2
         * 61 -> 58). */
        const int TV = T * V;
        transpose_f32(buf, ci, x, TV, ci, TV);
        split_phases(&ph, x, ci, T, V, 1, 1, NULL); /* geometry only */
        for (int j = 0; j < k; j++) {
            int p, sh, t0, t1;
            if (!tap_window(&ph, j, dil, pad, 1, To, &p, &sh, &t0, &t1)) continue;
            gemm_accumulate(dW + ((size_t)j * co + r0) * ci, ci, d + (size_t)t0 * V, ToV,
                            buf + (size_t)(t0 + sh) * V * ci, ci, r1 - r0, ci, (t1 - t0) * V);
        }
        if (db) rowsum_add(db + r0, d, ToV, r1 - r0, ToV);
        return;
    }
    split_phases(&ph, x, ci, T, V, stride, k == 1 ? 1 : stride, buf);
    for (int j = 0; j < k; j++) {
        int p, sh, t0, t1;
        if (!tap_window(&ph, j, dil, pad, stride, To, &p, &sh, &t0, &t1)) continue;
        gemm(0, 1, r1 - r0, ci, (t1 - t0) * V, d + (size_t)t0 * V, ToV, ph.x[p] + (size_t)(t0 + sh) * V, ph.ld[p],
             1.0f, dW + ((size_t)j * co + r0) * ci, ci);
    }
    if (db) rowsum_add(db + r0, d, ToV, r1 - r0, ToV);
}

/* dW [k][co][ci] += dy_window x_window^T tap by tap, db += rowsum(dy) (db may be NULL); the 1x1
 * convolution is the case k = 1. With at least as many persons as threads, each thread takes a
 * share of the persons over all rows: thread 0 into dW itself, the others into zeroed partials in
 * their scratch (after the phase copies), summed into dW at the end. Whole rows make the products
 * twice as tall as a band of rows would and each input is packed once, not by every thread: on
 * the NW-UCLA training shapes that measured faster than bands of rows over all persons, which
 * remain for fewer persons than threads. */
static void conv_param_grads(backend_ctx *ctx, float *dW, float *db, const float *dy, size_t lddy, const float *x,
                             size_t ldx, int n, int co, int ci, int T, int V, int k, int dil, int stride) {
    const int team = cpu_team(ctx), base = cpu_slot_base();
    if (n < team || team == 1) {
#pragma omp parallel for num_threads(team) schedule(static)
        for (int part = 0; part < team; part++) {
            int r0, r1;
            cpu_range(co, team, part, 4, &r0, &r1);
            if (r1 <= r0) continue;
            float *buf = cpu_scratch(ctx, base + cpu_thread());
            for (int i = 0; i < n; i++)
                person_param_grads(dW, db, dy + i * lddy, x + i * ldx, buf, co, ci, r0, r1, T, V, k, dil, stride);
        }
        return;
    }
    const size_t wn = (size_t)k * co * ci, phase = ((size_t)ci * T * V + 15) & ~(size_t)15;
#pragma omp parallel num_threads(team)
    {
        const int th = cpu_thread();
        float *buf = cpu_scratch(ctx, base + th), *pw = th ? buf + phase : dW, *pb = th ? pw + wn : db;
        if (th) memset(pw, 0, sizeof(float) * (wn + (db ? (size_t)co : 0)));
        int i0, i1;
        cpu_range(n, team, th, 1, &i0, &i1);
        for (int i = i0; i < i1; i++)
            person_param_grads(pw, db ? pb : NULL, dy + i * lddy, x + i * ldx, buf, co, ci, 0, co, T, V, k, dil,
                               stride);
#pragma omp barrier
        size_t lo, hi; /* the partials summed by slices of dW, then db by thread 0 */
        cpu_span(wn, team, th, 16, &lo, &hi);
        for (int t = 1; t < team; t++) add_into(dW + lo, cpu_scratch(ctx, base + t) + phase + lo, hi - lo);
        if (db && th == 0)
            for (int t = 1; t < team; t++) add_into(db, cpu_scratch(ctx, base + t) + phase + wn, (size_t)co);
    }
}

/* ---- 1x1 convolution ------------------------------------------------------------------------ */
void cpu_conv1x1_forward(backend_ctx *ctx, float *y, size_t ldy, const float *x, size_t ldx, const float *W,
                         const float *b, int n, int co, int ci, int T, int V, int stride, int accumulate) {
    const int ToV = ((T - 1) / stride + 1) * V, TV = T * V;
    const int team = cpu_team(ctx), parts = cpu_parts(n, team), base = cpu_slot_base();
#pragma omp parallel for num_threads(team) schedule(static)
    for (int item = 0; item < n * parts; item++) {
        int c0, c1;
        const int i = cpu_item(item, parts, ToV, 16, &c0, &c1);
        if (c1 <= c0) continue;
        float *yi = y + i * ldy + c0;
        const float *src = x + i * ldx + c0;
        int lds = TV;
        if (stride > 1) {
            float *buf = cpu_scratch(ctx, base + cpu_thread());
            subsample_cols(buf, x + i * ldx, ci, T, V, stride, c0, c1);
            src = buf;
            lds = c1 - c0;
        }
        gemm_taps(yi, ToV, &W, ci, &src, &lds, 1, co, c1 - c0, ci, b, accumulate);
    }
}

void cpu_conv1x1_backward(backend_ctx *ctx, float *dx, size_t lddx, float *dW, float *db, const float *dy,
                          size_t lddy, const float *x, size_t ldx, const float *W, int n, int co, int ci, int T, int V,
                          int stride) {
    const int ToV = ((T - 1) / stride + 1) * V, TV = T * V;
    conv_param_grads(ctx, dW, db, dy, lddy, x, ldx, n, co, ci, T, V, 1, 1, stride);
    if (!dx) return;
    /* dx += W^T dy, by person and column block */
    const int team = cpu_team(ctx), parts = cpu_parts(n, team), base = cpu_slot_base();
#pragma omp parallel for num_threads(team) schedule(static)
    for (int item = 0; item < n * parts; item++) {
        int c0, c1;
        const int i = cpu_item(item, parts, ToV, 16, &c0, &c1);
        if (c1 <= c0) continue;
        const float *d = dy + i * lddy + c0;
        float *dxi = dx + i * lddx;
        if (stride == 1) {
            gemm(1, 0, ci, c1 - c0, co, W, ci, d, ToV, 1.0f, dxi + c0, TV);
            continue;
        }
        float *buf = cpu_scratch(ctx, base + cpu_thread());
        const int w = c1 - c0;
        gemm(1, 0, ci, w, co, W, ci, d, ToV, 0.0f, buf, w);
        strided_cols(buf, dxi, ci, T, V, stride, c0, c1, 1);
    }
}

/* ---- temporal convolution ------------------------------------------------------------------ */
void cpu_tconv_forward(backend_ctx *ctx, float *y, size_t ldy, const float *x, size_t ldx, const float *W,
                       const float *b, int n, int co, int ci, int T, int V, int k, int dil, int stride) {
    const int pad = (k - 1) * dil / 2, To = tconv_out_frames(T, k, dil, stride), ToV = To * V;
    const int team = cpu_team(ctx), parts = cpu_parts(n, team), base = cpu_slot_base();
#pragma omp parallel for num_threads(team) schedule(static)
    for (int item = 0; item < n * parts; item++) {
        int r0, r1;
        const int i = cpu_item(item, parts, co, 4, &r0, &r1);
        if (r1 <= r0) continue;
        float *yi = y + i * ldy + (size_t)r0 * ToV;
        phases ph;
        split_phases(&ph, x + i * ldx, ci, T, V, stride, stride, cpu_scratch(ctx, base + cpu_thread()));
        /* Output frames [f0, f1) see every tap: one product over all of them. The edge frames,
         * where the zero padding drops taps, take the taps that reach them one by one. */
        const float *A[16], *B[16];
        int ld[16], ps[16], shs[16], f0 = 0, f1 = To;
        for (int j = 0; j < k; j++) {
            int p, sh, t0, t1;
            if (!tap_window(&ph, j, dil, pad, stride, To, &p, &sh, &t0, &t1)) t0 = To, t1 = 0;
            f0 = t0 > f0 ? t0 : f0;
            f1 = t1 < f1 ? t1 : f1;
            A[j] = W + ((size_t)j * co + r0) * ci;
            ps[j] = p;
            shs[j] = sh;
            ld[j] = ph.ld[p];
        }
        if (f1 <= f0) f0 = f1 = 0; /* no frame sees every tap */
        const float *bias = b ? b + r0 : NULL;
        if (f1 > f0) {
            for (int j = 0; j < k; j++) B[j] = ph.x[ps[j]] + (size_t)(f0 + shs[j]) * V;
            gemm_taps(yi + (size_t)f0 * V, ToV, A, ci, B, ld, k, r1 - r0, (f1 - f0) * V, ci, bias, 0);
        }
        for (int e = 0; e < 2; e++) { /* the frames before f0, then those from f1 */
            const int e0 = e ? f1 : 0, e1 = e ? To : f0;
            if (e1 <= e0) continue;
            rows_fill(yi + (size_t)e0 * V, ToV, bias, r1 - r0, (e1 - e0) * V);
            for (int j = 0; j < k; j++) {
                int p, sh, t0, t1;
                if (!tap_window(&ph, j, dil, pad, stride, To, &p, &sh, &t0, &t1)) continue;
                t0 = t0 > e0 ? t0 : e0;
                t1 = t1 < e1 ? t1 : e1;
                if (t1 > t0)
                    gemm(0, 0, r1 - r0, (t1 - t0) * V, ci, A[j], ci, ph.x[p] + (size_t)(t0 + sh) * V, ph.ld[p], 1.0f,
                         yi + (size_t)t0 * V, ToV);
            }
        }
    }
}

void cpu_tconv_backward(backend_ctx *ctx, float *dx, size_t lddx, float *dW, float *db, const float *dy, size_t lddy,
                        const float *x, size_t ldx, const float *W, int n, int co, int ci, int T, int V, int k,
                        int dil, int stride) {
    const int pad = (k - 1) * dil / 2, To = tconv_out_frames(T, k, dil, stride), ToV = To * V, TV = T * V;
    conv_param_grads(ctx, dW, db, dy, lddy, x, ldx, n, co, ci, T, V, k, dil, stride);
    if (!dx) return;
    /* dx_window += W_j^T dy_window, by person and band of input rows; phases of dx when s > 1 */
    const int team = cpu_team(ctx), parts = cpu_parts(n, team), base = cpu_slot_base();
#pragma omp parallel for num_threads(team) schedule(static)
    for (int item = 0; item < n * parts; item++) {
        int q0, q1;
        const int i = cpu_item(item, parts, ci, 4, &q0, &q1);
        if (q1 <= q0) continue;
        const int rows = q1 - q0;
        float *dxi = dx + i * lddx + (size_t)q0 * TV;
        const float *d = dy + i * lddy;
        phases ph; /* geometry only: the windows of dx */
        float *gbuf = cpu_scratch(ctx, base + cpu_thread());
        float *gp[8];
        if (stride == 1) {
            ph.len[0] = T;
            ph.ld[0] = TV;
            gp[0] = dxi;
        } else {
            float *g = gbuf;
            for (int p = 0; p < stride; p++) {
                ph.len[p] = T > p ? (T - p + stride - 1) / stride : 0;
                ph.ld[p] = ph.len[p] * V;
                gp[p] = g;
                memset(g, 0, sizeof(float) * (size_t)rows * ph.ld[p]);
                g += (size_t)rows * ph.ld[p];
            }
        }
        for (int j = 0; j < k; j++) {
            int p, sh, t0, t1;
            if (!tap_window(&ph, j, dil, pad, stride, To, &p, &sh, &t0, &t1)) continue;
            gemm(1, 0, rows, (t1 - t0) * V, co, W + (size_t)j * co * ci + q0, ci, d + (size_t)t0 * V, ToV, 1.0f,
                 gp[p] + (size_t)(t0 + sh) * V, ph.ld[p]);
        }
        if (stride > 1)
            for (int p = 0; p < stride; p++)
                for (int c = 0; c < rows; c++)
                    for (int t = 0; t < ph.len[p]; t++) {
                        float *o = dxi + (size_t)c * TV + (size_t)(p + t * stride) * V;
                        const float *g = gp[p] + ((size_t)c * ph.len[p] + t) * V;
                        for (int v = 0; v < V; v++) o[v] += g[v];
                    }
    }
}

/* ---- max-pool over time ---------------------------------------------------------------------- */
/* One output frame: y[v] = sc * max over frames [lo, hi] of x[t][v] + sf, the first maximum winning
 * (as in PyTorch); arg (may be NULL) receives its frame. Frame by frame over the joints, with
 * selects, not branches, and a copy with and one without arg: a frame loop inside the joint loop,
 * or a store under `if (arg)`, kept it from vectorising (training's max-pool ran scalar). */
CTRGCN_HOT_BODY(maxpool_frame, (float *y, int *arg, const float *x, int lo, int hi, int V, float sc, float sf)) {
    const float *x0 = x + (size_t)lo * V;
    if (arg) {
#pragma omp simd
        for (int v = 0; v < V; v++) {
            y[v] = x0[v];
            arg[v] = lo;
        }
        for (int tt = lo + 1; tt <= hi; tt++) {
            const float *xt = x + (size_t)tt * V;
#pragma omp simd
            for (int v = 0; v < V; v++) {
                const int take = xt[v] > y[v];
                y[v] = take ? xt[v] : y[v];
                arg[v] = take ? tt : arg[v];
            }
        }
    } else {
#pragma omp simd
        for (int v = 0; v < V; v++) y[v] = x0[v];
        for (int tt = lo + 1; tt <= hi; tt++) {
            const float *xt = x + (size_t)tt * V;
#pragma omp simd
            for (int v = 0; v < V; v++) y[v] = xt[v] > y[v] ? xt[v] : y[v];
        }
    }
#pragma omp simd
    for (int v = 0; v < V; v++) y[v] = sc * y[v] + sf;
}
CTRGCN_HOT_ENTRY(maxpool_frame, (float *y, int *arg, const float *x, int lo, int hi, int V, float sc, float sf),
                 (y, arg, x, lo, hi, V, sc, sf))

/* Stride 1 without argmax (eval): the interior frames of one channel as a single run over its
 * T*V values, y[e] = sc * max(x[e-V], x[e], x[e+V]) + sf: one long vector loop instead of T
 * loops of V (25 joints fill one and a half 16-lane vectors); the first and last frames by
 * maxpool_frame. */
CTRGCN_HOT_BODY(maxpool_inner, (float *y, const float *x, size_t lo, size_t hi, int V, float sc, float sf)) {
#pragma omp simd
    for (size_t e = lo; e < hi; e++) {
        float m = x[e - V]; /* compared in maxpool_frame's order: the same result for NaN */
        m = x[e] > m ? x[e] : m;
        m = x[e + V] > m ? x[e + V] : m;
        y[e] = sc * m + sf;
    }
}
CTRGCN_HOT_ENTRY(maxpool_inner, (float *y, const float *x, size_t lo, size_t hi, int V, float sc, float sf),
                 (y, x, lo, hi, V, sc, sf))

void cpu_maxpool_forward(backend_ctx *ctx, float *y, size_t ldy, const float *x, size_t ldx, int *argmax,
                         const float *scale, const float *shift, int n, int C, int T, int V, int stride) {
    const int To = (T - 1) / stride + 1, TV = T * V, ToV = To * V;
    const int team = cpu_team(ctx), parts = cpu_parts(n, team);
#pragma omp parallel for num_threads(team) schedule(static)
    for (int item = 0; item < n * parts; item++) {
        int c0, c1;
        const int i = cpu_item(item, parts, C, 1, &c0, &c1);
        for (int c = c0; c < c1; c++) {
            const float sc = scale ? scale[c] : 1.0f, sf = shift ? shift[c] : 0.0f;
            const float *xr = x + i * ldx + (size_t)c * TV;
            float *yr = y + i * ldy + (size_t)c * ToV;
            int *ar = argmax ? argmax + ((size_t)i * C + c) * ToV : NULL;
            if (stride == 1 && !ar && T > 2) {
                maxpool_frame(yr, NULL, xr, 0, 1, V, sc, sf);
                maxpool_inner(yr, xr, (size_t)V, (size_t)(T - 1) * V, V, sc, sf);
                maxpool_frame(yr + (size_t)(T - 1) * V, NULL, xr, T - 2, T - 1, V, sc, sf);
                continue;
            }
            for (int t = 0; t < To; t++) {
                const int lo = t * stride - 1 < 0 ? 0 : t * stride - 1;
                const int hi = t * stride + 1 < T - 1 ? t * stride + 1 : T - 1;
                maxpool_frame(yr + (size_t)t * V, ar ? ar + (size_t)t * V : NULL, xr, lo, hi, V, sc, sf);
            }
        }
    }
}

void cpu_maxpool_backward(backend_ctx *ctx, float *dx, size_t lddx, const float *dy, size_t lddy, const int *argmax,
                          int n, int C, int T, int V, int stride) {
    const int To = (T - 1) / stride + 1, TV = T * V, ToV = To * V;
    const int team = cpu_team(ctx), parts = cpu_parts(n, team);
#pragma omp parallel for num_threads(team) schedule(static)
    for (int item = 0; item < n * parts; item++) {
        int c0, c1;
        const int i = cpu_item(item, parts, C, 1, &c0, &c1);
        for (int c = c0; c < c1; c++) {
            const float *g = dy + i * lddy + (size_t)c * ToV;
            const int *ar = argmax + ((size_t)i * C + c) * ToV;
            float *d = dx + i * lddx + (size_t)c * TV;
            for (int t = 0; t < To; t++)
                for (int v = 0; v < V; v++) d[(size_t)ar[(size_t)t * V + v] * V + v] += g[(size_t)t * V + v];
        }
    }
}

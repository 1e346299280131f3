/* Channel-wise topology refinement: the relation and the per-channel graph aggregation. */
#include <math.h>

#include "layers/layers.h"

void ctrgc_relation(float *relT, const float *q, const float *k, int R, int V) {
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) {
            const float kv = k[(size_t)r * V + v];
            float *dst = relT + ((size_t)r * V + v) * V;
            for (int u = 0; u < V; u++) dst[u] = tanhf(q[(size_t)r * V + u] - kv);
        }
}

CTRGCN_HOT void ctrgc_aggregate(float *y, const float *val, const float *AT, const float *base,
                                const float *shift, int C, int T, int V, int nsub, int relu) {
    float acc[CTRGCN_AGG_MAXV];
    for (int c = 0; c < C; c++) {
        const float sh = shift ? shift[c] : 0.0f;
        for (int t = 0; t < T; t++) {
            const size_t row = ((size_t)c * T + t) * V;
            for (int u = 0; u < V; u++) acc[u] = sh + (base ? base[row + u] : 0.0f);
            for (int i = 0; i < nsub; i++) {
                const float *vrow = val + (((size_t)i * C + c) * T + t) * V;
                const float *A = AT + ((size_t)i * C + c) * V * V;
                for (int v = 0; v < V; v++) {
                    const float a = vrow[v];
                    const float *Av = A + (size_t)v * V;
                    for (int u = 0; u < V; u++) acc[u] += a * Av[u];
                }
            }
            float *yr = y + row;
            if (relu)
                for (int u = 0; u < V; u++) yr[u] = acc[u] > 0.0f ? acc[u] : 0.0f;
            else
                for (int u = 0; u < V; u++) yr[u] = acc[u];
        }
    }
}

CTRGCN_HOT void ctrgc_aggregate_backward(float *dval, float *dAT, const float *dy, const float *val,
                                         const float *AT, int C, int T, int V, int nsub) {
    for (int i = 0; i < nsub; i++)
        for (int c = 0; c < C; c++) {
            const float *A = AT + ((size_t)i * C + c) * V * V;
            float *dA = dAT + ((size_t)i * C + c) * V * V;
            const float *vr = val + ((size_t)i * C + c) * T * V;
            float *dv = dval + ((size_t)i * C + c) * T * V;
            const float *g = dy + (size_t)c * T * V;
            for (int e = 0; e < V * V; e++) dA[e] = 0.0f;
            for (int t = 0; t < T; t++) {
                const float *gt = g + (size_t)t * V, *vt = vr + (size_t)t * V;
                float *dvt = dv + (size_t)t * V;
                for (int v = 0; v < V; v++) {
                    const float *Av = A + (size_t)v * V;
                    float *dAv = dA + (size_t)v * V;
                    float acc = 0.0f;
                    const float a = vt[v];
                    for (int u = 0; u < V; u++) {
                        acc += gt[u] * Av[u];
                        dAv[u] += a * gt[u];
                    }
                    dvt[v] = acc;
                }
            }
        }
}

void ctrgc_relation_backward(float *dq, float *dk, const float *drelT, const float *relT, int R, int V) {
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) {
            const float *g = drelT + ((size_t)r * V + v) * V, *rl = relT + ((size_t)r * V + v) * V;
            float sum = 0.0f;
            for (int u = 0; u < V; u++) {
                const float d = g[u] * (1.0f - rl[u] * rl[u]);
                dq[(size_t)r * V + u] += d;
                sum += d;
            }
            dk[(size_t)r * V + v] -= sum;
        }
}

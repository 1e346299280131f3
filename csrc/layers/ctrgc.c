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

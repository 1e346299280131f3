/* CPU ops of the channel-wise topology refinement (CTR-GC): time mean, relation, refined
 * adjacency and the per-channel aggregation, over a batch. */
#include <string.h>

#include "backends/cpu/cpu.h"
#include "layers/layers.h"

void cpu_mean_time_forward(backend_ctx *ctx, float *y, const float *x, size_t ldx, int n, int C, int T, int V) {
    const int team = cpu_team(ctx);
#pragma omp parallel for num_threads(team) schedule(static)
    for (int i = 0; i < n; i++) mean_time(y + (size_t)i * C * V, x + i * ldx, C, T, V);
}

void cpu_mean_time_backward(backend_ctx *ctx, float *dx, size_t lddx, const float *dy, int n, int C, int T, int V) {
    const int team = cpu_team(ctx);
    const float inv = 1.0f / (float)T;
#pragma omp parallel for num_threads(team) schedule(static)
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++) {
            const float *g = dy + ((size_t)i * C + c) * V;
            float *d = dx + i * lddx + (size_t)c * T * V;
            for (int t = 0; t < T; t++)
                for (int v = 0; v < V; v++) d[(size_t)t * V + v] += g[v] * inv;
        }
}

void cpu_relation_forward(backend_ctx *ctx, float *rel, const float *qk, int n, int nrel, int R, int V) {
    const int team = cpu_team(ctx), nq = nrel * R;
#pragma omp parallel for num_threads(team) schedule(static)
    for (int i = 0; i < n; i++)
        for (int j = 0; j < nrel; j++) {
            const float *q = qk + (size_t)i * 2 * nq * V;
            ctrgc_relation(rel + ((size_t)i * nq + (size_t)j * R) * V * V, q + (size_t)j * R * V,
                           q + (size_t)(nq + j * R) * V, R, V);
        }
}

void cpu_relation_backward(backend_ctx *ctx, float *dqk, const float *drel, const float *rel, int n, int nrel, int R,
                           int V) {
    const int team = cpu_team(ctx), nq = nrel * R;
#pragma omp parallel for num_threads(team) schedule(static)
    for (int i = 0; i < n; i++) {
        float *dq = dqk + (size_t)i * 2 * nq * V;
        memset(dq, 0, sizeof(float) * 2 * nq * V);
        for (int j = 0; j < nrel; j++) {
            const size_t off = ((size_t)i * nq + (size_t)j * R) * V * V;
            ctrgc_relation_backward(dq + (size_t)j * R * V, dq + (size_t)(nq + j * R) * V, drel + off, rel + off, R, V);
        }
    }
}

/* Rows [lo, hi) of subset j within [r0, r1): 0 when they do not meet. */
static int subset_rows(int j, int C, int r0, int r1, int *lo, int *hi) {
    *lo = r0 > j * C ? r0 : j * C;
    *hi = r1 < (j + 1) * C ? r1 : (j + 1) * C;
    return *hi > *lo;
}

void cpu_adjacency_forward(backend_ctx *ctx, float *AT, float *pre, const float *rel, const float *W4, const float *b4,
                           const float *alpha, const float *PA, int n, int nrel, int C, int R, int V) {
    const int VV = V * V, team = cpu_team(ctx), parts = cpu_parts(n, team), base = cpu_slot_base();
    const float a = *alpha;
#pragma omp parallel num_threads(team)
    {
        /* PA transposed once per thread, so the epilogue below streams both operands */
        float *PAT = cpu_scratch(ctx, base + cpu_thread());
        for (int j = 0; j < 3; j++)
            for (int v = 0; v < V; v++)
                for (int u = 0; u < V; u++) PAT[(size_t)j * VV + v * V + u] = PA[(size_t)j * VV + u * V + v];
#pragma omp for schedule(static)
        for (int item = 0; item < n * parts; item++) {
            int r0, r1;
            const int i = cpu_item(item, parts, 3 * C, 4, &r0, &r1);
            float *A = AT + (size_t)i * 3 * C * VV;
            const float *rl = rel + (size_t)i * nrel * R * VV;
            for (int j = 0; j < 3; j++) {
                int lo, hi;
                if (!subset_rows(j, C, r0, r1, &lo, &hi)) continue;
                const float *Wj = W4 + (size_t)lo * R, *rj = rl + (size_t)(nrel == 1 ? 0 : j) * R * VV;
                const float *PATj = PAT + (size_t)j * VV;
                if (!pre) { /* eval: AT straight from the product's epilogue, nothing else written */
                    gemm_affine(A + (size_t)lo * VV, VV, Wj, R, rj, VV, hi - lo, VV, R, b4 + lo, a, PATj);
                    continue;
                }
                float *P = pre + (size_t)i * 3 * C * VV;
                gemm_taps(P + (size_t)lo * VV, VV, &Wj, R, &rj, &VV, 1, hi - lo, VV, R, b4 + lo, 0);
                for (int row = lo; row < hi; row++)
                    scale_add(A + (size_t)row * VV, P + (size_t)row * VV, a, PATj, (size_t)VV);
            }
        }
    }
}

/* Person by person and subset by subset, so that one subset's dAT (C x V*V floats) stays in cache
 * through all its uses: dalpha and dPA, the scaling into d(pre), db4, dW4 and drel. (Three sweeps
 * over the whole batch's dAT, as this was first written, cost twice as long: at the wide blocks
 * the batch's dAT is tens of MB.) Each thread's dPA, dW4 and db4 go to partials in its scratch
 * ([3][V][V] | [3C][R] | [3C]), summed at the end. */
void cpu_adjacency_backward(backend_ctx *ctx, float *drel, float *dW4, float *db4, float *dalpha, float *dPA,
                            float *dAT, const float *pre, const float *rel, const float *W4, const float *alpha, int n,
                            int nrel, int C, int R, int V) {
    const int VV = V * V, team = cpu_team(ctx), base = cpu_slot_base(), used = n < team ? n : team;
    const size_t nW = (size_t)3 * C * R, part = (size_t)3 * VV + nW + 3 * (size_t)C;
    const float a = *alpha;
    double da = 0.0;
    for (int t = 0; t < used; t++) memset(cpu_scratch(ctx, base + t), 0, sizeof(float) * part);
#pragma omp parallel for num_threads(used) schedule(static) reduction(+ : da)
    for (int i = 0; i < n; i++) {
        float *pPA = cpu_scratch(ctx, base + cpu_thread()), *pW = pPA + 3 * VV, *pb = pW + nW;
        float *dr = drel + (size_t)i * nrel * R * VV;
        for (int j = 0; j < 3; j++) {
            float *g = dAT + ((size_t)i * 3 * C + (size_t)j * C) * VV;
            const float *P = pre + ((size_t)i * 3 * C + (size_t)j * C) * VV;
            const float *rj = rel + ((size_t)i * nrel + (nrel == 1 ? 0 : j)) * R * VV;
            float *pj = pPA + (size_t)j * VV; /* [v][u]: transposed once, below */
            for (int row = 0; row < C; row++) {
                float *gr = g + (size_t)row * VV;
                dot_f64(gr, P + (size_t)row * VV, (size_t)VV, &da);
                for (int e = 0; e < VV; e++) {
                    pj[e] += gr[e];
                    gr[e] *= a;
                }
            }
            rowsum_add(pb + (size_t)j * C, g, VV, C, VV);
            gemm(0, 1, C, R, VV, g, VV, rj, VV, 1.0f, pW + (size_t)j * C * R, R);
            const float *Wj = W4 + (size_t)j * C * R;
            if (nrel == 1) /* one relation read by all three subsets: their d(rel) summed */
                gemm(1, 0, R, VV, C, Wj, R, g, VV, j ? 1.0f : 0.0f, dr, VV);
            else
                gemm(1, 0, R, VV, C, Wj, R, g, VV, 0.0f, dr + (size_t)j * R * VV, VV);
        }
    }
    for (int t = 0; t < used; t++) {
        const float *pPA = cpu_scratch(ctx, base + t), *pW = pPA + 3 * VV, *pb = pW + nW;
        for (int j = 0; j < 3; j++)
            for (int v = 0; v < V; v++)
                for (int u = 0; u < V; u++) dPA[(size_t)j * VV + u * V + v] += pPA[(size_t)j * VV + v * V + u];
        add_into(dW4, pW, nW);
        add_into(db4, pb, 3 * (size_t)C);
    }
    *dalpha += (float)da;
}

void cpu_aggregate_forward(backend_ctx *ctx, float *y, size_t ldy, const float *val, size_t ldval, const float *AT,
                           const float *base, size_t ldbase, const float *shift, int relu, int n, int C, int T, int V) {
    const int team = cpu_team(ctx), parts = cpu_parts(n, team);
#pragma omp parallel for num_threads(team) schedule(static)
    for (int item = 0; item < n * parts; item++) {
        int c0, c1;
        const int i = cpu_item(item, parts, C, 1, &c0, &c1);
        ctrgc_aggregate_rows(y + i * ldy, val + i * ldval, AT + (size_t)i * 3 * C * V * V,
                             base ? base + i * ldbase : NULL, shift, C, c0, c1, T, V, 3, relu);
    }
}

void cpu_aggregate_backward(backend_ctx *ctx, float *dval, size_t lddval, float *dAT, const float *dy, size_t lddy,
                            const float *val, size_t ldval, const float *AT, int n, int C, int T, int V) {
    const int team = cpu_team(ctx), parts = cpu_parts(n, team), base = cpu_slot_base();
#pragma omp parallel for num_threads(team) schedule(static)
    for (int item = 0; item < n * parts; item++) {
        int c0, c1;
        const int i = cpu_item(item, parts, C, 1, &c0, &c1);
        ctrgc_aggregate_backward_rows(dval + i * lddval, dAT + (size_t)i * 3 * C * V * V, dy + i * lddy,
                                      val + i * ldval, AT + (size_t)i * 3 * C * V * V, C, c0, c1, T, V, 3,
                                      cpu_scratch(ctx, base + cpu_thread()));
    }
}

/* CPU ops of the channel-wise topology refinement (CTR-GC): time mean, relation, refined
 * adjacency and the per-channel aggregation, over a batch. */
#include <string.h>

#include "backends/cpu/cpu.h"
#include "layers/layers.h"

/* With fewer persons than threads (batch 1) each thread takes a range of channels, the range the
 * op before it wrote on that thread, so the time mean reads from its own core's cache. */
void cpu_mean_time_forward(backend_ctx *ctx, float *y, const float *x, size_t ldx, int n, int C, int T, int V) {
    const int team = cpu_team(ctx), parts = cpu_parts(n, team);
#pragma omp parallel for num_threads(team) schedule(static)
    for (int item = 0; item < n * parts; item++) {
        int c0, c1;
        const int i = cpu_item(item, parts, C, 1, &c0, &c1);
        if (c1 > c0) mean_time(y + ((size_t)i * C + c0) * V, x + i * ldx + (size_t)c0 * T * V, c1 - c0, T, V);
    }
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

/* Rows r of the nrel*R relation rows of a person, split among threads at batch 1 (a row needs only
 * its own q and k rows). */
void cpu_relation_forward(backend_ctx *ctx, float *rel, const float *qk, int n, int nrel, int R, int V) {
    const int team = cpu_team(ctx), nq = nrel * R, parts = cpu_parts(n, team);
#pragma omp parallel for num_threads(team) schedule(static)
    for (int item = 0; item < n * parts; item++) {
        int r0, r1;
        const int i = cpu_item(item, parts, nq, 1, &r0, &r1);
        const float *q = qk + (size_t)i * 2 * nq * V;
        if (r1 > r0)
            ctrgc_relation(rel + ((size_t)i * nq + r0) * V * V, q + (size_t)r0 * V, q + (size_t)(nq + r0) * V, r1 - r0,
                           V);
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

void cpu_adjacency_forward(backend_ctx *ctx, float *AT, const float *rel, const float *W4, const float *b4,
                           const float *alpha, const float *PA, int n, int nrel, int C, int R, int V) {
    const int VV = V * V, team = cpu_team(ctx), parts = cpu_parts(n, team), base = cpu_slot_base();
    const float a = *alpha;
#pragma omp parallel num_threads(team)
    {
        /* PA transposed once per thread, so the product's epilogue streams both operands */
        float *PAT = cpu_scratch(ctx, base + cpu_thread());
        for (int j = 0; j < 3; j++)
            for (int v = 0; v < V; v++)
                for (int u = 0; u < V; u++) PAT[(size_t)j * VV + v * V + u] = PA[(size_t)j * VV + u * V + v];
        /* At batch 1 each thread takes the same channel range of every subset: the range the
         * aggregation after it reads on that thread (rows c, C + c, 2C + c), so the adjacency
         * stays in the cache of the core that wrote it. */
#pragma omp for schedule(static)
        for (int item = 0; item < n * parts; item++) {
            int c0, c1;
            const int i = cpu_item(item, parts, C, 1, &c0, &c1);
            const float *rl = rel + (size_t)i * nrel * R * VV;
            for (int j = 0; j < 3 && c1 > c0; j++) {
                const int lo = j * C + c0;
                const float *rj = rl + (size_t)(nrel == 1 ? 0 : j) * R * VV;
                gemm_affine(AT + ((size_t)i * 3 * C + lo) * VV, VV, W4 + (size_t)lo * R, R, rj, VV, c1 - c0, VV, R,
                            b4 + lo, a, PAT + (size_t)j * VV);
            }
        }
    }
}

/* Every gradient is linear in alpha but dalpha, so the products run on the unscaled dAT and alpha
 * scales their small results; dalpha = sum dAT * pre with pre = W4 rel + b4 is, row by row,
 * sum_r W4[row][r] G[row][r] + b4[row] rowsum(dAT[row]) with G = dAT rel^T, the product dW4 takes
 * anyway. So the forward keeps no pre (at the wide blocks tens of MB written, then read back) and
 * dAT is read, never rewritten. Person by person and subset by subset, so that one subset's dAT
 * (C x V*V floats) stays in cache through its pass (dPA, row sums) and its two products. Each
 * thread's dPA, dW4 and db4 go to partials in its scratch ([3][V][V] | [3C][R] | [3C]) with room
 * for one subset's G and row sums after them; the partials are summed at the end. */
void cpu_adjacency_backward(backend_ctx *ctx, float *drel, float *dW4, float *db4, float *dalpha, float *dPA,
                            const float *dAT, const float *rel, const float *W4, const float *b4, const float *alpha,
                            int n, int nrel, int C, int R, int V) {
    const int VV = V * V, team = cpu_team(ctx), base = cpu_slot_base(), used = n < team ? n : team;
    const size_t nW = (size_t)3 * C * R, part = (size_t)3 * VV + nW + 3 * (size_t)C;
    const float a = *alpha;
    double da = 0.0;
    for (int t = 0; t < used; t++) memset(cpu_scratch(ctx, base + t), 0, sizeof(float) * part);
#pragma omp parallel for num_threads(used) schedule(static) reduction(+ : da)
    for (int i = 0; i < n; i++) {
        float *pPA = cpu_scratch(ctx, base + cpu_thread()), *pW = pPA + 3 * VV, *pb = pW + nW;
        float *G = pPA + part, *rs = G + (size_t)C * R;
        float *dr = drel + (size_t)i * nrel * R * VV;
        for (int j = 0; j < 3; j++) {
            const float *g = dAT + ((size_t)i * 3 * C + (size_t)j * C) * VV;
            const float *rj = rel + ((size_t)i * nrel + (nrel == 1 ? 0 : j)) * R * VV;
            const float *Wj = W4 + (size_t)j * C * R, *bj = b4 + (size_t)j * C;
            float *pj = pPA + (size_t)j * VV; /* [v][u]: transposed once, below */
            for (int row = 0; row < C; row++) add_into(pj, g + (size_t)row * VV, (size_t)VV);
            memset(rs, 0, sizeof(float) * (size_t)C);
            rowsum_add(rs, g, VV, C, VV);
            gemm(0, 1, C, R, VV, g, VV, rj, VV, 0.0f, G, R);
            double dj = 0.0;
            for (int row = 0; row < C; row++) {
                float *wr = pW + ((size_t)j * C + row) * R;
                for (int r = 0; r < R; r++) {
                    wr[r] += a * G[(size_t)row * R + r];
                    dj += (double)Wj[(size_t)row * R + r] * G[(size_t)row * R + r];
                }
                pb[(size_t)j * C + row] += a * rs[row];
                dj += (double)bj[row] * rs[row];
            }
            da += dj;
            /* d(rel) = alpha W4^T dAT; one relation read by all three subsets: their d(rel) summed */
            if (nrel == 1)
                gemm(1, 0, R, VV, C, Wj, R, g, VV, j ? 1.0f : 0.0f, dr, VV);
            else
                gemm(1, 0, R, VV, C, Wj, R, g, VV, 0.0f, dr + (size_t)j * R * VV, VV);
        }
        for (size_t e = 0; e < (size_t)nrel * R * VV; e++) dr[e] *= a;
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

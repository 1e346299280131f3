/* The eval driver: data_bn, ten blocks and the head, one person at a time per thread.
 * Persons are independent in the backbone at eval time, so each thread carries one person through
 * every block inside its own workspace (planned once per (N, T)), which keeps a person's
 * activations in cache and needs no synchronisation until the head. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/error.h"
#include "core/model.h"
#include "layers/layers.h"

static int max_i(int a, int b) { return a > b ? a : b; }

/* Floats of one thread's workspace for input length T, filling ws pointers when base != NULL. */
static size_t workspace_layout(const ctrgcn_model *m, int T, float *base, workspace *ws) {
    const int V = m->spec.num_joints;
    size_t act = 0, g = 0, G = 0, P = 0, sub = 0, xm = 0, qk = 0, rel = 0, AT = 0;
    int t = T;
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) {
        const block_layout *L = &m->blocks[k];
        const int to = (t - 1) / L->stride + 1;
        act = (size_t)max_i((int)act, max_i(L->cin * t * V, L->cout * to * V));
        if (L->has_gcn) {
            const size_t gc = L->gcn_cout;
            g = g > gc * t * V ? g : gc * t * V;
            const size_t nG = (3 * gc + (L->down == 2 ? gc : 0)) * t * V;
            G = G > nG ? G : nG;
            xm = xm > (size_t)L->gcn_cin * V ? xm : (size_t)L->gcn_cin * V;
            qk = qk > (size_t)2 * L->nrel * L->R * V ? qk : (size_t)2 * L->nrel * L->R * V;
            rel = rel > (size_t)L->nrel * L->R * V * V ? rel : (size_t)L->nrel * L->R * V * V;
            AT = AT > 3 * gc * V * V ? AT : 3 * gc * V * V;
        }
        const size_t nP = (size_t)3 * L->B * t * V;
        P = P > nP ? P : nP;
        const size_t ns = (size_t)max_i(L->cin, L->tcn_cin) * to * V;
        sub = sub > ns ? sub : ns;
        t = to;
    }
    const size_t phase = P; /* one branch's B*T*V at most, P is larger */
    const size_t pooled = m->blocks[CTRGCN_NUM_BLOCKS - 1].cout;
    const size_t sizes[] = {act, act, g, G, P, phase, sub, xm, qk, rel, AT, pooled};
    float **slots[] = {&ws->xa, &ws->xb, &ws->g, &ws->G, &ws->P, &ws->phase, &ws->sub,
                       &ws->xm, &ws->qk, &ws->relT, &ws->AT, &ws->pooled};
    size_t used = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (base) *slots[i] = base + used;
        used += (sizes[i] + 15) & ~(size_t)15; /* 64-byte aligned slots */
    }
    return used;
}

static ctrgcn_status plan(ctrgcn_model *m, int N, int T, int threads) {
    if (m->plan_N == N && m->plan_T == T && m->plan_threads == threads && m->ws_mem) return CTRGCN_OK;
    free(m->ws_mem);
    free(m->ws);
    free(m->pooled);
    m->ws_mem = NULL;
    m->ws = NULL;
    m->pooled = NULL;
    m->plan_N = m->plan_T = m->plan_threads = 0;
    workspace probe;
    const size_t per = workspace_layout(m, T, NULL, &probe);
    const size_t feat = m->blocks[CTRGCN_NUM_BLOCKS - 1].cout;
    m->ws_mem = aligned_alloc(64, sizeof(float) * per * threads);
    m->ws = calloc((size_t)threads, sizeof *m->ws);
    m->pooled = malloc(sizeof(float) * (size_t)N * m->spec.num_person * feat);
    if (!m->ws_mem || !m->ws || !m->pooled)
        return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory planning a forward of N=%d, T=%d", N, T);
    for (int i = 0; i < threads; i++) workspace_layout(m, T, m->ws_mem + per * i, &m->ws[i]);
    m->ws_floats = per;
    m->plan_N = N;
    m->plan_T = T;
    m->plan_threads = threads;
    return CTRGCN_OK;
}

/* Spatial module: x [ci][T][V] -> ws->g [gc][T][V] (BN, down path and ReLU included). */
static void gcn_forward(const ctrgcn_model *m, const block_layout *L, const packed_block *pb,
                        const float *x, int T, workspace *ws) {
    const int V = m->spec.num_joints, ci = L->gcn_cin, gc = L->gcn_cout, R = L->R, TV = T * V;
    const int nq = L->nrel * R, nvd = 3 * gc + (L->down == 2 ? gc : 0);
    /* q and k see the time mean only: mean_T(conv(x)) = conv(mean_T(x)) */
    mean_time(ws->xm, x, ci, T, V);
    rows_fill(ws->qk, V, pb->bqk, 2 * nq, V);
    gemm(0, 0, 2 * nq, V, ci, pb->Wqk, ci, ws->xm, V, 1.0f, ws->qk, V);
    for (int j = 0; j < L->nrel; j++)
        ctrgc_relation(ws->relT + (size_t)j * R * V * V, ws->qk + (size_t)j * R * V,
                       ws->qk + (size_t)(nq + j * R) * V, R, V);
    /* refined adjacency, transposed: AT_i = alpha*conv(rel_i) + b + A_i^T */
    for (int i = 0; i < 3; i++)
        for (int c = 0; c < gc; c++) {
            float *dst = ws->AT + ((size_t)i * gc + c) * V * V;
            const float *A = pb->AT + (size_t)i * V * V, b = pb->b4[i * gc + c];
            for (int e = 0; e < V * V; e++) dst[e] = A[e] + b;
        }
    if (L->nrel == 1)
        gemm(0, 0, 3 * gc, V * V, R, pb->W4, R, ws->relT, V * V, 1.0f, ws->AT, V * V);
    else
        for (int i = 0; i < 3; i++)
            gemm(0, 0, gc, V * V, R, pb->W4 + (size_t)i * gc * R, R, ws->relT + (size_t)i * R * V * V, V * V,
                 1.0f, ws->AT + (size_t)i * gc * V * V, V * V);
    /* values of the three subsets and the down path in one GEMM */
    rows_fill(ws->G, TV, pb->bvd, nvd, TV);
    gemm(0, 0, nvd, TV, ci, pb->Wvd, ci, x, TV, 1.0f, ws->G, TV);
    const float *base = L->down == 2 ? ws->G + (size_t)3 * gc * TV : x;
    ctrgc_aggregate(ws->g, ws->G, ws->AT, base, pb->gshift, gc, T, V, 3, 1);
}

/* One block: x [cin][T][V] -> y [cout][To][V]. */
static void block_forward(const ctrgcn_model *m, int k, const float *x, float *y, int T, workspace *ws) {
    const block_layout *L = &m->blocks[k];
    const packed_block *pb = &m->pb[k];
    const int V = m->spec.num_joints, s = L->stride, B = L->B, ci = L->tcn_cin;
    const int To = (T - 1) / s + 1, TV = T * V, ToV = To * V;
    const float *z = x;
    if (L->has_gcn) {
        gcn_forward(m, L, pb, x, T, ws);
        z = ws->g;
    }
    /* every bias that lands on the output first, then each path accumulates */
    rows_fill(y, ToV, pb->ybias, L->cout, ToV);
    rows_fill(ws->P, TV, pb->bpw, 3 * B, TV);
    gemm(0, 0, 3 * B, TV, ci, pb->Wpw, ci, z, TV, 1.0f, ws->P, TV);
    relu_inplace(ws->P, (size_t)3 * B * TV);
    for (int j = 0; j < 2; j++)
        tconv_forward(y + (size_t)j * B * ToV, ToV, ws->P + (size_t)j * B * TV, TV, pb->Wt[j], B, B, T, V, 5,
                      j + 1, s, ws->phase);
    maxpool_t_forward(y + (size_t)2 * B * ToV, ToV, ws->P + (size_t)2 * B * TV, TV, pb->pool_scale, B, T, V, s);
    const float *zs = z;
    if (s > 1) {
        time_subsample(ws->sub, z, ci, T, V, s);
        zs = ws->sub;
    }
    gemm(0, 0, L->last, ToV, ci, pb->Wb3, ci, zs, ToV, 1.0f, y + (size_t)3 * B * ToV, ToV);
    if (L->residual == 1) {
        for (size_t i = 0; i < (size_t)L->cout * ToV; i++) y[i] += x[i];
    } else if (L->residual == 2) {
        const float *xs = x;
        if (s > 1) {
            time_subsample(ws->sub, x, L->cin, T, V, s);
            xs = ws->sub;
        }
        gemm(0, 0, L->cout, ToV, L->cin, pb->Wres, L->cin, xs, ToV, 1.0f, y, ToV);
    }
    relu_inplace(y, (size_t)L->cout * ToV);
}

/* Person p = n*M + m of x [N, C, T, V, M] through data_bn and the backbone; pooled feature out. */
static void person_forward(ctrgcn_model *m, const float *x, int T, int p, workspace *ws, int probe_block,
                           float *probe_dst) {
    const ctrgcn_spec *sp = &m->spec;
    const int C = sp->in_channels, V = sp->num_joints, M = sp->num_person;
    const int n = p / M, mi = p % M;
    float *cur = ws->xa, *nxt = ws->xb;
    for (int c = 0; c < C; c++)
        for (int t = 0; t < T; t++)
            for (int v = 0; v < V; v++) {
                const int ch = mi * V * C + v * C + c; /* data_bn channel order: m, v, c */
                const float val = x[((((size_t)n * C + c) * T + t) * V + v) * M + mi];
                cur[((size_t)c * T + t) * V + v] = val * m->in_scale[ch] + m->in_shift[ch];
            }
    int t = T;
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) {
        block_forward(m, k, cur, nxt, t, ws);
        t = (t - 1) / m->blocks[k].stride + 1;
        float *tmp = cur;
        cur = nxt;
        nxt = tmp;
        if (probe_dst && k + 1 == probe_block) {
            const size_t n_act = (size_t)m->blocks[k].cout * t * V;
            memcpy(probe_dst + (size_t)p * n_act, cur, sizeof(float) * n_act);
        }
    }
    const int feat = m->blocks[CTRGCN_NUM_BLOCKS - 1].cout;
    const size_t tv = (size_t)t * V;
    for (int c = 0; c < feat; c++) {
        double acc = 0.0;
        for (size_t i = 0; i < tv; i++) acc += cur[(size_t)c * tv + i];
        m->pooled[(size_t)p * feat + c] = (float)(acc / (double)tv);
    }
}

static int default_threads(const ctrgcn_model *m) {
#ifdef _OPENMP
    return m->threads > 0 ? m->threads : omp_get_num_procs();
#else
    return 1;
#endif
}

static ctrgcn_status run_forward(ctrgcn_model *m, const float *x, int N, int T, float *logits,
                                 int probe_block, float *probe_dst, size_t probe_size) {
    if (!m || !x || !logits) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL argument to forward");
    if (N < 1) return ctrgcn_fail(CTRGCN_ERR_SHAPE, "batch size must be at least 1, got %d", N);
    if (T < 1) return ctrgcn_fail(CTRGCN_ERR_SHAPE, "the input needs at least 1 frame, got T=%d", T);
    const ctrgcn_spec *sp = &m->spec;
    const size_t numel = (size_t)N * sp->in_channels * T * sp->num_joints * sp->num_person;
    if (numel > ((size_t)1 << 34)) return ctrgcn_fail(CTRGCN_ERR_SHAPE, "input of %zu values is too large", numel);
    for (size_t i = 0; i < numel; i++)
        if (!isfinite(x[i]))
            return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "input has a non-finite value (NaN or inf) at flat index %zu", i);
    const int persons = N * sp->num_person;
    int threads = default_threads(m);
    if (threads > persons) threads = persons;
    ctrgcn_status st = model_pack(m);
    if (st != CTRGCN_OK) return st;
    if (probe_dst) {
        int ch, fr;
        ctrgcn_model_block_shape(m, probe_block, T, &ch, &fr);
        const size_t need = (size_t)persons * ch * fr * sp->num_joints;
        if (probe_size < need)
            return ctrgcn_fail(CTRGCN_ERR_SHAPE, "probe buffer holds %zu floats, block %d needs %zu", probe_size,
                               probe_block, need);
    }
    if ((st = plan(m, N, T, threads)) != CTRGCN_OK) return st;

    /* One person per thread, BLAS single-threaded. Letting OpenBLAS thread a lone person is 1.3x
     * faster on an idle machine but 40x slower when another process holds the cores (measured:
     * 13 ms idle, 696 ms loaded, against 17 ms single-threaded either way), so it never does. */
    blas_set_threads(1);
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
#endif
    for (int p = 0; p < persons; p++) {
#ifdef _OPENMP
        workspace *ws = &m->ws[omp_get_thread_num()];
#else
        workspace *ws = &m->ws[0];
#endif
        person_forward(m, x, T, p, ws, probe_block, probe_dst);
    }
    /* head: mean over persons, then the linear layer */
    const int feat = m->blocks[CTRGCN_NUM_BLOCKS - 1].cout, M = sp->num_person, K = sp->num_classes;
    const float *W = tensor_data(m, m->fc_w), *b = tensor_data(m, m->fc_b);
    for (int n = 0; n < N; n++) {
        float *f = m->ws[0].pooled;
        for (int c = 0; c < feat; c++) {
            double acc = 0.0;
            for (int mi = 0; mi < M; mi++) acc += m->pooled[((size_t)n * M + mi) * feat + c];
            f[c] = (float)(acc / M);
        }
        for (int o = 0; o < K; o++) {
            double acc = b[o];
            for (int c = 0; c < feat; c++) acc += (double)W[(size_t)o * feat + c] * f[c];
            logits[(size_t)n * K + o] = (float)acc;
        }
    }
    return CTRGCN_OK;
}

ctrgcn_status ctrgcn_model_forward(ctrgcn_model *m, const float *x, int N, int T, float *logits) {
    return run_forward(m, x, N, T, logits, 0, NULL, 0);
}

ctrgcn_status ctrgcn_model_forward_probe(ctrgcn_model *m, const float *x, int N, int T, float *logits,
                                         int block, float *act, size_t act_size) {
    if (!act) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL probe buffer");
    if (block < 1 || block > CTRGCN_NUM_BLOCKS)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "block must be in 1..%d, got %d", CTRGCN_NUM_BLOCKS, block);
    return run_forward(m, x, N, T, logits, block, act, act_size);
}

ctrgcn_status ctrgcn_model_block_shape(const ctrgcn_model *m, int block, int T, int *channels, int *frames) {
    if (!m || block < 1 || block > CTRGCN_NUM_BLOCKS || T < 1)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "bad block %d or T %d", block, T);
    int t = T;
    for (int k = 0; k < block; k++) t = (t - 1) / m->blocks[k].stride + 1;
    *channels = m->blocks[block - 1].cout;
    *frames = t;
    return CTRGCN_OK;
}

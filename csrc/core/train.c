/* Training: the train-mode forward (BatchNorm on batch statistics) over the whole batch, block by
 * block, keeping what the backward needs, and the backward itself. Work inside a block is split
 * over persons across threads; each thread accumulates its parameter gradients in its own copy,
 * summed once at the end. BatchNorm reductions run over channels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/arena.h"
#include "core/error.h"
#include "core/train.h"
#include "layers/layers.h"

#define MOMENTUM 0.1f

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

void train_state_free(train_state *t) {
    if (!t) return;
    free(t->layout.copies);
    free(t->pack);
    free(t->gpack);
    free(t->gthreads);
    free(t->arena);
    free(t->ts);
    free(t);
}

/* ---- memory plan -------------------------------------------------------------------------- */
#define MAXZ(a, b) ((a) > (b) ? (a) : (b))

static size_t layout_arena(const ctrgcn_model *m, train_state *t, arena *a) {
    const int N = t->N, T0 = t->T, V = m->spec.num_joints, M = m->spec.num_person, C = m->spec.in_channels;
    const size_t n = (size_t)N * M, mvc = (size_t)M * V * C;
    t->db_in = arena_take(a, (size_t)N * mvc * T0);
    t->db_out = arena_take(a, (size_t)N * mvc * T0);
    t->db_stat = arena_take(a, 2 * mvc);
    t->db_grad = arena_take(a, (size_t)N * mvc * T0);
    float *X = arena_take(a, n * C * T0 * V);
    size_t sS1 = 0, sS2 = 0, sG = n * C * T0 * V, sD = 0, sP = 0, sZ = 0, sgc = 0;
    size_t tAT = 0, tdval = 0, tphase = 0, tsub = 0, txm = 0, tqk = 0, trel = 0;
    int T = T0;
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) {
        const block_layout *L = &m->blocks[k];
        train_acts *A = &t->acts[k];
        const int To = (T - 1) / L->stride + 1;
        const size_t TV = (size_t)T * V, ToV = (size_t)To * V, VV = (size_t)V * V;
        memset(A, 0, sizeof *A);
        A->T = T;
        A->To = To;
        A->X = X;
        if (L->has_gcn) {
            const size_t ci = L->gcn_cin, gc = L->gcn_cout, nq = (size_t)L->nrel * L->R;
            A->xm = arena_take(a, n * ci * V);
            A->qk = arena_take(a, n * 2 * nq * V);
            A->relT = arena_take(a, n * nq * VV);
            A->preT = arena_take(a, n * 3 * gc * VV);
            A->val = arena_take(a, n * 3 * gc * TV);
            A->agg = arena_take(a, n * gc * TV);
            A->g = arena_take(a, n * gc * TV);
            A->gbn_stat = arena_take(a, 2 * gc);
            if (L->down == 2) {
                A->d = arena_take(a, n * gc * TV);
                A->dbn_stat = arena_take(a, 2 * gc);
            }
            sgc = MAXZ(sgc, n * gc * TV);
            tAT = MAXZ(tAT, 3 * gc * VV);
            tdval = MAXZ(tdval, 3 * gc * TV);
            txm = MAXZ(txm, ci * V);
            tqk = MAXZ(tqk, 2 * nq * V);
            trel = MAXZ(trel, nq * VV);
        }
        const size_t B = L->B, co = L->cout;
        A->pw = arena_take(a, n * 3 * B * TV);
        A->P = arena_take(a, n * 3 * B * TV);
        A->outpre = arena_take(a, n * co * ToV);
        A->argmax = (int *)arena_take(a, n * B * ToV);
        A->pbn_stat = arena_take(a, 2 * 3 * B);
        A->obn_stat = arena_take(a, 2 * co);
        if (L->residual == 2) {
            A->respre = arena_take(a, n * co * ToV);
            A->rbn_stat = arena_take(a, 2 * co);
        }
        A->Y = arena_take(a, n * co * ToV);
        X = A->Y;
        sS1 = MAXZ(sS1, MAXZ(n * co * ToV, n * L->gcn_cout * TV));
        sS2 = MAXZ(sS2, n * co * ToV);
        sG = MAXZ(sG, n * co * ToV);
        sD = MAXZ(sD, n * co * ToV);
        sP = MAXZ(sP, n * 3 * B * TV);
        sZ = MAXZ(sZ, n * L->tcn_cin * TV);
        tphase = MAXZ(tphase, 2 * B * TV);
        tsub = MAXZ(tsub, (size_t)MAXZ(L->cin, L->tcn_cin) * ToV);
        T = To;
    }
    const size_t F = m->blocks[CTRGCN_NUM_BLOCKS - 1].cout;
    t->pooled = arena_take(a, n * F);
    t->feat = arena_take(a, (size_t)N * F);
    train_scratch *s = &t->s;
    s->X = arena_take(a, sG);
    s->Y = arena_take(a, sG);
    s->D1 = arena_take(a, sD);
    s->D2 = arena_take(a, sD);
    s->DP = arena_take(a, sP);
    s->DPW = arena_take(a, sP);
    s->DZ = arena_take(a, sZ);
    s->DD = arena_take(a, sgc);
    s->DAGG = arena_take(a, sgc);
    s->S1 = arena_take(a, sS1);
    s->S2 = arena_take(a, sS2);
    for (int i = 0; i < t->threads; i++) {
        train_thread_scratch *ts = &t->ts[i];
        ts->AT = arena_take(a, tAT);
        ts->dAT = arena_take(a, tAT);
        ts->dval = arena_take(a, tdval);
        ts->phase = arena_take(a, tphase);
        ts->sub = arena_take(a, tsub);
        ts->dxm = arena_take(a, txm);
        ts->dqk = arena_take(a, tqk);
        ts->drelT = arena_take(a, trel);
    }
    return a->used;
}

static ctrgcn_status train_plan(ctrgcn_model *m, int N, int T) {
    train_state *t = m->train;
    int threads = m->threads > 0 ? m->threads : 1;
#ifdef _OPENMP
    if (m->threads <= 0) threads = omp_get_num_procs();
#endif
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t) return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory");
        m->train = t;
        ctrgcn_status st = train_pack_build(m, &t->layout);
        if (st != CTRGCN_OK) return st;
        t->pack = malloc(sizeof(float) * t->layout.size);
        t->gpack = malloc(sizeof(float) * t->layout.size);
        if (!t->pack || !t->gpack) return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory for the training view");
    }
    if (t->arena && t->N == N && t->T == T && t->threads == threads) return CTRGCN_OK;
    free(t->arena);
    free(t->ts);
    free(t->gthreads);
    t->arena = NULL;
    t->has_forward = 0;
    t->N = N;
    t->T = T;
    t->threads = threads;
    t->ts = calloc((size_t)threads, sizeof *t->ts);
    t->gthreads = malloc(sizeof(float) * t->layout.size * threads);
    arena count = {NULL, 0};
    const size_t need = layout_arena(m, t, &count);
    t->arena = malloc(sizeof(float) * need);
    if (!t->ts || !t->gthreads || !t->arena) {
        free(t->arena);
        t->arena = NULL;
        return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory planning training memory for N=%d, T=%d (%.1f GB)", N, T,
                           need * 4.0 / 1e9);
    }
    arena a = {t->arena, 0};
    layout_arena(m, t, &a);
    return CTRGCN_OK;
}

/* ---- helpers -------------------------------------------------------------------------------- */
static void rowsum_add(float *db, const float *D, int rows, size_t cols) {
    for (int r = 0; r < rows; r++) {
        double s = 0.0;
        for (size_t j = 0; j < cols; j++) s += D[(size_t)r * cols + j];
        db[r] += (float)s;
    }
}

/* dx[c][s*t][v] += src[c][t][v] */
static void add_strided_time(float *dx, const float *src, int C, int T, int V, int stride) {
    const int To = (T - 1) / stride + 1;
    for (int c = 0; c < C; c++)
        for (int t = 0; t < To; t++) {
            float *d = dx + ((size_t)c * T + (size_t)t * stride) * V;
            const float *g = src + ((size_t)c * To + t) * V;
            for (int v = 0; v < V; v++) d[v] += g[v];
        }
}

/* AT[i][c][v][u] = alpha * preT[i][c][v][u] + PA[i][u][v] */
static void refined_adjacency(float *AT, const float *preT, const float *PA, float alpha, int gc, int V) {
    for (int i = 0; i < 3; i++)
        for (int c = 0; c < gc; c++) {
            float *dst = AT + ((size_t)i * gc + c) * V * V;
            const float *src = preT + ((size_t)i * gc + c) * V * V;
            for (int v = 0; v < V; v++)
                for (int u = 0; u < V; u++)
                    dst[v * V + u] = alpha * src[v * V + u] + PA[((size_t)i * V + u) * V + v];
        }
}

/* A 1x1 convolution with stride s over time, for one person: y[co][To][V] = W x[:, ::s] + b.
 * scratch holds ci*To*V floats when s > 1. */
static void conv1x1_strided_forward(float *y, const float *x, const float *W, const float *b, int co, int ci,
                                    int T, int V, int s, float *scratch) {
    const int ToV = ((T - 1) / s + 1) * V;
    const float *xs = x;
    if (s > 1) {
        time_subsample(scratch, x, ci, T, V, s);
        xs = scratch;
    }
    rows_fill(y, ToV, b, co, ToV);
    gemm(0, 0, co, ToV, ci, W, ci, xs, ToV, 1.0f, y, ToV);
}

/* Its backward: dW += d xs^T, db += rowsum(d), dx[:, ::s] += W^T d. */
static void conv1x1_strided_backward(const float *d, const float *x, const float *W, float *dW, float *db, float *dx,
                                     int co, int ci, int T, int V, int s, float *scratch) {
    const int ToV = ((T - 1) / s + 1) * V;
    const float *xs = x;
    if (s > 1) {
        time_subsample(scratch, x, ci, T, V, s);
        xs = scratch;
    }
    gemm(0, 1, co, ci, ToV, d, ToV, xs, ToV, 1.0f, dW, ci);
    rowsum_add(db, d, co, (size_t)ToV);
    if (s == 1) {
        gemm(1, 0, ci, ToV, co, W, ci, d, ToV, 1.0f, dx, ToV);
    } else {
        gemm(1, 0, ci, ToV, co, W, ci, d, ToV, 0.0f, scratch, ToV);
        add_strided_time(dx, scratch, ci, T, V, s);
    }
}

/* A train-mode BN over x[n][C][L] whose parameters sit at `off` in the training view
 * ([gamma | beta | running mean | running var]); stat receives [mean | invstd]. */
static void bn_forward(train_state *t, float *y, const float *x, int n, int C, size_t L, size_t off, float *stat,
                       int update_stats) {
    float *p = t->pack + off;
    bn_train_forward(y, x, n, (size_t)C * L, C, L, p, p + C, stat, stat + C, update_stats ? p + 2 * C : NULL,
                     update_stats ? p + 3 * C : NULL, MOMENTUM, t->threads);
}

/* Its backward; gamma and beta gradients go to thread 0's partial. */
static void bn_backward(train_state *t, float *dx, const float *dy, const float *x, int n, int C, size_t L,
                        size_t off, const float *stat) {
    bn_train_backward(dx, dy, x, n, (size_t)C * L, C, L, t->pack + off, stat, stat + C, t->gthreads + off,
                      t->gthreads + off + C, t->threads);
}

/* y = max(a + b, 0) over count values (b may be NULL) */
static void add_relu(float *y, const float *a, const float *b, size_t count, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t e = 0; e < count; e++) {
        const float v = a[e] + (b ? b[e] : 0.0f);
        y[e] = v > 0.0f ? v : 0.0f;
    }
}

/* ---- forward -------------------------------------------------------------------------------- */
static void block_forward(ctrgcn_model *m, int k, int upd) {
    train_state *t = m->train;
    const block_layout *L = &m->blocks[k];
    const train_block_offsets *o = &t->layout.blocks[k];
    train_acts *A = &t->acts[k];
    const float *p = t->pack;
    const int n = t->N * m->spec.num_person, V = m->spec.num_joints, T = A->T, To = A->To, s = L->stride;
    const size_t TV = (size_t)T * V, ToV = (size_t)To * V, VV = (size_t)V * V;
    const int cin = L->cin, co = L->cout, B = L->B, ci = L->tcn_cin;
    const float *Z = A->X;
    if (L->has_gcn) {
        const int gi = L->gcn_cin, gc = L->gcn_cout, R = L->R, nq = L->nrel * R;
        const float alpha = p[o->alpha];
#pragma omp parallel for num_threads(t->threads) schedule(static)
        for (int i = 0; i < n; i++) {
            train_thread_scratch *ts = &t->ts[thread_id()];
            const float *x = A->X + (size_t)i * cin * TV;
            float *xm = A->xm + (size_t)i * gi * V, *qk = A->qk + (size_t)i * 2 * nq * V;
            float *relT = A->relT + (size_t)i * nq * VV, *preT = A->preT + (size_t)i * 3 * gc * VV;
            float *val = A->val + (size_t)i * 3 * gc * TV;
            mean_time(xm, x, gi, T, V);
            rows_fill(qk, V, p + o->bqk, 2 * nq, V);
            gemm(0, 0, 2 * nq, V, gi, p + o->Wqk, gi, xm, V, 1.0f, qk, V);
            for (int j = 0; j < L->nrel; j++)
                ctrgc_relation(relT + (size_t)j * R * VV, qk + (size_t)j * R * V, qk + (size_t)(nq + j * R) * V, R, V);
            rows_fill(preT, (int)VV, p + o->b4, 3 * gc, (int)VV);
            if (L->nrel == 1)
                gemm(0, 0, 3 * gc, (int)VV, R, p + o->W4, R, relT, (int)VV, 1.0f, preT, (int)VV);
            else
                for (int j = 0; j < 3; j++)
                    gemm(0, 0, gc, (int)VV, R, p + o->W4 + (size_t)j * gc * R, R, relT + (size_t)j * R * VV, (int)VV,
                         1.0f, preT + (size_t)j * gc * VV, (int)VV);
            refined_adjacency(ts->AT, preT, p + o->PA, alpha, gc, V);
            rows_fill(val, (int)TV, p + o->bval, 3 * gc, (int)TV);
            gemm(0, 0, 3 * gc, (int)TV, gi, p + o->Wval, gi, x, (int)TV, 1.0f, val, (int)TV);
            ctrgc_aggregate(A->agg + (size_t)i * gc * TV, val, ts->AT, NULL, NULL, gc, T, V, 3, 0);
            if (L->down == 2) {
                float *d = A->d + (size_t)i * gc * TV;
                rows_fill(d, (int)TV, p + o->bd, gc, (int)TV);
                gemm(0, 0, gc, (int)TV, gi, p + o->Wd, gi, x, (int)TV, 1.0f, d, (int)TV);
            }
        }
        bn_forward(t, A->g, A->agg, n, gc, TV, o->gbn, A->gbn_stat, upd);
        const float *base = A->X;
        if (L->down == 2) {
            bn_forward(t, t->s.S1, A->d, n, gc, TV, o->dbn, A->dbn_stat, upd);
            base = t->s.S1;
        }
        add_relu(A->g, A->g, base, (size_t)n * gc * TV, t->threads);
        Z = A->g;
    }
    /* temporal module */
#pragma omp parallel for num_threads(t->threads) schedule(static)
    for (int i = 0; i < n; i++) {
        float *pw = A->pw + (size_t)i * 3 * B * TV;
        rows_fill(pw, (int)TV, p + o->bpw, 3 * B, (int)TV);
        gemm(0, 0, 3 * B, (int)TV, ci, p + o->Wpw, ci, Z + (size_t)i * ci * TV, (int)TV, 1.0f, pw, (int)TV);
    }
    bn_forward(t, A->P, A->pw, n, 3 * B, TV, o->pbn, A->pbn_stat, upd);
#pragma omp parallel for num_threads(t->threads) schedule(static)
    for (int i = 0; i < n; i++) relu_inplace(A->P + (size_t)i * 3 * B * TV, (size_t)3 * B * TV);
#pragma omp parallel for num_threads(t->threads) schedule(static)
    for (int i = 0; i < n; i++) {
        train_thread_scratch *ts = &t->ts[thread_id()];
        const float *P = A->P + (size_t)i * 3 * B * TV, *z = Z + (size_t)i * ci * TV, *x = A->X + (size_t)i * cin * TV;
        float *out = A->outpre + (size_t)i * co * ToV;
        for (int j = 0; j < 2; j++) {
            rows_fill(out + (size_t)j * B * ToV, (int)ToV, p + o->bt[j], B, (int)ToV);
            tconv_forward(out + (size_t)j * B * ToV, (int)ToV, P + (size_t)j * B * TV, (int)TV, p + o->Wt[j], B, B, T,
                          V, 5, j + 1, s, ts->phase);
        }
        maxpool_t_forward_idx(out + (size_t)2 * B * ToV, (int)ToV, P + (size_t)2 * B * TV, (int)TV,
                              A->argmax + (size_t)i * B * ToV, B, T, V, s);
        conv1x1_strided_forward(out + (size_t)3 * B * ToV, z, p + o->Wb3, p + o->bb3, L->last, ci, T, V, s, ts->sub);
        if (L->residual == 2)
            conv1x1_strided_forward(A->respre + (size_t)i * co * ToV, x, p + o->Wres, p + o->bres, co, cin, T, V, s,
                                    ts->sub);
    }
    bn_forward(t, t->s.S1, A->outpre, n, co, ToV, o->obn, A->obn_stat, upd);
    const float *res = NULL;
    if (L->residual == 1) res = A->X;
    if (L->residual == 2) {
        bn_forward(t, t->s.S2, A->respre, n, co, ToV, o->rbn, A->rbn_stat, upd);
        res = t->s.S2;
    }
    add_relu(A->Y, t->s.S1, res, (size_t)n * co * ToV, t->threads);
}

ctrgcn_status ctrgcn_model_train_forward(ctrgcn_model *m, const float *x, int N, int T, float *logits,
                                         int update_stats) {
    if (!m || !x || !logits) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL argument to train_forward");
    if (N < 1 || T < 1) return ctrgcn_fail(CTRGCN_ERR_SHAPE, "train_forward needs N >= 1 and T >= 1 (N=%d, T=%d)", N, T);
    const ctrgcn_spec *sp = &m->spec;
    const int C = sp->in_channels, V = sp->num_joints, M = sp->num_person, K = sp->num_classes;
    const size_t numel = (size_t)N * C * T * V * M;
    for (size_t i = 0; i < numel; i++)
        if (!isfinite(x[i]))
            return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "input has a non-finite value (NaN or inf) at flat index %zu", i);
    if (N * M < 2 && T * V < 2)
        return ctrgcn_fail(CTRGCN_ERR_SHAPE, "train-mode BatchNorm needs more than one value per channel");
    ctrgcn_status st = train_plan(m, N, T);
    if (st != CTRGCN_OK) return st;
    train_state *t = m->train;
    blas_set_threads(1);
    train_pack_gather(&t->layout, m->params, t->pack);

    /* data_bn: channels (m, v, c), statistics over samples and frames */
    const int mvc = M * V * C;
    for (int n = 0; n < N; n++)
        for (int mi = 0; mi < M; mi++)
            for (int v = 0; v < V; v++)
                for (int c = 0; c < C; c++) {
                    float *dst = t->db_in + ((size_t)n * mvc + (size_t)mi * V * C + (size_t)v * C + c) * T;
                    for (int tt = 0; tt < T; tt++) dst[tt] = x[((((size_t)n * C + c) * T + tt) * V + v) * M + mi];
                }
    bn_forward(t, t->db_out, t->db_in, N, mvc, T, t->layout.data_bn, t->db_stat, update_stats);
    float *X1 = t->acts[0].X;
    for (int n = 0; n < N; n++)
        for (int mi = 0; mi < M; mi++)
            for (int c = 0; c < C; c++)
                for (int tt = 0; tt < T; tt++)
                    for (int v = 0; v < V; v++)
                        X1[((((size_t)n * M + mi) * C + c) * T + tt) * V + v] =
                            t->db_out[((size_t)n * mvc + (size_t)mi * V * C + (size_t)v * C + c) * T + tt];

    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) block_forward(m, k, update_stats);

    const train_acts *last = &t->acts[CTRGCN_NUM_BLOCKS - 1];
    const int F = m->blocks[CTRGCN_NUM_BLOCKS - 1].cout;
    const size_t ToV = (size_t)last->To * V;
    for (int i = 0; i < N * M; i++)
        for (int c = 0; c < F; c++) {
            double acc = 0.0;
            const float *y = last->Y + ((size_t)i * F + c) * ToV;
            for (size_t j = 0; j < ToV; j++) acc += y[j];
            t->pooled[(size_t)i * F + c] = (float)(acc / (double)ToV);
        }
    for (int n = 0; n < N; n++)
        for (int c = 0; c < F; c++) {
            double acc = 0.0;
            for (int mi = 0; mi < M; mi++) acc += t->pooled[((size_t)n * M + mi) * F + c];
            t->feat[(size_t)n * F + c] = (float)(acc / M);
        }
    const float *W = t->pack + t->layout.fc_w, *b = t->pack + t->layout.fc_b;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < K; o++) {
            double acc = b[o];
            for (int c = 0; c < F; c++) acc += (double)W[(size_t)o * F + c] * t->feat[(size_t)n * F + c];
            logits[(size_t)n * K + o] = (float)acc;
        }
    if (update_stats) {
        train_pack_scatter(&t->layout, t->pack, m->params); /* the running statistics moved */
        m->packed_valid = 0;
    }
    t->has_forward = 1;
    return CTRGCN_OK;
}

/* ---- backward ------------------------------------------------------------------------------- */
/* dY (t->s.Y, [n][co][To][V]) -> dX (t->s.X, [n][cin][T][V]); gradients into the thread partials. */
static void block_backward(ctrgcn_model *m, int k) {
    train_state *t = m->train;
    const block_layout *L = &m->blocks[k];
    const train_block_offsets *o = &t->layout.blocks[k];
    const train_acts *A = &t->acts[k];
    const float *p = t->pack;
    train_scratch *S = &t->s;
    const int n = t->N * m->spec.num_person, V = m->spec.num_joints, T = A->T, To = A->To, s = L->stride;
    const size_t TV = (size_t)T * V, ToV = (size_t)To * V, VV = (size_t)V * V, sz = t->layout.size;
    const int cin = L->cin, co = L->cout, B = L->B, ci = L->tcn_cin;
    const float *Z = L->has_gcn ? A->g : A->X;

    /* the accumulated gradients start at zero; each thread clears the persons it will fill */
#pragma omp parallel for num_threads(t->threads) schedule(static)
    for (int i = 0; i < n; i++) {
        memset(S->X + (size_t)i * cin * TV, 0, sizeof(float) * cin * TV);
        memset(S->DZ + (size_t)i * ci * TV, 0, sizeof(float) * ci * TV);
        memset(S->DP + (size_t)i * 3 * B * TV, 0, sizeof(float) * 3 * B * TV);
    }
    const size_t total = (size_t)n * co * ToV;
#pragma omp parallel for num_threads(t->threads) schedule(static)
    for (size_t e = 0; e < total; e++) S->D1[e] = A->Y[e] > 0.0f ? S->Y[e] : 0.0f;
    if (L->residual == 1) {
#pragma omp parallel for num_threads(t->threads) schedule(static)
        for (size_t e = 0; e < total; e++) S->X[e] += S->D1[e];
    }
    if (L->residual == 2)
        bn_backward(t, S->D2, S->D1, A->respre, n, co, ToV, o->rbn, A->rbn_stat);
#pragma omp parallel for num_threads(t->threads) schedule(static)
    for (int i = 0; i < n; i++) {
        train_thread_scratch *ts = &t->ts[thread_id()];
        float *g = t->gthreads + sz * thread_id();
        if (L->residual != 2) continue;
        conv1x1_strided_backward(S->D2 + (size_t)i * co * ToV, A->X + (size_t)i * cin * TV, p + o->Wres, g + o->Wres,
                                 g + o->bres, S->X + (size_t)i * cin * TV, co, cin, T, V, s, ts->sub);
    }
    /* the four branches share one BN view over cout channels */
    bn_backward(t, S->D2, S->D1, A->outpre, n, co, ToV, o->obn, A->obn_stat);
#pragma omp parallel for num_threads(t->threads) schedule(static)
    for (int i = 0; i < n; i++) {
        train_thread_scratch *ts = &t->ts[thread_id()];
        float *g = t->gthreads + sz * thread_id();
        const float *d = S->D2 + (size_t)i * co * ToV, *P = A->P + (size_t)i * 3 * B * TV;
        const float *z = Z + (size_t)i * ci * TV;
        float *dP = S->DP + (size_t)i * 3 * B * TV, *dz = S->DZ + (size_t)i * ci * TV;
        for (int j = 0; j < 2; j++) {
            rowsum_add(g + o->bt[j], d + (size_t)j * B * ToV, B, ToV);
            tconv_backward(d + (size_t)j * B * ToV, (int)ToV, P + (size_t)j * B * TV, (int)TV, p + o->Wt[j],
                           dP + (size_t)j * B * TV, g + o->Wt[j], B, B, T, V, 5, j + 1, s, ts->phase);
        }
        maxpool_t_backward(dP + (size_t)2 * B * TV, (int)TV, d + (size_t)2 * B * ToV, (int)ToV,
                           A->argmax + (size_t)i * B * ToV, B, To, V);
        conv1x1_strided_backward(d + (size_t)3 * B * ToV, z, p + o->Wb3, g + o->Wb3, g + o->bb3, dz, L->last, ci, T, V,
                                 s, ts->sub);
    }
    const size_t np = (size_t)n * 3 * B * TV;
#pragma omp parallel for num_threads(t->threads) schedule(static)
    for (size_t e = 0; e < np; e++)
        if (!(A->P[e] > 0.0f)) S->DP[e] = 0.0f;
    bn_backward(t, S->DPW, S->DP, A->pw, n, 3 * B, TV, o->pbn, A->pbn_stat);
#pragma omp parallel for num_threads(t->threads) schedule(static)
    for (int i = 0; i < n; i++) {
        float *g = t->gthreads + sz * thread_id();
        const float *d = S->DPW + (size_t)i * 3 * B * TV, *z = Z + (size_t)i * ci * TV;
        gemm(0, 1, 3 * B, ci, (int)TV, d, (int)TV, z, (int)TV, 1.0f, g + o->Wpw, ci);
        rowsum_add(g + o->bpw, d, 3 * B, TV);
        gemm(1, 0, ci, (int)TV, 3 * B, p + o->Wpw, ci, d, (int)TV, 1.0f, S->DZ + (size_t)i * ci * TV, (int)TV);
    }
    if (!L->has_gcn) {
        /* a TCN_unit's temporal module reads the block input itself */
        const size_t nx = (size_t)n * cin * TV;
#pragma omp parallel for num_threads(t->threads) schedule(static)
        for (size_t e = 0; e < nx; e++) S->X[e] += S->DZ[e];
        return;
    }
    const int gi = L->gcn_cin, gc = L->gcn_cout, R = L->R, nq = L->nrel * R;
    const size_t ng = (size_t)n * gc * TV;
    float *dg = S->DZ;
#pragma omp parallel for num_threads(t->threads) schedule(static)
    for (size_t e = 0; e < ng; e++)
        if (!(A->g[e] > 0.0f)) dg[e] = 0.0f;
    if (L->down == 1) {
#pragma omp parallel for num_threads(t->threads) schedule(static)
        for (size_t e = 0; e < ng; e++) S->X[e] += dg[e];
    } else {
        bn_backward(t, S->DD, dg, A->d, n, gc, TV, o->dbn, A->dbn_stat);
    }
    bn_backward(t, S->DAGG, dg, A->agg, n, gc, TV, o->gbn, A->gbn_stat);
    const float alpha = p[o->alpha];
#pragma omp parallel for num_threads(t->threads) schedule(static)
    for (int i = 0; i < n; i++) {
        train_thread_scratch *ts = &t->ts[thread_id()];
        float *g = t->gthreads + sz * thread_id();
        const float *x = A->X + (size_t)i * cin * TV, *val = A->val + (size_t)i * 3 * gc * TV;
        const float *preT = A->preT + (size_t)i * 3 * gc * VV, *relT = A->relT + (size_t)i * nq * VV;
        const float *xm = A->xm + (size_t)i * gi * V;
        float *dx = S->X + (size_t)i * cin * TV;
        if (L->down == 2) {
            const float *dd = S->DD + (size_t)i * gc * TV;
            gemm(0, 1, gc, gi, (int)TV, dd, (int)TV, x, (int)TV, 1.0f, g + o->Wd, gi);
            rowsum_add(g + o->bd, dd, gc, TV);
            gemm(1, 0, gi, (int)TV, gc, p + o->Wd, gi, dd, (int)TV, 1.0f, dx, (int)TV);
        }
        refined_adjacency(ts->AT, preT, p + o->PA, alpha, gc, V);
        ctrgc_aggregate_backward(ts->dval, ts->dAT, S->DAGG + (size_t)i * gc * TV, val, ts->AT, gc, T, V, 3);
        /* PA and alpha */
        double dalpha = 0.0;
        for (int j = 0; j < 3; j++)
            for (int c = 0; c < gc; c++) {
                const float *dA = ts->dAT + ((size_t)j * gc + c) * VV, *pr = preT + ((size_t)j * gc + c) * VV;
                float *gPA = g + o->PA + (size_t)j * VV;
                for (int v = 0; v < V; v++)
                    for (int u = 0; u < V; u++) {
                        gPA[(size_t)u * V + v] += dA[(size_t)v * V + u];
                        dalpha += (double)dA[(size_t)v * V + u] * pr[(size_t)v * V + u];
                    }
            }
        g[o->alpha] += (float)dalpha;
        for (size_t e = 0; e < 3 * (size_t)gc * VV; e++) ts->dAT[e] *= alpha;
        rowsum_add(g + o->b4, ts->dAT, 3 * gc, VV);
        if (L->nrel == 1) {
            gemm(0, 1, 3 * gc, R, (int)VV, ts->dAT, (int)VV, relT, (int)VV, 1.0f, g + o->W4, R);
            gemm(1, 0, R, (int)VV, 3 * gc, p + o->W4, R, ts->dAT, (int)VV, 0.0f, ts->drelT, (int)VV);
        } else {
            for (int j = 0; j < 3; j++) {
                gemm(0, 1, gc, R, (int)VV, ts->dAT + (size_t)j * gc * VV, (int)VV, relT + (size_t)j * R * VV, (int)VV,
                     1.0f, g + o->W4 + (size_t)j * gc * R, R);
                gemm(1, 0, R, (int)VV, gc, p + o->W4 + (size_t)j * gc * R, R, ts->dAT + (size_t)j * gc * VV, (int)VV,
                     0.0f, ts->drelT + (size_t)j * R * VV, (int)VV);
            }
        }
        memset(ts->dqk, 0, sizeof(float) * 2 * nq * V);
        for (int j = 0; j < L->nrel; j++)
            ctrgc_relation_backward(ts->dqk + (size_t)j * R * V, ts->dqk + (size_t)(nq + j * R) * V,
                                    ts->drelT + (size_t)j * R * VV, relT + (size_t)j * R * VV, R, V);
        gemm(0, 1, 2 * nq, gi, V, ts->dqk, V, xm, V, 1.0f, g + o->Wqk, gi);
        rowsum_add(g + o->bqk, ts->dqk, 2 * nq, V);
        gemm(1, 0, gi, V, 2 * nq, p + o->Wqk, gi, ts->dqk, V, 0.0f, ts->dxm, V);
        gemm(0, 1, 3 * gc, gi, (int)TV, ts->dval, (int)TV, x, (int)TV, 1.0f, g + o->Wval, gi);
        rowsum_add(g + o->bval, ts->dval, 3 * gc, TV);
        gemm(1, 0, gi, (int)TV, 3 * gc, p + o->Wval, gi, ts->dval, (int)TV, 1.0f, dx, (int)TV);
        const float invT = 1.0f / (float)T; /* q and k saw the time mean */
        for (int c = 0; c < gi; c++)
            for (int tt = 0; tt < T; tt++)
                for (int v = 0; v < V; v++) dx[((size_t)c * T + tt) * V + v] += ts->dxm[(size_t)c * V + v] * invT;
    }
}

ctrgcn_status ctrgcn_model_train_backward(ctrgcn_model *m, const float *dlogits, float *grads) {
    if (!m || !dlogits || !grads) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL argument to train_backward");
    train_state *t = m->train;
    if (!t || !t->has_forward) return ctrgcn_fail(CTRGCN_ERR_STATE, "train_backward needs a train_forward first");
    const ctrgcn_spec *sp = &m->spec;
    const int N = t->N, M = sp->num_person, V = sp->num_joints, K = sp->num_classes, C = sp->in_channels;
    const int F = m->blocks[CTRGCN_NUM_BLOCKS - 1].cout;
    const size_t sz = t->layout.size;
    for (size_t i = 0; i < (size_t)N * K; i++)
        if (!isfinite(dlogits[i])) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "dlogits has a non-finite value");
    blas_set_threads(1);
#pragma omp parallel for num_threads(t->threads) schedule(static)
    for (int th = 0; th < t->threads; th++) memset(t->gthreads + sz * th, 0, sizeof(float) * sz);
    float *g0 = t->gthreads;
    /* head */
    const float *W = t->pack + t->layout.fc_w;
    gemm(1, 0, K, F, N, dlogits, K, t->feat, F, 1.0f, g0 + t->layout.fc_w, F);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < K; o++) g0[t->layout.fc_b + o] += dlogits[(size_t)n * K + o];
    const train_acts *last = &t->acts[CTRGCN_NUM_BLOCKS - 1];
    const size_t ToV = (size_t)last->To * V;
    float *dfeat = t->feat + 0; /* reuse: feat is not needed after the fc gradient */
    float *tmp = t->pooled;
    gemm(0, 0, N, F, K, dlogits, K, W, F, 0.0f, tmp, F);
    memcpy(dfeat, tmp, sizeof(float) * N * F);
    for (int i = 0; i < N * M; i++)
        for (int c = 0; c < F; c++) {
            const float gval = dfeat[(size_t)(i / M) * F + c] / (float)(M * ToV);
            float *d = t->s.Y + ((size_t)i * F + c) * ToV;
            for (size_t j = 0; j < ToV; j++) d[j] = gval;
        }
    for (int k = CTRGCN_NUM_BLOCKS - 1; k >= 0; k--) {
        block_backward(m, k);
        float *swap = t->s.X; /* dX of this block is dY of the one before */
        t->s.X = t->s.Y;
        t->s.Y = swap;
    }
    /* data_bn: gather dX1 back to its [N][M*V*C][T] layout */
    const int mvc = M * V * C, T = t->T;
    for (int n = 0; n < N; n++)
        for (int mi = 0; mi < M; mi++)
            for (int c = 0; c < C; c++)
                for (int tt = 0; tt < T; tt++)
                    for (int v = 0; v < V; v++)
                        t->db_grad[((size_t)n * mvc + (size_t)mi * V * C + (size_t)v * C + c) * T + tt] =
                            t->s.Y[((((size_t)n * M + mi) * C + c) * T + tt) * V + v];
    /* the input gradient itself is not wanted: write it over the incoming gradient */
    bn_backward(t, t->db_grad, t->db_grad, t->db_in, N, mvc, T, t->layout.data_bn, t->db_stat);
    /* sum the thread partials, then map back to named tensors */
#pragma omp parallel for num_threads(t->threads) schedule(static)
    for (size_t e = 0; e < sz; e++) {
        float acc = g0[e];
        for (int th = 1; th < t->threads; th++) acc += t->gthreads[sz * th + e];
        t->gpack[e] = acc;
    }
    memset(grads, 0, sizeof(float) * m->params_size);
    train_pack_scatter(&t->layout, t->gpack, grads);
    for (int i = 0; i < m->num_tensors; i++) /* no gradient for running statistics */
        if (m->tensors[i].is_buffer) memset(grads + m->tensors[i].offset, 0, sizeof(float) * m->tensors[i].numel);
    return CTRGCN_OK;
}

ctrgcn_status ctrgcn_softmax_xent(const float *logits, const float *targets, int N, int K, double *loss,
                                  float *dlogits) {
    if (!logits || !targets || !loss || N < 1 || K < 1) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "bad loss arguments");
    for (size_t i = 0; i < (size_t)N * K; i++)
        if (!isfinite(logits[i]) || !isfinite(targets[i]))
            return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "non-finite logits or targets");
    *loss = softmax_xent(logits, targets, N, K, dlogits);
    return CTRGCN_OK;
}

/* The model driver: data_bn, ten blocks and the head, walked block by block over a batch
 * through the backend table. Eval (folded BatchNorm, the backend's chunks of persons per pass)
 * and training (BatchNorm on batch statistics, everything kept for the backward) share the walk;
 * the mode decides where a BatchNorm runs, never the device. */
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/profile.h"
#include "core/session.h"

#define MOMENTUM 0.1f
#define MAXZ(a, b) ((a) > (b) ? (a) : (b))

static int out_frames(const block_layout *L, int T) { return (T - 1) / L->stride + 1; }
static int feat_width(const ctrgcn_model *m) { return m->blocks[CTRGCN_NUM_BLOCKS - 1].cout; }

/* ---- one block --------------------------------------------------------------------------------
 * x, y: [n][cin][T][V] -> [n][cout][To][V]. w is the eval view (folded) or the training view. */
static void block_forward(ctrgcn_session *s, int k, const float *w, block_acts *A, int n, int train, int update) {
    const block_layout *L = &s->model->blocks[k];
    const view_block *o = &s->view.blocks[k];
    const int V = s->model->spec.num_joints, T = A->T, To = A->To, st = L->stride;
    const size_t TV = (size_t)T * V, ToV = (size_t)To * V;
    const int cin = L->cin, co = L->cout, B = L->B, ci = L->tcn_cin;
    const float mom = MOMENTUM;
    /* running statistics move only when asked (they live in the training view) */
#define RUN(slot, C) (update ? (float *)w + (slot).run : NULL), (update ? (float *)w + (slot).run + (C) : NULL)
    const float *Z = A->X;
    if (L->has_gcn) {
        const int gi = L->gcn_cin, gc = L->gcn_cout, R = L->R, nq = L->nrel * R;
        const int nvd = 3 * gc + (L->down == 2 ? gc : 0);
        /* q and k see the time mean only: mean_T(conv(x)) = conv(mean_T(x)) */
        OP(mean_time_forward, A->xm, A->X, (size_t)cin * TV, n, gi, T, V);
        OP(conv1x1_forward, A->qk, 2 * (size_t)nq * V, A->xm, (size_t)gi * V, w + o->Wqk, w + o->bqk, n, 2 * nq, gi,
                            1, V, 1, 0);
        OP(relation_forward, A->rel, A->qk, n, L->nrel, R, V);
        const float *down = L->down == 2 ? A->vd + 3 * (size_t)gc * TV : A->X;
        const size_t lddown = L->down == 2 ? (size_t)nvd * TV : (size_t)cin * TV, ldvd = (size_t)nvd * TV;
        const size_t ldx = (size_t)cin * TV, ldg = (size_t)gc * TV, nrv = (size_t)nq * V * V;
        /* The values (the three subsets' rows and the down conv's: one product), the refined
         * adjacency and the aggregation, pass by pass (train_chunk, backend.h): a pass's values and
         * adjacency are still in cache when the aggregation reads them, and training keeps no
         * adjacency past its pass. Eval: one pass over the lane's persons, the spatial BN folded
         * (its scale in the value rows; its shift, the down branch and the ReLU in the epilogue). */
        const int chunk = train ? s->tp.chunk : n;
        float *AT = train ? s->tp.s.AT : A->AT;
        for (int i0 = 0; i0 < n; i0 += chunk) {
            const int m = n - i0 < chunk ? n - i0 : chunk;
            OP(conv1x1_forward, A->vd + i0 * ldvd, ldvd, A->X + i0 * ldx, ldx, w + o->Wvd, w + o->bvd, m, nvd, gi, T,
                                V, 1, 0);
            OP(adjacency_forward, AT, A->rel + i0 * nrv, w + o->W4, w + o->b4, w + o->alpha, w + o->PA, m, L->nrel,
                                  gc, R, V);
            if (train)
                OP(aggregate_forward, A->agg + i0 * ldg, ldg, A->vd + i0 * ldvd, ldvd, AT, NULL, 0, NULL, 0, m, gc,
                                      T, V);
            else
                OP(aggregate_forward, A->g + i0 * ldg, ldg, A->vd + i0 * ldvd, ldvd, AT, down + i0 * lddown, lddown,
                                      w + o->gbn.gb + gc, 1, m, gc, T, V);
        }
        if (train) {
            float *dn = s->tp.s.S2;
            size_t ldd = lddown;
            if (L->down == 2) {
                OP(bn_forward, dn, (size_t)gc * TV, down, lddown, n, gc, TV, w + o->dbn.gb, w + o->dbn.gb + gc,
                               A->dstat, RUN(o->dbn, gc), mom, NULL, 0, 0);
                down = dn;
                ldd = (size_t)gc * TV;
            }
            /* g = relu(BN(agg) + down), the sum and the activation in the normalising pass */
            OP(bn_forward, A->g, (size_t)gc * TV, A->agg, (size_t)gc * TV, n, gc, TV, w + o->gbn.gb,
                           w + o->gbn.gb + gc, A->gstat, RUN(o->gbn, gc), mom, down, ldd, 1);
        }
        Z = A->g;
    }
    /* temporal module: pointwise convs of three branches, two dilated tconvs, a max-pool, a
     * strided 1x1 branch, concatenated over channels into outpre */
    const size_t ldz = (size_t)(L->has_gcn ? L->gcn_cout : cin) * TV, ldP = 3 * (size_t)B * TV, ldo = (size_t)co * ToV;
    float *out = train ? A->outpre : A->Y; /* eval: the branches write the block output itself */
    OP(conv1x1_forward, A->pw, ldP, Z, ldz, w + o->Wpw, w + o->bpw, n, 3 * B, ci, T, V, 1, 0);
    if (train)
        OP(bn_forward, A->P, ldP, A->pw, ldP, n, 3 * B, TV, w + o->pbn.gb, w + o->pbn.gb + 3 * B, A->pstat,
                       RUN(o->pbn, 3 * B), mom, NULL, 0, 1);
    else
        OP(add_relu_forward, A->P, A->pw, NULL, (size_t)n * ldP);
    for (int j = 0; j < 2; j++)
        OP(tconv_forward, out + (size_t)j * B * ToV, ldo, A->P + (size_t)j * B * TV, ldP, w + o->Wt[j],
                          w + o->bt[j], n, B, B, T, V, L->kt, L->dil[j], st);
    OP(maxpool_forward, out + 2 * (size_t)B * ToV, ldo, A->P + 2 * (size_t)B * TV, ldP,
                        train ? A->argmax : NULL, train ? NULL : w + o->obn.gb + 2 * B,
                        train ? NULL : w + o->obn.gb + co + 2 * B, n, B, T, V, st);
    OP(conv1x1_forward, out + 3 * (size_t)B * ToV, ldo, Z, ldz, w + o->Wb3, w + o->bb3, n, L->last, ci, T, V,
                        st, 0);
    const size_t count = (size_t)n * co * ToV;
    if (train) {
        float *rb = s->tp.s.S2;
        const float *res = L->residual == 1 ? A->X : NULL;
        size_t ldres = (size_t)cin * TV; /* the identity residual: cin = co, T = To */
        if (L->residual == 2) {
            OP(conv1x1_forward, A->respre, ldo, A->X, (size_t)cin * TV, w + o->Wres, w + o->bres, n, co, cin, T, V,
                                st, 0);
            OP(bn_forward, rb, ldo, A->respre, ldo, n, co, ToV, w + o->rbn.gb, w + o->rbn.gb + co, A->rstat,
                           RUN(o->rbn, co), mom, NULL, 0, 0);
            res = rb;
            ldres = ldo;
        }
        /* Y = relu(BN(outpre) + res) in the normalising pass */
        OP(bn_forward, A->Y, ldo, A->outpre, ldo, n, co, ToV, w + o->obn.gb, w + o->obn.gb + co, A->ostat,
                       RUN(o->obn, co), mom, res, ldres, 1);
    } else {
        /* the folded residual conv accumulates into the output */
        if (L->residual == 2)
            OP(conv1x1_forward, A->Y, ldo, A->X, (size_t)cin * TV, w + o->Wres, w + o->bres, n, co, cin, T, V, st,
                                1);
        OP(add_relu_forward, A->Y, A->Y, L->residual == 1 ? A->X : NULL, count);
    }
#undef RUN
}

/* dY (s->tp.s.dY) -> dX (s->tp.s.dX); parameter gradients accumulate into s->grad. */
static void block_backward(ctrgcn_session *s, int k, int n) {
    const block_layout *L = &s->model->blocks[k];
    const view_block *o = &s->view.blocks[k];
    const block_acts *A = &s->tp.acts[k];
    train_scratch *S = &s->tp.s;
    const float *w = s->w;
    float *g = s->grad;
    const int V = s->model->spec.num_joints, T = A->T, To = A->To, st = L->stride;
    const size_t TV = (size_t)T * V, ToV = (size_t)To * V;
    const int cin = L->cin, co = L->cout, B = L->B, ci = L->tcn_cin;
    const size_t ldx = (size_t)cin * TV, ldo = (size_t)co * ToV, ldP = 3 * (size_t)B * TV;
    const float *Z = L->has_gcn ? A->g : A->X;
    const size_t ldz = (size_t)(L->has_gcn ? L->gcn_cout : cin) * TV;

    /* With an identity residual, dX starts as the output's masked gradient itself: written there
     * and read from there by the BatchNorm backward below, before anything else adds to dX
     * (saves zeroing dX and adding a copy into it) */
    float *D1 = L->residual == 1 ? S->dX : S->D1;
    if (L->residual != 1) OP(zero, S->dX, sizeof(float) * n * ldx);
    OP(zero, S->dZ, sizeof(float) * n * ldz);
    OP(zero, S->dP, sizeof(float) * n * ldP);
    OP(relu_backward, D1, S->dY, A->Y, (size_t)n * ldo);
    if (L->residual == 2) {
        OP(bn_backward, S->D2, ldo, D1, ldo, A->respre, ldo, n, co, ToV, w + o->rbn.gb, A->rstat, g + o->rbn.gb,
                        g + o->rbn.gb + co);
        OP(conv1x1_backward, S->dX, ldx, g + o->Wres, g + o->bres, S->D2, ldo, A->X, ldx, w + o->Wres, n, co, cin, T,
                             V, st);
    }
    OP(bn_backward, S->D2, ldo, D1, ldo, A->outpre, ldo, n, co, ToV, w + o->obn.gb, A->ostat, g + o->obn.gb,
                    g + o->obn.gb + co);
    for (int j = 0; j < 2; j++)
        OP(tconv_backward, S->dP + (size_t)j * B * TV, ldP, g + o->Wt[j], g + o->bt[j], S->D2 + (size_t)j * B * ToV,
                           ldo, A->P + (size_t)j * B * TV, ldP, w + o->Wt[j], n, B, B, T, V, L->kt, L->dil[j], st);
    OP(maxpool_backward, S->dP + 2 * (size_t)B * TV, ldP, S->D2 + 2 * (size_t)B * ToV, ldo, A->argmax, n, B, T, V,
                         st);
    OP(conv1x1_backward, S->dZ, ldz, g + o->Wb3, g + o->bb3, S->D2 + 3 * (size_t)B * ToV, ldo, Z, ldz, w + o->Wb3,
                         n, L->last, ci, T, V, st);
    OP(relu_backward, S->dP, S->dP, A->P, (size_t)n * ldP);
    OP(bn_backward, S->dPW, ldP, S->dP, ldP, A->pw, ldP, n, 3 * B, TV, w + o->pbn.gb, A->pstat, g + o->pbn.gb,
                    g + o->pbn.gb + 3 * B);
    OP(conv1x1_backward, S->dZ, ldz, g + o->Wpw, g + o->bpw, S->dPW, ldP, Z, ldz, w + o->Wpw, n, 3 * B, ci, T, V, 1);
    if (!L->has_gcn) { /* a TCN_unit's temporal module reads the block input itself */
        OP(accumulate, S->dX, S->dZ, (size_t)n * ldx);
        return;
    }
    const int gi = L->gcn_cin, gc = L->gcn_cout, R = L->R, nq = L->nrel * R;
    const int nvd = 3 * gc + (L->down == 2 ? gc : 0);
    const size_t ldg = (size_t)gc * TV, ldvd = (size_t)nvd * TV;
    float *dg = S->dZ;
    OP(relu_backward, dg, dg, A->g, (size_t)n * ldg);
    if (L->down == 1)
        OP(accumulate, S->dX, dg, (size_t)n * ldg);
    else /* the down conv's output gradient lands in its rows of dvd */
        OP(bn_backward, S->dvd + 3 * (size_t)gc * TV, ldvd, dg, ldg, A->vd + 3 * (size_t)gc * TV, ldvd, n, gc, TV,
                        w + o->dbn.gb, A->dstat, g + o->dbn.gb, g + o->dbn.gb + gc);
    OP(bn_backward, S->dagg, ldg, dg, ldg, A->agg, ldg, n, gc, TV, w + o->gbn.gb, A->gstat, g + o->gbn.gb,
                    g + o->gbn.gb + gc);
    /* pass by pass (as in the forward): the adjacency again, the aggregation's gradients, and the
     * adjacency's from the pass's dAT while it is in cache */
    const size_t nrv = (size_t)nq * V * V;
    for (int i0 = 0; i0 < n; i0 += s->tp.chunk) {
        const int m = n - i0 < s->tp.chunk ? n - i0 : s->tp.chunk;
        const float *rel = A->rel + i0 * nrv;
        OP(adjacency_forward, S->AT, rel, w + o->W4, w + o->b4, w + o->alpha, w + o->PA, m, L->nrel, gc, R, V);
        OP(aggregate_backward, S->dvd + i0 * ldvd, ldvd, S->dAT, S->dagg + i0 * ldg, ldg, A->vd + i0 * ldvd, ldvd,
                               S->AT, m, gc, T, V);
        OP(adjacency_backward, S->drel + i0 * nrv, g + o->W4, g + o->b4, g + o->alpha, g + o->PA, S->dAT, rel,
                               w + o->W4, w + o->b4, w + o->alpha, m, L->nrel, gc, R, V);
    }
    OP(conv1x1_backward, S->dX, ldx, g + o->Wvd, g + o->bvd, S->dvd, ldvd, A->X, ldx, w + o->Wvd, n, nvd, gi, T, V,
                         1);
    OP(relation_backward, S->dqk, S->drel, A->rel, n, L->nrel, R, V);
    OP(zero, S->dxm, sizeof(float) * n * gi * V);
    OP(conv1x1_backward, S->dxm, (size_t)gi * V, g + o->Wqk, g + o->bqk, S->dqk, 2 * (size_t)nq * V, A->xm,
                         (size_t)gi * V, w + o->Wqk, n, 2 * nq, gi, 1, V, 1);
    OP(mean_time_backward, S->dX, ldx, S->dxm, n, gi, T, V);
}

/* ---- memory plans ------------------------------------------------------------------------------ */
/* Activation buffers of one block for n persons; `shared` sizes eval's reused buffers instead. */
typedef struct {
    size_t act, xm, qk, rel, adj, vd, agg, pw, outpre, stat, ctv;
    size_t wgrad; /* the most weights + biases of one of the block's convolutions, or dW4 + db4 */
} block_sizes;

static size_t conv_floats(size_t co, size_t ci, size_t k) { return co * ci * k + co; }

static block_sizes sizes_of(const ctrgcn_model *m, int k, int T, size_t n) {
    const block_layout *L = &m->blocks[k];
    const size_t V = m->spec.num_joints, TV = T * V, To = out_frames(L, T), ToV = To * V, VV = V * V;
    block_sizes z = {0};
    z.act = n * MAXZ(MAXZ(L->cin * TV, L->cout * ToV), (size_t)L->gcn_cout * TV);
    if (L->has_gcn) {
        const size_t gi = L->gcn_cin, gc = L->gcn_cout, nq = (size_t)L->nrel * L->R;
        z.xm = n * gi * V;
        z.qk = n * 2 * nq * V;
        z.rel = n * nq * VV;
        z.adj = n * 3 * gc * VV;
        z.vd = n * (3 * gc + (L->down == 2 ? gc : 0)) * TV;
        z.agg = n * gc * TV;
        z.wgrad = MAXZ(conv_floats(2 * nq, gi, 1), conv_floats(3 * gc + (L->down == 2 ? gc : 0), gi, 1));
        /* the adjacency backward's dW4, db4 partials, then one subset's dAT rel^T and row sums */
        z.wgrad = MAXZ(z.wgrad, 4 * (gc * (size_t)L->R + gc));
    }
    z.pw = n * 3 * (size_t)L->B * TV;
    z.outpre = n * L->cout * ToV;
    z.stat = 2 * (size_t)MAXZ(L->cout, 3 * L->B);
    z.ctv = MAXZ((size_t)MAXZ(L->cin, L->tcn_cin), (size_t)L->cout) * TV;
    z.wgrad = MAXZ(z.wgrad, MAXZ(conv_floats(3 * (size_t)L->B, L->tcn_cin, 1), conv_floats(L->B, L->B, L->kt)));
    z.wgrad = MAXZ(z.wgrad, MAXZ(conv_floats(L->last, L->tcn_cin, 1), conv_floats(L->cout, L->cin, 1)));
    return z;
}

/* Scratch per worker the CPU-style ops need: phase splits and column buffers of one person; in
 * training, after them, a thread's partial weight and bias gradients of one convolution. */
static size_t scratch_need(const ctrgcn_model *m, int T, int training) {
    size_t need = 0;
    int t = T;
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) {
        block_sizes z = sizes_of(m, k, t, 1);
        need = MAXZ(need, z.ctv + 32 * (size_t)t + 3 * (size_t)m->spec.num_joints * m->spec.num_joints +
                              (training ? z.wgrad : 0));
        t = out_frames(&m->blocks[k], t);
    }
    return need + 64;
}

static size_t eval_layout(ctrgcn_session *s, arena *a, int N, int T) {
    const ctrgcn_model *m = s->model;
    eval_plan *p = &s->ep;
    const size_t V = m->spec.num_joints, M = m->spec.num_person, C = m->spec.in_channels, P = (size_t)N * M;
    const size_t F = feat_width(m), chunk = p->chunk;
    p->x = arena_take(a, (size_t)N * C * T * V * M);
    p->in = arena_take(a, (size_t)N * C * T * V * M);
    p->X1 = arena_take(a, P * C * T * V);
    p->pooled = arena_take(a, P * F);
    p->feat = arena_take(a, (size_t)N * F);
    p->logits = arena_take(a, (size_t)N * m->spec.num_classes);
    block_sizes mx = {0};
    int t = T;
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) {
        block_sizes z = sizes_of(m, k, t, chunk);
        mx.act = MAXZ(mx.act, z.act);
        mx.xm = MAXZ(mx.xm, z.xm);
        mx.qk = MAXZ(mx.qk, z.qk);
        mx.rel = MAXZ(mx.rel, z.rel);
        mx.adj = MAXZ(mx.adj, z.adj);
        mx.vd = MAXZ(mx.vd, z.vd);
        mx.pw = MAXZ(mx.pw, z.pw);
        t = out_frames(&m->blocks[k], t);
    }
    for (int l = 0; l < p->lanes; l++) {
        block_acts *A = &p->lane_acts[l];
        A->X = arena_take(a, mx.act);
        A->Y = arena_take(a, mx.act);
        A->xm = arena_take(a, mx.xm);
        A->qk = arena_take(a, mx.qk);
        A->rel = arena_take(a, mx.rel);
        A->AT = arena_take(a, mx.adj);
        A->vd = arena_take(a, mx.vd);
        A->g = arena_take(a, mx.act);
        A->pw = A->P = arena_take(a, mx.pw);
    }
    return a->used;
}

/* A plan's memory, laid out twice by one function: a first pass counts the floats, a second hands
 * out the slots of the one allocation (*mem, replaced); then the backend's scratch for frames T. */
typedef size_t (*plan_layout)(ctrgcn_session *s, arena *a, int N, int T);

static ctrgcn_status plan_build(ctrgcn_session *s, void **mem, plan_layout layout, int N, int T, int training,
                                const char *what) {
    arena count = {NULL, 0};
    const size_t need = layout(s, &count, N, T);
    if (*mem) s->be->free(s->ctx, *mem);
    *mem = s->be->alloc(s->ctx, sizeof(float) * (need ? need : 16));
    if (!*mem)
        return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory planning %s for N=%d, T=%d (%.1f MB)", what, N, T,
                           need * 4e-6);
    arena a = {*mem, 0};
    layout(s, &a, N, T);
    return s->be->reserve(s->ctx, scratch_need(s->model, T, training));
}

ctrgcn_status driver_eval_plan(ctrgcn_session *s, int N, int T) {
    eval_plan *p = &s->ep;
    const int persons = N * s->model->spec.num_person;
    const int chunk = s->be->eval_chunk > 0 && s->be->eval_chunk < persons ? s->be->eval_chunk : persons;
    const int chunks = (persons + chunk - 1) / chunk;
    const int lanes = s->be->lanes(s->ctx, chunks);
    if (p->mem && p->N == N && p->T == T && p->lanes == lanes && p->chunk == chunk) return CTRGCN_OK;
    p->N = p->T = 0;
    free(p->lane_acts);
    p->lane_acts = calloc((size_t)lanes, sizeof *p->lane_acts);
    if (!p->lane_acts) return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory");
    p->lanes = lanes;
    p->chunk = chunk;
    const ctrgcn_status st = plan_build(s, &p->mem, eval_layout, N, T, 0, "a forward");
    if (st != CTRGCN_OK) return st;
    p->N = N;
    p->T = T;
    return CTRGCN_OK;
}

static size_t train_layout(ctrgcn_session *s, arena *a, int N, int T0) {
    const ctrgcn_model *m = s->model;
    train_plan *p = &s->tp;
    const size_t V = m->spec.num_joints, M = m->spec.num_person, C = m->spec.in_channels, n = (size_t)N * M;
    const size_t F = feat_width(m), K = m->spec.num_classes, mvc = M * V * C;
    p->x = arena_take(a, n * C * T0 * V);
    p->in = arena_take(a, (size_t)N * mvc * T0);
    p->in_bn = arena_take(a, (size_t)N * mvc * T0);
    p->in_stat = arena_take(a, 2 * mvc);
    p->feat = arena_take(a, (size_t)N * F);
    p->dfeat = arena_take(a, (size_t)N * F);
    p->logits = arena_take(a, (size_t)N * K);
    p->dlogits = arena_take(a, (size_t)N * K);
    p->targets = arena_take(a, (size_t)N * K);
    p->loss = (double *)arena_take(a, 2);
    float *X = arena_take(a, n * C * T0 * V);
    block_sizes mx = {0};
    int T = T0;
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) {
        const block_layout *L = &m->blocks[k];
        block_acts *A = &p->acts[k];
        block_sizes z = sizes_of(m, k, T, n);
        memset(A, 0, sizeof *A);
        A->T = T;
        A->To = out_frames(L, T);
        A->X = X;
        if (L->has_gcn) {
            A->xm = arena_take(a, z.xm);
            A->qk = arena_take(a, z.qk);
            A->rel = arena_take(a, z.rel);
            A->vd = arena_take(a, z.vd);
            A->agg = arena_take(a, z.agg);
            A->g = arena_take(a, z.agg);
            A->gstat = arena_take(a, 2 * (size_t)L->gcn_cout);
            A->dstat = arena_take(a, 2 * (size_t)L->gcn_cout);
        }
        A->pw = arena_take(a, z.pw);
        A->P = arena_take(a, z.pw);
        A->outpre = arena_take(a, z.outpre);
        A->argmax = (int *)arena_take(a, z.outpre);
        A->pstat = arena_take(a, z.stat);
        A->ostat = arena_take(a, z.stat);
        if (L->residual == 2) {
            A->respre = arena_take(a, z.outpre);
            A->rstat = arena_take(a, z.stat);
        }
        A->Y = arena_take(a, z.outpre);
        X = A->Y;
        mx.act = MAXZ(mx.act, z.act);
        mx.pw = MAXZ(mx.pw, z.pw);
        mx.vd = MAXZ(mx.vd, z.vd);
        mx.agg = MAXZ(mx.agg, MAXZ(z.agg, n * L->tcn_cin * (size_t)T * V));
        mx.adj = MAXZ(mx.adj, sizes_of(m, k, T, p->chunk).adj);
        mx.rel = MAXZ(mx.rel, z.rel);
        mx.qk = MAXZ(mx.qk, z.qk);
        mx.xm = MAXZ(mx.xm, z.xm);
        T = A->To;
    }
    train_scratch *S = &p->s;
    S->dX = arena_take(a, mx.act);
    S->dY = arena_take(a, mx.act);
    S->D1 = arena_take(a, mx.act);
    S->D2 = arena_take(a, mx.act);
    S->S2 = arena_take(a, mx.act);
    S->dP = arena_take(a, mx.pw);
    S->dPW = arena_take(a, mx.pw);
    S->dZ = arena_take(a, mx.agg);
    S->dagg = arena_take(a, mx.agg);
    S->dvd = arena_take(a, mx.vd);
    S->AT = arena_take(a, mx.adj);
    S->dAT = arena_take(a, mx.adj);
    S->drel = arena_take(a, mx.rel);
    S->dqk = arena_take(a, mx.qk);
    S->dxm = arena_take(a, mx.xm);
    return a->used;
}

ctrgcn_status driver_train_plan(ctrgcn_session *s, int N, int T) {
    train_plan *p = &s->tp;
    const int persons = N * s->model->spec.num_person, want = s->be->train_chunk(s->ctx);
    const int chunk = want > 0 && want < persons ? want : persons;
    if (p->mem && p->N == N && p->T == T && p->chunk == chunk) return CTRGCN_OK;
    p->N = p->T = 0;
    p->chunk = chunk;
    s->has_forward = 0;
    const ctrgcn_status st = plan_build(s, &p->mem, train_layout, N, T, 1, "training");
    if (st != CTRGCN_OK) return st;
    p->N = N;
    p->T = T;
    return CTRGCN_OK;
}

void driver_free_plans(ctrgcn_session *s) {
    if (s->ep.mem) s->be->free(s->ctx, s->ep.mem);
    if (s->tp.mem) s->be->free(s->ctx, s->tp.mem);
    free(s->ep.lane_acts);
    memset(&s->ep, 0, sizeof s->ep);
    memset(&s->tp, 0, sizeof s->tp);
}

/* ---- eval ------------------------------------------------------------------------------------ */
typedef struct {
    ctrgcn_session *s;
    int persons, probe_block;
    float *probe;
    size_t probe_stride; /* floats per person of the probed block */
} eval_job;

/* One pass: persons [p0, p1) through the backbone in the lane's buffers, pooled per person. */
static void eval_chunk(void *arg, int chunk, int lane) {
    eval_job *job = arg;
    ctrgcn_session *s = job->s;
    const ctrgcn_model *m = s->model;
    eval_plan *p = &s->ep;
    const int V = m->spec.num_joints, C = m->spec.in_channels;
    const int p0 = chunk * p->chunk, p1 = MAXZ(p0, (p0 + p->chunk < job->persons ? p0 + p->chunk : job->persons));
    const int n = p1 - p0;
    block_acts A = p->lane_acts[lane];
    float *bufs[2] = {A.X, A.Y};
    const float *x = p->X1 + (size_t)p0 * C * p->T * V;
    int T = p->T;
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) {
        A.X = (float *)x;
        A.Y = bufs[k & 1];
        A.T = T;
        A.To = out_frames(&m->blocks[k], T);
        block_forward(s, k, s->eval_w, &A, n, 0, 0);
        x = A.Y;
        T = A.To;
        if (job->probe && k + 1 == job->probe_block)
            OP(download, job->probe + (size_t)p0 * job->probe_stride, A.Y,
                            sizeof(float) * n * job->probe_stride);
    }
    OP(pool_forward, p->pooled + (size_t)p0 * feat_width(m), x, n, 1, feat_width(m), (size_t)T * V);
}

void driver_eval_forward(ctrgcn_session *s, int N, int T, int probe_block, float *probe, size_t probe_stride) {
    const ctrgcn_model *m = s->model;
    const ctrgcn_backend *be = s->be;
    eval_plan *p = &s->ep;
    const int C = m->spec.in_channels, V = m->spec.num_joints, M = m->spec.num_person, mvc = M * V * C;
    const float *w = s->eval_w;
    OP(input_forward, p->in, p->x, N, C, T, V, M);
    OP(affine_forward, p->in, p->in, (size_t)mvc * T, N, mvc, T, w + s->view.data_bn.gb,
                       w + s->view.data_bn.gb + mvc);
    OP(persons_forward, p->X1, p->in, N, C, T, V, M);
    eval_job job = {s, N * M, probe_block, probe, probe_stride};
    const int chunks = (N * M + p->chunk - 1) / p->chunk;
    be->run_lanes(s->ctx, chunks, p->lanes, eval_chunk, &job);
    const int F = feat_width(m);
    OP(pool_forward, p->feat, p->pooled, N, M, F, 1);
    OP(linear_forward, p->logits, p->feat, w + s->view.fc_w, w + s->view.fc_b, N, m->spec.num_classes, F);
}

/* ---- training ---------------------------------------------------------------------------------- */
void driver_train_forward(ctrgcn_session *s, int update_stats) {
    const ctrgcn_model *m = s->model;
    train_plan *p = &s->tp;
    const int N = p->N, T = p->T, C = m->spec.in_channels, V = m->spec.num_joints, M = m->spec.num_person;
    const int mvc = M * V * C, F = feat_width(m);
    const bn_slot db = s->view.data_bn;
    float *w = s->w;
    /* data_bn: channels (m, v, c), statistics over samples and frames */
    OP(input_forward, p->in, p->x, N, C, T, V, M);
    OP(bn_forward, p->in_bn, (size_t)mvc * T, p->in, (size_t)mvc * T, N, mvc, T, w + db.gb, w + db.gb + mvc,
                   p->in_stat, update_stats ? w + db.run : NULL, update_stats ? w + db.run + mvc : NULL, MOMENTUM,
                   NULL, 0, 0);
    OP(persons_forward, p->acts[0].X, p->in_bn, N, C, T, V, M);
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) block_forward(s, k, w, &p->acts[k], N * M, 1, update_stats);
    const block_acts *last = &p->acts[CTRGCN_NUM_BLOCKS - 1];
    OP(pool_forward, p->feat, last->Y, N, M, F, (size_t)last->To * V);
    OP(linear_forward, p->logits, p->feat, w + s->view.fc_w, w + s->view.fc_b, N, m->spec.num_classes, F);
}

/* From p->dlogits: every gradient into s->grad (zeroed first). */
void driver_train_backward(ctrgcn_session *s) {
    const ctrgcn_model *m = s->model;
    train_plan *p = &s->tp;
    const int N = p->N, T = p->T, C = m->spec.in_channels, V = m->spec.num_joints, M = m->spec.num_person;
    const int mvc = M * V * C, F = feat_width(m), K = m->spec.num_classes;
    const bn_slot db = s->view.data_bn;
    float *g = s->grad;
    OP(zero, g, sizeof(float) * s->view.size);
    OP(linear_backward, p->dfeat, g + s->view.fc_w, g + s->view.fc_b, p->dlogits, p->feat, s->w + s->view.fc_w,
                        N, K, F);
    const block_acts *last = &p->acts[CTRGCN_NUM_BLOCKS - 1];
    OP(pool_backward, p->s.dY, p->dfeat, N, M, F, (size_t)last->To * V);
    for (int k = CTRGCN_NUM_BLOCKS - 1; k >= 0; k--) {
        block_backward(s, k, N * M);
        float *swap = p->s.dX; /* this block's dX is the dY of the one before */
        p->s.dX = p->s.dY;
        p->s.dY = swap;
    }
    /* data_bn: the input gradient itself is not wanted; it overwrites the incoming one */
    OP(persons_backward, p->in_bn, p->s.dY, N, C, T, V, M);
    OP(bn_backward, p->in_bn, (size_t)mvc * T, p->in_bn, (size_t)mvc * T, p->in, (size_t)mvc * T, N, mvc, T,
                    s->w + db.gb, p->in_stat, g + db.gb, g + db.gb + mvc);
    for (int i = 0; i < s->view.num_absent; i++) /* slots no tensor fills keep no gradient */
        OP(zero, g + s->view.absent[i].off, sizeof(float) * s->view.absent[i].count);
}

/* The training view of the parameters: each block's projections stacked into the matrices the
 * GEMMs want (the three subsets' q/k/value convs, the three pointwise branch convs, the tconv
 * taps outermost) plus every BatchNorm as [gamma | beta | running mean | running var].
 * Unfused and fused variants compute the same functions in this view; only the map from the
 * named tensors differs, and that map is a list of copy descriptors built from the tensor table.
 * Gradients come back through the same map. Absent tensors (the fused variants' missing biases)
 * stay zero and their gradients are dropped. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/train.h"

typedef struct {
    train_pack_layout *pl;
    const ctrgcn_model *m;
    size_t used;
    int failed;
} builder;

static size_t reserve(builder *b, size_t n) {
    const size_t off = b->used;
    b->used += n;
    return off;
}

static void map(builder *b, size_t pack_off, int tensor, size_t tensor_off, size_t count, int taps) {
    if (tensor < 0 || b->failed) return;
    train_pack_layout *pl = b->pl;
    if (pl->num_copies == pl->cap_copies) {
        const int cap = pl->cap_copies ? 2 * pl->cap_copies : 512;
        pack_copy *c = realloc(pl->copies, sizeof *c * cap);
        if (!c) {
            b->failed = 1;
            return;
        }
        pl->copies = c;
        pl->cap_copies = cap;
    }
    pack_copy *c = &pl->copies[pl->num_copies++];
    c->pack = pack_off;
    c->param = b->m->tensors[tensor].offset + tensor_off;
    c->count = count;
    c->taps = taps;
}

/* a BN of C channels in the pack; its four tensors map onto channel slice [c0, c0 + n) */
static void map_bn(builder *b, size_t bn, int C, bn_ref r, int c0, int n) {
    map(b, bn + c0, r.w, 0, n, 0);
    map(b, bn + C + c0, r.b, 0, n, 0);
    map(b, bn + 2 * (size_t)C + c0, r.mean, 0, n, 0);
    map(b, bn + 3 * (size_t)C + c0, r.var, 0, n, 0);
}

static void build(builder *b) {
    const ctrgcn_model *m = b->m;
    train_pack_layout *pl = b->pl;
    const int V = m->spec.num_joints, mvc = m->spec.num_person * V * m->spec.in_channels;
    pl->data_bn = reserve(b, 4 * (size_t)mvc);
    map_bn(b, pl->data_bn, mvc, (bn_ref){m->data_bn_w, m->data_bn_b, m->data_bn_mean, m->data_bn_var}, 0, mvc);
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) {
        const block_layout *L = &m->blocks[k];
        const block_refs *r = &m->refs[k];
        train_block_offsets *o = &pl->blocks[k];
        if (L->has_gcn) {
            const int ci = L->gcn_cin, gc = L->gcn_cout, R = L->R, nq = L->nrel * R;
            o->Wqk = reserve(b, 2 * (size_t)nq * ci);
            o->bqk = reserve(b, 2 * (size_t)nq);
            o->Wval = reserve(b, 3 * (size_t)gc * ci);
            o->bval = reserve(b, 3 * (size_t)gc);
            if (!L->fused) {
                for (int i = 0; i < 3; i++) {
                    map(b, o->Wqk + (size_t)i * R * ci, r->q[i].w, 0, (size_t)R * ci, 0);
                    map(b, o->Wqk + (size_t)(nq + i * R) * ci, r->k[i].w, 0, (size_t)R * ci, 0);
                    map(b, o->bqk + i * R, r->q[i].b, 0, R, 0);
                    map(b, o->bqk + nq + i * R, r->k[i].b, 0, R, 0);
                    map(b, o->Wval + (size_t)i * gc * ci, r->val[i].w, 0, (size_t)gc * ci, 0);
                    map(b, o->bval + (size_t)i * gc, r->val[i].b, 0, gc, 0);
                }
            } else {
                map(b, o->Wqk, r->fused_conv1.w, 0, 2 * (size_t)nq * ci, 0);
                map(b, o->bqk, r->fused_conv1.b, 0, 2 * (size_t)nq, 0);
                map(b, o->Wval, r->fused_conv1.w, 2 * (size_t)nq * ci, 3 * (size_t)gc * ci, 0);
                map(b, o->bval, r->fused_conv1.b, 2 * (size_t)nq, 3 * (size_t)gc, 0);
            }
            o->W4 = reserve(b, 3 * (size_t)gc * R);
            o->b4 = reserve(b, 3 * (size_t)gc);
            for (int i = 0; i < 3; i++) {
                map(b, o->W4 + (size_t)i * gc * R, r->rel[i].w, 0, (size_t)gc * R, 0);
                map(b, o->b4 + (size_t)i * gc, r->rel[i].b, 0, gc, 0);
            }
            o->PA = reserve(b, 3 * (size_t)V * V);
            map(b, o->PA, r->PA, 0, 3 * (size_t)V * V, 0);
            o->alpha = reserve(b, 1);
            map(b, o->alpha, r->alpha, 0, 1, 0);
            o->gbn = reserve(b, 4 * (size_t)gc);
            map_bn(b, o->gbn, gc, r->gcn_bn, 0, gc);
            if (L->down == 2) {
                o->Wd = reserve(b, (size_t)gc * ci);
                o->bd = reserve(b, gc);
                o->dbn = reserve(b, 4 * (size_t)gc);
                map(b, o->Wd, r->down.w, 0, (size_t)gc * ci, 0);
                map(b, o->bd, r->down.b, 0, gc, 0);
                map_bn(b, o->dbn, gc, r->down_bn, 0, gc);
            }
        }
        const int ci = L->tcn_cin, B = L->B, co = L->cout;
        o->Wpw = reserve(b, 3 * (size_t)B * ci);
        o->bpw = reserve(b, 3 * (size_t)B);
        o->pbn = reserve(b, 4 * 3 * (size_t)B);
        if (!L->fused) {
            for (int j = 0; j < 3; j++) {
                map(b, o->Wpw + (size_t)j * B * ci, r->pw[j].w, 0, (size_t)B * ci, 0);
                map(b, o->bpw + (size_t)j * B, r->pw[j].b, 0, B, 0);
                map_bn(b, o->pbn, 3 * B, r->pw_bn[j], j * B, B);
            }
        } else {
            map(b, o->Wpw, r->pw[0].w, 0, 3 * (size_t)B * ci, 0);
            map_bn(b, o->pbn, 3 * B, r->pw_bn[0], 0, 3 * B);
        }
        /* branch outputs in channel order: tconv d=1, tconv d=2, pool, branch 3 — one BN view of cout */
        o->obn = reserve(b, 4 * (size_t)co);
        for (int j = 0; j < 2; j++) {
            o->Wt[j] = reserve(b, 5 * (size_t)B * B);
            o->bt[j] = reserve(b, B);
            map(b, o->Wt[j], r->tconv[j].w, 0, (size_t)B * B, 5); /* [o][i][tap] -> [tap][o][i] */
            map(b, o->bt[j], r->tconv[j].b, 0, B, 0);
            map_bn(b, o->obn, co, r->tconv_bn[j], j * B, B);
        }
        map_bn(b, o->obn, co, r->pool_bn, 2 * B, B);
        o->Wb3 = reserve(b, (size_t)L->last * ci);
        o->bb3 = reserve(b, L->last);
        map(b, o->Wb3, r->b3.w, 0, (size_t)L->last * ci, 0);
        map(b, o->bb3, r->b3.b, 0, L->last, 0);
        map_bn(b, o->obn, co, r->b3_bn, 3 * B, L->last);
        if (L->residual == 2) {
            o->Wres = reserve(b, (size_t)co * L->cin);
            o->bres = reserve(b, co);
            o->rbn = reserve(b, 4 * (size_t)co);
            map(b, o->Wres, r->res.w, 0, (size_t)co * L->cin, 0);
            map(b, o->bres, r->res.b, 0, co, 0);
            map_bn(b, o->rbn, co, r->res_bn, 0, co);
        }
    }
    const int feat = m->blocks[CTRGCN_NUM_BLOCKS - 1].cout, K = m->spec.num_classes;
    pl->fc_w = reserve(b, (size_t)K * feat);
    pl->fc_b = reserve(b, K);
    map(b, pl->fc_w, m->fc_w, 0, (size_t)K * feat, 0);
    map(b, pl->fc_b, m->fc_b, 0, K, 0);
}

ctrgcn_status train_pack_build(const ctrgcn_model *m, train_pack_layout *pl) {
    memset(pl, 0, sizeof *pl);
    builder b = {pl, m, 0, 0};
    build(&b);
    if (b.failed) return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory building the training view");
    pl->size = b.used;
    return CTRGCN_OK;
}

void train_pack_gather(const train_pack_layout *pl, const float *params, float *pack) {
    memset(pack, 0, sizeof(float) * pl->size);
    for (int i = 0; i < pl->num_copies; i++) {
        const pack_copy *c = &pl->copies[i];
        if (!c->taps) {
            memcpy(pack + c->pack, params + c->param, sizeof(float) * c->count);
            continue;
        }
        /* count = out*in pairs; source [pair][tap], destination [tap][pair] */
        for (size_t e = 0; e < c->count; e++)
            for (int t = 0; t < c->taps; t++) pack[c->pack + (size_t)t * c->count + e] = params[c->param + e * c->taps + t];
    }
}

void train_pack_scatter(const train_pack_layout *pl, const float *pack, float *params) {
    for (int i = 0; i < pl->num_copies; i++) {
        const pack_copy *c = &pl->copies[i];
        if (!c->taps) {
            memcpy(params + c->param, pack + c->pack, sizeof(float) * c->count);
            continue;
        }
        for (size_t e = 0; e < c->count; e++)
            for (int t = 0; t < c->taps; t++) params[c->param + e * c->taps + t] = pack[c->pack + (size_t)t * c->count + e];
    }
}

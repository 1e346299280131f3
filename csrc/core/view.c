/* Building the parameter view from the tensor table (see view.h). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/view.h"

typedef struct {
    param_view *v;
    const ctrgcn_model *m;
    size_t learned, buffers, buffer_base;
    int record, failed;
} builder;

static size_t learned(builder *b, size_t n) {
    const size_t off = b->learned;
    b->learned += n;
    return off;
}

static size_t buffer(builder *b, size_t n) {
    const size_t off = b->buffer_base + b->buffers;
    b->buffers += n;
    return off;
}

static void map(builder *b, size_t pack_off, int tensor, size_t tensor_off, size_t count, int taps) {
    if (tensor < 0 || !b->record || b->failed) return;
    param_view *v = b->v;
    if (v->num_copies == v->cap_copies) {
        const int cap = v->cap_copies ? 2 * v->cap_copies : 512;
        view_copy *c = realloc(v->copies, sizeof *c * cap);
        if (!c) {
            b->failed = 1;
            return;
        }
        v->copies = c;
        v->cap_copies = cap;
    }
    view_copy *c = &v->copies[v->num_copies++];
    c->pack = pack_off;
    c->param = b->m->tensors[tensor].offset + tensor_off;
    c->count = count;
    c->taps = taps;
}

static bn_slot bn(builder *b, int C) {
    bn_slot s = {learned(b, 2 * (size_t)C), buffer(b, 2 * (size_t)C)};
    return s;
}

/* a BN of C channels; its four tensors map onto channel slice [c0, c0 + n) */
static void map_bn(builder *b, bn_slot s, int C, bn_ref r, int c0, int n) {
    map(b, s.gb + c0, r.w, 0, n, 0);
    map(b, s.gb + C + c0, r.b, 0, n, 0);
    map(b, s.run + c0, r.mean, 0, n, 0);
    map(b, s.run + C + c0, r.var, 0, n, 0);
}

static void walk(builder *b) {
    const ctrgcn_model *m = b->m;
    param_view *v = b->v;
    const int V = m->spec.num_joints, mvc = m->spec.num_person * V * m->spec.in_channels;
    v->data_bn = bn(b, mvc);
    map_bn(b, v->data_bn, mvc, (bn_ref){m->data_bn_w, m->data_bn_b, m->data_bn_mean, m->data_bn_var}, 0, mvc);
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) {
        const block_layout *L = &m->blocks[k];
        const block_refs *r = &m->refs[k];
        view_block *o = &v->blocks[k];
        if (L->has_gcn) {
            const int ci = L->gcn_cin, gc = L->gcn_cout, R = L->R, nq = L->nrel * R, nd = L->down == 2 ? gc : 0;
            o->Wqk = learned(b, 2 * (size_t)nq * ci);
            o->bqk = learned(b, 2 * (size_t)nq);
            o->Wvd = learned(b, (3 * (size_t)gc + nd) * ci);
            o->bvd = learned(b, 3 * (size_t)gc + nd);
            if (!L->fused) {
                for (int i = 0; i < 3; i++) {
                    map(b, o->Wqk + (size_t)i * R * ci, r->q[i].w, 0, (size_t)R * ci, 0);
                    map(b, o->Wqk + (size_t)(nq + i * R) * ci, r->k[i].w, 0, (size_t)R * ci, 0);
                    map(b, o->bqk + i * R, r->q[i].b, 0, R, 0);
                    map(b, o->bqk + nq + i * R, r->k[i].b, 0, R, 0);
                    map(b, o->Wvd + (size_t)i * gc * ci, r->val[i].w, 0, (size_t)gc * ci, 0);
                    map(b, o->bvd + (size_t)i * gc, r->val[i].b, 0, gc, 0);
                }
            } else {
                map(b, o->Wqk, r->fused_conv1.w, 0, 2 * (size_t)nq * ci, 0);
                map(b, o->bqk, r->fused_conv1.b, 0, 2 * (size_t)nq, 0);
                map(b, o->Wvd, r->fused_conv1.w, 2 * (size_t)nq * ci, 3 * (size_t)gc * ci, 0);
                map(b, o->bvd, r->fused_conv1.b, 2 * (size_t)nq, 3 * (size_t)gc, 0);
            }
            o->W4 = learned(b, 3 * (size_t)gc * R);
            o->b4 = learned(b, 3 * (size_t)gc);
            for (int i = 0; i < 3; i++) {
                map(b, o->W4 + (size_t)i * gc * R, r->rel[i].w, 0, (size_t)gc * R, 0);
                map(b, o->b4 + (size_t)i * gc, r->rel[i].b, 0, gc, 0);
            }
            o->PA = learned(b, 3 * (size_t)V * V);
            map(b, o->PA, r->PA, 0, 3 * (size_t)V * V, 0);
            o->alpha = learned(b, 1);
            map(b, o->alpha, r->alpha, 0, 1, 0);
            o->gbn = bn(b, gc);
            map_bn(b, o->gbn, gc, r->gcn_bn, 0, gc);
            if (L->down == 2) {
                map(b, o->Wvd + 3 * (size_t)gc * ci, r->down.w, 0, (size_t)gc * ci, 0);
                map(b, o->bvd + 3 * (size_t)gc, r->down.b, 0, gc, 0);
                o->dbn = bn(b, gc);
                map_bn(b, o->dbn, gc, r->down_bn, 0, gc);
            }
        }
        const int ci = L->tcn_cin, B = L->B, co = L->cout;
        o->Wpw = learned(b, 3 * (size_t)B * ci);
        o->bpw = learned(b, 3 * (size_t)B);
        o->pbn = bn(b, 3 * B);
        if (!L->fused) {
            for (int j = 0; j < 3; j++) {
                map(b, o->Wpw + (size_t)j * B * ci, r->pw[j].w, 0, (size_t)B * ci, 0);
                map(b, o->bpw + (size_t)j * B, r->pw[j].b, 0, B, 0);
                map_bn(b, o->pbn, 3 * B, r->pw_bn[j], j * B, B);
            }
        } else {
            map(b, o->Wpw, r->pw[0].w, 0, 3 * (size_t)B * ci, 0);
            map(b, o->bpw, r->pw[0].b, 0, 3 * (size_t)B, 0);
            map_bn(b, o->pbn, 3 * B, r->pw_bn[0], 0, 3 * B);
        }
        /* branch outputs in channel order: tconv d1, tconv d2, pool, branch 3 */
        o->obn = bn(b, co);
        for (int j = 0; j < 2; j++) {
            o->Wt[j] = learned(b, (size_t)L->kt * B * B);
            o->bt[j] = learned(b, B);
            map(b, o->Wt[j], r->tconv[j].w, 0, (size_t)B * B, L->kt); /* [o][i][tap] -> [tap][o][i] */
            map(b, o->bt[j], r->tconv[j].b, 0, B, 0);
            map_bn(b, o->obn, co, r->tconv_bn[j], j * B, B);
        }
        map_bn(b, o->obn, co, r->pool_bn, 2 * B, B);
        o->Wb3 = learned(b, (size_t)L->last * ci);
        o->bb3 = learned(b, L->last);
        map(b, o->Wb3, r->b3.w, 0, (size_t)L->last * ci, 0);
        map(b, o->bb3, r->b3.b, 0, L->last, 0);
        map_bn(b, o->obn, co, r->b3_bn, 3 * B, L->last);
        if (L->residual == 2) {
            o->Wres = learned(b, (size_t)co * L->cin);
            o->bres = learned(b, co);
            o->rbn = bn(b, co);
            map(b, o->Wres, r->res.w, 0, (size_t)co * L->cin, 0);
            map(b, o->bres, r->res.b, 0, co, 0);
            map_bn(b, o->rbn, co, r->res_bn, 0, co);
        }
    }
    const int feat = m->blocks[CTRGCN_NUM_BLOCKS - 1].cout, K = m->spec.num_classes;
    v->fc_w = learned(b, (size_t)K * feat);
    v->fc_b = learned(b, K);
    map(b, v->fc_w, m->fc_w, 0, (size_t)K * feat, 0);
    map(b, v->fc_b, m->fc_b, 0, K, 0);
}

static ctrgcn_status find_absent(param_view *v) {
    unsigned char *covered = calloc(v->learned ? v->learned : 1, 1);
    if (!covered) return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < v->num_copies; i++) {
        const view_copy *c = &v->copies[i];
        const size_t n = c->count * (c->taps ? (size_t)c->taps : 1);
        if (c->pack < v->learned) memset(covered + c->pack, 1, n);
    }
    int cap = 0;
    for (size_t e = 0; e < v->learned;) {
        if (covered[e]) {
            e++;
            continue;
        }
        size_t end = e;
        while (end < v->learned && !covered[end]) end++;
        if (v->num_absent == cap) {
            cap = cap ? 2 * cap : 32;
            view_range *r = realloc(v->absent, sizeof *r * cap);
            if (!r) {
                free(covered);
                return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory");
            }
            v->absent = r;
        }
        v->absent[v->num_absent++] = (view_range){e, end - e};
        e = end;
    }
    free(covered);
    return CTRGCN_OK;
}

ctrgcn_status view_build(const ctrgcn_model *m, param_view *v) {
    memset(v, 0, sizeof *v);
    builder dry = {v, m, 0, 0, 0, 0, 0};
    walk(&dry); /* sizes the learned region, so the buffers can follow it */
    builder b = {v, m, 0, 0, dry.learned, 1, 0};
    walk(&b);
    if (b.failed) {
        view_free(v);
        return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory building the parameter view");
    }
    v->learned = b.learned;
    v->size = b.learned + b.buffers;
    ctrgcn_status st = find_absent(v);
    if (st != CTRGCN_OK) view_free(v);
    return st;
}

void view_free(param_view *v) {
    if (!v) return;
    free(v->copies);
    free(v->absent);
    v->copies = NULL;
    v->absent = NULL;
    v->num_copies = v->cap_copies = v->num_absent = 0;
}

void view_gather(const param_view *v, const float *params, float *view) {
    memset(view, 0, sizeof(float) * v->size);
    for (int i = 0; i < v->num_copies; i++) {
        const view_copy *c = &v->copies[i];
        if (!c->taps) {
            memcpy(view + c->pack, params + c->param, sizeof(float) * c->count);
            continue;
        }
        /* count = out*in pairs; source [pair][tap], destination [tap][pair] */
        for (size_t e = 0; e < c->count; e++)
            for (int t = 0; t < c->taps; t++) view[c->pack + (size_t)t * c->count + e] = params[c->param + e * c->taps + t];
    }
}

void view_scatter(const param_view *v, const float *view, float *params) {
    for (int i = 0; i < v->num_copies; i++) {
        const view_copy *c = &v->copies[i];
        if (!c->taps) {
            memcpy(params + c->param, view + c->pack, sizeof(float) * c->count);
            continue;
        }
        for (size_t e = 0; e < c->count; e++)
            for (int t = 0; t < c->taps; t++) params[c->param + e * c->taps + t] = view[c->pack + (size_t)t * c->count + e];
    }
}

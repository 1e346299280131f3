/* Eval weights: every BatchNorm folded into the convolution before it where that is exact, alpha
 * folded into the relation convs, the subsets' projections stacked into one GEMM each. Rebuilt
 * whenever a tensor changes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/model.h"

#define BN_EPS 1e-5

/* s = gamma / sqrt(var + eps), h = beta - mean * s */
static void bn_fold(const ctrgcn_model *m, bn_ref bn, int c, double *s, double *h) {
    const float *g = tensor_data(m, bn.w), *b = tensor_data(m, bn.b);
    const float *mu = tensor_data(m, bn.mean), *var = tensor_data(m, bn.var);
    *s = g[c] / sqrt((double)var[c] + BN_EPS);
    *h = b[c] - mu[c] * *s;
}

/* dst rows [row0, row0+rows) = conv weight rows * bn scale; returns nothing, adds the folded bias
 * to bias_dst (when given). Conv weight is [rows, cols] (1x1). */
static void fold_conv_rows(const ctrgcn_model *m, conv_ref conv, bn_ref bn, int rows, int cols,
                           float *W, float *bias_dst) {
    const float *w = tensor_data(m, conv.w), *b = tensor_data(m, conv.b);
    for (int r = 0; r < rows; r++) {
        double s = 1.0, h = 0.0;
        if (bn.w >= 0) bn_fold(m, bn, r, &s, &h);
        for (int j = 0; j < cols; j++) W[(size_t)r * cols + j] = (float)(w[(size_t)r * cols + j] * s);
        if (bias_dst) bias_dst[r] += (float)((b ? b[r] : 0.0) * s + h);
    }
}

static void layout_packed(ctrgcn_model *m, arena *a) {
    const int V = m->spec.num_joints;
    const size_t mvc = (size_t)m->spec.num_person * V * m->spec.in_channels;
    m->in_scale = arena_take(a, mvc);
    m->in_shift = arena_take(a, mvc);
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) {
        const block_layout *L = &m->blocks[k];
        packed_block *pb = &m->pb[k];
        memset(pb, 0, sizeof *pb);
        if (L->has_gcn) {
            const size_t ci = L->gcn_cin, gc = L->gcn_cout, R = L->R, nqk = 2 * (size_t)L->nrel * R;
            const size_t nvd = 3 * gc + (L->down == 2 ? gc : 0);
            pb->Wqk = arena_take(a, nqk * ci);
            pb->bqk = arena_take(a, nqk);
            pb->Wvd = arena_take(a, nvd * ci);
            pb->bvd = arena_take(a, nvd);
            pb->W4 = arena_take(a, 3 * gc * R);
            pb->b4 = arena_take(a, 3 * gc);
            pb->AT = arena_take(a, 3 * (size_t)V * V);
            pb->gshift = arena_take(a, gc);
        }
        const size_t ci = L->tcn_cin, B = L->B;
        pb->Wpw = arena_take(a, 3 * B * ci);
        pb->bpw = arena_take(a, 3 * B);
        pb->Wt[0] = arena_take(a, 5 * B * B);
        pb->Wt[1] = arena_take(a, 5 * B * B);
        pb->pool_scale = arena_take(a, B);
        pb->Wb3 = arena_take(a, (size_t)L->last * ci);
        if (L->residual == 2) pb->Wres = arena_take(a, (size_t)L->cout * L->cin);
        pb->ybias = arena_take(a, L->cout);
    }
}

static void pack_gcn(const ctrgcn_model *m, const block_layout *L, const block_refs *r, packed_block *pb) {
    const int ci = L->gcn_cin, gc = L->gcn_cout, R = L->R, V = m->spec.num_joints;
    const int nq = L->nrel * R; /* q rows, then as many k rows */
    const bn_ref none = {-1, -1, -1, -1};
    memset(pb->bqk, 0, sizeof(float) * 2 * nq);
    memset(pb->bvd, 0, sizeof(float) * (3 * gc + (L->down == 2 ? gc : 0)));
    if (!L->fused) {
        for (int i = 0; i < 3; i++) {
            fold_conv_rows(m, r->q[i], none, R, ci, pb->Wqk + (size_t)i * R * ci, pb->bqk + i * R);
            fold_conv_rows(m, r->k[i], none, R, ci, pb->Wqk + (size_t)(nq + i * R) * ci, pb->bqk + nq + i * R);
        }
    } else {
        const float *w = tensor_data(m, r->fused_conv1.w), *b = tensor_data(m, r->fused_conv1.b);
        memcpy(pb->Wqk, w, sizeof(float) * 2 * nq * ci);
        memcpy(pb->bqk, b, sizeof(float) * 2 * nq);
    }
    /* values: BN scale of the unit folds into each subset's value rows (the aggregation is linear
     * per channel), the BN shift is added once after the sum. */
    for (int i = 0; i < 3; i++) {
        const float *w, *b;
        if (!L->fused) {
            w = tensor_data(m, r->val[i].w);
            b = tensor_data(m, r->val[i].b);
        } else {
            w = tensor_data(m, r->fused_conv1.w) + (size_t)(2 * nq + i * gc) * ci;
            b = tensor_data(m, r->fused_conv1.b) + 2 * nq + i * gc;
        }
        for (int c = 0; c < gc; c++) {
            double s, h;
            bn_fold(m, r->gcn_bn, c, &s, &h);
            for (int j = 0; j < ci; j++)
                pb->Wvd[(size_t)(i * gc + c) * ci + j] = (float)(w[(size_t)c * ci + j] * s);
            pb->bvd[i * gc + c] = (float)(b[c] * s);
            if (i == 0) pb->gshift[c] = (float)h;
        }
    }
    if (L->down == 2)
        fold_conv_rows(m, r->down, r->down_bn, gc, ci, pb->Wvd + (size_t)3 * gc * ci, pb->bvd + 3 * gc);
    const float alpha = tensor_data(m, r->alpha)[0];
    for (int i = 0; i < 3; i++) {
        const float *w = tensor_data(m, r->rel[i].w), *b = tensor_data(m, r->rel[i].b);
        for (int c = 0; c < gc; c++) {
            for (int j = 0; j < R; j++) pb->W4[(size_t)(i * gc + c) * R + j] = alpha * w[(size_t)c * R + j];
            pb->b4[i * gc + c] = alpha * b[c];
        }
    }
    const float *PA = tensor_data(m, r->PA);
    for (int i = 0; i < 3; i++)
        for (int u = 0; u < V; u++)
            for (int v = 0; v < V; v++) pb->AT[((size_t)i * V + v) * V + u] = PA[((size_t)i * V + u) * V + v];
}

static void pack_tcn(const ctrgcn_model *m, const block_layout *L, const block_refs *r, packed_block *pb) {
    const int ci = L->tcn_cin, B = L->B;
    memset(pb->bpw, 0, sizeof(float) * 3 * B);
    memset(pb->ybias, 0, sizeof(float) * L->cout);
    if (!L->fused)
        for (int j = 0; j < 3; j++)
            fold_conv_rows(m, r->pw[j], r->pw_bn[j], B, ci, pb->Wpw + (size_t)j * B * ci, pb->bpw + j * B);
    else
        fold_conv_rows(m, r->pw[0], r->pw_bn[0], 3 * B, ci, pb->Wpw, pb->bpw);
    for (int j = 0; j < 2; j++) {
        const float *w = tensor_data(m, r->tconv[j].w), *b = tensor_data(m, r->tconv[j].b);
        for (int o = 0; o < B; o++) {
            double s, h;
            bn_fold(m, r->tconv_bn[j], o, &s, &h);
            for (int i = 0; i < B; i++)
                for (int tap = 0; tap < 5; tap++)
                    pb->Wt[j][((size_t)tap * B + o) * B + i] = (float)(w[((size_t)o * B + i) * 5 + tap] * s);
            pb->ybias[j * B + o] += (float)((b ? b[o] : 0.0) * s + h);
        }
    }
    for (int o = 0; o < B; o++) {
        double s, h;
        bn_fold(m, r->pool_bn, o, &s, &h);
        pb->pool_scale[o] = (float)s;
        pb->ybias[2 * B + o] += (float)h;
    }
    fold_conv_rows(m, r->b3, r->b3_bn, L->last, ci, pb->Wb3, pb->ybias + 3 * B);
    if (L->residual == 2) fold_conv_rows(m, r->res, r->res_bn, L->cout, L->cin, pb->Wres, pb->ybias);
}

ctrgcn_status model_pack(ctrgcn_model *m) {
    if (m->packed_valid) return CTRGCN_OK;
    if (!m->packed) {
        arena count = {NULL, 0};
        layout_packed(m, &count);
        m->packed = malloc(sizeof(float) * count.used);
        if (!m->packed) return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory packing eval weights");
        m->packed_size = count.used;
    }
    arena a = {m->packed, 0};
    layout_packed(m, &a);
    const int mvc = m->spec.num_person * m->spec.num_joints * m->spec.in_channels;
    const bn_ref dbn = {m->data_bn_w, m->data_bn_b, m->data_bn_mean, m->data_bn_var};
    for (int i = 0; i < mvc; i++) {
        double s, h;
        bn_fold(m, dbn, i, &s, &h);
        m->in_scale[i] = (float)s;
        m->in_shift[i] = (float)h;
    }
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) {
        if (m->blocks[k].has_gcn) pack_gcn(m, &m->blocks[k], &m->refs[k], &m->pb[k]);
        pack_tcn(m, &m->blocks[k], &m->refs[k], &m->pb[k]);
    }
    m->packed_valid = 1;
    return CTRGCN_OK;
}

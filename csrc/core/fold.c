/* The eval view: every BatchNorm folded into the convolution before it where that is exact.
 * What cannot fold keeps a scale and a shift in its BN's gamma / beta slots: data_bn (an affine
 * on the input), the spatial BN's shift (added in the aggregation's epilogue, whose scale went
 * into the value rows, since the aggregation is linear in them) and the pool branch (a max does
 * not commute with a negative scale). */
#include <math.h>

#include "core/view.h"

#define BN_EPS 1e-5

/* The BN of `slot` as y = s*x + h, for channel c of C. */
static void bn_affine(const float *v, bn_slot slot, int C, int c, double *s, double *h) {
    const double g = v[slot.gb + c], b = v[slot.gb + C + c], mu = v[slot.run + c], var = v[slot.run + C + c];
    *s = g / sqrt(var + BN_EPS);
    *h = b - mu * *s;
}

/* Rows [0, rows) of W [rows][cols] (bias b [rows]) scaled by the BN channels c0 + r; the shift
 * joins the bias unless the caller adds it later (scale_only). */
static void fold_rows_as(float *v, size_t W, size_t b, int rows, int cols, bn_slot slot, int C, int c0, int taps,
                         size_t tap_stride, int scale_only) {
    for (int r = 0; r < rows; r++) {
        double s, h;
        bn_affine(v, slot, C, c0 + r, &s, &h);
        for (int t = 0; t < (taps ? taps : 1); t++)
            for (int j = 0; j < cols; j++) v[W + t * tap_stride + (size_t)r * cols + j] *= (float)s;
        v[b + r] = (float)(v[b + r] * s + (scale_only ? 0.0 : h));
    }
}

static void fold_rows(float *v, size_t W, size_t b, int rows, int cols, bn_slot slot, int C, int c0, int taps,
                      size_t tap_stride) {
    fold_rows_as(v, W, b, rows, cols, slot, C, c0, taps, tap_stride, 0);
}

/* Replace a BN by its scale and shift in the gamma / beta slots. */
static void to_affine(float *v, bn_slot slot, int C) {
    for (int c = 0; c < C; c++) {
        double s, h;
        bn_affine(v, slot, C, c, &s, &h);
        v[slot.gb + c] = (float)s;
        v[slot.gb + C + c] = (float)h;
    }
}

void view_fold(const ctrgcn_model *m, const param_view *pv, float *v) {
    const int mvc = m->spec.num_person * m->spec.num_joints * m->spec.in_channels;
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) {
        const block_layout *L = &m->blocks[k];
        const view_block *o = &pv->blocks[k];
        if (L->has_gcn) {
            const int ci = L->gcn_cin, gc = L->gcn_cout;
            for (int i = 0; i < 3; i++)
                fold_rows_as(v, o->Wvd + (size_t)i * gc * ci, o->bvd + (size_t)i * gc, gc, ci, o->gbn, gc, 0, 0, 0, 1);
            if (L->down == 2)
                fold_rows(v, o->Wvd + 3 * (size_t)gc * ci, o->bvd + 3 * (size_t)gc, gc, ci, o->dbn, gc, 0, 0, 0);
            /* the aggregation adds the shift; its scale is in the value rows: keep s = 1 */
            for (int c = 0; c < gc; c++) {
                double s, h;
                bn_affine(v, o->gbn, gc, c, &s, &h);
                v[o->gbn.gb + c] = 1.0f;
                v[o->gbn.gb + gc + c] = (float)h;
            }
        }
        const int ci = L->tcn_cin, B = L->B, co = L->cout;
        fold_rows(v, o->Wpw, o->bpw, 3 * B, ci, o->pbn, 3 * B, 0, 0, 0);
        for (int j = 0; j < 2; j++) fold_rows(v, o->Wt[j], o->bt[j], B, B, o->obn, co, j * B, L->kt, (size_t)B * B);
        fold_rows(v, o->Wb3, o->bb3, L->last, ci, o->obn, co, 3 * B, 0, 0);
        if (L->residual == 2) fold_rows(v, o->Wres, o->bres, co, L->cin, o->rbn, co, 0, 0, 0);
        to_affine(v, o->obn, co); /* after the rows above read it: the pool branch keeps s and h */
    }
    to_affine(v, pv->data_bn, mvc);
}

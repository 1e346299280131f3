/* The parameter view: the layout the driver computes with, in eval and in training alike.
 *
 * Each block's projections are stacked into the matrices the GEMMs want (the three subsets' q/k
 * convs, the value convs with the down conv right after them, the three pointwise branch convs,
 * the tconv taps outermost). Learned values come first and contiguously, so one SGD call updates
 * them all; BatchNorm running statistics follow. Unfused and fused variants compute the same
 * functions in this view; only the map from the named tensors differs, a list of copies built
 * from the tensor table. Learned slots no tensor fills (the fused variants' missing biases) are
 * listed so their gradients can be dropped and they stay zero. */
#ifndef CTRGCN_VIEW_H
#define CTRGCN_VIEW_H
#include "core/model.h"

/* A BatchNorm of C channels: gamma at gb, beta at gb + C (learned); mean at run, var at run + C.
 * In the folded eval view, gb holds the scale and gb + C the shift that remain after folding. */
typedef struct {
    size_t gb, run;
} bn_slot;

typedef struct {
    size_t Wqk, bqk;   /* [2*nrel*R][gcn_cin]: q rows of each relation, then k rows */
    size_t Wvd, bvd;   /* [3gc (+gc with a down conv)][gcn_cin]: the values, then the down conv */
    size_t W4, b4;     /* [3gc][R] */
    size_t PA, alpha;  /* [3][V][V], scalar */
    bn_slot gbn, dbn;
    size_t Wpw, bpw;   /* [3B][tcn_cin] */
    bn_slot pbn;
    size_t Wt[2], bt[2]; /* [k][B][B] taps outermost, [B] */
    bn_slot obn;       /* one view of the four branches' BNs over cout channels */
    size_t Wb3, bb3;   /* [last][tcn_cin] */
    size_t Wres, bres; /* [cout][cin] */
    bn_slot rbn;
} view_block;

typedef struct {
    size_t pack, param, count;
    int taps; /* 0: plain copy; k: a (k,1) conv weight reordered to taps outermost */
} view_copy;

typedef struct {
    size_t off, count;
} view_range;

typedef struct {
    size_t size;    /* floats */
    size_t learned; /* [0, learned): learned values; [learned, size): running statistics */
    bn_slot data_bn;
    size_t fc_w, fc_b;
    view_block blocks[CTRGCN_NUM_BLOCKS];
    view_copy *copies;
    int num_copies, cap_copies;
    view_range *absent; /* learned slots no tensor fills */
    int num_absent;
} param_view;

ctrgcn_status view_build(const ctrgcn_model *m, param_view *v);
void view_free(param_view *v);
/* Named tensors (a model's flat params) -> view (host memory), and back. */
void view_gather(const param_view *v, const float *params, float *view);
void view_scatter(const param_view *v, const float *view, float *params);
/* In place: BatchNorms folded into the convolutions before them (fold.c). */
void view_fold(const ctrgcn_model *m, const param_view *v, float *view);

#endif

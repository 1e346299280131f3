/* Internal: training state of a model (the stacked parameter view, saved activations). */
#ifndef CTRGCN_TRAIN_H
#define CTRGCN_TRAIN_H
#include "core/model.h"

typedef struct {
    size_t pack, param, count;
    int taps; /* 0: plain copy; k: a (k,1) conv weight reordered to taps outermost */
} pack_copy;

/* Offsets into the training pack; BNs are [gamma | beta | running mean | running var]. */
typedef struct {
    size_t Wqk, bqk, Wval, bval, W4, b4, PA, alpha, gbn, Wd, bd, dbn;
    size_t Wpw, bpw, pbn, Wt[2], bt[2], obn, Wb3, bb3, Wres, bres, rbn;
} train_block_offsets;

typedef struct {
    size_t size;
    size_t data_bn, fc_w, fc_b;
    train_block_offsets blocks[CTRGCN_NUM_BLOCKS];
    pack_copy *copies;
    int num_copies, cap_copies;
} train_pack_layout;

ctrgcn_status train_pack_build(const ctrgcn_model *m, train_pack_layout *pl);
void train_pack_gather(const train_pack_layout *pl, const float *params, float *pack);
void train_pack_scatter(const train_pack_layout *pl, const float *pack, float *params);

/* What one block's forward keeps for its backward ([n][C][T][V] per person). */
typedef struct {
    float *X;                                  /* input: the previous block's Y */
    float *xm, *qk, *relT, *preT, *val, *agg, *d, *g;
    float *gbn_stat, *dbn_stat;                /* [mean | invstd] */
    float *pw, *P, *outpre, *respre, *Y;
    int *argmax;
    float *pbn_stat, *obn_stat, *rbn_stat;
    int T, To;
} train_acts;

typedef struct {
    float *X, *Y, *D1, *D2, *DP, *DPW, *DZ, *DD, *DAGG, *S1, *S2;
} train_scratch;

typedef struct {
    float *AT, *dAT, *dval, *phase, *sub, *dxm, *dqk, *drelT;
} train_thread_scratch;

typedef struct train_state {
    train_pack_layout layout;
    float *pack, *gpack;        /* parameters and their gradient in the training view */
    float *gthreads;            /* per-thread gradient partials */
    int N, T, threads;
    float *arena;
    train_acts acts[CTRGCN_NUM_BLOCKS];
    float *db_in, *db_out, *db_stat, *db_grad; /* data_bn: [N][M*V*C][T] */
    float *pooled, *feat;       /* [N*M][F], [N][F] */
    train_scratch s;
    train_thread_scratch *ts;
    int has_forward;
} train_state;

void train_state_free(train_state *t);

#endif

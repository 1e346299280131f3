/* Internal: an execution session (public name ctrgcn_session) and the driver that runs it.
 * The session owns everything a call mutates: the backend context, the folded eval weights, the
 * training parameters, gradients and momentum, the memory plans. The model it reads is never
 * written except by ctrgcn_session_write_params. */
#ifndef CTRGCN_SESSION_H
#define CTRGCN_SESSION_H
#include "backends/backend.h"
#include "core/model.h"
#include "core/profile.h"
#include "core/view.h"

/* One block's activations for n persons ([n][C][T][V]). In training every block has its own
 * (the backward reads them); in an eval lane all blocks share one set and X / Y alternate. */
typedef struct {
    float *X, *Y;
    float *xm, *qk, *rel, *AT, *vd, *agg, *g; /* spatial module (AT: eval only) */
    float *gstat, *dstat;                          /* BN [mean | invstd] */
    float *pw, *P, *outpre, *respre;               /* temporal module */
    float *pstat, *ostat, *rstat;
    int *argmax;
    int T, To;
} block_acts;

/* Buffers of the training backward, S2 for the forward's BN outputs that a later BN reads (the
 * down and residual branches), and AT / dAT for one pass of the graph step (tp.chunk persons),
 * shared by all blocks. */
typedef struct {
    float *dX, *dY, *D1, *D2, *dP, *dPW, *dZ, *dvd, *dagg, *AT, *dAT, *drel, *dqk, *dxm, *S2;
} train_scratch;

typedef struct {
    int N, T, lanes, chunk;
    void *mem;
    float *x, *in, *X1, *pooled, *feat, *logits;
    block_acts *lane_acts; /* [lanes]: each lane's shared block buffers */
} eval_plan;

typedef struct {
    int N, T, chunk; /* chunk: persons per pass of the graph step (backend.h, train_chunk) */
    void *mem;
    float *x, *in, *in_bn, *in_stat, *feat, *logits, *dlogits, *targets, *dfeat;
    double *loss;
    block_acts acts[CTRGCN_NUM_BLOCKS];
    train_scratch s;
} train_plan;

struct ctrgcn_session {
    const ctrgcn_model *model; /* borrowed: the model outlives its sessions */
    const ctrgcn_backend *be;
    backend_ctx *ctx;
    param_view view;
    float *host_view; /* staging for uploads and downloads */

    float *eval_w; /* folded eval view on the backend */
    uint64_t eval_version;
    int eval_valid;
    eval_plan ep;

    float *w, *grad, *vel; /* training view, gradients, momentum on the backend */
    uint64_t train_version;
    int train_valid, has_forward, has_grad;
    long steps;
    float momentum, weight_decay;
    int nesterov;
    train_plan tp;
    size_t scratch_floats;
    op_profile *prof; /* NULL unless profiling (core/profile.h) */
};

/* driver.c */
ctrgcn_status driver_eval_plan(ctrgcn_session *s, int N, int T);
void driver_eval_forward(ctrgcn_session *s, int N, int T, int probe_block, float *probe, size_t probe_stride);
ctrgcn_status driver_train_plan(ctrgcn_session *s, int N, int T);
void driver_train_forward(ctrgcn_session *s, int update_stats);
void driver_train_backward(ctrgcn_session *s);
void driver_free_plans(ctrgcn_session *s);

#endif

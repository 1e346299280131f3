/* Execution sessions: the public API over the driver. A session reads its model's weights
 * (folding them again whenever the model's version moves) and owns everything a call mutates,
 * so any number of sessions over one model run at once. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/profile.h"
#include "core/session.h"
#include "layers/layers.h"

ctrgcn_status ctrgcn_session_init(ctrgcn_session **out, const ctrgcn_model *m, const char *backend, int threads) {
    if (!out || !m) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL argument to session_init");
    *out = NULL;
    const ctrgcn_backend *be = backend_find(backend);
    if (!be) return CTRGCN_ERR_ARGUMENT;
    ctrgcn_session *s = calloc(1, sizeof *s);
    if (!s) return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory");
    s->model = m;
    s->be = be;
    s->momentum = 0.9f; /* SGD defaults until ctrgcn_session_set_sgd: momentum 0.9, no decay */
    ctrgcn_status st = be->init(&s->ctx, threads < 0 ? 0 : threads);
    if (st == CTRGCN_OK) st = view_build(m, &s->view);
    if (st == CTRGCN_OK) {
        s->host_view = malloc(sizeof(float) * s->view.size);
        if (!s->host_view) st = ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory");
    }
    if (st != CTRGCN_OK) {
        ctrgcn_session_free(s);
        return st;
    }
    *out = s;
    return CTRGCN_OK;
}

void ctrgcn_session_free(ctrgcn_session *s) {
    if (!s) return;
    if (s->ctx) {
        driver_free_plans(s);
        float *bufs[] = {s->eval_w, s->w, s->grad, s->vel};
        for (int i = 0; i < 4; i++)
            if (bufs[i]) s->be->free(s->ctx, bufs[i]);
        s->be->release(s->ctx);
    }
    view_free(&s->view);
    free(s->host_view);
    free(s->prof);
    free(s);
}

const char *ctrgcn_session_backend(const ctrgcn_session *s) { return s ? s->be->name : ""; }

static float *view_alloc(ctrgcn_session *s, float **slot) {
    if (!*slot) *slot = s->be->alloc(s->ctx, sizeof(float) * s->view.size);
    return *slot;
}

/* What the backend says about everything since its last check. After a failure nothing this
 * session uploaded is trusted: eval weights are uploaded again, and training starts again from
 * the model's weights (as after an overflowing step). */
static ctrgcn_status backend_ok(ctrgcn_session *s) {
    const ctrgcn_status st = s->be->check(s->ctx);
    if (st != CTRGCN_OK) {
        s->eval_valid = 0;
        s->train_valid = 0;
        s->has_forward = s->has_grad = 0;
    }
    return st;
}

ctrgcn_status ctrgcn_session_prepare(ctrgcn_session *s) {
    if (!s) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL session");
    if (s->eval_valid && s->eval_version == s->model->version) return CTRGCN_OK;
    if (!view_alloc(s, &s->eval_w)) return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory for the eval weights");
    view_gather(&s->view, s->model->params, s->host_view);
    view_fold(s->model, &s->view, s->host_view);
    OP(upload, s->eval_w, s->host_view, sizeof(float) * s->view.size);
    ctrgcn_status st = backend_ok(s);
    if (st != CTRGCN_OK) return st;
    s->eval_version = s->model->version;
    s->eval_valid = 1;
    return CTRGCN_OK;
}

/* Shape and value checks of x [N, C, T, V, M], on the caller's host array. */
static ctrgcn_status take_input(ctrgcn_session *s, const float *x, int N, int T, float limit) {
    if (!x) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL input");
    if (N < 1) return ctrgcn_fail(CTRGCN_ERR_SHAPE, "batch size must be at least 1, got %d", N);
    if (T < 1) return ctrgcn_fail(CTRGCN_ERR_SHAPE, "the input needs at least 1 frame, got T=%d", T);
    const ctrgcn_spec *sp = &s->model->spec;
    const size_t numel = (size_t)N * sp->in_channels * T * sp->num_joints * sp->num_person;
    if (numel > ((size_t)1 << 34)) return ctrgcn_fail(CTRGCN_ERR_SHAPE, "input of %zu values is too large", numel);
    for (size_t i = 0; i < numel; i++) { /* on the host: the caller's array, before anything moves */
        if (!isfinite(x[i]))
            return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "input has a non-finite value (NaN or inf) at flat index %zu", i);
        /* beyond this, sums inside the network can overflow float32, and a NaN that a ReLU then turns
         * into 0 would give finite but meaningless logits */
        if (fabsf(x[i]) > limit)
            return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "input value %g at flat index %zu is beyond +-%g, where float32 "
                               "%s can overflow; rescale the input", (double)x[i], i, (double)limit,
                               limit < CTRGCN_MAX_INPUT_MAGNITUDE ? "BatchNorm variances (sums of squares)"
                                                                  : "activations");
    }
    return CTRGCN_OK;
}

static size_t input_bytes(const ctrgcn_session *s, int N, int T) {
    const ctrgcn_spec *sp = &s->model->spec;
    return sizeof(float) * (size_t)N * sp->in_channels * T * sp->num_joints * sp->num_person;
}

static ctrgcn_status run_eval(ctrgcn_session *s, const float *x, int N, int T, float *logits, int block, float *act,
                              size_t act_size) {
    if (!s || !logits) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL argument to forward");
    ctrgcn_status st = take_input(s, x, N, T, CTRGCN_MAX_INPUT_MAGNITUDE);
    if (st != CTRGCN_OK) return st;
    size_t stride = 0;
    if (act) {
        int ch, fr;
        if ((st = ctrgcn_model_block_shape(s->model, block, T, &ch, &fr)) != CTRGCN_OK) return st;
        stride = (size_t)ch * fr * s->model->spec.num_joints;
        const size_t need = stride * N * s->model->spec.num_person;
        if (act_size < need)
            return ctrgcn_fail(CTRGCN_ERR_SHAPE, "probe buffer holds %zu floats, block %d needs %zu", act_size, block,
                               need);
    }
    if ((st = ctrgcn_session_prepare(s)) != CTRGCN_OK) return st;
    if ((st = driver_eval_plan(s, N, T)) != CTRGCN_OK) return st;
    OP(upload, s->ep.x, x, input_bytes(s, N, T));
    driver_eval_forward(s, N, T, block, act, stride);
    OP(download, logits, s->ep.logits, sizeof(float) * N * s->model->spec.num_classes);
    s->be->sync(s->ctx);
    return backend_ok(s);
}

ctrgcn_status ctrgcn_session_forward(ctrgcn_session *s, const float *x, int N, int T, float *logits) {
    return run_eval(s, x, N, T, logits, 0, NULL, 0);
}

ctrgcn_status ctrgcn_session_forward_probe(ctrgcn_session *s, const float *x, int N, int T, float *logits, int block,
                                           float *act, size_t act_size) {
    if (!act) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL probe buffer");
    if (block < 1 || block > CTRGCN_NUM_BLOCKS)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "block must be in 1..%d, got %d", CTRGCN_NUM_BLOCKS, block);
    return run_eval(s, x, N, T, logits, block, act, act_size);
}

/* ---- training -------------------------------------------------------------------------------- */
/* The training parameters follow the model until training moves them; a model whose weights
 * were replaced since (its version moved) is read again. */
static ctrgcn_status train_ready(ctrgcn_session *s) {
    if (s->train_valid && s->train_version == s->model->version) return CTRGCN_OK;
    if (!view_alloc(s, &s->w) || !view_alloc(s, &s->grad) || !view_alloc(s, &s->vel))
        return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory for the training parameters");
    if (!s->train_valid) {
        OP(zero, s->vel, sizeof(float) * s->view.size);
        s->steps = 0;
    }
    view_gather(&s->view, s->model->params, s->host_view);
    OP(upload, s->w, s->host_view, sizeof(float) * s->view.size);
    ctrgcn_status st = backend_ok(s);
    if (st != CTRGCN_OK) return st;
    s->train_version = s->model->version;
    s->train_valid = 1;
    s->has_forward = s->has_grad = 0;
    return CTRGCN_OK;
}

ctrgcn_status ctrgcn_session_set_sgd(ctrgcn_session *s, float momentum, float weight_decay, int nesterov) {
    if (!s) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL session");
    if (!(momentum >= 0.0f && momentum < 1.0f) || !(weight_decay >= 0.0f))
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "momentum must be in [0, 1) and weight decay >= 0");
    s->momentum = momentum;
    s->weight_decay = weight_decay;
    s->nesterov = nesterov != 0;
    return CTRGCN_OK;
}

ctrgcn_status ctrgcn_session_train_forward(ctrgcn_session *s, const float *x, int N, int T, float *logits,
                                           int update_stats) {
    if (!s) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL session");
    ctrgcn_status st = take_input(s, x, N, T, CTRGCN_MAX_TRAIN_INPUT_MAGNITUDE);
    if (st != CTRGCN_OK) return st;
    const ctrgcn_spec *sp = &s->model->spec;
    if (N * sp->num_person < 2 && T * sp->num_joints < 2)
        return ctrgcn_fail(CTRGCN_ERR_SHAPE, "train-mode BatchNorm needs more than one value per channel");
    if ((st = train_ready(s)) != CTRGCN_OK) return st;
    if ((st = driver_train_plan(s, N, T)) != CTRGCN_OK) return st;
    OP(upload, s->tp.x, x, input_bytes(s, N, T));
    driver_train_forward(s, update_stats);
    if (logits) OP(download, logits, s->tp.logits, sizeof(float) * N * sp->num_classes);
    s->be->sync(s->ctx);
    if ((st = backend_ok(s)) != CTRGCN_OK) return st;
    s->has_forward = 1;
    s->has_grad = 0;
    return CTRGCN_OK;
}

ctrgcn_status ctrgcn_session_train_backward(ctrgcn_session *s, const float *targets, const float *extra_dlogits,
                                            double *loss) {
    if (!s || !targets) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL argument to train_backward");
    if (!s->has_forward) return ctrgcn_fail(CTRGCN_ERR_STATE, "train_backward needs a train_forward first");
    const int N = s->tp.N, K = s->model->spec.num_classes;
    const size_t nk = (size_t)N * K;
    for (size_t i = 0; i < nk; i++)
        if (!isfinite(targets[i]) || (extra_dlogits && !isfinite(extra_dlogits[i])))
            return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "targets or extra gradients have a non-finite value");
    const ctrgcn_backend *be = s->be;
    OP(upload, s->tp.targets, targets, sizeof(float) * nk);
    OP(xent_forward, s->tp.loss, s->tp.dlogits, s->tp.logits, s->tp.targets, N, K);
    if (extra_dlogits) { /* e.g. mutual learning's pull toward the peer: the targets buffer is free now */
        OP(upload, s->tp.targets, extra_dlogits, sizeof(float) * nk);
        OP(accumulate, s->tp.dlogits, s->tp.targets, nk);
    }
    double l = 0.0;
    OP(download, &l, s->tp.loss, sizeof l);
    ctrgcn_status st = backend_ok(s); /* a device failure, not a diverged loss */
    if (st != CTRGCN_OK) return st;
    if (!isfinite(l)) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "the loss is not finite: training diverged");
    driver_train_backward(s);
    const size_t bad = be->count_nonfinite(s->ctx, s->grad, s->view.learned);
    be->sync(s->ctx);
    if ((st = backend_ok(s)) != CTRGCN_OK) return st;
    if (bad) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "a gradient is not finite: training diverged");
    if (loss) *loss = l;
    s->has_grad = 1;
    return CTRGCN_OK;
}

ctrgcn_status ctrgcn_session_sgd_step(ctrgcn_session *s, float lr) {
    if (!s) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL session");
    if (!s->has_grad) return ctrgcn_fail(CTRGCN_ERR_STATE, "sgd_step needs a train_backward first");
    if (!isfinite(lr) || lr < 0.0f) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "learning rate must be >= 0, got %g", lr);
    OP(sgd_update, s->w, s->grad, s->vel, s->view.learned, lr, s->momentum, s->weight_decay, s->nesterov,
                      s->steps == 0);
    s->be->sync(s->ctx);
    const size_t bad = s->be->count_nonfinite(s->ctx, s->w, s->view.learned);
    ctrgcn_status st = backend_ok(s);
    if (st != CTRGCN_OK) return st;
    if (bad) {
        s->train_valid = 0; /* the next call starts again from the model's weights */
        s->has_grad = s->has_forward = 0;
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "the SGD step overflowed float32 (learning rate %g too large for these "
                           "gradients); the session's weights are reset to the model's", lr);
    }
    s->steps++;
    s->has_grad = 0;
    s->has_forward = 0;
    return CTRGCN_OK;
}

ctrgcn_status ctrgcn_session_train_step(ctrgcn_session *s, const float *x, int N, int T, const float *targets, float lr,
                                        float *logits, double *loss) {
    ctrgcn_status st = ctrgcn_session_train_forward(s, x, N, T, logits, 1);
    if (st == CTRGCN_OK) st = ctrgcn_session_train_backward(s, targets, NULL, loss);
    if (st == CTRGCN_OK) st = ctrgcn_session_sgd_step(s, lr);
    return st;
}

/* A view-shaped buffer on the backend -> the model's flat params layout (host). */
static ctrgcn_status to_flat(ctrgcn_session *s, const float *src, float *flat, int learned_only) {
    OP(download, s->host_view, src, sizeof(float) * s->view.size);
    ctrgcn_status st = backend_ok(s);
    if (st != CTRGCN_OK) return st;
    memset(flat, 0, sizeof(float) * s->model->params_size);
    view_scatter(&s->view, s->host_view, flat);
    if (learned_only)
        for (int i = 0; i < s->model->num_tensors; i++)
            if (s->model->tensors[i].is_buffer)
                memset(flat + s->model->tensors[i].offset, 0, sizeof(float) * s->model->tensors[i].numel);
    return CTRGCN_OK;
}

ctrgcn_status ctrgcn_session_gradients(ctrgcn_session *s, float *grads) {
    if (!s || !grads) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL argument");
    if (!s->has_grad) return ctrgcn_fail(CTRGCN_ERR_STATE, "no gradients: call train_backward first");
    return to_flat(s, s->grad, grads, 1);
}

ctrgcn_status ctrgcn_session_write_params(ctrgcn_session *s, ctrgcn_model *m) {
    if (!s || !m) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL argument");
    if (m != s->model) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "the session belongs to another model");
    if (!s->train_valid) return CTRGCN_OK; /* nothing trained: the model is current */
    OP(download, s->host_view, s->w, sizeof(float) * s->view.size);
    ctrgcn_status st = backend_ok(s); /* the model keeps what it had */
    if (st != CTRGCN_OK) return st;
    view_scatter(&s->view, s->host_view, m->params);
    m->version++;
    s->train_version = m->version; /* what the model now holds is what the session has */
    return CTRGCN_OK;
}

ctrgcn_status ctrgcn_session_get_velocity(ctrgcn_session *s, float *velocity, long *steps) {
    if (!s || !velocity || !steps) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL argument");
    if (!s->train_valid) {
        memset(velocity, 0, sizeof(float) * s->model->params_size);
        *steps = 0;
        return CTRGCN_OK;
    }
    ctrgcn_status st = to_flat(s, s->vel, velocity, 1);
    if (st != CTRGCN_OK) return st;
    *steps = s->steps;
    return CTRGCN_OK;
}

ctrgcn_status ctrgcn_session_set_velocity(ctrgcn_session *s, const float *velocity, long steps) {
    if (!s || !velocity || steps < 0) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "bad optimizer state");
    for (size_t i = 0; i < s->model->params_size; i++)
        if (!isfinite(velocity[i])) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "velocity has a non-finite value");
    ctrgcn_status st = train_ready(s);
    if (st != CTRGCN_OK) return st;
    view_gather(&s->view, velocity, s->host_view);
    OP(upload, s->vel, s->host_view, sizeof(float) * s->view.size);
    if ((st = backend_ok(s)) != CTRGCN_OK) return st;
    s->steps = steps;
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

/* ---- op profile ---------------------------------------------------------------------------- */
const char *const prof_names[PROF_COUNT] = {
#define PROF_NAME(name, params) #name,
    CTRGCN_BACKEND_OPS(PROF_NAME)
#undef PROF_NAME
    "zero", "upload", "download"};

int ctrgcn_profile_slots(void) { return PROF_COUNT; }

ctrgcn_status ctrgcn_session_profile(ctrgcn_session *s, int on) {
    if (!s) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL session");
    free(s->prof);
    s->prof = NULL;
    if (s->ctx) s->be->profiling(s->ctx, 0);
    if (!on) return CTRGCN_OK;
    s->prof = calloc(1, sizeof *s->prof); /* zero bits: every atomic slot at 0 */
    if (!s->prof) return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory");
    if (s->ctx) s->be->profiling(s->ctx, 1);
    return CTRGCN_OK;
}

ctrgcn_status ctrgcn_session_profile_entry(const ctrgcn_session *s, int slot, const char **name, long *calls,
                                           double *seconds) {
    if (!s || !name || !calls || !seconds) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL argument");
    if (slot < 0 || slot >= PROF_COUNT) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "profile slot %d of %d", slot, PROF_COUNT);
    *name = prof_names[slot];
    *calls = s->prof ? atomic_load(&s->prof->calls[slot]) : 0;
    *seconds = s->prof ? (double)atomic_load(&s->prof->ns[slot]) * 1e-9 : 0.0;
    return CTRGCN_OK;
}

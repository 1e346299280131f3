/* SGD with momentum and the learning-rate schedules. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/model.h"

struct ctrgcn_sgd {
    float momentum, weight_decay;
    int nesterov;
    long steps;
    size_t size;
    float *velocity;
};

ctrgcn_status ctrgcn_sgd_init(ctrgcn_sgd **out, const ctrgcn_model *m, float momentum, float weight_decay,
                              int nesterov) {
    if (!out || !m) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL argument");
    *out = NULL;
    if (!(momentum >= 0.0f && momentum < 1.0f) || !(weight_decay >= 0.0f))
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "momentum must be in [0, 1) and weight decay >= 0");
    ctrgcn_sgd *o = calloc(1, sizeof *o);
    if (!o) return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory");
    o->velocity = calloc(m->params_size ? m->params_size : 1, sizeof(float));
    if (!o->velocity) {
        free(o);
        return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory");
    }
    o->momentum = momentum;
    o->weight_decay = weight_decay;
    o->nesterov = nesterov;
    o->size = m->params_size;
    *out = o;
    return CTRGCN_OK;
}

void ctrgcn_sgd_free(ctrgcn_sgd *o) {
    if (!o) return;
    free(o->velocity);
    free(o);
}

/* d = g + wd*p; v = mu*v + d (v = d on the first step); p -= lr * (nesterov ? d + mu*v : v) */
ctrgcn_status sgd_update(ctrgcn_model *m, const float *grads, float *velocity, float lr, float momentum,
                         float weight_decay, int nesterov, int first_step) {
    for (size_t i = 0; i < m->params_size; i++)
        if (!isfinite(grads[i])) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "gradient has a non-finite value: training diverged");
    for (int t = 0; t < m->num_tensors; t++) {
        const tensor_entry *e = &m->tensors[t];
        if (e->is_buffer) continue;
        float *p = m->params + e->offset, *v = velocity + e->offset;
        const float *g = grads + e->offset;
        for (size_t j = 0; j < e->numel; j++) {
            const float d = g[j] + weight_decay * p[j];
            v[j] = first_step ? d : momentum * v[j] + d;
            p[j] -= lr * (nesterov ? d + momentum * v[j] : v[j]);
        }
    }
    m->packed_valid = 0;
    return CTRGCN_OK;
}

ctrgcn_status ctrgcn_sgd_update_raw(ctrgcn_model *m, const float *grads, float *velocity, float lr,
                                    float momentum, float weight_decay, int nesterov, int first_step) {
    if (!m || !grads || !velocity) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL argument");
    return sgd_update(m, grads, velocity, lr, momentum, weight_decay, nesterov, first_step);
}

ctrgcn_status ctrgcn_sgd_step(ctrgcn_sgd *o, ctrgcn_model *m, const float *grads, float lr) {
    if (!o || !m || !grads) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL argument");
    if (o->size != m->params_size) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "optimizer belongs to another model");
    ctrgcn_status st = sgd_update(m, grads, o->velocity, lr, o->momentum, o->weight_decay, o->nesterov, o->steps == 0);
    if (st == CTRGCN_OK) o->steps++;
    return st;
}

ctrgcn_status ctrgcn_sgd_get_state(const ctrgcn_sgd *o, float *velocity, long *steps) {
    if (!o || !velocity || !steps) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL argument");
    memcpy(velocity, o->velocity, sizeof(float) * o->size);
    *steps = o->steps;
    return CTRGCN_OK;
}

ctrgcn_status ctrgcn_sgd_set_state(ctrgcn_sgd *o, const float *velocity, long steps) {
    if (!o || !velocity || steps < 0) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "bad optimizer state");
    memcpy(o->velocity, velocity, sizeof(float) * o->size);
    o->steps = steps;
    return CTRGCN_OK;
}

/* kind 0 follows PaddleVideo's CustomWarmupCosineDecay: cosine over the whole run,
 * lr(e) = base * (1 + cos(pi * e / epochs)) / 2, and a linear warm-up from warmup_start that
 * meets the cosine at the end of warm-up. kind 1: linear warm-up to base, then x gamma at each
 * step epoch. e is fractional (iteration / iterations per epoch): the rate moves every iteration. */
static double cosine_lr(const ctrgcn_lr_schedule *s, double epoch) {
    if (epoch >= s->epochs) return 0.0;
    return 0.5 * s->base_lr * (1.0 + cos(3.141592653589793 * epoch / s->epochs));
}

double ctrgcn_lr_at(const ctrgcn_lr_schedule *s, long iter) {
    if (!s || s->iters_per_epoch < 1 || s->epochs < 1) return 0.0;
    const double epoch = (double)iter / (double)s->iters_per_epoch;
    if (epoch < s->warmup_epochs) {
        const double end = s->kind == 0 ? cosine_lr(s, s->warmup_epochs) : s->base_lr;
        return s->warmup_start + (end - s->warmup_start) * epoch / s->warmup_epochs;
    }
    if (s->kind == 0) return cosine_lr(s, epoch);
    double lr = s->base_lr;
    for (int i = 0; i < s->num_steps && i < 16; i++)
        if (epoch >= s->steps[i]) lr *= s->gamma;
    return lr;
}

/* The learning-rate schedules (SGD itself is a backend op, run by a session). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/model.h"

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

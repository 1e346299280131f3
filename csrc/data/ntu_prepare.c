/* NTU RGB+D preparation after parsing: denoising (choice of at most two actors) and translation.
 *
 * This reproduces the reference scripts (CTR-GCN data/ntu/get_raw_denoised_data.py and
 * seq_transformation.py; PaddleVideo's copies are the same) bit for bit, including their quirks:
 * a body's frames are packed from its first appearance, "no overlap" allows touching intervals,
 * the spread test compares a float32 range with a float64 product, "missing" means a row whose
 * float32 sum is exactly zero. Where the scripts would crash (no body left, a body that appears
 * twice in one frame) we return CTRGCN_ERR_FORMAT instead.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "ctrgcn_data.h"
#include "data/data_internal.h"

enum { LENGTH_MAX_NOISE = 11 };            /* bodies with <= 11 frames are noise */
static const double SPREAD_RATIO = 0.8;     /* x-range > 0.8 * y-range: a noisy frame */
static const double SPREAD_DROP = 0.69754;  /* drop a body when this share of its frames is noisy */

/* Python's "{:^w}" of a string: the extra space goes to the right. */
static void text_centered(ctrgcn_text *t, const char *s, int width) {
    const int n = (int)strlen(s), pad = width > n ? width - n : 0;
    ctrgcn_text_printf(t, "%*s%s%*s", pad / 2, "", s, pad - pad / 2, "");
}

static void text_body_line(ctrgcn_text *t, const ctrgcn_ntu_body *b, float motion) {
    char interval[48];
    snprintf(interval, sizeof interval, "[%d, %d]", b->first, b->first + b->num_frames - 1);
    ctrgcn_text_printf(t, "%s\t", b->id);
    text_centered(t, interval, 8);
    ctrgcn_text_printf(t, "\t%f\n", (double)motion);
}

static void text_header(ctrgcn_text *t, const char *first) {
    text_centered(t, first, 17);
    ctrgcn_text_printf(t, "\tInterval\t");
    text_centered(t, "Motion", 8);
    ctrgcn_text_printf(t, "\n");
}

/* Frames where the x-range exceeds 0.8 * y-range; `clean` receives the other frame indices. */
static int count_noisy_frames(const ctrgcn_ntu_body *b, int *clean, int *num_clean) {
    int noisy = 0;
    *num_clean = 0;
    for (int f = 0; f < b->num_frames; f++) {
        const float *p = b->joints + (size_t)f * 75;
        float xmin = p[0], xmax = p[0], ymin = p[1], ymax = p[1];
        for (int j = 1; j < CTRGCN_NTU_JOINTS; j++) {
            const float x = p[j * 3], y = p[j * 3 + 1];
            xmin = x < xmin ? x : xmin;
            xmax = x > xmax ? x : xmax;
            ymin = y < ymin ? y : ymin;
            ymax = y > ymax ? y : ymax;
        }
        const float xr = xmax - xmin, yr = ymax - ymin;
        if ((double)xr <= SPREAD_RATIO * (double)yr) clean[(*num_clean)++] = f;
        else noisy++;
    }
    return noisy;
}

/* Copy a body's packed frames into actor column block `slot` of joints[T][width] / colors. */
static void place_body(ctrgcn_ntu_denoised *d, int width, const ctrgcn_ntu_body *b, int slot) {
    for (int i = 0; i < b->num_frames; i++) {
        const int row = b->first + i;
        memcpy(d->joints + (size_t)row * width + slot * 75, b->joints + (size_t)i * 75, sizeof(float) * 75);
        memcpy(d->colors + ((size_t)row * d->num_actors + slot) * 50, b->colors + (size_t)i * 50, sizeof(float) * 50);
    }
}

static ctrgcn_status alloc_actors(ctrgcn_ntu_denoised *d, int T, int actors) {
    d->num_actors = actors;
    d->num_frames = d->color_frames = T;
    d->joints = calloc((size_t)T * 75 * actors, sizeof(float));
    d->colors = malloc(sizeof(float) * (size_t)T * actors * 50);
    if (!d->joints || !d->colors) return ctrgcn_fail(CTRGCN_ERR_NOMEM, "denoise: out of memory");
    for (size_t i = 0; i < (size_t)T * actors * 50; i++) d->colors[i] = NAN;
    return CTRGCN_OK;
}

/* Drop rows whose float32 sum is exactly 0 (colors keep their rows, set to NaN). */
static void remove_missing_frames(ctrgcn_ntu_denoised *d) {
    const int width = 75 * d->num_actors;
    int kept = 0;
    for (int t = 0; t < d->num_frames; t++) {
        const float *row = d->joints + (size_t)t * width;
        if (0.f + ctrgcn_pairwise_sum(row, width) == 0.f) {
            for (int k = 0; k < d->num_actors * 50; k++) d->colors[(size_t)t * d->num_actors * 50 + k] = NAN;
            continue;
        }
        if (kept != t) memmove(d->joints + (size_t)kept * width, row, sizeof(float) * width);
        kept++;
    }
    d->num_removed = d->num_frames - kept;
    d->num_frames = kept;
}

ctrgcn_status ctrgcn_ntu_denoise(ctrgcn_ntu_denoised *d, const ctrgcn_ntu_skeleton *sk) {
    if (!d) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "ctrgcn_ntu_denoise: no output");
    memset(d, 0, sizeof *d);
    if (!sk || sk->num_bodies < 1 || sk->num_frames < 1)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "ctrgcn_ntu_denoise: a skeleton with no body");
    const int nb = sk->num_bodies, T = sk->num_frames;
    ctrgcn_status st = CTRGCN_OK;
    ctrgcn_text info = {0};
    int *order = malloc(sizeof(int) * nb), *clean = NULL, max_frames = 0;
    d->motion = malloc(sizeof(float) * nb);
    d->dropped = calloc((size_t)nb, sizeof(int));
    d->actor1 = malloc(sizeof(int) * nb);
    d->actor2 = malloc(sizeof(int) * nb);
    if (!order || !d->motion || !d->dropped || !d->actor1 || !d->actor2) {
        st = ctrgcn_fail(CTRGCN_ERR_NOMEM, "denoise: out of memory");
        goto done;
    }
    for (int b = 0; b < nb; b++) {
        const ctrgcn_ntu_body *body = &sk->bodies[b];
        d->motion[b] = body->motion;
        max_frames = body->num_frames > max_frames ? body->num_frames : max_frames;
        /* the scripts write frames first .. first + n - 1 into a T-row array */
        if (body->first + body->num_frames > T) {
            st = ctrgcn_fail(CTRGCN_ERR_FORMAT,
                             "body %s appears in %d frames from valid frame %d, past the %d valid frames "
                             "(a body listed twice in one frame)",
                             body->id, body->num_frames, body->first, T);
            goto done;
        }
    }
    if (nb == 1) { /* one body: no denoising, no row removal, no report */
        if ((st = alloc_actors(d, T, 1))) goto done;
        place_body(d, 75, &sk->bodies[0], 0);
        d->actor1[d->num_actor1++] = 0;
        goto done;
    }

    text_header(&info, "bodyID");
    for (int b = 0; b < nb; b++) text_body_line(&info, &sk->bodies[b], d->motion[b]);
    ctrgcn_text_printf(&info, "\n");

    /* 1. length filter */
    int alive = 0, any = 0;
    for (int b = 0; b < nb; b++) {
        if (sk->bodies[b].num_frames <= LENGTH_MAX_NOISE) {
            d->dropped[b] = 1;
            ctrgcn_text_printf(&info, "Filter out: %s, %d (length).\n", sk->bodies[b].id, sk->bodies[b].num_frames);
            any = 1;
        } else {
            alive++;
        }
    }
    if (any) ctrgcn_text_printf(&info, "\n");
    if (alive == 0) {
        st = ctrgcn_fail(CTRGCN_ERR_FORMAT, "denoise: all %d bodies have <= %d frames", nb, LENGTH_MAX_NOISE);
        goto done;
    }

    /* 2. spread filter, body by body while two or more remain */
    if (alive > 1) {
        if (!(clean = malloc(sizeof(int) * (size_t)max_frames))) {
            st = ctrgcn_fail(CTRGCN_ERR_NOMEM, "denoise: out of memory");
            goto done;
        }
        any = 0;
        for (int b = 0; b < nb; b++) {
            if (d->dropped[b]) continue;
            if (alive == 1) break;
            const ctrgcn_ntu_body *body = &sk->bodies[b];
            int num_clean;
            const int noisy = count_noisy_frames(body, clean, &num_clean);
            if (noisy == 0) continue;
            const double ratio = noisy / (double)body->num_frames;
            if (ratio >= SPREAD_DROP) {
                d->dropped[b] = 2;
                alive--;
                ctrgcn_text_printf(&info, "Filter out: %s (spread rate >= %.2f).\n", body->id, SPREAD_DROP);
            } else {
                const float before = d->motion[b], clean_motion = ctrgcn_ntu_motion(body->joints, clean, num_clean);
                d->motion[b] = clean_motion < before ? clean_motion : before;
                ctrgcn_text_printf(&info, "%s: motion %.6f -> %.6f\n", body->id, (double)before, (double)d->motion[b]);
            }
            any = 1;
        }
        if (any) ctrgcn_text_printf(&info, "\n");
    }

    /* 3. the remaining bodies by motion, descending; a stable sort keeps ties in file order */
    int n = 0;
    for (int b = 0; b < nb; b++)
        if (!d->dropped[b]) {
            int k = n++;
            while (k > 0 && d->motion[order[k - 1]] < d->motion[b]) {
                order[k] = order[k - 1];
                k--;
            }
            order[k] = b;
        }

    if (n == 1) {
        if ((st = alloc_actors(d, T, 1))) goto done;
        place_body(d, 75, &sk->bodies[order[0]], 0);
        d->actor1[d->num_actor1++] = order[0];
        ctrgcn_text_printf(&info, "Main actor: %s", sk->bodies[order[0]].id);
    } else {
        if ((st = alloc_actors(d, T, 2))) goto done;
        ctrgcn_text a1 = {0}, a2 = {0};
        const ctrgcn_ntu_body *first = &sk->bodies[order[0]];
        int s1 = first->first, e1 = first->first + first->num_frames - 1, s2 = 0, e2 = 0;
        place_body(d, 150, first, 0);
        d->actor1[d->num_actor1++] = order[0];
        text_header(&a1, "Actor1");
        text_body_line(&a1, first, d->motion[order[0]]);
        text_header(&a2, "Actor2");
        for (int k = 1; k < n; k++) {
            const ctrgcn_ntu_body *body = &sk->bodies[order[k]];
            const int s = body->first, e = body->first + body->num_frames - 1;
            if ((e1 < e ? e1 : e) - (s1 > s ? s1 : s) <= 0) { /* touching counts as no overlap */
                place_body(d, 150, body, 0);
                d->actor1[d->num_actor1++] = order[k];
                text_body_line(&a1, body, d->motion[order[k]]);
                s1 = s < s1 ? s : s1;
                e1 = e > e1 ? e : e1;
            } else if ((e2 < e ? e2 : e) - (s2 > s ? s2 : s) <= 0) {
                place_body(d, 150, body, 1);
                d->actor2[d->num_actor2++] = order[k];
                text_body_line(&a2, body, d->motion[order[k]]);
                s2 = s < s2 ? s : s2;
                e2 = e > e2 ? e : e2;
            } else {
                d->dropped[order[k]] = 3;
            }
        }
        ctrgcn_text_printf(&info, "\n%s\n%s", a1.s ? a1.s : "", a2.s ? a2.s : "");
        if (a1.failed || a2.failed) info.failed = 1;
        free(a1.s);
        free(a2.s);
    }
    ctrgcn_text_printf(&info, "\n");
    if (info.failed) {
        st = ctrgcn_fail(CTRGCN_ERR_NOMEM, "denoise: out of memory");
        goto done;
    }
    d->info = info.s;
    info.s = NULL;
    remove_missing_frames(d);
    if (d->num_frames == 0) st = ctrgcn_fail(CTRGCN_ERR_FORMAT, "denoise: every frame of the chosen actors is zero");

done:
    free(info.s);
    free(order);
    free(clean);
    if (st) ctrgcn_ntu_denoised_free(d);
    return st;
}

void ctrgcn_ntu_denoised_free(ctrgcn_ntu_denoised *d) {
    if (!d) return;
    free(d->joints);
    free(d->colors);
    free(d->actor1);
    free(d->actor2);
    free(d->motion);
    free(d->dropped);
    free(d->info);
    memset(d, 0, sizeof *d);
}

ctrgcn_status ctrgcn_ntu_translate(float *joints, int T, int width, int *origin_frame, float origin[3]) {
    if (!joints || T < 1 || (width != 75 && width != 150))
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "translate: expected a (T >= 1, 75 or 150) array");
    int i = 0;
    for (; i < T; i++) {
        const float *row = joints + (size_t)i * width;
        int nonzero = 0;
        for (int k = 0; k < 75 && !nonzero; k++) nonzero = row[k] != 0.f;
        if (nonzero) break;
    }
    if (i == T) return ctrgcn_fail(CTRGCN_ERR_FORMAT, "translate: actor 1 is zero in every frame");
    const float o[3] = {joints[(size_t)i * width + 3], joints[(size_t)i * width + 4], joints[(size_t)i * width + 5]};
    for (int t = 0; t < T; t++) {
        float *row = joints + (size_t)t * width;
        /* which actors were missing is decided on the values before the shift */
        int missing[2] = {0, 0};
        if (width == 150)
            for (int a = 0; a < 2; a++) missing[a] = 0.f + ctrgcn_pairwise_sum(row + a * 75, 75) == 0.f;
        for (int k = 0; k < width; k++) row[k] -= o[k % 3];
        for (int a = 0; a < 2; a++)
            if (missing[a]) memset(row + a * 75, 0, sizeof(float) * 75);
    }
    if (origin_frame) *origin_frame = i;
    if (origin) memcpy(origin, o, sizeof o);
    return CTRGCN_OK;
}

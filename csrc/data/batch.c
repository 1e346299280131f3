/* Batch assembly: every sample of a batch in parallel (OpenMP), each with its own random stream
 * (seed, index), so a batch is the same whatever the thread count. Arguments are checked before
 * the parallel region: worker threads cannot report messages (the last error is per thread). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "ctrgcn_data.h"

/* The crop of a sequence of `valid` frames: training draws a ratio in [p_lo, p_hi] and a start, at
 * least min_length frames (or all); evaluation keeps the centre with test_p. */
static void crop_window(const ctrgcn_ntu_aug *aug, ctrgcn_rng *rng, int valid, int *begin, int *length) {
    if (aug->train) {
        const double p = ctrgcn_rng_uniform(rng, aug->p_lo, aug->p_hi);
        int len = (int)(valid * p);
        if (len < aug->min_length) len = aug->min_length;
        if (len > valid) len = valid;
        *length = len;
        *begin = (int)ctrgcn_rng_int(rng, 0, valid - len);
    } else {
        *begin = (int)((1.0 - aug->test_p) * valid / 2.0);
        *length = valid - 2 * *begin;
    }
}

ctrgcn_status ctrgcn_ntu_batch(float *out, const float *data, int64_t N, int T, int M, const int64_t *indices,
                               int B, uint64_t seed, const ctrgcn_ntu_aug *aug) {
    if (!out || !data || !indices || !aug || T < 1 || M < 1 || B < 0 || aug->window < 1)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "ntu batch: bad arguments");
    if (aug->modality < 0 || aug->modality > 3) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "ntu batch: bad modality");
    if (!(aug->test_p > 0.0 && aug->test_p <= 1.0) || !(aug->p_lo > 0.0 && aug->p_lo <= aug->p_hi && aug->p_hi <= 1.0))
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "ntu batch: crop ratios must lie in (0, 1]");
    for (int b = 0; b < B; b++)
        if (indices[b] < 0 || indices[b] >= N)
            return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "ntu batch: index %lld outside 0..%lld", (long long)indices[b],
                               (long long)N - 1);
    const int V = CTRGCN_NTU_JOINTS, W = aug->window;
    const size_t in_size = (size_t)3 * T * V * M, out_size = (size_t)3 * W * V * M;
    int failed = 0;
#pragma omp parallel
    {
        float *scratch = malloc(sizeof(float) * out_size);
        if (!scratch) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int b = 0; b < B; b++) {
            if (!scratch) continue;
            const float *x = data + (size_t)indices[b] * in_size;
            float *o = out + (size_t)b * out_size;
            ctrgcn_rng rng;
            ctrgcn_rng_seed(&rng, seed, (uint64_t)indices[b]);
            const int valid = ctrgcn_valid_frames(x, 3, T, V, M);
            if (valid == 0) { /* an empty sample stays empty */
                memset(o, 0, sizeof(float) * out_size);
                continue;
            }
            int begin, length;
            crop_window(aug, &rng, valid, &begin, &length);
            ctrgcn_crop_resize(o, W, x, 3, T, V, M, begin, length);
            if (aug->train && aug->theta > 0.0) {
                double angles[3];
                for (int k = 0; k < 3; k++) angles[k] = ctrgcn_rng_uniform(&rng, -aug->theta, aug->theta);
                ctrgcn_rotate(o, W, V, M, angles);
            }
            ctrgcn_apply_modality(o, scratch, aug->modality, 3, W, V, M, ctrgcn_ntu_parent);
        }
        free(scratch);
    }
    if (failed) return ctrgcn_fail(CTRGCN_ERR_NOMEM, "ntu batch: out of memory");
    return CTRGCN_OK;
}

/* The longest of N sequences stored in a pool of frames (sequence i: frames offsets[i] ..
 * offsets[i] + lengths[i]); an error naming `what` when one lies outside the pool. */
static ctrgcn_status pool_longest(const char *what, int64_t pool_frames, const int64_t *offsets,
                                  const int64_t *lengths, int64_t N, int64_t *longest) {
    *longest = 0;
    for (int64_t i = 0; i < N; i++) {
        if (lengths[i] < 1 || offsets[i] < 0 || offsets[i] + lengths[i] > pool_frames || lengths[i] > (1 << 24))
            return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "%s: sequence %lld lies outside the pool", what, (long long)i);
        *longest = lengths[i] > *longest ? lengths[i] : *longest;
    }
    return CTRGCN_OK;
}

ctrgcn_status ctrgcn_seq_batch(float *out, const float *pool, int64_t pool_frames, int M, int V, int C,
                               const int64_t *offsets, const int64_t *lengths, int64_t N, const int64_t *indices,
                               int B, uint64_t seed, const ctrgcn_ntu_aug *aug, const int *parent) {
    if (!out || !pool || !offsets || !lengths || !indices || !aug || N < 1 || B < 0 || M < 1 || V < 1 || C < 1 ||
        aug->window < 1)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "sequence batch: bad arguments");
    if (aug->modality < 0 || aug->modality > 3) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "sequence batch: bad modality");
    if ((aug->modality == CTRGCN_MODALITY_BONE || aug->modality == CTRGCN_MODALITY_BONE_MOTION) && !parent)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "sequence batch: the bone modalities need the joints' parents");
    if (aug->train && aug->theta > 0.0 && C != 3)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "sequence batch: rotation needs 3 coordinates, got %d channels", C);
    if (!(aug->test_p > 0.0 && aug->test_p <= 1.0) || !(aug->p_lo > 0.0 && aug->p_lo <= aug->p_hi && aug->p_hi <= 1.0))
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "sequence batch: crop ratios must lie in (0, 1]");
    int64_t longest;
    const ctrgcn_status st = pool_longest("sequence batch", pool_frames, offsets, lengths, N, &longest);
    if (st != CTRGCN_OK) return st;
    for (int b = 0; b < B; b++)
        if (indices[b] < 0 || indices[b] >= N)
            return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "sequence batch: index %lld outside 0..%lld", (long long)indices[b],
                               (long long)N - 1);
    const size_t frame = (size_t)M * V * C, out_size = (size_t)C * aug->window * V * M;
    int failed = 0;
#pragma omp parallel if (B > 1) /* one sample (a stream's window) is not worth waking threads */
    {
        /* the sequence as (C, T, V, M), then scratch for the bone modality */
        float *seq = malloc(sizeof(float) * ((size_t)longest * frame + out_size));
        if (!seq) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int b = 0; b < B; b++) {
            if (!seq) continue;
            const int64_t i = indices[b];
            const int T = (int)lengths[i];
            const float *src = pool + (size_t)offsets[i] * frame; /* [T][M][V][C] */
            for (int t = 0; t < T; t++)
                for (int m = 0; m < M; m++)
                    for (int v = 0; v < V; v++)
                        for (int c = 0; c < C; c++)
                            seq[(((size_t)c * T + t) * V + v) * M + m] = src[(((size_t)t * M + m) * V + v) * C + c];
            ctrgcn_rng rng;
            ctrgcn_rng_seed(&rng, seed, (uint64_t)i);
            int begin, length;
            crop_window(aug, &rng, T, &begin, &length);
            float *o = out + (size_t)b * out_size;
            ctrgcn_crop_resize(o, aug->window, seq, C, T, V, M, begin, length);
            if (aug->train && aug->theta > 0.0) {
                double angles[3];
                for (int k = 0; k < 3; k++) angles[k] = ctrgcn_rng_uniform(&rng, -aug->theta, aug->theta);
                ctrgcn_rotate(o, aug->window, V, M, angles);
            }
            ctrgcn_apply_modality(o, seq + (size_t)longest * frame, aug->modality, C, aug->window, V, M, parent);
        }
        free(seq);
    }
    if (failed) return ctrgcn_fail(CTRGCN_ERR_NOMEM, "sequence batch: out of memory");
    return CTRGCN_OK;
}

ctrgcn_status ctrgcn_ucla_batch(float *out, int steps, const double *pool, int64_t pool_frames,
                                const int64_t *offsets, const int64_t *lengths, int64_t N,
                                const int64_t *indices, int B, int train, uint64_t seed, int modality) {
    if (!out || !pool || !offsets || !lengths || !indices || N < 1 || B < 0)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "ucla batch: bad arguments");
    if (steps < 1 || steps > 100) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "ucla batch: steps must be 1..100");
    if (modality < 0 || modality > 3) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "ucla batch: bad modality");
    int64_t longest;
    const ctrgcn_status st = pool_longest("ucla batch", pool_frames, offsets, lengths, N, &longest);
    if (st != CTRGCN_OK) return st;
    for (int b = 0; b < B; b++)
        if (indices[b] < 0)
            return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "ucla batch: negative index %lld", (long long)indices[b]);
    const size_t out_size = (size_t)3 * steps * CTRGCN_UCLA_JOINTS;
    const size_t scratch_size = (size_t)longest * CTRGCN_UCLA_JOINTS * 3 + 2 * (size_t)steps * CTRGCN_UCLA_JOINTS * 3;
    int failed = 0;
#pragma omp parallel if (B > 1)
    {
        double *scratch = malloc(sizeof(double) * scratch_size);
        if (!scratch) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 4)
        for (int b = 0; b < B; b++) {
            if (!scratch) continue;
            const int64_t i = indices[b] % N; /* repeat > 1 revisits samples with new randomness */
            ctrgcn_ucla_sample(out + (size_t)b * out_size, steps, pool + (size_t)offsets[i] * CTRGCN_UCLA_JOINTS * 3,
                               (int)lengths[i], train, seed, (uint64_t)indices[b], modality, scratch);
        }
        free(scratch);
    }
    if (failed) return ctrgcn_fail(CTRGCN_ERR_NOMEM, "ucla batch: out of memory");
    return CTRGCN_OK;
}

/* ctrgcn data: skeleton readers, the NTU RGB+D preparation, augmentations, modalities and
 * batch assembly.
 *
 * Same rules as ctrgcn.h: plain structs with *_free functions that accept NULL (and a zeroed
 * struct), a status from everything that can fail with the message in ctrgcn_last_error(), no
 * exit or abort on any input, no caller pointer kept after a call returns.
 */
#ifndef CTRGCN_DATA_H
#define CTRGCN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "ctrgcn.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CTRGCN_NTU_JOINTS 25
#define CTRGCN_UCLA_JOINTS 20

/* ---- NTU RGB+D .skeleton files ------------------------------------------------------------- */
typedef struct {
    char *id;          /* bodyID as written in the file */
    int num_frames;    /* n: frames the body appears in */
    int first;         /* valid-frame index of its first appearance; the reference scripts' packed
                        * interval is first .. first + n - 1 */
    int *frames;       /* [n] valid-frame index of each appearance (differs from the packed
                        * interval when the body vanishes and returns) */
    float *joints;     /* [n][25][3] x y z in metres */
    float *colors;     /* [n][25][2] colorX colorY in pixels */
    int has_motion;    /* motion is only defined when the sample has >= 2 bodies */
    float motion;      /* sum over x y z of the variance of its n*25 positions (float32 maths) */
    int capacity;
} ctrgcn_ntu_body;

typedef struct {
    int num_frames_in_file;
    int num_frames;        /* valid frames: frames with >= 1 body */
    int num_dropped;
    int *dropped;          /* [num_dropped] 0-based file frame indices with 0 bodies */
    int num_bodies;        /* distinct bodyIDs, in order of first appearance */
    ctrgcn_ntu_body *bodies;
    int dropped_capacity, bodies_capacity;
} ctrgcn_ntu_skeleton;

/* Read a .skeleton file. Malformed or truncated files give CTRGCN_ERR_FORMAT with the file name
 * and line; a file with no frame or no body in any frame is malformed too. */
ctrgcn_status ctrgcn_ntu_skeleton_read(ctrgcn_ntu_skeleton *sk, const char *path);
/* The same from text in memory; `name` is used in messages. */
ctrgcn_status ctrgcn_ntu_skeleton_parse(ctrgcn_ntu_skeleton *sk, const char *text, size_t len, const char *name);
void ctrgcn_ntu_skeleton_free(ctrgcn_ntu_skeleton *sk);

/* ---- NTU denoising and translation (the reference preparation scripts) ------------------------ */
typedef struct {
    int num_frames;     /* rows of joints, after the removal of all-zero rows */
    int num_actors;     /* 1 or 2: joints are 75 or 150 wide */
    float *joints;      /* [num_frames][75 * num_actors] */
    int color_frames;   /* rows of colors: the valid frames (no row removal, NaN instead) */
    float *colors;      /* [color_frames][num_actors][25][2], NaN where the actor is absent */
    int num_actor1, num_actor2;
    int *actor1, *actor2;  /* body indices written into each actor's columns, in write order */
    float *motion;      /* [num_bodies] motion after the spread filter's update */
    int *dropped;       /* [num_bodies] 0 kept, 1 length filter, 2 spread filter, 3 not placed */
    int num_removed;    /* all-zero rows removed */
    char *info;         /* the reference actors_info text (multi-body samples only, else NULL) */
} ctrgcn_ntu_denoised;

/* Single-body samples pass through; multi-body samples go through the length and spread filters
 * and the choice of at most two actors by motion. */
ctrgcn_status ctrgcn_ntu_denoise(ctrgcn_ntu_denoised *out, const ctrgcn_ntu_skeleton *sk);
void ctrgcn_ntu_denoised_free(ctrgcn_ntu_denoised *d);

/* In place on joints[T][width] (width 75 or 150): subtract joint 2 (spine middle) of actor 1 in
 * its first non-zero frame from every frame, then re-zero each actor's all-zero frames. */
ctrgcn_status ctrgcn_ntu_translate(float *joints, int T, int width, int *origin_frame, float origin[3]);

/* ---- random numbers: one stream per sample, so results do not depend on threads ---------------- */
typedef struct {
    uint64_t state;
} ctrgcn_rng;
void ctrgcn_rng_seed(ctrgcn_rng *rng, uint64_t seed, uint64_t stream);
uint64_t ctrgcn_rng_next(ctrgcn_rng *rng);
double ctrgcn_rng_uniform(ctrgcn_rng *rng, double lo, double hi);   /* [lo, hi) */
int64_t ctrgcn_rng_int(ctrgcn_rng *rng, int64_t lo, int64_t hi);     /* [lo, hi] */

/* ---- modalities on x[C][T][V][M] --------------------------------------------------------------- */
/* parent[v] (0-based) of every joint: bone[v] = x[v] - x[parent[v]]; parent[v] == v gives 0. */
extern const int ctrgcn_ntu_parent[CTRGCN_NTU_JOINTS];
extern const int ctrgcn_ucla_parent[CTRGCN_UCLA_JOINTS];
typedef enum {
    CTRGCN_MODALITY_JOINT = 0,
    CTRGCN_MODALITY_BONE = 1,
    CTRGCN_MODALITY_MOTION = 2,
    CTRGCN_MODALITY_BONE_MOTION = 3
} ctrgcn_modality;
void ctrgcn_bone(float *dst, const float *src, int C, int T, int V, int M, const int *parent);
/* In place: x[t] = x[t+1] - x[t], the last frame 0. */
void ctrgcn_motion(float *x, int C, int T, int V, int M);
/* The modality in place (bone needs scratch of C*T*V*M floats). */
void ctrgcn_apply_modality(float *x, float *scratch, int modality, int C, int T, int V, int M, const int *parent);

/* ---- NTU training augmentation and test-time crop ------------------------------------------- */
typedef struct {
    int window;          /* output frames (64) */
    int train;           /* 1: random crop + rotation; 0: centre crop with p = test_p */
    double p_lo, p_hi;   /* crop ratio range of training (0.5, 1) */
    double test_p;       /* 0.95 */
    int min_length;      /* cropped length at least this many frames, or all valid (64) */
    double theta;        /* rotation angles uniform in [-theta, theta] per axis (0.3); 0: none */
    int modality;
} ctrgcn_ntu_aug;
void ctrgcn_ntu_aug_defaults(ctrgcn_ntu_aug *aug, int train);

/* Frames with a non-zero value, counted as the reference feeders count them. */
int ctrgcn_valid_frames(const float *x, int C, int T, int V, int M);
/* out[C][window][V][M] from x[C][T][V][M]: crop [begin, begin + length) and resize it with linear
 * interpolation over time, half-pixel centres (F.interpolate, align_corners=False). */
void ctrgcn_crop_resize(float *out, int window, const float *x, int C, int T, int V, int M, int begin, int length);
/* x[C=3][T][V][M] = R x with R = Rz Ry Rx of the three angles (radians). */
void ctrgcn_rotate(float *x, int T, int V, int M, const double angles[3]);

/* One batch: out[B][3][window][25][M] from data[N][3][T][25][M] rows indices[B]; sample b
 * draws its randomness from (seed, indices[b]). OpenMP over samples. */
ctrgcn_status ctrgcn_ntu_batch(float *out, const float *data, int64_t N, int T, int M, const int64_t *indices,
                               int B, uint64_t seed, const ctrgcn_ntu_aug *aug);

/* A batch from a pool of sequences of any layout: pool[F][M][V][C], sequence i at rows offsets[i] ..
 * offsets[i] + lengths[i] -> out[B][C][window][V][M], with the crop and resize of ctrgcn_ntu_batch
 * over all of a sequence's frames, the rotation when aug->theta > 0 and training (C must be 3),
 * then the modality (parent: the joints' parents, needed by the bone modalities). */
ctrgcn_status ctrgcn_seq_batch(float *out, const float *pool, int64_t pool_frames, int M, int V, int C,
                               const int64_t *offsets, const int64_t *lengths, int64_t N, const int64_t *indices,
                               int B, uint64_t seed, const ctrgcn_ntu_aug *aug, const int *parent);

/* ---- NW-UCLA ----------------------------------------------------------------------------------- */
/* One sample of the official feeder: seq[T][20][3] (float64) -> out[3][steps][20] float32.
 * train: rotation about x and y by integer degrees in [-60, 60] and a scale in [0.5, 1.5] before
 * the per-axis min-max to [-1, 1], and a sorted random draw of frame indices; else linspace. An
 * axis with zero range maps to 0. steps 1..100. scratch: (T * 60 + 2 * steps * 60) doubles. */
void ctrgcn_ucla_sample(float *out, int steps, const double *seq, int T, int train, uint64_t seed,
                        uint64_t stream, int modality, double *scratch);
/* A batch of them from a pool of sequences (pool rows offsets[i] .. offsets[i] + lengths[i]). */
ctrgcn_status ctrgcn_ucla_batch(float *out, int steps, const double *pool, int64_t pool_frames,
                                const int64_t *offsets, const int64_t *lengths, int64_t N,
                                const int64_t *indices, int B, int train, uint64_t seed, int modality);

#ifdef __cplusplus
}
#endif
#endif

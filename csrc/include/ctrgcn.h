/* ctrgcn: the CTR-GCN family of skeleton action recognition networks in C.
 *
 * Ownership rules: every object comes from a *_init / *_load call and goes back through its
 * *_free (which accepts NULL). The library never keeps a caller's pointer after a call returns,
 * never exits or aborts on bad input: functions return a status and leave a message that
 * ctrgcn_last_error() returns (per thread).
 */
#ifndef CTRGCN_H
#define CTRGCN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CTRGCN_OK = 0,
    CTRGCN_ERR_ARGUMENT,    /* bad argument value (unknown variant, bad sizes, NaN input) */
    CTRGCN_ERR_SHAPE,       /* an array of the wrong shape */
    CTRGCN_ERR_KEY,         /* a missing or unexpected tensor name */
    CTRGCN_ERR_IO,          /* the file system said no */
    CTRGCN_ERR_FORMAT,      /* a file that is not what it claims: magic, version, truncation, checksum */
    CTRGCN_ERR_NOMEM,
    CTRGCN_ERR_STATE        /* an operation that the object's state does not allow */
} ctrgcn_status;

/* The message of the last failure on this thread ("" when none). */
const char *ctrgcn_last_error(void);

/* ---- the model spec: variants are data ------------------------------------------------------
 * A spec says everything the networks differ in: widths and strides per block, which blocks carry
 * a spatial (CTR-GC) module, fused or separate convolutions, one shared relation or one per
 * subset, the temporal kernel and dilations, the relation-width rule. The four presets are rows
 * of one table (spec.c); a custom spec changes any field and validates. */
typedef enum {
    CTRGCN_VARIANT_CTRGCN = 0,   /* the official network, base 64 */
    CTRGCN_VARIANT_LIGHT = 1,    /* the seed's light network: base 60, no spatial module in l2 l3 l5 l8 */
    CTRGCN_VARIANT_LIGHTV1 = 2,  /* PaddleVideo lightV1: base 72, light layout, fused convolutions */
    CTRGCN_VARIANT_LIGHTV2 = 3,  /* PaddleVideo lightV2: base 62, fused, shared relation */
    CTRGCN_NUM_VARIANTS = 4,
    CTRGCN_VARIANT_CUSTOM = 4    /* a spec edited away from its preset */
} ctrgcn_variant;

typedef enum {
    CTRGCN_CONV_SEPARATE = 0,    /* official layout: one conv per subset and branch, official names */
    CTRGCN_CONV_FUSED = 1        /* PaddleVideo's fused projections and pointwise convs, its names */
} ctrgcn_conv_kind;

typedef enum {
    CTRGCN_RELATION_PER_SUBSET = 0, /* three relations, one per graph subset */
    CTRGCN_RELATION_SHARED = 1      /* one relation feeds all three subsets (lightV2) */
} ctrgcn_relation_kind;

typedef enum {
    CTRGCN_GCN_WIDTH_OUTPUT = 0, /* the spatial module maps cin -> cout */
    CTRGCN_GCN_WIDTH_INPUT = 1   /* it keeps cin; the temporal module widens (lightV2's stride-2 blocks) */
} ctrgcn_gcn_width;

#define CTRGCN_MAX_JOINTS 128
#define CTRGCN_MAX_EDGES 512
#define CTRGCN_NUM_BLOCKS 10
/* Eval inputs must lie within +-CTRGCN_MAX_INPUT_MAGNITUDE (float32 activations stay finite), training
 * inputs within +-CTRGCN_MAX_TRAIN_INPUT_MAGNITUDE (BatchNorm sums their squares over a batch). */
#define CTRGCN_MAX_INPUT_MAGNITUDE 1e30f
#define CTRGCN_MAX_TRAIN_INPUT_MAGNITUDE 1e15f

typedef struct {
    int out_channels;   /* cout; the input width is the previous block's cout (block 1: in_channels) */
    int stride;         /* temporal stride: 1 or 2 */
    int spatial;        /* 1: TCN_GCN_unit (CTR-GC spatial module), 0: TCN_unit (temporal only) */
    int gcn_width;      /* ctrgcn_gcn_width */
    int kernel_size;    /* temporal kernel (odd) of the two dilated branches */
    int dilations[2];   /* their dilations */
} ctrgcn_block_spec;

typedef struct {
    int variant;        /* ctrgcn_variant: the preset this spec is, or CUSTOM */
    int num_classes;
    int num_joints;     /* V */
    int num_person;     /* M */
    int in_channels;    /* C of the input: 3 (xyz) for the presets */
    int base_channel;   /* b of the preset widths (b, 2b, 4b); ctrgcn_spec_set_base rescales */
    int conv;           /* ctrgcn_conv_kind */
    int relation;       /* ctrgcn_relation_kind */
    /* relation width R of a spatial module with input width c: rel_small when c is 3 or 9 (raw
     * coordinates) or below rel_reduction (2-D keypoints), else c / rel_reduction (the official
     * rule: 8 and 8) */
    int rel_reduction, rel_small;
    ctrgcn_block_spec blocks[CTRGCN_NUM_BLOCKS];
    int num_edges;      /* inward edges (i, j), 0-based joints */
    int edges[CTRGCN_MAX_EDGES][2];
} ctrgcn_spec;

/* Fill a spec with a preset. variant: "CTRGCN", "CTRGCN_light", "CTRGCN_lightV1",
 * "CTRGCN_lightV2"; graph: "ntu" (V=25) or "ucla" (V=20). */
ctrgcn_status ctrgcn_spec_preset(ctrgcn_spec *spec, const char *variant, const char *graph,
                                 int num_classes, int num_person, int in_channels);
/* Widths b, 2b, 4b of the preset pattern with a new base b. */
ctrgcn_status ctrgcn_spec_set_base(ctrgcn_spec *spec, int base_channel);
/* Replace the graph by a custom inward edge list; V becomes num_joints. */
ctrgcn_status ctrgcn_spec_set_edges(ctrgcn_spec *spec, int num_joints, int num_edges,
                                    const int (*edges)[2]);
ctrgcn_status ctrgcn_spec_validate(const ctrgcn_spec *spec);
/* The preset a spec equals (CTRGCN_VARIANT_*), or CTRGCN_VARIANT_CUSTOM. */
int ctrgcn_spec_match_preset(const ctrgcn_spec *spec);
const char *ctrgcn_variant_name(int variant);
int ctrgcn_variant_from_name(const char *name); /* -1 when unknown */

/* ---- the model ------------------------------------------------------------------------------ */
typedef struct ctrgcn_model ctrgcn_model;

/* A model with the official initialisation drawn from `seed`. */
ctrgcn_status ctrgcn_model_init(ctrgcn_model **out, const ctrgcn_spec *spec, uint64_t seed);
void ctrgcn_model_free(ctrgcn_model *model);
const ctrgcn_spec *ctrgcn_model_spec(const ctrgcn_model *model);

/* The table of named tensors (parameters and BatchNorm statistics) the spec defines. */
typedef struct {
    const char *name;   /* official / PaddleVideo module path, e.g. "l1.gcn1.PA" */
    int ndim;
    int shape[4];
    size_t numel;
    int is_buffer;      /* 1 for BatchNorm running statistics, 0 for learned parameters */
} ctrgcn_tensor_info;

int ctrgcn_model_num_tensors(const ctrgcn_model *model);
size_t ctrgcn_model_num_parameters(const ctrgcn_model *model); /* learned values only */
ctrgcn_status ctrgcn_model_tensor_info(const ctrgcn_model *model, int index, ctrgcn_tensor_info *info);
int ctrgcn_model_find_tensor(const ctrgcn_model *model, const char *name); /* -1 when absent */
/* Copy a tensor out of / into the model (numel floats). */
ctrgcn_status ctrgcn_model_get_tensor(const ctrgcn_model *model, int index, float *dst);
ctrgcn_status ctrgcn_model_set_tensor(ctrgcn_model *model, int index, const float *src);

/* Class names the model carries (kept in its file): exactly num_classes names of 1 to
 * CTRGCN_MAX_CLASS_NAME bytes each (UTF-8), copied; count 0 removes them. */
#define CTRGCN_MAX_CLASS_NAME 1024
ctrgcn_status ctrgcn_model_set_class_names(ctrgcn_model *model, const char *const *names, int count);
/* Name of class `index`, or NULL when the model carries no names (or index is out of range). */
const char *ctrgcn_model_class_name(const ctrgcn_model *model, int index);

/* A counter that moves whenever the model's values change (sessions re-read them then). */
uint64_t ctrgcn_model_version(const ctrgcn_model *model);

/* The shape of block `block`'s output for frames T: channels and frames. */
ctrgcn_status ctrgcn_model_block_shape(const ctrgcn_model *model, int block, int T, int *channels,
                                       int *frames);

/* What block `block` (1..10) computes, as the spec implies it. */
typedef struct {
    int cin, cout, stride;
    int has_gcn;            /* spatial module present (TCN_GCN_unit) or not (TCN_unit) */
    int gcn_cin, gcn_cout;  /* spatial module widths */
    int R, nrel;            /* relation width; relations computed (3, or 1 when shared) */
    int fused;              /* PaddleVideo fused convolutions */
    int kernel_size, dilations[2]; /* the temporal branches */
    int down;               /* spatial down path: 1 identity, 2 conv + BN */
    int tcn_cin;            /* temporal module input width */
    int B, last;            /* temporal branch width, width of branch 3 */
    int residual;           /* block residual: 0 none, 1 identity, 2 conv stride s + BN */
    int residual_in_tcn;    /* named tcn1.residual (TCN_unit) rather than residual */
} ctrgcn_block_info;
ctrgcn_status ctrgcn_model_block_info(const ctrgcn_model *model, int block, ctrgcn_block_info *info);

/* The flat parameter array: tensor i occupies [offset_i, offset_i + numel_i) in table order
 * (ctrgcn_model_tensor_offset); gradients and momentum use the same layout, buffers get zeros. */
size_t ctrgcn_model_params_size(const ctrgcn_model *model);
size_t ctrgcn_model_tensor_offset(const ctrgcn_model *model, int index);
ctrgcn_status ctrgcn_model_get_params(const ctrgcn_model *model, float *dst);
ctrgcn_status ctrgcn_model_set_params(ctrgcn_model *model, const float *src);

/* ---- execution sessions ----------------------------------------------------------------------
 * A model holds weights only: nothing a forward or a training step does writes to it. A session
 * owns the execution: the backend (by name: "cpu", or "cuda" where the CUDA backend library was built
 * and a GPU is present; "" = cpu), its threads (0 = all cores; the GPU ignores them), the
 * folded eval weights, memory plans, and for training the parameters, gradients and momentum. A
 * session borrows its model (free the sessions first); sessions over one model run concurrently,
 * one session is used by one thread at a time. */
typedef struct ctrgcn_session ctrgcn_session;
ctrgcn_status ctrgcn_session_init(ctrgcn_session **out, const ctrgcn_model *model, const char *backend,
                                  int threads);
void ctrgcn_session_free(ctrgcn_session *session);
const char *ctrgcn_session_backend(const ctrgcn_session *session);
/* Fold the model's current weights if they changed since the last call (forward does it too). */
ctrgcn_status ctrgcn_session_prepare(ctrgcn_session *session);

/* Eval forward. x: float32 [N, C, T, V, M] (C-contiguous), logits: [N, num_classes]. Memory is
 * planned per (N, T) and reused. Rejects non-finite inputs. */
ctrgcn_status ctrgcn_session_forward(ctrgcn_session *session, const float *x, int N, int T, float *logits);
/* Also copying the output of block `block` (1..10) for every person: act [N*M, C_b, T_b, V]. */
ctrgcn_status ctrgcn_session_forward_probe(ctrgcn_session *session, const float *x, int N, int T,
                                           float *logits, int block, float *act, size_t act_size);

/* Training. The session's parameters start as the model's (and are read again when the model's
 * version moves); steps change the session's copy only, until write_params. */
ctrgcn_status ctrgcn_session_set_sgd(ctrgcn_session *session, float momentum, float weight_decay, int nesterov);
/* Train-mode forward (BatchNorm on batch statistics) keeping what backward needs; with
 * update_stats the running statistics move (momentum 0.1, unbiased variance). logits may be NULL. */
ctrgcn_status ctrgcn_session_train_forward(ctrgcn_session *session, const float *x, int N, int T,
                                           float *logits, int update_stats);
/* Mean softmax cross-entropy of the last train_forward against soft targets [N, K] (label
 * smoothing and mixup are soft targets), plus extra_dlogits [N, K] when given (e.g. mutual
 * learning), and the backward: gradients stay in the session. loss may be NULL. */
ctrgcn_status ctrgcn_session_train_backward(ctrgcn_session *session, const float *targets,
                                            const float *extra_dlogits, double *loss);
/* SGD with momentum (Nesterov optional) and L2 weight decay on every learned tensor, as PyTorch's
 * SGD and Paddle's Momentum apply them. */
ctrgcn_status ctrgcn_session_sgd_step(ctrgcn_session *session, float lr);
/* forward + loss + backward + SGD in one call. */
ctrgcn_status ctrgcn_session_train_step(ctrgcn_session *session, const float *x, int N, int T,
                                        const float *targets, float lr, float *logits, double *loss);
/* The last backward's gradients in the flat parameter layout (params_size floats). */
ctrgcn_status ctrgcn_session_gradients(ctrgcn_session *session, float *grads);
/* Copy the trained parameters and running statistics into the session's model. */
ctrgcn_status ctrgcn_session_write_params(ctrgcn_session *session, ctrgcn_model *model);
/* Momentum buffer (flat layout) and step count, for checkpoints. */
ctrgcn_status ctrgcn_session_get_velocity(ctrgcn_session *session, float *velocity, long *steps);
ctrgcn_status ctrgcn_session_set_velocity(ctrgcn_session *session, const float *velocity, long steps);

/* Op-level timing: with on, the session starts counting (from zero) the calls and wall time of
 * every backend op and memory hook it runs, syncing the backend around each (slower: profile
 * apart from a measurement); off stops and forgets. Slot i's totals by profile_entry, i <
 * ctrgcn_profile_slots(); eval lanes add thread-seconds. */
ctrgcn_status ctrgcn_session_profile(ctrgcn_session *session, int on);
int ctrgcn_profile_slots(void);
ctrgcn_status ctrgcn_session_profile_entry(const ctrgcn_session *session, int slot, const char **name, long *calls,
                                           double *seconds);

/* Mean softmax cross-entropy against soft targets [N, K]; dlogits = (softmax - target) / N
 * when not NULL. */
ctrgcn_status ctrgcn_softmax_xent(const float *logits, const float *targets, int N, int K, double *loss,
                                  float *dlogits);

/* Per-iteration learning rate: linear warm-up from warmup_start to base over warmup_epochs, then
 * cosine decay to 0 at `epochs` (kind 0) or x gamma at each listed epoch (kind 1). */
typedef struct {
    int kind;                 /* 0 warm-up + cosine, 1 warm-up + step */
    double base_lr, warmup_start;
    double warmup_epochs;
    int epochs;
    long iters_per_epoch;
    int num_steps;
    int steps[16];            /* epochs where step decay applies */
    double gamma;
} ctrgcn_lr_schedule;
double ctrgcn_lr_at(const ctrgcn_lr_schedule *schedule, long iteration);

/* ---- the project's file format -------------------------------------------------------------- */
/* A single file: magic "CTRGCN\0\1", format version, the spec, then every named tensor
 * (name, shape, float32 data), the class names when the model carries them, and a CRC-32 of
 * everything before it. Written atomically. */
ctrgcn_status ctrgcn_model_save(const ctrgcn_model *model, const char *path);
/* Storage dtypes of a file's tensors. FLOAT16 stores every tensor as IEEE half (nearest even; a
 * value beyond +-65504 is an error). INT8 stores convolution weights (4-D) and fc.weight as int8
 * with one float32 scale per output channel (symmetric, max|w| / 127), the rest as float32; fold
 * BatchNorms into the convolutions first (ctrgcn/formats/quantize.py) for the best accuracy.
 * Loading dequantises to float32. ctrgcn_model_save is save_as(FLOAT32). */
enum { CTRGCN_DTYPE_FLOAT32 = 0, CTRGCN_DTYPE_FLOAT16 = 1, CTRGCN_DTYPE_INT8 = 2 };
ctrgcn_status ctrgcn_model_save_as(const ctrgcn_model *model, const char *path, int dtype);
ctrgcn_status ctrgcn_model_load(ctrgcn_model **out, const char *path);

#ifdef __cplusplus
}
#endif
#endif

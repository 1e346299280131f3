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

/* ---- the model spec: variants are data ---------------------------------------------------- */
typedef enum {
    CTRGCN_VARIANT_CTRGCN = 0,   /* the official network, base 64 */
    CTRGCN_VARIANT_LIGHT = 1,    /* the seed's light network: base 60, no spatial module in l2 l3 l5 l8 */
    CTRGCN_VARIANT_LIGHTV1 = 2,  /* PaddleVideo lightV1: base 72, light layout, fused convolutions */
    CTRGCN_VARIANT_LIGHTV2 = 3,  /* PaddleVideo lightV2: base 62, fused, shared relation */
    CTRGCN_NUM_VARIANTS = 4
} ctrgcn_variant;

#define CTRGCN_MAX_JOINTS 128
#define CTRGCN_MAX_EDGES 512
#define CTRGCN_NUM_BLOCKS 10

typedef struct {
    int variant;        /* ctrgcn_variant */
    int num_classes;
    int num_joints;     /* V */
    int num_person;     /* M */
    int in_channels;    /* C of the input: 3 (xyz) for the presets */
    int base_channel;   /* b; the variant's preset width unless changed */
    int num_edges;      /* inward edges (i, j), 0-based joints */
    int edges[CTRGCN_MAX_EDGES][2];
} ctrgcn_spec;

/* Fill a spec with a preset. variant: "CTRGCN", "CTRGCN_light", "CTRGCN_lightV1",
 * "CTRGCN_lightV2"; graph: "ntu" (V=25) or "ucla" (V=20). */
ctrgcn_status ctrgcn_spec_preset(ctrgcn_spec *spec, const char *variant, const char *graph,
                                 int num_classes, int num_person, int in_channels);
/* Replace the graph by a custom inward edge list; V becomes num_joints. */
ctrgcn_status ctrgcn_spec_set_edges(ctrgcn_spec *spec, int num_joints, int num_edges,
                                    const int (*edges)[2]);
ctrgcn_status ctrgcn_spec_validate(const ctrgcn_spec *spec);
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

/* Threads used by forward (0 = all cores). */
void ctrgcn_model_set_threads(ctrgcn_model *model, int threads);

/* Eval-mode forward. x: float32 [N, C, T, V, M] (C-contiguous), logits: [N, num_classes].
 * Memory is planned on the first call for each (N, T) and reused; nothing is allocated otherwise.
 * Rejects non-finite inputs. */
ctrgcn_status ctrgcn_model_forward(ctrgcn_model *model, const float *x, int N, int T, float *logits);

/* Like forward, also copying the output of block `block` (1..10) for every person:
 * act: [N*M, C_block, T_block, V]. act_size (floats) must be large enough. */
ctrgcn_status ctrgcn_model_forward_probe(ctrgcn_model *model, const float *x, int N, int T,
                                         float *logits, int block, float *act, size_t act_size);
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
    int down;               /* spatial down path: 1 identity, 2 conv + BN */
    int tcn_cin;            /* temporal module input width */
    int B, last;            /* temporal branch width, width of branch 3 */
    int residual;           /* block residual: 0 none, 1 identity, 2 conv stride s + BN */
    int residual_in_tcn;    /* named tcn1.residual (TCN_unit) rather than residual */
} ctrgcn_block_info;
ctrgcn_status ctrgcn_model_block_info(const ctrgcn_model *model, int block, ctrgcn_block_info *info);

/* ---- training -------------------------------------------------------------------------------
 * Gradients live in a flat array laid out like the model's parameters: tensor i occupies
 * [offset_i, offset_i + numel_i) in table order (ctrgcn_model_tensor_offset), buffers get zeros. */
size_t ctrgcn_model_params_size(const ctrgcn_model *model);
size_t ctrgcn_model_tensor_offset(const ctrgcn_model *model, int index);
/* Bulk copies of the flat parameter array (params_size floats). */
ctrgcn_status ctrgcn_model_get_params(const ctrgcn_model *model, float *dst);
ctrgcn_status ctrgcn_model_set_params(ctrgcn_model *model, const float *src);

/* Train-mode forward (BatchNorm on batch statistics) that keeps what backward needs. With
 * update_stats the running statistics move (momentum 0.1, unbiased variance). */
ctrgcn_status ctrgcn_model_train_forward(ctrgcn_model *model, const float *x, int N, int T, float *logits,
                                         int update_stats);
/* Backward of the last train_forward: grads (params_size floats) are overwritten. */
ctrgcn_status ctrgcn_model_train_backward(ctrgcn_model *model, const float *dlogits, float *grads);

/* Mean softmax cross-entropy against soft targets [N, K] (rows summing to 1; label smoothing
 * and mixup are soft targets); dlogits = (softmax - target) / N when not NULL. */
ctrgcn_status ctrgcn_softmax_xent(const float *logits, const float *targets, int N, int K, double *loss,
                                  float *dlogits);

/* SGD with momentum (Nesterov optional) and L2 weight decay added to the gradient of every
 * learned tensor, as PyTorch's SGD and Paddle's Momentum apply them. */
typedef struct ctrgcn_sgd ctrgcn_sgd;
ctrgcn_status ctrgcn_sgd_init(ctrgcn_sgd **out, const ctrgcn_model *model, float momentum, float weight_decay,
                              int nesterov);
void ctrgcn_sgd_free(ctrgcn_sgd *opt);
ctrgcn_status ctrgcn_sgd_step(ctrgcn_sgd *opt, ctrgcn_model *model, const float *grads, float lr);
/* The same update with a caller-owned velocity (params_size floats); first_step starts it. */
ctrgcn_status ctrgcn_sgd_update_raw(ctrgcn_model *model, const float *grads, float *velocity, float lr,
                                    float momentum, float weight_decay, int nesterov, int first_step);
/* The momentum buffer (params_size floats) and step count, for checkpoints. */
ctrgcn_status ctrgcn_sgd_get_state(const ctrgcn_sgd *opt, float *velocity, long *steps);
ctrgcn_status ctrgcn_sgd_set_state(ctrgcn_sgd *opt, const float *velocity, long steps);

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
 * (name, shape, float32 data), and a CRC-32 of everything before it. Written atomically. */
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

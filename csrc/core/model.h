/* Internal model structures: the block layout derived from a spec, the table of named tensors,
 * and the weights. Everything a call mutates lives in a session (core/session.h). */
#ifndef CTRGCN_MODEL_H
#define CTRGCN_MODEL_H
#include <stddef.h>
#include <stdint.h>

#include "ctrgcn.h"

/* What a block computes, derived once from the spec (spec.c: block_layout). */
typedef struct {
    int cin, cout, stride;
    int has_gcn;              /* TCN_GCN_unit (1) or TCN_unit (0) */
    int gcn_cin, gcn_cout;    /* spatial module widths (lightV2 stride-2 keeps the input width) */
    int R;                    /* relation width */
    int nrel;                 /* relations computed: 3 (one per subset) or 1 (lightV2 shared) */
    int fused;                /* PaddleVideo fused convolutions */
    int kt, dil[2];           /* temporal kernel and the two branches' dilations */
    int down;                 /* spatial down path: 1 identity, 2 conv + BN */
    int tcn_cin, tcn_cout;    /* temporal module widths */
    int B, last;              /* branch width, width of branch 3 */
    int residual;             /* block residual: 0 none, 1 identity, 2 conv stride s + BN */
    int residual_in_tcn;      /* the TCN_unit's residual lives under tcn1.residual */
} block_layout;

/* Indices into the tensor table; -1 = absent. */
typedef struct { int w, b; } conv_ref;
typedef struct { int w, b, mean, var; } bn_ref;

typedef struct {
    int PA, alpha;
    conv_ref q[3], k[3], val[3];   /* unfused: conv1, conv2, conv3 of each subset */
    conv_ref fused_conv1;          /* fused: the one projection conv */
    conv_ref rel[3];               /* conv4 (unfused) or conv2.i (fused) */
    conv_ref down; bn_ref down_bn;
    bn_ref gcn_bn;
    conv_ref pw[3]; bn_ref pw_bn[3];  /* fused: pw[0] / pw_bn[0] is conv_pw */
    conv_ref tconv[2]; bn_ref tconv_bn[2];
    bn_ref pool_bn;
    conv_ref b3; bn_ref b3_bn;
    conv_ref res; bn_ref res_bn;
} block_refs;

typedef enum {
    INIT_ZERO, INIT_ONE, INIT_CONST, INIT_KAIMING_FAN_OUT, INIT_NORMAL, INIT_UNIFORM, INIT_GRAPH
} init_kind;

typedef struct {
    char name[64];
    int ndim, shape[4];
    size_t numel, offset;
    int is_buffer;
    int init;          /* init_kind */
    float init_a, init_b;
} tensor_entry;

struct ctrgcn_model {
    ctrgcn_spec spec;
    block_layout blocks[CTRGCN_NUM_BLOCKS];
    block_refs refs[CTRGCN_NUM_BLOCKS];
    int data_bn_w, data_bn_b, data_bn_mean, data_bn_var, fc_w, fc_b;

    tensor_entry *tensors;
    int num_tensors, cap_tensors;
    float *params;         /* every named tensor, one allocation */
    size_t params_size;

    uint64_t version;      /* moves whenever a value changes */
    char **class_names;    /* num_classes names, or NULL when the model carries none */
};

/* spec.c */
void block_layout_from_spec(const ctrgcn_spec *spec, block_layout *blocks);
/* The architecture fields of preset `variant` (graph, classes, persons, channels untouched). */
void spec_fill_preset(ctrgcn_spec *spec, int variant);
void graph_adjacency(const ctrgcn_spec *spec, float *A); /* [3][V][V]: I, In, Out */

/* table.c */
ctrgcn_status model_build_table(ctrgcn_model *m);
/* init.c */
void model_init_params(ctrgcn_model *m, uint64_t seed);

static inline float *tensor_data(const ctrgcn_model *m, int index) {
    return index < 0 ? NULL : m->params + m->tensors[index].offset;
}

#endif

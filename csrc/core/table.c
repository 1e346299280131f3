/* The table of named tensors: one walk over the block layout names every parameter and BatchNorm
 * statistic (official PyTorch paths for the unfused variants, PaddleVideo's for the fused ones),
 * gives its shape, its place in the one parameter allocation and its initialisation rule. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/model.h"

typedef struct {
    ctrgcn_model *m;
    int failed;
} table_builder;

static int add(table_builder *tb, int is_buffer, int init, float a, float b, int ndim, const int *shape,
               const char *fmt, ...) {
    ctrgcn_model *m = tb->m;
    if (tb->failed) return -1;
    if (m->num_tensors == m->cap_tensors) {
        int cap = m->cap_tensors ? 2 * m->cap_tensors : 256;
        tensor_entry *t = realloc(m->tensors, sizeof *t * cap);
        if (!t) {
            tb->failed = 1;
            return -1;
        }
        m->tensors = t;
        m->cap_tensors = cap;
    }
    tensor_entry *e = &m->tensors[m->num_tensors];
    memset(e, 0, sizeof *e);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->name, sizeof e->name, fmt, ap);
    va_end(ap);
    e->ndim = ndim;
    e->numel = 1;
    for (int i = 0; i < ndim; i++) {
        e->shape[i] = shape[i];
        e->numel *= (size_t)shape[i];
    }
    e->offset = m->params_size;
    m->params_size += e->numel;
    e->is_buffer = is_buffer;
    e->init = init;
    e->init_a = a;
    e->init_b = b;
    return m->num_tensors++;
}

#define SHAPE(...) ((const int[]){__VA_ARGS__})

/* A 1x1 or (k,1) convolution: weight [out, in, k, 1], optional bias. */
static conv_ref add_conv(table_builder *tb, int out, int in, int k, int bias, const char *prefix) {
    conv_ref r;
    r.w = add(tb, 0, INIT_KAIMING_FAN_OUT, (float)(out * k), 0, 4, SHAPE(out, in, k, 1), "%s.weight", prefix);
    r.b = bias ? add(tb, 0, INIT_ZERO, 0, 0, 1, SHAPE(out), "%s.bias", prefix) : -1;
    return r;
}

/* BatchNorm: gamma_rule INIT_CONST with value, or INIT_NORMAL(1, 0.02) as weights_init does. */
static bn_ref add_bn(table_builder *tb, int C, int gamma_rule, float gamma, const char *prefix) {
    bn_ref r;
    r.w = add(tb, 0, gamma_rule, gamma_rule == INIT_NORMAL ? 1.0f : gamma, gamma_rule == INIT_NORMAL ? 0.02f : 0,
              1, SHAPE(C), "%s.weight", prefix);
    r.b = add(tb, 0, INIT_ZERO, 0, 0, 1, SHAPE(C), "%s.bias", prefix);
    r.mean = add(tb, 1, INIT_ZERO, 0, 0, 1, SHAPE(C), "%s.running_mean", prefix);
    r.var = add(tb, 1, INIT_ONE, 0, 0, 1, SHAPE(C), "%s.running_var", prefix);
    return r;
}

static const bn_ref no_bn = {-1, -1, -1, -1};
static const conv_ref no_conv = {-1, -1};

static void add_gcn(table_builder *tb, const block_layout *L, block_refs *r, int V, const char *p) {
    char name[64];
    const int ci = L->gcn_cin, co = L->gcn_cout, R = L->R;
    r->PA = add(tb, 0, INIT_GRAPH, 0, 0, 3, SHAPE(3, V, V), "%s.gcn1.PA", p);
    r->alpha = add(tb, 0, INIT_ZERO, 0, 0, 1, SHAPE(1), "%s.gcn1.alpha", p);
    if (!L->fused) {
        for (int i = 0; i < 3; i++) {
            snprintf(name, sizeof name, "%s.gcn1.convs.%d.conv1", p, i);
            r->q[i] = add_conv(tb, R, ci, 1, 1, name);
            snprintf(name, sizeof name, "%s.gcn1.convs.%d.conv2", p, i);
            r->k[i] = add_conv(tb, R, ci, 1, 1, name);
            snprintf(name, sizeof name, "%s.gcn1.convs.%d.conv3", p, i);
            r->val[i] = add_conv(tb, co, ci, 1, 1, name);
            snprintf(name, sizeof name, "%s.gcn1.convs.%d.conv4", p, i);
            r->rel[i] = add_conv(tb, co, R, 1, 1, name);
        }
    } else {
        snprintf(name, sizeof name, "%s.gcn1.convs.conv1", p);
        r->fused_conv1 = add_conv(tb, 2 * L->nrel * R + 3 * co, ci, 1, 1, name);
        for (int i = 0; i < 3; i++) {
            snprintf(name, sizeof name, "%s.gcn1.convs.conv2.%d", p, i);
            r->rel[i] = add_conv(tb, co, R, 1, 1, name);
        }
    }
    if (L->down == 2) {
        snprintf(name, sizeof name, "%s.gcn1.down.0", p);
        r->down = add_conv(tb, co, ci, 1, !L->fused, name);
        snprintf(name, sizeof name, "%s.gcn1.down.1", p);
        r->down_bn = add_bn(tb, co, INIT_CONST, 1.0f, name);
    }
    snprintf(name, sizeof name, "%s.gcn1.bn", p);
    r->gcn_bn = add_bn(tb, co, INIT_CONST, 1e-6f, name); /* official: bn_init(self.bn, 1e-6) */
}

static void add_tcn(table_builder *tb, const block_layout *L, block_refs *r, const char *p) {
    char name[64];
    const int ci = L->tcn_cin, B = L->B;
    if (!L->fused) {
        for (int j = 0; j < 4; j++) {
            snprintf(name, sizeof name, "%s.tcn1.branches.%d.0", p, j);
            conv_ref c = add_conv(tb, B, ci, 1, 1, name);
            snprintf(name, sizeof name, "%s.tcn1.branches.%d.1", p, j);
            bn_ref bn = add_bn(tb, B, INIT_NORMAL, 0, name);
            if (j < 3) {
                r->pw[j] = c;
                r->pw_bn[j] = bn;
            } else {
                r->b3 = c;
                r->b3_bn = bn;
            }
            if (j < 2) {
                snprintf(name, sizeof name, "%s.tcn1.branches.%d.3.conv", p, j);
                r->tconv[j] = add_conv(tb, B, B, L->kt, 1, name);
                snprintf(name, sizeof name, "%s.tcn1.branches.%d.3.bn", p, j);
                r->tconv_bn[j] = add_bn(tb, B, INIT_NORMAL, 0, name);
            } else if (j == 2) {
                snprintf(name, sizeof name, "%s.tcn1.branches.2.4", p);
                r->pool_bn = add_bn(tb, B, INIT_NORMAL, 0, name);
            }
        }
    } else {
        snprintf(name, sizeof name, "%s.tcn1.conv_pw.0", p);
        r->pw[0] = add_conv(tb, 3 * B, ci, 1, 0, name);
        snprintf(name, sizeof name, "%s.tcn1.conv_pw.1", p);
        r->pw_bn[0] = add_bn(tb, 3 * B, INIT_NORMAL, 0, name);
        for (int j = 0; j < 2; j++) {
            snprintf(name, sizeof name, "%s.tcn1.branches.%d.conv", p, j);
            r->tconv[j] = add_conv(tb, B, B, L->kt, 0, name);
            snprintf(name, sizeof name, "%s.tcn1.branches.%d.bn", p, j);
            r->tconv_bn[j] = add_bn(tb, B, INIT_NORMAL, 0, name);
        }
        snprintf(name, sizeof name, "%s.tcn1.branches.2.1", p);
        r->pool_bn = add_bn(tb, B, INIT_NORMAL, 0, name);
        snprintf(name, sizeof name, "%s.tcn1.branches.3.0", p);
        r->b3 = add_conv(tb, L->last, ci, 1, 0, name);
        snprintf(name, sizeof name, "%s.tcn1.branches.3.1", p);
        r->b3_bn = add_bn(tb, L->last, INIT_NORMAL, 0, name);
    }
}

static void add_residual(table_builder *tb, const block_layout *L, block_refs *r, const char *p) {
    char name[64];
    if (L->residual != 2) return;
    /* A TCN_unit's residual is its temporal module's own (weights_init: BN gamma ~ N(1, 0.02));
     * a TCN_GCN_unit's is a unit_tcn (bn_init 1). */
    const char *where = L->residual_in_tcn ? "tcn1.residual" : "residual";
    snprintf(name, sizeof name, "%s.%s.conv", p, where);
    r->res = add_conv(tb, L->cout, L->cin, 1, !L->fused, name);
    snprintf(name, sizeof name, "%s.%s.bn", p, where);
    r->res_bn = add_bn(tb, L->cout, L->residual_in_tcn ? INIT_NORMAL : INIT_CONST, 1.0f, name);
}

ctrgcn_status model_build_table(ctrgcn_model *m) {
    table_builder tb = {m, 0};
    const ctrgcn_spec *s = &m->spec;
    const int C = s->in_channels, V = s->num_joints, M = s->num_person;
    m->num_tensors = 0;
    m->params_size = 0;
    block_layout_from_spec(s, m->blocks);

    const int mvc = M * V * C;
    m->data_bn_w = add(&tb, 0, INIT_ONE, 0, 0, 1, &mvc, "data_bn.weight");
    m->data_bn_b = add(&tb, 0, INIT_ZERO, 0, 0, 1, &mvc, "data_bn.bias");
    m->data_bn_mean = add(&tb, 1, INIT_ZERO, 0, 0, 1, &mvc, "data_bn.running_mean");
    m->data_bn_var = add(&tb, 1, INIT_ONE, 0, 0, 1, &mvc, "data_bn.running_var");
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) {
        const block_layout *L = &m->blocks[k];
        block_refs *r = &m->refs[k];
        char p[16];
        snprintf(p, sizeof p, "l%d", k + 1);
        /* absent until added */
        r->PA = r->alpha = -1;
        for (int i = 0; i < 3; i++) r->q[i] = r->k[i] = r->val[i] = r->rel[i] = r->pw[i] = no_conv;
        for (int i = 0; i < 3; i++) r->pw_bn[i] = no_bn;
        r->fused_conv1 = r->down = r->b3 = r->res = r->tconv[0] = r->tconv[1] = no_conv;
        r->down_bn = r->gcn_bn = r->pool_bn = r->b3_bn = r->res_bn = r->tconv_bn[0] = r->tconv_bn[1] = no_bn;
        if (L->has_gcn) add_gcn(&tb, L, r, V, p);
        add_tcn(&tb, L, r, p);
        /* the TCN_unit's residual sits inside tcn1, after its branches */
        add_residual(&tb, L, r, p);
    }
    const int feat = m->blocks[CTRGCN_NUM_BLOCKS - 1].cout;
    /* official: fc.weight ~ N(0, sqrt(2 / classes)); the bias keeps nn.Linear's U(+-1/sqrt(in)) */
    m->fc_w = add(&tb, 0, INIT_NORMAL, 0.0f, sqrtf(2.0f / (float)s->num_classes), 2,
                  SHAPE(s->num_classes, feat), "fc.weight");
    m->fc_b = add(&tb, 0, INIT_UNIFORM, -1.0f / sqrtf((float)feat), 1.0f / sqrtf((float)feat), 1,
                  SHAPE(s->num_classes), "fc.bias");
    if (tb.failed) return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory building the tensor table");
    return CTRGCN_OK;
}

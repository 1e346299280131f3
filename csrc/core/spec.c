/* Model specs: the four presets, the skeleton graphs and the block layout a spec implies. */
#include <string.h>

#include "core/error.h"
#include "core/model.h"

static const char *const variant_names[CTRGCN_NUM_VARIANTS] = {
    "CTRGCN", "CTRGCN_light", "CTRGCN_lightV1", "CTRGCN_lightV2"};

/* The presets, one row each: base width, convolutions, relation, and which blocks drop the
 * spatial module (the light layout: l2, l3, l5, l8) or keep its input width on stride 2. */
typedef struct {
    int base, conv, relation, no_spatial_mask, gcn_keeps_input_on_stride;
} preset_row;
static const preset_row presets[CTRGCN_NUM_VARIANTS] = {
    {64, CTRGCN_CONV_SEPARATE, CTRGCN_RELATION_PER_SUBSET, 0, 0},
    {60, CTRGCN_CONV_SEPARATE, CTRGCN_RELATION_PER_SUBSET, (1 << 1) | (1 << 2) | (1 << 4) | (1 << 7), 0},
    {72, CTRGCN_CONV_FUSED, CTRGCN_RELATION_PER_SUBSET, (1 << 1) | (1 << 2) | (1 << 4) | (1 << 7), 0},
    {62, CTRGCN_CONV_FUSED, CTRGCN_RELATION_SHARED, 0, 1},
};
/* Width in units of the base and stride of the ten blocks, shared by every preset. */
static const int preset_widths[CTRGCN_NUM_BLOCKS][2] = {{1, 1}, {1, 1}, {1, 1}, {1, 1}, {2, 2},
                                                        {2, 1}, {2, 1}, {4, 2}, {4, 1}, {4, 1}};

void spec_fill_preset(ctrgcn_spec *spec, int v) {
    const preset_row *p = &presets[v];
    spec->variant = v;
    spec->base_channel = p->base;
    spec->conv = p->conv;
    spec->relation = p->relation;
    spec->rel_reduction = 8;
    spec->rel_small = 8;
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) {
        ctrgcn_block_spec *b = &spec->blocks[k];
        b->out_channels = preset_widths[k][0] * p->base;
        b->stride = preset_widths[k][1];
        b->spatial = !(p->no_spatial_mask >> k & 1);
        b->gcn_width = p->gcn_keeps_input_on_stride && b->stride > 1 ? CTRGCN_GCN_WIDTH_INPUT : CTRGCN_GCN_WIDTH_OUTPUT;
        b->kernel_size = 5;
        b->dilations[0] = 1;
        b->dilations[1] = 2;
    }
}

static void scale_widths(ctrgcn_spec *spec, int base) {
    spec->base_channel = base;
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) spec->blocks[k].out_channels = preset_widths[k][0] * base;
}

ctrgcn_status ctrgcn_spec_set_base(ctrgcn_spec *spec, int base) {
    if (!spec) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "spec is NULL");
    if (base < 1 || base > 4096) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "base_channel must be in 1..4096, got %d", base);
    scale_widths(spec, base);
    spec->variant = ctrgcn_spec_match_preset(spec);
    return CTRGCN_OK;
}

/* Two specs describe the same architecture (graph, classes and persons aside). */
static int same_architecture(const ctrgcn_spec *a, const ctrgcn_spec *b) {
    if (a->conv != b->conv || a->relation != b->relation || a->rel_reduction != b->rel_reduction ||
        a->rel_small != b->rel_small || a->base_channel != b->base_channel)
        return 0;
    return memcmp(a->blocks, b->blocks, sizeof a->blocks) == 0;
}

int ctrgcn_spec_match_preset(const ctrgcn_spec *spec) {
    /* a base outside the presets' range matches none (and must not overflow the width products) */
    if (spec->base_channel < 1 || spec->base_channel > 4096) return CTRGCN_VARIANT_CUSTOM;
    for (int v = 0; v < CTRGCN_NUM_VARIANTS; v++) {
        /* a preset at another base width is still that preset (the official code takes the width
         * as a parameter) */
        ctrgcn_spec p = *spec;
        spec_fill_preset(&p, v);
        scale_widths(&p, spec->base_channel);
        if (same_architecture(&p, spec)) return v;
    }
    return CTRGCN_VARIANT_CUSTOM;
}

/* Inward edges, 1-based, as the official graph files list them. */
static const int ntu_edges[][2] = {
    {1, 2},   {2, 21},  {3, 21},  {4, 3},   {5, 21},  {6, 5},   {7, 6},   {8, 7},
    {9, 21},  {10, 9},  {11, 10}, {12, 11}, {13, 1},  {14, 13}, {15, 14}, {16, 15},
    {17, 1},  {18, 17}, {19, 18}, {20, 19}, {22, 23}, {23, 8},  {24, 25}, {25, 12}};
static const int ucla_edges[][2] = {
    {1, 2},   {2, 3},   {4, 3},   {5, 3},   {6, 5},   {7, 6},   {8, 7},   {9, 3},   {10, 9}, {11, 10},
    {12, 11}, {13, 1},  {14, 13}, {15, 14}, {16, 15}, {17, 1},  {18, 17}, {19, 18}, {20, 19}};

const char *ctrgcn_variant_name(int variant) {
    if (variant == CTRGCN_VARIANT_CUSTOM) return "custom";
    return variant >= 0 && variant < CTRGCN_NUM_VARIANTS ? variant_names[variant] : "unknown";
}

int ctrgcn_variant_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < CTRGCN_NUM_VARIANTS; i++)
        if (strcmp(name, variant_names[i]) == 0) return i;
    return -1;
}

static void set_edges_1based(ctrgcn_spec *spec, int V, const int (*e)[2], int n) {
    spec->num_joints = V;
    spec->num_edges = n;
    for (int i = 0; i < n; i++) {
        spec->edges[i][0] = e[i][0] - 1;
        spec->edges[i][1] = e[i][1] - 1;
    }
}

ctrgcn_status ctrgcn_spec_preset(ctrgcn_spec *spec, const char *variant, const char *graph,
                                 int num_classes, int num_person, int in_channels) {
    if (!spec) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "spec is NULL");
    int v = ctrgcn_variant_from_name(variant);
    if (v < 0)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT,
                           "unknown variant '%s' (known: CTRGCN, CTRGCN_light, CTRGCN_lightV1, CTRGCN_lightV2)",
                           variant ? variant : "(null)");
    memset(spec, 0, sizeof *spec);
    spec_fill_preset(spec, v);
    spec->num_classes = num_classes;
    spec->num_person = num_person;
    spec->in_channels = in_channels;
    if (graph && strcmp(graph, "ntu") == 0)
        set_edges_1based(spec, 25, ntu_edges, (int)(sizeof ntu_edges / sizeof ntu_edges[0]));
    else if (graph && strcmp(graph, "ucla") == 0)
        set_edges_1based(spec, 20, ucla_edges, (int)(sizeof ucla_edges / sizeof ucla_edges[0]));
    else
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "unknown graph '%s' (known: ntu, ucla, or an edge list)",
                           graph ? graph : "(null)");
    return ctrgcn_spec_validate(spec);
}

ctrgcn_status ctrgcn_spec_set_edges(ctrgcn_spec *spec, int num_joints, int num_edges,
                                    const int (*edges)[2]) {
    if (!spec || (!edges && num_edges > 0)) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL argument");
    if (num_joints < 1 || num_joints > CTRGCN_MAX_JOINTS)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "graph: %d joints (allowed 1..%d)", num_joints,
                           CTRGCN_MAX_JOINTS);
    if (num_edges < 0 || num_edges > CTRGCN_MAX_EDGES)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "graph: %d edges (allowed 0..%d)", num_edges,
                           CTRGCN_MAX_EDGES);
    for (int i = 0; i < num_edges; i++)
        if (edges[i][0] < 0 || edges[i][0] >= num_joints || edges[i][1] < 0 || edges[i][1] >= num_joints)
            return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "graph: edge %d (%d, %d) names a joint outside 0..%d",
                               i, edges[i][0], edges[i][1], num_joints - 1);
    spec->num_joints = num_joints;
    spec->num_edges = num_edges;
    for (int i = 0; i < num_edges; i++) {
        spec->edges[i][0] = edges[i][0];
        spec->edges[i][1] = edges[i][1];
    }
    return CTRGCN_OK;
}

/* The official rule (raw coordinates, 3 or 9 channels, get rel_small), extended to inputs narrower
 * than the reduction (2-D keypoints: 2 channels), which the official rule would give width 0. */
static int relation_width(const ctrgcn_spec *s, int cin) {
    return (cin == 3 || cin == 9 || cin < s->rel_reduction) ? s->rel_small : cin / s->rel_reduction;
}

ctrgcn_status ctrgcn_spec_validate(const ctrgcn_spec *s) {
    if (!s) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "spec is NULL");
    if (s->variant < 0 || s->variant > CTRGCN_VARIANT_CUSTOM)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "unknown variant id %d", s->variant);
    if (s->num_classes < 1 || s->num_classes > 100000)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "num_classes must be in 1..100000, got %d", s->num_classes);
    if (s->num_person < 1 || s->num_person > 16)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "num_person must be in 1..16, got %d", s->num_person);
    if (s->in_channels < 1 || s->in_channels > 1024)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "in_channels must be in 1..1024, got %d", s->in_channels);
    if (s->conv != CTRGCN_CONV_SEPARATE && s->conv != CTRGCN_CONV_FUSED)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "conv must be separate (0) or fused (1), got %d", s->conv);
    if (s->relation != CTRGCN_RELATION_PER_SUBSET && s->relation != CTRGCN_RELATION_SHARED)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "relation must be per-subset (0) or shared (1), got %d", s->relation);
    if (s->rel_reduction < 1 || s->rel_reduction > 1024 || s->rel_small < 1 || s->rel_small > 1024)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "relation width rule: reduction and small width must be in 1..1024");
    int cin = s->in_channels;
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) {
        const ctrgcn_block_spec *b = &s->blocks[k];
        if (b->out_channels < 4 || b->out_channels > 16384)
            return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "block %d: out_channels must be in 4..16384, got %d", k + 1,
                               b->out_channels);
        /* the separate temporal module splits its width in four equal branches */
        if (s->conv == CTRGCN_CONV_SEPARATE && b->out_channels % 4 != 0)
            return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "block %d: separate convolutions need out_channels divisible by 4, "
                               "got %d", k + 1, b->out_channels);
        if (b->stride != 1 && b->stride != 2)
            return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "block %d: stride must be 1 or 2, got %d", k + 1, b->stride);
        if (b->spatial != 0 && b->spatial != 1)
            return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "block %d: spatial must be 0 or 1", k + 1);
        if (b->gcn_width != CTRGCN_GCN_WIDTH_OUTPUT && b->gcn_width != CTRGCN_GCN_WIDTH_INPUT)
            return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "block %d: gcn_width must be 0 (output) or 1 (input)", k + 1);
        if (b->kernel_size < 1 || b->kernel_size > 15 || b->kernel_size % 2 == 0)
            return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "block %d: kernel_size must be odd in 1..15, got %d", k + 1,
                               b->kernel_size);
        for (int j = 0; j < 2; j++)
            if (b->dilations[j] < 1 || b->dilations[j] > 16)
                return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "block %d: dilations must be in 1..16, got %d", k + 1,
                                   b->dilations[j]);
        if (b->spatial && relation_width(s, cin) < 1)
            return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "block %d: input width %d gives relation width 0 (reduction %d)",
                               k + 1, cin, s->rel_reduction);
        cin = b->out_channels;
    }
    /* a spec that names a preset must be it: widths live in the blocks, so editing base_channel
     * alone (as older code did) would silently keep the preset's widths (ctrgcn_spec_set_base) */
    if (s->variant != CTRGCN_VARIANT_CUSTOM && ctrgcn_spec_match_preset(s) != s->variant)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT,
                           "the spec names %s but its widths or layout differ (change the width with "
                           "ctrgcn_spec_set_base, or mark the spec CTRGCN_VARIANT_CUSTOM)",
                           ctrgcn_variant_name(s->variant));
    if (s->num_joints < 1 || s->num_joints > CTRGCN_MAX_JOINTS)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "num_joints must be in 1..%d, got %d", CTRGCN_MAX_JOINTS,
                           s->num_joints);
    if (s->num_edges < 0 || s->num_edges > CTRGCN_MAX_EDGES)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "bad edge count %d", s->num_edges);
    for (int i = 0; i < s->num_edges; i++)
        if (s->edges[i][0] < 0 || s->edges[i][0] >= s->num_joints || s->edges[i][1] < 0 ||
            s->edges[i][1] >= s->num_joints)
            return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "edge %d names a joint outside 0..%d", i, s->num_joints - 1);
    return CTRGCN_OK;
}

/* A = [I, norm(mat(inward)), norm(mat(outward))], mat(L)[j][i] = 1 for (i, j) in L,
 * norm(B) = B diag(1/colsum(B)). */
void graph_adjacency(const ctrgcn_spec *spec, float *A) {
    const int V = spec->num_joints;
    memset(A, 0, sizeof(float) * 3 * V * V);
    for (int v = 0; v < V; v++) A[v * V + v] = 1.0f;
    float *In = A + V * V, *Out = A + 2 * V * V;
    for (int e = 0; e < spec->num_edges; e++) {
        const int i = spec->edges[e][0], j = spec->edges[e][1];
        In[j * V + i] = 1.0f;
        Out[i * V + j] = 1.0f;
    }
    for (int s = 1; s < 3; s++) {
        float *B = A + s * V * V;
        for (int col = 0; col < V; col++) {
            float sum = 0.0f;
            for (int row = 0; row < V; row++) sum += B[row * V + col];
            if (sum > 0.0f)
                for (int row = 0; row < V; row++) B[row * V + col] /= sum;
        }
    }
}

void block_layout_from_spec(const ctrgcn_spec *spec, block_layout *blocks) {
    const int fused = spec->conv == CTRGCN_CONV_FUSED;
    int cin = spec->in_channels;
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) {
        const ctrgcn_block_spec *b = &spec->blocks[k];
        block_layout *L = &blocks[k];
        memset(L, 0, sizeof *L);
        L->cin = cin;
        L->cout = b->out_channels;
        L->stride = b->stride;
        L->fused = fused;
        L->kt = b->kernel_size;
        L->dil[0] = b->dilations[0];
        L->dil[1] = b->dilations[1];
        L->has_gcn = b->spatial;
        if (L->has_gcn) {
            L->gcn_cin = L->cin;
            L->gcn_cout = b->gcn_width == CTRGCN_GCN_WIDTH_INPUT ? L->cin : L->cout;
            L->R = relation_width(spec, L->gcn_cin);
            L->nrel = spec->relation == CTRGCN_RELATION_SHARED ? 1 : 3;
            L->down = L->gcn_cin == L->gcn_cout ? 1 : 2;
            L->tcn_cin = L->gcn_cout;
        } else {
            L->tcn_cin = L->cin;
        }
        L->tcn_cout = L->cout;
        L->B = L->cout / 4;
        L->last = fused ? L->cout - 3 * L->B : L->B;
        /* the first block has no residual, as the official model builds it */
        L->residual = k == 0 ? 0 : (L->cin == L->cout && L->stride == 1) ? 1 : 2;
        L->residual_in_tcn = !L->has_gcn;
        cin = L->cout;
    }
}

/* Model specs: the four presets, the skeleton graphs and the block layout a spec implies. */
#include <string.h>

#include "core/error.h"
#include "core/model.h"

static const char *const variant_names[CTRGCN_NUM_VARIANTS] = {
    "CTRGCN", "CTRGCN_light", "CTRGCN_lightV1", "CTRGCN_lightV2"};
static const int variant_base[CTRGCN_NUM_VARIANTS] = {64, 60, 72, 62};

/* Inward edges, 1-based, as the official graph files list them. */
static const int ntu_edges[][2] = {
    {1, 2},   {2, 21},  {3, 21},  {4, 3},   {5, 21},  {6, 5},   {7, 6},   {8, 7},
    {9, 21},  {10, 9},  {11, 10}, {12, 11}, {13, 1},  {14, 13}, {15, 14}, {16, 15},
    {17, 1},  {18, 17}, {19, 18}, {20, 19}, {22, 23}, {23, 8},  {24, 25}, {25, 12}};
static const int ucla_edges[][2] = {
    {1, 2},   {2, 3},   {4, 3},   {5, 3},   {6, 5},   {7, 6},   {8, 7},   {9, 3},   {10, 9}, {11, 10},
    {12, 11}, {13, 1},  {14, 13}, {15, 14}, {16, 15}, {17, 1},  {18, 17}, {19, 18}, {20, 19}};

const char *ctrgcn_variant_name(int variant) {
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
    spec->variant = v;
    spec->base_channel = variant_base[v];
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

ctrgcn_status ctrgcn_spec_validate(const ctrgcn_spec *s) {
    if (!s) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "spec is NULL");
    if (s->variant < 0 || s->variant >= CTRGCN_NUM_VARIANTS)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "unknown variant id %d", s->variant);
    if (s->num_classes < 1 || s->num_classes > 100000)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "num_classes must be in 1..100000, got %d", s->num_classes);
    if (s->num_person < 1 || s->num_person > 16)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "num_person must be in 1..16, got %d", s->num_person);
    /* The relation width of the first unit is 8 for 3 or 9 input channels, else C/8: it must not be 0. */
    if (s->in_channels < 1 || s->in_channels > 1024 ||
        (s->in_channels != 3 && s->in_channels != 9 && s->in_channels < 8))
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "in_channels must be 3, 9 or 8..1024, got %d", s->in_channels);
    if (s->base_channel < 8 || s->base_channel > 4096)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "base_channel must be in 8..4096, got %d", s->base_channel);
    /* The unfused temporal module splits its width in four equal branches. */
    const int fused = s->variant == CTRGCN_VARIANT_LIGHTV1 || s->variant == CTRGCN_VARIANT_LIGHTV2;
    if (!fused && s->base_channel % 4 != 0)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "%s needs a base_channel divisible by 4, got %d",
                           ctrgcn_variant_name(s->variant), s->base_channel);
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

static int relation_width(int cin) { return (cin == 3 || cin == 9) ? 8 : cin / 8; }

void block_layout_from_spec(const ctrgcn_spec *spec, block_layout *blocks) {
    const int b = spec->base_channel;
    const int variant = spec->variant;
    const int light_layout = variant == CTRGCN_VARIANT_LIGHT || variant == CTRGCN_VARIANT_LIGHTV1;
    const int fused = variant == CTRGCN_VARIANT_LIGHTV1 || variant == CTRGCN_VARIANT_LIGHTV2;
    const int widths[CTRGCN_NUM_BLOCKS][3] = {
        /* cin, cout, stride */
        {spec->in_channels, b, 1}, {b, b, 1}, {b, b, 1}, {b, b, 1}, {b, 2 * b, 2},
        {2 * b, 2 * b, 1}, {2 * b, 2 * b, 1}, {2 * b, 4 * b, 2}, {4 * b, 4 * b, 1}, {4 * b, 4 * b, 1}};
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) {
        block_layout *L = &blocks[k];
        memset(L, 0, sizeof *L);
        L->cin = widths[k][0];
        L->cout = widths[k][1];
        L->stride = widths[k][2];
        L->fused = fused;
        /* The light layout drops the spatial module of l2, l3, l5 and l8. */
        L->has_gcn = !(light_layout && (k == 1 || k == 2 || k == 4 || k == 7));
        if (L->has_gcn) {
            L->gcn_cin = L->cin;
            L->gcn_cout = (variant == CTRGCN_VARIANT_LIGHTV2 && L->stride > 1) ? L->cin : L->cout;
            L->R = relation_width(L->gcn_cin);
            L->nrel = variant == CTRGCN_VARIANT_LIGHTV2 ? 1 : 3;
            L->down = L->gcn_cin == L->gcn_cout ? 1 : 2;
            L->tcn_cin = L->gcn_cout;
        } else {
            L->tcn_cin = L->cin;
        }
        L->tcn_cout = L->cout;
        L->B = L->cout / 4;
        L->last = fused ? L->cout - 3 * L->B : L->B;
        if (k == 0)
            L->residual = 0;
        else
            L->residual = (L->cin == L->cout && L->stride == 1) ? 1 : 2;
        L->residual_in_tcn = !L->has_gcn;
    }
}

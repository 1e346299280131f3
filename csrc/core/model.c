/* Model lifetime and the named-tensor interface. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/model.h"

ctrgcn_status ctrgcn_model_init(ctrgcn_model **out, const ctrgcn_spec *spec, uint64_t seed) {
    if (!out) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL output pointer");
    *out = NULL;
    ctrgcn_status st = ctrgcn_spec_validate(spec);
    if (st != CTRGCN_OK) return st;
    ctrgcn_model *m = calloc(1, sizeof *m);
    if (!m) return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory");
    m->spec = *spec;
    if ((st = model_build_table(m)) != CTRGCN_OK) {
        ctrgcn_model_free(m);
        return st;
    }
    m->params = malloc(sizeof(float) * (m->params_size ? m->params_size : 1));
    if (!m->params) {
        ctrgcn_model_free(m);
        return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory for %zu parameters", m->params_size);
    }
    model_init_params(m, seed);
    *out = m;
    return CTRGCN_OK;
}

static void free_class_names(ctrgcn_model *m) {
    if (!m->class_names) return;
    for (int i = 0; i < m->spec.num_classes; i++) free(m->class_names[i]);
    free(m->class_names);
    m->class_names = NULL;
}

ctrgcn_status ctrgcn_model_set_class_names(ctrgcn_model *m, const char *const *names, int count) {
    if (!m) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL model");
    if (count == 0 || !names) {
        free_class_names(m);
        return CTRGCN_OK;
    }
    if (count < 0 || count != m->spec.num_classes)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "%d class names for a model of %d classes", count,
                           m->spec.num_classes);
    for (int i = 0; i < count; i++) {
        const size_t len = names[i] ? strlen(names[i]) : 0;
        if (len == 0 || len > CTRGCN_MAX_CLASS_NAME)
            return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "class name %d must be 1 to %d bytes long, got %zu", i,
                               CTRGCN_MAX_CLASS_NAME, len);
    }
    char **copy = calloc((size_t)count, sizeof *copy);
    if (!copy) return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory for class names");
    for (int i = 0; i < count; i++) {
        const size_t len = strlen(names[i]);
        copy[i] = malloc(len + 1);
        if (!copy[i]) {
            for (int j = 0; j < i; j++) free(copy[j]);
            free(copy);
            return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory for class names");
        }
        memcpy(copy[i], names[i], len + 1);
    }
    free_class_names(m);
    m->class_names = copy;
    return CTRGCN_OK;
}

const char *ctrgcn_model_class_name(const ctrgcn_model *m, int index) {
    if (!m || !m->class_names || index < 0 || index >= m->spec.num_classes) return NULL;
    return m->class_names[index];
}

void ctrgcn_model_free(ctrgcn_model *m) {
    if (!m) return;
    free_class_names(m);
    free(m->tensors);
    free(m->params);
    free(m);
}

const ctrgcn_spec *ctrgcn_model_spec(const ctrgcn_model *m) { return m ? &m->spec : NULL; }

int ctrgcn_model_num_tensors(const ctrgcn_model *m) { return m ? m->num_tensors : 0; }

size_t ctrgcn_model_num_parameters(const ctrgcn_model *m) {
    size_t n = 0;
    for (int i = 0; m && i < m->num_tensors; i++)
        if (!m->tensors[i].is_buffer) n += m->tensors[i].numel;
    return n;
}

ctrgcn_status ctrgcn_model_tensor_info(const ctrgcn_model *m, int index, ctrgcn_tensor_info *info) {
    if (!m || !info) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL argument");
    if (index < 0 || index >= m->num_tensors)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "tensor index %d out of range 0..%d", index, m->num_tensors - 1);
    const tensor_entry *e = &m->tensors[index];
    info->name = e->name;
    info->ndim = e->ndim;
    for (int i = 0; i < 4; i++) info->shape[i] = i < e->ndim ? e->shape[i] : 1;
    info->numel = e->numel;
    info->is_buffer = e->is_buffer;
    return CTRGCN_OK;
}

int ctrgcn_model_find_tensor(const ctrgcn_model *m, const char *name) {
    if (!m || !name) return -1;
    for (int i = 0; i < m->num_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return i;
    return -1;
}

ctrgcn_status ctrgcn_model_get_tensor(const ctrgcn_model *m, int index, float *dst) {
    if (!m || !dst) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL argument");
    if (index < 0 || index >= m->num_tensors)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "tensor index %d out of range", index);
    memcpy(dst, m->params + m->tensors[index].offset, sizeof(float) * m->tensors[index].numel);
    return CTRGCN_OK;
}

ctrgcn_status ctrgcn_model_set_tensor(ctrgcn_model *m, int index, const float *src) {
    if (!m || !src) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL argument");
    if (index < 0 || index >= m->num_tensors)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "tensor index %d out of range", index);
    const tensor_entry *e = &m->tensors[index];
    /* BatchNorm variances must stay positive or the folded scale is meaningless. */
    const int is_var = strstr(e->name, "running_var") != NULL;
    for (size_t i = 0; i < e->numel; i++) {
        const float v = src[i];
        if (!(v == v) || v - v != 0.0f)
            return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "tensor '%s' has a non-finite value at index %zu", e->name, i);
        if (is_var && v < 0.0f)
            return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "tensor '%s' has a negative variance at index %zu", e->name, i);
    }
    memcpy(m->params + e->offset, src, sizeof(float) * e->numel);
    m->version++;
    return CTRGCN_OK;
}

uint64_t ctrgcn_model_version(const ctrgcn_model *m) { return m ? m->version : 0; }

ctrgcn_status ctrgcn_model_block_info(const ctrgcn_model *m, int block, ctrgcn_block_info *info) {
    if (!m || !info || block < 1 || block > CTRGCN_NUM_BLOCKS)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "block must be in 1..%d", CTRGCN_NUM_BLOCKS);
    const block_layout *L = &m->blocks[block - 1];
    info->cin = L->cin;
    info->cout = L->cout;
    info->stride = L->stride;
    info->has_gcn = L->has_gcn;
    info->gcn_cin = L->gcn_cin;
    info->gcn_cout = L->gcn_cout;
    info->R = L->R;
    info->nrel = L->nrel;
    info->fused = L->fused;
    info->kernel_size = L->kt;
    info->dilations[0] = L->dil[0];
    info->dilations[1] = L->dil[1];
    info->down = L->down;
    info->tcn_cin = L->tcn_cin;
    info->B = L->B;
    info->last = L->last;
    info->residual = L->residual;
    info->residual_in_tcn = L->residual_in_tcn;
    return CTRGCN_OK;
}

size_t ctrgcn_model_params_size(const ctrgcn_model *m) { return m ? m->params_size : 0; }

size_t ctrgcn_model_tensor_offset(const ctrgcn_model *m, int index) {
    return (m && index >= 0 && index < m->num_tensors) ? m->tensors[index].offset : 0;
}

ctrgcn_status ctrgcn_model_get_params(const ctrgcn_model *m, float *dst) {
    if (!m || !dst) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL argument");
    memcpy(dst, m->params, sizeof(float) * m->params_size);
    return CTRGCN_OK;
}

ctrgcn_status ctrgcn_model_set_params(ctrgcn_model *m, const float *src) {
    if (!m || !src) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL argument");
    for (size_t i = 0; i < m->params_size; i++)
        if (!(src[i] - src[i] == 0.0f)) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "parameters have a non-finite value");
    for (int t = 0; t < m->num_tensors; t++)
        if (strstr(m->tensors[t].name, "running_var"))
            for (size_t j = 0; j < m->tensors[t].numel; j++)
                if (src[m->tensors[t].offset + j] < 0.0f)
                    return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "'%s' has a negative variance", m->tensors[t].name);
    memcpy(m->params, src, sizeof(float) * m->params_size);
    m->version++;
    return CTRGCN_OK;
}

ctrgcn_status ctrgcn_model_block_shape(const ctrgcn_model *m, int block, int T, int *channels, int *frames) {
    if (!m || !channels || !frames || block < 1 || block > CTRGCN_NUM_BLOCKS || T < 1)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "bad block %d or T %d", block, T);
    int t = T;
    for (int k = 0; k < block; k++) t = (t - 1) / m->blocks[k].stride + 1;
    *channels = m->blocks[block - 1].cout;
    *frames = t;
    return CTRGCN_OK;
}

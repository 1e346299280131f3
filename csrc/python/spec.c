/* The model spec as a Python dict, both ways: every field, blocks as a list of ten dicts, edges as
 * a list of pairs. The presets come from C (ctrgcn_spec_preset), so Python keeps no copy. */
#include "python/binding.h"

static const char *const block_keys[] = {"out_channels", "stride", "spatial", "gcn_width", "kernel_size"};

PyObject *ctrgcn_spec_to_dict(const ctrgcn_spec *s) {
    PyObject *blocks = PyList_New(CTRGCN_NUM_BLOCKS), *edges = PyList_New(s->num_edges);
    if (!blocks || !edges) goto fail;
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) {
        const ctrgcn_block_spec *b = &s->blocks[k];
        PyObject *d = Py_BuildValue("{s:i,s:i,s:O,s:i,s:i,s:[ii]}", "out_channels", b->out_channels, "stride",
                                    b->stride, "spatial", b->spatial ? Py_True : Py_False, "gcn_width", b->gcn_width,
                                    "kernel_size", b->kernel_size, "dilations", b->dilations[0], b->dilations[1]);
        if (!d) goto fail;
        PyList_SET_ITEM(blocks, k, d);
    }
    for (int i = 0; i < s->num_edges; i++) {
        PyObject *e = Py_BuildValue("(ii)", s->edges[i][0], s->edges[i][1]);
        if (!e) goto fail;
        PyList_SET_ITEM(edges, i, e);
    }
    return Py_BuildValue("{s:s,s:i,s:i,s:i,s:i,s:i,s:s,s:s,s:i,s:i,s:N,s:N}", "variant", ctrgcn_variant_name(s->variant),
                         "num_classes", s->num_classes, "num_joints", s->num_joints, "num_person", s->num_person,
                         "in_channels", s->in_channels, "base_channel", s->base_channel, "conv",
                         s->conv == CTRGCN_CONV_FUSED ? "fused" : "separate", "relation",
                         s->relation == CTRGCN_RELATION_SHARED ? "shared" : "per_subset", "rel_reduction",
                         s->rel_reduction, "rel_small", s->rel_small, "blocks", blocks, "edges", edges);
fail:
    Py_XDECREF(blocks);
    Py_XDECREF(edges);
    return NULL;
}

static int get_int(PyObject *d, const char *key, int *out, const char *where) {
    PyObject *v = PyDict_GetItemString(d, key); /* borrowed */
    if (!v) {
        ctrgcn_py_input_error("spec%s: missing '%s'", where, key);
        return -1;
    }
    const long x = PyLong_AsLong(v);
    if ((x == -1 && PyErr_Occurred()) || x < -1000000 || x > 1000000) {
        PyErr_Clear();
        ctrgcn_py_input_error("spec%s: '%s' must be an integer", where, key);
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int get_choice(PyObject *d, const char *key, const char *a, const char *b, int *out) {
    PyObject *v = PyDict_GetItemString(d, key);
    const char *str = v && PyUnicode_Check(v) ? PyUnicode_AsUTF8(v) : NULL;
    if (str && strcmp(str, a) == 0) *out = 0;
    else if (str && strcmp(str, b) == 0) *out = 1;
    else {
        PyErr_Clear();
        ctrgcn_py_input_error("spec: '%s' must be '%s' or '%s'", key, a, b);
        return -1;
    }
    return 0;
}

int ctrgcn_spec_from_dict(PyObject *d, ctrgcn_spec *s) {
    memset(s, 0, sizeof *s);
    const char *keys[] = {"num_classes", "num_joints", "num_person", "in_channels", "base_channel", "rel_reduction",
                          "rel_small"};
    int *fields[] = {&s->num_classes, &s->num_joints, &s->num_person, &s->in_channels, &s->base_channel,
                     &s->rel_reduction, &s->rel_small};
    for (int i = 0; i < 7; i++)
        if (get_int(d, keys[i], fields[i], "") < 0) return -1;
    if (get_choice(d, "conv", "separate", "fused", &s->conv) < 0 ||
        get_choice(d, "relation", "per_subset", "shared", &s->relation) < 0)
        return -1;
    PyObject *blocks = PyDict_GetItemString(d, "blocks");
    if (!blocks || !PyList_Check(blocks) || PyList_GET_SIZE(blocks) != CTRGCN_NUM_BLOCKS) {
        ctrgcn_py_input_error("spec: 'blocks' must be a list of %d dicts", CTRGCN_NUM_BLOCKS);
        return -1;
    }
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) {
        PyObject *b = PyList_GET_ITEM(blocks, k);
        char where[32];
        PyOS_snprintf(where, sizeof where, " block %d", k + 1);
        if (!PyDict_Check(b)) {
            ctrgcn_py_input_error("spec%s: expected a dict", where);
            return -1;
        }
        ctrgcn_block_spec *bs = &s->blocks[k];
        int *bf[] = {&bs->out_channels, &bs->stride, &bs->spatial, &bs->gcn_width, &bs->kernel_size};
        for (int i = 0; i < 5; i++)
            if (get_int(b, block_keys[i], bf[i], where) < 0) return -1;
        PyObject *dil = PyDict_GetItemString(b, "dilations");
        PyObject *seq = dil ? PySequence_Fast(dil, "") : NULL;
        if (!seq || PySequence_Fast_GET_SIZE(seq) != 2) {
            Py_XDECREF(seq);
            PyErr_Clear();
            ctrgcn_py_input_error("spec%s: 'dilations' must be two integers", where);
            return -1;
        }
        for (int j = 0; j < 2; j++) {
            const long x = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, j));
            bs->dilations[j] = (x < -1000 || x > 1000) ? -1 : (int)x;
        }
        Py_DECREF(seq);
        if (PyErr_Occurred()) {
            PyErr_Clear();
            ctrgcn_py_input_error("spec%s: 'dilations' must be two integers", where);
            return -1;
        }
    }
    PyObject *edges = PyDict_GetItemString(d, "edges");
    PyArrayObject *e = edges ? (PyArrayObject *)PyArray_FROMANY(edges, NPY_INT32, 1, 2, NPY_ARRAY_CARRAY | NPY_ARRAY_FORCECAST)
                             : NULL;
    if (!e) {
        PyErr_Clear();
        ctrgcn_py_input_error("spec: 'edges' must be a list of (i, j) joint pairs");
        return -1;
    }
    const npy_intp E = PyArray_SIZE(e) / 2;
    if ((PyArray_SIZE(e) && (PyArray_NDIM(e) != 2 || PyArray_DIM(e, 1) != 2)) || E > CTRGCN_MAX_EDGES) {
        Py_DECREF(e);
        ctrgcn_py_input_error("spec: 'edges' must have shape (E, 2) with E <= %d", CTRGCN_MAX_EDGES);
        return -1;
    }
    ctrgcn_status st = ctrgcn_spec_set_edges(s, s->num_joints, (int)E, (const int(*)[2])PyArray_DATA(e));
    Py_DECREF(e);
    if (st != CTRGCN_OK) {
        ctrgcn_py_raise(st);
        return -1;
    }
    return 0;
}

PyObject *ctrgcn_preset_spec(PyObject *self, PyObject *args) {
    const char *variant, *graph;
    int classes, persons, channels;
    if (PyTuple_GET_SIZE(args) == 0) {
        PyObject *names = PyList_New(CTRGCN_NUM_VARIANTS);
        for (int v = 0; names && v < CTRGCN_NUM_VARIANTS; v++)
            PyList_SET_ITEM(names, v, PyUnicode_FromString(ctrgcn_variant_name(v)));
        return names;
    }
    if (!PyArg_ParseTuple(args, "ssiii", &variant, &graph, &classes, &persons, &channels)) return NULL;
    ctrgcn_spec spec;
    ctrgcn_status st = ctrgcn_spec_preset(&spec, variant, graph, classes, persons, channels);
    if (st != CTRGCN_OK) return ctrgcn_py_raise(st);
    return ctrgcn_spec_to_dict(&spec);
}

/* ctrgcn._core.Net: one C model handle, freed in dealloc. The ctrgcn.Model class wraps it. */
#include "python/binding.h"

typedef struct {
    PyObject_HEAD
    ctrgcn_model *model;
} NetObject;

static PyObject *wrap_model(ctrgcn_model *model) {
    NetObject *self = PyObject_New(NetObject, &ctrgcn_NetType);
    if (!self) {
        ctrgcn_model_free(model);
        return NULL;
    }
    self->model = model;
    return (PyObject *)self;
}

/* Net(variant, graph, num_classes, num_person, in_channels, seed, base_channel=0, num_joints=0, edges=None) */
static PyObject *net_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    static char *names[] = {"variant", "graph", "num_classes", "num_person", "in_channels", "seed",
                            "base_channel", "num_joints", "edges", NULL};
    const char *variant, *graph;
    int num_classes, num_person, in_channels, base = 0, V = 0;
    unsigned long long seed;
    PyObject *edges = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "ssiiiK|iiO", names, &variant, &graph, &num_classes, &num_person,
                                     &in_channels, &seed, &base, &V, &edges))
        return NULL;
    ctrgcn_spec spec;
    const int custom = edges != Py_None;
    ctrgcn_status st = ctrgcn_spec_preset(&spec, variant, custom ? "ntu" : graph, num_classes, num_person,
                                          in_channels);
    if (st != CTRGCN_OK) return ctrgcn_py_raise(st);
    if (custom) {
        PyArrayObject *e = (PyArrayObject *)PyArray_FROMANY(edges, NPY_INT32, 2, 2, NPY_ARRAY_CARRAY | NPY_ARRAY_FORCECAST);
        if (!e) {
            PyErr_Clear();
            return ctrgcn_py_input_error("edges: expected a list of (i, j) joint pairs");
        }
        if (PyArray_DIM(e, 1) != 2 || PyArray_DIM(e, 0) > CTRGCN_MAX_EDGES) {
            Py_DECREF(e);
            return ctrgcn_py_input_error("edges: expected shape (E, 2) with E <= %d", CTRGCN_MAX_EDGES);
        }
        st = ctrgcn_spec_set_edges(&spec, V, (int)PyArray_DIM(e, 0), (const int(*)[2])PyArray_DATA(e));
        Py_DECREF(e);
        if (st != CTRGCN_OK) return ctrgcn_py_raise(st);
    }
    if (base > 0) spec.base_channel = base;
    ctrgcn_model *model;
    Py_BEGIN_ALLOW_THREADS st = ctrgcn_model_init(&model, &spec, seed);
    Py_END_ALLOW_THREADS if (st != CTRGCN_OK) return ctrgcn_py_raise(st);
    (void)type;
    return wrap_model(model);
}

static void net_dealloc(NetObject *self) {
    ctrgcn_model_free(self->model);
    PyObject_Free(self);
}

PyObject *ctrgcn_net_load(PyObject *self, PyObject *args) {
    PyObject *path_obj;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &path_obj)) return NULL;
    ctrgcn_model *model;
    ctrgcn_status st;
    const char *path = PyBytes_AS_STRING(path_obj);
    Py_BEGIN_ALLOW_THREADS st = ctrgcn_model_load(&model, path);
    Py_END_ALLOW_THREADS Py_DECREF(path_obj);
    if (st != CTRGCN_OK) return ctrgcn_py_raise(st);
    return wrap_model(model);
}

/* save(path, dtype=0): 0 float32, 1 float16, 2 int8 (see ctrgcn_model_save_as) */
static PyObject *net_save(NetObject *self, PyObject *args) {
    PyObject *path_obj;
    int dtype = CTRGCN_DTYPE_FLOAT32;
    if (!PyArg_ParseTuple(args, "O&|i", PyUnicode_FSConverter, &path_obj, &dtype)) return NULL;
    ctrgcn_status st;
    const char *path = PyBytes_AS_STRING(path_obj);
    Py_BEGIN_ALLOW_THREADS st = ctrgcn_model_save_as(self->model, path, dtype);
    Py_END_ALLOW_THREADS Py_DECREF(path_obj);
    if (st != CTRGCN_OK) return ctrgcn_py_raise(st);
    Py_RETURN_NONE;
}

static PyObject *net_spec(NetObject *self, PyObject *unused) {
    const ctrgcn_spec *s = ctrgcn_model_spec(self->model);
    PyObject *edges = PyList_New(s->num_edges);
    if (!edges) return NULL;
    for (int i = 0; i < s->num_edges; i++) PyList_SET_ITEM(edges, i, Py_BuildValue("(ii)", s->edges[i][0], s->edges[i][1]));
    return Py_BuildValue("{s:s,s:i,s:i,s:i,s:i,s:i,s:N}", "variant", ctrgcn_variant_name(s->variant), "num_classes",
                         s->num_classes, "num_joints", s->num_joints, "num_person", s->num_person, "in_channels",
                         s->in_channels, "base_channel", s->base_channel, "edges", edges);
}

/* [(name, shape, is_buffer), ...] in table order */
static PyObject *net_tensors(NetObject *self, PyObject *unused) {
    const int n = ctrgcn_model_num_tensors(self->model);
    PyObject *list = PyList_New(n);
    if (!list) return NULL;
    for (int i = 0; i < n; i++) {
        ctrgcn_tensor_info info;
        ctrgcn_model_tensor_info(self->model, i, &info);
        PyObject *shape = PyTuple_New(info.ndim);
        if (!shape) {
            Py_DECREF(list);
            return NULL;
        }
        for (int d = 0; d < info.ndim; d++) PyTuple_SET_ITEM(shape, d, PyLong_FromLong(info.shape[d]));
        PyList_SET_ITEM(list, i, Py_BuildValue("(sNO)", info.name, shape, info.is_buffer ? Py_True : Py_False));
    }
    return list;
}

static int lookup(NetObject *self, PyObject *name_obj, ctrgcn_tensor_info *info) {
    const char *name = PyUnicode_AsUTF8(name_obj);
    if (!name) return -1;
    const int index = ctrgcn_model_find_tensor(self->model, name);
    if (index < 0) {
        PyErr_Format(ctrgcn_InputError, "no tensor named '%s' in this %s model", name,
                     ctrgcn_variant_name(ctrgcn_model_spec(self->model)->variant));
        return -1;
    }
    ctrgcn_model_tensor_info(self->model, index, info);
    return index;
}

static PyObject *net_get(NetObject *self, PyObject *name_obj) {
    ctrgcn_tensor_info info;
    const int index = lookup(self, name_obj, &info);
    if (index < 0) return NULL;
    npy_intp dims[4];
    for (int d = 0; d < info.ndim; d++) dims[d] = info.shape[d];
    PyObject *arr = PyArray_SimpleNew(info.ndim, dims, NPY_FLOAT32);
    if (!arr) return NULL;
    ctrgcn_model_get_tensor(self->model, index, (float *)PyArray_DATA((PyArrayObject *)arr));
    return arr;
}

static PyObject *net_set(NetObject *self, PyObject *args) {
    PyObject *name_obj, *value;
    if (!PyArg_ParseTuple(args, "UO", &name_obj, &value)) return NULL;
    ctrgcn_tensor_info info;
    const int index = lookup(self, name_obj, &info);
    if (index < 0) return NULL;
    PyArrayObject *arr = ctrgcn_py_float_array(value, info.ndim, PyUnicode_AsUTF8(name_obj));
    if (!arr) return NULL;
    for (int d = 0; d < info.ndim; d++)
        if (PyArray_DIM(arr, d) != info.shape[d]) {
            char want[64] = "", got[64] = "";
            for (int e = 0; e < info.ndim; e++) {
                PyOS_snprintf(want + strlen(want), sizeof want - strlen(want), e ? ", %d" : "%d", info.shape[e]);
                PyOS_snprintf(got + strlen(got), sizeof got - strlen(got), e ? ", %ld" : "%ld", (long)PyArray_DIM(arr, e));
            }
            Py_DECREF(arr);
            return ctrgcn_py_input_error("tensor '%s': expected shape (%s), got (%s)", info.name, want, got);
        }
    ctrgcn_status st = ctrgcn_model_set_tensor(self->model, index, (const float *)PyArray_DATA(arr));
    Py_DECREF(arr);
    if (st != CTRGCN_OK) return ctrgcn_py_raise(st);
    Py_RETURN_NONE;
}

/* x: float32 [N, C, T, V, M] with the model's C, V, M. */
static PyArrayObject *checked_input(NetObject *self, PyObject *x_obj) {
    const ctrgcn_spec *s = ctrgcn_model_spec(self->model);
    PyArrayObject *x = ctrgcn_py_float_array(x_obj, 5, "x (N, C, T, V, M)");
    if (!x) return NULL;
    const npy_intp *d = PyArray_DIMS(x);
    if (d[0] < 1 || d[1] != s->in_channels || d[2] < 1 || d[3] != s->num_joints || d[4] != s->num_person ||
        d[0] > INT32_MAX || d[2] > INT32_MAX) {
        ctrgcn_py_input_error("x: expected shape (N>=1, C=%d, T>=1, V=%d, M=%d), got (%ld, %ld, %ld, %ld, %ld)",
                              s->in_channels, s->num_joints, s->num_person, (long)d[0], (long)d[1], (long)d[2],
                              (long)d[3], (long)d[4]);
        Py_DECREF(x);
        return NULL;
    }
    return x;
}

static PyObject *net_forward(NetObject *self, PyObject *args) {
    PyObject *x_obj;
    int block = 0;
    if (!PyArg_ParseTuple(args, "O|i", &x_obj, &block)) return NULL;
    PyArrayObject *x = checked_input(self, x_obj);
    if (!x) return NULL;
    const int N = (int)PyArray_DIM(x, 0), T = (int)PyArray_DIM(x, 2);
    const ctrgcn_spec *s = ctrgcn_model_spec(self->model);
    npy_intp ldims[2] = {N, s->num_classes};
    PyArrayObject *logits = (PyArrayObject *)PyArray_SimpleNew(2, ldims, NPY_FLOAT32);
    PyArrayObject *act = NULL;
    if (!logits) goto fail;
    ctrgcn_status st;
    if (block) {
        int ch, fr;
        if ((st = ctrgcn_model_block_shape(self->model, block, T, &ch, &fr)) != CTRGCN_OK) {
            ctrgcn_py_raise(st);
            goto fail;
        }
        npy_intp adims[4] = {(npy_intp)N * s->num_person, ch, fr, s->num_joints};
        act = (PyArrayObject *)PyArray_SimpleNew(4, adims, NPY_FLOAT32);
        if (!act) goto fail;
        float *ap = PyArray_DATA(act);
        const size_t an = PyArray_SIZE(act);
        Py_BEGIN_ALLOW_THREADS st = ctrgcn_model_forward_probe(self->model, PyArray_DATA(x), N, T, PyArray_DATA(logits),
                                                               block, ap, an);
        Py_END_ALLOW_THREADS
    } else {
        Py_BEGIN_ALLOW_THREADS st = ctrgcn_model_forward(self->model, PyArray_DATA(x), N, T, PyArray_DATA(logits));
        Py_END_ALLOW_THREADS
    }
    if (st != CTRGCN_OK) {
        ctrgcn_py_raise(st);
        goto fail;
    }
    Py_DECREF(x);
    if (act) return Py_BuildValue("(NN)", logits, act);
    return (PyObject *)logits;
fail:
    Py_DECREF(x);
    Py_XDECREF(logits);
    Py_XDECREF(act);
    return NULL;
}

static PyObject *net_set_threads(NetObject *self, PyObject *arg) {
    const long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    ctrgcn_model_set_threads(self->model, (int)n);
    Py_RETURN_NONE;
}

static PyObject *net_num_parameters(NetObject *self, PyObject *unused) {
    return PyLong_FromSize_t(ctrgcn_model_num_parameters(self->model));
}

static PyObject *net_block_shape(NetObject *self, PyObject *args) {
    int block, T, ch, fr;
    if (!PyArg_ParseTuple(args, "ii", &block, &T)) return NULL;
    ctrgcn_status st = ctrgcn_model_block_shape(self->model, block, T, &ch, &fr);
    if (st != CTRGCN_OK) return ctrgcn_py_raise(st);
    return Py_BuildValue("(ii)", ch, fr);
}

/* ---- training ---- */
static PyObject *net_params(NetObject *self, PyObject *unused) {
    npy_intp n = (npy_intp)ctrgcn_model_params_size(self->model);
    PyObject *arr = PyArray_SimpleNew(1, &n, NPY_FLOAT32);
    if (arr) ctrgcn_model_get_params(self->model, PyArray_DATA((PyArrayObject *)arr));
    return arr;
}

static PyArrayObject *flat_params_arg(NetObject *self, PyObject *obj, const char *what) {
    PyArrayObject *a = ctrgcn_py_float_array(obj, 1, what);
    if (a && PyArray_DIM(a, 0) != (npy_intp)ctrgcn_model_params_size(self->model)) {
        ctrgcn_py_input_error("%s: expected %zu values, got %ld", what, ctrgcn_model_params_size(self->model),
                              (long)PyArray_DIM(a, 0));
        Py_CLEAR(a);
    }
    return a;
}

static PyObject *net_set_params(NetObject *self, PyObject *obj) {
    PyArrayObject *a = flat_params_arg(self, obj, "params");
    if (!a) return NULL;
    ctrgcn_status st = ctrgcn_model_set_params(self->model, PyArray_DATA(a));
    Py_DECREF(a);
    if (st != CTRGCN_OK) return ctrgcn_py_raise(st);
    Py_RETURN_NONE;
}

static PyObject *net_offsets(NetObject *self, PyObject *unused) {
    const int n = ctrgcn_model_num_tensors(self->model);
    PyObject *list = PyList_New(n);
    for (int i = 0; list && i < n; i++) PyList_SET_ITEM(list, i, PyLong_FromSize_t(ctrgcn_model_tensor_offset(self->model, i)));
    return list;
}

static PyObject *net_train_forward(NetObject *self, PyObject *args) {
    PyObject *x_obj;
    int update = 1;
    if (!PyArg_ParseTuple(args, "O|p", &x_obj, &update)) return NULL;
    PyArrayObject *x = checked_input(self, x_obj);
    if (!x) return NULL;
    const int N = (int)PyArray_DIM(x, 0), T = (int)PyArray_DIM(x, 2);
    npy_intp dims[2] = {N, ctrgcn_model_spec(self->model)->num_classes};
    PyObject *logits = PyArray_SimpleNew(2, dims, NPY_FLOAT32);
    if (!logits) {
        Py_DECREF(x);
        return NULL;
    }
    ctrgcn_status st;
    float *lp = PyArray_DATA((PyArrayObject *)logits);
    Py_BEGIN_ALLOW_THREADS st = ctrgcn_model_train_forward(self->model, PyArray_DATA(x), N, T, lp, update);
    Py_END_ALLOW_THREADS Py_DECREF(x);
    if (st != CTRGCN_OK) {
        Py_DECREF(logits);
        return ctrgcn_py_raise(st);
    }
    return logits;
}

static PyObject *net_train_backward(NetObject *self, PyObject *obj) {
    PyArrayObject *d = ctrgcn_py_float_array(obj, 2, "dlogits");
    if (!d) return NULL;
    npy_intp n = (npy_intp)ctrgcn_model_params_size(self->model);
    PyObject *grads = PyArray_SimpleNew(1, &n, NPY_FLOAT32);
    if (!grads) {
        Py_DECREF(d);
        return NULL;
    }
    if (PyArray_DIM(d, 1) != ctrgcn_model_spec(self->model)->num_classes) {
        Py_DECREF(d);
        Py_DECREF(grads);
        return ctrgcn_py_input_error("dlogits: expected %d columns", ctrgcn_model_spec(self->model)->num_classes);
    }
    ctrgcn_status st;
    float *gp = PyArray_DATA((PyArrayObject *)grads);
    const float *dp = PyArray_DATA(d);
    Py_BEGIN_ALLOW_THREADS st = ctrgcn_model_train_backward(self->model, dp, gp);
    Py_END_ALLOW_THREADS Py_DECREF(d);
    if (st != CTRGCN_OK) {
        Py_DECREF(grads);
        return ctrgcn_py_raise(st);
    }
    return grads;
}

/* sgd_step(grads, velocity, lr, momentum, weight_decay, nesterov, first_step): velocity in place */
static PyObject *net_sgd_step(NetObject *self, PyObject *args) {
    PyObject *g_obj;
    PyArrayObject *vel;
    float lr, mom, wd;
    int nesterov, first;
    if (!PyArg_ParseTuple(args, "OO!fffpp", &g_obj, &PyArray_Type, &vel, &lr, &mom, &wd, &nesterov, &first)) return NULL;
    if (PyArray_TYPE(vel) != NPY_FLOAT32 || !PyArray_IS_C_CONTIGUOUS(vel) || !PyArray_ISWRITEABLE(vel) ||
        PyArray_SIZE(vel) != (npy_intp)ctrgcn_model_params_size(self->model))
        return ctrgcn_py_input_error("velocity must be a writeable contiguous float32 array of params_size values");
    PyArrayObject *g = flat_params_arg(self, g_obj, "grads");
    if (!g) return NULL;
    ctrgcn_status st = ctrgcn_sgd_update_raw(self->model, PyArray_DATA(g), PyArray_DATA(vel), lr, mom, wd, nesterov, first);
    Py_DECREF(g);
    if (st != CTRGCN_OK) return ctrgcn_py_raise(st);
    Py_RETURN_NONE;
}

/* The block layout the spec implies: one dict per block (widths, strides, which paths exist). */
static PyObject *net_layout(NetObject *self, PyObject *unused) {
    const ctrgcn_spec *s = ctrgcn_model_spec(self->model);
    PyObject *list = PyList_New(CTRGCN_NUM_BLOCKS);
    if (!list) return NULL;
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) {
        ctrgcn_block_info b;
        ctrgcn_model_block_info(self->model, k + 1, &b);
        PyObject *d = Py_BuildValue(
            "{s:i,s:i,s:i,s:O,s:i,s:i,s:i,s:i,s:O,s:i,s:i,s:i,s:i,s:i,s:i,s:O}", "cin", b.cin, "cout", b.cout,
            "stride", b.stride, "has_gcn", b.has_gcn ? Py_True : Py_False, "gcn_cin", b.gcn_cin, "gcn_cout",
            b.gcn_cout, "R", b.R, "nrel", b.nrel, "fused", b.fused ? Py_True : Py_False, "down", b.down, "tcn_cin",
            b.tcn_cin, "B", b.B, "last", b.last, "residual", b.residual, "kernel", 5, "residual_in_tcn",
            b.residual_in_tcn ? Py_True : Py_False);
        if (!d) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, k, d);
    }
    (void)s;
    return list;
}

static PyMethodDef net_methods[] = {
    {"params", (PyCFunction)net_params, METH_NOARGS, "params() -> flat float32 copy of every tensor"},
    {"set_params", (PyCFunction)net_set_params, METH_O, "set_params(flat array)"},
    {"offsets", (PyCFunction)net_offsets, METH_NOARGS, "offset of each tensor in the flat array"},
    {"train_forward", (PyCFunction)net_train_forward, METH_VARARGS,
     "train_forward(x, update_stats=True) -> logits, in train mode, keeping what backward needs"},
    {"train_backward", (PyCFunction)net_train_backward, METH_O, "train_backward(dlogits) -> flat gradients"},
    {"sgd_step", (PyCFunction)net_sgd_step, METH_VARARGS,
     "sgd_step(grads, velocity, lr, momentum, weight_decay, nesterov, first_step)"},
    {"layout", (PyCFunction)net_layout, METH_NOARGS,
     "layout() -> [dict per block]: widths, stride, spatial module, relation width R, relations computed "
     "(nrel), fused, down (1 identity, 2 conv), branch width B, branch-3 width, residual (0 none, 1 identity, "
     "2 conv)"},
    {"spec", (PyCFunction)net_spec, METH_NOARGS, "spec() -> dict"},
    {"tensors", (PyCFunction)net_tensors, METH_NOARGS, "tensors() -> [(name, shape, is_buffer)]"},
    {"get", (PyCFunction)net_get, METH_O, "get(name) -> float32 array (a copy)"},
    {"set", (PyCFunction)net_set, METH_VARARGS, "set(name, array): copy values in, shape checked"},
    {"forward", (PyCFunction)net_forward, METH_VARARGS,
     "forward(x[, block]) -> logits, or (logits, block output) when block is 1..10"},
    {"save", (PyCFunction)net_save, METH_VARARGS, "save(path): the project's file, written atomically"},
    {"set_threads", (PyCFunction)net_set_threads, METH_O, "set_threads(n): 0 = all cores"},
    {"num_parameters", (PyCFunction)net_num_parameters, METH_NOARGS, "learned values"},
    {"block_shape", (PyCFunction)net_block_shape, METH_VARARGS, "block_shape(block, T) -> (channels, frames)"},
    {NULL, NULL, 0, NULL}};

PyTypeObject ctrgcn_NetType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ctrgcn._core.Net",
    .tp_basicsize = sizeof(NetObject),
    .tp_dealloc = (destructor)net_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A C model handle.",
    .tp_methods = net_methods,
    .tp_new = net_new,
};

/* ctrgcn._core.Net: one C model handle, freed in dealloc. The ctrgcn.Model class wraps it. */
#include "python/binding.h"


static PyObject *wrap_model(ctrgcn_model *model) {
    NetObject *self = PyObject_New(NetObject, &ctrgcn_NetType);
    if (!self) {
        ctrgcn_model_free(model);
        return NULL;
    }
    self->model = model;
    return (PyObject *)self;
}

/* Net(spec_dict, seed): a model of any spec (ctrgcn.Model builds the dict from a preset). */
static PyObject *net_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    static char *names[] = {"spec", "seed", NULL};
    PyObject *dict;
    unsigned long long seed = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|K", names, &PyDict_Type, &dict, &seed)) return NULL;
    ctrgcn_spec spec;
    if (ctrgcn_spec_from_dict(dict, &spec) < 0) return NULL;
    spec.variant = ctrgcn_spec_match_preset(&spec); /* the dict's fields decide, not its name */
    ctrgcn_status st = ctrgcn_spec_validate(&spec);
    if (st != CTRGCN_OK) return ctrgcn_py_raise(st);
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

/* classes() -> list of str, or None when the model carries no names */
static PyObject *net_classes(NetObject *self, PyObject *unused) {
    if (!ctrgcn_model_class_name(self->model, 0)) Py_RETURN_NONE;
    const int n = ctrgcn_model_spec(self->model)->num_classes;
    PyObject *list = PyList_New(n);
    for (int i = 0; list && i < n; i++) {
        PyObject *name = PyUnicode_FromString(ctrgcn_model_class_name(self->model, i));
        if (!name) Py_CLEAR(list);
        else PyList_SET_ITEM(list, i, name);
    }
    return list;
}

/* set_classes(list of str or None) */
static PyObject *net_set_classes(NetObject *self, PyObject *obj) {
    if (obj == Py_None) {
        ctrgcn_model_set_class_names(self->model, NULL, 0);
        Py_RETURN_NONE;
    }
    PyObject *seq = PySequence_Fast(obj, "classes: expected a list of str or None");
    if (!seq) return NULL;
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    const char **names = PyMem_Calloc(n ? (size_t)n : 1, sizeof *names);
    PyObject *result = NULL;
    if (!names) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyUnicode_Check(item)) {
            ctrgcn_py_input_error("classes[%zd]: expected str, got %s", i, Py_TYPE(item)->tp_name);
            goto done;
        }
        Py_ssize_t len;
        names[i] = PyUnicode_AsUTF8AndSize(item, &len);
        if (!names[i]) goto done;
        if ((Py_ssize_t)strlen(names[i]) != len) {
            ctrgcn_py_input_error("classes[%zd] holds a NUL character", i);
            goto done;
        }
    }
    if (n > INT_MAX) {
        ctrgcn_py_input_error("classes: too many names");
        goto done;
    }
    ctrgcn_status st = ctrgcn_model_set_class_names(self->model, names, (int)n);
    if (st != CTRGCN_OK) {
        ctrgcn_py_raise(st);
        goto done;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    PyMem_Free(names);
    Py_DECREF(seq);
    return result;
}

static PyObject *net_spec(NetObject *self, PyObject *unused) { return ctrgcn_spec_to_dict(ctrgcn_model_spec(self->model)); }

static PyObject *net_version(NetObject *self, PyObject *unused) {
    return PyLong_FromUnsignedLongLong(ctrgcn_model_version(self->model));
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

/* The block layout the spec implies: one dict per block (widths, strides, which paths exist). */
static PyObject *net_layout(NetObject *self, PyObject *unused) {
    const ctrgcn_spec *s = ctrgcn_model_spec(self->model);
    PyObject *list = PyList_New(CTRGCN_NUM_BLOCKS);
    if (!list) return NULL;
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) {
        ctrgcn_block_info b;
        ctrgcn_model_block_info(self->model, k + 1, &b);
        PyObject *d = b.cin < 0 ? NULL : Py_BuildValue(
            "{s:i,s:i,s:i,s:O,s:i,s:i,s:i,s:i,s:O,s:i,s:i,s:i,s:i,s:i,s:i,s:O}", "cin", b.cin, "cout", b.cout,
            "stride", b.stride, "has_gcn", b.has_gcn ? Py_True : Py_False, "gcn_cin", b.gcn_cin, "gcn_cout",
            b.gcn_cout, "R", b.R, "nrel", b.nrel, "fused", b.fused ? Py_True : Py_False, "down", b.down, "tcn_cin",
            b.tcn_cin, "B", b.B, "last", b.last, "residual", b.residual, "kernel", b.kernel_size, "residual_in_tcn",
            b.residual_in_tcn ? Py_True : Py_False);
        if (d && PyDict_SetItemString(d, "dilations", Py_BuildValue("(ii)", b.dilations[0], b.dilations[1])) < 0)
            Py_CLEAR(d);
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



    {"layout", (PyCFunction)net_layout, METH_NOARGS,
     "layout() -> [dict per block]: widths, stride, spatial module, relation width R, relations computed "
     "(nrel), fused, down (1 identity, 2 conv), branch width B, branch-3 width, residual (0 none, 1 identity, "
     "2 conv)"},
    {"classes", (PyCFunction)net_classes, METH_NOARGS, "classes() -> list of class names, or None"},
    {"set_classes", (PyCFunction)net_set_classes, METH_O, "set_classes(list of str or None)"},
    {"spec", (PyCFunction)net_spec, METH_NOARGS, "spec() -> dict: every field of the spec, blocks as dicts"},
    {"version", (PyCFunction)net_version, METH_NOARGS, "version() -> counter that moves when values change"},
    {"tensors", (PyCFunction)net_tensors, METH_NOARGS, "tensors() -> [(name, shape, is_buffer)]"},
    {"get", (PyCFunction)net_get, METH_O, "get(name) -> float32 array (a copy)"},
    {"set", (PyCFunction)net_set, METH_VARARGS, "set(name, array): copy values in, shape checked"},

    {"save", (PyCFunction)net_save, METH_VARARGS, "save(path): the project's file, written atomically"},

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

/* ctrgcn._core: module set-up, exceptions and array conversion. */
#define CTRGCN_BINDING_MAIN
#include "python/binding.h"

PyObject *ctrgcn_Error, *ctrgcn_InputError, *ctrgcn_FileError, *ctrgcn_ResourceError;

PyObject *ctrgcn_py_raise(ctrgcn_status status) {
    PyObject *type = ctrgcn_Error;
    switch (status) {
    case CTRGCN_ERR_ARGUMENT:
    case CTRGCN_ERR_SHAPE:
    case CTRGCN_ERR_KEY:
    case CTRGCN_ERR_FORMAT: type = ctrgcn_InputError; break;
    case CTRGCN_ERR_IO: type = ctrgcn_FileError; break;
    case CTRGCN_ERR_NOMEM: type = ctrgcn_ResourceError; break;
    default: break;
    }
    const char *msg = ctrgcn_last_error();
    if (!msg || !*msg) msg = "ctrgcn: unspecified failure";
    /* messages quote file contents and paths, which need not be UTF-8 (or may be cut mid-character) */
    PyObject *text = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg), "backslashreplace");
    if (!text) return NULL;
    PyErr_SetObject(type, text);
    Py_DECREF(text);
    return NULL;
}

PyObject *ctrgcn_py_input_error(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    PyOS_vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    PyErr_SetString(ctrgcn_InputError, buf);
    return NULL;
}

PyArrayObject *ctrgcn_py_float_array(PyObject *obj, int ndim, const char *what) {
    PyArrayObject *probe = (PyArrayObject *)PyArray_FROM_O(obj);
    if (!probe) {
        PyErr_Clear();
        return (PyArrayObject *)ctrgcn_py_input_error("%s: not convertible to an array", what);
    }
    const char kind = PyArray_DESCR(probe)->kind;
    if (kind != 'f' && kind != 'i' && kind != 'u' && kind != 'b') {
        Py_DECREF(probe);
        return (PyArrayObject *)ctrgcn_py_input_error("%s: expected real numbers, got dtype kind '%c'", what, kind);
    }
    if (PyArray_NDIM(probe) != ndim) {
        const int got = PyArray_NDIM(probe);
        Py_DECREF(probe);
        return (PyArrayObject *)ctrgcn_py_input_error("%s: expected %d dimensions, got %d", what, ndim, got);
    }
    PyArrayObject *arr = (PyArrayObject *)PyArray_FromArray(
        probe, PyArray_DescrFromType(NPY_FLOAT32), NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST);
    Py_DECREF(probe);
    return arr;
}

static PyMethodDef module_methods[] = {
    {"load_file", ctrgcn_net_load, METH_VARARGS, "load_file(path) -> Net: read the project's model file."},
    {"preset_spec", ctrgcn_preset_spec, METH_VARARGS,
     "preset_spec(variant, graph, num_classes, num_person, in_channels) -> spec dict of a preset; "
     "preset_spec() -> the list of preset names"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef core_module = {PyModuleDef_HEAD_INIT, "ctrgcn._core",
                                         "C core of ctrgcn (use the ctrgcn package, not this module).", -1,
                                         module_methods};

static PyObject *new_error(PyObject *m, const char *name, PyObject *bases, const char *doc) {
    char full[64];
    PyOS_snprintf(full, sizeof full, "ctrgcn.%s", name);
    PyObject *type = PyErr_NewExceptionWithDoc(full, doc, bases, NULL);
    if (type && PyModule_AddObjectRef(m, name, type) < 0) Py_CLEAR(type);
    return type;
}

PyMODINIT_FUNC PyInit__core(void) {
    import_array();
    PyObject *m = PyModule_Create(&core_module);
    if (!m) return NULL;
    if (PyModule_AddFunctions(m, ctrgcn_kernel_methods) < 0 || PyModule_AddFunctions(m, ctrgcn_data_methods) < 0 ||
        PyModule_AddFunctions(m, ctrgcn_backend_op_methods) < 0)
        goto fail;
    ctrgcn_Error = new_error(m, "Error", NULL, "Every failure ctrgcn reports.");
    if (!ctrgcn_Error) goto fail;
    PyObject *b1 = PyTuple_Pack(2, ctrgcn_Error, PyExc_ValueError);
    PyObject *b2 = PyTuple_Pack(2, ctrgcn_Error, PyExc_OSError);
    PyObject *b3 = PyTuple_Pack(2, ctrgcn_Error, PyExc_MemoryError);
    if (!b1 || !b2 || !b3) goto fail;
    ctrgcn_InputError = new_error(m, "InputError", b1, "Bad input: shapes, dtypes, values, names, file contents.");
    ctrgcn_FileError = new_error(m, "FileError", b2, "The file system refused an operation.");
    ctrgcn_ResourceError = new_error(m, "ResourceError", b3, "Out of memory.");
    Py_DECREF(b1);
    Py_DECREF(b2);
    Py_DECREF(b3);
    if (!ctrgcn_InputError || !ctrgcn_FileError || !ctrgcn_ResourceError) goto fail;
    if (PyType_Ready(&ctrgcn_NetType) < 0 || PyModule_AddObjectRef(m, "Net", (PyObject *)&ctrgcn_NetType) < 0)
        goto fail;
    if (PyType_Ready(&ctrgcn_SessionType) < 0 ||
        PyModule_AddObjectRef(m, "Session", (PyObject *)&ctrgcn_SessionType) < 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}

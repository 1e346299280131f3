/* Shared pieces of the CPython binding: the exception types and array conversion. */
#ifndef CTRGCN_BINDING_H
#define CTRGCN_BINDING_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define PY_ARRAY_UNIQUE_SYMBOL ctrgcn_ARRAY_API
#ifndef CTRGCN_BINDING_MAIN
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "ctrgcn.h"

/* ctrgcn.Error and its subclasses (ValueError / OSError / MemoryError flavours). */
extern PyObject *ctrgcn_Error, *ctrgcn_InputError, *ctrgcn_FileError, *ctrgcn_ResourceError;

/* Raise the exception that matches a C status, with the core's last message; returns NULL. */
PyObject *ctrgcn_py_raise(ctrgcn_status status);
/* Raise ctrgcn.InputError with a formatted message; returns NULL. */
PyObject *ctrgcn_py_input_error(const char *fmt, ...);

/* A C-contiguous float32 array of exactly ndim dimensions from any real-number array-like;
 * NULL with ctrgcn.InputError set otherwise. `what` names the argument in messages. */
PyArrayObject *ctrgcn_py_float_array(PyObject *obj, int ndim, const char *what);

/* Method tables of the parts of the module. */
extern PyMethodDef ctrgcn_kernel_methods[];
extern PyMethodDef ctrgcn_data_methods[];
extern PyMethodDef ctrgcn_backend_op_methods[]; /* ops.c: backend ops for the backend-ops tests */
extern PyTypeObject ctrgcn_SessionType;       /* session.c: an execution session over a Net */
extern PyTypeObject ctrgcn_NetType;
/* A Net owns one model handle (weights and spec). */
typedef struct {
    PyObject_HEAD
    ctrgcn_model *model;
} NetObject;
/* The spec as a dict (every field, blocks as a list of dicts) and back. */
PyObject *ctrgcn_spec_to_dict(const ctrgcn_spec *s);
int ctrgcn_spec_from_dict(PyObject *dict, ctrgcn_spec *s);
PyObject *ctrgcn_preset_spec(PyObject *self, PyObject *args);
PyObject *ctrgcn_net_load(PyObject *self, PyObject *args);

#endif

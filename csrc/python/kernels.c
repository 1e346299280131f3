/* Thin access to single kernels, so the tests can hold each against its NumPy reference. The
 * temporal convolution, the max-pool and train-mode BatchNorm are the CPU backend's ops themselves
 * (one person, one thread): the tests check what the engine runs. */
#include "python/binding.h"
#include "backends/backend.h"
#include "layers/layers.h"
#include <string.h>

/* A one-thread CPU backend context with `floats` of scratch; NULL with MemoryError set. */
static backend_ctx *cpu_ctx(size_t floats) {
    backend_ctx *c = NULL;
    if (ctrgcn_cpu_backend.init(&c, 1) != CTRGCN_OK || ctrgcn_cpu_backend.reserve(c, floats + 64) != CTRGCN_OK) {
        ctrgcn_cpu_backend.release(c);
        PyErr_NoMemory();
        return NULL;
    }
    return c;
}

static PyObject *new_f32(int nd, npy_intp d0, npy_intp d1, npy_intp d2, npy_intp d3) {
    npy_intp dims[4] = {d0, d1, d2, d3};
    return PyArray_ZEROS(nd, dims, NPY_FLOAT32, 0);
}

/* k_tconv(x[cin,T,V], w[k,cout,cin], stride, dilation) -> y[cout,To,V] */
static PyObject *k_tconv(PyObject *self, PyObject *args) {
    PyObject *xo, *wo;
    int stride, dil;
    if (!PyArg_ParseTuple(args, "OOii", &xo, &wo, &stride, &dil)) return NULL;
    if (stride < 1 || stride > 8 || dil < 1) return ctrgcn_py_input_error("stride must be 1..8, dilation >= 1");
    PyArrayObject *x = ctrgcn_py_float_array(xo, 3, "x"), *w = x ? ctrgcn_py_float_array(wo, 3, "w") : NULL;
    PyObject *y = NULL;
    if (!x || !w) goto done;
    const int cin = (int)PyArray_DIM(x, 0), T = (int)PyArray_DIM(x, 1), V = (int)PyArray_DIM(x, 2);
    const int k = (int)PyArray_DIM(w, 0), cout = (int)PyArray_DIM(w, 1);
    if (PyArray_DIM(w, 2) != cin || k % 2 == 0) {
        ctrgcn_py_input_error("w must be [k odd, cout, cin=%d]", cin);
        goto done;
    }
    const int To = tconv_out_frames(T, k, dil, stride);
    if (To < 1) {
        ctrgcn_py_input_error("no output frames");
        goto done;
    }
    y = new_f32(3, cout, To, V, 0);
    backend_ctx *c = y ? cpu_ctx((size_t)cin * T * V) : NULL;
    if (!c) {
        Py_CLEAR(y);
        goto done;
    }
    ctrgcn_cpu_backend.tconv_forward(c, PyArray_DATA((PyArrayObject *)y), (size_t)cout * To * V, PyArray_DATA(x),
                                     (size_t)cin * T * V, PyArray_DATA(w), NULL, 1, cout, cin, T, V, k, dil, stride);
    ctrgcn_cpu_backend.release(c);
done:
    Py_XDECREF(x);
    Py_XDECREF(w);
    return y;
}

/* k_maxpool(x[C,T,V], scale[C], stride) -> y[C,To,V] */
static PyObject *k_maxpool(PyObject *self, PyObject *args) {
    PyObject *xo, *so;
    int stride;
    if (!PyArg_ParseTuple(args, "OOi", &xo, &so, &stride)) return NULL;
    if (stride < 1) return ctrgcn_py_input_error("stride must be >= 1");
    PyArrayObject *x = ctrgcn_py_float_array(xo, 3, "x"), *s = x ? ctrgcn_py_float_array(so, 1, "scale") : NULL;
    PyObject *y = NULL;
    if (!x || !s) goto done;
    const int C = (int)PyArray_DIM(x, 0), T = (int)PyArray_DIM(x, 1), V = (int)PyArray_DIM(x, 2);
    if (PyArray_DIM(s, 0) != C) {
        ctrgcn_py_input_error("scale must have C entries");
        goto done;
    }
    const int To = (T - 1) / stride + 1;
    backend_ctx *c = NULL;
    if (!(y = new_f32(3, C, To, V, 0)) || !(c = cpu_ctx(0))) {
        Py_CLEAR(y);
        goto done;
    }
    ctrgcn_cpu_backend.maxpool_forward(c, PyArray_DATA((PyArrayObject *)y), (size_t)C * To * V, PyArray_DATA(x),
                                       (size_t)C * T * V, NULL, PyArray_DATA(s), NULL, 1, C, T, V, stride);
    ctrgcn_cpu_backend.release(c);
done:
    Py_XDECREF(x);
    Py_XDECREF(s);
    return y;
}

/* k_relation(q[R,V], k[R,V]) -> relT[R,V,V] */
static PyObject *k_relation(PyObject *self, PyObject *args) {
    PyObject *qo, *ko;
    if (!PyArg_ParseTuple(args, "OO", &qo, &ko)) return NULL;
    PyArrayObject *q = ctrgcn_py_float_array(qo, 2, "q"), *k = q ? ctrgcn_py_float_array(ko, 2, "k") : NULL;
    PyObject *y = NULL;
    if (!q || !k) goto done;
    const int R = (int)PyArray_DIM(q, 0), V = (int)PyArray_DIM(q, 1);
    if (PyArray_DIM(k, 0) != R || PyArray_DIM(k, 1) != V) {
        ctrgcn_py_input_error("q and k must have the same shape");
        goto done;
    }
    if (!(y = new_f32(3, R, V, V, 0))) goto done;
    ctrgc_relation(PyArray_DATA((PyArrayObject *)y), PyArray_DATA(q), PyArray_DATA(k), R, V);
done:
    Py_XDECREF(q);
    Py_XDECREF(k);
    return y;
}

/* k_aggregate(val[nsub*C,T,V], AT[nsub,C,V,V], base[C,T,V] | None, shift[C] | None, relu) -> y[C,T,V] */
static PyObject *k_aggregate(PyObject *self, PyObject *args) {
    PyObject *vo, *ao, *bo, *so;
    int relu;
    if (!PyArg_ParseTuple(args, "OOOOp", &vo, &ao, &bo, &so, &relu)) return NULL;
    PyArrayObject *val = ctrgcn_py_float_array(vo, 3, "val"), *AT = val ? ctrgcn_py_float_array(ao, 4, "AT") : NULL;
    PyArrayObject *base = NULL, *shift = NULL;
    PyObject *y = NULL;
    if (!val || !AT) goto done;
    const int nsub = (int)PyArray_DIM(AT, 0), C = (int)PyArray_DIM(AT, 1), V = (int)PyArray_DIM(AT, 2);
    const int T = (int)PyArray_DIM(val, 1);
    if (V > CTRGCN_AGG_MAXV || PyArray_DIM(AT, 3) != V || PyArray_DIM(val, 0) != (npy_intp)nsub * C ||
        PyArray_DIM(val, 2) != V) {
        ctrgcn_py_input_error("inconsistent shapes");
        goto done;
    }
    if (bo != Py_None && !(base = ctrgcn_py_float_array(bo, 3, "base"))) goto done;
    if (so != Py_None && !(shift = ctrgcn_py_float_array(so, 1, "shift"))) goto done;
    if ((base && PyArray_SIZE(base) != (npy_intp)C * T * V) || (shift && PyArray_DIM(shift, 0) != C)) {
        ctrgcn_py_input_error("base must be [C,T,V], shift [C]");
        goto done;
    }
    if (!(y = new_f32(3, C, T, V, 0))) goto done;
    ctrgc_aggregate(PyArray_DATA((PyArrayObject *)y), PyArray_DATA(val), PyArray_DATA(AT),
                    base ? PyArray_DATA(base) : NULL, shift ? PyArray_DATA(shift) : NULL, C, T, V, nsub, relu);
done:
    Py_XDECREF(val);
    Py_XDECREF(AT);
    Py_XDECREF(base);
    Py_XDECREF(shift);
    return y;
}

/* k_tconv_backward(dy[cout,To,V], x[cin,T,V], w[k,cout,cin], stride, dilation) -> (dx, dw) */
static PyObject *k_tconv_backward(PyObject *self, PyObject *args) {
    PyObject *dyo, *xo, *wo, *res = NULL;
    int stride, dil;
    if (!PyArg_ParseTuple(args, "OOOii", &dyo, &xo, &wo, &stride, &dil)) return NULL;
    if (stride < 1 || stride > 8 || dil < 1) return ctrgcn_py_input_error("stride must be 1..8, dilation >= 1");
    PyArrayObject *dy = ctrgcn_py_float_array(dyo, 3, "dy"), *x = dy ? ctrgcn_py_float_array(xo, 3, "x") : NULL;
    PyArrayObject *w = x ? ctrgcn_py_float_array(wo, 3, "w") : NULL;
    PyObject *dx = NULL, *dw = NULL;
    backend_ctx *c = NULL;
    if (!w) goto done;
    const int cin = (int)PyArray_DIM(x, 0), T = (int)PyArray_DIM(x, 1), V = (int)PyArray_DIM(x, 2);
    const int k = (int)PyArray_DIM(w, 0), cout = (int)PyArray_DIM(w, 1), To = tconv_out_frames(T, k, dil, stride);
    if (PyArray_DIM(w, 2) != cin || k % 2 == 0 || PyArray_DIM(dy, 0) != cout || PyArray_DIM(dy, 1) != To ||
        PyArray_DIM(dy, 2) != V) {
        ctrgcn_py_input_error("inconsistent shapes");
        goto done;
    }
    dx = new_f32(3, cin, T, V, 0);
    dw = new_f32(3, k, cout, cin, 0);
    if (!dx || !dw || !(c = cpu_ctx((size_t)cin * T * V))) goto done;
    ctrgcn_cpu_backend.tconv_backward(c, PyArray_DATA((PyArrayObject *)dx), (size_t)cin * T * V,
                                      PyArray_DATA((PyArrayObject *)dw), NULL, PyArray_DATA(dy), (size_t)cout * To * V,
                                      PyArray_DATA(x), (size_t)cin * T * V, PyArray_DATA(w), 1, cout, cin, T, V, k, dil,
                                      stride);
    res = Py_BuildValue("(OO)", dx, dw);
done:
    ctrgcn_cpu_backend.release(c);
    Py_XDECREF(dy);
    Py_XDECREF(x);
    Py_XDECREF(w);
    Py_XDECREF(dx);
    Py_XDECREF(dw);
    return res;
}

/* k_maxpool_backward(x[C,T,V], dy[C,To,V], stride) -> dx (routes through the forward's argmax) */
static PyObject *k_maxpool_backward(PyObject *self, PyObject *args) {
    PyObject *xo, *dyo, *res = NULL;
    int stride;
    if (!PyArg_ParseTuple(args, "OOi", &xo, &dyo, &stride)) return NULL;
    if (stride < 1) return ctrgcn_py_input_error("stride must be >= 1");
    PyArrayObject *x = ctrgcn_py_float_array(xo, 3, "x"), *dy = x ? ctrgcn_py_float_array(dyo, 3, "dy") : NULL;
    PyObject *dx = NULL;
    int *am = NULL;
    backend_ctx *c = NULL;
    if (!dy) goto done;
    const int C = (int)PyArray_DIM(x, 0), T = (int)PyArray_DIM(x, 1), V = (int)PyArray_DIM(x, 2), To = (T - 1) / stride + 1;
    if (PyArray_DIM(dy, 0) != C || PyArray_DIM(dy, 1) != To || PyArray_DIM(dy, 2) != V) {
        ctrgcn_py_input_error("inconsistent shapes");
        goto done;
    }
    /* the forward's argmax routes the gradient; its output lands in dx, overwritten below */
    am = PyMem_Malloc(sizeof(int) * ((size_t)C * To * V + 1));
    dx = new_f32(3, C, T, V, 0);
    if (!am || !dx || !(c = cpu_ctx(0))) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    float *dxp = PyArray_DATA((PyArrayObject *)dx);
    ctrgcn_cpu_backend.maxpool_forward(c, dxp, (size_t)C * To * V, PyArray_DATA(x), (size_t)C * T * V, am, NULL,
                                       NULL, 1, C, T, V, stride);
    memset(dxp, 0, sizeof(float) * (size_t)C * T * V);
    ctrgcn_cpu_backend.maxpool_backward(c, dxp, (size_t)C * T * V, PyArray_DATA(dy), (size_t)C * To * V, am, 1, C, T,
                                        V, stride);
    res = dx;
    dx = NULL;
done:
    ctrgcn_cpu_backend.release(c);
    PyMem_Free(am);
    Py_XDECREF(x);
    Py_XDECREF(dy);
    Py_XDECREF(dx);
    return res;
}

/* k_bn_train(x[n,C,L], gamma[C], beta[C], dy[n,C,L]) -> (y, dx, dgamma, dbeta) */
static PyObject *k_bn_train(PyObject *self, PyObject *args) {
    PyObject *xo, *go, *bo, *dyo, *res = NULL;
    if (!PyArg_ParseTuple(args, "OOOO", &xo, &go, &bo, &dyo)) return NULL;
    PyArrayObject *x = ctrgcn_py_float_array(xo, 3, "x"), *g = x ? ctrgcn_py_float_array(go, 1, "gamma") : NULL;
    PyArrayObject *b = g ? ctrgcn_py_float_array(bo, 1, "beta") : NULL, *dy = b ? ctrgcn_py_float_array(dyo, 3, "dy") : NULL;
    PyObject *y = NULL, *dx = NULL, *dg = NULL, *db = NULL;
    float *stat = NULL;
    backend_ctx *c = NULL;
    if (!dy) goto done;
    const int n = (int)PyArray_DIM(x, 0), C = (int)PyArray_DIM(x, 1), L = (int)PyArray_DIM(x, 2);
    if (PyArray_DIM(g, 0) != C || PyArray_DIM(b, 0) != C || PyArray_SIZE(dy) != PyArray_SIZE(x) || n * L < 2) {
        ctrgcn_py_input_error("inconsistent shapes");
        goto done;
    }
    y = new_f32(3, n, C, L, 0);
    dx = new_f32(3, n, C, L, 0);
    dg = new_f32(1, C, 0, 0, 0);
    db = new_f32(1, C, 0, 0, 0);
    stat = PyMem_Malloc(sizeof(float) * 2 * C);
    if (!y || !dx || !dg || !db || !stat || !(c = cpu_ctx(0))) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    const size_t ld = (size_t)C * L;
    ctrgcn_cpu_backend.bn_forward(c, PyArray_DATA((PyArrayObject *)y), ld, PyArray_DATA(x), ld, n, C, L,
                                  PyArray_DATA(g), PyArray_DATA(b), stat, NULL, NULL, 0.1f, NULL, 0, 0);
    ctrgcn_cpu_backend.bn_backward(c, PyArray_DATA((PyArrayObject *)dx), ld, PyArray_DATA(dy), ld, PyArray_DATA(x),
                                   ld, n, C, L, PyArray_DATA(g), stat, PyArray_DATA((PyArrayObject *)dg),
                                   PyArray_DATA((PyArrayObject *)db));
    res = Py_BuildValue("(OOOO)", y, dx, dg, db);
done:
    ctrgcn_cpu_backend.release(c);
    PyMem_Free(stat);
    Py_XDECREF(x);
    Py_XDECREF(g);
    Py_XDECREF(b);
    Py_XDECREF(dy);
    Py_XDECREF(y);
    Py_XDECREF(dx);
    Py_XDECREF(dg);
    Py_XDECREF(db);
    return res;
}

/* k_aggregate_backward(dy[C,T,V], val[nsub*C,T,V], AT[nsub,C,V,V]) -> (dval, dAT) */
static PyObject *k_aggregate_backward(PyObject *self, PyObject *args) {
    PyObject *dyo, *vo, *ao, *res = NULL;
    if (!PyArg_ParseTuple(args, "OOO", &dyo, &vo, &ao)) return NULL;
    PyArrayObject *dy = ctrgcn_py_float_array(dyo, 3, "dy"), *val = dy ? ctrgcn_py_float_array(vo, 3, "val") : NULL;
    PyArrayObject *AT = val ? ctrgcn_py_float_array(ao, 4, "AT") : NULL;
    PyObject *dval = NULL, *dAT = NULL;
    if (!AT) goto done;
    const int nsub = (int)PyArray_DIM(AT, 0), C = (int)PyArray_DIM(AT, 1), V = (int)PyArray_DIM(AT, 2),
              T = (int)PyArray_DIM(dy, 1);
    if (PyArray_DIM(AT, 3) != V || PyArray_DIM(dy, 0) != C || PyArray_DIM(dy, 2) != V ||
        PyArray_DIM(val, 0) != (npy_intp)nsub * C || PyArray_DIM(val, 1) != T || PyArray_DIM(val, 2) != V) {
        ctrgcn_py_input_error("inconsistent shapes");
        goto done;
    }
    dval = new_f32(3, (npy_intp)nsub * C, T, V, 0);
    dAT = new_f32(4, nsub, C, V, V);
    if (!dval || !dAT) goto done;
    ctrgc_aggregate_backward(PyArray_DATA((PyArrayObject *)dval), PyArray_DATA((PyArrayObject *)dAT), PyArray_DATA(dy),
                             PyArray_DATA(val), PyArray_DATA(AT), C, T, V, nsub);
    res = Py_BuildValue("(OO)", dval, dAT);
done:
    Py_XDECREF(dy);
    Py_XDECREF(val);
    Py_XDECREF(AT);
    Py_XDECREF(dval);
    Py_XDECREF(dAT);
    return res;
}

/* k_relation_backward(drelT[R,V,V], q[R,V], k[R,V]) -> (dq, dk) */
static PyObject *k_relation_backward(PyObject *self, PyObject *args) {
    PyObject *go, *qo, *ko, *res = NULL;
    if (!PyArg_ParseTuple(args, "OOO", &go, &qo, &ko)) return NULL;
    PyArrayObject *g = ctrgcn_py_float_array(go, 3, "drelT"), *q = g ? ctrgcn_py_float_array(qo, 2, "q") : NULL;
    PyArrayObject *k = q ? ctrgcn_py_float_array(ko, 2, "k") : NULL;
    PyObject *dq = NULL, *dk = NULL;
    float *relT = NULL;
    if (!k) goto done;
    const int R = (int)PyArray_DIM(q, 0), V = (int)PyArray_DIM(q, 1);
    if (PyArray_DIM(k, 0) != R || PyArray_DIM(k, 1) != V || PyArray_DIM(g, 0) != R || PyArray_DIM(g, 1) != V ||
        PyArray_DIM(g, 2) != V) {
        ctrgcn_py_input_error("inconsistent shapes");
        goto done;
    }
    relT = PyMem_Malloc(sizeof(float) * ((size_t)R * V * V + 1));
    dq = new_f32(2, R, V, 0, 0);
    dk = new_f32(2, R, V, 0, 0);
    if (!relT || !dq || !dk) {
        PyErr_NoMemory();
        goto done;
    }
    ctrgc_relation(relT, PyArray_DATA(q), PyArray_DATA(k), R, V);
    ctrgc_relation_backward(PyArray_DATA((PyArrayObject *)dq), PyArray_DATA((PyArrayObject *)dk), PyArray_DATA(g), relT,
                            R, V);
    res = Py_BuildValue("(OO)", dq, dk);
done:
    PyMem_Free(relT);
    Py_XDECREF(g);
    Py_XDECREF(q);
    Py_XDECREF(k);
    Py_XDECREF(dq);
    Py_XDECREF(dk);
    return res;
}

/* softmax_xent(logits[N,K], targets[N,K]) -> (mean loss, dlogits) */
static PyObject *softmax_xent_py(PyObject *self, PyObject *args) {
    PyObject *lo, *to;
    if (!PyArg_ParseTuple(args, "OO", &lo, &to)) return NULL;
    PyArrayObject *l = ctrgcn_py_float_array(lo, 2, "logits"), *t = l ? ctrgcn_py_float_array(to, 2, "targets") : NULL;
    PyObject *d = NULL, *res = NULL;
    if (!l || !t) goto done;
    if (PyArray_DIM(t, 0) != PyArray_DIM(l, 0) || PyArray_DIM(t, 1) != PyArray_DIM(l, 1)) {
        ctrgcn_py_input_error("logits and targets must have the same shape");
        goto done;
    }
    d = PyArray_SimpleNew(2, PyArray_DIMS(l), NPY_FLOAT32);
    if (!d) goto done;
    double loss;
    ctrgcn_status st = ctrgcn_softmax_xent(PyArray_DATA(l), PyArray_DATA(t), (int)PyArray_DIM(l, 0),
                                           (int)PyArray_DIM(l, 1), &loss, PyArray_DATA((PyArrayObject *)d));
    if (st != CTRGCN_OK) {
        ctrgcn_py_raise(st);
        goto done;
    }
    res = Py_BuildValue("(dO)", loss, d);
done:
    Py_XDECREF(l);
    Py_XDECREF(t);
    Py_XDECREF(d);
    return res;
}

/* lr_at(kind, base_lr, warmup_start, warmup_epochs, epochs, iters_per_epoch, steps, gamma, iteration) */
static PyObject *lr_at_py(PyObject *self, PyObject *args) {
    ctrgcn_lr_schedule s;
    memset(&s, 0, sizeof s);
    PyObject *steps;
    long it;
    if (!PyArg_ParseTuple(args, "idddilOdl", &s.kind, &s.base_lr, &s.warmup_start, &s.warmup_epochs, &s.epochs,
                          &s.iters_per_epoch, &steps, &s.gamma, &it))
        return NULL;
    PyObject *seq = PySequence_Fast(steps, "steps must be a sequence");
    if (!seq) return NULL;
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > 16) {
        Py_DECREF(seq);
        return ctrgcn_py_input_error("at most 16 step epochs");
    }
    for (Py_ssize_t i = 0; i < n; i++) s.steps[i] = (int)PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
    s.num_steps = (int)n;
    Py_DECREF(seq);
    if (PyErr_Occurred()) return NULL;
    return PyFloat_FromDouble(ctrgcn_lr_at(&s, it));
}

PyMethodDef ctrgcn_kernel_methods[] = {
    {"k_tconv_backward", k_tconv_backward, METH_VARARGS, "temporal convolution backward (tests)"},
    {"k_maxpool_backward", k_maxpool_backward, METH_VARARGS, "time max-pool backward (tests)"},
    {"k_bn_train", k_bn_train, METH_VARARGS, "train-mode BatchNorm forward and backward (tests)"},
    {"k_aggregate_backward", k_aggregate_backward, METH_VARARGS, "CTR-GC aggregation backward (tests)"},
    {"k_relation_backward", k_relation_backward, METH_VARARGS, "CTR-GC relation backward (tests)"},
    {"softmax_xent", softmax_xent_py, METH_VARARGS, "softmax_xent(logits, targets) -> (loss, dlogits)"},
    {"lr_at", lr_at_py, METH_VARARGS, "learning rate of a schedule at an iteration"},
    {"k_tconv", k_tconv, METH_VARARGS, "temporal convolution kernel (tests)"},
    {"k_maxpool", k_maxpool, METH_VARARGS, "time max-pool kernel (tests)"},
    {"k_relation", k_relation, METH_VARARGS, "CTR-GC relation kernel (tests)"},
    {"k_aggregate", k_aggregate, METH_VARARGS, "CTR-GC aggregation kernel (tests)"},
    {NULL, NULL, 0, NULL}};

/* ctrgcn._core.Session: one execution session over a Net (which it keeps alive), freed in
 * dealloc. The GIL is released around every run; a session refuses a second thread while one
 * is inside it instead of racing (ctrgcn.Model hands each thread its own session). */
#include "python/binding.h"

typedef struct {
    PyObject_HEAD
    ctrgcn_session *session;
    NetObject *net;
    int busy;
    long batch; /* rows of the last train_forward (the targets must match) */
} SessionObject;

static int enter(SessionObject *self) {
    if (self->busy) {
        PyErr_SetString(ctrgcn_Error, "this session is running on another thread; use one session per thread");
        return -1;
    }
    self->busy = 1;
    return 0;
}

static PyObject *session_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    static char *names[] = {"net", "backend", "threads", NULL};
    NetObject *net;
    const char *backend = "cpu";
    int threads = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|si", names, &ctrgcn_NetType, &net, &backend, &threads))
        return NULL;
    SessionObject *self = (SessionObject *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    ctrgcn_status st = ctrgcn_session_init(&self->session, net->model, backend, threads);
    if (st != CTRGCN_OK) {
        Py_DECREF(self);
        return ctrgcn_py_raise(st);
    }
    Py_INCREF(net);
    self->net = net;
    return (PyObject *)self;
}

static void session_dealloc(SessionObject *self) {
    ctrgcn_session_free(self->session);
    Py_XDECREF(self->net);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* x: float32 [N, C, T, V, M] with the model's C, V, M. */
static PyArrayObject *checked_input(SessionObject *self, PyObject *x_obj) {
    const ctrgcn_spec *s = ctrgcn_model_spec(self->net->model);
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

static PyArrayObject *new_logits(SessionObject *self, int N) {
    npy_intp dims[2] = {N, ctrgcn_model_spec(self->net->model)->num_classes};
    return (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT32);
}

/* forward(x[, block]) -> logits, or (logits, block output) */
static PyObject *session_forward(SessionObject *self, PyObject *args) {
    PyObject *x_obj;
    int block = 0;
    if (!PyArg_ParseTuple(args, "O|i", &x_obj, &block)) return NULL;
    PyArrayObject *x = checked_input(self, x_obj);
    if (!x) return NULL;
    const int N = (int)PyArray_DIM(x, 0), T = (int)PyArray_DIM(x, 2);
    const ctrgcn_spec *sp = ctrgcn_model_spec(self->net->model);
    PyArrayObject *logits = new_logits(self, N), *act = NULL;
    ctrgcn_status st = CTRGCN_OK;
    if (!logits) goto fail;
    if (block) {
        int ch, fr;
        if ((st = ctrgcn_model_block_shape(self->net->model, block, T, &ch, &fr)) != CTRGCN_OK) goto raise;
        npy_intp adims[4] = {(npy_intp)N * sp->num_person, ch, fr, sp->num_joints};
        if (!(act = (PyArrayObject *)PyArray_SimpleNew(4, adims, NPY_FLOAT32))) goto fail;
    }
    /* fold changed weights while the GIL keeps every other writer of the model out */
    if ((st = ctrgcn_session_prepare(self->session)) != CTRGCN_OK) goto raise;
    if (enter(self) < 0) goto fail;
    const float *xp = PyArray_DATA(x);
    float *lp = PyArray_DATA(logits), *ap = act ? PyArray_DATA(act) : NULL;
    const size_t an = act ? (size_t)PyArray_SIZE(act) : 0;
    Py_BEGIN_ALLOW_THREADS
    st = ap ? ctrgcn_session_forward_probe(self->session, xp, N, T, lp, block, ap, an)
            : ctrgcn_session_forward(self->session, xp, N, T, lp);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    if (st != CTRGCN_OK) goto raise;
    Py_DECREF(x);
    if (act) return Py_BuildValue("(NN)", logits, act);
    return (PyObject *)logits;
raise:
    ctrgcn_py_raise(st);
fail:
    Py_DECREF(x);
    Py_XDECREF(logits);
    Py_XDECREF(act);
    return NULL;
}

static PyObject *session_set_sgd(SessionObject *self, PyObject *args) {
    float momentum, wd;
    int nesterov;
    if (!PyArg_ParseTuple(args, "ffp", &momentum, &wd, &nesterov)) return NULL;
    ctrgcn_status st = ctrgcn_session_set_sgd(self->session, momentum, wd, nesterov);
    if (st != CTRGCN_OK) return ctrgcn_py_raise(st);
    Py_RETURN_NONE;
}

static PyObject *session_train_forward(SessionObject *self, PyObject *args) {
    PyObject *x_obj;
    int update = 1;
    if (!PyArg_ParseTuple(args, "O|p", &x_obj, &update)) return NULL;
    PyArrayObject *x = checked_input(self, x_obj);
    if (!x) return NULL;
    const int N = (int)PyArray_DIM(x, 0), T = (int)PyArray_DIM(x, 2);
    PyArrayObject *logits = new_logits(self, N);
    if (!logits || enter(self) < 0) {
        Py_DECREF(x);
        Py_XDECREF(logits);
        return NULL;
    }
    ctrgcn_status st;
    const float *xp = PyArray_DATA(x);
    float *lp = PyArray_DATA(logits);
    Py_BEGIN_ALLOW_THREADS st = ctrgcn_session_train_forward(self->session, xp, N, T, lp, update);
    Py_END_ALLOW_THREADS self->busy = 0;
    Py_DECREF(x);
    if (st != CTRGCN_OK) {
        Py_DECREF(logits);
        return ctrgcn_py_raise(st);
    }
    self->batch = N;
    return (PyObject *)logits;
}

/* targets [N, K] as float32; NULL with an error set when the shape does not fit */
static PyArrayObject *nk_array(SessionObject *self, PyObject *obj, const char *what) {
    PyArrayObject *a = ctrgcn_py_float_array(obj, 2, what);
    if (a && PyArray_DIM(a, 1) != ctrgcn_model_spec(self->net->model)->num_classes) {
        ctrgcn_py_input_error("%s: expected %d columns, got %ld", what, ctrgcn_model_spec(self->net->model)->num_classes,
                              (long)PyArray_DIM(a, 1));
        Py_CLEAR(a);
    }
    return a;
}

/* train_backward(targets, extra_dlogits=None) -> loss; rows must match the last train_forward */
static PyObject *session_train_backward(SessionObject *self, PyObject *args) {
    PyObject *t_obj, *e_obj = Py_None;
    if (!PyArg_ParseTuple(args, "O|O", &t_obj, &e_obj)) return NULL;
    PyArrayObject *t = nk_array(self, t_obj, "targets"), *e = NULL;
    if (!t) return NULL;
    if (e_obj != Py_None && !(e = nk_array(self, e_obj, "extra_dlogits"))) {
        Py_DECREF(t);
        return NULL;
    }
    if ((e && PyArray_DIM(e, 0) != PyArray_DIM(t, 0)) || enter(self) < 0) {
        if (!PyErr_Occurred()) ctrgcn_py_input_error("extra_dlogits: rows differ from targets");
        Py_DECREF(t);
        Py_XDECREF(e);
        return NULL;
    }
    ctrgcn_status st = CTRGCN_OK;
    double loss = 0.0;
    const float *tp = PyArray_DATA(t), *ep = e ? PyArray_DATA(e) : NULL;
    const long rows = (long)PyArray_DIM(t, 0);
    const long want = self->batch;
    if (want > 0 && rows != want) {
        self->busy = 0;
        Py_DECREF(t);
        Py_XDECREF(e);
        return ctrgcn_py_input_error("targets: %ld rows, the last train_forward had %ld", rows, want);
    }
    Py_BEGIN_ALLOW_THREADS st = ctrgcn_session_train_backward(self->session, tp, ep, &loss);
    Py_END_ALLOW_THREADS self->busy = 0;
    Py_DECREF(t);
    Py_XDECREF(e);
    if (st != CTRGCN_OK) return ctrgcn_py_raise(st);
    return PyFloat_FromDouble(loss);
}

static PyObject *session_sgd_step(SessionObject *self, PyObject *arg) {
    const double lr = PyFloat_AsDouble(arg);
    if (lr == -1.0 && PyErr_Occurred()) return NULL;
    if (enter(self) < 0) return NULL;
    ctrgcn_status st;
    Py_BEGIN_ALLOW_THREADS st = ctrgcn_session_sgd_step(self->session, (float)lr);
    Py_END_ALLOW_THREADS self->busy = 0;
    if (st != CTRGCN_OK) return ctrgcn_py_raise(st);
    Py_RETURN_NONE;
}

static PyObject *flat_array(SessionObject *self) {
    npy_intp n = (npy_intp)ctrgcn_model_params_size(self->net->model);
    return PyArray_ZEROS(1, &n, NPY_FLOAT32, 0);
}

static PyObject *session_gradients(SessionObject *self, PyObject *unused) {
    PyObject *g = flat_array(self);
    if (!g) return NULL;
    ctrgcn_status st = ctrgcn_session_gradients(self->session, PyArray_DATA((PyArrayObject *)g));
    if (st != CTRGCN_OK) {
        Py_DECREF(g);
        return ctrgcn_py_raise(st);
    }
    return g;
}

static PyObject *session_write_params(SessionObject *self, PyObject *unused) {
    ctrgcn_status st = ctrgcn_session_write_params(self->session, self->net->model);
    if (st != CTRGCN_OK) return ctrgcn_py_raise(st);
    Py_RETURN_NONE;
}

static PyObject *session_get_velocity(SessionObject *self, PyObject *unused) {
    PyObject *v = flat_array(self);
    long steps = 0;
    if (!v) return NULL;
    ctrgcn_status st = ctrgcn_session_get_velocity(self->session, PyArray_DATA((PyArrayObject *)v), &steps);
    if (st != CTRGCN_OK) {
        Py_DECREF(v);
        return ctrgcn_py_raise(st);
    }
    return Py_BuildValue("(Nl)", v, steps);
}

static PyObject *session_set_velocity(SessionObject *self, PyObject *args) {
    PyObject *obj;
    long steps;
    if (!PyArg_ParseTuple(args, "Ol", &obj, &steps)) return NULL;
    PyArrayObject *v = ctrgcn_py_float_array(obj, 1, "velocity");
    if (!v) return NULL;
    if (PyArray_DIM(v, 0) != (npy_intp)ctrgcn_model_params_size(self->net->model)) {
        Py_DECREF(v);
        return ctrgcn_py_input_error("velocity: expected %zu values", ctrgcn_model_params_size(self->net->model));
    }
    ctrgcn_status st = ctrgcn_session_set_velocity(self->session, PyArray_DATA(v), steps);
    Py_DECREF(v);
    if (st != CTRGCN_OK) return ctrgcn_py_raise(st);
    Py_RETURN_NONE;
}

/* profile(on): start (from zero) or stop op timing; refused while another thread runs the session,
 * which would be reading the counters being freed. */
static PyObject *session_profile(SessionObject *self, PyObject *on) {
    const int flag = PyObject_IsTrue(on);
    if (flag < 0 || enter(self) < 0) return NULL;
    ctrgcn_status st = ctrgcn_session_profile(self->session, flag);
    self->busy = 0;
    if (st != CTRGCN_OK) return ctrgcn_py_raise(st);
    Py_RETURN_NONE;
}

/* profile_read() -> [(op, calls, seconds)] for every slot that ran, in table order. */
static PyObject *session_profile_read(SessionObject *self, PyObject *unused) {
    PyObject *rows = PyList_New(0);
    if (!rows) return NULL;
    for (int i = 0; i < ctrgcn_profile_slots(); i++) {
        const char *name;
        long calls;
        double sec;
        ctrgcn_status st = ctrgcn_session_profile_entry(self->session, i, &name, &calls, &sec);
        if (st != CTRGCN_OK) {
            Py_DECREF(rows);
            return ctrgcn_py_raise(st);
        }
        if (!calls) continue;
        PyObject *row = Py_BuildValue("(sld)", name, calls, sec);
        if (!row || PyList_Append(rows, row) < 0) {
            Py_XDECREF(row);
            Py_DECREF(rows);
            return NULL;
        }
        Py_DECREF(row);
    }
    return rows;
}

static PyObject *session_backend(SessionObject *self, void *unused) {
    return PyUnicode_FromString(ctrgcn_session_backend(self->session));
}

static PyMethodDef session_methods[] = {
    {"forward", (PyCFunction)session_forward, METH_VARARGS,
     "forward(x[, block]) -> logits, or (logits, block output) when block is 1..10"},
    {"set_sgd", (PyCFunction)session_set_sgd, METH_VARARGS, "set_sgd(momentum, weight_decay, nesterov)"},
    {"train_forward", (PyCFunction)session_train_forward, METH_VARARGS,
     "train_forward(x, update_stats=True) -> logits, in train mode, keeping what backward needs"},
    {"train_backward", (PyCFunction)session_train_backward, METH_VARARGS,
     "train_backward(targets, extra_dlogits=None) -> loss; gradients stay in the session"},
    {"sgd_step", (PyCFunction)session_sgd_step, METH_O, "sgd_step(lr): one SGD update of the session's parameters"},
    {"gradients", (PyCFunction)session_gradients, METH_NOARGS, "gradients() -> flat gradients of the last backward"},
    {"write_params", (PyCFunction)session_write_params, METH_NOARGS,
     "write_params(): the trained parameters and running statistics into the model"},
    {"get_velocity", (PyCFunction)session_get_velocity, METH_NOARGS, "get_velocity() -> (flat momentum, steps)"},
    {"set_velocity", (PyCFunction)session_set_velocity, METH_VARARGS, "set_velocity(flat momentum, steps)"},
    {"profile", (PyCFunction)session_profile, METH_O, "profile(on): start (from zero) or stop timing every op"},
    {"profile_read", (PyCFunction)session_profile_read, METH_NOARGS,
     "profile_read() -> [(op, calls, seconds)] of the ops timed since profile(True)"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef session_getset[] = {{"backend", (getter)session_backend, NULL, "backend name", NULL},
                                       {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject ctrgcn_SessionType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ctrgcn._core.Session",
    .tp_basicsize = sizeof(SessionObject),
    .tp_dealloc = (destructor)session_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Session(net, backend='cpu', threads=0): execution state over a Net's weights.",
    .tp_methods = session_methods,
    .tp_getset = session_getset,
    .tp_new = session_new,
};

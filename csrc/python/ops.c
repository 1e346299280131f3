/* ctrgcn._core backend ops: every op of every registered backend callable from Python, for the
 * backend-ops test suite (tests/test_backend_ops.py).
 *
 *     backend_names() -> ["cpu", ...]        the registered backends this build has
 *     backend_op_names() -> ["accumulate", ...]   the ops backend_op knows
 *     backend_op(backend, op, threads, arrays, params=None) -> dict
 *
 * backend_op initialises a context of `backend` with `threads` (0: the backend's default),
 * reserves scratch for the shapes, allocates backend memory for every array (be->alloc), uploads
 * it, runs the op, downloads every output, frees everything and returns {name: value}. The GIL is
 * released from the context's initialisation to its release.
 *
 * `arrays` maps the op's pointer arguments, named as in backends/backend.h, to array-likes
 * (float32 arrays, int32 for `argmax`; converted C-contiguous with a cast; any shape: an array is
 * its flat values and must hold at least the elements the op touches). Roles:
 *   in     uploaded, not returned;
 *   acc    accumulated or updated in place: the caller passes the initial content (required);
 *   out    written: pass an array to prefill it (sentinels show what the op did not write), or
 *          leave it out and it is allocated flat, prefilled with NaN (int: -1).
 * Optional pointers (the ones backend.h says may be NULL) are NULL when absent or None. Every
 * acc / out array comes back, with the shape it was passed in (flat when allocated here). A
 * string value aliases another array of the call: arrays=dict(x=x, y="x") runs the op with
 * y == x (in place), and returns y (and x, when x is itself an output).
 *
 * `params` maps the scalar arguments, named as in backend.h, to numbers. The person strides
 * (ldx, ldy, lddx, lddy, ldval, lddval, ldbase, ldn) default to the tight size of one person and
 * may be larger (a channel slice of a larger tensor). Unknown names, missing arrays or params,
 * arrays too small for the shapes and out-of-range values raise ctrgcn.InputError.
 *
 * The ops (arrays, with role; params; extra results):
 *   memory              x acc; offset=0, count=0: upload, zero x[offset:offset+count), download.
 *   count_nonfinite     x in; count=x.size -> {"count": int}
 *   lanes               chunks -> {"lanes": be->lanes(ctx, chunks), "eval_chunk": int}
 *   run_lanes           chunks, lanes=be->lanes(...) -> {"lanes", "chunk_lane" (int32 [chunks]: the
 *                       lane each chunk ran on), "calls" (int32 [chunks]: times each chunk ran),
 *                       "overlaps" (times a lane was entered while another chunk held it),
 *                       "bad" (chunk or lane out of range)}
 *   input_forward       y out, x in; N C T V M
 *   persons_forward     y out, x in; N C T V M
 *   persons_backward    dx out, dy in; N C T V M
 *   bn_forward          y out, x in, gamma in, beta in, stat out, run_mean acc?, run_var acc?, res in?;
 *                       n C L ldy ldx ldres momentum=0.1 relu=0
 *   bn_backward         dx out, dy in, x in, gamma in, stat in, dgamma acc, dbeta acc;
 *                       n C L lddx lddy ldx
 *   affine_forward      y out, x in, scale in, shift in; n C L ldn
 *   add_relu_forward    y out, a in, b in?; count
 *   relu_backward       dx out, dy in, y in; count
 *   accumulate          dst acc, src in; count
 *   conv1x1_forward     y out (acc when accumulate), x in, W in, b in?;
 *                       n co ci T V stride=1 accumulate=0 ldy ldx
 *   conv1x1_backward    dx acc?, dW acc, db acc?, dy in, x in, W in; n co ci T V stride=1 lddx lddy ldx
 *   tconv_forward       y out, x in, W in, b in?; n co ci T V k dil=1 stride=1 ldy ldx
 *   tconv_backward      dx acc?, dW acc, db acc?, dy in, x in, W in; as tconv_forward, lddx lddy ldx
 *   maxpool_forward     y out, x in, argmax out? (int32; absent: NULL, as in eval), scale in?,
 *                       shift in?; n C T V stride=1 ldy ldx
 *   maxpool_backward    dx acc, dy in, argmax in (int32, checked to lie in [0, T)); n C T V
 *                       stride=1 lddx lddy
 *   mean_time_forward   y out, x in; n C T V ldx
 *   mean_time_backward  dx acc, dy in; n C T V lddx
 *   relation_forward    rel out, qk in; n nrel R V
 *   relation_backward   dqk out, drel in, rel in; n nrel R V
 *   adjacency_forward   AT out, rel in, W4 in, b4 in, alpha in [1], PA in; n nrel (1|3) C R V
 *   adjacency_backward  drel out, dW4 acc, db4 acc, dalpha acc [1], dPA acc, dAT in, rel in, W4 in,
 *                       b4 in, alpha in [1]; n nrel C R V
 *   aggregate_forward   y out, val in, AT in, base in?, shift in?; n C T V relu=0 ldy ldval ldbase
 *   aggregate_backward  dval out, dAT out, dy in, val in, AT in; n C T V lddval lddy ldval
 *   pool_forward        feat out, x in; N M F L
 *   pool_backward       dx out, dfeat in; N M F L
 *   linear_forward      y out, x in, W in, b in?; N K F
 *   linear_backward     dx out, dW acc, db acc, dy in, x in, W in; N K F
 *   xent_forward        dlogits out, logits in, targets in; N K -> {"loss": float}
 *   sgd_update          p acc, g in, v acc; count lr momentum weight_decay=0 nesterov=0 first_step=0
 */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/cuda/cuda_module.h"
#include "core/error.h"
#include "python/binding.h"

/* ---- one call: its arrays, params and backend memory ---------------------------------------- */
enum { R_IN, R_ACC, R_OUT };
enum { P_REQ, P_OPT, P_AUTO };
#define MAX_BUFS 16
#define MAX_NAMES 48
#define MAX_ELEMS ((size_t)1 << 28) /* per array: 1 GiB of floats is no test */
#define NO_DEFAULT LLONG_MIN

typedef struct {
    const char *name;
    int role, kind; /* kind: 'f' float32, 'i' int32 */
    size_t need;    /* elements the op touches */
    PyArrayObject *host; /* contiguous host copy (owned); NULL when absent or an alias */
    PyArrayObject *out;  /* the returned array (owned), outputs only */
    char alias_of[32];   /* the name of the array this one shares memory with ("" when none) */
    int alias;           /* its index */
    void *dev;
    size_t bytes;
} buf;

typedef struct {
    const char *op;
    const ctrgcn_backend *be;
    backend_ctx *ctx;
    int threads;
    PyObject *arrays, *params; /* borrowed dicts (params may be NULL) */
    const char *used[MAX_NAMES];
    int nused;
    buf b[MAX_BUFS];
    int nb;
    size_t scratch; /* floats per worker */
    int failed;     /* a Python exception is set (GIL held) */
    PyThreadState *ts;
    PyObject *extra; /* extra results (dict) */
    /* a failure while the GIL was released */
    ctrgcn_status status;
    int nomem;
} call;

static void mark_used(call *c, const char *name) {
    if (c->nused < MAX_NAMES) c->used[c->nused++] = name;
}

/* Raises ctrgcn.InputError (once per call) and marks the call failed; returns 0. */
static int fail(call *c, const char *fmt, ...) {
    if (!c->failed) {
        char m[300];
        va_list ap;
        va_start(ap, fmt);
        PyOS_vsnprintf(m, sizeof m, fmt, ap);
        va_end(ap);
        ctrgcn_py_input_error("backend_op %s: %s", c->op, m);
    }
    c->failed = 1;
    return 0;
}

/* An integer param in [lo, hi]; def = NO_DEFAULT: required. Returns lo after a failure. */
static long long PI(call *c, const char *name, long long def, long long lo, long long hi) {
    mark_used(c, name);
    if (c->failed) return lo;
    PyObject *o = c->params ? PyDict_GetItemString(c->params, name) : NULL;
    if (!o || o == Py_None) {
        if (def == NO_DEFAULT) {
            fail(c, "missing param '%s'", name);
            return lo;
        }
        return def;
    }
    PyObject *idx = PyNumber_Index(o);
    if (!idx) {
        PyErr_Clear();
        fail(c, "param '%s' must be an integer", name);
        return lo;
    }
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(idx, &overflow);
    Py_DECREF(idx);
    if (overflow || v < lo || v > hi) {
        fail(c, "param '%s' out of range (got %lld)", name, overflow ? 0 : v);
        return lo;
    }
    return v;
}

static double PF(call *c, const char *name, double def, int required) {
    mark_used(c, name);
    if (c->failed) return 0.0;
    PyObject *o = c->params ? PyDict_GetItemString(c->params, name) : NULL;
    if (!o || o == Py_None) {
        if (required) fail(c, "missing param '%s'", name);
        return def;
    }
    const double v = PyFloat_AsDouble(o);
    if (v == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        fail(c, "param '%s' must be a number", name);
        return 0.0;
    }
    if (!isfinite(v)) fail(c, "param '%s' must be finite", name);
    return v;
}

/* Checked size arithmetic: MAX_ELEMS + 1 (and a failure) when the product is too large. */
static size_t mul(call *c, size_t a, size_t b) {
    if (a && b > MAX_ELEMS / a) {
        fail(c, "shapes too large");
        return MAX_ELEMS + 1;
    }
    return a * b;
}
#define MUL3(c, a, b, d) mul(c, mul(c, a, b), d)
/* Elements touched by n persons of `tight` values each, `ld` apart. */
static size_t span(call *c, size_t n, size_t ld, size_t tight) {
    return n ? mul(c, n - 1, ld) + tight : 0;
}
/* A person stride: `tight` unless given, never below it. */
static size_t LD(call *c, const char *name, size_t tight) {
    const long long v = PI(c, name, (long long)tight, 0, (long long)MAX_ELEMS);
    if (!c->failed && (size_t)v < tight) fail(c, "stride '%s' below the tight size of one person (got %lld)", name, v);
    return (size_t)v;
}
static void want_scratch(call *c, size_t floats) {
    if (floats > c->scratch) c->scratch = floats;
}

/* Declares array `name`; returns its index (its device pointer after go(): PTR). */
static int B(call *c, const char *name, int role, int kind, size_t need, int presence) {
    mark_used(c, name);
    if (c->nb >= MAX_BUFS) {
        fail(c, "too many arrays");
        return 0;
    }
    const int i = c->nb++;
    buf *b = &c->b[i];
    memset(b, 0, sizeof *b);
    b->name = name;
    b->role = role;
    b->kind = kind;
    b->need = need;
    b->alias = -1;
    if (c->failed) return i;
    if (need > MAX_ELEMS) {
        fail(c, "array '%s' too large for this test hook", name);
        return i;
    }
    PyObject *o = PyDict_GetItemString(c->arrays, name);
    if (o && PyUnicode_Check(o)) {
        const char *s = PyUnicode_AsUTF8(o);
        if (!s || strlen(s) >= sizeof b->alias_of) {
            PyErr_Clear();
            fail(c, "array '%s': bad alias name", name);
            return i;
        }
        strcpy(b->alias_of, s);
        return i;
    }
    if (!o || o == Py_None) {
        if (presence == P_REQ || (presence == P_AUTO && role == R_ACC)) {
            fail(c, "missing array '%s'", name);
            return i;
        }
        if (presence == P_OPT) return i; /* NULL */
        npy_intp dim = (npy_intp)(need ? need : 1);
        b->host = (PyArrayObject *)PyArray_SimpleNew(1, &dim, kind == 'i' ? NPY_INT32 : NPY_FLOAT32);
        if (!b->host) {
            c->failed = 1;
            return i;
        }
        if (kind == 'i')
            for (npy_intp e = 0; e < dim; e++) ((int *)PyArray_DATA(b->host))[e] = -1;
        else
            for (npy_intp e = 0; e < dim; e++) ((float *)PyArray_DATA(b->host))[e] = NAN;
    } else {
        PyArrayObject *probe = (PyArrayObject *)PyArray_FROM_O(o);
        if (!probe) {
            PyErr_Clear();
            fail(c, "array '%s': not convertible to an array", name);
            return i;
        }
        const char k = PyArray_DESCR(probe)->kind;
        const int ok = kind == 'i' ? (k == 'i' || k == 'u' || k == 'b') : (k == 'f' || k == 'i' || k == 'u' || k == 'b');
        if (!ok) {
            Py_DECREF(probe);
            fail(c, kind == 'i' ? "array '%s' must hold integers" : "array '%s' must hold real numbers",
                 name, 0);
            return i;
        }
        b->host = (PyArrayObject *)PyArray_FromArray(
            probe, PyArray_DescrFromType(kind == 'i' ? NPY_INT32 : NPY_FLOAT32),
            NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST);
        Py_DECREF(probe);
        if (!b->host) {
            PyErr_Clear();
            fail(c, "array '%s': not convertible", name);
            return i;
        }
        if ((size_t)PyArray_SIZE(b->host) < need) {
            fail(c, "array '%s' too small for the shapes (needs %lld elements)", name, (long long)need);
            return i;
        }
    }
    return i;
}
static void *PTR(call *c, int i) { return c->b[i].dev; }
#define F(i) ((float *)PTR(c, i))
#define IP(i) ((int *)PTR(c, i))

static void drop(call *c) {
    for (int i = 0; i < c->nb; i++) {
        Py_CLEAR(c->b[i].host);
        Py_CLEAR(c->b[i].out);
    }
}

/* Frees the backend memory and context (any thread state). */
static void release_backend(call *c) {
    for (int i = 0; i < c->nb; i++) {
        buf *b = &c->b[i];
        if (b->dev && b->alias < 0 && c->ctx) c->be->free(c->ctx, b->dev);
        b->dev = NULL;
    }
    if (c->ctx) c->be->release(c->ctx);
    c->ctx = NULL;
}

/* Checks the names, resolves aliases, then releases the GIL, starts the backend and uploads.
 * 1: running without the GIL; 0: failed, exception set, GIL held. */
static int go(call *c) {
    if (c->failed) return 0;
    /* every key of arrays / params must be one this op reads */
    PyObject *dicts[2] = {c->arrays, c->params};
    for (int d = 0; d < 2; d++) {
        if (!dicts[d]) continue;
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        while (PyDict_Next(dicts[d], &pos, &key, &value)) {
            const char *k = PyUnicode_Check(key) ? PyUnicode_AsUTF8(key) : NULL;
            if (!k) {
                PyErr_Clear();
                return fail(c, "%s keys must be strings", d ? "params" : "arrays");
            }
            int known = 0;
            for (int u = 0; u < c->nused && !known; u++) known = strcmp(c->used[u], k) == 0;
            /* a param that names an array (or the reverse) is not known either */
            if (known) {
                int is_array = 0;
                for (int i = 0; i < c->nb; i++) is_array |= strcmp(c->b[i].name, k) == 0;
                known = d ? !is_array : is_array;
            }
            if (!known) return fail(c, d ? "unknown param '%s'" : "unknown array '%s'", k);
        }
    }
    for (int i = 0; i < c->nb; i++) {
        buf *b = &c->b[i];
        if (!b->alias_of[0]) continue;
        for (int j = 0; j < c->nb; j++)
            if (j != i && strcmp(c->b[j].name, b->alias_of) == 0) b->alias = j;
        if (b->alias < 0) return fail(c, "array '%s' aliases an unknown array", b->name);
        const buf *t = &c->b[b->alias];
        if (!t->host) return fail(c, "array '%s' aliases an absent array or an alias", b->name);
        if (t->kind != b->kind) return fail(c, "array '%s' aliases an array of another type", b->name);
        if ((size_t)PyArray_SIZE(t->host) < b->need)
            return fail(c, "array '%s': its alias is too small (needs %lld elements)", b->name, (long long)b->need);
    }
    for (int i = 0; i < c->nb; i++) {
        buf *b = &c->b[i];
        const buf *src = b->alias >= 0 ? &c->b[b->alias] : b;
        if (b->role != R_IN && src->host) {
            b->out = (PyArrayObject *)PyArray_NewCopy(src->host, NPY_CORDER);
            if (!b->out) {
                c->failed = 1;
                return 0;
            }
        }
        if (b->host) b->bytes = (size_t)PyArray_NBYTES(b->host);
    }
    /* generous: what the op's shapes ask for, and never less than 4x its largest array */
    for (int i = 0; i < c->nb; i++) want_scratch(c, 4 * c->b[i].need);
    c->scratch = c->scratch + c->scratch / 4 + 4096;
    c->ts = PyEval_SaveThread();
    ctrgcn_status st = c->be->init(&c->ctx, c->threads);
    if (st == CTRGCN_OK) st = c->be->reserve(c->ctx, c->scratch);
    for (int i = 0; i < c->nb && st == CTRGCN_OK; i++) {
        buf *b = &c->b[i];
        if (!b->host) continue;
        b->dev = c->be->alloc(c->ctx, b->bytes > 64 ? b->bytes : 64);
        if (!b->dev) {
            c->nomem = 1;
            st = CTRGCN_ERR_NOMEM;
            break;
        }
        c->be->upload(c->ctx, b->dev, PyArray_DATA(b->host), b->bytes);
    }
    if (st != CTRGCN_OK) {
        release_backend(c);
        PyEval_RestoreThread(c->ts);
        c->ts = NULL;
        c->failed = 1;
        if (c->nomem)
            PyErr_Format(ctrgcn_ResourceError, "backend_op %s: backend memory exhausted", c->op);
        else
            ctrgcn_py_raise(st);
        return 0;
    }
    for (int i = 0; i < c->nb; i++)
        if (c->b[i].alias >= 0) c->b[i].dev = c->b[c->b[i].alias].dev;
    return 1;
}

/* After the op: sync, download every output, ask the backend whether it all ran (a device
 * failure is raised with the device's message), free, take the GIL back. */
static void done(call *c) {
    c->be->sync(c->ctx);
    for (int i = 0; i < c->nb; i++) {
        buf *b = &c->b[i];
        if (b->out && b->dev) c->be->download(c->ctx, PyArray_DATA(b->out), b->dev, (size_t)PyArray_NBYTES(b->out));
    }
    const ctrgcn_status st = c->be->check(c->ctx);
    release_backend(c);
    PyEval_RestoreThread(c->ts);
    c->ts = NULL;
    if (st != CTRGCN_OK && !c->failed) {
        c->failed = 1;
        ctrgcn_py_raise(st);
    }
}

static int set_extra(call *c, const char *key, PyObject *v) {
    if (!v) {
        c->failed = 1;
        return 0;
    }
    const int r = PyDict_SetItemString(c->extra, key, v);
    Py_DECREF(v);
    if (r < 0) c->failed = 1;
    return r == 0;
}

/* ---- the ops ---------------------------------------------------------------------------------- */
#define DIM(name) ((int)PI(c, name, NO_DEFAULT, 1, 1 << 20))
#define FLAG(name) ((int)PI(c, name, 0, 0, 1))
#define RUN(stmt)         \
    do {                  \
        if (!go(c)) return; \
        stmt;             \
        done(c);          \
    } while (0)

static void op_memory(call *c) {
    const int x = B(c, "x", R_ACC, 'f', 0, P_REQ);
    const long long off = PI(c, "offset", 0, 0, (long long)MAX_ELEMS), cnt = PI(c, "count", 0, 0, (long long)MAX_ELEMS);
    if (!c->failed && c->b[x].host && (size_t)(off + cnt) > (size_t)PyArray_SIZE(c->b[x].host))
        fail(c, "offset + count beyond the array");
    RUN(c->be->zero(c->ctx, F(x) + off, sizeof(float) * (size_t)cnt));
}

static void op_count_nonfinite(call *c) {
    const int x = B(c, "x", R_IN, 'f', 0, P_REQ);
    const long long size = c->failed || !c->b[x].host ? 0 : (long long)PyArray_SIZE(c->b[x].host);
    const long long count = PI(c, "count", size, 0, size);
    size_t bad = 0;
    RUN(bad = c->be->count_nonfinite(c->ctx, F(x), (size_t)count));
    set_extra(c, "count", PyLong_FromSize_t(bad));
}

static void op_lanes(call *c) {
    const int chunks = (int)PI(c, "chunks", NO_DEFAULT, 0, 1 << 16);
    int lanes = 0;
    RUN(lanes = c->be->lanes(c->ctx, chunks));
    if (set_extra(c, "lanes", PyLong_FromLong(lanes))) set_extra(c, "eval_chunk", PyLong_FromLong(c->be->eval_chunk));
}

typedef struct {
    int chunks, lanes;
    int *chunk_lane;
    atomic_int *calls, *busy;
    atomic_int overlaps, bad;
} lane_record;

static void record_lane(void *arg, int chunk, int lane) {
    lane_record *r = arg;
    if (chunk < 0 || chunk >= r->chunks || lane < 0 || lane >= r->lanes) {
        atomic_fetch_add(&r->bad, 1);
        return;
    }
    atomic_fetch_add(&r->calls[chunk], 1);
    r->chunk_lane[chunk] = lane;
    if (atomic_exchange(&r->busy[lane], 1)) atomic_fetch_add(&r->overlaps, 1);
    volatile double s = 0.0; /* a little work, so that concurrent lanes meet */
    for (int i = 0; i < 20000; i++) s += i;
    atomic_store(&r->busy[lane], 0);
}

static void op_run_lanes(call *c) {
    const int chunks = (int)PI(c, "chunks", NO_DEFAULT, 0, 1 << 16);
    const int want = (int)PI(c, "lanes", 0, 0, 256);
    if (!go(c)) return;
    lane_record r = {.chunks = chunks};
    r.lanes = want ? want : c->be->lanes(c->ctx, chunks);
    const int nl = r.lanes > 0 ? r.lanes : 1;
    r.chunk_lane = malloc(sizeof(int) * (size_t)(chunks ? chunks : 1));
    r.calls = malloc(sizeof(atomic_int) * (size_t)(chunks ? chunks : 1));
    r.busy = malloc(sizeof(atomic_int) * (size_t)nl);
    atomic_init(&r.overlaps, 0);
    atomic_init(&r.bad, 0);
    const int ok = r.chunk_lane && r.calls && r.busy;
    if (ok) {
        for (int i = 0; i < chunks; i++) {
            r.chunk_lane[i] = -1;
            atomic_init(&r.calls[i], 0);
        }
        for (int i = 0; i < nl; i++) atomic_init(&r.busy[i], 0);
        c->be->run_lanes(c->ctx, chunks, r.lanes, record_lane, &r);
    }
    done(c);
    if (!ok) {
        PyErr_NoMemory();
        c->failed = 1;
    } else {
        npy_intp dim = chunks;
        PyArrayObject *cl = (PyArrayObject *)PyArray_SimpleNew(1, &dim, NPY_INT32);
        if (cl)
            for (int i = 0; i < chunks; i++) ((int *)PyArray_DATA(cl))[i] = r.chunk_lane[i];
        if (set_extra(c, "chunk_lane", (PyObject *)cl)) {
            PyArrayObject *ca = (PyArrayObject *)PyArray_SimpleNew(1, &dim, NPY_INT32);
            if (ca)
                for (int i = 0; i < chunks; i++) ((int *)PyArray_DATA(ca))[i] = atomic_load(&r.calls[i]);
            if (set_extra(c, "calls", (PyObject *)ca) && set_extra(c, "lanes", PyLong_FromLong(r.lanes)) &&
                set_extra(c, "overlaps", PyLong_FromLong(atomic_load(&r.overlaps))))
                set_extra(c, "bad", PyLong_FromLong(atomic_load(&r.bad)));
        }
    }
    free(r.chunk_lane);
    free(r.calls);
    free(r.busy);
}

/* The layout ops: `out` written from `in`, each N*C*T*V*M values. */
static void layout_op(call *c, void (*op)(backend_ctx *, float *, const float *, int, int, int, int, int),
                      const char *out, const char *in) {
    const int N = DIM("N"), C = DIM("C"), T = DIM("T"), V = DIM("V"), M = DIM("M");
    const size_t total = mul(c, MUL3(c, N, C, T), mul(c, V, M));
    const int y = B(c, out, R_OUT, 'f', total, P_AUTO), x = B(c, in, R_IN, 'f', total, P_REQ);
    RUN(op(c->ctx, F(y), F(x), N, C, T, V, M));
}
static void op_input_forward(call *c) { layout_op(c, c->be->input_forward, "y", "x"); }
static void op_persons_forward(call *c) { layout_op(c, c->be->persons_forward, "y", "x"); }
static void op_persons_backward(call *c) { layout_op(c, c->be->persons_backward, "dx", "dy"); }

static void op_bn_forward(call *c) {
    const int n = DIM("n"), C = DIM("C");
    const size_t L = (size_t)PI(c, "L", NO_DEFAULT, 1, (long long)MAX_ELEMS), CL = mul(c, C, L);
    const size_t ldy = LD(c, "ldy", CL), ldx = LD(c, "ldx", CL);
    const float momentum = (float)PF(c, "momentum", 0.1, 0);
    const int y = B(c, "y", R_OUT, 'f', span(c, n, ldy, CL), P_AUTO), x = B(c, "x", R_IN, 'f', span(c, n, ldx, CL), P_REQ);
    const int g = B(c, "gamma", R_IN, 'f', C, P_REQ), be = B(c, "beta", R_IN, 'f', C, P_REQ);
    const int st = B(c, "stat", R_OUT, 'f', 2 * (size_t)C, P_AUTO);
    const int rm = B(c, "run_mean", R_ACC, 'f', C, P_OPT), rv = B(c, "run_var", R_ACC, 'f', C, P_OPT);
    const size_t ldres = LD(c, "ldres", CL);
    const int res = B(c, "res", R_IN, 'f', span(c, n, ldres, CL), P_OPT);
    const int relu = FLAG("relu");
    if (!c->failed && (c->b[rm].host || c->b[rm].alias_of[0]) != (c->b[rv].host || c->b[rv].alias_of[0]))
        fail(c, "run_mean and run_var go together");
    RUN(c->be->bn_forward(c->ctx, F(y), ldy, F(x), ldx, n, C, L, F(g), F(be), F(st), F(rm), F(rv), momentum, F(res),
                          ldres, relu));
}

static void op_bn_backward(call *c) {
    const int n = DIM("n"), C = DIM("C");
    const size_t L = (size_t)PI(c, "L", NO_DEFAULT, 1, (long long)MAX_ELEMS), CL = mul(c, C, L);
    const size_t lddx = LD(c, "lddx", CL), lddy = LD(c, "lddy", CL), ldx = LD(c, "ldx", CL);
    const int dx = B(c, "dx", R_OUT, 'f', span(c, n, lddx, CL), P_AUTO);
    const int dy = B(c, "dy", R_IN, 'f', span(c, n, lddy, CL), P_REQ), x = B(c, "x", R_IN, 'f', span(c, n, ldx, CL), P_REQ);
    const int g = B(c, "gamma", R_IN, 'f', C, P_REQ), st = B(c, "stat", R_IN, 'f', 2 * (size_t)C, P_REQ);
    const int dg = B(c, "dgamma", R_ACC, 'f', C, P_REQ), db = B(c, "dbeta", R_ACC, 'f', C, P_REQ);
    RUN(c->be->bn_backward(c->ctx, F(dx), lddx, F(dy), lddy, F(x), ldx, n, C, L, F(g), F(st), F(dg), F(db)));
}

static void op_affine_forward(call *c) {
    const int n = DIM("n"), C = DIM("C");
    const size_t L = (size_t)PI(c, "L", NO_DEFAULT, 1, (long long)MAX_ELEMS), CL = mul(c, C, L);
    const size_t ldn = LD(c, "ldn", CL);
    const int y = B(c, "y", R_OUT, 'f', span(c, n, ldn, CL), P_AUTO), x = B(c, "x", R_IN, 'f', span(c, n, ldn, CL), P_REQ);
    const int sc = B(c, "scale", R_IN, 'f', C, P_REQ), sh = B(c, "shift", R_IN, 'f', C, P_REQ);
    RUN(c->be->affine_forward(c->ctx, F(y), F(x), ldn, n, C, L, F(sc), F(sh)));
}

static void op_add_relu_forward(call *c) {
    const size_t n = (size_t)PI(c, "count", NO_DEFAULT, 0, (long long)MAX_ELEMS);
    const int y = B(c, "y", R_OUT, 'f', n, P_AUTO), a = B(c, "a", R_IN, 'f', n, P_REQ), b = B(c, "b", R_IN, 'f', n, P_OPT);
    RUN(c->be->add_relu_forward(c->ctx, F(y), F(a), F(b), n));
}
static void op_relu_backward(call *c) {
    const size_t n = (size_t)PI(c, "count", NO_DEFAULT, 0, (long long)MAX_ELEMS);
    const int dx = B(c, "dx", R_OUT, 'f', n, P_AUTO), dy = B(c, "dy", R_IN, 'f', n, P_REQ);
    const int y = B(c, "y", R_IN, 'f', n, P_REQ);
    RUN(c->be->relu_backward(c->ctx, F(dx), F(dy), F(y), n));
}
static void op_accumulate(call *c) {
    const size_t n = (size_t)PI(c, "count", NO_DEFAULT, 0, (long long)MAX_ELEMS);
    const int d = B(c, "dst", R_ACC, 'f', n, P_REQ), s = B(c, "src", R_IN, 'f', n, P_REQ);
    RUN(c->be->accumulate(c->ctx, F(d), F(s), n));
}

/* n co ci T V stride and the frames out of a 1x1 / max-pool stride */
typedef struct {
    int n, co, ci, T, V, s, To;
    size_t TV, ToV;
} conv_dims;

static conv_dims conv_params(call *c, int temporal) {
    conv_dims d;
    d.n = DIM("n");
    d.co = DIM("co");
    d.ci = DIM("ci");
    d.T = DIM("T");
    d.V = DIM("V");
    d.s = (int)PI(c, "stride", 1, 1, temporal ? 8 : 1 << 20);
    d.To = (d.T - 1) / d.s + 1;
    d.TV = mul(c, d.T, d.V);
    d.ToV = mul(c, d.To, d.V);
    want_scratch(c, mul(c, 4 * (size_t)(d.co > d.ci ? d.co : d.ci), d.TV));
    return d;
}

static void op_conv1x1_forward(call *c) {
    const conv_dims d = conv_params(c, 0);
    const int acc = FLAG("accumulate");
    const size_t ldy = LD(c, "ldy", mul(c, d.co, d.ToV)), ldx = LD(c, "ldx", mul(c, d.ci, d.TV));
    const int y = B(c, "y", acc ? R_ACC : R_OUT, 'f', span(c, d.n, ldy, mul(c, d.co, d.ToV)), acc ? P_REQ : P_AUTO);
    const int x = B(c, "x", R_IN, 'f', span(c, d.n, ldx, mul(c, d.ci, d.TV)), P_REQ);
    const int W = B(c, "W", R_IN, 'f', mul(c, d.co, d.ci), P_REQ), b = B(c, "b", R_IN, 'f', d.co, P_OPT);
    RUN(c->be->conv1x1_forward(c->ctx, F(y), ldy, F(x), ldx, F(W), F(b), d.n, d.co, d.ci, d.T, d.V, d.s, acc));
}

static void op_conv1x1_backward(call *c) {
    const conv_dims d = conv_params(c, 0);
    const size_t X = mul(c, d.ci, d.TV), Y = mul(c, d.co, d.ToV);
    const size_t lddx = LD(c, "lddx", X), lddy = LD(c, "lddy", Y), ldx = LD(c, "ldx", X);
    const int dx = B(c, "dx", R_ACC, 'f', span(c, d.n, lddx, X), P_OPT);
    const int dW = B(c, "dW", R_ACC, 'f', mul(c, d.co, d.ci), P_REQ), db = B(c, "db", R_ACC, 'f', d.co, P_OPT);
    const int dy = B(c, "dy", R_IN, 'f', span(c, d.n, lddy, Y), P_REQ), x = B(c, "x", R_IN, 'f', span(c, d.n, ldx, X), P_REQ);
    const int W = B(c, "W", R_IN, 'f', mul(c, d.co, d.ci), P_REQ);
    RUN(c->be->conv1x1_backward(c->ctx, F(dx), lddx, F(dW), F(db), F(dy), lddy, F(x), ldx, F(W), d.n, d.co, d.ci, d.T,
                                d.V, d.s));
}

static conv_dims tconv_params(call *c, int *k, int *dil) {
    conv_dims d = conv_params(c, 1);
    *k = (int)PI(c, "k", NO_DEFAULT, 1, 64);
    *dil = (int)PI(c, "dil", 1, 1, 64);
    if (c->failed) return d;
    const int pad = (*k - 1) * *dil / 2;
    d.To = (d.T + 2 * pad - *dil * (*k - 1) - 1) / d.s + 1;
    if (d.T + 2 * pad - *dil * (*k - 1) - 1 < 0 || d.To < 1) fail(c, "no output frames (T = %d)", d.T);
    d.ToV = mul(c, d.To, d.V);
    return d;
}

static void op_tconv_forward(call *c) {
    int k, dil;
    const conv_dims d = tconv_params(c, &k, &dil);
    const size_t X = mul(c, d.ci, d.TV), Y = mul(c, d.co, d.ToV);
    const size_t ldy = LD(c, "ldy", Y), ldx = LD(c, "ldx", X);
    const int y = B(c, "y", R_OUT, 'f', span(c, d.n, ldy, Y), P_AUTO), x = B(c, "x", R_IN, 'f', span(c, d.n, ldx, X), P_REQ);
    const int W = B(c, "W", R_IN, 'f', MUL3(c, k, d.co, d.ci), P_REQ), b = B(c, "b", R_IN, 'f', d.co, P_OPT);
    RUN(c->be->tconv_forward(c->ctx, F(y), ldy, F(x), ldx, F(W), F(b), d.n, d.co, d.ci, d.T, d.V, k, dil, d.s));
}

static void op_tconv_backward(call *c) {
    int k, dil;
    const conv_dims d = tconv_params(c, &k, &dil);
    const size_t X = mul(c, d.ci, d.TV), Y = mul(c, d.co, d.ToV);
    const size_t lddx = LD(c, "lddx", X), lddy = LD(c, "lddy", Y), ldx = LD(c, "ldx", X);
    const int dx = B(c, "dx", R_ACC, 'f', span(c, d.n, lddx, X), P_OPT);
    const int dW = B(c, "dW", R_ACC, 'f', MUL3(c, k, d.co, d.ci), P_REQ), db = B(c, "db", R_ACC, 'f', d.co, P_OPT);
    const int dy = B(c, "dy", R_IN, 'f', span(c, d.n, lddy, Y), P_REQ), x = B(c, "x", R_IN, 'f', span(c, d.n, ldx, X), P_REQ);
    const int W = B(c, "W", R_IN, 'f', MUL3(c, k, d.co, d.ci), P_REQ);
    RUN(c->be->tconv_backward(c->ctx, F(dx), lddx, F(dW), F(db), F(dy), lddy, F(x), ldx, F(W), d.n, d.co, d.ci, d.T,
                              d.V, k, dil, d.s));
}

/* n C T V stride of the max-pool and the mean over time */
static conv_dims pool_params(call *c, int strided) {
    conv_dims d;
    d.n = DIM("n");
    d.co = d.ci = DIM("C");
    d.T = DIM("T");
    d.V = DIM("V");
    d.s = strided ? (int)PI(c, "stride", 1, 1, 1 << 20) : 1;
    d.To = (d.T - 1) / d.s + 1;
    d.TV = mul(c, d.T, d.V);
    d.ToV = mul(c, d.To, d.V);
    return d;
}

static void op_maxpool_forward(call *c) {
    const conv_dims d = pool_params(c, 1);
    const size_t X = mul(c, d.ci, d.TV), Y = mul(c, d.co, d.ToV);
    const size_t ldy = LD(c, "ldy", Y), ldx = LD(c, "ldx", X);
    const int y = B(c, "y", R_OUT, 'f', span(c, d.n, ldy, Y), P_AUTO), x = B(c, "x", R_IN, 'f', span(c, d.n, ldx, X), P_REQ);
    const int am = B(c, "argmax", R_OUT, 'i', mul(c, d.n, Y), P_OPT);
    const int sc = B(c, "scale", R_IN, 'f', d.co, P_OPT), sh = B(c, "shift", R_IN, 'f', d.co, P_OPT);
    RUN(c->be->maxpool_forward(c->ctx, F(y), ldy, F(x), ldx, IP(am), F(sc), F(sh), d.n, d.co, d.T, d.V, d.s));
}

static void op_maxpool_backward(call *c) {
    const conv_dims d = pool_params(c, 1);
    const size_t X = mul(c, d.ci, d.TV), Y = mul(c, d.co, d.ToV);
    const size_t lddx = LD(c, "lddx", X), lddy = LD(c, "lddy", Y);
    const int dx = B(c, "dx", R_ACC, 'f', span(c, d.n, lddx, X), P_REQ);
    const int dy = B(c, "dy", R_IN, 'f', span(c, d.n, lddy, Y), P_REQ);
    const int am = B(c, "argmax", R_IN, 'i', mul(c, d.n, Y), P_REQ);
    if (!c->failed && c->b[am].host) {
        const int *a = PyArray_DATA(c->b[am].host);
        const size_t count = mul(c, d.n, Y);
        for (size_t e = 0; e < count && !c->failed; e++)
            if (a[e] < 0 || a[e] >= d.T) fail(c, "argmax holds a frame outside [0, T): %d", a[e]);
    }
    RUN(c->be->maxpool_backward(c->ctx, F(dx), lddx, F(dy), lddy, IP(am), d.n, d.co, d.T, d.V, d.s));
}

static void op_mean_time_forward(call *c) {
    const conv_dims d = pool_params(c, 0);
    const size_t X = mul(c, d.ci, d.TV), ldx = LD(c, "ldx", X);
    const int y = B(c, "y", R_OUT, 'f', MUL3(c, d.n, d.co, d.V), P_AUTO);
    const int x = B(c, "x", R_IN, 'f', span(c, d.n, ldx, X), P_REQ);
    RUN(c->be->mean_time_forward(c->ctx, F(y), F(x), ldx, d.n, d.co, d.T, d.V));
}

static void op_mean_time_backward(call *c) {
    const conv_dims d = pool_params(c, 0);
    const size_t X = mul(c, d.ci, d.TV), lddx = LD(c, "lddx", X);
    const int dx = B(c, "dx", R_ACC, 'f', span(c, d.n, lddx, X), P_REQ);
    const int dy = B(c, "dy", R_IN, 'f', MUL3(c, d.n, d.co, d.V), P_REQ);
    RUN(c->be->mean_time_backward(c->ctx, F(dx), lddx, F(dy), d.n, d.co, d.T, d.V));
}

static void graph_params(call *c, int *n, int *nrel, int *R, int *V, int *C) {
    *n = DIM("n");
    *nrel = (int)PI(c, "nrel", NO_DEFAULT, 1, 3);
    if (C) *C = DIM("C");
    *R = DIM("R");
    *V = (int)PI(c, "V", NO_DEFAULT, 1, CTRGCN_MAX_JOINTS);
    if (C && !c->failed && *nrel != 1 && *nrel != 3) fail(c, "nrel must be 1 or 3 (got %d)", *nrel);
    const size_t VV = (size_t)*V * *V;
    want_scratch(c, mul(c, 4 * VV, (size_t)*nrel * *R + (C ? 3 * (size_t)*C : 0)));
}

static void op_relation_forward(call *c) {
    int n, nrel, R, V;
    graph_params(c, &n, &nrel, &R, &V, NULL);
    const size_t VV = (size_t)V * V;
    const int rel = B(c, "rel", R_OUT, 'f', mul(c, MUL3(c, n, nrel, R), VV), P_AUTO);
    const int qk = B(c, "qk", R_IN, 'f', mul(c, MUL3(c, n, 2 * nrel, R), V), P_REQ);
    RUN(c->be->relation_forward(c->ctx, F(rel), F(qk), n, nrel, R, V));
}

static void op_relation_backward(call *c) {
    int n, nrel, R, V;
    graph_params(c, &n, &nrel, &R, &V, NULL);
    const size_t VV = (size_t)V * V, REL = mul(c, MUL3(c, n, nrel, R), VV);
    const int dqk = B(c, "dqk", R_OUT, 'f', mul(c, MUL3(c, n, 2 * nrel, R), V), P_AUTO);
    const int drel = B(c, "drel", R_IN, 'f', REL, P_REQ), rel = B(c, "rel", R_IN, 'f', REL, P_REQ);
    RUN(c->be->relation_backward(c->ctx, F(dqk), F(drel), F(rel), n, nrel, R, V));
}

static void op_adjacency_forward(call *c) {
    int n, nrel, R, V, C;
    graph_params(c, &n, &nrel, &R, &V, &C);
    const size_t VV = (size_t)V * V, A = mul(c, MUL3(c, n, 3, C), VV);
    const int AT = B(c, "AT", R_OUT, 'f', A, P_AUTO);
    const int rel = B(c, "rel", R_IN, 'f', mul(c, MUL3(c, n, nrel, R), VV), P_REQ);
    const int W4 = B(c, "W4", R_IN, 'f', MUL3(c, 3, C, R), P_REQ), b4 = B(c, "b4", R_IN, 'f', 3 * (size_t)C, P_REQ);
    const int al = B(c, "alpha", R_IN, 'f', 1, P_REQ), PA = B(c, "PA", R_IN, 'f', 3 * VV, P_REQ);
    RUN(c->be->adjacency_forward(c->ctx, F(AT), F(rel), F(W4), F(b4), F(al), F(PA), n, nrel, C, R, V));
}

static void op_adjacency_backward(call *c) {
    int n, nrel, R, V, C;
    graph_params(c, &n, &nrel, &R, &V, &C);
    const size_t VV = (size_t)V * V, A = mul(c, MUL3(c, n, 3, C), VV), REL = mul(c, MUL3(c, n, nrel, R), VV);
    const int drel = B(c, "drel", R_OUT, 'f', REL, P_AUTO);
    const int dW4 = B(c, "dW4", R_ACC, 'f', MUL3(c, 3, C, R), P_REQ), db4 = B(c, "db4", R_ACC, 'f', 3 * (size_t)C, P_REQ);
    const int dal = B(c, "dalpha", R_ACC, 'f', 1, P_REQ), dPA = B(c, "dPA", R_ACC, 'f', 3 * VV, P_REQ);
    const int dAT = B(c, "dAT", R_IN, 'f', A, P_REQ), rel = B(c, "rel", R_IN, 'f', REL, P_REQ);
    const int W4 = B(c, "W4", R_IN, 'f', MUL3(c, 3, C, R), P_REQ), b4 = B(c, "b4", R_IN, 'f', 3 * (size_t)C, P_REQ);
    const int al = B(c, "alpha", R_IN, 'f', 1, P_REQ);
    RUN(c->be->adjacency_backward(c->ctx, F(drel), F(dW4), F(db4), F(dal), F(dPA), F(dAT), F(rel), F(W4), F(b4),
                                  F(al), n, nrel, C, R, V));
}

static void agg_params(call *c, int *n, int *C, int *T, int *V) {
    *n = DIM("n");
    *C = DIM("C");
    *T = DIM("T");
    *V = (int)PI(c, "V", NO_DEFAULT, 1, CTRGCN_MAX_JOINTS);
    want_scratch(c, mul(c, 4 * (size_t)*T, 64 + (size_t)*V * *V));
}

static void op_aggregate_forward(call *c) {
    int n, C, T, V;
    agg_params(c, &n, &C, &T, &V);
    const size_t Y = MUL3(c, C, T, V), VAL = mul(c, 3, Y), A = mul(c, MUL3(c, n, 3, C), (size_t)V * V);
    const int relu = FLAG("relu");
    const size_t ldy = LD(c, "ldy", Y), ldval = LD(c, "ldval", VAL), ldbase = LD(c, "ldbase", Y);
    const int y = B(c, "y", R_OUT, 'f', span(c, n, ldy, Y), P_AUTO);
    const int val = B(c, "val", R_IN, 'f', span(c, n, ldval, VAL), P_REQ), AT = B(c, "AT", R_IN, 'f', A, P_REQ);
    const int base = B(c, "base", R_IN, 'f', span(c, n, ldbase, Y), P_OPT), sh = B(c, "shift", R_IN, 'f', C, P_OPT);
    RUN(c->be->aggregate_forward(c->ctx, F(y), ldy, F(val), ldval, F(AT), F(base), ldbase, F(sh), relu, n, C, T, V));
}

static void op_aggregate_backward(call *c) {
    int n, C, T, V;
    agg_params(c, &n, &C, &T, &V);
    const size_t Y = MUL3(c, C, T, V), VAL = mul(c, 3, Y), A = mul(c, MUL3(c, n, 3, C), (size_t)V * V);
    const size_t lddval = LD(c, "lddval", VAL), lddy = LD(c, "lddy", Y), ldval = LD(c, "ldval", VAL);
    const int dval = B(c, "dval", R_OUT, 'f', span(c, n, lddval, VAL), P_AUTO), dAT = B(c, "dAT", R_OUT, 'f', A, P_AUTO);
    const int dy = B(c, "dy", R_IN, 'f', span(c, n, lddy, Y), P_REQ);
    const int val = B(c, "val", R_IN, 'f', span(c, n, ldval, VAL), P_REQ), AT = B(c, "AT", R_IN, 'f', A, P_REQ);
    RUN(c->be->aggregate_backward(c->ctx, F(dval), lddval, F(dAT), F(dy), lddy, F(val), ldval, F(AT), n, C, T, V));
}

static void op_pool_forward(call *c) {
    const int N = DIM("N"), M = DIM("M"), Fd = DIM("F");
    const size_t L = (size_t)PI(c, "L", NO_DEFAULT, 1, (long long)MAX_ELEMS);
    const int feat = B(c, "feat", R_OUT, 'f', mul(c, N, Fd), P_AUTO);
    const int x = B(c, "x", R_IN, 'f', mul(c, MUL3(c, N, M, Fd), L), P_REQ);
    RUN(c->be->pool_forward(c->ctx, F(feat), F(x), N, M, Fd, L));
}
static void op_pool_backward(call *c) {
    const int N = DIM("N"), M = DIM("M"), Fd = DIM("F");
    const size_t L = (size_t)PI(c, "L", NO_DEFAULT, 1, (long long)MAX_ELEMS);
    const int dx = B(c, "dx", R_OUT, 'f', mul(c, MUL3(c, N, M, Fd), L), P_AUTO);
    const int df = B(c, "dfeat", R_IN, 'f', mul(c, N, Fd), P_REQ);
    RUN(c->be->pool_backward(c->ctx, F(dx), F(df), N, M, Fd, L));
}

static void op_linear_forward(call *c) {
    const int N = DIM("N"), K = DIM("K"), Fd = DIM("F");
    const int y = B(c, "y", R_OUT, 'f', mul(c, N, K), P_AUTO), x = B(c, "x", R_IN, 'f', mul(c, N, Fd), P_REQ);
    const int W = B(c, "W", R_IN, 'f', mul(c, K, Fd), P_REQ), b = B(c, "b", R_IN, 'f', K, P_OPT);
    RUN(c->be->linear_forward(c->ctx, F(y), F(x), F(W), F(b), N, K, Fd));
}
static void op_linear_backward(call *c) {
    const int N = DIM("N"), K = DIM("K"), Fd = DIM("F");
    const int dx = B(c, "dx", R_OUT, 'f', mul(c, N, Fd), P_AUTO);
    const int dW = B(c, "dW", R_ACC, 'f', mul(c, K, Fd), P_REQ), db = B(c, "db", R_ACC, 'f', K, P_REQ);
    const int dy = B(c, "dy", R_IN, 'f', mul(c, N, K), P_REQ), x = B(c, "x", R_IN, 'f', mul(c, N, Fd), P_REQ);
    const int W = B(c, "W", R_IN, 'f', mul(c, K, Fd), P_REQ);
    RUN(c->be->linear_backward(c->ctx, F(dx), F(dW), F(db), F(dy), F(x), F(W), N, K, Fd));
}

static void op_xent_forward(call *c) {
    const int N = DIM("N"), K = DIM("K");
    const int dl = B(c, "dlogits", R_OUT, 'f', mul(c, N, K), P_AUTO);
    const int lg = B(c, "logits", R_IN, 'f', mul(c, N, K), P_REQ), tg = B(c, "targets", R_IN, 'f', mul(c, N, K), P_REQ);
    double loss = NAN;
    int ok = 1;
    if (!go(c)) return;
    double *dev = c->be->alloc(c->ctx, 64);
    if (dev) {
        c->be->upload(c->ctx, dev, &loss, sizeof loss);
        c->be->xent_forward(c->ctx, dev, F(dl), F(lg), F(tg), N, K);
        c->be->sync(c->ctx);
        c->be->download(c->ctx, &loss, dev, sizeof loss);
        c->be->free(c->ctx, dev);
    } else {
        ok = 0;
    }
    done(c);
    if (!ok) {
        PyErr_Format(ctrgcn_ResourceError, "backend_op %s: backend memory exhausted", c->op);
        c->failed = 1;
        return;
    }
    set_extra(c, "loss", PyFloat_FromDouble(loss));
}

static void op_sgd_update(call *c) {
    const size_t n = (size_t)PI(c, "count", NO_DEFAULT, 0, (long long)MAX_ELEMS);
    const float lr = (float)PF(c, "lr", 0.0, 1), mu = (float)PF(c, "momentum", 0.0, 1);
    const float wd = (float)PF(c, "weight_decay", 0.0, 0);
    const int nest = FLAG("nesterov"), first = FLAG("first_step");
    const int p = B(c, "p", R_ACC, 'f', n, P_REQ), g = B(c, "g", R_IN, 'f', n, P_REQ), v = B(c, "v", R_ACC, 'f', n, P_REQ);
    RUN(c->be->sgd_update(c->ctx, F(p), F(g), F(v), n, lr, mu, wd, nest, first));
}

typedef struct {
    const char *name;
    void (*fn)(call *);
} op_entry;

static const op_entry op_table[] = {
    {"memory", op_memory},
    {"count_nonfinite", op_count_nonfinite},
    {"lanes", op_lanes},
    {"run_lanes", op_run_lanes},
    {"input_forward", op_input_forward},
    {"persons_forward", op_persons_forward},
    {"persons_backward", op_persons_backward},
    {"bn_forward", op_bn_forward},
    {"bn_backward", op_bn_backward},
    {"affine_forward", op_affine_forward},
    {"add_relu_forward", op_add_relu_forward},
    {"relu_backward", op_relu_backward},
    {"accumulate", op_accumulate},
    {"conv1x1_forward", op_conv1x1_forward},
    {"conv1x1_backward", op_conv1x1_backward},
    {"tconv_forward", op_tconv_forward},
    {"tconv_backward", op_tconv_backward},
    {"maxpool_forward", op_maxpool_forward},
    {"maxpool_backward", op_maxpool_backward},
    {"mean_time_forward", op_mean_time_forward},
    {"mean_time_backward", op_mean_time_backward},
    {"relation_forward", op_relation_forward},
    {"relation_backward", op_relation_backward},
    {"adjacency_forward", op_adjacency_forward},
    {"adjacency_backward", op_adjacency_backward},
    {"aggregate_forward", op_aggregate_forward},
    {"aggregate_backward", op_aggregate_backward},
    {"pool_forward", op_pool_forward},
    {"pool_backward", op_pool_backward},
    {"linear_forward", op_linear_forward},
    {"linear_backward", op_linear_backward},
    {"xent_forward", op_xent_forward},
    {"sgd_update", op_sgd_update},
};
#define NUM_OPS (sizeof op_table / sizeof op_table[0])

/* ---- the Python functions --------------------------------------------------------------------- */
static const char *const candidate_backends[] = {"cpu", "cuda"};

static PyObject *py_backend_names(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    PyObject *list = PyList_New(0);
    if (!list) return NULL;
    for (size_t i = 0; i < sizeof candidate_backends / sizeof candidate_backends[0]; i++) {
        const ctrgcn_backend *be = backend_find(candidate_backends[i]);
        if (!be) continue;
        PyObject *s = PyUnicode_FromString(be->name);
        if (!s || PyList_Append(list, s) < 0) {
            Py_XDECREF(s);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(s);
    }
    ctrgcn_clear_error(); /* backend_find left a message for the names it lacks */
    return list;
}

static PyObject *py_cuda_info(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    int built = 0, devices = 0;
    const char *why = "";
    Py_BEGIN_ALLOW_THREADS /* the first call opens the library and starts the CUDA runtime */
    backend_cuda_info(&built, &devices, &why);
    Py_END_ALLOW_THREADS
    return Py_BuildValue("{s:O,s:i,s:s}", "built", built ? Py_True : Py_False, "devices", devices, "reason",
                         devices ? "" : why);
}

static PyObject *py_backend_op_names(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    PyObject *list = PyList_New((Py_ssize_t)NUM_OPS);
    if (!list) return NULL;
    for (size_t i = 0; i < NUM_OPS; i++) {
        PyObject *s = PyUnicode_FromString(op_table[i].name);
        if (!s) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, s);
    }
    return list;
}

static PyObject *py_backend_op(PyObject *self, PyObject *args, PyObject *kwargs) {
    (void)self;
    static char *kwlist[] = {"backend", "op", "threads", "arrays", "params", NULL};
    const char *backend, *op;
    int threads;
    PyObject *arrays, *params = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "ssiO|O:backend_op", kwlist, &backend, &op, &threads, &arrays,
                                     &params))
        return NULL;
    if (!PyDict_Check(arrays)) return ctrgcn_py_input_error("backend_op %s: arrays must be a dict", op);
    if (params == Py_None) params = NULL;
    if (params && !PyDict_Check(params)) return ctrgcn_py_input_error("backend_op %s: params must be a dict", op);
    if (threads < 0 || threads > 256) return ctrgcn_py_input_error("backend_op %s: threads out of range", op);
    const ctrgcn_backend *be = backend_find(backend);
    if (!be) return ctrgcn_py_raise(CTRGCN_ERR_ARGUMENT);
    const op_entry *entry = NULL;
    for (size_t i = 0; i < NUM_OPS && !entry; i++)
        if (strcmp(op_table[i].name, op) == 0) entry = &op_table[i];
    if (!entry) return ctrgcn_py_input_error("backend_op: unknown op '%s'", op);

    call *c = calloc(1, sizeof *c);
    if (!c) return PyErr_NoMemory();
    c->op = entry->name;
    c->be = be;
    c->threads = threads;
    c->arrays = arrays;
    c->params = params;
    c->extra = PyDict_New();
    if (!c->extra) {
        free(c);
        return NULL;
    }
    entry->fn(c);
    PyObject *result = NULL;
    if (!c->failed) {
        result = c->extra;
        c->extra = NULL;
        for (int i = 0; i < c->nb && result; i++)
            if (c->b[i].out && PyDict_SetItemString(result, c->b[i].name, (PyObject *)c->b[i].out) < 0)
                Py_CLEAR(result);
    }
    Py_XDECREF(c->extra);
    drop(c);
    free(c);
    return result;
}

PyMethodDef ctrgcn_backend_op_methods[] = {
    {"backend_names", py_backend_names, METH_NOARGS, "backend_names() -> list of the registered backends' names."},
    {"cuda_info", py_cuda_info, METH_NOARGS,
     "cuda_info() -> {'built': bool, 'devices': int, 'reason': str}: the CUDA backend's library and devices."},
    {"backend_op_names", py_backend_op_names, METH_NOARGS, "backend_op_names() -> the ops backend_op runs."},
    {"backend_op", (PyCFunction)(void (*)(void))py_backend_op, METH_VARARGS | METH_KEYWORDS,
     "backend_op(backend, op, threads, arrays, params=None) -> dict: run one op of a backend on NumPy arrays "
     "(the test hook of the backend-ops suite; see csrc/python/ops.c)."},
    {NULL, NULL, 0, NULL}};

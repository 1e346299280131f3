/* Data-preparation functions of ctrgcn._core (skeleton readers, augmentation, batching).
 * Thin: convert and check arrays, release the GIL around the C work, build the results. */
#include "python/binding.h"

#include <string.h>

#include "ctrgcn_data.h"

static PyObject *f32_array(int nd, const npy_intp *dims, const float *src) {
    PyObject *a = PyArray_SimpleNew(nd, (npy_intp *)dims, NPY_FLOAT32);
    if (a && src) memcpy(PyArray_DATA((PyArrayObject *)a), src, (size_t)PyArray_NBYTES((PyArrayObject *)a));
    return a;
}

static PyObject *i64_range(int n, int first, const int *values) {
    npy_intp dims[1] = {n};
    PyObject *a = PyArray_SimpleNew(1, dims, NPY_INT64);
    if (!a) return NULL;
    int64_t *p = PyArray_DATA((PyArrayObject *)a);
    for (int i = 0; i < n; i++) p[i] = values ? values[i] : first + i;
    return a;
}

static PyObject *int_list(int n, const int *values) {
    PyObject *l = PyList_New(n);
    for (int i = 0; l && i < n; i++) {
        PyObject *v = PyLong_FromLong(values[i]);
        if (!v) {
            Py_CLEAR(l);
            break;
        }
        PyList_SET_ITEM(l, i, v);
    }
    return l;
}

/* Set d[key] = value and drop the reference; 0 on failure (also when value is NULL). */
static int put(PyObject *d, const char *key, PyObject *value) {
    if (!value) return 0;
    const int rc = PyDict_SetItemString(d, key, value);
    Py_DECREF(value);
    return rc == 0;
}

static PyObject *skeleton_dict(const ctrgcn_ntu_skeleton *sk) {
    PyObject *d = PyDict_New(), *bodies = d ? PyList_New(sk->num_bodies) : NULL;
    if (!bodies) goto fail;
    for (int b = 0; b < sk->num_bodies; b++) {
        const ctrgcn_ntu_body *body = &sk->bodies[b];
        const npy_intp jd[3] = {body->num_frames, 25, 3}, cd[3] = {body->num_frames, 25, 2};
        PyObject *bd = PyDict_New();
        if (!bd) goto fail;
        PyList_SET_ITEM(bodies, b, bd);
        if (!put(bd, "id", PyUnicode_DecodeLatin1(body->id, (Py_ssize_t)strlen(body->id), NULL)) ||
            !put(bd, "joints", f32_array(3, jd, body->joints)) || !put(bd, "colors", f32_array(3, cd, body->colors)) ||
            !put(bd, "interval", i64_range(body->num_frames, body->first, NULL)) ||
            !put(bd, "frames", i64_range(body->num_frames, 0, body->frames)) ||
            !put(bd, "motion", body->has_motion ? PyFloat_FromDouble(body->motion) : Py_NewRef(Py_None)))
            goto fail;
    }
    if (!put(d, "num_frames_in_file", PyLong_FromLong(sk->num_frames_in_file)) ||
        !put(d, "num_frames", PyLong_FromLong(sk->num_frames)) ||
        !put(d, "frames_drop", i64_range(sk->num_dropped, 0, sk->dropped)) || !put(d, "bodies", bodies))
        goto fail_d;
    return d;
fail:
    Py_XDECREF(bodies);
fail_d:
    Py_XDECREF(d);
    return NULL;
}

static int add_denoised(PyObject *d, const ctrgcn_ntu_denoised *dn, int num_bodies) {
    const npy_intp jd[2] = {dn->num_frames, 75 * dn->num_actors};
    const npy_intp cd[4] = {dn->color_frames, dn->num_actors, 25, 2};
    PyObject *motion = PyList_New(num_bodies);
    for (int b = 0; motion && b < num_bodies; b++) PyList_SET_ITEM(motion, b, PyFloat_FromDouble(dn->motion[b]));
    return put(d, "denoised", f32_array(2, jd, dn->joints)) && put(d, "denoised_colors", f32_array(4, cd, dn->colors)) &&
           put(d, "num_actors", PyLong_FromLong(dn->num_actors)) &&
           put(d, "actor1", int_list(dn->num_actor1, dn->actor1)) &&
           put(d, "actor2", int_list(dn->num_actor2, dn->actor2)) && put(d, "denoised_motion", motion) &&
           put(d, "body_dropped", int_list(num_bodies, dn->dropped)) &&
           put(d, "frames_removed", PyLong_FromLong(dn->num_removed)) &&
           put(d, "actors_info", dn->info ? PyUnicode_DecodeLatin1(dn->info, (Py_ssize_t)strlen(dn->info), NULL)
                                          : Py_NewRef(Py_None));
}

/* prepare_skeleton(path, stage) -> dict: stage 0 parse, 1 + denoise, 2 + translate. */
static PyObject *data_prepare_skeleton(PyObject *self, PyObject *args) {
    PyObject *path_bytes = NULL;
    int stage = 0;
    if (!PyArg_ParseTuple(args, "O&|i", PyUnicode_FSConverter, &path_bytes, &stage)) return NULL;
    if (stage < 0 || stage > 2) {
        Py_DECREF(path_bytes);
        return ctrgcn_py_input_error("stage must be 0 (parse), 1 (denoise) or 2 (translate)");
    }
    const char *path = PyBytes_AS_STRING(path_bytes);
    ctrgcn_ntu_skeleton sk;
    ctrgcn_ntu_denoised dn;
    memset(&dn, 0, sizeof dn);
    float *aligned = NULL, origin[3] = {0, 0, 0};
    int origin_frame = 0;
    ctrgcn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = ctrgcn_ntu_skeleton_read(&sk, path);
    if (!st && stage >= 1) st = ctrgcn_ntu_denoise(&dn, &sk);
    if (!st && stage >= 2) {
        const size_t n = (size_t)dn.num_frames * 75 * dn.num_actors;
        aligned = malloc(sizeof(float) * n);
        if (!aligned) st = CTRGCN_ERR_NOMEM;
        else {
            memcpy(aligned, dn.joints, sizeof(float) * n);
            st = ctrgcn_ntu_translate(aligned, dn.num_frames, 75 * dn.num_actors, &origin_frame, origin);
        }
    }
    Py_END_ALLOW_THREADS
    PyObject *result = NULL;
    if (st) {
        if (st == CTRGCN_ERR_NOMEM && !aligned && stage >= 2)
            PyErr_Format(ctrgcn_ResourceError, "file '%s': out of memory translating the sample", path);
        else if (stage >= 1 && st != CTRGCN_OK && sk.num_bodies > 0) {
            /* a failure after parsing: name the file, the C message does not know it */
            PyErr_Format(st == CTRGCN_ERR_NOMEM ? ctrgcn_ResourceError : ctrgcn_InputError, "file '%s': %s", path,
                         ctrgcn_last_error());
        } else {
            ctrgcn_py_raise(st);
        }
        goto done;
    }
    result = skeleton_dict(&sk);
    if (result && stage >= 1 && !add_denoised(result, &dn, sk.num_bodies)) Py_CLEAR(result);
    if (result && stage >= 2) {
        const npy_intp ad[2] = {dn.num_frames, 75 * dn.num_actors}, od[1] = {3};
        if (!put(result, "aligned", f32_array(2, ad, aligned)) || !put(result, "origin", f32_array(1, od, origin)) ||
            !put(result, "origin_frame", PyLong_FromLong(origin_frame)))
            Py_CLEAR(result);
    }
done:
    free(aligned);
    ctrgcn_ntu_denoised_free(&dn);
    ctrgcn_ntu_skeleton_free(&sk);
    Py_DECREF(path_bytes);
    return result;
}

/* An existing C-contiguous array of one dtype, never a copy of a (possibly memory-mapped) data set. */
static PyArrayObject *exact_array(PyObject *obj, int type, int ndim, const char *what) {
    if (!PyArray_Check(obj) || PyArray_TYPE((PyArrayObject *)obj) != type || PyArray_NDIM((PyArrayObject *)obj) != ndim ||
        !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)obj) || !PyArray_ISALIGNED((PyArrayObject *)obj)) {
        ctrgcn_py_input_error("%s: expected a C-contiguous %s array of %d dimensions", what,
                              type == NPY_FLOAT32 ? "float32" : type == NPY_FLOAT64 ? "float64" : "int64", ndim);
        return NULL;
    }
    Py_INCREF(obj);
    return (PyArrayObject *)obj;
}

static PyArrayObject *index_array(PyObject *obj) {
    PyArrayObject *a = (PyArrayObject *)PyArray_FROM_OTF(obj, NPY_INT64, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
    if (!a) {
        PyErr_Clear();
        return (PyArrayObject *)ctrgcn_py_input_error("indices: expected integers");
    }
    if (PyArray_NDIM(a) != 1) {
        Py_DECREF(a);
        return (PyArrayObject *)ctrgcn_py_input_error("indices: expected one dimension");
    }
    return a;
}

/* The float32 batch [B][C][window][V][M] for the B indices, once window and B are in range; NULL
 * with the error raised otherwise. */
static PyObject *batch_array(PyArrayObject *idx, int window, npy_intp C, npy_intp V, npy_intp M) {
    if (window < 1 || window > 4096) return ctrgcn_py_input_error("window must be 1..4096");
    const npy_intp B = PyArray_DIM(idx, 0), dims[5] = {B, C, window, V, M};
    if (B > (1 << 24)) return ctrgcn_py_input_error("batch too large");
    return PyArray_SimpleNew(5, (npy_intp *)dims, NPY_FLOAT32);
}

/* ntu_batch(data[N,3,T,25,M] f32, indices, seed, train, window, p_lo, p_hi, test_p, min_length,
 *           theta, modality) -> [B,3,window,25,M] f32 */
static PyObject *data_ntu_batch(PyObject *self, PyObject *args) {
    PyObject *data_o, *idx_o;
    unsigned long long seed;
    ctrgcn_ntu_aug aug;
    if (!PyArg_ParseTuple(args, "OOKpidddidi", &data_o, &idx_o, &seed, &aug.train, &aug.window, &aug.p_lo, &aug.p_hi,
                          &aug.test_p, &aug.min_length, &aug.theta, &aug.modality))
        return NULL;
    PyArrayObject *data = exact_array(data_o, NPY_FLOAT32, 5, "data"), *idx = data ? index_array(idx_o) : NULL;
    PyObject *out = NULL;
    if (!data || !idx) goto done;
    const npy_intp N = PyArray_DIM(data, 0), T = PyArray_DIM(data, 2), M = PyArray_DIM(data, 4);
    if (PyArray_DIM(data, 1) != 3 || PyArray_DIM(data, 3) != 25 || T < 1 || T > (1 << 20) || M < 1 || M > 16) {
        ctrgcn_py_input_error("data: expected (N, 3, T, 25, M) with M 1..16");
        goto done;
    }
    if (!(out = batch_array(idx, aug.window, 3, 25, M))) goto done;
    ctrgcn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = ctrgcn_ntu_batch(PyArray_DATA((PyArrayObject *)out), PyArray_DATA(data), N, (int)T, (int)M,
                          PyArray_DATA(idx), (int)PyArray_DIM(idx, 0), (uint64_t)seed, &aug);
    Py_END_ALLOW_THREADS
    if (st) {
        Py_CLEAR(out);
        ctrgcn_py_raise(st);
    }
done:
    Py_XDECREF(data);
    Py_XDECREF(idx);
    return out;
}

/* ucla_batch(pool[F,20,3] f64, offsets i64, lengths i64, indices, train, seed, modality, steps)
 *   -> [B,3,steps,20,1] f32 */
static PyObject *data_ucla_batch(PyObject *self, PyObject *args) {
    PyObject *pool_o, *off_o, *len_o, *idx_o;
    int train, modality, steps;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "OOOOpKii", &pool_o, &off_o, &len_o, &idx_o, &train, &seed, &modality, &steps))
        return NULL;
    PyArrayObject *pool = exact_array(pool_o, NPY_FLOAT64, 3, "pool");
    PyArrayObject *off = pool ? exact_array(off_o, NPY_INT64, 1, "offsets") : NULL;
    PyArrayObject *len = off ? exact_array(len_o, NPY_INT64, 1, "lengths") : NULL;
    PyArrayObject *idx = len ? index_array(idx_o) : NULL;
    PyObject *out = NULL;
    if (!idx) goto done;
    if (PyArray_DIM(pool, 1) != 20 || PyArray_DIM(pool, 2) != 3 || PyArray_DIM(off, 0) != PyArray_DIM(len, 0) ||
        PyArray_DIM(off, 0) < 1) {
        ctrgcn_py_input_error("pool must be (frames, 20, 3), offsets and lengths of one non-zero size");
        goto done;
    }
    if (steps < 1 || steps > 100) {
        ctrgcn_py_input_error("steps must be 1..100");
        goto done;
    }
    const npy_intp B = PyArray_DIM(idx, 0), dims[5] = {B, 3, steps, 20, 1};
    if (!(out = PyArray_SimpleNew(5, (npy_intp *)dims, NPY_FLOAT32))) goto done;
    ctrgcn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = ctrgcn_ucla_batch(PyArray_DATA((PyArrayObject *)out), steps, PyArray_DATA(pool), PyArray_DIM(pool, 0),
                           PyArray_DATA(off), PyArray_DATA(len), PyArray_DIM(off, 0), PyArray_DATA(idx), (int)B, train,
                           (uint64_t)seed, modality);
    Py_END_ALLOW_THREADS
    if (st) {
        Py_CLEAR(out);
        ctrgcn_py_raise(st);
    }
done:
    Py_XDECREF(pool);
    Py_XDECREF(off);
    Py_XDECREF(len);
    Py_XDECREF(idx);
    return out;
}

/* parents (None, or int64 [V] with 0 <= parent[v] < V) -> a malloc'd int array, or NULL with
 * *ok set: 1 when parents is None, 0 on an error (raised). */
static int *parent_array(PyObject *obj, int V, int *ok) {
    *ok = 0;
    if (obj == Py_None) {
        *ok = 1;
        return NULL;
    }
    PyArrayObject *a = exact_array(obj, NPY_INT64, 1, "parents");
    if (!a) return NULL;
    int *parent = NULL;
    if (PyArray_DIM(a, 0) != V) {
        ctrgcn_py_input_error("parents: %ld entries for %d joints", (long)PyArray_DIM(a, 0), V);
        goto done;
    }
    const int64_t *p = PyArray_DATA(a);
    for (int v = 0; v < V; v++)
        if (p[v] < 0 || p[v] >= V) {
            ctrgcn_py_input_error("parents[%d] = %lld lies outside 0..%d", v, (long long)p[v], V - 1);
            goto done;
        }
    if (!(parent = PyMem_Malloc(sizeof(int) * (size_t)(V ? V : 1)))) {
        PyErr_NoMemory();
        goto done;
    }
    for (int v = 0; v < V; v++) parent[v] = (int)p[v];
    *ok = 1;
done:
    Py_DECREF(a);
    return parent;
}

static int modality_code(const char *name) {
    static const char *names[4] = {"joint", "bone", "motion", "bone_motion"};
    for (int k = 0; k < 4; k++)
        if (strcmp(name, names[k]) == 0) return k;
    ctrgcn_py_input_error("unknown modality '%s' (joint, bone, motion, bone_motion)", name);
    return -1;
}

/* modality(x[C,T,V,M], name, parents) -> new array: "joint", "bone", "motion", "bone_motion";
 * parents (int64 [V]) is needed by the bone modalities only. */
static PyObject *data_modality(PyObject *self, PyObject *args) {
    PyObject *xo, *parents_o;
    const char *name;
    if (!PyArg_ParseTuple(args, "OsO", &xo, &name, &parents_o)) return NULL;
    const int modality = modality_code(name);
    if (modality < 0) return NULL;
    PyArrayObject *x = ctrgcn_py_float_array(xo, 4, "x");
    if (!x) return NULL;
    const int C = (int)PyArray_DIM(x, 0), T = (int)PyArray_DIM(x, 1), V = (int)PyArray_DIM(x, 2),
              M = (int)PyArray_DIM(x, 3);
    PyObject *out = NULL;
    float *scratch = NULL;
    int ok;
    int *parent = parent_array(parents_o, V, &ok);
    if (!ok) goto done;
    if (!parent && (modality == CTRGCN_MODALITY_BONE || modality == CTRGCN_MODALITY_BONE_MOTION)) {
        ctrgcn_py_input_error("the %s modality needs the skeleton's parents", name);
        goto done;
    }
    out = PyArray_NewCopy(x, NPY_CORDER);
    scratch = out ? PyMem_Malloc(sizeof(float) * ((size_t)PyArray_SIZE(x) + 1)) : NULL;
    if (!out || !scratch) {
        Py_CLEAR(out);
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    ctrgcn_apply_modality(PyArray_DATA((PyArrayObject *)out), scratch, modality, C, T, V, M, parent);
    Py_END_ALLOW_THREADS
done:
    PyMem_Free(scratch);
    PyMem_Free(parent);
    Py_DECREF(x);
    return out;
}

/* seq_batch(pool[F,M,V,C] f32, offsets i64, lengths i64, indices, seed, train, window, p_lo, p_hi, test_p,
 *           min_length, theta, modality, parents i64[V] or None) -> [B,C,window,V,M] f32 */
static PyObject *data_seq_batch(PyObject *self, PyObject *args) {
    PyObject *pool_o, *off_o, *len_o, *idx_o, *parents_o;
    unsigned long long seed;
    ctrgcn_ntu_aug aug;
    const char *modality;
    if (!PyArg_ParseTuple(args, "OOOOKpidddidsO", &pool_o, &off_o, &len_o, &idx_o, &seed, &aug.train, &aug.window,
                          &aug.p_lo, &aug.p_hi, &aug.test_p, &aug.min_length, &aug.theta, &modality, &parents_o))
        return NULL;
    if ((aug.modality = modality_code(modality)) < 0) return NULL;
    PyArrayObject *pool = exact_array(pool_o, NPY_FLOAT32, 4, "pool");
    PyArrayObject *off = pool ? exact_array(off_o, NPY_INT64, 1, "offsets") : NULL;
    PyArrayObject *len = off ? exact_array(len_o, NPY_INT64, 1, "lengths") : NULL;
    PyArrayObject *idx = len ? index_array(idx_o) : NULL;
    PyObject *out = NULL;
    int *parent = NULL, ok = 0;
    if (!idx) goto done;
    const npy_intp M = PyArray_DIM(pool, 1), V = PyArray_DIM(pool, 2), C = PyArray_DIM(pool, 3);
    if (M < 1 || M > 16 || V < 1 || V > 4096 || C < 1 || C > 64 || PyArray_DIM(off, 0) != PyArray_DIM(len, 0) ||
        PyArray_DIM(off, 0) < 1) {
        ctrgcn_py_input_error("pool must be (frames, persons 1..16, joints, channels), offsets and lengths of one "
                              "non-zero size");
        goto done;
    }
    parent = parent_array(parents_o, (int)V, &ok);
    if (!ok || !(out = batch_array(idx, aug.window, C, V, M))) goto done;
    ctrgcn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = ctrgcn_seq_batch(PyArray_DATA((PyArrayObject *)out), PyArray_DATA(pool), PyArray_DIM(pool, 0), (int)M, (int)V,
                          (int)C, PyArray_DATA(off), PyArray_DATA(len), PyArray_DIM(off, 0), PyArray_DATA(idx),
                          (int)PyArray_DIM(idx, 0), (uint64_t)seed, &aug, parent);
    Py_END_ALLOW_THREADS
    if (st) {
        Py_CLEAR(out);
        ctrgcn_py_raise(st);
    }
done:
    PyMem_Free(parent);
    Py_XDECREF(pool);
    Py_XDECREF(off);
    Py_XDECREF(len);
    Py_XDECREF(idx);
    return out;
}

PyMethodDef ctrgcn_data_methods[] = {
    {"data_seq_batch", data_seq_batch, METH_VARARGS,
     "data_seq_batch(pool[F,M,V,C], offsets, lengths, indices, seed, train, window, p_lo, p_hi, test_p, min_length, "
     "theta, modality, parents) -> x[B,C,window,V,M]"},
    {"data_prepare_skeleton", data_prepare_skeleton, METH_VARARGS,
     "data_prepare_skeleton(path, stage=0) -> dict: parse an NTU .skeleton file (stage 0), denoise (1), "
     "translate (2)."},
    {"data_ntu_batch", data_ntu_batch, METH_VARARGS,
     "data_ntu_batch(data, indices, seed, train, window, p_lo, p_hi, test_p, min_length, theta, modality) -> x"},
    {"data_ucla_batch", data_ucla_batch, METH_VARARGS,
     "data_ucla_batch(pool, offsets, lengths, indices, train, seed, modality, steps) -> x"},
    {"data_modality", data_modality, METH_VARARGS, "data_modality(x[C,T,V,M], name, parents int64[V] or None) -> x"},
    {NULL, NULL, 0, NULL}};

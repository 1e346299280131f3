/* The project's single-file format.
 *
 *   magic "CTRGCN\0\1" | u32 format version | spec (i32 fields, then the edge list) |
 *   u32 tensor count | per tensor: u16 name length, name, u8 dtype, u8 ndim, u32 shape[ndim], data |
 *   [version 4: u32 class count (= num_classes) | per class: u16 name length, UTF-8 name] |
 *   u32 CRC-32 of every byte before it.
 *
 * Little-endian throughout. Tensor data by dtype:
 *   0 float32: numel x f32.
 *   1 float16: numel x IEEE binary16 (rounded to nearest even when written).
 *   2 int8:    shape[0] x f32 scales, then numel x i8; value = q * scale of its output channel
 *              (symmetric, per first dimension). Only convolution weights and fc.weight use it.
 * A file that uses only float32 is written as format version 1 (readable by every build); one with
 * float16 or int8 tensors as version 2, a custom architecture as version 3, and a model that carries
 * class names as version 4 (so a file without names stays readable by builds that predate them).
 * Loading dequantises into float32.
 * The whole file is read and its checksum verified before anything is parsed, and every read is
 * bounds-checked, so a truncated or corrupted file is an error, never a crash. Saving goes through a
 * temporary file and a rename, so a failed save leaves the old file as it was. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/model.h"

static const unsigned char MAGIC[8] = {'C', 'T', 'R', 'G', 'C', 'N', 0, 1};
#define FORMAT_VERSION 1u          /* float32 only */
#define FORMAT_VERSION_TYPED 2u    /* float16 / int8 tensors present */
#define FORMAT_VERSION_SPEC 3u     /* the architecture itself follows the graph (what this build writes) */
#define FORMAT_VERSION_NAMES 4u    /* version 3 plus the class names after the tensors */
#define MAX_FILE_BYTES ((size_t)1 << 32)

static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32_of(const unsigned char *p, size_t n) {
    if (!crc_table[1]) crc_init();
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* ---- writing into a growing buffer ---- */
typedef struct {
    unsigned char *p;
    size_t n, cap;
    int failed;
} wbuf;

static void put(wbuf *b, const void *src, size_t n) {
    if (b->failed) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) {
            b->failed = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_u32(wbuf *b, uint32_t v) {
    unsigned char c[4] = {v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF, v >> 24};
    put(b, c, 4);
}

static void put_f32s(wbuf *b, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        put_u32(b, u);
    }
}

/* ---- half precision, bit-exact and independent of the compiler's _Float16 support ---- */
/* Round to nearest even; 0 when the value is not finite or beyond the float16 range. */
static int f32_to_f16(float f, uint16_t *out) {
    uint32_t x;
    memcpy(&x, &f, 4);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    const uint32_t ax = x & 0x7FFFFFFFu;
    if (ax >= 0x477FF000u) return 0; /* >= 65520 rounds to infinity; also inf and NaN */
    if (ax < 0x38800000u) {          /* below 2^-14: a subnormal half (or zero) */
        float a;
        memcpy(&a, &ax, 4);
        *out = sign | (uint16_t)lrintf(a * 16777216.0f); /* units of 2^-24; 1024 is the smallest normal */
        return 1;
    }
    uint32_t h = ((ax >> 23) - 127 + 15) << 10 | (ax & 0x7FFFFFu) >> 13;
    const uint32_t rest = ax & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++; /* a carry moves into the exponent */
    *out = sign | (uint16_t)h;
    return 1;
}

/* 0 for infinities and NaN, which no weight file may hold. */
static int f16_to_f32(uint16_t h, float *out) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
    if (e == 31) return 0;
    if (e == 0) {
        const float v = ldexpf((float)mant, -24);
        *out = sign ? -v : v;
        return 1;
    }
    const uint32_t x = sign | (e - 15 + 127) << 23 | mant << 13;
    memcpy(out, &x, 4);
    return 1;
}

/* Which dtype a tensor is stored in under a requested file dtype: int8 applies to the weights of
 * convolutions (4-D) and of the classifier; everything else stays float32. */
static int stored_dtype(const ctrgcn_model *m, int index, int dtype) {
    if (dtype == CTRGCN_DTYPE_INT8)
        return (m->tensors[index].ndim == 4 || index == m->fc_w) ? CTRGCN_DTYPE_INT8 : CTRGCN_DTYPE_FLOAT32;
    return dtype;
}

static ctrgcn_status put_tensor_data(wbuf *b, const tensor_entry *t, const float *x, int dtype) {
    if (dtype == CTRGCN_DTYPE_FLOAT32) {
        put_f32s(b, x, t->numel);
        return CTRGCN_OK;
    }
    if (dtype == CTRGCN_DTYPE_FLOAT16) {
        for (size_t i = 0; i < t->numel; i++) {
            uint16_t h;
            if (!f32_to_f16(x[i], &h))
                return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "tensor '%s' holds %g, outside the float16 range", t->name,
                                   (double)x[i]);
            const unsigned char c[2] = {h & 0xFF, h >> 8};
            put(b, c, 2);
        }
        return CTRGCN_OK;
    }
    /* int8, symmetric per output channel: scale = max|w| / 127, q = round(w / scale) */
    const size_t rows = (size_t)t->shape[0], cols = rows ? t->numel / rows : 0;
    float *scales = malloc(sizeof(float) * (rows ? rows : 1));
    signed char *q = malloc(t->numel ? t->numel : 1);
    if (!scales || !q) {
        free(scales);
        free(q);
        b->failed = 1;
        return CTRGCN_OK;
    }
    for (size_t r = 0; r < rows; r++) {
        const float *w = x + r * cols;
        float amax = 0.0f;
        for (size_t j = 0; j < cols; j++) amax = fmaxf(amax, fabsf(w[j]));
        if (!isfinite(amax)) {
            free(scales);
            free(q);
            return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "tensor '%s' holds non-finite values", t->name);
        }
        scales[r] = amax > 0.0f ? amax / 127.0f : 1.0f;
        for (size_t j = 0; j < cols; j++) {
            long v = lrintf(w[j] / scales[r]);
            q[r * cols + j] = (signed char)(v > 127 ? 127 : v < -127 ? -127 : v);
        }
    }
    put_f32s(b, scales, rows);
    put(b, q, t->numel);
    free(scales);
    free(q);
    return CTRGCN_OK;
}

ctrgcn_status ctrgcn_model_save_as(const ctrgcn_model *m, const char *path, int dtype) {
    if (!m || !path) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL argument to save");
    if (dtype != CTRGCN_DTYPE_FLOAT32 && dtype != CTRGCN_DTYPE_FLOAT16 && dtype != CTRGCN_DTYPE_INT8)
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "unknown file dtype %d (0 float32, 1 float16, 2 int8)", dtype);
    wbuf b = {0};
    const ctrgcn_spec *s = &m->spec;
    put(&b, MAGIC, sizeof MAGIC);
    put_u32(&b, m->class_names ? FORMAT_VERSION_NAMES : FORMAT_VERSION_SPEC);
    const int fields[] = {s->variant, s->num_classes, s->num_joints, s->num_person, s->in_channels,
                          s->base_channel, s->num_edges};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) put_u32(&b, (uint32_t)fields[i]);
    for (int e = 0; e < s->num_edges; e++) {
        put_u32(&b, (uint32_t)s->edges[e][0]);
        put_u32(&b, (uint32_t)s->edges[e][1]);
    }
    const int arch[] = {s->conv, s->relation, s->rel_reduction, s->rel_small};
    for (size_t i = 0; i < sizeof arch / sizeof arch[0]; i++) put_u32(&b, (uint32_t)arch[i]);
    for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) {
        const ctrgcn_block_spec *bs = &s->blocks[k];
        const int f[] = {bs->out_channels, bs->stride,         bs->spatial,         bs->gcn_width,
                         bs->kernel_size,  bs->dilations[0], bs->dilations[1]};
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) put_u32(&b, (uint32_t)f[i]);
    }
    put_u32(&b, (uint32_t)m->num_tensors);
    for (int i = 0; i < m->num_tensors; i++) {
        const tensor_entry *t = &m->tensors[i];
        const size_t len = strlen(t->name);
        const int td = stored_dtype(m, i, dtype);
        unsigned char hdr[4] = {len & 0xFF, len >> 8, (unsigned char)td, (unsigned char)t->ndim};
        put(&b, hdr, 2);
        put(&b, t->name, len);
        put(&b, hdr + 2, 2);
        for (int d = 0; d < t->ndim; d++) put_u32(&b, (uint32_t)t->shape[d]);
        const ctrgcn_status st = put_tensor_data(&b, t, m->params + t->offset, td);
        if (st != CTRGCN_OK) {
            free(b.p);
            return st;
        }
    }
    if (m->class_names) {
        put_u32(&b, (uint32_t)s->num_classes);
        for (int k = 0; k < s->num_classes; k++) {
            const size_t len = strlen(m->class_names[k]);
            const unsigned char c[2] = {len & 0xFF, len >> 8};
            put(&b, c, 2);
            put(&b, m->class_names[k], len);
        }
    }
    if (b.failed) {
        free(b.p);
        return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory serialising the model");
    }
    put_u32(&b, crc32_of(b.p, b.n));
    if (b.failed) {
        free(b.p);
        return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory serialising the model");
    }

    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        free(b.p);
        return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "path too long");
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        free(b.p);
        return ctrgcn_fail(CTRGCN_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    }
    const int ok = fwrite(b.p, 1, b.n, f) == b.n && fflush(f) == 0 && fsync(fileno(f)) == 0;
    const int closed = fclose(f) == 0;
    free(b.p);
    if (!ok || !closed || rename(tmp, path) != 0) {
        const int err = errno;
        remove(tmp);
        return ctrgcn_fail(CTRGCN_ERR_IO, "cannot write '%s': %s", path, strerror(err));
    }
    return CTRGCN_OK;
}

ctrgcn_status ctrgcn_model_save(const ctrgcn_model *m, const char *path) {
    return ctrgcn_model_save_as(m, path, CTRGCN_DTYPE_FLOAT32);
}

/* ---- reading with bounds checks ---- */
typedef struct {
    const unsigned char *p;
    size_t n, pos;
    int short_read;
} rbuf;

static const unsigned char *get(rbuf *r, size_t n) {
    if (r->short_read || n > r->n - r->pos) {
        r->short_read = 1;
        return NULL;
    }
    const unsigned char *q = r->p + r->pos;
    r->pos += n;
    return q;
}

static uint32_t get_u32(rbuf *r) {
    const unsigned char *c = get(r, 4);
    return c ? (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24 : 0;
}

static ctrgcn_status read_whole_file(const char *path, unsigned char **data, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return ctrgcn_fail(CTRGCN_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            if (cap >= MAX_FILE_BYTES) break;
            unsigned char *q = realloc(buf, cap * 2);
            if (!q) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = q;
            cap *= 2;
        }
        const size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    const int err = ferror(f);
    fclose(f);
    if (!buf) return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory reading '%s'", path);
    if (err) {
        free(buf);
        return ctrgcn_fail(CTRGCN_ERR_IO, "error reading '%s'", path);
    }
    *data = buf;
    *size = n;
    return CTRGCN_OK;
}

enum { READ_OK, READ_SHORT, READ_BAD };

static uint32_t le32(const unsigned char *c) {
    return (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24;
}

/* One tensor's data in its stored dtype -> float32 at dst. */
static int read_tensor_data(rbuf *r, const tensor_entry *t, int dtype, float *dst) {
    if (dtype == CTRGCN_DTYPE_FLOAT32) {
        const unsigned char *data = get(r, 4 * t->numel);
        if (!data) return READ_SHORT;
        for (size_t j = 0; j < t->numel; j++) {
            const uint32_t u = le32(data + 4 * j);
            memcpy(&dst[j], &u, 4);
        }
        return READ_OK;
    }
    if (dtype == CTRGCN_DTYPE_FLOAT16) {
        const unsigned char *data = get(r, 2 * t->numel);
        if (!data) return READ_SHORT;
        for (size_t j = 0; j < t->numel; j++)
            if (!f16_to_f32((uint16_t)(data[2 * j] | data[2 * j + 1] << 8), &dst[j])) return READ_BAD;
        return READ_OK;
    }
    const size_t rows = (size_t)t->shape[0], cols = rows ? t->numel / rows : 0;
    const unsigned char *sc = get(r, 4 * rows);
    const unsigned char *data = get(r, t->numel);
    if (!sc || !data) return READ_SHORT;
    for (size_t i = 0; i < rows; i++) {
        const uint32_t u = le32(sc + 4 * i);
        float scale;
        memcpy(&scale, &u, 4);
        if (!isfinite(scale) || scale < 0.0f) return READ_BAD;
        for (size_t j = 0; j < cols; j++) dst[i * cols + j] = (float)(signed char)data[i * cols + j] * scale;
    }
    return READ_OK;
}

/* Fails with st after freeing m (the message is formatted before, while m is alive). */
static ctrgcn_status free_and(ctrgcn_model *m, ctrgcn_status st) {
    ctrgcn_model_free(m);
    return st;
}

/* A file's bytes for an error message: printable ASCII, anything else '?'. */
static const char *printable(const unsigned char *p, size_t n, char *buf, size_t cap) {
    size_t i = 0;
    for (; p && i < n && i + 1 < cap; i++) buf[i] = (p[i] >= 32 && p[i] < 127) ? (char)p[i] : '?';
    buf[i] = 0;
    return buf;
}

/* The class-name section of a version-4 file into m (a short read is left for the caller). */
static ctrgcn_status read_class_names(const char *path, rbuf *r, ctrgcn_model *m) {
    const uint32_t count = get_u32(r);
    if (r->short_read) return CTRGCN_OK;
    if (count != (uint32_t)m->spec.num_classes)
        return ctrgcn_fail(CTRGCN_ERR_FORMAT, "'%s' holds %u class names for %d classes", path, count,
                           m->spec.num_classes);
    char **names = calloc(count ? count : 1, sizeof *names);
    if (!names) return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory reading '%s'", path);
    ctrgcn_status st = CTRGCN_OK;
    for (uint32_t k = 0; k < count && st == CTRGCN_OK; k++) {
        const unsigned char *h = get(r, 2);
        const size_t len = h ? (size_t)h[0] | (size_t)h[1] << 8 : 0;
        const unsigned char *text = get(r, len);
        if (r->short_read) break;
        if (len == 0 || len > CTRGCN_MAX_CLASS_NAME || memchr(text, 0, len)) {
            st = ctrgcn_fail(CTRGCN_ERR_FORMAT, "'%s': class name %u is empty, too long or holds a NUL byte", path, k);
        } else if (!(names[k] = malloc(len + 1))) {
            st = ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory reading '%s'", path);
        } else {
            memcpy(names[k], text, len);
            names[k][len] = 0;
        }
    }
    if (st == CTRGCN_OK && !r->short_read)
        st = ctrgcn_model_set_class_names(m, (const char *const *)names, (int)count);
    for (uint32_t k = 0; k < count; k++) free(names[k]);
    free(names);
    return st;
}

static ctrgcn_status parse(const char *path, rbuf *r, ctrgcn_model **out) {
    ctrgcn_spec spec;
    memset(&spec, 0, sizeof spec);
    const unsigned char *magic = get(r, sizeof MAGIC);
    if (!magic || memcmp(magic, MAGIC, sizeof MAGIC) != 0)
        return ctrgcn_fail(CTRGCN_ERR_FORMAT, "'%s' is not a ctrgcn model file (bad magic)", path);
    const uint32_t version = get_u32(r);
    if (version < FORMAT_VERSION || version > FORMAT_VERSION_NAMES)
        return ctrgcn_fail(CTRGCN_ERR_FORMAT, "'%s' has format version %u; this build reads versions 1 to 4", path,
                           version);
    int *fields[] = {&spec.variant, &spec.num_classes, &spec.num_joints, &spec.num_person,
                     &spec.in_channels, &spec.base_channel, &spec.num_edges};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) *fields[i] = (int)get_u32(r);
    if (r->short_read) return ctrgcn_fail(CTRGCN_ERR_FORMAT, "'%s' is truncated in its header", path);
    if (spec.num_edges < 0 || spec.num_edges > CTRGCN_MAX_EDGES)
        return ctrgcn_fail(CTRGCN_ERR_FORMAT, "'%s' declares %d graph edges", path, spec.num_edges);
    for (int e = 0; e < spec.num_edges; e++) {
        spec.edges[e][0] = (int)get_u32(r);
        spec.edges[e][1] = (int)get_u32(r);
    }
    if (r->short_read) return ctrgcn_fail(CTRGCN_ERR_FORMAT, "'%s' is truncated in its graph", path);
    if (version >= FORMAT_VERSION_SPEC) {
        int *arch[] = {&spec.conv, &spec.relation, &spec.rel_reduction, &spec.rel_small};
        for (size_t i = 0; i < sizeof arch / sizeof arch[0]; i++) *arch[i] = (int)get_u32(r);
        for (int k = 0; k < CTRGCN_NUM_BLOCKS; k++) {
            ctrgcn_block_spec *bs = &spec.blocks[k];
            int *f[] = {&bs->out_channels, &bs->stride,       &bs->spatial,      &bs->gcn_width,
                        &bs->kernel_size,  &bs->dilations[0], &bs->dilations[1]};
            for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) *f[i] = (int)get_u32(r);
        }
        if (r->short_read) return ctrgcn_fail(CTRGCN_ERR_FORMAT, "'%s' is truncated in its spec", path);
    } else { /* versions 1 and 2 name a preset and its base width */
        if (spec.variant < 0 || spec.variant >= CTRGCN_NUM_VARIANTS)
            return ctrgcn_fail(CTRGCN_ERR_FORMAT, "'%s' names unknown variant %d", path, spec.variant);
        const int base = spec.base_channel;
        spec_fill_preset(&spec, spec.variant);
        if (ctrgcn_spec_set_base(&spec, base) != CTRGCN_OK)
            return ctrgcn_fail(CTRGCN_ERR_FORMAT, "'%s' holds an invalid spec: %s", path, ctrgcn_last_error());
    }
    ctrgcn_status st = ctrgcn_spec_validate(&spec);
    if (st != CTRGCN_OK)
        return ctrgcn_fail(CTRGCN_ERR_FORMAT, "'%s' holds an invalid spec: %s", path, ctrgcn_last_error());
    /* Size the tensor table before allocating the weights: every value takes at least one byte of the
     * file, so a spec claiming more values than the file has bytes is refused before any allocation. */
    ctrgcn_model *probe = calloc(1, sizeof *probe);
    if (!probe) return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory");
    probe->spec = spec;
    st = model_build_table(probe);
    const size_t claimed = probe->params_size;
    ctrgcn_model_free(probe);
    if (st != CTRGCN_OK) return st;
    if (claimed > r->n - r->pos)
        return ctrgcn_fail(CTRGCN_ERR_FORMAT, "'%s': its spec needs %zu values, more than the %zu bytes left in the file",
                           path, claimed, r->n - r->pos);
    ctrgcn_model *m;
    if ((st = ctrgcn_model_init(&m, &spec, 0)) != CTRGCN_OK) return st;
    const uint32_t count = get_u32(r);
    if (count != (uint32_t)m->num_tensors) {
        return free_and(m, ctrgcn_fail(CTRGCN_ERR_FORMAT, "'%s' holds %u tensors, its spec defines %d", path, count,
                           m->num_tensors));
    }
    for (int i = 0; i < m->num_tensors; i++) {
        const tensor_entry *t = &m->tensors[i];
        const unsigned char *h = get(r, 2);
        const size_t len = h ? (size_t)h[0] | (size_t)h[1] << 8 : 0;
        const unsigned char *name = get(r, len);
        const unsigned char *h2 = get(r, 2);
        if (r->short_read) break;
        if (len != strlen(t->name) || memcmp(name, t->name, len) != 0) {
            char shown[81];
            return free_and(m, ctrgcn_fail(CTRGCN_ERR_FORMAT, "'%s': tensor %d is '%s', expected '%s'", path, i,
                               printable(name, len, shown, sizeof shown), t->name));
        }
        const int dtype = h2[0];
        const int allowed = dtype == CTRGCN_DTYPE_FLOAT32 ||
                            (version != FORMAT_VERSION &&
                             (dtype == CTRGCN_DTYPE_FLOAT16 || (dtype == CTRGCN_DTYPE_INT8 && t->ndim >= 1)));
        if (!allowed || h2[1] != t->ndim) {
            return free_and(m, ctrgcn_fail(CTRGCN_ERR_FORMAT, "'%s': tensor '%s' has dtype %d / ndim %d, expected %s / %d", path,
                               t->name, h2[0], h2[1], version == FORMAT_VERSION ? "float32" : "float32, float16 or int8",
                               t->ndim));
        }
        for (int d = 0; d < t->ndim; d++)
            if (get_u32(r) != (uint32_t)t->shape[d] && !r->short_read) {
                return free_and(m, ctrgcn_fail(CTRGCN_ERR_FORMAT, "'%s': tensor '%s' has the wrong shape", path, t->name));
            }
        if (r->short_read) break;
        const int got = read_tensor_data(r, t, dtype, m->params + t->offset);
        if (got == READ_SHORT) break; /* reported below */
        if (got == READ_BAD) {
            return free_and(m, ctrgcn_fail(CTRGCN_ERR_FORMAT, "'%s': tensor '%s' holds non-finite values or scales", path,
                               t->name));
        }
    }
    if (!r->short_read && version == FORMAT_VERSION_NAMES) {
        const ctrgcn_status names_st = read_class_names(path, r, m);
        if (names_st != CTRGCN_OK) return free_and(m, names_st);
    }
    if (r->short_read || r->pos != r->n) {
        return free_and(m, ctrgcn_fail(CTRGCN_ERR_FORMAT, "'%s' is %s", path, r->short_read ? "truncated" : "followed by extra bytes"));
    }
    *out = m;
    return CTRGCN_OK;
}

ctrgcn_status ctrgcn_model_load(ctrgcn_model **out, const char *path) {
    if (!out || !path) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "NULL argument to load");
    *out = NULL;
    unsigned char *data = NULL;
    size_t size = 0;
    ctrgcn_status st = read_whole_file(path, &data, &size);
    if (st != CTRGCN_OK) return st;
    if (size < sizeof MAGIC + 8 || memcmp(data, MAGIC, sizeof MAGIC) != 0) {
        free(data);
        return ctrgcn_fail(CTRGCN_ERR_FORMAT, "'%s' is not a ctrgcn model file (bad magic or too short)", path);
    }
    const unsigned char *tail = data + size - 4;
    const uint32_t stored = (uint32_t)tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16 | (uint32_t)tail[3] << 24;
    if (crc32_of(data, size - 4) != stored) {
        free(data);
        return ctrgcn_fail(CTRGCN_ERR_FORMAT, "'%s' is corrupted or truncated (checksum mismatch)", path);
    }
    rbuf r = {data, size - 4, 0, 0};
    st = parse(path, &r, out);
    free(data);
    return st;
}

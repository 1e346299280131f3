/* The NTU RGB+D .skeleton reader.
 *
 * Layout: the frame count; per frame a body count; per body a 10-field info line (bodyID first),
 * a joint count (25) and 25 lines of 12 numbers (x y z depthX depthY colorX colorY orientation
 * wxyz trackingState). The whole file is read into memory and walked line by line; nothing is
 * copied into fixed buffers, every token is bounded by its line.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "ctrgcn_data.h"
#include "data/data_internal.h"

typedef struct {
    const char *text, *end, *pos;
    const char *name;
    int line;                 /* 1-based number of the line last returned */
    const char *ls, *le;      /* that line, without its end of line */
} reader;

static int next_line(reader *r) {
    if (r->pos >= r->end) return 0;
    r->ls = r->pos;
    const char *nl = memchr(r->pos, '\n', (size_t)(r->end - r->pos));
    r->le = nl ? nl : r->end;
    r->pos = nl ? nl + 1 : r->end;
    if (r->le > r->ls && r->le[-1] == '\r') r->le--;
    r->line++;
    return 1;
}

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* The next token of the current line: [*ts, *te); 0 at the end of the line. */
static int next_token(reader *r, const char **cur, const char **ts, const char **te) {
    const char *p = *cur;
    while (p < r->le && is_blank(*p)) p++;
    if (p >= r->le) return 0;
    *ts = p;
    while (p < r->le && !is_blank(*p)) p++;
    *te = p;
    *cur = p;
    return 1;
}

static int count_tokens(reader *r) {
    const char *cur = r->ls, *ts = NULL, *te = NULL;
    int n = 0;
    while (next_token(r, &cur, &ts, &te)) n++;
    return n;
}

/* Decimal numbers only (no hex, nan or inf), converted through double as NumPy converts text. */
static int parse_number(const char *ts, const char *te, double *out) {
    for (const char *p = ts; p < te; p++) {
        const char c = *p;
        if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E')) return 0;
    }
    /* a bounded, terminated copy: the text need not end in a NUL */
    char tok[64];
    const size_t n = (size_t)(te - ts);
    if (n == 0 || n >= sizeof tok) return 0;
    memcpy(tok, ts, n);
    tok[n] = '\0';
    char *endp = NULL;
    const double v = strtod(tok, &endp);
    if (endp != tok + n || !isfinite(v) || fabs(v) > 3.0e38) return 0;
    *out = v;
    return 1;
}

/* A token as quoted in a message: at most 40 bytes, anything but printable ASCII shown as '?', so a
 * message is always valid text whatever the file holds. */
static const char *shown(const char *ts, const char *te, char out[41]) {
    size_t n = 0;
    for (; ts + n < te && n < 40; n++) out[n] = (ts[n] >= 32 && ts[n] < 127) ? ts[n] : '?';
    out[n] = '\0';
    return out;
}

static ctrgcn_status expect_line(reader *r, const char *what) {
    if (next_line(r)) return CTRGCN_OK;
    return ctrgcn_fail(CTRGCN_ERR_FORMAT, "file '%s', line %d: unexpected end of file, expected %s", r->name,
                       r->line + 1, what);
}

/* A line holding one non-negative integer. */
static ctrgcn_status read_count(reader *r, const char *what, int *out) {
    ctrgcn_status st = expect_line(r, what);
    if (st) return st;
    const char *cur = r->ls, *ts = NULL, *te = NULL, *t2s, *t2e;
    if (!next_token(r, &cur, &ts, &te) || next_token(r, &cur, &t2s, &t2e))
        return ctrgcn_fail(CTRGCN_ERR_FORMAT, "file '%s', line %d: expected %s (one integer)", r->name, r->line, what);
    long long v = 0;
    char quoted[41];
    for (const char *p = ts; p < te; p++) {
        if (*p < '0' || *p > '9' || v > 100000000LL)
            return ctrgcn_fail(CTRGCN_ERR_FORMAT, "file '%s', line %d: %s '%s' is not a count", r->name, r->line, what,
                               shown(ts, te, quoted));
        v = v * 10 + (*p - '0');
    }
    *out = (int)v;
    return CTRGCN_OK;
}

static ctrgcn_ntu_body *find_or_add_body(ctrgcn_ntu_skeleton *sk, const char *ts, const char *te, int valid) {
    const size_t n = (size_t)(te - ts);
    for (int b = 0; b < sk->num_bodies; b++)
        if (strlen(sk->bodies[b].id) == n && memcmp(sk->bodies[b].id, ts, n) == 0) return &sk->bodies[b];
    if (!ctrgcn_grow((void **)&sk->bodies, &sk->bodies_capacity, sk->num_bodies + 1, sizeof *sk->bodies)) return NULL;
    ctrgcn_ntu_body *body = &sk->bodies[sk->num_bodies];
    memset(body, 0, sizeof *body);
    if (!(body->id = malloc(n + 1))) return NULL;
    memcpy(body->id, ts, n);
    body->id[n] = '\0';
    body->first = valid;
    sk->num_bodies++;
    return body;
}

/* Room for one more frame of a body. */
static int body_reserve(ctrgcn_ntu_body *body) {
    if (body->num_frames < body->capacity) return 1;
    /* start small: a file of many one-frame bodies must not cost more than a few times its size */
    int cap = body->capacity ? body->capacity * 2 : 4;
    float *j = realloc(body->joints, sizeof(float) * 75 * (size_t)cap);
    if (!j) return 0;
    body->joints = j;
    float *c = realloc(body->colors, sizeof(float) * 50 * (size_t)cap);
    if (!c) return 0;
    body->colors = c;
    int *f = realloc(body->frames, sizeof(int) * (size_t)cap);
    if (!f) return 0;
    body->frames = f;
    body->capacity = cap;
    return 1;
}

static ctrgcn_status read_body(reader *r, ctrgcn_ntu_skeleton *sk, int frame, int valid, int b, int num_in_frame) {
    ctrgcn_status st = expect_line(r, "a body info line");
    if (st) return st;
    const int fields = count_tokens(r);
    if (fields != 10)
        return ctrgcn_fail(CTRGCN_ERR_FORMAT,
                           "file '%s', line %d: body %d of %d in frame %d: expected a 10-field body info line, got "
                           "%d fields (does the body count lie?)",
                           r->name, r->line, b + 1, num_in_frame, frame + 1, fields);
    const char *cur = r->ls, *ids = NULL, *ide = NULL, *ts = NULL, *te = NULL;
    char quoted[41];
    next_token(r, &cur, &ids, &ide);
    for (int k = 1; k < 10; k++) {
        double v;
        next_token(r, &cur, &ts, &te);
        if (!parse_number(ts, te, &v))
            return ctrgcn_fail(CTRGCN_ERR_FORMAT, "file '%s', line %d: body info field %d '%s' is not a number",
                               r->name, r->line, k + 1, shown(ts, te, quoted));
    }
    ctrgcn_ntu_body *body = find_or_add_body(sk, ids, ide, valid);
    if (!body) return ctrgcn_fail(CTRGCN_ERR_NOMEM, "file '%s': out of memory", r->name);
    int joints;
    if ((st = read_count(r, "the joint count", &joints))) return st;
    if (joints != CTRGCN_NTU_JOINTS)
        return ctrgcn_fail(CTRGCN_ERR_FORMAT, "file '%s', line %d: expected 25 joints, got %d", r->name, r->line,
                           joints);
    if (!body_reserve(body)) return ctrgcn_fail(CTRGCN_ERR_NOMEM, "file '%s': out of memory", r->name);
    float *xyz = body->joints + (size_t)body->num_frames * 75, *rgb = body->colors + (size_t)body->num_frames * 50;
    for (int j = 0; j < CTRGCN_NTU_JOINTS; j++) {
        if ((st = expect_line(r, "a joint line"))) return st;
        const int n = count_tokens(r);
        if (n != 12)
            return ctrgcn_fail(CTRGCN_ERR_FORMAT, "file '%s', line %d: joint %d: expected 12 numbers, got %d fields",
                               r->name, r->line, j + 1, n);
        cur = r->ls;
        for (int k = 0; k < 12; k++) {
            double v;
            next_token(r, &cur, &ts, &te);
            if (!parse_number(ts, te, &v))
                return ctrgcn_fail(CTRGCN_ERR_FORMAT, "file '%s', line %d: joint %d field %d '%s' is not a number",
                                   r->name, r->line, j + 1, k + 1, shown(ts, te, quoted));
            if (k < 3) xyz[j * 3 + k] = (float)v;
            else if (k == 5 || k == 6) rgb[j * 2 + (k - 5)] = (float)v;
        }
    }
    body->frames[body->num_frames++] = valid;
    return CTRGCN_OK;
}

/* motion = sum over x y z of np.var(joints.reshape(-1, 3), axis=0), reproduced in float32 with the
 * same summation order (a row-by-row sum over the n*25 positions), so ties and sorting agree. */
float ctrgcn_ntu_motion(const float *joints, const int *rows, int n) {
    const int count = n * CTRGCN_NTU_JOINTS;
    float mean[3] = {0.f, 0.f, 0.f}, ss[3] = {0.f, 0.f, 0.f};
    for (int i = 0; i < n; i++) {
        const float *f = joints + (size_t)(rows ? rows[i] : i) * 75;
        for (int j = 0; j < CTRGCN_NTU_JOINTS; j++)
            for (int c = 0; c < 3; c++) mean[c] += f[j * 3 + c];
    }
    for (int c = 0; c < 3; c++) mean[c] /= (float)count;
    for (int i = 0; i < n; i++) {
        const float *f = joints + (size_t)(rows ? rows[i] : i) * 75;
        for (int j = 0; j < CTRGCN_NTU_JOINTS; j++)
            for (int c = 0; c < 3; c++) {
                const float d = f[j * 3 + c] - mean[c];
                ss[c] += d * d;
            }
    }
    float total = 0.f;
    for (int c = 0; c < 3; c++) total += ss[c] / (float)count;
    return total;
}

ctrgcn_status ctrgcn_ntu_skeleton_parse(ctrgcn_ntu_skeleton *sk, const char *text, size_t len, const char *name) {
    if (!sk) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "ctrgcn_ntu_skeleton_parse: no output");
    memset(sk, 0, sizeof *sk);
    if (!text) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "ctrgcn_ntu_skeleton_parse: no text");
    reader r = {text, text + len, text, name ? name : "<memory>", 0, NULL, NULL};
    int frames;
    ctrgcn_status st = read_count(&r, "the frame count", &frames);
    if (st) goto fail;
    if (frames == 0) {
        st = ctrgcn_fail(CTRGCN_ERR_FORMAT, "file '%s', line 1: the file has zero frames", r.name);
        goto fail;
    }
    sk->num_frames_in_file = frames;
    int valid = 0;
    for (int f = 0; f < frames; f++) {
        int bodies;
        if ((st = read_count(&r, "a body count", &bodies))) goto fail;
        if (bodies == 0) {
            if (!ctrgcn_grow((void **)&sk->dropped, &sk->dropped_capacity, sk->num_dropped + 1, sizeof(int))) {
                st = ctrgcn_fail(CTRGCN_ERR_NOMEM, "file '%s': out of memory", r.name);
                goto fail;
            }
            sk->dropped[sk->num_dropped++] = f;
            continue;
        }
        for (int b = 0; b < bodies; b++)
            if ((st = read_body(&r, sk, f, valid, b, bodies))) goto fail;
        valid++;
    }
    sk->num_frames = valid;
    if (valid == 0) {
        st = ctrgcn_fail(CTRGCN_ERR_FORMAT, "file '%s': all %d frames have no body", r.name, frames);
        goto fail;
    }
    if (sk->num_bodies > 1)
        for (int b = 0; b < sk->num_bodies; b++) {
            sk->bodies[b].has_motion = 1;
            sk->bodies[b].motion = ctrgcn_ntu_motion(sk->bodies[b].joints, NULL, sk->bodies[b].num_frames);
        }
    return CTRGCN_OK;
fail:
    ctrgcn_ntu_skeleton_free(sk);
    return st;
}

ctrgcn_status ctrgcn_ntu_skeleton_read(ctrgcn_ntu_skeleton *sk, const char *path) {
    if (!sk || !path) return ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "ctrgcn_ntu_skeleton_read: no path");
    memset(sk, 0, sizeof *sk);
    size_t len = 0;
    char *text = NULL;
    ctrgcn_status st = ctrgcn_read_file(path, &text, &len);
    if (st) return st;
    st = ctrgcn_ntu_skeleton_parse(sk, text, len, path);
    free(text);
    return st;
}

void ctrgcn_ntu_skeleton_free(ctrgcn_ntu_skeleton *sk) {
    if (!sk) return;
    for (int b = 0; b < sk->num_bodies; b++) {
        free(sk->bodies[b].id);
        free(sk->bodies[b].joints);
        free(sk->bodies[b].colors);
        free(sk->bodies[b].frames);
    }
    free(sk->bodies);
    free(sk->dropped);
    memset(sk, 0, sizeof *sk);
}

ctrgcn_status ctrgcn_read_file(const char *path, char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return ctrgcn_fail(CTRGCN_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(fp);
        return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory reading '%s'", path);
    }
    for (;;) {
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                fclose(fp);
                return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory reading '%s'", path);
            }
            buf = nb;
            cap *= 2;
        }
        const size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0) break;
    }
    const int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        free(buf);
        return ctrgcn_fail(CTRGCN_ERR_IO, "cannot read '%s'", path);
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return CTRGCN_OK;
}

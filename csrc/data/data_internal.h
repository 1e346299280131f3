/* Internal helpers shared by the files of csrc/data. */
#ifndef CTRGCN_DATA_INTERNAL_H
#define CTRGCN_DATA_INTERNAL_H
#include <stddef.h>

#include "ctrgcn_data.h"

/* Make *buf hold at least `need` items of `size` bytes (doubling); 0 when out of memory, the old
 * buffer then still owned by the caller. */
int ctrgcn_grow(void **buf, int *capacity, int need, size_t size);
/* The whole file, NUL-terminated; the caller frees *text. */
ctrgcn_status ctrgcn_read_file(const char *path, char **text, size_t *len);
/* Sum of the per-axis variances of n frames of [25][3] positions (rows: frame indices or NULL). */
float ctrgcn_ntu_motion(const float *joints, const int *rows, int n);
/* numpy's float32 pairwise sum (the order of np.sum over a row), for exact "sums to zero" tests. */
float ctrgcn_pairwise_sum(const float *a, ptrdiff_t n);

/* A growing string for the human-readable denoising report. */
typedef struct {
    char *s;
    size_t len, cap;
    int failed;
} ctrgcn_text;
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void ctrgcn_text_printf(ctrgcn_text *t, const char *fmt, ...);

#endif

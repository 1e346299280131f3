/* Small helpers of the data code: growing arrays and text, numpy's summation order. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "data/data_internal.h"

int ctrgcn_grow(void **buf, int *capacity, int need, size_t size) {
    if (need <= *capacity) return 1;
    int cap = *capacity ? *capacity : 8;
    while (cap < need) cap *= 2;
    void *nb = realloc(*buf, size * (size_t)cap);
    if (!nb) return 0;
    *buf = nb;
    *capacity = cap;
    return 1;
}

float ctrgcn_pairwise_sum(const float *a, ptrdiff_t n) {
    if (n < 8) {
        float r = 0.f;
        for (ptrdiff_t i = 0; i < n; i++) r += a[i];
        return r;
    }
    if (n <= 128) {
        float r[8];
        for (int j = 0; j < 8; j++) r[j] = a[j];
        ptrdiff_t i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    ptrdiff_t n2 = n / 2;
    n2 -= n2 % 8;
    return ctrgcn_pairwise_sum(a, n2) + ctrgcn_pairwise_sum(a + n2, n - n2);
}

void ctrgcn_text_printf(ctrgcn_text *t, const char *fmt, ...) {
    if (t->failed) return;
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    const int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0) {
        t->failed = 1;
        va_end(ap2);
        return;
    }
    if (t->len + (size_t)need + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + (size_t)need + 1) cap *= 2;
        char *ns = realloc(t->s, cap);
        if (!ns) {
            t->failed = 1;
            va_end(ap2);
            return;
        }
        t->s = ns;
        t->cap = cap;
    }
    vsnprintf(t->s + t->len, (size_t)need + 1, fmt, ap2);
    va_end(ap2);
    t->len += (size_t)need;
}

/* Internal: carving one allocation into aligned slots. A first pass with base == NULL only
 * counts, a second hands out pointers, so sizes are written once. */
#ifndef CTRGCN_ARENA_H
#define CTRGCN_ARENA_H
#include <stddef.h>

typedef struct {
    float *base;
    size_t used;
} arena;

static inline float *arena_take(arena *a, size_t n) {
    float *p = a->base ? a->base + a->used : NULL;
    a->used += (n + 15) & ~(size_t)15; /* 64-byte slots */
    return p;
}

#endif

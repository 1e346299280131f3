/* Internal to the CPU backend: the context and how an op splits its work over threads.
 *
 * Ops thread themselves. Called from a lane (an eval pass already running on one thread per
 * person), an op runs on its caller's thread; called from the driver at batch level, it splits
 * persons over threads, and splits one person's rows or columns when there are fewer persons
 * than threads (batch 1, one person: both cores still work). */
#ifndef CTRGCN_CPU_H
#define CTRGCN_CPU_H
#include <stddef.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backends/backend.h"
#include "layers/layers.h"

struct backend_ctx {
    int threads;
    float *scratch;      /* `slots` blocks of `scratch_per` floats */
    size_t scratch_per;
    int slots;
};

/* Threads an op may start here: 1 inside a lane, the context's count at batch level. */
static inline int cpu_team(const backend_ctx *c) {
#ifdef _OPENMP
    return omp_in_parallel() ? 1 : c->threads;
#else
    (void)c;
    return 1;
#endif
}

/* The scratch slot of the calling thread: the lane's when inside one, else 0 + thread number.
 * Take the base before the op's own parallel region. */
static inline int cpu_slot_base(void) {
#ifdef _OPENMP
    return omp_in_parallel() ? omp_get_thread_num() : 0;
#else
    return 0;
#endif
}
static inline int cpu_thread(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}
static inline float *cpu_scratch(const backend_ctx *c, int slot) { return c->scratch + c->scratch_per * (size_t)slot; }

/* Parts to cut each person into so that n persons give at least `team` work items. */
static inline int cpu_parts(int n, int team) { return n >= team ? 1 : (team + n - 1) / n; }
/* [lo, hi) of part p of `total` in `parts`, boundaries rounded to multiples of `align`; the
 * size_t form serves whole tensors, the int one rows and columns. */
static inline void cpu_span(size_t total, int parts, int p, size_t align, size_t *lo, size_t *hi) {
    const size_t chunk = ((total + parts - 1) / parts + align - 1) / align * align;
    *lo = p * chunk < total ? p * chunk : total;
    *hi = (p + 1) * chunk < total ? (p + 1) * chunk : total;
}
static inline void cpu_range(int total, int parts, int p, int align, int *lo, int *hi) {
    size_t l, h;
    cpu_span((size_t)total, parts, p, (size_t)align, &l, &h);
    *lo = (int)l;
    *hi = (int)h;
}
/* Work item `item` of n persons cut into `parts`: returns its person and sets [lo, hi), its part
 * of the person's `total` rows or columns. */
static inline int cpu_item(int item, int parts, int total, int align, int *lo, int *hi) {
    cpu_range(total, parts, item % parts, align, lo, hi);
    return item / parts;
}

/* db[r] += sum of row r of d [rows][ldd] over its first cols values (in double). */
static inline void rowsum_add(float *db, const float *d, int ldd, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        double s = 0.0;
        sum_f64(d + (size_t)r * ldd, (size_t)cols, &s);
        db[r] += (float)s;
    }
}

/* The ops, defined in conv.c, graph.c, norm.c and head.c: cpu_<name> for every entry of
 * CTRGCN_BACKEND_OPS (backends/backend.h), and the one op of another shape. */
#define CPU_DECLARE(name, params) void cpu_##name params;
CTRGCN_BACKEND_OPS(CPU_DECLARE)
#undef CPU_DECLARE
size_t cpu_count_nonfinite(backend_ctx *ctx, const float *x, size_t count);

#endif

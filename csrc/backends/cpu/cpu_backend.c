/* The CPU backend: host memory, OpenMP threads, OpenBLAS for the GEMMs (single-threaded: the
 * ops split their own work, which stays fast when another process holds a core), and the table. */
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu.h"
#include "core/error.h"
#include "layers/layers.h"

static ctrgcn_status cpu_init(backend_ctx **out, int threads) {
    backend_ctx *c = calloc(1, sizeof *c);
    if (!c) return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory");
#ifdef _OPENMP
    c->threads = threads > 0 ? threads : omp_get_num_procs();
#else
    c->threads = 1;
    (void)threads;
#endif
    blas_set_threads(1);
    *out = c;
    return CTRGCN_OK;
}

static void cpu_release(backend_ctx *c) {
    if (!c) return;
    free(c->scratch);
    free(c);
}

static ctrgcn_status cpu_reserve(backend_ctx *c, size_t floats) {
    floats = (floats + 15) & ~(size_t)15;
    if (c->scratch && c->scratch_per >= floats && c->slots == c->threads) return CTRGCN_OK;
    free(c->scratch);
    c->scratch = aligned_alloc(64, sizeof(float) * floats * (size_t)c->threads);
    if (!c->scratch) {
        c->scratch_per = 0;
        return ctrgcn_fail(CTRGCN_ERR_NOMEM, "out of memory for %zu floats of scratch", floats * c->threads);
    }
    c->scratch_per = floats;
    c->slots = c->threads;
    return CTRGCN_OK;
}

static int cpu_lanes(backend_ctx *c, int chunks) { return chunks < c->threads ? chunks : c->threads; }
static int cpu_train_chunk(backend_ctx *c) { return c->threads; }

static void cpu_run_lanes(backend_ctx *c, int chunks, int lanes, lane_fn fn, void *arg) {
    (void)c;
    if (lanes <= 1) { /* one pass: the ops below may use every thread themselves */
        for (int i = 0; i < chunks; i++) fn(arg, i, 0);
        return;
    }
#pragma omp parallel for num_threads(lanes) schedule(dynamic, 1)
    for (int i = 0; i < chunks; i++) fn(arg, i, cpu_thread());
}

static void *cpu_alloc(backend_ctx *c, size_t bytes) {
    (void)c;
    return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
}
static void cpu_free(backend_ctx *c, void *p) {
    (void)c;
    free(p);
}
static void cpu_copy(backend_ctx *c, void *dst, const void *src, size_t bytes) {
    (void)c;
    if (bytes) memcpy(dst, src, bytes);
}
static void cpu_zero(backend_ctx *c, void *p, size_t bytes) {
    (void)c;
    if (bytes) memset(p, 0, bytes);
}
static void cpu_sync(backend_ctx *c) { (void)c; }
static void cpu_profiling(backend_ctx *c, int on) { /* nothing recorded, nothing to stop */
    (void)c;
    (void)on;
}
static ctrgcn_status cpu_check(backend_ctx *c) { /* host ops cannot fail midway: they check before they start */
    (void)c;
    return CTRGCN_OK;
}

const ctrgcn_backend ctrgcn_cpu_backend = {
    .name = "cpu",
    .init = cpu_init,
    .release = cpu_release,
    .reserve = cpu_reserve,
    .eval_chunk = 1,
    .train_chunk = cpu_train_chunk,
    .lanes = cpu_lanes,
    .run_lanes = cpu_run_lanes,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .zero = cpu_zero,
    .sync = cpu_sync,
    .profiling = cpu_profiling,
    .count_nonfinite = cpu_count_nonfinite,
    .check = cpu_check,
#define CPU_ENTRY(name, params) .name = cpu_##name,
    CTRGCN_BACKEND_OPS(CPU_ENTRY)
#undef CPU_ENTRY
};

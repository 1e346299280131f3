/* A stand-in for the CUDA backend's library, for machines without a GPU: it exports the same one
 * symbol (ctrgcn_cuda_entry), reports one device, and its "cuda" table is the CPU backend's ops
 * scheduled as a GPU wants them (eval_chunk 0: the whole batch in one pass). tests/test_cuda.py
 * loads it through CTRGCN_CUDA_LIB to exercise the loader and every device="cuda" path of the
 * Python API and the driver, and says plainly that it checks plumbing, not CUDA kernels. */
#include <stdlib.h>

#include "backends/backend.h"
#include "backends/cuda/cuda_module.h"

static ctrgcn_backend table;

static int device_count(char *why, size_t cap) {
    (void)why;
    (void)cap;
    return 1;
}

static ctrgcn_status (*report)(ctrgcn_status, const char *, ...);
static void bind(ctrgcn_status (*fail)(ctrgcn_status, const char *, ...)) { report = fail; }

/* A device fault on demand: while FAKE_CUDA_FAULT is set, every check reports one, as the real
 * backend's check reports a failed launch (the session must raise it, then recover). */
static ctrgcn_status fake_check(backend_ctx *ctx) {
    (void)ctx;
    const char *fault = getenv("FAKE_CUDA_FAULT");
    if (!fault || !*fault || !report) return CTRGCN_OK;
    return report(CTRGCN_ERR_STATE, "CUDA backend: fake_kernel failed: %s", fault);
}

__attribute__((constructor)) static void make_table(void) {
    table = ctrgcn_cpu_backend;
    table.name = "cuda";
    table.eval_chunk = 0;
    table.check = fake_check;
}

__attribute__((visibility("default"))) const ctrgcn_cuda_module ctrgcn_cuda_entry = {
    CTRGCN_CUDA_ABI, sizeof(ctrgcn_backend), &table, device_count, bind};

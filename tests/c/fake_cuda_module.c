/* A stand-in for the CUDA backend's library, for machines without a GPU: it exports the same one
 * symbol (ctrgcn_cuda_entry), reports one device, and its "cuda" table is the CPU backend's ops
 * scheduled as a GPU wants them (eval_chunk 0: the whole batch in one pass). tests/test_cuda.py
 * loads it through CTRGCN_CUDA_LIB to exercise the loader and every device="cuda" path of the
 * Python API and the driver, and says plainly that it checks plumbing, not CUDA kernels. */
#include "backends/backend.h"
#include "backends/cuda/cuda_module.h"

static ctrgcn_backend table;

static int device_count(char *why, size_t cap) {
    (void)why;
    (void)cap;
    return 1;
}

static void bind(ctrgcn_status (*fail)(ctrgcn_status, const char *, ...)) { (void)fail; }

__attribute__((constructor)) static void make_table(void) {
    table = ctrgcn_cpu_backend;
    table.name = "cuda";
    table.eval_chunk = 0;
}

__attribute__((visibility("default"))) const ctrgcn_cuda_module ctrgcn_cuda_entry = {
    CTRGCN_CUDA_ABI, sizeof(ctrgcn_backend), &table, device_count, bind};

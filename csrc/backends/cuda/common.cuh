/* Internal to the CUDA backend: the context, launch helpers, the row-major cuBLAS wrapper and
 * the reductions the layer families share. Every op runs on the context's one stream; nothing
 * synchronises except downloads, count_nonfinite and sync. */
#ifndef CTRGCN_CUDA_COMMON_CUH
#define CTRGCN_CUDA_COMMON_CUH
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

/* Every kernel launch goes through KERNEL_LAUNCH and every dynamically sized shared array through
 * DYNAMIC_SHARED, so that tests/cuda_host/ can compile these sources for the host (a CPU
 * emulation of the CUDA runtime and cuBLAS that runs the real kernels, for machines without a GPU). */
#ifdef CTRGCN_CUDA_HOST
#define KERNEL_LAUNCH(kernel, grid, block, shmem, stream, ...) \
    cuda_host_launch(kernel, dim3(grid), dim3(block), (shmem), (stream), __VA_ARGS__)
#define DYNAMIC_SHARED(type, name) type *name = (type *)cuda_host_dynamic_shared()
#else
#define KERNEL_LAUNCH(kernel, grid, block, shmem, stream, ...) kernel<<<(grid), (block), (shmem), (stream)>>>(__VA_ARGS__)
#define DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif

extern "C" {
#include "backends/backend.h"
}
#include "backends/cuda/index.cuh"

typedef ctrgcn_status (*cuda_fail_fn)(ctrgcn_status, const char *, ...);

struct backend_ctx {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    void *blas_ws; /* cuBLAS workspace, set explicitly so no call allocates */
    /* Scratch grows on demand (ops know their batch; reserve knows one person): slot 0 floats
     * for gathers, phases and per-person partial products, slot 1 doubles for reductions. */
    void *scratch[2];
    size_t scratch_bytes[2];
    float *ones; /* a vector of ones for summing per-person partials with one GEMV */
    size_t ones_len;
    unsigned long long *counter;
    int failed; /* a scratch allocation or a launch failed: later ops do nothing until `check` */
    ctrgcn_status fail_status; /* the first failure since the last check, and its message */
    char fail_msg[256];
    /* The eval pass as a CUDA graph (memory.cu, cuda_run_lanes). Every op mixes its name and
     * arguments into `sig`; a pass whose signature repeats is captured once and then replayed
     * after a dry run (ops only sign, `dry`) proves the next pass issues the same ops on the same
     * memory. A pass that moves memory to or from the host (a probe) is never replayed. */
    uint64_t sig, graph_sig, prev_sig;
    int dry, capturing, impure, capture_next, graphs; /* graphs: 1 on, 0 off (CTRGCN_CUDA_GRAPHS=0 or a failed capture) */
    lane_fn graph_fn, prev_fn;
    cudaGraphExec_t exec;
    long replays;
    int profiling; /* the session's op profiler is on: every pass runs directly */
};

/* The ops, defined in conv.cu, graph.cu, norm.cu and head.cu: cuda_<name> for every entry of
 * CTRGCN_BACKEND_OPS (backends/backend.h). memory.cuh has the hooks of other shapes. */
#define CUDA_DECLARE(name, params) void cuda_##name params;
CTRGCN_BACKEND_OPS(CUDA_DECLARE)
#undef CUDA_DECLARE

/* Marks the context failed, keeping the first failure's status and message for `check`, and
 * reports it through the core's error slot (bound at load time; may be a no-op). */
void cuda_fail(backend_ctx *c, ctrgcn_status st, const char *fmt, ...);
/* cuda_fail for a CUDA runtime error of `what`. */
void cuda_report(backend_ctx *c, const char *what, cudaError_t err);
/* Scratch of slot 0 / 1 with at least `bytes`; NULL (and the context marked failed) when out of memory. */
void *cuda_scratch(backend_ctx *c, int slot, size_t bytes);
/* ones[0..n) on the device; NULL on failure. */
const float *cuda_ones(backend_ctx *c, size_t n);

#define CUDA_THREADS 256
/* Blocks of a grid-stride loop over `count` items. */
static inline unsigned grid_for(size_t count) {
    size_t b = (count + CUDA_THREADS - 1) / CUDA_THREADS;
    if (b > (1u << 20)) b = 1u << 20;
    return (unsigned)(b ? b : 1);
}
#define GRID_STRIDE(e, count) \
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < (count); e += (size_t)gridDim.x * blockDim.x)
/* A launch that records its failure; `count` == 0 launches nothing. */
#define LAUNCH(c, kernel, count, ...)                                                   \
    do {                                                                               \
        if (!(c)->failed && (count) > 0) {                                             \
            KERNEL_LAUNCH(kernel, grid_for(count), CUDA_THREADS, 0, (c)->stream, __VA_ARGS__); \
            cudaError_t e_ = cudaGetLastError();                                       \
            if (e_ != cudaSuccess) cuda_report(c, #kernel, e_);                        \
        }                                                                              \
    } while (0)

/* A launch over an explicit grid, recorded like LAUNCH. */
#define LAUNCH_GRID(c, kernel, grid, block, shmem, ...)                                 \
    do {                                                                               \
        if (!(c)->failed) {                                                            \
            KERNEL_LAUNCH(kernel, grid, block, shmem, (c)->stream, __VA_ARGS__);       \
            cudaError_t e_ = cudaGetLastError();                                       \
            if (e_ != cudaSuccess) cuda_report(c, #kernel, e_);                        \
        }                                                                              \
    } while (0)

/* C = alpha * op(A) op(B) + beta * C, row-major with leading dimensions, for `batch` triples
 * sA, sB, sC floats apart (a stride of 0 repeats the matrix). cuBLAS is column-major, so it
 * computes C^T = op(B)^T op(A)^T. */
void gemm_rm(backend_ctx *c, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, long long sA,
             const float *B, int ldb, long long sB, float beta, float *C, int ldc, long long sC, int batch);
/* dst[e] += sum over i < n of P[i*count + e]: per-person partial products summed by one GEMV. */
void sum_persons_add(backend_ctx *c, float *dst, const float *P, int n, size_t count);
/* db[r] += sum over persons i < n and columns j < cols of d[i*ld + r*cols + j] (in double). */
void rows_sum_add(backend_ctx *c, float *db, const float *d, size_t ld, int n, int rows, size_t cols);
/* y[i*ld + r*cols + j] += b[r] (or = b[r] when assign; = 0 when b is NULL and assign). */
void rows_bias(backend_ctx *c, float *y, size_t ld, const float *b, int n, int rows, size_t cols, int assign);

/* Sum over a block in double; every thread gets the total. `sh` holds 32 doubles. */
__device__ __forceinline__ double block_sum(double v, double *sh) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    double t = 0.0;
    for (int w = 0; w < (int)((blockDim.x + 31) >> 5); w++) t += sh[w];
    return t;
}

#endif

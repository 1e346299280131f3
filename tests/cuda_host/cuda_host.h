/* A host emulation of the part of the CUDA runtime and cuBLAS that csrc/backends/cuda/ uses, so that
 * the real CUDA backend sources, compiled by g++ with -DCTRGCN_CUDA_HOST and this folder first on the
 * include path (it shadows <cuda_runtime.h> and <cublas_v2.h>), run on a machine without a GPU.
 *
 * What it checks: every kernel's indexing and logic, the launches' shapes (the device's limits on
 * threads, grid and shared memory), transfers in the right direction and within an allocation,
 * cuBLAS's argument rules, stream capture and graph replay, and the backend's error paths (out of
 * memory below a set capacity, a device fault on demand). What it cannot: speed, the device's
 * floating-point details, races between threads of a kernel (blocks run one after another, a
 * block's threads one at a time, switching only at barriers and shuffles).
 *
 * Kernels run one at a time in the process (launches from several host threads take turns, a
 * schedule a GPU may also choose), block by block. A block's thread 0 runs first; if it finishes without reaching a
 * barrier or a shuffle, the rest of the launch runs thread by thread as plain calls; if it reaches
 * one, every thread of the launch runs as a fiber (its own stack) and the fibers switch at each
 * barrier. A thread that reaches a barrier in a launch run without fibers is a kernel whose
 * threads synchronise in some blocks or threads only, reported as a device fault. */
#ifndef CTRGCN_CUDA_HOST_H
#define CTRGCN_CUDA_HOST_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <functional>
#include <tuple>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
/* one block runs at a time in the whole process (launches are serialised), so a block's shared
 * array is a plain static */
#define __shared__ static

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
extern dim3 threadIdx, blockIdx, blockDim, gridDim; /* of the one thread running */

/* ---- runtime ---------------------------------------------------------------------------------- */
typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorInsufficientDriver = 35,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorNotReady = 600,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchFailure = 719,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
    cudaErrorStreamCaptureWrongThread = 908,
} cudaError_t;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
};
enum cudaStreamCaptureMode {
    cudaStreamCaptureModeGlobal = 0,
    cudaStreamCaptureModeThreadLocal = 1,
    cudaStreamCaptureModeRelaxed = 2
};
#define cudaStreamNonBlocking 0x01

typedef struct cuda_host_stream *cudaStream_t;
typedef struct cuda_host_graph *cudaGraph_t;
typedef struct cuda_host_graph *cudaGraphExec_t;

/* C linkage, as the real libraries: tests reach cudaMemGetInfo through ctypes */
extern "C" {
cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetLastError(void);
const char *cudaGetErrorString(cudaError_t err);
cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s);
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamQuery(cudaStream_t s);
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t g, unsigned long long flags);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
cudaError_t cudaGraphDestroy(cudaGraph_t g);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);

/* ---- cuBLAS ----------------------------------------------------------------------------------- */
typedef enum {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
} cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 } cublasOperation_t;
typedef enum { CUBLAS_DEFAULT_MATH = 0, CUBLAS_TF32_TENSOR_OP_MATH = 3 } cublasMath_t;
typedef struct cuda_host_blas *cublasHandle_t;

cublasStatus_t cublasCreate(cublasHandle_t *h);
cublasStatus_t cublasDestroy(cublasHandle_t h);
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s);
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode);
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes);
cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc);
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *A, int lda, long long sA,
                                         const float *B, int ldb, long long sB, const float *beta, float *C, int ldc,
                                         long long sC, int batch);
cublasStatus_t cublasSgemv(cublasHandle_t h, cublasOperation_t t, int m, int n, const float *alpha, const float *A,
                           int lda, const float *x, int incx, const float *beta, float *y, int incy);
}

/* ---- kernels ---------------------------------------------------------------------------------- */
/* Runs `body` as the grid (now, or recorded while the stream captures); launch errors as CUDA's. */
void cuda_host_run(cudaStream_t s, dim3 grid, dim3 block, size_t shmem, std::function<void()> body);
void *cuda_host_dynamic_shared(void);
void __syncthreads(void);
/* A shuffle: every live lane of the warp publishes 8 bytes and reads lane `src`'s (-1: its own). */
uint64_t cuda_host_shuffle(uint64_t mine, int src);

template <class... P, class... A>
void cuda_host_launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t shmem, cudaStream_t s, A... args) {
    std::tuple<P...> params((P)(args)...); /* C casts: a NULL argument arrives here as an integer */
    cuda_host_run(s, grid, block, shmem, [kernel, params]() { std::apply(kernel, params); });
}

template <class T> T cuda_host_shfl(T v, int src) {
    static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof v);
    bits = cuda_host_shuffle(bits, src);
    T out;
    memcpy(&out, &bits, sizeof out);
    return out;
}
static inline int cuda_host_lane(void) {
    return (int)((threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x) & 31;
}
template <class T> T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    (void)mask;
    const int lane = cuda_host_lane(), src = lane % width + (int)delta < width ? lane + (int)delta : -1;
    return cuda_host_shfl(v, src);
}
template <class T> T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    (void)mask;
    const int lane = cuda_host_lane();
    return cuda_host_shfl(v, lane - lane % width + src % width);
}

/* Blocks run one at a time on a host thread: an atomic is a plain update there. */
template <class T> T atomicAdd(T *p, T v) {
    const T old = *p;
    *p = old + v;
    return old;
}

#endif

/* The CUDA backend's context and memory hooks (memory.cu): the entries of its table that are not
 * in CTRGCN_BACKEND_OPS. */
#ifndef CTRGCN_CUDA_MEMORY_CUH
#define CTRGCN_CUDA_MEMORY_CUH
#include "backends/cuda/common.cuh"

ctrgcn_status cuda_init(backend_ctx **out, int threads);
void cuda_release(backend_ctx *c);
ctrgcn_status cuda_reserve(backend_ctx *c, size_t floats);
int cuda_lanes(backend_ctx *c, int chunks);
void cuda_run_lanes(backend_ctx *c, int chunks, int lanes, lane_fn fn, void *arg);
void *cuda_alloc(backend_ctx *c, size_t bytes);
void cuda_free(backend_ctx *c, void *p);
void cuda_upload(backend_ctx *c, void *dst, const void *host_src, size_t bytes);
void cuda_download(backend_ctx *c, void *host_dst, const void *src, size_t bytes);
void cuda_zero(backend_ctx *c, void *p, size_t bytes);
void cuda_sync(backend_ctx *c);
void cuda_profiling(backend_ctx *c, int on);
size_t cuda_count_nonfinite(backend_ctx *c, const float *x, size_t count);
ctrgcn_status cuda_check(backend_ctx *c);

#endif

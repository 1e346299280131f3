/* CUDA BatchNorm (train mode and folded eval), elementwise ops and the input layouts (norm.cu). */
#ifndef CTRGCN_CUDA_NORM_CUH
#define CTRGCN_CUDA_NORM_CUH
#include "backends/cuda/common.cuh"

void cuda_input_forward(backend_ctx *c, float *y, const float *x, int N, int C, int T, int V, int M);
void cuda_persons_forward(backend_ctx *c, float *y, const float *x, int N, int C, int T, int V, int M);
void cuda_persons_backward(backend_ctx *c, float *dx, const float *dy, int N, int C, int T, int V, int M);
void cuda_bn_forward(backend_ctx *c, float *y, size_t ldy, const float *x, size_t ldx, int n, int C, size_t L,
                     const float *gamma, const float *beta, float *stat, float *run_mean, float *run_var,
                     float momentum);
void cuda_bn_backward(backend_ctx *c, float *dx, size_t lddx, const float *dy, size_t lddy, const float *x, size_t ldx,
                      int n, int C, size_t L, const float *gamma, const float *stat, float *dgamma, float *dbeta);
void cuda_affine_forward(backend_ctx *c, float *y, const float *x, size_t ldn, int n, int C, size_t L,
                         const float *scale, const float *shift);
void cuda_add_relu_forward(backend_ctx *c, float *y, const float *a, const float *b, size_t count);
void cuda_relu_backward(backend_ctx *c, float *dx, const float *dy, const float *y, size_t count);
void cuda_accumulate(backend_ctx *c, float *dst, const float *src, size_t count);

#endif

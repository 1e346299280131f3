/* CUDA convolutions and pooling (conv.cu): the 1x1 convolution (stride over time), the temporal
 * convolution as k strided-batched GEMMs over time-shifted windows, and the time max-pool. */
#ifndef CTRGCN_CUDA_CONV_CUH
#define CTRGCN_CUDA_CONV_CUH
#include "backends/cuda/common.cuh"

void cuda_conv1x1_forward(backend_ctx *c, float *y, size_t ldy, const float *x, size_t ldx, const float *W,
                          const float *b, int n, int co, int ci, int T, int V, int stride, int accumulate);
void cuda_conv1x1_backward(backend_ctx *c, float *dx, size_t lddx, float *dW, float *db, const float *dy, size_t lddy,
                           const float *x, size_t ldx, const float *W, int n, int co, int ci, int T, int V,
                           int stride);
void cuda_tconv_forward(backend_ctx *c, float *y, size_t ldy, const float *x, size_t ldx, const float *W,
                        const float *b, int n, int co, int ci, int T, int V, int k, int dil, int stride);
void cuda_tconv_backward(backend_ctx *c, float *dx, size_t lddx, float *dW, float *db, const float *dy, size_t lddy,
                         const float *x, size_t ldx, const float *W, int n, int co, int ci, int T, int V, int k,
                         int dil, int stride);
void cuda_maxpool_forward(backend_ctx *c, float *y, size_t ldy, const float *x, size_t ldx, int *argmax,
                          const float *scale, const float *shift, int n, int C, int T, int V, int stride);
void cuda_maxpool_backward(backend_ctx *c, float *dx, size_t lddx, const float *dy, size_t lddy, const int *argmax,
                           int n, int C, int T, int V, int stride);

#endif

/* CUDA pooling, classifier, loss and optimizer (head.cu): the loss and SGD run on the device, so
 * a training step moves only the batch in and the logits and loss out. */
#ifndef CTRGCN_CUDA_HEAD_CUH
#define CTRGCN_CUDA_HEAD_CUH
#include "backends/cuda/common.cuh"

void cuda_pool_forward(backend_ctx *c, float *feat, const float *x, int N, int M, int F, size_t L);
void cuda_pool_backward(backend_ctx *c, float *dx, const float *dfeat, int N, int M, int F, size_t L);
void cuda_linear_forward(backend_ctx *c, float *y, const float *x, const float *W, const float *b, int N, int K, int F);
void cuda_linear_backward(backend_ctx *c, float *dx, float *dW, float *db, const float *dy, const float *x,
                          const float *W, int N, int K, int F);
void cuda_xent_forward(backend_ctx *c, double *loss, float *dlogits, const float *logits, const float *targets, int N,
                       int K);
void cuda_sgd_update(backend_ctx *c, float *p, const float *g, float *v, size_t count, float lr, float momentum,
                     float weight_decay, int nesterov, int first_step);

#endif

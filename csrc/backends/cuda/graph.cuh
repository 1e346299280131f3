/* CUDA ops of the channel-wise topology refinement (graph.cu): time mean, relation, refined
 * adjacency (cuBLAS) and the per-channel aggregation (a kernel: T x V by V x V products, too
 * small for GEMM calls to pay). */
#ifndef CTRGCN_CUDA_GRAPH_CUH
#define CTRGCN_CUDA_GRAPH_CUH
#include "backends/cuda/common.cuh"

void cuda_mean_time_forward(backend_ctx *c, float *y, const float *x, size_t ldx, int n, int C, int T, int V);
void cuda_mean_time_backward(backend_ctx *c, float *dx, size_t lddx, const float *dy, int n, int C, int T, int V);
void cuda_relation_forward(backend_ctx *c, float *rel, const float *qk, int n, int nrel, int R, int V);
void cuda_relation_backward(backend_ctx *c, float *dqk, const float *drel, const float *rel, int n, int nrel, int R,
                            int V);
void cuda_adjacency_forward(backend_ctx *c, float *AT, float *pre, const float *rel, const float *W4, const float *b4,
                            const float *alpha, const float *PA, int n, int nrel, int C, int R, int V);
void cuda_adjacency_backward(backend_ctx *c, float *drel, float *dW4, float *db4, float *dalpha, float *dPA,
                             float *dAT, const float *pre, const float *rel, const float *W4, const float *alpha,
                             int n, int nrel, int C, int R, int V);
void cuda_aggregate_forward(backend_ctx *c, float *y, size_t ldy, const float *val, size_t ldval, const float *AT,
                            const float *base, size_t ldbase, const float *shift, int relu, int n, int C, int T,
                            int V);
void cuda_aggregate_backward(backend_ctx *c, float *dval, size_t lddval, float *dAT, const float *dy, size_t lddy,
                             const float *val, size_t ldval, const float *AT, int n, int C, int T, int V);

#endif

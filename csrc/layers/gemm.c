#include "layers/blas.h"
#include "layers/layers.h"

void gemm(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda,
          const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* BLAS leaves C alone for K = 0 only when beta = 1: make it exact */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] *= beta;
        return;
    }
    CTRGCN_SGEMM(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                 trans_b ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

void blas_set_threads(int threads) { CTRGCN_BLAS_SET_THREADS(threads < 1 ? 1 : threads); }

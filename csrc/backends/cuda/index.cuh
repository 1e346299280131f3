/* Index arithmetic of the CUDA kernels, as plain functions that compile for the host too: the
 * layout permutations, the temporal convolution's tap windows and phases, the max-pool windows
 * and their inverse. tests/c/cuda_index_test.c builds them for the host (g++ or nvcc) and
 * tests/test_cuda.py checks them against NumPy and brute force, on machines without a GPU. */
#ifndef CTRGCN_CUDA_INDEX_CUH
#define CTRGCN_CUDA_INDEX_CUH
#include <stddef.h>

#ifdef __CUDACC__
#define CUDA_HD __host__ __device__ __forceinline__
#else
#define CUDA_HD static inline
#endif

/* input_forward: element e of y [N][M*V*C][T] (channel order m, v, c) -> its source in x
 * [N][C][T][V][M]. */
CUDA_HD size_t idx_input_src(size_t e, int C, int T, int V, int M) {
    const size_t t = e % T;
    size_t r = e / T;
    const size_t c = r % C;
    r /= C;
    const size_t v = r % V;
    r /= V;
    const size_t m = r % M, n = r / M;
    return (((n * C + c) * T + t) * V + v) * M + m;
}

/* persons_forward: element e of y [N*M][C][T][V] -> its source in x [N][M*V*C][T]
 * (persons_backward writes the same pairs the other way). */
CUDA_HD size_t idx_persons_src(size_t e, int C, int T, int V, int M) {
    const size_t v = e % V;
    size_t r = e / V;
    const size_t t = r % T;
    r /= T;
    const size_t c = r % C, p = r / C;
    const size_t n = p / M, m = p % M;
    return ((n * M + m) * (size_t)V * C + v * C + c) * T + t;
}

/* Column `col` of x[:, ::s] (rows of T*V, output rows of To*V) in x's row. */
CUDA_HD size_t idx_strided_col(size_t col, int V, int s) { return (col / V) * (size_t)s * V + col % V; }

/* Frames of phase p (frames p, p+s, ...) of T frames. */
CUDA_HD int phase_len(int T, int p, int s) { return T > p ? (T - p + s - 1) / s : 0; }
/* First frame (in phase-split order: phase 0's frames, then phase 1's, ...) of phase p. */
CUDA_HD int phase_start(int T, int p, int s) {
    int start = 0;
    for (int q = 0; q < p; q++) start += phase_len(T, q, s);
    return start;
}

/* Tap j of a (k,1) convolution (dilation dil, stride s, padding pad) at output frame t reads
 * frame s*t + o, o = j*dil - pad: frame t + sh of phase p = o mod s. Output frames [t0, t1)
 * read a frame that exists; returns 0 when none does. */
CUDA_HD int tap_window(int T, int j, int dil, int pad, int s, int To, int *p, int *sh, int *t0, int *t1) {
    const int o = j * dil - pad;
    *p = ((o % s) + s) % s;
    *sh = (o - *p) / s;
    const int len = phase_len(T, *p, s);
    *t0 = *sh < 0 ? -*sh : 0;
    *t1 = len - *sh < To ? len - *sh : To;
    return *t1 > *t0;
}

/* Max-pool (kernel 3, stride s, padding 1): output frame t reads frames [lo, hi]. */
CUDA_HD void pool_window(int t, int s, int T, int *lo, int *hi) {
    *lo = t * s - 1 < 0 ? 0 : t * s - 1;
    *hi = t * s + 1 < T - 1 ? t * s + 1 : T - 1;
}
/* The output frames [t0, t1] whose windows hold input frame tt (empty when t1 < t0). */
CUDA_HD void pool_inverse(int tt, int s, int To, int *t0, int *t1) {
    /* lo(t) <= tt <= hi(t)  <=>  t*s - 1 <= tt <= t*s + 1  (the clamps never exclude tt) */
    const int a = tt - 1, b = tt + 1;
    *t0 = a <= 0 ? 0 : (a + s - 1) / s;
    *t1 = b / s < To - 1 ? b / s : To - 1;
}

#endif

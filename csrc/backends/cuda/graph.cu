/* CUDA ops of the CTR-GC module over a batch: time mean, relation, refined adjacency (cuBLAS) and
 * the per-channel aggregation (a kernel: T x V by V x V products, too small for GEMM calls to pay).
 * Sums over persons (dW4, db4, dPA, dalpha) go through per-person partials and fixed-order
 * reductions, never floating-point atomics. */
#include "backends/cuda/memory.cuh" /* cuda_zero */

/* ---- time mean --------------------------------------------------------------------------------- */
static __global__ void mean_time_kernel(float *y, const float *x, size_t ldx, int C, int T, int V, size_t count) {
    GRID_STRIDE(e, count) {
        const size_t per = (size_t)C * V, i = e / per, ch = e % per / V, v = e % V;
        const float *xr = x + i * ldx + ch * T * V + v;
        float s = 0.0f;
        for (int t = 0; t < T; t++) s += xr[(size_t)t * V];
        y[e] = s * (1.0f / (float)T);
    }
}
void cuda_mean_time_forward(backend_ctx *c, float *y, const float *x, size_t ldx, int n, int C, int T, int V) {
    const size_t count = (size_t)n * C * V;
    LAUNCH(c, mean_time_kernel, count, y, x, ldx, C, T, V, count);
}

static __global__ void mean_time_back_kernel(float *dx, size_t lddx, const float *dy, int C, int T, int V,
                                             size_t count) {
    GRID_STRIDE(e, count) {
        const size_t TV = (size_t)T * V, per = (size_t)C * TV, i = e / per, r = e % per, ch = r / TV, v = r % V;
        dx[i * lddx + r] += dy[(i * C + ch) * V + v] * (1.0f / (float)T);
    }
}
void cuda_mean_time_backward(backend_ctx *c, float *dx, size_t lddx, const float *dy, int n, int C, int T, int V) {
    const size_t count = (size_t)n * C * T * V;
    LAUNCH(c, mean_time_back_kernel, count, dx, lddx, dy, C, T, V, count);
}

/* ---- relation: rel[i][q][v][u] = tanh(qk_i[q][u] - qk_i[nq + q][v]) --------------------------------- */
static __global__ void relation_kernel(float *rel, const float *qk, int nq, int V, size_t count) {
    GRID_STRIDE(e, count) {
        const size_t VV = (size_t)V * V, i = e / ((size_t)nq * VV), q = e / VV % nq, v = e % VV / V, u = e % V;
        const float *b = qk + i * 2 * nq * V;
        rel[e] = tanhf(b[q * V + u] - b[(nq + q) * V + v]);
    }
}
void cuda_relation_forward(backend_ctx *c, float *rel, const float *qk, int n, int nrel, int R, int V) {
    const size_t count = (size_t)n * nrel * R * V * V;
    LAUNCH(c, relation_kernel, count, rel, qk, nrel * R, V, count);
}

/* dq[q][u] = sum_v g (1 - rel^2), dk[q][v] = -sum_u g (1 - rel^2): one thread per value of dqk */
static __global__ void relation_back_kernel(float *dqk, const float *drel, const float *rel, int nq, int V,
                                            size_t count) {
    GRID_STRIDE(e, count) {
        const size_t VV = (size_t)V * V, i = e / (2 * (size_t)nq * V), row = e / V % (2 * nq), w = e % V;
        const size_t q = row < (size_t)nq ? row : row - nq;
        const float *g = drel + (i * nq + q) * VV, *r = rel + (i * nq + q) * VV;
        float s = 0.0f;
        if (row < (size_t)nq) {
            for (int v = 0; v < V; v++) s += g[v * V + w] * (1.0f - r[v * V + w] * r[v * V + w]);
            dqk[e] = s;
        } else {
            for (int u = 0; u < V; u++) s += g[w * V + u] * (1.0f - r[w * V + u] * r[w * V + u]);
            dqk[e] = -s;
        }
    }
}
void cuda_relation_backward(backend_ctx *c, float *dqk, const float *drel, const float *rel, int n, int nrel, int R,
                            int V) {
    const size_t count = (size_t)n * 2 * nrel * R * V;
    LAUNCH(c, relation_back_kernel, count, dqk, drel, rel, nrel * R, V, count);
}

/* ---- refined adjacency ------------------------------------------------------------------------- */
/* AT = alpha * (W4 rel + b4) + PA^T per subset, in place over the product W4 rel */
static __global__ void adjacency_kernel(float *AT, const float *b4, const float *alpha, const float *PA, int C, int V,
                                        size_t count) {
    const float a = *alpha; /* on the device, where training moves it */
    GRID_STRIDE(e, count) {
        const size_t VV = (size_t)V * V, row = e / VV % (3 * (size_t)C), j = row / C, v = e % VV / V, u = e % V;
        AT[e] = a * (AT[e] + b4[row]) + PA[j * VV + u * V + v];
    }
}

void cuda_adjacency_forward(backend_ctx *c, float *AT, const float *rel, const float *W4, const float *b4,
                            const float *alpha, const float *PA, int n, int nrel, int C, int R, int V) {
    const int VV = V * V;
    const long long sP = 3LL * C * VV, sR = (long long)nrel * R * VV;
    if (nrel == 1)
        gemm_rm(c, 0, 0, 3 * C, VV, R, 1.0f, W4, R, 0, rel, VV, sR, 0.0f, AT, VV, sP, n);
    else
        for (int j = 0; j < 3; j++)
            gemm_rm(c, 0, 0, C, VV, R, 1.0f, W4 + (size_t)j * C * R, R, 0, rel + (size_t)j * R * VV, VV, sR, 0.0f,
                    AT + (size_t)j * C * VV, VV, sP, n);
    const size_t count = (size_t)n * 3 * C * VV;
    LAUNCH(c, adjacency_kernel, count, AT, b4, alpha, PA, C, V, count);
}

/* Block partials of sum a[e]*b[e] (double), then one thread adds their sum to dst[0]. */
#define DOT_PARTS 1024
static __global__ void dot_partials_kernel(double *part, const float *a, const float *b, size_t count) {
    __shared__ double sh[32];
    double s = 0.0;
    GRID_STRIDE(e, count) s += (double)a[e] * b[e];
    s = block_sum(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}
static __global__ void add_sum_kernel(float *dst, const double *part, int parts) {
    double s = 0.0;
    for (int p = 0; p < parts; p++) s += part[p];
    dst[0] += (float)s;
}
/* dst[0] += sum a[e]*b[e] over count values; part: DOT_PARTS doubles of scratch */
static void dot_add(backend_ctx *c, float *dst, double *part, const float *a, const float *b, size_t count) {
    const unsigned parts = grid_for(count) < DOT_PARTS ? grid_for(count) : DOT_PARTS;
    LAUNCH_GRID(c, dot_partials_kernel, parts, CUDA_THREADS, 0, part, a, b, count);
    LAUNCH_GRID(c, add_sum_kernel, 1, 1, 0, dst, part, (int)parts);
}
static __global__ void scale_kernel(float *x, const float *alpha, size_t count) {
    const float a = *alpha;
    GRID_STRIDE(e, count) x[e] *= a;
}
static __global__ void axpy_kernel(float *y, const float *x, const float *alpha, size_t count) {
    const float a = *alpha;
    GRID_STRIDE(e, count) y[e] += a * x[e];
}
/* dPA[j][u][v] += S[j][v][u] */
static __global__ void add_transposed_kernel(float *dPA, const float *S, int V, size_t count) {
    GRID_STRIDE(e, count) {
        const size_t VV = (size_t)V * V, j = e / VV, v = e % VV / V, u = e % V;
        dPA[j * VV + u * V + v] += S[e];
    }
}

/* As on the CPU (cpu/graph.c): the products run on the unscaled dAT, alpha scales their sums, and
 * dalpha = sum W4 * G + sum b4 * rowsum(dAT) with G = sum_i dAT_i rel_i^T, so no pre is kept. */
void cuda_adjacency_backward(backend_ctx *c, float *drel, float *dW4, float *db4, float *dalpha, float *dPA,
                             const float *dAT, const float *rel, const float *W4, const float *b4, const float *alpha,
                             int n, int nrel, int C, int R, int V) {
    const int VV = V * V;
    const long long sP = 3LL * C * VV, sR = (long long)nrel * R * VV;
    const size_t s1 = (size_t)n * 3 * VV, s2 = 3 * (size_t)VV, pw = (size_t)n * 3 * C * R, nW = 3 * (size_t)C * R;
    float *buf = (float *)cuda_scratch(c, 0, sizeof(float) * (s1 + s2 + pw + nW + 3 * (size_t)C));
    double *dpart = (double *)cuda_scratch(c, 1, sizeof(double) * DOT_PARTS);
    const float *ones = cuda_ones(c, (size_t)(C > n ? C : n));
    if (!buf || !dpart || !ones) return;
    float *S1 = buf, *S2 = S1 + s1, *P = S2 + s2, *G = P + pw, *rs = G + nW;
    /* dPA: over each subset's C rows (one batched product), then persons */
    gemm_rm(c, 0, 0, 1, VV, C, 1.0f, ones, C, 0, dAT, VV, (long long)C * VV, 0.0f, S1, VV, VV, 3 * n);
    cuda_zero(c, S2, sizeof(float) * s2);
    sum_persons_add(c, S2, S1, n, s2);
    LAUNCH(c, add_transposed_kernel, s2, dPA, S2, V, s2);
    /* G = sum_i dAT_i rel_i^T and the row sums of dAT; drel_i = W4^T dAT_i, then scaled by alpha */
    if (nrel == 1) {
        gemm_rm(c, 0, 1, 3 * C, R, VV, 1.0f, dAT, VV, sP, rel, VV, sR, 0.0f, P, R, 3LL * C * R, n);
        gemm_rm(c, 1, 0, R, VV, 3 * C, 1.0f, W4, R, 0, dAT, VV, sP, 0.0f, drel, VV, sR, n);
    } else {
        for (int j = 0; j < 3; j++) {
            gemm_rm(c, 0, 1, C, R, VV, 1.0f, dAT + (size_t)j * C * VV, VV, sP, rel + (size_t)j * R * VV, VV, sR, 0.0f,
                    P + (size_t)j * C * R, R, 3LL * C * R, n);
            gemm_rm(c, 1, 0, R, VV, C, 1.0f, W4 + (size_t)j * C * R, R, 0, dAT + (size_t)j * C * VV, VV, sP, 0.0f,
                    drel + (size_t)j * R * VV, VV, sR, n);
        }
    }
    const size_t nrelv = (size_t)n * nrel * R * VV;
    LAUNCH(c, scale_kernel, nrelv, drel, alpha, nrelv);
    cuda_zero(c, G, sizeof(float) * (nW + 3 * (size_t)C));
    sum_persons_add(c, G, P, n, nW);
    rows_sum_add(c, rs, dAT, (size_t)sP, n, 3 * C, (size_t)VV);
    dot_add(c, dalpha, dpart, W4, G, nW);
    dot_add(c, dalpha, dpart, b4, rs, 3 * (size_t)C);
    LAUNCH(c, axpy_kernel, nW, dW4, G, alpha, nW);
    LAUNCH(c, axpy_kernel, 3 * (size_t)C, db4, rs, alpha, 3 * (size_t)C);
}

/* ---- aggregation ------------------------------------------------------------------------------- */
/* Up to this many joints the three V x V matrices of one channel sit in shared memory. */
#define AGG_SHARED_V 48

/* One block per (person, channel): y[c][t][u] = act(shift + base + sum_j sum_v val[jC+c][t][v] AT[j][c][v][u]) */
template <bool SHARED>
static __global__ void aggregate_kernel(float *y, size_t ldy, const float *val, size_t ldval, const float *AT,
                                        const float *base, size_t ldbase, const float *shift, int relu, int C, int T,
                                        int V) {
    DYNAMIC_SHARED(float, sA);
    const size_t i = blockIdx.x, ch = blockIdx.y, VV = (size_t)V * V, TV = (size_t)T * V;
    const float *A = AT + i * 3 * C * VV + ch * VV; /* subset j at A + j*C*VV */
    if (SHARED) {
        for (size_t k = threadIdx.x; k < 3 * VV; k += blockDim.x) sA[k] = A[k / VV * C * VV + k % VV];
        __syncthreads();
    }
    const float sh = shift ? shift[ch] : 0.0f;
    for (size_t e = threadIdx.x; e < TV; e += blockDim.x) {
        const size_t t = e / V, u = e % V;
        float acc = sh + (base ? base[i * ldbase + ch * TV + e] : 0.0f);
        for (int j = 0; j < 3; j++) {
            const float *vr = val + i * ldval + ((size_t)j * C + ch) * TV + t * V;
            const float *Aj = SHARED ? sA + j * VV : A + j * C * VV;
            for (int v = 0; v < V; v++) acc += vr[v] * Aj[(size_t)v * V + u];
        }
        y[i * ldy + ch * TV + e] = relu ? (acc > 0.0f ? acc : 0.0f) : acc; /* NaN -> 0, as the CPU */
    }
}

void cuda_aggregate_forward(backend_ctx *c, float *y, size_t ldy, const float *val, size_t ldval, const float *AT,
                            const float *base, size_t ldbase, const float *shift, int relu, int n, int C, int T,
                            int V) {
    const dim3 grid(n, C);
    if (V <= AGG_SHARED_V)
        LAUNCH_GRID(c, aggregate_kernel<true>, grid, CUDA_THREADS, sizeof(float) * 3 * V * V, y, ldy, val, ldval, AT,
                    base, ldbase, shift, relu, C, T, V);
    else
        LAUNCH_GRID(c, aggregate_kernel<false>, grid, CUDA_THREADS, 0, y, ldy, val, ldval, AT, base, ldbase, shift,
                    relu, C, T, V);
}

/* One block per (person, channel): dval[jC+c][t][v] = sum_u dy[c][t][u] AT[j][c][v][u] and
 * dAT[j][c][v][u] = sum_t val[jC+c][t][v] dy[c][t][u], both written. */
template <bool SHARED>
static __global__ void aggregate_back_kernel(float *dval, size_t lddval, float *dAT, const float *dy, size_t lddy,
                                             const float *val, size_t ldval, const float *AT, int C, int T, int V) {
    DYNAMIC_SHARED(float, sA);
    const size_t i = blockIdx.x, ch = blockIdx.y, VV = (size_t)V * V, TV = (size_t)T * V;
    const float *A = AT + i * 3 * C * VV + ch * VV;
    if (SHARED) {
        for (size_t k = threadIdx.x; k < 3 * VV; k += blockDim.x) sA[k] = A[k / VV * C * VV + k % VV];
        __syncthreads();
    }
    const float *g = dy + i * lddy + ch * TV;
    for (size_t e = threadIdx.x; e < 3 * TV; e += blockDim.x) {
        const size_t j = e / TV, t = e % TV / V, v = e % V;
        const float *Aj = SHARED ? sA + j * VV : A + j * C * VV;
        float acc = 0.0f;
        for (int u = 0; u < V; u++) acc += g[t * V + u] * Aj[v * V + u];
        dval[i * lddval + (j * C + ch) * TV + t * V + v] = acc;
    }
    for (size_t e = threadIdx.x; e < 3 * VV; e += blockDim.x) {
        const size_t j = e / VV, v = e % VV / V, u = e % V;
        const float *vr = val + i * ldval + (j * C + ch) * TV;
        float acc = 0.0f;
        for (int t = 0; t < T; t++) acc += vr[(size_t)t * V + v] * g[(size_t)t * V + u];
        dAT[i * 3 * C * VV + (j * C + ch) * VV + v * V + u] = acc;
    }
}

void cuda_aggregate_backward(backend_ctx *c, float *dval, size_t lddval, float *dAT, const float *dy, size_t lddy,
                             const float *val, size_t ldval, const float *AT, int n, int C, int T, int V) {
    const dim3 grid(n, C);
    if (V <= AGG_SHARED_V)
        LAUNCH_GRID(c, aggregate_back_kernel<true>, grid, CUDA_THREADS, sizeof(float) * 3 * V * V, dval, lddval, dAT,
                    dy, lddy, val, ldval, AT, C, T, V);
    else
        LAUNCH_GRID(c, aggregate_back_kernel<false>, grid, CUDA_THREADS, 0, dval, lddval, dAT, dy, lddy, val, ldval,
                    AT, C, T, V);
}

/* The register-blocked small-product kernel of the CTR-GC aggregation, as a template: ctrgc.c
 * includes it once per vector width, with
 *     SG_VW      lanes per vector (8: AVX2 / SSE pairs; 16: AVX-512)
 *     SG(x)      the name x with the width's suffix
 *     SG_MR1..4  rows per tile for 1..4 vectors of columns (MR * NC accumulators: enough
 *                independent FMAs to hide their latency, few enough to stay in registers)
 * C[M][N] = sum over nA operand pairs of A_a B_a, each K deep, then an epilogue (tile_out).
 * A_a is read as A_a[i*lda + k], or A_a[k*lda + i] when trans_a; B_a = Bp + a*K*ldb is
 * [K][ldb], ldb = SG_VW * NC, zero-padded past N. No include guard: included on purpose twice. */

typedef float SG(vec) __attribute__((vector_size(SG_VW * sizeof(float))));

static inline __attribute__((always_inline)) SG(vec) SG(load)(const float *p) {
    SG(vec) r;
    memcpy(&r, p, sizeof r);
    return r;
}

/* Rows [i0, i0 + MR) of C. */
static inline __attribute__((always_inline)) void SG(tile)(const tile_out *o, const float *const *As, int nA, int lda,
                                                         int trans_a, const float *Bp, int i0, int N, int K,
                                                         const int MR, const int NC) {
    const int ldb = SG_VW * NC;
    SG(vec) acc[12][4];
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NC; j++) acc[r][j] = (SG(vec)){0};
    for (int a = 0; a < nA; a++) {
        const float *A = As[a], *B = Bp + (size_t)a * K * ldb;
        for (int k = 0; k < K; k++) {
            SG(vec) b[4];
            for (int j = 0; j < NC; j++) b[j] = SG(load)(B + (size_t)k * ldb + SG_VW * j);
            for (int r = 0; r < MR; r++) {
                const float ar = trans_a ? A[(size_t)k * lda + i0 + r] : A[(size_t)(i0 + r) * lda + k];
                for (int j = 0; j < NC; j++) acc[r][j] += ar * b[j];
            }
        }
    }
    /* The tile's rows are contiguous in C (ldc = N): stage them compactly, in order, each vector
     * store overwriting the padding lanes of the one before, then run the epilogue over MR*N
     * contiguous values as whole vectors. */
    float buf[12 * 64 + 64];
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NC; j++) memcpy(buf + r * N + SG_VW * j, &acc[r][j], sizeof(SG(vec)));
    const int count = MR * N;
    float *c = o->C + (size_t)i0 * N;
    const float sh = o->shift;
    if (o->base) {
        const float *bs = o->base + (size_t)i0 * N;
        if (o->relu) {
            for (int e = 0; e < count; e++) {
                const float v = buf[e] + sh + bs[e];
                c[e] = v > 0.0f ? v : 0.0f;
            }
        } else {
            for (int e = 0; e < count; e++) c[e] = buf[e] + sh + bs[e];
        }
    } else if (o->relu) {
        for (int e = 0; e < count; e++) {
            const float v = buf[e] + sh;
            c[e] = v > 0.0f ? v : 0.0f;
        }
    } else {
        for (int e = 0; e < count; e++) c[e] = buf[e] + sh;
    }
}

/* All M rows: blocks of MR, then of 4 and 2 (short T at the deep blocks leaves long tails), then one. */
static inline __attribute__((always_inline)) void SG(rows)(const tile_out *o, const float *const *As, int nA, int lda,
                                                         int trans_a, const float *Bp, int M, int N, int K, const int MR,
                                                         const int NC) {
    int i = 0;
    for (; i + MR <= M; i += MR) SG(tile)(o, As, nA, lda, trans_a, Bp, i, N, K, MR, NC);
    if (MR > 4)
        for (; i + 4 <= M; i += 4) SG(tile)(o, As, nA, lda, trans_a, Bp, i, N, K, 4, NC);
    if (MR > 2)
        for (; i + 2 <= M; i += 2) SG(tile)(o, As, nA, lda, trans_a, Bp, i, N, K, 2, NC);
    for (; i < M; i++) SG(tile)(o, As, nA, lda, trans_a, Bp, i, N, K, 1, NC);
}

/* Every (layout, width) pair its own copy: the loops then carry no run-time branches. */
static inline __attribute__((always_inline)) void SG(gemm)(const tile_out *o, const float *const *As, int nA, int lda,
                                                         int trans_a, const float *Bp, int M, int N, int K) {
#define SG_CASES(TA)                                                       \
    switch ((N + SG_VW - 1) / SG_VW) {                                     \
    case 1: SG(rows)(o, As, nA, lda, TA, Bp, M, N, K, SG_MR1, 1); break;   \
    case 2: SG(rows)(o, As, nA, lda, TA, Bp, M, N, K, SG_MR2, 2); break;   \
    case 3: SG(rows)(o, As, nA, lda, TA, Bp, M, N, K, SG_MR3, 3); break;   \
    default: SG(rows)(o, As, nA, lda, TA, Bp, M, N, K, SG_MR4, 4); break;  \
    }
    if (trans_a) {
        SG_CASES(1)
    } else {
        SG_CASES(0)
    }
#undef SG_CASES
}

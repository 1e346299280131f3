/* Channel-wise topology refinement: the relation and the per-channel graph aggregation. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"

/* tanh that vectorises (libm's tanhf is a call per value, a fifth of the relation's time):
 * |x| < 0.625 by an odd polynomial, else 1 - 2 / (exp(2|x|) + 1) with exp from a degree-6
 * polynomial on [-ln2/2, ln2/2] scaled by 2^n. Within 2-3 ulp of tanhf over the floats.
 * Both branches are computed and one is picked with bit operations: written as choices
 * (a ? b : c), GCC threads the clamp into a path of its own and moves the division into the
 * branch that uses it, and a loop with branches does not vectorise (the relation then ran at
 * about 15 cycles a value). On the bits of |x| (non-negative floats order as their bits do),
 * min(|x|, 9) is an integer min; tanh(9) rounds to 1 in float; the sign comes from x's. */
static inline __attribute__((always_inline)) float tanh_branchless(float x) {
    union { float f; uint32_t u; } xb = {x}, a;
    a.u = xb.u & 0x7fffffffu;
    a.u = a.u < 0x41100000u ? a.u : 0x41100000u; /* 9.0f */
    const float ax = a.f, z = ax * ax;
    const float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                          1.33314422036e-1f) * z - 3.33332819422e-1f) * z * ax + ax;
    /* exp(2 ax) = 2^n exp(r), r = 2 ax - n ln2 */
    const float y = 2.0f * ax, n = (float)(int32_t)(y * 1.44269504089f + 0.5f); /* y >= 0: truncation rounds */
    const float r = (y - n * 0.693359375f) + n * 2.12194440e-4f;
    const float p = ((((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r +
                       1.6666665459e-1f) * r + 5.0000001201e-1f) * r * r) + r + 1.0f;
    union { float f; int32_t i; } scale = {.i = ((int32_t)n + 127) << 23};
    union { float f; uint32_t u; } sm = {small}, lg = {1.0f - 2.0f / (p * scale.f + 1.0f)}, t;
    const uint32_t pick_small = 0u - (uint32_t)(a.u < 0x3f200000u); /* |x| < 0.625f */
    t.u = (sm.u & pick_small) | (lg.u & ~pick_small) | (xb.u & 0x80000000u);
    return t.f;
}

CTRGCN_HOT_BODY(ctrgc_relation, (float *relT, const float *q, const float *k, int R, int V)) {
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) {
            const float kv = k[(size_t)r * V + v];
            const float *qr = q + (size_t)r * V;
            float *dst = relT + ((size_t)r * V + v) * V;
#pragma omp simd
            for (int u = 0; u < V; u++) dst[u] = tanh_branchless(qr[u] - kv);
        }
}
CTRGCN_HOT_ENTRY(ctrgc_relation, (float *relT, const float *q, const float *k, int R, int V), (relT, q, k, R, V))

/* The aggregation is, per channel, a few small matrix products (T x V by V x V). They are too
 * small for BLAS calls to pay, so a register-blocked kernel does them (layers/small_gemm.h): MR
 * output rows at a time, the V columns as NC vectors held in registers, B zero-padded to whole
 * vectors. The forward runs the three subsets as one product (K = 3V), so each output row is
 * stored once, with its epilogue. 8-wide vectors serve plain x86-64 and AVX2; where the CPU has
 * AVX-512, 16-wide ones (twice the work per instruction on full-width cores). Joints beyond 32
 * take a plain loop. */
/* GCC vector types: whole registers in the vector copies, emulated in the plain one (whose ABI
 * note about passing such vectors does not concern these inlined helpers). */
#pragma GCC diagnostic ignored "-Wpsabi"

/* The epilogue of an output tile: C[r][j] = act(shift + base[r][j] + tile[r][j]) for j < N.
 * C's rows are contiguous (leading dimension N), and base's too. */
typedef struct {
    float *C;
    const float *base; /* NULL: none; same leading dimension as C */
    float shift;
    int relu;
} tile_out;

#define SG_VW 8
#define SG(x) x##_w8
#define SG_MASKED 0
#define SG_MR1 8
#define SG_MR2 6
#define SG_MR3 4
#define SG_MR4 3
#include "layers/small_gemm.h"

CTRGCN_HOT_BODY(small_gemm8, (const tile_out *o, const float *const *As, int nA, int lda, int trans_a,
                              const float *const *Bs, int ldb, int M, int N, int K)) {
    gemm_w8(o, As, nA, lda, trans_a, Bs, ldb, M, N, K);
}
CTRGCN_HOT_ENTRY(small_gemm8, (const tile_out *o, const float *const *As, int nA, int lda, int trans_a,
                               const float *const *Bs, int ldb, int M, int N, int K),
                 (o, As, nA, lda, trans_a, Bs, ldb, M, N, K))

#if defined(__GNUC__) && defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")
#include <immintrin.h>
#define SG_VW 16
#define SG(x) x##_w16
#define SG_MASKED 1
#define SG_MR1 12
#define SG_MR2 8
#define SG_MR3 6 /* widths past 32 columns do not reach here (SMALL_V) */
#define SG_MR4 4
#include "layers/small_gemm.h"
static void small_gemm16(const tile_out *o, const float *const *As, int nA, int lda, int trans_a,
                         const float *const *Bs, int ldb, int M, int N, int K) {
    gemm_w16(o, As, nA, lda, trans_a, Bs, ldb, M, N, K);
}

/* The input gradient of the aggregation for every subset at once: dval_s [T][V] = dy [T][V] x
 * AT_s^T, s < nsub, as one product dy x [AT_0^T | AT_1^T | ...] ([V][nsub*V], Bcat, zero-padded to
 * nc whole vectors), whose output rows are cut back into the subsets by masked stores. Subset by
 * subset, V = 20 joints fill 20 of the 32 lanes of two vectors; side by side, 60 of 64. */
#define CAT_MAX_NC 5 /* nsub * V <= 80 */
typedef struct {
    int nseg[CAT_MAX_NC], sub[CAT_MAX_NC][3], off[CAT_MAX_NC][3];
    __mmask16 mask[CAT_MAX_NC][3];
} cat_cuts;

/* Which lanes of vector j go to which subset, at which column of its row (off may be negative:
 * the lanes before the subset's first column are masked off). */
static void cat_cuts_init(cat_cuts *cu, int nc, int nsub, int V) {
    for (int j = 0; j < nc; j++) {
        cu->nseg[j] = 0;
        for (int sb = 0; sb < nsub; sb++) {
            const int lo = sb * V > 16 * j ? sb * V : 16 * j, hi = (sb + 1) * V < 16 * (j + 1) ? (sb + 1) * V : 16 * (j + 1);
            if (hi <= lo) continue;
            const int g = cu->nseg[j]++;
            cu->sub[j][g] = sb;
            cu->off[j][g] = 16 * j - sb * V;
            cu->mask[j][g] = (__mmask16)((((1u << (hi - lo)) - 1u) << (lo - 16 * j)) & 0xffffu);
        }
    }
}

static inline __attribute__((always_inline)) void cat_tile(float *const *dv, const float *dy, const float *Bcat,
                                                           int ldb, int t0, int V, const cat_cuts *cu, const int MR,
                                                           const int NC) {
    __m512 acc[6][CAT_MAX_NC];
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NC; j++) acc[r][j] = _mm512_setzero_ps();
    for (int k = 0; k < V; k++) {
        __m512 b[CAT_MAX_NC];
        for (int j = 0; j < NC; j++) b[j] = _mm512_loadu_ps(Bcat + (size_t)k * ldb + 16 * j);
        for (int r = 0; r < MR; r++) {
            const __m512 a = _mm512_set1_ps(dy[(size_t)(t0 + r) * V + k]);
            for (int j = 0; j < NC; j++) acc[r][j] = _mm512_fmadd_ps(a, b[j], acc[r][j]);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NC; j++)
            for (int g = 0; g < cu->nseg[j]; g++)
                _mm512_mask_storeu_ps(dv[cu->sub[j][g]] + (ptrdiff_t)(t0 + r) * V + cu->off[j][g], cu->mask[j][g],
                                      acc[r][j]);
}

static inline __attribute__((always_inline)) void cat_rows(float *const *dv, const float *dy, const float *Bcat,
                                                           int ldb, int T, int V, const cat_cuts *cu, const int MR,
                                                           const int NC) {
    int t = 0;
    for (; t + MR <= T; t += MR) cat_tile(dv, dy, Bcat, ldb, t, V, cu, MR, NC);
    for (; t + 2 <= T; t += 2) cat_tile(dv, dy, Bcat, ldb, t, V, cu, 2, NC);
    for (; t < T; t++) cat_tile(dv, dy, Bcat, ldb, t, V, cu, 1, NC);
}

static void dval_cat16(float *const *dv, const float *dy, const float *Bcat, int ldb, int T, int V, int nc,
                       const cat_cuts *cu) {
    switch (nc) {
    case 1: cat_rows(dv, dy, Bcat, ldb, T, V, cu, 6, 1); break;
    case 2: cat_rows(dv, dy, Bcat, ldb, T, V, cu, 6, 2); break;
    case 3: cat_rows(dv, dy, Bcat, ldb, T, V, cu, 6, 3); break;
    case 4: cat_rows(dv, dy, Bcat, ldb, T, V, cu, 6, 4); break;
    default: cat_rows(dv, dy, Bcat, ldb, T, V, cu, 4, 5); break;
    }
}
#pragma GCC pop_options
/* The kernel that will run: 16-wide and masked (B as stored) where the CPU has AVX-512, else
 * 8-wide over B copies zero-padded to whole vectors. */
static int agg_masked(void) { return cpu_has_avx512(); }
#else
static int agg_masked(void) { return 0; }
#endif
#define PAD_LANES 8 /* the 8-wide kernel's vector */

/* C = ... with B as the kernel wants it (masked: as stored, ldb >= N; else padded, ldb = 8 * NC). */
static void small_gemm(const tile_out *o, const float *const *As, int nA, int lda, int trans_a, const float *const *Bs,
                       int ldb, int M, int N, int K, int masked) {
#if defined(__GNUC__) && defined(__x86_64__)
    if (masked) {
        small_gemm16(o, As, nA, lda, trans_a, Bs, ldb, M, N, K);
        return;
    }
#endif
    (void)masked;
    small_gemm8(o, As, nA, lda, trans_a, Bs, ldb, M, N, K);
}

/* dst[r][0..ld) = src[r*lds + c] (c < cols) then zeros; transposed: src[c*lds + r]. Inline loops,
 * not memcpy/memset calls: the rows are a few dozen floats, and at the deep blocks (short T)
 * this copy costs as much as the product. */
static void pad_rows(float *restrict dst, int ld, const float *restrict src, int rows, int cols, int lds,
                     int transposed) {
    for (int r = 0; r < rows; r++) {
        float *restrict d = dst + (size_t)r * ld;
        if (transposed)
            for (int c = 0; c < cols; c++) d[c] = src[(size_t)c * lds + r];
        else
            for (int c = 0; c < cols; c++) d[c] = src[(size_t)r * lds + c];
        for (int c = cols; c < ld; c++) d[c] = 0.0f;
    }
}

#define SMALL_V 32
#define MAX_SUB 3

/* The operands of channel c (its values and adjacency in every subset), asked for while the channel
 * before it computes (layers.h, prefetch_span). */
static void prefetch_channel(const float *val, const float *AT, int C, int c, int T, int V, int nsub) {
    for (int i = 0; i < nsub; i++) {
        prefetch_span(val + ((size_t)i * C + c) * T * V, sizeof(float) * (size_t)T * V);
        prefetch_span(AT + ((size_t)i * C + c) * V * V, sizeof(float) * (size_t)V * V);
    }
}

void ctrgc_aggregate_rows(float *y, const float *val, const float *AT, const float *base, const float *shift, int C,
                          int c0, int c1, int T, int V, int nsub, int relu) {
    float Bp[MAX_SUB * SMALL_V * SMALL_V];
    const int masked = agg_masked(), ldp = masked ? V : (V + PAD_LANES - 1) / PAD_LANES * PAD_LANES;
    for (int c = c0; c < c1; c++) {
        float *yc = y + (size_t)c * T * V;
        const float *bc = base ? base + (size_t)c * T * V : NULL;
        if (c + 1 < c1) prefetch_channel(val, AT, C, c + 1, T, V, nsub);
        const float sh = shift ? shift[c] : 0.0f;
        if (V <= SMALL_V && nsub <= MAX_SUB) {
            const float *As[MAX_SUB], *Bs[MAX_SUB];
            for (int i = 0; i < nsub; i++) {
                As[i] = val + ((size_t)i * C + c) * T * V;
                Bs[i] = AT + ((size_t)i * C + c) * V * V;
                if (!masked) {
                    pad_rows(Bp + (size_t)i * V * ldp, ldp, Bs[i], V, V, V, 0);
                    Bs[i] = Bp + (size_t)i * V * ldp;
                }
            }
            const tile_out o = {yc, bc, sh, relu};
            small_gemm(&o, As, nsub, V, 0, Bs, ldp, T, V, V, masked);
            continue;
        }
        for (size_t e = 0; e < (size_t)T * V; e++) yc[e] = sh + (bc ? bc[e] : 0.0f);
        for (int i = 0; i < nsub; i++) {
            const float *A = AT + ((size_t)i * C + c) * V * V;
            const float *vr = val + ((size_t)i * C + c) * T * V;
            for (int t = 0; t < T; t++)
                for (int v = 0; v < V; v++) {
                    const float a = vr[(size_t)t * V + v];
                    for (int u = 0; u < V; u++) yc[(size_t)t * V + u] += a * A[(size_t)v * V + u];
                }
        }
        if (relu) add_relu(yc, yc, NULL, (size_t)T * V);
    }
}

void ctrgc_aggregate(float *y, const float *val, const float *AT, const float *base, const float *shift, int C, int T,
                     int V, int nsub, int relu) {
    ctrgc_aggregate_rows(y, val, AT, base, shift, C, 0, C, T, V, nsub, relu);
}

void ctrgc_aggregate_backward_rows(float *dval, float *dAT, const float *dy, const float *val, const float *AT, int C,
                                   int c0, int c1, int T, int V, int nsub, float *dyp) {
    float Bp[SMALL_V * SMALL_V];
    const int masked = agg_masked(), ldp = masked ? V : (V + PAD_LANES - 1) / PAD_LANES * PAD_LANES;
    if (V > SMALL_V) dyp = NULL; /* the plain loop needs no padded copy */
#if defined(__GNUC__) && defined(__x86_64__)
    /* the subsets side by side for dval (dval_cat16) where a vector meets at most three of them */
    const int nc = (nsub * V + 15) / 16, ldb = 16 * nc;
    const int cat = masked && dyp && V >= 8 && nsub <= MAX_SUB && nc <= CAT_MAX_NC;
    float Bcat[SMALL_V * 16 * CAT_MAX_NC];
    cat_cuts cu;
    if (cat) {
        cat_cuts_init(&cu, nc, nsub, V);
        memset(Bcat, 0, sizeof(float) * (size_t)V * ldb); /* the padding columns stay zero */
    }
#endif
    for (int c = c0; c < c1; c++) {
        const float *g = dy + (size_t)c * T * V;
        if (c + 1 < c1) { /* the next channel's operands (its outputs too: no gain measured) */
            prefetch_span(g + (size_t)T * V, sizeof(float) * (size_t)T * V);
            prefetch_channel(val, AT, C, c + 1, T, V, nsub);
        }
        const float *gB = g; /* dy as the B operand of dAT = val^T dy */
        if (dyp && !masked) {
            pad_rows(dyp, ldp, g, T, V, V, 0);
            gB = dyp;
        }
#if defined(__GNUC__) && defined(__x86_64__)
        if (cat) {
            float *dv[MAX_SUB];
            for (int i = 0; i < nsub; i++) {
                transpose_f32(Bcat + (size_t)i * V, ldb, AT + ((size_t)i * C + c) * V * V, V, V, V);
                dv[i] = dval + ((size_t)i * C + c) * T * V;
            }
            dval_cat16(dv, g, Bcat, ldb, T, V, nc, &cu); /* dval_s = dy AT_s^T, every s */
            /* dAT_s = val_s^T dy subset by subset: gathered side by side (masked loads from
             * three rows), the same product ran 10-35% slower */
            for (int i = 0; i < nsub; i++) {
                const float *vr = val + ((size_t)i * C + c) * T * V;
                const tile_out oa = {dAT + ((size_t)i * C + c) * V * V, NULL, 0.0f, 0};
                small_gemm(&oa, &vr, 1, V, 1, &gB, ldp, V, V, T, masked);
            }
            continue;
        }
#endif
        for (int i = 0; i < nsub; i++) {
            const float *A = AT + ((size_t)i * C + c) * V * V;
            const float *vr = val + ((size_t)i * C + c) * T * V;
            float *dv = dval + ((size_t)i * C + c) * T * V, *dA = dAT + ((size_t)i * C + c) * V * V;
            if (dyp) {
                if (masked) /* AT transposed: [u][v] */
                    transpose_f32(Bp, V, A, V, V, V);
                else
                    pad_rows(Bp, ldp, A, V, V, V, 1);
                const float *Bt = Bp;
                const tile_out ov = {dv, NULL, 0.0f, 0}, oa = {dA, NULL, 0.0f, 0};
                small_gemm(&ov, &g, 1, V, 0, &Bt, ldp, T, V, V, masked);   /* dval = dy AT^T */
                small_gemm(&oa, &vr, 1, V, 1, &gB, ldp, V, V, T, masked); /* dAT = val^T dy */
            } else {
                memset(dA, 0, sizeof(float) * (size_t)V * V);
                for (int t = 0; t < T; t++)
                    for (int v = 0; v < V; v++) {
                        float acc = 0.0f;
                        const float a = vr[(size_t)t * V + v];
                        for (int u = 0; u < V; u++) {
                            acc += g[(size_t)t * V + u] * A[(size_t)v * V + u];
                            dA[(size_t)v * V + u] += a * g[(size_t)t * V + u];
                        }
                        dv[(size_t)t * V + v] = acc;
                    }
            }
        }
    }
}

void ctrgc_aggregate_backward(float *dval, float *dAT, const float *dy, const float *val, const float *AT, int C, int T,
                              int V, int nsub) {
    float *dyp = V <= SMALL_V ? malloc(sizeof(float) * (size_t)T * SMALL_V) : NULL;
    ctrgc_aggregate_backward_rows(dval, dAT, dy, val, AT, C, 0, C, T, V, nsub, dyp);
    free(dyp);
}

void ctrgc_relation_backward(float *dq, float *dk, const float *drelT, const float *relT, int R, int V) {
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) {
            const float *g = drelT + ((size_t)r * V + v) * V, *rl = relT + ((size_t)r * V + v) * V;
            float sum = 0.0f;
            for (int u = 0; u < V; u++) {
                const float d = g[u] * (1.0f - rl[u] * rl[u]);
                dq[(size_t)r * V + u] += d;
                sum += d;
            }
            dk[(size_t)r * V + v] -= sum;
        }
}

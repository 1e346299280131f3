/* Per-sample randomness, modalities (bone, motion) and the NTU crop-resize and rotation.
 * Arrays are x[C][T][V][M] float32, C-contiguous, as the model takes them. */
#include <math.h>
#include <string.h>

#include "ctrgcn_data.h"
#include "data/data_internal.h"

/* Bone parents from the reference pair lists (1-based (child, parent)); (21, 21) and (3, 3) are
 * the roots, whose bone is zero. */
const int ctrgcn_ntu_parent[CTRGCN_NTU_JOINTS] = {1,  20, 20, 2,  20, 4,  5,  6,  20, 8,  9,  10, 0,
                                                  12, 13, 14, 0,  16, 17, 18, 20, 22, 7,  24, 11};
const int ctrgcn_ucla_parent[CTRGCN_UCLA_JOINTS] = {1, 2, 2, 2, 2, 4, 5, 6, 2, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18};

/* splitmix64: tiny, fast, and good enough for augmentation; one independent stream per sample. */
static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void ctrgcn_rng_seed(ctrgcn_rng *rng, uint64_t seed, uint64_t stream) {
    uint64_t s = stream * 0xD1B54A32D192ED03ULL + 0x8CB92BA72F3D8DD7ULL;
    rng->state = seed ^ splitmix(&s);
    splitmix(&rng->state);
}

uint64_t ctrgcn_rng_next(ctrgcn_rng *rng) { return splitmix(&rng->state); }

double ctrgcn_rng_uniform(ctrgcn_rng *rng, double lo, double hi) {
    return lo + (hi - lo) * ((double)(ctrgcn_rng_next(rng) >> 11) * 0x1.0p-53);
}

int64_t ctrgcn_rng_int(ctrgcn_rng *rng, int64_t lo, int64_t hi) {
    if (hi <= lo) return lo;
    const uint64_t range = (uint64_t)(hi - lo) + 1;
    return lo + (int64_t)(((unsigned __int128)ctrgcn_rng_next(rng) * range) >> 64);
}

void ctrgcn_bone(float *dst, const float *src, int C, int T, int V, int M, const int *parent) {
    for (int c = 0; c < C; c++)
        for (int t = 0; t < T; t++) {
            const float *s = src + ((size_t)c * T + t) * V * M;
            float *d = dst + ((size_t)c * T + t) * V * M;
            for (int v = 0; v < V; v++)
                for (int m = 0; m < M; m++) d[v * M + m] = s[v * M + m] - s[parent[v] * M + m];
        }
}

void ctrgcn_motion(float *x, int C, int T, int V, int M) {
    const size_t frame = (size_t)V * M;
    for (int c = 0; c < C; c++) {
        float *p = x + (size_t)c * T * frame;
        for (int t = 0; t + 1 < T; t++)
            for (size_t k = 0; k < frame; k++) p[t * frame + k] = p[(t + 1) * frame + k] - p[t * frame + k];
        if (T > 0) memset(p + (size_t)(T - 1) * frame, 0, sizeof(float) * frame);
    }
}

void ctrgcn_apply_modality(float *x, float *scratch, int modality, int C, int T, int V, int M, const int *parent) {
    if (modality == CTRGCN_MODALITY_BONE || modality == CTRGCN_MODALITY_BONE_MOTION) {
        const size_t n = (size_t)C * T * V * M;
        memcpy(scratch, x, sizeof(float) * n);
        ctrgcn_bone(x, scratch, C, T, V, M, parent);
    }
    if (modality == CTRGCN_MODALITY_MOTION || modality == CTRGCN_MODALITY_BONE_MOTION) ctrgcn_motion(x, C, T, V, M);
}

/* data.sum(0).sum(-1).sum(-1) != 0 of the reference feeders, in their float32 order. */
int ctrgcn_valid_frames(const float *x, int C, int T, int V, int M) {
    int valid = 0;
    float per_joint[CTRGCN_MAX_JOINTS], per_person[16];
    if (V > CTRGCN_MAX_JOINTS || M > 16) { /* outside what the layouts use: any non-zero value */
        for (int t = 0; t < T; t++) {
            int nz = 0;
            for (int c = 0; c < C && !nz; c++)
                for (size_t k = 0; k < (size_t)V * M && !nz; k++) nz = x[((size_t)c * T + t) * V * M + k] != 0.f;
            valid += nz;
        }
        return valid;
    }
    for (int t = 0; t < T; t++) {
        for (int v = 0; v < V; v++) {
            for (int m = 0; m < M; m++) {
                float s = 0.f;
                for (int c = 0; c < C; c++) s += x[(((size_t)c * T + t) * V + v) * M + m];
                per_person[m] = s;
            }
            per_joint[v] = 0.f + ctrgcn_pairwise_sum(per_person, M);
        }
        valid += (0.f + ctrgcn_pairwise_sum(per_joint, V)) != 0.f;
    }
    return valid;
}

/* As torch's upsample_bilinear2d on CPU in float: scale = L / window, source (t + 0.5) * scale -
 * 0.5 clamped at 0, right neighbour clamped at L - 1. */
void ctrgcn_crop_resize(float *out, int window, const float *x, int C, int T, int V, int M, int begin, int length) {
    const size_t frame = (size_t)V * M;
    const float scale = (float)length / (float)window;
    for (int w = 0; w < window; w++) {
        float src = scale * ((float)w + 0.5f) - 0.5f;
        if (src < 0.f) src = 0.f;
        int i0 = (int)src;
        if (i0 > length - 1) i0 = length - 1;
        const int i1 = i0 + (i0 < length - 1 ? 1 : 0);
        const float l1 = src - (float)i0, l0 = 1.f - l1;
        for (int c = 0; c < C; c++) {
            const float *a = x + ((size_t)c * T + begin + i0) * frame, *b = x + ((size_t)c * T + begin + i1) * frame;
            float *o = out + ((size_t)c * window + w) * frame;
            for (size_t k = 0; k < frame; k++) o[k] = l0 * a[k] + l1 * b[k];
        }
    }
}

void ctrgcn_rotate(float *x, int T, int V, int M, const double angles[3]) {
    const float cx = cosf((float)angles[0]), sx = sinf((float)angles[0]);
    const float cy = cosf((float)angles[1]), sy = sinf((float)angles[1]);
    const float cz = cosf((float)angles[2]), sz = sinf((float)angles[2]);
    const float rx[3][3] = {{1, 0, 0}, {0, cx, sx}, {0, -sx, cx}};
    const float ry[3][3] = {{cy, 0, -sy}, {0, 1, 0}, {sy, 0, cy}};
    const float rz[3][3] = {{cz, sz, 0}, {-sz, cz, 0}, {0, 0, 1}};
    float zy[3][3], r[3][3];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) zy[i][j] = rz[i][0] * ry[0][j] + rz[i][1] * ry[1][j] + rz[i][2] * ry[2][j];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) r[i][j] = zy[i][0] * rx[0][j] + zy[i][1] * rx[1][j] + zy[i][2] * rx[2][j];
    const size_t plane = (size_t)T * V * M;
    float *px = x, *py = x + plane, *pz = x + 2 * plane;
    for (size_t k = 0; k < plane; k++) {
        const float a = px[k], b = py[k], c = pz[k];
        px[k] = r[0][0] * a + r[0][1] * b + r[0][2] * c;
        py[k] = r[1][0] * a + r[1][1] * b + r[1][2] * c;
        pz[k] = r[2][0] * a + r[2][1] * b + r[2][2] * c;
    }
}

void ctrgcn_ntu_aug_defaults(ctrgcn_ntu_aug *aug, int train) {
    aug->window = 64;
    aug->train = train;
    aug->p_lo = 0.5;
    aug->p_hi = 1.0;
    aug->test_p = 0.95;
    aug->min_length = 64;
    aug->theta = train ? 0.3 : 0.0;
    aug->modality = CTRGCN_MODALITY_JOINT;
}

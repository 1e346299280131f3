/* One NW-UCLA sample as the official CTR-GCN feeder (feeders/feeder_ucla.py) makes it, in float64
 * like the feeder, stored as float32. */
#include <math.h>
#include <string.h>

#include "ctrgcn_data.h"

enum { UV = CTRGCN_UCLA_JOINTS };

/* Floyd's sampling of `steps` distinct positions of the list [0..T-1] repeated 100 times, mapped
 * back to frame indices and sorted: random.sample(list(range(T)) * 100, steps), then sort. */
static void sample_frames(int *idx, int steps, int T, ctrgcn_rng *rng) {
    const int64_t population = (int64_t)T * 100;
    int64_t picked[100];
    int n = 0;
    for (int64_t j = population - steps; j < population; j++) {
        int64_t t = ctrgcn_rng_int(rng, 0, j);
        for (int k = 0; k < n; k++)
            if (picked[k] == t) {
                t = j;
                break;
            }
        picked[n++] = t;
    }
    for (int k = 0; k < steps; k++) {
        const int v = (int)(picked[k] % T);
        int m = k;
        while (m > 0 && idx[m - 1] > v) {
            idx[m] = idx[m - 1];
            m--;
        }
        idx[m] = v;
    }
}

/* np.linspace(0, T - 1, steps).astype(int) */
static void linspace_frames(int *idx, int steps, int T) {
    const double delta = (double)(T - 1), div = (double)(steps - 1);
    const double step = steps > 1 ? delta / div : 0.0;
    for (int k = 0; k < steps; k++) {
        const double y = step == 0.0 ? (steps > 1 ? k / div * delta : 0.0) : k * step;
        idx[k] = (int)y;
    }
    if (steps > 1) idx[steps - 1] = T - 1;
}

void ctrgcn_ucla_sample(float *out, int steps, const double *seq, int T, int train, uint64_t seed,
                        uint64_t stream, int modality, double *scratch) {
    double *value = scratch, *data = scratch + (size_t)T * UV * 3, *tmp = data + (size_t)steps * UV * 3;
    if (steps < 1 || steps > 100 || T < 1) { /* outside the documented range: an empty sample */
        memset(out, 0, sizeof(float) * 3 * (size_t)(steps > 0 ? steps : 0) * UV);
        return;
    }
    ctrgcn_rng rng;
    ctrgcn_rng_seed(&rng, seed, stream);
    const double cx = seq[3], cy = seq[4], cz = seq[5]; /* joint 2 of frame 0 */
    const size_t rows = (size_t)T * UV;
    if (train) {
        /* X @ (Ry @ Rx @ S), row vectors, as rand_view_transform */
        const double ax = (double)ctrgcn_rng_int(&rng, -60, 60) * M_PI / 180.0;
        const double ay = (double)ctrgcn_rng_int(&rng, -60, 60) * M_PI / 180.0;
        const double s = ctrgcn_rng_uniform(&rng, 0.5, 1.5);
        const double rx[3][3] = {{1, 0, 0}, {0, cos(ax), sin(ax)}, {0, -sin(ax), cos(ax)}};
        const double ry[3][3] = {{cos(ay), 0, -sin(ay)}, {0, 1, 0}, {sin(ay), 0, cos(ay)}};
        double m[3][3];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) m[i][j] = (ry[i][0] * rx[0][j] + ry[i][1] * rx[1][j] + ry[i][2] * rx[2][j]) * s;
        for (size_t r = 0; r < rows; r++) {
            const double a = seq[r * 3] - cx, b = seq[r * 3 + 1] - cy, c = seq[r * 3 + 2] - cz;
            for (int j = 0; j < 3; j++) value[r * 3 + j] = a * m[0][j] + b * m[1][j] + c * m[2][j];
        }
    } else {
        for (size_t r = 0; r < rows; r++) {
            value[r * 3] = seq[r * 3] - cx;
            value[r * 3 + 1] = seq[r * 3 + 1] - cy;
            value[r * 3 + 2] = seq[r * 3 + 2] - cz;
        }
    }
    /* min-max of each axis over the whole sequence to [-1, 1]; a flat axis maps to 0, not NaN */
    for (int c = 0; c < 3; c++) {
        double lo = value[c], hi = value[c];
        for (size_t r = 1; r < rows; r++) {
            const double v = value[r * 3 + c];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        const double range = hi - lo;
        for (size_t r = 0; r < rows; r++)
            value[r * 3 + c] = range > 0.0 ? (value[r * 3 + c] - lo) / range * 2.0 - 1.0 : 0.0;
    }
    int idx[100];
    if (train) sample_frames(idx, steps, T, &rng);
    else linspace_frames(idx, steps, T);
    for (int t = 0; t < steps; t++) memcpy(data + (size_t)t * UV * 3, value + (size_t)idx[t] * UV * 3, sizeof(double) * UV * 3);
    if (modality == CTRGCN_MODALITY_BONE || modality == CTRGCN_MODALITY_BONE_MOTION) {
        memcpy(tmp, data, sizeof(double) * steps * UV * 3);
        for (int t = 0; t < steps; t++)
            for (int v = 0; v < UV; v++)
                for (int c = 0; c < 3; c++)
                    data[(t * UV + v) * 3 + c] = tmp[(t * UV + v) * 3 + c] - tmp[(t * UV + ctrgcn_ucla_parent[v]) * 3 + c];
    }
    if (modality == CTRGCN_MODALITY_MOTION || modality == CTRGCN_MODALITY_BONE_MOTION) {
        for (int t = 0; t + 1 < steps; t++)
            for (int k = 0; k < UV * 3; k++) data[t * UV * 3 + k] = data[(t + 1) * UV * 3 + k] - data[t * UV * 3 + k];
        memset(data + (size_t)(steps - 1) * UV * 3, 0, sizeof(double) * UV * 3);
    }
    for (int c = 0; c < 3; c++)
        for (int t = 0; t < steps; t++)
            for (int v = 0; v < UV; v++) out[((size_t)c * steps + t) * UV + v] = (float)data[(t * UV + v) * 3 + c];
}

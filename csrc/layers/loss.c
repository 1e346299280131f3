/* The loss: softmax cross-entropy against soft targets. (Train-mode BatchNorm is a backend op:
 * backends/cpu/norm.c.) */
#include <math.h>

#include "layers/layers.h"

double softmax_xent(const float *logits, const float *target, int N, int K, float *dlogits) {
    double total = 0.0;
    for (int i = 0; i < N; i++) {
        const float *z = logits + (size_t)i * K, *t = target + (size_t)i * K;
        double mx = z[0];
        for (int k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
        double se = 0.0;
        for (int k = 0; k < K; k++) se += exp(z[k] - mx);
        const double lse = mx + log(se);
        for (int k = 0; k < K; k++) {
            total -= t[k] * (z[k] - lse);
            if (dlogits) dlogits[(size_t)i * K + k] = (float)((exp(z[k] - lse) - t[k]) / N);
        }
    }
    return total / N;
}

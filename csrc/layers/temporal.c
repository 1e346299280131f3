/* Temporal geometry shared by the backends: the output length of a dilated (k,1) convolution.
 * (The convolution and the max-pool themselves are backend ops: backends/cpu/conv.c.) */
#include <string.h>

#include "layers/layers.h"

int tconv_out_frames(int T, int k, int dil, int stride) {
    const int pad = (k - 1) * dil / 2;
    return (T + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}

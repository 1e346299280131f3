/* libFuzzer harness: the NTU .skeleton parser, then denoising and translation of whatever parses.
 * Built by tests/fuzz/run_fuzz.py with -fsanitize=fuzzer,address,undefined. A status is the only
 * allowed outcome; a crash, a sanitizer report, a leak or a hang is a finding. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctrgcn_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ctrgcn_ntu_skeleton sk;
    if (ctrgcn_ntu_skeleton_parse(&sk, (const char *)data, size, "fuzz") != CTRGCN_OK) return 0;
    ctrgcn_ntu_denoised d;
    if (ctrgcn_ntu_denoise(&d, &sk) == CTRGCN_OK) {
        const size_t n = (size_t)d.num_frames * 75 * (size_t)d.num_actors;
        float *aligned = malloc(sizeof(float) * (n ? n : 1)), origin[3];
        int frame;
        if (aligned) {
            if (n) memcpy(aligned, d.joints, sizeof(float) * n);
            ctrgcn_ntu_translate(aligned, d.num_frames, 75 * d.num_actors, &frame, origin);
            free(aligned);
        }
        ctrgcn_ntu_denoised_free(&d);
    }
    ctrgcn_ntu_skeleton_free(&sk);
    return 0;
}

/* libFuzzer harness: the project's file format (csrc/core/io.c). The input is a file without its
 * trailing CRC-32, which the harness appends, so mutations reach the parser instead of stopping at
 * the checksum. A file that loads is then run: one eval forward of a short clip through whatever
 * spec it declares, and saved again. Built by tests/fuzz/run_fuzz.py. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctrgcn.h"

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    static uint32_t table[256];
    if (!table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static char path[256], saved[256];

static void remove_files(void) {
    unlink(path);
    unlink(saved);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!path[0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(path, sizeof path, "%s/ctrgcn-fuzz-%ld.ctrgcn", dir, (long)getpid());
        snprintf(saved, sizeof saved, "%s/ctrgcn-fuzz-%ld-saved.ctrgcn", dir, (long)getpid());
        atexit(remove_files);
    }
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    const uint32_t crc = crc32_of(data, size);
    const uint8_t tail[4] = {crc & 0xFF, (crc >> 8) & 0xFF, (crc >> 16) & 0xFF, crc >> 24};
    fwrite(data, 1, size, f);
    fwrite(tail, 1, 4, f);
    fclose(f);
    ctrgcn_model *m = NULL;
    if (ctrgcn_model_load(&m, path) != CTRGCN_OK) return 0;
    const ctrgcn_spec *s = ctrgcn_model_spec(m);
    const int T = 3;
    const size_t n = (size_t)s->in_channels * T * s->num_joints * s->num_person;
    float *x = malloc(sizeof(float) * n), *logits = malloc(sizeof(float) * (size_t)s->num_classes);
    ctrgcn_session *se = NULL;
    if (x && logits && ctrgcn_session_init(&se, m, "cpu", 1) == CTRGCN_OK) {
        for (size_t i = 0; i < n; i++) x[i] = (float)((i * 7919) % 17) / 17.0f - 0.5f;
        ctrgcn_session_forward(se, x, 1, T, logits);
        ctrgcn_session_free(se);
    }
    free(x);
    free(logits);
    ctrgcn_model_save(m, saved);
    ctrgcn_model_free(m);
    return 0;
}

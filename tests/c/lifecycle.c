/* The life of a model, over and over: init -> save -> load -> eval forward -> training steps ->
 * write back -> save (float32, float16, int8) -> load -> free, a failed load and a .skeleton parse
 * with denoising on the way. tests/test_memory.py runs it under LeakSanitizer (which also reports
 * the heap in use after each round: it must stay flat) and under valgrind.
 *
 *   lifecycle TMPDIR ROUNDS */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctrgcn.h"
#include "ctrgcn_data.h"

#if defined(__SANITIZE_ADDRESS__)
size_t __sanitizer_get_current_allocated_bytes(void); /* the sanitizer runtime's, as its header declares it */
#define HEAP_IN_USE() __sanitizer_get_current_allocated_bytes()
#else
#define HEAP_IN_USE() ((size_t)0)
#endif

#define CHECK(cond, what)                                                              \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "FAIL %s (line %d): %s\n", what, __LINE__, ctrgcn_last_error()); \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

static const char *skeleton_text(void) {
    static char text[65536];
    size_t n = 0;
    n += (size_t)snprintf(text + n, sizeof text - n, "14\n");
    for (int f = 0; f < 14; f++) { /* more than the 11 frames the length filter drops */
        n += (size_t)snprintf(text + n, sizeof text - n, "2\n");
        for (int b = 0; b < 2; b++) {
            n += (size_t)snprintf(text + n, sizeof text - n, "%d 0 1 1 1 1 0 0.1 0.2 2\n25\n", 100 + b);
            for (int j = 0; j < 25; j++)
                n += (size_t)snprintf(text + n, sizeof text - n, "%g %g %g 1 2 3 4 0 0 0 0 2\n", 0.01 * j + b,
                                      0.02 * f, 3.0 + 0.1 * b);
        }
    }
    return text;
}

static void round_trip(const char *dir, int round) {
    const char *variants[] = {"CTRGCN", "CTRGCN_light", "CTRGCN_lightV1", "CTRGCN_lightV2"};
    char path[1024], half[1024], bad[1024];
    snprintf(path, sizeof path, "%s/life.ctrgcn", dir);
    snprintf(half, sizeof half, "%s/life16.ctrgcn", dir);
    snprintf(bad, sizeof bad, "%s/missing.ctrgcn", dir);
    ctrgcn_spec spec;
    CHECK(ctrgcn_spec_preset(&spec, variants[round % 4], "ucla", 5, 1, 3) == CTRGCN_OK, "preset");
    CHECK(ctrgcn_spec_set_base(&spec, 8) == CTRGCN_OK, "base");
    ctrgcn_model *m, *loaded, *again;
    CHECK(ctrgcn_model_init(&m, &spec, (uint64_t)round) == CTRGCN_OK, "init");
    CHECK(ctrgcn_model_save(m, path) == CTRGCN_OK, "save");
    ctrgcn_model_free(m);
    CHECK(ctrgcn_model_load(&loaded, bad) != CTRGCN_OK && loaded == NULL, "missing file refused");
    CHECK(ctrgcn_model_load(&loaded, path) == CTRGCN_OK, "load");

    enum { N = 2, T = 6, K = 5 };
    const size_t n = (size_t)N * 3 * T * spec.num_joints;
    float *x = malloc(sizeof(float) * n), logits[N * K], targets[N * K];
    for (size_t i = 0; i < n; i++) x[i] = (float)sin((double)i * 0.37 + round);
    for (int i = 0; i < N * K; i++) targets[i] = i % K == round % K ? 1.0f : 0.0f;
    ctrgcn_session *eval, *train;
    CHECK(ctrgcn_session_init(&eval, loaded, "cpu", 1) == CTRGCN_OK, "eval session");
    CHECK(ctrgcn_session_forward(eval, x, N, T, logits) == CTRGCN_OK, "forward");
    CHECK(ctrgcn_session_forward(eval, x, 1, T - 1, logits) == CTRGCN_OK, "forward at another shape");
    CHECK(ctrgcn_session_init(&train, loaded, "cpu", 1) == CTRGCN_OK, "training session");
    CHECK(ctrgcn_session_set_sgd(train, 0.9f, 1e-4f, 1) == CTRGCN_OK, "sgd");
    double loss;
    for (int step = 0; step < 2; step++)
        CHECK(ctrgcn_session_train_step(train, x, N, T, targets, 0.01f, logits, &loss) == CTRGCN_OK, "train step");
    CHECK(ctrgcn_session_write_params(train, loaded) == CTRGCN_OK, "write back");
    CHECK(ctrgcn_session_forward(eval, x, N, T, logits) == CTRGCN_OK, "forward after training");
    ctrgcn_session_free(train);
    ctrgcn_session_free(eval);
    for (int dtype = 0; dtype < 3; dtype++) {
        CHECK(ctrgcn_model_save_as(loaded, half, dtype) == CTRGCN_OK, "save as");
        CHECK(ctrgcn_model_load(&again, half) == CTRGCN_OK, "load again");
        ctrgcn_model_free(again);
    }
    ctrgcn_model_free(loaded);
    free(x);

    ctrgcn_ntu_skeleton sk;
    ctrgcn_ntu_denoised d;
    const char *text = skeleton_text();
    CHECK(ctrgcn_ntu_skeleton_parse(&sk, text, strlen(text), "life") == CTRGCN_OK, "parse");
    CHECK(ctrgcn_ntu_denoise(&d, &sk) == CTRGCN_OK, "denoise");
    ctrgcn_ntu_denoised_free(&d);
    ctrgcn_ntu_skeleton_free(&sk);
    CHECK(ctrgcn_ntu_skeleton_parse(&sk, text, strlen(text) / 2, "cut") != CTRGCN_OK, "truncated text refused");
    ctrgcn_ntu_skeleton_free(&sk);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s TMPDIR ROUNDS\n", argv[0]);
        return 2;
    }
    const int rounds = atoi(argv[2]);
    size_t settled = 0;
    for (int r = 0; r < rounds; r++) {
        round_trip(argv[1], r);
        /* after a first pass over the four variants, the heap in use must not move */
        if (r == 3) settled = HEAP_IN_USE();
        if (r > 3 && HEAP_IN_USE() != settled) {
            fprintf(stderr, "FAIL heap in use grew from %zu to %zu bytes by round %d\n", settled, HEAP_IN_USE(), r);
            return 1;
        }
    }
    printf("lifecycle: %d rounds ok, heap in use %zu bytes\n", rounds, HEAP_IN_USE());
    return 0;
}

/* Exercises the C core under AddressSanitizer and UndefinedBehaviorSanitizer (tests/test_sanitizers.py
 * builds and runs it): every preset through eval and train passes at odd sizes, the file format
 * with every truncation and single-byte corruption, and the .skeleton parser on every prefix of a
 * real file. Exits non-zero on a wrong status; the sanitizers abort on any memory error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctrgcn.h"
#include "ctrgcn_data.h"

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                          \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fprintf(stderr, " (%s)\n", ctrgcn_last_error());                              \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((*s >> 8) / 16777216.0f) * 2.0f - 1.0f;
}

static void run_model(const char *variant, const char *graph, int M, int N, int T) {
    ctrgcn_spec spec;
    CHECK(ctrgcn_spec_preset(&spec, variant, graph, 7, M, 3) == CTRGCN_OK, "preset %s", variant);
    CHECK(ctrgcn_spec_set_base(&spec, 16) == CTRGCN_OK, "base");
    ctrgcn_model *m;
    ctrgcn_session *se, *tr;
    CHECK(ctrgcn_model_init(&m, &spec, 5) == CTRGCN_OK, "init");
    CHECK(ctrgcn_session_init(&se, m, "cpu", 2) == CTRGCN_OK, "session");
    CHECK(ctrgcn_session_init(&tr, m, "cpu", 2) == CTRGCN_OK, "training session");
    const size_t n = (size_t)N * 3 * T * spec.num_joints * M;
    float *x = malloc(sizeof(float) * n), logits[4 * 7], dl[4 * 7];
    unsigned s = 1;
    for (size_t i = 0; i < n; i++) x[i] = frand(&s);
    CHECK(ctrgcn_session_forward(se, x, N, T, logits) == CTRGCN_OK, "forward %s T=%d", variant, T);
    for (int i = 0; i < N * 7; i++) CHECK(isfinite(logits[i]), "finite logits");
    int ch, fr;
    CHECK(ctrgcn_model_block_shape(m, 10, T, &ch, &fr) == CTRGCN_OK, "block shape");
    const size_t an = (size_t)N * M * ch * fr * spec.num_joints;
    float *act = malloc(sizeof(float) * an);
    CHECK(ctrgcn_session_forward_probe(se, x, N, T, logits, 10, act, an) == CTRGCN_OK, "probe");
    CHECK(ctrgcn_session_forward_probe(se, x, N, T, logits, 10, act, an - 1) != CTRGCN_OK, "short probe refused");
    free(act);
    if (N * M > 1 || T > 1) {
        float *grads = malloc(sizeof(float) * ctrgcn_model_params_size(m));
        double loss;
        for (int i = 0; i < N * 7; i++) dl[i] = i % 7 == 0 ? 1.0f : 0.0f; /* one-hot targets */
        CHECK(ctrgcn_session_set_sgd(tr, 0.9f, 1e-4f, 1) == CTRGCN_OK, "sgd");
        CHECK(ctrgcn_session_train_step(tr, x, N, T, dl, 0.01f, logits, &loss) == CTRGCN_OK, "train step %s T=%d",
              variant, T);
        CHECK(ctrgcn_session_train_forward(tr, x, N, T, logits, 1) == CTRGCN_OK, "train forward %s T=%d", variant, T);
        CHECK(ctrgcn_session_train_backward(tr, dl, NULL, &loss) == CTRGCN_OK, "backward");
        CHECK(ctrgcn_session_gradients(tr, grads) == CTRGCN_OK, "gradients");
        CHECK(ctrgcn_session_sgd_step(tr, 0.01f) == CTRGCN_OK, "sgd step");
        CHECK(ctrgcn_session_write_params(tr, m) == CTRGCN_OK, "write back");
        free(grads);
    }
    x[0] = NAN;
    CHECK(ctrgcn_session_forward(se, x, N, T, logits) == CTRGCN_ERR_ARGUMENT, "NaN refused");
    CHECK(ctrgcn_session_forward(se, x, N, 0, logits) == CTRGCN_ERR_SHAPE, "T=0 refused");
    free(x);
    ctrgcn_session_free(tr);
    ctrgcn_session_free(se);
    ctrgcn_model_free(m);
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n + 1);
    if (fread(b, 1, *n, f) != *n) *n = 0;
    fclose(f);
    return b;
}

static void write_bytes(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

static void file_format(const char *dir, int with_names) {
    char path[1024], bad[1024];
    snprintf(path, sizeof path, "%s/m.ctrgcn", dir);
    snprintf(bad, sizeof bad, "%s/bad.ctrgcn", dir);
    ctrgcn_spec spec;
    ctrgcn_spec_preset(&spec, "CTRGCN_lightV2", "ucla", 4, 1, 3);
    CHECK(ctrgcn_spec_set_base(&spec, 8) == CTRGCN_OK, "base");
    ctrgcn_spec stale = spec;
    stale.base_channel = 16; /* widths live in the blocks: a base alone no longer matches the preset */
    CHECK(ctrgcn_spec_validate(&stale) == CTRGCN_ERR_ARGUMENT, "stale base refused");
    ctrgcn_model *m, *l;
    CHECK(ctrgcn_model_init(&m, &spec, 1) == CTRGCN_OK, "init");
    const char *names[4] = {"walk", "sit down", "", "wave"};
    CHECK(ctrgcn_model_set_class_names(m, names, 4) != CTRGCN_OK, "an empty class name refused");
    CHECK(ctrgcn_model_set_class_names(m, names, 3) != CTRGCN_OK, "a wrong name count refused");
    names[2] = "pick up";
    if (with_names) CHECK(ctrgcn_model_set_class_names(m, names, 4) == CTRGCN_OK, "class names");
    CHECK(ctrgcn_model_save(m, path) == CTRGCN_OK, "save");
    CHECK(ctrgcn_model_load(&l, path) == CTRGCN_OK, "load");
    CHECK(with_names ? strcmp(ctrgcn_model_class_name(l, 2), "pick up") == 0 : !ctrgcn_model_class_name(l, 0),
          "class names read back");
    CHECK(!ctrgcn_model_class_name(l, 4) && !ctrgcn_model_class_name(l, -1), "class index out of range");
    ctrgcn_model_free(l);
    if (!with_names) { /* the damage loops below cover the layout with names, which ends in the same bytes */
        ctrgcn_model_free(m);
        return;
    }
    size_t n;
    unsigned char *b = slurp(path, &n);
    CHECK(b && n > 100, "read back");
    for (size_t cut = 0; cut < n; cut += (cut < 200 ? 1 : 97)) {
        write_bytes(bad, b, cut);
        CHECK(ctrgcn_model_load(&l, bad) != CTRGCN_OK && l == NULL, "truncated at %zu accepted", cut);
    }
    for (size_t i = 0; i < n; i += (i < 200 ? 1 : 131)) {
        b[i] ^= 0x5A;
        write_bytes(bad, b, n);
        CHECK(ctrgcn_model_load(&l, bad) != CTRGCN_OK, "corrupted byte %zu accepted", i);
        b[i] ^= 0x5A;
    }
    free(b);
    ctrgcn_model_free(m);
}

/* Sequence batches of odd layouts: every modality, training and evaluation, windows longer and
 * shorter than the sequences. */
static void sequence_batches(void) {
    enum { F = 23, M = 2, V = 5, C = 3 };
    float pool[F * M * V * C];
    unsigned s = 7;
    for (int i = 0; i < F * M * V * C; i++) pool[i] = frand(&s);
    const int64_t offsets[3] = {0, 1, 9}, lengths[3] = {1, 8, 14}, indices[4] = {2, 0, 1, 2};
    const int parent[V] = {0, 0, 1, 1, 3};
    for (int window = 1; window <= 30; window += 29)
        for (int modality = 0; modality < 4; modality++)
            for (int train = 0; train < 2; train++) {
                ctrgcn_ntu_aug aug;
                ctrgcn_ntu_aug_defaults(&aug, train);
                aug.window = window, aug.min_length = window, aug.modality = modality;
                float *out = malloc(sizeof(float) * 4 * C * window * V * M);
                CHECK(ctrgcn_seq_batch(out, pool, F, M, V, C, offsets, lengths, 3, indices, 4, 5, &aug, parent) ==
                          CTRGCN_OK, "sequence batch");
                free(out);
            }
    ctrgcn_ntu_aug aug;
    ctrgcn_ntu_aug_defaults(&aug, 1);
    float out[C * 64 * V * M];
    const int64_t past_end[1] = {3};
    CHECK(ctrgcn_seq_batch(out, pool, F, M, V, C, offsets, lengths, 3, past_end, 1, 5, &aug, parent) != CTRGCN_OK,
          "index past the sequences refused");
    const int64_t too_long[3] = {1, 8, 15};
    CHECK(ctrgcn_seq_batch(out, pool, F, M, V, C, offsets, too_long, 3, indices, 1, 5, &aug, parent) != CTRGCN_OK,
          "sequence past the pool refused");
    aug.modality = 1;
    CHECK(ctrgcn_seq_batch(out, pool, F, M, V, C, offsets, lengths, 3, indices, 1, 5, &aug, NULL) != CTRGCN_OK,
          "bones without parents refused");
}

static void skeleton_prefixes(const char *skeleton) {
    size_t n;
    unsigned char *b = slurp(skeleton, &n);
    CHECK(b && n > 0, "read %s", skeleton);
    ctrgcn_ntu_skeleton sk;
    CHECK(ctrgcn_ntu_skeleton_parse(&sk, (const char *)b, n, "full") == CTRGCN_OK, "full file parses");
    ctrgcn_ntu_denoised d;
    CHECK(ctrgcn_ntu_denoise(&d, &sk) == CTRGCN_OK, "denoise");
    ctrgcn_ntu_denoised_free(&d);
    ctrgcn_ntu_skeleton_free(&sk);
    int refused = 0;
    for (size_t cut = 0; cut < n; cut += 37) {
        if (ctrgcn_ntu_skeleton_parse(&sk, (const char *)b, cut, "prefix") != CTRGCN_OK) refused++;
        ctrgcn_ntu_skeleton_free(&sk);
    }
    CHECK(refused > 0, "truncations refused");
    for (size_t i = 0; i < n; i += 53) { /* garbage bytes anywhere: a status, never a crash */
        const unsigned char keep = b[i];
        b[i] = (unsigned char)"x-9.\n "[i % 6];
        if (ctrgcn_ntu_skeleton_parse(&sk, (const char *)b, n, "garbled") == CTRGCN_OK &&
            ctrgcn_ntu_denoise(&d, &sk) == CTRGCN_OK)
            ctrgcn_ntu_denoised_free(&d);
        ctrgcn_ntu_skeleton_free(&sk);
        b[i] = keep;
    }
    free(b);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s TMPDIR SKELETON_FILE|-\n", argv[0]);
        return 2;
    }
    const char *variants[] = {"CTRGCN", "CTRGCN_light", "CTRGCN_lightV1", "CTRGCN_lightV2"};
    for (int v = 0; v < 4; v++) {
        run_model(variants[v], "ucla", 1, 2, 9);
        run_model(variants[v], "ntu", 2, 1, 3);
        run_model(variants[v], "ucla", 1, 1, 1);
    }
    file_format(argv[1], 0);
    file_format(argv[1], 1);
    sequence_batches();
    if (strcmp(argv[2], "-") != 0) skeleton_prefixes(argv[2]);
    printf("sanitized driver: ok\n");
    return 0;
}

/* Classify skeleton clips from a C program with the ctrgcn core.
 *
 *   predict MODEL.ctrgcn INPUT.f32 N T
 *
 * INPUT.f32 holds N clips as raw little-endian float32 in (N, C, T, V, M) order, with C, V and M
 * those of the model. Prints, per clip, the top-1 class, its logit and its name when the model names
 * its classes. Build (from the repository root, with scipy-openblas32 installed; see
 * tests/test_c_example.py for the exact command):
 *
 *   cc -std=c11 -O2 -fopenmp -DCTRGCN_BLAS_SCIPY=1 -Icsrc/include -Icsrc -I$OPENBLAS_INCLUDE \
 *      csrc/core/\*.c csrc/layers/\*.c examples/predict.c -L$OPENBLAS_LIB -lscipy_openblas -lm -o predict */
#include <stdio.h>
#include <stdlib.h>

#include "ctrgcn.h"

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s MODEL.ctrgcn INPUT.f32 N T\n", argv[0]);
        return 2;
    }
    const int N = atoi(argv[3]), T = atoi(argv[4]);
    ctrgcn_model *model = NULL;
    ctrgcn_session *session = NULL;
    if (ctrgcn_model_load(&model, argv[1]) != CTRGCN_OK) {
        fprintf(stderr, "error: %s\n", ctrgcn_last_error());
        return 1;
    }
    const ctrgcn_spec *spec = ctrgcn_model_spec(model);
    const size_t count = (size_t)N * spec->in_channels * T * spec->num_joints * spec->num_person;
    float *x = malloc(sizeof(float) * (count ? count : 1));
    float *logits = malloc(sizeof(float) * (size_t)(N > 0 ? N : 1) * spec->num_classes);
    FILE *f = fopen(argv[2], "rb");
    int status = 1;
    if (!x || !logits || !f || N < 1 || T < 1 || fread(x, sizeof(float), count, f) != count) {
        fprintf(stderr, "error: cannot read %zu floats (N=%d, C=%d, T=%d, V=%d, M=%d) from %s\n", count, N,
                spec->in_channels, T, spec->num_joints, spec->num_person, argv[2]);
        goto done;
    }
    /* the model holds the weights; a session runs them (backend "cpu", all cores) */
    if (ctrgcn_session_init(&session, model, "cpu", 0) != CTRGCN_OK ||
        ctrgcn_session_forward(session, x, N, T, logits) != CTRGCN_OK) {
        fprintf(stderr, "error: %s\n", ctrgcn_last_error());
        goto done;
    }
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * spec->num_classes;
        int best = 0;
        for (int k = 1; k < spec->num_classes; k++)
            if (z[k] > z[best]) best = k;
        const char *name = ctrgcn_model_class_name(model, best); /* NULL when the file names no classes */
        printf("%d %d %.6g%s%s\n", n, best, z[best], name ? " " : "", name ? name : "");
    }
    status = 0;
done:
    if (f) fclose(f);
    free(x);
    free(logits);
    ctrgcn_session_free(session); /* sessions go before their model */
    ctrgcn_model_free(model);
    return status;
}

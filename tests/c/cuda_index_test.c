/* Host driver of the CUDA kernels' index arithmetic (csrc/backends/cuda/index.cuh): prints what
 * the functions compute so tests/test_cuda.py can check it against NumPy and brute force on a
 * machine without a GPU. Built with the C compiler and, where nvcc exists, as CUDA host code.
 *
 *   layout N C T V M   the source index of every element of input_forward, then persons_forward
 *   strided T V s      the row position of every column of x[:, ::s]
 *   taps T k dil s     per tap: has-window p sh t0 t1 (To first)
 *   pool T s           per output frame: lo hi; then per input frame: t0 t1 (To first)
 *   phases T s         per phase: len start                                                   */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/index.cuh"

static int arg(char **argv, int i) { return atoi(argv[i]); }

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *mode = argv[1];
    if (!strcmp(mode, "layout") && argc == 7) {
        const int N = arg(argv, 2), C = arg(argv, 3), T = arg(argv, 4), V = arg(argv, 5), M = arg(argv, 6);
        const size_t count = (size_t)N * C * T * V * M;
        for (size_t e = 0; e < count; e++) printf("%zu ", idx_input_src(e, C, T, V, M));
        printf("\n");
        for (size_t e = 0; e < count; e++) printf("%zu ", idx_persons_src(e, C, T, V, M));
        printf("\n");
        return 0;
    }
    if (!strcmp(mode, "strided") && argc == 5) {
        const int T = arg(argv, 2), V = arg(argv, 3), s = arg(argv, 4), To = (T - 1) / s + 1;
        for (size_t col = 0; col < (size_t)To * V; col++) printf("%zu ", idx_strided_col(col, V, s));
        printf("\n");
        return 0;
    }
    if (!strcmp(mode, "taps") && argc == 6) {
        const int T = arg(argv, 2), k = arg(argv, 3), dil = arg(argv, 4), s = arg(argv, 5);
        const int pad = (k - 1) * dil / 2, To = (T + 2 * pad - dil * (k - 1) - 1) / s + 1;
        printf("%d\n", To);
        for (int j = 0; j < k; j++) {
            int p, sh, t0, t1;
            const int ok = tap_window(T, j, dil, pad, s, To, &p, &sh, &t0, &t1);
            printf("%d %d %d %d %d\n", ok, p, sh, t0, t1);
        }
        return 0;
    }
    if (!strcmp(mode, "pool") && argc == 4) {
        const int T = arg(argv, 2), s = arg(argv, 3), To = (T - 1) / s + 1;
        printf("%d\n", To);
        for (int t = 0; t < To; t++) {
            int lo, hi;
            pool_window(t, s, T, &lo, &hi);
            printf("%d %d\n", lo, hi);
        }
        for (int tt = 0; tt < T; tt++) {
            int t0, t1;
            pool_inverse(tt, s, To, &t0, &t1);
            printf("%d %d\n", t0, t1);
        }
        return 0;
    }
    if (!strcmp(mode, "phases") && argc == 4) {
        const int T = arg(argv, 2), s = arg(argv, 3);
        for (int p = 0; p < s; p++) printf("%d %d\n", phase_len(T, p, s), phase_start(T, p, s));
        return 0;
    }
    fprintf(stderr, "bad arguments\n");
    return 2;
}

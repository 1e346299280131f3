/* The machine's fp32 FMA ceiling, for benchmarks/engine_speed.py (and, at the end, the cost of a
 * cache line passing between two cores: core_handoff_ns).
 *
 * A register-only AVX2 loop: 10 independent _mm256_fmadd_ps accumulator chains per thread (enough to
 * cover the FMA latency x the number of FMA ports on current x86 cores), no loads or stores inside the
 * loop. Built at run time by engine_speed.py:
 *
 *     gcc -O2 -mavx2 -mfma -fopenmp -shared -fPIC fma_peak.c -o fma_peak.so
 *
 * fma_peak_run(iters, threads) runs `iters` iterations on each of `threads` OpenMP threads and returns
 * the wall time in seconds of the parallel region; every iteration is 10 FMAs x 8 lanes x 2 flops.
 * fma_peak512_run does the same with 16-lane AVX-512 FMAs (call it only where the CPU has avx512f):
 * on cores with full-width 512-bit units (AMD Zen 5, Intel server parts) that ceiling is twice the
 * AVX2 one, and libraries that dispatch to AVX-512 (OpenBLAS's SkylakeX kernels, ONNX Runtime's
 * MLAS) can reach it.
 */
#include <immintrin.h>
#include <omp.h>

#define FMA_CHAINS 10
#define FMA_FLOPS_PER_ITER (FMA_CHAINS * 8 * 2)

volatile float fma_peak_sink;

int fma_peak_flops_per_iter(void) { return FMA_FLOPS_PER_ITER; }

static float chains(long iters, float seed)
{
    /* a <- a * m + c converges to c / (1 - m): no overflow, no denormals */
    const __m256 m = _mm256_set1_ps(0.99999994f), c = _mm256_set1_ps(1e-7f);
    __m256 a0 = _mm256_set1_ps(seed + 0.0f), a1 = _mm256_set1_ps(seed + 0.1f);
    __m256 a2 = _mm256_set1_ps(seed + 0.2f), a3 = _mm256_set1_ps(seed + 0.3f);
    __m256 a4 = _mm256_set1_ps(seed + 0.4f), a5 = _mm256_set1_ps(seed + 0.5f);
    __m256 a6 = _mm256_set1_ps(seed + 0.6f), a7 = _mm256_set1_ps(seed + 0.7f);
    __m256 a8 = _mm256_set1_ps(seed + 0.8f), a9 = _mm256_set1_ps(seed + 0.9f);
    for (long i = 0; i < iters; i++) {
        a0 = _mm256_fmadd_ps(a0, m, c);
        a1 = _mm256_fmadd_ps(a1, m, c);
        a2 = _mm256_fmadd_ps(a2, m, c);
        a3 = _mm256_fmadd_ps(a3, m, c);
        a4 = _mm256_fmadd_ps(a4, m, c);
        a5 = _mm256_fmadd_ps(a5, m, c);
        a6 = _mm256_fmadd_ps(a6, m, c);
        a7 = _mm256_fmadd_ps(a7, m, c);
        a8 = _mm256_fmadd_ps(a8, m, c);
        a9 = _mm256_fmadd_ps(a9, m, c);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(a8, a9));
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}

__attribute__((target("avx512f"))) static float chains512(long iters, float seed)
{
    const __m512 m = _mm512_set1_ps(0.99999994f), c = _mm512_set1_ps(1e-7f);
    __m512 a[FMA_CHAINS];
    for (int k = 0; k < FMA_CHAINS; k++) a[k] = _mm512_set1_ps(seed + 0.1f * (float)k);
    for (long i = 0; i < iters; i++) {
        a[0] = _mm512_fmadd_ps(a[0], m, c);
        a[1] = _mm512_fmadd_ps(a[1], m, c);
        a[2] = _mm512_fmadd_ps(a[2], m, c);
        a[3] = _mm512_fmadd_ps(a[3], m, c);
        a[4] = _mm512_fmadd_ps(a[4], m, c);
        a[5] = _mm512_fmadd_ps(a[5], m, c);
        a[6] = _mm512_fmadd_ps(a[6], m, c);
        a[7] = _mm512_fmadd_ps(a[7], m, c);
        a[8] = _mm512_fmadd_ps(a[8], m, c);
        a[9] = _mm512_fmadd_ps(a[9], m, c);
    }
    __m512 s = a[0];
    for (int k = 1; k < FMA_CHAINS; k++) s = _mm512_add_ps(s, a[k]);
    return _mm512_reduce_add_ps(s);
}

int fma_peak512_flops_per_iter(void) { return FMA_CHAINS * 16 * 2; }

/* Wall time of `iters` iterations of `chain` on each of `threads` OpenMP threads. */
static double run_chains(float (*chain)(long, float), long iters, int threads)
{
    if (threads < 1)
        threads = 1;
    double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads)
    {
        float r = chain(iters, (float)omp_get_thread_num());
#pragma omp atomic
        fma_peak_sink += r;
    }
    return omp_get_wtime() - t0;
}

double fma_peak512_run(long iters, int threads) { return run_chains(chains512, iters, threads); }

double fma_peak_run(long iters, int threads) { return run_chains(chains, iters, threads); }

/* The other probe of the machine: how long one cache line takes to pass from one core to the other
 * (two threads take turns writing a counter; the median of `rounds` timed batches of 20,000 turns,
 * one way, in ns). On the development VM it measured 42-46 ns at some times and 179-218 ns at others
 * (its two cores sharing a last-level cache, or not), and the one-person batch-1 forward on both
 * cores, whose every op reads what the other core wrote, ran 1.74-1.77x faster than on one core in
 * all six samples of the first kind and 1.22-1.32x in eight of nine of the second, while the FMA
 * loop above did not move: a number to read the run's other numbers by. */
#include <stdatomic.h>
#include <stdlib.h>

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double core_handoff_ns(int rounds)
{
    enum { TURNS = 20000 };
    _Alignas(64) static atomic_long flag;
    if (rounds < 1)
        rounds = 1;
    double *t = malloc(sizeof(double) * (size_t)rounds);
    if (!t)
        return -1.0;
    for (int r = 0; r < rounds; r++) {
        atomic_store(&flag, 0);
        double t0 = 0.0, t1 = 0.0;
#pragma omp parallel num_threads(2)
        {
            const long me = omp_get_thread_num();
#pragma omp barrier
            if (me == 0)
                t0 = omp_get_wtime();
            if (omp_get_num_threads() == 2)
                for (long i = 0; i < TURNS; i++) {
                    while (atomic_load_explicit(&flag, memory_order_acquire) != 2 * i + me)
                        ;
                    atomic_store_explicit(&flag, 2 * i + me + 1, memory_order_release);
                }
            if (me == 0)
                t1 = omp_get_wtime();
        }
        t[r] = (t1 - t0) * 1e9 / (2.0 * TURNS);
    }
    qsort(t, (size_t)rounds, sizeof(double), cmp_double);
    const double median = t[rounds / 2];
    free(t);
    return median;
}

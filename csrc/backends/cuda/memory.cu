/* The CUDA backend's context, memory hooks and table, and the one exported symbol.
 *
 * Everything lives in plain device allocations (cudaMalloc; no managed memory). A context owns
 * one stream and one cuBLAS handle; every op is enqueued on that stream, so the driver's order is
 * the device's order and nothing waits until a download, count_nonfinite or sync. A GPU wants
 * the whole batch in one eval pass (eval_chunk 0) on one lane. */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cuda_module.h"
#include "backends/cuda/memory.cuh"

static ctrgcn_status no_fail(ctrgcn_status st, const char *fmt, ...) {
    (void)fmt;
    return st;
}
static cuda_fail_fn fail_fn = no_fail;

static void bind(ctrgcn_status (*fail)(ctrgcn_status, const char *, ...)) { fail_fn = fail ? fail : no_fail; }

void cuda_fail(backend_ctx *c, ctrgcn_status st, const char *fmt, ...) {
    char msg[sizeof c->fail_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!c->failed) { /* the first failure is the cause; what follows it is consequence */
        c->fail_status = st;
        memcpy(c->fail_msg, msg, sizeof msg);
    }
    c->failed = 1;
    fail_fn(st, "%s", msg);
}

void cuda_report(backend_ctx *c, const char *what, cudaError_t err) {
    cuda_fail(c, CTRGCN_ERR_STATE, "CUDA backend: %s failed: %s", what, cudaGetErrorString(err));
}

/* Ops return nothing, so the session asks after each call: OK, or the first failure since the last
 * check, raised again into the caller's error slot (the call may come from another thread than
 * the failing op's). A failure that left the device working (out of memory, a rejected launch)
 * ends here; a fault of the device itself persists in the CUDA runtime and fails again. */
ctrgcn_status cuda_check(backend_ctx *c) {
    if (!c->failed && !c->capturing && !c->dry) {
        /* a kernel's fault surfaces at the stream's next synchronisation; ask without waiting, so
         * a call that only uploaded (no sync of its own) does not report it one call late */
        const cudaError_t err = cudaStreamQuery(c->stream);
        if (err != cudaSuccess && err != cudaErrorNotReady) cuda_report(c, "a kernel", err);
    }
    if (!c->failed) return CTRGCN_OK;
    /* A failure is raised by every check until one finds the device working again: a call made
     * while it lasted had its ops skipped, so that call fails too, even if the device came back
     * during it (a real fault of the device, an illegal address, never comes back). */
    const ctrgcn_status st = fail_fn(c->fail_status, "%s", c->fail_msg);
    if (cudaStreamSynchronize(c->stream) == cudaSuccess && cudaGetLastError() == cudaSuccess) c->failed = 0;
    return st;
}

static int device_count(char *why, size_t cap) {
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        /* without a driver at all the runtime says "driver version is insufficient": say what is missing */
        void *driver = err == cudaErrorInsufficientDriver ? dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD) : NULL;
        if (err == cudaErrorInsufficientDriver && !driver) driver = dlopen("libcuda.so.1", RTLD_LAZY);
        if (why && cap)
            snprintf(why, cap, "%s", err == cudaErrorInsufficientDriver && !driver
                                         ? "no NVIDIA driver on this machine (libcuda.so.1 not found)"
                                         : cudaGetErrorString(err));
        cudaGetLastError();
        return 0;
    }
    if (n == 0 && why && cap) snprintf(why, cap, "the CUDA runtime reports no device");
    return n;
}

ctrgcn_status cuda_init(backend_ctx **out, int threads) {
    (void)threads; /* the device schedules itself */
    *out = NULL;
    char why[200];
    if (device_count(why, sizeof why) < 1)
        return fail_fn(CTRGCN_ERR_STATE, "no CUDA device available: %s", why);
    backend_ctx *c = (backend_ctx *)calloc(1, sizeof *c);
    if (!c) return fail_fn(CTRGCN_ERR_NOMEM, "out of memory");
    c->device = 0;
    cudaError_t err = cudaSetDevice(c->device);
    if (err == cudaSuccess) err = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    if (err != cudaSuccess) {
        cudaGetLastError();
        free(c);
        return fail_fn(CTRGCN_ERR_STATE, "CUDA backend: cannot start on device 0: %s", cudaGetErrorString(err));
    }
    const size_t ws = (size_t)32 << 20;
    if (cublasCreate(&c->blas) != CUBLAS_STATUS_SUCCESS) {
        cuda_release(c);
        return fail_fn(CTRGCN_ERR_STATE, "CUDA backend: cuBLAS did not start");
    }
    /* float32 throughout: the default math mode takes no TF32 shortcut for SGEMM (NVIDIA_TF32_OVERRIDE unset) */
    cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH);
    cublasSetStream(c->blas, c->stream);
    if (cudaMalloc(&c->blas_ws, ws) != cudaSuccess ||
        cudaMalloc((void **)&c->counter, sizeof(unsigned long long)) != cudaSuccess) {
        cudaGetLastError();
        cuda_release(c);
        return fail_fn(CTRGCN_ERR_NOMEM, "CUDA backend: out of device memory starting a context");
    }
    cublasSetWorkspace(c->blas, c->blas_ws, ws); /* also what lets cuBLAS calls be captured in a graph */
    const char *graphs = getenv("CTRGCN_CUDA_GRAPHS");
    c->graphs = !(graphs && strcmp(graphs, "0") == 0);
    *out = c;
    return CTRGCN_OK;
}

void cuda_release(backend_ctx *c) {
    if (!c) return;
    if (c->stream) cudaStreamSynchronize(c->stream);
    if (c->exec) cudaGraphExecDestroy(c->exec);
    if (c->blas) cublasDestroy(c->blas);
    cudaFree(c->blas_ws);
    cudaFree(c->scratch[0]);
    cudaFree(c->scratch[1]);
    cudaFree(c->ones);
    cudaFree(c->counter);
    if (c->stream) cudaStreamDestroy(c->stream);
    cudaGetLastError();
    free(c);
}

/* The captured pass, dropped: a dry run no longer matches it, or memory it holds moved. */
static void drop_graph(backend_ctx *c) {
    if (c->exec) cudaGraphExecDestroy(c->exec);
    c->exec = NULL;
    c->graph_fn = NULL;
}
/* ... and the capture that a repeated pass would start next: it would see the memory as it was. */
static void forget_graph(backend_ctx *c) {
    drop_graph(c);
    c->capture_next = 0;
    c->prev_sig = 0;
}

void *cuda_scratch(backend_ctx *c, int slot, size_t bytes) {
    if (c->failed) return NULL;
    if (!bytes) bytes = 16; /* an op asking for nothing still gets a buffer, never a NULL it reads as failure */
    if (bytes <= c->scratch_bytes[slot]) return c->scratch[slot];
    if (c->capturing || c->dry) { /* no reallocating inside a capture or a dry run: the pass runs directly */
        c->impure = 1;
        return NULL;
    }
    /* a captured pass holds the old buffer's address, and the ops enqueued before may still read it */
    forget_graph(c);
    cudaStreamSynchronize(c->stream);
    cudaFree(c->scratch[slot]);
    c->scratch[slot] = NULL;
    c->scratch_bytes[slot] = 0;
    const size_t want = bytes + bytes / 4 + 4096;
    if (cudaMalloc(&c->scratch[slot], want) != cudaSuccess) {
        cudaGetLastError();
        c->scratch[slot] = NULL;
        cuda_fail(c, CTRGCN_ERR_NOMEM, "CUDA backend: out of device memory for %zu bytes of scratch", want);
        return NULL;
    }
    c->scratch_bytes[slot] = want;
    return c->scratch[slot];
}

static __global__ void fill_kernel(float *x, float v, size_t n) {
    GRID_STRIDE(e, n) x[e] = v;
}

const float *cuda_ones(backend_ctx *c, size_t n) {
    if (c->failed) return NULL;
    if (n <= c->ones_len) return c->ones;
    if (c->capturing || c->dry) {
        c->impure = 1;
        return NULL;
    }
    forget_graph(c);
    cudaStreamSynchronize(c->stream);
    cudaFree(c->ones);
    c->ones_len = 0;
    const size_t want = n < 1024 ? 1024 : 2 * n;
    if (cudaMalloc((void **)&c->ones, sizeof(float) * want) != cudaSuccess) {
        cudaGetLastError();
        c->ones = NULL;
        cuda_fail(c, CTRGCN_ERR_NOMEM, "CUDA backend: out of device memory");
        return NULL;
    }
    c->ones_len = want;
    LAUNCH(c, fill_kernel, want, c->ones, 1.0f, want);
    return c->ones;
}

ctrgcn_status cuda_reserve(backend_ctx *c, size_t floats) {
    /* a failure not yet checked is reported first (and ends, if the device still works) */
    ctrgcn_status st = cuda_check(c);
    if (st != CTRGCN_OK) return st;
    /* one person's worth up front; the batch-level ops grow it to what their batch needs */
    if (!cuda_scratch(c, 0, sizeof(float) * floats)) return cuda_check(c);
    return CTRGCN_OK;
}

int cuda_lanes(backend_ctx *c, int chunks) {
    (void)c;
    (void)chunks;
    return 1;
}

static int cuda_train_chunk(backend_ctx *c) {
    (void)c;
    return 0; /* the whole batch: one launch per op */
}

/* ---- the eval pass as a CUDA graph --------------------------------------------------------------
 * A batch-1 pass is some 150 small launches; replaying them as one graph takes the host's launch
 * cost off the critical path. Correctness rests on the signature: the graph replays only when a
 * dry run of the pass issues exactly the ops and arguments (pointers included) it was captured
 * with, so a new plan, other shapes or a probe download run the pass directly instead. */

/* Runs the pass under stream capture; 1 when it is now a graph (and launched). */
static int capture(backend_ctx *c, lane_fn fn, void *arg) {
    const int failed = c->failed;
    cudaGraph_t g = NULL;
    drop_graph(c); /* one graph per context */
    c->sig = 0;
    c->impure = 0;
    if (cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeRelaxed) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    c->capturing = 1;
    fn(arg, 0, 0);
    c->capturing = 0;
    cudaError_t err = cudaStreamEndCapture(c->stream, &g);
    const int ok = err == cudaSuccess && g && !c->impure && !c->failed && c->sig == c->prev_sig &&
                   cudaGraphInstantiate(&c->exec, g, 0) == cudaSuccess;
    if (g) cudaGraphDestroy(g);
    if (!ok) {
        /* nothing of the pass ran; undo what the capture marked and run it directly */
        cudaGetLastError();
        c->exec = NULL;
        /* a pass that moved memory (a probe, a grown buffer) may capture next time; a capture the
         * runtime refused will not succeed later either */
        if (!c->impure) c->graphs = 0;
        c->failed = failed;
        return 0;
    }
    c->graph_fn = fn;
    c->graph_sig = c->sig;
    err = cudaGraphLaunch(c->exec, c->stream);
    if (err != cudaSuccess) cuda_report(c, "graph launch", err);
    return 1;
}

/* A dry run or a capture of a profiled pass would call (and profile) its ops twice, and the
 * profiler's syncs would end the capture anyway: while it is on, passes run directly. */
void cuda_profiling(backend_ctx *c, int on) {
    c->profiling = on;
    if (on) forget_graph(c);
}

void cuda_run_lanes(backend_ctx *c, int chunks, int lanes, lane_fn fn, void *arg) {
    (void)lanes;
    if (chunks != 1 || !c->graphs || c->failed || c->profiling) {
        for (int i = 0; i < chunks; i++) fn(arg, i, 0);
        return;
    }
    if (c->exec && c->graph_fn == fn) {
        c->sig = 0;
        c->impure = 0;
        c->dry = 1;
        fn(arg, 0, 0);
        c->dry = 0;
        if (c->exec && !c->impure && c->sig == c->graph_sig) {
            cudaError_t err = cudaGraphLaunch(c->exec, c->stream);
            if (err != cudaSuccess) cuda_report(c, "graph launch", err);
            c->replays++;
            return;
        }
        drop_graph(c);
    }
    if (c->capture_next && c->prev_fn == fn) {
        c->capture_next = 0;
        if (capture(c, fn, arg)) return;
    }
    c->sig = 0;
    c->impure = 0;
    fn(arg, 0, 0);
    /* the same pass twice in a row: the next one is captured */
    c->capture_next = !c->impure && c->sig != 0 && fn == c->prev_fn && c->sig == c->prev_sig;
    c->prev_fn = fn;
    c->prev_sig = c->impure ? 0 : c->sig;
}

void *cuda_alloc(backend_ctx *c, size_t bytes) {
    void *p = NULL;
    const cudaError_t err = cudaMalloc(&p, bytes ? bytes : 16);
    if (err == cudaErrorMemoryAllocation) {
        cudaGetLastError(); /* out of memory is not sticky: the caller reports it */
        return NULL;
    }
    if (err != cudaSuccess) { /* a device that fails: say so, not "out of memory" */
        cuda_report(c, "cudaMalloc", err);
        return NULL;
    }
    return p;
}

void cuda_free(backend_ctx *c, void *p) {
    if (!p) return;
    cudaStreamSynchronize(c->stream);
    cudaFree(p);
}

/* Host transfers inside a pass make it unreplayable; in a dry run or a capture they do nothing
 * (the pass then runs again directly). */
static int in_pass(backend_ctx *c) {
    if (!c->dry && !c->capturing) return 0;
    c->impure = 1;
    return 1;
}

void cuda_upload(backend_ctx *c, void *dst, const void *host_src, size_t bytes) {
    if (!bytes || c->failed || in_pass(c)) return;
    /* from pageable memory: returns once the source is staged, so the caller may reuse it */
    cudaError_t err = cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, c->stream);
    if (err != cudaSuccess) cuda_report(c, "upload", err);
}

void cuda_download(backend_ctx *c, void *host_dst, const void *src, size_t bytes) {
    if (!bytes || in_pass(c)) return;
    if (!c->failed) {
        cudaError_t err = cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, c->stream);
        if (err == cudaSuccess) err = cudaStreamSynchronize(c->stream);
        if (err == cudaSuccess) return;
        cuda_report(c, "download", err);
    }
    /* a failed context hands back NaN (float and double) or -1 (int), never stale values */
    memset(host_dst, 0xff, bytes);
}

void cuda_zero(backend_ctx *c, void *p, size_t bytes) {
    if (!bytes || c->failed || in_pass(c)) return;
    cudaError_t err = cudaMemsetAsync(p, 0, bytes, c->stream);
    if (err != cudaSuccess) cuda_report(c, "memset", err);
}

void cuda_sync(backend_ctx *c) {
    /* inside a capture (the op profiler syncs around every op) a synchronisation would break it:
     * the pass is marked unreplayable instead and runs directly, where the syncs are real */
    if (in_pass(c)) return;
    cudaError_t err = cudaStreamSynchronize(c->stream);
    if (err != cudaSuccess) cuda_report(c, "a kernel", err);
}

static __global__ void nonfinite_kernel(unsigned long long *out, const float *x, size_t n) {
    unsigned long long bad = 0;
    GRID_STRIDE(e, n) bad += !isfinite(x[e]);
    if (bad) atomicAdd(out, bad);
}

size_t cuda_count_nonfinite(backend_ctx *c, const float *x, size_t count) {
    if (!count || in_pass(c)) return 0;
    unsigned long long bad = 0;
    cuda_zero(c, c->counter, sizeof bad);
    LAUNCH(c, nonfinite_kernel, count, c->counter, x, count);
    cuda_download(c, &bad, c->counter, sizeof bad);
    /* a failed context cannot vouch for anything */
    return c->failed ? count : (size_t)bad;
}

/* ---- shared helpers ------------------------------------------------------------------------ */
void gemm_rm(backend_ctx *c, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, long long sA,
             const float *B, int ldb, long long sB, float beta, float *C, int ldc, long long sC, int batch) {
    if (c->failed || M <= 0 || N <= 0 || batch <= 0) return;
    const cublasOperation_t opA = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opB = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasStatus_t st;
    if (batch == 1)
        st = cublasSgemm(c->blas, opB, opA, N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc);
    else
        st = cublasSgemmStridedBatched(c->blas, opB, opA, N, M, K, &alpha, B, ldb, sB, A, lda, sA, &beta, C, ldc, sC,
                                       batch);
    if (st != CUBLAS_STATUS_SUCCESS)
        cuda_fail(c, CTRGCN_ERR_STATE, "CUDA backend: cuBLAS GEMM %dx%dx%d (batch %d) failed with status %d", M, N, K,
                  batch, (int)st);
}

void sum_persons_add(backend_ctx *c, float *dst, const float *P, int n, size_t count) {
    const float *ones = cuda_ones(c, (size_t)n);
    if (!ones || !count) return;
    const float one = 1.0f;
    /* P row-major [n][count] is column-major [count][n]: dst += P_cm ones */
    cublasStatus_t st = cublasSgemv(c->blas, CUBLAS_OP_N, (int)count, n, &one, P, (int)count, ones, 1, &one, dst, 1);
    if (st != CUBLAS_STATUS_SUCCESS) cuda_fail(c, CTRGCN_ERR_STATE, "CUDA backend: cuBLAS GEMV failed with status %d", (int)st);
}

static __global__ void rows_sum_kernel(float *db, const float *d, size_t ld, int n, int rows, size_t cols) {
    __shared__ double sh[32];
    const int r = blockIdx.x;
    const size_t total = (size_t)n * cols;
    double acc = 0.0;
    for (size_t k = threadIdx.x; k < total; k += blockDim.x) {
        const size_t i = k / cols, j = k % cols;
        acc += d[i * ld + (size_t)r * cols + j];
    }
    acc = block_sum(acc, sh);
    if (threadIdx.x == 0) db[r] += (float)acc;
}

void rows_sum_add(backend_ctx *c, float *db, const float *d, size_t ld, int n, int rows, size_t cols) {
    if (!db || rows <= 0) return;
    LAUNCH_GRID(c, rows_sum_kernel, rows, CUDA_THREADS, 0, db, d, ld, n, rows, cols);
}

static __global__ void rows_bias_kernel(float *y, size_t ld, const float *b, int rows, size_t cols, size_t count,
                                        int assign) {
    GRID_STRIDE(e, count) {
        const size_t per = (size_t)rows * cols, i = e / per, r = (e % per) / cols, j = e % cols;
        float *p = y + i * ld + r * cols + j;
        const float v = b ? b[r] : 0.0f;
        *p = assign ? v : *p + v;
    }
}

void rows_bias(backend_ctx *c, float *y, size_t ld, const float *b, int n, int rows, size_t cols, int assign) {
    if (!b && !assign) return;
    const size_t count = (size_t)n * rows * cols;
    LAUNCH(c, rows_bias_kernel, count, y, ld, b, rows, cols, count, assign);
}

/* ---- the table and the exported entry --------------------------------------------------------- */
/* Every op signs its call (name and arguments) into the context's signature, and does nothing
 * more in a dry run. */
static inline uint64_t mix(uint64_t h, uint64_t v) { return (h ^ v) * 0x100000001b3ULL + (h >> 29); }
template <typename T> static inline uint64_t bits(T *p) { return (uint64_t)(uintptr_t)p; }
static inline uint64_t bits(int v) { return (uint64_t)(int64_t)v; }
static inline uint64_t bits(size_t v) { return (uint64_t)v; }
static inline uint64_t bits(float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

template <auto F> struct signed_op;
template <typename... A, void (*F)(backend_ctx *, A...)> struct signed_op<F> {
    static void run(backend_ctx *c, A... a) {
        uint64_t h = mix(c->sig, (uint64_t)(uintptr_t)F);
        ((h = mix(h, bits(a))), ...);
        c->sig = h;
        if (!c->dry) F(c, a...);
    }
};
#define OP(f) signed_op<f>::run

static const ctrgcn_backend table = [] {
    ctrgcn_backend t;
    memset(&t, 0, sizeof t);
    t.name = "cuda";
    t.init = cuda_init;
    t.release = cuda_release;
    t.reserve = cuda_reserve;
    t.eval_chunk = 0;
    t.train_chunk = cuda_train_chunk;
    t.lanes = cuda_lanes;
    t.run_lanes = cuda_run_lanes;
    t.alloc = cuda_alloc;
    t.free = cuda_free;
    t.upload = cuda_upload;
    t.download = cuda_download;
    t.zero = cuda_zero;
    t.sync = cuda_sync;
    t.profiling = cuda_profiling;
    t.count_nonfinite = cuda_count_nonfinite;
    t.check = cuda_check;
#define CUDA_ENTRY(name, params) t.name = OP(cuda_##name);
    CTRGCN_BACKEND_OPS(CUDA_ENTRY)
#undef CUDA_ENTRY
    return t;
}();

extern "C" __attribute__((visibility("default"))) const ctrgcn_cuda_module ctrgcn_cuda_entry = {
    CTRGCN_CUDA_ABI, sizeof(ctrgcn_backend), &table, device_count, bind};

/* The host emulation's runtime (see cuda_host.h): device memory, streams, capture and graphs, the
 * kernel scheduler with its fibers, and cuBLAS on OpenBLAS.
 *
 * Environment: CTRGCN_CUDA_HOST_MEMORY (bytes of "device" memory, default 4 GiB: beyond it cudaMalloc
 * fails as out of memory), FAKE_CUDA_FAULT (while set, the stream reports an illegal memory access). */
#include "cuda_host.h"

#include <stdio.h>
#include <stdlib.h>

#include <map>
#include <mutex>
#include <string>
#include <vector>

extern "C" {
#include "layers/blas.h"
}

dim3 threadIdx, blockIdx, blockDim, gridDim;
static std::mutex launch_mu; /* held while a kernel runs: one at a time */

/* ---- errors --------------------------------------------------------------------------------------
 * Like CUDA's: a failed call's error is returned and kept for cudaGetLastError (per host thread); a
 * fault inside a kernel is sticky and reported by every later synchronising call. */
static thread_local cudaError_t last_error = cudaSuccess;
static std::mutex mu;
static cudaError_t sticky = cudaSuccess;
static std::string sticky_why;

static cudaError_t set_error(cudaError_t e) {
    if (e != cudaSuccess) last_error = e;
    return e;
}
static void kernel_fault(const char *why) {
    std::lock_guard<std::mutex> g(mu);
    if (sticky == cudaSuccess) {
        sticky = cudaErrorLaunchFailure;
        sticky_why = why;
        fprintf(stderr, "cuda_host: device fault: %s\n", why);
    }
}
static cudaError_t stream_state(void) {
    const char *fault = getenv("FAKE_CUDA_FAULT");
    if (fault && *fault) return cudaErrorIllegalAddress;
    std::lock_guard<std::mutex> g(mu);
    return sticky;
}

cudaError_t cudaGetLastError(void) {
    const cudaError_t e = last_error;
    last_error = cudaSuccess;
    std::lock_guard<std::mutex> g(mu);
    return sticky != cudaSuccess ? sticky : e;
}

const char *cudaGetErrorString(cudaError_t err) {
    switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    default: return "unknown error";
    }
}

cudaError_t cudaGetDeviceCount(int *count) {
    *count = 1;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return set_error(device == 0 ? cudaSuccess : cudaErrorInvalidDevice); }

/* ---- memory ------------------------------------------------------------------------------------
 * Device allocations are host allocations known by address, so that every copy, memset and cuBLAS
 * operand can be checked to lie inside one. New memory holds NaN bytes, as fresh device memory
 * holds garbage: a kernel that reads what nobody wrote shows it. Each allocation sits between two
 * red zones of NaN bytes: a kernel that reads past its buffer reads NaN, and one that writes past
 * it is caught when the zones are checked (every synchronisation and free) and reported as a
 * device fault. */
static std::map<uintptr_t, size_t> allocations;
static size_t in_use = 0;
enum { RED_ZONE = 1024 };

static bool zone_intact(const unsigned char *z) {
    for (int i = 0; i < RED_ZONE; i++)
        if (z[i] != 0xff) return false;
    return true;
}
/* Both zones of the allocation at `a` (of `size` bytes) unwritten; call with mu held. */
static bool zones_intact(uintptr_t a, size_t size) {
    return zone_intact((const unsigned char *)a - RED_ZONE) && zone_intact((const unsigned char *)a + size);
}

static size_t capacity(void) {
    const char *v = getenv("CTRGCN_CUDA_HOST_MEMORY");
    return v && *v ? (size_t)strtoull(v, NULL, 10) : (size_t)4 << 30;
}

/* Whether [p, p + bytes) lies inside one device allocation. */
static bool on_device(const void *p, size_t bytes) {
    std::lock_guard<std::mutex> g(mu);
    const uintptr_t a = (uintptr_t)p;
    auto it = allocations.upper_bound(a);
    if (it == allocations.begin()) return false;
    --it;
    return a >= it->first && a - it->first + bytes <= it->second;
}
/* Whether any byte of [p, p + bytes) is device memory. */
static bool touches_device(const void *p, size_t bytes) {
    std::lock_guard<std::mutex> g(mu);
    const uintptr_t a = (uintptr_t)p;
    auto it = allocations.upper_bound(a + (bytes ? bytes - 1 : 0));
    if (it == allocations.begin()) return false;
    --it;
    return it->first + it->second > a;
}

static void check_zones(void) {
    uintptr_t bad = 0;
    {
        std::lock_guard<std::mutex> g(mu);
        for (const auto &a : allocations)
            if (!zones_intact(a.first, a.second)) {
                bad = a.first;
                break;
            }
    }
    if (bad) {
        char why[160];
        snprintf(why, sizeof why, "a kernel or copy wrote outside the device allocation at %p", (void *)bad);
        kernel_fault(why);
    }
}

cudaError_t cudaMalloc(void **p, size_t bytes) {
    *p = NULL;
    const size_t size = (bytes + 255) & ~(size_t)255;
    {
        std::lock_guard<std::mutex> g(mu);
        if (size == 0 || in_use + size > capacity()) return set_error(cudaErrorMemoryAllocation);
    }
    char *raw = (char *)aligned_alloc(256, size + 2 * RED_ZONE);
    if (!raw) return set_error(cudaErrorMemoryAllocation);
    memset(raw, 0xff, size + 2 * RED_ZONE);
    char *q = raw + RED_ZONE;
    std::lock_guard<std::mutex> g(mu);
    allocations[(uintptr_t)q] = size;
    in_use += size;
    *p = q;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    bool intact;
    {
        std::lock_guard<std::mutex> g(mu);
        auto it = allocations.find((uintptr_t)p);
        if (it == allocations.end()) {
            fprintf(stderr, "cuda_host: cudaFree of %p, not a device allocation\n", p);
            last_error = cudaErrorInvalidDevicePointer;
            return cudaErrorInvalidDevicePointer;
        }
        intact = zones_intact(it->first, it->second);
        in_use -= it->second;
        allocations.erase(it);
    }
    if (!intact) kernel_fault("a kernel or copy wrote outside a device allocation (found when it was freed)");
    free((char *)p - RED_ZONE);
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    std::lock_guard<std::mutex> g(mu);
    *total_bytes = capacity();
    *free_bytes = *total_bytes - in_use;
    return cudaSuccess;
}

/* ---- streams, capture, graphs ------------------------------------------------------------------
 * Work runs when it is enqueued (a stream is always idle afterwards), unless the stream captures:
 * then it is recorded into the graph being built. */
struct cuda_host_stream {
    bool capturing = false, invalid = false;
    std::vector<std::function<void()>> recorded;
};
struct cuda_host_graph {
    std::vector<std::function<void()>> work;
};

static cudaError_t enqueue(cudaStream_t s, std::function<void()> work) {
    if (s && s->capturing) {
        s->recorded.push_back(std::move(work));
        return cudaSuccess;
    }
    work();
    return cudaSuccess;
}
/* An operation that would have to wait for the stream, or touch pageable host memory, while the
 * stream captures: refused, and the capture is invalidated (as CUDA does). */
static cudaError_t refuse_in_capture(cudaStream_t s) {
    if (!s || !s->capturing) return cudaSuccess;
    s->invalid = true;
    return set_error(cudaErrorStreamCaptureUnsupported);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    (void)flags;
    *s = new cuda_host_stream;
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    delete s;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    const cudaError_t e = refuse_in_capture(s);
    if (e != cudaSuccess) return e;
    check_zones();
    return set_error(stream_state());
}
cudaError_t cudaStreamQuery(cudaStream_t s) {
    const cudaError_t e = refuse_in_capture(s);
    if (e != cudaSuccess) return e;
    check_zones();
    return stream_state();
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
    if (!bytes) return cudaSuccess;
    bool ok;
    switch (kind) {
    case cudaMemcpyHostToDevice: ok = on_device(dst, bytes) && !touches_device(src, bytes); break;
    case cudaMemcpyDeviceToHost: ok = on_device(src, bytes) && !touches_device(dst, bytes); break;
    case cudaMemcpyDeviceToDevice: ok = on_device(src, bytes) && on_device(dst, bytes); break;
    default: ok = false;
    }
    if (!ok) {
        fprintf(stderr, "cuda_host: cudaMemcpyAsync(%p <- %p, %zu bytes, kind %d): not a copy of that direction "
                        "within device allocations\n", dst, src, bytes, (int)kind);
        return set_error(cudaErrorInvalidValue);
    }
    if (kind != cudaMemcpyDeviceToDevice) {
        const cudaError_t e = refuse_in_capture(s);
        if (e != cudaSuccess) return e;
    }
    return enqueue(s, [=]() { memcpy(dst, src, bytes); });
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s) {
    if (!bytes) return cudaSuccess;
    if (!on_device(p, bytes)) {
        fprintf(stderr, "cuda_host: cudaMemsetAsync(%p, %zu bytes) outside device allocations\n", p, bytes);
        return set_error(cudaErrorInvalidValue);
    }
    return enqueue(s, [=]() { memset(p, value, bytes); });
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
    (void)mode;
    if (!s || s->capturing) return set_error(cudaErrorInvalidValue);
    s->capturing = true;
    s->invalid = false;
    s->recorded.clear();
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g) {
    *g = NULL;
    if (!s || !s->capturing) return set_error(cudaErrorInvalidValue);
    s->capturing = false;
    if (s->invalid) {
        s->recorded.clear();
        return set_error(cudaErrorStreamCaptureInvalidated);
    }
    *g = new cuda_host_graph{std::move(s->recorded)};
    s->recorded.clear();
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t g, unsigned long long flags) {
    (void)flags;
    if (!g) return set_error(cudaErrorInvalidValue);
    *exec = new cuda_host_graph{g->work};
    return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
    if (!exec) return set_error(cudaErrorInvalidResourceHandle);
    for (auto &w : exec->work) enqueue(s, w);
    return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) {
    delete g;
    return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    delete exec;
    return cudaSuccess;
}

/* ---- fibers --------------------------------------------------------------------------------------
 * A switch saves the callee-saved registers and the floating-point control words on the current
 * stack and moves to the other stack (x86-64 System V). No signal masks, no system calls. */
extern "C" void cuda_host_switch(void **save_sp, void *load_sp);
asm(R"(
    .text
    .globl cuda_host_switch
    .type cuda_host_switch, @function
cuda_host_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size cuda_host_switch, .-cuda_host_switch
)");

enum { STACK_BYTES = 256 << 10 };

struct fiber {
    void *sp;
    dim3 tid;
    bool done;
    int waits;           /* 0 none, 1 the block's barrier, 2 its warp's */
    unsigned long gen;   /* the barrier generation it waits to see pass */
    uint64_t slot[2];    /* what it publishes in a shuffle, in alternate slots */
    unsigned shuffles;   /* shuffles it has made: their parity picks the slot */
};

/* The block now running (under launch_mu). */
struct block_state {
    const std::function<void()> *body;
    std::vector<fiber> f;
    std::vector<char *> stacks;
    std::vector<char> shared;
    void *main_sp;
    int cur;       /* the running fiber; -1 while threads run as plain calls */
    int alive;     /* fibers not done */
    bool synced;   /* a barrier or shuffle was reached */
    unsigned long bar_gen;
    int bar_arrived;
    std::vector<unsigned long> warp_gen;
    std::vector<int> warp_arrived, warp_alive;
};
static block_state B;

void *cuda_host_dynamic_shared(void) { return B.shared.data(); }

static void set_tid(const fiber &f) { threadIdx = f.tid; }

static void yield_to_main(void) { cuda_host_switch(&B.f[B.cur].sp, B.main_sp); }

/* A fiber's first frame: run the kernel body, then leave for good. */
static void fiber_entry(void) {
    (*B.body)();
    fiber &me = B.f[B.cur];
    me.done = true;
    B.alive--;
    const int w = B.cur >> 5;
    B.warp_alive[w]--;
    /* those waiting on a barrier no longer wait for this thread */
    if (B.bar_arrived > 0 && B.bar_arrived == B.alive) {
        B.bar_gen++;
        B.bar_arrived = 0;
    }
    if (B.warp_arrived[w] > 0 && B.warp_arrived[w] == B.warp_alive[w]) {
        B.warp_gen[w]++;
        B.warp_arrived[w] = 0;
    }
    void *dead;
    cuda_host_switch(&dead, B.main_sp);
    abort(); /* never resumed */
}

static void make_fiber(int i) {
    if ((int)B.stacks.size() <= i) B.stacks.resize(i + 1, NULL);
    if (!B.stacks[i]) B.stacks[i] = (char *)aligned_alloc(64, STACK_BYTES);
    /* the frame cuda_host_switch pops: control words, six registers, then fiber_entry as the return
     * address at a 16-byte boundary (so that fiber_entry starts as if called) */
    uintptr_t top = ((uintptr_t)(B.stacks[i] + STACK_BYTES) & ~(uintptr_t)15) - 16;
    void **sp = (void **)top;
    *sp = (void *)&fiber_entry;
    sp -= 6;
    memset(sp, 0, 6 * sizeof(void *));
    sp -= 1;
    uint32_t words[2];
    __asm__ volatile("stmxcsr %0" : "=m"(words[0]));
    __asm__ volatile("fnstcw %0" : "=m"(words[1]));
    memcpy(sp, words, sizeof words);
    B.f[i].sp = sp;
}

static bool runnable(const fiber &f) {
    if (f.done) return false;
    if (f.waits == 1) return B.bar_gen != f.gen;
    if (f.waits == 2) return B.warp_gen[(&f - B.f.data()) >> 5] != f.gen;
    return true;
}

static void resume(int i) {
    B.cur = i;
    set_tid(B.f[i]);
    cuda_host_switch(&B.main_sp, B.f[i].sp);
    B.cur = -1;
}

/* Waits at the block's barrier (kind 1) or warp w's (kind 2). */
static void arrive(int kind, int w) {
    B.synced = true;
    if (B.cur < 0) {
        kernel_fault("a barrier or shuffle reached in a launch whose first thread reached none: the kernel's "
                     "threads synchronise in some blocks or threads only");
        return;
    }
    fiber &me = B.f[B.cur];
    unsigned long &gen = kind == 1 ? B.bar_gen : B.warp_gen[w];
    int &arrived = kind == 1 ? B.bar_arrived : B.warp_arrived[w];
    const int expected = kind == 1 ? B.alive : B.warp_alive[w];
    const unsigned long mine = gen;
    if (++arrived == expected) {
        gen++;
        arrived = 0;
        return;
    }
    me.waits = kind;
    me.gen = mine;
    while (gen == mine) yield_to_main();
    B.f[B.cur].waits = 0;
}

void __syncthreads(void) { arrive(1, 0); }

uint64_t cuda_host_shuffle(uint64_t mine, int src) {
    if (B.cur < 0) {
        arrive(2, 0); /* reports the fault */
        return mine;
    }
    /* One barrier a shuffle: lanes publish in alternate slots, so a lane that runs ahead writes the
     * other slot, and cannot come back to this one before every lane has passed the next barrier,
     * that is, has read. */
    const int me = B.cur, w = me >> 5, k = B.f[me].shuffles++ & 1;
    B.f[me].slot[k] = mine;
    arrive(2, w); /* everyone has published */
    uint64_t got = mine;
    if (src >= 0) {
        const int from = (w << 5) + src;
        if (from >= (int)B.f.size()) {
            got = mine; /* past the block's last thread: CUDA leaves the value as it was */
        } else if (B.f[from].shuffles < B.f[me].shuffles) { /* it never made this shuffle */
            kernel_fault("a shuffle read a lane that had exited or did not take part");
        } else {
            got = B.f[from].slot[k];
        }
    }
    return got;
}

static dim3 tid_of(int i, dim3 block) { return dim3(i % block.x, i / block.x % block.y, i / (block.x * block.y)); }

/* One block: thread 0 first; the others as plain calls, or as fibers if it synchronised. */
static void run_block(dim3 block, bool *known, bool *use_fibers) {
    const int nt = (int)(block.x * block.y * block.z), nw = (nt + 31) / 32;
    B.cur = -1;
    if (!*known || *use_fibers) {
        B.f.assign(nt, fiber{});
        for (int i = 0; i < nt; i++) B.f[i].tid = tid_of(i, block);
        B.alive = nt;
        B.bar_gen = 0;
        B.bar_arrived = 0;
        B.warp_gen.assign(nw, 0);
        B.warp_arrived.assign(nw, 0);
        B.warp_alive.assign(nw, 32);
        if (nt % 32) B.warp_alive[nw - 1] = nt % 32;
        B.synced = false;
    }
    int started = 0;
    if (!*known) { /* thread 0 as a fiber decides how the launch runs */
        make_fiber(0);
        resume(0);
        started = 1;
        *use_fibers = B.synced;
        *known = true;
    }
    if (!*use_fibers) {
        for (int i = started; i < nt; i++) {
            threadIdx = tid_of(i, block);
            (*B.body)();
        }
        return;
    }
    for (int i = started; i < nt; i++) make_fiber(i);
    while (B.alive > 0) {
        bool moved = false;
        for (int i = 0; i < nt; i++)
            if (runnable(B.f[i])) {
                resume(i);
                moved = true;
            }
        if (!moved) {
            kernel_fault("the block's threads wait at a barrier that some of them never reach");
            return; /* their stacks are simply reused */
        }
    }
}

void cuda_host_run(cudaStream_t s, dim3 grid, dim3 block, size_t shmem, std::function<void()> body) {
    const size_t threads = (size_t)block.x * block.y * block.z;
    if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
        grid.y > 65535 || grid.z > 65535 || grid.x > 2147483647u) {
        fprintf(stderr, "cuda_host: launch of grid (%u, %u, %u) x block (%u, %u, %u) refused\n", grid.x, grid.y,
                grid.z, block.x, block.y, block.z);
        set_error(cudaErrorInvalidConfiguration);
        return;
    }
    if (shmem > 48 << 10) { /* beyond the default without opting in */
        fprintf(stderr, "cuda_host: %zu bytes of dynamic shared memory refused\n", shmem);
        set_error(cudaErrorInvalidValue);
        return;
    }
    enqueue(s, [grid, block, shmem, body]() {
        if (stream_state() != cudaSuccess) return; /* a faulted device runs nothing more */
        std::lock_guard<std::mutex> g(launch_mu);
        B.body = &body;
        gridDim = grid;
        blockDim = block;
        bool known = false, fibers = false;
        for (unsigned z = 0; z < grid.z; z++)
            for (unsigned y = 0; y < grid.y; y++)
                for (unsigned x = 0; x < grid.x; x++) {
                    blockIdx = dim3(x, y, z);
                    B.shared.assign(shmem ? shmem : 1, (char)0xff);
                    run_block(block, &known, &fibers);
                }
    });
}

/* ---- cuBLAS ------------------------------------------------------------------------------------ */
struct cuda_host_blas {
    cudaStream_t stream = NULL;
    void *ws = NULL;
};

cublasStatus_t cublasCreate(cublasHandle_t *h) {
    /* OpenBLAS on one thread, as the CPU backend keeps it: its idle workers would spin beside the
     * kernels, which run on this one */
    CTRGCN_BLAS_SET_THREADS(1);
    *h = new cuda_host_blas;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
    (void)h;
    return mode == CUBLAS_DEFAULT_MATH || mode == CUBLAS_TF32_TENSOR_OP_MATH ? CUBLAS_STATUS_SUCCESS
                                                                            : CUBLAS_STATUS_INVALID_VALUE;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes) {
    if (ws && !on_device(ws, bytes)) return CUBLAS_STATUS_INVALID_VALUE;
    h->ws = ws;
    return CUBLAS_STATUS_SUCCESS;
}

/* A column-major operand of rows x cols (as stored) lies in device memory. */
static bool operand(const float *p, int rows, int cols, long long ld) {
    if (rows == 0 || cols == 0) return true;
    return on_device(p, sizeof(float) * ((size_t)(cols - 1) * ld + rows));
}

static cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, long long sA, const float *B_, int ldb,
                           long long sB, const float *beta, float *C, int ldc, long long sC, int batch) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    const int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
    const int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
    if (m < 0 || n < 0 || k < 0 || batch < 0 || lda < (ar > 1 ? ar : 1) || ldb < (br > 1 ? br : 1) ||
        ldc < (m > 1 ? m : 1) || (ta != CUBLAS_OP_N && ta != CUBLAS_OP_T) || (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T))
        return CUBLAS_STATUS_INVALID_VALUE;
    for (int b = 0; b < batch; b++)
        if (!operand(A + b * sA, ar, ac, lda) || !operand(B_ + b * sB, br, bc, ldb) || !operand(C + b * sC, m, n, ldc)) {
            fprintf(stderr, "cuda_host: cuBLAS GEMM %dx%dx%d, batch item %d: an operand outside device memory\n", m, n, k,
                    b);
            return CUBLAS_STATUS_INVALID_VALUE;
        }
    const float a = *alpha, be = *beta; /* host pointer mode: read at the call */
    enqueue(h->stream, [=]() {
        if (stream_state() != cudaSuccess) return;
        for (int b = 0; b < batch; b++) {
            float *c = C + b * sC;
            if (be == 0.0f) /* cuBLAS never reads C then (it may hold NaN) */
                for (int j = 0; j < n; j++) memset(c + (size_t)j * ldc, 0, sizeof(float) * m);
            if (m && n)
                CTRGCN_SGEMM(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                             tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, a, A + b * sA, lda, B_ + b * sB,
                             ldb, be, c, ldc);
        }
    });
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B_, int ldb, const float *beta,
                           float *C, int ldc) {
    return gemm(h, ta, tb, m, n, k, alpha, A, lda, 0, B_, ldb, 0, beta, C, ldc, 0, 1);
}
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *A, int lda, long long sA,
                                         const float *B_, int ldb, long long sB, const float *beta, float *C, int ldc,
                                         long long sC, int batch) {
    return gemm(h, ta, tb, m, n, k, alpha, A, lda, sA, B_, ldb, sB, beta, C, ldc, sC, batch);
}

cublasStatus_t cublasSgemv(cublasHandle_t h, cublasOperation_t t, int m, int n, const float *alpha, const float *A,
                           int lda, const float *x, int incx, const float *beta, float *y, int incy) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (m < 0 || n < 0 || lda < (m > 1 ? m : 1) || incx <= 0 || incy <= 0 || (t != CUBLAS_OP_N && t != CUBLAS_OP_T))
        return CUBLAS_STATUS_INVALID_VALUE;
    const int xl = t == CUBLAS_OP_N ? n : m, yl = t == CUBLAS_OP_N ? m : n;
    if (!operand(A, m, n, lda) || !operand(x, 1, xl, incx) || !operand(y, 1, yl, incy)) {
        fprintf(stderr, "cuda_host: cuBLAS GEMV %dx%d: an operand outside device memory\n", m, n);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    const float a = *alpha, be = *beta;
    enqueue(h->stream, [=]() {
        if (stream_state() != cudaSuccess) return;
        for (int i = 0; i < yl; i++) {
            double acc = 0.0;
            for (int j = 0; j < xl; j++)
                acc += (double)(t == CUBLAS_OP_N ? A[(size_t)j * lda + i] : A[(size_t)i * lda + j]) * x[(size_t)j * incx];
            float *yi = y + (size_t)i * incy;
            *yi = (float)(a * acc) + (be == 0.0f ? 0.0f : be * *yi);
        }
    });
    return CUBLAS_STATUS_SUCCESS;
}

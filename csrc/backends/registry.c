/* The backends this build knows, by name. The CPU backend is linked in. The CUDA backend is a
 * separate shared library (libctrgcn_cuda.so beside the library holding this file, or the path in
 * CTRGCN_CUDA_LIB), opened the first time "cuda" is asked for and resolved through one symbol,
 * so that a build without a toolkit, or a machine without a GPU, loads and runs as before. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/cuda/cuda_module.h"
#include "core/error.h"

static const ctrgcn_backend *const registry[] = {&ctrgcn_cpu_backend};

static struct {
    pthread_once_t once;
    int built;   /* the library file exists */
    int devices; /* usable devices (0 when the library did not load) */
    const ctrgcn_backend *table;
    char why[512]; /* why "cuda" is unavailable */
} cuda = {PTHREAD_ONCE_INIT, 0, 0, NULL, ""};

/* The library's path: CTRGCN_CUDA_LIB, else beside the object holding this function. */
static int cuda_library_path(char *path, size_t cap) {
    const char *env = getenv("CTRGCN_CUDA_LIB");
    if (env && *env) return snprintf(path, cap, "%s", env) < (int)cap;
    Dl_info info;
    if (!dladdr((void *)&backend_find, &info) || !info.dli_fname) return 0;
    const char *slash = strrchr(info.dli_fname, '/');
    const int dir = slash ? (int)(slash - info.dli_fname) : 0;
    return snprintf(path, cap, "%.*s%s%s", dir, info.dli_fname, slash ? "/" : "", CTRGCN_CUDA_LIBRARY) < (int)cap;
}

static void load_cuda(void) {
    char path[4096];
    if (!cuda_library_path(path, sizeof path)) {
        snprintf(cuda.why, sizeof cuda.why, "cannot locate %s", CTRGCN_CUDA_LIBRARY);
        return;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(cuda.why, sizeof cuda.why, "this build has no CUDA backend (%.300s is absent: built without nvcc)", path);
        return;
    }
    fclose(f);
    cuda.built = 1;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(cuda.why, sizeof cuda.why, "the CUDA backend does not load: %s", dlerror());
        return;
    }
    const ctrgcn_cuda_module *m = (const ctrgcn_cuda_module *)dlsym(h, CTRGCN_CUDA_SYMBOL);
    if (!m || m->abi != CTRGCN_CUDA_ABI || m->table_size != sizeof(ctrgcn_backend)) {
        snprintf(cuda.why, sizeof cuda.why, "%.300s is from another build of ctrgcn (rebuild the package)", path);
        dlclose(h);
        return;
    }
    m->bind(ctrgcn_fail);
    char why[300] = "";
    cuda.devices = m->device_count(why, sizeof why);
    if (cuda.devices < 1) {
        cuda.devices = 0;
        snprintf(cuda.why, sizeof cuda.why, "no CUDA device available (%s)", why);
        return; /* the library stays open: its runtime may hold state */
    }
    cuda.table = m->backend;
}

void backend_cuda_info(int *built, int *devices, const char **why) {
    pthread_once(&cuda.once, load_cuda);
    if (built) *built = cuda.built;
    if (devices) *devices = cuda.devices;
    if (why) *why = cuda.why;
}

const ctrgcn_backend *backend_find(const char *name) {
    if (!name || !*name) name = "cpu";
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    if (strcmp(name, "cuda") == 0) {
        pthread_once(&cuda.once, load_cuda);
        if (cuda.table) return cuda.table;
        ctrgcn_fail(CTRGCN_ERR_STATE, "backend 'cuda' is unavailable: %s", cuda.why);
        return NULL;
    }
    ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "unknown backend '%s' (known: cpu, cuda)", name);
    return NULL;
}

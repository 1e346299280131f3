/* The one symbol the CUDA backend's shared library exports, resolved by backends/registry.c
 * when "cuda" is first asked for. Plain C: both sides include it. */
#ifndef CTRGCN_CUDA_MODULE_H
#define CTRGCN_CUDA_MODULE_H
#include <stddef.h>

#include "backends/backend.h"

/* Bumped whenever this struct or the backend table changes shape. */
#define CTRGCN_CUDA_ABI 3

typedef struct {
    int abi;
    size_t table_size; /* sizeof(ctrgcn_backend) as the library was built */
    const ctrgcn_backend *backend;
    /* Devices this process can use; 0 and a reason in why[0..cap) when none. */
    int (*device_count)(char *why, size_t cap);
    /* The core's error reporter (ctrgcn_fail), handed over at load time. */
    void (*bind)(ctrgcn_status (*fail)(ctrgcn_status, const char *, ...));
} ctrgcn_cuda_module;

/* backends/registry.c: whether the library was built (its file exists), how many devices it
 * sees, and why "cuda" is unavailable when it is. Loads the library on the first call. */
void backend_cuda_info(int *built, int *devices, const char **why);

#define CTRGCN_CUDA_SYMBOL "ctrgcn_cuda_entry"
#define CTRGCN_CUDA_LIBRARY "libctrgcn_cuda.so"

#endif

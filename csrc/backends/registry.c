/* The backends this build knows, by name. A CUDA build adds its entry here. */
#include <string.h>

#include "backends/backend.h"
#include "core/error.h"

static const ctrgcn_backend *const registry[] = {&ctrgcn_cpu_backend};

const ctrgcn_backend *backend_find(const char *name) {
    if (!name || !*name) name = "cpu";
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    ctrgcn_fail(CTRGCN_ERR_ARGUMENT, "unknown or unavailable backend '%s' (this build has: cpu)", name);
    return NULL;
}

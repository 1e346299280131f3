#include <stdarg.h>
#include <stdio.h>

#include "core/error.h"

/* Per thread, so that two models used from two threads never see each other's message. */
static _Thread_local char last_error[512];

ctrgcn_status ctrgcn_fail(ctrgcn_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

void ctrgcn_clear_error(void) { last_error[0] = '\0'; }

const char *ctrgcn_last_error(void) { return last_error; }

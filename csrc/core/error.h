/* Internal: how the core reports a failure. Every public function that can fail returns the
 * status of ctrgcn_fail(), which also records a printf-style message for ctrgcn_last_error(). */
#ifndef CTRGCN_ERROR_H
#define CTRGCN_ERROR_H
#include "ctrgcn.h"

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
ctrgcn_status ctrgcn_fail(ctrgcn_status status, const char *fmt, ...);
void ctrgcn_clear_error(void);

#endif

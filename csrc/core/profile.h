/* Op-level timing of a session, off unless asked (ctrgcn_session_profile). Every backend call of
 * the driver and the session goes through OP(), which, while the session profiles, syncs the
 * backend before and after the call (so a GPU's queued work is charged to the op that queued it)
 * and adds the wall time to the op's slot. Off, OP() costs one pointer test.
 *
 * Slots are the backend table's ops, then the memory hooks the driver calls. Eval lanes call ops
 * from several threads at once, so the slots are atomic and add thread-seconds: with lanes the
 * sum can exceed the wall time of the call. */
#ifndef CTRGCN_PROFILE_H
#define CTRGCN_PROFILE_H
#include <stdatomic.h>
#include <time.h>

#include "backends/backend.h"

enum {
#define PROF_SLOT(name, params) PROF_##name,
    CTRGCN_BACKEND_OPS(PROF_SLOT)
#undef PROF_SLOT
    PROF_zero,
    PROF_upload,
    PROF_download,
    PROF_COUNT
};

typedef struct {
    _Atomic long long ns[PROF_COUNT];
    _Atomic long calls[PROF_COUNT];
} op_profile;

extern const char *const prof_names[PROF_COUNT];

static inline long long prof_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* OP(name, args...) = s->be->name(s->ctx, args...), timed when s profiles. */
#define OP(name, ...)                                                                    \
    do {                                                                                 \
        op_profile *prof_ = s->prof;                                                     \
        long long t0_ = 0;                                                               \
        if (prof_) {                                                                     \
            s->be->sync(s->ctx);                                                         \
            t0_ = prof_now_ns();                                                         \
        }                                                                                \
        s->be->name(s->ctx, __VA_ARGS__);                                                \
        if (prof_) {                                                                     \
            s->be->sync(s->ctx);                                                         \
            atomic_fetch_add_explicit(&prof_->ns[PROF_##name], prof_now_ns() - t0_,      \
                                      memory_order_relaxed);                             \
            atomic_fetch_add_explicit(&prof_->calls[PROF_##name], 1, memory_order_relaxed); \
        }                                                                                \
    } while (0)

#endif

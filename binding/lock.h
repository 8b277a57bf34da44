/*
 * lock.h: the per-object lock of Heap and OffsetAllocator. A spin lock on one
 * atomic flag: taking it uncontended is one atomic exchange, releasing it one
 * store. It guards the core's state, and is held only inside one core call:
 * never while Python code may run (no Python call, no object made, no
 * Py_DECREF under it), so a thread holding the GIL and one without it (the C
 * API, a free-threaded build) cannot deadlock on it. Contended, it spins
 * briefly, then yields the processor.
 */
#ifndef TLSF_BINDING_LOCK_H
#define TLSF_BINDING_LOCK_H

#include "state.h"

#if defined(_MSC_VER) && !defined(__clang__)
/* MSVC's C11 atomics need /experimental:c11atomics: the Interlocked functions. */
#include <intrin.h>
#include <windows.h>
typedef struct { volatile long held; } tlsf_lock_t;
static inline int lock_try(tlsf_lock_t *l) { return _InterlockedExchange(&l->held, 1) == 0; }
static inline void tlsf_unlock(tlsf_lock_t *l) { _InterlockedExchange(&l->held, 0); }
static inline void lock_init(tlsf_lock_t *l) { l->held = 0; }
#define lock_pause() YieldProcessor()
#define lock_yield() SwitchToThread()
#else
#include <stdatomic.h>
typedef struct { atomic_flag held; } tlsf_lock_t;
static inline int lock_try(tlsf_lock_t *l)
{
    return !atomic_flag_test_and_set_explicit(&l->held, memory_order_acquire);
}
static inline void tlsf_unlock(tlsf_lock_t *l) { atomic_flag_clear_explicit(&l->held, memory_order_release); }
static inline void lock_init(tlsf_lock_t *l) { atomic_flag_clear_explicit(&l->held, memory_order_relaxed); }
#if defined(_WIN32)
#include <windows.h>
#define lock_yield() SwitchToThread()
#else
#include <sched.h>
#define lock_yield() sched_yield()
#endif
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define lock_pause() __builtin_ia32_pause()
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
#define lock_pause() __asm__ __volatile__("yield")
#else
#define lock_pause() ((void)0)
#endif
#endif

/* Contended: spin a little (the holder is inside one core call, which is
 * short), then give the processor away between tries. */
static NOINLINE MAYBE_UNUSED void lock_contended(tlsf_lock_t *l)
{
    for (unsigned spins = 0;; spins++) {
        if (spins < 100)
            lock_pause();
        else
            lock_yield();
        if (lock_try(l))
            return;
    }
}

static inline void tlsf_lock(tlsf_lock_t *l)
{
    if (UNLIKELY(!lock_try(l)))
        lock_contended(l);
}

#endif

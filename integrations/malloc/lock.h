/*
 * lock.h: the allocator's lock, one word (Linux futex; Drepper, "Futexes Are
 * Tricky", mutex 2): taking it when free is one compare-and-swap, giving it
 * back one exchange; a thread that finds it taken spins briefly, then sleeps
 * in the kernel until the holder wakes it. A pthread mutex costs about 55
 * instructions per lock and unlock pair where this costs about 15 (callgrind),
 * on every malloc and free. The futex calls leave errno as it was (free must
 * not change it; FUTEX_WAIT fails with EAGAIN when the word changed).
 *
 * States: 0 free, 1 taken, 2 taken and a thread may be sleeping on it.
 */
#ifndef TLSF_MALLOC_LOCK_H
#define TLSF_MALLOC_LOCK_H

#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef atomic_int malloc_lock_t;

#define MALLOC_LOCK_SPINS 100

static inline void malloc_lock_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void malloc_lock_wait(malloc_lock_t *l)
{
    int c;
    for (int k = 0; k < MALLOC_LOCK_SPINS; k++) {
        c = 0;
        if (atomic_load_explicit(l, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(l, &c, 1, memory_order_acquire, memory_order_relaxed))
            return;
        malloc_lock_pause();
    }
    /* Announce a sleeper (2); whoever gives the lock back then wakes one. */
    int saved = errno;
    while (atomic_exchange_explicit(l, 2, memory_order_acquire) != 0)
        syscall(SYS_futex, l, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
    errno = saved;
}

static void malloc_lock_wake(malloc_lock_t *l)
{
    int saved = errno;
    syscall(SYS_futex, l, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    errno = saved;
}

static inline void malloc_lock(malloc_lock_t *l)
{
    int c = 0;
    if (!atomic_compare_exchange_strong_explicit(l, &c, 1, memory_order_acquire, memory_order_relaxed))
        malloc_lock_wait(l);
}

static inline void malloc_unlock(malloc_lock_t *l)
{
    if (atomic_exchange_explicit(l, 0, memory_order_release) == 2)
        malloc_lock_wake(l);
}

#endif /* TLSF_MALLOC_LOCK_H */

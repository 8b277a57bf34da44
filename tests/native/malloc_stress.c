/*
 * malloc_stress.c: libtlsf_malloc (integrations/malloc) under 8 threads.
 *
 * Each thread runs random operations on its own table of slots: malloc,
 * calloc (checked all zero), realloc (contents kept), posix_memalign /
 * aligned_alloc / memalign / valloc (alignment checked), free; every block is
 * stamped over its whole length with a pattern of (thread, serial) and
 * checked before it is freed or resized, and malloc_usable_size must cover
 * the request. One block in eight goes through a shared exchange to be freed
 * by another thread. Halfway, thread 0 forks: the child (one thread, the
 * others' blocks still stamped in its copy) checks and frees every block of
 * thread 0's table, runs a short stress of its own and exits 0 only if all
 * went well. Any mismatch prints and exits 1.
 *
 * Two builds (tests/native/Makefile):
 *   malloc_stress       calls malloc & co and runs with libtlsf_malloc.so
 *                       preloaded (it checks that malloc is the library's);
 *   malloc_stress_tsan  ThreadSanitizer keeps malloc for itself, so the
 *                       library is compiled in with -DTLSF_MALLOC_PREFIX=tm_
 *                       and called by those names.
 *
 *   malloc_stress [OPS_PER_THREAD] [SEED]
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef TLSF_MALLOC_PREFIX
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define M(f) CAT(TLSF_MALLOC_PREFIX, f)
void *M(malloc)(size_t);
void M(free)(void *);
void *M(calloc)(size_t, size_t);
void *M(realloc)(void *, size_t);
int M(posix_memalign)(void **, size_t, size_t);
void *M(aligned_alloc)(size_t, size_t);
void *M(memalign)(size_t, size_t);
void *M(valloc)(size_t);
size_t M(malloc_usable_size)(void *);
#else
#define M(f) f
#endif

#define THREADS 8
#define SLOTS 512
#define EXCHANGE 256

typedef struct {
    uint8_t *p;
    size_t size;
    uint32_t stamp;
} slot_t;

static struct {
    pthread_mutex_t lock;
    slot_t q[EXCHANGE];
    unsigned n;
} xchg = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint64_t ops_per_thread = 200000, seed0 = 0x5EED;
static int forked; /* in the child: one thread, and the exchange's lock may be held by a thread it lost */

static void fail(const char *what, unsigned tid, size_t size)
{
    fprintf(stderr, "malloc_stress: thread %u: %s (size %zu)\n", tid, what, size);
    fflush(stderr);
    _exit(1);
}

static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Log-uniform 1 B .. 64 KiB, and now and then up to 2 MiB. */
static size_t random_size(uint64_t *s)
{
    unsigned bits = (unsigned)(next(s) % (next(s) % 64 ? 17 : 22));
    return 1 + (size_t)(next(s) & (((uint64_t)1 << bits) - 1));
}

static void stamp(slot_t *b)
{
    for (size_t k = 0; k < b->size; k++)
        b->p[k] = (uint8_t)(b->stamp + k * 7);
}

static void check(const slot_t *b, size_t n, unsigned tid)
{
    for (size_t k = 0; k < n; k++)
        if (b->p[k] != (uint8_t)(b->stamp + k * 7))
            fail("a block's contents changed", tid, b->size);
}

static int run_op(slot_t *slots, unsigned nslots, uint64_t *s, unsigned tid, uint32_t serial)
{
    slot_t *b = &slots[next(s) % nslots];
    unsigned pick = (unsigned)(next(s) % 16);
    if (b->p) {
        check(b, b->size, tid);
        if (pick < 4) { /* realloc: the old contents are kept */
            size_t n = random_size(s), keep = n < b->size ? n : b->size;
            uint8_t *q = M(realloc)(b->p, n);
            if (!q)
                fail("realloc returned NULL", tid, n);
            b->p = q;
            check(b, keep, tid);
            b->size = n;
            b->stamp = serial;
            stamp(b);
            return 0;
        }
        if (pick < 6 && !forked) { /* to another thread */
            pthread_mutex_lock(&xchg.lock);
            if (xchg.n < EXCHANGE) {
                xchg.q[xchg.n++] = *b;
                b->p = NULL;
            }
            pthread_mutex_unlock(&xchg.lock);
            if (!b->p)
                return 0;
        }
        errno = 4321; /* free never changes errno (POSIX.1-2024), even when it waits for a lock */
        M(free)(b->p);
        if (errno != 4321)
            fail("free changed errno", tid, b->size);
        b->p = NULL;
        return 0;
    }
    size_t n = random_size(s), align = 0;
    void *p = NULL;
    switch (pick) {
    case 0: case 1: case 2: case 3: case 4: case 5: case 6:
        p = M(malloc)(n);
        break;
    case 7: case 8: {
        size_t each = 1 + n / 8;
        p = M(calloc)(8, each);
        n = 8 * each;
        if (p)
            for (size_t k = 0; k < n; k++)
                if (((uint8_t *)p)[k])
                    fail("calloc memory is not zero", tid, n);
        break;
    }
    case 9: case 10:
        align = (size_t)8 << (next(s) % 10);
        if (M(posix_memalign)(&p, align, n))
            p = NULL;
        break;
    case 11: case 12:
        align = (size_t)16 << (next(s) % 8);
        p = M(aligned_alloc)(align, n);
        break;
    case 13: case 14:
        align = (size_t)1 << (next(s) % 21); /* up to 1 MiB: addresses, not only offsets */
        p = M(memalign)(align, n);
        break;
    default:
        align = (size_t)sysconf(_SC_PAGESIZE);
        p = M(valloc)(n);
    }
    if (!p)
        fail("an allocation returned NULL", tid, n);
    if (align && (uintptr_t)p % align)
        fail("an allocation is not aligned", tid, n);
    if (M(malloc_usable_size)(p) < n)
        fail("malloc_usable_size is less than the request", tid, n);
    *b = (slot_t){p, n, serial};
    stamp(b);
    return 0;
}

/* Frees what other threads handed over (after checking it). */
static void take_exchanged(unsigned tid)
{
    slot_t got[EXCHANGE];
    unsigned n;
    pthread_mutex_lock(&xchg.lock);
    n = xchg.n;
    memcpy(got, xchg.q, n * sizeof *got);
    xchg.n = 0;
    pthread_mutex_unlock(&xchg.lock);
    for (unsigned k = 0; k < n; k++) {
        check(&got[k], got[k].size, tid);
        M(free)(got[k].p);
    }
}

static void fork_check(slot_t *slots, uint64_t *s)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        fail("fork failed", 0, 0);
    if (pid == 0) {
        forked = 1;
        /* the child: its copy of thread 0's blocks, then a stress of its own */
        for (unsigned k = 0; k < SLOTS; k++)
            if (slots[k].p) {
                check(&slots[k], slots[k].size, 100);
                M(free)(slots[k].p);
                slots[k].p = NULL;
            }
        for (uint32_t i = 0; i < 20000; i++)
            run_op(slots, SLOTS, s, 100, 0x80000000u + i);
        for (unsigned k = 0; k < SLOTS; k++)
            if (slots[k].p) {
                check(&slots[k], slots[k].size, 100);
                M(free)(slots[k].p);
            }
        _exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
        fail("the forked child failed", 0, 0);
}

static void *worker(void *arg)
{
    unsigned tid = (unsigned)(uintptr_t)arg;
    uint64_t s = seed0 * 1000003u + tid;
    slot_t *slots = M(calloc)(SLOTS, sizeof *slots);
    if (!slots)
        fail("calloc of the table", tid, 0);
    for (uint64_t i = 0; i < ops_per_thread; i++) {
        run_op(slots, SLOTS, &s, tid, (uint32_t)(tid << 24 | (i & 0xFFFFFF)));
        if (i % 64 == 0)
            take_exchanged(tid);
        if (tid == 0 && i == ops_per_thread / 2)
            fork_check(slots, &s);
    }
    for (unsigned k = 0; k < SLOTS; k++)
        if (slots[k].p) {
            check(&slots[k], slots[k].size, tid);
            M(free)(slots[k].p);
        }
    M(free)(slots);
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t th[THREADS];
    if (argc > 1)
        ops_per_thread = strtoull(argv[1], NULL, 0);
    if (argc > 2)
        seed0 = strtoull(argv[2], NULL, 0);
#ifndef TLSF_MALLOC_PREFIX
    Dl_info info;
    if (!dladdr((void *)malloc, &info) || !info.dli_fname || !strstr(info.dli_fname, "libtlsf_malloc")) {
        fprintf(stderr, "malloc_stress: malloc is not libtlsf_malloc's (%s): preload it\n",
                info.dli_fname ? info.dli_fname : "?");
        return 2;
    }
#endif
    for (unsigned t = 0; t < THREADS; t++)
        if (pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t))
            fail("pthread_create", t, 0);
    for (unsigned t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    take_exchanged(0);
    printf("malloc_stress: %u threads x %llu operations, a fork, all blocks intact\n", THREADS,
           (unsigned long long)ops_per_thread);
    return 0;
}

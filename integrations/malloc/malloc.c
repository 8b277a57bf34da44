/*
 * malloc.c: libtlsf_malloc, the C core as the allocator of a whole program
 * (rlsf's GlobalTlsf with its malloc override): LD_PRELOAD it, or link it,
 * and malloc, free, calloc, realloc and the aligned allocators of C (and
 * C++'s new and delete, which call them) are a tlsf heap's.
 *
 * The heaps: eight arenas, each a tlsf_flex heap with its own lock (lock.h);
 * a thread is given one on its first call and keeps it, and a block goes
 * back to the arena whose address range holds it. Each arena is one
 * reservation of address space (1 TiB, halved until the system grants it;
 * aligned to its size, see make_heap), grown in place as the program needs
 * (tlsf_flex.c: amortised O(1), one system call per growth); a free that
 * leaves at least the trim threshold of whole free pages gives the freed
 * block's pages back (the threshold rises as glibc's does, see discard),
 * and malloc_trim() gives back every whole free page.
 *
 * What is checked: free and realloc of a pointer that is not a live
 * allocation (never handed out, freed already, or inside a block) is found
 * by the core's live bitmap every time; it prints "free(): invalid pointer"
 * (or realloc's) and aborts, as glibc does, or with TLSF_MALLOC_CHECK=0 is
 * ignored. A heap found corrupt (a scribbled header) always aborts. Sizes
 * that overflow (calloc, reallocarray, pvalloc) give NULL and ENOMEM, never a
 * short block.
 *
 * Safe to call at any time: the heap is made by the first call (from the
 * dynamic loader, before any constructor has run; nothing here allocates,
 * so nothing recurses), and the environment is read by this library's
 * constructor. fork: every lock is taken around it (pthread_atfork), so the
 * child's heaps are consistent and usable.
 *
 * Environment (read at start-up): TLSF_MALLOC_CHECK=0, TLSF_MALLOC_STATS=1
 * (statistics on stderr at exit), TLSF_MALLOC_TRIM=BYTES|off (a fixed trim
 * threshold), TLSF_TRACE=FILE
 * (the allocation trace, trace.h: the process whose pid is TLSF_TRACE_PID
 * writes FILE, every other one FILE.<pid>).
 *
 * Built with -DTLSF_MALLOC_PREFIX=p, every exported name gets the prefix p
 * (p_malloc, ...) and replaces nothing: the native stress test calls those
 * under ThreadSanitizer, which keeps malloc for itself.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "platform/os_memory.h"
#include "tlsf.h"
#include "tlsf_flex.h"
#include "lock.h"
#include "trace.h"

#define EXPORT __attribute__((visibility("default")))
#ifdef TLSF_MALLOC_PREFIX
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define NAME(f) CAT(TLSF_MALLOC_PREFIX, f)
#else
#define NAME(f) f
#endif

#ifndef RESERVE_MAX /* ThreadSanitizer's builds ask for less: its shadow covers less */
#define RESERVE_MAX ((uint64_t)1 << 40) /* address space asked for first, per arena */
#endif
#define RESERVE_MIN ((uint64_t)1 << 28) /* halved down to this */
#define ARENAS 8                          /* heaps, each with its own lock */
#define TRIM_DEFAULT ((uint64_t)1 << 20)  /* the trim threshold to start with */
#define TRIM_RISE_MAX ((uint64_t)64 << 20) /* how far giving pages back raises it */
#define SL_LEN TLSF_SL_LEN_DEFAULT
#define PATH_MAX_TRACE 4096
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* One heap of the allocator. Threads are spread over the arenas (a thread
 * keeps the one it was given); a block is freed by the arena whose address
 * range holds it, whichever thread frees it. */
typedef struct {
    malloc_lock_t lock;
    atomic_int ready;       /* flex is made: base and capacity may be read without the lock */
    tlsf_flex_t flex;
    uint64_t capacity;
    /* Arena bytes at offsets >= dirty have never been written (they read as
     * zero): the mark is past every block ever handed out, past the header
     * and links (TLSF_MIN_BLOCK bytes) the core writes at the start of the
     * block after it, and past every pool the heap grew from (its sentinel,
     * then the free block's header and links; see extend). calloc zeroes
     * only below it: memory never handed out is not touched, and stays
     * unresident. */
    uint64_t dirty;
    uint64_t n_malloc, n_free, n_realloc;
    uint32_t *trace_ids;    /* its id table while tracing (trace.h) */
} arena_t;

static struct {
    arena_t arenas[ARENAS];
    atomic_uint next_arena; /* round robin */
    int ignore_invalid;     /* TLSF_MALLOC_CHECK=0 */
    int stats;              /* TLSF_MALLOC_STATS */
    int trim_fixed;         /* TLSF_MALLOC_TRIM was given: it does not rise */
    uint64_t trim;          /* the trim threshold new arenas start with */
    atomic_ullong allocated, peak; /* of the usable bytes of all arenas, kept when stats is on */
    char trace_file[PATH_MAX_TRACE]; /* TLSF_TRACE at start-up */
    char trace_path[PATH_MAX_TRACE]; /* what this process writes */
} g = {.trim = TRIM_DEFAULT};

static __thread arena_t *thread_arena __attribute__((tls_model("initial-exec")));

/* The discard of the arenas' sources: the pages of [p, p+n) go back. From
 * free (count = 0) it also raises the arena's trim threshold, doubling it up
 * to TRIM_RISE_MAX, as glibc raises its own when large blocks are freed: a
 * program that frees and reallocates large blocks over and over stops
 * paying page faults for them after a few rounds, and one that frees its
 * memory for good still gives back all but at most that much (malloc_trim()
 * gives back the rest). free must not change errno (POSIX.1-2024). */
static uint64_t discard(void *ctx, uint8_t *p, uint64_t n, int count)
{
    arena_t *a = ctx;
    int saved = errno;
    uint64_t r = tlsf_os_discard(p, n, count);
    errno = saved;
    /* free's discards are of arena pages and uncounted; trim's are counted,
     * or of the live bitmap's pages (below the arena) */
    if (!count && p >= a->flex.base && !g.trim_fixed && a->flex.trim_threshold < TRIM_RISE_MAX)
        a->flex.trim_threshold *= 2;
    return r;
}

/* The extend of the arenas' sources: the pool grows from old_size (the
 * memory is there already). The growth writes the old sentinel's bytes and
 * the new free block's header and links, all below old_size: the dirty mark
 * moves there. */
static int extend(void *ctx, uint64_t old_size, uint64_t new_size)
{
    arena_t *a = ctx;
    (void)new_size;
    if (old_size > a->dirty)
        a->dirty = old_size;
    return TLSF_OK;
}

/* Makes arena `a`'s heap; under its lock. 0 or ENOMEM.
 *
 * The core aligns payload offsets, so the arena starts at a multiple of its
 * capacity: every alignment a request can have (at most the capacity) is
 * then one of addresses too. The control structure lies just below it; the
 * rest of the twice-as-large reservation is given back at once. */
static int make_heap(arena_t *a)
{
    uint64_t page = tlsf_os_page_size();
    for (uint64_t cap = RESERVE_MAX; cap >= RESERVE_MIN; cap /= 2) {
        uint64_t ctl = (tlsf_control_size(cap, SL_LEN) + page - 1) & ~(page - 1), n = ctl + 2 * cap;
        void *p;
        if (tlsf_os_reserve(n, &p))
            continue;
        uintptr_t start = (uintptr_t)p, base = (start + ctl + cap - 1) & ~(uintptr_t)(cap - 1);
        tlsf_os_unreserve(p, base - ctl - start);
        tlsf_os_unreserve((void *)(base + cap), start + n - base - cap);
        tlsf_t *t = (tlsf_t *)(base - ctl);
        tlsf_flex_source_t src = {extend, discard, a, page};
        tlsf_init_zeroed(t, cap, SL_LEN);
        tlsf_flex_init(&a->flex, t, (uint8_t *)base, &src, g.trim);
        a->capacity = cap;
        a->dirty = TLSF_MIN_BLOCK; /* the first pool's free block, at offset 0 */
        if (trace_on)
            trace_table(cap, &a->trace_ids);
        atomic_store_explicit(&a->ready, 1, memory_order_release);
        return 0;
    }
    return ENOMEM;
}

/* ------------------------------------------------------------- reporting */

static void say(const char *s)
{
    (void)!write(2, s, strlen(s));
}

static void say_hex(uintptr_t v)
{
    char buf[2 + 16 + 1], *c = buf + sizeof buf;
    *--c = 0;
    do
        *--c = "0123456789abcdef"[v & 15];
    while (v >>= 4);
    *--c = 'x';
    *--c = '0';
    say(c);
}

static _Noreturn void corrupt(void)
{
    say("tlsf_malloc: heap corruption detected (a block header was overwritten)\n");
    abort();
}

/* `call` got a pointer that is not a live allocation. */
static void invalid(const char *call, const void *p)
{
    if (g.ignore_invalid)
        return;
    say(call);
    say("(): invalid pointer (tlsf_malloc: ");
    say_hex((uintptr_t)p);
    say(" is not a live allocation)\n");
    abort();
}

/* ------------------------------------------------------------ the arenas */

/* The calling thread's arena, given on its first call (round robin). */
static inline arena_t *my_arena(void)
{
    arena_t *a = thread_arena;
    if (UNLIKELY(!a))
        a = thread_arena = &g.arenas[atomic_fetch_add_explicit(&g.next_arena, 1, memory_order_relaxed) % ARENAS];
    return a;
}

static inline uint64_t offset_in(const arena_t *a, const void *p)
{
    return (uint64_t)((uintptr_t)p - (uintptr_t)a->flex.base);
}

/* The arena whose range holds p, or NULL: each arena's base and capacity are
 * fixed once it is ready. */
static inline arena_t *owner(const void *p)
{
    for (arena_t *a = g.arenas; a < g.arenas + ARENAS; a++)
        if (atomic_load_explicit(&a->ready, memory_order_acquire) && offset_in(a, p) < a->capacity)
            return a;
    return NULL;
}

/* With statistics on: the usable bytes of live block `off` allocated (+) or
 * freed (-), and the peak (an invalid offset counts 0). */
static void count(const arena_t *a, uint64_t off, int sign)
{
    uint64_t n = 0, now, peak;
    (void)tlsf_usable_size(a->flex.t, a->flex.base, off, &n);
    if (sign < 0) {
        atomic_fetch_sub(&g.allocated, n);
        return;
    }
    now = atomic_fetch_add(&g.allocated, n) + n;
    peak = atomic_load(&g.peak);
    while (now > peak && !atomic_compare_exchange_weak(&g.peak, &peak, now))
        ;
}

/* Block `off` of `size` requested bytes may be written from now on. Returns
 * the dirty mark before the block (after any growth of this call: extend). */
static uint64_t written(arena_t *a, uint64_t off, uint64_t size)
{
    uint64_t clean = a->dirty, usable;
    /* A block's usable size is its request rounded up to 16, plus less than
     * TLSF_MIN_BLOCK that was not worth splitting off; the next block's
     * header and links take TLSF_MIN_BLOCK more. Only a block that may end
     * near or past the mark needs its exact size. */
    if (off + size + 4 * TLSF_MIN_BLOCK > a->dirty && !tlsf_usable_size(a->flex.t, a->flex.base, off, &usable) &&
        off + usable + TLSF_MIN_BLOCK > a->dirty)
        a->dirty = off + usable + TLSF_MIN_BLOCK;
    return clean;
}

/* An allocation from the calling thread's arena, or, when it cannot serve
 * it (full, or no address space left to make it), from another ready arena;
 * *clean = that arena's dirty mark before the block (an offset from *base,
 * the arena's). NULL with errno = ENOMEM when none can. */
static void *take(uint64_t size, uint64_t align, uint64_t *clean, uint8_t **base)
{
    arena_t *mine = my_arena(), *a = mine, *next = g.arenas;
    uint64_t off = 0;
    for (;;) {
        malloc_lock(&a->lock);
        int rc = atomic_load_explicit(&a->ready, memory_order_relaxed) || !make_heap(a)
                     ? tlsf_flex_alloc(&a->flex, size, align, &off)
                     : TLSF_ENOMEM;
        if (!rc) {
            *clean = written(a, off, size);
            a->n_malloc++;
            if (trace_on)
                trace_alloc(a->trace_ids, off, size, align);
            if (g.stats)
                count(a, off, 1);
        }
        malloc_unlock(&a->lock);
        if (!rc)
            break;
        if (rc == TLSF_ECORRUPT)
            corrupt();
        while (next < g.arenas + ARENAS &&
               (next == mine || !atomic_load_explicit(&next->ready, memory_order_acquire)))
            next++;
        if (next == g.arenas + ARENAS) {
            errno = ENOMEM;
            return NULL;
        }
        a = next++;
    }
    *base = a->flex.base;
    return *base + off;
}

/* ------------------------------------------------------------ the calls */

static void *allocate(size_t size, size_t align)
{
    uint64_t clean;
    uint8_t *base;
    return take(size, align, &clean, &base);
}

EXPORT void *NAME(malloc)(size_t size)
{
    return allocate(size, 1);
}

EXPORT void NAME(free)(void *p)
{
    arena_t *a;
    int rc = TLSF_EINVAL;
    if (!p)
        return;
    if ((a = owner(p))) {
        uint64_t off = offset_in(a, p);
        malloc_lock(&a->lock);
        if (g.stats)
            count(a, off, -1);
        rc = tlsf_flex_free(&a->flex, off);
        if (!rc) {
            a->n_free++;
            if (trace_on)
                trace_free(a->trace_ids, off);
        }
        malloc_unlock(&a->lock);
    }
    if (rc == TLSF_ECORRUPT)
        corrupt();
    if (rc)
        invalid("free", p);
}

EXPORT void *NAME(calloc)(size_t n, size_t size)
{
    size_t total;
    uint64_t clean;
    uint8_t *base, *p;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    if ((p = take(total, 1, &clean, &base))) {
        uint64_t off = (uint64_t)(p - base);
        if (off < clean)
            memset(p, 0, clean - off < total ? clean - off : total);
    }
    return p;
}

EXPORT void *NAME(realloc)(void *p, size_t size)
{
    arena_t *a;
    uint64_t out = 0;
    int rc = TLSF_EINVAL;
    if (!p)
        return NAME(malloc)(size);
    if (!size) { /* as glibc: frees, and returns NULL */
        NAME(free)(p);
        return NULL;
    }
    /* The block stays in its arena, whichever thread resizes it. */
    if ((a = owner(p))) {
        uint64_t off = offset_in(a, p);
        malloc_lock(&a->lock);
        if (g.stats)
            count(a, off, -1);
        rc = tlsf_flex_realloc(&a->flex, off, size, &out);
        if (!rc) {
            (void)written(a, out, size);
            a->n_realloc++;
            if (trace_on)
                trace_realloc(a->trace_ids, off, out, size);
        }
        if (g.stats)
            count(a, rc ? off : out, 1);
        malloc_unlock(&a->lock);
    }
    switch (rc) {
    case TLSF_OK:
        return a->flex.base + out;
    case TLSF_ECORRUPT:
        corrupt();
    case TLSF_EINVAL:
        invalid("realloc", p);
        errno = EINVAL;
        return NULL;
    default:
        errno = ENOMEM;
        return NULL;
    }
}

EXPORT void *NAME(reallocarray)(void *p, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return NAME(realloc)(p, total);
}

static int power_of_two(size_t a)
{
    return a && !(a & (a - 1));
}

EXPORT int NAME(posix_memalign)(void **out, size_t align, size_t size)
{
    if (!power_of_two(align) || align % sizeof(void *))
        return EINVAL;
    int saved = errno;
    void *p = allocate(size, align);
    errno = saved; /* the result is the error: errno is left alone */
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

EXPORT void *NAME(aligned_alloc)(size_t align, size_t size)
{
    if (!power_of_two(align)) {
        errno = EINVAL;
        return NULL;
    }
    return allocate(size, align);
}

EXPORT void *NAME(memalign)(size_t align, size_t size)
{
    size_t a = 1;
    while (a < align) { /* as glibc: any other alignment is rounded up to a power of two */
        if (a > SIZE_MAX / 2) {
            errno = EINVAL;
            return NULL;
        }
        a <<= 1;
    }
    return allocate(size, a);
}

EXPORT void *NAME(valloc)(size_t size)
{
    return allocate(size, (size_t)tlsf_os_page_size());
}

EXPORT void *NAME(pvalloc)(size_t size)
{
    size_t page = (size_t)tlsf_os_page_size();
    if (size > SIZE_MAX - page) {
        errno = ENOMEM;
        return NULL;
    }
    return allocate(size ? (size + page - 1) & ~(page - 1) : page, page);
}

EXPORT size_t NAME(malloc_usable_size)(void *p)
{
    arena_t *a = p ? owner(p) : NULL;
    uint64_t n = 0;
    if (!a)
        return 0;
    malloc_lock(&a->lock);
    if (tlsf_usable_size(a->flex.t, a->flex.base, offset_in(a, p), &n))
        n = 0;
    malloc_unlock(&a->lock);
    return (size_t)n;
}

EXPORT int NAME(malloc_trim)(size_t pad)
{
    uint64_t released = 0, r;
    int rc = TLSF_OK;
    (void)pad; /* every whole free page goes back; the pools keep their sizes */
    for (arena_t *a = g.arenas; a < g.arenas + ARENAS && rc != TLSF_ECORRUPT; a++) {
        if (!atomic_load_explicit(&a->ready, memory_order_acquire))
            continue;
        malloc_lock(&a->lock);
        rc = tlsf_flex_trim(&a->flex, &r);
        released += r;
        malloc_unlock(&a->lock);
    }
    if (rc == TLSF_ECORRUPT)
        corrupt();
    return released > 0;
}

/* The heap's figures, summed over the arenas (each taken under its lock). */
typedef struct {
    tlsf_stats_t s;
    uint64_t pool, peak, n_malloc, n_free, n_realloc;
    unsigned arenas;
} figures_t;

static figures_t figures(void)
{
    figures_t f;
    memset(&f, 0, sizeof f);
    for (arena_t *a = g.arenas; a < g.arenas + ARENAS; a++) {
        tlsf_stats_t s;
        if (!atomic_load_explicit(&a->ready, memory_order_acquire))
            continue;
        malloc_lock(&a->lock);
        if (!tlsf_stats(a->flex.t, a->flex.base, &s)) {
            f.s.allocated_bytes += s.allocated_bytes;
            f.s.free_bytes += s.free_bytes;
            f.s.allocations += s.allocations;
            f.s.free_blocks += s.free_blocks;
            f.s.largest_free = s.largest_free > f.s.largest_free ? s.largest_free : f.s.largest_free;
        }
        f.pool += a->flex.size;
        f.n_malloc += a->n_malloc;
        f.n_free += a->n_free;
        f.n_realloc += a->n_realloc;
        f.arenas++;
        malloc_unlock(&a->lock);
    }
    f.peak = atomic_load(&g.peak);
    f.peak = f.peak > f.s.allocated_bytes ? f.peak : f.s.allocated_bytes;
    return f;
}

#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
EXPORT struct mallinfo2 NAME(mallinfo2)(void)
{
    figures_t f = figures();
    struct mallinfo2 m;
    memset(&m, 0, sizeof m);
    m.arena = f.pool;
    m.ordblks = f.s.free_blocks;
    m.uordblks = f.s.allocated_bytes;
    m.fordblks = f.s.free_bytes;
    m.usmblks = f.peak;
    return m;
}
#endif

#ifdef __GLIBC__
EXPORT struct mallinfo NAME(mallinfo)(void)
{
    figures_t f = figures();
    struct mallinfo m;
    memset(&m, 0, sizeof m);
    m.arena = (int)f.pool;
    m.ordblks = (int)f.s.free_blocks;
    m.uordblks = (int)f.s.allocated_bytes;
    m.fordblks = (int)f.s.free_bytes;
    m.usmblks = (int)f.peak;
    return m;
}
#endif

/* The statistics, on stderr (glibc's snprintf allocates for none of these formats). */
EXPORT void NAME(malloc_stats)(void)
{
    figures_t f = figures();
    char buf[1024];
    double frag = f.s.free_bytes ? 1.0 - (double)f.s.largest_free / (double)f.s.free_bytes : 0.0;
    int n = snprintf(buf, sizeof buf,
                     "tlsf_malloc statistics (pid %ld)\n"
                     "  heap (pools) size     %llu bytes in %u arena(s)\n"
                     "  allocated now         %llu bytes in %llu blocks\n"
                     "  peak allocated        %llu bytes%s\n"
                     "  free                  %llu bytes in %llu blocks, largest %llu\n"
                     "  fragmentation         %.3f (1 - largest free / free)\n"
                     "  operations            %llu (malloc %llu, free %llu, realloc %llu)\n",
                     (long)getpid(), (unsigned long long)f.pool, f.arenas, (unsigned long long)f.s.allocated_bytes,
                     (unsigned long long)f.s.allocations, (unsigned long long)f.peak,
                     g.stats ? "" : " (tracked with TLSF_MALLOC_STATS=1)", (unsigned long long)f.s.free_bytes,
                     (unsigned long long)f.s.free_blocks, (unsigned long long)f.s.largest_free, frag,
                     (unsigned long long)(f.n_malloc + f.n_free + f.n_realloc), (unsigned long long)f.n_malloc,
                     (unsigned long long)f.n_free, (unsigned long long)f.n_realloc);
    if (n > 0)
        (void)!write(2, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

#ifndef TLSF_MALLOC_PREFIX
/* glibc's own names for them, which a few programs call directly. */
EXPORT void *__libc_malloc(size_t) __attribute__((alias("malloc"), copy(malloc)));
EXPORT void __libc_free(void *) __attribute__((alias("free"), copy(free)));
EXPORT void *__libc_calloc(size_t, size_t) __attribute__((alias("calloc"), copy(calloc)));
EXPORT void *__libc_realloc(void *, size_t) __attribute__((alias("realloc"), copy(realloc)));
EXPORT void *__libc_memalign(size_t, size_t) __attribute__((alias("memalign"), copy(memalign)));
#endif

/* -------------------------------------------------------- process life */

/* FILE for the process whose pid is TLSF_TRACE_PID, else FILE.<pid>. */
static void trace_name(const char *file, int top)
{
    int n = snprintf(g.trace_path, sizeof g.trace_path, top ? "%s" : "%s.%ld", file, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof g.trace_path)
        g.trace_path[0] = 0;
}

/* Every arena's lock, then the trace's, in that order (as the calls take them). */
static void before_fork(void)
{
    for (arena_t *a = g.arenas; a < g.arenas + ARENAS; a++)
        malloc_lock(&a->lock);
    trace_lock();
}

static void after_fork_parent(void)
{
    trace_unlock();
    for (arena_t *a = g.arenas + ARENAS; a-- > g.arenas;)
        malloc_unlock(&a->lock);
}

static void after_fork_child(void)
{
    int traced = trace_on;
    for (arena_t *a = g.arenas; a < g.arenas + ARENAS; a++)
        atomic_store(&a->lock, 0); /* the child's only thread holds them, and no one waits */
    if (traced) {
        trace_name(g.trace_file, 0);
        trace_forked(g.trace_path);
        for (arena_t *a = g.arenas; a < g.arenas + ARENAS; a++)
            if (atomic_load(&a->ready)) {
                trace_clear(a->trace_ids, a->capacity);
                trace_live(a->trace_ids, a->flex.t, a->flex.base);
            }
    } else
        trace_unlock();
}

static int env_on(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

__attribute__((constructor)) static void start(void)
{
    const char *v;
    arena_t *first = my_arena();
    if ((v = getenv("TLSF_MALLOC_CHECK")) && !strcmp(v, "0"))
        g.ignore_invalid = 1;
    g.stats = env_on("TLSF_MALLOC_STATS");
    if ((v = getenv("TLSF_MALLOC_TRIM")) && *v) { /* a number of bytes, or off; else ignored */
        char *end;
        unsigned long long t = strtoull(v, &end, 10);
        if (!strcmp(v, "off") || (v[0] >= '0' && v[0] <= '9' && !*end)) {
            g.trim = !strcmp(v, "off") ? TLSF_FLEX_TRIM_OFF : (uint64_t)t;
            g.trim_fixed = 1;
        } else
            say("tlsf_malloc: TLSF_MALLOC_TRIM is neither a number of bytes nor off: ignored\n");
    }
    /* Only the start-up thread has run: its arena is the only one made. */
    malloc_lock(&first->lock);
    if (first->ready || !make_heap(first)) {
        first->flex.trim_threshold = g.trim;
        tlsf_stats_t now;
        if (g.stats && !tlsf_stats(first->flex.t, first->flex.base, &now)) { /* what the loader allocated */
            atomic_store(&g.allocated, now.allocated_bytes);
            atomic_store(&g.peak, now.allocated_bytes);
        }
        if ((v = getenv("TLSF_TRACE")) && *v) {
            const char *pid = getenv("TLSF_TRACE_PID");
            snprintf(g.trace_file, sizeof g.trace_file, "%s", v);
            trace_name(v, pid && strtol(pid, NULL, 10) == (long)getpid());
            if (!g.trace_path[0] || strlen(v) >= sizeof g.trace_file || trace_start(g.trace_path))
                say("tlsf_malloc: cannot open the trace file; nothing is traced\n");
            else {
                trace_table(first->capacity, &first->trace_ids);
                trace_live(first->trace_ids, first->flex.t, first->flex.base);
            }
        }
    }
    malloc_unlock(&first->lock);
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

__attribute__((destructor)) static void finish(void)
{
    trace_stop();
    if (g.stats)
        NAME(malloc_stats)();
}

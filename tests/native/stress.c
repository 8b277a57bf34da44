/*
 * tests/native/stress.c: randomized stress test of the C core (csrc/tlsf.c),
 * in the style of mimalloc's test-stress. Plain C11.
 *
 *   stress [SEED [OPS]]      defaults: SEED 0x7f4a7c15, OPS 10000000
 *
 * A deterministic splitmix64 stream drives OPS operations, shared between
 * several heap configurations (second-level list counts 1, 2, 4, 32 and 64; a
 * pool inserted at an unaligned offset; pools grown with
 * tlsf_append_free_block partway through; a second pool, later grown up to
 * the first one). Each configuration has a few thousand slots; an operation
 * picks a slot at random and
 *   - if it is empty: allocates (sizes skewed small, a few large ones;
 *     alignment 1..16, or up to 2^20 for an aligned allocation), now and then
 *     several at once with tlsf_alloc_many;
 *   - if it is live: frees it (then checks that a double free is refused),
 *     reallocs it (grow, shrink, to 0, any size), queries usable_size (and
 *     checks that interior offsets are refused), or frees several at once
 *     with tlsf_free_many (now and then with a bad offset, which must free
 *     nothing).
 * Every block is stamped over its whole requested size with a pattern derived
 * from its slot and a counter; the stamp is verified at free, after realloc
 * (the first min(old, new) bytes), on failed operations, and at the end.
 * Offsets must be aligned, inside a pool, and usable_size >= requested.
 * ENOMEM must agree with tlsf_stats().largest_free. Every 2^k operations (about
 * 1000 times in the run) and at the end of each configuration: tlsf_check, a
 * tlsf_walk compared block by block with the slots, and the statistics. At
 * the end everything is freed and each pool must be one free block again.
 *
 * Any failure prints a message and exits with status 1. Built by the Makefile
 * beside this file with AddressSanitizer, UBSan and -DTLSF_POISON (the core
 * poisons free blocks and headers, so a stamp one byte too long is reported).
 */
#include "tlsf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NIL TLSF_NIL
#define KiB ((uint64_t)1 << 10)
#define MiB ((uint64_t)1 << 20)
#define MAX_POOLS 8
#define BATCH 8

/* ------------------------------------------------------------------ PRNG */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rng;
static uint64_t rnd(void) { return splitmix64(&rng); }
static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }
static uint64_t between(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); } /* inclusive */

/* ----------------------------------------------------------------- state */

typedef struct {
    uint64_t off;   /* payload offset, NIL when the slot is empty */
    uint64_t size;  /* requested size */
    uint64_t align; /* requested alignment */
    uint64_t key;   /* stamp key */
} slot_t;

typedef struct {
    uint64_t start, end; /* [start, end): first block .. end of the sentinel */
} pool_t;

typedef enum { EV_INSERT, EV_APPEND } ev_kind;

typedef struct {
    unsigned permille; /* when, in thousandths of the configuration's operations */
    ev_kind kind;
    int pool;          /* EV_APPEND: which pool (index in address order) grows */
    uint64_t off;      /* EV_INSERT: where */
    uint64_t size;     /* bytes offered; UP_TO_NEXT: up to the next pool or the arena's end */
} event_t;

#define UP_TO_NEXT UINT64_MAX

typedef struct {
    const char *name;
    unsigned sl_len;
    uint64_t capacity;
    size_t nslots;
    uint64_t large_max; /* largest request */
    unsigned weight;    /* share of the operations */
    int nev;
    event_t ev[6];
} scenario_t;

static struct {
    const scenario_t *sc;
    tlsf_t *t;
    uint8_t *base;
    uint64_t cap;
    pool_t pools[MAX_POOLS];
    int npools;
    slot_t *slots;
    size_t nslots, nlive;
    uint64_t op;          /* operations done, all configurations */
    uint64_t check_mask;  /* full check when (op & check_mask) == 0 */
    uint64_t counter;     /* stamp keys */
} H;

static struct {
    uint64_t alloc, alloc_enomem, free, realloc, realloc_moved, realloc_enomem, usable, batch_alloc,
        batch_enomem, batch_free, refused, checks, events;
} N;

static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "stress: FAIL [%s, op %" PRIu64 "]: ", H.sc ? H.sc->name : "-", H.op);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nstress: 1 failure\n");
    exit(1);
}

#define EXPECT_RC(call, want)                                                                  \
    do {                                                                                       \
        int rc_ = (call);                                                                      \
        if (rc_ != (want))                                                                     \
            die("%s returned %d (%s), expected %d (%s) [line %d]", #call, rc_,                 \
                tlsf_strerror(rc_), (int)(want), tlsf_strerror(want), __LINE__);               \
    } while (0)

/* ---------------------------------------------------------------- stamps */

static uint64_t new_key(size_t slot)
{
    uint64_t x = ((uint64_t)slot << 40) ^ ++H.counter;
    return splitmix64(&x);
}

/* Byte i of the stamp with key k is byte (i % 8) (little-endian) of word i / 8. */
static inline uint64_t stamp_word(uint64_t key, uint64_t i) { return key ^ ((i >> 3) * 0xD6E8FEB86659FD93ull); }
static inline uint8_t stamp_byte(uint64_t key, uint64_t i) { return (uint8_t)(stamp_word(key, i) >> (8 * (i & 7))); }

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define WORDWISE 1
#else
#define WORDWISE 0
#endif

static void stamp(uint64_t off, uint64_t n, uint64_t key)
{
    uint8_t *p = H.base + off;
    uint64_t i = 0;
    if (WORDWISE)
        for (; i + 8 <= n; i += 8) {
            uint64_t w = stamp_word(key, i);
            memcpy(p + i, &w, 8);
        }
    for (; i < n; i++)
        p[i] = stamp_byte(key, i);
}

static void verify(size_t slot, uint64_t off, uint64_t n, uint64_t key, const char *when)
{
    const uint8_t *p = H.base + off;
    uint64_t i = 0;
    if (WORDWISE)
        for (; i + 8 <= n; i += 8) {
            uint64_t w = stamp_word(key, i);
            if (memcmp(p + i, &w, 8))
                break;
        }
    for (; i < n; i++)
        if (p[i] != stamp_byte(key, i))
            die("%s: slot %zu, block at offset %" PRIu64 " (%" PRIu64 " bytes checked): byte %" PRIu64
                " is 0x%02x, expected 0x%02x: contents lost",
                when, slot, off, n, i, p[i], stamp_byte(key, i));
}

/* --------------------------------------------------------------- helpers */

static uint64_t rand_size(void)
{
    uint64_t r = below(1000), lm = H.sc->large_max;
    if (r < 700)
        return below(129);
    if (r < 930)
        return between(129, 1024);
    if (r < 990)
        return between(1025, 16 * KiB);
    if (r < 999)
        return between(16 * KiB, lm / 4);
    return between(lm / 4, lm);
}

static uint64_t rand_align(void)
{
    uint64_t r = below(100);
    if (r < 50)
        return (uint64_t)1 << below(5);        /* 1 .. 16 */
    if (r < 85)
        return (uint64_t)1 << between(5, 12);  /* 32 .. 4 KiB */
    if (r < 97)
        return (uint64_t)1 << between(13, 16); /* 8 KiB .. 64 KiB */
    return (uint64_t)1 << between(17, 20);     /* 128 KiB .. 1 MiB */
}

static uint64_t round_up16(uint64_t x) { return (x + 15) & ~(uint64_t)15; }
static uint64_t round_down16(uint64_t x) { return x & ~(uint64_t)15; }

static tlsf_stats_t stats(void)
{
    tlsf_stats_t st;
    EXPECT_RC(tlsf_stats(H.t, H.base, &st), TLSF_OK);
    return st;
}

static void same_stats(const tlsf_stats_t *a, const char *what)
{
    tlsf_stats_t b = stats();
    if (memcmp(a, &b, sizeof b))
        die("%s changed the heap: allocations %" PRIu64 " -> %" PRIu64 ", allocated_bytes %" PRIu64
            " -> %" PRIu64 ", free_bytes %" PRIu64 " -> %" PRIu64 ", free_blocks %" PRIu64 " -> %" PRIu64,
            what, a->allocations, b.allocations, a->allocated_bytes, b.allocated_bytes, a->free_bytes,
            b.free_bytes, a->free_blocks, b.free_blocks);
}

/* Slot i holds a live block: aligned, inside a pool, usable_size >= requested. */
static void check_slot(size_t i, const char *when)
{
    const slot_t *s = &H.slots[i];
    uint64_t usable = 0;
    if (s->off % TLSF_GRANULARITY || s->off % s->align)
        die("%s: slot %zu at offset %" PRIu64 " is not aligned to %" PRIu64 " (nor 16)", when, i, s->off,
            s->align);
    EXPECT_RC(tlsf_usable_size(H.t, H.base, s->off, &usable), TLSF_OK);
    if (usable < s->size)
        die("%s: slot %zu at %" PRIu64 ": usable_size %" PRIu64 " < requested %" PRIu64, when, i, s->off,
            usable, s->size);
    for (int p = 0; p < H.npools; p++)
        if (s->off >= H.pools[p].start + TLSF_HEADER_SIZE &&
            s->off + usable <= H.pools[p].end - TLSF_SENTINEL_SIZE)
            return;
    die("%s: slot %zu: block [%" PRIu64 ", %" PRIu64 ") is not inside a pool (arena %" PRIu64 " bytes)", when,
        i, s->off - TLSF_HEADER_SIZE, s->off + usable, H.cap);
}

/* ------------------------------------------------------------ full check */

typedef struct {
    uint64_t *payload, *usable;
    size_t used, free_blocks, cap;
    uint64_t covered[MAX_POOLS], free_in_pool[MAX_POOLS];
} walk_ctx;

static int walker(uint64_t b, uint64_t size, int used, void *vctx)
{
    walk_ctx *w = vctx;
    int p;
    for (p = 0; p < H.npools; p++)
        if (b >= H.pools[p].start && b + size <= H.pools[p].end - TLSF_SENTINEL_SIZE)
            break;
    if (p == H.npools)
        die("walk: block [%" PRIu64 ", %" PRIu64 ") is not inside a pool", b, b + size);
    w->covered[p] += size;
    if (used) {
        if (w->used == w->cap)
            die("walk: more used blocks than live slots (%zu)", H.nlive);
        w->payload[w->used] = b + TLSF_HEADER_SIZE;
        w->usable[w->used++] = size - TLSF_HEADER_SIZE;
    } else {
        w->free_blocks++;
        w->free_in_pool[p]++;
    }
    return 0;
}

static int cmp_slot_off(const void *a, const void *b)
{
    uint64_t x = H.slots[*(const size_t *)a].off, y = H.slots[*(const size_t *)b].off;
    return x < y ? -1 : x > y;
}

static void full_check(const char *when)
{
    char msg[256];
    int rc = tlsf_check(H.t, H.base, msg, sizeof msg);
    N.checks++;
    if (rc)
        die("%s: tlsf_check: %s (%s, bad offset %" PRIu64 ")", when, msg, tlsf_strerror(rc),
            tlsf_bad_offset(H.t));

    /* the walk, block by block, against the slots */
    size_t *live = malloc((H.nlive + 1) * sizeof *live), n = 0;
    walk_ctx w;
    memset(&w, 0, sizeof w);
    w.cap = H.nlive;
    w.payload = malloc((H.nlive + 1) * sizeof *w.payload);
    w.usable = malloc((H.nlive + 1) * sizeof *w.usable);
    if (!live || !w.payload || !w.usable)
        die("out of memory (test harness)");
    for (size_t i = 0; i < H.nslots; i++)
        if (H.slots[i].off != NIL)
            live[n++] = i;
    if (n != H.nlive)
        die("harness: %zu live slots counted, %zu recorded", n, H.nlive);
    qsort(live, n, sizeof *live, cmp_slot_off);
    EXPECT_RC(tlsf_walk(H.t, H.base, walker, &w), TLSF_OK);
    if (w.used != n)
        die("%s: walk found %zu used blocks, %zu slots are live", when, w.used, n);
    uint64_t used_bytes = 0, free_bytes = 0;
    for (size_t k = 0; k < n; k++) {
        const slot_t *s = &H.slots[live[k]];
        if (w.payload[k] != s->off)
            die("%s: used block #%zu of the walk is at %" PRIu64 ", the slot in that place holds %" PRIu64,
                when, k, w.payload[k], s->off);
        if (w.usable[k] < s->size)
            die("%s: used block at %" PRIu64 " has %" PRIu64 " usable bytes, %" PRIu64 " were requested", when,
                s->off, w.usable[k], s->size);
        used_bytes += w.usable[k];
    }
    for (int p = 0; p < H.npools; p++) {
        uint64_t span = H.pools[p].end - H.pools[p].start - TLSF_SENTINEL_SIZE;
        if (w.covered[p] != span)
            die("%s: the blocks of pool [%" PRIu64 ", %" PRIu64 ") cover %" PRIu64 " bytes, not %" PRIu64, when,
                H.pools[p].start, H.pools[p].end, w.covered[p], span);
        free_bytes += span;
    }
    free_bytes -= used_bytes + n * TLSF_HEADER_SIZE;
    tlsf_stats_t st = stats();
    if (st.allocations != n || st.allocated_bytes != used_bytes || st.free_blocks != w.free_blocks ||
        st.free_bytes != free_bytes)
        die("%s: tlsf_stats: allocations %" PRIu64 " (walk %zu), allocated_bytes %" PRIu64 " (walk %" PRIu64
            "), free_blocks %" PRIu64 " (walk %zu), free_bytes %" PRIu64 " (walk %" PRIu64 ")",
            when, st.allocations, n, st.allocated_bytes, used_bytes, st.free_blocks, w.free_blocks,
            st.free_bytes, free_bytes);
    free(live);
    free(w.payload);
    free(w.usable);
}

/* ----------------------------------------------------------- operations */

static void place(size_t i, uint64_t off, uint64_t size, uint64_t align, const char *when)
{
    slot_t *s = &H.slots[i];
    s->off = off;
    s->size = size;
    s->align = align;
    s->key = new_key(i);
    H.nlive++;
    check_slot(i, when);
    stamp(off, size, s->key);
}

static void on_enomem(uint64_t size, uint64_t align, const char *what)
{
    tlsf_stats_t st = stats();
    if (align <= TLSF_GRANULARITY && st.largest_free && size <= st.largest_free)
        die("%s(%" PRIu64 ", align %" PRIu64 ") failed with ENOMEM, but largest_free is %" PRIu64, what, size,
            align, st.largest_free);
    if (st.largest_free && !below(8)) { /* and alloc(largest_free) does succeed */
        uint64_t q;
        EXPECT_RC(tlsf_alloc(H.t, H.base, st.largest_free, 1, &q), TLSF_OK);
        EXPECT_RC(tlsf_free(H.t, H.base, q), TLSF_OK);
    }
}

static void op_alloc(size_t i, int aligned)
{
    uint64_t size = rand_size(), align = aligned ? rand_align() : (uint64_t)1 << below(5), off = NIL;
    int rc = tlsf_alloc(H.t, H.base, size, align, &off);
    N.alloc++;
    if (rc == TLSF_ENOMEM) {
        N.alloc_enomem++;
        on_enomem(size, align, "alloc");
        return;
    }
    if (rc)
        die("alloc(%" PRIu64 ", align %" PRIu64 "): %s", size, align, tlsf_strerror(rc));
    place(i, off, size, align, "alloc");
}

static void refuse_free(uint64_t off, const char *what)
{
    tlsf_stats_t before = stats();
    uint64_t u;
    EXPECT_RC(tlsf_free(H.t, H.base, off), TLSF_EINVAL);
    EXPECT_RC(tlsf_usable_size(H.t, H.base, off, &u), TLSF_EINVAL);
    EXPECT_RC(tlsf_realloc(H.t, H.base, off, 64, &u), TLSF_EINVAL);
    same_stats(&before, what);
    N.refused++;
}

static void op_free(size_t i)
{
    slot_t *s = &H.slots[i];
    verify(i, s->off, s->size, s->key, "before free");
    EXPECT_RC(tlsf_free(H.t, H.base, s->off), TLSF_OK);
    N.free++;
    if (!below(16))
        refuse_free(s->off, "a double free");
    s->off = NIL;
    H.nlive--;
}

static uint64_t realloc_size(uint64_t old)
{
    uint64_t r = below(10);
    if (r == 0)
        return 0;
    if (r <= 3)
        return old + rand_size();
    if (r <= 6)
        return below(old + 1);
    return rand_size();
}

static void op_realloc(size_t i)
{
    slot_t *s = &H.slots[i];
    uint64_t size = realloc_size(s->size), q = NIL;
    int rc = tlsf_realloc(H.t, H.base, s->off, size, &q);
    N.realloc++;
    if (rc == TLSF_ENOMEM) {
        N.realloc_enomem++;
        check_slot(i, "failed realloc");
        verify(i, s->off, s->size, s->key, "after a failed realloc");
        return;
    }
    if (rc)
        die("realloc(%" PRIu64 ", %" PRIu64 "): %s", s->off, size, tlsf_strerror(rc));
    N.realloc_moved += q != s->off;
    uint64_t keep = s->size < size ? s->size : size, old_key = s->key;
    s->off = q;
    s->size = size;
    check_slot(i, "realloc"); /* the alignment of the original allocation is kept */
    verify(i, q, keep, old_key, "after realloc");
    s->key = new_key(i);
    stamp(q, size, s->key);
}

static void op_usable(size_t i)
{
    slot_t *s = &H.slots[i];
    uint64_t usable;
    N.usable++;
    check_slot(i, "usable_size");
    verify(i, s->off, s->size, s->key, "usable_size");
    EXPECT_RC(tlsf_usable_size(H.t, H.base, s->off, &usable), TLSF_OK);
    /* interior offsets and the header are never live allocations */
    refuse_free(s->off + TLSF_GRANULARITY * between(1, usable / TLSF_GRANULARITY), "freeing an interior offset");
    refuse_free(s->off - TLSF_HEADER_SIZE, "freeing a header offset");
    if (!below(4))
        refuse_free(H.cap + below(3) * TLSF_GRANULARITY, "freeing an offset past the arena");
    if (!below(4)) /* the last granules of the arena (too close to its end for a block) */
        refuse_free(round_down16(H.cap - 1) - TLSF_GRANULARITY * below(2), "freeing an offset at the arena's end");
}

/* Up to BATCH slots among the next 2*BATCH from i that are empty (want_live 0) or live. */
static size_t pick(size_t i, int want_live, size_t *out)
{
    size_t n = 0;
    for (size_t k = 0; k < 2 * BATCH && n < BATCH; k++) {
        size_t j = (i + k) % H.nslots;
        if ((H.slots[j].off != NIL) == want_live)
            out[n++] = j;
    }
    return n;
}

static void op_alloc_many(size_t i)
{
    size_t idx[BATCH], n = pick(i, 0, idx), failed = SIZE_MAX;
    uint64_t sizes[BATCH], offs[BATCH], align = (uint64_t)1 << below(9);
    for (size_t k = 0; k < n; k++)
        sizes[k] = rand_size();
    tlsf_stats_t before = stats();
    int rc = tlsf_alloc_many(H.t, H.base, sizes, n, align, offs, &failed);
    N.batch_alloc++;
    if (rc == TLSF_ENOMEM) {
        N.batch_enomem++;
        if (failed >= n)
            die("alloc_many failed with ENOMEM at index %zu of %zu", failed, n);
        tlsf_stats_t after = stats();
        if (after.allocations != before.allocations || after.allocated_bytes != before.allocated_bytes ||
            after.free_bytes != before.free_bytes)
            die("a failed alloc_many left allocations behind (%" PRIu64 " -> %" PRIu64 ")", before.allocations,
                after.allocations);
        return;
    }
    if (rc)
        die("alloc_many: %s", tlsf_strerror(rc));
    for (size_t k = 0; k < n; k++)
        place(idx[k], offs[k], sizes[k], align, "alloc_many");
}

static void op_free_many(size_t i)
{
    size_t idx[BATCH], n = pick(i, 1, idx), bad = SIZE_MAX;
    uint64_t offs[BATCH + 1];
    for (size_t k = 0; k < n; k++) {
        slot_t *s = &H.slots[idx[k]];
        verify(idx[k], s->off, s->size, s->key, "before free_many");
        offs[k] = s->off;
    }
    N.batch_free++;
    if (n && !below(4)) { /* a duplicate or an interior offset: nothing may be freed */
        tlsf_stats_t before = stats();
        offs[n] = below(2) ? offs[below(n)] : offs[below(n)] + TLSF_GRANULARITY;
        EXPECT_RC(tlsf_free_many(H.t, H.base, offs, n + 1, &bad), TLSF_EINVAL);
        if (bad != n)
            die("free_many: bad index %zu, expected %zu", bad, n);
        same_stats(&before, "a refused free_many");
        N.refused++;
        return;
    }
    EXPECT_RC(tlsf_free_many(H.t, H.base, offs, n, &bad), TLSF_OK);
    for (size_t k = 0; k < n; k++)
        H.slots[idx[k]].off = NIL;
    H.nlive -= n;
}

/* ----------------------------------------------------------------- pools */

static int cmp_pool(const void *a, const void *b)
{
    uint64_t x = ((const pool_t *)a)->start, y = ((const pool_t *)b)->start;
    return x < y ? -1 : x > y;
}

static void event(const event_t *e)
{
    uint64_t taken = NIL;
    N.events++;
    if (e->kind == EV_INSERT) {
        uint64_t start = round_up16(e->off), end = round_down16(e->off + e->size);
        EXPECT_RC(tlsf_insert_free_block(H.t, H.base, e->off, e->size, &taken), TLSF_OK);
        if (taken != end - e->off)
            die("insert_free_block(%" PRIu64 ", %" PRIu64 "): taken %" PRIu64 ", expected %" PRIu64, e->off,
                e->size, taken, end - e->off);
        if (H.npools == MAX_POOLS)
            die("harness: too many pools");
        H.pools[H.npools].start = start;
        H.pools[H.npools++].end = end;
        qsort(H.pools, (size_t)H.npools, sizeof *H.pools, cmp_pool);
    } else {
        pool_t *p = &H.pools[e->pool];
        uint64_t limit = e->pool + 1 < H.npools ? H.pools[e->pool + 1].start : H.cap;
        uint64_t size = e->size == UP_TO_NEXT ? limit - p->end : e->size;
        uint64_t add = round_down16(size);
        EXPECT_RC(tlsf_append_free_block(H.t, H.base, p->end, size, &taken), TLSF_OK);
        if (taken != (add < TLSF_MIN_BLOCK ? 0 : add))
            die("append_free_block(%" PRIu64 ", %" PRIu64 "): taken %" PRIu64, p->end, size, taken);
        p->end += taken;
    }
    /* refused: a range overlapping a pool, appending where no pool ends, ranges past the arena */
    tlsf_stats_t before = stats();
    const pool_t *p = &H.pools[below((uint64_t)H.npools)];
    EXPECT_RC(tlsf_insert_free_block(H.t, H.base, p->start + 16 * below(4), 4 * KiB, &taken), TLSF_ERANGE);
    EXPECT_RC(tlsf_insert_free_block(H.t, H.base, p->end - 48, 4 * KiB, &taken), TLSF_ERANGE);
    EXPECT_RC(tlsf_append_free_block(H.t, H.base, p->end - 16, 4 * KiB, &taken), TLSF_ERANGE);
    EXPECT_RC(tlsf_append_free_block(H.t, H.base, p->end + 16, 4 * KiB, &taken), TLSF_ERANGE);
    EXPECT_RC(tlsf_insert_free_block(H.t, H.base, H.cap - 64, 65, &taken), TLSF_ERANGE);
    EXPECT_RC(tlsf_append_free_block(H.t, H.base, H.cap + 16, 0, &taken), TLSF_ERANGE);
    same_stats(&before, "a refused pool operation");
    full_check("after a pool event");
}

/* ------------------------------------------------------------- scenarios */

static const scenario_t scenarios[] = {
    {"sl32, one pool", 32, 4 * MiB, 3000, 512 * KiB, 3, 1,
     {{0, EV_INSERT, 0, 0, 4 * MiB}}},
    {"sl1, pool at an unaligned offset", 1, 4 * MiB, 3000, 512 * KiB, 2, 1,
     {{0, EV_INSERT, 0, 12345, 4 * MiB - 12345 - 7}}},
    {"sl4, pool grown by append", 4, 5 * MiB + 100, 3000, 512 * KiB, 2, 5,
     {{0, EV_INSERT, 0, 0, 1 * MiB},
      {250, EV_APPEND, 0, 0, 1 * MiB - 5},
      {500, EV_APPEND, 0, 0, 20}, /* too small: takes nothing */
      {500, EV_APPEND, 0, 0, 1 * MiB + 24},
      {750, EV_APPEND, 0, 0, UP_TO_NEXT}}},
    {"sl64, two pools", 64, 6 * MiB, 4000, 512 * KiB, 2, 4,
     {{0, EV_INSERT, 0, 0, 2 * MiB + 3},
      {333, EV_INSERT, 0, 3 * MiB + 9, 3 * MiB / 2},
      {666, EV_APPEND, 1, 0, 1 * MiB},
      {800, EV_APPEND, 0, 0, UP_TO_NEXT}}}, /* up to the second pool: adjacent pools */
    /* capacity 8 bytes over a multiple of 1 KiB: the last granule starts a new bitmap word */
    {"sl2, small crowded heap", 2, 768 * KiB + 8, 1500, 96 * KiB, 1, 1,
     {{0, EV_INSERT, 0, 16, 768 * KiB - 16}}},
};
#define NSCEN (sizeof scenarios / sizeof *scenarios)

static void run(const scenario_t *sc, uint64_t ops)
{
    memset(&H.pools, 0, sizeof H.pools);
    H.sc = sc;
    H.cap = sc->capacity;
    H.npools = 0;
    H.nslots = sc->nslots;
    H.nlive = 0;
    size_t csize = tlsf_control_size(sc->capacity, sc->sl_len);
    if (!csize)
        die("tlsf_control_size(%" PRIu64 ", %u) is 0", sc->capacity, sc->sl_len);
    H.t = malloc(csize);
    H.base = malloc(sc->capacity);
    H.slots = malloc(sc->nslots * sizeof *H.slots);
    if (!H.t || !H.base || !H.slots)
        die("out of memory (test harness)");
    memset(H.base, 0xA5, sc->capacity);
    for (size_t i = 0; i < H.nslots; i++)
        H.slots[i].off = NIL;
    EXPECT_RC(tlsf_init(H.t, sc->capacity, sc->sl_len), TLSF_OK);
    if (tlsf_sl_len(H.t) != sc->sl_len || tlsf_capacity(H.t) != sc->capacity)
        die("tlsf_sl_len/tlsf_capacity disagree with tlsf_init");

    int ev = 0;
    for (uint64_t k = 0; k < ops; k++) {
        while (ev < sc->nev && k >= ops / 1000 * sc->ev[ev].permille)
            event(&sc->ev[ev++]);
        size_t i = (size_t)below(H.nslots);
        uint64_t r = below(100);
        if (H.slots[i].off == NIL) {
            if (r < 3)
                op_alloc_many(i);
            else
                op_alloc(i, r >= 70);
        } else if (r < 45)
            op_free(i);
        else if (r < 85)
            op_realloc(i);
        else if (r < 95)
            op_usable(i);
        else
            op_free_many(i);
        H.op++;
        if (!(H.op & H.check_mask))
            full_check("periodic check");
    }
    while (ev < sc->nev)
        event(&sc->ev[ev++]);
    full_check("end of the run");

    /* free everything in a random order: each pool must be one free block again */
    size_t *order = malloc(H.nslots * sizeof *order);
    if (!order)
        die("out of memory (test harness)");
    for (size_t i = 0; i < H.nslots; i++)
        order[i] = i;
    for (size_t i = H.nslots; i > 1; i--) {
        size_t j = (size_t)below(i), x = order[i - 1];
        order[i - 1] = order[j];
        order[j] = x;
    }
    for (size_t k = 0; k < H.nslots; k++) {
        slot_t *s = &H.slots[order[k]];
        if (s->off == NIL)
            continue;
        verify(order[k], s->off, s->size, s->key, "final free");
        EXPECT_RC(tlsf_free(H.t, H.base, s->off), TLSF_OK);
        s->off = NIL;
        H.nlive--;
    }
    free(order);
    full_check("after freeing everything");
    walk_ctx w;
    memset(&w, 0, sizeof w);
    EXPECT_RC(tlsf_walk(H.t, H.base, walker, &w), TLSF_OK);
    uint64_t largest = 0, total = 0;
    for (int p = 0; p < H.npools; p++) {
        uint64_t span = H.pools[p].end - H.pools[p].start - TLSF_SENTINEL_SIZE;
        if (w.free_in_pool[p] != 1)
            die("after freeing everything, pool [%" PRIu64 ", %" PRIu64 ") has %" PRIu64
                " free blocks, not 1 (not coalesced)", H.pools[p].start, H.pools[p].end, w.free_in_pool[p]);
        largest = span > largest ? span : largest;
        total += span;
    }
    tlsf_stats_t st = stats();
    if (st.allocations || st.allocated_bytes || st.free_blocks != (uint64_t)H.npools || st.free_bytes != total ||
        st.largest_free != largest - TLSF_HEADER_SIZE)
        die("after freeing everything: allocations %" PRIu64 ", allocated_bytes %" PRIu64 ", free_blocks %" PRIu64
            " (pools %d), free_bytes %" PRIu64 " (expected %" PRIu64 "), largest_free %" PRIu64
            " (expected %" PRIu64 ")", st.allocations, st.allocated_bytes, st.free_blocks, H.npools,
            st.free_bytes, total, st.largest_free, largest - TLSF_HEADER_SIZE);
    tlsf_fini(H.t, H.base);
    free(H.slots);
    free(H.base);
    free(H.t);
}

int main(int argc, char **argv)
{
    uint64_t seed = 0x7f4a7c15, ops = 10000000;
    if (argc > 3 || (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))) {
        fprintf(stderr, "usage: %s [SEED [OPS]]   (defaults: SEED %" PRIu64 ", OPS %" PRIu64 ")\n", argv[0],
                seed, ops);
        return 2;
    }
    if (argc > 1)
        seed = strtoull(argv[1], NULL, 0);
    if (argc > 2)
        ops = strtoull(argv[2], NULL, 0);
    rng = seed;
    /* 2^k with about 1000 periodic checks in the run */
    unsigned k = 0;
    while (((uint64_t)2 << k) <= ops / 1000)
        k++;
    H.check_mask = ((uint64_t)1 << k) - 1;

    clock_t t0 = clock();
    unsigned weights = 0;
    for (size_t s = 0; s < NSCEN; s++)
        weights += scenarios[s].weight;
    uint64_t done = 0;
    for (size_t s = 0; s < NSCEN; s++) {
        uint64_t n = s + 1 == NSCEN ? ops - done : ops / weights * scenarios[s].weight;
        uint64_t checks = N.checks;
        clock_t t1 = clock();
        run(&scenarios[s], n);
        done += n;
        printf("stress: %-34s sl_len %2u, %4" PRIu64 " KiB, %8" PRIu64 " ops, %4" PRIu64 " checks, %6.1f s\n",
               scenarios[s].name, scenarios[s].sl_len, scenarios[s].capacity / KiB, n, N.checks - checks,
               (double)(clock() - t1) / CLOCKS_PER_SEC);
        fflush(stdout);
    }
    printf("stress: alloc %" PRIu64 " (ENOMEM %" PRIu64 "), free %" PRIu64 ", realloc %" PRIu64 " (moved %" PRIu64
           ", ENOMEM %" PRIu64 "), usable_size %" PRIu64 ", alloc_many %" PRIu64 " (ENOMEM %" PRIu64
           "), free_many %" PRIu64 ", refused as invalid %" PRIu64 ", pool events %" PRIu64 "\n",
           N.alloc, N.alloc_enomem, N.free, N.realloc, N.realloc_moved, N.realloc_enomem, N.usable,
           N.batch_alloc, N.batch_enomem, N.batch_free, N.refused, N.events);
    printf("stress: seed %#" PRIx64 ", %" PRIu64 " ops, failures 0, checks %" PRIu64 ", %.1f s\n", seed, ops,
           N.checks, (double)(clock() - t0) / CLOCKS_PER_SEC);
    return 0;
}

/*
 * fuzz/fuzz_tlsf.c: libFuzzer target for the C core (csrc/tlsf.c).
 *
 * An input is a little program over one small heap:
 *
 *   byte 0      sl_len = 2^(b % 7)                      (1 .. 64)
 *   bytes 1-2   capacity = u16 (little-endian), 0 means 65536
 *   byte 3      offset of the first pool (0 .. 255, any alignment)
 *   bytes 4-5   size offered to the first pool (u16, clamped to the arena)
 *   then ops    op = (b & 0x7f) % 13, operands from the bytes that follow:
 *               alloc (twice as likely), free the k-th live allocation (twice),
 *               realloc, usable_size, an invalid offset given to free, realloc
 *               or usable_size, append_free_block, insert_free_block,
 *               scribble, alloc_many, free_many (maybe with a bad offset),
 *               alloc(largest_free). b & 0x80 = "paranoid": also compare a
 *               full copy of the arena and the control structure around an
 *               operation that must not change the heap (ENOMEM, EALIGN,
 *               ERANGE, taken 0; EINVAL is always compared).
 *               fuzz/seeds.py writes the seeds in corpus/ and shows the layout.
 *
 * The target keeps a model: the pools (where each starts and ends), the live
 * allocations (offset, requested size, alignment, usable size) and a shadow
 * copy of the bytes each payload must hold. Every allocation is stamped; the
 * stamp is verified at free, after realloc (the bytes kept) and at the end.
 * Inconsistencies abort(): a result code other than the model's, overlapping
 * live blocks, a block outside its pools, misalignment, usable < requested,
 * lost contents, a heap changed by a refused operation, statistics that
 * disagree with the model (checked after every operation), a tlsf_check
 * failure (after each of the first 32 operations, every 8th after that, and
 * at the end of the input), a tlsf_walk different from the model (at the
 * end). Then everything is freed and each pool must be one free block again.
 *
 * "scribble" writes arbitrary bytes into a live payload only (up to its
 * usable size), never into headers: corrupt-heap inputs are tested elsewhere.
 *
 * Built with -DTLSF_POISON, so ASan also flags a payload access past the
 * usable size. See the Makefile beside this file.
 */
#include "tlsf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NIL TLSF_NIL
#define MAX_CAP 65536u
#define MAX_LIVE (MAX_CAP / TLSF_MIN_BLOCK + 8)
#define MAX_POOLS (MAX_CAP / TLSF_MIN_POOL + 8)

/* ------------------------------------------------------------- failures */

static uint64_t cur_op;

#define FAIL(...)                                                                     \
    do {                                                                              \
        fprintf(stderr, "fuzz_tlsf: op %" PRIu64 ", line %d: ", cur_op, __LINE__);    \
        fprintf(stderr, __VA_ARGS__);                                                 \
        fputc('\n', stderr);                                                          \
        abort();                                                                      \
    } while (0)

#define EXPECT_RC(call, want)                                                         \
    do {                                                                              \
        int rc_ = (call);                                                             \
        if (rc_ != (want))                                                            \
            FAIL("%s returned %d (%s), expected %d", #call, rc_, tlsf_strerror(rc_), (int)(want)); \
    } while (0)

/* ---------------------------------------------------------------- input */

typedef struct {
    const uint8_t *d;
    size_t n, i;
} input_t;

static uint8_t get8(input_t *in) { return in->i < in->n ? in->d[in->i++] : 0; }
static uint16_t get16(input_t *in)
{
    uint16_t lo = get8(in);
    return (uint16_t)(lo | (uint16_t)get8(in) << 8);
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---------------------------------------------------------------- model */

typedef struct {
    uint64_t off, req, usable, align, known; /* known: leading bytes the shadow vouches for */
} live_t;

typedef struct {
    uint64_t start, end; /* first block .. end of the sentinel */
} pool_t;

static struct {
    tlsf_t *t;
    uint8_t *base, *shadow;
    uint64_t cap;
    size_t csize;
    pool_t pools[MAX_POOLS];
    size_t npools;
    live_t live[MAX_LIVE];
    size_t nlive;
    uint64_t freed[8]; /* recently freed offsets */
    uint64_t stamp_seq;
} M;

static uint64_t round_up16(uint64_t x) { return (x + 15) & ~(uint64_t)15; }
static uint64_t round_down16(uint64_t x) { return x & ~(uint64_t)15; }

static int model_is_live(uint64_t off)
{
    for (size_t k = 0; k < M.nlive; k++)
        if (M.live[k].off == off)
            return 1;
    return 0;
}

/* Copy and compare the arena while the core keeps parts of it poisoned:
 * plain loads, not checked by ASan, not traced by the fuzzer's coverage. */
#if defined(__clang__)
#define RAW __attribute__((no_sanitize("address", "coverage")))
#elif defined(__GNUC__)
#define RAW __attribute__((no_sanitize("address")))
#else
#define RAW
#endif

/* Word by word (both sides 8-byte aligned: malloc'd or static), then the tail. */
RAW static void raw_copy(uint8_t *dst, const uint8_t *src, size_t n)
{
    size_t w = n / 8;
    const volatile uint64_t *s = (const volatile uint64_t *)(const void *)src;
    uint64_t *d = (uint64_t *)(void *)dst;
    for (size_t i = 0; i < w; i++)
        d[i] = s[i];
    for (size_t i = 8 * w; i < n; i++)
        dst[i] = ((const volatile uint8_t *)src)[i];
}

RAW static size_t raw_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    size_t w = n / 8, i = 0;
    const uint64_t *x = (const uint64_t *)(const void *)a;
    const volatile uint64_t *y = (const volatile uint64_t *)(const void *)b;
    while (i < w && x[i] == y[i])
        i++;
    for (i *= 8; i < n; i++)
        if (a[i] != ((const volatile uint8_t *)b)[i])
            return i;
    return SIZE_MAX;
}

static uint64_t snap_arena_words[MAX_CAP / 8];
#define snap_arena ((uint8_t *)snap_arena_words)
static uint64_t snap_ctl[(sizeof(uint64_t) * 4096 + 8192) / 8];

static void snapshot(void)
{
    raw_copy(snap_arena, M.base, M.cap);
    raw_copy((uint8_t *)snap_ctl, (const uint8_t *)M.t, M.csize);
}

static void same_as_snapshot(const char *what)
{
    size_t at = raw_diff(snap_arena, M.base, M.cap);
    if (at != SIZE_MAX)
        FAIL("%s changed arena byte %zu", what, at);
    at = raw_diff((const uint8_t *)snap_ctl, (const uint8_t *)M.t, M.csize);
    if (at != SIZE_MAX)
        FAIL("%s changed control-structure byte %zu", what, at);
}

/* ------------------------------------------------------------- contents */

static void stamp(live_t *a, uint64_t from, uint64_t to)
{
    uint64_t key = ++M.stamp_seq * 0x2545F4914F6CDD1Dull;
    for (uint64_t i = from; i < to; i++) {
        uint8_t v = (uint8_t)((key >> (8 * (i & 7))) ^ (i >> 3));
        M.base[a->off + i] = v;
        M.shadow[a->off + i] = v;
    }
}

static void verify(const live_t *a, const char *when)
{
    for (uint64_t i = 0; i < a->known; i++)
        if (M.base[a->off + i] != M.shadow[a->off + i])
            FAIL("%s: block at %" PRIu64 ": byte %" PRIu64 " is 0x%02x, expected 0x%02x (contents lost)", when,
                 a->off, i, M.base[a->off + i], M.shadow[a->off + i]);
}

/* A new or moved block: aligned, inside a pool, no overlap with another live block. */
static void check_block(const live_t *a, size_t self, const char *when)
{
    if (a->off % TLSF_GRANULARITY || a->off % a->align)
        FAIL("%s: offset %" PRIu64 " is not aligned to %" PRIu64, when, a->off, a->align);
    uint64_t u = 0;
    EXPECT_RC(tlsf_usable_size(M.t, M.base, a->off, &u), TLSF_OK);
    if (u != a->usable || u < a->req)
        FAIL("%s: usable_size %" PRIu64 " (recorded %" PRIu64 ", requested %" PRIu64 ")", when, u, a->usable,
             a->req);
    uint64_t lo = a->off - TLSF_HEADER_SIZE, hi = a->off + a->usable;
    size_t p;
    for (p = 0; p < M.npools; p++)
        if (lo >= M.pools[p].start && hi <= M.pools[p].end - TLSF_SENTINEL_SIZE)
            break;
    if (p == M.npools)
        FAIL("%s: block [%" PRIu64 ", %" PRIu64 ") is outside every pool", when, lo, hi);
    for (size_t k = 0; k < M.nlive; k++) {
        const live_t *b = &M.live[k];
        if (k != self && lo < b->off + b->usable && b->off - TLSF_HEADER_SIZE < hi)
            FAIL("%s: block [%" PRIu64 ", %" PRIu64 ") overlaps live block [%" PRIu64 ", %" PRIu64 ")", when, lo,
                 hi, b->off - TLSF_HEADER_SIZE, b->off + b->usable);
    }
}

static void check_stats(void)
{
    tlsf_stats_t st;
    EXPECT_RC(tlsf_stats(M.t, M.base, &st), TLSF_OK);
    uint64_t bytes = 0, span = 0;
    for (size_t k = 0; k < M.nlive; k++)
        bytes += M.live[k].usable;
    for (size_t p = 0; p < M.npools; p++)
        span += M.pools[p].end - M.pools[p].start - TLSF_SENTINEL_SIZE;
    if (st.allocations != M.nlive || st.allocated_bytes != bytes ||
        st.free_bytes != span - bytes - M.nlive * TLSF_HEADER_SIZE)
        FAIL("stats: allocations %" PRIu64 " (model %zu), allocated_bytes %" PRIu64 " (model %" PRIu64
             "), free_bytes %" PRIu64 " (model %" PRIu64 ")",
             st.allocations, M.nlive, st.allocated_bytes, bytes, st.free_bytes,
             span - bytes - M.nlive * TLSF_HEADER_SIZE);
    if (st.largest_free > st.free_bytes || (st.free_blocks == 0) != (st.largest_free == 0))
        FAIL("stats: largest_free %" PRIu64 ", free_bytes %" PRIu64 ", free_blocks %" PRIu64, st.largest_free,
             st.free_bytes, st.free_blocks);
}

static void check_heap(void)
{
    char msg[256];
    int rc = tlsf_check(M.t, M.base, msg, sizeof msg);
    if (rc)
        FAIL("tlsf_check: %s (%s at %" PRIu64 ")", msg, tlsf_strerror(rc), tlsf_bad_offset(M.t));
    check_stats();
}

/* --------------------------------------------------------------- walk */

typedef struct {
    size_t used, free_in_pool[MAX_POOLS];
    uint64_t covered[MAX_POOLS];
    uint64_t *payloads;
} walk_ctx;

static int walker(uint64_t b, uint64_t size, int used, void *vctx)
{
    walk_ctx *w = vctx;
    size_t p;
    for (p = 0; p < M.npools; p++)
        if (b >= M.pools[p].start && b + size <= M.pools[p].end - TLSF_SENTINEL_SIZE)
            break;
    if (p == M.npools)
        FAIL("walk: block [%" PRIu64 ", %" PRIu64 ") outside every pool", b, b + size);
    w->covered[p] += size;
    if (used) {
        if (w->used >= M.nlive)
            FAIL("walk: more used blocks than live allocations (%zu)", M.nlive);
        w->payloads[w->used++] = b + TLSF_HEADER_SIZE;
    } else {
        w->free_in_pool[p]++;
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static walk_ctx wctx;
static uint64_t walk_payloads[MAX_LIVE], model_payloads[MAX_LIVE];

static void check_walk(void)
{
    memset(&wctx, 0, sizeof wctx);
    wctx.payloads = walk_payloads;
    EXPECT_RC(tlsf_walk(M.t, M.base, walker, &wctx), TLSF_OK);
    if (wctx.used != M.nlive)
        FAIL("walk: %zu used blocks, model has %zu", wctx.used, M.nlive);
    for (size_t k = 0; k < M.nlive; k++)
        model_payloads[k] = M.live[k].off;
    qsort(model_payloads, M.nlive, sizeof *model_payloads, cmp_u64);
    for (size_t k = 0; k < M.nlive; k++)
        if (walk_payloads[k] != model_payloads[k])
            FAIL("walk: used block #%zu at %" PRIu64 ", model %" PRIu64, k, walk_payloads[k], model_payloads[k]);
    for (size_t p = 0; p < M.npools; p++)
        if (wctx.covered[p] != M.pools[p].end - M.pools[p].start - TLSF_SENTINEL_SIZE)
            FAIL("walk: pool [%" PRIu64 ", %" PRIu64 ") covered by %" PRIu64 " bytes of blocks", M.pools[p].start,
                 M.pools[p].end, wctx.covered[p]);
}

/* ---------------------------------------------------------------- pools */

static int cmp_pool(const void *a, const void *b)
{
    uint64_t x = ((const pool_t *)a)->start, y = ((const pool_t *)b)->start;
    return x < y ? -1 : x > y;
}

static void do_insert(uint64_t off, uint64_t size, int paranoid)
{
    /* the model's answer */
    int want = TLSF_OK;
    uint64_t want_taken = 0, start = round_up16(off), end = 0;
    if (off > M.cap || size > M.cap - off)
        want = TLSF_ERANGE;
    else {
        end = round_down16(off + size);
        if (end >= start && end - start >= TLSF_MIN_POOL) {
            want_taken = end - off;
            for (size_t p = 0; p < M.npools; p++)
                if (M.pools[p].start < end && start < M.pools[p].end)
                    want = TLSF_ERANGE;
        }
    }
    int changes = want == TLSF_OK && want_taken;
    if (paranoid && !changes)
        snapshot();
    uint64_t taken = NIL;
    EXPECT_RC(tlsf_insert_free_block(M.t, M.base, off, size, &taken), want);
    if (want == TLSF_OK && taken != want_taken)
        FAIL("insert_free_block(%" PRIu64 ", %" PRIu64 "): taken %" PRIu64 ", expected %" PRIu64, off, size, taken,
             want_taken);
    if (paranoid && !changes)
        same_as_snapshot("a refused insert_free_block");
    if (changes) {
        M.pools[M.npools].start = start;
        M.pools[M.npools++].end = end;
        qsort(M.pools, M.npools, sizeof *M.pools, cmp_pool);
    }
}

static void do_append(uint64_t off, uint64_t size, int paranoid)
{
    int want = TLSF_OK;
    uint64_t add = round_down16(size), want_taken = 0;
    size_t p = M.npools;
    if (off > M.cap || size > M.cap - off)
        want = TLSF_ERANGE;
    else {
        for (p = 0; p < M.npools && M.pools[p].end != off; p++)
            ;
        if (p == M.npools)
            want = TLSF_ERANGE;
        else if (p + 1 < M.npools && M.pools[p + 1].start < off + add)
            want = TLSF_ERANGE;
        else if (add >= TLSF_MIN_BLOCK)
            want_taken = add;
    }
    int changes = want == TLSF_OK && want_taken;
    if (paranoid && !changes)
        snapshot();
    uint64_t taken = NIL;
    EXPECT_RC(tlsf_append_free_block(M.t, M.base, off, size, &taken), want);
    if (want == TLSF_OK && taken != want_taken)
        FAIL("append_free_block(%" PRIu64 ", %" PRIu64 "): taken %" PRIu64 ", expected %" PRIu64, off, size, taken,
             want_taken);
    if (paranoid && !changes)
        same_as_snapshot("a refused append_free_block");
    if (changes)
        M.pools[p].end += want_taken;
}

/* ------------------------------------------------------------ operations */

static uint64_t pick_align(uint8_t a, int *want)
{
    *want = TLSF_OK;
    switch (a % 24) {
    case 17: *want = TLSF_EALIGN; return 0;
    case 18: *want = TLSF_EALIGN; return (uint64_t)3 << (a % 7);
    case 19: *want = TLSF_EALIGN; return ((uint64_t)1 << 63) + 16;
    case 20: return (uint64_t)1 << 40;   /* beyond any capacity here: ENOMEM */
    case 21: return (uint64_t)1 << 63;
    case 22: case 23: return 16;
    default: return (uint64_t)1 << (a % 24); /* 1 .. 2^16 */
    }
}

static uint64_t pick_size(input_t *in, uint8_t sel)
{
    switch (sel & 3) {
    case 0: return get8(in);
    case 1: return get16(in);
    case 2: return (uint64_t)get8(in) * 16;
    default:
        return (sel & 4) ? UINT64_MAX - get8(in) : M.cap + get8(in); /* never fits */
    }
}

/* Result of a failed alloc of `size` aligned to `align`: consistent with largest_free. */
static void check_enomem(uint64_t size, uint64_t align)
{
    tlsf_stats_t st;
    EXPECT_RC(tlsf_stats(M.t, M.base, &st), TLSF_OK);
    if (align <= TLSF_GRANULARITY && st.largest_free && size <= st.largest_free)
        FAIL("alloc(%" PRIu64 ", %" PRIu64 ") failed, largest_free is %" PRIu64, size, align, st.largest_free);
}

static void add_live(uint64_t off, uint64_t req, uint64_t align, const char *when)
{
    live_t *a = &M.live[M.nlive];
    if (M.nlive == MAX_LIVE)
        FAIL("more live allocations than the arena can hold");
    a->off = off;
    a->req = req;
    a->align = align;
    EXPECT_RC(tlsf_usable_size(M.t, M.base, off, &a->usable), TLSF_OK);
    a->known = req;
    check_block(a, M.nlive, when);
    M.nlive++;
    stamp(a, 0, req);
}

static void op_alloc(input_t *in, uint8_t sel, int paranoid)
{
    uint64_t size = pick_size(in, sel >> 4);
    int want;
    uint64_t align = pick_align(get8(in), &want), off = NIL;
    if (paranoid)
        snapshot();
    int rc = tlsf_alloc(M.t, M.base, size, align, &off);
    if (want == TLSF_EALIGN || rc != TLSF_OK) {
        if (rc != want && !(want == TLSF_OK && rc == TLSF_ENOMEM))
            FAIL("alloc(%" PRIu64 ", %" PRIu64 "): %d (%s)", size, align, rc, tlsf_strerror(rc));
        if (rc == TLSF_ENOMEM)
            check_enomem(size, align);
        if (paranoid)
            same_as_snapshot("a failed alloc");
        return;
    }
    if (size > M.cap)
        FAIL("alloc(%" PRIu64 ") succeeded in a %" PRIu64 "-byte arena", size, M.cap);
    add_live(off, size, align, "alloc");
}

static void remove_live(size_t k)
{
    memmove(&M.freed[1], &M.freed[0], sizeof M.freed - sizeof M.freed[0]);
    M.freed[0] = M.live[k].off;
    M.live[k] = M.live[--M.nlive];
}

static void op_free(input_t *in)
{
    if (!M.nlive)
        return;
    size_t k = get8(in) % M.nlive;
    verify(&M.live[k], "before free");
    EXPECT_RC(tlsf_free(M.t, M.base, M.live[k].off), TLSF_OK);
    remove_live(k);
}

static uint8_t tmp[MAX_CAP];

static void op_realloc(input_t *in, uint8_t sel, int paranoid)
{
    if (!M.nlive)
        return;
    size_t k = get8(in) % M.nlive;
    live_t *a = &M.live[k];
    uint64_t size = pick_size(in, sel >> 4), q = NIL;
    if (paranoid)
        snapshot();
    int rc = tlsf_realloc(M.t, M.base, a->off, size, &q);
    if (rc == TLSF_ENOMEM) {
        check_enomem(size, a->align);
        if (paranoid)
            same_as_snapshot("a failed realloc");
        verify(a, "after a failed realloc");
        return;
    }
    if (rc)
        FAIL("realloc(%" PRIu64 ", %" PRIu64 "): %s", a->off, size, tlsf_strerror(rc));
    uint64_t keep = a->known < size ? a->known : size;
    memcpy(tmp, M.shadow + a->off, keep);
    a->off = q;
    a->req = size;
    EXPECT_RC(tlsf_usable_size(M.t, M.base, q, &a->usable), TLSF_OK);
    check_block(a, k, "realloc");
    for (uint64_t i = 0; i < keep; i++)
        if (M.base[q + i] != tmp[i])
            FAIL("realloc to %" PRIu64 " bytes (now at %" PRIu64 "): byte %" PRIu64 " is 0x%02x, expected 0x%02x",
                 size, q, i, M.base[q + i], tmp[i]);
    memcpy(M.shadow + q, tmp, keep);
    a->known = size;
    stamp(a, keep, size);
}

static void op_usable(input_t *in)
{
    if (!M.nlive)
        return;
    live_t *a = &M.live[get8(in) % M.nlive];
    uint64_t u = 0;
    EXPECT_RC(tlsf_usable_size(M.t, M.base, a->off, &u), TLSF_OK);
    if (u != a->usable)
        FAIL("usable_size(%" PRIu64 ") = %" PRIu64 ", was %" PRIu64, a->off, u, a->usable);
    verify(a, "usable_size");
}

/* An offset that is not a live allocation. */
static uint64_t invalid_offset(input_t *in)
{
    uint8_t m = get8(in);
    uint64_t off;
    switch (m % 7) {
    case 0: off = get16(in); break;
    case 1: off = M.nlive ? M.live[get8(in) % M.nlive].off + TLSF_GRANULARITY * (1 + get8(in) % 8) : 16; break;
    case 2: off = M.nlive ? M.live[get8(in) % M.nlive].off - TLSF_HEADER_SIZE : 0; break;
    case 3: off = M.freed[get8(in) % 8]; break;
    case 4: off = M.cap + get8(in); break;
    case 5: off = UINT64_MAX - get8(in); break;
    default: off = M.npools ? M.pools[get8(in) % M.npools].end - TLSF_SENTINEL_SIZE + TLSF_HEADER_SIZE : 0; break;
    }
    return model_is_live(off) ? UINT64_MAX : off;
}

static void op_invalid(input_t *in)
{
    uint8_t which = get8(in);
    uint64_t off = invalid_offset(in), out = 12345;
    snapshot();
    switch (which % 3) {
    case 0: EXPECT_RC(tlsf_free(M.t, M.base, off), TLSF_EINVAL); break;
    case 1: EXPECT_RC(tlsf_realloc(M.t, M.base, off, get8(in), &out), TLSF_EINVAL); break;
    default: EXPECT_RC(tlsf_usable_size(M.t, M.base, off, &out), TLSF_EINVAL); break;
    }
    same_as_snapshot("an operation on an invalid offset");
    if (out != 12345)
        FAIL("a refused operation wrote its result");
}

static void op_append(input_t *in, uint8_t sel, int paranoid)
{
    uint64_t off;
    if (M.npools && !(sel & 0x40))
        off = M.pools[get8(in) % M.npools].end;  /* the end of a pool */
    else
        off = (uint64_t)get16(in) + (sel >> 4 & 1); /* anywhere */
    do_append(off, pick_size(in, sel >> 4), paranoid);
}

static void op_insert(input_t *in, uint8_t sel, int paranoid)
{
    uint64_t off = get16(in);
    do_insert(off, pick_size(in, sel >> 4), paranoid);
}

static void op_scribble(input_t *in)
{
    if (!M.nlive)
        return;
    live_t *a = &M.live[get8(in) % M.nlive];
    if (!a->usable)
        return;
    uint64_t pos = get16(in) % a->usable, len = get16(in) % (a->usable - pos + 1);
    uint64_t s = get8(in) ^ (cur_op << 8);
    for (uint64_t i = 0; i < len; i++) {
        uint8_t v = (uint8_t)splitmix64(&s);
        M.base[a->off + pos + i] = v;
        M.shadow[a->off + pos + i] = v;
    }
    /* the bytes between `known` and the scribble are what they are: record them */
    for (uint64_t i = a->known; i < pos; i++)
        M.shadow[a->off + i] = M.base[a->off + i];
    if (pos + len > a->known)
        a->known = pos + len;
}

static void op_alloc_many(input_t *in)
{
    uint8_t b = get8(in);
    size_t n = b % 5, failed = SIZE_MAX;
    uint64_t sizes[4], offs[4], align = (uint64_t)1 << (b >> 3 & 7);
    for (size_t k = 0; k < n; k++)
        sizes[k] = (b & 0x80) ? get16(in) : get8(in);
    tlsf_stats_t before, after;
    EXPECT_RC(tlsf_stats(M.t, M.base, &before), TLSF_OK);
    int rc = tlsf_alloc_many(M.t, M.base, sizes, n, align, offs, &failed);
    if (rc == TLSF_ENOMEM) {
        if (failed >= n)
            FAIL("alloc_many: failed index %zu of %zu", failed, n);
        EXPECT_RC(tlsf_stats(M.t, M.base, &after), TLSF_OK);
        if (after.allocations != before.allocations || after.free_bytes != before.free_bytes)
            FAIL("a failed alloc_many left blocks behind");
        /* all or nothing; the free lists may be in another order, so no byte comparison */
        return;
    }
    if (rc)
        FAIL("alloc_many: %s", tlsf_strerror(rc));
    for (size_t k = 0; k < n; k++)
        add_live(offs[k], sizes[k], align, "alloc_many");
}

static void op_free_many(input_t *in)
{
    uint8_t b = get8(in);
    size_t n = M.nlive < 4 ? M.nlive : 4, bad = SIZE_MAX;
    if (b % 4 < n)
        n = b % 4;
    uint64_t offs[5];
    size_t first = M.nlive ? get8(in) % M.nlive : 0;
    for (size_t k = 0; k < n; k++) {
        const live_t *a = &M.live[(first + k) % M.nlive];
        verify(a, "before free_many");
        offs[k] = a->off;
    }
    if (b & 0x80) { /* one more offset, invalid: nothing may be freed */
        offs[n] = n && (b & 0x40) ? offs[get8(in) % n] : invalid_offset(in);
        snapshot();
        EXPECT_RC(tlsf_free_many(M.t, M.base, offs, n + 1, &bad), TLSF_EINVAL);
        if (bad != n)
            FAIL("free_many: bad index %zu, expected %zu", bad, n);
        same_as_snapshot("a refused free_many");
        return;
    }
    EXPECT_RC(tlsf_free_many(M.t, M.base, offs, n, &bad), TLSF_OK);
    for (size_t k = 0; k < n; k++)
        for (size_t j = 0; j < M.nlive; j++)
            if (M.live[j].off == offs[k]) {
                remove_live(j);
                break;
            }
}

static void op_largest(void)
{
    tlsf_stats_t st;
    EXPECT_RC(tlsf_stats(M.t, M.base, &st), TLSF_OK);
    if (!st.largest_free)
        return;
    uint64_t off = NIL;
    EXPECT_RC(tlsf_alloc(M.t, M.base, st.largest_free, 1, &off), TLSF_OK); /* "alloc(largest_free) succeeds now" */
    add_live(off, st.largest_free, 1, "alloc(largest_free)");
}

enum { OP_ALLOC, OP_ALLOC2, OP_FREE, OP_FREE2, OP_REALLOC, OP_USABLE, OP_INVALID, OP_APPEND, OP_INSERT,
       OP_SCRIBBLE, OP_ALLOC_MANY, OP_FREE_MANY, OP_LARGEST, NOPS };

/* ----------------------------------------------------------------- entry */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input_t in = {data, size, 0};
    unsigned sl_len = 1u << (get8(&in) % 7);
    uint64_t cap = get16(&in);
    if (!cap)
        cap = MAX_CAP;
    memset(&M, 0, sizeof M);
    for (size_t k = 0; k < 8; k++)
        M.freed[k] = 16 * k;
    cur_op = 0;
    M.cap = cap;
    M.csize = tlsf_control_size(cap, sl_len);
    if (!M.csize || M.csize > sizeof snap_ctl)
        FAIL("tlsf_control_size(%" PRIu64 ", %u) = %zu", cap, sl_len, M.csize);
    M.t = malloc(M.csize);
    M.base = malloc(cap); /* exactly cap bytes: ASan guards both ends */
    M.shadow = malloc(cap);
    if (!M.t || !M.base || !M.shadow)
        abort();
    memset(M.base, 0xEE, cap);
    EXPECT_RC(tlsf_init(M.t, cap, sl_len), TLSF_OK);

    uint64_t off = get8(&in), psize = get16(&in);
    if (off > cap)
        off = cap;
    if (psize > cap - off)
        psize = cap - off;
    do_insert(off, psize, 0);
    check_heap();

    while (in.i < in.n) {
        uint8_t b = get8(&in);
        int paranoid = b & 0x80;
        cur_op++;
        switch ((b & 0x7f) % NOPS) {
        case OP_ALLOC:
        case OP_ALLOC2: op_alloc(&in, get8(&in), paranoid); break;
        case OP_FREE:
        case OP_FREE2: op_free(&in); break;
        case OP_REALLOC: op_realloc(&in, get8(&in), paranoid); break;
        case OP_USABLE: op_usable(&in); break;
        case OP_INVALID: op_invalid(&in); break;
        case OP_APPEND: op_append(&in, get8(&in), paranoid); break;
        case OP_INSERT: op_insert(&in, get8(&in), paranoid); break;
        case OP_SCRIBBLE: op_scribble(&in); break;
        case OP_ALLOC_MANY: op_alloc_many(&in); break;
        case OP_FREE_MANY: op_free_many(&in); break;
        default: op_largest(); break;
        }
        /* the full check after every operation at first, then every 8th (it dominates the time) */
        if (cur_op <= 32 || !(cur_op & 7))
            check_heap();
        else
            check_stats();
    }

    /* the end: the full check, contents, the walk, then free everything */
    check_heap();
    for (size_t k = 0; k < M.nlive; k++)
        verify(&M.live[k], "end of input");
    check_walk();
    for (uint64_t step = 0; M.nlive; step++) {
        size_t k = (size_t)((step * 7919u + cur_op) % M.nlive); /* a mixed order */
        EXPECT_RC(tlsf_free(M.t, M.base, M.live[k].off), TLSF_OK);
        remove_live(k);
        check_stats();
    }
    check_heap();
    check_walk();
    for (size_t p = 0; p < M.npools; p++)
        if (wctx.free_in_pool[p] != 1)
            FAIL("after freeing everything, pool [%" PRIu64 ", %" PRIu64 ") has %zu free blocks", M.pools[p].start,
                 M.pools[p].end, wctx.free_in_pool[p]);
    tlsf_stats_t st;
    EXPECT_RC(tlsf_stats(M.t, M.base, &st), TLSF_OK);
    if (st.allocations || st.allocated_bytes || st.free_blocks != M.npools)
        FAIL("after freeing everything: %" PRIu64 " allocations, %" PRIu64 " free blocks, %zu pools",
             st.allocations, st.free_blocks, M.npools);
    tlsf_fini(M.t, M.base);
    free(M.shadow);
    free(M.base);
    free(M.t);
    return 0;
}

/*
 * tlsf_classes.h: the two-level size classes and their bitmaps, shared by
 * both engines (tlsf.c, in-band headers; tlsf_offset.c, out-of-band nodes).
 * Plain C11, header-only (static inline), no Python.
 *
 * A size s with m = floor(log2 s) falls in first level fl = m - min_log2 and
 * second level sl = the sl_log2 bits below the top bit. Class index
 * i = fl * sl_len + sl. Sizes below 2^sl_log2 get a class each (exact).
 *
 * Each function has a form taking sl_log2 (and min_log2) as arguments, the
 * _k form: an engine that calls it with constants, as tlsf.c does for the
 * default sl_len, gets every shift and mask as an immediate (what rlsf's
 * const generics give it); the plain form reads them from the structure.
 */
#ifndef TLSF_CLASSES_H
#define TLSF_CLASSES_H

#include <stdint.h>

#define TLSF_FL_MAX 64 /* first levels for any 64-bit size */

typedef struct {
    uint32_t sl_log2;   /* log2 of the second-level count */
    uint32_t min_log2;  /* log2 of the smallest size filed (16 in-band, 1 unit out-of-band) */
    uint32_t fl_count;  /* first levels in use: lists exist for fl < fl_count */
    uint32_t unused;
    uint64_t fl_bitmap; /* bit fl set <=> sl_bitmap[fl] != 0 */
    uint64_t sl_bitmap[TLSF_FL_MAX]; /* bit sl set <=> list (fl, sl) is not empty */
} tlsf_classes_t;

#if defined(__GNUC__) || defined(__clang__)
#define TLSF_LIKELY(x) __builtin_expect(!!(x), 1)
#define TLSF_UNLIKELY(x) __builtin_expect(!!(x), 0)
static inline unsigned tlsf_ctz64(uint64_t x) { return (unsigned)__builtin_ctzll(x); }
static inline unsigned tlsf_log2(uint64_t x) { return 63u ^ (unsigned)__builtin_clzll(x); } /* 63 - clz: one bsr */
static inline unsigned tlsf_popcount64(uint64_t x) { return (unsigned)__builtin_popcountll(x); }
#define TLSF_PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
/* The hot path's helpers are inlined into alloc and free (callgrind, `mixed`:
 * about 50 fewer instructions per operation); the error path is marked cold. */
#define TLSF_HOT static inline __attribute__((always_inline))
#define TLSF_COLD static __attribute__((cold))
/* A public call's uncommon cases (another sl_len or alignment), kept out of
 * the common case's function so that it needs fewer registers. */
#define TLSF_OUT_OF_LINE static __attribute__((noinline))
#else
#define TLSF_LIKELY(x) (x)
#define TLSF_UNLIKELY(x) (x)
static inline unsigned tlsf_ctz64(uint64_t x) { unsigned n = 0; while (!(x & 1)) { x >>= 1; n++; } return n; }
static inline unsigned tlsf_log2(uint64_t x) { unsigned n = 0; while (x >>= 1) n++; return n; }
static inline unsigned tlsf_popcount64(uint64_t x) { unsigned n = 0; for (; x; x &= x - 1) n++; return n; }
#define TLSF_PRINTF_LIKE(f, a)
#define TLSF_HOT static inline
#define TLSF_COLD static
#define TLSF_OUT_OF_LINE static
#endif

/* log2 of the default second-level count (32, TLSF_SL_LEN_DEFAULT). The
 * engines' public alloc and free pass it as a constant when the heap has it,
 * so that their inlined copies compute every class with immediates; any other
 * sl_len takes the same code with the heap's value, out of line
 * (TLSF_OUT_OF_LINE: the common case's function then needs fewer registers,
 * 2 instructions per operation fewer on `mixed`). */
#define TLSF_SLI_DEFAULT 5

/* f(args..., sli) with sli the constant TLSF_SLI_DEFAULT when the classes
 * cls have it (one inlined copy of f each way); sli is f's last parameter. */
#define TLSF_WITH_SLI(cls, f, ...)                                                                 \
    (TLSF_LIKELY((cls).sl_log2 == TLSF_SLI_DEFAULT) ? f(__VA_ARGS__, TLSF_SLI_DEFAULT)             \
                                                    : f(__VA_ARGS__, (cls).sl_log2))

#define TLSF_CLASS_NONE UINT64_MAX /* "no class": beyond every list */

/* Free blocks are filed by rounding down: list (fl, sl) holds sizes in
 * [2^(fl+min_log2) * (1 + sl/sl_len), next list's lower bound). size >= 2^min_log2. */
TLSF_HOT uint64_t tlsf_map_floor_k(uint64_t size, unsigned sli, unsigned min_log2)
{
    unsigned m = tlsf_log2(size);
    /* size >> (m - sli), or size << (sli - m) when m < sli: one rotation,
     * since the bits that wrap around are masked off (no branch) */
    unsigned r = (m - sli) & 63;
    uint64_t sl = ((size >> r) | (size << ((64 - r) & 63))) & (((uint64_t)1 << sli) - 1);
    return ((uint64_t)(m - min_log2) << sli) | sl;
}

/* tlsf_map_floor_k for a size of at least 2^sli: size >> (m - sli) is then
 * 2^sli + sl, so one shift and one add give the class (no rotation, mask or
 * or). The in-band engine's sizes (at least 32) are such with up to 32 lists. */
TLSF_HOT uint64_t tlsf_map_floor_large_k(uint64_t size, unsigned sli, unsigned min_log2)
{
    unsigned m = tlsf_log2(size);
    return ((uint64_t)(m - min_log2 - 1) << sli) + (size >> (m - sli));
}

static inline uint64_t tlsf_map_floor(const tlsf_classes_t *c, uint64_t size)
{
    return tlsf_map_floor_k(size, c->sl_log2, c->min_log2);
}

/* Requests are rounded up to the next list boundary, so that any block in the
 * list found is large enough ("good fit"): no list is ever scanned. A size
 * whose rounding would overflow has no class (TLSF_CLASS_NONE). */
TLSF_HOT uint64_t tlsf_map_ceil_k(uint64_t size, unsigned sli, unsigned min_log2)
{
    unsigned m = tlsf_log2(size);
    if (m > sli) {
        uint64_t round = ((uint64_t)1 << (m - sli)) - 1;
        if (size > UINT64_MAX - round)
            return TLSF_CLASS_NONE;
        size += round;
    }
    return tlsf_map_floor_k(size, sli, min_log2);
}

static inline uint64_t tlsf_map_ceil(const tlsf_classes_t *c, uint64_t size)
{
    return tlsf_map_ceil_k(size, c->sl_log2, c->min_log2);
}

/* Whether class i has lists (its first level is in use). */
TLSF_HOT int tlsf_class_exists_k(const tlsf_classes_t *c, uint64_t i, unsigned sli)
{
    return (i >> sli) < c->fl_count;
}

static inline int tlsf_class_exists(const tlsf_classes_t *c, uint64_t i)
{
    return tlsf_class_exists_k(c, i, c->sl_log2);
}

/* The first non-empty list at or above class i, or TLSF_CLASS_NONE. Bit scans only. */
TLSF_HOT uint64_t tlsf_find_suitable_k(const tlsf_classes_t *c, uint64_t i, unsigned sli)
{
    uint64_t fl = i >> sli, sl = i & (((uint64_t)1 << sli) - 1);
    if (fl >= c->fl_count)
        return TLSF_CLASS_NONE;
    uint64_t slmap = c->sl_bitmap[fl] & (~(uint64_t)0 << sl);
    if (!slmap) {
        uint64_t flmap = c->fl_bitmap & (~(uint64_t)0 << fl << 1);
        if (!flmap)
            return TLSF_CLASS_NONE;
        fl = tlsf_ctz64(flmap);
        slmap = c->sl_bitmap[fl];
    }
    return (fl << sli) | tlsf_ctz64(slmap);
}

static inline uint64_t tlsf_find_suitable(const tlsf_classes_t *c, uint64_t i)
{
    return tlsf_find_suitable_k(c, i, c->sl_log2);
}

/* The highest non-empty list, or TLSF_CLASS_NONE. */
static inline uint64_t tlsf_find_highest(const tlsf_classes_t *c)
{
    if (!c->fl_bitmap)
        return TLSF_CLASS_NONE;
    uint64_t fl = tlsf_log2(c->fl_bitmap);
    return (fl << c->sl_log2) | tlsf_log2(c->sl_bitmap[fl]);
}

/* List i became non-empty. */
TLSF_HOT void tlsf_mark_class_k(tlsf_classes_t *c, uint64_t i, unsigned sli)
{
    uint64_t fl = i >> sli;
    c->sl_bitmap[fl] |= (uint64_t)1 << (i & (((uint64_t)1 << sli) - 1));
    c->fl_bitmap |= (uint64_t)1 << fl;
}

static inline void tlsf_mark_class(tlsf_classes_t *c, uint64_t i) { tlsf_mark_class_k(c, i, c->sl_log2); }

/* List i became empty. */
TLSF_HOT void tlsf_unmark_class_k(tlsf_classes_t *c, uint64_t i, unsigned sli)
{
    uint64_t fl = i >> sli;
    c->sl_bitmap[fl] &= ~((uint64_t)1 << (i & (((uint64_t)1 << sli) - 1)));
    if (!c->sl_bitmap[fl])
        c->fl_bitmap &= ~((uint64_t)1 << fl);
}

static inline void tlsf_unmark_class(tlsf_classes_t *c, uint64_t i) { tlsf_unmark_class_k(c, i, c->sl_log2); }

/* The bitmaps agree with each other and name no list beyond fl_count; on
 * failure *bad_fl is the first level at fault. */
static inline int tlsf_check_bitmaps(const tlsf_classes_t *c, uint64_t *bad_fl)
{
    uint64_t sl_len = (uint64_t)1 << c->sl_log2;
    uint64_t allowed = sl_len == 64 ? ~(uint64_t)0 : ((uint64_t)1 << sl_len) - 1;
    for (uint64_t fl = 0; fl < TLSF_FL_MAX; fl++) {
        uint64_t slmap = c->sl_bitmap[fl];
        if (((c->fl_bitmap >> fl) & 1) != (slmap != 0) || (slmap & ~(fl < c->fl_count ? allowed : 0))) {
            *bad_fl = fl;
            return 0;
        }
    }
    return 1;
}

#endif /* TLSF_CLASSES_H */

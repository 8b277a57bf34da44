/*
 * tlsf_flex.c: a heap that grows from a source and gives pages back (see
 * tlsf_flex.h). The twin src/tlsf/pure/flex.py mirrors it function for
 * function, with the same names.
 */
#include "tlsf_flex.h"

#define FREE_HEAD 32u /* a free block's size, prev_phys, next_free, prev_free words */

static inline uint64_t round_up(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }
static inline uint64_t round_down(uint64_t x, uint64_t a) { return x & ~(a - 1); }

void tlsf_flex_init(tlsf_flex_t *f, tlsf_t *t, uint8_t *base, const tlsf_flex_source_t *src,
                    uint64_t trim_threshold)
{
    f->t = t;
    f->base = base;
    f->size = 0;
    f->trim_threshold = trim_threshold;
    f->src = *src;
}

/* The pool size after a growth by at least `gain` bytes (0: cannot). */
static uint64_t grown_size(const tlsf_flex_t *f, uint64_t gain)
{
    uint64_t old = f->size, cap = round_down(tlsf_capacity(f->t), TLSF_GRANULARITY);
    uint64_t step = old < TLSF_FLEX_GROW_MIN ? TLSF_FLEX_GROW_MIN : old > TLSF_FLEX_GROW_MAX ? TLSF_FLEX_GROW_MAX : old;
    if (gain > cap - old)
        return 0;
    uint64_t want = old + (gain > step ? gain : step);
    want = want > cap - TLSF_FLEX_GROW_UNIT ? cap : round_up(want, TLSF_FLEX_GROW_UNIT);
    return want < cap ? want : cap;
}

/* Grows the pool by at least `gain` bytes at its end: one call of extend,
 * then one tlsf_insert_free_block (the first pool) or tlsf_append_free_block. */
int tlsf_flex_grow(tlsf_flex_t *f, uint64_t gain)
{
    uint64_t old = f->size, new_size = grown_size(f, gain), taken;
    int rc;
    if (!new_size)
        return TLSF_ENOMEM;
    if (f->src.extend && (rc = f->src.extend(f->src.ctx, old, new_size)))
        return rc;
    rc = old ? tlsf_append_free_block(f->t, f->base, old, new_size - old, &taken)
             : tlsf_insert_free_block(f->t, f->base, 0, new_size, &taken);
    if (rc)
        return rc;
    f->size = old + taken;
    return TLSF_OK;
}

/* Bytes the pool must gain so that alloc(size, align) then succeeds (the
 * first pool also holds its sentinel); UINT64_MAX when nothing could. */
static uint64_t gain_for(const tlsf_flex_t *f, uint64_t size, uint64_t align)
{
    uint64_t need = tlsf_grow_need(f->t, size, align);
    return need == UINT64_MAX ? need : need + (f->size ? 0 : TLSF_SENTINEL_SIZE);
}

int tlsf_flex_alloc(tlsf_flex_t *f, uint64_t size, uint64_t align, uint64_t *out)
{
    int rc = tlsf_alloc(f->t, f->base, size, align, out);
    if (rc != TLSF_ENOMEM || tlsf_flex_grow(f, gain_for(f, size, align)))
        return rc;
    return tlsf_alloc(f->t, f->base, size, align, out);
}

int tlsf_flex_realloc(tlsf_flex_t *f, uint64_t offset, uint64_t size, uint64_t *out)
{
    int rc = tlsf_realloc(f->t, f->base, offset, size, out);
    uint64_t align;
    if (rc != TLSF_ENOMEM || tlsf_alignment(f->t, f->base, offset, &align) ||
        tlsf_flex_grow(f, gain_for(f, size, align)))
        return rc;
    return tlsf_realloc(f->t, f->base, offset, size, out);
}

int tlsf_flex_alloc_many(tlsf_flex_t *f, const uint64_t *sizes, size_t n, uint64_t align, uint64_t *out,
                         size_t *failed)
{
    int rc = tlsf_alloc_many(f->t, f->base, sizes, n, align, out, failed);
    if (rc != TLSF_ENOMEM)
        return rc;
    /* One growth for the whole batch: a free block of the summed needs fits
     * every request in turn (what each takes from it is at most its need,
     * and the rest still fits the next). */
    uint64_t gain = f->size ? 0 : TLSF_SENTINEL_SIZE;
    for (size_t k = 0; k < n; k++) {
        uint64_t need = tlsf_grow_need(f->t, sizes[k], align);
        if (need == UINT64_MAX || need > UINT64_MAX - gain)
            return rc;
        gain += need;
    }
    if (tlsf_flex_grow(f, gain))
        return rc;
    return tlsf_alloc_many(f->t, f->base, sizes, n, align, out, failed);
}

/* Gives back the whole pages inside free block [b, b+size) when they make at
 * least `min` bytes; returns what discard says. */
static uint64_t discard_inside(tlsf_flex_t *f, uint64_t b, uint64_t size, uint64_t min, int count)
{
    uint64_t lo = round_up(b + FREE_HEAD, f->src.page), hi = round_down(b + size, f->src.page);
    if (!f->src.discard || hi <= lo || hi - lo < min)
        return 0;
    return f->src.discard(f->src.ctx, f->base + lo, hi - lo, count);
}

/* Gives back the live bitmap's whole pages for free block [b, b+size)
 * (their words are zero: no live payload lies there). */
static void discard_live_words(tlsf_flex_t *f, uint64_t b, uint64_t size)
{
    uint8_t *words;
    uint64_t n;
    tlsf_live_words(f->t, b + FREE_HEAD, b + size, &words, &n);
    uintptr_t lo = round_up((uintptr_t)words, f->src.page), hi = round_down((uintptr_t)words + n, f->src.page);
    if (f->src.discard && hi > lo)
        f->src.discard(f->src.ctx, (uint8_t *)lo, hi - lo, 0);
}

/* After a free (payload `offset`, what it did): when the free block it left
 * has at least trim_threshold bytes of whole pages, the pages of that block
 * that the freed one covered (with the pages it shares with a free
 * neighbour) go back, when they make at least TLSF_FLEX_FREE_DISCARD_MIN.
 * The neighbours' other pages were free before: given back then, or left to
 * trim(); giving them back again at every free next to a large free block
 * would cost a system call over the whole block each time. Smaller frees
 * leave their pages to trim(): a program that churns through small blocks
 * would fault them back in at once (alloc_many + free_many of `mixed` ran
 * 10x slower when every page went back). */
static void freed(void *ctx, uint64_t offset, const tlsf_freed_t *what)
{
    tlsf_flex_t *f = ctx;
    uint64_t page = f->src.page, b = offset - TLSF_HEADER_SIZE;
    uint64_t lo = round_up(what->merged + FREE_HEAD, page), hi = round_down(what->merged + what->merged_size, page);
    if (!f->src.discard || hi <= lo || hi - lo < f->trim_threshold)
        return;
    uint64_t from = round_down(b, page), to = round_up(b + what->size, page);
    from = from > lo ? from : lo;
    to = to < hi ? to : hi;
    if (to > from && to - from >= TLSF_FLEX_FREE_DISCARD_MIN)
        f->src.discard(f->src.ctx, f->base + from, to - from, 0);
}

int tlsf_flex_free(tlsf_flex_t *f, uint64_t offset)
{
    tlsf_freed_t what;
    int rc;
    if (f->trim_threshold == TLSF_FLEX_TRIM_OFF)
        return tlsf_free(f->t, f->base, offset);
    if ((rc = tlsf_free_merged(f->t, f->base, offset, &what)))
        return rc;
    freed(f, offset, &what);
    return TLSF_OK;
}

int tlsf_flex_free_many(tlsf_flex_t *f, const uint64_t *offsets, size_t n, size_t *bad)
{
    return tlsf_free_many_notify(f->t, f->base, offsets, n, bad, f->trim_threshold == TLSF_FLEX_TRIM_OFF ? NULL : freed, f);
}

typedef struct {
    tlsf_flex_t *f;
    uint64_t released;
} trim_ctx;

static int trim_block(uint64_t b, uint64_t size, int used, void *ctx)
{
    trim_ctx *c = ctx;
    uint64_t usable;
    /* a block the walk calls free but whose payload is live is a scribbled
     * header: its pages hold someone's data */
    if (!used && tlsf_usable_size(c->f->t, c->f->base, b + TLSF_HEADER_SIZE, &usable) == TLSF_EINVAL) {
        c->released += discard_inside(c->f, b, size, 1, 1);
        discard_live_words(c->f, b, size);
    }
    return TLSF_OK;
}

int tlsf_flex_trim(tlsf_flex_t *f, uint64_t *released)
{
    trim_ctx c = {f, 0};
    int rc = tlsf_walk(f->t, f->base, trim_block, &c);
    *released = c.released;
    return rc;
}

/*
 * tlsf_flex.h: a heap that grows from a source of memory and gives pages
 * back, over the in-band engine (tlsf.h), after rlsf's FlexTlsf. Plain C11,
 * no Python, no system calls: the memory comes from a source (a table of
 * callbacks), such as csrc/platform/os_memory.h's reservation, so that the
 * algorithm stays apart from the platform. The twin src/tlsf/pure/flex.py
 * mirrors this file.
 *
 * The arena is a reservation of tlsf_capacity(t) bytes at a fixed address;
 * the heap has at most one pool, [0, size), which only ever grows at its end
 * (tlsf_append_free_block): nothing moves, offsets and pointers stay valid.
 *
 * Growth: when a request does not fit, the pool grows to
 *     max(size + what the request needs, size + step),  step = clamp(size, GROW_MIN, GROW_MAX)
 * rounded up to GROW_UNIT and capped at the capacity: it doubles until it
 * grows by 1 GiB at a time, so growth is amortised O(1), and one growth is
 * one call of the source's `extend` (at most one system call). Only a full
 * reservation gives TLSF_ENOMEM.
 *
 * Giving back: trim gives the whole pages inside every free block (after its
 * 32 bytes of header and links) to the source's `discard`, and the pages of
 * the live bitmap that cover only such bytes (1/128 of them: 8 MiB per GiB);
 * with a trim threshold, free and free_many give back the pages a freed
 * block covered, when the free block it ends up in has at least that many
 * bytes of whole pages and those pages make at least 64 KiB (its arena pages
 * only: one system call; smaller frees, which a churning program would
 * fault back in at once, leave their pages to trim).
 */
#ifndef TLSF_FLEX_H
#define TLSF_FLEX_H

#include "tlsf.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TLSF_FLEX_GROW_MIN ((uint64_t)64 << 10)   /* first pool and smallest step */
#define TLSF_FLEX_GROW_MAX ((uint64_t)1 << 30)    /* largest step */
#define TLSF_FLEX_GROW_UNIT ((uint64_t)64 << 10)  /* pool sizes are multiples of it (until the cap) */
#define TLSF_FLEX_TRIM_OFF UINT64_MAX             /* trim threshold: free never gives pages back */
#define TLSF_FLEX_FREE_DISCARD_MIN ((uint64_t)64 << 10) /* a free gives back no fewer bytes of pages */

typedef struct {
    /* Makes arena bytes [old_size, new_size) usable before the pool grows
     * into them (an anonymous reservation: nothing to do; a file: extend
     * it). TLSF_OK, or TLSF_ENOMEM and the pool stays as it is. NULL: nothing to do. */
    int (*extend)(void *ctx, uint64_t old_size, uint64_t new_size);
    /* Gives the pages of [p, p+n) back (page-aligned: arena bytes, or the
     * live bitmap's); with count, returns the bytes that were resident. NULL:
     * pages are never given back. */
    uint64_t (*discard)(void *ctx, uint8_t *p, uint64_t n, int count);
    void *ctx;
    uint64_t page; /* what discard works in, a power of two */
} tlsf_flex_source_t;

typedef struct {
    tlsf_t *t;
    uint8_t *base;
    uint64_t size;           /* bytes of the arena in the pool, [0, size); 0: no pool yet */
    uint64_t trim_threshold; /* bytes of whole pages from which free gives them back, or TLSF_FLEX_TRIM_OFF */
    tlsf_flex_source_t src;
} tlsf_flex_t;

/* A heap over `t` (initialised, no pools) and its arena at `base`. */
void tlsf_flex_init(tlsf_flex_t *f, tlsf_t *t, uint8_t *base, const tlsf_flex_source_t *src,
                    uint64_t trim_threshold);

/* Grows the pool by at least `gain` bytes (the first growth makes it), as a
 * request that does not fit would. TLSF_ENOMEM when the capacity cannot hold it. */
int tlsf_flex_grow(tlsf_flex_t *f, uint64_t gain);

/* As tlsf_alloc, tlsf_realloc, tlsf_alloc_many, growing the pool when a
 * request does not fit. A failed call leaves the allocations as they were;
 * the pool may have grown. */
int tlsf_flex_alloc(tlsf_flex_t *f, uint64_t size, uint64_t align, uint64_t *out);
int tlsf_flex_realloc(tlsf_flex_t *f, uint64_t offset, uint64_t size, uint64_t *out);
int tlsf_flex_alloc_many(tlsf_flex_t *f, const uint64_t *sizes, size_t n, uint64_t align, uint64_t *out,
                         size_t *failed);
/* As tlsf_free and tlsf_free_many, giving pages back as the trim threshold says. */
int tlsf_flex_free(tlsf_flex_t *f, uint64_t offset);
int tlsf_flex_free_many(tlsf_flex_t *f, const uint64_t *offsets, size_t n, size_t *bad);

/* Gives the whole pages inside every free block back, and the live bitmap's
 * pages for them; *released = the bytes of arena pages that were resident.
 * O(blocks). */
int tlsf_flex_trim(tlsf_flex_t *f, uint64_t *released);

#ifdef __cplusplus
}
#endif
#endif /* TLSF_FLEX_H */

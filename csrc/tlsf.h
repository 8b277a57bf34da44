/*
 * tlsf.h: Two-Level Segregated Fit allocator core (plain C11, no Python).
 *
 * The core manages byte ranges ("pools") inside one caller-owned arena of
 * `capacity` bytes. Every link it keeps, in the arena and in the control
 * structure, is an offset from the arena base, never a pointer: the arena and
 * the control structure may be copied or mapped at another address and keep
 * working. The base address is therefore passed to every call.
 *
 * Every offset read from the arena is validated before it is followed, so a
 * scribbled arena yields TLSF_ECORRUPT, never an access outside the arena.
 * Not thread-safe: callers serialise operations on one heap.
 */
#ifndef TLSF_H
#define TLSF_H

#include <stddef.h>
#include <stdint.h>

#include "tlsf_common.h" /* result codes, tlsf_stats_t, tlsf_walker, tlsf_strerror */

#ifdef __cplusplus
extern "C" {
#endif

#define TLSF_GRANULARITY 16u           /* block sizes and offsets are multiples of it */
#define TLSF_HEADER_SIZE 16u           /* bytes of header in front of each payload */
#define TLSF_MIN_BLOCK 32u             /* smallest block, header included */
#define TLSF_SENTINEL_SIZE 32u         /* the used block closing every pool */
#define TLSF_MIN_POOL (TLSF_MIN_BLOCK + TLSF_SENTINEL_SIZE)
#define TLSF_MAX_CAPACITY ((uint64_t)1 << 58)   /* the top 6 bits of a size word hold the alignment */
#define TLSF_SL_LEN_DEFAULT 32u

typedef struct tlsf tlsf_t;

/* Bytes of control structure for this arena size and second-level count
 * (a power of two, 1..64); 0 when either is invalid. */
size_t tlsf_control_size(uint64_t capacity, unsigned sl_len);

/* Initialise `t` (tlsf_control_size bytes, 8-byte aligned) with no pools. */
int tlsf_init(tlsf_t *t, uint64_t capacity, unsigned sl_len);
/* The same for a control structure whose bytes are all zero already (fresh
 * anonymous or file memory): the live bitmap, which is sized by capacity, is
 * not written, so that only the parts of it in use become resident. */
int tlsf_init_zeroed(tlsf_t *t, uint64_t capacity, unsigned sl_len);
/* Done with the heap: the arena becomes plain memory again (built with
 * -DTLSF_POISON, the core keeps free blocks and headers poisoned for
 * AddressSanitizer; this unpoisons the arena up to the end of its last pool). */
void tlsf_fini(tlsf_t *t, uint8_t *base);

uint64_t tlsf_capacity(const tlsf_t *t);
unsigned tlsf_sl_len(const tlsf_t *t);
/* Offset where the last TLSF_ECORRUPT was detected (diagnostic). */
uint64_t tlsf_bad_offset(const tlsf_t *t);

/* O(1). `align` is a power of two; the payload offset is a multiple of it and of 16. */
int tlsf_alloc(tlsf_t *t, uint8_t *base, uint64_t size, uint64_t align, uint64_t *out);
/* O(1). */
int tlsf_free(tlsf_t *t, uint8_t *base, uint64_t offset);
/* What a free did: the freed block [offset - 16, +size), and the free block
 * that now holds it (merged with its free neighbours), [merged, +merged_size). */
typedef struct {
    uint64_t size, merged, merged_size;
} tlsf_freed_t;
/* tlsf_free, telling what it did. */
int tlsf_free_merged(tlsf_t *t, uint8_t *base, uint64_t offset, tlsf_freed_t *out);
/* Shrink in place, grow into a free next block, move into a free previous
 * block, else allocate + copy + free. The alignment of the original
 * allocation is kept. On failure the old allocation is untouched. */
int tlsf_realloc(tlsf_t *t, uint8_t *base, uint64_t offset, uint64_t size, uint64_t *out);
int tlsf_usable_size(const tlsf_t *t, const uint8_t *base, uint64_t offset, uint64_t *out);
/* The alignment live allocation `offset` was made with (kept by realloc). */
int tlsf_alignment(const tlsf_t *t, const uint8_t *base, uint64_t offset, uint64_t *out);
/* Bytes of free space that, appended to a pool as one free block, make
 * tlsf_alloc(size, align) succeed whatever else the heap holds: the worst
 * case for alignment, rounded up to a class boundary (good fit). UINT64_MAX
 * for a request no heap of this capacity fits. O(1). */
uint64_t tlsf_grow_need(const tlsf_t *t, uint64_t size, uint64_t align);
/* The live bitmap's whole words for arena bytes [lo, hi), which must lie
 * inside one free block after its header (so those words are zero): *start
 * and *bytes (0: none). A growable heap gives their pages back with the
 * block's. */
void tlsf_live_words(tlsf_t *t, uint64_t lo, uint64_t hi, uint8_t **start, uint64_t *bytes);

/* n allocations of sizes[k] bytes, all aligned to `align`, into out[]. All or
 * nothing: on failure *failed is the index that failed and every block this
 * call made is freed again. */
int tlsf_alloc_many(tlsf_t *t, uint8_t *base, const uint64_t *sizes, size_t n, uint64_t align,
                    uint64_t *out, size_t *failed);
/* Frees n live allocations. Every offset is validated (live, listed once)
 * before any is freed; on TLSF_EINVAL *bad is the first invalid index and
 * nothing was freed. */
int tlsf_free_many(tlsf_t *t, uint8_t *base, const uint64_t *offsets, size_t n, size_t *bad);
/* Called after each block a batch frees (payload offset, what the free did). */
typedef void (*tlsf_freed_fn)(void *ctx, uint64_t offset, const tlsf_freed_t *what);
/* tlsf_free_many, calling freed(ctx, offset, what) after each free. */
int tlsf_free_many_notify(tlsf_t *t, uint8_t *base, const uint64_t *offsets, size_t n, size_t *bad,
                          tlsf_freed_fn freed, void *ctx);

/* Make [offset, offset+size) a new pool (rounded inwards to 16 bytes).
 * *taken = bytes consumed from `offset` (0 when too small for a pool). */
int tlsf_insert_free_block(tlsf_t *t, uint8_t *base, uint64_t offset, uint64_t size, uint64_t *taken);
/* Extend the pool that ends exactly at `offset`, coalescing with its last block.
 * *taken = bytes added (0 when fewer than TLSF_MIN_BLOCK). */
int tlsf_append_free_block(tlsf_t *t, uint8_t *base, uint64_t offset, uint64_t size, uint64_t *taken);

/* Crash-safe mode, for heaps whose image outlives a process (files, shared
 * memory): a moving realloc notes its blocks for tlsf_recover, and never
 * moves into the previous block (so offsets may differ from the default
 * mode). See "Crash consistency" in tlsf.c. */
void tlsf_set_crash_safe(tlsf_t *t);

/* Rebuilds `t` (tlsf_control_size(capacity, sl_len) bytes, any content) from
 * the chain of block headers of the one pool starting at offset 0 of the
 * arena, of which [0, avail) may be read: free lists, bitmaps, statistics,
 * the live bitmap, prev_phys and PREV_FREE, the pool chain. Strict
 * (repair = 0): any inconsistency, two free neighbours or an interrupted
 * moving realloc is TLSF_ECORRUPT (tlsf_bad_offset says where). Repairing:
 * free neighbours are merged, links and flags rewritten, an interrupted
 * crash-safe moving realloc undone; only a broken chain of sizes is
 * TLSF_ECORRUPT. *pool_end: where the pool ends (after its sentinel).
 * O(blocks + avail / 128). */
int tlsf_recover(tlsf_t *t, uint8_t *base, uint64_t capacity, unsigned sl_len, uint64_t avail, int repair,
                 uint64_t *pool_end);

int tlsf_stats(const tlsf_t *t, const uint8_t *base, tlsf_stats_t *out);
/* Every block of every pool in address order, sentinels excluded. */
int tlsf_walk(const tlsf_t *t, const uint8_t *base, tlsf_walker fn, void *ctx);
/* Full invariant check; on failure writes a description into msg. */
int tlsf_check(tlsf_t *t, const uint8_t *base, char *msg, size_t msglen);

#ifdef __cplusplus
}
#endif
#endif /* TLSF_H */

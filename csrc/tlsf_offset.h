/*
 * tlsf_offset.h: the out-of-band TLSF engine (plain C11, no Python).
 *
 * It manages ranges of 64-bit offsets that it never touches: GPU buffers,
 * file space, address ranges. All metadata lives in a node table beside the
 * free lists, one node per block, so no header is written anywhere and every
 * block, even one unit, costs 32 bytes of metadata and nothing in the managed
 * space. The node table and the offset index grow on demand without
 * rehashing or copying more than 16 KiB at once: the table moves once, from
 * 512 nodes to 1,024, into a reservation of address space where it grows in
 * place (where the system refuses one, realloc doubles it); the first touch
 * of fresh metadata pages is still the OS's cost (benchmarks/RESULTS.md,
 * "Growth latency"). About 2^27 (134 million) blocks at a time: beyond,
 * TLSF_ENOMETA.
 *
 * Policy is that of the in-band engine (tlsf.c), size classes included
 * (tlsf_classes.h): the head of the request's own list first, then good fit;
 * alignment padding goes back to the free lists.
 *
 * Offsets and sizes are in bytes at this interface and multiples of the
 * granularity (a power of two) inside; every range ends at or below 2^64 - 1.
 * Not thread-safe: callers serialise operations on one allocator.
 */
#ifndef TLSF_OFFSET_H
#define TLSF_OFFSET_H

#include "tlsf_common.h" /* result codes, tlsf_stats_t, tlsf_walker */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tlsf_oa tlsf_oa_t;

/* A new allocator with no ranges; NULL when out of memory or when sl_len
 * (a power of two, 1..64) or granularity (a power of two) is invalid. */
tlsf_oa_t *tlsf_oa_create(unsigned sl_len, uint64_t granularity);
void tlsf_oa_destroy(tlsf_oa_t *a);

uint64_t tlsf_oa_capacity(const tlsf_oa_t *a);     /* bytes in all ranges */
uint64_t tlsf_oa_granularity(const tlsf_oa_t *a);
unsigned tlsf_oa_sl_len(const tlsf_oa_t *a);
/* Bytes of metadata held (node table, offset index, lists). */
uint64_t tlsf_oa_metadata_bytes(const tlsf_oa_t *a);

/* O(1). `align` is a power of two; the offset is a multiple of it and of the
 * granularity. size 0 takes one granule. */
int tlsf_oa_alloc(tlsf_oa_t *a, uint64_t size, uint64_t align, uint64_t *out);
/* O(1) (an expected-constant hash lookup). TLSF_EINVAL for anything that is
 * not the offset of a live allocation. */
int tlsf_oa_free(tlsf_oa_t *a, uint64_t offset);
/* In place only: *resized = 1 when the allocation now has `size` bytes
 * (shrunk, or grown into a free next block), 0 when it could not grow (unchanged). */
int tlsf_oa_resize(tlsf_oa_t *a, uint64_t offset, uint64_t size, int *resized);
int tlsf_oa_usable_size(const tlsf_oa_t *a, uint64_t offset, uint64_t *out);

/* All or nothing, as tlsf_alloc_many / tlsf_free_many. */
int tlsf_oa_alloc_many(tlsf_oa_t *a, const uint64_t *sizes, size_t n, uint64_t align, uint64_t *out,
                       size_t *failed);
int tlsf_oa_free_many(tlsf_oa_t *a, const uint64_t *offsets, size_t n, size_t *bad);

/* Give [offset, offset+size) to the allocator; ranges it touches coalesce
 * with it. TLSF_ERANGE when it overlaps a range, is not a multiple of the
 * granularity, or ends beyond 2^64 - 1. */
int tlsf_oa_add_range(tlsf_oa_t *a, uint64_t offset, uint64_t size);
/* Forget every allocation; each range becomes one free block. O(blocks). */
void tlsf_oa_reset(tlsf_oa_t *a);

int tlsf_oa_stats(const tlsf_oa_t *a, tlsf_stats_t *out);
/* Every block of every range in address order (offsets and sizes in bytes). */
int tlsf_oa_walk(const tlsf_oa_t *a, tlsf_walker fn, void *ctx);
/* Full invariant check; on failure writes a description into msg. It marks
 * nodes while it runs (and clears the marks), hence not const. */
int tlsf_oa_check(tlsf_oa_t *a, char *msg, size_t msglen);

#ifdef __cplusplus
}
#endif
#endif /* TLSF_OFFSET_H */

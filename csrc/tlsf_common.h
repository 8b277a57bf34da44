/*
 * tlsf_common.h: what both engines of the C core share at their interface
 * (plain C11, no Python): result codes and their messages, the statistics
 * record, the block walker's type. The in-band engine (tlsf.h) and the
 * out-of-band one (tlsf_offset.h) include it; neither includes the other.
 */
#ifndef TLSF_COMMON_H
#define TLSF_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TLSF_NIL UINT64_MAX /* "no block" in links and results; never a live offset */

/* Result codes of both engines. */
enum {
    TLSF_OK = 0,
    TLSF_ENOMEM = 1,     /* nothing fits; the heap is unchanged */
    TLSF_EINVAL = 2,     /* not the offset of a live allocation; the heap is unchanged */
    TLSF_ERANGE = 3,     /* a range outside the arena, overlapping a pool, or no pool ends there */
    TLSF_EALIGN = 4,     /* alignment not a power of two */
    TLSF_ECORRUPT = 5,   /* metadata found inconsistent; see tlsf_bad_offset */
    TLSF_ENOMETA = 6     /* out-of-band engine: no memory to grow its metadata; it is unchanged */
};

/* A message for a result code. */
const char *tlsf_strerror(int code);

typedef struct {
    uint64_t allocated_bytes;   /* sum of the usable sizes of live allocations */
    uint64_t free_bytes;        /* sum of the sizes of free blocks (in-band: headers included) */
    uint64_t largest_free;      /* alloc(largest_free) succeeds now; 0 when nothing would */
    uint64_t allocations;       /* live allocations */
    uint64_t free_blocks;       /* free blocks */
} tlsf_stats_t;

/* Called once per block by a walk; a non-zero return stops the walk and is returned. */
typedef int (*tlsf_walker)(uint64_t offset, uint64_t size, int used, void *ctx);

#ifdef __cplusplus
}
#endif
#endif /* TLSF_COMMON_H */

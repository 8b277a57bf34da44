/*
 * tlsf_trace.h: the project's allocation trace file, as C structures (plain
 * C99, no Python). tlsf.workloads writes and reads the same format
 * (HEADER, RECORD), libtlsf_malloc records programs in it
 * (integrations/malloc/trace.c), and the native bench replays it
 * (benchmarks/native/bench.c). Installed with the package
 * (tlsf.get_include()) for tools of one's own.
 *
 *     header  "TLSFTRC1", n_ops, n_ids                              24 bytes
 *     record  op, align_log2, 0, id, size                           16 bytes each
 *
 * Little-endian. op: ALLOC (a new block for id), FREE (id's block), REALLOC
 * (id's block gets `size` bytes; the id stays when the block moves). An id
 * is below n_ids and is reused only after its FREE. align_log2: the
 * requested alignment is 1 << align_log2 bytes (0: none).
 */
#ifndef TLSF_TRACE_H
#define TLSF_TRACE_H

#include <stdint.h>

#define TLSF_TRACE_MAGIC "TLSFTRC1"

enum { TLSF_TRACE_ALLOC = 0, TLSF_TRACE_FREE = 1, TLSF_TRACE_REALLOC = 2 };

typedef struct {
    char magic[8];
    uint64_t n_ops, n_ids;
} tlsf_trace_header_t;

typedef struct {
    uint8_t op, align_log2;
    uint16_t reserved;
    uint32_t id;
    uint64_t size;
} tlsf_trace_record_t;

#endif /* TLSF_TRACE_H */

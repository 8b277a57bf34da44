/*
 * trace.h: the allocation trace of a process running on libtlsf_malloc, in
 * the project's trace file format (src/tlsf/include/tlsf_trace.h;
 * tlsf.workloads.read_trace reads it, the benchmarks replay it). Every
 * record is buffered and written by whole buffers; the header is rewritten
 * after each write, so the
 * file is a complete trace of everything written so far even when the
 * process ends without running its exit handlers (_exit, a signal): only the
 * last buffer's records are lost then.
 *
 * Each heap of the allocator has its own table from offsets to ids; the
 * record buffer is shared, behind the trace's own lock (taken inside a
 * heap's lock, never the other way round). No function allocates.
 */
#ifndef TLSF_MALLOC_TRACE_H
#define TLSF_MALLOC_TRACE_H

#include <stdatomic.h>
#include <stdint.h>

#include "tlsf.h"

/* Non-zero while a trace is being written: the allocator's fast test. */
extern atomic_int trace_on;

/* Starts the trace of this process into `path` (created or truncated). 0 or
 * an errno value (nothing is traced then). The allocator then gives each of
 * its heaps an id table (trace_table) and records its live blocks
 * (trace_live), so that the trace is complete in itself. */
int trace_start(const char *path);

/* An id table for a heap of `capacity` bytes: *ids, or NULL when the system
 * refuses the address space (that heap's blocks are not traced). */
void trace_table(uint64_t capacity, uint32_t **ids);

/* Records the live blocks of a heap as ALLOCs. */
void trace_live(uint32_t *ids, const tlsf_t *t, const uint8_t *base);

/* One operation of the heap whose id table is `ids`, by payload offset;
 * align is the requested alignment. */
void trace_alloc(uint32_t *ids, uint64_t offset, uint64_t size, uint64_t align);
void trace_free(uint32_t *ids, uint64_t offset);
void trace_realloc(uint32_t *ids, uint64_t old_offset, uint64_t new_offset, uint64_t size);

/* In the child of a fork: the parent's unwritten records are dropped (the
 * parent writes them) and the child's own trace starts in `path`; the
 * allocator then clears its id tables (trace_clear) and records its live
 * blocks again. */
void trace_forked(const char *path);
void trace_clear(uint32_t *ids, uint64_t capacity);

/* Writes what is buffered and the final header, and stops tracing. */
void trace_stop(void);

/* The trace's lock, held across fork (after the heaps' locks). */
void trace_lock(void);
void trace_unlock(void);

#endif /* TLSF_MALLOC_TRACE_H */

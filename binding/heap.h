/*
 * heap.h: the Heap object, shared by heap.c (the type), capi.c (the C API)
 * and errors.c (the offset of a corruption).
 *
 * A Heap owns one control structure (PyMem_Malloc) and keeps the caller's
 * buffer exported for its whole life, which pins it: the arena can neither
 * move nor shrink under the core.
 */
#ifndef TLSF_BINDING_HEAP_H
#define TLSF_BINDING_HEAP_H

#include "lock.h"
#include "state.h"
#include "tlsf.h"

typedef struct {
    PyObject_HEAD
    /* hot: read by every alloc/free; t and base are read and written only
     * under the lock (see lock.h) */
    tlsf_t *t;          /* control structure; NULL once closed */
    uint8_t *base;      /* start of the arena (buf.buf) */
    tlsf_lock_t lock;
    /* cold, and under the GIL */
    uint64_t capacity;  /* still readable after close */
    unsigned sl_len;
    Py_ssize_t exports; /* buffers handed out by view(), not yet released */
    PyObject *owned;    /* memory made for an int `memory` (mmap, or bytearray(0)), else NULL */
    PyObject *weakrefs;
    Py_buffer buf;      /* the export of `memory` that pins it; buf.obj NULL when not held */
} HeapObject;

/* What a core call returns in this binding when the heap is closed (never a
 * core code). */
#define RC_CLOSED (-1)

/* Runs core call `call` on the open heap under its lock, the result in rc
 * (RC_CLOSED when the heap is closed). */
#define HEAP_CALL(self, rc, call)                                \
    do {                                                         \
        tlsf_lock(&(self)->lock);                                \
        (rc) = LIKELY((self)->t != NULL) ? (call) : RC_CLOSED;   \
        tlsf_unlock(&(self)->lock);                              \
    } while (0)

/* Whether o is a Heap (of any interpreter): the types cannot be subclassed. */
HIDDEN int is_heap(PyObject *o);
/* Where the core last found corruption (TLSF_NIL if nowhere, or closed). */
HIDDEN uint64_t heap_bad_offset(PyObject *heap);

/* Heap(memory) (memory.c): whether `memory` is a size (-1 on error), the
 * anonymous memory made for one, whether a buffer format is plain data. */
HIDDEN int is_size_arg(PyObject *o);
HIDDEN PyObject *anonymous_memory(uint64_t n);
HIDDEN int plain_data_format(const char *f);

#endif

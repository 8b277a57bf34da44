/*
 * heap.h: the Heap object, shared by heap.c (the type Heap), flex.c (the type
 * FlexHeap, a Heap object with a growable arena), shared.c (the type
 * SharedHeap, a FlexHeap in shared memory), capi.c (the C API) and errors.c
 * (the offset of a corruption).
 *
 * A Heap owns one control structure (PyMem_Malloc) and keeps the caller's
 * buffer exported for its whole life, which pins it: the arena can neither
 * move nor shrink under the core. A FlexHeap's control structure and arena
 * are its own reservation (flex.c), which never moves either.
 *
 * Locking: every core call runs under the heap's lock (HEAP_CALL): for a
 * Heap and a FlexHeap the object's spin lock (lock.h), for a SharedHeap the
 * segment's process-shared lock, waited for without the GIL (shared.c).
 */
#ifndef TLSF_BINDING_HEAP_H
#define TLSF_BINDING_HEAP_H

#include "lock.h"
#include "state.h"
#include "tlsf.h"
#include "tlsf_flex.h"

typedef struct {
    PyObject_HEAD
    /* hot: read by every alloc/free; t and base are read and written only
     * under the lock (see lock.h) */
    tlsf_t *t;          /* control structure; NULL once closed */
    uint8_t *base;      /* start of the arena (buf.buf) */
    tlsf_flex_t *flex;  /* FlexHeap: the growable heap over t and base; NULL for a Heap */
    tlsf_lock_t lock;
    int shared;         /* a SharedHeap: HEAP_CALL takes the segment's lock instead */
    /* cold, and under the GIL */
    uint64_t capacity;  /* still readable after close */
    unsigned sl_len;
    Py_ssize_t exports; /* exporters of views and Blocks' buffers alive (heap.c) */
    Py_ssize_t blocks;  /* Blocks not freed (block.c): close() refuses while any is */
    /* live allocations of the C API's alloc_held (the numpy handler's arrays):
     * close() refuses while any is live. Changed without the GIL, under the
     * heap's lock (HEAP_CALL), and read by close() under that lock too, in the
     * step that closes the heap. */
    uint64_t holds;
    PyObject *owned;    /* memory made for an int `memory` (mmap, or bytearray(0)), else NULL */
    PyObject *weakrefs;
    Py_buffer buf;      /* the export of `memory` that pins it; buf.obj NULL when not held */
} HeapObject;

/* What a core call returns in this binding when the heap is closed (never a
 * core code), and when a SharedHeap's lock cannot be taken at all. */
#define RC_CLOSED (-1)
#define RC_NO_LOCK (-2)

/* A SharedHeap's lock (shared.c), which HEAP_CALL takes instead of the
 * object's. shared_enter returns TLSF_OK (open: call the core), RC_CLOSED,
 * TLSF_ECORRUPT (a dead holder's heap could not be recovered) or RC_NO_LOCK;
 * where it waits with ts given, it releases the GIL, and *ts is the thread
 * state that shared_leave restores. */
HIDDEN int shared_enter(HeapObject *self, PyThreadState **ts);
HIDDEN void shared_leave(HeapObject *self, int entered, PyThreadState *ts);
/* ... the C API's lock() and unlock() of a SharedHeap (capi.c); and whether
 * it is closing (close() waits for the calls in progress, without the GIL:
 * nothing may hand out its memory meanwhile). */
HIDDEN void shared_capi_lock(HeapObject *self);
HIDDEN void shared_capi_unlock(HeapObject *self);
HIDDEN int shared_closing(HeapObject *self);

/* Whether the heap's memory may be handed out (a view's buffer, the C API's
 * core): open, and not a SharedHeap whose close() is waiting to unmap it.
 * Under the object's lock. */
static inline int heap_memory_open(HeapObject *self)
{
    return self->t != NULL && !(self->shared && shared_closing(self));
}

/* Runs core call `call` on the open heap under its lock, the result in rc
 * (RC_CLOSED when the heap is closed, ...: shared_enter). `call` is C only.
 * Written out for each kind of lock, so that a Heap's call pays one
 * predictable branch for SharedHeap's existence. */
#define HEAP_CALL(self, rc, call)                                          \
    do {                                                                   \
        if (LIKELY(!(self)->shared)) {                                     \
            tlsf_lock(&(self)->lock);                                      \
            (rc) = LIKELY((self)->t != NULL) ? (call) : RC_CLOSED;         \
            tlsf_unlock(&(self)->lock);                                    \
        } else {                                                           \
            PyThreadState *ts_ = NULL;                                     \
            int entered_ = shared_enter((self), &ts_);                     \
            (rc) = entered_ == TLSF_OK ? (call) : entered_;                \
            shared_leave((self), entered_, ts_);                           \
        }                                                                  \
    } while (0)

/* The core calls that change allocations, through the flex engine (which
 * grows the arena and gives pages back) for a FlexHeap; called as HEAP_CALL's
 * `call`, under the lock. A Heap's alloc pays nothing for it (the flex path
 * is taken only when nothing fits), its free one predictable branch. */
static inline int core_alloc(HeapObject *h, uint64_t size, uint64_t align, uint64_t *out)
{
    int rc = tlsf_alloc(h->t, h->base, size, align, out);
    if (UNLIKELY(rc == TLSF_ENOMEM) && h->flex) /* grow, and try again */
        rc = tlsf_flex_alloc(h->flex, size, align, out);
    return rc;
}

static inline int core_free(HeapObject *h, uint64_t offset)
{
    return LIKELY(!h->flex) ? tlsf_free(h->t, h->base, offset) : tlsf_flex_free(h->flex, offset);
}

static inline int core_realloc(HeapObject *h, uint64_t offset, uint64_t size, uint64_t *out)
{
    return h->flex ? tlsf_flex_realloc(h->flex, offset, size, out) : tlsf_realloc(h->t, h->base, offset, size, out);
}

static inline int core_alloc_many(HeapObject *h, const uint64_t *sizes, size_t n, uint64_t align, uint64_t *out,
                                  size_t *failed)
{
    return h->flex ? tlsf_flex_alloc_many(h->flex, sizes, n, align, out, failed)
                   : tlsf_alloc_many(h->t, h->base, sizes, n, align, out, failed);
}

static inline int core_free_many(HeapObject *h, const uint64_t *offsets, size_t n, size_t *bad)
{
    return h->flex ? tlsf_flex_free_many(h->flex, offsets, n, bad) : tlsf_free_many(h->t, h->base, offsets, n, bad);
}

/* The exception of core result rc of this heap (RC_CLOSED: it is closed);
 * of alloc (item -1) or of item `item` of alloc_many. */
HIDDEN NOINLINE PyObject *heap_error(HeapObject *self, int rc, uint64_t offset, PyObject *bad);
HIDDEN NOINLINE PyObject *alloc_error(HeapObject *self, int rc, uint64_t size, uint64_t align, Py_ssize_t item);

/* Whether o is a Heap, FlexHeap or SharedHeap (of any interpreter): known by
 * their deallocators; none can be subclassed. */
HIDDEN int is_heap(PyObject *o);
/* Where the core last found corruption (TLSF_NIL if nowhere, or closed). */
HIDDEN uint64_t heap_bad_offset(PyObject *heap);

/* The shared slots of both types: FlexHeap's object is a HeapObject too. */
HIDDEN void heap_dealloc(HeapObject *self);
HIDDEN int heap_traverse(HeapObject *self, visitproc visit, void *arg);
HIDDEN int heap_clear(HeapObject *self);
/* FlexHeap (flex.c): gives back the reservation of a closed FlexHeap; its
 * deallocator (heap_dealloc, and its path). SharedHeap (shared.c): the same. */
HIDDEN void flex_release(HeapObject *self);
HIDDEN void flex_dealloc(HeapObject *self);
/* refuse_held: close(), which returns -1 (nothing released) while C API
 * holds are live; 0 otherwise. */
HIDDEN int shared_release(HeapObject *self, int refuse_held);
HIDDEN void shared_dealloc(HeapObject *self);

/* Heap(memory) (memory.c): whether `memory` is a size (-1 on error), the
 * anonymous memory made for one, whether a buffer format is plain data. */
HIDDEN int is_size_arg(PyObject *o);
HIDDEN PyObject *anonymous_memory(uint64_t n);
HIDDEN int plain_data_format(const char *f);

#endif

/*
 * tlsf_capi.h: the C API of tlsf, for other extensions: allocate from a
 * tlsf.Heap, tlsf.FlexHeap or tlsf.SharedHeap object without Python calls.
 *
 *     #include "tlsf_capi.h"        (include dirs: tlsf.get_include())
 *
 *     static const TLSF_CAPI *tlsf_api;
 *     ... in the module's init or exec, with the GIL:
 *     if (!(tlsf_api = tlsf_capi_import())) return -1;
 *     ... then, given a Heap object `heap` that the caller keeps alive:
 *     uint64_t off;
 *     if (tlsf_api->alloc(heap, 64, 16, &off) == TLSF_CAPI_OK) { ... tlsf_api->free(heap, off); }
 *
 * The table lives in the capsule tlsf._core._C_API (as datetime's and numpy's
 * do), one per interpreter that imported tlsf._core.
 *
 * What needs the GIL (an attached thread state), and what does not:
 *   - tlsf_capi_import() and get_core(): yes (they import, or raise).
 *   - keeping the heap object alive (holding a reference): yes, to take or
 *     drop the reference; while you hold it, the object stays valid.
 *   - alloc, free, realloc, usable_size, lock, unlock, alloc_held,
 *     free_held: no. They touch no
 *     Python object (only the heap's C state, under the heap's own lock), so
 *     they may run between Py_BEGIN_ALLOW_THREADS and Py_END_ALLOW_THREADS,
 *     or in a thread that never held the GIL, concurrently with Python code
 *     using the same heap.
 *
 * The heap's memory: offsets are from `base` (get_core). Python code may
 * close() the heap at any time (close() does not wait for C users): then the
 * calls return TLSF_CAPI_ECLOSED and base is no longer valid. Views
 * (Heap.view) keep a heap open, and so do live allocations of alloc_held;
 * those of alloc do not.
 *
 * A FlexHeap is a heap to every call here ("Heap" below means any of the
 * three): alloc and realloc grow it, free gives pages back as its
 * trim_threshold says, and its capacity is its max_size. Direct core calls
 * on get_core's tlsf_t do neither: they see the pool as it is. A SharedHeap
 * is a FlexHeap whose lock is the segment's, shared by every process: the
 * calls wait for it (releasing the GIL when the calling thread holds it).
 *
 * lock/unlock: the heap's lock, which every call above takes itself. Hold it
 * to make several direct core calls (csrc/tlsf.h, on get_core's tlsf_t) one
 * step; never call Python, or any call of this table on the same heap, while
 * holding it (it is not re-entrant: a spin lock, or a SharedHeap's
 * process-shared mutex, which lock() waits for without releasing the GIL),
 * and check that the heap is still open (usable_size of a known offset, or
 * get_core with the GIL) when you took the lock without the GIL. Direct core
 * calls on a SharedHeap see the pool as another process may have grown it
 * only through alloc/realloc of this table, and a SharedHeap's unlock() must
 * come from the thread that called lock() (from another, it does nothing).
 *
 * Versions: TLSF_CAPI_VERSION changes when the table changes incompatibly;
 * within one version fields are only appended (`size` tells how many there
 * are). tlsf_capi_import() refuses another version.
 */
#ifndef TLSF_CAPI_H
#define TLSF_CAPI_H

#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
#include <Python.h>

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TLSF_CAPI_VERSION 1
#define TLSF_CAPI_NAME "tlsf._core._C_API"

/* Results of the calls (the core's codes, csrc/tlsf_common.h, and two more). */
#define TLSF_CAPI_OK 0
#define TLSF_CAPI_ENOMEM 1      /* nothing fits; the heap is unchanged */
#define TLSF_CAPI_EINVAL 2      /* not the offset of a live allocation; the heap is unchanged */
#define TLSF_CAPI_ECORRUPT 5    /* the heap's metadata was found inconsistent */
#define TLSF_CAPI_ECLOSED 100   /* the heap is closed */
#define TLSF_CAPI_ENOTHEAP 101  /* the object is not a tlsf._core.Heap, FlexHeap or SharedHeap */

struct tlsf; /* the core's control structure (csrc/tlsf.h: tlsf_t) */

typedef struct {
    unsigned int version; /* TLSF_CAPI_VERSION */
    size_t size;          /* sizeof(TLSF_CAPI) of the module that made it */
    PyTypeObject *heap_type; /* tlsf._core.Heap (of this interpreter); not subclassable */

    /* GIL needed. The core of a Heap object: 0 with *t, *base (the memory's
     * first byte) and *capacity (bytes) filled; -1 with TypeError (not a
     * Heap) or ValueError (closed) set. Any out pointer may be NULL. */
    int (*get_core)(PyObject *heap, struct tlsf **t, uint8_t **base, uint64_t *capacity);

    /* No GIL needed; heap must be a live Heap object (see get_core). */
    void (*lock)(PyObject *heap);
    void (*unlock)(PyObject *heap);

    /* No GIL needed. Each takes the heap's lock; TLSF_CAPI_ENOTHEAP when heap
     * is not a Heap, TLSF_CAPI_ECLOSED when it is closed. Offsets and sizes
     * are bytes; align a power of two. */
    int (*alloc)(PyObject *heap, uint64_t size, uint64_t align, uint64_t *offset);
    int (*free)(PyObject *heap, uint64_t offset);
    int (*realloc)(PyObject *heap, uint64_t offset, uint64_t size, uint64_t *new_offset);
    int (*usable_size)(PyObject *heap, uint64_t offset, uint64_t *size);

    /* No GIL needed. alloc and free whose allocations hold the heap open:
     * while any allocation made by alloc_held is live, close() raises
     * BufferError (as while a view is alive), so memory handed to a consumer
     * that cannot be told it went away (a numpy array's data) never dangles.
     * Free such an allocation with free_held, which drops the hold (free
     * would keep the heap held open for good); realloc keeps it held. */
    int (*alloc_held)(PyObject *heap, uint64_t size, uint64_t align, uint64_t *offset);
    int (*free_held)(PyObject *heap, uint64_t offset);
} TLSF_CAPI;

/* GIL needed. Imports tlsf._core and returns its table, or NULL with an
 * exception set (ImportError when its version is not this header's). */
static inline const TLSF_CAPI *tlsf_capi_import(void)
{
    const TLSF_CAPI *api = (const TLSF_CAPI *)PyCapsule_Import(TLSF_CAPI_NAME, 0);
    if (!api)
        return NULL;
    if (api->version != TLSF_CAPI_VERSION || api->size < sizeof(TLSF_CAPI)) {
        PyErr_Format(PyExc_ImportError, "tlsf C API version %u (%zu bytes) is not the expected %d (%zu bytes)",
                     api->version, api->size, TLSF_CAPI_VERSION, sizeof(TLSF_CAPI));
        return NULL;
    }
    return api;
}

#ifdef __cplusplus
}
#endif

#endif

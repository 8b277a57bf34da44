/*
 * heap_methods.h: the methods and properties that Heap (heap.c) and FlexHeap
 * (flex.c) share, as table entries: each type's table is these plus its own.
 * The functions are heap.c's; they take a HeapObject, which a FlexHeap is.
 */
#ifndef TLSF_BINDING_HEAP_METHODS_H
#define TLSF_BINDING_HEAP_METHODS_H

#include "heap.h"

#define HEAP_FASTCALL(name)                                                                          \
    HIDDEN PyObject *name(HeapObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
#define HEAP_NOARGS(name) HIDDEN PyObject *name(HeapObject *self, PyObject *ignored)
#define HEAP_GETTER(name) HIDDEN PyObject *name(HeapObject *self, void *closure)

HEAP_FASTCALL(heap_alloc);
HEAP_FASTCALL(heap_free);
HEAP_FASTCALL(heap_usable_size);
HEAP_FASTCALL(heap_realloc);
HEAP_FASTCALL(heap_alloc_many);
HEAP_FASTCALL(heap_free_many);
HEAP_FASTCALL(heap_view);
HEAP_FASTCALL(heap_block);
HIDDEN PyObject *heap_ndarray(HeapObject *self, PyObject *args, PyObject *kwargs);
HIDDEN PyObject *heap_ndarray_at(HeapObject *self, PyObject *args, PyObject *kwargs);
HEAP_NOARGS(heap_stats);
HEAP_NOARGS(heap_walk);
HEAP_NOARGS(heap_check);
HEAP_NOARGS(heap_close);
HEAP_NOARGS(heap_enter);
HIDDEN PyObject *heap_exit(HeapObject *self, PyObject *const *args, Py_ssize_t nargs);
HEAP_GETTER(heap_get_capacity);
HEAP_GETTER(heap_get_sl_len);
HEAP_GETTER(heap_get_closed);
/* A memoryview of arena bytes [offset, offset+size), counted as a view (close refuses while it lives). */
HIDDEN PyObject *heap_export(HeapObject *self, uint64_t offset, uint64_t size);
/* The exporter of those bytes (heap.c): counted as a view for its whole life,
 * and in *owner_exports (a field of owner, which it holds) when owner is given. */
HIDDEN PyObject *heap_exporter(HeapObject *self, uint64_t offset, uint64_t size, PyObject *owner,
                               Py_ssize_t *owner_exports);

#define HEAP_SHARED_METHODS                                                                               \
    {"alloc", FASTCALL_KW(heap_alloc), METH_FASTCALL | METH_KEYWORDS,                                     \
     "alloc(size, align=1) -> int\n\nAllocate size bytes aligned to align (a power of two); "            \
     "return the payload offset. OutOfMemoryError if nothing fits."},                                     \
    {"free", FASTCALL_KW(heap_free), METH_FASTCALL | METH_KEYWORDS,                                       \
     "free(offset)\n\nFree the allocation at offset. InvalidOffsetError if it is not live."},             \
    {"realloc", FASTCALL_KW(heap_realloc), METH_FASTCALL | METH_KEYWORDS,                                 \
     "realloc(offset, size) -> int\n\nResize an allocation, keeping its contents and alignment; "        \
     "return its (possibly new) offset. On failure the allocation is untouched."},                        \
    {"usable_size", FASTCALL_KW(heap_usable_size), METH_FASTCALL | METH_KEYWORDS,                         \
     "usable_size(offset) -> int\n\nBytes usable at the live allocation at offset."},                     \
    {"alloc_many", FASTCALL_KW(heap_alloc_many), METH_FASTCALL | METH_KEYWORDS,                           \
     "alloc_many(sizes, align=1) -> array('q') or ndarray\n\nAllocate every size in sizes (an "           \
     "iterable or a buffer of integers), all aligned to align; all or nothing. The offsets come "         \
     "back as array('q'), or an int64 ndarray when sizes is one."},                                       \
    {"free_many", FASTCALL_KW(heap_free_many), METH_FASTCALL | METH_KEYWORDS,                             \
     "free_many(offsets)\n\nFree every offset in offsets (an iterable or a buffer of integers); "         \
     "all are validated before any is freed."},                                                           \
    {"stats", (PyCFunction)heap_stats, METH_NOARGS, "stats() -> tlsf.Stats"},                             \
    {"walk", (PyCFunction)heap_walk, METH_NOARGS,                                                         \
     "walk() -> iterator of tlsf.BlockInfo\n\nEvery block of every pool in address order."},             \
    {"check", (PyCFunction)heap_check, METH_NOARGS,                                                       \
     "check()\n\nFull invariant check; CorruptionError if the heap is inconsistent."},                   \
    {"view", FASTCALL_KW(heap_view), METH_FASTCALL | METH_KEYWORDS,                                       \
     "view(offset, size=None) -> memoryview\n\nA writable view of the first size bytes "                  \
     "(default: all usable bytes) of the live allocation at offset."},                                    \
    {"block", FASTCALL_KW(heap_block), METH_FASTCALL | METH_KEYWORDS,                                     \
     "block(size, align=1) -> tlsf.Block\n\nAllocate size bytes as a Block, which frees itself "            \
     "(free(), `with`, or its last reference gone) and exports its bytes (memoryview(block))."},         \
    {"ndarray", (PyCFunction)(void (*)(void))heap_ndarray, METH_VARARGS | METH_KEYWORDS,                  \
     "ndarray(shape, dtype=float, *, align=None, order='C') -> numpy.ndarray\n\nA new array in "           \
     "a new allocation, freed when the array and every view of it are gone (needs numpy)."},             \
    {"ndarray_at", (PyCFunction)(void (*)(void))heap_ndarray_at, METH_VARARGS | METH_KEYWORDS,            \
     "ndarray_at(offset, shape, dtype=float) -> numpy.ndarray\n\nAn array over the live allocation "       \
     "at offset, which it does not own; it must fit the allocation (needs numpy)."},                    \
    {"close", (PyCFunction)heap_close, METH_NOARGS,                                                       \
     "close()\n\nRelease the memory and the control structure. Idempotent; BufferError "                  \
     "while views, Blocks not freed or a numpy handler's arrays are alive (the heap stays open)."},      \
    {"__enter__", (PyCFunction)heap_enter, METH_NOARGS, NULL},                                            \
    {"__exit__", (PyCFunction)(void (*)(void))heap_exit, METH_FASTCALL, NULL}

#define HEAP_SHARED_GETSET                                                                          \
    {"sl_len", (getter)heap_get_sl_len, NULL, "Second-level lists per first-level class.", NULL},   \
    {"closed", (getter)heap_get_closed, NULL, "True once close() has succeeded.", NULL}

#endif

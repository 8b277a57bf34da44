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
HIDDEN PyObject *heap_allocation_of(HeapObject *self, PyObject *block);
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

/* The docstrings begin with the text signature (`name($self, ...)\n--\n\n`),
 * which inspect.signature reads: it must say what the argument parsing
 * accepts (args.h: every parameter of bind_args may be given by keyword) and
 * match the twin's (tests/test_introspection.py checks both). A default must be
 * a literal there: ndarray's dtype is None, numpy's float64, which is what
 * tlsf.numpy's default, float, gives too. */
#define HEAP_SHARED_METHODS                                                                               \
    {"alloc", FASTCALL_KW(heap_alloc), METH_FASTCALL | METH_KEYWORDS,                                     \
     "alloc($self, /, size, align=1)\n--\n\n"                                                             \
     "Allocate size bytes aligned to align (a power of two); return the payload offset (an int). "       \
     "OutOfMemoryError if nothing fits."},                                                                \
    {"free", FASTCALL_KW(heap_free), METH_FASTCALL | METH_KEYWORDS,                                       \
     "free($self, /, offset)\n--\n\n"                                                                     \
     "Free the allocation at offset. InvalidOffsetError if it is not live."},                             \
    {"realloc", FASTCALL_KW(heap_realloc), METH_FASTCALL | METH_KEYWORDS,                                 \
     "realloc($self, /, offset, size)\n--\n\n"                                                            \
     "Resize an allocation, keeping its contents and alignment; return its (possibly new) offset. "      \
     "On failure the allocation is untouched."},                                                          \
    {"usable_size", FASTCALL_KW(heap_usable_size), METH_FASTCALL | METH_KEYWORDS,                         \
     "usable_size($self, /, offset)\n--\n\n"                                                              \
     "Bytes usable at the live allocation at offset (an int)."},                                          \
    {"alloc_many", FASTCALL_KW(heap_alloc_many), METH_FASTCALL | METH_KEYWORDS,                           \
     "alloc_many($self, /, sizes, align=1)\n--\n\n"                                                       \
     "Allocate every size in sizes (an iterable or a buffer of integers), all aligned to align; all or "  \
     "nothing. Return the offsets as an array.array('q') (signed 64-bit), or as an int64 "               \
     "numpy.ndarray when sizes is a numpy.ndarray."},                                                     \
    {"free_many", FASTCALL_KW(heap_free_many), METH_FASTCALL | METH_KEYWORDS,                             \
     "free_many($self, /, offsets)\n--\n\n"                                                               \
     "Free every offset in offsets (an iterable or a buffer of integers); all are validated before any "  \
     "is freed."},                                                                                        \
    {"stats", (PyCFunction)heap_stats, METH_NOARGS,                                                       \
     "stats($self, /)\n--\n\n"                                                                            \
     "Return the heap's statistics, a tlsf.Stats (O(1))."},                                               \
    {"walk", (PyCFunction)heap_walk, METH_NOARGS,                                                         \
     "walk($self, /)\n--\n\n"                                                                             \
     "Return an iterator of tlsf.BlockInfo(offset, size, used): every block of every pool in address "   \
     "order. offset is where the block starts (its header) and size includes the header, so offset is "   \
     "not what alloc() returned: allocation_of(block) is (what free(), view() and usable_size() take)."}, \
    {"allocation_of", (PyCFunction)heap_allocation_of, METH_O,                                            \
     "allocation_of($self, block, /)\n--\n\n"                                                             \
     "The offset alloc() returned for block, a tlsf.BlockInfo of walk(): what free(), view() and "        \
     "usable_size() take (block.offset plus the block header's size); for a free block, the offset an "   \
     "allocation at its start would have. Arithmetic only: block is not looked up in the heap."},        \
    {"check", (PyCFunction)heap_check, METH_NOARGS,                                                       \
     "check($self, /)\n--\n\n"                                                                            \
     "Full invariant check; CorruptionError if the heap is inconsistent."},                               \
    {"view", FASTCALL_KW(heap_view), METH_FASTCALL | METH_KEYWORDS,                                       \
     "view($self, /, offset, size=None)\n--\n\n"                                                          \
     "A writable memoryview of the first size bytes (None: all usable bytes) of the live allocation at "  \
     "offset."},                                                                                          \
    {"block", FASTCALL_KW(heap_block), METH_FASTCALL | METH_KEYWORDS,                                     \
     "block($self, /, size, align=1)\n--\n\n"                                                             \
     "Allocate size bytes as a tlsf.Block, which frees itself (free(), `with`, or its last reference "    \
     "gone) and exports its bytes (memoryview(block))."},                                                 \
    {"ndarray", (PyCFunction)(void (*)(void))heap_ndarray, METH_VARARGS | METH_KEYWORDS,                  \
     "ndarray($self, /, shape, dtype=None, *, align=None, order='C')\n--\n\n"                             \
     "A new numpy.ndarray in a new allocation, freed when the array and every view of it are gone "       \
     "(tlsf.numpy.ndarray; needs numpy). dtype None: float64, as numpy's; align None: the dtype's "       \
     "alignment, at least 16."},                                                                          \
    {"ndarray_at", (PyCFunction)(void (*)(void))heap_ndarray_at, METH_VARARGS | METH_KEYWORDS,            \
     "ndarray_at($self, /, offset, shape, dtype=None)\n--\n\n"                                            \
     "A numpy.ndarray (C order) over the live allocation at offset, which it does not own; it must fit "  \
     "the allocation (tlsf.numpy.ndarray_at; needs numpy). dtype None: float64, as numpy's."}

/* close, __enter__ and __exit__; RELEASES: what closing does for the type (a sentence). */
#define HEAP_CLOSE_METHODS(RELEASES)                                                                      \
    {"close", (PyCFunction)heap_close, METH_NOARGS,                                                       \
     "close($self, /)\n--\n\n" RELEASES " Idempotent; BufferError while views, Blocks not freed or a "    \
     "numpy handler's arrays are alive (the heap stays open)."},                                          \
    {"__enter__", (PyCFunction)heap_enter, METH_NOARGS,                                                   \
     "__enter__($self, /)\n--\n\n"                                                                        \
     "Return the heap itself; the end of the `with` block closes it (__exit__)."},                        \
    {"__exit__", (PyCFunction)(void (*)(void))heap_exit, METH_FASTCALL,                                   \
     "__exit__($self, /, *exc)\n--\n\n"                                                                   \
     "close() the heap, with or without an exception (which is not suppressed: return None). "            \
     RELEASES " BufferError while views, Blocks not freed or a numpy handler's arrays are alive."}

#define HEAP_SHARED_GETSET                                                                          \
    {"sl_len", (getter)heap_get_sl_len, NULL, "Second-level lists per first-level class.", NULL},   \
    {"closed", (getter)heap_get_closed, NULL, "True once close() has succeeded.", NULL}

#endif

/*
 * block.c: tlsf._core.Block, one allocation of a heap as a Python object
 * that owns it (Heap.block), and the heap methods that make numpy arrays of
 * Blocks (Heap.ndarray, Heap.ndarray_at: tlsf/numpy.py, imported only when
 * they are called).
 *
 * A Block exports its bytes through the buffer protocol (memoryview(block),
 * numpy.frombuffer(block)) by the heap's exporters, which count as views of
 * the heap, so the heap cannot close under them. It frees its allocation on
 * free(), on a `with` block's exit, or when the last reference goes; free()
 * refuses while an exporter is alive, and since each holds a reference to
 * the block, the allocation outlives every memoryview and array over it.
 * Until it is freed the block also keeps the heap open (heap->blocks):
 * numpy.ndarray(shape, dtype, buffer=block) keeps the block itself as the
 * array's base and releases the buffer at once, so that array is safe for
 * as long as nobody calls free() explicitly.
 *
 * Invariants: `freed` once set stays set; a block not freed is counted in
 * heap->blocks; exports > 0 implies !freed and the heap open (close refuses
 * while heap->exports counts them). All under the GIL; the heap's memory is
 * reached under its lock as for views.
 */
#include "args.h"
#include "heap_methods.h"

#include <structmember.h>

typedef struct {
    PyObject_HEAD
    HeapObject *heap;
    uint64_t offset, size;
    Py_ssize_t exports;
    int freed;
    PyObject *weakrefs;
} BlockObject;

/* Frees the allocation unless it is already freed or the heap is closed (its
 * memory is gone with it): 0, or -1 with the heap's exception set. */
static int block_release(BlockObject *self)
{
    int rc;
    if (self->freed)
        return 0;
    /* Set first: a SharedHeap's call may wait for its lock without the GIL,
     * and meanwhile no other thread may free the block again or export it. */
    self->freed = 1;
    HeapObject *h = self->heap;
    h->blocks--;
    HEAP_CALL(h, rc, core_free(h, self->offset));
    if (rc == TLSF_OK || rc == RC_CLOSED)
        return 0;
    heap_error(h, rc, self->offset, NULL);
    return -1;
}

PyObject *heap_block(HeapObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    uint64_t size, align, offset;
    int align_cls, rc;
    if (size_align_args((PyObject *)self, "block", args, nargs, kwnames, &size, &align, &align_cls) < 0)
        return NULL;
    HEAP_CALL(self, rc, core_alloc(self, size, align, &offset));
    if (rc != TLSF_OK)
        return alloc_error(self, rc, size, align, -1);
    BlockObject *b = PyObject_GC_New(BlockObject, state_of((PyObject *)self)->BlockType);
    if (!b) {
        HEAP_CALL(self, rc, core_free(self, offset));
        return NULL;
    }
    Py_INCREF(self);
    self->blocks++;
    b->heap = self;
    b->offset = offset;
    b->size = size;
    b->exports = 0;
    b->freed = 0;
    b->weakrefs = NULL;
    PyObject_GC_Track(b);
    return (PyObject *)b;
}

/* The buffer's obj is a new exporter of the block's bytes (heap.c), counted
 * in `exports` for as long as it lives, which every memoryview and array
 * over the bytes keeps alive. */
static int block_getbuffer(BlockObject *self, Py_buffer *view, int flags)
{
    view->obj = NULL;
    if (self->freed) {
        PyErr_SetString(PyExc_ValueError, "block is freed");
        return -1;
    }
    PyObject *e = heap_exporter(self->heap, self->offset, self->size, (PyObject *)self, &self->exports);
    if (!e)
        return -1;
    int rc = PyObject_GetBuffer(e, view, flags); /* "heap is closed" when it is */
    Py_DECREF(e);
    return rc;
}

/* Nothing to release (the exporter counts itself), but the slot must exist:
 * numpy.frombuffer keeps a memoryview (and so the exporter) of an object
 * that has it, and only the object itself otherwise. */
static void block_releasebuffer(BlockObject *Py_UNUSED(self), Py_buffer *Py_UNUSED(view)) {}

static PyObject *block_free(BlockObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->exports) {
        PyErr_Format(PyExc_BufferError, "cannot free the block while views of it are alive (%zd export%s)",
                     self->exports, self->exports == 1 ? "" : "s");
        return NULL;
    }
    if (block_release(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *block_view(BlockObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyMemoryView_FromObject((PyObject *)self);
}

static PyObject *block_enter(BlockObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_INCREF(self);
    return (PyObject *)self;
}

static PyObject *block_exit(BlockObject *self, PyObject *const *Py_UNUSED(args), Py_ssize_t Py_UNUSED(nargs))
{
    return block_free(self, NULL);
}

static Py_ssize_t block_len(BlockObject *self) { return (Py_ssize_t)self->size; }

static PyObject *block_repr(BlockObject *self)
{
    return PyUnicode_FromFormat("<tlsf.Block offset=%llu size=%llu%s>", ULL(self->offset), ULL(self->size),
                                self->freed ? " freed" : "");
}

static PyObject *block_get_offset(BlockObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(self->offset);
}

static PyObject *block_get_size(BlockObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(self->size);
}

static PyObject *block_get_heap(BlockObject *self, void *Py_UNUSED(c))
{
    Py_INCREF(self->heap);
    return (PyObject *)self->heap;
}

static PyObject *block_get_freed(BlockObject *self, void *Py_UNUSED(c)) { return PyBool_FromLong(self->freed); }

/* No export can be alive here: each holds a reference to the block. */
static void block_dealloc(BlockObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    if (block_release(self) < 0) /* a corrupted heap: say so, as a finalizer would */
        PyErr_WriteUnraisable((PyObject *)self);
    Py_DECREF(self->heap);
    PyObject_GC_Del(self);
    Py_DECREF(tp);
}

/* Tracked by the garbage collector for cycles through the heap's memory
 * (memory -> block -> heap -> memory); no tp_clear: the memoryviews' own
 * clear releases the exports, and the heap is cleared as in any cycle. */
static int block_traverse(BlockObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->heap);
    return 0;
}

/* ------------------------------------------------------------- numpy arrays */

/* Heap.ndarray and Heap.ndarray_at: tlsf.numpy's functions of the same name,
 * with the heap first. */
static PyObject *call_numpy(const char *name, PyObject *heap, PyObject *args, PyObject *kwargs)
{
    PyObject *module = PyImport_ImportModule("tlsf.numpy");
    if (!module)
        return NULL;
    PyObject *f = PyObject_GetAttrString(module, name);
    Py_DECREF(module);
    if (!f)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject *all = PyTuple_New(n + 1), *r = NULL;
    if (all) {
        Py_INCREF(heap);
        PyTuple_SET_ITEM(all, 0, heap);
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_INCREF(PyTuple_GET_ITEM(args, i));
            PyTuple_SET_ITEM(all, i + 1, PyTuple_GET_ITEM(args, i));
        }
        r = PyObject_Call(f, all, kwargs);
        Py_DECREF(all);
    }
    Py_DECREF(f);
    return r;
}

PyObject *heap_ndarray(HeapObject *self, PyObject *args, PyObject *kwargs)
{
    return call_numpy("ndarray", (PyObject *)self, args, kwargs);
}

PyObject *heap_ndarray_at(HeapObject *self, PyObject *args, PyObject *kwargs)
{
    return call_numpy("ndarray_at", (PyObject *)self, args, kwargs);
}

/* ------------------------------------------------------------------ the type */

static PyMethodDef block_methods[] = {
    {"free", (PyCFunction)block_free, METH_NOARGS,
     "free($self, /)\n--\n\nFree the allocation now. Idempotent; BufferError while views of the block are "
     "alive."},
    {"view", (PyCFunction)block_view, METH_NOARGS,
     "view($self, /)\n--\n\nA writable memoryview of the block's bytes, as memoryview(block); it keeps the "
     "block alive."},
    {"__enter__", (PyCFunction)block_enter, METH_NOARGS,
     "__enter__($self, /)\n--\n\nReturn the block itself; the end of the `with` block frees it (__exit__)."},
    {"__exit__", (PyCFunction)(void (*)(void))block_exit, METH_FASTCALL,
     "__exit__($self, /, *exc)\n--\n\nfree() the block, with or without an exception (which is not "
     "suppressed: return None): its allocation goes back to the heap. BufferError while views of it are "
     "alive."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef block_getset[] = {
    {"offset", (getter)block_get_offset, NULL, "The allocation's payload offset in its heap.", NULL},
    {"size", (getter)block_get_size, NULL, "Bytes of the block (as asked for; its buffer's length).", NULL},
    {"heap", (getter)block_get_heap, NULL, "The heap it was allocated from.", NULL},
    {"freed", (getter)block_get_freed, NULL, "True once the allocation is freed.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef block_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(BlockObject, weakrefs), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot block_slots[] = {
    {Py_tp_dealloc, (void *)block_dealloc},
    {Py_tp_traverse, (void *)block_traverse},
    {Py_tp_repr, (void *)block_repr},
    {Py_tp_methods, block_methods},
    {Py_tp_getset, block_getset},
    {Py_tp_members, block_members},
    {Py_sq_length, (void *)block_len},
    {Py_bf_getbuffer, (void *)block_getbuffer},
    {Py_bf_releasebuffer, (void *)block_releasebuffer},
    {Py_tp_doc, (void *)"Block(*args, **kwargs)\n--\n\n"
                        "One allocation of a heap that frees itself, made by heap.block(size, align=1)\n"
                        "(calling the class raises TypeError).\n\n"
                        "Its bytes through the buffer protocol: memoryview(block), numpy.frombuffer(block).\n"
                        "Freed by free(), at the end of a `with` block, or when the last reference goes."},
    {0, NULL},
};

static PyType_Spec block_spec = {
    .name = "tlsf._core.Block",
    .basicsize = sizeof(BlockObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | TPFLAGS_FIXED
#ifdef Py_TPFLAGS_DISALLOW_INSTANTIATION
             | Py_TPFLAGS_DISALLOW_INSTANTIATION
#endif
    ,
    .slots = block_slots,
};

int block_add_type(PyObject *m, core_state *st)
{
    st->BlockType = new_type(m, &block_spec);
    if (!st->BlockType)
        return -1;
#ifndef Py_TPFLAGS_DISALLOW_INSTANTIATION
    st->BlockType->tp_new = NULL; /* made by Heap.block() only */
#endif
    return PyModule_AddType(m, st->BlockType);
}

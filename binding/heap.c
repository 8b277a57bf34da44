/*
 * heap.c: tlsf._core.Heap, the in-band engine (csrc/tlsf.h) over a Python
 * buffer, and _ViewExport, the exporter of its views. The pure-Python twin
 * (tlsf.pure) mirrors this file.
 *
 * Every core call runs under the heap's lock (HEAP_CALL), which also covers
 * the closed check, so a heap stays consistent when the C API calls it
 * without the GIL. Python code never runs under the lock; what only Python
 * touches (the view count, `owned`, the buffer) relies on the GIL.
 *
 * Re-entrancy: every argument is converted (which may run Python code that
 * uses, frees or closes this very heap) before the heap is looked at, and no
 * C pointer into heap state is kept across anything that may run Python code
 * (conversions, object allocation, which may trigger the GC and finalizers).
 */
#include "heap_methods.h"

#include <string.h>

#include <structmember.h>

#include "args.h"
#include "batch.h"
#include "errors.h"

/* ------------------------------------------------------------------ errors */

PyObject *heap_error(HeapObject *self, int rc, uint64_t offset, PyObject *bad)
{
    if (rc == RC_CLOSED)
        return closed_error(bad);
    return core_error((PyObject *)self, rc, offset, bad);
}

PyObject *alloc_error(HeapObject *self, int rc, uint64_t size, uint64_t align, Py_ssize_t item)
{
    if (rc != TLSF_ENOMEM)
        return heap_error(self, rc, 0, NULL);
    return oom_error((PyObject *)self, size, align, item);
}

uint64_t heap_bad_offset(PyObject *heap)
{
    HeapObject *self = (HeapObject *)heap;
    uint64_t where = TLSF_NIL;
    int rc;
    HEAP_CALL(self, rc, (where = tlsf_bad_offset(self->t), TLSF_OK));
    if (rc == TLSF_ECORRUPT && self->t) /* a broken SharedHeap: nothing writes it any more */
        where = tlsf_bad_offset(self->t);
    return where;
}

/* --------------------------------------------------------- hot path methods */

PyObject *heap_alloc(HeapObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    uint64_t size, align, out;
    int align_cls;
    int rc;
    if (UNLIKELY(size_align_args((PyObject *)self, "alloc", args, nargs, kwnames, &size, &align, &align_cls) < 0))
        return NULL;
    HEAP_CALL(self, rc, core_alloc(self, size, align, &out));
    if (LIKELY(rc == TLSF_OK))
        return PyLong_FromLongLong((long long)out); /* < 2**58 */
    return alloc_error(self, rc, size, align, -1);
}

PyObject *heap_free(HeapObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    uint64_t offset;
    PyObject *bad = NULL;
    int rc;
    if (UNLIKELY(offset_arg((PyObject *)self, "free", args, nargs, kwnames, &offset, &bad) < 0))
        return NULL;
    HEAP_CALL(self, rc, core_free(self, offset));
    if (LIKELY(rc == TLSF_OK))
        Py_RETURN_NONE;
    return heap_error(self, rc, offset, bad);
}

PyObject *heap_usable_size(HeapObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    uint64_t offset, out;
    PyObject *bad = NULL;
    int rc;
    if (UNLIKELY(offset_arg((PyObject *)self, "usable_size", args, nargs, kwnames, &offset, &bad) < 0))
        return NULL;
    HEAP_CALL(self, rc, tlsf_usable_size(self->t, self->base, offset, &out));
    if (LIKELY(rc == TLSF_OK))
        return PyLong_FromLongLong((long long)out);
    return heap_error(self, rc, offset, bad);
}

PyObject *heap_realloc(HeapObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *bad = NULL;
    uint64_t offset, size, out;
    int rc;
    if (offset_size_args((PyObject *)self, "realloc", args, nargs, kwnames, &offset, &bad, &size) < 0)
        return NULL;
    HEAP_CALL(self, rc, core_realloc(self, offset, size, &out));
    if (LIKELY(rc == TLSF_OK))
        return PyLong_FromLongLong((long long)out);
    if (rc == TLSF_ENOMEM) {
        PyObject *oom = state_of((PyObject *)self)->OutOfMemoryError;
        Py_XDECREF(bad);
        if (size == UINT64_MAX)
            PyErr_Format(oom, "cannot reallocate offset %llu to 2**64-1 bytes or more", ULL(offset));
        else
            PyErr_Format(oom, "cannot reallocate offset %llu to %llu bytes", ULL(offset), ULL(size));
        return NULL;
    }
    return heap_error(self, rc, offset, bad);
}

/* ------------------------------------------------------------------- pools */

/* The message of ERANGE from insert/append_free_block. big_offset, big_size:
 * the ints given when beyond uint64_t (consumed), else NULL. */
static PyObject *range_error(HeapObject *self, uint64_t offset, uint64_t size, int append,
                             PyObject *big_offset, PyObject *big_size)
{
    uint64_t cap = self->capacity;
    if (big_offset || big_size || offset > cap || size > cap - offset) {
        /* In Python ints: offset + size may not fit in 64 bits. */
        PyObject *o = big_offset ? big_offset : PyLong_FromUnsignedLongLong(offset);
        PyObject *n = big_size ? big_size : PyLong_FromUnsignedLongLong(size);
        PyObject *e = o && n ? PyNumber_Add(o, n) : NULL;
        if (e)
            PyErr_Format(PyExc_ValueError, "range [%S, %S) is outside memory of %llu bytes", o, e, ULL(cap));
        Py_XDECREF(o);
        Py_XDECREF(n);
        Py_XDECREF(e);
        return NULL;
    }
    if (!append) {
        uint64_t start = (offset + TLSF_GRANULARITY - 1) & ~(uint64_t)(TLSF_GRANULARITY - 1);
        uint64_t end = (offset + size) & ~(uint64_t)(TLSF_GRANULARITY - 1);
        PyErr_Format(PyExc_ValueError, "range [%llu, %llu) overlaps a pool", ULL(start), ULL(end));
        return NULL;
    }
    /* Appending nothing changes nothing and fails only when no pool ends at offset. */
    uint64_t taken;
    int rc;
    HEAP_CALL(self, rc, tlsf_append_free_block(self->t, self->base, offset, 0, &taken));
    if (rc == TLSF_OK) {
        uint64_t end = offset + (size & ~(uint64_t)(TLSF_GRANULARITY - 1));
        PyErr_Format(PyExc_ValueError, "range [%llu, %llu) overlaps the next pool", ULL(offset), ULL(end));
    } else {
        PyErr_Format(PyExc_ValueError, "no pool ends at offset %llu", ULL(offset));
    }
    return NULL;
}

static PyObject *pool_op(HeapObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                         int append)
{
    PyObject *big_offset, *big_size;
    uint64_t offset, size, taken = 0;
    const char *fname = append ? "append_free_block" : "insert_free_block";
    int rc;
    if (range_args((PyObject *)self, fname, args, nargs, kwnames, &offset, &size, &big_offset, &big_size) < 0)
        return NULL;
    /* A huge value is passed as UINT64_MAX, which the core refuses as outside memory. */
    HEAP_CALL(self, rc, append ? tlsf_append_free_block(self->t, self->base, offset, size, &taken)
                               : tlsf_insert_free_block(self->t, self->base, offset, size, &taken));
    if (rc == RC_CLOSED) {
        Py_XDECREF(big_offset);
        return closed_error(big_size);
    }
    if (rc == TLSF_OK)
        return PyLong_FromUnsignedLongLong(taken);
    if (rc == TLSF_ERANGE)
        return range_error(self, offset, size, append, big_offset, big_size);
    Py_XDECREF(big_offset);
    Py_XDECREF(big_size);
    return core_error((PyObject *)self, rc, offset, NULL);
}

static PyObject *heap_insert_free_block(HeapObject *self, PyObject *const *args, Py_ssize_t nargs,
                                        PyObject *kwnames)
{
    return pool_op(self, args, nargs, kwnames, 0);
}

static PyObject *heap_append_free_block(HeapObject *self, PyObject *const *args, Py_ssize_t nargs,
                                        PyObject *kwnames)
{
    return pool_op(self, args, nargs, kwnames, 1);
}

/* ------------------------------------------------------------------- batch */

PyObject *heap_alloc_many(HeapObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *res;
    Py_buffer items;
    uint64_t align;
    size_t failed = 0;
    batch_t b;
    int rc;
    if (alloc_many_args((PyObject *)self, args, nargs, kwnames, 0, &b, &align, &res, &items) < 0)
        return NULL;
    HEAP_CALL(self, rc, core_alloc_many(self, b.v, b.n, align, items.buf, &failed));
    if (rc != TLSF_OK)
        alloc_error(self, rc, rc == TLSF_ENOMEM ? b.v[failed] : 0, align, (Py_ssize_t)failed);
    return alloc_many_result(rc, res, &items, &b);
}

PyObject *heap_free_many(HeapObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    size_t bad = 0;
    batch_t b;
    int rc;
    if (free_many_args((PyObject *)self, args, nargs, kwnames, &b) < 0)
        return NULL;
    HEAP_CALL(self, rc, core_free_many(self, b.v, b.n, &bad));
    if (rc == RC_CLOSED) {
        batch_clear(&b);
        return closed_error(NULL);
    }
    return free_many_result((PyObject *)self, &b, rc, bad);
}

/* -------------------------------------------------------------- inspection */

PyObject *heap_stats(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    tlsf_stats_t s;
    int rc;
    HEAP_CALL(self, rc, tlsf_stats(self->t, self->base, &s));
    if (rc)
        return heap_error(self, rc, 0, NULL);
    return stats_object((PyObject *)self, &s);
}

PyObject *heap_walk(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    tlsf_stats_t s;
    blocks_t b;
    int rc;
    memset(&s, 0, sizeof s);
    /* a size hint: the counters are filled even on error */
    HEAP_CALL(self, rc, tlsf_stats(self->t, self->base, &s));
    if (rc == RC_CLOSED)
        return closed_error(NULL);
    if (blocks_init(&b, &s) < 0)
        return NULL;
    /* collect_block makes no Python object: it may hold the lock */
    HEAP_CALL(self, rc, tlsf_walk(self->t, self->base, collect_block, &b));
    if (rc == RC_CLOSED) {
        PyMem_RawFree(b.v);
        return closed_error(NULL);
    }
    return blocks_iter((PyObject *)self, &b, rc);
}

PyObject *heap_allocation_of(HeapObject *self, PyObject *block)
{
    return block_allocation((PyObject *)self, block, TLSF_HEADER_SIZE);
}

PyObject *heap_check(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    char msg[512] = ""; /* a broken SharedHeap is ECORRUPT without a check */
    int rc;
    HEAP_CALL(self, rc, tlsf_check(self->t, self->base, msg, sizeof msg));
    if (rc == RC_CLOSED)
        return closed_error(NULL);
    return check_result((PyObject *)self, rc, msg);
}

/* -------------------------------------------------------------------- views */

/* view() and Block hand out buffers whose obj is this private exporter, one
 * per view or Block export. Each is counted in the heap's `exports` (and its
 * Block's) from its creation to its deallocation, not only while a buffer of
 * it is held: numpy's ndarray(shape, dtype, buffer) keeps the buffer's obj as
 * the array's base and releases the buffer at once, so the exporter is what
 * outlives every memoryview and array over the bytes. close() (and
 * Block.free()) refuse while any is alive. Each exporter holds a reference to
 * the heap (and to its Block), so they, and the memory the heap pins,
 * outlive it. */
typedef struct {
    PyObject_HEAD
    HeapObject *heap;
    uint64_t offset, size;
    PyObject *owner;           /* the Block whose bytes these are, or NULL */
    Py_ssize_t *owner_exports; /* the Block's count of exporters */
} ExportObject;

static int export_getbuffer(ExportObject *self, Py_buffer *view, int flags)
{
    HeapObject *h = self->heap;
    uint8_t *base;
    tlsf_lock(&h->lock);
    base = heap_memory_open(h) ? h->base : NULL;
    tlsf_unlock(&h->lock);
    if (!base) {
        view->obj = NULL;
        PyErr_SetString(PyExc_ValueError, "heap is closed");
        return -1;
    }
    return PyBuffer_FillInfo(view, (PyObject *)self, base + self->offset, (Py_ssize_t)self->size, 0, flags);
}

/* Tracked by the garbage collector, so that a cycle running through a view
 * (memory -> view -> exporter -> heap -> memory) is seen and freed; there is
 * no tp_clear: the memoryview's own clear drops the exporter. */
static int export_traverse(ExportObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self)); /* a heap type */
    Py_VISIT(self->heap);
    Py_VISIT(self->owner);
    return 0;
}

static void export_dealloc(ExportObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    self->heap->exports--; /* under the GIL, as close() that reads it */
    if (self->owner_exports)
        (*self->owner_exports)--;
    Py_XDECREF(self->owner);
    Py_DECREF(self->heap);
    PyObject_GC_Del(self);
    Py_DECREF(tp);
}

static PyType_Slot export_slots[] = {
    {Py_tp_dealloc, (void *)export_dealloc},
    {Py_tp_traverse, (void *)export_traverse},
    {Py_bf_getbuffer, (void *)export_getbuffer},
    {Py_tp_doc, (void *)"Exports the bytes of one allocation to a view (Heap.view) or a Block's buffer."},
    {0, NULL},
};

static PyType_Spec export_spec = {
    .name = "tlsf._core._ViewExport",
    .basicsize = sizeof(ExportObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | TPFLAGS_FIXED
#ifdef Py_TPFLAGS_DISALLOW_INSTANTIATION
             | Py_TPFLAGS_DISALLOW_INSTANTIATION
#endif
    ,
    .slots = export_slots,
};

PyObject *heap_exporter(HeapObject *self, uint64_t offset, uint64_t size, PyObject *owner, Py_ssize_t *owner_exports)
{
    ExportObject *e = PyObject_GC_New(ExportObject, state_of((PyObject *)self)->ExportType);
    if (!e)
        return NULL;
    Py_INCREF(self);
    e->heap = self;
    e->offset = offset;
    e->size = size;
    Py_XINCREF(owner);
    e->owner = owner;
    e->owner_exports = owner_exports;
    self->exports++;
    if (owner_exports)
        (*owner_exports)++;
    PyObject_GC_Track(e);
    return (PyObject *)e;
}

PyObject *heap_view(HeapObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[2], *bad = NULL, *bad_size = NULL;
    uint64_t offset, size = 0, usable;
    int size_cls = ARG_IN, rc;
    if (bind_args((PyObject *)self, "view", args, nargs, kwnames, PARAMS(KW_OFFSET, KW_SIZE), 1, 2, a) < 0)
        return NULL;
    if (as_offset(a[0], &offset, &bad) < 0)
        return NULL;
    if (a[1] && a[1] != Py_None && (size_cls = as_u64(a[1], &size, &bad_size)) < 0) {
        Py_XDECREF(bad);
        return NULL;
    }
    HEAP_CALL(self, rc, tlsf_usable_size(self->t, self->base, offset, &usable));
    if (rc) {
        Py_XDECREF(bad_size);
        return heap_error(self, rc, offset, bad);
    }
    if (!a[1] || a[1] == Py_None) {
        size = usable;
    } else if (size_cls != ARG_IN) {
        PyErr_Format(PyExc_ValueError, "view size %S outside 0..%llu (the usable size)", bad_size, ULL(usable));
        Py_DECREF(bad_size);
        return NULL;
    } else if (size > usable) {
        PyErr_Format(PyExc_ValueError, "view size %llu outside 0..%llu (the usable size)", ULL(size), ULL(usable));
        return NULL;
    }
    return heap_export(self, offset, size);
}

PyObject *heap_export(HeapObject *self, uint64_t offset, uint64_t size)
{
    PyObject *e = heap_exporter(self, offset, size, NULL, NULL);
    if (!e)
        return NULL;
    PyObject *mv = PyMemoryView_FromObject(e);
    Py_DECREF(e);
    return mv;
}

/* -------------------------------------------------------------- life cycle */

/* Frees everything but `owned`; marks the heap closed first, since releasing
 * the buffer may run Python code (an exporter written in Python). With
 * refuse_held (close()), releases nothing and returns -1 while C API holds
 * are live: they are taken without the GIL, so they are read under the lock
 * in the step that marks the heap closed. */
static int heap_release(HeapObject *self, int refuse_held)
{
    if (self->shared) /* the image stays: other processes use it */
        return shared_release(self, refuse_held);
    tlsf_lock(&self->lock);
    if (refuse_held && self->holds) {
        tlsf_unlock(&self->lock);
        return -1;
    }
    tlsf_t *t = self->t;
    if (t)
        tlsf_fini(t, self->base); /* unpoisons the arena in -DTLSF_POISON builds */
    self->t = NULL;
    self->base = NULL;
    tlsf_unlock(&self->lock);
    if (self->flex) {
        flex_release(self);
        return 0;
    }
    PyMem_Free(t);
    if (self->buf.obj)
        PyBuffer_Release(&self->buf); /* sets buf.obj to NULL */
    return 0;
}

PyObject *heap_close(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->t)
        Py_RETURN_NONE;
    if (self->exports) {
        PyErr_Format(PyExc_BufferError, "cannot close the heap while views of it are alive (%zd export%s)",
                     self->exports, self->exports == 1 ? "" : "s");
        return NULL;
    }
    if (self->blocks) {
        PyErr_Format(PyExc_BufferError, "cannot close the heap while blocks of it are not freed (%zd block%s)",
                     self->blocks, self->blocks == 1 ? "" : "s");
        return NULL;
    }
    if (heap_release(self, 1) < 0) {
        PyErr_SetString(PyExc_BufferError,
                        "cannot close the heap while arrays use its memory (live allocations of a numpy handler)");
        return NULL;
    }
    PyObject *owned = self->owned;
    self->owned = NULL;
    if (owned && !PyByteArray_Check(owned)) { /* the mmap: unmapped now, not when collected */
        PyObject *r = PyObject_CallMethod(owned, "close", NULL);
        Py_DECREF(owned);
        if (!r)
            return NULL;
        Py_DECREF(r);
    } else {
        Py_XDECREF(owned);
    }
    Py_RETURN_NONE;
}

/* The heap takes part in garbage collection: its memory may refer back to it
 * (a bytearray subclass with the heap in an attribute, an object holding
 * both), and such a cycle must be freed. */
int heap_traverse(HeapObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self)); /* a heap type */
    Py_VISIT(self->buf.obj);
    Py_VISIT(self->owned);
    return 0;
}

/* Breaks a cycle through the memory, as close() would; while views are alive
 * nothing is released (their memoryviews are garbage too, and releasing them
 * lets a later collection finish the job). */
int heap_clear(HeapObject *self)
{
    if (self->exports)
        return 0;
    (void)heap_release(self, 0);
    Py_CLEAR(self->owned);
    return 0;
}

void heap_dealloc(HeapObject *self)
{
    PyObject_GC_UnTrack(self);
    /* No view can be alive: each holds a reference to the heap. */
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    (void)heap_release(self, 0);
    Py_CLEAR(self->owned);
    PyTypeObject *tp = Py_TYPE(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *heap_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"memory", "sl_len", "pool", NULL};
    PyObject *memory, *sl_obj = NULL, *bad = NULL;
    int pool = 1;
    unsigned sl_len;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$Op:Heap", kwlist, &memory, &sl_obj, &pool))
        return NULL;
    if (as_sl_len(sl_obj, &sl_len) < 0)
        return NULL;

    HeapObject *self = (HeapObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    lock_init(&self->lock);
    self->sl_len = sl_len;

    int is_size = is_size_arg(memory);
    if (is_size < 0)
        goto fail;
    if (is_size) { /* that many bytes of anonymous memory, owned */
        uint64_t n;
        int cls = as_u64(memory, &n, &bad);
        if (cls < 0)
            goto fail;
        if (cls == ARG_NEG) {
            PyErr_Format(PyExc_ValueError, "memory size must be >= 0, not %S", bad);
            goto fail;
        }
        if (cls == ARG_HUGE || n > TLSF_MAX_CAPACITY || n > (uint64_t)PY_SSIZE_T_MAX) {
            PyErr_Format(PyExc_ValueError, "memory of %S bytes exceeds the largest capacity, 2**58",
                         bad ? bad : memory);
            goto fail;
        }
        if (!(self->owned = n ? anonymous_memory(n) : PyByteArray_FromStringAndSize(NULL, 0)))
            goto fail;
        memory = self->owned;
    }

    if (!PyObject_CheckBuffer(memory)) {
        PyErr_Format(PyExc_TypeError, "memory must be a writable buffer or an int, not %.200s",
                     Py_TYPE(memory)->tp_name);
        goto fail;
    }
    /* Writable is asked for, so that no exporter hands out a read-only copy.
     * Exporters refuse it with different exceptions (numpy: ValueError), so a
     * read-only request tells what is wrong: read-only is a TypeError. */
    if (PyObject_GetBuffer(memory, &self->buf, PyBUF_FULL) < 0) {
        PyObject *et, *ev, *tb;
        Py_buffer probe;
        PyErr_Fetch(&et, &ev, &tb);
        if (PyObject_GetBuffer(memory, &probe, PyBUF_FULL_RO) < 0) {
            PyErr_Clear();
            PyErr_Restore(et, ev, tb);
            goto fail;
        }
        int readonly = probe.readonly;
        PyBuffer_Release(&probe);
        if (readonly) {
            Py_XDECREF(et);
            Py_XDECREF(ev);
            Py_XDECREF(tb);
            PyErr_SetString(PyExc_TypeError, "memory must be a writable buffer, not read-only");
        } else {
            PyErr_Restore(et, ev, tb);
        }
        goto fail;
    }
    if (self->buf.readonly) {
        PyErr_SetString(PyExc_TypeError, "memory must be a writable buffer, not read-only");
        goto fail;
    }
    if (!PyBuffer_IsContiguous(&self->buf, 'C')) {
        PyErr_SetString(PyExc_ValueError, "memory must be C-contiguous");
        goto fail;
    }
    if (!plain_data_format(self->buf.format)) {
        PyErr_Format(PyExc_TypeError, "memory must hold plain data, not object references or pointers "
                     "(buffer format '%s')", self->buf.format);
        goto fail;
    }
    self->capacity = (uint64_t)self->buf.len;
    if (self->capacity > TLSF_MAX_CAPACITY) {
        PyErr_Format(PyExc_ValueError, "memory of %llu bytes exceeds the largest capacity, 2**58",
                     ULL(self->capacity));
        goto fail;
    }
    size_t control = tlsf_control_size(self->capacity, self->sl_len);
    if (!control) {
        PyErr_Format(PyExc_ValueError, SL_LEN_ERROR ", not %u", self->sl_len);
        goto fail;
    }
    tlsf_t *t = PyMem_Malloc(control); /* 8-byte aligned, as tlsf_init needs */
    if (!t) {
        PyErr_NoMemory();
        goto fail;
    }
    int rc = tlsf_init(t, self->capacity, self->sl_len);
    uint64_t taken;
    if (rc == TLSF_OK && pool)
        rc = tlsf_insert_free_block(t, (uint8_t *)self->buf.buf, 0, self->capacity, &taken);
    if (rc) {
        PyMem_Free(t);
        core_error((PyObject *)self, rc, 0, NULL);
        goto fail;
    }
    tlsf_lock(&self->lock);
    self->t = t;
    self->base = (uint8_t *)self->buf.buf;
    tlsf_unlock(&self->lock);
    Py_XDECREF(bad);
    return (PyObject *)self;

fail:
    Py_XDECREF(bad);
    Py_DECREF(self); /* heap_dealloc frees what was made */
    return NULL;
}

PyObject *heap_enter(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_INCREF(self);
    return (PyObject *)self;
}

PyObject *heap_exit(HeapObject *self, PyObject *const *Py_UNUSED(args), Py_ssize_t Py_UNUSED(nargs))
{
    return heap_close(self, NULL);
}

static PyObject *heap_repr(HeapObject *self)
{
    tlsf_stats_t s;
    int rc;
    memset(&s, 0, sizeof s);
    HEAP_CALL(self, rc, tlsf_stats(self->t, self->base, &s)); /* the counters are filled even on error */
    if (rc == RC_CLOSED)
        return PyUnicode_FromFormat("<tlsf.Heap capacity=%llu sl_len=%u closed>", ULL(self->capacity),
                                    self->sl_len);
    return PyUnicode_FromFormat("<tlsf.Heap capacity=%llu sl_len=%u allocations=%llu>", ULL(self->capacity),
                                self->sl_len, ULL(s.allocations));
}

PyObject *heap_get_capacity(HeapObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(self->capacity);
}

PyObject *heap_get_sl_len(HeapObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLong(self->sl_len);
}

PyObject *heap_get_closed(HeapObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->t == NULL);
}

static PyMethodDef heap_methods[] = {
    HEAP_SHARED_METHODS,
    HEAP_CLOSE_METHODS("Release the buffer the heap pins (or unmap the memory it owns) and its control "
                       "structure."),
    {"insert_free_block", FASTCALL_KW(heap_insert_free_block), METH_FASTCALL | METH_KEYWORDS,
     "insert_free_block($self, /, offset, size)\n--\n\nMake [offset, offset+size) a new pool; "
     "return the bytes taken (0 if too small)."},
    {"append_free_block", FASTCALL_KW(heap_append_free_block), METH_FASTCALL | METH_KEYWORDS,
     "append_free_block($self, /, offset, size)\n--\n\nGrow the pool that ends at offset by size bytes; "
     "return the bytes added."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef heap_getset[] = {
    {"capacity", (getter)heap_get_capacity, NULL, "Size of the memory in bytes.", NULL},
    HEAP_SHARED_GETSET,
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef heap_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(HeapObject, weakrefs), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot heap_slots[] = {
    {Py_tp_dealloc, (void *)heap_dealloc},
    {Py_tp_repr, (void *)heap_repr},
    {Py_tp_traverse, (void *)heap_traverse},
    {Py_tp_clear, (void *)heap_clear},
    {Py_tp_free, (void *)PyObject_GC_Del},
    {Py_tp_doc, (void *)"Heap(memory, *, sl_len=32, pool=True)\n--\n\n"
                        "A TLSF heap over memory: a writable C-contiguous buffer, or an int\n"
                        "(that many bytes of anonymous memory owned by the heap)."},
    {Py_tp_members, heap_members},
    {Py_tp_methods, heap_methods},
    {Py_tp_getset, heap_getset},
    {Py_tp_new, (void *)heap_new},
    {0, NULL},
};

static PyType_Spec heap_spec = {
    .name = "tlsf._core.Heap",
    .basicsize = sizeof(HeapObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | TPFLAGS_FIXED,
    .slots = heap_slots,
};

int is_heap(PyObject *o)
{
    destructor d = Py_TYPE(o)->tp_dealloc;
    return d == (destructor)heap_dealloc || d == (destructor)flex_dealloc || d == (destructor)shared_dealloc;
}

int heap_add_types(PyObject *m, core_state *st)
{
    st->ExportType = (PyTypeObject *)PyType_FromModuleAndSpec(m, &export_spec, NULL);
    if (!st->ExportType)
        return -1;
#ifndef Py_TPFLAGS_DISALLOW_INSTANTIATION
    st->ExportType->tp_new = NULL; /* made by view() only */
#endif
    st->HeapType = new_type(m, &heap_spec);
    if (!st->HeapType)
        return -1;
    return PyModule_AddType(m, st->HeapType);
}


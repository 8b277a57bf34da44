/*
 * errors.c: what both types make of what their cores report: the exceptions
 * of the result codes, and the objects of stats(), walk() and check().
 */
#include "errors.h"

#include <string.h>

#include "heap.h"

NOINLINE PyObject *closed_error(PyObject *bad)
{
    Py_XDECREF(bad);
    PyErr_SetString(PyExc_ValueError, "heap is closed");
    return NULL;
}

/* Where the core of self (a Heap or an OffsetAllocator) last found
 * corruption: only the in-band engine knows. */
static uint64_t bad_offset_of(PyObject *self)
{
    return is_heap(self) ? heap_bad_offset(self) : TLSF_NIL;
}

/* Raises the exception of core result `rc` of self's core (either engine); the
 * messages of ENOMEM, EINVAL and ERANGE are the callers'. bad: a kept
 * out-of-range offset (consumed). */
NOINLINE PyObject *core_error(PyObject *self, int rc, uint64_t offset, PyObject *bad)
{
    core_state *st = state_of(self);
    switch (rc) {
    case TLSF_ENOMEM:
        PyErr_SetString(st->OutOfMemoryError, tlsf_strerror(rc));
        break;
    case TLSF_EINVAL:
        if (bad)
            PyErr_Format(st->InvalidOffsetError, "offset %S is not a live allocation", bad);
        else
            PyErr_Format(st->InvalidOffsetError, "offset %llu is not a live allocation", ULL(offset));
        break;
    case TLSF_ECORRUPT: {
        uint64_t where = bad_offset_of(self);
        if (where == TLSF_NIL)
            PyErr_SetString(st->CorruptionError, tlsf_strerror(rc));
        else
            PyErr_Format(st->CorruptionError, "%s at offset %llu", tlsf_strerror(rc), ULL(where));
        break;
    }
    case TLSF_ENOMETA:
        PyErr_NoMemory();
        break;
    case RC_NO_LOCK:
        PyErr_SetString(st->CorruptionError, "the shared heap's lock is unusable (its segment was overwritten?)");
        break;
    default: /* ERANGE, EALIGN, and codes this binding does not know */
        PyErr_SetString(PyExc_ValueError, tlsf_strerror(rc));
        break;
    }
    Py_XDECREF(bad);
    return NULL;
}

/* OutOfMemoryError for size bytes aligned to align, which nothing can hold;
 * item >= 0 names the item of alloc_many. Sizes beyond uint64_t come as
 * UINT64_MAX and alignments beyond it as 2**63 (args.h), so these two read
 * "or more". The twin words it the same (tlsf/pure/args.py: oom). */
NOINLINE PyObject *oom_error(PyObject *self, uint64_t size, uint64_t align, Py_ssize_t item)
{
    PyObject *oom = state_of(self)->OutOfMemoryError;
    char at[48] = "";
    if (item >= 0)
        PyOS_snprintf(at, sizeof at, " (item %zd)", item);
    if (size == UINT64_MAX)
        PyErr_Format(oom, "cannot allocate 2**64-1 bytes or more%s", at);
    else if (align == (uint64_t)1 << 63)
        PyErr_Format(oom, "cannot allocate %llu bytes aligned to 2**63 or more%s", ULL(size), at);
    else
        PyErr_Format(oom, "cannot allocate %llu bytes aligned to %llu%s", ULL(size), ULL(align), at);
    return NULL;
}

/* A tlsf.Stats of core statistics s (copied out of the core first: building
 * the ints may run the GC, hence any code). */
PyObject *stats_object(PyObject *self, const tlsf_stats_t *s)
{
    core_state *st = state_of(self);
    uint64_t v[5] = {s->allocated_bytes, s->free_bytes, s->largest_free, s->allocations, s->free_blocks};
    PyObject *items[5] = {NULL, NULL, NULL, NULL, NULL}, *res = NULL;
    for (int i = 0; i < 5; i++)
        if (!(items[i] = PyLong_FromUnsignedLongLong(v[i])))
            goto done;
    res = PyObject_Vectorcall(st->StatsType, items, 5, NULL);
done:
    for (int i = 0; i < 5; i++)
        Py_XDECREF(items[i]);
    return res;
}

/* Room for the blocks that stats s count (a hint, capped; collect_block grows it). */
int blocks_init(blocks_t *b, const tlsf_stats_t *s)
{
    uint64_t n = s->allocations + s->free_blocks;
    b->n = 0;
    b->cap = (size_t)(n < 1u << 20 ? n : 1u << 20);
    b->v = NULL;
    if (b->cap && !(b->v = PyMem_RawMalloc(b->cap * sizeof *b->v))) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* Only collects: no Python object is made while the core walks the heap, as
 * the GC could run a finalizer that frees into it or closes it; and the
 * buffer is raw memory, as a SharedHeap walks without the GIL when it waited
 * for its lock. */
int collect_block(uint64_t offset, uint64_t size, int used, void *ctx)
{
    blocks_t *b = ctx;
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 16;
        block_t *v = PyMem_RawRealloc(b->v, cap * sizeof *v);
        if (!v)
            return WALK_NOMEM;
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n].offset = offset;
    b->v[b->n].size = size;
    b->v[b->n].used = used;
    b->n++;
    return 0;
}

/* What walk() returns once the core's walk (result rc) has collected b: an
 * iterator of tlsf.BlockInfo, or the exception. Frees b. */
PyObject *blocks_iter(PyObject *self, blocks_t *b, int rc)
{
    core_state *st = state_of(self);
    PyObject *list = NULL, *it = NULL;
    if (rc) {
        if (rc == WALK_NOMEM)
            PyErr_NoMemory();
        else
            core_error(self, rc, 0, NULL);
        goto done;
    }
    if (!(list = PyList_New((Py_ssize_t)b->n)))
        goto done;
    for (size_t i = 0; i < b->n; i++) {
        PyObject *items[3];
        items[0] = PyLong_FromUnsignedLongLong(b->v[i].offset);
        items[1] = PyLong_FromUnsignedLongLong(b->v[i].size);
        items[2] = PyBool_FromLong(b->v[i].used);
        PyObject *info = items[0] && items[1] ? PyObject_Vectorcall(st->BlockInfoType, items, 3, NULL) : NULL;
        for (int k = 0; k < 3; k++)
            Py_XDECREF(items[k]);
        if (!info)
            goto done;
        PyList_SET_ITEM(list, (Py_ssize_t)i, info);
    }
    it = PyObject_GetIter(list);
done:
    PyMem_RawFree(b->v);
    b->v = NULL;
    Py_XDECREF(list);
    return it;
}

/* allocation_of(block) of self: the offset alloc() returned for a block that
 * walk() listed, a tlsf.BlockInfo: its offset plus `header`, the size of the
 * block header of self's engine (0 for the out-of-band one). Arithmetic only:
 * the block is not looked up. The twin: tlsf/pure/args.py, allocation_of. */
PyObject *block_allocation(PyObject *self, PyObject *block, unsigned header)
{
    int ok = PyObject_IsInstance(block, state_of(self)->BlockInfoType);
    if (ok < 0)
        return NULL;
    if (!ok || PyTuple_GET_SIZE(block) < 1) { /* a BlockInfo is a tuple (a subclass could be empty) */
        PyErr_Format(PyExc_TypeError, "allocation_of() argument must be a tlsf.BlockInfo (from walk()), not %.200s",
                     Py_TYPE(block)->tp_name);
        return NULL;
    }
    PyObject *offset = PyNumber_Index(PyTuple_GET_ITEM(block, 0));
    if (!offset || !header)
        return offset;
    PyObject *h = PyLong_FromUnsignedLong(header);
    PyObject *r = h ? PyNumber_Add(offset, h) : NULL;
    Py_XDECREF(h);
    Py_DECREF(offset);
    return r;
}

/* What check() of self returns for core result rc and its message msg: None,
 * or the exception. */
PyObject *check_result(PyObject *self, int rc, const char *msg)
{
    if (rc == TLSF_OK)
        Py_RETURN_NONE;
    if (rc != TLSF_ECORRUPT || !msg[0])
        return core_error(self, rc, 0, NULL);
    core_state *st = state_of(self);
    uint64_t where = bad_offset_of(self);
    if (where == TLSF_NIL || strstr(msg, "at offset"))
        PyErr_SetString(st->CorruptionError, msg);
    else
        PyErr_Format(st->CorruptionError, "%s; at offset %llu", msg, ULL(where));
    return NULL;
}

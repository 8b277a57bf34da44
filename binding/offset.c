/*
 * offset.c: tlsf._core.OffsetAllocator, the out-of-band engine
 * (csrc/tlsf_offset.h). Every core call runs under the allocator's lock
 * (OA_CALL); Python code never runs under it.
 */
#include "args.h"
#include "batch.h"
#include "errors.h"
#include "lock.h"
#include "tlsf_offset.h"

#include <string.h>

#include <structmember.h>

/* ------------------------------------------------- OffsetAllocator: object */

/* tlsf._core.OffsetAllocator: TLSF over a range of offsets that the core never
 * touches (csrc/tlsf_offset.h). The core mallocs and grows its own metadata;
 * the object owns it for its whole life (no close(), so no closed state).
 * Arguments are converted as for Heap, all of them before the core is looked
 * at; what differs is that the managed space may reach 2**64 - 1 bytes, so
 * sizes and alignments beyond uint64_t are refused here (as_size, as_align)
 * and offsets and sizes may exceed 2**63. */
typedef struct {
    PyObject_HEAD
    tlsf_oa_t *a; /* NULL only while being made */
    tlsf_lock_t lock; /* held around every core call (see lock.h) */
    PyObject *weakrefs;
} OffsetObject;

/* An offset or size of the out-of-band core as an int (below 2**63 without
 * the unsigned path). */
static inline PyObject *int_from_u64(uint64_t v)
{
    if (LIKELY(v <= (uint64_t)INT64_MAX))
        return PyLong_FromLongLong((long long)v);
    return PyLong_FromUnsignedLongLong(v);
}

/* Runs core call `call` under the allocator's lock, the result in rc. */
#define OA_CALL(self, rc, call)        \
    do {                               \
        tlsf_lock(&(self)->lock);      \
        (rc) = (call);                 \
        tlsf_unlock(&(self)->lock);    \
    } while (0)

/* The exception of core result rc. */
#define oa_error(self, rc, offset, bad) core_error((PyObject *)(self), rc, offset, bad)

/* ----------------------------------------------- OffsetAllocator: hot path */

static PyObject *oa_alloc(OffsetObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    uint64_t size, align, out;
    int align_cls, rc;
    int size_cls = size_align_args((PyObject *)self, "alloc", args, nargs, kwnames, &size, &align, &align_cls);
    if (UNLIKELY(size_cls < 0))
        return NULL;
    /* A size or an alignment beyond uint64_t never fits, even in 2**64 - 1 bytes. */
    if (UNLIKELY(size_cls | align_cls))
        rc = TLSF_ENOMEM;
    else
        OA_CALL(self, rc, tlsf_oa_alloc(self->a, size, align, &out));
    if (LIKELY(rc == TLSF_OK))
        return int_from_u64(out);
    if (rc == TLSF_ENOMEM)
        return oom_error((PyObject *)self, size, align, -1);
    return oa_error(self, rc, 0, NULL);
}

static PyObject *oa_free(OffsetObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    uint64_t offset;
    PyObject *bad = NULL;
    int rc;
    if (UNLIKELY(offset_arg((PyObject *)self, "free", args, nargs, kwnames, &offset, &bad) < 0))
        return NULL;
    OA_CALL(self, rc, tlsf_oa_free(self->a, offset));
    if (LIKELY(rc == TLSF_OK))
        Py_RETURN_NONE;
    return oa_error(self, rc, offset, bad);
}

static PyObject *oa_usable_size(OffsetObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    uint64_t offset, out;
    PyObject *bad = NULL;
    int rc;
    if (UNLIKELY(offset_arg((PyObject *)self, "usable_size", args, nargs, kwnames, &offset, &bad) < 0))
        return NULL;
    OA_CALL(self, rc, tlsf_oa_usable_size(self->a, offset, &out));
    if (LIKELY(rc == TLSF_OK))
        return int_from_u64(out);
    return oa_error(self, rc, offset, bad);
}

static PyObject *oa_resize(OffsetObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *bad = NULL;
    uint64_t offset, size, usable;
    int rc, resized = 0;
    int size_cls = offset_size_args((PyObject *)self, "resize", args, nargs, kwnames, &offset, &bad, &size);
    if (size_cls < 0)
        return NULL;
    /* A size beyond uint64_t cannot be had: only the offset is checked. */
    OA_CALL(self, rc, size_cls == ARG_HUGE ? tlsf_oa_usable_size(self->a, offset, &usable)
                                           : tlsf_oa_resize(self->a, offset, size, &resized));
    if (rc)
        return oa_error(self, rc, offset, bad);
    return PyBool_FromLong(resized);
}

/* -------------------------------------------------- OffsetAllocator: batch */

static PyObject *oa_alloc_many(OffsetObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *res;
    Py_buffer items;
    uint64_t align;
    size_t failed = 0;
    batch_t b;
    int rc, align_cls = alloc_many_args((PyObject *)self, args, nargs, kwnames, 1, &b, &align, &res, &items);
    if (align_cls < 0)
        return NULL;
    /* As in alloc: a size (b.bad) or an alignment beyond uint64_t never fits;
     * the item named is the first huge size, else the first. */
    if (b.n && (b.bad || align_cls == ARG_HUGE)) {
        rc = TLSF_ENOMEM;
        failed = b.bad ? b.bad_at : 0;
    } else {
        OA_CALL(self, rc, tlsf_oa_alloc_many(self->a, b.v, b.n, align, items.buf, &failed));
    }
    if (rc == TLSF_ENOMEM)
        oom_error((PyObject *)self, b.v[failed], align, (Py_ssize_t)failed);
    else if (rc != TLSF_OK)
        oa_error(self, rc, 0, NULL);
    return alloc_many_result(rc, res, &items, &b);
}

static PyObject *oa_free_many(OffsetObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    size_t bad = 0;
    batch_t b;
    int rc;
    if (free_many_args((PyObject *)self, args, nargs, kwnames, &b) < 0)
        return NULL;
    OA_CALL(self, rc, tlsf_oa_free_many(self->a, b.v, b.n, &bad));
    return free_many_result((PyObject *)self, &b, rc, bad);
}

/* ------------------------------------- OffsetAllocator: ranges, inspection */

static PyObject *oa_add_range(OffsetObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *big_offset, *big_size;
    uint64_t offset, size, g;
    int rc;
    if (range_args((PyObject *)self, "add_range", args, nargs, kwnames, &offset, &size, &big_offset, &big_size) < 0)
        return NULL;
    int huge = big_offset || big_size;
    Py_XDECREF(big_offset);
    Py_XDECREF(big_size);
    /* The core refuses all three with ERANGE: the first two are told apart here. */
    g = tlsf_oa_granularity(self->a); /* fixed at creation */
    if (huge || size > UINT64_MAX - offset) {
        PyErr_SetString(PyExc_ValueError, "the range must end below 2**64");
        return NULL;
    }
    if ((offset | size) & (g - 1)) {
        PyErr_Format(PyExc_ValueError, "offset and size must be multiples of the granularity (%llu)", ULL(g));
        return NULL;
    }
    OA_CALL(self, rc, tlsf_oa_add_range(self->a, offset, size));
    if (rc == TLSF_OK)
        Py_RETURN_NONE;
    if (rc == TLSF_ERANGE)
        return PyErr_Format(PyExc_ValueError, "range [%llu, %llu) overlaps a range of the allocator", ULL(offset),
                            ULL(offset + size));
    return oa_error(self, rc, offset, NULL);
}

static PyObject *oa_reset(OffsetObject *self, PyObject *Py_UNUSED(ignored))
{
    tlsf_lock(&self->lock);
    tlsf_oa_reset(self->a);
    tlsf_unlock(&self->lock);
    Py_RETURN_NONE;
}

static PyObject *oa_stats(OffsetObject *self, PyObject *Py_UNUSED(ignored))
{
    tlsf_stats_t s;
    int rc;
    OA_CALL(self, rc, tlsf_oa_stats(self->a, &s));
    if (rc)
        return oa_error(self, rc, 0, NULL);
    return stats_object((PyObject *)self, &s);
}

static PyObject *oa_walk(OffsetObject *self, PyObject *Py_UNUSED(ignored))
{
    tlsf_stats_t s;
    blocks_t b;
    int rc;
    OA_CALL(self, rc, tlsf_oa_stats(self->a, &s));
    if (rc != TLSF_OK)
        memset(&s, 0, sizeof s); /* only a size hint */
    if (blocks_init(&b, &s) < 0)
        return NULL;
    /* collect_block makes no Python object: it may hold the lock */
    OA_CALL(self, rc, tlsf_oa_walk(self->a, collect_block, &b));
    return blocks_iter((PyObject *)self, &b, rc);
}

static PyObject *oa_allocation_of(OffsetObject *self, PyObject *block)
{
    return block_allocation((PyObject *)self, block, 0);
}

static PyObject *oa_check(OffsetObject *self, PyObject *Py_UNUSED(ignored))
{
    char msg[512];
    int rc;
    OA_CALL(self, rc, tlsf_oa_check(self->a, msg, sizeof msg));
    return check_result((PyObject *)self, rc, msg);
}

/* --------------------------------------- OffsetAllocator: life cycle, type */

static PyObject *oa_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"capacity", "sl_len", "granularity", NULL};
    PyObject *cap_obj, *sl_obj = NULL, *gran_obj = NULL, *big = NULL;
    uint64_t capacity, granularity = 1;
    unsigned sl_len;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$OO:OffsetAllocator", kwlist, &cap_obj, &sl_obj, &gran_obj))
        return NULL;
    /* Converted and validated in this order: granularity, sl_len, capacity. */
    if ((gran_obj && as_pow2(gran_obj, &granularity, "granularity", 0) < 0) || as_sl_len(sl_obj, &sl_len) < 0 ||
        as_range_arg(cap_obj, &capacity, "capacity", &big) < 0)
        return NULL;
    if (big) {
        PyErr_Format(PyExc_ValueError, "capacity must be below 2**64, not %S", big);
        Py_DECREF(big);
        return NULL;
    }
    if (capacity & (granularity - 1))
        return PyErr_Format(PyExc_ValueError, "capacity must be a multiple of the granularity (%llu), not %llu",
                            ULL(granularity), ULL(capacity));
    OffsetObject *self = (OffsetObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    lock_init(&self->lock);
    if (!(self->a = tlsf_oa_create(sl_len, granularity))) {
        PyErr_NoMemory();
        goto fail;
    }
    int rc = capacity ? tlsf_oa_add_range(self->a, 0, capacity) : TLSF_OK;
    if (rc) {
        oa_error(self, rc, 0, NULL);
        goto fail;
    }
    return (PyObject *)self;
fail:
    Py_DECREF(self); /* oa_dealloc frees what was made */
    return NULL;
}

static void oa_dealloc(OffsetObject *self)
{
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    tlsf_oa_destroy(self->a); /* no other reference, so no other user */
    PyTypeObject *tp = Py_TYPE(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *oa_repr(OffsetObject *self)
{
    tlsf_stats_t s;
    uint64_t capacity;
    int rc;
    tlsf_lock(&self->lock);
    rc = tlsf_oa_stats(self->a, &s);
    capacity = tlsf_oa_capacity(self->a);
    tlsf_unlock(&self->lock);
    if (rc != TLSF_OK)
        memset(&s, 0, sizeof s);
    return PyUnicode_FromFormat("<tlsf.OffsetAllocator capacity=%llu granularity=%llu sl_len=%u allocations=%llu>",
                                ULL(capacity), ULL(tlsf_oa_granularity(self->a)),
                                tlsf_oa_sl_len(self->a), ULL(s.allocations));
}

static PyObject *oa_get_capacity(OffsetObject *self, void *Py_UNUSED(closure))
{
    uint64_t capacity;
    tlsf_lock(&self->lock);
    capacity = tlsf_oa_capacity(self->a); /* grows with add_range */
    tlsf_unlock(&self->lock);
    return PyLong_FromUnsignedLongLong(capacity);
}

static PyObject *oa_get_granularity(OffsetObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(tlsf_oa_granularity(self->a));
}

static PyObject *oa_get_sl_len(OffsetObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLong(tlsf_oa_sl_len(self->a));
}

/* The docstrings begin with the text signature, which inspect.signature reads
 * (see heap_methods.h). */
static PyMethodDef oa_methods[] = {
    {"alloc", FASTCALL_KW(oa_alloc), METH_FASTCALL | METH_KEYWORDS,
     "alloc($self, /, size, align=1)\n--\n\nO(1). Return the offset (an int) of size bytes (rounded up to "
     "the granularity; size 0 takes one granule), a multiple of align (a power of two). OutOfMemoryError "
     "if nothing fits."},
    {"free", FASTCALL_KW(oa_free), METH_FASTCALL | METH_KEYWORDS,
     "free($self, /, offset)\n--\n\nFree the allocation at offset. InvalidOffsetError if it is not live."},
    {"resize", FASTCALL_KW(oa_resize), METH_FASTCALL | METH_KEYWORDS,
     "resize($self, /, offset, size)\n--\n\nIn place only: True when the allocation now holds size bytes "
     "(shrunk, or grown into free space right after it), False when it cannot grow (unchanged)."},
    {"usable_size", FASTCALL_KW(oa_usable_size), METH_FASTCALL | METH_KEYWORDS,
     "usable_size($self, /, offset)\n--\n\nBytes of the live allocation at offset (an int)."},
    {"alloc_many", FASTCALL_KW(oa_alloc_many), METH_FASTCALL | METH_KEYWORDS,
     "alloc_many($self, /, sizes, align=1)\n--\n\nAllocate every size in sizes (an iterable or a buffer of "
     "integers), all aligned to align; all or nothing. Return the offsets as an array.array('Q') "
     "(unsigned 64-bit: any offset below 2**64 - 1), or as a uint64 numpy.ndarray when sizes is a "
     "numpy.ndarray."},
    {"free_many", FASTCALL_KW(oa_free_many), METH_FASTCALL | METH_KEYWORDS,
     "free_many($self, /, offsets)\n--\n\nFree every offset in offsets (an iterable or a buffer of "
     "integers); all are validated (live, listed once) before any is freed."},
    {"add_range", FASTCALL_KW(oa_add_range), METH_FASTCALL | METH_KEYWORDS,
     "add_range($self, /, offset, size)\n--\n\nGive [offset, offset + size) to the allocator; ranges "
     "touching it coalesce with it. ValueError when it overlaps a range or is not a multiple of the "
     "granularity."},
    {"reset", (PyCFunction)oa_reset, METH_NOARGS,
     "reset($self, /)\n--\n\nForget every allocation; every range becomes one free block."},
    {"stats", (PyCFunction)oa_stats, METH_NOARGS,
     "stats($self, /)\n--\n\nReturn the allocator's statistics, a tlsf.Stats (O(1))."},
    {"walk", (PyCFunction)oa_walk, METH_NOARGS,
     "walk($self, /)\n--\n\nReturn an iterator of tlsf.BlockInfo(offset, size, used): every block of every "
     "range in address order. There are no headers: offset is what alloc() returned for a used block "
     "(allocation_of(block), as for every heap type) and size is exact."},
    {"allocation_of", (PyCFunction)oa_allocation_of, METH_O,
     "allocation_of($self, block, /)\n--\n\nThe offset alloc() returned for block, a tlsf.BlockInfo of "
     "walk(): what free() and usable_size() take, block.offset itself (no headers); for a free block, the "
     "offset an allocation at its start would have. Arithmetic only: block is not looked up."},
    {"check", (PyCFunction)oa_check, METH_NOARGS,
     "check($self, /)\n--\n\nFull invariant check; CorruptionError if the metadata is inconsistent."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef oa_getset[] = {
    {"capacity", (getter)oa_get_capacity, NULL, "Total bytes of all ranges.", NULL},
    {"granularity", (getter)oa_get_granularity, NULL, "Offsets and sizes are multiples of it.", NULL},
    {"sl_len", (getter)oa_get_sl_len, NULL, "Second-level lists per first-level class.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef oa_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(OffsetObject, weakrefs), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot oa_slots[] = {
    {Py_tp_dealloc, (void *)oa_dealloc},
    {Py_tp_repr, (void *)oa_repr},
    {Py_tp_doc, (void *)"OffsetAllocator(capacity, *, sl_len=32, granularity=1)\n--\n\n"
                        "TLSF over a range of offsets it never touches (a GPU buffer, a file, an\n"
                        "address range): all metadata is out of band. Manages [0, capacity)."},
    {Py_tp_members, oa_members},
    {Py_tp_methods, oa_methods},
    {Py_tp_getset, oa_getset},
    {Py_tp_new, (void *)oa_new},
    {0, NULL},
};

static PyType_Spec oa_spec = {
    .name = "tlsf._core.OffsetAllocator",
    .basicsize = sizeof(OffsetObject),
    .flags = Py_TPFLAGS_DEFAULT | TPFLAGS_FIXED,
    .slots = oa_slots,
};

int offset_add_type(PyObject *m, core_state *st)
{
    st->OffsetType = new_type(m, &oa_spec);
    if (!st->OffsetType)
        return -1;
    return PyModule_AddType(m, st->OffsetType);
}

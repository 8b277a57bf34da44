/*
 * flex.c: tlsf._core.FlexHeap, a heap in its own reservation of address space
 * that grows as it is used and gives pages back: csrc/tlsf_flex.h over
 * csrc/platform/os_memory.h. The pure-Python twin (tlsf.pure.FlexHeap,
 * src/tlsf/pure/flex.py) mirrors this file.
 *
 * A FlexHeap object is a HeapObject (heap.h) whose `flex` is set: Heap's
 * methods, views, lock, closing and the C API serve it unchanged, and route
 * the calls that allocate and free through the flex engine. The reservation
 * holds the control structure, then the arena; both are zero and cost no
 * memory until touched, and neither ever moves.
 */
#include "heap_methods.h"

#include <string.h>

#include <structmember.h>

#include "args.h"
#include "errors.h"
#include "platform/os_memory.h"

#define DEFAULT_MAX_SIZE ((uint64_t)1 << 40)      /* 1 TiB of address space */
#define SMALLEST_DEFAULT ((uint64_t)1 << 30)      /* halved down to this when the system refuses */
#define DEFAULT_TRIM_THRESHOLD ((uint64_t)1 << 20) /* 1 MiB of whole pages */

typedef struct {
    HeapObject heap; /* first: heap.c's methods take a FlexHeap as a HeapObject */
    tlsf_flex_t flex;
    uint8_t *map;    /* the reservation: control structure, then the arena at heap.base */
    uint64_t map_size;
    int hugepages;   /* transparent huge pages asked for the arena */
} FlexHeapObject;

static uint64_t round_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* The flex engine's source: the arena is reserved whole, so growing needs
 * nothing; pages go back to the system. */
static uint64_t discard_pages(void *ctx, uint8_t *p, uint64_t n, int count)
{
    (void)ctx;
    return tlsf_os_discard(p, n, count);
}

void flex_release(HeapObject *heap)
{
    FlexHeapObject *self = (FlexHeapObject *)heap;
    if (self->map) {
        tlsf_os_unreserve(self->map, self->map_size);
        self->map = NULL;
    }
}

/* Reserves room for a heap of *max_size bytes; with `shrink` (the default
 * size), halves it while the system refuses. 0, or an errno value. */
static int reserve(FlexHeapObject *self, uint64_t *max_size, unsigned sl_len, int shrink)
{
    uint64_t page = tlsf_os_page_size();
    for (;;) {
        uint64_t ctl = round_up(tlsf_control_size(*max_size, sl_len), page);
        self->map_size = ctl + round_up(*max_size, page);
        void *p;
        int err = tlsf_os_reserve(self->map_size, &p);
        if (!err) {
            self->map = p;
            self->heap.base = self->map + ctl;
            return 0;
        }
        if (!shrink || *max_size / 2 < SMALLEST_DEFAULT)
            return err;
        *max_size /= 2;
    }
}

/* max_size: None (the default), or a positive int up to 2**58. */
static int max_size_arg(PyObject *o, uint64_t *out)
{
    PyObject *bad = NULL;
    if (o == Py_None) {
        *out = DEFAULT_MAX_SIZE;
        return 0;
    }
    int cls = as_u64(o, out, &bad);
    if (cls < 0)
        return -1;
    if (cls == ARG_NEG || (cls == ARG_IN && *out == 0))
        PyErr_Format(PyExc_ValueError, "max_size must be > 0, not %S", bad ? bad : o);
    else if (cls == ARG_HUGE || *out > TLSF_MAX_CAPACITY)
        PyErr_Format(PyExc_ValueError, "max_size of %S bytes exceeds the largest capacity, 2**58", bad ? bad : o);
    Py_XDECREF(bad);
    return PyErr_Occurred() ? -1 : 0;
}

/* trim_threshold: None (off) or an int >= 0 (bytes of whole pages). */
static int trim_threshold_arg(PyObject *o, uint64_t *out)
{
    PyObject *bad = NULL;
    if (!o) {
        *out = DEFAULT_TRIM_THRESHOLD;
        return 0;
    }
    if (o == Py_None) {
        *out = TLSF_FLEX_TRIM_OFF;
        return 0;
    }
    int cls = as_u64(o, out, &bad);
    if (cls == ARG_NEG)
        PyErr_Format(PyExc_ValueError, "trim_threshold must be >= 0 or None, not %S", bad);
    Py_XDECREF(bad);
    return cls < 0 || cls == ARG_NEG ? -1 : 0; /* a huge threshold is never reached: off */
}

static PyObject *flex_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"max_size", "sl_len", "trim_threshold", "hugepages", NULL};
    PyObject *max_obj = Py_None, *sl_obj = NULL, *trim_obj = NULL;
    uint64_t max_size, trim;
    unsigned sl_len;
    int hugepages = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O$OOp:FlexHeap", kwlist, &max_obj, &sl_obj, &trim_obj,
                                     &hugepages))
        return NULL;
    if (max_size_arg(max_obj, &max_size) < 0 || as_sl_len(sl_obj, &sl_len) < 0 ||
        trim_threshold_arg(trim_obj, &trim) < 0)
        return NULL;
    if (!tlsf_control_size(max_size, sl_len)) {
        PyErr_Format(PyExc_ValueError, SL_LEN_ERROR ", not %u", sl_len);
        return NULL;
    }
    FlexHeapObject *self = (FlexHeapObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    lock_init(&self->heap.lock);
    self->heap.sl_len = sl_len;
    self->heap.flex = &self->flex; /* from now on heap_release gives the reservation back */
    int err = reserve(self, &max_size, sl_len, max_obj == Py_None);
    if (err) {
        PyErr_Format(PyExc_MemoryError, "cannot reserve address space for a heap of %llu bytes (%s)",
                     ULL(max_size), strerror(err));
        Py_DECREF(self);
        return NULL;
    }
    if (hugepages) /* the arena only: a best effort, where the platform has them */
        (void)tlsf_os_hugepages(self->heap.base, self->map_size - (uint64_t)(self->heap.base - self->map));
    self->hugepages = hugepages;
    tlsf_t *t = (tlsf_t *)self->map;
    tlsf_init_zeroed(t, max_size, sl_len); /* checked above */
    tlsf_flex_source_t src = {NULL, discard_pages, self, tlsf_os_page_size()};
    tlsf_flex_init(&self->flex, t, self->heap.base, &src, trim);
    self->heap.capacity = max_size;
    tlsf_lock(&self->heap.lock);
    self->heap.t = t;
    tlsf_unlock(&self->heap.lock);
    return (PyObject *)self;
}

static PyObject *flex_trim(FlexHeapObject *self, PyObject *Py_UNUSED(ignored))
{
    uint64_t released = 0;
    int rc;
    HEAP_CALL(&self->heap, rc, tlsf_flex_trim(&self->flex, &released));
    if (rc == RC_CLOSED)
        return closed_error(NULL);
    if (rc)
        return core_error((PyObject *)self, rc, 0, NULL);
    return PyLong_FromUnsignedLongLong(released);
}

/* The bytes of the pool as it is now, [0, size): for tests and tools that
 * look at (or scribble on) the heap image. The pool never shrinks, so the
 * view stays inside it. */
static PyObject *flex_arena(FlexHeapObject *self, PyObject *Py_UNUSED(ignored))
{
    uint64_t size;
    tlsf_lock(&self->heap.lock);
    int open = self->heap.t != NULL;
    size = self->flex.size;
    tlsf_unlock(&self->heap.lock);
    if (!open)
        return closed_error(NULL);
    return heap_export(&self->heap, 0, size);
}

static PyObject *flex_get_size(FlexHeapObject *self, void *Py_UNUSED(closure))
{
    tlsf_lock(&self->heap.lock);
    uint64_t size = self->flex.size;
    tlsf_unlock(&self->heap.lock);
    return PyLong_FromUnsignedLongLong(size);
}

static PyObject *flex_get_trim_threshold(FlexHeapObject *self, void *Py_UNUSED(closure))
{
    if (self->flex.trim_threshold == TLSF_FLEX_TRIM_OFF)
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLongLong(self->flex.trim_threshold);
}

static PyObject *flex_get_hugepages(FlexHeapObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->hugepages);
}

static PyObject *flex_repr(FlexHeapObject *self)
{
    tlsf_stats_t s;
    int rc;
    memset(&s, 0, sizeof s);
    HEAP_CALL(&self->heap, rc, tlsf_stats(self->heap.t, self->heap.base, &s));
    if (rc == RC_CLOSED)
        return PyUnicode_FromFormat("<tlsf.FlexHeap max_size=%llu sl_len=%u closed>", ULL(self->heap.capacity),
                                    self->heap.sl_len);
    return PyUnicode_FromFormat("<tlsf.FlexHeap size=%llu max_size=%llu sl_len=%u allocations=%llu>",
                                ULL(self->flex.size), ULL(self->heap.capacity), self->heap.sl_len,
                                ULL(s.allocations));
}

static PyMethodDef flex_methods[] = {
    HEAP_SHARED_METHODS,
    {"trim", (PyCFunction)flex_trim, METH_NOARGS,
     "trim() -> int\n\nGive the whole pages inside every free block back to the system; return "
     "the bytes of them that were resident."},
    {"_arena", (PyCFunction)flex_arena, METH_NOARGS,
     "_arena() -> memoryview\n\nThe bytes of the pool now, headers and all (for tests and tools)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef flex_getset[] = {
    HEAP_SHARED_GETSET,
    {"capacity", (getter)heap_get_capacity, NULL, "Bytes of the arena, max_size: every offset lies below.",
     NULL},
    {"max_size", (getter)heap_get_capacity, NULL, "Bytes the pool may grow to.", NULL},
    {"size", (getter)flex_get_size, NULL, "Bytes of the arena in the pool now.", NULL},
    {"hugepages", (getter)flex_get_hugepages, NULL, "Whether transparent huge pages were asked for the arena.",
     NULL},
    {"trim_threshold", (getter)flex_get_trim_threshold, NULL,
     "Bytes of whole pages from which free() gives a free block's pages back; None: never.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef flex_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(HeapObject, weakrefs), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot flex_slots[] = {
    {Py_tp_dealloc, (void *)heap_dealloc},
    {Py_tp_repr, (void *)flex_repr},
    {Py_tp_traverse, (void *)heap_traverse},
    {Py_tp_clear, (void *)heap_clear},
    {Py_tp_free, (void *)PyObject_GC_Del},
    {Py_tp_doc, (void *)"FlexHeap(max_size=None, *, sl_len=32, trim_threshold=1048576, hugepages=False)\n\n"
                        "A TLSF heap in its own reservation of max_size bytes of address space\n"
                        "(default 1 TiB, or less where the system refuses) that grows as it is\n"
                        "used, never moving, and gives pages back (trim(), trim_threshold)."},
    {Py_tp_members, flex_members},
    {Py_tp_methods, flex_methods},
    {Py_tp_getset, flex_getset},
    {Py_tp_new, (void *)flex_new},
    {0, NULL},
};

static PyType_Spec flex_spec = {
    .name = "tlsf._core.FlexHeap",
    .basicsize = sizeof(FlexHeapObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | TPFLAGS_FIXED,
    .slots = flex_slots,
};

int flex_add_type(PyObject *m, core_state *st)
{
    st->FlexHeapType = (PyTypeObject *)PyType_FromModuleAndSpec(m, &flex_spec, NULL);
    if (!st->FlexHeapType)
        return -1;
    return PyModule_AddType(m, st->FlexHeapType);
}

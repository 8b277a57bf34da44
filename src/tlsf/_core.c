/*
 * _core.c: the thin CPython binding of the TLSF cores: tlsf._core.Heap over
 * the in-band engine (csrc/tlsf.h), tlsf._core.OffsetAllocator over the
 * out-of-band one (csrc/tlsf_offset.h).
 *
 * tlsf._core.Heap owns one control structure (PyMem_Malloc) and keeps the
 * caller's buffer exported for its whole life, which pins it: the arena can
 * neither move nor shrink under the core. tlsf._core.OffsetAllocator owns one
 * tlsf_oa_t (the core mallocs and grows its metadata) and touches no memory
 * of the caller. The pure-Python twin (tlsf.pure) mirrors this file.
 *
 * Thread safety: every operation runs under the GIL and never releases it, so
 * operations on one heap are serialised without a lock of our own.
 *
 * Re-entrancy: converting an argument may run Python code (__index__), which
 * may use, free, reset or close this very heap. So every argument is converted
 * before the heap is looked at, `closed` is checked after that, and no C
 * pointer into heap state is kept across anything that may run Python code
 * (conversions, object allocation, which may trigger the GC and finalizers).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <string.h>

#include "tlsf.h"
#include "tlsf_offset.h"

#if defined(__GNUC__) || defined(__clang__)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define NOINLINE __attribute__((noinline))
#else
#define LIKELY(x) (x)
#define UNLIKELY(x) (x)
#define NOINLINE
#endif

#define ULL(x) ((unsigned long long)(x))

/* Shared with the pure-Python twin (tlsf._errors, tlsf._records), so that both
 * implementations raise and return exactly the same classes. */
static PyObject *OutOfMemoryError, *InvalidOffsetError, *CorruptionError;
static PyObject *StatsType, *BlockInfoType;

/* ------------------------------------------------------------------ the object */

typedef struct {
    PyObject_HEAD
    /* hot: read by every alloc/free */
    tlsf_t *t;          /* control structure; NULL once closed */
    uint8_t *base;      /* start of the arena (buf.buf) */
    /* cold */
    uint64_t capacity;  /* still readable after close */
    unsigned sl_len;
    Py_ssize_t exports; /* buffers handed out by view(), not yet released */
    PyObject *owned;    /* memory made for an int `memory` (mmap, or bytearray(0)), else NULL */
    PyObject *weakrefs;
    Py_buffer buf;      /* the export of `memory` that pins it; buf.obj NULL when not held */
} HeapObject;

static PyTypeObject HeapType;

/* ------------------------------------------------------- argument conversion */

/* Where an integer argument lies with respect to uint64_t. */
enum { ARG_IN = 0, ARG_NEG = 1, ARG_HUGE = 2 };

/* The general case of as_u64: anything with __index__, negative and huge
 * values. Never leaks OverflowError. */
static NOINLINE int as_u64_slow(PyObject *o, uint64_t *out, PyObject **keep)
{
    /* An int subclass is used as is: operator.index() does not call its __index__. */
    PyObject *i;
    if (PyLong_Check(o)) {
        Py_INCREF(o);
        i = o;
    } else if (!(i = PyNumber_Index(o))) {
        return -1;
    }
    int overflow, cls;
    long long v = PyLong_AsLongLongAndOverflow(i, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        Py_DECREF(i);
        return -1;
    }
    if (!overflow) {
        cls = v >= 0 ? ARG_IN : ARG_NEG;
        *out = v >= 0 ? (uint64_t)v : 0;
    } else if (overflow < 0) {
        cls = ARG_NEG;
        *out = 0;
    } else {
        unsigned long long u = PyLong_AsUnsignedLongLong(i);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
                Py_DECREF(i);
                return -1;
            }
            PyErr_Clear();
            cls = ARG_HUGE;
            *out = UINT64_MAX;
        } else {
            cls = ARG_IN;
            *out = (uint64_t)u;
        }
    }
    if (keep && cls != ARG_IN)
        *keep = i; /* for the error message, which names the value given */
    else
        Py_DECREF(i);
    return cls;
}

/* Converts an integer argument (an int or anything with __index__) to uint64_t.
 * Returns -1 with an exception set (not an integer), else ARG_IN with the
 * value, ARG_NEG with 0 or ARG_HUGE with UINT64_MAX. With keep, a NEG or HUGE
 * value leaves a new reference to the int in *keep (untouched otherwise). */
static inline int as_u64(PyObject *o, uint64_t *out, PyObject **keep)
{
#if PY_VERSION_HEX >= 0x030C0000
    /* The usual case, a small exact int, without a function call. */
    if (LIKELY(PyLong_CheckExact(o) && PyUnstable_Long_IsCompact((PyLongObject *)o))) {
        Py_ssize_t v = PyUnstable_Long_CompactValue((PyLongObject *)o);
        if (LIKELY(v >= 0)) {
            *out = (uint64_t)v;
            return ARG_IN;
        }
    }
#else
    /* The same through the digits: a small non-negative int has at most one. */
    if (LIKELY(PyLong_CheckExact(o) && (Py_SIZE(o) == 0 || Py_SIZE(o) == 1))) {
        *out = Py_SIZE(o) ? (uint64_t)((PyLongObject *)o)->ob_digit[0] : 0;
        return ARG_IN;
    }
#endif
    return as_u64_slow(o, out, keep);
}

/* An offset of an allocation. Negative and huge ones become TLSF_NIL, which is
 * never live in either engine (every range of the out-of-band one ends at or
 * below it), so the core reports EINVAL after the closed check, as for any
 * other bad offset; *bad keeps the int for the message. */
static inline int as_offset(PyObject *o, uint64_t *out, PyObject **bad)
{
    int cls = as_u64(o, out, bad);
    if (UNLIKELY(cls > 0))
        *out = TLSF_NIL;
    return cls < 0 ? -1 : 0;
}

/* A size to allocate: negative is a ValueError, huge is passed as UINT64_MAX,
 * which the in-band core refuses with ENOMEM like any size beyond the capacity.
 * Returns -1, ARG_IN or ARG_HUGE: the out-of-band core may manage 2**64-1
 * bytes, so there a huge size must be refused by the caller. */
static inline int as_size(PyObject *o, uint64_t *out)
{
    PyObject *bad = NULL;
    int cls = as_u64(o, out, &bad);
    if (LIKELY(cls == ARG_IN || cls == ARG_HUGE)) {
        Py_XDECREF(bad);
        return cls;
    }
    if (cls == ARG_NEG) {
        PyErr_Format(PyExc_ValueError, "size must be >= 0, not %S", bad);
        Py_DECREF(bad);
    }
    return -1;
}

/* as_pow2's refusals of argument `what`, and powers of two beyond uint64_t
 * (2**63 when huge_ok, else refused): cls and bad as left by as_u64. */
static NOINLINE int as_pow2_slow(int cls, uint64_t *out, PyObject *bad, const char *what, int huge_ok)
{
    if (cls < 0)
        return -1;
    if (cls == ARG_IN) {
        PyErr_Format(PyExc_ValueError, "%s must be a power of two, not %llu", what, ULL(*out));
        return -1;
    }
    if (cls == ARG_HUGE && !huge_ok) {
        PyErr_Format(PyExc_ValueError, "%s must be below 2**64, not %S", what, bad);
        Py_DECREF(bad);
        return -1;
    }
    int pow2 = 0;
    if (cls == ARG_HUGE) { /* v & (v - 1) == 0, in Python ints */
        PyObject *one = PyLong_FromLong(1);
        PyObject *m = one ? PyNumber_Subtract(bad, one) : NULL;
        PyObject *a = m ? PyNumber_And(bad, m) : NULL;
        pow2 = a ? PyObject_Not(a) : -1;
        Py_XDECREF(one);
        Py_XDECREF(m);
        Py_XDECREF(a);
        if (pow2 < 0) {
            Py_DECREF(bad);
            return -1;
        }
    }
    if (pow2) {
        Py_DECREF(bad);
        *out = (uint64_t)1 << 63; /* larger than any in-band capacity: the core reports ENOMEM */
        return ARG_HUGE;
    }
    PyErr_Format(PyExc_ValueError, "%s must be a power of two, not %S", what, bad);
    Py_DECREF(bad);
    return -1;
}

/* A power of two (ValueError naming `what` otherwise). Returns -1, ARG_IN, or
 * ARG_HUGE for one beyond uint64_t accepted as 2**63. */
static inline int as_pow2(PyObject *o, uint64_t *out, const char *what, int huge_ok)
{
    PyObject *bad = NULL;
    int cls = as_u64(o, out, &bad);
    if (LIKELY(cls == ARG_IN && *out && !(*out & (*out - 1))))
        return 0;
    return as_pow2_slow(cls, out, bad, what, huge_ok);
}

/* An alignment: a power of two. One beyond uint64_t becomes 2**63 (ARG_HUGE),
 * larger than any in-band capacity; the out-of-band core may manage 2**63
 * bytes, so there the caller refuses it. */
static inline int as_align(PyObject *o, uint64_t *out)
{
    return as_pow2(o, out, "alignment", 1);
}

/* An offset or size of a range (insert/append_free_block, add_range), or a
 * capacity: negative is a ValueError naming `what`; huge becomes UINT64_MAX,
 * with the int left in *big for the message. */
static int as_range_arg(PyObject *o, uint64_t *out, const char *what, PyObject **big)
{
    PyObject *bad = NULL;
    int cls = as_u64(o, out, &bad);
    if (cls == ARG_IN)
        return 0;
    if (cls == ARG_HUGE) {
        *big = bad;
        return 0;
    }
    if (cls == ARG_NEG) {
        PyErr_Format(PyExc_ValueError, "%s must be >= 0, not %S", what, bad);
        Py_DECREF(bad);
    }
    return -1;
}

#define SL_LEN_ERROR "sl_len must be a power of two in 1..64"

/* The sl_len of a constructor (NULL when not given: the default). */
static int as_sl_len(PyObject *o, unsigned *out)
{
    uint64_t v = TLSF_SL_LEN_DEFAULT;
    if (o) {
        int cls = as_u64(o, &v, NULL);
        if (cls < 0)
            return -1;
        if (cls != ARG_IN)
            v = 0;
    }
    if (!v || v > 64 || (v & (v - 1))) {
        PyErr_SetString(PyExc_ValueError, SL_LEN_ERROR);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

/* Binds FASTCALL arguments to the parameters `names` (all positional-or-keyword;
 * the first nmin required). Missing optional ones are left NULL. */
static int bind_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                     PyObject *const *names, Py_ssize_t nmin, Py_ssize_t nmax, PyObject **out)
{
    Py_ssize_t i;
    if (nargs > nmax) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %zd positional argument%s (%zd given)",
                     fname, nmax, nmax == 1 ? "" : "s", nargs);
        return -1;
    }
    for (i = 0; i < nmax; i++)
        out[i] = i < nargs ? args[i] : NULL;
    if (kwnames) {
        Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t k = 0; k < nkw; k++) {
            PyObject *key = PyTuple_GET_ITEM(kwnames, k);
            for (i = 0; i < nmax; i++)
                if (key == names[i])
                    break;
            if (i == nmax) /* not interned by the caller: compare the text */
                for (i = 0; i < nmax; i++)
                    if (PyUnicode_Compare(key, names[i]) == 0)
                        break;
            if (i == nmax) {
                if (PyErr_Occurred())
                    return -1;
                PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%S'", fname, key);
                return -1;
            }
            if (out[i]) {
                PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%S'", fname, key);
                return -1;
            }
            out[i] = args[nargs + k];
        }
    }
    for (i = 0; i < nmin; i++)
        if (!out[i]) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%S' (pos %zd)", fname,
                         names[i], i + 1);
            return -1;
        }
    return 0;
}

/* bind_args, with the usual call of the hot methods (positional arguments
 * only) inline. */
static inline int bind_fast(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                            PyObject *const *names, Py_ssize_t nmin, Py_ssize_t nmax, PyObject **out)
{
    if (LIKELY(!kwnames && nargs >= nmin && nargs <= nmax)) {
        for (Py_ssize_t i = 0; i < nmax; i++)
            out[i] = i < nargs ? args[i] : NULL;
        return 0;
    }
    return bind_args(fname, args, nargs, kwnames, names, nmin, nmax, out);
}

/* Interned parameter names, for bind_args. */
static PyObject *s_offset, *s_size, *s_align;

/* The arguments of the methods shared by both types, bound and converted.
 * Each returns -1 with an exception set, else as_size's class of the size
 * (ARG_IN or ARG_HUGE; 0 when there is none); *bad as left by as_offset. */

/* (size, align=1) of alloc; *align_cls gets as_align's class (ARG_IN when not given). */
static inline int size_align_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                                  uint64_t *size, uint64_t *align, int *align_cls)
{
    PyObject *a[2];
    PyObject *const names[2] = {s_size, s_align};
    if (UNLIKELY(bind_fast(fname, args, nargs, kwnames, names, 1, 2, a) < 0))
        return -1;
    int cls = as_size(a[0], size);
    if (UNLIKELY(cls < 0))
        return -1;
    *align = 1;
    *align_cls = ARG_IN;
    if (a[1] && UNLIKELY((*align_cls = as_align(a[1], align)) < 0))
        return -1;
    return cls;
}

/* (offset) of free and usable_size. */
static inline int offset_arg(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                             uint64_t *offset, PyObject **bad)
{
    PyObject *a;
    if (UNLIKELY(bind_fast(fname, args, nargs, kwnames, &s_offset, 1, 1, &a) < 0))
        return -1;
    return as_offset(a, offset, bad);
}

/* (offset, size) of realloc and resize. */
static inline int offset_size_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames, uint64_t *offset, PyObject **bad, uint64_t *size)
{
    PyObject *a[2];
    PyObject *const names[2] = {s_offset, s_size};
    if (bind_fast(fname, args, nargs, kwnames, names, 2, 2, a) < 0 || as_offset(a[0], offset, bad) < 0)
        return -1;
    int cls = as_size(a[1], size);
    if (cls < 0)
        Py_CLEAR(*bad);
    return cls;
}

/* (offset, size) of a range: insert/append_free_block, add_range; as_range_arg's
 * conversions, *big_offset and *big_size NULL unless huge. */
static int range_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                      uint64_t *offset, uint64_t *size, PyObject **big_offset, PyObject **big_size)
{
    PyObject *a[2];
    PyObject *const names[2] = {s_offset, s_size};
    *big_offset = *big_size = NULL;
    if (bind_args(fname, args, nargs, kwnames, names, 2, 2, a) < 0 ||
        as_range_arg(a[0], offset, "offset", big_offset) < 0)
        return -1;
    if (as_range_arg(a[1], size, "size", big_size) < 0) {
        Py_CLEAR(*big_offset);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------- errors */

static NOINLINE PyObject *closed_error(PyObject *bad)
{
    Py_XDECREF(bad);
    PyErr_SetString(PyExc_ValueError, "heap is closed");
    return NULL;
}

/* Raises the exception of core result `rc` (of either engine); the messages
 * of ENOMEM, EINVAL and ERANGE are the callers'. bad: a kept out-of-range
 * offset (consumed). t: the in-band heap, for the offset of ECORRUPT, or NULL. */
static NOINLINE PyObject *core_error(const tlsf_t *t, int rc, uint64_t offset, PyObject *bad)
{
    switch (rc) {
    case TLSF_ENOMEM:
        PyErr_SetString(OutOfMemoryError, tlsf_strerror(rc));
        break;
    case TLSF_EINVAL:
        if (bad)
            PyErr_Format(InvalidOffsetError, "offset %S is not a live allocation", bad);
        else
            PyErr_Format(InvalidOffsetError, "offset %llu is not a live allocation", ULL(offset));
        break;
    case TLSF_ECORRUPT: {
        uint64_t where = t ? tlsf_bad_offset(t) : TLSF_NIL;
        if (where == TLSF_NIL)
            PyErr_SetString(CorruptionError, tlsf_strerror(rc));
        else
            PyErr_Format(CorruptionError, "%s at offset %llu", tlsf_strerror(rc), ULL(where));
        break;
    }
    case TLSF_ENOMETA:
        PyErr_NoMemory();
        break;
    default: /* ERANGE, EALIGN, and codes this binding does not know */
        PyErr_SetString(PyExc_ValueError, tlsf_strerror(rc));
        break;
    }
    Py_XDECREF(bad);
    return NULL;
}

/* --------------------------------------------------------- hot path methods */

static PyObject *heap_alloc(HeapObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    uint64_t size, align, out;
    int align_cls;
    if (UNLIKELY(size_align_args("alloc", args, nargs, kwnames, &size, &align, &align_cls) < 0))
        return NULL;
    if (UNLIKELY(!self->t))
        return closed_error(NULL);
    int rc = tlsf_alloc(self->t, self->base, size, align, &out);
    if (LIKELY(rc == TLSF_OK))
        return PyLong_FromLongLong((long long)out); /* < 2**58 */
    if (rc == TLSF_ENOMEM) {
        if (size == UINT64_MAX)
            PyErr_SetString(OutOfMemoryError, "cannot allocate 2**64-1 bytes or more");
        else if (align == (uint64_t)1 << 63)
            PyErr_Format(OutOfMemoryError, "cannot allocate %llu bytes aligned to 2**63 or more", ULL(size));
        else
            PyErr_Format(OutOfMemoryError, "cannot allocate %llu bytes aligned to %llu", ULL(size), ULL(align));
        return NULL;
    }
    return core_error(self->t, rc, 0, NULL);
}

static PyObject *heap_free(HeapObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    uint64_t offset;
    PyObject *bad = NULL;
    if (UNLIKELY(offset_arg("free", args, nargs, kwnames, &offset, &bad) < 0))
        return NULL;
    if (UNLIKELY(!self->t))
        return closed_error(bad);
    int rc = tlsf_free(self->t, self->base, offset);
    if (LIKELY(rc == TLSF_OK))
        Py_RETURN_NONE;
    return core_error(self->t, rc, offset, bad);
}

static PyObject *heap_usable_size(HeapObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    uint64_t offset, out;
    PyObject *bad = NULL;
    if (UNLIKELY(offset_arg("usable_size", args, nargs, kwnames, &offset, &bad) < 0))
        return NULL;
    if (UNLIKELY(!self->t))
        return closed_error(bad);
    int rc = tlsf_usable_size(self->t, self->base, offset, &out);
    if (LIKELY(rc == TLSF_OK))
        return PyLong_FromLongLong((long long)out);
    return core_error(self->t, rc, offset, bad);
}

static PyObject *heap_realloc(HeapObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *bad = NULL;
    uint64_t offset, size, out;
    if (offset_size_args("realloc", args, nargs, kwnames, &offset, &bad, &size) < 0)
        return NULL;
    if (UNLIKELY(!self->t))
        return closed_error(bad);
    int rc = tlsf_realloc(self->t, self->base, offset, size, &out);
    if (LIKELY(rc == TLSF_OK))
        return PyLong_FromLongLong((long long)out);
    if (rc == TLSF_ENOMEM) {
        Py_XDECREF(bad);
        if (size == UINT64_MAX)
            PyErr_Format(OutOfMemoryError, "cannot reallocate offset %llu to 2**64-1 bytes or more", ULL(offset));
        else
            PyErr_Format(OutOfMemoryError, "cannot reallocate offset %llu to %llu bytes", ULL(offset), ULL(size));
        return NULL;
    }
    return core_error(self->t, rc, offset, bad);
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
    if (tlsf_append_free_block(self->t, self->base, offset, 0, &taken) == TLSF_OK) {
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
    if (range_args(fname, args, nargs, kwnames, &offset, &size, &big_offset, &big_size) < 0)
        return NULL;
    if (!self->t) {
        Py_XDECREF(big_offset);
        return closed_error(big_size);
    }
    /* A huge value is passed as UINT64_MAX, which the core refuses as outside memory. */
    int rc = append ? tlsf_append_free_block(self->t, self->base, offset, size, &taken)
                    : tlsf_insert_free_block(self->t, self->base, offset, size, &taken);
    if (rc == TLSF_OK)
        return PyLong_FromUnsignedLongLong(taken);
    if (rc == TLSF_ERANGE)
        return range_error(self, offset, size, append, big_offset, big_size);
    Py_XDECREF(big_offset);
    Py_XDECREF(big_size);
    return core_error(self->t, rc, offset, NULL);
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

/* The values of a batch argument, converted like the single ones: for sizes,
 * negative is a ValueError and huge is UINT64_MAX; for offsets, negative and
 * huge are TLSF_NIL (never live). The first huge size or out-of-range offset
 * is kept in bad (a new reference), for the message or the caller's check. */
typedef struct {
    uint64_t *v;
    size_t n;
    PyObject *bad; /* the first huge size or out-of-range offset */
    size_t bad_at; /* its index */
} batch_t;

static void batch_clear(batch_t *b)
{
    PyMem_Free(b->v);
    b->v = NULL;
    Py_CLEAR(b->bad);
}

static int batch_alloc(batch_t *b, Py_ssize_t n)
{
    if ((size_t)n > PY_SSIZE_T_MAX / sizeof(uint64_t)) {
        PyErr_NoMemory();
        return -1;
    }
    b->n = (size_t)n;
    if (!(b->v = PyMem_Malloc(n ? (size_t)n * sizeof(uint64_t) : 1))) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* One item: cls is as_u64's class of value v (keep: the int when not ARG_IN). */
static int batch_put(batch_t *b, size_t k, int cls, uint64_t v, PyObject *keep, int offsets)
{
    if (cls == ARG_IN) {
        b->v[k] = v;
        return 0;
    }
    if (cls == ARG_NEG && !offsets) {
        PyErr_Format(PyExc_ValueError, "size must be >= 0, not %S", keep);
        Py_DECREF(keep);
        return -1;
    }
    b->v[k] = UINT64_MAX; /* == TLSF_NIL for an offset */
    if (!b->bad) {
        b->bad = keep;
        b->bad_at = k;
    } else {
        Py_DECREF(keep);
    }
    return 0;
}

/* How to read the items of an integer buffer: its format, parsed. */
typedef struct {
    char code;     /* one of bBhHiIlLqQnN */
    int width;     /* bytes per item: the native size, or the standard one with a byte order */
    int native;    /* no byte-order prefix (or '@'): read as the machine's C type */
    int little;    /* with a byte order: least significant byte first */
} int_format_t;

/* Parses buffer format f (NULL means 'B') into *out; 0 when it is not one
 * integer (a float, a bool, a struct, an object...). The byte-order prefixes
 * '=', '<', '>' and '!' mean standard sizes, as for the struct module, which
 * has no standard size for 'n' and 'N'. */
static int int_format(const char *f, Py_ssize_t itemsize, int_format_t *out)
{
    static const uint16_t one = 1;
    const int host_little = *(const uint8_t *)&one;
    char order = '@';
    if (!f)
        f = "B";
    if (*f && strchr("@=<>!", *f))
        order = *f++;
    if (!f[0] || f[1] || !strchr("bBhHiIlLqQnN", f[0]))
        return 0;
    out->code = f[0];
    out->native = order == '@';
    if (out->native) {
        size_t size;
        switch (f[0] | 0x20) { /* lower case */
        case 'b': size = sizeof(char); break;
        case 'h': size = sizeof(short); break;
        case 'i': size = sizeof(int); break;
        case 'l': size = sizeof(long); break;
        case 'q': size = sizeof(long long); break;
        default: size = sizeof(size_t); break; /* n */
        }
        out->width = (int)size;
        out->little = host_little;
        return itemsize == (Py_ssize_t)size; /* an exporter that says otherwise is not believed */
    }
    if (f[0] == 'n' || f[0] == 'N')
        return 0;
    switch (f[0] | 0x20) { /* lower case */
    case 'b': out->width = 1; break;
    case 'h': out->width = 2; break;
    case 'i': case 'l': out->width = 4; break;
    default: out->width = 8; break; /* q */
    }
    out->little = order == '=' ? host_little : order == '<';
    return itemsize == out->width;
}

/* One item at p: a signed value in *sv (returns 1) or an unsigned one in *uv
 * (returns 0). */
static int buffer_item(const char *p, const int_format_t *fmt, long long *sv, unsigned long long *uv)
{
#define GET(T, dst)              \
    do {                         \
        T x;                     \
        memcpy(&x, p, sizeof x); \
        *dst = x;                \
    } while (0)
    if (fmt->native) {
        switch (fmt->code) {
        case 'b': GET(signed char, sv); return 1;
        case 'h': GET(short, sv); return 1;
        case 'i': GET(int, sv); return 1;
        case 'l': GET(long, sv); return 1;
        case 'q': GET(long long, sv); return 1;
        case 'n': GET(Py_ssize_t, sv); return 1;
        case 'B': GET(unsigned char, uv); return 0;
        case 'H': GET(unsigned short, uv); return 0;
        case 'I': GET(unsigned int, uv); return 0;
        case 'L': GET(unsigned long, uv); return 0;
        case 'Q': GET(unsigned long long, uv); return 0;
        default: GET(size_t, uv); return 0; /* 'N' */
        }
    }
#undef GET
    /* An explicit byte order: assembled byte by byte, whatever the machine's. */
    const uint8_t *b = (const uint8_t *)p;
    int w = fmt->width;
    unsigned long long v = 0;
    for (int k = 0; k < w; k++)
        v |= (unsigned long long)b[fmt->little ? k : w - 1 - k] << (8 * k);
    if (fmt->code >= 'a') { /* signed: extend the sign of a narrower item */
        int shift = 64 - 8 * w;
        *sv = shift ? (long long)(v << shift) >> shift : (long long)v;
        return 1;
    }
    *uv = v;
    return 0;
}

/* A buffer of integers, any byte order and layout, read into b. Any other
 * format is a TypeError. Returns 0 or -1 with an exception set. */
static int batch_from_buffer(PyObject *obj, batch_t *b, int offsets)
{
    Py_buffer view;
    int_format_t fmt;
    char *copy = NULL;
    if (PyObject_GetBuffer(obj, &view, PyBUF_FULL_RO) < 0)
        return -1;
    if (!int_format(view.format, view.itemsize, &fmt)) {
        PyErr_Format(PyExc_TypeError, "a buffer of integers is needed, not format '%s'",
                     view.format ? view.format : "B");
        goto fail;
    }
    const char *data = view.buf;
    if (!PyBuffer_IsContiguous(&view, 'C')) { /* strided: copied out in C order first */
        if (!(copy = PyMem_Malloc(view.len ? (size_t)view.len : 1))) {
            PyErr_NoMemory();
            goto fail;
        }
        if (PyBuffer_ToContiguous(copy, &view, view.len, 'C') < 0)
            goto fail;
        data = copy;
    }
    Py_ssize_t n = view.len / view.itemsize;
    if (batch_alloc(b, n) < 0)
        goto fail;
    for (Py_ssize_t k = 0; k < n; k++) {
        long long sv = 0;
        unsigned long long uv = 0;
        int cls = ARG_IN;
        if (buffer_item(data + k * view.itemsize, &fmt, &sv, &uv)) {
            cls = sv < 0 ? ARG_NEG : ARG_IN;
            uv = sv < 0 ? 0 : (unsigned long long)sv;
        }
        PyObject *keep = NULL;
        if (cls != ARG_IN && !(keep = PyLong_FromLongLong(sv)))
            goto fail_batch;
        if (batch_put(b, (size_t)k, cls, (uint64_t)uv, keep, offsets) < 0)
            goto fail_batch;
    }
    PyMem_Free(copy);
    PyBuffer_Release(&view);
    return 0;
fail_batch:
    batch_clear(b);
fail:
    PyMem_Free(copy);
    PyBuffer_Release(&view);
    return -1;
}

/* A batch argument: a buffer of integers (a numpy array, array.array, a ctypes
 * array, ...) or an iterable of integers (anything with __index__). */
static int batch_values(PyObject *obj, batch_t *b, int offsets)
{
    b->v = NULL;
    b->n = 0;
    b->bad = NULL;
    b->bad_at = 0;
    if (PyObject_CheckBuffer(obj))
        return batch_from_buffer(obj, b, offsets);
    /* A private copy: an item's __index__ cannot resize what is iterated. */
    PyObject *list = PySequence_List(obj);
    if (!list)
        return -1;
    Py_ssize_t n = PyList_GET_SIZE(list);
    if (batch_alloc(b, n) < 0)
        goto fail;
    for (Py_ssize_t k = 0; k < n; k++) {
        uint64_t v;
        PyObject *keep = NULL;
        int cls = as_u64(PyList_GET_ITEM(list, k), &v, &keep);
        if (cls < 0 || batch_put(b, (size_t)k, cls, v, keep, offsets) < 0)
            goto fail;
    }
    Py_DECREF(list);
    return 0;
fail:
    Py_DECREF(list);
    batch_clear(b);
    return -1;
}

static PyObject *ArrayType; /* array.array */

/* The result of alloc_many, made before the core runs so that nothing can fail
 * once the blocks are taken (a batch is all or nothing: a result that could
 * not be built would lose them): n zeros as array('q') (Heap: offsets below
 * 2**58) or, with `wide`, array('Q') (OffsetAllocator: any 64-bit offset);
 * an int64 / uint64 ndarray over it when `given` is an ndarray. *items is a
 * writable export of the array's items for the core to fill (release it). */
static PyObject *offsets_result(PyObject *given, size_t n, int wide, Py_buffer *items)
{
    static const char zero[8];
    PyObject *one = PyObject_CallFunction(ArrayType, "sy#", wide ? "Q" : "q", zero, (Py_ssize_t)sizeof zero);
    PyObject *arr = one ? PySequence_Repeat(one, (Py_ssize_t)n) : NULL;
    Py_XDECREF(one);
    if (!arr)
        return NULL;
    PyObject *res = arr;
    if (strcmp(Py_TYPE(given)->tp_name, "numpy.ndarray") == 0) {
        PyObject *np = PyImport_ImportModule("numpy");
        res = np ? PyObject_CallMethod(np, "frombuffer", "Os", arr, wide ? "uint64" : "int64") : NULL;
        Py_XDECREF(np);
        Py_DECREF(arr); /* the ndarray keeps it */
        if (!res)
            return NULL;
    }
    if (PyObject_GetBuffer(arr, items, PyBUF_WRITABLE) < 0) {
        Py_DECREF(res);
        return NULL;
    }
    return res;
}

static PyObject *s_sizes, *s_offsets;

/* The arguments of alloc_many, (sizes, align=1), converted, and its result
 * made (see offsets_result; *out points into `items`: release it, and
 * batch_clear b). Returns -1 with an exception set and nothing held, else
 * as_align's class. */
static int alloc_many_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, int wide, batch_t *b,
                           uint64_t *align, PyObject **res, Py_buffer *items)
{
    PyObject *a[2];
    PyObject *const names[2] = {s_sizes, s_align};
    int align_cls = ARG_IN;
    *align = 1;
    if (bind_args("alloc_many", args, nargs, kwnames, names, 1, 2, a) < 0 || batch_values(a[0], b, 0) < 0)
        return -1;
    if ((a[1] && (align_cls = as_align(a[1], align)) < 0) || !(*res = offsets_result(a[0], b->n, wide, items))) {
        batch_clear(b);
        return -1;
    }
    return align_cls;
}

/* What alloc_many returns once the core has run with result rc: the result
 * made by alloc_many_args, or NULL (the caller has set the exception). */
static PyObject *alloc_many_result(int rc, PyObject *res, Py_buffer *items, batch_t *b)
{
    PyBuffer_Release(items);
    batch_clear(b);
    if (rc == TLSF_OK)
        return res;
    Py_DECREF(res);
    return NULL;
}

/* The argument of free_many, (offsets), converted (batch_clear b). */
static int free_many_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, batch_t *b)
{
    PyObject *a;
    if (bind_args("free_many", args, nargs, kwnames, &s_offsets, 1, 1, &a) < 0)
        return -1;
    return batch_values(a, b, 1);
}

/* What free_many returns for core result rc (bad: the index of the first
 * invalid offset): None, or the exception, naming that offset. Clears b. */
static PyObject *free_many_result(batch_t *b, int rc, size_t bad, const tlsf_t *t)
{
    if (rc == TLSF_OK) {
        batch_clear(b);
        Py_RETURN_NONE;
    }
    /* The first out-of-range offset is invalid, so the core stops at it or before. */
    PyObject *big = NULL;
    if (rc == TLSF_EINVAL && bad == b->bad_at && b->bad) {
        big = b->bad;
        b->bad = NULL;
    }
    core_error(t, rc, b->v[bad], big);
    batch_clear(b);
    return NULL;
}

static PyObject *heap_alloc_many(HeapObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *res;
    Py_buffer items;
    uint64_t align;
    size_t failed = 0;
    batch_t b;
    if (alloc_many_args(args, nargs, kwnames, 0, &b, &align, &res, &items) < 0)
        return NULL;
    int rc = self->t ? tlsf_alloc_many(self->t, self->base, b.v, b.n, align, items.buf, &failed) : -1;
    if (rc == -1) {
        closed_error(NULL);
    } else if (rc == TLSF_ENOMEM) {
        uint64_t size = b.v[failed];
        if (size == UINT64_MAX)
            PyErr_Format(OutOfMemoryError, "cannot allocate 2**64-1 bytes or more (item %zu)", failed);
        else if (align == (uint64_t)1 << 63)
            PyErr_Format(OutOfMemoryError, "cannot allocate %llu bytes aligned to 2**63 or more (item %zu)",
                         ULL(size), failed);
        else
            PyErr_Format(OutOfMemoryError, "cannot allocate %llu bytes aligned to %llu (item %zu)", ULL(size),
                         ULL(align), failed);
    } else if (rc != TLSF_OK) {
        core_error(self->t, rc, 0, NULL);
    }
    return alloc_many_result(rc, res, &items, &b);
}

static PyObject *heap_free_many(HeapObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    size_t bad = 0;
    batch_t b;
    if (free_many_args(args, nargs, kwnames, &b) < 0)
        return NULL;
    if (!self->t) {
        batch_clear(&b);
        return closed_error(NULL);
    }
    int rc = tlsf_free_many(self->t, self->base, b.v, b.n, &bad);
    return free_many_result(&b, rc, bad, self->t);
}

/* -------------------------------------------------------------- inspection */

/* Shared by both types: the objects made of what the cores report. */

/* A tlsf.Stats of core statistics s (copied out of the core first: building
 * the ints may run the GC, hence any code). */
static PyObject *stats_object(const tlsf_stats_t *s)
{
    uint64_t v[5] = {s->allocated_bytes, s->free_bytes, s->largest_free, s->allocations, s->free_blocks};
    PyObject *items[5] = {NULL, NULL, NULL, NULL, NULL}, *res = NULL;
    for (int i = 0; i < 5; i++)
        if (!(items[i] = PyLong_FromUnsignedLongLong(v[i])))
            goto done;
    res = PyObject_Vectorcall(StatsType, items, 5, NULL);
done:
    for (int i = 0; i < 5; i++)
        Py_XDECREF(items[i]);
    return res;
}

typedef struct {
    uint64_t offset, size;
    int used;
} block_t;

typedef struct {
    block_t *v;
    size_t n, cap;
} blocks_t;

#define WALK_NOMEM 1000 /* not a TLSF code */

/* Room for the blocks that stats s count (a hint, capped; collect_block grows it). */
static int blocks_init(blocks_t *b, const tlsf_stats_t *s)
{
    uint64_t n = s->allocations + s->free_blocks;
    b->n = 0;
    b->cap = (size_t)(n < 1u << 20 ? n : 1u << 20);
    b->v = NULL;
    if (b->cap && !(b->v = PyMem_Malloc(b->cap * sizeof *b->v))) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* Only collects: no Python object is made while the core walks the heap, as
 * the GC could run a finalizer that frees into it or closes it. */
static int collect_block(uint64_t offset, uint64_t size, int used, void *ctx)
{
    blocks_t *b = ctx;
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 16;
        block_t *v = PyMem_Realloc(b->v, cap * sizeof *v);
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
static PyObject *blocks_iter(blocks_t *b, int rc, const tlsf_t *t)
{
    PyObject *list = NULL, *it = NULL;
    if (rc) {
        if (rc == WALK_NOMEM)
            PyErr_NoMemory();
        else
            core_error(t, rc, 0, NULL);
        goto done;
    }
    if (!(list = PyList_New((Py_ssize_t)b->n)))
        goto done;
    for (size_t i = 0; i < b->n; i++) {
        PyObject *items[3];
        items[0] = PyLong_FromUnsignedLongLong(b->v[i].offset);
        items[1] = PyLong_FromUnsignedLongLong(b->v[i].size);
        items[2] = PyBool_FromLong(b->v[i].used);
        PyObject *info = items[0] && items[1] ? PyObject_Vectorcall(BlockInfoType, items, 3, NULL) : NULL;
        for (int k = 0; k < 3; k++)
            Py_XDECREF(items[k]);
        if (!info)
            goto done;
        PyList_SET_ITEM(list, (Py_ssize_t)i, info);
    }
    it = PyObject_GetIter(list);
done:
    PyMem_Free(b->v);
    b->v = NULL;
    Py_XDECREF(list);
    return it;
}

/* What check() returns for core result rc and its message msg: None, or the
 * exception. t: the in-band heap, for the offset of ECORRUPT, or NULL. */
static PyObject *check_result(int rc, const char *msg, const tlsf_t *t)
{
    if (rc == TLSF_OK)
        Py_RETURN_NONE;
    if (rc != TLSF_ECORRUPT || !msg[0])
        return core_error(t, rc, 0, NULL);
    uint64_t where = t ? tlsf_bad_offset(t) : TLSF_NIL;
    if (where == TLSF_NIL || strstr(msg, "at offset"))
        PyErr_SetString(CorruptionError, msg);
    else
        PyErr_Format(CorruptionError, "%s; at offset %llu", msg, ULL(where));
    return NULL;
}

static PyObject *heap_stats(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    tlsf_stats_t s;
    if (!self->t)
        return closed_error(NULL);
    int rc = tlsf_stats(self->t, self->base, &s);
    if (rc)
        return core_error(self->t, rc, 0, NULL);
    return stats_object(&s);
}

static PyObject *heap_walk(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->t)
        return closed_error(NULL);
    tlsf_stats_t s;
    blocks_t b;
    memset(&s, 0, sizeof s);
    (void)tlsf_stats(self->t, self->base, &s); /* a size hint: the counters are filled even on error */
    if (blocks_init(&b, &s) < 0)
        return NULL;
    int rc = tlsf_walk(self->t, self->base, collect_block, &b);
    return blocks_iter(&b, rc, self->t);
}

static PyObject *heap_check(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    char msg[512];
    if (!self->t)
        return closed_error(NULL);
    int rc = tlsf_check(self->t, self->base, msg, sizeof msg);
    return check_result(rc, msg, self->t);
}

/* -------------------------------------------------------------------- views */

/* view() hands out memoryviews over this private exporter, one per view, and
 * counts the buffers it exports: close() refuses while any is held, whatever
 * slices or copies of the memoryview exist (they all share its one buffer).
 * Each exporter holds a reference to the heap, so the heap, and the memory it
 * pins, outlive every view. */
typedef struct {
    PyObject_HEAD
    HeapObject *heap;
    uint64_t offset, size;
} ExportObject;

static int export_getbuffer(ExportObject *self, Py_buffer *view, int flags)
{
    HeapObject *h = self->heap;
    if (!h->t) {
        view->obj = NULL;
        PyErr_SetString(PyExc_ValueError, "heap is closed");
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)self, h->base + self->offset, (Py_ssize_t)self->size, 0, flags) < 0)
        return -1;
    h->exports++;
    return 0;
}

static void export_releasebuffer(ExportObject *self, Py_buffer *Py_UNUSED(view))
{
    self->heap->exports--;
}

/* Tracked by the garbage collector, so that a cycle running through a view
 * (memory -> view -> exporter -> heap -> memory) is seen and freed; there is
 * no tp_clear: the memoryview's own clear releases the export. */
static int export_traverse(ExportObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->heap);
    return 0;
}

static void export_dealloc(ExportObject *self)
{
    PyObject_GC_UnTrack(self);
    Py_DECREF(self->heap);
    PyObject_GC_Del(self);
}

static PyBufferProcs export_as_buffer = {
    (getbufferproc)export_getbuffer,
    (releasebufferproc)export_releasebuffer,
};

static PyTypeObject ExportType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tlsf._core._ViewExport",
    .tp_basicsize = sizeof(ExportObject),
    .tp_dealloc = (destructor)export_dealloc,
    .tp_as_buffer = &export_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)export_traverse,
    .tp_doc = "Exports the bytes of one allocation to the memoryview made by Heap.view().",
};

static PyObject *heap_view(HeapObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[2], *bad = NULL;
    PyObject *const names[2] = {s_offset, s_size};
    uint64_t offset, size = 0, usable;
    int size_cls = ARG_IN;
    if (bind_args("view", args, nargs, kwnames, names, 1, 2, a) < 0)
        return NULL;
    if (as_offset(a[0], &offset, &bad) < 0)
        return NULL;
    if (a[1] && a[1] != Py_None && (size_cls = as_u64(a[1], &size, NULL)) < 0) {
        Py_XDECREF(bad);
        return NULL;
    }
    if (!self->t)
        return closed_error(bad);
    int rc = tlsf_usable_size(self->t, self->base, offset, &usable);
    if (rc)
        return core_error(self->t, rc, offset, bad);
    if (!a[1] || a[1] == Py_None) {
        size = usable;
    } else if (size_cls != ARG_IN || size > usable) {
        PyErr_Format(PyExc_ValueError, "view size outside 0..%llu (the usable size)", ULL(usable));
        return NULL;
    }
    ExportObject *e = PyObject_GC_New(ExportObject, &ExportType);
    if (!e)
        return NULL;
    Py_INCREF(self);
    e->heap = self;
    e->offset = offset;
    e->size = size;
    PyObject_GC_Track(e);
    PyObject *mv = PyMemoryView_FromObject((PyObject *)e);
    Py_DECREF(e);
    return mv;
}

/* -------------------------------------------------------------- life cycle */

/* Frees everything but `owned`; marks the heap closed first, since releasing
 * the buffer may run Python code (an exporter written in Python). */
static void heap_release(HeapObject *self)
{
    tlsf_t *t = self->t;
    if (t)
        tlsf_fini(t, self->base); /* unpoisons the arena in -DTLSF_POISON builds */
    self->t = NULL;
    self->base = NULL;
    PyMem_Free(t);
    if (self->buf.obj)
        PyBuffer_Release(&self->buf); /* sets buf.obj to NULL */
}

static PyObject *heap_close(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->t)
        Py_RETURN_NONE;
    if (self->exports) {
        PyErr_Format(PyExc_BufferError, "cannot close the heap while views of it are alive (%zd export%s)",
                     self->exports, self->exports == 1 ? "" : "s");
        return NULL;
    }
    heap_release(self);
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
static int heap_traverse(HeapObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->buf.obj);
    Py_VISIT(self->owned);
    return 0;
}

/* Breaks a cycle through the memory, as close() would; while views are alive
 * nothing is released (their memoryviews are garbage too, and releasing them
 * lets a later collection finish the job). */
static int heap_clear(HeapObject *self)
{
    if (self->exports)
        return 0;
    heap_release(self);
    Py_CLEAR(self->owned);
    return 0;
}

static void heap_dealloc(HeapObject *self)
{
    PyObject_GC_UnTrack(self);
    /* No view can be alive: each holds a reference to the heap. */
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    heap_release(self);
    Py_CLEAR(self->owned);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Whether Heap's `memory` argument is a size: an int, or any integer-like
 * object (numpy.int64, ...) that is not a buffer of at least one dimension
 * (a numpy array has __index__ too, and is memory). -1 on error. */
static int is_size_arg(PyObject *o)
{
    if (PyLong_Check(o))
        return 1;
    if (!PyIndex_Check(o))
        return 0;
    if (!PyObject_CheckBuffer(o))
        return 1;
    Py_buffer probe;
    if (PyObject_GetBuffer(o, &probe, PyBUF_FULL_RO) < 0)
        return -1;
    int scalar = probe.ndim == 0;
    PyBuffer_Release(&probe);
    return scalar;
}

/* Whether buffer format f describes plain data, which the heap may overwrite
 * with its headers: no Python object references ('O'), no pointers ('P',
 * '&'), nothing unknown. Struct field names (":name:") are skipped. */
static int plain_data_format(const char *f)
{
    if (!f)
        return 1; /* unsigned bytes */
    for (; *f; f++) {
        if (*f == ':') {
            if (!(f = strchr(f + 1, ':')))
                return 0;
        } else if (!strchr("@=<>!^0123456789 ,xcbB?hHiIlLqQnNefdgFDGZsuwT{}()", *f)) {
            return 0;
        }
    }
    return 1;
}

/* n bytes of anonymous memory for Heap(n), as an mmap object: private, so
 * that after fork() parent and child each have their own copy, as of any
 * process memory (an mmap made with fileno -1 is shared by default). More
 * than the system will map is a MemoryError. */
static PyObject *anonymous_memory(uint64_t n)
{
    PyObject *mmap = PyImport_ImportModule("mmap");
    if (!mmap)
        return NULL;
    PyObject *mem = NULL, *type = PyObject_GetAttrString(mmap, "mmap");
    PyObject *args = type ? Py_BuildValue("(in)", -1, (Py_ssize_t)n) : NULL;
    PyObject *kw = args ? PyDict_New() : NULL;
#ifndef _WIN32
    PyObject *private = kw ? PyObject_GetAttrString(mmap, "MAP_PRIVATE") : NULL;
    if (!private || PyDict_SetItemString(kw, "flags", private) < 0)
        Py_CLEAR(kw);
    Py_XDECREF(private);
#endif
    if (kw)
        mem = PyObject_Call(type, args, kw);
    Py_XDECREF(kw);
    Py_XDECREF(args);
    Py_XDECREF(type);
    Py_DECREF(mmap);
    if (!mem && PyErr_ExceptionMatches(PyExc_OSError)) {
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        PyErr_NormalizeException(&et, &ev, &tb);
        PyObject *code = ev ? PyObject_GetAttrString(ev, "errno") : NULL;
        int enomem = code && PyLong_Check(code) && PyLong_AsLong(code) == ENOMEM;
        Py_XDECREF(code);
        PyErr_Clear();
        if (enomem) {
            PyErr_Format(PyExc_MemoryError, "cannot map %llu bytes of memory for the heap", ULL(n));
            Py_XDECREF(et);
            Py_XDECREF(ev);
            Py_XDECREF(tb);
        } else {
            PyErr_Restore(et, ev, tb);
        }
    }
    return mem;
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
        PyErr_SetString(PyExc_ValueError, SL_LEN_ERROR);
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
        core_error(self->t, rc, 0, NULL);
        goto fail;
    }
    self->t = t;
    self->base = (uint8_t *)self->buf.buf;
    Py_XDECREF(bad);
    return (PyObject *)self;

fail:
    Py_XDECREF(bad);
    Py_DECREF(self); /* heap_dealloc frees what was made */
    return NULL;
}

static PyObject *heap_enter(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_INCREF(self);
    return (PyObject *)self;
}

static PyObject *heap_exit(HeapObject *self, PyObject *const *Py_UNUSED(args), Py_ssize_t Py_UNUSED(nargs))
{
    return heap_close(self, NULL);
}

static PyObject *heap_repr(HeapObject *self)
{
    if (!self->t)
        return PyUnicode_FromFormat("<tlsf.Heap capacity=%llu sl_len=%u closed>", ULL(self->capacity),
                                    self->sl_len);
    tlsf_stats_t s;
    memset(&s, 0, sizeof s);
    (void)tlsf_stats(self->t, self->base, &s); /* the counters are filled even on error */
    return PyUnicode_FromFormat("<tlsf.Heap capacity=%llu sl_len=%u allocations=%llu>", ULL(self->capacity),
                                self->sl_len, ULL(s.allocations));
}

static PyObject *heap_get_capacity(HeapObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(self->capacity);
}

static PyObject *heap_get_sl_len(HeapObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLong(self->sl_len);
}

static PyObject *heap_get_closed(HeapObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->t == NULL);
}

#define FASTCALL_KW(f) ((PyCFunction)(void (*)(void))(f))

static PyMethodDef heap_methods[] = {
    {"alloc", FASTCALL_KW(heap_alloc), METH_FASTCALL | METH_KEYWORDS,
     "alloc(size, align=1) -> int\n\nAllocate size bytes aligned to align (a power of two); "
     "return the payload offset. OutOfMemoryError if nothing fits."},
    {"free", FASTCALL_KW(heap_free), METH_FASTCALL | METH_KEYWORDS,
     "free(offset)\n\nFree the allocation at offset. InvalidOffsetError if it is not live."},
    {"realloc", FASTCALL_KW(heap_realloc), METH_FASTCALL | METH_KEYWORDS,
     "realloc(offset, size) -> int\n\nResize an allocation, keeping its contents and alignment; "
     "return its (possibly new) offset. On failure the allocation is untouched."},
    {"usable_size", FASTCALL_KW(heap_usable_size), METH_FASTCALL | METH_KEYWORDS,
     "usable_size(offset) -> int\n\nBytes usable at the live allocation at offset."},
    {"insert_free_block", FASTCALL_KW(heap_insert_free_block), METH_FASTCALL | METH_KEYWORDS,
     "insert_free_block(offset, size) -> int\n\nMake [offset, offset+size) a new pool; "
     "return the bytes taken (0 if too small)."},
    {"append_free_block", FASTCALL_KW(heap_append_free_block), METH_FASTCALL | METH_KEYWORDS,
     "append_free_block(offset, size) -> int\n\nGrow the pool that ends at offset by size bytes; "
     "return the bytes added."},
    {"alloc_many", FASTCALL_KW(heap_alloc_many), METH_FASTCALL | METH_KEYWORDS,
     "alloc_many(sizes, align=1) -> array('q') or ndarray\n\nAllocate every size in sizes (an "
     "iterable or a buffer of integers), all aligned to align; all or nothing. The offsets come "
     "back as array('q'), or an int64 ndarray when sizes is one."},
    {"free_many", FASTCALL_KW(heap_free_many), METH_FASTCALL | METH_KEYWORDS,
     "free_many(offsets)\n\nFree every offset in offsets (an iterable or a buffer of integers); "
     "all are validated before any is freed."},
    {"stats", (PyCFunction)heap_stats, METH_NOARGS, "stats() -> tlsf.Stats"},
    {"walk", (PyCFunction)heap_walk, METH_NOARGS,
     "walk() -> iterator of tlsf.BlockInfo\n\nEvery block of every pool in address order."},
    {"check", (PyCFunction)heap_check, METH_NOARGS,
     "check()\n\nFull invariant check; CorruptionError if the heap is inconsistent."},
    {"view", FASTCALL_KW(heap_view), METH_FASTCALL | METH_KEYWORDS,
     "view(offset, size=None) -> memoryview\n\nA writable view of the first size bytes "
     "(default: all usable bytes) of the live allocation at offset."},
    {"close", (PyCFunction)heap_close, METH_NOARGS,
     "close()\n\nRelease the memory and the control structure. Idempotent; BufferError "
     "while views are alive (the heap then stays open)."},
    {"__enter__", (PyCFunction)heap_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))heap_exit, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef heap_getset[] = {
    {"capacity", (getter)heap_get_capacity, NULL, "Size of the memory in bytes.", NULL},
    {"sl_len", (getter)heap_get_sl_len, NULL, "Second-level lists per first-level class.", NULL},
    {"closed", (getter)heap_get_closed, NULL, "True once close() has succeeded.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject HeapType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tlsf._core.Heap",
    .tp_basicsize = sizeof(HeapObject),
    .tp_dealloc = (destructor)heap_dealloc,
    .tp_repr = (reprfunc)heap_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)heap_traverse,
    .tp_clear = (inquiry)heap_clear,
    .tp_free = PyObject_GC_Del,
    .tp_doc = "Heap(memory, *, sl_len=32, pool=True)\n\n"
              "A TLSF heap over memory: a writable C-contiguous buffer, or an int\n"
              "(that many bytes of anonymous memory owned by the heap).",
    .tp_weaklistoffset = offsetof(HeapObject, weakrefs),
    .tp_methods = heap_methods,
    .tp_getset = heap_getset,
    .tp_new = heap_new,
};

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

/* ----------------------------------------------- OffsetAllocator: hot path */

static PyObject *oa_alloc(OffsetObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    uint64_t size, align, out;
    int align_cls, size_cls = size_align_args("alloc", args, nargs, kwnames, &size, &align, &align_cls);
    if (UNLIKELY(size_cls < 0))
        return NULL;
    /* A size or an alignment beyond uint64_t never fits, even in 2**64 - 1 bytes. */
    int rc = UNLIKELY(size_cls | align_cls) ? TLSF_ENOMEM : tlsf_oa_alloc(self->a, size, align, &out);
    if (LIKELY(rc == TLSF_OK))
        return int_from_u64(out);
    return core_error(NULL, rc, 0, NULL);
}

static PyObject *oa_free(OffsetObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    uint64_t offset;
    PyObject *bad = NULL;
    if (UNLIKELY(offset_arg("free", args, nargs, kwnames, &offset, &bad) < 0))
        return NULL;
    int rc = tlsf_oa_free(self->a, offset);
    if (LIKELY(rc == TLSF_OK))
        Py_RETURN_NONE;
    return core_error(NULL, rc, offset, bad);
}

static PyObject *oa_usable_size(OffsetObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    uint64_t offset, out;
    PyObject *bad = NULL;
    if (UNLIKELY(offset_arg("usable_size", args, nargs, kwnames, &offset, &bad) < 0))
        return NULL;
    int rc = tlsf_oa_usable_size(self->a, offset, &out);
    if (LIKELY(rc == TLSF_OK))
        return int_from_u64(out);
    return core_error(NULL, rc, offset, bad);
}

static PyObject *oa_resize(OffsetObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *bad = NULL;
    uint64_t offset, size, usable;
    int resized = 0, size_cls = offset_size_args("resize", args, nargs, kwnames, &offset, &bad, &size);
    if (size_cls < 0)
        return NULL;
    /* A size beyond uint64_t cannot be had: only the offset is checked. */
    int rc = size_cls == ARG_HUGE ? tlsf_oa_usable_size(self->a, offset, &usable)
                                  : tlsf_oa_resize(self->a, offset, size, &resized);
    if (rc)
        return core_error(NULL, rc, offset, bad);
    return PyBool_FromLong(resized);
}

/* -------------------------------------------------- OffsetAllocator: batch */

/* Frees out[0..n), the allocations of a batch whose result could not be
 * made: newest first, as the core undoes a failed batch, and only if all are
 * still live (making the result may have run Python code that used the
 * allocator). */
static PyObject *oa_alloc_many(OffsetObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *res;
    Py_buffer items;
    uint64_t align;
    size_t failed = 0;
    batch_t b;
    int align_cls = alloc_many_args(args, nargs, kwnames, 1, &b, &align, &res, &items);
    if (align_cls < 0)
        return NULL;
    /* As in alloc: a size (b.bad) or an alignment beyond uint64_t never fits. */
    int rc = b.n && (b.bad || align_cls == ARG_HUGE)
                 ? TLSF_ENOMEM
                 : tlsf_oa_alloc_many(self->a, b.v, b.n, align, items.buf, &failed);
    if (rc != TLSF_OK)
        core_error(NULL, rc, 0, NULL);
    return alloc_many_result(rc, res, &items, &b);
}

static PyObject *oa_free_many(OffsetObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    size_t bad = 0;
    batch_t b;
    if (free_many_args(args, nargs, kwnames, &b) < 0)
        return NULL;
    int rc = tlsf_oa_free_many(self->a, b.v, b.n, &bad);
    return free_many_result(&b, rc, bad, NULL);
}

/* ------------------------------------- OffsetAllocator: ranges, inspection */

static PyObject *oa_add_range(OffsetObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *big_offset, *big_size;
    uint64_t offset, size;
    if (range_args("add_range", args, nargs, kwnames, &offset, &size, &big_offset, &big_size) < 0)
        return NULL;
    int huge = big_offset || big_size;
    Py_XDECREF(big_offset);
    Py_XDECREF(big_size);
    /* The core refuses all three with ERANGE: the first two are told apart here. */
    uint64_t g = tlsf_oa_granularity(self->a);
    if (huge || size > UINT64_MAX - offset) {
        PyErr_SetString(PyExc_ValueError, "the range must end below 2**64");
        return NULL;
    }
    if ((offset | size) & (g - 1)) {
        PyErr_Format(PyExc_ValueError, "offset and size must be multiples of the granularity (%llu)", ULL(g));
        return NULL;
    }
    int rc = tlsf_oa_add_range(self->a, offset, size);
    if (rc == TLSF_OK)
        Py_RETURN_NONE;
    if (rc == TLSF_ERANGE)
        return PyErr_Format(PyExc_ValueError, "range [%llu, %llu) overlaps a range of the allocator", ULL(offset),
                            ULL(offset + size));
    return core_error(NULL, rc, offset, NULL);
}

static PyObject *oa_reset(OffsetObject *self, PyObject *Py_UNUSED(ignored))
{
    tlsf_oa_reset(self->a);
    Py_RETURN_NONE;
}

static PyObject *oa_stats(OffsetObject *self, PyObject *Py_UNUSED(ignored))
{
    tlsf_stats_t s;
    int rc = tlsf_oa_stats(self->a, &s);
    if (rc)
        return core_error(NULL, rc, 0, NULL);
    return stats_object(&s);
}

static PyObject *oa_walk(OffsetObject *self, PyObject *Py_UNUSED(ignored))
{
    tlsf_stats_t s;
    blocks_t b;
    if (tlsf_oa_stats(self->a, &s) != TLSF_OK)
        memset(&s, 0, sizeof s); /* only a size hint */
    if (blocks_init(&b, &s) < 0)
        return NULL;
    int rc = tlsf_oa_walk(self->a, collect_block, &b);
    return blocks_iter(&b, rc, NULL);
}

static PyObject *oa_check(OffsetObject *self, PyObject *Py_UNUSED(ignored))
{
    char msg[512];
    int rc = tlsf_oa_check(self->a, msg, sizeof msg);
    return check_result(rc, msg, NULL);
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
    if (!(self->a = tlsf_oa_create(sl_len, granularity))) {
        PyErr_NoMemory();
        goto fail;
    }
    int rc = capacity ? tlsf_oa_add_range(self->a, 0, capacity) : TLSF_OK;
    if (rc) {
        core_error(NULL, rc, 0, NULL);
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
    tlsf_oa_destroy(self->a);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *oa_repr(OffsetObject *self)
{
    tlsf_stats_t s;
    if (tlsf_oa_stats(self->a, &s) != TLSF_OK)
        memset(&s, 0, sizeof s);
    return PyUnicode_FromFormat("<tlsf.OffsetAllocator capacity=%llu granularity=%llu sl_len=%u allocations=%llu>",
                                ULL(tlsf_oa_capacity(self->a)), ULL(tlsf_oa_granularity(self->a)),
                                tlsf_oa_sl_len(self->a), ULL(s.allocations));
}

static PyObject *oa_get_capacity(OffsetObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(tlsf_oa_capacity(self->a));
}

static PyObject *oa_get_granularity(OffsetObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(tlsf_oa_granularity(self->a));
}

static PyObject *oa_get_sl_len(OffsetObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLong(tlsf_oa_sl_len(self->a));
}

static PyMethodDef oa_methods[] = {
    {"alloc", FASTCALL_KW(oa_alloc), METH_FASTCALL | METH_KEYWORDS,
     "alloc(size, align=1) -> int\n\nO(1). The offset of size bytes (rounded up to the granularity; "
     "size 0 takes one granule), a multiple of align (a power of two). OutOfMemoryError if nothing fits."},
    {"free", FASTCALL_KW(oa_free), METH_FASTCALL | METH_KEYWORDS,
     "free(offset)\n\nFree the allocation at offset. InvalidOffsetError if it is not live."},
    {"resize", FASTCALL_KW(oa_resize), METH_FASTCALL | METH_KEYWORDS,
     "resize(offset, size) -> bool\n\nIn place only: True when the allocation now holds size bytes "
     "(shrunk, or grown into free space right after it), False when it cannot grow (unchanged)."},
    {"usable_size", FASTCALL_KW(oa_usable_size), METH_FASTCALL | METH_KEYWORDS,
     "usable_size(offset) -> int\n\nBytes of the live allocation at offset."},
    {"alloc_many", FASTCALL_KW(oa_alloc_many), METH_FASTCALL | METH_KEYWORDS,
     "alloc_many(sizes, align=1) -> array('q') or ndarray\n\nAllocate every size in sizes (an "
     "iterable or a buffer of integers), all aligned to align; all or nothing. The offsets come "
     "back as array('q'), or an int64 ndarray when sizes is one."},
    {"free_many", FASTCALL_KW(oa_free_many), METH_FASTCALL | METH_KEYWORDS,
     "free_many(offsets)\n\nFree every offset in offsets (an iterable or a buffer of integers); "
     "all are validated (live, listed once) before any is freed."},
    {"add_range", FASTCALL_KW(oa_add_range), METH_FASTCALL | METH_KEYWORDS,
     "add_range(offset, size)\n\nGive [offset, offset + size) to the allocator; ranges touching it "
     "coalesce with it. ValueError when it overlaps a range or is not a multiple of the granularity."},
    {"reset", (PyCFunction)oa_reset, METH_NOARGS,
     "reset()\n\nForget every allocation; every range becomes one free block."},
    {"stats", (PyCFunction)oa_stats, METH_NOARGS, "stats() -> tlsf.Stats"},
    {"walk", (PyCFunction)oa_walk, METH_NOARGS,
     "walk() -> iterator of tlsf.BlockInfo\n\nEvery block of every range in address order."},
    {"check", (PyCFunction)oa_check, METH_NOARGS,
     "check()\n\nFull invariant check; CorruptionError if the metadata is inconsistent."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef oa_getset[] = {
    {"capacity", (getter)oa_get_capacity, NULL, "Total bytes of all ranges.", NULL},
    {"granularity", (getter)oa_get_granularity, NULL, "Offsets and sizes are multiples of it.", NULL},
    {"sl_len", (getter)oa_get_sl_len, NULL, "Second-level lists per first-level class.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject OffsetType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tlsf._core.OffsetAllocator",
    .tp_basicsize = sizeof(OffsetObject),
    .tp_dealloc = (destructor)oa_dealloc,
    .tp_repr = (reprfunc)oa_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "OffsetAllocator(capacity, *, sl_len=32, granularity=1)\n\n"
              "TLSF over a range of offsets it never touches (a GPU buffer, a file, an\n"
              "address range): all metadata is out of band. Manages [0, capacity).",
    .tp_weaklistoffset = offsetof(OffsetObject, weakrefs),
    .tp_methods = oa_methods,
    .tp_getset = oa_getset,
    .tp_new = oa_new,
};

/* ------------------------------------------------------------------ module */

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tlsf._core",
    .m_doc = "The C core of tlsf: Heap, a TLSF allocator over a Python buffer, and OffsetAllocator,\n"
             "one over offsets it never touches (out-of-band metadata).",
    .m_size = -1,
};

static int import_attr(const char *module, const char *name, PyObject **out)
{
    PyObject *m = PyImport_ImportModule(module);
    if (!m)
        return -1;
    *out = PyObject_GetAttrString(m, name);
    Py_DECREF(m);
    return *out ? 0 : -1;
}

/* _Floor: the benchmark's floor. The same calling conventions as Heap.alloc,
 * free and realloc, and a fresh int per allocation, but no allocator: the
 * least a Python allocator call can cost (python -m tlsf bench). */
typedef struct {
    PyObject_HEAD
    long long next;
} FloorObject;

static PyObject *floor_alloc(FloorObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    (void)args;
    if (UNLIKELY(kwnames || nargs < 1 || nargs > 2))
        return PyErr_Format(PyExc_TypeError, "alloc(size, align=1)"), NULL;
    return PyLong_FromLongLong(self->next += 16);
}

static PyObject *floor_free(FloorObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    (void)self, (void)args;
    if (UNLIKELY(kwnames || nargs != 1))
        return PyErr_Format(PyExc_TypeError, "free(offset)"), NULL;
    Py_RETURN_NONE;
}

static PyObject *floor_realloc(FloorObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    (void)self;
    if (UNLIKELY(kwnames || nargs != 2))
        return PyErr_Format(PyExc_TypeError, "realloc(offset, size)"), NULL;
    Py_INCREF(args[0]);
    return args[0];
}

static PyMethodDef floor_methods[] = {
    {"alloc", FASTCALL_KW(floor_alloc), METH_FASTCALL | METH_KEYWORDS, NULL},
    {"free", FASTCALL_KW(floor_free), METH_FASTCALL | METH_KEYWORDS, NULL},
    {"realloc", FASTCALL_KW(floor_realloc), METH_FASTCALL | METH_KEYWORDS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FloorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tlsf._core._Floor",
    .tp_basicsize = sizeof(FloorObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Do-nothing alloc/free/realloc with Heap's calling conventions (benchmark floor).",
    .tp_methods = floor_methods,
    .tp_new = PyType_GenericNew,
};

PyMODINIT_FUNC PyInit__core(void)
{
    if (import_attr("tlsf._errors", "OutOfMemoryError", &OutOfMemoryError) < 0 ||
        import_attr("tlsf._errors", "InvalidOffsetError", &InvalidOffsetError) < 0 ||
        import_attr("tlsf._errors", "CorruptionError", &CorruptionError) < 0 ||
        import_attr("tlsf._records", "Stats", &StatsType) < 0 ||
        import_attr("tlsf._records", "BlockInfo", &BlockInfoType) < 0)
        return NULL;
    if (!(s_offset = PyUnicode_InternFromString("offset")) || !(s_size = PyUnicode_InternFromString("size")) ||
        !(s_align = PyUnicode_InternFromString("align")) || !(s_sizes = PyUnicode_InternFromString("sizes")) ||
        !(s_offsets = PyUnicode_InternFromString("offsets")))
        return NULL;
    if (import_attr("array", "array", &ArrayType) < 0)
        return NULL;
    if (PyType_Ready(&ExportType) < 0 || PyType_Ready(&HeapType) < 0 || PyType_Ready(&OffsetType) < 0 ||
        PyType_Ready(&FloorType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&core_module);
    if (!m)
        return NULL;
    if (PyModule_AddType(m, &HeapType) < 0 || PyModule_AddType(m, &OffsetType) < 0 ||
        PyModule_AddType(m, &FloorType) < 0 ||
        PyModule_AddIntConstant(m, "GRANULARITY", TLSF_GRANULARITY) < 0 ||
        PyModule_AddIntConstant(m, "HEADER_SIZE", TLSF_HEADER_SIZE) < 0 ||
        PyModule_AddIntConstant(m, "MIN_BLOCK", TLSF_MIN_BLOCK) < 0 ||
        PyModule_AddIntConstant(m, "SENTINEL_SIZE", TLSF_SENTINEL_SIZE) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

/*
 * args.h: argument conversion, shared by Heap and OffsetAllocator. The usual
 * cases are static inline (a method pays no call for them, as when the
 * binding was one file); the general cases are NOINLINE, in args.c.
 *
 * Re-entrancy: converting an argument may run Python code (__index__), which
 * may use, free, reset or close the very object being called. So every
 * argument is converted before the object is looked at.
 */
#ifndef TLSF_BINDING_ARGS_H
#define TLSF_BINDING_ARGS_H

#include "state.h"
#include "tlsf_common.h"

/* Where an integer argument lies with respect to uint64_t. */
enum { ARG_IN = 0, ARG_NEG = 1, ARG_HUGE = 2 };

/* A parameter list: up to two KW_ names, packed (see bind_args). */
#define PARAMS(a, b) ((unsigned)(a) | (unsigned)(b) << 4)

HIDDEN int as_u64_slow(PyObject *o, uint64_t *out, PyObject **keep);
HIDDEN int as_pow2_slow(int cls, uint64_t *out, PyObject *bad, const char *what, int huge_ok);
HIDDEN int as_range_arg(PyObject *o, uint64_t *out, const char *what, PyObject **big);
HIDDEN int as_sl_len(PyObject *o, unsigned *out);
HIDDEN int bind_args(PyObject *self, const char *fname, PyObject *const *args, Py_ssize_t nargs,
                     PyObject *kwnames, unsigned params, Py_ssize_t nmin, Py_ssize_t nmax, PyObject **out);
HIDDEN int range_args(PyObject *self, const char *fname, PyObject *const *args, Py_ssize_t nargs,
                      PyObject *kwnames, uint64_t *offset, uint64_t *size, PyObject **big_offset,
                      PyObject **big_size);

#define SL_LEN_ERROR "sl_len must be a power of two in 1..64"

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

/* bind_args, with the usual call of the hot methods (positional arguments
 * only) inline. */
static inline int bind_fast(PyObject *self, const char *fname, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames, unsigned params, Py_ssize_t nmin, Py_ssize_t nmax, PyObject **out)
{
    if (LIKELY(!kwnames && nargs >= nmin && nargs <= nmax)) {
        for (Py_ssize_t i = 0; i < nmax; i++)
            out[i] = i < nargs ? args[i] : NULL;
        return 0;
    }
    return bind_args(self, fname, args, nargs, kwnames, params, nmin, nmax, out);
}

/* The arguments of the methods shared by both types, bound and converted.
 * Each returns -1 with an exception set, else as_size's class of the size
 * (ARG_IN or ARG_HUGE; 0 when there is none); *bad as left by as_offset. */

/* (size, align=1) of alloc; *align_cls gets as_align's class (ARG_IN when not given). */
static inline int size_align_args(PyObject *self, const char *fname, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames, uint64_t *size, uint64_t *align, int *align_cls)
{
    PyObject *a[2];
    if (UNLIKELY(bind_fast(self, fname, args, nargs, kwnames, PARAMS(KW_SIZE, KW_ALIGN), 1, 2, a) < 0))
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
static inline int offset_arg(PyObject *self, const char *fname, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames, uint64_t *offset, PyObject **bad)
{
    PyObject *a;
    if (UNLIKELY(bind_fast(self, fname, args, nargs, kwnames, PARAMS(KW_OFFSET, 0), 1, 1, &a) < 0))
        return -1;
    return as_offset(a, offset, bad);
}

/* (offset, size) of realloc and resize. */
static inline int offset_size_args(PyObject *self, const char *fname, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames, uint64_t *offset, PyObject **bad, uint64_t *size)
{
    PyObject *a[2];
    if (bind_fast(self, fname, args, nargs, kwnames, PARAMS(KW_OFFSET, KW_SIZE), 2, 2, a) < 0 ||
        as_offset(a[0], offset, bad) < 0)
        return -1;
    int cls = as_size(a[1], size);
    if (cls < 0)
        Py_CLEAR(*bad);
    return cls;
}

#endif

/*
 * args.c: the general cases of argument conversion (args.h has the usual ones,
 * inline): ints beyond the fast path, refusals and their messages, keyword
 * binding.
 */
#include "args.h"

#include "tlsf.h"

/* The general case of as_u64: anything with __index__, negative and huge
 * values. Never leaks OverflowError. */
NOINLINE int as_u64_slow(PyObject *o, uint64_t *out, PyObject **keep)
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

/* as_pow2's refusals of argument `what`, and powers of two beyond uint64_t
 * (2**63 when huge_ok, else refused): cls and bad as left by as_u64. */
NOINLINE int as_pow2_slow(int cls, uint64_t *out, PyObject *bad, const char *what, int huge_ok)
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

/* An offset or size of a range (insert/append_free_block, add_range), or a
 * capacity: negative is a ValueError naming `what`; huge becomes UINT64_MAX,
 * with the int left in *big for the message. */
int as_range_arg(PyObject *o, uint64_t *out, const char *what, PyObject **big)
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

/* The sl_len of a constructor (NULL when not given: the default). */
int as_sl_len(PyObject *o, unsigned *out)
{
    uint64_t v = TLSF_SL_LEN_DEFAULT;
    PyObject *bad = NULL; /* a negative or huge value, for the message */
    if (o && as_u64(o, &v, &bad) < 0)
        return -1;
    if (bad || !v || v > 64 || (v & (v - 1))) {
        if (bad)
            PyErr_Format(PyExc_ValueError, SL_LEN_ERROR ", not %S", bad);
        else
            PyErr_Format(PyExc_ValueError, SL_LEN_ERROR ", not %llu", ULL(v));
        Py_XDECREF(bad);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

/* Binds FASTCALL arguments to the parameters `params` (PARAMS(KW_..., KW_...):
 * all positional-or-keyword, at most two; the first nmin required). Missing optional ones are left NULL. */
NOINLINE int bind_args(PyObject *self, const char *fname, PyObject *const *args, Py_ssize_t nargs,
                       PyObject *kwnames, unsigned params, Py_ssize_t nmin, Py_ssize_t nmax, PyObject **out)
{
    Py_ssize_t i;
    PyObject *names[2];
    core_state *st = state_of(self);
    for (i = 0; i < nmax; i++)
        names[i] = st->kw[(params >> (4 * i)) & 15];
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

/* (offset, size) of a range: insert/append_free_block, add_range; as_range_arg's
 * conversions, *big_offset and *big_size NULL unless huge. */
int range_args(PyObject *self, const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
               uint64_t *offset, uint64_t *size, PyObject **big_offset, PyObject **big_size)
{
    PyObject *a[2];
    *big_offset = *big_size = NULL;
    if (bind_args(self, fname, args, nargs, kwnames, PARAMS(KW_OFFSET, KW_SIZE), 2, 2, a) < 0 ||
        as_range_arg(a[0], offset, "offset", big_offset) < 0)
        return -1;
    if (as_range_arg(a[1], size, "size", big_size) < 0) {
        Py_CLEAR(*big_offset);
        return -1;
    }
    return 0;
}

/*
 * batch.c: the batch calls of both types (alloc_many, free_many): their
 * arguments, an iterable or a buffer of integers of any layout, converted
 * like single ones, and their results.
 */
#include "batch.h"

#include <string.h>

#include "args.h"
#include "errors.h"

/* The values of a batch argument, converted like the single ones: for sizes,
 * negative is a ValueError and huge is UINT64_MAX; for offsets, negative and
 * huge are TLSF_NIL (never live). The first huge size or out-of-range offset
 * is kept in bad (a new reference), for the message or the caller's check. */
void batch_clear(batch_t *b)
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
int batch_values(PyObject *obj, batch_t *b, int offsets)
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

/* The result of alloc_many, made before the core runs so that nothing can fail
 * once the blocks are taken (a batch is all or nothing: a result that could
 * not be built would lose them): n zeros as array('q') (Heap: offsets below
 * 2**58) or, with `wide`, array('Q') (OffsetAllocator: any 64-bit offset);
 * an int64 / uint64 ndarray over it when `given` is an ndarray. *items is a
 * writable export of the array's items for the core to fill (release it). */
static PyObject *offsets_result(PyObject *self, PyObject *given, size_t n, int wide, Py_buffer *items)
{
    static const char zero[8];
    PyObject *one = PyObject_CallFunction(state_of(self)->ArrayType, "sy#", wide ? "Q" : "q", zero, (Py_ssize_t)sizeof zero);
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

/* The arguments of alloc_many, (sizes, align=1), converted, and its result
 * made (see offsets_result; *out points into `items`: release it, and
 * batch_clear b). Returns -1 with an exception set and nothing held, else
 * as_align's class. */
int alloc_many_args(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, int wide,
                    batch_t *b, uint64_t *align, PyObject **res, Py_buffer *items)
{
    PyObject *a[2];
    int align_cls = ARG_IN;
    *align = 1;
    if (bind_args(self, "alloc_many", args, nargs, kwnames, PARAMS(KW_SIZES, KW_ALIGN), 1, 2, a) < 0 ||
        batch_values(a[0], b, 0) < 0)
        return -1;
    if ((a[1] && (align_cls = as_align(a[1], align)) < 0) ||
        !(*res = offsets_result(self, a[0], b->n, wide, items))) {
        batch_clear(b);
        return -1;
    }
    return align_cls;
}

/* What alloc_many returns once the core has run with result rc: the result
 * made by alloc_many_args, or NULL (the caller has set the exception). */
PyObject *alloc_many_result(int rc, PyObject *res, Py_buffer *items, batch_t *b)
{
    PyBuffer_Release(items);
    batch_clear(b);
    if (rc == TLSF_OK)
        return res;
    Py_DECREF(res);
    return NULL;
}

/* The argument of free_many, (offsets), converted (batch_clear b). */
int free_many_args(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, batch_t *b)
{
    PyObject *a;
    if (bind_args(self, "free_many", args, nargs, kwnames, PARAMS(KW_OFFSETS, 0), 1, 1, &a) < 0)
        return -1;
    return batch_values(a, b, 1);
}

/* What free_many of self returns for core result rc (bad: the index of the
 * first invalid offset): None, or the exception, naming that offset. Clears b. */
PyObject *free_many_result(PyObject *self, batch_t *b, int rc, size_t bad)
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
    core_error(self, rc, b->v[bad], big);
    batch_clear(b);
    return NULL;
}

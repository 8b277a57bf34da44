/*
 * memory.c: what Heap(memory) makes of its argument: whether it is a size, the
 * anonymous memory made for one, and which buffers the heap may write into.
 */
#include <errno.h>
#include <string.h>

#include "heap.h"

/* Whether Heap's `memory` argument is a size: an int, or any integer-like
 * object (numpy.int64, ...) that is not a buffer of at least one dimension
 * (a numpy array has __index__ too, and is memory). -1 on error. */
int is_size_arg(PyObject *o)
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
int plain_data_format(const char *f)
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
PyObject *anonymous_memory(uint64_t n)
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

/*
 * batch.h: the arguments and results of alloc_many and free_many, shared by
 * both types (batch.c). self is the object called (for its module state).
 */
#ifndef TLSF_BINDING_BATCH_H
#define TLSF_BINDING_BATCH_H

#include "state.h"

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

HIDDEN void batch_clear(batch_t *b);
HIDDEN int batch_values(PyObject *obj, batch_t *b, int offsets);
HIDDEN int alloc_many_args(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, int wide,
                           batch_t *b, uint64_t *align, PyObject **res, Py_buffer *items);
HIDDEN PyObject *alloc_many_result(int rc, PyObject *res, Py_buffer *items, batch_t *b);
HIDDEN int free_many_args(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, batch_t *b);
HIDDEN PyObject *free_many_result(PyObject *self, batch_t *b, int rc, size_t bad);

#endif

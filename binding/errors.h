/*
 * errors.h: the exceptions of the cores' result codes and the objects made of
 * what the cores report, shared by both types (errors.c). self is the Heap or
 * OffsetAllocator called: its module state has the classes.
 */
#ifndef TLSF_BINDING_ERRORS_H
#define TLSF_BINDING_ERRORS_H

#include "state.h"
#include "tlsf_common.h"

HIDDEN PyObject *closed_error(PyObject *bad);
HIDDEN PyObject *core_error(PyObject *self, int rc, uint64_t offset, PyObject *bad);
HIDDEN PyObject *oom_error(PyObject *self, uint64_t size, uint64_t align, Py_ssize_t item);
HIDDEN PyObject *check_result(PyObject *self, int rc, const char *msg);
HIDDEN PyObject *stats_object(PyObject *self, const tlsf_stats_t *s);
HIDDEN PyObject *block_allocation(PyObject *self, PyObject *block, unsigned header);

/* walk(): the blocks are collected by the core's walker (no Python object is
 * made while the core walks: the GC could run a finalizer that uses the
 * heap), then made into an iterator of tlsf.BlockInfo. */
typedef struct {
    uint64_t offset, size;
    int used;
} block_t;

typedef struct {
    block_t *v;
    size_t n, cap;
} blocks_t;

#define WALK_NOMEM 1000 /* not a TLSF code */

HIDDEN int blocks_init(blocks_t *b, const tlsf_stats_t *s);
HIDDEN int collect_block(uint64_t offset, uint64_t size, int used, void *ctx);
HIDDEN PyObject *blocks_iter(PyObject *self, blocks_t *b, int rc);

#endif

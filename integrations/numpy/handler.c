/*
 * handler.c: tlsf._numpy_handler, a numpy memory handler (NEP 49) over a tlsf
 * heap: array data allocated, resized and freed by a Heap, FlexHeap or
 * SharedHeap in C, with no Python call per allocation. tlsf.numpy is its
 * Python face (use(), handler()).
 *
 * An integration, apart from the binding: it is a client of tlsf's public C
 * API (tlsf_capi.h) like any other extension, and it builds without numpy's
 * headers. It declares NEP 49's structures itself (their layout is numpy's
 * ABI, fixed since 1.22) and reaches PyDataMem_SetHandler through numpy's C
 * API table, the capsule that tlsf.numpy passes in.
 *
 * NEP 49's rules and how they are kept:
 *   - each array that owns its data keeps a reference to the capsule that
 *     allocated it; the capsule owns the context below, which holds a strong
 *     reference to the heap: the heap object outlives every array;
 *   - allocations are the C API's held ones (alloc_held): close() of the heap
 *     raises BufferError while any array still uses its memory;
 *   - free ignores the size numpy passes (numpy says it can be wrong): the
 *     heap knows each allocation's size;
 *   - calloc zeroes (a heap's free space holds old bytes); realloc keeps the
 *     contents;
 *   - the functions are called with or without the GIL, from any thread: they
 *     touch no Python object, only the heap's C state under its own lock (the
 *     C API's calls) and the context's atomic counter.
 *
 * A request the heap cannot serve (full, or closed) goes to the C library's
 * allocator, unless the handler was made to fail instead (NULL: numpy raises
 * MemoryError). free and realloc tell the two kinds of block apart by address:
 * the heap's memory is one range [base, base + capacity) that no other
 * allocator hands out while the heap is open; a heap closed since (possible
 * only once none of its allocations is live) answers ECLOSED to everything,
 * so a C library block that lands in its old range later is still freed by
 * the C library.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsf_capi.h"

/* NEP 49 (numpy/ndarraytypes.h, numpy >= 1.22). */
typedef struct {
    void *ctx;
    void *(*malloc)(void *ctx, size_t size);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *ptr, size_t new_size);
    void (*free)(void *ctx, void *ptr, size_t size);
} PyDataMemAllocator;

typedef struct {
    char name[127]; /* multiple of 64 to keep the struct aligned */
    uint8_t version; /* 1 */
    PyDataMemAllocator allocator;
} PyDataMem_Handler;

#define HANDLER_CAPSULE "mem_handler" /* the name numpy requires */
/* numpy's C API table (numpy/__multiarray_api.h): slot numbers are ABI. */
#define NPY_API_GET_FEATURE_VERSION 211 /* PyArray_GetNDArrayCFeatureVersion */
#define NPY_API_SET_HANDLER 304         /* PyDataMem_SetHandler */
#define NPY_1_22_API_VERSION 0x0000000f

typedef struct {
    PyDataMem_Handler handler; /* first: numpy's capsule points here */
    const TLSF_CAPI *api;
    PyObject *heap;            /* strong: the capsule keeps the heap alive */
    uint8_t *base;             /* the heap's memory, which never moves while it is open */
    uint64_t capacity;
    uint64_t align;
    int fail_when_full;        /* NULL instead of the C library's block */
    atomic_ullong fallbacks;   /* allocations the C library served */
} Context;

static int in_heap(const Context *c, const void *p)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)c->base;
    return a >= b && a - b < c->capacity;
}

/* Whether a request the heap could not serve goes to the C library (then
 * counted), or fails. */
static int fall_back(Context *c)
{
    if (c->fail_when_full)
        return 0;
    atomic_fetch_add_explicit(&c->fallbacks, 1, memory_order_relaxed);
    return 1;
}

static void *h_malloc(void *ctx, size_t size)
{
    Context *c = ctx;
    uint64_t off;
    if (c->api->alloc_held(c->heap, size ? size : 1, c->align, &off) == TLSF_CAPI_OK)
        return c->base + off;
    return fall_back(c) ? malloc(size) : NULL;
}

static void *h_calloc(void *ctx, size_t nelem, size_t elsize)
{
    Context *c = ctx;
    size_t size;
    uint64_t off;
    if (elsize && nelem > SIZE_MAX / elsize)
        return NULL;
    size = nelem * elsize;
    if (c->api->alloc_held(c->heap, size ? size : 1, c->align, &off) == TLSF_CAPI_OK)
        return memset(c->base + off, 0, size);
    return fall_back(c) ? calloc(nelem, elsize) : NULL;
}

static void *h_realloc(void *ctx, void *ptr, size_t new_size)
{
    Context *c = ctx;
    uint64_t off, new_off, usable;
    if (!ptr)
        return h_malloc(ctx, new_size);
    if (!in_heap(c, ptr))
        return realloc(ptr, new_size);
    off = (uint64_t)((uint8_t *)ptr - c->base);
    int rc = c->api->realloc(c->heap, off, new_size ? new_size : 1, &new_off);
    if (rc == TLSF_CAPI_OK)
        return c->base + new_off;
    if (rc == TLSF_CAPI_ECLOSED) /* not the heap's: see the top of the file */
        return realloc(ptr, new_size);
    if (rc != TLSF_CAPI_ENOMEM || c->api->usable_size(c->heap, off, &usable) != TLSF_CAPI_OK)
        return NULL;
    /* The heap is full: move the block to the C library's memory. */
    void *q = fall_back(c) ? malloc(new_size) : NULL;
    if (q) {
        memcpy(q, ptr, usable < new_size ? usable : new_size);
        (void)c->api->free_held(c->heap, off);
    }
    return q;
}

static void h_free(void *ctx, void *ptr, size_t size)
{
    Context *c = ctx;
    (void)size; /* numpy says it can be wrong; the heap knows */
    if (!ptr)
        return;
    /* An in-range pointer that the heap refuses (not an allocation of it) is
     * not freed: nothing can be reported from here, and freeing it anywhere
     * else would corrupt memory. */
    if (!in_heap(c, ptr) || c->api->free_held(c->heap, (uint64_t)((uint8_t *)ptr - c->base)) == TLSF_CAPI_ECLOSED)
        free(ptr);
}

static void context_destroy(PyObject *capsule)
{
    Context *c = PyCapsule_GetPointer(capsule, HANDLER_CAPSULE);
    if (!c)
        return;
    Py_DECREF(c->heap);
    PyMem_RawFree(c);
}

static Context *context_of(PyObject *capsule)
{
    Context *c = PyCapsule_GetPointer(capsule, HANDLER_CAPSULE);
    if (c && c->handler.allocator.malloc != h_malloc) {
        PyErr_SetString(PyExc_TypeError, "not a handler made by tlsf.numpy");
        return NULL;
    }
    return c;
}

/* make(heap, name, align, fail_when_full) -> the "mem_handler" capsule */
static PyObject *make(PyObject *module, PyObject *args)
{
    const TLSF_CAPI *api = *(const TLSF_CAPI **)PyModule_GetState(module);
    PyObject *heap;
    const char *name;
    unsigned long long align;
    int fail_when_full;
    uint8_t *base;
    uint64_t capacity;
    if (!PyArg_ParseTuple(args, "OsKp:make", &heap, &name, &align, &fail_when_full))
        return NULL;
    if (api->get_core(heap, NULL, &base, &capacity) < 0)
        return NULL;
    Context *c = PyMem_RawCalloc(1, sizeof *c);
    if (!c)
        return PyErr_NoMemory();
    (void)snprintf(c->handler.name, sizeof c->handler.name, "%s", name);
    c->handler.version = 1;
    c->handler.allocator = (PyDataMemAllocator){c, h_malloc, h_calloc, h_realloc, h_free};
    c->api = api;
    Py_INCREF(heap);
    c->heap = heap;
    c->base = base;
    c->capacity = capacity;
    c->align = align;
    c->fail_when_full = fail_when_full;
    atomic_init(&c->fallbacks, 0);
    PyObject *capsule = PyCapsule_New(&c->handler, HANDLER_CAPSULE, context_destroy);
    if (!capsule) {
        Py_DECREF(heap);
        PyMem_RawFree(c);
    }
    return capsule;
}

/* numpy's C API table, from its capsule, with the feature version checked. */
static void **numpy_api(PyObject *table)
{
    void **api = PyCapsule_GetPointer(table, NULL);
    if (!api)
        return NULL;
    unsigned int (*feature_version)(void) = (unsigned int (*)(void))api[NPY_API_GET_FEATURE_VERSION];
    if (feature_version() < NPY_1_22_API_VERSION) {
        PyErr_SetString(PyExc_ImportError, "numpy memory handlers need numpy 1.22 or later");
        return NULL;
    }
    return api;
}

/* set(numpy_api_capsule, handler or None) -> the handler it replaces, in the
 * current context (numpy keeps it in a context variable). */
static PyObject *set(PyObject *module, PyObject *args)
{
    PyObject *table, *handler;
    (void)module;
    if (!PyArg_ParseTuple(args, "OO:set", &table, &handler))
        return NULL;
    void **api = numpy_api(table);
    if (!api)
        return NULL;
    return ((PyObject * (*)(PyObject *)) api[NPY_API_SET_HANDLER])(handler == Py_None ? NULL : handler);
}

/* fallbacks(handler) -> allocations the C library served */
static PyObject *fallbacks(PyObject *module, PyObject *capsule)
{
    (void)module;
    Context *c = context_of(capsule);
    return c ? PyLong_FromUnsignedLongLong(atomic_load(&c->fallbacks)) : NULL;
}

/* heap(handler) -> the heap it allocates from */
static PyObject *heap_of(PyObject *module, PyObject *capsule)
{
    (void)module;
    Context *c = context_of(capsule);
    if (!c)
        return NULL;
    Py_INCREF(c->heap);
    return c->heap;
}

/* address(heap) -> the address of the heap's first byte (for offsets of arrays) */
static PyObject *address(PyObject *module, PyObject *heap)
{
    const TLSF_CAPI *api = *(const TLSF_CAPI **)PyModule_GetState(module);
    uint8_t *base;
    if (api->get_core(heap, NULL, &base, NULL) < 0)
        return NULL;
    return PyLong_FromVoidPtr(base);
}

static PyMethodDef methods[] = {
    {"make", make, METH_VARARGS, "make(heap, name, align, fail_when_full) -> the handler's capsule"},
    {"set", set, METH_VARARGS, "set(numpy_api, handler) -> the previous handler of this context"},
    {"fallbacks", fallbacks, METH_O, "fallbacks(handler) -> allocations the C library served"},
    {"heap", heap_of, METH_O, "heap(handler) -> its heap"},
    {"address", address, METH_O, "address(heap) -> the address of its first byte"},
    {NULL, NULL, 0, NULL},
};

static int exec_module(PyObject *m)
{
    const TLSF_CAPI **slot = PyModule_GetState(m);
    *slot = tlsf_capi_import();
    return *slot ? 0 : -1;
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, (void *)exec_module},
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tlsf._numpy_handler",
    .m_doc = "A numpy memory handler (NEP 49) over a tlsf heap; see tlsf.numpy.",
    .m_size = sizeof(const TLSF_CAPI *),
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC PyInit__numpy_handler(void) { return PyModuleDef_Init(&module_def); }

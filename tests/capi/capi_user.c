/*
 * capi_user.c: a small extension that uses tlsf's C API (tlsf_capi.h) the way
 * another extension would; built and driven by tests/test_capi.py.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "tlsf_capi.h"

static const TLSF_CAPI *api;

/* raw_alloc(heap, size, align=1) -> (code, offset): the table's result, as is. */
static PyObject *raw_alloc(PyObject *mod, PyObject *args)
{
    PyObject *heap;
    unsigned long long size, align = 1;
    uint64_t off = 0;
    (void)mod;
    if (!PyArg_ParseTuple(args, "OK|K", &heap, &size, &align))
        return NULL;
    int rc = api->alloc(heap, size, align, &off);
    return Py_BuildValue("iK", rc, (unsigned long long)off);
}

/* raw_free(heap, offset) -> code */
static PyObject *raw_free(PyObject *mod, PyObject *args)
{
    PyObject *heap;
    unsigned long long off;
    (void)mod;
    if (!PyArg_ParseTuple(args, "OK", &heap, &off))
        return NULL;
    return PyLong_FromLong(api->free(heap, off));
}

/* raw_realloc(heap, offset, size) -> (code, offset); raw_usable_size(heap, offset) -> (code, size) */
static PyObject *raw_realloc(PyObject *mod, PyObject *args)
{
    PyObject *heap;
    unsigned long long off, size;
    uint64_t out = 0;
    (void)mod;
    if (!PyArg_ParseTuple(args, "OKK", &heap, &off, &size))
        return NULL;
    int rc = api->realloc(heap, off, size, &out);
    return Py_BuildValue("iK", rc, (unsigned long long)out);
}

static PyObject *raw_usable_size(PyObject *mod, PyObject *args)
{
    PyObject *heap;
    unsigned long long off;
    uint64_t out = 0;
    (void)mod;
    if (!PyArg_ParseTuple(args, "OK", &heap, &off))
        return NULL;
    int rc = api->usable_size(heap, off, &out);
    return Py_BuildValue("iK", rc, (unsigned long long)out);
}

/* core(heap) -> capacity, through get_core (raises as it does). */
static PyObject *core(PyObject *mod, PyObject *heap)
{
    uint64_t capacity = 0;
    struct tlsf *t = NULL;
    uint8_t *base = NULL;
    (void)mod;
    if (api->get_core(heap, &t, &base, &capacity) < 0)
        return NULL;
    if (!t || !base)
        return PyErr_Format(PyExc_AssertionError, "get_core gave no core");
    return PyLong_FromUnsignedLongLong(capacity);
}

/* pairs(heap, n, size) -> (done, errors, mismatches): n allocations of size
 * bytes without the GIL, up to 8 alive at once, each filled with a pattern
 * checked before it is freed. `errors` counts calls that failed, `mismatches`
 * blocks whose pattern changed (another user wrote into them). */
static PyObject *pairs(PyObject *mod, PyObject *args)
{
    PyObject *heap;
    Py_ssize_t n, size;
    uint8_t *base;
    (void)mod;
    if (!PyArg_ParseTuple(args, "Onn", &heap, &n, &size))
        return NULL;
    if (api->get_core(heap, NULL, &base, NULL) < 0)
        return NULL;
    Py_ssize_t done = 0, errors = 0, mismatches = 0;
    uint64_t live[8];
    int have[8] = {0};
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        int k = (int)(i & 7);
        if (have[k]) {
            uint8_t *p = base + live[k];
            for (Py_ssize_t j = 0; j < size; j++)
                if (p[j] != (uint8_t)(k + 1)) {
                    mismatches++;
                    break;
                }
            if (api->free(heap, live[k]) != TLSF_CAPI_OK)
                errors++;
            have[k] = 0;
        }
        if (api->alloc(heap, (uint64_t)size, 16, &live[k]) != TLSF_CAPI_OK) {
            errors++;
            continue;
        }
        memset(base + live[k], k + 1, (size_t)size);
        have[k] = 1;
        done++;
    }
    for (int k = 0; k < 8; k++)
        if (have[k] && api->free(heap, live[k]) != TLSF_CAPI_OK)
            errors++;
    Py_END_ALLOW_THREADS
    return Py_BuildValue("nnn", done, errors, mismatches);
}

/* lock_unlock(heap): takes and releases the heap's lock (with the GIL). */
static PyObject *lock_unlock(PyObject *mod, PyObject *heap)
{
    (void)mod;
    if (api->get_core(heap, NULL, NULL, NULL) < 0)
        return NULL;
    api->lock(heap);
    api->unlock(heap);
    Py_RETURN_NONE;
}

static PyObject *info(PyObject *mod, PyObject *noargs)
{
    (void)mod, (void)noargs;
    return Py_BuildValue("(InO)", api->version, (Py_ssize_t)api->size, (PyObject *)api->heap_type);
}

static PyMethodDef methods[] = {
    {"raw_alloc", raw_alloc, METH_VARARGS, NULL},
    {"raw_free", raw_free, METH_VARARGS, NULL},
    {"raw_realloc", raw_realloc, METH_VARARGS, NULL},
    {"raw_usable_size", raw_usable_size, METH_VARARGS, NULL},
    {"core", core, METH_O, NULL},
    {"pairs", pairs, METH_VARARGS, NULL},
    {"lock_unlock", lock_unlock, METH_O, NULL},
    {"info", info, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "capi_user", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_capi_user(void)
{
    if (!(api = tlsf_capi_import()))
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    if (PyModule_AddIntConstant(m, "OK", TLSF_CAPI_OK) < 0 || PyModule_AddIntConstant(m, "ENOMEM", TLSF_CAPI_ENOMEM) < 0 ||
        PyModule_AddIntConstant(m, "EINVAL", TLSF_CAPI_EINVAL) < 0 ||
        PyModule_AddIntConstant(m, "ECLOSED", TLSF_CAPI_ECLOSED) < 0 ||
        PyModule_AddIntConstant(m, "ENOTHEAP", TLSF_CAPI_ENOTHEAP) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

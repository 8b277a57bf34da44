/*
 * module.c: the module tlsf._core, the thin CPython binding of the TLSF cores:
 * Heap over the in-band engine (heap.c), OffsetAllocator over the out-of-band
 * one (offset.c), and the capsule _C_API for other extensions (capi.c).
 *
 * Multi-phase initialisation: everything the binding keeps lives in the
 * module state (state.h), none in static variables, so each interpreter that
 * imports the module (a subinterpreter too, one with its own GIL too) has its
 * own copy.
 *
 * The GIL: every core call runs under the object's own lock (lock.h), so the
 * C API may call a heap without the GIL. But the module still relies on the
 * GIL elsewhere (a heap's count of view exports, close() against it, the
 * buffer it pins, the `owned` memory), so it declares Py_MOD_GIL_USED: a
 * free-threaded build keeps the GIL enabled while this module is imported.
 */
#include <stddef.h>
#include <string.h>

#include "state.h"
#include "tlsf.h"

static int import_attr(const char *module, const char *name, PyObject **out)
{
    PyObject *m = PyImport_ImportModule(module);
    if (!m)
        return -1;
    *out = PyObject_GetAttrString(m, name);
    Py_DECREF(m);
    return *out ? 0 : -1;
}

/* PyType_FromModuleAndSpec, and on Python 3.9, whose copy of the docstring
 * (tp_doc) leaves out its text signature ("Heap(memory, ...)\n--\n\n", which
 * is where inspect.signature looks), the whole docstring put back; __doc__
 * (the type dict's, made from the copy) is without the signature either way. */
PyTypeObject *new_type(PyObject *m, PyType_Spec *spec)
{
    PyTypeObject *type = (PyTypeObject *)PyType_FromModuleAndSpec(m, spec, NULL);
#if PY_VERSION_HEX < 0x030A0000
    for (PyType_Slot *s = spec->slots; type && s->slot; s++) {
        if (s->slot != Py_tp_doc || !s->pfunc)
            continue;
        size_t len = strlen(s->pfunc) + 1;
        char *doc = PyObject_Malloc(len); /* freed by the type's deallocation */
        if (!doc) {
            Py_DECREF(type);
            PyErr_NoMemory();
            return NULL;
        }
        memcpy(doc, s->pfunc, len);
        PyObject_Free((void *)type->tp_doc);
        type->tp_doc = doc;
    }
#endif
    return type;
}

static int core_exec(PyObject *m)
{
    static const char *const kw[KW_COUNT] = {"offset", "size", "align", "sizes", "offsets"};
    core_state *st = (core_state *)PyModule_GetState(m);
    if (import_attr("tlsf._errors", "OutOfMemoryError", &st->OutOfMemoryError) < 0 ||
        import_attr("tlsf._errors", "InvalidOffsetError", &st->InvalidOffsetError) < 0 ||
        import_attr("tlsf._errors", "CorruptionError", &st->CorruptionError) < 0 ||
        import_attr("tlsf._records", "Stats", &st->StatsType) < 0 ||
        import_attr("tlsf._records", "BlockInfo", &st->BlockInfoType) < 0 ||
        import_attr("array", "array", &st->ArrayType) < 0)
        return -1;
    for (int i = 0; i < KW_COUNT; i++)
        if (!(st->kw[i] = PyUnicode_InternFromString(kw[i])))
            return -1;
    if (heap_add_types(m, st) < 0 || flex_add_type(m, st) < 0 || shared_add_type(m, st) < 0 ||
        offset_add_type(m, st) < 0 || block_add_type(m, st) < 0 ||
        PyModule_AddIntConstant(m, "GRANULARITY", TLSF_GRANULARITY) < 0 ||
        PyModule_AddIntConstant(m, "HEADER_SIZE", TLSF_HEADER_SIZE) < 0 ||
        PyModule_AddIntConstant(m, "MIN_BLOCK", TLSF_MIN_BLOCK) < 0 ||
        PyModule_AddIntConstant(m, "SENTINEL_SIZE", TLSF_SENTINEL_SIZE) < 0)
        return -1;
    capi_fill(&st->capi, st->HeapType);
    PyObject *capsule = PyCapsule_New(&st->capi, TLSF_CAPI_NAME, NULL);
    if (!capsule || PyModule_AddObject(m, "_C_API", capsule) < 0) {
        Py_XDECREF(capsule);
        return -1;
    }
    return 0;
}

/* The state's objects, for the GC and for freeing. */
#define STATE_OBJECTS(st)                                                                        \
    (st)->OutOfMemoryError, (st)->InvalidOffsetError, (st)->CorruptionError, (st)->StatsType,    \
        (st)->BlockInfoType, (st)->ArrayType, (st)->kw[0], (st)->kw[1], (st)->kw[2], (st)->kw[3], \
        (st)->kw[4], (PyObject *)(st)->HeapType, (PyObject *)(st)->FlexHeapType,                  \
        (PyObject *)(st)->SharedHeapType, (PyObject *)(st)->ExportType, (PyObject *)(st)->OffsetType, \
        (PyObject *)(st)->BlockType

static int core_traverse(PyObject *m, visitproc visit, void *arg)
{
    core_state *st = (core_state *)PyModule_GetState(m);
    if (!st)
        return 0;
    PyObject *objs[] = {STATE_OBJECTS(st)};
    for (size_t i = 0; i < sizeof objs / sizeof *objs; i++)
        Py_VISIT(objs[i]);
    return 0;
}

static int core_clear(PyObject *m)
{
    core_state *st = (core_state *)PyModule_GetState(m);
    if (!st)
        return 0;
    PyObject **slots[] = {&st->OutOfMemoryError, &st->InvalidOffsetError, &st->CorruptionError, &st->StatsType,
                          &st->BlockInfoType, &st->ArrayType, &st->kw[0], &st->kw[1], &st->kw[2], &st->kw[3],
                          &st->kw[4], (PyObject **)&st->HeapType, (PyObject **)&st->FlexHeapType,
                          (PyObject **)&st->SharedHeapType, (PyObject **)&st->ExportType, (PyObject **)&st->OffsetType,
                          (PyObject **)&st->BlockType};
    _Static_assert(KW_COUNT == 5, "core_clear and STATE_OBJECTS name every keyword");
    for (size_t i = 0; i < sizeof slots / sizeof *slots; i++)
        Py_CLEAR(*slots[i]);
    return 0;
}

static void core_free(void *m)
{
    core_clear((PyObject *)m);
}

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, (void *)core_exec},
#ifdef Py_mod_multiple_interpreters
    /* No static mutable state: each interpreter has its own module state. */
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_mod_gil
    /* Not every part is safe without the GIL (see the top of this file). */
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tlsf._core",
    .m_doc = "The C core of tlsf: Heap, a TLSF allocator over a Python buffer, and OffsetAllocator,\n"
             "one over offsets it never touches (out-of-band metadata).",
    .m_size = sizeof(core_state),
    .m_slots = core_slots,
    .m_traverse = core_traverse,
    .m_clear = core_clear,
    .m_free = core_free,
};

PyMODINIT_FUNC PyInit__core(void)
{
    return PyModuleDef_Init(&core_module);
}

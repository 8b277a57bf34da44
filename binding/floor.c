/*
 * floor.c: tlsf._floor, a private module of the benchmark only (src/tlsf/bench.py),
 * kept out of tlsf._core.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if defined(__GNUC__) || defined(__clang__)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define UNLIKELY(x) (x)
#endif
#define FASTCALL_KW(f) ((PyCFunction)(void (*)(void))(f))

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

static PyType_Slot floor_slots[] = {
    {Py_tp_doc, (void *)"Do-nothing alloc/free/realloc with Heap's calling conventions (benchmark floor)."},
    {Py_tp_methods, floor_methods},
    {Py_tp_new, (void *)PyType_GenericNew},
    {0, NULL},
};

static PyType_Spec floor_spec = {
    .name = "tlsf._floor._Floor",
    .basicsize = sizeof(FloorObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = floor_slots,
};

static int floor_exec(PyObject *m)
{
    PyObject *type = PyType_FromModuleAndSpec(m, &floor_spec, NULL);
    if (!type)
        return -1;
    int rc = PyModule_AddType(m, (PyTypeObject *)type);
    Py_DECREF(type);
    return rc;
}

static PyModuleDef_Slot floor_module_slots[] = {
    {Py_mod_exec, (void *)floor_exec},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef floor_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tlsf._floor",
    .m_doc = "The benchmark's floor (python -m tlsf bench); not part of the API.",
    .m_size = 0,
    .m_slots = floor_module_slots,
};

PyMODINIT_FUNC PyInit__floor(void)
{
    return PyModuleDef_Init(&floor_module);
}

/*
 * state.h: what every file of the binding shares: the module state (no static
 * mutable globals: each interpreter that imports tlsf._core gets its own) and
 * how a method reaches it, plus a few macros.
 *
 * The types are heap types made from the module (PyType_FromModuleAndSpec),
 * and none can be subclassed, so Py_TYPE(self) is always one of them and
 * PyType_GetModuleState(Py_TYPE(self)) is this module's state. The hot paths
 * never look it up: only error and keyword paths do.
 */
#ifndef TLSF_BINDING_STATE_H
#define TLSF_BINDING_STATE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

#include "tlsf_capi.h"

#if defined(__GNUC__) || defined(__clang__)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define NOINLINE __attribute__((noinline))
#define HIDDEN __attribute__((visibility("hidden"))) /* shared between the binding's files only */
#define MAYBE_UNUSED __attribute__((unused))
#else
#define LIKELY(x) (x)
#define UNLIKELY(x) (x)
#define NOINLINE
#define HIDDEN
#define MAYBE_UNUSED
#endif

#define ULL(x) ((unsigned long long)(x))
/* The types cannot be changed from Python (as when they were static). */
#ifdef Py_TPFLAGS_IMMUTABLETYPE
#define TPFLAGS_FIXED Py_TPFLAGS_IMMUTABLETYPE
#else
#define TPFLAGS_FIXED 0
#endif

#define FASTCALL_KW(f) ((PyCFunction)(void (*)(void))(f))

/* The interned parameter names, for keyword arguments. */
enum { KW_OFFSET, KW_SIZE, KW_ALIGN, KW_SIZES, KW_OFFSETS, KW_COUNT };

typedef struct {
    /* Shared with the pure-Python twin (tlsf._errors, tlsf._records), so that
     * both implementations raise and return exactly the same classes. */
    PyObject *OutOfMemoryError, *InvalidOffsetError, *CorruptionError;
    PyObject *StatsType, *BlockInfoType;
    PyObject *ArrayType; /* array.array */
    PyObject *kw[KW_COUNT];
    PyTypeObject *HeapType, *FlexHeapType, *SharedHeapType, *ExportType, *OffsetType, *BlockType;
    TLSF_CAPI capi; /* what the capsule tlsf._core._C_API points to */
} core_state;

/* The state of the module that made self's type. */
static inline core_state *state_of(PyObject *self)
{
    return (core_state *)PyType_GetModuleState(Py_TYPE(self));
}

/* Adds the types of heap.c, flex.c, shared.c, offset.c and block.c to module m (module.c's exec). */
HIDDEN int heap_add_types(PyObject *m, core_state *st);
HIDDEN int flex_add_type(PyObject *m, core_state *st);
HIDDEN int shared_add_type(PyObject *m, core_state *st);
HIDDEN int offset_add_type(PyObject *m, core_state *st);
HIDDEN int block_add_type(PyObject *m, core_state *st);
/* A type of module m made from spec, with its text signature (module.c). */
HIDDEN PyTypeObject *new_type(PyObject *m, PyType_Spec *spec);
/* Fills the C API table (capi.c). */
HIDDEN void capi_fill(TLSF_CAPI *api, PyTypeObject *heap_type);

#endif

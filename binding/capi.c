/*
 * capi.c: the functions of the C API table (src/tlsf/include/tlsf_capi.h).
 * All but get_core run without the GIL: they touch only the heap's C state,
 * under its lock.
 */
#include "heap.h"

/* The table's codes are the core's. */
_Static_assert(TLSF_CAPI_OK == TLSF_OK && TLSF_CAPI_ENOMEM == TLSF_ENOMEM && TLSF_CAPI_EINVAL == TLSF_EINVAL &&
                   TLSF_CAPI_ECORRUPT == TLSF_ECORRUPT,
               "tlsf_capi.h codes");

static int capi_get_core(PyObject *heap, struct tlsf **t, uint8_t **base, uint64_t *capacity)
{
    if (!is_heap(heap)) {
        PyErr_Format(PyExc_TypeError, "a tlsf._core.Heap, FlexHeap or SharedHeap is needed, not %.200s",
                     Py_TYPE(heap)->tp_name);
        return -1;
    }
    HeapObject *self = (HeapObject *)heap;
    tlsf_lock(&self->lock);
    tlsf_t *core = heap_memory_open(self) ? self->t : NULL;
    uint8_t *b = self->base;
    tlsf_unlock(&self->lock);
    if (!core) {
        PyErr_SetString(PyExc_ValueError, "heap is closed");
        return -1;
    }
    if (t)
        *t = core;
    if (base)
        *base = b;
    if (capacity)
        *capacity = self->capacity;
    return 0;
}

static void capi_lock(PyObject *heap)
{
    HeapObject *self = (HeapObject *)heap;
    if (self->shared)
        shared_capi_lock(self);
    else
        tlsf_lock(&self->lock);
}

static void capi_unlock(PyObject *heap)
{
    HeapObject *self = (HeapObject *)heap;
    if (self->shared)
        shared_capi_unlock(self);
    else
        tlsf_unlock(&self->lock);
}

/* Runs `call` on heap's open core under its lock; the codes of the table. */
#define CAPI_CALL(heap, call)                               \
    do {                                                    \
        if (!is_heap(heap))                                 \
            return TLSF_CAPI_ENOTHEAP;                      \
        HeapObject *self = (HeapObject *)(heap);            \
        int rc;                                             \
        HEAP_CALL(self, rc, call);                          \
        return rc == RC_CLOSED    ? TLSF_CAPI_ECLOSED       \
               : rc == RC_NO_LOCK ? TLSF_CAPI_ECORRUPT      \
                                  : rc;                     \
    } while (0)

static int capi_alloc(PyObject *heap, uint64_t size, uint64_t align, uint64_t *offset)
{
    CAPI_CALL(heap, core_alloc(self, size, align, offset));
}

static int capi_free(PyObject *heap, uint64_t offset)
{
    CAPI_CALL(heap, core_free(self, offset));
}

static int capi_realloc(PyObject *heap, uint64_t offset, uint64_t size, uint64_t *new_offset)
{
    CAPI_CALL(heap, core_realloc(self, offset, size, new_offset));
}

static int capi_usable_size(PyObject *heap, uint64_t offset, uint64_t *size)
{
    CAPI_CALL(heap, tlsf_usable_size(self->t, self->base, offset, size));
}

/* A held allocation and its release: the count changes in the same locked
 * step as the allocation, so close() (heap.c) never sees one without the
 * other. */
static int held_alloc(HeapObject *h, uint64_t size, uint64_t align, uint64_t *offset)
{
    int rc = core_alloc(h, size, align, offset);
    h->holds += rc == TLSF_OK;
    return rc;
}

static int held_free(HeapObject *h, uint64_t offset)
{
    int rc = core_free(h, offset);
    h->holds -= rc == TLSF_OK;
    return rc;
}

static int capi_alloc_held(PyObject *heap, uint64_t size, uint64_t align, uint64_t *offset)
{
    CAPI_CALL(heap, held_alloc(self, size, align, offset));
}

static int capi_free_held(PyObject *heap, uint64_t offset)
{
    CAPI_CALL(heap, held_free(self, offset));
}

void capi_fill(TLSF_CAPI *api, PyTypeObject *heap_type)
{
    api->version = TLSF_CAPI_VERSION;
    api->size = sizeof(TLSF_CAPI);
    api->heap_type = heap_type;
    api->get_core = capi_get_core;
    api->lock = capi_lock;
    api->unlock = capi_unlock;
    api->alloc = capi_alloc;
    api->free = capi_free;
    api->realloc = capi_realloc;
    api->usable_size = capi_usable_size;
    api->alloc_held = capi_alloc_held;
    api->free_held = capi_free_held;
}

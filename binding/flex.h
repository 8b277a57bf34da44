/*
 * flex.h: the FlexHeap object (flex.c), and what SharedHeap (shared.c), a
 * FlexHeap whose file is a shared memory segment, takes from it: making the
 * object and its reservation, the file source, the argument checks, the
 * messages, and the methods and properties both types have.
 */
#ifndef TLSF_BINDING_FLEX_H
#define TLSF_BINDING_FLEX_H

#include "heap.h"
#include "platform/os_memory.h"
#include "tlsf_image.h"

#define DEFAULT_MAX_SIZE ((uint64_t)1 << 40)       /* 1 TiB of address space */
#define DEFAULT_FILE_MAX_SIZE ((uint64_t)16 << 30) /* a file's control structure is sized by it */
#define SMALLEST_DEFAULT ((uint64_t)1 << 30)       /* halved down to this when the system refuses */
#define DEFAULT_TRIM_THRESHOLD ((uint64_t)1 << 20) /* 1 MiB of whole pages */

typedef struct {
    HeapObject heap; /* first: heap.c's methods take a FlexHeap as a HeapObject */
    tlsf_flex_t flex;
    uint8_t *map;    /* the reservation: [header,] control structure, arena at heap.base */
    uint64_t map_size;
    int hugepages;   /* transparent huge pages asked for the arena */
    uint64_t root;   /* an anonymous heap's root (a file keeps it in its header) */
    /* a file heap (tlsf_image.h), else fd -1 and the rest NULL or 0 */
    int fd;
    PyObject *path;              /* os.fspath() of the path given */
    tlsf_image_header_t *hdr;    /* the file's header, in the mapping */
    uint64_t mapped;             /* bytes of the reservation mapped from the file, from its start */
} FlexHeapObject;

static inline uint64_t round_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* The arguments: max_size (None: `fallback`; else 1..2**58) and
 * trim_threshold (absent: the default; None: off; else >= 0). */
HIDDEN int flex_max_size_arg(PyObject *o, uint64_t fallback, uint64_t *out);
HIDDEN int flex_trim_threshold_arg(PyObject *o, uint64_t *out);

/* A FlexHeap object of `type` owning nothing yet. */
HIDDEN FlexHeapObject *flex_new_object(PyTypeObject *type, unsigned sl_len, int hugepages);
/* Reserves `prefix` bytes (page-rounded; 0: a control structure's) then room
 * for an arena of *max_size bytes; with `shrink`, halves it while the system
 * refuses. 0, or an errno value (flex_reserve_error says it). */
HIDDEN int flex_reserve(FlexHeapObject *self, uint64_t prefix, uint64_t *max_size, int shrink);
HIDDEN PyObject *flex_reserve_error(uint64_t max_size, int err);
/* The heap is ready: t initialised, base set; the flex engine over `src`
 * with a pool of `size` bytes. Returns self. */
HIDDEN PyObject *flex_ready(FlexHeapObject *self, tlsf_t *t, uint64_t max_size, const tlsf_flex_source_t *src,
                            uint64_t trim, uint64_t size);
/* The source of a heap in a file (self->fd, self->hdr): storage before
 * growth, holes for pages given back. */
HIDDEN tlsf_flex_source_t flex_file_source(FlexHeapObject *self);
/* OSError for errno err about `path`; what tlsf_image_check found about the
 * image self->path names (`what`: "heap file", ...), as an exception. */
HIDDEN PyObject *flex_file_error(PyObject *path, int err);
HIDDEN PyObject *flex_image_error(FlexHeapObject *self, const char *what, int kind, uint64_t detail,
                                  uint64_t file_size);

/* Methods and properties of both types. */
HIDDEN PyObject *flex_trim(FlexHeapObject *self, PyObject *ignored);
HIDDEN PyObject *flex_arena(FlexHeapObject *self, PyObject *ignored);
HIDDEN PyObject *flex_get_root(FlexHeapObject *self, void *closure);
HIDDEN int flex_set_root(FlexHeapObject *self, PyObject *value, void *closure);
HIDDEN PyObject *flex_get_size(FlexHeapObject *self, void *closure);
HIDDEN PyObject *flex_get_trim_threshold(FlexHeapObject *self, void *closure);

#endif

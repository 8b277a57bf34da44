/*
 * flex.c: tlsf._core.FlexHeap, a heap in its own reservation of address space
 * that grows as it is used and gives pages back: csrc/tlsf_flex.h over
 * csrc/platform/os_memory.h. The pure-Python twin (tlsf.pure.FlexHeap,
 * src/tlsf/pure/flex.py) mirrors this file.
 *
 * A FlexHeap object is a HeapObject (heap.h) whose `flex` is set: Heap's
 * methods, views, lock, closing and the C API serve it unchanged, and route
 * the calls that allocate and free through the flex engine. The reservation
 * holds the control structure, then the arena; both are zero and cost no
 * memory until touched, and neither ever moves. A file heap (create, open;
 * csrc/tlsf_image.h) maps its file over the start of such a reservation,
 * header and control structure first, and maps more of it as it grows. The
 * object and the functions SharedHeap (shared.c) uses too are in flex.h.
 */
#include "flex.h"

#include <errno.h>
#include <string.h>

#include <structmember.h>

#include "args.h"
#include "errors.h"
#include "heap_methods.h"

/* ------------------------------------------------------------ the sources */

/* Anonymous memory: the arena is reserved whole, so growing needs nothing;
 * pages go back to the system. */
static uint64_t discard_pages(void *ctx, uint8_t *p, uint64_t n, int count)
{
    (void)ctx;
    return tlsf_os_discard(p, n, count);
}

/* A file: before the pool grows to new_size, the file gets storage for the
 * new bytes and for their part of the live bitmap (so that no write through
 * the mapping can fail for want of disk space), and the new bytes are mapped
 * over the reservation. The header's size then says what the file holds. */
static int extend_file(void *ctx, uint64_t old_size, uint64_t new_size)
{
    FlexHeapObject *self = ctx;
    uint64_t arena_off = self->hdr->arena_off, page = tlsf_os_page_size(), end = arena_off + new_size;
    uint8_t *words;
    uint64_t n;
    /* the bitmap's words for the new bytes: whole words only, so one more
     * word's worth of arena (64 granules) takes in the last, partial one */
    tlsf_live_words(self->heap.t, old_size, new_size + 64 * TLSF_GRANULARITY, &words, &n);
    if (tlsf_os_file_allocate(self->fd, arena_off + old_size, new_size - old_size) ||
        (n && tlsf_os_file_allocate(self->fd, (uint64_t)(words - self->map), n)))
        return TLSF_ENOMEM;
    if (round_up(end, page) > self->mapped) {
        uint64_t to = round_up(end, page);
        if (tlsf_os_file_map(self->fd, self->mapped, to - self->mapped, self->map + self->mapped))
            return TLSF_ENOMEM;
        self->mapped = to;
    }
    self->hdr->size = new_size;
    return TLSF_OK;
}

/* A file: a hole where the pages were (storage given back too). */
static uint64_t discard_file(void *ctx, uint8_t *p, uint64_t n, int count)
{
    FlexHeapObject *self = ctx;
    return tlsf_os_file_discard(self->fd, (uint64_t)(p - self->map), p, n, count);
}

void flex_release(HeapObject *heap)
{
    FlexHeapObject *self = (FlexHeapObject *)heap;
    if (self->hdr) { /* closed cleanly: nothing is in progress */
        self->hdr->size = self->flex.size;
        self->hdr->flags |= TLSF_IMAGE_CLEAN;
        self->hdr = NULL;
    }
    if (self->map) {
        tlsf_os_unreserve(self->map, self->map_size);
        self->map = NULL;
    }
    if (self->fd >= 0) {
        tlsf_os_file_close(self->fd); /* drops the lock */
        self->fd = -1;
    }
}

/* ------------------------------------------------------------- arguments */

/* max_size: None (`fallback`), or a positive int up to 2**58. */
int flex_max_size_arg(PyObject *o, uint64_t fallback, uint64_t *out)
{
    PyObject *bad = NULL;
    if (o == Py_None) {
        *out = fallback;
        return 0;
    }
    int cls = as_u64(o, out, &bad);
    if (cls < 0)
        return -1;
    if (cls == ARG_NEG || (cls == ARG_IN && *out == 0))
        PyErr_Format(PyExc_ValueError, "max_size must be > 0, not %S", bad ? bad : o);
    else if (cls == ARG_HUGE || *out > TLSF_MAX_CAPACITY)
        PyErr_Format(PyExc_ValueError, "max_size of %S bytes exceeds the largest capacity, 2**58", bad ? bad : o);
    Py_XDECREF(bad);
    return PyErr_Occurred() ? -1 : 0;
}

/* trim_threshold: None (off) or an int >= 0 (bytes of whole pages). */
int flex_trim_threshold_arg(PyObject *o, uint64_t *out)
{
    PyObject *bad = NULL;
    if (!o) {
        *out = DEFAULT_TRIM_THRESHOLD;
        return 0;
    }
    if (o == Py_None) {
        *out = TLSF_FLEX_TRIM_OFF;
        return 0;
    }
    int cls = as_u64(o, out, &bad);
    if (cls == ARG_NEG)
        PyErr_Format(PyExc_ValueError, "trim_threshold must be >= 0 or None, not %S", bad);
    Py_XDECREF(bad);
    return cls < 0 || cls == ARG_NEG ? -1 : 0; /* a huge threshold is never reached: off */
}

/* -------------------------------------------------------- making a heap */

FlexHeapObject *flex_new_object(PyTypeObject *type, unsigned sl_len, int hugepages)
{
    FlexHeapObject *self = (FlexHeapObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    lock_init(&self->heap.lock);
    self->heap.sl_len = sl_len;
    self->heap.flex = &self->flex; /* from now on heap_release gives everything back */
    self->hugepages = hugepages;
    self->fd = -1;
    return self;
}

int flex_reserve(FlexHeapObject *self, uint64_t prefix, uint64_t *max_size, int shrink)
{
    uint64_t page = tlsf_os_page_size();
    for (;;) {
        uint64_t ctl = round_up(prefix ? prefix : tlsf_control_size(*max_size, self->heap.sl_len), page);
        self->map_size = ctl + round_up(*max_size, page);
        void *p;
        int err = tlsf_os_reserve(self->map_size, &p);
        if (!err) {
            self->map = p;
            self->heap.base = self->map + ctl;
            if (self->hugepages) /* the arena only: a best effort, where the platform has them */
                (void)tlsf_os_hugepages(self->heap.base, self->map_size - ctl);
            return 0;
        }
        if (!shrink || *max_size / 2 < SMALLEST_DEFAULT)
            return err;
        *max_size /= 2;
    }
}

PyObject *flex_reserve_error(uint64_t max_size, int err)
{
    return PyErr_Format(PyExc_MemoryError, "cannot reserve address space for a heap of %llu bytes (%s)",
                        ULL(max_size), strerror(err));
}

PyObject *flex_ready(FlexHeapObject *self, tlsf_t *t, uint64_t max_size, const tlsf_flex_source_t *src,
                     uint64_t trim, uint64_t size)
{
    tlsf_flex_init(&self->flex, t, self->heap.base, src, trim);
    self->flex.size = size;
    self->heap.capacity = max_size;
    tlsf_lock(&self->heap.lock);
    self->heap.t = t;
    tlsf_unlock(&self->heap.lock);
    return (PyObject *)self;
}

static PyObject *flex_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"max_size", "sl_len", "trim_threshold", "hugepages", NULL};
    PyObject *max_obj = Py_None, *sl_obj = NULL, *trim_obj = NULL;
    uint64_t max_size, trim;
    unsigned sl_len;
    int hugepages = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O$OOp:FlexHeap", kwlist, &max_obj, &sl_obj, &trim_obj,
                                     &hugepages))
        return NULL;
    if (flex_max_size_arg(max_obj, DEFAULT_MAX_SIZE, &max_size) < 0 || as_sl_len(sl_obj, &sl_len) < 0 ||
        flex_trim_threshold_arg(trim_obj, &trim) < 0)
        return NULL;
    if (!tlsf_control_size(max_size, sl_len)) {
        PyErr_Format(PyExc_ValueError, SL_LEN_ERROR ", not %u", sl_len);
        return NULL;
    }
    FlexHeapObject *self = flex_new_object(type, sl_len, hugepages);
    if (!self)
        return NULL;
    int err = flex_reserve(self, 0, &max_size, max_obj == Py_None);
    if (err) {
        Py_DECREF(self);
        return flex_reserve_error(max_size, err);
    }
    tlsf_t *t = (tlsf_t *)self->map;
    tlsf_init_zeroed(t, max_size, sl_len); /* checked above */
    tlsf_flex_source_t src = {NULL, discard_pages, self, tlsf_os_page_size()};
    return flex_ready(self, t, max_size, &src, trim, 0);
}

/* ------------------------------------------------------------ file heaps */

/* OSError for errno err on the heap's path (FileNotFoundError, ...); a lock
 * held elsewhere is said so. */
PyObject *flex_file_error(PyObject *path, int err)
{
    if (err == EWOULDBLOCK || err == EAGAIN)
        return PyErr_Format(PyExc_BlockingIOError, "%R is open in another FlexHeap (one at a time)", path);
    errno = err;
    return PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
}

PyObject *flex_image_error(FlexHeapObject *self, const char *what, int kind, uint64_t detail, uint64_t file_size)
{
    PyObject *path = self->path, *corrupt = state_of((PyObject *)self)->CorruptionError;
    switch (kind) {
    case TLSF_IMAGE_NOT_HEAP:
        return PyErr_Format(PyExc_ValueError, "%R is not a tlsf %s", path, what);
    case TLSF_IMAGE_NEWER:
        return PyErr_Format(PyExc_ValueError, "%R: %s format version %llu is newer than this tlsf reads (%u)", path,
                            what, ULL(detail), TLSF_IMAGE_VERSION);
    case TLSF_IMAGE_FOREIGN:
        return PyErr_Format(PyExc_ValueError, "%R: %s made on a machine of another word size or byte order", path,
                            what);
    case TLSF_IMAGE_TRUNCATED:
        return PyErr_Format(corrupt, "%R: %s is truncated (%llu bytes; its header says %llu)", path, what,
                            ULL(file_size), ULL(detail));
    default:
        return PyErr_Format(corrupt, "%R: %s header is inconsistent", path, what);
    }
}

/* Opens path (create: a new file) and locks it; self->path is os.fspath(path). */
static int open_path(FlexHeapObject *self, PyObject *path, int create, uint64_t *file_size)
{
    PyObject *fspath = PyOS_FSPath(path), *bytes = NULL;
    int err;
    if (!fspath)
        return -1;
    self->path = fspath;
    if (!PyUnicode_FSConverter(fspath, &bytes))
        return -1;
    Py_BEGIN_ALLOW_THREADS
    err = tlsf_os_file_open(PyBytes_AS_STRING(bytes), create, &self->fd, file_size);
    Py_END_ALLOW_THREADS
    Py_DECREF(bytes);
    if (err) {
        flex_file_error(fspath, err);
        return -1;
    }
    return 0;
}

/* Maps file bytes [0, n) (page-rounded) over the reservation. */
static int map_prefix(FlexHeapObject *self, uint64_t n)
{
    uint64_t to = round_up(n, tlsf_os_page_size());
    int err = tlsf_os_file_map(self->fd, 0, to, self->map);
    if (err) {
        flex_file_error(self->path, err);
        return -1;
    }
    self->mapped = to;
    self->hdr = (tlsf_image_header_t *)self->map;
    return 0;
}

tlsf_flex_source_t flex_file_source(FlexHeapObject *self)
{
    tlsf_flex_source_t src = {extend_file, discard_file, self, tlsf_os_page_size()};
    return src;
}

static PyObject *open_file(PyTypeObject *type, PyObject *path, int repair, uint64_t trim, int hugepages);

static PyObject *flex_create(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"path", "max_size", "sl_len", "exist_ok", "trim_threshold", "hugepages", NULL};
    PyObject *path, *max_obj = Py_None, *sl_obj = NULL, *trim_obj = NULL;
    uint64_t max_size, trim, file_size;
    unsigned sl_len;
    int exist_ok = 0, hugepages = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$OOpOp:create", kwlist, &path, &max_obj, &sl_obj, &exist_ok,
                                     &trim_obj, &hugepages))
        return NULL;
    if (flex_max_size_arg(max_obj, DEFAULT_FILE_MAX_SIZE, &max_size) < 0 || as_sl_len(sl_obj, &sl_len) < 0 ||
        flex_trim_threshold_arg(trim_obj, &trim) < 0)
        return NULL;
    uint64_t arena_off = tlsf_image_arena_off(max_size, sl_len);
    if (!arena_off) {
        PyErr_Format(PyExc_ValueError, SL_LEN_ERROR ", not %u", sl_len);
        return NULL;
    }
    if (max_size < TLSF_MIN_POOL) { /* a file always holds its pool */
        PyErr_Format(PyExc_ValueError, "max_size of a heap file must be at least %u bytes, not %llu",
                     TLSF_MIN_POOL, ULL(max_size));
        return NULL;
    }
    FlexHeapObject *self = flex_new_object(type, sl_len, hugepages);
    if (!self)
        return NULL;
    if (open_path(self, path, 1, &file_size) < 0) {
        if (exist_ok && PyErr_ExceptionMatches(PyExc_FileExistsError)) {
            PyErr_Clear();
            Py_DECREF(self);
            return open_file(type, path, 0, trim, hugepages);
        }
        goto fail;
    }
    int err = flex_reserve(self, arena_off, &max_size, 0);
    if (err) {
        flex_reserve_error(max_size, err);
        goto fail;
    }
    /* The header and control structure (sparse), the first pool, then the
     * magic: a file that has it is a heap. */
    if ((err = tlsf_os_file_resize(self->fd, arena_off))) {
        flex_file_error(self->path, err);
        goto fail;
    }
    if (map_prefix(self, arena_off) < 0)
        goto fail;
    tlsf_image_init(self->hdr, max_size, sl_len, 0);
    tlsf_t *t = (tlsf_t *)(self->map + TLSF_IMAGE_HEADER_SIZE);
    tlsf_init_zeroed(t, max_size, sl_len);
    tlsf_set_crash_safe(t);
    tlsf_flex_source_t src = flex_file_source(self);
    flex_ready(self, t, max_size, &src, trim, 0);
    if (tlsf_flex_grow(&self->flex, 1)) {
        PyErr_Format(PyExc_OSError, "%R: cannot make the heap's first pool (disk full?)", self->path);
        goto fail;
    }
    memcpy(self->hdr->magic, tlsf_image_magic, sizeof self->hdr->magic);
    return (PyObject *)self;

fail:
    Py_DECREF(self);
    return NULL;
}

static PyObject *flex_open(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"path", "recover", "trim_threshold", "hugepages", NULL};
    PyObject *path, *trim_obj = NULL;
    int repair = 0, hugepages = 0;
    uint64_t trim;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$pOp:open", kwlist, &path, &repair, &trim_obj, &hugepages) ||
        flex_trim_threshold_arg(trim_obj, &trim) < 0)
        return NULL;
    return open_file(type, path, repair, trim, hugepages);
}

/* Opens a heap file: its header checked, its control structure rebuilt from
 * the chain of block headers (strictly, or repairing), check() run. */
static PyObject *open_file(PyTypeObject *type, PyObject *path, int repair, uint64_t trim, int hugepages)
{
    tlsf_image_header_t h;
    uint64_t file_size, detail, pool_end;
    FlexHeapObject *self = flex_new_object(type, 0, hugepages);
    if (!self)
        return NULL;
    if (open_path(self, path, 0, &file_size) < 0)
        goto fail;
    memset(&h, 0, sizeof h);
    (void)tlsf_os_file_read(self->fd, &h, file_size < sizeof h ? file_size : sizeof h, 0);
    int kind = tlsf_image_check(&h, file_size, tlsf_image_magic, &detail);
    if (kind) {
        flex_image_error(self, "heap file", kind, detail, file_size);
        goto fail;
    }
    self->heap.sl_len = h.sl_len;
    uint64_t max_size = h.max_size;
    int err = flex_reserve(self, h.arena_off, &max_size, 0);
    if (err) {
        flex_reserve_error(max_size, err);
        goto fail;
    }
    if (map_prefix(self, file_size) < 0)
        goto fail;
    int clean = (self->hdr->flags & TLSF_IMAGE_CLEAN) != 0;
    self->hdr->flags &= ~TLSF_IMAGE_CLEAN; /* until closed */
    tlsf_t *t = (tlsf_t *)(self->map + TLSF_IMAGE_HEADER_SIZE);
    char msg[512];
    int rc = tlsf_recover(t, self->heap.base, max_size, h.sl_len, file_size - h.arena_off, repair, &pool_end);
    if (!rc)
        rc = tlsf_check(t, self->heap.base, msg, sizeof msg);
    if (rc) {
        PyObject *corrupt = state_of((PyObject *)self)->CorruptionError;
        uint64_t where = tlsf_bad_offset(t);
        if (repair)
            PyErr_Format(corrupt, "%R: the chain of block headers is broken at offset %llu; "
                         "recover=True cannot repair it", self->path, ULL(where));
        else if (clean)
            PyErr_Format(corrupt, "%R: the heap is corrupt at offset %llu", self->path, ULL(where));
        else
            PyErr_Format(corrupt, "%R was not closed cleanly and is inconsistent at offset %llu; "
                         "FlexHeap.open(path, recover=True) repairs it", self->path, ULL(where));
        self->hdr->flags |= clean ? TLSF_IMAGE_CLEAN : 0; /* left as it was */
        self->hdr = NULL;
        goto fail;
    }
    tlsf_set_crash_safe(t);
    self->hdr->size = pool_end;
    tlsf_flex_source_t src = flex_file_source(self);
    return flex_ready(self, t, max_size, &src, trim, pool_end);

fail:
    Py_DECREF(self);
    return NULL;
}

PyObject *flex_trim(FlexHeapObject *self, PyObject *Py_UNUSED(ignored))
{
    uint64_t released = 0;
    int rc;
    HEAP_CALL(&self->heap, rc, tlsf_flex_trim(&self->flex, &released));
    if (rc == RC_CLOSED)
        return closed_error(NULL);
    if (rc)
        return core_error((PyObject *)self, rc, 0, NULL);
    return PyLong_FromUnsignedLongLong(released);
}

/* The bytes of the pool as it is now, [0, size): for tests and tools that
 * look at (or scribble on) the heap image. The pool never shrinks, so the
 * view stays inside it. */
PyObject *flex_arena(FlexHeapObject *self, PyObject *Py_UNUSED(ignored))
{
    uint64_t size = 0;
    int rc;
    HEAP_CALL(&self->heap, rc, (size = self->flex.size, TLSF_OK));
    if (rc == RC_CLOSED)
        return closed_error(NULL);
    if (rc) /* a broken SharedHeap */
        return core_error((PyObject *)self, rc, 0, NULL);
    return heap_export(&self->heap, 0, size);
}

/* root: an offset the program keeps to find its data again (0: none), in a
 * file's or segment's header (so it survives with the heap, and every
 * process sees it), or in the object. */
PyObject *flex_get_root(FlexHeapObject *self, void *Py_UNUSED(closure))
{
    uint64_t root = self->root;
    int rc;
    HEAP_CALL(&self->heap, rc, (root = self->hdr ? self->hdr->root : self->root, TLSF_OK));
    if (rc != TLSF_OK && rc != RC_CLOSED) /* a broken SharedHeap; closed: the object's, 0 for a file */
        return core_error((PyObject *)self, rc, 0, NULL);
    return PyLong_FromUnsignedLongLong(root);
}

int flex_set_root(FlexHeapObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    PyObject *bad = NULL;
    uint64_t root;
    if (!value) {
        PyErr_SetString(PyExc_AttributeError, "root cannot be deleted (set it to 0)");
        return -1;
    }
    int cls = as_u64(value, &root, &bad);
    if (cls < 0)
        return -1;
    if (cls != ARG_IN) {
        PyErr_Format(PyExc_ValueError, "root must be in 0..2**64-1, not %S", bad);
        Py_DECREF(bad);
        return -1;
    }
    int rc;
    HEAP_CALL(&self->heap, rc, (*(self->hdr ? &self->hdr->root : &self->root) = root, TLSF_OK));
    if (rc) {
        rc == RC_CLOSED ? closed_error(NULL) : core_error((PyObject *)self, rc, 0, NULL);
        return -1;
    }
    return 0;
}

/* flush(): what is written so far reaches stable storage (a file heap; an
 * anonymous one has nothing to write). */
static PyObject *flex_flush(FlexHeapObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->heap.t)
        return closed_error(NULL);
    if (self->fd < 0)
        Py_RETURN_NONE;
    int err;
    uint64_t mapped = self->mapped;
    Py_BEGIN_ALLOW_THREADS
    err = tlsf_os_file_sync(self->fd, self->map, mapped);
    Py_END_ALLOW_THREADS
    if (err)
        return flex_file_error(self->path, err);
    Py_RETURN_NONE;
}

static PyObject *flex_get_path(FlexHeapObject *self, void *Py_UNUSED(closure))
{
    PyObject *path = self->path ? self->path : Py_None;
    Py_INCREF(path);
    return path;
}

PyObject *flex_get_size(FlexHeapObject *self, void *Py_UNUSED(closure))
{
    uint64_t size;
    int rc;
    HEAP_CALL(&self->heap, rc, (size = self->flex.size, TLSF_OK));
    if (rc == RC_CLOSED) /* the size it had */
        size = self->flex.size;
    else if (rc) /* a broken SharedHeap */
        return core_error((PyObject *)self, rc, 0, NULL);
    return PyLong_FromUnsignedLongLong(size);
}

PyObject *flex_get_trim_threshold(FlexHeapObject *self, void *Py_UNUSED(closure))
{
    if (self->flex.trim_threshold == TLSF_FLEX_TRIM_OFF)
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLongLong(self->flex.trim_threshold);
}

static PyObject *flex_get_hugepages(FlexHeapObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->hugepages);
}

static PyObject *flex_repr(FlexHeapObject *self)
{
    tlsf_stats_t s;
    int rc;
    memset(&s, 0, sizeof s);
    HEAP_CALL(&self->heap, rc, tlsf_stats(self->heap.t, self->heap.base, &s));
    PyObject *where = self->path ? PyUnicode_FromFormat(" path=%R", self->path) : PyUnicode_FromString("");
    if (!where)
        return NULL;
    PyObject *r;
    if (rc == RC_CLOSED)
        r = PyUnicode_FromFormat("<tlsf.FlexHeap%U max_size=%llu sl_len=%u closed>", where,
                                 ULL(self->heap.capacity), self->heap.sl_len);
    else
        r = PyUnicode_FromFormat("<tlsf.FlexHeap%U size=%llu max_size=%llu sl_len=%u allocations=%llu>", where,
                                 ULL(self->flex.size), ULL(self->heap.capacity), self->heap.sl_len,
                                 ULL(s.allocations));
    Py_DECREF(where);
    return r;
}

static PyMethodDef flex_methods[] = {
    HEAP_SHARED_METHODS,
    HEAP_CLOSE_METHODS("Give back the heap's reservation of address space and its pages; a file heap "
                       "is marked closed cleanly and unmapped, and its file closed (which another "
                       "FlexHeap may then open)."),
    {"trim", (PyCFunction)flex_trim, METH_NOARGS,
     "trim($self, /)\n--\n\nGive the whole pages inside every free block back to the system; return "
     "the bytes of them that were resident (an int)."},
    {"_arena", (PyCFunction)flex_arena, METH_NOARGS,
     "_arena($self, /)\n--\n\nA memoryview of the bytes of the pool now, headers and all (for tests and "
     "tools)."},
    {"flush", (PyCFunction)flex_flush, METH_NOARGS,
     "flush($self, /)\n--\n\nWrite what the heap file holds to stable storage (msync and fsync), so that it "
     "survives a power loss too; nothing to do for anonymous memory."},
    {"create", (PyCFunction)(void (*)(void))flex_create, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "create($type, /, path, *, max_size=None, sl_len=32, exist_ok=False, trim_threshold=1048576, "
     "hugepages=False)\n--\n\nA new FlexHeap in a new file (max_size: 16 GiB by default). exist_ok: open the heap "
     "the file holds instead of failing."},
    {"open", (PyCFunction)(void (*)(void))flex_open, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "open($type, /, path, *, recover=False, trim_threshold=1048576, hugepages=False)\n--\n\nThe heap "
     "in a file (a FlexHeap), every allocation as it was. A file not closed cleanly must be consistent, or opened "
     "with recover=True, which rebuilds it from its chain of block headers."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef flex_getset[] = {
    HEAP_SHARED_GETSET,
    {"capacity", (getter)heap_get_capacity, NULL, "Bytes of the arena, max_size: every offset lies below.",
     NULL},
    {"max_size", (getter)heap_get_capacity, NULL, "Bytes the pool may grow to.", NULL},
    {"size", (getter)flex_get_size, NULL, "Bytes of the arena in the pool now.", NULL},
    {"hugepages", (getter)flex_get_hugepages, NULL, "Whether transparent huge pages were asked for the arena.",
     NULL},
    {"trim_threshold", (getter)flex_get_trim_threshold, NULL,
     "Bytes of whole pages from which free() gives a free block's pages back; None: never.", NULL},
    {"root", (getter)flex_get_root, (setter)flex_set_root,
     "An offset the program keeps to find its data again (0: none); kept in the file of a file heap.", NULL},
    {"path", (getter)flex_get_path, NULL, "The heap file's path (os.fspath of what was given), or None.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef flex_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(HeapObject, weakrefs), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

void flex_dealloc(HeapObject *self)
{
    PyObject *path = ((FlexHeapObject *)self)->path;
    heap_dealloc(self);
    Py_XDECREF(path);
}

static PyType_Slot flex_slots[] = {
    {Py_tp_dealloc, (void *)flex_dealloc},
    {Py_tp_repr, (void *)flex_repr},
    {Py_tp_traverse, (void *)heap_traverse},
    {Py_tp_clear, (void *)heap_clear},
    {Py_tp_free, (void *)PyObject_GC_Del},
    {Py_tp_doc, (void *)"FlexHeap(max_size=None, *, sl_len=32, trim_threshold=1048576, hugepages=False)\n--\n\n"
                        "A TLSF heap in its own reservation of max_size bytes of address space\n"
                        "(default 1 TiB, or less where the system refuses) that grows as it is\n"
                        "used, never moving, and gives pages back (trim(), trim_threshold)."},
    {Py_tp_members, flex_members},
    {Py_tp_methods, flex_methods},
    {Py_tp_getset, flex_getset},
    {Py_tp_new, (void *)flex_new},
    {0, NULL},
};

static PyType_Spec flex_spec = {
    .name = "tlsf._core.FlexHeap",
    .basicsize = sizeof(FlexHeapObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | TPFLAGS_FIXED,
    .slots = flex_slots,
};

int flex_add_type(PyObject *m, core_state *st)
{
    st->FlexHeapType = new_type(m, &flex_spec);
    if (!st->FlexHeapType)
        return -1;
    return PyModule_AddType(m, st->FlexHeapType);
}

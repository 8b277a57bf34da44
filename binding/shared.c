/*
 * shared.c: tlsf._core.SharedHeap, one heap in a named POSIX shared memory
 * segment that every process attaching it allocates from and frees into.
 *
 * A SharedHeap object is a FlexHeap object (flex.h) whose file is the
 * segment, laid out as a heap file (csrc/tlsf_image.h, with its own magic):
 * header, the process-shared lock in the header page, control structure,
 * live bitmap, arena. Every link is an offset, so each process maps the
 * segment wherever it likes. The segment is sized for max_size when made (a
 * sparse object: pages cost memory only once touched) and every process maps
 * all of it, so growing the pool is appending under the lock and nobody ever
 * remaps; the file source gives each growth storage first (posix_fallocate,
 * so a full /dev/shm is OutOfMemoryError, not SIGBUS) and punches holes for
 * the pages trim gives back, for every process at once.
 *
 * The lock (csrc/platform/os_shared.h) is taken by HEAP_CALL around each
 * core call instead of the object's spin lock, and held only inside that
 * call: no Python code runs under it. Uncontended it is one trylock;
 * contended, the thread releases the GIL (when it holds it) before waiting
 * and takes it back after the call. When a process dies holding the lock,
 * the next taker rebuilds the control structure from the chain of block
 * headers (tlsf_recover, repairing; the core's stores are ordered so that the
 * chain is always a valid heap, and the heap is in crash-safe mode), then
 * goes on. A chain that cannot be rebuilt marks the segment broken: every
 * later call in every process is CorruptionError. Allocations the dead
 * process held stay allocated.
 *
 * In one process, close() must not unmap the segment under a thread inside a
 * call: `active` counts those threads, and close waits for them after
 * setting `closing` (which holds new ones back until it is done).
 *
 * The name: the process that made the segment removes its name when its
 * object closes (close, `with`, collection), unless persist=True; unlink()
 * and SharedHeap.remove(name) remove it explicitly. A name is removed only
 * while it still names this object's segment, so nothing is unlinked twice.
 */
#include "flex.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <structmember.h>

#include "args.h"
#include "errors.h"
#include "heap_methods.h"
#include "platform/os_shared.h"

_Static_assert(TLSF_OS_SHARED_LOCK_MAX <= TLSF_IMAGE_LOCK_SIZE, "the lock's room in the header page");

#define NAME_MAX_LEN 240 /* of a name without its '/' */

typedef struct {
    FlexHeapObject flex; /* first: a SharedHeap is a FlexHeap, and a HeapObject */
    void *lock;          /* the segment's process-shared lock, in its header page */
    PyObject *name;      /* without the leading '/' */
    long owner;          /* the pid that removes the name on close, or 0 */
    atomic_int active;   /* threads of this process inside shared_enter..shared_leave */
    atomic_int closing;  /* CLOSE_*: no new thread enters while it is not CLOSE_OPEN */
    unsigned long capi_holder; /* the thread holding the lock through the C API's lock(), or 0 */
} SharedHeapObject;

/* `closing`: close() drains the calls in progress (DRAINING), then either
 * closes the heap for good (CLOSED) or, refused because a numpy handler's
 * arrays still use it, opens it again (OPEN). A call that comes while it
 * drains waits for the outcome instead of failing: a free from the handler
 * told "closed" would hand the heap's block to the C library's free(). */
enum { CLOSE_OPEN, CLOSE_DRAINING, CLOSE_CLOSED };

static SharedHeapObject *as_shared(HeapObject *h) { return (SharedHeapObject *)h; }

/* One step of waiting, without the GIL, for another thread of this process
 * (which may itself wait for the lock held elsewhere): yield at first, then
 * sleep, so that a long wait is no busy loop. */
static void back_off(unsigned waits)
{
    if (waits < 100)
        sched_yield();
    else
        usleep(1000);
}

/* ---------------------------------------------------------------- the lock */

/* The GIL, when this thread holds it: released (its thread state returned).
 * Since 3.12 the current thread state is this thread's own (NULL: it holds
 * no GIL). Before, it is the GIL holder's, whichever thread asks: it is
 * compared, never dereferenced, with this thread's state. When in doubt the
 * GIL is kept, which only delays the process's other threads. */
static PyThreadState *release_gil(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    int held = PyThreadState_GetUnchecked() != NULL;
#elif PY_VERSION_HEX >= 0x030C0000
    int held = _PyThreadState_UncheckedGet() != NULL;
#else
    PyThreadState *mine = PyGILState_GetThisThreadState();
    int held = mine && _PyThreadState_UncheckedGet() == mine;
#endif
    return held ? PyEval_SaveThread() : NULL;
}

/* The holder of the lock died: rebuild the control structure from the chain
 * (it may have died inside an operation), or mark the segment broken. */
static void recover_dead_holder(SharedHeapObject *s)
{
    FlexHeapObject *f = &s->flex;
    tlsf_image_header_t *h = f->hdr;
    if (!(h->flags & TLSF_IMAGE_BROKEN)) {
        char msg[256];
        uint64_t pool_end;
        tlsf_t *t = f->heap.t;
        uint64_t avail = h->size < f->heap.capacity ? h->size : f->heap.capacity; /* all mapped */
        int rc = tlsf_recover(t, f->heap.base, f->heap.capacity, f->heap.sl_len, avail, 1, &pool_end);
        if (!rc)
            rc = tlsf_check(t, f->heap.base, msg, sizeof msg);
        if (rc) {
            h->flags |= TLSF_IMAGE_BROKEN;
        } else {
            tlsf_set_crash_safe(t);
            h->size = pool_end;
        }
    }
    h->recoveries++;
    tlsf_os_shared_lock_consistent(s->lock);
}

int shared_enter(HeapObject *self, PyThreadState **ts)
{
    SharedHeapObject *s = as_shared(self);
    atomic_fetch_add(&s->active, 1);
    for (int c; (c = atomic_load(&s->closing)) != CLOSE_OPEN;) {
        atomic_fetch_sub(&s->active, 1);
        if (c == CLOSE_CLOSED || !ts) /* no ts: the C API's lock(), which may hold the GIL close() needs */
            return RC_CLOSED;
        if (!*ts)
            *ts = release_gil();
        for (unsigned waits = 0; atomic_load(&s->closing) == CLOSE_DRAINING; waits++)
            back_off(waits);
        atomic_fetch_add(&s->active, 1);
    }
    int r = tlsf_os_shared_lock(s->lock, 0);
    if (r == TLSF_OS_LOCK_BUSY) {
        if (ts && !*ts)
            *ts = release_gil();
        r = tlsf_os_shared_lock(s->lock, 1);
    }
    if (r == TLSF_OS_LOCK_OWNER_DIED)
        recover_dead_holder(s);
    else if (r != TLSF_OS_LOCK_TAKEN) {
        atomic_fetch_sub(&s->active, 1);
        return RC_NO_LOCK;
    }
    if (UNLIKELY(s->flex.hdr->flags & TLSF_IMAGE_BROKEN))
        return TLSF_ECORRUPT;
    s->flex.flex.size = s->flex.hdr->size; /* another process may have grown the pool */
    return TLSF_OK;
}

void shared_leave(HeapObject *self, int entered, PyThreadState *ts)
{
    SharedHeapObject *s = as_shared(self);
    if (entered == TLSF_OK || entered == TLSF_ECORRUPT) {
        tlsf_os_shared_unlock(s->lock);
        atomic_fetch_sub(&s->active, 1);
    }
    if (ts)
        PyEval_RestoreThread(ts);
}

/* The C API's lock() and unlock() (capi.c): the lock without the GIL's
 * release (the caller may not hold it, and keeps the lock across its own
 * calls); unlock() lets go only what this thread took. */
void shared_capi_lock(HeapObject *self)
{
    int entered = shared_enter(self, NULL);
    if (entered == TLSF_OK || entered == TLSF_ECORRUPT)
        as_shared(self)->capi_holder = PyThread_get_thread_ident();
}

void shared_capi_unlock(HeapObject *self)
{
    SharedHeapObject *s = as_shared(self);
    if (s->capi_holder && s->capi_holder == PyThread_get_thread_ident()) {
        s->capi_holder = 0;
        shared_leave(self, TLSF_OK, NULL);
    }
}

int shared_closing(HeapObject *self) { return atomic_load(&as_shared(self)->closing); }

/* ---------------------------------------------------------------- the name */

/* name (str) -> "/name" in *path (a bytes object to release), and the
 * name without its '/' in *bare (a new reference). */
static int name_arg(PyObject *name, PyObject **path, PyObject **bare)
{
    if (!PyUnicode_Check(name)) {
        PyErr_Format(PyExc_TypeError, "name must be a str, not %.200s", Py_TYPE(name)->tp_name);
        return -1;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(name);
    Py_ssize_t from = n && PyUnicode_READ_CHAR(name, 0) == '/' ? 1 : 0;
    PyObject *b = PyUnicode_Substring(name, from, n);
    if (!b)
        return -1;
    Py_ssize_t len = PyUnicode_GET_LENGTH(b);
    if (len == 0 || len > NAME_MAX_LEN || PyUnicode_FindChar(b, '/', 0, len, 1) != -1 ||
        PyUnicode_FindChar(b, 0, 0, len, 1) != -1) {
        PyErr_Format(PyExc_ValueError,
                     "a shared heap's name is 1 to %d characters without '/' or NUL (one leading '/' is allowed), "
                     "not %R", NAME_MAX_LEN, name);
        Py_DECREF(b);
        return -1;
    }
    PyObject *slashed = PyUnicode_FromFormat("/%U", b);
    if (!slashed || !PyUnicode_FSConverter(slashed, path)) {
        Py_XDECREF(slashed);
        Py_DECREF(b);
        return -1;
    }
    Py_DECREF(slashed);
    if (PyBytes_GET_SIZE(*path) > NAME_MAX_LEN + 1) { /* the system's limit is of bytes */
        PyErr_Format(PyExc_ValueError, "a shared heap's name is at most %d bytes encoded, not %R (%zd)",
                     NAME_MAX_LEN, name, PyBytes_GET_SIZE(*path) - 1);
        Py_CLEAR(*path);
        Py_DECREF(b);
        return -1;
    }
    *bare = b;
    return 0;
}

/* A name no segment has yet, most likely: "tlsf-" and 16 random hex digits. */
static PyObject *random_name(void)
{
    PyObject *os = PyImport_ImportModule("os");
    PyObject *raw = os ? PyObject_CallMethod(os, "urandom", "i", 8) : NULL;
    PyObject *hex = raw ? PyObject_CallMethod(raw, "hex", NULL) : NULL;
    PyObject *name = hex ? PyUnicode_FromFormat("tlsf-%U", hex) : NULL;
    Py_XDECREF(os);
    Py_XDECREF(raw);
    Py_XDECREF(hex);
    return name;
}

/* Removes the name if it still names this object's segment. 0, or an errno
 * value (ENOENT: the name is gone, or names another segment). */
static int unlink_own_name(SharedHeapObject *s)
{
    PyObject *path = NULL, *bare = NULL;
    if (name_arg(s->name, &path, &bare) < 0) {
        PyErr_Clear(); /* a name this object was made with: valid */
        return EINVAL;
    }
    int err = tlsf_os_shm_unlink_if_same(PyBytes_AS_STRING(path), s->flex.fd);
    Py_DECREF(path);
    Py_DECREF(bare);
    return err;
}

/* Every open SharedHeap object of this process, in one list for every
 * interpreter (the names and the fork are the process's), under a mutex; for
 * two jobs an object cannot do itself:
 *   - at exit, the names this process still owns are removed (a heap still
 *     referenced when the interpreter exits, by a traceback or a cycle, is
 *     never deallocated);
 *   - in a child made by fork(), only the forking thread exists, and it is
 *     inside no call: each object's count of threads inside a call, copied
 *     from the parent, is reset (else close() would wait for them forever),
 *     and so are a close() and a C API lock() of another thread. */
typedef struct entry {
    struct entry *next;
    SharedHeapObject *heap;
    char path[NAME_MAX_LEN + 2]; /* "/name" */
} entry_t;

static entry_t *open_heaps;
static PyThread_type_lock open_heaps_mutex;

static void remove_names_at_exit(void)
{
    long pid = (long)getpid();
    for (entry_t *e = open_heaps; e; e = e->next)
        if (e->heap->owner == pid)
            (void)tlsf_os_shm_unlink_if_same(e->path, e->heap->flex.fd);
}

static void before_fork(void) { PyThread_acquire_lock(open_heaps_mutex, WAIT_LOCK); }
static void after_fork_in_parent(void) { PyThread_release_lock(open_heaps_mutex); }

static void after_fork_in_child(void)
{
    for (entry_t *e = open_heaps; e; e = e->next) {
        atomic_store(&e->heap->active, 0);
        atomic_store(&e->heap->closing, CLOSE_OPEN); /* a close() in progress was another thread's */
        e->heap->capi_holder = 0;
    }
    PyThread_release_lock(open_heaps_mutex);
}

/* Lists s (mapped, its fd open) until unlist. */
static int list_open(SharedHeapObject *s, const char *path)
{
    static int hooked; /* the handlers: 1 registered, -1 refused */
    entry_t *e = PyMem_RawCalloc(1, sizeof *e);
    if (!e) {
        PyErr_NoMemory();
        return -1;
    }
    e->heap = s;
    strncpy(e->path, path, sizeof e->path - 1);
    PyThread_acquire_lock(open_heaps_mutex, WAIT_LOCK);
    if (!hooked)
        hooked = atexit(remove_names_at_exit) == 0 &&
                         pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child) == 0
                     ? 1
                     : -1;
    e->next = open_heaps;
    open_heaps = e;
    PyThread_release_lock(open_heaps_mutex);
    if (hooked < 0) {
        PyErr_SetString(PyExc_RuntimeError, "SharedHeap: cannot register its exit and fork handlers");
        return -1;
    }
    return 0;
}

static void unlist(SharedHeapObject *s)
{
    PyThread_acquire_lock(open_heaps_mutex, WAIT_LOCK);
    for (entry_t **p = &open_heaps; *p; p = &(*p)->next)
        if ((*p)->heap == s) {
            entry_t *e = *p;
            *p = e->next;
            PyMem_RawFree(e);
            break;
        }
    PyThread_release_lock(open_heaps_mutex);
}

/* -------------------------------------------------------- making and closing */

static SharedHeapObject *new_shared(PyTypeObject *type, unsigned sl_len, PyObject *name)
{
    SharedHeapObject *s = (SharedHeapObject *)flex_new_object(type, sl_len, 0);
    if (!s)
        return NULL;
    s->flex.heap.shared = 1;
    atomic_init(&s->active, 0);
    atomic_init(&s->closing, CLOSE_OPEN);
    Py_INCREF(name);
    s->name = name;
    Py_INCREF(name);
    s->flex.path = name; /* what the messages of flex.h name */
    return s;
}

/* Maps the whole segment (fd, map_size bytes) over the reservation. */
static int map_segment(SharedHeapObject *s)
{
    FlexHeapObject *f = &s->flex;
    int err = tlsf_os_file_map(f->fd, 0, f->map_size, f->map);
    if (err) {
        flex_file_error(s->name, err);
        return -1;
    }
    f->mapped = f->map_size;
    f->hdr = (tlsf_image_header_t *)f->map;
    s->lock = f->map + TLSF_IMAGE_LOCK_OFF;
    return 0;
}

int shared_release(HeapObject *self, int refuse_held)
{
    SharedHeapObject *s = as_shared(self);
    atomic_store(&s->closing, CLOSE_DRAINING);
    if (atomic_load(&s->active) > 0) { /* threads inside a call, maybe waiting for the lock: without the GIL */
        PyThreadState *ts = release_gil();
        for (unsigned waits = 0; atomic_load(&s->active) > 0; waits++)
            back_off(waits);
        if (ts)
            PyEval_RestoreThread(ts);
    }
    /* No call is in progress and none can start: holds, changed only inside
     * calls, stays as read. Refused, the heap opens again, and the calls
     * that came meanwhile go on. */
    if (refuse_held && self->holds) {
        atomic_store(&s->closing, CLOSE_OPEN);
        return -1;
    }
    atomic_store(&s->closing, CLOSE_CLOSED);
    tlsf_lock(&self->lock);
    self->t = NULL;
    self->base = NULL;
    tlsf_unlock(&self->lock);
    if (s->owner && s->owner == (long)getpid() && s->flex.fd >= 0)
        (void)unlink_own_name(s);
    s->owner = 0;
    unlist(s);
    s->flex.hdr = NULL; /* the segment's size is its header's, kept by every growth */
    flex_release(self);
    return 0;
}

static PyObject *shared_error(PyObject *name, int err, const char *what)
{
    if (err == ENOSYS)
        return PyErr_Format(PyExc_NotImplementedError,
                            "SharedHeap needs a robust process-shared lock, which this platform does not have");
    if (what)
        return PyErr_Format(PyExc_OSError, "%R: %s (%s)", name, what, strerror(err));
    return flex_file_error(name, err);
}

static PyObject *shared_create(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"name", "max_size", "sl_len", "trim_threshold", "persist", NULL};
    PyObject *name = Py_None, *max_obj = Py_None, *sl_obj = NULL, *trim_obj = NULL, *path = NULL, *bare = NULL;
    uint64_t max_size, trim, size;
    unsigned sl_len;
    int persist = 0, err;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O$OOOp:create", kwlist, &name, &max_obj, &sl_obj, &trim_obj,
                                     &persist))
        return NULL;
    if (flex_max_size_arg(max_obj, DEFAULT_MAX_SIZE, &max_size) < 0 || as_sl_len(sl_obj, &sl_len) < 0 ||
        flex_trim_threshold_arg(trim_obj ? trim_obj : Py_None, &trim) < 0)
        return NULL;
    if (max_size < TLSF_MIN_POOL) {
        PyErr_Format(PyExc_ValueError, "max_size of a shared heap must be at least %u bytes, not %llu",
                     TLSF_MIN_POOL, ULL(max_size));
        return NULL;
    }
    uint64_t arena_off = tlsf_image_arena_off(max_size, sl_len);
    if (!arena_off) {
        PyErr_Format(PyExc_ValueError, SL_LEN_ERROR ", not %u", sl_len);
        return NULL;
    }
    int random = name == Py_None;
    SharedHeapObject *s = NULL;
    for (int tries = 0;; tries++) {
        PyObject *given = random ? random_name() : (Py_INCREF(name), name);
        if (!given)
            return NULL;
        err = name_arg(given, &path, &bare);
        Py_DECREF(given);
        if (err < 0)
            return NULL;
        if (!(s = new_shared(type, sl_len, bare)))
            goto fail;
        Py_CLEAR(bare);
        err = tlsf_os_shm_open(PyBytes_AS_STRING(path), 1, &s->flex.fd, &size);
        if (!err)
            break;
        if (!(random && err == EEXIST && tries < 8)) {
            flex_file_error(s->name, err);
            goto fail;
        }
        Py_CLEAR(path);
        Py_CLEAR(s);
    }
    s->owner = persist ? 0 : (long)getpid();
    /* From here a failure removes the name it made. */
    if ((err = flex_reserve(&s->flex, arena_off, &max_size, 0))) { /* arena_off is max_size's */
        flex_reserve_error(max_size, err);
        goto fail_made;
    }
    if ((err = tlsf_os_file_resize(s->flex.fd, s->flex.map_size))) { /* sparse: costs nothing yet */
        shared_error(s->name, err, NULL);
        goto fail_made;
    }
    if (map_segment(s) < 0)
        goto fail_made;
    tlsf_image_init(s->flex.hdr, max_size, sl_len, 0);
    if ((err = tlsf_os_shared_lock_init(s->lock))) {
        shared_error(s->name, err, "cannot make the lock");
        goto fail_made;
    }
    tlsf_t *t = (tlsf_t *)(s->flex.map + TLSF_IMAGE_HEADER_SIZE);
    tlsf_init_zeroed(t, max_size, sl_len);
    tlsf_set_crash_safe(t);
    tlsf_flex_source_t src = flex_file_source(&s->flex);
    flex_ready(&s->flex, t, max_size, &src, trim, 0);
    if (tlsf_flex_grow(&s->flex.flex, 1)) {
        PyErr_Format(PyExc_OSError, "%R: cannot make the heap's first pool (/dev/shm full?)", s->name);
        goto fail_made;
    }
    if (list_open(s, PyBytes_AS_STRING(path)) < 0)
        goto fail_made;
    memcpy(s->flex.hdr->magic, tlsf_image_shared_magic, sizeof s->flex.hdr->magic); /* now a heap */
    Py_DECREF(path);
    return (PyObject *)s;

fail_made:
    (void)tlsf_os_shm_unlink_if_same(PyBytes_AS_STRING(path), s->flex.fd);
    s->owner = 0;
fail:
    Py_XDECREF(path);
    Py_XDECREF(bare);
    Py_XDECREF(s);
    return NULL;
}

static PyObject *shared_attach(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"name", "trim_threshold", NULL};
    PyObject *name, *trim_obj = NULL, *path = NULL, *bare = NULL;
    uint64_t trim, file_size, detail;
    tlsf_image_header_t h;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$O:attach", kwlist, &name, &trim_obj) ||
        flex_trim_threshold_arg(trim_obj ? trim_obj : Py_None, &trim) < 0 || name_arg(name, &path, &bare) < 0)
        return NULL;
    SharedHeapObject *s = new_shared(type, 0, bare);
    Py_DECREF(bare);
    if (!s)
        goto fail;
    int err = tlsf_os_shm_open(PyBytes_AS_STRING(path), 0, &s->flex.fd, &file_size);
    if (err) {
        flex_file_error(s->name, err);
        goto fail;
    }
    memset(&h, 0, sizeof h);
    (void)tlsf_os_file_read(s->flex.fd, &h, file_size < sizeof h ? file_size : sizeof h, 0);
    int kind = tlsf_image_check(&h, file_size, tlsf_image_shared_magic, &detail);
    if (!kind && file_size != h.arena_off + round_up(h.max_size, tlsf_os_page_size()))
        kind = TLSF_IMAGE_BAD; /* made whole, and never resized */
    if (kind) {
        flex_image_error(&s->flex, "shared heap segment", kind, detail, file_size);
        goto fail;
    }
    s->flex.heap.sl_len = h.sl_len;
    uint64_t max_size = h.max_size;
    if ((err = flex_reserve(&s->flex, h.arena_off, &max_size, 0))) {
        flex_reserve_error(max_size, err);
        goto fail;
    }
    if (map_segment(s) < 0 || list_open(s, PyBytes_AS_STRING(path)) < 0)
        goto fail;
    tlsf_flex_source_t src = flex_file_source(&s->flex);
    Py_DECREF(path);
    return flex_ready(&s->flex, (tlsf_t *)(s->flex.map + TLSF_IMAGE_HEADER_SIZE), max_size, &src, trim,
                      s->flex.hdr->size);

fail:
    Py_XDECREF(path);
    Py_XDECREF(s);
    return NULL;
}

/* ----------------------------------------------------------------- methods */

static PyObject *shared_unlink(SharedHeapObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->flex.fd < 0)
        return closed_error(NULL);
    int err = unlink_own_name(self);
    if (err)
        return flex_file_error(self->name, err);
    self->owner = 0;
    Py_RETURN_NONE;
}

static PyObject *shared_remove(PyObject *Py_UNUSED(cls), PyObject *name)
{
    PyObject *path, *bare;
    if (name_arg(name, &path, &bare) < 0)
        return NULL;
    int err = tlsf_os_shm_unlink(PyBytes_AS_STRING(path));
    Py_DECREF(path);
    PyObject *r = err ? flex_file_error(bare, err) : (Py_INCREF(Py_None), Py_None);
    Py_DECREF(bare);
    return r;
}

static PyObject *shared_reduce(SharedHeapObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->flex.heap.t)
        return PyErr_Format(PyExc_ValueError, "cannot pickle a closed SharedHeap");
    PyObject *attach = PyObject_GetAttrString((PyObject *)Py_TYPE(self), "attach");
    if (!attach)
        return NULL;
    return Py_BuildValue("N(O)", attach, self->name);
}

static PyObject *shared_get_name(SharedHeapObject *self, void *Py_UNUSED(closure))
{
    Py_INCREF(self->name);
    return self->name;
}

/* recoveries: how often a holder of the lock died and the heap was rebuilt. */
static PyObject *shared_get_recoveries(SharedHeapObject *self, void *Py_UNUSED(closure))
{
    uint64_t n = 0;
    int rc;
    HEAP_CALL(&self->flex.heap, rc, (n = self->flex.hdr->recoveries, TLSF_OK));
    if (rc == RC_CLOSED)
        return closed_error(NULL);
    if (rc == TLSF_ECORRUPT) /* broken: still says how it came to be (a racy read: diagnostics) */
        n = self->flex.hdr->recoveries;
    return PyLong_FromUnsignedLongLong(n);
}

/* Tests only: sleeps `seconds` holding the lock, without the GIL (so that a
 * test can kill a process while it holds it). */
static PyObject *shared_hold(SharedHeapObject *self, PyObject *arg)
{
    double secs = PyFloat_AsDouble(arg);
    if (secs == -1.0 && PyErr_Occurred())
        return NULL;
    PyThreadState *ts = NULL;
    int entered = shared_enter(&self->flex.heap, &ts);
    if (entered == TLSF_OK) {
        if (!ts)
            ts = release_gil();
        usleep((useconds_t)(secs * 1e6));
    }
    shared_leave(&self->flex.heap, entered, ts);
    if (entered == RC_CLOSED)
        return closed_error(NULL);
    if (entered)
        return core_error((PyObject *)self, entered, 0, NULL);
    Py_RETURN_NONE;
}

static PyObject *shared_repr(SharedHeapObject *self)
{
    tlsf_stats_t s;
    int rc;
    uint64_t size = 0;
    memset(&s, 0, sizeof s);
    HEAP_CALL(&self->flex.heap, rc,
              (size = self->flex.flex.size, tlsf_stats(self->flex.heap.t, self->flex.heap.base, &s)));
    if (rc)
        return PyUnicode_FromFormat("<tlsf.SharedHeap name=%R max_size=%llu sl_len=%u %s>", self->name,
                                    ULL(self->flex.heap.capacity), self->flex.heap.sl_len,
                                    rc == RC_CLOSED ? "closed" : "broken");
    return PyUnicode_FromFormat("<tlsf.SharedHeap name=%R size=%llu max_size=%llu sl_len=%u allocations=%llu>",
                                self->name, ULL(size), ULL(self->flex.heap.capacity), self->flex.heap.sl_len,
                                ULL(s.allocations));
}

static PyMethodDef shared_methods[] = {
    HEAP_SHARED_METHODS,
    HEAP_CLOSE_METHODS("Detach this process from the segment (unmap it); the other processes go on "
                       "with the heap. The SharedHeap that created the segment also removes its name, "
                       "unless it was created with persist=True."),
    {"trim", (PyCFunction)flex_trim, METH_NOARGS,
     "trim($self, /)\n--\n\nGive the whole pages inside every free block back to the system (for every "
     "process); return the bytes of them that were resident (an int)."},
    {"_arena", (PyCFunction)flex_arena, METH_NOARGS,
     "_arena($self, /)\n--\n\nA memoryview of the bytes of the pool now, headers and all (for tests and "
     "tools)."},
    {"_hold", (PyCFunction)shared_hold, METH_O,
     "_hold($self, seconds, /)\n--\n\nTests only: sleep holding the lock (to be killed there)."},
    {"unlink", (PyCFunction)shared_unlink, METH_NOARGS,
     "unlink($self, /)\n--\n\nRemove the segment's name: no process can attach it any more; processes that "
     "have it keep working until they close. FileNotFoundError if the name is gone already."},
    {"remove", (PyCFunction)shared_remove, METH_O | METH_STATIC,
     "remove(name, /)\n--\n\nRemove the name of a segment (one left behind by a process that was killed, "
     "say). FileNotFoundError if there is none."},
    {"create", (PyCFunction)(void (*)(void))shared_create, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "create($type, /, name=None, *, max_size=None, sl_len=32, trim_threshold=None, persist=False)\n--\n\n"
     "A SharedHeap in a new shared memory segment (a random name when None; FileExistsError when taken). "
     "max_size: 1 TiB by default (sparse). trim_threshold: None, pages go back only with trim(). The "
     "name is removed when this object closes in this process, unless persist=True."},
    {"attach", (PyCFunction)(void (*)(void))shared_attach, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "attach($type, /, name, *, trim_threshold=None)\n--\n\nThe heap in the segment `name` (a SharedHeap), made by "
     "create() in any process."},
    {"__reduce__", (PyCFunction)shared_reduce, METH_NOARGS,
     "__reduce__($self, /)\n--\n\nPickle as (SharedHeap.attach, (name,)): unpickling attaches the segment."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef shared_getset[] = {
    HEAP_SHARED_GETSET,
    {"capacity", (getter)heap_get_capacity, NULL, "Bytes of the arena, max_size: every offset lies below.",
     NULL},
    {"max_size", (getter)heap_get_capacity, NULL, "Bytes the pool may grow to.", NULL},
    {"size", (getter)flex_get_size, NULL, "Bytes of the arena in the pool now.", NULL},
    {"trim_threshold", (getter)flex_get_trim_threshold, NULL,
     "Bytes of whole pages from which this process's free() gives a free block's pages back; None: never.",
     NULL},
    {"root", (getter)flex_get_root, (setter)flex_set_root,
     "An offset the processes keep to find their data (0: none), in the segment's header.", NULL},
    {"name", (getter)shared_get_name, NULL, "The segment's name (what attach() takes).", NULL},
    {"recoveries", (getter)shared_get_recoveries, NULL,
     "How often a process died holding the lock and the heap was rebuilt from its blocks.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef shared_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(HeapObject, weakrefs), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

void shared_dealloc(HeapObject *self)
{
    PyObject *name = as_shared(self)->name;
    flex_dealloc(self);
    Py_XDECREF(name);
}

static PyObject *shared_new(PyTypeObject *Py_UNUSED(type), PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    PyErr_SetString(PyExc_TypeError, "a SharedHeap is made by SharedHeap.create() or SharedHeap.attach(name)");
    return NULL;
}

static PyType_Slot shared_slots[] = {
    {Py_tp_new, (void *)shared_new},
    {Py_tp_dealloc, (void *)shared_dealloc},
    {Py_tp_repr, (void *)shared_repr},
    {Py_tp_traverse, (void *)heap_traverse},
    {Py_tp_clear, (void *)heap_clear},
    {Py_tp_free, (void *)PyObject_GC_Del},
    {Py_tp_doc, (void *)"SharedHeap(*args, **kwargs)\n--\n\n"
                        "One TLSF heap in a named shared memory segment, used by every\n"
                        "process that attaches it (create(), attach(), or unpickling). Offsets are\n"
                        "valid in every process; a process killed at any moment, even holding the\n"
                        "lock, leaves a heap the others go on with. Made by SharedHeap.create() or\n"
                        "SharedHeap.attach(name): calling the class raises TypeError."},
    {Py_tp_members, shared_members},
    {Py_tp_methods, shared_methods},
    {Py_tp_getset, shared_getset},
    {0, NULL},
};

static PyType_Spec shared_spec = {
    .name = "tlsf._core.SharedHeap",
    .basicsize = sizeof(SharedHeapObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | TPFLAGS_FIXED,
    .slots = shared_slots,
};

static void make_open_heaps_mutex(void) { open_heaps_mutex = PyThread_allocate_lock(); }

int shared_add_type(PyObject *m, core_state *st)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT; /* interpreters may import at once (their own GILs) */
    pthread_once(&once, make_open_heaps_mutex);
    if (!open_heaps_mutex) {
        PyErr_NoMemory();
        return -1;
    }
    st->SharedHeapType = new_type(m, &shared_spec);
    if (!st->SharedHeapType)
        return -1;
    return PyModule_AddType(m, st->SharedHeapType);
}

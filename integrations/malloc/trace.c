/*
 * trace.c: recording a process's allocations (trace.h).
 *
 * Ids: the trace needs small ids that are reused only after their FREE; the
 * allocator knows blocks by heap and offset. Each heap's table maps its
 * payload offsets to ids (ids[offset / 16] is the id + 1, 0: none), and
 * spare[] is a stack of freed ids, taken before a new one is made. All are
 * reservations that cost memory only where they are touched, and every
 * operation is O(1).
 */
#define _GNU_SOURCE
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "lock.h"
#include "platform/os_memory.h"
#include "tlsf_trace.h"

#define GRAN 16u
#define BUFFERED 4096 /* records per write: 64 KiB */
#define MAX_IDS ((uint64_t)UINT32_MAX)

typedef tlsf_trace_record_t record_t;
typedef tlsf_trace_header_t header_t;

_Static_assert(sizeof(record_t) == 16 && sizeof(header_t) == 24, "the trace format (tlsf_trace.h)");

atomic_int trace_on;

static struct {
    malloc_lock_t lock;
    int fd;
    uint32_t *spare; /* freed ids, `n_spare` of them */
    uint64_t n_spare, n_ids, n_ops;
    unsigned n_buf;
    record_t buf[BUFFERED];
} tr = {.fd = -1};

static int write_all(int fd, const void *p, size_t n, off_t at)
{
    const char *c = p;
    while (n) {
        ssize_t k = at < 0 ? write(fd, c, n) : pwrite(fd, c, n, at);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
        at = at < 0 ? at : at + k;
    }
    return 0;
}

static void complain(const char *what)
{
    static const char pre[] = "tlsf_malloc: the trace stops: ";
    (void)!write(2, pre, sizeof pre - 1);
    (void)!write(2, what, strlen(what));
    (void)!write(2, "\n", 1);
}

/* Writes the buffer, then the header that counts it. */
static void flush(void)
{
    header_t h = {TLSF_TRACE_MAGIC, tr.n_ops + tr.n_buf, tr.n_ids};
    if (write_all(tr.fd, tr.buf, tr.n_buf * sizeof(record_t), -1) || write_all(tr.fd, &h, sizeof h, 0)) {
        complain("cannot write the trace file");
        trace_on = 0;
        return;
    }
    tr.n_ops += tr.n_buf;
    tr.n_buf = 0;
}

static void put(unsigned op, unsigned align_log2, uint32_t id, uint64_t size)
{
    record_t *r = &tr.buf[tr.n_buf++];
    r->op = (uint8_t)op;
    r->align_log2 = (uint8_t)align_log2;
    r->reserved = 0;
    r->id = id;
    r->size = size;
    if (tr.n_buf == BUFFERED)
        flush();
}

static unsigned log2_of(uint64_t align)
{
    unsigned k = 0;
    while (align > 1) {
        align >>= 1;
        k++;
    }
    return k;
}

/* Under tr.lock. */
static void record_alloc(uint32_t *ids, uint64_t offset, uint64_t size, uint64_t align)
{
    uint32_t id;
    if (!trace_on || !ids)
        return;
    if (tr.n_spare)
        id = tr.spare[--tr.n_spare];
    else if (tr.n_ids < MAX_IDS)
        id = (uint32_t)tr.n_ids++;
    else {
        complain("more than 2^32 live allocations");
        trace_on = 0;
        return;
    }
    ids[offset / GRAN] = id + 1;
    put(TLSF_TRACE_ALLOC, log2_of(align), id, size);
}

void trace_alloc(uint32_t *ids, uint64_t offset, uint64_t size, uint64_t align)
{
    malloc_lock(&tr.lock);
    record_alloc(ids, offset, size, align);
    malloc_unlock(&tr.lock);
}

void trace_free(uint32_t *ids, uint64_t offset)
{
    malloc_lock(&tr.lock);
    uint32_t id = trace_on && ids ? ids[offset / GRAN] : 0;
    if (id--) { /* 0: not traced (a heap without a table) */
        ids[offset / GRAN] = 0;
        tr.spare[tr.n_spare++] = id;
        put(TLSF_TRACE_FREE, 0, id, 0);
    }
    malloc_unlock(&tr.lock);
}

void trace_realloc(uint32_t *ids, uint64_t old_offset, uint64_t new_offset, uint64_t size)
{
    malloc_lock(&tr.lock);
    uint32_t id = trace_on && ids ? ids[old_offset / GRAN] : 0;
    if (id) {
        ids[old_offset / GRAN] = 0;
        ids[new_offset / GRAN] = id;
        put(TLSF_TRACE_REALLOC, 0, id - 1, size);
    }
    malloc_unlock(&tr.lock);
}

typedef struct {
    uint32_t *ids;
    const tlsf_t *t;
    const uint8_t *base;
} live_ctx;

/* tlsf_walk's callback: each live block becomes an ALLOC. */
static int record_live(uint64_t offset, uint64_t size, int used, void *ctx)
{
    const live_ctx *c = ctx;
    uint64_t payload = offset + TLSF_HEADER_SIZE, align = 1;
    if (used) {
        (void)tlsf_alignment(c->t, c->base, payload, &align);
        record_alloc(c->ids, payload, size - TLSF_HEADER_SIZE, align > GRAN ? align : 1);
    }
    return 0;
}

void trace_live(uint32_t *ids, const tlsf_t *t, const uint8_t *base)
{
    live_ctx c = {ids, t, base};
    malloc_lock(&tr.lock);
    (void)tlsf_walk(t, base, record_live, &c);
    malloc_unlock(&tr.lock);
}

void trace_table(uint64_t capacity, uint32_t **ids)
{
    void *p;
    *ids = tlsf_os_reserve(capacity / GRAN * sizeof(uint32_t), &p) ? NULL : p;
}

void trace_clear(uint32_t *ids, uint64_t capacity)
{
    if (ids)
        (void)tlsf_os_discard(ids, capacity / GRAN * sizeof(uint32_t), 0);
}

/* Opens `path` with an empty trace. */
static int begin(const char *path)
{
    header_t h = {TLSF_TRACE_MAGIC, 0, 0};
    tr.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (tr.fd < 0)
        return errno;
    if (write_all(tr.fd, &h, sizeof h, -1)) {
        int err = errno;
        close(tr.fd);
        tr.fd = -1;
        return err ? err : EIO;
    }
    tr.n_ops = tr.n_ids = tr.n_spare = 0;
    tr.n_buf = 0;
    trace_on = 1;
    return 0;
}

int trace_start(const char *path)
{
    void *spare;
    int err = tlsf_os_reserve(MAX_IDS * sizeof(uint32_t), &spare);
    if (err)
        return err;
    tr.spare = spare;
    return begin(path);
}

void trace_forked(const char *path)
{
    atomic_store(&tr.lock, 0); /* the child's only thread holds it (pthread_atfork) */
    close(tr.fd);
    tr.fd = -1;
    trace_on = 0;
    (void)tlsf_os_discard(tr.spare, MAX_IDS * sizeof(uint32_t), 0);
    if (begin(path))
        complain("cannot open the child's trace file");
}

void trace_stop(void)
{
    malloc_lock(&tr.lock);
    if (trace_on) {
        flush();
        trace_on = 0;
        close(tr.fd);
        tr.fd = -1;
    }
    malloc_unlock(&tr.lock);
}

/* Around fork (the allocator's pthread_atfork handlers). */
void trace_lock(void)
{
    malloc_lock(&tr.lock);
}

void trace_unlock(void)
{
    malloc_unlock(&tr.lock);
}

/*
 * bench.c: replay a standard trace through both tlsf engines and glibc malloc.
 *
 *   make -C benchmarks/native
 *   python -c "from tlsf.workloads import write_trace; write_trace('mixed', 'mixed.trc')"
 *   benchmarks/native/bench mixed.trc               # throughput, latency, footprint
 *   valgrind --tool=callgrind --instr-atstart=no benchmarks/native/bench mixed.trc --callgrind tlsf
 *   benchmarks/native/bench --growth 10000000     # latency while the offset engine's metadata grows
 *   python benchmarks/native/compare.py           # each engine over glibc in one run, and instr/op
 *
 * Throughput: one untimed warm-up replay, then --runs timed replays; the
 * median is reported. Latency: every operation timed with clock_gettime
 * (includes the timer's own cost, reported as the "null" row). Footprint:
 * highest byte ever handed out / peak live requested bytes. With --callgrind
 * ALLOCATOR, one warm-up replay runs uninstrumented and one instrumented, so
 * callgrind's total instruction count divided by the op count printed is the
 * instructions per operation (the "null" allocator gives the loop's share).
 * Every allocator is called through a function pointer, as malloc would be.
 * "tlsf" is the in-band engine over one pre-faulted arena, "flex" the growable
 * heap starting empty in a fresh reservation (growth and page faults timed),
 * "offset" the out-of-band engine
 * (tlsf_offset.c) over a range as large, granularity 1; its handles are
 * offset + 1, so that 0 still means failure.
 */
#define _GNU_SOURCE
#include "platform/os_memory.h"
#include "tlsf.h"
#include "tlsf_flex.h"
#include "tlsf_offset.h"
#include "tlsf_trace.h"

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#endif
#endif
#ifndef CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#endif

/* ---------------------------------------------------------------- the trace */

typedef tlsf_trace_record_t record_t; /* the file format: src/tlsf/include/tlsf_trace.h */

enum { OP_ALLOC = TLSF_TRACE_ALLOC, OP_FREE = TLSF_TRACE_FREE, OP_REALLOC = TLSF_TRACE_REALLOC };

static record_t *trace;
static uint64_t n_ops, n_ids;

static void *map_zeroed(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    return p;
}

static void load_trace(const char *path)
{
    FILE *f = fopen(path, "rb");
    char magic[8];
    if (!f || fread(magic, 8, 1, f) != 1 || memcmp(magic, TLSF_TRACE_MAGIC, 8) ||
        fread(&n_ops, 8, 1, f) != 1 || fread(&n_ids, 8, 1, f) != 1) {
        fprintf(stderr, "%s: not a trace file\n", path);
        exit(2);
    }
    trace = map_zeroed(n_ops * sizeof(record_t)); /* kept out of malloc's heap */
    if (fread(trace, sizeof(record_t), n_ops, f) != n_ops) {
        fprintf(stderr, "%s: truncated\n", path);
        exit(2);
    }
    fclose(f);
}

/* ------------------------------------------------------------ the allocators */

typedef struct {
    const char *name;
    void (*reset)(void);
    uint64_t (*alloc)(uint64_t size, uint64_t align); /* an offset or an address; 0 = failure */
    void (*free)(uint64_t p);
    uint64_t (*realloc)(uint64_t p, uint64_t size);
} allocator_t;

static uint64_t arena_size = (uint64_t)256 << 20;
static uint8_t *arena;
static tlsf_t *control;

static void tlsf_reset(void)
{
    uint64_t taken;
    tlsf_init(control, arena_size, TLSF_SL_LEN_DEFAULT);
    tlsf_insert_free_block(control, arena, 0, arena_size, &taken);
}
static uint64_t tlsf_a(uint64_t size, uint64_t align)
{
    uint64_t off;
    return tlsf_alloc(control, arena, size, align, &off) ? 0 : off;
}
static void tlsf_f(uint64_t off) { tlsf_free(control, arena, off); }
static uint64_t tlsf_r(uint64_t off, uint64_t size)
{
    uint64_t q;
    return tlsf_realloc(control, arena, off, size, &q) ? 0 : q;
}

/* "flex": the growable heap (tlsf_flex.c) as FlexHeap makes it: a 1 TiB
 * reservation, starting empty at every reset, so growth and its page faults
 * are in the times; pages of free blocks of 1 MiB or more go back at free. */
static tlsf_flex_t flex;
static uint8_t *flex_map;
static uint64_t flex_map_size;

static uint64_t flex_discard(void *ctx, uint8_t *p, uint64_t n, int count)
{
    (void)ctx;
    return tlsf_os_discard(p, n, count);
}
static void flex_reset(void)
{
    uint64_t max = (uint64_t)1 << 40, page = tlsf_os_page_size();
    uint64_t ctl = (tlsf_control_size(max, TLSF_SL_LEN_DEFAULT) + page - 1) / page * page;
    if (flex_map)
        tlsf_os_unreserve(flex_map, flex_map_size);
    flex_map_size = ctl + max;
    if (tlsf_os_reserve(flex_map_size, (void **)&flex_map)) {
        fprintf(stderr, "cannot reserve %llu bytes\n", (unsigned long long)flex_map_size);
        exit(1);
    }
    tlsf_init_zeroed((tlsf_t *)flex_map, max, TLSF_SL_LEN_DEFAULT);
    /* FLEX_TRIM=BYTES|off: another trim threshold; FLEX_HUGEPAGES=1: MADV_HUGEPAGE on the reservation */
    const char *trim = getenv("FLEX_TRIM"), *huge = getenv("FLEX_HUGEPAGES");
    uint64_t threshold = !trim ? (uint64_t)1 << 20 : !strcmp(trim, "off") ? TLSF_FLEX_TRIM_OFF : strtoull(trim, NULL, 10);
    if (huge && !strcmp(huge, "1"))
        tlsf_os_hugepages(flex_map, flex_map_size);
    tlsf_flex_source_t src = {NULL, flex_discard, NULL, page};
    tlsf_flex_init(&flex, (tlsf_t *)flex_map, flex_map + ctl, &src, threshold);
}
static uint64_t flex_a(uint64_t size, uint64_t align)
{
    uint64_t off;
    return tlsf_flex_alloc(&flex, size, align, &off) ? 0 : off;
}
static void flex_f(uint64_t off) { tlsf_flex_free(&flex, off); }
static uint64_t flex_r(uint64_t off, uint64_t size)
{
    uint64_t q;
    return tlsf_flex_realloc(&flex, off, size, &q) ? 0 : q;
}

static tlsf_oa_t *oa;

/* Keeps the node table and index from the previous replay, as a long-lived allocator would. */
static void offset_reset(void)
{
    if (!oa) {
        oa = tlsf_oa_create(TLSF_SL_LEN_DEFAULT, 1);
        tlsf_oa_add_range(oa, 0, arena_size);
    }
    tlsf_oa_reset(oa);
}
static uint64_t offset_a(uint64_t size, uint64_t align)
{
    uint64_t off;
    return tlsf_oa_alloc(oa, size, align, &off) ? 0 : off + 1;
}
static void offset_f(uint64_t h) { tlsf_oa_free(oa, h - 1); }
static uint64_t offset_r(uint64_t h, uint64_t size)
{
    int resized;
    if (tlsf_oa_resize(oa, h - 1, size, &resized) == TLSF_OK && resized)
        return h;
    uint64_t n = offset_a(size, 1); /* no data to move */
    if (n)
        offset_f(h);
    return n;
}

static void glibc_reset(void) {}
static uint64_t glibc_a(uint64_t size, uint64_t align)
{
    void *p = NULL;
    if (align <= 16)
        p = malloc(size);
    else if (posix_memalign(&p, align, size))
        p = NULL;
    return (uint64_t)(uintptr_t)p;
}
static void glibc_f(uint64_t p) { free((void *)(uintptr_t)p); }
static uint64_t glibc_r(uint64_t p, uint64_t size) { return (uint64_t)(uintptr_t)realloc((void *)(uintptr_t)p, size); }

static uint64_t null_counter;
static void null_reset(void) { null_counter = 0; }
static uint64_t null_a(uint64_t size, uint64_t align) { (void)size; (void)align; return ++null_counter; }
static void null_f(uint64_t p) { (void)p; }
static uint64_t null_r(uint64_t p, uint64_t size) { (void)size; return p; }

static const allocator_t allocators[] = {
    {"null", null_reset, null_a, null_f, null_r},
    {"tlsf", tlsf_reset, tlsf_a, tlsf_f, tlsf_r},
    {"flex", flex_reset, flex_a, flex_f, flex_r},
    {"offset", offset_reset, offset_a, offset_f, offset_r},
    {"glibc", glibc_reset, glibc_a, glibc_f, glibc_r},
};

/* ------------------------------------------------------------------ replays */

static uint64_t *slots;   /* id -> what the allocator returned */
static uint64_t *sizes;   /* id -> requested size */
static uint64_t *latency; /* ns per op, for the latency pass */

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Replays the whole trace, then frees what is left (untimed by callers that care). */
static uint64_t replay(const allocator_t *a, int timed_ops)
{
    uint64_t failures = 0;
    for (uint64_t k = 0; k < n_ops; k++) {
        const record_t *r = &trace[k];
        double t0 = timed_ops ? now_ns() : 0;
        if (r->op == OP_ALLOC)
            failures += !(slots[r->id] = a->alloc(r->size, (uint64_t)1 << r->align_log2));
        else if (r->op == OP_FREE)
            a->free(slots[r->id]);
        else
            failures += !(slots[r->id] = a->realloc(slots[r->id], r->size));
        if (timed_ops)
            latency[k] = (uint64_t)(now_ns() - t0);
    }
    return failures;
}

static void free_live(const allocator_t *a)
{
    /* ids still live at the end: replay the trace's liveness */
    memset(sizes, 0, n_ids * sizeof *sizes);
    for (uint64_t k = 0; k < n_ops; k++)
        sizes[trace[k].id] = trace[k].op != OP_FREE;
    for (uint64_t i = 0; i < n_ids; i++)
        if (sizes[i])
            a->free(slots[i]);
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}
static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static void footprint(const allocator_t *a, double *ratio)
{
    uint64_t live = 0, peak = 0, lo = UINT64_MAX, hi = 0;
    a->reset();
    for (uint64_t k = 0; k < n_ops; k++) {
        const record_t *r = &trace[k];
        uint64_t p;
        if (r->op == OP_FREE) {
            a->free(slots[r->id]);
            live -= sizes[r->id];
            continue;
        }
        if (r->op == OP_ALLOC) {
            p = slots[r->id] = a->alloc(r->size, (uint64_t)1 << r->align_log2);
            live += r->size;
        } else {
            p = slots[r->id] = a->realloc(slots[r->id], r->size);
            live += r->size - sizes[r->id];
        }
        sizes[r->id] = r->size;
        peak = live > peak ? live : peak;
        lo = p < lo ? p : lo;
        hi = p + r->size > hi ? p + r->size : hi;
    }
    free_live(a);
    /* glibc hands out addresses: measure from its lowest block */
    *ratio = peak ? (double)(hi - (strcmp(a->name, "tlsf") && strcmp(a->name, "flex") ? lo : 0)) / (double)peak : 0;
}

static void bench(const allocator_t *a, int runs)
{
    double t[64];
    a->reset();
    uint64_t failures = replay(a, 0); /* warm-up */
    free_live(a);
    for (int i = 0; i < runs; i++) {
        a->reset();
        double t0 = now_ns();
        replay(a, 0);
        t[i] = (now_ns() - t0) / (double)n_ops;
        free_live(a);
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    a->reset();
    replay(a, 1);
    free_live(a);
    qsort(latency, n_ops, sizeof *latency, cmp_u64);
    double ratio = 0;
    if (strcmp(a->name, "null"))
        footprint(a, &ratio);
    printf("%-7s%8.2f  %7.2f-%-7.2f %6llu %6llu %7llu %9llu   %6.3f %9llu\n", a->name, t[runs / 2], t[0],
           t[runs - 1], (unsigned long long)latency[n_ops / 2], (unsigned long long)latency[n_ops * 99 / 100],
           (unsigned long long)latency[n_ops * 9999 / 10000], (unsigned long long)latency[n_ops - 1], ratio,
           (unsigned long long)failures);
}

/* Latency of every operation while the offset engine's node table and offset
 * index grow from nothing: n one-unit allocations, then n frees. */
static int growth(uint64_t n)
{
    tlsf_oa_t *g = tlsf_oa_create(TLSF_SL_LEN_DEFAULT, 1);
    uint64_t *lat = map_zeroed(2 * n * sizeof *lat), off, slow = 0;
    tlsf_oa_add_range(g, 0, (uint64_t)1 << 40);
    for (uint64_t k = 0; k < 2 * n; k++) {
        double t0 = now_ns();
        int rc = k < n ? tlsf_oa_alloc(g, 1, 1, &off) : tlsf_oa_free(g, k - n);
        lat[k] = (uint64_t)(now_ns() - t0);
        if (rc) {
            fprintf(stderr, "operation %llu failed: %s\n", (unsigned long long)k, tlsf_strerror(rc));
            return 1;
        }
    }
    printf("growth: %llu one-unit allocations then frees; metadata at the peak %llu bytes\n",
           (unsigned long long)n, (unsigned long long)tlsf_oa_metadata_bytes(g));
    for (uint64_t k = 0; k < 2 * n; k++)
        slow += lat[k] > 10000;
    qsort(lat, 2 * n, sizeof *lat, cmp_u64);
    printf("ns per op (timer included): p50 %llu  p99 %llu  p99.99 %llu  max %llu;  above 10 us: %llu\n",
           (unsigned long long)lat[n], (unsigned long long)lat[2 * n * 99 / 100],
           (unsigned long long)lat[2 * n * 9999 / 10000], (unsigned long long)lat[2 * n - 1],
           (unsigned long long)slow);
    tlsf_oa_destroy(g);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--growth"))
        return growth(strtoull(argv[2], NULL, 10));
    if (argc < 2) {
        fprintf(stderr, "usage: %s TRACE [--runs N] [--arena BYTES] [--callgrind ALLOCATOR]\n"
                        "       %s --growth N\n", argv[0], argv[0]);
        return 2;
    }
    int runs = 5;
    const char *callgrind = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--arena") && i + 1 < argc)
            arena_size = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--callgrind") && i + 1 < argc)
            callgrind = argv[++i];
    }
    if (runs < 1 || runs > 64)
        runs = 5;
    load_trace(argv[1]);
    /* keep glibc from returning memory to the OS between runs (faults would be timed) */
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    arena = map_zeroed(arena_size);
    control = map_zeroed(tlsf_control_size(arena_size, TLSF_SL_LEN_DEFAULT));
    slots = map_zeroed(n_ids * sizeof *slots);
    sizes = map_zeroed(n_ids * sizeof *sizes);
    latency = map_zeroed(n_ops * sizeof *latency);

    if (callgrind) {
        for (size_t i = 0; i < sizeof allocators / sizeof *allocators; i++) {
            const allocator_t *a = &allocators[i];
            if (strcmp(a->name, callgrind))
                continue;
            a->reset();
            replay(a, 0);
            free_live(a);
            a->reset();
            CALLGRIND_START_INSTRUMENTATION;
            replay(a, 0);
            CALLGRIND_STOP_INSTRUMENTATION;
            free_live(a);
            printf("%s: %llu operations replayed under instrumentation\n", a->name, (unsigned long long)n_ops);
            return 0;
        }
        fprintf(stderr, "unknown allocator %s\n", callgrind);
        return 2;
    }
    printf("%s: %llu operations, arena %llu bytes, median of %d replays after a warm-up\n", argv[1],
           (unsigned long long)n_ops, (unsigned long long)arena_size, runs);
    printf("alloc   ns/op  min-max          p50    p99  p99.99       max   high/peak  failures\n");
    for (size_t i = 0; i < sizeof allocators / sizeof *allocators; i++)
        bench(&allocators[i], runs);
    return 0;
}

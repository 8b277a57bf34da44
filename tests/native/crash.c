/*
 * crash.c: the C core's crash consistency, by fault injection.
 *
 * Built with -DTLSF_FAULT_INJECTION: the core calls tlsf_fault_hook after its
 * tlsf_fault_after-th store to the arena (and after a moving realloc's copy).
 * For every operation kind, on heaps laid out for each of its shapes (split
 * or not, padding, coalescing left/right/both, growth, a moving realloc), and
 * for every k, a forked child runs the operation with the hook set to _exit
 * at store k: the arena and control structure live in shared memory, so the
 * parent then holds exactly what a process killed at that store leaves. The
 * parent repairs it with tlsf_recover and requires: recovery succeeds,
 * tlsf_check passes, the live blocks are those from before the operation or
 * those from after it (a batch: each block's own operation done or not), and
 * every block the operation does not work on keeps its bytes. The twin's store
 * order is tested the same way by tests/test_crash.py.
 *
 *   make -C tests/native check-crash
 */
#define _DEFAULT_SOURCE
#include "tlsf_flex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

extern uint64_t tlsf_fault_after;
extern void (*tlsf_fault_hook)(void);

#define CAP ((uint64_t)4 << 20)
#define SL 32u
#define MAXLIVE 64

static uint8_t *shared;   /* control structure, then arena: shared with the children */
static uint8_t *saved;    /* the heap before the operation */
static size_t ctl_bytes, total;
static tlsf_t *T;
static uint8_t *A;
static tlsf_flex_t F;

static void die_here(void) { _exit(2); }

static void fail(const char *scenario, uint64_t k, const char *what)
{
    fprintf(stderr, "crash: %s, store %llu: %s\n", scenario, (unsigned long long)k, what);
    exit(1);
}

typedef struct {
    uint64_t off[MAXLIVE], size[MAXLIVE]; /* payload offsets and block sizes, in address order */
    size_t n;
} live_t;

static int collect(uint64_t b, uint64_t size, int used, void *ctx)
{
    live_t *l = ctx;
    if (used && l->n < MAXLIVE) {
        l->off[l->n] = b + TLSF_HEADER_SIZE;
        l->size[l->n++] = size;
    }
    return 0;
}

static live_t live_now(void)
{
    live_t l = {{0}, {0}, 0};
    tlsf_walk(T, A, collect, &l);
    return l;
}

static int same(const live_t *a, const live_t *b)
{
    return a->n == b->n && !memcmp(a->off, b->off, a->n * sizeof a->off[0]) &&
           !memcmp(a->size, b->size, a->n * sizeof a->size[0]);
}

static int has(const live_t *l, uint64_t off)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->off[i] == off)
            return 1;
    return 0;
}

/* A byte of block `off`'s pattern. */
static uint8_t pat(uint64_t off, uint64_t i) { return (uint8_t)(off * 31 + i * 7 + 1); }

static void fill_all(void)
{
    live_t l = live_now();
    for (size_t i = 0; i < l.n; i++) {
        uint64_t n;
        tlsf_usable_size(T, A, l.off[i], &n);
        for (uint64_t j = 0; j < n; j++)
            A[l.off[i] + j] = pat(l.off[i], j);
    }
}

static void fresh(void)
{
    memset(shared, 0, total);
    T = (tlsf_t *)shared;
    A = shared + ctl_bytes;
    tlsf_init(T, CAP, SL);
    tlsf_set_crash_safe(T);
    tlsf_flex_source_t src = {NULL, NULL, NULL, 4096};
    tlsf_flex_init(&F, T, A, &src, TLSF_FLEX_TRIM_OFF);
}

static uint64_t A1(uint64_t size, uint64_t align)
{
    uint64_t off;
    if (tlsf_flex_alloc(&F, size, align, &off))
        exit(3);
    return off;
}

/* Layouts. row: seven 1000-byte blocks, the 2nd and 4th freed; live by index 0..4. */
static void layout_big_free(void) { uint64_t a = A1(100, 1); A1(5000, 1); tlsf_flex_free(&F, a); }
static void layout_row(void)
{
    uint64_t o[7];
    for (int i = 0; i < 7; i++)
        o[i] = A1(1000, 1);
    tlsf_flex_free(&F, o[1]);
    tlsf_flex_free(&F, o[3]);
}
static void layout_full(void) { tlsf_stats_t s; tlsf_stats(T, A, &s); A1(s.largest_free, 1); }

typedef struct {
    const char *name;
    void (*layout)(void);
    int index;     /* the live block the operation works on, or -1 */
    int kind;      /* what it does */
    uint64_t size; /* its size argument */
} scenario_t;

enum { ALLOC, ALLOC_ALIGNED, FREE, REALLOC, ALLOC_MANY, FREE_MANY };

static const scenario_t scenarios[] = {
    {"alloc-split", layout_big_free, -1, ALLOC, 40},
    {"alloc-exact", layout_row, -1, ALLOC, 1000},
    {"alloc-padded", layout_big_free, -1, ALLOC_ALIGNED, 100},
    {"alloc-grows", layout_full, -1, ALLOC, 200000},
    {"free-alone", layout_row, 3, FREE, 0},
    {"free-left", layout_row, 2, FREE, 0},
    {"free-right", layout_row, 0, FREE, 0},
    {"free-both", layout_row, 1, FREE, 0},
    {"realloc-shrink", layout_row, 3, REALLOC, 100},
    {"realloc-shrink-merge", layout_row, 0, REALLOC, 100},
    {"realloc-grow-in-place", layout_row, 0, REALLOC, 1500},
    {"realloc-grow-whole-next", layout_row, 0, REALLOC, 2020},
    {"realloc-move", layout_row, 3, REALLOC, 30000},
    {"realloc-grows-pool", layout_full, 0, REALLOC, 300000},
    {"alloc_many", layout_row, -1, ALLOC_MANY, 0},
    {"free_many", layout_row, 0, FREE_MANY, 0},
};

static void run(const scenario_t *s, const live_t *before)
{
    uint64_t out, outs[3], p = s->index >= 0 ? before->off[s->index] : 0;
    size_t bad;
    switch (s->kind) {
    case ALLOC: tlsf_flex_alloc(&F, s->size, 1, &out); break;
    case ALLOC_ALIGNED: tlsf_flex_alloc(&F, s->size, 4096, &out); break;
    case FREE: tlsf_flex_free(&F, p); break;
    case REALLOC: tlsf_flex_realloc(&F, p, s->size, &out); break;
    case ALLOC_MANY: {
        const uint64_t sizes[3] = {10, 1000, 5000};
        tlsf_flex_alloc_many(&F, sizes, 3, 1, outs, &bad);
        break;
    }
    case FREE_MANY: {
        const uint64_t offs[3] = {p, before->off[1], before->off[3]};
        tlsf_flex_free_many(&F, offs, 3, &bad);
        break;
    }
    }
}

static void restore(uint64_t pool)
{
    memcpy(shared, saved, total);
    F.size = pool;
}

static uint64_t one(const scenario_t *s)
{
    fresh();
    tlsf_flex_grow(&F, 1);
    s->layout();
    fill_all();
    live_t before = live_now(), after;
    uint64_t pool = F.size;
    memcpy(saved, shared, total);
    run(s, &before); /* done, in this process: the "after" state */
    after = live_now();
    if (same(&before, &after))
        fail(s->name, 0, "the operation changed nothing");
    uint64_t k;
    for (k = 1;; k++) {
        restore(pool);
        pid_t pid = fork();
        if (pid == 0) {
            tlsf_fault_hook = die_here;
            tlsf_fault_after = k;
            run(s, &before);
            _exit(3); /* completed before store k */
        }
        int status;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || (WEXITSTATUS(status) != 2 && WEXITSTATUS(status) != 3))
            fail(s->name, k, "the child died otherwise");
        if (WEXITSTATUS(status) == 3)
            break;
        uint64_t end;
        char msg[256];
        if (tlsf_recover(T, A, CAP, SL, CAP, 1, &end))
            fail(s->name, k, "recovery failed");
        if (tlsf_check(T, A, msg, sizeof msg))
            fail(s->name, k, msg);
        live_t now = live_now();
        if (s->kind == ALLOC_MANY || s->kind == FREE_MANY) {
            for (size_t i = 0; i < now.n; i++)
                if (!has(&before, now.off[i]) && !has(&after, now.off[i]))
                    fail(s->name, k, "a block that is neither before nor after");
            for (size_t i = 0; i < before.n; i++)
                if (has(&after, before.off[i]) && !has(&now, before.off[i]))
                    fail(s->name, k, "a block no operation frees is gone");
        } else if (!same(&now, &before) && !same(&now, &after)) {
            fail(s->name, k, "the live blocks are neither those before nor those after");
        }
        for (size_t i = 0; i < before.n; i++) { /* the bytes of what the operation keeps */
            uint64_t off = before.off[i], n;
            if (!has(&now, off) || !has(&after, off))
                continue;
            tlsf_usable_size(T, A, off, &n);
            if (s->index >= 0 && off == before.off[s->index] && n > 100)
                n = 100; /* realloc keeps the first 100 bytes */
            for (uint64_t j = 0; j < n; j++)
                if (A[off + j] != pat(off, j))
                    fail(s->name, k, "a kept block's bytes changed");
        }
    }
    return k - 1;
}

int main(void)
{
    ctl_bytes = (tlsf_control_size(CAP, SL) + 4095) & ~(size_t)4095;
    total = ctl_bytes + CAP;
    shared = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    saved = malloc(total);
    if (shared == MAP_FAILED || !saved)
        return 1;
    uint64_t points = 0;
    size_t n = sizeof scenarios / sizeof scenarios[0];
    for (size_t i = 0; i < n; i++) {
        uint64_t stores = one(&scenarios[i]);
        if (stores < 2)
            fail(scenarios[i].name, stores, "fewer than two stores: nothing was tested");
        points += stores;
    }
    printf("crash: %zu operations stopped after each of their %llu stores; every heap recovered, "
           "each operation done or not, every other block intact\n",
           n, (unsigned long long)points);
    free(saved);
    return 0;
}

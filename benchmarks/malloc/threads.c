/*
 * threads.c: a multi-threaded malloc/free benchmark, for whatever allocator
 * the process has (LD_PRELOAD one to measure it; run.py does).
 *
 *     ./threads T N [SEED]
 *
 * T threads each do N operations on a table of SLOTS live blocks of their
 * own: an operation picks a slot at random (splitmix64, seeded per thread
 * from SEED and the thread's index); an empty slot gets a malloc of a
 * log-uniform size in 16 B .. 4 KiB (a power of two range, then uniform
 * within it), whose first and last bytes are written; a full slot's block is
 * freed, or, one time in HANDOFF, handed to the next thread ((t + 1) % T)
 * through its mailbox, a small mutex-protected array that the receiver
 * empties every DRAIN operations and frees: cross-thread frees. A full
 * mailbox makes the sender free the block itself. Every block's bytes are
 * checked when it is freed, whoever frees it.
 *
 * Timed (clock_gettime CLOCK_MONOTONIC): from the moment every thread is
 * made and waiting at a barrier to the last thread's end, with the final
 * frees of the blocks still live (each thread frees its table and its
 * mailbox; the main thread then empties the mailboxes filled after their
 * owner finished). ops = malloc calls + free calls.
 *
 * stdout: first the lines that depend only on T, N and SEED (the same under
 * every allocator), then "cross-thread frees", "seconds" and "ops/s", which
 * depend on the scheduling and the machine. Exit status 1 if a block's bytes
 * were found changed (a broken allocator), 2 on bad arguments or a failed
 * malloc.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOTS 1000
#define HANDOFF 8      /* one free in HANDOFF goes to another thread */
#define MAILBOX 4096   /* blocks a mailbox holds */
#define DRAIN 64       /* a thread empties its mailbox every DRAIN operations */
#define MIN_LOG2 4     /* sizes 16 B .. */
#define MAX_LOG2 12    /* .. 4 KiB */

typedef struct {
    unsigned char *p;
    uint32_t size;
} block_t;

typedef struct {
    pthread_mutex_t lock;
    unsigned n;
    block_t b[MAILBOX];
} mailbox_t;

typedef struct {
    unsigned index;
    uint64_t rng;
    uint64_t n_ops;
    uint64_t n_malloc, n_free, n_cross, n_bad;
    uint64_t bytes; /* sum of the sizes asked for */
    uint64_t check; /* sum of the tag bytes read back at free */
    block_t slot[SLOTS];
} worker_t;

static unsigned n_threads;
static worker_t *workers;
static mailbox_t *mailboxes;
static pthread_barrier_t start;

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* The tag written into a block: a function of its size, so any thread can check it. */
static unsigned char tag(uint32_t size)
{
    return (unsigned char)(size * 131u + 7u);
}

/* Checks and frees a block; counted in w (whoever frees it). */
static void release(worker_t *w, block_t b)
{
    unsigned char t = tag(b.size);
    if (b.p[0] != t || b.p[b.size - 1] != (unsigned char)~t)
        w->n_bad++;
    w->check += b.p[0];
    free(b.p);
    w->n_free++;
}

/* Frees whatever is in mailbox m; counted in w. */
static void drain(worker_t *w, mailbox_t *m)
{
    block_t got[MAILBOX];
    pthread_mutex_lock(&m->lock);
    unsigned n = m->n;
    memcpy(got, m->b, n * sizeof *got);
    m->n = 0;
    pthread_mutex_unlock(&m->lock);
    for (unsigned i = 0; i < n; i++)
        release(w, got[i]);
}

/* Hands b to the next thread, or frees it here if that one's mailbox is full. */
static void hand_off(worker_t *w, block_t b)
{
    mailbox_t *m = &mailboxes[(w->index + 1) % n_threads];
    pthread_mutex_lock(&m->lock);
    int sent = m->n < MAILBOX;
    if (sent)
        m->b[m->n++] = b;
    pthread_mutex_unlock(&m->lock);
    if (sent)
        w->n_cross += n_threads > 1;
    else
        release(w, b);
}

static void *run(void *arg)
{
    worker_t *w = arg;
    mailbox_t *mine = &mailboxes[w->index];
    pthread_barrier_wait(&start);
    for (uint64_t op = 0; op < w->n_ops; op++) {
        uint64_t r = splitmix64(&w->rng);
        block_t *s = &w->slot[r % SLOTS];
        r /= SLOTS;
        if (s->p) {
            if (r % HANDOFF == 0)
                hand_off(w, *s);
            else
                release(w, *s);
            s->p = NULL;
        } else {
            r /= HANDOFF;
            unsigned e = MIN_LOG2 + (unsigned)(r % (MAX_LOG2 - MIN_LOG2));
            r /= MAX_LOG2 - MIN_LOG2;
            uint32_t size = ((uint32_t)1 << e) + (uint32_t)(r % (((uint64_t)1 << e) + 1));
            unsigned char *p = malloc(size);
            if (!p) {
                fprintf(stderr, "threads: malloc(%" PRIu32 ") failed\n", size);
                exit(2);
            }
            p[0] = tag(size);
            p[size - 1] = (unsigned char)~tag(size);
            *s = (block_t){p, size};
            w->n_malloc++;
            w->bytes += size;
        }
        if (op % DRAIN == DRAIN - 1)
            drain(w, mine);
    }
    for (unsigned i = 0; i < SLOTS; i++)
        if (w->slot[i].p)
            release(w, w->slot[i]);
    drain(w, mine);
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s THREADS OPS_PER_THREAD [SEED]\n", argv[0]);
        return 2;
    }
    long t = strtol(argv[1], NULL, 10);
    long long n = strtoll(argv[2], NULL, 10);
    unsigned long long seed = argc > 3 ? strtoull(argv[3], NULL, 10) : 1;
    if (t < 1 || t > 1024 || n < 1) {
        fprintf(stderr, "threads: THREADS must be 1..1024 and OPS_PER_THREAD at least 1\n");
        return 2;
    }
    n_threads = (unsigned)t;
    workers = calloc(n_threads, sizeof *workers);
    mailboxes = calloc(n_threads, sizeof *mailboxes);
    pthread_t *ids = calloc(n_threads, sizeof *ids);
    if (!workers || !mailboxes || !ids) {
        fprintf(stderr, "threads: out of memory\n");
        return 2;
    }
    pthread_barrier_init(&start, NULL, n_threads + 1);
    for (unsigned i = 0; i < n_threads; i++) {
        pthread_mutex_init(&mailboxes[i].lock, NULL);
        workers[i].index = i;
        workers[i].n_ops = (uint64_t)n;
        workers[i].rng = seed * 0x100000001b3u + i; /* splitmix64 mixes it */
        if (pthread_create(&ids[i], NULL, run, &workers[i])) {
            fprintf(stderr, "threads: pthread_create failed\n");
            return 2;
        }
    }
    pthread_barrier_wait(&start);
    double t0 = now();
    for (unsigned i = 0; i < n_threads; i++)
        pthread_join(ids[i], NULL);
    worker_t late = {0}; /* frees of blocks sent to a thread after it finished */
    for (unsigned i = 0; i < n_threads; i++)
        drain(&late, &mailboxes[i]);
    double seconds = now() - t0;

    uint64_t n_malloc = 0, n_free = late.n_free, n_cross = 0, n_bad = late.n_bad;
    uint64_t bytes = 0, check = late.check;
    for (unsigned i = 0; i < n_threads; i++) {
        n_malloc += workers[i].n_malloc;
        n_free += workers[i].n_free;
        n_cross += workers[i].n_cross;
        n_bad += workers[i].n_bad;
        bytes += workers[i].bytes;
        check += workers[i].check;
    }
    uint64_t ops = n_malloc + n_free;
    printf("threads %u, operations per thread %lld, seed %llu\n", n_threads, n, seed);
    printf("malloc %" PRIu64 ", free %" PRIu64 ", bytes asked %" PRIu64 ", check %" PRIu64 "\n",
           n_malloc, n_free, bytes, check);
    printf("corrupt blocks %" PRIu64 "\n", n_bad);
    printf("cross-thread frees %" PRIu64 "\n", n_cross);
    printf("seconds %.6f\n", seconds);
    printf("ops/s %.0f\n", (double)ops / seconds);
    free(ids);
    free(mailboxes);
    free(workers);
    return n_bad ? 1 : (n_malloc == n_free ? 0 : 1);
}

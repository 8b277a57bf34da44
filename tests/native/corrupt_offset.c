/*
 * corrupt_offset.c: a catalogue of planted corruptions for the check of the
 * out-of-band engine (tlsf_oa_check in csrc/tlsf_offset.c), built with ASan +
 * UBSan (see Makefile).
 *
 *   corrupt_offset [SEED] [-v]
 *
 * The engine's metadata lives out of band, out of a Python user's reach, so
 * this measures the check's strength for fuzzing and hardening rather than a
 * safety contract (the in-band catalogue is tests/test_corruption.py). It
 * includes tlsf_offset.c to reach the nodes, lists, bitmaps and index.
 *
 * Random runs (alloc with alignments, alloc_many, free, free_many, resize,
 * add_range, now and then reset) over 36 configurations: sl_len 1, 4, 32 x
 * granularity 1, 16, 4096 x one range / ranges apart / touching ranges that
 * coalesce / ranges ending at 2^64 - 1. tlsf_oa_check runs after every
 * operation and must pass. At 8 points of each run, each kind of the
 * catalogue is planted at every applicable node, list, bucket and counter,
 * one corruption at a time: the check must report it (not hang: a watchdog
 * names the plant; not crash: ASan would), then pass again once the bytes are
 * restored (so a failed check leaves no marks behind). Most kinds change one
 * field; a few change several, consistently, as a buggy operation would (a
 * free without coalescing, a block refiled in the wrong list, ranges out of
 * order or split), so that the invariant they break is the only one that can
 * catch them. Every kind must be planted at least once. -v prints the plants
 * per kind.
 */
#define _POSIX_C_SOURCE 200809L /* alarm(): a check that hangs is reported, not waited for */
#include "tlsf_offset.c"

#include <signal.h>
#include <stddef.h>
#include <unistd.h>

/* ------------------------------------------------------------------ kinds */

/* Every word of a node is planted under each of its meanings: a free block's
 * next_free and prev_free (the word of a used block's hash_next and of its
 * flags: planted as those), a sentinel's next_range and range_first (the
 * words of a block's next_phys and hash_next). Out of the catalogue because
 * the check does not claim them: the node table (table, spare stack, bump,
 * avail, nodes_total, metadata_bytes), the index geometry (bucket_base, mask,
 * split) and the settings (sl_log2, min_log2, gran_log2, gran_mask), which
 * have no second copy to compare against; a corrupt avail, say, goes
 * unreported. fl_count, which sizes the lists array, is checked against the
 * capacity and planted, and so is node 0 (NIL), which must read as used. */
#define KINDS(X)                                                                                     \
    X(SIZE_PLUS_ONE, "size + 1 unit")                                                                \
    X(SIZE_MINUS_ONE, "size - 1 unit")                                                               \
    X(SIZE_ZERO, "size 0")                                                                           \
    X(SIZE_HUGE, "size huge")                                                                        \
    X(OFFSET, "offset +1, -1 or top bit flipped")                                                    \
    X(FLAG_USED, "flag USED toggled")                                                                \
    X(FLAG_SENTINEL, "flag SENTINEL toggled")                                                        \
    X(FLAG_MARK, "flag MARK left set")                                                               \
    X(FLAG_UNKNOWN, "unknown flag bit / flags cleared")                                              \
    X(PREV_PHYS_NIL, "prev_phys NIL")                                                                \
    X(PREV_PHYS_SELF, "prev_phys to itself")                                                         \
    X(PREV_PHYS_ELSEWHERE, "prev_phys elsewhere")                                                    \
    X(NEXT_PHYS_NIL, "next_phys NIL")                                                                \
    X(NEXT_PHYS_SELF, "next_phys to itself")                                                         \
    X(NEXT_PHYS_ELSEWHERE, "next_phys elsewhere")                                                    \
    X(NEXT_FREE_NIL, "next_free NIL")                                                                \
    X(NEXT_FREE_SELF, "next_free to itself")                                                         \
    X(NEXT_FREE_ELSEWHERE, "next_free elsewhere")                                                    \
    X(PREV_FREE_NIL, "prev_free NIL")                                                                \
    X(PREV_FREE_SELF, "prev_free to itself")                                                         \
    X(PREV_FREE_ELSEWHERE, "prev_free elsewhere")                                                    \
    X(LIST_DUPLICATE, "free block also linked into another list")                                    \
    X(LIST_DUPLICATE_HEAD, "free block also the whole of an empty list (bits set)")                  \
    X(LIST_CYCLE, "cycle in a free list")                                                            \
    X(LIST_HEAD, "list head NIL, skipping, at a used block, a sentinel or another class")            \
    X(LIST_TAIL, "list tail wrong")                                                                  \
    X(EMPTY_LIST, "empty list given a head or tail")                                                 \
    X(FL_BIT, "fl bitmap bit toggled")                                                               \
    X(SL_BIT, "sl bitmap bit toggled")                                                               \
    X(FL_COUNT, "fl_count +/- 1")                                                                    \
    X(INDEX_DROPPED, "used block dropped from its bucket")                                           \
    X(INDEX_MOVED, "used block moved to another bucket")                                             \
    X(INDEX_NOT_USED, "free block or sentinel put in the index")                                     \
    X(INDEX_CYCLE, "cycle in a bucket chain")                                                        \
    X(INDEX_CROSS, "bucket chain continued into another bucket")                                     \
    X(LIST_UNLINKED, "free block unlinked from its list (consistent)")                               \
    X(LIST_MOVED, "free block moved to another list (consistent)")                                   \
    X(FREED_UNCOALESCED, "used block freed without merging a free neighbour (consistent)")           \
    X(RANGE_NOT_CLOSED, "last block of a range 1 unit short or long, counter adjusted")              \
    X(RANGE_ORDER, "two ranges swapped in the range chain (consistent)")                             \
    X(RANGE_SPLIT, "a range split into two touching ranges (consistent)")                            \
    X(NEXT_RANGE, "next_range NIL, to itself or elsewhere")                                          \
    X(RANGE_FIRST, "range_first NIL, the sentinel or elsewhere")                                     \
    X(FIRST_RANGE, "first_range NIL or elsewhere")                                                   \
    X(CAPACITY, "counter capacity +/- 1")                                                            \
    X(ALLOCATED, "counter allocated +/- 1")                                                          \
    X(ALLOCATIONS, "counter allocations +/- 1")                                                      \
    X(FREE_BLOCKS, "counter free_blocks +/- 1")                                                      \
    X(NIL_NODE, "node 0 (NIL) no longer reads as used")

#define KIND_ENUM(k, s) K_##k,
#define KIND_NAME(k, s) s,
enum { KINDS(KIND_ENUM) K_COUNT };
static const char *const kind_names[K_COUNT] = {KINDS(KIND_NAME)};

/* ------------------------------------------------------------------ state */

static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#define ULLC(x) ((unsigned long long)(x))
#define MAX_LIVE 1024
#define MAX_STATE_NODES 8192
#define OPS_PER_CONFIG 3000
#define PLANT_POINTS 8
#define WINDOW ((uint64_t)1 << 14) /* units: the ranges of a run lie in [base, base + WINDOW) */

enum { ONE_RANGE, APART, TOUCHING, NEAR_TOP, LAYOUTS };
static const char *const layout_names[LAYOUTS] = {"one range", "ranges apart", "touching ranges",
                                                  "ranges ending at 2^64 - 1"};

static tlsf_oa_t *a;
static uint64_t seed, base, g, gl; /* seed of the run, window start (units), granularity and its log2 */
static int layout;
static uint64_t target;            /* live allocations the run hovers around */
static uint64_t live[MAX_LIVE];
static size_t n_live;
static char config[96];
static unsigned long long healthy, plants, states, kind_plants[K_COUNT];
static unsigned long long nodes_seen, most_nodes, most_ranges, split_states; /* sizes of the planted states */

#define FAIL(...)                                                                                   \
    do {                                                                                            \
        fprintf(stderr, "corrupt_offset: " __VA_ARGS__);                                            \
        fprintf(stderr, " (seed %#llx, %s)\n", ULLC(seed), config);                                 \
        exit(1);                                                                                    \
    } while (0)

/* --------------------------------------------------------- healthy states */

static void check_healthy(const char *after)
{
    char msg[256];
    if (tlsf_oa_check(a, msg, sizeof msg))
        FAIL("check failed on a healthy state after %s: %s", after, msg);
    healthy++;
}

static void add_range_units(uint64_t start, uint64_t n)
{
    if (!n || start < base || start - base > WINDOW - n)
        return;
    int rc = tlsf_oa_add_range(a, start << gl, n << gl);
    if (rc && rc != TLSF_ERANGE) /* ERANGE: it overlaps a range */
        FAIL("add_range: %s", tlsf_strerror(rc));
}

static uint64_t random_size(void)
{
    uint64_t r = rnd() % 16;
    return r == 0 ? 0 : r < 10 ? 1 + rnd() % (4 * g) : r < 15 ? rnd() % (32 * g) : rnd() % (256 * g);
}

static uint64_t random_align(void) { return rnd() % 4 ? 1 : (uint64_t)1 << (rnd() % (gl + 8)); }

static void forget(size_t k) { live[k] = live[--n_live]; }

/* A new range: apart (anywhere in the window) or touching a range at either end. */
static void grow(void)
{
    uint64_t n = 1 + rnd() % 600;
    if (layout == ONE_RANGE) { /* the one range grows at its end */
        add_range_units(N(a, a->first_range)->offset, n);
        return;
    }
    if (layout == APART || rnd() % 3 == 0) {
        add_range_units(base + rnd() % WINDOW, n);
        return;
    }
    uint64_t k = 0, pick;
    for (ref_t s = a->first_range; s; s = N(a, s)->next_range)
        k++;
    pick = rnd() % k;
    node_t *s = N(a, a->first_range);
    while (pick--)
        s = N(a, s->next_range);
    uint64_t start = N(a, s->range_first)->offset;
    if (rnd() % 2)
        add_range_units(s->offset, n);
    else if (start >= base + n)
        add_range_units(start - n, n);
}

static void step(void)
{
    uint64_t r = rnd() % 1000, o;
    int rc;
    if (r < 3) {
        tlsf_oa_reset(a);
        n_live = 0;
    } else if (r < 30) {
        grow();
    } else if (n_live && rnd() % (2 * target) < n_live) {
        size_t k = (size_t)(rnd() % n_live);
        if (r < 60 && n_live >= 4) { /* free_many of up to 4 (distinct: the last ones) */
            size_t n = 1 + (size_t)(rnd() % 4), bad;
            if ((rc = tlsf_oa_free_many(a, live + n_live - n, n, &bad)))
                FAIL("free_many: %s", tlsf_strerror(rc));
            n_live -= n;
        } else if (r < 700) {
            if ((rc = tlsf_oa_free(a, live[k])))
                FAIL("free of live %llu: %s", ULLC(live[k]), tlsf_strerror(rc));
            forget(k);
        } else {
            int resized;
            if ((rc = tlsf_oa_resize(a, live[k], random_size(), &resized)))
                FAIL("resize of live %llu: %s", ULLC(live[k]), tlsf_strerror(rc));
        }
    } else if (r < 80 && n_live + 4 <= MAX_LIVE) {
        uint64_t sizes[4], out[4];
        size_t n = 1 + (size_t)(rnd() % 4), failed;
        for (size_t i = 0; i < n; i++)
            sizes[i] = random_size();
        rc = tlsf_oa_alloc_many(a, sizes, n, random_align(), out, &failed);
        if (rc && rc != TLSF_ENOMEM)
            FAIL("alloc_many: %s", tlsf_strerror(rc));
        for (size_t i = 0; !rc && i < n; i++)
            live[n_live++] = out[i];
    } else if (n_live < MAX_LIVE) {
        rc = tlsf_oa_alloc(a, random_size(), random_align(), &o);
        if (rc && rc != TLSF_ENOMEM)
            FAIL("alloc: %s", tlsf_strerror(rc));
        if (!rc)
            live[n_live++] = o;
    }
}

/* ---------------------------------------------------------------- planting */

/* The nodes of the current state, in address order. Node pointers stay valid
 * while planting: plant_all reserves the one node a plant takes first, so the
 * table does not move. */
static node_t *nodes[MAX_STATE_NODES], *used_nodes[MAX_STATE_NODES], *free_nodes[MAX_STATE_NODES],
    *sentinels[MAX_STATE_NODES];
static size_t n_nodes, n_used, n_free, n_sentinels;

static node_t *node_at(ref_t r) { return r ? N(a, r) : NULL; }
static ref_t ref_of(const node_t *n) { return n ? R(a, n) : NIL; }

static void collect(void)
{
    n_nodes = n_used = n_free = n_sentinels = 0;
    for (node_t *s = node_at(a->first_range); s; s = node_at(s->next_range)) {
        for (node_t *b = N(a, s->range_first); b != s; b = N(a, b->next_phys)) {
            if (n_nodes + 2 > MAX_STATE_NODES)
                FAIL("more than %d nodes: raise MAX_STATE_NODES", MAX_STATE_NODES);
            nodes[n_nodes++] = b;
            if (b->flags & N_USED)
                used_nodes[n_used++] = b;
            else
                free_nodes[n_free++] = b;
        }
        nodes[n_nodes++] = s;
        sentinels[n_sentinels++] = s;
    }
}

static node_t *any_of(node_t *const *set, size_t n) { return n ? set[rnd() % n] : NULL; }
static uint64_t class_of(const node_t *b) { return tlsf_map_floor(&a->cls, b->size); }
static uint64_t n_classes(void) { return (uint64_t)a->cls.fl_count << a->cls.sl_log2; }
static uint64_t bucket_index(const node_t *n) { return bucket_of(a, hash_of(n->offset)); }

/* Planted fields (words and refs) are saved in plant order and restored in
 * reverse, so one field may be written twice. */
#define MAX_PATCHES 24
static struct {
    void *at;
    unsigned char old[sizeof(uint64_t)];
    size_t len;
} patches[MAX_PATCHES];
static int n_patches, kind;
static char where[160]; /* what is planted where, for messages and the watchdog */

static void save(void *at, size_t len)
{
    if (n_patches == MAX_PATCHES)
        FAIL("more than %d fields in one plant", MAX_PATCHES);
    patches[n_patches].at = at;
    patches[n_patches].len = len;
    memcpy(patches[n_patches++].old, at, len);
}
static void set_u64(uint64_t *f, uint64_t v)
{
    save(f, sizeof *f);
    *f = v;
}
static void set_u32(uint32_t *f, uint32_t v)
{
    save(f, sizeof *f);
    *f = v;
}
static void set_ref(ref_t *f, const node_t *v) { set_u32(f, ref_of(v)); }
static void restore(void)
{
    while (n_patches--)
        memcpy(patches[n_patches].at, patches[n_patches].old, patches[n_patches].len);
    n_patches = 0;
}

static const char *role(const node_t *n)
{
    return n->flags & N_SENTINEL ? "sentinel" : n->flags & N_USED ? "used block" : "free block";
}

/* Starts a plant of kind k at node n (or NULL) and the field named by fmt. */
static void begin(int k, const node_t *n, const char *fmt, ...) TLSF_PRINTF_LIKE(3, 4);
static void begin(int k, const node_t *n, const char *fmt, ...)
{
    int len = n ? snprintf(where, sizeof where, "%s at unit %llu: ", role(n), ULLC(n->offset)) : 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(where + len, sizeof where - (size_t)len, fmt, ap);
    va_end(ap);
    kind = k;
    n_patches = 0;
}

static void on_alarm(int sig)
{
    /* Not async-signal-safe (stdio), but the process ends here anyway. */
    (void)sig;
    fprintf(stderr, "corrupt_offset: tlsf_oa_check hangs on \"%s\", %s (seed %#llx, %s)\n", kind_names[kind],
            where, ULLC(seed), config);
    _exit(1);
}

/* The plant is in place: the check must report it, then pass once restored.
 * A plant that wrote the values already there is no corruption: skipped. */
static void expect_reported(void)
{
    int changed = 0;
    for (int i = 0; i < n_patches; i++)
        changed |= memcmp(patches[i].at, patches[i].old, patches[i].len) != 0;
    if (!changed) {
        n_patches = 0;
        return;
    }
    char msg[256];
    alarm(30);
    int rc = tlsf_oa_check(a, msg, sizeof msg);
    alarm(0);
    if (rc != TLSF_ECORRUPT) {
        restore();
        FAIL("\"%s\" not reported: %s", kind_names[kind], where);
    }
    restore();
    if (tlsf_oa_check(a, msg, sizeof msg))
        FAIL("after restoring \"%s\" (%s), the check fails: %s", kind_names[kind], where, msg);
    plants++;
    kind_plants[kind]++;
}

static void plant_u64(int k, const node_t *n, const char *field, uint64_t *f, uint64_t v)
{
    begin(k, n, "%s %#llx -> %#llx", field, ULLC(*f), ULLC(v));
    set_u64(f, v);
    expect_reported();
}

static void plant_u32(int k, const node_t *n, const char *field, uint32_t *f, uint32_t v)
{
    begin(k, n, "%s %#x -> %#x", field, *f, v);
    set_u32(f, v);
    expect_reported();
}

static void plant_ref(int k, node_t *n, const char *field, ref_t *f, node_t *v)
{
    begin(k, n, "%s -> %s", field, !v ? "NIL" : v == n ? "itself" : role(v));
    set_ref(f, v);
    expect_reported();
}

/* A link set to NIL, to its own node, and to a few other nodes of each role
 * (some of them the structural near misses `near`). */
static void plant_links(int k_null, int k_self, int k_else, node_t *n, const char *field, ref_t *f, node_t *near0,
                        node_t *near1)
{
    plant_ref(k_null, n, field, f, NULL);
    plant_ref(k_self, n, field, f, n);
    node_t *others[] = {near0, near1, any_of(used_nodes, n_used), any_of(free_nodes, n_free),
                        any_of(sentinels, n_sentinels), any_of(nodes, n_nodes)};
    for (size_t i = 0; i < sizeof others / sizeof *others; i++)
        if (others[i] && others[i] != n)
            plant_ref(k_else, n, field, f, others[i]);
}

/* Size, offset, flags and physical links of a block or sentinel (a
 * sentinel's next_phys word is its next_range: plant_ranges). */
static void plant_node(node_t *b)
{
    int sentinel = (b->flags & N_SENTINEL) != 0, used = (b->flags & N_USED) != 0;
    plant_u64(K_SIZE_PLUS_ONE, b, "size", &b->size, b->size + 1);
    if (b->size > 1)
        plant_u64(K_SIZE_MINUS_ONE, b, "size", &b->size, b->size - 1);
    plant_u64(K_SIZE_ZERO, b, "size", &b->size, 0); /* a sentinel's is 0: skipped */
    plant_u64(K_SIZE_HUGE, b, "size", &b->size, UINT64_MAX);
    plant_u64(K_SIZE_HUGE, b, "size", &b->size, (uint64_t)1 << 63);
    plant_u64(K_SIZE_HUGE, b, "size", &b->size, b->size + a->capacity);
    plant_u64(K_OFFSET, b, "offset", &b->offset, b->offset + 1);
    plant_u64(K_OFFSET, b, "offset", &b->offset, b->offset - 1);
    plant_u64(K_OFFSET, b, "offset", &b->offset, b->offset ^ (uint64_t)1 << 63);

    /* a free block's flags word is its prev_free: its flag bits are clear */
    plant_u32(K_FLAG_USED, b, "flags", &b->flags, b->flags ^ N_USED);
    plant_u32(K_FLAG_SENTINEL, b, "flags", &b->flags, b->flags ^ N_SENTINEL);
    if (!sentinel && !used) /* a free block dressed as a sentinel */
        plant_u32(K_FLAG_SENTINEL, b, "flags", &b->flags, N_USED | N_SENTINEL);
    plant_u32(K_FLAG_MARK, b, "flags", &b->flags, b->flags | N_MARK);
    plant_u32(K_FLAG_UNKNOWN, b, "flags", &b->flags, b->flags | 8);
    plant_u32(K_FLAG_UNKNOWN, b, "flags", &b->flags, 16);
    if (used) /* a free block's 0 is prev_free NIL: plant_free */
        plant_u32(K_FLAG_UNKNOWN, b, "flags", &b->flags, 0);

    node_t *prev = node_at(b->prev_phys), *next = sentinel ? NULL : N(a, b->next_phys);
    plant_links(K_PREV_PHYS_NIL, K_PREV_PHYS_SELF, K_PREV_PHYS_ELSEWHERE, b, "prev_phys", &b->prev_phys,
                prev ? node_at(prev->prev_phys) : NULL, next);
    if (!sentinel)
        plant_links(K_NEXT_PHYS_NIL, K_NEXT_PHYS_SELF, K_NEXT_PHYS_ELSEWHERE, b, "next_phys", &b->next_phys,
                    next->flags & N_SENTINEL ? NULL : N(a, next->next_phys), prev);
}

/* The list links of a free block, and the block linked into a second list. */
static void plant_free(node_t *b)
{
    node_t *next = node_at(b->next_free), *prev = node_at(b->prev_free);
    plant_links(K_NEXT_FREE_NIL, K_NEXT_FREE_SELF, K_NEXT_FREE_ELSEWHERE, b, "next_free", &b->next_free,
                next ? node_at(next->next_free) : NULL, prev);
    plant_links(K_PREV_FREE_NIL, K_PREV_FREE_SELF, K_PREV_FREE_ELSEWHERE, b, "prev_free", &b->prev_free,
                prev ? node_at(prev->prev_free) : NULL, next);

    /* Another list's tail links on to b; another, empty, list is b alone, bits set. */
    uint64_t i = class_of(b), n = n_classes();
    for (int tries = 0, done_full = 0, done_empty = 0; tries < 64 && !(done_full && done_empty); tries++) {
        uint64_t j = rnd() % n;
        node_t *tail = node_at(a->lists[2 * j + 1]);
        if (j == i)
            continue;
        if (tail && !done_full) {
            begin(K_LIST_DUPLICATE, b, "also after the tail of list %llu", ULLC(j));
            set_ref(&tail->next_free, b);
            expect_reported();
            done_full = 1;
        } else if (!tail && !done_empty) {
            uint64_t fl = j >> a->cls.sl_log2, sl = j & ((1u << a->cls.sl_log2) - 1);
            begin(K_LIST_DUPLICATE_HEAD, b, "also the only entry of list %llu", ULLC(j));
            set_ref(&a->lists[2 * j], b);
            set_ref(&a->lists[2 * j + 1], b);
            set_u64(&a->cls.sl_bitmap[fl], a->cls.sl_bitmap[fl] | (uint64_t)1 << sl);
            set_u64(&a->cls.fl_bitmap, a->cls.fl_bitmap | (uint64_t)1 << fl);
            expect_reported();
            done_empty = 1;
        }
    }
}

/* Heads, tails and cycles of the lists; a few empty lists given an entry. */
static void plant_lists(void)
{
    for (uint64_t i = 0, n = n_classes(); i < n; i++) {
        ref_t *head = &a->lists[2 * i], *tail = &a->lists[2 * i + 1];
        node_t *h = node_at(*head), *t = node_at(*tail);
        if (!h) {
            if (rnd() % 16)
                continue;
            begin(K_EMPTY_LIST, NULL, "list %llu head -> a free block", ULLC(i));
            set_ref(head, any_of(free_nodes, n_free));
            expect_reported();
            begin(K_EMPTY_LIST, NULL, "list %llu tail -> a free block", ULLC(i));
            set_ref(tail, any_of(free_nodes, n_free));
            expect_reported();
            begin(K_EMPTY_LIST, NULL, "list %llu head and tail -> a used block", ULLC(i));
            node_t *u = any_of(used_nodes, n_used);
            set_ref(head, u);
            set_ref(tail, u);
            expect_reported();
            continue;
        }
        node_t *other_class = NULL;
        for (size_t k = 0; k < n_free && !other_class; k++)
            if (class_of(free_nodes[k]) != i)
                other_class = free_nodes[k];
        node_t *heads[] = {NULL, node_at(h->next_free), t, any_of(used_nodes, n_used),
                           any_of(sentinels, n_sentinels), other_class};
        for (size_t k = 0; k < sizeof heads / sizeof *heads; k++) {
            begin(K_LIST_HEAD, NULL, "list %llu head -> %s", ULLC(i), heads[k] ? role(heads[k]) : "NIL");
            set_ref(head, heads[k]);
            expect_reported();
        }
        node_t *tails[] = {NULL, h, node_at(t->prev_free), any_of(used_nodes, n_used), other_class};
        for (size_t k = 0; k < sizeof tails / sizeof *tails; k++) {
            begin(K_LIST_TAIL, NULL, "list %llu tail -> %s", ULLC(i), tails[k] ? role(tails[k]) : "NIL");
            set_ref(tail, tails[k]);
            expect_reported();
        }
        begin(K_LIST_CYCLE, t, "list %llu: tail.next_free -> head", ULLC(i));
        set_ref(&t->next_free, h);
        expect_reported();
        begin(K_LIST_CYCLE, t, "list %llu: tail.next_free -> head, head.prev_free -> tail", ULLC(i));
        set_ref(&t->next_free, h);
        set_ref(&h->prev_free, t);
        expect_reported();
        if (t->prev_free) { /* a back edge in the middle, both ways consistent */
            node_t *p = N(a, t->prev_free);
            begin(K_LIST_CYCLE, t, "list %llu: tail.next_free -> its prev", ULLC(i));
            set_ref(&t->next_free, p);
            expect_reported();
            if (p->prev_free) {
                begin(K_LIST_CYCLE, p, "list %llu: next_free -> its prev, and back", ULLC(i));
                set_ref(&p->next_free, N(a, p->prev_free));
                set_ref(&N(a, p->prev_free)->prev_free, p);
                expect_reported();
            }
        }
    }
}

static void plant_bitmaps(void)
{
    unsigned sl_len = 1u << a->cls.sl_log2;
    for (unsigned fl = 0; fl < TLSF_FL_MAX; fl++)
        plant_u64(K_FL_BIT, NULL, "fl_bitmap", &a->cls.fl_bitmap, a->cls.fl_bitmap ^ (uint64_t)1 << fl);
    for (unsigned fl = 0; fl < TLSF_FL_MAX; fl++) {
        uint64_t *w = &a->cls.sl_bitmap[fl];
        for (unsigned sl = 0; sl < sl_len; sl++) /* every set bit cleared */
            if ((*w >> sl) & 1)
                plant_u64(K_SL_BIT, NULL, "sl_bitmap", w, *w & ~((uint64_t)1 << sl));
        if (fl <= a->cls.fl_count) { /* one bit set, at and just beyond the levels in use */
            plant_u64(K_SL_BIT, NULL, "sl_bitmap", w, *w | (uint64_t)1 << (rnd() % sl_len));
            if (sl_len < 64)
                plant_u64(K_SL_BIT, NULL, "sl_bitmap (beyond sl_len)", w, *w | (uint64_t)1 << sl_len);
        }
    }
    begin(K_FL_COUNT, NULL, "fl_count %u + 1", a->cls.fl_count);
    set_u32(&a->cls.fl_count, a->cls.fl_count + 1);
    expect_reported();
    begin(K_FL_COUNT, NULL, "fl_count %u - 1", a->cls.fl_count);
    set_u32(&a->cls.fl_count, a->cls.fl_count - 1);
    expect_reported();
}

/* The link that holds used node n in its bucket chain. */
static ref_t *link_of(node_t *n)
{
    ref_t *link = bucket(a, bucket_index(n));
    while (*link != R(a, n))
        link = &N(a, *link)->hash_next;
    return link;
}

static void plant_index(void)
{
    uint64_t nb = index_buckets(a);
    for (size_t k = 0; k < n_used; k++) {
        node_t *u = used_nodes[k], *next = node_at(u->hash_next);
        ref_t *link = link_of(u);
        uint64_t from = bucket_index(u), to = (from + 1 + rnd() % (nb - 1)) % nb;
        begin(K_INDEX_DROPPED, u, "unlinked from bucket %llu", ULLC(from));
        set_ref(link, next);
        expect_reported();
        begin(K_INDEX_MOVED, u, "moved from bucket %llu to %llu", ULLC(from), ULLC(to));
        set_ref(link, next);
        set_ref(&u->hash_next, node_at(*bucket(a, to)));
        set_ref(bucket(a, to), u);
        expect_reported();
        /* a cycle through the head cuts off the nodes after u: lookups of them must end */
        plant_ref(K_INDEX_CYCLE, u, "hash_next", &u->hash_next, node_at(*bucket(a, from)));
        plant_ref(K_INDEX_CYCLE, u, "hash_next", &u->hash_next, u);
        for (int tries = 0; tries < 8; tries++) {
            node_t *m = any_of(used_nodes, n_used);
            if (bucket_index(m) != from) {
                plant_ref(K_INDEX_CROSS, u, "hash_next (into another bucket)", &u->hash_next, m);
                break;
            }
        }
        /* on to a node that is not indexed (its hash_next word is a list link or range_first) */
        plant_ref(K_INDEX_CROSS, u, "hash_next", &u->hash_next, any_of(free_nodes, n_free));
        plant_ref(K_INDEX_CROSS, u, "hash_next", &u->hash_next, any_of(sentinels, n_sentinels));
    }
    for (size_t k = 0; k < n_nodes; k++) {
        node_t *n = nodes[k];
        ref_t *head = bucket(a, bucket_index(n));
        if (n->flags == N_USED)
            continue;
        begin(K_INDEX_NOT_USED, n, "put at the head of bucket %llu", ULLC(bucket_index(n)));
        set_u32(&n->hash_next, *head);
        set_ref(head, n);
        expect_reported();
    }
}

static void plant_ranges(void)
{
    for (size_t k = 0; k < n_sentinels; k++) {
        node_t *s = sentinels[k], *next = node_at(s->next_range), *first = N(a, s->range_first);
        node_t *ranges[] = {NULL,
                            s,
                            N(a, a->first_range),
                            next ? node_at(next->next_range) : NULL,
                            any_of(sentinels, n_sentinels),
                            any_of(used_nodes, n_used),
                            any_of(free_nodes, n_free)};
        for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++)
            plant_ref(K_NEXT_RANGE, s, "next_range", &s->next_range, ranges[i]);
        node_t *firsts[] = {NULL,
                            s,
                            N(a, first->next_phys),
                            N(a, any_of(sentinels, n_sentinels)->range_first),
                            any_of(sentinels, n_sentinels),
                            any_of(nodes, n_nodes)};
        for (size_t i = 0; i < sizeof firsts / sizeof *firsts; i++)
            plant_ref(K_RANGE_FIRST, s, "range_first", &s->range_first, firsts[i]);
    }
    node_t *heads[] = {NULL, node_at(N(a, a->first_range)->next_range), sentinels[n_sentinels - 1],
                       any_of(nodes, n_nodes)};
    for (size_t i = 0; i < sizeof heads / sizeof *heads; i++) {
        begin(K_FIRST_RANGE, NULL, "first_range -> %s", heads[i] ? role(heads[i]) : "NIL");
        set_ref(&a->first_range, heads[i]);
        expect_reported();
    }
}

static void plant_counters(void)
{
    static const struct {
        int kind;
        const char *name;
        size_t at;
    } counters[] = {
        {K_CAPACITY, "capacity", offsetof(tlsf_oa_t, capacity)},
        {K_ALLOCATED, "allocated", offsetof(tlsf_oa_t, allocated)},
        {K_ALLOCATIONS, "allocations", offsetof(tlsf_oa_t, allocations)},
        {K_FREE_BLOCKS, "free_blocks", offsetof(tlsf_oa_t, free_blocks)},
    };
    for (size_t i = 0; i < sizeof counters / sizeof *counters; i++) {
        uint64_t *f = (uint64_t *)(void *)((char *)a + counters[i].at);
        plant_u64(counters[i].kind, NULL, counters[i].name, f, *f + 1);
        plant_u64(counters[i].kind, NULL, counters[i].name, f, *f - 1);
    }
    node_t *nil = N(a, NIL);
    plant_u32(K_NIL_NODE, NULL, "node 0's flags", &nil->flags, 0);
    plant_u32(K_NIL_NODE, NULL, "node 0's flags", &nil->flags, N_USED | N_SENTINEL);
}

/* Multi-field plants: what a buggy operation would leave, every structure
 * consistent but for the one invariant broken (each needs a check of its own). */

/* List i's bits set or cleared, both levels consistent. */
static void set_bits(uint64_t i, int on)
{
    uint64_t fl = i >> a->cls.sl_log2, bit = (uint64_t)1 << (i & ((1u << a->cls.sl_log2) - 1));
    uint64_t w = on ? a->cls.sl_bitmap[fl] | bit : a->cls.sl_bitmap[fl] & ~bit;
    set_u64(&a->cls.sl_bitmap[fl], w);
    set_u64(&a->cls.fl_bitmap, w ? a->cls.fl_bitmap | (uint64_t)1 << fl : a->cls.fl_bitmap & ~((uint64_t)1 << fl));
}

/* Free block b out of its list, the list and its bits consistent. */
static void unlink_free(node_t *b)
{
    uint64_t i = class_of(b);
    node_t *p = node_at(b->prev_free), *n = node_at(b->next_free);
    set_ref(p ? &p->next_free : &a->lists[2 * i], n);
    set_ref(n ? &n->prev_free : &a->lists[2 * i + 1], p);
    if (!a->lists[2 * i])
        set_bits(i, 0);
}

/* Node b at the head of list i, consistently. */
static void push_free(node_t *b, uint64_t i)
{
    node_t *h = node_at(a->lists[2 * i]);
    set_ref(&b->next_free, h);
    set_ref(&b->prev_free, NULL);
    set_ref(h ? &h->prev_free : &a->lists[2 * i + 1], b);
    set_ref(&a->lists[2 * i], b);
    if (!h)
        set_bits(i, 1);
}

/* The link that names sentinel s: first_range or the previous sentinel's next_range. */
static ref_t *range_link(node_t *s)
{
    ref_t *link = &a->first_range;
    while (*link != R(a, s))
        link = &N(a, *link)->next_range;
    return link;
}

static void plant_consistent(void)
{
    for (size_t k = 0; k < n_free; k++) {
        node_t *b = free_nodes[k];
        begin(K_LIST_UNLINKED, b, "unlinked from list %llu", ULLC(class_of(b)));
        unlink_free(b);
        expect_reported();
        uint64_t j = rnd() % n_classes();
        if (j != class_of(b)) {
            begin(K_LIST_MOVED, b, "moved from list %llu to list %llu", ULLC(class_of(b)), ULLC(j));
            unlink_free(b);
            push_free(b, j);
            expect_reported();
        }
    }
    /* Freeing a used block with no free neighbour this way is what free does
     * (list order is policy, not an invariant): no corruption, not planted. */
    for (size_t k = 0; k < n_used; k++) {
        node_t *u = used_nodes[k], *p = N(a, u->prev_phys), *n = N(a, u->next_phys);
        if (p->flags & N_USED && n->flags & N_USED) /* (node 0, a first block's p, reads as used) */
            continue;
        begin(K_FREED_UNCOALESCED, u, "freed beside a free block");
        set_ref(link_of(u), node_at(u->hash_next));
        push_free(u, class_of(u)); /* prev_free over the flags: the block reads as free */
        set_u64(&a->allocations, a->allocations - 1);
        set_u64(&a->allocated, a->allocated - u->size);
        set_u64(&a->free_blocks, a->free_blocks + 1);
        expect_reported();
    }
    for (size_t k = 0; k < n_sentinels; k++) {
        node_t *s = sentinels[k], *last = N(a, s->prev_phys), *next = node_at(s->next_range);
        for (int d = -1; d <= 1; d += 2) { /* a free one is refiled in the list of its new size */
            int is_free = !(last->flags & N_USED);
            if (d < 0 && last->size == 1) /* size 0 is planted above */
                continue;
            begin(K_RANGE_NOT_CLOSED, last, "size %+d, with its counter and list", d);
            if (is_free)
                unlink_free(last);
            set_u64(&last->size, last->size + (uint64_t)(int64_t)d);
            if (is_free) /* (the free units are capacity - allocated: no counter) */
                push_free(last, class_of(last));
            else
                set_u64(&a->allocated, a->allocated + (uint64_t)(int64_t)d);
            expect_reported();
        }
        if (next) { /* s's range and the next one swap places in the chain */
            begin(K_RANGE_ORDER, s, "swapped with the next range");
            set_ref(range_link(s), next);
            set_u32(&s->next_range, next->next_range);
            set_ref(&next->next_range, s);
            expect_reported();
        }
        node_t *first = N(a, s->range_first);
        if (first->next_phys != R(a, s)) { /* a new sentinel t splits it after block b */
            node_t *b = first;
            for (uint64_t skip = rnd() % 4; skip-- && N(a, b->next_phys)->next_phys != R(a, s);)
                b = N(a, b->next_phys);
            node_t *c = N(a, b->next_phys);
            begin(K_RANGE_SPLIT, c, "a sentinel put before it");
            save(&a->spare, sizeof a->spare); /* t goes back to the node table when restored */
            save(&a->avail, sizeof a->avail);
            save(&a->bump, sizeof a->bump);
            node_t *t = new_node(a); /* reserved by plant_all: the table does not move */
            set_u64(&t->offset, c->offset);
            set_u64(&t->size, 0);
            set_u32(&t->flags, N_USED | N_SENTINEL);
            set_ref(&t->prev_phys, b);
            set_ref(&t->range_first, first); /* over the spare stack's link: restored with the rest */
            set_ref(&t->next_range, s);
            set_ref(range_link(s), t);
            set_ref(&b->next_phys, t);
            set_ref(&c->prev_phys, NULL);
            set_ref(&s->range_first, c);
            expect_reported();
        }
    }
}

/* Every kind at every applicable place of the current state. */
static void plant_all(void)
{
    if (!reserve_nodes(a, 1)) /* RANGE_SPLIT's sentinel, before any node pointer is taken */
        FAIL("out of memory");
    collect();
    states++;
    nodes_seen += n_nodes;
    most_nodes = n_nodes > most_nodes ? n_nodes : most_nodes;
    most_ranges = n_sentinels > most_ranges ? n_sentinels : most_ranges;
    split_states += index_buckets(a) > ((uint64_t)1 << INDEX_MIN_LOG2);
    for (size_t k = 0; k < n_nodes; k++)
        plant_node(nodes[k]);
    for (size_t k = 0; k < n_free; k++)
        plant_free(free_nodes[k]);
    plant_lists();
    plant_bitmaps();
    plant_index();
    plant_ranges();
    plant_counters();
    plant_consistent();
}

/* ------------------------------------------------------------------- runs */

static void run_config(unsigned sl_len, unsigned g_log2, int lay, uint64_t run_seed, uint64_t live_target)
{
    seed = rng_state = run_seed;
    gl = g_log2;
    g = (uint64_t)1 << gl;
    layout = lay;
    target = live_target;
    n_live = 0;
    snprintf(config, sizeof config, "sl_len %u, granularity %llu, %s", sl_len, ULLC(g), layout_names[lay]);
    if (!(a = tlsf_oa_create(sl_len, g)))
        FAIL("create");
    uint64_t top = UINT64_MAX >> gl; /* the highest unit a range can end at */
    base = lay == NEAR_TOP ? top - WINDOW : lay == ONE_RANGE ? 0 : (uint64_t)1 << 32;
    switch (lay) {
    case ONE_RANGE:
        add_range_units(base, WINDOW / 4);
        break;
    case APART:
        add_range_units(base + 100, 1000);
        add_range_units(base + 3000, 1500);
        add_range_units(base + 8000, 500);
        break;
    case TOUCHING: /* three coalesce into one, two into another, one apart */
        add_range_units(base, 1000);
        add_range_units(base + 2000, 1000);
        add_range_units(base + 1000, 1000);
        add_range_units(base + 5000, 700);
        add_range_units(base + 5700, 300);
        add_range_units(base + 9000, 400);
        break;
    default: /* the last range ends at 2^64 - 1 (in bytes, rounded down to the granularity) */
        add_range_units(top - 1000, 1000);
        add_range_units(top - 3000, 1500);
        add_range_units(top - 1500, 500);
        add_range_units(top - 6000, 1000);
        break;
    }
    check_healthy("the first ranges");
    for (unsigned op = 1; op <= OPS_PER_CONFIG; op++) {
        step();
        check_healthy("an operation");
        if (op % (OPS_PER_CONFIG / PLANT_POINTS) == 0)
            plant_all();
    }
    tlsf_oa_destroy(a);
}

int main(int argc, char **argv)
{
    uint64_t master = argc > 1 ? strtoull(argv[1], NULL, 0) : 1;
    int verbose = argc > 2 && !strcmp(argv[2], "-v");
    static const unsigned sl_lens[] = {1, 4, 32}, g_log2s[] = {0, 4, 12};
    static const uint64_t targets[] = {16, 48, 128};
    signal(SIGALRM, on_alarm);
    unsigned c = 0;
    for (unsigned i = 0; i < 3; i++)
        for (unsigned j = 0; j < 3; j++)
            for (int lay = 0; lay < LAYOUTS; lay++, c++)
                run_config(sl_lens[i], g_log2s[j], lay, master * 0x100000001B3ull + c, targets[c % 3]);
    int missing = 0;
    for (int k = 0; k < K_COUNT; k++) {
        if (verbose)
            printf("  %8llu  %s\n", kind_plants[k], kind_names[k]);
        if (!kind_plants[k]) {
            fprintf(stderr, "corrupt_offset: kind \"%s\" was never planted\n", kind_names[k]);
            missing = 1;
        }
    }
    if (missing)
        return 1;
    if (verbose)
        printf("  planted states: %llu nodes on average, at most %llu nodes and %llu ranges; "
               "%llu with a grown offset index\n",
               nodes_seen / states, most_nodes, most_ranges, split_states);
    printf("corrupt_offset: passed: %llu plants of %d kinds on %llu states, each reported and clean once "
           "restored; %llu healthy states (after every operation of %u configurations) reported nothing\n",
           plants, K_COUNT, states, healthy, c);
    return 0;
}

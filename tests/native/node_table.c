/*
 * node_table.c: the out-of-band engine's node table at its limits, built with
 * ASan + UBSan (see Makefile). It includes csrc/tlsf_offset.c with the cap
 * MAX_NODES lowered to 2^13 nodes, and with the reservation of address space
 * refused on demand.
 *
 *   node_table
 *
 * 1. The table moves into its reservation while small (at 1,024 nodes) and
 *    grows in place: 8,000 blocks, checked, then freed.
 * 2. Where the system refuses the reservation, realloc goes on: the same
 *    blocks, the table never reserved.
 * 3. At the cap, alloc fails with TLSF_ENOMETA and changes nothing (offsets,
 *    statistics, walk); one free makes room again; the nodes are reused.
 */
#define MAX_NODES ((uint64_t)1 << 13)
#define tlsf_os_reserve refusable_reserve
#include "tlsf_offset.c"
#undef tlsf_os_reserve
int tlsf_os_reserve(uint64_t n, void **out); /* the real one (the header declared it under the new name) */

static int refuse; /* whether the system "refuses" reservations */

int refusable_reserve(uint64_t n, void **out)
{
    return refuse ? 12 /* ENOMEM */ : tlsf_os_reserve(n, out);
}

#define FAIL(...)                                                                                   \
    do {                                                                                            \
        fprintf(stderr, "node_table: " __VA_ARGS__);                                                \
        fprintf(stderr, "\n");                                                                      \
        exit(1);                                                                                    \
    } while (0)

static void check(tlsf_oa_t *a, const char *when)
{
    char msg[256];
    if (tlsf_oa_check(a, msg, sizeof msg))
        FAIL("check failed %s: %s", when, msg);
}

/* n one-unit blocks at offsets 0, 1, ..., checked, then freed. */
static void fill_and_empty(int refused, uint64_t n)
{
    refuse = refused;
    tlsf_oa_t *a = tlsf_oa_create(32, 1);
    uint64_t off;
    if (!a || tlsf_oa_add_range(a, 0, (uint64_t)1 << 30))
        FAIL("create");
    for (uint64_t k = 0; k < n; k++)
        if (tlsf_oa_alloc(a, 1, 1, &off) || off != k)
            FAIL("alloc %llu: offset %llu", (unsigned long long)k, (unsigned long long)off);
    check(a, "full");
    if (a->reserved == refused)
        FAIL("the table is %sreserved with reservations %s", refused ? "" : "not ",
             refused ? "refused" : "allowed");
    for (uint64_t k = 0; k < n; k++)
        if (tlsf_oa_free(a, k))
            FAIL("free %llu", (unsigned long long)k);
    check(a, "emptied");
    tlsf_oa_destroy(a);
}

typedef struct {
    uint64_t sum, count;
} walk_sum;

static int add_block(uint64_t offset, uint64_t size, int used, void *ctx)
{
    walk_sum *w = ctx;
    w->sum = w->sum * 31 + offset * 7 + size * 3 + (uint64_t)used;
    w->count++;
    return 0;
}

static void at_the_cap(void)
{
    refuse = 0;
    tlsf_oa_t *a = tlsf_oa_create(32, 1);
    uint64_t off, n = 0;
    int rc;
    if (!a || tlsf_oa_add_range(a, 0, (uint64_t)1 << 30))
        FAIL("create");
    while ((rc = tlsf_oa_alloc(a, 1, 1, &off)) == TLSF_OK)
        n++;
    /* node 0, the sentinel, the free rest, and two spare nodes that carve may need */
    if (rc != TLSF_ENOMETA || n < MAX_NODES - 4 || a->nodes_total != MAX_NODES)
        FAIL("alloc stopped at %llu blocks of %llu nodes with %s", (unsigned long long)n,
             (unsigned long long)a->nodes_total, tlsf_strerror(rc));
    tlsf_stats_t before, after;
    walk_sum w0 = {0, 0}, w1 = {0, 0};
    tlsf_oa_stats(a, &before);
    tlsf_oa_walk(a, add_block, &w0);
    for (int k = 0; k < 100; k++)
        if ((rc = tlsf_oa_alloc(a, 1 + (uint64_t)k, 1, &off)) != TLSF_ENOMETA)
            FAIL("alloc at the cap: %s", tlsf_strerror(rc));
    tlsf_oa_stats(a, &after);
    tlsf_oa_walk(a, add_block, &w1);
    if (memcmp(&before, &after, sizeof before) || w0.sum != w1.sum || w0.count != w1.count)
        FAIL("a refused alloc changed the allocator");
    check(a, "at the cap");
    if (tlsf_oa_free(a, 1000) || tlsf_oa_alloc(a, 1, 1, &off) || off != 1000)
        FAIL("after a free at the cap, alloc does not take the freed unit");
    check(a, "at the cap, after a free");
    tlsf_oa_reset(a);
    for (uint64_t k = 0; k < n; k++)
        if (tlsf_oa_alloc(a, 1, 1, &off) || off != k)
            FAIL("after reset, alloc %llu", (unsigned long long)k);
    if (a->nodes_total != MAX_NODES)
        FAIL("after reset, the table grew to %llu nodes", (unsigned long long)a->nodes_total);
    check(a, "full again after reset");
    tlsf_oa_destroy(a);
    printf("node_table: at the cap of %llu nodes, %llu blocks; a refused alloc changes nothing\n",
           (unsigned long long)MAX_NODES, (unsigned long long)n);
}

int main(void)
{
    fill_and_empty(0, 8000);
    fill_and_empty(1, 8000);
    printf("node_table: 8,000 blocks with the table reserved and, reservations refused, realloc'd\n");
    at_the_cap();
    return 0;
}

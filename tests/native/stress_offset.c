/*
 * stress_offset.c: the native stress test of the out-of-band engine
 * (csrc/tlsf_offset.c), built with ASan + UBSan (see Makefile).
 *
 *   stress_offset SEED OPS
 *
 * Random alloc (alignments up to 2^20), free, resize, alloc_many / free_many,
 * add_range (apart and touching) and reset, over several configurations
 * (sl_len 1, 2, 32, 64; granularity 1, 16, 256). A shadow model owns every
 * unit of the managed space: each live allocation must be inside a range,
 * aligned, at least the size asked, and disjoint from the others; a resize
 * that says yes keeps the offset and has the new size, one that says no
 * changes nothing; every invalid offset is refused. tlsf_oa_check runs every
 * 2^12 operations and at the end of each configuration.
 *
 * fuzz/fuzz_offset.c includes this file with STRESS_OFFSET_NO_MAIN and
 * drives the same steps from its input bytes (next_random), over a smaller window.
 */
#include "tlsf_offset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 2048
#define SPACE_UNITS (1u << 20) /* the model's largest window: ranges are added inside it */

static uint64_t rng_state;
static uint64_t splitmix64(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint64_t (*next_random)(void) = splitmix64;
#define rnd() next_random()
static uint64_t space = SPACE_UNITS;   /* units in the window */
static uint64_t check_every = 4096;

static uint32_t owner[SPACE_UNITS]; /* unit -> slot + 1 owning it, 0 if none */
static uint8_t in_range[SPACE_UNITS];
static uint64_t off[SLOTS], units[SLOTS];
static int live[SLOTS];
static uint64_t g; /* granularity of the current configuration */
static tlsf_oa_t *a;
static unsigned long long failures;

#define FAIL(...)                                                                                   \
    do {                                                                                            \
        fprintf(stderr, "stress_offset: " __VA_ARGS__);                                             \
        fprintf(stderr, "\n");                                                                      \
        abort();                                                                                    \
    } while (0)

static void check(void)
{
    char msg[256];
    if (tlsf_oa_check(a, msg, sizeof msg))
        FAIL("check failed: %s", msg);
}

static void own(int k, uint64_t o, uint64_t u)
{
    if (o % g || o / g + u > space)
        FAIL("allocation at %llu (%llu units) outside the window", (unsigned long long)o, (unsigned long long)u);
    for (uint64_t x = o / g; x < o / g + u; x++) {
        if (!in_range[x] || owner[x])
            FAIL("allocation at %llu overlaps unit %llu (%s)", (unsigned long long)o, (unsigned long long)x,
                 in_range[x] ? "owned" : "not in a range");
        owner[x] = (uint32_t)k + 1;
    }
    off[k] = o;
    units[k] = u;
    live[k] = 1;
}

static void disown(int k)
{
    for (uint64_t x = off[k] / g; x < off[k] / g + units[k]; x++)
        owner[x] = 0;
    live[k] = 0;
}

static uint64_t usable(uint64_t o)
{
    uint64_t u;
    if (tlsf_oa_usable_size(a, o, &u))
        FAIL("usable_size refused live offset %llu", (unsigned long long)o);
    return u;
}

static uint64_t random_size(void)
{
    uint64_t r = rnd();
    return r % 8 == 0 ? rnd() % (64 * g * 64) : rnd() % (4 * g + 300);
}

static void add_range(uint64_t start_unit, uint64_t n_units)
{
    int rc = tlsf_oa_add_range(a, start_unit * g, n_units * g);
    int overlap = 0;
    for (uint64_t x = start_unit; x < start_unit + n_units; x++)
        overlap |= in_range[x];
    if (rc == TLSF_ERANGE && overlap)
        return;
    if (rc || overlap)
        FAIL("add_range(%llu units, %llu): rc %d, overlap %d", (unsigned long long)start_unit,
             (unsigned long long)n_units, rc, overlap);
    memset(in_range + start_unit, 1, n_units);
}

static void step(void)
{
    int k = (int)(rnd() % SLOTS);
    uint64_t r = rnd() % 100;
    if (!live[k] && r < 60) {
        uint64_t size = random_size(), align = r < 15 ? (uint64_t)1 << (rnd() % 21) : 1, o;
        int rc = tlsf_oa_alloc(a, size, align, &o);
        if (rc == TLSF_ENOMEM) {
            failures++;
            return;
        }
        if (rc)
            FAIL("alloc: %s", tlsf_strerror(rc));
        if (o % align)
            FAIL("offset %llu not aligned to %llu", (unsigned long long)o, (unsigned long long)align);
        uint64_t u = usable(o);
        if (u < size || u % g || u - size >= g + (size == 0) * g)
            FAIL("usable size %llu for %llu bytes", (unsigned long long)u, (unsigned long long)size);
        own(k, o, u / g);
    } else if (live[k] && r < 50) {
        if (tlsf_oa_free(a, off[k]))
            FAIL("free of live %llu refused", (unsigned long long)off[k]);
        if (tlsf_oa_free(a, off[k]) != TLSF_EINVAL)
            FAIL("double free of %llu accepted", (unsigned long long)off[k]);
        disown(k);
    } else if (live[k] && r < 80) {
        uint64_t size = random_size(), o = off[k], old = units[k];
        int resized;
        if (tlsf_oa_resize(a, o, size, &resized))
            FAIL("resize refused live %llu", (unsigned long long)o);
        uint64_t u = usable(o) / g;
        if (!resized) {
            if (u != old || size <= old * g)
                FAIL("refused resize changed %llu or could have shrunk", (unsigned long long)o);
            return;
        }
        disown(k);
        own(k, o, u);
    } else if (r < 90) { /* a batch over the free slots */
        int ks[8], n = 0;
        uint64_t sizes[8], out[8];
        size_t failed;
        for (int j = 0; j < 8 && n < 1 + (int)(rnd() % 8); j++) {
            int s = (int)(rnd() % SLOTS);
            int dup = 0;
            for (int i = 0; i < n; i++)
                dup |= ks[i] == s;
            if (!live[s] && !dup) {
                ks[n] = s;
                sizes[n++] = random_size();
            }
        }
        int rc = tlsf_oa_alloc_many(a, sizes, (size_t)n, 1, out, &failed);
        if (rc == TLSF_ENOMEM)
            return;
        if (rc)
            FAIL("alloc_many: %s", tlsf_strerror(rc));
        for (int i = 0; i < n; i++)
            own(ks[i], out[i], usable(out[i]) / g);
    } else if (r < 98) { /* free_many, sometimes with a bad entry: then nothing is freed */
        uint64_t offs[9];
        int ks[9], n = 0;
        size_t bad;
        for (int j = 0; j < 8; j++) {
            int s = (int)(rnd() % SLOTS), dup = 0;
            for (int i = 0; i < n; i++)
                dup |= ks[i] == s;
            if (live[s] && !dup) {
                ks[n] = s;
                offs[n++] = off[s];
            }
        }
        int poison = n && rnd() % 4 == 0;
        if (poison)
            offs[n] = rnd() % 2 || units[ks[0]] == 1 ? offs[0] : offs[0] + g; /* a duplicate, or interior */
        int rc = tlsf_oa_free_many(a, offs, (size_t)n + poison, &bad);
        if (poison) {
            if (rc != TLSF_EINVAL || bad != (size_t)n)
                FAIL("free_many accepted a bad entry (rc %d)", rc);
            return;
        }
        if (rc)
            FAIL("free_many: %s", tlsf_strerror(rc));
        for (int i = 0; i < n; i++)
            disown(ks[i]);
    } else if (r < 99) {
        uint64_t n = 1 + rnd() % (space / 256), start = rnd() % (space - n);
        add_range(start, n);
    } else if (rnd() % 64 == 0) {
        tlsf_oa_reset(a);
        for (int s = 0; s < SLOTS; s++)
            if (live[s])
                disown(s);
    }
}

/* One allocator of this configuration through `ops` steps, then checked and destroyed. */
static void run_config(unsigned sl_len, uint64_t granularity, unsigned long long ops, int verbose)
{
    g = granularity;
    a = tlsf_oa_create(sl_len, g);
    if (!a)
        FAIL("create");
    memset(owner, 0, space * sizeof *owner);
    memset(in_range, 0, space);
    memset(live, 0, sizeof live);
    add_range(0, space / 4); /* more ranges come as it runs */
    for (unsigned long long i = 1; i <= ops; i++) {
        step();
        if (i % check_every == 0)
            check();
    }
    check();
    if (verbose) {
        tlsf_stats_t st;
        tlsf_oa_stats(a, &st);
        printf("stress_offset: sl_len %u, granularity %llu: %llu ops, %llu allocations live, "
               "%llu free blocks, capacity %llu, metadata %llu bytes\n",
               sl_len, (unsigned long long)g, ops, (unsigned long long)st.allocations,
               (unsigned long long)st.free_blocks, (unsigned long long)tlsf_oa_capacity(a),
               (unsigned long long)tlsf_oa_metadata_bytes(a));
    }
    tlsf_oa_destroy(a);
}

#ifndef STRESS_OFFSET_NO_MAIN
int main(int argc, char **argv)
{
    rng_state = argc > 1 ? strtoull(argv[1], NULL, 0) : 1;
    unsigned long long ops = argc > 2 ? strtoull(argv[2], NULL, 0) : 10000000;
    static const struct { unsigned sl_len; uint64_t g; } configs[] = {
        {32, 1}, {1, 1}, {2, 16}, {64, 16}, {32, 256}, {4, 1},
    };
    size_t n_configs = sizeof configs / sizeof *configs;
    for (size_t c = 0; c < n_configs; c++)
        run_config(configs[c].sl_len, configs[c].g, ops / n_configs, 1);
    printf("stress_offset: passed, %llu ops, %llu allocations refused for lack of space\n", ops, failures);
    return 0;
}
#endif

/*
 * tlsf_offset.c: the out-of-band TLSF engine (see tlsf_offset.h). Plain C11,
 * no Python. The pure-Python twin src/tlsf/pure/offset.py mirrors this file
 * function for function, with the same names, and must return identical
 * offsets. The node table and the offset index are storage the twin gets
 * from Python (objects and a dict); everything else is mirrored.
 *
 * Sections: layout, node table, offset index, free lists, block placement,
 * public operations, ranges, inspection.
 *
 * Every block of every range is a node {offset, size, physical neighbours,
 * free-list links}. Offsets and sizes are kept in units of the granularity.
 * Each range ends with a sentinel node: a permanently used block of size 0
 * at the range's end that stops coalescing, points back at the range's first
 * block (range_first) and links the ranges in address order (next_range).
 * No two physically adjacent blocks are free. Used nodes are also in the
 * offset index, which is what decides whether an offset is live.
 */
#include "tlsf_offset.h"
#include "platform/os_memory.h"
#include "tlsf_classes.h"

#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ layout */

/* A node is named by a ref: its byte offset in the node table, a multiple of
 * sizeof(node_t), so that following one is a single add. Ref 0 (NIL) is node
 * 0, which is never a block: it reads as used (N_USED), so the missing
 * previous neighbour of a range's first block stops coalescing like a used
 * block does. 32-bit refs bound the table to 2^27 nodes (4 GiB). */
typedef uint32_t ref_t;
#define NIL ((ref_t)0)
#ifndef MAX_NODES /* tests/native/node_table.c lowers it to reach it */
#define MAX_NODES ((uint64_t)1 << 27)
#endif

/* Flags share a word with prev_free: refs are multiples of 32, so a free
 * block's word has its five low bits clear and reads as no flags. */
#define N_USED 1u
#define N_SENTINEL 2u
#define N_MARK 4u /* scratch bit of tlsf_oa_check (free blocks) and tlsf_oa_free_many (used ones) */
#define N_FLAGS 31u

typedef struct node node_t;
struct node { /* 32 bytes: two to a cache line */
    uint64_t offset, size;       /* in units */
    ref_t prev_phys;             /* physical neighbour; NIL for a range's first block */
    union {
        ref_t next_phys;         /* block: physical neighbour */
        ref_t next_range;        /* sentinel: the next range's sentinel */
    };
    union {
        ref_t next_free;         /* free block: list link; unused node: the next unused one */
        ref_t hash_next;         /* used block: the next node in its offset-index bucket */
        ref_t range_first;       /* sentinel: the first block of its range */
    };
    union {
        ref_t prev_free;         /* free block: list link (no flag bits) */
        uint32_t flags;          /* used block: N_USED; sentinel: N_USED | N_SENTINEL */
    };
};

#define INDEX_MIN_LOG2 6       /* the offset index starts with 64 buckets */
#define INDEX_SEGMENTS 32      /* it grows while allocations > buckets, so MAX_NODES keeps it below 2^28 */
#define TABLE_MIN 64u          /* nodes in the first node table (2 KiB) */
#define TABLE_RESERVE_AT (1u << 10) /* nodes (32 KiB): a table this large moves once into a reservation */
#define TABLE_RESERVATION (MAX_NODES * sizeof(node_t)) /* 4 GiB of address space, touched as used */

struct tlsf_oa {
    tlsf_classes_t cls;
    unsigned gran_log2;
    uint64_t gran_mask;          /* granularity - 1 */
    /* statistics (units; allocations: also the entries of the index; the
     * free units are capacity - allocated), each beside a field that is not
     * one, so that the compiler does not pack two updates into vector
     * instructions (more instructions than two adds) */
    uint64_t allocated;
    uint64_t capacity;           /* units in all ranges */
    uint64_t allocations;
    ref_t *lists;                /* lists[2*i] = head, lists[2*i+1] = tail of class i */
    ref_t first_range;           /* sentinel of the lowest range */
    uint64_t free_blocks;
    /* node table: one array of nodes_total nodes. Small, it is malloc'd and
     * doubled by realloc (a copy of at most 16 KiB); at TABLE_RESERVE_AT nodes
     * it moves once into a reservation of address space for MAX_NODES, where
     * it grows in place, never copied again (where the system refuses the
     * reservation, realloc goes on). Refs stay valid across a move, node
     * pointers do not: an operation reserves its nodes before it takes any.
     * Unused nodes are stacked. */
    char *table;
    ref_t spare;
    uint64_t bump;               /* the first never-used node */
    uint64_t avail;              /* nodes new_node can take: spare and never used */
    uint64_t nodes_total;        /* nodes in the table, node 0 included */
    uint64_t metadata_bytes;     /* the table's nodes_total nodes, index segments, lists, this */
    /* offset index: linear hashing over used nodes; buckets never move.
     * They lie in segments: the first holds buckets [0, 2^INDEX_MIN_LOG2),
     * each later one [2^m, 2^(m+1)) for an m >= INDEX_MIN_LOG2. Bucket b is
     * the word at bucket_base[log2(b | 1)] + b * sizeof(ref_t): entries
     * below INDEX_MIN_LOG2 hold the first segment's address, the one of m the
     * address of m's segment less 2^m words, set by the first split of the
     * round where mask = 2^m - 1. */
    uintptr_t bucket_base[INDEX_SEGMENTS];
    uint64_t mask;               /* 2^m - 1: this round splits buckets [0, 2^m) into [0, 2^(m+1)) */
    uint64_t split;              /* the next bucket to split; mask + 1 + split buckets */
    int reserved;                /* the node table is the reservation */
};

#define LIKELY TLSF_LIKELY
#define UNLIKELY TLSF_UNLIKELY

/* -------------------------------------------------------------- node table */

static inline node_t *N(const tlsf_oa_t *a, ref_t r) { return (node_t *)(void *)(a->table + r); }
static inline ref_t R(const tlsf_oa_t *a, const node_t *n) { return (ref_t)((const char *)n - a->table); }

/* Doubles the table. Called before an operation changes anything (through
 * reserve_nodes), so that running out of memory leaves the allocator as it
 * was. */
TLSF_COLD int grow_nodes(tlsf_oa_t *a)
{
    uint64_t n = a->nodes_total;
    void *r;
    if (n >= MAX_NODES)
        return 0;
    if (!a->reserved && 2 * n >= TABLE_RESERVE_AT && !tlsf_os_reserve(TABLE_RESERVATION, &r)) {
        memcpy(r, a->table, (size_t)n * sizeof(node_t));
        free(a->table);
        a->table = r;
        a->reserved = 1;
    }
    if (!a->reserved) {
        char *t = realloc(a->table, (size_t)(2 * n) * sizeof(node_t));
        if (!t)
            return 0;
        a->table = t;
    }
    a->avail += n;
    a->nodes_total = 2 * n;
    a->metadata_bytes += n * sizeof(node_t);
    return 1;
}

static inline int reserve_nodes(tlsf_oa_t *a, uint64_t n)
{
    if (LIKELY(a->avail >= n))
        return 1;
    return grow_nodes(a);
}

static inline node_t *new_node(tlsf_oa_t *a)
{
    ref_t r = a->spare;
    if (r) {
        a->spare = N(a, r)->next_free;
    } else {
        assert(a->bump < a->nodes_total * sizeof(node_t));
        r = (ref_t)a->bump;
        a->bump += sizeof(node_t);
    }
    a->avail--;
    return N(a, r);
}

static inline void drop_node(tlsf_oa_t *a, node_t *n)
{
    n->flags = 0;
    n->next_free = a->spare;
    a->spare = R(a, n);
    a->avail++;
}

/* ------------------------------------------------------------ offset index */

static inline uint64_t hash_of(uint64_t u)
{
    return (u * 0x9E3779B97F4A7C15ull) >> 32; /* Fibonacci hashing: the good high bits, enough for 2^32 buckets */
}

TLSF_HOT ref_t *bucket(const tlsf_oa_t *a, uint64_t b)
{
    return (ref_t *)(a->bucket_base[tlsf_log2(b | 1)] + b * sizeof(ref_t));
}

static inline uint64_t bucket_of(const tlsf_oa_t *a, uint64_t h)
{
    uint64_t b = h & a->mask;
    return b < a->split ? h & (2 * a->mask + 1) : b;
}

/* The link that holds the used node at unit offset u, or the NIL link ending its bucket. */
TLSF_HOT ref_t *index_find(const tlsf_oa_t *a, uint64_t u)
{
    ref_t *link = bucket(a, bucket_of(a, hash_of(u)));
    while (*link && N(a, *link)->offset != u)
        link = &N(a, *link)->hash_next;
    return link;
}

/* One more bucket, split from bucket `split` (linear hashing: one bucket per
 * insertion at most, so the index grows without ever rehashing at once).
 * Without memory for a new segment it does not grow: chains get longer. */
TLSF_COLD void index_grow(tlsf_oa_t *a)
{
    uint64_t half = a->mask + 1;
    if (!a->split) { /* the round's first split: its segment */
        ref_t *seg = malloc((size_t)half * sizeof(ref_t));
        if (!seg)
            return;
        a->bucket_base[tlsf_log2(half)] = (uintptr_t)seg - half * sizeof(ref_t);
        a->metadata_bytes += half * sizeof(ref_t);
    }
    ref_t *from = bucket(a, a->split), *to = bucket(a, a->split + half);
    *to = NIL;
    while (*from) {
        node_t *n = N(a, *from);
        if (hash_of(n->offset) & half) {
            *from = n->hash_next;
            n->hash_next = *to;
            *to = R(a, n);
        } else {
            from = &n->hash_next;
        }
    }
    if (++a->split == half) {
        a->mask = 2 * a->mask + 1;
        a->split = 0;
    }
}

static inline uint64_t index_buckets(const tlsf_oa_t *a) { return a->mask + 1 + a->split; }

TLSF_HOT void index_insert(tlsf_oa_t *a, node_t *n)
{
    ref_t *link = bucket(a, bucket_of(a, hash_of(n->offset)));
    n->hash_next = *link;
    *link = R(a, n);
    if (++a->allocations > index_buckets(a))
        index_grow(a);
}

/* -------------------------------------------------------------- free lists */

/* As in tlsf.c: a block at least as large as the list's head goes in front,
 * a smaller one at the tail, so the head is the largest seen. at_head: in
 * front anyway (an undone allocation goes back where alloc took it).
 * Setting prev_free clears the flags (they share a word). The statistic
 * free_blocks is not the lists' business: carve, release, resize and reset
 * count what an operation changes, once. */
TLSF_HOT void insert_free(tlsf_oa_t *a, node_t *b, int at_head, unsigned sli)
{
    uint64_t i = tlsf_map_floor_k(b->size, sli, 0);
    ref_t *head = &a->lists[2 * i], *tail = &a->lists[2 * i + 1], h = *head, r = R(a, b);
    if (!h) {
        b->next_free = b->prev_free = NIL;
        *head = *tail = r;
        tlsf_mark_class_k(&a->cls, i, sli);
    } else if (at_head || b->size >= N(a, h)->size) {
        b->next_free = h;
        b->prev_free = NIL;
        N(a, h)->prev_free = r;
        *head = r;
    } else {
        b->next_free = NIL;
        b->prev_free = *tail;
        N(a, *tail)->next_free = r;
        *tail = r;
    }
}

TLSF_HOT void remove_free(tlsf_oa_t *a, node_t *b, unsigned sli)
{
    uint64_t i = tlsf_map_floor_k(b->size, sli, 0);
    if (b->prev_free)
        N(a, b->prev_free)->next_free = b->next_free;
    else
        a->lists[2 * i] = b->next_free;
    if (b->next_free)
        N(a, b->next_free)->prev_free = b->prev_free;
    else
        a->lists[2 * i + 1] = b->prev_free;
    if (!a->lists[2 * i])
        tlsf_unmark_class_k(&a->cls, i, sli);
}

/* remove_free for the head b of list i (what alloc takes). */
TLSF_HOT void remove_head(tlsf_oa_t *a, node_t *b, uint64_t i, unsigned sli)
{
    ref_t n = b->next_free;
    a->lists[2 * i] = n;
    if (n) {
        N(a, n)->prev_free = NIL;
    } else {
        a->lists[2 * i + 1] = NIL;
        tlsf_unmark_class_k(&a->cls, i, sli);
    }
}

/* --------------------------------------------------------- block placement */

/* Units of padding in front of unit offset `offset` for alignment `align` (units). */
static inline uint64_t align_gap(uint64_t offset, uint64_t align) { return (0 - offset) & (align - 1); }

/* A new free node for the part of block b beyond its first `keep` units, linked after b. */
TLSF_HOT node_t *split_after(tlsf_oa_t *a, node_t *b, uint64_t keep)
{
    node_t *r = new_node(a);
    ref_t rr = R(a, r);
    r->offset = b->offset + keep;
    r->size = b->size - keep;
    r->flags = 0;
    r->prev_phys = R(a, b);
    r->next_phys = b->next_phys;
    N(a, b->next_phys)->prev_phys = rr;
    b->next_phys = rr;
    b->size = keep;
    return r;
}

/* Block b across the link from its previous neighbour p, which absorbs it. */
TLSF_HOT void absorb_next(tlsf_oa_t *a, node_t *p, node_t *b)
{
    p->size += b->size;
    p->next_phys = b->next_phys;
    N(a, b->next_phys)->prev_phys = R(a, p);
    drop_node(a, b);
}

/* Free block b (unlinked) becomes a used block of `need` units after `gap`
 * units of padding; padding and tail go back to the free lists, on nodes the
 * caller reserved. Returns the used node. */
TLSF_HOT node_t *carve(tlsf_oa_t *a, node_t *b, uint64_t gap, uint64_t need, unsigned sli)
{
    /* free blocks: b less, the padding and the tail more */
    if (gap) {
        node_t *u = split_after(a, b, gap);
        insert_free(a, b, 0, sli);
        b = u;
        a->free_blocks++;
    }
    assert(b->size >= need);
    if (b->size > need)
        insert_free(a, split_after(a, b, need), 0, sli);
    else
        a->free_blocks--;
    b->flags = N_USED;
    index_insert(a, b);
    a->allocated += need;
    return b;
}

/* Block b, in no list and not indexed, becomes free, merged with its free
 * neighbours; at_head as insert_free. (A range's first block has prev_phys
 * NIL, node 0, which reads as used.) */
TLSF_HOT void release(tlsf_oa_t *a, node_t *b, int at_head, unsigned sli)
{
    node_t *n = N(a, b->next_phys), *p = N(a, b->prev_phys);
    a->free_blocks++; /* and one less for each merged */
    if (!(n->flags & N_USED)) {
        remove_free(a, n, sli);
        absorb_next(a, b, n);
        a->free_blocks--;
    }
    if (!(p->flags & N_USED)) {
        remove_free(a, p, sli);
        absorb_next(a, p, b);
        b = p;
        a->free_blocks--;
    }
    insert_free(a, b, at_head, sli);
}

/* ------------------------------------------------------ public operations */

tlsf_oa_t *tlsf_oa_create(unsigned sl_len, uint64_t granularity)
{
    if (sl_len == 0 || sl_len > 64 || (sl_len & (sl_len - 1)) || !granularity ||
        (granularity & (granularity - 1)))
        return NULL;
    tlsf_oa_t *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->cls.sl_log2 = tlsf_log2(sl_len);
    a->cls.min_log2 = 0;
    a->gran_log2 = tlsf_log2(granularity);
    a->gran_mask = granularity - 1;
    a->mask = ((uint64_t)1 << INDEX_MIN_LOG2) - 1;
    ref_t *first = calloc((size_t)1 << INDEX_MIN_LOG2, sizeof(ref_t));
    a->table = calloc(TABLE_MIN, sizeof(node_t));
    if (!first || !a->table) {
        free(first);
        free(a->table);
        free(a);
        return NULL;
    }
    for (unsigned m = 0; m < INDEX_MIN_LOG2; m++)
        a->bucket_base[m] = (uintptr_t)first;
    N(a, NIL)->flags = N_USED;
    a->bump = sizeof(node_t);
    a->avail = TABLE_MIN - 1;
    a->nodes_total = TABLE_MIN;
    a->metadata_bytes = sizeof *a + sizeof(ref_t) * ((uint64_t)1 << INDEX_MIN_LOG2) + TABLE_MIN * sizeof(node_t);
    return a;
}

void tlsf_oa_destroy(tlsf_oa_t *a)
{
    if (!a)
        return;
    if (a->reserved)
        tlsf_os_unreserve(a->table, TABLE_RESERVATION);
    else
        free(a->table);
    free(bucket(a, 0));
    for (unsigned m = INDEX_MIN_LOG2; m < tlsf_log2(a->mask + 1) + (a->split > 0); m++)
        free(bucket(a, (uint64_t)1 << m));
    free(a->lists);
    free(a);
}

uint64_t tlsf_oa_capacity(const tlsf_oa_t *a) { return a->capacity << a->gran_log2; }
uint64_t tlsf_oa_granularity(const tlsf_oa_t *a) { return (uint64_t)1 << a->gran_log2; }
unsigned tlsf_oa_sl_len(const tlsf_oa_t *a) { return 1u << a->cls.sl_log2; }

uint64_t tlsf_oa_metadata_bytes(const tlsf_oa_t *a) { return a->metadata_bytes; }

/* Units for `size` bytes; 0 bytes take one unit. */
static inline uint64_t units_for(const tlsf_oa_t *a, uint64_t size)
{
    return size ? ((size - 1) >> a->gran_log2) + 1 : 1; /* rounded up, without overflow */
}

/* The end of alloc_offset, taking block r (the head of list i), when fewer
 * than two nodes are at hand: carve takes one for the padding and one for
 * the tail, if any, so that at the cap an exact fit still succeeds. A copy
 * of alloc_offset's last lines rather than a call before them: with the
 * count inline, the hot path measured 1.3 instructions per operation more. */
TLSF_COLD int alloc_short(tlsf_oa_t *a, ref_t r, uint64_t i, uint64_t au, uint64_t need, uint64_t *out)
{
    uint64_t gap = align_gap(N(a, r)->offset, au);
    if (!reserve_nodes(a, (gap != 0) + (N(a, r)->size - gap > need))) /* may move the table */
        return TLSF_ENOMETA;
    node_t *b = N(a, r);
    remove_head(a, b, i, a->cls.sl_log2);
    *out = carve(a, b, gap, need, a->cls.sl_log2)->offset << a->gran_log2;
    return TLSF_OK;
}

/* tlsf_oa_alloc; sli: the allocator's sl_log2 (TLSF_SLI_DEFAULT). */
TLSF_HOT int alloc_offset(tlsf_oa_t *a, uint64_t size, uint64_t align, uint64_t *out, unsigned sli)
{
    if (UNLIKELY(!align || (align & (align - 1))))
        return TLSF_EALIGN;
    uint64_t need = units_for(a, size), au = align >> a->gran_log2;
    if (!au)
        au = 1;
    if (UNLIKELY(need > a->capacity || au > a->capacity))
        return TLSF_ENOMEM;
    /* worst-case padding is au - 1 units (saturated: then only the own list can serve) */
    uint64_t search = au - 1 > UINT64_MAX - need ? UINT64_MAX : need + au - 1;
    /* First the head of the request's own list, then good fit (as tlsf.c). */
    uint64_t i = tlsf_map_floor_k(search, sli, 0);
    ref_t r = tlsf_class_exists_k(&a->cls, i, sli) ? a->lists[2 * i] : NIL;
    if (r) {
        node_t *b = N(a, r);
        if (align_gap(b->offset, au) > b->size || need > b->size - align_gap(b->offset, au))
            r = NIL;
    }
    if (!r) {
        if ((i = tlsf_find_suitable_k(&a->cls, tlsf_map_ceil_k(search, sli, 0), sli)) == TLSF_CLASS_NONE)
            return TLSF_ENOMEM;
        r = a->lists[2 * i];
    }
    if (UNLIKELY(a->avail < 2))
        return alloc_short(a, r, i, au, need, out);
    node_t *b = N(a, r);
    remove_head(a, b, i, sli);
    *out = carve(a, b, align_gap(b->offset, au), need, sli)->offset << a->gran_log2;
    return TLSF_OK;
}

/* Another sl_len: tlsf_oa_alloc's uncommon case. */
TLSF_OUT_OF_LINE int alloc_any(tlsf_oa_t *a, uint64_t size, uint64_t align, uint64_t *out)
{
    return alloc_offset(a, size, align, out, a->cls.sl_log2);
}

int tlsf_oa_alloc(tlsf_oa_t *a, uint64_t size, uint64_t align, uint64_t *out)
{
    if (LIKELY(a->cls.sl_log2 == TLSF_SLI_DEFAULT))
        return alloc_offset(a, size, align, out, TLSF_SLI_DEFAULT);
    return alloc_any(a, size, align, out);
}

/* The used node at byte offset `offset`, or NULL; *link gets the index link holding it. */
static inline node_t *find_live(const tlsf_oa_t *a, uint64_t offset, ref_t **link)
{
    if (offset & a->gran_mask)
        return NULL;
    *link = index_find(a, offset >> a->gran_log2);
    return **link ? N(a, **link) : NULL;
}

/* at_head as insert_free: alloc_many's rollback puts each block back where
 * alloc took it from. */
TLSF_HOT int free_offset(tlsf_oa_t *a, uint64_t offset, int at_head, unsigned sli)
{
    ref_t *link;
    node_t *b = find_live(a, offset, &link);
    if (UNLIKELY(!b))
        return TLSF_EINVAL;
    *link = b->hash_next;
    a->allocations--;
    a->allocated -= b->size;
    release(a, b, at_head, sli);
    return TLSF_OK;
}

/* Another sl_len: tlsf_oa_free's uncommon case. */
TLSF_OUT_OF_LINE int free_any(tlsf_oa_t *a, uint64_t offset) { return free_offset(a, offset, 0, a->cls.sl_log2); }

int tlsf_oa_free(tlsf_oa_t *a, uint64_t offset)
{
    if (LIKELY(a->cls.sl_log2 == TLSF_SLI_DEFAULT))
        return free_offset(a, offset, 0, TLSF_SLI_DEFAULT);
    return free_any(a, offset);
}

int tlsf_oa_usable_size(const tlsf_oa_t *a, uint64_t offset, uint64_t *out)
{
    ref_t *link;
    node_t *b = find_live(a, offset, &link);
    if (!b)
        return TLSF_EINVAL;
    *out = b->size << a->gran_log2;
    return TLSF_OK;
}

int tlsf_oa_resize(tlsf_oa_t *a, uint64_t offset, uint64_t size, int *resized)
{
    ref_t *link;
    node_t *b = find_live(a, offset, &link);
    if (!b)
        return TLSF_EINVAL;
    uint64_t need = units_for(a, size);
    *resized = 0;
    if (need > a->capacity)
        return TLSF_OK;
    /* 1. Shrink (or keep): the tail goes back to the free lists. */
    if (need <= b->size) {
        if (need < b->size) {
            ref_t r = R(a, b);
            if (!reserve_nodes(a, 1)) /* may move the table */
                return TLSF_ENOMETA;
            node_t *tail = split_after(a, N(a, r), need);
            a->allocated -= tail->size;
            release(a, tail, 0, a->cls.sl_log2);
        }
        *resized = 1;
        return TLSF_OK;
    }
    /* 2. Grow into a free next block; its node keeps what is left. */
    node_t *n = N(a, b->next_phys);
    if (!(n->flags & N_USED) && n->size >= need - b->size) {
        uint64_t total = b->size + n->size;
        remove_free(a, n, a->cls.sl_log2);
        if (total > need) {
            n->offset = b->offset + need;
            n->size = total - need;
            insert_free(a, n, 0, a->cls.sl_log2);
        } else {
            b->next_phys = n->next_phys;
            N(a, n->next_phys)->prev_phys = R(a, b);
            drop_node(a, n);
            a->free_blocks--;
        }
        a->allocated += need - b->size;
        b->size = need;
        *resized = 1;
    }
    return TLSF_OK;
}

/* ---------------------------------------------------------- batch operations */

int tlsf_oa_alloc_many(tlsf_oa_t *a, const uint64_t *sizes, size_t n, uint64_t align, uint64_t *out,
                       size_t *failed)
{
    for (size_t k = 0; k < n; k++) {
        int rc = tlsf_oa_alloc(a, sizes[k], align, &out[k]);
        if (rc) {
            *failed = k;
            while (k--) /* newest first, each block to the head of its list, where
                         * alloc took it: the lists are as before the call */
                free_offset(a, out[k], 1, a->cls.sl_log2);
            return rc;
        }
    }
    return TLSF_OK;
}

int tlsf_oa_free_many(tlsf_oa_t *a, const uint64_t *offsets, size_t n, size_t *bad)
{
    /* Validate all before freeing any: each offset must be live and listed
     * once (its node is marked as it is seen, then unmarked). */
    size_t k;
    ref_t *link;
    node_t *b;
    for (k = 0; k < n && (b = find_live(a, offsets[k], &link)) && !(b->flags & N_MARK); k++)
        b->flags |= N_MARK;
    for (size_t j = 0; j < k; j++)
        find_live(a, offsets[j], &link)->flags &= ~N_MARK;
    if (k < n) {
        *bad = k;
        return TLSF_EINVAL;
    }
    for (k = 0; k < n; k++)
        tlsf_oa_free(a, offsets[k]);
    return TLSF_OK;
}

/* ------------------------------------------------------------------ ranges */

/* The free lists cover sizes up to the capacity: more first levels as ranges are added. */
static int grow_lists(tlsf_oa_t *a, uint64_t capacity)
{
    uint32_t fl_count = tlsf_log2(capacity) + 1;
    if (fl_count <= a->cls.fl_count)
        return 1;
    size_t old = (size_t)a->cls.fl_count << a->cls.sl_log2, now = (size_t)fl_count << a->cls.sl_log2;
    ref_t *lists = realloc(a->lists, 2 * now * sizeof *lists);
    if (!lists)
        return 0;
    memset(lists + 2 * old, 0, 2 * (now - old) * sizeof *lists);
    a->metadata_bytes += 2 * (now - old) * sizeof *lists;
    a->lists = lists;
    a->cls.fl_count = fl_count;
    return 1;
}

static inline void set_range_link(tlsf_oa_t *a, ref_t pred, ref_t s)
{
    if (pred)
        N(a, pred)->next_range = s;
    else
        a->first_range = s;
}

int tlsf_oa_add_range(tlsf_oa_t *a, uint64_t offset, uint64_t size)
{
    if (((offset | size) & a->gran_mask) || size > UINT64_MAX - offset)
        return TLSF_ERANGE;
    if (!size)
        return TLSF_OK;
    uint64_t start = offset >> a->gran_log2, end = start + (size >> a->gran_log2);
    /* the range ending at start (prev), and the first range after it (next);
     * refs, as reserve_nodes may move the table */
    ref_t pred = NIL, s = a->first_range;
    while (s && N(a, s)->offset < start) {
        pred = s;
        s = N(a, s)->next_range;
    }
    ref_t prev = s && N(a, s)->offset == start ? s : NIL, next = prev ? N(a, prev)->next_range : s;
    if (next && N(a, N(a, next)->range_first)->offset < end)
        return TLSF_ERANGE;
    if (next && N(a, N(a, next)->range_first)->offset != end)
        next = NIL;
    if (!reserve_nodes(a, 2) || !grow_lists(a, a->capacity + (end - start)))
        return TLSF_ENOMETA;

    node_t *b = new_node(a), *sentinel;
    ref_t first = prev ? N(a, prev)->range_first : R(a, b);
    b->offset = start;
    b->size = end - start;
    b->prev_phys = prev ? N(a, prev)->prev_phys : NIL;
    if (next) {           /* joins the next range: its sentinel closes the new one */
        sentinel = N(a, next);
        b->next_phys = sentinel->range_first;
        if (prev) {      /* and the previous one: its sentinel goes */
            set_range_link(a, pred, next);
            drop_node(a, N(a, prev));
        }
    } else if (prev) {    /* extends the previous range: its sentinel moves to the end */
        sentinel = N(a, prev);
        sentinel->offset = end;
        b->next_phys = prev;
    } else {              /* a range of its own */
        sentinel = new_node(a);
        sentinel->offset = end;
        sentinel->size = 0;
        sentinel->flags = N_USED | N_SENTINEL;
        sentinel->next_range = s;
        set_range_link(a, pred, R(a, sentinel));
        b->next_phys = R(a, sentinel);
    }
    sentinel->range_first = first;
    N(a, b->next_phys)->prev_phys = R(a, b);
    if (b->prev_phys)
        N(a, b->prev_phys)->next_phys = R(a, b);
    a->capacity += end - start;
    release(a, b, 0, a->cls.sl_log2);
    return TLSF_OK;
}

void tlsf_oa_reset(tlsf_oa_t *a)
{
    if (a->lists) /* NULL before the first range */
        memset(a->lists, 0, 2 * ((size_t)a->cls.fl_count << a->cls.sl_log2) * sizeof *a->lists);
    a->cls.fl_bitmap = 0;
    memset(a->cls.sl_bitmap, 0, sizeof a->cls.sl_bitmap);
    for (uint64_t k = 0, n = index_buckets(a); k < n; k++)
        *bucket(a, k) = NIL;
    a->allocated = a->allocations = a->free_blocks = 0;
    for (ref_t sr = a->first_range; sr; sr = N(a, sr)->next_range) {
        node_t *s = N(a, sr), *first = N(a, s->range_first);
        for (ref_t b = first->next_phys, next; b != sr; b = next) {
            next = N(a, b)->next_phys;
            drop_node(a, N(a, b));
        }
        first->size = s->offset - first->offset;
        first->next_phys = sr;
        s->prev_phys = s->range_first;
        insert_free(a, first, 0, a->cls.sl_log2);
        a->free_blocks++;
    }
}

/* -------------------------------------------------------------- inspection */

int tlsf_oa_stats(const tlsf_oa_t *a, tlsf_stats_t *out)
{
    unsigned g = a->gran_log2;
    out->allocated_bytes = a->allocated << g;
    out->free_bytes = (a->capacity - a->allocated) << g;
    out->allocations = a->allocations;
    out->free_blocks = a->free_blocks;
    /* as tlsf.c: the head of the highest list fits a request of its own size */
    uint64_t i = tlsf_find_highest(&a->cls);
    out->largest_free = i == TLSF_CLASS_NONE ? 0 : N(a, a->lists[2 * i])->size << g;
    return TLSF_OK;
}

int tlsf_oa_walk(const tlsf_oa_t *a, tlsf_walker fn, void *ctx)
{
    unsigned g = a->gran_log2;
    for (ref_t s = a->first_range; s; s = N(a, s)->next_range)
        for (ref_t r = N(a, s)->range_first; r != s; r = N(a, r)->next_phys) {
            const node_t *b = N(a, r);
            int rc = fn(b->offset << g, b->size << g, (int)(b->flags & N_USED), ctx);
            if (rc)
                return rc;
        }
    return TLSF_OK;
}

/* tlsf_oa_check: nothing outside this file can write the metadata, so a
 * failure here is a bug of the engine; the checks state its invariants. */
typedef struct {
    char *msg;
    size_t msglen;
    uint64_t used, used_units, free_n, marked;
} check_ctx;

static int fail(check_ctx *c, const char *fmt, ...) TLSF_PRINTF_LIKE(2, 3);

static int fail(check_ctx *c, const char *fmt, ...)
{
    if (c->msg && c->msglen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->msg, c->msglen, fmt, ap);
        va_end(ap);
    }
    return TLSF_ECORRUPT;
}

#define ULL(x) ((unsigned long long)(x))

/* 1. Ranges in address order, apart (touching ones coalesce), each a chain of
 * contiguous blocks closed by its sentinel; free blocks get N_MARK. */
static int check_ranges(tlsf_oa_t *a, check_ctx *c)
{
    uint64_t units = 0, budget = a->nodes_total, end = 0;
    for (ref_t sr = a->first_range; sr; sr = N(a, sr)->next_range) {
        const node_t *s = N(a, sr);
        if (!budget--)
            return fail(c, "the range chain has a cycle");
        if (s->flags != (N_USED | N_SENTINEL) || s->size || !s->range_first)
            return fail(c, "sentinel at unit %llu is malformed", ULL(s->offset));
        ref_t r = s->range_first;
        node_t *b = N(a, r);
        if (b->prev_phys || (sr != a->first_range && b->offset <= end))
            return fail(c, "range at unit %llu overlaps or touches the one before", ULL(b->offset));
        int prev_free = 0;
        uint64_t at = b->offset;
        for (; r != sr; r = b->next_phys) {
            b = N(a, r);
            if (!budget--)
                return fail(c, "a range has a cycle of blocks");
            if (b->offset != at || !b->size || b->size > s->offset - at || !b->next_phys ||
                N(a, b->next_phys)->prev_phys != r)
                return fail(c, "block at unit %llu is out of place in its range", ULL(b->offset));
            if (b->flags & N_USED) {
                if (b->flags != N_USED)
                    return fail(c, "used block at unit %llu has bad flags", ULL(at));
                /* index_find, but bounded (a corrupt chain may cycle; the first lookup
                 * that runs out fails, so the cost stays linear) and not past a node
                 * that is not used (its hash_next may be a list link) */
                ref_t n = *bucket(a, bucket_of(a, hash_of(at)));
                for (uint64_t k = a->nodes_total; n && N(a, n)->offset != at && N(a, n)->flags == N_USED && k; k--)
                    n = N(a, n)->hash_next;
                if (n != r)
                    return fail(c, "used block at unit %llu is not in the offset index", ULL(at));
                c->used++;
                c->used_units += b->size;
                prev_free = 0;
            } else {
                if (b->flags & N_FLAGS)
                    return fail(c, "free block at unit %llu has flags", ULL(at));
                if (prev_free)
                    return fail(c, "free block at unit %llu follows a free block (not coalesced)", ULL(at));
                b->flags |= N_MARK;
                c->marked++;
                c->free_n++;
                prev_free = 1;
            }
            at += b->size;
        }
        if (!s->prev_phys || N(a, s->prev_phys)->next_phys != sr)
            return fail(c, "sentinel at unit %llu is not linked to its last block", ULL(s->offset));
        if (at != s->offset)
            return fail(c, "the blocks end at unit %llu, not at their sentinel (unit %llu)", ULL(at),
                        ULL(s->offset));
        units += s->offset - N(a, s->range_first)->offset;
        end = s->offset;
    }
    if (units != a->capacity)
        return fail(c, "ranges hold %llu units but the capacity is %llu", ULL(units), ULL(a->capacity));
    return TLSF_OK;
}

/* 2. The first levels are those of the capacity (they size the lists array);
 * each list holds marked free blocks of its class, each once, linked both ways. */
static int check_lists(const tlsf_oa_t *a, check_ctx *c)
{
    uint64_t bad_fl, seen = 0, n = (uint64_t)a->cls.fl_count << a->cls.sl_log2;
    if (a->cls.fl_count != (a->capacity ? tlsf_log2(a->capacity) + 1 : 0))
        return fail(c, "%u first levels for a capacity of %llu units", a->cls.fl_count, ULL(a->capacity));
    if (!tlsf_check_bitmaps(&a->cls, &bad_fl))
        return fail(c, "bitmaps of first level %llu disagree with each other or name no list", ULL(bad_fl));
    for (uint64_t i = 0; i < n; i++) {
        ref_t prev = NIL;
        uint64_t fl = i >> a->cls.sl_log2, sl = i & ((1u << a->cls.sl_log2) - 1);
        if (!a->lists[2 * i] != !((a->cls.sl_bitmap[fl] >> sl) & 1))
            return fail(c, "list %llu disagrees with its bitmap bit", ULL(i));
        for (ref_t r = a->lists[2 * i]; r; prev = r, r = N(a, r)->next_free) {
            node_t *b = N(a, r);
            if ((b->flags & N_FLAGS) != N_MARK)
                return fail(c, "list %llu holds a node that is not a free block or is listed twice", ULL(i));
            b->flags &= ~N_MARK;
            c->marked--;
            seen++;
            if (b->prev_free != prev)
                return fail(c, "free block at unit %llu: back link does not match", ULL(b->offset));
            if (tlsf_map_floor(&a->cls, b->size) != i)
                return fail(c, "free block at unit %llu is filed in the wrong list", ULL(b->offset));
        }
        if (a->lists[2 * i + 1] != prev)
            return fail(c, "list %llu has a wrong tail", ULL(i));
    }
    if (seen != c->free_n)
        return fail(c, "%llu free blocks in the ranges but %llu in the lists", ULL(c->free_n), ULL(seen));
    return TLSF_OK;
}

/* 3. The offset index holds exactly the used blocks, each in its own bucket. */
static int check_index(const tlsf_oa_t *a, check_ctx *c)
{
    uint64_t entries = 0;
    for (uint64_t k = 0, n = index_buckets(a); k < n; k++)
        for (ref_t r = *bucket(a, k); r; r = N(a, r)->hash_next) {
            const node_t *b = N(a, r);
            if (++entries > c->used)
                return fail(c, "the offset index holds more entries than used blocks");
            if (b->flags != N_USED || bucket_of(a, hash_of(b->offset)) != k)
                return fail(c, "offset index bucket %llu holds a wrong node (unit %llu)", ULL(k), ULL(b->offset));
        }
    if (entries != c->used || a->allocations != c->used)
        return fail(c, "the offset index holds %llu entries (counted %llu) for %llu used blocks", ULL(entries),
                    ULL(a->allocations), ULL(c->used));
    return TLSF_OK;
}

/* Clears the marks left by a failed check: the walk of check_ranges, on the
 * same budget (never wrapped below 0) and no further than a node that is not
 * a sentinel (its range links would be list links or nothing). */
static void unmark_all(tlsf_oa_t *a)
{
    uint64_t budget = a->nodes_total;
    for (ref_t s = a->first_range; s && budget && N(a, s)->flags == (N_USED | N_SENTINEL);
         s = N(a, s)->next_range) {
        budget--;
        for (ref_t r = N(a, s)->range_first; r && r != s && budget; r = N(a, r)->next_phys, budget--)
            N(a, r)->flags &= ~N_MARK;
    }
}
int tlsf_oa_check(tlsf_oa_t *a, char *msg, size_t msglen)
{
    check_ctx c = {msg, msglen, 0, 0, 0, 0};
    if (msg && msglen)
        msg[0] = 0;
    if (N(a, NIL)->flags != N_USED) /* release relies on it for the first block of each range */
        return fail(&c, "node 0 (NIL) does not read as used");
    int rc = check_ranges(a, &c);
    if (!rc)
        rc = check_lists(a, &c);
    if (rc) {
        unmark_all(a);
        return rc;
    }
    if ((rc = check_index(a, &c)))
        return rc;
    /* 4. statistics (the free units, capacity - allocated, follow: the ranges
     * hold the capacity) */
    if (a->allocations != c.used || a->allocated != c.used_units || a->free_blocks != c.free_n)
        return fail(&c, "statistics disagree with the blocks: allocations %llu/%llu, "
                    "allocated units %llu/%llu, free_blocks %llu/%llu",
                    ULL(a->allocations), ULL(c.used), ULL(a->allocated), ULL(c.used_units),
                    ULL(a->free_blocks), ULL(c.free_n));
    return TLSF_OK;
}

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
#include "tlsf_classes.h"

#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ layout */

#define N_USED ((uint64_t)1)
#define N_SENTINEL ((uint64_t)2)
#define N_MARK ((uint64_t)4) /* scratch bit of tlsf_oa_check and tlsf_oa_free_many */

typedef struct node node_t;
struct node { /* 64 bytes: one cache line */
    uint64_t offset, size;           /* in units */
    node_t *prev_phys, *next_phys;   /* physical neighbours; prev_phys is NULL for a range's first block */
    union {
        node_t *next_free;           /* free block: list link; unused node: the next unused one */
        node_t *next_range;          /* sentinel: the next range's sentinel */
    };
    union {
        node_t *prev_free;           /* free block: list link */
        node_t *range_first;         /* sentinel: the first block of its range */
    };
    node_t *hash_next;               /* used block: the next node in its offset-index bucket */
    uint64_t flags;
};

typedef struct chunk { /* the header slot (node 0) of each node chunk */
    struct chunk *next;
    void *raw;
} chunk_t;

#define CHUNK_MIN 64u          /* nodes in the first chunk (4 KiB) */
#define CHUNK_MAX 16384u       /* nodes in the largest chunk (1 MiB): growth stays cheap */
#define INDEX_MIN_LOG2 6       /* the offset index starts with 64 buckets */
#define INDEX_MAX_LOG2 62      /* it stops growing at 2^62 buckets */
#define INDEX_SEGMENTS 64

struct tlsf_oa {
    tlsf_classes_t cls;
    unsigned gran_log2;
    uint64_t capacity;           /* units in all ranges */
    node_t **lists;              /* lists[2*i] = head, lists[2*i+1] = tail of class i */
    node_t *first_range;         /* sentinel of the lowest range */
    uint64_t allocated, allocations, free_units, free_blocks; /* statistics, in units */
    /* node table: chunks that never move; unused nodes are stacked */
    node_t *spare;
    uint64_t spare_count;
    node_t *bump, *bump_end;     /* never-used nodes of the newest chunk */
    chunk_t *chunks;
    uint64_t chunk_nodes;        /* size of the next chunk */
    uint64_t nodes_total;        /* nodes in all chunks */
    uint64_t metadata_bytes;     /* everything malloc'd: chunks, index segments, lists, this */
    /* offset index: linear hashing over used nodes; buckets never move either.
     * They lie in segments: the first holds buckets [0, 2^INDEX_MIN_LOG2),
     * each later one [2^m, 2^(m+1)) for an m >= INDEX_MIN_LOG2. Bucket b is
     * the word at bucket_base[log2(b | 1)] + b * sizeof(node_t *): entries
     * below INDEX_MIN_LOG2 hold the first segment's address, the one of m the
     * address of m's segment less 2^m words, set by the first split of the
     * round where mask = 2^m - 1. */
    uintptr_t bucket_base[INDEX_SEGMENTS];
    uint64_t mask;               /* 2^m - 1: this round splits buckets [0, 2^m) into [0, 2^(m+1)) */
    uint64_t split;              /* the next bucket to split; mask + 1 + split buckets */
    uint64_t indexed;            /* nodes in the index */
};

#define LIKELY TLSF_LIKELY
#define UNLIKELY TLSF_UNLIKELY

/* -------------------------------------------------------------- node table */

/* Whether n more nodes can be taken without allocating; else a new chunk.
 * Called before an operation changes anything, so that running out of memory
 * leaves the allocator as it was. */
static int grow_nodes(tlsf_oa_t *a)
{
    uint64_t n = a->chunk_nodes;
    void *raw = malloc((size_t)(n + 1) * sizeof(node_t));
    if (!raw)
        return 0;
    node_t *nodes = (node_t *)(((uintptr_t)raw + sizeof(node_t) - 1) & ~(uintptr_t)(sizeof(node_t) - 1));
    chunk_t *c = (chunk_t *)(void *)nodes;
    c->next = a->chunks;
    c->raw = raw;
    a->chunks = c;
    while (a->bump < a->bump_end) { /* the old chunk's last nodes join the spares */
        a->bump->next_free = a->spare;
        a->spare = a->bump++;
        a->spare_count++;
    }
    a->bump = nodes + 1;
    a->bump_end = nodes + n;
    a->nodes_total += n - 1;
    a->metadata_bytes += (n + 1) * sizeof(node_t);
    if (a->chunk_nodes < CHUNK_MAX)
        a->chunk_nodes *= 2;
    return 1;
}

static inline int reserve_nodes(tlsf_oa_t *a, uint64_t n)
{
    if (LIKELY(a->spare_count + (uint64_t)(a->bump_end - a->bump) >= n))
        return 1;
    return grow_nodes(a);
}

static inline node_t *new_node(tlsf_oa_t *a)
{
    node_t *n = a->spare;
    if (n) {
        a->spare = n->next_free;
        a->spare_count--;
        return n;
    }
    assert(a->bump < a->bump_end);
    return a->bump++;
}

static inline void drop_node(tlsf_oa_t *a, node_t *n)
{
    n->flags = 0;
    n->next_free = a->spare;
    a->spare = n;
    a->spare_count++;
}

/* ------------------------------------------------------------ offset index */

static inline uint64_t hash_of(uint64_t u)
{
    uint64_t h = u * 0x9E3779B97F4A7C15ull; /* Fibonacci hashing; fold the good high bits down */
    return h ^ (h >> 32);
}

TLSF_HOT node_t **bucket(const tlsf_oa_t *a, uint64_t b)
{
    return (node_t **)(a->bucket_base[tlsf_log2(b | 1)] + b * sizeof(node_t *));
}

static inline uint64_t bucket_of(const tlsf_oa_t *a, uint64_t h)
{
    uint64_t b = h & a->mask;
    return b < a->split ? h & (2 * a->mask + 1) : b;
}

/* The link that holds the used node at unit offset u, or the NULL link ending its bucket. */
TLSF_HOT node_t **index_find(const tlsf_oa_t *a, uint64_t u)
{
    node_t **link = bucket(a, bucket_of(a, hash_of(u)));
    while (*link && (*link)->offset != u)
        link = &(*link)->hash_next;
    return link;
}

/* One more bucket, split from bucket `split` (linear hashing: one bucket per
 * insertion at most, so the index grows without ever rehashing at once).
 * Without memory for a new segment it does not grow: chains get longer. */
TLSF_COLD void index_grow(tlsf_oa_t *a)
{
    uint64_t half = a->mask + 1;
    if (!a->split) { /* the round's first split: its segment */
        node_t **seg = malloc((size_t)half * sizeof(node_t *));
        if (!seg)
            return;
        a->bucket_base[tlsf_log2(half)] = (uintptr_t)seg - half * sizeof(node_t *);
        a->metadata_bytes += half * sizeof(node_t *);
    }
    node_t **from = bucket(a, a->split), **to = bucket(a, a->split + half);
    *to = NULL;
    while (*from) {
        node_t *n = *from;
        if (hash_of(n->offset) & half) {
            *from = n->hash_next;
            n->hash_next = *to;
            *to = n;
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
    node_t **link = bucket(a, bucket_of(a, hash_of(n->offset)));
    n->hash_next = *link;
    *link = n;
    if (++a->indexed > index_buckets(a) && a->mask < ((uint64_t)1 << INDEX_MAX_LOG2) - 1)
        index_grow(a);
}


/* -------------------------------------------------------------- free lists */

/* As in tlsf.c: a block at least as large as the list's head goes in front,
 * a smaller one at the tail, so the head is the largest seen. at_head: in
 * front anyway (an undone allocation goes back where alloc took it). */
TLSF_HOT void insert_free(tlsf_oa_t *a, node_t *b, int at_head, unsigned sli)
{
    uint64_t i = tlsf_map_floor_k(b->size, sli, 0);
    node_t **head = &a->lists[2 * i], **tail = &a->lists[2 * i + 1];
    node_t *h = *head;
    b->flags = 0;
    if (!h) {
        b->next_free = b->prev_free = NULL;
        *head = *tail = b;
        tlsf_mark_class_k(&a->cls, i, sli);
    } else if (at_head || b->size >= h->size) {
        b->next_free = h;
        b->prev_free = NULL;
        h->prev_free = b;
        *head = b;
    } else {
        b->next_free = NULL;
        b->prev_free = *tail;
        (*tail)->next_free = b;
        *tail = b;
    }
    a->free_blocks++;
    a->free_units += b->size;
}

TLSF_HOT void remove_free(tlsf_oa_t *a, node_t *b, unsigned sli)
{
    uint64_t i = tlsf_map_floor_k(b->size, sli, 0);
    if (b->prev_free)
        b->prev_free->next_free = b->next_free;
    else
        a->lists[2 * i] = b->next_free;
    if (b->next_free)
        b->next_free->prev_free = b->prev_free;
    else
        a->lists[2 * i + 1] = b->prev_free;
    if (!a->lists[2 * i])
        tlsf_unmark_class_k(&a->cls, i, sli);
    a->free_blocks--;
    a->free_units -= b->size;
}

/* --------------------------------------------------------- block placement */

/* Units of padding in front of unit offset `offset` for alignment `align` (units). */
static inline uint64_t align_gap(uint64_t offset, uint64_t align) { return (0 - offset) & (align - 1); }

/* A new node for the part of block b beyond its first `keep` units, linked after b. */
TLSF_HOT node_t *split_after(tlsf_oa_t *a, node_t *b, uint64_t keep)
{
    node_t *r = new_node(a);
    r->offset = b->offset + keep;
    r->size = b->size - keep;
    r->flags = 0;
    r->prev_phys = b;
    r->next_phys = b->next_phys;
    b->next_phys->prev_phys = r;
    b->next_phys = r;
    b->size = keep;
    return r;
}

/* Block b across the link from its previous neighbour p, which absorbs it. */
TLSF_HOT void absorb_next(tlsf_oa_t *a, node_t *p, node_t *b)
{
    p->size += b->size;
    p->next_phys = b->next_phys;
    b->next_phys->prev_phys = p;
    drop_node(a, b);
}

/* Free block b (unlinked) becomes a used block of `need` units after `gap`
 * units of padding; padding and tail go back to the free lists. Two spare
 * nodes are reserved. Returns the used node. */
TLSF_HOT node_t *carve(tlsf_oa_t *a, node_t *b, uint64_t gap, uint64_t need, unsigned sli)
{
    if (gap) {
        node_t *u = split_after(a, b, gap);
        insert_free(a, b, 0, sli);
        b = u;
    }
    assert(b->size >= need);
    if (b->size > need)
        insert_free(a, split_after(a, b, need), 0, sli);
    b->flags = N_USED;
    index_insert(a, b);
    a->allocations++;
    a->allocated += need;
    return b;
}

/* Block b, in no list and not indexed, becomes free, merged with its free
 * neighbours; at_head as insert_free. */
TLSF_HOT void release(tlsf_oa_t *a, node_t *b, int at_head, unsigned sli)
{
    node_t *n = b->next_phys, *p = b->prev_phys;
    if (!(n->flags & N_USED)) {
        remove_free(a, n, sli);
        absorb_next(a, b, n);
    }
    if (p && !(p->flags & N_USED)) {
        remove_free(a, p, sli);
        absorb_next(a, p, b);
        b = p;
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
    a->chunk_nodes = CHUNK_MIN;
    a->mask = ((uint64_t)1 << INDEX_MIN_LOG2) - 1;
    node_t **first = calloc((size_t)1 << INDEX_MIN_LOG2, sizeof(node_t *));
    if (!first) {
        free(a);
        return NULL;
    }
    for (unsigned m = 0; m < INDEX_MIN_LOG2; m++)
        a->bucket_base[m] = (uintptr_t)first;
    a->metadata_bytes = sizeof *a + sizeof(node_t *) * ((uint64_t)1 << INDEX_MIN_LOG2);
    return a;
}

void tlsf_oa_destroy(tlsf_oa_t *a)
{
    if (!a)
        return;
    for (chunk_t *c = a->chunks, *next; c; c = next) {
        next = c->next;
        free(c->raw);
    }
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

/* tlsf_oa_alloc; sli: the allocator's sl_log2 (TLSF_WITH_SLI). */
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
    node_t *b = tlsf_class_exists_k(&a->cls, i, sli) ? a->lists[2 * i] : NULL;
    if (b && (align_gap(b->offset, au) > b->size || need > b->size - align_gap(b->offset, au)))
        b = NULL;
    if (!b) {
        if ((i = tlsf_find_suitable_k(&a->cls, tlsf_map_ceil_k(search, sli, 0), sli)) == TLSF_CLASS_NONE)
            return TLSF_ENOMEM;
        b = a->lists[2 * i];
    }
    if (UNLIKELY(!reserve_nodes(a, 2)))
        return TLSF_ENOMETA;
    remove_free(a, b, sli);
    *out = carve(a, b, align_gap(b->offset, au), need, sli)->offset << a->gran_log2;
    return TLSF_OK;
}

int tlsf_oa_alloc(tlsf_oa_t *a, uint64_t size, uint64_t align, uint64_t *out)
{
    return TLSF_WITH_SLI(a->cls, alloc_offset, a, size, align, out);
}

/* The used node at byte offset `offset`, or NULL; *link gets the index link holding it. */
static inline node_t *find_live(const tlsf_oa_t *a, uint64_t offset, node_t ***link)
{
    if (offset & (((uint64_t)1 << a->gran_log2) - 1))
        return NULL;
    *link = index_find(a, offset >> a->gran_log2);
    return **link;
}

/* at_head as insert_free: alloc_many's rollback puts each block back where
 * alloc took it from. */
TLSF_HOT int free_offset(tlsf_oa_t *a, uint64_t offset, int at_head, unsigned sli)
{
    node_t **link, *b = find_live(a, offset, &link);
    if (UNLIKELY(!b))
        return TLSF_EINVAL;
    *link = b->hash_next;
    a->indexed--;
    a->allocations--;
    a->allocated -= b->size;
    release(a, b, at_head, sli);
    return TLSF_OK;
}

int tlsf_oa_free(tlsf_oa_t *a, uint64_t offset) { return TLSF_WITH_SLI(a->cls, free_offset, a, offset, 0); }

int tlsf_oa_usable_size(const tlsf_oa_t *a, uint64_t offset, uint64_t *out)
{
    node_t **link, *b = find_live(a, offset, &link);
    if (!b)
        return TLSF_EINVAL;
    *out = b->size << a->gran_log2;
    return TLSF_OK;
}

int tlsf_oa_resize(tlsf_oa_t *a, uint64_t offset, uint64_t size, int *resized)
{
    node_t **link, *b = find_live(a, offset, &link);
    if (!b)
        return TLSF_EINVAL;
    uint64_t need = units_for(a, size);
    *resized = 0;
    if (need > a->capacity)
        return TLSF_OK;
    /* 1. Shrink (or keep): the tail goes back to the free lists. */
    if (need <= b->size) {
        if (need < b->size) {
            if (!reserve_nodes(a, 1))
                return TLSF_ENOMETA;
            node_t *tail = split_after(a, b, need);
            a->allocated -= tail->size;
            release(a, tail, 0, a->cls.sl_log2);
        }
        *resized = 1;
        return TLSF_OK;
    }
    /* 2. Grow into a free next block; its node keeps what is left. */
    node_t *n = b->next_phys;
    if (!(n->flags & N_USED) && n->size >= need - b->size) {
        uint64_t total = b->size + n->size;
        remove_free(a, n, a->cls.sl_log2);
        if (total > need) {
            n->offset = b->offset + need;
            n->size = total - need;
            insert_free(a, n, 0, a->cls.sl_log2);
        } else {
            b->next_phys = n->next_phys;
            n->next_phys->prev_phys = b;
            drop_node(a, n);
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
    node_t **link, *b;
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
    node_t **lists = realloc(a->lists, 2 * now * sizeof *lists);
    if (!lists)
        return 0;
    memset(lists + 2 * old, 0, 2 * (now - old) * sizeof *lists);
    a->metadata_bytes += 2 * (now - old) * sizeof *lists;
    a->lists = lists;
    a->cls.fl_count = fl_count;
    return 1;
}

static inline void set_range_link(tlsf_oa_t *a, node_t *pred, node_t *s)
{
    if (pred)
        pred->next_range = s;
    else
        a->first_range = s;
}

int tlsf_oa_add_range(tlsf_oa_t *a, uint64_t offset, uint64_t size)
{
    uint64_t gmask = ((uint64_t)1 << a->gran_log2) - 1;
    if (((offset | size) & gmask) || size > UINT64_MAX - offset)
        return TLSF_ERANGE;
    if (!size)
        return TLSF_OK;
    uint64_t start = offset >> a->gran_log2, end = start + (size >> a->gran_log2);
    /* the range ending at start (prev), and the first range after it (next) */
    node_t *pred = NULL, *s = a->first_range;
    while (s && s->offset < start) {
        pred = s;
        s = s->next_range;
    }
    node_t *prev = s && s->offset == start ? s : NULL, *next = prev ? prev->next_range : s;
    if (next && next->range_first->offset < end)
        return TLSF_ERANGE;
    if (next && next->range_first->offset != end)
        next = NULL;
    if (!reserve_nodes(a, 2) || !grow_lists(a, a->capacity + (end - start)))
        return TLSF_ENOMETA;

    node_t *b = new_node(a), *sentinel, *first = prev ? prev->range_first : b;
    b->offset = start;
    b->size = end - start;
    b->prev_phys = prev ? prev->prev_phys : NULL;
    if (next) {           /* joins the next range: its sentinel closes the new one */
        sentinel = next;
        b->next_phys = next->range_first;
        if (prev) {      /* and the previous one: its sentinel goes */
            set_range_link(a, pred, next);
            drop_node(a, prev);
        }
    } else if (prev) {    /* extends the previous range: its sentinel moves to the end */
        sentinel = prev;
        sentinel->offset = end;
        b->next_phys = sentinel;
    } else {              /* a range of its own */
        sentinel = new_node(a);
        sentinel->offset = end;
        sentinel->size = 0;
        sentinel->flags = N_USED | N_SENTINEL;
        sentinel->next_phys = NULL;
        sentinel->next_range = s;
        set_range_link(a, pred, sentinel);
        b->next_phys = sentinel;
    }
    sentinel->range_first = first;
    b->next_phys->prev_phys = b;
    if (b->prev_phys)
        b->prev_phys->next_phys = b;
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
        *bucket(a, k) = NULL;
    a->indexed = a->allocated = a->allocations = a->free_units = a->free_blocks = 0;
    for (node_t *s = a->first_range; s; s = s->next_range) {
        node_t *first = s->range_first;
        for (node_t *b = first->next_phys, *next; b != s; b = next) {
            next = b->next_phys;
            drop_node(a, b);
        }
        first->size = s->offset - first->offset;
        first->next_phys = s;
        s->prev_phys = first;
        insert_free(a, first, 0, a->cls.sl_log2);
    }
}

/* -------------------------------------------------------------- inspection */

int tlsf_oa_stats(const tlsf_oa_t *a, tlsf_stats_t *out)
{
    unsigned g = a->gran_log2;
    out->allocated_bytes = a->allocated << g;
    out->free_bytes = a->free_units << g;
    out->allocations = a->allocations;
    out->free_blocks = a->free_blocks;
    /* as tlsf.c: the head of the highest list fits a request of its own size */
    uint64_t i = tlsf_find_highest(&a->cls);
    out->largest_free = i == TLSF_CLASS_NONE ? 0 : a->lists[2 * i]->size << g;
    return TLSF_OK;
}

int tlsf_oa_walk(const tlsf_oa_t *a, tlsf_walker fn, void *ctx)
{
    unsigned g = a->gran_log2;
    for (const node_t *s = a->first_range; s; s = s->next_range)
        for (const node_t *b = s->range_first; b != s; b = b->next_phys) {
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
    uint64_t used, used_units, free_n, free_units, marked;
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
    for (const node_t *s = a->first_range; s; s = s->next_range) {
        if (!budget--)
            return fail(c, "the range chain has a cycle");
        if (s->flags != (N_USED | N_SENTINEL) || s->size || s->next_phys || !s->range_first)
            return fail(c, "sentinel at unit %llu is malformed", ULL(s->offset));
        node_t *b = s->range_first;
        if (b->prev_phys || (s != a->first_range && b->offset <= end))
            return fail(c, "range at unit %llu overlaps or touches the one before", ULL(b->offset));
        int prev_free = 0;
        uint64_t at = b->offset;
        for (; b != s; b = b->next_phys) {
            if (!budget--)
                return fail(c, "a range has a cycle of blocks");
            if (b->offset != at || !b->size || b->size > s->offset - at || !b->next_phys ||
                b->next_phys->prev_phys != b)
                return fail(c, "block at unit %llu is out of place in its range", ULL(b->offset));
            if (b->flags & N_USED) {
                if (b->flags != N_USED)
                    return fail(c, "used block at unit %llu has bad flags", ULL(at));
                /* index_find, but bounded (a corrupt chain may cycle; the first lookup
                 * that runs out fails, so the cost stays linear) and not past a node
                 * that is not used (its hash_next may never have been set) */
                const node_t *n = *bucket(a, bucket_of(a, hash_of(at)));
                for (uint64_t k = a->nodes_total; n && n->offset != at && n->flags == N_USED && k; k--)
                    n = n->hash_next;
                if (n != b)
                    return fail(c, "used block at unit %llu is not in the offset index", ULL(at));
                c->used++;
                c->used_units += b->size;
                prev_free = 0;
            } else {
                if (b->flags)
                    return fail(c, "free block at unit %llu has flags", ULL(at));
                if (prev_free)
                    return fail(c, "free block at unit %llu follows a free block (not coalesced)", ULL(at));
                b->flags = N_MARK;
                c->marked++;
                c->free_n++;
                c->free_units += b->size;
                prev_free = 1;
            }
            at += b->size;
        }
        if (s->prev_phys == NULL || s->prev_phys->next_phys != s)
            return fail(c, "sentinel at unit %llu is not linked to its last block", ULL(s->offset));
        if (at != s->offset)
            return fail(c, "the blocks end at unit %llu, not at their sentinel (unit %llu)", ULL(at),
                        ULL(s->offset));
        units += s->offset - s->range_first->offset;
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
        node_t *prev = NULL;
        uint64_t fl = i >> a->cls.sl_log2, sl = i & ((1u << a->cls.sl_log2) - 1);
        if (!a->lists[2 * i] != !((a->cls.sl_bitmap[fl] >> sl) & 1))
            return fail(c, "list %llu disagrees with its bitmap bit", ULL(i));
        for (node_t *b = a->lists[2 * i]; b; prev = b, b = b->next_free) {
            if (b->flags != N_MARK)
                return fail(c, "list %llu holds a node that is not a free block or is listed twice", ULL(i));
            b->flags = 0;
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
        for (const node_t *b = *bucket(a, k); b; b = b->hash_next) {
            if (++entries > c->used)
                return fail(c, "the offset index holds more entries than used blocks");
            if (b->flags != N_USED || bucket_of(a, hash_of(b->offset)) != k)
                return fail(c, "offset index bucket %llu holds a wrong node (unit %llu)", ULL(k), ULL(b->offset));
        }
    if (entries != c->used || a->indexed != c->used)
        return fail(c, "the offset index holds %llu entries (counted %llu) for %llu used blocks", ULL(entries),
                    ULL(a->indexed), ULL(c->used));
    return TLSF_OK;
}

/* Clears the marks left by a failed check: the walk of check_ranges, on the
 * same budget (never wrapped below 0) and no further than a node that is not
 * a sentinel (its union holds list links, or nothing). */
static void unmark_all(tlsf_oa_t *a)
{
    uint64_t budget = a->nodes_total;
    for (const node_t *s = a->first_range; s && budget && s->flags == (N_USED | N_SENTINEL); s = s->next_range) {
        budget--;
        for (node_t *b = s->range_first; b && b != s && budget; b = b->next_phys, budget--)
            b->flags &= ~N_MARK;
    }
}

int tlsf_oa_check(tlsf_oa_t *a, char *msg, size_t msglen)
{
    check_ctx c = {msg, msglen, 0, 0, 0, 0, 0};
    if (msg && msglen)
        msg[0] = 0;
    int rc = check_ranges(a, &c);
    if (!rc)
        rc = check_lists(a, &c);
    if (rc) {
        unmark_all(a);
        return rc;
    }
    if ((rc = check_index(a, &c)))
        return rc;
    /* 4. statistics */
    if (a->allocations != c.used || a->allocated != c.used_units || a->free_blocks != c.free_n ||
        a->free_units != c.free_units)
        return fail(&c, "statistics disagree with the blocks: allocations %llu/%llu, "
                    "allocated units %llu/%llu, free_blocks %llu/%llu, free units %llu/%llu",
                    ULL(a->allocations), ULL(c.used), ULL(a->allocated), ULL(c.used_units),
                    ULL(a->free_blocks), ULL(c.free_n), ULL(a->free_units), ULL(c.free_units));
    return TLSF_OK;
}

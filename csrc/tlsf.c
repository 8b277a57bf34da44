/*
 * tlsf.c: Two-Level Segregated Fit allocator core (Masmano et al., ECRTS 2004),
 * shaped after rlsf. Plain C11, no Python. The pure-Python twin
 * src/tlsf/pure/tlsf.py mirrors this file function for function, with the same
 * names, and must return identical offsets.
 *
 * Sections: layout, arena access, size classes, free lists, validation,
 * block placement, public operations, pools, inspection.
 *
 * Block layout (all offsets from the arena base, all multiples of 16):
 *
 *   used block   [size|flags|align][prev_phys] payload ...
 *   free block   [size          ][prev_phys][next_free][prev_free] ...
 *   sentinel     [32|flags      ][prev_phys][pool_start][next_pool]
 *
 * Flags: USED, SENTINEL, and PREV_FREE (the previous block is free), so that
 * freeing a block next to a used one does not touch that block's header. A
 * free block has no flags: its previous block is never free.
 *
 * Every pool ends with a sentinel, a permanently used 32-byte block that stops
 * coalescing and links the pools in address order (next_pool). prev_phys is
 * always valid (TLSF_NIL for the first block of a pool). No two physically
 * adjacent blocks are free. Whether an offset is a live allocation is decided
 * by the live bitmap in the control structure (one bit per 16-byte granule,
 * out of the user's reach), never by the arena alone.
 *
 * Crash consistency. A heap in a file or in shared memory must survive its
 * process dying at any instruction. Everything but the chain of size words
 * (with the USED and SENTINEL flags and a used block's alignment) is derived
 * and rebuilt by tlsf_recover: prev_phys, PREV_FREE, free-list links, lists,
 * bitmaps, statistics, the live bitmap, the pool chain. So every operation
 * writes the headers it creates inside the block it changes first, where no
 * walk of the chain can see them, and then changes the chain with one store
 * to one size word: its commit point (marked COMMIT). Interrupted before it,
 * the operation did not happen; after it, it did. COMMIT is a compiler
 * barrier, so the stores before it are made before it (a killed process loses
 * no store it made: the page cache holds them). A moving realloc has two
 * commit points (the new block, then the old one freed); in crash-safe mode
 * it notes both blocks in the control structure so that recovery can undo
 * it, and it never moves into the previous block (that copy overwrites the
 * old block's header before the chain can switch).
 */
#include "tlsf.h"
#include "tlsf_classes.h"

#include <assert.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ layout */

#define GRAN TLSF_GRANULARITY
#define GRAN_LOG2 4
#define HDR TLSF_HEADER_SIZE
#define MIN_BLOCK TLSF_MIN_BLOCK
#define SENTINEL_SIZE TLSF_SENTINEL_SIZE
#define NIL TLSF_NIL

#define F_USED ((uint64_t)1)
#define F_SENTINEL ((uint64_t)2)
#define F_PREV_FREE ((uint64_t)4)
#define ALIGN_SHIFT 58 /* a used block's size word keeps log2(alignment) in bits 58..63 */
#define SIZE_MASK ((((uint64_t)1 << ALIGN_SHIFT) - 1) & ~(uint64_t)(GRAN - 1))
#define MAGIC 0x544c5346434f5245ull /* "TLSFCORE" */

/* Word indices inside a block. */
enum { W_SIZE = 0, W_PREV = 1, W_NEXT_FREE = 2, W_PREV_FREE = 3 };
enum { W_POOL_START = 2, W_NEXT_POOL = 3 }; /* in a sentinel */

struct tlsf {
    uint64_t magic;
    uint64_t capacity;
    uint64_t limit;       /* highest offset a 32-byte block may start at */
    uint64_t live_words;  /* 64-bit words in the live bitmap */
    uint64_t live_index;  /* where the live bitmap starts in lists[] */
    uint64_t first_pool;  /* sentinel of the lowest pool, or NIL */
    uint64_t bad_offset;  /* where the last corruption was seen */
    /* crash-safe mode (tlsf_set_crash_safe): a moving realloc notes its two
     * blocks here, so that recovery can undo it (see tlsf_realloc) */
    uint64_t crash_safe, pending_old, pending_new;
    /* statistics, kept by every operation: the used blocks' bytes (headers
     * included) and the bytes of every pool's blocks but its sentinel (which
     * changes with the pools only), from which tlsf_stats derives the
     * allocated and free bytes; the counts of used and free blocks */
    uint64_t used_bytes, pool_bytes, allocations, free_blocks;
    tlsf_classes_t cls;   /* size classes and bitmaps (tlsf_classes.h) */
    /* lists[2*i] = head, lists[2*i+1] = tail of list i = fl*sl_len+sl; then the live bitmap */
    uint64_t lists[];
};

#define LIKELY TLSF_LIKELY
#define UNLIKELY TLSF_UNLIKELY

/* Fault injection (tests only, -DTLSF_FAULT_INJECTION): tlsf_fault_hook runs
 * after the tlsf_fault_after-th store to the arena (counting down), as if the
 * process died there; compiled out of every other build. */
#if defined(TLSF_FAULT_INJECTION)
uint64_t tlsf_fault_after;
void (*tlsf_fault_hook)(void);
#define FAULT_POINT()                                            \
    do {                                                         \
        if (tlsf_fault_after && !--tlsf_fault_after)             \
            tlsf_fault_hook();                                   \
    } while (0)
#else
#define FAULT_POINT() ((void)0)
#endif

/* The stores before it are made before the stores after it. */
#define COMMIT() atomic_signal_fence(memory_order_seq_cst)
#define log2_floor tlsf_log2

static inline uint64_t round_up(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }
static inline uint64_t round_down(uint64_t x, uint64_t a) { return x & ~(a - 1); }

/* ------------------------------------------------------------ arena access */

/* In-pool poisoning (build with -fsanitize=address -DTLSF_POISON): AddressSanitizer
 * cannot see inside one buffer, so the core marks free blocks, headers and
 * sentinels poisoned and only live payloads addressable. The core's own
 * accesses go through rd/wr, which look past the poison. */
#if defined(TLSF_POISON)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
/* Copies 8 bytes to or from the arena word at `word`, poisoned or not. */
static inline void copy8(void *dst, const void *src, const void *word)
{
    int poisoned = __asan_address_is_poisoned(word);
    UNPOISON(word, 8);
    memcpy(dst, src, 8);
    if (poisoned)
        POISON(word, 8);
}
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#define copy8(dst, src, word) memcpy((dst), (src), 8)
#endif

/* memcpy: the arena may sit at any address, so no aligned-load assumption. */
static inline uint64_t rd(const uint8_t *base, uint64_t off, int w)
{
    uint64_t v;
    const uint8_t *word = base + off + 8u * (unsigned)w;
    copy8(&v, word, word);
    return v;
}

static inline void wr(uint8_t *base, uint64_t off, int w, uint64_t v)
{
    uint8_t *word = base + off + 8u * (unsigned)w;
    copy8(word, &v, word);
    FAULT_POINT();
}

static inline uint64_t *head_of(tlsf_t *t, uint64_t i) { return &t->lists[2 * i]; }
/* Whether list i exists (lists[] holds two words per list, then the live bitmap). */
static inline int list_exists(const tlsf_t *t, uint64_t i) { return 2 * i < t->live_index; }
static inline uint64_t *tail_of(tlsf_t *t, uint64_t i) { return &t->lists[2 * i + 1]; }
static inline uint64_t *live_bitmap(const tlsf_t *t)
{
    return (uint64_t *)&t->lists[t->live_index];
}

/* The live bitmap's word holding payload's bit (*bit), or NULL when payload
 * cannot be an allocation's: a payload follows a header at or below limit
 * (payload - HDR wraps below HDR, so one unsigned compare bounds it on both
 * sides). That keeps the word inside the bitmap: payload <= capacity - 16
 * when capacity >= MIN_BLOCK; below it limit is 0, payload 16 passes, and its
 * bit, clear (no allocation fits), is in the one word every bitmap has.
 * free finds the word once, to test the bit and to clear it. */
static inline uint64_t *live_slot(const tlsf_t *t, uint64_t payload, uint64_t *bit)
{
    if (payload - HDR > t->limit || (payload & (GRAN - 1)))
        return NULL;
    uint64_t g = payload / GRAN;
    *bit = (uint64_t)1 << (g & 63);
    return &live_bitmap(t)[g >> 6];
}

static inline int is_live(const tlsf_t *t, uint64_t payload)
{
    uint64_t bit, *word = live_slot(t, payload, &bit);
    return word && (*word & bit);
}

static inline void set_live(tlsf_t *t, uint64_t payload, int on)
{
    uint64_t g = payload / GRAN;
    if (on)
        live_bitmap(t)[g >> 6] |= (uint64_t)1 << (g & 63);
    else
        live_bitmap(t)[g >> 6] &= ~((uint64_t)1 << (g & 63));
}

/* ------------------------------------------------------------ size classes */

/* Block size holding `size` payload bytes; size <= capacity, so no overflow. */
static inline uint64_t block_size_for(uint64_t size)
{
    uint64_t b = round_up(size + HDR, GRAN);
    return b < MIN_BLOCK ? MIN_BLOCK : b;
}

/* The list of a block or request of `size` >= MIN_BLOCK: with sl_len up to
 * MIN_BLOCK (the default among them), size >= sl_len, so the cheaper form. */
TLSF_HOT uint64_t list_of(uint64_t size, unsigned sli)
{
    return (1u << sli) <= MIN_BLOCK ? tlsf_map_floor_large_k(size, sli, GRAN_LOG2)
                                    : tlsf_map_floor_k(size, sli, GRAN_LOG2);
}

/* ------------------------------------------------------------- free lists */

/* Each list keeps its largest-seen block at the head: a block at least as
 * large as the head goes in front (LIFO), a smaller one at the tail. The O(1)
 * fallback in alloc looks at the head only, so a small remainder must not
 * hide the holes a same-size workload left behind. at_head: in front anyway
 * (an undone allocation goes back where alloc took it). */
TLSF_HOT void insert_free(tlsf_t *t, uint8_t *base, uint64_t b, uint64_t size, int at_head, unsigned sli)
{
    uint64_t i = list_of(size, sli);
    uint64_t *head = head_of(t, i), *tail = tail_of(t, i);
    uint64_t h = *head;
    if (h == NIL) {
        wr(base, b, W_NEXT_FREE, NIL);
        wr(base, b, W_PREV_FREE, NIL);
        *head = b;
        /* no vector store of the pair: gcc would set it up at the entry of
         * every free (2 instructions each, most for nothing) */
        atomic_signal_fence(memory_order_relaxed);
        *tail = b;
        tlsf_mark_class_k(&t->cls, i, sli);
    } else if (at_head || size >= rd(base, h, W_SIZE)) {
        wr(base, b, W_NEXT_FREE, h);
        wr(base, b, W_PREV_FREE, NIL);
        wr(base, h, W_PREV_FREE, b);
        *head = b;
    } else {
        uint64_t tl = *tail;
        wr(base, b, W_NEXT_FREE, NIL);
        wr(base, b, W_PREV_FREE, tl);
        wr(base, tl, W_NEXT_FREE, b);
        *tail = b;
    }
    t->free_blocks++;
    POISON(base + b, size);
}

/* Unlink free block b from its list i. */
TLSF_HOT void remove_free(tlsf_t *t, uint8_t *base, uint64_t b, uint64_t i, unsigned sli)
{
    uint64_t n = rd(base, b, W_NEXT_FREE), p = rd(base, b, W_PREV_FREE);
    if (p == NIL)
        *head_of(t, i) = n;
    else
        wr(base, p, W_NEXT_FREE, n);
    if (n == NIL)
        *tail_of(t, i) = p;
    else
        wr(base, n, W_PREV_FREE, p);
    if (*head_of(t, i) == NIL)
        tlsf_unmark_class_k(&t->cls, i, sli);
    t->free_blocks--;
}

/* remove_free for b, the head of list i (checked: its PREV_FREE is NIL),
 * which alloc takes. */
TLSF_HOT void remove_head(tlsf_t *t, uint8_t *base, uint64_t b, uint64_t i, unsigned sli)
{
    uint64_t n = rd(base, b, W_NEXT_FREE);
    *head_of(t, i) = n;
    if (n == NIL) {
        *tail_of(t, i) = NIL;
        tlsf_unmark_class_k(&t->cls, i, sli);
    } else {
        wr(base, n, W_PREV_FREE, NIL);
    }
    t->free_blocks--;
}

/* -------------------------------------------------------------- validation */
/* The arena is untrusted: anything read from it is checked before it is
 * followed, and every check happens before the first write of an operation,
 * so a corrupt heap is reported and left as it was. */

static inline int valid_block_offset(const tlsf_t *t, uint64_t b)
{
    return !(b & (GRAN - 1)) && b <= t->limit;
}

TLSF_COLD int corrupt(const tlsf_t *t, uint64_t where)
{
    ((tlsf_t *)t)->bad_offset = where; /* diagnostic only */
    return TLSF_ECORRUPT;
}

/* Free block b's list links agree with its neighbours in list i, and the
 * list's head and tail ("safe unlinking": remove_free may then follow them). */
static inline int check_links(const tlsf_t *t, const uint8_t *base, uint64_t b, uint64_t i)
{
    uint64_t n = rd(base, b, W_NEXT_FREE), p = rd(base, b, W_PREV_FREE);
    const uint64_t *lists = t->lists;
    if (p == NIL ? lists[2 * i] != b
                 : lists[2 * i] == b || !valid_block_offset(t, p) || rd(base, p, W_NEXT_FREE) != b)
        return corrupt(t, b);
    if (n == NIL ? lists[2 * i + 1] != b : !valid_block_offset(t, n) || rd(base, n, W_PREV_FREE) != b)
        return corrupt(t, b);
    return TLSF_OK;
}

/* s <= limit - b < TLSF_MAX_CAPACITY also clears the alignment bits, so only
 * the flags (none on a free block) and the granularity are tested. */
static inline int valid_free_size(const tlsf_t *t, uint64_t b, uint64_t s)
{
    return !(s & (GRAN - 1)) && s >= MIN_BLOCK && s <= t->limit - b;
}

/* The block at b (a valid block offset) is a free block of size *size,
 * correctly linked into its list *index. */
TLSF_HOT int check_free_at(const tlsf_t *t, const uint8_t *base, uint64_t b, uint64_t *size, uint64_t *index,
                           unsigned sli)
{
    uint64_t s = rd(base, b, W_SIZE);
    if (!valid_free_size(t, b, s))
        return corrupt(t, b);
    *size = s;
    *index = list_of(s, sli);
    return check_links(t, base, b, *index);
}

/* q, read from block end's prev_phys, is a free block (check_free_at's
 * *size, *index) that ends at end. A q that is no block before end (NIL or
 * out of range) blames end; any other fault, q. (NIL is no valid offset; a
 * block of size s >= MIN_BLOCK ending at end starts before it.) */
TLSF_HOT int check_free_before(const tlsf_t *t, const uint8_t *base, uint64_t q, uint64_t end, uint64_t *size,
                               uint64_t *index, unsigned sli)
{
    uint64_t s;
    if (!valid_block_offset(t, q) || !valid_free_size(t, q, s = rd(base, q, W_SIZE)) || q + s != end)
        return corrupt(t, valid_block_offset(t, q) && q < end ? q : end);
    *size = s;
    *index = list_of(s, sli);
    return check_links(t, base, q, *index);
}

/* b, just read from the head of list i, is a free block of size *size,
 * correctly linked: check_links knowing that the head is b. */
static inline int check_head(const tlsf_t *t, const uint8_t *base, uint64_t b, uint64_t i, uint64_t *size)
{
    uint64_t s = rd(base, b, W_SIZE), n = rd(base, b, W_NEXT_FREE);
    if (!valid_free_size(t, b, s) || rd(base, b, W_PREV_FREE) != NIL ||
        (n == NIL ? t->lists[2 * i + 1] != b : !valid_block_offset(t, n) || rd(base, n, W_PREV_FREE) != b))
        return corrupt(t, b);
    *size = s;
    return TLSF_OK;
}

/* The block behind live payload p: used, not a sentinel, inside the arena,
 * and named as previous block by the block after it (so that a scribbled
 * size cannot swallow a neighbour). b <= limit: every caller found b + HDR
 * live (is_live). */
TLSF_HOT int check_used_block(const tlsf_t *t, const uint8_t *base, uint64_t b, uint64_t *word)
{
    uint64_t w = rd(base, b, W_SIZE), s = w & SIZE_MASK;
    if ((w & (GRAN - 1) & ~F_PREV_FREE) != F_USED || s < MIN_BLOCK || s > t->limit - b ||
        rd(base, b + s, W_PREV) != b)
        return corrupt(t, b);
    *word = w;
    return TLSF_OK;
}

/* The physical neighbours of block [b, b+size): whether each is free, and its size. */
typedef struct {
    uint64_t prev, prev_size, prev_index, next, next_size, next_index;
    int prev_free, next_free;
} neighbours_t;

/* The block after used block b (size word w): free (and sound) or not as
 * `next_free` says. A neighbour's size and index are set only when it is
 * free, and read only then. */
TLSF_HOT int check_next(const tlsf_t *t, const uint8_t *base, uint64_t b, uint64_t w, int next_free,
                        neighbours_t *nb, unsigned sli)
{
    nb->next_size = nb->next_index = nb->prev_size = nb->prev_index = 0;
    nb->next = b + (w & SIZE_MASK);
    nb->next_free = next_free;
    /* nb->next is a valid block offset: b's size was checked */
    return next_free ? check_free_at(t, base, nb->next, &nb->next_size, &nb->next_index, sli) : TLSF_OK;
}

/* The block before used block b (size word w), read only when w says it is free. */
TLSF_HOT int check_prev(const tlsf_t *t, const uint8_t *base, uint64_t b, uint64_t w, neighbours_t *nb,
                        unsigned sli)
{
    nb->prev = rd(base, b, W_PREV);
    nb->prev_free = (w & F_PREV_FREE) != 0;
    return nb->prev_free ? check_free_before(t, base, nb->prev, b, &nb->prev_size, &nb->prev_index, sli) : TLSF_OK;
}

/* Both physical neighbours of used block b, the next one as its header says. */
TLSF_HOT int check_neighbours(const tlsf_t *t, const uint8_t *base, uint64_t b, uint64_t w,
                              neighbours_t *nb, unsigned sli)
{
    int rc;
    if ((rc = check_next(t, base, b, w, !(rd(base, b + (w & SIZE_MASK), W_SIZE) & F_USED), nb, sli)))
        return rc;
    return check_prev(t, base, b, w, nb, sli);
}

/* --------------------------------------------------------- block placement */

/* Block `next` now follows block `prev`, free or not. */
static inline void link_next(uint8_t *base, uint64_t next, uint64_t prev, int prev_free)
{
    uint64_t w = rd(base, next, W_SIZE);
    wr(base, next, W_SIZE, prev_free ? w | F_PREV_FREE : w & ~F_PREV_FREE);
    wr(base, next, W_PREV, prev);
}

/* Padding in front of the payload for alignment `align` in a block at b:
 * 0, or at least MIN_BLOCK so that it can be a free block of its own. */
static inline uint64_t align_gap(uint64_t b, uint64_t align)
{
    if (align <= GRAN)
        return 0;
    uint64_t gap = round_up(b + HDR, align) - HDR - b;
    return (gap && gap < MIN_BLOCK) ? gap + align : gap;
}

/* Turn free region [b, b+size) (unlinked; prev_phys of b valid) into a used
 * block of `need` bytes after `gap` bytes of padding. Padding and tail go
 * back to the free lists. Returns the payload offset. note: NULL, or where
 * the payload offset is written just before the commit (crash-safe realloc).
 *
 * The new headers (remainder, used block) are written first, back to front,
 * inside the region whose header still says "free, size bytes"; the commit
 * is the store to b's size word (the padding's, or the used block's). */
TLSF_HOT uint64_t carve(tlsf_t *t, uint8_t *base, uint64_t b, uint64_t size, uint64_t gap,
                        uint64_t need, uint64_t align_log2, uint64_t *note, unsigned sli)
{
    uint64_t end = b + size, u = b + gap, usize = size - gap, rest = NIL;
    assert(usize >= need);
    if (usize - need >= MIN_BLOCK) {
        rest = u + need;
        wr(base, rest, W_SIZE, usize - need);
        wr(base, rest, W_PREV, u);
        link_next(base, end, rest, 1);
        usize = need;
    } else {
        link_next(base, end, u, 0);
    }
    uint64_t word = usize | F_USED | (align_log2 << ALIGN_SHIFT) | (gap ? F_PREV_FREE : 0);
    if (note)
        *note = u + HDR;
    if (gap) {
        wr(base, u, W_PREV, b);
        wr(base, u, W_SIZE, word);
        COMMIT();
        wr(base, b, W_SIZE, gap);
        insert_free(t, base, b, gap, 0, sli);
    } else {
        COMMIT();
        wr(base, u, W_SIZE, word);
    }
    if (rest != NIL)
        insert_free(t, base, rest, size - gap - need, 0, sli);
    POISON(base + u, HDR);
    UNPOISON(base + u + HDR, usize - HDR);
    set_live(t, u + HDR, 1);
    t->allocations++;
    t->used_bytes += usize;
    return u + HDR;
}

/* Region [b, b+size) (prev_phys valid), with no free neighbour left, becomes
 * a free block: the commit, then its list; at_head as insert_free. */
TLSF_HOT uint64_t file_free(tlsf_t *t, uint8_t *base, uint64_t b, uint64_t size, int at_head, unsigned sli)
{
    COMMIT();
    wr(base, b, W_SIZE, size); /* commit: one free block over [b, b+size) */
    link_next(base, b + size, b, 1);
    insert_free(t, base, b, size, at_head, sli);
    return b;
}

/* Free region [b, b+size), already unlinked from any neighbour, becomes a
 * free block, merged with the free neighbours described by nb; at_head as
 * insert_free. */
TLSF_HOT uint64_t release(tlsf_t *t, uint8_t *base, uint64_t b, uint64_t size, const neighbours_t *nb,
                          int at_head, unsigned sli)
{
    if (nb->next_free) {
        remove_free(t, base, nb->next, nb->next_index, sli);
        size += nb->next_size;
    }
    if (nb->prev_free) {
        remove_free(t, base, nb->prev, nb->prev_index, sli);
        b = nb->prev;
        size += nb->prev_size;
    }
    return file_free(t, base, b, size, at_head, sli);
}

/* ------------------------------------------------------ public operations */

/* First-level classes a heap of this capacity can use (sizes up to capacity). */
static unsigned fl_count_for(uint64_t capacity)
{
    return capacity >= 2 * GRAN ? log2_floor(capacity) - GRAN_LOG2 + 1 : 1;
}

/* 64-bit words of the live bitmap: one bit per 16-byte granule, and at
 * least one (live_slot reads it for any heap). */
static uint64_t live_words_for(uint64_t capacity) { return capacity < 64 * GRAN ? 1 : (capacity / GRAN + 63) / 64; }

size_t tlsf_control_size(uint64_t capacity, unsigned sl_len)
{
    if (sl_len == 0 || sl_len > 64 || (sl_len & (sl_len - 1)) || capacity > TLSF_MAX_CAPACITY)
        return 0;
    return sizeof(struct tlsf) + 8 * (2 * (size_t)fl_count_for(capacity) * sl_len + (size_t)live_words_for(capacity));
}

int tlsf_init_zeroed(tlsf_t *t, uint64_t capacity, unsigned sl_len)
{
    if (!tlsf_control_size(capacity, sl_len))
        return TLSF_ERANGE;
    memset(t, 0, sizeof *t);
    t->magic = MAGIC;
    t->capacity = capacity;
    t->limit = capacity >= MIN_BLOCK ? capacity - MIN_BLOCK : 0;
    t->cls.sl_log2 = log2_floor(sl_len);
    t->cls.min_log2 = GRAN_LOG2;
    t->cls.fl_count = fl_count_for(capacity);
    t->live_words = live_words_for(capacity);
    t->first_pool = NIL;
    t->bad_offset = NIL;
    t->pending_old = t->pending_new = NIL;
    uint64_t n_lists = (uint64_t)t->cls.fl_count << t->cls.sl_log2;
    t->live_index = 2 * n_lists;
    for (uint64_t i = 0; i < 2 * n_lists; i++)
        t->lists[i] = NIL;
    return TLSF_OK;
}

int tlsf_init(tlsf_t *t, uint64_t capacity, unsigned sl_len)
{
    int rc = tlsf_init_zeroed(t, capacity, sl_len);
    if (!rc)
        memset(live_bitmap(t), 0, 8 * t->live_words);
    return rc;
}

uint64_t tlsf_capacity(const tlsf_t *t) { return t->capacity; }
unsigned tlsf_sl_len(const tlsf_t *t) { return 1u << t->cls.sl_log2; }
uint64_t tlsf_bad_offset(const tlsf_t *t) { return t->bad_offset; }

_Static_assert(1 << TLSF_SLI_DEFAULT == TLSF_SL_LEN_DEFAULT, "TLSF_SLI_DEFAULT is log2(TLSF_SL_LEN_DEFAULT)");

/* alloc's end: b, just read from the head of list i, becomes a block of
 * `need` bytes after `gap` bytes of padding for alignment `align`. Inlined
 * twice, so that the own-list look's fit test (the same comparison on the
 * same size word) is not made again. */
TLSF_HOT int take_head(tlsf_t *t, uint8_t *base, uint64_t b, uint64_t i, uint64_t gap, uint64_t need,
                       uint64_t align, uint64_t *out, uint64_t *note, unsigned sli)
{
    uint64_t bsize;
    int rc;
    if ((rc = check_head(t, base, b, i, &bsize)))
        return rc;
    if (gap + need > bsize)
        return corrupt(t, b);
    if (rd(base, b + bsize, W_PREV) != b)
        return corrupt(t, b + bsize);
    remove_head(t, base, b, i, sli);
    *out = carve(t, base, b, bsize, gap, need, align <= GRAN ? 0 : log2_floor(align), note, sli);
    return TLSF_OK;
}

/* tlsf_alloc; note as carve's; sli: the heap's sl_log2. */
TLSF_HOT int alloc_noted(tlsf_t *t, uint8_t *base, uint64_t size, uint64_t align, uint64_t *out, uint64_t *note,
                         unsigned sli)
{
    if (UNLIKELY(!align || (align & (align - 1))))
        return TLSF_EALIGN;
    /* (align <= GRAN: a heap smaller than align has no block anyway) */
    if (UNLIKELY(size > t->capacity || (align > GRAN && align > t->capacity)))
        return TLSF_ENOMEM;
    uint64_t need = block_size_for(size);
    /* worst-case padding: align_gap() <= align + GRAN */
    uint64_t search = align <= GRAN ? need : need + align + GRAN;
    /* Beyond rlsf: first the head of the request's own (rounded-down) list.
     * It often fits, and only there can the holes of a same-size workload or
     * a heap's single large block be found (rlsf #15). Still O(1). */
    uint64_t i = list_of(search, sli), b, gap;
    if (list_exists(t, i) && (b = *head_of(t, i)) != NIL && (gap = align_gap(b, align)) + need <= rd(base, b, W_SIZE))
        return take_head(t, base, b, i, gap, need, align, out, note, sli);
    /* Good fit: every block of the list found is large enough. */
    i = tlsf_find_suitable_k(&t->cls, tlsf_map_ceil_k(search, sli, GRAN_LOG2), sli);
    if (i == TLSF_CLASS_NONE)
        return TLSF_ENOMEM;
    b = *head_of(t, i);
    return take_head(t, base, b, i, align_gap(b, align), need, align, out, note, sli);
}

/* Any alignment, any sl_len: tlsf_alloc's uncommon cases. */
TLSF_OUT_OF_LINE int alloc_any(tlsf_t *t, uint8_t *base, uint64_t size, uint64_t align, uint64_t *out)
{
    return TLSF_WITH_SLI(t->cls, alloc_noted, t, base, size, align, out, NULL);
}

int tlsf_alloc(tlsf_t *t, uint8_t *base, uint64_t size, uint64_t align, uint64_t *out)
{
    /* The common case: the default sl_len and an alignment every block has
     * (a power of two up to GRAN), compiled with both as constants (align 1:
     * no padding to compute, the same outcome as the caller's align). */
    if (LIKELY(t->cls.sl_log2 == TLSF_SLI_DEFAULT && align - 1 < GRAN && !(align & (align - 1))))
        return alloc_noted(t, base, size, 1, out, NULL, TLSF_SLI_DEFAULT);
    return alloc_any(t, base, size, align, out);
}

/* A used block of `size` whose live bit is `bit` in *live is no more. */
static inline void drop_used(tlsf_t *t, uint64_t *live, uint64_t bit, uint64_t size)
{
    *live &= ~bit;
    t->allocations--;
    t->used_bytes -= size;
}

/* Frees live payload p. next_free: whether a free block follows, or -1 to
 * read it from the header. alloc_many's rollback knows it from the call
 * instead (on a corrupted heap the block after may look free without being
 * the call's) and puts the block back at_head of its list, where alloc took
 * it, so that lists, bitmaps and statistics are as before the call.
 * out: NULL, or gets what the free did (tlsf_freed_t). */
TLSF_HOT int free_offset(tlsf_t *t, uint8_t *base, uint64_t p, int next_free, int at_head, tlsf_freed_t *out,
                         unsigned sli)
{
    uint64_t bit, *live = live_slot(t, p, &bit);
    if (UNLIKELY(!live || !(*live & bit)))
        return TLSF_EINVAL;
    uint64_t b = p - HDR, w;
    neighbours_t nb;
    int rc;
    if ((rc = check_used_block(t, base, b, &w)))
        return rc;
    if (next_free < 0)
        next_free = !(rd(base, b + (w & SIZE_MASK), W_SIZE) & F_USED);
    uint64_t size = w & SIZE_MASK;
    if (!next_free && !(w & F_PREV_FREE)) { /* most frees: no neighbour to check or merge */
        drop_used(t, live, bit, size);
        file_free(t, base, b, size, at_head, sli);
    } else {
        if ((rc = check_next(t, base, b, w, next_free, &nb, sli)) || (rc = check_prev(t, base, b, w, &nb, sli)))
            return rc;
        drop_used(t, live, bit, size);
        b = release(t, base, b, size, &nb, at_head, sli);
    }
    if (out) {
        out->size = size;
        out->merged = b;
        out->merged_size = rd(base, b, W_SIZE);
    }
    return TLSF_OK;
}

/* Another sl_len: tlsf_free's and tlsf_free_merged's uncommon case. */
TLSF_OUT_OF_LINE int free_any(tlsf_t *t, uint8_t *base, uint64_t p, tlsf_freed_t *out)
{
    return free_offset(t, base, p, -1, 0, out, t->cls.sl_log2);
}

int tlsf_free(tlsf_t *t, uint8_t *base, uint64_t p)
{
    if (LIKELY(t->cls.sl_log2 == TLSF_SLI_DEFAULT))
        return free_offset(t, base, p, -1, 0, NULL, TLSF_SLI_DEFAULT);
    return free_any(t, base, p, NULL);
}

int tlsf_free_merged(tlsf_t *t, uint8_t *base, uint64_t p, tlsf_freed_t *out)
{
    if (LIKELY(t->cls.sl_log2 == TLSF_SLI_DEFAULT))
        return free_offset(t, base, p, -1, 0, out, TLSF_SLI_DEFAULT);
    return free_any(t, base, p, out);
}

/* The size word of live payload p's block, checked. */
static inline int live_word(const tlsf_t *t, const uint8_t *base, uint64_t p, uint64_t *w)
{
    if (!is_live(t, p))
        return TLSF_EINVAL;
    return check_used_block(t, base, p - HDR, w);
}

int tlsf_usable_size(const tlsf_t *t, const uint8_t *base, uint64_t p, uint64_t *out)
{
    uint64_t w;
    int rc = live_word(t, base, p, &w);
    if (!rc)
        *out = (w & SIZE_MASK) - HDR;
    return rc;
}

int tlsf_alignment(const tlsf_t *t, const uint8_t *base, uint64_t p, uint64_t *out)
{
    uint64_t w;
    int rc = live_word(t, base, p, &w);
    if (!rc)
        *out = (uint64_t)1 << (w >> ALIGN_SHIFT);
    return rc;
}

uint64_t tlsf_grow_need(const tlsf_t *t, uint64_t size, uint64_t align)
{
    if (!align || (align & (align - 1)) || size > t->capacity || align > t->capacity)
        return UINT64_MAX;
    uint64_t need = block_size_for(size), search = align <= GRAN ? need : need + align + GRAN;
    /* a block of at least the lower bound of class map_ceil(search) is found by the search */
    unsigned m = log2_floor(search), sli = t->cls.sl_log2;
    return m > sli ? round_up(search, (uint64_t)1 << (m - sli)) : search;
}

void tlsf_live_words(tlsf_t *t, uint64_t lo, uint64_t hi, uint8_t **start, uint64_t *bytes)
{
    uint64_t first = (lo / GRAN + 63) / 64, end = hi / GRAN / 64;
    if (end > t->live_words)
        end = t->live_words;
    *start = (uint8_t *)&live_bitmap(t)[first];
    *bytes = end > first ? 8 * (end - first) : 0;
}

int tlsf_realloc(tlsf_t *t, uint8_t *base, uint64_t p, uint64_t size, uint64_t *out)
{
    if (!is_live(t, p))
        return TLSF_EINVAL;
    uint64_t b = p - HDR, w;
    neighbours_t nb;
    int rc;
    if ((rc = check_used_block(t, base, b, &w)))
        return rc;
    if (size > t->capacity)
        return TLSF_ENOMEM;
    uint64_t old = w & SIZE_MASK, need = block_size_for(size);
    uint64_t align_log2 = w >> ALIGN_SHIFT, flags = w & ~SIZE_MASK;
    if ((rc = check_neighbours(t, base, b, w, &nb, t->cls.sl_log2)))
        return rc;

    /* 1. Shrink (or keep) in place: the tail goes back to the free lists.
     * Its header (merged with a free next block) is written inside the block
     * first; the commit is the block's own smaller size. */
    if (need <= old) {
        if (old - need >= MIN_BLOCK) {
            neighbours_t tail_nb = nb;
            tail_nb.prev_free = 0; /* the tail's previous block is this one, used */
            wr(base, b + need, W_PREV, b);
            t->used_bytes -= old - need;
            release(t, base, b + need, old - need, &tail_nb, 0, t->cls.sl_log2);
            COMMIT();
            wr(base, b, W_SIZE, need | flags);
        }
        *out = p;
        return TLSF_OK;
    }
    /* 2. Grow into a free next block. */
    if (nb.next_free && old + nb.next_size >= need) {
        uint64_t total = old + nb.next_size;
        remove_free(t, base, nb.next, nb.next_index, t->cls.sl_log2);
        if (total - need >= MIN_BLOCK) {
            uint64_t rest = b + need;
            wr(base, rest, W_SIZE, total - need);
            wr(base, rest, W_PREV, b);
            link_next(base, b + total, rest, 1);
            insert_free(t, base, rest, total - need, 0, t->cls.sl_log2);
            total = need;
        } else {
            link_next(base, b + total, b, 0);
        }
        COMMIT();
        wr(base, b, W_SIZE, total | flags); /* commit: the block covers the next one */
        UNPOISON(base + p, total - HDR);
        t->used_bytes += total - old;
        *out = p;
        return TLSF_OK;
    }
    /* 3. Move into a free previous block (with the next one too if free);
     * not in crash-safe mode (see the top of this file). */
    if (nb.prev_free && !t->crash_safe) {
        uint64_t avail = nb.prev_size + old + (nb.next_free ? nb.next_size : 0);
        uint64_t gap = align_gap(nb.prev, (uint64_t)1 << align_log2);
        if (gap + need <= avail) {
            remove_free(t, base, nb.prev, nb.prev_index, t->cls.sl_log2);
            if (nb.next_free)
                remove_free(t, base, nb.next, nb.next_index, t->cls.sl_log2);
            UNPOISON(base + nb.prev, avail);
            memmove(base + nb.prev + gap + HDR, base + p, old - HDR);
            set_live(t, p, 0);
            t->allocations--;
            t->used_bytes -= old;
            *out = carve(t, base, nb.prev, avail, gap, need, align_log2, NULL, t->cls.sl_log2);
            return TLSF_OK;
        }
    }
    /* 4. Allocate elsewhere, copy, free. In crash-safe mode the two blocks
     * are noted first (pending_new just before the new block's commit), so
     * that recovery frees the new block when the old one is still live. */
    uint64_t q;
    if (t->crash_safe) {
        t->pending_old = p;
        COMMIT();
    }
    if ((rc = alloc_noted(t, base, size, (uint64_t)1 << align_log2, &q, t->crash_safe ? &t->pending_new : NULL,
                          t->cls.sl_log2)))
        return rc;
    memmove(base + q, base + p, old - HDR); /* disjoint unless the arena was scribbled on */
    FAULT_POINT();
    if ((rc = tlsf_free(t, base, p)))
        return rc;
    COMMIT();
    t->pending_new = t->pending_old = NIL;
    *out = q;
    return TLSF_OK;
}

/* ---------------------------------------------------------- batch operations */

int tlsf_alloc_many(tlsf_t *t, uint8_t *base, const uint64_t *sizes, size_t n, uint64_t align,
                    uint64_t *out, size_t *failed)
{
    /* Rollback: free_offset, newest first, at the head of each list. The low
     * bit of out[k] (a multiple of 16) notes whether allocation k left a
     * remainder. The free-block count, kept outside the arena, tells:
     * one block taken, one more for padding (PREV_FREE in the header it
     * wrote), one more for a remainder. */
    for (size_t k = 0; k < n; k++) {
        uint64_t free_blocks = t->free_blocks;
        int rc = tlsf_alloc(t, base, sizes[k], align, &out[k]);
        if (rc) {
            *failed = k;
            while (k--)
                if (free_offset(t, base, out[k] & ~(uint64_t)1, (int)(out[k] & 1), 1, NULL, t->cls.sl_log2))
                    rc = TLSF_ECORRUPT; /* that block stays allocated; the others go on */
            return rc;
        }
        uint64_t padded = (rd(base, out[k] - HDR, W_SIZE) & F_PREV_FREE) != 0;
        out[k] |= t->free_blocks + 1 - free_blocks - padded;
    }
    for (size_t k = 0; k < n; k++)
        out[k] &= ~(uint64_t)1;
    return TLSF_OK;
}

int tlsf_free_many_notify(tlsf_t *t, uint8_t *base, const uint64_t *offsets, size_t n, size_t *bad,
                          tlsf_freed_fn freed, void *ctx)
{
    /* Validate all before freeing any: each offset must be live and listed
     * once (its live bit is cleared as it is seen, then restored), and its
     * block and physical neighbours sound. Whole free lists are not checked
     * (that is O(n)), so forged links between two lists can still stop the
     * batch midway (a known gap, tests/test_corruption.py). */
    size_t k;
    uint64_t w;
    neighbours_t nb;
    for (k = 0; k < n && is_live(t, offsets[k]); k++)
        set_live(t, offsets[k], 0);
    for (size_t j = 0; j < k; j++)
        set_live(t, offsets[j], 1);
    if (k < n) {
        *bad = k;
        return TLSF_EINVAL;
    }
    for (k = 0; k < n; k++) {
        int rc = check_used_block(t, base, offsets[k] - HDR, &w);
        if (!rc)
            rc = check_neighbours(t, base, offsets[k] - HDR, w, &nb, t->cls.sl_log2);
        if (rc) {
            *bad = k;
            return rc;
        }
    }
    for (k = 0; k < n; k++) {
        tlsf_freed_t what;
        int rc = free_offset(t, base, offsets[k], -1, 0, &what, t->cls.sl_log2);
        if (rc) {
            *bad = k;
            return rc;
        }
        if (freed)
            freed(ctx, offsets[k], &what);
    }
    return TLSF_OK;
}

int tlsf_free_many(tlsf_t *t, uint8_t *base, const uint64_t *offsets, size_t n, size_t *bad)
{
    return tlsf_free_many_notify(t, base, offsets, n, bad, NULL, NULL);
}

/* ------------------------------------------------------------------- pools */

static inline int valid_sentinel(const tlsf_t *t, const uint8_t *base, uint64_t s)
{
    return valid_block_offset(t, s) && (rd(base, s, W_SIZE) & ~F_PREV_FREE) == (SENTINEL_SIZE | F_USED | F_SENTINEL) &&
           rd(base, s, W_POOL_START) < s;
}

/* Walk the pool chain to the first pool starting at or after `start`.
 * *prev_link gets the sentinel whose next_pool points there (NIL: first_pool).
 * Fails with ERANGE if a pool overlaps [start, end). */
static int find_pool_slot(const tlsf_t *t, const uint8_t *base, uint64_t start, uint64_t end,
                          uint64_t *prev_link, uint64_t *next)
{
    uint64_t prev = NIL, s = t->first_pool;
    while (s != NIL) {
        if (!valid_sentinel(t, base, s) || (prev != NIL && s <= prev))
            return corrupt(t, s);
        uint64_t ps = rd(base, s, W_POOL_START);
        if (ps < end && start < s + SENTINEL_SIZE)
            return TLSF_ERANGE;
        if (ps >= end)
            break;
        prev = s;
        s = rd(base, s, W_NEXT_POOL);
    }
    *prev_link = prev;
    *next = s;
    return TLSF_OK;
}

static inline void set_pool_link(tlsf_t *t, uint8_t *base, uint64_t prev_link, uint64_t s)
{
    if (prev_link == NIL)
        t->first_pool = s;
    else
        wr(base, prev_link, W_NEXT_POOL, s);
}

/* The sentinel closing a pool whose last block, `prev`, is free. */
static void write_sentinel(uint8_t *base, uint64_t s, uint64_t prev, uint64_t pool_start, uint64_t next_pool)
{
    wr(base, s, W_SIZE, SENTINEL_SIZE | F_USED | F_SENTINEL | F_PREV_FREE);
    wr(base, s, W_PREV, prev);
    wr(base, s, W_POOL_START, pool_start);
    wr(base, s, W_NEXT_POOL, next_pool);
    POISON(base + s, SENTINEL_SIZE);
}

int tlsf_insert_free_block(tlsf_t *t, uint8_t *base, uint64_t off, uint64_t size, uint64_t *taken)
{
    if (off > t->capacity || size > t->capacity - off)
        return TLSF_ERANGE;
    uint64_t start = round_up(off, GRAN), end = round_down(off + size, GRAN);
    *taken = 0;
    if (end < start || end - start < TLSF_MIN_POOL)
        return TLSF_OK;
    uint64_t prev_link, next;
    int rc = find_pool_slot(t, base, start, end, &prev_link, &next);
    if (rc)
        return rc;
    uint64_t s = end - SENTINEL_SIZE;
    wr(base, start, W_SIZE, s - start);
    wr(base, start, W_PREV, NIL);
    write_sentinel(base, s, start, start, next);
    COMMIT();
    set_pool_link(t, base, prev_link, s); /* commit: the pool is in the chain of pools */
    insert_free(t, base, start, s - start, 0, t->cls.sl_log2);
    t->pool_bytes += s - start;
    *taken = end - off;
    return TLSF_OK;
}

int tlsf_append_free_block(tlsf_t *t, uint8_t *base, uint64_t off, uint64_t size, uint64_t *taken)
{
    if (off > t->capacity || size > t->capacity - off)
        return TLSF_ERANGE;
    /* find the pool ending at off */
    uint64_t prev_link = NIL, s = t->first_pool;
    while (s != NIL && s + SENTINEL_SIZE < off) {
        if (!valid_sentinel(t, base, s) || (prev_link != NIL && s <= prev_link))
            return corrupt(t, s);
        prev_link = s;
        s = rd(base, s, W_NEXT_POOL);
    }
    if (s == NIL)
        return TLSF_ERANGE;
    if (!valid_sentinel(t, base, s))
        return corrupt(t, s);
    if (s + SENTINEL_SIZE != off)
        return TLSF_ERANGE;
    uint64_t add = round_down(size, GRAN), end = off + add;
    uint64_t next = rd(base, s, W_NEXT_POOL);
    if (next != NIL && (!valid_sentinel(t, base, next) || next <= s))
        return corrupt(t, next);
    if (next != NIL && rd(base, next, W_POOL_START) < end)
        return TLSF_ERANGE;
    *taken = 0;
    if (add < MIN_BLOCK)
        return TLSF_OK;
    /* The old sentinel becomes free space, merged with a free last block. */
    uint64_t pool_start = rd(base, s, W_POOL_START), last = rd(base, s, W_PREV);
    uint64_t b = s, bsize = add, last_size, last_index;
    int rc;
    if (last == NIL || !valid_block_offset(t, last) || last >= s)
        return corrupt(t, s);
    if (!(rd(base, last, W_SIZE) & F_USED)) {
        if ((rc = check_free_before(t, base, last, s, &last_size, &last_index, t->cls.sl_log2)))
            return rc;
        remove_free(t, base, last, last_index, t->cls.sl_log2);
        b = last;
        bsize += last_size;
    }
    /* The new sentinel first, beyond the pool's end; the commit is the store
     * that makes the last block (or the old sentinel) cover the new space. */
    uint64_t ns = end - SENTINEL_SIZE;
    write_sentinel(base, ns, b, pool_start, next);
    COMMIT();
    wr(base, b, W_SIZE, bsize);
    set_pool_link(t, base, prev_link, ns);
    insert_free(t, base, b, bsize, 0, t->cls.sl_log2);
    t->pool_bytes += add; /* the old sentinel's bytes, less the new one's */
    *taken = add;
    return TLSF_OK;
}

void tlsf_set_crash_safe(tlsf_t *t) { t->crash_safe = 1; }

/* ---------------------------------------------------------------- recovery */

/* A used block's size word is sound: flags, size, recorded alignment. */
static inline int sound_used_word(uint64_t b, uint64_t w)
{
    return (w & (GRAN - 1) & ~F_PREV_FREE) == F_USED && !((b + HDR) & (((uint64_t)1 << (w >> ALIGN_SHIFT)) - 1));
}

int tlsf_recover(tlsf_t *t, uint8_t *base, uint64_t capacity, unsigned sl_len, uint64_t avail, int repair,
                 uint64_t *pool_end)
{
    /* The control structure is derived, and may be anything: only its noted
     * moving realloc is read, when its magic says it is one. */
    int noted = t->magic == MAGIC;
    uint64_t pending_old = noted ? t->pending_old : NIL, pending_new = noted ? t->pending_new : NIL;
    uint64_t crash_safe = noted ? t->crash_safe : 0;
    int rc = tlsf_init_zeroed(t, capacity, sl_len);
    if (rc)
        return rc;
    t->crash_safe = crash_safe;
    if (avail > capacity)
        avail = capacity;
    uint64_t words = (avail / GRAN + 63) / 64;
    memset(live_bitmap(t), 0, 8 * (words < t->live_words ? words : t->live_words));
    if (!repair && pending_new != NIL)
        return corrupt(t, pending_new); /* a moving realloc was interrupted */

    /* One walk from offset 0 to the first sentinel: each size word must lead
     * to the next block inside [0, avail). Free neighbours are one run
     * (merged when repairing), filed when the run ends. */
    uint64_t b = 0, prev = NIL, run = NIL, run_size = 0;
    for (;;) {
        if (b > avail || avail - b < SENTINEL_SIZE)
            return corrupt(t, b);
        uint64_t w = rd(base, b, W_SIZE), size = w & SIZE_MASK;
        int sentinel = (w & F_SENTINEL) != 0, used = (w & F_USED) != 0;
        if (sentinel ? (w & ~F_PREV_FREE) != (SENTINEL_SIZE | F_USED | F_SENTINEL)
                     : size < MIN_BLOCK || size > avail - SENTINEL_SIZE - b ||
                           (used ? !sound_used_word(b, w) : (w & ~SIZE_MASK) != 0 && !repair))
            return corrupt(t, b);
        if (!repair && (rd(base, b, W_PREV) != prev || (used && !(w & F_PREV_FREE) != (run == NIL))))
            return corrupt(t, b);
        if (!used) {
            if (run != NIL && !repair)
                return corrupt(t, b); /* two free blocks side by side */
            if (run == NIL) {
                run = b;
                run_size = 0;
                wr(base, b, W_PREV, prev);
            }
            run_size += size;
            prev = run;
            b += size;
            continue;
        }
        if (run != NIL) { /* the free run before this block */
            if (rd(base, run, W_SIZE) != run_size)
                wr(base, run, W_SIZE, run_size);
            insert_free(t, base, run, run_size, 0, t->cls.sl_log2);
            run = NIL;
            link_next(base, b, prev, 1);
        } else {
            link_next(base, b, prev, 0);
        }
        if (sentinel) {
            if (!repair && (rd(base, b, W_POOL_START) != 0 || rd(base, b, W_NEXT_POOL) != NIL))
                return corrupt(t, b);
            wr(base, b, W_POOL_START, 0);
            wr(base, b, W_NEXT_POOL, NIL);
            t->first_pool = b;
            t->pool_bytes = b; /* the pool starts at 0 */
            *pool_end = b + SENTINEL_SIZE;
            break;
        }
        set_live(t, b + HDR, 1);
        t->allocations++;
        t->used_bytes += size;
        prev = b;
        b += size;
    }
    /* A moving realloc interrupted while both its blocks were live did not
     * happen: its new block goes. (Once the old one was freed, it did.) */
    if (pending_new != NIL && pending_new != pending_old && is_live(t, pending_new) && is_live(t, pending_old))
        rc = tlsf_free(t, base, pending_new);
    return rc;
}

void tlsf_fini(tlsf_t *t, uint8_t *base)
{
#if defined(TLSF_POISON)
    /* Poison lies inside pools only: unpoison up to the end of the last one
     * (a growable heap's capacity may be a terabyte of untouched address
     * space), or everything when the pool chain is broken. */
    uint64_t end = 0, s = t->first_pool;
    while (s != NIL && valid_sentinel(t, base, s) && s + SENTINEL_SIZE > end) {
        end = s + SENTINEL_SIZE;
        s = rd(base, s, W_NEXT_POOL);
    }
    UNPOISON(base, s == NIL ? end : t->capacity);
#else
    (void)base;
#endif
    t->magic = 0;
}

/* -------------------------------------------------------------- inspection */

int tlsf_stats(const tlsf_t *t, const uint8_t *base, tlsf_stats_t *out)
{
    out->allocated_bytes = t->used_bytes - HDR * t->allocations;
    out->free_bytes = t->pool_bytes - t->used_bytes;
    out->allocations = t->allocations;
    out->free_blocks = t->free_blocks;
    out->largest_free = 0;
    uint64_t i = tlsf_find_highest(&t->cls), size;
    if (i != TLSF_CLASS_NONE) {
        /* The head of the highest list fits a request of its own size: the
         * search either lands on that list or falls back to its head. */
        int rc = check_head(t, base, t->lists[2 * i], i, &size);
        if (rc)
            return rc;
        out->largest_free = size - HDR;
    }
    return TLSF_OK;
}

/* Calls fn(block, size, used) for each block of pool ending at sentinel s. */
static int walk_pool(const tlsf_t *t, const uint8_t *base, uint64_t s, tlsf_walker fn, void *ctx)
{
    uint64_t b = rd(base, s, W_POOL_START), prev = NIL;
    while (b < s) {
        uint64_t w = rd(base, b, W_SIZE), size = w & SIZE_MASK;
        if ((w & F_SENTINEL) || size < MIN_BLOCK || size > s - b || rd(base, b, W_PREV) != prev)
            return corrupt(t, b);
        int rc = fn(b, size, (int)(w & F_USED), ctx);
        if (rc)
            return rc;
        prev = b;
        b += size;
    }
    if (b != s || rd(base, s, W_PREV) != prev)
        return corrupt(t, s);
    return TLSF_OK;
}

static int walk_pools(const tlsf_t *t, const uint8_t *base, tlsf_walker fn, void *ctx)
{
    uint64_t prev_end = 0, s = t->first_pool;
    while (s != NIL) {
        if (!valid_sentinel(t, base, s) || rd(base, s, W_POOL_START) < prev_end)
            return corrupt(t, s);
        int rc = walk_pool(t, base, s, fn, ctx);
        if (rc)
            return rc;
        prev_end = s + SENTINEL_SIZE;
        s = rd(base, s, W_NEXT_POOL);
    }
    return TLSF_OK;
}

int tlsf_walk(const tlsf_t *t, const uint8_t *base, tlsf_walker fn, void *ctx)
{
    return walk_pools(t, base, fn, ctx);
}

/* State of tlsf_check. Pass 1 marks every free block in the live bitmap, at
 * granule b+HDR, which no live payload can use; pass 2 clears the mark of each
 * list entry, proving that it is a real free block listed once. */
typedef struct {
    tlsf_t *t;
    const uint8_t *base;
    char *msg;
    size_t msglen;
    int prev_was_free;
    uint64_t used, used_bytes, free_n, free_bytes, marked;
} check_ctx;

static int fail(check_ctx *c, uint64_t where, const char *fmt, ...) TLSF_PRINTF_LIKE(3, 4);

static int fail(check_ctx *c, uint64_t where, const char *fmt, ...)
{
    if (c->msg && c->msglen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->msg, c->msglen, fmt, ap);
        va_end(ap);
    }
    return corrupt(c->t, where);
}

#define ULL(x) ((unsigned long long)(x))

static int check_block(uint64_t b, uint64_t size, int used, void *ctx)
{
    check_ctx *c = ctx;
    uint64_t w = rd(c->base, b, W_SIZE);
    int live = is_live(c->t, b + HDR);
    if (used) {
        if (!live)
            return fail(c, b, "used block at %llu has no live-allocation bit", ULL(b));
        if ((w & (GRAN - 1) & ~F_PREV_FREE) != F_USED)
            return fail(c, b, "used block at %llu has bad flags", ULL(b));
        if (!(w & F_PREV_FREE) != !(c->prev_was_free && rd(c->base, b, W_PREV) != NIL))
            return fail(c, b, "used block at %llu: its previous-block-free flag is wrong", ULL(b));
        if ((b + HDR) & (((uint64_t)1 << (w >> ALIGN_SHIFT)) - 1))
            return fail(c, b, "used block at %llu is not aligned as recorded", ULL(b));
        c->used++;
        c->used_bytes += size - HDR;
        c->prev_was_free = 0;
        return TLSF_OK;
    }
    if (live)
        return fail(c, b, "free block at %llu has a live-allocation bit", ULL(b));
    if (w != size)
        return fail(c, b, "free block at %llu has flags in its size word", ULL(b));
    if (c->prev_was_free && rd(c->base, b, W_PREV) != NIL) /* NIL: first block of a pool */
        return fail(c, b, "free block at %llu follows a free block (not coalesced)", ULL(b));
    set_live(c->t, b + HDR, 1);
    c->marked++;
    c->free_n++;
    c->free_bytes += size;
    c->prev_was_free = 1;
    return TLSF_OK;
}

/* Clears the marks of the first c->marked free blocks, then stops the walk. */
static int unmark(uint64_t b, uint64_t size, int used, void *ctx)
{
    check_ctx *c = ctx;
    (void)size;
    if (!c->marked)
        return 1;
    if (!used) {
        set_live(c->t, b + HDR, 0);
        c->marked--;
    }
    return TLSF_OK;
}

/* Each sentinel says whether the last block of its pool is free. */
static int check_sentinels(check_ctx *c)
{
    for (uint64_t s = c->t->first_pool; s != NIL; s = rd(c->base, s, W_NEXT_POOL)) {
        int last_free = !(rd(c->base, rd(c->base, s, W_PREV), W_SIZE) & F_USED);
        if (!(rd(c->base, s, W_SIZE) & F_PREV_FREE) != !last_free)
            return fail(c, s, "sentinel at %llu: its previous-block-free flag is wrong", ULL(s));
    }
    return TLSF_OK;
}

static int check_lists(check_ctx *c)
{
    tlsf_t *t = c->t;
    const uint8_t *base = c->base;
    uint64_t sl_len = (uint64_t)1 << t->cls.sl_log2, seen = 0, bad_fl;
    if (!tlsf_check_bitmaps(&t->cls, &bad_fl))
        return fail(c, NIL, "bitmaps of first level %llu disagree with each other or name no list", ULL(bad_fl));
    for (uint64_t fl = 0; fl < t->cls.fl_count; fl++) {
        uint64_t slmap = t->cls.sl_bitmap[fl];
        for (uint64_t sl = 0; sl < sl_len; sl++) {
            uint64_t i = (fl << t->cls.sl_log2) | sl, b = t->lists[2 * i], prev = NIL;
            if ((b != NIL) != (int)((slmap >> sl) & 1))
                return fail(c, NIL, "list (%llu, %llu) disagrees with its bitmap bit", ULL(fl), ULL(sl));
            while (b != NIL) {
                if (!valid_block_offset(t, b) || (rd(base, b, W_SIZE) & F_USED) || !is_live(t, b + HDR))
                    return fail(c, b, "list (%llu, %llu) holds %llu, which is not a free block "
                                "or is listed twice", ULL(fl), ULL(sl), ULL(b));
                set_live(t, b + HDR, 0);
                c->marked--;
                if (rd(base, b, W_PREV_FREE) != prev)
                    return fail(c, b, "free block %llu: back link does not match", ULL(b));
                if (tlsf_map_floor(&t->cls, rd(base, b, W_SIZE)) != i)
                    return fail(c, b, "free block %llu is filed in the wrong list", ULL(b));
                seen++;
                prev = b;
                b = rd(base, b, W_NEXT_FREE);
            }
            if (t->lists[2 * i + 1] != prev)
                return fail(c, prev, "list (%llu, %llu) has a wrong tail", ULL(fl), ULL(sl));
        }
    }
    if (seen != c->free_n)
        return fail(c, NIL, "%llu free blocks in the pools but %llu in the lists", ULL(c->free_n), ULL(seen));
    return TLSF_OK;
}

int tlsf_check(tlsf_t *t, const uint8_t *base, char *msg, size_t msglen)
{
    check_ctx c = {t, base, msg, msglen, 0, 0, 0, 0, 0, 0};
    if (msg && msglen)
        msg[0] = 0;
    if (t->magic != MAGIC)
        return fail(&c, NIL, "control structure has a bad magic number");
    /* 1. physical: every pool, block by block (walk_pools checks links and bounds) */
    int rc = walk_pools(t, base, check_block, &c);
    if (rc && msg && msglen && !msg[0])
        snprintf(msg, msglen, "pool chain or block header broken at offset %llu", ULL(t->bad_offset));
    /* 2. free lists against bitmaps and the marks of pass 1 (pools are walkable now) */
    if (!rc)
        rc = check_sentinels(&c);
    if (!rc)
        rc = check_lists(&c);
    if (rc) {
        uint64_t where = t->bad_offset;
        c.marked = c.free_n; /* marks left: pass 2 may have cleared some; clearing twice is harmless */
        walk_pools(t, base, unmark, &c);
        t->bad_offset = where;
        return rc;
    }
    /* 3. the live bitmap holds exactly the used blocks. Only its words up to
     * the end of the last pool are counted: a growable heap's bitmap is sized
     * for a reservation of up to a terabyte that the pools may never reach. A
     * stray bit beyond every pool is harmless: the block it names has no
     * USED header (the reservation reads as zeros), so it is refused as corrupt. */
    uint64_t bits = 0, *live = live_bitmap(t), end = 0;
    for (uint64_t s = t->first_pool; s != NIL; s = rd(base, s, W_NEXT_POOL))
        end = s + SENTINEL_SIZE; /* pools are in address order, and sound after pass 1 */
    uint64_t words = (end / GRAN + 63) / 64;
    for (uint64_t k = 0; k < words && k < t->live_words; k++)
        bits += tlsf_popcount64(live[k]);
    if (bits != c.used)
        return fail(&c, NIL, "%llu live-allocation bits for %llu used blocks", ULL(bits), ULL(c.used));
    /* 4. statistics (as tlsf_stats derives them) */
    uint64_t allocated_bytes = t->used_bytes - HDR * t->allocations, free_bytes = t->pool_bytes - t->used_bytes;
    if (t->allocations != c.used || allocated_bytes != c.used_bytes || t->free_blocks != c.free_n ||
        free_bytes != c.free_bytes)
        return fail(&c, NIL, "statistics disagree with the blocks: allocations %llu/%llu, "
                    "allocated_bytes %llu/%llu, free_blocks %llu/%llu, free_bytes %llu/%llu",
                    ULL(t->allocations), ULL(c.used), ULL(allocated_bytes), ULL(c.used_bytes),
                    ULL(t->free_blocks), ULL(c.free_n), ULL(free_bytes), ULL(c.free_bytes));
    return TLSF_OK;
}

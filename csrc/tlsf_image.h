/*
 * tlsf_image.h: the heap image format, of a FlexHeap whose memory is a file
 * and of a SharedHeap's shared memory segment (their magics differ). Plain
 * C11, no Python, no system calls; the twin src/tlsf/pure/image.py mirrors it.
 *
 *   [0, 4096)                 the header below; a segment's process-shared
 *                             lock at TLSF_IMAGE_LOCK_OFF; the rest zero
 *   [4096, control_end)       the control structure (tlsf.h), derived data:
 *                             rebuilt from the arena at every open
 *   [arena_off, +size)        the arena: one pool at offset 0 of it, which
 *                             grows with the file (the file is extended first)
 *
 * Every link is an offset, so the file works wherever it is mapped. The
 * control structure is sized for max_size (its live bitmap is 1/128 of it),
 * and the file is sparse there: only the parts in use take storage.
 */
#ifndef TLSF_IMAGE_H
#define TLSF_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TLSF_IMAGE_VERSION 1u
#define TLSF_IMAGE_HEADER_SIZE 4096u
#define TLSF_IMAGE_ALIGN ((uint64_t)64 << 10) /* the arena's offset: a multiple of any page size up to 64 KiB */
#define TLSF_IMAGE_ORDER 0x01020304u          /* reads so on a machine of the same byte order */
#define TLSF_IMAGE_CLEAN 1u                   /* flags: closed cleanly (cleared while open) */
#define TLSF_IMAGE_BROKEN 2u                  /* flags: recovery found the chain broken (a segment) */
#define TLSF_IMAGE_LOCK_OFF 1024u             /* a segment's lock: TLSF_IMAGE_LOCK_SIZE bytes of the header page */
#define TLSF_IMAGE_LOCK_SIZE 1024u            /* the room it has */

typedef struct {
    char magic[8];          /* "TLSFHEAP" (a file), "TLSFSHRD" (a segment); written last when made */
    uint32_t version;       /* TLSF_IMAGE_VERSION */
    uint32_t word_size;     /* 8 */
    uint32_t order;         /* TLSF_IMAGE_ORDER */
    uint32_t sl_len;
    uint32_t flags;
    uint32_t recoveries;    /* a segment: times the heap was recovered after its lock's holder died */
    uint64_t max_size;      /* the arena's capacity */
    uint64_t size;          /* the pool's bytes when last closed or grown (the file holds at least these) */
    uint64_t root;          /* the program's own offset (0: none) */
    uint64_t control_off;   /* TLSF_IMAGE_HEADER_SIZE */
    uint64_t arena_off;     /* tlsf_image_layout */
} tlsf_image_header_t;

/* What tlsf_image_check finds. */
enum {
    TLSF_IMAGE_OK = 0,
    TLSF_IMAGE_NOT_HEAP = 1,  /* not a tlsf heap image of its kind (too short, another magic) */
    TLSF_IMAGE_NEWER = 2,     /* a newer format version */
    TLSF_IMAGE_FOREIGN = 3,   /* another word size or byte order */
    TLSF_IMAGE_BAD = 4,       /* the header disagrees with itself */
    TLSF_IMAGE_TRUNCATED = 5, /* the file is shorter than its header says (detail: the bytes needed) */
};

extern const char tlsf_image_magic[8];        /* a heap file */
extern const char tlsf_image_shared_magic[8]; /* a shared memory segment */

/* Where the control structure ends and the arena starts, for a heap of
 * max_size bytes and sl_len second-level lists; 0 when they are invalid. */
uint64_t tlsf_image_arena_off(uint64_t max_size, unsigned sl_len);

/* Fills a new header (not yet marked as a heap: no magic). */
void tlsf_image_init(tlsf_image_header_t *h, uint64_t max_size, unsigned sl_len, uint64_t size);

/* Checks header h of an image of file_size bytes with the given magic (h
 * holds the image's first bytes, zero where it is shorter); *detail gets the
 * value the message names (NEWER: the version; TRUNCATED: the bytes the
 * image should have). */
int tlsf_image_check(const tlsf_image_header_t *h, uint64_t file_size, const char magic[8], uint64_t *detail);

#ifdef __cplusplus
}
#endif
#endif /* TLSF_IMAGE_H */

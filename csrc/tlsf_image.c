/*
 * tlsf_image.c: the heap image format (see tlsf_image.h). The twin
 * src/tlsf/pure/image.py mirrors it.
 */
#include "tlsf_image.h"

#include <string.h>

#include "tlsf.h"

const char tlsf_image_magic[8] = {'T', 'L', 'S', 'F', 'H', 'E', 'A', 'P'};
const char tlsf_image_shared_magic[8] = {'T', 'L', 'S', 'F', 'S', 'H', 'R', 'D'};

uint64_t tlsf_image_arena_off(uint64_t max_size, unsigned sl_len)
{
    size_t control = tlsf_control_size(max_size, sl_len);
    if (!control || !max_size)
        return 0;
    uint64_t end = TLSF_IMAGE_HEADER_SIZE + (uint64_t)control;
    return (end + TLSF_IMAGE_ALIGN - 1) / TLSF_IMAGE_ALIGN * TLSF_IMAGE_ALIGN;
}

void tlsf_image_init(tlsf_image_header_t *h, uint64_t max_size, unsigned sl_len, uint64_t size)
{
    memset(h, 0, sizeof *h);
    h->version = TLSF_IMAGE_VERSION;
    h->word_size = 8;
    h->order = TLSF_IMAGE_ORDER;
    h->sl_len = sl_len;
    h->max_size = max_size;
    h->size = size;
    h->control_off = TLSF_IMAGE_HEADER_SIZE;
    h->arena_off = tlsf_image_arena_off(max_size, sl_len);
}

int tlsf_image_check(const tlsf_image_header_t *h, uint64_t file_size, const char magic[8], uint64_t *detail)
{
    *detail = 0;
    if (file_size < sizeof *h || memcmp(h->magic, magic, sizeof h->magic))
        return TLSF_IMAGE_NOT_HEAP;
    if (h->version > TLSF_IMAGE_VERSION) {
        *detail = h->version;
        return TLSF_IMAGE_NEWER;
    }
    if (h->word_size != 8 || h->order != TLSF_IMAGE_ORDER)
        return TLSF_IMAGE_FOREIGN;
    uint64_t arena = tlsf_image_arena_off(h->max_size, h->sl_len);
    if (!h->version || !arena || h->max_size > TLSF_MAX_CAPACITY || h->control_off != TLSF_IMAGE_HEADER_SIZE ||
        h->arena_off != arena || h->size > h->max_size || h->size < TLSF_MIN_POOL)
        return TLSF_IMAGE_BAD;
    if (file_size < arena || file_size - arena < h->size) {
        *detail = arena + h->size;
        return TLSF_IMAGE_TRUNCATED;
    }
    return TLSF_IMAGE_OK;
}

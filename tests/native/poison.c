/*
 * poison.c: in-pool poisoning makes AddressSanitizer see inside a pool.
 *
 *   poison ok          touches only live payloads, then tlsf_fini: must run clean
 *   poison freed       reads a freed block: ASan must report use-after-poison
 *   poison header      writes a live block's header: ASan must report it
 *   poison after-fini  touches the whole arena after tlsf_fini: must run clean
 *
 * Built with -fsanitize=address -DTLSF_POISON (see Makefile, target check-poison).
 */
#include "tlsf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "ok";
    uint64_t cap = 1 << 16, taken, a, b;
    uint8_t *arena = aligned_alloc(64, cap);
    tlsf_t *t = aligned_alloc(64, (tlsf_control_size(cap, 32) + 63) & ~(size_t)63);
    if (!arena || !t || tlsf_init(t, cap, 32) || tlsf_insert_free_block(t, arena, 0, cap, &taken) ||
        tlsf_alloc(t, arena, 100, 1, &a) || tlsf_alloc(t, arena, 100, 1, &b))
        return 2;
    memset(arena + a, 1, 100);
    memset(arena + b, 2, 100);
    if (tlsf_free(t, arena, a))
        return 2;
    volatile uint8_t sink = 0;
    if (!strcmp(mode, "freed"))
        sink = arena[a + 8]; /* a freed block: reported */
    else if (!strcmp(mode, "header"))
        arena[b - 8] = 0; /* the header of a live block: reported */
    tlsf_fini(t, arena);
    if (!strcmp(mode, "after-fini"))
        memset(arena, 0, cap); /* plain memory again */
    (void)sink;
    free(t);
    free(arena);
    return 0;
}

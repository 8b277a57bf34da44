/*
 * fuzz/fuzz_offset.c: libFuzzer target for the out-of-band engine (csrc/tlsf_offset.c).
 *
 * It runs the steps of the native stress test (tests/native/stress_offset.c:
 * alloc with any alignment, free and double free, resize, alloc_many /
 * free_many with planted bad entries, add_range, reset, against a model that
 * owns every unit) with the input as the source of every random choice:
 *
 *   byte 0      sl_len = 2^(b % 7)             (1 .. 64)
 *   byte 1      granularity = 1, 16, 256 or 4  (b % 4)
 *   then        little-endian 32-bit words, one per choice; the steps run
 *               until the input is used up (zeros after its end)
 *
 * over a window of 4,096 units, with tlsf_oa_check every 8 steps and at the end.
 */
#define STRESS_OFFSET_NO_MAIN
#include "../tests/native/stress_offset.c"

static const uint8_t *input;
static size_t input_len, input_pos;

static uint64_t from_input(void)
{
    uint64_t v = 0;
    for (int i = 0; i < 4 && input_pos < input_len; i++)
        v |= (uint64_t)input[input_pos++] << (8 * i);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t granularities[] = {1, 16, 256, 4};
    if (size < 2)
        return 0;
    input = data + 2;
    input_len = size - 2;
    input_pos = 0;
    next_random = from_input;
    space = 4096;
    check_every = 8;
    run_config(1u << (data[0] % 7), granularities[data[1] % 4], input_len / 8 + 1, 0);
    return 0;
}

/* tlsf_common.c: the messages of the result codes both engines return. */
#include "tlsf_common.h"

const char *tlsf_strerror(int code)
{
    switch (code) {
    case TLSF_OK: return "success";
    case TLSF_ENOMEM: return "out of memory";
    case TLSF_EINVAL: return "not the offset of a live allocation";
    case TLSF_ERANGE: return "range outside memory, overlapping a pool, or not at the end of a pool";
    case TLSF_EALIGN: return "alignment is not a power of two";
    case TLSF_ECORRUPT: return "heap metadata is corrupt";
    case TLSF_ENOMETA: return "out of memory for allocator metadata";
    default: return "unknown error";
    }
}

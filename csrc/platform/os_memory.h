/*
 * os_memory.h: memory from the operating system for the growable heaps
 * (csrc/tlsf_flex.c's sources), kept apart from the algorithm as rlsf keeps
 * global/unix.rs apart from tlsf.rs. Plain C11, no Python. One file per
 * platform implements it: unix.c (Linux, macOS, the BSDs).
 *
 * Guarantee kept by every function: memory handed out is readable and
 * writable for as long as it is reserved (never PROT_NONE); giving pages back
 * makes them read as zeros, never fault.
 */
#ifndef TLSF_OS_MEMORY_H
#define TLSF_OS_MEMORY_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The size of a page (what discard works in). */
uint64_t tlsf_os_page_size(void);

/* Reserves n bytes (a multiple of the page size) of zeroed, private,
 * read-write address space that costs no memory until touched (Linux:
 * MAP_NORESERVE, so overcommit accounting does not refuse a large
 * reservation). Returns 0 and *out, or an errno value. */
int tlsf_os_reserve(uint64_t n, void **out);

/* Ends a reservation made by tlsf_os_reserve. */
void tlsf_os_unreserve(void *p, uint64_t n);

/* Gives the pages of [p, p+n) (page-aligned) back to the system; they read
 * as zeros afterwards. With `count`, returns the bytes of those pages that
 * were resident (one more system call per 16 MiB); without, n. Returns 0
 * where the platform cannot give pages back. */
uint64_t tlsf_os_discard(void *p, uint64_t n, int count);

/* Asks for transparent huge pages on [p, p+n) where the platform has them;
 * 0 or an errno value. */
int tlsf_os_hugepages(void *p, uint64_t n);

/* Files (a heap image that outlives its process). Each returns 0 or an errno
 * value. */

/* Opens `path` read-write (create: a new file, failing if it exists) and
 * takes an exclusive advisory lock on it without waiting (EWOULDBLOCK when
 * another open file holds it); *size is its size. */
int tlsf_os_file_open(const char *path, int create, int *fd, uint64_t *size);
/* Closes it (which drops the lock). */
void tlsf_os_file_close(int fd);
/* Reads n bytes at off (short files: EIO). */
int tlsf_os_file_read(int fd, void *buf, uint64_t n, uint64_t off);
/* Sets its size (the new bytes read as zeros). */
int tlsf_os_file_resize(int fd, uint64_t size);
/* Gives file bytes [off, off+n) storage (extending the file if needed), so
 * that writing them through a mapping cannot fail for want of disk space. */
int tlsf_os_file_allocate(int fd, uint64_t off, uint64_t n);
/* Maps file bytes [off, off+n) shared and read-write at `at`, inside a
 * reservation (replacing those pages of it). */
int tlsf_os_file_map(int fd, uint64_t off, uint64_t n, void *at);
/* Gives the file's storage for [off, off+n) back (a hole: reads as zeros),
 * with the pages of it mapped at p; with `count`, returns the bytes of them
 * that were resident, else n; 0 where the platform cannot punch holes. */
uint64_t tlsf_os_file_discard(int fd, uint64_t off, void *p, uint64_t n, int count);
/* Writes [p, p+n) of a file mapping, and the file, to stable storage. */
int tlsf_os_file_sync(int fd, void *p, uint64_t n);

#ifdef __cplusplus
}
#endif
#endif /* TLSF_OS_MEMORY_H */

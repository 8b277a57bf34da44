/*
 * os_shared.h: named shared memory and a process-shared lock that survives
 * the death of its holder, for csrc's SharedHeap (binding/shared.c), kept
 * apart from the algorithm like os_memory.h. Plain C11, no Python. One file
 * per platform implements it: unix_shared.c (Linux: POSIX shared memory and
 * robust process-shared pthread mutexes; elsewhere the lock is ENOSYS).
 *
 * A segment is a file descriptor: os_memory.h's file functions size it,
 * give it storage, map it and punch holes in it.
 */
#ifndef TLSF_OS_SHARED_H
#define TLSF_OS_SHARED_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opens the named segment `name` ("/..."), read-write; create: a new one
 * (mode 0600), failing with EEXIST if the name exists. *size is its size.
 * 0 or an errno value. */
int tlsf_os_shm_open(const char *name, int create, int *fd, uint64_t *size);
/* Removes the name (mapped segments stay until unmapped). 0 or an errno value. */
int tlsf_os_shm_unlink(const char *name);
/* Removes the name only while it names the segment open as fd (ENOENT when
 * it names none, or another). */
int tlsf_os_shm_unlink_if_same(const char *name, int fd);

/* The lock: at most TLSF_OS_SHARED_LOCK_MAX bytes of shared memory, 64-byte
 * aligned. Initialises it (process-shared, robust); ENOSYS where the
 * platform has no such lock. */
#define TLSF_OS_SHARED_LOCK_MAX 1024
int tlsf_os_shared_lock_init(void *lock);

/* What tlsf_os_shared_lock returns besides an errno value (not taken). */
#define TLSF_OS_LOCK_TAKEN 0
#define TLSF_OS_LOCK_BUSY (-1)       /* not waiting, and another holds it */
#define TLSF_OS_LOCK_OWNER_DIED (-2) /* taken, but its holder died holding it: repair what it
                                        guards, then call tlsf_os_shared_lock_consistent */

/* Takes the lock, waiting for it or not. */
int tlsf_os_shared_lock(void *lock, int wait);
/* After TLSF_OS_LOCK_OWNER_DIED: what the lock guards is whole again. */
void tlsf_os_shared_lock_consistent(void *lock);
void tlsf_os_shared_unlock(void *lock);

#ifdef __cplusplus
}
#endif
#endif /* TLSF_OS_SHARED_H */

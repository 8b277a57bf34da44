/*
 * unix_shared.c: os_shared.h on POSIX systems: shm_open for the segment, and
 * for the lock a pthread mutex that is process-shared and robust (Linux):
 * when its holder dies, the kernel hands it to the next waiter with
 * EOWNERDEAD instead of leaving it locked forever.
 */
#define _GNU_SOURCE
#include "os_shared.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int tlsf_os_shm_open(const char *name, int create, int *fd, uint64_t *size)
{
    int f = shm_open(name, O_RDWR | (create ? O_CREAT | O_EXCL : 0), 0600);
    struct stat st;
    if (f < 0)
        return errno;
    if (fstat(f, &st) != 0) {
        int err = errno;
        close(f);
        return err;
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return 0;
}

int tlsf_os_shm_unlink(const char *name) { return shm_unlink(name) == 0 ? 0 : errno; }

int tlsf_os_shm_unlink_if_same(const char *name, int fd)
{
    struct stat mine, named;
    int f = shm_open(name, O_RDONLY, 0);
    if (f < 0)
        return errno;
    int same = fstat(fd, &mine) == 0 && fstat(f, &named) == 0 && mine.st_dev == named.st_dev &&
               mine.st_ino == named.st_ino;
    close(f);
    return same ? tlsf_os_shm_unlink(name) : ENOENT;
}

#if defined(__linux__)

_Static_assert(sizeof(pthread_mutex_t) <= TLSF_OS_SHARED_LOCK_MAX, "the lock's room");

int tlsf_os_shared_lock_init(void *lock)
{
    pthread_mutexattr_t a;
    int err = pthread_mutexattr_init(&a);
    if (err)
        return err;
    if (!(err = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) &&
        !(err = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST)))
        err = pthread_mutex_init((pthread_mutex_t *)lock, &a);
    pthread_mutexattr_destroy(&a);
    return err;
}

int tlsf_os_shared_lock(void *lock, int wait)
{
    pthread_mutex_t *m = lock;
    int err = wait ? pthread_mutex_lock(m) : pthread_mutex_trylock(m);
    if (err == EBUSY)
        return TLSF_OS_LOCK_BUSY;
    if (err == EOWNERDEAD)
        return TLSF_OS_LOCK_OWNER_DIED;
    return err;
}

void tlsf_os_shared_lock_consistent(void *lock) { (void)pthread_mutex_consistent((pthread_mutex_t *)lock); }

void tlsf_os_shared_unlock(void *lock) { (void)pthread_mutex_unlock((pthread_mutex_t *)lock); }

#else /* no robust process-shared mutex: no SharedHeap rather than an unsafe one */

int tlsf_os_shared_lock_init(void *lock)
{
    (void)lock;
    return ENOSYS;
}

int tlsf_os_shared_lock(void *lock, int wait)
{
    (void)lock;
    (void)wait;
    return ENOSYS;
}

void tlsf_os_shared_lock_consistent(void *lock) { (void)lock; }

void tlsf_os_shared_unlock(void *lock) { (void)lock; }

#endif

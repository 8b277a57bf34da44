/*
 * unix.c: os_memory.h on POSIX systems (mmap, madvise, mincore).
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE, madvise, mincore, fallocate on glibc */
#include "os_memory.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif

uint64_t tlsf_os_page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (uint64_t)p : 4096;
}

int tlsf_os_reserve(uint64_t n, void **out)
{
    if (n == 0 || n > (uint64_t)SIZE_MAX)
        return ENOMEM;
    void *p = mmap(NULL, (size_t)n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return errno ? errno : ENOMEM;
    *out = p;
    return 0;
}

void tlsf_os_unreserve(void *p, uint64_t n)
{
    if (p && n)
        munmap(p, (size_t)n);
}

/* Bytes of [p, p+n) resident now, by mincore, in chunks so that the vector
 * stays small; all of n when mincore is refused. */
static uint64_t resident_bytes(void *p, uint64_t n)
{
    enum { CHUNK_PAGES = 4096 };
    unsigned char vec[CHUNK_PAGES];
    uint64_t page = tlsf_os_page_size(), total = 0;
    for (uint64_t done = 0; done < n;) {
        uint64_t len = n - done < CHUNK_PAGES * page ? n - done : CHUNK_PAGES * page;
        if (mincore((char *)p + done, (size_t)len, (void *)vec) != 0)
            return n;
        for (uint64_t k = 0; k < len / page; k++)
            total += (vec[k] & 1) ? page : 0;
        done += len;
    }
    return total;
}

uint64_t tlsf_os_discard(void *p, uint64_t n, int count)
{
#if defined(MADV_DONTNEED) && defined(__linux__)
    /* Linux: MADV_DONTNEED on private anonymous memory drops the pages at
     * once and later reads see zeros. (On other systems it may keep the
     * contents, so nothing is claimed there.) */
    uint64_t resident = count ? resident_bytes(p, n) : n;
    if (resident == 0 || madvise(p, (size_t)n, MADV_DONTNEED) != 0)
        return 0;
    return resident;
#else
    (void)p;
    (void)n;
    (void)count;
    return 0;
#endif
}

int tlsf_os_file_open(const char *path, int create, int *fd, uint64_t *size)
{
    int f = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0), 0644);
    struct stat st;
    if (f < 0)
        return errno;
    if (flock(f, LOCK_EX | LOCK_NB) != 0 || fstat(f, &st) != 0) {
        int err = errno;
        close(f);
        return err;
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return 0;
}

void tlsf_os_file_close(int fd) { close(fd); }

int tlsf_os_file_read(int fd, void *buf, uint64_t n, uint64_t off)
{
    ssize_t got = pread(fd, buf, (size_t)n, (off_t)off);
    return got < 0 ? errno : (uint64_t)got == n ? 0 : EIO;
}

int tlsf_os_file_resize(int fd, uint64_t size)
{
    return ftruncate(fd, (off_t)size) == 0 ? 0 : errno;
}

int tlsf_os_file_allocate(int fd, uint64_t off, uint64_t n)
{
    int err = posix_fallocate(fd, (off_t)off, (off_t)n);
    if (err == EOPNOTSUPP || err == EINVAL) { /* a file system without it: the size at least */
        struct stat st;
        if (fstat(fd, &st) != 0)
            return errno;
        return (uint64_t)st.st_size >= off + n ? 0 : tlsf_os_file_resize(fd, off + n);
    }
    return err;
}

int tlsf_os_file_map(int fd, uint64_t off, uint64_t n, void *at)
{
    void *p = mmap(at, (size_t)n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, (off_t)off);
    return p == MAP_FAILED ? errno : 0;
}

uint64_t tlsf_os_file_discard(int fd, uint64_t off, void *p, uint64_t n, int count)
{
#if defined(FALLOC_FL_PUNCH_HOLE) && defined(__linux__)
    uint64_t resident = count ? resident_bytes(p, n) : n;
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)n) != 0)
        return 0;
    return resident;
#else
    (void)fd;
    (void)off;
    (void)p;
    (void)n;
    (void)count;
    return 0;
#endif
}

int tlsf_os_file_sync(int fd, void *p, uint64_t n)
{
    if (n && msync(p, (size_t)n, MS_SYNC) != 0)
        return errno;
    return fsync(fd) == 0 ? 0 : errno;
}

int tlsf_os_hugepages(void *p, uint64_t n)
{
#ifdef MADV_HUGEPAGE
    return madvise(p, (size_t)n, MADV_HUGEPAGE) == 0 ? 0 : errno;
#else
    (void)p;
    (void)n;
    return ENOTSUP;
#endif
}

/*
 * measure.c: runs a program and writes its wall time, peak resident memory,
 * CPU times and exit status to a file (run.py's launcher).
 *
 *     ./measure OUT [-e NAME=VALUE]... PROGRAM [ARGS...]
 *
 * Why not os.wait4 from Python directly: a child's ru_maxrss starts at the
 * resident size of the process it was forked from. exec records the
 * replaced address space's high-water mark in the process's maxrss, and
 * after fork (or vfork, as subprocess uses) that is the parent's: every
 * program run from a Python parent would show at least the parent's ~15 MiB
 * and more if the parent grows. This launcher is small (about 1 MiB), so the
 * program it forks reports its own peak to within that.
 *
 * Each -e sets a variable in the program's environment only (LD_PRELOAD goes
 * there, so the launcher itself keeps the allocator of its own).
 *
 * OUT gets "seconds S", "maxrss_kib K", "user_s U", "sys_s S" and "status N"
 * lines (N: the exit code, or minus the signal that killed it). The program
 * inherits stdin, stdout, stderr and the environment. Exit status: the
 * program's, or 128 + its signal; 127 if it could not be run.
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double seconds(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

int main(int argc, char **argv)
{
    int prog = 2; /* argv[prog]: the program */
    while (prog + 1 < argc && strcmp(argv[prog], "-e") == 0 && strchr(argv[prog + 1], '='))
        prog += 2;
    if (prog >= argc) {
        fprintf(stderr, "usage: %s OUT [-e NAME=VALUE]... PROGRAM [ARGS...]\n", argv[0]);
        return 127;
    }
    FILE *out = fopen(argv[1], "w");
    if (!out) {
        perror(argv[1]);
        return 127;
    }
    double start = now();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 127;
    }
    if (pid == 0) {
        fclose(out);
        for (int i = 2; i < prog; i += 2) {
            char *eq = strchr(argv[i + 1], '=');
            *eq = '\0';
            if (setenv(argv[i + 1], eq + 1, 1)) {
                perror("setenv");
                _exit(127);
            }
        }
        execvp(argv[prog], argv + prog);
        perror(argv[prog]);
        _exit(127);
    }
    int wstatus;
    struct rusage ru;
    while (wait4(pid, &wstatus, 0, &ru) < 0) {
        if (errno == EINTR)
            continue;
        perror("wait4");
        return 127;
    }
    double wall = now() - start;
    int status = WIFSIGNALED(wstatus) ? -WTERMSIG(wstatus) : WEXITSTATUS(wstatus);
    fprintf(out, "seconds %.6f\nmaxrss_kib %ld\nuser_s %.6f\nsys_s %.6f\nstatus %d\n", wall, ru.ru_maxrss,
            seconds(ru.ru_utime), seconds(ru.ru_stime), status);
    if (fclose(out)) {
        perror(argv[1]);
        return 127;
    }
    return status < 0 ? 128 - status : status;
}

/*
 * rename.c - publish a finished file under its final name without replacing
 * one that appeared meanwhile (another process's output, say).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif

#include "pyscan.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

int pyscan_rename_noreplace(const char *from, const char *to)
{
#if defined(__linux__) && defined(SYS_renameat2)
    if (syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    /* EINVAL / ENOSYS: the file system (or an old kernel) cannot; link() below is as safe. */
    if (errno != EINVAL && errno != ENOSYS)
        return errno;
#endif
    /* link() never replaces an existing name: EEXIST if one appeared. */
    if (link(from, to) == 0) {
        (void)unlink(from);
        return 0;
    }
    if (errno != EPERM && errno != EOPNOTSUPP && errno != ENOSYS)
        return errno;
    /* No hard links here (vfat, some FUSE and SMB mounts): check, then rename.  A file that
     * appears in between these two calls is replaced: the only race left, on such file systems. */
    if (access(to, F_OK) == 0)
        return EEXIST;
    if (rename(from, to) != 0)
        return errno;
    return 0;
}

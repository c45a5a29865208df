/*
 * mapping.c - open and map a whole regular file.  The mapping, not Python,
 * owns the bytes: Python receives the base address and size and wraps them in
 * buffers that keep the mapping alive.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guard.h"
#include "pyscan.h"

int pyscan_map_open(const char *path, int writable, pyscan_map *out)
{
    out->base = NULL;
    out->size = 0;
    out->writable = writable;
    out->faulted = 0;

    /* O_NONBLOCK: opening a FIFO must not wait for a writer; we reject it below. */
    int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return err;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return EFBIG;
    }
    if (st.st_size > 0) {
        void *base = mmap(NULL, (size_t)st.st_size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED,
                          fd, 0);
        if (base == MAP_FAILED) {
            int err = errno;
            close(fd);
            return err;
        }
        /* Scans read front to back once: let the kernel read ahead aggressively. */
        (void)madvise(base, (size_t)st.st_size, MADV_SEQUENTIAL);
        out->base = base;
        out->size = (uint64_t)st.st_size;
        pyscan_guard_install();
        pyscan_guard_register(out);
    }
    close(fd); /* the mapping keeps the file referenced */
    return 0;
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14; older kernels answer EINVAL, which we ignore */
#endif

/* madvise the whole pages that [offset, offset + length) touches, clipped to the file. */
static void advise_pages_touched(const pyscan_map *map, uint64_t offset, uint64_t length, int advice)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    if (map->base == NULL || length == 0 || offset >= map->size)
        return;
    if (length > map->size - offset)
        length = map->size - offset;
    uint64_t start = offset / page * page; /* madvise wants a page-aligned start */
    (void)madvise((char *)map->base + start, (size_t)(offset + length - start), advice);
}

void pyscan_map_prefetch(const pyscan_map *map, uint64_t offset, uint64_t length)
{
    advise_pages_touched(map, offset, length, MADV_POPULATE_READ);
}

/* Linux reads at most max(ra_pages, io_pages) of one MADV_WILLNEED request (force_page_cache_ra in
 * mm/readahead.c: read_ahead_kb is 128 KiB by default, often more on disks that set it) and drops the
 * rest; under MADV_RANDOM the rest then came in one page fault, one disk read, per page.  Asking in
 * steps of the default read_ahead_kb reads the whole range wherever the cap is at least that, and the
 * steps still overlap on the device (WILLNEED does not wait for its reads). */
#define WILLNEED_STEP_BYTES (128u << 10)

void pyscan_map_willneed(const pyscan_map *map, uint64_t offset, uint64_t length)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    if (map->base == NULL || length == 0 || offset >= map->size)
        return;
    if (length > map->size - offset)
        length = map->size - offset;
    /* Whole, page-aligned steps: an unaligned step would reach one page into the next step's range
     * and leave the range's last page to a fault of its own. */
    uint64_t start = offset / page * page, end = (offset + length + page - 1) / page * page;
    uint64_t step = WILLNEED_STEP_BYTES > page ? WILLNEED_STEP_BYTES / page * page : page;
    for (uint64_t at = start; at < end; at += step) {
        uint64_t left = end - at;
        (void)madvise((char *)map->base + at, (size_t)(left < step ? left : step), MADV_WILLNEED);
    }
}

void pyscan_map_advise(const pyscan_map *map, uint64_t offset, uint64_t length, int sparse)
{
    advise_pages_touched(map, offset, length, sparse ? MADV_RANDOM : MADV_SEQUENTIAL);
}

void pyscan_map_release(const pyscan_map *map, uint64_t offset, uint64_t length)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    if (map->base == NULL || length == 0 || offset >= map->size)
        return;
    if (length > map->size - offset)
        length = map->size - offset;
    uint64_t start = (offset + page - 1) / page * page, end = (offset + length) / page * page;
    if (offset + length == map->size)
        end = (map->size + page - 1) / page * page; /* the last, partial page belongs to nobody else */
    if (end > start)
        (void)madvise((char *)map->base + start, (size_t)(end - start), MADV_DONTNEED);
}

void pyscan_start_writeback(int fd, uint64_t offset, uint64_t length)
{
#if defined(__linux__)
    (void)sync_file_range(fd, (off_t)offset, (off_t)length, SYNC_FILE_RANGE_WRITE);
#else
    (void)fd;
    (void)offset;
    (void)length;
#endif
}

void pyscan_map_close(pyscan_map *map)
{
    if (map->base != NULL) {
        pyscan_guard_unregister(map);
        munmap(map->base, (size_t)map->size);
    }
    map->base = NULL;
    map->size = 0;
}

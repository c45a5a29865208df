/*
 * pipe.c - rewrite F32 words from a mapping into a file through a small
 * buffer: each piece is rewritten into the buffer, checked there, and written
 * with pwrite while it is still in the core's cache.
 *
 * Why a C loop: pwrite copying from a buffer the rewrite just filled was
 * several times slower with a 4 MiB buffer than with a few hundred KiB on this
 * project's VM (perf: the time is in copy_folio_from_iter_atomic), and pieces
 * that small cost too much as one Python call each.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "pyscan.h"

struct pyscan_write_lock {
    pthread_mutex_t mutex;
};

pyscan_write_lock *pyscan_write_lock_new(void)
{
    pyscan_write_lock *lock = malloc(sizeof *lock);
    if (lock != NULL && pthread_mutex_init(&lock->mutex, NULL) != 0) {
        free(lock);
        lock = NULL;
    }
    return lock;
}

void pyscan_write_lock_free(pyscan_write_lock *lock)
{
    if (lock != NULL) {
        pthread_mutex_destroy(&lock->mutex);
        free(lock);
    }
}

int pyscan_write_all(int fd, const void *data, size_t n, uint64_t offset, pyscan_write_lock *lock)
{
    const unsigned char *p = data;
    int error = 0;
    if (lock != NULL)
        pthread_mutex_lock(&lock->mutex);
    while (n > 0) {
        size_t step = n < ((size_t)1 << 30) ? n : ((size_t)1 << 30);
        ssize_t written = pwrite(fd, p, step, (off_t)offset);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0) {
            error = written < 0 ? errno : EIO;
            break;
        }
        p += written;
        n -= (size_t)written;
        offset += (uint64_t)written;
    }
    if (lock != NULL)
        pthread_mutex_unlock(&lock->mutex);
    return error;
}

/* One kernel call: pyscan_transform, or pyscan_fake_quant when op is PYSCAN_OP_FAKE_QUANT. */
static int rewrite(int isa, const pyscan_rewrite *how, const void *src, void *dst, size_t n, int swap,
                   pyscan_change_stats *acc)
{
    if (how->op == PYSCAN_OP_FAKE_QUANT)
        return pyscan_fake_quant(isa, src, dst, n / how->row_len, how->row_len, how->group, how->param, swap, acc);
    return pyscan_transform(isa, how->op, how->param, src, dst, n, swap, acc);
}

int pyscan_rewrite_to_file(int isa, const pyscan_rewrite *how, const pyscan_rewrite *check,
                           const void *src, size_t n, int swap,
                           void *buffer, size_t buffer_words, int fd, uint64_t offset,
                           pyscan_write_lock *lock, pyscan_change_stats *acc, int *write_error)
{
    size_t piece = buffer_words;
    int rows = how->op == PYSCAN_OP_FAKE_QUANT || check->op == PYSCAN_OP_FAKE_QUANT;
    if (rows) { /* pieces of whole rows, the same rows for both */
        int same_rows = check->op != PYSCAN_OP_FAKE_QUANT || check->row_len == how->row_len;
        if (how->row_len == 0 || n % how->row_len != 0 || !same_rows)
            return PYSCAN_ERR_REFUSED;
        piece = buffer_words / how->row_len * how->row_len;
    }
    if (piece == 0 && n > 0)
        return PYSCAN_ERR_REFUSED;
    const unsigned char *in = src;
    for (size_t done = 0; done < n; done += piece) {
        size_t len = n - done < piece ? n - done : piece;
        int status = rewrite(isa, how, in + 4 * done, buffer, len, swap, acc);
        if (status != PYSCAN_OK)
            return status;
        /* Every op here is idempotent: a second pass that changes anything means a faulty kernel. */
        pyscan_change_stats again = { 0, 0.0, 0.0, 0 };
        status = rewrite(isa, check, buffer, NULL, len, swap, &again);
        if (status != PYSCAN_OK)
            return status;
        if (again.changed != 0)
            return PYSCAN_ERR_CHECK;
        int error = pyscan_write_all(fd, buffer, 4 * len, offset + 4 * done, lock);
        if (error != 0) {
            *write_error = error;
            return PYSCAN_ERR_WRITE;
        }
    }
    return PYSCAN_OK;
}

/*
 * write_floor.c - the least work a user-space `--truncate bf16 -o` can do: a
 * lower bound for pyscan's rewrite, to tell pyscan's own overhead from the
 * machine's.
 *
 *     cc -O3 -march=native -o write_floor benchmarks/write_floor.c
 *     ./write_floor IN OUT [--fallocate]
 *
 * Maps IN, clears the low 16 bits of every 32-bit word (header included: the
 * output is only for timing) 256 KiB at a time into one buffer and pwrites
 * each piece to OUT at the same offset, prefaulting and dropping the mapping
 * in 64 MiB pieces as pyscan does.  No Python, no statistics, no check pass,
 * one thread.  --fallocate reserves OUT's blocks first (pyscan does not).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

enum { PIECE = 256 << 10, CHUNK = 64 << 20 };

static void truncate_bf16(const uint32_t *src, uint32_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i] & 0xffff0000u;
}

int main(int argc, char **argv)
{
    if (argc < 3 || (argc == 4 && strcmp(argv[3], "--fallocate") != 0) || argc > 4) {
        fprintf(stderr, "usage: %s IN OUT [--fallocate]\n", argv[0]);
        return 2;
    }
    int in = open(argv[1], O_RDONLY);
    struct stat st;
    if (in < 0 || fstat(in, &st) != 0 || st.st_size <= 0) {
        perror(argv[1]);
        return 1;
    }
    size_t size = (size_t)st.st_size & ~(size_t)3;
    const unsigned char *src = mmap(NULL, size, PROT_READ, MAP_SHARED, in, 0);
    int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    uint32_t *buffer = aligned_alloc(4096, PIECE);
    if (src == MAP_FAILED || out < 0 || buffer == NULL) {
        perror("setup");
        return 1;
    }
    if (argc == 4 && fallocate(out, 0, 0, (off_t)size) != 0) {
        perror("fallocate");
        return 1;
    }
    for (size_t chunk = 0; chunk < size; chunk += CHUNK) {
        size_t chunk_len = size - chunk < CHUNK ? size - chunk : CHUNK;
        madvise((void *)(src + chunk), chunk_len, MADV_POPULATE_READ);
        for (size_t done = 0; done < chunk_len; done += PIECE) {
            size_t len = chunk_len - done < PIECE ? chunk_len - done : PIECE;
            truncate_bf16((const uint32_t *)(src + chunk + done), buffer, len / 4);
            if (pwrite(out, buffer, len, (off_t)(chunk + done)) != (ssize_t)len) {
                perror("pwrite");
                return 1;
            }
        }
        madvise((void *)(src + chunk), chunk_len, MADV_DONTNEED);
    }
    free(buffer);
    return close(out) == 0 ? 0 : 1;
}

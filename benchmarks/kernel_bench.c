/*
 * kernel_bench.c - raw kernel throughput over a mapped file, without Python:
 * the F32 count kernel of one ISA, single-threaded, 16 MiB chunks prefaulted
 * with MADV_POPULATE_READ as pyscan does.  Used to decide what stays in the
 * kernels (e.g. software prefetch: build with -DPYSCAN_PREFETCH_BYTES=0 to
 * compare).  Build: see benchmarks/README.md.
 *
 *     kernel_bench FILE ISA [REPEATS]
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "pyscan.h"

#define CHUNK ((uint64_t)16 << 20)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s FILE ISA [REPEATS]\n", argv[0]);
        return 2;
    }
    int isa = -1;
    for (int i = 0; i < PYSCAN_ISA_COUNT; i++)
        if (strcmp(pyscan_isa_name(i), argv[2]) == 0)
            isa = i;
    if (isa < 0 || !pyscan_isa_available(isa)) {
        fprintf(stderr, "ISA %s not available\n", argv[2]);
        return 2;
    }
    int repeats = argc > 3 ? atoi(argv[3]) : 5;
    pyscan_map map;
    if (pyscan_map_open(argv[1], 0, &map) != 0) {
        perror(argv[1]);
        return 2;
    }
    double best = 1e9;
    for (int r = 0; r < repeats; r++) {
        pyscan_counts counts;
        memset(&counts, 0, sizeof counts);
        double start = now();
        for (uint64_t offset = 0; offset + 4 <= map.size; offset += CHUNK) {
            uint64_t len = map.size - offset < CHUNK ? map.size - offset : CHUNK;
            pyscan_map_prefetch(&map, offset, len);
            pyscan_count(isa, PYSCAN_F32, (const char *)map.base + offset, (size_t)(len / 4), 0, &counts);
            pyscan_map_release(&map, offset, len);
        }
        double elapsed = now() - start;
        best = elapsed < best ? elapsed : best;
    }
    printf("%s %s: %.3f s, %.2f GB/s (best of %d)\n", argv[1], argv[2], best, (double)map.size / best / 1e9, repeats);
    pyscan_map_close(&map);
    return 0;
}

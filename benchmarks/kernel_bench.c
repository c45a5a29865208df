/*
 * kernel_bench.c - raw kernel throughput over a mapped file, without Python:
 * one kernel of one ISA, single-threaded, 16 MiB chunks prefaulted with
 * MADV_POPULATE_READ as pyscan does; the file's bytes are read as the
 * kernel's elements (header and all).  Used to decide what stays in the
 * kernels (e.g. software prefetch: build with -DPYSCAN_PREFETCH_BYTES=0 to
 * compare).  Build: see benchmarks/README.md.
 *
 *     kernel_bench FILE [ISA|default] [REPEATS] [KERNEL]
 *
 * ISA "default" (or none) is pyscan_isa_default(): PYSCAN_ISA if it names an
 * available path, else the best one.  KERNEL: f32 (the default), f16, bf16
 * (counting), truncate-bf16, round-fp16, truncate-fp16, int8, int4 (dry runs;
 * fake quantization per row of 4,096).
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
    static const char *const kernels[] = {"f32", "f16", "bf16", "truncate-bf16", "round-fp16", "truncate-fp16",
                                          "int8", "int4"};
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE [ISA|default] [REPEATS] [KERNEL]\n", argv[0]);
        return 2;
    }
    const char *isa_arg = argc > 2 ? argv[2] : "default";
    int isa = strcmp(isa_arg, "default") == 0 ? pyscan_isa_default() : -1;
    for (int i = 0; i < PYSCAN_ISA_COUNT; i++)
        if (strcmp(pyscan_isa_name(i), isa_arg) == 0)
            isa = i;
    if (isa < 0 || !pyscan_isa_available(isa)) {
        fprintf(stderr, "ISA %s not available\n", isa_arg);
        return 2;
    }
    int repeats = argc > 3 ? atoi(argv[3]) : 5;
    const char *kernel_arg = argc > 4 ? argv[4] : "f32";
    int kernel = -1;
    for (int i = 0; i < (int)(sizeof kernels / sizeof *kernels); i++)
        if (strcmp(kernels[i], kernel_arg) == 0)
            kernel = i;
    if (kernel < 0) {
        fprintf(stderr, "unknown kernel %s\n", kernel_arg);
        return 2;
    }
    pyscan_map map;
    if (pyscan_map_open(argv[1], 0, &map) != 0) {
        perror(argv[1]);
        return 2;
    }
    double best = 1e9;
    for (int r = 0; r < repeats; r++) {
        pyscan_counts counts;
        pyscan_change_stats stats;
        memset(&counts, 0, sizeof counts);
        memset(&stats, 0, sizeof stats);
        double start = now();
        for (uint64_t offset = 0; offset + 4 <= map.size; offset += CHUNK) {
            uint64_t len = map.size - offset < CHUNK ? map.size - offset : CHUNK;
            const char *p = (const char *)map.base + offset;
            size_t words = (size_t)(len / 4);
            pyscan_map_prefetch(&map, offset, len);
            int status;
            switch (kernel) {
            case 0: status = pyscan_count(isa, PYSCAN_F32, p, words, 0, &counts); break;
            case 1: status = pyscan_count(isa, PYSCAN_F16, p, words * 2, 0, &counts); break;
            case 2: status = pyscan_count(isa, PYSCAN_BF16, p, words * 2, 0, &counts); break;
            case 3: status = pyscan_transform(isa, PYSCAN_OP_TRUNCATE_MANTISSA, 7, p, NULL, words, 0, &stats); break;
            case 4: status = pyscan_transform(isa, PYSCAN_OP_ROUND_FP16, 0, p, NULL, words, 0, &stats); break;
            case 5: status = pyscan_transform(isa, PYSCAN_OP_TRUNCATE_FP16, 0, p, NULL, words, 0, &stats); break;
            default:
                status = pyscan_fake_quant(isa, p, NULL, words / 4096, 4096, 4096, kernel == 6 ? 127 : 7, 0, &stats);
            }
            pyscan_map_release(&map, offset, len);
            if (status != PYSCAN_OK) {
                fprintf(stderr, "kernel call failed: %d\n", status);
                return 1;
            }
        }
        double elapsed = now() - start;
        best = elapsed < best ? elapsed : best;
    }
    printf("%s %s %s: %.3f s, %.2f GB/s (best of %d)\n", argv[1], pyscan_isa_name(isa), kernels[kernel], best,
           (double)map.size / best / 1e9, repeats);
    pyscan_map_close(&map);
    return 0;
}

/*
 * kernel.h - the internal interface of the kernels: the signatures every ISA
 * file exports and the tracker the rewrites fill.  dispatch.c builds its
 * table from these.
 *
 *   rules.h       the per-element rules in scalar C: the definition
 *   kernel_tpl.h  the loops (blocks, lane-counter flushes, prefetch, tails),
 *                 written once and included by every SIMD file after it has
 *                 defined its vector primitives
 */
#ifndef PYSCAN_KERNEL_H
#define PYSCAN_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#include "../pyscan.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "pyscan assumes a little-endian host"
#endif

/* Each ISA file defines exactly one of these, named pyscan_count_<dtype>_<isa>. */
typedef void (*pyscan_count_fn)(const void *data, size_t n, int swap, pyscan_counts *acc);

/* Largest |new - old| and |new - old| / |old| seen so far, in F32 (see pyscan.h). */
typedef struct pyscan_tracker {
    uint64_t changed;
    float max_abs;
    float max_rel;
    uint64_t skipped_groups; /* fake quantization only: see pyscan_fake_quant in pyscan.h */
} pyscan_tracker;

/*
 * Rewrites read src and, unless dst is NULL (a dry run), store to dst; with
 * dst == src only changed words are stored, otherwise every word is.
 */
typedef void (*pyscan_mantissa_fn)(const void *src, void *dst, size_t n, int swap, unsigned keep, int round,
                                   pyscan_tracker *t);
typedef void (*pyscan_fp16_fn)(const void *src, void *dst, size_t n, int swap, int toward_zero, pyscan_tracker *t);
typedef void (*pyscan_fake_quant_fn)(const void *src, void *dst, size_t n_rows, size_t row_len, size_t group,
                                     float qmax, int swap, pyscan_tracker *t);

#define PYSCAN_DECLARE_ISA(isa)                                                                              \
    void pyscan_count_f32_##isa(const void *data, size_t n, int swap, pyscan_counts *acc);                    \
    void pyscan_count_f16_##isa(const void *data, size_t n, int swap, pyscan_counts *acc);                    \
    void pyscan_count_bf16_##isa(const void *data, size_t n, int swap, pyscan_counts *acc);                   \
    void pyscan_mantissa_##isa(const void *src, void *dst, size_t n, int swap, unsigned keep, int round,      \
                               pyscan_tracker *t);                                                            \
    void pyscan_fp16_##isa(const void *src, void *dst, size_t n, int swap, int toward_zero, pyscan_tracker *t); \
    void pyscan_fake_quant_##isa(const void *src, void *dst, size_t n_rows, size_t row_len, size_t group,     \
                                 float qmax, int swap, pyscan_tracker *t);

PYSCAN_DECLARE_ISA(scalar)
PYSCAN_DECLARE_ISA(sse2)
PYSCAN_DECLARE_ISA(avx2)
PYSCAN_DECLARE_ISA(avx512)
PYSCAN_DECLARE_ISA(neon)

#endif /* PYSCAN_KERNEL_H */

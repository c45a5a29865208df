/*
 * scalar.c - the reference kernels: one element at a time, straight from the
 * rules in kernel.h.  Every other path must agree with these bit for bit.
 */
#include "kernel.h"

void pyscan_count_f32_scalar(const void *data, size_t n, int swap, pyscan_counts *acc)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        pyscan_count_f32_one(pyscan_load_u32(p + 4 * i, swap), acc);
}

void pyscan_mantissa_scalar(const void *src, void *dst, size_t n, int swap, unsigned keep, int round,
                            pyscan_tracker *t)
{
    pyscan_mantissa_tail(src, dst, n, swap, keep, round, t);
}

/* Kept scalar on purpose: this is the reference the vectorized copies are checked against. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-tree-vectorize")
#endif
PYSCAN_DEFINE_HALF_KERNELS(scalar)

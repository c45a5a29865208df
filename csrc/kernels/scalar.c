/*
 * scalar.c - the reference kernels: one element at a time, straight from the
 * rules in rules.h.  Every other path must agree with these bit for bit.
 */
#include "rules.h"

/* The reference must stay the baseline: wider flags here would make it one more SIMD path. */
#if defined(__AVX__) || defined(__AVX2__) || defined(__AVX512F__)
#error "scalar.c must be compiled at the baseline (no -mavx, -mavx2, -mavx512f, -march=...)"
#endif

/* Kept scalar on purpose: this is the reference the vector paths are checked against. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-tree-vectorize")
#endif

void pyscan_count_f32_scalar(const void *data, size_t n, int swap, pyscan_counts *acc)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        pyscan_count_f32_one(pyscan_load_u32(p + 4 * i, swap), acc);
}

void pyscan_count_f16_scalar(const void *data, size_t n, int swap, pyscan_counts *acc)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        pyscan_count_f16_one(pyscan_load_u16(p + 2 * i, swap), acc);
}

void pyscan_count_bf16_scalar(const void *data, size_t n, int swap, pyscan_counts *acc)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        pyscan_count_bf16_one(pyscan_load_u16(p + 2 * i, swap), acc);
}

void pyscan_mantissa_scalar(const void *src, void *dst, size_t n, int swap, unsigned keep, int round,
                            pyscan_tracker *t)
{
    pyscan_mantissa_tail(src, dst, n, swap, keep, round, t);
}

void pyscan_fp16_scalar(const void *src, void *dst, size_t n, int swap, int toward_zero, pyscan_tracker *t)
{
    pyscan_fp16_tail(src, dst, n, swap, toward_zero, t);
}

void pyscan_fake_quant_scalar(const void *src, void *dst, size_t n_rows, size_t row_len, size_t group,
                              float qmax, int swap, pyscan_tracker *t)
{
    const unsigned char *in = src;
    unsigned char *out = dst;
    for (size_t row = 0; row < n_rows; row++) {
        for (size_t start = 0; start < row_len; start += group) {
            size_t base = 4 * (row * row_len + start);
            size_t len = row_len - start < group ? row_len - start : group;
            uint32_t absmax = pyscan_absmax_tail(in + base, len, swap, 0);
            float scale = pyscan_fake_quant_scale(absmax, qmax);
            t->skipped_groups += scale == 0.0f && absmax != 0; /* left unchanged although not all zero */
            /* pyscan_put compares dst with src, so the offset is applied to both */
            pyscan_fake_quant_tail(in + base, out == NULL ? NULL : out + base, len, swap, scale, qmax, t);
        }
    }
}

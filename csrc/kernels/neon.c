/*
 * neon.c - the aarch64 path: 4 words per vector, four vectors (one cache
 * line) per iteration.  Same lane logic as sse2.c: compare masks are
 * all-ones where true, so subtracting them counts.
 */
#include "kernel.h"

#if !defined(__ARM_NEON)
#error "neon.c must be compiled for a CPU with NEON (any aarch64)"
#endif

#include <arm_neon.h>

#define BLOCK_WORDS (UINT64_C(1) << 24)
#ifndef PYSCAN_PREFETCH_BYTES
#define PYSCAN_PREFETCH_BYTES 2048 /* measured: see benchmarks/kernel_bench.c */
#endif
#define PREFETCH_BYTES PYSCAN_PREFETCH_BYTES

struct lanes {
    uint32x4_t low16, fp16_in_range, nan, inf, zero, subnormal, minus_one;
};

static inline __attribute__((always_inline)) void count_vector(uint32x4_t u, int swap, struct lanes *l)
{
    if (swap)
        u = vreinterpretq_u32_u8(vrev32q_u8(vreinterpretq_u8_u32(u)));
    const uint32x4_t a = vandq_u32(u, vdupq_n_u32(0x7FFFFFFF));
    const uint32x4_t inf = vdupq_n_u32(PYSCAN_F32_INF);
    const uint32x4_t is_nan = vcgtq_u32(a, inf);

    l->low16 = vsubq_u32(l->low16, vceqq_u32(vandq_u32(u, vdupq_n_u32(0xFFFF)), vdupq_n_u32(0)));
    l->nan = vsubq_u32(l->nan, is_nan);
    l->inf = vsubq_u32(l->inf, vceqq_u32(a, inf));
    l->zero = vsubq_u32(l->zero, vceqzq_u32(a));
    l->subnormal = vsubq_u32(l->subnormal, vcltq_u32(vsubq_u32(a, vdupq_n_u32(1)), vdupq_n_u32(0x7FFFFF)));

    /* FP16 drops the low max(13, 126 - e) mantissa bits; see kernel.h. */
    int32x4_t shift = vmaxq_s32(vsubq_s32(vdupq_n_s32(126), vreinterpretq_s32_u32(vshrq_n_u32(a, 23))),
                                vdupq_n_s32(13));
    shift = vminq_s32(shift, vdupq_n_s32(31));
    uint32x4_t dropped = vsubq_u32(vshlq_u32(vdupq_n_u32(1), shift), vdupq_n_u32(1));
    uint32x4_t in_range = vcltq_u32(vsubq_u32(a, vdupq_n_u32(PYSCAN_F32_FP16_LO)),
                                    vdupq_n_u32(PYSCAN_F32_FP16_HI - PYSCAN_F32_FP16_LO));
    uint32x4_t fits = vandq_u32(in_range, vceqzq_u32(vandq_u32(a, dropped)));
    l->fp16_in_range = vsubq_u32(l->fp16_in_range, fits);

    uint32x4_t d = vreinterpretq_u32_f32(vsubq_f32(vreinterpretq_f32_u32(u), vdupq_n_f32(1.0f)));
    uint32x4_t m1 = vbicq_u32(vceqzq_u32(vandq_u32(d, vdupq_n_u32(0xFFFF))), is_nan);
    l->minus_one = vsubq_u32(l->minus_one, m1);
}

static inline __attribute__((always_inline)) void count_f32(const unsigned char *p, size_t n, int swap,
                                                            pyscan_counts *c)
{
    size_t i = 0;
    while (n - i >= 16) {
        size_t stop = n - i > BLOCK_WORDS ? i + BLOCK_WORDS : n;
        struct lanes l;
        l.low16 = l.fp16_in_range = l.nan = l.inf = l.zero = l.subnormal = l.minus_one = vdupq_n_u32(0);
        size_t start = i;
        for (; stop - i >= 16; i += 16) {
            const unsigned char *q = p + 4 * i;
            if (PREFETCH_BYTES > 0)
                __builtin_prefetch(q + PREFETCH_BYTES);
            count_vector(vreinterpretq_u32_u8(vld1q_u8(q)), swap, &l);
            count_vector(vreinterpretq_u32_u8(vld1q_u8(q + 16)), swap, &l);
            count_vector(vreinterpretq_u32_u8(vld1q_u8(q + 32)), swap, &l);
            count_vector(vreinterpretq_u32_u8(vld1q_u8(q + 48)), swap, &l);
        }
        uint64_t zero = vaddlvq_u32(l.zero), inf = vaddlvq_u32(l.inf);
        c->words += i - start;
        c->low16_zero += vaddlvq_u32(l.low16);
        c->nan += vaddlvq_u32(l.nan);
        c->inf += inf;
        c->zero += zero;
        c->subnormal += vaddlvq_u32(l.subnormal);
        c->fp16_exact += vaddlvq_u32(l.fp16_in_range) + zero + inf;
        c->low16_zero_minus_one += vaddlvq_u32(l.minus_one);
    }
    for (; i < n; i++)
        pyscan_count_f32_one(pyscan_load_u32(p + 4 * i, swap), c);
}

void pyscan_count_f32_neon(const void *data, size_t n, int swap, pyscan_counts *acc)
{
    if (swap)
        count_f32(data, n, 1, acc);
    else
        count_f32(data, n, 0, acc);
}

/* Keep `keep` mantissa bits of 4 words; see sse2.c for the scheme. */
static inline __attribute__((always_inline)) void mantissa_impl(const unsigned char *src, unsigned char *dst,
                                                                size_t n, unsigned keep, pyscan_tracker *t, int swap,
                                                                int write, int round)
{
    const uint32_t dropped = 23u - keep;
    const uint32x4_t low = vdupq_n_u32((UINT32_C(1) << dropped) - 1u);
    const uint32x4_t half_minus_one = vshrq_n_u32(low, 1);
    const int32x4_t right_shift = vdupq_n_s32(-(int32_t)dropped);
    const uint32x4_t abs_mask = vdupq_n_u32(0x7FFFFFFF), inf = vdupq_n_u32(PYSCAN_F32_INF);
    const uint32x4_t quiet = vdupq_n_u32(0x00400000), one = vdupq_n_u32(1);
    uint32x4_t unchanged = vdupq_n_u32(0);
    float32x4_t max_abs = vdupq_n_f32(0.0f), max_rel = vdupq_n_f32(0.0f);
    size_t i = 0;
    for (; n - i >= 4; i += 4) {
        const unsigned char *q = src + 4 * i;
        uint32x4_t u = vreinterpretq_u32_u8(vld1q_u8(q));
        if (swap)
            u = vreinterpretq_u32_u8(vrev32q_u8(vreinterpretq_u8_u32(u)));
        uint32x4_t is_nan = vcgtq_u32(vandq_u32(u, abs_mask), inf);
        uint32x4_t r = round ? vaddq_u32(vaddq_u32(u, half_minus_one), vandq_u32(vshlq_u32(u, right_shift), one)) : u;
        r = vbicq_u32(r, low);
        r = vbslq_u32(is_nan, vorrq_u32(vbicq_u32(u, low), quiet), r);

        uint32x4_t same = vceqq_u32(r, u);
        unchanged = vsubq_u32(unchanged, same);
        uint32x4_t skip = vorrq_u32(same, is_nan);
        float32x4_t err = vabdq_f32(vreinterpretq_f32_u32(r), vreinterpretq_f32_u32(u));
        float32x4_t rel = vdivq_f32(err, vabsq_f32(vreinterpretq_f32_u32(u)));
        max_abs = vmaxq_f32(max_abs, vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(err), skip)));
        max_rel = vmaxq_f32(max_rel, vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(rel), skip)));
        if (write && (dst != src || vminvq_u32(same) == 0)) {
            uint32x4_t out = swap ? vreinterpretq_u32_u8(vrev32q_u8(vreinterpretq_u8_u32(r))) : r;
            vst1q_u8(dst + 4 * i, vreinterpretq_u8_u32(out));
        }
    }
    float abs_max = vmaxvq_f32(max_abs), rel_max = vmaxvq_f32(max_rel);
    t->max_abs = abs_max > t->max_abs ? abs_max : t->max_abs;
    t->max_rel = rel_max > t->max_rel ? rel_max : t->max_rel;
    t->changed += i - vaddlvq_u32(unchanged);
    pyscan_mantissa_tail(src + 4 * i, dst == NULL ? NULL : dst + 4 * i, n - i, swap, keep, round, t);
}

void pyscan_mantissa_neon(const void *src, void *dst, size_t n, int swap, unsigned keep, int round,
                          pyscan_tracker *t)
{
    const unsigned char *in = src;
    unsigned char *out = dst;
    PYSCAN_SPECIALIZE_REWRITE(mantissa_impl, in, out, n, keep, t, swap, round && keep < 23)
}

PYSCAN_DEFINE_HALF_KERNELS(neon)

/*
 * avx512.c - 16 words (one cache line) per vector.  AVX-512F compares give
 * bit masks, so each predicate is counted with a masked add into 32-bit
 * lanes; unsigned compares make the range tests one instruction each.
 */
#include "kernel.h"

#if !defined(__AVX512F__)
#error "avx512.c must be compiled with -mavx512f"
#endif

#include <immintrin.h>

#define BLOCK_WORDS (UINT64_C(1) << 24)
#ifndef PYSCAN_PREFETCH_BYTES
#define PYSCAN_PREFETCH_BYTES 2048 /* measured: see benchmarks/kernel_bench.c */
#endif
#define PREFETCH_BYTES PYSCAN_PREFETCH_BYTES

static inline __m512i bswap32(__m512i v)
{
    /* AVX-512F has no byte shuffle; rotate 16-bit halves, then swap bytes inside them. */
    v = _mm512_or_si512(_mm512_slli_epi32(v, 16), _mm512_srli_epi32(v, 16));
    const __m512i lo = _mm512_set1_epi32(0x00FF00FF);
    return _mm512_or_si512(_mm512_slli_epi32(_mm512_and_si512(v, lo), 8),
                           _mm512_and_si512(_mm512_srli_epi32(v, 8), lo));
}

struct lanes {
    __m512i low16, fp16_in_range, nan, inf, zero, subnormal, minus_one;
};

static inline __attribute__((always_inline)) void count_vector(__m512i u, int swap, struct lanes *l)
{
    if (swap)
        u = bswap32(u);
    const __m512i one = _mm512_set1_epi32(1);
    const __m512i a = _mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF));
    const __m512i inf = _mm512_set1_epi32((int)PYSCAN_F32_INF);
    const __mmask16 is_nan = _mm512_cmpgt_epu32_mask(a, inf);

    l->low16 = _mm512_mask_add_epi32(l->low16, _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0xFFFF)), l->low16, one);
    l->nan = _mm512_mask_add_epi32(l->nan, is_nan, l->nan, one);
    l->inf = _mm512_mask_add_epi32(l->inf, _mm512_cmpeq_epu32_mask(a, inf), l->inf, one);
    l->zero = _mm512_mask_add_epi32(l->zero, _mm512_testn_epi32_mask(a, a), l->zero, one);
    __mmask16 sub = _mm512_cmplt_epu32_mask(_mm512_sub_epi32(a, one), _mm512_set1_epi32(0x7FFFFF));
    l->subnormal = _mm512_mask_add_epi32(l->subnormal, sub, l->subnormal, one);

    /* FP16 drops the low max(13, 126 - e) mantissa bits; see kernel.h. */
    __m512i shift = _mm512_max_epi32(_mm512_sub_epi32(_mm512_set1_epi32(126), _mm512_srli_epi32(a, 23)),
                                     _mm512_set1_epi32(13));
    __m512i dropped = _mm512_sub_epi32(_mm512_sllv_epi32(one, shift), one);
    __m512i biased = _mm512_sub_epi32(a, _mm512_set1_epi32((int)PYSCAN_F32_FP16_LO));
    __mmask16 in_range = _mm512_cmplt_epu32_mask(
        biased, _mm512_set1_epi32((int)(PYSCAN_F32_FP16_HI - PYSCAN_F32_FP16_LO)));
    __mmask16 fits = _mm512_mask_testn_epi32_mask(in_range, a, dropped);
    l->fp16_in_range = _mm512_mask_add_epi32(l->fp16_in_range, fits, l->fp16_in_range, one);

    __m512i d = _mm512_castps_si512(_mm512_sub_ps(_mm512_castsi512_ps(u), _mm512_set1_ps(1.0f)));
    __mmask16 m1 = _mm512_mask_testn_epi32_mask((__mmask16)~is_nan, d, _mm512_set1_epi32(0xFFFF));
    l->minus_one = _mm512_mask_add_epi32(l->minus_one, m1, l->minus_one, one);
}

static inline uint64_t hsum(__m512i v)
{
    /* A block holds at most BLOCK_WORDS = 2^24 words, so the total fits in 32 bits. */
    return (uint32_t)_mm512_reduce_add_epi32(v);
}

static inline __attribute__((always_inline)) void count_f32(const unsigned char *p, size_t n, int swap,
                                                            pyscan_counts *c)
{
    size_t i = 0;
    while (n - i >= 16) {
        size_t stop = n - i > BLOCK_WORDS ? i + BLOCK_WORDS : n;
        struct lanes l;
        l.low16 = l.fp16_in_range = l.nan = l.inf = l.zero = l.subnormal = l.minus_one = _mm512_setzero_si512();
        size_t start = i;
        for (; stop - i >= 16; i += 16) {
            const unsigned char *q = p + 4 * i;
            if (PREFETCH_BYTES > 0)
                _mm_prefetch((const char *)q + PREFETCH_BYTES, _MM_HINT_T0);
            count_vector(_mm512_loadu_si512((const void *)q), swap, &l);
        }
        uint64_t zero = hsum(l.zero), inf = hsum(l.inf);
        c->words += i - start;
        c->low16_zero += hsum(l.low16);
        c->nan += hsum(l.nan);
        c->inf += inf;
        c->zero += zero;
        c->subnormal += hsum(l.subnormal);
        c->fp16_exact += hsum(l.fp16_in_range) + zero + inf;
        c->low16_zero_minus_one += hsum(l.minus_one);
    }
    for (; i < n; i++)
        pyscan_count_f32_one(pyscan_load_u32(p + 4 * i, swap), c);
}

void pyscan_count_f32_avx512(const void *data, size_t n, int swap, pyscan_counts *acc)
{
    if (swap)
        count_f32(data, n, 1, acc);
    else
        count_f32(data, n, 0, acc);
}

/*
 * Keep `keep` mantissa bits of 16 words; see sse2.c for the scheme.  Masks
 * make the NaN select a blend and let the store write only changed lanes.
 */
static inline __attribute__((always_inline)) void mantissa_impl(const unsigned char *src, unsigned char *dst,
                                                                size_t n, unsigned keep, pyscan_tracker *t, int swap,
                                                                int write, int round)
{
    const uint32_t dropped = 23u - keep;
    const __m512i low = _mm512_set1_epi32((int)((UINT32_C(1) << dropped) - 1u));
    const __m512i half_minus_one = _mm512_srli_epi32(low, 1);
    const __m128i shift = _mm_cvtsi32_si128((int)dropped);
    const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF), inf = _mm512_set1_epi32((int)PYSCAN_F32_INF);
    const __m512i quiet = _mm512_set1_epi32(0x00400000), one = _mm512_set1_epi32(1);
    uint64_t changed = 0;
    __m512 max_abs = _mm512_setzero_ps(), max_rel = _mm512_setzero_ps();
    size_t i = 0;
    for (; n - i >= 16; i += 16) {
        const unsigned char *q = src + 4 * i;
        __m512i u = _mm512_loadu_si512((const void *)q);
        if (swap)
            u = bswap32(u);
        __mmask16 is_nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, abs_mask), inf);
        __m512i r = round ? _mm512_add_epi32(_mm512_add_epi32(u, half_minus_one),
                                             _mm512_and_si512(_mm512_srl_epi32(u, shift), one))
                          : u;
        r = _mm512_andnot_si512(low, r);
        r = _mm512_mask_blend_epi32(is_nan, r, _mm512_or_si512(_mm512_andnot_si512(low, u), quiet));

        __mmask16 differ = _mm512_cmpneq_epu32_mask(r, u);
        changed += (uint64_t)__builtin_popcount(differ);
        __mmask16 tracked = differ & (__mmask16)~is_nan;
        __m512 old_abs = _mm512_castsi512_ps(_mm512_and_si512(u, abs_mask));
        __m512 err = _mm512_castsi512_ps(
            _mm512_and_si512(_mm512_castps_si512(_mm512_sub_ps(_mm512_castsi512_ps(r), _mm512_castsi512_ps(u))),
                             abs_mask));
        max_abs = _mm512_mask_max_ps(max_abs, tracked, max_abs, err);
        max_rel = _mm512_mask_max_ps(max_rel, tracked, max_rel, _mm512_maskz_div_ps(tracked, err, old_abs));
        if (write && dst != src)
            _mm512_storeu_si512((void *)(dst + 4 * i), swap ? bswap32(r) : r);
        else if (write && differ)
            _mm512_mask_storeu_epi32((void *)(dst + 4 * i), differ, swap ? bswap32(r) : r);
    }
    float abs_max = _mm512_reduce_max_ps(max_abs), rel_max = _mm512_reduce_max_ps(max_rel);
    t->max_abs = abs_max > t->max_abs ? abs_max : t->max_abs;
    t->max_rel = rel_max > t->max_rel ? rel_max : t->max_rel;
    t->changed += changed;
    pyscan_mantissa_tail(src + 4 * i, dst == NULL ? NULL : dst + 4 * i, n - i, swap, keep, round, t);
}

void pyscan_mantissa_avx512(const void *src, void *dst, size_t n, int swap, unsigned keep, int round,
                          pyscan_tracker *t)
{
    const unsigned char *in = src;
    unsigned char *out = dst;
    PYSCAN_SPECIALIZE_REWRITE(mantissa_impl, in, out, n, keep, t, swap, round && keep < 23)
}

PYSCAN_DEFINE_HALF_KERNELS(avx512)

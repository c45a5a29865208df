/*
 * avx2.c - 8 words per vector, two vectors (one cache line) per iteration.
 * Same lane logic as sse2.c; AVX2 adds a byte shuffle for the byte swap and
 * variable shifts for the FP16 mask.
 */
#include "kernel.h"

#if !defined(__AVX2__)
#error "avx2.c must be compiled with -mavx2"
#endif

#include <immintrin.h>

#define BLOCK_WORDS (UINT64_C(1) << 24)
#ifndef PYSCAN_PREFETCH_BYTES
#define PYSCAN_PREFETCH_BYTES 2048 /* measured: see benchmarks/kernel_bench.c */
#endif
#define PREFETCH_BYTES PYSCAN_PREFETCH_BYTES

static inline __m256i bswap32(__m256i v)
{
    const __m256i order = _mm256_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12,
                                           3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12);
    return _mm256_shuffle_epi8(v, order);
}

static inline uint64_t hsum(__m256i v)
{
    uint32_t lanes[8];
    _mm256_storeu_si256((__m256i *)lanes, v);
    uint64_t s = 0;
    for (int k = 0; k < 8; k++)
        s += lanes[k];
    return s;
}

struct lanes {
    __m256i low16, fp16_in_range, nan, inf, zero, below_normal, minus_one;
};

/*
 * One vector of 8 words; masks are all-ones where true, so subtracting one
 * counts it.  FP16 drops the low max(13, 126 - e) mantissa bits of an F32 with
 * exponent e; in range (e = 103..142) that is at most 23, so the variable
 * shift builds the mask directly.
 */
static inline __attribute__((always_inline)) void count_vector(__m256i u, int swap, struct lanes *l)
{
    if (swap)
        u = bswap32(u);
    const __m256i a = _mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF));
    const __m256i inf = _mm256_set1_epi32((int)PYSCAN_F32_INF);
    const __m256i zero = _mm256_setzero_si256();
    const __m256i is_nan = _mm256_cmpgt_epi32(a, inf);

    l->low16 = _mm256_sub_epi32(l->low16, _mm256_cmpeq_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0xFFFF)), zero));
    l->nan = _mm256_sub_epi32(l->nan, is_nan);
    l->inf = _mm256_sub_epi32(l->inf, _mm256_cmpeq_epi32(a, inf));
    l->zero = _mm256_sub_epi32(l->zero, _mm256_cmpeq_epi32(a, zero));
    l->below_normal = _mm256_sub_epi32(
        l->below_normal, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)PYSCAN_F32_MIN_NORMAL), a));

    __m256i shift = _mm256_max_epi32(_mm256_sub_epi32(_mm256_set1_epi32(126), _mm256_srli_epi32(a, 23)),
                                     _mm256_set1_epi32(13));
    __m256i dropped = _mm256_sub_epi32(_mm256_sllv_epi32(_mm256_set1_epi32(1), shift), _mm256_set1_epi32(1));
    __m256i in_range = _mm256_and_si256(_mm256_cmpgt_epi32(a, _mm256_set1_epi32((int)PYSCAN_F32_FP16_LO - 1)),
                                        _mm256_cmpgt_epi32(_mm256_set1_epi32((int)PYSCAN_F32_FP16_HI), a));
    __m256i fits = _mm256_and_si256(in_range, _mm256_cmpeq_epi32(_mm256_and_si256(a, dropped), zero));
    l->fp16_in_range = _mm256_sub_epi32(l->fp16_in_range, fits);

    __m256i d = _mm256_castps_si256(_mm256_sub_ps(_mm256_castsi256_ps(u), _mm256_set1_ps(1.0f)));
    __m256i m1 = _mm256_andnot_si256(is_nan,
                                     _mm256_cmpeq_epi32(_mm256_and_si256(d, _mm256_set1_epi32(0xFFFF)), zero));
    l->minus_one = _mm256_sub_epi32(l->minus_one, m1);
}

static inline __attribute__((always_inline)) void count_f32(const unsigned char *p, size_t n, int swap,
                                                            pyscan_counts *c)
{
    size_t i = 0;
    while (n - i >= 16) {
        size_t stop = n - i > BLOCK_WORDS ? i + BLOCK_WORDS : n;
        struct lanes l;
        l.low16 = l.fp16_in_range = l.nan = l.inf = l.zero = l.below_normal = l.minus_one =
            _mm256_setzero_si256();
        size_t start = i;
        for (; stop - i >= 16; i += 16) {
            const unsigned char *q = p + 4 * i;
            if (PREFETCH_BYTES > 0)
                _mm_prefetch((const char *)q + PREFETCH_BYTES, _MM_HINT_T0);
            count_vector(_mm256_loadu_si256((const __m256i *)q), swap, &l);
            count_vector(_mm256_loadu_si256((const __m256i *)(q + 32)), swap, &l);
        }
        uint64_t zero = hsum(l.zero), inf = hsum(l.inf);
        c->words += i - start;
        c->low16_zero += hsum(l.low16);
        c->nan += hsum(l.nan);
        c->inf += inf;
        c->zero += zero;
        c->subnormal += hsum(l.below_normal) - zero;
        c->fp16_exact += hsum(l.fp16_in_range) + zero + inf;
        c->low16_zero_minus_one += hsum(l.minus_one);
    }
    for (; i < n; i++)
        pyscan_count_f32_one(pyscan_load_u32(p + 4 * i, swap), c);
}

void pyscan_count_f32_avx2(const void *data, size_t n, int swap, pyscan_counts *acc)
{
    if (swap)
        count_f32(data, n, 1, acc);
    else
        count_f32(data, n, 0, acc);
}

/* Keep `keep` mantissa bits of 8 words; see sse2.c for the scheme. */
static inline __attribute__((always_inline)) void mantissa_impl(const unsigned char *src, unsigned char *dst,
                                                                size_t n, unsigned keep, pyscan_tracker *t, int swap,
                                                                int write, int round)
{
    const uint32_t dropped = 23u - keep;
    const __m256i low = _mm256_set1_epi32((int)((UINT32_C(1) << dropped) - 1u));
    const __m256i half_minus_one = _mm256_srli_epi32(low, 1);
    const __m128i shift = _mm_cvtsi32_si128((int)dropped);
    const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF), inf = _mm256_set1_epi32((int)PYSCAN_F32_INF);
    const __m256i quiet = _mm256_set1_epi32(0x00400000), one = _mm256_set1_epi32(1);
    __m256i unchanged = _mm256_setzero_si256();
    __m256 max_abs = _mm256_setzero_ps(), max_rel = _mm256_setzero_ps();
    size_t i = 0;
    for (; n - i >= 8; i += 8) {
        const unsigned char *q = src + 4 * i;
        __m256i stored = _mm256_loadu_si256((const __m256i *)q);
        __m256i u = swap ? bswap32(stored) : stored;
        __m256i is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
        __m256i r = round ? _mm256_add_epi32(_mm256_add_epi32(u, half_minus_one),
                                             _mm256_and_si256(_mm256_srl_epi32(u, shift), one))
                          : u;
        r = _mm256_andnot_si256(low, r);
        r = _mm256_blendv_epi8(r, _mm256_or_si256(_mm256_andnot_si256(low, u), quiet), is_nan);

        __m256i same = _mm256_cmpeq_epi32(r, u);
        unchanged = _mm256_sub_epi32(unchanged, same);
        __m256 skip = _mm256_castsi256_ps(_mm256_or_si256(same, is_nan));
        __m256 old_abs = _mm256_and_ps(_mm256_castsi256_ps(u), _mm256_castsi256_ps(abs_mask));
        __m256 err = _mm256_and_ps(_mm256_sub_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(u)),
                                   _mm256_castsi256_ps(abs_mask));
        max_abs = _mm256_max_ps(max_abs, _mm256_andnot_ps(skip, err));
        max_rel = _mm256_max_ps(max_rel, _mm256_andnot_ps(skip, _mm256_div_ps(err, old_abs)));
        if (write && (dst != src || _mm256_movemask_epi8(same) != -1))
            _mm256_storeu_si256((__m256i *)(dst + 4 * i), swap ? bswap32(r) : r);
    }
    float abs_lanes[8], rel_lanes[8];
    _mm256_storeu_ps(abs_lanes, max_abs);
    _mm256_storeu_ps(rel_lanes, max_rel);
    for (int k = 0; k < 8; k++) {
        t->max_abs = abs_lanes[k] > t->max_abs ? abs_lanes[k] : t->max_abs;
        t->max_rel = rel_lanes[k] > t->max_rel ? rel_lanes[k] : t->max_rel;
    }
    t->changed += i - hsum(unchanged);
    pyscan_mantissa_tail(src + 4 * i, dst == NULL ? NULL : dst + 4 * i, n - i, swap, keep, round, t);
}

void pyscan_mantissa_avx2(const void *src, void *dst, size_t n, int swap, unsigned keep, int round,
                          pyscan_tracker *t)
{
    const unsigned char *in = src;
    unsigned char *out = dst;
    PYSCAN_SPECIALIZE_REWRITE(mantissa_impl, in, out, n, keep, t, swap, round && keep < 23)
}

PYSCAN_DEFINE_HALF_KERNELS(avx2)

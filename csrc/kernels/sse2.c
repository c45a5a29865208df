/*
 * sse2.c - the x86-64 baseline path: 4 words per vector, one cache line per
 * loop iteration.  Counters are 32-bit lanes, flushed to 64 bits per block.
 */
#include "kernel.h"

#if !defined(__SSE2__)
#error "sse2.c must be compiled for a CPU with SSE2 (any x86-64)"
#endif

#include <emmintrin.h>

/* Words per flush of the 32-bit lane counters: far below 2^32 per lane. */
#define BLOCK_WORDS (UINT64_C(1) << 24)
#ifndef PYSCAN_PREFETCH_BYTES
#define PYSCAN_PREFETCH_BYTES 2048 /* measured: see benchmarks/kernel_bench.c */
#endif
#define PREFETCH_BYTES PYSCAN_PREFETCH_BYTES

static inline __m128i bswap32(__m128i v)
{
    v = _mm_or_si128(_mm_slli_epi16(v, 8), _mm_srli_epi16(v, 8));
    v = _mm_shufflelo_epi16(v, _MM_SHUFFLE(2, 3, 0, 1));
    return _mm_shufflehi_epi16(v, _MM_SHUFFLE(2, 3, 0, 1));
}

static inline uint64_t hsum(__m128i v)
{
    uint32_t lanes[4];
    _mm_storeu_si128((__m128i *)lanes, v);
    return (uint64_t)lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

struct lanes {
    __m128i low16, fp16_in_range, nan, inf, zero, below_normal, minus_one;
};

/*
 * One vector of 4 words.  Lane masks are all-ones where true, so
 * subtracting a mask adds one to that lane's count.
 *
 * FP16 exactness without variable shifts: for exponent e the bits FP16 drops
 * are the low max(13, 126 - e) mantissa bits.  2^(126 - e) is built as a float
 * by subtracting the exponent field from that of 2^126, clamped below at
 * 2^13, and converted to an integer; minus one it is the mask of dropped bits.
 */
static inline __attribute__((always_inline)) void count_vector(__m128i u, int swap, struct lanes *l)
{
    if (swap)
        u = bswap32(u);
    const __m128i a = _mm_and_si128(u, _mm_set1_epi32(0x7FFFFFFF));
    const __m128i inf = _mm_set1_epi32((int)PYSCAN_F32_INF);
    const __m128i zero = _mm_setzero_si128();
    const __m128i is_nan = _mm_cmpgt_epi32(a, inf);

    l->low16 = _mm_sub_epi32(l->low16, _mm_cmpeq_epi32(_mm_and_si128(u, _mm_set1_epi32(0xFFFF)), zero));
    l->nan = _mm_sub_epi32(l->nan, is_nan);
    l->inf = _mm_sub_epi32(l->inf, _mm_cmpeq_epi32(a, inf));
    l->zero = _mm_sub_epi32(l->zero, _mm_cmpeq_epi32(a, zero));
    l->below_normal = _mm_sub_epi32(l->below_normal, _mm_cmplt_epi32(a, _mm_set1_epi32((int)PYSCAN_F32_MIN_NORMAL)));

    __m128i exp_field = _mm_and_si128(a, inf);
    __m128 pow2 = _mm_castsi128_ps(_mm_sub_epi32(_mm_set1_epi32(0x7E800000), exp_field));
    __m128i dropped = _mm_sub_epi32(_mm_cvttps_epi32(_mm_max_ps(pow2, _mm_set1_ps(8192.0f))), _mm_set1_epi32(1));
    __m128i in_range = _mm_and_si128(_mm_cmpgt_epi32(a, _mm_set1_epi32((int)PYSCAN_F32_FP16_LO - 1)),
                                     _mm_cmplt_epi32(a, _mm_set1_epi32((int)PYSCAN_F32_FP16_HI)));
    __m128i fits = _mm_and_si128(in_range, _mm_cmpeq_epi32(_mm_and_si128(a, dropped), zero));
    l->fp16_in_range = _mm_sub_epi32(l->fp16_in_range, fits);

    __m128i d = _mm_castps_si128(_mm_sub_ps(_mm_castsi128_ps(u), _mm_set1_ps(1.0f)));
    __m128i m1 = _mm_andnot_si128(is_nan, _mm_cmpeq_epi32(_mm_and_si128(d, _mm_set1_epi32(0xFFFF)), zero));
    l->minus_one = _mm_sub_epi32(l->minus_one, m1);
}

static inline __attribute__((always_inline)) void count_f32(const unsigned char *p, size_t n, int swap,
                                                            pyscan_counts *c)
{
    size_t i = 0;
    while (n - i >= 16) {
        size_t stop = n - i > BLOCK_WORDS ? i + BLOCK_WORDS : n;
        struct lanes l;
        l.low16 = l.fp16_in_range = l.nan = l.inf = l.zero = l.below_normal = l.minus_one = _mm_setzero_si128();
        size_t start = i;
        for (; stop - i >= 16; i += 16) {
            const unsigned char *q = p + 4 * i;
            if (PREFETCH_BYTES > 0)
                _mm_prefetch((const char *)q + PREFETCH_BYTES, _MM_HINT_T0);
            count_vector(_mm_loadu_si128((const __m128i *)q), swap, &l);
            count_vector(_mm_loadu_si128((const __m128i *)(q + 16)), swap, &l);
            count_vector(_mm_loadu_si128((const __m128i *)(q + 32)), swap, &l);
            count_vector(_mm_loadu_si128((const __m128i *)(q + 48)), swap, &l);
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

void pyscan_count_f32_sse2(const void *data, size_t n, int swap, pyscan_counts *acc)
{
    if (swap)
        count_f32(data, n, 1, acc);
    else
        count_f32(data, n, 0, acc);
}

/*
 * Keep `keep` mantissa bits of 4 words (the rule is pyscan_keep_mantissa in
 * kernel.h).  A vector is stored only if a lane changed, so pages of
 * tensors that are already exact stay clean.
 */
static inline __attribute__((always_inline)) void mantissa_impl(const unsigned char *src, unsigned char *dst,
                                                                size_t n, unsigned keep, pyscan_tracker *t, int swap,
                                                                int write, int round)
{
    const uint32_t dropped = 23u - keep;
    const __m128i low = _mm_set1_epi32((int)((UINT32_C(1) << dropped) - 1u));
    const __m128i half_minus_one = _mm_srli_epi32(low, 1);
    const __m128i shift = _mm_cvtsi32_si128((int)dropped);
    const __m128i abs_mask = _mm_set1_epi32(0x7FFFFFFF), inf = _mm_set1_epi32((int)PYSCAN_F32_INF);
    const __m128i quiet = _mm_set1_epi32(0x00400000), one = _mm_set1_epi32(1), ones = _mm_set1_epi32(-1);
    __m128i unchanged = _mm_setzero_si128();
    __m128 max_abs = _mm_setzero_ps(), max_rel = _mm_setzero_ps();
    size_t i = 0;
    for (; n - i >= 4; i += 4) {
        const unsigned char *q = src + 4 * i;
        __m128i stored = _mm_loadu_si128((const __m128i *)q);
        __m128i u = swap ? bswap32(stored) : stored;
        __m128i is_nan = _mm_cmpgt_epi32(_mm_and_si128(u, abs_mask), inf);
        __m128i r = round ? _mm_add_epi32(_mm_add_epi32(u, half_minus_one), _mm_and_si128(_mm_srl_epi32(u, shift), one))
                          : u;
        r = _mm_andnot_si128(low, r);
        __m128i nan_r = _mm_or_si128(_mm_andnot_si128(low, u), quiet);
        r = _mm_or_si128(_mm_and_si128(is_nan, nan_r), _mm_andnot_si128(is_nan, r));

        __m128i same = _mm_cmpeq_epi32(r, u);
        unchanged = _mm_sub_epi32(unchanged, same);
        __m128 tracked = _mm_castsi128_ps(_mm_andnot_si128(_mm_or_si128(same, is_nan), ones));
        __m128 old_abs = _mm_and_ps(_mm_castsi128_ps(u), _mm_castsi128_ps(abs_mask));
        __m128 err = _mm_and_ps(_mm_sub_ps(_mm_castsi128_ps(r), _mm_castsi128_ps(u)), _mm_castsi128_ps(abs_mask));
        max_abs = _mm_max_ps(max_abs, _mm_and_ps(err, tracked));
        max_rel = _mm_max_ps(max_rel, _mm_and_ps(_mm_div_ps(err, old_abs), tracked));
        if (write && (dst != src || _mm_movemask_epi8(same) != 0xFFFF))
            _mm_storeu_si128((__m128i *)(dst + 4 * i), swap ? bswap32(r) : r);
    }
    float abs_lanes[4], rel_lanes[4];
    _mm_storeu_ps(abs_lanes, max_abs);
    _mm_storeu_ps(rel_lanes, max_rel);
    for (int k = 0; k < 4; k++) {
        t->max_abs = abs_lanes[k] > t->max_abs ? abs_lanes[k] : t->max_abs;
        t->max_rel = rel_lanes[k] > t->max_rel ? rel_lanes[k] : t->max_rel;
    }
    t->changed += i - hsum(unchanged);
    pyscan_mantissa_tail(src + 4 * i, dst == NULL ? NULL : dst + 4 * i, n - i, swap, keep, round, t);
}

void pyscan_mantissa_sse2(const void *src, void *dst, size_t n, int swap, unsigned keep, int round,
                          pyscan_tracker *t)
{
    const unsigned char *in = src;
    unsigned char *out = dst;
    PYSCAN_SPECIALIZE_REWRITE(mantissa_impl, in, out, n, keep, t, swap, round && keep < 23)
}

PYSCAN_DEFINE_HALF_KERNELS(sse2)

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
#define PREFETCH_BYTES 2048

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

PYSCAN_DEFINE_HALF_KERNELS(avx2)

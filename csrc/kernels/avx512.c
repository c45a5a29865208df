/*
 * avx512.c - 16 words (32 halves, one cache line) per vector, built with
 * -mavx512f -mavx512bw.  This file defines the vector primitives; the loops
 * are in kernel_tpl.h.  Compares give bit masks, so each predicate is counted
 * with a masked add, blends are one instruction, and unsigned compares make
 * the range tests one instruction each.
 */
#include "rules.h"

#if !defined(__AVX512F__) || !defined(__AVX512BW__)
#error "avx512.c must be compiled with -mavx512f -mavx512bw"
#endif

#include <immintrin.h>

#define TPL_ISA avx512
#define VEC_BYTES 64
typedef __m512i vec;
typedef __m512 vecf;

static inline vec vload(const unsigned char *p) { return _mm512_loadu_si512((const void *)p); }
static inline void vstore(unsigned char *p, vec v) { _mm512_storeu_si512((void *)p, v); }
static inline vec vzero(void) { return _mm512_setzero_si512(); }
static inline vecf vsetf(float f) { return _mm512_set1_ps(f); }
static inline vec set32(uint32_t x) { return _mm512_set1_epi32((int)x); }
static inline vec set16(uint32_t x) { return _mm512_set1_epi16((short)(uint16_t)x); }
/* __builtin_prefetch, not _mm_prefetch: GCC 12 emitted no prefetch at all from the intrinsic here
 * (0 in the object; the template's loops ran 2x slower from memory). */
static inline void tpl_prefetch(const unsigned char *p) { __builtin_prefetch(p, 0, 3); }
static inline vec count32(vec c, __mmask16 m) { return _mm512_mask_add_epi32(c, m, c, set32(1)); }
static inline vec count16(vec c, __mmask32 m) { return _mm512_mask_add_epi16(c, m, c, set16(1)); }

static inline vec vbswap32(vec v)
{
    const vec order = _mm512_broadcast_i32x4(_mm_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12));
    return _mm512_shuffle_epi8(v, order);
}

static inline vec vbswap16(vec v) { return _mm512_or_si512(_mm512_slli_epi16(v, 8), _mm512_srli_epi16(v, 8)); }

/* A block holds at most 2^24 words per lane set, so the 32-bit sums do not wrap. */
static inline uint64_t vhsum32(vec v)
{
    uint32_t lanes[16];
    _mm512_storeu_si512((void *)lanes, v);
    uint64_t s = 0;
    for (int k = 0; k < 16; k++)
        s += lanes[k];
    return s;
}

static inline uint64_t vhsum16(vec v)
{
    return vhsum32(_mm512_add_epi32(_mm512_and_si512(v, set32(0xFFFF)), _mm512_srli_epi32(v, 16)));
}

static inline uint32_t vhmax32(vec v) { return (uint32_t)_mm512_reduce_max_epu32(v); }

struct f32_lanes {
    vec low16, fp16, nan, inf, zero, sub, minus_one;
};
struct half_lanes {
    vec nan, inf, zero, sub, exact;
};

/* F32 -> FP16 (toward zero, or nearest with ties to even) -> F32: the rewrites' rounding,
 * and, nearest, the F32 count's exactness test: a finite word comes back unchanged iff it is
 * FP16-exact (rules.h's rule); NaNs, zeros and infinities are counted apart there. */
static inline __attribute__((always_inline)) vec fp16_round_trip(vec u, int toward_zero)
{
    __m512 x = _mm512_castsi512_ps(u);
    __m256i h = toward_zero ? _mm512_cvtps_ph(x, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC)
                            : _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm512_castps_si512(_mm512_cvtph_ps(h));
}

static inline __attribute__((always_inline)) void f32_vector(vec u, struct f32_lanes *l)
{
    l->low16 = count32(l->low16, _mm512_testn_epi32_mask(u, set32(0xFFFF)));
    l->fp16 = count32(l->fp16, _mm512_cmpeq_epi32_mask(fp16_round_trip(u, 0), u));
    vec d = _mm512_castps_si512(_mm512_sub_ps(_mm512_castsi512_ps(u), _mm512_set1_ps(1.0f)));
    l->minus_one = count32(l->minus_one, _mm512_testn_epi32_mask(d, set32(0xFFFF)));
}

/* Exponent field 0 or 255: adding 1 to it leaves 0 or 1, so its top 7 bits (24..30) are zero. */
static inline __attribute__((always_inline)) int f32_any_special(vec u)
{
    vec bumped = _mm512_add_epi32(u, set32(PYSCAN_F32_MIN_NORMAL));
    return _mm512_testn_epi32_mask(bumped, set32(0x7F000000u)) != 0;
}

static inline __attribute__((always_inline)) void f32_special_vector(vec u, struct f32_lanes *l)
{
    const vec a = _mm512_and_si512(u, set32(PYSCAN_F32_ABS));
    const vec inf = set32(PYSCAN_F32_INF);
    const __mmask16 is_nan = _mm512_cmpgt_epu32_mask(a, inf);
    l->nan = count32(l->nan, is_nan);
    l->inf = count32(l->inf, _mm512_cmpeq_epu32_mask(a, inf));
    l->zero = count32(l->zero, _mm512_testn_epi32_mask(a, a));
    l->sub = count32(l->sub, _mm512_cmplt_epu32_mask(_mm512_sub_epi32(a, set32(1)), set32(0x7FFFFF)));
    /* f32_vector counted every lane whose u - 1 has zero low bits; a NaN is never BF16 + 1. */
    vec d = _mm512_castps_si512(_mm512_sub_ps(_mm512_castsi512_ps(u), _mm512_set1_ps(1.0f)));
    __mmask16 counted_nan = _mm512_mask_testn_epi32_mask(is_nan, d, set32(0xFFFF));
    l->minus_one = _mm512_mask_sub_epi32(l->minus_one, counted_nan, l->minus_one, set32(1));
    /* f32_vector counted the zeros, infinities and NaNs whose round trip gave them back. */
    __mmask16 apart = _mm512_cmpge_epu32_mask(a, inf) | _mm512_testn_epi32_mask(a, a);
    __mmask16 counted = _mm512_mask_cmpeq_epi32_mask(apart, fp16_round_trip(u, 0), u);
    l->fp16 = _mm512_mask_sub_epi32(l->fp16, counted, l->fp16, set32(1));
}

/* The F16 magnitude a is BF16-exact iff (a & m) == 0, m = 7 / 3 / 1 / 0 (see rules.h; NaNs too). */
static inline __attribute__((always_inline)) void f16_vector(vec h, struct half_lanes *l)
{
    const vec a = _mm512_and_si512(h, set16(0x7FFF));
    const __mmask32 is_nan = _mm512_cmpgt_epu16_mask(a, set16(0x7C00));
    l->nan = count16(l->nan, is_nan);
    l->inf = count16(l->inf, _mm512_cmpeq_epu16_mask(a, set16(0x7C00)));
    l->zero = count16(l->zero, _mm512_testn_epi16_mask(a, a));
    l->sub = count16(l->sub, _mm512_cmplt_epu16_mask(_mm512_sub_epi16(a, set16(1)), set16(0x03FF)));
    vec m = _mm512_maskz_mov_epi16(_mm512_cmpgt_epu16_mask(a, set16(0x00FF)), set16(1));
    m = _mm512_mask_mov_epi16(m, _mm512_cmpgt_epu16_mask(a, set16(0x01FF)), set16(3));
    m = _mm512_mask_mov_epi16(m, _mm512_cmpgt_epu16_mask(a, set16(0x03FF)), set16(7));
    l->exact = count16(l->exact, _mm512_testn_epi16_mask(a, m));
}

/* BF16 -> FP16 exactness: the mask 2^(110 - e) - 1 from a byte table, as in avx2.c. */
static inline __attribute__((always_inline)) void bf16_vector(vec h, struct half_lanes *l)
{
    const vec a = _mm512_and_si512(h, set16(0x7FFF));
    const __mmask32 is_inf = _mm512_cmpeq_epu16_mask(a, set16(0x7F80)), is_zero = _mm512_testn_epi16_mask(a, a);
    l->nan = count16(l->nan, _mm512_cmpgt_epu16_mask(a, set16(0x7F80)));
    l->inf = count16(l->inf, is_inf);
    l->zero = count16(l->zero, is_zero);
    l->sub = count16(l->sub, _mm512_cmplt_epu16_mask(_mm512_sub_epi16(a, set16(1)), set16(0x007F)));
    const vec table = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 127, 63, 31, 15, 7, 3, 1, 0, 0));
    vec m = _mm512_shuffle_epi8(table, _mm512_sub_epi16(_mm512_srli_epi16(a, 7), set16(96)));
    __mmask32 low_range = _mm512_cmplt_epu16_mask(_mm512_sub_epi16(a, set16(0x3380)), set16(0x3780 - 0x3380));
    __mmask32 high_range = _mm512_cmplt_epu16_mask(_mm512_sub_epi16(a, set16(0x3780)), set16(0x4780 - 0x3780));
    __mmask32 exact = is_zero | is_inf | high_range | _mm512_mask_testn_epi16_mask(low_range, a, m);
    l->exact = count16(l->exact, exact);
}

/* ---- rewrites ---------------------------------------------------------------- */

struct mantissa_k {
    vec low, half_minus_one, lsb_mask /* 1, or 0 when nothing is dropped */;
    __m128i shift;
};

static inline struct mantissa_k mantissa_setup(unsigned keep)
{
    struct mantissa_k k;
    uint32_t dropped = 23u - keep;
    k.low = set32((UINT32_C(1) << dropped) - 1u);
    k.lsb_mask = set32(dropped > 0 ? 1u : 0u);
    k.half_minus_one = _mm512_srli_epi32(k.low, 1);
    k.shift = _mm_cvtsi32_si128((int)dropped);
    return k;
}

static inline __mmask16 nan_mask(vec u)
{
    return _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, set32(PYSCAN_F32_ABS)), set32(PYSCAN_F32_INF));
}

/* pyscan_keep_mantissa on 16 words. */
static inline __attribute__((always_inline)) vec mantissa_vector(vec u, const struct mantissa_k *k, int round)
{
    vec r = round ? _mm512_add_epi32(_mm512_add_epi32(u, k->half_minus_one),
                                     _mm512_and_si512(_mm512_srl_epi32(u, k->shift), k->lsb_mask))
                  : u;
    r = _mm512_andnot_si512(k->low, r);
    __mmask16 is_nan = nan_mask(u);
    if (__builtin_expect(is_nan != 0, 0)) { /* NaNs are rare: skip their rule when there are none */
        vec nan_r = round ? _mm512_or_si512(_mm512_and_si512(u, set32(0x80000000u)), set32(0x7FC00000u))
                          : _mm512_or_si512(_mm512_andnot_si512(k->low, u), set32(0x00400000u));
        r = _mm512_mask_blend_epi32(is_nan, r, nan_r);
    }
    return r;
}

/* pyscan_fp16_round_trip on 16 words with vcvtps2ph / vcvtph2ps; see avx2.c. */
static inline __attribute__((always_inline)) vec fp16_vector(vec u, int toward_zero)
{
    vec r = fp16_round_trip(u, toward_zero);
    __mmask16 is_nan = nan_mask(u);
    if (__builtin_expect(is_nan != 0, 0)) {
        vec nan_r = _mm512_or_si512(_mm512_and_si512(u, set32(0xFFFFE000u)),
                                    _mm512_maskz_mov_epi32(_mm512_testn_epi32_mask(u, set32(0x007FE000u)), set32(0x2000)));
        r = _mm512_mask_blend_epi32(is_nan, r, nan_r);
    }
    return r;
}

static inline vec absmax_vector(vec cur, vec u)
{
    vec a = _mm512_and_si512(u, set32(PYSCAN_F32_ABS));
    return _mm512_mask_max_epu32(cur, _mm512_cmplt_epu32_mask(a, set32(PYSCAN_F32_INF)), cur, a);
}

/*
 * pyscan_fake_quant_one on 16 words; see sse2.c for the int32 round trip and the sign.
 *
 * rint(x / s) without the division: y = x * fl(1/s) is within 2^-16 of x / s (|x / s| <= 128.6,
 * two roundings of 2^-24 relative each), and fl(x / s) within 2^-17 of it.  So where y is more
 * than 2^-14 from every half-integer, no rounding boundary lies between y and fl(x / s), and
 * rint(y) == rint(fl(x / s)).  The rare lanes nearer a tie (about 1 in 8,000; all of them when
 * inv is NaN) take the division.  A zero's sign may differ; the sign of x is ORed in below.
 */
static inline __attribute__((always_inline)) vec quant_vector(vec u, vecf scale, vecf qmax, vecf inv)
{
    __m512 x = _mm512_castsi512_ps(u);
    __mmask16 finite = _mm512_cmplt_epu32_mask(_mm512_and_si512(u, set32(PYSCAN_F32_ABS)), set32(PYSCAN_F32_INF));
    __m512 y = _mm512_mul_ps(x, inv);
    __m512 q = _mm512_roundscale_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 off = _mm512_abs_ps(_mm512_sub_ps(y, q)); /* exact */
    __mmask16 near_tie = _mm512_mask_cmp_ps_mask(finite, off, _mm512_set1_ps(0.5f - 0x1p-14f), _CMP_NLT_UQ);
    if (near_tie)
        q = _mm512_mask_mov_ps(q, near_tie, _mm512_cvtepi32_ps(_mm512_cvtps_epi32(_mm512_div_ps(x, scale))));
    q = _mm512_min_ps(_mm512_max_ps(q, _mm512_sub_ps(_mm512_setzero_ps(), qmax)), qmax);
    vec r = _mm512_or_si512(_mm512_castps_si512(_mm512_mul_ps(q, scale)), _mm512_and_si512(u, set32(0x80000000u)));
    if (__builtin_expect(finite != 0xFFFF, 0)) /* infinities and NaNs stay */
        r = _mm512_mask_blend_epi32(finite, u, r);
    return r;
}

struct track_lanes {
    uint64_t changed;
    __m512 max_abs, max_rel;
};

static inline void track_init(struct track_lanes *tl)
{
    tl->changed = 0;
    tl->max_abs = tl->max_rel = _mm512_setzero_ps();
}

static inline __attribute__((always_inline)) int track_vector(struct track_lanes *tl, vec u, vec r)
{
    const vec abs_mask = set32(PYSCAN_F32_ABS);
    __mmask16 differ = _mm512_cmpneq_epu32_mask(r, u);
    tl->changed += (uint64_t)__builtin_popcount(differ);
    __mmask16 tracked = differ & (__mmask16)~nan_mask(u);
    __m512 old_abs = _mm512_castsi512_ps(_mm512_and_si512(u, abs_mask));
    __m512 err = _mm512_castsi512_ps(
        _mm512_and_si512(_mm512_castps_si512(_mm512_sub_ps(_mm512_castsi512_ps(r), _mm512_castsi512_ps(u))), abs_mask));
    tl->max_abs = _mm512_mask_max_ps(tl->max_abs, tracked, tl->max_abs, err);
    tl->max_rel = _mm512_mask_max_ps(tl->max_rel, tracked, tl->max_rel, _mm512_maskz_div_ps(tracked, err, old_abs));
    return differ != 0;
}

static inline void track_flush(struct track_lanes *tl, pyscan_tracker *t)
{
    float abs_max = _mm512_reduce_max_ps(tl->max_abs), rel_max = _mm512_reduce_max_ps(tl->max_rel);
    t->max_abs = abs_max > t->max_abs ? abs_max : t->max_abs;
    t->max_rel = rel_max > t->max_rel ? rel_max : t->max_rel;
    t->changed += tl->changed;
    track_init(tl);
}

#include "kernel_tpl.h"

/*
 * sse2.c - the x86-64 baseline path: 4 words (8 halves) per vector.  This
 * file defines the vector primitives; the loops are in kernel_tpl.h.
 * Compare masks are all-ones where true, so subtracting a mask counts it.
 */
#include "rules.h"

#if !defined(__SSE2__)
#error "sse2.c must be compiled for a CPU with SSE2 (any x86-64)"
#endif
/* The baseline path must not use what its flags do not promise every x86-64 CPU. */
#if defined(__AVX__) || defined(__AVX2__) || defined(__AVX512F__)
#error "sse2.c must be compiled at the x86-64 baseline (no -mavx, -mavx2, -mavx512f, -march=...)"
#endif

#include <emmintrin.h>

#define TPL_ISA sse2
#define VEC_BYTES 16
typedef __m128i vec;
typedef __m128 vecf;

static inline vec vload(const unsigned char *p) { return _mm_loadu_si128((const __m128i *)(const void *)p); }
static inline void vstore(unsigned char *p, vec v) { _mm_storeu_si128((__m128i *)(void *)p, v); }
static inline vec vzero(void) { return _mm_setzero_si128(); }
static inline vecf vsetf(float f) { return _mm_set1_ps(f); }
static inline vec set32(uint32_t x) { return _mm_set1_epi32((int)x); }
static inline vec set16(uint32_t x) { return _mm_set1_epi16((short)(uint16_t)x); }
/* __builtin_prefetch, not _mm_prefetch: GCC 12 emitted no prefetch at all from the intrinsic here
 * (0 in the object; the template's loops ran 2x slower from memory). */
static inline void tpl_prefetch(const unsigned char *p) { __builtin_prefetch(p, 0, 3); }
/* mask ? a : b */
static inline vec select(vec mask, vec a, vec b) { return _mm_or_si128(_mm_and_si128(mask, a), _mm_andnot_si128(mask, b)); }

static inline vec vbswap16(vec v) { return _mm_or_si128(_mm_slli_epi16(v, 8), _mm_srli_epi16(v, 8)); }

static inline vec vbswap32(vec v)
{
    v = vbswap16(v);
    v = _mm_shufflelo_epi16(v, _MM_SHUFFLE(2, 3, 0, 1));
    return _mm_shufflehi_epi16(v, _MM_SHUFFLE(2, 3, 0, 1));
}

static inline uint64_t vhsum32(vec v)
{
    uint32_t lanes[4];
    _mm_storeu_si128((__m128i *)(void *)lanes, v);
    return (uint64_t)lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

static inline uint64_t vhsum16(vec v)
{
    const vec low = set32(0xFFFF);
    return vhsum32(_mm_add_epi32(_mm_and_si128(v, low), _mm_srli_epi32(v, 16)));
}

static inline uint32_t vhmax32(vec v)
{
    uint32_t lanes[4], m = 0;
    _mm_storeu_si128((__m128i *)(void *)lanes, v);
    for (int k = 0; k < 4; k++)
        m = lanes[k] > m ? lanes[k] : m;
    return m;
}

struct f32_lanes {
    vec low16, fp16, nan, inf, zero, sub, minus_one;
};
struct half_lanes {
    vec nan, inf, zero, sub, exact;
};

/*
 * One vector of 4 F32 words.  FP16 exactness without variable shifts: for
 * exponent e the bits FP16 drops are the low max(13, 126 - e) mantissa bits.
 * 2^(126 - e) is built as a float by subtracting the exponent field from that
 * of 2^126, clamped below at 2^13, and converted to an integer; minus one it
 * is the mask of dropped bits.
 */
static inline vec fp16_drop_pow2(vec a)
{
    __m128 pow2 = _mm_castsi128_ps(_mm_sub_epi32(set32(0x7E800000), _mm_and_si128(a, set32(PYSCAN_F32_INF))));
    return _mm_cvttps_epi32(_mm_max_ps(pow2, _mm_set1_ps(8192.0f)));
}

static inline __attribute__((always_inline)) void f32_vector(vec u, struct f32_lanes *l)
{
    const vec a = _mm_and_si128(u, set32(PYSCAN_F32_ABS));
    const vec zero = vzero();
    l->low16 = _mm_sub_epi32(l->low16, _mm_cmpeq_epi32(_mm_and_si128(u, set32(0xFFFF)), zero));

    vec dropped = _mm_sub_epi32(fp16_drop_pow2(a), set32(1));
    vec in_range = _mm_and_si128(_mm_cmpgt_epi32(a, set32(PYSCAN_F32_FP16_LO - 1)),
                                 _mm_cmplt_epi32(a, set32(PYSCAN_F32_FP16_HI)));
    l->fp16 = _mm_sub_epi32(l->fp16, _mm_and_si128(in_range, _mm_cmpeq_epi32(_mm_and_si128(a, dropped), zero)));

    vec d = _mm_castps_si128(_mm_sub_ps(_mm_castsi128_ps(u), _mm_set1_ps(1.0f)));
    l->minus_one = _mm_sub_epi32(l->minus_one, _mm_cmpeq_epi32(_mm_and_si128(d, set32(0xFFFF)), zero));
}

/*
 * Exponent field 0 (zero, subnormal) or 255 (infinity, NaN): a + 2^23 carries the exponent up by
 * one, so field 0 lands below 2^24 and field 255 overflows into the sign (negative as signed);
 * every normal number gives a word from 2^24 up.
 */
static inline __attribute__((always_inline)) int f32_any_special(vec u)
{
    vec biased = _mm_add_epi32(_mm_and_si128(u, set32(PYSCAN_F32_ABS)), set32(PYSCAN_F32_MIN_NORMAL));
    return _mm_movemask_epi8(_mm_cmplt_epi32(biased, set32(2 * PYSCAN_F32_MIN_NORMAL))) != 0;
}

static inline __attribute__((always_inline)) void f32_special_vector(vec u, struct f32_lanes *l)
{
    const vec a = _mm_and_si128(u, set32(PYSCAN_F32_ABS));
    const vec inf = set32(PYSCAN_F32_INF), zero = vzero();
    const vec is_nan = _mm_cmpgt_epi32(a, inf), is_zero = _mm_cmpeq_epi32(a, zero);
    l->nan = _mm_sub_epi32(l->nan, is_nan);
    l->inf = _mm_sub_epi32(l->inf, _mm_cmpeq_epi32(a, inf));
    l->zero = _mm_sub_epi32(l->zero, is_zero);
    l->sub = _mm_sub_epi32(l->sub, _mm_andnot_si128(is_zero, _mm_cmplt_epi32(a, set32(PYSCAN_F32_MIN_NORMAL))));
    /* f32_vector counted every lane whose u - 1 has zero low bits; a NaN is never BF16 + 1. */
    vec d = _mm_castps_si128(_mm_sub_ps(_mm_castsi128_ps(u), _mm_set1_ps(1.0f)));
    l->minus_one = _mm_add_epi32(l->minus_one, _mm_and_si128(is_nan, _mm_cmpeq_epi32(_mm_and_si128(d, set32(0xFFFF)), zero)));
}

/* The F16 magnitude a is BF16-exact iff (a & m) == 0, m = 7 / 3 / 1 / 0 (see rules.h; NaNs too). */
static inline __attribute__((always_inline)) void f16_vector(vec h, struct half_lanes *l)
{
    const vec a = _mm_and_si128(h, set16(0x7FFF)), zero = vzero();
    const vec is_nan = _mm_cmpgt_epi16(a, set16(0x7C00)), is_zero = _mm_cmpeq_epi16(a, zero);
    l->nan = _mm_sub_epi16(l->nan, is_nan);
    l->inf = _mm_sub_epi16(l->inf, _mm_cmpeq_epi16(a, set16(0x7C00)));
    l->zero = _mm_sub_epi16(l->zero, is_zero);
    l->sub = _mm_sub_epi16(l->sub, _mm_andnot_si128(is_zero, _mm_cmplt_epi16(a, set16(0x0400))));
    vec m = _mm_or_si128(_mm_and_si128(_mm_cmpgt_epi16(a, set16(0x03FF)), set16(4)),
                         _mm_or_si128(_mm_and_si128(_mm_cmpgt_epi16(a, set16(0x01FF)), set16(2)),
                                      _mm_and_si128(_mm_cmpgt_epi16(a, set16(0x00FF)), set16(1))));
    l->exact = _mm_sub_epi16(l->exact, _mm_cmpeq_epi16(_mm_and_si128(a, m), zero));
}

/*
 * The BF16 magnitude a with exponent e in 103..110 is FP16-exact iff its low
 * 110 - e bits are zero.  Without a variable shift, that mask is built bit by
 * bit: bit j is set iff e < 110 - j.
 */
static inline __attribute__((always_inline)) void bf16_vector(vec h, struct half_lanes *l)
{
    const vec a = _mm_and_si128(h, set16(0x7FFF)), zero = vzero();
    const vec is_inf = _mm_cmpeq_epi16(a, set16(0x7F80)), is_zero = _mm_cmpeq_epi16(a, zero);
    l->nan = _mm_sub_epi16(l->nan, _mm_cmpgt_epi16(a, set16(0x7F80)));
    l->inf = _mm_sub_epi16(l->inf, is_inf);
    l->zero = _mm_sub_epi16(l->zero, is_zero);
    l->sub = _mm_sub_epi16(l->sub, _mm_andnot_si128(is_zero, _mm_cmplt_epi16(a, set16(0x0080))));
    vec m = zero;
    for (int j = 0; j < 7; j++)
        m = _mm_or_si128(m, _mm_and_si128(_mm_cmplt_epi16(a, set16((110u - (unsigned)j) << 7)), set16(1u << j)));
    vec low_range = _mm_and_si128(_mm_cmpgt_epi16(a, set16(0x337F)), _mm_cmplt_epi16(a, set16(0x3780)));
    vec high_range = _mm_and_si128(_mm_cmpgt_epi16(a, set16(0x377F)), _mm_cmplt_epi16(a, set16(0x4780)));
    vec exact = _mm_or_si128(_mm_or_si128(is_zero, is_inf), high_range);
    exact = _mm_or_si128(exact, _mm_and_si128(low_range, _mm_cmpeq_epi16(_mm_and_si128(a, m), zero)));
    l->exact = _mm_sub_epi16(l->exact, exact);
}

/* ---- rewrites ---------------------------------------------------------------- */

struct mantissa_k {
    vec low, half_minus_one, lsb_mask /* 1, or 0 when nothing is dropped */, shift;
};

static inline struct mantissa_k mantissa_setup(unsigned keep)
{
    struct mantissa_k k;
    uint32_t dropped = 23u - keep;
    k.low = set32((UINT32_C(1) << dropped) - 1u);
    k.lsb_mask = set32(dropped > 0 ? 1u : 0u);
    k.half_minus_one = _mm_srli_epi32(k.low, 1);
    k.shift = _mm_cvtsi32_si128((int)dropped);
    return k;
}

/* pyscan_keep_mantissa on 4 words. */
static inline __attribute__((always_inline)) vec mantissa_vector(vec u, const struct mantissa_k *k, int round)
{
    vec is_nan = _mm_cmpgt_epi32(_mm_and_si128(u, set32(PYSCAN_F32_ABS)), set32(PYSCAN_F32_INF));
    vec r = round ? _mm_add_epi32(_mm_add_epi32(u, k->half_minus_one), _mm_and_si128(_mm_srl_epi32(u, k->shift), k->lsb_mask))
                  : u;
    r = _mm_andnot_si128(k->low, r);
    vec nan_r = round ? _mm_or_si128(_mm_and_si128(u, set32(0x80000000u)), set32(0x7FC00000u))
                      : _mm_or_si128(_mm_andnot_si128(k->low, u), set32(0x00400000u));
    return select(is_nan, nan_r, r);
}

/* pyscan_fp16_round_trip on 4 words, in integer arithmetic (SSE2 has no F16C). */
static inline __attribute__((always_inline)) vec fp16_vector(vec u, int toward_zero)
{
    const vec a = _mm_and_si128(u, set32(PYSCAN_F32_ABS)), sign = _mm_and_si128(u, set32(0x80000000u));
    const vec is_nan = _mm_cmpgt_epi32(a, set32(PYSCAN_F32_INF)), is_inf = _mm_cmpeq_epi32(a, set32(PYSCAN_F32_INF));
    vec pow2 = fp16_drop_pow2(a), low = _mm_sub_epi32(pow2, set32(1));
    vec r = a;
    if (!toward_zero) {
        vec lsb = _mm_andnot_si128(_mm_cmpeq_epi32(_mm_and_si128(a, pow2), vzero()), set32(1));
        r = _mm_add_epi32(_mm_add_epi32(a, _mm_srli_epi32(low, 1)), lsb);
    }
    r = _mm_andnot_si128(low, r);
    r = select(_mm_cmpgt_epi32(r, set32(PYSCAN_F32_FP16_HI - 1)), set32(toward_zero ? 0x477FE000u : PYSCAN_F32_INF), r);
    /* e < 103: 0, or for e == 102 when rounding, 2^-24 above exactly 2^-25 */
    vec tiny = toward_zero ? vzero() : _mm_and_si128(_mm_cmpgt_epi32(a, set32(0x33000000u)), set32(PYSCAN_F32_FP16_LO));
    r = select(_mm_cmpgt_epi32(a, set32((103u << 23) - 1u)), r, tiny);
    r = select(is_inf, u, _mm_or_si128(sign, r));
    vec nan_r = _mm_or_si128(_mm_and_si128(u, set32(0xFFFFE000u)),
                             _mm_and_si128(_mm_cmpeq_epi32(_mm_and_si128(u, set32(0x007FE000u)), vzero()), set32(0x2000)));
    return select(is_nan, nan_r, r);
}

/* Fold the finite |u| of 4 words into cur (all non-negative: signed compares order them). */
static inline vec absmax_vector(vec cur, vec u)
{
    vec a = _mm_and_si128(u, set32(PYSCAN_F32_ABS));
    a = _mm_and_si128(a, _mm_cmplt_epi32(a, set32(PYSCAN_F32_INF)));
    return select(_mm_cmpgt_epi32(a, cur), a, cur);
}

/*
 * pyscan_fake_quant_one on 4 words.  |x / s| <= qmax * (1 + 2^-8), so the
 * round trip through int32 is rint (current rounding mode, as rintf); the
 * sign of x is put back so that -0.3 gives -0, as rintf does.
 */
static inline __attribute__((always_inline)) vec quant_vector(vec u, vecf scale, vecf qmax, vecf inv)
{
    (void)inv; /* this path divides */
    __m128 x = _mm_castsi128_ps(u);
    __m128 q = _mm_cvtepi32_ps(_mm_cvtps_epi32(_mm_div_ps(x, scale)));
    q = _mm_min_ps(_mm_max_ps(q, _mm_sub_ps(_mm_setzero_ps(), qmax)), qmax);
    vec r = _mm_or_si128(_mm_castps_si128(_mm_mul_ps(q, scale)), _mm_and_si128(u, set32(0x80000000u)));
    vec finite = _mm_cmplt_epi32(_mm_and_si128(u, set32(PYSCAN_F32_ABS)), set32(PYSCAN_F32_INF));
    return select(finite, r, u);
}

struct track_lanes {
    vec changed;
    __m128 max_abs, max_rel;
};

static inline void track_init(struct track_lanes *tl)
{
    tl->changed = vzero();
    tl->max_abs = tl->max_rel = _mm_setzero_ps();
}

/* pyscan_track on 4 words: count changed lanes; errors over changed non-NaN ones. */
static inline __attribute__((always_inline)) int track_vector(struct track_lanes *tl, vec u, vec r)
{
    const vec abs_mask = set32(PYSCAN_F32_ABS);
    vec same = _mm_cmpeq_epi32(r, u);
    vec is_nan = _mm_cmpgt_epi32(_mm_and_si128(u, abs_mask), set32(PYSCAN_F32_INF));
    tl->changed = _mm_add_epi32(tl->changed, _mm_andnot_si128(same, set32(1)));
    __m128 tracked = _mm_castsi128_ps(_mm_andnot_si128(_mm_or_si128(same, is_nan), set32(0xFFFFFFFFu)));
    __m128 old_abs = _mm_and_ps(_mm_castsi128_ps(u), _mm_castsi128_ps(abs_mask));
    __m128 err = _mm_and_ps(_mm_sub_ps(_mm_castsi128_ps(r), _mm_castsi128_ps(u)), _mm_castsi128_ps(abs_mask));
    tl->max_abs = _mm_max_ps(tl->max_abs, _mm_and_ps(err, tracked));
    tl->max_rel = _mm_max_ps(tl->max_rel, _mm_and_ps(_mm_div_ps(err, old_abs), tracked));
    return _mm_movemask_epi8(same) != 0xFFFF;
}

static inline void track_flush(struct track_lanes *tl, pyscan_tracker *t)
{
    float abs_lanes[4], rel_lanes[4];
    _mm_storeu_ps(abs_lanes, tl->max_abs);
    _mm_storeu_ps(rel_lanes, tl->max_rel);
    for (int k = 0; k < 4; k++) {
        t->max_abs = abs_lanes[k] > t->max_abs ? abs_lanes[k] : t->max_abs;
        t->max_rel = rel_lanes[k] > t->max_rel ? rel_lanes[k] : t->max_rel;
    }
    t->changed += vhsum32(tl->changed);
    track_init(tl);
}

#include "kernel_tpl.h"

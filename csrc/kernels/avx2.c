/*
 * avx2.c - 8 words (16 halves) per vector, built with -mavx2 -mf16c.  This
 * file defines the vector primitives; the loops are in kernel_tpl.h.  AVX2
 * adds byte shuffles (byte swaps, a 16-entry table for the BF16 -> FP16
 * mask) and variable shifts; F16C converts F32 <-> FP16 with a rounding
 * immediate, which is the FP16 rewrite itself.
 */
#include "rules.h"

#if !defined(__AVX2__) || !defined(__F16C__)
#error "avx2.c must be compiled with -mavx2 -mf16c"
#endif

#include <immintrin.h>

#define TPL_ISA avx2
#define VEC_BYTES 32
typedef __m256i vec;
typedef __m256 vecf;

static inline vec vload(const unsigned char *p) { return _mm256_loadu_si256((const __m256i *)(const void *)p); }
static inline void vstore(unsigned char *p, vec v) { _mm256_storeu_si256((__m256i *)(void *)p, v); }
static inline vec vzero(void) { return _mm256_setzero_si256(); }
static inline vecf vsetf(float f) { return _mm256_set1_ps(f); }
static inline vec set32(uint32_t x) { return _mm256_set1_epi32((int)x); }
static inline vec set16(uint32_t x) { return _mm256_set1_epi16((short)(uint16_t)x); }
/* __builtin_prefetch, not _mm_prefetch: GCC 12 emitted no prefetch at all from the intrinsic here
 * (0 in the object; the template's loops ran 2x slower from memory). */
static inline void tpl_prefetch(const unsigned char *p) { __builtin_prefetch(p, 0, 3); }
static inline vec select(vec mask, vec a, vec b) { return _mm256_blendv_epi8(b, a, mask); }
static inline vec lt16(vec a, vec b) { return _mm256_cmpgt_epi16(b, a); }

static inline vec vbswap32(vec v)
{
    const vec order = _mm256_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12,
                                       3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12);
    return _mm256_shuffle_epi8(v, order);
}

static inline vec vbswap16(vec v)
{
    const vec order = _mm256_setr_epi8(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14,
                                       1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
    return _mm256_shuffle_epi8(v, order);
}

static inline uint64_t vhsum32(vec v)
{
    uint32_t lanes[8];
    _mm256_storeu_si256((__m256i *)(void *)lanes, v);
    uint64_t s = 0;
    for (int k = 0; k < 8; k++)
        s += lanes[k];
    return s;
}

static inline uint64_t vhsum16(vec v)
{
    return vhsum32(_mm256_add_epi32(_mm256_and_si256(v, set32(0xFFFF)), _mm256_srli_epi32(v, 16)));
}

static inline uint32_t vhmax32(vec v)
{
    uint32_t lanes[8], m = 0;
    _mm256_storeu_si256((__m256i *)(void *)lanes, v);
    for (int k = 0; k < 8; k++)
        m = lanes[k] > m ? lanes[k] : m;
    return m;
}

struct f32_lanes {
    vec low16, fp16, nan, inf, zero, sub, minus_one;
};
struct half_lanes {
    vec nan, inf, zero, sub, exact;
};

/* F32 -> FP16 (toward zero, or nearest with ties to even) -> F32 with F16C: the rewrites' rounding,
 * and, nearest, the F32 count's exactness test: a finite word comes back unchanged iff it is
 * FP16-exact (rules.h's rule); NaNs, zeros and infinities are counted apart there. */
static inline __attribute__((always_inline)) vec fp16_round_trip(vec u, int toward_zero)
{
    __m256 x = _mm256_castsi256_ps(u);
    __m128i h = toward_zero ? _mm256_cvtps_ph(x, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC)
                            : _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm256_castps_si256(_mm256_cvtph_ps(h));
}

static inline __attribute__((always_inline)) void f32_vector(vec u, struct f32_lanes *l)
{
    const vec zero = vzero();
    l->low16 = _mm256_sub_epi32(l->low16, _mm256_cmpeq_epi32(_mm256_and_si256(u, set32(0xFFFF)), zero));
    l->fp16 = _mm256_sub_epi32(l->fp16, _mm256_cmpeq_epi32(fp16_round_trip(u, 0), u));
    vec d = _mm256_castps_si256(_mm256_sub_ps(_mm256_castsi256_ps(u), _mm256_set1_ps(1.0f)));
    l->minus_one = _mm256_sub_epi32(l->minus_one, _mm256_cmpeq_epi32(_mm256_and_si256(d, set32(0xFFFF)), zero));
}

/* Exponent field 0 or 255: adding 1 to it leaves a signed word below 2^24 (see sse2.c). */
static inline __attribute__((always_inline)) int f32_any_special(vec u)
{
    vec biased = _mm256_add_epi32(_mm256_and_si256(u, set32(PYSCAN_F32_ABS)), set32(PYSCAN_F32_MIN_NORMAL));
    vec special = _mm256_cmpgt_epi32(set32(2 * PYSCAN_F32_MIN_NORMAL), biased);
    return !_mm256_testz_si256(special, special);
}

static inline __attribute__((always_inline)) void f32_special_vector(vec u, struct f32_lanes *l)
{
    const vec a = _mm256_and_si256(u, set32(PYSCAN_F32_ABS));
    const vec inf = set32(PYSCAN_F32_INF), zero = vzero();
    const vec is_nan = _mm256_cmpgt_epi32(a, inf), is_zero = _mm256_cmpeq_epi32(a, zero);
    l->nan = _mm256_sub_epi32(l->nan, is_nan);
    l->inf = _mm256_sub_epi32(l->inf, _mm256_cmpeq_epi32(a, inf));
    l->zero = _mm256_sub_epi32(l->zero, is_zero);
    l->sub = _mm256_sub_epi32(l->sub, _mm256_andnot_si256(is_zero, _mm256_cmpgt_epi32(set32(PYSCAN_F32_MIN_NORMAL), a)));
    /* f32_vector counted every lane whose u - 1 has zero low bits; a NaN is never BF16 + 1. */
    vec d = _mm256_castps_si256(_mm256_sub_ps(_mm256_castsi256_ps(u), _mm256_set1_ps(1.0f)));
    vec counted = _mm256_cmpeq_epi32(_mm256_and_si256(d, set32(0xFFFF)), zero);
    l->minus_one = _mm256_add_epi32(l->minus_one, _mm256_and_si256(is_nan, counted));
    /* f32_vector counted the zeros, infinities and NaNs whose round trip gave them back. */
    vec apart = _mm256_or_si256(_mm256_cmpgt_epi32(a, set32(PYSCAN_F32_INF - 1)), is_zero);
    l->fp16 = _mm256_add_epi32(l->fp16, _mm256_and_si256(apart, _mm256_cmpeq_epi32(fp16_round_trip(u, 0), u)));
}

/* The F16 magnitude a is BF16-exact iff (a & m) == 0, m = 7 / 3 / 1 / 0 (see rules.h; NaNs too). */
static inline __attribute__((always_inline)) void f16_vector(vec h, struct half_lanes *l)
{
    const vec a = _mm256_and_si256(h, set16(0x7FFF)), zero = vzero();
    const vec is_nan = _mm256_cmpgt_epi16(a, set16(0x7C00)), is_zero = _mm256_cmpeq_epi16(a, zero);
    l->nan = _mm256_sub_epi16(l->nan, is_nan);
    l->inf = _mm256_sub_epi16(l->inf, _mm256_cmpeq_epi16(a, set16(0x7C00)));
    l->zero = _mm256_sub_epi16(l->zero, is_zero);
    l->sub = _mm256_sub_epi16(l->sub, _mm256_andnot_si256(is_zero, lt16(a, set16(0x0400))));
    vec m = _mm256_or_si256(_mm256_and_si256(_mm256_cmpgt_epi16(a, set16(0x03FF)), set16(4)),
                            _mm256_or_si256(_mm256_and_si256(_mm256_cmpgt_epi16(a, set16(0x01FF)), set16(2)),
                                            _mm256_and_si256(_mm256_cmpgt_epi16(a, set16(0x00FF)), set16(1))));
    l->exact = _mm256_sub_epi16(l->exact, _mm256_cmpeq_epi16(_mm256_and_si256(a, m), zero));
}

/*
 * The BF16 magnitude a with exponent e in 103..110 is FP16-exact iff its low
 * 110 - e bits are zero.  The mask 2^(110 - e) - 1 comes from a byte table
 * indexed by e - 96 (7..14 there); the high byte of each 16-bit index is 0
 * (table entry 0 is 0) or, for e < 96, has its top bit set (shuffle gives 0).
 */
static inline __attribute__((always_inline)) void bf16_vector(vec h, struct half_lanes *l)
{
    const vec a = _mm256_and_si256(h, set16(0x7FFF)), zero = vzero();
    const vec is_inf = _mm256_cmpeq_epi16(a, set16(0x7F80)), is_zero = _mm256_cmpeq_epi16(a, zero);
    l->nan = _mm256_sub_epi16(l->nan, _mm256_cmpgt_epi16(a, set16(0x7F80)));
    l->inf = _mm256_sub_epi16(l->inf, is_inf);
    l->zero = _mm256_sub_epi16(l->zero, is_zero);
    l->sub = _mm256_sub_epi16(l->sub, _mm256_andnot_si256(is_zero, lt16(a, set16(0x0080))));
    const vec table = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 127, 63, 31, 15, 7, 3, 1, 0, 0,
                                       0, 0, 0, 0, 0, 0, 0, 127, 63, 31, 15, 7, 3, 1, 0, 0);
    vec m = _mm256_shuffle_epi8(table, _mm256_sub_epi16(_mm256_srli_epi16(a, 7), set16(96)));
    vec low_range = _mm256_and_si256(_mm256_cmpgt_epi16(a, set16(0x337F)), lt16(a, set16(0x3780)));
    vec high_range = _mm256_and_si256(_mm256_cmpgt_epi16(a, set16(0x377F)), lt16(a, set16(0x4780)));
    vec exact = _mm256_or_si256(_mm256_or_si256(is_zero, is_inf), high_range);
    exact = _mm256_or_si256(exact, _mm256_and_si256(low_range, _mm256_cmpeq_epi16(_mm256_and_si256(a, m), zero)));
    l->exact = _mm256_sub_epi16(l->exact, exact);
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
    k.half_minus_one = _mm256_srli_epi32(k.low, 1);
    k.shift = _mm_cvtsi32_si128((int)dropped);
    return k;
}

/* pyscan_keep_mantissa on 8 words. */
static inline __attribute__((always_inline)) vec mantissa_vector(vec u, const struct mantissa_k *k, int round)
{
    vec is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, set32(PYSCAN_F32_ABS)), set32(PYSCAN_F32_INF));
    vec r = round ? _mm256_add_epi32(_mm256_add_epi32(u, k->half_minus_one),
                                     _mm256_and_si256(_mm256_srl_epi32(u, k->shift), k->lsb_mask))
                  : u;
    r = _mm256_andnot_si256(k->low, r);
    if (__builtin_expect(!_mm256_testz_si256(is_nan, is_nan), 0)) { /* NaNs are rare: their rule only when present */
        vec nan_r = round ? _mm256_or_si256(_mm256_and_si256(u, set32(0x80000000u)), set32(0x7FC00000u))
                          : _mm256_or_si256(_mm256_andnot_si256(k->low, u), set32(0x00400000u));
        r = select(is_nan, nan_r, r);
    }
    return r;
}

/*
 * pyscan_fp16_round_trip on 8 words: F16C's vcvtps2ph rounds to nearest even
 * or toward zero (overflow to infinity / 65504, gradual underflow) as IEEE
 * says, and vcvtph2ps widens back exactly.  NaNs take numpy's rule (F16C
 * would quiet signaling ones).
 */
static inline __attribute__((always_inline)) vec fp16_vector(vec u, int toward_zero)
{
    vec r = fp16_round_trip(u, toward_zero);
    vec is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, set32(PYSCAN_F32_ABS)), set32(PYSCAN_F32_INF));
    if (__builtin_expect(!_mm256_testz_si256(is_nan, is_nan), 0)) {
        vec nan_r = _mm256_or_si256(
            _mm256_and_si256(u, set32(0xFFFFE000u)),
            _mm256_and_si256(_mm256_cmpeq_epi32(_mm256_and_si256(u, set32(0x007FE000u)), vzero()), set32(0x2000)));
        r = select(is_nan, nan_r, r);
    }
    return r;
}

static inline vec absmax_vector(vec cur, vec u)
{
    vec a = _mm256_and_si256(u, set32(PYSCAN_F32_ABS));
    a = _mm256_and_si256(a, _mm256_cmpgt_epi32(set32(PYSCAN_F32_INF), a));
    return _mm256_max_epu32(cur, a);
}

/* pyscan_fake_quant_one on 8 words; see sse2.c for the int32 round trip and the sign. */
static inline __attribute__((always_inline)) vec quant_vector(vec u, vecf scale, vecf qmax, vecf inv)
{
    /* rint(x * inv) where that is provably rint(fl(x / s)); the division elsewhere: see avx512.c. */
    __m256 x = _mm256_castsi256_ps(u);
    __m256 y = _mm256_mul_ps(x, inv);
    __m256 q = _mm256_round_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 off = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(y, q)); /* exact */
    __m256 finite_x = _mm256_castsi256_ps(
        _mm256_cmpgt_epi32(set32(PYSCAN_F32_INF), _mm256_and_si256(u, set32(PYSCAN_F32_ABS))));
    __m256 near_tie = _mm256_and_ps(finite_x, _mm256_cmp_ps(off, _mm256_set1_ps(0.5f - 0x1p-14f), _CMP_NLT_UQ));
    if (_mm256_movemask_ps(near_tie))
        q = _mm256_blendv_ps(q, _mm256_cvtepi32_ps(_mm256_cvtps_epi32(_mm256_div_ps(x, scale))), near_tie);
    q = _mm256_min_ps(_mm256_max_ps(q, _mm256_sub_ps(_mm256_setzero_ps(), qmax)), qmax);
    vec r = _mm256_or_si256(_mm256_castps_si256(_mm256_mul_ps(q, scale)), _mm256_and_si256(u, set32(0x80000000u)));
    vec finite = _mm256_cmpgt_epi32(set32(PYSCAN_F32_INF), _mm256_and_si256(u, set32(PYSCAN_F32_ABS)));
    return select(finite, r, u);
}

struct track_lanes {
    vec changed;
    __m256 max_abs, max_rel;
};

static inline void track_init(struct track_lanes *tl)
{
    tl->changed = vzero();
    tl->max_abs = tl->max_rel = _mm256_setzero_ps();
}

static inline __attribute__((always_inline)) int track_vector(struct track_lanes *tl, vec u, vec r)
{
    const vec abs_mask = set32(PYSCAN_F32_ABS);
    vec same = _mm256_cmpeq_epi32(r, u);
    vec is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), set32(PYSCAN_F32_INF));
    tl->changed = _mm256_add_epi32(tl->changed, _mm256_andnot_si256(same, set32(1)));
    __m256 skip = _mm256_castsi256_ps(_mm256_or_si256(same, is_nan));
    __m256 old_abs = _mm256_and_ps(_mm256_castsi256_ps(u), _mm256_castsi256_ps(abs_mask));
    __m256 err = _mm256_and_ps(_mm256_sub_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(u)), _mm256_castsi256_ps(abs_mask));
    tl->max_abs = _mm256_max_ps(tl->max_abs, _mm256_andnot_ps(skip, err));
    tl->max_rel = _mm256_max_ps(tl->max_rel, _mm256_andnot_ps(skip, _mm256_div_ps(err, old_abs)));
    return _mm256_movemask_epi8(same) != -1;
}

static inline void track_flush(struct track_lanes *tl, pyscan_tracker *t)
{
    float abs_lanes[8], rel_lanes[8];
    _mm256_storeu_ps(abs_lanes, tl->max_abs);
    _mm256_storeu_ps(rel_lanes, tl->max_rel);
    for (int k = 0; k < 8; k++) {
        t->max_abs = abs_lanes[k] > t->max_abs ? abs_lanes[k] : t->max_abs;
        t->max_rel = rel_lanes[k] > t->max_rel ? rel_lanes[k] : t->max_rel;
    }
    t->changed += vhsum32(tl->changed);
    track_init(tl);
}

#include "kernel_tpl.h"

/*
 * neon.c - the aarch64 path: 4 words (8 halves) per vector.  This file
 * defines the vector primitives; the loops are in kernel_tpl.h.  Compare
 * masks are all-ones where true, so subtracting them counts; vshlq gives the
 * variable shifts, so the FP16 rewrite is done on the bits as in rules.h.
 */
#include "rules.h"

#if !defined(__ARM_NEON) || !defined(__aarch64__)
#error "neon.c must be compiled for aarch64 (NEON is part of it)"
#endif

#include <arm_neon.h>

#define TPL_ISA neon
#define VEC_BYTES 16
typedef uint32x4_t vec;
typedef float32x4_t vecf;

static inline vec vload(const unsigned char *p) { return vreinterpretq_u32_u8(vld1q_u8(p)); }
static inline void vstore(unsigned char *p, vec v) { vst1q_u8(p, vreinterpretq_u8_u32(v)); }
static inline vec vzero(void) { return vdupq_n_u32(0); }
static inline vecf vsetf(float f) { return vdupq_n_f32(f); }
static inline vec set32(uint32_t x) { return vdupq_n_u32(x); }
static inline uint16x8_t h16(vec v) { return vreinterpretq_u16_u32(v); }
static inline vec w32(uint16x8_t v) { return vreinterpretq_u32_u16(v); }
/* __builtin_prefetch, not _mm_prefetch: GCC 12 emitted no prefetch at all from the intrinsic here
 * (0 in the object; the template's loops ran 2x slower from memory). */
static inline void tpl_prefetch(const unsigned char *p) { __builtin_prefetch(p, 0, 3); }
static inline vec vbswap32(vec v) { return vreinterpretq_u32_u8(vrev32q_u8(vreinterpretq_u8_u32(v))); }
static inline vec vbswap16(vec v) { return vreinterpretq_u32_u8(vrev16q_u8(vreinterpretq_u8_u32(v))); }
static inline uint64_t vhsum32(vec v) { return vaddlvq_u32(v); }
static inline uint64_t vhsum16(vec v) { return vaddlvq_u16(h16(v)); }
static inline uint32_t vhmax32(vec v) { return vmaxvq_u32(v); }

struct f32_lanes {
    vec low16, fp16, nan, inf, zero, sub, minus_one;
};
struct half_lanes {
    vec nan, inf, zero, sub, exact; /* 16-bit lanes */
};

static inline __attribute__((always_inline)) void f32_vector(vec u, struct f32_lanes *l)
{
    const vec a = vandq_u32(u, set32(PYSCAN_F32_ABS));
    l->low16 = vsubq_u32(l->low16, vceqzq_u32(vandq_u32(u, set32(0xFFFF))));

    /* FP16 drops the low max(13, 126 - e) mantissa bits; see rules.h. */
    int32x4_t shift = vmaxq_s32(vsubq_s32(vdupq_n_s32(126), vreinterpretq_s32_u32(vshrq_n_u32(a, 23))), vdupq_n_s32(13));
    shift = vminq_s32(shift, vdupq_n_s32(31));
    vec dropped = vsubq_u32(vshlq_u32(set32(1), shift), set32(1));
    vec in_range = vcltq_u32(vsubq_u32(a, set32(PYSCAN_F32_FP16_LO)), set32(PYSCAN_F32_FP16_HI - PYSCAN_F32_FP16_LO));
    l->fp16 = vsubq_u32(l->fp16, vandq_u32(in_range, vceqzq_u32(vandq_u32(a, dropped))));

    vec d = vreinterpretq_u32_f32(vsubq_f32(vreinterpretq_f32_u32(u), vdupq_n_f32(1.0f)));
    l->minus_one = vsubq_u32(l->minus_one, vceqzq_u32(vandq_u32(d, set32(0xFFFF))));
}

/* Exponent field 0 or 255: adding 1 to it leaves a signed word below 2^24 (see sse2.c). */
static inline __attribute__((always_inline)) int f32_any_special(vec u)
{
    int32x4_t biased = vreinterpretq_s32_u32(vaddq_u32(vandq_u32(u, set32(PYSCAN_F32_ABS)), set32(PYSCAN_F32_MIN_NORMAL)));
    return vmaxvq_u32(vcltq_s32(biased, vdupq_n_s32((int32_t)(2 * PYSCAN_F32_MIN_NORMAL)))) != 0;
}

static inline __attribute__((always_inline)) void f32_special_vector(vec u, struct f32_lanes *l)
{
    const vec a = vandq_u32(u, set32(PYSCAN_F32_ABS));
    const vec inf = set32(PYSCAN_F32_INF);
    const vec is_nan = vcgtq_u32(a, inf);
    l->nan = vsubq_u32(l->nan, is_nan);
    l->inf = vsubq_u32(l->inf, vceqq_u32(a, inf));
    l->zero = vsubq_u32(l->zero, vceqzq_u32(a));
    l->sub = vsubq_u32(l->sub, vcltq_u32(vsubq_u32(a, set32(1)), set32(0x7FFFFF)));
    /* f32_vector counted every lane whose u - 1 has zero low bits; a NaN is never BF16 + 1. */
    vec d = vreinterpretq_u32_f32(vsubq_f32(vreinterpretq_f32_u32(u), vdupq_n_f32(1.0f)));
    l->minus_one = vaddq_u32(l->minus_one, vandq_u32(is_nan, vceqzq_u32(vandq_u32(d, set32(0xFFFF)))));
}

/* The F16 magnitude a is BF16-exact iff (a & m) == 0, m = 7 / 3 / 1 / 0 (see rules.h; NaNs too). */
static inline __attribute__((always_inline)) void f16_vector(vec h, struct half_lanes *l)
{
    const uint16x8_t a = vandq_u16(h16(h), vdupq_n_u16(0x7FFF));
    const uint16x8_t is_nan = vcgtq_u16(a, vdupq_n_u16(0x7C00));
    l->nan = w32(vsubq_u16(h16(l->nan), is_nan));
    l->inf = w32(vsubq_u16(h16(l->inf), vceqq_u16(a, vdupq_n_u16(0x7C00))));
    l->zero = w32(vsubq_u16(h16(l->zero), vceqzq_u16(a)));
    l->sub = w32(vsubq_u16(h16(l->sub), vcltq_u16(vsubq_u16(a, vdupq_n_u16(1)), vdupq_n_u16(0x03FF))));
    uint16x8_t m = vorrq_u16(vandq_u16(vcgtq_u16(a, vdupq_n_u16(0x03FF)), vdupq_n_u16(4)),
                             vorrq_u16(vandq_u16(vcgtq_u16(a, vdupq_n_u16(0x01FF)), vdupq_n_u16(2)),
                                       vandq_u16(vcgtq_u16(a, vdupq_n_u16(0x00FF)), vdupq_n_u16(1))));
    l->exact = w32(vsubq_u16(h16(l->exact), vceqzq_u16(vandq_u16(a, m))));
}

/* BF16 -> FP16 exactness: low 110 - e bits zero for e in 103..110, with a variable shift. */
static inline __attribute__((always_inline)) void bf16_vector(vec h, struct half_lanes *l)
{
    const uint16x8_t a = vandq_u16(h16(h), vdupq_n_u16(0x7FFF));
    const uint16x8_t is_inf = vceqq_u16(a, vdupq_n_u16(0x7F80)), is_zero = vceqzq_u16(a);
    l->nan = w32(vsubq_u16(h16(l->nan), vcgtq_u16(a, vdupq_n_u16(0x7F80))));
    l->inf = w32(vsubq_u16(h16(l->inf), is_inf));
    l->zero = w32(vsubq_u16(h16(l->zero), is_zero));
    l->sub = w32(vsubq_u16(h16(l->sub), vcltq_u16(vsubq_u16(a, vdupq_n_u16(1)), vdupq_n_u16(0x007F))));
    int16x8_t shift = vsubq_s16(vdupq_n_s16(110), vreinterpretq_s16_u16(vshrq_n_u16(a, 7)));
    shift = vminq_s16(vmaxq_s16(shift, vdupq_n_s16(0)), vdupq_n_s16(15));
    uint16x8_t m = vsubq_u16(vshlq_u16(vdupq_n_u16(1), shift), vdupq_n_u16(1));
    uint16x8_t low_range = vcltq_u16(vsubq_u16(a, vdupq_n_u16(0x3380)), vdupq_n_u16(0x3780 - 0x3380));
    uint16x8_t high_range = vcltq_u16(vsubq_u16(a, vdupq_n_u16(0x3780)), vdupq_n_u16(0x4780 - 0x3780));
    uint16x8_t exact = vorrq_u16(vorrq_u16(is_zero, is_inf), high_range);
    exact = vorrq_u16(exact, vandq_u16(low_range, vceqzq_u16(vandq_u16(a, m))));
    l->exact = w32(vsubq_u16(h16(l->exact), exact));
}

/* ---- rewrites ---------------------------------------------------------------- */

struct mantissa_k {
    vec low, half_minus_one, lsb_mask /* 1, or 0 when nothing is dropped */;
    int32x4_t right_shift;
};

static inline struct mantissa_k mantissa_setup(unsigned keep)
{
    struct mantissa_k k;
    uint32_t dropped = 23u - keep;
    k.low = set32((UINT32_C(1) << dropped) - 1u);
    k.lsb_mask = set32(dropped > 0 ? 1u : 0u);
    k.half_minus_one = vshrq_n_u32(k.low, 1);
    k.right_shift = vdupq_n_s32(-(int32_t)dropped);
    return k;
}

static inline vec nan_mask(vec u) { return vcgtq_u32(vandq_u32(u, set32(PYSCAN_F32_ABS)), set32(PYSCAN_F32_INF)); }

static inline __attribute__((always_inline)) vec mantissa_vector(vec u, const struct mantissa_k *k, int round)
{
    vec r = round ? vaddq_u32(vaddq_u32(u, k->half_minus_one), vandq_u32(vshlq_u32(u, k->right_shift), k->lsb_mask)) : u;
    r = vbicq_u32(r, k->low);
    vec nan_r = round ? vorrq_u32(vandq_u32(u, set32(0x80000000u)), set32(0x7FC00000u))
                      : vorrq_u32(vbicq_u32(u, k->low), set32(0x00400000u));
    return vbslq_u32(nan_mask(u), nan_r, r);
}

/* pyscan_fp16_round_trip on 4 words, on the bits. */
static inline __attribute__((always_inline)) vec fp16_vector(vec u, int toward_zero)
{
    const vec a = vandq_u32(u, set32(PYSCAN_F32_ABS)), sign = vandq_u32(u, set32(0x80000000u));
    int32x4_t shift = vmaxq_s32(vsubq_s32(vdupq_n_s32(126), vreinterpretq_s32_u32(vshrq_n_u32(a, 23))), vdupq_n_s32(13));
    shift = vminq_s32(shift, vdupq_n_s32(31));
    vec pow2 = vshlq_u32(set32(1), shift), low = vsubq_u32(pow2, set32(1));
    vec r = a;
    if (!toward_zero)
        r = vaddq_u32(vaddq_u32(a, vshrq_n_u32(low, 1)), vandq_u32(vtstq_u32(a, pow2), set32(1)));
    r = vbicq_u32(r, low);
    r = vbslq_u32(vcgeq_u32(r, set32(PYSCAN_F32_FP16_HI)), set32(toward_zero ? 0x477FE000u : PYSCAN_F32_INF), r);
    vec tiny = toward_zero ? vzero() : vandq_u32(vcgtq_u32(a, set32(0x33000000u)), set32(PYSCAN_F32_FP16_LO));
    r = vbslq_u32(vcgeq_u32(a, set32(103u << 23)), r, tiny);
    r = vbslq_u32(vceqq_u32(a, set32(PYSCAN_F32_INF)), u, vorrq_u32(sign, r));
    vec nan_r = vorrq_u32(vandq_u32(u, set32(0xFFFFE000u)), vandq_u32(vceqzq_u32(vandq_u32(u, set32(0x007FE000u))), set32(0x2000)));
    return vbslq_u32(nan_mask(u), nan_r, r);
}

static inline vec absmax_vector(vec cur, vec u)
{
    vec a = vandq_u32(u, set32(PYSCAN_F32_ABS));
    return vmaxq_u32(cur, vandq_u32(a, vcltq_u32(a, set32(PYSCAN_F32_INF))));
}

/*
 * pyscan_fake_quant_one on 4 words.  vcvtnq rounds to nearest even, as rintf
 * does in the default rounding mode; |x / s| <= qmax * (1 + 2^-8) fits int32.
 * The sign of x is put back so that -0.3 gives -0, as rintf does.
 */
static inline __attribute__((always_inline)) vec quant_vector(vec u, vecf scale, vecf qmax, vecf inv)
{
    (void)inv; /* this path divides */
    float32x4_t q = vcvtq_f32_s32(vcvtnq_s32_f32(vdivq_f32(vreinterpretq_f32_u32(u), scale)));
    q = vminq_f32(vmaxq_f32(q, vnegq_f32(qmax)), qmax);
    vec r = vorrq_u32(vreinterpretq_u32_f32(vmulq_f32(q, scale)), vandq_u32(u, set32(0x80000000u)));
    return vbslq_u32(vcltq_u32(vandq_u32(u, set32(PYSCAN_F32_ABS)), set32(PYSCAN_F32_INF)), r, u);
}

struct track_lanes {
    vec changed;
    float32x4_t max_abs, max_rel;
};

static inline void track_init(struct track_lanes *tl)
{
    tl->changed = vzero();
    tl->max_abs = tl->max_rel = vdupq_n_f32(0.0f);
}

static inline __attribute__((always_inline)) int track_vector(struct track_lanes *tl, vec u, vec r)
{
    vec same = vceqq_u32(r, u);
    tl->changed = vaddq_u32(tl->changed, vbicq_u32(set32(1), same));
    vec skip = vorrq_u32(same, nan_mask(u));
    float32x4_t err = vabdq_f32(vreinterpretq_f32_u32(r), vreinterpretq_f32_u32(u));
    float32x4_t rel = vdivq_f32(err, vabsq_f32(vreinterpretq_f32_u32(u)));
    tl->max_abs = vmaxq_f32(tl->max_abs, vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(err), skip)));
    tl->max_rel = vmaxq_f32(tl->max_rel, vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(rel), skip)));
    return vminvq_u32(same) == 0;
}

static inline void track_flush(struct track_lanes *tl, pyscan_tracker *t)
{
    float abs_max = vmaxvq_f32(tl->max_abs), rel_max = vmaxvq_f32(tl->max_rel);
    t->max_abs = abs_max > t->max_abs ? abs_max : t->max_abs;
    t->max_rel = rel_max > t->max_rel ? rel_max : t->max_rel;
    t->changed += vhsum32(tl->changed);
    track_init(tl);
}

#include "kernel_tpl.h"

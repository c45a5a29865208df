/*
 * rules.h - the per-element rules, in scalar C: the definition every kernel
 * path must match bit for bit.  scalar.c applies them one element at a time;
 * the SIMD files (through kernel_tpl.h) compute the same thing many lanes at
 * a time and use these for their tails.
 */
#ifndef PYSCAN_RULES_H
#define PYSCAN_RULES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernel.h"

#define PYSCAN_F32_ABS 0x7FFFFFFFu
#define PYSCAN_F32_INF 0x7F800000u
#define PYSCAN_F32_MIN_NORMAL 0x00800000u
/* Smallest / one past largest |x| bits that can be FP16-exact when nonzero. */
#define PYSCAN_F32_FP16_LO 0x33800000u /* 2^-24, the smallest FP16 subnormal */
#define PYSCAN_F32_FP16_HI 0x47800000u /* 2^16, first value past FP16's max  */
#define PYSCAN_F32_ONE 0x3F800000u

static inline uint32_t pyscan_load_u32(const unsigned char *p, int swap)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return swap ? __builtin_bswap32(v) : v;
}

static inline uint16_t pyscan_load_u16(const unsigned char *p, int swap)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return swap ? __builtin_bswap16(v) : v;
}

/*
 * Is the non-NaN F32 with magnitude bits a exactly representable in FP16?
 * FP16 normals (biased F32 exponent e in 113..142) keep 10 of F32's 23
 * mantissa bits, so the low 13 must be zero.  FP16 subnormals are multiples
 * of 2^-24; for e in 103..112 that means the low 126 - e mantissa bits are
 * zero.  Zero and infinity are exact; everything else is out of range.
 */
static inline int pyscan_f32_fp16_exact(uint32_t a)
{
    if (a == 0 || a == PYSCAN_F32_INF)
        return 1;
    if (a < PYSCAN_F32_FP16_LO || a >= PYSCAN_F32_FP16_HI)
        return 0;
    uint32_t e = a >> 23;
    uint32_t dropped_bits = e >= 113 ? 13 : 126 - e;
    return (a & ((UINT32_C(1) << dropped_bits) - 1)) == 0;
}

/* Does fl(w - 1.0f), in round-to-nearest-even F32 arithmetic, have zero low 16 bits? */
static inline int pyscan_f32_minus_one_low16_zero(uint32_t u)
{
    float w, d;
    uint32_t bits;
    memcpy(&w, &u, sizeof w);
    d = w - 1.0f;
    memcpy(&bits, &d, sizeof bits);
    return (bits & 0xFFFFu) == 0;
}

static inline void pyscan_count_f32_one(uint32_t u, pyscan_counts *c)
{
    uint32_t a = u & PYSCAN_F32_ABS;
    int is_nan = a > PYSCAN_F32_INF;
    c->words += 1;
    c->low16_zero += (u & 0xFFFFu) == 0;
    c->nan += is_nan;
    c->inf += a == PYSCAN_F32_INF;
    c->zero += a == 0;
    c->subnormal += a != 0 && a < PYSCAN_F32_MIN_NORMAL;
    if (!is_nan) {
        c->fp16_exact += pyscan_f32_fp16_exact(a);
        c->low16_zero_minus_one += pyscan_f32_minus_one_low16_zero(u);
    }
}

/*
 * Is the F16 with magnitude bits a exactly representable in BF16, i.e. does
 * its exact F32 widening have zero low 16 bits (F32's rule)?  BF16 keeps 7
 * explicit mantissa bits and F16's whole exponent range, so an F16 normal,
 * an infinity or a NaN (whose payload widens to m << 13) needs its low 3
 * mantissa bits zero.  An F16 subnormal k * 2^-24
 * becomes a BF16 normal with 8 significant bits: k < 256 always fits,
 * k < 512 needs bit 0 clear, k < 1024 needs bits 0-1 clear.
 */
static inline int pyscan_f16_bf16_exact(uint32_t a)
{
    if (a >= 0x0400u)
        return (a & 7u) == 0;
    if (a < 256u)
        return 1;
    return a < 512u ? (a & 1u) == 0 : (a & 3u) == 0;
}

/*
 * Is the non-NaN BF16 with magnitude bits a exactly representable in FP16?
 * In FP16's normal range (and just below it, e = 111..112) BF16's 7 mantissa
 * bits always fit.  For e = 103..110 the value must be a multiple of 2^-24:
 * the low 110 - e mantissa bits are zero.  Zero and infinity are exact.
 */
static inline int pyscan_bf16_fp16_exact(uint32_t a)
{
    if (a == 0 || a == 0x7F80u)
        return 1;
    if (a < 0x3380u || a > 0x477Fu)
        return 0;
    if (a >= 0x3780u)
        return 1;
    return (a & ((UINT32_C(1) << (110u - (a >> 7))) - 1)) == 0;
}


/* One F16 element (magnitude bits a) into the counts. */
static inline void pyscan_count_f16_one(uint32_t h, pyscan_counts *c)
{
    uint32_t a = h & 0x7FFFu;
    c->words += 1;
    c->nan += a > 0x7C00u;
    c->inf += a == 0x7C00u;
    c->zero += a == 0;
    c->subnormal += a - 1u < 0x03FFu;
    c->bf16_exact += pyscan_f16_bf16_exact(a);
}

/* One BF16 element into the counts. */
static inline void pyscan_count_bf16_one(uint32_t b, pyscan_counts *c)
{
    uint32_t a = b & 0x7FFFu;
    c->words += 1;
    c->nan += a > 0x7F80u;
    c->inf += a == 0x7F80u;
    c->zero += a == 0;
    c->subnormal += a - 1u < 0x007Fu;
    c->fp16_exact += pyscan_bf16_fp16_exact(a);
}

/* ---- Rewrites of F32 words ------------------------------------------------ */
static inline void pyscan_store_u32(unsigned char *p, uint32_t v, int swap)
{
    if (swap)
        v = __builtin_bswap32(v);
    memcpy(p, &v, sizeof v);
}

static inline float pyscan_f32(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint32_t pyscan_bits(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

/* Store a rewritten word: always into a separate output, only if changed in place. */
static inline void pyscan_put(const unsigned char *src, unsigned char *dst, size_t offset, uint32_t old_bits,
                              uint32_t new_bits, int swap)
{
    if (dst != NULL && (dst != src || new_bits != old_bits))
        pyscan_store_u32(dst + offset, new_bits, swap);
}

/* Record one rewritten word.  Zero and infinity never change; NaNs carry no error. */
static inline void pyscan_track(uint32_t old_bits, uint32_t new_bits, pyscan_tracker *t)
{
    if (old_bits == new_bits)
        return;
    t->changed += 1;
    if ((old_bits & PYSCAN_F32_ABS) > PYSCAN_F32_INF)
        return;
    float old_value = pyscan_f32(old_bits);
    float err = __builtin_fabsf(pyscan_f32(new_bits) - old_value);
    float rel = err / __builtin_fabsf(old_value);
    if (err > t->max_abs)
        t->max_abs = err;
    if (rel > t->max_rel)
        t->max_rel = rel;
}

/*
 * Keep `keep` (0..23) explicit mantissa bits, clearing the 23 - keep below.
 * Rounding adds half an ulp of the kept part minus one, plus the kept part's
 * lowest bit (ties to even); a carry runs into the exponent, so the largest
 * finite values round to infinity exactly as IEEE does.  The result is the
 * nearest multiple of the value's grid (2^(exponent - keep)), ties to the
 * even multiple.
 *
 * NaNs stay NaNs (plain masking would turn 0x7F800001 into infinity):
 *   truncating keeps the sign and the kept top of the payload and sets the
 *     quiet bit: (u & ~low) | 0x00400000, as ggml's F32 -> BF16 does;
 *   rounding gives the sign and the canonical quiet NaN, sign | 0x7FC00000,
 *     as ml_dtypes.bfloat16 (and IEEE conversions that drop payloads) does.
 * keep = 7 is BF16.
 */
static inline uint32_t pyscan_keep_mantissa(uint32_t u, unsigned keep, int round)
{
    uint32_t dropped = 23u - keep;
    uint32_t low = (UINT32_C(1) << dropped) - 1u;
    if ((u & PYSCAN_F32_ABS) > PYSCAN_F32_INF)
        return round ? (u & 0x80000000u) | 0x7FC00000u : (u & ~low) | 0x00400000u;
    if (round && dropped > 0) {
        /* The kept part's lowest bit decides ties.  With no mantissa bits kept
         * that is the implicit bit: 1 for normals, 0 for subnormals. */
        uint32_t kept_lsb = keep > 0 ? (u >> dropped) & 1u : (u & PYSCAN_F32_ABS) >= PYSCAN_F32_MIN_NORMAL;
        u += (low >> 1) + kept_lsb;
    }
    return u & ~low;
}

/*
 * A NaN through FP16 and back, as numpy's float32 -> float16 -> float32 does
 * it: the sign and the top 10 payload bits are kept as they are (a signaling
 * NaN stays signaling; no quiet bit is set), and a payload that would become
 * 0 (infinity) becomes 1 instead.  In F32 bits: u & 0xFFFFE000, plus 0x2000
 * when bits 13..22 are all zero.
 */
static inline uint32_t pyscan_fp16_nan(uint32_t u)
{
    return (u & 0xFFFFE000u) | ((u & 0x007FE000u) == 0 ? 0x2000u : 0u);
}

/*
 * F32 -> IEEE FP16 -> F32 in one step on the bits.  In FP16's normal range the
 * low 13 mantissa bits go; below 2^-14 the grid is 2^-24, i.e. the low
 * 126 - e bits go (the implicit bit is then bit 23, and for e = 103 its
 * parity equals the exponent's lowest bit, so the same rounding works).
 * Values under 2^-24 become 0 or 2^-24.  Overflow: infinity when rounding,
 * +-65504 (the largest FP16) toward zero, as IEEE specifies.  NaNs: see
 * pyscan_fp16_nan (both directions).
 */
static inline uint32_t pyscan_fp16_round_trip(uint32_t u, int toward_zero)
{
    uint32_t sign = u & 0x80000000u, a = u & PYSCAN_F32_ABS;
    if (a > PYSCAN_F32_INF)
        return pyscan_fp16_nan(u);
    if (a == PYSCAN_F32_INF)
        return u;
    uint32_t e = a >> 23, r = 0;
    if (e >= 103) {
        uint32_t dropped = e >= 113 ? 13u : 126u - e;
        uint32_t low = (UINT32_C(1) << dropped) - 1u;
        r = toward_zero ? a : a + (low >> 1) + ((a >> dropped) & 1u);
        r &= ~low;
        if (r >= PYSCAN_F32_FP16_HI)
            r = toward_zero ? 0x477FE000u : PYSCAN_F32_INF;
    } else if (e == 102 && !toward_zero) {
        r = (a & 0x007FFFFFu) ? PYSCAN_F32_FP16_LO : 0; /* exactly 2^-25 ties to even: 0 */
    }
    return sign | r;
}

/* One word of absmax fake quantization with a scale that passed pyscan_fake_quant_scale. */
static inline uint32_t pyscan_fake_quant_one(uint32_t u, float scale, float qmax)
{
    if ((u & PYSCAN_F32_ABS) >= PYSCAN_F32_INF)
        return u;
    float q = __builtin_rintf(pyscan_f32(u) / scale);
    q = q > qmax ? qmax : (q < -qmax ? -qmax : q);
    return pyscan_bits(q * scale);
}

/*
 * The scale of a group whose largest finite magnitude has bits absmax:
 * bf16(max|x| / qmax).  Returns 0 when the group is left as it is: q * s is
 * exact, which makes the mode idempotent, only while s is a normal number and
 * qmax * s is finite, so a group so tiny (max|x| < qmax * 2^-126) or so huge
 * that it is not is left alone, like an all-zero one.
 */
static inline float pyscan_fake_quant_scale(uint32_t absmax, float qmax)
{
    float scale = pyscan_f32(pyscan_keep_mantissa(pyscan_bits(pyscan_f32(absmax) / qmax), 7, 1));
    int quantize = pyscan_bits(scale) >= PYSCAN_F32_MIN_NORMAL && pyscan_bits(scale * qmax) < PYSCAN_F32_INF;
    return quantize ? scale : 0.0f;
}

/* Fold the largest finite |x| (as bits: finite non-negative floats order like integers) of n words. */
static inline uint32_t pyscan_absmax_tail(const unsigned char *p, size_t n, int swap, uint32_t absmax)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t a = pyscan_load_u32(p + 4 * i, swap) & PYSCAN_F32_ABS;
        if (a < PYSCAN_F32_INF && a > absmax)
            absmax = a;
    }
    return absmax;
}

/* The scalar rewrites, also the tails of every SIMD one (scale == 0: the group stays). */
static inline void pyscan_mantissa_tail(const unsigned char *src, unsigned char *dst, size_t n, int swap,
                                        unsigned keep, int round, pyscan_tracker *t)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = pyscan_load_u32(src + 4 * i, swap);
        uint32_t r = pyscan_keep_mantissa(u, keep, round);
        pyscan_track(u, r, t);
        pyscan_put(src, dst, 4 * i, u, r, swap);
    }
}

static inline void pyscan_fp16_tail(const unsigned char *src, unsigned char *dst, size_t n, int swap,
                                    int toward_zero, pyscan_tracker *t)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = pyscan_load_u32(src + 4 * i, swap);
        uint32_t r = pyscan_fp16_round_trip(u, toward_zero);
        pyscan_track(u, r, t);
        pyscan_put(src, dst, 4 * i, u, r, swap);
    }
}

static inline void pyscan_fake_quant_tail(const unsigned char *src, unsigned char *dst, size_t n, int swap,
                                          float scale, float qmax, pyscan_tracker *t)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = pyscan_load_u32(src + 4 * i, swap);
        uint32_t r = scale != 0.0f ? pyscan_fake_quant_one(u, scale, qmax) : u;
        pyscan_track(u, r, t);
        pyscan_put(src, dst, 4 * i, u, r, swap);
    }
}

#endif /* PYSCAN_RULES_H */

/*
 * kernel.h - what every ISA file shares: the per-element rules written once,
 * in scalar C, and the signatures each ISA file exports.
 *
 * The scalar rules are the definition; the SIMD files compute the same
 * predicates many lanes at a time and fall back to these for their tails.
 */
#ifndef PYSCAN_KERNEL_H
#define PYSCAN_KERNEL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../pyscan.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "pyscan assumes a little-endian host"
#endif

/* Each ISA file defines exactly one of these, named pyscan_count_<dtype>_<isa>. */
typedef void (*pyscan_count_fn)(const void *data, size_t n, int swap, pyscan_counts *acc);

/* Largest |new - old| and |new - old| / |old| seen so far, in F32 (see pyscan.h). */
typedef struct pyscan_tracker {
    uint64_t changed;
    float max_abs;
    float max_rel;
} pyscan_tracker;

/*
 * Rewrites read src and, unless dst is NULL (a dry run), store to dst; with
 * dst == src only changed words are stored, otherwise every word is.
 */
typedef void (*pyscan_mantissa_fn)(const void *src, void *dst, size_t n, int swap, unsigned keep, int round,
                                   pyscan_tracker *t);
typedef void (*pyscan_fp16_fn)(const void *src, void *dst, size_t n, int swap, int toward_zero, pyscan_tracker *t);
typedef void (*pyscan_fake_quant_fn)(const void *src, void *dst, size_t n_rows, size_t row_len, size_t group,
                                     float qmax, int swap, pyscan_tracker *t);

#define PYSCAN_DECLARE_ISA(isa)                                                                              \
    void pyscan_count_f32_##isa(const void *data, size_t n, int swap, pyscan_counts *acc);                    \
    void pyscan_count_f16_##isa(const void *data, size_t n, int swap, pyscan_counts *acc);                    \
    void pyscan_count_bf16_##isa(const void *data, size_t n, int swap, pyscan_counts *acc);                   \
    void pyscan_mantissa_##isa(const void *src, void *dst, size_t n, int swap, unsigned keep, int round,      \
                               pyscan_tracker *t);                                                            \
    void pyscan_fp16_##isa(const void *src, void *dst, size_t n, int swap, int toward_zero, pyscan_tracker *t); \
    void pyscan_fake_quant_##isa(const void *src, void *dst, size_t n_rows, size_t row_len, size_t group,     \
                                 float qmax, int swap, pyscan_tracker *t);

PYSCAN_DECLARE_ISA(scalar)
PYSCAN_DECLARE_ISA(sse2)
PYSCAN_DECLARE_ISA(avx2)
PYSCAN_DECLARE_ISA(avx512)
PYSCAN_DECLARE_ISA(neon)

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
 * Is the non-NaN F16 with magnitude bits a exactly representable in BF16?
 * BF16 keeps 7 explicit mantissa bits and F16's whole exponent range, so an
 * F16 normal needs its low 3 mantissa bits zero.  An F16 subnormal k * 2^-24
 * becomes a BF16 normal with 8 significant bits: k < 256 always fits,
 * k < 512 needs bit 0 clear, k < 1024 needs bits 0-1 clear.
 */
static inline int pyscan_f16_bf16_exact(uint32_t a)
{
    if (a >= 0x0400u)
        return (a & 7u) == 0 || a == 0x7C00u;
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

/*
 * The 16-bit kernels are written once as plain loops that the compiler
 * vectorizes with each ISA file's own flags (each ISA file instantiates
 * them with PYSCAN_DEFINE_HALF_KERNELS).  Counters are 32-bit within a
 * block so the loops vectorize, and flushed to 64 bits between blocks.
 */
#define PYSCAN_HALF_BLOCK 65536u

static inline __attribute__((always_inline)) void pyscan_count_f16_loop(const unsigned char *p, size_t n, int swap, pyscan_counts *c)
{
    while (n > 0) {
        size_t len = n < PYSCAN_HALF_BLOCK ? n : PYSCAN_HALF_BLOCK;
        uint32_t nan = 0, inf = 0, zero = 0, sub = 0, exact = 0;
        for (size_t i = 0; i < len; i++) {
            uint32_t a = pyscan_load_u16(p + 2 * i, swap) & 0x7FFFu;
            nan += a > 0x7C00u;
            inf += a == 0x7C00u;
            zero += a == 0;
            sub += a - 1u < 0x03FFu;
            exact += a <= 0x7C00u && pyscan_f16_bf16_exact(a);
        }
        c->words += len;
        c->nan += nan;
        c->inf += inf;
        c->zero += zero;
        c->subnormal += sub;
        c->bf16_exact += exact;
        p += 2 * len;
        n -= len;
    }
}

static inline __attribute__((always_inline)) void pyscan_count_bf16_loop(const unsigned char *p, size_t n, int swap, pyscan_counts *c)
{
    while (n > 0) {
        size_t len = n < PYSCAN_HALF_BLOCK ? n : PYSCAN_HALF_BLOCK;
        uint32_t nan = 0, inf = 0, zero = 0, sub = 0, exact = 0;
        for (size_t i = 0; i < len; i++) {
            uint32_t a = pyscan_load_u16(p + 2 * i, swap) & 0x7FFFu;
            nan += a > 0x7F80u;
            inf += a == 0x7F80u;
            zero += a == 0;
            sub += a - 1u < 0x007Fu;
            exact += pyscan_bf16_fp16_exact(a);
        }
        c->words += len;
        c->nan += nan;
        c->inf += inf;
        c->zero += zero;
        c->subnormal += sub;
        c->fp16_exact += exact;
        p += 2 * len;
        n -= len;
    }
}

/* Split the swap flag into two constant-folded copies of a loop. */
#define PYSCAN_HALF_KERNEL(dtype, isa)                                                     \
    void pyscan_count_##dtype##_##isa(const void *data, size_t n, int swap, pyscan_counts *acc) \
    {                                                                                      \
        if (swap)                                                                          \
            pyscan_count_##dtype##_loop((const unsigned char *)data, n, 1, acc);           \
        else                                                                               \
            pyscan_count_##dtype##_loop((const unsigned char *)data, n, 0, acc);           \
    }

#define PYSCAN_DEFINE_HALF_KERNELS(isa) \
    PYSCAN_HALF_KERNEL(f16, isa)        \
    PYSCAN_HALF_KERNEL(bf16, isa)       \
    PYSCAN_DEFINE_REWRITE_LOOPS(isa)

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
 * even multiple.  A NaN keeps its sign
 * and the top of its payload and gets the quiet bit, so it stays a NaN even
 * when the payload sat only in the cleared bits (0x7F800001 must not become
 * infinity).  keep = 7 is BF16.
 */
static inline uint32_t pyscan_keep_mantissa(uint32_t u, unsigned keep, int round)
{
    uint32_t dropped = 23u - keep;
    uint32_t low = (UINT32_C(1) << dropped) - 1u;
    if ((u & PYSCAN_F32_ABS) > PYSCAN_F32_INF)
        return (u & ~low) | 0x00400000u;
    if (round && dropped > 0) {
        /* The kept part's lowest bit decides ties.  With no mantissa bits kept
         * that is the implicit bit: 1 for normals, 0 for subnormals. */
        uint32_t kept_lsb = keep > 0 ? (u >> dropped) & 1u : (u & PYSCAN_F32_ABS) >= PYSCAN_F32_MIN_NORMAL;
        u += (low >> 1) + kept_lsb;
    }
    return u & ~low;
}

/*
 * F32 -> IEEE FP16 -> F32 in one step on the bits.  In FP16's normal range the
 * low 13 mantissa bits go; below 2^-14 the grid is 2^-24, i.e. the low
 * 126 - e bits go (the implicit bit is then bit 23, and for e = 103 its
 * parity equals the exponent's lowest bit, so the same rounding works).
 * Values under 2^-24 become 0 or 2^-24.  Overflow: infinity when rounding,
 * +-65504 (the largest FP16) toward zero, as IEEE specifies.  A NaN keeps
 * the top 10 bits of its payload, quiet.
 */
static inline uint32_t pyscan_fp16_round_trip(uint32_t u, int toward_zero)
{
    uint32_t sign = u & 0x80000000u, a = u & PYSCAN_F32_ABS;
    if (a > PYSCAN_F32_INF)
        return (u | 0x00400000u) & ~UINT32_C(0x1FFF);
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

/* The portable rewrite loops, compiled by every ISA file with its own flags. */
static inline __attribute__((always_inline)) void pyscan_fp16_loop(const unsigned char *src, unsigned char *dst,
                                                                  size_t n, int swap, int toward_zero,
                                                                  pyscan_tracker *t)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = pyscan_load_u32(src + 4 * i, swap);
        uint32_t r = pyscan_fp16_round_trip(u, toward_zero);
        pyscan_track(u, r, t);
        pyscan_put(src, dst, 4 * i, u, r, swap);
    }
}

static inline uint32_t pyscan_fake_quant_one(uint32_t u, float scale, float qmax)
{
    if ((u & PYSCAN_F32_ABS) >= PYSCAN_F32_INF)
        return u;
    float q = __builtin_rintf(pyscan_f32(u) / scale);
    q = q > qmax ? qmax : (q < -qmax ? -qmax : q);
    return pyscan_bits(q * scale);
}

static inline __attribute__((always_inline)) void pyscan_fake_quant_loop(const unsigned char *src,
                                                                        unsigned char *dst, size_t n_rows,
                                                                        size_t row_len, size_t group, float qmax,
                                                                        int swap, pyscan_tracker *t)
{
    for (size_t row = 0; row < n_rows; row++) {
        for (size_t start = 0; start < row_len; start += group) {
            size_t base = 4 * (row * row_len + start);
            const unsigned char *g = src + base;
            size_t len = row_len - start < group ? row_len - start : group;
            uint32_t absmax = 0; /* as bits: finite non-negative floats order like integers */
            for (size_t i = 0; i < len; i++) {
                uint32_t a = pyscan_load_u32(g + 4 * i, swap) & PYSCAN_F32_ABS;
                if (a < PYSCAN_F32_INF && a > absmax)
                    absmax = a;
            }
            float scale = pyscan_f32(pyscan_keep_mantissa(pyscan_bits(pyscan_f32(absmax) / qmax), 7, 1));
            /* q * s is exact, which makes the mode idempotent, only while s is a normal
             * number and qmax * s is finite: a group so tiny (max|x| < qmax * 2^-126) or
             * so huge that it is not is left as it is, like an all-zero one. */
            int quantize = pyscan_bits(scale) >= PYSCAN_F32_MIN_NORMAL && pyscan_bits(scale * qmax) < PYSCAN_F32_INF;
            for (size_t i = 0; i < len; i++) {
                uint32_t u = pyscan_load_u32(g + 4 * i, swap);
                uint32_t r = quantize ? pyscan_fake_quant_one(u, scale, qmax) : u;
                pyscan_track(u, r, t);
                pyscan_put(src, dst, base + 4 * i, u, r, swap);
            }
        }
    }
}

#define PYSCAN_DEFINE_REWRITE_LOOPS(isa)                                                                      \
    void pyscan_fp16_##isa(const void *src, void *dst, size_t n, int swap, int toward_zero, pyscan_tracker *t) \
    {                                                                                                         \
        if (swap)                                                                                             \
            pyscan_fp16_loop((const unsigned char *)src, (unsigned char *)dst, n, 1, toward_zero, t);         \
        else                                                                                                  \
            pyscan_fp16_loop((const unsigned char *)src, (unsigned char *)dst, n, 0, toward_zero, t);         \
    }                                                                                                         \
    void pyscan_fake_quant_##isa(const void *src, void *dst, size_t n_rows, size_t row_len, size_t group,     \
                                 float qmax, int swap, pyscan_tracker *t)                                     \
    {                                                                                                         \
        pyscan_fake_quant_loop((const unsigned char *)src, (unsigned char *)dst, n_rows, row_len, group, qmax, \
                               swap, t);                                                                      \
    }

/* The scalar mantissa rewrite, also the tail of every SIMD one. */
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

/*
 * SIMD rewrites are specialized on (swap, write, round) so the inner loop has
 * no flag tests; this expands the eight constant-argument calls.
 */
#define PYSCAN_SPECIALIZE_REWRITE(impl, src, dst, n, keep, t, swap, round)                 \
    switch (((swap) ? 4 : 0) | ((dst) != NULL ? 2 : 0) | ((round) ? 1 : 0)) {            \
    case 0: impl(src, dst, n, keep, t, 0, 0, 0); break;                                     \
    case 1: impl(src, dst, n, keep, t, 0, 0, 1); break;                                     \
    case 2: impl(src, dst, n, keep, t, 0, 1, 0); break;                                     \
    case 3: impl(src, dst, n, keep, t, 0, 1, 1); break;                                     \
    case 4: impl(src, dst, n, keep, t, 1, 0, 0); break;                                     \
    case 5: impl(src, dst, n, keep, t, 1, 0, 1); break;                                     \
    case 6: impl(src, dst, n, keep, t, 1, 1, 0); break;                                     \
    default: impl(src, dst, n, keep, t, 1, 1, 1); break;                                    \
    }

#endif /* PYSCAN_KERNEL_H */

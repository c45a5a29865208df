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

#define PYSCAN_DECLARE_ISA(isa)                                                       \
    void pyscan_count_f32_##isa(const void *data, size_t n, int swap, pyscan_counts *acc); \
    void pyscan_count_f16_##isa(const void *data, size_t n, int swap, pyscan_counts *acc); \
    void pyscan_count_bf16_##isa(const void *data, size_t n, int swap, pyscan_counts *acc);

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
    PYSCAN_HALF_KERNEL(bf16, isa)

#endif /* PYSCAN_KERNEL_H */

/*
 * kernel_check.c - a standalone (no Python) cross-check of every kernel path
 * built into this binary against the scalar reference, and of the scalar
 * reference against an independent per-word oracle written here.
 *
 * Built and run by .ci/native-check.sh, natively and (under qemu-aarch64)
 * for the NEON path.  Links against csrc/dispatch.c and the csrc/kernels sources only.
 *
 *   kernel_check [--quick] [--every-f32-word]
 *
 * --quick (or KERNEL_CHECK_QUICK=1 in the environment) skips the one case
 * longer than a 2^24-word SIMD block.  The last line printed is
 * "N passed, N failed"; the exit status is non-zero on any failure.
 *
 * What is compared:
 *   1. scalar vs oracle, one word at a time, over every word of the pools
 *      below (F32, F16, BF16), plus whole-pool sums with swap = 0 and 1.
 *   2. every other available ISA vs scalar, for every dtype, every length
 *      0..130 (at several windows of the pool) and a set of large lengths,
 *      every start offset 0..7 bytes, swap = 0 and 1, field by field.  The
 *      bytes around the data are filled with NaN patterns, and the
 *      accumulator starts non-zero (kernels must ADD).
 *   3. every ISA, including scalar, with the data ending exactly at a
 *      PROT_NONE guard page, so an over-read faults.
 *   4. the API contract: unavailable ISAs and unknown dtypes return -1 and
 *      leave the accumulator untouched.
 *   5. with --every-f32-word: every one of the 2^32 F32 words, each SIMD
 *      path against scalar (the F32 paths test FP16 exactness by a round
 *      trip through the hardware's conversion, scalar by the bit rule).
 *
 * The oracle uses no bit tricks for the exactness questions: a value is
 * "exactly representable in a format with p significant bits, exponents
 * emin..emax (with subnormals)" when, scaled by a power of two to its ulp in
 * that format, it is an integer.  Where the compiler has _Float16, FP16
 * exactness is also checked by a round trip through _Float16.
 */
#define _DEFAULT_SOURCE
#include <float.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pyscan.h"

#if defined(__FLT16_MANT_DIG__)
#define HAVE_FLOAT16 1
#else
#define HAVE_FLOAT16 0
#endif

/* ------------------------------------------------------------------ */
/* bookkeeping                                                         */

#define NFIELDS 9
static const char *const field_names[NFIELDS] = {
    "words", "low16_zero", "fp16_exact", "bf16_exact", "nan", "inf", "zero", "subnormal", "low16_zero_minus_one",
};
static const size_t field_offsets[NFIELDS] = {
    offsetof(pyscan_counts, words),     offsetof(pyscan_counts, low16_zero),
    offsetof(pyscan_counts, fp16_exact), offsetof(pyscan_counts, bf16_exact),
    offsetof(pyscan_counts, nan),       offsetof(pyscan_counts, inf),
    offsetof(pyscan_counts, zero),      offsetof(pyscan_counts, subnormal),
    offsetof(pyscan_counts, low16_zero_minus_one),
};

static uint64_t get_field(const pyscan_counts *c, int f)
{
    uint64_t v;
    memcpy(&v, (const unsigned char *)c + field_offsets[f], sizeof v);
    return v;
}

static const char *const dtype_names[3] = {"f32", "f16", "bf16"};
static const size_t dtype_size[3] = {4, 2, 2};

/* Index PYSCAN_ISA_COUNT collects the oracle's own consistency checks. */
static unsigned long long isa_pass[PYSCAN_ISA_COUNT + 1], isa_fail[PYSCAN_ISA_COUNT + 1];
static unsigned long long reports;
#define MAX_REPORTS 60

static const char *isa_label(int isa)
{
    if (isa == PYSCAN_ISA_COUNT)
        return "oracle";
    const char *name = pyscan_isa_name(isa);
    return name ? name : "?";
}

static int report_ok(void)
{
    if (reports < MAX_REPORTS) {
        reports++;
        return 1;
    }
    if (reports == MAX_REPORTS) {
        reports++;
        printf("  ... further failure details suppressed\n");
    }
    return 0;
}

/* The accumulator every case starts from: non-zero, so kernels must add. */
static void acc_preset(pyscan_counts *c)
{
    for (int f = 0; f < NFIELDS; f++) {
        uint64_t v = UINT64_C(1000003) * (uint64_t)(f + 1) + (UINT64_C(1) << 33);
        memcpy((unsigned char *)c + field_offsets[f], &v, sizeof v);
    }
}

/* Compare got with expected; one pass or one fail for the ISA. */
static int check_counts(int isa, const char *what, int dtype, size_t len, int off, int swap, size_t start,
                        const pyscan_counts *expected, const pyscan_counts *got)
{
    int bad = 0;
    for (int f = 0; f < NFIELDS; f++) {
        uint64_t e = get_field(expected, f), g = get_field(got, f);
        if (e != g) {
            if (!bad)
                isa_fail[isa]++;
            bad = 1;
            if (report_ok())
                printf("FAIL %s isa=%s dtype=%s len=%zu off=%d swap=%d start=%zu field=%s expected=%llu got=%llu "
                       "(diff %+lld)\n",
                       what, isa_label(isa), dtype_names[dtype], len, off, swap, start, field_names[f],
                       (unsigned long long)e, (unsigned long long)g, (long long)(g - e));
        }
    }
    if (!bad)
        isa_pass[isa]++;
    return !bad;
}

static void check_true(int isa, int ok, const char *fmt_what)
{
    if (ok) {
        isa_pass[isa]++;
    } else {
        isa_fail[isa]++;
        if (report_ok())
            printf("FAIL isa=%s: %s\n", isa_label(isa), fmt_what);
    }
}

/* ------------------------------------------------------------------ */
/* deterministic data                                                  */

static uint64_t rng = UINT64_C(0x9E3779B97F4A7C15);

static uint64_t xorshift64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint32_t rand32(void) { return (uint32_t)(xorshift64() >> 32); }

static uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Every special F32 word; each also goes in with the sign bit flipped. */
static const uint32_t f32_specials[] = {
    0x00000000u, /* +0 */
    0x7F800000u, /* +Inf */
    0x7F800001u, /* NaN, payload in the lowest bit only */
    0x7F800002u, 0x7F80FFFFu, 0x7F810000u, /* sNaN with zero low 16 bits */
    0x7FBF0000u, 0x7FBFFFFFu, /* largest sNaN payload */
    0x7FC00000u, /* canonical qNaN */
    0x7FC00001u, 0x7FFF0000u, 0x7FFFFFFFu, 0x7FFFFFFEu,
    0x00000001u, /* smallest subnormal */
    0x00000002u, 0x0000FFFFu, 0x00010000u, 0x00400000u,
    0x007FFFFFu, /* largest subnormal */
    0x00800000u, /* FLT_MIN */
    0x00800001u, 0x7F7FFFFFu, /* FLT_MAX */
    0x7F7F0000u, /* BF16 max */
    0x7F7F8000u, 0x3F800000u, /* 1.0 */
    0x3F800001u, 0x3F7FFFFFu, 0x3F810000u, 0x3F808000u, 0x3F800080u, 0x3F80FFFFu, 0x3F810001u, 0x40000000u,
    0x3F000000u, 0xBF800000u,
    /* FP16 edges: 2^-25 .. 2^-14 and around them */
    0x33000000u, /* 2^-25: below FP16's smallest subnormal */
    0x33400000u, 0x337FFFFFu, 0x33800000u, /* 2^-24 */
    0x33800001u, 0x33C00000u, /* 1.5 * 2^-24: not a multiple of 2^-24 */
    0x34000000u, /* 2^-23 */
    0x34400000u, /* 3 * 2^-24 */
    0x34200000u, /* 2.5 * 2^-24 */
    0x38000000u, /* 2^-15 */
    0x38001000u, 0x38002000u, 0x387FC000u, /* largest FP16 subnormal 1023 * 2^-24 */
    0x387FE000u, 0x387FF000u, 0x38800000u, /* 2^-14, smallest FP16 normal */
    0x38801000u, 0x38802000u, 0x38800001u, 0x477FE000u, /* 65504, FP16 max */
    0x477FE001u, 0x477FF000u, /* 65520: rounds to Inf in FP16 */
    0x477FEFFFu, 0x477FF001u, 0x477FFFFFu, 0x47800000u, /* 65536 */
    0x47000000u, 0x46FFFE00u, 0x3DCCCCCDu, /* 0.1 */
    0x3E800000u, 0x4B800000u, 0x4B800001u, 0x33FFFFFFu, 0x36800000u, 0x37000000u, 0x37800000u, 0x37FFE000u,
    0x37FFC000u, 0x37FF8000u,
};

/* Special 16-bit words for both F16 and BF16; each also with the sign flipped. */
static const uint16_t half_specials[] = {
    0x0000, 0x0001, 0x0002, 0x0003, 0x00FF, 0x0100, 0x0101, 0x0102, 0x01FF, 0x0200, 0x0201, 0x0202, 0x0203,
    0x0204, 0x03FF, 0x0400, 0x0401, 0x0407, 0x0408, 0x3C00, 0x3C01, 0x3C08, 0x7BFF, 0x7BF8, 0x7C00, 0x7C01,
    0x7E00, 0x7FFF, 0x007F, 0x0080, 0x0081, 0x3380, 0x3381, 0x3400, 0x3401, 0x3403, 0x3404, 0x3700, 0x3701,
    0x377F, 0x3780, 0x3781, 0x3800, 0x3801, 0x387F, 0x3880, 0x477F, 0x4780, 0x7F7F, 0x7F80, 0x7F81, 0x7FC0,
    0x7FFF, 0x3F80, 0x3F81, 0x337F,
};

static uint32_t *pool32;
static size_t n32;
static uint16_t *pool16;
static size_t n16;

static void shuffle32(uint32_t *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(xorshift64() % i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

static void shuffle16(uint16_t *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(xorshift64() % i);
        uint16_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

#define N_RANDOM 200000u
#define N_RANDOM_LOW16 50000u
#define N_ONE_PLUS_BF16 50000u
#define N_NEAR_ONE 20000u

static void build_pools(void)
{
    const size_t nspec = sizeof f32_specials / sizeof f32_specials[0];
    const size_t nsweep = 256u * 24u * 3u;
    const size_t cap = 2 * nspec + nsweep + N_RANDOM + N_RANDOM_LOW16 + N_ONE_PLUS_BF16 + N_NEAR_ONE;
    pool32 = malloc(cap * sizeof *pool32);
    if (!pool32) {
        perror("malloc");
        exit(2);
    }
    size_t k = 0;
    for (size_t i = 0; i < nspec; i++) {
        pool32[k++] = f32_specials[i];
        pool32[k++] = f32_specials[i] ^ 0x80000000u;
    }
    const size_t head = k; /* the specials stay in front, unshuffled */
    /* Every exponent x every count of low zero mantissa bits: the FP16 boundaries. */
    for (uint32_t e = 0; e < 256; e++)
        for (uint32_t z = 0; z < 24; z++) {
            uint32_t sign = (rand32() & 1u) << 31;
            uint32_t low_zero = rand32() & 0x7FFFFFu & ~((UINT32_C(1) << z) - 1);
            pool32[k++] = sign | (e << 23) | low_zero;
            pool32[k++] = sign | (e << 23) | (UINT32_C(1) << z);
            pool32[k++] = (sign ^ 0x80000000u) | (e << 23) | (low_zero | (UINT32_C(1) << z));
        }
    for (size_t i = 0; i < N_RANDOM; i++)
        pool32[k++] = rand32();
    for (size_t i = 0; i < N_RANDOM_LOW16; i++)
        pool32[k++] = rand32() & 0xFFFF0000u;
    /* 1 + x for BF16 x of all sizes: exercises fl(w - 1) being BF16-exact or not. */
    for (size_t i = 0; i < N_ONE_PLUS_BF16; i++) {
        uint32_t r = rand32();
        uint32_t e = 127u - 40u + (r % 56u); /* |x| from 2^-40 to 2^15 */
        uint32_t bits = ((r & 0x80000000u) | (e << 23) | (rand32() & 0x7FFFFFu)) & 0xFFFF0000u;
        volatile float x = u2f(bits);
        volatile float w = 1.0f + x;
        pool32[k++] = f2u(w);
    }
    for (size_t i = 0; i < N_NEAR_ONE; i++)
        pool32[k++] = (0x3F7F0000u + (rand32() & 0x1FFFFu)) ^ (rand32() & 0x80000000u);
    n32 = k;
    shuffle32(pool32 + head, n32 - head);

    /* 16-bit pool: specials, every 16-bit word, both halves of every F32 word. */
    const size_t nhs = sizeof half_specials / sizeof half_specials[0];
    pool16 = malloc((2 * nhs + 65536u + 2 * n32) * sizeof *pool16);
    if (!pool16) {
        perror("malloc");
        exit(2);
    }
    k = 0;
    for (size_t i = 0; i < nhs; i++) {
        pool16[k++] = half_specials[i];
        pool16[k++] = (uint16_t)(half_specials[i] ^ 0x8000u);
    }
    const size_t head16 = k;
    for (uint32_t v = 0; v < 65536u; v++)
        pool16[k++] = (uint16_t)v;
    for (size_t i = 0; i < n32; i++) {
        pool16[k++] = (uint16_t)(pool32[i] >> 16);
        pool16[k++] = (uint16_t)pool32[i];
    }
    n16 = k;
    shuffle16(pool16 + head16, n16 - head16);
}

static size_t pool_len(int dtype) { return dtype == PYSCAN_F32 ? n32 : n16; }

static uint32_t pool_elem(int dtype, size_t i) { return dtype == PYSCAN_F32 ? pool32[i] : pool16[i]; }

/* Write n elements of the pool starting at start to dst, in file byte order for swap. */
static void put_elems(unsigned char *dst, int dtype, size_t start, size_t n, int swap)
{
    if (dtype == PYSCAN_F32) {
        for (size_t i = 0; i < n; i++) {
            uint32_t v = pool32[(start + i) % n32];
            if (swap)
                v = __builtin_bswap32(v);
            memcpy(dst + 4 * i, &v, 4);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            uint16_t v = pool16[(start + i) % n16];
            if (swap)
                v = __builtin_bswap16(v);
            memcpy(dst + 2 * i, &v, 2);
        }
    }
}

/* ------------------------------------------------------------------ */
/* the oracle                                                          */

/*
 * Is the finite or infinite, non-NaN v exactly representable in a binary
 * format with p significant bits (implicit bit included), normal exponents
 * emin..emax and gradual underflow below 2^emin?  Infinity and zero are.
 * Works in double, where every F32 value and every power of two used here
 * is exact, and scaling by powers of two is exact.
 */
static int representable(double v, int p, int emin, int emax)
{
    if (v == 0.0)
        return 1;
    if (v < 0)
        v = -v;
    if (v > DBL_MAX)
        return 1;
    int e = 0;
    double pw = 1.0;
    while (pw > v) {
        pw *= 0.5;
        e--;
    }
    while (pw * 2.0 <= v) {
        pw *= 2.0;
        e++;
    }
    if (e > emax)
        return 0;
    int ulp_exp = (e < emin ? emin : e) - (p - 1);
    double q = v;
    for (int i = ulp_exp; i > 0; i--)
        q *= 0.5;
    for (int i = ulp_exp; i < 0; i++)
        q *= 2.0;
    /* Now 0 < q < 2^p; v is representable iff q is an integer. */
    return (double)(uint64_t)q == q;
}

static int fp16_representable(double v) { return representable(v, 11, -14, 15); }
static int bf16_representable(double v) { return representable(v, 8, -126, 127); }

static const float one_f = 1.0f;

static void oracle_f32(uint32_t u, pyscan_counts *c)
{
    const volatile float f = u2f(u);
    const int is_nan = f != f;
    const double d = (double)f;
    c->words += 1;
    c->low16_zero += (u & 0xFFFFu) == 0;
    c->nan += is_nan;
    c->inf += !is_nan && (f > FLT_MAX || f < -FLT_MAX);
    c->zero += f == 0.0f;
    c->subnormal += f != 0.0f && f < FLT_MIN && f > -FLT_MIN;
    if (is_nan)
        return;
    int exact16 = fp16_representable(d);
    c->fp16_exact += (uint64_t)exact16;
#if HAVE_FLOAT16
    {
        volatile _Float16 h = (_Float16)f;
        int rt = (float)h == f;
        if (rt != exact16) {
            char msg[160];
            snprintf(msg, sizeof msg, "fp16 oracles disagree on 0x%08X: scaled-integer %d, _Float16 round trip %d",
                     (unsigned)u, exact16, rt);
            check_true(PYSCAN_ISA_COUNT, 0, msg);
        }
    }
#endif
    /* fl(w - 1): a run-time float subtraction, then "is it a BF16 value". */
    volatile float one = one_f;
    volatile float dm1 = f - one;
    c->low16_zero_minus_one += (uint64_t)bf16_representable((double)dm1);
}

/* An F16 word decoded field by field into a double (NaN flagged separately). */
static double f16_value(uint32_t h, int *is_nan)
{
    uint32_t e = (h >> 10) & 31u, m = h & 1023u;
    double v;
    *is_nan = 0;
    if (e == 31u) {
        if (m) {
            *is_nan = 1;
            return 0.0;
        }
        v = DBL_MAX * 2.0; /* +Inf */
    } else if (e == 0u) {
        v = (double)m;
        for (int i = 0; i < 24; i++)
            v *= 0.5; /* m * 2^-24 */
    } else {
        v = (double)(1024u + m);
        for (int i = (int)e - 25; i > 0; i--)
            v *= 2.0;
        for (int i = (int)e - 25; i < 0; i++)
            v *= 0.5;
    }
    return (h & 0x8000u) ? -v : v;
}

static void oracle_f16(uint32_t h, pyscan_counts *c)
{
    int is_nan;
    double v = f16_value(h, &is_nan);
    double a = v < 0 ? -v : v;
    c->words += 1;
    c->nan += is_nan;
    if (is_nan) { /* widened to F32 the payload moves up 13 bits: BF16 holds it iff none reaches the low 16 */
        c->bf16_exact += (((h & 1023u) << 13) & 0xFFFFu) == 0;
        return;
    }
    c->inf += a > DBL_MAX;
    c->zero += a == 0.0;
    c->subnormal += a != 0.0 && a < 6.103515625e-05; /* 2^-14 */
    c->bf16_exact += (uint64_t)bf16_representable(v);
}

static void oracle_bf16(uint32_t b, pyscan_counts *c)
{
    /* BF16 is by definition the top half of an F32. */
    const volatile float f = u2f(b << 16);
    const int is_nan = f != f;
    c->words += 1;
    c->nan += is_nan;
    c->inf += !is_nan && (f > FLT_MAX || f < -FLT_MAX);
    c->zero += f == 0.0f;
    c->subnormal += f != 0.0f && f < FLT_MIN && f > -FLT_MIN;
    if (is_nan)
        return;
    int exact16 = fp16_representable((double)f);
    c->fp16_exact += (uint64_t)exact16;
#if HAVE_FLOAT16
    {
        volatile _Float16 h = (_Float16)f;
        int rt = (float)h == f;
        if (rt != exact16) {
            char msg[160];
            snprintf(msg, sizeof msg, "fp16 oracles disagree on bf16 0x%04X: scaled-integer %d, _Float16 %d",
                     (unsigned)b, exact16, rt);
            check_true(PYSCAN_ISA_COUNT, 0, msg);
        }
    }
#endif
}

static void oracle_one(int dtype, uint32_t v, pyscan_counts *c)
{
    if (dtype == PYSCAN_F32)
        oracle_f32(v, c);
    else if (dtype == PYSCAN_F16)
        oracle_f16(v, c);
    else
        oracle_bf16(v, c);
}

/* ------------------------------------------------------------------ */
/* a crash (e.g. a read into the guard page) still names its case      */

static const char *volatile cur_phase = "setup";
static volatile int cur_isa = -1, cur_dtype = -1, cur_swap = -1;
static volatile size_t cur_n, cur_addr_low;

static void put_str(const char *s) { (void)!write(1, s, strlen(s)); }

static void put_num(unsigned long long v)
{
    char tmp[24];
    int i = (int)sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    (void)!write(1, tmp + i, sizeof tmp - (size_t)i);
}

static void on_crash(int sig)
{
    unsigned long long pass = 0, fail = 1;
    for (int i = 0; i <= PYSCAN_ISA_COUNT; i++) {
        pass += isa_pass[i];
        fail += isa_fail[i];
    }
    put_str(sig == SIGBUS ? "\nFAIL SIGBUS" : "\nFAIL SIGSEGV");
    put_str(" in ");
    put_str(cur_phase);
    if (cur_isa >= 0) {
        put_str(" isa=");
        put_str(isa_label(cur_isa));
        put_str(" dtype=");
        put_str(cur_dtype >= 0 && cur_dtype < 3 ? dtype_names[cur_dtype] : "?");
        put_str(" len=");
        put_num(cur_n);
        put_str(" addr%8=");
        put_num(cur_addr_low);
        put_str(" swap=");
        put_num((unsigned long long)cur_swap);
    }
    put_str("\n");
    put_num(pass);
    put_str(" passed, ");
    put_num(fail);
    put_str(" failed\n");
    _exit(1);
}

static void install_crash_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_crash;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
}

/* ------------------------------------------------------------------ */
/* the checks                                                          */

static void count_or_fail(int isa, int dtype, const void *p, size_t n, int swap, pyscan_counts *out)
{
    acc_preset(out);
    cur_isa = isa;
    cur_dtype = dtype;
    cur_n = n;
    cur_swap = swap;
    cur_addr_low = (uintptr_t)p & 7u;
    if (pyscan_count(isa, dtype, p, n, swap, out) != 0) {
        char msg[120];
        snprintf(msg, sizeof msg, "pyscan_count returned non-zero for an available ISA (dtype=%s n=%zu)",
                 dtype_names[dtype], n);
        check_true(isa, 0, msg);
    }
}

/* 1: scalar against the oracle, word by word, then whole pools. */
static void check_scalar_vs_oracle(unsigned char *buf)
{
    for (int dtype = 0; dtype < 3; dtype++) {
        const size_t n = pool_len(dtype), sz = dtype_size[dtype];
        unsigned long long before = isa_fail[PYSCAN_ISA_SCALAR];
        for (size_t i = 0; i < n; i++) {
            uint32_t v = pool_elem(dtype, i);
            pyscan_counts want, got;
            acc_preset(&want);
            oracle_one(dtype, v, &want);
            unsigned char word[4];
            put_elems(word, dtype, i, 1, 0);
            count_or_fail(PYSCAN_ISA_SCALAR, dtype, word, 1, 0, &got);
            if (!check_counts(PYSCAN_ISA_SCALAR, "scalar-vs-oracle", dtype, 1, 0, 0, i, &want, &got) &&
                reports <= MAX_REPORTS)
                printf("     (word 0x%0*X)\n", (int)(2 * sz), (unsigned)v);
        }
        for (int swap = 0; swap < 2; swap++) {
            pyscan_counts want, got;
            acc_preset(&want);
            for (size_t i = 0; i < n; i++)
                oracle_one(dtype, pool_elem(dtype, i), &want);
            put_elems(buf + 1, dtype, 0, n, swap);
            count_or_fail(PYSCAN_ISA_SCALAR, dtype, buf + 1, n, swap, &got);
            check_counts(PYSCAN_ISA_SCALAR, "scalar-vs-oracle(pool)", dtype, n, 1, swap, 0, &want, &got);
        }
        printf("scalar vs oracle, %-4s: %zu words, %s\n", dtype_names[dtype], n,
               isa_fail[PYSCAN_ISA_SCALAR] == before ? "ok" : "MISMATCHES");
    }
}

/* 2: every SIMD ISA against scalar, data at offset off with NaN bytes around it. */
#define N_WINDOWS 4
#define MAX_SMALL 130

static void check_isas_vs_scalar(unsigned char *buf, size_t bufsize, const int *isas, int nisas)
{
    static const size_t large[] = {131, 255, 256, 257, 1000, 1023, 4099, 65535, 65536, 65537, 131071, 131073,
                                   200003};
    const size_t nlarge = sizeof large / sizeof large[0];
    for (int dtype = 0; dtype < 3; dtype++) {
        const size_t np = pool_len(dtype), sz = dtype_size[dtype];
        for (int swap = 0; swap < 2; swap++)
            for (int off = 0; off < 8; off++) {
                for (size_t li = 0; li < MAX_SMALL + 1 + nlarge + 1; li++) {
                    size_t len = li <= MAX_SMALL ? li : li - MAX_SMALL - 1 < nlarge ? large[li - MAX_SMALL - 1] : np;
                    int windows = li <= MAX_SMALL ? N_WINDOWS : 2;
                    for (int w = 0; w < windows; w++) {
                        size_t start = w == 0 ? 0 : (size_t)(xorshift64() % np);
                        size_t bytes = len * sz;
                        if (off + bytes + 64 > bufsize) {
                            fprintf(stderr, "internal: buffer too small\n");
                            exit(2);
                        }
                        memset(buf, 0xFF, off + bytes + 64);
                        put_elems(buf + off, dtype, start, len, swap);
                        pyscan_counts want, got;
                        count_or_fail(PYSCAN_ISA_SCALAR, dtype, buf + off, len, swap, &want);
                        for (int k = 0; k < nisas; k++) {
                            count_or_fail(isas[k], dtype, buf + off, len, swap, &got);
                            check_counts(isas[k], "vs-scalar", dtype, len, off, swap, start, &want, &got);
                        }
                    }
                }
            }
    }
}

/* 3: every ISA with the data's last byte right before a PROT_NONE page. */
static void check_guard_page(unsigned char *buf, const int *all, int nall)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t span = 16 * page;
    unsigned char *region = mmap(NULL, span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) {
        perror("mmap");
        check_true(PYSCAN_ISA_SCALAR, 0, "mmap for the guard page failed");
        return;
    }
    if (mprotect(region + span, page, PROT_NONE) != 0) {
        perror("mprotect");
        check_true(PYSCAN_ISA_SCALAR, 0, "mprotect for the guard page failed");
        munmap(region, span + page);
        return;
    }
    unsigned char *end = region + span;
    for (int dtype = 0; dtype < 3; dtype++)
        for (int swap = 0; swap < 2; swap++)
            for (size_t len = 0; len <= MAX_SMALL + 70; len++) {
                size_t n = len <= MAX_SMALL ? len : (len - MAX_SMALL) * 97; /* up to 6790 words */
                size_t bytes = n * dtype_size[dtype];
                size_t start = (size_t)(xorshift64() % pool_len(dtype));
                memset(buf, 0xFF, bytes + 64);
                put_elems(buf + 8, dtype, start, n, swap);
                pyscan_counts want, got;
                count_or_fail(PYSCAN_ISA_SCALAR, dtype, buf + 8, n, swap, &want);
                put_elems(end - bytes, dtype, start, n, swap);
                for (int k = 0; k < nall; k++) {
                    count_or_fail(all[k], dtype, end - bytes, n, swap, &got);
                    check_counts(all[k], "guard-page", dtype, n, (int)((uintptr_t)(end - bytes) & 7u), swap, start,
                                 &want, &got);
                }
            }
    munmap(region, span + page);
}

/* 4: the API's error contract. */
static void check_api(void)
{
    unsigned char data[64];
    memset(data, 0, sizeof data);
    for (int isa = -1; isa <= PYSCAN_ISA_COUNT; isa++) {
        int avail = pyscan_isa_available(isa);
        pyscan_counts c, before;
        acc_preset(&c);
        before = c;
        int in_range = isa >= 0 && isa < PYSCAN_ISA_COUNT;
        char msg[160];
        snprintf(msg, sizeof msg, "pyscan_isa_name(%d) should be %s", isa, in_range ? "non-NULL" : "NULL");
        check_true(PYSCAN_ISA_SCALAR, (pyscan_isa_name(isa) != NULL) == in_range, msg);
        for (int dtype = -1; dtype <= 3; dtype++) {
            int valid = avail && dtype >= 0 && dtype <= 2;
            int rc = pyscan_count(isa, dtype, data, 16, 0, &c);
            snprintf(msg, sizeof msg, "pyscan_count(isa=%d, dtype=%d) returned %d, expected %d", isa, dtype, rc,
                     valid ? 0 : -1);
            check_true(PYSCAN_ISA_SCALAR, rc == (valid ? 0 : -1), msg);
            if (!valid) {
                snprintf(msg, sizeof msg, "pyscan_count(isa=%d, dtype=%d) touched the accumulator on error", isa,
                         dtype);
                check_true(PYSCAN_ISA_SCALAR, memcmp(&c, &before, sizeof c) == 0, msg);
            }
            acc_preset(&c);
        }
    }
    int def = pyscan_isa_default();
    check_true(PYSCAN_ISA_SCALAR, pyscan_isa_available(def), "pyscan_isa_default() is not available");
    check_true(PYSCAN_ISA_SCALAR, pyscan_isa_available(PYSCAN_ISA_SCALAR), "scalar is not available");
}

/* The one F32 case past a 2^24-word block, where the 32-bit lane counters are flushed. */
static void check_huge(const int *isas, int nisas)
{
    const size_t n = (UINT64_C(1) << 24) + 37;
    const int off = 3;
    unsigned char *big = malloc(n * 4 + 64);
    if (!big) {
        printf("note: no memory for the 2^24-word case, skipped\n");
        return;
    }
    for (int swap = 0; swap < 2; swap++) {
        memset(big, 0xFF, n * 4 + 64);
        put_elems(big + off, PYSCAN_F32, 0, n, swap);
        pyscan_counts want, got;
        count_or_fail(PYSCAN_ISA_SCALAR, PYSCAN_F32, big + off, n, swap, &want);
        for (int k = 0; k < nisas; k++) {
            count_or_fail(isas[k], PYSCAN_F32, big + off, n, swap, &got);
            check_counts(isas[k], "huge", PYSCAN_F32, n, off, swap, 0, &want, &got);
        }
    }
    free(big);
}

/* 5: every one of the 2^32 F32 words, each SIMD path against the scalar rule, in 2^20-word
 * pieces (native runs only: about 20 s here, far longer under qemu). */
static void check_every_f32_word(const int *isas, int nisas)
{
    const size_t n = (size_t)1 << 20;
    uint32_t *words = malloc(n * sizeof *words);
    if (!words) {
        printf("note: no memory for the sweep of every F32 word, skipped\n");
        return;
    }
    for (uint64_t first = 0; first < (UINT64_C(1) << 32); first += n) {
        for (size_t i = 0; i < n; i++)
            words[i] = (uint32_t)(first + i);
        pyscan_counts want, got;
        count_or_fail(PYSCAN_ISA_SCALAR, PYSCAN_F32, words, n, 0, &want);
        for (int k = 0; k < nisas; k++) {
            count_or_fail(isas[k], PYSCAN_F32, words, n, 0, &got);
            check_counts(isas[k], "every-word", PYSCAN_F32, n, 0, 0, (size_t)first, &want, &got);
        }
    }
    free(words);
}

int main(int argc, char **argv)
{
    int quick = getenv("KERNEL_CHECK_QUICK") && strcmp(getenv("KERNEL_CHECK_QUICK"), "0") != 0, sweep = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--every-f32-word") == 0) {
            sweep = 1;
        } else {
            fprintf(stderr, "usage: %s [--quick] [--every-f32-word]\n", argv[0]);
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    int simd[PYSCAN_ISA_COUNT], nsimd = 0, all[PYSCAN_ISA_COUNT], nall = 0;
    printf("ISAs:");
    for (int isa = 0; isa < PYSCAN_ISA_COUNT; isa++) {
        int avail = pyscan_isa_available(isa);
        printf(" %s=%s", pyscan_isa_name(isa), avail ? "yes" : "no");
        if (avail) {
            all[nall++] = isa;
            if (isa != PYSCAN_ISA_SCALAR)
                simd[nsimd++] = isa;
        }
    }
    printf("  (default %s, _Float16 oracle %s)\n", pyscan_isa_name(pyscan_isa_default()),
           HAVE_FLOAT16 ? "on" : "off");

    build_pools();
    printf("pools: %zu F32 words, %zu 16-bit words\n", n32, n16);

    size_t maxbytes = n32 * 4 > n16 * 2 ? n32 * 4 : n16 * 2;
    size_t bufsize = maxbytes + 8 + 64;
    unsigned char *buf = malloc(bufsize);
    if (!buf) {
        perror("malloc");
        return 2;
    }

    install_crash_handler();
    cur_phase = "api";
    check_api();
    cur_phase = "scalar-vs-oracle";
    check_scalar_vs_oracle(buf);
    cur_phase = "vs-scalar";
    check_isas_vs_scalar(buf, bufsize, simd, nsimd);
    cur_phase = "guard-page (a read past the end of the data)";
    check_guard_page(buf, all, nall);
    cur_phase = "huge";
    if (quick)
        printf("note: --quick, the 2^24-word case skipped\n");
    else
        check_huge(simd, nsimd);
    cur_phase = "every F32 word";
    if (sweep)
        check_every_f32_word(simd, nsimd);
    free(buf);

    unsigned long long pass = 0, fail = 0;
    for (int isa = 0; isa <= PYSCAN_ISA_COUNT; isa++) {
        if (isa < PYSCAN_ISA_COUNT && !pyscan_isa_available(isa))
            continue;
        if (isa == PYSCAN_ISA_COUNT && isa_pass[isa] + isa_fail[isa] == 0)
            continue;
        printf("%-7s %llu passed, %llu failed\n", isa_label(isa), isa_pass[isa], isa_fail[isa]);
        pass += isa_pass[isa];
        fail += isa_fail[isa];
    }
    printf("%llu passed, %llu failed\n", pass, fail);
    return fail ? 1 : 0;
}

/*
 * dispatch.c - the table of kernel paths, filled at compile time with the
 * paths this architecture has, and the CPU check that says which of them can
 * run here.  The default path is the one PYSCAN_ISA names, else the best
 * available one, chosen once.
 */
/* sigsetjmp (guard.h) is POSIX, not C11 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "guard.h"
#include "kernels/kernel.h"
#include "pyscan.h"

struct isa_entry {
    const char *name;
    pyscan_count_fn count[3]; /* indexed by enum pyscan_dtype; NULL when not built */
    pyscan_mantissa_fn mantissa;
    pyscan_fp16_fn fp16;
    pyscan_fake_quant_fn fake_quant;
};

#define ENTRY(isa)                                                                                         \
    { #isa, { pyscan_count_f32_##isa, pyscan_count_f16_##isa, pyscan_count_bf16_##isa }, pyscan_mantissa_##isa, \
      pyscan_fp16_##isa, pyscan_fake_quant_##isa }

static const struct isa_entry isa_table[PYSCAN_ISA_COUNT] = {
    [PYSCAN_ISA_SCALAR] = ENTRY(scalar),
#if defined(PYSCAN_HAVE_X86)
    [PYSCAN_ISA_SSE2] = ENTRY(sse2),
    [PYSCAN_ISA_AVX2] = ENTRY(avx2),
    [PYSCAN_ISA_AVX512] = ENTRY(avx512),
#else
    [PYSCAN_ISA_SSE2] = { "sse2", { NULL, NULL, NULL }, NULL, NULL, NULL },
    [PYSCAN_ISA_AVX2] = { "avx2", { NULL, NULL, NULL }, NULL, NULL, NULL },
    [PYSCAN_ISA_AVX512] = { "avx512", { NULL, NULL, NULL }, NULL, NULL, NULL },
#endif
#if defined(PYSCAN_HAVE_NEON)
    [PYSCAN_ISA_NEON] = ENTRY(neon),
#else
    [PYSCAN_ISA_NEON] = { "neon", { NULL, NULL, NULL }, NULL, NULL, NULL },
#endif
};

#if defined(PYSCAN_HAVE_X86)
#include <cpuid.h>

/* F16C from CPUID leaf 1 (ECX bit 29): clang's __builtin_cpu_supports knows no "f16c". */
static int has_f16c(void)
{
    unsigned int eax, ebx, ecx, edx;
    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}
#endif

/* Whether the CPU (and the OS, for the wider register state) supports the path. */
static int cpu_supports(int isa)
{
    switch (isa) {
    case PYSCAN_ISA_SCALAR:
        return 1;
#if defined(PYSCAN_HAVE_X86)
    case PYSCAN_ISA_SSE2:
        return 1; /* part of x86-64 */
    case PYSCAN_ISA_AVX2:
        /* libgcc's check includes XGETBV, i.e. that the OS saves the YMM state. */
        return __builtin_cpu_supports("avx2") && has_f16c();
    case PYSCAN_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
#endif
#if defined(PYSCAN_HAVE_NEON)
    case PYSCAN_ISA_NEON:
        return 1; /* part of aarch64 */
#endif
    default:
        return 0;
    }
}

const char *pyscan_isa_name(int isa)
{
    if (isa < 0 || isa >= PYSCAN_ISA_COUNT)
        return NULL;
    return isa_table[isa].name;
}

int pyscan_isa_available(int isa)
{
    if (isa < 0 || isa >= PYSCAN_ISA_COUNT || isa_table[isa].count[PYSCAN_F32] == NULL)
        return 0;
    return cpu_supports(isa);
}

/* The available path that text names, as Python reads PYSCAN_ISA (case and surrounding blanks ignored), or -1. */
static int isa_named(const char *text)
{
    while (isspace((unsigned char)*text))
        text++;
    size_t len = strlen(text);
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        len--;
    for (int isa = 0; isa < PYSCAN_ISA_COUNT; isa++) {
        const char *name = isa_table[isa].name;
        size_t k = 0;
        while (k < len && name[k] != '\0' && tolower((unsigned char)text[k]) == name[k])
            k++;
        if (k == len && name[k] == '\0' && len > 0)
            return pyscan_isa_available(isa) ? isa : -1;
    }
    return -1;
}

int pyscan_isa_default(void)
{
    /* Racing first calls compute the same answer; atomics keep that race defined. */
    static int chosen = -1;
    int isa = __atomic_load_n(&chosen, __ATOMIC_RELAXED);
    if (isa < 0) {
        const char *forced = getenv("PYSCAN_ISA");
        isa = forced != NULL ? isa_named(forced) : -1;
        if (isa < 0) {
            isa = PYSCAN_ISA_SCALAR;
            for (int candidate = 0; candidate < PYSCAN_ISA_COUNT; candidate++)
                if (pyscan_isa_available(candidate))
                    isa = candidate; /* the table is ordered from narrowest to widest */
        }
        __atomic_store_n(&chosen, isa, __ATOMIC_RELAXED);
    }
    return isa;
}

int pyscan_count(int isa, int dtype, const void *data, size_t n, int swap, pyscan_counts *acc)
{
    if (!pyscan_isa_available(isa) || dtype < PYSCAN_F32 || dtype > PYSCAN_BF16)
        return PYSCAN_ERR_REFUSED;
    PYSCAN_GUARDED(isa_table[isa].count[dtype](data, n, swap, acc));
    return PYSCAN_OK;
}

/* Fold a call's F32 tracker into the caller's double-precision stats. */
static void fold(const pyscan_tracker *t, pyscan_change_stats *acc)
{
    acc->changed += t->changed;
    acc->skipped_groups += t->skipped_groups;
    if ((double)t->max_abs > acc->max_abs_error)
        acc->max_abs_error = (double)t->max_abs;
    if ((double)t->max_rel > acc->max_rel_error)
        acc->max_rel_error = (double)t->max_rel;
}

/* SIMD paths count in 32-bit lanes: hand them at most this many words at a time. */
#define REWRITE_BLOCK_WORDS ((size_t)1 << 24)

static void rewrite_blocks(const struct isa_entry *e, int op, int param, const void *src, void *dst, size_t n,
                           int swap, pyscan_tracker *t)
{
    const unsigned char *in = src;
    unsigned char *out = dst;
    int mantissa_op = op == PYSCAN_OP_TRUNCATE_MANTISSA || op == PYSCAN_OP_ROUND_MANTISSA;
    for (size_t done = 0; done < n; done += REWRITE_BLOCK_WORDS) {
        size_t len = n - done < REWRITE_BLOCK_WORDS ? n - done : REWRITE_BLOCK_WORDS;
        unsigned char *block_out = out == NULL ? NULL : out + 4 * done;
        /* Rounding to 0 mantissa bits breaks ties on the implicit bit, which only
         * the scalar rule handles; it is an exotic mode, so it takes that path. */
        pyscan_mantissa_fn mantissa = op == PYSCAN_OP_ROUND_MANTISSA && param == 0 ? pyscan_mantissa_scalar
                                                                                  : e->mantissa;
        if (mantissa_op)
            mantissa(in + 4 * done, block_out, len, swap, (unsigned)param, op == PYSCAN_OP_ROUND_MANTISSA, t);
        else
            e->fp16(in + 4 * done, block_out, len, swap, op == PYSCAN_OP_TRUNCATE_FP16, t);
    }
}

int pyscan_transform(int isa, int op, int param, const void *src, void *dst, size_t n, int swap,
                     pyscan_change_stats *acc)
{
    if (!pyscan_isa_available(isa))
        return PYSCAN_ERR_REFUSED;
    const struct isa_entry *e = &isa_table[isa];
    int mantissa_op = op == PYSCAN_OP_TRUNCATE_MANTISSA || op == PYSCAN_OP_ROUND_MANTISSA;
    if (mantissa_op ? (param < 0 || param > 23) : (op != PYSCAN_OP_TRUNCATE_FP16 && op != PYSCAN_OP_ROUND_FP16))
        return PYSCAN_ERR_REFUSED;
    pyscan_tracker t = { 0, 0.0f, 0.0f, 0 };
    PYSCAN_GUARDED(rewrite_blocks(e, op, param, src, dst, n, swap, &t));
    fold(&t, acc);
    return PYSCAN_OK;
}

int pyscan_fake_quant(int isa, const void *src, void *dst, size_t n_rows, size_t row_len, size_t group,
                      int qmax, int swap, pyscan_change_stats *acc)
{
    /* Up to qmax = 128, q (8 bits) times a BF16 scale (8 bits) is exact in F32: the op stays idempotent. */
    if (!pyscan_isa_available(isa) || group == 0 || qmax < 1 || qmax > 128)
        return PYSCAN_ERR_REFUSED;
    pyscan_tracker t = { 0, 0.0f, 0.0f, 0 };
    PYSCAN_GUARDED(isa_table[isa].fake_quant(src, dst, n_rows, row_len, group, (float)qmax, swap, &t));
    fold(&t, acc);
    return PYSCAN_OK;
}

/*
 * dispatch.c - the table of kernel paths, filled at compile time with the
 * paths this architecture has, and the CPU check that says which of them can
 * run here.  The default path is the best available one, chosen once.
 */
#include <stddef.h>

#include "kernels/kernel.h"
#include "pyscan.h"

struct isa_entry {
    const char *name;
    pyscan_count_fn count[3]; /* indexed by enum pyscan_dtype; NULL when not built */
};

#define ENTRY(isa) { #isa, { pyscan_count_f32_##isa, pyscan_count_f16_##isa, pyscan_count_bf16_##isa } }

static const struct isa_entry isa_table[PYSCAN_ISA_COUNT] = {
    [PYSCAN_ISA_SCALAR] = ENTRY(scalar),
#if defined(PYSCAN_HAVE_X86)
    [PYSCAN_ISA_SSE2] = ENTRY(sse2),
    [PYSCAN_ISA_AVX2] = ENTRY(avx2),
    [PYSCAN_ISA_AVX512] = ENTRY(avx512),
#else
    [PYSCAN_ISA_SSE2] = { "sse2", { NULL, NULL, NULL } },
    [PYSCAN_ISA_AVX2] = { "avx2", { NULL, NULL, NULL } },
    [PYSCAN_ISA_AVX512] = { "avx512", { NULL, NULL, NULL } },
#endif
#if defined(PYSCAN_HAVE_NEON)
    [PYSCAN_ISA_NEON] = ENTRY(neon),
#else
    [PYSCAN_ISA_NEON] = { "neon", { NULL, NULL, NULL } },
#endif
};

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
        return __builtin_cpu_supports("avx2");
    case PYSCAN_ISA_AVX512:
        return __builtin_cpu_supports("avx512f");
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

int pyscan_isa_default(void)
{
    /* Racing first calls compute the same answer; atomics keep that race defined. */
    static int chosen = -1;
    int isa = __atomic_load_n(&chosen, __ATOMIC_RELAXED);
    if (isa < 0) {
        isa = PYSCAN_ISA_SCALAR;
        for (int candidate = 0; candidate < PYSCAN_ISA_COUNT; candidate++)
            if (pyscan_isa_available(candidate))
                isa = candidate; /* the table is ordered from narrowest to widest */
        __atomic_store_n(&chosen, isa, __ATOMIC_RELAXED);
    }
    return isa;
}

int pyscan_count(int isa, int dtype, const void *data, size_t n, int swap, pyscan_counts *acc)
{
    if (!pyscan_isa_available(isa) || dtype < PYSCAN_F32 || dtype > PYSCAN_BF16)
        return -1;
    isa_table[isa].count[dtype](data, n, swap, acc);
    return 0;
}

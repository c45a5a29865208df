/*
 * kernel_tpl.h - every kernel loop, written once.  A SIMD file defines its
 * vector type and primitives, then includes this file, which defines the six
 * exported kernels of that path (zlib-ng's chunkset_tpl.h scheme).
 *
 * The including file defines, before the #include:
 *
 *   TPL_ISA                 the path's name (token), e.g. sse2
 *   vec                     an integer vector type; VEC_BYTES its size
 *   vload, vstore           unaligned load / store of VEC_BYTES bytes
 *   vbswap32, vbswap16      byte swap of every 32-bit / 16-bit lane
 *   vzero, vhsum32, vhsum16 zero; sum of the unsigned 32-bit / 16-bit lanes
 *   vhmax32                 the largest unsigned 32-bit lane
 *   tpl_prefetch(p)         a software prefetch hint
 *   f32_vector, f16_vector, bf16_vector
 *                           add one vector's predicates into the lane counters
 *                           (struct f32_lanes: 32-bit lanes; struct half_lanes:
 *                           16-bit lanes), exactly as rules.h counts them; for
 *                           F32, f32_vector counts low16, fp16 and minus_one as
 *                           if no lane were special, f32_any_special(u) says
 *                           whether one is (zero, subnormal, infinity, NaN),
 *                           and only then f32_special_vector(u, &l) counts
 *                           those and takes back out of minus_one and fp16
 *                           whatever f32_vector counted of them (fp16 ends
 *                           with the nonzero finite FP16-exact words)
 *   struct mantissa_k, mantissa_setup(keep), mantissa_vector(u, &k, round)
 *   fp16_vector(u, toward_zero)
 *   vecf, vsetf, absmax_vector(cur, u), quant_vector(u, scale, qmax, inv)
 *                           (inv: 1 / scale, or NaN where it would be subnormal;
 *                           a path may use it instead of dividing, see avx512.c)
 *   struct track_lanes, track_init, track_vector(&tl, u, r) (nonzero if a
 *                           lane changed), track_flush(&tl, t) (fold, reset)
 *
 * All vector rewrites work on native-order words; the loops here byte-swap
 * on load and store.  Every loop ends with the scalar rule of rules.h.
 */
#ifndef TPL_ISA
#error "kernel_tpl.h is included by an ISA file after it defines its primitives"
#endif

#define TPL_CAT2(a, b) a##b
#define TPL_CAT(a, b) TPL_CAT2(a, b)
#define TPL_NAME(kernel) TPL_CAT(kernel, TPL_ISA)
#define TPL_INLINE static inline __attribute__((always_inline))

#define VEC_WORDS (VEC_BYTES / 4)
#define VEC_HALVES (VEC_BYTES / 2)
#define VECS_PER_LINE (64 / VEC_BYTES)

/* Words per flush of the 32-bit lane counters: far below 2^32 per lane. */
#define BLOCK_WORDS (UINT64_C(1) << 24)
/* Lines per flush of the 16-bit lane counters: each lane counts at most once per vector. */
#define HALF_BLOCK_LINES (65535u / VECS_PER_LINE)
#ifndef PYSCAN_PREFETCH_BYTES
#define PYSCAN_PREFETCH_BYTES 2048 /* measured: see benchmarks/kernel_bench.c */
#endif

/* ---- counting --------------------------------------------------------------- */

TPL_INLINE void count_f32(const unsigned char *p, size_t n, int swap, pyscan_counts *c)
{
    size_t i = 0;
    while (n - i >= 16) {
        size_t stop = n - i > BLOCK_WORDS ? i + BLOCK_WORDS : n;
        struct f32_lanes l;
        l.low16 = l.fp16 = l.nan = l.inf = l.zero = l.sub = l.minus_one = vzero();
        size_t start = i;
        for (; stop - i >= 16; i += 16) {
            const unsigned char *q = p + 4 * i;
            if (PYSCAN_PREFETCH_BYTES > 0)
                tpl_prefetch(q + PYSCAN_PREFETCH_BYTES);
            for (int k = 0; k < VECS_PER_LINE; k++) {
                vec u = vload(q + k * VEC_BYTES);
                if (swap)
                    u = vbswap32(u);
                f32_vector(u, &l);
                /* Weights are almost all normal numbers: the four rare classes cost a branch. */
                if (__builtin_expect(f32_any_special(u), 0))
                    f32_special_vector(u, &l);
            }
        }
        uint64_t zero = vhsum32(l.zero), inf = vhsum32(l.inf);
        c->words += i - start;
        c->low16_zero += vhsum32(l.low16);
        c->nan += vhsum32(l.nan);
        c->inf += inf;
        c->zero += zero;
        c->subnormal += vhsum32(l.sub);
        c->fp16_exact += vhsum32(l.fp16) + zero + inf; /* f32_vector counts the nonzero finite ones */
        c->low16_zero_minus_one += vhsum32(l.minus_one);
    }
    for (; i < n; i++)
        pyscan_count_f32_one(pyscan_load_u32(p + 4 * i, swap), c);
}

/* F16 (bf16 == 0) or BF16 elements; `exact` is bf16_exact for F16, fp16_exact for BF16. */
TPL_INLINE void count_half(const unsigned char *p, size_t n, int swap, int bf16, pyscan_counts *c)
{
    size_t i = 0;
    while (n - i >= 32) {
        struct half_lanes l;
        l.nan = l.inf = l.zero = l.sub = l.exact = vzero();
        size_t start = i;
        for (unsigned lines = 0; lines < HALF_BLOCK_LINES && n - i >= 32; lines++, i += 32) {
            const unsigned char *q = p + 2 * i;
            if (PYSCAN_PREFETCH_BYTES > 0)
                tpl_prefetch(q + PYSCAN_PREFETCH_BYTES);
            for (int k = 0; k < VECS_PER_LINE; k++) {
                vec h = vload(q + k * VEC_BYTES);
                if (swap)
                    h = vbswap16(h);
                if (bf16)
                    bf16_vector(h, &l);
                else
                    f16_vector(h, &l);
            }
        }
        c->words += i - start;
        c->nan += vhsum16(l.nan);
        c->inf += vhsum16(l.inf);
        c->zero += vhsum16(l.zero);
        c->subnormal += vhsum16(l.sub);
        if (bf16)
            c->fp16_exact += vhsum16(l.exact);
        else
            c->bf16_exact += vhsum16(l.exact);
    }
    for (; i < n; i++) {
        uint32_t h = pyscan_load_u16(p + 2 * i, swap);
        if (bf16)
            pyscan_count_bf16_one(h, c);
        else
            pyscan_count_f16_one(h, c);
    }
}

void TPL_NAME(pyscan_count_f32_)(const void *data, size_t n, int swap, pyscan_counts *acc)
{
    if (swap)
        count_f32(data, n, 1, acc);
    else
        count_f32(data, n, 0, acc);
}

void TPL_NAME(pyscan_count_f16_)(const void *data, size_t n, int swap, pyscan_counts *acc)
{
    if (swap)
        count_half(data, n, 1, 0, acc);
    else
        count_half(data, n, 0, 0, acc);
}

void TPL_NAME(pyscan_count_bf16_)(const void *data, size_t n, int swap, pyscan_counts *acc)
{
    if (swap)
        count_half(data, n, 1, 1, acc);
    else
        count_half(data, n, 0, 1, acc);
}

/* ---- rewrites ---------------------------------------------------------------- */

enum { TPL_MANTISSA, TPL_FP16, TPL_QUANT };

struct op_args {
    struct mantissa_k mk;
    vecf scale, qmax, inv;
};

TPL_INLINE vec apply_op(int op, int flag, vec u, const struct op_args *a)
{
    if (op == TPL_MANTISSA)
        return mantissa_vector(u, &a->mk, flag);
    if (op == TPL_FP16)
        return fp16_vector(u, flag);
    return quant_vector(u, a->scale, a->qmax, a->inv);
}

/*
 * The vector part of a rewrite of n words: returns how many were done (a
 * multiple of VEC_WORDS).  In place (dst == src) a vector is stored only if
 * a lane changed, so pages of tensors that are already exact stay clean.
 */
TPL_INLINE size_t rewrite_vectors(int op, int flag, const struct op_args *a, const unsigned char *src,
                                  unsigned char *dst, size_t n, int swap, int write, struct track_lanes *tl)
{
    size_t i = 0;
    for (; n - i >= VEC_WORDS; i += VEC_WORDS) {
        const unsigned char *q = src + 4 * i;
        if (PYSCAN_PREFETCH_BYTES > 0 && ((4 * i) & 63) == 0)
            tpl_prefetch(q + PYSCAN_PREFETCH_BYTES);
        vec stored = vload(q);
        vec u = swap ? vbswap32(stored) : stored;
        vec r = apply_op(op, flag, u, a);
        int changed = track_vector(tl, u, r);
        if (write && (dst != src || changed))
            vstore(dst + 4 * i, swap ? vbswap32(r) : r);
    }
    return i;
}

/* n is at most BLOCK_WORDS (dispatch.c splits larger calls), so one flush at the end is enough. */
TPL_INLINE void mantissa_impl(const unsigned char *src, unsigned char *dst, size_t n, unsigned keep,
                              pyscan_tracker *t, int swap, int write, int round)
{
    struct op_args a;
    struct track_lanes tl;
    a.mk = mantissa_setup(keep);
    a.scale = a.qmax = a.inv = vsetf(0.0f);
    track_init(&tl);
    size_t i = rewrite_vectors(TPL_MANTISSA, round, &a, src, dst, n, swap, write, &tl);
    track_flush(&tl, t);
    pyscan_mantissa_tail(src + 4 * i, dst == NULL ? NULL : dst + 4 * i, n - i, swap, keep, round, t);
}

TPL_INLINE void fp16_impl(const unsigned char *src, unsigned char *dst, size_t n, unsigned unused,
                          pyscan_tracker *t, int swap, int write, int toward_zero)
{
    (void)unused;
    struct op_args a;
    struct track_lanes tl;
    a.mk = mantissa_setup(7);
    a.scale = a.qmax = a.inv = vsetf(0.0f);
    track_init(&tl);
    size_t i = rewrite_vectors(TPL_FP16, toward_zero, &a, src, dst, n, swap, write, &tl);
    track_flush(&tl, t);
    pyscan_fp16_tail(src + 4 * i, dst == NULL ? NULL : dst + 4 * i, n - i, swap, toward_zero, t);
}

/* Expand the eight constant-argument calls of impl on (swap, write, flag). */
#define TPL_SPECIALIZE(impl, src, dst, n, param, t, swap, flag)                 \
    switch (((swap) ? 4 : 0) | ((dst) != NULL ? 2 : 0) | ((flag) ? 1 : 0)) {    \
    case 0: impl(src, dst, n, param, t, 0, 0, 0); break;                         \
    case 1: impl(src, dst, n, param, t, 0, 0, 1); break;                         \
    case 2: impl(src, dst, n, param, t, 0, 1, 0); break;                         \
    case 3: impl(src, dst, n, param, t, 0, 1, 1); break;                         \
    case 4: impl(src, dst, n, param, t, 1, 0, 0); break;                         \
    case 5: impl(src, dst, n, param, t, 1, 0, 1); break;                         \
    case 6: impl(src, dst, n, param, t, 1, 1, 0); break;                         \
    default: impl(src, dst, n, param, t, 1, 1, 1); break;                        \
    }

void TPL_NAME(pyscan_mantissa_)(const void *src, void *dst, size_t n, int swap, unsigned keep, int round,
                                pyscan_tracker *t)
{
    const unsigned char *in = src;
    unsigned char *out = dst;
    TPL_SPECIALIZE(mantissa_impl, in, out, n, keep, t, swap, round)
}

void TPL_NAME(pyscan_fp16_)(const void *src, void *dst, size_t n, int swap, int toward_zero, pyscan_tracker *t)
{
    const unsigned char *in = src;
    unsigned char *out = dst;
    TPL_SPECIALIZE(fp16_impl, in, out, n, 0u, t, swap, toward_zero)
}

TPL_INLINE void fake_quant_impl(const unsigned char *src, unsigned char *dst, size_t n_rows, size_t row_len,
                                size_t group, float qmax, pyscan_tracker *t, int swap, int write)
{
    struct op_args a;
    struct track_lanes tl;
    a.mk = mantissa_setup(7);
    a.qmax = vsetf(qmax);
    track_init(&tl);
    size_t since_flush = 0;
    for (size_t row = 0; row < n_rows; row++) {
        for (size_t start = 0; start < row_len; start += group) {
            size_t base = 4 * (row * row_len + start);
            const unsigned char *g = src + base;
            unsigned char *out = dst == NULL ? NULL : dst + base;
            size_t len = row_len - start < group ? row_len - start : group;
            vec top = vzero();
            size_t i = 0;
            for (; len - i >= VEC_WORDS; i += VEC_WORDS) {
                vec u = vload(g + 4 * i);
                top = absmax_vector(top, swap ? vbswap32(u) : u);
            }
            uint32_t absmax = pyscan_absmax_tail(g + 4 * i, len - i, swap, vhmax32(top));
            float scale = pyscan_fake_quant_scale(absmax, qmax);
            if (scale == 0.0f) { /* the group stays as it is */
                t->skipped_groups += absmax != 0;
                if (write && dst != src)
                    memcpy(out, g, 4 * len);
                continue;
            }
            a.scale = vsetf(scale);
            a.inv = vsetf(scale < 0x1p126f ? 1.0f / scale : __builtin_nanf(""));
            i = rewrite_vectors(TPL_QUANT, 0, &a, g, out, len, swap, write, &tl);
            pyscan_fake_quant_tail(g + 4 * i, out == NULL ? NULL : out + 4 * i, len - i, swap, scale, qmax, t);
            since_flush += len;
            if (since_flush >= BLOCK_WORDS) {
                track_flush(&tl, t);
                since_flush = 0;
            }
        }
    }
    track_flush(&tl, t);
}

void TPL_NAME(pyscan_fake_quant_)(const void *src, void *dst, size_t n_rows, size_t row_len, size_t group,
                                  float qmax, int swap, pyscan_tracker *t)
{
    const unsigned char *in = src;
    unsigned char *out = dst;
    switch ((swap ? 2 : 0) | (out != NULL ? 1 : 0)) {
    case 0: fake_quant_impl(in, out, n_rows, row_len, group, qmax, t, 0, 0); break;
    case 1: fake_quant_impl(in, out, n_rows, row_len, group, qmax, t, 0, 1); break;
    case 2: fake_quant_impl(in, out, n_rows, row_len, group, qmax, t, 1, 0); break;
    default: fake_quant_impl(in, out, n_rows, row_len, group, qmax, t, 1, 1); break;
    }
}

/*
 * kernels_fuzz.c - libFuzzer target: every kernel path against the scalar reference.
 *
 * Built by fuzz/run.sh with clang -fsanitize=fuzzer,address,undefined against the C sources in
 * csrc/ and csrc/kernels/, each ISA file with its own flags as CMakeLists.txt compiles it.  Each
 * input is a 10-byte control header, then data:
 *
 *   byte 0     dtype for pyscan_count (low 2 bits; 3 is not a dtype: every path must refuse it)
 *   byte 1     rewrite: % 6 -> 0..3 pyscan_transform op, 4 pyscan_fake_quant, 5 a bad op number
 *   byte 2     op parameter: < 0xF0 -> 0..23; 0xF0..0xF7 -> -1..-8; 0xF8..0xFF -> 24..31 (refused)
 *   byte 3     bit 0: byte-swap; bits 1..6: start offset 0..63 bytes (misalignment)
 *   bytes 4-5  fake-quant row length (little-endian, reduced modulo the words available + 1)
 *   bytes 6-7  fake-quant group: 0xFFFF -> SIZE_MAX, 0xFFFE -> 0 (refused), else 1..row length + 1
 *   byte 8     fake-quant qmax from a table (127, 7, ... and refused ones: 0, -1, 129, 255, 32768)
 *   byte 9     repeat the data: < 0xFC -> 1..4 times, else 64 / 256 / 1024 / 4096 (at most 256 KiB
 *              counted; rewrites take the first 16 KiB)
 *
 * For every available path: pyscan_count's status and counts; pyscan_transform or
 * pyscan_fake_quant's status, stats and output bytes as a dry run (dst NULL), into a separate
 * dst and in place, must equal the scalar path's.  Data ends exactly where its heap block
 * ends, so AddressSanitizer catches any access past it (and, at offset 0, before it).  The
 * scalar path itself is checked against the README's promises: the three destinations agree,
 * `changed` counts the words that changed, a NaN stays a NaN, and a second application
 * changes nothing (idempotence, which the -o writer's check relies on; see
 * idempotence_promised).  Any disagreement prints the case and calls abort(), which libFuzzer
 * reports as a crash and saves as a reproducer.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyscan.h"

#define HEADER_BYTES 10
#define MAX_DATA_BYTES ((size_t)1 << 18) /* 2^17 halves: past the 2^16-element flush of the 16-bit kernels */
#define MAX_REWRITE_BYTES ((size_t)1 << 14) /* rewrites have no block boundary within reach: keep them fast */
#define OP_FAKE_QUANT 100 /* not a pyscan_op: selects pyscan_fake_quant */

static const int QMAX[] = {127, 7, 1, 2, 3, 15, 128, 129, 255, 32768, 0, -1};
static const size_t TILES[] = {64, 256, 1024, 4096};

struct control {
    int dtype, op, param, swap;
    size_t offset, tile;
    size_t n_rows, row_len, group; /* fake quant */
    int qmax;
};

static int isas[PYSCAN_ISA_COUNT];
static int n_isas;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* PYSCAN_ISA=NAME (read by pyscan_isa_default, as in Python) checks that path alone against scalar. */
    const char *forced = getenv("PYSCAN_ISA");
    int only = forced != NULL && forced[0] != '\0' ? pyscan_isa_default() : -1;
    fprintf(stderr, "kernels_fuzz: paths");
    for (int isa = 0; isa < PYSCAN_ISA_COUNT; isa++) {
        if (pyscan_isa_available(isa) && (only < 0 || isa == only || isa == PYSCAN_ISA_SCALAR)) {
            isas[n_isas++] = isa;
            fprintf(stderr, " %s", pyscan_isa_name(isa));
        }
    }
    fprintf(stderr, " (checked against %s)\n", pyscan_isa_name(PYSCAN_ISA_SCALAR));
    if (n_isas == 0 || isas[0] != PYSCAN_ISA_SCALAR)
        abort();
    return 0;
}

static void describe(const struct control *c)
{
    fprintf(stderr,
            "  dtype %d op %d param %d swap %d offset %zu tile %zu | fake quant: rows %zu row_len %zu group %zu "
            "qmax %d\n",
            c->dtype, c->op, c->param, c->swap, c->offset, c->tile, c->n_rows, c->row_len, c->group, c->qmax);
}

#define CHECK(cond, isa, c, ...)                                                        \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "kernels_fuzz: MISMATCH on path %s: ", pyscan_isa_name(isa)); \
            fprintf(stderr, __VA_ARGS__);                                               \
            fprintf(stderr, "\n");                                                      \
            describe(c);                                                                \
            abort();                                                                    \
        }                                                                               \
    } while (0)

/* A heap block of exactly offset + n bytes with the data at offset (ASan sees any overrun). */
static unsigned char *place(const unsigned char *data, size_t n, size_t offset, unsigned char **block)
{
    size_t size = offset + n;
    *block = malloc(size ? size : 1);
    if (*block == NULL)
        abort();
    memset(*block, 0xA5, offset);
    if (n)
        memcpy(*block + offset, data, n);
    return *block + offset;
}

static uint32_t load_u32(const unsigned char *p, int swap)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return swap ? __builtin_bswap32(v) : v;
}

static int is_nan_bits(uint32_t u) { return (u & 0x7FFFFFFFu) > 0x7F800000u; }

/* ---- pyscan_count --------------------------------------------------------------------------- */

static void seed_counts(pyscan_counts *acc)
{
    /* Non-zero: kernels must ADD to what they are given. */
    uint64_t *f = (uint64_t *)acc;
    for (size_t i = 0; i < sizeof *acc / sizeof *f; i++)
        f[i] = 1000 + 17 * i;
}

static void check_count(const struct control *c, const unsigned char *data, size_t len)
{
    size_t width = c->dtype == PYSCAN_F16 || c->dtype == PYSCAN_BF16 ? 2 : 4;
    size_t n = len / width;
    pyscan_counts ref, seed;
    int ref_status = 0;
    seed_counts(&seed);
    for (int k = 0; k < n_isas; k++) {
        int isa = isas[k];
        unsigned char *block;
        const unsigned char *p = place(data, n * width, c->offset, &block);
        pyscan_counts acc = seed;
        int status = pyscan_count(isa, c->dtype, p, n, c->swap, &acc);
        CHECK(memcmp(p, data, n * width) == 0, isa, c, "pyscan_count wrote to its input");
        free(block);
        if (isa == PYSCAN_ISA_SCALAR) {
            ref = acc;
            ref_status = status;
            CHECK(status == (c->dtype <= PYSCAN_BF16 ? PYSCAN_OK : PYSCAN_ERR_REFUSED), isa, c, "status %d for dtype %d", status, c->dtype);
            if (status != PYSCAN_OK) {
                CHECK(memcmp(&acc, &seed, sizeof acc) == 0, isa, c, "a refused count touched the accumulator");
            } else {
                const uint64_t *a = (const uint64_t *)&acc, *s = (const uint64_t *)&seed;
                CHECK(acc.words - seed.words == n, isa, c, "words %llu, expected %zu",
                      (unsigned long long)(acc.words - seed.words), n);
                for (size_t i = 0; i < sizeof acc / sizeof *a; i++)
                    CHECK(a[i] >= s[i] && a[i] - s[i] <= n, isa, c, "count field %zu is %llu of %zu words", i,
                          (unsigned long long)(a[i] - s[i]), n);
            }
            continue;
        }
        CHECK(status == ref_status, isa, c, "pyscan_count status %d, scalar %d", status, ref_status);
        static const char *const names[] = {"words", "low16_zero", "fp16_exact", "bf16_exact", "nan",
                                            "inf", "zero", "subnormal", "low16_zero_minus_one"};
        const uint64_t *a = (const uint64_t *)&acc, *r = (const uint64_t *)&ref;
        for (size_t i = 0; i < sizeof acc / sizeof *a; i++)
            CHECK(a[i] == r[i], isa, c, "count %s = %llu, scalar %llu (dtype %d, %zu elements)", names[i],
                  (unsigned long long)a[i], (unsigned long long)r[i], c->dtype, n);
    }
    /* Paths this build or CPU lacks, and ids out of range, refuse without touching acc. */
    for (int isa = -1; isa <= PYSCAN_ISA_COUNT; isa++) {
        if (isa >= 0 && isa < PYSCAN_ISA_COUNT && pyscan_isa_available(isa))
            continue;
        pyscan_counts acc = seed;
        int status = pyscan_count(isa, PYSCAN_F32, data, len / 4, 0, &acc);
        CHECK(status == PYSCAN_ERR_REFUSED && memcmp(&acc, &seed, sizeof acc) == 0, PYSCAN_ISA_SCALAR, c,
              "unavailable path %d returned %d", isa, status);
    }
}

/* ---- rewrites -------------------------------------------------------------------------------- */

static int apply(int isa, const struct control *c, const void *src, void *dst, size_t n, pyscan_change_stats *acc)
{
    if (c->op == OP_FAKE_QUANT)
        return pyscan_fake_quant(isa, src, dst, c->n_rows, c->row_len, c->group, c->qmax, c->swap, acc);
    return pyscan_transform(isa, c->op, c->param, src, dst, n, c->swap, acc);
}

static const pyscan_change_stats STATS_SEED = {3, 0.0, 0.0, 0};

struct rewrite {
    int status;
    pyscan_change_stats dry, copy, in_place;
    unsigned char *copy_out, *in_place_out; /* n * 4 bytes each, malloc'd */
};

static int same_stats(const pyscan_change_stats *a, const pyscan_change_stats *b)
{
    return a->changed == b->changed && a->skipped_groups == b->skipped_groups && memcmp(&a->max_abs_error, &b->max_abs_error, sizeof(double)) == 0 &&
           memcmp(&a->max_rel_error, &b->max_rel_error, sizeof(double)) == 0;
}

static void run_rewrite(int isa, const struct control *c, const unsigned char *data, size_t n, struct rewrite *r)
{
    size_t nbytes = 4 * n;
    unsigned char *src_block, *dst_block, *io_block;

    /* dry run */
    const unsigned char *src = place(data, nbytes, c->offset, &src_block);
    r->dry = STATS_SEED;
    r->status = apply(isa, c, src, NULL, n, &r->dry);
    CHECK(memcmp(src, data, nbytes) == 0, isa, c, "a dry run wrote to its input");

    /* into a separate buffer, at a different alignment, pre-filled with a pattern */
    unsigned char *pattern = malloc(nbytes + 1);
    if (pattern == NULL)
        abort();
    memset(pattern, 0x5A, nbytes + 1);
    unsigned char *dst = place(pattern, nbytes, (c->offset * 7 + 3) % 64, &dst_block);
    r->copy = STATS_SEED;
    int status = apply(isa, c, src, dst, n, &r->copy);
    CHECK(status == r->status, isa, c, "status %d into a copy, %d as a dry run", status, r->status);
    CHECK(memcmp(src, data, nbytes) == 0, isa, c, "a rewrite into a copy wrote to its input");
    if (status != PYSCAN_OK)
        CHECK(memcmp(dst, pattern, nbytes) == 0, isa, c, "a refused rewrite wrote to dst");
    r->copy_out = malloc(nbytes + 1);
    if (r->copy_out == NULL)
        abort();
    memcpy(r->copy_out, dst, nbytes);
    free(dst_block);
    free(src_block);
    free(pattern);

    /* in place */
    unsigned char *io = place(data, nbytes, c->offset, &io_block);
    r->in_place = STATS_SEED;
    status = apply(isa, c, io, io, n, &r->in_place);
    CHECK(status == r->status, isa, c, "status %d in place, %d as a dry run", status, r->status);
    r->in_place_out = malloc(nbytes + 1);
    if (r->in_place_out == NULL)
        abort();
    memcpy(r->in_place_out, io, nbytes);
    free(io_block);
}

static void free_rewrite(struct rewrite *r)
{
    free(r->copy_out);
    free(r->in_place_out);
}

/*
 * Is the scalar result bound to be idempotent?  Transforms: always.  Fake quant: for every qmax
 * the kernel accepts (1..128; pyscan uses 127 and 7).  Above 128 the BF16 scale's relative error
 * (up to 2^-9) could move rint(max|x| / s) off qmax, which is why pyscan_fake_quant refuses it.
 */
static int idempotence_promised(const struct control *c)
{
    return c->op != OP_FAKE_QUANT || c->qmax <= 128;
}

/* The scalar result against the README's promises. */
static void check_scalar_rewrite(const struct control *c, const unsigned char *data, size_t n, const struct rewrite *r)
{
    const int isa = PYSCAN_ISA_SCALAR;
    size_t nbytes = 4 * n;
    if (r->status != PYSCAN_OK) {
        CHECK(same_stats(&r->dry, &STATS_SEED) && same_stats(&r->copy, &STATS_SEED) &&
                  same_stats(&r->in_place, &STATS_SEED),
              isa, c, "a refused rewrite touched the stats");
        CHECK(memcmp(r->in_place_out, data, nbytes) == 0, isa, c, "a refused rewrite changed the data in place");
        return;
    }
    CHECK(same_stats(&r->dry, &r->copy) && same_stats(&r->dry, &r->in_place), isa, c,
          "stats differ between dry run, copy and in place");
    CHECK(memcmp(r->copy_out, r->in_place_out, nbytes) == 0, isa, c, "copy and in-place outputs differ");
    uint64_t changed = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t before = load_u32(data + 4 * i, c->swap), after = load_u32(r->copy_out + 4 * i, c->swap);
        changed += before != after;
        CHECK(!is_nan_bits(before) || is_nan_bits(after), isa, c, "word %zu: NaN %08x became %08x", i, before, after);
    }
    CHECK(r->copy.changed - STATS_SEED.changed == changed, isa, c, "stats say %llu changed, %llu did",
          (unsigned long long)(r->copy.changed - STATS_SEED.changed), (unsigned long long)changed);
    CHECK(!isnan(r->copy.max_abs_error) && !isnan(r->copy.max_rel_error), isa, c, "NaN error statistics");

    /* Idempotence: the mode applied to its own output changes nothing. */
    if (!idempotence_promised(c))
        return;
    unsigned char *block;
    const unsigned char *again = place(r->copy_out, nbytes, c->offset, &block);
    pyscan_change_stats second = STATS_SEED;
    int status = apply(isa, c, again, NULL, n, &second);
    free(block);
    CHECK(status == PYSCAN_OK && second.changed == STATS_SEED.changed, isa, c,
          "not idempotent: a second pass changes %llu more words",
          (unsigned long long)(second.changed - STATS_SEED.changed));
}

static void check_rewrite(const struct control *c, const unsigned char *data, size_t len)
{
    size_t n = c->op == OP_FAKE_QUANT ? c->n_rows * c->row_len : len / 4;
    struct rewrite ref;
    run_rewrite(PYSCAN_ISA_SCALAR, c, data, n, &ref);
    check_scalar_rewrite(c, data, n, &ref);
    for (int k = 1; k < n_isas; k++) {
        int isa = isas[k];
        struct rewrite r;
        run_rewrite(isa, c, data, n, &r);
        CHECK(r.status == ref.status, isa, c, "status %d, scalar %d", r.status, ref.status);
        CHECK(same_stats(&r.dry, &ref.dry), isa, c,
              "dry-run stats: changed %llu max_abs %a max_rel %a; scalar %llu %a %a",
              (unsigned long long)r.dry.changed, r.dry.max_abs_error, r.dry.max_rel_error,
              (unsigned long long)ref.dry.changed, ref.dry.max_abs_error, ref.dry.max_rel_error);
        CHECK(same_stats(&r.copy, &ref.copy), isa, c, "stats of the rewrite into a copy differ");
        CHECK(same_stats(&r.in_place, &ref.in_place), isa, c, "stats of the rewrite in place differ");
        for (size_t i = 0; i < n; i++) {
            CHECK(memcmp(r.copy_out + 4 * i, ref.copy_out + 4 * i, 4) == 0, isa, c,
                  "copy word %zu of %zu: %08x, scalar %08x (input %08x)", i, n, load_u32(r.copy_out + 4 * i, c->swap),
                  load_u32(ref.copy_out + 4 * i, c->swap), load_u32(data + 4 * i, c->swap));
            CHECK(memcmp(r.in_place_out + 4 * i, ref.in_place_out + 4 * i, 4) == 0, isa, c,
                  "in-place word %zu of %zu: %08x, scalar %08x (input %08x)", i, n,
                  load_u32(r.in_place_out + 4 * i, c->swap), load_u32(ref.in_place_out + 4 * i, c->swap),
                  load_u32(data + 4 * i, c->swap));
        }
        free_rewrite(&r);
    }
    free_rewrite(&ref);
}

/* ---- the entry point ------------------------------------------------------------------------- */

static struct control parse_control(const uint8_t *b, size_t words)
{
    struct control c;
    c.dtype = b[0] & 3;
    switch (b[1] % 6) {
    case 4:
        c.op = OP_FAKE_QUANT;
        break;
    case 5:
        c.op = (b[1] & 1) ? -1 - (b[1] >> 4) : 4 + (b[1] >> 4); /* not an op */
        break;
    default:
        c.op = b[1] % 6;
    }
    c.param = b[2] < 0xF0 ? b[2] % 24 : b[2] < 0xF8 ? -(int)(b[2] - 0xEF) : 24 + (b[2] - 0xF8);
    c.swap = b[3] & 1;
    c.offset = (b[3] >> 1) & 63;
    c.tile = b[9] < 0xFC ? 1 + (size_t)(b[9] & 3) : TILES[b[9] - 0xFC];
    unsigned row_raw = b[4] | (unsigned)b[5] << 8, group_raw = b[6] | (unsigned)b[7] << 8;
    c.row_len = row_raw % (words + 1);
    c.n_rows = c.row_len ? words / c.row_len : row_raw % 4;
    c.group = group_raw == 0xFFFF ? SIZE_MAX : group_raw == 0xFFFE ? 0 : 1 + group_raw % (c.row_len + 1);
    c.qmax = QMAX[b[8] % (sizeof QMAX / sizeof *QMAX)];
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
    if (size < HEADER_BYTES)
        return -1; /* not worth keeping in the corpus */
    const uint8_t *payload = input + HEADER_BYTES;
    size_t payload_len = size - HEADER_BYTES;
    size_t tile = input[9] < 0xFC ? 1 + (size_t)(input[9] & 3) : TILES[input[9] - 0xFC];
    if (payload_len && tile > MAX_DATA_BYTES / payload_len)
        tile = MAX_DATA_BYTES / payload_len;
    size_t len = payload_len * tile;
    unsigned char *data = malloc(len + 1);
    if (data == NULL)
        abort();
    for (size_t t = 0; t < tile; t++)
        memcpy(data + t * payload_len, payload, payload_len);

    size_t rewrite_len = len < MAX_REWRITE_BYTES ? len : MAX_REWRITE_BYTES;
    struct control c = parse_control(input, rewrite_len / 4);
    c.tile = tile;
    check_count(&c, data, len);
    check_rewrite(&c, data, rewrite_len);
    free(data);
    return 0;
}

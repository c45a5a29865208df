/*
 * pyscan.h - the C half of pyscan: file mapping, precision-counting kernels
 * and the kernel dispatcher.
 *
 * Everything between the cffi markers below is also handed to cffi's cdef()
 * by csrc/cffi_build.py, so it must stay plain C declarations (no macros,
 * no includes).  In API mode the compiler then checks the binding against
 * these very declarations.
 *
 * Word layouts the kernels reason about (bit 31 / 15 on the left):
 *
 *   F32   s eeeeeeee mmmmmmm mmmmmmmmmmmmmmmm    low 16 bits = the part BF16 drops
 *   BF16  s eeeeeeee mmmmmmm
 *   F16   s eeeee mmmmmmmmmm
 */
#ifndef PYSCAN_H
#define PYSCAN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* cffi:begin */

/*
 * Counts accumulated by the kernels.  Every kernel ADDS to the struct it is
 * given, so a tensor can be split into chunks (and threads) and summed.
 * Which fields a kernel fills depends on the element type:
 *
 *   all types   words, nan, inf, zero (either sign), subnormal
 *   F32         low16_zero            low 16 bits zero: exactly representable in BF16
 *               fp16_exact            non-NaN and exactly representable in FP16
 *               low16_zero_minus_one  non-NaN w with fl(w - 1.0f) BF16-exact
 *   F16         bf16_exact            widened to F32, low 16 bits zero (as F32; NaNs too)
 *   BF16        fp16_exact            non-NaN and exactly representable in FP16
 */
typedef struct pyscan_counts {
    uint64_t words;
    uint64_t low16_zero;
    uint64_t fp16_exact;
    uint64_t bf16_exact;
    uint64_t nan;
    uint64_t inf;
    uint64_t zero;
    uint64_t subnormal;
    uint64_t low16_zero_minus_one;
} pyscan_counts;

/* Element types the kernels understand. */
enum pyscan_dtype { PYSCAN_F32 = 0, PYSCAN_F16 = 1, PYSCAN_BF16 = 2 };

/* Kernel paths.  A path exists in a build only on its architecture. */
enum pyscan_isa {
    PYSCAN_ISA_SCALAR = 0,
    PYSCAN_ISA_SSE2 = 1,
    PYSCAN_ISA_AVX2 = 2,
    PYSCAN_ISA_AVX512 = 3,
    PYSCAN_ISA_NEON = 4,
    PYSCAN_ISA_COUNT = 5
};

/* Name of an ISA ("scalar", "sse2", ...), or NULL for an out-of-range id. */
const char *pyscan_isa_name(int isa);

/* 1 if this build contains the path and this CPU can run it, else 0. */
int pyscan_isa_available(int isa);

/*
 * The path used when no ISA is named, chosen once: the one the environment
 * variable PYSCAN_ISA names ("scalar", "sse2", ...) when it is set, non-empty
 * and available here, otherwise the best available one.  (Python refuses an
 * unknown or unavailable PYSCAN_ISA itself; C callers get the best path.)
 */
int pyscan_isa_default(void);

/* What the kernel calls (pyscan_count, pyscan_transform, pyscan_fake_quant) return. */
enum pyscan_status {
    PYSCAN_OK = 0,
    PYSCAN_ERR_REFUSED = -1, /* the ISA is not available, or dtype / op / param / group / qmax is out of range */
    PYSCAN_FAULT = -2,       /* the memory vanished under the kernel: a mapped file shrank (SIGBUS, caught) */
    PYSCAN_ERR_CHECK = -3,   /* pyscan_rewrite_to_file: a rewritten piece would change again (a faulty kernel) */
    PYSCAN_ERR_WRITE = -4    /* pyscan_rewrite_to_file: pwrite failed (the errno is stored) */
};

/*
 * Count the n elements at data (unaligned is fine) with the kernel of the
 * given ISA, adding into *acc.  swap != 0 byte-swaps every element first
 * (file byte order differs from the host's).  Returns PYSCAN_OK, or
 * PYSCAN_ERR_REFUSED when the ISA is not available or dtype is unknown (acc
 * untouched), or PYSCAN_FAULT when the memory vanished under the kernel (a
 * mapped file shrank: SIGBUS, caught; acc then holds partial counts).  The
 * same PYSCAN_FAULT applies to every kernel call.
 */
int pyscan_count(int isa, int dtype, const void *data, size_t n, int swap,
                 pyscan_counts *acc);

/*
 * What a rewrite changed, accumulated like pyscan_counts.  Errors are
 * computed in F32 (|new - old| is exact for every op here) over non-NaN
 * inputs that changed; a finite value rounded to infinity gives +inf.
 */
typedef struct pyscan_change_stats {
    uint64_t changed;     /* words whose bits changed */
    double max_abs_error; /* max |new - old| */
    double max_rel_error; /* max |new - old| / |old| */
    uint64_t skipped_groups; /* fake quantization: groups left unchanged although not all zero (see below) */
} pyscan_change_stats;

/* Rewrites of F32 words.  Every op maps a NaN to a NaN (quiet bit set). */
enum pyscan_op {
    PYSCAN_OP_TRUNCATE_MANTISSA = 0, /* keep param (0..23) explicit mantissa bits, toward zero */
    PYSCAN_OP_ROUND_MANTISSA = 1,    /* same, to nearest, ties to even; overflow to infinity */
    PYSCAN_OP_TRUNCATE_FP16 = 2,     /* to IEEE FP16 toward zero and back (overflow to +-65504) */
    PYSCAN_OP_ROUND_FP16 = 3         /* to IEEE FP16 nearest-even and back (overflow to infinity) */
};

/*
 * Apply op to the n F32 words at src, adding what changed into *acc, and
 * store the result at dst: dst == NULL is a dry run; dst == src rewrites in
 * place, storing only vectors that changed (clean pages stay clean); any
 * other dst (not overlapping src) receives every word.  Returns PYSCAN_OK, or
 * PYSCAN_ERR_REFUSED for an unavailable ISA or a bad op / param.
 */
int pyscan_transform(int isa, int op, int param, const void *src, void *dst, size_t n, int swap,
                     pyscan_change_stats *acc);

/*
 * Symmetric absmax fake quantization of n_rows rows of row_len F32 words, in
 * groups of group words along each row (the last group of a row may be
 * shorter).  Per group: s = bf16(max|x| / qmax), q = clamp(rint(x / s),
 * -qmax, qmax), x' = q * s, all in F32 (s rounded to BF16 keeps q * s exact,
 * so the op is idempotent).  NaN and infinities are left as they are and
 * ignored for the maximum; an all-zero group is unchanged, and so is one whose
 * scale would be subnormal or whose qmax * s overflows (there q * s would not
 * be exact); acc->skipped_groups counts those last two kinds (a group with a
 * non-zero finite value left unchanged).  qmax is 1..128.  src and dst as for
 * pyscan_transform.
 * Returns PYSCAN_OK or PYSCAN_ERR_REFUSED.
 */
int pyscan_fake_quant(int isa, const void *src, void *dst, size_t n_rows, size_t row_len, size_t group,
                      int qmax, int swap, pyscan_change_stats *acc);

/*
 * Writing a rewrite into a file.  A write lock lets threads share one output
 * file: ext4 serializes buffered writes to a file on its inode lock, and a
 * second writer spins there (30% of all CPU time in perf) where it sleeps on
 * ours.  pyscan_write_lock_new returns NULL when out of memory.
 */
typedef struct pyscan_write_lock pyscan_write_lock;
pyscan_write_lock *pyscan_write_lock_new(void);
void pyscan_write_lock_free(pyscan_write_lock *lock);

/* pwrite all n bytes at offset, holding lock (NULL: none).  Returns 0 or an errno value. */
int pyscan_write_all(int fd, const void *data, size_t n, uint64_t offset, pyscan_write_lock *lock);

/* What pyscan_rewrite_to_file runs: op and param as for pyscan_transform, or
 * op PYSCAN_OP_FAKE_QUANT with param = qmax, row_len and group as for
 * pyscan_fake_quant. */
enum { PYSCAN_OP_FAKE_QUANT = 4 };
typedef struct pyscan_rewrite {
    int op;
    int param;
    size_t row_len;
    size_t group;
} pyscan_rewrite;

/*
 * Rewrite the n F32 words at src into fd at offset, piece by piece through
 * buffer (buffer_words words; fake quantization writes whole rows, so at
 * least one row): each piece is rewritten into the buffer, run through check
 * (normally how itself: every op here is idempotent, so a change means a
 * faulty kernel; a different op lets a test make the check fail), and written
 * with pyscan_write_all under lock.  What changed is added into *acc.
 * Returns PYSCAN_OK, PYSCAN_ERR_REFUSED (bad op, or a buffer under one row),
 * PYSCAN_FAULT (src shrank), PYSCAN_ERR_CHECK, or PYSCAN_ERR_WRITE with the
 * errno in *write_error.  The pieces before a failure are already written.
 */
int pyscan_rewrite_to_file(int isa, const pyscan_rewrite *how, const pyscan_rewrite *check,
                           const void *src, size_t n, int swap,
                           void *buffer, size_t buffer_words, int fd, uint64_t offset,
                           pyscan_write_lock *lock, pyscan_change_stats *acc, int *write_error);

/*
 * A read-only (or, with writable != 0, shared writable) mapping of a whole
 * regular file.  An empty file maps to base == NULL, size == 0.
 *
 * If the file shrinks while mapped, a read of a page past its new end outside
 * a kernel call (Python's own reads, the string walk) does not kill the
 * process: the rest of the mapping turns into zero pages and faulted is set.
 * A reader must check pyscan_map_faulted() before it trusts what it read.
 * The struct must stay at its address from open to close.
 */
typedef struct pyscan_map {
    void *base;
    uint64_t size;
    int writable;
    int faulted; /* set by the SIGBUS handler; read it with pyscan_map_faulted() */
} pyscan_map;

/* 1 if a read of the mapping faulted (the file shrank) and found zeros instead of data. */
int pyscan_map_faulted(const pyscan_map *map);

/*
 * Map path.  Returns 0, or an errno value (EISDIR / EINVAL for something
 * that is not a regular file).  Never blocks on FIFOs or devices.
 */
int pyscan_map_open(const char *path, int writable, pyscan_map *out);

/*
 * Map the pages of [offset, offset + length) in one call before they are
 * read (MADV_POPULATE_READ), instead of taking a page fault every few pages.
 * A hint: on kernels without it, nothing happens and reads fault as usual.
 */
void pyscan_map_prefetch(const pyscan_map *map, uint64_t offset, uint64_t length);

/*
 * Tell the kernel how [offset, offset + length) will be read: sparse != 0 for
 * a few small reads scattered over it (MADV_RANDOM: a page fault reads only
 * its own page, no read-ahead), 0 to restore pyscan_map_open's default for
 * it (MADV_SEQUENTIAL: read ahead, front to back).  A hint: errors are
 * ignored.
 */
void pyscan_map_advise(const pyscan_map *map, uint64_t offset, uint64_t length, int sparse);

/*
 * Start reading [offset, offset + length) into the page cache now, without
 * waiting or mapping it (MADV_WILLNEED, in page-aligned 128 KiB requests:
 * Linux reads only the first max(read_ahead_kb, max_sectors_kb) of a larger
 * one, and 128 KiB is read_ahead_kb's default): where pyscan_map_advise has
 * turned read-ahead off, the way to read a large range without a disk read
 * per page fault.  A hint: errors are ignored.
 */
void pyscan_map_willneed(const pyscan_map *map, uint64_t offset, uint64_t length);

/*
 * Drop the pages of [offset, offset + length) from this process's resident
 * set once they have been read (whole pages inside the range only).  The
 * file's data stays in the page cache and is read back on the next access,
 * so this only bounds memory: scanning a 100 GB file keeps RSS small.
 */
void pyscan_map_release(const pyscan_map *map, uint64_t offset, uint64_t length);

/*
 * Ask the kernel to start writing [offset, offset + length) of fd to disk
 * now, without waiting (sync_file_range SYNC_FILE_RANGE_WRITE on Linux), so
 * the final fsync finds little left to do.  A hint: errors are ignored.
 */
void pyscan_start_writeback(int fd, uint64_t offset, uint64_t length);

/* Unmap; safe on a zeroed or already closed map. */
void pyscan_map_close(pyscan_map *map);

/*
 * Rename from to to, failing with EEXIST instead of replacing an existing to
 * (renameat2 RENAME_NOREPLACE, or link + unlink where the file system lacks
 * it).  Returns 0 or an errno value.
 */
int pyscan_rename_noreplace(const char *from, const char *to);

/*
 * Read count GGUF tensor infos starting at offset inside [base, base + size),
 * the common, valid case only, into fields: PYSCAN_INFO_FIELDS u64 per tensor
 * (name offset, name length, n_dims, ne[4] (absent ones 1), type id, data
 * offset, element count); fields NULL only finds the end.  *end is the
 * offset past the last tensor read.
 * Returns -1 when all were read, else the index of the first tensor that is not plainly
 * valid (empty or longer than max_name name, n_dims > 4, a negative
 * dimension, an element count past INT64_MAX, or past the end): the caller's
 * careful reader takes over there and says what is wrong.
 */
#define PYSCAN_INFO_FIELDS 10
int64_t pyscan_walk_tensor_infos(const void *base, uint64_t size, uint64_t offset,
                                 uint64_t count, int swap, uint64_t max_name,
                                 uint64_t *fields, uint64_t *end);

/*
 * Check the data layout of count tensor infos from pyscan_walk_tensor_infos, as
 * ggml's loader does: each relative data offset a multiple of alignment, a
 * known type's row length (ne0) a multiple of its block, and each offset the
 * padded end of the tensor before it (*expected; *after_unknown when that one's
 * type is unknown, so its size is too).  block_elements[t] and block_bytes[t]
 * describe type id t < n_types (block_elements 0: unknown).  Stores each
 * tensor's byte size in nbytes (UINT64_MAX: unknown type) and turns its
 * offset (field 8) into an absolute one (data_offset + relative).  Returns -1
 * when all are plainly valid, else the index of the first that is not (or
 * whose sums overflow): the caller's careful checker says what is wrong.
 * Called chunk after chunk, *expected and *after_unknown carry over.
 */
int64_t pyscan_place_tensors(uint64_t *fields, uint64_t count, uint64_t data_offset, uint64_t alignment,
                             const uint64_t *block_elements, const uint64_t *block_bytes, uint64_t n_types,
                             uint64_t *expected, int *after_unknown, uint64_t *nbytes);

/*
 * pyscan_count for n pieces at once: piece i (dtypes[i], lengths[i] elements
 * at addresses[i]) adds into accs[acc_index[i]].  Returns 0, or the first
 * non-zero status of pyscan_count (the pieces after it are not counted).
 */
int pyscan_count_batch(int isa, size_t n, const int32_t *dtypes,
                       const uint64_t *addresses, const uint64_t *lengths,
                       int swap, pyscan_counts *accs,
                       const uint32_t *acc_index);

/*
 * Walk count GGUF strings (u64 length + bytes) starting at offset inside
 * [base, base + size).  On success stores the offset just past the last one
 * in *end and returns PYSCAN_OK; returns PYSCAN_SKIP_TRUNCATED if a string
 * runs past the end, PYSCAN_SKIP_TOO_LONG if one is longer than max_len.
 * swap != 0 reads big-endian lengths.
 */
enum pyscan_skip_status { PYSCAN_SKIP_TRUNCATED = 1, PYSCAN_SKIP_TOO_LONG = 2 };

int pyscan_skip_strings(const void *base, uint64_t size, uint64_t offset,
                        uint64_t count, int swap, uint64_t max_len,
                        uint64_t *end);

/* cffi:end */

#ifdef __cplusplus
}
#endif

#endif /* PYSCAN_H */

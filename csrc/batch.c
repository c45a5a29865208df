/*
 * batch.c - many small things in one call: a file may hold 200,000 tensors,
 * and a Python loop over them costs more than the work itself.
 */
#include <string.h>

#include "pyscan.h"

/*
 * Tensor info, as GGUF stores it:
 *
 *   u64 name length | name bytes | u32 n_dims | u64 ne[n_dims] | u32 type | u64 offset
 */
int64_t pyscan_walk_tensor_infos(const void *base, uint64_t size, uint64_t offset, uint64_t count, int swap,
                                 uint64_t max_name, uint64_t *fields, uint64_t *end)
{
    const unsigned char *p = base;
    *end = offset;
    for (uint64_t i = 0; i < count; i++, *end = offset) {
        uint64_t scratch[PYSCAN_INFO_FIELDS];
        uint64_t *out = fields ? fields + i * PYSCAN_INFO_FIELDS : scratch; /* NULL: only find the end */
        uint64_t len, dims[4] = { 1, 1, 1, 1 }, data_offset, elements = 1;
        uint32_t n_dims, type;
        if (offset > size || size - offset < sizeof len)
            return (int64_t)i;
        memcpy(&len, p + offset, sizeof len);
        len = swap ? __builtin_bswap64(len) : len;
        if (len == 0 || len > max_name || size - offset - sizeof len < len + sizeof n_dims)
            return (int64_t)i;
        out[0] = offset + sizeof len;
        out[1] = len;
        offset += sizeof len + len;
        memcpy(&n_dims, p + offset, sizeof n_dims);
        n_dims = swap ? __builtin_bswap32(n_dims) : n_dims;
        offset += sizeof n_dims;
        if (n_dims > 4 || size - offset < 8u * n_dims + sizeof type + sizeof data_offset)
            return (int64_t)i;
        for (uint32_t d = 0; d < n_dims; d++) {
            memcpy(&dims[d], p + offset, sizeof dims[d]);
            dims[d] = swap ? __builtin_bswap64(dims[d]) : dims[d];
            offset += sizeof dims[d];
            /* A negative (as int64) dimension, or an element count past INT64_MAX: the careful reader says which. */
            if (dims[d] > (uint64_t)INT64_MAX || __builtin_mul_overflow(elements, dims[d], &elements) ||
                elements > (uint64_t)INT64_MAX)
                return (int64_t)i;
        }
        memcpy(&type, p + offset, sizeof type);
        offset += sizeof type;
        memcpy(&data_offset, p + offset, sizeof data_offset);
        offset += sizeof data_offset;
        out[2] = n_dims;
        memcpy(out + 3, dims, sizeof dims);
        out[7] = swap ? __builtin_bswap32(type) : type;
        out[8] = swap ? __builtin_bswap64(data_offset) : data_offset;
        out[9] = elements;
    }
    *end = offset;
    return -1;
}

int64_t pyscan_place_tensors(uint64_t *fields, uint64_t count, uint64_t data_offset, uint64_t alignment,
                             const uint64_t *block_elements, const uint64_t *block_bytes, uint64_t n_types,
                             uint64_t *expected, int *after_unknown, uint64_t *nbytes)
{
    for (uint64_t i = 0; i < count; i++) {
        uint64_t *info = fields + i * PYSCAN_INFO_FIELDS;
        uint64_t type = info[7], relative = info[8], elements = info[9], row = info[3], size = 0, padded;
        int known = type < n_types && block_elements[type] != 0;
        if (alignment == 0 || relative % alignment)
            return (int64_t)i;
        if (known) {
            if (row % block_elements[type] || __builtin_mul_overflow(elements / block_elements[type],
                                                                     block_bytes[type], &size))
                return (int64_t)i;
        }
        if (relative < *expected || (relative != *expected && !*after_unknown))
            return (int64_t)i;
        /* expected = relative + size rounded up to the alignment, each step checked */
        if (__builtin_add_overflow(size, alignment - 1, &padded) ||
            __builtin_add_overflow(relative, padded / alignment * alignment, expected) ||
            __builtin_add_overflow(data_offset, relative, &info[8]))
            return (int64_t)i;
        *after_unknown = !known;
        nbytes[i] = known ? size : UINT64_MAX;
    }
    return -1;
}

int pyscan_count_batch(int isa, size_t n, const int32_t *dtypes, const uint64_t *addresses, const uint64_t *lengths,
                       int swap, pyscan_counts *accs, const uint32_t *acc_index)
{
    for (size_t i = 0; i < n; i++) {
        int status = pyscan_count(isa, dtypes[i], (const void *)(uintptr_t)addresses[i], (size_t)lengths[i], swap,
                                  accs + acc_index[i]);
        if (status != 0)
            return status;
    }
    return 0;
}

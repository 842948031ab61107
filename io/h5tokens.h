/* h5tokens.h - read a 1-D integer dataset (any integer type: uint16, int32,
 * int64, ...) from an HDF5 file as int64 token ids. Not a writer. */
#ifndef UPQ_H5TOKENS_H
#define UPQ_H5TOKENS_H

#include <stdint.h>

/* *ids is malloc'ed (caller frees), *n its length. UPQ_EINPUT naming file and dataset
 * when absent, not 1-D, or not integer; UPQ_EIO on read failure. */
int h5_read_tokens(const char *path, const char *dataset, int64_t **ids, int64_t *n);

#endif

/* h5tokens_write.h - write a token stream as a 1-D int32 HDF5 dataset (the format
 * io/h5tokens.h reads), serially, atomically (temporary name, then rename).
 * Not a reader; not parallel. */
#ifndef UPQ_H5TOKENS_WRITE_H
#define UPQ_H5TOKENS_WRITE_H

#include <stdint.h>

/* Creates `path` with dataset `dataset` (e.g. "/tokens", groups created) holding ids (n)
 * and the attribute "n_tokens". UPQ_EIO naming the file and dataset on failure. */
int h5_write_tokens(const char *path, const char *dataset, const int32_t *ids, int64_t n);

#endif

/* records.h - a file of one record per line (JSONL eval items, multiple-choice tasks):
 * lines read with CR/LF stripped, blank lines skipped, each parsed by the caller's function
 * with a "FILE:LINE" label for its messages, into one growing array (prefix rec_).
 * Not a JSON parser: the parse function is. */
#ifndef UPQ_RECORDS_H
#define UPQ_RECORDS_H

#include <stddef.h>
#include <stdint.h>

/* Parses one line (len bytes, NUL-terminated) into *item; UPQ_EINPUT naming label. */
typedef int (*rec_parse_fn)(const char *line, size_t len, const char *label, void *item);
/* Frees n parsed items and the array. */
typedef void (*rec_free_fn)(void *items, int64_t n);

/* Reads every non-empty line of path into *items (n of them, item_size bytes each).
 * what names the records in messages: "PATH: cannot open the WHAT file",
 * "PATH: no WHAT items". On failure nothing stays allocated and *items is NULL. */
int rec_read_lines(const char *path, const char *what, size_t item_size, rec_parse_fn parse,
                   rec_free_fn free_items, void **items, int64_t *n);

#endif

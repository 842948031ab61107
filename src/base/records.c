/* records.c - one record per line into an array (records.h). */
#include "records.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include "upq_err.h"

int rec_read_lines(const char *path, const char *what, size_t item_size, rec_parse_fn parse,
                   rec_free_fn free_items, void **items, int64_t *n)
{
    *items = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return UPQ_FAIL(UPQ_EINPUT, "%s: cannot open the %s file", path, what);
    char *line = NULL, label[4200];
    size_t cap = 0;
    ssize_t got;
    int64_t have = 0;
    int rc = UPQ_OK;
    for (int64_t ln = 1; !rc && (got = getline(&line, &cap, f)) > 0; ln++) {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (got == 0) continue;
        if (*n == have) {
            have = have ? 2 * have : 256;
            void *p = realloc(*items, (size_t)have * item_size);
            if (!p) {
                rc = UPQ_FAIL(UPQ_EIO, "%s: out of memory", path);
                break;
            }
            *items = p;
        }
        snprintf(label, sizeof label, "%s:%lld", path, (long long)ln);
        rc = parse(line, (size_t)got, label, (char *)*items + (size_t)*n * item_size);
        if (!rc) (*n)++;
    }
    if (!rc && ferror(f)) rc = UPQ_FAIL(UPQ_EIO, "%s: read error", path);
    if (!rc && *n == 0) rc = UPQ_FAIL(UPQ_EINPUT, "%s: no %s items", path, what);
    free(line);
    fclose(f);
    if (rc) {
        free_items(*items, *n);
        *items = NULL;
        *n = 0;
    }
    return rc;
}

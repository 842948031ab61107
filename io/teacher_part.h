/* teacher_part.h - the partial state of a teacher shard being computed: "<shard>.part", a
 * fixed header (magic, a key naming the run, the record size) followed by fixed-size row
 * records appended in row order (the caller fsyncs after each block of rows). The rows
 * present survive a kill -9; a rerun with the same key continues after the last complete
 * row. Plain POSIX I/O on one process (rank 0); the row layout belongs to the caller
 * (src/stages/teacher.c). */
#ifndef UPQ_TEACHER_PART_H
#define UPQ_TEACHER_PART_H

#include <stdint.h>

typedef struct {
    int fd;
    int64_t rowbytes, rows; /* record size; complete rows in the file */
    char path[4200];
} tpart;

/* Opens or creates path. A file whose header names another key or record size, or that
 * is shorter than the header, is started afresh; a torn last record is cut off.
 * p->rows: the complete rows already there. UPQ_EIO naming the file. */
int tpart_open(tpart *p, const char *path, const char key[65], int64_t rowbytes);
/* Appends n rows (n * rowbytes bytes). UPQ_EIO naming the file. */
int tpart_append(tpart *p, const void *rows, int64_t n);
/* fsync: the rows appended so far survive a crash of the machine, not only of upq. */
int tpart_sync(tpart *p);
/* Reads row r (< p->rows) into buf (rowbytes). UPQ_EIO naming the file and the row. */
int tpart_read(const tpart *p, int64_t r, void *buf);
void tpart_close(tpart *p);
/* Closes and removes the file (after the shard is committed). */
void tpart_remove(tpart *p);

#endif

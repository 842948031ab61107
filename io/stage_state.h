/* stage_state.h - the one way upq records what a stage has finished (prefix ss_): a file
 * is begun under "<path>.tmp", written, fsynced, and committed by rename (then the
 * folder is fsynced), so a crash leaves either the old file or the new one, never a
 * complete-looking half. On top of that, a validated stage record: magic, stage name,
 * the key of the options the result depends on, a payload and its SHA-256.
 * Rank-local file I/O only: the agreement of ranks on a commit is par_commit (mpi/par.h).
 * Format and use: docs/stage-state.md. */
#ifndef UPQ_STAGE_STATE_H
#define UPQ_STAGE_STATE_H

#include <stddef.h>
#include <stdint.h>

#define SS_MAGIC "upq-stage-state 1"

/* "<path>.tmp", the name a writer begins under (same on every rank). */
void ss_tmp_name(const char *path, char *tmp, size_t cap);
/* The commit: fsync tmp, rename it to path, fsync the folder (best effort: some file
 * systems refuse a directory fsync). UPQ_EIO naming both files. */
int ss_commit(const char *tmp, const char *path);
/* Drops an uncommitted tmp (absent is fine). */
void ss_abort(const char *tmp);
/* begin + write + commit of a byte buffer: path is replaced atomically or left as it
 * was (the tmp is removed on failure). UPQ_EIO naming the file. */
int ss_write(const char *path, const void *data, size_t n);

/* A stage record at `path`: stage name, key, payload (n bytes, may be 0). */
int ss_record_write(const char *path, const char *stage, const char *key, const void *payload, size_t n);

enum {
    SS_ABSENT = 0,  /* no file: the stage has not committed anything */
    SS_MATCH,       /* a valid record of this stage and key: *payload (malloc'ed) and *n set */
    SS_OTHER_KEY,   /* a valid record made with other options */
    SS_LEGACY,      /* upq <= 0.x format: see docs/stage-state.md (legacy_key tells if it matches) */
    SS_DAMAGED,     /* not a record, wrong stage, truncated, or checksum mismatch */
};
/* Reads and validates the record at path for `stage` and `key`. *state is one of the
 * above; *payload (caller frees; NULL unless SS_MATCH) and *n. A file that exists but
 * cannot be read is UPQ_EIO naming it; every other outcome is UPQ_OK with *state set.
 * legacy_key: the old "stage.txt" format (the key and a newline, nothing else) is
 * SS_LEGACY; *state becomes SS_MATCH instead when legacy_key is non-zero and the old file
 * holds exactly key (old run folders stay resumable). */
int ss_record_read(const char *path, const char *stage, const char *key, int legacy_key, int *state,
                   void **payload, size_t *n);
/* Name of a state, for messages. */
const char *ss_state_name(int state);

#endif

/* h5arrays.h - float32 arrays of any rank and numeric attributes in plain HDF5
 * files (prefix h5a_): `upq logits` output and golden references (../shared's
 * golden.h5: int32 token ids, string attributes, the members of a group), and the two
 * edits tests use to damage a file. Serial. Not the model container (h5model.h). */
#ifndef UPQ_H5ARRAYS_H
#define UPQ_H5ARRAYS_H

#include <stdint.h>

typedef struct {
    const char *name;     /* dataset path, e.g. "/logits" */
    int ndim;             /* 1..8 */
    int64_t shape[8];
    const float *data;
} h5a_array;

/* Writes the arrays as float32 datasets to a new file (path.tmp, then renamed).
 * UPQ_EIO naming file and dataset on failure. */
int h5a_write(const char *path, const h5a_array *arrays, int n);

/* Reads any float dataset as float32 into a new buffer (caller frees); *ndim and shape
 * receive its rank and dims. UPQ_EINPUT naming file and dataset when absent or not float. */
int h5a_read_f32(const char *path, const char *dataset, float **data, int *ndim,
                 int64_t shape[8]);
/* Reads a numeric scalar attribute `attr` of object `obj` ("/" or a group/dataset path). */
int h5a_read_attr_f64(const char *path, const char *obj, const char *attr, double *v);

/* Reads an integer dataset as int32 into a new buffer (caller frees), *n elements. */
int h5a_read_i32(const char *path, const char *dataset, int32_t **data, int64_t *n);
/* Reads an integer attribute (scalar or 1-D) as int32 into a new buffer (caller frees). */
int h5a_read_attr_i32(const char *path, const char *obj, const char *attr, int32_t **data, int64_t *n);
/* Reads a string attribute (fixed or variable length, ASCII or UTF-8) into a new
 * NUL-terminated buffer (caller frees). */
int h5a_read_attr_str(const char *path, const char *obj, const char *attr, char **s);
/* The names of the members of group `group`, in name order: *names is one allocation
 * (caller frees) of *n pointers followed by the strings. */
int h5a_list(const char *path, const char *group, char ***names, int64_t *n);

/* Damage for tests: removes attribute attr of obj, or the link at `link`. */
int h5a_delete_attr(const char *path, const char *obj, const char *attr);
int h5a_delete_link(const char *path, const char *link);

#endif

/* The dataset handle (include/nabla/data.h), shared by the loaders, the
 * queries and the batch code. Internal to nabla. */
#ifndef NABLA_DATA_INTERNAL_H
#define NABLA_DATA_INTERNAL_H

#include <stdatomic.h>

#include "base.h"
#include "nabla/data.h"

/* The samples of one field as read from its file. A dataset and the parts
 * split from it point at the same blob, which the last of them frees. */
typedef struct nb__blob {
    atomic_size_t refs;
    void *data; /* from nb_malloc / nb_calloc */
} nb__blob;

typedef struct nb__field {
    char *name, *path;
    nb_field_type type;
    int rank;                   /* of one sample */
    int64_t shape[NB_MAX_DIMS]; /* of one sample */
    size_t numel, bytes;        /* elements and bytes in one sample */
    nb__blob *blob;
    size_t first;               /* the blob's sample that is this dataset's sample 0 */
} nb__field;

struct nb_dataset {
    size_t n;
    int n_fields;
    nb__field *fields;
    nb_status status;
    char err[NB_ERR_CAP];
};

/* Bytes of one element of a field type (0 for NB_FIELD_NONE). */
size_t nb__field_type_size(nb_field_type t);

/* A dataset of n_fields empty fields, or NULL (message in err, NB_ERR_CAP
 * bytes, unless err is NULL). */
nb_dataset *nb__dataset_new(int n_fields, char *err);

/* Fills field i of d from an array of `rank` axes (the first counting the
 * samples) whose data (from nb_malloc) the field takes over, also on failure.
 * Sets d's size from the first axis; the caller checks that fields agree.
 * The message goes to err (NB_ERR_CAP). */
nb_status nb__dataset_set_field(nb_dataset *d, int i, const char *name, const char *path, nb_field_type type,
                                int rank, const int64_t *shape, void *data, char *err);

/* Records a failure on d (rule 2 of core.h) and returns st. */
nb_status nb__dataset_fail(nb_dataset *d, nb_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Clears d's message: the call succeeded. */
nb_status nb__dataset_ok(nb_dataset *d);

/* Start of the data of sample i (of the dataset) of field f. */
static inline const unsigned char *nb__sample(const nb__field *f, size_t i)
{
    return (const unsigned char *)f->blob->data + (f->first + i) * f->bytes;
}

#endif

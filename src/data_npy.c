/* Datasets of the user's own arrays (`format: npy`): one .npy file per field,
 * read with nb_npy_read, whose first axes count the samples. */
#include <string.h>

#include "data_internal.h"
#include "io_util.h"
#include "nabla/io.h"

static nb_field_type field_type(nb_dtype dt)
{
    return dt == NB_F32 ? NB_FIELD_F32 : dt == NB_F64 ? NB_FIELD_F64 : NB_FIELD_I32;
}

/* The names: present, not empty, distinct. */
static nb_status check_names(const char *const *names, const char *const *paths, int n, char *err)
{
    for (int i = 0; i < n; i++) {
        if (!paths[i] || !names[i] || !names[i][0])
            return nb_io_fail(err, NB_ERR_CAP, NB_ERR_ARG, "nb_dataset_load_npy", "field %d has no name or no path", i);
        for (int j = 0; j < i; j++)
            if (!strcmp(names[i], names[j]))
                return nb_io_fail(err, NB_ERR_CAP, NB_ERR_ARG, "nb_dataset_load_npy",
                                  "field '%s' is given twice (%s and %s)", names[i], paths[j], paths[i]);
    }
    return NB_OK;
}

/* A field's array: at least one axis, none 0, and the first axis of the
 * first file. */
static nb_status check_array(const nb_tensor *t, const char *path, const nb_tensor *t0, const char *path0, char *err)
{
    if (t->rank < 1)
        return nb_io_fail(err, NB_ERR_CAP, NB_ERR_SHAPE, path,
                          "a 0-d array has no samples; the first axis must count them");
    for (int k = 0; k < t->rank; k++)
        if (t->shape[k] == 0)
            return nb_io_fail(err, NB_ERR_CAP, NB_ERR_SHAPE, path, "axis %d has size 0%s", k,
                              k ? "" : ": the file has no samples");
    if (t != t0 && t->shape[0] != t0->shape[0])
        return nb_io_fail(err, NB_ERR_CAP, NB_ERR_SHAPE, path,
                          "%lld samples (first axis), but %s has %lld; every file needs one row per sample",
                          (long long)t->shape[0], path0, (long long)t0->shape[0]);
    return NB_OK;
}

/* Reads and checks every file into t[0..n), freeing them all on failure. */
static nb_status read_all(const char *const *paths, int n, nb_tensor *t, char *err)
{
    nb_status st = NB_OK;
    int i = 0;
    for (; !st && i < n; i++) {
        st = nb_npy_read(paths[i], &t[i]); /* leaves its message in err */
        if (!st) st = check_array(&t[i], paths[i], &t[0], paths[0], err);
    }
    for (int j = 0; st && j < i; j++) nb_tensor_free(&t[j]);
    return st;
}

nb_status nb_dataset_load_npy(const char *const *names, const char *const *paths, int n, nb_dataset **out)
{
    char *err = nb__thread_err();
    if (out) *out = NULL;
    if (!names || !paths || !out || n < 1)
        return nb__thread_fail(NB_ERR_ARG, "nb_dataset_load_npy: no files, names or output given");
    nb_status st = check_names(names, paths, n, err);
    nb_tensor *t = st ? NULL : nb_calloc((size_t)n, sizeof *t);
    if (!st && !t) st = nb__thread_fail(NB_ERR_NOMEM, "nb_dataset_load_npy: out of memory");
    if (!st) st = read_all(paths, n, t, err);
    nb_dataset *d = st ? NULL : nb__dataset_new(n, err);
    if (!st && !d) st = NB_ERR_NOMEM;
    for (int i = 0; t && i < n; i++) {
        /* on failure the tensors not yet handed over are freed here */
        if (!st) st = nb__dataset_set_field(d, i, names[i], paths[i], field_type(t[i].dtype), t[i].rank,
                                            t[i].shape, t[i].data, err);
        else nb_tensor_free(&t[i]); /* zeroed already if read_all failed */
    }
    nb_free(t);
    if (st) nb_dataset_free(d);
    else *out = d;
    return st;
}

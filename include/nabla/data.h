/* nabla — datasets for training: samples read from IDX (MNIST) or .npy files,
 * a held-out validation part, seeded shuffles and batches copied into the
 * caller's buffer.
 *
 * A dataset holds N samples and one or more named fields. A field is an array
 * whose first axis counts the samples; the rest is the shape of one sample:
 *   IDX   "images"  u8  [N, rows, cols] (or any 1 to 4 axes in the file)
 *         "labels"  u8  [N]
 *   .npy  one field per file, named by the caller (the model's input), with
 *         the file's dtype: f32, f64 or i32 (an i8 file is read as i32 with a
 *         range check).
 * Data stays in the file's type in memory (60 000 MNIST images take 47 MB as
 * u8, not 188 MB as f32); nb_dataset_batch converts the samples of one batch.
 *
 * Errors (core.h, "Errors"): the loaders have no handle yet and leave their
 * message for the calling thread (nb_last_error). Every other call that can
 * fail leaves its message on the dataset it was given (nb_dataset_error), and
 * clears it when it succeeds. Messages name the file a field came from. A
 * dataset is used by one thread at a time; datasets made by nb_dataset_split
 * share data with their parent but may be used and freed independently. */
#ifndef NABLA_DATA_H
#define NABLA_DATA_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_dataset nb_dataset;

/* Element type of a field as stored. NB_FIELD_NONE answers a query about a
 * field that does not exist. */
typedef enum { NB_FIELD_NONE = -1, NB_FIELD_U8, NB_FIELD_I32, NB_FIELD_F32, NB_FIELD_F64 } nb_field_type;

/* "u8", "i32", "f32", "f64" ("none" for anything else). */
NB_API const char *nb_field_type_name(nb_field_type t);

/* Reads an IDX image file and its IDX label file, raw or gzip-compressed
 * (train-images-idx3-ubyte.gz and the like), into fields "images" (0) and
 * "labels" (1). Only element type 0x08 (unsigned byte) is read. Each file
 * must have 1 to 4 dimensions, none 0, and exactly the bytes its header
 * promises; the labels must be 1-D and as many as the images.
 * NB_ERR_IO when a file cannot be read, NB_ERR_FORMAT when one is malformed,
 * NB_ERR_SHAPE when the two do not agree, NB_ERR_OVERFLOW, NB_ERR_NOMEM. */
NB_API nb_status nb_dataset_load_idx(const char *images, const char *labels, nb_dataset **out);

/* Reads n .npy files (nb_npy_read), paths[i] into a field named names[i].
 * Every array must have rank >= 1, no dimension 0, and the same first axis.
 * Names must be distinct and not empty. */
NB_API nb_status nb_dataset_load_npy(const char *const *names, const char *const *paths, int n, nb_dataset **out);

/* Frees a dataset (NULL is fine). Data shared with datasets split from it
 * lives until the last of them is freed. */
NB_API void nb_dataset_free(nb_dataset *d);

/* The message of the last failed call on d, "" after a success; never NULL. */
NB_API const char *nb_dataset_error(const nb_dataset *d);
/* The status of the last call on d that can fail (NB_ERR_ARG for NULL). */
NB_API nb_status nb_dataset_status(const nb_dataset *d);

/* Number of samples (0 for NULL). */
NB_API size_t nb_dataset_size(const nb_dataset *d);
/* Number of fields (0 for NULL). */
NB_API int nb_dataset_num_fields(const nb_dataset *d);
/* Index of the field of that name, or -1. */
NB_API int nb_dataset_field(const nb_dataset *d, const char *name);
/* Name of a field, and the file it was read from; NULL for a bad index. */
NB_API const char *nb_dataset_field_name(const nb_dataset *d, int field);
NB_API const char *nb_dataset_field_path(const nb_dataset *d, int field);
/* Element type of a field as stored. */
NB_API nb_field_type nb_dataset_field_type(const nb_dataset *d, int field);
/* Shape of one sample of a field (the array's shape without its first axis)
 * into shape[0..rank), shape holding NB_MAX_DIMS values (or NULL to ask only
 * the rank); returns the rank (0 for labels), or -1 for a bad index. */
NB_API int nb_dataset_field_shape(const nb_dataset *d, int field, int64_t *shape);
/* Elements in one sample of a field (784 for 28x28 images, 1 for labels), or
 * 0 for a bad index. */
NB_API size_t nb_dataset_field_numel(const nb_dataset *d, int field);

/* Holds out the last floor(fraction * size) samples of d (the training
 * file's order: call it before shuffling) as a new dataset *holdout; d keeps
 * the samples before them. 0 <= fraction < 1, and at least one sample must
 * remain in d. fraction * size is taken as the integer it is within rounding
 * of, if any, so that 0.29 of 100 holds out 29 and not 28. No data is copied:
 * both datasets view the same memory. On failure d is unchanged and *holdout
 * is NULL; the message is on d. */
NB_API nb_status nb_dataset_split(nb_dataset *d, double fraction, nb_dataset **holdout);

/* Fills perm[0..n) with a permutation of 0..n-1 (Fisher-Yates, unbiased)
 * drawn from nb_rng seeded by seed and epoch: the same (seed, epoch) gives the
 * same permutation on every machine, and each epoch its own. */
NB_API void nb_shuffle(uint64_t seed, uint64_t epoch, size_t *perm, size_t n);

/* Copies samples idx[0..n) of a field, in that order, to dst, converted to
 * `to`, one sample after another (each sample's elements contiguous in
 * row-major order, so an input [B, 1, 28, 28] and one [B, 784] take the same
 * bytes). Float destinations get value * scale; an i32 destination takes only
 * integer fields (u8, i32), whose values are copied unchanged (scale is not
 * used). dst_bytes must be exactly n * nb_dataset_field_numel * size of `to`.
 * Nothing is written unless every index is below nb_dataset_size. Allocates
 * nothing. NB_ERR_ARG (bad field, index or dst_bytes), NB_ERR_DTYPE (float
 * data asked as i32), NB_ERR_OVERFLOW. */
NB_API nb_status nb_dataset_batch(nb_dataset *d, int field, const size_t *idx, size_t n, nb_dtype to, double scale,
                           void *dst, size_t dst_bytes);

/* Checks that every value of an integer field (u8 or i32) lies in
 * [0, classes); NB_ERR_RUNTIME names the file and the first sample outside,
 * e.g. "labels.idx: sample 17 has label 12; the model has 10 classes".
 * NB_ERR_DTYPE for a float field. The sample number counts in the file, so
 * that it can be found there also in a held-out part. */
NB_API nb_status nb_dataset_check_labels(nb_dataset *d, int field, int64_t classes);
/* Can every value of integer field `field` be held exactly by dtype `to`?
 * (Only i32 values beyond 2^24 fed to f32 cannot.) NB_ERR_DTYPE names the
 * file and the first such value. */
NB_API nb_status nb_dataset_check_exact(nb_dataset *d, int field, nb_dtype to);

#ifdef __cplusplus
}
#endif
#endif

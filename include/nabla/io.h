/* nabla — tensors in and out of files: NumPy .npy and .npz, and safetensors.
 *
 * Writes are atomic: data goes to a temporary file in the same folder that is
 * renamed over the target, so a crash never leaves a half-written file.
 * Calls on files and tensor sets leave their message for the calling thread
 * (nb_last_error); nb_weights_save / _load leave it on the graph (core.h,
 * "Errors"). */
#ifndef NABLA_IO_H
#define NABLA_IO_H

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads .npy versions 1.0-3.0, little-endian, C order, dtypes f4, f8, i4, i8
 * (i8 is converted to i32 with a range check). */
NB_API nb_status nb_npy_read(const char *path, nb_tensor *out);
/* The same from a buffer in memory (used by the fuzzer). */
NB_API nb_status nb_npy_parse(const void *buf, size_t len, nb_tensor *out);
/* Reads a .npy file into float dtype `as` (NB_F32 or NB_F64), for float
 * inputs: f4 and f8 are converted; i4 and i8 too, when every value is an
 * integer the float holds exactly (|v| <= 2^24 for f32, 2^53 for f64),
 * otherwise an error naming the file and the element. */
NB_API nb_status nb_npy_read_float(const char *path, nb_dtype as, nb_tensor *out);
/* Writes version 1.0 with the header padded to a multiple of 64 bytes. */
NB_API nb_status nb_npy_write(const char *path, const nb_tensor *t);

typedef struct nb_named_tensor {
    char *name;
    nb_tensor t;
    const char *stored;  /* the file's dtype when reading converted it ("i64", read
                            as i32), for messages; NULL otherwise */
} nb_named_tensor;

/* Named tensors plus string metadata, as in a safetensors file. Start from
 * nb_tensor_set s = {0}, fill it with nb_tensor_set_add / _meta (which keep
 * `index`, so that finding a name costs O(1)), free it with
 * nb_tensor_set_free. Read the arrays freely. */
typedef struct nb_tensor_set {
    size_t n;
    nb_named_tensor *items;
    size_t n_meta;
    char **meta_keys;
    char **meta_vals;
    struct nb_tensor_index *index;  /* internal: names -> items */
} nb_tensor_set;

/* Reads F32, F64, I32 and I64 (converted to I32 with a range check) tensors. */
NB_API nb_status nb_safetensors_read(const char *path, nb_tensor_set *out);
/* The same from a buffer in memory (used by the fuzzer). */
NB_API nb_status nb_safetensors_parse(const void *buf, size_t len, nb_tensor_set *out);
NB_API nb_status nb_safetensors_write(const char *path, const nb_tensor_set *set);
/* Adds a copy of a tensor / a metadata pair to a set. */
NB_API nb_status nb_tensor_set_add(nb_tensor_set *set, const char *name, const nb_tensor *t);
NB_API nb_status nb_tensor_set_meta(nb_tensor_set *set, const char *key, const char *value);
NB_API const nb_tensor *nb_tensor_set_find(const nb_tensor_set *set, const char *name);
NB_API void nb_tensor_set_free(nb_tensor_set *set);

/* .npz files, as numpy.savez and numpy.savez_compressed write them: a zip
 * archive (read and written with libzip) of members NAME.npy, each read like
 * a .npy file (f4, f8, i4, i8) into tensor NAME. A member of another name is
 * an error. Written stored (uncompressed), atomically; metadata goes to the
 * archive comment as a JSON object of strings (numpy ignores it), and is
 * read back from there when the comment is such an object. */
NB_API nb_status nb_npz_read(const char *path, nb_tensor_set *out);
NB_API nb_status nb_npz_write(const char *path, const nb_tensor_set *set);
/* By the file's extension: .npz (any case) as above, anything else safetensors. */
NB_API nb_status nb_tensors_read(const char *path, nb_tensor_set *out);
NB_API nb_status nb_tensors_write(const char *path, const nb_tensor_set *set);
/* Only the metadata of a safetensors file (its header's __metadata__) or of a
 * .npz file (its archive comment), by extension as above: out->n is 0. Reads
 * the header alone, so it costs little on a large checkpoint; the tensors
 * are not checked. */
NB_API nb_status nb_safetensors_read_meta(const char *path, nb_tensor_set *out);
NB_API nb_status nb_npz_read_meta(const char *path, nb_tensor_set *out);
NB_API nb_status nb_tensors_read_meta(const char *path, nb_tensor_set *out);

/* Writes len bytes of data to path, atomically and refusing to replace
 * anything but a regular file, as every writer here does. */
NB_API nb_status nb_file_write(const char *path, const void *data, size_t len);

/* Writes every param of g, by name, atomically, to a .npz file when path
 * ends in .npz, else to a safetensors file; meta holds n_meta key/value
 * string pairs ("__metadata__", or the .npz archive comment). */
NB_API nb_status nb_weights_save(nb_graph *g, const char *path, const char *const *meta, size_t n_meta);
/* Sets every param of g from the tensor of its name (F32/F64 converted to the
 * param's dtype), from a .npz or safetensors file by extension as above. A
 * missing param is an error naming it and listing what the file holds (with
 * a "did you mean"); a misshapen one is an error naming it; a file with an
 * error changes no param. Tensors that name no param are listed
 * in *ignored (may be NULL; free with nb_diags_free). */
NB_API nb_status nb_weights_load(nb_graph *g, const char *path, nb_diags *ignored);

#ifdef __cplusplus
}
#endif
#endif

/* Helpers shared by the .npy and safetensors code: error messages, whole-file
 * reads, atomic writes and little-endian integers. Internal to nabla. */
#ifndef NABLA_IO_UTIL_H
#define NABLA_IO_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "nabla/io.h"

/* Both formats store little-endian data, which nabla copies as it is. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "nabla's file I/O assumes a little-endian host"
#endif

/* Formats "path: message" into err[0..cap) (err may be NULL) and returns st,
 * so that a failure is one line: return nb_io_fail(err, cap, NB_ERR_FORMAT, path, ...). */
nb_status nb_io_fail(char *err, size_t cap, nb_status st, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
nb_status nb_io_vfail(char *err, size_t cap, nb_status st, const char *path, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

/* Reads the whole file into a buffer from nb_malloc (the caller frees it). */
nb_status nb_io_read_file(const char *path, unsigned char **buf, size_t *len, char *err, size_t cap);

/* One piece of a file to write. */
typedef struct nb_io_chunk {
    const void *data;
    size_t len;
} nb_io_chunk;

/* Writes the chunks, in order, to a temporary file in the folder of path
 * (a unique name from mkstemp, so that two writers never share one), syncs
 * it and renames it over path. Refuses (NB_ERR_IO) when path is there and is
 * not a regular file (nb_io_check_replaceable). */
nb_status nb_io_write_atomic(const char *path, const nb_io_chunk *chunks, size_t n, char *err, size_t cap);

/* NB_ERR_IO with a message when path exists and is not a regular file (a
 * symbolic link, even to a regular file, a FIFO, a device, a folder). */
nb_status nb_io_check_replaceable(const char *path, char *err, size_t cap);
/* "a symbolic link", "a FIFO (named pipe)", ... for a st_mode that is not S_ISREG. */
const char *nb_io_kind_name(mode_t mode);

/* Checks a tensor given to a writer (dtype, rank, size, data) and sets
 * *bytes to its data size; `what` names it in the message. */
nb_status nb_io_check_tensor(const char *path, const char *what, const nb_tensor *t, size_t *bytes, char *err,
                             size_t cap);

static inline uint16_t nb_io_le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

static inline uint32_t nb_io_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t nb_io_le64(const unsigned char *p)
{
    return (uint64_t)nb_io_le32(p) | (uint64_t)nb_io_le32(p + 4) << 32;
}

/* Converts n little-endian int64 values to int32; on a value out of range
 * returns false and sets *bad to its index. */
bool nb_io_i64_to_i32(const unsigned char *src, size_t n, int32_t *dst, size_t *bad);

/* Appends a tensor and its name (from nb_malloc) to a set, taking ownership
 * of both on success; NB_ERR_NOMEM otherwise. */
nb_status nb_io_set_push(nb_tensor_set *set, char *name, const nb_tensor *t);
/* Does path end in ".npz" (any case)? Weights go to .npz there, else to safetensors. */
bool nb_is_npz_path(const char *path);

/* .npy in memory, for the members of .npz files (io_npy.c): parses a whole
 * file's bytes (name is used in messages), and writes the preamble of t
 * (magic, version 1.0, header padded to a multiple of 64) into buf, which
 * needs NB_IO_NPY_HEADER_CAP bytes, returning its length. */
/* *from_i64 (may be NULL): the array was stored as int64 and read as i32. */
nb_status nb_io_npy_parse(const char *name, const unsigned char *b, size_t len, nb_tensor *out, bool *from_i64,
                          char *err,
                          size_t cap);
#define NB_IO_NPY_HEADER_CAP 512
size_t nb_io_npy_header(const nb_tensor *t, char *buf, size_t cap);

#endif

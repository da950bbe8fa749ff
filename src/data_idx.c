/* IDX files, the format of MNIST and Fashion-MNIST (LeCun's page): two zero
 * bytes, an element-type byte, a byte with the number of dimensions, one
 * big-endian uint32 size per dimension, then the data in row-major order.
 *
 * zlib's gzread reads gzip-compressed and plain files alike, so the .gz files
 * as distributed are read without unpacking them first. Only unsigned bytes
 * (type 0x08) are read, the type of every MNIST-like file: images stay u8 in
 * memory and nb_dataset_batch converts one batch at a time. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <zlib.h>

#include "data_internal.h"
#include "io_util.h"

#define IDX_MAX_DIMS 4
#define IDX_CHUNK (1u << 30) /* gzread takes an unsigned and returns an int */
#define IDX_FIRST ((size_t)1 << 20) /* the first buffer for the data */

/* One IDX array as read. */
typedef struct idx_array {
    int rank;
    int64_t shape[IDX_MAX_DIMS];
    size_t bytes;
    unsigned char *data;
} idx_array;

/* "60000×28×28" */
static const char *dims_text(const idx_array *a, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < a->rank && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? "×%lld" : "%lld", (long long)a->shape[i]);
    return buf;
}

static const char *type_name(int t)
{
    switch (t) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    default: return "unknown";
    }
}

/* A read error from zlib: errno for system errors, zlib's text otherwise
 * (without the "path: " zlib puts in front of it). */
static nb_status read_fail(gzFile z, const char *path, char *err)
{
    int code;
    const char *msg = gzerror(z, &code);
    char sys[128];
    if (code == Z_ERRNO) {
        if (strerror_r(errno, sys, sizeof sys) != 0) snprintf(sys, sizeof sys, "error %d", errno);
        return nb_io_fail(err, NB_ERR_CAP, NB_ERR_IO, path, "cannot read: %s", sys);
    }
    size_t plen = strlen(path);
    if (!strncmp(msg, path, plen) && !strncmp(msg + plen, ": ", 2)) msg += plen + 2;
    return nb_io_fail(err, NB_ERR_CAP, NB_ERR_FORMAT, path, "corrupt gzip data: %s", msg);
}

/* Reads up to len bytes, stopping early only at the end of the data. */
static nb_status read_up_to(gzFile z, const char *path, void *buf, size_t len, size_t *got, char *err)
{
    *got = 0;
    while (*got < len) {
        size_t want = len - *got < IDX_CHUNK ? len - *got : IDX_CHUNK;
        int n = gzread(z, (unsigned char *)buf + *got, (unsigned)want);
        if (n < 0) return read_fail(z, path, err);
        if (n == 0) break;
        *got += (size_t)n;
    }
    /* A gzip stream cut short ends with Z_BUF_ERROR ("unexpected end of
     * file"): the data is as short as for a plain file, and the caller says
     * it is truncated. Other errors are corrupt data. */
    int code;
    gzerror(z, &code);
    return code == Z_OK || code == Z_BUF_ERROR ? NB_OK : read_fail(z, path, err);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* The four magic bytes: 0, 0, type, number of dimensions. */
static nb_status read_magic(gzFile z, const char *path, idx_array *a, char *err)
{
    unsigned char m[4];
    size_t got;
    nb_status st = read_up_to(z, path, m, 4, &got, err);
    if (st) return st;
    if (got < 4)
        return nb_io_fail(err, NB_ERR_CAP, NB_ERR_FORMAT, path, "not an IDX file: %zu bytes, too short for a header",
                          got);
    if (m[0] || m[1])
        return nb_io_fail(err, NB_ERR_CAP, NB_ERR_FORMAT, path,
                          "not an IDX file: it starts with bytes 0x%02x 0x%02x, not 0x00 0x00", m[0], m[1]);
    if (m[2] != 0x08)
        return nb_io_fail(err, NB_ERR_CAP, NB_ERR_FORMAT, path,
                          "IDX element type 0x%02x (%s) is not supported; nabla reads only 0x08 (unsigned byte)",
                          m[2], type_name(m[2]));
    if (m[3] < 1 || m[3] > IDX_MAX_DIMS)
        return nb_io_fail(err, NB_ERR_CAP, NB_ERR_FORMAT, path, "the IDX header has %d dimensions; nabla reads 1 to %d",
                          m[3], IDX_MAX_DIMS);
    a->rank = m[3];
    return NB_OK;
}

/* The sizes after the magic, and the data size they give. */
static nb_status read_sizes(gzFile z, const char *path, idx_array *a, char *err)
{
    unsigned char b[4 * IDX_MAX_DIMS];
    size_t got, want = 4 * (size_t)a->rank;
    char dims[128];
    nb_status st = read_up_to(z, path, b, want, &got, err);
    if (st) return st;
    if (got < want)
        return nb_io_fail(err, NB_ERR_CAP, NB_ERR_FORMAT, path,
                          "truncated in the header: %d dimensions need %zu bytes of sizes, the file has %zu",
                          a->rank, want, got);
    for (int i = 0; i < a->rank; i++) a->shape[i] = be32(b + 4 * i);
    for (int i = 0; i < a->rank; i++)
        if (a->shape[i] == 0)
            return nb_io_fail(err, NB_ERR_CAP, NB_ERR_FORMAT, path, "dimension %d of the IDX header (%s) is 0", i + 1,
                              dims_text(a, dims, sizeof dims));
    if (nb_shape_numel(a->rank, a->shape, &a->bytes))
        return nb_io_fail(err, NB_ERR_CAP, NB_ERR_OVERFLOW, path, "the IDX header's sizes (%s) are too large",
                          dims_text(a, dims, sizeof dims));
    return NB_OK;
}

/* Reads the a->bytes of data the header promises into a->data, growing the
 * buffer as the data arrives (doubling from 1 MB): a 20-byte file whose header
 * claims 4 GB allocated 4 GB before finding out it was truncated. *got says
 * how many bytes there were, up to a->bytes. */
static nb_status read_growing(gzFile z, const char *path, idx_array *a, size_t *got, char *err)
{
    char dims[128];
    size_t cap = 0, n = 0;
    *got = 0;
    do {
        size_t next = cap ? 2 * cap : IDX_FIRST;
        if (cap > a->bytes / 2 || next > a->bytes) next = a->bytes;
        unsigned char *grown = nb_realloc(a->data, next);
        if (!grown)
            return nb_io_fail(err, NB_ERR_CAP, NB_ERR_NOMEM, path, "out of memory for %zu bytes of data (%s)", a->bytes,
                              dims_text(a, dims, sizeof dims));
        a->data = grown;
        nb_status st = read_up_to(z, path, a->data + cap, next - cap, &n, err);
        if (st) return st;
        *got = cap + n;
        cap = next;
    } while (*got == cap && cap < a->bytes);
    return NB_OK;
}

/* The data, which must have exactly the size of the header. */
static nb_status read_data(gzFile z, const char *path, idx_array *a, char *err)
{
    char dims[128];
    size_t got;
    if (a->bytes > nb_memory_limit())
        return nb_io_fail(err, NB_ERR_CAP, NB_ERR_NOMEM, path,
                          "the IDX header's sizes (%s) need %.3g GB, over the memory limit of %.3g GB "
                          "(nabla --max-memory)", dims_text(a, dims, sizeof dims), (double)a->bytes / 1e9,
                          (double)nb_memory_limit() / 1e9);
    nb_status st = read_growing(z, path, a, &got, err);
    if (st) return st;
    if (got < a->bytes)
        return nb_io_fail(err, NB_ERR_CAP, NB_ERR_FORMAT, path,
                          "truncated: the header says %s = %zu bytes of data, the file has %zu",
                          dims_text(a, dims, sizeof dims), a->bytes, got);
    size_t extra = 0;
    unsigned char rest[4096];
    do {
        st = read_up_to(z, path, rest, sizeof rest, &got, err);
        extra += got;
    } while (!st && got == sizeof rest);
    if (!st && extra)
        st = nb_io_fail(err, NB_ERR_CAP, NB_ERR_FORMAT, path,
                        "trailing data: %zu bytes after the %zu the header says (%s)", extra, a->bytes,
                        dims_text(a, dims, sizeof dims));
    return st;
}

/* Reads one IDX file into a (whose data the caller frees, also on failure). */
static nb_status idx_read(const char *path, idx_array *a, char *err)
{
    memset(a, 0, sizeof *a);
    errno = 0;
    gzFile z = gzopen(path, "rb");
    if (!z) {
        char sys[128] = "out of memory";
        if (errno && strerror_r(errno, sys, sizeof sys) != 0) snprintf(sys, sizeof sys, "error %d", errno);
        return nb_io_fail(err, NB_ERR_CAP, errno ? NB_ERR_IO : NB_ERR_NOMEM, path, "cannot open: %s", sys);
    }
    gzbuffer(z, 1u << 17); /* fewer, larger reads than zlib's 8 KB */
    nb_status st = read_magic(z, path, a, err);
    if (!st) st = read_sizes(z, path, a, err);
    if (!st) st = read_data(z, path, a, err);
    gzclose(z);
    return st;
}

/* The images and labels must describe the same samples. */
static nb_status check_pair(const char *images, const idx_array *im, const char *labels, const idx_array *lb,
                           char *err)
{
    char dims[128];
    if (lb->rank != 1)
        return nb_io_fail(err, NB_ERR_CAP, NB_ERR_SHAPE, labels,
                          "labels must be 1-D (one per image), but the file is %s", dims_text(lb, dims, sizeof dims));
    if (lb->shape[0] != im->shape[0])
        return nb_io_fail(err, NB_ERR_CAP, NB_ERR_SHAPE, images, "%lld images, but %s has %lld labels",
                          (long long)im->shape[0], labels, (long long)lb->shape[0]);
    return NB_OK;
}

static nb_status make(const char *images, idx_array *im, const char *labels, idx_array *lb, nb_dataset **out,
                      char *err)
{
    nb_dataset *d = nb__dataset_new(2, err);
    if (!d) return NB_ERR_NOMEM;
    /* set_field takes the data over, also when it fails */
    nb_status st = nb__dataset_set_field(d, 0, "images", images, NB_FIELD_U8, im->rank, im->shape, im->data, err);
    im->data = NULL;
    if (!st) {
        st = nb__dataset_set_field(d, 1, "labels", labels, NB_FIELD_U8, lb->rank, lb->shape, lb->data, err);
        lb->data = NULL;
    }
    if (st) nb_dataset_free(d);
    else *out = d;
    return st;
}

nb_status nb_dataset_load_idx(const char *images, const char *labels, nb_dataset **out)
{
    char *err = nb__thread_err();
    if (out) *out = NULL;
    if (!images || !labels || !out)
        return nb__thread_fail(NB_ERR_ARG, "nb_dataset_load_idx: no image file, label file or output given");
    idx_array im, lb = {0};
    nb_status st = idx_read(images, &im, err);
    if (!st) st = idx_read(labels, &lb, err);
    if (!st) st = check_pair(images, &im, labels, &lb, err);
    if (!st) st = make(images, &im, labels, &lb, out, err);
    nb_free(im.data);
    nb_free(lb.data);
    return st;
}

/* NumPy .npy files: read versions 1.0-3.0, write version 1.0.
 *
 * The header is a Python dict literal such as
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * It is parsed by hand and strictly: nabla never evaluates it, and anything
 * but the three known keys with plain values is an error. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base.h"
#include "io_util.h"
#include "nabla/io.h"

static const char npy_magic[6] = "\x93NUMPY";

enum { KEY_DESCR, KEY_FORTRAN, KEY_SHAPE, N_KEYS };
static const char *const key_names[N_KEYS] = {"descr", "fortran_order", "shape"};

/* What the header says. */
typedef struct npy_header {
    nb_dtype dtype;
    bool from_i8; /* stored as int64, loaded as i32 */
    bool fortran;
    int rank;
    int64_t shape[NB_MAX_DIMS];
    unsigned seen; /* bit k for key_names[k] */
} npy_header;

/* A cursor over the header text, and where messages go. */
typedef struct npy_parser {
    const char *name; /* file name for messages */
    const unsigned char *start, *p, *end;
    char *err;
    size_t cap;
} npy_parser;

static nb_status fail(const npy_parser *r, nb_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static nb_status fail(const npy_parser *r, nb_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nb_io_vfail(r->err, r->cap, st, r->name, fmt, ap);
    va_end(ap);
    return st;
}

static nb_status syntax(const npy_parser *r, const char *expected)
{
    return fail(r, NB_ERR_FORMAT, "malformed header at byte %zu: expected %s", (size_t)(r->p - r->start),
                expected);
}

static int peek(const npy_parser *r) { return r->p < r->end ? *r->p : -1; }

static void skip_ws(npy_parser *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

static nb_status expect(npy_parser *r, char c, const char *what)
{
    skip_ws(r);
    if (peek(r) != c) return syntax(r, what);
    r->p++;
    return NB_OK;
}

/* A quoted string without escapes, into buf[0..cap). */
static nb_status parse_str(npy_parser *r, char *buf, size_t cap)
{
    skip_ws(r);
    int q = peek(r);
    if (q != '\'' && q != '"') return syntax(r, "a quoted string");
    size_t n = 0;
    for (r->p++; peek(r) != q; r->p++) {
        if (peek(r) < 0x20 || peek(r) == '\\' || peek(r) > 0x7e) return syntax(r, "a plain string");
        if (n + 1 == cap) return syntax(r, "a shorter string");
        buf[n++] = (char)*r->p;
    }
    r->p++;
    buf[n] = '\0';
    return NB_OK;
}

/* A non-negative decimal integer as Python writes it (no leading zeros). */
static nb_status parse_dim(npy_parser *r, int64_t *v)
{
    skip_ws(r);
    if (peek(r) < '0' || peek(r) > '9') return syntax(r, "a non-negative integer");
    if (peek(r) == '0' && r->p + 1 < r->end && r->p[1] >= '0' && r->p[1] <= '9')
        return syntax(r, "an integer without leading zeros");
    *v = 0;
    for (; peek(r) >= '0' && peek(r) <= '9'; r->p++) {
        if (__builtin_mul_overflow(*v, 10, v) || __builtin_add_overflow(*v, *r->p - '0', v))
            return fail(r, NB_ERR_OVERFLOW, "a dimension of the shape is too large");
    }
    return NB_OK;
}

static nb_status parse_descr(npy_parser *r, npy_header *h)
{
    char d[16];
    skip_ws(r);
    if (peek(r) == '[') return fail(r, NB_ERR_FORMAT, "structured dtypes are not supported");
    nb_status st = parse_str(r, d, sizeof d);
    if (st) return st;
    if (!strcmp(d, "<f4")) h->dtype = NB_F32;
    else if (!strcmp(d, "<f8")) h->dtype = NB_F64;
    else if (!strcmp(d, "<i4")) h->dtype = NB_I32;
    else if (!strcmp(d, "<i8")) h->dtype = NB_I32, h->from_i8 = true;
    else if (d[0] == '>') return fail(r, NB_ERR_FORMAT, "big-endian arrays ('%s') are not supported", d);
    else if (strchr(d, 'O')) return fail(r, NB_ERR_FORMAT, "object arrays ('%s') are not supported", d);
    else return fail(r, NB_ERR_FORMAT, "dtype '%s' is not supported (only '<f4', '<f8', '<i4', '<i8')", d);
    return NB_OK;
}

static bool keyword(npy_parser *r, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) return false;
    r->p += n;
    return true;
}

static nb_status parse_fortran(npy_parser *r, npy_header *h)
{
    skip_ws(r);
    if (keyword(r, "True")) h->fortran = true;
    else if (!keyword(r, "False")) return syntax(r, "True or False");
    if (h->fortran) return fail(r, NB_ERR_FORMAT, "fortran_order arrays are not supported");
    return NB_OK;
}

/* A tuple: (), (5,), (3, 4) or (3, 4,). "(5)" is not a tuple in Python. */
static nb_status parse_shape(npy_parser *r, npy_header *h)
{
    nb_status st = expect(r, '(', "'(' opening the shape");
    skip_ws(r);
    for (h->rank = 0; !st && peek(r) != ')';) {
        if (h->rank == NB_MAX_DIMS)
            return fail(r, NB_ERR_FORMAT, "the shape has more than %d dimensions", NB_MAX_DIMS);
        st = parse_dim(r, &h->shape[h->rank++]);
        skip_ws(r);
        if (!st && (peek(r) != ')' || h->rank == 1)) st = expect(r, ',', "',' in the shape");
        skip_ws(r);
    }
    if (!st) r->p++; /* the ')' */
    return st;
}

static nb_status parse_entry(npy_parser *r, npy_header *h)
{
    char key[16];
    nb_status st = parse_str(r, key, sizeof key);
    if (!st) st = expect(r, ':', "':' after a key");
    if (st) return st;
    int k = 0;
    while (k < N_KEYS && strcmp(key, key_names[k]) != 0) k++;
    if (k == N_KEYS) return fail(r, NB_ERR_FORMAT, "unknown key '%s' in the header", key);
    if (h->seen & 1u << k) return fail(r, NB_ERR_FORMAT, "key '%s' appears twice in the header", key);
    h->seen |= 1u << k;
    if (k == KEY_DESCR) return parse_descr(r, h);
    if (k == KEY_FORTRAN) return parse_fortran(r, h);
    return parse_shape(r, h);
}

static nb_status parse_dict(npy_parser *r, npy_header *h)
{
    nb_status st = expect(r, '{', "'{'");
    for (skip_ws(r); !st && peek(r) != '}'; skip_ws(r)) {
        st = parse_entry(r, h);
        skip_ws(r);
        if (!st && peek(r) != '}') st = expect(r, ',', "',' or '}'");
    }
    if (st) return st;
    r->p++; /* the '}' */
    skip_ws(r);
    if (r->p != r->end) return syntax(r, "only spaces after the dict");
    for (int k = 0; k < N_KEYS; k++)
        if (!(h->seen & 1u << k)) return fail(r, NB_ERR_FORMAT, "the header has no key '%s'", key_names[k]);
    return NB_OK;
}

/* Magic, version and header length; points r at the header text. */
static nb_status parse_preamble(npy_parser *r, const unsigned char *b, size_t len)
{
    /* A file cut inside the preamble is truncated, not "not a .npy file". */
    size_t magic_len = len < sizeof npy_magic ? len : sizeof npy_magic;
    if (len == 0) return fail(r, NB_ERR_FORMAT, "empty (0 bytes): not a .npy file");
    if (memcmp(b, npy_magic, magic_len) != 0)
        return fail(r, NB_ERR_FORMAT, "not a .npy file (no \\x93NUMPY magic)");
    if (len < 8) return fail(r, NB_ERR_FORMAT, "truncated in the magic and version (%zu of 8 bytes)", len);
    if (b[6] < 1 || b[6] > 3 || b[7] != 0)
        return fail(r, NB_ERR_FORMAT, ".npy version %d.%d is not supported", b[6], b[7]);
    /* Version 1.0 has a 2-byte header length, 2.0 and 3.0 a 4-byte one. */
    size_t start = b[6] == 1 ? 10 : 12;
    if (len < start) return fail(r, NB_ERR_FORMAT, "truncated in the header length");
    size_t hlen = b[6] == 1 ? nb_io_le16(b + 8) : nb_io_le32(b + 8);
    if (hlen > len - start)
        return fail(r, NB_ERR_FORMAT, "truncated in the header (%zu of %zu bytes)", len - start, hlen);
    r->start = r->p = b + start;
    r->end = r->p + hlen;
    return NB_OK;
}

/* nb_tensor_alloc's failure, saying when the memory limit was the cause. */
static nb_status alloc_failed(const npy_parser *r, nb_status st, size_t bytes)
{
    if (st == NB_ERR_NOMEM && bytes > nb_memory_limit())
        return fail(r, st, "the tensor needs %.3g GB, over the memory limit of %.3g GB (nabla --max-memory)",
                    (double)bytes / 1e9, (double)nb_memory_limit() / 1e9);
    return fail(r, st, "cannot allocate the tensor: %s", nb_status_str(st));
}

/* Copies (or for i8 converts) the data after the header into a new tensor. */
static nb_status load_data(const npy_parser *r, const npy_header *h, size_t avail, nb_tensor *out)
{
    size_t numel, want;
    size_t elem = h->from_i8 ? 8 : nb_dtype_size(h->dtype);
    if (nb_shape_numel(h->rank, h->shape, &numel) || __builtin_mul_overflow(numel, elem, &want))
        return fail(r, NB_ERR_OVERFLOW, "the shape is too large");
    if (avail != want)
        return fail(r, NB_ERR_FORMAT, "%s: the data has %zu bytes, the shape needs %zu",
                    avail < want ? "truncated" : "trailing bytes", avail, want);
    nb_status st = nb_tensor_alloc(out, h->dtype, h->rank, h->shape);
    if (st) return alloc_failed(r, st, numel * nb_dtype_size(h->dtype));
    size_t bad;
    if (!h->from_i8) memcpy(out->data, r->end, want);
    else if (!nb_io_i64_to_i32(r->end, numel, out->data, &bad)) {
        nb_tensor_free(out);
        return fail(r, NB_ERR_FORMAT, "i8 element %zu (%lld) is out of the i32 range", bad,
                    (long long)nb_io_le64(r->end + 8 * bad));
    }
    return NB_OK;
}

/* Integers converted to a float dtype, each exactly: |v| <= 2^24 for f32,
 * 2^53 for f64 (beyond, not every integer has a float of its value). */
static nb_status ints_to_float(const npy_parser *r, const npy_header *h, size_t numel, nb_dtype to,
                               nb_tensor *out)
{
    const unsigned char *src = r->end;
    int64_t limit = to == NB_F32 ? INT64_C(1) << 24 : INT64_C(1) << 53;
    nb_status st = nb_tensor_alloc(out, to, h->rank, h->shape);
    if (st) return alloc_failed(r, st, numel * nb_dtype_size(to));
    for (size_t i = 0; i < numel; i++) {
        int64_t v = h->from_i8 ? (int64_t)nb_io_le64(src + 8 * i) : (int32_t)nb_io_le32(src + 4 * i);
        if (v > limit || v < -limit) {
            nb_tensor_free(out);
            return fail(r, NB_ERR_FORMAT,
                        "integer element %zu (%lld) is beyond the range where %s holds every integer "
                        "exactly (|v| <= 2^%d)", i, (long long)v, nb_dtype_name(to), to == NB_F32 ? 24 : 53);
        }
        if (to == NB_F32) ((float *)out->data)[i] = (float)v;
        else ((double *)out->data)[i] = (double)v;
    }
    return NB_OK;
}

/* Reads the file's bytes; as < 0 keeps the stored dtype (i8 as i32), a float
 * dtype converts floats and integers to it. */
static nb_status parse_as(const char *name, const unsigned char *b, size_t len, int as, nb_tensor *out,
                         bool *from_i64, char *err, size_t cap)
{
    npy_parser r = {name, NULL, NULL, NULL, err, cap};
    npy_header h = {0};
    memset(out, 0, sizeof *out);
    nb_status st = parse_preamble(&r, b, len);
    if (!st) st = parse_dict(&r, &h);
    if (from_i64) *from_i64 = h.from_i8;
    size_t avail = st ? 0 : len - (size_t)(r.end - b), numel = 0; /* the data follows the header */
    if (!st && as >= 0 && h.dtype == NB_I32) {
        size_t elem = h.from_i8 ? 8 : 4;
        if (nb_shape_numel(h.rank, h.shape, &numel) || numel > SIZE_MAX / elem)
            return fail(&r, NB_ERR_OVERFLOW, "the shape is too large");
        if (avail != numel * elem)
            return fail(&r, NB_ERR_FORMAT, "%s: the data has %zu bytes, the shape needs %zu",
                        avail < numel * elem ? "truncated" : "trailing bytes", avail, numel * elem);
        return ints_to_float(&r, &h, numel, (nb_dtype)as, out);
    }
    if (!st) st = load_data(&r, &h, avail, out);
    if (!st && as >= 0 && out->dtype != (nb_dtype)as && (st = nb_tensor_convert(out, (nb_dtype)as))) {
        nb_tensor_free(out);
        return fail(&r, st, "cannot convert to %s: %s", nb_dtype_name((nb_dtype)as), nb_status_str(st));
    }
    return st;
}

nb_status nb_io_npy_parse(const char *name, const unsigned char *b, size_t len, nb_tensor *out, bool *from_i64,
                          char *err, size_t cap)
{
    return parse_as(name, b, len, -1, out, from_i64, err, cap);
}

nb_status nb_npy_parse(const void *buf, size_t len, nb_tensor *out)
{
    char *err = nb__thread_err();
    if (!out || (!buf && len)) return nb_io_fail(err, NB_ERR_CAP, NB_ERR_ARG, "<buffer>", "no buffer or no tensor given");
    return nb_io_npy_parse("<buffer>", buf, len, out, NULL, err, NB_ERR_CAP);
}

nb_status nb_npy_read(const char *path, nb_tensor *out)
{
    unsigned char *buf;
    size_t len, cap = NB_ERR_CAP;
    char *err = nb__thread_err();
    if (!path || !out) return nb_io_fail(err, cap, NB_ERR_ARG, "(null)", "no path or no tensor given");
    memset(out, 0, sizeof *out);
    nb_status st = nb_io_read_file(path, &buf, &len, err, cap);
    if (st) return st;
    st = nb_io_npy_parse(path, buf, len, out, NULL, err, cap);
    nb_free(buf);
    return st;
}

nb_status nb_npy_read_float(const char *path, nb_dtype as, nb_tensor *out)
{
    unsigned char *buf;
    size_t len, cap = NB_ERR_CAP;
    char *err = nb__thread_err();
    if (!path || !out || (as != NB_F32 && as != NB_F64))
        return nb_io_fail(err, cap, NB_ERR_ARG, path ? path : "(null)", "no path or tensor, or not a float dtype");
    memset(out, 0, sizeof *out);
    nb_status st = nb_io_read_file(path, &buf, &len, err, cap);
    if (st) return st;
    st = parse_as(path, buf, len, (int)as, out, NULL, err, cap);
    nb_free(buf);
    return st;
}

/* Writes the preamble (magic, version 1.0, length, dict, padding, '\n') into
 * buf and returns its length, a multiple of 64 as numpy does for alignment. */
size_t nb_io_npy_header(const nb_tensor *t, char *buf, size_t cap)
{
    static const char *const descr[] = {[NB_F32] = "<f4", [NB_F64] = "<f8", [NB_I32] = "<i4"};
    char shape[NB_MAX_DIMS * 24 + 4] = "(";
    size_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n += (size_t)snprintf(shape + n, sizeof shape - n, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    snprintf(shape + n, sizeof shape - n, t->rank == 1 ? ",)" : ")");

    n = 10 + (size_t)snprintf(buf + 10, cap - 10, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                              descr[t->dtype], shape);
    size_t total = (n + 1 + 63) / 64 * 64; /* +1 for the '\n' */
    memset(buf + n, ' ', total - 1 - n);
    buf[total - 1] = '\n';
    memcpy(buf, npy_magic, sizeof npy_magic);
    buf[6] = 1;
    buf[7] = 0;
    buf[8] = (char)((total - 10) & 0xff);
    buf[9] = (char)((total - 10) >> 8);
    return total;
}

nb_status nb_npy_write(const char *path, const nb_tensor *t)
{
    size_t bytes, cap = NB_ERR_CAP;
    char *err = nb__thread_err();
    if (!t || !path) return nb_io_fail(err, cap, NB_ERR_ARG, path ? path : "(null)", "no path or no tensor given");
    nb_status st = nb_io_check_tensor(path, "the tensor", t, &bytes, err, cap);
    if (st) return st;
    char header[512]; /* the longest, 8 dims of 19 digits, takes 256 bytes */
    nb_io_chunk chunks[2] = {{header, nb_io_npy_header(t, header, sizeof header)}, {t->data, bytes}};
    return nb_io_write_atomic(path, chunks, 2, err, cap);
}

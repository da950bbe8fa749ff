/* safetensors files and tensor sets.
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON object
 * {"NAME": {"dtype": "F32", "shape": [2, 3], "data_offsets": [BEGIN, END]},
 *  "__metadata__": {"KEY": "VALUE"}}, then the data section, which the
 * tensors must cover exactly, without gaps or overlaps. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base.h"
#include "io_util.h"
#include "nabla/io.h"

#define META_KEY "__metadata__"

/* ---- reading ---- */

/* One tensor as the header describes it. */
typedef struct st_entry {
    const char *name; /* owned by the JSON */
    nb_dtype dtype;
    bool from_i64; /* stored as I64, loaded as i32 */
    int rank;
    int64_t shape[NB_MAX_DIMS];
    size_t begin, end;
} st_entry;

/* Where messages go. */
typedef struct st_ctx {
    const char *path;
    char *err;
    size_t cap;
} st_ctx;

static nb_status fail(const st_ctx *c, nb_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static nb_status fail(const st_ctx *c, nb_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nb_io_vfail(c->err, c->cap, st, c->path, fmt, ap);
    va_end(ap);
    return st;
}

static nb_status parse_dtype(const st_ctx *c, st_entry *e, json_t *v)
{
    const char *s = json_string_value(v);
    if (!s) return fail(c, NB_ERR_FORMAT, "tensor '%s': dtype is not a string", e->name);
    if (!strcmp(s, "F32")) e->dtype = NB_F32;
    else if (!strcmp(s, "F64")) e->dtype = NB_F64;
    else if (!strcmp(s, "I32")) e->dtype = NB_I32;
    else if (!strcmp(s, "I64")) e->dtype = NB_I32, e->from_i64 = true;
    else
        return fail(c, NB_ERR_FORMAT,
                    "tensor '%s' has dtype %s, which is not supported (only F32, F64, I32, I64)", e->name, s);
    return NB_OK;
}

static bool is_count(json_t *v) { return json_is_integer(v) && json_integer_value(v) >= 0; }

static nb_status parse_shape(const st_ctx *c, st_entry *e, json_t *v)
{
    if (!json_is_array(v)) return fail(c, NB_ERR_FORMAT, "tensor '%s': shape is not an array", e->name);
    if (json_array_size(v) > NB_MAX_DIMS)
        return fail(c, NB_ERR_FORMAT, "tensor '%s' has %zu dimensions, more than %d", e->name,
                    json_array_size(v), NB_MAX_DIMS);
    e->rank = (int)json_array_size(v);
    for (int i = 0; i < e->rank; i++) {
        if (!is_count(json_array_get(v, (size_t)i)))
            return fail(c, NB_ERR_FORMAT, "tensor '%s': dimension %d is not a non-negative integer", e->name,
                        i);
        e->shape[i] = json_integer_value(json_array_get(v, (size_t)i));
    }
    return NB_OK;
}

/* data_offsets: [begin, end) inside the data section, of the size the shape needs. */
static nb_status parse_offsets(const st_ctx *c, st_entry *e, json_t *v, size_t data_len)
{
    json_t *b = json_array_get(v, 0), *en = json_array_get(v, 1);
    if (json_array_size(v) != 2 || !is_count(b) || !is_count(en) ||
        json_integer_value(b) > json_integer_value(en))
        return fail(c, NB_ERR_FORMAT, "tensor '%s': data_offsets is not [begin, end] with begin <= end",
                    e->name);
    long long lb = json_integer_value(b), le = json_integer_value(en);
    if ((unsigned long long)le > data_len)
        return fail(c, NB_ERR_FORMAT, "tensor '%s' data [%lld, %lld) overruns the data section of %zu bytes",
                    e->name, lb, le, data_len);
    e->begin = (size_t)lb;
    e->end = (size_t)le;
    size_t numel, want;
    if (nb_shape_numel(e->rank, e->shape, &numel) ||
        __builtin_mul_overflow(numel, e->from_i64 ? 8 : nb_dtype_size(e->dtype), &want))
        return fail(c, NB_ERR_OVERFLOW, "tensor '%s': the shape is too large", e->name);
    if (want != e->end - e->begin)
        return fail(c, NB_ERR_FORMAT, "tensor '%s' has %zu bytes of data, its shape and dtype need %zu",
                    e->name, e->end - e->begin, want);
    return NB_OK;
}

static nb_status parse_entry(const st_ctx *c, st_entry *e, json_t *v, size_t data_len)
{
    static const char *const fields[] = {"dtype", "shape", "data_offsets"};
    if (!json_is_object(v)) return fail(c, NB_ERR_FORMAT, "tensor '%s' is not a JSON object", e->name);
    for (int i = 0; i < 3; i++)
        if (!json_object_get(v, fields[i]))
            return fail(c, NB_ERR_FORMAT, "tensor '%s' has no '%s'", e->name, fields[i]);
    if (json_object_size(v) != 3)
        return fail(c, NB_ERR_FORMAT, "tensor '%s' has fields other than dtype, shape, data_offsets",
                    e->name);
    nb_status st = parse_dtype(c, e, json_object_get(v, "dtype"));
    if (!st) st = parse_shape(c, e, json_object_get(v, "shape"));
    if (!st) st = parse_offsets(c, e, json_object_get(v, "data_offsets"), data_len);
    return st;
}

static nb_status parse_metadata(const st_ctx *c, json_t *v, nb_tensor_set *out)
{
    const char *key;
    json_t *val;
    if (!json_is_object(v)) return fail(c, NB_ERR_FORMAT, META_KEY " is not a JSON object");
    json_object_foreach (v, key, val) {
        if (!json_is_string(val))
            return fail(c, NB_ERR_FORMAT, META_KEY " value of '%s' is not a string", key);
        if (nb_tensor_set_meta(out, key, json_string_value(val)))
            return fail(c, NB_ERR_NOMEM, "out of memory");
    }
    return NB_OK;
}

static int by_offset(const void *a, const void *b)
{
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* In offset order, each tensor must start where the previous one ended and
 * the last must end at the end of the file, as the Python library requires. */
static nb_status check_coverage(const st_ctx *c, st_entry *es, size_t n, size_t data_len)
{
    const st_entry **order = nb_malloc(n * sizeof *order);
    if (!order) return fail(c, NB_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) order[i] = &es[i];
    qsort(order, n, sizeof *order, by_offset);
    size_t at = 0;
    nb_status st = NB_OK;
    for (size_t i = 0; i < n && !st; i++) {
        const st_entry *e = order[i];
        if (e->begin < at)
            st = fail(c, NB_ERR_FORMAT, "tensor '%s' data [%zu, %zu) overlaps the tensor '%s' before it",
                      e->name, e->begin, e->end, order[i - 1]->name);
        else if (e->begin > at)
            st = fail(c, NB_ERR_FORMAT, "tensor '%s' data [%zu, %zu) leaves a gap of %zu bytes before it",
                      e->name, e->begin, e->end, e->begin - at);
        at = e->end;
    }
    if (!st && at != data_len)
        st = fail(c, NB_ERR_FORMAT, "the tensors cover %zu bytes of the data section of %zu bytes", at,
                  data_len);
    nb_free(order);
    return st;
}

/* Copies (or for I64 converts) one tensor's data into the set. */
static nb_status load_entry(const st_ctx *c, const st_entry *e, const unsigned char *data, nb_tensor_set *out)
{
    nb_tensor t;
    size_t bad;
    nb_status st = nb_tensor_alloc(&t, e->dtype, e->rank, e->shape);
    if (st) return fail(c, st, "tensor '%s': cannot allocate: %s", e->name, nb_status_str(st));
    if (!e->from_i64) memcpy(t.data, data + e->begin, e->end - e->begin);
    else if (!nb_io_i64_to_i32(data + e->begin, (e->end - e->begin) / 8, t.data, &bad)) {
        nb_tensor_free(&t);
        return fail(c, NB_ERR_FORMAT, "tensor '%s': I64 element %zu (%lld) is out of the i32 range", e->name,
                    bad, (long long)nb_io_le64(data + e->begin + 8 * bad));
    }
    char *name = nb__strdup(e->name);
    if (!name || nb_io_set_push(out, name, &t)) {
        nb_free(name);
        nb_tensor_free(&t);
        return fail(c, NB_ERR_NOMEM, "out of memory");
    }
    if (e->from_i64) out->items[out->n - 1].stored = "i64";
    return NB_OK;
}

/* Checks every entry of the header, then loads the tensors in file order. */
static nb_status load_tensors(const st_ctx *c, json_t *root, const unsigned char *data, size_t data_len,
                              nb_tensor_set *out)
{
    st_entry *es = nb_calloc(json_object_size(root), sizeof *es);
    if (!es) return fail(c, NB_ERR_NOMEM, "out of memory");
    size_t n = 0;
    const char *key;
    json_t *v;
    nb_status st = NB_OK;
    json_object_foreach (root, key, v) {
        if (st) break;
        if (!strcmp(key, META_KEY)) {
            st = parse_metadata(c, v, out);
            continue;
        }
        es[n].name = key;
        st = parse_entry(c, &es[n++], v, data_len);
    }
    if (!st) st = check_coverage(c, es, n, data_len);
    for (size_t i = 0; i < n && !st; i++) st = load_entry(c, &es[i], data, out);
    nb_free(es);
    return st;
}

static nb_status parse_file(const st_ctx *c, const unsigned char *buf, size_t len, nb_tensor_set *out)
{
    if (len < 8) return fail(c, NB_ERR_FORMAT, "too short (%zu bytes) for the 8-byte header length", len);
    uint64_t hlen = nb_io_le64(buf);
    if (hlen > len - 8)
        return fail(c, NB_ERR_FORMAT, "header length %llu overruns the file of %zu bytes",
                    (unsigned long long)hlen, len);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return fail(c, NB_ERR_FORMAT, "header is not valid JSON: %s (line %d, column %d)", jerr.text,
                    jerr.line, jerr.column);
    nb_status st = json_is_object(root) ? NB_OK : fail(c, NB_ERR_FORMAT, "header is not a JSON object");
    if (!st) st = load_tensors(c, root, buf + 8 + hlen, len - 8 - (size_t)hlen, out);
    json_decref(root);
    return st;
}

nb_status nb_safetensors_parse(const void *buf, size_t len, nb_tensor_set *out)
{
    st_ctx c = {"<buffer>", nb__thread_err(), NB_ERR_CAP};
    if (!out || (!buf && len)) return fail(&c, NB_ERR_ARG, "no buffer or no set given");
    memset(out, 0, sizeof *out);
    nb_status st = parse_file(&c, buf, len, out);
    if (st) nb_tensor_set_free(out);
    return st;
}

nb_status nb_safetensors_read(const char *path, nb_tensor_set *out)
{
    unsigned char *buf;
    size_t len;
    st_ctx c = {path ? path : "(null)", nb__thread_err(), NB_ERR_CAP};
    if (!path || !out) return fail(&c, NB_ERR_ARG, "no path or no set given");
    memset(out, 0, sizeof *out);
    nb_status st = nb_io_read_file(path, &buf, &len, c.err, c.cap);
    if (st) return st;
    st = parse_file(&c, buf, len, out);
    nb_free(buf);
    if (st) nb_tensor_set_free(out);
    return st;
}

/* Only the header: 8 bytes of length, then the JSON, read with plain reads
 * so that a large checkpoint costs no more than its header. */
static nb_status read_header(const st_ctx *c, int fd, char **json, size_t *len)
{
    unsigned char b8[8];
    struct stat sb;
    if (fstat(fd, &sb) != 0 || pread(fd, b8, 8, 0) != 8)
        return fail(c, NB_ERR_FORMAT, "too short for the 8-byte header length");
    uint64_t hlen = nb_io_le64(b8);
    if (hlen > (uint64_t)sb.st_size - 8 || hlen > ((size_t)1 << 30))
        return fail(c, NB_ERR_FORMAT, "header length %llu overruns the file of %lld bytes",
                    (unsigned long long)hlen, (long long)sb.st_size);
    if (!(*json = nb_malloc((size_t)hlen + 1))) return fail(c, NB_ERR_NOMEM, "out of memory");
    size_t got = 0;
    while (got < hlen) {
        ssize_t r = pread(fd, *json + got, (size_t)hlen - got, (off_t)(8 + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            nb_free(*json);
            return fail(c, NB_ERR_IO, "cannot read the header");
        }
        got += (size_t)r;
    }
    *len = (size_t)hlen;
    return NB_OK;
}

nb_status nb_safetensors_read_meta(const char *path, nb_tensor_set *out)
{
    st_ctx c = {path ? path : "(null)", nb__thread_err(), NB_ERR_CAP};
    if (!path || !out) return fail(&c, NB_ERR_ARG, "no path or no set given");
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);  /* O_NONBLOCK: a FIFO must not hang us */
    if (fd < 0) return fail(&c, NB_ERR_IO, "cannot open: %s", strerror(errno));
    char *json = NULL;
    size_t len = 0;
    nb_status st = read_header(&c, fd, &json, &len);
    close(fd);
    json_t *root = NULL, *meta = NULL;
    json_error_t jerr;
    if (!st && !(root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr)))
        st = fail(&c, NB_ERR_FORMAT, "header is not valid JSON: %s", jerr.text);
    if (!st && !json_is_object(root)) st = fail(&c, NB_ERR_FORMAT, "header is not a JSON object");
    if (!st && (meta = json_object_get(root, META_KEY))) st = parse_metadata(&c, meta, out);
    json_decref(root);
    nb_free(json);
    if (st) nb_tensor_set_free(out);
    return st;
}

/* ---- writing ---- */

static const char *dtype_tag(nb_dtype dt) { return dt == NB_F32 ? "F32" : dt == NB_F64 ? "F64" : "I32"; }

static json_t *int_array(const int64_t *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_integer(v[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static nb_status add_metadata(const st_ctx *c, json_t *root, const nb_tensor_set *set)
{
    json_t *m = json_object();
    if (!m || json_object_set_new(root, META_KEY, m)) return fail(c, NB_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < set->n_meta; i++)
        if (json_object_set_new(m, set->meta_keys[i], json_string(set->meta_vals[i])))
            return fail(c, NB_ERR_ARG, "metadata '%s' is not valid UTF-8 (or out of memory)",
                        set->meta_keys[i]);
    return NB_OK;
}

/* Adds the header entry of a tensor whose data starts at *offset, moves
 * *offset past it and sets *bytes to its size. */
static nb_status add_entry(const st_ctx *c, json_t *root, const nb_named_tensor *it, size_t *offset,
                           size_t *bytes)
{
    char what[160];
    snprintf(what, sizeof what, "tensor '%.128s'", it->name);
    nb_status st = nb_io_check_tensor(c->path, what, &it->t, bytes, c->err, c->cap);
    if (st) return st;
    if (!strcmp(it->name, META_KEY)) return fail(c, NB_ERR_NAME, "a tensor cannot be named " META_KEY);
    if (json_object_get(root, it->name)) return fail(c, NB_ERR_NAME, "two tensors are named '%s'", it->name);
    int64_t span[2] = {(int64_t)*offset, 0};
    if (__builtin_add_overflow(*offset, *bytes, offset) || *offset > INT64_MAX)
        return fail(c, NB_ERR_OVERFLOW, "the data is too large");
    span[1] = (int64_t)*offset;
    json_t *e = json_pack("{s:s, s:o, s:o}", "dtype", dtype_tag(it->t.dtype), "shape",
                          int_array(it->t.shape, it->t.rank), "data_offsets", int_array(span, 2));
    if (!e || json_object_set_new(root, it->name, e))
        return fail(c, NB_ERR_ARG, "tensor name '%s' is not valid UTF-8 (or out of memory)", it->name);
    return NB_OK;
}

/* Length prefix plus compact JSON padded with spaces to a multiple of 8, so
 * that the data starts aligned, as the Python library writes it. */
static nb_status dump_header(const st_ctx *c, json_t *root, char **out, size_t *len)
{
    const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
    size_t n = json_dumpb(root, NULL, 0, flags);
    if (n == 0) return fail(c, NB_ERR_NOMEM, "cannot format the header");
    size_t padded = (n + 7) / 8 * 8;
    char *buf = nb_malloc(8 + padded);
    if (!buf) return fail(c, NB_ERR_NOMEM, "out of memory");
    for (int i = 0; i < 8; i++) buf[i] = (char)((uint64_t)padded >> (8 * i));
    json_dumpb(root, buf + 8, n, flags);
    memset(buf + 8 + n, ' ', padded - n);
    *out = buf;
    *len = 8 + padded;
    return NB_OK;
}

nb_status nb_safetensors_write(const char *path, const nb_tensor_set *set)
{
    st_ctx c = {path ? path : "(null)", nb__thread_err(), NB_ERR_CAP};
    if (!set || !path) return fail(&c, NB_ERR_ARG, "no path or no tensor set given");
    nb_io_chunk *chunks = nb_calloc(set->n + 1, sizeof *chunks);
    json_t *root = json_object();
    char *header = NULL;
    nb_status st = chunks && root ? NB_OK : fail(&c, NB_ERR_NOMEM, "out of memory");
    if (!st && set->n_meta > 0) st = add_metadata(&c, root, set);
    size_t offset = 0;
    for (size_t i = 0; i < set->n && !st; i++) {
        chunks[i + 1].data = set->items[i].t.data;
        st = add_entry(&c, root, &set->items[i], &offset, &chunks[i + 1].len);
    }
    if (!st) st = dump_header(&c, root, &header, &chunks[0].len);
    if (!st) {
        chunks[0].data = header;
        st = nb_io_write_atomic(path, chunks, set->n + 1, c.err, c.cap);
    }
    nb_free(header);
    json_decref(root);
    nb_free(chunks);
    return st;
}

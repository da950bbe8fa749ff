/* .npz files (what numpy.savez and numpy.savez_compressed write): a zip
 * archive of .npy members, member NAME.npy holding tensor NAME. The zip
 * format is libzip's business; the members go through the .npy code.
 *
 * nabla writes the members stored (uncompressed, as numpy.savez does), and a
 * tensor set's metadata as a JSON object of strings in the archive comment,
 * which numpy ignores (zipfile.ZipFile(path).comment shows it). Reading takes
 * stored and deflated members, and the comment's metadata when it is such an
 * object. A member that is not NAME.npy is an error: weights files hold arrays
 * only. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <zip.h>

#include "base.h"
#include "io_util.h"
#include "nabla/io.h"

/* Where messages go. */
typedef struct npz_ctx {
    const char *path;
    char *err;
    size_t cap;
} npz_ctx;

static nb_status fail(const npz_ctx *c, nb_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static nb_status fail(const npz_ctx *c, nb_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nb_io_vfail(c->err, c->cap, st, c->path, fmt, ap);
    va_end(ap);
    return st;
}

/* libzip's message, with what it means for an .npz where its own says
 * little ("File already exists" for two members of one name). */
static nb_status zip_fail(const npz_ctx *c, nb_status st, const char *what, zip_error_t *ze)
{
    const char *hint = "";
    if (zip_error_code_zip(ze) == ZIP_ER_EXISTS) hint = " (two members have the same name)";
    if (zip_error_code_zip(ze) == ZIP_ER_NOZIP) hint = " (no zip directory at its end: truncated, or another format)";
    nb_status r = fail(c, st, "%s: %s%s", what, zip_error_strerror(ze), hint);
    zip_error_fini(ze);
    return r;
}

/* ---- reading ---- */

/* Metadata from the archive comment, when it is a JSON object of strings. */
static nb_status read_comment(const npz_ctx *c, zip_t *za, nb_tensor_set *out)
{
    int len = 0;
    const char *text = zip_get_archive_comment(za, &len, ZIP_FL_ENC_RAW);
    if (!text || len <= 0) return NB_OK;
    json_t *root = json_loadb(text, (size_t)len, JSON_REJECT_DUPLICATES, NULL);
    const char *key;
    json_t *v;
    nb_status st = NB_OK;
    if (json_is_object(root)) {
        json_object_foreach (root, key, v)
            if (!st && json_is_string(v) && nb_tensor_set_meta(out, key, json_string_value(v)))
                st = fail(c, NB_ERR_NOMEM, "out of memory");
    }
    json_decref(root);
    return st;
}

/* The tensor name of a member: NAME of NAME.npy. */
static nb_status member_name(const npz_ctx *c, const char *member, char **out)
{
    size_t n = strlen(member);
    if (n <= 4 || strcmp(member + n - 4, ".npy") != 0)
        return fail(c, NB_ERR_FORMAT, "member '%s' is not a .npy array (an .npz of weights holds NAME.npy members only)",
                    member);
    if (!(*out = nb_malloc(n - 3))) return fail(c, NB_ERR_NOMEM, "out of memory");
    memcpy(*out, member, n - 4);
    (*out)[n - 4] = 0;
    return NB_OK;
}

/* Reads member i (its whole size, as its header says) into a new buffer. */
static nb_status member_bytes(const npz_ctx *c, zip_t *za, zip_uint64_t i, const zip_stat_t *zs,
                              unsigned char **buf)
{
    *buf = NULL;
    if (!(zs->valid & ZIP_STAT_SIZE) || zs->size > SIZE_MAX - 1)
        return fail(c, NB_ERR_FORMAT, "member '%s' has no usable size", zs->name);
    if (zs->valid & ZIP_STAT_ENCRYPTION_METHOD && zs->encryption_method != ZIP_EM_NONE)
        return fail(c, NB_ERR_FORMAT, "member '%s' is encrypted", zs->name);
    zip_file_t *f = zip_fopen_index(za, i, 0);
    if (!f) return fail(c, NB_ERR_FORMAT, "member '%s': %s", zs->name, zip_strerror(za));
    *buf = nb_malloc((size_t)zs->size + 1);
    nb_status st = *buf ? NB_OK : fail(c, NB_ERR_NOMEM, "member '%s': out of memory", zs->name);
    zip_int64_t got = st ? 0 : zip_fread(f, *buf, zs->size), end = 0;
    /* libzip checks the CRC when a read meets the end, and a read that got
     * some bytes keeps that error for the next one: read once more */
    if (!st && got >= 0 && (zip_uint64_t)got == zs->size) end = zip_fread(f, *buf + zs->size, 1);
    if (!st && (got < 0 || end < 0))
        st = fail(c, NB_ERR_FORMAT, "member '%s' cannot be read: %s", zs->name, zip_file_strerror(f));
    else if (!st && ((zip_uint64_t)got != zs->size || end != 0))
        st = fail(c, NB_ERR_FORMAT, "member '%s' is corrupt: its data gives %s%llu bytes, its header says %llu",
                  zs->name, end != 0 ? "more than " : "", (unsigned long long)got, (unsigned long long)zs->size);
    zip_fclose(f);
    if (st) {
        nb_free(*buf);
        *buf = NULL;
    }
    return st;
}

static nb_status read_member(const npz_ctx *c, zip_t *za, zip_uint64_t i, nb_tensor_set *out)
{
    zip_stat_t zs;
    if (zip_stat_index(za, i, 0, &zs) != 0 || !(zs.valid & ZIP_STAT_NAME))
        return fail(c, NB_ERR_FORMAT, "member %llu: %s", (unsigned long long)i, zip_strerror(za));
    char *name = NULL, what[1200];
    unsigned char *buf = NULL;
    nb_tensor t = {0};
    bool from_i64 = false;
    nb_status st = member_name(c, zs.name, &name);
    if (!st && nb_tensor_set_find(out, name)) st = fail(c, NB_ERR_FORMAT, "two members are named '%s'", zs.name);
    if (!st) st = member_bytes(c, za, i, &zs, &buf);
    snprintf(what, sizeof what, "%s: member %s", c->path, zs.name);
    if (!st) st = nb_io_npy_parse(what, buf, (size_t)zs.size, &t, &from_i64, c->err, c->cap);
    nb_free(buf);
    /* the set takes the name and the data (nb_tensor_set_add copies: move instead) */
    if (!st) st = nb_io_set_push(out, name, &t) ? fail(c, NB_ERR_NOMEM, "out of memory") : NB_OK;
    if (!st && from_i64) out->items[out->n - 1].stored = "i64";
    if (st) {
        nb_free(name);
        nb_tensor_free(&t);
    }
    return st;
}

static nb_status read_archive(const npz_ctx *c, const unsigned char *buf, size_t len, nb_tensor_set *out)
{
    /* libzip reads 0 bytes as an empty archive; numpy writes 22 bytes for one */
    if (len == 0) return fail(c, NB_ERR_FORMAT, "empty (0 bytes): not a valid .npz (zip) file");
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(buf, len, 0, &ze);
    if (!src) return zip_fail(c, NB_ERR_NOMEM, "cannot read", &ze);
    zip_t *za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
    if (!za) {
        zip_source_free(src);
        return zip_fail(c, NB_ERR_FORMAT, "not a valid .npz (zip) file", &ze);
    }
    zip_error_fini(&ze);
    nb_status st = read_comment(c, za, out);
    zip_int64_t n = zip_get_num_entries(za, 0);
    for (zip_int64_t i = 0; i < n && !st; i++) st = read_member(c, za, (zip_uint64_t)i, out);
    zip_discard(za);  /* frees src too */
    return st;
}

nb_status nb_npz_read(const char *path, nb_tensor_set *out)
{
    npz_ctx c = {path ? path : "(null)", nb__thread_err(), NB_ERR_CAP};
    if (!path || !out) return fail(&c, NB_ERR_ARG, "no path or no set given");
    memset(out, 0, sizeof *out);
    unsigned char *buf;
    size_t len;
    nb_status st = nb_io_read_file(path, &buf, &len, c.err, c.cap);
    if (st) return st;
    st = read_archive(&c, buf, len, out);
    nb_free(buf);
    if (st) nb_tensor_set_free(out);
    return st;
}

/* The archive comment only: libzip reads the central directory, not the members. */
nb_status nb_npz_read_meta(const char *path, nb_tensor_set *out)
{
    npz_ctx c = {path ? path : "(null)", nb__thread_err(), NB_ERR_CAP};
    if (!path || !out) return fail(&c, NB_ERR_ARG, "no path or no set given");
    memset(out, 0, sizeof *out);
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))  /* libzip would block on a FIFO */
        return fail(&c, NB_ERR_IO, "not a regular file");
    int zerr = 0;
    zip_t *za = zip_open(path, ZIP_RDONLY, &zerr);
    if (!za) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        return zip_fail(&c, NB_ERR_FORMAT, "not a valid .npz (zip) file", &ze);
    }
    nb_status st = read_comment(&c, za, out);
    zip_discard(za);
    if (st) nb_tensor_set_free(out);
    return st;
}

nb_status nb_tensors_read_meta(const char *path, nb_tensor_set *out)
{
    return nb_is_npz_path(path) ? nb_npz_read_meta(path, out) : nb_safetensors_read_meta(path, out);
}

/* ---- writing ---- */

/* The archive comment: the metadata as a JSON object (none: no comment). */
static nb_status write_comment(const npz_ctx *c, zip_t *za, const nb_tensor_set *set)
{
    if (!set->n_meta) return NB_OK;
    json_t *root = json_object();
    for (size_t i = 0; root && i < set->n_meta; i++)
        if (json_object_set_new(root, set->meta_keys[i], json_string(set->meta_vals[i]))) {
            json_decref(root);
            return fail(c, NB_ERR_ARG, "metadata '%s' is not valid UTF-8 (or out of memory)", set->meta_keys[i]);
        }
    char *text = root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    nb_status st = NB_OK;
    if (!text) st = fail(c, NB_ERR_NOMEM, "out of memory");
    else if (strlen(text) > 65535) st = fail(c, NB_ERR_ARG, "the metadata is over the 65535 bytes of a zip comment");
    else if (zip_set_archive_comment(za, text, (zip_uint16_t)strlen(text)) != 0)
        st = fail(c, NB_ERR_FORMAT, "cannot set the comment: %s", zip_strerror(za));
    free(text);  /* jansson's allocator is malloc */
    return st;
}

/* One member NAME.npy, stored: its bytes (header and data) go to *owned,
 * freed by the caller once the archive is written. */
static nb_status add_member(const npz_ctx *c, zip_t *za, const nb_named_tensor *it, unsigned char **owned)
{
    char what[160], header[NB_IO_NPY_HEADER_CAP];
    size_t bytes, hlen, total;
    snprintf(what, sizeof what, "tensor '%.128s'", it->name);
    nb_status st = nb_io_check_tensor(c->path, what, &it->t, &bytes, c->err, c->cap);
    if (st) return st;
    hlen = nb_io_npy_header(&it->t, header, sizeof header);
    if (__builtin_add_overflow(hlen, bytes, &total)) return fail(c, NB_ERR_OVERFLOW, "%s is too large", what);
    if (!(*owned = nb_malloc(total))) return fail(c, NB_ERR_NOMEM, "out of memory");
    memcpy(*owned, header, hlen);
    if (bytes) memcpy(*owned + hlen, it->t.data, bytes);
    size_t n = strlen(it->name);
    char *member = nb_malloc(n + 5);
    if (!member) return fail(c, NB_ERR_NOMEM, "out of memory");
    memcpy(member, it->name, n);
    memcpy(member + n, ".npy", 5);
    zip_source_t *src = zip_source_buffer(za, *owned, total, 0);
    zip_int64_t idx = src ? zip_file_add(za, member, src, ZIP_FL_ENC_UTF_8) : -1;
    if (idx < 0) {
        zip_source_free(src);
        st = fail(c, zip_get_error(za)->zip_err == ZIP_ER_EXISTS ? NB_ERR_NAME : NB_ERR_FORMAT,
                  "cannot add member '%s': %s", member, zip_strerror(za));
    } else if (zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_STORE, 0) != 0) {
        st = fail(c, NB_ERR_FORMAT, "member '%s': %s", member, zip_strerror(za));
    }
    nb_free(member);
    return st;
}

/* The archive's bytes, from the in-memory source it was written to. */
static nb_status source_bytes(const npz_ctx *c, zip_source_t *src, unsigned char **buf, size_t *len)
{
    zip_stat_t zs;
    *buf = NULL;
    if (zip_source_stat(src, &zs) != 0 || !(zs.valid & ZIP_STAT_SIZE) || zs.size > SIZE_MAX - 1 ||
        zip_source_open(src) != 0)
        return fail(c, NB_ERR_FORMAT, "cannot read the archive back: %s", zip_error_strerror(zip_source_error(src)));
    nb_status st = (*buf = nb_malloc((size_t)zs.size + 1)) ? NB_OK : fail(c, NB_ERR_NOMEM, "out of memory");
    if (!st && zip_source_read(src, *buf, zs.size) != (zip_int64_t)zs.size)
        st = fail(c, NB_ERR_FORMAT, "cannot read the archive back");
    zip_source_close(src);
    *len = (size_t)zs.size;
    return st;
}

/* Builds the archive in memory, then writes it atomically like every other
 * file of nabla (libzip's own temporary file is not synced). */
static nb_status write_archive(const npz_ctx *c, const nb_tensor_set *set, unsigned char **owned)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    zip_t *za = src ? zip_open_from_source(src, ZIP_TRUNCATE, &ze) : NULL;
    if (!za) {
        zip_source_free(src);
        return zip_fail(c, NB_ERR_NOMEM, "cannot start the archive", &ze);
    }
    zip_error_fini(&ze);
    zip_source_keep(src);  /* the bytes outlive the archive handle */
    nb_status st = write_comment(c, za, set);
    for (size_t i = 0; i < set->n && !st; i++) st = add_member(c, za, &set->items[i], &owned[i]);
    if (!st && zip_close(za) != 0) st = fail(c, NB_ERR_FORMAT, "cannot write the archive: %s", zip_strerror(za));
    if (st) zip_discard(za);
    unsigned char *bytes = NULL;
    size_t len = 0;
    if (!st) st = source_bytes(c, src, &bytes, &len);
    if (!st) st = nb_io_write_atomic(c->path, &(nb_io_chunk){bytes, len}, 1, c->err, c->cap);
    nb_free(bytes);
    zip_source_free(src);
    return st;
}

/* libzip writes nothing for an archive without members; numpy (Python's
 * zipfile) writes the 22-byte end record of an empty archive, and so do we. */
static nb_status write_empty(const npz_ctx *c)
{
    static const unsigned char eocd[22] = {'P', 'K', 5, 6};
    return nb_io_write_atomic(c->path, &(nb_io_chunk){eocd, sizeof eocd}, 1, c->err, c->cap);
}

nb_status nb_npz_write(const char *path, const nb_tensor_set *set)
{
    npz_ctx c = {path ? path : "(null)", nb__thread_err(), NB_ERR_CAP};
    if (!set || !path) return fail(&c, NB_ERR_ARG, "no path or no tensor set given");
    if (!set->n) return write_empty(&c);  /* metadata without params is not worth keeping */
    unsigned char **owned = nb_calloc(set->n + 1, sizeof *owned);
    if (!owned) return fail(&c, NB_ERR_NOMEM, "out of memory");
    nb_status st = write_archive(&c, set, owned);
    for (size_t i = 0; i < set->n; i++) nb_free(owned[i]);
    nb_free(owned);
    return st;
}

/* ---- by extension ---- */

bool nb_is_npz_path(const char *path)
{
    size_t n = path ? strlen(path) : 0;
    return n >= 4 && !strcasecmp(path + n - 4, ".npz");
}

nb_status nb_tensors_read(const char *path, nb_tensor_set *out)
{
    return nb_is_npz_path(path) ? nb_npz_read(path, out) : nb_safetensors_read(path, out);
}

nb_status nb_tensors_write(const char *path, const nb_tensor_set *set)
{
    return nb_is_npz_path(path) ? nb_npz_write(path, set) : nb_safetensors_write(path, set);
}

/* Error messages, whole-file reads and atomic writes for the file formats. */
#include "io_util.h"

#include "base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

nb_status nb_io_vfail(char *err, size_t cap, nb_status st, const char *path, const char *fmt, va_list ap)
{
    if (!err || cap == 0) return st;
    int n = snprintf(err, cap, "%s: ", path);
    if (n >= 0 && (size_t)n < cap) vsnprintf(err + n, cap - (size_t)n, fmt, ap);
    return st;
}

nb_status nb_io_fail(char *err, size_t cap, nb_status st, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nb_io_vfail(err, cap, st, path, fmt, ap);
    va_end(ap);
    return st;
}

/* The text of errno, without strerror's shared static buffer. */
static const char *errno_text(int e, char *buf, size_t cap)
{
    if (strerror_r(e, buf, cap) != 0) snprintf(buf, cap, "error %d", e);
    return buf;
}

static nb_status fail_errno(char *err, size_t cap, const char *path, const char *what)
{
    char msg[128];
    int e = errno;
    return nb_io_fail(err, cap, e == ENOMEM ? NB_ERR_NOMEM : NB_ERR_IO, path, "%s: %s", what,
                      errno_text(e, msg, sizeof msg));
}

nb_status nb_io_check_tensor(const char *path, const char *what, const nb_tensor *t, size_t *bytes, char *err,
                             size_t cap)
{
    size_t numel;
    if (t->dtype != NB_F32 && t->dtype != NB_F64 && t->dtype != NB_I32)
        return nb_io_fail(err, cap, NB_ERR_ARG, path, "%s has an invalid dtype (%d)", what, (int)t->dtype);
    if (t->rank < 0 || t->rank > NB_MAX_DIMS)
        return nb_io_fail(err, cap, NB_ERR_ARG, path, "%s has rank %d, outside 0..%d", what, t->rank,
                          NB_MAX_DIMS);
    nb_status st = nb_shape_numel(t->rank, t->shape, &numel);
    if (st == NB_ERR_SHAPE)
        return nb_io_fail(err, cap, NB_ERR_ARG, path, "%s has a negative dimension", what);
    if (st || __builtin_mul_overflow(numel, nb_dtype_size(t->dtype), bytes))
        return nb_io_fail(err, cap, NB_ERR_OVERFLOW, path, "%s is too large", what);
    if (*bytes > 0 && !t->data) return nb_io_fail(err, cap, NB_ERR_ARG, path, "%s has no data", what);
    return NB_OK;
}

bool nb_io_i64_to_i32(const unsigned char *src, size_t n, int32_t *dst, size_t *bad)
{
    for (size_t i = 0; i < n; i++) {
        int64_t v = (int64_t)nb_io_le64(src + 8 * i);
        if (v < INT32_MIN || v > INT32_MAX) {
            *bad = i;
            return false;
        }
        dst[i] = (int32_t)v;
    }
    return true;
}

/* Reads fd to its end; the size from fstat is only a first guess because the
 * file may be a pipe or may grow while it is read. */
static nb_status read_all(int fd, const char *path, unsigned char **buf, size_t *len, char *err, size_t cap)
{
    struct stat sb;
    size_t size = 0, room = 4096;
    if (fstat(fd, &sb) == 0 && sb.st_size > 0 && (uintmax_t)sb.st_size < SIZE_MAX)
        room = (size_t)sb.st_size + 1; /* +1 so that EOF is seen without growing */
    unsigned char *p = nb_malloc(room);
    for (;;) {
        if (!p) return nb_io_fail(err, cap, NB_ERR_NOMEM, path, "out of memory reading the file");
        ssize_t got = read(fd, p + size, room - size);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            nb_free(p);
            return fail_errno(err, cap, path, "cannot read");
        }
        if (got == 0) break;
        size += (size_t)got;
        if (size == room) {
            unsigned char *q = room <= SIZE_MAX / 2 ? nb_realloc(p, room *= 2) : NULL;
            if (!q) nb_free(p);
            p = q;
        }
    }
    *buf = p;
    *len = size;
    return NB_OK;
}

nb_status nb_io_read_file(const char *path, unsigned char **buf, size_t *len, char *err, size_t cap)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail_errno(err, cap, path, "cannot open");
    nb_status st = read_all(fd, path, buf, len, err, cap);
    close(fd);
    return st;
}

static bool write_all(int fd, const nb_io_chunk *chunks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *p = chunks[i].data;
        size_t left = chunks[i].len;
        while (left > 0) {
            ssize_t put = write(fd, p, left);
            if (put < 0 && errno == EINTR) continue;
            if (put < 0) return false;
            p += put;
            left -= (size_t)put;
        }
    }
    return true;
}

/* mkstemp makes the file private (0600); give it the mode of the file it
 * replaces, or 0644 for a new one (reading the umask is not thread-safe). */
static int set_mode(int fd, const char *path)
{
    struct stat sb;
    mode_t mode = stat(path, &sb) == 0 ? (sb.st_mode & 07777) : 0644;
    return fchmod(fd, mode);
}

/* Makes the rename itself durable; best effort, as some file systems refuse
 * to fsync a folder and the data is already safe. */
static void sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = nb__strdup(slash ? path : ".");
    if (!dir) return;
    if (slash) dir[slash == path ? 1 : slash - path] = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    nb_free(dir);
}

const char *nb_io_kind_name(mode_t mode)
{
    return S_ISLNK(mode)    ? "a symbolic link"
           : S_ISFIFO(mode) ? "a FIFO (named pipe)"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISDIR(mode)  ? "a folder"
           : S_ISSOCK(mode) ? "a socket"
                            : "not a regular file";
}

/* Renaming over a device node, a FIFO or a symbolic link would replace it by
 * a regular file (and a symbolic link's target would not get the data):
 * nabla writes only where nothing is or a regular file is. lstat, not stat,
 * so that a link to /dev/null is refused too. */
nb_status nb_io_check_replaceable(const char *path, char *err, size_t cap)
{
    struct stat sb;
    if (lstat(path, &sb) != 0 || S_ISREG(sb.st_mode)) return NB_OK;  /* a failing lstat: the write says why */
    return nb_io_fail(err, cap, NB_ERR_IO, path, "is %s, not a regular file: nabla replaces only regular files",
                      nb_io_kind_name(sb.st_mode));
}

/* A failed write names the cause (a full disk, a file size limit) and says
 * that the file there is untouched. */
static nb_status fail_write(char *err, size_t cap, const char *path)
{
    char msg[128];
    int e = errno;
    return nb_io_fail(err, cap, e == ENOMEM ? NB_ERR_NOMEM : NB_ERR_IO, path,
                      "cannot write: %s (any file already there is left as it was)", errno_text(e, msg, sizeof msg));
}

nb_status nb_io_write_atomic(const char *path, const nb_io_chunk *chunks, size_t n, char *err, size_t cap)
{
    static const char suffix[] = ".tmp-XXXXXX";
    nb_status ck = nb_io_check_replaceable(path, err, cap);
    if (ck) return ck;
    size_t plen = strlen(path);
    char *tmp = nb_malloc(plen + sizeof suffix);
    if (!tmp) return nb_io_fail(err, cap, NB_ERR_NOMEM, path, "out of memory");
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, suffix, sizeof suffix);

    nb_status st = NB_OK;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        st = fail_errno(err, cap, path, "cannot create a temporary file beside it");
        nb_free(tmp);
        return st;
    }
    if (!write_all(fd, chunks, n)) st = fail_write(err, cap, path);
    else if (set_mode(fd, path) != 0) st = fail_errno(err, cap, path, "cannot set the mode");
    else if (fsync(fd) != 0) st = fail_write(err, cap, path);
    if (close(fd) != 0 && st == NB_OK) st = fail_write(err, cap, path);
    if (st == NB_OK && rename(tmp, path) != 0)
        st = fail_errno(err, cap, path, "cannot rename the temporary file over it");
    if (st == NB_OK) sync_dir(path);
    else unlink(tmp);
    nb_free(tmp);
    return st;
}

nb_status nb_file_write(const char *path, const void *data, size_t len)
{
    char *err = nb__thread_err();
    if (!path || (len && !data)) return nb_io_fail(err, NB_ERR_CAP, NB_ERR_ARG, "(null)", "no path or no data given");
    return nb_io_write_atomic(path, &(nb_io_chunk){data, len}, 1, err, NB_ERR_CAP);
}

/* Helpers for the tests of the `nabla` command (see toolutil.h). */
#include "toolutil.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmp_dir[64];

const char *test_dir(void)
{
    const char *d = getenv("NABLA_TEST_DIR");
    cr_assert_not_null(d, "NABLA_TEST_DIR is not set (run the tests through meson test)");
    return d;
}

const char *tmp_make(void)
{
    strcpy(tmp_dir, "/tmp/nabla-tool-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp_dir));
    return tmp_dir;
}

/* rm -r without following links */
static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st)) return;
    DIR *d = S_ISDIR(st.st_mode) ? opendir(path) : NULL;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char sub[1024];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        remove_tree(sub);
    }
    if (d) closedir(d);
    remove(path);
}

void tmp_remove(void)
{
    if (tmp_dir[0]) remove_tree(tmp_dir);
    tmp_dir[0] = 0;
}

const char *tmp_path(const char *name)
{
    static char p[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%s/%s", tmp_dir, name);
    return p[k];
}

void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot read %s", path);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (size_t got; (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (cap - n < 2) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

static char *slurp_fd(int fd)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    lseek(fd, 0, SEEK_SET);
    for (ssize_t got; (got = read(fd, buf + n, cap - n - 1)) > 0;) {
        n += (size_t)got;
        if (cap - n < 2) buf = realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    close(fd);
    return buf;
}

static int capture_file(void)
{
    char name[] = "/tmp/nabla-cap-XXXXXX";
    int fd = mkstemp(name);
    cr_assert_geq(fd, 0);
    unlink(name);
    return fd;
}

tool_result tool_run(const char *const *args)
{
    const char *tool = getenv("NABLA_TOOL");
    cr_assert_not_null(tool, "NABLA_TOOL is not set (run the tests through meson test)");
    const char *argv[64] = {tool};
    int n = 1;
    for (; args[n - 1] && n < 63; n++) argv[n] = args[n - 1];
    argv[n] = NULL;
    int out = capture_file(), err = capture_file();
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(out, 1);
        dup2(err, 2);
        execv(tool, (char *const *)argv);
        _exit(127);
    }
    int ws;
    waitpid(pid, &ws, 0);
    tool_result r = {WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws), slurp_fd(out), slurp_fd(err)};
    return r;
}

void tool_result_free(tool_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

static void write_npy(const char *path, nb_dtype dt, int rank, const int64_t *shape, const void *v)
{
    nb_tensor t;
    cr_assert_eq(nb_tensor_alloc(&t, dt, rank, shape), NB_OK);
    memcpy(t.data, v, nb_tensor_bytes(&t));
    cr_assert_eq(nb_npy_write(path, &t), NB_OK, "%s", nb_last_error());
    nb_tensor_free(&t);
}

void write_npy_f64(const char *path, int rank, const int64_t *shape, const double *v)
{
    write_npy(path, NB_F64, rank, shape, v);
}

void write_npy_i32(const char *path, int rank, const int64_t *shape, const int32_t *v)
{
    write_npy(path, NB_I32, rank, shape, v);
}

nb_tensor read_npy_f64(const char *path)
{
    nb_tensor t, d;
    cr_assert_eq(nb_npy_read(path, &t), NB_OK, "%s", nb_last_error());
    if (t.dtype == NB_F64) return t;
    cr_assert_eq(nb_tensor_alloc(&d, NB_F64, t.rank, t.shape), NB_OK);
    size_t n = nb_tensor_numel(&t);
    for (size_t i = 0; i < n; i++)
        ((double *)d.data)[i] = t.dtype == NB_F32 ? ((float *)t.data)[i] : ((int32_t *)t.data)[i];
    nb_tensor_free(&t);
    return d;
}

/* Nothing lost, nothing clobbered: which existing files a command may
 * replace, and outputs staged in temporary folders and moved in together. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>

#include "cli.h"

static const char *kind_of(mode_t mode)
{
    return S_ISLNK(mode)    ? "a symbolic link"
           : S_ISFIFO(mode) ? "a FIFO (named pipe)"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISDIR(mode)  ? "a folder"
           : S_ISSOCK(mode) ? "a socket"
                            : "not a regular file";
}

bool nbt_is_nabla_weights(const char *path)
{
    nb_tensor_set s;
    if (nb_tensors_read_meta(path, &s)) return false;
    bool ours = false;
    for (size_t i = 0; i < s.n_meta; i++)
        if (!strcmp(s.meta_keys[i], "format")) ours = !strncmp(s.meta_vals[i], NBT_FORMAT_PREFIX, strlen(NBT_FORMAT_PREFIX));
    nb_tensor_set_free(&s);
    return ours;
}

int nbt_check_output(const char *cmd, const char *path, bool force, bool weights)
{
    struct stat sb;
    if (lstat(path, &sb) != 0) return NBT_OK;  /* nothing there (or the write will say why not) */
    if (!S_ISREG(sb.st_mode))
        return nbt_fail(cmd, "%s is %s, not a regular file: nabla replaces only regular files (--force or not)",
                        path, kind_of(sb.st_mode));
    if (force || (weights && nbt_is_nabla_weights(path))) return NBT_OK;
    if (weights)
        return nbt_fail(cmd, "%s exists and is not a nabla checkpoint or weights file (its metadata has no "
                             "format '" NBT_FORMAT_PREFIX "...'): give --force to replace it", path);
    return nbt_fail(cmd, "%s exists: give --force to replace it", path);
}

/* "a/b/c.npy" -> "a/b", "c.npy" -> "." into buf */
static void folder_of(const char *path, char *buf, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(buf, cap, ".");
    else if (slash == path) snprintf(buf, cap, "/");
    else snprintf(buf, cap, "%.*s", (int)(slash - path), path);
}

bool nbt_in_folder(const char *path, const char *dir)
{
    char f[4096];
    struct stat a, b;
    folder_of(path, f, sizeof f);
    return stat(f, &a) == 0 && stat(dir, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* ---- staging ---------------------------------------------------------------- */

/* The temporary folder beside `folder` (made on first use). */
static const char *stage_dir(nbt_stage *s, const char *folder, const char *final)
{
    for (int i = 0; i < s->n_dirs; i++)
        if (!strcmp(s->dirs[i].folder, folder)) return s->dirs[i].tmp;
    if (s->n_dirs == NBT_STAGE_DIRS) {
        nbt_fail(s->cmd, "too many output folders");
        return NULL;
    }
    struct nbt_stage_dir *d = &s->dirs[s->n_dirs];
    snprintf(d->folder, sizeof d->folder, "%s", folder);
    if (snprintf(d->tmp, sizeof d->tmp, "%s/.nabla-stage-XXXXXX", folder) >= (int)sizeof d->tmp) {
        nbt_fail(s->cmd, "%s: path too long", folder);
        return NULL;
    }
    if (!mkdtemp(d->tmp)) {
        nbt_fail(s->cmd, "cannot write %s: cannot create a temporary folder in %s: %s", final, folder,
                 strerror(errno));
        return NULL;
    }
    s->n_dirs++;
    return d->tmp;
}

const char *nbt_stage_file(nbt_stage *s, const char *final)
{
    char folder[4096];
    folder_of(final, folder, sizeof folder);
    const char *dir = stage_dir(s, folder, final), *base = strrchr(final, '/');
    base = base ? base + 1 : final;
    if (!dir) return NULL;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        nbt_staged *f = realloc(s->files, cap * sizeof *f);
        if (!f) return nbt_fail(s->cmd, "out of memory"), NULL;
        s->files = f, s->cap = cap;
    }
    nbt_staged *f = &s->files[s->n];
    size_t need = strlen(dir) + strlen(base) + 2;
    if (!(f->tmp = malloc(need)) || !(f->final = strdup(final))) {
        free(f->tmp);
        return nbt_fail(s->cmd, "out of memory"), NULL;
    }
    snprintf(f->tmp, need, "%s/%s", dir, base);
    s->n++;
    return f->tmp;
}

static void sync_folder(const char *folder)
{
    int fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) fsync(fd), close(fd);
}

void nbt_stage_discard(nbt_stage *s)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->files[i].tmp) unlink(s->files[i].tmp);
        free(s->files[i].tmp);
        free(s->files[i].final);
    }
    for (int i = 0; i < s->n_dirs; i++) rmdir(s->dirs[i].tmp);
    free(s->files);
    *s = (nbt_stage){.cmd = s->cmd};
}

int nbt_stage_commit(nbt_stage *s)
{
    int rc = NBT_OK;
    /* every target first, so that a refusal moves nothing */
    for (size_t i = 0; i < s->n && !rc; i++) rc = nbt_check_output(s->cmd, s->files[i].final, true, false);
    for (size_t i = 0; i < s->n && !rc; i++) {
        struct stat sb;
        if (lstat(s->files[i].tmp, &sb) != 0) continue;  /* a file staged twice is moved once */
        if (rename(s->files[i].tmp, s->files[i].final) != 0)
            rc = nbt_fail(s->cmd, "cannot move %s into place: %s", s->files[i].final, strerror(errno));
    }
    for (int i = 0; i < s->n_dirs && !rc; i++) sync_folder(s->dirs[i].folder);
    nbt_stage_discard(s);
    return rc;
}

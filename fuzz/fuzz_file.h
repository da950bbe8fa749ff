/* For the fuzz targets whose reader takes a path (IDX, .npz): the input is
 * written to one temporary file per process, rewritten for every input and
 * removed at exit. Header-only: each target is one translation unit. */
#ifndef NABLA_FUZZ_FILE_H
#define NABLA_FUZZ_FILE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_path[4096];

static void fuzz_remove(void) { unlink(fuzz_path); }

/* The temporary file's path, made on the first call with the given suffix
 * (the .npz reader goes by the extension of the path it is given). */
static const char *fuzz_file_path(const char *suffix)
{
    if (fuzz_path[0]) return fuzz_path;
    const char *dir = getenv("TMPDIR");
    snprintf(fuzz_path, sizeof fuzz_path, "%s/nabla-fuzz-XXXXXX%s", dir && dir[0] ? dir : "/tmp", suffix);
    int fd = mkstemps(fuzz_path, (int)strlen(suffix));
    if (fd < 0) abort();
    close(fd);
    atexit(fuzz_remove);
    return fuzz_path;
}

/* Replaces the file's content with data[0..len). */
static const char *fuzz_file_write(const char *suffix, const unsigned char *data, size_t len)
{
    const char *path = fuzz_file_path(suffix);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) abort();
    return path;
}

#endif

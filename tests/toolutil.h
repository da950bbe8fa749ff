/* Helpers for the tests of the `nabla` command: running it as a separate
 * process (its path comes from the NABLA_TOOL environment variable), temporary
 * folders, small files. Failures assert through Criterion. */
#ifndef NABLA_TOOLUTIL_H
#define NABLA_TOOLUTIL_H

#include <stddef.h>

#include <nabla/nabla.h>

typedef struct tool_result {
    int status;   /* exit status, or 128 + signal */
    char *out;    /* everything printed on stdout */
    char *err;    /* ... and on stderr */
} tool_result;

/* Runs `nabla ARGS...`; args ends with NULL. */
tool_result tool_run(const char *const *args);
void tool_result_free(tool_result *r);
#define TOOL(...) tool_run((const char *const[]){__VA_ARGS__, NULL})

/* A fresh folder under /tmp, removed with everything in it by tmp_remove. */
const char *tmp_make(void);
void tmp_remove(void);
/* "TMP/name" (a few calls' results stay valid at once). */
const char *tmp_path(const char *name);

void write_text(const char *path, const char *text);
char *read_text(const char *path, size_t *len);   /* malloc'd, NUL-terminated */
/* Writes a f64 (or i32) .npy through the library. */
void write_npy_f64(const char *path, int rank, const int64_t *shape, const double *v);
void write_npy_i32(const char *path, int rank, const int64_t *shape, const int32_t *v);
/* Reads a .npy as f64 values (any float dtype); asserts on failure. */
nb_tensor read_npy_f64(const char *path);

/* NABLA_TEST_DIR (the tests/ folder), asserted to be set. */
const char *test_dir(void);

#endif

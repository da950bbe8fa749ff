/* The library as a program outside nabla sees it: the symbols libnabla.so
 * exports (tests/exports.sh). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testutil.h"

static const char *env(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v && *v, "%s is not set (run the tests through meson test)", name);
    return v;
}

/* Runs a shell command; returns its exit status and its output (stdout and
 * stderr) in out[0..cap). */
static int shell(const char *cmd, char *out, size_t cap)
{
    char full[4096];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    cr_assert_not_null(p, "cannot run %s", cmd);
    size_t n = 0;
    for (size_t got; n + 1 < cap && (got = fread(out + n, 1, cap - n - 1, p)) > 0;) n += got;
    out[n] = 0;
    for (char sink[256]; fread(sink, 1, sizeof sink, p) > 0;) {}  /* the rest, unread */
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* Every exported symbol starts with nb_ (not nb__) and is declared NB_API in
 * include/nabla; every function declared there is exported. */
Test(boundary, exports_only_the_public_api)
{
    char cmd[2048], out[16384];
    snprintf(cmd, sizeof cmd, "sh '%s/exports.sh' '%s' '%s/../include/nabla'", env("NABLA_TEST_DIR"),
             env("NABLA_LIB"), env("NABLA_TEST_DIR"));
    int st = shell(cmd, out, sizeof out);
    cr_expect_eq(st, 0, "%s:\n%s", cmd, out);
}

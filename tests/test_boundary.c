/* The library as a program outside nabla sees it: the symbols libnabla.so
 * exports (tests/exports.sh), its version and soname, and building a program
 * against it through pkg-config, uninstalled and installed
 * (tests/pkgconfig.sh). */
#include <criterion/criterion.h>
#include <dlfcn.h>
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

/* The shared library, loaded as a program would: its nb_version is the
 * headers' NB_VERSION_STRING; internal functions are not to be found. */
Test(boundary, version_of_the_shared_library)
{
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", NB_VERSION_MAJOR, NB_VERSION_MINOR, NB_VERSION_PATCH);
    cr_expect_str_eq(NB_VERSION_STRING, want);
    cr_expect_str_eq(nb_version(), NB_VERSION_STRING);
    cr_expect_eq(NB_VERSION, NB_VERSION_OF(NB_VERSION_MAJOR, NB_VERSION_MINOR, NB_VERSION_PATCH));
    cr_expect_gt(NB_VERSION_OF(0, 2, 0), NB_VERSION_OF(0, 1, 99));

    void *lib = dlopen(env("NABLA_LIB"), RTLD_NOW | RTLD_LOCAL);
    cr_assert_not_null(lib, "%s", dlerror());
    const char *(*version)(void);
    *(void **)&version = dlsym(lib, "nb_version");
    cr_assert_not_null(version, "libnabla.so has no nb_version");
    cr_expect_str_eq(version(), NB_VERSION_STRING);
    cr_expect_not_null(dlsym(lib, "nb_graph_new"));
    cr_expect_null(dlsym(lib, "nb__fail"), "an internal function is exported");
    cr_expect_null(dlsym(lib, "nb_op_add"), "an op descriptor is exported");
    dlclose(lib);
}

/* soname libnabla.so.0.MINOR before 1.0 (any minor release may break the
 * ABI), libnabla.so.MAJOR from 1.0 on; docs/c-api.md says why. */
Test(boundary, soname_follows_the_version)
{
    char want[64], cmd[2048], out[4096];
    if (NB_VERSION_MAJOR == 0) snprintf(want, sizeof want, "libnabla.so.0.%d", NB_VERSION_MINOR);
    else snprintf(want, sizeof want, "libnabla.so.%d", NB_VERSION_MAJOR);
    snprintf(cmd, sizeof cmd, "objdump -p '%s' | awk '$1 == \"SONAME\" {print $2}'", env("NABLA_LIB"));
    cr_assert_eq(shell(cmd, out, sizeof out), 0, "%s", out);
    out[strcspn(out, "\n")] = 0;
    cr_expect_str_eq(out, want, "soname %s, want %s", out, want);
}

/* examples/apple.c built through pkg-config against the uninstalled build and
 * against a `meson install --destdir` copy (shared, with -Wl,-rpath, and
 * static), and the installed `nabla --version` (tests/pkgconfig.sh). */
Test(boundary, programs_build_with_pkg_config, .timeout = 120)
{
    static char out[65536];
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "CC='%s' sh '%s/pkgconfig.sh' '%s' '%s/..' '%s'", env("NABLA_CC"),
             env("NABLA_TEST_DIR"), env("NABLA_BUILD_ROOT"), env("NABLA_TEST_DIR"),
             env("NABLA_SANITIZE"));
    int st = shell(cmd, out, sizeof out);
    cr_expect_eq(st, 0, "%s: exit %d\n%s", cmd, st, out);
}

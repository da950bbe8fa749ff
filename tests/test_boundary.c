/* The library as a program outside nabla sees it: the symbols libnabla.so
 * exports (tests/exports.sh), its version and soname, and building a program
 * against it through pkg-config, uninstalled and installed
 * (tests/pkgconfig.sh). */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Every exported symbol starts with nb_ (not nb__) and is declared NB_API in
 * include/nabla; every function declared there is exported. */
Test(boundary, exports_only_the_public_api)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "sh '%s' '%s' '%s/../include/nabla'", test_file("exports.sh"),
             test_env("NABLA_LIB"), test_dir());
    int st;
    char *out = run_shell(cmd, &st);
    cr_expect_eq(st, 0, "%s:\n%s", cmd, out);
    free(out);
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

    void *lib = dlopen(test_env("NABLA_LIB"), RTLD_NOW | RTLD_LOCAL);
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
    char want[64], cmd[2048];
    if (NB_VERSION_MAJOR == 0) snprintf(want, sizeof want, "libnabla.so.0.%d", NB_VERSION_MINOR);
    else snprintf(want, sizeof want, "libnabla.so.%d", NB_VERSION_MAJOR);
    snprintf(cmd, sizeof cmd, "objdump -p '%s' | awk '$1 == \"SONAME\" {print $2}'", test_env("NABLA_LIB"));
    int st;
    char *out = run_shell(cmd, &st);
    cr_assert_eq(st, 0, "%s", out);
    out[strcspn(out, "\n")] = 0;
    cr_expect_str_eq(out, want, "soname %s, want %s", out, want);
    free(out);
}

/* examples/apple.c built through pkg-config against the uninstalled build and
 * against a `meson install --destdir` copy (shared, with -Wl,-rpath, and
 * static), and the installed `nabla --version` (tests/pkgconfig.sh). */
Test(boundary, programs_build_with_pkg_config, .timeout = 120)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "CC='%s' sh '%s' '%s' '%s/..' '%s'", test_env("NABLA_CC"),
             test_file("pkgconfig.sh"), test_env("NABLA_BUILD_ROOT"), test_dir(), test_env("NABLA_SANITIZE"));
    int st;
    char *out = run_shell(cmd, &st);
    cr_expect_eq(st, 0, "%s: exit %d\n%s", cmd, st, out);
    free(out);
}

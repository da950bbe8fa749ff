/* The OpenBLAS core of the `nabla` command (tools/blas_core.c): the decision
 * for every kind of choice and CPU, then the tool itself: --blas-core NAME
 * switches kernels (it runs itself again with OPENBLAS_CORETYPE), auto keeps
 * a core that fits the CPU, NABLA_BLAS_CORE and none, and two cores give the
 * same results to rounding.
 *
 * The one test of the suite that lets nabla change OPENBLAS_CORETYPE: meson
 * runs it without the NABLA_BLAS_CORE=none of every other test. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas_core.h"
#include "toolutil.h"

/* ---- the decision, from plain values ------------------------------------- */

typedef struct decided {
    bool ok;
    const char *target;
    char note[512];
} decided;

static decided decide(const char *choice, const char *running, nbt_isa cpu, const char *user,
                      const char *was)
{
    decided d;
    d.ok = nbt_blas_core_decide(choice, running, cpu, user, was, &d.target, d.note, sizeof d.note);
    return d;
}

static void expect_target(decided d, const char *target)
{
    cr_expect(d.ok, "%s", d.note);
    if (!target) cr_expect_null(d.target, "re-exec with %s: %s", d.target, d.note);
    else cr_expect(d.target && !strcmp(d.target, target), "target %s, want %s: %s",
                   d.target ? d.target : "none", target, d.note);
}

Test(blas_core, auto_upgrades_a_fallback_to_what_the_cpu_has)
{
    expect_target(decide("auto", "Prescott", NBT_ISA_AVX512, NULL, NULL), "SkylakeX");
    expect_target(decide(NULL, "Prescott", NBT_ISA_AVX2, NULL, NULL), "Haswell");
    expect_target(decide("AUTO", "Haswell", NBT_ISA_AVX512, NULL, NULL), "SkylakeX");
    expect_target(decide("auto", "Nehalem", NBT_ISA_AVX, NULL, NULL), "Sandybridge");
    decided d = decide("auto", "Prescott", NBT_ISA_AVX512, NULL, NULL);
    assert_has(d.note, "OpenBLAS chose core Prescott");
    assert_has(d.note, "OPENBLAS_CORETYPE=SkylakeX");
}

Test(blas_core, auto_keeps_a_core_that_fits)
{
    expect_target(decide("auto", "Cooperlake", NBT_ISA_AVX512, NULL, NULL), NULL);
    expect_target(decide("auto", "SkylakeX", NBT_ISA_AVX512, NULL, NULL), NULL);
    expect_target(decide("auto", "Zen", NBT_ISA_AVX2, NULL, NULL), NULL);
    expect_target(decide("auto", "Haswell", NBT_ISA_AVX2, NULL, NULL), NULL);
    expect_target(decide("auto", "Prescott", NBT_ISA_SSE, NULL, NULL), NULL);
    /* what we cannot place, we leave alone */
    expect_target(decide("auto", "SomeFutureLake", NBT_ISA_AVX512, NULL, NULL), NULL);
    expect_target(decide("auto", "Prescott", NBT_ISA_UNKNOWN, NULL, NULL), NULL);
    assert_has(decide("auto", "Cooperlake", NBT_ISA_AVX512, NULL, NULL).note, "OpenBLAS's choice, kept");
}

Test(blas_core, auto_respects_the_users_coretype)
{
    decided d = decide("auto", "Prescott", NBT_ISA_AVX512, "Prescott", NULL);
    expect_target(d, NULL);
    assert_has(d.note, "OPENBLAS_CORETYPE=Prescott from the environment");
}

Test(blas_core, none_changes_nothing)
{
    expect_target(decide("none", "Prescott", NBT_ISA_AVX512, NULL, NULL), NULL);
    expect_target(decide("None", "Prescott", NBT_ISA_AVX512, "Haswell", NULL), NULL);
}

Test(blas_core, a_name_asks_for_that_core)
{
    expect_target(decide("Haswell", "Cooperlake", NBT_ISA_AVX512, NULL, NULL), "Haswell");
    expect_target(decide("skylakex", "Prescott", NBT_ISA_AVX512, NULL, NULL), "SkylakeX");
    expect_target(decide("prescott", "Haswell", NBT_ISA_AVX2, "Haswell", NULL), "Prescott");
    expect_target(decide("Haswell", "Haswell", NBT_ISA_AVX2, NULL, NULL), NULL);  /* already */
}

Test(blas_core, a_bad_name_or_a_core_too_new_is_an_error)
{
    decided d = decide("Haswel", "Prescott", NBT_ISA_AVX2, NULL, NULL);
    cr_expect_not(d.ok);
    assert_has(d.note, "unknown BLAS core 'Haswel'");
    assert_has(d.note, "did you mean 'Haswell'");
    d = decide("SkylakeX", "Haswell", NBT_ISA_AVX2, NULL, NULL);
    cr_expect_not(d.ok);
    assert_has(d.note, "SkylakeX needs avx512");
}

Test(blas_core, the_rerun_never_runs_again)
{
    /* whatever was asked, the process started by the re-exec goes on */
    decided d = decide("Haswell", "Prescott", NBT_ISA_AVX2, "Haswell", "Cooperlake");
    expect_target(d, NULL);
    assert_has(d.note, "OpenBLAS had chosen Cooperlake");
    expect_target(decide("auto", "Prescott", NBT_ISA_AVX512, "SkylakeX", "Prescott"), NULL);
}

Test(blas_core, core_table)
{
    cr_expect_eq(nbt_core_isa("Prescott"), NBT_ISA_SSE);
    cr_expect_eq(nbt_core_isa("SANDYBRIDGE"), NBT_ISA_AVX);
    cr_expect_eq(nbt_core_isa("Zen"), NBT_ISA_AVX2);
    cr_expect_eq(nbt_core_isa("cooperlake"), NBT_ISA_AVX512);
    cr_expect_eq(nbt_core_isa("Unknown"), NBT_ISA_UNKNOWN);
    cr_expect_str_eq(nbt_core_canonical("skylakex"), "SkylakeX");
    cr_expect_null(nbt_core_canonical("nope"));
}

/* ---- the tool ------------------------------------------------------------- */

/* The core `nabla [ARGS] --version` reports, and its stderr. */
static void version_core(const char *const *args, char *core, size_t cap, char **err)
{
    tool_result r = tool_run(args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    const char *at = strstr(r.out, "core ");
    cr_assert_not_null(at, "%s", r.out);
    snprintf(core, cap, "%.*s", (int)strcspn(at + 5, ")\n"), at + 5);
    *err = strdup(r.err);
    tool_result_free(&r);
}

static void init(void)
{
    tmp_make();
    unsetenv("OPENBLAS_CORETYPE");  /* the user's choice would keep auto from acting */
    unsetenv(NBT_BLAS_CORE_ENV);
}

TestSuite(blas_tool, .init = init, .fini = tmp_remove);

Test(blas_tool, blas_core_haswell_reports_haswell)
{
    char core[64], *err;
    if (nbt_cpu_isa() < NBT_ISA_AVX2) {
        tool_result r = TOOL("--blas-core", "Haswell", "--version");
        cr_expect_eq(r.status, 2);
        assert_has(r.err, "which this CPU does not have");
        tool_result_free(&r);
        cr_skip_test("this CPU has no AVX2: Haswell refused, as it should be");
    }
    version_core((const char *const[]){"-v", "--blas-core", "Haswell", "--version", NULL}, core,
                 sizeof core, &err);
    cr_expect_str_eq(core, "Haswell");
    assert_has(err, "BLAS core Haswell");
    free(err);
    /* after the command too, and from the environment */
    version_core((const char *const[]){"--version", "--blas-core=haswell", NULL}, core, sizeof core, &err);
    cr_expect_str_eq(core, "Haswell");
    free(err);
    setenv(NBT_BLAS_CORE_ENV, "Haswell", 1);
    version_core((const char *const[]){"--version", NULL}, core, sizeof core, &err);
    cr_expect_str_eq(core, "Haswell");
    free(err);
}

Test(blas_tool, auto_reruns_only_when_openblas_fell_back)
{
    char first[64], core[64], *err;
    version_core((const char *const[]){"--blas-core", "none", "--version", NULL}, first, sizeof first, &err);
    free(err);
    const char *want = nbt_core_upgrade(first, nbt_cpu_isa());
    version_core((const char *const[]){"-v", "--version", NULL}, core, sizeof core, &err);
    if (!want) {  /* this machine: OpenBLAS 0.3.21 takes it for a Cooperlake */
        cr_expect_str_eq(core, first);
        assert_has(err, "OpenBLAS's choice, kept");
        cr_expect_null(strstr(err, "running again"), "%s", err);
    } else {
        cr_expect_str_eq(core, want);
        assert_has(err, "running again");
    }
    printf("OpenBLAS chose %s on this %s CPU; auto %s\n", first, nbt_isa_name(nbt_cpu_isa()),
           want ? "switched" : "kept it");
    free(err);
}

Test(blas_tool, none_and_a_bad_name)
{
    char core[64], *err;
    setenv(NBT_BLAS_CORE_ENV, "Prescott", 1);
    version_core((const char *const[]){"-v", "--blas-core", "none", "--version", NULL}, core,
                 sizeof core, &err);
    cr_expect_str_neq(core, "Prescott", "the flag wins over NABLA_BLAS_CORE");
    assert_has(err, "--blas-core none");
    free(err);
    tool_result r = TOOL("--blas-core", "bogus", "--version");
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "unknown BLAS core 'bogus'");
    tool_result_free(&r);
    r = TOOL("--version", "--blas-core");
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "needs a value");
    tool_result_free(&r);
}

Test(blas_tool, the_rerun_goes_on_whatever_it_is_asked)
{
    /* what the re-executed process sees: the guard, and OPENBLAS_CORETYPE set */
    setenv(NBT_BLAS_GUARD_ENV, "Prescott", 1);
    setenv("OPENBLAS_CORETYPE", "Prescott", 1);
    char core[64], *err;
    version_core((const char *const[]){"-v", "--blas-core", "Haswell", "--version", NULL}, core,
                 sizeof core, &err);
    cr_expect_str_eq(core, "Prescott", "no second re-exec");
    assert_has(err, "OpenBLAS had chosen Prescott; nabla set OPENBLAS_CORETYPE=Prescott");
    cr_expect_null(strstr(err, "running again"), "%s", err);
    free(err);
    /* a core this OpenBLAS ignored is reported, -v or not */
    setenv("OPENBLAS_CORETYPE", "NoSuchLake", 1);
    version_core((const char *const[]){"--version", NULL}, core, sizeof core, &err);
    assert_has(err, "OPENBLAS_CORETYPE=NoSuchLake was not taken");
    free(err);
}

/* nabla run --grad of the MLP example with one core, every .npy it writes. */
static void run_with(const char *core, const char *dir)
{
    char x[512], t[512];
    snprintf(x, sizeof x, "x=%s", tmp_path("x.npy"));
    snprintf(t, sizeof t, "t=%s", tmp_path("t.npy"));
    tool_result r = TOOL("--blas-core", core, "run", test_file("../examples/models/mnist_mlp.yaml"),
                         "--in", x, "--in", t, "--grad", "-o", tmp_path(dir));
    cr_assert_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
}

/* Every output of both runs agrees to f32 rounding: rtol 1e-5, and an atol
 * of 1e-5 of the array's largest value for elements that are sums cancelling
 * to near zero (the kernels add in other orders). */
static void expect_same(const char *name)
{
    char a[64], b[64];
    snprintf(a, sizeof a, "haswell/%s", name);
    snprintf(b, sizeof b, "skylakex/%s", name);
    nb_tensor x = read_npy_f64(tmp_path(a)), y = read_npy_f64(tmp_path(b));
    size_t n = nb_tensor_numel(&x);
    cr_assert_eq(n, nb_tensor_numel(&y));
    const double *u = x.data, *v = y.data;
    double top = 0, worst = 0;
    for (size_t i = 0; i < n; i++) top = fabs(v[i]) > top ? fabs(v[i]) : top;
    expect_close(u, v, n, 1e-5 * top, 1e-5, name);
    for (size_t i = 0; i < n; i++) worst = fabs(u[i] - v[i]) > worst ? fabs(u[i] - v[i]) : worst;
    printf("%-16s %zu values, largest |Haswell - SkylakeX| %.3g (largest value %.3g)\n", name, n,
           worst, top);
    nb_tensor_free(&x);
    nb_tensor_free(&y);
}

Test(blas_tool, two_cores_agree_to_rounding)
{
    if (nbt_cpu_isa() < NBT_ISA_AVX512)
        cr_skip_test("this CPU has no AVX-512: SkylakeX cannot run here, nothing to compare "
                     "Haswell with");
    double x[16 * 784], t[16];
    fill_random(x, 16 * 784, 21);
    for (int i = 0; i < 16; i++) t[i] = (i * 7) % 10;
    write_npy_f64(tmp_path("x.npy"), 2, (int64_t[]){16, 784}, x);
    write_npy(tmp_path("t.npy"), NB_I32, 1, (int64_t[]){16}, t);
    run_with("Haswell", "haswell");
    run_with("SkylakeX", "skylakex");
    const char *files[] = {"y.npy", "loss.npy", "grad.fc1.W.npy", "grad.fc1.b.npy", "grad.fc2.W.npy",
                           "grad.fc2.b.npy", "grad.y.W.npy", "grad.y.b.npy", "grad.x.npy"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) expect_same(files[i]);
}

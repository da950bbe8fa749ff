/* Train and eval modes in the `nabla` command: `run` is in eval mode unless
 * --mode train (running statistics used, or updated and saved), dropout masks
 * follow --seed or the train section's seed, --grad skips op state, and
 * `gradcheck` checks training mode with fixed masks (no kinks). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "toolutil.h"

TestSuite(modes, .init = tmp_make, .fini = tmp_remove, .timeout = 120);

static const char *const BN_MODEL =
    "nabla: 1\n"
    "dtype: f64\n"
    "inputs: {x: [N, 2]}\n"
    "nodes:\n"
    "  - {name: bn, layer: batchnorm, in: [x]}\n"
    "  - {name: d, op: dropout, in: [bn], rate: 0.5}\n"
    "  - {name: loss, op: sum, in: [d]}\n"
    "outputs: [bn, d]\n"
    "loss: loss\n"
    "train: {seed: 9}\n";

/* channel 0: 1, 3, 1, 3 (mean 2, biased var 1); channel 1: 0, 4, 4, 0 (mean 2, var 4) */
static const double X[8] = {1, 0, 3, 4, 1, 4, 3, 0};
static const double EPS = 1e-5;

static char x_arg[600];

static void write_model(void)
{
    write_text(tmp_path("bn.yaml"), BN_MODEL);
    write_npy_f64(tmp_path("x.npy"), 2, (int64_t[]){4, 2}, X);
    snprintf(x_arg, sizeof x_arg, "x=%s", tmp_path("x.npy"));
}

/* Runs `nabla run bn.yaml --in x=... -o DIR` plus extra arguments. */
static tool_result run_args(const char *dir, const char *const *extra)
{
    const char *args[24] = {"run", tmp_path("bn.yaml"), "--in", x_arg, "-o", tmp_path(dir)};
    int n = 6;
    for (int i = 0; extra[i] && n < 23; i++) args[n++] = extra[i];
    args[n] = NULL;
    return tool_run(args);
}
#define RUN(dir, ...) run_args(dir, (const char *const[]){__VA_ARGS__, NULL})

static nb_tensor output(const char *dir, const char *name)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s.npy", tmp_path(dir), name);
    return read_npy_f64(path);
}

static bool exists(const char *dir, const char *name)
{
    char path[700];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", tmp_path(dir), name);
    return stat(path, &st) == 0;
}

static void expect_ok(tool_result *r, const char *what)
{
    cr_assert_eq(r->status, 0, "%s: exit %d: %s", what, r->status, r->err);
    tool_result_free(r);
}

Test(modes, run_is_eval_by_default)
{
    write_model();
    tool_result r = RUN("eval", NULL);
    expect_ok(&r, "run");
    nb_tensor bn = output("eval", "bn"), d = output("eval", "d");
    for (int i = 0; i < 8; i++) {  /* running statistics 0 and 1; dropout the identity */
        cr_expect_float_eq(((double *)bn.data)[i], X[i] / sqrt(1 + EPS), 1e-12, "bn[%d]", i);
        cr_expect_eq(((double *)d.data)[i], ((double *)bn.data)[i], "d[%d]", i);
    }
    nb_tensor_free(&bn);
    nb_tensor_free(&d);
    r = RUN("eval2", "--mode", "eval");
    expect_ok(&r, "--mode eval");
}

/* Training: batch statistics, dropout scaling by 2, running statistics
 * updated and saved; then eval mode with those weights uses them. */
Test(modes, run_train_updates_running_statistics)
{
    write_model();
    const char *w = tmp_path("w.safetensors");
    tool_result r = RUN("train", "--mode", "train", "--save-weights", w);
    expect_ok(&r, "--mode train");
    nb_tensor bn = output("train", "bn"), d = output("train", "d");
    const double var[2] = {1, 4};
    int dropped = 0;
    for (int i = 0; i < 8; i++) {
        double want = (X[i] - 2) / sqrt(var[i % 2] + EPS), got = ((double *)d.data)[i];
        cr_expect_float_eq(((double *)bn.data)[i], want, 1e-12, "bn[%d]", i);
        cr_expect(got == 0 || fabs(got - 2 * want) < 1e-12, "d[%d] = %g", i, got);
        dropped += got == 0;
    }
    cr_expect(dropped > 0 && dropped < 8, "%d of 8 dropped", dropped);
    nb_tensor_free(&bn);
    nb_tensor_free(&d);

    nb_tensor_set set = {0};
    cr_assert_eq(nb_safetensors_read(w, &set), NB_OK, "%s", nb_last_error());
    const nb_tensor *rm = nb_tensor_set_find(&set, "bn.running_mean");
    const nb_tensor *rv = nb_tensor_set_find(&set, "bn.running_var");
    cr_assert(rm && rv && nb_tensor_set_find(&set, "bn.gamma"), "the state is saved with the weights");
    const double want_rv[2] = {0.9 + 0.1 * 4 / 3.0, 0.9 + 0.1 * 16 / 3.0};
    for (int c = 0; c < 2; c++) {
        cr_expect_float_eq(((double *)rm->data)[c], 0.2, 1e-12);
        cr_expect_float_eq(((double *)rv->data)[c], want_rv[c], 1e-12);
    }
    nb_tensor_set_free(&set);

    r = RUN("after", "--weights", w);
    expect_ok(&r, "eval with the saved weights");
    bn = output("after", "bn");
    for (int i = 0; i < 8; i++)
        cr_expect_float_eq(((double *)bn.data)[i], (X[i] - 0.2) / sqrt(want_rv[i % 2] + EPS), 1e-12,
                           "bn[%d]", i);
    nb_tensor_free(&bn);
}

/* 1 where d kept element i. */
static unsigned mask_of(const char *dir)
{
    nb_tensor d = output(dir, "d");
    unsigned m = 0;
    for (int i = 0; i < 8; i++) m |= (((double *)d.data)[i] != 0) << i;
    nb_tensor_free(&d);
    return m;
}

Test(modes, run_dropout_seed)
{
    write_model();
    tool_result r = RUN("a", "--mode", "train", "--seed", "9");
    expect_ok(&r, "seed 9");
    r = RUN("b", "--mode", "train");
    expect_ok(&r, "the train section's seed");
    r = RUN("c", "--mode", "train", "--seed", "10");
    expect_ok(&r, "seed 10");
    r = RUN("e", "--mode", "train", "--seed", "9");
    expect_ok(&r, "seed 9 again");
    cr_expect_eq(mask_of("a"), mask_of("e"), "the same seed, the same mask");
    cr_expect_eq(mask_of("a"), mask_of("b"), "the train section's seed is the default");
    cr_expect_neq(mask_of("a"), mask_of("c"), "another seed, another mask");
}

Test(modes, run_grad_skips_state)
{
    write_model();
    tool_result r = RUN("g", "--grad");
    expect_ok(&r, "--grad");
    cr_expect(exists("g", "grad.x.npy") && exists("g", "grad.bn.gamma.npy") &&
              exists("g", "grad.bn.beta.npy"));
    cr_expect_not(exists("g", "grad.bn.running_mean.npy"));
    cr_expect_not(exists("g", "grad.bn.running_var.npy"));
    /* eval: d sum / d x = 1 / sqrt(1 + eps) */
    nb_tensor gx = output("g", "grad.x");
    for (int i = 0; i < 8; i++) cr_expect_float_eq(((double *)gx.data)[i], 1 / sqrt(1 + EPS), 1e-12);
    nb_tensor_free(&gx);
    /* training: the batch mean takes everything away from a plain sum of x̂ */
    r = RUN("gt", "--grad", "--mode", "train", "--seed", "3");
    expect_ok(&r, "--grad --mode train");
    gx = output("gt", "grad.x");
    double total = 0;
    for (int i = 0; i < 8; i++) total += fabs(((double *)gx.data)[i]);
    cr_expect_gt(total, 1e-6, "with dropout the gradient is not zero");
    nb_tensor_free(&gx);
}

Test(modes, run_bad_mode)
{
    write_model();
    tool_result r = RUN("x", "--mode", "training");
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "--mode needs train or eval, not 'training'"), "%s", r.err);
    tool_result_free(&r);
    r = TOOL("run", "--help");
    cr_expect(strstr(r.out, "--mode train|eval") && strstr(r.out, "trainable param"), "%s", r.out);
    tool_result_free(&r);
    r = TOOL("gradcheck", "--help");
    cr_expect(strstr(r.out, "--mode train|eval") && strstr(r.out, "training mode"), "%s", r.out);
    tool_result_free(&r);
}

/* Every row of a gradcheck table: kinks 0 and pass (the masks stay fixed). */
static void expect_clean_table(const char *out)
{
    const char *l = strstr(out, "\ntensor ");
    cr_assert_not_null(l, "%s", out);
    int rows = 0;
    for (l = strchr(l + 1, '\n'); l && l[1] && l[1] != '\n'; l = strchr(l + 1, '\n')) {
        char line[512];
        const char *end = strchr(l + 1, '\n');
        size_t n = end ? (size_t)(end - l - 1) : strlen(l + 1);
        snprintf(line, sizeof line, "%.*s", (int)n, l + 1);
        char *tok[16];
        int k = 0;
        for (char *t = strtok(line, " "); t && k < 16; t = strtok(NULL, " ")) tok[k++] = t;
        cr_assert_gt(k, 2);
        cr_expect_str_eq(tok[k - 1], "pass", "%s", out);
        cr_expect_str_eq(tok[k - 2], "0", "kinks: %s", out);
        rows++;
    }
    cr_expect_gt(rows, 3, "%s", out);
}

Test(modes, gradcheck_trains_with_fixed_masks)
{
    char path[1024];
    snprintf(path, sizeof path, "%s", test_file("../examples/models/bn_dropout.yaml"));
    tool_result r = TOOL("gradcheck", path, "--batch", "4", "--seed", "5", "--max-elems", "60");
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_expect(strstr(r.out, "training mode"), "%s", r.out);
    cr_expect_null(strstr(r.out, "running_"), "state is not checked:\n%s", r.out);
    expect_clean_table(r.out);
    tool_result_free(&r);
    r = TOOL("gradcheck", path, "--batch", "3", "--mode", "eval", "--max-elems", "60");
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_expect(strstr(r.out, "eval mode"), "%s", r.out);
    expect_clean_table(r.out);
    tool_result_free(&r);
}

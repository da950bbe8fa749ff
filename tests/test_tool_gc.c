/* nabla gradcheck around the check itself: NaN errors fail (exit 1), the f32
 * kernels are checked against the f64 ones (an f32-only bug is caught),
 * random inputs outside an op's domain are named with the way out, and
 * --range gives an input's random range. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "toolutil.h"

TestSuite(tool_gc, .init = tmp_make, .fini = tmp_remove, .timeout = 120);

static const char *const LOG_MODEL =
    "nabla: 1\ninputs:\n  x: [N, 4]\n"
    "nodes:\n  - {name: e, op: exp, in: [x]}\n  - {name: lg, op: log, in: [x]}\n"
    "  - {name: s, op: add, in: [e, lg]}\n  - {name: loss, op: sum, in: [s]}\nloss: loss\n";

/* The row of the table that starts with tensor `name`, after `from`. */
static bool row_says(const char *from, const char *name, const char *word)
{
    size_t k = strlen(name);
    for (const char *l = from; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncmp(l, name, k) && l[k] == ' ') {
            const char *end = strchr(l, '\n'), *w = strstr(l, word);
            return w && (!end || w < end);
        }
    return false;
}

Test(tool_gc, out_of_domain_inputs_say_how_to_give_them)
{
    write_text(tmp_path("m.yaml"), LOG_MODEL);
    tool_result r = TOOL("gradcheck", tmp_path("m.yaml"), "--batch", "8");
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "node 'lg' (log)") && strstr(r.err, "random input 'x' (U(-1, 1))") &&
                  strstr(r.err, "--in x=FILE.npy") && strstr(r.err, "--range x=LO:HI"),
              "%s", r.err);
    tool_result_free(&r);
    r = TOOL("gradcheck", tmp_path("m.yaml"), "--batch", "8", "--range", "x=0.5:2");
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_expect(row_says(r.out, "x", "pass"), "%s", r.out);
    tool_result_free(&r);
}

/* A finite forward pass, but x - eps leaves sqrt's domain: exit 2, the node
 * named, and the way out. */
Test(tool_gc, numeric_gradient_out_of_domain)
{
    write_text(tmp_path("m.yaml"), "nabla: 1\ninputs:\n  x: [2]\n"
                                   "nodes:\n  - {name: r, op: sqrt, in: [x]}\n"
                                   "  - {name: loss, op: sum, in: [r]}\nloss: loss\n");
    write_npy_f64(tmp_path("x.npy"), 1, (int64_t[]){2}, (double[]){0.5, 1e-7});
    char in[1100];
    snprintf(in, sizeof in, "x=%s", tmp_path("x.npy"));
    tool_result r = TOOL("gradcheck", tmp_path("m.yaml"), "--in", in);
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "node 'r' (sqrt) is the first that is not finite"), "%s", r.err);
    tool_result_free(&r);
}

/* sqrt(|x|) at x = 0: the analytic gradient is inf * 0 = NaN, the numeric 0.
 * Before the fix a NaN error compared as "pass". */
Test(tool_gc, a_nan_gradient_is_a_mismatch)
{
    write_text(tmp_path("m.yaml"), "nabla: 1\ninputs:\n  x: [3]\n"
                                   "nodes:\n  - {name: a, op: abs, in: [x]}\n  - {name: r, op: sqrt, in: [a]}\n"
                                   "  - {name: loss, op: sum, in: [r]}\nloss: loss\n");
    write_npy_f64(tmp_path("x.npy"), 1, (int64_t[]){3}, (double[]){0.5, 0, 0.25});
    char in[1100];
    snprintf(in, sizeof in, "x=%s", tmp_path("x.npy"));
    tool_result r = TOOL("gradcheck", tmp_path("m.yaml"), "--in", in);
    cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
    cr_expect(row_says(r.out, "x", "FAIL") && row_says(r.out, "x", "nan") && row_says(r.out, "x", "(1)"),
              "%s", r.out);
    tool_result_free(&r);
}

Test(tool_gc, range_errors)
{
    write_text(tmp_path("m.yaml"), "nabla: 1\ninputs:\n  x: [N, 4]\n  t: {shape: [N], dtype: i32}\n"
                                   "nodes:\n  - {name: loss, op: softmax_cross_entropy, in: [x, t]}\nloss: loss\n");
    write_npy_f64(tmp_path("x.npy"), 2, (int64_t[]){2, 4}, (double[8]){0});
    char in[1100];
    snprintf(in, sizeof in, "x=%s", tmp_path("x.npy"));
    const char *bad[][2] = {{"x=1", "needs NAME=LO:HI"},        {"x=2:1", "LO must be below HI"},
                            {"x=a:1", "needs a number, not 'a'"}, {"y=0:1", "no input 'y' (did you mean 'x'?)"},
                            {"t=0:1", "input 't' is i32"},        {"x=nan:1", "needs a number"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tool_result r = TOOL("gradcheck", tmp_path("m.yaml"), "--range", bad[i][0]);
        cr_expect_eq(r.status, 2, "--range %s", bad[i][0]);
        cr_expect(strstr(r.err, bad[i][1]), "--range %s: %s", bad[i][0], r.err);
        tool_result_free(&r);
    }
    tool_result r = TOOL("gradcheck", tmp_path("m.yaml"), "--range", "x=0:1", "--in", in);
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "input 'x' has both --in and --range"), "%s", r.err);
    tool_result_free(&r);
}

/* --range values are used: the sum of 2 x 4 values in [5, 6] is in [40, 48]. */
Test(tool_gc, range_sets_the_values)
{
    write_text(tmp_path("m.yaml"), "nabla: 1\ninputs:\n  x: [N, 4]\n"
                                   "nodes:\n  - {name: loss, op: sum, in: [x]}\nloss: loss\n");
    tool_result r = TOOL("gradcheck", tmp_path("m.yaml"), "--range", "x=5:6");
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
    const char *l = strstr(r.out, "loss 'loss' = ");
    cr_assert(l, "%s", r.out);
    double v = atof(l + strlen("loss 'loss' = "));
    cr_expect(v >= 40 && v <= 48, "loss %g with x in [5, 6]", v);
    tool_result_free(&r);
}

Test(tool_gc, ops_in_f32_and_f64)
{
    tool_result r = TOOL("gradcheck", "--op", "tanh");
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_expect(strstr(r.out, " f64 ") && strstr(r.out, " f32 ") && !strstr(r.out, "FAIL"), "%s", r.out);
    tool_result_free(&r);
}

Test(tool_gc, an_f64_model_has_no_f32_check)
{
    write_text(tmp_path("m.yaml"), "nabla: 1\ndtype: f64\ninputs:\n  x: [3]\n"
                                   "nodes:\n  - {name: e, op: exp, in: [x]}\n"
                                   "  - {name: loss, op: sum, in: [e]}\nloss: loss\n");
    tool_result r = TOOL("gradcheck", tmp_path("m.yaml"));
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_expect(strstr(r.out, "the model is f64: no f32 kernels to check") && !strstr(r.out, "pass in f32"),
              "%s", r.out);
    tool_result_free(&r);
}

/* ---- an op whose f32 kernel is wrong and f64 right ----------------------- */

static nb_status cube_shape(nb_shape_ctx *c)
{
    c->out = c->in[0];
    return nb_shape_float_inputs(c);
}

/* y = x^3; the f32 kernel gives 1.02 x^3 */
static nb_status cube_fwd(const nb_kctx *k)
{
    size_t n = nb_dims_numel(&k->out_shape);
    for (size_t i = 0; i < n; i++) {
        double x = get_elem(k->dtype, k->in[0], i);
        set_elem(k->dtype, k->out, i, x * x * x * (k->dtype == NB_F32 ? 1.02 : 1));
    }
    return NB_OK;
}

static nb_status cube_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = nb_mul(g, gy, nb_scale(g, nb_pow(g, nb_node_input(y, 0), 2), 3, 0));
    return NB_OK;
}

static const nb_op_def cube_bug32 = {.name = "test_cube_bug32", .min_in = 1, .max_in = 1,
                                     .shape = cube_shape, .forward = cube_fwd, .backward = cube_bwd};

/* loss = sum(tanh(cube(x * w))): the forward value reaches the gradient */
static const char *const CUBE_MODEL =
    "nabla: 1\ninputs:\n  x: [N, 3]\n"
    "params:\n  w: {shape: [3], init: {values: [0.5, -1.5, 2.0]}}\n"
    "nodes:\n  - {name: h, op: mul, in: [x, w]}\n  - {name: c, op: test_cube_bug32, in: [h]}\n"
    "  - {name: t, op: tanh, in: [c]}\n  - {name: loss, op: sum, in: [t]}\nloss: loss\n";

Test(tool_gc, f32_only_bug_is_caught)
{
    register_test_op(&cube_bug32);
    nb_model *m = NULL, *m32 = NULL;
    nb_diags d = {0};
    nb_load_opts lo = {.force_f64 = true};
    cr_assert_eq(nb_model_load_string(CUBE_MODEL, strlen(CUBE_MODEL), "cube.yaml", &lo, &m, &d), NB_OK);
    cr_assert_eq(nb_model_load_string(CUBE_MODEL, strlen(CUBE_MODEL), "cube.yaml", NULL, &m32, &d), NB_OK);
    char *table = NULL;
    size_t len;
    FILE *out = open_memstream(&table, &len);
    nbt_gc_cfg cfg = NBT_GC_DEFAULTS;
    cfg.m32 = m32;
    int rc = nbt_gradcheck_model(m, &cfg, out);
    fclose(out);
    cr_expect_eq(rc, NBT_MISMATCH, "%s", table);
    const char *f32 = strstr(table, "f32 kernels:");
    cr_assert(f32, "no f32 table:\n%s", table);
    cr_expect(row_says(table, "w", "pass") && row_says(table, "x", "pass"), "f64 passes:\n%s", table);
    cr_expect(row_says(f32, "w", "FAIL") && row_says(f32, "x", "FAIL"), "f32 fails:\n%s", table);
    cr_expect(strstr(f32, "0 of 2 tensors pass in f32"), "%s", table);
    free(table);
    nb_model_free(m);
    nb_model_free(m32);
}

/* The bias before batchnorm has a gradient that is 0 up to rounding: its f32
 * noise is measured against the other gradients, not its own (tiny) size. */
Test(tool_gc, f32_zero_gradient_is_not_a_failure)
{
    write_text(tmp_path("m.yaml"),
               "nabla: 1\ninputs:\n  x: [N, 4]\nparams:\n  W: {shape: [4, 5], init: {normal: 1}}\n"
               "  b: {shape: [5], init: {normal: 1}}\n  g: {shape: [5], init: ones}\n  be: {shape: [5], init: zeros}\n"
               "nodes:\n  - {name: h, op: matmul, in: [x, W]}\n  - {name: hb, op: add, in: [h, b]}\n"
               "  - {name: bn, op: batchnorm, in: [hb, g, be]}\n  - {name: t, op: tanh, in: [bn]}\n"
               "  - {name: loss, op: sum, in: [t]}\nloss: loss\n");
    tool_result r = TOOL("gradcheck", tmp_path("m.yaml"), "--batch", "8");
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
    const char *f32 = strstr(r.out, "f32 kernels:");
    cr_expect(f32 && row_says(f32, "b", "pass"), "%s", r.out);
    tool_result_free(&r);
}

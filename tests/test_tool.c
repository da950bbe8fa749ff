/* Tests of the `nabla` command: conformance cases through `nabla run --grad`,
 * run's files and closed-form results, gradcheck catching a broken gradient
 * (through the function the tool calls), check's table and exit statuses. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "toolutil.h"

TestSuite(tool, .init = tmp_make, .fini = tmp_remove, .timeout = 120);

/* ---- conformance: every case, every reference --------------------------- */

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && !strcmp(s + n - k, tail);
}

static void compare_npy(const char *ref_path, const char *out_path, const char *what)
{
    FILE *f = fopen(out_path, "rb");
    cr_assert_not_null(f, "%s: nabla wrote no %s", what, out_path);
    fclose(f);
    nb_tensor ref = read_npy_f64(ref_path), got = read_npy_f64(out_path);
    cr_assert_eq(got.rank, ref.rank, "%s: rank %d, reference %d", what, got.rank, ref.rank);
    for (int a = 0; a < ref.rank; a++)
        cr_assert_eq(got.shape[a], ref.shape[a], "%s: axis %d is %lld, reference %lld", what, a,
                     (long long)got.shape[a], (long long)ref.shape[a]);
    expect_close(got.data, ref.data, nb_tensor_numel(&ref), 1e-8, 1e-6, what);
    nb_tensor_free(&ref);
    nb_tensor_free(&got);
}

/* Runs tests/conformance/NAME.yaml with every in/NAME.npy and the weights,
 * then compares every ref/NAME.npy. A missing case, reference or output fails. */
static void conformance(const char *name)
{
    char dir[1024], model[1100], weights[1100], sub[1100], feeds[16][1500];
    const char *args[48] = {"run"};
    int n = 1, n_ref = 0;
    snprintf(dir, sizeof dir, "%s", test_file("conformance/%s", name));
    snprintf(model, sizeof model, "%s.yaml", dir);
    snprintf(weights, sizeof weights, "%s/weights.safetensors", dir);
    snprintf(sub, sizeof sub, "%s/in", dir);
    DIR *d = opendir(sub);
    cr_assert_not_null(d, "conformance case %s is missing (%s)", name, sub);
    args[n++] = model;
    int nf = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!ends_with(e->d_name, ".npy")) continue;
        cr_assert_lt(nf, 16);
        snprintf(feeds[nf], sizeof feeds[nf], "%.*s=%s/%s", (int)strlen(e->d_name) - 4, e->d_name,
                 sub, e->d_name);
        args[n++] = "--in";
        args[n++] = feeds[nf++];
    }
    closedir(d);
    const char *tail[] = {"--weights", weights, "--grad", "-o", tmp_path("out"), NULL};
    for (int i = 0; tail[i]; i++) args[n++] = tail[i];
    args[n] = NULL;
    tool_result r = tool_run(args);
    char msg[2048];
    int status = r.status;
    snprintf(msg, sizeof msg, "%s", r.err);
    tool_result_free(&r);  /* before asserting: a failed assert leaves the test at once */
    cr_assert_eq(status, 0, "nabla run %s: exit %d: %s", name, status, msg);
    snprintf(sub, sizeof sub, "%s/ref", dir);
    cr_assert_not_null(d = opendir(sub), "conformance case %s has no references (%s)", name, sub);
    for (struct dirent *e; (e = readdir(d));) {
        if (!ends_with(e->d_name, ".npy")) continue;
        char ref[1500], out[1500], what[400];
        snprintf(ref, sizeof ref, "%s/%s", sub, e->d_name);
        snprintf(out, sizeof out, "%s/%s", tmp_path("out"), e->d_name);
        snprintf(what, sizeof what, "%s: %s", name, e->d_name);
        compare_npy(ref, out, what);
        n_ref++;
    }
    closedir(d);
    cr_assert_gt(n_ref, 0, "conformance case %s: no reference files", name);
}

Test(tool, conformance_mlp) { conformance("mlp"); }
Test(tool, conformance_conv) { conformance("conv"); }
Test(tool, conformance_broadcast) { conformance("broadcast"); }
Test(tool, conformance_logistic) { conformance("logistic"); }
Test(tool, conformance_bag) { conformance("bag"); }
Test(tool, conformance_grouped) { conformance("grouped"); }

/* ---- nabla run: closed forms and files -------------------------------------- */

static const char *const APPLE =
    "nabla: 1\n"
    "name: apple\n"
    "dtype: f64\n"
    "inputs:\n"
    "  apple: []\n"
    "  apple_count: []\n"
    "  tax: []\n"
    "nodes:\n"
    "  - {name: apple_price, op: mul, in: [apple, apple_count]}\n"
    "  - {name: price, op: mul, in: [apple_price, tax]}\n"
    "outputs: [price]\n"
    "loss: price\n";

static double scalar_of(const char *path)
{
    nb_tensor t = read_npy_f64(path);
    cr_assert_eq(t.rank, 0, "%s should be a 0-d array, has rank %d", path, t.rank);
    double v = *(double *)t.data;
    nb_tensor_free(&t);
    return v;
}

/* The shopping example of "Deep Learning from Scratch" 5.4: 2 apples at 100, tax 1.1. */
Test(tool, run_apple_closed_form)
{
    const int64_t none[1] = {0};
    write_text(tmp_path("apple.yaml"), APPLE);
    write_npy_f64(tmp_path("apple.npy"), 0, none, (double[]){100});
    write_npy_f64(tmp_path("count.npy"), 0, none, (double[]){2});
    write_npy_f64(tmp_path("tax.npy"), 0, none, (double[]){1.1});
    char a[600], c[600], t[600];
    snprintf(a, sizeof a, "apple=%s", tmp_path("apple.npy"));
    snprintf(c, sizeof c, "apple_count=%s", tmp_path("count.npy"));
    snprintf(t, sizeof t, "tax=%s", tmp_path("tax.npy"));
    tool_result r = TOOL("run", tmp_path("apple.yaml"), "--in", a, "--in", c, "--in", t, "--grad", "-o",
                         tmp_path("out/deeper"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect_float_eq(scalar_of(tmp_path("out/deeper/price.npy")), 220, 1e-12);
    cr_expect_float_eq(scalar_of(tmp_path("out/deeper/grad.apple.npy")), 2.2, 1e-12);
    cr_expect_float_eq(scalar_of(tmp_path("out/deeper/grad.apple_count.npy")), 110, 1e-12);
    cr_expect_float_eq(scalar_of(tmp_path("out/deeper/grad.tax.npy")), 200, 1e-12);
    tool_result_free(&r);
}

static const char *const LINEAR =
    "nabla: 1\n"
    "dtype: %s\n"
    "inputs:\n"
    "  x: [N, 3]\n"
    "params:\n"
    "  W: {shape: [3, 2], init: {values: [1, 2, 3, 4, 5, 6]}}\n"
    "  b: {shape: [2], init: {values: [0.5, -0.5]}}\n"
    "nodes:\n"
    "  - {name: xw, op: matmul, in: [x, W]}\n"
    "  - {name: y, op: add, in: [xw, b]}\n"
    "  - {name: loss, op: sum, in: [y]}\n"
    "outputs: [y]\n"
    "loss: loss\n";

static void write_linear(const char *dtype)
{
    char text[1024];
    snprintf(text, sizeof text, LINEAR, dtype);
    write_text(tmp_path("linear.yaml"), text);
    write_npy_f64(tmp_path("x.npy"), 2, (int64_t[]){2, 3}, (double[]){1, 0, -1, 2, 1, 0});
}

static void expect_values(const char *path, int rank, const int64_t *shape, const double *want, double tol)
{
    nb_tensor t = read_npy_f64(path);
    cr_assert_eq(t.rank, rank, "%s: rank %d", path, t.rank);
    for (int a = 0; a < rank; a++) cr_assert_eq(t.shape[a], shape[a], "%s: axis %d", path, a);
    expect_close(t.data, want, nb_tensor_numel(&t), tol, 0, path);
    nb_tensor_free(&t);
}

Test(tool, run_linear_closed_form)
{
    write_linear("f64");
    char x[600];
    snprintf(x, sizeof x, "x=%s", tmp_path("x.npy"));
    tool_result r = TOOL("run", tmp_path("linear.yaml"), "--in", x, "--grad", "-o", tmp_path("out"),
                         "--save-weights", tmp_path("saved.safetensors"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    /* y = x W + b; d sum(y) / dW = x^T 1; / db = N; / dx = 1 W^T */
    expect_values(tmp_path("out/y.npy"), 2, (int64_t[]){2, 2}, (double[]){-3.5, -4.5, 5.5, 7.5}, 1e-12);
    expect_values(tmp_path("out/loss.npy"), 0, NULL, (double[]){5}, 1e-12);
    expect_values(tmp_path("out/grad.W.npy"), 2, (int64_t[]){3, 2}, (double[]){3, 3, 1, 1, -1, -1}, 1e-12);
    expect_values(tmp_path("out/grad.b.npy"), 1, (int64_t[]){2}, (double[]){2, 2}, 1e-12);
    expect_values(tmp_path("out/grad.x.npy"), 2, (int64_t[]){2, 3}, (double[]){3, 7, 11, 3, 7, 11}, 1e-12);
    /* the weights used, saved and read back equal */
    nb_tensor_set set = {0};
    cr_assert_eq(nb_safetensors_read(tmp_path("saved.safetensors"), &set), NB_OK, "%s", nb_last_error());
    const nb_tensor *W = nb_tensor_set_find(&set, "W"), *b = nb_tensor_set_find(&set, "b");
    cr_assert(W && b && W->dtype == NB_F64 && W->rank == 2 && W->shape[0] == 3 && W->shape[1] == 2);
    for (int i = 0; i < 6; i++) cr_expect_eq(((double *)W->data)[i], i + 1);
    cr_expect_eq(((double *)b->data)[1], -0.5);
    nb_tensor_set_free(&set);
    tool_result_free(&r);
}

/* An f32 model writes f32 arrays, whatever the inputs' float type. */
Test(tool, run_writes_model_dtype)
{
    write_linear("f32");
    char x[600];
    snprintf(x, sizeof x, "x=%s", tmp_path("x.npy"));
    tool_result r = TOOL("run", tmp_path("linear.yaml"), "--in", x, "-o", tmp_path("out"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    nb_tensor t;
    cr_assert_eq(nb_npy_read(tmp_path("out/y.npy"), &t), NB_OK, "%s", nb_last_error());
    cr_expect_eq(t.dtype, NB_F32);
    cr_expect_float_eq(((float *)t.data)[3], 7.5f, 1e-6);
    nb_tensor_free(&t);
    tool_result_free(&r);
}

/* What goes in comes out unchanged, bit for bit. */
Test(tool, run_npy_round_trip)
{
    write_text(tmp_path("id.yaml"),
               "nabla: 1\ndtype: f64\ninputs:\n  x: [N, 2, 3]\n"
               "params:\n  z: {shape: [3], init: zeros}\n"
               "nodes:\n  - {name: y, op: add, in: [x, z]}\noutputs: [y]\n");
    double v[12] = {1.0 / 3, 1e-300, -2.5e300, 0.1, 7, -1, 3.25, 1e-17, 42, -0.125, 5e-324, 9};
    write_npy_f64(tmp_path("x.npy"), 3, (int64_t[]){2, 2, 3}, v);
    char x[600];
    snprintf(x, sizeof x, "x=%s", tmp_path("x.npy"));
    tool_result r = TOOL("run", tmp_path("id.yaml"), "--in", x, "-o", tmp_path("out"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    nb_tensor t = read_npy_f64(tmp_path("out/y.npy"));
    cr_assert_eq(t.rank, 3);
    cr_assert(t.shape[0] == 2 && t.shape[1] == 2 && t.shape[2] == 3);
    cr_expect_arr_eq(t.data, v, sizeof v);
    nb_tensor_free(&t);
    tool_result_free(&r);
}

static void write_weights(const char *path, bool extra, bool drop_b, bool bad_shape)
{
    nb_tensor_set set = {0};
    nb_tensor W, b, j;
    nb_tensor_alloc(&W, NB_F32, 2, bad_shape ? (int64_t[]){2, 3} : (int64_t[]){3, 2});
    nb_tensor_alloc(&b, NB_F32, 1, (int64_t[]){2});
    nb_tensor_alloc(&j, NB_F64, 1, (int64_t[]){4});
    for (int i = 0; i < 6; i++) ((float *)W.data)[i] = 0.25f * (float)i;
    ((float *)b.data)[0] = 1, ((float *)b.data)[1] = -1;
    nb_tensor_set_add(&set, "W", &W);
    if (!drop_b) nb_tensor_set_add(&set, "b", &b);
    if (extra) nb_tensor_set_add(&set, "junk", &j);
    cr_assert_eq(nb_safetensors_write(path, &set), NB_OK, "%s", nb_last_error());
    nb_tensor_set_free(&set);
    nb_tensor_free(&W), nb_tensor_free(&b), nb_tensor_free(&j);
}

/* F32 weights into an f64 model, an unknown tensor warned about, saved back equal. */
Test(tool, run_weights_round_trip)
{
    write_linear("f64");
    write_weights(tmp_path("w.safetensors"), true, false, false);
    char x[600];
    snprintf(x, sizeof x, "x=%s", tmp_path("x.npy"));
    tool_result r = TOOL("run", tmp_path("linear.yaml"), "--in", x, "--weights", tmp_path("w.safetensors"),
                         "--save-weights", tmp_path("saved.safetensors"), "-o", tmp_path("out"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.err, "warning") && strstr(r.err, "'junk'"), "no warning about 'junk': %s", r.err);
    nb_tensor_set set = {0};
    cr_assert_eq(nb_safetensors_read(tmp_path("saved.safetensors"), &set), NB_OK, "%s", nb_last_error());
    const nb_tensor *W = nb_tensor_set_find(&set, "W");
    cr_assert(W && W->dtype == NB_F64 && !nb_tensor_set_find(&set, "junk"));
    for (int i = 0; i < 6; i++) cr_expect_eq(((double *)W->data)[i], 0.25 * i);
    nb_tensor_set_free(&set);
    /* y = x W + b with those weights: row 0 is x0 = [1, 0, -1] */
    expect_values(tmp_path("out/y.npy"), 2, (int64_t[]){2, 2}, (double[]){-1 + 1, -1 - 1, 0.5 + 1, 1.25 - 1}, 1e-12);
    tool_result_free(&r);
}

static void expect_run_error(bool drop_b, bool bad_shape, const char *needle)
{
    write_linear("f64");
    write_weights(tmp_path("w.safetensors"), false, drop_b, bad_shape);
    char x[600];
    snprintf(x, sizeof x, "x=%s", tmp_path("x.npy"));
    tool_result r = TOOL("run", tmp_path("linear.yaml"), "--in", x, "--weights", tmp_path("w.safetensors"),
                         "-o", tmp_path("out"));
    cr_expect_eq(r.status, 2, "exit %d", r.status);
    cr_expect(strstr(r.err, needle), "stderr does not name %s: %s", needle, r.err);
    tool_result_free(&r);
}

Test(tool, run_missing_param) { expect_run_error(true, false, "'b'"); }
Test(tool, run_misshapen_param) { expect_run_error(false, true, "'W'"); }

/* Inputs bind N; a second input that disagrees is named with the dimension. */
Test(tool, run_dimension_mismatch)
{
    write_text(tmp_path("m.yaml"), "nabla: 1\ndtype: f64\ninputs:\n  a: [N, 3]\n  b: [N, 1]\n"
                                   "nodes:\n  - {name: s, op: add, in: [a, b]}\n");
    write_npy_f64(tmp_path("a.npy"), 2, (int64_t[]){4, 3}, (double[12]){0});
    write_npy_f64(tmp_path("b.npy"), 2, (int64_t[]){5, 1}, (double[5]){0});
    write_npy_f64(tmp_path("a2.npy"), 2, (int64_t[]){4, 2}, (double[8]){0});
    char a[600], b[600], a2[600];
    snprintf(a, sizeof a, "a=%s", tmp_path("a.npy"));
    snprintf(b, sizeof b, "b=%s", tmp_path("b.npy"));
    snprintf(a2, sizeof a2, "a=%s", tmp_path("a2.npy"));
    tool_result r = TOOL("run", tmp_path("m.yaml"), "--in", a, "--in", b, "-o", tmp_path("out"));
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "dimension N") && strstr(r.err, "'b'") && strstr(r.err, "'a'"), "%s", r.err);
    tool_result_free(&r);
    r = TOOL("run", tmp_path("m.yaml"), "--in", a2, "--in", b, "-o", tmp_path("out"));
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "'a'") && strstr(r.err, "axis 1"), "%s", r.err);
    tool_result_free(&r);
    r = TOOL("run", tmp_path("m.yaml"), "--in", a, "-o", tmp_path("out"));
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "'b' is not given") && strstr(r.err, "output 's' needs it"), "%s", r.err);
    tool_result_free(&r);
}

static const char *const CLASSIFIER =
    "nabla: 1\ndtype: f64\ninputs:\n  x: [N, 3]\n  t: {shape: [N], dtype: i32}\n  u: [N, 3]\n"
    "nodes:\n  - {name: loss, op: softmax_cross_entropy, in: [x, t]}\nloss: loss\n";

/* A label out of [0, K) stops the run with the kernel's message; an input the
 * loss does not use gets a gradient of zeros. */
Test(tool, run_labels_and_zero_gradients)
{
    write_text(tmp_path("c.yaml"), CLASSIFIER);
    write_npy_f64(tmp_path("x.npy"), 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 0, 0, 0});
    write_npy_f64(tmp_path("u.npy"), 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6});
    write_npy_i32(tmp_path("t.npy"), 1, (int64_t[]){2}, (int32_t[]){2, 0});
    write_npy_i32(tmp_path("bad.npy"), 1, (int64_t[]){2}, (int32_t[]){0, 7});
    char x[600], t[600], u[600], bad[600];
    snprintf(x, sizeof x, "x=%s", tmp_path("x.npy"));
    snprintf(u, sizeof u, "u=%s", tmp_path("u.npy"));
    snprintf(t, sizeof t, "t=%s", tmp_path("t.npy"));
    snprintf(bad, sizeof bad, "t=%s", tmp_path("bad.npy"));
    tool_result r = TOOL("run", tmp_path("c.yaml"), "--in", x, "--in", t, "--in", u, "--grad", "-o", tmp_path("out"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    expect_values(tmp_path("out/grad.u.npy"), 2, (int64_t[]){2, 3}, (double[6]){0}, 0);
    /* -(log softmax([1,2,3])[2] + log softmax(0,0,0)[0]) / 2 */
    double l0 = log(exp(1) + exp(2) + exp(3)) - 3, l1 = log(3);
    expect_values(tmp_path("out/loss.npy"), 0, NULL, (double[]){(l0 + l1) / 2}, 1e-12);
    tool_result_free(&r);
    r = TOOL("run", tmp_path("c.yaml"), "--in", x, "--in", bad, "--in", u, "-o", tmp_path("out2"));
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "'t'") && strstr(r.err, "row 1"), "%s", r.err);
    tool_result_free(&r);
}

/* ---- nabla run: only the inputs the requested nodes depend on ------------------ */

static bool file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

static const double MLP2_X[20] = {0.1, -0.2, 0.3, 0.4, 1, 2, -1, 0, 0.5, 0.5, 0.5, 0.5,
                                  -3, 1, 2, 0, 0, 0, 0, 1};

/* Runs examples/models/mlp2.yaml on x [5, 4] (and the labels t when with_t),
 * plus extra arguments, into tmp/DIR. */
static tool_result run_mlp2(const char *dir, bool with_t, const char *extra)
{
    static char model[1024], x[600], t[600];
    snprintf(model, sizeof model, "%s/../examples/models/mlp2.yaml", test_dir());
    write_npy_f64(tmp_path("x.npy"), 2, (int64_t[]){5, 4}, MLP2_X);
    write_npy_i32(tmp_path("t.npy"), 1, (int64_t[]){5}, (int32_t[]){0, 1, 2, 1, 0});
    snprintf(x, sizeof x, "x=%s", tmp_path("x.npy"));
    snprintf(t, sizeof t, "t=%s", tmp_path("t.npy"));
    const char *args[12] = {"run", model, "--in", x, "-o", tmp_path(dir)};
    int n = 6;
    if (with_t) {
        args[n++] = "--in";
        args[n++] = t;
    }
    if (extra) args[n++] = extra;
    args[n] = NULL;
    return tool_run(args);
}

/* Predicting needs no labels: y is written, the loss (which needs t) is not,
 * and nothing is said. With the labels the loss comes too, and y is the same. */
Test(tool, run_predicts_without_labels)
{
    tool_result r = run_mlp2("pred", false, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect_str_empty(r.err);
    tool_result_free(&r);
    nb_tensor y = read_npy_f64(tmp_path("pred/y.npy"));
    cr_assert(y.rank == 2 && y.shape[0] == 5 && y.shape[1] == 3, "y has rank %d", y.rank);
    cr_expect_not(file_exists(tmp_path("pred/loss.npy")), "loss.npy written without the labels");

    r = run_mlp2("score", true, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect_str_empty(r.err);
    tool_result_free(&r);
    nb_tensor loss = read_npy_f64(tmp_path("score/loss.npy")), y2 = read_npy_f64(tmp_path("score/y.npy"));
    cr_expect_eq(loss.rank, 0);
    cr_expect(isfinite(*(double *)loss.data) && *(double *)loss.data > 0);
    cr_assert_eq(nb_tensor_numel(&y2), 15);
    for (size_t i = 0; i < 15; i++) cr_expect_eq(((double *)y2.data)[i], ((double *)y.data)[i], "y[%zu]", i);
    nb_tensor_free(&loss);
    nb_tensor_free(&y2);
    nb_tensor_free(&y);
}

/* --grad needs the loss, so the loss's inputs become required: the message
 * names the missing input and why. */
Test(tool, run_grad_needs_the_loss_inputs)
{
    tool_result r = run_mlp2("g", false, "--grad");
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "nabla run: --grad needs the loss 'loss', which needs input 't' "
                            "(give --in t=FILE.npy)"), "%s", r.err);
    tool_result_free(&r);
    cr_expect_not(file_exists(tmp_path("g/y.npy")));
    r = run_mlp2("g", true, "--grad");
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect(file_exists(tmp_path("g/grad.h.W.npy")) && file_exists(tmp_path("g/loss.npy")));
    tool_result_free(&r);
}

/* u: no node reads it; b: only the loss reads it, and b has its own free
 * dimension M; t: needed by the loss alone. */
static const char *const PARTIAL =
    "nabla: 1\ndtype: f64\ninputs:\n  a: [N, 2]\n  b: [M]\n  u: [N]\n  t: [N]\n"
    "nodes:\n  - {name: y, op: neg, in: [a]}\n  - {name: sb, op: sum, in: [b]}\n"
    "  - {name: st, op: sum, in: [t]}\n  - {name: loss, op: add, in: [sb, st]}\n"
    "outputs: [y]\nloss: loss\n";

/* An input nothing computed depends on is accepted with a warning naming it;
 * an input neither given nor needed (b, with M unbound) is fine; an input an
 * output needs is an error naming both. */
Test(tool, run_unused_and_unneeded_inputs)
{
    write_text(tmp_path("p.yaml"), PARTIAL);
    write_npy_f64(tmp_path("a.npy"), 2, (int64_t[]){3, 2}, (double[]){1, 2, 3, 4, 5, 6});
    write_npy_f64(tmp_path("v.npy"), 1, (int64_t[]){3}, (double[]){1, 2, 3});
    char a[600], u[600], t[600], b[600];
    snprintf(a, sizeof a, "a=%s", tmp_path("a.npy"));
    snprintf(u, sizeof u, "u=%s", tmp_path("v.npy"));
    snprintf(t, sizeof t, "t=%s", tmp_path("v.npy"));
    snprintf(b, sizeof b, "b=%s", tmp_path("v.npy"));

    tool_result r = TOOL("run", tmp_path("p.yaml"), "--in", a, "-o", tmp_path("o1"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect_str_empty(r.err);
    expect_values(tmp_path("o1/y.npy"), 2, (int64_t[]){3, 2}, (double[]){-1, -2, -3, -4, -5, -6}, 0);
    cr_expect_not(file_exists(tmp_path("o1/loss.npy")));
    tool_result_free(&r);

    r = TOOL("run", tmp_path("p.yaml"), "--in", a, "--in", u, "--in", t, "-o", tmp_path("o2"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.err, "nabla run: warning: input 'u' is given but no output (nor the loss) "
                            "depends on it"), "%s", r.err);
    cr_expect(strstr(r.err, "warning: input 't' is given but only the loss 'loss' depends on it, "
                            "which is not computed without input 'b'"), "%s", r.err);
    cr_expect(file_exists(tmp_path("o2/y.npy")) && !file_exists(tmp_path("o2/loss.npy")));
    tool_result_free(&r);

    r = TOOL("run", tmp_path("p.yaml"), "--in", a, "--in", b, "--in", t, "--grad", "-o", tmp_path("o3"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect_str_empty(r.err);
    expect_values(tmp_path("o3/loss.npy"), 0, NULL, (double[]){12}, 0);
    expect_values(tmp_path("o3/grad.a.npy"), 2, (int64_t[]){3, 2}, (double[6]){0}, 0);
    expect_values(tmp_path("o3/grad.b.npy"), 1, (int64_t[]){3}, (double[]){1, 1, 1}, 0);
    cr_expect_not(file_exists(tmp_path("o3/grad.u.npy")), "a gradient for an input not given");
    tool_result_free(&r);

    r = TOOL("run", tmp_path("p.yaml"), "--in", u, "--in", t, "--in", b, "-o", tmp_path("o4"));
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "nabla run: input 'a' is not given (--in a=FILE.npy): output 'y' needs it"),
              "%s", r.err);
    tool_result_free(&r);
}

/* ---- gradcheck: a deliberately wrong gradient is caught and named ------------ */

static nb_status square_shape(nb_shape_ctx *c)
{
    c->out = c->in[0];
    return nb_shape_float_inputs(c);
}

static nb_status square_fwd(const nb_kctx *k)
{
    size_t n = nb_dims_numel(&k->out_shape);
    if (k->dtype == NB_F64)
        for (size_t i = 0; i < n; i++) ((double *)k->out)[i] = ((const double *)k->in[0])[i] * ((const double *)k->in[0])[i];
    else
        for (size_t i = 0; i < n; i++) ((float *)k->out)[i] = ((const float *)k->in[0])[i] * ((const float *)k->in[0])[i];
    return NB_OK;
}

/* d x^2 = 2 x; this rule forgets the 2 */
static nb_status square_bwd_wrong(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = nb_mul(g, gy, nb_node_input(y, 0));
    return NB_OK;
}

static nb_status square_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = nb_mul(g, gy, nb_scale(g, nb_node_input(y, 0), 2, 0));
    return NB_OK;
}

static const nb_op_def bad_square = {.name = "bad_square", .min_in = 1, .max_in = 1,
                                     .shape = square_shape, .forward = square_fwd,
                                     .backward = square_bwd_wrong};
static const nb_op_def good_square = {.name = "good_square", .min_in = 1, .max_in = 1,
                                      .shape = square_shape, .forward = square_fwd,
                                      .backward = square_bwd};

static const char *const SQUARE_MODEL =
    "nabla: 1\n"
    "name: squares\n"
    "inputs:\n"
    "  x: [N, 3]\n"
    "params:\n"
    "  w: {shape: [3], init: {values: [0.5, -1.5, 2.0]}}\n"
    "  v: {shape: [3], init: {values: [1, 2, 3]}}\n"
    "nodes:\n"
    "  - {name: h, op: mul, in: [x, w]}\n"
    "  - {name: s, op: %s, in: [h]}\n"
    "  - {name: e, op: add, in: [s, v]}\n"
    "  - {name: loss, op: sum, in: [e]}\n"
    "loss: loss\n";

/* Loads the model as the tool does (f64) and runs the tool's own check. */
static int gradcheck_square(const char *op, char **table)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml, SQUARE_MODEL, op);
    nb_model *m = NULL;
    nb_diags d = {0};
    nb_load_opts lo = {.force_f64 = true};
    nb_status st = nb_model_load_string(yaml, strlen(yaml), "squares.yaml", &lo, &m, &d);
    cr_assert_eq(st, NB_OK, "%s", d.n ? d.lines[0] : nb_status_str(st));
    size_t len;
    FILE *out = open_memstream(table, &len);
    nbt_gc_cfg cfg = NBT_GC_DEFAULTS;
    int rc = nbt_gradcheck_model(m, &cfg, out);
    fclose(out);
    nb_model_free(m);
    return rc;
}

/* The row of the table that starts with tensor `name`. */
static const char *row_of(const char *table, const char *name)
{
    size_t k = strlen(name);
    for (const char *l = table; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncmp(l, name, k) && l[k] == ' ') return l;
    return NULL;
}

static bool row_says(const char *table, const char *name, const char *word)
{
    const char *l = row_of(table, name);
    if (!l) return false;
    const char *end = strchr(l, '\n'), *w = strstr(l, word);
    return w && (!end || w < end);
}

Test(tool, gradcheck_catches_wrong_gradient)
{
    cr_assert_eq(nb_op_register(&bad_square), NB_OK);
    char *table = NULL;
    int rc = gradcheck_square("bad_square", &table);
    cr_expect_eq(rc, NBT_MISMATCH, "exit status %d:\n%s", rc, table);
    cr_expect(row_says(table, "w", "FAIL"), "w not reported as failing:\n%s", table);
    cr_expect(row_says(table, "x", "FAIL"), "x not reported as failing:\n%s", table);
    cr_expect(row_says(table, "v", "pass"), "v (upstream of no broken rule) should pass:\n%s", table);
    free(table);
}

Test(tool, gradcheck_passes_right_gradient)
{
    cr_assert_eq(nb_op_register(&good_square), NB_OK);
    char *table = NULL;
    int rc = gradcheck_square("good_square", &table);
    cr_expect_eq(rc, NBT_OK, "exit status %d:\n%s", rc, table);
    cr_expect(row_says(table, "w", "pass") && row_says(table, "x", "pass") && row_says(table, "v", "pass"),
              "%s", table);
    free(table);
}

/* Through the tool: a model of built-in ops passes; labels get valid classes. */
Test(tool, gradcheck_command)
{
    write_text(tmp_path("m.yaml"),
               "nabla: 1\ninputs:\n  x: [N, 4]\n  t: {shape: [N], dtype: i32}\n"
               "params:\n  g: {shape: [4], init: {uniform: [0.5, 1.5]}}\n"
               "nodes:\n  - {name: m, op: mul, in: [x, g]}\n  - {name: e, op: exp, in: [m]}\n"
               "  - {name: loss, op: softmax_cross_entropy, in: [e, t]}\nloss: loss\n");
    tool_result r = TOOL("gradcheck", tmp_path("m.yaml"), "--batch", "3", "--max-elems", "0", "--seed", "4");
    cr_expect_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.err);
    cr_expect(row_says(r.out, "g", "pass") && row_says(r.out, "x", "pass"), "%s", r.out);
    cr_expect(strstr(r.out, "[3, 4]"), "x's bound shape missing:\n%s", r.out);
    tool_result_free(&r);
}

/* log of U(-1, 1) inputs: the node that went NaN is named, exit 2. */
Test(tool, gradcheck_non_finite)
{
    write_text(tmp_path("m.yaml"), "nabla: 1\ninputs:\n  x: [N, 4]\n"
                                   "nodes:\n  - {name: e, op: exp, in: [x]}\n  - {name: lg, op: log, in: [x]}\n"
                                   "  - {name: s, op: add, in: [e, lg]}\n  - {name: loss, op: sum, in: [s]}\nloss: loss\n");
    tool_result r = TOOL("gradcheck", tmp_path("m.yaml"), "--batch", "8");
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "'lg'") && strstr(r.err, "not finite"), "%s", r.err);
    tool_result_free(&r);
}

Test(tool, gradcheck_ops)
{
    tool_result r = TOOL("gradcheck", "--op", "mul");
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_expect(strstr(r.out, "mul ") && strstr(r.out, "pass") && !strstr(r.out, "FAIL"), "%s", r.out);
    tool_result_free(&r);
    r = TOOL("gradcheck", "--op", "all", "--seed", "1");
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_expect(strstr(r.out, "exp ") && strstr(r.out, "sum "), "%s", r.out);
    tool_result_free(&r);
    r = TOOL("gradcheck", "--op", "mull");
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "did you mean 'mul'"), "%s", r.err);
    tool_result_free(&r);
}

static const char *const SQUARE_MODEL_BUILTIN =
    "nabla: 1\n"
    "inputs:\n"
    "  x: [N, 3]\n"
    "params:\n"
    "  w: {shape: [3], init: {values: [0.5, -1.5, 2.0]}}\n"
    "  v: {shape: [3], init: zeros}\n"
    "nodes:\n"
    "  - {name: h, op: mul, in: [x, w]}\n"
    "  - {name: s, op: pow, in: [h], exponent: 2}\n"
    "  - {name: e, op: add, in: [s, v]}\n"
    "  - {name: loss, op: sum, in: [e]}\n"
    "loss: loss\n";

/* ---- check and usage ------------------------------------------------------------ */

Test(tool, check_table)
{
    write_text(tmp_path("m.yaml"), SQUARE_MODEL_BUILTIN);
    tool_result r = TOOL("check", tmp_path("m.yaml"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    const char *names[] = {"x", "w", "v", "h", "s", "e", "loss"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        cr_expect(row_of(r.out, names[i]), "node %s missing:\n%s", names[i], r.out);
    cr_expect(row_says(r.out, "x", "[N, 3]") && row_says(r.out, "w", "3"), "%s", r.out);
    cr_expect(row_of(r.out, "total") && strstr(r.out, "N=1"), "%s", r.out);
    tool_result_free(&r);
    r = TOOL("check", tmp_path("m.yaml"), "--dim", "N=64");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(row_says(r.out, "h", "[64, 3]") && row_says(r.out, "h", "192"), "%s", r.out);
    tool_result_free(&r);
    r = TOOL("check", tmp_path("m.yaml"), "--dim", "M=64");
    cr_expect_eq(r.status, 2);
    tool_result_free(&r);
}

/* Loader errors one per line as FILE:LINE:COL: message. */
static bool has_position(const char *text, const char *file)
{
    for (const char *p = strstr(text, file); p; p = strstr(p + 1, file)) {
        int line, col, used = 0;
        if (sscanf(p + strlen(file), ":%d:%d: %n", &line, &col, &used) == 2 && used && line > 0 && col > 0)
            return true;
    }
    return false;
}

Test(tool, check_broken_model)
{
    write_text(tmp_path("broken.yaml"), "nabla: 1\ninputs:\n  x: [N, 3]\nnodes:\n"
                                        "  - {name: h, op: mull, in: [x, x]}\n");
    tool_result r = TOOL("check", tmp_path("broken.yaml"));
    cr_expect_eq(r.status, 2);
    cr_expect(has_position(r.err, "broken.yaml"), "no FILE:LINE:COL in: %s", r.err);
    tool_result_free(&r);
    r = TOOL("check", tmp_path("nonexistent.yaml"));
    cr_expect_eq(r.status, 2);
    cr_expect_neq(r.err[0], 0);
    tool_result_free(&r);
}

Test(tool, usage)
{
    struct {
        const char *args[8];
        int status;
    } cases[] = {
        {{"--help"}, 0},
        {{"check", "--help"}, 0},
        {{"render", "--help"}, 0},
        {{"gradcheck", "--help"}, 0},
        {{"run", "--help"}, 0},
        {{"frobnicate"}, 2},
        {{"check"}, 2},
        {{"check", "a.yaml", "b.yaml"}, 2},
        {{"check", "a.yaml", "--bogus"}, 2},
        {{"check", "a.yaml", "--dim", "N"}, 2},
        {{"check", "a.yaml", "--dim", "N=0"}, 2},
        {{"render", "a.yaml"}, 2},
        {{"gradcheck", "a.yaml", "--eps", "abc"}, 2},
        {{"gradcheck", "a.yaml", "--batch", "0"}, 2},
        {{"gradcheck", "--op"}, 2},
        {{"run", "a.yaml"}, 2},
        {{"run", "a.yaml", "-o", "d", "--in", "x"}, 2},
    };
    tool_result r = tool_run((const char *const[]){NULL});
    cr_expect_eq(r.status, 2, "no command: exit %d", r.status);
    tool_result_free(&r);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r = tool_run(cases[i].args);
        cr_expect_eq(r.status, cases[i].status, "nabla %s %s %s: exit %d, want %d", cases[i].args[0],
                     cases[i].args[1] ? cases[i].args[1] : "", cases[i].args[2] ? cases[i].args[2] : "",
                     r.status, cases[i].status);
        if (cases[i].status) cr_expect_neq(r.err[0], 0, "no message for %s", cases[i].args[0]);
        else cr_expect(strstr(r.out, "usage"), "%s", r.out);
        tool_result_free(&r);
    }
}

/* ---- --version, help, extra arguments ---------------------------------------------- */

Test(tool, version)
{
    tool_result r = TOOL("--version");
    char want[64];
    snprintf(want, sizeof want, "nabla %s (", NB_VERSION_STRING);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect(!strncmp(r.out, want, strlen(want)), "want '%s...', got: %s", want, r.out);
    cr_expect(strstr(r.out, "OpenBLAS") && strstr(r.out, "core "), "%s", r.out);
    cr_expect_eq(r.err[0], 0, "%s", r.err);
    tool_result_free(&r);
}

static const char *const COMMANDS[] = {"check", "render", "gradcheck", "run", "ops"};
#define N_COMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

/* nabla help CMD and nabla CMD --help: the same text, with an example of CMD. */
Test(tool, help_for_each_command)
{
    tool_result r = TOOL("help");
    cr_expect_eq(r.status, 0, "%s", r.err);
    for (size_t i = 0; i < N_COMMANDS; i++) cr_expect(strstr(r.out, COMMANDS[i]), "%s", r.out);
    cr_expect(strstr(r.out, "nabla help COMMAND") && strstr(r.out, "--version"), "%s", r.out);
    tool_result_free(&r);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        char usage[64], example[64];
        snprintf(usage, sizeof usage, "usage: nabla %s", COMMANDS[i]);
        snprintf(example, sizeof example, "\n  nabla %s ", COMMANDS[i]);
        r = TOOL("help", COMMANDS[i]);
        cr_expect_eq(r.status, 0, "nabla help %s: exit %d: %s", COMMANDS[i], r.status, r.err);
        cr_expect(strstr(r.out, usage), "nabla help %s:\n%s", COMMANDS[i], r.out);
        const char *ex = strstr(r.out, "\nexample");
        cr_expect(ex && strstr(ex, example), "nabla help %s shows no example:\n%s", COMMANDS[i], r.out);
        tool_result h = TOOL(COMMANDS[i], "--help");
        cr_expect_eq(h.status, 0);
        cr_expect_str_eq(h.out, r.out, "nabla %s --help differs from nabla help %s", COMMANDS[i],
                         COMMANDS[i]);
        tool_result_free(&h);
        tool_result_free(&r);
    }
}

Test(tool, help_unknown_command)
{
    tool_result r = TOOL("help", "nosuch");
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "nabla help: unknown command 'nosuch'") && strstr(r.err, "'nabla help'"),
              "%s", r.err);
    cr_expect_eq(r.out[0], 0, "%s", r.out);
    tool_result_free(&r);
    r = TOOL("help", "chek");
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "(did you mean 'check'?)"), "%s", r.err);
    tool_result_free(&r);
}

/* A positional argument no command takes is an error naming it, found before
 * anything is loaded or written. */
Test(tool, extra_arguments_are_errors)
{
    write_text(tmp_path("m.yaml"), SQUARE_MODEL_BUILTIN);
    const char *m = tmp_path("m.yaml"), *svg = tmp_path("m.svg"), *out = tmp_path("out");
    struct {
        const char *args[8];
        const char *who, *extra;
    } cases[] = {
        {{"check", m, "foo"}, "nabla check", "foo"},
        {{"check", "foo", m}, "nabla check", m},
        {{"render", m, "-o", svg, "foo"}, "nabla render", "foo"},
        {{"gradcheck", m, "foo"}, "nabla gradcheck", "foo"},
        {{"gradcheck", "--op", "add", "foo"}, "nabla gradcheck", "foo"},
        {{"run", m, "--in", "x=x.npy", "-o", out, "foo"}, "nabla run", "foo"},
        {{"ops", "add", "foo"}, "nabla ops", "foo"},
        {{"help", "check", "foo"}, "nabla help", "foo"},
        {{"--version", "foo"}, "nabla --version", "foo"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tool_result r = tool_run(cases[i].args);
        char want[1024];
        snprintf(want, sizeof want, "%s: unexpected argument '%s'", cases[i].who, cases[i].extra);
        cr_expect_eq(r.status, 2, "%s ... %s: exit %d", cases[i].who, cases[i].extra, r.status);
        cr_expect(strstr(r.err, want), "want '%s' in: %s", want, r.err);
        cr_expect_eq(r.out[0], 0, "%s printed: %s", cases[i].who, r.out);
        tool_result_free(&r);
    }
    cr_expect_null(fopen(svg, "r"), "render drew despite the extra argument");
    cr_expect_null(fopen(out, "r"), "run wrote despite the extra argument");
}

/* nabla ops lists the model-file ops from the registry, not the internal ones */
Test(tool, ops_lists_the_registry)
{
    tool_result r = TOOL("ops");
    cr_assert_eq(r.status, 0, "%s", r.err);
    const char *want[] = {"add ", "matmul ", "conv2d ", "softmax_cross_entropy ", "max_pool2d "};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect(strstr(r.out, want[i]), "missing %s", want[i]);
    cr_expect_null(strstr(r.out, "sum_to"), "internal ops are listed only with --all");
    tool_result_free(&r);
    r = TOOL("ops", "--all");
    cr_expect(strstr(r.out, "conv2d_backward_input"));
    tool_result_free(&r);
    r = TOOL("ops", "pow");
    cr_expect(strstr(r.out, "exponent") && strstr(r.out, "required"), "%s", r.out);
    tool_result_free(&r);
    r = TOOL("ops", "conv2d");  /* an int-or-[h, w] attribute shows its default */
    cr_expect(strstr(r.out, "dilation     int or list  default 1"), "%s", r.out);
    tool_result_free(&r);
    r = TOOL("ops", "concat");  /* the limit nb_op enforces, not "any number" */
    cr_expect(strstr(r.out, "1 to 64 inputs"), "%s", r.out);
    tool_result_free(&r);
    r = TOOL("ops", "mul2");
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "(did you mean 'mul'?)"), "%s", r.err);
    tool_result_free(&r);
}

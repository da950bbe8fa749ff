/* `format: npy` training data (model-format.md, "Training settings"): the
 * loader's reading of `train`/`test` as input -> file mappings, and nabla
 * train / nabla eval on the user's own arrays written with nb_npy_write. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "toolutil.h"

/* ---- the loader ------------------------------------------------------------ */

static const char *const HEAD =
    "nabla: 1\n"
    "inputs:\n"
    "  x: [N, 2]\n"
    "  t: {shape: [N], dtype: i32}\n"
    "nodes:\n"
    "  - {name: y, layer: dense, in: [x], units: 2}\n"
    "  - {name: loss, op: softmax_cross_entropy, in: [y, t]}\n"
    "loss: loss\n"
    "train:\n"
    "  data:\n";  /* the data section starts on line 11 */

/* Loads HEAD + data; returns the status, the diagnostics in *d. */
static nb_status load(const char *data, nb_model **m, nb_diags *d)
{
    char text[4096];
    snprintf(text, sizeof text, "%s%s", HEAD, data);
    return nb_model_load_string(text, strlen(text), "m.yaml", NULL, m, d);
}

/* The file does not load, and its only error is `line`. */
static void expect_error(const char *data, const char *line)
{
    nb_model *m = (nb_model *)1;
    nb_diags d;
    cr_assert_eq(load(data, &m, &d), NB_ERR_FORMAT, "loaded:\n%s", data);
    cr_expect_null(m);
    cr_assert_eq(d.n, 1, "%zu errors, the first: %s", d.n, d.n ? d.lines[0] : "");
    cr_expect_str_eq(d.lines[0], line);
    nb_diags_free(&d);
}

static const nb_train_cfg *load_train_cfg(const char *data, nb_model **m)
{
    nb_diags d;
    nb_status st = load(data, m, &d);
    cr_assert_eq(st, NB_OK, "%s", d.n ? d.lines[0] : "no message");
    cr_assert_eq(d.n, 0);
    return nb_model_train(*m);
}

Test(npy_loader, reads_train_and_test_mappings)
{
    nb_model *m;
    const nb_train_cfg *tc = load_train_cfg("    train: {x: x_train.npy, t: t_train.npy}\n"
                                            "    test: {t: t_test.npy, x: sub/x_test.npy}\n"
                                            "    format: npy\n"   /* after train: order does not matter */
                                            "    scale: 0.5\n", &m);
    cr_expect_str_eq(tc->format, "npy");
    cr_assert_eq(tc->n_npy, 2);
    cr_expect_str_eq(tc->npy_inputs[0], "x");
    cr_expect_str_eq(tc->npy_inputs[1], "t");
    cr_expect_str_eq(tc->npy_train[0], "x_train.npy");
    cr_expect_str_eq(tc->npy_train[1], "t_train.npy");
    cr_expect_str_eq(tc->npy_test[0], "sub/x_test.npy");
    cr_expect_str_eq(tc->npy_test[1], "t_test.npy");
    cr_expect_eq(tc->scale, 0.5);
    cr_expect_null(tc->train_images);
    cr_expect_null(tc->images_input);
    nb_model_free(m);
}

/* The loader checks names only: which inputs the loss needs is the tool's
 * business when it trains (an input left out is no load error). */
Test(npy_loader, an_input_may_be_left_out_and_test_may_be_absent)
{
    nb_model *m;
    const nb_train_cfg *tc = load_train_cfg("    format: npy\n    train: {x: x.npy}\n", &m);
    cr_assert_eq(tc->n_npy, 1);
    cr_expect_str_eq(tc->npy_inputs[0], "x");
    cr_expect_null(tc->npy_test[0]);
    cr_expect_eq(tc->scale, 1);
    nb_model_free(m);
    tc = load_train_cfg("    format: npy\n    test: {x: x.npy, t: t.npy}\n", &m);
    cr_assert_eq(tc->n_npy, 2);
    cr_expect_null(tc->npy_train[1]);
    cr_expect_str_eq(tc->npy_test[1], "t.npy");
    nb_model_free(m);
}

Test(npy_loader, idx_files_keep_no_npy_lists)
{
    nb_model *m;
    const nb_train_cfg *tc = load_train_cfg("    train: {images: i.idx, labels: l.idx}\n"
                                            "    feed: {x: images, t: labels}\n", &m);
    cr_expect_str_eq(tc->format, "idx");
    cr_expect_eq(tc->n_npy, 0);
    cr_expect_null(tc->npy_inputs);
    cr_expect_str_eq(tc->train_images, "i.idx");
    nb_model_free(m);
}

Test(npy_loader, a_key_that_is_no_input)
{
    expect_error("    format: npy\n    train: {x: x.npy, tt: t.npy}\n",
                 "m.yaml:12:23: 'tt' is not an input (did you mean 't'?)");
    expect_error("    format: npy\n    train: {x: x.npy}\n    test: {loss: l.npy}\n",
                 "m.yaml:13:12: 'loss' is not an input");
}

Test(npy_loader, feed_is_not_used)
{
    expect_error("    format: npy\n    train: {x: x.npy, t: t.npy}\n    feed: {x: images}\n",
                 "m.yaml:13:5: 'feed' is not used with format npy: 'train' and 'test' map input names "
                 "straight to .npy files");
}

Test(npy_loader, images_and_labels_keys_are_idx)
{
    expect_error("    format: npy\n    test: {images: i.npy}\n",
                 "m.yaml:12:12: 'images' is not an input; with format npy, 'train' and 'test' map input "
                 "names to .npy files ({x: x_train.npy, t: t_train.npy}), not images/labels");
}

Test(npy_loader, train_and_test_name_the_same_inputs)
{
    expect_error("    format: npy\n    train: {x: x.npy, t: t.npy}\n    test: {x: xt.npy}\n",
                 "m.yaml:13:11: 'test' gives no file for input 't', which 'train' feeds (t.npy)");
}

Test(npy_loader, files_are_non_empty_strings)
{
    expect_error("    format: npy\n    train: {x: [a, b]}\n",
                 "m.yaml:12:16: the file of input 'x' must be a string; got a list");
    expect_error("    format: npy\n    train: {x: ''}\n", "m.yaml:12:16: the file of input 'x' must not be empty");
    expect_error("    format: npy\n    train: {}\n",
                 "m.yaml:12:12: 'train' must map input names to .npy files, e.g. {x: x_train.npy, t: "
                 "t_train.npy}");
}

/* Input names under format idx: the user forgot `format: npy`. */
Test(npy_loader, npy_mapping_without_format_npy)
{
    expect_error("    train: {x: x.npy, t: t.npy}\n",
                 "m.yaml:11:13: 'train' maps input 'x' to a file, as format npy does; this data is "
                 "format idx (write 'format: npy', or give {images: FILE, labels: FILE})");
    nb_model *m;
    nb_diags d;
    cr_assert_eq(load("    format: npz\n    train: {x: x.npy}\n", &m, &d), NB_ERR_FORMAT);
    cr_assert_eq(d.n, 2);
    cr_expect_str_eq(d.lines[0], "m.yaml:11:13: unknown data format 'npz' (did you mean 'npy'?)");
    cr_expect(strstr(d.lines[1], "m.yaml:12:13: 'train' maps input 'x' to a file"), "%s", d.lines[1]);
    nb_diags_free(&d);
}

/* ---- nabla train / nabla eval ------------------------------------------------ */

/* A small deterministic normal generator (Box-Muller on an LCG). */
static uint64_t state;
static double uniform(void)
{
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((double)(state >> 11) + 0.5) / 9007199254740992.0;
}
static double normal(void)
{
    return sqrt(-2 * log(uniform())) * cos(6.283185307179586 * uniform());
}

/* n points in two Gaussian blobs around (-2, -2) (class 0) and (2, 2)
 * (class 1), standard deviation 1: x [n, 2], t [n]. */
static void blobs(uint64_t seed, size_t n, double *x, int32_t *t)
{
    state = seed;
    for (size_t i = 0; i < n; i++) {
        t[i] = (int32_t)(i % 2);
        double c = t[i] ? 2 : -2;
        x[2 * i] = c + normal();
        x[2 * i + 1] = c + normal();
    }
}

static void write_labels(const char *name, size_t n, const int32_t *t)
{
    write_npy_i32(tmp_path(name), 1, (int64_t[]){(int64_t)n}, t);
}

/* An int64 ("<i8") .npy written by hand, as numpy saves integers by default. */
static void write_i8(const char *name, const int32_t *v, size_t n)
{
    char dict[128];
    snprintf(dict, sizeof dict, "{'descr': '<i8', 'fortran_order': False, 'shape': (%zu,), }", n);
    int64_t *x = malloc((n ? n : 1) * sizeof *x);
    cr_assert_not_null(x);
    for (size_t i = 0; i < n; i++) x[i] = v[i];
    size_t len;
    unsigned char *b = npy_buf(1, dict, x, n * sizeof *x, &len);
    write_file(tmp_path(name), b, len);
    free(b);
    free(x);
}

#define NTRAIN 200
#define NTEST 100

static void setup(void)
{
    tmp_make();
    double x[2 * NTRAIN], xi[2 * NTRAIN];
    int32_t t[NTRAIN];
    blobs(11, NTRAIN, x, t);
    write_npy(tmp_path("x_train.npy"), NB_F32, 2, (int64_t[]){NTRAIN, 2}, x);
    write_npy(tmp_path("x64_train.npy"), NB_F64, 2, (int64_t[]){NTRAIN, 2}, x);
    for (size_t i = 0; i < 2 * NTRAIN; i++) xi[i] = 4 * x[i];   /* integers after rounding */
    write_npy(tmp_path("xi_train.npy"), NB_I32, 2, (int64_t[]){NTRAIN, 2}, xi);
    write_labels("t_train.npy", NTRAIN, t);
    write_i8("t8_train.npy", t, NTRAIN);
    write_npy(tmp_path("tf_train.npy"), NB_F64, 1, (int64_t[]){NTRAIN}, (double[NTRAIN]){0});
    write_labels("t_short.npy", 150, t);
    write_npy(tmp_path("x3_train.npy"), NB_F32, 2, (int64_t[]){NTRAIN / 2, 3}, x);
    t[17] = 5;
    write_labels("t_bad.npy", NTRAIN, t);
    blobs(12, NTEST, x, t);
    write_npy(tmp_path("x_test.npy"), NB_F32, 2, (int64_t[]){NTEST, 2}, x);
    write_labels("t_test.npy", NTEST, t);
}

TestSuite(npy_tool, .init = setup, .fini = tmp_remove, .timeout = 120);

/* A model of the blobs with the given data section. */
static const char *model(const char *name, const char *data)
{
    char text[4096];
    snprintf(text, sizeof text,
             "nabla: 1\n"
             "name: blobs\n"
             "seed: 3\n"
             "inputs:\n"
             "  x: [N, 2]\n"
             "  t: {shape: [N], dtype: i32}\n"
             "nodes:\n"
             "  - {name: h, layer: dense, in: [x], units: 16, activation: relu}\n"
             "  - {name: y, layer: dense, in: [h], units: 2}\n"
             "  - {name: loss, op: softmax_cross_entropy, in: [y, t]}\n"
             "outputs: [y]\n"
             "loss: loss\n"
             "train:\n"
             "  data:\n"
             "    format: npy\n"
             "%s"
             "  batch: 20\n"
             "  epochs: 5\n"
             "  seed: 1\n"
             "  optimizer: {type: adam, lr: 0.01}\n",
             data);
    const char *path = tmp_path(name);
    write_text(path, text);
    return path;
}

/* The accuracy in percent after `what` ("train loss", "test loss") on the
 * line of the last epoch, or -1. */
static double accuracy(const char *out, const char *what)
{
    const char *line = strstr(out, "epoch 5/5:");
    const char *p = line ? strstr(line, what) : NULL;
    p = p ? strstr(p, " acc ") : NULL;
    return p ? atof(p + 5) : -1;
}

/* Trains `path` for 5 epochs; returns the last epoch's train accuracy. */
static double train(const char *path, const char *save, char **out)
{
    tool_result r = save ? TOOL("train", path, "--save", save) : TOOL("train", path);
    cr_assert_eq(r.status, 0, "%s", r.err);
    double acc = accuracy(r.out, "train loss");
    if (out) *out = strdup(r.out);
    tool_result_free(&r);
    return acc;
}

Test(npy_tool, learns_the_blobs_and_evaluates)
{
    const char *m = model("m.yaml", "    train: {x: x_train.npy, t: t_train.npy}\n"
                                    "    test: {x: x_test.npy, t: t_test.npy}\n");
    char *out;
    char w[256];
    snprintf(w, sizeof w, "%s", tmp_path("w.st"));
    double acc = train(m, w, &out);
    cr_expect_gt(acc, 90, "%s", out);
    cr_expect_gt(accuracy(out, "test loss"), 90, "%s", out);
    free(out);
    tool_result r = TOOL("eval", m, "--weights", w);
    cr_assert_eq(r.status, 0, "%s", r.err);
    const char *p = strstr(r.out, "test: 100 samples, loss ");
    cr_assert_not_null(p, "%s", r.out);
    p = strstr(p, "accuracy ");
    cr_assert_not_null(p, "%s", r.out);
    cr_expect_gt(atof(p + 9), 90, "%s", r.out);
    cr_expect(strstr(r.out, "confusion"), "%s", r.out);
    tool_result_free(&r);
}

/* f64 arrays feed the f32 model; int64 labels (numpy's default) become i32. */
Test(npy_tool, f64_data_and_int64_labels)
{
    const char *m = model("m.yaml", "    train: {x: x64_train.npy, t: t8_train.npy}\n");
    cr_expect_gt(train(m, NULL, NULL), 90);
}

/* Integer data fed to a float input is converted (and scaled): a broken
 * conversion (the bits of an int read as a float) would learn nothing. */
Test(npy_tool, integer_data_to_a_float_input)
{
    const char *m = model("m.yaml", "    train: {x: xi_train.npy, t: t_train.npy}\n"
                                    "    scale: 0.25\n");
    cr_expect_gt(train(m, NULL, NULL), 90);
}

/* A model whose only output is its loss reports the accuracy of the logits
 * its softmax_cross_entropy compares with the labels. */
Test(npy_tool, accuracy_without_outputs)
{
    const char *m = model("m.yaml", "    train: {x: x_train.npy, t: t_train.npy}\n");
    char *yaml = read_text(m, NULL), *p = strstr(yaml, "outputs: [y]\n");
    cr_assert_not_null(p);
    memmove(p, p + 13, strlen(p + 13) + 1);
    write_text(m, yaml);
    free(yaml);
    char *out;
    cr_expect_gt(train(m, NULL, &out), 90, "%s", out);
    free(out);
}

/* validation holds out the last samples of the training files, as with idx. */
Test(npy_tool, validation_split)
{
    const char *m = model("m.yaml", "    train: {x: x_train.npy, t: t_train.npy}\n"
                                    "  validation: 0.25\n");
    char *out;
    double acc = train(m, NULL, &out);
    cr_expect_gt(acc, 85, "%s", out);
    cr_expect(strstr(out, "| validation loss "), "%s", out);
    cr_expect_gt(accuracy(out, "validation loss"), 85, "%s", out);
    free(out);
}

/* The command fails with status 2 and a message holding every one of the
 * NULL-ended strings. */
static void expect_fail(const char *const *args, ...)
{
    tool_result r = tool_run(args);
    cr_expect_eq(r.status, 2, "%s", r.out);
    va_list ap;
    va_start(ap, args);
    for (const char *s; (s = va_arg(ap, const char *));)
        cr_expect(strstr(r.err, s), "'%s' not in: %s", s, r.err);
    va_end(ap);
    tool_result_free(&r);
}
#define FAILS(...) (const char *const[]){__VA_ARGS__, NULL}

Test(npy_tool, first_axes_disagree)
{
    const char *m = model("m.yaml", "    train: {x: x_train.npy, t: t_short.npy}\n");
    expect_fail(FAILS("train", m), "t_short.npy: 150 samples (first axis), but ", "x_train.npy has 200",
                (char *)NULL);
}

Test(npy_tool, a_sample_that_does_not_fit_the_input)
{
    const char *m = model("m.yaml", "    train: {x: x3_train.npy}\n");
    expect_fail(FAILS("train", m), "x3_train.npy is [100, 3]: 100 samples of [3], but input 'x' is [N, 2], "
                "so the file must be [100, 2]", (char *)NULL);
}

Test(npy_tool, float_labels_are_refused)
{
    const char *m = model("m.yaml", "    train: {x: x_train.npy, t: tf_train.npy}\n");
    expect_fail(FAILS("train", m), "tf_train.npy holds f64 values, but input 't' is i32", (char *)NULL);
}

Test(npy_tool, an_input_the_loss_needs_must_be_given)
{
    const char *m = model("m.yaml", "    train: {x: x_train.npy}\n");
    expect_fail(FAILS("train", m), "the loss 'loss' needs input 't'", "no .npy file", (char *)NULL);
}

Test(npy_tool, labels_outside_the_classes)
{
    const char *m = model("m.yaml", "    train: {x: x_train.npy, t: t_bad.npy}\n");
    expect_fail(FAILS("train", m), "t_bad.npy", "sample 17", (char *)NULL);
}

Test(npy_tool, missing_files_and_data)
{
    const char *m = model("m.yaml", "    train: {x: x_train.npy, t: none.npy}\n");
    expect_fail(FAILS("train", m), "data file 'none.npy' not found", (char *)NULL);
    m = model("m.yaml", "    train: {x: x_train.npy, t: t_train.npy}\n");
    char w[256];
    snprintf(w, sizeof w, "%s", tmp_path("w.st"));
    tool_result r = TOOL("train", m, "--epochs", "1", "--save", w);
    cr_assert_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    expect_fail(FAILS("eval", m, "--weights", w), "names no test data", (char *)NULL);
    m = model("m.yaml", "    test: {x: x_test.npy, t: t_test.npy}\n");
    expect_fail(FAILS("train", m), "names no training data", (char *)NULL);
}

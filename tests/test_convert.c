/* nabla convert (issue 12): models to YAML and to ONNX and back.
 *   - the PyTorch exports of examples/onnx, run by `nabla run` as they are and
 *     converted to YAML (weights in a safetensors file, or inline) and back to
 *     ONNX, give PyTorch's outputs (pool_pad: F.pad and avg_pool2d with
 *     count_include_pad=False, so the importer's Pad and convert's pad writer);
 *   - every example model written as YAML and loaded again computes the same
 *     outputs and loss (the writer knows no op: attributes come from the registry),
 *     and has the same train section;
 *   - the example models exported to ONNX and imported again compute the same
 *     outputs on random inputs;
 *   - the imported MLP, converted and given a loss and a train section, trains;
 *   - errors: an op without an ONNX writer names the node and writes nothing,
 *     a bad output extension, a missing -o. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "toolutil.h"

TestSuite(convert, .init = tmp_make, .fini = tmp_remove, .timeout = 240);

static void expect_tool_ok(tool_result r, const char *what)
{
    cr_assert_eq(r.status, 0, "%s: exit %d: %s", what, r.status, r.err);
    tool_result_free(&r);
}

static void compare_npy(const char *got_path, const char *want_path, double rtol, double atol)
{
    nb_tensor got = read_npy_f64(got_path), want = read_npy_f64(want_path);
    cr_assert_eq(got.rank, want.rank, "%s: rank", got_path);
    for (int a = 0; a < got.rank; a++) cr_assert_eq(got.shape[a], want.shape[a], "%s: axis %d", got_path, a);
    expect_close(got.data, want.data, nb_tensor_numel(&got), atol, rtol, got_path);
    nb_tensor_free(&got);
    nb_tensor_free(&want);
}

/* ---- ONNX -> YAML: PyTorch's outputs ------------------------------------ */

static const char *const torch_models[] = {"mlp", "simple_convnet", "gelu_layernorm", "gelu_layernorm17",
                                           "pool_pad"};

ParameterizedTestParameters(convert, onnx_to_yaml)
{
    static int idx[] = {0, 1, 2, 3, 4};
    return cr_make_param_array(int, idx, sizeof idx / sizeof *idx);
}

ParameterizedTest(int *i, convert, onnx_to_yaml)
{
    const char *name = torch_models[*i];
    char onnx[1024], x[1024], y[1024], yaml[1024], w[1024], out[1024];
    snprintf(onnx, sizeof onnx, "%s", test_file("../examples/onnx/%s.onnx", name));
    snprintf(x, sizeof x, "%s", test_file("../examples/onnx/%s.x.npy", name));
    snprintf(y, sizeof y, "%s", test_file("../examples/onnx/%s.y.npy", name));
    snprintf(yaml, sizeof yaml, "%s", tmp_path("m.yaml"));
    snprintf(w, sizeof w, "%s", tmp_path("m.safetensors"));
    snprintf(out, sizeof out, "%s", tmp_path("out"));
    char in[1100];
    snprintf(in, sizeof in, "x=%s", x);
    /* the export itself, through the importer */
    expect_tool_ok(TOOL("run", onnx, "--in", in, "-o", tmp_path("out0")), "run the .onnx");
    compare_npy(tmp_path("out0/y.npy"), y, 1e-4, 1e-5);
    expect_tool_ok(TOOL("convert", onnx, "-o", yaml, "--weights", w), "convert");
    /* the values are in the weights file: the model file says zeros */
    char *text = read_text(yaml, NULL);
    assert_has(text, "init: zeros");
    cr_expect_null(strstr(text, "values:"));
    free(text);
    expect_tool_ok(TOOL("run", yaml, "--weights", w, "--in", in, "-o", out), "run");
    compare_npy(tmp_path("out/y.npy"), y, 1e-4, 1e-5);
    /* and back to ONNX with those weights: PyTorch's outputs again */
    char again[1024];
    snprintf(again, sizeof again, "%s", tmp_path("again.onnx"));
    expect_tool_ok(TOOL("convert", yaml, "--weights", w, "-o", again), "convert back");
    expect_tool_ok(TOOL("run", again, "--in", in, "-o", tmp_path("out2")), "run again");
    compare_npy(tmp_path("out2/y.npy"), y, 1e-4, 1e-5);
}

/* Without --weights the values are written into the model file. */
Test(convert, onnx_to_yaml_inline_values)
{
    char yaml[1024], in[1100];
    snprintf(yaml, sizeof yaml, "%s", tmp_path("m.yaml"));
    expect_tool_ok(TOOL("convert", test_file("../examples/onnx/mlp.onnx"), "-o", yaml), "convert");
    char *text = read_text(yaml, NULL);
    assert_has(text, "init: {values: [");
    free(text);
    snprintf(in, sizeof in, "x=%s", test_file("../examples/onnx/mlp.x.npy"));
    expect_tool_ok(TOOL("run", yaml, "--in", in, "-o", tmp_path("out")), "run");
    compare_npy(tmp_path("out/y.npy"), test_file("../examples/onnx/mlp.y.npy"), 1e-4, 1e-5);
}

/* ---- a model against its conversion, on random inputs -------------------- */

/* Binds every free dimension of g to 3. */
static int bind_all(const nb_graph *g, nb_bind *b)
{
    int n = nb_graph_num_syms(g);
    for (int k = 0; k < n; k++) b[k] = (nb_bind){nb_graph_sym(g, k), 3};
    return n;
}

/* The values of `names` (outputs of a and b alike) after one eval run of
 * each on the same random inputs (b's inputs, found in a by name). */
static void expect_same_outputs(nb_model *a, nb_model *b, nb_node *const *outs_a, int n, double rtol)
{
    nb_graph *ga = nb_model_graph(a), *gb = nb_model_graph(b);
    nb_node *outs_b[32];
    for (int j = 0; j < n; j++) {
        outs_b[j] = nb_graph_find(gb, nb_node_name(outs_a[j]));
        cr_assert_not_null(outs_b[j], "no node '%s' after the conversion", nb_node_name(outs_a[j]));
    }
    nb_bind binds[NB_MAX_SYMS];
    nb_plan *pa = plan_new_ok(ga, outs_a, n), *pb = plan_new_ok(gb, outs_b, n);
    plan_bind_ok(pa, binds, bind_all(ga, binds));
    plan_bind_ok(pb, binds, bind_all(gb, binds));
    for (size_t i = 0; i < nb_model_num_inputs(a); i++) {
        nb_node *xa = nb_model_input(a, i), *xb = nb_graph_find(gb, nb_node_name(xa));
        /* inputs the outputs do not need are not written to ONNX, nor planned */
        if (!xb || nb_node_kind_of(xb) != NB_NODE_INPUT || !nb_plan_input_buffer(pa, xa)) continue;
        int64_t shape[NB_MAX_DIMS];
        int rank = nb_plan_shape(pa, xa, shape);
        size_t k = shape_numel(rank, shape);
        double *v = malloc((k ? k : 1) * sizeof *v);
        fill_random(v, k, 17 + i);
        if (nb_node_dtype(xa) == NB_I32)   /* labels and ids: 0 and 1 are valid everywhere */
            for (size_t e = 0; e < k; e++) v[e] = e % 2;
        plan_feed(pa, xa, v);
        plan_feed(pb, xb, v);
        free(v);
    }
    plan_run_ok(pa);
    plan_run_ok(pb);
    for (int j = 0; j < n; j++) {
        size_t k = plan_bytes(pa, outs_a[j]) / nb_dtype_size(nb_node_dtype(outs_a[j]));
        cr_assert_eq(plan_bytes(pb, outs_b[j]) / nb_dtype_size(nb_node_dtype(outs_b[j])), k);
        double *va = malloc(k * sizeof *va), *vb = malloc(k * sizeof *vb);
        plan_read(pa, outs_a[j], va);
        plan_read(pb, outs_b[j], vb);
        expect_close(vb, va, k, 1e-6, rtol, nb_node_name(outs_a[j]));
        free(va);
        free(vb);
    }
    nb_plan_free(pa);
    nb_plan_free(pb);
}

/* the example models, and tests/data/convert/ops.yaml: every op with an ONNX writer */
static const char *const examples[] = {"mnist_mlp", "simple_convnet", "mlp2", "bn_dropout",
                                       "deep_convnet", "attention", "lstm_step",
                                       "binary_classifier", "apple", "ops", "transformer_block"};

static nb_model *load_example_or_ops(const char *name)
{
    if (!strcmp(name, "ops")) return load_model_file(test_file("data/convert/ops.yaml"));
    char file[256];
    snprintf(file, sizeof file, "%s.yaml", name);
    return load_example(file);
}

static void expect_str_same(const char *a, const char *b, const char *what)
{
    if (!a || !b) cr_expect(a == b, "%s: %s vs %s", what, a ? a : "NULL", b ? b : "NULL");
    else cr_expect_str_eq(b, a, "%s", what);
}

/* The train section comes back setting for setting. */
static void expect_same_train(const nb_train_cfg *a, const nb_train_cfg *b)
{
    cr_assert_eq(b->present, a->present);
    expect_str_same(a->format, b->format, "format");
    expect_str_same(a->train_images, b->train_images, "train images");
    expect_str_same(a->test_labels, b->test_labels, "test labels");
    expect_str_same(a->images_input, b->images_input, "feed images");
    expect_str_same(a->labels_input, b->labels_input, "feed labels");
    expect_str_same(a->optimizer, b->optimizer, "optimizer");
    expect_str_same(a->schedule, b->schedule, "schedule");
    cr_expect_eq(b->n_npy, a->n_npy);
    const double av[] = {a->scale, a->lr, a->momentum, a->beta1, a->beta2, a->eps, a->weight_decay,
                         a->validation, a->min_lr, a->gamma};
    const double bv[] = {b->scale, b->lr, b->momentum, b->beta1, b->beta2, b->eps, b->weight_decay,
                         b->validation, b->min_lr, b->gamma};
    for (size_t i = 0; i < sizeof av / sizeof *av; i++) cr_expect_eq(bv[i], av[i], "setting %zu", i);
    const int64_t ai[] = {a->batch, a->epochs, a->shuffle, (int64_t)a->seed, a->schedule_epochs, a->every};
    const int64_t bi[] = {b->batch, b->epochs, b->shuffle, (int64_t)b->seed, b->schedule_epochs, b->every};
    for (size_t i = 0; i < sizeof ai / sizeof *ai; i++) cr_expect_eq(bi[i], ai[i], "integer setting %zu", i);
}

ParameterizedTestParameters(convert, yaml_to_yaml)
{
    static int idx[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    return cr_make_param_array(int, idx, sizeof idx / sizeof *idx);
}

/* Every node, param, constant and attribute survives: outputs and loss agree. */
ParameterizedTest(int *i, convert, yaml_to_yaml)
{
    nb_model *a = load_example_or_ops(examples[*i]);
    cr_assert_eq(nb_model_save_yaml(a, tmp_path("m.yaml"), NULL), NB_OK, "%s", nb_last_error());
    nb_model *b = load_model_file(tmp_path("m.yaml"));
    nb_node *outs[32];
    int n = 0;
    for (size_t k = 0; k < nb_model_num_outputs(a) && n < 31; k++) outs[n++] = nb_model_output(a, k);
    if (nb_model_loss(a)) {
        outs[n++] = nb_model_loss(a);
        cr_expect_str_eq(nb_node_name(nb_model_loss(b)), nb_node_name(nb_model_loss(a)));
    }
    cr_expect_eq(nb_model_num_params(b), nb_model_num_params(a));
    expect_same_train(nb_model_train(a), nb_model_train(b));
    cr_expect_eq(nb_graph_num_nodes(nb_model_graph(b)), nb_graph_num_nodes(nb_model_graph(a)));
    /* values written inline come back bit for bit */
    for (size_t k = 0; k < nb_model_num_trainable(a); k++) {
        nb_node *p = nb_model_param(a, k), *q = nb_graph_find(nb_model_graph(b), nb_node_name(p));
        cr_assert_not_null(q, "param '%s'", nb_node_name(p));
        nb_tensor *u = nb_param_value(p), *v = nb_param_value(q);
        size_t bytes = nb_tensor_numel(u) * nb_dtype_size(u->dtype);
        cr_assert_eq(nb_tensor_numel(v) * nb_dtype_size(v->dtype), bytes);
        cr_expect_eq(memcmp(u->data, v->data, bytes), 0, "param '%s' changed", nb_node_name(p));
    }
    expect_same_outputs(a, b, outs, n, 1e-6);
    nb_model_free(a);
    nb_model_free(b);
}

ParameterizedTestParameters(convert, yaml_to_onnx)
{
    /* transformer_block's embedding is left out: the importer refuses a Gather
     * whose indices have free dimensions */
    static int idx[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    return cr_make_param_array(int, idx, sizeof idx / sizeof *idx);
}

/* What the outputs need goes to ONNX; imported back, and from there to YAML,
 * it computes the same. */
ParameterizedTest(int *i, convert, yaml_to_onnx)
{
    nb_model *a = load_example_or_ops(examples[*i]);
    cr_assert_eq(nb_model_save_onnx(a, tmp_path("m.onnx")), NB_OK, "%s", nb_last_error());
    nb_model *b = load_model_file(tmp_path("m.onnx"));
    nb_node *outs[32];
    int n = 0;
    for (size_t k = 0; k < nb_model_num_outputs(a) && n < 32; k++) outs[n++] = nb_model_output(a, k);
    cr_assert_eq(nb_model_num_outputs(b), (size_t)n);
    expect_same_outputs(a, b, outs, n, 1e-5);
    /* the imported model to YAML (the importer's compositions, batchnorm's
     * scale among them, included): the same again */
    cr_assert_eq(nb_model_save_yaml(b, tmp_path("m2.yaml"), NULL), NB_OK, "%s", nb_last_error());
    nb_model *c = load_model_file(tmp_path("m2.yaml"));
    expect_same_outputs(a, c, outs, n, 1e-5);
    nb_model_free(a);
    nb_model_free(b);
    nb_model_free(c);
}

/* An f64 model's params and constants are DOUBLE initializers. */
Test(convert, f64_model_to_onnx)
{
    nb_model *a = NULL;
    nb_diags d;
    nb_load_opts o = {.force_f64 = true};
    cr_assert_eq(nb_model_load_file(test_file("data/convert/ops.yaml"), &o, &a, &d), NB_OK);
    nb_diags_free(&d);
    cr_assert_eq(nb_model_save_onnx(a, tmp_path("m.onnx")), NB_OK, "%s", nb_last_error());
    nb_model *b = load_model_file(tmp_path("m.onnx"));
    cr_expect_eq(nb_model_dtype(b), NB_F64);
    cr_expect_eq(nb_node_dtype(nb_model_param(b, 0)), NB_F64);
    nb_node *outs[32];
    int n = 0;
    for (size_t k = 0; k < nb_model_num_outputs(a) && n < 32; k++) outs[n++] = nb_model_output(a, k);
    expect_same_outputs(a, b, outs, n, 1e-12);
    nb_model_free(a);
    nb_model_free(b);
}

/* The weights given with --weights are the initializers. */
Test(convert, yaml_to_onnx_with_weights)
{
    nb_model *a = load_example("mlp2.yaml");
    nb_graph *g = nb_model_graph(a);
    nb_tensor *W = nb_param_value(nb_model_param(a, 0));
    for (size_t k = 0; k < nb_tensor_numel(W); k++) ((float *)W->data)[k] = 0.25f;
    cr_assert_eq(nb_weights_save(g, tmp_path("w.safetensors"), NULL, 0), NB_OK);
    char onnx[1024];
    snprintf(onnx, sizeof onnx, "%s", tmp_path("m.onnx"));
    expect_tool_ok(TOOL("convert", test_file("../examples/models/mlp2.yaml"), "--weights",
                        tmp_path("w.safetensors"), "-o", onnx), "convert");
    nb_model *b = load_model_file(onnx);
    nb_node *p = nb_graph_find(nb_model_graph(b), nb_node_name(nb_model_param(a, 0)));
    cr_assert_not_null(p);
    nb_tensor *V = nb_param_value(p);
    for (size_t k = 0; k < nb_tensor_numel(V); k++) cr_assert_eq(((float *)V->data)[k], 0.25f);
    nb_model_free(a);
    nb_model_free(b);
}

/* ---- an imported model trains --------------------------------------------- */

static double loss_of(const char *yaml, const char *weights)
{
    char x[1100], t[1100];
    snprintf(x, sizeof x, "x=%s", tmp_path("x.npy"));
    snprintf(t, sizeof t, "t=%s", tmp_path("t.npy"));
    tool_result r = weights ? TOOL("run", yaml, "--weights", weights, "--in", x, "--in", t, "-o", tmp_path("o"))
                            : TOOL("run", yaml, "--in", x, "--in", t, "-o", tmp_path("o"));
    expect_tool_ok(r, "run");
    nb_tensor l = read_npy_f64(tmp_path("o/loss.npy"));
    double v = ((double *)l.data)[0];
    nb_tensor_free(&l);
    return v;
}

Test(convert, imported_mlp_trains_after_adding_a_loss)
{
    char yaml[1024], w[1024];
    snprintf(yaml, sizeof yaml, "%s", tmp_path("m.yaml"));
    snprintf(w, sizeof w, "%s", tmp_path("w.safetensors"));
    expect_tool_ok(TOOL("convert", test_file("../examples/onnx/mlp.onnx"), "-o", yaml), "convert");
    /* 200 samples of 784 features; the class is which of 10 blocks of features sums highest */
    enum { S = 200, F = 784, K = 10 };
    double *x = malloc(S * F * sizeof *x);
    int32_t t[S];
    fill_random(x, S * F, 5);
    for (int s = 0; s < S; s++) {
        double best = -1e300;
        for (int k = 0; k < K; k++) {
            double sum = 0;
            for (int f = k * 78; f < (k + 1) * 78; f++) sum += x[s * F + f];
            if (sum > best) best = sum, t[s] = k;
        }
    }
    write_npy(tmp_path("x.npy"), NB_F32, 2, (int64_t[]){S, F}, x);
    write_npy_i32(tmp_path("t.npy"), 1, (int64_t[]){S}, t);
    free(x);
    /* the user's edit: a label input, a loss node, a train section */
    size_t len;
    char *text = read_text(yaml, &len);
    char *nodes_end = strstr(text, "outputs: [");
    char *inputs = strstr(text, "inputs:\n");
    cr_assert(nodes_end && inputs && inputs < nodes_end);
    size_t cap = len + 1024;
    char *edited = malloc(cap);
    int at = (int)(inputs - text) + 8;
    snprintf(edited, cap,
             "%.*s  t: {shape: [N], dtype: i32}\n%.*s"
             "  - {name: loss, op: softmax_cross_entropy, in: [\"y\", t]}\n"
             "outputs: [\"y\"]\nloss: loss\n"
             "train:\n  data: {format: npy, train: {x: x.npy, t: t.npy}}\n"
             "  batch: 20\n  epochs: 1\n  shuffle: false\n  optimizer: {type: adam, lr: 0.005}\n",
             at, text, (int)(nodes_end - text) - at, text + at);
    write_text(yaml, edited);
    free(text);
    free(edited);
    double before = loss_of(yaml, NULL);
    expect_tool_ok(TOOL("train", yaml, "--save", w), "train");
    double after = loss_of(yaml, w);
    cr_log_info("loss before %g, after one epoch %g", before, after);
    cr_expect_lt(after, before * 0.95, "loss %g before, %g after one epoch", before, after);
}

/* ---- errors ----------------------------------------------------------------- */

static void expect_tool_error(tool_result r, const char *part)
{
    cr_expect_eq(r.status, 2, "exit %d", r.status);
    assert_has(r.err, part);
    tool_result_free(&r);
}

Test(convert, op_without_onnx_writer_names_the_node_and_writes_nothing)
{
    write_text(tmp_path("m.yaml"), "nabla: 1\ninputs: {a: [N, 3], b: [N, 3]}\n"
                                   "nodes:\n  - {name: err, op: mse, in: [a, b]}\noutputs: [err]\n");
    const char *out = tmp_path("m.onnx");
    expect_tool_error(TOOL("convert", tmp_path("m.yaml"), "-o", out), "node 'err' (mse): unsupported");
    cr_expect_neq(access(out, F_OK), 0, "nothing is written");
    /* through the API: the thread's message */
    nb_model *m = load_model_file(tmp_path("m.yaml"));
    cr_expect_eq(nb_model_save_onnx(m, out), NB_ERR_FORMAT);
    assert_has(nb_last_error(), "node 'err' (mse): unsupported");
    nb_model_free(m);
}

Test(convert, softplus_beta_has_no_onnx_form)
{
    write_text(tmp_path("m.yaml"), "nabla: 1\ninputs: {a: [3]}\n"
                                   "nodes:\n  - {name: s, op: softplus, in: [a], beta: 2}\n");
    expect_tool_error(TOOL("convert", tmp_path("m.yaml"), "-o", tmp_path("m.onnx")),
                      "node 's' (softplus): unsupported attribute beta = 2");
}

Test(convert, bad_output_extension_and_missing_output)
{
    const char *model = test_file("../examples/models/mlp2.yaml");
    expect_tool_error(TOOL("convert", model, "-o", tmp_path("m.txt")), "extension must be .yaml, .yml or .onnx");
    expect_tool_error(TOOL("convert", model), "needs -o");
    expect_tool_error(TOOL("convert", "-o", tmp_path("m.yaml")), "needs one MODEL");
    cr_expect_eq(tmp_count_files(), 0, "nothing is written");
}

/* Names that YAML would read as numbers or booleans are quoted, and so is the
 * model's name, escaped; an optional
 * float attribute given as 0 (clip's min) is kept, absent ones stay absent. */
Test(convert, yaml_names_quoted_and_attributes_kept)
{
    nb_graph *g;
    nb_model *a = load_ok("nabla: 1\nname: \"a \\\"q\\\" \\\\ b\"\ninputs: {x: [2, 3]}\n"
                          "params: {\"17\": {shape: [3], init: {values: [1, -2, 3]}}}\n"
                          "nodes:\n"
                          "  - {name: \"true\", op: add, in: [x, \"17\"]}\n"
                          "  - {name: c, op: clip, in: [\"true\"], min: 0}\n"
                          "  - {name: \"1e3\", op: sum, in: [c], axis: [0, 1], keepdims: true}\n"
                          "outputs: [c, \"1e3\"]\n");
    cr_assert_eq(nb_model_save_yaml(a, tmp_path("m.yaml"), NULL), NB_OK, "%s", nb_last_error());
    char *text = read_text(tmp_path("m.yaml"), NULL);
    assert_has(text, "\"17\": {shape: [3], init: {values: [1, -2, 3]}}");
    assert_has(text, "op: clip, in: [\"true\"], min: 0}");
    assert_has(text, "axis: [0, 1], keepdims: true}");
    free(text);
    nb_model *b = load_model_file(tmp_path("m.yaml"));
    g = nb_model_graph(b);
    cr_expect_str_eq(nb_model_name(b), "a \"q\" \\ b");
    cr_expect_eq(nb_node_attr(nb_graph_find(g, "c"), "min")->n, 1);
    cr_expect_eq(nb_node_attr(nb_graph_find(g, "c"), "max")->n, 0);
    nb_node *outs[] = {nb_model_output(a, 0), nb_model_output(a, 1)};
    expect_same_outputs(a, b, outs, 2, 0);
    nb_model_free(a);
    nb_model_free(b);
}

/* An ONNX model whose output is computed when it is loaded (Shape of a
 * fixed-size input, made with onnx.helper: Shape(x [2, 3]) -> y) has no op
 * node, which a model file cannot say: an error, nothing written. */
Test(convert, model_without_op_nodes_is_refused)
{
    expect_tool_error(TOOL("convert", test_file("data/convert/shape_only.onnx"), "-o", tmp_path("m.yaml")),
                      "the model has no op node");
    cr_expect_eq(tmp_count_files(), 0, "nothing is written");
}

/* scale and sign, which the importer builds (BatchNormalization, Sign), are
 * model-file ops: an imported batchnorm converts to YAML. */
Test(convert, imported_scale_and_sign_are_written)
{
    write_text(tmp_path("m.yaml"), "nabla: 1\ninputs: {x: [4]}\nnodes:\n"
                                   "  - {name: s, op: scale, in: [x], alpha: 2, beta: -1}\n"
                                   "  - {name: y, op: sign, in: [s]}\n");
    nb_model *a = load_model_file(tmp_path("m.yaml"));
    cr_assert_eq(nb_model_save_yaml(a, tmp_path("n.yaml"), NULL), NB_OK, "%s", nb_last_error());
    char *text = read_text(tmp_path("n.yaml"), NULL);
    assert_has(text, "{name: s, op: scale, in: [x], alpha: 2, beta: -1}");
    assert_has(text, "op: sign, in: [s]}");
    free(text);
    nb_model_free(a);
}

/* A train section of format npy, with the settings the examples do not use. */
Test(convert, train_section_npy_written_back)
{
    nb_model *a = load_ok("nabla: 1\ninputs: {x: [N, 3], \"1t\": {shape: [N], dtype: i32}}\n"
                          "nodes:\n  - {name: y, op: matmul, in: [x, x], transpose_b: true}\n"
                          "train:\n  data: {format: npy, train: {x: \"x a.npy\", \"1t\": t.npy},\n"
                          "         test: {x: \"x\\\"b.npy\", \"1t\": t2.npy}, scale: 0.5}\n"
                          "  batch: 7\n  epochs: 3\n  shuffle: false\n  seed: 11\n  validation: 0.25\n"
                          "  optimizer: {type: adagrad, lr: 0.03, eps: 1e-7, weight_decay: 0.001}\n"
                          "  schedule: {type: step, every: 2, gamma: 0.5}\n");
    cr_assert_eq(nb_model_save_yaml(a, tmp_path("m.yaml"), NULL), NB_OK, "%s", nb_last_error());
    nb_model *b = load_model_file(tmp_path("m.yaml"));
    expect_same_train(nb_model_train(a), nb_model_train(b));
    cr_expect_str_eq(nb_model_train(b)->npy_train[0], "x a.npy");
    cr_expect_str_eq(nb_model_train(b)->npy_test[0], "x\"b.npy");
    cr_expect_str_eq(nb_model_train(b)->npy_inputs[1], "1t");
    nb_model_free(a);
    nb_model_free(b);
}

/* ---- what convert may replace (tools/output.c) ---------------------------- */

static void expect_tool_fails(tool_result r, const char *why, const char *what)
{
    cr_expect_neq(r.status, 0, "%s: succeeded", what);
    cr_expect(strstr(r.err, why), "%s: stderr '%s' lacks '%s'", what, r.err, why);
    tool_result_free(&r);
}

static void expect_file_text(const char *path, const char *want)
{
    char *text = read_text(path, NULL);
    cr_expect_str_eq(text, want, "%s was changed", path);
    free(text);
}

/* The `format` of a weights file's metadata ("" when it has none). */
static const char *weights_format(const char *path, char *buf, size_t cap)
{
    nb_tensor_set s;
    cr_assert_eq(nb_tensors_read_meta(path, &s), NB_OK, "%s", nb_last_error());
    snprintf(buf, cap, "%s", "");
    for (size_t i = 0; i < s.n_meta; i++)
        if (!strcmp(s.meta_keys[i], "format")) snprintf(buf, cap, "%s", s.meta_vals[i]);
    nb_tensor_set_free(&s);
    return buf;
}

Test(convert, existing_output_replaced_only_with_force)
{
    const char *mlp = test_file("../examples/onnx/mlp.onnx");
    char out[1024], w[1024];
    snprintf(out, sizeof out, "%s", tmp_path("m.yaml"));
    snprintf(w, sizeof w, "%s", tmp_path("w.safetensors"));
    write_text(out, "mine");
    expect_tool_fails(TOOL("convert", mlp, "-o", out), "exists: give --force to replace it", "model file");
    expect_file_text(out, "mine");
    /* a weights file nabla did not write: refused before anything is written */
    write_text(w, "theirs");
    expect_tool_fails(TOOL("convert", mlp, "-o", tmp_path("n.yaml"), "--weights", w),
                      "is not a nabla checkpoint or weights file", "weights file");
    expect_file_text(w, "theirs");
    cr_expect_neq(access(tmp_path("n.yaml"), F_OK), 0, "n.yaml written although the weights were refused");
    expect_tool_ok(TOOL("convert", mlp, "-o", out, "--weights", w, "--force"), "with --force");
    char *text = read_text(out, NULL);
    assert_has(text, "init: zeros");
    free(text);
}

/* The weights file convert writes is nabla's (nabla-weights-1): the next
 * convert replaces it without --force; the model file still needs it. */
Test(convert, weights_written_are_nabla_s_and_replaced)
{
    const char *mlp = test_file("../examples/onnx/mlp.onnx");
    char w[1024], fmt[64];
    snprintf(w, sizeof w, "%s", tmp_path("w.safetensors"));
    expect_tool_ok(TOOL("convert", mlp, "-o", tmp_path("a.yaml"), "--weights", w), "first");
    cr_expect_str_eq(weights_format(w, fmt, sizeof fmt), "nabla-weights-1");
    expect_tool_ok(TOOL("convert", mlp, "-o", tmp_path("b.yaml"), "--weights", w), "weights again");
    expect_tool_fails(TOOL("convert", mlp, "-o", tmp_path("a.yaml"), "--weights", w), "give --force",
                      "model file again");
    /* .npz too (the metadata in the archive comment) */
    expect_tool_ok(TOOL("convert", mlp, "-o", tmp_path("c.yaml"), "--weights", tmp_path("w.npz")), "npz");
    cr_expect_str_eq(weights_format(tmp_path("w.npz"), fmt, sizeof fmt), "nabla-weights-1");
}

/* A FIFO or a symbolic link is never replaced, --force or not. */
Test(convert, fifo_and_symlink_never_replaced)
{
    const char *mlp = test_file("../examples/onnx/mlp.onnx");
    cr_assert_eq(mkfifo(tmp_path("fifo.yaml"), 0600), 0);
    write_text(tmp_path("real.safetensors"), "mine");
    cr_assert_eq(symlink(tmp_path("real.safetensors"), tmp_path("link.safetensors")), 0);
    cr_assert_eq(symlink(tmp_path("real.safetensors"), tmp_path("link.onnx")), 0);
    expect_tool_fails(TOOL("convert", mlp, "-o", tmp_path("fifo.yaml"), "--force"), "is a FIFO (named pipe)",
                      "fifo");
    expect_tool_fails(TOOL("convert", mlp, "-o", tmp_path("n.yaml"), "--weights", tmp_path("link.safetensors"),
                           "--force"),
                      "is a symbolic link", "weights link");
    expect_tool_fails(TOOL("convert", mlp, "-o", tmp_path("link.onnx"), "--force"), "is a symbolic link",
                      "onnx link");
    struct stat sb;
    cr_expect(lstat(tmp_path("fifo.yaml"), &sb) == 0 && S_ISFIFO(sb.st_mode), "the FIFO is still one");
    cr_expect(lstat(tmp_path("link.onnx"), &sb) == 0 && S_ISLNK(sb.st_mode), "the link is still one");
    expect_file_text(tmp_path("real.safetensors"), "mine");
}

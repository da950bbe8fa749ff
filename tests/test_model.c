/* The YAML model loader: the examples of model-format.md, the conformance
 * models, layer expansion, the C API equivalence and the YAML 1.2 core schema.
 * Errors and the train section are in test_model_errors.c. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---- the examples of model-format.md -------------------------------- */

static const char *complete_example =
    "nabla: 1                      # format version, required\n"
    "name: fashion-mlp             # optional; shown in diagrams and logs\n"
    "dtype: f32                    # f32 (default) or f64, for params and activations\n"
    "seed: 7                       # seed for parameter initialisation (default 0)\n"
    "\n"
    "inputs:                       # tensors fed at run time\n"
    "  x: [N, 784]                 # N is a free dimension, bound when data is fed\n"
    "  t: {shape: [N], dtype: i32} # class labels\n"
    "\n"
    "params:                       # trainable tensors\n"
    "  W1: {shape: [784, 128], init: he}\n"
    "  b1: {shape: [128], init: zeros}\n"
    "  W2: {shape: [128, 10], init: xavier}\n"
    "  b2: {shape: [10], init: zeros}\n"
    "\n"
    "nodes:                        # each node: name, op, in, and the op's attributes\n"
    "  - {name: h,      op: matmul, in: [x, W1]}\n"
    "  - {name: hb,     op: add,    in: [h, b1]}      # b1 broadcasts over N\n"
    "  - {name: a,      op: relu,   in: [hb]}\n"
    "  - {name: logits, op: matmul, in: [a, W2]}\n"
    "  - {name: y,      op: add,    in: [logits, b2]}\n"
    "  - {name: loss,   op: softmax_cross_entropy, in: [y, t]}\n"
    "\n"
    "outputs: [y]                  # what eval/predict report (default: the last node)\n"
    "loss: loss                    # scalar node that train minimises and gradcheck checks\n"
    "\n"
    "train:                        # optional; command-line flags override each key\n"
    "  data:\n"
    "    format: idx               # IDX files as MNIST/Fashion-MNIST ship them, raw or .gz\n"
    "    train: {images: train-images-idx3-ubyte.gz, labels: train-labels-idx1-ubyte.gz}\n"
    "    test:  {images: t10k-images-idx3-ubyte.gz,  labels: t10k-labels-idx1-ubyte.gz}\n"
    "    feed:  {x: images, t: labels}\n"
    "    scale: 0.00392156862745098   # multiply pixels by this (1/255)\n"
    "  batch: 64\n"
    "  epochs: 5\n"
    "  shuffle: true\n"
    "  seed: 1                     # shuffling and dropout\n"
    "  optimizer: {type: adam, lr: 0.001}\n";

static void check_example_train(const nb_train_cfg *t)
{
    cr_expect(t->present);
    cr_expect_str_eq(t->format, "idx");
    cr_expect_str_eq(t->train_images, "train-images-idx3-ubyte.gz");
    cr_expect_str_eq(t->train_labels, "train-labels-idx1-ubyte.gz");
    cr_expect_str_eq(t->test_images, "t10k-images-idx3-ubyte.gz");
    cr_expect_str_eq(t->test_labels, "t10k-labels-idx1-ubyte.gz");
    cr_expect_str_eq(t->images_input, "x");
    cr_expect_str_eq(t->labels_input, "t");
    cr_expect_eq(t->scale, 0.00392156862745098);
    cr_expect_eq(t->batch, 64);
    cr_expect_eq(t->epochs, 5);
    cr_expect(t->shuffle);
    cr_expect_eq(t->seed, 1);
    cr_expect_str_eq(t->optimizer, "adam");
    cr_expect_eq(t->lr, 0.001);
    cr_expect_eq(t->eps, 1e-8);
    cr_expect_eq(t->validation, 0);
}

Test(model_spec, complete_example)
{
    nb_model *m = load_ok(complete_example);
    nb_graph *g = nb_model_graph(m);
    cr_expect_str_eq(nb_model_name(m), "fashion-mlp");
    cr_expect_eq(nb_model_dtype(m), NB_F32);
    cr_expect_eq(nb_model_seed(m), 7);
    check_node(g, "x", "input", "[N, 784]");
    check_node(g, "t", "input", "[N]");
    cr_expect_eq(nb_node_dtype(nb_graph_find(g, "t")), NB_I32);
    check_node(g, "W1", "param", "[784, 128]");
    check_node(g, "b2", "param", "[10]");
    check_node(g, "h", "matmul", "[N, 128]");
    check_node(g, "hb", "add", "[N, 128]");
    check_node(g, "a", "relu", "[N, 128]");
    check_node(g, "logits", "matmul", "[N, 10]");
    check_node(g, "y", "add", "[N, 10]");
    check_node(g, "loss", "softmax_cross_entropy", "[]");
    cr_expect_eq(nb_model_num_inputs(m), 2);
    cr_expect_eq(nb_model_num_params(m), 4);
    cr_assert_eq(nb_model_num_outputs(m), 1);
    cr_expect_str_eq(nb_node_name(nb_model_output(m, 0)), "y");
    cr_expect_str_eq(nb_node_name(nb_model_loss(m)), "loss");
    check_example_train(nb_model_train(m));
    nb_model_free(m);
}

/* The same example with the layer-free ops of today: the train section and
 * everything around the nodes are read the same way. */
Test(model_spec, complete_example_train_section)
{
    char *yaml = strdup(complete_example);
    char *nodes = strstr(yaml, "nodes:"), *outputs = strstr(yaml, "outputs:");
    const char *mine = "nodes:\n"
                       "  - {name: xs, op: sum, in: [x], axis: 1}\n"
                       "  - {name: y,  op: mean, in: [xs]}\n"
                       "  - {name: loss, op: abs, in: [y]}\n";
    size_t n = strlen(mine);
    cr_assert(nodes && outputs && (size_t)(outputs - nodes) >= n);
    memset(nodes, '\n', (size_t)(outputs - nodes));
    memcpy(nodes, mine, n);
    nb_model *m = load_ok(yaml);
    check_example_train(nb_model_train(m));
    cr_expect_eq(nb_param_value(nb_graph_find(nb_model_graph(m), "W1"))->dtype, NB_F32);
    nb_model_free(m);
    free(yaml);
}

static const char *layer_snippet =
    "nabla: 1\n"
    "inputs:\n"
    "  x: [N, 1, 28, 28]\n"
    "  t: {shape: [N], dtype: i32}\n"
    "nodes:\n"
    "  - {name: c1,  layer: conv2d, in: [x], filters: 30, size: 5, activation: relu}\n"
    "  - {name: p1,  op: max_pool2d, in: [c1], size: 2}\n"
    "  - {name: f1,  op: flatten, in: [p1]}\n"
    "  - {name: fc1, layer: dense, in: [f1], units: 100, activation: relu}\n"
    "  - {name: y,   layer: dense, in: [fc1], units: 10}\n"
    "  - {name: loss, op: softmax_cross_entropy, in: [y, t]}\n"
    "outputs: [y]\n"
    "loss: loss\n";

static void check_layer_snippet(nb_model *m)
{
    nb_graph *g = nb_model_graph(m);
    const char *order[] = {"x", "t", "c1.W", "c1.b", "c1.conv", "c1.bias", "c1.add", "c1", "p1", "f1", "fc1.W",
                           "fc1.b", "fc1.matmul", "fc1.add", "fc1", "y.W", "y.b", "y.matmul",
                           "y", "loss"};
    cr_assert_eq(nb_graph_num_nodes(g), sizeof order / sizeof order[0]);
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        cr_expect_str_eq(nb_node_name(nb_graph_node(g, i)), order[i], "node %zu", i);
    check_node(g, "c1.W", "param", "[30, 1, 5, 5]");
    check_node(g, "c1.b", "param", "[30]");
    check_node(g, "c1.conv", "conv2d", "[N, 30, 24, 24]");
    check_node(g, "c1", "relu", "[N, 30, 24, 24]");
    check_node(g, "p1", "max_pool2d", "[N, 30, 12, 12]");
    check_node(g, "f1", "flatten", "[N, 4320]");
    check_node(g, "fc1.W", "param", "[4320, 100]");
    check_node(g, "fc1.b", "param", "[100]");
    check_node(g, "fc1.matmul", "matmul", "[N, 100]");
    check_node(g, "fc1.add", "add", "[N, 100]");
    check_node(g, "fc1", "relu", "[N, 100]");
    check_node(g, "y.matmul", "matmul", "[N, 10]");
    check_node(g, "y", "add", "[N, 10]");
    /* the conv bias is added as [O, 1, 1], so it broadcasts over N, H, W */
    check_node(g, "c1.bias", "reshape", "[30, 1, 1]");
    check_node(g, "c1.add", "add", "[N, 30, 24, 24]");
    cr_expect_str_eq(nb_node_name(nb_node_input(nb_graph_find(g, "c1.bias"), 0)), "c1.b");
    /* groups for diagrams */
    cr_expect_str_eq(nb_node_group(nb_graph_find(g, "c1.W")), "c1");
    cr_expect_str_eq(nb_node_group(nb_graph_find(g, "c1")), "c1");
    cr_expect_str_eq(nb_node_group(nb_graph_find(g, "fc1.add")), "fc1");
    cr_expect_null(nb_node_group(nb_graph_find(g, "p1")));
    cr_expect_eq(nb_model_num_params(m), 6);
    cr_expect_str_eq(nb_node_name(nb_model_param(m, 0)), "c1.W");
}

Test(model_spec, layer_snippet)
{
    nb_model *m = load_ok(layer_snippet);
    check_layer_snippet(m);
    nb_model_free(m);
}

/* The conv2d layer computes relu(conv2d(x, W, b)), bias per channel. */
Test(model_layers, conv_layer_matches_conv2d_with_bias)
{
    nb_model *m = load_ok("nabla: 1\ndtype: f64\ninputs: {x: [N, 2, 5, 5]}\nnodes:\n"
                          "  - {name: c, layer: conv2d, in: [x], filters: 3, size: 3, pad: 1,"
                          " activation: relu}\n");
    nb_graph *g = nb_model_graph(m);
    nb_node *b = nb_graph_find(g, "c.b"), *c = nb_graph_find(g, "c");
    double *bv = nb_param_value(b)->data;
    for (int i = 0; i < 3; i++) bv[i] = 0.5 * (i - 1);  /* a bias that matters per channel */
    nb_node *x = nb_model_input(m, 0);
    nb_node *ref = nb_relu(g, nb_conv2d(g, x, nb_graph_find(g, "c.W"), b, 1, 1));
    nb_plan *p = plan_new_ok(g, (nb_node *[]){c, ref}, 2);
    plan_bind_ok(p, (nb_bind[]){{"N", 2}}, 1);
    double *xs = nb_plan_input_buffer(p, x);
    for (int i = 0; i < 2 * 2 * 25; i++) xs[i] = ((i * 37) % 19) / 9.0 - 1;
    plan_run_ok(p);
    const double *got = nb_plan_get(p, c), *want = nb_plan_get(p, ref);
    for (int i = 0; i < 2 * 3 * 25; i++) cr_assert_float_eq(got[i], want[i], 1e-12, "element %d", i);
    nb_plan_free(p);
    nb_model_free(m);
}

/* ---- conformance models (tests/conformance) ------------------------- */

static nb_model *load_conformance(const char *name)
{
    return load_model_file(test_file("conformance/%s.yaml", name));
}

/* Every param of the model is in the case's weights.safetensors with the same
 * shape, and every tensor there is a param. */
static void check_weights(nb_model *m, const char *name)
{
    size_t len;
    char *buf = read_text(test_file("conformance/%s/weights.safetensors", name), &len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | (unsigned char)buf[i];
    cr_assert_leq(8 + hlen, len);
    json_error_t err;
    json_t *h = json_loadb(buf + 8, hlen, 0, &err);
    cr_assert_not_null(h, "%s", err.text);
    size_t tensors = 0;
    const char *key;
    json_t *val;
    json_object_foreach(h, key, val)
    {
        if (!strcmp(key, "__metadata__")) continue;
        tensors++;
        nb_node *p = nb_graph_find(nb_model_graph(m), key);
        cr_assert_not_null(p, "weights name '%s', which the model lacks", key);
        cr_expect_eq(nb_node_kind_of(p), NB_NODE_PARAM, "%s", key);
        json_t *shape = json_object_get(val, "shape");
        cr_assert_eq((int)json_array_size(shape), nb_node_rank(p), "rank of %s", key);
        for (int i = 0; i < nb_node_rank(p); i++)
            cr_expect_eq(json_integer_value(json_array_get(shape, (size_t)i)), nb_node_dim(p, i),
                         "%s dim %d", key, i);
    }
    cr_expect_eq(tensors, nb_model_num_params(m));
    json_decref(h);
    free(buf);
}

Test(model_conformance, mlp)
{
    nb_model *m = load_conformance("mlp");
    nb_graph *g = nb_model_graph(m);
    cr_expect_eq(nb_model_dtype(m), NB_F64);
    check_node(g, "h1", "relu", "[N, 5]");
    check_node(g, "h2", "sigmoid", "[N, 4]");
    check_node(g, "y", "add", "[N, 3]");
    check_node(g, "loss", "softmax_cross_entropy", "[]");
    check_weights(m, "mlp");
    nb_model_free(m);
}

Test(model_conformance, conv)
{
    nb_model *m = load_conformance("conv");
    nb_graph *g = nb_model_graph(m);
    check_node(g, "c", "conv2d", "[N, 3, 6, 6]");
    check_node(g, "mp", "max_pool2d", "[N, 3, 3, 3]");
    check_node(g, "ap", "avg_pool2d", "[N, 3, 1, 1]");
    check_node(g, "f", "flatten", "[N, 3]");
    check_node(g, "loss", "mse", "[]");
    check_weights(m, "conv");
    nb_model_free(m);
}

Test(model_conformance, broadcast)
{
    nb_model *m = load_conformance("broadcast");
    nb_graph *g = nb_model_graph(m);
    check_node(g, "s", "add", "[N, 3, 4]");
    check_node(g, "sm", "softmax", "[N, 3, 4]");
    check_node(g, "r1", "sum", "[N, 3, 1]");
    check_node(g, "t", "transpose", "[N, 4, 3]");
    check_node(g, "mx", "max", "[N, 3]");
    check_node(g, "loss", "add", "[]");
    cr_assert_eq(nb_model_num_outputs(m), 2);
    check_weights(m, "broadcast");
    nb_model_free(m);
}

/* The broadcast case's ops of today, as far as they go. */
Test(model_conformance, broadcast_prefix)
{
    char *yaml = read_text(test_file("conformance/broadcast.yaml"), NULL);
    char *cut = strstr(yaml, "  - {name: sm");
    cr_assert_not_null(cut);
    strcpy(cut, "outputs: [d]\n");
    nb_diags d;
    nb_model *m = load_yaml(yaml, &d);
    if (!m) print_diags(&d);
    cr_assert_not_null(m);
    nb_graph *g = nb_model_graph(m);
    check_node(g, "a", "input", "[N, 1, 4]");
    check_node(g, "s", "add", "[N, 3, 4]");
    check_node(g, "d", "div", "[N, 3, 4]");
    const double *gv = nb_param_value(nb_graph_find(g, "g"))->data;
    cr_expect(gv[0] == 0.5 && gv[1] == -1.0 && gv[2] == 2.0 && gv[3] == 0.25);
    nb_diags_free(&d);
    nb_model_free(m);
    free(yaml);
}

/* ---- layers --------------------------------------------------------- */

/* The values of a param the C API makes with the same rule and seed. */
static void expect_same_values(nb_graph *g, const char *name, nb_dtype dt, int rank,
                               const int64_t *shape, nb_init init)
{
    nb_graph *h = nb_graph_new();
    nb_node *want = nb_param(h, name, dt, rank, shape, init);
    cr_assert_not_null(want, "%s", nb_graph_error(h));
    nb_node *got = nb_graph_find(g, name);
    cr_assert_not_null(got, "no param '%s'", name);
    nb_tensor *a = nb_param_value(got), *b = nb_param_value(want);
    cr_assert_eq(a->dtype, b->dtype);
    cr_assert_eq(nb_tensor_bytes(a), nb_tensor_bytes(b));
    cr_expect(!memcmp(a->data, b->data, nb_tensor_bytes(a)), "values of '%s' differ", name);
    nb_graph_free(h);
}

Test(model_layers, dense_and_batchnorm)
{
    nb_model *m = load_ok("nabla: 1\n"
                          "seed: 5\n"
                          "inputs:\n"
                          "  x: [N, 6]\n"
                          "nodes:\n"
                          "  - {name: a, layer: dense, in: [x], units: 4}\n"
                          "  - {name: b, layer: dense, in: [a], units: 3, bias: false}\n"
                          "  - {name: c, layer: dense, in: [b], units: 2, bias: false,\n"
                          "     activation: tanh, init: {normal: 0.5}}\n"
                          "  - {name: d, layer: batchnorm, in: [c], eps: 0.001}\n");
    nb_graph *g = nb_model_graph(m);
    const char *order[] = {"x", "a.W", "a.b", "a.matmul", "a", "b.W", "b", "c.W", "c.matmul", "c",
                           "d.gamma", "d.beta", "d.running_mean", "d.running_var", "d"};
    cr_assert_eq(nb_graph_num_nodes(g), sizeof order / sizeof order[0]);
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        nb_node *n = nb_graph_node(g, i);
        cr_expect_str_eq(nb_node_name(n), order[i], "node %zu", i);
        char group[2] = {order[i][0], 0};
        if (i) cr_expect_str_eq(nb_node_group(n), group, "group of %s", order[i]);
    }
    check_node(g, "a", "add", "[N, 4]");
    check_node(g, "b", "matmul", "[N, 3]");
    check_node(g, "c", "tanh", "[N, 2]");
    check_node(g, "d", "batchnorm", "[N, 2]");
    check_node(g, "d.running_var", "param", "[2]");
    nb_node *d = nb_graph_find(g, "d");
    cr_expect_str_eq(nb_node_name(nb_node_input(d, 1)), "d.gamma");
    cr_expect_str_eq(nb_node_name(nb_node_input(d, 2)), "d.beta");
    cr_expect_float_eq(nb_node_attr(d, "eps")->f, 0.001, 1e-15);
    cr_expect_float_eq(nb_node_attr(d, "momentum")->f, 0.1, 1e-15);
    /* the running statistics are the op's state: its inputs 3 and 4, not trainable */
    cr_assert_eq(nb_node_num_inputs(d), 5);
    cr_expect_str_eq(nb_node_name(nb_node_input(d, 3)), "d.running_mean");
    cr_expect_str_eq(nb_node_name(nb_node_input(d, 4)), "d.running_var");
    cr_expect(nb_param_trainable(nb_graph_find(g, "d.gamma")));
    cr_expect_not(nb_param_trainable(nb_graph_find(g, "d.running_mean")));
    cr_expect_not(nb_param_trainable(nb_graph_find(g, "d.running_var")));
    cr_expect_not(nb_param_trainable(d), "a node is no param");
    /* every param is listed, the trainable ones first */
    cr_expect_eq(nb_model_num_params(m), 8);
    cr_expect_eq(nb_model_num_trainable(m), 6);
    const char *params[] = {"a.W", "a.b", "b.W", "c.W", "d.gamma", "d.beta", "d.running_mean",
                            "d.running_var"};
    for (size_t i = 0; i < 8; i++)
        cr_expect_str_eq(nb_node_name(nb_model_param(m, i)), params[i], "param %zu", i);
    expect_same_values(g, "a.W", NB_F32, 2, (int64_t[]){6, 4}, (nb_init){.kind = NB_INIT_HE, .seed = 5});
    expect_same_values(g, "a.b", NB_F32, 1, (int64_t[]){4}, (nb_init){.kind = NB_INIT_ZEROS});
    expect_same_values(g, "c.W", NB_F32, 2, (int64_t[]){3, 2},
                       (nb_init){.kind = NB_INIT_NORMAL, .a = 0.5, .seed = 5});
    expect_same_values(g, "d.gamma", NB_F32, 1, (int64_t[]){2}, (nb_init){.kind = NB_INIT_ONES});
    expect_same_values(g, "d.running_mean", NB_F32, 1, (int64_t[]){2}, (nb_init){.kind = NB_INIT_ZEROS});
    expect_same_values(g, "d.running_var", NB_F32, 1, (int64_t[]){2}, (nb_init){.kind = NB_INIT_ONES});
    /* later nodes may refer to a layer's params */
    nb_model_free(m);
}

Test(model_layers, conv2d_options)
{
    nb_model *m = load_ok("nabla: 1\n"
                          "dtype: f64\n"
                          "inputs:\n"
                          "  x: [N, 3, 8, 8]\n"
                          "nodes:\n"
                          "  - {name: c, layer: conv2d, in: [x], filters: 4, size: 3, stride: 2,\n"
                          "     pad: 1, bias: false, init: xavier}\n"
                          "  - {name: s, op: sum, in: [c.W]}\n");
    nb_graph *g = nb_model_graph(m);
    check_node(g, "c.W", "param", "[4, 3, 3, 3]");
    check_node(g, "c", "conv2d", "[N, 4, 4, 4]");
    cr_expect_null(nb_graph_find(g, "c.b"));
    nb_node *c = nb_graph_find(g, "c");
    cr_expect_eq(nb_node_num_inputs(c), 2);
    cr_expect_eq(nb_node_attr(c, "stride")->i[0], 2);
    cr_expect_eq(nb_node_attr(c, "pad")->i[0], 1);
    expect_same_values(g, "c.W", NB_F64, 4, (int64_t[]){4, 3, 3, 3}, (nb_init){.kind = NB_INIT_XAVIER});
    cr_expect_str_eq(nb_node_name(nb_model_output(m, 0)), "s");
    nb_model_free(m);
}

Test(model_layers, errors)
{
    EXPECT_ERRORS("nabla: 1\n"
                  "inputs:\n"
                  "  x: [N, 6]\n"
                  "  i: [N, 1, 4, 4]\n"
                  "nodes:\n"
                  "  - {name: a, layer: dense, in: [x]}\n"
                  "  - {name: b, layer: dens, in: [x], units: 2}\n"
                  "  - {name: c, layer: dense, in: [x], units: 0, activation: relux}\n"
                  "  - {name: d, layer: dense, in: [x], unit: 3}\n"
                  "  - {name: e, layer: conv2d, in: [x], filters: 2, size: 3}\n"
                  "  - {name: f, layer: dense, in: [x, i], units: 2}\n"
                  "  - {name: g, layer: dense, in: [x], units: 2, init: {values: [1]}}\n"
                  "  - {name: h, layer: dense, op: neg, in: [x], units: 2}\n"
                  "  - {name: k, layer: dense, in: [x], units: 2, bias: yes}\n",
                  "m.yaml:6:5: node 'a': dense needs attribute 'units'",
                  "m.yaml:7:22: unknown layer 'dens' (did you mean 'dense'?)",
                  "m.yaml:8:45: 'units' must be >= 1; got 0",
                  "m.yaml:8:60: unknown activation 'relux' (did you mean 'relu'?)",
                  "m.yaml:9:5: node 'd': dense needs attribute 'units'",
                  "m.yaml:9:38: unknown key 'unit' (did you mean 'units'?)",
                  "m.yaml:10:5: node 'e': layer conv2d needs x [N, C, H, W]; x is [N, 6]",
                  "m.yaml:11:5: node 'f': layer dense takes 1 input, got 2",
                  "m.yaml:12:55: values has 1 number but g.W [6, 2] holds 12",
                  "m.yaml:13:15: a node has an op or a layer, not both",
                  "m.yaml:14:54: 'bias' must be true or false; got 'yes' (in YAML 1.2 yes/no/on/off "
                  "are strings)");
}

Test(model_layers, extensions)
{
    nb_model *m = load_ok("nabla: 1\n"
                          "inputs: {x: [N, 3]}\n"
                          "params:\n"
                          "  s: {shape: [1], init: {values: 2.5}}\n"
                          "nodes:\n"
                          "  - {name: a, op: mul, in: [x, s]}\n"
                          "  - {name: h, layer: dense, in: a, units: 2, activation: exp}\n"
                          "  - {name: r, op: neg, in: h}\n"
                          "outputs: h\n"
                          "train:\n");
    nb_graph *g = nb_model_graph(m);
    check_node(g, "h", "exp", "[N, 2]");
    check_node(g, "h.add", "add", "[N, 2]");
    cr_expect_eq(*(float *)nb_param_value(nb_graph_find(g, "s"))->data, 2.5f);
    cr_assert_eq(nb_model_num_outputs(m), 1);
    cr_expect_str_eq(nb_node_name(nb_model_output(m, 0)), "h");
    cr_expect(nb_model_train(m)->present);
    cr_expect_eq(nb_model_train(m)->batch, 100);
    nb_model_free(m);
}

/* ---- the loader builds what the C API builds ------------------------- */

static void expect_same_graph(nb_graph *a, nb_graph *b)
{
    cr_assert_eq(nb_graph_num_nodes(a), nb_graph_num_nodes(b));
    for (size_t i = 0; i < nb_graph_num_nodes(a); i++) {
        nb_node *x = nb_graph_node(a, i), *y = nb_graph_node(b, i);
        char sx[128], sy[128];
        cr_expect_str_eq(nb_node_name(x), nb_node_name(y), "node %zu", i);
        cr_expect_str_eq(nb_node_op(x), nb_node_op(y), "op of %s", nb_node_name(x));
        nb_node_shape_str(a, x, sx, sizeof sx);
        nb_node_shape_str(b, y, sy, sizeof sy);
        cr_expect_str_eq(sx, sy, "shape of %s", nb_node_name(x));
        cr_expect_eq(nb_node_dtype(x), nb_node_dtype(y), "dtype of %s", nb_node_name(x));
        cr_assert_eq(nb_node_num_inputs(x), nb_node_num_inputs(y));
        for (int j = 0; j < nb_node_num_inputs(x); j++)
            cr_expect_str_eq(nb_node_name(nb_node_input(x, j)), nb_node_name(nb_node_input(y, j)));
        const char *gx = nb_node_group(x), *gy = nb_node_group(y);
        cr_expect_str_eq(gx ? gx : "", gy ? gy : "", "group of %s", nb_node_name(x));
        if (nb_node_kind_of(x) == NB_NODE_PARAM) {
            nb_tensor *tx = nb_param_value(x), *ty = nb_param_value(y);
            cr_assert_eq(nb_tensor_bytes(tx), nb_tensor_bytes(ty));
            cr_expect(!memcmp(tx->data, ty->data, nb_tensor_bytes(tx)), "values of %s",
                      nb_node_name(x));
        }
    }
}

static nb_node *named(nb_graph *g, const char *op, const char *name, nb_node *a, nb_node *b,
                      const char *group)
{
    nb_node *in[2] = {a, b};
    nb_node *n = nb_op(g, op, name, in, b ? 2 : 1, NULL, 0);
    cr_assert_not_null(n, "%s", nb_graph_error(g));
    if (group) nb_node_set_group(g, n, group);
    return n;
}

Test(model_api, small_mlp_same_as_c_api)
{
    nb_model *m = load_ok("nabla: 1\n"
                          "dtype: f64\n"
                          "seed: 11\n"
                          "inputs:\n"
                          "  x: [N, 4]\n"
                          "  t: {shape: [N], dtype: i32}\n"
                          "params:\n"
                          "  W2: {shape: [5, 3], init: xavier}\n"
                          "  b2: {shape: [3], init: {uniform: [-0.1, 0.1]}}\n"
                          "nodes:\n"
                          "  - {name: h, layer: dense, in: [x], units: 5, activation: relu}\n"
                          "  - {name: z, op: matmul, in: [h, W2]}\n"
                          "  - {name: y, op: add, in: [z, b2]}\n"
                          "  - {name: loss, op: softmax_cross_entropy, in: [y, t]}\n"
                          "loss: loss\n");
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(4)});
    nb_node *t = nb_input(g, "t", NB_I32, 1, (nb_dim[]){NB_SYM("N")});
    nb_node *w2 = nb_param(g, "W2", NB_F64, 2, (int64_t[]){5, 3},
                           (nb_init){.kind = NB_INIT_XAVIER, .seed = 11});
    nb_node *b2 = nb_param(g, "b2", NB_F64, 1, (int64_t[]){3},
                           (nb_init){.kind = NB_INIT_UNIFORM, .a = -0.1, .b = 0.1, .seed = 11});
    nb_node *hw = nb_param(g, "h.W", NB_F64, 2, (int64_t[]){4, 5},
                           (nb_init){.kind = NB_INIT_HE, .seed = 11});
    nb_node *hb = nb_param(g, "h.b", NB_F64, 1, (int64_t[]){5}, NB_INIT(NB_INIT_ZEROS));
    nb_node_set_group(g, hw, "h");
    nb_node_set_group(g, hb, "h");
    nb_node *h = named(g, "matmul", "h.matmul", x, hw, "h");
    h = named(g, "add", "h.add", h, hb, "h");
    h = named(g, "relu", "h", h, NULL, "h");
    nb_node *y = named(g, "add", "y", named(g, "matmul", "z", h, w2, NULL), b2, NULL);
    named(g, "softmax_cross_entropy", "loss", y, t, NULL);
    expect_same_graph(nb_model_graph(m), g);
    nb_graph_free(g);
    nb_model_free(m);
}

/* The same with the ops every tree has, and seeds that matter. */
Test(model_api, same_as_c_api_with_builtin_ops)
{
    nb_model *m = load_ok("nabla: 1\n"
                          "seed: 123\n"
                          "inputs: {x: [B, 3]}\n"
                          "params:\n"
                          "  w: {shape: [3], init: {normal: 2}}\n"
                          "  v: {shape: [2, 3], init: he}\n"
                          "  c: {shape: [3], init: {constant: 1.5}}\n"
                          "  k: {shape: [2, 2], init: {values: [[1, 2], [3, 4]]}}\n"
                          "nodes:\n"
                          "  - {name: p, op: mul, in: [x, w]}\n"
                          "  - {name: q, op: pow, in: [p], exponent: 2}\n"
                          "  - {name: r, op: sum, in: [q], axis: [0, 1]}\n");
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 2, (nb_dim[]){NB_SYM("B"), NB_DIM(3)});
    nb_node *w = nb_param(g, "w", NB_F32, 1, (int64_t[]){3},
                          (nb_init){.kind = NB_INIT_NORMAL, .a = 2, .seed = 123});
    nb_param(g, "v", NB_F32, 2, (int64_t[]){2, 3}, (nb_init){.kind = NB_INIT_HE, .seed = 123});
    nb_param(g, "c", NB_F32, 1, (int64_t[]){3}, (nb_init){.kind = NB_INIT_CONSTANT, .a = 1.5});
    nb_param(g, "k", NB_F32, 2, (int64_t[]){2, 2},
             (nb_init){.kind = NB_INIT_VALUES, .values = (double[]){1, 2, 3, 4}, .n_values = 4});
    nb_node *p = named(g, "mul", "p", x, w, NULL);
    nb_node *q = nb_op(g, "pow", "q", &p, 1, (nb_attr[]){NB_AFLOAT("exponent", 2)}, 1);
    nb_attr axes = {.name = "axis", .type = NB_ATTR_INTS, .n = 2, .i = {0, 1}};
    nb_op(g, "sum", "r", &q, 1, &axes, 1);
    cr_assert_eq(nb_graph_status(g), NB_OK, "%s", nb_graph_error(g));
    expect_same_graph(nb_model_graph(m), g);
    cr_expect_eq(nb_node_attr(nb_graph_find(nb_model_graph(m), "r"), "axis")->n, 2);
    nb_graph_free(g);
    nb_model_free(m);

    /* another seed, other values */
    nb_model *m2 = load_ok("nabla: 1\nseed: 124\ninputs: {}\n"
                           "params: {w: {shape: [3], init: {normal: 2}}}\n"
                           "nodes: [{name: s, op: sum, in: [w]}]\n");
    nb_graph *g2 = nb_graph_new();
    nb_node *w2 = nb_param(g2, "w", NB_F32, 1, (int64_t[]){3},
                           (nb_init){.kind = NB_INIT_NORMAL, .a = 2, .seed = 123});
    cr_expect(memcmp(nb_param_value(nb_graph_find(nb_model_graph(m2), "w"))->data,
                     nb_param_value(w2)->data, 3 * sizeof(float)));
    nb_graph_free(g2);
    nb_model_free(m2);
}

Test(model_api, force_f64)
{
    const char *yaml = "nabla: 1\n"
                       "inputs:\n"
                       "  x: [N, 3]\n"
                       "  t: {shape: [N], dtype: i32}\n"
                       "  u: {shape: [3], dtype: f32}\n"
                       "params:\n"
                       "  w: {shape: [3], init: he}\n"
                       "nodes:\n"
                       "  - {name: y, op: mul, in: [x, w]}\n";
    nb_model *m = NULL;
    nb_diags d;
    nb_load_opts o = {.force_f64 = true};
    cr_assert_eq(nb_model_load_string(yaml, strlen(yaml), "m.yaml", &o, &m, &d), NB_OK);
    nb_graph *g = nb_model_graph(m);
    cr_expect_eq(nb_model_dtype(m), NB_F32);
    cr_expect_eq(nb_node_dtype(nb_graph_find(g, "x")), NB_F64);
    cr_expect_eq(nb_node_dtype(nb_graph_find(g, "u")), NB_F64);
    cr_expect_eq(nb_node_dtype(nb_graph_find(g, "t")), NB_I32);
    cr_expect_eq(nb_node_dtype(nb_graph_find(g, "y")), NB_F64);
    cr_expect_eq(nb_param_value(nb_graph_find(g, "w"))->dtype, NB_F64);
    cr_expect_str_eq(nb_model_dir(m), ".");
    nb_model_free(m);
}

/* An `op: batchnorm` node keeps its statistics as NODE.running_mean and
 * NODE.running_var (model-format.md, "Layers"): made by the op, listed after
 * the trainable params, and usable by later nodes. */
Test(model_layers, batchnorm_op_node_state)
{
    nb_model *m = load_ok("nabla: 1\n"
                          "inputs: {x: [N, 3, 4, 4]}\n"
                          "params:\n"
                          "  g: {shape: [3], init: ones}\n"
                          "  b: {shape: [3], init: zeros}\n"
                          "nodes:\n"
                          "  - {name: bn, op: batchnorm, in: [x, g, b], momentum: 0.3}\n"
                          "  - {name: f, op: flatten, in: [bn]}\n"
                          "  - {name: h, layer: dense, in: [f], units: 2}\n"
                          "  - {name: v, op: sum, in: [bn.running_var]}\n"
                          "outputs: [h, v]\n");
    nb_graph *g = nb_model_graph(m);
    check_node(g, "bn", "batchnorm", "[N, 3, 4, 4]");
    check_node(g, "bn.running_mean", "param", "[3]");
    check_node(g, "bn.running_var", "param", "[3]");
    nb_node *bn = nb_graph_find(g, "bn");
    cr_assert_eq(nb_node_num_inputs(bn), 5);
    cr_expect_eq(nb_node_input(bn, 4), nb_graph_find(g, "bn.running_var"));
    cr_expect_null(nb_node_group(nb_graph_find(g, "bn.running_mean")), "not a layer's");
    cr_expect_eq(nb_node_input(nb_graph_find(g, "v"), 0), nb_graph_find(g, "bn.running_var"));
    const char *params[] = {"g", "b", "h.W", "h.b", "bn.running_mean", "bn.running_var"};
    cr_assert_eq(nb_model_num_params(m), 6);
    cr_expect_eq(nb_model_num_trainable(m), 4);
    for (size_t i = 0; i < 6; i++) {
        cr_expect_str_eq(nb_node_name(nb_model_param(m, i)), params[i], "param %zu", i);
        cr_expect_eq(nb_param_trainable(nb_model_param(m, i)), i < 4, "param %zu", i);
    }
    float *var = nb_param_value(nb_graph_find(g, "bn.running_var"))->data;
    float *mean = nb_param_value(nb_graph_find(g, "bn.running_mean"))->data;
    for (int c = 0; c < 3; c++) cr_expect(var[c] == 1 && mean[c] == 0, "channel %d", c);
    nb_model_free(m);
}

Test(model_layers, batchnorm_errors)
{
    EXPECT_ERRORS("nabla: 1\n"
                  "inputs: {x: [N, 3], y: [N, M], z: [5]}\n"
                  "params:\n"
                  "  g: {shape: [3], init: ones}\n"
                  "  b: {shape: [4], init: zeros}\n"
                  "  c.running_mean: {shape: [3], init: zeros}\n"
                  "nodes:\n"
                  "  - {name: a, op: batchnorm, in: [x, g, g], eps: -1}\n"
                  "  - {name: c, op: batchnorm, in: [x, g, g]}\n"
                  "  - {name: d, op: batchnorm, in: [x, g, b]}\n"
                  "  - {name: e, op: batchnorm, in: [y, g, g]}\n"
                  "  - {name: f, layer: batchnorm, in: [y]}\n"
                  "  - {name: h, op: batchnorm, in: [z, g, g]}\n"
                  "  - {name: k, op: batchnorm, in: [x, g, g], momentum: 2}\n"
                  "  - {name: l, op: batchnorm, in: [x, g, g]}\n"
                  "  - {name: l.running_var, op: neg, in: [x]}\n"
                  "  - {name: m, op: dropout, in: [x]}\n"
                  "  - {name: n, op: dropout, in: [x], rate: 1}\n",
                  "m.yaml:8:5: node 'a': batchnorm needs eps >= 0; got -1",
                  "m.yaml:9:5: node 'c': batchnorm keeps its state as 'c.running_mean', a name "
                  "already taken",
                  "m.yaml:10:5: node 'd': batchnorm needs beta [3]; b is [4]",
                  "m.yaml:11:5: node 'e': batchnorm needs x [N, C, ...] with a fixed C; y is [N, M]",
                  "m.yaml:12:5: node 'f': layer batchnorm needs x [N, C, ...] with a fixed C; y is [N, M]",
                  "m.yaml:13:5: node 'h': batchnorm needs x [N, C, ...] of rank 2 or more; z is [5]",
                  "m.yaml:14:5: node 'k': batchnorm needs 0 <= momentum <= 1; got 2",
                  "m.yaml:16:12: duplicate name 'l.running_var' (first defined at line 15)",
                  "m.yaml:17:5: node 'm': dropout needs attribute 'rate'",
                  "m.yaml:18:5: node 'n': dropout needs 0 <= rate < 1; got 1");
}

/* The batchnorm layer builds what nb_batchnorm builds, with the layer's group. */
Test(model_layers, batchnorm_layer_matches_c_api)
{
    nb_model *m = load_ok("nabla: 1\ndtype: f64\ninputs: {x: [N, 2, 3]}\nnodes:\n"
                          "  - {name: bn, layer: batchnorm, in: [x], eps: 0.01}\n");
    nb_graph *h = nb_graph_new();
    nb_node *x = nb_input(h, "x", NB_F64, 3, (nb_dim[]){NB_SYM("N"), NB_DIM(2), NB_DIM(3)});
    nb_node *gamma = nb_param(h, "bn.gamma", NB_F64, 1, (int64_t[]){2}, NB_INIT(NB_INIT_ONES));
    nb_node *beta = nb_param(h, "bn.beta", NB_F64, 1, (int64_t[]){2}, NB_INIT(NB_INIT_ZEROS));
    nb_node *bn = nb_op(h, "batchnorm", "bn", (nb_node *[]){x, gamma, beta}, 3,
                        (nb_attr[]){NB_AFLOAT("eps", 0.01)}, 1);
    cr_assert_not_null(bn, "%s", nb_graph_error(h));
    for (size_t i = 1; i < nb_graph_num_nodes(h); i++) nb_node_set_group(h, nb_graph_node(h, i), "bn");
    expect_same_graph(nb_model_graph(m), h);
    nb_graph_free(h);
    nb_model_free(m);
}

/* ---- YAML ----------------------------------------------------------- */

Test(model_yaml, yes_is_a_string)
{
    nb_model *m = load_ok("nabla: 1\nname: yes\ninputs: {x: [2]}\nnodes: [{name: no, op: neg, in: [x]}]\n");
    cr_expect_str_eq(nb_model_name(m), "yes");
    cr_expect_not_null(nb_graph_find(nb_model_graph(m), "no"));
    nb_model_free(m);
    EXPECT_ERROR("nabla: 1\ninputs: {x: [2]}\nnodes: [{name: s, op: sum, in: [x], keepdims: on}]\n",
                 "m.yaml:3:47: 'keepdims' must be true or false; got 'on' (in YAML 1.2 "
                 "yes/no/on/off are strings)");
}

Test(model_yaml, core_schema)
{
    nb_model *m = load_ok("nabla: 1\n"
                          "seed: 0x1F\n"
                          "inputs: {x: [2, 0o3]}\n"
                          "params: ~\n"
                          "nodes:\n"
                          "  - {name: a, op: sum, in: [x], axis: +1, keepdims: True}\n"
                          "  - {name: b, op: sum, in: [x], keepdims: FALSE}\n"
                          "  - {name: c, op: pow, in: [x], exponent: .5}\n"
                          "  - {name: d, op: pow, in: [x], exponent: 1e1}\n"
                          "  - {name: e, op: pow, in: [x], exponent: -.inf}\n"
                          "  - {name: f, op: pow, in: [x], exponent: .NaN}\n"
                          "  - {name: \"1\", op: pow, in: [x], exponent: 007}\n"
                          "  - {name: 'true', op: neg, in: [\"1\"]}\n"
                          "outputs: [a, \"true\"]\n");
    nb_graph *g = nb_model_graph(m);
    cr_expect_eq(nb_model_seed(m), 31);
    check_node(g, "x", "input", "[2, 3]");
    check_node(g, "a", "sum", "[2, 1]");
    check_node(g, "b", "sum", "[]");
    cr_expect_eq(nb_node_attr(nb_graph_find(g, "c"), "exponent")->f, 0.5);
    cr_expect_eq(nb_node_attr(nb_graph_find(g, "d"), "exponent")->f, 10);
    cr_expect_eq(nb_node_attr(nb_graph_find(g, "e"), "exponent")->f, -INFINITY);
    cr_expect(isnan(nb_node_attr(nb_graph_find(g, "f"), "exponent")->f));
    cr_expect_eq(nb_node_attr(nb_graph_find(g, "1"), "exponent")->f, 7);
    check_node(g, "true", "neg", "[2, 3]");
    cr_expect_eq(nb_model_num_outputs(m), 2);
    nb_model_free(m);
    /* quoted scalars are strings, plain ones are resolved */
    EXPECT_ERRORS("nabla: 1\n"
                  "seed: \"5\"\n"
                  "name: 1.5\n"
                  "inputs: {x: [2]}\n"
                  "nodes: [{name: true, op: neg, in: [x]}, {name: n, op: pow, in: [x], exponent: '2'}]\n",
                  "m.yaml:2:7: 'seed' must be an integer; got '5'",
                  "m.yaml:3:7: 'name' must be a string; got '1.5' (quote it to use it as text)",
                  "m.yaml:5:16: a node name must be a string; got 'true' (quote it to use it as text)",
                  "m.yaml:5:79: 'exponent' must be a number; got '2'");
}

Test(model_yaml, anchors_and_aliases)
{
    nb_model *m = load_ok("nabla: 1\n"
                          "inputs:\n"
                          "  x: &shape [N, 3]\n"
                          "  y: *shape\n"
                          "params:\n"
                          "  a: &spec {shape: [3], init: ones}\n"
                          "  b: *spec\n"
                          "nodes:\n"
                          "  - {name: s, op: add, in: &both [x, y]}\n"
                          "  - {name: t, op: mul, in: *both}\n"
                          "  - {name: u, op: mul, in: [t, b]}\n");
    nb_graph *g = nb_model_graph(m);
    check_node(g, "y", "input", "[N, 3]");
    check_node(g, "t", "mul", "[N, 3]");
    cr_expect_str_eq(nb_node_name(nb_node_input(nb_graph_find(g, "t"), 1)), "y");
    cr_expect_eq(((float *)nb_param_value(nb_graph_find(g, "b"))->data)[2], 1.0f);
    nb_model_free(m);
}

Test(model_yaml, merge_keys_are_rejected)
{
    EXPECT_ERRORS("nabla: 1\n"
                  "inputs: {x: [3]}\n"
                  "params:\n"
                  "  base: &base {shape: [3], init: ones}\n"
                  "  w: {<<: *base, init: zeros}\n"
                  "nodes: [{name: s, op: add, in: [x, w]}]\n",
                  "m.yaml:5:6: param 'w' needs a shape",
                  "m.yaml:5:7: merge keys ('<<') are not supported; write the keys out");
}

Test(model_yaml, duplicate_keys)
{
    EXPECT_ERRORS("nabla: 1\n"
                  "inputs: {x: [3], x: [4]}\n"
                  "nodes:\n"
                  "  - {name: s, op: neg, in: [x], name: t}\n"
                  "seed: 1\n"
                  "seed: 2\n",
                  "m.yaml:2:18: duplicate key 'x'",
                  "m.yaml:4:33: duplicate key 'name'",
                  "m.yaml:6:1: duplicate key 'seed'");
}

Test(model_yaml, syntax_error)
{
    EXPECT_ERROR("nabla: 1\n"
                 "inputs:\n"
                 "  x: [N, 3\n"
                 "nodes: []\n",
                 "m.yaml:4:6: invalid YAML: did not find expected ',' or ']' (while parsing a flow "
                 "sequence at line 3)");
    EXPECT_ERROR("nabla: 1\n"
                 "inputs:\n"
                 "  x: [3]\n"
                 " y: [3]\n",
                 "m.yaml:4:2: invalid YAML: did not find expected key (while parsing a block "
                 "mapping at line 1)");
}

Test(model_yaml, one_document)
{
    EXPECT_ERROR("nabla: 1\ninputs: {x: [1]}\nnodes: [{name: y, op: neg, in: [x]}]\n---\nnabla: 1\n",
                 "m.yaml:4:1: a model file holds one YAML document; another starts here");
    EXPECT_ERROR("", "m.yaml:1:1: the file is empty; a model needs 'nabla: 1', inputs and nodes");
    EXPECT_ERROR("- nabla\n", "m.yaml:1:1: a model file must be a mapping; got a list");
}

/* DIMS attributes: integers, -1 and the symbols of the inputs. */
Test(model_yaml, dims_attribute)
{
    const char *text = "nabla: 1\n"
                       "inputs: {x: [N, 4, 6]}\n"
                       "nodes:\n"
                       "  - {name: a, op: reshape, in: [x], shape: [N, -1]}\n"
                       "  - {name: b, op: reshape, in: [a], shape: [N, 2, 12]}\n";
    char *yaml = strdup(text);  /* the graph must not keep pointers into the text */
    nb_model *m = load_ok(yaml);
    memset(yaml, 'X', strlen(yaml));
    free(yaml);
    nb_graph *g = nb_model_graph(m);
    check_node(g, "a", "reshape", "[N, 24]");
    check_node(g, "b", "reshape", "[N, 2, 12]");
    const nb_attr *shape = nb_node_attr(nb_graph_find(g, "b"), "shape");
    cr_assert_eq(shape->n, 3);
    cr_expect_str_eq(shape->d[0].sym, "N");
    cr_expect_eq(shape->d[2].size, 12);
    nb_model_free(m);
    EXPECT_ERRORS("nabla: 1\n"
                  "inputs: {x: [N, 4, 6]}\n"
                  "nodes:\n"
                  "  - {name: c, op: reshape, in: [x], shape: [M, -1]}\n"
                  "  - {name: d, op: reshape, in: [x], shape: [0, 5]}\n"
                  "  - {name: e, op: reshape, in: [x], shape: 24}\n"
                  "  - {name: f, op: reshape, in: [x]}\n",
                  "m.yaml:4:45: dimension 'M' is not declared by any input",
                  "m.yaml:5:45: 'shape' entries must be positive integers, -1 or symbols; got '0'",
                  "m.yaml:6:44: 'shape' must be a list such as [N, -1]; got '24'",
                  "m.yaml:7:5: node 'f': reshape needs attribute 'shape'");
}

/* The YAML model loader's errors, one test per class with its exact
 * "FILE:LINE:COL: message", and the train section. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---- errors, one class at a time ------------------------------------- */

Test(model_errors, node_structure)
{
    EXPECT_ERRORS("nabla: 1\n"
                  "inputs: {x: [3], \"x y\": [3]}\n"
                  "nodes:\n"
                  "  - x\n"
                  "  - {op: neg, in: [x]}\n"
                  "  - {name: b, in: [x]}\n"
                  "  - {name: c, op: neg, in: 3}\n"
                  "  - {name: \"d e\", op: neg, in: [x]}\n"
                  "  - {name: f, op: neg, in: [d e, x y]}\n"
                  "  - {name: g, op: 7, in: [x]}\n",
                  "m.yaml:2:18: invalid name 'x y': use letters, digits, '_', '.', '-'",
                  "m.yaml:4:5: a node must be a mapping {name: ..., op: ..., in: [...]}; got 'x'",
                  "m.yaml:5:5: a node needs a name",
                  "m.yaml:6:5: node 'b' needs an op (or a layer)",
                  "m.yaml:7:28: 'in' must be a list of names; got '3'",
                  "m.yaml:8:12: invalid name 'd e': use letters, digits, '_', '.', '-'",
                  "m.yaml:10:19: 'op' must be a string; got '7' (quote it to use it as text)");
}


Test(model_errors, version)
{
    EXPECT_ERROR("nabla: 2\ninputs: {x: [3]}\nnodes: [{name: y, op: neg, in: [z]}]\n",
                 "m.yaml:1:8: unsupported format version 2; this nabla reads version 1");
    EXPECT_ERRORS("name: m\ninputs: {x: [3]}\n",
                  "m.yaml:1:1: missing key 'nabla' (the format version: nabla: 1)",
                  "m.yaml:1:1: missing key 'nodes'");
    EXPECT_ERROR("nabla: one\ninputs: {x: [3]}\nnodes: [{name: y, op: neg, in: [x]}]\n",
                 "m.yaml:1:8: 'nabla' must be the integer 1; got 'one'");
}

Test(model_errors, unknown_keys)
{
    EXPECT_ERRORS("nabla: 1\n"
                  "inputs:\n"
                  "  x: {shape: [3], dtyp: f32}\n"
                  "params:\n"
                  "  w: {shape: [3], init: he, trainable: false}\n"
                  "nodes:\n"
                  "  - {name: s, op: sum, in: [x], axes: 0}\n"
                  "output: [s]\n",
                  "m.yaml:3:19: unknown key 'dtyp' (did you mean 'dtype'?)",
                  "m.yaml:5:29: unknown key 'trainable'",
                  "m.yaml:7:33: unknown key 'axes' (did you mean 'axis'?)",
                  "m.yaml:8:1: unknown key 'output' (did you mean 'outputs'?)");
}

Test(model_errors, unknown_attribute_of_a_stand_in_op)
{
    EXPECT_ERROR("nabla: 1\n"
                 "inputs: {x: [N, 1, 8, 8]}\n"
                 "params: {k: {shape: [2, 1, 3, 3], init: he}}\n"
                 "nodes:\n"
                 "  - {name: c, op: conv2d, in: [x, k], strid: 2}\n",
                 "m.yaml:5:39: unknown key 'strid' (did you mean 'stride'?)");
}

Test(model_errors, unknown_op)
{
    EXPECT_ERRORS("nabla: 1\n"
                  "inputs: {x: [3]}\n"
                  "nodes:\n"
                  "  - {name: a, op: expp, in: [x]}\n"
                  "  - {name: b, op: conv3d, in: [x]}\n"
                  "  - {name: c, op: sum_to, in: [x, x]}\n",
                  "m.yaml:4:19: unknown op 'expp' (did you mean 'exp'?)",
                  "m.yaml:5:19: unknown op 'conv3d' (did you mean 'conv2d'?)",
                  "m.yaml:6:19: unknown op 'sum_to'");
}

Test(model_errors, unknown_op_relux)
{
    EXPECT_ERROR("nabla: 1\ninputs: {x: [3]}\nnodes:\n  - {name: a, op: relux, in: [x]}\n",
                 "m.yaml:4:19: unknown op 'relux' (did you mean 'relu'?)");
}

Test(model_errors, arity)
{
    EXPECT_ERRORS("nabla: 1\n"
                  "inputs: {x: [3]}\n"
                  "nodes:\n"
                  "  - {name: a, op: neg, in: [x, x]}\n"
                  "  - {name: b, op: add, in: [x]}\n"
                  "  - {name: c, op: exp}\n",
                  "m.yaml:4:5: node 'a': neg takes 1 input, got 2",
                  "m.yaml:5:5: node 'b': add takes 2 inputs, got 1",
                  "m.yaml:6:5: node 'c': exp takes 1 input, got 0");
}

/* A node over NB_MAX_INPUTS fails when the file is loaded (nabla check), not
 * when it runs. */
Test(model_errors, too_many_inputs)
{
    char yaml[1024];
    int len = snprintf(yaml, sizeof yaml, "nabla: 1\ninputs: {x: [3]}\nnodes:\n"
                                          "  - {name: c, op: concat, axis: 0, in: [x");
    for (int i = 1; i <= NB_MAX_INPUTS; i++) len += snprintf(yaml + len, sizeof yaml - len, ", x");
    snprintf(yaml + len, sizeof yaml - len, "]}\n");
    EXPECT_ERROR(yaml, "m.yaml:4:5: node 'c': concat has 65 inputs; a node may have at most 64 "
                       "(NB_MAX_INPUTS)");
}

Test(model_errors, undefined_names)
{
    EXPECT_ERRORS("nabla: 1\n"
                  "inputs: {x: [3]}\n"
                  "nodes:\n"
                  "  - {name: h1, op: neg, in: [x]}\n"
                  "  - {name: a, op: add, in: [h1, h2]}\n"
                  "  - {name: h2, op: neg, in: [x]}\n"
                  "  - {name: b, op: add, in: [h2, xx]}\n"
                  "outputs: [b, h3]\n"
                  "loss: z\n",
                  "m.yaml:5:33: 'h2' is not defined above this node (did you mean 'h1'?)",
                  "m.yaml:7:33: 'xx' is not defined above this node (did you mean 'x'?)",
                  "m.yaml:8:14: 'h3' is not defined in this model (did you mean 'h1'?)",
                  "m.yaml:9:7: 'z' is not defined in this model");
}

Test(model_errors, duplicate_names)
{
    EXPECT_ERRORS("nabla: 1\n"
                  "inputs: {x: [3]}\n"
                  "params:\n"
                  "  x: {shape: [3], init: zeros}\n"
                  "nodes:\n"
                  "  - {name: a, op: neg, in: [x]}\n"
                  "  - {name: a, op: exp, in: [x]}\n"
                  "  - {name: b, op: exp, in: [a]}\n"
                  "  - {name: c d, op: exp, in: [a]}\n",
                  "m.yaml:4:3: duplicate name 'x' (first defined at line 2)",
                  "m.yaml:7:12: duplicate name 'a' (first defined at line 6)",
                  "m.yaml:9:12: invalid name 'c d': use letters, digits, '_', '.', '-'");
}

Test(model_errors, layer_names_are_reserved)
{
    EXPECT_ERRORS("nabla: 1\n"
                  "inputs: {x: [N, 3]}\n"
                  "nodes:\n"
                  "  - {name: fc.x, op: neg, in: [x]}\n"
                  "  - {name: fc, layer: dense, in: [fc.x], units: 2}\n"
                  "  - {name: d, layer: dense, in: [x], units: 2}\n"
                  "  - {name: d.W2, op: neg, in: [d.W]}\n"
                  "  - {name: e, op: neg, in: [d.bias]}\n"
                  "  - {name: f, op: neg, in: [fc.W]}\n",
                  "m.yaml:5:12: names beginning 'fc.' are reserved for layer 'fc', but 'fc.x' is "
                  "defined at line 4",
                  "m.yaml:7:12: name 'd.W2' is reserved: names beginning 'd.' belong to layer 'd'",
                  "m.yaml:8:29: 'd.bias' is not defined above this node");
}

Test(model_errors, bad_dims)
{
    EXPECT_ERRORS("nabla: 1\n"
                  "inputs:\n"
                  "  a: [0, 3]\n"
                  "  b: [N, -1]\n"
                  "  c: [2.5]\n"
                  "  d: [n-1]\n"
                  "  e: [1, 2, 3, 4, 5, 6, 7, 8, 9]\n"
                  "  f: N\n"
                  "params:\n"
                  "  w: {shape: [N, 3], init: he}\n"
                  "nodes: [{name: y, op: neg, in: [a]}]\n",
                  "m.yaml:3:7: a dimension must be a positive integer or a symbol such as N; got '0'",
                  "m.yaml:4:10: a dimension must be a positive integer or a symbol such as N; got '-1'",
                  "m.yaml:5:7: a dimension must be a positive integer or a symbol such as N; got '2.5'",
                  "m.yaml:6:7: a dimension must be a positive integer or a symbol such as N; got 'n-1'",
                  "m.yaml:7:6: a shape has at most 8 dimensions; this one has 9",
                  "m.yaml:8:6: input 'f' must be a shape such as [N, 784] or {shape: [N], dtype: "
                  "i32}; got 'N'",
                  "m.yaml:10:15: param and constant shapes take positive integers only; got the symbol 'N'");
}

Test(model_errors, shape_mismatch)
{
    EXPECT_ERRORS("nabla: 1\n"
                  "inputs:\n"
                  "  x: [N, 3]\n"
                  "  z: [M, 3]\n"
                  "params:\n"
                  "  v: {shape: [2], init: zeros}\n"
                  "nodes:\n"
                  "  - {name: r, op: add, in: [x, v]}\n"
                  "  -   name: s\n"
                  "      op: mul\n"
                  "      in: [x, z]\n"
                  "  - {name: t, op: sum, in: [x], axis: 2}\n",
                  "m.yaml:8:5: node 'r': add cannot broadcast: x is [N, 3], v is [2]",
                  "m.yaml:9:7: node 's': mul cannot broadcast: x is [N, 3], z is [M, 3]",
                  "m.yaml:12:5: node 't': sum axis 2 is out of range for rank 2");
}

Test(model_errors, values_count)
{
    EXPECT_ERRORS("nabla: 1\n"
                  "inputs: {x: [2, 2]}\n"
                  "params:\n"
                  "  v: {shape: [2, 2], init: {values: [1, 2, 3]}}\n"
                  "  u: {shape: [2], init: {values: [[1, 2], [3]]}}\n"
                  "  w: {shape: [2], init: {values: [1, x]}}\n"
                  "  k: {shape: [2], init: {values: [1, 2], normal: 1}}\n"
                  "nodes: [{name: y, op: add, in: [x, v]}]\n",
                  "m.yaml:4:29: values has 3 numbers but v [2, 2] holds 4",
                  "m.yaml:5:26: values has more than 2 numbers but u [2] holds 2",
                  "m.yaml:6:38: values must be numbers; got 'x'",
                  "m.yaml:7:42: an init mapping has exactly one key, as in {normal: 0.1}");
}

Test(model_errors, inits)
{
    EXPECT_ERRORS("nabla: 1\n"
                  "inputs: {x: [2]}\n"
                  "params:\n"
                  "  a: {shape: [2], init: hee}\n"
                  "  b: {shape: [2], init: normal}\n"
                  "  c: {shape: [2], init: {normal: -1}}\n"
                  "  d: {shape: [2], init: {uniform: [1, 0]}}\n"
                  "  e: {shape: [2]}\n"
                  "nodes: [{name: y, op: neg, in: [x]}]\n",
                  "m.yaml:4:25: unknown init 'hee' (did you mean 'he'?)",
                  "m.yaml:5:25: init 'normal' needs a value, as in {normal: 0.1}",
                  "m.yaml:6:34: normal's standard deviation must be a finite number >= 0; got '-1'",
                  "m.yaml:7:35: uniform takes [a, b] with finite a < b; got [1, 0]",
                  "m.yaml:8:6: param 'e' needs an init (zeros, ones, xavier, he, ...)");
}

Test(model_errors, loss_must_be_scalar)
{
    EXPECT_ERROR("nabla: 1\n"
                 "inputs: {x: [N, 10], t: {shape: [N], dtype: i32}}\n"
                 "nodes:\n"
                 "  - {name: y, op: exp, in: [x]}\n"
                 "loss: y\n",
                 "m.yaml:5:7: loss 'y' must be a scalar; it is [N, 10]");
}

Test(model_errors, required_attribute)
{
    EXPECT_ERROR("nabla: 1\ninputs: {x: [3]}\nnodes:\n  - {name: p, op: pow, in: [x]}\n",
                 "m.yaml:4:5: node 'p': pow needs attribute 'exponent'");
}

Test(model_errors, dtypes)
{
    EXPECT_ERRORS("nabla: 1\n"
                  "dtype: f16\n"
                  "inputs:\n"
                  "  x: {shape: [3], dtype: f64}\n"
                  "  t: {shape: [3], dtype: int}\n"
                  "nodes: [{name: y, op: neg, in: [x]}]\n",
                  "m.yaml:2:8: unknown dtype 'f16'",
                  "m.yaml:4:26: input 'x' is f64 but the model is f32; an input takes the model's "
                  "dtype or i32",
                  "m.yaml:5:26: unknown dtype 'int'");
    EXPECT_ERROR("nabla: 1\ndtype: i32\ninputs: {x: [3]}\nnodes: [{name: y, op: neg, in: [x]}]\n",
                 "m.yaml:2:8: the model's dtype must be f32 or f64; got 'i32'");
}

/* All errors of a file in one pass, in file order; nothing cascades from a
 * failed node; no model comes back. */
Test(model_errors, all_in_one_pass_without_cascade)
{
    EXPECT_ERRORS("nabla: 1\n"
                  "inputs: {x: [N, 3]}\n"
                  "nodes:\n"
                  "  - {name: a, op: expp, in: [x]}\n"
                  "  - {name: b, op: neg, in: [a]}\n"
                  "  - {name: c, op: add, in: [b, x]}\n"
                  "  - {name: d, op: sum, in: [x], axs: 0}\n"
                  "  - {name: e, op: log, in: [q]}\n"
                  "  - {name: f, op: add, in: [x, e]}\n"
                  "outputs: [c, f]\n"
                  "loss: d\n"
                  "train: {batch: 0}\n",
                  "m.yaml:4:19: unknown op 'expp' (did you mean 'exp'?)",
                  "m.yaml:7:33: unknown key 'axs' (did you mean 'axis'?)",
                  "m.yaml:8:29: 'q' is not defined above this node",
                  "m.yaml:12:16: 'batch' must be >= 1; got 0");
}

Test(model_errors, never_a_partial_model)
{
    const char *yaml = "nabla: 1\n"
                       "inputs: {x: [3]}\n"
                       "params: {w: {shape: [3], init: he}}\n"
                       "nodes:\n"
                       "  - {name: a, op: mul, in: [x, w]}\n"
                       "  - {name: b, op: sum, in: [a]}\n"
                       "loss: a\n";
    nb_model *m = (nb_model *)&m;
    nb_diags d;
    cr_assert_eq(nb_model_load_string(yaml, strlen(yaml), "m.yaml", NULL, &m, &d), NB_ERR_FORMAT);
    cr_expect_null(m);
    cr_assert_eq(d.n, 1);
    cr_expect_str_eq(d.lines[0], "m.yaml:7:7: loss 'a' must be a scalar; it is [3]");
    nb_diags_free(&d);
    cr_expect_eq(d.n, 0);
    /* without a diags out */
    cr_expect_eq(nb_model_load_string(yaml, strlen(yaml), NULL, NULL, &m, NULL), NB_ERR_FORMAT);
    cr_expect_null(m);
}

Test(model_errors, files)
{
    nb_model *m;
    nb_diags d;
    cr_assert_eq(nb_model_load_file("/nonexistent/m.yaml", NULL, &m, &d), NB_ERR_IO);
    cr_expect_null(m);
    cr_assert_eq(d.n, 1);
    cr_expect_str_eq(d.lines[0], "/nonexistent/m.yaml: cannot read the file (No such file or directory)");
    nb_diags_free(&d);
    /* a model loaded from a file knows its folder */
    char path[1024];
    snprintf(path, sizeof path, "%s", test_file("conformance/broadcast.yaml"));
    nb_status st = nb_model_load_file(path, NULL, &m, &d);
    if (st == NB_OK) {
        const char *dir = nb_model_dir(m);
        cr_expect(strlen(dir) > 12 && !strcmp(dir + strlen(dir) - 12, "/conformance"), "%s", dir);
        nb_model_free(m);
    } else {  /* softmax or transpose missing: the message still names the file */
        cr_assert_geq(d.n, 1);
        cr_expect(!strncmp(d.lines[0], path, strlen(path)), "%s", d.lines[0]);
    }
    nb_diags_free(&d);
    cr_expect_str_eq(nb_model_dir(NULL), ".");
}

/* ---- the train section ---------------------------------------------- */

static const char *tiny = "nabla: 1\n"
                          "inputs: {x: [N, 4], t: {shape: [N], dtype: i32}}\n"
                          "nodes: [{name: y, op: neg, in: [x]}]\n";

static nb_model *with_train(const char *train)
{
    char buf[2048];
    snprintf(buf, sizeof buf, "%s%s", tiny, train);
    return load_ok(buf);
}

Test(model_train, defaults)
{
    nb_model *m = with_train("");
    const nb_train_cfg *t = nb_model_train(m);
    cr_expect(!t->present);
    cr_expect_str_eq(t->format, "idx");
    cr_expect_null(t->train_images);
    cr_expect_null(t->images_input);
    cr_expect_eq(t->scale, 1);
    cr_expect_eq(t->batch, 100);
    cr_expect_eq(t->epochs, 1);
    cr_expect(t->shuffle);
    cr_expect_eq(t->seed, 0);
    cr_expect_str_eq(t->optimizer, "adam");
    cr_expect_eq(t->lr, 0.001);
    cr_expect_eq(t->momentum, 0.9);
    cr_expect_eq(t->beta1, 0.9);
    cr_expect_eq(t->beta2, 0.999);
    cr_expect_eq(t->eps, 1e-8);
    cr_expect(!t->eps_given);
    cr_expect_eq(t->weight_decay, 0);
    cr_expect_eq(t->validation, 0);
    nb_model_free(m);

    m = with_train("train:\n  epochs: 3\n");
    t = nb_model_train(m);
    cr_expect(t->present);
    cr_expect_eq(t->epochs, 3);
    cr_expect_eq(t->batch, 100);
    cr_expect_str_eq(t->optimizer, "adam");
    nb_model_free(m);
}

Test(model_train, optimizers)
{
    nb_model *m = with_train("train: {optimizer: {type: adagrad, lr: 0.1, weight_decay: 1e-4}}\n");
    const nb_train_cfg *t = nb_model_train(m);
    cr_expect_str_eq(t->optimizer, "adagrad");
    cr_expect_eq(t->lr, 0.1);
    cr_expect_eq(t->eps, 1e-10);
    cr_expect_eq(t->weight_decay, 1e-4);
    nb_model_free(m);
    m = with_train("train: {optimizer: {type: momentum, momentum: 0.5, eps: 1e-6},\n"
                   "        validation: 0.1, shuffle: false, seed: 9}\n");
    t = nb_model_train(m);
    cr_expect_str_eq(t->optimizer, "momentum");
    cr_expect_eq(t->momentum, 0.5);
    cr_expect_eq(t->eps, 1e-6);
    cr_expect(t->eps_given);
    cr_expect_eq(t->validation, 0.1);
    cr_expect(!t->shuffle);
    cr_expect_eq(t->seed, 9);
    nb_model_free(m);
    m = with_train("train: {optimizer: sgd}\n");
    cr_expect_str_eq(nb_model_train(m)->optimizer, "sgd");
    cr_expect_eq(nb_model_train(m)->lr, 0.001);
    nb_model_free(m);
}

Test(model_train, bad_optimizer)
{
    char buf[2048];
    snprintf(buf, sizeof buf, "%s%s", tiny, "train:\n  optimizer: {type: adamw, lr: 0}\n");
    EXPECT_ERRORS(buf, "m.yaml:5:21: unknown optimizer 'adamw' (did you mean 'adam'?)",
                  "m.yaml:5:32: 'lr' must be a finite number > 0; got 0");
}

Test(model_train, errors)
{
    char buf[2048];
    snprintf(buf, sizeof buf, "%s%s", tiny,
             "train:\n"
             "  epoch: 2\n"
             "  validation: 1.5\n"
             "  shuffle: 1\n"
             "  data:\n"
             "    format: csv\n"
             "    train: {images: a.gz}\n"
             "    feed: {xx: images, x: images, t: images, y: labels}\n"
             "    scale: -1\n"
             "  optimizer: {type: sgd, beta2: 1}\n");
    EXPECT_ERRORS(buf, "m.yaml:5:3: unknown key 'epoch' (did you mean 'epochs'?)",
                  "m.yaml:6:15: 'validation' must be in [0, 1); got 1.5",
                  "m.yaml:7:12: 'shuffle' must be true or false; got '1'",
                  "m.yaml:9:13: unknown data format 'csv'",
                  "m.yaml:10:12: 'train' needs 'labels' (a file name)",
                  "m.yaml:11:12: 'xx' is not an input (did you mean 'x'?)",
                  "m.yaml:11:38: images already feed 'x'",
                  "m.yaml:11:46: 'y' is not an input",
                  "m.yaml:12:12: 'scale' must be a finite number > 0; got -1",
                  "m.yaml:13:33: 'beta2' must be in [0, 1); got 1");
}

/* The model language around the ops: reserved names (grad., opt.), layer
 * activations by name or as {op: ..., attrs}, dense on a rank-1 input, the
 * hint for `op: dense`, and what the `nabla` command shows of layers and
 * constants (ops, check, run --grad). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "toolutil.h"

TestSuite(lang, .init = tmp_make, .fini = tmp_remove, .timeout = 120);

/* ---- reserved names --------------------------------------------------- */

Test(lang, reserved_names)
{
    EXPECT_ERRORS("nabla: 1\n"
                  "constants: {grad.k: 1}\n"
                  "inputs: {x: [3], grad.x: [3]}\n"
                  "params: {opt.w: {shape: [3], init: zeros}}\n"
                  "nodes:\n"
                  "  - {name: grad.y, op: neg, in: [x]}\n"
                  "  - {name: opt.step, op: neg, in: [x]}\n"
                  "  - {name: grad, layer: dense, in: [x], units: 2}\n"
                  "  - {name: opt, op: add, in: [x, 1]}\n"
                  "  - {name: z, op: neg, in: [grad.y]}\n",
                  "m.yaml:2:13: name 'grad.k' is reserved: names beginning 'grad.' name gradients "
                  "(grad.NAME in output folders)",
                  "m.yaml:3:18: name 'grad.x' is reserved: names beginning 'grad.' name gradients "
                  "(grad.NAME in output folders)",
                  "m.yaml:4:10: name 'opt.w' is reserved: names beginning 'opt.' name optimizer "
                  "state in checkpoints",
                  "m.yaml:6:12: name 'grad.y' is reserved: names beginning 'grad.' name gradients "
                  "(grad.NAME in output folders)",
                  "m.yaml:7:12: name 'opt.step' is reserved: names beginning 'opt.' name optimizer "
                  "state in checkpoints",
                  "m.yaml:8:12: layer 'grad' would make names beginning 'grad.', which are reserved "
                  "(gradients)",
                  "m.yaml:9:34: node 'opt' would make names beginning 'opt.', which are reserved "
                  "(optimizer state)");
}

/* Names merely like the reserved ones are fine, and so is a node called grad
 * that makes no grad.x names. */
Test(lang, names_near_reserved_ones)
{
    nb_model *m = load_ok("nabla: 1\n"
                          "inputs: {x: [3], gradx: [3]}\n"
                          "nodes:\n"
                          "  - {name: grad, op: neg, in: [x]}\n"
                          "  - {name: opt, op: add, in: [grad, gradx]}\n"
                          "  - {name: my.grad.y, op: neg, in: [opt]}\n");
    check_node(nb_model_graph(m), "my.grad.y", "neg", "[3]");
    nb_model_free(m);
}

Test(lang, reserved_names_c_api)
{
    nb_graph *g = nb_graph_new();
    cr_expect_null(nb_input(g, "grad.x", NB_F32, 1, (nb_dim[]){NB_DIM(3)}));
    expect_graph_error(g, NB_ERR_NAME,
                       (const char *const[]){"input 'grad.x'", "names beginning 'grad.' are reserved"}, 2);
    nb_graph_clear_error(g);
    double v = 1;
    nb_tensor t = tensor_of(NB_F32, 0, NULL, &v);
    cr_expect_null(nb_constant(g, "opt.c", &t));
    expect_graph_error(g, NB_ERR_NAME, (const char *const[]){"names beginning 'opt.' are reserved"}, 1);
    nb_tensor_free(&t);
    nb_graph_free(g);
}

/* ---- activations ------------------------------------------------------ */

/* h = act(x W) for x [2] = (1, -2), W the identity: h's values and node. */
static void dense_act(const char *act, const char *op, const double *want)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "nabla: 1\ndtype: f64\ninputs: {x: [2]}\nnodes:\n"
             "  - {name: h, layer: dense, in: [x], units: 2, bias: false,\n"
             "     init: {values: [1, 0, 0, 1]}, activation: %s}\n", act);
    nb_model *m = load_ok(yaml);
    nb_graph *g = nb_model_graph(m);
    check_node(g, "h", op, "[2]");
    nb_node *x = nb_graph_find(g, "x");
    double out[2];
    eval_node(g, nb_graph_find(g, "h"), out, 1, &x, (const double *const[]){(double[]){1, -2}});
    expect_close(out, want, 2, 1e-15, 1e-15, act);
    nb_model_free(m);
}

Test(lang, activation_forms)
{
    dense_act("leaky_relu", "leaky_relu", (double[]){1, -0.02});
    dense_act("{op: leaky_relu, alpha: 0.2}", "leaky_relu", (double[]){1, -0.4});
    dense_act("{op: relu}", "relu", (double[]){1, 0});
    dense_act("tanh", "tanh", (double[]){0.76159415595576485, -0.96402758007581690});
    dense_act("{op: none}", "reshape", (double[]){1, -2});
    nb_model *m = load_ok("nabla: 1\ninputs: {x: [N, 2]}\nnodes:\n"
                          "  - {name: h, layer: dense, in: [x], units: 3,\n"
                          "     activation: {op: leaky_relu, alpha: 0.3}}\n");
    check_node(nb_model_graph(m), "h", "leaky_relu", "[N, 3]");
    cr_expect_float_eq(nb_node_attr(nb_graph_find(nb_model_graph(m), "h"), "alpha")->f, 0.3, 1e-15);
    nb_model_free(m);
}

/* The message of the first error loading yaml. */
static char *first_error(const char *yaml)
{
    nb_diags d;
    nb_model *m = load_yaml(yaml, &d);
    cr_assert_null(m);
    cr_assert_geq(d.n, 1);
    char *s = strdup(d.lines[0]);
    nb_diags_free(&d);
    return s;
}

static char *act_error(const char *act)
{
    char yaml[256];
    snprintf(yaml, sizeof yaml,
             "nabla: 1\ninputs: {x: [2]}\nnodes:\n  - {name: h, layer: dense, in: [x], units: 2, "
             "activation: %s}\n", act);
    return first_error(yaml);
}

Test(lang, activation_errors)
{
    /* the list grows as activation ops are registered, so its start is checked */
    const char *list = "; activations are relu, sigmoid, tanh, leaky_relu";
    char *e = act_error("pow");
    assert_has(e, "m.yaml:4:60: 'pow' is not an activation");
    assert_has(e, list);
    cr_expect_null(strstr(e, "did you mean"), "%s", e);
    free(e);
    e = act_error("matmul");
    assert_has(e, "m.yaml:4:60: 'matmul' is not an activation");
    free(e);
    e = act_error("{op: pow, exponent: 2}");
    assert_has(e, "m.yaml:4:65: 'pow' is not an activation");
    assert_has(e, list);
    free(e);
    EXPECT_ERRORS("nabla: 1\ninputs: {x: [2]}\nnodes:\n"
                  "  - {name: a, layer: dense, in: [x], units: 2, activation: rleu}\n"
                  "  - {name: b, layer: dense, in: [x], units: 2, activation: {alpha: 0.2}}\n"
                  "  - {name: c, layer: dense, in: [x], units: 2, activation: {op: leaky_relu, alpah: 0.2}}\n"
                  "  - {name: d, layer: dense, in: [x], units: 2, activation: {op: leaky_relu, alpha: big}}\n"
                  "  - {name: e, layer: dense, in: [x], units: 2, activation: 3}\n"
                  "  - {name: f, layer: dense, in: [x], units: 2, activation: {op: relu, alpha: 1}}\n",
                  "m.yaml:4:60: unknown activation 'rleu' (did you mean 'relu'?)",
                  "m.yaml:5:60: an activation mapping needs 'op', as in {op: leaky_relu, alpha: 0.2}",
                  "m.yaml:6:77: unknown key 'alpah' (did you mean 'alpha'?)",
                  "m.yaml:7:84: 'alpha' must be a number; got 'big'",
                  "m.yaml:8:60: 'activation' must be a string; got '3' (quote it to use it as text)",
                  "m.yaml:9:71: unknown key 'alpha'");
}

/* ---- dense on a rank-1 input ------------------------------------------ */

Test(lang, dense_rank1)
{
    nb_model *m = load_ok("nabla: 1\n"
                          "dtype: f64\n"
                          "inputs: {x: [3]}\n"
                          "params: {t: {shape: [2], init: zeros}}\n"
                          "nodes:\n"
                          "  - {name: h, layer: dense, in: [x], units: 2, init: {values: [1, 2, 3, 4, 5, 6]}}\n"
                          "  - {name: d, op: sub, in: [h, t]}\n"
                          "  - {name: loss, op: sum, in: [d]}\n"
                          "loss: loss\n");
    nb_graph *g = nb_model_graph(m);
    check_node(g, "h.matmul", "matmul", "[1, 2]");
    check_node(g, "h", "add", "[2]");
    ((double *)nb_param_value(nb_graph_find(g, "h.b"))->data)[1] = 0.5;
    nb_node *x = nb_graph_find(g, "x");
    double out[2];
    eval_node(g, nb_graph_find(g, "h"), out, 1, &x, (const double *const[]){(double[]){1, 0, -1}});
    expect_close(out, (double[]){1 - 5, 2 - 6 + 0.5}, 2, 1e-15, 0, "x W + b");
    nb_node *w = nb_graph_find(g, "h.W"), *gw;  /* d sum(x W) / dW = x 1^T */
    cr_assert_eq(nb_grad(g, nb_model_loss(m), &w, 1, &gw), NB_OK, "%s", nb_graph_error(g));
    double dw[6];
    eval_node(g, gw, dw, 1, &x, (const double *const[]){(double[]){1, 0, -1}});
    expect_close(dw, (double[]){1, 1, 0, 0, -1, -1}, 6, 0, 0, "grad of W");
    nb_model_free(m);
    m = load_ok("nabla: 1\ninputs: {x: [3]}\n"
                "nodes: [{name: h, layer: dense, in: [x], units: 4, bias: false}]\n");
    check_node(nb_model_graph(m), "h", "reshape", "[4]");
    check_node(nb_model_graph(m), "h.matmul", "matmul", "[1, 4]");
    nb_model_free(m);
    EXPECT_ERRORS("nabla: 1\ninputs: {x: []}\nnodes: [{name: h, layer: dense, in: [x], units: 4}]\n",
                  "m.yaml:3:9: node 'h': layer dense needs x [..., F] or [F] with a fixed F; x is []");
}

/* ---- layers named as ops ---------------------------------------------- */

Test(lang, op_names_a_layer)
{
    EXPECT_ERRORS("nabla: 1\ninputs: {x: [2]}\nnodes:\n"
                  "  - {name: h, op: dense, in: [x], units: 2}\n",
                  "m.yaml:4:19: 'dense' is a layer, not an op: write layer: dense");
}

/* ---- the command ------------------------------------------------------ */

Test(lang, ops_lists_layers)
{
    tool_result r = TOOL("ops");
    cr_assert_eq(r.status, 0, "%s", r.err);
    const char *layers = strstr(r.out, "\nlayers");
    cr_assert_not_null(layers, "%s", r.out);
    cr_expect_not_null(strstr(r.out, "\nadd "), "ops come first");
    assert_has(layers, "\ndense ");
    assert_has(layers, "\nconv2d ");
    assert_has(layers, "\nbatchnorm ");
    assert_has(layers, "NAME.W [F, units]");
    tool_result_free(&r);
    r = TOOL("ops", "dense");
    cr_assert_eq(r.status, 0, "%s", r.err);
    assert_has(r.out, "dense                  layer: x [..., F] or [F]");
    assert_has(r.out, "creates      NAME.W [F, units] (init), NAME.b [units]");
    assert_has(r.out, "units        int          required");
    assert_has(r.out, "activation   activation   default none");
    tool_result_free(&r);
    nb_layer_info l;
    cr_assert_eq(nb_layer_find("conv2d", &l), NB_OK);
    cr_expect_str_eq(l.name, "conv2d");
    cr_expect_eq(nb_layer_find("nope", &l), NB_ERR_ARG);
    cr_expect_eq(nb_layer_describe(nb_layer_count(), &l), NB_ERR_ARG);
    for (size_t i = 0; i < nb_layer_count(); i++) {  /* a layer added without its description */
        cr_assert_eq(nb_layer_describe(i, &l), NB_OK);
        cr_expect(l.in && *l.in && l.creates && *l.creates && l.doc && *l.doc,
                  "layer %s is not described", l.name);
    }
    r = TOOL("ops", "densee");
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "unknown op or layer 'densee'");
    tool_result_free(&r);
}

static const char *const CONST_MODEL =
    "nabla: 1\n"
    "constants:\n"
    "  k: [1, 2, 3]\n"
    "  s: {value: 4, dtype: i32}\n"
    "inputs: {x: [N, 3]}\n"
    "params: {w: {shape: [3], init: ones}}\n"
    "nodes:\n"
    "  - {name: a, op: mul, in: [x, k]}\n"
    "  - {name: b, op: mul, in: [a, w]}\n"
    "  - {name: c, op: add, in: [b, 0.5]}\n"
    "  - {name: loss, op: sum, in: [c]}\n"
    "loss: loss\n";

/* The row of `nabla check`'s table for node `name` (fails if none). */
static const char *row(const char *out, const char *name, char *buf, size_t cap)
{
    size_t k = strlen(name);
    for (const char *p = out; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, name, k) && p[k] == ' ') {
            const char *end = strchr(p, '\n');
            snprintf(buf, cap, "%.*s", (int)(end ? end - p : (long)strlen(p)), p);
            return buf;
        }
    cr_assert_fail("no row for '%s' in\n%s", name, out);
    return NULL;
}

/* run --grad writes gradients of params and inputs, none of constants; check
 * lists the constants as such. */
Test(lang, tool_and_constants)
{
    const char *model = tmp_path("m.yaml"), *xin = tmp_path("x.npy"), *out = tmp_path("out");
    write_text(model, CONST_MODEL);
    write_npy_f64(xin, 2, (int64_t[]){2, 3}, (double[]){1, 1, 1, 2, 2, 2});
    char in_arg[512];
    snprintf(in_arg, sizeof in_arg, "x=%s", xin);
    tool_result r = TOOL("run", model, "--in", in_arg, "--grad", "-o", out);
    cr_assert_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    nb_tensor gw = read_npy_f64(tmp_path("out/grad.w.npy"));
    expect_close(gw.data, (double[]){3, 6, 9}, 3, 1e-6, 1e-6, "grad.w = sum over N of x k");
    nb_tensor_free(&gw);
    nb_tensor loss = read_npy_f64(tmp_path("out/loss.npy"));
    expect_close(loss.data, (double[]){18 + 3}, 1, 1e-5, 1e-6, "loss");
    nb_tensor_free(&loss);
    cr_expect_null(fopen(tmp_path("out/grad.k.npy"), "r"), "a constant got a gradient");
    cr_expect_null(fopen(tmp_path("out/grad.c.in1.npy"), "r"), "a literal got a gradient");
    cr_expect_not_null(fopen(tmp_path("out/grad.x.npy"), "r"));
    r = TOOL("check", model);
    cr_assert_eq(r.status, 0, "%s", r.err);
    char line[256];
    assert_has(row(r.out, "k", line, sizeof line), " constant  [3] ");
    assert_has(row(r.out, "s", line, sizeof line), " constant  [] ");
    assert_has(line, " = 4 ");
    assert_has(row(r.out, "c.in1", line, sizeof line), " = 0.5 ");
    assert_has(row(r.out, "w", line, sizeof line), " param ");
    assert_has(r.out, "3 constants (5 values): not trained, not saved with the weights");
    tool_result_free(&r);
}

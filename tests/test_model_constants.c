/* Constants: the C API (nb_constant), the model file's `constants:` in every
 * form and their errors, numbers written in `in` lists, and what constants
 * are not: trained, differentiated, saved with the weights. Rendering them is
 * checked in the .dot text. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

TestSuite(constants, .init = tmp_make, .fini = tmp_remove);

/* The constant's values as doubles into out (at most cap); returns how many. */
static size_t values_of(nb_graph *g, const char *name, nb_dtype dt, int rank, const int64_t *shape,
                        double *out, size_t cap)
{
    nb_node *n = nb_graph_find(g, name);
    cr_assert_not_null(n, "no node '%s'", name);
    cr_assert_eq(nb_node_kind_of(n), NB_NODE_CONST, "'%s' is not a constant", name);
    cr_expect_str_eq(nb_node_op(n), "constant");
    const nb_tensor *t = nb_constant_value(n);
    cr_assert_not_null(t);
    cr_expect_eq(t->dtype, dt, "'%s' has dtype %s", name, nb_dtype_name(t->dtype));
    cr_expect_eq(nb_node_dtype(n), dt);
    cr_assert_eq(t->rank, rank, "'%s' has rank %d", name, t->rank);
    for (int a = 0; a < rank; a++) cr_expect_eq(t->shape[a], shape[a], "'%s' axis %d", name, a);
    size_t k = nb_tensor_numel(t);
    cr_assert_leq(k, cap);
    for (size_t i = 0; i < k; i++) out[i] = get_elem(t->dtype, t->data, i);
    return k;
}

static void expect_values(nb_graph *g, const char *name, nb_dtype dt, int rank, const int64_t *shape,
                          const double *want)
{
    double got[64];
    size_t k = values_of(g, name, dt, rank, shape, got, 64);
    expect_close(got, want, k, 0, 0, name);
}

/* ---- the C API -------------------------------------------------------- */

Test(constants, c_api)
{
    nb_graph *g = nb_graph_new();
    int64_t shape[2] = {2, 3};
    double v[6] = {1, 2, 3, 4, 5, 6};
    nb_tensor t = tensor_of(NB_F64, 2, shape, v);
    nb_node *c = nb_constant(g, "c", &t);
    v[0] = 100;  /* the constant keeps its own copy */
    nb_tensor_free(&t);
    t = tensor_of(NB_F64, 2, shape, v);
    cr_assert_not_null(c, "%s", nb_graph_error(g));
    nb_node *x = input_shaped(g, "x", NB_F64, 2, shape);
    nb_node *y = nb_mul(g, x, c);
    cr_assert_not_null(y, "%s", nb_graph_error(g));
    double xin[6] = {1, 1, 2, 2, 3, 3}, out[6];
    eval_node(g, y, out, 1, &x, (const double *const[]){xin});
    expect_close(out, (double[]){1, 2, 6, 8, 15, 18}, 6, 0, 0, "x * c");
    cr_expect_null(nb_param_value(c), "a constant is not a param");
    cr_expect_not(nb_param_trainable(c));
    cr_expect_null(nb_constant_value(x));

    nb_node *auto_named = nb_constant(g, NULL, &t);  /* an automatic name */
    cr_assert_not_null(auto_named, "%s", nb_graph_error(g));
    cr_expect(strncmp(nb_node_name(auto_named), "const_", 6) == 0, "%s", nb_node_name(auto_named));
    int32_t ids[2] = {3, -4};
    nb_tensor ti = {.dtype = NB_I32, .rank = 1, .shape = {2}, .data = ids};
    nb_node *ci = nb_constant(g, "ids", &ti);
    cr_assert_not_null(ci, "%s", nb_graph_error(g));
    cr_expect_eq(nb_node_dtype(ci), NB_I32);
    cr_expect_eq(((int32_t *)nb_constant_value(ci)->data)[1], -4);

    cr_expect_null(nb_constant(g, "c", &t), "a duplicate name");
    expect_graph_error(g, NB_ERR_NAME, (const char *const[]){"duplicate name 'c'"}, 1);
    nb_graph_clear_error(g);
    cr_expect_null(nb_constant(g, "k", NULL));
    expect_graph_error(g, NB_ERR_ARG, (const char *const[]){"constant 'k'"}, 1);
    nb_tensor_free(&t);
    nb_graph_free(g);
}

/* No gradient flows into a constant, and none is asked of it; the gradient
 * through it to the others is right. */
Test(constants, no_gradient)
{
    nb_graph *g = nb_graph_new();
    double cv = 3;
    nb_tensor t = tensor_of(NB_F64, 0, NULL, &cv);
    nb_node *c = nb_constant(g, "c", &t);
    nb_tensor_free(&t);
    nb_node *x = input_shaped(g, "x", NB_F64, 1, (int64_t[]){4});
    nb_node *loss = nb_sum(g, nb_mul(g, x, c), NULL, 0, false);
    cr_assert_not_null(loss, "%s", nb_graph_error(g));
    nb_node *gc;
    cr_expect_eq(nb_grad(g, loss, &c, 1, &gc), NB_ERR_ARG);
    expect_graph_error(g, NB_ERR_ARG,
                       (const char *const[]){"cannot differentiate with respect to constant 'c'"}, 1);
    size_t before = nb_graph_num_nodes(g);
    nb_node *gx;
    cr_assert_eq(nb_grad(g, loss, &x, 1, &gx), NB_OK, "%s", nb_graph_error(g));
    for (size_t i = before; i < nb_graph_num_nodes(g); i++)
        cr_expect_neq(strcmp(nb_node_name(nb_graph_node(g, i)), "grad.c"), 0, "a gradient of c");
    double xin[4] = {1, 2, 3, 4}, out[4];
    eval_node(g, gx, out, 1, &x, (const double *const[]){xin});
    expect_close(out, (double[]){3, 3, 3, 3}, 4, 0, 0, "d/dx sum(3x)");
    nb_graph_free(g);
}

/* ---- model files ------------------------------------------------------ */

static const char *const FORMS =
    "nabla: 1\n"
    "constants:\n"
    "  half: 0.5\n"
    "  three: 3\n"
    "  row: [1, 2, 3]\n"
    "  grid: [[1, 2, 3], [4, 5, 6]]\n"
    "  fill: {value: 2, shape: [2, 3]}\n"
    "  rows: {value: [1, 2, 3], shape: [2, 3]}\n"
    "  cols: {value: [[1], [2]], shape: [2, 3]}\n"
    "  ids: {value: [1, 2.0, -7], dtype: i32}\n"
    "  wide: {value: [0.25, 0.5], dtype: f64}\n"
    "  scalar: {value: 9, shape: [1, 2]}\n"
    "  minf: -.inf\n"
    "inputs: {x: [2, 3]}\n"
    "nodes:\n"
    "  - {name: y, op: mul, in: [x, grid]}\n";

Test(constants, every_form)
{
    nb_model *m = load_ok(FORMS);
    nb_graph *g = nb_model_graph(m);
    expect_values(g, "half", NB_F32, 0, NULL, (double[]){0.5});
    expect_values(g, "three", NB_F32, 0, NULL, (double[]){3});
    expect_values(g, "row", NB_F32, 1, (int64_t[]){3}, (double[]){1, 2, 3});
    expect_values(g, "grid", NB_F32, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6});
    expect_values(g, "fill", NB_F32, 2, (int64_t[]){2, 3}, (double[]){2, 2, 2, 2, 2, 2});
    expect_values(g, "rows", NB_F32, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 1, 2, 3});
    expect_values(g, "cols", NB_F32, 2, (int64_t[]){2, 3}, (double[]){1, 1, 1, 2, 2, 2});
    expect_values(g, "ids", NB_I32, 1, (int64_t[]){3}, (double[]){1, 2, -7});
    expect_values(g, "wide", NB_F64, 1, (int64_t[]){2}, (double[]){0.25, 0.5});
    double s;
    values_of(g, "minf", NB_F32, 0, NULL, &s, 1);
    cr_expect(isinf(s) && s < 0);
    cr_expect_eq(nb_model_num_params(m), 0, "constants are not params");
    check_node(g, "y", "mul", "[2, 3]");
    nb_model_free(m);
}

/* Bare numbers and lists take the model's dtype; loaded as f64 (gradcheck),
 * float constants follow the graph and i32 ones stay i32. */
Test(constants, dtypes)
{
    nb_model *m = load_ok("nabla: 1\ndtype: f64\nconstants: {a: 1, b: [1, 2]}\n"
                          "inputs: {x: [2]}\nnodes: [{name: y, op: add, in: [x, b]}]\n");
    double v[2];
    values_of(nb_model_graph(m), "a", NB_F64, 0, NULL, v, 2);
    values_of(nb_model_graph(m), "b", NB_F64, 1, (int64_t[]){2}, v, 2);
    nb_model_free(m);
    const char *yaml = "nabla: 1\nconstants: {a: 1, i: {value: 4, dtype: i32}, w: {value: 1, dtype: f32}}\n"
                       "inputs: {x: [2]}\nnodes: [{name: y, op: add, in: [x, a]}]\n";
    nb_load_opts f64 = {.force_f64 = true};
    nb_diags d;
    cr_assert_eq(nb_model_load_string(yaml, strlen(yaml), "m.yaml", &f64, &m, &d), NB_OK);
    values_of(nb_model_graph(m), "a", NB_F64, 0, NULL, v, 2);
    values_of(nb_model_graph(m), "w", NB_F64, 0, NULL, v, 2);
    values_of(nb_model_graph(m), "i", NB_I32, 0, NULL, v, 2);
    nb_model_free(m);
}

Test(constants, errors)
{
    EXPECT_ERRORS("nabla: 1\n"
                  "constants:\n"
                  "  r1: [[1, 2], [3]]\n"
                  "  r2: [[1, 2], 3]\n"
                  "  r3: [1, [2]]\n"
                  "  i: {value: [1, 2.5], dtype: i32}\n"
                  "  d: {value: 1, dtype: f16}\n"
                  "  b: {value: [1, 2, 3], shape: [2, 2]}\n"
                  "  e: []\n"
                  "  s: [1, two]\n"
                  "  v: {shape: [2]}\n"
                  "  k: {value: 1, shap: [2]}\n"
                  "  x: 1\n"
                  "  n: {value: 1, shape: [N]}\n"
                  "  big: {value: 3000000000, dtype: i32}\n"
                  "inputs: {x: [3]}\n"
                  "nodes: [{name: y, op: neg, in: [x]}]\n",
                  "m.yaml:3:16: constant 'r1': ragged list: a list of 2 was expected here, as the "
                  "first list at this depth has; got a list of 1",
                  "m.yaml:4:16: constant 'r2': ragged list: a list of 2 was expected here, as the "
                  "first list at this depth has; got a number",
                  "m.yaml:5:11: constant 'r3': ragged list: a number was expected here, as at the "
                  "same depth in the first entries; got a list",
                  "m.yaml:6:18: constant 'i' is i32, which takes integers from -2147483648 to "
                  "2147483647 only; got 2.5",
                  "m.yaml:7:24: unknown dtype 'f16'",
                  "m.yaml:8:14: constant 'b': a value of shape [3] does not broadcast to shape [2, 2]",
                  "m.yaml:9:6: constant 'e': an empty list; every list needs at least one number",
                  "m.yaml:10:10: constant 's': values must be numbers; got 'two'",
                  "m.yaml:11:6: constant 'v' needs a value",
                  "m.yaml:12:17: unknown key 'shap' (did you mean 'shape'?)",
                  "m.yaml:13:3: duplicate name 'x' (first defined at line 16)",
                  "m.yaml:14:25: param and constant shapes take positive integers only; got the symbol 'N'",
                  "m.yaml:15:16: constant 'big' is i32, which takes integers from -2147483648 to "
                  "2147483647 only; got 3000000000");
}

/* A number in an `in` list is a rank-0 constant of the model's dtype,
 * named NODE.inI. */
Test(constants, literal_numbers)
{
    nb_model *m = load_ok("nabla: 1\n"
                          "dtype: f64\n"
                          "inputs: {x: [3]}\n"
                          "nodes:\n"
                          "  - {name: a, op: add, in: [x, 1.5]}\n"
                          "  - {name: b, op: sub, in: [2, a]}\n"
                          "  - {name: c, op: mul, in: [b, -1e-1]}\n");
    nb_graph *g = nb_model_graph(m);
    expect_values(g, "a.in1", NB_F64, 0, NULL, (double[]){1.5});
    expect_values(g, "b.in0", NB_F64, 0, NULL, (double[]){2});
    expect_values(g, "c.in1", NB_F64, 0, NULL, (double[]){-0.1});
    nb_node *x = nb_graph_find(g, "x");
    double out[3];
    eval_node(g, nb_graph_find(g, "c"), out, 1, &x, (const double *const[]){(double[]){1, 2, 3}});
    expect_close(out, (double[]){0.05, 0.15, 0.25}, 3, 1e-15, 1e-15, "(2 - (x + 1.5)) * -0.1");
    nb_model_free(m);
    EXPECT_ERRORS("nabla: 1\n"
                  "inputs: {x: [3], a.in1: [1]}\n"
                  "nodes:\n"
                  "  - {name: a, op: add, in: [x, 1]}\n"
                  "  - {name: d, layer: dense, in: [2], units: 1}\n"
                  "  - {name: e, op: add, in: [x, true]}\n",
                  "m.yaml:4:32: this number would be constant 'a.in1', a name defined at line 2",
                  "m.yaml:5:34: a layer's input must name a tensor; got '2'",
                  "m.yaml:6:32: a name must be a string; got 'true' (quote it to use it as text)");
}

/* Weights files hold params only: a constant is neither saved nor needed. */
Test(constants, not_in_weights)
{
    nb_model *m = load_ok("nabla: 1\n"
                          "constants: {k: [1, 2]}\n"
                          "inputs: {x: [2]}\n"
                          "params: {w: {shape: [2], init: ones}}\n"
                          "nodes: [{name: y, op: mul, in: [x, k]}, {name: z, op: add, in: [y, w]}]\n");
    nb_graph *g = nb_model_graph(m);
    const char *path = tmp_path("w.safetensors");
    cr_assert_eq(nb_weights_save(g, path, NULL, 0), NB_OK, "%s", nb_graph_error(g));
    nb_tensor_set set = {0};
    cr_assert_eq(nb_safetensors_read(path, &set), NB_OK, "%s", nb_last_error());
    cr_expect_not_null(nb_tensor_set_find(&set, "w"));
    cr_expect_null(nb_tensor_set_find(&set, "k"), "the constant was saved");
    cr_expect_eq(set.n, 1);
    nb_tensor_set_free(&set);
    nb_diags ignored;
    cr_expect_eq(nb_weights_load(g, path, &ignored), NB_OK, "%s", nb_graph_error(g));
    cr_expect_eq(ignored.n, 0);
    nb_diags_free(&ignored);
    nb_model_free(m);
}

/* Diagrams draw constants in their own shape and colour, a scalar with its value. */
Test(constants, rendered)
{
    nb_model *m = load_ok("nabla: 1\n"
                          "constants: {k: [1, 2], h: 0.25}\n"
                          "inputs: {x: [2]}\n"
                          "nodes: [{name: y, op: mul, in: [x, k]}, {name: z, op: add, in: [y, h]},\n"
                          "        {name: u, op: add, in: [z, 7]}]\n");
    const char *path = tmp_path("m.dot");
    cr_assert_eq(nb_render(nb_model_graph(m), path, NULL, NULL), NB_OK, "%s",
                 nb_graph_error(nb_model_graph(m)));
    char *dot = read_text(path, NULL);
    const char *h = strstr(dot, "\th\t[");
    cr_assert_not_null(h, "%s", dot);
    const char *end = strstr(h, "];");
    cr_assert_not_null(end);
    char node[1024];
    snprintf(node, sizeof node, "%.*s", (int)(end - h), h);
    assert_has(node, "shape=octagon");
    assert_has(node, "#0ca678");
    assert_has(node, "constant [] = 0.25");
    assert_has(dot, "constant [] = 7");
    assert_has(dot, "constant [2]");
    assert_has(dot, "&#9632;</font> constant");  /* the caption's key */
    const char *x = strstr(dot, "\tx\t[");
    cr_assert_not_null(x);
    cr_expect_null(strstr(x, "octagon") && strstr(x, "octagon") < strstr(x, "];") ? x : NULL,
                   "the input is drawn as a constant");
    free(dot);
    nb_model_free(m);
}

/* Plans read a constant where it lives: its 4000 bytes are not in the arena,
 * and the plan computes with its values. */
Test(constants, planned_in_place)
{
    nb_graph *g = nb_graph_new();
    double v[1000];
    fill_iota(v, 1000);
    nb_tensor t = tensor_of(NB_F32, 1, (int64_t[]){1000}, v);
    nb_node *c = nb_constant(g, "c", &t);
    nb_tensor_free(&t);
    nb_node *x = input_shaped(g, "x", NB_F32, 1, (int64_t[]){4});
    nb_node *y = nb_add(g, x, nb_sum(g, c, NULL, 0, false));
    cr_assert_not_null(y, "%s", nb_graph_error(g));
    nb_plan *p = plan_new_ok(g, &y, 1);
    plan_bind_ok(p, NULL, 0);
    plan_feed(p, x, (double[]){0, 1, 2, 3});
    plan_run_ok(p);
    double out[4];
    plan_read(p, y, out);
    expect_close(out, (double[]){499500, 499501, 499502, 499503}, 4, 0, 0, "x + sum(c)");
    cr_expect_lt(nb_plan_arena_bytes(p), 1000, "the constant was copied into the arena (%zu bytes)",
                 nb_plan_arena_bytes(p));
    nb_plan_free(p);
    nb_graph_free(g);
}

/* Autodiff through the C API: the textbook's shopping graphs, paths that
 * meet, broadcasting undone, second order, a broken gradient caught, and no
 * dead gradient nodes in the example models. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static nb_node *scalar(nb_graph *g, const char *name) { return nb_input(g, name, NB_F64, 0, NULL); }

Test(autodiff, apple)
{
    nb_graph *g = nb_graph_new();
    nb_node *apple = scalar(g, "apple"), *count = scalar(g, "count"), *tax = scalar(g, "tax");
    nb_node *price = nb_mul(g, nb_mul(g, apple, count), tax);
    nb_node *wrt[3] = {apple, count, tax}, *d[3];
    cr_assert_eq(nb_grad(g, price, wrt, 3, d), NB_OK, "%s", nb_graph_error(g));
    nb_plan *p;
    nb_node *outs[4] = {price, d[0], d[1], d[2]};
    cr_assert_eq(nb_plan_new(g, outs, 4, &p), NB_OK, "%s", nb_graph_error(g));
    nb_plan_set(p, apple, &(double){100});
    nb_plan_set(p, count, &(double){2});
    nb_plan_set(p, tax, &(double){1.1});
    plan_run_ok(p);
    cr_expect_float_eq(*(const double *)nb_plan_get(p, price), 220.0, 1e-12);
    cr_expect_float_eq(*(const double *)nb_plan_get(p, d[0]), 2.2, 1e-12);
    cr_expect_float_eq(*(const double *)nb_plan_get(p, d[1]), 110.0, 1e-12);
    cr_expect_float_eq(*(const double *)nb_plan_get(p, d[2]), 200.0, 1e-12);
    cr_expect_str_eq(nb_node_name(d[0]), "grad.apple");
    nb_plan_free(p);
    nb_graph_free(g);
}

Test(autodiff, apple_and_orange)
{
    nb_graph *g = nb_graph_new();
    nb_node *apple = scalar(g, "apple"), *na = scalar(g, "apple_count");
    nb_node *orange = scalar(g, "orange"), *no = scalar(g, "orange_count"), *tax = scalar(g, "tax");
    nb_node *total = nb_add(g, nb_mul(g, apple, na), nb_mul(g, orange, no));
    nb_node *price = nb_mul(g, total, tax);
    nb_node *wrt[5] = {apple, na, orange, no, tax}, *d[5];
    cr_assert_eq(nb_grad(g, price, wrt, 5, d), NB_OK, "%s", nb_graph_error(g));
    nb_node *outs[6] = {price, d[0], d[1], d[2], d[3], d[4]};
    nb_plan *p = plan_new_ok(g, outs, 6);
    double v[5] = {100, 2, 150, 3, 1.1};
    for (int i = 0; i < 5; i++) nb_plan_set(p, wrt[i], &v[i]);
    plan_run_ok(p);
    double want[5] = {2.2, 110, 3.3, 165, 650};
    cr_expect_float_eq(*(const double *)nb_plan_get(p, price), 715.0, 1e-9);
    for (int i = 0; i < 5; i++)
        cr_expect_float_eq(*(const double *)nb_plan_get(p, d[i]), want[i], 1e-9, "grad %d", i);
    nb_plan_free(p);
    nb_graph_free(g);
}

/* y = x*x + x: two paths meet at x, so dy/dx = 2x + 1 */
Test(autodiff, paths_are_summed)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *y = nb_sum(g, nb_add(g, nb_mul(g, x, x), x), NULL, 0, false);
    nb_node *dx;
    cr_assert_eq(nb_grad(g, y, &x, 1, &dx), NB_OK);
    nb_plan *p = plan_new_ok(g, &dx, 1);
    nb_plan_set(p, x, (double[]){1, -2, 0.5});
    plan_run_ok(p);
    const double *g0 = nb_plan_get(p, dx);
    cr_expect_float_eq(g0[0], 3, 1e-12);
    cr_expect_float_eq(g0[1], -3, 1e-12);
    cr_expect_float_eq(g0[2], 2, 1e-12);
    nb_plan_free(p);
    nb_graph_free(g);
}

/* d/dx (x + b) for b [3] broadcast over x [N, 3]: db sums over N */
Test(autodiff, broadcast_is_summed_back)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(3)});
    nb_node *b = nb_param(g, "b", NB_F64, 1, (int64_t[]){3}, NB_INIT(NB_INIT_ONES));
    nb_node *loss = nb_sum(g, nb_mul(g, nb_add(g, x, b), x), NULL, 0, false);
    nb_node *db;
    cr_assert_eq(nb_grad(g, loss, &b, 1, &db), NB_OK, "%s", nb_graph_error(g));
    cr_assert_eq(nb_node_rank(db), 1);
    nb_plan *p = plan_new_ok(g, &db, 1);
    plan_bind_ok(p, (nb_bind[]){{"N", 2}}, 1);
    nb_plan_set(p, x, (double[]){1, 2, 3, 4, 5, 6});
    plan_run_ok(p);
    const double *d = nb_plan_get(p, db);  /* d/db sum((x+b)*x) = sum over N of x */
    cr_expect_float_eq(d[0], 5, 1e-12);
    cr_expect_float_eq(d[1], 7, 1e-12);
    cr_expect_float_eq(d[2], 9, 1e-12);
    nb_plan_free(p);
    nb_graph_free(g);
}

Test(autodiff, unrelated_wrt_gets_zeros)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 1, (nb_dim[]){NB_DIM(2)});
    nb_node *z = nb_input(g, "z", NB_F64, 1, (nb_dim[]){NB_DIM(2)});
    nb_node *loss = nb_sum(g, nb_exp(g, x), NULL, 0, false);
    size_t before = nb_graph_num_nodes(g);
    nb_node *dz;
    cr_assert_eq(nb_grad(g, loss, &z, 1, &dz), NB_OK);
    /* nothing on a path from z: only the seed and the zeros node are added */
    cr_expect_leq(nb_graph_num_nodes(g) - before, 2);
    nb_plan *p = plan_new_ok(g, &dz, 1);
    plan_run_ok(p);
    const double *d = nb_plan_get(p, dz);
    cr_expect(d[0] == 0 && d[1] == 0);
    nb_plan_free(p);
    nb_graph_free(g);
}

/* d^2/dx^2 x^3 = 6x, by differentiating the gradient graph again */
Test(autodiff, second_order_of_cube)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 1, (nb_dim[]){NB_DIM(4)});
    nb_node *y = nb_sum(g, nb_mul(g, nb_mul(g, x, x), x), NULL, 0, false);
    nb_node *y2 = nb_sum(g, nb_pow(g, x, 3), NULL, 0, false);
    nb_node *dx, *dx2, *ddx, *ddx2;
    cr_assert_eq(nb_grad(g, y, &x, 1, &dx), NB_OK);
    cr_assert_eq(nb_grad(g, y2, &x, 1, &dx2), NB_OK);
    cr_assert_eq(nb_grad(g, nb_sum(g, dx, NULL, 0, false), &x, 1, &ddx), NB_OK, "%s", nb_graph_error(g));
    cr_assert_eq(nb_grad(g, nb_sum(g, dx2, NULL, 0, false), &x, 1, &ddx2), NB_OK);
    nb_plan *p = plan_new_ok(g, (nb_node *[]){ddx, ddx2}, 2);
    double xs[4] = {-1.5, 0, 0.5, 2};
    nb_plan_set(p, x, xs);
    plan_run_ok(p);
    const double *a = nb_plan_get(p, ddx), *b = nb_plan_get(p, ddx2);
    for (int i = 0; i < 4; i++) {
        cr_expect_float_eq(a[i], 6 * xs[i], 1e-12, "mul form at %g", xs[i]);
        cr_expect_float_eq(b[i], 6 * xs[i], 1e-12, "pow form at %g", xs[i]);
    }
    nb_plan_free(p);
    nb_graph_free(g);
}

/* A test-only op whose backward is wrong: gradcheck must catch it. */
static nb_status twice_fwd(const nb_kctx *k)
{
    const double *x = k->in[0];
    double *y = k->out;
    for (size_t i = 0; i < nb_dims_numel(&k->out_shape); i++) y[i] = 2 * x[i];
    return NB_OK;
}
static nb_status twice_shape(nb_shape_ctx *c) { return nb_shape_float_inputs(c); }
static nb_status twice_wrong_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs,
                                 nb_node **gx)
{
    (void)y, (void)needs;
    gx[0] = nb_scale(g, gy, 3, 0);  /* should be 2 */
    return NB_OK;
}
static const nb_op_case twice_case = {.in = {"3,2"}};
static const nb_op_def twice_wrong = {
    .name = "test_twice_wrong", .min_in = 1, .max_in = 1, .shape = twice_shape,
    .forward = twice_fwd, .backward = twice_wrong_bwd, .cases = &twice_case, .n_cases = 1};

Test(autodiff, gradcheck_catches_a_wrong_gradient)
{
    register_test_op(&twice_wrong);
    nb_gc_result r[6];
    int n;
    cr_assert_eq(nb_gradcheck_op(&twice_wrong, &twice_case, NULL, r, &n), NB_OK, "%s", nb_last_error());
    cr_assert_eq(n, 1);
    cr_expect_not(r[0].pass);
    cr_expect_eq(r[0].failures, 6);
    cr_expect_str_eq(r[0].name, "a");
}

/* relu at exactly 0: the central difference (0.5) disagrees with the defined
 * gradient (0); gradcheck reports a kink, not a failure. */
Test(autodiff, gradcheck_reports_kinks_apart)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 1, (nb_dim[]){NB_DIM(4)});
    nb_node *loss = nb_sum(g, nb_relu(g, x), NULL, 0, false);
    double xs[4] = {-0.5, 0.0, 0.25, 0.0};
    nb_feed feed = {x, xs};
    nb_gc_result r;
    cr_assert_eq(nb_gradcheck(g, loss, &x, 1, NULL, 0, &feed, 1, NULL, &r), NB_OK, "%s", nb_graph_error(g));
    cr_expect(r.pass);
    cr_expect_eq(r.kinks, 2);
    cr_expect_eq(r.failures, 0);
    nb_graph_free(g);
}

/* A gradient that is wrong at a kink (outside both one-sided slopes) fails. */
static nb_status relu_like_fwd(const nb_kctx *k)
{
    const double *x = k->in[0];
    double *y = k->out;
    for (size_t i = 0; i < nb_dims_numel(&k->out_shape); i++) y[i] = x[i] > 0 ? x[i] : 0;
    return NB_OK;
}
static nb_status relu_like_wrong_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs,
                                     nb_node **gx)
{
    (void)y, (void)needs;
    gx[0] = nb_scale(g, gy, 5, 0);  /* 5 is neither slope (0 or 1) */
    return NB_OK;
}
static const nb_op_def relu_like_wrong = {
    .name = "test_relu_like_wrong", .min_in = 1, .max_in = 1, .shape = twice_shape,
    .forward = relu_like_fwd, .backward = relu_like_wrong_bwd};

Test(autodiff, a_wrong_gradient_at_a_kink_is_a_failure)
{
    register_test_op(&relu_like_wrong);
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 1, (nb_dim[]){NB_DIM(2)});
    nb_node *loss = nb_sum(g, nb_op(g, "test_relu_like_wrong", "r", &x, 1, NULL, 0), NULL, 0, false);
    double xs[2] = {0.0, 0.0};
    nb_feed feed = {x, xs};
    nb_gc_result r;
    cr_assert_eq(nb_gradcheck(g, loss, &x, 1, NULL, 0, &feed, 1, NULL, &r), NB_OK, "%s", nb_graph_error(g));
    cr_expect_not(r.pass);
    cr_expect_eq(r.failures, 2);
    cr_expect_eq(r.kinks, 0);
    nb_graph_free(g);
}

/* ---- no dead gradient nodes: rules build only what is needed ---- */

/* Gradient nodes that no node reads and that are not among grads[0..n), as
 * "name (op)" in buf; returns how many. */
static int dead_grad_nodes(nb_graph *g, nb_node *const *grads, int n, char *buf, size_t cap)
{
    size_t nn = nb_graph_num_nodes(g), len = 0;
    bool *read = calloc(nn, sizeof *read);
    cr_assert_not_null(read);
    for (size_t i = 0; i < nn; i++) {
        nb_node *v = nb_graph_node(g, i);
        for (int j = 0; j < nb_node_num_inputs(v); j++) {
            nb_node *u = nb_node_input(v, j);
            for (size_t k = 0; k < nn; k++)
                if (nb_graph_node(g, k) == u) read[k] = true;
        }
    }
    for (int k = 0; k < n; k++)
        for (size_t i = 0; i < nn; i++)
            if (nb_graph_node(g, i) == grads[k]) read[i] = true;
    int dead = 0;
    buf[0] = 0;
    for (size_t i = 0; i < nn; i++) {
        nb_node *v = nb_graph_node(g, i);
        if (!nb_node_is_grad(v) || read[i]) continue;
        dead++;
        if (len < cap)
            len += (size_t)snprintf(buf + len, cap - len, " %s (%s)", nb_node_name(v), nb_node_op(v));
    }
    free(read);
    return dead;
}

static void expect_no_dead_grad_nodes(const char *file, bool inputs_too)
{
    nb_model *m = load_example(file);
    nb_node *grads[256];
    int n = model_grads(m, true, inputs_too, grads, 256);
    char dead[2048];
    int k = dead_grad_nodes(nb_model_graph(m), grads, n, dead, sizeof dead);
    cr_expect_eq(k, 0, "%s (%s): %d dead gradient nodes:%s", file,
                 inputs_too ? "params and float inputs" : "params", k, dead);
    nb_model_free(m);
}

/* simple_convnet's input x needs no gradient: its first conv builds none for
 * x (no conv2d_backward_input) and no gradient node is left unread. */
Test(autodiff, convnet_builds_no_gradient_for_its_input)
{
    nb_model *m = load_example("simple_convnet.yaml");
    nb_node *grads[64];
    int n = model_grads(m, true, false, grads, 64);
    nb_graph *g = nb_model_graph(m);
    int n_grad = 0, n_input_grad = 0;
    for (size_t i = 0; i < nb_graph_num_nodes(g); i++) {
        nb_node *v = nb_graph_node(g, i);
        n_grad += nb_node_is_grad(v);
        n_input_grad += nb_node_is_grad(v) && !strcmp(nb_node_op(v), "conv2d_backward_input");
    }
    cr_expect_gt(n_grad, 0);
    cr_expect_eq(n_input_grad, 0, "%d conv2d_backward_input nodes", n_input_grad);
    char dead[2048];
    int k = dead_grad_nodes(g, grads, n, dead, sizeof dead);
    cr_expect_eq(k, 0, "%d dead gradient nodes:%s", k, dead);
    nb_model_free(m);
}

/* Every example model, for the params alone and with the float inputs. */
Test(autodiff, examples_have_no_dead_gradient_nodes)
{
    const char *path = test_file("../examples/models");
    DIR *d = opendir(path);
    cr_assert_not_null(d, "%s", path);
    int models = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml")) continue;
        expect_no_dead_grad_nodes(e->d_name, false);
        expect_no_dead_grad_nodes(e->d_name, true);
        models++;
    }
    closedir(d);
    cr_expect_geq(models, 7, "%d models", models);
}

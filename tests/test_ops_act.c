/* Activations: hand values in f32 and f64, sigmoid and tanh at large |x|,
 * the gradient at relu's kink, second derivatives against closed forms, and
 * dtype/shape errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

typedef nb_node *(*unary_fn)(nb_graph *, nb_node *);

/* y = f(x) on x = xs[0..n) as dtype dt; y's values as doubles in ys. */
static void eval_unary(nb_dtype dt, unary_fn f, const double *xs, int n, double *ys)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", dt, 1, (nb_dim[]){NB_DIM(n)});
    nb_node *y = f(g, x);
    cr_assert_not_null(y, "%s", nb_graph_error(g));
    eval_node(g, y, ys, 1, &x, &xs);
    nb_graph_free(g);
}

/* Checks f on both float dtypes; f32 to its precision. */
static void expect_values(unary_fn f, const char *what, const double *xs, const double *want, int n)
{
    nb_dtype dts[2] = {NB_F32, NB_F64};
    for (int d = 0; d < 2; d++) {
        double ys[16];
        char name[64];
        eval_unary(dts[d], f, xs, n, ys);
        snprintf(name, sizeof name, "%s in %s", what, nb_dtype_name(dts[d]));
        expect_near(ys, want, (size_t)n, dts[d] == NB_F64 ? 1e-15 : 1e-6, name);
    }
}

static nb_node *leaky_01(nb_graph *g, nb_node *x) { return nb_leaky_relu(g, x, 0.1); }
static nb_node *leaky_default(nb_graph *g, nb_node *x)
{
    return nb_op(g, "leaky_relu", NULL, &x, 1, NULL, 0);
}

Test(act, relu_values)
{
    double xs[5] = {-2, -0.5, 0, 0.5, 3}, want[5] = {0, 0, 0, 0.5, 3};
    expect_values(nb_relu, "relu", xs, want, 5);
}

Test(act, leaky_relu_values)
{
    double xs[5] = {-2, -0.5, 0, 0.5, 3};
    expect_values(leaky_01, "leaky_relu", xs, (double[]){-0.2, -0.05, 0, 0.5, 3}, 5);
    expect_values(leaky_default, "leaky_relu(default alpha)", xs,
                  (double[]){-0.02, -0.005, 0, 0.5, 3}, 5);
}

Test(act, sigmoid_values)
{
    double xs[5] = {0, 2, -2, 40, -40};
    double want[5] = {0.5, 0.8807970779778823, 0.11920292202211755, 1, 4.248354255291589e-18};
    expect_values(nb_sigmoid, "sigmoid", xs, want, 5);
}

/* e^1000 overflows: a naive 1/(1+e^-x) or e^x/(1+e^x) gives NaN on one side */
Test(act, sigmoid_is_safe_for_large_inputs)
{
    nb_dtype dts[2] = {NB_F32, NB_F64};
    for (int d = 0; d < 2; d++) {
        double ys[4];
        eval_unary(dts[d], nb_sigmoid, (double[]){1000, -1000, 89, -100}, 4, ys);
        cr_expect_eq(ys[0], 1.0, "%s", nb_dtype_name(dts[d]));
        cr_expect_eq(ys[1], 0.0, "%s", nb_dtype_name(dts[d]));
        cr_expect_eq(ys[2], 1.0, "%s", nb_dtype_name(dts[d]));
        cr_expect(ys[3] >= 0 && ys[3] < 1e-40, "%s: sigmoid(-100) = %g", nb_dtype_name(dts[d]), ys[3]);
    }
    double y;
    eval_unary(NB_F64, nb_sigmoid, (double[]){-100}, 1, &y);
    cr_expect_float_eq(y, 3.7200759760208356e-44, 1e-58);
}

Test(act, tanh_values)
{
    double xs[5] = {0, 1, -2, 30, -1000};
    double want[5] = {0, 0.7615941559557649, -0.9640275800758169, 1, -1};
    expect_values(nb_tanh, "tanh", xs, want, 5);
}

/* d/dx sum(f(x)) evaluated at xs (f64). */
static void eval_grad(unary_fn f, const double *xs, int n, double *dx_out)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 1, (nb_dim[]){NB_DIM(n)});
    nb_node *dx;
    cr_assert_eq(nb_grad(g, nb_sum(g, f(g, x), NULL, 0, false), &x, 1, &dx), NB_OK, "%s",
                 nb_graph_error(g));
    eval_node(g, dx, dx_out, 1, &x, &xs);
    nb_graph_free(g);
}

static nb_node *leaky_02(nb_graph *g, nb_node *x) { return nb_leaky_relu(g, x, 0.2); }

/* the kink: relu's gradient at 0 is 0, leaky_relu's is alpha */
Test(act, gradient_at_zero)
{
    double xs[3] = {-1, 0, 2}, d[3];
    eval_grad(nb_relu, xs, 3, d);
    cr_expect(d[0] == 0 && d[1] == 0 && d[2] == 1, "relu: %g %g %g", d[0], d[1], d[2]);
    eval_grad(leaky_02, xs, 3, d);
    cr_expect(fabs(d[0] - 0.2) < 1e-15 && fabs(d[1] - 0.2) < 1e-15 && d[2] == 1,
              "leaky_relu: %g %g %g", d[0], d[1], d[2]);
}

/* relu's gradient gates on its output y (so its input need not stay alive for
 * the backward pass): the same as gating on x at every special value, a NaN
 * x passing the gradient as before (y is NaN too), -0 and -inf stopping it. */
Test(act, relu_gradient_gates_on_its_output)
{
    double xs[8] = {-1, -0.0, 0, NAN, 2, 1e-300, -INFINITY, INFINITY}, d[8];
    double want[8] = {0, 0, 0, 1, 1, 1, 0, 1};
    eval_grad(nb_relu, xs, 8, d);
    for (int i = 0; i < 8; i++) cr_expect_eq(d[i], want[i], "relu'(%g) = %g, want %g", xs[i], d[i], want[i]);

    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *y = nb_relu(g, x), *dx;
    cr_assert_eq(nb_grad(g, nb_sum(g, y, NULL, 0, false), &x, 1, &dx), NB_OK, "%s", nb_graph_error(g));
    cr_expect_str_eq(nb_node_op(dx), "relu_backward");
    cr_expect(nb_node_input(dx, 1) == y, "the gate is %s, not relu's output", nb_node_name(nb_node_input(dx, 1)));
    nb_graph_free(g);
}

/* leaky_relu's too when alpha >= 0; with a negative alpha (y > 0 for x < 0)
 * it must keep gating on x. */
static nb_node *leaky_neg(nb_graph *g, nb_node *x) { return nb_leaky_relu(g, x, -0.5); }
static nb_node *leaky_zero(nb_graph *g, nb_node *x) { return nb_leaky_relu(g, x, 0); }

Test(act, leaky_relu_gradient_gates_on_its_output_when_alpha_is_not_negative)
{
    double xs[7] = {-1, -0.0, 0, NAN, 2, -INFINITY, INFINITY}, d[7];
    double want02[7] = {0.2, 0.2, 0.2, 0.2, 1, 0.2, 1}, want_neg[7] = {-0.5, -0.5, -0.5, -0.5, 1, -0.5, 1};
    double want0[7] = {0, 0, 0, 0, 1, 0, 1};
    eval_grad(leaky_02, xs, 7, d);
    for (int i = 0; i < 7; i++) cr_expect(fabs(d[i] - want02[i]) < 1e-15, "alpha 0.2 at %g: %g", xs[i], d[i]);
    eval_grad(leaky_zero, xs, 7, d);
    for (int i = 0; i < 7; i++) cr_expect_eq(d[i], want0[i], "alpha 0 at %g: %g", xs[i], d[i]);
    eval_grad(leaky_neg, xs, 7, d);
    for (int i = 0; i < 7; i++) cr_expect(fabs(d[i] - want_neg[i]) < 1e-15, "alpha -0.5 at %g: %g", xs[i], d[i]);

    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *y = nb_leaky_relu(g, x, 0.2), *yn = nb_leaky_relu(g, x, -0.5), *dx[2];
    cr_assert_eq(nb_grad(g, nb_sum(g, y, NULL, 0, false), &x, 1, &dx[0]), NB_OK, "%s", nb_graph_error(g));
    cr_assert_eq(nb_grad(g, nb_sum(g, yn, NULL, 0, false), &x, 1, &dx[1]), NB_OK, "%s", nb_graph_error(g));
    cr_expect(nb_node_input(dx[0], 1) == y, "alpha 0.2: the gate is %s", nb_node_name(nb_node_input(dx[0], 1)));
    cr_expect(nb_node_input(dx[1], 1) == x, "alpha -0.5: the gate is %s", nb_node_name(nb_node_input(dx[1], 1)));
    nb_graph_free(g);
}

Test(act, first_derivatives_of_sigmoid_and_tanh)
{
    double xs[4] = {-3, -0.5, 0, 2}, d[4];
    eval_grad(nb_sigmoid, xs, 4, d);
    for (int i = 0; i < 4; i++) {
        double s = 1 / (1 + exp(-xs[i]));
        cr_expect_float_eq(d[i], s * (1 - s), 1e-15, "sigmoid'(%g)", xs[i]);
    }
    eval_grad(nb_tanh, xs, 4, d);
    for (int i = 0; i < 4; i++)
        cr_expect_float_eq(d[i], 1 - tanh(xs[i]) * tanh(xs[i]), 1e-15, "tanh'(%g)", xs[i]);
}

/* d^2/dx^2 of sum(f(x)), elementwise, by differentiating the gradient graph. */
static void eval_second(unary_fn f, const double *xs, int n, double *out)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 1, (nb_dim[]){NB_DIM(n)});
    nb_node *dx, *ddx;
    cr_assert_eq(nb_grad(g, nb_sum(g, f(g, x), NULL, 0, false), &x, 1, &dx), NB_OK);
    cr_assert_eq(nb_grad(g, nb_sum(g, dx, NULL, 0, false), &x, 1, &ddx), NB_OK, "%s",
                 nb_graph_error(g));
    eval_node(g, ddx, out, 1, &x, &xs);
    nb_graph_free(g);
}

Test(act, second_derivatives_of_tanh_and_sigmoid)
{
    double xs[5] = {-3, -0.5, 0, 0.7, 2}, d[5];
    eval_second(nb_tanh, xs, 5, d);
    for (int i = 0; i < 5; i++) {
        double t = tanh(xs[i]);
        cr_expect_float_eq(d[i], -2 * t * (1 - t * t), 1e-14, "tanh''(%g) = %.17g", xs[i], d[i]);
    }
    eval_second(nb_sigmoid, xs, 5, d);
    for (int i = 0; i < 5; i++) {
        double s = 1 / (1 + exp(-xs[i]));
        cr_expect_float_eq(d[i], s * (1 - s) * (1 - 2 * s), 1e-14, "sigmoid''(%g) = %.17g",
                           xs[i], d[i]);
    }
}

/* relu's second derivative is 0; the graph must still build (relu_backward has a rule) */
Test(act, second_derivative_of_relu_is_zero)
{
    double xs[4] = {-1, -0.2, 0.3, 2}, d[4], dl[4];
    eval_second(nb_relu, xs, 4, d);
    eval_second(leaky_02, xs, 4, dl);
    for (int i = 0; i < 4; i++) {
        cr_expect_eq(d[i], 0.0, "relu at %g", xs[i]);
        cr_expect_eq(dl[i], 0.0, "leaky_relu at %g", xs[i]);
    }
}

static nb_node *relu_squared(nb_graph *g, nb_node *x)
{
    nb_node *y = nb_relu(g, x);
    return nb_mul(g, y, y);
}
static nb_node *leaky_squared(nb_graph *g, nb_node *x)
{
    nb_node *y = nb_leaky_relu(g, x, 0.5);
    return nb_mul(g, y, y);
}

/* d^2/dx^2 relu(x)^2 = 2 [x > 0]: second order passes through relu_backward's gy */
Test(act, second_order_through_relu_backward)
{
    double xs[4] = {-1, -0.2, 0.3, 2}, d[4];
    eval_second(relu_squared, xs, 4, d);
    expect_close(d, (double[]){0, 0, 2, 2}, 4, 1e-15, 0, "relu");
    eval_second(leaky_squared, xs, 4, d);  /* 2 alpha^2 below 0 */
    expect_close(d, (double[]){0.5, 0.5, 2, 2}, 4, 1e-15, 0, "leaky");
}

Test(act, integer_input_is_an_error)
{
    nb_graph *g = nb_graph_new();
    nb_node *t = nb_input(g, "t", NB_I32, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *y = nb_op(g, "sigmoid", "act", &t, 1, NULL, 0);
    cr_expect_null(y);
    expect_graph_error(g, NB_ERR_DTYPE, (const char *[]){"node 'act'", "t is i32"}, 2);
    nb_graph_free(g);
}

Test(act, relu_backward_needs_equal_shapes)
{
    nb_graph *g = nb_graph_new();
    nb_node *gy = nb_input(g, "gy", NB_F32, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(3)});
    nb_node *a = nb_input(g, "a", NB_F32, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(4)});
    cr_expect_null(nb_op(g, "relu_backward", "rb", (nb_node *[]){gy, a}, 2, NULL, 0));
    expect_graph_error(g, NB_ERR_SHAPE, (const char *[]){"node 'rb'", "gy is [N, 3]", "a is [N, 4]"}, 3);
    nb_graph_free(g);
}

Test(act, leaky_relu_attribute_must_be_a_number)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 1, (nb_dim[]){NB_DIM(3)});
    nb_attr bad = NB_ABOOL("alpha", 1);
    cr_expect_null(nb_op(g, "leaky_relu", "lr", &x, 1, &bad, 1));
    expect_graph_error(g, NB_ERR_ARG, (const char *[]){"alpha"}, 1);
    nb_graph_free(g);
}

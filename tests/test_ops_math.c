/* Forward values of the elementwise and reduction ops by hand, in f32 and
 * f64, with broadcasting; gradients where the rule is special (ties, 0). */
#include <criterion/criterion.h>
#include <math.h>

#include "testutil.h"

static const nb_dtype both[2] = {NB_F32, NB_F64};

/* a [2, 3] op b [3]: b broadcast over rows */
Test(math, binary_ops_broadcast)
{
    const double a[6] = {1, 2, 3, 4, 5, 6}, b[3] = {10, -2, 0.5};
    const double want[4][6] = {
        {11, 0, 3.5, 14, 3, 6.5},
        {-9, 4, 2.5, -6, 7, 5.5},
        {10, -4, 1.5, 40, -10, 3},
        {0.1, -1, 6, 0.4, -2.5, 12},
    };
    const char *ops[4] = {"add", "sub", "mul", "div"};
    for (int d = 0; d < 2; d++)
        for (int k = 0; k < 4; k++) {
            nb_graph *g = nb_graph_new();
            nb_node *x = nb_input(g, "a", both[d], 2, (nb_dim[]){NB_DIM(2), NB_DIM(3)});
            nb_node *y = nb_input(g, "b", both[d], 1, (nb_dim[]){NB_DIM(3)});
            nb_node *z = nb_op(g, ops[k], "z", (nb_node *[]){x, y}, 2, NULL, 0);
            double got[6];
            eval_node(g, z, got, 2, (nb_node *[]){x, y}, (const double *[]){a, b});
            expect_close(got, want[k], 6, 1e-6, 1e-6, ops[k]);
            nb_graph_free(g);
        }
}

/* [3, 1] + [1, 2] -> [3, 2]: both sides broadcast; scalar * tensor */
Test(math, broadcast_both_sides_and_scalars)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "a", NB_F64, 2, (nb_dim[]){NB_DIM(3), NB_DIM(1)});
    nb_node *b = nb_input(g, "b", NB_F64, 2, (nb_dim[]){NB_DIM(1), NB_DIM(2)});
    nb_node *s = nb_input(g, "s", NB_F64, 0, NULL);
    nb_node *y = nb_mul(g, nb_add(g, a, b), s);
    double got[6];
    eval_node(g, y, got, 3, (nb_node *[]){a, b, s},
              (const double *[]){(double[]){1, 2, 3}, (double[]){10, 20}, (double[]){-1}});
    expect_close(got, (double[]){-11, -21, -12, -22, -13, -23}, 6, 1e-12, 1e-12, "(a+b)*s");
    nb_graph_free(g);
}

Test(math, unary_ops)
{
    const double x[4] = {0.25, 1, 4, 9};
    struct { const char *name; double want[4]; } cases[] = {
        {"neg", {-0.25, -1, -4, -9}},
        {"exp", {exp(0.25), exp(1), exp(4), exp(9)}},
        {"log", {log(0.25), 0, log(4), log(9)}},
        {"sqrt", {0.5, 1, 2, 3}},
        {"abs", {0.25, 1, 4, 9}},
    };
    for (int d = 0; d < 2; d++)
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            nb_graph *g = nb_graph_new();
            nb_node *a = nb_input(g, "x", both[d], 1, (nb_dim[]){NB_DIM(4)});
            nb_node *y = nb_op(g, cases[k].name, "y", &a, 1, NULL, 0);
            double got[4];
            eval_node(g, y, got, 1, &a, (const double *[]){x});
            expect_close(got, cases[k].want, 4, 1e-6, 1e-6, cases[k].name);
            nb_graph_free(g);
        }
}

Test(math, pow_abs_and_scale)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "x", NB_F64, 1, (nb_dim[]){NB_DIM(3)});
    double got[3];
    eval_node(g, nb_pow(g, a, 3), got, 1, &a, (const double *[]){(double[]){-2, 0.5, 3}});
    expect_close(got, (double[]){-8, 0.125, 27}, 3, 1e-12, 1e-12, "pow 3");
    eval_node(g, nb_pow(g, a, -0.5), got, 1, &a, (const double *[]){(double[]){4, 0.25, 1}});
    expect_close(got, (double[]){0.5, 2, 1}, 3, 1e-12, 1e-12, "pow -0.5");
    eval_node(g, nb_abs(g, a), got, 1, &a, (const double *[]){(double[]){-2, 0, 3}});
    expect_close(got, (double[]){2, 0, 3}, 3, 0, 0, "abs");
    eval_node(g, nb_scale(g, a, -2, 1), got, 1, &a, (const double *[]){(double[]){-2, 0, 3}});
    expect_close(got, (double[]){5, 1, -5}, 3, 0, 0, "scale");
    nb_graph_free(g);
}

/* x [2, 3] = [[1, 5, 3], [4, 2, 6]] */
Test(math, reductions_with_axes_and_keepdims)
{
    const double x[6] = {1, 5, 3, 4, 2, 6};
    struct { const char *op; int64_t axes[2]; int n_axes; bool keep; int rank; double want[3]; int n; } cases[] = {
        {"sum", {0}, 0, false, 0, {21}, 1},
        {"sum", {0}, 1, false, 1, {5, 7, 9}, 3},
        {"sum", {1}, 1, true, 2, {9, 12}, 2},
        {"mean", {-1}, 1, false, 1, {3, 4}, 2},
        {"mean", {0, 1}, 2, true, 2, {3.5}, 1},
        {"max", {1}, 1, false, 1, {5, 6}, 2},
        {"max", {0}, 1, true, 2, {4, 5, 6}, 3},
        {"max", {0}, 0, false, 0, {6}, 1},
    };
    for (int d = 0; d < 2; d++)
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            nb_graph *g = nb_graph_new();
            nb_node *a = nb_input(g, "x", both[d], 2, (nb_dim[]){NB_DIM(2), NB_DIM(3)});
            nb_attr at[2] = {{.name = "axis", .type = NB_ATTR_INTS, .n = cases[k].n_axes,
                              .i = {cases[k].axes[0], cases[k].axes[1]}},
                             NB_ABOOL("keepdims", cases[k].keep)};
            /* no axis attribute means all axes (an empty list is refused) */
            bool all = cases[k].n_axes == 0;
            nb_node *y = nb_op(g, cases[k].op, "y", &a, 1, at + all, 2 - all);
            cr_assert_not_null(y, "%s", nb_graph_error(g));
            cr_expect_eq(nb_node_rank(y), cases[k].rank, "%s case %zu rank", cases[k].op, k);
            double got[3];
            eval_node(g, y, got, 1, &a, (const double *[]){x});
            expect_close(got, cases[k].want, (size_t)cases[k].n, 1e-6, 1e-6, cases[k].op);
            nb_graph_free(g);
        }
}

/* max with ties splits the gradient evenly (torch.amax); abs at 0 has gradient 0 */
Test(math, max_ties_split_the_gradient)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 2, (nb_dim[]){NB_DIM(2), NB_DIM(3)});
    nb_node *m = nb_max(g, x, (int64_t[]){1}, 1, false);
    nb_node *loss = nb_sum(g, nb_mul(g, m, nb_input(g, "w", NB_F64, 1, (nb_dim[]){NB_DIM(2)})), NULL, 0, false);
    nb_node *dx;
    cr_assert_eq(nb_grad(g, loss, &x, 1, &dx), NB_OK, "%s", nb_graph_error(g));
    double got[6];
    nb_node *in[2] = {x, nb_graph_find(g, "w")};
    eval_node(g, dx, got, 2, in, (const double *[]){(double[]){7, 7, 1, 2, 9, 9}, (double[]){3, 10}});
    expect_close(got, (double[]){1.5, 1.5, 0, 0, 5, 5}, 6, 1e-12, 1e-12, "d max");
    nb_graph_free(g);
}

Test(math, abs_has_gradient_zero_at_zero)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *dx;
    cr_assert_eq(nb_grad(g, nb_sum(g, nb_abs(g, x), NULL, 0, false), &x, 1, &dx), NB_OK);
    double got[3];
    eval_node(g, dx, got, 1, &x, (const double *[]){(double[]){-2, 0, 3}});
    expect_close(got, (double[]){-1, 0, 1}, 3, 0, 0, "d abs");
    nb_graph_free(g);
}

Test(math, reduction_errors)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 2, (nb_dim[]){NB_DIM(2), NB_DIM(3)});
    cr_expect_null(nb_sum(g, x, (int64_t[]){2}, 1, false));
    cr_expect_str_eq(nb_graph_error(g), "node 'sum_1': sum axis 2 is out of range for rank 2");
    nb_graph_clear_error(g);
    cr_expect_null(nb_mean(g, x, (int64_t[]){1, -1}, 2, false));
    cr_expect_str_eq(nb_graph_error(g), "node 'mean_2': mean axis 1 is listed twice");
    nb_graph_free(g);
}

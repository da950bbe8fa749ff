/* softmax and log_softmax: hand values in f32 and f64, rows summing to 1,
 * axes first, middle and last, stability with large logits, log_softmax
 * against log(softmax), second order, and axis errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

/* y = softmax or log_softmax(x, axis) for x of the given shape; y as doubles. */
static void eval_softmax(bool take_log, nb_dtype dt, int rank, const int64_t *shape, int64_t axis,
                         const double *xs, double *ys)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = input_shaped(g, "x", dt, rank, shape);
    nb_node *y = take_log ? nb_log_softmax(g, x, axis) : nb_softmax(g, x, axis);
    cr_assert_not_null(y, "%s", nb_graph_error(g));
    eval_node(g, y, ys, 1, &x, &xs);
    nb_graph_free(g);
}

static const nb_dtype dts[2] = {NB_F32, NB_F64};
static double tol(nb_dtype dt) { return dt == NB_F64 ? 1e-15 : 1e-6; }

/* softmax([1, 2, 3]) and log_softmax([1, 2, 3]) */
static const double sm123[3] = {0.09003057317038043, 0.24472847105479759, 0.6652409557748217};
static const double lsm123[3] = {-2.4076059644443806, -1.4076059644443806, -0.4076059644443806};

Test(softmax, hand_values)
{
    for (int d = 0; d < 2; d++) {
        double y[3], ly[3];
        eval_softmax(false, dts[d], 1, (int64_t[]){3}, -1, (double[]){1, 2, 3}, y);
        eval_softmax(true, dts[d], 1, (int64_t[]){3}, 0, (double[]){1, 2, 3}, ly);
        expect_close(y, sm123, 3, tol(dts[d]), 0, nb_dtype_name(dts[d]));
        expect_close(ly, lsm123, 3, 4 * tol(dts[d]), 0, nb_dtype_name(dts[d]));
    }
}

Test(softmax, rows_sum_to_one)
{
    double xs[12] = {0.3, -1.2, 4.0, 2.2, 0, 0, 0, 0, -7, 3, 1.5, 0.1}, y[12];
    for (int d = 0; d < 2; d++) {
        eval_softmax(false, dts[d], 2, (int64_t[]){3, 4}, -1, xs, y);
        for (int r = 0; r < 3; r++) {
            double s = 0;
            for (int k = 0; k < 4; k++) {
                cr_expect(y[r * 4 + k] > 0 && y[r * 4 + k] < 1);
                s += y[r * 4 + k];
            }
            cr_expect_float_eq(s, 1.0, 4 * tol(dts[d]), "%s row %d sums to %.17g",
                               nb_dtype_name(dts[d]), r, s);
        }
        cr_expect_float_eq(y[4], 0.25, tol(dts[d]), "equal logits share evenly");
    }
}

/* e^1000 overflows: only max subtraction keeps these finite and right */
Test(softmax, stable_with_large_logits)
{
    for (int d = 0; d < 2; d++) {
        double y[3], ly[3], neg[2];
        eval_softmax(false, dts[d], 1, (int64_t[]){3}, -1, (double[]){1000, 1001, 1002}, y);
        eval_softmax(true, dts[d], 1, (int64_t[]){3}, -1, (double[]){1000, 1001, 1002}, ly);
        for (int i = 0; i < 3; i++)
            cr_expect(isfinite(y[i]) && isfinite(ly[i]), "%s: %g %g", nb_dtype_name(dts[d]), y[i], ly[i]);
        expect_close(y, sm123, 3, tol(dts[d]), 0, nb_dtype_name(dts[d]));
        expect_close(ly, lsm123, 3, 4 * tol(dts[d]), 0, nb_dtype_name(dts[d]));
        eval_softmax(true, dts[d], 1, (int64_t[]){2}, -1, (double[]){-1000, 0}, neg);
        cr_expect_float_eq(neg[0], -1000.0, 1e-3, "log_softmax keeps the tiny one: %g", neg[0]);
        cr_expect_float_eq(neg[1], 0.0, 1e-12);
    }
}

/* softmax of x [2, 3, 2] computed by hand along one axis */
static void reference(const double *x, int axis, double *want)
{
    int64_t dim[3] = {2, 3, 2}, st[3] = {6, 2, 1};
    for (int i = 0; i < 12; i++) {
        int64_t base = i - (i / st[axis] % dim[axis]) * st[axis];
        double s = 0;
        for (int k = 0; k < dim[axis]; k++) s += exp(x[base + k * st[axis]]);
        want[i] = exp(x[i]) / s;
    }
}

Test(softmax, any_axis_of_rank_3)
{
    double xs[12] = {0.5, -1, 2, 0.1, -0.3, 1.7, 3, 0, -2, 0.4, 1.1, -0.6}, y[12], want[12];
    int64_t axes[4] = {0, 1, 2, -2};
    for (int d = 0; d < 2; d++)
        for (int a = 0; a < 4; a++) {
            eval_softmax(false, dts[d], 3, (int64_t[]){2, 3, 2}, axes[a], xs, y);
            reference(xs, (int)(axes[a] < 0 ? axes[a] + 3 : axes[a]), want);
            char what[32];
            snprintf(what, sizeof what, "%s axis %lld", nb_dtype_name(dts[d]), (long long)axes[a]);
            expect_close(y, want, 12, 4 * tol(dts[d]), 0, what);
        }
}

Test(softmax, size_one_axis_gives_ones)
{
    double y[3], ly[3];
    eval_softmax(false, NB_F64, 2, (int64_t[]){3, 1}, -1, (double[]){5, -2, 0.3}, y);
    eval_softmax(true, NB_F64, 2, (int64_t[]){3, 1}, 1, (double[]){5, -2, 0.3}, ly);
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(y[i], 1.0);
        cr_expect_eq(ly[i], 0.0);
    }
}

Test(softmax, log_softmax_is_log_of_softmax)
{
    double xs[24], y[24], ly[24];
    for (int i = 0; i < 24; i++) xs[i] = sin(1.7 * i) * 4;
    for (int d = 0; d < 2; d++)
        for (int64_t axis = 0; axis < 3; axis++) {
            eval_softmax(false, dts[d], 3, (int64_t[]){2, 4, 3}, axis, xs, y);
            eval_softmax(true, dts[d], 3, (int64_t[]){2, 4, 3}, axis, xs, ly);
            for (int i = 0; i < 24; i++)
                cr_expect_float_eq(ly[i], log(y[i]), 50 * tol(dts[d]), "%s axis %lld [%d]",
                                   nb_dtype_name(dts[d]), (long long)axis, i);
        }
}

/* The gradient graph of sum(op(x) * R) differentiated again, against central
 * differences: second order works through the composed backward rules. */
static void check_second_order(bool take_log, int64_t axis)
{
    nb_graph *g = nb_graph_new();
    nb_dim dims[3] = {NB_DIM(2), NB_DIM(3), NB_DIM(4)};
    nb_node *x = nb_input(g, "x", NB_F64, 3, dims);
    nb_node *r = nb_input(g, "r", NB_F64, 3, dims), *r2 = nb_input(g, "r2", NB_F64, 3, dims);
    nb_node *y = take_log ? nb_log_softmax(g, x, axis) : nb_softmax(g, x, axis), *dx;
    cr_assert_eq(nb_grad(g, nb_sum(g, nb_mul(g, y, r), NULL, 0, false), &x, 1, &dx), NB_OK);
    nb_node *loss = nb_sum(g, nb_mul(g, dx, r2), NULL, 0, false);
    double xs[24], rs[24], r2s[24];
    for (int i = 0; i < 24; i++) xs[i] = sin(i + 0.5), rs[i] = cos(3.0 * i), r2s[i] = sin(2.0 * i + 1);
    nb_feed feeds[3] = {{x, xs}, {r, rs}, {r2, r2s}};
    nb_gc_result res;
    cr_assert_eq(nb_gradcheck(g, loss, &x, 1, NULL, 0, feeds, 3, NULL, &res), NB_OK,
                 "%s", nb_graph_error(g));
    cr_expect(res.pass, "%s axis %lld: max abs err %g", take_log ? "log_softmax" : "softmax",
              (long long)axis, res.max_abs);
    cr_expect_eq(res.checked, 24);
    nb_graph_free(g);
}

Test(softmax, second_order)
{
    for (int64_t axis = -1; axis < 3; axis++) {
        check_second_order(false, axis);
        check_second_order(true, axis);
    }
}

Test(softmax, axis_out_of_range)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(10)});
    cr_expect_null(nb_op(g, "softmax", "probs", &x, 1, (nb_attr[]){NB_AINT("axis", 2)}, 1));
    expect_graph_error(g, NB_ERR_ARG, (const char *[]){"node 'probs'", "axis 2", "rank 2"}, 3);
    nb_graph_clear_error(g);
    cr_expect_null(nb_log_softmax(g, x, -3));
    cr_expect(strstr(nb_graph_error(g), "axis -3"), "%s", nb_graph_error(g));
    nb_graph_clear_error(g);
    nb_node *s = nb_input(g, "s", NB_F32, 0, NULL);
    cr_expect_null(nb_softmax(g, s, -1), "a scalar has no axis");
    nb_graph_free(g);
}

/* a symbolic batch is bound at plan time */
Test(softmax, symbolic_batch)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(3)});
    nb_node *y = nb_softmax(g, x, 1);
    nb_plan *p = plan_new_ok(g, &y, 1);
    plan_bind_ok(p, (nb_bind[]){{"N", 2}}, 1);
    nb_plan_set(p, x, (float[]){1, 2, 3, 1001, 1002, 1003});
    plan_run_ok(p);
    const float *o = nb_plan_get(p, y);
    for (int i = 0; i < 6; i++) cr_expect_float_eq(o[i], sm123[i % 3], 1e-6, "[%d] = %g", i, o[i]);
    nb_plan_free(p);
    nb_graph_free(g);
}

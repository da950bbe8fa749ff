/* softmax_cross_entropy and mse: hand values in f32 and f64, class ids and
 * one-hot labels agreeing, gradients by hand, large logits, labels out of
 * range at run time, second order, and shape errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

static const nb_dtype dts[2] = {NB_F32, NB_F64};

/* The 2x3 example: logits [[1, 2, 3], [1, 0, -1]], classes [2, 1]. */
static const double logits23[6] = {1, 2, 3, 1, 0, -1};
static const int32_t ids23[2] = {2, 1};
static const double onehot23[6] = {0, 0, 1, 0, 1, 0};
/* per row: log-sum-exp minus the true logit, 0.4076... and 1.4076...; mean: */
static const double loss23 = 0.9076059644443805;
/* (softmax - onehot) / N */
static const double dlogits23[6] = {0.04501528658519022, 0.12236423552739879, -0.16737952211258916,
                                    0.33262047788741095, -0.37763576447260117, 0.04501528658519022};

/* loss and d loss / d logits for the 2x3 example with class ids or one-hot labels */
static void xent23(nb_dtype dt, bool onehot, double *loss, double *dx)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "y", dt, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(3)});
    nb_node *t = onehot ? nb_input(g, "t", dt, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(3)})
                        : nb_input(g, "t", NB_I32, 1, (nb_dim[]){NB_SYM("N")});
    nb_node *l = nb_softmax_cross_entropy(g, x, t), *gx;
    cr_assert_not_null(l, "%s", nb_graph_error(g));
    cr_assert_eq(nb_node_rank(l), 0);
    cr_assert_eq(nb_grad(g, l, &x, 1, &gx), NB_OK, "%s", nb_graph_error(g));
    const double ids[2] = {ids23[0], ids23[1]};
    eval_graph(g, 2, (nb_node *[]){l, gx}, (double *[]){loss, dx}, 2, (nb_node *[]){x, t},
               (const double *[]){logits23, onehot ? onehot23 : ids}, (nb_bind[]){{"N", 2}}, 1);
    nb_graph_free(g);
}

Test(loss, cross_entropy_by_hand)
{
    for (int d = 0; d < 2; d++) {
        double tol = dts[d] == NB_F64 ? 1e-15 : 1e-6, l_ids, l_hot, d_ids[6], d_hot[6];
        xent23(dts[d], false, &l_ids, d_ids);
        xent23(dts[d], true, &l_hot, d_hot);
        cr_expect_float_eq(l_ids, loss23, tol, "%s class ids: %.17g", nb_dtype_name(dts[d]), l_ids);
        cr_expect_float_eq(l_hot, loss23, tol, "%s one-hot: %.17g", nb_dtype_name(dts[d]), l_hot);
        char what[2][32];
        snprintf(what[0], sizeof what[0], "%s ids grad", nb_dtype_name(dts[d]));
        snprintf(what[1], sizeof what[1], "%s one-hot grad", nb_dtype_name(dts[d]));
        expect_close(d_ids, dlogits23, 6, tol, 0, what[0]);
        expect_close(d_hot, dlogits23, 6, tol, 0, what[1]);
    }
}

/* rows [1000, 1001, 1002] and [-998, -997, -996], class 2: e^1000 would
 * overflow without the max, and adding it back before subtracting the true
 * logit would cost f32 its precision */
Test(loss, cross_entropy_stable_with_large_logits)
{
    for (int d = 0; d < 2; d++) {
        nb_graph *g = nb_graph_new();
        nb_node *x = nb_input(g, "y", dts[d], 2, (nb_dim[]){NB_DIM(2), NB_DIM(3)});
        nb_node *t = nb_input(g, "t", NB_I32, 1, (nb_dim[]){NB_DIM(2)});
        nb_node *l = nb_softmax_cross_entropy(g, x, t), *gx;
        cr_assert_eq(nb_grad(g, l, &x, 1, &gx), NB_OK, "%s", nb_graph_error(g));
        double xs[6] = {1000, 1001, 1002, -998, -997, -996}, l0, dx[6];
        eval_graph(g, 2, (nb_node *[]){l, gx}, (double *[]){&l0, dx}, 2, (nb_node *[]){x, t},
                   (const double *[]){xs, (double[]){2, 2}}, NULL, 0);
        cr_expect(isfinite(l0));
        cr_expect_float_eq(l0, 0.4076059644443806, 1e-6, "%s: %.17g", nb_dtype_name(dts[d]), l0);
        for (int i = 0; i < 6; i++)
            cr_expect(isfinite(dx[i]) && fabs(dx[i] - dlogits23[i % 3]) < 1e-6, "%s grad[%d] = %g",
                      nb_dtype_name(dts[d]), i, dx[i]);
        nb_graph_free(g);
    }
}

/* soft labels: -sum(t * log_softmax) / N, and the labels' gradient -log_softmax / N */
Test(loss, soft_labels_and_their_gradient)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "y", NB_F64, 2, (nb_dim[]){NB_DIM(1), NB_DIM(3)});
    nb_node *t = nb_input(g, "t", NB_F64, 2, (nb_dim[]){NB_DIM(1), NB_DIM(3)});
    nb_node *l = nb_softmax_cross_entropy(g, x, t), *gt;
    cr_assert_eq(nb_grad(g, l, &t, 1, &gt), NB_OK, "%s", nb_graph_error(g));
    double lv, d[3];
    eval_graph(g, 2, (nb_node *[]){l, gt}, (double *[]){&lv, d}, 2, (nb_node *[]){x, t},
               (const double *[]){(double[]){1, 2, 3}, (double[]){0.25, 0.25, 0.5}}, NULL, 0);
    double want = -(0.25 * -2.4076059644443806 + 0.25 * -1.4076059644443806 + 0.5 * -0.4076059644443806);
    cr_expect_float_eq(lv, want, 1e-15);
    cr_expect_float_eq(d[0], 2.4076059644443806, 1e-15);
    cr_expect_float_eq(d[2], 0.4076059644443806, 1e-15);
    nb_graph_free(g);
}

/* A run with class ids `labels` on logits [4, 10] (optionally only the gradient). */
static nb_status run_labels(const int32_t *labels, bool grad_only, char *err, size_t cap)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "y", NB_F32, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(10)});
    nb_node *t = nb_input(g, "t", NB_I32, 1, (nb_dim[]){NB_SYM("N")});
    nb_node *l = nb_op(g, "softmax_cross_entropy", "loss", (nb_node *[]){x, t}, 2, NULL, 0), *gx;
    cr_assert_eq(nb_grad(g, l, &x, 1, &gx), NB_OK, "%s", nb_graph_error(g));
    nb_plan *p = plan_new_ok(g, grad_only ? &gx : &l, 1);
    plan_bind_ok(p, (nb_bind[]){{"N", 4}}, 1);
    float xs[40] = {0};
    nb_plan_set(p, x, xs);
    nb_plan_set(p, t, labels);
    nb_status st = nb_plan_run(p);
    snprintf(err, cap, "%s", nb_plan_error(p));
    nb_plan_free(p);
    nb_graph_free(g);
    return st;
}

Test(loss, label_out_of_range_is_a_runtime_error)
{
    char err[512];
    cr_expect_eq(run_labels((int32_t[]){0, 9, 3, 5}, false, err, sizeof err), NB_OK, "%s", err);
    cr_expect_eq(run_labels((int32_t[]){1, 2, 3, 12}, false, err, sizeof err), NB_ERR_RUNTIME);
    cr_expect(strstr(err, "node 'loss'") && strstr(err, "labels 't' row 3: class 12 is outside [0, 10)"),
              "%s", err);
    cr_expect_eq(run_labels((int32_t[]){1, -1, 3, 4}, false, err, sizeof err), NB_ERR_RUNTIME);
    cr_expect(strstr(err, "labels 't' row 1: class -1 is outside [0, 10)"), "%s", err);
    /* a plan that computes only the gradient checks the labels too */
    cr_expect_eq(run_labels((int32_t[]){10, 0, 0, 0}, true, err, sizeof err), NB_ERR_RUNTIME);
    cr_expect(strstr(err, "labels 't' row 0: class 10 is outside [0, 10)"), "%s", err);
}

Test(loss, class_ids_get_no_gradient)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "y", NB_F64, 2, (nb_dim[]){NB_DIM(2), NB_DIM(3)});
    nb_node *t = nb_input(g, "t", NB_I32, 1, (nb_dim[]){NB_DIM(2)});
    nb_node *l = nb_softmax_cross_entropy(g, x, t), *d;
    cr_expect_eq(nb_grad(g, l, &t, 1, &d), NB_ERR_DTYPE);
    nb_graph_clear_error(g);
    size_t before = nb_graph_num_nodes(g);
    cr_assert_eq(nb_grad(g, l, &x, 1, &d), NB_OK, "%s", nb_graph_error(g));
    int grads = 0;
    for (size_t i = before; i < nb_graph_num_nodes(g); i++) {
        nb_node *n = nb_graph_node(g, i);
        if (strcmp(nb_node_op(n), "softmax_cross_entropy_backward")) continue;
        grads++;  /* only the logits' gradient (wrt 0) is built */
        cr_expect_eq(nb_node_attr(n, "wrt")->i[0], 0);
    }
    cr_expect_eq(grads, 1);
    /* asking for wrt 1 with class ids is refused */
    nb_node *gy = nb_input(g, "gy", NB_F64, 0, NULL);
    cr_expect_null(nb_op(g, "softmax_cross_entropy_backward", "bad", (nb_node *[]){gy, x, t}, 3,
                         (nb_attr[]){NB_AINT("wrt", 1)}, 1));
    cr_expect_eq(nb_graph_status(g), NB_ERR_ARG);
    nb_graph_free(g);
}

Test(loss, cross_entropy_shape_errors)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "y", NB_F32, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(10)});
    nb_node *tm = nb_input(g, "tm", NB_I32, 1, (nb_dim[]){NB_SYM("M")});
    nb_node *t3 = nb_input(g, "t3", NB_F32, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(3)});
    nb_node *x3 = nb_input(g, "x3", NB_F32, 3, (nb_dim[]){NB_SYM("N"), NB_DIM(2), NB_DIM(10)});
    nb_node *t64 = nb_input(g, "t64", NB_F64, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(10)});
    struct { nb_node *a, *b; nb_status st; const char *want[2]; } bad[] = {
        {x, tm, NB_ERR_SHAPE, {"y is [N, 10]", "tm is [M]"}},
        {x, t3, NB_ERR_SHAPE, {"y is [N, 10]", "t3 is [N, 3]"}},
        {x3, tm, NB_ERR_SHAPE, {"x3 is [N, 2, 10]", "tm is [M]"}},
        {x, t64, NB_ERR_DTYPE, {"f32 logits", "f64 labels"}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nb_graph_clear_error(g);
        cr_expect_null(nb_op(g, "softmax_cross_entropy", "xe", (nb_node *[]){bad[i].a, bad[i].b}, 2, NULL, 0));
        cr_expect_eq(nb_graph_status(g), bad[i].st, "case %zu", i);
        const char *e = nb_graph_error(g);
        cr_expect(strstr(e, "node 'xe'") && strstr(e, bad[i].want[0]) && strstr(e, bad[i].want[1]),
                  "case %zu: %s", i, e);
    }
    nb_graph_free(g);
}

/* d/dx of sum(d loss/d logits * r2): second order through the gradient op */
Test(loss, cross_entropy_second_order)
{
    for (int soft = 0; soft < 2; soft++) {
        nb_graph *g = nb_graph_new();
        nb_node *x = nb_input(g, "x", NB_F64, 2, (nb_dim[]){NB_DIM(3), NB_DIM(4)});
        nb_node *t = soft ? nb_input(g, "t", NB_F64, 2, (nb_dim[]){NB_DIM(3), NB_DIM(4)})
                          : nb_input(g, "t", NB_I32, 1, (nb_dim[]){NB_DIM(3)});
        nb_node *r2 = nb_input(g, "r2", NB_F64, 2, (nb_dim[]){NB_DIM(3), NB_DIM(4)}), *dx;
        nb_node *l = nb_scale(g, nb_softmax_cross_entropy(g, x, t), 1.7, 0);
        cr_assert_eq(nb_grad(g, l, &x, 1, &dx), NB_OK, "%s", nb_graph_error(g));
        nb_node *loss = nb_sum(g, nb_mul(g, dx, r2), NULL, 0, false);
        double xs[12], ts[12], rs[12];
        for (int i = 0; i < 12; i++) xs[i] = sin(i + 0.3) * 2, ts[i] = cos(i * 1.3), rs[i] = sin(2.0 * i + 1);
        nb_feed feeds[3] = {{x, xs}, {t, soft ? (const void *)ts : (int32_t[]){3, 0, 2}}, {r2, rs}};
        nb_node *wrt[2] = {x, t};
        nb_gc_result res[2];
        cr_assert_eq(nb_gradcheck(g, loss, wrt, 1 + soft, NULL, 0, feeds, 3, NULL, res),
                     NB_OK, "%s", nb_graph_error(g));
        for (int k = 0; k < 1 + soft; k++)
            cr_expect(res[k].pass, "soft %d, %s: max abs err %g", soft, res[k].name, res[k].max_abs);
        nb_graph_free(g);
    }
}

Test(loss, mse_by_hand)
{
    for (int d = 0; d < 2; d++) {
        nb_graph *g = nb_graph_new();
        nb_node *a = nb_input(g, "a", dts[d], 2, (nb_dim[]){NB_DIM(2), NB_DIM(2)});
        nb_node *b = nb_input(g, "b", dts[d], 2, (nb_dim[]){NB_DIM(2), NB_DIM(2)});
        nb_node *l = nb_mse(g, a, b), *gr[2];
        cr_assert_eq(nb_node_rank(l), 0);
        cr_assert_eq(nb_grad(g, l, (nb_node *[]){a, b}, 2, gr), NB_OK, "%s", nb_graph_error(g));
        double lv, da[4], db[4];
        eval_graph(g, 3, (nb_node *[]){l, gr[0], gr[1]}, (double *[]){&lv, da, db}, 2, (nb_node *[]){a, b},
                   (const double *[]){(double[]){1, 2, 3, 4}, (double[]){0, 2, 5, 1}}, NULL, 0);
        cr_expect_eq(lv, 3.5, "%s", nb_dtype_name(dts[d]));  /* (1+0+4+9)/4 */
        double want[4] = {0.5, 0, -1, 1.5};  /* 2 (a - b) / 4 */
        for (int i = 0; i < 4; i++) {
            cr_expect_eq(da[i], want[i], "%s da[%d]", nb_dtype_name(dts[d]), i);
            cr_expect_eq(db[i], -want[i] + 0.0, "%s db[%d]", nb_dtype_name(dts[d]), i);
        }
        nb_graph_free(g);
    }
}

Test(loss, mse_needs_equal_shapes)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "pred", NB_F32, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(3)});
    nb_node *b = nb_input(g, "target", NB_F32, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(1)});
    nb_node *c = nb_input(g, "flat", NB_F32, 1, (nb_dim[]){NB_DIM(3)});
    cr_expect_null(nb_op(g, "mse", "err", (nb_node *[]){a, b}, 2, NULL, 0), "no broadcasting");
    expect_graph_error(g, NB_ERR_SHAPE,
                       (const char *[]){"node 'err': mse", "pred is [N, 3]", "target is [N, 1]"}, 3);
    nb_graph_clear_error(g);
    cr_expect_null(nb_mse(g, a, c));
    cr_expect(strstr(nb_graph_error(g), "flat is [3]"), "%s", nb_graph_error(g));
    nb_graph_free(g);
}

Test(loss, mse_second_order)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "a", NB_F64, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *b = nb_input(g, "b", NB_F64, 1, (nb_dim[]){NB_DIM(3)}), *da, *dda;
    cr_assert_eq(nb_grad(g, nb_mse(g, a, b), &a, 1, &da), NB_OK);
    cr_assert_eq(nb_grad(g, nb_sum(g, da, NULL, 0, false), &a, 1, &dda), NB_OK, "%s", nb_graph_error(g));
    double d2[3];
    eval_node(g, dda, d2, 2, (nb_node *[]){a, b}, (const double *[]){(double[]){1, 2, 3}, (double[]){0, 0, 0}});
    /* d^2/da_i^2 mean((a-b)^2) = 2/3 */
    expect_close(d2, (double[]){2.0 / 3, 2.0 / 3, 2.0 / 3}, 3, 1e-15, 0, "d2 mse / da2");
    nb_graph_free(g);
}

/* The gradient checker itself: a NaN gradient fails, the f32 kernels are
 * checked against the f64 ones (an f32-only bug is caught), every built-in
 * op passes that check, and a perturbed point outside an op's domain is an
 * error naming the node. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "testutil.h"

/* ---- test ops: x^2 with a NaN gradient, and with an f32-only bug -------- */

static nb_status same_shape(nb_shape_ctx *c)
{
    c->out = c->in[0];
    return nb_shape_float_inputs(c);
}

/* y = x^2 (scale 1), or with the f32 kernel off by 1 % when bug32 */
static void square_into(const nb_kctx *k, int in, double scale32)
{
    size_t n = nb_dims_numel(&k->out_shape);
    for (size_t i = 0; i < n; i++) {
        double x = get_elem(k->dtype, k->in[in], i), y = x * x;
        set_elem(k->dtype, k->out, i, k->dtype == NB_F32 ? y * scale32 : y);
    }
}

static nb_status square_fwd(const nb_kctx *k)
{
    square_into(k, 0, 1);
    return NB_OK;
}

static nb_status square_fwd_bug32(const nb_kctx *k)
{
    square_into(k, 0, 1.01);
    return NB_OK;
}

static nb_status square_nan_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = nb_mul(g, gy, nb_scale(g, nb_node_input(y, 0), NAN, 0));
    return NB_OK;
}

/* The gradient node is itself a test op: 2 x gy, off by 1 % in f32 only. */
static nb_status grad_fwd_bug32(const nb_kctx *k)
{
    size_t n = nb_dims_numel(&k->out_shape);
    for (size_t i = 0; i < n; i++) {
        double v = 2 * get_elem(k->dtype, k->in[0], i) * get_elem(k->dtype, k->in[1], i);
        set_elem(k->dtype, k->out, i, k->dtype == NB_F32 ? v * 1.01 : v);
    }
    return NB_OK;
}
static const nb_op_def grad_bug32 = {.name = "test_gc_square_grad_bug32", .min_in = 2, .max_in = 2,
                                     .shape = same_shape, .forward = grad_fwd_bug32};

static nb_status square_bwd_bug32(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = nb_apply(g, &grad_bug32, NULL, (nb_node *[]){nb_node_input(y, 0), gy}, 2, NULL, 0);
    return NB_OK;
}

static nb_status square_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = nb_mul(g, gy, nb_scale(g, nb_node_input(y, 0), 2, 0));
    return NB_OK;
}

static const nb_op_case square_case = {.in = {"3,4"}};
static const nb_op_def square_nan = {.name = "test_gc_square_nan", .min_in = 1, .max_in = 1,
                                     .shape = same_shape, .forward = square_fwd,
                                     .backward = square_nan_bwd, .cases = &square_case, .n_cases = 1};
static const nb_op_def square_grad_bug = {.name = "test_gc_square_grad_bug", .min_in = 1, .max_in = 1,
                                          .shape = same_shape, .forward = square_fwd,
                                          .backward = square_bwd_bug32, .cases = &square_case, .n_cases = 1};
static const nb_op_def square_fwd_bug = {.name = "test_gc_square_fwd_bug", .min_in = 1, .max_in = 1,
                                         .shape = same_shape, .forward = square_fwd_bug32,
                                         .backward = square_bwd, .cases = &square_case, .n_cases = 1};
static const nb_op_def square_ok = {.name = "test_gc_square_ok", .min_in = 1, .max_in = 1,
                                    .shape = same_shape, .forward = square_fwd,
                                    .backward = square_bwd, .cases = &square_case, .n_cases = 1};

/* Before the fix, |analytic - numeric| > tol was false for NaN: "pass". */
Test(gradcheck, a_nan_gradient_fails)
{
    nb_gc_result r[6];
    int n;
    cr_assert_eq(nb_gradcheck_op(&square_nan, &square_case, NULL, r, &n), NB_OK, "%s", nb_last_error());
    cr_assert_eq(n, 1);
    cr_expect_not(r[0].pass);
    cr_expect_eq(r[0].failures, 12);
    cr_expect(isnan(r[0].max_abs), "max_abs %g", r[0].max_abs);
}

/* A NaN among finite errors stays the worst element. */
Test(gradcheck, a_nan_element_is_the_worst)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *loss = nb_sum(g, nb_sqrt(g, nb_abs(g, x)), NULL, 0, false);
    double xs[3] = {0.5, 0.0, 0.25};  /* d sqrt|x| at 0 is inf; the numeric slope is huge but finite */
    nb_gc_result r;
    cr_assert_eq(nb_gradcheck(g, loss, &x, 1, NULL, 0, &(nb_feed){x, xs}, 1, NULL, &r), NB_OK, "%s",
                 nb_graph_error(g));
    cr_expect_not(r.pass);
    cr_expect_eq(r.worst, 1);
    nb_graph_free(g);
}

Test(gradcheck, f32_check_passes_right_kernels)
{
    nb_gc_result r[6];
    int n;
    cr_assert_eq(nb_gradcheck_op_f32(&square_ok, &square_case, NULL, r, &n), NB_OK, "%s", nb_last_error());
    cr_assert_eq(n, 1);
    cr_expect(r[0].pass, "max abs %g rel %g", r[0].max_abs, r[0].max_rel);
    cr_expect_eq(r[0].checked, 12);
}

/* The f64 check cannot see an f32-only bug; the f32 check does, in the
 * gradient op's kernel and in the forward kernel (through a nonlinearity). */
Test(gradcheck, f32_check_catches_an_f32_only_bug)
{
    register_test_op(&grad_bug32);
    register_test_op(&square_grad_bug);
    nb_gc_result r[6];
    int n;
    cr_assert_eq(nb_gradcheck_op(&square_grad_bug, &square_case, NULL, r, &n), NB_OK, "%s", nb_last_error());
    cr_expect(r[0].pass, "the f64 kernels are right");
    cr_assert_eq(nb_gradcheck_op_f32(&square_grad_bug, &square_case, NULL, r, &n), NB_OK, "%s",
                 nb_last_error());
    cr_expect_not(r[0].pass);
    cr_expect_gt(r[0].max_rel, 5e-3);
}

Test(gradcheck, f32_check_catches_an_f32_forward_bug)
{
    register_test_op(&square_fwd_bug);
    nb_graph *g = nb_graph_new(), *g32 = nb_graph_new();
    nb_node *x = NULL, *loss = NULL;
    for (int k = 0; k < 2; k++) {  /* loss = sum(tanh(square(x))): y's value reaches the gradient */
        nb_graph *h = k ? g32 : g;
        nb_node *xi = nb_input(h, "x", k ? NB_F32 : NB_F64, 1, (nb_dim[]){NB_DIM(4)});
        nb_node *y = nb_op(h, "test_gc_square_fwd_bug", "y", &xi, 1, NULL, 0);
        nb_node *l = nb_sum(h, nb_tanh(h, y), NULL, 0, false);
        cr_assert_not_null(l, "%s", nb_graph_error(h));
        if (!k) x = xi, loss = l;
    }
    double xs[4] = {0.9, -1.2, 0.7, 1.5};
    nb_gc_result r;
    cr_assert_eq(nb_gradcheck_f32(g, loss, &x, 1, g32, NULL, 0, &(nb_feed){x, xs}, 1, NULL, &r), NB_OK,
                 "%s", nb_graph_error(g));
    cr_expect_not(r.pass);
    cr_expect_str_eq(r.name, "x");
    nb_graph_free(g);
    nb_graph_free(g32);
}

/* Params of the f32 graph take the f64 graph's values: the same point. */
Test(gradcheck, f32_check_uses_the_f64_params)
{
    nb_graph *g = nb_graph_new(), *g32 = nb_graph_new();
    nb_node *w = NULL, *loss = NULL;
    for (int k = 0; k < 2; k++) {
        nb_graph *h = k ? g32 : g;
        nb_node *p = nb_param(h, "w", k ? NB_F32 : NB_F64, 1, (int64_t[]){3}, (nb_init){.kind = NB_INIT_NORMAL, .a = 1, .seed = (uint64_t)k + 1});
        nb_node *l = nb_sum(h, nb_exp(h, p), NULL, 0, false);
        cr_assert_not_null(l, "%s", nb_graph_error(h));
        if (!k) w = p, loss = l;
    }
    nb_gc_result r;
    cr_assert_eq(nb_gradcheck_f32(g, loss, &w, 1, g32, NULL, 0, NULL, 0, NULL, &r), NB_OK, "%s",
                 nb_graph_error(g));
    cr_expect(r.pass, "max rel %g: the params differ", r.max_rel);
    cr_expect_lt(r.max_rel, 1e-6);
    nb_graph_free(g);
    nb_graph_free(g32);
}

Test(gradcheck, f32_check_needs_the_same_names)
{
    nb_graph *g = nb_graph_new(), *g32 = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 1, (nb_dim[]){NB_DIM(2)});
    nb_node *loss = nb_sum(g, x, NULL, 0, false);
    nb_node *x32 = nb_input(g32, "z", NB_F32, 1, (nb_dim[]){NB_DIM(2)});
    nb_node_set_name(g32, nb_sum(g32, x32, NULL, 0, false), nb_node_name(loss));
    double xs[2] = {1, 2};
    nb_gc_result r;
    cr_expect_eq(nb_gradcheck_f32(g, loss, &x, 1, g32, NULL, 0, &(nb_feed){x, xs}, 1, NULL, &r), NB_ERR_NAME);
    assert_has(nb_graph_error(g), "no node 'x'");
    nb_graph_free(g);
    nb_graph_free(g32);
}

/* Every built-in op's f32 kernels agree with its f64 ones on its cases. */
Test(gradcheck, every_op_in_f32, .timeout = 240)
{
    for (size_t i = 0; i < nb_op_count(); i++) {
        const nb_op_def *op = nb_op_at(i);
        if (!op->backward || !strncmp(op->name, "test_", 5)) continue;
        for (int c = 0; c < op->n_cases; c++) {
            nb_gc_result r[6];
            int n = 0;
            nb_gc_opts o = NB_GC_DEFAULTS;
            o.seed = (uint64_t)c;
            nb_status st = nb_gradcheck_op_f32(op, &op->cases[c], &o, r, &n);
            cr_expect_eq(st, NB_OK, "%s case %d: %s", op->name, c, nb_last_error());
            for (int k = 0; k < n; k++)
                cr_expect(r[k].pass, "%s case %d input %s: f32 max abs err %g, rel %g at %zu%s%s", op->name,
                          c, r[k].name, r[k].max_abs, r[k].max_rel, r[k].worst,
                          r[k].first_bad[0] ? ", first non-finite " : "", r[k].first_bad);
        }
    }
}

/* sqrt at 1e-7 with eps 1e-6: x - eps is negative, the loss NaN. */
Test(gradcheck, a_step_out_of_the_domain_names_the_node)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 1, (nb_dim[]){NB_DIM(2)});
    nb_node *r = nb_op(g, "sqrt", "root", &x, 1, NULL, 0);
    nb_node *loss = nb_sum(g, r, NULL, 0, false);
    double xs[2] = {0.5, 1e-7};
    nb_gc_result res;
    nb_status st = nb_gradcheck(g, loss, &x, 1, NULL, 0, &(nb_feed){x, xs}, 1, NULL, &res);
    cr_expect_eq(st, NB_ERR_RUNTIME);
    assert_has(nb_graph_error(g), "node 'root' (sqrt) is the first that is not finite");
    assert_has(nb_graph_error(g), "element 1 of 'x'");
    nb_graph_free(g);
}

/* batchnorm and op-owned state: hand values in training mode (f32, f64), the
 * running statistics after two training steps (PyTorch's rule, unbiased
 * variance), eval mode using them, rank 2 and rank 4, training and eval
 * gradients against finite differences, shape and run-time errors, and the
 * generic state mechanism on a user op. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

typedef struct bn_net {
    nb_graph *g;
    nb_node *x, *gamma, *beta, *y, *rm, *rv;
    nb_plan *p;
} bn_net;

/* y = batchnorm(x [shape], gamma, beta) with the given gamma/beta values */
static bn_net make(nb_dtype dt, int rank, const int64_t *shape, const double *gamma,
                   const double *beta, double eps, double momentum)
{
    bn_net n;
    n.g = nb_graph_new();
    n.x = input_shaped(n.g, "x", dt, rank, shape);
    nb_init gi = {.kind = NB_INIT_VALUES, .values = gamma, .n_values = (size_t)shape[1]};
    nb_init bi = {.kind = NB_INIT_VALUES, .values = beta, .n_values = (size_t)shape[1]};
    n.gamma = nb_param(n.g, "gamma", dt, 1, &shape[1], gi);
    n.beta = nb_param(n.g, "beta", dt, 1, &shape[1], bi);
    n.y = nb_op(n.g, "batchnorm", "bn", (nb_node *[]){n.x, n.gamma, n.beta}, 3,
                (nb_attr[]){NB_AFLOAT("eps", eps), NB_AFLOAT("momentum", momentum)}, 2);
    cr_assert_not_null(n.y, "%s", nb_graph_error(n.g));
    n.rm = nb_graph_find(n.g, "bn.running_mean");
    n.rv = nb_graph_find(n.g, "bn.running_var");
    cr_assert(n.rm && n.rv);
    n.p = plan_new_ok(n.g, &n.y, 1);
    return n;
}

static void drop(bn_net *n)
{
    nb_plan_free(n->p);
    nb_graph_free(n->g);
}

/* Expects the values of param p near want (expect_near). */
static void expect_param(nb_node *p, const double *want, double tol, const char *what)
{
    nb_tensor *t = nb_param_value(p);
    double v[16];
    size_t n = nb_tensor_numel(t);
    cr_assert_leq(n, 16);
    for (size_t c = 0; c < n; c++) v[c] = get_elem(t->dtype, t->data, c);
    expect_near(v, want, n, tol, what);
}

/* x [4, 2]: channel 0 is 1, 3, 1, 3 (mean 2, biased var 1), channel 1 is
 * 0, 4, 4, 0 (mean 2, biased var 4), so x̂ = ±1 exactly with eps 0. Then a
 * second batch: channel 0 is 0, 2, 4, 6 (mean 3, unbiased var 20/3), channel
 * 1 is 1, 1, 1, 5 (mean 2, unbiased var 4). */
static const double X1[8] = {1, 0, 3, 4, 1, 4, 3, 0};
static const double X2[8] = {0, 1, 2, 1, 4, 1, 6, 5};

Test(batchnorm, training_values_and_running_statistics)
{
    nb_dtype dts[2] = {NB_F32, NB_F64};
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = dts[d];
        double tol = dt == NB_F64 ? 1e-14 : 1e-6;
        bn_net n = make(dt, 2, (int64_t[]){4, 2}, (double[]){2, 0.5}, (double[]){0, 1}, 0, 0.1);
        expect_param(n.rm, (double[]){0, 0}, 0, "initial running_mean");
        expect_param(n.rv, (double[]){1, 1}, 0, "initial running_var");
        nb_plan_set_training(n.p, true);
        plan_feed(n.p, n.x, X1);
        plan_run_ok(n.p);
        const double want1[8] = {-2, 0.5, 2, 1.5, -2, 1.5, 2, 0.5};  /* gamma x̂ + beta */
        double y[8];
        plan_read(n.p, n.y, y);
        expect_near(y, want1, 8, tol, "y");
        /* 0.9 old + 0.1 batch, the variance unbiased (4/3 and 16/3) */
        expect_param(n.rm, (double[]){0.2, 0.2}, tol, "running_mean after 1");
        expect_param(n.rv, (double[]){0.9 + 0.4 / 3, 0.9 + 1.6 / 3}, tol, "running_var after 1");
        plan_feed(n.p, n.x, X2);
        plan_run_ok(n.p);
        expect_param(n.rm, (double[]){0.48, 0.38}, tol, "running_mean after 2");
        double rv2[2] = {0.9 * (0.9 + 0.4 / 3) + 2.0 / 3, 0.9 * (0.9 + 1.6 / 3) + 0.4};
        expect_param(n.rv, rv2, tol, "running_var after 2");

        /* eval mode: normalised with the running statistics, which stay */
        nb_plan_set_training(n.p, false);
        plan_feed(n.p, n.x, X1);
        plan_run_ok(n.p);
        plan_read(n.p, n.y, y);
        double rm2[2] = {0.48, 0.38}, g[2] = {2, 0.5}, b[2] = {0, 1}, want[8];
        for (int i = 0; i < 8; i++) {
            int c = i % 2;
            want[i] = g[c] * (X1[i] - rm2[c]) / sqrt(rv2[c]) + b[c];  /* eps 0 */
        }
        expect_near(y, want, 8, tol, "eval y");
        expect_param(n.rm, rm2, tol, "running_mean after eval");
        expect_param(n.rv, rv2, tol, "running_var after eval");
        drop(&n);
    }
}

/* Rank 4 [N, C, H, W] against a plain reference: per channel over N, H, W. */
Test(batchnorm, rank4_against_reference)
{
    enum { B = 3, C = 2, H = 2, W = 3, S = H * W, NX = B * C * S };
    double xs[NX], gamma[C] = {1.5, -0.5}, beta[C] = {0.25, 2}, eps = 1e-3, mom = 0.3;
    for (int i = 0; i < NX; i++) xs[i] = sin(0.7 * i) * (1 + i % 4);
    bn_net n = make(NB_F64, 4, (int64_t[]){B, C, H, W}, gamma, beta, eps, mom);
    nb_plan_set_training(n.p, true);
    plan_feed(n.p, n.x, xs);
    plan_run_ok(n.p);
    const double *y = nb_plan_get(n.p, n.y);
    double want[NX], rm[C], rv[C];
    for (int c = 0; c < C; c++) {
        double sum = 0, ss = 0;
        for (int b = 0; b < B; b++)
            for (int s = 0; s < S; s++) sum += xs[(b * C + c) * S + s];
        double mean = sum / (B * S);
        for (int b = 0; b < B; b++)
            for (int s = 0; s < S; s++) ss += pow(xs[(b * C + c) * S + s] - mean, 2);
        double var = ss / (B * S), unbiased = ss / (B * S - 1);
        for (int b = 0; b < B; b++)
            for (int s = 0; s < S; s++) {
                int i = (b * C + c) * S + s;
                want[i] = gamma[c] * (xs[i] - mean) / sqrt(var + eps) + beta[c];
            }
        rm[c] = mom * mean;
        rv[c] = (1 - mom) + mom * unbiased;
    }
    expect_near(y, want, NX, 1e-13, "y");
    expect_param(n.rm, rm, 1e-14, "running_mean");
    expect_param(n.rv, rv, 1e-14, "running_var");
    drop(&n);
}

/* loss = sum(tanh(batchnorm(x)) * R), checked in f64 against central
 * differences for x, gamma and beta, in one mode; returns d loss / d x[0]. */
static double gradcheck_bn(bool training, int rank, const int64_t *shape)
{
    nb_graph *g = nb_graph_new();
    size_t count = shape_numel(rank, shape);
    nb_node *x = input_shaped(g, "x", NB_F64, rank, shape), *r = input_shaped(g, "R", NB_F64, rank, shape);
    nb_init gi = {.kind = NB_INIT_UNIFORM, .a = 0.5, .b = 2, .seed = 1};
    nb_init bi = {.kind = NB_INIT_NORMAL, .a = 1, .seed = 2};
    nb_node *gamma = nb_param(g, "gamma", NB_F64, 1, &shape[1], gi);
    nb_node *beta = nb_param(g, "beta", NB_F64, 1, &shape[1], bi);
    nb_node *y = nb_batchnorm(g, x, gamma, beta, 1e-5, 0.1);
    cr_assert_not_null(y, "%s", nb_graph_error(g));
    /* running statistics that matter in eval mode */
    double *rm = nb_param_value(nb_node_input(y, 3))->data, *rv = nb_param_value(nb_node_input(y, 4))->data;
    for (int c = 0; c < shape[1]; c++) rm[c] = 0.1 * c - 0.2, rv[c] = 0.5 + 0.3 * c;
    nb_node *loss = nb_sum(g, nb_mul(g, nb_tanh(g, y), r), NULL, 0, false);
    double xs[256], rs[256];
    for (size_t i = 0; i < count; i++) xs[i] = sin(1.3 * (double)i + 0.4), rs[i] = cos(0.9 * (double)i);
    nb_gc_opts o = NB_GC_DEFAULTS;
    o.training = training;
    o.max_elems = 0;
    nb_gc_result res[3];
    char err[512] = "";
    nb_status st = nb_gradcheck(g, loss, (nb_node *[]){x, gamma, beta}, 3, NULL, 0,
                                (nb_feed[]){{x, xs}, {r, rs}}, 2, &o, res);
    cr_assert_eq(st, NB_OK, "%s", err);
    for (int k = 0; k < 3; k++)
        cr_expect(res[k].pass && !res[k].kinks, "%s mode, rank %d, %s: max abs err %g at %zu, %zu kinks",
                  training ? "training" : "eval", rank, res[k].name, res[k].max_abs, res[k].worst,
                  res[k].kinks);
    /* the analytic gradient of x[0], from a plan in the same mode */
    nb_node *gx;
    cr_assert_eq(nb_grad(g, loss, &x, 1, &gx), NB_OK);
    nb_plan *p = plan_new_ok(g, &gx, 1);
    nb_plan_set_training(p, training);
    nb_plan_set(p, x, xs);
    nb_plan_set(p, r, rs);
    plan_run_ok(p);
    double g0 = ((const double *)nb_plan_get(p, gx))[0];
    nb_plan_free(p);
    nb_graph_free(g);
    return g0;
}

Test(batchnorm, gradients_against_finite_differences)
{
    const int64_t s2[2] = {5, 3}, s4[4] = {2, 3, 2, 2};
    double t2 = gradcheck_bn(true, 2, s2), e2 = gradcheck_bn(false, 2, s2);
    double t4 = gradcheck_bn(true, 4, s4), e4 = gradcheck_bn(false, 4, s4);
    cr_expect_gt(fabs(t2 - e2), 1e-3, "the modes differ: %g %g", t2, e2);
    cr_expect_gt(fabs(t4 - e4), 1e-3, "the modes differ: %g %g", t4, e4);
}

/* Every case of batchnorm and its gradient ops also holds in training mode
 * (batchnorm_backward's: second order through the batch statistics). */
Test(batchnorm, op_cases_in_training_mode)
{
    const char *ops[] = {"batchnorm", "batchnorm_xhat", "batchnorm_backward", "batchnorm_invstd"};
    for (int k = 0; k < 4; k++) {
        const nb_op_def *op = nb_op_find(ops[k]);
        cr_assert_not_null(op);
        for (int c = 0; c < op->n_cases; c++) {
            nb_gc_opts o = NB_GC_DEFAULTS;
            o.training = true;
            o.seed = (uint64_t)c + 1;
            nb_gc_result r[6];
            int n = 0;
            cr_assert_eq(nb_gradcheck_op(op, &op->cases[c], &o, r, &n), NB_OK, "%s", nb_last_error());
            for (int i = 0; i < n; i++)
                cr_expect(r[i].pass && !r[i].kinks, "%s case %d input %d: %g, %zu kinks", ops[k], c,
                          i, r[i].max_abs, r[i].kinks);
        }
    }
}

/* In training mode the loss does not depend on the running statistics, in
 * eval mode on nothing else but x, gamma and beta: state gets no gradient,
 * and gradcheck refuses it. */
Test(batchnorm, state_has_no_gradient)
{
    bn_net n = make(NB_F64, 2, (int64_t[]){3, 2}, (double[]){1, 1}, (double[]){0, 0}, 1e-5, 0.1);
    cr_expect_not(nb_param_trainable(n.rm));
    cr_expect(nb_param_trainable(n.gamma));
    nb_node *loss = nb_sum(n.g, n.y, NULL, 0, false), *gr;
    cr_assert_eq(nb_grad(n.g, loss, &n.rv, 1, &gr), NB_OK, "%s", nb_graph_error(n.g));
    cr_expect_str_eq(nb_node_op(gr), "fill_like", "zeros: no path carries a gradient to it");
    double xs[6] = {1, 2, 3, 4, 5, 6};
    nb_gc_result res;
    cr_expect_eq(nb_gradcheck(n.g, loss, &n.rm, 1, NULL, 0, (nb_feed[]){{n.x, xs}}, 1, NULL, &res), NB_ERR_ARG);
    cr_expect(strstr(nb_graph_error(n.g), "'bn.running_mean' is op state"), "%s", nb_graph_error(n.g));
    drop(&n);
}

/* State params live outside the arena; a node made after batchnorm that reads
 * them sees this run's update. */
Test(batchnorm, readers_of_state_see_the_update)
{
    bn_net n = make(NB_F32, 2, (int64_t[]){4, 2}, (double[]){1, 1}, (double[]){0, 0}, 0, 0.5);
    nb_node *s = nb_sum(n.g, n.rm, NULL, 0, false);
    nb_plan *p = plan_new_ok(n.g, (nb_node *[]){n.y, s, n.rm}, 3);
    nb_plan_set_training(p, true);
    float x[8];
    for (int i = 0; i < 8; i++) x[i] = (float)X1[i];
    nb_plan_set(p, n.x, x);
    plan_run_ok(p);
    cr_expect_float_eq(*(const float *)nb_plan_get(p, s), 2.0f, 1e-6, "0.5 * 2 + 0.5 * 2");
    cr_expect_eq(nb_plan_get(p, n.rm), nb_param_value(n.rm)->data, "a param's own buffer");
    nb_plan_free(p);
    drop(&n);
}

Test(batchnorm, errors)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(3)});
    nb_node *v = nb_input(g, "v", NB_F32, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *x64 = nb_input(g, "w", NB_F64, 2, (nb_dim[]){NB_DIM(2), NB_DIM(3)});
    nb_node *c4 = nb_param(g, "c4", NB_F32, 1, (int64_t[]){4}, NB_INIT(NB_INIT_ONES));
    struct {
        nb_node *in[3];
        nb_status st;
        const char *msg;
    } cases[] = {
        {{x, c4, v}, NB_ERR_SHAPE, "node 'bn': batchnorm needs gamma [3]; c4 is [4]"},
        {{x, v, c4}, NB_ERR_SHAPE, "node 'bn': batchnorm needs beta [3]; c4 is [4]"},
        {{v, v, v}, NB_ERR_SHAPE, "needs x [N, C, ...] of rank 2 or more; v is [3]"},
        {{x64, v, v}, NB_ERR_DTYPE, "mixes f64 and f32 inputs"},
    };
    for (int i = 0; i < 4; i++) {
        nb_graph_clear_error(g);
        cr_expect_null(nb_op(g, "batchnorm", "bn", cases[i].in, 3, NULL, 0), "case %d", i);
        expect_graph_error(g, cases[i].st, &cases[i].msg, 1);
    }
    size_t before = nb_graph_num_nodes(g);
    nb_graph_clear_error(g);
    cr_expect_null(nb_op(g, "batchnorm", "bn", (nb_node *[]){x, v}, 2, NULL, 0));
    cr_expect_eq(nb_graph_status(g), NB_ERR_ARITY);
    cr_expect_eq(nb_graph_num_nodes(g), before, "a failed node leaves no state behind");
    nb_graph_clear_error(g);
    cr_expect_null(nb_batchnorm(g, x, v, v, 1e-5, 1.5));
    cr_expect(strstr(nb_graph_error(g), "needs 0 <= momentum <= 1; got 1.5"), "%s", nb_graph_error(g));
    nb_graph_clear_error(g);
    cr_expect_null(nb_batchnorm(g, x, v, v, NAN, 0.1));
    cr_expect(strstr(nb_graph_error(g), "needs eps >= 0"), "%s", nb_graph_error(g));
    nb_graph_free(g);
}

/* One value per channel cannot give an unbiased variance: a run-time error
 * while training (as PyTorch), fine in eval mode. */
Test(batchnorm, one_value_per_channel)
{
    bn_net n = make(NB_F64, 2, (int64_t[]){1, 2}, (double[]){1, 1}, (double[]){0, 0}, 1e-5, 0.1);
    plan_feed(n.p, n.x, (double[]){3, 4});
    plan_run_ok(n.p);
    nb_plan_set_training(n.p, true);
    cr_expect_eq(nb_plan_run(n.p), NB_ERR_RUNTIME);
    cr_expect(strstr(nb_plan_error(n.p), "node 'bn': batchnorm needs more than one value per channel"),
              "%s", nb_plan_error(n.p));
    drop(&n);
}

/* ---- the state mechanism, on a user op ------------------------------------ */

/* count(x): y = x + s, where the state s [x's last axis] starts at ones and
 * grows by one per training run. */
static nb_status count_fwd(const nb_kctx *k)
{
    const double *x = k->in[0];
    double *s = (double *)k->in[1], *y = k->out;
    int64_t m = k->in_shape[0].d[k->in_shape[0].rank - 1];
    size_t n = nb_dims_numel(&k->out_shape);
    for (size_t i = 0; i < n; i++) y[i] = x[i] + s[i % (size_t)m];
    for (int64_t j = 0; k->training && j < m; j++) s[j] += 1;
    return NB_OK;
}

static nb_status count_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)g, (void)y;
    cr_expect_eq(needs, 1, "state never needs a gradient");
    gx[0] = gx[1] = gy;  /* a gradient offered for the state too: autodiff must drop it */
    return NB_OK;
}

static nb_status count_shape(nb_shape_ctx *c)
{
    c->out = c->in[0];
    return c->in_dtype[0] == NB_F64 ? NB_OK : nb_shape_fail(c, NB_ERR_DTYPE, "needs f64");
}

static const nb_state_def count_state[] = {{"s", NB_INIT_ONES, 0, -1}};
static const nb_op_def count_op = {.name = "test_count", .min_in = 1, .max_in = 1,
                                   .state = count_state, .n_state = 1, .shape = count_shape,
                                   .forward = count_fwd, .backward = count_bwd};

Test(state, generic_mechanism)
{
    register_test_op(&count_op);
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(2)});
    nb_node *y = nb_op(g, "test_count", NULL, &x, 1, NULL, 0);
    cr_assert_not_null(y, "%s", nb_graph_error(g));
    cr_assert_eq(nb_node_num_inputs(y), 2);
    nb_node *s = nb_node_input(y, 1);
    char name[64];
    snprintf(name, sizeof name, "%s.s", nb_node_name(y));
    cr_expect_str_eq(nb_node_name(s), name);
    cr_expect_eq(nb_node_kind_of(s), NB_NODE_PARAM);
    cr_expect_not(nb_param_trainable(s));
    cr_expect_eq(nb_node_dim(s, 0), 2);
    nb_node *loss = nb_sum(g, y, NULL, 0, false), *gr[2];
    cr_assert_eq(nb_grad(g, loss, (nb_node *[]){x, s}, 2, gr), NB_OK, "%s", nb_graph_error(g));
    cr_expect_str_eq(nb_node_op(gr[1]), "fill_like", "state carries no gradient");
    nb_plan *p = plan_new_ok(g, (nb_node *[]){y, gr[0]}, 2);
    plan_bind_ok(p, (nb_bind[]){{"N", 2}}, 1);
    double xs[4] = {0, 10, 20, 30};
    nb_plan_set(p, x, xs);
    nb_plan_run(p);  /* eval: state untouched */
    nb_plan_set_training(p, true);
    nb_plan_run(p);
    nb_plan_run(p);
    const double *sv = nb_param_value(s)->data;
    cr_expect(sv[0] == 3 && sv[1] == 3, "%g %g", sv[0], sv[1]);
    const double *yv = nb_plan_get(p, y);
    cr_expect_eq(yv[3], 32, "the last run read s before it grew");
    nb_plan_free(p);
    nb_graph_free(g);

    /* state must be sized by an input always given */
    static const nb_state_def bad_state[] = {{"s", NB_INIT_ZEROS, 1, 0}};
    static const nb_op_def bad = {.name = "test_bad_state", .min_in = 1, .max_in = 2,
                                  .state = bad_state, .n_state = 1, .shape = count_shape,
                                  .forward = count_fwd};
    cr_expect_eq(nb_op_register(&bad), NB_ERR_ARG);
    /* a free dimension cannot size state */
    static const nb_state_def free_state[] = {{"s", NB_INIT_ZEROS, 0, 0}};
    static const nb_op_def free_op = {.name = "test_free_state", .min_in = 1, .max_in = 1,
                                      .state = free_state, .n_state = 1, .shape = count_shape,
                                      .forward = count_fwd};
    register_test_op(&free_op);
    g = nb_graph_new();
    x = nb_input(g, "x", NB_F64, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(2)});
    cr_expect_null(nb_op(g, "test_free_state", "f", &x, 1, NULL, 0));
    cr_expect(strstr(nb_graph_error(g), "node 'f': test_free_state keeps 's' of the size of axis 0 "
                                        "of x, which must be fixed; x is [N, 2]"),
              "%s", nb_graph_error(g));
    cr_expect_eq(nb_graph_num_nodes(g), 1);
    nb_graph_free(g);
}

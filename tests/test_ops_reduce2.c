/* Issue 9's reductions: min, logsumexp, argmax against PyTorch, `axis: []`
 * refused, NaN through max and min as in PyTorch, second order through max
 * and min, and the accuracy of f32 sums (model-format.md, "Reductions").
 * References: /usr/bin/python3 with torch 1.13, float64, on the x below
 * (x[i] = 3 sin(1.3 i) reshaped [2, 3, 4], then x[1, 2, 1] = x[1, 2, 3]);
 * printed with %.17g. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const nb_dtype both[2] = {NB_F32, NB_F64};

static void make_x(double *x)
{
    for (int i = 0; i < 24; i++) x[i] = 3 * sin(1.3 * i);
    x[1 * 12 + 2 * 4 + 1] = x[1 * 12 + 2 * 4 + 3];
}

/* A reduction op on x [2, 3, 4] of dtype dt, evaluated into got; returns the node. */
static nb_node *reduce_x(nb_graph *g, nb_dtype dt, const char *op, const nb_attr *at, int n_at, double *got)
{
    double x[24];
    make_x(x);
    nb_node *a = nb_input(g, "x", dt, 3, (nb_dim[]){NB_DIM(2), NB_DIM(3), NB_DIM(4)});
    nb_node *y = nb_op(g, op, "y", &a, 1, at, n_at);
    cr_assert_not_null(y, "%s: %s", op, nb_graph_error(g));
    eval_node(g, y, got, 1, &a, (const double *[]){x});
    return y;
}

#define AXES(...) {.name = "axis", .type = NB_ATTR_INTS, .n = (int)(sizeof((int64_t[]){__VA_ARGS__}) / 8), .i = {__VA_ARGS__}}
#define KEEP NB_ABOOL("keepdims", 1)

Test(reduce2, min_logsumexp_argmax_match_torch)
{
    struct {
        const char *op;
        nb_attr at[2];
        int n_at, n;
        const char *shape;
        double want[8];
    } cases[] = {
        {"min", {AXES(1)}, 1, 8, "[2, 4]",
         {-2.6503639671604593, -2.2859507517570963, 1.2605011104799226, -2.0632984775519221,
          0.3232609568983269, -2.9954850919914433, -2.9607466743619479, -2.9954850919914433}},
        {"min", {AXES(0, 2), KEEP}, 2, 3, "[1, 3, 1]",
         {-2.7873720382031091, -2.9607466743619479, -2.9954850919914433}},
        {"logsumexp", {{0}}, 0, 1, "[]", {4.6709212285433779}},
        {"logsumexp", {AXES(2)}, 1, 6, "[2, 3]",
         {3.1708409481653814, 3.2019288611032328, 3.1362064433797774, 2.0486161156416745,
          2.8495573149770821, 2.3355357248969648}},
        {"logsumexp", {AXES(0, 1), KEEP}, 2, 4, "[1, 1, 4]",
         {3.3537560921240059, 3.0372228743495038, 3.3609944242754803, 3.3506401601517561}},
        {"argmax", {NB_AINT("axis", 1)}, 1, 8, "[2, 4]", {0, 0, 1, 2, 1, 1, 2, 0}},
        {"argmax", {NB_AINT("axis", 2)}, 1, 6, "[2, 3]", {1, 2, 3, 3, 0, 0}},
        {"argmax", {NB_AINT("axis", -1), KEEP}, 2, 6, "[2, 3, 1]", {1, 2, 3, 3, 0, 0}},
    };
    for (int d = 0; d < 2; d++)
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            nb_graph *g = nb_graph_new();
            double got[8];
            nb_node *y = reduce_x(g, both[d], cases[k].op, cases[k].at, cases[k].n_at, got);
            cr_expect_str_eq(node_shape(g, y), cases[k].shape, "%s case %zu", cases[k].op, k);
            bool arg = !strcmp(cases[k].op, "argmax");
            cr_expect_eq(nb_node_dtype(y), arg ? NB_I32 : both[d]);
            double tol = d ? 1e-14 : 1e-6;
            expect_close(got, cases[k].want, (size_t)cases[k].n, tol, tol, cases[k].op);
            nb_graph_free(g);
        }
}

/* d sum(w * op(x, axis 1)) / dx, w[i] = cos(i) shaped [2, 4] */
Test(reduce2, min_and_logsumexp_gradients_match_torch)
{
    static const double want[2][24] = {
        {0, 0, -0.0, -0.98999249660044542, 1, 0, -0.0, -0.0, 0, 0.54030230586813977,
         -0.41614683654714241, -0.0, -0.65364362086361194, 0, 0, 0, -0.0, 0, 0.96017028665036597,
         0, -0.0, 0.28366218546322625, 0, 0.7539022543433046},
        {0.86649266593422825, 0.48608389876353797, -0.069234911799579607, -0.0057072254422079931,
         0.061196480393115232, 0.051473476120632466, -0.29489848009398695, -0.11701785829225295,
         0.07231085367265655, 0.0027449309839693869, -0.052013444653575852, -0.86726741286598463,
         -0.032892398222878996, 0.020959142884683337, 0.26173763211354195, 0.71505061733880149,
         -0.3862042286648868, 0.24568180366847273, 0.083187274942825518, 0.033037754269478706,
         -0.23454699397584625, 0.01702123891007017, 0.61524537959399839, 0.0058138827350245796}};
    const char *ops[2] = {"min", "logsumexp"};
    double x[24], w[8];
    make_x(x);
    for (int i = 0; i < 8; i++) w[i] = cos(i);
    for (int k = 0; k < 2; k++) {
        nb_graph *g = nb_graph_new();
        nb_node *a = nb_input(g, "x", NB_F64, 3, (nb_dim[]){NB_DIM(2), NB_DIM(3), NB_DIM(4)});
        nb_node *wn = nb_input(g, "w", NB_F64, 2, (nb_dim[]){NB_DIM(2), NB_DIM(4)});
        nb_attr at[1] = {AXES(1)};
        nb_node *y = nb_op(g, ops[k], "y", &a, 1, at, 1);
        nb_node *dx;
        cr_assert_eq(nb_grad(g, nb_sum(g, nb_mul(g, y, wn), NULL, 0, false), &a, 1, &dx), NB_OK,
                     "%s", nb_graph_error(g));
        double got[24];
        eval_node(g, dx, got, 2, (nb_node *[]){a, wn}, (const double *[]){x, w});
        expect_close(got, want[k], 24, 1e-14, 1e-12, ops[k]);
        nb_graph_free(g);
    }
}

/* `axis: []` names no axis: an error for every reduction (no axis = all axes) */
Test(reduce2, empty_axis_list_is_an_error)
{
    const char *ops[] = {"sum", "mean", "max", "min", "logsumexp"};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        nb_graph *g = nb_graph_new();
        nb_node *a = nb_input(g, "x", NB_F32, 2, (nb_dim[]){NB_DIM(2), NB_DIM(3)});
        nb_attr empty = {.name = "axis", .type = NB_ATTR_INTS, .n = 0};
        cr_expect_null(nb_op(g, ops[k], "y", &a, 1, &empty, 1), "%s", ops[k]);
        const char *parts[] = {"node 'y'", ops[k], "axis [] names no axis"};
        expect_graph_error(g, NB_ERR_ARG, parts, 3);
        /* no axis, or the typed helper with none, reduces all */
        nb_graph_clear_error(g);
        nb_node *all = nb_op(g, ops[k], "all", &a, 1, NULL, 0);
        cr_expect(all && nb_node_rank(all) == 0, "%s: %s", ops[k], nb_graph_error(g));
        nb_graph_free(g);
    }
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "x", NB_F32, 2, (nb_dim[]){NB_DIM(2), NB_DIM(3)});
    cr_expect_eq(nb_node_rank(nb_min(g, a, NULL, 0, false)), 0);
    cr_expect_eq(nb_node_rank(nb_logsumexp(g, a, NULL, 0, true)), 2);
    cr_expect_null(nb_argmax(g, a, 2, false));
    assert_has(nb_graph_error(g), "axis 2 is out of range for rank 2");
    nb_graph_free(g);
    EXPECT_ERROR("nabla: 1\ninputs: {x: [2, 3]}\nnodes: [{name: s, op: sum, in: [x], axis: []}]\n",
                 "m.yaml:3:9: node 's': sum axis [] names no axis; leave axis out to reduce over all axes");
}

/* NaN is the max and the min of any set holding it, its gradient NaN over
 * the set (torch.amax/amin); argmax points at the first NaN */
Test(reduce2, nan_propagates_as_in_torch)
{
    for (int d = 0; d < 2; d++) {
        nb_graph *g = nb_graph_new();
        nb_node *x = nb_input(g, "x", both[d], 2, (nb_dim[]){NB_DIM(2), NB_DIM(3)});
        nb_node *w = nb_input(g, "w", both[d], 1, (nb_dim[]){NB_DIM(2)});
        int64_t ax = 1;
        nb_node *mx = nb_max(g, x, &ax, 1, false), *mn = nb_min(g, x, &ax, 1, false);
        nb_node *lse = nb_logsumexp(g, x, &ax, 1, false), *am = nb_argmax(g, x, 1, false);
        nb_node *all = nb_max(g, x, NULL, 0, false);
        nb_node *dx[2];
        nb_node *l1 = nb_sum(g, nb_mul(g, mx, w), NULL, 0, false);
        nb_node *l2 = nb_sum(g, nb_mul(g, mn, w), NULL, 0, false);
        cr_assert_eq(nb_grad(g, l1, &x, 1, &dx[0]), NB_OK, "%s", nb_graph_error(g));
        cr_assert_eq(nb_grad(g, l2, &x, 1, &dx[1]), NB_OK, "%s", nb_graph_error(g));
        double v[6] = {1, NAN, 3, 2, 5, 5}, wv[2] = {1, 1};
        double gmx[2], gmn[2], glse[2], gam[2], gall, gdx[2][6];
        nb_node *outs[7] = {mx, mn, lse, am, all, dx[0], dx[1]};
        double *outv[7] = {gmx, gmn, glse, gam, &gall, gdx[0], gdx[1]};
        eval_graph(g, 7, outs, outv, 2, (nb_node *[]){x, w}, (const double *[]){v, wv}, NULL, 0);
        cr_expect(isnan(gmx[0]) && gmx[1] == 5, "max %g %g", gmx[0], gmx[1]);
        cr_expect(isnan(gmn[0]) && gmn[1] == 2, "min %g %g", gmn[0], gmn[1]);
        cr_expect(isnan(glse[0]) && fabs(glse[1] - (5 + log(2 + exp(-3.0)))) < 1e-6, "lse %g", glse[1]);
        cr_expect(gam[0] == 1 && gam[1] == 1, "argmax %g %g", gam[0], gam[1]);
        cr_expect(isnan(gall));
        /* torch: [[nan, nan, nan], [0, 0.5, 0.5]] for max, [[nan]*3, [1, 0, 0]] for min */
        for (int j = 0; j < 3; j++) cr_expect(isnan(gdx[0][j]) && isnan(gdx[1][j]), "row 0 col %d", j);
        expect_close(gdx[0] + 3, (double[]){0, 0.5, 0.5}, 3, 0, 0, "d max");
        expect_close(gdx[1] + 3, (double[]){1, 0, 0}, 3, 0, 0, "d min");
        nb_graph_free(g);
    }
}

/* logsumexp takes the maximum out first: no overflow, no underflow */
Test(reduce2, logsumexp_is_stable)
{
    for (int d = 0; d < 2; d++) {
        nb_graph *g = nb_graph_new();
        nb_node *x = nb_input(g, "x", both[d], 2, (nb_dim[]){NB_DIM(4), NB_DIM(2)});
        nb_node *y = nb_logsumexp(g, x, (int64_t[]){1}, 1, false);
        double v[8] = {1000, 1000, -1000, -1000, -INFINITY, -INFINITY, INFINITY, 1}, got[4];
        eval_node(g, y, got, 1, &x, (const double *[]){v});
        expect_close(got, (double[]){1000 + log(2.0), -1000 + log(2.0)}, 2, 0, 1e-7, "lse");
        cr_expect(got[2] == -INFINITY && got[3] == INFINITY, "%g %g", got[2], got[3]);
        nb_graph_free(g);
    }
}

/* ---- second order ---- */

/* f(x) = sum(op(x, axis 1)^2 * c) over x [2, 4]: the Hessian-vector product
 * d/dx sum(grad f * v) against central differences of the analytic
 * gradient along v, and its value. */
static void hvp(const char *op, const double *x, const double *v, double *grad, double *hv,
                double *fd)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "x", NB_F64, 2, (nb_dim[]){NB_DIM(2), NB_DIM(4)});
    nb_node *vn = nb_input(g, "v", NB_F64, 2, (nb_dim[]){NB_DIM(2), NB_DIM(4)});
    nb_attr at[1] = {AXES(1)};
    nb_node *m = nb_op(g, op, "m", &a, 1, at, 1);
    nb_node *f = nb_sum(g, nb_mul(g, m, m), NULL, 0, false), *dx, *hx;
    cr_assert_eq(nb_grad(g, f, &a, 1, &dx), NB_OK, "%s", nb_graph_error(g));
    cr_assert_eq(nb_grad(g, nb_sum(g, nb_mul(g, dx, vn), NULL, 0, false), &a, 1, &hx), NB_OK,
                 "%s: %s", op, nb_graph_error(g));
    eval_graph(g, 2, (nb_node *[]){dx, hx}, (double *[]){grad, hv}, 2, (nb_node *[]){a, vn},
               (const double *[]){x, v}, NULL, 0);
    double xp[8], xm[8], gp[8], gm[8], eps = 1e-6;
    for (int i = 0; i < 8; i++) xp[i] = x[i] + eps * v[i], xm[i] = x[i] - eps * v[i];
    eval_node(g, dx, gp, 2, (nb_node *[]){a, vn}, (const double *[]){xp, v});
    eval_node(g, dx, gm, 2, (nb_node *[]){a, vn}, (const double *[]){xm, v});
    for (int i = 0; i < 8; i++) fd[i] = (gp[i] - gm[i]) / (2 * eps);
    nb_graph_free(g);
}

Test(reduce2, second_order_through_max_and_min)
{
    static const double x[8] = {0.3, -1.2, 2.5, 0.7, -0.4, 1.9, -2.2, 0.05};
    static const double v[8] = {0.3, -0.7, 0.2, 1.1, 0.5, 0.25, -0.4, 0.9};
    const char *ops[2] = {"max", "min"};
    for (int k = 0; k < 2; k++) {
        double grad[8], hv[8], fd[8];
        hvp(ops[k], x, v, grad, hv, fd);
        expect_close(hv, fd, 8, 1e-7, 1e-6, ops[k]);
        /* not trivially zero: 2 v at the selected element of each row */
        double want[8] = {0};
        want[k ? 1 : 2] = 2 * v[k ? 1 : 2], want[k ? 6 : 5] = 2 * v[k ? 6 : 5];
        expect_close(hv, want, 8, 1e-12, 0, ops[k]);
    }
}

/* At ties the selection mask is held constant and shared, as torch's
 * autograd.grad(create_graph=True) does (references from torch 1.13) */
Test(reduce2, second_order_at_ties_matches_torch)
{
    static const double x[8] = {1, 3, 3, 0.5, 2, -1, 0, 2};
    static const double v[8] = {0.3, -0.7, 0.2, 1.1, 0.5, 0.25, -0.4, 0.9};
    static const double want[2][2][8] = {
        {{0, 3, 3, 0, 2, 0, 0, 2}, {0, -0.25, -0.25, 0, 0.7, 0, 0, 0.7}},
        {{0, 0, 0, 1, 0, -2, 0, 0}, {0, 0, 0, 2.2, 0, 0.5, 0, 0}}};
    const char *ops[2] = {"max", "min"};
    for (int k = 0; k < 2; k++) {
        double grad[8], hv[8], fd[8];
        hvp(ops[k], x, v, grad, hv, fd);
        expect_close(grad, want[k][0], 8, 1e-12, 1e-12, ops[k]);
        expect_close(hv, want[k][1], 8, 1e-12, 1e-12, ops[k]);
    }
}

/* logsumexp's gradient is built of primitives: its HVP matches differences too */
Test(reduce2, second_order_through_logsumexp)
{
    static const double x[8] = {0.3, -1.2, 2.5, 0.7, -0.4, 1.9, -2.2, 0.05};
    static const double v[8] = {0.3, -0.7, 0.2, 1.1, 0.5, 0.25, -0.4, 0.9};
    double grad[8], hv[8], fd[8];
    hvp("logsumexp", x, v, grad, hv, fd);
    expect_close(hv, fd, 8, 1e-7, 1e-6, "logsumexp");
}

/* ---- f32 sum accuracy ---- */

/* f32 sums of U(0, 1) within 1e-6 of the f64 sum: whole tensor, columns
 * (axis 0, 4096 rows: bias gradients, through sum and through sum_to) and
 * rows (axis 1). At these sizes a running f32 sum errs by more than 1e-6
 * (checked below), so the test fails with naive accumulation. */
static double rel(double got, double want) { return fabs(got - want) / fabs(want); }

static void sum_accuracy(int64_t R, int64_t C, int axis, double *worst, double *naive_worst)
{
    nb_rng rng;
    nb_rng_seed(&rng, 42);
    size_t n = (size_t)(R * C);
    float *x = malloc(n * sizeof *x);
    double *exact = calloc((size_t)(R > C ? R : C), sizeof *exact);
    float *naive = calloc((size_t)(R > C ? R : C), sizeof *naive);
    for (size_t i = 0; i < n; i++) x[i] = (float)nb_rng_uniform(&rng);
    int64_t outs = axis < 0 ? 1 : axis == 0 ? C : R;
    for (int64_t r = 0; r < R; r++)
        for (int64_t c = 0; c < C; c++) {
            int64_t o = axis < 0 ? 0 : axis == 0 ? c : r;
            exact[o] += x[r * C + c];
            naive[o] += x[r * C + c];
        }
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "x", NB_F32, 2, (nb_dim[]){NB_DIM(R), NB_DIM(C)});
    int64_t ax = axis;
    nb_node *s = nb_sum(g, a, &ax, axis < 0 ? 0 : 1, false);
    nb_plan *p = plan_new_ok(g, &s, 1);
    cr_assert_eq(nb_plan_set(p, a, x), NB_OK);
    plan_run_ok(p);
    const float *got = nb_plan_get(p, s);
    *worst = *naive_worst = 0;
    for (int64_t o = 0; o < outs; o++) {
        *worst = fmax(*worst, rel(got[o], exact[o]));
        *naive_worst = fmax(*naive_worst, rel(naive[o], exact[o]));
    }
    nb_plan_free(p);
    nb_graph_free(g);
    free(x), free(exact), free(naive);
}

Test(reduce2, f32_sums_are_accurate, .timeout = 120)
{
    struct { int64_t R, C; int axis; } cases[] = {
        {4096, 1024, -1}, {4096, 1024, 0}, {4, 1 << 20, 1}, {4096, 7, 0}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        double worst, naive;
        sum_accuracy(cases[k].R, cases[k].C, cases[k].axis, &worst, &naive);
        cr_expect_leq(worst, 1e-6, "[%lld, %lld] axis %d: relative error %g",
                      (long long)cases[k].R, (long long)cases[k].C, cases[k].axis, worst);
        cr_expect_gt(naive, 1e-6, "case %zu: a running f32 sum errs by only %g here", k, naive);
    }
}

/* The bias gradient of x W + b over 4096 rows: sum_to's column sums, same bound */
Test(reduce2, f32_bias_gradient_is_accurate)
{
    int64_t R = 4096, C = 256;
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    float *gy = malloc((size_t)(R * C) * sizeof *gy);
    for (int64_t i = 0; i < R * C; i++) gy[i] = (float)nb_rng_uniform(&rng);
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 2, (nb_dim[]){NB_DIM(R), NB_DIM(C)});
    nb_node *u = nb_input(g, "u", NB_F32, 2, (nb_dim[]){NB_DIM(R), NB_DIM(C)});
    nb_node *b = nb_param(g, "b", NB_F32, 1, &C, NB_INIT(NB_INIT_ZEROS)), *db;
    nb_node *loss = nb_sum(g, nb_mul(g, nb_add(g, x, b), u), NULL, 0, false);
    cr_assert_eq(nb_grad(g, loss, &b, 1, &db), NB_OK, "%s", nb_graph_error(g));
    nb_plan *p = plan_new_ok(g, &db, 1);
    nb_plan_set(p, u, gy);
    plan_run_ok(p);
    const float *got = nb_plan_get(p, db);
    double worst = 0;
    for (int64_t c = 0; c < C; c++) {
        double exact = 0;
        for (int64_t r = 0; r < R; r++) exact += gy[r * C + c];
        worst = fmax(worst, rel(got[c], exact));
    }
    cr_expect_leq(worst, 1e-6, "bias gradient: relative error %g", worst);
    nb_plan_free(p);
    nb_graph_free(g);
    free(gy);
}

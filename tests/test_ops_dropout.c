/* dropout and the plan's modes: identity in eval mode; in training mode about
 * `rate` of the elements dropped and the rest scaled by 1/(1-rate); masks a
 * pure function of (seed, step, node, element); the gradient uses the same
 * mask (checked against finite differences in training mode); shape errors;
 * the step counter; no allocation in a training run. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "testutil.h"

#define N 4000

typedef struct net {
    nb_graph *g;
    nb_node *x, *y;
    nb_plan *p;
} net;

/* y = dropout(x; rate) for x [N] of dtype dt, x = 1 + i % 7 */
static net make(nb_dtype dt, double rate)
{
    net n;
    n.g = nb_graph_new();
    n.x = nb_input(n.g, "x", dt, 1, (nb_dim[]){NB_DIM(N)});
    n.y = nb_dropout(n.g, n.x, rate);
    cr_assert_not_null(n.y, "%s", nb_graph_error(n.g));
    n.p = plan_new_ok(n.g, &n.y, 1);
    void *xs = nb_plan_input_buffer(n.p, n.x);
    for (int i = 0; i < N; i++) set_elem(dt, xs, (size_t)i, 1 + i % 7);
    return n;
}

static void drop(net *n)
{
    nb_plan_free(n->p);
    nb_graph_free(n->g);
}

static double at(const net *n, const void *data, int i)
{
    return get_elem(nb_node_dtype(n->x), data, (size_t)i);
}

/* Runs once; kept[i] says whether element i survived. */
static void run_mask(net *n, bool *kept)
{
    plan_run_ok(n->p);
    const void *y = nb_plan_get(n->p, n->y);
    for (int i = 0; i < N; i++) kept[i] = at(n, y, i) != 0;
}

static int differences(const bool *a, const bool *b)
{
    int d = 0;
    for (int i = 0; i < N; i++) d += a[i] != b[i];
    return d;
}

Test(dropout, eval_is_identity)
{
    nb_dtype dts[2] = {NB_F32, NB_F64};
    for (int d = 0; d < 2; d++) {
        net n = make(dts[d], 0.5);
        cr_expect_not(nb_plan_training(n.p), "plans start in eval mode");
        plan_run_ok(n.p);
        const void *y = nb_plan_get(n.p, n.y);
        const void *x = nb_plan_input_buffer(n.p, n.x);
        for (int i = 0; i < N; i++) cr_assert_eq(at(&n, y, i), at(&n, x, i), "element %d", i);
        cr_expect_eq(nb_plan_step(n.p), 0, "eval runs do not count");
        /* back from training to eval: the identity again */
        nb_plan_set_training(n.p, true);
        nb_plan_run(n.p);
        nb_plan_set_training(n.p, false);
        nb_plan_run(n.p);
        y = nb_plan_get(n.p, n.y);
        for (int i = 0; i < N; i++) cr_assert_eq(at(&n, y, i), at(&n, x, i), "element %d", i);
        drop(&n);
    }
}

/* About rate*N dropped (binomial: within 5 standard deviations), the rest
 * exactly x / (1 - rate) in the op's dtype. */
static void expect_rate(nb_dtype dt, double rate)
{
    net n = make(dt, rate);
    nb_plan_set_training(n.p, true);
    nb_plan_set_seed(n.p, 42);
    plan_run_ok(n.p);
    const void *y = nb_plan_get(n.p, n.y), *x = nb_plan_input_buffer(n.p, n.x);
    int dropped = 0;
    for (int i = 0; i < N; i++) {
        double yi = at(&n, y, i), xi = at(&n, x, i);
        if (yi == 0) {
            dropped++;
            continue;
        }
        double want = dt == NB_F64 ? xi * (1 / (1 - rate)) : (double)((float)xi * (float)(1 / (1 - rate)));
        cr_assert_eq(yi, want, "%s rate %g element %d: %.17g, want %.17g", nb_dtype_name(dt), rate, i,
                     yi, want);
    }
    double mean = rate * N, sd = sqrt(N * rate * (1 - rate));
    cr_expect(fabs(dropped - mean) <= 5 * sd + 1e-9, "%s rate %g: %d of %d dropped", nb_dtype_name(dt),
              rate, dropped, N);
    drop(&n);
}

Test(dropout, drops_at_rate_and_scales)
{
    expect_rate(NB_F32, 0.3);
    expect_rate(NB_F64, 0.5);
    expect_rate(NB_F32, 0.9);
    expect_rate(NB_F64, 0);  /* nothing dropped, nothing scaled */
}

Test(dropout, masks_follow_seed_and_step)
{
    static bool a[N], b[N], c[N], d[N];
    net n = make(NB_F32, 0.5);
    nb_plan_set_training(n.p, true);
    nb_plan_set_seed(n.p, 7);
    cr_expect_eq(nb_plan_step(n.p), 0);
    run_mask(&n, a);
    cr_expect_eq(nb_plan_step(n.p), 1, "a training run counts");
    run_mask(&n, b);  /* step 1 */
    cr_expect_gt(differences(a, b), N / 4, "another step, another mask");
    nb_plan_set_seed(n.p, 7);
    run_mask(&n, c);
    cr_expect_eq(differences(a, c), 0, "the same seed gives the same mask again");
    nb_plan_set_seed(n.p, 8);
    run_mask(&n, d);
    cr_expect_gt(differences(a, d), N / 4, "another seed, another mask");
    drop(&n);

    /* a new plan (and a new graph) with the same seed: the same masks */
    net m = make(NB_F32, 0.5);
    nb_plan_set_training(m.p, true);
    nb_plan_set_seed(m.p, 7);
    run_mask(&m, c);
    cr_expect_eq(differences(a, c), 0);
    drop(&m);
}

/* Two dropout nodes on the same x draw different masks in one run. */
Test(dropout, nodes_have_their_own_masks)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 1, (nb_dim[]){NB_DIM(N)});
    nb_node *y[2] = {nb_dropout(g, x, 0.5), nb_dropout(g, x, 0.5)};
    nb_plan *p = plan_new_ok(g, y, 2);
    double *xs = nb_plan_input_buffer(p, x);
    for (int i = 0; i < N; i++) xs[i] = 1;
    nb_plan_set_training(p, true);
    plan_run_ok(p);
    const double *a = nb_plan_get(p, y[0]), *b = nb_plan_get(p, y[1]);
    int diff = 0;
    for (int i = 0; i < N; i++) diff += (a[i] == 0) != (b[i] == 0);
    cr_expect_gt(diff, N / 4);
    nb_plan_free(p);
    nb_graph_free(g);
}

/* loss = sum(dropout(x) * R): the gradient is R where kept, scaled, and 0
 * where dropped, with the mask the forward pass drew in the same run. */
Test(dropout, gradient_uses_the_forward_mask)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 2, (nb_dim[]){NB_DIM(20), NB_DIM(30)});
    nb_node *r = nb_input(g, "R", NB_F64, 2, (nb_dim[]){NB_DIM(20), NB_DIM(30)});
    nb_node *y = nb_dropout(g, x, 0.4);
    nb_node *loss = nb_sum(g, nb_mul(g, y, r), NULL, 0, false), *gx;
    cr_assert_eq(nb_grad(g, loss, &x, 1, &gx), NB_OK, "%s", nb_graph_error(g));
    nb_plan *p = plan_new_ok(g, (nb_node *[]){y, gx}, 2);
    double *xs = nb_plan_input_buffer(p, x), *rs = nb_plan_input_buffer(p, r);
    for (int i = 0; i < 600; i++) xs[i] = 1 + i % 5, rs[i] = 0.5 + i % 3;
    nb_plan_set_training(p, true);
    for (int run = 0; run < 3; run++) {  /* a new mask every step, always matched */
        plan_run_ok(p);
        const double *ys = nb_plan_get(p, y), *gs = nb_plan_get(p, gx);
        int kept = 0;
        for (int i = 0; i < 600; i++) {
            double want = ys[i] != 0 ? rs[i] / 0.6 : 0;
            kept += ys[i] != 0;
            cr_assert_float_eq(gs[i], want, 1e-12, "run %d element %d", run, i);
        }
        cr_expect(kept > 250 && kept < 470, "run %d: %d kept", run, kept);
    }
    nb_plan_free(p);
    nb_graph_free(g);
}

/* Training mode against central differences: nb_gradcheck seeds every run
 * alike, so the perturbed runs share the mask; the same for the op cases. */
Test(dropout, training_gradcheck)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 2, (nb_dim[]){NB_DIM(6), NB_DIM(5)});
    nb_node *h = nb_tanh(g, nb_dropout(g, nb_scale(g, x, 2, 0.1), 0.5));
    nb_node *loss = nb_sum(g, nb_mul(g, h, nb_dropout(g, h, 0.3)), NULL, 0, false);
    double xs[30];
    for (int i = 0; i < 30; i++) xs[i] = sin(i + 1.0);
    nb_gc_opts o = NB_GC_DEFAULTS;
    o.training = true;
    o.seed = 11;
    nb_gc_result res;
    cr_assert_eq(nb_gradcheck(g, loss, &x, 1, NULL, 0, (nb_feed[]){{x, xs}}, 1, &o, &res),
                 NB_OK, "%s", nb_graph_error(g));
    cr_expect(res.pass, "max abs err %g at %zu", res.max_abs, res.worst);
    cr_expect_eq(res.kinks, 0, "a mask that changed between runs looks like a kink");
    cr_expect_eq(res.checked, 30);
    nb_graph_free(g);

    const char *ops[] = {"dropout", "dropout_backward"};
    for (int k = 0; k < 2; k++) {
        const nb_op_def *op = nb_op_find(ops[k]);
        cr_assert_not_null(op);
        for (int c = 0; c < op->n_cases; c++) {
            nb_gc_result r[6];
            int n = 0;
            o.seed = (uint64_t)c + 3;
            cr_assert_eq(nb_gradcheck_op(op, &op->cases[c], &o, r, &n), NB_OK, "%s", nb_last_error());
            for (int i = 0; i < n; i++)
                cr_expect(r[i].pass && !r[i].kinks, "%s case %d: %g, %zu kinks", ops[k], c,
                          r[i].max_abs, r[i].kinks);
        }
    }
}

/* Without the fixed seed each run would draw a new mask: gradcheck would fail,
 * which shows the test above can fail. */
Test(dropout, gradcheck_needs_fixed_masks)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 1, (nb_dim[]){NB_DIM(40)});
    nb_node *loss = nb_sum(g, nb_dropout(g, nb_mul(g, x, x), 0.5), NULL, 0, false), *gx;
    cr_assert_eq(nb_grad(g, loss, &x, 1, &gx), NB_OK);
    nb_plan *p = plan_new_ok(g, (nb_node *[]){loss, gx}, 2);
    double *xs = nb_plan_input_buffer(p, x);
    for (int i = 0; i < 40; i++) xs[i] = 1;
    nb_plan_set_training(p, true);
    nb_plan_run(p);
    double l0 = *(const double *)nb_plan_get(p, loss);
    nb_plan_run(p);
    double l1 = *(const double *)nb_plan_get(p, loss);
    cr_expect_neq(l0, l1, "successive training runs draw different masks");
    nb_plan_free(p);
    nb_graph_free(g);
}

Test(dropout, errors)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *t = nb_input(g, "t", NB_I32, 1, (nb_dim[]){NB_DIM(3)});
    const double bad[] = {1, -0.1, 1.5, NAN};
    for (int i = 0; i < 4; i++) {
        nb_graph_clear_error(g);
        cr_expect_null(nb_op(g, "dropout", "d", &x, 1, (nb_attr[]){NB_AFLOAT("rate", bad[i])}, 1));
        expect_graph_error(g, NB_ERR_ARG, (const char *[]){"node 'd': dropout needs 0 <= rate < 1"}, 1);
    }
    nb_graph_clear_error(g);
    cr_expect_null(nb_op(g, "dropout", "d", &x, 1, NULL, 0));
    cr_expect(strstr(nb_graph_error(g), "needs attribute 'rate'"), "%s", nb_graph_error(g));
    nb_graph_clear_error(g);
    cr_expect_null(nb_dropout(g, t, 0.5));
    expect_graph_error(g, NB_ERR_DTYPE, (const char *[]){"t is i32"}, 1);
    cr_expect_eq(nb_plan_set_training(NULL, true), NB_ERR_ARG);
    nb_graph_free(g);
}

/* Setting the mode and seed and running in training mode allocate nothing. */
Test(dropout, training_runs_allocate_nothing)
{
    net n = make(NB_F32, 0.5);
    plan_run_ok(n.p);
    uint64_t before = nb_alloc_count();
    nb_plan_set_training(n.p, true);
    nb_plan_set_seed(n.p, 3);
    for (int i = 0; i < 5; i++) plan_run_ok(n.p);
    nb_plan_set_training(n.p, false);
    nb_plan_run(n.p);
    cr_expect_eq(nb_alloc_count(), before);
    cr_expect_eq(nb_plan_step(n.p), 5);
    drop(&n);
}

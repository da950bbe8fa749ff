/* Optimizers as graph ops (nb_optimize): each update against the formulas of
 * model-format.md computed by hand in double over several steps, in f32 and
 * f64, with and without weight decay; the flat gradient buffer and its hook;
 * names of the state; no allocation in a step; errors. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#define STEPS 5

/* loss = sum(x * w * w) over w [3] and u [2]: dL/dw = 2 x w changes every step */
typedef struct net {
    nb_graph *g;
    nb_node *x, *w, *u, *loss, *step;
    nb_plan *p;
} net;

static const double W0[3] = {0.5, -1.0, 2.0}, U0[2] = {0.25, -0.75};
static const double X[3] = {1.0, 0.5, -2.0}, XU[2] = {3.0, -1.0};

static net make(nb_dtype dt, const nb_optim_cfg *cfg)
{
    net n = {.g = nb_graph_new()};
    n.x = nb_input(n.g, "x", dt, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *xu = nb_input(n.g, "xu", dt, 1, (nb_dim[]){NB_DIM(2)});
    n.w = nb_param(n.g, "w", dt, 1, (int64_t[]){3}, (nb_init){.kind = NB_INIT_VALUES, .values = W0, .n_values = 3});
    n.u = nb_param(n.g, "u", dt, 1, (int64_t[]){2}, (nb_init){.kind = NB_INIT_VALUES, .values = U0, .n_values = 2});
    nb_node *a = nb_sum(n.g, nb_mul(n.g, n.x, nb_mul(n.g, n.w, n.w)), NULL, 0, false);
    nb_node *b = nb_sum(n.g, nb_mul(n.g, xu, nb_mul(n.g, n.u, n.u)), NULL, 0, false);
    n.loss = nb_add(n.g, a, b);
    n.step = nb_optimize(n.g, n.loss, (nb_node *[]){n.w, n.u}, 2, cfg, NULL);
    cr_assert_not_null(n.step, "%s", nb_graph_error(n.g));
    n.p = plan_new_ok(n.g, (nb_node *[]){n.loss, n.step}, 2);
    plan_feed(n.p, n.x, X);
    plan_feed(n.p, xu, XU);
    return n;
}

static void drop(net *n)
{
    nb_plan_free(n->p);
    nb_graph_free(n->g);
}

static double value(nb_node *p, size_t i)
{
    nb_tensor *t = nb_param_value(p);
    return get_elem(t->dtype, t->data, i);
}

/* The formulas, in double, for one element with gradient coefficient c (g = 2 c w). */
typedef struct ref {
    double w, m, v;
} ref;

static void ref_step(ref *r, double c, const nb_optim_cfg *o, int t)
{
    double g = 2 * c * r->w + o->weight_decay * r->w;
    switch (o->type) {
    case NB_SGD: r->w -= o->lr * g; break;
    case NB_MOMENTUM:
        r->v = o->momentum * r->v + g;
        r->w -= o->lr * r->v;
        break;
    case NB_ADAGRAD:
        r->v += g * g;
        r->w -= o->lr * g / (sqrt(r->v) + o->eps);
        break;
    case NB_ADAM:
        r->m = o->beta1 * r->m + (1 - o->beta1) * g;
        r->v = o->beta2 * r->v + (1 - o->beta2) * g * g;
        r->w -= o->lr * (r->m / (1 - pow(o->beta1, t))) / (sqrt(r->v / (1 - pow(o->beta2, t))) + o->eps);
        break;
    }
}

typedef struct ocase {
    nb_optimizer type;
    nb_dtype dt;
    double wd;
} ocase;

ParameterizedTestParameters(optim, matches_the_formulas)
{
    static ocase cases[16];
    int k = 0;
    for (int t = NB_SGD; t <= NB_ADAM; t++)
        for (int d = 0; d < 2; d++)
            for (int w = 0; w < 2; w++) cases[k++] = (ocase){(nb_optimizer)t, d ? NB_F64 : NB_F32, w ? 0.1 : 0};
    return cr_make_param_array(ocase, cases, 16);
}

ParameterizedTest(ocase *c, optim, matches_the_formulas)
{
    nb_optim_cfg o = nb_optim_defaults(c->type);
    o.lr = c->type == NB_ADAGRAD ? 0.3 : 0.05;
    o.weight_decay = c->wd;
    net n = make(c->dt, &o);
    ref rw[3], ru[2];
    for (int i = 0; i < 3; i++) rw[i] = (ref){W0[i], 0, 0};
    for (int i = 0; i < 2; i++) ru[i] = (ref){U0[i], 0, 0};
    double tol = c->dt == NB_F32 ? 2e-6 : 1e-13;
    for (int t = 1; t <= STEPS; t++) {
        plan_run_ok(n.p);
        for (int i = 0; i < 3; i++) ref_step(&rw[i], X[i], &o, t);
        for (int i = 0; i < 2; i++) ref_step(&ru[i], XU[i], &o, t);
        double w[3], u[2], want_w[3], want_u[2];
        for (int i = 0; i < 3; i++) w[i] = value(n.w, i), want_w[i] = rw[i].w;
        for (int i = 0; i < 2; i++) u[i] = value(n.u, i), want_u[i] = ru[i].w;
        char what[2][96];
        snprintf(what[0], sizeof what[0], "%s %s wd %g step %d: w", nb_optimizer_name(c->type),
                 nb_dtype_name(c->dt), c->wd, t);
        snprintf(what[1], sizeof what[1], "%s step %d: u", nb_optimizer_name(c->type), t);
        expect_close(w, want_w, 3, tol, tol, what[0]);
        expect_close(u, want_u, 2, tol, tol, what[1]);
    }
    cr_expect_eq(value(nb_graph_find(n.g, "opt.step"), 0), STEPS);
    drop(&n);
}

/* A step by hand of the first update, so the test above cannot pass by
 * sharing a mistake with ref_step: adam's first step moves each weight by
 * lr * sign(g) (m/c1 = g, v/c2 = g^2). */
Test(optim, adam_first_step_moves_by_lr)
{
    nb_optim_cfg o = nb_optim_defaults(NB_ADAM);
    o.lr = 0.01;
    net n = make(NB_F64, &o);
    plan_run_ok(n.p);
    for (int i = 0; i < 3; i++) {
        double g = 2 * X[i] * W0[i];
        cr_expect(fabs(value(n.w, i) - (W0[i] - 0.01 * (g > 0 ? 1 : -1))) < 1e-9, "w[%d] = %g", i,
                  value(n.w, i));
    }
    drop(&n);
}

Test(optim, state_is_named_as_in_checkpoints)
{
    nb_optim_cfg o = nb_optim_defaults(NB_ADAM);
    net n = make(NB_F32, &o);
    const char *names[] = {"opt.w", "opt.w.m", "opt.w.v", "opt.u.m", "opt.u.v", "opt.step", "opt.grads"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        cr_expect_not_null(nb_graph_find(n.g, names[i]), "no node %s", names[i]);
    cr_expect_not(nb_param_trainable(nb_graph_find(n.g, "opt.w.m")));
    cr_expect_eq(nb_node_dtype(nb_graph_find(n.g, "opt.step")), NB_F64);
    cr_expect_eq(nb_node_dim(nb_graph_find(n.g, "opt.grads"), 0), 5);
    drop(&n);
    o = nb_optim_defaults(NB_MOMENTUM);
    n = make(NB_F32, &o);
    cr_expect_not_null(nb_graph_find(n.g, "opt.w.v"));
    cr_expect_null(nb_graph_find(n.g, "opt.w.m"));
    drop(&n);
}

Test(optim, a_step_allocates_nothing)
{
    nb_optim_cfg o = nb_optim_defaults(NB_ADAM);
    net n = make(NB_F32, &o);
    plan_run_ok(n.p);
    uint64_t before = nb_alloc_count();
    for (int i = 0; i < 10; i++) plan_run_ok(n.p);
    cr_expect_eq(nb_alloc_count(), before);
    drop(&n);
}

/* The hook sees every gradient in one buffer, param after param, before any
 * param changes; what it writes is what the updates use. */
typedef struct seen {
    int calls;
    double g[5];
    double w0;
    nb_node *w;
    bool zero, fail;
} seen;

static nb_status hook(void *user, void *grads, size_t n, nb_dtype dt)
{
    seen *s = user;
    cr_assert_eq(n, 5);
    cr_assert_eq(dt, NB_F64);
    s->calls++;
    s->w0 = value(s->w, 0);
    memcpy(s->g, grads, sizeof s->g);
    if (s->zero) memset(grads, 0, n * sizeof(double));
    return s->fail ? NB_ERR_RUNTIME : NB_OK;
}

Test(optim, hook_sees_the_flat_gradients)
{
    nb_optim_cfg o = nb_optim_defaults(NB_SGD);
    net n = make(NB_F64, &o);
    seen s = {.w = n.w};
    cr_assert_eq(nb_optimize_hook(n.g, n.step, hook, &s), NB_OK);
    plan_run_ok(n.p);
    cr_expect_eq(s.calls, 1);
    cr_expect_eq(s.w0, W0[0], "the hook ran after an update");
    for (int i = 0; i < 3; i++) cr_expect_eq(s.g[i], 2 * X[i] * W0[i]);
    for (int i = 0; i < 2; i++) cr_expect_eq(s.g[3 + i], 2 * XU[i] * U0[i]);
    /* zeroed gradients: sgd changes nothing */
    s.zero = true;
    double w = value(n.w, 1);
    plan_run_ok(n.p);
    cr_expect_eq(value(n.w, 1), w);
    /* a failing hook fails the run before any update */
    s.zero = false, s.fail = true;
    cr_expect_eq(nb_plan_run(n.p), NB_ERR_RUNTIME);
    cr_expect(strstr(nb_plan_error(n.p), "gradient hook"), "%s", nb_plan_error(n.p));
    cr_expect_eq(value(n.w, 1), w);
    drop(&n);
}

Test(optim, learning_rate_can_change)
{
    nb_optim_cfg o = nb_optim_defaults(NB_SGD);
    o.lr = 0.1;
    net n = make(NB_F64, &o);
    cr_assert_eq(nb_optimize_set_lr(n.g, n.step, 0.2), NB_OK);
    plan_run_ok(n.p);
    cr_expect(fabs(value(n.w, 0) - (W0[0] - 0.2 * 2 * X[0] * W0[0])) < 1e-15);
    cr_expect_eq(nb_optimize_set_lr(n.g, n.step, -1), NB_ERR_ARG);
    cr_expect_eq(nb_optimize_set_lr(n.g, n.loss, 0.1), NB_ERR_ARG);
    cr_expect(strstr(nb_graph_error(n.g), "not a step node"), "%s", nb_graph_error(n.g));
    drop(&n);
}

/* Weights files hold the optimizer state but not the scratch buffer. */
Test(optim, checkpoints_hold_state_not_scratch, .init = tmp_make, .fini = tmp_remove)
{
    nb_optim_cfg o = nb_optim_defaults(NB_ADAM);
    net n = make(NB_F32, &o);
    plan_run_ok(n.p);
    cr_assert_eq(nb_weights_save(n.g, tmp_path("c.safetensors"), NULL, 0), NB_OK, "%s", nb_graph_error(n.g));
    nb_tensor_set set;
    cr_assert_eq(nb_safetensors_read(tmp_path("c.safetensors"), &set), NB_OK);
    cr_expect_not_null(nb_tensor_set_find(&set, "opt.w.m"));
    cr_expect_not_null(nb_tensor_set_find(&set, "opt.step"));
    cr_expect_null(nb_tensor_set_find(&set, "opt.grads"));
    nb_tensor_set_free(&set);
    net m = make(NB_F32, &o);
    cr_assert_eq(nb_weights_load(m.g, tmp_path("c.safetensors"), NULL), NB_OK, "%s", nb_graph_error(m.g));
    cr_expect_eq(value(nb_graph_find(m.g, "opt.step"), 0), 1);
    cr_expect_eq(value(m.w, 2), value(n.w, 2));
    drop(&m);
    drop(&n);
}

Test(optim, refuses_what_it_cannot_train)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 1, (nb_dim[]){NB_DIM(2)});
    nb_node *w = nb_param(g, "w", NB_F32, 1, (int64_t[]){2}, NB_INIT(NB_INIT_ONES));
    nb_node *loss = nb_sum(g, nb_mul(g, x, w), NULL, 0, false);
    nb_optim_cfg o = nb_optim_defaults(NB_SGD);
    cr_expect_null(nb_optimize(g, loss, &x, 1, &o, NULL));
    cr_expect(strstr(nb_graph_error(g), "'x' is not a trainable param"), "%s", nb_graph_error(g));
    o.lr = 0;
    cr_expect_null(nb_optimize(g, loss, &w, 1, &o, NULL));
    cr_expect(strstr(nb_graph_error(g), "lr must be > 0"), "%s", nb_graph_error(g));
    o = nb_optim_defaults(NB_ADAM);
    o.beta2 = 1;
    cr_expect_null(nb_optimize(g, loss, &w, 1, &o, NULL));
    cr_expect_null(nb_optimize(g, nb_mul(g, x, w), &w, 1, &o, NULL));
    nb_optimizer t;
    cr_expect_eq(nb_optimizer_parse("adam", &t), NB_OK);
    cr_expect_eq(t, NB_ADAM);
    cr_expect_eq(nb_optimizer_parse("adamw", &t), NB_ERR_ARG);
    nb_graph_free(g);
}

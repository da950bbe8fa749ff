/* Profiling a plan (nb_plan_set_profile, nb_plan_profile): one record per
 * node a run computes, in run order, counting every profiled run and nothing
 * else; turning it on clears the totals; a step allocates nothing with
 * profiling on or off. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "testutil.h"

/* The training step of examples/models/mnist_mlp.yaml (loss + every
 * gradient), bound to a batch of 8 with inputs fed. */
typedef struct mlp {
    nb_model *m;
    nb_plan *p;
} mlp;

static mlp mlp_step(void)
{
    mlp s = {load_example("mnist_mlp.yaml"), NULL};
    nb_node *outs[16];
    size_t np = nb_model_num_trainable(s.m);
    cr_assert_lt(np, 15);
    outs[0] = nb_model_loss(s.m);
    cr_assert_eq(model_grads(s.m, true, false, outs + 1, 15), (int)np);
    s.p = plan_new_ok(nb_model_graph(s.m), outs, (int)np + 1);
    plan_bind_ok(s.p, (nb_bind[]){{"N", 8}}, 1);
    double x[8 * 784], t[8];
    fill_random(x, 8 * 784, 3);
    for (int i = 0; i < 8; i++) t[i] = i % 10;
    plan_feed(s.p, nb_model_input(s.m, 0), x);
    plan_feed(s.p, nb_model_input(s.m, 1), t);
    return s;
}

static void mlp_free(mlp *s)
{
    nb_plan_free(s->p);
    nb_model_free(s->m);
}

/* The records of p, malloc'd; their number in *n. */
static nb_node_profile *records(const nb_plan *p, size_t *n)
{
    *n = nb_plan_profile(p, NULL, 0);
    nb_node_profile *r = calloc(*n ? *n : 1, sizeof *r);
    cr_assert_eq(nb_plan_profile(p, r, *n), *n);
    return r;
}

static bool is_leaf(const nb_node *n)
{
    return nb_node_kind_of(n) == NB_NODE_INPUT || nb_node_kind_of(n) == NB_NODE_PARAM;
}

Test(plan_profile, counts_are_runs_times_nodes)
{
    mlp s = mlp_step();
    cr_assert_not(nb_plan_profiling(s.p), "profiling starts off");
    plan_run_ok(s.p);  /* not profiled */
    cr_assert_eq(nb_plan_set_profile(s.p, true), NB_OK);
    cr_assert(nb_plan_profiling(s.p));
    for (int k = 0; k < 5; k++) plan_run_ok(s.p);
    size_t n;
    nb_node_profile *r = records(s.p, &n);
    /* the MLP's step: 3 matmuls, 3 adds, 2 relus and the loss forward, and
     * at least as many gradient nodes */
    cr_assert_geq(n, 18, "%zu records", n);
    uint64_t runs = 0;
    double seconds = 0;
    for (size_t i = 0; i < n; i++) {
        cr_expect_eq(r[i].runs, 5, "node '%s' ran %llu times", nb_node_name(r[i].node),
                     (unsigned long long)r[i].runs);
        cr_expect_not(is_leaf(r[i].node), "'%s' is an input or param", nb_node_name(r[i].node));
        cr_expect_geq(r[i].seconds, 0);
        runs += r[i].runs;
        seconds += r[i].seconds;
    }
    cr_expect_eq(runs, 5 * n, "%llu runs of %zu nodes", (unsigned long long)runs, n);
    cr_expect_gt(seconds, 0);
    free(r);
    mlp_free(&s);
}

Test(plan_profile, records_follow_the_run_order_once_each)
{
    mlp s = mlp_step();
    size_t n;
    nb_node_profile *r = records(s.p, &n);  /* never profiled: zeros, but the nodes */
    cr_assert_gt(n, 0);
    nb_graph *g = nb_model_graph(s.m);
    size_t last = 0;
    for (size_t i = 0; i < n; i++) {
        cr_expect_eq(r[i].runs, 0);
        cr_expect_eq(r[i].seconds, 0);
        size_t at = 0;  /* plans run in graph (creation) order */
        while (at < nb_graph_num_nodes(g) && nb_graph_node(g, at) != r[i].node) at++;
        cr_assert_lt(at, nb_graph_num_nodes(g));
        if (i) cr_expect_gt(at, last, "'%s' out of order", nb_node_name(r[i].node));
        last = at;
    }
    /* the loss runs, a node no output needs does not */
    bool loss = false;
    for (size_t i = 0; i < n; i++) loss |= r[i].node == nb_model_loss(s.m);
    cr_expect(loss);
    /* a short buffer gets the first records, the count is still the whole */
    nb_node_profile two[2];
    cr_expect_eq(nb_plan_profile(s.p, two, 2), n);
    cr_expect_eq(two[1].node, r[1].node);
    free(r);
    mlp_free(&s);
}

Test(plan_profile, off_stops_counting_and_on_clears)
{
    mlp s = mlp_step();
    cr_assert_eq(nb_plan_set_profile(s.p, true), NB_OK);
    plan_run_ok(s.p);
    plan_run_ok(s.p);
    cr_assert_eq(nb_plan_set_profile(s.p, false), NB_OK);
    cr_assert_not(nb_plan_profiling(s.p));
    plan_run_ok(s.p);
    size_t n;
    nb_node_profile *r = records(s.p, &n);
    for (size_t i = 0; i < n; i++) cr_expect_eq(r[i].runs, 2, "kept after off, not counted");
    free(r);
    cr_assert_eq(nb_plan_set_profile(s.p, true), NB_OK);
    plan_run_ok(s.p);
    r = records(s.p, &n);
    for (size_t i = 0; i < n; i++) cr_expect_eq(r[i].runs, 1, "cleared when turned on again");
    free(r);
    mlp_free(&s);
}

Test(plan_profile, a_checked_run_is_profiled_too)
{
    mlp s = mlp_step();
    cr_assert_eq(nb_plan_set_profile(s.p, true), NB_OK);
    const nb_node *bad;
    cr_assert_eq(nb_plan_run_checked(s.p, &bad), NB_OK);
    cr_assert_null(bad);
    size_t n;
    nb_node_profile *r = records(s.p, &n);
    for (size_t i = 0; i < n; i++) cr_expect_eq(r[i].runs, 1);
    free(r);
    mlp_free(&s);
}

Test(plan_profile, a_step_allocates_nothing_profiled_or_not)
{
    mlp s = mlp_step();
    for (int on = 0; on < 2; on++) {
        cr_assert_eq(nb_plan_set_profile(s.p, on), NB_OK);
        plan_run_ok(s.p);
        uint64_t before = nb_alloc_count();
        for (int k = 0; k < 3; k++) plan_run_ok(s.p);
        cr_expect_eq(nb_alloc_count(), before, "a step with profiling %s allocated", on ? "on" : "off");
    }
    mlp_free(&s);
}

Test(plan_profile, null_plan)
{
    cr_expect_eq(nb_plan_set_profile(NULL, true), NB_ERR_ARG);
    cr_expect_not(nb_plan_profiling(NULL));
    cr_expect_eq(nb_plan_profile(NULL, NULL, 0), 0);
}

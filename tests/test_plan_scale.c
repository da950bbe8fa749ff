/* Planning cost grows about linearly with the graph, and the placement used
 * for large graphs (in the order buffers come alive, graph/place.c) gives
 * every value memory of its own while it lives: results of graphs with
 * thousands of buffers equal a direct evaluation. */
#include <criterion/criterion.h>
#include <math.h>
#include <sys/resource.h>

#include "testutil.h"

/* x -> tanh -> tanh ... (n times) -> sum, with d loss / dx. */
static nb_graph *chain(int n, nb_node **x, nb_node **loss, nb_node **gx)
{
    nb_graph *g = nb_graph_new();
    *x = nb_input(g, "x", NB_F64, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *h = *x;
    for (int i = 0; i < n; i++) h = nb_tanh(g, h);
    *loss = nb_sum(g, h, NULL, 0, false);
    cr_assert_eq(nb_grad(g, *loss, x, 1, gx), NB_OK, "%s", nb_graph_error(g));
    return g;
}

static void run_chain(int n, double *loss_v, double *gx_v)
{
    nb_node *x, *loss, *gx;
    nb_graph *g = chain(n, &x, &loss, &gx);
    nb_plan *p = plan_new_ok(g, (nb_node *[]){loss, gx}, 2);
    plan_bind_ok(p, NULL, 0);
    plan_feed(p, x, (double[]){0.5, 1.0, -2.0});
    plan_run_ok(p);
    plan_read(p, loss, loss_v);
    plan_read(p, gx, gx_v);
    nb_plan_free(p);
    nb_graph_free(g);
}

Test(plan_scale, a_long_chain_and_its_gradient_are_exact)
{
    int n = 6000;  /* 12 000 buffers: placed in time order */
    double loss, gx[3], want_loss = 0, x0[3] = {0.5, 1.0, -2.0};
    run_chain(n, &loss, gx);
    for (int k = 0; k < 3; k++) {
        double a = x0[k], d = 1;
        for (int i = 0; i < n; i++) {
            a = tanh(a);
            d *= 1 - a * a;
        }
        want_loss += a;
        cr_expect(is_close(gx[k], d, 0, 1e-9), "grad %d: %g, want %g", k, gx[k], d);
    }
    cr_expect(is_close(loss, want_loss, 0, 1e-12), "loss %g, want %g", loss, want_loss);
}

/* A random DAG: node i = tanh(node i-1) + 0.5 * node r(i), r(i) < i, so many
 * values stay alive across many steps, in overlapping spans. */
Test(plan_scale, a_large_random_graph_equals_direct_evaluation)
{
    enum { N = 5000 };
    static double v[N + 1];
    static int r[N + 1];
    nb_rng rng;
    nb_rng_seed(&rng, 42);
    nb_graph *g = nb_graph_new();
    nb_node **nodes = calloc(N + 1, sizeof *nodes);
    nodes[0] = nb_input(g, "x", NB_F64, 1, (nb_dim[]){NB_DIM(2)});
    v[0] = 0.3;
    for (int i = 1; i <= N; i++) {
        r[i] = (int)(nb_rng_next(&rng) % (uint64_t)i);
        nodes[i] = nb_add(g, nb_tanh(g, nodes[i - 1]), nb_scale(g, nodes[r[i]], 0.5, 0));
        v[i] = tanh(v[i - 1]) + 0.5 * v[r[i]];
    }
    nb_node *outs[3] = {nodes[N], nodes[N / 2], nodes[N / 3]};
    nb_plan *p = plan_new_ok(g, outs, 3);
    plan_bind_ok(p, NULL, 0);
    plan_feed(p, nodes[0], (double[]){0.3, 0.3});
    plan_run_ok(p);
    int idx[3] = {N, N / 2, N / 3};
    for (int k = 0; k < 3; k++) {
        double got[2];
        plan_read(p, outs[k], got);
        cr_expect(is_close(got[0], v[idx[k]], 0, 1e-12) && got[1] == got[0], "node %d: %g, want %g",
                  idx[k], got[0], v[idx[k]]);
    }
    cr_expect_lt(nb_plan_arena_bytes(p), (size_t)N * 2 * 64, "values share memory when they can");
    nb_plan_free(p);
    nb_graph_free(g);
    free(nodes);
}

/* The least user CPU time of three runs: a run that a busy machine slowed
 * (cache, frequency) is not the algorithm's cost. */
static double cpu_seconds_for_chain(int n)
{
    double best = INFINITY;
    for (int k = 0; k < 3; k++) {
        double t0 = user_cpu_seconds(RUSAGE_SELF), loss, gx[3];
        run_chain(n, &loss, gx);
        best = fmin(best, user_cpu_seconds(RUSAGE_SELF) - t0);
    }
    return best;
}

/* Building, differentiating, planning and running a chain: 4x the nodes costs
 * about 4x (quadratic placement cost 16x). */
Test(plan_scale, four_times_the_nodes_cost_about_four_times, .timeout = 120)
{
    double small = cpu_seconds_for_chain(10000), large = cpu_seconds_for_chain(40000);
    expect_linear(small, large, 0.05, "10k nodes: %.3f s, 40k nodes: %.3f s (ratio %.1f)", small, large,
                  large / small);
}

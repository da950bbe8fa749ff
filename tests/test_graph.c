/* Graph bookkeeping: the name index under many nodes and renames, and a node
 * with the most inputs allowed (NB_MAX_INPUTS). */
#include <criterion/criterion.h>
#include <stdio.h>

#include "testutil.h"

Test(graph, names_are_found_after_many_adds_and_renames)
{
    nb_graph *g = nb_graph_new();
    enum { N = 5000 };
    static nb_node *nodes[N];
    char name[32];
    nodes[0] = nb_input(g, "x0", NB_F32, 1, (nb_dim[]){NB_DIM(2)});
    for (int i = 1; i < N; i++) nodes[i] = nb_neg(g, nodes[i - 1]);
    cr_assert_eq(nb_graph_status(g), NB_OK, "%s", nb_graph_error(g));
    for (int i = 1; i < N; i += 2) {  /* rename every other node */
        snprintf(name, sizeof name, "renamed.%d", i);
        cr_assert_eq(nb_node_set_name(g, nodes[i], name), NB_OK);
    }
    for (int i = 0; i < N; i++) cr_assert_eq(nb_graph_find(g, nb_node_name(nodes[i])), nodes[i], "node %d", i);
    cr_expect_null(nb_graph_find(g, "neg_1"), "an old name is gone after the rename");
    cr_expect_null(nb_graph_find(g, "nothing"));
    cr_expect_eq(nb_node_set_name(g, nodes[2], nb_node_name(nodes[3])), NB_ERR_NAME, "names stay unique");
    nb_graph_free(g);
}

/* A concat of NB_MAX_INPUTS inputs builds, plans, runs and differentiates:
 * input i is [1] holding i, so y = [0, 1, ..., 63] and d sum(y * w) / d in[i]
 * is w[i] = i + 1, down to the input of the mask's last bit. */
Test(graph, concat_of_the_most_inputs_runs)
{
    enum { N = NB_MAX_INPUTS };
    nb_graph *g = nb_graph_new();
    nb_node *in[N], *grads[N];
    double v[N], w[N];
    char name[16];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "x%d", i);
        in[i] = nb_input(g, name, NB_F64, 1, (nb_dim[]){NB_DIM(1)});
        v[i] = i, w[i] = i + 1;
    }
    nb_node *y = nb_concat(g, in, N, 0);
    cr_assert_not_null(y, "%s", nb_graph_error(g));
    nb_node *wn = nb_input(g, "w", NB_F64, 1, (nb_dim[]){NB_DIM(N)});
    nb_node *loss = nb_sum(g, nb_mul(g, y, wn), NULL, 0, false);
    cr_assert_eq(nb_grad(g, loss, in, N, grads), NB_OK, "%s", nb_graph_error(g));
    nb_node *outs[N + 1];
    outs[0] = y;
    for (int i = 0; i < N; i++) outs[i + 1] = grads[i];
    nb_plan *p = plan_new_ok(g, outs, N + 1);
    for (int i = 0; i < N; i++) nb_plan_set(p, in[i], &v[i]);
    nb_plan_set(p, wn, w);
    plan_run_ok(p);
    const double *yv = nb_plan_get(p, y);
    for (int i = 0; i < N; i++) {
        cr_expect_float_eq(yv[i], i, 0, "y[%d]", i);
        cr_expect_float_eq(*(const double *)nb_plan_get(p, grads[i]), i + 1, 0, "grad %d", i);
    }
    nb_plan_free(p);
    nb_graph_free(g);
}

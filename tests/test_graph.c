/* Graph bookkeeping: the name index under many nodes and renames. */
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

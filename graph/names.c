/* The graph's name index, from node name to node (keys are the nodes' own
 * names), so that finding a name stays O(1) however large the graph: loaders
 * and autodiff ask often. */
#include "internal.h"

nb_node *nb_graph_find(const nb_graph *g, const char *name)
{
    return g ? nb__strmap_get(&g->names, name) : NULL;
}

nb_status nb__names_add(nb_graph *g, nb_node *n) { return nb__strmap_put(&g->names, n->name, n); }

void nb__names_remove(nb_graph *g, const nb_node *n) { nb__strmap_remove(&g->names, n->name); }

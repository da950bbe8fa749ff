/* The graph's name index: an open-addressing hash table (linear probing,
 * backward-shift deletion) from node name to node, so that finding a name
 * stays O(1) however large the graph (loaders and autodiff ask often). */
#include <string.h>

#include "internal.h"

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;  /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

nb_node *nb_graph_find(const nb_graph *g, const char *name)
{
    if (!g || !g->name_cap) return NULL;
    size_t mask = g->name_cap - 1;
    for (size_t i = hash(name) & mask; g->names[i]; i = (i + 1) & mask)
        if (!strcmp(g->names[i]->name, name)) return g->names[i];
    return NULL;
}

static void insert(nb_node **table, size_t cap, nb_node *n)
{
    size_t i = hash(n->name) & (cap - 1);
    while (table[i]) i = (i + 1) & (cap - 1);
    table[i] = n;
}

/* Keeps the table at most half full. */
static nb_status grow(nb_graph *g)
{
    size_t cap = g->name_cap ? 2 * g->name_cap : 128;
    nb_node **table = nb_calloc(cap, sizeof *table);
    if (!table) return NB_ERR_NOMEM;
    for (size_t i = 0; i < g->name_cap; i++)
        if (g->names[i]) insert(table, cap, g->names[i]);
    nb_free(g->names);
    g->names = table;
    g->name_cap = cap;
    return NB_OK;
}

nb_status nb__names_add(nb_graph *g, nb_node *n)
{
    if (2 * (g->name_used + 1) > g->name_cap && grow(g)) return NB_ERR_NOMEM;
    insert(g->names, g->name_cap, n);
    g->name_used++;
    return NB_OK;
}

void nb__names_remove(nb_graph *g, const nb_node *n)
{
    if (!g->name_cap) return;
    size_t mask = g->name_cap - 1, i = hash(n->name) & mask;
    while (g->names[i] && g->names[i] != n) i = (i + 1) & mask;
    if (!g->names[i]) return;
    g->names[i] = NULL;
    g->name_used--;
    /* shift back the entries of the probe run that follows, so lookups still find them */
    for (size_t j = (i + 1) & mask; g->names[j]; j = (j + 1) & mask) {
        size_t home = hash(g->names[j]->name) & mask;
        bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            g->names[i] = g->names[j];
            g->names[j] = NULL;
            i = j;
        }
    }
}

/* Questions about a graph's free dimensions and about shapes under partial
 * bindings, for tools that print or draw a model before any plan exists. */
#include "internal.h"

int nb_graph_num_syms(const nb_graph *g) { return g ? g->n_syms : 0; }

const char *nb_graph_sym(const nb_graph *g, int i)
{
    return g && i >= 0 && i < g->n_syms ? g->sym[i] : NULL;
}

const char *nb_node_dim_sym(const nb_graph *g, const nb_node *n, int axis)
{
    if (!g || !n || axis < 0 || axis >= n->shape.rank) return NULL;
    nb_sdim d = n->shape.d[axis];
    int found = -1;
    if (d.c != 1) return NULL;
    for (int k = 0; k < NB_MAX_SYMS; k++) {
        if (!d.e[k]) continue;
        if (d.e[k] != 1 || found >= 0) return NULL;  /* N^2 or N*T: not one symbol */
        found = k;
    }
    return found >= 0 && found < g->n_syms ? g->sym[found] : NULL;
}

/* Value of symbol k in binds, or 0 when it is not bound. */
static int64_t bound_value(const nb_graph *g, int k, const nb_bind *binds, int n_binds)
{
    for (int b = 0; b < n_binds; b++)
        if (nb__sym_find(g, binds[b].sym) == k) return binds[b].value;
    return 0;
}

/* Multiplies the bound symbols of d into its constant; false on overflow. */
static bool substitute(const nb_graph *g, nb_sdim *d, const nb_bind *binds, int n_binds)
{
    for (int k = 0; k < NB_MAX_SYMS; k++) {
        int64_t v = d->e[k] ? bound_value(g, k, binds, n_binds) : 0;
        if (v < 1) continue;
        for (; d->e[k] > 0; d->e[k]--)
            if (__builtin_mul_overflow(d->c, v, &d->c)) return false;
    }
    return true;
}

int nb_node_shape_bound(const nb_graph *g, const nb_node *n, const nb_bind *binds, int n_binds,
                        int64_t *shape)
{
    if (!g || !n || !shape) return -1;
    for (int i = 0; i < n->shape.rank; i++) {
        nb_sdim d = n->shape.d[i];
        if (!substitute(g, &d, binds, n_binds) || !nb_sdim_is_const(d)) return -1;
        shape[i] = d.c;
    }
    return n->shape.rank;
}

int nb_node_shape_str_bound(const nb_graph *g, const nb_node *n, const nb_bind *binds,
                            int n_binds, char *buf, size_t cap)
{
    if (!g || !n) return snprintf(buf, cap, "(null)");
    nb_shape s = n->shape;
    for (int i = 0; i < s.rank; i++) {
        nb_sdim d = s.d[i];
        if (substitute(g, &d, binds, n_binds)) s.d[i] = d;  /* on overflow keep it symbolic */
    }
    return nb_shape_format(g, &s, buf, cap);
}

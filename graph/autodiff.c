/* Reverse-mode autodiff, as gradient nodes in the same graph.
 *
 * From the loss, nodes are visited in reverse creation order (creation order
 * is topological). Each op's backward rule adds the nodes that compute its
 * inputs' gradients from its output's gradient; contributions reaching a node
 * along several paths are summed with add nodes, and a contribution with a
 * broadcast shape is summed back to its input's shape. Only nodes that lie on
 * a path from some wrt to the loss get gradient nodes: each rule is told which
 * of its inputs lie on one (the `needs` mask) and builds nothing for the
 * others, so no gradient node is left that nothing reads. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Can a gradient flow into input i of n? (not into labels, shape-only inputs
 * or the op's state, which nb_op appends after the inputs given) */
static bool carries_grad(const nb_node *n, int i)
{
    uint64_t stop = n->op->no_grad | n->op->shape_only;
    if (n->op->n_state > 0 && i >= n->n_in - n->op->n_state) return false;
    return !nb_needs_grad(stop, i);
}

/* on_path[i]: node i depends on a wrt and the loss depends on it */
static void mark_path(const nb_graph *g, const nb_node *loss, nb_node *const *wrt, int n_wrt,
                      bool *from_wrt, bool *to_loss)
{
    for (int k = 0; k < n_wrt; k++) from_wrt[wrt[k]->id] = true;
    for (size_t i = 0; i <= loss->id; i++) {
        const nb_node *n = g->nodes[i];
        for (int j = 0; j < n->n_in && n->op; j++)
            if (carries_grad(n, j) && from_wrt[n->in[j]->id]) from_wrt[i] = true;
    }
    to_loss[loss->id] = true;
    for (size_t i = loss->id + 1; i-- > 0;) {
        const nb_node *n = g->nodes[i];
        if (!to_loss[i] || !n->op) continue;
        for (int j = 0; j < n->n_in; j++)
            if (carries_grad(n, j)) to_loss[n->in[j]->id] = true;
    }
}

_Static_assert(NB_MAX_INPUTS <= 64, "the needs mask has one bit per input");

/* The inputs of n that need a gradient: bit i when input i carries one and
 * lies on the path (so the rule's nodes for it reach a wrt). */
static uint64_t needs_of(const nb_node *n, const bool *on_path)
{
    uint64_t needs = 0;
    for (int j = 0; j < n->n_in; j++)
        if (carries_grad(n, j) && on_path[n->in[j]->id]) needs |= (uint64_t)1 << j;
    return needs;
}

/* Adds contribution gx to the gradient of x, summing a broadcast shape back. */
static void accumulate(nb_graph *g, nb_node **acc, nb_node *x, nb_node *gx)
{
    if (!nb_shape_eq(&gx->shape, &x->shape))
        gx = nb_apply(g, &nb_op_sum_to, NULL, (nb_node *[]){gx, x}, 2, NULL, 0);
    acc[x->id] = acc[x->id] ? nb_add(g, acc[x->id], gx) : gx;
}

static nb_status backprop(nb_graph *g, nb_node *loss, const bool *on_path, nb_node **acc)
{
    nb_node *gx[NB_MAX_INPUTS];
    if (!on_path[loss->id]) return NB_OK;  /* no wrt reaches the loss: nothing to seed */
    acc[loss->id] = nb_apply(g, &nb_op_fill_like, NULL, (nb_node *[]){loss}, 1,
                             (nb_attr[]){NB_AFLOAT("value", 1)}, 1);
    for (size_t i = loss->id + 1; i-- > 0 && !g->status;) {
        nb_node *n = g->nodes[i];
        if (!on_path[i] || !acc[i] || !n->op) continue;
        if (n->n_in > NB_MAX_INPUTS)  /* nb_apply makes none */
            return nb__fail(g, NB_ERR_ARITY, "node '%s': too many inputs", n->name);
        uint64_t needs = needs_of(n, on_path);
        if (!needs) continue;  /* a wrt none of whose inputs leads to a wrt */
        if (!n->op->backward)
            return nb__fail(g, NB_ERR_NO_GRAD,
                            "node '%s': op %s has no gradient rule, but the gradient must pass "
                            "through it",
                            n->name, n->op->name);
        memset(gx, 0, sizeof gx);
        nb_status st = n->op->backward(g, n, acc[i], needs, gx);
        if (st || g->status)
            return g->status ? g->status
                             : nb__fail(g, st, "node '%s': gradient rule of %s failed", n->name,
                                        n->op->name);
        for (int j = 0; j < n->n_in; j++)
            if (gx[j] && nb_needs_grad(needs, j)) accumulate(g, acc, n->in[j], gx[j]);
    }
    return g->status;
}

/* Final gradients get readable names, "grad.W", when those are free. */
static void name_grad(nb_graph *g, nb_node *grad, const nb_node *x)
{
    char name[256];
    snprintf(name, sizeof name, "grad.%s", x->name);
    if (!strncmp(grad->name, "d.", 2) && !nb_graph_find(g, name)) nb_node_set_name(g, grad, name);
}

nb_status nb_grad(nb_graph *g, nb_node *loss, nb_node *const *wrt, int n_wrt, nb_node **grads)
{
    if (!g) return NB_ERR_ARG;
    if (!loss) return nb__missing(g, "the loss node to differentiate");
    for (int k = 0; k < n_wrt; k++)
        if (!wrt[k]) return nb__missing(g, "a node to differentiate with respect to");
    nb__begin(g);
    if (n_wrt > 0 && !grads) return nb__fail(g, NB_ERR_ARG, "no array given for the gradients");
    if (loss->dtype == NB_I32)
        return nb__fail(g, NB_ERR_DTYPE, "cannot differentiate i32 node '%s'", loss->name);
    for (int k = 0; k < n_wrt; k++) {
        if (wrt[k]->kind == NB_NODE_CONST)  /* as torch refuses a tensor without requires_grad */
            return nb__fail(g, NB_ERR_ARG, "cannot differentiate with respect to constant '%s'",
                            wrt[k]->name);
        if (wrt[k]->dtype == NB_I32)
            return nb__fail(g, NB_ERR_DTYPE, "cannot differentiate with respect to i32 node '%s'",
                            wrt[k]->name);
    }
    size_t n = g->n_nodes;
    bool *from_wrt = nb_calloc(n, sizeof *from_wrt), *to_loss = nb_calloc(n, sizeof *to_loss);
    nb_node **acc = nb_calloc(n, sizeof *acc);
    nb_status st = NB_ERR_NOMEM;
    if (from_wrt && to_loss && acc) {
        mark_path(g, loss, wrt, n_wrt, from_wrt, to_loss);
        for (size_t i = 0; i < n; i++) from_wrt[i] = from_wrt[i] && to_loss[i];
        bool was = g->building_grad;
        g->building_grad = true;
        st = backprop(g, loss, from_wrt, acc);
        for (int k = 0; k < n_wrt && !st; k++) {
            nb_node *x = wrt[k];
            grads[k] = acc[x->id] ? acc[x->id]
                                  : nb_apply(g, &nb_op_fill_like, NULL, &x, 1, NULL, 0);
            if (!grads[k]) st = g->status;
            else name_grad(g, grads[k], x);
        }
        g->building_grad = was;
    } else {
        nb__fail(g, st, "out of memory");
    }
    nb_free(from_wrt);
    nb_free(to_loss);
    nb_free(acc);
    return st;
}

/* nabla — diagrams of graphs with Graphviz (libcgraph builds the graph,
 * libgvc lays it out with dot and renders it).
 *
 * Each node shows its name, op and shape. Inputs, params, outputs and the loss
 * are drawn apart by shape and colour; nodes of a layer (nb_node_group) sit in
 * a cluster labelled with the layer's name; gradient nodes (nb_node_is_grad)
 * are drawn dashed in another colour when asked for. */
#ifndef NABLA_RENDER_H
#define NABLA_RENDER_H

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_render_opts {
    bool show_grad;                 /* draw the nodes built by nb_grad too */
    const nb_bind *binds;           /* free dimensions shown by value */
    int n_binds;
    nb_node *const *outputs;        /* highlighted as the model's outputs */
    int n_outputs;
    const nb_node *loss;            /* highlighted as the loss (may be NULL) */
    const char *title;              /* caption (model name), may be NULL */
    size_t max_nodes;               /* 0: NB_RENDER_MAX_NODES (below) */
} nb_render_opts;

/* Graphviz's dot lays out a few thousand nodes in seconds, but crashes out
 * of memory on tens of thousands, and slows down sharply when edges pass
 * through many ranks of a wide layout (a node read by a hundred nodes of a
 * chain: each such edge becomes a chain of virtual nodes, one per rank it
 * crosses, and every rank gets wide). So nb_render refuses (NB_ERR_ARG, with
 * the sizes and what to do) a graph with more than max_nodes nodes to draw,
 * or whose layout work — its virtual nodes times its widest rank, ranks by
 * longest path — passes max_nodes * NB_RENDER_WORK_PER_NODE. Measured with
 * Graphviz 2.43: a 5 000-node chain lays out in 1.2 s; deep_convnet with its
 * gradient (work 134 000) in 1.1 s; a node read by 70 nodes of an add chain
 * (work 164 000) 2.2 s, by 85 (296 000) 7 s, by 100 (485 000) 16 s. */
#define NB_RENDER_MAX_NODES 5000
#define NB_RENDER_WORK_PER_NODE 40

/* Draws g into the file at path. format: "dot" (the graph before layout, for
 * editing), "svg", "png", "pdf", or NULL to take it from path's extension.
 * o may be NULL (forward nodes only, nothing highlighted). On failure the
 * message, including Graphviz's own, is on g (nb_graph_error). Not thread-safe:
 * Graphviz keeps global state. */
NB_API nb_status nb_render(nb_graph *g, const char *path, const char *format, const nb_render_opts *o);

#ifdef __cplusplus
}
#endif
#endif

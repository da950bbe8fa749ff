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
} nb_render_opts;

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

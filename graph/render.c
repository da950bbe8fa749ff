/* Diagrams: the graph is built with libcgraph (nodes, edges, one cluster per
 * layer, attributes by agsafeset), laid out by libgvc's dot engine and
 * rendered to memory with gvRenderData, then written atomically. Rendering to
 * memory matters: gvRenderFilename exits the process when it cannot open its
 * file, and a library must not exit. Graphviz's messages are captured with
 * agseterrf instead of being printed.
 *
 * One Graphviz context serves the whole process: Graphviz 2.43's pango plugin
 * remembers the last font name by pointer into the context's font table, so
 * freeing the context and making a new one for the next diagram makes it read
 * freed memory. The context is reachable from a static, never freed. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <graphviz/cgraph.h>
#include <graphviz/gvc.h>

#include "internal.h"
#include "io_util.h"

/* ---- colours: one role per node -------------------------------------- */

typedef enum { R_OP, R_INPUT, R_PARAM, R_OUTPUT, R_LOSS, R_GRAD, R_GRAD_RESULT, R_CONST } role;

typedef struct look {
    const char *shape, *style, *fill, *border, *font;
} look;

static const look looks[] = {
    [R_OP] = {"box", "rounded,filled", "#ffffff", "#495057", "#212529"},
    [R_INPUT] = {"parallelogram", "filled", "#d0ebff", "#1c7ed6", "#0b3d6e"},
    [R_PARAM] = {"cylinder", "filled", "#fff3bf", "#e67700", "#5c3c00"},
    [R_OUTPUT] = {"box", "rounded,filled,bold", "#d3f9d8", "#2f9e44", "#0b4d1c"},
    [R_LOSS] = {"box", "rounded,filled,bold", "#ffc9c9", "#e03131", "#6b0d0d"},
    [R_GRAD] = {"box", "rounded,filled,dashed", "#fff4e6", "#e8590c", "#7f3b08"},
    [R_GRAD_RESULT] = {"box", "rounded,filled,dashed,bold", "#ffd8a8", "#d9480f", "#7f3b08"},
    [R_CONST] = {"octagon", "filled", "#e6fcf5", "#0ca678", "#085041"},
};

static bool listed(const nb_node *n, nb_node *const *list, int k)
{
    for (int i = 0; i < k; i++)
        if (list[i] == n) return true;
    return false;
}

static role role_of(const nb_node *n, const nb_render_opts *o)
{
    if (n == o->loss) return R_LOSS;
    if (listed(n, o->outputs, o->n_outputs)) return R_OUTPUT;
    if (n->is_grad) return strncmp(n->name, "grad.", 5) ? R_GRAD : R_GRAD_RESULT;
    if (n->kind == NB_NODE_INPUT) return R_INPUT;
    if (n->kind == NB_NODE_PARAM) return R_PARAM;
    if (n->kind == NB_NODE_CONST) return R_CONST;
    return R_OP;
}

/* ---- labels ------------------------------------------------------------ */

/* Characters of a name, op or title shown; a longer one is cut with its
 * length (4096-byte labels hold 200 characters escaped six-fold). */
#define MAX_LABEL 200

/* Appends s to buf with HTML's special characters escaped, control
 * characters shown as \xNN (XML forbids most of them: an SVG holding one is
 * not XML), and past max characters cut, saying how long s was: nothing of
 * a name is dropped or replaced without a sign in the diagram. */
static void put_html(char *buf, size_t cap, const char *s, size_t max)
{
    size_t len = strlen(buf), n = strlen(s);
    for (size_t i = 0; i < n && i < max && len + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *e = c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '"' ? "&quot;" : NULL;
        if (e)
            len += (size_t)snprintf(buf + len, cap - len, "%s", e);
        else if (c < 0x20 || c == 0x7f)
            len += (size_t)snprintf(buf + len, cap - len, "\\x%02x", c);
        else
            buf[len++] = (char)c;
        buf[len] = 0;
    }
    if (n > max) snprintf(buf + len, cap - len, "... (%zu characters)", n);
}

static void put_raw(char *buf, size_t cap, const char *s)
{
    size_t len = strlen(buf);
    snprintf(buf + len, cap - len, "%s", s);
}

/* <b>name</b> over "op [shape]": the name is what a user looks for. */
static char *node_label(Agraph_t *G, const nb_graph *g, const nb_node *n, const nb_render_opts *o)
{
    char html[4096] = "", shape[256];
    nb_node_shape_str_bound(g, n, o->binds, o->n_binds, shape, sizeof shape);
    put_raw(html, sizeof html, "<b>");
    put_html(html, sizeof html, n->name, MAX_LABEL);
    put_raw(html, sizeof html, "</b><br/><font point-size=\"9\">");
    put_html(html, sizeof html, nb_node_op(n), MAX_LABEL);
    put_raw(html, sizeof html, " ");
    put_html(html, sizeof html, shape, MAX_LABEL);
    if (n->kind == NB_NODE_CONST && n->value.rank == 0) {  /* a scalar shows its value */
        char v[48];
        const void *d = n->value.data;
        if (n->dtype == NB_I32) snprintf(v, sizeof v, " = %d", *(const int32_t *)d);
        else snprintf(v, sizeof v, " = %.6g", n->dtype == NB_F32 ? *(const float *)d : *(const double *)d);
        put_html(html, sizeof html, v, MAX_LABEL);
    }
    put_raw(html, sizeof html, "</font>");
    return agstrdup_html(G, html);
}

static bool has_constants(const nb_graph *g)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->kind == NB_NODE_CONST) return true;
    return false;
}

/* The caption: the model's name and a key to the colours (constants only
 * when the graph has some). */
static char *caption(Agraph_t *G, const nb_graph *g, const nb_render_opts *o)
{
    char html[4096] = "";
    if (o->title && *o->title) {
        put_raw(html, sizeof html, "<b>");
        put_html(html, sizeof html, o->title, MAX_LABEL);
        put_raw(html, sizeof html, "</b><br/>");
    }
    static const role key[] = {R_INPUT, R_PARAM, R_CONST, R_OP, R_OUTPUT, R_LOSS, R_GRAD};
    static const char *const words[] = {"input", "param", "constant", "op", "output", "loss", "gradient"};
    for (size_t i = 0; i < sizeof key / sizeof key[0]; i++) {
        if (key[i] == R_GRAD && !o->show_grad) break;
        if (key[i] == R_CONST && !has_constants(g)) continue;
        char item[160];
        snprintf(item, sizeof item, "%s<font color=\"%s\">&#9632;</font> %s", i ? "   " : "",
                 looks[key[i]].border, words[i]);
        put_raw(html, sizeof html, item);
    }
    return agstrdup_html(G, html);
}

/* ---- what dot would lay out ------------------------------------------------
 * dot ranks the nodes, turns an edge that spans k ranks into a chain through
 * k - 1 virtual nodes, then reorders every rank to reduce crossings. Its time
 * grows with the nodes (a 40 000-node chain crashed Graphviz out of memory)
 * and, far faster, with long edges across wide ranks: a node read by 100
 * nodes of an add chain (200 nodes, but 4 851 virtual ones on ranks 100 wide)
 * took 16 s; --backward over a 2 000-way fan-out, 12.8 GB. Wide ranks alone
 * are cheap (300 parallel chains: 1 s). So before building anything: ranks by
 * longest path (the graph's order is topological), rank widths with virtual
 * nodes by a difference array, and as the layout's work the virtual nodes
 * times the widest rank. Measured (Graphviz 2.43): work 59 000 0.4 s,
 * 131 000-134 000 (transformer_block, deep_convnet with --backward) 1 s,
 * 164 000 2.2 s, 296 000 7 s, 485 000 16 s. */

typedef struct layout_size {
    size_t nodes;         /* drawn */
    double with_virtual;  /* plus one per rank an edge passes through */
    double work;          /* virtual nodes times the widest rank */
    size_t widest;        /* the widest rank's width */
    const nb_node *hub;   /* the node with the most drawn readers */
    size_t hub_readers;
} layout_size;

static bool drawn(const nb_node *n, const nb_render_opts *o) { return o->show_grad || !n->is_grad; }

/* ranks[i]: node i's rank (0 for undrawn nodes, which have no edges drawn). */
static void widths(const nb_graph *g, const nb_render_opts *o, const size_t *rank, double *diff,
                   size_t n_ranks, layout_size *ls)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        const nb_node *n = g->nodes[i];
        if (!drawn(n, o)) continue;
        diff[rank[i]] += 1;
        diff[rank[i] + 1] -= 1;
        for (int j = 0; j < n->n_in; j++) {
            if (!drawn(n->in[j], o)) continue;
            size_t from = rank[n->in[j]->id] + 1;  /* virtual nodes on ranks [from, rank[i]) */
            if (from < rank[i]) {
                diff[from] += 1;
                diff[rank[i]] -= 1;
                ls->with_virtual += (double)(rank[i] - from);
            }
        }
    }
    double w = 0;
    for (size_t r = 0; r < n_ranks; r++) {
        w += diff[r];
        if (w > (double)ls->widest) ls->widest = (size_t)w;
    }
    ls->work = (ls->with_virtual - (double)ls->nodes) * (double)ls->widest;
}

static nb_status measure(const nb_graph *g, const nb_render_opts *o, layout_size *ls)
{
    *ls = (layout_size){0};
    size_t n = g->n_nodes, n_ranks = 0;
    size_t *rank = nb_calloc(n + 1, sizeof *rank), *readers = nb_calloc(n + 1, sizeof *readers);
    double *diff = NULL;
    nb_status st = NB_ERR_NOMEM;
    if (!rank || !readers) goto done;
    for (size_t i = 0; i < n; i++) {
        const nb_node *nd = g->nodes[i];
        if (!drawn(nd, o)) continue;
        ls->nodes++;
        for (int j = 0; j < nd->n_in; j++) {
            if (!drawn(nd->in[j], o)) continue;
            size_t k = nd->in[j]->id;
            if (rank[k] + 1 > rank[i]) rank[i] = rank[k] + 1;
            if (++readers[k] > ls->hub_readers) ls->hub_readers = readers[k], ls->hub = nd->in[j];
        }
        if (rank[i] + 1 > n_ranks) n_ranks = rank[i] + 1;
    }
    ls->with_virtual = (double)ls->nodes;
    if (!(diff = nb_calloc(n_ranks + 1, sizeof *diff))) goto done;
    widths(g, o, rank, diff, n_ranks, ls);
    st = NB_OK;
done:
    nb_free(rank);
    nb_free(readers);
    nb_free(diff);
    return st;
}

/* Refuses a graph past the limits with what it would cost and how to go on. */
static nb_status check_size(const nb_graph *g, const nb_render_opts *o, char *err, size_t cap)
{
    layout_size ls;
    if (measure(g, o, &ls)) return nb_io_fail(err, cap, NB_ERR_NOMEM, "render", "out of memory");
    size_t max = o->max_nodes ? o->max_nodes : NB_RENDER_MAX_NODES;
    double work = (double)max * NB_RENDER_WORK_PER_NODE;
    if (ls.nodes <= max && ls.work <= work) return NB_OK;
    int len = ls.nodes > max
                  ? snprintf(err, cap, "render: the graph has %zu nodes to draw, more than the limit of %zu",
                             ls.nodes, max)
                  : snprintf(err, cap, "render: the graph has %zu nodes, but its edges pass through so "
                             "many ranks that dot would lay out %.0f nodes, %zu on the widest rank "
                             "(node '%s' is read by %zu nodes)", ls.nodes, ls.with_virtual, ls.widest,
                             ls.hub ? ls.hub->name : "?", ls.hub_readers);
    if (len >= 0 && (size_t)len < cap)
        snprintf(err + len, cap - (size_t)len, "; Graphviz takes minutes or runs out of memory on "
                 "layouts that large: draw a smaller part of the model%s, or raise the limit "
                 "(max_nodes; nabla render --max-nodes N)", o->show_grad ? ", or without the gradient" : "");
    return NB_ERR_ARG;
}

/* ---- building the cgraph graph ------------------------------------------ */

static void set(void *obj, const char *name, const char *value)
{
    agsafeset(obj, (char *)name, (char *)value, "");
}

static void defaults(Agraph_t *G)
{
    agattr(G, AGRAPH, "rankdir", "TB");
    agattr(G, AGRAPH, "newrank", "true");
    agattr(G, AGRAPH, "nodesep", "0.25");
    agattr(G, AGRAPH, "ranksep", "0.35");
    agattr(G, AGRAPH, "fontname", "Helvetica");
    agattr(G, AGRAPH, "fontsize", "12");
    agattr(G, AGNODE, "fontname", "Helvetica");
    agattr(G, AGNODE, "fontsize", "11");
    agattr(G, AGNODE, "margin", "0.12,0.04");
    agattr(G, AGNODE, "height", "0.3");
    agattr(G, AGEDGE, "arrowsize", "0.6");
    agattr(G, AGEDGE, "color", "#495057");
}

/* One cluster per layer name: "cluster_" is what makes dot draw a box. */
static Agraph_t *cluster(Agraph_t *G, const char *group)
{
    size_t cap = strlen(group) + 16;  /* the whole name: two long layer names stay apart */
    char *name = nb_malloc(cap), label[4096] = "";
    if (!name) return G;  /* out of memory: the node is drawn outside any box */
    snprintf(name, cap, "cluster_%s", group);
    Agraph_t *sub = agsubg(G, name, 0);
    bool made = !sub;
    if (made) sub = agsubg(G, name, 1);
    nb_free(name);
    if (!made || !sub) return sub ? sub : G;
    put_html(label, sizeof label, group, MAX_LABEL);
    set(sub, "label", agstrdup_html(G, label));
    set(sub, "labeljust", "l");
    set(sub, "labelloc", "t");  /* the graph's caption sits at the bottom; layers' names on top */
    set(sub, "fontsize", "11");
    set(sub, "fontcolor", "#495057");
    set(sub, "style", "rounded,filled");
    set(sub, "fillcolor", "#f1f3f5");
    set(sub, "color", "#adb5bd");
    return sub;
}

static void add_node(Agraph_t *G, const nb_graph *g, const nb_node *n, const nb_render_opts *o)
{
    Agraph_t *home = n->group ? cluster(G, n->group) : G;
    Agnode_t *an = agnode(home, n->name, 1);
    const look *l = &looks[role_of(n, o)];
    set(an, "label", node_label(G, g, n, o));
    set(an, "shape", l->shape);
    set(an, "style", l->style);
    set(an, "fillcolor", l->fill);
    set(an, "color", l->border);
    set(an, "fontcolor", l->font);
}

/* Edges into gradient nodes are dashed and orange, like the nodes. */
static void add_edges(Agraph_t *G, const nb_node *n)
{
    Agnode_t *head = agnode(G, n->name, 0);
    for (int i = 0; i < n->n_in && head; i++) {
        Agnode_t *tail = agnode(G, n->in[i]->name, 0);
        if (!tail) continue;
        Agedge_t *e = agedge(G, tail, head, NULL, 1);
        if (n->is_grad) {
            set(e, "style", "dashed");
            set(e, "color", n->in[i]->is_grad ? "#e8590c" : "#f4a36b");
        }
    }
}

static Agraph_t *build(const nb_graph *g, const nb_render_opts *o)
{
    Agraph_t *G = agopen("nabla", Agdirected, NULL);
    if (!G) return NULL;
    defaults(G);
    set(G, "label", caption(G, g, o));
    set(G, "labelloc", "b");
    for (size_t i = 0; i < g->n_nodes; i++)
        if (o->show_grad || !g->nodes[i]->is_grad) add_node(G, g, g->nodes[i], o);
    for (size_t i = 0; i < g->n_nodes; i++)
        if (o->show_grad || !g->nodes[i]->is_grad) add_edges(G, g->nodes[i]);
    return G;
}

/* ---- layout, rendering, errors ------------------------------------------- */

static char gv_msg[512];

static int keep_message(char *msg)
{
    size_t len = strlen(gv_msg);
    snprintf(gv_msg + len, sizeof gv_msg - len, "%s", msg);
    for (len = strlen(gv_msg); len && isspace((unsigned char)gv_msg[len - 1]);) gv_msg[--len] = 0;
    return 0;
}

/* "png" from "out/model.PNG"; the caller's format wins when given. */
static const char *pick_format(const char *path, const char *format, char *buf, size_t cap)
{
    if (format) return format;
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash) || strlen(dot + 1) >= cap) return NULL;
    size_t i = 0;
    for (const char *s = dot + 1; *s; s++) buf[i++] = (char)tolower((unsigned char)*s);
    buf[i] = 0;
    return buf;
}

/* "dot" output is the graph as built, before layout, for a user to read or
 * edit: agwrite into a memory stream. */
static nb_status write_dot(Agraph_t *G, const char *path, char *err, size_t cap)
{
    char *data = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&data, &len);
    if (!f) return nb_io_fail(err, cap, NB_ERR_NOMEM, path, "out of memory");
    int rc = agwrite(G, f);
    fclose(f);
    nb_status st = rc ? nb_io_fail(err, cap, NB_ERR_RUNTIME, path, "graphviz cannot write dot: %s", gv_msg)
                      : nb_io_write_atomic(path, &(nb_io_chunk){data, len}, 1, err, cap);
    free(data);
    return st;
}

/* The laid-out graph rendered to memory, then written atomically. */
static nb_status render(GVC_t *gvc, Agraph_t *G, const char *path, const char *fmt, char *err,
                        size_t cap)
{
    if (!strcmp(fmt, "dot") || !strcmp(fmt, "gv")) return write_dot(G, path, err, cap);
    if (gvLayout(gvc, G, "dot"))
        return nb_io_fail(err, cap, NB_ERR_RUNTIME, path, "graphviz layout failed: %s", gv_msg);
    char *data = NULL;
    unsigned int len = 0;
    int rc = gvRenderData(gvc, G, fmt, &data, &len);
    nb_status st = NB_OK;
    if (rc || !data)
        st = nb_io_fail(err, cap, NB_ERR_RUNTIME, path, "graphviz cannot render %s: %s", fmt,
                        gv_msg[0] ? gv_msg : "no such output plugin");
    else
        st = nb_io_write_atomic(path, &(nb_io_chunk){data, len}, 1, err, cap);
    if (data) gvFreeRenderData(data);
    gvFreeLayout(gvc, G);
    return st;
}

static nb_status draw(const nb_graph *g, const char *path, const char *format,
                     const nb_render_opts *o, char *err, size_t cap)
{
    static const char *const known[] = {"dot", "gv", "svg", "png", "pdf"};
    nb_render_opts none = {0};
    char buf[16];
    const char *fmt = pick_format(path, format, buf, sizeof buf);
    bool ok = false;
    for (size_t i = 0; fmt && i < sizeof known / sizeof known[0]; i++) ok |= !strcmp(fmt, known[i]);
    if (!ok)
        return nb_io_fail(err, cap, NB_ERR_ARG, path, "unknown diagram format '%s': use .dot, "
                          ".svg, .png or .pdf", fmt ? fmt : "");
    nb_status st = check_size(g, o ? o : &none, err, cap);
    if (st) return st;
    static GVC_t *gvc;
    gv_msg[0] = 0;
    agusererrf old = agseterrf(keep_message);
    if (!gvc) gvc = gvContext();
    Agraph_t *G = gvc ? build(g, o ? o : &none) : NULL;
    st = G ? render(gvc, G, path, fmt, err, cap)
                     : nb_io_fail(err, cap, NB_ERR_NOMEM, path, "graphviz: out of memory");
    if (G) agclose(G);
    agseterrf(old);
    return st;
}

nb_status nb_render(nb_graph *g, const char *path, const char *format, const nb_render_opts *o)
{
    char err[NB_ERR_CAP] = "";
    if (!g) return NB_ERR_ARG;
    nb__begin(g);
    if (!path) return nb__fail(g, NB_ERR_ARG, "render: no path given");
    nb_status st = draw(g, path, format, o, err, sizeof err);
    return st ? nb__fail(g, st, "%s", err) : NB_OK;
}

/* Tests of diagrams: nb_render directly and `nabla render` (SVG with every
 * node's name as text, forward and backward; dot with a cluster per layer;
 * PNG and PDF signatures; errors). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "toolutil.h"

TestSuite(render, .init = tmp_make, .fini = tmp_remove, .timeout = 120);

static const char *const LAYERED =
    "nabla: 1\n"
    "name: render-test\n"
    "inputs:\n"
    "  x: [N, 6]\n"
    "  t: {shape: [N], dtype: i32}\n"
    "nodes:\n"
    "  - {name: h1, layer: dense, in: [x], units: 5, activation: relu}\n"
    "  - {name: y, layer: dense, in: [h1], units: 3}\n"
    "  - {name: loss, op: softmax_cross_entropy, in: [y, t]}\n"
    "outputs: [y]\n"
    "loss: loss\n";

/* What the tool does for --backward: gradients for params, then float inputs. */
static void add_grads(nb_model *m)
{
    nb_node *grads[64];
    model_grads(m, false, true, grads, 64);
}

/* Every node of g (gradient nodes too when grads) is a text element of the SVG. */
static void expect_names(const char *svg, const nb_graph *g, bool grads)
{
    static svg_info t;
    svg_parse(svg, &t);
    for (size_t i = 0; i < nb_graph_num_nodes(g); i++) {
        const nb_node *n = nb_graph_node(g, i);
        if (nb_node_is_grad(n) && !grads) continue;
        cr_expect(svg_has_text(&t, nb_node_name(n)), "node %s is not a text of the diagram", nb_node_name(n));
    }
}

static char *render_svg(bool backward)
{
    write_text(tmp_path("m.yaml"), LAYERED);
    tool_result r = backward ? TOOL("render", tmp_path("m.yaml"), "-o", tmp_path("m.svg"), "--backward")
                             : TOOL("render", tmp_path("m.yaml"), "-o", tmp_path("m.svg"));
    cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
    tool_result_free(&r);
    char *svg = read_text(tmp_path("m.svg"), NULL);
    cr_assert(!strncmp(svg, "<?xml", 5), "not XML: %.40s", svg);
    cr_assert(strstr(svg, "<svg") && strstr(svg, "</svg>"), "no <svg> element");
    return svg;
}

Test(render, svg_forward)
{
    char *svg = render_svg(false);
    nb_model *m = load_model_file(tmp_path("m.yaml"));
    expect_names(svg, nb_model_graph(m), false);
    cr_expect(!strstr(svg, ">grad."), "gradient nodes drawn without --backward");
    nb_model_free(m);
    free(svg);
}

Test(render, svg_backward)
{
    char *svg = render_svg(true);
    nb_model *m = load_model_file(tmp_path("m.yaml"));
    add_grads(m);
    expect_names(svg, nb_model_graph(m), true);
    cr_expect(strstr(svg, ">grad.h1.W<") && strstr(svg, ">grad.x<"), "final gradients not drawn");
    cr_expect(strstr(svg, "stroke-dasharray"), "gradient nodes are not dashed");
    nb_model_free(m);
    free(svg);
}

Test(render, dot_has_layer_clusters)
{
    write_text(tmp_path("m.yaml"), LAYERED);
    tool_result r = TOOL("render", tmp_path("m.yaml"), "-o", tmp_path("m.dot"), "--dim", "N=32");
    cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
    char *dot = read_text(tmp_path("m.dot"), NULL);
    cr_expect(strstr(dot, "digraph"), "not a dot file");
    cr_expect(strstr(dot, "subgraph cluster_h1") && strstr(dot, "subgraph cluster_y"), "no layer clusters:\n%s", dot);
    cr_expect(strstr(dot, "[32, 5]"), "--dim N=32 not shown");
    free(dot);
    tool_result_free(&r);
}

Test(render, png_and_pdf)
{
    write_text(tmp_path("m.yaml"), LAYERED);
    tool_result r = TOOL("render", tmp_path("m.yaml"), "-o", tmp_path("m.png"), "--backward");
    cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
    tool_result_free(&r);
    r = TOOL("render", tmp_path("m.yaml"), "-o", tmp_path("m.pdf"));
    cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
    tool_result_free(&r);
    size_t n;
    char *png = read_text(tmp_path("m.png"), &n), *pdf = read_text(tmp_path("m.pdf"), NULL);
    cr_expect(n > 1000 && !memcmp(png, "\x89PNG\r\n\x1a\n", 8), "not a PNG");
    cr_expect(!strncmp(pdf, "%PDF", 4), "not a PDF");
    free(png);
    free(pdf);
}

Test(render, errors)
{
    write_text(tmp_path("m.yaml"), LAYERED);
    tool_result r = TOOL("render", tmp_path("m.yaml"), "-o", tmp_path("m.bmpx"));
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "format"), "%s", r.err);
    tool_result_free(&r);
    r = TOOL("render", tmp_path("m.yaml"), "-o", tmp_path("no/such/dir/m.svg"));
    cr_expect_eq(r.status, 2);
    tool_result_free(&r);
    write_text(tmp_path("n.yaml"), "nabla: 1\ninputs: {x: [3]}\nnodes:\n  - {name: y, op: exp, in: [x]}\n");
    r = TOOL("render", tmp_path("n.yaml"), "-o", tmp_path("n.svg"), "--backward");
    cr_expect_eq(r.status, 2, "--backward without a loss");
    tool_result_free(&r);
}

/* The library alone: groups become clusters, gradient nodes show only when asked. */
Test(render, library_groups_and_grads)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(4)});
    nb_node *w = nb_param(g, "lin.w", NB_F64, 1, (int64_t[]){4}, NB_INIT(NB_INIT_ONES));
    nb_node *h = nb_op(g, "mul", "lin", (nb_node *[]){x, w}, 2, NULL, 0);
    nb_node *loss = nb_sum(g, nb_exp(g, h), NULL, 0, false);
    cr_assert_not_null(loss, "%s", nb_graph_error(g));
    nb_node_set_group(g, w, "lin");
    nb_node_set_group(g, h, "lin");
    nb_node *grad;
    cr_assert_eq(nb_grad(g, loss, &w, 1, &grad), NB_OK, "%s", nb_graph_error(g));
    nb_render_opts o = {.loss = loss, .title = "a <small> & model"};
    cr_assert_eq(nb_render(g, tmp_path("g.dot"), NULL, &o), NB_OK, "%s", nb_graph_error(g));
    char *dot = read_text(tmp_path("g.dot"), NULL);
    cr_expect(strstr(dot, "subgraph cluster_lin"), "%s", dot);
    cr_expect(!strstr(dot, "grad.lin.w"), "gradient nodes drawn though show_grad is false");
    cr_expect(strstr(dot, "&lt;small&gt; &amp; model"), "title not escaped");
    free(dot);
    o.show_grad = true;
    cr_assert_eq(nb_render(g, tmp_path("g.svg"), NULL, &o), NB_OK, "%s", nb_graph_error(g));
    char *svg = read_text(tmp_path("g.svg"), NULL);
    cr_expect(strstr(svg, ">grad.lin.w<") && strstr(svg, ">lin.w<"), "names missing from the SVG");
    free(svg);
    cr_expect_eq(nb_render(g, tmp_path("g.txt"), NULL, &o), NB_ERR_ARG);
    cr_expect_eq(nb_render(g, tmp_path("g"), "svg", &o), NB_OK, "%s", nb_graph_error(g));
    nb_graph_free(g);
}

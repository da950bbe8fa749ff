/* Diagrams Graphviz cannot lay out in reasonable time or memory are refused
 * before Graphviz sees them (issue 11): too many nodes (a 40 000-node chain
 * crashed dot out of memory), or edges through so many ranks that the layout
 * gets wide (a node read by 100 nodes of an add chain took 16 s; --backward
 * over a 2 000-way fan-out took 12.8 GB). The message says how large, and
 * how to go on; the limit can be raised (max_nodes, --max-nodes). Nothing
 * here runs a large layout: refusals come before it, and the "dot" format
 * writes the graph without laying it out. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "toolutil.h"

TestSuite(render_limits, .init = tmp_make, .fini = tmp_remove, .timeout = 60);

/* x -> exp -> exp -> ... (n exps) */
static nb_graph *chain(int n)
{
    nb_graph *g = nb_graph_new();
    nb_node *y = nb_input(g, "x", NB_F32, 1, (nb_dim[]){NB_DIM(4)});
    for (int i = 0; i < n; i++) y = nb_exp(g, y);
    cr_assert_not_null(y, "%s", nb_graph_error(g));
    return g;
}

/* y_i = exp(x) for i < k (x a scalar, so the sum is a loss), summed by a chain of adds: x is read by k nodes,
 * whose edges into the chain pass through up to k ranks. */
static const char *fan_yaml(int k)
{
    static char text[1 << 18];
    int n = snprintf(text, sizeof text, "nabla: 1\ninputs: {x: []}\nnodes:\n");
    for (int i = 0; i < k; i++) n += snprintf(text + n, sizeof text - (size_t)n, "  - {name: y%d, op: exp, in: [x]}\n", i);
    n += snprintf(text + n, sizeof text - (size_t)n, "  - {name: s1, op: add, in: [y0, y1]}\n");
    for (int i = 2; i < k; i++)
        n += snprintf(text + n, sizeof text - (size_t)n, "  - {name: s%d, op: add, in: [s%d, y%d]}\n", i, i - 1, i);
    snprintf(text + n, sizeof text - (size_t)n, "outputs: [s%d]\nloss: s%d\n", k - 1, k - 1);
    return text;
}

Test(render_limits, too_many_nodes)
{
    nb_graph *g = chain(6000);
    nb_status st = nb_render(g, tmp_path("c.svg"), NULL, NULL);
    cr_expect_eq(st, NB_ERR_ARG);
    assert_has(nb_graph_error(g), "render: the graph has 6001 nodes to draw, more than the limit of 5000; "
                                  "Graphviz takes minutes or runs out of memory");
    assert_has(nb_graph_error(g), "raise the limit (max_nodes; nabla render --max-nodes N)");
    cr_expect_eq(tmp_count_files(), 0, "a refused diagram wrote a file");
    /* raised, the graph is drawn (as dot: no layout) */
    nb_render_opts o = {.max_nodes = 6001};
    cr_expect_eq(nb_render(g, tmp_path("c.dot"), NULL, &o), NB_OK, "%s", nb_graph_error(g));
    cr_expect_eq(tmp_count_files(), 1);
    nb_graph_free(g);
}

/* A chain of 5000 (plus its input: 5001 nodes) passes a limit of 5001, not 5000. */
Test(render_limits, the_limit_counts_drawn_nodes)
{
    nb_graph *g = chain(5000);
    nb_render_opts o = {.max_nodes = 5001};
    cr_expect_eq(nb_render(g, tmp_path("c.dot"), NULL, &o), NB_OK, "%s", nb_graph_error(g));
    o.max_nodes = 5000;
    cr_expect_eq(nb_render(g, tmp_path("c.dot"), NULL, &o), NB_ERR_ARG);
    nb_graph_free(g);
}

/* 200 nodes only, but x's 100 edges pass through up to 100 ranks. */
Test(render_limits, wide_layouts)
{
    write_text(tmp_path("fan.yaml"), fan_yaml(100));
    tool_result r = TOOL("render", tmp_path("fan.yaml"), "-o", tmp_path("fan.svg"));
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "nabla render: render: the graph has 200 nodes, but its edges pass through so many "
                      "ranks that dot would lay out 5051 nodes, 100 on the widest rank (node 'x' is read by "
                      "100 nodes); Graphviz takes minutes");
    tool_result_free(&r);
    cr_expect(access(tmp_path("fan.svg"), F_OK) != 0, "a refused diagram was written");
    /* 30 readers lay out in a fraction of a second: drawn */
    write_text(tmp_path("fan30.yaml"), fan_yaml(30));
    r = TOOL("render", tmp_path("fan30.yaml"), "-o", tmp_path("fan30.svg"));
    cr_expect_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    /* --max-nodes raises both limits */
    r = TOOL("render", tmp_path("fan.yaml"), "-o", tmp_path("fan.dot"), "--max-nodes", "20000");
    cr_expect_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
}

/* The gradient of a 2000-way fan-out: refused at once, and the message
 * suggests drawing without the gradient. */
/* 300 chains side by side: wide, but no edge passes through a rank, and dot
 * lays it out in a second: not refused (drawn as dot here, without layout). */
Test(render_limits, wide_ranks_alone_are_fine)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 1, (nb_dim[]){NB_DIM(4)});
    for (int i = 0; i < 300; i++) {
        nb_node *y = x;
        for (int j = 0; j < 5; j++) y = nb_exp(g, y);
        cr_assert_not_null(y, "%s", nb_graph_error(g));
    }
    cr_expect_eq(nb_render(g, tmp_path("w.dot"), NULL, NULL), NB_OK, "%s", nb_graph_error(g));
    nb_graph_free(g);
}

Test(render_limits, backward_fan_out)
{
    write_text(tmp_path("fan.yaml"), fan_yaml(2000));
    tool_result r = TOOL("render", tmp_path("fan.yaml"), "--backward", "-o", tmp_path("fan.svg"));
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "more than the limit of 5000");
    assert_has(r.err, "draw a smaller part of the model, or without the gradient, or raise the limit");
    tool_result_free(&r);
}

Test(render_limits, max_nodes_option)
{
    write_text(tmp_path("fan.yaml"), fan_yaml(3));
    tool_result r = TOOL("render", tmp_path("fan.yaml"), "-o", tmp_path("f.svg"), "--max-nodes", "0");
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "--max-nodes");
    tool_result_free(&r);
    r = TOOL("render", tmp_path("fan.yaml"), "-o", tmp_path("f.svg"), "--max-nodes", "5");
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "the graph has 6 nodes to draw, more than the limit of 5");
    tool_result_free(&r);
    r = TOOL("render", "--help");
    assert_has(r.out, "--max-nodes N");
    tool_result_free(&r);
}

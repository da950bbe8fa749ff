/* Issue 9's reductions, losses, embedding and layernorm in a model file: the
 * `embedding` and `layernorm` layer shorthands (params, defaults, errors),
 * and a model using them with min, logsumexp, argmax and the three new
 * losses, gradient-checked in f64. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "testutil.h"

static const char *const MODEL =
    "nabla: 1\n"
    "seed: 3\n"
    "inputs:\n"
    "  tok: {shape: [N, 5], dtype: i32}\n"
    "  t: {shape: [N], dtype: i32}\n"
    "  y01: [N]\n"
    "nodes:\n"
    "  - {name: emb, layer: embedding, in: [tok], vocab: 10, dim: 8}\n"
    "  - {name: ln, layer: layernorm, in: [emb], eps: 0.001}\n"
    "  - {name: h, layer: dense, in: [ln], units: 4, activation: tanh}\n"
    "  - {name: pool, op: logsumexp, in: [h], axis: 1}\n"
    "  - {name: lp, op: log_softmax, in: [pool]}\n"
    "  - {name: l1, op: nll_loss, in: [lp, t]}\n"
    "  - {name: m, op: min, in: [h], axis: [1, 2]}\n"
    "  - {name: l2, op: sigmoid_cross_entropy, in: [m, y01]}\n"
    "  - {name: p, op: sigmoid, in: [m]}\n"
    "  - {name: l3, op: binary_cross_entropy, in: [p, y01]}\n"
    "  - {name: pred, op: argmax, in: [pool], axis: -1}\n"
    "  - {name: l12, op: add, in: [l1, l2]}\n"
    "  - {name: loss, op: add, in: [l12, l3]}\n"
    "outputs: [pred]\n"
    "loss: loss\n";

Test(model9, layers_make_their_params)
{
    nb_model *m = load_ok(MODEL);
    nb_graph *g = nb_model_graph(m);
    check_node(g, "emb.W", "param", "[10, 8]");
    check_node(g, "emb", "embedding", "[N, 5, 8]");
    check_node(g, "ln.gamma", "param", "[8]");
    check_node(g, "ln.beta", "param", "[8]");
    check_node(g, "ln", "layernorm", "[N, 5, 8]");
    check_node(g, "pool", "logsumexp", "[N, 4]");
    check_node(g, "m", "min", "[N]");
    check_node(g, "pred", "argmax", "[N]");
    cr_expect_eq(nb_node_dtype(nb_graph_find(g, "pred")), NB_I32);
    cr_expect_eq(nb_node_attr(nb_graph_find(g, "ln"), "eps")->f, 0.001);
    cr_expect_eq(nb_node_attr(nb_graph_find(g, "ln"), "axis")->i[0], -1);
    cr_expect_str_eq(nb_node_group(nb_graph_find(g, "emb.W")), "emb");
    /* gamma ones, beta zeros; W from N(0, 1) by default */
    const float *gm = nb_param_value(nb_graph_find(g, "ln.gamma"))->data;
    const float *bt = nb_param_value(nb_graph_find(g, "ln.beta"))->data;
    for (int i = 0; i < 8; i++) cr_expect(gm[i] == 1 && bt[i] == 0);
    const float *w = nb_param_value(nb_graph_find(g, "emb.W"))->data;
    double s2 = 0;
    for (int i = 0; i < 80; i++) s2 += (double)w[i] * w[i];
    cr_expect(s2 / 80 > 0.6 && s2 / 80 < 1.5, "variance %g of N(0, 1) draws", s2 / 80);
    nb_model_free(m);
}

Test(model9, layer_attributes)
{
    nb_model *m = load_ok("nabla: 1\ninputs: {tok: {shape: [4], dtype: i32}, x: [2, 6]}\nnodes:\n"
                          "  - {name: e, layer: embedding, in: [tok], vocab: 3, dim: 2, init: {constant: 0.5}}\n"
                          "  - {name: n, layer: layernorm, in: [x]}\n");
    nb_graph *g = nb_model_graph(m);
    check_node(g, "e", "embedding", "[4, 2]");
    cr_expect_eq(((float *)nb_param_value(nb_graph_find(g, "e.W"))->data)[5], 0.5f);
    check_node(g, "n.gamma", "param", "[6]");
    cr_expect_eq(nb_node_attr(nb_graph_find(g, "n"), "eps")->f, 1e-5);
    nb_model_free(m);
    EXPECT_ERROR("nabla: 1\ninputs: {tok: {shape: [4], dtype: i32}}\n"
                 "nodes: [{name: e, layer: embedding, in: [tok], dim: 2}]\n",
                 "m.yaml:3:9: node 'e': embedding needs attribute 'vocab'");
    EXPECT_ERROR("nabla: 1\ninputs: {x: [N]}\nnodes: [{name: e, layer: layernorm, in: [x], epsilon: 2}]\n",
                 "m.yaml:3:46: unknown key 'epsilon'");
}

/* The whole model in f64 with free N = 3: gradients of every param and of the
 * float input against central differences */
Test(model9, model_gradcheck)
{
    nb_model *m = NULL;
    nb_diags d;
    nb_load_opts o = {.force_f64 = true};
    cr_assert_eq(nb_model_load_string(MODEL, strlen(MODEL), "m.yaml", &o, &m, &d), NB_OK);
    nb_graph *g = nb_model_graph(m);
    int32_t tok[15] = {1, 4, 4, 9, 0, 2, 2, 2, 7, 3, 5, 6, 1, 8, 4}, t[3] = {0, 3, 1};
    double y01[3] = {1, 0, 0.3};
    nb_node *wrt[8];
    int n = 0;
    const char *names[] = {"emb.W", "ln.gamma", "ln.beta", "h.W", "h.b", "y01"};
    for (int i = 0; i < 6; i++) cr_assert_not_null(wrt[n++] = nb_graph_find(g, names[i]));
    nb_feed feeds[3] = {{nb_graph_find(g, "tok"), tok}, {nb_graph_find(g, "t"), t},
                        {nb_graph_find(g, "y01"), y01}};
    nb_gc_result r[8];
    nb_gc_opts opts = NB_GC_DEFAULTS;
    cr_assert_eq(nb_gradcheck(g, nb_model_loss(m), wrt, n, (nb_bind[]){{"N", 3}}, 1, feeds, 3,
                              &opts, r), NB_OK, "%s", nb_graph_error(g));
    for (int i = 0; i < n; i++)
        cr_expect(r[i].pass, "%s: max abs err %g (%zu failures)", r[i].name, r[i].max_abs, r[i].failures);
    nb_diags_free(&d);
    nb_model_free(m);
}

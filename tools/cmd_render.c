/* nabla render MODEL -o OUT.(dot|svg|png|pdf) [--backward] [--dim N=...]:
 * a Graphviz diagram of the model, drawn by the library (nb_render). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const CMD = "render";

void nbt_usage_render(FILE *f)
{
    fprintf(f,
            "usage: nabla render MODEL -o OUT.{dot,svg,png,pdf} [--backward] [--dim SYM=SIZE]...\n"
            "                    [--max-nodes N]\n"
            "Draws MODEL with Graphviz: each node with its name, op and shape; inputs, params,\n"
            "outputs and the loss set apart; a layer's nodes boxed under the layer's name.\n\n"
            "  -o, --output FILE  the diagram; its extension picks the format\n"
            "  --backward         add the gradient nodes of the loss with respect to every\n"
            "                     trainable param and float input (dashed, orange); of the\n"
            "                     sum of the float outputs for an ONNX model (it has no loss)\n"
            "  --dim SYM=SIZE     show that free dimension by its size\n"
            "  --force            replace OUT when it exists (never a link, FIFO or device)\n"
            "  --max-nodes N      refuse graphs past N nodes, or whose layout is as costly as\n"
            "                     N nodes in a chain (edges through many ranks); default %d:\n"
            "                     Graphviz takes minutes or runs out of memory past that\n"
            "  -h, --help         this text\n\n"
            "example:\n"
            "  nabla render examples/models/mlp2.yaml --backward -o mlp2.svg\n",
            NB_RENDER_MAX_NODES);
}

/* Gradient nodes for every trainable param and every float input: what --grad would run. */
static int add_backward(nb_model *m, bool onnx)
{
    nb_graph *g = nb_model_graph(m);
    /* an ONNX model has no loss: the gradient of the sum of its outputs */
    if (onnx && !nb_model_loss(m) && nbt_sum_loss(CMD, m, NULL, "sum_of_outputs")) return NBT_ERROR;
    nb_node *loss = nb_model_loss(m);
    if (!loss) return nbt_fail(CMD, "--backward needs a model with a 'loss:'");
    size_t n = 0, cap = nb_model_num_params(m) + nb_model_num_inputs(m);
    nb_node **wrt = calloc(cap + 1, sizeof *wrt), **grads = calloc(cap + 1, sizeof *grads);
    if (!wrt || !grads) {
        free(wrt), free(grads);
        return nbt_fail(CMD, "out of memory");
    }
    for (size_t i = 0; i < nb_model_num_params(m); i++)
        if (nb_param_trainable(nb_model_param(m, i))) wrt[n++] = nb_model_param(m, i);
    for (size_t i = 0; i < nb_model_num_inputs(m); i++)
        if (nb_node_dtype(nb_model_input(m, i)) != NB_I32) wrt[n++] = nb_model_input(m, i);
    int rc = nb_grad(g, loss, wrt, (int)n, grads) ? nbt_fail(CMD, "%s", nb_graph_error(g)) : NBT_OK;
    free(wrt);
    free(grads);
    return rc;
}

static int draw(nb_model *m, const char *out, const nbt_dims *d, bool backward, size_t max_nodes)
{
    nb_node *outputs[256];
    int n_out = 0;
    for (size_t i = 0; i < nb_model_num_outputs(m) && n_out < 256; i++) outputs[n_out++] = nb_model_output(m, i);
    nb_render_opts o = {.show_grad = backward, .binds = d->b, .n_binds = d->n, .outputs = outputs,
                        .n_outputs = n_out, .loss = nb_model_loss(m), .title = nb_model_name(m),
                        .max_nodes = max_nodes};
    if (nb_render(nb_model_graph(m), out, NULL, &o))
        return nbt_fail(CMD, "%s", nb_graph_error(nb_model_graph(m)));
    return NBT_OK;
}

int nbt_cmd_render(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"backward", no_argument, NULL, 'b'},
                                         {"dim", required_argument, NULL, 'd'},
                                         {"force", no_argument, NULL, 'F'},
                                         {"max-nodes", required_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0, 0, 0, 0}};
    nbt_dims dims = {0};
    const char *out = NULL;
    bool backward = false, force = false;
    int64_t max_nodes = NB_RENDER_MAX_NODES;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        if (c == 'h') return nbt_usage_render(stdout), NBT_OK;
        if (c == '?' || c == ':') return nbt_bad_usage(CMD, c, argv[optind - 1]);
        if (c == 'o') out = optarg;
        if (c == 'b') backward = true;
        if (c == 'F') force = true;
        if (c == 'd' && nbt_parse_dim(CMD, optarg, &dims)) return NBT_ERROR;
        if (c == 'n' && nbt_parse_i64(CMD, "--max-nodes", optarg, 1, &max_nodes)) return NBT_ERROR;
    }
    if (argc - optind < 1) return nbt_fail(CMD, "needs one MODEL file (see 'nabla render --help')");
    if (nbt_extra_args(CMD, argc, argv, optind, 1)) return NBT_ERROR;
    if (!out) return nbt_fail(CMD, "needs -o OUT.{dot,svg,png,pdf}");
    if (nbt_check_output(CMD, out, force, false)) return NBT_ERROR;
    nb_model *m = NULL;
    if (nbt_load(CMD, argv[optind], false, &m)) return NBT_ERROR;
    int rc = nbt_check_dim_names(CMD, nb_model_graph(m), &dims);
    if (!rc && backward) rc = add_backward(m, nbt_is_onnx(argv[optind]));
    if (!rc) rc = draw(m, out, &dims, backward, (size_t)max_nodes);
    nb_model_free(m);
    return rc;
}

/* nabla convert MODEL -o OUT.{yaml,yml,onnx} [--weights W]: a model in the
 * other format, written by the library (nb_model_save_yaml, _onnx). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

static const char *const CMD = "convert";

void nbt_usage_convert(FILE *f)
{
    fprintf(f,
            "usage: nabla convert MODEL -o OUT.{yaml,onnx} [--weights W] [--force]\n"
            "Writes MODEL (a model file or an .onnx file) in the format of OUT's extension.\n"
            "To YAML: every node as {name, op, in, attributes}, inputs with their free\n"
            "dimensions, params with their shapes, outputs, loss and train section (add a\n"
            "loss and a train section to train an imported model). To ONNX (opset 17): what\n"
            "the outputs need.\n\n"
            "  -o, --output FILE  OUT.yaml (or .yml) or OUT.onnx; replaced atomically\n"
            "  --weights W        to YAML: write the param values to W (.safetensors, or .npz)\n"
            "                     instead of into the file; to ONNX: load MODEL's params from W\n"
            "                     first (they become the initializers)\n"
            "  --force            replace OUT, and a W that is no nabla weights file, when they\n"
            "                     exist (never a link, FIFO or device; a W nabla wrote is\n"
            "                     replaced without it)\n"
            "  -h, --help         this text\n\n"
            "examples:\n"
            "  nabla convert model.onnx -o model.yaml --weights model.safetensors\n"
            "  nabla convert examples/models/mnist_mlp.yaml --weights mlp.safetensors -o mlp.onnx\n");
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcasecmp(s + n - k, suffix);
}

static int convert(const char *model, const char *out, const char *weights, bool to_onnx)
{
    nb_model *m = NULL;
    if (nbt_load(CMD, model, false, &m)) return NBT_ERROR;
    int rc = NBT_OK;
    if (to_onnx && weights) rc = nbt_load_weights(CMD, nb_model_graph(m), weights);
    if (!rc && (to_onnx ? nb_model_save_onnx(m, out) : nb_model_save_yaml(m, out, weights)))
        rc = nbt_fail(CMD, "%s", nb_last_error());
    nb_model_free(m);
    return rc;
}

int nbt_cmd_convert(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"weights", required_argument, NULL, 'w'},
                                         {"force", no_argument, NULL, 'F'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0, 0, 0, 0}};
    const char *out = NULL, *weights = NULL;
    bool force = false;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        if (c == 'h') return nbt_usage_convert(stdout), NBT_OK;
        if (c == '?' || c == ':') return nbt_bad_usage(CMD, c, argv[optind - 1]);
        if (c == 'o') out = optarg;
        if (c == 'w') weights = optarg;
        if (c == 'F') force = true;
    }
    if (argc - optind < 1) return nbt_fail(CMD, "needs one MODEL file (see 'nabla convert --help')");
    if (nbt_extra_args(CMD, argc, argv, optind, 1)) return NBT_ERROR;
    if (!out) return nbt_fail(CMD, "needs -o OUT.yaml or -o OUT.onnx");
    bool to_onnx = ends_with(out, ".onnx");
    if (!to_onnx && !ends_with(out, ".yaml") && !ends_with(out, ".yml"))
        return nbt_fail(CMD, "%s: the output's extension must be .yaml, .yml or .onnx", out);
    /* before any work: the model file is replaced only with --force; the
     * weights file written with YAML (nabla-weights-1) also when nabla wrote it */
    if (nbt_check_output(CMD, out, force, false) ||
        (!to_onnx && weights && nbt_check_output(CMD, weights, force, true)))
        return NBT_ERROR;
    return convert(argv[optind], out, weights, to_onnx);
}

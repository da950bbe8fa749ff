/* nabla eval MODEL --weights W: loss, accuracy, accuracy per class and the
 * confusion matrix on the model's test set, in eval mode. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const CMD = "eval";

void nbt_usage_eval(FILE *f)
{
    fprintf(f,
            "usage: nabla eval MODEL --weights W.safetensors [--data DIR] [--batch B]\n"
            "Evaluates MODEL with the params of W (a weights file or a checkpoint of nabla\n"
            "train) on the test set of its `train:` section: loss, accuracy, accuracy per\n"
            "class and the confusion matrix (rows: label, columns: prediction).\n\n"
            "  --weights W    the params (optimizer state in a checkpoint is skipped)\n"
            "  --data DIR     where data files are, after the model's own folder\n"
            "  --batch B      samples per run (the model's train batch by default)\n"
            "  -h, --help     this text\n\n"
            "example:\n"
            "  nabla eval examples/models/mnist_mlp.yaml --weights mlp.safetensors\n");
}

static void print_confusion(const int64_t *cm, int64_t k)
{
    printf("\nper class:\n");
    for (int64_t i = 0; i < k; i++) {
        int64_t n = 0;
        for (int64_t j = 0; j < k; j++) n += cm[i * k + j];
        printf("  class %2lld: %6.2f%% of %lld\n", (long long)i,
               n ? 100.0 * (double)cm[i * k + i] / (double)n : 0.0, (long long)n);
    }
    printf("\nconfusion (rows: label, columns: prediction):\n      ");
    for (int64_t j = 0; j < k; j++) printf(" %5lld", (long long)j);
    printf("\n");
    for (int64_t i = 0; i < k; i++) {
        printf("  %3lld ", (long long)i);
        for (int64_t j = 0; j < k; j++) printf(" %5lld", (long long)cm[i * k + j]);
        printf("\n");
    }
}

static int evaluate(nb_model *m, const char *data, int64_t batch)
{
    const nb_train_cfg *tc = nb_model_train(m);
    nb_dataset *test = NULL;
    nb_trainer *t = NULL;
    nb_trainer_cfg c = {.batch = batch > 0 ? batch : tc->batch, .evaluate_only = true};
    if (nbt_load_data(CMD, m, data, true, true, &test)) return NBT_ERROR;
    int rc = nbt_make_trainer(CMD, m, &c, &t);
    int64_t k = t ? nb_trainer_classes(t) : 0;
    int64_t *cm = k ? calloc((size_t)(k * k), sizeof *cm) : NULL;
    nb_metrics e;
    if (!rc && k && !cm) rc = nbt_fail(CMD, "out of memory");
    if (!rc && nb_trainer_evaluate(t, test, &e, cm)) rc = nbt_fail(CMD, "%s", nb_trainer_error(t));
    if (!rc) {
        printf("test: %zu samples, loss %.4f", e.samples, e.loss);
        if (!isnan(e.accuracy)) printf(", accuracy %.2f%%", 100 * e.accuracy);
        printf("\n");
        if (cm) print_confusion(cm, k);
    }
    free(cm);
    nb_trainer_free(t);
    nb_dataset_free(test);
    return rc;
}

int nbt_cmd_eval(int argc, char **argv)
{
    static const struct option longs[] = {{"weights", required_argument, NULL, 'w'},
                                           {"data", required_argument, NULL, 'd'},
                                           {"batch", required_argument, NULL, 'b'},
                                           {"help", no_argument, NULL, 'h'},
                                           {0, 0, 0, 0}};
    const char *weights = NULL, *data = NULL;
    int64_t batch = -1;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longs, NULL)) != -1) {
        if (c == 'h') return nbt_usage_eval(stdout), NBT_OK;
        if (c == '?' || c == ':') return nbt_bad_usage(CMD, c, argv[optind - 1]);
        if (c == 'w') weights = optarg;
        if (c == 'd') data = optarg;
        if (c == 'b' && nbt_parse_i64(CMD, "--batch", optarg, 1, &batch)) return NBT_ERROR;
    }
    if (argc - optind < 1) return nbt_fail(CMD, "needs one MODEL file (see 'nabla eval --help')");
    if (nbt_extra_args(CMD, argc, argv, optind, 1)) return NBT_ERROR;
    if (!weights) return nbt_fail(CMD, "needs --weights W.safetensors");
    nb_model *m = NULL;
    if (nbt_load(CMD, argv[optind], false, &m)) return NBT_ERROR;
    int rc = nbt_load_weights(CMD, nb_model_graph(m), weights);
    if (!rc) rc = evaluate(m, data, batch);
    nb_model_free(m);
    return rc;
}

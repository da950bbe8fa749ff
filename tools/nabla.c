/* nabla — the command-line tool: dispatch to the subcommands.
 * Exit status: 0 success, 1 only when gradcheck finds a mismatch, 2 for any
 * invalid model, file, flag or run-time error (message on stderr). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* From OpenBLAS (cblas.h of other BLAS builds does not declare them). */
char *openblas_get_config(void);
char *openblas_get_corename(void);

typedef struct command {
    const char *name, *summary;
    int (*run)(int argc, char **argv);
    void (*usage)(FILE *f);
} command;

static const command commands[] = {
    {"check", "validate a model, print node shapes, parameters and FLOPs", nbt_cmd_check,
     nbt_usage_check},
    {"render", "draw a model (and its gradient nodes) with Graphviz", nbt_cmd_render,
     nbt_usage_render},
    {"gradcheck", "compare gradients with central differences in f64", nbt_cmd_gradcheck,
     nbt_usage_gradcheck},
    {"run", "one forward (and backward) pass on .npy inputs", nbt_cmd_run, nbt_usage_run},
    {"ops", "list the ops a model may use, with their inputs and attributes", nbt_cmd_ops,
     nbt_usage_ops},
    {"train", "train a model as its train section says (flags override it)", nbt_cmd_train,
     nbt_usage_train},
    {"eval", "loss, accuracy and confusion matrix on the test set", nbt_cmd_eval, nbt_usage_eval},
    {"plot", "draw training logs (loss, accuracy) or histograms of .npy values", nbt_cmd_plot,
     nbt_usage_plot},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: nabla COMMAND [options]\n"
               "       nabla help COMMAND   (or nabla COMMAND --help): its options and an example\n"
               "       nabla --version\n\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nexit status: 0 success, 1 gradcheck mismatch, 2 any error\n");
}

/* "nabla 0.1.0 (OpenBLAS 0.3.21, core Haswell)": the version of the library
 * the tool runs on and the BLAS it calls. */
static void version(void)
{
    const char *config = openblas_get_config(), *core = openblas_get_corename();
    int blas = 0;  /* length of "OpenBLAS X.Y.Z" at the start of the config string */
    if (config && !strncmp(config, "OpenBLAS ", 9)) blas = 9 + (int)strcspn(config + 9, " ");
    printf("nabla %s (%.*s%score %s)\n", nb_version(), blas, blas ? config : "", blas ? ", " : "",
           core ? core : "unknown");
}

static const command *find(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(name, commands[i].name)) return &commands[i];
    return NULL;
}

/* "WHO: unknown command 'x' (did you mean 'y'?)" on stderr; WHO is "nabla"
 * or "nabla help". */
static int unknown(const char *who, const char *name, const char *tail)
{
    const char *names[N_COMMANDS];
    for (size_t i = 0; i < N_COMMANDS; i++) names[i] = commands[i].name;
    char hint[160];
    fprintf(stderr, "%s: unknown command '%s'%s%s\n", who, name,
            nb_hint(hint, sizeof hint, nb_suggest(name, names, N_COMMANDS)), tail);
    return NBT_ERROR;
}

/* nabla help [COMMAND] */
static int help(int argc, char **argv)
{
    if (argc > 2) return nbt_fail("help", "unexpected argument '%s' (see 'nabla help')", argv[2]);
    if (argc < 2) return usage(stdout), NBT_OK;
    const command *c = find(argv[1]);
    if (!c) return unknown("nabla help", argv[1], "; 'nabla help' lists the commands");
    c->usage(stdout);
    return NBT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return NBT_ERROR;
    }
    const char *a = argv[1];
    if (!strcmp(a, "--help") || !strcmp(a, "-h") || !strcmp(a, "help")) return help(argc - 1, argv + 1);
    if (!strcmp(a, "--version")) {
        if (argc > 2) return nbt_fail("--version", "unexpected argument '%s'", argv[2]);
        version();
        return NBT_OK;
    }
    const command *c = find(a);
    if (c) return c->run(argc - 1, argv + 1);
    unknown("nabla", a, "");
    usage(stderr);
    return NBT_ERROR;
}

/* nabla — the command-line tool: dispatch to the subcommands.
 * Exit status: 0 success, 1 only when gradcheck finds a mismatch, 2 for any
 * invalid model, file, flag or run-time error (message on stderr). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdlib.h>
#include <string.h>

#include "blas_core.h"
#include "cli.h"

/* From OpenBLAS (cblas.h of other BLAS builds does not declare them). */
char *openblas_get_config(void);
char *openblas_get_corename(void);

typedef struct command {
    const char *name, *summary;
    int (*run)(int argc, char **argv);
    void (*usage)(FILE *f);
    bool computes;  /* runs BLAS: gets the BLAS core chosen first (blas_core.h) */
} command;

static const command commands[] = {
    {"check", "validate a model, print node shapes, parameters and FLOPs", nbt_cmd_check,
     nbt_usage_check, false},
    {"render", "draw a model (and its gradient nodes) with Graphviz", nbt_cmd_render,
     nbt_usage_render, false},
    {"gradcheck", "compare gradients with central differences in f64", nbt_cmd_gradcheck,
     nbt_usage_gradcheck, true},
    {"run", "one forward (and backward) pass on .npy inputs", nbt_cmd_run, nbt_usage_run,
     true},
    {"ops", "list the ops a model may use, with their inputs and attributes", nbt_cmd_ops,
     nbt_usage_ops, false},
    {"train", "train a model as its train section says (flags override it)", nbt_cmd_train,
     nbt_usage_train, true},
    {"eval", "loss, accuracy and confusion matrix on the test set", nbt_cmd_eval, nbt_usage_eval,
     true},
    {"bench", "time forward, backward and training steps; profile them node by node",
     nbt_cmd_bench, nbt_usage_bench, true},
    {"plot", "draw training logs (loss, accuracy) or histograms of .npy values", nbt_cmd_plot,
     nbt_usage_plot, false},
    {"convert", "write a model as YAML (with its weights) or as ONNX", nbt_cmd_convert,
     nbt_usage_convert, false},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: nabla [-v] [--blas-core NAME|auto|none] COMMAND [options]\n"
               "       nabla help COMMAND   (or nabla COMMAND --help): its options and an example\n"
               "       nabla --version\n\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nglobal options (before or after the command):\n"
               "  -v, --verbose      say which OpenBLAS core runs, and why\n"
               "  --max-memory SIZE  refuse any tensor or plan arena larger than SIZE (4G, 500M;\n"
               "                     default $NABLA_MAX_MEMORY or 80 %% of physical memory)\n"
               "  --blas-core C      OpenBLAS kernels of the commands that compute (run,\n"
               "                     gradcheck, train, eval, bench); default $NABLA_BLAS_CORE,\n"
               "                     else auto. auto: when OpenBLAS fell back to kernels older\n"
               "                     than the CPU and OPENBLAS_CORETYPE is unset, run nabla\n"
               "                     again with it set (SkylakeX, Haswell); none: leave\n"
               "                     OpenBLAS alone; a core name (Haswell, ...): that core\n"
               "\nexit status: 0 success, 1 gradcheck mismatch, 2 any error\n");
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

/* Options of the tool itself, taken out of the arguments wherever they stand
 * before a "--": the commands never see them. */
typedef struct globals {
    bool verbose;
    const char *blas_core;  /* NULL: $NABLA_BLAS_CORE or auto */
    const char *max_memory; /* NULL: $NABLA_MAX_MEMORY or 80 % of physical memory */
} globals;

/* "4G", "500M", "64K" or bytes, > 0. */
static int parse_size(const char *text, size_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    double unit = *end == 'K' || *end == 'k' ? 1e3 : *end == 'M' || *end == 'm' ? 1e6
                  : *end == 'G' || *end == 'g' ? 1e9 : *end == 'T' || *end == 't' ? 1e12 : 1;
    if (unit > 1) end++;
    if (end == text || *end || errno || !(v > 0) || v * unit >= 1.8e19)
        return nbt_fail("--max-memory", "needs a size such as 4G, 500M or 1048576; got '%s'", text);
    *out = (size_t)(v * unit);
    return NBT_OK;
}

/* --max-memory, else $NABLA_MAX_MEMORY, else the library's default. */
static int apply_max_memory(const globals *gl)
{
    const char *text = gl->max_memory ? gl->max_memory : getenv("NABLA_MAX_MEMORY");
    size_t bytes = 0;
    if (!text || !*text) return NBT_OK;
    if (parse_size(text, &bytes)) return NBT_ERROR;
    nb_set_memory_limit(bytes);
    return NBT_OK;
}

/* Is argv[*i] a global option? Consumes it (and its value). */
static int take_global(int argc, char **argv, int *i, globals *gl, bool *taken)
{
    const char *a = argv[*i];
    *taken = true;
    if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) gl->verbose = true;
    else if (!strncmp(a, "--blas-core=", 12)) gl->blas_core = a + 12;
    else if (!strncmp(a, "--max-memory=", 13)) gl->max_memory = a + 13;
    else if (!strcmp(a, "--max-memory")) {
        if (*i + 1 >= argc) return nbt_fail("--max-memory", "needs a size such as 4G");
        gl->max_memory = argv[++*i];
    }
    else if (!strcmp(a, "--blas-core")) {
        if (*i + 1 >= argc) return nbt_fail("--blas-core", "needs a value: auto, none or a core name");
        gl->blas_core = argv[++*i];
    } else *taken = false;
    return NBT_OK;
}

/* args gets argv without the global options (args[0] = argv[0]); *n its count. */
static int split_globals(int argc, char **argv, char **args, int *n, globals *gl)
{
    bool rest = false, taken;
    *n = 0;
    args[(*n)++] = argv[0];
    for (int i = 1; i < argc; i++) {
        rest |= !strcmp(argv[i], "--");
        if (!rest && take_global(argc, argv, &i, gl, &taken)) return NBT_ERROR;
        if (rest || !taken) args[(*n)++] = argv[i];
    }
    args[*n] = NULL;
    if (gl->blas_core && !*gl->blas_core)
        return nbt_fail("--blas-core", "needs a value: auto, none or a core name");
    return NBT_OK;
}

static int dispatch(int argc, char **argv, char **orig, const globals *gl)
{
    if (argc < 2) {
        usage(stderr);
        return NBT_ERROR;
    }
    const char *a = argv[1];
    if (!strcmp(a, "--help") || !strcmp(a, "-h") || !strcmp(a, "help")) return help(argc - 1, argv + 1);
    if (!strcmp(a, "--version")) {
        if (argc > 2) return nbt_fail("--version", "unexpected argument '%s'", argv[2]);
        if (nbt_blas_core_apply(gl->blas_core, gl->verbose, orig)) return NBT_ERROR;
        version();
        return NBT_OK;
    }
    const command *c = find(a);
    if (!c) {
        unknown("nabla", a, "");
        usage(stderr);
        return NBT_ERROR;
    }
    if (c->computes && nbt_blas_core_apply(gl->blas_core, gl->verbose, orig)) return NBT_ERROR;
    return c->run(argc - 1, argv + 1);
}

int main(int argc, char **argv)
{
    char **args = malloc(((size_t)argc + 1) * sizeof *args);
    if (!args) return fputs("nabla: out of memory\n", stderr), NBT_ERROR;
    globals gl = {0};
    int n, rc = split_globals(argc, argv, args, &n, &gl);
    if (!rc) rc = apply_max_memory(&gl);
    if (!rc) rc = dispatch(n, args, argv, &gl);
    free(args);
    return rc;
}

/* nabla — the command-line tool: dispatch to the subcommands.
 * Exit status: 0 success, 1 only when gradcheck finds a mismatch, 2 for any
 * invalid model, file, flag or run-time error (message on stderr). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

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
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: nabla COMMAND [options]   (nabla COMMAND --help for its options)\n\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nexit status: 0 success, 1 gradcheck mismatch, 2 any error\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return NBT_ERROR;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return NBT_OK;
    }
    const char *names[N_COMMANDS];
    for (size_t i = 0; i < N_COMMANDS; i++) {
        names[i] = commands[i].name;
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    }
    char hint[160];
    fprintf(stderr, "nabla: unknown command '%s'%s\n", argv[1],
            nb_hint(hint, sizeof hint, nb_suggest(argv[1], names, N_COMMANDS)));
    usage(stderr);
    return NBT_ERROR;
}

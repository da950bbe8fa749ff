/* nabla ops [NAME] [--all]: the op registry as a user sees it — each op's
 * inputs, attributes with their defaults, and what it computes. */
#include <getopt.h>
#include <string.h>

#include "cli.h"

static const char *const CMD = "ops";

void nbt_usage_ops(FILE *f)
{
    fprintf(f,
            "usage: nabla ops [NAME] [--all]\n"
            "Lists the ops a model file may use, with their inputs and attributes; with NAME,\n"
            "that op only.\n\n"
            "  --all       also the ops that gradient rules use internally\n"
            "  -h, --help  this text\n\n"
            "example:\n"
            "  nabla ops conv2d\n");
}

static const char *type_name(nb_attr_type t)
{
    switch (t) {
    case NB_ATTR_INT: return "int";
    case NB_ATTR_FLOAT: return "float";
    case NB_ATTR_BOOL: return "bool";
    case NB_ATTR_INTS: return "int or list";
    case NB_ATTR_DIMS: return "shape";
    }
    return "?";
}

static void print_default(const nb_attr_def *a)
{
    if (a->required) {
        printf("required");
        return;
    }
    switch (a->type) {
    case NB_ATTR_INT: printf("default %lld", (long long)a->def.i[0]); break;
    case NB_ATTR_FLOAT: printf("default %g", a->def.f); break;
    case NB_ATTR_BOOL: printf("default %s", a->def.i[0] ? "true" : "false"); break;
    case NB_ATTR_INTS:  /* a default of n > 0 entries (conv2d's stride 1), else none */
        if (a->def.n == 1) printf("default %lld", (long long)a->def.i[0]);
        else printf("optional");
        break;
    case NB_ATTR_DIMS: printf("optional"); break;
    }
}

static void print_arity(const nb_op_def *op)
{
    if (op->max_in < 0) printf("%d to %d inputs", op->min_in, NB_MAX_INPUTS);
    else if (op->min_in == op->max_in) printf("%d input%s", op->min_in, op->min_in == 1 ? "" : "s");
    else printf("%d to %d inputs", op->min_in, op->max_in);
}

static void print_op(const nb_op_def *op)
{
    printf("%-22s ", op->name);
    print_arity(op);
    printf("%s%s\n", op->doc ? "; " : "", op->doc ? op->doc : "");
    for (int i = 0; i < op->n_attrs; i++) {
        printf("    %-12s %-12s ", op->attrs[i].name, type_name(op->attrs[i].type));
        print_default(&op->attrs[i]);
        printf("\n");
    }
    if (!op->backward) printf("    (no gradient rule)\n");
}

int nbt_cmd_ops(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"all", no_argument, NULL, 'a'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    bool all = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'a') all = true;
        else if (c == 'h') return nbt_usage_ops(stdout), NBT_OK;
        else return nbt_fail(CMD, "unknown option '%s' (see nabla ops --help)", argv[optind - 1]);
    }
    if (nbt_extra_args(CMD, argc, argv, optind, 1)) return NBT_ERROR;
    if (optind < argc) {
        const nb_op_def *op = nb_op_find(argv[optind]);
        if (!op) {
            char hint[160];
            return nbt_fail(CMD, "unknown op '%s'%s", argv[optind],
                            nb_hint(hint, sizeof hint, nb_op_suggest(argv[optind])));
        }
        print_op(op);
        return NBT_OK;
    }
    for (size_t i = 0; i < nb_op_count(); i++)
        if (all || !(nb_op_at(i)->flags & NB_OP_INTERNAL)) print_op(nb_op_at(i));
    return NBT_OK;
}

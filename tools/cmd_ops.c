/* nabla ops [NAME] [--all]: the op registry as a user sees it — each op's
 * inputs, attributes with their defaults, and what it computes — and the
 * layer shorthands beside them (nb_layer_describe): their attributes and the
 * params they make. */
#include <getopt.h>
#include <math.h>
#include <string.h>

#include "cli.h"

static const char *const CMD = "ops";

void nbt_usage_ops(FILE *f)
{
    fprintf(f,
            "usage: nabla ops [NAME] [--all]\n"
            "Lists the ops a model file may use, with their inputs and attributes, then the\n"
            "layers (written `layer: NAME`) with their attributes and the params they make;\n"
            "with NAME, that op or layer only.\n\n"
            "  --all       also the ops that gradient rules use internally\n"
            "  -h, --help  this text\n\n"
            "example:\n"
            "  nabla ops conv2d\n"
            "  nabla ops dense\n");
}

static const char *type_name(nb_attr_type t)
{
    switch (t) {
    case NB_ATTR_INT: return "int";
    case NB_ATTR_FLOAT: return "float";
    case NB_ATTR_BOOL: return "bool";
    case NB_ATTR_INTS: return "int or list";
    case NB_ATTR_DIMS: return "shape";
    case NB_ATTR_STRING: return "word";
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
    case NB_ATTR_STRING:
        printf("default %s; one of ", a->def.s);
        for (const char *const *w = a->def.choices; w && *w; w++)
            printf("%s%s", w == a->def.choices ? "" : ", ", *w);
        break;
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
        const nb_attr_def *a = &op->attrs[i];
        printf("    %-12s %-12s ", a->name, type_name(a->type));
        if (a->type == NB_ATTR_FLOAT && !a->required && isnan(a->def.f)) printf("optional");
        else print_default(a);
        printf("\n");
    }
    if (!op->backward) printf("    (no gradient rule)\n");
}

static void print_layer(const nb_layer_info *l)
{
    printf("%-22s layer: %s; %s\n", l->name, l->in, l->doc);
    printf("    creates      %s\n", l->creates);
    for (int i = 0; i < l->n_attrs; i++)
        printf("    %-12s %-12s %s\n", l->attrs[i].name, l->attrs[i].type, l->attrs[i].def);
}

/* NAME as an op, else as a layer (an op and a layer may share a name:
 * conv2d, batchnorm; both are shown). */
static int describe(const char *name)
{
    const nb_op_def *op = nb_op_find(name);
    nb_layer_info l;
    bool layer = nb_layer_find(name, &l) == NB_OK;
    if (op) print_op(op);
    if (op && layer) printf("\n");
    if (layer) print_layer(&l);
    if (op || layer) return NBT_OK;
    char hint[160];
    return nbt_fail(CMD, "unknown op or layer '%s'%s", name, nb_hint(hint, sizeof hint, nb_op_suggest(name)));
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
    if (optind < argc) return describe(argv[optind]);
    printf("ops (op: NAME)\n\n");
    for (size_t i = 0; i < nb_op_count(); i++)
        if (all || !(nb_op_at(i)->flags & NB_OP_INTERNAL)) print_op(nb_op_at(i));
    printf("\nlayers (layer: NAME; NAME.x names are the layer's)\n\n");
    for (size_t i = 0; i < nb_layer_count(); i++) {
        nb_layer_info l;
        if (nb_layer_describe(i, &l) == NB_OK) print_layer(&l);
    }
    return NBT_OK;
}

/* nabla check MODEL [--dim N=64]: load and validate a model, then print one
 * row per node with its op, shape (symbolic unless bound), parameter count
 * (params, and a layer's total on the layer's own node) and FLOPs. Constants
 * show as op "constant", a scalar with its value, and are counted apart. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const CMD = "check";

void nbt_usage_check(FILE *f)
{
    fprintf(f,
            "usage: nabla check MODEL [--dim SYM=SIZE]...\n"
            "Loads and validates MODEL (a YAML model file) and prints every node with its op,\n"
            "output shape, parameter count and FLOPs, with totals.\n\n"
            "  --dim SYM=SIZE   bind a free dimension (shapes and FLOPs shown for that size);\n"
            "                   FLOPs of unbound dimensions are counted with size 1\n"
            "  -h, --help       this text\n\n"
            "example:\n"
            "  nabla check examples/models/mnist_mlp.yaml --dim N=64\n");
}

static size_t param_numel(const nb_node *p)
{
    size_t n = 1;
    for (int a = 0; a < nb_node_rank(p); a++) n *= (size_t)nb_node_dim(p, a);
    return n;
}

/* Param counts by layer, made in one pass so that the table stays linear in
 * the model's size: a param counts for its group and for every prefix of its
 * name that ends before a '.' (layers name their params GROUP.x). */
typedef struct group_count {
    char *key;
    double numel;
} group_count;

typedef struct layer_totals {
    group_count *v;
    size_t n;
} layer_totals;

static int by_key(const void *a, const void *b)
{
    return strcmp(((const group_count *)a)->key, ((const group_count *)b)->key);
}

static bool add_key(layer_totals *t, size_t *cap, const char *key, size_t len, double numel)
{
    if (t->n == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        group_count *v = realloc(t->v, c * sizeof *v);
        if (!v) return false;
        t->v = v, *cap = c;
    }
    char *k = malloc(len + 1);
    if (!k) return false;
    memcpy(k, key, len), k[len] = 0;
    t->v[t->n++] = (group_count){k, numel};
    return true;
}

/* Sorted, with the counts of equal keys summed into the first. */
static bool layer_totals_make(const nb_model *m, layer_totals *t)
{
    size_t cap = 0;
    *t = (layer_totals){0};
    for (size_t i = 0; i < nb_model_num_params(m); i++) {
        const nb_node *p = nb_model_param(m, i);
        const char *name = nb_node_name(p), *g = nb_node_group(p);
        double numel = (double)param_numel(p);
        bool group_is_prefix = false;
        for (const char *dot = strchr(name, '.'); dot; dot = strchr(dot + 1, '.')) {
            size_t len = (size_t)(dot - name);
            if (g && strlen(g) == len && !strncmp(g, name, len)) group_is_prefix = true;
            if (!add_key(t, &cap, name, len, numel)) return false;
        }
        if (g && !group_is_prefix && !add_key(t, &cap, g, strlen(g), numel)) return false;
    }
    if (t->n) qsort(t->v, t->n, sizeof *t->v, by_key);
    size_t out = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (out && !strcmp(t->v[out - 1].key, t->v[i].key)) {
            t->v[out - 1].numel += t->v[i].numel;
            free(t->v[i].key);
        } else {
            t->v[out++] = t->v[i];
        }
    }
    t->n = out;
    return true;
}

static void layer_totals_free(layer_totals *t)
{
    for (size_t i = 0; i < t->n; i++) free(t->v[i].key);
    free(t->v);
}

/* A param's own count; on a layer's named (last) node, the layer's total. */
static double params_of(const layer_totals *t, const nb_node *n)
{
    if (nb_node_kind_of(n) == NB_NODE_PARAM) return (double)param_numel(n);
    const char *group = nb_node_group(n);
    if (!group || strcmp(group, nb_node_name(n))) return -1;
    group_count key = {(char *)group, 0};
    const group_count *hit = t->n ? bsearch(&key, t->v, t->n, sizeof *t->v, by_key) : NULL;
    return hit ? hit->numel : 0;
}

/* "= 0.5" for a scalar constant, else nothing. */
static void const_value(const nb_node *n, char *buf, size_t cap)
{
    const nb_tensor *t = nb_constant_value(n);
    buf[0] = 0;
    if (!t || t->rank != 0) return;
    if (t->dtype == NB_I32) snprintf(buf, cap, "= %d", *(const int32_t *)t->data);
    else snprintf(buf, cap, "= %.6g", t->dtype == NB_F32 ? *(const float *)t->data : *(const double *)t->data);
}

/* Unbound free dimensions count as 1 for FLOPs; *unbound lists them. */
static void flops_binds(const nb_graph *g, const nbt_dims *d, nbt_dims *all, char *unbound, size_t cap)
{
    *all = *d;
    unbound[0] = 0;
    for (int k = 0; k < nb_graph_num_syms(g); k++) {
        const char *s = nb_graph_sym(g, k);
        if (nbt_dim_value(d, s)) continue;
        nbt_bind(CMD, all, s, 1, "default");
        size_t len = strlen(unbound);
        snprintf(unbound + len, cap - len, "%s%s=1", len ? ", " : "", s);
    }
}

typedef struct widths {
    int name, op, shape;
} widths;

static widths measure(const nb_graph *g, const nbt_dims *d)
{
    widths w = {4, 2, 5};
    char shape[256];
    for (size_t i = 0; i < nb_graph_num_nodes(g); i++) {
        const nb_node *n = nb_graph_node(g, i);
        int ln = (int)strlen(nb_node_name(n)), lo = (int)strlen(nb_node_op(n));
        int ls = nb_node_shape_str_bound(g, n, d->b, d->n, shape, sizeof shape);
        if (ln > w.name) w.name = ln;
        if (lo > w.op) w.op = lo;
        if (ls > w.shape) w.shape = ls;
    }
    return w;
}

static void rule(widths w)
{
    for (int i = 0; i < w.name + w.op + w.shape + 6 + 2 + 12 + 2 + 14; i++) putchar('-');
    putchar('\n');
}

static int print_table(const nb_model *m, const nbt_dims *d)
{
    layer_totals lt;
    if (!layer_totals_make(m, &lt)) {
        layer_totals_free(&lt);
        return nbt_fail(CMD, "out of memory");
    }
    const nb_graph *g = nb_model_graph(m);
    nbt_dims fb;
    char unbound[256], shape[256], params[32], flops[32];
    flops_binds(g, d, &fb, unbound, sizeof unbound);
    widths w = measure(g, d);
    double total_params = 0, total_flops = 0, state = 0, consts = 0, const_values = 0, unknown = 0;
    printf("%-*s  %-*s  %-*s  %12s  %14s\n", w.name, "node", w.op, "op", w.shape, "shape", "params",
           "FLOPs");
    rule(w);
    for (size_t i = 0; i < nb_graph_num_nodes(g); i++) {
        const nb_node *n = nb_graph_node(g, i);
        double p = params_of(&lt, n), f = nb_node_flops(g, n, fb.b, fb.n);
        nb_node_shape_str_bound(g, n, d->b, d->n, shape, sizeof shape);
        params[0] = flops[0] = 0;
        if (p >= 0) nbt_commas(p, params, sizeof params);
        if (nb_node_kind_of(n) == NB_NODE_PARAM) total_params += p;
        if (nb_node_kind_of(n) == NB_NODE_PARAM && !nb_param_trainable(n)) state += p;
        if (nb_node_kind_of(n) == NB_NODE_CONST) {
            consts++;
            const_values += (double)param_numel(n);
            const_value(n, params, sizeof params);  /* a scalar's value where counts go */
        }
        if (nb_node_kind_of(n) == NB_NODE_OP) {
            if (f >= 0) nbt_commas(f, flops, sizeof flops), total_flops += f;
            else snprintf(flops, sizeof flops, "-"), unknown++;
        }
        printf("%-*s  %-*s  %-*s  %12s  %14s\n", w.name, nb_node_name(n), w.op, nb_node_op(n),
               w.shape, shape, params, flops);
    }
    nbt_commas(total_params, params, sizeof params);
    nbt_commas(total_flops, flops, sizeof flops);
    if (unknown) snprintf(flops, sizeof flops, "-");
    rule(w);
    printf("%-*s  %-*s  %-*s  %12s  %14s\n", w.name, "total", w.op, "", w.shape, "", params, flops);
    if (unknown)
        printf("FLOPs of %.0f node%s unknown: %s size overflows with these dimensions\n", unknown,
               unknown == 1 ? " is" : "s are", unknown == 1 ? "its" : "their");
    if (state > 0) {
        nbt_commas(state, params, sizeof params);
        printf("of the params, %s are op state (running statistics), not trained\n", params);
    }
    if (consts > 0) {
        nbt_commas(const_values, params, sizeof params);
        printf("%.0f constant%s (%s value%s): not trained, not saved with the weights\n", consts,
               consts == 1 ? "" : "s", params, const_values == 1 ? "" : "s");
    }
    if (unbound[0]) printf("FLOPs counted with %s (unbound; give --dim to set)\n", unbound);
    layer_totals_free(&lt);
    return NBT_OK;
}

static void print_summary(const char *path, const nb_model *m)
{
    const nb_graph *g = nb_model_graph(m);
    printf("%s: model '%s', %s, %zu nodes", path, nb_model_name(m), nb_dtype_name(nb_model_dtype(m)),
           nb_graph_num_nodes(g));
    for (int k = 0; k < nb_graph_num_syms(g); k++)
        printf("%s%s", k ? ", " : "; free dimensions: ", nb_graph_sym(g, k));
    printf("\noutputs:");
    for (size_t i = 0; i < nb_model_num_outputs(m); i++)
        printf("%s%s", i ? ", " : " ", nb_node_name(nb_model_output(m, i)));
    printf("; loss: %s\n\n", nb_model_loss(m) ? nb_node_name(nb_model_loss(m)) : "(none)");
}

int nbt_cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dim", required_argument, NULL, 'd'}, {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    nbt_dims dims = {0};
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'h') return nbt_usage_check(stdout), NBT_OK;
        if (c == '?' || c == ':') return nbt_bad_usage(CMD, c, argv[optind - 1]);
        if (c == 'd' && nbt_parse_dim(CMD, optarg, &dims)) return NBT_ERROR;
    }
    if (argc - optind < 1) return nbt_fail(CMD, "needs one MODEL file (see 'nabla check --help')");
    if (nbt_extra_args(CMD, argc, argv, optind, 1)) return NBT_ERROR;
    nb_model *m = NULL;
    if (nbt_load(CMD, argv[optind], false, &m)) return NBT_ERROR;
    int rc = nbt_check_dim_names(CMD, nb_model_graph(m), &dims);
    if (!rc) {
        print_summary(argv[optind], m);
        rc = print_table(m, &dims);
    }
    nb_model_free(m);
    return rc;
}

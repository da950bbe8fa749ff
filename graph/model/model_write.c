/* A loaded model back to a model file (format version 1): what `nabla convert
 * model.onnx -o model.yaml` writes. Every op node is written as
 * {name, op, in, attrs} from the op registry's attribute descriptions (no
 * knowledge of particular ops): inputs with their free dimensions, params
 * with their shapes (values inline, or in a weights file), constants with
 * their values, outputs, loss and the train section. Layers were expanded
 * when the model was loaded, so a YAML model comes back as its primitive
 * nodes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "../../src/io_util.h"

/* A name that YAML's core schema would read as something else (a number,
 * true, null, .inf) is quoted; nabla's names need no escaping. */
static bool needs_quotes(const char *s)
{
    static const char *const words[] = {"true", "false", "null", "yes", "no", "on", "off", "y", "n"};
    if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_')) return true;
    for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
        size_t k = strlen(words[i]);
        if (strlen(s) != k) continue;
        bool same = true;
        for (size_t j = 0; j < k; j++) same &= (s[j] | 0x20) == words[i][j];
        if (same) return true;
    }
    return false;
}

static void put_name(FILE *f, const char *s)
{
    fprintf(f, needs_quotes(s) ? "\"%s\"" : "%s", s);
}

/* Text that reads back as the same value in dtype dt. */
static void put_float(FILE *f, double v, nb_dtype dt)
{
    if (isnan(v)) fputs(".nan", f);
    else if (isinf(v)) fputs(v > 0 ? ".inf" : "-.inf", f);
    else {
        /* the shortest of a few precisions that reads back as the same value */
        char buf[40];
        static const int f32[] = {6, 9}, f64[] = {15, 16, 17};
        const int *p = dt == NB_F32 ? f32 : f64;
        int n = dt == NB_F32 ? 2 : 3;
        for (int i = 0; i < n; i++) {
            snprintf(buf, sizeof buf, "%.*g", p[i], v);
            double back = strtod(buf, NULL);
            if (dt == NB_F32 ? (float)back == (float)v : back == v) break;
        }
        fputs(buf, f);
    }
}

static double elem(const nb_tensor *t, size_t i)
{
    switch (t->dtype) {
    case NB_F32: return ((const float *)t->data)[i];
    case NB_F64: return ((const double *)t->data)[i];
    default: return ((const int32_t *)t->data)[i];
    }
}

static void put_elem(FILE *f, const nb_tensor *t, size_t i)
{
    if (t->dtype == NB_I32) fprintf(f, "%d", ((const int32_t *)t->data)[i]);
    else put_float(f, elem(t, i), t->dtype);
}

/* [N, 784]: free dimensions by their symbol. */
static void put_shape(FILE *f, const nb_graph *g, const nb_node *n)
{
    fputc('[', f);
    for (int a = 0; a < nb_node_rank(n); a++) {
        const char *sym = nb_node_dim_sym(g, n, a);
        if (a) fputs(", ", f);
        if (sym) fputs(sym, f);
        else fprintf(f, "%lld", (long long)nb_node_dim(n, a));
    }
    fputc(']', f);
}

/* A compound free dimension (2*N) has no name a file can give. */
static nb_status check_shape(const nb_graph *g, const nb_node *n)
{
    for (int a = 0; a < nb_node_rank(n); a++)
        if (!nb_node_dim_sym(g, n, a) && nb_node_dim(n, a) < 0)
            return nb__thread_fail(NB_ERR_ARG, "'%s': axis %d is a product of free dimensions, "
                                   "which a model file cannot declare", nb_node_name(n), a);
    return NB_OK;
}

static void put_flat(FILE *f, const nb_tensor *t)
{
    size_t n = nb_tensor_numel(t);
    fputc('[', f);
    for (size_t i = 0; i < n; i++) {
        if (i) fputs(i % 8 ? ", " : ",\n      ", f);
        put_elem(f, t, i);
    }
    fputc(']', f);
}

/* A constant's value as nested lists of its shape (a bare number for rank 0). */
static void put_nested(FILE *f, const nb_tensor *t, int axis, size_t *at)
{
    if (axis == t->rank) {
        put_elem(f, t, (*at)++);
        return;
    }
    fputc('[', f);
    for (int64_t i = 0; i < t->shape[axis]; i++) {
        if (i) fputs(", ", f);
        put_nested(f, t, axis + 1, at);
    }
    fputc(']', f);
}

static void put_inputs(FILE *f, const nb_model *m)
{
    fputs("inputs:\n", f);
    for (size_t i = 0; i < nb_model_num_inputs(m); i++) {
        nb_node *n = nb_model_input(m, i);
        fputs("  ", f);
        put_name(f, nb_node_name(n));
        fputs(": {shape: ", f);
        put_shape(f, m->g, n);
        fprintf(f, ", dtype: %s}\n", nb_dtype_name(nb_node_dtype(n)));
    }
}

/* Trainable params (op state is made again by its op when the file is loaded). */
static void put_params(FILE *f, const nb_model *m, bool inline_values)
{
    bool any = false;
    for (size_t i = 0; i < nb_model_num_trainable(m); i++) {
        nb_node *n = nb_model_param(m, i);
        if (!any) fputs("params:\n", f);
        any = true;
        fputs("  ", f);
        put_name(f, nb_node_name(n));
        fputs(": {shape: ", f);
        put_shape(f, m->g, n);
        if (inline_values) {
            fputs(", init: {values: ", f);
            put_flat(f, nb_param_value(n));
            fputs("}}\n", f);
        } else {
            fputs(", init: zeros}\n", f);
        }
    }
}

static void put_constants(FILE *f, const nb_graph *g)
{
    bool any = false;
    for (size_t i = 0; i < nb_graph_num_nodes(g); i++) {
        nb_node *n = nb_graph_node(g, i);
        if (nb_node_kind_of(n) != NB_NODE_CONST) continue;
        if (!any) fputs("constants:\n", f);
        any = true;
        const nb_tensor *t = nb_constant_value(n);
        fputs("  ", f);
        put_name(f, nb_node_name(n));
        fputs(": {value: ", f);
        size_t at = 0;
        put_nested(f, t, 0, &at);
        fprintf(f, ", dtype: %s}\n", nb_dtype_name(t->dtype));
    }
}

static bool ints_eq(const nb_attr *a, const nb_attr *b)
{
    if (a->n != b->n) return false;
    for (int i = 0; i < a->n; i++)
        if (a->i[i] != b->i[i]) return false;
    return true;
}

static bool dims_eq(const nb_attr *a, const nb_attr *b)
{
    if (a->n != b->n) return false;
    for (int i = 0; i < a->n; i++) {
        const char *x = a->d[i].sym, *y = b->d[i].sym;
        if ((x || y) ? !(x && y && !strcmp(x, y)) : a->d[i].size != b->d[i].size) return false;
    }
    return true;
}

/* Optional attributes at their default (or absent) are left out. */
static bool is_default(const nb_attr_def *d, const nb_attr *a)
{
    if (d->required) return false;
    switch (d->type) {
    case NB_ATTR_INT:
    case NB_ATTR_BOOL: return a->i[0] == d->def.i[0];
    case NB_ATTR_FLOAT: return a->n == 0 || (d->def.n != 0 && a->f == d->def.f);
    case NB_ATTR_INTS: return a->n == 0 || ints_eq(a, &d->def);
    case NB_ATTR_DIMS: return a->n == 0 || dims_eq(a, &d->def);
    case NB_ATTR_STRING: return !a->s || (d->def.s && !strcmp(a->s, d->def.s));
    }
    return false;
}

static void put_attr(FILE *f, const nb_attr_def *d, const nb_attr *a)
{
    fprintf(f, ", %s: ", d->name);
    switch (d->type) {
    case NB_ATTR_INT: fprintf(f, "%lld", (long long)a->i[0]); break;
    case NB_ATTR_BOOL: fputs(a->i[0] ? "true" : "false", f); break;
    case NB_ATTR_FLOAT: put_float(f, a->f, NB_F64); break;
    case NB_ATTR_STRING: fprintf(f, "%s", a->s); break;
    case NB_ATTR_INTS:
    case NB_ATTR_DIMS:
        fputc('[', f);
        for (int i = 0; i < a->n; i++) {
            if (i) fputs(", ", f);
            if (d->type == NB_ATTR_DIMS && a->d[i].sym) fputs(a->d[i].sym, f);
            else fprintf(f, "%lld", (long long)(d->type == NB_ATTR_DIMS ? a->d[i].size : a->i[i]));
        }
        fputc(']', f);
        break;
    }
}

static nb_status put_node(FILE *f, const nb_node *n)
{
    const nb_op_def *op = nb_node_opdef(n);
    if (op->flags & NB_OP_INTERNAL)
        return nb__thread_fail(NB_ERR_ARG, "node '%s': op '%s' is internal to nabla and cannot be "
                               "written in a model file", nb_node_name(n), op->name);
    fputs("  - {name: ", f);
    put_name(f, nb_node_name(n));
    fprintf(f, ", op: %s, in: [", op->name);
    /* op state (batchnorm's running statistics) is appended by the op itself */
    int given = nb_node_num_inputs(n) - op->n_state;
    for (int i = 0; i < given; i++) {
        if (i) fputs(", ", f);
        put_name(f, nb_node_name(nb_node_input(n, i)));
    }
    fputc(']', f);
    for (int i = 0; i < op->n_attrs; i++) {
        const nb_attr *a = nb_node_attr(n, op->attrs[i].name);
        if (a && !is_default(&op->attrs[i], a)) put_attr(f, &op->attrs[i], a);
    }
    fputs("}\n", f);
    return NB_OK;
}

static void put_list(FILE *f, const char *key, nb_node *const *nodes, size_t n)
{
    fprintf(f, "%s: [", key);
    for (size_t i = 0; i < n; i++) {
        if (i) fputs(", ", f);
        put_name(f, nb_node_name(nodes[i]));
    }
    fputs("]\n", f);
}

/* "text" as a double-quoted YAML scalar, inline (file names are free text). */
static void put_q(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\x%02x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

/* {input: file, ...} of format npy's train (which 0) or test (1) mapping. */
static void put_npy_map(FILE *f, const nb_train_cfg *t, const char *key, int which)
{
    bool any = false;
    for (size_t i = 0; i < t->n_npy; i++) {
        const char *file = which ? t->npy_test[i] : t->npy_train[i];
        if (!file) continue;
        fprintf(f, any ? ", " : "    %s: {", key);
        any = true;
        put_name(f, t->npy_inputs[i]);
        fputs(": ", f);
        put_q(f, file);
    }
    if (any) fputs("}\n", f);
}

static void put_pair(FILE *f, const char *key, const char *images, const char *labels)
{
    if (!images && !labels) return;
    fprintf(f, "    %s: {", key);
    if (images) fputs("images: ", f), put_q(f, images);
    if (labels) fputs(images ? ", labels: " : "labels: ", f), put_q(f, labels);
    fputs("}\n", f);
}

static void put_data(FILE *f, const nb_train_cfg *t)
{
    bool npy = t->format && !strcmp(t->format, "npy");
    fprintf(f, "  data:\n    format: %s\n", npy ? "npy" : "idx");
    if (npy) {
        put_npy_map(f, t, "train", 0);
        put_npy_map(f, t, "test", 1);
    } else {
        put_pair(f, "train", t->train_images, t->train_labels);
        put_pair(f, "test", t->test_images, t->test_labels);
        if (t->images_input || t->labels_input) {
            fputs("    feed: {", f);
            if (t->images_input) put_name(f, t->images_input), fputs(": images", f);
            if (t->labels_input) fputs(t->images_input ? ", " : "", f), put_name(f, t->labels_input),
                fputs(": labels", f);
            fputs("}\n", f);
        }
    }
    fputs("    scale: ", f);
    put_float(f, t->scale, NB_F64);
    fputc('\n', f);
}

static void put_schedule(FILE *f, const nb_train_cfg *t)
{
    if (!t->schedule || !strcmp(t->schedule, "constant")) return;
    fprintf(f, "  schedule: {type: %s", t->schedule);
    if (!strcmp(t->schedule, "cosine")) {
        fputs(", min_lr: ", f);
        put_float(f, t->min_lr, NB_F64);
        if (t->schedule_epochs > 0) fprintf(f, ", epochs: %lld", (long long)t->schedule_epochs);
    } else {
        fprintf(f, ", every: %lld, gamma: ", (long long)t->every);
        put_float(f, t->gamma, NB_F64);
    }
    fputs("}\n", f);
}

/* The `train` section, every setting spelled out; file names as written in
 * the source file (relative ones are found from the new file's folder). */
static void put_train(FILE *f, const nb_train_cfg *t)
{
    if (!t->present) return;
    fputs("train:\n", f);
    put_data(f, t);
    fprintf(f, "  batch: %lld\n  epochs: %lld\n  shuffle: %s\n  seed: %llu\n", (long long)t->batch,
            (long long)t->epochs, t->shuffle ? "true" : "false", (unsigned long long)t->seed);
    fprintf(f, "  optimizer: {type: %s", t->optimizer ? t->optimizer : "adam");
    const char *keys[] = {"lr", "momentum", "beta1", "beta2", "weight_decay", "eps"};
    const double vals[] = {t->lr, t->momentum, t->beta1, t->beta2, t->weight_decay, t->eps};
    for (int i = 0; i < (t->eps_given ? 6 : 5); i++) {
        fprintf(f, ", %s: ", keys[i]);
        put_float(f, vals[i], NB_F64);
    }
    fputs("}\n", f);
    if (t->validation > 0) {
        fputs("  validation: ", f);
        put_float(f, t->validation, NB_F64);
        fputc('\n', f);
    }
    put_schedule(f, t);
}

static nb_status check_leaves(const nb_model *m)
{
    nb_status st = NB_OK;
    size_t ops = 0;
    for (size_t i = 0; i < nb_graph_num_nodes(m->g); i++)
        ops += nb_node_kind_of(nb_graph_node(m->g, i)) == NB_NODE_OP;
    if (!ops)   /* an ONNX model whose outputs were all computed at load time */
        return nb__thread_fail(NB_ERR_ARG, "the model has no op node (its outputs are inputs, params or "
                               "constants), and a model file needs at least one");
    for (size_t i = 0; i < nb_model_num_inputs(m) && !st; i++)
        st = check_shape(m->g, nb_model_input(m, i));
    return st;
}

static nb_status put_model(FILE *f, const nb_model *m, const char *weights)
{
    nb_status st = check_leaves(m);
    if (st) return st;
    fputs("# written by nabla convert", f);
    if (weights) fprintf(f, "; param values are in %s (nabla run/train --weights)", weights);
    fputs("\nnabla: 1\n", f);
    if (m->name && *m->name) fputs("name: ", f), put_q(f, m->name), fputc('\n', f);
    if (m->dtype == NB_F64) fputs("dtype: f64\n", f);
    fprintf(f, "seed: %llu\n", (unsigned long long)m->seed);
    put_inputs(f, m);
    put_params(f, m, !weights);
    put_constants(f, m->g);
    fputs("nodes:\n", f);
    for (size_t i = 0; i < nb_graph_num_nodes(m->g) && !st; i++) {
        nb_node *n = nb_graph_node(m->g, i);
        if (nb_node_kind_of(n) == NB_NODE_OP) st = put_node(f, n);
    }
    put_list(f, "outputs", m->outputs, m->n_outputs);
    if (m->loss) fputs("loss: ", f), put_name(f, nb_node_name(m->loss)), fputc('\n', f);
    put_train(f, &m->train);
    return st;
}

nb_status nb_model_save_yaml(const nb_model *m, const char *path, const char *weights)
{
    if (!m || !path) return nb__thread_fail(NB_ERR_ARG, "nb_model_save_yaml: NULL model or path");
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return nb__thread_fail(NB_ERR_NOMEM, "out of memory");
    nb_status st = put_model(f, m, weights);
    if (fclose(f) && !st) st = nb__thread_fail(NB_ERR_NOMEM, "out of memory");
    if (!st && weights) {
        /* the metadata of `nabla run --save-weights` (model-format.md, "Which
         * files nabla recognises as its own"), so that the tools may replace
         * the file without --force */
        const char *name = nb_model_name(m), *meta[6] = {"format", "nabla-weights-1", "model",
                                                         name ? name : "", "nabla", NB_VERSION_STRING};
        st = nb_weights_save(m->g, weights, meta, 3);
        if (st) nb__thread_fail(st, "%s", nb_graph_error(m->g));
    }
    if (!st) {
        char *err = nb__thread_err();
        st = nb_io_write_atomic(path, &(nb_io_chunk){text, len}, 1, err, NB_ERR_CAP);
    }
    free(text);
    return st;
}

#ifndef NABLA_HAVE_ONNX
nb_status nb_model_save_onnx(const nb_model *m, const char *path)
{
    (void)m;
    return nb__thread_fail(NB_ERR_FORMAT, "%s: unsupported: this nabla was built without ONNX (meson "
                           "option onnx)", path ? path : "");
}
#endif

/* The model loader: builds a graph from a model file (docs: model-format.md)
 * with the same calls a C program would make. Every error found in one pass is
 * reported as "FILE:LINE:COL: message"; a node that fails is skipped and so,
 * silently, is every node that uses it. A file with any error yields no model.
 *
 * Ops, their arity and their attributes come from the op registry: this file
 * knows no op by name. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

/* ---- outputs and loss ----------------------------------------------- */

static void do_outputs(nm_ctx *c, const yaml_node_t *v, nb_node *last)
{
    nb_model *m = c->m;
    size_t cap = 0;
    if (!v || ny_value(v).kind == NY_NULL) {
        if (last) nm_push(c, &m->outputs, &m->n_outputs, &cap, last);
        return;
    }
    if (ny_value(v).kind == NY_STR) {
        nb_node *x = nm_resolve(c, v, "in this model");
        if (x) nm_push(c, &m->outputs, &m->n_outputs, &cap, x);
        return;
    }
    if (!ny_seq(&c->y, v, "'outputs'")) return;
    if (!ny_seq_size(v)) ny_err(&c->y, v, "'outputs' must name at least one node");
    for (size_t i = 0; i < ny_seq_size(v); i++) {
        nb_node *x = nm_resolve(c, ny_seq_item(&c->y, v, i), "in this model");
        if (x) nm_push(c, &m->outputs, &m->n_outputs, &cap, x);
    }
}

static void do_loss(nm_ctx *c, const yaml_node_t *v)
{
    if (!v || ny_value(v).kind == NY_NULL) return;
    nb_node *x = nm_resolve(c, v, "in this model");
    if (!x) return;
    char s[160];
    if (nb_node_rank(x) != 0) {
        nb_node_shape_str(c->m->g, x, s, sizeof s);
        ny_err(&c->y, v, "loss '%s' must be a scalar; it is %s", nb_node_name(x), s);
    } else if (nb_node_dtype(x) == NB_I32) {
        ny_err(&c->y, v, "loss '%s' must be a float scalar; it is i32", nb_node_name(x));
    } else {
        c->m->loss = x;
    }
}

/* ---- the whole file ------------------------------------------------- */

static const char *const top_keys[] = {"nabla",  "name",  "dtype",   "seed", "inputs",
                                       "params", "nodes", "outputs", "loss", "train",
                                       "constants"};

/* Trainable params first, then op-owned state (batchnorm's running
 * statistics), each in definition order: the first nb_model_num_trainable()
 * are what an optimizer updates. */
static void trainable_first(nb_model *m)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n_params; i++) {
        nb_node *p = m->params[i];
        if (!nb_param_trainable(p)) continue;
        memmove(&m->params[k + 1], &m->params[k], (i - k) * sizeof *m->params);
        m->params[k++] = p;
    }
    m->n_trainable = k;
}

static void build(nm_ctx *c, const nb_load_opts *opts)
{
    nb_model *m = c->m;
    yaml_node_t *root = ny_root(&c->y);
    if (!root || ny_value(root).kind == NY_NULL) {
        ny_err(&c->y, root, "the file is empty; a model needs 'nabla: 1', inputs and nodes");
        return;
    }
    if (!ny_map_check(&c->y, root, "a model file", top_keys, 11)) return;
    char d[64];

    const yaml_node_t *v = ny_get(&c->y, root, "nabla", NULL);
    ny_val ver = ny_value(v);
    if (!v) {
        ny_err(&c->y, root, "missing key 'nabla' (the format version: nabla: 1)");
    } else if (ver.kind != NY_INT) {
        ny_err(&c->y, v, "'nabla' must be the integer 1; got %s", ny_describe(v, d, sizeof d));
    } else if (ver.i != 1) {
        ny_err(&c->y, v, "unsupported format version %lld; this nabla reads version 1",
               (long long)ver.i);
        return;  /* the rest is written in another format */
    }

    const char *s;
    if ((v = ny_get(&c->y, root, "name", NULL)) && ny_str(&c->y, v, "'name'", &s)) {
        char *n = nm_strdup(c, s);
        if (n) {
            nb_free(m->name);
            m->name = n;
        }
    }
    if ((v = ny_get(&c->y, root, "dtype", NULL))) nm_parse_dtype(c, v, &m->dtype, false);
    c->dt = opts && opts->force_f64 ? NB_F64 : m->dtype;
    int64_t seed;
    if ((v = ny_get(&c->y, root, "seed", NULL)) && ny_int(&c->y, v, "'seed'", &seed)) {
        if (seed < 0)
            ny_err(&c->y, v, "'seed' must be >= 0; got %lld", (long long)seed);
        else
            m->seed = (uint64_t)seed;
    }

    if (!(v = ny_get(&c->y, root, "inputs", NULL)))
        ny_err(&c->y, root, "missing key 'inputs'");
    else
        nm_each_entry(c, v, "inputs", nm_do_input);
    if ((v = ny_get(&c->y, root, "params", NULL))) nm_each_entry(c, v, "params", nm_do_param);
    if ((v = ny_get(&c->y, root, "constants", NULL)))
        nm_each_entry(c, v, "constants", nm_do_constant);

    nb_node *last = NULL;
    if (!(v = ny_get(&c->y, root, "nodes", NULL))) {
        ny_err(&c->y, root, "missing key 'nodes'");
    } else if (ny_seq(&c->y, v, "'nodes'")) {
        if (!ny_seq_size(v)) ny_err(&c->y, v, "'nodes' must list at least one node");
        for (size_t i = 0; i < ny_seq_size(v) && !c->y.oom; i++)
            last = nm_do_node(c, ny_seq_item(&c->y, v, i));
    }
    trainable_first(c->m);
    do_outputs(c, ny_get(&c->y, root, "outputs", NULL), last);
    do_loss(c, ny_get(&c->y, root, "loss", NULL));
    if ((v = ny_get(&c->y, root, "train", NULL))) nm_train_parse(c, v);
}

static char *dir_of(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    if (!slash) return nb__strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = nb_malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = 0;
    }
    return d;
}

static int msg_cmp(const void *a, const void *b)
{
    const ny_msg *x = a, *y = b;
    if (x->line != y->line) return x->line < y->line ? -1 : 1;
    if (x->col != y->col) return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Moves the messages, in file order without repeats, into diags. */
static void give_diags(ny_ctx *y, nb_diags *diags)
{
    qsort(y->msgs, y->n_msgs, sizeof *y->msgs, msg_cmp);
    size_t k = 0;
    for (size_t i = 0; i < y->n_msgs; i++) {
        bool seen = false;  /* e.g. a spec used twice through an alias */
        for (size_t j = k; j-- > 0 && !seen && y->msgs[j].line == y->msgs[i].line &&
                           y->msgs[j].col == y->msgs[i].col;)
            seen = !strcmp(y->msgs[j].text, y->msgs[i].text);
        if (seen) {
            nb_free(y->msgs[i].text);
            continue;
        }
        y->msgs[k++] = y->msgs[i];
    }
    y->n_msgs = k;
    if (diags && k && (diags->lines = nb_malloc(k * sizeof *diags->lines))) {
        for (size_t i = 0; i < k; i++) diags->lines[i] = y->msgs[i].text;
        diags->n = k;
        y->n_msgs = 0;  /* the texts now belong to diags */
    }
}

nb_status nb_model_load_string(const char *yaml, size_t len, const char *filename,
                               const nb_load_opts *opts, nb_model **out, nb_diags *diags)
{
    if (diags) *diags = (nb_diags){0, NULL};
    if (out) *out = NULL;
    if (!out || (!yaml && len)) return NB_ERR_ARG;
    nm_ctx c;
    memset(&c, 0, sizeof c);
    c.y.file = filename ? filename : "<string>";
    nb_model *m = c.m = nb_calloc(1, sizeof *m);
    if (!m) return NB_ERR_NOMEM;
    nm_train_defaults(&m->train);
    m->g = nb_graph_new();
    m->name = nb__strdup("");
    m->dir = dir_of(filename);
    if (!m->g || !m->name || !m->dir || !m->train.format || !m->train.optimizer) {
        c.y.oom = true;
    } else if (ny_parse(&c.y, yaml ? yaml : "", len)) {
        build(&c, opts);
    }
    nb_status st = c.y.oom ? NB_ERR_NOMEM : c.y.n_msgs ? NB_ERR_FORMAT : NB_OK;
    nm_free_names(&c);
    if (st) {
        nb_model_free(m);
        give_diags(&c.y, diags);
    } else {
        *out = m;
    }
    ny_free(&c.y);
    return st;
}

#ifndef NABLA_HAVE_ONNX
nb_status nb_model_load_onnx(const char *path, const nb_load_opts *opts, nb_model **out,
                             nb_diags *diags)
{
    (void)opts;
    if (diags) *diags = (nb_diags){0, NULL};
    if (out) *out = NULL;
    if (!path || !out) return NB_ERR_ARG;
    char *line = nb_malloc(strlen(path) + 96);
    char **lines = line ? nb_malloc(sizeof *lines) : NULL;
    if (diags && lines) {
        sprintf(line, "%s: unsupported: this nabla was built without ONNX (meson option onnx)", path);
        lines[0] = line;
        *diags = (nb_diags){1, lines};
    } else {
        nb_free(line);
        nb_free(lines);
    }
    return NB_ERR_FORMAT;
}
#endif

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

nb_status nb_model_load_file(const char *path, const nb_load_opts *opts, nb_model **out,
                             nb_diags *diags)
{
    if (diags) *diags = (nb_diags){0, NULL};
    if (out) *out = NULL;
    if (!path || !out) return NB_ERR_ARG;
    if (ends_with(path, ".onnx")) return nb_model_load_onnx(path, opts, out, diags);
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    nb_status st = f ? NB_OK : NB_ERR_IO;
    int err = errno;
    while (!st) {
        if (len == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            char *b = nb_realloc(buf, cap);
            if (!b) {
                st = NB_ERR_NOMEM;
                break;
            }
            buf = b;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0) {
            if (ferror(f)) st = NB_ERR_IO, err = errno;
            break;
        }
    }
    if (f) fclose(f);
    if (!st) st = nb_model_load_string(buf, len, path, opts, out, diags);
    else if (st == NB_ERR_IO && diags) {
        const char *why = strerror(err);
        int need = snprintf(NULL, 0, "%s: cannot read the file (%s)", path, why);
        char *line = need > 0 ? nb_malloc((size_t)need + 1) : NULL;
        char **lines = line ? nb_malloc(sizeof *lines) : NULL;
        if (lines) {
            snprintf(line, (size_t)need + 1, "%s: cannot read the file (%s)", path, why);
            lines[0] = line;
            diags->lines = lines;
            diags->n = 1;
        } else {
            nb_free(line);
        }
    }
    nb_free(buf);
    return st;
}


void nb_model_free(nb_model *m)
{
    if (!m) return;
    nb_graph_free(m->g);
    nb_free(m->name);
    nb_free(m->inputs);
    nb_free(m->params);
    nb_free(m->outputs);
    nm_train_free(&m->train);
    nb_free(m->dir);
    nb_free(m);
}

/* ---- accessors ------------------------------------------------------ */

nb_graph *nb_model_graph(const nb_model *m) { return m ? m->g : NULL; }
const char *nb_model_name(const nb_model *m) { return m && m->name ? m->name : ""; }
nb_dtype nb_model_dtype(const nb_model *m) { return m ? m->dtype : NB_F32; }
uint64_t nb_model_seed(const nb_model *m) { return m ? m->seed : 0; }
size_t nb_model_num_inputs(const nb_model *m) { return m ? m->n_inputs : 0; }
nb_node *nb_model_input(const nb_model *m, size_t i) { return m && i < m->n_inputs ? m->inputs[i] : NULL; }
size_t nb_model_num_params(const nb_model *m) { return m ? m->n_params : 0; }
size_t nb_model_num_trainable(const nb_model *m) { return m ? m->n_trainable : 0; }
nb_node *nb_model_param(const nb_model *m, size_t i) { return m && i < m->n_params ? m->params[i] : NULL; }
size_t nb_model_num_outputs(const nb_model *m) { return m ? m->n_outputs : 0; }
nb_node *nb_model_output(const nb_model *m, size_t i) { return m && i < m->n_outputs ? m->outputs[i] : NULL; }
nb_node *nb_model_loss(const nb_model *m) { return m ? m->loss : NULL; }
nb_status nb_model_set_loss(nb_model *m, nb_node *loss)
{
    if (!m || !loss) return NB_ERR_ARG;
    bool mine = false;
    for (size_t i = 0; i < nb_graph_num_nodes(m->g) && !mine; i++) mine = nb_graph_node(m->g, i) == loss;
    nb__begin(m->g);
    if (!mine || nb_node_rank(loss) != 0 || nb_node_dtype(loss) == NB_I32) {
        nb__fail(m->g, NB_ERR_ARG, "the loss must be a float scalar node of the model; '%s' is not",
                       nb_node_name(loss));
        return NB_ERR_ARG;
    }
    m->loss = loss;
    return NB_OK;
}
const nb_train_cfg *nb_model_train(const nb_model *m) { return m ? &m->train : NULL; }
const char *nb_model_dir(const nb_model *m) { return m && m->dir ? m->dir : "."; }


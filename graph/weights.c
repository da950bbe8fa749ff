/* A graph's params in and out of safetensors or .npz files (by the path's
 * extension), by param name: what `nabla run --weights/--save-weights` and
 * checkpoints use. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Params are saved, but not scratch such as the flat gradient buffer. */
static bool saved(const nb_node *n) { return n->kind == NB_NODE_PARAM && !n->transient; }

static nb_status save(const nb_graph *g, const char *path, const char *const *meta, size_t n_meta,
                      char *err, size_t cap)
{
    nb_tensor_set set = {0};
    nb_status st = NB_OK;
    for (size_t i = 0; i < n_meta && !st; i++) st = nb_tensor_set_meta(&set, meta[2 * i], meta[2 * i + 1]);
    for (size_t i = 0; i < g->n_nodes && !st; i++) {
        nb_node *n = g->nodes[i];
        if (saved(n)) st = nb_tensor_set_add(&set, n->name, &n->value);
    }
    if (!st) st = nb_tensors_write(path, &set);
    if (st) snprintf(err, cap, "%s", nb_last_error());
    nb_tensor_set_free(&set);
    return st;
}

/* "no tensor for param 'h1.W' (did you mean 'h1.w'?); the file holds 3
 * tensors: h1.w, h1.b, out.W", the list cut short where err is full. */
static void missing(const nb_tensor_set *set, const nb_node *p, const char *path, char *err, size_t cap)
{
    const char **names = nb_malloc((set->n + 1) * sizeof *names);
    char hint[160] = "";
    for (size_t i = 0; names && i < set->n; i++) names[i] = set->items[i].name;
    if (names) nb_hint(hint, sizeof hint, nb_suggest(p->name, names, set->n));
    nb_free(names);
    int len = snprintf(err, cap, "%s: no tensor for param '%s'%s; the file holds %zu tensor%s%s", path,
                       p->name, hint, set->n, set->n == 1 ? "" : "s", set->n ? ": " : "");
    for (size_t i = 0; i < set->n && len >= 0 && (size_t)len < cap; i++) {
        size_t left = cap - (size_t)len, need = strlen(set->items[i].name) + 2;
        if (need + 4 > left || (i + 1 < set->n && need + 8 > left)) {  /* room for ", ..." */
            snprintf(err + len, left, "...");
            return;
        }
        len += snprintf(err + len, left, "%s%s", i ? ", " : "", set->items[i].name);
    }
}

/* The file's dtype of t, a tensor of the set: what the file holds ("i64"),
 * not what reading made of it. nb_tensor_set_find returns &items[i].t. */
static const char *file_dtype(const nb_tensor *t)
{
    const nb_named_tensor *it = (const nb_named_tensor *)(const void *)((const char *)t - offsetof(nb_named_tensor, t));
    return it->stored ? it->stored : nb_dtype_name(t->dtype);
}

/* The file's tensor for param p, if it has p's shape and a float dtype. */
static nb_status match(const nb_tensor_set *set, const nb_node *p, const char *path, char *err,
                       size_t cap, const nb_tensor **out)
{
    const nb_tensor *t = *out = nb_tensor_set_find(set, p->name);
    if (!t) {
        missing(set, p, path, err, cap);
        return NB_ERR_FORMAT;
    }
    bool same = t->rank == p->value.rank && t->dtype != NB_I32;
    for (int a = 0; same && a < t->rank; a++) same = t->shape[a] == p->value.shape[a];
    if (same) return NB_OK;
    char want[128], got[128];
    nb_shape_format(NULL, &p->shape, want, sizeof want);
    size_t len = 0;
    got[len++] = '[';
    for (int a = 0; a < t->rank && len + 24 < sizeof got; a++)
        len += (size_t)snprintf(got + len, sizeof got - len, "%s%lld", a ? ", " : "", (long long)t->shape[a]);
    snprintf(got + len, sizeof got - len, "]");
    snprintf(err, cap, "%s: param '%s' is %s %s but the file's tensor is %s %s", path, p->name,
             nb_dtype_name(p->value.dtype), want, file_dtype(t), got);
    return NB_ERR_SHAPE;
}

/* "[1, 3]": the index of flat element i of t. */
static void index_of(size_t i, const nb_tensor *t, char *buf, size_t cap)
{
    int64_t idx[NB_MAX_DIMS];
    for (int a = t->rank - 1; a >= 0; a--) {
        idx[a] = t->shape[a] ? (int64_t)(i % (size_t)t->shape[a]) : 0;
        i = t->shape[a] ? i / (size_t)t->shape[a] : 0;
    }
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int a = 0; a < t->rank && len < cap; a++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", a ? ", " : "", (long long)idx[a]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

/* An f64 value past f32's range would become an infinity in an f32 param:
 * an error naming the param and the element, as for any bad file. */
static nb_status check_range(const nb_node *p, const nb_tensor *t, const char *path, char *err, size_t cap)
{
    if (p->value.dtype != NB_F32 || t->dtype != NB_F64) return NB_OK;
    const double *v = t->data;
    for (size_t i = 0, n = nb_tensor_numel(t); i < n; i++)
        if (isfinite(v[i]) && !isfinite((float)v[i])) {
            char at[160];
            index_of(i, t, at, sizeof at);
            snprintf(err, cap, "%s: param '%s': element %s is %g, beyond f32's range (+-3.4e38): it would "
                     "become infinite", path, p->name, at, v[i]);
            return NB_ERR_FORMAT;
        }
    return NB_OK;
}

/* Copies t, converted to p's dtype, into p. */
static nb_status copy_into(nb_node *p, const nb_tensor *t)
{
    nb_tensor c;
    nb_status st = nb_tensor_alloc(&c, t->dtype, t->rank, t->shape);
    if (!st) {
        memcpy(c.data, t->data, nb_tensor_bytes(t));
        st = nb_tensor_convert(&c, p->value.dtype);
    }
    if (!st) memcpy(p->value.data, c.data, nb_tensor_bytes(&p->value));
    nb_tensor_free(&c);
    return st;
}

static nb_status note_ignored(nb_diags *ignored, const char *name)
{
    if (!ignored) return NB_OK;
    char **lines = nb_realloc(ignored->lines, (ignored->n + 1) * sizeof *lines);
    if (!lines) return NB_ERR_NOMEM;
    ignored->lines = lines;
    if (!(lines[ignored->n] = nb__strdup(name))) return NB_ERR_NOMEM;
    ignored->n++;
    return NB_OK;
}

static nb_status load(nb_graph *g, const char *path, nb_diags *ignored, char *err, size_t cap)
{
    nb_tensor_set set = {0};
    const nb_tensor *t;
    nb_status st = nb_tensors_read(path, &set);
    if (st) snprintf(err, cap, "%s", nb_last_error());
    /* every param is checked before any is written: a bad file changes nothing */
    for (size_t i = 0; i < g->n_nodes && !st; i++)
        if (saved(g->nodes[i]) && !(st = match(&set, g->nodes[i], path, err, cap, &t)))
            st = check_range(g->nodes[i], t, path, err, cap);
    for (size_t i = 0; i < g->n_nodes && !st; i++)
        if (saved(g->nodes[i]) && (st = copy_into(g->nodes[i], nb_tensor_set_find(&set, g->nodes[i]->name))))
            snprintf(err, cap, "%s: param '%s': %s", path, g->nodes[i]->name, nb_status_str(st));
    for (size_t i = 0; i < set.n && !st; i++) {
        const nb_node *n = nb_graph_find(g, set.items[i].name);
        if ((!n || !saved(n)) && (st = note_ignored(ignored, set.items[i].name)))
            snprintf(err, cap, "out of memory");
    }
    if (st && ignored) nb_diags_free(ignored);
    nb_tensor_set_free(&set);
    return st;
}

/* The public calls put their message on the graph (core.h, "Errors"). */
nb_status nb_weights_save(nb_graph *g, const char *path, const char *const *meta, size_t n_meta)
{
    char err[NB_ERR_CAP] = "";
    if (!g) return NB_ERR_ARG;
    nb__begin(g);
    if (!path || (n_meta && !meta)) return nb__fail(g, NB_ERR_ARG, "weights: no path or no metadata given");
    nb_status st = save(g, path, meta, n_meta, err, sizeof err);
    return st ? nb__fail(g, st, "%s", err) : NB_OK;
}

nb_status nb_weights_load(nb_graph *g, const char *path, nb_diags *ignored)
{
    char err[NB_ERR_CAP] = "";
    if (ignored) *ignored = (nb_diags){0};
    if (!g) return NB_ERR_ARG;
    nb__begin(g);
    if (!path) return nb__fail(g, NB_ERR_ARG, "weights: no path given");
    nb_status st = load(g, path, ignored, err, sizeof err);
    return st ? nb__fail(g, st, "%s", err) : NB_OK;
}

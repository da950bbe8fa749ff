/* The model loader's table of names: inputs, params, nodes and layers defined
 * so far (failed ones too, so that their users are skipped silently), the
 * prefixes reserved by layers, and references resolved with "did you mean". */
#include <stdio.h>
#include <string.h>

#include "model_internal.h"

nm_name *nm_lookup(nm_ctx *c, const char *name, size_t len)
{
    return nb__strmap_getn(&c->names, name, len);
}

static nm_name *new_entry(const char *name, size_t len)
{
    nm_name *e = nb_calloc(1, sizeof *e);
    if (e && !(e->name = nb_malloc(len + 1))) {
        nb_free(e);
        return NULL;
    }
    if (e) {
        memcpy(e->name, name, len);
        e->name[len] = 0;
    }
    return e;
}

static void free_entry(nm_name *e)
{
    if (!e) return;
    nb_free(e->name);
    nb_free(e);
}

nm_name *nm_define(nm_ctx *c, const char *name, nb_node *node, size_t line, bool layer)
{
    if (c->n_order == c->cap_order) {
        size_t cap = c->cap_order ? 2 * c->cap_order : 64;
        nm_name **o = nb_realloc(c->order, cap * sizeof *o);
        if (!o) goto oom;
        c->order = o;
        c->cap_order = cap;
    }
    nm_name *e = new_entry(name, strlen(name));
    if (!e || nb__strmap_put(&c->names, e->name, e)) {
        free_entry(e);
        goto oom;
    }
    e->node = node;
    e->line = line;
    e->layer = layer;
    c->order[c->n_order++] = e;
    /* remember every prefix before a '.', for the layers' reserved names */
    for (const char *p = strchr(name, '.'); p; p = strchr(p + 1, '.')) {
        size_t len = (size_t)(p - name);
        if (nb__strmap_getn(&c->prefixes, name, len)) continue;
        nm_name *pre = new_entry(name, len);
        if (!pre || nb__strmap_put(&c->prefixes, pre->name, pre)) {
            free_entry(pre);
            goto oom;
        }
        pre->first = e;
    }
    return e;
oom:
    c->y.oom = true;
    return NULL;
}

const nm_name *nm_first_with_prefix(nm_ctx *c, const char *prefix)
{
    const nm_name *e = nb__strmap_get(&c->prefixes, prefix);
    return e ? e->first : NULL;
}

nm_name *nm_reserved_by(nm_ctx *c, const char *name)
{
    for (const char *p = strchr(name, '.'); p; p = strchr(p + 1, '.')) {
        nm_name *e = nm_lookup(c, name, (size_t)(p - name));
        if (e && e->layer) return e;
    }
    return NULL;
}

void nm_free_names(nm_ctx *c)
{
    void *pre;
    for (size_t i = 0; i < c->n_order; i++) free_entry(c->order[i]);
    for (size_t i = 0; nb__strmap_next(&c->prefixes, &i, NULL, &pre);) free_entry(pre);
    nb_free(c->order);
    nb__strmap_free(&c->names);
    nb__strmap_free(&c->prefixes);
}

bool nm_valid_name(nm_ctx *c, const yaml_node_t *n, const char *what, const char **out)
{
    const char *s;
    if (!ny_str(&c->y, n, what, &s)) return false;
    if (strlen(s) > NM_MAX_NAME) {
        ny_err(&c->y, n, "name '%.20s...' is too long (at most %d characters)", s, NM_MAX_NAME);
        return false;
    }
    if (!nb__name_valid(s)) {
        ny_err(&c->y, n, "invalid name '%s': use letters, digits, '_', '.', '-'", s);
        return false;
    }
    *out = s;
    return true;
}

const char *nm_reserved_prefix(const char *name)
{
    static const char *const pre[] = {"grad.", "opt."};
    for (int i = 0; i < 2; i++)
        if (!strncmp(name, pre[i], strlen(pre[i]))) return pre[i];
    return NULL;
}

bool nm_owns_prefix(nm_ctx *c, const yaml_node_t *at, const char *name, const char *what)
{
    if (strcmp(name, "grad") && strcmp(name, "opt")) return true;
    ny_err(&c->y, at, "%s '%s' would make names beginning '%s.', which are reserved (%s)", what,
           name, name, name[0] == 'g' ? "gradients" : "optimizer state");
    return false;
}

bool nm_new_name(nm_ctx *c, const yaml_node_t *at, const char *name)
{
    nm_name *e = nm_lookup(c, name, strlen(name));
    if (e) {
        ny_err(&c->y, at, "duplicate name '%s' (first defined at line %zu)", name, e->line);
        return false;
    }
    const char *pre = nm_reserved_prefix(name);
    if (pre) {
        ny_err(&c->y, at, "name '%s' is reserved: names beginning '%s' %s", name, pre,
               *pre == 'g' ? "name gradients (grad.NAME in output folders)"
                           : "name optimizer state in checkpoints");
        return false;
    }
    if ((e = nm_reserved_by(c, name))) {
        ny_err(&c->y, at, "name '%s' is reserved: names beginning '%s.' belong to layer '%s'", name,
               e->name, e->name);
        return false;
    }
    return true;
}

nb_node *nm_resolve(nm_ctx *c, const yaml_node_t *ref, const char *where)
{
    const char *s;
    if (!ny_str(&c->y, ref, "a name", &s)) return NULL;
    nm_name *e = nm_lookup(c, s, strlen(s));
    if (e) return e->node;
    if ((e = nm_reserved_by(c, s)) && !e->node) return NULL;  /* part of a failed layer */
    /* hints cost a pass over every name: not for files that are all errors */
    const char **names = c->y.n_msgs < 100 ? nb_malloc((c->n_order + 1) * sizeof *names) : NULL;
    char hint[96] = "";
    if (names) {
        for (size_t i = 0; i < c->n_order; i++) names[i] = c->order[i]->name;
        ny_hint(hint, sizeof hint, s, names, c->n_order);
        nb_free(names);
    }
    ny_err(&c->y, ref, "'%s' is not defined %s%s", s, where, hint);
    return NULL;
}

/* A tensor refused for the memory limit fails with NB_ERR_NOMEM too, but
 * nothing ran out: the load goes on (its users are skipped silently), so the
 * refusal is the only message, not followed by outputs "not defined". */
void nm_graph_err_sized(nm_ctx *c, const yaml_node_t *at, int rank, const int64_t *shape, nb_dtype dt)
{
    nb_graph *g = c->m->g;
    size_t numel, bytes;
    if (nb_graph_status(g) == NB_ERR_NOMEM && !nb_shape_numel(rank, shape, &numel) &&
        !__builtin_mul_overflow(numel, nb_dtype_size(dt), &bytes) && bytes > nb_memory_limit()) {
        ny_err(&c->y, at, "%s", nb_graph_error(g));
        nb_graph_clear_error(g);
        return;
    }
    nm_graph_err(c, at);
}

void nm_graph_err(nm_ctx *c, const yaml_node_t *at)
{
    nb_graph *g = c->m->g;
    if (nb_graph_status(g) == NB_ERR_NOMEM) c->y.oom = true;
    ny_err(&c->y, at, "%s", nb_graph_status(g) ? nb_graph_error(g) : "out of memory");
    nb_graph_clear_error(g);
}

const char *nm_shape_str(char *buf, size_t cap, int rank, const int64_t *shape)
{
    size_t w = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < rank && w < cap; i++)
        w += (size_t)snprintf(buf + w, cap - w, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (w < cap) snprintf(buf + w, cap - w, "]");
    return buf;
}

char *nm_strdup(nm_ctx *c, const char *s)
{
    char *d = nb__strdup(s);
    if (!d) c->y.oom = true;
    return d;
}

bool nm_push(nm_ctx *c, nb_node ***arr, size_t *n, size_t *cap, nb_node *x)
{
    if (*n == *cap) {
        size_t nc = *cap ? 2 * *cap : 16;
        nb_node **a = nb_realloc(*arr, nc * sizeof *a);
        if (!a) {
            c->y.oom = true;
            return false;
        }
        *arr = a;
        *cap = nc;
    }
    (*arr)[(*n)++] = x;
    return true;
}

bool nm_add_param(nm_ctx *c, nb_node *p)
{
    return nm_push(c, &c->m->params, &c->m->n_params, &c->m->cap_params, p);
}

/* A name that is a string but not a valid name: taken anyway, failed, so
 * that its users are skipped without more messages. */
void nm_define_invalid(nm_ctx *c, const yaml_node_t *n)
{
    ny_val v = ny_value(n);
    if (v.kind == NY_STR && strlen(v.s) == v.len && !nm_lookup(c, v.s, v.len))
        nm_define(c, v.s, NULL, ny_line(n), false);
}


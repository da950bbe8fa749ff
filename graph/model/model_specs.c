/* The model loader: inputs, params and their init rules. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model_internal.h"

/* ---- shapes --------------------------------------------------------- */

bool nm_is_symbol(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_')) return false;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

/* A shape list: positive integers, and symbols unless ints_only. */
bool nm_parse_shape(nm_ctx *c, const yaml_node_t *list, bool ints_only, nb_dim *dims,
                        int64_t *ints, int *rank)
{
    char d[64];
    if (!list || list->type != YAML_SEQUENCE_NODE) {
        ny_err(&c->y, list, "a shape must be a list such as %s; got %s",
               ints_only ? "[784, 128]" : "[N, 784]", ny_describe(list, d, sizeof d));
        return false;
    }
    size_t n = ny_seq_size(list);
    if (n > NB_MAX_DIMS) {
        ny_err(&c->y, list, "a shape has at most %d dimensions; this one has %zu", NB_MAX_DIMS, n);
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = ny_seq_item(&c->y, list, i);
        ny_val v = ny_value(item);
        if (v.kind == NY_INT && v.i >= 1) {
            dims[i] = NB_DIM(v.i);
            ints[i] = v.i;
        } else if (v.kind == NY_STR && nm_is_symbol(v.s) && !ints_only) {
            dims[i] = NB_SYM(v.s);
            ints[i] = -1;
        } else if (v.kind == NY_STR && nm_is_symbol(v.s)) {
            ny_err(&c->y, item, "param and constant shapes take positive integers only; got the symbol '%s'",
                   v.s);
            ok = false;
        } else {
            ny_err(&c->y, item, "a dimension must be a positive integer%s; got %s",
                   ints_only ? "" : " or a symbol such as N", ny_describe(item, d, sizeof d));
            ok = false;
        }
    }
    *rank = (int)n;
    return ok;
}

bool nm_parse_dtype(nm_ctx *c, const yaml_node_t *v, nb_dtype *out, bool allow_i32)
{
    static const char *const names[] = {"f32", "f64", "i32"};
    const char *s;
    char hint[96];
    if (!ny_str(&c->y, v, "dtype", &s)) return false;
    for (int i = 0; i < (allow_i32 ? 3 : 2); i++)
        if (!strcmp(s, names[i])) {
            *out = (nb_dtype[]){NB_F32, NB_F64, NB_I32}[i];
            return true;
        }
    if (!allow_i32 && !strcmp(s, "i32"))
        ny_err(&c->y, v, "the model's dtype must be f32 or f64; got 'i32'");
    else
        ny_err(&c->y, v, "unknown dtype '%s'%s", s,
               ny_hint(hint, sizeof hint, s, names, allow_i32 ? 3 : 2));
    return false;
}

/* ---- inputs --------------------------------------------------------- */

void nm_do_input(nm_ctx *c, const yaml_node_t *key, const char *name, const yaml_node_t *spec)
{
    static const char *const keys[] = {"shape", "dtype"};
    size_t mark = c->y.n_msgs;
    const yaml_node_t *shape = spec;
    nb_dtype dt = c->dt;
    char d[64];
    if (spec->type == YAML_MAPPING_NODE) {
        ny_map_check(&c->y, spec, "an input spec", keys, 2);
        shape = ny_get(&c->y, spec, "shape", NULL);
        if (!shape) ny_err(&c->y, spec, "input '%s' needs a shape", name);
        const yaml_node_t *dv = ny_get(&c->y, spec, "dtype", NULL);
        nb_dtype want;
        if (dv && nm_parse_dtype(c, dv, &want, true)) {
            if (want == NB_I32)
                dt = NB_I32;
            else if (want != c->m->dtype)
                ny_err(&c->y, dv,
                       "input '%s' is %s but the model is %s; an input takes the model's dtype "
                       "or i32",
                       name, nb_dtype_name(want), nb_dtype_name(c->m->dtype));
        }
    } else if (spec->type != YAML_SEQUENCE_NODE) {
        ny_err(&c->y, spec,
               "input '%s' must be a shape such as [N, 784] or {shape: [N], dtype: i32}; got %s",
               name, ny_describe(spec, d, sizeof d));
        shape = NULL;
    }
    nb_dim dims[NB_MAX_DIMS];
    int64_t ints[NB_MAX_DIMS];
    int rank = 0;
    if (shape) nm_parse_shape(c, shape, false, dims, ints, &rank);
    nb_node *n = NULL;
    if (c->y.n_msgs == mark) {
        n = nb_input(c->m->g, name, dt, rank, dims);
        if (!n) nm_graph_err(c, spec);
        else nm_push(c, &c->m->inputs, &c->m->n_inputs, &c->m->cap_inputs, n);
    }
    nm_define(c, name, n, ny_line(key), false);
}

/* ---- params and init rules ------------------------------------------ */

/* Counts (dst NULL) or stores the numbers of a flat or nested list; stops
 * counting past `limit`. */
static bool walk_values(nm_ctx *c, const yaml_node_t *v, int depth, double *dst, size_t limit,
                        size_t *n)
{
    char d[64];
    if (v->type == YAML_SEQUENCE_NODE) {
        if (depth > NB_MAX_DIMS) {
            ny_err(&c->y, v, "values nest deeper than %d lists", NB_MAX_DIMS);
            return false;
        }
        bool ok = true;
        for (size_t i = 0; i < ny_seq_size(v) && *n <= limit; i++)
            ok &= walk_values(c, ny_seq_item(&c->y, v, i), depth + 1, dst, limit, n);
        return ok;
    }
    ny_val x = ny_value(v);
    if (x.kind != NY_INT && x.kind != NY_FLOAT && x.kind != NY_BIGINT) {
        ny_err(&c->y, v, "values must be numbers; got %s", ny_describe(v, d, sizeof d));
        return false;
    }
    if (dst && *n < limit) dst[*n] = x.f;
    (*n)++;
    return true;
}

static bool parse_values(nm_ctx *c, const yaml_node_t *v, size_t limit, nm_init *out)
{
    size_t n = 0;
    if (!walk_values(c, v, 0, NULL, limit, &n)) return false;
    if (n > limit) {
        out->too_many = true;
        out->n_values = n;
        return true;
    }
    out->values = nb_malloc((n ? n : 1) * sizeof(double));
    if (!out->values) {
        c->y.oom = true;
        return false;
    }
    out->n_values = 0;
    walk_values(c, v, 0, out->values, limit, &out->n_values);
    return true;
}

static const char *const init_names[] = {"zeros",  "ones",    "xavier",  "he",
                                         "normal", "uniform", "constant", "values"};

bool nm_parse_init(nm_ctx *c, const yaml_node_t *v, size_t limit, nm_init *out)
{
    static const nb_init_kind plain[] = {NB_INIT_ZEROS, NB_INIT_ONES, NB_INIT_XAVIER, NB_INIT_HE};
    char d[64], hint[96];
    memset(out, 0, sizeof *out);
    out->init.seed = c->m->seed;
    ny_val x = ny_value(v);
    if (x.kind == NY_STR) {
        for (int i = 0; i < 8; i++)
            if (!strcmp(x.s, init_names[i])) {
                if (i < 4) {
                    out->init.kind = plain[i];
                    return true;
                }
                ny_err(&c->y, v, "init '%s' needs a value, as in {%s: %s}", x.s, x.s,
                       i == 4 ? "0.1" : i == 5 ? "[-0.1, 0.1]" : i == 6 ? "0.5" : "[1, 2, 3]");
                return false;
            }
        ny_err(&c->y, v, "unknown init '%s'%s", x.s, ny_hint(hint, sizeof hint, x.s, init_names, 8));
        return false;
    }
    if (x.kind != NY_MAP) {
        ny_err(&c->y, v,
               "init must be zeros, ones, xavier, he or a mapping such as {normal: 0.1}; got %s",
               ny_describe(v, d, sizeof d));
        return false;
    }
    if (!ny_map_check(&c->y, v, "init", NULL, 0)) return false;
    if (ny_map_size(v) != 1) {
        ny_err(&c->y, ny_map_size(v) ? ny_map_key(&c->y, v, 1) : v,
               "an init mapping has exactly one key, as in {normal: 0.1}");
        return false;
    }
    yaml_node_t *key = ny_map_key(&c->y, v, 0), *val = ny_map_val(&c->y, v, 0);
    const char *k = ny_key_text(key);
    if (!k) return false;
    if (!strcmp(k, "constant")) {
        out->init.kind = NB_INIT_CONSTANT;
        return ny_num(&c->y, val, "constant", &out->init.a);
    }
    if (!strcmp(k, "normal")) {
        out->init.kind = NB_INIT_NORMAL;
        if (!ny_num(&c->y, val, "normal's standard deviation", &out->init.a)) return false;
        if (out->init.a >= 0 && out->init.a < INFINITY) return true;
        ny_err(&c->y, val, "normal's standard deviation must be a finite number >= 0; got %s",
               ny_describe(val, d, sizeof d));
        return false;
    }
    if (!strcmp(k, "uniform")) {
        out->init.kind = NB_INIT_UNIFORM;
        if (val->type != YAML_SEQUENCE_NODE || ny_seq_size(val) != 2) {
            ny_err(&c->y, val, "uniform takes [a, b]; got %s", ny_describe(val, d, sizeof d));
            return false;
        }
        if (!ny_num(&c->y, ny_seq_item(&c->y, val, 0), "a", &out->init.a) ||
            !ny_num(&c->y, ny_seq_item(&c->y, val, 1), "b", &out->init.b))
            return false;
        if (out->init.a < out->init.b && out->init.a > -INFINITY && out->init.b < INFINITY)
            return true;
        ny_err(&c->y, val, "uniform takes [a, b] with finite a < b; got [%g, %g]", out->init.a,
               out->init.b);
        return false;
    }
    if (!strcmp(k, "values")) {
        out->init.kind = NB_INIT_VALUES;
        out->values_key = key;
        return parse_values(c, val, limit, out);
    }
    for (int i = 0; i < 4; i++)
        if (!strcmp(k, init_names[i])) {
            ny_err(&c->y, key, "init '%s' takes no value; write init: %s", k, k);
            return false;
        }
    ny_err(&c->y, key, "unknown init '%s'%s", k, ny_hint(hint, sizeof hint, k, init_names, 8));
    return false;
}

void nm_init_free(nm_init *init)
{
    nb_free(init->values);
    init->values = NULL;
}

nb_node *nm_make_param(nm_ctx *c, const char *name, int rank, const int64_t *shape,
                       nm_init *init, const yaml_node_t *at)
{
    nb_init in = init->init;
    if (in.kind == NB_INIT_VALUES) {
        size_t numel = 0;
        char s[160];
        if (nb_shape_numel(rank, shape, &numel) == NB_OK &&
            (init->too_many || init->n_values != numel)) {
            size_t n = init->too_many ? numel : init->n_values;
            ny_err(&c->y, init->values_key, "values has %s%zu number%s but %s %s holds %zu",
                   init->too_many ? "more than " : "", n, n == 1 ? "" : "s", name,
                   nm_shape_str(s, sizeof s, rank, shape), numel);
            return NULL;
        }
        in.values = init->values;
        in.n_values = init->n_values;
    }
    nb_node *p = nb_param(c->m->g, name, c->dt, rank, shape, in);
    if (!p) {
        nm_graph_err_sized(c, at, rank, shape, c->dt);
        return NULL;
    }
    return nm_add_param(c, p) ? p : NULL;
}

void nm_do_param(nm_ctx *c, const yaml_node_t *key, const char *name, const yaml_node_t *spec)
{
    static const char *const keys[] = {"shape", "init"};
    size_t mark = c->y.n_msgs;
    char d[64];
    nb_node *p = NULL;
    if (spec->type != YAML_MAPPING_NODE) {
        ny_err(&c->y, spec, "param '%s' must be a mapping {shape: [...], init: ...}; got %s", name,
               ny_describe(spec, d, sizeof d));
    } else {
        ny_map_check(&c->y, spec, "a param spec", keys, 2);
        const yaml_node_t *shape = ny_get(&c->y, spec, "shape", NULL);
        const yaml_node_t *init = ny_get(&c->y, spec, "init", NULL);
        if (!shape) ny_err(&c->y, spec, "param '%s' needs a shape", name);
        if (!init)
            ny_err(&c->y, spec, "param '%s' needs an init (zeros, ones, xavier, he, ...)", name);
        nb_dim dims[NB_MAX_DIMS];
        int64_t ints[NB_MAX_DIMS];
        int rank = 0;
        size_t numel = 0;
        if (shape && nm_parse_shape(c, shape, true, dims, ints, &rank) &&
            nb_shape_numel(rank, ints, &numel) != NB_OK) {
            ny_err(&c->y, shape, "param '%s' is too large", name);
        }
        nm_init in;
        if (init && nm_parse_init(c, init, numel, &in)) {
            if (c->y.n_msgs == mark) p = nm_make_param(c, name, rank, ints, &in, spec);
            nm_init_free(&in);
        }
    }
    nm_define(c, name, p, ny_line(key), false);
}

/* Runs `fn` on each entry of an inputs/params mapping whose name is valid and new. */
void nm_each_entry(nm_ctx *c, const yaml_node_t *map, const char *what,
                   void (*fn)(nm_ctx *, const yaml_node_t *, const char *, const yaml_node_t *))
{
    if (ny_value(map).kind == NY_NULL) return;  /* `params:` with nothing after it */
    char w[64];
    snprintf(w, sizeof w, "'%s'", what);
    if (!ny_map_check(&c->y, map, w, NULL, 0)) return;
    for (size_t i = 0; i < ny_map_size(map); i++) {
        yaml_node_t *key = ny_map_key(&c->y, map, i);
        const char *name;
        if (!ny_key_text(key) || ny_is_merge_key(key) || ny_map_dup(&c->y, map, i))
            continue;  /* reported by ny_map_check */
        if (!nm_valid_name(c, key, "a name", &name))
            nm_define_invalid(c, key);
        else if (nm_new_name(c, key, name))
            fn(c, key, name, ny_map_val(&c->y, map, i));
    }
}


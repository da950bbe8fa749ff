/* The model loader: op nodes. The op, its arity and its attributes (names,
 * types, defaults, which are required) come from the op registry; the graph
 * checks shapes, and its message is reported at the node. */
#include <stdio.h>
#include <string.h>

#include "model_internal.h"

/* ---- op nodes ------------------------------------------------------- */

/* A word attribute (gelu's approximate): one of the op's choices. */
static bool parse_choice(nm_ctx *c, const nb_attr_def *def, const yaml_node_t *v, nb_attr *a)
{
    char what[64], hint[96], list[128] = "";
    snprintf(what, sizeof what, "'%s'", def->name);
    if (!ny_str(&c->y, v, what, &a->s)) return false;
    size_t n = 0, len = 0;
    for (; def->def.choices && def->def.choices[n]; n++) {
        if (!strcmp(a->s, def->def.choices[n])) return true;
        if (len < sizeof list)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", n ? ", " : "",
                                    def->def.choices[n]);
    }
    ny_err(&c->y, v, "%s must be one of %s; got '%s'%s", what, list, a->s,
           ny_hint(hint, sizeof hint, a->s, def->def.choices, n));
    return false;
}

/* Reads attribute `def` of an op from a value, typed by the registry. */
bool nm_parse_attr(nm_ctx *c, const nb_attr_def *def, const yaml_node_t *v, nb_attr *a)
{
    char what[64], d[64];
    snprintf(what, sizeof what, "'%s'", def->name);
    memset(a, 0, sizeof *a);
    a->name = def->name;
    a->type = def->type;
    a->n = 1;
    switch (def->type) {
    case NB_ATTR_INT: return ny_int(&c->y, v, what, &a->i[0]);
    case NB_ATTR_FLOAT: return ny_num(&c->y, v, what, &a->f);
    case NB_ATTR_BOOL: {
        bool b;
        if (!ny_bool(&c->y, v, what, &b)) return false;
        a->i[0] = b;
        return true;
    }
    case NB_ATTR_STRING: return parse_choice(c, def, v, a);
    case NB_ATTR_INTS:
    case NB_ATTR_DIMS:
        break;
    default:
        ny_err(&c->y, v, "attribute '%s' has a type this loader cannot read", def->name);
        return false;
    }
    bool list = v->type == YAML_SEQUENCE_NODE;
    if (def->type == NB_ATTR_INTS && !list) return ny_int(&c->y, v, what, &a->i[0]);
    if (!list) {
        ny_err(&c->y, v, "%s must be a list such as [N, -1]; got %s", what,
               ny_describe(v, d, sizeof d));
        return false;
    }
    size_t n = ny_seq_size(v);
    if (n > NB_MAX_DIMS) {
        ny_err(&c->y, v, "%s has at most %d entries; got %zu", what, NB_MAX_DIMS, n);
        return false;
    }
    a->n = (int)n;
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = ny_seq_item(&c->y, v, i);
        if (def->type == NB_ATTR_INTS) {
            ok &= ny_int(&c->y, item, what, &a->i[i]);
            continue;
        }
        ny_val x = ny_value(item);
        if (x.kind == NY_INT && (x.i >= 1 || x.i == -1)) {
            a->d[i] = NB_DIM(x.i);
            a->i[i] = x.i;
        } else if (x.kind == NY_STR && nm_is_symbol(x.s)) {
            const nb_graph *g = c->m->g;
            int k = nb__sym_find(g, x.s);
            if (k < 0) {
                ny_err(&c->y, item, "dimension '%s' is not declared by any input", x.s);
                ok = false;
            } else {
                a->d[i] = NB_SYM(g->sym[k]);  /* the graph's copy outlives this file */
            }
        } else {
            ny_err(&c->y, item, "%s entries must be positive integers, -1 or symbols; got %s",
                   what, ny_describe(item, d, sizeof d));
            ok = false;
        }
    }
    return ok;
}

static bool is_base_key(const char *k)
{
    return !strcmp(k, "name") || !strcmp(k, "op") || !strcmp(k, "in") || !strcmp(k, "layer");
}

/* Reads a node's attributes (every key but name/op/in) into attrs. */
static bool op_attrs(nm_ctx *c, const yaml_node_t *map, const nb_op_def *op, nb_attr *attrs,
                     int *n_attrs)
{
    const char *known[3 + NB_MAX_ATTRS];
    size_t nk = 0;
    known[nk++] = "name", known[nk++] = "op", known[nk++] = "in";
    for (int i = 0; i < op->n_attrs && nk < 3 + NB_MAX_ATTRS; i++)
        known[nk++] = op->attrs[i].name;
    size_t mark = c->y.n_msgs;
    ny_map_check(&c->y, map, "a node", known, nk);
    *n_attrs = 0;
    for (size_t i = 0; i < ny_map_size(map); i++) {
        const char *k = ny_key_text(ny_map_key(&c->y, map, i));
        if (!k || is_base_key(k) || ny_map_dup(&c->y, map, i)) continue;
        for (int j = 0; j < op->n_attrs; j++)
            if (!strcmp(op->attrs[j].name, k) && *n_attrs < NB_MAX_ATTRS)
                nm_parse_attr(c, &op->attrs[j], ny_map_val(&c->y, map, i), &attrs[(*n_attrs)++]);
    }
    return c->y.n_msgs == mark;
}

bool nm_adopt_state(nm_ctx *c, nb_node *n, int n_given, size_t line, const char *group)
{
    for (int i = n_given; i < nb_node_num_inputs(n); i++) {
        nb_node *p = nb_node_input(n, i);
        if (group && nb_node_set_group(c->m->g, p, group)) {
            c->y.oom = true;
            return false;
        }
        if (!nm_add_param(c, p) || !nm_define(c, nb_node_name(p), p, line, false)) {
            c->y.oom = true;
            return false;
        }
    }
    return true;
}

static bool is_number(const yaml_node_t *v)
{
    ny_kind k = ny_value(v).kind;
    return k == NY_INT || k == NY_FLOAT || k == NY_BIGINT;
}

/* Input i of node `name` written as a number: the rank-0 constant NAME.inI
 * when the node can be built (its name valid and new), else nothing. */
static nb_node *literal(nm_ctx *c, const yaml_node_t *num, const char *name, bool named,
                        bool layer, size_t i)
{
    char d[64], cname[NM_MAX_NAME + 32];
    if (layer) {
        ny_err(&c->y, num, "a layer's input must name a tensor; got %s",
               ny_describe(num, d, sizeof d));
        return NULL;
    }
    if (!named || !nm_owns_prefix(c, num, name, "node")) return NULL;
    snprintf(cname, sizeof cname, "%s.in%zu", name, i);
    return nm_literal(c, num, cname);
}

/* Builds one node spec; returns its node (NULL when it or an input failed). */
nb_node *nm_do_node(nm_ctx *c, const yaml_node_t *spec)
{
    char d[64], hint[96];
    if (spec->type != YAML_MAPPING_NODE) {
        ny_err(&c->y, spec, "a node must be a mapping {name: ..., op: ..., in: [...]}; got %s",
               ny_describe(spec, d, sizeof d));
        return NULL;
    }
    size_t mark = c->y.n_msgs;
    yaml_node_t *layer_key;
    const yaml_node_t *name_v = ny_get(&c->y, spec, "name", NULL);
    const yaml_node_t *op_v = ny_get(&c->y, spec, "op", NULL);
    const yaml_node_t *layer_v = ny_get(&c->y, spec, "layer", &layer_key);
    const yaml_node_t *in_v = ny_get(&c->y, spec, "in", NULL);

    const char *name = NULL;
    bool fresh = false;  /* a valid name not defined before: define it (ok or failed) */
    bool named = false;  /* ... and not reserved either: the node may be built */
    if (!name_v)
        ny_err(&c->y, spec, "a node needs a name");
    else if (nm_valid_name(c, name_v, "a node name", &name))
        fresh = (named = nm_new_name(c, name_v, name)) || !nm_lookup(c, name, strlen(name));
    else
        nm_define_invalid(c, name_v);

    const nb_op_def *op = NULL;
    if (op_v && layer_v) {
        ny_err(&c->y, layer_key, "a node has an op or a layer, not both");
    } else if (!op_v && !layer_v) {
        ny_err(&c->y, spec, "node '%s' needs an op (or a layer)", name ? name : "?");
    } else if (op_v) {
        const char *s;
        if (ny_str(&c->y, op_v, "'op'", &s)) {
            op = nb_op_find(s);
            if (op && (op->flags & NB_OP_INTERNAL)) op = NULL;
            if (!op && nm_is_layer(s))
                ny_err(&c->y, op_v, "'%s' is a layer, not an op: write layer: %s", s, s);
            else if (!op)
                ny_err(&c->y, op_v, "unknown op '%s'%s", s, nb_hint(hint, sizeof hint, nb_op_suggest(s)));
            else if (op->n_state > 0 && named && !nm_owns_prefix(c, name_v, name, "node"))
                op = NULL;
        }
    }

    /* inputs: a list of names (or one name) */
    size_t n_in = 0;
    nb_node **in = NULL;
    bool ins_ok = true;
    if (in_v && in_v->type == YAML_SEQUENCE_NODE) {
        n_in = ny_seq_size(in_v);
    } else if (in_v && ny_value(in_v).kind == NY_STR) {  /* numbers only inside a list */
        n_in = 1;
    } else if (in_v && ny_value(in_v).kind != NY_NULL) {
        ny_err(&c->y, in_v, "'in' must be a list of names; got %s", ny_describe(in_v, d, sizeof d));
        ins_ok = false;
    }
    if (n_in && !(in = nb_calloc(n_in, sizeof *in))) {
        c->y.oom = true;
        return NULL;
    }
    for (size_t i = 0; i < n_in; i++) {
        const yaml_node_t *ref = in_v->type == YAML_SEQUENCE_NODE ? ny_seq_item(&c->y, in_v, i) : in_v;
        in[i] = ref != in_v && is_number(ref) ? literal(c, ref, name, named, layer_v && !op_v, i)
                               : nm_resolve(c, ref, "above this node");
        if (!in[i]) ins_ok = false;
    }

    nb_node *out = NULL;
    if (layer_v && !op_v) {
        out = nm_build_layer(c, spec, layer_v, fresh ? name : NULL, name_v, in, (int)n_in,
                             ins_ok && fresh && c->y.n_msgs == mark);
    } else if (op) {
        nb_attr attrs[NB_MAX_ATTRS];
        int n_attrs = 0;
        if (op_attrs(c, spec, op, attrs, &n_attrs) && ins_ok && fresh && c->y.n_msgs == mark) {
            out = nb_apply(c->m->g, op, name, in, (int)n_in, attrs, n_attrs);
            if (!out) nm_graph_err(c, spec);
            else if (!nm_adopt_state(c, out, (int)n_in, ny_line(name_v), NULL)) out = NULL;
        }
    } else {
        ny_map_check(&c->y, spec, "a node", NULL, 0);  /* duplicate keys at least */
    }
    nb_free(in);
    if (fresh && !nm_lookup(c, name, strlen(name)))  /* a built layer defined itself */
        nm_define(c, name, out, ny_line(name_v), layer_v && !op_v);
    return out;
}


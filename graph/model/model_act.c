/* A layer's `activation` (model-format.md, "Additions to format version 1",
 * Layers): none, the name of a one-input activation op, or a mapping
 * {op: NAME, attr: value, ...} passing the op's attributes. Ops are found in
 * the registry by name when a file is read, so each named activation works
 * once its op is registered; nothing here knows an op's code. */
#include <stdio.h>
#include <string.h>

#include "model_internal.h"

/* The activations model-format.md names. They are looked up in the op
 * registry by name when a file uses them, so that each works once its op is
 * registered. */
static const char *const act_names[] = {"relu", "sigmoid", "tanh",     "leaky_relu",
                                        "gelu", "silu",    "elu",  "softplus"};
#define N_ACT ((int)(sizeof act_names / sizeof act_names[0]))

/* An op that can follow a layer: one input, no required attribute. Beyond
 * the named activations that admits others (exp, softmax, ...), as the loader
 * always has (model.h, extensions). */
static bool usable(const nb_op_def *op)
{
    if (!op || (op->flags & NB_OP_INTERNAL) || op->min_in > 1 || (op->max_in >= 0 && op->max_in < 1))
        return false;
    for (int i = 0; i < op->n_attrs; i++)
        if (op->attrs[i].required) return false;
    return true;
}

/* "relu, sigmoid, ..." of the named activations registered now. */
static const char *act_list(char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < N_ACT && len < cap; i++)
        if (usable(nb_op_find(act_names[i])))
            len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", act_names[i]);
    return buf;
}

/* The op an activation names, or NULL after saying why it cannot be one. */
static const nb_op_def *act_op(nm_ctx *c, const yaml_node_t *v, const char *s)
{
    const nb_op_def *op = nb_op_find(s);
    if (usable(op)) return op;
    char list[256], hint[96];
    act_list(list, sizeof list);
    if (op && !(op->flags & NB_OP_INTERNAL)) {
        ny_err(&c->y, v, "'%s' is not an activation; activations are %s (or none)", s, list);
        return NULL;
    }
    const char *names[1 + 256];
    size_t n = 0;
    names[n++] = "none";
    for (size_t i = 0; i < nb_op_count() && n < 1 + 256; i++)
        if (usable(nb_op_at(i))) names[n++] = nb_op_at(i)->name;
    if (*ny_hint(hint, sizeof hint, s, names, n))
        ny_err(&c->y, v, "unknown activation '%s'%s", s, hint);
    else
        ny_err(&c->y, v, "unknown activation '%s'; activations are %s (or none)", s, list);
    return NULL;
}

/* `activation: {op: leaky_relu, alpha: 0.2}`: the op and its attributes. */
static bool act_mapping(nm_ctx *c, const yaml_node_t *v, const nb_op_def **act, nb_attr *attrs,
                        int *n_attrs)
{
    const yaml_node_t *op_v = ny_get(&c->y, v, "op", NULL);
    const char *s;
    if (!op_v) {
        ny_map_check(&c->y, v, "an activation", NULL, 0);
        ny_err(&c->y, v, "an activation mapping needs 'op', as in {op: leaky_relu, alpha: 0.2}");
        return false;
    }
    if (!ny_str(&c->y, op_v, "'op'", &s)) return false;
    const nb_op_def *op = strcmp(s, "none") ? act_op(c, op_v, s) : NULL;
    if (!op && strcmp(s, "none")) return false;
    const char *known[1 + NB_MAX_ATTRS];
    size_t nk = 0;
    known[nk++] = "op";
    for (int i = 0; op && i < op->n_attrs; i++) known[nk++] = op->attrs[i].name;
    size_t mark = c->y.n_msgs;
    ny_map_check(&c->y, v, "an activation", known, nk);
    for (size_t i = 0; op && i < ny_map_size(v); i++) {
        const char *k = ny_key_text(ny_map_key(&c->y, v, i));
        for (int j = 0; k && !ny_map_dup(&c->y, v, i) && j < op->n_attrs; j++)
            if (!strcmp(op->attrs[j].name, k))
                nm_parse_attr(c, &op->attrs[j], ny_map_val(&c->y, v, i), &attrs[(*n_attrs)++]);
    }
    *act = op;
    return c->y.n_msgs == mark;
}

bool nm_parse_activation(nm_ctx *c, const yaml_node_t *v, const nb_op_def **act, nb_attr *attrs,
                         int *n_attrs)
{
    const char *s;
    *act = NULL;
    *n_attrs = 0;
    if (v->type == YAML_MAPPING_NODE) return act_mapping(c, v, act, attrs, n_attrs);
    if (!ny_str(&c->y, v, "'activation'", &s)) return false;
    if (!strcmp(s, "none")) return true;
    return (*act = act_op(c, v, s)) != NULL;
}

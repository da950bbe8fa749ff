/* Helpers for op shape rules: messages in the user's terms, broadcasting,
 * axes and dtype checks; shapes printed with the graph's symbol names; a
 * rule run on a node (nb__infer) and a shape bound to sizes (nb__bind_shape). */
#include <stdio.h>
#include <string.h>

#include "../graph/internal.h"

nb_status nb_shape_fail(nb_shape_ctx *c, nb_status st, const char *fmt, ...)
{
    if (!c->err || !c->err_cap) return st;
    int w = snprintf(c->err, c->err_cap, "node '%s': %s ", nb_node_name(c->node),
                     nb_node_op(c->node));
    if (w < 0 || (size_t)w >= c->err_cap) return st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + w, c->err_cap - (size_t)w, fmt, ap);
    va_end(ap);
    return st;
}

const char *nb_shape_desc(nb_shape_ctx *c, int i)
{
    char *buf = c->scratch[c->next_scratch++ & 3];
    char shape[96];
    nb_shape_format(c->graph, &c->in[i], shape, sizeof shape);
    const nb_node *in = nb_node_input(c->node, i);
    snprintf(buf, sizeof c->scratch[0], "%s is %s", in ? nb_node_name(in) : "input", shape);
    return buf;
}

nb_status nb_shape_broadcast(nb_shape_ctx *c, int ia, int ib, nb_shape *out)
{
    const nb_shape *a = &c->in[ia], *b = &c->in[ib];
    nb_shape r;
    r.rank = a->rank > b->rank ? a->rank : b->rank;
    for (int i = 0; i < r.rank; i++) {
        int ai = a->rank - r.rank + i, bi = b->rank - r.rank + i;
        nb_sdim da = ai >= 0 ? a->d[ai] : nb_sdim_const(1);
        nb_sdim db = bi >= 0 ? b->d[bi] : nb_sdim_const(1);
        if (nb_sdim_eq(da, db) || nb_sdim_is(db, 1))
            r.d[i] = da;
        else if (nb_sdim_is(da, 1))
            r.d[i] = db;
        else
            return nb_shape_fail(c, NB_ERR_SHAPE, "cannot broadcast: %s, %s", nb_shape_desc(c, ia),
                                 nb_shape_desc(c, ib));
    }
    *out = r;
    return NB_OK;
}

nb_status nb_shape_axis(nb_shape_ctx *c, int64_t axis, int rank, int *out)
{
    int64_t a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank)
        return nb_shape_fail(c, NB_ERR_ARG, "axis %lld is out of range for rank %d",
                             (long long)axis, rank);
    *out = (int)a;
    return NB_OK;
}

nb_status nb_shape_expect(nb_shape_ctx *c, int i, const nb_shape *want, const char *what)
{
    if (nb_shape_eq(&c->in[i], want)) return NB_OK;
    char buf[96];
    nb_shape_format(c->graph, want, buf, sizeof buf);
    return nb_shape_fail(c, NB_ERR_SHAPE, "needs %s %s; %s", what, buf, nb_shape_desc(c, i));
}

nb_status nb_shape_float_inputs(nb_shape_ctx *c)
{
    for (int i = 0; i < c->n_in; i++) {
        if (c->in_dtype[i] == NB_I32)
            return nb_shape_fail(c, NB_ERR_DTYPE, "needs float inputs; %s is i32",
                                 nb_node_name(nb_node_input(c->node, i)));
        if (c->in_dtype[i] != c->in_dtype[0])
            return nb_shape_fail(c, NB_ERR_DTYPE, "mixes %s and %s inputs",
                                 nb_dtype_name(c->in_dtype[0]), nb_dtype_name(c->in_dtype[i]));
    }
    c->out_dtype = c->n_in ? c->in_dtype[0] : NB_F32;
    return NB_OK;
}

nb_status nb_shape_dim(nb_shape_ctx *c, nb_dim d, nb_sdim *out)
{
    if (!d.sym) {
        if (d.size < 1 && d.size != -1)
            return nb_shape_fail(c, NB_ERR_ARG, "dimension %lld must be >= 1", (long long)d.size);
        *out = nb_sdim_const(d.size);
        return NB_OK;
    }
    int k = nb__sym_find(c->graph, d.sym);
    if (k < 0)
        return nb_shape_fail(c, NB_ERR_SHAPE, "uses dimension '%s', which no input declares", d.sym);
    if (c->sym_value) {
        *out = nb_sdim_const(c->sym_value[k]);
    } else {
        *out = nb_sdim_const(1);
        out->e[k] = 1;
    }
    return NB_OK;
}

nb_status nb_kernel_fail(const nb_kctx *k, const char *fmt, ...)
{
    if (k->err && k->err_cap) {
        int w = snprintf(k->err, k->err_cap, "node '%s': ", nb_node_name(k->node));
        if (w >= 0 && (size_t)w < k->err_cap) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(k->err + w, k->err_cap - (size_t)w, fmt, ap);
            va_end(ap);
        }
    }
    return NB_ERR_RUNTIME;
}

nb_status nb__infer(const nb_graph *g, const nb_node *n, const nb_shape *in, const nb_dtype *in_dt,
                    const int64_t *sym_value, nb_shape *out, nb_dtype *out_dt, char *err,
                    size_t cap)
{
    nb_shape_ctx c;
    memset(&c, 0, sizeof c);
    c.graph = g;
    c.node = n;
    c.n_in = n->n_in;
    c.in = in;
    c.in_dtype = in_dt;
    c.attr = n->attr;
    c.sym_value = sym_value;
    c.out = n->n_in ? in[0] : (nb_shape){0};
    c.out_dtype = n->n_in ? in_dt[0] : NB_F32;
    c.err = err;
    c.err_cap = cap;
    nb_status st = n->op->shape ? n->op->shape(&c) : NB_OK;
    if (st) return st;
    *out = c.out;
    *out_dt = c.out_dtype;
    return NB_OK;
}

/* "N", "2N", "N*T" */
static int format_sdim(const nb_graph *g, nb_sdim d, char *buf, size_t cap)
{
    if (nb_sdim_is_const(d)) return snprintf(buf, cap, "%lld", (long long)d.c);
    size_t len = 0;
    int w = 0;
    if (d.c != 1) w = snprintf(buf, cap, "%lld", (long long)d.c);
    len += (size_t)(w > 0 ? w : 0);
    bool first = true;
    for (int k = 0; k < NB_MAX_SYMS; k++)
        for (int e = 0; e < d.e[k]; e++) {
            const char *name = g && k < g->n_syms ? g->sym[k] : "?";
            w = snprintf(len < cap ? buf + len : NULL, len < cap ? cap - len : 0, "%s%s",
                         first ? "" : "*", name);
            len += (size_t)(w > 0 ? w : 0);
            first = false;
        }
    return (int)len;
}

int nb_shape_format(const nb_graph *g, const nb_shape *s, char *buf, size_t cap)
{
    size_t len = 0;
    int w;
#define PUT(...)                                                                     \
    (w = snprintf(len < cap ? buf + len : NULL, len < cap ? cap - len : 0, __VA_ARGS__), \
     len += (size_t)(w > 0 ? w : 0))
    PUT("[");
    for (int i = 0; i < s->rank; i++) {
        if (i) PUT(", ");
        w = format_sdim(g, s->d[i], len < cap ? buf + len : NULL, len < cap ? cap - len : 0);
        len += (size_t)(w > 0 ? w : 0);
    }
    PUT("]");
#undef PUT
    return (int)len;
}

nb_status nb__bind_shape(const nb_graph *g, const nb_shape *s, const int64_t *sym_value,
                         nb_dims *out, char *err, size_t cap)
{
    out->rank = s->rank;
    for (int i = 0; i < s->rank; i++) {
        int64_t v = s->d[i].c;
        for (int k = 0; k < NB_MAX_SYMS; k++)
            for (int e = 0; e < s->d[i].e[k]; e++) {
                if (sym_value[k] < 1) {
                    snprintf(err, cap, "free dimension '%s' is not bound", g->sym[k]);
                    return NB_ERR_UNBOUND;
                }
                if (__builtin_mul_overflow(v, sym_value[k], &v)) {
                    snprintf(err, cap, "dimension %d overflows with the bound sizes", i);
                    return NB_ERR_OVERFLOW;
                }
            }
        out->d[i] = v;
    }
    return NB_OK;
}

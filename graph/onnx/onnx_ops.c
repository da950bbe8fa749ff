/* The table op_type -> converter (the converters live in onnx_ops_*.c, one
 * small function per ONNX op), and the helpers they share: messages naming
 * the node and op, attributes, inputs. */
#include <stdarg.h>
#include <string.h>

#include "onnx_internal.h"

const ox_op *ox_op_find(const char *op_type)
{
    const struct { const ox_op *ops; size_t n; } tables[] = {
        {ox_ops_elem, ox_n_ops_elem}, {ox_ops_shape, ox_n_ops_shape}, {ox_ops_index, ox_n_ops_index},
        {ox_ops_nn, ox_n_ops_nn}, {ox_ops_reduce, ox_n_ops_reduce},
        {ox_ops_more, ox_n_ops_more}};
    for (size_t t = 0; op_type && t < sizeof tables / sizeof *tables; t++)
        for (size_t i = 0; i < tables[t].n; i++)
            if (!strcmp(tables[t].ops[i].op_type, op_type)) return &tables[t].ops[i];
    return NULL;
}

/* ---- messages ---------------------------------------------------------- */

static void vfail(ox_ctx *c, const char *pre, const char *fmt, va_list ap)
{
    const Onnx__NodeProto *p = c->node;
    int k = snprintf(c->err, sizeof c->err, "%s: ", c->file);
    if (p) {
        const char *nm = p->name && *p->name ? p->name : p->n_output ? p->output[0] : "";
        k += snprintf(c->err + k, sizeof c->err - (size_t)k, "node '%s' (%s): %s", nm,
                      p->op_type ? p->op_type : "", pre);
    } else {
        k += snprintf(c->err + k, sizeof c->err - (size_t)k, "%s", pre);
    }
    if (k < (int)sizeof c->err) vsnprintf(c->err + k, sizeof c->err - (size_t)k, fmt, ap);
}

nb_status ox_fail(ox_ctx *c, nb_status st, const char *fmt, ...)
{
    if (c->st) return c->st;  /* the first error names the root cause */
    va_list ap;
    va_start(ap, fmt);
    vfail(c, "", fmt, ap);
    va_end(ap);
    return c->st = st;
}

nb_status ox_unsupported(ox_ctx *c, const char *fmt, ...)
{
    if (c->st) return c->st;
    va_list ap;
    va_start(ap, fmt);
    vfail(c, "unsupported ", fmt, ap);
    va_end(ap);
    return c->st = NB_ERR_FORMAT;
}

/* A builder that refuses the dtypes is an op nabla lacks for them. */
nb_status ox_graph_fail(ox_ctx *c)
{
    nb_status st = nb_graph_status(c->g);
    const char *msg = nb_graph_error(c->g);
    if (st == NB_ERR_DTYPE) ox_unsupported(c, "dtype: %s", msg);
    else ox_fail(c, st ? st : NB_ERR_FORMAT, "%s", *msg ? msg : "the graph refused a node");
    nb_graph_clear_error(c->g);
    return c->st;
}

/* ---- attributes -------------------------------------------------------- */

const Onnx__AttributeProto *ox_attr(const ox_node_io *io, const char *name)
{
    for (size_t i = 0; i < io->p->n_attribute; i++)
        if (io->p->attribute[i]->name && !strcmp(io->p->attribute[i]->name, name))
            return io->p->attribute[i];
    return NULL;
}

int64_t ox_attr_int(const ox_node_io *io, const char *name, int64_t def)
{
    const Onnx__AttributeProto *a = ox_attr(io, name);
    return a && a->has_i ? a->i : def;
}

double ox_attr_float(const ox_node_io *io, const char *name, double def)
{
    const Onnx__AttributeProto *a = ox_attr(io, name);
    return a && a->has_f ? a->f : def;
}

int ox_attr_ints(const ox_node_io *io, const char *name, int64_t *out, int cap)
{
    const Onnx__AttributeProto *a = ox_attr(io, name);
    if (!a) return -1;
    int n = (int)(a->n_ints < (size_t)cap ? a->n_ints : (size_t)cap);
    for (int i = 0; i < n; i++) out[i] = a->ints[i];
    return a->n_ints > (size_t)cap ? cap + 1 : n;
}

/* ---- inputs ------------------------------------------------------------ */

bool ox_has_in(const ox_node_io *io, int i) { return i >= 0 && i < io->n_in && io->in[i]; }

nb_node *ox_in(ox_ctx *c, ox_node_io *io, int i)
{
    if (!ox_has_in(io, i)) {
        ox_fail(c, NB_ERR_FORMAT, "input %d is missing", i);
        return NULL;
    }
    return ox_node(c, io->in[i]);
}

static const ox_const *known_any(ox_ctx *c, ox_node_io *io, int i, const char *what)
{
    if (!ox_has_in(io, i)) {
        ox_fail(c, NB_ERR_FORMAT, "input %d (%s) is missing", i, what);
        return NULL;
    }
    if (!io->in[i]->has_k) {
        ox_unsupported(c, "%s computed at run time ('%s'; nabla needs it when the model is "
                       "loaded)", what, io->in[i]->name);
        return NULL;
    }
    return &io->in[i]->k;
}

const ox_const *ox_known(ox_ctx *c, ox_node_io *io, int i, const char *what)
{
    const ox_const *k = known_any(c, io, i, what);
    if (k && !k->i) {
        ox_fail(c, NB_ERR_FORMAT, "%s must be integers; '%s' holds floats", what, io->in[i]->name);
        return NULL;
    }
    return k;
}

nb_status ox_known_scalar(ox_ctx *c, ox_node_io *io, int i, double def, double *out)
{
    *out = def;
    if (!ox_has_in(io, i)) return NB_OK;
    const ox_const *k = known_any(c, io, i, "scalar input");
    if (!k) return c->st;
    if (k->n != 1) return ox_unsupported(c, "non-scalar input %d", i);
    *out = k->i ? (double)k->i[0] : k->f[0];
    return NB_OK;
}

nb_status ox_axis(ox_ctx *c, int64_t axis, int rank, int *out)
{
    if (axis < -rank || axis >= (rank ? rank : 1))
        return ox_fail(c, NB_ERR_FORMAT, "axis %lld out of range for rank %d", (long long)axis,
                       rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return NB_OK;
}

void ox_known_strides(const ox_const *src, int64_t *strides)
{
    int64_t s = 1;
    for (int d = src->rank - 1; d >= 0; d--) strides[d] = s, s *= src->shape[d];
}

void ox_known_strided(ox_const *out, const ox_const *src, int64_t base, const int64_t *step)
{
    int64_t o[NB_MAX_DIMS] = {0};
    for (size_t j = 0; j < out->n; j++) {
        int64_t from = base;
        for (int d = 0; d < out->rank; d++) from += o[d] * step[d];
        if (out->i) out->i[j] = src->i[from];
        else out->f[j] = src->f[from];
        if (out->sym && src->sym) out->sym[j] = src->sym[from];
        for (int d = out->rank - 1; d >= 0 && ++o[d] == out->shape[d]; d--) o[d] = 0;  /* next index */
    }
}

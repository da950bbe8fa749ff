/* Ops that gradient rules use to move between shapes:
 *   fill_like(x; value)   a tensor of x's shape filled with value
 *   sum_to(g, x)          g summed back to x's (broadcast-compatible) shape
 *   broadcast_like(g, x)  g broadcast up to x's shape
 * sum_to and broadcast_like are each other's gradient. */
#include "kernel.h"

/* ---- fill_like ---- */

enum { A_VALUE };
static const nb_attr_def fill_attrs[] = {{"value", NB_ATTR_FLOAT, false, {.f = 0}}};

static nb_status fill_shape(nb_shape_ctx *c)
{
    c->out = c->in[0];
    if (c->out_dtype == NB_I32) c->out_dtype = NB_F32;
    return NB_OK;
}

static nb_status fill_fwd(const nb_kctx *k)
{
    size_t n = nb_dims_numel(&k->out_shape);
    double v = k->attr[A_VALUE].f;
    if (k->dtype == NB_F64)
        for (size_t i = 0; i < n; i++) ((double *)k->out)[i] = v;
    else
        for (size_t i = 0; i < n; i++) ((float *)k->out)[i] = (float)v;
    return NB_OK;
}

static const nb_op_case fill_cases[] = {{.in = {"2,3"}, .attrs = {NB_AFLOAT("value", 2)}, .n_attrs = 1}};

const nb_op_def nb_op_fill_like = {
    .name = "fill_like", .min_in = 1, .max_in = 1, .attrs = fill_attrs, .n_attrs = 1,
    .flags = NB_OP_INTERNAL, .shape_only = 1, .no_grad = 1, .shape = fill_shape,
    .forward = fill_fwd, .backward = nb_grad_none, .flops = nb_flops_none, .cases = fill_cases,
    .n_cases = 1, .doc = "x's shape filled with value"};

/* ---- sum_to ---- */

/* like must broadcast to g: right-aligned, each of its dims equal or 1 */
static bool broadcasts_to(const nb_shape *small, const nb_shape *big)
{
    if (small->rank > big->rank) {
        for (int i = 0; i < small->rank - big->rank; i++)
            if (!nb_sdim_is(small->d[i], 1)) return false;
    }
    for (int i = 0; i < big->rank; i++) {
        int j = small->rank - big->rank + i;
        if (j < 0) continue;
        if (!nb_sdim_eq(small->d[j], big->d[i]) && !nb_sdim_is(small->d[j], 1)) return false;
    }
    return true;
}

static nb_status sum_to_shape(nb_shape_ctx *c)
{
    if (!broadcasts_to(&c->in[1], &c->in[0]))
        return nb_shape_fail(c, NB_ERR_SHAPE, "cannot sum %s down to %s", nb_shape_desc(c, 0),
                             nb_shape_desc(c, 1));
    c->out = c->in[1];
    return NB_OK;
}

static nb_status sum_to_fwd(const nb_kctx *k)
{
    nb_reduce_sum(k->in[0], &k->in_shape[0], k->out, &k->out_shape, k->dtype);
    return NB_OK;
}

static nb_status sum_to_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    nb_node *in[2] = {gy, nb_node_input(y, 0)};
    gx[0] = nb_apply(g, &nb_op_broadcast_like, NULL, in, 2, NULL, 0);
    return NB_OK;
}

static const nb_op_case sum_to_cases[] = {
    {.in = {"3,4", "4"}}, {.in = {"2,3,4", "3,1"}}, {.in = {"2,3", ""}}, {.in = {"2,3", "1,2,3"}}};

const nb_op_def nb_op_sum_to = {
    .name = "sum_to", .min_in = 2, .max_in = 2, .flags = NB_OP_INTERNAL, .shape_only = 2,
    .no_grad = 2, .shape = sum_to_shape, .forward = sum_to_fwd, .backward = sum_to_bwd,
    .flops = nb_flops_per_in, .cases = sum_to_cases, .n_cases = NB_NELEMS(sum_to_cases),
    .doc = "g summed back to x's shape (undoes broadcasting)"};

/* ---- broadcast_like ---- */

static nb_status bcast_shape(nb_shape_ctx *c)
{
    if (!broadcasts_to(&c->in[0], &c->in[1]))
        return nb_shape_fail(c, NB_ERR_SHAPE, "cannot broadcast %s to %s", nb_shape_desc(c, 0),
                             nb_shape_desc(c, 1));
    c->out = c->in[1];
    return NB_OK;
}

NB_BINARY_ROWS(copy_a, ((void)b, a))

static nb_status bcast_fwd(const nb_kctx *k)
{
    /* y = a broadcast; the second operand is ignored by the row (its shape is y's) */
    nb_kctx kk = *k;
    const void *in[2] = {k->in[0], k->out};
    kk.in = in;
    return nb_binary_run(&kk, copy_a_f32, copy_a_f64);
}

static nb_status bcast_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    nb_node *in[2] = {gy, nb_node_input(y, 0)};
    gx[0] = nb_apply(g, &nb_op_sum_to, NULL, in, 2, NULL, 0);
    return NB_OK;
}

static const nb_op_case bcast_cases[] = {
    {.in = {"4", "3,4"}}, {.in = {"3,1", "2,3,4"}}, {.in = {"", "2,3"}}};

const nb_op_def nb_op_broadcast_like = {
    .name = "broadcast_like", .min_in = 2, .max_in = 2, .flags = NB_OP_INTERNAL,
    .shape_only = 2, .no_grad = 2, .shape = bcast_shape, .forward = bcast_fwd,
    .backward = bcast_bwd, .flops = nb_flops_none, .cases = bcast_cases,
    .n_cases = NB_NELEMS(bcast_cases), .doc = "g broadcast to x's shape"};

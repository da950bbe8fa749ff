/* Comparisons and selection (issue 9), broadcast as NumPy:
 *   greater(a, b), less(a, b), equal(a, b)   1 where true, else 0
 *   where(c, a, b)                           a where c != 0, else b
 * Comparisons take float or i32 inputs (class ids, argmax results) and give
 * the float dtype of their float inputs, or the graph's float dtype when both
 * are i32; no gradient flows through them (PyTorch's comparisons give bool
 * tensors, which carry none). where's condition may be float or i32 and gets
 * no gradient; a and b get gy where they were chosen and exactly 0 elsewhere. */
#include "kernel.h"

/* ---- dtypes ---- */

/* The model's float dtype, seen from a graph: that of its first float leaf
 * (a model's inputs and params all have it), f32 when there is none. */
static nb_dtype graph_float(const nb_graph *g)
{
    for (size_t i = 0; g && i < g->n_nodes; i++) {
        const nb_node *n = g->nodes[i];
        if (n->kind != NB_NODE_OP && n->dtype != NB_I32) return n->dtype;
    }
    return NB_F32;
}

/* The inputs in `mask` may be i32; the float ones must agree. *out: their float
 * dtype, or the graph's when none is float. */
static nb_status float_of(nb_shape_ctx *c, unsigned mask, nb_dtype *out)
{
    int first = -1;
    for (int i = 0; i < c->n_in; i++) {
        nb_dtype d = c->in_dtype[i];
        if (d == NB_I32 && (mask >> i & 1)) continue;
        if (d == NB_I32)
            return nb_shape_fail(c, NB_ERR_DTYPE, "needs float inputs; %s is i32",
                                 nb_node_name(nb_node_input(c->node, i)));
        if (first >= 0 && d != c->in_dtype[first])
            return nb_shape_fail(c, NB_ERR_DTYPE, "mixes %s and %s inputs",
                                 nb_dtype_name(c->in_dtype[first]), nb_dtype_name(d));
        if (first < 0) first = i;
    }
    *out = first >= 0 ? c->in_dtype[first] : graph_float(c->graph);
    return NB_OK;
}

/* ---- comparisons ---- */

static nb_status compare_shape(nb_shape_ctx *c)
{
    nb_status st = float_of(c, 3, &c->out_dtype);
    return st ? st : nb_shape_broadcast(c, 0, 1, &c->out);
}

NB_BINARY_ROWS(greater, (a > b) ? 1 : 0)
NB_BINARY_ROWS(less, (a < b) ? 1 : 0)
NB_BINARY_ROWS(equal, (a == b) ? 1 : 0)

/* Inputs of mixed dtypes (some i32): each element read as a double, which
 * holds every i32 and f32 exactly. */
typedef struct mixed_ctx {
    const nb_kctx *k;
    const nb_iter *it;
    int cmp;  /* 1 greater, -1 less, 0 equal */
} mixed_ctx;

static void mixed_row(void *ctx, const int64_t *off, int64_t n)
{
    const mixed_ctx *m = ctx;
    const nb_kctx *k = m->k;
    int r = m->it->rank - 1;
    int64_t sa = m->it->stride[1][r], sb = m->it->stride[2][r];
    for (int64_t i = 0; i < n; i++) {
        double a = nb_load(k->in[0], k->in_dtype[0], (size_t)(off[1] + i * sa));
        double b = nb_load(k->in[1], k->in_dtype[1], (size_t)(off[2] + i * sb));
        bool t = m->cmp > 0 ? a > b : m->cmp < 0 ? a < b : a == b;
        size_t j = (size_t)(off[0] + i);
        if (k->dtype == NB_F64) ((double *)k->out)[j] = t;
        else ((float *)k->out)[j] = t;
    }
}

static nb_status compare_run(const nb_kctx *k, int cmp, nb_binrow f32, nb_binrow f64)
{
    if (k->in_dtype[0] == k->dtype && k->in_dtype[1] == k->dtype) return nb_binary_run(k, f32, f64);
    nb_iter it;
    const nb_dims *ops[3] = {&k->out_shape, &k->in_shape[0], &k->in_shape[1]};
    nb_iter_init(&it, &k->out_shape, 3, ops);
    mixed_ctx m = {k, &it, cmp};
    nb_iter_rows(&it, &m, mixed_row);
    return NB_OK;
}

static nb_status greater_fwd(const nb_kctx *k) { return compare_run(k, 1, greater_f32, greater_f64); }
static nb_status less_fwd(const nb_kctx *k) { return compare_run(k, -1, less_f32, less_f64); }
static nb_status equal_fwd(const nb_kctx *k) { return compare_run(k, 0, equal_f32, equal_f64); }

/* ---- where ---- */

/* broadcast(c, a, b), right-aligned; a symbol matches only 1 or itself */
static nb_status where_shape(nb_shape_ctx *c)
{
    nb_dtype dt;
    nb_status st = float_of(c, 1, &dt);
    if (st) return st;
    c->out_dtype = dt;
    nb_shape r = {0};
    for (int k = 0; k < 3; k++) r.rank = c->in[k].rank > r.rank ? c->in[k].rank : r.rank;
    for (int i = 0; i < r.rank; i++) {
        r.d[i] = nb_sdim_const(1);
        for (int k = 0; k < 3; k++) {
            int j = c->in[k].rank - r.rank + i;
            nb_sdim d = j >= 0 ? c->in[k].d[j] : nb_sdim_const(1);
            if (nb_sdim_is(r.d[i], 1)) r.d[i] = d;
            else if (!nb_sdim_is(d, 1) && !nb_sdim_eq(d, r.d[i]))
                return nb_shape_fail(c, NB_ERR_SHAPE, "cannot broadcast: %s, %s, %s",
                                     nb_shape_desc(c, 0), nb_shape_desc(c, 1), nb_shape_desc(c, 2));
        }
    }
    c->out = r;
    return NB_OK;
}

typedef struct where_ctx {
    const nb_kctx *k;
    int64_t sc, sa, sb;  /* inner strides */
} where_ctx;

#define WHERE_ROW(NAME, T, C)                                                            \
    static void NAME(void *ctx, const int64_t *off, int64_t n)                          \
    {                                                                                   \
        const where_ctx *w = ctx;                                                       \
        const C *c = (const C *)w->k->in[0] + off[1];                                   \
        const T *a = (const T *)w->k->in[1] + off[2], *b = (const T *)w->k->in[2] + off[3]; \
        T *y = (T *)w->k->out + off[0];                                                 \
        for (int64_t i = 0; i < n; i++) y[i] = c[i * w->sc] != 0 ? a[i * w->sa] : b[i * w->sb]; \
    }
WHERE_ROW(where_f32, float, float)
WHERE_ROW(where_f64, double, double)
WHERE_ROW(where_i32_f32, float, int32_t)
WHERE_ROW(where_i32_f64, double, int32_t)

static nb_status where_fwd(const nb_kctx *k)
{
    nb_iter it;
    const nb_dims *ops[4] = {&k->out_shape, &k->in_shape[0], &k->in_shape[1], &k->in_shape[2]};
    nb_iter_init(&it, &k->out_shape, 4, ops);
    int r = it.rank - 1;
    where_ctx w = {k, it.stride[1][r], it.stride[2][r], it.stride[3][r]};
    bool ids = k->in_dtype[0] == NB_I32, f64 = k->dtype == NB_F64;
    nb_iter_rows(&it, &w, ids ? (f64 ? where_i32_f64 : where_i32_f32) : (f64 ? where_f64 : where_f32));
    return NB_OK;
}

/* gy goes to the chosen input, an exact 0 to the other (a select, so an inf
 * or NaN gy never leaks into the side not chosen) */
static nb_status where_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    nb_node *c = nb_node_input(y, 0);
    nb_node *zero = nb_apply(g, &nb_op_fill_like, NULL, &gy, 1, NULL, 0);
    if (nb_needs_grad(needs, 1)) gx[1] = nb_where(g, c, gy, zero);
    if (nb_needs_grad(needs, 2)) gx[2] = nb_where(g, c, zero, gy);
    return NB_OK;
}

/* ---- definitions ---- */

/* random floats never tie (equal is then 0 everywhere, still a check of its
 * zero gradient); an i32 case mixes ids with floats (two i32 inputs would
 * give f32 in gradcheck's f64 graph: tests/test_ops_elem.c checks those) */
static const nb_op_case compare_cases[] = {
    {.in = {"3,4", "3,4"}},
    {.in = {"2,3,4", "4"}},
    {.in = {"3,1", "1,4"}},
    {.in = {"", "2,3"}},
    {.in = {"i32:2,3", "3"}, .lo = 0, .hi = 3, .classes = 3},
};
static const nb_op_case where_cases[] = {
    {.in = {"3,4", "3,4", "3,4"}},
    {.in = {"i32:3,1", "1,4", "3,4"}, .classes = 2},
    {.in = {"i32:2,1,3", "4,1", ""}, .classes = 3},
    {.in = {"", "2,3", "3"}},
    {.in = {"1", "1", "1"}},
};

#define COMPARE_OP(NAME, DOC)                                                             \
    const nb_op_def nb_op_##NAME = {                                                      \
        .name = #NAME, .min_in = 2, .max_in = 2, .shape = compare_shape,                  \
        .flags = NB_OP_INPLACE,                                                           \
        .forward = NAME##_fwd, .backward = nb_grad_none, .flops = nb_flops_per_out,       \
        .cases = compare_cases, .n_cases = NB_NELEMS(compare_cases), .doc = DOC}

COMPARE_OP(greater, "1 where a > b, else 0; broadcast; no gradient");
COMPARE_OP(less, "1 where a < b, else 0; broadcast; no gradient");
COMPARE_OP(equal, "1 where a == b, else 0; broadcast; no gradient");

const nb_op_def nb_op_where = {
    .name = "where", .min_in = 3, .max_in = 3, .no_grad = 1, .shape = where_shape,
    .flags = NB_OP_INPLACE,
    .forward = where_fwd, .backward = where_bwd, .flops = nb_flops_per_out,
    .cases = where_cases, .n_cases = NB_NELEMS(where_cases),
    .doc = "in c, a, b: a where c != 0, else b; broadcast; no gradient to c"};

/* ---- typed helpers ---- */

static nb_node *binary(nb_graph *g, const nb_op_def *op, nb_node *a, nb_node *b)
{
    return nb_apply(g, op, NULL, (nb_node *[]){a, b}, 2, NULL, 0);
}

nb_node *nb_greater(nb_graph *g, nb_node *a, nb_node *b) { return binary(g, &nb_op_greater, a, b); }
nb_node *nb_less(nb_graph *g, nb_node *a, nb_node *b) { return binary(g, &nb_op_less, a, b); }
nb_node *nb_equal(nb_graph *g, nb_node *a, nb_node *b) { return binary(g, &nb_op_equal, a, b); }

nb_node *nb_where(nb_graph *g, nb_node *c, nb_node *a, nb_node *b)
{
    return nb_apply(g, &nb_op_where, NULL, (nb_node *[]){c, a, b}, 3, NULL, 0);
}

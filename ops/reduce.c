/* Reductions sum, mean, max, min over axes (all by default), with keepdims,
 * and their gradient ops:
 *   unreduce(gy, x)         gy broadcast back over the reduced axes of x
 *                           (divided by the count for mean)
 *   max_backward(gy, x, y)  gy sent to the elements of x equal to y (the
 *                           maxima, or minima), split evenly among ties
 * Every kernel walks the input with the output's keepdims shape broadcast
 * against it, so one iteration serves all axis sets (reduce_sum.c sums).
 * max and min propagate NaN as PyTorch does: a NaN in a reduced set is its
 * result. max_backward is linear in gy with the tie mask held constant (as
 * PyTorch holds it), so it differentiates again: second order works. */
#include <string.h>

#include "reduce.h"

enum { A_AXIS = NB_RED_AXIS, A_KEEPDIMS = NB_RED_KEEPDIMS, A_MEAN };

const nb_attr_def nb_reduce_attrs[2] = {
    {"axis", NB_ATTR_INTS, false, NB_REDUCE_ALL_AXES},
    {"keepdims", NB_ATTR_BOOL, false, {0}},
};
static const nb_attr_def unreduce_attrs[] = {
    {"axis", NB_ATTR_INTS, false, NB_REDUCE_ALL_AXES},
    {"keepdims", NB_ATTR_BOOL, false, {0}},
    {"mean", NB_ATTR_BOOL, false, {0}},
};

/* Which axes of a rank-r input are reduced; error on out-of-range or repeats,
 * and on an axis list given empty (write none to reduce all). */
static nb_status reduced_axes(nb_shape_ctx *c, const nb_attr *axis, int rank, bool *red)
{
    memset(red, 0, NB_MAX_DIMS * sizeof *red);
    if (axis->n == 0 && axis->f == 0)
        return nb_shape_fail(c, NB_ERR_ARG, "axis [] names no axis; leave axis out to reduce "
                             "over all axes");
    if (axis->n == 0) {
        for (int i = 0; i < rank; i++) red[i] = true;
        return NB_OK;
    }
    for (int j = 0; j < axis->n; j++) {
        int a;
        nb_status st = nb_shape_axis(c, axis->i[j], rank, &a);
        if (st) return st;
        if (red[a]) return nb_shape_fail(c, NB_ERR_ARG, "axis %d is listed twice", a);
        red[a] = true;
    }
    return NB_OK;
}

nb_status nb_reduce_shape(nb_shape_ctx *c)
{
    bool red[NB_MAX_DIMS];
    nb_status st = nb_shape_float_inputs(c);
    if (!st) st = reduced_axes(c, &c->attr[A_AXIS], c->in[0].rank, red);
    if (st) return st;
    nb_shape out = {0};
    for (int i = 0; i < c->in[0].rank; i++) {
        if (!red[i])
            out.d[out.rank++] = c->in[0].d[i];
        else if (c->attr[A_KEEPDIMS].i[0])
            out.d[out.rank++] = nb_sdim_const(1);
    }
    c->out = out;
    return NB_OK;
}

nb_dims nb_reduce_keep(const nb_dims *in, const nb_attr *axis)
{
    nb_dims k = *in;
    for (int j = 0; j < axis->n; j++) k.d[axis->i[j] < 0 ? axis->i[j] + in->rank : axis->i[j]] = 1;
    if (axis->n == 0)
        for (int i = 0; i < in->rank; i++) k.d[i] = 1;
    return k;
}

/* ---- forward ---- */

/* Keeps the larger (max) or smaller (min); a NaN, once met, stays. */
#define EXTREME_ROWS(T)                                                                  \
    static void max_row_##T(void *ctx, const int64_t *off, int64_t n)                    \
    {                                                                                    \
        nb_red_walk *w = ctx;                                                            \
        const T *x = (const T *)w->x + off[0];                                           \
        T *y = (T *)w->y + off[1];                                                       \
        for (int64_t i = 0; i < n; i++) {                                                \
            T *t = y + i * w->sy;                                                        \
            if (x[i] > *t || x[i] != x[i]) *t = *t != *t ? *t : x[i];                    \
        }                                                                                \
    }                                                                                    \
    static void min_row_##T(void *ctx, const int64_t *off, int64_t n)                    \
    {                                                                                    \
        nb_red_walk *w = ctx;                                                            \
        const T *x = (const T *)w->x + off[0];                                           \
        T *y = (T *)w->y + off[1];                                                       \
        for (int64_t i = 0; i < n; i++) {                                                \
            T *t = y + i * w->sy;                                                        \
            if (x[i] < *t || x[i] != x[i]) *t = *t != *t ? *t : x[i];                    \
        }                                                                                \
    }                                                                                    \
    /* count ties into y (a count per output), from x and the extremes z */              \
    static void tie_row_##T(void *ctx, const int64_t *off, int64_t n)                    \
    {                                                                                    \
        nb_red_walk *w = ctx;                                                            \
        const T *x = (const T *)w->x + off[0], *m = (const T *)w->z + off[1];            \
        T *cnt = (T *)w->y + off[1];                                                     \
        for (int64_t i = 0; i < n; i++) cnt[i * w->sy] += x[i] == m[i * w->sy];          \
    }                                                                                    \
    /* dx = share where x is an extreme: a product, not a choice, so that a NaN      \
     * extreme (no ties, share gy / 0) gives NaN as PyTorch's amax does */             \
    static void maxb_row_##T(void *ctx, const int64_t *off, int64_t n)                   \
    {                                                                                    \
        nb_red_walk *w = ctx;                                                            \
        const T *x = (const T *)w->x + off[0], *m = (const T *)w->z + off[1];            \
        const T *share = (const T *)w->y + off[1];                                       \
        T *dx = (T *)w->dx + off[0];                                                     \
        for (int64_t i = 0; i < n; i++)                                                  \
            dx[i] = (T)(x[i] == m[i * w->sy]) * share[i * w->sy];                        \
    }
EXTREME_ROWS(float)
EXTREME_ROWS(double)

static nb_status sum_fwd(const nb_kctx *k)
{
    nb_dims ks = nb_reduce_keep(&k->in_shape[0], &k->attr[A_AXIS]);
    nb_reduce_sum(k->in[0], &k->in_shape[0], k->out, &ks, k->dtype);
    return NB_OK;
}

static void scale_by(void *y, size_t n, double s, nb_dtype dt)
{
    if (dt == NB_F64)
        for (size_t i = 0; i < n; i++) ((double *)y)[i] *= s;
    else
        for (size_t i = 0; i < n; i++) ((float *)y)[i] *= (float)s;
}

static nb_status mean_fwd(const nb_kctx *k)
{
    sum_fwd(k);
    size_t n_out = nb_dims_numel(&k->out_shape);
    scale_by(k->out, n_out, (double)n_out / (double)nb_dims_numel(&k->in_shape[0]), k->dtype);
    return NB_OK;
}

static void fill(void *y, size_t n, double v, nb_dtype dt)
{
    if (dt == NB_F64)
        for (size_t i = 0; i < n; i++) ((double *)y)[i] = v;
    else
        for (size_t i = 0; i < n; i++) ((float *)y)[i] = (float)v;
}

/* The max (sign 1) or min (-1) of x into out, both shaped by k. */
static void extreme(const nb_kctx *k, const void *x, void *out, int sign)
{
    nb_dims ks = nb_reduce_keep(&k->in_shape[0], &k->attr[A_AXIS]);
    fill(out, nb_dims_numel(&ks), -sign * INFINITY, k->dtype);
    nb_red_walk w = {.x = x, .y = out};
    bool f64 = k->dtype == NB_F64;
    nb_reduce_walk(&w, &k->in_shape[0], &ks,
                   sign > 0 ? (f64 ? max_row_double : max_row_float)
                            : (f64 ? min_row_double : min_row_float));
}

static nb_status max_fwd(const nb_kctx *k)
{
    extreme(k, k->in[0], k->out, 1);
    return NB_OK;
}

static nb_status min_fwd(const nb_kctx *k)
{
    extreme(k, k->in[0], k->out, -1);
    return NB_OK;
}

/* ---- gradients ---- */

nb_node *nb_reduce_unreduce(nb_graph *g, nb_node *gy, nb_node *x, const nb_node *y, bool mean)
{
    nb_attr a[3] = {*nb__attr(y, A_AXIS), *nb__attr(y, A_KEEPDIMS), NB_ABOOL("mean", mean)};
    return nb_apply(g, &nb_op_unreduce, NULL, (nb_node *[]){gy, x}, 2, a, 3);
}

static nb_status sum_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = nb_reduce_unreduce(g, gy, nb_node_input(y, 0), y, false);
    return NB_OK;
}

static nb_status mean_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = nb_reduce_unreduce(g, gy, nb_node_input(y, 0), y, true);
    return NB_OK;
}

/* max_backward(gy, x, y) with the attributes of the reduction (y itself, or
 * the max_backward node being differentiated) */
static nb_node *to_extremes(nb_graph *g, nb_node *gy, nb_node *x, nb_node *y, const nb_node *red)
{
    nb_attr a[2] = {*nb__attr(red, A_AXIS), *nb__attr(red, A_KEEPDIMS)};
    return nb_apply(g, &nb_op_max_backward, NULL, (nb_node *[]){gy, x, y}, 3, a, 2);
}

/* max and min alike: x == y marks the extremes */
static nb_status extreme_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = to_extremes(g, gy, nb_node_input(y, 0), y, y);
    return NB_OK;
}

/* out = gy * M with M = mask / ties fixed: d/dgy of sum(G * out) is the sum
 * of G * M over the reduced axes, M being max_backward of ones */
static nb_status max_backward_bwd(nb_graph *g, nb_node *y, nb_node *G, uint64_t needs, nb_node **gx)
{
    (void)needs;
    nb_node *gy = nb_node_input(y, 0), *x = nb_node_input(y, 1), *m = nb_node_input(y, 2);
    nb_node *one = nb_apply(g, &nb_op_fill_like, NULL, &gy, 1, (nb_attr[]){NB_AFLOAT("value", 1)}, 1);
    nb_node *mask = to_extremes(g, one, x, m, y);
    const nb_attr *axis = nb__attr(y, A_AXIS);
    nb_attr a[2] = {*axis, *nb__attr(y, A_KEEPDIMS)};
    gx[0] = nb_apply(g, &nb_op_sum, NULL, (nb_node *[]){nb_mul(g, G, mask)}, 1, a, 2);
    return NB_OK;
}

/* unreduce: out = x's shape; gy must be the reduction's output shape */
static nb_status unreduce_shape(nb_shape_ctx *c)
{
    c->out = c->in[1];
    c->out_dtype = c->in_dtype[0];
    return NB_OK;
}

NB_BINARY_ROWS(first, ((void)b, a))

static nb_status unreduce_fwd(const nb_kctx *k)
{
    nb_dims ks = nb_reduce_keep(&k->out_shape, &k->attr[A_AXIS]);
    nb_kctx kk = *k;
    nb_dims shapes[2] = {ks, k->out_shape};
    const void *in[2] = {k->in[0], k->out};
    kk.in = in;
    kk.in_shape = shapes;
    nb_binary_run(&kk, first_f32, first_f64);
    if (k->attr[A_MEAN].i[0])
        scale_by(k->out, nb_dims_numel(&k->out_shape),
                 (double)nb_dims_numel(&ks) / (double)nb_dims_numel(&k->out_shape), k->dtype);
    return NB_OK;
}

static nb_status unreduce_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    nb_attr a[2] = {*nb__attr(y, A_AXIS), *nb__attr(y, A_KEEPDIMS)};
    const nb_op_def *op = nb__attr(y, A_MEAN)->i[0] ? &nb_op_mean : &nb_op_sum;
    gx[0] = nb_apply(g, op, NULL, (nb_node *[]){gy}, 1, a, 2);
    return NB_OK;
}

/* max_backward(gy, x, y): out = x's shape */
static nb_status max_backward_shape(nb_shape_ctx *c)
{
    c->out = c->in[1];
    return NB_OK;
}

static size_t max_backward_work(const nb_kctx *k)
{
    return nb_dims_numel(&k->in_shape[2]) * nb_dtype_size(k->dtype);
}

static nb_status max_backward_fwd(const nb_kctx *k)
{
    nb_dims ks = nb_reduce_keep(&k->out_shape, &k->attr[A_AXIS]);
    size_t n = nb_dims_numel(&ks);
    bool f64 = k->dtype == NB_F64;
    memset(k->work, 0, n * nb_dtype_size(k->dtype));
    nb_red_walk w = {.x = k->in[1], .y = k->work, .z = k->in[2], .dx = k->out};
    nb_reduce_walk(&w, &k->out_shape, &ks, f64 ? tie_row_double : tie_row_float);
    for (size_t i = 0; i < n; i++)  /* each extreme's share: gy / ties */
        if (f64)
            ((double *)k->work)[i] = ((const double *)k->in[0])[i] / ((double *)k->work)[i];
        else
            ((float *)k->work)[i] = ((const float *)k->in[0])[i] / ((float *)k->work)[i];
    nb_reduce_walk(&w, &k->out_shape, &ks, f64 ? maxb_row_double : maxb_row_float);
    return NB_OK;
}

#define AXES(...) {.name = "axis", .type = NB_ATTR_INTS, .n = NB_NELEMS(((int64_t[]){__VA_ARGS__})), .i = {__VA_ARGS__}}
#define KEEP NB_ABOOL("keepdims", 1)
static const nb_op_case reduce_cases[] = {
    {.in = {"3,4"}},
    {.in = {"3,4"}, .attrs = {AXES(1)}, .n_attrs = 1},
    {.in = {"2,3,4"}, .attrs = {AXES(0, 2), KEEP}, .n_attrs = 2},
    {.in = {"2,3,4"}, .attrs = {AXES(-1)}, .n_attrs = 1},
    {.in = {"2,3,4"}, .attrs = {AXES(1)}, .n_attrs = 1},
    {.in = {"2,3,4"}, .attrs = {AXES(0, 1), KEEP}, .n_attrs = 2},
    {.in = {"1,5"}, .attrs = {AXES(0)}, .n_attrs = 1},
    {.in = {"3,1"}, .attrs = {AXES(1), KEEP}, .n_attrs = 2},
    {.in = {"5"}, .attrs = {KEEP}, .n_attrs = 1},
    {.in = {""}},
};
/* Every input equal (lo = hi): every element ties, so every share is nonzero. */
static const nb_op_case max_backward_cases[] = {
    {.in = {"3", "3,4", "3"}, .lo = 0.5, .hi = 0.5, .attrs = {AXES(1)}, .n_attrs = 1},
    {.in = {"", "2,3", ""}, .lo = 0.5, .hi = 0.5},
    {.in = {"1,3,1", "2,3,4", "1,3,1"}, .lo = 0.5, .hi = 0.5, .attrs = {AXES(0, 2), KEEP}, .n_attrs = 2},
};

#define REDUCE_OP(NAME, FWD, BWD, DOC)                                                 \
    const nb_op_def nb_op_##NAME = {                                                   \
        .name = #NAME, .min_in = 1, .max_in = 1, .attrs = nb_reduce_attrs, .n_attrs = 2, \
        .shape = nb_reduce_shape, .forward = FWD, .backward = BWD,                     \
        .flops = nb_flops_per_in, .cases = reduce_cases,                               \
        .n_cases = NB_NELEMS(reduce_cases), .doc = DOC}
REDUCE_OP(sum, sum_fwd, sum_bwd, "sum over axes");
REDUCE_OP(mean, mean_fwd, mean_bwd, "mean over axes");
REDUCE_OP(max, max_fwd, extreme_bwd, "maximum over axes (gradient split among ties; NaN wins)");
REDUCE_OP(min, min_fwd, extreme_bwd, "minimum over axes (gradient split among ties; NaN wins)");

static const nb_op_case unreduce_cases[] = {
    {.in = {"3", "3,4"}, .attrs = {AXES(1)}, .n_attrs = 1},
    {.in = {"", "2,3"}, .attrs = {NB_ABOOL("mean", 1)}, .n_attrs = 1},
    {.in = {"1,3,1", "2,3,4"}, .attrs = {AXES(0, 2), KEEP, NB_ABOOL("mean", 1)}, .n_attrs = 3},
};
const nb_op_def nb_op_unreduce = {
    .name = "unreduce", .min_in = 2, .max_in = 2, .attrs = unreduce_attrs, .n_attrs = 3,
    .flags = NB_OP_INTERNAL, .shape_only = 2, .no_grad = 2, .shape = unreduce_shape,
    .forward = unreduce_fwd, .backward = unreduce_bwd, .flops = nb_flops_per_out,
    .cases = unreduce_cases, .n_cases = NB_NELEMS(unreduce_cases),
    .doc = "gradient of sum/mean: gy broadcast over the reduced axes"};
const nb_op_def nb_op_max_backward = {
    .name = "max_backward", .min_in = 3, .max_in = 3, .attrs = nb_reduce_attrs, .n_attrs = 2,
    .flags = NB_OP_INTERNAL, .no_grad = 6, .shape = max_backward_shape,
    .forward = max_backward_fwd, .backward = max_backward_bwd, .flops = nb_flops_per_out,
    .workspace = max_backward_work, .cases = max_backward_cases,
    .n_cases = NB_NELEMS(max_backward_cases),
    .doc = "gradient of max and min: gy to the elements equal to y, split among ties"};

nb_node *nb_reduce_node(nb_graph *g, const nb_op_def *op, nb_node *a, const int64_t *axes,
                        int n_axes, bool keepdims)
{
    nb_attr at[2] = {NB_REDUCE_ALL_AXES, NB_ABOOL("keepdims", keepdims)};
    at[0].n = n_axes;
    if (n_axes < 0 || n_axes > NB_MAX_DIMS) n_axes = at[0].n = NB_MAX_DIMS + 1;  /* rejected by nb_op */
    else if (n_axes) memcpy(at[0].i, axes, (size_t)n_axes * sizeof *axes);
    return nb_apply(g, op, NULL, (nb_node *[]){a}, 1, at, 2);
}

nb_node *nb_sum(nb_graph *g, nb_node *a, const int64_t *axes, int n_axes, bool keepdims)
{
    return nb_reduce_node(g, &nb_op_sum, a, axes, n_axes, keepdims);
}
nb_node *nb_mean(nb_graph *g, nb_node *a, const int64_t *axes, int n_axes, bool keepdims)
{
    return nb_reduce_node(g, &nb_op_mean, a, axes, n_axes, keepdims);
}
nb_node *nb_max(nb_graph *g, nb_node *a, const int64_t *axes, int n_axes, bool keepdims)
{
    return nb_reduce_node(g, &nb_op_max, a, axes, n_axes, keepdims);
}
nb_node *nb_min(nb_graph *g, nb_node *a, const int64_t *axes, int n_axes, bool keepdims)
{
    return nb_reduce_node(g, &nb_op_min, a, axes, n_axes, keepdims);
}

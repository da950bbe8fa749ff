/* Reductions sum, mean, max over axes (all by default), with keepdims, and
 * their gradient ops:
 *   unreduce(gy, x)         gy broadcast back over the reduced axes of x
 *                           (divided by the count for mean)
 *   max_backward(gy, x, y)  gy sent to the maxima of x, split evenly among ties
 * Every kernel walks the input with the output's keepdims shape broadcast
 * against it, so one iteration serves all axis sets. */
#include <string.h>

#include "kernel.h"

enum { A_AXIS, A_KEEPDIMS, A_MEAN };

static const nb_attr_def reduce_attrs[] = {
    {"axis", NB_ATTR_INTS, false, {0}},
    {"keepdims", NB_ATTR_BOOL, false, {0}},
};
static const nb_attr_def unreduce_attrs[] = {
    {"axis", NB_ATTR_INTS, false, {0}},
    {"keepdims", NB_ATTR_BOOL, false, {0}},
    {"mean", NB_ATTR_BOOL, false, {0}},
};

/* Which axes of a rank-r input are reduced; error on out-of-range or repeats. */
static nb_status reduced_axes(nb_shape_ctx *c, const nb_attr *axis, int rank, bool *red)
{
    memset(red, 0, NB_MAX_DIMS * sizeof *red);
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

static nb_status reduce_shape(nb_shape_ctx *c)
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

/* The keepdims form of the output (reduced axes as 1) for bound shapes. */
static nb_dims keep_shape(const nb_dims *in, const nb_attr *axis)
{
    nb_dims k = *in;
    for (int j = 0; j < axis->n; j++) k.d[axis->i[j] < 0 ? axis->i[j] + in->rank : axis->i[j]] = 1;
    if (axis->n == 0)
        for (int i = 0; i < in->rank; i++) k.d[i] = 1;
    return k;
}

/* ---- forward: one row walker for sum and max ---- */

typedef struct walk {
    const void *x;   /* the big operand */
    void *y;         /* the keepdims-shaped operand */
    const void *z;   /* a second keepdims-shaped operand (max_backward's gy) */
    void *dx;        /* a second big operand (max_backward's output) */
    int64_t sy;      /* y's inner stride: 0 (reduced) or 1 */
} walk;

/* Sums with 8 partial sums: the compiler may vectorise this (a single running
 * sum it may not reorder), and it is more accurate. Same order every run. */
#define SUM_KERNEL(T)                                                                    \
    static T sum_##T(const T *restrict x, int64_t n)                                     \
    {                                                                                    \
        T p[8] = {0};                                                                    \
        int64_t i = 0;                                                                   \
        for (; i + 8 <= n; i += 8)                                                       \
            for (int j = 0; j < 8; j++) p[j] += x[i + j];                                \
        T s = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));         \
        for (; i < n; i++) s += x[i];                                                    \
        return s;                                                                        \
    }
SUM_KERNEL(float)
SUM_KERNEL(double)

#define REDUCE_ROWS(T)                                                                   \
    static void sum_row_##T(void *ctx, const int64_t *off, int64_t n)                    \
    {                                                                                    \
        walk *w = ctx;                                                                   \
        const T *x = (const T *)w->x + off[0];                                           \
        T *y = (T *)w->y + off[1];                                                       \
        if (w->sy == 0) {                                                                \
            y[0] += sum_##T(x, n);                                                       \
        } else {                                                                         \
            for (int64_t i = 0; i < n; i++) y[i] += x[i];                                \
        }                                                                                \
    }                                                                                    \
    static void max_row_##T(void *ctx, const int64_t *off, int64_t n)                    \
    {                                                                                    \
        walk *w = ctx;                                                                   \
        const T *x = (const T *)w->x + off[0];                                           \
        T *y = (T *)w->y + off[1];                                                       \
        for (int64_t i = 0; i < n; i++) {                                                \
            T *t = y + i * w->sy;                                                        \
            if (x[i] > *t) *t = x[i];                                                    \
        }                                                                                \
    }                                                                                    \
    /* count ties into y (a count per output), from x and the maxima z */                \
    static void tie_row_##T(void *ctx, const int64_t *off, int64_t n)                    \
    {                                                                                    \
        walk *w = ctx;                                                                   \
        const T *x = (const T *)w->x + off[0], *m = (const T *)w->z + off[1];            \
        T *cnt = (T *)w->y + off[1];                                                     \
        for (int64_t i = 0; i < n; i++) cnt[i * w->sy] += x[i] == m[i * w->sy];          \
    }
REDUCE_ROWS(float)
REDUCE_ROWS(double)

/* Walks x (shape xs) against y (keepdims shape ys). */
static void walk_rows(walk *w, const nb_dims *xs, const nb_dims *ys,
                      void (*row)(void *, const int64_t *, int64_t))
{
    nb_iter it;
    const nb_dims *ops[2] = {xs, ys};
    nb_iter_init(&it, xs, 2, ops);
    w->sy = it.stride[1][it.rank - 1];
    nb_iter_rows(&it, w, row);
}

void nb_reduce_sum(const void *x, const nb_dims *xs, void *y, const nb_dims *ys, nb_dtype dt)
{
    walk w = {.x = x, .y = y};
    memset(y, 0, nb_dims_numel(ys) * nb_dtype_size(dt));
    walk_rows(&w, xs, ys, dt == NB_F64 ? sum_row_double : sum_row_float);
}

static nb_status sum_fwd(const nb_kctx *k)
{
    nb_dims ks = keep_shape(&k->in_shape[0], &k->attr[A_AXIS]);
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

static nb_status max_fwd(const nb_kctx *k)
{
    nb_dims ks = keep_shape(&k->in_shape[0], &k->attr[A_AXIS]);
    size_t n = nb_dims_numel(&ks);
    if (k->dtype == NB_F64)
        for (size_t i = 0; i < n; i++) ((double *)k->out)[i] = -INFINITY;
    else
        for (size_t i = 0; i < n; i++) ((float *)k->out)[i] = -INFINITY;
    walk w = {.x = k->in[0], .y = k->out};
    walk_rows(&w, &k->in_shape[0], &ks, k->dtype == NB_F64 ? max_row_double : max_row_float);
    return NB_OK;
}

/* ---- gradients ---- */

static nb_node *unreduce(nb_graph *g, nb_node *gy, nb_node *x, const nb_node *y, bool mean)
{
    nb_attr a[3] = {*nb__attr(y, A_AXIS), *nb__attr(y, A_KEEPDIMS), NB_ABOOL("mean", mean)};
    return nb_apply(g, &nb_op_unreduce, NULL, (nb_node *[]){gy, x}, 2, a, 3);
}

static nb_status sum_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = unreduce(g, gy, nb_node_input(y, 0), y, false);
    return NB_OK;
}

static nb_status mean_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = unreduce(g, gy, nb_node_input(y, 0), y, true);
    return NB_OK;
}

static nb_status max_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    nb_attr a[2] = {*nb__attr(y, A_AXIS), *nb__attr(y, A_KEEPDIMS)};
    nb_node *in[3] = {gy, nb_node_input(y, 0), y};
    gx[0] = nb_apply(g, &nb_op_max_backward, NULL, in, 3, a, 2);
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
    nb_dims ks = keep_shape(&k->out_shape, &k->attr[A_AXIS]);
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

#define MAXB_ROW(T)                                                                      \
    static void maxb_row_##T(void *ctx, const int64_t *off, int64_t n)                   \
    {                                                                                    \
        walk *w = ctx;                                                                   \
        const T *x = (const T *)w->x + off[0], *m = (const T *)w->z + off[1];            \
        const T *share = (const T *)w->y + off[1];                                       \
        T *dx = (T *)w->dx + off[0];                                                     \
        for (int64_t i = 0; i < n; i++) dx[i] = x[i] == m[i * w->sy] ? share[i * w->sy] : 0; \
    }
MAXB_ROW(float)
MAXB_ROW(double)

static size_t max_backward_work(const nb_kctx *k)
{
    return nb_dims_numel(&k->in_shape[2]) * nb_dtype_size(k->dtype);
}

static nb_status max_backward_fwd(const nb_kctx *k)
{
    nb_dims ks = keep_shape(&k->out_shape, &k->attr[A_AXIS]);
    size_t n = nb_dims_numel(&ks);
    bool f64 = k->dtype == NB_F64;
    memset(k->work, 0, n * nb_dtype_size(k->dtype));
    walk w = {.x = k->in[1], .y = k->work, .z = k->in[2], .dx = k->out};
    walk_rows(&w, &k->out_shape, &ks, f64 ? tie_row_double : tie_row_float);
    for (size_t i = 0; i < n; i++)  /* each maximum's share: gy / ties */
        if (f64)
            ((double *)k->work)[i] = ((const double *)k->in[0])[i] / ((double *)k->work)[i];
        else
            ((float *)k->work)[i] = ((const float *)k->in[0])[i] / ((float *)k->work)[i];
    walk_rows(&w, &k->out_shape, &ks, f64 ? maxb_row_double : maxb_row_float);
    return NB_OK;
}


#define AXES(...) {.name = "axis", .type = NB_ATTR_INTS, .n = NB_NELEMS(((int64_t[]){__VA_ARGS__})), .i = {__VA_ARGS__}}
static const nb_op_case reduce_cases[] = {
    {.in = {"3,4"}},
    {.in = {"3,4"}, .attrs = {AXES(1)}, .n_attrs = 1},
    {.in = {"2,3,4"}, .attrs = {AXES(0, 2), NB_ABOOL("keepdims", 1)}, .n_attrs = 2},
    {.in = {"2,3,4"}, .attrs = {AXES(-1)}, .n_attrs = 1},
    {.in = {"1,5"}, .attrs = {AXES(0)}, .n_attrs = 1},
    {.in = {""}},
};

const nb_op_def nb_op_sum = {
    .name = "sum", .min_in = 1, .max_in = 1, .attrs = reduce_attrs, .n_attrs = 2,
    .shape = reduce_shape, .forward = sum_fwd, .backward = sum_bwd, .flops = nb_flops_per_in,
    .cases = reduce_cases, .n_cases = NB_NELEMS(reduce_cases), .doc = "sum over axes"};
const nb_op_def nb_op_mean = {
    .name = "mean", .min_in = 1, .max_in = 1, .attrs = reduce_attrs, .n_attrs = 2,
    .shape = reduce_shape, .forward = mean_fwd, .backward = mean_bwd, .flops = nb_flops_per_in,
    .cases = reduce_cases, .n_cases = NB_NELEMS(reduce_cases), .doc = "mean over axes"};
const nb_op_def nb_op_max = {
    .name = "max", .min_in = 1, .max_in = 1, .attrs = reduce_attrs, .n_attrs = 2,
    .shape = reduce_shape, .forward = max_fwd, .backward = max_bwd, .flops = nb_flops_per_in,
    .cases = reduce_cases, .n_cases = NB_NELEMS(reduce_cases),
    .doc = "maximum over axes (gradient split among ties)"};

static const nb_op_case unreduce_cases[] = {
    {.in = {"3", "3,4"}, .attrs = {AXES(1)}, .n_attrs = 1},
    {.in = {"", "2,3"}, .attrs = {NB_ABOOL("mean", 1)}, .n_attrs = 1},
    {.in = {"1,3,1", "2,3,4"}, .attrs = {AXES(0, 2), NB_ABOOL("keepdims", 1), NB_ABOOL("mean", 1)}, .n_attrs = 3},
};
const nb_op_def nb_op_unreduce = {
    .name = "unreduce", .min_in = 2, .max_in = 2, .attrs = unreduce_attrs, .n_attrs = 3,
    .flags = NB_OP_INTERNAL, .shape_only = 2, .no_grad = 2, .shape = unreduce_shape,
    .forward = unreduce_fwd, .backward = unreduce_bwd, .flops = nb_flops_per_out,
    .cases = unreduce_cases, .n_cases = NB_NELEMS(unreduce_cases),
    .doc = "gradient of sum/mean: gy broadcast over the reduced axes"};
const nb_op_def nb_op_max_backward = {
    .name = "max_backward", .min_in = 3, .max_in = 3, .attrs = reduce_attrs, .n_attrs = 2,
    .flags = NB_OP_INTERNAL, .no_grad = 6, .shape = max_backward_shape,
    .forward = max_backward_fwd, .flops = nb_flops_per_out, .workspace = max_backward_work,
    .doc = "gradient of max: gy to the maxima, split among ties"};

static nb_node *reduce(nb_graph *g, const nb_op_def *op, nb_node *a, const int64_t *axes,
                       int n_axes, bool keepdims)
{
    nb_attr at[2] = {{.name = "axis", .type = NB_ATTR_INTS, .n = n_axes}, NB_ABOOL("keepdims", keepdims)};
    if (n_axes < 0 || n_axes > NB_MAX_DIMS) n_axes = at[0].n = NB_MAX_DIMS + 1;  /* rejected by nb_op */
    else if (n_axes) memcpy(at[0].i, axes, (size_t)n_axes * sizeof *axes);
    return nb_apply(g, op, NULL, (nb_node *[]){a}, 1, at, 2);
}

nb_node *nb_sum(nb_graph *g, nb_node *a, const int64_t *axes, int n_axes, bool keepdims)
{
    return reduce(g, &nb_op_sum, a, axes, n_axes, keepdims);
}
nb_node *nb_mean(nb_graph *g, nb_node *a, const int64_t *axes, int n_axes, bool keepdims)
{
    return reduce(g, &nb_op_mean, a, axes, n_axes, keepdims);
}
nb_node *nb_max(nb_graph *g, nb_node *a, const int64_t *axes, int n_axes, bool keepdims)
{
    return reduce(g, &nb_op_max, a, axes, n_axes, keepdims);
}

/* softmax and log_softmax along one axis (attribute `axis`, default -1, may
 * be negative), for any rank: the kernels walk outer x axis x inner, with the
 * axis strided by `inner`. Both subtract the maximum along the axis first, so
 * large logits neither overflow nor lose the small ones. Gradients are
 * composed from primitives (mul, sub, exp, sum), so they differentiate again. */
#include <tgmath.h>

#include "kernel.h"

enum { A_AXIS };
/* The input seen as [outer, n, inner] around the axis. */
typedef struct around {
    int64_t outer, n, inner;
} around;

static around around_axis(const nb_dims *s, int64_t axis)
{
    int a = (int)(axis < 0 ? axis + s->rank : axis);
    around r = {1, s->d[a], 1};
    for (int i = 0; i < a; i++) r.outer *= s->d[i];
    for (int i = a + 1; i < s->rank; i++) r.inner *= s->d[i];
    return r;
}

/* One lane along the axis: x[k * st], k < n. */
#define SOFTMAX_KERNEL(T)                                                             \
    static void softmax_lane_##T(const T *x, T *y, int64_t n, int64_t st, bool take_log) \
    {                                                                                 \
        T m = -INFINITY, s = 0;                                                       \
        for (int64_t k = 0; k < n; k++) m = x[k * st] > m ? x[k * st] : m;            \
        for (int64_t k = 0; k < n; k++) {                                             \
            T e = exp(x[k * st] - m);                                                 \
            if (!take_log) y[k * st] = e;                                             \
            s += e;                                                                   \
        }                                                                             \
        if (take_log) {                                                               \
            T ls = log(s);                                                            \
            for (int64_t k = 0; k < n; k++) y[k * st] = (x[k * st] - m) - ls;         \
        } else {                                                                      \
            T inv = 1 / s;                                                            \
            for (int64_t k = 0; k < n; k++) y[k * st] *= inv;                         \
        }                                                                             \
    }                                                                                 \
    static void softmax_##T(const T *x, T *y, around r, bool take_log)                \
    {                                                                                 \
        for (int64_t o = 0; o < r.outer; o++)                                         \
            for (int64_t i = 0; i < r.inner; i++) {                                   \
                int64_t off = o * r.n * r.inner + i;                                  \
                softmax_lane_##T(x + off, y + off, r.n, r.inner, take_log);           \
            }                                                                         \
    }
SOFTMAX_KERNEL(float)
SOFTMAX_KERNEL(double)

static nb_status run(const nb_kctx *k, bool take_log)
{
    around r = around_axis(&k->in_shape[0], k->attr[A_AXIS].i[0]);
    if (k->dtype == NB_F64)
        softmax_double(k->in[0], k->out, r, take_log);
    else
        softmax_float(k->in[0], k->out, r, take_log);
    return NB_OK;
}

static nb_status softmax_fwd(const nb_kctx *k) { return run(k, false); }
static nb_status log_softmax_fwd(const nb_kctx *k) { return run(k, true); }

static nb_status softmax_shape(nb_shape_ctx *c)
{
    int axis;
    nb_status st = nb_shape_float_inputs(c);
    if (!st) st = nb_shape_axis(c, c->attr[A_AXIS].i[0], c->in[0].rank, &axis);
    c->out = c->in[0];
    return st;
}

/* ---- gradients ---- */

static nb_node *sum_axis(nb_graph *g, nb_node *a, const nb_node *y)
{
    return nb_sum(g, a, &nb__attr(y, A_AXIS)->i[0], 1, true);
}

/* gx = y * (gy - sum(gy * y)) */
static nb_status softmax_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = nb_mul(g, y, nb_sub(g, gy, sum_axis(g, nb_mul(g, gy, y), y)));
    return NB_OK;
}

/* gx = gy - softmax * sum(gy), softmax = exp(y) */
static nb_status log_softmax_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = nb_sub(g, gy, nb_mul(g, nb_exp(g, y), sum_axis(g, gy, y)));
    return NB_OK;
}

/* max, subtract, exp, sum, scale */
static double softmax_flops(const nb_kctx *k) { return 5.0 * (double)nb_dims_numel(&k->out_shape); }

#define AXIS(v) NB_AINT("axis", v)
static const nb_op_case softmax_cases[] = {
    {.in = {"3,4"}},
    {.in = {"2,3,4"}, .lo = -3, .hi = 3, .attrs = {AXIS(0)}, .n_attrs = 1},
    {.in = {"2,3,4"}, .attrs = {AXIS(1)}, .n_attrs = 1},
    {.in = {"2,3,4"}, .attrs = {AXIS(-1)}, .n_attrs = 1},
    {.in = {"2,3,4"}, .attrs = {AXIS(-2)}, .n_attrs = 1},
    {.in = {"3,1,2"}, .attrs = {AXIS(1)}, .n_attrs = 1},
    {.in = {"4,1"}},
    {.in = {"5"}, .lo = -5, .hi = 5},
};

static const nb_attr_def axis_attrs[] = {{"axis", NB_ATTR_INT, false, {.i = {-1}}}};

const nb_op_def nb_op_softmax = {
    .name = "softmax", .min_in = 1, .max_in = 1, .attrs = axis_attrs, .n_attrs = 1,
    .shape = softmax_shape, .forward = softmax_fwd, .backward = softmax_bwd,
    .flops = softmax_flops, .cases = softmax_cases, .n_cases = NB_NELEMS(softmax_cases),
    .doc = "e^a / sum(e^a) along axis"};
const nb_op_def nb_op_log_softmax = {
    .name = "log_softmax", .min_in = 1, .max_in = 1, .attrs = axis_attrs, .n_attrs = 1,
    .shape = softmax_shape, .forward = log_softmax_fwd, .backward = log_softmax_bwd,
    .flops = softmax_flops, .cases = softmax_cases, .n_cases = NB_NELEMS(softmax_cases),
    .doc = "a - log(sum(e^a)) along axis"};

nb_node *nb_softmax(nb_graph *g, nb_node *a, int64_t axis)
{
    return nb_apply(g, &nb_op_softmax, NULL, (nb_node *[]){a}, 1, (nb_attr[]){AXIS(axis)}, 1);
}

nb_node *nb_log_softmax(nb_graph *g, nb_node *a, int64_t axis)
{
    return nb_apply(g, &nb_op_log_softmax, NULL, (nb_node *[]){a}, 1, (nb_attr[]){AXIS(axis)}, 1);
}

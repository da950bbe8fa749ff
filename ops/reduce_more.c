/* Reductions beyond sums and extremes:
 *   logsumexp(x; axis, keepdims)   log(sum(e^x)) over axes (all by default),
 *                                  the maximum taken out first so that it
 *                                  neither overflows nor underflows
 *   argmax(x; axis, keepdims)      i32 index of the maximum along one axis;
 *                                  the first on ties, the first NaN if any
 *                                  (torch.argmax); no gradient
 * logsumexp's gradient, gy e^(x - y), is built of primitives, so it
 * differentiates again. */
#include <string.h>
#include <tgmath.h>

#include "reduce.h"

/* ---- logsumexp ---- */

/* The maximum of a reduced set, as the shift: a non-finite one (all -inf, an
 * inf, a NaN) shifts by 0 and lets the sum give -inf, inf or NaN as torch. */
#define LSE_ROWS(T)                                                                      \
    static T shift_##T(T m) { return isfinite(m) ? m : 0; }                            \
    /* y += e^(x - shift(z)) */                                                          \
    static void expsum_row_##T(void *ctx, const int64_t *off, int64_t n)                 \
    {                                                                                    \
        nb_red_walk *w = ctx;                                                            \
        const T *x = (const T *)w->x + off[0], *m = (const T *)w->z + off[1];            \
        T *y = (T *)w->y + off[1];                                                       \
        if (w->sy == 0) {                                                                \
            T s = shift_##T(m[0]);                                                       \
            double acc = 0;                                                              \
            for (int64_t i = 0; i < n; i++) acc += exp(x[i] - s);                        \
            y[0] += (T)acc;                                                              \
        } else {                                                                         \
            for (int64_t i = 0; i < n; i++) y[i] += exp(x[i] - shift_##T(m[i]));         \
        }                                                                                \
    }                                                                                    \
    static void lse_finish_##T(T *y, const T *s, size_t n)                               \
    {                                                                                    \
        for (size_t i = 0; i < n; i++) y[i] = shift_##T(y[i]) + log(s[i]);               \
    }
LSE_ROWS(float)
LSE_ROWS(double)

static size_t lse_work(const nb_kctx *k)
{
    return nb_dims_numel(&k->out_shape) * nb_dtype_size(k->dtype);
}

/* out = the maximum (max's kernel), work = sum(e^(x - shift)), out = shift + log(work) */
static nb_status lse_fwd(const nb_kctx *k)
{
    nb_status st = nb_op_max.forward(k);
    if (st) return st;
    nb_dims ks = nb_reduce_keep(&k->in_shape[0], &k->attr[NB_RED_AXIS]);
    size_t n = nb_dims_numel(&ks);
    bool f64 = k->dtype == NB_F64;
    memset(k->work, 0, n * nb_dtype_size(k->dtype));
    nb_red_walk w = {.x = k->in[0], .y = k->work, .z = k->out};
    nb_reduce_walk(&w, &k->in_shape[0], &ks, f64 ? expsum_row_double : expsum_row_float);
    if (f64)
        lse_finish_double(k->out, k->work, n);
    else
        lse_finish_float(k->out, k->work, n);
    return NB_OK;
}

/* gx = gy e^(x - y), gy and y spread over x's shape */
static nb_status lse_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    nb_node *x = nb_node_input(y, 0);
    nb_node *soft = nb_exp(g, nb_sub(g, x, nb_reduce_unreduce(g, y, x, y, false)));
    gx[0] = nb_mul(g, nb_reduce_unreduce(g, gy, x, y, false), soft);
    return NB_OK;
}

/* max, subtract, exp, add, and a log per output */
static double lse_flops(const nb_kctx *k) { return 4.0 * (double)nb_dims_numel(&k->in_shape[0]); }

/* ---- argmax ---- */

enum { A_AXIS, A_KEEPDIMS };
static const nb_attr_def argmax_attrs[] = {
    {"axis", NB_ATTR_INT, true, {0}},
    {"keepdims", NB_ATTR_BOOL, false, {0}},
};

static nb_status argmax_shape(nb_shape_ctx *c)
{
    int axis;
    nb_status st = c->in_dtype[0] == NB_I32
                       ? nb_shape_fail(c, NB_ERR_DTYPE, "needs a float input; %s is i32",
                                       nb_shape_desc(c, 0))
                       : nb_shape_axis(c, c->attr[A_AXIS].i[0], c->in[0].rank, &axis);
    if (st) return st;
    c->out = c->in[0];
    if (c->attr[A_KEEPDIMS].i[0]) {
        c->out.d[axis] = nb_sdim_const(1);
    } else {
        for (int i = axis; i + 1 < c->in[0].rank; i++) c->out.d[i] = c->in[0].d[i + 1];
        c->out.rank--;
    }
    c->out_dtype = NB_I32;
    return NB_OK;
}

/* One lane x[k * st], k < n: the first maximum, or the first NaN. */
#define ARGMAX_LANE(T)                                                                   \
    static int32_t argmax_lane_##T(const T *x, int64_t n, int64_t st)                    \
    {                                                                                    \
        int64_t best = 0;                                                                \
        T b = x[0];                                                                      \
        for (int64_t k = 1; k < n && b == b; k++) {                                      \
            T v = x[k * st];                                                             \
            if (v > b || v != v) b = v, best = k;                                        \
        }                                                                                \
        return (int32_t)best;                                                            \
    }
ARGMAX_LANE(float)
ARGMAX_LANE(double)

static nb_status argmax_fwd(const nb_kctx *k)
{
    const nb_dims *s = &k->in_shape[0];
    int a = (int)(k->attr[A_AXIS].i[0] < 0 ? k->attr[A_AXIS].i[0] + s->rank : k->attr[A_AXIS].i[0]);
    int64_t outer = 1, n = s->d[a], inner = 1;
    for (int i = 0; i < a; i++) outer *= s->d[i];
    for (int i = a + 1; i < s->rank; i++) inner *= s->d[i];
    if (n > INT32_MAX)
        return nb_kernel_fail(k, "axis %d has %lld elements; an i32 index holds at most %d", a,
                              (long long)n, INT32_MAX);
    int32_t *out = k->out;
    bool f64 = k->in_dtype[0] == NB_F64;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t off = o * n * inner + i;
            out[o * inner + i] = f64 ? argmax_lane_double((const double *)k->in[0] + off, n, inner)
                                     : argmax_lane_float((const float *)k->in[0] + off, n, inner);
        }
    return NB_OK;
}

/* ---- definitions ---- */

#define AXES(...) {.name = "axis", .type = NB_ATTR_INTS, .n = NB_NELEMS(((int64_t[]){__VA_ARGS__})), .i = {__VA_ARGS__}}
#define KEEP NB_ABOOL("keepdims", 1)
static const nb_op_case lse_cases[] = {
    {.in = {"3,4"}},
    {.in = {"3,4"}, .attrs = {AXES(1)}, .n_attrs = 1},
    {.in = {"2,3,4"}, .lo = -5, .hi = 5, .attrs = {AXES(0, 2), KEEP}, .n_attrs = 2},
    {.in = {"2,3,4"}, .attrs = {AXES(-2)}, .n_attrs = 1},
    {.in = {"2,3,4"}, .attrs = {AXES(0)}, .n_attrs = 1},
    {.in = {"1,5"}, .attrs = {AXES(0), KEEP}, .n_attrs = 2},
    {.in = {"4,1"}, .attrs = {AXES(1)}, .n_attrs = 1},
    {.in = {"6"}, .lo = -3, .hi = 3},
    {.in = {""}},
};

const nb_op_def nb_op_logsumexp = {
    .name = "logsumexp", .min_in = 1, .max_in = 1, .attrs = nb_reduce_attrs, .n_attrs = 2,
    .shape = nb_reduce_shape, .forward = lse_fwd, .backward = lse_bwd, .flops = lse_flops,
    .workspace = lse_work, .cases = lse_cases, .n_cases = NB_NELEMS(lse_cases),
    .doc = "log(sum(e^a)) over axes, computed stably"};
const nb_op_def nb_op_argmax = {
    .name = "argmax", .min_in = 1, .max_in = 1, .attrs = argmax_attrs, .n_attrs = 2,
    .shape = argmax_shape, .forward = argmax_fwd, .flops = nb_flops_per_in,
    .doc = "i32 index of the maximum along axis (first on ties, first NaN); no gradient"};

nb_node *nb_logsumexp(nb_graph *g, nb_node *a, const int64_t *axes, int n_axes, bool keepdims)
{
    return nb_reduce_node(g, &nb_op_logsumexp, a, axes, n_axes, keepdims);
}

nb_node *nb_argmax(nb_graph *g, nb_node *a, int64_t axis, bool keepdims)
{
    return nb_apply(g, &nb_op_argmax, NULL, (nb_node *[]){a}, 1,
                    (nb_attr[]){NB_AINT("axis", axis), NB_ABOOL("keepdims", keepdims)}, 2);
}

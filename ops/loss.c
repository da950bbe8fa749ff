/* Losses, each a scalar mean:
 *   softmax_cross_entropy(logits [N, K], labels)   labels i32 [N] class ids, or
 *       float [N, K] (one-hot or soft): -sum(t * log_softmax(logits)) / N
 *   mse(a, b)                                      mean((a - b)^2), equal shapes
 * and the gradient op of the first,
 *   softmax_cross_entropy_backward(gy, logits, labels; wrt)
 *       wrt 0: (softmax(logits) * sum(t) - t) * gy / N, sums along rows (sum(t) is
 *              1 for one-hot labels and class ids)
 *       wrt 1: -log_softmax(logits) * gy / N       (float labels only)
 * whose own gradient is composed from primitives and itself, so second order
 * works through the loss. Rows go through log-sum-exp with the row maximum
 * subtracted, so large logits stay finite. A class id outside [0, K) fails the
 * run, naming the labels input and the row. */
#include <tgmath.h>

#include "kernel.h"

/* softmax_cross_entropy_backward: 0 for the logits' gradient, 1 for the labels' */
enum { A_WRT };
/* ---- shapes ---- */

/* Inputs il (logits) and il + 1 (labels). */
static nb_status xent_inputs(nb_shape_ctx *c, int il)
{
    const nb_shape *x = &c->in[il], *t = &c->in[il + 1];
    nb_dtype dx = c->in_dtype[il], dt = c->in_dtype[il + 1];
    bool ok = dx != NB_I32 && x->rank == 2;
    if (ok && dt == NB_I32)
        ok = t->rank == 1 && nb_sdim_eq(t->d[0], x->d[0]);
    else if (ok)
        ok = nb_shape_eq(t, x);
    if (!ok)
        return nb_shape_fail(c, NB_ERR_SHAPE,
                             "needs float logits [N, K] and labels [N] (i32 class ids) or [N, K] "
                             "(float); %s (%s), %s (%s)",
                             nb_shape_desc(c, il), nb_dtype_name(dx), nb_shape_desc(c, il + 1),
                             nb_dtype_name(dt));
    if (dt != NB_I32 && dt != dx)
        return nb_shape_fail(c, NB_ERR_DTYPE, "mixes %s logits and %s labels", nb_dtype_name(dx),
                             nb_dtype_name(dt));
    c->out_dtype = dx;
    return NB_OK;
}

static nb_status xent_shape(nb_shape_ctx *c)
{
    nb_status st = xent_inputs(c, 0);
    c->out = (nb_shape){0};
    return st;
}

/* gy is the loss's (scalar) gradient; the output has the logits' shape */
static nb_status xent_backward_shape(nb_shape_ctx *c)
{
    nb_status st = xent_inputs(c, 1);
    if (st) return st;
    if (c->in[0].rank != 0 || c->in_dtype[0] != c->in_dtype[1])
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs a scalar gy of the logits' dtype; %s",
                             nb_shape_desc(c, 0));
    int64_t wrt = c->attr[A_WRT].i[0];
    if (wrt != 0 && (wrt != 1 || c->in_dtype[2] == NB_I32))
        return nb_shape_fail(c, NB_ERR_ARG, "wrt must be 0 (logits) or 1 (float labels), not %lld",
                             (long long)wrt);
    c->out = c->in[1];
    return NB_OK;
}

/* ---- kernels ---- */

/* Class ids must lie in [0, K); checked by every kernel that reads them. */
static nb_status check_labels(const nb_kctx *k, int il)
{
    if (k->in_dtype[il] != NB_I32) return NB_OK;
    const int32_t *t = k->in[il];
    int64_t n = k->in_shape[il].d[0], K = k->in_shape[il - 1].d[1];
    for (int64_t r = 0; r < n; r++)
        if (t[r] < 0 || t[r] >= K)
            return nb_kernel_fail(k, "labels '%s' row %lld: class %d is outside [0, %lld)",
                                  nb_node_name(nb_node_input(k->node, il)), (long long)r, (int)t[r],
                                  (long long)K);
    return NB_OK;
}

/* ids: class ids or NULL; soft: float labels or NULL; rows are [N, K]. A
 * row's -log_softmax at k is (m - x[k]) + ls with m the row maximum and ls
 * the log of sum(e^(x - m)): kept apart, large logits lose no precision. */
#define XENT_KERNEL(T)                                                                  \
    static T row_max_##T(const T *x, int64_t K, T *ls)                                  \
    {                                                                                   \
        T m = -INFINITY, s = 0;                                                         \
        for (int64_t k = 0; k < K; k++) m = x[k] > m ? x[k] : m;                        \
        for (int64_t k = 0; k < K; k++) s += exp(x[k] - m);                             \
        *ls = log(s);                                                                   \
        return m;                                                                       \
    }                                                                                   \
    static T xent_##T(const T *x, const int32_t *ids, const T *soft, int64_t N, int64_t K) \
    {                                                                                   \
        double total = 0;                                                               \
        for (int64_t n = 0; n < N; n++, x += K) {                                       \
            T ls, m = row_max_##T(x, K, &ls);                                           \
            if (ids) total += (m - x[ids[n]]) + ls;                                     \
            for (int64_t k = 0; soft && k < K; k++) total += soft[n * K + k] * ((m - x[k]) + ls); \
        }                                                                               \
        return N ? (T)(total / (double)N) : 0;                                          \
    }                                                                                   \
    /* c = gy / N; wrt 0: (softmax sum(t) - t) c, wrt 1: -log_softmax c */             \
    static void xent_grad_##T(const T *x, const int32_t *ids, const T *soft, int64_t N,  \
                              int64_t K, T c, bool wrt_labels, T *out)                  \
    {                                                                                   \
        for (int64_t n = 0; n < N; n++, x += K, out += K) {                             \
            T ls, m = row_max_##T(x, K, &ls), mass = 1;                                 \
            const T *t = soft ? soft + n * K : NULL;                                    \
            if (t) mass = 0;                                                            \
            for (int64_t k = 0; t && k < K; k++) mass += t[k];                          \
            for (int64_t k = 0; k < K; k++)                                             \
                out[k] = wrt_labels ? ((m - x[k]) + ls) * c                             \
                                    : (exp((x[k] - m) - ls) * mass - (t ? t[k] : 0)) * c; \
            if (ids && !wrt_labels) out[ids[n]] -= c;                                   \
        }                                                                               \
    }
XENT_KERNEL(float)
XENT_KERNEL(double)

static nb_status xent_fwd(const nb_kctx *k)
{
    nb_status st = check_labels(k, 1);
    if (st) return st;
    int64_t N = k->in_shape[0].d[0], K = k->in_shape[0].d[1];
    bool ids = k->in_dtype[1] == NB_I32;
    if (k->dtype == NB_F64)
        *(double *)k->out = xent_double(k->in[0], ids ? k->in[1] : NULL, ids ? NULL : k->in[1], N, K);
    else
        *(float *)k->out = xent_float(k->in[0], ids ? k->in[1] : NULL, ids ? NULL : k->in[1], N, K);
    return NB_OK;
}

static nb_status xent_backward_fwd(const nb_kctx *k)
{
    nb_status st = check_labels(k, 2);
    if (st) return st;
    int64_t N = k->in_shape[1].d[0], K = k->in_shape[1].d[1];
    bool ids = k->in_dtype[2] == NB_I32, wrt_labels = k->attr[A_WRT].i[0] == 1;
    const void *id = ids ? k->in[2] : NULL, *soft = ids ? NULL : k->in[2];
    double c = N ? nb_load(k->in[0], k->dtype, 0) / (double)N : 0;
    if (k->dtype == NB_F64)
        xent_grad_double(k->in[1], id, soft, N, K, c, wrt_labels, k->out);
    else
        xent_grad_float(k->in[1], id, soft, N, K, (float)c, wrt_labels, k->out);
    return NB_OK;
}

/* ---- gradients ---- */

static nb_node *xent_grad(nb_graph *g, nb_node *gy, nb_node *x, nb_node *t, int64_t wrt)
{
    return nb_apply(g, &nb_op_softmax_cross_entropy_backward, NULL, (nb_node *[]){gy, x, t}, 3,
                    (nb_attr[]){NB_AINT("wrt", wrt)}, 1);
}

static nb_status xent_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    nb_node *x = nb_node_input(y, 0), *t = nb_node_input(y, 1);
    if (nb_needs_grad(needs, 0)) gx[0] = xent_grad(g, gy, x, t, 0);
    if (nb_needs_grad(needs, 1) && nb_node_dtype(t) != NB_I32)  /* class ids get none */
        gx[1] = xent_grad(g, gy, x, t, 1);
    return NB_OK;
}

/* out = f(x, t) * gy / N with f = s * m - t (wrt 0), s the row softmax and m
 * the row sum of t (1 for class ids), or f = -log_softmax(x) (wrt 1).
 * d/dgy = sum(G * f / N): the op itself with gy = 1. With H = G * gy / N:
 * wrt 0: d/dx = s * (Hm - sum(Hm * s)), Hm = H * m; d/dt = sum(H * s) - H;
 * wrt 1: d/dx = -(H - s * sum(H)). Sums run along rows. */
static nb_status xent_backward_bwd(nb_graph *g, nb_node *y, nb_node *G, uint64_t needs,
                                   nb_node **gx)
{
    nb_node *gy = nb_node_input(y, 0), *x = nb_node_input(y, 1), *t = nb_node_input(y, 2);
    int64_t wrt = nb__attr(y, A_WRT)->i[0], row = 1;
    bool ids = nb_node_dtype(t) == NB_I32;
    /* t has a gradient for wrt 0 with float labels only: with wrt 1, f does not depend on t */
    bool dx = nb_needs_grad(needs, 1), dt = wrt == 0 && !ids && nb_needs_grad(needs, 2);
    if (nb_needs_grad(needs, 0)) {
        nb_node *one = nb_apply(g, &nb_op_fill_like, NULL, (nb_node *[]){gy}, 1,
                                (nb_attr[]){NB_AFLOAT("value", 1)}, 1);
        gx[0] = nb_sum(g, nb_mul(g, G, xent_grad(g, one, x, t, wrt)), NULL, 0, false);
    }
    if (!dx && !dt) return NB_OK;
    /* gy / N per row, [N, 1], without N as a number: gy / (N K) summed over K */
    nb_node *spread = nb_apply(g, &nb_op_unreduce, NULL, (nb_node *[]){gy, x}, 2,
                               (nb_attr[]){NB_ABOOL("mean", 1)}, 1);
    nb_node *H = nb_mul(g, G, nb_sum(g, spread, &row, 1, true));
    nb_node *s = nb_softmax(g, x, 1);
    if (wrt == 0) {
        if (dx) {
            nb_node *Hm = ids ? H : nb_mul(g, H, nb_sum(g, t, &row, 1, true));
            gx[1] = nb_mul(g, s, nb_sub(g, Hm, nb_sum(g, nb_mul(g, Hm, s), &row, 1, true)));
        }
        if (dt) gx[2] = nb_sub(g, nb_sum(g, nb_mul(g, H, s), &row, 1, true), H);
    } else {  /* dx, since dt is false */
        gx[1] = nb_neg(g, nb_sub(g, H, nb_mul(g, s, nb_sum(g, H, &row, 1, true))));
    }
    return NB_OK;
}

/* ---- mse ---- */

static nb_status mse_shape(nb_shape_ctx *c)
{
    nb_status st = nb_shape_float_inputs(c);
    if (st) return st;
    if (!nb_shape_eq(&c->in[0], &c->in[1]))
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs a and b of equal shapes; %s, %s",
                             nb_shape_desc(c, 0), nb_shape_desc(c, 1));
    c->out = (nb_shape){0};
    return NB_OK;
}

#define MSE_KERNEL(T)                                                                   \
    static T mse_##T(const T *a, const T *b, size_t n)                                  \
    {                                                                                   \
        double s = 0;                                                                   \
        for (size_t i = 0; i < n; i++) s += (double)(a[i] - b[i]) * (a[i] - b[i]);      \
        return n ? (T)(s / (double)n) : 0;                                              \
    }
MSE_KERNEL(float)
MSE_KERNEL(double)

static nb_status mse_fwd(const nb_kctx *k)
{
    size_t n = nb_dims_numel(&k->in_shape[0]);
    if (k->dtype == NB_F64)
        *(double *)k->out = mse_double(k->in[0], k->in[1], n);
    else
        *(float *)k->out = mse_float(k->in[0], k->in[1], n);
    return NB_OK;
}

/* ga = 2 (a - b) gy / numel, gb = -ga (ga serves both); unreduce spreads gy / numel over a */
static nb_status mse_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    nb_node *a = nb_node_input(y, 0), *b = nb_node_input(y, 1);
    nb_node *spread = nb_apply(g, &nb_op_unreduce, NULL, (nb_node *[]){gy, a}, 2,
                               (nb_attr[]){NB_ABOOL("mean", 1)}, 1);
    nb_node *ga = nb_mul(g, nb_scale(g, nb_sub(g, a, b), 2, 0), spread);
    if (nb_needs_grad(needs, 0)) gx[0] = ga;
    if (nb_needs_grad(needs, 1)) gx[1] = nb_neg(g, ga);
    return NB_OK;
}

/* ---- definitions ---- */

static double logits_flops(const nb_kctx *k)
{
    const nb_dims *x = &k->in_shape[k->n_in == 3 ? 1 : 0];
    return 5.0 * (double)nb_dims_numel(x);
}
static double mse_flops(const nb_kctx *k) { return 3.0 * (double)nb_dims_numel(&k->in_shape[0]); }

static const nb_op_case xent_cases[] = {
    {.in = {"4,5", "i32:4"}, .classes = 5},
    {.in = {"3,6", "3,6"}},
    {.in = {"2,3", "2,3"}, .lo = -4, .hi = 4},
    {.in = {"1,3", "i32:1"}, .lo = -4, .hi = 4, .classes = 3},
    {.in = {"3,1", "i32:3"}, .classes = 1},
};
#define WRT(v) .attrs = {NB_AINT("wrt", v)}, .n_attrs = 1
static const nb_op_case xent_backward_cases[] = {
    {.in = {"", "4,5", "i32:4"}, .classes = 5, WRT(0)},
    {.in = {"", "3,4", "3,4"}, WRT(0)},
    {.in = {"", "3,4", "3,4"}, WRT(1)},
    {.in = {"", "1,2", "i32:1"}, .lo = -3, .hi = 3, .classes = 2, WRT(0)},
};
static const nb_op_case mse_cases[] = {
    {.in = {"3,4", "3,4"}}, {.in = {"", ""}}, {.in = {"2,1,3", "2,1,3"}}};

static const nb_attr_def wrt_attrs[] = {{"wrt", NB_ATTR_INT, false, {.i = {0}}}};

const nb_op_def nb_op_softmax_cross_entropy = {
    .name = "softmax_cross_entropy", .min_in = 2, .max_in = 2, .shape = xent_shape,
    .forward = xent_fwd, .backward = xent_bwd, .flops = logits_flops, .cases = xent_cases,
    .n_cases = NB_NELEMS(xent_cases),
    .doc = "mean over N of -sum(t * log_softmax(logits)); labels i32 [N] or float [N, K]"};
const nb_op_def nb_op_softmax_cross_entropy_backward = {
    .name = "softmax_cross_entropy_backward", .min_in = 3, .max_in = 3, .attrs = wrt_attrs,
    .n_attrs = 1, .flags = NB_OP_INTERNAL, .shape = xent_backward_shape,
    .forward = xent_backward_fwd, .backward = xent_backward_bwd, .flops = logits_flops,
    .cases = xent_backward_cases, .n_cases = NB_NELEMS(xent_backward_cases),
    .doc = "gradient of softmax_cross_entropy wrt logits (wrt 0) or float labels (wrt 1)"};
const nb_op_def nb_op_mse = {
    .name = "mse", .min_in = 2, .max_in = 2, .shape = mse_shape, .forward = mse_fwd,
    .backward = mse_bwd, .flops = mse_flops, .cases = mse_cases, .n_cases = NB_NELEMS(mse_cases),
    .doc = "mean((a - b)^2), equal shapes"};

nb_node *nb_softmax_cross_entropy(nb_graph *g, nb_node *logits, nb_node *labels)
{
    return nb_apply(g, &nb_op_softmax_cross_entropy, NULL, (nb_node *[]){logits, labels}, 2, NULL,
                    0);
}

nb_node *nb_mse(nb_graph *g, nb_node *a, nb_node *b)
{
    return nb_apply(g, &nb_op_mse, NULL, (nb_node *[]){a, b}, 2, NULL, 0);
}

/* Losses of issue 9, each the mean over all elements (a scalar), with
 * PyTorch's gradients for float targets too:
 *   sigmoid_cross_entropy(z, t)   mean of max(z, 0) - z t + log(1 + e^-|z|)
 *                                 (BCEWithLogitsLoss); dz = sigmoid(z) - t,
 *                                 dt = -z, each times gy / n
 *   binary_cross_entropy(p, t)    mean of -(t L0 + (1 - t) L1), L0 = log p and
 *                                 L1 = log(1 - p) each clamped at -100
 *                                 (BCELoss); dp = (p - t) / max(p (1 - p),
 *                                 1e-12), dt = L1 - L0, each times gy / n
 *   nll_loss(logp [N, K], t [N])  mean over N of -logp[n, t[n]], i32 labels
 *   nll_loss_backward(gy, logp, t)  -gy / N at [n, t[n]], else 0
 * The gradients of the first two are built of primitives (the clamps as relu,
 * which PyTorch's clamp matches: no gradient where clamped), and nll_loss and
 * its gradient op are each other's gradient (nll_loss_backward is linear in
 * gy: d/dgy sum(G * out) = nll_loss(G, t)), so all differentiate again. A
 * label outside [0, K) fails the run, naming the labels input and the row. */
#include <string.h>
#include <tgmath.h>

#include "kernel.h"

/* ---- shapes ---- */

/* float p (or logits) and t of one shape and dtype; the output is a scalar */
static nb_status pair_shape(nb_shape_ctx *c)
{
    nb_status st = nb_shape_float_inputs(c);
    if (st) return st;
    if (!nb_shape_eq(&c->in[0], &c->in[1]))
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs inputs and targets of one shape; %s, %s",
                             nb_shape_desc(c, 0), nb_shape_desc(c, 1));
    c->out = (nb_shape){0};
    return NB_OK;
}

/* inputs il (float [N, K]) and il + 1 (i32 [N]) */
static nb_status nll_inputs(nb_shape_ctx *c, int il)
{
    const nb_shape *x = &c->in[il], *t = &c->in[il + 1];
    if (c->in_dtype[il] == NB_I32 || x->rank != 2 || c->in_dtype[il + 1] != NB_I32 ||
        t->rank != 1 || !nb_sdim_eq(t->d[0], x->d[0]))
        return nb_shape_fail(c, NB_ERR_SHAPE,
                             "needs float log-probabilities [N, K] and i32 labels [N]; %s (%s), %s (%s)",
                             nb_shape_desc(c, il), nb_dtype_name(c->in_dtype[il]),
                             nb_shape_desc(c, il + 1), nb_dtype_name(c->in_dtype[il + 1]));
    c->out_dtype = c->in_dtype[il];
    return NB_OK;
}

static nb_status nll_shape(nb_shape_ctx *c)
{
    nb_status st = nll_inputs(c, 0);
    c->out = (nb_shape){0};
    return st;
}

static nb_status nll_backward_shape(nb_shape_ctx *c)
{
    nb_status st = nll_inputs(c, 1);
    if (st) return st;
    if (c->in[0].rank != 0 || c->in_dtype[0] != c->in_dtype[1])
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs a scalar gy of the inputs' dtype; %s",
                             nb_shape_desc(c, 0));
    c->out = c->in[1];
    return NB_OK;
}

/* ---- kernels ---- */

#define PAIR_KERNELS(T)                                                                  \
    static double sxent_##T(const T *z, const T *t, size_t n)                            \
    {                                                                                    \
        double s = 0;                                                                    \
        for (size_t i = 0; i < n; i++)                                                   \
            s += (z[i] > 0 ? z[i] : 0) - z[i] * t[i] + log1p(exp(-fabs(z[i])));          \
        return s;                                                                        \
    }                                                                                    \
    static double bce_##T(const T *p, const T *t, size_t n)                              \
    {                                                                                    \
        double s = 0;                                                                    \
        for (size_t i = 0; i < n; i++) {                                                 \
            T l0 = log(p[i]), l1 = log(1 - p[i]);                                        \
            l0 = l0 > -100 ? l0 : -100, l1 = l1 > -100 ? l1 : -100;                      \
            s -= t[i] * l0 + (1 - t[i]) * l1;                                            \
        }                                                                                \
        return s;                                                                        \
    }
PAIR_KERNELS(float)
PAIR_KERNELS(double)

static void put_mean(const nb_kctx *k, double sum)
{
    size_t n = nb_dims_numel(&k->in_shape[0]);
    double m = n ? sum / (double)n : 0;
    if (k->dtype == NB_F64)
        *(double *)k->out = m;
    else
        *(float *)k->out = (float)m;
}

static nb_status sxent_fwd(const nb_kctx *k)
{
    size_t n = nb_dims_numel(&k->in_shape[0]);
    put_mean(k, k->dtype == NB_F64 ? sxent_double(k->in[0], k->in[1], n)
                                   : sxent_float(k->in[0], k->in[1], n));
    return NB_OK;
}

/* p outside [0, 1] gives NaN (PyTorch refuses it), which the loss shows at once */
static nb_status bce_fwd(const nb_kctx *k)
{
    size_t n = nb_dims_numel(&k->in_shape[0]);
    put_mean(k, k->dtype == NB_F64 ? bce_double(k->in[0], k->in[1], n)
                                   : bce_float(k->in[0], k->in[1], n));
    return NB_OK;
}

/* Class ids in input il must lie in [0, K), K the size of axis 1 of input il - 1. */
static nb_status check_labels(const nb_kctx *k, int il)
{
    const int32_t *t = k->in[il];
    int64_t n = k->in_shape[il].d[0], K = k->in_shape[il - 1].d[1];
    for (int64_t r = 0; r < n; r++)
        if (t[r] < 0 || t[r] >= K)
            return nb_kernel_fail(k, "labels '%s' row %lld: class %d is outside [0, %lld)",
                                  nb_node_name(nb_node_input(k->node, il)), (long long)r, (int)t[r],
                                  (long long)K);
    return NB_OK;
}

static nb_status nll_fwd(const nb_kctx *k)
{
    nb_status st = check_labels(k, 1);
    if (st) return st;
    const int32_t *t = k->in[1];
    int64_t N = k->in_shape[0].d[0], K = k->in_shape[0].d[1];
    double s = 0;
    for (int64_t r = 0; r < N; r++) s -= nb_load(k->in[0], k->dtype, (size_t)(r * K + t[r]));
    double m = N ? s / (double)N : 0;
    if (k->dtype == NB_F64)
        *(double *)k->out = m;
    else
        *(float *)k->out = (float)m;
    return NB_OK;
}

static nb_status nll_backward_fwd(const nb_kctx *k)
{
    nb_status st = check_labels(k, 2);
    if (st) return st;
    const int32_t *t = k->in[2];
    int64_t N = k->in_shape[1].d[0], K = k->in_shape[1].d[1];
    double c = N ? -nb_load(k->in[0], k->dtype, 0) / (double)N : 0;
    size_t es = nb_dtype_size(k->dtype);
    memset(k->out, 0, (size_t)(N * K) * es);
    for (int64_t r = 0; r < N; r++) {
        size_t i = (size_t)(r * K + t[r]);
        if (k->dtype == NB_F64)
            ((double *)k->out)[i] = c;
        else
            ((float *)k->out)[i] = (float)c;
    }
    return NB_OK;
}

/* ---- gradients ---- */

/* gy / n spread over a's shape */
static nb_node *spread(nb_graph *g, nb_node *gy, nb_node *a)
{
    return nb_apply(g, &nb_op_unreduce, NULL, (nb_node *[]){gy, a}, 2,
                    (nb_attr[]){NB_ABOOL("mean", 1)}, 1);
}

static nb_status sxent_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    nb_node *z = nb_node_input(y, 0), *t = nb_node_input(y, 1), *c = spread(g, gy, z);
    if (nb_needs_grad(needs, 0)) gx[0] = nb_mul(g, c, nb_sub(g, nb_sigmoid(g, z), t));
    if (nb_needs_grad(needs, 1)) gx[1] = nb_neg(g, nb_mul(g, c, z));
    return NB_OK;
}

/* max(a, lo) as relu(a - lo) + lo: gradient 1 above lo, 0 below, as torch's clamp */
static nb_node *clamp_below(nb_graph *g, nb_node *a, double lo)
{
    return nb_scale(g, nb_relu(g, nb_scale(g, a, 1, -lo)), 1, lo);
}

static nb_status bce_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    nb_node *p = nb_node_input(y, 0), *t = nb_node_input(y, 1), *c = spread(g, gy, p);
    nb_node *q = nb_scale(g, p, -1, 1);  /* 1 - p */
    if (nb_needs_grad(needs, 0)) {
        /* torch's EPSILON is the float 1e-12 */
        nb_node *den = clamp_below(g, nb_mul(g, p, q), (double)1e-12f);
        gx[0] = nb_mul(g, c, nb_div(g, nb_sub(g, p, t), den));
    }
    if (nb_needs_grad(needs, 1)) {
        nb_node *l0 = clamp_below(g, nb_log(g, p), -100), *l1 = clamp_below(g, nb_log(g, q), -100);
        gx[1] = nb_mul(g, c, nb_sub(g, l1, l0));
    }
    return NB_OK;
}

static nb_node *nll_grad(nb_graph *g, nb_node *gy, nb_node *x, nb_node *t)
{
    return nb_apply(g, &nb_op_nll_loss_backward, NULL, (nb_node *[]){gy, x, t}, 3, NULL, 0);
}

static nb_status nll_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = nll_grad(g, gy, nb_node_input(y, 0), nb_node_input(y, 1));
    return NB_OK;
}

static nb_status nll_backward_bwd(nb_graph *g, nb_node *y, nb_node *G, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = nb_nll_loss(g, G, nb_node_input(y, 2));
    return NB_OK;
}

/* ---- definitions ---- */

static double pair_flops(const nb_kctx *k) { return 6.0 * (double)nb_dims_numel(&k->in_shape[0]); }
static double nll_flops(const nb_kctx *k) { return (double)k->in_shape[0].d[0]; }

static const nb_op_case sxent_cases[] = {
    {.in = {"3,4", "3,4"}, .lo = -4, .hi = 4},
    {.in = {"5", "5"}},
    {.in = {"", ""}, .lo = -3, .hi = 3},
    {.in = {"2,1,3", "2,1,3"}, .lo = -6, .hi = 6},
};
/* p and t in (0, 1), away from 0 and 1 (where the clamps bend) */
static const nb_op_case bce_cases[] = {
    {.in = {"3,4", "3,4"}, .lo = 0.05, .hi = 0.95},
    {.in = {"5", "5"}, .lo = 0.2, .hi = 0.8},
    {.in = {"", ""}, .lo = 0.1, .hi = 0.9},
    {.in = {"2,1,3", "2,1,3"}, .lo = 0.01, .hi = 0.99},
};
static const nb_op_case nll_cases[] = {
    {.in = {"4,5", "i32:4"}, .classes = 5},
    {.in = {"1,3", "i32:1"}, .classes = 3},
    {.in = {"3,1", "i32:3"}, .classes = 1},
    {.in = {"6,2", "i32:6"}, .classes = 2},  /* repeated labels */
};
static const nb_op_case nll_backward_cases[] = {
    {.in = {"", "4,5", "i32:4"}, .classes = 5},
    {.in = {"", "2,3", "i32:2"}, .classes = 3},
};

const nb_op_def nb_op_sigmoid_cross_entropy = {
    .name = "sigmoid_cross_entropy", .min_in = 2, .max_in = 2, .shape = pair_shape,
    .forward = sxent_fwd, .backward = sxent_bwd, .flops = pair_flops, .cases = sxent_cases,
    .n_cases = NB_NELEMS(sxent_cases),
    .doc = "mean of max(z, 0) - z t + log(1 + e^-|z|) (logits z, targets t of one shape)"};
const nb_op_def nb_op_binary_cross_entropy = {
    .name = "binary_cross_entropy", .min_in = 2, .max_in = 2, .shape = pair_shape,
    .forward = bce_fwd, .backward = bce_bwd, .flops = pair_flops, .cases = bce_cases,
    .n_cases = NB_NELEMS(bce_cases),
    .doc = "mean of -(t log p + (1 - t) log(1 - p)), logs clamped at -100"};
const nb_op_def nb_op_nll_loss = {
    .name = "nll_loss", .min_in = 2, .max_in = 2, .no_grad = 2, .shape = nll_shape,
    .forward = nll_fwd, .backward = nll_bwd, .flops = nll_flops, .cases = nll_cases,
    .n_cases = NB_NELEMS(nll_cases),
    .doc = "mean over N of -logp[n, t[n]]; logp [N, K], labels i32 [N]"};
const nb_op_def nb_op_nll_loss_backward = {
    .name = "nll_loss_backward", .min_in = 3, .max_in = 3, .flags = NB_OP_INTERNAL,
    .shape_only = 2, .no_grad = 6, .shape = nll_backward_shape, .forward = nll_backward_fwd,
    .backward = nll_backward_bwd, .flops = nb_flops_per_out, .cases = nll_backward_cases,
    .n_cases = NB_NELEMS(nll_backward_cases),
    .doc = "gradient of nll_loss: -gy / N at each row's label, else 0"};

static nb_node *two(nb_graph *g, const nb_op_def *op, nb_node *a, nb_node *b)
{
    return nb_apply(g, op, NULL, (nb_node *[]){a, b}, 2, NULL, 0);
}

nb_node *nb_sigmoid_cross_entropy(nb_graph *g, nb_node *logits, nb_node *targets)
{
    return two(g, &nb_op_sigmoid_cross_entropy, logits, targets);
}
nb_node *nb_binary_cross_entropy(nb_graph *g, nb_node *p, nb_node *targets)
{
    return two(g, &nb_op_binary_cross_entropy, p, targets);
}
nb_node *nb_nll_loss(nb_graph *g, nb_node *logp, nb_node *labels)
{
    return two(g, &nb_op_nll_loss, logp, labels);
}

/* layernorm(x, gamma, beta; axis, eps): x normalised over its axes
 * axis..last (mean 0, biased variance 1, eps added to the variance), times
 * gamma plus beta, both shaped as those axes
 * (torch.nn.functional.layer_norm). The kernel runs in one node; the gradient
 * recomputes the normalised x from x with primitives (mean, sub, mul, pow),
 * so it differentiates again:
 *   xhat = (x - mean) r,  r = (var + eps)^-1/2,  g = gy gamma,
 *   dx = r (g - mean(g) - xhat mean(g xhat)),  dgamma = gy xhat,  dbeta = gy
 * (autodiff sums dgamma and dbeta back over the leading axes). */
#include <tgmath.h>

#include "kernel.h"

enum { A_AXIS, A_EPS };

static nb_status layernorm_shape(nb_shape_ctx *c)
{
    int a;
    nb_status st = nb_shape_float_inputs(c);
    if (!st) st = nb_shape_axis(c, c->attr[A_AXIS].i[0], c->in[0].rank, &a);
    if (st) return st;
    if (!(c->attr[A_EPS].f >= 0))
        return nb_shape_fail(c, NB_ERR_ARG, "eps must be >= 0; got %g", c->attr[A_EPS].f);
    nb_shape want = {.rank = c->in[0].rank - a};
    for (int i = a; i < c->in[0].rank; i++) want.d[i - a] = c->in[0].d[i];
    st = nb_shape_expect(c, 1, &want, "gamma");
    if (!st) st = nb_shape_expect(c, 2, &want, "beta");
    c->out = c->in[0];
    return st;
}

/* x as [outer, inner] rows, inner the normalised axes */
#define LAYERNORM(T)                                                                     \
    static void layernorm_##T(const T *x, const T *gm, const T *bt, T *y, int64_t outer,  \
                              int64_t inner, double eps)                                 \
    {                                                                                    \
        for (int64_t o = 0; o < outer; o++, x += inner, y += inner) {                    \
            double mean = 0, var = 0;                                                    \
            for (int64_t i = 0; i < inner; i++) mean += x[i];                            \
            mean /= (double)inner;                                                       \
            for (int64_t i = 0; i < inner; i++) var += (x[i] - mean) * (x[i] - mean);    \
            T r = (T)(1 / sqrt(var / (double)inner + eps)), m = (T)mean;                 \
            for (int64_t i = 0; i < inner; i++) y[i] = (x[i] - m) * r * gm[i] + bt[i];    \
        }                                                                                \
    }
LAYERNORM(float)
LAYERNORM(double)

static nb_status layernorm_fwd(const nb_kctx *k)
{
    const nb_dims *s = &k->in_shape[0];
    int64_t ax = k->attr[A_AXIS].i[0], a = ax < 0 ? ax + s->rank : ax, outer = 1, inner = 1;
    for (int i = 0; i < s->rank; i++) *(i < a ? &outer : &inner) *= s->d[i];
    if (k->dtype == NB_F64)
        layernorm_double(k->in[0], k->in[1], k->in[2], k->out, outer, inner, k->attr[A_EPS].f);
    else
        layernorm_float(k->in[0], k->in[1], k->in[2], k->out, outer, inner, k->attr[A_EPS].f);
    return NB_OK;
}

static nb_status layernorm_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    nb_node *x = nb_node_input(y, 0), *gamma = nb_node_input(y, 1);
    int rank = nb_node_rank(x);
    int64_t ax = nb__attr(y, A_AXIS)->i[0], a = ax < 0 ? ax + rank : ax, axes[NB_MAX_DIMS];
    int n = 0;
    for (int64_t i = a; i < rank; i++) axes[n++] = i;
    nb_node *xc = nb_sub(g, x, nb_mean(g, x, axes, n, true));
    nb_node *var = nb_mean(g, nb_mul(g, xc, xc), axes, n, true);
    nb_node *r = nb_pow(g, nb_scale(g, var, 1, nb__attr(y, A_EPS)->f), -0.5);
    nb_node *xhat = nb_mul(g, xc, r);
    if (nb_needs_grad(needs, 0)) {
        nb_node *gh = nb_mul(g, gy, gamma);
        nb_node *proj = nb_mul(g, xhat, nb_mean(g, nb_mul(g, gh, xhat), axes, n, true));
        gx[0] = nb_mul(g, r, nb_sub(g, nb_sub(g, gh, nb_mean(g, gh, axes, n, true)), proj));
    }
    if (nb_needs_grad(needs, 1)) gx[1] = nb_mul(g, gy, xhat);
    if (nb_needs_grad(needs, 2)) gx[2] = gy;
    return NB_OK;
}

/* mean, variance, normalise, scale, shift */
static double layernorm_flops(const nb_kctx *k) { return 8.0 * (double)nb_dims_numel(&k->out_shape); }

#define AXIS(v) .attrs = {NB_AINT("axis", v)}, .n_attrs = 1
static const nb_op_case layernorm_cases[] = {
    {.in = {"2,3,4", "4", "4"}},
    {.in = {"2,3,4", "3,4", "3,4"}, AXIS(1)},
    {.in = {"2,3,4", "2,3,4", "2,3,4"}, AXIS(0)},
    {.in = {"3,5", "5", "5"}, .lo = -3, .hi = 3, AXIS(-1)},
    {.in = {"6", "6", "6"}},
    {.in = {"2,1,3", "3", "3"}, .attrs = {NB_AFLOAT("eps", 0.1)}, .n_attrs = 1},
    {.in = {"3,1", "1", "1"}},
};

static const nb_attr_def layernorm_attrs[] = {
    {"axis", NB_ATTR_INT, false, {.i = {-1}}},
    {"eps", NB_ATTR_FLOAT, false, {.f = 1e-5}},
};

const nb_op_def nb_op_layernorm = {
    .name = "layernorm", .min_in = 3, .max_in = 3, .attrs = layernorm_attrs, .n_attrs = 2,
    .shape = layernorm_shape, .forward = layernorm_fwd, .backward = layernorm_bwd,
    .flops = layernorm_flops, .cases = layernorm_cases, .n_cases = NB_NELEMS(layernorm_cases),
    .doc = "x normalised over axes axis..last (biased variance + eps), times gamma plus beta"};

nb_node *nb_layernorm(nb_graph *g, nb_node *x, nb_node *gamma, nb_node *beta, int64_t axis,
                      double eps)
{
    return nb_apply(g, &nb_op_layernorm, NULL, (nb_node *[]){x, gamma, beta}, 3,
                    (nb_attr[]){NB_AINT("axis", axis), NB_AFLOAT("eps", eps)}, 2);
}

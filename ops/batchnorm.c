/* batchnorm(x [N, C, ...], gamma [C], beta [C]; eps, momentum), normalising
 * over every axis but 1, with its running statistics as op-owned state:
 * nb_op appends the params NODE.running_mean (zeros) and NODE.running_var
 * (ones) to its inputs. While training it normalises with the batch's mean and
 * biased variance and moves the running statistics towards them (PyTorch:
 * new = (1 - momentum) * old + momentum * batch, with the unbiased variance);
 * in eval mode it normalises with the running statistics.
 *
 * Gradient ops (the mode decides which statistics they use, as in the forward):
 *   batchnorm_backward(gy, x, running_mean, running_var[, gamma]; eps)   gx
 *   batchnorm_xhat(x, running_mean, running_var; eps)   x̂ = (x - mean) / σ
 *   batchnorm_invstd(x, running_mean, running_var; eps)   [1, C, 1, ...]:
 *       1/σ of the batch while training, 0 in eval mode
 * d gamma = sum(gy * x̂) and d beta = sum(gy) over every axis but 1 are built
 * from primitives. batchnorm_xhat's gradient is batchnorm_backward without
 * gamma. The first-order gradient of x is the fused batchnorm_backward kernel;
 * its own gradient rule (second order) is built of these three ops and
 * primitives, so any order works. The statistics are functions of x while
 * training (differentiated through, as PyTorch) and constants in eval mode:
 * batchnorm_invstd is the factor by which every term that differentiates
 * through the statistics is scaled, so being 0 in eval mode it removes them
 * without the graph knowing the mode, which is chosen per plan run. */
#include <math.h>
#include <string.h>

#include "kernel.h"

enum { A_EPS, A_MOMENTUM };  /* bn_attrs; eps_attrs (the gradient ops) hold A_EPS alone */

/* x viewed as [n, c, s]: s is the product of the axes after 1 */
typedef struct bnl {
    int64_t n, c, s, count;  /* count = n * s, the values per channel */
} bnl;

static bnl layout_of(const nb_dims *x)
{
    bnl L = {x->d[0], x->d[1], 1, 0};
    for (int a = 2; a < x->rank; a++) L.s *= x->d[a];
    L.count = L.n * L.s;
    return L;
}

#define NB_TEMPLATE "batchnorm_t.h"
#include "template.h"

/* ---- shape rules ---- */

static nb_status check_eps(nb_shape_ctx *c)
{
    double eps = c->attr[A_EPS].f;
    if (!(eps >= 0 && isfinite(eps)))
        return nb_shape_fail(c, NB_ERR_ARG, "needs eps >= 0; got %g", eps);
    return NB_OK;
}

/* Input ix is x [N, C, ...] with a fixed C, and inputs vec[0..n_vec) (those
 * present) are [C] vectors named by names[]. */
static nb_status channels(nb_shape_ctx *c, int ix, const int *vec, const char *const *names,
                          int n_vec)
{
    nb_status st = nb_shape_float_inputs(c);
    if (!st) st = check_eps(c);
    if (st) return st;
    const nb_shape *x = &c->in[ix];
    if (x->rank < 2)
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs x [N, C, ...] of rank 2 or more; %s",
                             nb_shape_desc(c, ix));
    if (!nb_sdim_is_const(x->d[1]))
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs x [N, C, ...] with a fixed C; %s",
                             nb_shape_desc(c, ix));
    nb_shape want = {.rank = 1, .d = {x->d[1]}};
    for (int k = 0; k < n_vec && !st; k++)
        if (vec[k] < c->n_in) st = nb_shape_expect(c, vec[k], &want, names[k]);
    c->out = *x;
    return st;
}

static nb_status bn_shape(nb_shape_ctx *c)
{
    static const char *const names[] = {"gamma", "beta", "running_mean", "running_var"};
    nb_status st = channels(c, 0, (const int[]){1, 2, 3, 4}, names, 4);
    double m = c->attr[A_MOMENTUM].f;
    if (!st && !(m >= 0 && m <= 1))
        return nb_shape_fail(c, NB_ERR_ARG, "needs 0 <= momentum <= 1; got %g", m);
    return st;
}

/* gy and x of one shape */
static nb_status backward_shape(nb_shape_ctx *c)
{
    static const char *const names[] = {"running_mean", "running_var", "gamma"};
    nb_status st = channels(c, 1, (const int[]){2, 3, 4}, names, 3);
    if (!st) st = nb_shape_expect(c, 0, &c->in[1], "a gradient of x's shape");
    return st;
}

static nb_status xhat_shape(nb_shape_ctx *c)
{
    static const char *const names[] = {"running_mean", "running_var"};
    return channels(c, 0, (const int[]){1, 2}, names, 2);
}

/* [1, C, 1, ...]: broadcasts against x */
static nb_status invstd_shape(nb_shape_ctx *c)
{
    nb_status st = xhat_shape(c);
    for (int a = 0; a < c->out.rank && !st; a++)
        if (a != 1) c->out.d[a] = nb_sdim_const(1);
    return st;
}

/* ---- kernels ---- */

static nb_status bn_fwd(const nb_kctx *k)
{
    bnl L = layout_of(&k->in_shape[0]);
    if (k->n_in < 5) return nb_kernel_fail(k, "batchnorm has no running statistics");
    if (k->training && L.count < 2)
        return nb_kernel_fail(k, "batchnorm needs more than one value per channel while "
                              "training; x has %lld", (long long)L.count);
    if (k->dtype == NB_F64)
        bn_forward_f64(k, &L);
    else
        bn_forward_f32(k, &L);
    return NB_OK;
}

static nb_status xhat_fwd(const nb_kctx *k)
{
    bnl L = layout_of(&k->in_shape[0]);
    if (k->dtype == NB_F64)
        bn_xhat_f64(k, &L);
    else
        bn_xhat_f32(k, &L);
    return NB_OK;
}

static nb_status invstd_fwd(const nb_kctx *k)
{
    bnl L = layout_of(&k->in_shape[0]);
    if (k->dtype == NB_F64)
        bn_invstd_f64(k, &L);
    else
        bn_invstd_f32(k, &L);
    return NB_OK;
}

static nb_status backward_fwd(const nb_kctx *k)
{
    bnl L = layout_of(&k->in_shape[1]);
    if (k->dtype == NB_F64)
        bn_backward_f64(k, &L);
    else
        bn_backward_f32(k, &L);
    return NB_OK;
}

static double bn_flops(const nb_kctx *k) { return 8.0 * (double)nb_dims_numel(&k->out_shape); }
static double backward_flops(const nb_kctx *k) { return 12.0 * (double)nb_dims_numel(&k->out_shape); }

/* ---- gradients ---- */

static nb_attr eps_attr(const nb_node *y)
{
    return (nb_attr)NB_AFLOAT("eps", nb__attr(y, A_EPS)->f);
}

/* The axes of x but 1 (those batchnorm's statistics run over) into axes. */
static int stat_axes(const nb_node *x, int64_t *axes)
{
    int n = 0;
    for (int a = 0; a < nb_node_rank(x); a++)
        if (a != 1) axes[n++] = a;
    return n;
}

/* One of the mode-aware gradient ops on (x, running_mean, running_var). */
static nb_node *stat_op(nb_graph *g, const nb_op_def *op, nb_node *x, nb_node *rm, nb_node *rv,
                        nb_attr eps)
{
    return nb_apply(g, op, NULL, (nb_node *[]){x, rm, rv}, 3, &eps, 1);
}

/* batchnorm_backward(v, x, rm, rv[, gamma]) for another v */
static nb_node *bn_backward_of(nb_graph *g, nb_node *v, nb_node *x, nb_node *rm, nb_node *rv,
                               nb_node *gamma, nb_attr eps)
{
    return nb_apply(g, &nb_op_batchnorm_backward, NULL, (nb_node *[]){v, x, rm, rv, gamma},
                    gamma ? 5 : 4, &eps, 1);
}

static nb_status bn_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    nb_node *x = nb_node_input(y, 0), *gamma = nb_node_input(y, 1);
    nb_node *rm = nb_node_input(y, 3), *rv = nb_node_input(y, 4);
    nb_attr eps = eps_attr(y);
    int64_t axes[NB_MAX_DIMS];
    int n = stat_axes(x, axes);
    if (nb_needs_grad(needs, 0))
        gx[0] = nb_apply(g, &nb_op_batchnorm_backward, NULL, (nb_node *[]){gy, x, rm, rv, gamma},
                         5, &eps, 1);
    if (nb_needs_grad(needs, 1)) {
        nb_node *xhat = stat_op(g, &nb_op_batchnorm_xhat, x, rm, rv, eps);
        gx[1] = nb_sum(g, nb_mul(g, gy, xhat), axes, n, false);
    }
    if (nb_needs_grad(needs, 2)) gx[2] = nb_sum(g, gy, axes, n, false);
    return NB_OK;
}

/* x̂ is batchnorm with gamma 1 and beta 0 */
static nb_status xhat_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    nb_attr eps = eps_attr(y);
    nb_node *in[4] = {gy, nb_node_input(y, 0), nb_node_input(y, 1), nb_node_input(y, 2)};
    gx[0] = nb_apply(g, &nb_op_batchnorm_backward, NULL, in, 4, &eps, 1);
    return NB_OK;
}

/* The gradient of gx = batchnorm_backward(g, x, rm, rv, γ) = B(g), given u,
 * the gradient flowing into gx. Per channel, with means over it, x̂ and σ:
 *   training  B(g) = γ/σ · P(g),  P(g) = g − mean(g) − x̂ · mean(g · x̂)
 *   eval      B(g) = γ/σ · g      (σ of the running variance)
 * B is linear in g and P symmetric, so d g = B(u) in both modes and
 * d γ = sum(u · B(g) / γ) = sum(u · B(g) without γ). Differentiating x̂ and σ
 * while training (d x̂_j/d x_i = (δ_ij − 1/n − x̂_i x̂_j / n) / σ, d σ⁻¹/d x_i =
 * −x̂_i / (n σ²)) gives
 *   d x = −1/σ · (x̂ · mean(u · B(g)) + mean(g · x̂) · B(u) + mean(u · x̂) · B(g))
 * and 0 in eval mode, where the statistics are constants: batchnorm_invstd
 * (1/σ while training, 0 in eval) is that leading factor. */
static nb_status bnb_bwd(nb_graph *g, nb_node *y, nb_node *u, uint64_t needs, nb_node **gx)
{
    nb_node *gy = nb_node_input(y, 0), *x = nb_node_input(y, 1);
    nb_node *rm = nb_node_input(y, 2), *rv = nb_node_input(y, 3);
    nb_node *gamma = nb_node_num_inputs(y) > 4 ? nb_node_input(y, 4) : NULL;
    nb_attr eps = eps_attr(y);
    int64_t axes[NB_MAX_DIMS];
    int n = stat_axes(x, axes);
    nb_node *bu = NULL;
    if (nb_needs_grad(needs, 0) || nb_needs_grad(needs, 1))
        bu = bn_backward_of(g, u, x, rm, rv, gamma, eps);
    if (nb_needs_grad(needs, 0)) gx[0] = bu;
    if (nb_needs_grad(needs, 4))
        gx[4] = nb_sum(g, nb_mul(g, u, bn_backward_of(g, gy, x, rm, rv, NULL, eps)), axes, n, false);
    if (nb_needs_grad(needs, 1)) {
        nb_node *xh = stat_op(g, &nb_op_batchnorm_xhat, x, rm, rv, eps);
        nb_node *z = stat_op(g, &nb_op_batchnorm_invstd, x, rm, rv, eps);
        nb_node *t1 = nb_mul(g, xh, nb_mean(g, nb_mul(g, u, y), axes, n, true));
        nb_node *t2 = nb_mul(g, bu, nb_mean(g, nb_mul(g, gy, xh), axes, n, true));
        nb_node *t3 = nb_mul(g, y, nb_mean(g, nb_mul(g, u, xh), axes, n, true));
        gx[1] = nb_neg(g, nb_mul(g, z, nb_add(g, nb_add(g, t1, t2), t3)));
    }
    return NB_OK;
}

/* z = 1/σ while training: d z / d x_i = −z² · x̂_i / n (n values per channel),
 * the 1/n as mean's gradient (unreduce); 0 in eval mode through z itself. */
static nb_status invstd_bwd(nb_graph *g, nb_node *z, nb_node *gz, uint64_t needs, nb_node **gx)
{
    (void)needs;
    nb_node *x = nb_node_input(z, 0), *rm = nb_node_input(z, 1), *rv = nb_node_input(z, 2);
    int64_t axes[NB_MAX_DIMS];
    int n = stat_axes(x, axes);
    nb_attr ua[3] = {{.name = "axis", .type = NB_ATTR_INTS, .n = n}, NB_ABOOL("keepdims", 1),
                     NB_ABOOL("mean", 1)};
    memcpy(ua[0].i, axes, (size_t)n * sizeof *axes);
    nb_node *share = nb_apply(g, &nb_op_unreduce, NULL, (nb_node *[]){gz, x}, 2, ua, 3);
    nb_node *xh = stat_op(g, &nb_op_batchnorm_xhat, x, rm, rv, eps_attr(z));
    gx[0] = nb_neg(g, nb_mul(g, nb_mul(g, z, z), nb_mul(g, xh, share)));
    return NB_OK;
}

/* ---- definitions ---- */

static const nb_attr_def bn_attrs[] = {{"eps", NB_ATTR_FLOAT, false, {.f = 1e-5}},
                                       {"momentum", NB_ATTR_FLOAT, false, {.f = 0.1}}};
static const nb_attr_def eps_attrs[] = {{"eps", NB_ATTR_FLOAT, false, {.f = 1e-5}}};

static const nb_state_def bn_state[] = {{"running_mean", NB_INIT_ZEROS, 0, 1},
                                        {"running_var", NB_INIT_ONES, 0, 1}};

/* Every case has more than one value per channel, so that they also hold in
 * training mode (nabla gradcheck --op). */
static const nb_op_case bn_cases[] = {
    {.in = {"4,3", "3", "3"}},
    {.in = {"2,3,2,2", "3", "3"}, .attrs = {NB_AFLOAT("eps", 1e-3)}, .n_attrs = 1},
    {.in = {"1,2,3,1", "2", "2"}, .attrs = {NB_AFLOAT("momentum", 0.5)}, .n_attrs = 1},
    {.in = {"3,1", "1", "1"}, .attrs = {NB_AFLOAT("eps", 0.1)}, .n_attrs = 1},
};
/* the running variance must stay positive */
static const nb_op_case xhat_cases[] = {
    {.in = {"4,3", "3", "3"}, .lo = 0.2, .hi = 1},
    {.in = {"2,2,3", "2", "2"}, .lo = 0.2, .hi = 1, .attrs = {NB_AFLOAT("eps", 0.01)}, .n_attrs = 1},
};

/* gy, x, running_mean, running_var[, gamma]; all positive (the running variance) */
static const nb_op_case bnb_cases[] = {
    {.in = {"4,3", "4,3", "3", "3", "3"}, .lo = 0.2, .hi = 1},
    {.in = {"2,2,3", "2,2,3", "2", "2"}, .lo = 0.2, .hi = 1, .attrs = {NB_AFLOAT("eps", 0.01)}, .n_attrs = 1},
    {.in = {"2,3,2,2", "2,3,2,2", "3", "3", "3"}, .lo = 0.2, .hi = 1},
    {.in = {"3,1", "3,1", "1", "1", "1"}, .lo = 0.2, .hi = 1, .attrs = {NB_AFLOAT("eps", 0.1)}, .n_attrs = 1},
};

const nb_op_def nb_op_batchnorm = {
    .name = "batchnorm", .min_in = 3, .max_in = 3, .attrs = bn_attrs, .n_attrs = 2,
    .state = bn_state, .n_state = 2, .shape = bn_shape, .forward = bn_fwd, .backward = bn_bwd,
    .flops = bn_flops, .cases = bn_cases, .n_cases = NB_NELEMS(bn_cases),
    .doc = "x normalised over every axis but 1, times gamma plus beta; running statistics in eval"};
const nb_op_def nb_op_batchnorm_backward = {
    .name = "batchnorm_backward", .min_in = 4, .max_in = 5, .attrs = eps_attrs, .n_attrs = 1,
    .flags = NB_OP_INTERNAL, .no_grad = 0xc, .shape = backward_shape, .forward = backward_fwd,
    .backward = bnb_bwd, .flops = backward_flops, .cases = bnb_cases,
    .n_cases = NB_NELEMS(bnb_cases), .doc = "gradient of batchnorm wrt x (gamma 1 when not given)"};
const nb_op_def nb_op_batchnorm_invstd = {
    .name = "batchnorm_invstd", .min_in = 3, .max_in = 3, .attrs = eps_attrs, .n_attrs = 1,
    .flags = NB_OP_INTERNAL, .no_grad = 0x6, .shape = invstd_shape, .forward = invstd_fwd,
    .backward = invstd_bwd, .flops = nb_flops_per_in, .cases = xhat_cases,
    .n_cases = NB_NELEMS(xhat_cases),
    .doc = "1/sqrt(var + eps) of the batch per channel while training, 0 in eval mode"};
const nb_op_def nb_op_batchnorm_xhat = {
    .name = "batchnorm_xhat", .min_in = 3, .max_in = 3, .attrs = eps_attrs, .n_attrs = 1,
    .flags = NB_OP_INTERNAL, .no_grad = 0x6, .shape = xhat_shape, .forward = xhat_fwd,
    .backward = xhat_bwd, .flops = bn_flops, .cases = xhat_cases, .n_cases = NB_NELEMS(xhat_cases),
    .doc = "batchnorm's normalised x, (x - mean) / sqrt(var + eps)"};

nb_node *nb_batchnorm(nb_graph *g, nb_node *x, nb_node *gamma, nb_node *beta, double eps,
                      double momentum)
{
    nb_attr a[2] = {NB_AFLOAT("eps", eps), NB_AFLOAT("momentum", momentum)};
    return nb_apply(g, &nb_op_batchnorm, NULL, (nb_node *[]){x, gamma, beta}, 3, a, 2);
}

/* Activations relu, leaky_relu, sigmoid, tanh and the fused gradient ops of
 * the piecewise-linear ones:
 *   relu_backward(gy, a)               0 where a <= 0, else gy (NaN a passes gy)
 *   leaky_relu_backward(gy, a; alpha)  gy where a > 0, else alpha * gy
 * Both are linear in gy, so their own gradient is the same op applied to the
 * incoming gradient; a gets none (the second derivative is 0 almost
 * everywhere), which keeps second order working. sigmoid and tanh express
 * their gradients through y with primitives, so they differentiate twice. */
#include <tgmath.h>

#include "kernel.h"

/* leaky_relu and leaky_relu_backward */
enum { A_ALPHA };
/* NaN propagates (PyTorch): NaN <= 0 is false, so NaN passes through */
NB_UNARY_ROWS(relu, x <= 0 ? 0 : x)
NB_UNARY_ROWS(leaky_relu, x > 0 ? x : p0 * x)
/* without overflow: exp only ever sees -|x| */
NB_UNARY_ROWS(sigmoid, (x >= 0 ? 1 : exp(x)) / (1 + exp(-fabs(x))))
NB_UNARY_ROWS(tanh, tanh(x))

static nb_status relu_fwd(const nb_kctx *k) { return nb_unary_run(k, relu_f32, relu_f64, 0, 0); }
static nb_status sigmoid_fwd(const nb_kctx *k) { return nb_unary_run(k, sigmoid_f32, sigmoid_f64, 0, 0); }
static nb_status tanh_fwd(const nb_kctx *k) { return nb_unary_run(k, tanh_f32, tanh_f64, 0, 0); }
static nb_status leaky_relu_fwd(const nb_kctx *k)
{
    return nb_unary_run(k, leaky_relu_f32, leaky_relu_f64, k->attr[A_ALPHA].f, 0);
}

/* ---- gradients ---- */

static nb_node *relu_grad(nb_graph *g, nb_node *gy, nb_node *a)
{
    return nb_apply(g, &nb_op_relu_backward, NULL, (nb_node *[]){gy, a}, 2, NULL, 0);
}

static nb_node *leaky_grad(nb_graph *g, nb_node *gy, nb_node *a, double alpha)
{
    return nb_apply(g, &nb_op_leaky_relu_backward, NULL, (nb_node *[]){gy, a}, 2,
                    (nb_attr[]){NB_AFLOAT("alpha", alpha)}, 1);
}

/* The gate is relu's output y (y <= 0 exactly where x <= 0, and a NaN x gives
 * a NaN y, which passes gy as a NaN x would), so that x need not stay alive
 * for the backward pass: a conv layer's pre-activation (6.9 MB in
 * SimpleConvNet) dies at the relu. relu_backward's gate is its input a (it is
 * linear in gy). */
static nb_status relu_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = relu_grad(g, gy, y);
    return NB_OK;
}

static nb_status relu_backward_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs,
                                   nb_node **gx)
{
    (void)needs;
    gx[0] = relu_grad(g, gy, nb_node_input(y, 1));
    return NB_OK;
}

/* As relu's, the gate is the output when that tells the same (alpha >= 0:
 * y > 0 exactly where x > 0); a negative alpha makes y > 0 for x < 0, so then
 * the input. */
static nb_status leaky_relu_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    double alpha = nb__attr(y, A_ALPHA)->f;
    gx[0] = leaky_grad(g, gy, alpha >= 0 ? y : nb_node_input(y, 0), alpha);
    return NB_OK;
}

static nb_status leaky_relu_backward_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs,
                                         nb_node **gx)
{
    (void)needs;
    gx[0] = leaky_grad(g, gy, nb_node_input(y, 1), nb__attr(y, A_ALPHA)->f);
    return NB_OK;
}

/* sigmoid' = y (1 - y) */
static nb_status sigmoid_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = nb_mul(g, gy, nb_mul(g, y, nb_scale(g, y, -1, 1)));
    return NB_OK;
}

/* tanh' = 1 - y^2 */
static nb_status tanh_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = nb_mul(g, gy, nb_scale(g, nb_mul(g, y, y), -1, 1));
    return NB_OK;
}

/* ---- the fused gradient kernel: gy where a > 0, else alpha * gy ---- */

/* gy and a have the output's shape (autodiff's gradients have their node's) */
static nb_status pass_shape(nb_shape_ctx *c)
{
    nb_status st = nb_shape_float_inputs(c);
    if (st) return st;
    if (!nb_shape_eq(&c->in[0], &c->in[1]))
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs gy and a of equal shapes; %s, %s",
                             nb_shape_desc(c, 0), nb_shape_desc(c, 1));
    c->out = c->in[0];
    return NB_OK;
}

/* Selects, as PyTorch's threshold_backward and leaky_relu_backward do, rather
 * than multiplying gy by a 0/1 gate: relu's gradient is exactly 0 where
 * a <= 0 even when gy is inf or NaN (so sqrt(relu(x)) has gradient 0 at
 * x < 0, not inf * 0), and gy passes where a is NaN (NaN <= 0 is false);
 * leaky_relu's is alpha * gy wherever a > 0 is false, NaN included. A
 * select (with -fno-trapping-math) if-converts, so the loops vectorise
 * without a branch -- if both sides are loaded unconditionally: GCC will not
 * invent a load the source skips (it was a branch per element, 2.5 ns each,
 * a third of SimpleConvNet's step). No restrict: out may be gy's or a's buffer (the op runs
 * in place); GCC checks for overlap at run time. */
#define PASS_KERNEL(T)                                                                     \
    static void relu_pass_##T(const T *gy, const T *a, T *out, size_t n)                   \
    {                                                                                      \
        for (size_t i = 0; i < n; i++) {                                                   \
            T g = gy[i]; /* loaded on both paths, or GCC keeps a branch per element */      \
            out[i] = a[i] <= 0 ? 0 : g;                                                    \
        }                                                                                  \
    }                                                                                      \
    static void leaky_pass_##T(const T *gy, const T *a, T *out, size_t n, T alpha)         \
    {                                                                                      \
        for (size_t i = 0; i < n; i++) out[i] = a[i] > 0 ? gy[i] : alpha * gy[i];          \
    }
PASS_KERNEL(float)
PASS_KERNEL(double)

static void relu_pass_part(void *arg, int64_t lo, int64_t hi, int part)
{
    const nb_kctx *k = arg;
    (void)part;
    if (k->dtype == NB_F64)
        relu_pass_double((const double *)k->in[0] + lo, (const double *)k->in[1] + lo,
                         (double *)k->out + lo, (size_t)(hi - lo));
    else
        relu_pass_float((const float *)k->in[0] + lo, (const float *)k->in[1] + lo,
                        (float *)k->out + lo, (size_t)(hi - lo));
}

static nb_status relu_backward_fwd(const nb_kctx *k)
{
    nb_elementwise_parallel(k, (int64_t)nb_dims_numel(&k->out_shape), relu_pass_part, (void *)k);
    return NB_OK;
}

static nb_status leaky_relu_backward_fwd(const nb_kctx *k)
{
    size_t n = nb_dims_numel(&k->out_shape);
    double alpha = k->attr[A_ALPHA].f;
    if (k->dtype == NB_F64)
        leaky_pass_double(k->in[0], k->in[1], k->out, n, alpha);
    else
        leaky_pass_float(k->in[0], k->in[1], k->out, n, (float)alpha);
    return NB_OK;
}

/* ---- definitions ---- */

/* relu-like ops away from their kink at 0, on both sides */
static const nb_op_case relu_cases[] = {
    {.in = {"3,4"}, .lo = 0.1, .hi = 1},
    {.in = {"2,1,3"}, .lo = -1, .hi = -0.1},
    {.in = {""}, .lo = 0.1, .hi = 1},
    {.in = {""}, .lo = -1, .hi = -0.1},
};
static const nb_op_case leaky_cases[] = {
    {.in = {"3,4"}, .lo = 0.1, .hi = 1},
    {.in = {"2,1,3"}, .lo = -1, .hi = -0.1},
    {.in = {"5"}, .lo = -1, .hi = -0.1, .attrs = {NB_AFLOAT("alpha", 0.2)}, .n_attrs = 1},
    {.in = {""}, .lo = -1, .hi = -0.1, .attrs = {NB_AFLOAT("alpha", -0.5)}, .n_attrs = 1},
    {.in = {""}, .lo = 0.1, .hi = 1, .attrs = {NB_AFLOAT("alpha", 0.3)}, .n_attrs = 1},
};
/* a is not differentiated, so it may straddle 0 */
static const nb_op_case pass_cases[] = {{.in = {"3,4", "3,4"}}, {.in = {"", ""}}};
static const nb_op_case leaky_pass_cases[] = {
    {.in = {"3,4", "3,4"}},
    {.in = {"", ""}, .attrs = {NB_AFLOAT("alpha", 0.25)}, .n_attrs = 1},
};
static const nb_op_case smooth_cases[] = {
    {.in = {"3,4"}}, {.in = {"2,1,3"}, .lo = -6, .hi = 6}, {.in = {""}, .lo = -3, .hi = 3}};

static const nb_attr_def alpha_attrs[] = {{"alpha", NB_ATTR_FLOAT, false, {.f = 0.01}}};

#define ACT_OP(NAME, CASES, ...)                                                      \
    const nb_op_def nb_op_##NAME = {                                                  \
        .name = #NAME, .min_in = 1, .max_in = 1, .flags = NB_OP_INPLACE,             \
        .shape = nb_rule_same, .forward = NAME##_fwd, .backward = NAME##_bwd,         \
        .flops = nb_flops_per_out, .cases = CASES, .n_cases = NB_NELEMS(CASES),       \
        __VA_ARGS__}

ACT_OP(relu, relu_cases, .doc = "max(a, 0) (gradient 0 at 0; NaN stays NaN)");
ACT_OP(leaky_relu, leaky_cases, .attrs = alpha_attrs, .n_attrs = 1,
       .doc = "a where a > 0, else alpha * a (gradient alpha at 0)");
ACT_OP(sigmoid, smooth_cases, .doc = "1 / (1 + e^-a)");
ACT_OP(tanh, smooth_cases, .doc = "hyperbolic tangent");

#define PASS_OP(NAME, CASES, ...)                                                     \
    const nb_op_def nb_op_##NAME = {                                                  \
        .name = #NAME, .min_in = 2, .max_in = 2,                                      \
        .flags = NB_OP_INTERNAL | NB_OP_INPLACE,                                      \
        .no_grad = 2, .shape = pass_shape, .forward = NAME##_fwd,                     \
        .backward = NAME##_bwd, .flops = nb_flops_per_out, .cases = CASES,            \
        .n_cases = NB_NELEMS(CASES), __VA_ARGS__}

PASS_OP(relu_backward, pass_cases, .doc = "gradient of relu: exactly 0 where a <= 0, else gy");
PASS_OP(leaky_relu_backward, leaky_pass_cases, .attrs = alpha_attrs, .n_attrs = 1,
        .doc = "gradient of leaky_relu: gy where a > 0, else alpha * gy");

/* ---- typed helpers ---- */

static nb_node *unary(nb_graph *g, const nb_op_def *op, nb_node *a)
{
    return nb_apply(g, op, NULL, (nb_node *[]){a}, 1, NULL, 0);
}

nb_node *nb_relu(nb_graph *g, nb_node *a) { return unary(g, &nb_op_relu, a); }
nb_node *nb_sigmoid(nb_graph *g, nb_node *a) { return unary(g, &nb_op_sigmoid, a); }
nb_node *nb_tanh(nb_graph *g, nb_node *a) { return unary(g, &nb_op_tanh, a); }

nb_node *nb_leaky_relu(nb_graph *g, nb_node *a, double alpha)
{
    return nb_apply(g, &nb_op_leaky_relu, NULL, (nb_node *[]){a}, 1,
                    (nb_attr[]){NB_AFLOAT("alpha", alpha)}, 1);
}

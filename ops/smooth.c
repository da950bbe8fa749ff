/* Smooth activations (issue 9), PyTorch's definitions forward and backward:
 *   gelu(a; approximate)       a·Φ(a), or with "tanh" 0.5a(1 + tanh(√(2/π)(a + 0.044715a³)))
 *   silu(a)                    a·σ(a)
 *   elu(a; alpha)              a where a > 0, else alpha·(e^a − 1)
 *   softplus(a; beta, thr.)    log(1 + e^(beta·a)) / beta, or a where beta·a > threshold
 * and the derivative ops the costlier ones differentiate through (internal):
 *   gelu_grad(a; approximate)  gelu'(a)
 *   elu_grad(a; alpha, above)  alpha·e^a where a < 0, else `above` (1: elu', 0: elu'');
 *                              at 0 alpha for elu', 0 for elu'' (PyTorch)
 *   softplus_grad(a; beta, t.) 1 where beta·a > threshold, else σ(beta·a)
 * A gradient is gy times the derivative op; the derivative ops differentiate
 * again through primitives (or through themselves), so every order works. */
#include <tgmath.h>

#include "kernel.h"

#define SQRT1_2 0.70710678118654752440     /* 1/√2 */
#define INV_SQRT_2PI 0.39894228040143267794 /* 1/√(2π) */
#define GELU_K 0.79788456080286535588      /* √(2/π) */
#define GELU_C 0.044715

/* ---- attributes ---- */

static const char *const gelu_modes[] = {"none", "tanh", NULL};
enum { G_APPROX };
static const nb_attr_def gelu_attrs[] = {
    {"approximate", NB_ATTR_STRING, false, {.s = "none", .i = {0}, .choices = gelu_modes}}};
enum { E_ALPHA, E_ABOVE };
static const nb_attr_def elu_attrs[] = {{"alpha", NB_ATTR_FLOAT, false, {.f = 1}},
                                        {"above", NB_ATTR_FLOAT, false, {.f = 1}}};
enum { SP_BETA, SP_THRESHOLD };
static const nb_attr_def softplus_attrs[] = {{"beta", NB_ATTR_FLOAT, false, {.f = 1}},
                                             {"threshold", NB_ATTR_FLOAT, false, {.f = 20}}};

static bool tanh_mode(const nb_attr *a) { return a[G_APPROX].i[0] == 1; }

/* ---- kernels (p0, p1: the op's two numbers) ---- */

/* Each expression is a macro of the element type T, so that constants are
 * of the kernel's own type (a double constant would make the f32 kernel
 * compute in double). */
#define ROWS(NAME, EXPR) NB_UNARY_ROW(NAME##_f32, float, EXPR(float)) \
    NB_UNARY_ROW(NAME##_f64, double, EXPR(double))

#define GELU_ERF(T) x * (T)0.5 * (1 + erf(x * (T)SQRT1_2))
#define TANH_U(T) tanh((T)GELU_K * (x + (T)GELU_C * x * x * x))
#define GELU_TANH(T) (T)0.5 * x * (1 + TANH_U(T))
#define GELU_GRAD_ERF(T) \
    (T)0.5 * (1 + erf(x * (T)SQRT1_2)) + x * (T)INV_SQRT_2PI * exp((T)-0.5 * x * x)
/* as PyTorch's GeluBackward with approximate='tanh' */
#define GELU_GRAD_TANH(T)                                                        \
    (T)0.5 * (1 + TANH_U(T)) +                                                   \
        (T)0.5 * x * (1 - TANH_U(T) * TANH_U(T)) * (T)GELU_K * (1 + 3 * (T)GELU_C * x * x)
/* without overflow: exp only ever sees -|x| (as activation.c's sigmoid) */
#define SILU(T) x * ((x >= 0 ? 1 : exp(x)) / (1 + exp(-fabs(x))))
/* NaN takes the a > 0 side (a <= 0 is false), as in PyTorch */
#define ELU(T) x <= 0 ? p0 * expm1(x) : x
/* at 0, as PyTorch: elu' is alpha (its backward tests a <= 0), elu'' is 0
 * (its double backward tests a < 0) */
#define ELU_GRAD(T) x < 0 ? p0 * exp(x) : (x == 0 && p1 != 0) ? p0 : p1
#define SOFTPLUS(T) x * p0 > p1 ? x : log1p(exp(x * p0)) / p0
#define SOFTPLUS_GRAD(T) x * p0 > p1 ? 1 : exp(x * p0) / (exp(x * p0) + 1)

ROWS(gelu_erf, GELU_ERF)
ROWS(gelu_tanh, GELU_TANH)
ROWS(gelu_grad_erf, GELU_GRAD_ERF)
ROWS(gelu_grad_tanh, GELU_GRAD_TANH)
ROWS(silu, SILU)
ROWS(elu, ELU)
ROWS(elu_grad, ELU_GRAD)
ROWS(softplus, SOFTPLUS)
ROWS(softplus_grad, SOFTPLUS_GRAD)

static nb_status gelu_fwd(const nb_kctx *k)
{
    if (tanh_mode(k->attr)) return nb_unary_run(k, gelu_tanh_f32, gelu_tanh_f64, 0, 0);
    return nb_unary_run(k, gelu_erf_f32, gelu_erf_f64, 0, 0);
}
static nb_status gelu_grad_fwd(const nb_kctx *k)
{
    if (tanh_mode(k->attr)) return nb_unary_run(k, gelu_grad_tanh_f32, gelu_grad_tanh_f64, 0, 0);
    return nb_unary_run(k, gelu_grad_erf_f32, gelu_grad_erf_f64, 0, 0);
}
static nb_status silu_fwd(const nb_kctx *k) { return nb_unary_run(k, silu_f32, silu_f64, 0, 0); }
static nb_status elu_fwd(const nb_kctx *k)
{
    return nb_unary_run(k, elu_f32, elu_f64, k->attr[E_ALPHA].f, 0);
}
static nb_status elu_grad_fwd(const nb_kctx *k)
{
    return nb_unary_run(k, elu_grad_f32, elu_grad_f64, k->attr[E_ALPHA].f, k->attr[E_ABOVE].f);
}
static nb_status softplus_fwd(const nb_kctx *k)
{
    return nb_unary_run(k, softplus_f32, softplus_f64, k->attr[SP_BETA].f, k->attr[SP_THRESHOLD].f);
}
static nb_status softplus_grad_fwd(const nb_kctx *k)
{
    return nb_unary_run(k, softplus_grad_f32, softplus_grad_f64, k->attr[SP_BETA].f,
                        k->attr[SP_THRESHOLD].f);
}

/* ---- gradients ---- */

static nb_node *unary_attrs(nb_graph *g, const nb_op_def *op, nb_node *a, const nb_attr *at, int n)
{
    return nb_apply(g, op, NULL, &a, 1, at, n);
}

/* gy · gelu'(a) */
static nb_status gelu_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    nb_attr at = NB_ASTRING("approximate", nb__attr(y, G_APPROX)->s);
    gx[0] = nb_mul(g, gy, unary_attrs(g, &nb_op_gelu_grad, nb_node_input(y, 0), &at, 1));
    return NB_OK;
}

/* gelu''(a), from primitives. erf: φ(a)(2 − a²). tanh, with t = tanh(u),
 * u = k(a + c·a³), u' = k(1 + 3c·a²), u'' = 6kc·a:
 * (1 − t²)(u' − a·t·u'² + a·u''/2) = (1 − t²)(k + 6kc·a² − a·t·u'²). */
static nb_status gelu_grad_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    nb_node *a = nb_node_input(y, 0), *a2 = nb_mul(g, a, a), *d2;
    if (nb__attr(y, G_APPROX)->i[0] != 1) {
        nb_node *phi = nb_scale(g, nb_exp(g, nb_scale(g, a2, -0.5, 0)), INV_SQRT_2PI, 0);
        d2 = nb_mul(g, phi, nb_scale(g, a2, -1, 2));
    } else {
        nb_node *t = nb_tanh(g, nb_scale(g, nb_mul(g, a, nb_scale(g, a2, GELU_C, 1)), GELU_K, 0));
        nb_node *u1 = nb_scale(g, a2, 3 * GELU_K * GELU_C, GELU_K);
        nb_node *inner = nb_sub(g, nb_scale(g, a2, 6 * GELU_K * GELU_C, GELU_K),
                                nb_mul(g, nb_mul(g, a, t), nb_mul(g, u1, u1)));
        d2 = nb_mul(g, nb_scale(g, nb_mul(g, t, t), -1, 1), inner);
    }
    gx[0] = nb_mul(g, gy, d2);
    return NB_OK;
}

/* silu' = σ(a)(1 + a(1 − σ(a))), from primitives */
static nb_status silu_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    nb_node *a = nb_node_input(y, 0), *s = nb_sigmoid(g, a);
    nb_node *d = nb_mul(g, s, nb_scale(g, nb_mul(g, a, nb_scale(g, s, -1, 1)), 1, 1));
    gx[0] = nb_mul(g, gy, d);
    return NB_OK;
}

static nb_node *elu_grad(nb_graph *g, nb_node *a, double alpha, double above)
{
    nb_attr at[2] = {NB_AFLOAT("alpha", alpha), NB_AFLOAT("above", above)};
    return unary_attrs(g, &nb_op_elu_grad, a, at, 2);
}

static nb_status elu_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = nb_mul(g, gy, elu_grad(g, nb_node_input(y, 0), nb__attr(y, E_ALPHA)->f, 1));
    return NB_OK;
}

/* (alpha·e^a)' = alpha·e^a; the constant `above` has derivative 0 */
static nb_status elu_grad_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = nb_mul(g, gy, elu_grad(g, nb_node_input(y, 0), nb__attr(y, E_ALPHA)->f, 0));
    return NB_OK;
}

static nb_status softplus_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    nb_attr at[2] = {NB_AFLOAT("beta", nb__attr(y, SP_BETA)->f),
                     NB_AFLOAT("threshold", nb__attr(y, SP_THRESHOLD)->f)};
    gx[0] = nb_mul(g, gy, unary_attrs(g, &nb_op_softplus_grad, nb_node_input(y, 0), at, 2));
    return NB_OK;
}

/* s = σ(beta·a): s' = beta·s(1 − s); above the threshold s is exactly 1, so 0 */
static nb_status softplus_grad_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs,
                                   nb_node **gx)
{
    (void)needs;
    nb_node *d = nb_scale(g, nb_mul(g, y, nb_scale(g, y, -1, 1)), nb__attr(y, SP_BETA)->f, 0);
    gx[0] = nb_mul(g, gy, d);
    return NB_OK;
}

/* ---- gradcheck cases: scalars, size-1 dims, every attribute; piecewise ops
 * stay on one side of their switch ---- */

#define TANH_ATTR .attrs = {NB_ASTRING("approximate", "tanh")}, .n_attrs = 1
static const nb_op_case gelu_cases[] = {
    {.in = {"3,4"}, .lo = -3, .hi = 3},
    {.in = {"2,1,3"}},
    {.in = {""}, .lo = -2, .hi = 2},
    {.in = {"3,4"}, .lo = -3, .hi = 3, TANH_ATTR},
    {.in = {""}, .lo = -2, .hi = 2, TANH_ATTR},
};
static const nb_op_case silu_cases[] = {
    {.in = {"3,4"}, .lo = -5, .hi = 5}, {.in = {"2,1,3"}}, {.in = {""}, .lo = -2, .hi = 2}};
#define ALPHA(v) NB_AFLOAT("alpha", v)
static const nb_op_case elu_cases[] = {
    {.in = {"3,4"}, .lo = -3, .hi = -0.05},
    {.in = {"2,1,3"}, .lo = 0.05, .hi = 2},
    {.in = {"5"}, .lo = -2, .hi = -0.05, .attrs = {ALPHA(0.5)}, .n_attrs = 1},
    {.in = {""}, .lo = -2, .hi = -0.05, .attrs = {ALPHA(2)}, .n_attrs = 1},
};
static const nb_op_case elu_grad_cases[] = {
    {.in = {"3,4"}, .lo = -3, .hi = -0.05},
    {.in = {"2,1,3"}, .lo = 0.05, .hi = 2, .attrs = {ALPHA(0.5), NB_AFLOAT("above", 0)}, .n_attrs = 2},
    {.in = {""}, .lo = -2, .hi = -0.05, .attrs = {ALPHA(2), NB_AFLOAT("above", 0)}, .n_attrs = 2},
};
#define SP(b, t) .attrs = {NB_AFLOAT("beta", b), NB_AFLOAT("threshold", t)}, .n_attrs = 2
static const nb_op_case softplus_cases[] = {
    {.in = {"3,4"}, .lo = -4, .hi = 4},
    {.in = {""}, .lo = -2, .hi = 2},
    {.in = {"2,1,3"}, .lo = 1, .hi = 2, SP(2, 1)},     /* beta·a in (2, 4): linear */
    {.in = {"5"}, .lo = -2, .hi = 0.3, SP(2, 1)},      /* beta·a < 0.6: smooth part */
    {.in = {"4"}, .lo = -3, .hi = 3, SP(0.5, 20)},
};

#define SMOOTH_OP(NAME, CASES, FLAGS, ...)                                            \
    const nb_op_def nb_op_##NAME = {                                                  \
        .name = #NAME, .min_in = 1, .max_in = 1, .flags = NB_OP_INPLACE | (FLAGS),    \
        .shape = nb_rule_same, .forward = NAME##_fwd, .backward = NAME##_bwd,         \
        .flops = nb_flops_per_out, .cases = CASES, .n_cases = NB_NELEMS(CASES),       \
        __VA_ARGS__}

SMOOTH_OP(gelu, gelu_cases, 0, .attrs = gelu_attrs, .n_attrs = 1,
          .doc = "a * Phi(a) (approximate: none = erf, tanh = PyTorch's tanh form)");
SMOOTH_OP(silu, silu_cases, 0, .doc = "a * sigmoid(a)");
SMOOTH_OP(elu, elu_cases, 0, .attrs = elu_attrs, .n_attrs = 1,
          .doc = "a where a > 0, else alpha * (e^a - 1)");
SMOOTH_OP(softplus, softplus_cases, 0, .attrs = softplus_attrs, .n_attrs = 2,
          .doc = "log(1 + e^(beta a)) / beta; a where beta * a > threshold");
SMOOTH_OP(gelu_grad, gelu_cases, NB_OP_INTERNAL, .attrs = gelu_attrs, .n_attrs = 1,
          .doc = "derivative of gelu");
SMOOTH_OP(elu_grad, elu_grad_cases, NB_OP_INTERNAL, .attrs = elu_attrs, .n_attrs = 2,
          .doc = "alpha * e^a where a <= 0, else above (derivatives of elu)");
SMOOTH_OP(softplus_grad, softplus_cases, NB_OP_INTERNAL, .attrs = softplus_attrs, .n_attrs = 2,
          .doc = "derivative of softplus: sigmoid(beta a), 1 where beta * a > threshold");

/* ---- typed helpers ---- */

nb_node *nb_gelu(nb_graph *g, nb_node *a, bool tanh_approx)
{
    nb_attr at = NB_ASTRING("approximate", tanh_approx ? "tanh" : "none");
    return unary_attrs(g, &nb_op_gelu, a, &at, 1);
}

nb_node *nb_silu(nb_graph *g, nb_node *a) { return unary_attrs(g, &nb_op_silu, a, NULL, 0); }

nb_node *nb_elu(nb_graph *g, nb_node *a, double alpha)
{
    nb_attr at = NB_AFLOAT("alpha", alpha);
    return unary_attrs(g, &nb_op_elu, a, &at, 1);
}

nb_node *nb_softplus(nb_graph *g, nb_node *a, double beta, double threshold)
{
    nb_attr at[2] = {NB_AFLOAT("beta", beta), NB_AFLOAT("threshold", threshold)};
    return unary_attrs(g, &nb_op_softplus, a, at, 2);
}

/* Elementwise maths: neg exp log sqrt abs pow, log1p sin cos erf (issue 9),
 * plus scale (alpha*x + beta) and sign, which gradient rules use.
 * <tgmath.h> picks expf for floats. */
#include <tgmath.h>

#include "kernel.h"

enum { P_EXPONENT };
static const nb_attr_def pow_attrs[] = {{"exponent", NB_ATTR_FLOAT, true, {0}}};
enum { S_ALPHA, S_BETA };
static const nb_attr_def scale_attrs[] = {
    {"alpha", NB_ATTR_FLOAT, false, {.f = 1}},
    {"beta", NB_ATTR_FLOAT, false, {.f = 0}},
};

NB_UNARY_ROWS(neg, -x)
NB_UNARY_ROWS(exp, exp(x))
NB_UNARY_ROWS(log, log(x))
NB_UNARY_ROWS(sqrt, sqrt(x))
NB_UNARY_ROWS(abs, fabs(x))
NB_UNARY_ROWS(pow, pow(x, p0))
NB_UNARY_ROWS(scale, p0 * x + p1)
NB_UNARY_ROWS(sign, (x > 0) - (x < 0))
NB_UNARY_ROWS(log1p, log1p(x))
NB_UNARY_ROWS(sin, sin(x))
NB_UNARY_ROWS(cos, cos(x))
NB_UNARY_ROWS(erf, erf(x))

static nb_status neg_fwd(const nb_kctx *k) { return nb_unary_run(k, neg_f32, neg_f64, 0, 0); }
static nb_status exp_fwd(const nb_kctx *k) { return nb_unary_run(k, exp_f32, exp_f64, 0, 0); }
static nb_status log_fwd(const nb_kctx *k) { return nb_unary_run(k, log_f32, log_f64, 0, 0); }
static nb_status sqrt_fwd(const nb_kctx *k) { return nb_unary_run(k, sqrt_f32, sqrt_f64, 0, 0); }
static nb_status abs_fwd(const nb_kctx *k) { return nb_unary_run(k, abs_f32, abs_f64, 0, 0); }
static nb_status sign_fwd(const nb_kctx *k) { return nb_unary_run(k, sign_f32, sign_f64, 0, 0); }
static nb_status log1p_fwd(const nb_kctx *k) { return nb_unary_run(k, log1p_f32, log1p_f64, 0, 0); }
static nb_status sin_fwd(const nb_kctx *k) { return nb_unary_run(k, sin_f32, sin_f64, 0, 0); }
static nb_status cos_fwd(const nb_kctx *k) { return nb_unary_run(k, cos_f32, cos_f64, 0, 0); }
static nb_status erf_fwd(const nb_kctx *k) { return nb_unary_run(k, erf_f32, erf_f64, 0, 0); }
static nb_status pow_fwd(const nb_kctx *k)
{
    return nb_unary_run(k, pow_f32, pow_f64, k->attr[P_EXPONENT].f, 0);
}
static nb_status scale_fwd(const nb_kctx *k)
{
    return nb_unary_run(k, scale_f32, scale_f64, k->attr[S_ALPHA].f, k->attr[S_BETA].f);
}

static nb_status neg_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)y, (void)needs;
    gx[0] = nb_neg(g, gy);
    return NB_OK;
}

static nb_status exp_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = nb_mul(g, gy, y);
    return NB_OK;
}

static nb_status log_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = nb_div(g, gy, nb_node_input(y, 0));
    return NB_OK;
}

/* d sqrt(a) = 1 / (2 sqrt(a)) */
static nb_status sqrt_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = nb_div(g, nb_scale(g, gy, 0.5, 0), y);
    return NB_OK;
}

/* sign(0) = 0: the gradient of abs at 0 is 0 */
static nb_status abs_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    nb_node *a = nb_node_input(y, 0);
    gx[0] = nb_mul(g, gy, nb_apply(g, &nb_op_sign, NULL, &a, 1, NULL, 0));
    return NB_OK;
}

/* d a^e = e a^(e-1); for e = 0 none at all (PyTorch), not 0 * a^-1, which is
 * NaN at a = 0 */
static nb_status pow_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    double e = nb__attr(y, P_EXPONENT)->f;
    if (e == 0) return NB_OK;
    nb_node *a = nb_node_input(y, 0);
    gx[0] = e == 1 ? gy : nb_mul(g, gy, nb_scale(g, e == 2 ? a : nb_pow(g, a, e - 1), e, 0));
    return NB_OK;
}

static nb_status scale_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = nb_scale(g, gy, nb__attr(y, S_ALPHA)->f, 0);
    return NB_OK;
}

/* d log1p(a) = 1 / (1 + a) */
static nb_status log1p_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = nb_div(g, gy, nb_scale(g, nb_node_input(y, 0), 1, 1));
    return NB_OK;
}

static nb_status sin_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = nb_mul(g, gy, nb_cos(g, nb_node_input(y, 0)));
    return NB_OK;
}

static nb_status cos_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = nb_mul(g, gy, nb_neg(g, nb_sin(g, nb_node_input(y, 0))));
    return NB_OK;
}

/* d erf(a) = 2/sqrt(pi) e^(-a^2) */
static nb_status erf_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    nb_node *a = nb_node_input(y, 0);
    nb_node *e = nb_exp(g, nb_scale(g, nb_mul(g, a, a), -1, 0));
    gx[0] = nb_mul(g, gy, nb_scale(g, e, 1.1283791670955126, 0));
    return NB_OK;
}

/* sign is piecewise constant: no gradient flows (nb_grad_none) */
#define sign_bwd nb_grad_none

static const nb_op_case any_cases[] = {{.in = {"3,4"}}, {.in = {""}}, {.in = {"2,1,3"}}};
static const nb_op_case positive_cases[] = {{.in = {"3,4"}, .lo = 0.2, .hi = 3},
                                            {.in = {""}, .lo = 0.2, .hi = 3}};
/* abs away from its kink at 0 */
static const nb_op_case abs_cases[] = {{.in = {"3,4"}, .lo = 0.1, .hi = 1},
                                       {.in = {"5"}, .lo = -1, .hi = -0.1}};
static const nb_op_case pow_cases[] = {
    {.in = {"3,4"}, .attrs = {NB_AFLOAT("exponent", 3)}, .n_attrs = 1},
    {.in = {"2,3"}, .attrs = {NB_AFLOAT("exponent", 2)}, .n_attrs = 1},
    {.in = {"5"}, .lo = 0.2, .hi = 3, .attrs = {NB_AFLOAT("exponent", 0.5)}, .n_attrs = 1},
    {.in = {""}, .lo = 0.2, .hi = 3, .attrs = {NB_AFLOAT("exponent", -1.5)}, .n_attrs = 1},
    {.in = {"2,3"}, .attrs = {NB_AFLOAT("exponent", 0)}, .n_attrs = 1},
};
/* log1p's domain is a > -1 */
static const nb_op_case log1p_cases[] = {{.in = {"3,4"}, .lo = -0.8, .hi = 3},
                                         {.in = {""}, .lo = -0.5, .hi = 2},
                                         {.in = {"2,1,3"}, .lo = -0.9, .hi = 0.5}};
static const nb_op_case trig_cases[] = {
    {.in = {"3,4"}, .lo = -4, .hi = 4}, {.in = {""}}, {.in = {"2,1,3"}, .lo = -7, .hi = 7}};
static const nb_op_case erf_cases[] = {
    {.in = {"3,4"}, .lo = -2.5, .hi = 2.5}, {.in = {""}}, {.in = {"2,1,3"}}};
static const nb_op_case scale_cases[] = {
    {.in = {"3,4"}, .attrs = {NB_AFLOAT("alpha", -2.5), NB_AFLOAT("beta", 1)}, .n_attrs = 2}};

#define UNARY_OP(NAME, CASES, ...)                                                   \
    const nb_op_def nb_op_##NAME = {                                                      \
        .name = #NAME, .min_in = 1, .max_in = 1, .shape = nb_rule_same,                   \
        .forward = NAME##_fwd, .backward = NAME##_bwd, .flops = nb_flops_per_out,         \
        .cases = CASES, .n_cases = NB_NELEMS(CASES), __VA_ARGS__}

/* All elementwise, so all may run in place (NB_OP_INPLACE). */
UNARY_OP(neg, any_cases, .doc = "-a", .flags = NB_OP_INPLACE);
UNARY_OP(exp, any_cases, .doc = "e^a", .flags = NB_OP_INPLACE);
UNARY_OP(log, positive_cases, .doc = "natural log", .flags = NB_OP_INPLACE);
UNARY_OP(sqrt, positive_cases, .doc = "square root", .flags = NB_OP_INPLACE);
UNARY_OP(abs, abs_cases, .doc = "|a| (gradient 0 at 0)", .flags = NB_OP_INPLACE);
UNARY_OP(pow, pow_cases, .doc = "a^exponent", .attrs = pow_attrs, .n_attrs = 1,
         .flags = NB_OP_INPLACE);
/* scale and sign are model-file ops too (issue 12): the ONNX importer builds
 * them (BatchNormalization, Selu, Sign, ...), and `nabla convert` writes
 * every node of an imported model into a model file. */
UNARY_OP(scale, scale_cases, .doc = "alpha * a + beta", .attrs = scale_attrs, .n_attrs = 2,
         .flags = NB_OP_INPLACE);
UNARY_OP(sign, any_cases, .doc = "-1, 0 or 1 (no gradient)", .flags = NB_OP_INPLACE);
UNARY_OP(log1p, log1p_cases, .doc = "log(1 + a), accurate near 0", .flags = NB_OP_INPLACE);
UNARY_OP(sin, trig_cases, .doc = "sine", .flags = NB_OP_INPLACE);
UNARY_OP(cos, trig_cases, .doc = "cosine", .flags = NB_OP_INPLACE);
UNARY_OP(erf, erf_cases, .doc = "error function", .flags = NB_OP_INPLACE);

static nb_node *unary(nb_graph *g, const nb_op_def *op, nb_node *a)
{
    return nb_apply(g, op, NULL, (nb_node *[]){a}, 1, NULL, 0);
}

nb_node *nb_neg(nb_graph *g, nb_node *a) { return unary(g, &nb_op_neg, a); }
nb_node *nb_exp(nb_graph *g, nb_node *a) { return unary(g, &nb_op_exp, a); }
nb_node *nb_log(nb_graph *g, nb_node *a) { return unary(g, &nb_op_log, a); }
nb_node *nb_sqrt(nb_graph *g, nb_node *a) { return unary(g, &nb_op_sqrt, a); }
nb_node *nb_abs(nb_graph *g, nb_node *a) { return unary(g, &nb_op_abs, a); }
nb_node *nb_log1p(nb_graph *g, nb_node *a) { return unary(g, &nb_op_log1p, a); }
nb_node *nb_sin(nb_graph *g, nb_node *a) { return unary(g, &nb_op_sin, a); }
nb_node *nb_cos(nb_graph *g, nb_node *a) { return unary(g, &nb_op_cos, a); }
nb_node *nb_erf(nb_graph *g, nb_node *a) { return unary(g, &nb_op_erf, a); }

nb_node *nb_pow(nb_graph *g, nb_node *a, double exponent)
{
    return nb_apply(g, &nb_op_pow, NULL, (nb_node *[]){a}, 1,
                    (nb_attr[]){NB_AFLOAT("exponent", exponent)}, 1);
}

nb_node *nb_scale(nb_graph *g, nb_node *a, double alpha, double beta)
{
    return nb_apply(g, &nb_op_scale, NULL, (nb_node *[]){a}, 1,
                    (nb_attr[]){NB_AFLOAT("alpha", alpha), NB_AFLOAT("beta", beta)}, 2);
}

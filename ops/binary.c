/* add, sub, mul, div with NumPy broadcasting. Gradients may keep the
 * broadcast shape: autodiff sums them back to each input's shape. */
#include "kernel.h"

NB_BINARY_ROWS(add, a + b)
NB_BINARY_ROWS(sub, a - b)
NB_BINARY_ROWS(mul, a * b)
NB_BINARY_ROWS(div, a / b)

static nb_status add_fwd(const nb_kctx *k) { return nb_binary_run(k, add_f32, add_f64); }
static nb_status sub_fwd(const nb_kctx *k) { return nb_binary_run(k, sub_f32, sub_f64); }
static nb_status mul_fwd(const nb_kctx *k) { return nb_binary_run(k, mul_f32, mul_f64); }
static nb_status div_fwd(const nb_kctx *k) { return nb_binary_run(k, div_f32, div_f64); }

static nb_status add_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)g, (void)y, (void)needs;  /* no new nodes to spare */
    gx[0] = gx[1] = gy;
    return NB_OK;
}

static nb_status sub_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)y;
    gx[0] = gy;
    if (nb_needs_grad(needs, 1)) gx[1] = nb_neg(g, gy);
    return NB_OK;
}

static nb_status mul_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    if (nb_needs_grad(needs, 0)) gx[0] = nb_mul(g, gy, nb_node_input(y, 1));
    if (nb_needs_grad(needs, 1)) gx[1] = nb_mul(g, gy, nb_node_input(y, 0));
    return NB_OK;
}

/* y = a / b: da = gy / b, db = -gy * y / b = -da * y (gy / b serves both) */
static nb_status div_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    nb_node *q = nb_div(g, gy, nb_node_input(y, 1));
    if (nb_needs_grad(needs, 0)) gx[0] = q;
    if (nb_needs_grad(needs, 1)) gx[1] = nb_neg(g, nb_mul(g, q, y));
    return NB_OK;
}

/* broadcasting in every direction, scalars and size-1 dims */
static const nb_op_case binary_cases[] = {
    {.in = {"3,4", "3,4"}},
    {.in = {"2,3,4", "4"}},
    {.in = {"3,1", "1,4"}},
    {.in = {"2,1,3", "4,1"}},
    {.in = {"", "2,3"}},
    {.in = {"1", "1"}},
};
/* division keeps the divisor away from 0 */
static const nb_op_case div_cases[] = {
    {.in = {"3,4", "3,4"}, .lo = 0.5, .hi = 2},
    {.in = {"2,3,4", "4"}, .lo = 0.5, .hi = 2},
    {.in = {"3,1", "1,4"}, .lo = 0.5, .hi = 2},
    {.in = {"", "2,3"}, .lo = 0.5, .hi = 2},
};

/* In place (NB_OP_INPLACE): a row reads a[i] and b[i] before writing y[i]; the
 * planner only gives y the buffer of an input of y's shape, never a broadcast one. */
#define BINARY_OP(NAME, DOC, CASES)                                                       \
    const nb_op_def nb_op_##NAME = {                                                      \
        .name = #NAME, .min_in = 2, .max_in = 2, .shape = nb_rule_broadcast,              \
        .flags = NB_OP_INPLACE, .forward = NAME##_fwd, .backward = NAME##_bwd,            \
        .flops = nb_flops_per_out,                                                        \
        .cases = CASES, .n_cases = NB_NELEMS(CASES), .doc = DOC}

BINARY_OP(add, "a + b, broadcast", binary_cases);
BINARY_OP(sub, "a - b, broadcast", binary_cases);
BINARY_OP(mul, "a * b, broadcast", binary_cases);
BINARY_OP(div, "a / b, broadcast", div_cases);

static nb_node *binary(nb_graph *g, const nb_op_def *op, nb_node *a, nb_node *b)
{
    return nb_apply(g, op, NULL, (nb_node *[]){a, b}, 2, NULL, 0);
}

nb_node *nb_add(nb_graph *g, nb_node *a, nb_node *b) { return binary(g, &nb_op_add, a, b); }
nb_node *nb_sub(nb_graph *g, nb_node *a, nb_node *b) { return binary(g, &nb_op_sub, a, b); }
nb_node *nb_mul(nb_graph *g, nb_node *a, nb_node *b) { return binary(g, &nb_op_mul, a, b); }
nb_node *nb_div(nb_graph *g, nb_node *a, nb_node *b) { return binary(g, &nb_op_div, a, b); }

/* Converters of elementwise ONNX ops: arithmetic (folded at load time when
 * both operands are known, as shape computations need), activations,
 * comparisons and selection. Ops nabla lacks are composed from its ops. */
#include <math.h>
#include <string.h>

#include "onnx_internal.h"

/* ---- folding known operands ------------------------------------------- */

typedef double (*fold_fn)(double a, double b);
static double f_add(double a, double b) { return a + b; }
static double f_sub(double a, double b) { return a - b; }
static double f_mul(double a, double b) { return a * b; }
static double f_div(double a, double b) { return a / b; }

/* Offset in a broadcast operand of rank r and shape s for output index idx. */
static size_t bcast_off(const ox_const *k, int out_rank, const int64_t *idx)
{
    size_t off = 0;
    for (int d = 0; d < k->rank; d++) {
        int64_t i = idx[out_rank - k->rank + d];
        off = off * (size_t)k->shape[d] + (size_t)(k->shape[d] == 1 ? 0 : i);
    }
    return off;
}

/* Both inputs known and free of symbols: the result on the host (integer
 * division truncates, as ONNX's on integers). false when not foldable. */
static bool fold_binary(ox_ctx *c, ox_node_io *io, fold_fn fn, nb_status *st)
{
    if (io->n_in != 2 || !ox_has_in(io, 0) || !ox_has_in(io, 1)) return false;
    const ox_const *a = &io->in[0]->k, *b = &io->in[1]->k;
    if (!io->in[0]->has_k || !io->in[1]->has_k || io->in[0]->initializer || io->in[1]->initializer ||
        a->sym || b->sym || a->type != b->type)
        return false;
    int r = a->rank > b->rank ? a->rank : b->rank;
    int64_t shape[NB_MAX_DIMS], idx[NB_MAX_DIMS] = {0};
    for (int d = 0; d < r; d++) {
        int64_t x = d - (r - a->rank) >= 0 ? a->shape[d - (r - a->rank)] : 1;
        int64_t y = d - (r - b->rank) >= 0 ? b->shape[d - (r - b->rank)] : 1;
        if (x != y && x != 1 && y != 1) return false;
        shape[d] = x == 1 ? y : x;
    }
    ox_const *o = &io->outk[0];
    if ((*st = ox_const_alloc(c, o, a->type, r, shape))) return true;
    io->has_outk[0] = true;
    for (size_t j = 0; j < o->n; j++) {
        size_t rem = j;
        for (int d = r; d-- > 0;) idx[d] = (int64_t)(rem % (size_t)shape[d]), rem /= (size_t)shape[d];
        size_t ia = bcast_off(a, r, idx), ib = bcast_off(b, r, idx);
        if (o->i) {
            int64_t x = a->i[ia], y = b->i[ib];
            double v = fn((double)x, (double)y);
            if (!(fabs(v) < 9e18) || (fn == f_div && y == -1 && x == INT64_MIN)) {
                *st = ox_unsupported(c, "integer arithmetic beyond int64");
                return true;
            }
            o->i[j] = fn == f_div ? (y ? x / y : 0) : (int64_t)v;
        } else {
            o->f[j] = fn(a->f[ia], b->f[ib]);
        }
    }
    return true;
}

typedef nb_node *(*bin_fn)(nb_graph *, nb_node *, nb_node *);

/* Before opset 7, broadcast=1 with `axis` aligns b's axes with a's from
 * `axis` on: b gets unit axes after its own to align as numpy does. */
static nb_node *legacy_broadcast(ox_ctx *c, ox_node_io *io, nb_node *a, nb_node *b)
{
    const Onnx__AttributeProto *ax = ox_attr(io, "axis");
    if (!ax || !ox_attr_int(io, "broadcast", 0)) return b;
    int ra = nb_node_rank(a), rb = nb_node_rank(b), a0;
    if (ox_axis(c, ax->i, ra, &a0)) return NULL;
    int pad = ra - a0 - rb;
    if (pad < 0) return ox_fail(c, NB_ERR_FORMAT, "axis %d leaves no room for b's %d axes", a0, rb), NULL;
    nb_dim d[NB_MAX_DIMS];
    for (int i = 0; i < rb; i++) d[i] = NB_DIM(nb_node_dim(b, i));
    for (int i = 0; i < pad; i++) d[rb + i] = NB_DIM(1);
    return pad ? nb_reshape(c->g, b, rb + pad, d) : b;
}

static nb_status binary(ox_ctx *c, ox_node_io *io, bin_fn fn, fold_fn fold)
{
    nb_status st = NB_OK;
    if (fold && !ox_attr(io, "axis") && fold_binary(c, io, fold, &st)) return st;
    nb_node *a = ox_in(c, io, 0), *b = ox_in(c, io, 1);
    if (a && b) b = legacy_broadcast(c, io, a, b);
    if (!a || !b) return c->st ? c->st : ox_graph_fail(c);
    return (io->out[0] = fn(c->g, a, b)) ? NB_OK : ox_graph_fail(c);
}

static nb_status cv_add(ox_ctx *c, ox_node_io *io) { return binary(c, io, nb_add, f_add); }
static nb_status cv_sub(ox_ctx *c, ox_node_io *io) { return binary(c, io, nb_sub, f_sub); }
static nb_status cv_mul(ox_ctx *c, ox_node_io *io) { return binary(c, io, nb_mul, f_mul); }
static nb_status cv_div(ox_ctx *c, ox_node_io *io) { return binary(c, io, nb_div, f_div); }
static nb_status cv_greater(ox_ctx *c, ox_node_io *io) { return binary(c, io, nb_greater, NULL); }
static nb_status cv_less(ox_ctx *c, ox_node_io *io) { return binary(c, io, nb_less, NULL); }
static nb_status cv_equal(ox_ctx *c, ox_node_io *io) { return binary(c, io, nb_equal, NULL); }

/* a >= b is not (a < b): 1 - less */
static nb_status cv_greater_eq(ox_ctx *c, ox_node_io *io)
{
    nb_status st = cv_less(c, io);
    if (st) return st;
    return (io->out[0] = nb_scale(c->g, io->out[0], -1, 1)) ? NB_OK : ox_graph_fail(c);
}

static nb_status cv_less_eq(ox_ctx *c, ox_node_io *io)
{
    nb_status st = cv_greater(c, io);
    if (st) return st;
    return (io->out[0] = nb_scale(c->g, io->out[0], -1, 1)) ? NB_OK : ox_graph_fail(c);
}

/* Sum, Max, Min, Mean: a chain of binary ops over any number of inputs. */
static nb_status variadic(ox_ctx *c, ox_node_io *io, bin_fn fn, double scale)
{
    nb_node *acc = ox_in(c, io, 0);
    for (int i = 1; acc && i < io->n_in; i++) {
        nb_node *x = ox_in(c, io, i);
        if (!x) return c->st;
        if (!(acc = fn(c->g, acc, x))) return ox_graph_fail(c);
    }
    if (!acc) return c->st;
    if (scale != 1 && !(acc = nb_scale(c->g, acc, scale, 0))) return ox_graph_fail(c);
    if (io->n_in == 1 && !(acc = nb_scale(c->g, acc, 1, 0))) return ox_graph_fail(c);
    io->out[0] = acc;
    return NB_OK;
}

static nb_status cv_sum(ox_ctx *c, ox_node_io *io) { return variadic(c, io, nb_add, 1); }
static nb_status cv_max(ox_ctx *c, ox_node_io *io) { return variadic(c, io, nb_maximum, 1); }
static nb_status cv_min(ox_ctx *c, ox_node_io *io) { return variadic(c, io, nb_minimum, 1); }
static nb_status cv_mean(ox_ctx *c, ox_node_io *io) { return variadic(c, io, nb_add, 1.0 / io->n_in); }

/* ---- one-input ops ------------------------------------------------------ */

typedef nb_node *(*un_fn)(nb_graph *, nb_node *);

static nb_status unary(ox_ctx *c, ox_node_io *io, un_fn fn)
{
    nb_node *x = ox_in(c, io, 0);
    if (!x) return c->st;
    return (io->out[0] = fn(c->g, x)) ? NB_OK : ox_graph_fail(c);
}

#define UNARY(CV, FN) \
    static nb_status CV(ox_ctx *c, ox_node_io *io) { return unary(c, io, FN); }
UNARY(cv_exp, nb_exp)
UNARY(cv_log, nb_log)
UNARY(cv_sqrt, nb_sqrt)

/* Neg and Abs of a known value (shape arithmetic: LayerNormalization's
 * expanded function negates an axis count) are folded. */
static nb_status unary_known(ox_ctx *c, ox_node_io *io, un_fn fn, bool neg)
{
    if (!ox_has_in(io, 0) || !io->in[0]->has_k || io->in[0]->initializer || io->in[0]->k.sym)
        return unary(c, io, fn);
    const ox_const *k = &io->in[0]->k;
    ox_const *o = &io->outk[0];
    if (ox_const_alloc(c, o, k->type, k->rank, k->shape)) return ox_fail(c, NB_ERR_NOMEM, "out of memory");
    io->has_outk[0] = true;
    for (size_t j = 0; j < k->n; j++) {
        if (k->i) o->i[j] = neg ? -k->i[j] : k->i[j] < 0 ? -k->i[j] : k->i[j];
        else o->f[j] = neg ? -k->f[j] : fabs(k->f[j]);
    }
    return NB_OK;
}

static nb_status cv_neg(ox_ctx *c, ox_node_io *io) { return unary_known(c, io, nb_neg, true); }
static nb_status cv_abs(ox_ctx *c, ox_node_io *io) { return unary_known(c, io, nb_abs, false); }
UNARY(cv_relu, nb_relu)
UNARY(cv_sigmoid, nb_sigmoid)
UNARY(cv_tanh, nb_tanh)
UNARY(cv_sin, nb_sin)
UNARY(cv_cos, nb_cos)
UNARY(cv_erf, nb_erf)

static nb_node *sign(nb_graph *g, nb_node *x) { return nb_op(g, "sign", NULL, &x, 1, NULL, 0); }
static nb_node *reciprocal(nb_graph *g, nb_node *x) { return nb_pow(g, x, -1); }
/* x / (1 + |x|) */
static nb_node *softsign(nb_graph *g, nb_node *x) { return nb_div(g, x, nb_scale(g, nb_abs(g, x), 1, 1)); }
UNARY(cv_sign, sign)
UNARY(cv_reciprocal, reciprocal)
UNARY(cv_softsign, softsign)

static nb_status cv_leaky_relu(ox_ctx *c, ox_node_io *io)
{
    nb_node *x = ox_in(c, io, 0);
    if (!x) return c->st;
    io->out[0] = nb_leaky_relu(c->g, x, ox_attr_float(io, "alpha", 0.01));
    return io->out[0] ? NB_OK : ox_graph_fail(c);
}

static nb_status cv_elu(ox_ctx *c, ox_node_io *io)
{
    nb_node *x = ox_in(c, io, 0);
    if (!x) return c->st;
    io->out[0] = nb_elu(c->g, x, ox_attr_float(io, "alpha", 1));
    return io->out[0] ? NB_OK : ox_graph_fail(c);
}

/* gamma * elu(x, alpha) */
static nb_status cv_selu(ox_ctx *c, ox_node_io *io)
{
    nb_node *x = ox_in(c, io, 0);
    if (!x) return c->st;
    double alpha = ox_attr_float(io, "alpha", 1.67326319217681884765625);
    double gamma = ox_attr_float(io, "gamma", 1.05070102214813232421875);
    io->out[0] = nb_scale(c->g, nb_elu(c->g, x, alpha), gamma, 0);
    return io->out[0] ? NB_OK : ox_graph_fail(c);
}

/* ONNX's softplus has no threshold; nabla's at 20 differs by < 3e-9 relative. */
static nb_status cv_softplus(ox_ctx *c, ox_node_io *io)
{
    nb_node *x = ox_in(c, io, 0);
    if (!x) return c->st;
    return (io->out[0] = nb_softplus(c->g, x, 1, 20)) ? NB_OK : ox_graph_fail(c);
}

static nb_status cv_gelu(ox_ctx *c, ox_node_io *io)
{
    nb_node *x = ox_in(c, io, 0);
    if (!x) return c->st;
    const Onnx__AttributeProto *a = ox_attr(io, "approximate");
    bool tanh_mode = a && a->has_s && a->s.len == 4 && !memcmp(a->s.data, "tanh", 4);
    return (io->out[0] = nb_gelu(c->g, x, tanh_mode)) ? NB_OK : ox_graph_fail(c);
}

/* clip(alpha x + beta, 0, 1) */
static nb_status cv_hard_sigmoid(ox_ctx *c, ox_node_io *io)
{
    nb_node *x = ox_in(c, io, 0);
    if (!x) return c->st;
    double alpha = ox_attr_float(io, "alpha", 0.2), beta = ox_attr_float(io, "beta", 0.5);
    io->out[0] = nb_clip(c->g, nb_scale(c->g, x, alpha, beta), 0, 1);
    return io->out[0] ? NB_OK : ox_graph_fail(c);
}

/* x * clip(x / 6 + 1/2, 0, 1) */
static nb_status cv_hard_swish(ox_ctx *c, ox_node_io *io)
{
    nb_node *x = ox_in(c, io, 0);
    if (!x) return c->st;
    io->out[0] = nb_mul(c->g, x, nb_clip(c->g, nb_scale(c->g, x, 1.0 / 6, 0.5), 0, 1));
    return io->out[0] ? NB_OK : ox_graph_fail(c);
}

/* relu(x) - slope * relu(-x) */
static nb_status cv_prelu(ox_ctx *c, ox_node_io *io)
{
    nb_node *x = ox_in(c, io, 0), *s = ox_in(c, io, 1);
    if (!x || !s) return c->st;
    nb_graph *g = c->g;
    int r = nb_node_rank(x);
    /* opset < 7 broadcast a [C] slope along axis 1 */
    if (nb_node_rank(s) == 1 && r > 2 && nb_node_dim(s, 0) == nb_node_dim(x, 1) &&
        nb_node_dim(s, 0) != nb_node_dim(x, r - 1)) {
        nb_dim d[NB_MAX_DIMS] = {NB_DIM(nb_node_dim(s, 0))};
        for (int i = 1; i < r - 1; i++) d[i] = NB_DIM(1);
        s = nb_reshape(g, s, r - 1, d);
    }
    io->out[0] = nb_sub(g, nb_relu(g, x), nb_mul(g, s, nb_relu(g, nb_neg(g, x))));
    return io->out[0] ? NB_OK : ox_graph_fail(c);
}

/* The exponent must be known: nabla's pow takes it as an attribute. */
static nb_status cv_pow(ox_ctx *c, ox_node_io *io)
{
    nb_node *x = ox_in(c, io, 0);
    if (!x) return c->st;
    double e;
    if (ox_known_scalar(c, io, 1, 1, &e)) return c->st;
    return (io->out[0] = nb_pow(c->g, x, e)) ? NB_OK : ox_graph_fail(c);
}

/* Bounds from attributes (opset < 11) or known inputs: clip; none: x
 * itself; bounds computed at run time: maximum and minimum. */
static nb_status cv_clip(ox_ctx *c, ox_node_io *io)
{
    nb_node *x = ox_in(c, io, 0);
    if (!x) return c->st;
    bool run_time = (ox_has_in(io, 1) && !io->in[1]->has_k) || (ox_has_in(io, 2) && !io->in[2]->has_k);
    if (run_time) {
        nb_node *lo = ox_has_in(io, 1) ? ox_in(c, io, 1) : NULL, *hi = ox_has_in(io, 2) ? ox_in(c, io, 2) : NULL;
        if (c->st) return c->st;
        nb_node *y = lo ? nb_maximum(c->g, x, lo) : x;
        return (io->out[0] = hi ? nb_minimum(c->g, y, hi) : y) ? NB_OK : ox_graph_fail(c);
    }
    double lo = ox_attr_float(io, "min", NAN), hi = ox_attr_float(io, "max", NAN);
    if (ox_known_scalar(c, io, 1, lo, &lo) || ox_known_scalar(c, io, 2, hi, &hi)) return c->st;
    io->out[0] = isnan(lo) && isnan(hi) ? nb_scale(c->g, x, 1, 0) : nb_clip(c->g, x, lo, hi);
    return io->out[0] ? NB_OK : ox_graph_fail(c);
}

static nb_status cv_where(ox_ctx *c, ox_node_io *io)
{
    nb_node *k = ox_in(c, io, 0), *a = ox_in(c, io, 1), *b = ox_in(c, io, 2);
    if (!k || !a || !b) return c->st;
    return (io->out[0] = nb_where(c->g, k, a, b)) ? NB_OK : ox_graph_fail(c);
}

/* ---- logic: ONNX bools are nabla i32 inputs or 0/1 floats of comparisons ---- */

static nb_node *truth(ox_ctx *c, nb_node *x)
{
    if (!x || nb_node_dtype(x) != NB_I32) return x;
    nb_tensor t;
    if (nb_tensor_alloc(&t, NB_I32, 0, NULL)) return NULL;
    nb_node *zero = nb_constant(c->g, NULL, &t);
    nb_tensor_free(&t);
    return nb_greater(c->g, x, zero);
}

static nb_status logic(ox_ctx *c, ox_node_io *io, bin_fn fn, bool negate)
{
    bool two = fn != NULL;  /* Not reads one input, whatever the node lists */
    nb_node *a = truth(c, ox_in(c, io, 0)), *b = two ? truth(c, ox_in(c, io, 1)) : NULL;
    if (!a || (two && !b)) return c->st ? c->st : ox_graph_fail(c);
    nb_node *y = b ? fn(c->g, a, b) : a;
    if (y && negate) y = nb_scale(c->g, y, -1, 1);
    return (io->out[0] = y) ? NB_OK : ox_graph_fail(c);
}

static nb_status cv_and(ox_ctx *c, ox_node_io *io) { return logic(c, io, nb_mul, false); }
static nb_status cv_or(ox_ctx *c, ox_node_io *io) { return logic(c, io, nb_maximum, false); }
static nb_status cv_xor(ox_ctx *c, ox_node_io *io) { return logic(c, io, nb_equal, true); }
static nb_status cv_not(ox_ctx *c, ox_node_io *io) { return logic(c, io, NULL, true); }

/* x where x > alpha, else 0 */
static nb_status cv_thresholded_relu(ox_ctx *c, ox_node_io *io)
{
    nb_node *x = ox_in(c, io, 0);
    if (!x) return c->st;
    nb_node *t = nb_scale(c->g, x, 0, ox_attr_float(io, "alpha", 1));
    return (io->out[0] = nb_mul(c->g, x, nb_greater(c->g, x, t))) ? NB_OK : ox_graph_fail(c);
}

#define BC "broadcast axis" /* opset < 7: legacy_broadcast */
const ox_op ox_ops_elem[] = {
    /* logic ops: "broadcast" (opset < 7) without axis is numpy's trailing alignment */
    {"And", cv_and, "broadcast"}, {"Or", cv_or, "broadcast"}, {"Xor", cv_xor, "broadcast"},
    {"Not", cv_not, ""}, {"ThresholdedRelu", cv_thresholded_relu, "alpha"},
    {"Add", cv_add, BC}, {"Sub", cv_sub, BC}, {"Mul", cv_mul, BC}, {"Div", cv_div, BC},
    {"Greater", cv_greater, BC}, {"Less", cv_less, BC}, {"Equal", cv_equal, BC},
    {"GreaterOrEqual", cv_greater_eq, ""}, {"LessOrEqual", cv_less_eq, ""},
    {"Sum", cv_sum, ""}, {"Max", cv_max, ""}, {"Min", cv_min, ""}, {"Mean", cv_mean, ""},
    {"Neg", cv_neg, ""}, {"Exp", cv_exp, ""}, {"Log", cv_log, ""}, {"Sqrt", cv_sqrt, ""},
    {"Abs", cv_abs, ""}, {"Relu", cv_relu, ""}, {"Sigmoid", cv_sigmoid, ""},
    {"Tanh", cv_tanh, ""}, {"Sin", cv_sin, ""}, {"Cos", cv_cos, ""}, {"Erf", cv_erf, ""},
    {"Sign", cv_sign, ""}, {"Reciprocal", cv_reciprocal, ""}, {"Softsign", cv_softsign, ""},
    {"LeakyRelu", cv_leaky_relu, "alpha"}, {"Elu", cv_elu, "alpha"},
    {"Selu", cv_selu, "alpha gamma"}, {"Softplus", cv_softplus, ""},
    {"Gelu", cv_gelu, "approximate"}, {"HardSigmoid", cv_hard_sigmoid, "alpha beta"},
    {"HardSwish", cv_hard_swish, ""}, {"PRelu", cv_prelu, ""}, {"Pow", cv_pow, ""},
    {"Clip", cv_clip, "min max"}, {"Where", cv_where, ""},
};
const size_t ox_n_ops_elem = sizeof ox_ops_elem / sizeof *ox_ops_elem;

/* One writer per nabla op: the ONNX nodes (opset 17) computing the nabla
 * node's output under its own name. Ops without an entry have no ONNX
 * counterpart here (losses, gradient and optimizer ops) and are refused as
 * unsupported, naming the node. */
#include <math.h>
#include <string.h>

#include "onnx_write.h"

enum { T_FLOAT = 1, T_INT32 = 6, T_BOOL = 9, T_DOUBLE = 11 };

static const char *in_name(const nb_node *n, int i) { return nb_node_name(nb_node_input(n, i)); }
static const nb_attr *attr(const nb_node *n, const char *name) { return nb_node_attr(n, name); }
static int64_t a_int(const nb_node *n, const char *name) { return attr(n, name)->i[0]; }
static double a_float(const nb_node *n, const char *name) { return attr(n, name)->f; }
static int float_type(const nb_node *n) { return nb_node_dtype(n) == NB_F64 ? T_DOUBLE : T_FLOAT; }

/* op_type on tensors in[0..n_in), into out; the node for attributes. */
static Onnx__NodeProto *emit(ow_ctx *c, const char *op_type, const char *const *in, int n_in,
                             const char *out)
{
    return c->st || !out ? NULL : ow_node(c, op_type, in, n_in, out);
}
#define EMIT(op, out, ...) \
    emit(c, op, (const char *[]){__VA_ARGS__}, \
         (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)), out)

/* The node's own inputs (not op state) under op_type, into out. */
static Onnx__NodeProto *same_into(ow_ctx *c, const nb_node *n, const char *op_type, const char *out)
{
    const char *in[NB_MAX_INPUTS];
    int k = nb_node_num_inputs(n) - nb_node_opdef(n)->n_state;
    for (int i = 0; i < k; i++) in[i] = in_name(n, i);
    return emit(c, op_type, in, k, out);
}

static Onnx__NodeProto *same(ow_ctx *c, const nb_node *n, const char *op_type)
{
    return same_into(c, n, op_type, nb_node_name(n));
}

#define SAME(fn, onnx) \
    static nb_status fn(ow_ctx *c, const nb_node *n) { same(c, n, onnx); return c->st; }
SAME(w_add, "Add")
SAME(w_sub, "Sub")
SAME(w_mul, "Mul")
SAME(w_div, "Div")
SAME(w_neg, "Neg")
SAME(w_exp, "Exp")
SAME(w_log, "Log")
SAME(w_sqrt, "Sqrt")
SAME(w_abs, "Abs")
SAME(w_relu, "Relu")
SAME(w_sigmoid, "Sigmoid")
SAME(w_tanh, "Tanh")
SAME(w_sin, "Sin")
SAME(w_cos, "Cos")
SAME(w_erf, "Erf")
SAME(w_sign, "Sign")
SAME(w_minimum, "Min")
SAME(w_maximum, "Max")
SAME(w_dropout, "Identity")   /* inference */
SAME(w_gap, "GlobalAveragePool")

/* ONNX comparisons give bool; nabla's give 0/1 in the float dtype. */
static nb_status compare(ow_ctx *c, const nb_node *n, const char *op_type)
{
    const char *t = ow_aux(c, op_type);
    same_into(c, n, op_type, t);
    ow_attr_int(c, EMIT("Cast", nb_node_name(n), t), "to", float_type(n));
    return c->st;
}
static nb_status w_greater(ow_ctx *c, const nb_node *n) { return compare(c, n, "Greater"); }
static nb_status w_less(ow_ctx *c, const nb_node *n) { return compare(c, n, "Less"); }
static nb_status w_equal(ow_ctx *c, const nb_node *n) { return compare(c, n, "Equal"); }

/* Where takes a bool condition: Not(Equal(c, 0)) is nabla's c != 0 (NaN included). */
static const char *scalar(ow_ctx *c, const nb_node *n, const char *what, double v);
static nb_status w_where(ow_ctx *c, const nb_node *n)
{
    const char *zero = ow_aux(c, "is_zero"), *cond = ow_aux(c, "cond");
    EMIT("Equal", zero, in_name(n, 0), scalar(c, nb_node_input(n, 0), "zero", 0));
    EMIT("Not", cond, zero);
    EMIT("Where", nb_node_name(n), cond, in_name(n, 1), in_name(n, 2));
    return c->st;
}

/* A float scalar of the node's dtype. */
static const char *scalar(ow_ctx *c, const nb_node *n, const char *what, double v)
{
    return c->st ? NULL : ow_const_scalar(c, what, v, nb_node_dtype(n));
}

static nb_status w_pow(ow_ctx *c, const nb_node *n)
{
    EMIT("Pow", nb_node_name(n), in_name(n, 0), scalar(c, n, "exponent", a_float(n, "exponent")));
    return c->st;
}

static nb_status w_leaky_relu(ow_ctx *c, const nb_node *n)
{
    ow_attr_float(c, same(c, n, "LeakyRelu"), "alpha", a_float(n, "alpha"));
    return c->st;
}

static nb_status w_elu(ow_ctx *c, const nb_node *n)
{
    ow_attr_float(c, same(c, n, "Elu"), "alpha", a_float(n, "alpha"));
    return c->st;
}

/* ONNX's Softplus is log(1 + e^x): beta 1 only (past the threshold of 20
 * the two agree to float precision). */
static nb_status w_softplus(ow_ctx *c, const nb_node *n)
{
    if (a_float(n, "beta") != 1) return ow_unsupported(c, "attribute beta = %g (ONNX Softplus has beta 1)",
                                                      a_float(n, "beta"));
    same(c, n, "Softplus");
    return c->st;
}

static nb_status w_silu(ow_ctx *c, const nb_node *n)
{
    const char *s = ow_aux(c, "sigmoid");
    EMIT("Sigmoid", s, in_name(n, 0));
    EMIT("Mul", nb_node_name(n), in_name(n, 0), s);
    return c->st;
}

static nb_status w_log1p(ow_ctx *c, const nb_node *n)
{
    const char *t = ow_aux(c, "plus1");
    EMIT("Add", t, in_name(n, 0), scalar(c, n, "one", 1));
    EMIT("Log", nb_node_name(n), t);
    return c->st;
}

/* Opset 17 has no Gelu: x * (1 + erf(x / sqrt 2)) / 2, or PyTorch's tanh form
 * x * (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) / 2. */
static nb_status w_gelu(ow_ctx *c, const nb_node *n)
{
    const char *x = in_name(n, 0), *inner = ow_aux(c, "inner"), *f = ow_aux(c, "f");
    const char *g1 = ow_aux(c, "one_plus"), *xg = ow_aux(c, "x_times");
    bool tanh_form = !strcmp(attr(n, "approximate")->s, "tanh");
    if (tanh_form) {
        const char *x3 = ow_aux(c, "cube"), *k = ow_aux(c, "k"), *sum = ow_aux(c, "sum");
        EMIT("Pow", x3, x, scalar(c, n, "three", 3));
        EMIT("Mul", k, x3, scalar(c, n, "c", 0.044715));
        EMIT("Add", sum, x, k);
        EMIT("Mul", inner, sum, scalar(c, n, "sqrt_2_over_pi", sqrt(2 / M_PI)));
        EMIT("Tanh", f, inner);
    } else {
        EMIT("Div", inner, x, scalar(c, n, "sqrt2", sqrt(2.0)));
        EMIT("Erf", f, inner);
    }
    EMIT("Add", g1, f, scalar(c, n, "one", 1));
    EMIT("Mul", xg, x, g1);
    EMIT("Mul", nb_node_name(n), xg, scalar(c, n, "half", 0.5));
    return c->st;
}

static nb_status w_scale(ow_ctx *c, const nb_node *n)
{
    const char *t = ow_aux(c, "scaled");
    EMIT("Mul", t, in_name(n, 0), scalar(c, n, "alpha", a_float(n, "alpha")));
    EMIT("Add", nb_node_name(n), t, scalar(c, n, "beta", attr(n, "beta")->n ? a_float(n, "beta") : 0));
    return c->st;
}

/* Clip's bounds are optional inputs since opset 11; an absent one is "". */
static nb_status w_clip(ow_ctx *c, const nb_node *n)
{
    const nb_attr *lo = attr(n, "min"), *hi = attr(n, "max");
    const char *l = lo->n ? scalar(c, n, "min", lo->f) : "", *h = hi->n ? scalar(c, n, "max", hi->f) : "";
    EMIT("Clip", nb_node_name(n), in_name(n, 0), l, h);
    return c->st;
}

/* transpose_a/b swap the last two axes of an operand first. */
static const char *swapped(ow_ctx *c, const nb_node *n, int i)
{
    int r = nb_node_rank(nb_node_input(n, i));
    if (r < 2) {
        ow_unsupported(c, "transpose of a %d-D operand", r);
        return NULL;
    }
    int64_t perm[NB_MAX_DIMS];
    for (int a = 0; a < r; a++) perm[a] = a;
    perm[r - 2] = r - 1;
    perm[r - 1] = r - 2;
    const char *t = ow_aux(c, i ? "bT" : "aT");
    ow_attr_ints(c, EMIT("Transpose", t, in_name(n, i)), "perm", perm, r);
    return t;
}

static nb_status w_matmul(ow_ctx *c, const nb_node *n)
{
    const char *a = a_int(n, "transpose_a") ? swapped(c, n, 0) : in_name(n, 0);
    const char *b = a_int(n, "transpose_b") ? swapped(c, n, 1) : in_name(n, 1);
    EMIT("MatMul", nb_node_name(n), a, b);
    return c->st;
}

/* Reductions: absent axis reduces every axis (ONNX's default too). ReduceSum
 * takes its axes as an input since opset 13, the others as an attribute
 * until opset 18. */
static nb_status reduce(ow_ctx *c, const nb_node *n, const char *op_type, bool axes_input)
{
    const nb_attr *ax = attr(n, "axis");
    Onnx__NodeProto *p;
    if (axes_input && ax->n)
        p = EMIT(op_type, nb_node_name(n), in_name(n, 0), ow_const_i64(c, "axes", ax->i, ax->n));
    else p = EMIT(op_type, nb_node_name(n), in_name(n, 0));
    if (!axes_input && ax->n) ow_attr_ints(c, p, "axes", ax->i, ax->n);
    ow_attr_int(c, p, "keepdims", a_int(n, "keepdims"));
    return c->st;
}
static nb_status w_sum(ow_ctx *c, const nb_node *n) { return reduce(c, n, "ReduceSum", true); }
static nb_status w_mean(ow_ctx *c, const nb_node *n) { return reduce(c, n, "ReduceMean", false); }
static nb_status w_max(ow_ctx *c, const nb_node *n) { return reduce(c, n, "ReduceMax", false); }
static nb_status w_min(ow_ctx *c, const nb_node *n) { return reduce(c, n, "ReduceMin", false); }
static nb_status w_lse(ow_ctx *c, const nb_node *n) { return reduce(c, n, "ReduceLogSumExp", false); }

/* ONNX's ArgMax gives int64 (the output is declared so: nabla's i32 op
 * outputs are int64 in ONNX, onnx_write.c), which the importer reads as i32. */
static nb_status w_argmax(ow_ctx *c, const nb_node *n)
{
    Onnx__NodeProto *p = same(c, n, "ArgMax");
    ow_attr_int(c, p, "axis", a_int(n, "axis"));
    ow_attr_int(c, p, "keepdims", a_int(n, "keepdims"));
    return c->st;
}

/* A free dimension in the shape is 0 ("as in the input") where the input
 * has that same symbol on that axis, else -1 when the shape has no -1
 * already; otherwise it cannot be said without run-time shape arithmetic. */
static nb_status w_reshape(ow_ctx *c, const nb_node *n)
{
    const nb_attr *s = attr(n, "shape");
    const nb_node *x = nb_node_input(n, 0);
    const nb_graph *g = nb_model_graph(c->m);
    int64_t v[NB_MAX_DIMS];
    bool minus1 = false;
    for (int i = 0; i < s->n; i++) minus1 |= !s->d[i].sym && s->d[i].size == -1;
    for (int i = 0; i < s->n; i++) {
        const char *sym = s->d[i].sym;
        const char *xs = i < nb_node_rank(x) ? nb_node_dim_sym(g, x, i) : NULL;
        if (!sym) v[i] = s->d[i].size;
        else if (xs && !strcmp(xs, sym)) v[i] = 0;
        else if (!minus1) v[i] = -1, minus1 = true;
        else
            return ow_unsupported(c, "shape entry %d ('%s'): a free dimension moved to another axis", i,
                                  sym);
    }
    EMIT("Reshape", nb_node_name(n), in_name(n, 0), ow_const_i64(c, "shape", v, s->n));
    return c->st;
}

static nb_status w_flatten(ow_ctx *c, const nb_node *n)
{
    ow_attr_int(c, same(c, n, "Flatten"), "axis", a_int(n, "axis"));
    return c->st;
}

static nb_status w_transpose(ow_ctx *c, const nb_node *n)
{
    const nb_attr *perm = attr(n, "perm");
    Onnx__NodeProto *p = same(c, n, "Transpose");
    if (perm->n) ow_attr_ints(c, p, "perm", perm->i, perm->n);
    return c->st;
}

static nb_status w_concat(ow_ctx *c, const nb_node *n)
{
    ow_attr_int(c, same(c, n, "Concat"), "axis", a_int(n, "axis"));
    return c->st;
}

static nb_status w_slice(ow_ctx *c, const nb_node *n)
{
    int64_t start = a_int(n, "start"), end = a_int(n, "end"), axis = a_int(n, "axis");
    EMIT("Slice", nb_node_name(n), in_name(n, 0), ow_const_i64(c, "starts", &start, 1),
         ow_const_i64(c, "ends", &end, 1), ow_const_i64(c, "axes", &axis, 1));
    return c->st;
}

static nb_status w_softmax(ow_ctx *c, const nb_node *n)
{
    ow_attr_int(c, same(c, n, "Softmax"), "axis", a_int(n, "axis"));
    return c->st;
}

static nb_status w_log_softmax(ow_ctx *c, const nb_node *n)
{
    ow_attr_int(c, same(c, n, "LogSoftmax"), "axis", a_int(n, "axis"));
    return c->st;
}

/* One integer or [h, w] as ONNX's [h, w]. */
static void hw(const nb_attr *a, int64_t out[2])
{
    out[0] = a->i[0];
    out[1] = a->n == 2 ? a->i[1] : a->i[0];
}

/* pads [top, left, bottom, right] of symmetric pads [h, w]. */
static void pads4(const nb_attr *a, int64_t out[4])
{
    hw(a, out);
    out[2] = out[0];
    out[3] = out[1];
}

static nb_status w_conv2d(ow_ctx *c, const nb_node *n)
{
    int64_t s[2], d[2], p[4];
    hw(attr(n, "stride"), s);
    hw(attr(n, "dilation"), d);
    pads4(attr(n, "pad"), p);
    Onnx__NodeProto *o = same(c, n, "Conv");
    ow_attr_ints(c, o, "strides", s, 2);
    ow_attr_ints(c, o, "dilations", d, 2);
    ow_attr_ints(c, o, "pads", p, 4);
    ow_attr_int(c, o, "group", a_int(n, "groups"));
    return c->st;
}

/* nabla's stride 0 is the window's size. */
static Onnx__NodeProto *pool(ow_ctx *c, const nb_node *n, const char *op_type)
{
    int64_t k[2], s[2], p[4];
    hw(attr(n, "size"), k);
    hw(attr(n, "stride"), s);
    for (int i = 0; i < 2; i++)
        if (!s[i]) s[i] = k[i];
    pads4(attr(n, "pad"), p);
    Onnx__NodeProto *o = same(c, n, op_type);
    ow_attr_ints(c, o, "kernel_shape", k, 2);
    ow_attr_ints(c, o, "strides", s, 2);
    ow_attr_ints(c, o, "pads", p, 4);
    return o;
}

static nb_status w_max_pool2d(ow_ctx *c, const nb_node *n)
{
    pool(c, n, "MaxPool");
    return c->st;
}

/* nabla's avg_pool2d counts padded zeros unless count_include_pad is false;
 * ONNX's default is the opposite, so it is always written. */
static nb_status w_avg_pool2d(ow_ctx *c, const nb_node *n)
{
    const nb_attr *cip = attr(n, "count_include_pad");
    ow_attr_int(c, pool(c, n, "AveragePool"), "count_include_pad", cip ? cip->i[0] : 1);
    return c->st;
}

/* Inference: the running statistics (the op's state inputs 3 and 4). */
static nb_status w_batchnorm(ow_ctx *c, const nb_node *n)
{
    Onnx__NodeProto *p = EMIT("BatchNormalization", nb_node_name(n), in_name(n, 0), in_name(n, 1),
                              in_name(n, 2), in_name(n, 3), in_name(n, 4));
    ow_attr_float(c, p, "epsilon", a_float(n, "eps"));
    return c->st;
}

static nb_status w_layernorm(ow_ctx *c, const nb_node *n)
{
    Onnx__NodeProto *p = same(c, n, "LayerNormalization");
    ow_attr_int(c, p, "axis", a_int(n, "axis"));
    ow_attr_float(c, p, "epsilon", a_float(n, "eps"));
    return c->st;
}

static nb_status w_embedding(ow_ctx *c, const nb_node *n)
{
    ow_attr_int(c, EMIT("Gather", nb_node_name(n), in_name(n, 1), in_name(n, 0)), "axis", 0);
    return c->st;
}

/* pad (before, after, value): ONNX Pad's pads are every axis's before, then
 * every axis's after; an omitted after is before. */
static nb_status w_pad(ow_ctx *c, const nb_node *n)
{
    const nb_attr *b = attr(n, "before"), *a = attr(n, "after");
    if (!a || !a->n) a = b;
    int64_t pads[2 * NB_MAX_DIMS];
    for (int i = 0; i < b->n; i++) pads[i] = b->i[i], pads[b->n + i] = a->i[i];
    const nb_attr *v = attr(n, "value");
    EMIT("Pad", nb_node_name(n), in_name(n, 0), ow_const_i64(c, "pads", pads, 2 * b->n),
         scalar(c, n, "value", v && v->n ? v->f : 0));
    return c->st;
}

static const ow_op ops[] = {
    {"add", w_add}, {"sub", w_sub}, {"mul", w_mul}, {"div", w_div}, {"neg", w_neg},
    {"exp", w_exp}, {"log", w_log}, {"sqrt", w_sqrt}, {"abs", w_abs}, {"relu", w_relu},
    {"sigmoid", w_sigmoid}, {"tanh", w_tanh}, {"sin", w_sin}, {"cos", w_cos}, {"erf", w_erf},
    {"sign", w_sign},
    {"minimum", w_minimum}, {"maximum", w_maximum}, {"dropout", w_dropout},
    {"global_avg_pool2d", w_gap}, {"greater", w_greater}, {"less", w_less}, {"equal", w_equal},
    {"where", w_where}, {"pow", w_pow}, {"leaky_relu", w_leaky_relu}, {"elu", w_elu},
    {"softplus", w_softplus}, {"silu", w_silu}, {"log1p", w_log1p}, {"gelu", w_gelu},
    {"scale", w_scale}, {"clip", w_clip}, {"matmul", w_matmul}, {"sum", w_sum}, {"mean", w_mean},
    {"max", w_max}, {"min", w_min}, {"logsumexp", w_lse}, {"argmax", w_argmax},
    {"reshape", w_reshape}, {"flatten", w_flatten}, {"transpose", w_transpose},
    {"concat", w_concat}, {"slice", w_slice}, {"softmax", w_softmax},
    {"log_softmax", w_log_softmax}, {"conv2d", w_conv2d}, {"max_pool2d", w_max_pool2d},
    {"avg_pool2d", w_avg_pool2d}, {"batchnorm", w_batchnorm}, {"layernorm", w_layernorm},
    {"embedding", w_embedding}, {"pad", w_pad},
};

const ow_op *ow_op_find(const char *op)
{
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if (!strcmp(ops[i].op, op)) return &ops[i];
    return NULL;
}

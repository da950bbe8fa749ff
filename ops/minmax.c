/* Elementwise extremes (issue 9), PyTorch's definitions:
 *   maximum(a, b), minimum(a, b)   broadcast; NaN in either gives NaN
 *   clip(a; min, max)              torch.clamp: each bound optional, one needed;
 *                                  with min > max every element becomes max
 * and their gradient ops (internal), each linear in gy and selecting rather
 * than multiplying, so its own gradient is itself applied to the incoming
 * gradient (the others get none: the second derivative is 0 almost everywhere):
 *   minmax_backward(gy, x, o; min)  0 where x loses to o, gy/2 on a tie, else gy
 *                                   (max: x < o loses; min: x > o; NaN never loses,
 *                                   as torch.maximum's gradient)
 *   clip_backward(gy, a; min, max)  gy where min <= a <= max, else 0 (NaN: 0) */
#include <math.h>

#include "kernel.h"

/* ---- maximum, minimum ---- */

/* a NaN a is kept; a NaN b fails both comparisons and is taken */
NB_BINARY_ROWS(maximum, (a > b || a != a) ? a : b)
NB_BINARY_ROWS(minimum, (a < b || a != a) ? a : b)

static nb_status maximum_fwd(const nb_kctx *k) { return nb_binary_run(k, maximum_f32, maximum_f64); }
static nb_status minimum_fwd(const nb_kctx *k) { return nb_binary_run(k, minimum_f32, minimum_f64); }

enum { M_MIN };
static const nb_attr_def minmax_attrs[] = {{"min", NB_ATTR_BOOL, false, {0}}};

static nb_node *minmax_grad(nb_graph *g, nb_node *gy, nb_node *x, nb_node *o, bool min)
{
    nb_attr at = NB_ABOOL("min", min);
    return nb_apply(g, &nb_op_minmax_backward, NULL, (nb_node *[]){gy, x, o}, 3, &at, 1);
}

static nb_status extreme_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx,
                             bool min)
{
    nb_node *a = nb_node_input(y, 0), *b = nb_node_input(y, 1);
    if (nb_needs_grad(needs, 0)) gx[0] = minmax_grad(g, gy, a, b, min);
    if (nb_needs_grad(needs, 1)) gx[1] = minmax_grad(g, gy, b, a, min);
    return NB_OK;
}

static nb_status maximum_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    return extreme_bwd(g, y, gy, needs, gx, false);
}

static nb_status minimum_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    return extreme_bwd(g, y, gy, needs, gx, true);
}

/* out = broadcast(gy, x, o), which is gy's shape when built by a gradient rule */
static nb_status minmax_backward_shape(nb_shape_ctx *c)
{
    nb_status st = nb_shape_float_inputs(c);
    nb_shape xo;
    if (st || (st = nb_shape_broadcast(c, 1, 2, &xo))) return st;
    c->out = c->in[0];
    for (int i = 0; i < xo.rank; i++) {
        int j = c->out.rank - xo.rank + i;
        if (j < 0 || (!nb_sdim_eq(xo.d[i], c->out.d[j]) && !nb_sdim_is(xo.d[i], 1)))
            return nb_shape_fail(c, NB_ERR_SHAPE, "needs x and o that broadcast to gy; %s, %s, %s",
                                 nb_shape_desc(c, 0), nb_shape_desc(c, 1), nb_shape_desc(c, 2));
    }
    return NB_OK;
}

typedef struct pass_ctx {
    const nb_kctx *k;
    int64_t sx, so;
} pass_ctx;

/* x loses when o beats it strictly: max x < o, min x > o (sign flips o - x) */
#define MINMAX_ROW(NAME, T)                                                              \
    static void NAME(void *ctx, const int64_t *off, int64_t n)                          \
    {                                                                                   \
        const pass_ctx *p = ctx;                                                        \
        const T *gy = (const T *)p->k->in[0] + off[1], *x = (const T *)p->k->in[1] + off[2]; \
        const T *o = (const T *)p->k->in[2] + off[3];                                   \
        T *y = (T *)p->k->out + off[0];                                                 \
        bool min = p->k->attr[M_MIN].i[0] != 0;                                         \
        for (int64_t i = 0; i < n; i++) {                                               \
            T xi = x[i * p->sx], oi = o[i * p->so], g = gy[i];                          \
            bool loses = min ? xi > oi : xi < oi;                                       \
            y[i] = loses ? 0 : xi == oi ? g / 2 : g;                                    \
        }                                                                               \
    }
MINMAX_ROW(minmax_row_f32, float)
MINMAX_ROW(minmax_row_f64, double)

static nb_status minmax_backward_fwd(const nb_kctx *k)
{
    nb_iter it;
    const nb_dims *ops[4] = {&k->out_shape, &k->in_shape[0], &k->in_shape[1], &k->in_shape[2]};
    nb_iter_init(&it, &k->out_shape, 4, ops);
    int r = it.rank - 1;
    pass_ctx p = {k, it.stride[2][r], it.stride[3][r]};
    nb_iter_rows(&it, &p, k->dtype == NB_F64 ? minmax_row_f64 : minmax_row_f32);
    return NB_OK;
}

static nb_status minmax_backward_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs,
                                     nb_node **gx)
{
    (void)needs;
    gx[0] = minmax_grad(g, gy, nb_node_input(y, 1), nb_node_input(y, 2),
                        nb__attr(y, M_MIN)->i[0] != 0);
    return NB_OK;
}

/* ---- clip ---- */

enum { C_MIN, C_MAX };
/* n == 0 (and NaN, which `nabla ops` shows as "optional"): not given */
static const nb_attr_def clip_attrs[] = {{"min", NB_ATTR_FLOAT, false, {.f = NAN}},
                                         {"max", NB_ATTR_FLOAT, false, {.f = NAN}}};

static double lower(const nb_attr *a) { return a[C_MIN].n ? a[C_MIN].f : -INFINITY; }
static double upper(const nb_attr *a) { return a[C_MAX].n ? a[C_MAX].f : INFINITY; }

static nb_status clip_shape(nb_shape_ctx *c)
{
    if (!c->attr[C_MIN].n && !c->attr[C_MAX].n)
        return nb_shape_fail(c, NB_ERR_ARG, "needs 'min' or 'max' (or both)");
    return nb_rule_same(c);
}

/* clamp to [p0, p1] with p1 last (min > max gives max); NaN fails both tests */
#define CLIP_LO(x) ((x) < p0 ? p0 : (x))
NB_UNARY_ROWS(clip, CLIP_LO(x) > p1 ? p1 : CLIP_LO(x))

static nb_status clip_fwd(const nb_kctx *k)
{
    return nb_unary_run(k, clip_f32, clip_f64, lower(k->attr), upper(k->attr));
}

/* the attributes given to a clip node, to pass on to its gradient op */
static int clip_attrs_of(const nb_node *y, nb_attr *at)
{
    int n = 0;
    if (nb__attr(y, C_MIN)->n) at[n++] = (nb_attr)NB_AFLOAT("min", nb__attr(y, C_MIN)->f);
    if (nb__attr(y, C_MAX)->n) at[n++] = (nb_attr)NB_AFLOAT("max", nb__attr(y, C_MAX)->f);
    return n;
}

/* the gate is clip's input a, or clip_backward's input a (it is linear in gy) */
static nb_status clip_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    nb_attr at[2];
    int n = clip_attrs_of(y, at);
    gx[0] = nb_apply(g, &nb_op_clip_backward, NULL,
                     (nb_node *[]){gy, nb_node_input(y, y->op == &nb_op_clip ? 0 : 1)}, 2, at, n);
    return NB_OK;
}
#define clip_backward_bwd clip_bwd

/* gy and a of the output's shape, as autodiff gives them */
static nb_status clip_backward_shape(nb_shape_ctx *c)
{
    nb_status st = nb_shape_float_inputs(c);
    if (st || (st = clip_shape(c))) return st;
    if (!nb_shape_eq(&c->in[0], &c->in[1]))
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs gy and a of equal shapes; %s, %s",
                             nb_shape_desc(c, 0), nb_shape_desc(c, 1));
    return NB_OK;
}

#define CLIP_PASS(T)                                                                       \
    static void clip_pass_##T(const T *gy, const T *a, T *out, size_t n, T lo, T hi)       \
    {                                                                                      \
        for (size_t i = 0; i < n; i++) { /* gy loaded on both paths: vectorises */         \
            T g = gy[i];                                                                   \
            out[i] = a[i] >= lo && a[i] <= hi ? g : 0;                                     \
        }                                                                                  \
    }
CLIP_PASS(float)
CLIP_PASS(double)

static nb_status clip_backward_fwd(const nb_kctx *k)
{
    size_t n = nb_dims_numel(&k->out_shape);
    double lo = lower(k->attr), hi = upper(k->attr);
    if (k->dtype == NB_F64) clip_pass_double(k->in[0], k->in[1], k->out, n, lo, hi);
    else clip_pass_float(k->in[0], k->in[1], k->out, n, (float)lo, (float)hi);
    return NB_OK;
}

/* ---- definitions ---- */

/* random inputs never tie; broadcasting every way */
static const nb_op_case extreme_cases[] = {
    {.in = {"3,4", "3,4"}},
    {.in = {"2,3,4", "4"}},
    {.in = {"3,1", "1,4"}},
    {.in = {"", "2,3"}},
    {.in = {"1", "1"}},
};
/* x and o are not differentiated, so they may be anything */
static const nb_op_case minmax_backward_cases[] = {
    {.in = {"3,4", "3,4", "4"}},
    {.in = {"2,3", "", "2,1"}, .attrs = {NB_ABOOL("min", 1)}, .n_attrs = 1},
};
#define CLIP(lo, hi) .attrs = {NB_AFLOAT("min", lo), NB_AFLOAT("max", hi)}, .n_attrs = 2
static const nb_op_case clip_cases[] = {
    {.in = {"3,4"}, CLIP(-0.5, 0.5)},
    {.in = {"2,1,3"}, .attrs = {NB_AFLOAT("min", 0.25)}, .n_attrs = 1},
    {.in = {"5"}, .attrs = {NB_AFLOAT("max", -0.25)}, .n_attrs = 1},
    {.in = {""}, .lo = -0.4, .hi = 0.4, CLIP(-0.5, 0.5)},
    {.in = {"4"}, CLIP(0.5, -0.5)},  /* min > max: all max, gradient 0 */
};
static const nb_op_case clip_backward_cases[] = {{.in = {"3,4", "3,4"}, CLIP(-0.5, 0.5)},
                                                 {.in = {"", ""}, CLIP(-0.5, 0.5)}};

#define EXTREME_OP(NAME, DOC)                                                             \
    const nb_op_def nb_op_##NAME = {                                                      \
        .name = #NAME, .min_in = 2, .max_in = 2, .shape = nb_rule_broadcast,              \
        .flags = NB_OP_INPLACE, .forward = NAME##_fwd, .backward = NAME##_bwd,            \
        .flops = nb_flops_per_out, .cases = extreme_cases,                                \
        .n_cases = NB_NELEMS(extreme_cases), .doc = DOC}

EXTREME_OP(maximum, "larger of a and b, broadcast (NaN wins; a tie halves the gradient)");
EXTREME_OP(minimum, "smaller of a and b, broadcast (NaN wins; a tie halves the gradient)");

const nb_op_def nb_op_minmax_backward = {
    .name = "minmax_backward", .min_in = 3, .max_in = 3, .attrs = minmax_attrs, .n_attrs = 1,
    .flags = NB_OP_INTERNAL | NB_OP_INPLACE, .no_grad = 6, .shape = minmax_backward_shape,
    .forward = minmax_backward_fwd, .backward = minmax_backward_bwd, .flops = nb_flops_per_out,
    .cases = minmax_backward_cases, .n_cases = NB_NELEMS(minmax_backward_cases),
    .doc = "gradient of maximum (minimum with min) for x against o"};

const nb_op_def nb_op_clip = {
    .name = "clip", .min_in = 1, .max_in = 1, .attrs = clip_attrs, .n_attrs = 2,
    .flags = NB_OP_INPLACE, .shape = clip_shape, .forward = clip_fwd, .backward = clip_bwd,
    .flops = nb_flops_per_out, .cases = clip_cases, .n_cases = NB_NELEMS(clip_cases),
    .doc = "a limited to [min, max], one or both given (torch.clamp; gradient 1 where min <= a <= max)"};

const nb_op_def nb_op_clip_backward = {
    .name = "clip_backward", .min_in = 2, .max_in = 2, .attrs = clip_attrs, .n_attrs = 2,
    .flags = NB_OP_INTERNAL | NB_OP_INPLACE, .no_grad = 2, .shape = clip_backward_shape,
    .forward = clip_backward_fwd, .backward = clip_backward_bwd, .flops = nb_flops_per_out,
    .cases = clip_backward_cases, .n_cases = NB_NELEMS(clip_backward_cases),
    .doc = "gradient of clip: gy where min <= a <= max, else 0"};

/* ---- typed helpers ---- */

nb_node *nb_maximum(nb_graph *g, nb_node *a, nb_node *b)
{
    return nb_apply(g, &nb_op_maximum, NULL, (nb_node *[]){a, b}, 2, NULL, 0);
}

nb_node *nb_minimum(nb_graph *g, nb_node *a, nb_node *b)
{
    return nb_apply(g, &nb_op_minimum, NULL, (nb_node *[]){a, b}, 2, NULL, 0);
}

nb_node *nb_clip(nb_graph *g, nb_node *a, double min, double max)
{
    nb_attr at[2];
    int n = 0;
    if (!isnan(min)) at[n++] = (nb_attr)NB_AFLOAT("min", min);
    if (!isnan(max)) at[n++] = (nb_attr)NB_AFLOAT("max", max);
    return nb_apply(g, &nb_op_clip, NULL, &a, 1, at, n);
}

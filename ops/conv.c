/* 2-D convolution (cross-correlation, no kernel flip, as PyTorch), lowered to
 * GEMM one sample at a time, with the sample's column matrix in the workspace:
 *   conv2d(x, w[, b])                  y_n = W · col(x_n) + b
 *   conv2d_backward_input(gy, w, x)    gx_n = col2im(Wᵀ · gy_n)      (x: shape only)
 *   conv2d_backward_filter(gy, x, w)   gw = Σ_n gy_n · col(x_n)ᵀ     (w: shape only)
 * x [N, C, H, W], w [O, C, KH, KW], b [O], y [N, O, OH, OW] with
 * OH = (H + 2 pad - KH) / stride + 1 (floor). All three are linear in each
 * argument, so each one's gradient is another of them: second order works. */
#include <cblas.h>
#include <limits.h>
#include <string.h>

#include "kernel.h"

enum { A_STRIDE, A_PAD };
static const nb_attr_def conv_attrs[] = {
    {"stride", NB_ATTR_INT, false, {.n = 1, .i = {1}}},
    {"pad", NB_ATTR_INT, false, {.n = 1, .i = {0}}},
};

/* ---- geometry ---- */

typedef struct geom {
    int64_t N, C, H, W, O, KH, KW, OH, OW, s, p;
    int64_t ckk, ohw;  /* one sample's column matrix is [ckk, ohw] */
    bool direct;       /* 1x1 kernel, stride 1, no padding: col(x_n) is x_n itself */
} geom;

/* From bound shapes of x [N, C, H, W] and w [O, C, KH, KW]. */
static geom geom_of(const nb_dims *x, const nb_dims *w, const nb_attr *a)
{
    geom g = {.N = x->d[0], .C = x->d[1], .H = x->d[2], .W = x->d[3], .O = w->d[0],
              .KH = w->d[2], .KW = w->d[3], .s = a[A_STRIDE].i[0], .p = a[A_PAD].i[0]};
    g.OH = (g.H + 2 * g.p - g.KH) / g.s + 1;
    g.OW = (g.W + 2 * g.p - g.KW) / g.s + 1;
    g.ckk = g.C * g.KH * g.KW;
    g.ohw = g.OH * g.OW;
    g.direct = g.KH == 1 && g.KW == 1 && g.s == 1 && g.p == 0;
    return g;
}

/* The output columns [lo, hi) whose input column ow*s - p + kj lies in [0, W). */
static void valid_cols(const geom *g, int64_t kj, int64_t *lo, int64_t *hi)
{
    int64_t a = g->p - kj, b = g->W - 1 + g->p - kj;
    *lo = a > 0 ? (a + g->s - 1) / g->s : 0;
    *hi = b < 0 ? 0 : b / g->s + 1;
    if (*lo > g->OW) *lo = g->OW;
    if (*hi > g->OW) *hi = g->OW;
    if (*hi < *lo) *hi = *lo;
}

#define NB_TEMPLATE "conv_t.h"
#include "template.h"

/* ---- shape rules ---- */

/* Checks x (input ix), the filter w (input iw) and the attributes; the
 * convolution's output shape goes to *out. */
static nb_status conv_out_shape(nb_shape_ctx *c, int ix, int iw, nb_shape *out)
{
    const nb_shape *x = &c->in[ix], *w = &c->in[iw];
    int64_t s = c->attr[A_STRIDE].i[0], p = c->attr[A_PAD].i[0];
    if (x->rank != 4)
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs x [N, C, H, W]; %s", nb_shape_desc(c, ix));
    if (w->rank != 4)
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs a filter [O, C, KH, KW]; %s",
                             nb_shape_desc(c, iw));
    for (int i = 1; i < 4; i++)
        if (!nb_sdim_is_const(x->d[i]))
            return nb_shape_fail(c, NB_ERR_SHAPE, "needs constant channels, height and width; %s",
                                 nb_shape_desc(c, ix));
    for (int i = 0; i < 4; i++)
        if (!nb_sdim_is_const(w->d[i]))
            return nb_shape_fail(c, NB_ERR_SHAPE, "needs a constant filter shape; %s",
                                 nb_shape_desc(c, iw));
    if (x->d[1].c != w->d[1].c)
        return nb_shape_fail(c, NB_ERR_SHAPE,
                             "channel mismatch: %s, %s (dim 1 of both must agree: %lld vs %lld)",
                             nb_shape_desc(c, ix), nb_shape_desc(c, iw), (long long)x->d[1].c,
                             (long long)w->d[1].c);
    if (s < 1) return nb_shape_fail(c, NB_ERR_ARG, "stride %lld must be >= 1", (long long)s);
    if (p < 0) return nb_shape_fail(c, NB_ERR_ARG, "pad %lld must be >= 0", (long long)p);
    int64_t eh = x->d[2].c + 2 * p - w->d[2].c, ew = x->d[3].c + 2 * p - w->d[3].c;
    if (eh < 0 || ew < 0)
        return nb_shape_fail(c, NB_ERR_SHAPE,
                             "output would be smaller than 1x1: %s padded by %lld is smaller "
                             "than the kernel of %s",
                             nb_shape_desc(c, ix), (long long)p, nb_shape_desc(c, iw));
    int64_t O = w->d[0].c, ckk = w->d[1].c * w->d[2].c * w->d[3].c;
    int64_t ohw = (eh / s + 1) * (ew / s + 1);
    if (ckk * ohw > INT_MAX || O * ohw > INT_MAX || O * ckk > INT_MAX)
        return nb_shape_fail(c, NB_ERR_SHAPE, "is too large for BLAS: %s, %s",
                             nb_shape_desc(c, ix), nb_shape_desc(c, iw));
    *out = (nb_shape){.rank = 4};
    out->d[0] = x->d[0];
    out->d[1] = nb_sdim_const(O);
    out->d[2] = nb_sdim_const(eh / s + 1);
    out->d[3] = nb_sdim_const(ew / s + 1);
    return NB_OK;
}

static nb_status conv_shape(nb_shape_ctx *c)
{
    nb_status st = nb_shape_float_inputs(c);
    if (!st) st = conv_out_shape(c, 0, 1, &c->out);
    if (st || c->n_in < 3) return st;
    if (c->in[2].rank != 1 || !nb_sdim_eq(c->in[2].d[0], c->in[1].d[0]))
        return nb_shape_fail(c, NB_ERR_SHAPE,
                             "needs a bias [O] with O = dim 0 of the filter; %s, %s",
                             nb_shape_desc(c, 2), nb_shape_desc(c, 1));
    return NB_OK;
}

/* gy (input 0) must have the shape of the convolution of x by w. */
static nb_status grad_shape(nb_shape_ctx *c, int ix, int iw)
{
    nb_shape y;
    nb_status st = nb_shape_float_inputs(c);
    if (!st) st = conv_out_shape(c, ix, iw, &y);
    if (!st) st = nb_shape_expect(c, 0, &y, "a gradient of the output's shape");
    if (st) return st;
    c->out = c->in[2];  /* the shape-only input: the one differentiated */
    return NB_OK;
}

static nb_status bwd_input_shape(nb_shape_ctx *c) { return grad_shape(c, 2, 1); }
static nb_status bwd_filter_shape(nb_shape_ctx *c) { return grad_shape(c, 1, 2); }

/* ---- kernels, FLOPs, workspaces (x and w shapes differ per op) ---- */

static geom fwd_geom(const nb_kctx *k)
{
    return geom_of(&k->in_shape[0], &k->in_shape[1], k->attr);
}
static geom bwd_input_geom(const nb_kctx *k)
{
    return geom_of(&k->out_shape, &k->in_shape[1], k->attr);
}
static geom bwd_filter_geom(const nb_kctx *k)
{
    return geom_of(&k->in_shape[1], &k->out_shape, k->attr);
}

static size_t col_bytes(const nb_kctx *k, geom g)
{
    return g.direct ? 0 : (size_t)(g.ckk * g.ohw) * nb_dtype_size(k->dtype);
}
static double gemm_flops(geom g)
{
    return 2.0 * (double)g.N * (double)g.O * (double)g.ohw * (double)g.ckk;
}

static size_t conv_work(const nb_kctx *k) { return col_bytes(k, fwd_geom(k)); }
static size_t bwd_input_work(const nb_kctx *k) { return col_bytes(k, bwd_input_geom(k)); }
static size_t bwd_filter_work(const nb_kctx *k) { return col_bytes(k, bwd_filter_geom(k)); }

static double conv_flops(const nb_kctx *k)
{
    geom g = fwd_geom(k);
    return gemm_flops(g) + (k->n_in > 2 ? (double)g.N * (double)g.O * (double)g.ohw : 0);
}
static double bwd_input_flops(const nb_kctx *k) { return gemm_flops(bwd_input_geom(k)); }
static double bwd_filter_flops(const nb_kctx *k) { return gemm_flops(bwd_filter_geom(k)); }

static nb_status conv_forward(const nb_kctx *k)
{
    geom g = fwd_geom(k);
    if (k->dtype == NB_F64) conv_fwd_f64(k, &g);
    else conv_fwd_f32(k, &g);
    return NB_OK;
}

static nb_status bwd_input_forward(const nb_kctx *k)
{
    geom g = bwd_input_geom(k);
    if (k->dtype == NB_F64) conv_bwd_input_f64(k, &g);
    else conv_bwd_input_f32(k, &g);
    return NB_OK;
}

static nb_status bwd_filter_forward(const nb_kctx *k)
{
    geom g = bwd_filter_geom(k);
    if (k->dtype == NB_F64) conv_bwd_filter_f64(k, &g);
    else conv_bwd_filter_f32(k, &g);
    return NB_OK;
}

/* ---- gradient rules ---- */

static nb_node *conv_op(nb_graph *g, const nb_op_def *op, const nb_node *like, nb_node *a,
                        nb_node *b, nb_node *c)
{
    nb_attr at[2] = {*nb__attr(like, A_STRIDE), *nb__attr(like, A_PAD)};
    return nb_apply(g, op, NULL, (nb_node *[]){a, b, c}, c ? 3 : 2, at, 2);
}

static nb_status conv_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    nb_node *x = nb_node_input(y, 0), *w = nb_node_input(y, 1);
    if (nb_needs_grad(needs, 0)) gx[0] = conv_op(g, &nb_op_conv2d_backward_input, y, gy, w, x);
    if (nb_needs_grad(needs, 1)) gx[1] = conv_op(g, &nb_op_conv2d_backward_filter, y, gy, x, w);
    if (nb_needs_grad(needs, 2)) gx[2] = nb_sum(g, gy, (int64_t[]){0, 2, 3}, 3, false);
    return NB_OK;
}

/* y = A_w^T gy, so <G, y> = <A_w G, gy>: d/dgy = conv2d(G, w), d/dw = filter gradient of (gy, G) */
static nb_status bwd_input_bwd(nb_graph *g, nb_node *y, nb_node *G, uint64_t needs, nb_node **gx)
{
    nb_node *gy = nb_node_input(y, 0), *w = nb_node_input(y, 1);
    if (nb_needs_grad(needs, 0)) gx[0] = conv_op(g, &nb_op_conv2d, y, G, w, NULL);
    if (nb_needs_grad(needs, 1)) gx[1] = conv_op(g, &nb_op_conv2d_backward_filter, y, gy, G, w);
    return NB_OK;
}

/* <G, y> = <gy, conv2d(x, G)>: d/dgy = conv2d(x, G), d/dx = input gradient of (gy, G) */
static nb_status bwd_filter_bwd(nb_graph *g, nb_node *y, nb_node *G, uint64_t needs, nb_node **gx)
{
    nb_node *gy = nb_node_input(y, 0), *x = nb_node_input(y, 1);
    if (nb_needs_grad(needs, 0)) gx[0] = conv_op(g, &nb_op_conv2d, y, x, G, NULL);
    if (nb_needs_grad(needs, 1)) gx[1] = conv_op(g, &nb_op_conv2d_backward_input, y, gy, G, x);
    return NB_OK;
}

/* ---- definitions ---- */

#define SP(s, p) .attrs = {NB_AINT("stride", s), NB_AINT("pad", p)}, .n_attrs = 2
static const nb_op_case conv_cases[] = {
    {.in = {"2,3,5,5", "4,3,3,3"}, SP(1, 0)},
    {.in = {"2,3,5,5", "4,3,3,3", "4"}, SP(1, 1)},
    {.in = {"2,3,5,5", "4,3,3,3", "4"}, SP(2, 0)},
    {.in = {"2,3,6,6", "4,3,3,3"}, SP(2, 1)},
    {.in = {"1,2,4,6", "3,2,2,3", "3"}, SP(2, 1)},  /* H != W, KH != KW, floor */
    {.in = {"2,3,4,5", "2,3,1,1", "2"}, SP(1, 0)},  /* 1x1: no column matrix */
    {.in = {"1,3,5,4", "2,3,1,1"}, SP(2, 1)},
    {.in = {"2,2,3,3", "3,2,3,3", "3"}, SP(1, 0)},  /* kernel covers the input */
};
static const nb_op_case bwd_input_cases[] = {
    {.in = {"2,4,3,3", "4,3,3,3", "2,3,5,5"}, SP(1, 0)},
    {.in = {"2,4,3,3", "4,3,3,3", "2,3,6,6"}, SP(2, 1)},
    {.in = {"1,2,3,3", "2,3,1,1", "1,3,3,3"}, SP(1, 0)},
};
static const nb_op_case bwd_filter_cases[] = {
    {.in = {"2,4,3,3", "2,3,5,5", "4,3,3,3"}, SP(1, 0)},
    {.in = {"2,4,3,3", "2,3,6,6", "4,3,3,3"}, SP(2, 1)},
    {.in = {"1,2,3,3", "1,3,3,3", "2,3,1,1"}, SP(1, 0)},
};

const nb_op_def nb_op_conv2d = {
    .name = "conv2d", .min_in = 2, .max_in = 3, .attrs = conv_attrs, .n_attrs = 2,
    .shape = conv_shape, .forward = conv_forward, .backward = conv_bwd, .flops = conv_flops,
    .workspace = conv_work, .cases = conv_cases, .n_cases = NB_NELEMS(conv_cases),
    .doc = "2-D cross-correlation of x [N, C, H, W] with w [O, C, KH, KW], plus b [O]"};
const nb_op_def nb_op_conv2d_backward_input = {
    .name = "conv2d_backward_input", .min_in = 3, .max_in = 3, .attrs = conv_attrs, .n_attrs = 2,
    .flags = NB_OP_INTERNAL, .shape_only = 4, .no_grad = 4, .shape = bwd_input_shape,
    .forward = bwd_input_forward, .backward = bwd_input_bwd, .flops = bwd_input_flops,
    .workspace = bwd_input_work, .cases = bwd_input_cases, .n_cases = NB_NELEMS(bwd_input_cases),
    .doc = "gradient of conv2d for x, from (gy, w, x)"};
const nb_op_def nb_op_conv2d_backward_filter = {
    .name = "conv2d_backward_filter", .min_in = 3, .max_in = 3, .attrs = conv_attrs, .n_attrs = 2,
    .flags = NB_OP_INTERNAL, .shape_only = 4, .no_grad = 4, .shape = bwd_filter_shape,
    .forward = bwd_filter_forward, .backward = bwd_filter_bwd, .flops = bwd_filter_flops,
    .workspace = bwd_filter_work, .cases = bwd_filter_cases,
    .n_cases = NB_NELEMS(bwd_filter_cases), .doc = "gradient of conv2d for w, from (gy, x, w)"};

nb_node *nb_conv2d(nb_graph *g, nb_node *x, nb_node *w, nb_node *b, int64_t stride, int64_t pad)
{
    nb_attr at[2] = {NB_AINT("stride", stride), NB_AINT("pad", pad)};
    return nb_apply(g, &nb_op_conv2d, NULL, (nb_node *[]){x, w, b}, b ? 3 : 2, at, 2);
}

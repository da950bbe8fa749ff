/* 2-D convolution (cross-correlation, no kernel flip, as PyTorch), lowered to
 * GEMM one sample at a time, with the sample's column matrix in the workspace:
 *   conv2d(x, w[, b])                  y_n,g = W_g · col(x_n)_g + b
 *   conv2d_backward_input(gy, w, x)    gx_n = col2im(W_gᵀ · gy_n,g)   (x: shape only)
 *   conv2d_backward_filter(gy, x, w)   gw_g = Σ_n gy_n,g · col(x_n)_gᵀ (w: shape only)
 * x [N, C, H, W], w [O, C/groups, KH, KW], b [O], y [N, O, OH, OW] with
 * OH = (H + 2 padh - dilh (KH - 1) - 1) / strideh + 1 (floor), as PyTorch.
 * stride, pad and dilation are one integer or [h, w]. With groups G, the
 * channels split into G runs; run g of the output sees only run g of the
 * input (the rows of col(x_n) for those channels: one GEMM per group). All
 * three are linear in each argument, so each one's gradient is another of
 * them with the same attributes: second order works. */
#include <cblas.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "kernel.h"

enum { A_STRIDE, A_PAD, A_DIL, A_GROUPS };
static const nb_attr_def conv_attrs[] = {
    {"stride", NB_ATTR_INTS, false, {.n = 1, .i = {1}}},
    {"pad", NB_ATTR_INTS, false, {.n = 1, .i = {0}}},
    {"dilation", NB_ATTR_INTS, false, {.n = 1, .i = {1}}},
    {"groups", NB_ATTR_INT, false, {.n = 1, .i = {1}}},
};

/* Entry `axis` (0: height, 1: width) of a one-integer-or-[h, w] attribute. */
static int64_t hw(const nb_attr *a, int axis) { return a->n == 2 ? a->i[axis] : a->i[0]; }

/* ---- geometry ---- */

typedef struct geom {
    int64_t N, C, H, W, O, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw, G;
    int64_t ckk, ohw;  /* one group's column matrix is [ckk, ohw] (C/G channels) */
    bool direct;       /* 1x1 kernel, stride 1, no padding: col(x_n) is x_n itself */
} geom;

/* Output size along an axis of size n for kernel k (may be < 1: the shape rule checks). */
static int64_t out_size(int64_t n, int64_t k, int64_t s, int64_t p, int64_t d)
{
    int64_t e = n + 2 * p - d * (k - 1) - 1;
    return e < 0 ? 0 : e / s + 1;
}

/* From bound shapes of x [N, C, H, W] and w [O, C/G, KH, KW]. */
static geom geom_of(const nb_dims *x, const nb_dims *w, const nb_attr *a)
{
    geom g = {.N = x->d[0], .C = x->d[1], .H = x->d[2], .W = x->d[3], .O = w->d[0],
              .KH = w->d[2], .KW = w->d[3], .sh = hw(&a[A_STRIDE], 0), .sw = hw(&a[A_STRIDE], 1),
              .ph = hw(&a[A_PAD], 0), .pw = hw(&a[A_PAD], 1), .dh = hw(&a[A_DIL], 0),
              .dw = hw(&a[A_DIL], 1), .G = a[A_GROUPS].i[0]};
    g.OH = out_size(g.H, g.KH, g.sh, g.ph, g.dh);
    g.OW = out_size(g.W, g.KW, g.sw, g.pw, g.dw);
    g.ckk = w->d[1] * g.KH * g.KW;
    g.ohw = g.OH * g.OW;
    g.direct = g.KH == 1 && g.KW == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
    return g;
}

/* The output columns [lo, hi) whose input column ow*sw - pw + kj*dw lies in [0, W). */
static void valid_cols(const geom *g, int64_t kj, int64_t *lo, int64_t *hi)
{
    int64_t a = g->pw - kj * g->dw, b = g->W - 1 + g->pw - kj * g->dw;
    *lo = a > 0 ? (a + g->sw - 1) / g->sw : 0;
    *hi = b < 0 ? 0 : b / g->sw + 1;
    if (*lo > g->OW) *lo = g->OW;
    if (*hi > g->OW) *hi = g->OW;
    if (*hi < *lo) *hi = *lo;
}

/* Elements of one column matrix: [ckk * G, OH*OW], none for a direct 1x1. */
static int64_t col_len(const geom *g) { return g->direct ? 0 : g->ckk * g->G * g->ohw; }

/* Whether the column matrix is made and undone row by row from zero-padded
 * planes (conv_t.h, "stride-1 rows"): horizontal stride 1, and the padded
 * planes no larger than the column matrix (a huge pad with a huge dilation
 * would make them so; the general im2col handles that). */
static bool by_rows(const geom *g)
{
    double planes = (double)g->C * (double)(g->H + 2 * g->ph) * (double)(g->W + 2 * g->pw);
    return !g->direct && g->sw == 1 && planes <= (double)col_len(g);
}

/* Elements of the padded planes beside a part's column matrix (none without
 * padding: the rows come from x itself, and gradients add into gx). */
static int64_t pad_len(const geom *g)
{
    if (!by_rows(g) || (g->ph == 0 && g->pw == 0)) return 0;
    return g->C * (g->H + 2 * g->ph) * (g->W + 2 * g->pw);
}

/* A part's scratch: its column matrix, then its padded planes. */
static int64_t part_len(const geom *g) { return col_len(g) + pad_len(g); }

/* What a part of a kernel gets; ran: which parts the filter gradient made
 * (each sets its own; at most 256 threads, nb_plan_set_threads). */
typedef struct conv_job {
    const nb_kctx *k;
    const geom *g;
    int64_t cols;  /* output columns per GEMM call (fwd_gemm_cols) */
    bool ran[256];
} conv_job;

/* The forward GEMM [O/G, ckk] · [ckk, OH*OW] runs on blocks of columns of
 * about GEMM_CALL_MNK multiply-adds each (at least 32 columns): OpenBLAS
 * 0.3.21 took 20 % longer on DeepConvNet's widest small-filter products
 * ([16, 144] · [144, 784], [32, 288] · [288, 256]) in one call than in
 * blocks of 196 and 64 columns (a throwaway timing of every block width). */
enum { GEMM_CALL_MNK = 600000 };
static int64_t fwd_gemm_cols(const geom *g)
{
    int64_t mk = g->O / g->G * g->ckk, c = mk > 0 ? GEMM_CALL_MNK / mk : g->ohw;
    c = c < 32 ? 32 : c;
    return c < g->ohw ? c : g->ohw > 0 ? g->ohw : 1;
}

#define NB_TEMPLATE "conv_t.h"
#include "template.h"

/* ---- shape rules ---- */

/* "2" or "[2, 1]", as the attribute was given. */
static void fmt_hw(const nb_attr *a, char *buf, size_t cap)
{
    if (a->n == 2) snprintf(buf, cap, "[%lld, %lld]", (long long)a->i[0], (long long)a->i[1]);
    else snprintf(buf, cap, "%lld", (long long)a->i[0]);
}

/* Checks a one-integer-or-[h, w] attribute: 1 or 2 entries, each in [lo, 2^30]. */
static nb_status check_hw(nb_shape_ctx *c, int i, int64_t lo)
{
    const nb_attr *a = &c->attr[i];
    const char *name = i == A_STRIDE ? "stride" : i == A_PAD ? "pad" : "dilation";
    if (a->n != 1 && a->n != 2)
        return nb_shape_fail(c, NB_ERR_ARG, "%s must be one integer or [h, w]; got %d entries",
                             name, a->n);
    for (int k = 0; k < a->n; k++)
        if (a->i[k] < lo || a->i[k] > (1 << 30))
            return nb_shape_fail(c, NB_ERR_ARG, "%s %lld must be %s %lld", name,
                                 (long long)a->i[k], a->i[k] < lo ? ">=" : "<=",
                                 a->i[k] < lo ? (long long)lo : 1LL << 30);
    return NB_OK;
}

static nb_status check_attrs(nb_shape_ctx *c)
{
    nb_status st = check_hw(c, A_STRIDE, 1);
    if (!st) st = check_hw(c, A_PAD, 0);
    if (!st) st = check_hw(c, A_DIL, 1);
    int64_t G = c->attr[A_GROUPS].i[0];
    if (!st && (G < 1 || G > INT_MAX))
        return nb_shape_fail(c, NB_ERR_ARG, "groups %lld must be >= 1", (long long)G);
    return st;
}

/* x (input ix) and the filter w (input iw): ranks, constant sizes, channels. */
static nb_status check_operands(nb_shape_ctx *c, int ix, int iw)
{
    const nb_shape *x = &c->in[ix], *w = &c->in[iw];
    if (x->rank != 4)
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs x [N, C, H, W]; %s", nb_shape_desc(c, ix));
    if (w->rank != 4)
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs a filter [O, C, KH, KW]%s; %s",
                             c->attr[A_GROUPS].i[0] > 1 ? " (C = channels / groups)" : "",
                             nb_shape_desc(c, iw));
    for (int i = 1; i < 4; i++)
        if (!nb_sdim_is_const(x->d[i]) || x->d[i].c > INT_MAX)
            return nb_shape_fail(c, NB_ERR_SHAPE, "needs constant channels, height and width; %s",
                                 nb_shape_desc(c, ix));
    for (int i = 0; i < 4; i++)
        if (!nb_sdim_is_const(w->d[i]) || w->d[i].c > INT_MAX)
            return nb_shape_fail(c, NB_ERR_SHAPE, "needs a constant filter shape; %s",
                                 nb_shape_desc(c, iw));
    int64_t G = c->attr[A_GROUPS].i[0], C = x->d[1].c, O = w->d[0].c;
    if (C % G || O % G)
        return nb_shape_fail(c, NB_ERR_SHAPE,
                             "with groups %lld needs channels and filters divisible by %lld; "
                             "%s, %s",
                             (long long)G, (long long)G, nb_shape_desc(c, ix), nb_shape_desc(c, iw));
    if (C / G != w->d[1].c) {
        if (G == 1)
            return nb_shape_fail(c, NB_ERR_SHAPE,
                                 "channel mismatch: %s, %s (dim 1 of both must agree: %lld vs %lld)",
                                 nb_shape_desc(c, ix), nb_shape_desc(c, iw), (long long)C,
                                 (long long)w->d[1].c);
        return nb_shape_fail(c, NB_ERR_SHAPE,
                             "channel mismatch: %s, %s (with groups %lld, dim 1 of the filter "
                             "must be C/groups = %lld, got %lld)",
                             nb_shape_desc(c, ix), nb_shape_desc(c, iw), (long long)G,
                             (long long)(C / G), (long long)w->d[1].c);
    }
    return NB_OK;
}

/* Checks x (input ix), the filter w (input iw) and the attributes; the
 * convolution's output shape goes to *out. */
static nb_status conv_out_shape(nb_shape_ctx *c, int ix, int iw, nb_shape *out)
{
    nb_status st = check_attrs(c);
    if (!st) st = check_operands(c, ix, iw);
    if (st) return st;
    const nb_shape *x = &c->in[ix], *w = &c->in[iw];
    const nb_attr *a = c->attr;
    int64_t OH = out_size(x->d[2].c, w->d[2].c, hw(&a[A_STRIDE], 0), hw(&a[A_PAD], 0),
                          hw(&a[A_DIL], 0));
    int64_t OW = out_size(x->d[3].c, w->d[3].c, hw(&a[A_STRIDE], 1), hw(&a[A_PAD], 1),
                          hw(&a[A_DIL], 1));
    if (OH < 1 || OW < 1) {
        char pad[48], dil[48];
        fmt_hw(&a[A_PAD], pad, sizeof pad);
        fmt_hw(&a[A_DIL], dil, sizeof dil);
        return nb_shape_fail(c, NB_ERR_SHAPE,
                             "output would be smaller than 1x1: %s padded by %s is smaller "
                             "than the kernel of %s (dilation %s)",
                             nb_shape_desc(c, ix), pad, nb_shape_desc(c, iw), dil);
    }
    /* in double: each size may be up to INT_MAX, their products overflow int64 */
    double G = (double)a[A_GROUPS].i[0], O = (double)w->d[0].c;
    double ckk = (double)w->d[1].c * (double)w->d[2].c * (double)w->d[3].c;
    double ohw = (double)OH * (double)OW;
    if (ckk * G * ohw > INT_MAX || O * ohw > INT_MAX || O * ckk > INT_MAX)
        return nb_shape_fail(c, NB_ERR_SHAPE, "is too large for BLAS: %s, %s",
                             nb_shape_desc(c, ix), nb_shape_desc(c, iw));
    *out = (nb_shape){.rank = 4};
    out->d[0] = x->d[0];
    out->d[1] = nb_sdim_const(O);
    out->d[2] = nb_sdim_const(OH);
    out->d[3] = nb_sdim_const(OW);
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

/* A column matrix and padded planes per thread; the filter gradient adds a
 * partial sum of the filter's size per thread after the first. */
static size_t col_bytes(const nb_kctx *k, geom g)
{
    return (size_t)(part_len(&g) * nb_kernel_parts(k)) * nb_dtype_size(k->dtype);
}
static double gemm_flops(geom g)
{
    return 2.0 * (double)g.N * (double)g.O * (double)g.ohw * (double)g.ckk;
}

static size_t conv_work(const nb_kctx *k) { return col_bytes(k, fwd_geom(k)); }
static size_t bwd_input_work(const nb_kctx *k) { return col_bytes(k, bwd_input_geom(k)); }
static size_t bwd_filter_work(const nb_kctx *k)
{
    geom g = bwd_filter_geom(k);
    size_t partials = (size_t)((nb_kernel_parts(k) - 1) * g.O * g.ckk) * nb_dtype_size(k->dtype);
    return col_bytes(k, g) + partials;
}

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
    nb_attr at[4] = {*nb__attr(like, A_STRIDE), *nb__attr(like, A_PAD), *nb__attr(like, A_DIL),
                     *nb__attr(like, A_GROUPS)};
    return nb_apply(g, op, NULL, (nb_node *[]){a, b, c}, c ? 3 : 2, at, 4);
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
#define HW(nm, h, w) {.name = (nm), .type = NB_ATTR_INTS, .n = 2, .i = {(h), (w)}}
#define GROUPS(gr) NB_AINT("groups", gr)
#define DIL(d) NB_AINT("dilation", d)
static const nb_op_case conv_cases[] = {
    {.in = {"2,3,5,5", "4,3,3,3"}, SP(1, 0)},
    {.in = {"2,3,5,5", "4,3,3,3", "4"}, SP(1, 1)},
    {.in = {"2,3,5,5", "4,3,3,3", "4"}, SP(2, 0)},
    {.in = {"2,3,6,6", "4,3,3,3"}, SP(2, 1)},
    {.in = {"1,2,4,6", "3,2,2,3", "3"}, SP(2, 1)},  /* H != W, KH != KW, floor */
    {.in = {"2,3,4,5", "2,3,1,1", "2"}, SP(1, 0)},  /* 1x1: no column matrix */
    {.in = {"1,3,5,4", "2,3,1,1"}, SP(2, 1)},
    {.in = {"2,2,3,3", "3,2,3,3", "3"}, SP(1, 0)},  /* kernel covers the input */
    {.in = {"2,4,5,5", "6,2,3,3", "6"}, .attrs = {NB_AINT("pad", 1), GROUPS(2)}, .n_attrs = 2},
    {.in = {"1,3,5,5", "3,1,3,3"}, .attrs = {NB_AINT("stride", 2), GROUPS(3)}, .n_attrs = 2},
    {.in = {"1,2,4,4", "4,1,2,2", "4"}, .attrs = {GROUPS(2)}, .n_attrs = 1},  /* depth x2 */
    {.in = {"2,4,3,3", "4,2,1,1"}, .attrs = {GROUPS(2)}, .n_attrs = 1},  /* 1x1 grouped */
    {.in = {"1,2,7,7", "3,2,3,3", "3"}, .attrs = {NB_AINT("pad", 2), DIL(2)}, .n_attrs = 2},
    {.in = {"1,2,6,7", "3,2,3,2", "3"},
     .attrs = {HW("stride", 2, 1), HW("pad", 1, 0), HW("dilation", 1, 2)}, .n_attrs = 3},
    {.in = {"2,4,5,6", "2,2,2,3"},
     .attrs = {HW("stride", 1, 2), HW("pad", 0, 1), DIL(2), GROUPS(2)}, .n_attrs = 4},
};
static const nb_op_case bwd_input_cases[] = {
    {.in = {"2,4,3,3", "4,3,3,3", "2,3,5,5"}, SP(1, 0)},
    {.in = {"2,4,3,3", "4,3,3,3", "2,3,6,6"}, SP(2, 1)},
    {.in = {"1,2,3,3", "2,3,1,1", "1,3,3,3"}, SP(1, 0)},
    {.in = {"2,6,5,5", "6,2,3,3", "2,4,5,5"}, .attrs = {NB_AINT("pad", 1), GROUPS(2)}, .n_attrs = 2},
    {.in = {"1,3,2,2", "3,1,3,3", "1,3,5,5"}, .attrs = {NB_AINT("stride", 2), GROUPS(3)}, .n_attrs = 2},
    {.in = {"1,3,3,5", "3,2,3,2", "1,2,6,7"},
     .attrs = {HW("stride", 2, 1), HW("pad", 1, 0), HW("dilation", 1, 2)}, .n_attrs = 3},
};
static const nb_op_case bwd_filter_cases[] = {
    {.in = {"2,4,3,3", "2,3,5,5", "4,3,3,3"}, SP(1, 0)},
    {.in = {"2,4,3,3", "2,3,6,6", "4,3,3,3"}, SP(2, 1)},
    {.in = {"1,2,3,3", "1,3,3,3", "2,3,1,1"}, SP(1, 0)},
    {.in = {"2,6,5,5", "2,4,5,5", "6,2,3,3"}, .attrs = {NB_AINT("pad", 1), GROUPS(2)}, .n_attrs = 2},
    {.in = {"1,3,2,2", "1,3,5,5", "3,1,3,3"}, .attrs = {NB_AINT("stride", 2), GROUPS(3)}, .n_attrs = 2},
    {.in = {"1,3,7,7", "1,2,7,7", "3,2,3,3"}, .attrs = {NB_AINT("pad", 2), DIL(2)}, .n_attrs = 2},
    {.in = {"1,3,3,5", "1,2,6,7", "3,2,3,2"},
     .attrs = {HW("stride", 2, 1), HW("pad", 1, 0), HW("dilation", 1, 2)}, .n_attrs = 3},
};

const nb_op_def nb_op_conv2d = {
    .name = "conv2d", .min_in = 2, .max_in = 3, .attrs = conv_attrs, .n_attrs = 4,
    .shape = conv_shape, .forward = conv_forward, .backward = conv_bwd, .flops = conv_flops,
    .workspace = conv_work, .cases = conv_cases, .n_cases = NB_NELEMS(conv_cases),
    .doc = "2-D cross-correlation of x [N, C, H, W] with w [O, C/groups, KH, KW], plus b [O]; "
           "stride, pad, dilation: one integer or [h, w]"};
const nb_op_def nb_op_conv2d_backward_input = {
    .name = "conv2d_backward_input", .min_in = 3, .max_in = 3, .attrs = conv_attrs, .n_attrs = 4,
    .flags = NB_OP_INTERNAL, .shape_only = 4, .no_grad = 4, .shape = bwd_input_shape,
    .forward = bwd_input_forward, .backward = bwd_input_bwd, .flops = bwd_input_flops,
    .workspace = bwd_input_work, .cases = bwd_input_cases, .n_cases = NB_NELEMS(bwd_input_cases),
    .doc = "gradient of conv2d for x, from (gy, w, x)"};
const nb_op_def nb_op_conv2d_backward_filter = {
    .name = "conv2d_backward_filter", .min_in = 3, .max_in = 3, .attrs = conv_attrs, .n_attrs = 4,
    .flags = NB_OP_INTERNAL, .shape_only = 4, .no_grad = 4, .shape = bwd_filter_shape,
    .forward = bwd_filter_forward, .backward = bwd_filter_bwd, .flops = bwd_filter_flops,
    .workspace = bwd_filter_work, .cases = bwd_filter_cases,
    .n_cases = NB_NELEMS(bwd_filter_cases), .doc = "gradient of conv2d for w, from (gy, x, w)"};

nb_node *nb_conv2d(nb_graph *g, nb_node *x, nb_node *w, nb_node *b, int64_t stride, int64_t pad)
{
    nb_attr at[2] = {NB_AINT("stride", stride), NB_AINT("pad", pad)};
    return nb_apply(g, &nb_op_conv2d, NULL, (nb_node *[]){x, w, b}, b ? 3 : 2, at, 2);
}

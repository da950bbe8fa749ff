/* 2-D pooling over x [N, C, H, W] with square windows:
 *   max_pool2d(x), avg_pool2d(x)       [N, C, (H + 2 pad - size) / stride + 1, ...]
 *   max_pool2d_backward(gy, x)         each window's gradient to its first maximum
 *                                      (row-major, as PyTorch), recomputed from x
 *   avg_pool2d_backward(gy, x)         gy / size^2 spread over each window (x: shape only)
 * max ignores the padding (a padded cell never wins); avg counts padded zeros,
 * always dividing by size*size. stride 0 (the default) means stride = size.
 * As in PyTorch, pad is at most size / 2, so every window holds a real cell. */
#include <stdint.h>
#include <string.h>

#include "kernel.h"

enum { A_SIZE, A_STRIDE, A_PAD };
static const nb_attr_def pool_attrs[] = {
    {"size", NB_ATTR_INT, true, {0}},
    {"stride", NB_ATTR_INT, false, {.n = 1, .i = {0}}},
    {"pad", NB_ATTR_INT, false, {.n = 1, .i = {0}}},
};

typedef struct pgeom {
    int64_t planes, H, W, OH, OW, k, s, p;  /* planes = N * C */
} pgeom;

static int64_t stride_of(const nb_attr *a)
{
    return a[A_STRIDE].i[0] ? a[A_STRIDE].i[0] : a[A_SIZE].i[0];
}

/* From the bound shape of x [N, C, H, W]. */
static pgeom pgeom_of(const nb_dims *x, const nb_attr *a)
{
    pgeom g = {.planes = x->d[0] * x->d[1], .H = x->d[2], .W = x->d[3], .k = a[A_SIZE].i[0],
               .s = stride_of(a), .p = a[A_PAD].i[0]};
    g.OH = (g.H + 2 * g.p - g.k) / g.s + 1;
    g.OW = (g.W + 2 * g.p - g.k) / g.s + 1;
    return g;
}

/* Input rows (or columns) [*a, *b) of window o along an axis of size n. */
static inline void window(int64_t o, const pgeom *g, int64_t n, int64_t *a, int64_t *b)
{
    int64_t start = o * g->s - g->p, end = start + g->k;
    *a = start < 0 ? 0 : start;
    *b = end > n ? n : end;
}

/* Runs CALL with K the window size k, a constant for the common sizes so
 * that the loops over a window unroll. */
#define WITH_SIZE(k, CALL)                                   \
    do {                                                     \
        if ((k) == 2) {                                      \
            const int64_t K = 2;                             \
            CALL;                                            \
        } else if ((k) == 3) {                               \
            const int64_t K = 3;                             \
            CALL;                                            \
        } else {                                             \
            const int64_t K = (k);                           \
            CALL;                                            \
        }                                                    \
    } while (0)

#define NB_TEMPLATE "pool_t.h"
#include "template.h"

/* ---- shape rules ---- */

/* Checks x (input ix) and the attributes; the pooled shape goes to *out. */
static nb_status pool_out_shape(nb_shape_ctx *c, int ix, nb_shape *out)
{
    const nb_shape *x = &c->in[ix];
    int64_t k = c->attr[A_SIZE].i[0], s = c->attr[A_STRIDE].i[0], p = c->attr[A_PAD].i[0];
    if (x->rank != 4)
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs x [N, C, H, W]; %s", nb_shape_desc(c, ix));
    if (!nb_sdim_is_const(x->d[2]) || !nb_sdim_is_const(x->d[3]))
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs a constant height and width; %s",
                             nb_shape_desc(c, ix));
    if (k < 1) return nb_shape_fail(c, NB_ERR_ARG, "size %lld must be >= 1", (long long)k);
    if (s < 0)
        return nb_shape_fail(c, NB_ERR_ARG, "stride %lld must be >= 1 (or 0: the size)",
                             (long long)s);
    if (p < 0 || p > k / 2)
        return nb_shape_fail(c, NB_ERR_ARG, "pad %lld must be between 0 and size/2 = %lld",
                             (long long)p, (long long)(k / 2));
    if (!s) s = k;
    int64_t eh = x->d[2].c + 2 * p - k, ew = x->d[3].c + 2 * p - k;
    if (eh < 0 || ew < 0)
        return nb_shape_fail(c, NB_ERR_SHAPE,
                             "output would be smaller than 1x1: %s padded by %lld is smaller "
                             "than the %lldx%lld window",
                             nb_shape_desc(c, ix), (long long)p, (long long)k, (long long)k);
    if (x->d[2].c * x->d[3].c > INT32_MAX)
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs planes of at most 2^31 cells; %s",
                             nb_shape_desc(c, ix));
    *out = *x;
    out->d[2] = nb_sdim_const(eh / s + 1);
    out->d[3] = nb_sdim_const(ew / s + 1);
    return NB_OK;
}

static nb_status pool_shape(nb_shape_ctx *c)
{
    nb_status st = nb_shape_float_inputs(c);
    return st ? st : pool_out_shape(c, 0, &c->out);
}

/* (gy, x): gy must have the pooled shape of x; the output has x's. */
static nb_status pool_grad_shape(nb_shape_ctx *c)
{
    nb_shape y;
    nb_status st = nb_shape_float_inputs(c);
    if (!st) st = pool_out_shape(c, 1, &y);
    if (!st) st = nb_shape_expect(c, 0, &y, "a gradient of the pooled shape");
    if (st) return st;
    c->out = c->in[1];
    return NB_OK;
}

/* ---- kernels ---- */

/* The row pass of one plane and one output row: values ((H + 1) * OW of T),
 * a padded row (W + 2 pad of T) and indices ((H + 1) * OW int32). */
static size_t pool_work(const nb_kctx *k, const nb_dims *x)
{
    pgeom g = pgeom_of(x, k->attr);
    size_t n = (size_t)((g.H + 1) * g.OW);
    return (n + (size_t)(g.W + 2 * g.p)) * nb_dtype_size(k->dtype) + n * sizeof(int32_t);
}
static size_t pool_fwd_work(const nb_kctx *k) { return pool_work(k, &k->in_shape[0]); }
static size_t pool_bwd_work(const nb_kctx *k) { return pool_work(k, &k->out_shape); }

static nb_status max_pool_forward(const nb_kctx *k)
{
    pgeom g = pgeom_of(&k->in_shape[0], k->attr);
    if (k->dtype == NB_F64) max_pool_fwd_f64(k->in[0], &g, k->work, k->out);
    else max_pool_fwd_f32(k->in[0], &g, k->work, k->out);
    return NB_OK;
}

static nb_status avg_pool_forward(const nb_kctx *k)
{
    pgeom g = pgeom_of(&k->in_shape[0], k->attr);
    if (k->dtype == NB_F64) avg_pool_fwd_f64(k->in[0], &g, k->work, k->out);
    else avg_pool_fwd_f32(k->in[0], &g, k->work, k->out);
    return NB_OK;
}

static nb_status max_pool_backward_forward(const nb_kctx *k)
{
    pgeom g = pgeom_of(&k->out_shape, k->attr);
    if (k->dtype == NB_F64) max_pool_bwd_f64(k->in[0], k->in[1], &g, k->work, k->out);
    else max_pool_bwd_f32(k->in[0], k->in[1], &g, k->work, k->out);
    return NB_OK;
}

static nb_status avg_pool_backward_forward(const nb_kctx *k)
{
    pgeom g = pgeom_of(&k->out_shape, k->attr);
    if (k->dtype == NB_F64) avg_pool_bwd_f64(k->in[0], &g, k->work, k->out);
    else avg_pool_bwd_f32(k->in[0], &g, k->work, k->out);
    return NB_OK;
}

/* size^2 per pooled element: the pooled shape is the output, or gy for gradients */
static double window_flops(const nb_kctx *k, const nb_dims *pooled)
{
    double kk = (double)k->attr[A_SIZE].i[0];
    return (double)nb_dims_numel(pooled) * kk * kk;
}
static double pool_flops(const nb_kctx *k) { return window_flops(k, &k->out_shape); }
static double pool_grad_flops(const nb_kctx *k) { return window_flops(k, &k->in_shape[0]); }

/* ---- gradient rules ---- */

static nb_node *pool_op(nb_graph *g, const nb_op_def *op, const nb_node *like, nb_node *const *in,
                        int n)
{
    nb_attr at[3] = {*nb__attr(like, A_SIZE), *nb__attr(like, A_STRIDE), *nb__attr(like, A_PAD)};
    return nb_apply(g, op, NULL, in, n, at, 3);
}

static nb_status max_pool_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = pool_op(g, &nb_op_max_pool2d_backward, y, (nb_node *[]){gy, nb_node_input(y, 0)}, 2);
    return NB_OK;
}

static nb_status avg_pool_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = pool_op(g, &nb_op_avg_pool2d_backward, y, (nb_node *[]){gy, nb_node_input(y, 0)}, 2);
    return NB_OK;
}

/* avg_pool2d_backward is the transpose of the (linear) average pool: its own
 * gradient is the average pool again. */
static nb_status avg_pool_backward_bwd(nb_graph *g, nb_node *y, nb_node *G, uint64_t needs,
                                       nb_node **gx)
{
    (void)needs;
    gx[0] = pool_op(g, &nb_op_avg_pool2d, y, &G, 1);
    return NB_OK;
}

/* ---- definitions ---- */

#define POOL(k, s, p) \
    .attrs = {NB_AINT("size", k), NB_AINT("stride", s), NB_AINT("pad", p)}, .n_attrs = 3
static const nb_op_case pool_cases[] = {
    {.in = {"2,3,4,4"}, .attrs = {NB_AINT("size", 2)}, .n_attrs = 1},  /* stride = size */
    {.in = {"2,2,5,5"}, POOL(3, 1, 1)},                                 /* overlapping, padded */
    {.in = {"1,2,5,6"}, POOL(3, 2, 0)},                                 /* H != W, floor */
    {.in = {"2,1,4,5"}, POOL(2, 1, 0)},
    {.in = {"2,2,5,4"}, POOL(2, 2, 1)},
    {.in = {"1,1,3,3"}, POOL(3, 3, 0)},                                 /* one window */
    {.in = {"1,2,6,7"}, POOL(4, 2, 2)},                                 /* size not unrolled */
};
static const nb_op_case avg_grad_cases[] = {
    {.in = {"2,3,2,2", "2,3,4,4"}, .attrs = {NB_AINT("size", 2)}, .n_attrs = 1},
    {.in = {"2,2,5,5", "2,2,5,5"}, POOL(3, 1, 1)},
    {.in = {"1,2,2,2", "1,2,5,6"}, POOL(3, 2, 0)},
};

const nb_op_def nb_op_max_pool2d = {
    .name = "max_pool2d", .min_in = 1, .max_in = 1, .attrs = pool_attrs, .n_attrs = 3,
    .shape = pool_shape, .forward = max_pool_forward, .backward = max_pool_bwd,
    .flops = pool_flops, .workspace = pool_fwd_work, .cases = pool_cases,
    .n_cases = NB_NELEMS(pool_cases),
    .doc = "maximum over size x size windows of x [N, C, H, W] (padding never wins)"};
const nb_op_def nb_op_avg_pool2d = {
    .name = "avg_pool2d", .min_in = 1, .max_in = 1, .attrs = pool_attrs, .n_attrs = 3,
    .shape = pool_shape, .forward = avg_pool_forward, .backward = avg_pool_bwd,
    .flops = pool_flops, .workspace = pool_fwd_work, .cases = pool_cases,
    .n_cases = NB_NELEMS(pool_cases),
    .doc = "mean over size x size windows of x [N, C, H, W] (padded zeros count)"};
const nb_op_def nb_op_max_pool2d_backward = {
    .name = "max_pool2d_backward", .min_in = 2, .max_in = 2, .attrs = pool_attrs, .n_attrs = 3,
    .flags = NB_OP_INTERNAL, .no_grad = 2, .shape = pool_grad_shape,
    .forward = max_pool_backward_forward, .flops = pool_grad_flops,
    .workspace = pool_bwd_work,
    .doc = "gradient of max_pool2d: each window's gy to its first maximum in x"};
const nb_op_def nb_op_avg_pool2d_backward = {
    .name = "avg_pool2d_backward", .min_in = 2, .max_in = 2, .attrs = pool_attrs, .n_attrs = 3,
    .flags = NB_OP_INTERNAL, .shape_only = 2, .no_grad = 2, .shape = pool_grad_shape,
    .forward = avg_pool_backward_forward, .backward = avg_pool_backward_bwd,
    .flops = pool_grad_flops, .workspace = pool_bwd_work, .cases = avg_grad_cases,
    .n_cases = NB_NELEMS(avg_grad_cases),
    .doc = "gradient of avg_pool2d: gy / size^2 spread over each window"};

static nb_node *pool(nb_graph *g, const nb_op_def *op, nb_node *x, int64_t size, int64_t stride,
                     int64_t pad)
{
    nb_attr at[3] = {NB_AINT("size", size), NB_AINT("stride", stride), NB_AINT("pad", pad)};
    return nb_apply(g, op, NULL, (nb_node *[]){x}, 1, at, 3);
}

nb_node *nb_max_pool2d(nb_graph *g, nb_node *x, int64_t size, int64_t stride, int64_t pad)
{
    return pool(g, &nb_op_max_pool2d, x, size, stride, pad);
}
nb_node *nb_avg_pool2d(nb_graph *g, nb_node *x, int64_t size, int64_t stride, int64_t pad)
{
    return pool(g, &nb_op_avg_pool2d, x, size, stride, pad);
}

/* 2-D pooling over x [N, C, H, W] with kh x kw windows:
 *   max_pool2d(x), avg_pool2d(x)       [N, C, (H + 2 padh - kh) / strideh + 1, ...]
 *   max_pool2d_backward(gy, x)         each window's gradient to its maximum
 *                                      (PyTorch's choice, below), recomputed from x
 *   max_pool2d_gather(G, x)            G at each window's maximum: the gradient of
 *                                      max_pool2d_backward for gy (second order)
 *   avg_pool2d_backward(gy, x)         gy / (kh kw) spread over each window (x: shape only)
 *   global_avg_pool2d(x)               [N, C, 1, 1]: the mean of each plane
 * size, stride and pad are one integer or [h, w]. max ignores the padding (a
 * padded cell never wins); a NaN in a window is its maximum. avg counts padded
 * zeros, dividing by kh*kw, unless count_include_pad is false: then it divides
 * by the number of real cells in the window (the default true is what nabla
 * always did and PyTorch's default; ONNX's AveragePool defaults to false).
 * stride 0 (the default) means stride = size.
 * As in PyTorch, pad is at most size / 2, so every window holds a real cell.
 * x gets no gradient through max_pool2d_backward or the gather (they are
 * piecewise constant in x), as in PyTorch. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kernel.h"

enum { A_SIZE, A_STRIDE, A_PAD, A_COUNT_PAD };
#define POOL_ATTRS                                          \
    {"size", NB_ATTR_INTS, true, {0}},                      \
    {"stride", NB_ATTR_INTS, false, {.n = 1, .i = {0}}},    \
    {"pad", NB_ATTR_INTS, false, {.n = 1, .i = {0}}}
static const nb_attr_def pool_attrs[] = {POOL_ATTRS};
/* avg_pool2d and its gradient add count_include_pad */
static const nb_attr_def avg_attrs[] = {
    POOL_ATTRS, {"count_include_pad", NB_ATTR_BOOL, false, {.n = 1, .i = {1}}}};

/* Entry `axis` (0: height, 1: width) of a one-integer-or-[h, w] attribute. */
static int64_t hw(const nb_attr *a, int axis) { return a->n == 2 ? a->i[axis] : a->i[0]; }

typedef struct pgeom {
    int64_t planes, H, W, OH, OW, kh, kw, sh, sw, ph, pw;  /* planes = N * C */
    bool real_only;  /* avg divides by the real cells of a window (count_include_pad false) */
} pgeom;

/* stride along an axis: 0 means the window's size */
static int64_t stride_of(const nb_attr *a, int axis)
{
    int64_t s = hw(&a[A_STRIDE], axis);
    return s ? s : hw(&a[A_SIZE], axis);
}

/* From the bound shape of x [N, C, H, W]. */
static pgeom pgeom_of(const nb_dims *x, const nb_attr *a)
{
    pgeom g = {.planes = x->d[0] * x->d[1], .H = x->d[2], .W = x->d[3],
               .kh = hw(&a[A_SIZE], 0), .kw = hw(&a[A_SIZE], 1), .sh = stride_of(a, 0),
               .sw = stride_of(a, 1), .ph = hw(&a[A_PAD], 0), .pw = hw(&a[A_PAD], 1)};
    g.OH = (g.H + 2 * g.ph - g.kh) / g.sh + 1;
    g.OW = (g.W + 2 * g.pw - g.kw) / g.sw + 1;
    return g;
}

/* Input rows [*a, *b) of the window of output row o. */
static inline void window(int64_t o, const pgeom *g, int64_t *a, int64_t *b)
{
    int64_t start = o * g->sh - g->ph, end = start + g->kh;
    *a = start < 0 ? 0 : start;
    *b = end > g->H ? g->H : end;
}

/* Runs CALL with K the window width k, a constant for the common sizes so
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

/* 2x2 windows at stride 2, unpadded: pool_t.h's one-pass kernels */
static bool is_2x2(const pgeom *g)
{
    return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && !g->ph && !g->pw;
}

#define NB_TEMPLATE "pool_t.h"
#include "template.h"

/* ---- shape rules ---- */

/* "2" or "[2, 1]", as the attribute was given. */
static void fmt_hw(const nb_attr *a, char *buf, size_t cap)
{
    if (a->n == 2) snprintf(buf, cap, "[%lld, %lld]", (long long)a->i[0], (long long)a->i[1]);
    else snprintf(buf, cap, "%lld", (long long)a->i[0]);
}

/* size, stride, pad: one integer or [h, w], each entry in range. */
static nb_status check_attrs(nb_shape_ctx *c)
{
    static const char *const names[] = {"size", "stride", "pad"};
    for (int i = 0; i < 3; i++)
        if (c->attr[i].n != 1 && c->attr[i].n != 2)
            return nb_shape_fail(c, NB_ERR_ARG, "%s must be one integer or [h, w]; got %d entries",
                                 names[i], c->attr[i].n);
    for (int ax = 0; ax < 2; ax++) {
        int64_t k = hw(&c->attr[A_SIZE], ax), s = hw(&c->attr[A_STRIDE], ax);
        int64_t p = hw(&c->attr[A_PAD], ax);
        if (k < 1 || k > INT32_MAX)
            return nb_shape_fail(c, NB_ERR_ARG, "size %lld must be %s", (long long)k,
                                 k < 1 ? ">= 1" : "< 2^31");
        if (s < 0 || s > INT32_MAX)
            return nb_shape_fail(c, NB_ERR_ARG, "stride %lld must be %s", (long long)s,
                                 s < 0 ? ">= 1 (or 0: the size)" : "< 2^31");
        if (p < 0 || p > k / 2)
            return nb_shape_fail(c, NB_ERR_ARG, "pad %lld must be between 0 and size/2 = %lld",
                                 (long long)p, (long long)(k / 2));
    }
    return NB_OK;
}

/* Checks x (input ix) and the attributes; the pooled shape goes to *out. */
static nb_status pool_out_shape(nb_shape_ctx *c, int ix, nb_shape *out)
{
    const nb_shape *x = &c->in[ix];
    if (x->rank != 4)
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs x [N, C, H, W]; %s", nb_shape_desc(c, ix));
    if (!nb_sdim_is_const(x->d[2]) || !nb_sdim_is_const(x->d[3]))
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs a constant height and width; %s",
                             nb_shape_desc(c, ix));
    nb_status st = check_attrs(c);
    if (st) return st;
    if (x->d[2].c > INT32_MAX || x->d[3].c > INT32_MAX || x->d[2].c * x->d[3].c > INT32_MAX)
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs planes of at most 2^31 cells; %s",
                             nb_shape_desc(c, ix));
    int64_t e[2], o[2];
    for (int ax = 0; ax < 2; ax++) {
        int64_t k = hw(&c->attr[A_SIZE], ax), s = stride_of(c->attr, ax);
        e[ax] = x->d[2 + ax].c + 2 * hw(&c->attr[A_PAD], ax) - k;
        o[ax] = e[ax] < 0 ? 0 : e[ax] / s + 1;
    }
    if (o[0] < 1 || o[1] < 1) {
        char pad[48], size[48];
        fmt_hw(&c->attr[A_PAD], pad, sizeof pad);
        fmt_hw(&c->attr[A_SIZE], size, sizeof size);
        return nb_shape_fail(c, NB_ERR_SHAPE,
                             "output would be smaller than 1x1: %s padded by %s is smaller "
                             "than the %lldx%lld window (size %s)",
                             nb_shape_desc(c, ix), pad, (long long)hw(&c->attr[A_SIZE], 0),
                             (long long)hw(&c->attr[A_SIZE], 1), size);
    }
    *out = *x;
    out->d[2] = nb_sdim_const(o[0]);
    out->d[3] = nb_sdim_const(o[1]);
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

/* (G, x): G must have x's shape; the output has the pooled shape. */
static nb_status gather_shape(nb_shape_ctx *c)
{
    nb_status st = nb_shape_float_inputs(c);
    if (!st) st = pool_out_shape(c, 1, &c->out);
    if (!st) st = nb_shape_expect(c, 0, &c->in[1], "a tensor of x's shape");
    return st;
}

/* ---- kernels ---- */

/* The row pass of one plane and one output row: values ((H + 1) * OW of T),
 * a padded row (W + 2 pw of T) and indices ((H + 1) * OW int32), per part
 * (thread), each rounded up to 64 bytes. */
static size_t part_work(const nb_kctx *k, const pgeom *g)
{
    size_t n = (size_t)((g->H + 1) * g->OW);
    size_t b = (n + (size_t)(g->W + 2 * g->pw)) * nb_dtype_size(k->dtype) + n * sizeof(int32_t);
    return (b + 63) / 64 * 64;
}
static size_t pool_work(const nb_kctx *k, const nb_dims *x)
{
    pgeom g = pgeom_of(x, k->attr);
    return part_work(k, &g) * (size_t)nb_kernel_parts(k);
}
static size_t pool_fwd_work(const nb_kctx *k) { return pool_work(k, &k->in_shape[0]); }
static size_t pool_bwd_work(const nb_kctx *k) { return pool_work(k, &k->out_shape); }
static size_t gather_work(const nb_kctx *k) { return pool_work(k, &k->in_shape[1]); }

/* The kernels split the planes (N * C) over the plan's threads: part p
 * pools planes [lo, hi) with workspace slice p. */
enum { MAX_FWD, AVG_FWD, MAX_ROUTE, MAX_GATHER, AVG_BWD };
typedef struct pool_job {
    const nb_kctx *k;
    pgeom g;      /* of x */
    int kind;
} pool_job;

/* Each kernel for one dtype, on g->planes planes from the given pointers. */
#define POOL_KERNELS(T, S)                                                                    \
    static void pool_kernel_##S(int kind, const pgeom *g, void *work, const void *in0,        \
                                const void *x, void *out)                                     \
    {                                                                                         \
        if (kind == MAX_FWD) max_pool_fwd_##S(in0, g, work, out);                             \
        else if (kind == AVG_FWD) avg_pool_fwd_##S(in0, g, work, out);                        \
        else if (kind == AVG_BWD) avg_pool_bwd_##S(in0, g, work, out);                        \
        else max_pool_route_##S(in0, x, g, work, out, kind == MAX_GATHER);                    \
    }
POOL_KERNELS(float, f32)
POOL_KERNELS(double, f64)

static void pool_part(void *arg, int64_t lo, int64_t hi, int part)
{
    const pool_job *j = arg;
    const nb_kctx *k = j->k;
    pgeom g = j->g;
    g.planes = hi - lo;
    size_t es = nb_dtype_size(k->dtype);
    size_t xs = (size_t)(g.H * g.W) * es * (size_t)lo, ys = (size_t)(g.OH * g.OW) * es * (size_t)lo;
    bool pooled_in = j->kind == AVG_BWD || j->kind == MAX_ROUTE;  /* input 0: gy, pooled */
    bool pooled_out = j->kind == MAX_FWD || j->kind == AVG_FWD || j->kind == MAX_GATHER;
    const char *in0 = (const char *)k->in[0] + (pooled_in ? ys : xs);
    const char *x = k->n_in > 1 ? (const char *)k->in[1] + xs : NULL;
    char *out = (char *)k->out + (pooled_out ? ys : xs);
    void *work = (char *)k->work + part_work(k, &g) * (size_t)part;
    (k->dtype == NB_F64 ? pool_kernel_f64 : pool_kernel_f32)(j->kind, &g, work, in0, x, out);
}

/* Runs kind over the planes of x (shape xd) split over the plan's threads. */
static nb_status pool_run(const nb_kctx *k, const nb_dims *xd, int kind)
{
    pool_job j = {k, pgeom_of(xd, k->attr), kind};
    if (kind == AVG_FWD || kind == AVG_BWD) j.g.real_only = !k->attr[A_COUNT_PAD].i[0];
    nb_kernel_parallel(k, j.g.planes, 1, pool_part, &j);
    return NB_OK;
}

static nb_status max_pool_forward(const nb_kctx *k) { return pool_run(k, &k->in_shape[0], MAX_FWD); }
static nb_status avg_pool_forward(const nb_kctx *k) { return pool_run(k, &k->in_shape[0], AVG_FWD); }
/* max_pool2d_backward and max_pool2d_gather: input 1 is x */
static nb_status max_pool_backward_forward(const nb_kctx *k)
{
    return pool_run(k, &k->in_shape[1], MAX_ROUTE);
}
static nb_status gather_forward(const nb_kctx *k) { return pool_run(k, &k->in_shape[1], MAX_GATHER); }
static nb_status avg_pool_backward_forward(const nb_kctx *k)
{
    return pool_run(k, &k->out_shape, AVG_BWD);
}

/* kh*kw per pooled element: the pooled shape is the output, or gy for gradients */
static double window_flops(const nb_kctx *k, const nb_dims *pooled)
{
    double kk = (double)hw(&k->attr[A_SIZE], 0) * (double)hw(&k->attr[A_SIZE], 1);
    return (double)nb_dims_numel(pooled) * kk;
}
static double pool_flops(const nb_kctx *k) { return window_flops(k, &k->out_shape); }
static double pool_grad_flops(const nb_kctx *k) { return window_flops(k, &k->in_shape[0]); }

/* ---- gradient rules ---- */

/* op on in with like's attributes (the avg ops' four, the max ops' three) */
static nb_node *pool_op(nb_graph *g, const nb_op_def *op, const nb_node *like, nb_node *const *in,
                        int n)
{
    nb_attr at[4];
    int n_at = nb_node_opdef(like)->n_attrs;
    for (int i = 0; i < n_at; i++) at[i] = *nb__attr(like, i);
    return nb_apply(g, op, NULL, in, n, at, n_at);
}

static nb_status max_pool_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = pool_op(g, &nb_op_max_pool2d_backward, y, (nb_node *[]){gy, nb_node_input(y, 0)}, 2);
    return NB_OK;
}

/* max_pool2d_backward is linear in gy: gx = Sᵀ gy, S selecting each window's
 * winner. Its gradient for gy is S G, the gather; and the gather's is Sᵀ again. */
static nb_status max_pool_backward_bwd(nb_graph *g, nb_node *y, nb_node *G, uint64_t needs,
                                       nb_node **gx)
{
    (void)needs;
    gx[0] = pool_op(g, &nb_op_max_pool2d_gather, y, (nb_node *[]){G, nb_node_input(y, 1)}, 2);
    return NB_OK;
}

static nb_status gather_bwd(nb_graph *g, nb_node *y, nb_node *G, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = pool_op(g, &nb_op_max_pool2d_backward, y, (nb_node *[]){G, nb_node_input(y, 1)}, 2);
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
#define HW(nm, h, w) {.name = (nm), .type = NB_ATTR_INTS, .n = 2, .i = {(h), (w)}}
/* shared by max_pool2d and avg_pool2d (which adds count_include_pad cases) */
#define POOL_CASES                                                                                \
    {.in = {"2,3,4,4"}, .attrs = {NB_AINT("size", 2)}, .n_attrs = 1},  /* stride = size */        \
    {.in = {"2,2,5,5"}, POOL(3, 1, 1)},  /* overlapping, padded */                                \
    {.in = {"1,2,5,6"}, POOL(3, 2, 0)},  /* H != W, floor */                                      \
    {.in = {"2,1,4,5"}, POOL(2, 1, 0)},                                                           \
    {.in = {"2,2,5,4"}, POOL(2, 2, 1)},                                                           \
    {.in = {"1,1,3,3"}, POOL(3, 3, 0)},  /* one window */                                         \
    {.in = {"1,2,6,7"}, POOL(4, 2, 2)},  /* size not unrolled */                                  \
    {.in = {"2,2,4,5"}, .attrs = {HW("size", 2, 2), HW("stride", 2, 1)}, .n_attrs = 2},           \
    {.in = {"1,2,5,6"}, .attrs = {HW("size", 3, 2), HW("stride", 1, 2), HW("pad", 1, 0)},         \
     .n_attrs = 3},                                                                               \
    {.in = {"2,1,6,5"}, .attrs = {HW("size", 2, 4), HW("pad", 0, 2)}, .n_attrs = 2}
static const nb_op_case pool_cases[] = {POOL_CASES};
#define NO_PAD_COUNT NB_ABOOL("count_include_pad", 0)
static const nb_op_case avg_cases[] = {
    POOL_CASES,
    {.in = {"2,2,5,5"}, .attrs = {NB_AINT("size", 3), NB_AINT("stride", 1), NB_AINT("pad", 1),
                                  NO_PAD_COUNT}, .n_attrs = 4},
    {.in = {"1,2,5,6"}, .attrs = {HW("size", 3, 2), HW("stride", 1, 2), HW("pad", 1, 0),
                                  NO_PAD_COUNT}, .n_attrs = 4},
    {.in = {"1,2,6,7"}, .attrs = {NB_AINT("size", 4), NB_AINT("stride", 2), NB_AINT("pad", 2),
                                  NO_PAD_COUNT}, .n_attrs = 4},
    {.in = {"2,1,4,5"}, .attrs = {NB_AINT("size", 2), NO_PAD_COUNT}, .n_attrs = 2},  /* no pad */
};
static const nb_op_case avg_grad_cases[] = {
    {.in = {"2,3,2,2", "2,3,4,4"}, .attrs = {NB_AINT("size", 2)}, .n_attrs = 1},
    {.in = {"2,2,5,5", "2,2,5,5"}, POOL(3, 1, 1)},
    {.in = {"1,2,2,2", "1,2,5,6"}, POOL(3, 2, 0)},
    {.in = {"1,2,5,3", "1,2,5,6"}, .attrs = {HW("size", 3, 2), HW("stride", 1, 2), HW("pad", 1, 0)},
     .n_attrs = 3},
    {.in = {"2,2,5,5", "2,2,5,5"}, .attrs = {NB_AINT("size", 3), NB_AINT("stride", 1),
                                             NB_AINT("pad", 1), NO_PAD_COUNT}, .n_attrs = 4},
    {.in = {"1,2,5,3", "1,2,5,6"}, .attrs = {HW("size", 3, 2), HW("stride", 1, 2), HW("pad", 1, 0),
                                             NO_PAD_COUNT}, .n_attrs = 4},
};
/* (gy, x) for the backward, (G, x) for the gather */
static const nb_op_case max_grad_cases[] = {
    {.in = {"2,3,2,2", "2,3,4,4"}, .attrs = {NB_AINT("size", 2)}, .n_attrs = 1},
    {.in = {"2,2,5,5", "2,2,5,5"}, POOL(3, 1, 1)},  /* overlapping: cells win several windows */
    {.in = {"1,2,5,3", "1,2,5,6"}, .attrs = {HW("size", 3, 2), HW("stride", 1, 2), HW("pad", 1, 0)},
     .n_attrs = 3},
};
static const nb_op_case gather_cases[] = {
    {.in = {"2,3,4,4", "2,3,4,4"}, .attrs = {NB_AINT("size", 2)}, .n_attrs = 1},
    {.in = {"2,2,5,5", "2,2,5,5"}, POOL(3, 1, 1)},
    {.in = {"1,2,5,6", "1,2,5,6"}, .attrs = {HW("size", 3, 2), HW("stride", 1, 2), HW("pad", 1, 0)},
     .n_attrs = 3},
};

#define POOL_DOC " windows of x [N, C, H, W]; size, stride, pad: one integer or [h, w]"
const nb_op_def nb_op_max_pool2d = {
    .name = "max_pool2d", .min_in = 1, .max_in = 1, .attrs = pool_attrs, .n_attrs = 3,
    .shape = pool_shape, .forward = max_pool_forward, .backward = max_pool_bwd,
    .flops = pool_flops, .workspace = pool_fwd_work, .cases = pool_cases,
    .n_cases = NB_NELEMS(pool_cases),
    .doc = "maximum over" POOL_DOC " (padding never wins; NaN does)"};
const nb_op_def nb_op_avg_pool2d = {
    .name = "avg_pool2d", .min_in = 1, .max_in = 1, .attrs = avg_attrs, .n_attrs = 4,
    .shape = pool_shape, .forward = avg_pool_forward, .backward = avg_pool_bwd,
    .flops = pool_flops, .workspace = pool_fwd_work, .cases = avg_cases,
    .n_cases = NB_NELEMS(avg_cases),
    .doc = "mean over" POOL_DOC "; count_include_pad (default true): padded zeros count in "
           "the divisor"};
const nb_op_def nb_op_max_pool2d_backward = {
    .name = "max_pool2d_backward", .min_in = 2, .max_in = 2, .attrs = pool_attrs, .n_attrs = 3,
    .flags = NB_OP_INTERNAL, .no_grad = 2, .shape = pool_grad_shape,
    .forward = max_pool_backward_forward, .backward = max_pool_backward_bwd,
    .flops = pool_grad_flops, .workspace = pool_bwd_work, .cases = max_grad_cases,
    .n_cases = NB_NELEMS(max_grad_cases),
    .doc = "gradient of max_pool2d: each window's gy to its maximum in x"};
const nb_op_def nb_op_avg_pool2d_backward = {
    .name = "avg_pool2d_backward", .min_in = 2, .max_in = 2, .attrs = avg_attrs, .n_attrs = 4,
    .flags = NB_OP_INTERNAL, .shape_only = 2, .no_grad = 2, .shape = pool_grad_shape,
    .forward = avg_pool_backward_forward, .backward = avg_pool_backward_bwd,
    .flops = pool_grad_flops, .workspace = pool_bwd_work, .cases = avg_grad_cases,
    .n_cases = NB_NELEMS(avg_grad_cases),
    .doc = "gradient of avg_pool2d: gy / (kh kw, or the real cells) spread over each window"};
const nb_op_def nb_op_max_pool2d_gather = {
    .name = "max_pool2d_gather", .min_in = 2, .max_in = 2, .attrs = pool_attrs, .n_attrs = 3,
    .flags = NB_OP_INTERNAL, .no_grad = 2, .shape = gather_shape, .forward = gather_forward,
    .backward = gather_bwd, .flops = nb_flops_per_out, .workspace = gather_work,
    .cases = gather_cases, .n_cases = NB_NELEMS(gather_cases),
    .doc = "G (x's shape) at each max_pool2d window's maximum in x: the gradient of "
           "max_pool2d_backward"};

/* ---- global_avg_pool2d ---- */

static nb_status gap_shape(nb_shape_ctx *c)
{
    nb_status st = nb_shape_float_inputs(c);
    if (st) return st;
    if (c->in[0].rank != 4)
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs x [N, C, H, W]; %s", nb_shape_desc(c, 0));
    c->out = c->in[0];
    c->out.d[2] = c->out.d[3] = nb_sdim_const(1);
    return NB_OK;
}

static nb_status gap_forward(const nb_kctx *k)
{
    const nb_dims *x = &k->in_shape[0];
    int64_t planes = x->d[0] * x->d[1], hw = x->d[2] * x->d[3];
    if (k->dtype == NB_F64) global_avg_fwd_f64(k->in[0], planes, hw, k->out);
    else global_avg_fwd_f32(k->in[0], planes, hw, k->out);
    return NB_OK;
}

/* the mean's gradient: gy / (H W) over each plane, through unreduce (which has its own rule) */
static nb_status gap_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    nb_attr at[3] = {{.name = "axis", .type = NB_ATTR_INTS, .n = 2, .i = {2, 3}},
                     NB_ABOOL("keepdims", 1), NB_ABOOL("mean", 1)};
    gx[0] = nb_apply(g, &nb_op_unreduce, NULL, (nb_node *[]){gy, nb_node_input(y, 0)}, 2, at, 3);
    return NB_OK;
}

static const nb_op_case gap_cases[] = {
    {.in = {"2,3,4,5"}}, {.in = {"1,2,1,1"}}, {.in = {"2,1,3,1"}}};

const nb_op_def nb_op_global_avg_pool2d = {
    .name = "global_avg_pool2d", .min_in = 1, .max_in = 1, .shape = gap_shape,
    .forward = gap_forward, .backward = gap_bwd, .flops = nb_flops_per_in, .cases = gap_cases,
    .n_cases = NB_NELEMS(gap_cases), .doc = "mean of each plane of x [N, C, H, W]: [N, C, 1, 1]"};

/* ---- C API ---- */

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

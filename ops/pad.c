/* Constant padding of any rank:
 *   pad(x; before, after, value)   x with before[d] cells of `value` added ahead of
 *                                  axis d and after[d] behind it
 * A negative amount crops instead (ONNX Pad allows it): output index o along
 * axis d reads x at o - before[d], and a cell outside x holds `value`. So
 * pad's gradient is pad again with the amounts negated and value 0 — the
 * region of gy that x landed in, zeros where x was cropped away — and that
 * pad has a gradient too (second order). `after` may be omitted: it is then
 * `before` (symmetric). Only bytes move, except for the fill, so one
 * byte-level copy serves f32 and f64. */
#include <stdlib.h>
#include <string.h>

#include "kernel.h"

enum { P_BEFORE, P_AFTER, P_VALUE };

/* |amount| above this is refused, so that size + before + after cannot overflow. */
#define PAD_LIMIT ((int64_t)1 << 48)

/* The node's `after`: `before` when it was not given (n == 0). */
static const nb_attr *after_of(const nb_attr *attr)
{
    return attr[P_AFTER].n ? &attr[P_AFTER] : &attr[P_BEFORE];
}

/* The amounts: one per axis of x, each within PAD_LIMIT. */
static nb_status check_amounts(nb_shape_ctx *c)
{
    const nb_attr *b = &c->attr[P_BEFORE], *a = after_of(c->attr);
    int r = c->in[0].rank;
    if (b->n != r || a->n != r)
        return nb_shape_fail(c, NB_ERR_ARG,
                             "needs one 'before' and one 'after' entry per axis of x (%d); got %d "
                             "and %d; %s",
                             r, b->n, a->n, nb_shape_desc(c, 0));
    for (int d = 0; d < r; d++)
        if (llabs(b->i[d]) > PAD_LIMIT || llabs(a->i[d]) > PAD_LIMIT)
            return nb_shape_fail(c, NB_ERR_ARG, "pads of axis %d (%lld, %lld) are beyond +-2^48", d,
                                 (long long)b->i[d], (long long)a->i[d]);
    return NB_OK;
}

static nb_status pad_shape(nb_shape_ctx *c)
{
    nb_status st = nb_shape_float_inputs(c);
    if (!st) st = check_amounts(c);
    if (st) return st;
    const nb_shape *x = &c->in[0];
    const nb_attr *b = &c->attr[P_BEFORE], *a = after_of(c->attr);
    c->out = *x;
    for (int d = 0; d < x->rank; d++) {
        int64_t lo = b->i[d], hi = a->i[d], n;
        if (!lo && !hi) continue;  /* a free dim may stay free */
        if (!nb_sdim_is_const(x->d[d]))
            return nb_shape_fail(c, NB_ERR_SHAPE,
                                 "needs a constant size along axis %d to pad it; %s", d,
                                 nb_shape_desc(c, 0));
        if (__builtin_add_overflow(x->d[d].c, lo + hi, &n))
            return nb_shape_fail(c, NB_ERR_OVERFLOW, "size of axis %d overflows; %s", d,
                                 nb_shape_desc(c, 0));
        if (n < 1)
            return nb_shape_fail(c, NB_ERR_SHAPE,
                                 "pads (%lld, %lld) leave %lld elements along axis %d (dims must "
                                 "be >= 1); %s",
                                 (long long)lo, (long long)hi, (long long)n, d,
                                 nb_shape_desc(c, 0));
        c->out.d[d] = nb_sdim_const(n);
    }
    nb_sdim numel;
    if (!nb_shape_numel_sym(&c->out, &numel))
        return nb_shape_fail(c, NB_ERR_OVERFLOW, "the padded size of %s overflows",
                             nb_shape_desc(c, 0));
    return NB_OK;
}

/* ---- kernel ---- */

typedef struct pad_job {
    int rank;
    size_t es;                   /* element size */
    const int64_t *before;
    int64_t X[NB_MAX_DIMS], Y[NB_MAX_DIMS];
    size_t xstep[NB_MAX_DIMS], ystep[NB_MAX_DIMS];  /* bytes per index along each axis */
    double value;
} pad_job;

/* n elements of the fill value at y. */
static void fill(const pad_job *j, char *y, size_t n)
{
    if (j->es == sizeof(double))
        for (size_t i = 0; i < n; i++) ((double *)y)[i] = j->value;
    else
        for (size_t i = 0; i < n; i++) ((float *)y)[i] = (float)j->value;
}

/* Output indices [*o0, *o1) along axis ax read x (at o - before); the rest is fill. */
static void inside(const pad_job *j, int ax, int64_t *o0, int64_t *o1)
{
    int64_t Y = j->Y[ax], lo = j->before[ax], hi = lo + j->X[ax];
    *o0 = lo < 0 ? 0 : lo > Y ? Y : lo;
    *o1 = hi < *o0 ? *o0 : hi > Y ? Y : hi;
}

/* The block of axes ax.. at y from the block of x at x. */
static void pad_block(const pad_job *j, int ax, const char *x, char *y)
{
    int64_t o0, o1;
    inside(j, ax, &o0, &o1);
    size_t cells = j->ystep[ax] / j->es;  /* elements per index of this axis */
    fill(j, y, (size_t)o0 * cells);
    if (ax == j->rank - 1) {
        memcpy(y + (size_t)o0 * j->es, x + (size_t)(o0 - j->before[ax]) * j->es,
               (size_t)(o1 - o0) * j->es);
    } else {
        for (int64_t o = o0; o < o1; o++)
            pad_block(j, ax + 1, x + (size_t)(o - j->before[ax]) * j->xstep[ax],
                      y + (size_t)o * j->ystep[ax]);
    }
    fill(j, y + (size_t)o1 * j->ystep[ax], (size_t)(j->Y[ax] - o1) * cells);
}

static nb_status pad_fwd(const nb_kctx *k)
{
    pad_job j = {.rank = k->out_shape.rank, .es = nb_dtype_size(k->dtype),
                 .before = k->attr[P_BEFORE].i, .value = k->attr[P_VALUE].f};
    if (j.rank == 0) {
        memcpy(k->out, k->in[0], j.es);
        return NB_OK;
    }
    size_t xs = j.es, ys = j.es;
    for (int d = j.rank - 1; d >= 0; d--) {
        j.X[d] = k->in_shape[0].d[d], j.Y[d] = k->out_shape.d[d];
        j.xstep[d] = xs, j.ystep[d] = ys;
        xs *= (size_t)j.X[d], ys *= (size_t)j.Y[d];
    }
    pad_block(&j, 0, k->in[0], k->out);
    return NB_OK;
}

/* ---- gradient ---- */

static nb_node *pad_apply(nb_graph *g, nb_node *x, const nb_attr *before, const nb_attr *after,
                          double value)
{
    nb_attr at[3] = {*before, *after, NB_AFLOAT("value", value)};
    at[0].name = "before", at[1].name = "after";
    return nb_apply(g, &nb_op_pad, NULL, (nb_node *[]){x}, 1, at, 3);
}

/* x's cells are gy's at o - before: pad gy by the negated amounts, filling with 0 */
static nb_status pad_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    nb_attr b = *nb__attr(y, P_BEFORE), a = *after_of(nb__attr(y, 0));
    for (int d = 0; d < b.n; d++) b.i[d] = -b.i[d], a.i[d] = -a.i[d];
    gx[0] = pad_apply(g, gy, &b, &a, 0);
    return NB_OK;
}

/* ---- definition ---- */

static const nb_attr_def pad_attrs[] = {
    {"before", NB_ATTR_INTS, true, {0}},
    {"after", NB_ATTR_INTS, false, {.n = 0}},  /* absent: as before */
    {"value", NB_ATTR_FLOAT, false, {.n = 1, .f = 0}},
};

#define INTS(nm, ...)                                                               \
    {.name = (nm), .type = NB_ATTR_INTS, .n = NB_NELEMS(((int64_t[]){__VA_ARGS__})), \
     .i = {__VA_ARGS__}}
#define UNPAREN(...) __VA_ARGS__
#define PADS(b, a) .attrs = {INTS("before", UNPAREN b), INTS("after", UNPAREN a)}, .n_attrs = 2
static const nb_op_case pad_cases[] = {
    {.in = {"3"}, PADS((2), (1))},
    {.in = {"2,3"}, PADS((1, 0), (0, 2))},                       /* asymmetric */
    {.in = {"2,3,4"}, PADS((0, 0, 0), (0, 0, 0))},               /* no padding */
    {.in = {"2,1,3,2"}, PADS((0, 1, 0, 0), (1, 0, 0, 2))},       /* size-1 dims */
    {.in = {"1,2,3,3"}, .attrs = {INTS("before", 0, 0, 1, 2), INTS("after", 0, 0, 2, 1),
                                  NB_AFLOAT("value", 0.5)}, .n_attrs = 3},
    {.in = {"2,5"}, PADS((-1, 1), (2, -2))},                     /* crops */
    {.in = {"3,2"}, .attrs = {INTS("before", 1, 2)}, .n_attrs = 1},  /* after = before */
};

const nb_op_def nb_op_pad = {
    .name = "pad", .min_in = 1, .max_in = 1, .attrs = pad_attrs, .n_attrs = 3, .shape = pad_shape,
    .forward = pad_fwd, .backward = pad_bwd, .flops = nb_flops_none, .cases = pad_cases,
    .n_cases = NB_NELEMS(pad_cases),
    .doc = "x with before[d] and after[d] cells of `value` around axis d (negative: crop)"};

/* ---- C API ---- */

nb_node *nb_pad(nb_graph *g, nb_node *x, const int64_t *before, const int64_t *after,
                double value)
{
    int r = x ? nb_node_rank(x) : 0;
    if (r < 0 || r > NB_MAX_DIMS) r = 0;
    nb_attr b = {.name = "before", .type = NB_ATTR_INTS, .n = r};
    nb_attr a = {.name = "after", .type = NB_ATTR_INTS, .n = r};
    for (int d = 0; d < r; d++) b.i[d] = before ? before[d] : 0, a.i[d] = after ? after[d] : 0;
    return pad_apply(g, x, &b, &a, value);
}

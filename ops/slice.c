/* Joining and cutting along an axis:
 *   concat(a, b, ...; axis)       the inputs joined along axis
 *   slice(a; axis, start, end)    a[start:end] along axis, Python style
 *   slice_backward(gy, x; ...)    zeros of x's shape with gy in the sliced region
 * Each is the other's gradient. Only bytes move, so the kernels copy rows of
 * elements of any size and serve f32 and f64 alike. */
#include <string.h>

#include "kernel.h"

/* slice and slice_backward (slice_attrs); concat (concat_attrs) */
enum { S_AXIS, S_START, S_END };
enum { C_AXIS };

/* Product of dims [from, to) of a bound shape. */
static size_t span(const nb_dims *s, int from, int to)
{
    size_t n = 1;
    for (int i = from; i < to; i++) n *= (size_t)s->d[i];
    return n;
}

static int norm_axis(int64_t axis, int rank) { return (int)(axis < 0 ? axis + rank : axis); }

/* ---- concat ---- */

static nb_status concat_shape(nb_shape_ctx *c)
{
    int r = c->in[0].rank, ax;
    nb_status st = nb_shape_float_inputs(c);
    if (!st) st = nb_shape_axis(c, c->attr[C_AXIS].i[0], r, &ax);
    if (st) return st;
    nb_shape out = c->in[0];
    for (int i = 1; i < c->n_in; i++) {
        const nb_shape *s = &c->in[i];
        bool same = s->rank == r;
        for (int d = 0; d < r && same; d++) same = d == ax || nb_sdim_eq(s->d[d], out.d[d]);
        if (!same)
            return nb_shape_fail(c, NB_ERR_SHAPE, "needs equal dims except along axis %d; %s, %s",
                                 ax, nb_shape_desc(c, 0), nb_shape_desc(c, i));
        if (!nb_sdim_add(out.d[ax], s->d[ax], &out.d[ax]))
            return nb_shape_fail(c, NB_ERR_SHAPE,
                                 "cannot add the sizes along axis %d (different free dims); %s, %s",
                                 ax, nb_shape_desc(c, 0), nb_shape_desc(c, i));
    }
    c->out = out;
    return NB_OK;
}

static nb_status concat_fwd(const nb_kctx *k)
{
    const nb_dims *ys = &k->out_shape;
    int ax = norm_axis(k->attr[C_AXIS].i[0], ys->rank);
    size_t outer = span(ys, 0, ax), inner = span(ys, ax + 1, ys->rank) * nb_dtype_size(k->dtype);
    char *y = k->out;
    for (size_t o = 0; o < outer; o++)
        for (int i = 0; i < k->n_in; i++) {
            size_t chunk = (size_t)k->in_shape[i].d[ax] * inner;
            memcpy(y, (const char *)k->in[i] + o * chunk, chunk);
            y += chunk;
        }
    return NB_OK;
}

/* Each input's gradient is its slice of gy, which needs constant offsets. */
static nb_status concat_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    int n = nb_node_num_inputs(y), ax = norm_axis(nb__attr(y, C_AXIS)->i[0], nb_node_rank(y));
    if (n == 1) {
        gx[0] = gy;
        return NB_OK;
    }
    for (int i = 0; i < n; i++)
        if (nb_node_dim(nb_node_input(y, i), ax) < 0) {
            char shape[96];
            nb_node_shape_str(g, nb_node_input(y, i), shape, sizeof shape);
            return nb__fail(g, NB_ERR_SHAPE,
                            "node '%s': concat has no gradient when an input's size along the "
                            "joined axis is free: %s is %s along axis %d",
                            nb_node_name(y), nb_node_name(nb_node_input(y, i)), shape, ax);
        }
    int64_t start = 0;
    for (int i = 0; i < n; i++) {
        int64_t d = nb_node_dim(nb_node_input(y, i), ax);
        if (nb_needs_grad(needs, i)) gx[i] = nb_slice(g, gy, ax, start, start + d);
        start += d;
    }
    return NB_OK;
}

static const nb_attr_def concat_attrs[] = {{"axis", NB_ATTR_INT, true, {0}}};

static const nb_op_case concat_cases[] = {
    {.in = {"2,3", "4,3"}, .attrs = {NB_AINT("axis", 0)}, .n_attrs = 1},
    {.in = {"2,3", "2,1", "2,2"}, .attrs = {NB_AINT("axis", -1)}, .n_attrs = 1},
    {.in = {"2,1,3", "2,2,3"}, .attrs = {NB_AINT("axis", 1)}, .n_attrs = 1},
    {.in = {"3"}, .attrs = {NB_AINT("axis", 0)}, .n_attrs = 1},
};

const nb_op_def nb_op_concat = {
    .name = "concat", .min_in = 1, .max_in = -1, .attrs = concat_attrs, .n_attrs = 1,
    .shape = concat_shape, .forward = concat_fwd, .backward = concat_bwd, .flops = nb_flops_none,
    .cases = concat_cases, .n_cases = NB_NELEMS(concat_cases),
    .doc = "inputs joined along axis; other dims equal"};

/* ---- slice ---- */

/* Python's slice bounds: negative counts from the end, both clamp to [0, size]. */
static void slice_range(int64_t size, const nb_attr *attr, int64_t *start, int64_t *end)
{
    int64_t s = attr[S_START].i[0], e = attr[S_END].i[0];
    if (s < 0) s += size;
    if (e < 0) e += size;
    *start = s < 0 ? 0 : s > size ? size : s;
    *end = e < 0 ? 0 : e > size ? size : e;
}

/* The shape of input xi sliced by the node's attributes. */
static nb_status sliced(nb_shape_ctx *c, int xi, nb_shape *out)
{
    const nb_shape *x = &c->in[xi];
    int ax;
    nb_status st = nb_shape_axis(c, c->attr[S_AXIS].i[0], x->rank, &ax);
    if (st) return st;
    if (!nb_sdim_is_const(x->d[ax]))
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs a constant size along axis %d; %s", ax,
                             nb_shape_desc(c, xi));
    int64_t s, e;
    slice_range(x->d[ax].c, c->attr, &s, &e);
    if (e <= s)
        return nb_shape_fail(c, NB_ERR_SHAPE,
                             "start %lld, end %lld select nothing along axis %d of %s "
                             "(dims must be >= 1)",
                             (long long)c->attr[S_START].i[0], (long long)c->attr[S_END].i[0], ax,
                             nb_shape_desc(c, xi));
    *out = *x;
    out->d[ax] = nb_sdim_const(e - s);
    return NB_OK;
}

static nb_status slice_shape(nb_shape_ctx *c)
{
    nb_status st = nb_shape_float_inputs(c);
    return st ? st : sliced(c, 0, &c->out);
}

/* Copies the slice of `big` (shape bs) to or from the dense `small`. */
static void slice_copy(const nb_kctx *k, const nb_dims *bs, char *big, char *small, bool to_small)
{
    int ax = norm_axis(k->attr[S_AXIS].i[0], bs->rank);
    int64_t s, e;
    slice_range(bs->d[ax], k->attr, &s, &e);
    size_t outer = span(bs, 0, ax), inner = span(bs, ax + 1, bs->rank) * nb_dtype_size(k->dtype);
    size_t row = (size_t)(e - s) * inner;
    for (size_t o = 0; o < outer; o++) {
        char *b = big + (o * (size_t)bs->d[ax] + (size_t)s) * inner, *sm = small + o * row;
        memcpy(to_small ? sm : b, to_small ? b : sm, row);
    }
}

static nb_status slice_fwd(const nb_kctx *k)
{
    slice_copy(k, &k->in_shape[0], (char *)k->in[0], k->out, true);
    return NB_OK;
}

static nb_node *slice_like(nb_graph *g, const nb_op_def *op, nb_node *a, nb_node *like,
                           const nb_node *y)
{
    nb_attr at[3] = {*nb__attr(y, S_AXIS), *nb__attr(y, S_START), *nb__attr(y, S_END)};
    nb_node *in[2] = {a, like};
    return nb_apply(g, op, NULL, in, like ? 2 : 1, at, 3);
}

static nb_status slice_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = slice_like(g, &nb_op_slice_backward, gy, nb_node_input(y, 0), y);
    return NB_OK;
}

static const nb_attr_def slice_attrs[] = {
    {"axis", NB_ATTR_INT, true, {0}},
    {"start", NB_ATTR_INT, true, {0}},
    {"end", NB_ATTR_INT, true, {0}},
};

#define SL(a, s, e) .attrs = {NB_AINT("axis", a), NB_AINT("start", s), NB_AINT("end", e)}, .n_attrs = 3
static const nb_op_case slice_cases[] = {
    {.in = {"4,3"}, SL(0, 1, 3)},
    {.in = {"2,5"}, SL(-1, -3, 100)},
    {.in = {"3"}, SL(0, 0, 1)},
    {.in = {"2,3,4"}, SL(1, -2, -1)},
    {.in = {"2,3,4"}, SL(2, -10, 2)},
};

const nb_op_def nb_op_slice = {
    .name = "slice", .min_in = 1, .max_in = 1, .attrs = slice_attrs, .n_attrs = 3,
    .shape = slice_shape, .forward = slice_fwd, .backward = slice_bwd, .flops = nb_flops_none,
    .cases = slice_cases, .n_cases = NB_NELEMS(slice_cases),
    .doc = "a[start:end] along axis (Python semantics; the axis size must be constant)"};

/* ---- slice_backward(gy, x) ---- */

static nb_status slice_backward_shape(nb_shape_ctx *c)
{
    nb_shape want = {0};
    nb_status st = sliced(c, 1, &want);
    if (!st) st = nb_shape_expect(c, 0, &want, "gy of the sliced shape");
    if (st) return st;
    c->out = c->in[1];
    return NB_OK;
}

static nb_status slice_backward_fwd(const nb_kctx *k)
{
    memset(k->out, 0, nb_dims_numel(&k->out_shape) * nb_dtype_size(k->dtype));
    slice_copy(k, &k->out_shape, k->out, (char *)k->in[0], false);
    return NB_OK;
}

static nb_status slice_backward_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs,
                                    nb_node **gx)
{
    (void)needs;
    gx[0] = slice_like(g, &nb_op_slice, gy, NULL, y);
    return NB_OK;
}

static const nb_op_case slice_backward_cases[] = {
    {.in = {"2,3", "2,5"}, SL(1, 1, 4)},
    {.in = {"1,3", "4,3"}, SL(0, -1, 10)},
};

const nb_op_def nb_op_slice_backward = {
    .name = "slice_backward", .min_in = 2, .max_in = 2, .attrs = slice_attrs, .n_attrs = 3,
    .flags = NB_OP_INTERNAL, .shape_only = 2, .no_grad = 2, .shape = slice_backward_shape,
    .forward = slice_backward_fwd, .backward = slice_backward_bwd, .flops = nb_flops_none,
    .cases = slice_backward_cases, .n_cases = NB_NELEMS(slice_backward_cases),
    .doc = "gradient of slice: zeros of x's shape with gy in the sliced region"};

/* ---- helpers ---- */

nb_node *nb_concat(nb_graph *g, nb_node *const *in, int n, int64_t axis)
{
    return nb_apply(g, &nb_op_concat, NULL, in, n, (nb_attr[]){NB_AINT("axis", axis)}, 1);
}

nb_node *nb_slice(nb_graph *g, nb_node *a, int64_t axis, int64_t start, int64_t end)
{
    nb_attr at[3] = {NB_AINT("axis", axis), NB_AINT("start", start), NB_AINT("end", end)};
    return nb_apply(g, &nb_op_slice, NULL, (nb_node *[]){a}, 1, at, 3);
}

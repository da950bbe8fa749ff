/* Joining and cutting along an axis:
 *   concat(a, b, ...; axis)       the inputs joined along axis
 *   slice(a; axis, start, end)    a[start:end] along axis, Python style
 *   slice_backward(gy, x; ...)    zeros of x's shape with gy in the sliced region
 *   slice_part(a; axis, start, end, parts)        (internal)
 *       parts [start, end) of a cut into `parts` equal parts along axis
 *   slice_part_backward(gy, x; axis, start, end, parts)   (internal)
 *       zeros of x's shape with gy in those parts
 * Each is the other's gradient. slice needs a constant size along its axis;
 * slice_part serves concat's gradient, where that size may be free: the
 * sizes concat joins are c_k * M for one product M of free dims (the only
 * sums a symbolic shape can hold), so input i is parts [c_0 + .. + c_(i-1),
 * c_0 + .. + c_i) of the output cut into c_0 + .. + c_(n-1) parts, whatever
 * M is bound to. Only bytes move, so the kernels copy rows of elements of any
 * size and serve f32 and f64 alike. */
#include <string.h>

#include "kernel.h"

/* slice and slice_backward (slice_attrs, the first three); the part ops
 * (part_attrs, all four); concat (concat_attrs) */
enum { S_AXIS, S_START, S_END, S_PARTS };
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

static nb_node *slice_part(nb_graph *g, nb_node *a, int ax, int64_t start, int64_t end,
                           int64_t parts);

/* Each input's gradient is its part of gy (slice_part: the sizes along the
 * axis are c_k * M, M the same product of free dims, or 1, for all). */
static nb_status concat_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    int n = nb_node_num_inputs(y), ax = norm_axis(nb__attr(y, C_AXIS)->i[0], nb_node_rank(y));
    if (n == 1) {
        gx[0] = gy;
        return NB_OK;
    }
    int64_t start = 0, parts = y->shape.d[ax].c;
    for (int i = 0; i < n; i++) {
        int64_t c = nb_node_input(y, i)->shape.d[ax].c;
        if (nb_needs_grad(needs, i)) gx[i] = slice_part(g, gy, ax, start, start + c, parts);
        start += c;
    }
    return NB_OK;
}

static const nb_attr_def concat_attrs[] = {{"axis", NB_ATTR_INT, true, {0}}};

static const nb_op_case concat_cases[] = {
    {.in = {"2,3", "4,3"}, .attrs = {NB_AINT("axis", 0)}, .n_attrs = 1},
    {.in = {"2,3", "2,1", "2,2"}, .attrs = {NB_AINT("axis", -1)}, .n_attrs = 1},
    {.in = {"2,1,3", "2,2,3"}, .attrs = {NB_AINT("axis", 1)}, .n_attrs = 1},
    {.in = {"3"}, .attrs = {NB_AINT("axis", 0)}, .n_attrs = 1},
    {.in = {"1,2", "1,2", "1,2", "1,2"}, .attrs = {NB_AINT("axis", 0)}, .n_attrs = 1},
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

/* The part ops' bounds: parts [start, end) of size / parts elements each. */
static void part_range(int64_t size, const nb_attr *attr, int64_t *start, int64_t *end)
{
    int64_t unit = size / attr[S_PARTS].i[0];
    *start = unit * attr[S_START].i[0];
    *end = unit * attr[S_END].i[0];
}

/* slice_range or part_range, by the node's op */
static void range_of(const nb_kctx *k, int64_t size, int64_t *start, int64_t *end)
{
    bool part = k->node->op == &nb_op_slice_part || k->node->op == &nb_op_slice_part_backward;
    (part ? part_range : slice_range)(size, k->attr, start, end);
}

/* Copies the slice of `big` (shape bs) to or from the dense `small`. */
static void slice_copy(const nb_kctx *k, const nb_dims *bs, char *big, char *small, bool to_small)
{
    int ax = norm_axis(k->attr[S_AXIS].i[0], bs->rank);
    int64_t s, e;
    range_of(k, bs->d[ax], &s, &e);
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

/* op on a (and like) with y's attributes (slice's three or the part ops' four) */
static nb_node *slice_like(nb_graph *g, const nb_op_def *op, nb_node *a, nb_node *like,
                           const nb_node *y)
{
    nb_attr at[4] = {*nb__attr(y, S_AXIS), *nb__attr(y, S_START), *nb__attr(y, S_END)};
    if (op->n_attrs == 4) at[3] = *nb__attr(y, S_PARTS);
    nb_node *in[2] = {a, like};
    return nb_apply(g, op, NULL, in, like ? 2 : 1, at, op->n_attrs);
}

static nb_status slice_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    bool part = y->op == &nb_op_slice_part;
    gx[0] = slice_like(g, part ? &nb_op_slice_part_backward : &nb_op_slice_backward, gy,
                       nb_node_input(y, 0), y);
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
    bool part = y->op == &nb_op_slice_part_backward;
    gx[0] = slice_like(g, part ? &nb_op_slice_part : &nb_op_slice, gy, NULL, y);
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

/* ---- slice_part(a; axis, start, end, parts), slice_part_backward(gy, x; ...) ---- */

/* The shape of input xi cut to parts [start, end) of `parts`. */
static nb_status parted(nb_shape_ctx *c, int xi, nb_shape *out)
{
    const nb_shape *x = &c->in[xi];
    int ax;
    int64_t s = c->attr[S_START].i[0], e = c->attr[S_END].i[0], parts = c->attr[S_PARTS].i[0];
    nb_status st = nb_shape_axis(c, c->attr[S_AXIS].i[0], x->rank, &ax);
    if (st) return st;
    if (!(0 <= s && s < e && e <= parts))
        return nb_shape_fail(c, NB_ERR_ARG, "needs 0 <= start < end <= parts; got %lld, %lld, %lld",
                             (long long)s, (long long)e, (long long)parts);
    nb_sdim unit;
    if (!nb_sdim_div(x->d[ax], nb_sdim_const(parts), &unit))
        return nb_shape_fail(c, NB_ERR_SHAPE, "cannot cut axis %d into %lld equal parts; %s", ax,
                             (long long)parts, nb_shape_desc(c, xi));
    *out = *x;
    if (!nb_sdim_mul(unit, nb_sdim_const(e - s), &out->d[ax]))
        return nb_shape_fail(c, NB_ERR_OVERFLOW, "size overflows");
    return NB_OK;
}

static nb_status part_shape(nb_shape_ctx *c)
{
    nb_status st = nb_shape_float_inputs(c);
    return st ? st : parted(c, 0, &c->out);
}

static nb_status part_backward_shape(nb_shape_ctx *c)
{
    nb_shape want = {0};
    nb_status st = parted(c, 1, &want);
    if (!st) st = nb_shape_expect(c, 0, &want, "gy of the part's shape");
    if (st) return st;
    c->out = c->in[1];
    return NB_OK;
}

static const nb_attr_def part_attrs[] = {
    {"axis", NB_ATTR_INT, true, {0}},
    {"start", NB_ATTR_INT, true, {0}},
    {"end", NB_ATTR_INT, true, {0}},
    {"parts", NB_ATTR_INT, true, {0}},
};

#define PART(a, s, e, p)                                                                     \
    .attrs = {NB_AINT("axis", a), NB_AINT("start", s), NB_AINT("end", e), NB_AINT("parts", p)}, \
    .n_attrs = 4
static const nb_op_case part_cases[] = {
    {.in = {"6,2"}, PART(0, 1, 2, 3)},
    {.in = {"2,3,4"}, PART(-1, 0, 3, 4)},
    {.in = {"2"}, PART(0, 0, 2, 2)},
};
static const nb_op_case part_backward_cases[] = {
    {.in = {"2,2", "2,6"}, PART(1, 2, 3, 3)},
    {.in = {"1,3", "4,3"}, PART(0, 3, 4, 4)},
};

const nb_op_def nb_op_slice_part = {
    .name = "slice_part", .min_in = 1, .max_in = 1, .attrs = part_attrs, .n_attrs = 4,
    .flags = NB_OP_INTERNAL, .shape = part_shape, .forward = slice_fwd, .backward = slice_bwd,
    .flops = nb_flops_none, .cases = part_cases, .n_cases = NB_NELEMS(part_cases),
    .doc = "parts [start, end) of a cut into `parts` equal parts along axis (concat's gradient)"};

const nb_op_def nb_op_slice_part_backward = {
    .name = "slice_part_backward", .min_in = 2, .max_in = 2, .attrs = part_attrs, .n_attrs = 4,
    .flags = NB_OP_INTERNAL, .shape_only = 2, .no_grad = 2, .shape = part_backward_shape,
    .forward = slice_backward_fwd, .backward = slice_backward_bwd, .flops = nb_flops_none,
    .cases = part_backward_cases, .n_cases = NB_NELEMS(part_backward_cases),
    .doc = "gradient of slice_part: zeros of x's shape with gy in those parts"};

static nb_node *slice_part(nb_graph *g, nb_node *a, int ax, int64_t start, int64_t end,
                           int64_t parts)
{
    nb_attr at[4] = {NB_AINT("axis", ax), NB_AINT("start", start), NB_AINT("end", end),
                     NB_AINT("parts", parts)};
    return nb_apply(g, &nb_op_slice_part, NULL, (nb_node *[]){a}, 1, at, 4);
}

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

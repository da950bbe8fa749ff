/* Views: ops whose output is input 0's data under another shape (NB_OP_VIEW:
 * the planner gives them input 0's buffer and they run no kernel).
 *   reshape(a; shape)    entries may be symbols and one -1
 *   flatten(a; axis)     [prod(dims before axis), prod(the rest)]
 *   reshape_like(g, x)   g under x's shape (their gradient; x is shape-only) */
#include <stdio.h>

#include "kernel.h"

static nb_status view_fwd(const nb_kctx *k)
{
    (void)k;  /* the output is the input's buffer */
    return NB_OK;
}

static nb_node *reshape_like(nb_graph *g, nb_node *a, nb_node *like)
{
    return nb_apply(g, &nb_op_reshape_like, NULL, (nb_node *[]){a, like}, 2, NULL, 0);
}

/* Every view's gradient: gy back under the input's shape. */
static nb_status view_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = reshape_like(g, gy, nb_node_input(y, 0));
    return NB_OK;
}

/* ---- reshape ---- */

enum { R_SHAPE };
static const nb_attr_def reshape_attrs[] = {{"shape", NB_ATTR_DIMS, true, {0}}};

/* The shape attribute as written: "[N, -1, 28]". */
static const char *dims_str(const nb_attr *a, char *buf, size_t cap)
{
    size_t len = 0;
    for (int i = 0; i < a->n && len < cap; i++) {
        int w = a->d[i].sym ? snprintf(buf + len, cap - len, "%s%s", i ? ", " : "[", a->d[i].sym)
                            : snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "[",
                                       (long long)a->d[i].size);
        len += w > 0 ? (size_t)w : 0;
    }
    if (len < cap) snprintf(buf + len, cap - len, "%s", a->n ? "]" : "[]");
    return buf;
}

static nb_status reshape_shape(nb_shape_ctx *c)
{
    const nb_attr *s = &c->attr[R_SHAPE];
    char want[96];
    nb_sdim numel, known = nb_sdim_const(1);
    nb_shape out = {.rank = s->n};
    int infer = -1;
    if (!nb_shape_numel_sym(&c->in[0], &numel))
        return nb_shape_fail(c, NB_ERR_OVERFLOW, "%s has too many elements", nb_shape_desc(c, 0));
    for (int i = 0; i < s->n; i++) {
        nb_status st = nb_shape_dim(c, s->d[i], &out.d[i]);
        if (st) return st;
        if (!nb_sdim_is(out.d[i], -1)) {
            if (!nb_sdim_mul(known, out.d[i], &known))
                return nb_shape_fail(c, NB_ERR_OVERFLOW, "shape %s overflows",
                                     dims_str(s, want, sizeof want));
        } else if (infer >= 0) {
            return nb_shape_fail(c, NB_ERR_ARG, "shape %s has more than one -1",
                                 dims_str(s, want, sizeof want));
        } else {
            infer = i;
        }
    }
    if (infer >= 0 && !nb_sdim_div(numel, known, &out.d[infer]))
        return nb_shape_fail(c, NB_ERR_SHAPE, "cannot reshape %s to %s: the -1 does not resolve exactly",
                             nb_shape_desc(c, 0), dims_str(s, want, sizeof want));
    if (infer < 0 && !nb_sdim_eq(numel, known))
        return nb_shape_fail(c, NB_ERR_SHAPE, "cannot reshape %s to %s: the element counts differ",
                             nb_shape_desc(c, 0), dims_str(s, want, sizeof want));
    c->out = out;
    return NB_OK;
}

#define SHAPE(...)                                                                      \
    {.name = "shape", .type = NB_ATTR_INTS, .n = NB_NELEMS(((int64_t[]){__VA_ARGS__})), \
     .i = {__VA_ARGS__}}
static const nb_op_case reshape_cases[] = {
    {.in = {"2,3,4"}, .attrs = {SHAPE(4, 6)}, .n_attrs = 1},
    {.in = {"2,3,4"}, .attrs = {SHAPE(-1, 2)}, .n_attrs = 1},
    {.in = {"6"}, .attrs = {SHAPE(1, 3, 1, 2)}, .n_attrs = 1},
    {.in = {"1,1"}, .attrs = {{.name = "shape", .type = NB_ATTR_INTS, .n = 0}}, .n_attrs = 1},
};

const nb_op_def nb_op_reshape = {
    .name = "reshape", .min_in = 1, .max_in = 1, .attrs = reshape_attrs, .n_attrs = 1,
    .flags = NB_OP_VIEW, .shape = reshape_shape, .forward = view_fwd, .backward = view_bwd,
    .flops = nb_flops_none, .cases = reshape_cases, .n_cases = NB_NELEMS(reshape_cases),
    .doc = "same data, new shape (symbols and one -1 allowed)"};

/* ---- flatten ---- */

enum { F_AXIS };
static const nb_attr_def flatten_attrs[] = {{"axis", NB_ATTR_INT, false, {.i = {1}}}};

static nb_status flatten_shape(nb_shape_ctx *c)
{
    int r = c->in[0].rank;
    int64_t ax = c->attr[F_AXIS].i[0];
    if (ax < 0) ax += r;
    if (ax < 0 || ax > r)
        return nb_shape_fail(c, NB_ERR_ARG, "axis %lld is out of range 0..%d for %s",
                             (long long)c->attr[F_AXIS].i[0], r, nb_shape_desc(c, 0));
    nb_shape out = {.rank = 2, .d = {nb_sdim_const(1), nb_sdim_const(1)}};
    for (int i = 0; i < r; i++)
        if (!nb_sdim_mul(out.d[i >= ax], c->in[0].d[i], &out.d[i >= ax]))
            return nb_shape_fail(c, NB_ERR_OVERFLOW, "%s has too many elements", nb_shape_desc(c, 0));
    c->out = out;
    return NB_OK;
}

static const nb_op_case flatten_cases[] = {
    {.in = {"2,3,4"}},
    {.in = {"2,3,4"}, .attrs = {NB_AINT("axis", 2)}, .n_attrs = 1},
    {.in = {"2,3"}, .attrs = {NB_AINT("axis", 0)}, .n_attrs = 1},
    {.in = {"2,3"}, .attrs = {NB_AINT("axis", -1)}, .n_attrs = 1},
    {.in = {"2,1,3,2"}, .attrs = {NB_AINT("axis", 4)}, .n_attrs = 1},
};

const nb_op_def nb_op_flatten = {
    .name = "flatten", .min_in = 1, .max_in = 1, .attrs = flatten_attrs, .n_attrs = 1,
    .flags = NB_OP_VIEW, .shape = flatten_shape, .forward = view_fwd, .backward = view_bwd,
    .flops = nb_flops_none, .cases = flatten_cases, .n_cases = NB_NELEMS(flatten_cases),
    .doc = "[prod(dims before axis), prod(the rest)], same data"};

/* ---- reshape_like ---- */

static nb_status reshape_like_shape(nb_shape_ctx *c)
{
    nb_sdim n0, n1;
    if (!nb_shape_numel_sym(&c->in[0], &n0) || !nb_shape_numel_sym(&c->in[1], &n1) ||
        !nb_sdim_eq(n0, n1))
        return nb_shape_fail(c, NB_ERR_SHAPE, "cannot reshape %s like %s: the element counts differ",
                             nb_shape_desc(c, 0), nb_shape_desc(c, 1));
    c->out = c->in[1];
    return NB_OK;
}

static const nb_op_case reshape_like_cases[] = {
    {.in = {"2,6", "3,4"}}, {.in = {"", "1,1"}}, {.in = {"2,3,4", "24"}}};

const nb_op_def nb_op_reshape_like = {
    .name = "reshape_like", .min_in = 2, .max_in = 2, .flags = NB_OP_VIEW | NB_OP_INTERNAL,
    .shape_only = 2, .no_grad = 2, .shape = reshape_like_shape, .forward = view_fwd,
    .backward = view_bwd, .flops = nb_flops_none, .cases = reshape_like_cases,
    .n_cases = NB_NELEMS(reshape_like_cases),
    .doc = "g under x's shape (gradient of reshape and flatten)"};

/* ---- helpers ---- */

nb_node *nb_reshape(nb_graph *g, nb_node *a, int rank, const nb_dim *shape)
{
    nb_attr at = {.name = "shape", .type = NB_ATTR_DIMS, .n = rank};
    if (rank < 0 || rank > NB_MAX_DIMS) at.n = NB_MAX_DIMS + 1;  /* rejected by nb_op */
    for (int i = 0; i < at.n && i < NB_MAX_DIMS; i++) at.d[i] = shape[i];
    return nb_apply(g, &nb_op_reshape, NULL, (nb_node *[]){a}, 1, &at, 1);
}

nb_node *nb_flatten(nb_graph *g, nb_node *a, int64_t axis)
{
    return nb_apply(g, &nb_op_flatten, NULL, (nb_node *[]){a}, 1,
                    (nb_attr[]){NB_AINT("axis", axis)}, 1);
}

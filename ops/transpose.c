/* transpose(a; perm): the axes permuted (default: reversed), as a copy.
 * Its gradient is the transpose by the inverse permutation. */
#include "kernel.h"

enum { A_PERM };
static const nb_attr_def transpose_attrs[] = {{"perm", NB_ATTR_INTS, false, {0}}};

/* perm from the attribute (default reversed), validated as a permutation. */
static nb_status get_perm(nb_shape_ctx *c, int *perm)
{
    const nb_attr *p = &c->attr[A_PERM];
    int r = c->in[0].rank;
    bool seen[NB_MAX_DIMS] = {0};
    if (p->n == 0) {
        for (int i = 0; i < r; i++) perm[i] = r - 1 - i;
        return NB_OK;
    }
    if (p->n != r)
        return nb_shape_fail(c, NB_ERR_ARG, "perm has %d entries but %s has rank %d", p->n,
                             nb_shape_desc(c, 0), r);
    for (int i = 0; i < r; i++) {
        nb_status st = nb_shape_axis(c, p->i[i], r, &perm[i]);
        if (st) return st;
        if (seen[perm[i]])
            return nb_shape_fail(c, NB_ERR_ARG, "perm is not a permutation: axis %d appears twice",
                                 perm[i]);
        seen[perm[i]] = true;
    }
    return NB_OK;
}

static nb_status transpose_shape(nb_shape_ctx *c)
{
    int perm[NB_MAX_DIMS];
    nb_status st = nb_shape_float_inputs(c);
    if (!st) st = get_perm(c, perm);
    if (st) return st;
    for (int i = 0; i < c->in[0].rank; i++) c->out.d[i] = c->in[0].d[perm[i]];
    return NB_OK;
}

/* perm of a bound node (the shape rule validated it). */
static void bound_perm(const nb_attr *p, int r, int *perm)
{
    for (int i = 0; i < r; i++)
        perm[i] = p->n ? (int)(p->i[i] < 0 ? p->i[i] + r : p->i[i]) : r - 1 - i;
}

/* y[i0, ..., ir-1] = x at offset sum(i_k * xs[k]); xs are x's strides per
 * output axis. The innermost output axis is a strided read loop. */
#define TRANSPOSE_KERNEL(T)                                                               \
    static void transpose_##T(const T *x, T *y, const nb_dims *ys, const int64_t *xs)    \
    {                                                                                     \
        int r = ys->rank;                                                                 \
        if (r == 0) {                                                                     \
            y[0] = x[0];                                                                  \
            return;                                                                       \
        }                                                                                 \
        int64_t idx[NB_MAX_DIMS] = {0}, off = 0, inner = ys->d[r - 1], st = xs[r - 1];    \
        size_t rows = nb_dims_numel(ys) / (size_t)inner;                                  \
        for (size_t o = 0; o < rows; o++) {                                               \
            for (int64_t i = 0; i < inner; i++) *y++ = x[off + i * st];                   \
            for (int a = r - 2; a >= 0; a--) {                                            \
                off += xs[a];                                                             \
                if (++idx[a] < ys->d[a]) break;                                           \
                off -= xs[a] * ys->d[a];                                                  \
                idx[a] = 0;                                                               \
            }                                                                             \
        }                                                                                 \
    }
TRANSPOSE_KERNEL(float)
TRANSPOSE_KERNEL(double)

static nb_status transpose_fwd(const nb_kctx *k)
{
    const nb_dims *in = &k->in_shape[0];
    int r = in->rank, perm[NB_MAX_DIMS];
    int64_t stride[NB_MAX_DIMS], xs[NB_MAX_DIMS];
    bound_perm(&k->attr[A_PERM], r, perm);
    int64_t s = 1;
    for (int i = r - 1; i >= 0; i--) {
        stride[i] = s;
        s *= in->d[i];
    }
    for (int i = 0; i < r; i++) xs[i] = stride[perm[i]];
    if (k->dtype == NB_F64)
        transpose_double(k->in[0], k->out, &k->out_shape, xs);
    else
        transpose_float(k->in[0], k->out, &k->out_shape, xs);
    return NB_OK;
}

static nb_status transpose_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    int r = nb_node_rank(y), perm[NB_MAX_DIMS];
    int64_t inv[NB_MAX_DIMS];
    bound_perm(nb__attr(y, A_PERM), r, perm);
    for (int i = 0; i < r; i++) inv[perm[i]] = i;
    gx[0] = nb_transpose(g, gy, inv, r);
    return NB_OK;
}

#define PERM(...) {.name = "perm", .type = NB_ATTR_INTS, .n = NB_NELEMS(((int64_t[]){__VA_ARGS__})), .i = {__VA_ARGS__}}
static const nb_op_case transpose_cases[] = {
    {.in = {"2,3"}},
    {.in = {"2,3,4"}},
    {.in = {"2,3,4"}, .attrs = {PERM(1, 2, 0)}, .n_attrs = 1},
    {.in = {"2,1,3,2"}, .attrs = {PERM(0, 3, -3, 2)}, .n_attrs = 1},
    {.in = {"3"}},
    {.in = {""}},
};

const nb_op_def nb_op_transpose = {
    .name = "transpose", .min_in = 1, .max_in = 1, .attrs = transpose_attrs, .n_attrs = 1,
    .shape = transpose_shape, .forward = transpose_fwd, .backward = transpose_bwd,
    .flops = nb_flops_none, .cases = transpose_cases, .n_cases = NB_NELEMS(transpose_cases),
    .doc = "axes permuted by perm (default: reversed)"};

nb_node *nb_transpose(nb_graph *g, nb_node *a, const int64_t *perm, int n)
{
    nb_attr at = {.name = "perm", .type = NB_ATTR_INTS, .n = n};
    if (n < 0 || n > NB_MAX_DIMS) at.n = NB_MAX_DIMS + 1;  /* rejected by nb_op */
    for (int i = 0; i < at.n && i < NB_MAX_DIMS; i++) at.i[i] = perm[i];
    return nb_apply(g, &nb_op_transpose, NULL, (nb_node *[]){a}, 1, &at, 1);
}

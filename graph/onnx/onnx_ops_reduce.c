/* Converters of ONNX reductions: ReduceSum/Mean/Max/Min/LogSumExp and the
 * composed ones (L1, L2, SumSquare, LogSum), ArgMax, ArgMin. Axes come from
 * the attribute, or from the second input (ReduceSum from opset 13, the
 * others from 18); keepdims defaults to 1. */
#include "onnx_internal.h"

typedef nb_node *(*red_fn)(nb_graph *, nb_node *, const int64_t *, int, bool);

/* The axes (n 0: all); *identity for noop_with_empty_axes without axes. */
static nb_status read_axes(ox_ctx *c, ox_node_io *io, int64_t *axes, int *n, bool *identity)
{
    *n = ox_attr_ints(io, "axes", axes, NB_MAX_DIMS);
    if (*n < 0 && ox_has_in(io, 1)) {
        const ox_const *k = ox_known(c, io, 1, "axes");
        if (!k) return c->st;
        if (k->n > NB_MAX_DIMS) return ox_unsupported(c, "%zu axes", k->n);
        *n = (int)k->n;
        for (int i = 0; i < *n; i++) axes[i] = k->i[i];
    }
    if (*n > NB_MAX_DIMS) return ox_unsupported(c, "more than %d axes", NB_MAX_DIMS);
    if (*n < 0) *n = 0;
    *identity = *n == 0 && ox_attr_int(io, "noop_with_empty_axes", 0);
    return NB_OK;
}

/* fn over the axes of pre(x), then post. */
static nb_status reduce(ox_ctx *c, ox_node_io *io, red_fn fn, nb_node *(*pre)(nb_graph *, nb_node *),
                        nb_node *(*post)(nb_graph *, nb_node *))
{
    nb_node *x = ox_in(c, io, 0);
    int64_t axes[NB_MAX_DIMS];
    int n = 0;
    bool identity = false;
    if (!x || read_axes(c, io, axes, &n, &identity)) return c->st;
    if (pre) x = pre(c->g, x);
    nb_node *y = identity ? nb_scale(c->g, x, 1, 0) : fn(c->g, x, axes, n, ox_attr_int(io, "keepdims", 1));
    if (y && post && !identity) y = post(c->g, y);
    return (io->out[0] = y) ? NB_OK : ox_graph_fail(c);
}

static nb_node *square(nb_graph *g, nb_node *x) { return nb_mul(g, x, x); }

static nb_status cv_sum(ox_ctx *c, ox_node_io *io) { return reduce(c, io, nb_sum, NULL, NULL); }
static nb_status cv_mean(ox_ctx *c, ox_node_io *io) { return reduce(c, io, nb_mean, NULL, NULL); }
static nb_status cv_max(ox_ctx *c, ox_node_io *io) { return reduce(c, io, nb_max, NULL, NULL); }
static nb_status cv_min(ox_ctx *c, ox_node_io *io) { return reduce(c, io, nb_min, NULL, NULL); }
static nb_status cv_lse(ox_ctx *c, ox_node_io *io) { return reduce(c, io, nb_logsumexp, NULL, NULL); }
static nb_status cv_l1(ox_ctx *c, ox_node_io *io) { return reduce(c, io, nb_sum, nb_abs, NULL); }
static nb_status cv_l2(ox_ctx *c, ox_node_io *io) { return reduce(c, io, nb_sum, square, nb_sqrt); }
static nb_status cv_sumsq(ox_ctx *c, ox_node_io *io) { return reduce(c, io, nb_sum, square, NULL); }
static nb_status cv_logsum(ox_ctx *c, ox_node_io *io) { return reduce(c, io, nb_sum, NULL, nb_log); }

/* ArgMin is the ArgMax of -x (the first index on ties either way). */
static nb_status arg(ox_ctx *c, ox_node_io *io, bool min)
{
    nb_node *x = ox_in(c, io, 0);
    if (!x) return c->st;
    if (ox_attr_int(io, "select_last_index", 0)) return ox_unsupported(c, "select_last_index=1");
    if (min) x = nb_neg(c->g, x);
    nb_node *y = nb_argmax(c->g, x, ox_attr_int(io, "axis", 0), ox_attr_int(io, "keepdims", 1));
    return (io->out[0] = y) ? NB_OK : ox_graph_fail(c);
}

static nb_status cv_argmax(ox_ctx *c, ox_node_io *io) { return arg(c, io, false); }
static nb_status cv_argmin(ox_ctx *c, ox_node_io *io) { return arg(c, io, true); }

#define RED "axes keepdims noop_with_empty_axes"
const ox_op ox_ops_reduce[] = {
    {"ReduceSum", cv_sum, RED}, {"ReduceMean", cv_mean, RED}, {"ReduceMax", cv_max, RED},
    {"ReduceMin", cv_min, RED}, {"ReduceLogSumExp", cv_lse, RED}, {"ReduceL1", cv_l1, RED},
    {"ReduceL2", cv_l2, RED}, {"ReduceSumSquare", cv_sumsq, RED}, {"ReduceLogSum", cv_logsum, RED},
    {"ArgMax", cv_argmax, "axis keepdims select_last_index"},
    {"ArgMin", cv_argmin, "axis keepdims select_last_index"},
};
const size_t ox_n_ops_reduce = sizeof ox_ops_reduce / sizeof *ox_ops_reduce;

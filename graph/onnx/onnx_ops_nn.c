/* Converters of ONNX layer ops: MatMul, Gemm, Conv, pooling, normalisation,
 * softmax, losses. Reductions are in onnx_ops_reduce.c. */
#include <math.h>
#include <string.h>

#include "onnx_internal.h"

#define OK_OR_FAIL(c, x) ((x) ? NB_OK : ox_graph_fail(c))

static nb_status cv_matmul(ox_ctx *c, ox_node_io *io)
{
    nb_node *a = ox_in(c, io, 0), *b = ox_in(c, io, 1);
    if (!a || !b) return c->st;
    return OK_OR_FAIL(c, io->out[0] = nb_matmul(c->g, a, b));
}

/* alpha * A' B' + beta * C */
static nb_status cv_gemm(ox_ctx *c, ox_node_io *io)
{
    nb_node *a = ox_in(c, io, 0), *b = ox_in(c, io, 1);
    if (!a || !b) return c->st;
    double alpha = ox_attr_float(io, "alpha", 1), beta = ox_attr_float(io, "beta", 1);
    nb_node *y = nb_matmul_t(c->g, a, b, ox_attr_int(io, "transA", 0), ox_attr_int(io, "transB", 0));
    if (y && alpha != 1) y = nb_scale(c->g, y, alpha, 0);
    if (y && ox_has_in(io, 2) && beta != 0) {
        nb_node *k = ox_in(c, io, 2);
        if (!k) return c->st;
        y = nb_add(c->g, y, beta == 1 ? k : nb_scale(c->g, k, beta, 0));
    }
    return OK_OR_FAIL(c, io->out[0] = y);
}

/* ---- conv and pooling ----------------------------------------------------- */

/* x with a unit axis inserted at `at` (insert) or axis `at` removed: 1-D
 * convolutions and pools run as 2-D ones of height 1. */
static nb_node *unit_axis(ox_ctx *c, nb_node *x, int at, bool insert)
{
    nb_dim d[NB_MAX_DIMS];
    int r = 0, rank = nb_node_rank(x);
    for (int i = 0; i < rank; i++) {
        if (insert && i == at) d[r++] = NB_DIM(1);
        if (!insert && i == at) continue;
        int64_t s = nb_node_dim(x, i);
        const char *sym = s < 0 ? nb_node_dim_sym(c->g, x, i) : NULL;
        if (s < 0 && !sym) return ox_unsupported(c, "shape with a product of free dimensions"), NULL;
        d[r++] = s < 0 ? NB_SYM(sym) : NB_DIM(s);
    }
    return nb_reshape(c->g, x, r, d);
}

/* The spatial attributes of Conv and the pools, for 1 or 2 spatial axes:
 * [h, w] each (1-D: h = 1 and its pad 0). Symmetric pads go to the op's
 * `pad`; asymmetric ones (asym) are kept as lo/hi for an explicit nb_pad
 * ahead of the op, whose `pad` is then 0. */
typedef struct spatial {
    int n;                      /* spatial axes: 1 or 2 */
    int64_t kernel[2], stride[2], pad[2], dil[2];
    bool asym;
    int64_t lo[2], hi[2];       /* the pads ahead of and behind each axis */
} spatial;

static nb_status read_spatial(ox_ctx *c, ox_node_io *io, int rank, spatial *s)
{
    s->n = rank - 2;
    if (s->n != 1 && s->n != 2) return ox_unsupported(c, "%d-D input (nabla has 1-D and 2-D)", s->n);
    const Onnx__AttributeProto *ap = ox_attr(io, "auto_pad");
    if (ap && ap->has_s && !(ap->s.len == 6 && !memcmp(ap->s.data, "NOTSET", 6)) &&
        !(ap->s.len == 5 && !memcmp(ap->s.data, "VALID", 5)))
        return ox_unsupported(c, "auto_pad '%.*s'", (int)ap->s.len, (const char *)ap->s.data);
    int64_t k[2] = {0, 0}, st[2] = {1, 1}, p[4] = {0, 0, 0, 0}, d[2] = {1, 1};
    ox_attr_ints(io, "kernel_shape", k, 2);
    ox_attr_ints(io, "strides", st, 2);
    ox_attr_ints(io, "pads", p, 4);
    ox_attr_ints(io, "dilations", d, 2);
    s->asym = false;
    for (int i = 0; i < s->n; i++) s->asym |= p[i] != p[i + s->n];
    for (int i = 0; i < 2 * s->n; i++)  /* nabla's own limits (conv2d: 2^30) */
        if (k[i % 2] < 0 || k[i % 2] > (1 << 30) || st[i % 2] < 1 || st[i % 2] > (1 << 30) ||
            p[i] < 0 || p[i] > (1 << 30) || d[i % 2] < 1 || d[i % 2] > (1 << 30))
            return ox_fail(c, NB_ERR_FORMAT, "kernel, strides, pads or dilations out of range");
    int off = 2 - s->n;  /* 1-D: the one axis is the width */
    s->kernel[0] = 1, s->stride[0] = 1, s->pad[0] = 0, s->dil[0] = 1;
    s->lo[0] = s->hi[0] = 0;
    for (int i = 0; i < s->n; i++) {
        s->kernel[off + i] = k[i], s->stride[off + i] = st[i];
        s->pad[off + i] = s->asym ? 0 : p[i], s->dil[off + i] = d[i];
        s->lo[off + i] = p[i], s->hi[off + i] = p[i + s->n];
    }
    return NB_OK;
}

/* x2 (already 2-D) with the asymmetric pads added explicitly, filled with
 * `value`; x2 itself when the pads are symmetric (the op pads then). */
static nb_node *pre_pad(ox_ctx *c, const spatial *s, nb_node *x2, double value)
{
    if (!s->asym || !x2) return x2;
    int64_t lo[4] = {0, 0, s->lo[0], s->lo[1]}, hi[4] = {0, 0, s->hi[0], s->hi[1]};
    return nb_pad(c->g, x2, lo, hi, value);
}

static nb_node *to_2d(ox_ctx *c, const spatial *s, nb_node *x) { return s->n == 1 ? unit_axis(c, x, 2, true) : x; }
static nb_node *from_2d(ox_ctx *c, const spatial *s, nb_node *y) { return s->n == 1 && y ? unit_axis(c, y, 2, false) : y; }

static nb_status cv_conv(ox_ctx *c, ox_node_io *io)
{
    nb_node *x = ox_in(c, io, 0), *w = ox_in(c, io, 1);
    nb_node *b = ox_has_in(io, 2) ? ox_in(c, io, 2) : NULL;
    spatial s;
    if (!x || !w || (ox_has_in(io, 2) && !b) || read_spatial(c, io, nb_node_rank(x), &s)) return c->st;
    nb_node *in[3] = {pre_pad(c, &s, to_2d(c, &s, x), 0), to_2d(c, &s, w), b};
    nb_attr at[4] = {{.name = "stride", .type = NB_ATTR_INTS, .n = 2, .i = {s.stride[0], s.stride[1]}},
                     {.name = "pad", .type = NB_ATTR_INTS, .n = 2, .i = {s.pad[0], s.pad[1]}},
                     {.name = "dilation", .type = NB_ATTR_INTS, .n = 2, .i = {s.dil[0], s.dil[1]}},
                     NB_AINT("groups", ox_attr_int(io, "group", 1))};
    nb_node *y = nb_op(c->g, "conv2d", NULL, in, b ? 3 : 2, at, 4);
    return OK_OR_FAIL(c, io->out[0] = from_2d(c, &s, y));
}

/* A node of shape [N, C, H, W] (its values unused): the sum of x over its
 * other axes, [N, 1, 1, 1], times zeros [1, C, H, W], so that N may be free. */
static nb_node *shaped_like(ox_ctx *c, nb_node *x, int64_t C, int64_t H, int64_t W)
{
    nb_tensor t;
    if (nb_tensor_alloc(&t, nb_node_dtype(x), 4, (int64_t[]){1, C, H, W})) return NULL;
    nb_node *zeros = nb_constant(c->g, NULL, &t);
    nb_tensor_free(&t);
    return nb_mul(c->g, nb_sum(c->g, x, (int64_t[]){1, 2, 3}, 3, true), zeros);
}

/* The gradient of a convolution for its input: nabla's conv2d_backward_input
 * with x as the output gradient and W [C_in, C_out/group, kH, kW] as the
 * convolution's filter; output_padding widens the output it is shaped by. */
static nb_status cv_conv_transpose(ox_ctx *c, ox_node_io *io)
{
    nb_node *x = ox_in(c, io, 0), *w = ox_in(c, io, 1);
    nb_node *b = ox_has_in(io, 2) ? ox_in(c, io, 2) : NULL;
    spatial s;
    if (!x || !w || (ox_has_in(io, 2) && !b) || read_spatial(c, io, nb_node_rank(x), &s)) return c->st;
    if (ox_attr(io, "output_shape")) return ox_unsupported(c, "attribute output_shape");
    int64_t op[2] = {0, 0}, opad[2] = {0, 0};
    int n_op = ox_attr_ints(io, "output_padding", op, 2);
    for (int i = 0; i < n_op && i < s.n; i++) opad[2 - s.n + i] = op[i];
    nb_node *x2 = to_2d(c, &s, x), *w2 = to_2d(c, &s, w);
    if (!x2 || !w2) return c->st ? c->st : ox_graph_fail(c);
    int64_t g = ox_attr_int(io, "group", 1), hw[2];
    for (int i = 0; i < 2; i++) {
        int64_t in = nb_node_dim(x2, 2 + i), k = nb_node_dim(w2, 2 + i);
        if (in < 0 || k < 0 || opad[i] < 0 || opad[i] >= s.stride[i])
            return ox_unsupported(c, "free spatial dimensions or output_padding >= stride");
        int64_t a, b;  /* (in - 1) stride - 2 pad + dil (k - 1) + 1 + output_padding */
        if (__builtin_mul_overflow(in - 1, s.stride[i], &a) || __builtin_mul_overflow(s.dil[i], k - 1, &b) ||
            __builtin_add_overflow(a, b, &a) || __builtin_sub_overflow(a, 2 * s.pad[i], &a) ||
            __builtin_add_overflow(a, 1 + opad[i], &hw[i]))
            return ox_fail(c, NB_ERR_OVERFLOW, "output size overflows");
    }
    int64_t cout = nb_node_dim(w2, 1) * g;
    if (cout < 1 || hw[0] < 1 || hw[1] < 1) return ox_fail(c, NB_ERR_FORMAT, "no output (filter or pads too large)");
    nb_node *in[3] = {x2, w2, shaped_like(c, x2, cout, hw[0], hw[1])};
    nb_attr at[4] = {{.name = "stride", .type = NB_ATTR_INTS, .n = 2, .i = {s.stride[0], s.stride[1]}},
                     {.name = "pad", .type = NB_ATTR_INTS, .n = 2, .i = {s.pad[0], s.pad[1]}},
                     {.name = "dilation", .type = NB_ATTR_INTS, .n = 2, .i = {s.dil[0], s.dil[1]}},
                     NB_AINT("groups", g)};
    nb_node *y = nb_op(c->g, "conv2d_backward_input", NULL, in, 3, at, 4);
    if (y && b) y = nb_add(c->g, y, nb_reshape(c->g, b, 3, (nb_dim[]){NB_DIM(cout), NB_DIM(1), NB_DIM(1)}));
    if (y && s.asym) {  /* pads crop the output: computed unpadded, then cropped */
        if (hw[0] <= s.lo[0] + s.hi[0] || hw[1] <= s.lo[1] + s.hi[1])
            return ox_fail(c, NB_ERR_FORMAT, "no output (pads too large)");
        y = nb_pad(c->g, y, (int64_t[]){0, 0, -s.lo[0], -s.lo[1]}, (int64_t[]){0, 0, -s.hi[0], -s.hi[1]}, 0);
    }
    return OK_OR_FAIL(c, io->out[0] = from_2d(c, &s, y));
}

static nb_status pool(ox_ctx *c, ox_node_io *io, const char *op)
{
    nb_node *x = ox_in(c, io, 0);
    spatial s;
    if (!x || read_spatial(c, io, nb_node_rank(x), &s)) return c->st;
    if (ox_attr_int(io, "ceil_mode", 0)) return ox_unsupported(c, "ceil_mode=1");
    if (s.dil[0] != 1 || s.dil[1] != 1) return ox_unsupported(c, "dilations");
    if (ox_attr_int(io, "storage_order", 0)) return ox_unsupported(c, "storage_order=1");
    if (io->n_out > 1 && *io->p->output[1]) return ox_unsupported(c, "output 'Indices'");
    /* ONNX's AveragePool excludes padded cells from the divisor by default
     * (count_include_pad=0): avg_pool2d's count_include_pad attribute, for
     * symmetric pads; asymmetric pads are added explicitly (-inf for max,
     * zeros for avg, which then count) and the op pools unpadded. */
    bool avg = !strcmp(op, "avg_pool2d"), count_pad = ox_attr_int(io, "count_include_pad", 0);
    if (s.asym && avg && !count_pad)
        return ox_unsupported(c, "count_include_pad=0 with asymmetric pads");
    if ((!avg || count_pad) && (2 * s.pad[0] > s.kernel[0] || 2 * s.pad[1] > s.kernel[1]))
        s.asym = true, s.pad[0] = s.pad[1] = 0;  /* pads beyond half the kernel: explicit too */
    if (2 * s.pad[0] > s.kernel[0] || 2 * s.pad[1] > s.kernel[1])  /* avg_pool2d's limit */
        return ox_unsupported(c, "count_include_pad=0 with pads larger than half the kernel");
    nb_node *in = pre_pad(c, &s, to_2d(c, &s, x), avg ? 0 : -INFINITY);
    nb_attr at[4] = {{.name = "size", .type = NB_ATTR_INTS, .n = 2, .i = {s.kernel[0], s.kernel[1]}},
                     {.name = "stride", .type = NB_ATTR_INTS, .n = 2, .i = {s.stride[0], s.stride[1]}},
                     {.name = "pad", .type = NB_ATTR_INTS, .n = 2, .i = {s.pad[0], s.pad[1]}},
                     NB_ABOOL("count_include_pad", count_pad)};
    bool pads = s.pad[0] || s.pad[1];
    nb_node *y = nb_op(c->g, op, NULL, &in, 1, at, avg && pads && !count_pad ? 4 : 3);
    return OK_OR_FAIL(c, io->out[0] = from_2d(c, &s, y));
}

static nb_status cv_max_pool(ox_ctx *c, ox_node_io *io) { return pool(c, io, "max_pool2d"); }
static nb_status cv_avg_pool(ox_ctx *c, ox_node_io *io) { return pool(c, io, "avg_pool2d"); }

/* mean (max) over every axis after the channels, kept */
static nb_status global_pool(ox_ctx *c, ox_node_io *io, bool max)
{
    nb_node *x = ox_in(c, io, 0);
    if (!x) return c->st;
    int64_t axes[NB_MAX_DIMS];
    int n = 0;
    for (int d = 2; d < nb_node_rank(x); d++) axes[n++] = d;
    if (!n) return ox_unsupported(c, "input of rank %d", nb_node_rank(x));
    return OK_OR_FAIL(c, io->out[0] = max ? nb_max(c->g, x, axes, n, true) : nb_mean(c->g, x, axes, n, true));
}

static nb_status cv_global_avg(ox_ctx *c, ox_node_io *io) { return global_pool(c, io, false); }
static nb_status cv_global_max(ox_ctx *c, ox_node_io *io) { return global_pool(c, io, true); }

/* ---- normalisation --------------------------------------------------------- */

/* v [C] as [C, 1, ..., 1] against x [N, C, ...]. */
static nb_node *per_channel(ox_ctx *c, nb_node *v, int x_rank)
{
    nb_dim d[NB_MAX_DIMS] = {NB_DIM(nb_node_dim(v, 0))};
    for (int i = 1; i < x_rank - 1; i++) d[i] = NB_DIM(1);
    return nb_node_rank(v) == 1 && x_rank > 2 ? nb_reshape(c->g, v, x_rank - 1, d) : v;
}

/* Inference: (x - mean) * scale / sqrt(var + eps) + B, composed, so that the
 * statistics may be inputs as well as initializers. */
static nb_status cv_batchnorm(ox_ctx *c, ox_node_io *io)
{
    if (ox_attr_int(io, "training_mode", 0) || !ox_attr_int(io, "is_test", 1))
        return ox_unsupported(c, "training mode");
    if (!ox_attr_int(io, "spatial", 1)) return ox_unsupported(c, "spatial=0");
    for (int i = 1; i < io->n_out; i++)
        if (*io->p->output[i]) return ox_unsupported(c, "output %d (training statistics)", i);
    nb_node *v[5];
    for (int i = 0; i < 5; i++)
        if (!(v[i] = ox_in(c, io, i))) return c->st;
    nb_graph *g = c->g;
    int r = nb_node_rank(v[0]);
    double eps = ox_attr_float(io, "epsilon", 1e-5);
    nb_node *inv = nb_pow(g, nb_scale(g, per_channel(c, v[4], r), 1, eps), -0.5);
    nb_node *y = nb_mul(g, nb_sub(g, v[0], per_channel(c, v[3], r)), nb_mul(g, inv, per_channel(c, v[1], r)));
    return OK_OR_FAIL(c, io->out[0] = nb_add(g, y, per_channel(c, v[2], r)));
}

/* ONNX's optional outputs Mean and InvStdDev, over axes axis..last, kept. */
static nb_status layernorm_stats(ox_ctx *c, ox_node_io *io, nb_node *x, int64_t axis, double eps)
{
    int r = nb_node_rank(x), a;
    if (ox_axis(c, axis, r, &a)) return c->st;
    int64_t axes[NB_MAX_DIMS];
    for (int i = a; i < r; i++) axes[i - a] = i;
    nb_graph *g = c->g;
    nb_node *mean = nb_mean(g, x, axes, r - a, true), *d = nb_sub(g, x, mean);
    if (io->n_out > 1 && *io->p->output[1]) io->out[1] = mean;
    if (io->n_out > 2 && *io->p->output[2])
        io->out[2] = nb_pow(g, nb_scale(g, nb_mean(g, nb_mul(g, d, d), axes, r - a, true), 1, eps), -0.5);
    return mean && (io->n_out < 3 || io->out[2] || !*io->p->output[2]) ? NB_OK : ox_graph_fail(c);
}

static nb_status cv_layernorm(ox_ctx *c, ox_node_io *io)
{
    if (ox_attr_int(io, "stash_type", 1) != 1) return ox_unsupported(c, "stash_type");
    nb_node *x = ox_in(c, io, 0), *gam = ox_in(c, io, 1), *beta = NULL;
    if (!x || !gam) return c->st;
    if (ox_has_in(io, 2) && !(beta = ox_in(c, io, 2))) return c->st;
    if (!beta) beta = nb_scale(c->g, gam, 0, 0);  /* zeros of the scale's shape */
    int64_t axis = ox_attr_int(io, "axis", -1);
    double eps = ox_attr_float(io, "epsilon", 1e-5);
    if (io->n_out > 1 && layernorm_stats(c, io, x, axis, eps)) return c->st;
    return OK_OR_FAIL(c, io->out[0] = nb_layernorm(c->g, x, gam, beta, axis, eps));
}

/* ---- softmax ---------------------------------------------------------------- */

/* Before opset 13, softmax(axis) is over the flattened axes axis..last. */
static nb_status softmax_like(ox_ctx *c, ox_node_io *io, bool log)
{
    nb_node *x = ox_in(c, io, 0);
    if (!x) return c->st;
    int r = nb_node_rank(x), a;
    if (ox_axis(c, ox_attr_int(io, "axis", c->opset < 13 ? 1 : -1), r, &a)) return c->st;
    nb_node *(*fn)(nb_graph *, nb_node *, int64_t) = log ? nb_log_softmax : nb_softmax;
    if (c->opset >= 13 || a == r - 1) return OK_OR_FAIL(c, io->out[0] = fn(c->g, x, a));
    nb_node *flat = nb_flatten(c->g, x, a);
    nb_node *in[2] = {fn(c->g, flat, 1), x};
    return OK_OR_FAIL(c, io->out[0] = nb_op(c->g, "reshape_like", NULL, in, 2, NULL, 0));
}

static nb_status cv_softmax(ox_ctx *c, ox_node_io *io) { return softmax_like(c, io, false); }
static nb_status cv_log_softmax(ox_ctx *c, ox_node_io *io) { return softmax_like(c, io, true); }

/* ---- losses (mean over N, no weights) ------------------------------------- */

static nb_status loss(ox_ctx *c, ox_node_io *io, bool softmax)
{
    const Onnx__AttributeProto *r = ox_attr(io, "reduction");
    if (r && r->has_s && !(r->s.len == 4 && !memcmp(r->s.data, "mean", 4)))
        return ox_unsupported(c, "reduction '%.*s'", (int)r->s.len, (const char *)r->s.data);
    if (io->n_in > 2 || (io->n_out > 1 && *io->p->output[1]))
        return ox_unsupported(c, "weights or log_prob output");
    nb_node *x = ox_in(c, io, 0), *t = ox_in(c, io, 1);
    if (!x || !t) return c->st;
    if (nb_node_rank(x) != 2) return ox_unsupported(c, "input of rank %d (nabla's losses take [N, C])", nb_node_rank(x));
    nb_node *y = softmax ? nb_softmax_cross_entropy(c->g, x, t) : nb_nll_loss(c->g, x, t);
    return OK_OR_FAIL(c, io->out[0] = y);
}

static nb_status cv_nll(ox_ctx *c, ox_node_io *io) { return loss(c, io, false); }
static nb_status cv_sce(ox_ctx *c, ox_node_io *io) { return loss(c, io, true); }

const ox_op ox_ops_nn[] = {
    {"MatMul", cv_matmul, ""}, {"Gemm", cv_gemm, "alpha beta transA transB broadcast"},
    {"Conv", cv_conv, "auto_pad dilations group kernel_shape pads strides"},
    {"ConvTranspose", cv_conv_transpose,
     "auto_pad dilations group kernel_shape output_padding output_shape pads strides"},
    {"MaxPool", cv_max_pool, "auto_pad ceil_mode dilations kernel_shape pads storage_order strides"},
    {"AveragePool", cv_avg_pool, "auto_pad ceil_mode count_include_pad kernel_shape pads strides"},
    {"GlobalAveragePool", cv_global_avg, ""}, {"GlobalMaxPool", cv_global_max, ""},
    {"BatchNormalization", cv_batchnorm, "epsilon momentum spatial is_test training_mode"},
    {"LayerNormalization", cv_layernorm, "axis epsilon stash_type"},
    {"Softmax", cv_softmax, "axis"}, {"LogSoftmax", cv_log_softmax, "axis"},
    {"NegativeLogLikelihoodLoss", cv_nll, "reduction"},
    {"SoftmaxCrossEntropyLoss", cv_sce, "reduction"},
};
const size_t ox_n_ops_nn = sizeof ox_ops_nn / sizeof *ox_ops_nn;

/* Converters of ONNX ops nabla has no op for, composed from ops it has:
 * hyperbolic and other elementwise functions, Trilu, DepthToSpace,
 * SpaceToDepth, Tile, InstanceNormalization, MeanVarianceNormalization. */
#include <math.h>
#include <string.h>

#include "onnx_internal.h"

#define DONE(c, io, y) (((io)->out[0] = (y)) ? NB_OK : ox_graph_fail(c))

/* A rank-0 constant of x's dtype. */
static nb_node *scalar(ox_ctx *c, nb_node *x, double v)
{
    nb_tensor t;
    if (nb_node_dtype(x) == NB_I32 && !(v >= INT32_MIN && v <= INT32_MAX))
        return ox_unsupported(c, "i32 input (%g is no i32)", v), NULL;
    if (nb_tensor_alloc(&t, nb_node_dtype(x), 0, NULL)) return NULL;
    if (t.dtype == NB_F64) *(double *)t.data = v;
    else if (t.dtype == NB_F32) *(float *)t.data = (float)v;
    else *(int32_t *)t.data = (int32_t)v;
    nb_node *k = nb_constant(c->g, NULL, &t);
    nb_tensor_free(&t);
    return k;
}

/* ---- elementwise -------------------------------------------------------- */

typedef nb_node *(*compose_fn)(ox_ctx *c, ox_node_io *io, nb_node *x);

static nb_status composed(ox_ctx *c, ox_node_io *io, compose_fn fn)
{
    nb_node *x = ox_in(c, io, 0);
    return x ? DONE(c, io, fn(c, io, x)) : c->st;
}

static nb_node *sinh_(ox_ctx *c, ox_node_io *io, nb_node *x)
{
    (void)io;
    return nb_scale(c->g, nb_sub(c->g, nb_exp(c->g, x), nb_exp(c->g, nb_neg(c->g, x))), 0.5, 0);
}
static nb_node *cosh_(ox_ctx *c, ox_node_io *io, nb_node *x)
{
    (void)io;
    return nb_scale(c->g, nb_add(c->g, nb_exp(c->g, x), nb_exp(c->g, nb_neg(c->g, x))), 0.5, 0);
}
static nb_node *tan_(ox_ctx *c, ox_node_io *io, nb_node *x)
{
    (void)io;
    return nb_div(c->g, nb_sin(c->g, x), nb_cos(c->g, x));
}
/* sign(x) log(|x| + sqrt(x^2 + 1)): accurate for negative x too */
static nb_node *asinh_(ox_ctx *c, ox_node_io *io, nb_node *x)
{
    (void)io;
    nb_graph *g = c->g;
    nb_node *a = nb_abs(g, x);
    nb_node *l = nb_log(g, nb_add(g, a, nb_sqrt(g, nb_scale(g, nb_mul(g, x, x), 1, 1))));
    return nb_mul(g, nb_op(g, "sign", NULL, &x, 1, NULL, 0), l);
}
static nb_node *acosh_(ox_ctx *c, ox_node_io *io, nb_node *x)
{
    (void)io;
    nb_graph *g = c->g;
    return nb_log(g, nb_add(g, x, nb_sqrt(g, nb_scale(g, nb_mul(g, x, x), 1, -1))));
}
/* x tanh(softplus(x)) */
static nb_node *mish_(ox_ctx *c, ox_node_io *io, nb_node *x)
{
    (void)io;
    return nb_mul(c->g, x, nb_tanh(c->g, nb_softplus(c->g, x, 1, 20)));
}
/* alpha elu(x / alpha) */
static nb_node *celu_(ox_ctx *c, ox_node_io *io, nb_node *x)
{
    double a = ox_attr_float(io, "alpha", 1);
    return nb_scale(c->g, nb_elu(c->g, nb_scale(c->g, x, 1 / a, 0), 1), a, 0);
}
/* x + bias below -lambd, x - bias above lambd, else 0 */
static nb_node *shrink_(ox_ctx *c, ox_node_io *io, nb_node *x)
{
    nb_graph *g = c->g;
    double l = ox_attr_float(io, "lambd", 0.5), b = ox_attr_float(io, "bias", 0);
    nb_node *zero = scalar(c, x, 0);
    nb_node *hi = nb_where(g, nb_greater(g, x, scalar(c, x, l)), nb_scale(g, x, 1, -b), zero);
    return nb_where(g, nb_less(g, x, scalar(c, x, -l)), nb_scale(g, x, 1, b), hi);
}
/* NaN is the one value not equal to itself */
static nb_node *isnan_(ox_ctx *c, ox_node_io *io, nb_node *x)
{
    (void)io;
    return nb_scale(c->g, nb_equal(c->g, x, x), -1, 1);
}
static nb_node *isinf_(ox_ctx *c, ox_node_io *io, nb_node *x)
{
    bool pos = ox_attr_int(io, "detect_positive", 1), neg = ox_attr_int(io, "detect_negative", 1);
    nb_node *p = pos ? nb_equal(c->g, x, scalar(c, x, INFINITY)) : NULL;
    nb_node *n = neg ? nb_equal(c->g, x, scalar(c, x, -INFINITY)) : NULL;
    return p && n ? nb_add(c->g, p, n) : p ? p : n ? n : nb_scale(c->g, nb_equal(c->g, x, x), 0, 0);
}

#define COMPOSED(CV, FN) \
    static nb_status CV(ox_ctx *c, ox_node_io *io) { return composed(c, io, FN); }
COMPOSED(cv_sinh, sinh_)
COMPOSED(cv_cosh, cosh_)
COMPOSED(cv_tan, tan_)
COMPOSED(cv_asinh, asinh_)
COMPOSED(cv_acosh, acosh_)
COMPOSED(cv_mish, mish_)
COMPOSED(cv_celu, celu_)
COMPOSED(cv_shrink, shrink_)
COMPOSED(cv_isnan, isnan_)
COMPOSED(cv_isinf, isinf_)

/* ---- Trilu: x times a constant 0/1 mask of its last two axes -------------- */

static nb_status cv_trilu(ox_ctx *c, ox_node_io *io)
{
    nb_node *x = ox_in(c, io, 0);
    double k = 0;
    if (!x || ox_known_scalar(c, io, 1, 0, &k)) return c->st;
    if (!(fabs(k) < 1e15)) return ox_unsupported(c, "k %g", k);
    int r = nb_node_rank(x);
    int64_t shape[2] = {r >= 2 ? nb_node_dim(x, r - 2) : -1, r >= 2 ? nb_node_dim(x, r - 1) : -1};
    if (shape[0] < 0 || shape[1] < 0) return ox_unsupported(c, "input without two fixed trailing axes");
    bool upper = ox_attr_int(io, "upper", 1);
    nb_tensor t;
    if (nb_tensor_alloc(&t, nb_node_dtype(x), 2, shape)) return ox_fail(c, NB_ERR_NOMEM, "%s", nb_last_error());
    for (int64_t i = 0; i < shape[0]; i++)
        for (int64_t j = 0; j < shape[1]; j++) {
            bool keep = upper ? j - i >= (int64_t)k : j - i <= (int64_t)k;
            size_t at = (size_t)(i * shape[1] + j);
            if (t.dtype == NB_F32) ((float *)t.data)[at] = keep;
            else if (t.dtype == NB_F64) ((double *)t.data)[at] = keep;
            else ((int32_t *)t.data)[at] = keep;
        }
    nb_node *mask = nb_constant(c->g, NULL, &t);
    nb_tensor_free(&t);
    return DONE(c, io, nb_mul(c->g, x, mask));
}

/* ---- rearrangements -------------------------------------------------------- */

/* Axis d of x as a dim (a free dimension as its symbol); false when neither. */
static bool dim_of(ox_ctx *c, nb_node *x, int d, nb_dim *out)
{
    int64_t n = nb_node_dim(x, d);
    const char *s = n < 0 ? nb_node_dim_sym(c->g, x, d) : NULL;
    *out = s ? NB_SYM(s) : NB_DIM(n);
    return n >= 0 || s;
}

/* reshape to `mid`, transpose by perm, reshape to `out` (ranks 6 and 4) */
static nb_status rearrange(ox_ctx *c, ox_node_io *io, nb_node *x, const nb_dim *mid,
                           const int64_t *perm, const nb_dim *out)
{
    nb_node *y = nb_reshape(c->g, nb_transpose(c->g, nb_reshape(c->g, x, 6, mid), perm, 6), 4, out);
    return DONE(c, io, y);
}

static nb_status depth_space(ox_ctx *c, ox_node_io *io, bool to_space)
{
    nb_node *x = ox_in(c, io, 0);
    if (!x) return c->st;
    int64_t b = ox_attr_int(io, "blocksize", 0), C = nb_node_dim(x, 1), H = nb_node_dim(x, 2), W = nb_node_dim(x, 3);
    nb_dim n;
    if (nb_node_rank(x) != 4 || b < 1 || b > 4096 || C < 0 || H < 0 || W < 0 || !dim_of(c, x, 0, &n))
        return ox_unsupported(c, "input (needs [N, C, H, W] with fixed C, H, W and a blocksize)");
    const Onnx__AttributeProto *m = ox_attr(io, "mode");
    bool crd = m && m->has_s && m->s.len == 3 && !memcmp(m->s.data, "CRD", 3);
    if (to_space) {
        if (C % (b * b)) return ox_fail(c, NB_ERR_FORMAT, "channels %lld not divisible by blocksize^2", (long long)C);
        int64_t c2 = C / (b * b);
        nb_dim dcr[6] = {n, NB_DIM(b), NB_DIM(b), NB_DIM(c2), NB_DIM(H), NB_DIM(W)};
        nb_dim cr[6] = {n, NB_DIM(c2), NB_DIM(b), NB_DIM(b), NB_DIM(H), NB_DIM(W)};
        nb_dim out[4] = {n, NB_DIM(c2), NB_DIM(H * b), NB_DIM(W * b)};
        return crd ? rearrange(c, io, x, cr, (const int64_t[]){0, 1, 4, 2, 5, 3}, out)
                   : rearrange(c, io, x, dcr, (const int64_t[]){0, 3, 4, 1, 5, 2}, out);
    }
    if (H % b || W % b) return ox_fail(c, NB_ERR_FORMAT, "height or width not divisible by blocksize");
    nb_dim mid[6] = {n, NB_DIM(C), NB_DIM(H / b), NB_DIM(b), NB_DIM(W / b), NB_DIM(b)};
    nb_dim out[4] = {n, NB_DIM(C * b * b), NB_DIM(H / b), NB_DIM(W / b)};
    return rearrange(c, io, x, mid, (const int64_t[]){0, 3, 5, 1, 2, 4}, out);
}

static nb_status cv_depth_to_space(ox_ctx *c, ox_node_io *io) { return depth_space(c, io, true); }
static nb_status cv_space_to_depth(ox_ctx *c, ox_node_io *io) { return depth_space(c, io, false); }

/* repeats known: copies joined along each repeated axis */
static nb_status cv_tile(ox_ctx *c, ox_node_io *io)
{
    nb_node *x = ox_in(c, io, 0);
    const ox_const *rep = x ? ox_known(c, io, 1, "repeats") : NULL;
    if (!rep) return c->st;
    if ((int)rep->n != nb_node_rank(x)) return ox_fail(c, NB_ERR_FORMAT, "%zu repeats for rank %d", rep->n, nb_node_rank(x));
    for (size_t d = 0; d < rep->n && x; d++) {
        if (rep->i[d] < 1 || rep->i[d] > NB_MAX_INPUTS) return ox_unsupported(c, "repeat count %lld", (long long)rep->i[d]);
        nb_node *copies[NB_MAX_INPUTS];
        for (int64_t k = 0; k < rep->i[d]; k++) copies[k] = x;
        if (rep->i[d] > 1) x = nb_concat(c->g, copies, (int)rep->i[d], (int64_t)d);
    }
    if (x && x == io->in[0]->node) x = nb_scale(c->g, x, 1, 0);
    return DONE(c, io, x);
}

/* ---- normalisations over axes ------------------------------------------------ */

/* (x - mean) / sqrt(var + eps) over the axes, statistics kept for broadcast */
static nb_node *normalise(ox_ctx *c, nb_node *x, const int64_t *axes, int n, double eps)
{
    nb_graph *g = c->g;
    nb_node *d = nb_sub(g, x, nb_mean(g, x, axes, n, true));
    nb_node *var = nb_mean(g, nb_mul(g, d, d), axes, n, true);
    return nb_mul(g, d, nb_pow(g, nb_scale(g, var, 1, eps), -0.5));
}

static nb_status cv_mvn(ox_ctx *c, ox_node_io *io)
{
    nb_node *x = ox_in(c, io, 0);
    if (!x) return c->st;
    int64_t axes[NB_MAX_DIMS] = {0, 2, 3};
    int n = ox_attr_ints(io, "axes", axes, NB_MAX_DIMS);
    return DONE(c, io, normalise(c, x, axes, n < 0 ? 3 : n, 1e-9));
}

static nb_status cv_instance_norm(ox_ctx *c, ox_node_io *io)
{
    nb_node *x = ox_in(c, io, 0), *s = ox_in(c, io, 1), *b = ox_in(c, io, 2);
    if (!x || !s || !b) return c->st;
    int r = nb_node_rank(x);
    int64_t axes[NB_MAX_DIMS];
    nb_dim ch[NB_MAX_DIMS] = {NB_DIM(nb_node_dim(s, 0))};
    for (int d = 2; d < r; d++) axes[d - 2] = d, ch[d - 1] = NB_DIM(1);
    if (r < 3) return ox_unsupported(c, "input of rank %d", r);
    nb_graph *g = c->g;
    nb_node *y = normalise(c, x, axes, r - 2, ox_attr_float(io, "epsilon", 1e-5));
    y = nb_add(g, nb_mul(g, y, nb_reshape(g, s, r - 1, ch)), nb_reshape(g, b, r - 1, ch));
    return DONE(c, io, y);
}

const ox_op ox_ops_more[] = {
    {"Sinh", cv_sinh, ""}, {"Cosh", cv_cosh, ""}, {"Tan", cv_tan, ""}, {"Asinh", cv_asinh, ""},
    {"Acosh", cv_acosh, ""}, {"Mish", cv_mish, ""}, {"Celu", cv_celu, "alpha"},
    {"Shrink", cv_shrink, "bias lambd"}, {"IsNaN", cv_isnan, ""},
    {"IsInf", cv_isinf, "detect_negative detect_positive"}, {"Trilu", cv_trilu, "upper"},
    {"DepthToSpace", cv_depth_to_space, "blocksize mode"},
    {"SpaceToDepth", cv_space_to_depth, "blocksize"}, {"Tile", cv_tile, ""},
    {"MeanVarianceNormalization", cv_mvn, "axes"},
    {"InstanceNormalization", cv_instance_norm, "epsilon"},
};
const size_t ox_n_ops_more = sizeof ox_ops_more / sizeof *ox_ops_more;

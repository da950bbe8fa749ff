/* Converters of ONNX ops that move data without arithmetic: Shape, Reshape,
 * Flatten, Squeeze, Unsqueeze, Concat, Gather, Constant, Cast, Identity...
 * On known values (shape computations) they are folded at load time, free
 * dimensions travelling as symbols; on graph nodes they become nabla's
 * reshape, transpose, concat, slice and embedding. */
#include <math.h>
#include <string.h>

#include "onnx_internal.h"

/* ---- known values ------------------------------------------------------ */

/* dst = src's elements under a new shape (same count). */
static nb_status known_reshape(ox_ctx *c, const ox_const *src, int rank, const int64_t *shape, ox_const *dst)
{
    nb_status st = ox_const_alloc(c, dst, src->type, rank, shape);
    if (st) return st;
    if (dst->n != src->n) return ox_const_free(dst), NB_ERR_SHAPE;
    if (src->i) memcpy(dst->i, src->i, src->n * sizeof *src->i);
    else memcpy(dst->f, src->f, src->n * sizeof *src->f);
    if (src->sym) {
        dst->sym = nb_calloc(src->n ? src->n : 1, sizeof *dst->sym);
        if (!dst->sym) return ox_const_free(dst), NB_ERR_NOMEM;
        memcpy((void *)dst->sym, src->sym, src->n * sizeof *src->sym);
    }
    return NB_OK;
}

/* The input is known and no param (whose value training may change). */
static bool foldable(const ox_node_io *io, int i)
{
    return ox_has_in(io, i) && io->in[i]->has_k && !io->in[i]->initializer;
}

/* The node's shape as dims (a free dimension as its symbol). */
static int node_dims(ox_ctx *c, nb_node *x, nb_dim *dims)
{
    int r = nb_node_rank(x);
    for (int d = 0; d < r; d++) {
        int64_t n = nb_node_dim(x, d);
        const char *s = n < 0 ? nb_node_dim_sym(c->g, x, d) : NULL;
        if (n < 0 && !s) {
            ox_unsupported(c, "shape: axis %d of '%s' is a product of free dimensions", d,
                           nb_node_name(x));
            return -1;
        }
        dims[d] = n < 0 ? NB_SYM(s) : NB_DIM(n);
    }
    return r;
}

static nb_status set_reshape(ox_ctx *c, ox_node_io *io, nb_node *x, int rank, const nb_dim *dims)
{
    return (io->out[0] = nb_reshape(c->g, x, rank, dims)) ? NB_OK : ox_graph_fail(c);
}

/* ---- Shape, Size, Constant, ConstantOfShape ----------------------------- */

static nb_status cv_shape(ox_ctx *c, ox_node_io *io)
{
    nb_dim dims[NB_MAX_DIMS];
    int r;
    if (foldable(io, 0)) {
        r = io->in[0]->k.rank;
        for (int d = 0; d < r; d++) dims[d] = NB_DIM(io->in[0]->k.shape[d]);
    } else {
        nb_node *x = ox_in(c, io, 0);
        if (!x || (r = node_dims(c, x, dims)) < 0) return c->st;
    }
    int64_t start = ox_attr_int(io, "start", 0), end = ox_attr_int(io, "end", r);
    start = start < 0 ? start + r : start, end = end < 0 ? end + r : end;
    start = start < 0 ? 0 : start > r ? r : start, end = end < start ? start : end > r ? r : end;
    int64_t n = end - start;
    ox_const *k = &io->outk[0];
    if (ox_const_alloc(c, k, OX_INT64, 1, &n)) return ox_fail(c, NB_ERR_NOMEM, "out of memory");
    io->has_outk[0] = true;
    for (int64_t d = start; d < end; d++) {
        k->i[d - start] = dims[d].size;
        if (!dims[d].sym) continue;
        if (!k->sym && !(k->sym = nb_calloc((size_t)n, sizeof *k->sym)))
            return ox_fail(c, NB_ERR_NOMEM, "out of memory");
        k->sym[d - start] = dims[d].sym;
    }
    return NB_OK;
}

static nb_status cv_size(ox_ctx *c, ox_node_io *io)
{
    nb_node *x = foldable(io, 0) ? NULL : ox_in(c, io, 0);
    if (!x && !foldable(io, 0)) return c->st;
    int64_t n = 1;
    for (int d = 0; x && d < nb_node_rank(x); d++) {
        if (nb_node_dim(x, d) < 0) return ox_unsupported(c, "size of a tensor with free dimensions");
        n *= nb_node_dim(x, d);
    }
    if (ox_const_alloc(c, &io->outk[0], OX_INT64, 0, NULL)) return ox_fail(c, NB_ERR_NOMEM, "oom");
    io->outk[0].i[0] = x ? n : (int64_t)io->in[0]->k.n;
    io->has_outk[0] = true;
    return NB_OK;
}

static nb_status cv_constant(ox_ctx *c, ox_node_io *io)
{
    const Onnx__AttributeProto *a = ox_attr(io, "value");
    char why[300];
    ox_const *k = &io->outk[0];
    if (a && a->t) {
        nb_status st = ox_const_from_proto(c, a->t, k, why, sizeof why);
        if (st) return ox_fail(c, st, "%s", why);
    } else if ((a = ox_attr(io, "value_float")) || (a = ox_attr(io, "value_int"))) {
        bool f = a->has_f;
        if (ox_const_alloc(c, k, f ? OX_FLOAT : OX_INT64, 0, NULL)) return ox_fail(c, NB_ERR_NOMEM, "oom");
        if (f) k->f[0] = a->f;
        else k->i[0] = a->i;
    } else if ((a = ox_attr(io, "value_floats")) || (a = ox_attr(io, "value_ints"))) {
        bool f = a->n_floats > 0;
        int64_t n = (int64_t)(f ? a->n_floats : a->n_ints);
        if (ox_const_alloc(c, k, f ? OX_FLOAT : OX_INT64, 1, &n)) return ox_fail(c, NB_ERR_NOMEM, "oom");
        for (int64_t j = 0; j < n; j++) f ? (void)(k->f[j] = a->floats[j]) : (void)(k->i[j] = a->ints[j]);
    } else {
        return ox_unsupported(c, "attribute (Constant needs value, value_float(s) or value_int(s))");
    }
    io->has_outk[0] = true;
    return NB_OK;
}

static nb_status cv_constant_of_shape(ox_ctx *c, ox_node_io *io)
{
    const ox_const *s = ox_known(c, io, 0, "shape");
    if (!s) return c->st;
    if (s->sym) return ox_unsupported(c, "shape with free dimensions (a runtime fill)");
    if (s->n > NB_MAX_DIMS) return ox_unsupported(c, "rank %zu", s->n);
    ox_const v = {0};
    const Onnx__AttributeProto *a = ox_attr(io, "value");
    char why[300];
    if (a && a->t && ox_const_from_proto(c, a->t, &v, why, sizeof why)) return ox_fail(c, NB_ERR_FORMAT, "%s", why);
    ox_const *k = &io->outk[0];
    nb_status st = ox_const_alloc(c, k, a && a->t ? v.type : OX_FLOAT, (int)s->n, s->i);
    io->has_outk[0] = !st;
    for (size_t j = 0; !st && j < k->n; j++) {
        if (k->i) k->i[j] = v.n ? v.i[0] : 0;
        else k->f[j] = v.n ? v.f[0] : 0;
    }
    ox_const_free(&v);
    return st ? ox_fail(c, st, "shape: %s", nb_status_str(st)) : NB_OK;
}

/* ---- same data, another shape -------------------------------------------- */

static nb_status identity(ox_ctx *c, ox_node_io *io)
{
    if (foldable(io, 0)) {
        nb_status st = known_reshape(c, &io->in[0]->k, io->in[0]->k.rank, io->in[0]->k.shape, &io->outk[0]);
        io->has_outk[0] = !st;
        return st ? ox_fail(c, st, "%s", nb_status_str(st)) : NB_OK;
    }
    return (io->out[0] = ox_in(c, io, 0)) ? NB_OK : c->st;
}

static nb_status cv_identity(ox_ctx *c, ox_node_io *io) { return identity(c, io); }

/* Inference: dropout is the identity, its mask all true (for a fixed shape). */
static nb_status cv_dropout(ox_ctx *c, ox_node_io *io)
{
    double training = 0;
    if (ox_known_scalar(c, io, 2, 0, &training)) return c->st;
    if (training != 0 || ox_attr_int(io, "is_test", 1) == 0)
        return ox_unsupported(c, "training mode (nabla's dropout draws other masks)");
    nb_status st = identity(c, io);
    if (st || io->n_out < 2 || !*io->p->output[1]) return st;
    nb_node *x = io->out[0];
    int64_t shape[NB_MAX_DIMS];
    int r = x ? nb_node_rank(x) : io->in[0]->k.rank;
    for (int d = 0; d < r; d++)
        if ((shape[d] = x ? nb_node_dim(x, d) : io->in[0]->k.shape[d]) < 0)
            return ox_unsupported(c, "output 'mask' of a tensor with free dimensions");
    if (ox_const_alloc(c, &io->outk[1], OX_BOOL, r, shape)) return ox_fail(c, NB_ERR_NOMEM, "out of memory");
    io->has_outk[1] = true;
    for (size_t j = 0; j < io->outk[1].n; j++) io->outk[1].i[j] = 1;
    return NB_OK;
}

/* Casts between types nabla keeps in one dtype are the identity; known
 * values are converted (float to integer truncates, as ONNX). */
static nb_status cv_cast(ox_ctx *c, ox_node_io *io)
{
    int to = (int)ox_attr_int(io, "to", 0);
    if (!ox_is_int_type(to) && to != OX_FLOAT && to != OX_DOUBLE) return ox_unsupported(c, "'to' type %d", to);
    if (foldable(io, 0)) {
        const ox_const *s = &io->in[0]->k;
        ox_const *k = &io->outk[0];
        if (ox_const_alloc(c, k, to, s->rank, s->shape)) return ox_fail(c, NB_ERR_NOMEM, "out of memory");
        io->has_outk[0] = true;
        for (size_t j = 0; j < k->n; j++) {
            double v = s->i ? (double)s->i[j] : s->f[j];
            if (k->i && !s->i && !(fabs(v) < 9e18))
                return ox_unsupported(c, "cast of %g to an integer type", v);
            if (k->i) k->i[j] = s->i ? s->i[j] : (to == OX_BOOL ? v != 0 : (int64_t)v);
            else k->f[j] = to == OX_FLOAT ? (float)v : v;
        }
        if (s->sym && k->i) {  /* a shape with free dimensions, cast int64 -> int32 */
            if (!(k->sym = nb_calloc(k->n, sizeof *k->sym))) return ox_fail(c, NB_ERR_NOMEM, "oom");
            memcpy((void *)k->sym, s->sym, k->n * sizeof *k->sym);
        }
        return NB_OK;
    }
    nb_node *x = ox_in(c, io, 0);
    if (!x) return c->st;
    if (nb_node_dtype(x) != ox_dtype(c, to))
        return ox_unsupported(c, "cast from %s to ONNX type %d (nabla has no cast op)",
                              nb_dtype_name(nb_node_dtype(x)), to);
    io->out[0] = x;
    return NB_OK;
}

/* Reshape's target: 0 copies the input's axis (allowzero 0), -1 is inferred,
 * free dimensions stay symbols. */
static nb_status cv_reshape(ox_ctx *c, ox_node_io *io)
{
    const ox_const *s = ox_known(c, io, 1, "shape");
    if (!s) return c->st;
    if (s->n > NB_MAX_DIMS) return ox_unsupported(c, "rank %zu", s->n);
    if (ox_attr_int(io, "allowzero", 0)) return ox_unsupported(c, "attribute allowzero=1");
    nb_dim in[NB_MAX_DIMS], out[NB_MAX_DIMS];
    int r = 0;
    nb_node *x = foldable(io, 0) ? NULL : ox_in(c, io, 0);
    if (foldable(io, 0)) {
        r = io->in[0]->k.rank;
        for (int d = 0; d < r; d++) in[d] = NB_DIM(io->in[0]->k.shape[d]);
    } else if (!x || (r = node_dims(c, x, in)) < 0) {
        return c->st;
    }
    for (size_t d = 0; d < s->n; d++) {
        if (s->sym && s->sym[d]) out[d] = NB_SYM(s->sym[d]);
        else if (s->i[d] == 0 && (int)d < r) out[d] = in[d];
        else out[d] = NB_DIM(s->i[d]);
    }
    if (x) return set_reshape(c, io, x, (int)s->n, out);
    int64_t shape[NB_MAX_DIMS], known = 1, hole = -1;
    for (size_t d = 0; d < s->n; d++) {
        if (out[d].sym) return ox_unsupported(c, "free dimension in a known tensor's shape");
        shape[d] = out[d].size;
        if (shape[d] == -1) hole = (int64_t)d;
        else if (shape[d] < 0 || __builtin_mul_overflow(known, shape[d], &known))
            return ox_fail(c, NB_ERR_FORMAT, "shape entry %lld", (long long)shape[d]);
    }
    if (hole >= 0) shape[hole] = known ? (int64_t)io->in[0]->k.n / known : 0;
    nb_status st = known_reshape(c, &io->in[0]->k, (int)s->n, shape, &io->outk[0]);
    io->has_outk[0] = !st;
    return st ? ox_fail(c, st, "cannot reshape: %s", nb_status_str(st)) : NB_OK;
}

/* Squeeze and Unsqueeze as reshapes: axes from the attribute (opset < 13) or
 * the second input. */
static nb_status squeeze_like(ox_ctx *c, ox_node_io *io, bool unsqueeze)
{
    int64_t axes[NB_MAX_DIMS];
    int n_axes = ox_attr_ints(io, "axes", axes, NB_MAX_DIMS);
    if (n_axes < 0 && ox_has_in(io, 1)) {
        const ox_const *k = ox_known(c, io, 1, "axes");
        if (!k) return c->st;
        if (k->n > NB_MAX_DIMS) return ox_unsupported(c, "%zu axes", k->n);
        n_axes = (int)k->n;
        for (int i = 0; i < n_axes; i++) axes[i] = k->i[i];
    }
    nb_dim in[NB_MAX_DIMS], out[NB_MAX_DIMS];
    int r;
    nb_node *x = foldable(io, 0) ? NULL : ox_in(c, io, 0);
    if (!x && foldable(io, 0)) {
        r = io->in[0]->k.rank;
        for (int d = 0; d < r; d++) in[d] = NB_DIM(io->in[0]->k.shape[d]);
    } else if (!x || (r = node_dims(c, x, in)) < 0) {
        return c->st;
    }
    int ro = unsqueeze ? r + (n_axes > 0 ? n_axes : 0) : r;
    if (ro > NB_MAX_DIMS) return ox_unsupported(c, "rank %d", ro);
    bool mark[NB_MAX_DIMS] = {false};
    for (int i = 0; i < n_axes; i++) {
        int a;
        if (ox_axis(c, axes[i], unsqueeze ? ro : r, &a)) return c->st;
        mark[a] = true;
    }
    int k = 0;
    for (int d = 0, j = 0; d < ro; d++) {
        if (unsqueeze) {
            out[k++] = mark[d] ? NB_DIM(1) : in[j++];
        } else if (!(n_axes > 0 ? mark[d] : (!in[d].sym && in[d].size == 1))) {
            out[k++] = in[d];
        }
    }
    if (x) return set_reshape(c, io, x, k, out);
    int64_t shape[NB_MAX_DIMS];
    for (int d = 0; d < k; d++) shape[d] = out[d].size;
    nb_status st = known_reshape(c, &io->in[0]->k, k, shape, &io->outk[0]);
    io->has_outk[0] = !st;
    return st ? ox_fail(c, st, "%s", nb_status_str(st)) : NB_OK;
}

static nb_status cv_squeeze(ox_ctx *c, ox_node_io *io) { return squeeze_like(c, io, false); }
static nb_status cv_unsqueeze(ox_ctx *c, ox_node_io *io) { return squeeze_like(c, io, true); }

static nb_status cv_flatten(ox_ctx *c, ox_node_io *io)
{
    nb_node *x = ox_in(c, io, 0);
    if (!x) return c->st;
    return (io->out[0] = nb_flatten(c->g, x, ox_attr_int(io, "axis", 1))) ? NB_OK : ox_graph_fail(c);
}

/* A known value transposed (PyTorch's F.pad export reorders its pads so). */
static nb_status fold_transpose(ox_ctx *c, ox_node_io *io, const int64_t *perm, int n)
{
    const ox_const *k = &io->in[0]->k;
    int r = k->rank;
    int64_t shape[NB_MAX_DIMS], step[NB_MAX_DIMS], st[NB_MAX_DIMS];
    bool seen[NB_MAX_DIMS] = {false};
    if (n >= 0 && n != r) return ox_fail(c, NB_ERR_FORMAT, "perm of %d axes for rank %d", n, r);
    ox_known_strides(k, st);
    for (int d = 0; d < r; d++) {
        int64_t a = n < 0 ? r - 1 - d : perm[d];
        if (a < 0 || a >= r || seen[a]) return ox_fail(c, NB_ERR_FORMAT, "perm is no permutation");
        seen[a] = true, shape[d] = k->shape[a], step[d] = st[a];
    }
    ox_const *out = &io->outk[0];
    if (ox_const_alloc(c, out, k->type, r, shape)) return ox_fail(c, NB_ERR_NOMEM, "out of memory");
    io->has_outk[0] = true;  /* freed with the node's outputs from here on */
    if (k->sym && !(out->sym = nb_calloc(out->n ? out->n : 1, sizeof *out->sym)))
        return ox_fail(c, NB_ERR_NOMEM, "out of memory");
    ox_known_strided(out, k, 0, step);
    return NB_OK;
}

static nb_status cv_transpose(ox_ctx *c, ox_node_io *io)
{
    nb_node *x = foldable(io, 0) ? NULL : ox_in(c, io, 0);
    if (!x && !foldable(io, 0)) return c->st;
    int64_t perm[NB_MAX_DIMS];
    int n = ox_attr_ints(io, "perm", perm, NB_MAX_DIMS);
    if (n > NB_MAX_DIMS) return ox_unsupported(c, "perm of rank > %d", NB_MAX_DIMS);
    if (foldable(io, 0)) return fold_transpose(c, io, perm, n);
    return (io->out[0] = nb_transpose(c->g, x, perm, n < 0 ? 0 : n)) ? NB_OK : ox_graph_fail(c);
}

const ox_op ox_ops_shape[] = {
    {"Shape", cv_shape, "start end"}, {"Size", cv_size, ""},
    {"Constant", cv_constant, "value value_float value_floats value_int value_ints"},
    {"ConstantOfShape", cv_constant_of_shape, "value"}, {"Identity", cv_identity, ""},
    {"Dropout", cv_dropout, "ratio seed is_test"}, {"Cast", cv_cast, "to"},
    {"Reshape", cv_reshape, "allowzero"}, {"Squeeze", cv_squeeze, "axes"},
    {"Unsqueeze", cv_unsqueeze, "axes"}, {"Flatten", cv_flatten, "axis"},
    {"Transpose", cv_transpose, "perm"},
};
const size_t ox_n_ops_shape = sizeof ox_ops_shape / sizeof *ox_ops_shape;

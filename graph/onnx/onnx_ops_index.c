/* Converters of ONNX ops that select or join parts: Concat, Slice, Split,
 * Gather, Expand, Pad. Known values (shape computations) are folded at load
 * time; graph nodes become nabla's concat, slice, reshape and embedding. */
#include <string.h>

#include "onnx_internal.h"

static bool foldable(const ox_node_io *io, int i)
{
    return ox_has_in(io, i) && io->in[i]->has_k && !io->in[i]->initializer;
}

/* out's element j comes from src's element `from` (values and symbols). */
static void copy_elem(ox_const *out, size_t j, const ox_const *src, size_t from)
{
    if (out->i) out->i[j] = src->i[from];
    else out->f[j] = src->f[from];
    if (out->sym && src->sym) out->sym[j] = src->sym[from];
}

static nb_status alloc_like(ox_ctx *c, ox_const *out, int type, int rank, const int64_t *shape, bool sym)
{
    if (ox_const_alloc(c, out, type, rank, shape) ||
        (sym && !(out->sym = nb_calloc(out->n ? out->n : 1, sizeof *out->sym))))
        return ox_fail(c, NB_ERR_NOMEM, "out of memory");
    return NB_OK;
}

/* ---- Concat ------------------------------------------------------------- */

static nb_status fold_concat(ox_ctx *c, ox_node_io *io, int axis)
{
    const ox_const *first = &io->in[0]->k;
    if (first->rank < 1)  /* ox_axis lets axis 0 of a scalar through */
        return ox_fail(c, NB_ERR_SHAPE, "needs inputs of rank >= 1; input 0 is a scalar");
    int64_t shape[NB_MAX_DIMS];
    memcpy(shape, first->shape, sizeof shape);
    shape[axis] = 0;
    bool sym = false;
    for (int i = 0; i < io->n_in; i++) {
        const ox_const *k = &io->in[i]->k;
        if (k->rank != first->rank || k->type != first->type)
            return ox_fail(c, NB_ERR_FORMAT, "inputs of different ranks or types");
        for (int d = 0; d < k->rank; d++)  /* else the copy below runs past the output */
            if (d != axis && k->shape[d] != first->shape[d])
                return ox_fail(c, NB_ERR_SHAPE, "input %d has %lld on axis %d, input 0 %lld (only "
                               "axis %d may differ)", i, (long long)k->shape[d], d,
                               (long long)first->shape[d], axis);
        shape[axis] += k->shape[axis];
        sym |= k->sym != NULL;
    }
    ox_const *o = &io->outk[0];
    if (alloc_like(c, o, first->type, first->rank, shape, sym)) return c->st;
    io->has_outk[0] = true;
    size_t outer = 1, j = 0;
    for (int d = 0; d < axis; d++) outer *= (size_t)shape[d];
    for (size_t b = 0; b < outer; b++)
        for (int i = 0; i < io->n_in; i++) {
            const ox_const *k = &io->in[i]->k;
            size_t inner = outer ? k->n / outer : 0;
            for (size_t e = 0; e < inner; e++) copy_elem(o, j++, k, b * inner + e);
        }
    return NB_OK;
}

static nb_status cv_concat(ox_ctx *c, ox_node_io *io)
{
    if (io->n_in < 1 || io->n_in > NB_MAX_INPUTS) return ox_unsupported(c, "%d inputs", io->n_in);
    bool fold = true;
    for (int i = 0; i < io->n_in; i++) fold &= foldable(io, i);
    int64_t axis = ox_attr_int(io, "axis", 0);
    int a;
    if (fold) return ox_axis(c, axis, io->in[0]->k.rank, &a) ? c->st : fold_concat(c, io, a);
    nb_node *in[NB_MAX_INPUTS];
    for (int i = 0; i < io->n_in; i++)
        if (!(in[i] = ox_in(c, io, i))) return c->st;
    return (io->out[0] = nb_concat(c->g, in, io->n_in, axis)) ? NB_OK : ox_graph_fail(c);
}

/* ---- Slice, Split ------------------------------------------------------- */

/* Python's clamping of [start, end) with step 1 on an axis of size n. */
static void clamp_range(int64_t n, int64_t *start, int64_t *end)
{
    int64_t s = *start, e = *end;
    s = s < 0 ? (s < -n ? 0 : s + n) : (s > n ? n : s);
    e = e < 0 ? (e < -n ? 0 : e + n) : (e > n ? n : e);
    *start = s;
    *end = e < s ? s : e;
}

/* starts/ends/axes/steps from attributes (opset < 10) or known inputs. */
static int slice_arg(ox_ctx *c, ox_node_io *io, const char *name, int in, int64_t *out)
{
    int n = ox_attr_ints(io, name, out, NB_MAX_DIMS);
    if (n >= 0 || !ox_has_in(io, in)) return n;
    const ox_const *k = ox_known(c, io, in, name);
    if (!k) return -2;
    if (k->n > NB_MAX_DIMS || k->sym) return ox_unsupported(c, "%s", name), -2;
    for (size_t i = 0; i < k->n; i++) out[i] = k->i[i];
    return (int)k->n;
}

/* ONNX's clamping of start and end for a step of either sign on an axis of
 * size `size`; the count of elements taken. */
static int64_t step_range(int64_t size, int64_t step, int64_t *start, int64_t end)
{
    int64_t s = *start < 0 ? *start + size : *start, e = end < 0 ? end + size : end;
    int64_t lo = step > 0 ? 0 : -1, hi = step > 0 ? size : size - 1;
    s = s < 0 ? 0 : s > hi ? hi : s;
    e = e < lo ? lo : e > hi ? hi : e;
    *start = s;
    int64_t span = step > 0 ? e - s : s - e, a = step > 0 ? step : -step;
    return span <= 0 ? 0 : 1 + (span - 1) / a;  /* ceil(span / a), without overflow for a huge step */
}

/* Slice of a known value, any rank and steps (PyTorch's F.pad export
 * reverses its pads with a step -1 slice). */
static nb_status fold_slice(ox_ctx *c, ox_node_io *io, int n, const int64_t *st, const int64_t *en,
                            const int64_t *ax, const int64_t *sp)
{
    const ox_const *k = &io->in[0]->k;
    int64_t shape[NB_MAX_DIMS], step[NB_MAX_DIMS], strides[NB_MAX_DIMS], base = 0;
    ox_known_strides(k, strides);
    for (int d = 0; d < k->rank; d++) shape[d] = k->shape[d], step[d] = strides[d];
    for (int i = 0; i < n; i++) {
        int a;
        if (ox_axis(c, ax[i], k->rank, &a)) return c->st;
        if (sp[i] == 0 || sp[i] == INT64_MIN) return ox_fail(c, NB_ERR_FORMAT, "step %lld", (long long)sp[i]);
        int64_t s = st[i];
        shape[a] = step_range(k->shape[a], sp[i], &s, en[i]);
        /* taking two or more, |step| < the axis size, so the product stays within the
         * value's size; taking one or none, the step is never used (and may be huge) */
        base += s * strides[a], step[a] = shape[a] > 1 ? strides[a] * sp[i] : strides[a];
    }
    if (alloc_like(c, &io->outk[0], k->type, k->rank, shape, k->sym != NULL)) return c->st;
    io->has_outk[0] = true;
    ox_known_strided(&io->outk[0], k, base, step);
    return NB_OK;
}

static nb_status cv_slice(ox_ctx *c, ox_node_io *io)
{
    int64_t st[NB_MAX_DIMS], en[NB_MAX_DIMS], ax[NB_MAX_DIMS], sp[NB_MAX_DIMS];
    int n = slice_arg(c, io, "starts", 1, st), ne = slice_arg(c, io, "ends", 2, en);
    int na = slice_arg(c, io, "axes", 3, ax), ns = slice_arg(c, io, "steps", 4, sp);
    if (n < -1 || ne < -1 || na < -1 || ns < -1) return c->st;
    if (n < 0 || n != ne || (na >= 0 && na != n) || (ns >= 0 && ns != n))
        return ox_fail(c, NB_ERR_FORMAT, "starts, ends, axes and steps disagree in length");
    for (int i = 0; i < n; i++) {
        if (na < 0) ax[i] = i;
        if (ns < 0) sp[i] = 1;
    }
    if (foldable(io, 0)) return fold_slice(c, io, n, st, en, ax, sp);
    for (int i = 0; i < n; i++)
        if (sp[i] != 1) return ox_unsupported(c, "step %lld (nabla slices with step 1)", (long long)sp[i]);
    nb_node *x = ox_in(c, io, 0);
    for (int i = 0; x && i < n; i++) {
        int a;
        if (ox_axis(c, ax[i], nb_node_rank(x), &a)) return c->st;
        int64_t size = nb_node_dim(x, a), s = st[i], e = en[i];
        if (size < 0) return ox_unsupported(c, "slice along a free dimension");
        clamp_range(size, &s, &e);
        if (s == 0 && e == size) continue;
        if (e == s) return ox_unsupported(c, "empty slice (nabla has no empty tensors)");
        if (!(x = nb_slice(c->g, x, a, s, e))) return ox_graph_fail(c);
    }
    if (x && n && x == io->in[0]->node) x = nb_scale(c->g, x, 1, 0);  /* the whole tensor */
    return (io->out[0] = x) ? NB_OK : c->st ? c->st : ox_graph_fail(c);
}

static nb_status cv_split(ox_ctx *c, ox_node_io *io)
{
    nb_node *x = ox_in(c, io, 0);
    if (!x) return c->st;
    int a;
    if (ox_axis(c, ox_attr_int(io, "axis", 0), nb_node_rank(x), &a)) return c->st;
    int64_t size = nb_node_dim(x, a), parts[8];
    if (size < 0) return ox_unsupported(c, "split along a free dimension");
    int n = ox_attr_ints(io, "split", parts, 8);
    if (n < 0) n = slice_arg(c, io, "split", 1, parts);
    if (n < -1) return c->st;
    if (io->n_out < 1) return ox_fail(c, NB_ERR_FORMAT, "no outputs");
    if (n < 0)
        for (int i = 0; i < io->n_out; i++) parts[i] = size / io->n_out, n = io->n_out;
    if (n != io->n_out || n > 8) return ox_fail(c, NB_ERR_FORMAT, "%d parts for %d outputs", n, io->n_out);
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        if (parts[i] < 1 || parts[i] > size || (total += parts[i]) > size)
            return ox_unsupported(c, "split into parts %lld (nabla has no empty tensors)", (long long)parts[i]);
    int64_t at = 0;
    for (int i = 0; i < n; i++, at += parts[i - 1])
        if (!(io->out[i] = nb_slice(c->g, x, a, at, at + parts[i]))) return ox_graph_fail(c);
    return NB_OK;
}

/* ---- Gather, Expand ------------------------------------------------------ */

static nb_status fold_gather(ox_ctx *c, ox_node_io *io, int axis)
{
    const ox_const *x = &io->in[0]->k, *ix = &io->in[1]->k;
    if (x->rank + ix->rank - 1 > NB_MAX_DIMS) return ox_unsupported(c, "rank");
    int64_t shape[NB_MAX_DIMS];
    int r = 0;
    for (int d = 0; d < axis; d++) shape[r++] = x->shape[d];
    for (int d = 0; d < ix->rank; d++) shape[r++] = ix->shape[d];
    for (int d = axis + 1; d < x->rank; d++) shape[r++] = x->shape[d];
    ox_const *o = &io->outk[0];
    if (alloc_like(c, o, x->type, r, shape, x->sym != NULL)) return c->st;
    io->has_outk[0] = true;
    size_t outer = 1, inner = 1, j = 0, n = (size_t)x->shape[axis];
    for (int d = 0; d < axis; d++) outer *= (size_t)x->shape[d];
    for (int d = axis + 1; d < x->rank; d++) inner *= (size_t)x->shape[d];
    for (size_t b = 0; b < outer; b++)
        for (size_t t = 0; t < ix->n; t++) {
            int64_t k = ix->i[t] < 0 ? ix->i[t] + (int64_t)n : ix->i[t];
            if (k < 0 || (size_t)k >= n) return ox_fail(c, NB_ERR_FORMAT, "index %lld out of range", (long long)ix->i[t]);
            for (size_t e = 0; e < inner; e++) copy_elem(o, j++, x, (b * n + (size_t)k) * inner + e);
        }
    return NB_OK;
}

/* Known indices on a node: a slice per index (scalar index: the axis dropped). */
static nb_status gather_slices(ox_ctx *c, ox_node_io *io, nb_node *x, int axis, const ox_const *ix)
{
    int64_t n = nb_node_dim(x, axis);
    if (n < 0 || ix->rank > 1 || ix->n > NB_MAX_INPUTS || !ix->n)
        return ox_unsupported(c, "gather of these indices on a computed tensor");
    nb_node *parts[NB_MAX_INPUTS];
    for (size_t t = 0; t < ix->n; t++) {
        int64_t k = ix->i[t] < 0 ? ix->i[t] + n : ix->i[t];
        if (k < 0 || k >= n) return ox_fail(c, NB_ERR_FORMAT, "index %lld out of range", (long long)ix->i[t]);
        if (!(parts[t] = nb_slice(c->g, x, axis, k, k + 1))) return ox_graph_fail(c);
    }
    nb_node *y = ix->n == 1 ? parts[0] : nb_concat(c->g, parts, (int)ix->n, axis);
    if (y && ix->rank == 0) {
        nb_dim d[NB_MAX_DIMS];
        int r = 0;
        for (int i = 0; i < nb_node_rank(x); i++) {
            if (i == axis) continue;
            int64_t s = nb_node_dim(x, i);
            const char *sym = s < 0 ? nb_node_dim_sym(c->g, x, i) : NULL;
            if (s < 0 && !sym) return ox_unsupported(c, "shape with a product of free dimensions");
            d[r++] = s < 0 ? NB_SYM(sym) : NB_DIM(s);
        }
        y = nb_reshape(c->g, y, r, d);
    }
    return (io->out[0] = y) ? NB_OK : ox_graph_fail(c);
}

/* Indices computed at run time: embedding, which gathers rows of a [V, D]
 * table, on x with the axis moved first and the rest flattened; the index
 * axes then go back where the axis was. Static shapes only. */
static nb_status gather_rows(ox_ctx *c, ox_node_io *io, nb_node *x, int a, nb_node *ids)
{
    nb_graph *g = c->g;
    int r = nb_node_rank(x), q = nb_node_rank(ids);
    if (q + r - 1 > NB_MAX_DIMS) return ox_unsupported(c, "rank %d", q + r - 1);
    int64_t perm[NB_MAX_DIMS], rest = 1;
    nb_dim out[NB_MAX_DIMS];
    perm[0] = a;
    for (int d = 0, k = 1; d < r; d++) {
        if (d == a) continue;
        perm[k++] = d;
        rest *= nb_node_dim(x, d);
        out[q + k - 2] = NB_DIM(nb_node_dim(x, d));
        if (nb_node_dim(x, d) < 0) return ox_unsupported(c, "gather on a tensor with free dimensions");
    }
    for (int d = 0; d < q; d++) {
        out[d] = NB_DIM(nb_node_dim(ids, d));
        if (nb_node_dim(ids, d) < 0) return ox_unsupported(c, "indices with free dimensions");
    }
    nb_node *t = a ? nb_transpose(g, x, perm, r) : x;
    nb_node *y = nb_embedding(g, ids, nb_reshape(g, t, 2, (nb_dim[]){NB_DIM(nb_node_dim(x, a)), NB_DIM(rest)}));
    y = nb_reshape(g, y, q + r - 1, out);
    if (y && a) {  /* [idx..., before..., after...] -> [before..., idx..., after...] */
        int64_t back[NB_MAX_DIMS];
        int k = 0;
        for (int d = 0; d < a; d++) back[k++] = q + d;
        for (int d = 0; d < q; d++) back[k++] = d;
        for (int d = q + a; d < q + r - 1; d++) back[k++] = d;
        y = nb_transpose(g, y, back, q + r - 1);
    }
    return (io->out[0] = y) ? NB_OK : ox_graph_fail(c);
}

static nb_status cv_gather(ox_ctx *c, ox_node_io *io)
{
    int64_t axis = ox_attr_int(io, "axis", 0);
    int rank = foldable(io, 0) ? io->in[0]->k.rank : io->in[0] && io->in[0]->node ? nb_node_rank(io->in[0]->node)
               : io->in[0] && io->in[0]->has_k ? io->in[0]->k.rank : 0;
    int a;
    if (!ox_has_in(io, 1) || !rank || ox_axis(c, axis, rank, &a))
        return c->st ? c->st : ox_fail(c, NB_ERR_FORMAT, "no indices, or a scalar to gather from");
    const ox_const *ix = io->in[1]->has_k ? ox_known(c, io, 1, "indices") : NULL;
    if (io->in[1]->has_k && !ix) return c->st;
    if (foldable(io, 0) && ix) return fold_gather(c, io, a);
    nb_node *x = ox_in(c, io, 0);
    if (!x) return c->st;
    if (ix) return gather_slices(c, io, x, a, ix);
    nb_node *ids = ox_in(c, io, 1);
    return ids ? gather_rows(c, io, x, a, ids) : c->st;
}

/* x broadcast to the shape: x times ones of that shape. */
static nb_status cv_expand(ox_ctx *c, ox_node_io *io)
{
    nb_node *x = ox_in(c, io, 0);
    const ox_const *s = x ? ox_known(c, io, 1, "shape") : NULL;
    if (!s) return c->st;
    if (s->sym || s->n > NB_MAX_DIMS) return ox_unsupported(c, "shape with free dimensions");
    nb_tensor t;
    if (nb_tensor_alloc(&t, nb_node_dtype(x), (int)s->n, s->i))
        return ox_fail(c, NB_ERR_FORMAT, "shape: %s", nb_last_error());
    for (size_t j = 0; j < nb_tensor_numel(&t); j++) {
        if (t.dtype == NB_F32) ((float *)t.data)[j] = 1;
        else if (t.dtype == NB_F64) ((double *)t.data)[j] = 1;
        else ((int32_t *)t.data)[j] = 1;
    }
    nb_node *ones = nb_constant(c->g, NULL, &t);
    nb_tensor_free(&t);
    return (io->out[0] = nb_mul(c->g, x, ones)) ? NB_OK : ox_graph_fail(c);
}

/* ---- Pad ---------------------------------------------------------------- */

/* ONNX's pads: every axis's before, then every axis's after; from the
 * attribute `paddings` (opset 1), `pads` (2-10) or a known input (11 on).
 * Returns their count, -2 on error. */
static int pad_amounts(ox_ctx *c, ox_node_io *io, int64_t *out)
{
    int n = ox_attr_ints(io, c->opset < 2 ? "paddings" : "pads", out, 2 * NB_MAX_DIMS);
    if (n >= 0) return n;
    const ox_const *k = ox_known(c, io, 1, "pads");
    if (!k) return -2;
    if (k->n > 2 * NB_MAX_DIMS || k->sym) return ox_fail(c, NB_ERR_FORMAT, "too many pads"), -2;
    for (size_t i = 0; i < k->n; i++) out[i] = k->i[i];
    return (int)k->n;
}

/* Pad, constant mode: nabla's pad (negative amounts crop, as in ONNX). The
 * value is the attribute `value` (opset < 11) or the optional scalar input
 * 2; the optional input 3 (opset 18) names the axes the pads are for. */
static nb_status cv_pad(ox_ctx *c, ox_node_io *io)
{
    const Onnx__AttributeProto *m = ox_attr(io, "mode");
    if (m && m->has_s && !(m->s.len == 8 && !memcmp(m->s.data, "constant", 8)))
        return ox_unsupported(c, "mode '%.*s' (nabla pads with a constant)", (int)m->s.len, (const char *)m->s.data);
    nb_node *x = ox_in(c, io, 0);
    int64_t p[2 * NB_MAX_DIMS], ax[NB_MAX_DIMS];
    int n = x ? pad_amounts(c, io, p) : -2;
    if (n < -1) return c->st;
    double value = ox_attr_float(io, "value", 0);
    if (c->opset >= 11 && ox_known_scalar(c, io, 2, 0, &value)) return c->st;
    if (nb_node_dtype(x) == NB_I32) return ox_unsupported(c, "integer input (nabla pads floats)");
    int r = nb_node_rank(x), na = r;
    for (int i = 0; i < r; i++) ax[i] = i;
    if (ox_has_in(io, 3)) {
        const ox_const *k = ox_known(c, io, 3, "axes");
        if (!k) return c->st;
        if (k->n > (size_t)r) return ox_fail(c, NB_ERR_FORMAT, "more axes than the input's rank %d", r);
        na = (int)k->n;
        for (int i = 0; i < na; i++) ax[i] = k->i[i];
    }
    if (n != 2 * na) return ox_fail(c, NB_ERR_FORMAT, "%d pads for %d axes", n < 0 ? 0 : n, na);
    int64_t lo[NB_MAX_DIMS] = {0}, hi[NB_MAX_DIMS] = {0};
    for (int i = 0; i < na; i++) {
        int a;
        if (ox_axis(c, ax[i], r, &a)) return c->st;
        lo[a] = p[i], hi[a] = p[i + na];
    }
    return (io->out[0] = nb_pad(c->g, x, lo, hi, value)) ? NB_OK : ox_graph_fail(c);
}

const ox_op ox_ops_index[] = {
    {"Concat", cv_concat, "axis"}, {"Slice", cv_slice, "starts ends axes"},
    {"Split", cv_split, "axis split num_outputs"}, {"Gather", cv_gather, "axis"},
    {"Expand", cv_expand, ""}, {"Pad", cv_pad, "mode pads paddings value"},
};
const size_t ox_n_ops_index = sizeof ox_ops_index / sizeof *ox_ops_index;

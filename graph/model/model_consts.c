/* The model loader: constants (model-format.md, "Additions to format version
 * 1"). A constant is a number (rank 0), a nested list whose nesting is its
 * shape, or {value: V, shape: S, dtype: D} with V broadcast to S as NumPy
 * broadcasts. A number written in a node's `in` list is a rank-0 constant
 * too (nm_literal). Constants become nb_constant nodes: no gradient, not in
 * weights files. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model_internal.h"

/* A value read from the file: its shape and its numbers, row-major. */
typedef struct cvalue {
    int rank;
    int64_t shape[NB_MAX_DIMS];
    double *v;
    size_t n;
} cvalue;

/* The shape of a nested list, read along its first entries. */
static bool first_shape(nm_ctx *c, const char *name, const yaml_node_t *v, cvalue *out)
{
    out->rank = 0;
    for (; v->type == YAML_SEQUENCE_NODE; v = ny_seq_item(&c->y, v, 0)) {
        if (out->rank == NB_MAX_DIMS) {
            ny_err(&c->y, v, "constant '%s': lists nest deeper than %d", name, NB_MAX_DIMS);
            return false;
        }
        if (!ny_seq_size(v)) {
            ny_err(&c->y, v, "constant '%s': an empty list; every list needs at least one number",
                   name);
            return false;
        }
        out->shape[out->rank++] = (int64_t)ny_seq_size(v);
    }
    return true;
}

/* Checks a number for dtype dt; i32 takes integers only (1.0 is one, as
 * torch.tensor(1.0, dtype=torch.int32) takes it). */
static bool number(nm_ctx *c, const char *name, const yaml_node_t *v, nb_dtype dt, double *out)
{
    char d[64];
    ny_val x = ny_value(v);
    if (x.kind != NY_INT && x.kind != NY_FLOAT && x.kind != NY_BIGINT) {
        ny_err(&c->y, v, "constant '%s': values must be numbers; got %s", name,
               ny_describe(v, d, sizeof d));
        return false;
    }
    if (dt == NB_I32 && (x.f != floor(x.f) || x.f < -2147483648.0 || x.f > 2147483647.0)) {
        ny_err(&c->y, v, "constant '%s' is i32, which takes integers from -2147483648 to "
               "2147483647 only; got %s", name, x.s);
        return false;
    }
    if (dt == NB_F32 && isfinite(x.f) && !isfinite((float)x.f)) {
        ny_err(&c->y, v, "constant '%s' is f32, whose range is +-3.4e38; got %s (write dtype: f64 "
               "for a larger value)", name, x.s);
        return false;
    }
    *out = x.f;
    return true;
}

/* Stores the numbers of list v (at depth `depth` of the shape) from out->v[*at],
 * reporting where the nesting differs from the first entries'. */
static bool walk(nm_ctx *c, const char *name, const yaml_node_t *v, int depth, nb_dtype dt,
                 cvalue *out, size_t *at)
{
    bool list = v->type == YAML_SEQUENCE_NODE;
    if (depth == out->rank) {
        if (!list) return number(c, name, v, dt, &out->v[(*at)++]);
        ny_err(&c->y, v, "constant '%s': ragged list: a number was expected here, as at the "
               "same depth in the first entries; got a list", name);
        return false;
    }
    if (!list || (int64_t)ny_seq_size(v) != out->shape[depth]) {
        char d[64];
        if (list) snprintf(d, sizeof d, "a list of %zu", ny_seq_size(v));
        else snprintf(d, sizeof d, "a number");
        ny_err(&c->y, v, "constant '%s': ragged list: a list of %lld was expected here, as the "
               "first list at this depth has; got %s", name, (long long)out->shape[depth], d);
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < ny_seq_size(v) && ok; i++)
        ok = walk(c, name, ny_seq_item(&c->y, v, i), depth + 1, dt, out, at);
    return ok;
}

/* A number or a nested list into out (its v to be freed). */
static bool read_value(nm_ctx *c, const char *name, const yaml_node_t *v, nb_dtype dt, cvalue *out)
{
    char d[64];
    memset(out, 0, sizeof *out);
    if (v->type == YAML_MAPPING_NODE || ny_value(v).kind == NY_NULL) {
        ny_err(&c->y, v, "constant '%s' must be a number, a nested list of numbers or "
               "{value: ..., shape: [...], dtype: ...}; got %s", name, ny_describe(v, d, sizeof d));
        return false;
    }
    if (!first_shape(c, name, v, out)) return false;
    if (nb_shape_numel(out->rank, out->shape, &out->n) != NB_OK ||
        out->n > SIZE_MAX / sizeof(double)) {
        ny_err(&c->y, v, "constant '%s' is too large", name);
        return false;
    }
    if (!(out->v = nb_malloc(out->n * sizeof(double)))) {
        c->y.oom = true;
        return false;
    }
    size_t at = 0;
    return walk(c, name, v, 0, dt, out, &at);
}

/* NumPy's rule: aligned at the right, each size of `from` 1 or equal. */
static bool broadcasts(const cvalue *from, int rank, const int64_t *to)
{
    if (from->rank > rank) return false;
    for (int i = 1; i <= from->rank; i++) {
        int64_t f = from->shape[from->rank - i];
        if (f != 1 && f != to[rank - i]) return false;
    }
    return true;
}

/* The tensor of shape `to` holding v broadcast, in dtype dt. */
static nb_status fill(const cvalue *v, int rank, const int64_t *to, nb_dtype dt, nb_tensor *t)
{
    nb_status st = nb_tensor_alloc(t, dt, rank, to);
    if (st) return st;
    int64_t stride[NB_MAX_DIMS] = {0}, idx[NB_MAX_DIMS] = {0};
    int64_t s = 1;
    for (int i = 1; i <= v->rank; i++) {  /* the value's strides on the target's axes */
        int64_t f = v->shape[v->rank - i];
        stride[rank - i] = f == 1 ? 0 : s;
        s *= f;
    }
    size_t n = nb_tensor_numel(t);
    for (size_t k = 0; k < n; k++) {
        int64_t src = 0;
        for (int a = 0; a < rank; a++) src += idx[a] * stride[a];
        double x = v->v[src];
        if (dt == NB_F32) ((float *)t->data)[k] = (float)x;
        else if (dt == NB_F64) ((double *)t->data)[k] = x;
        else ((int32_t *)t->data)[k] = (int32_t)x;
        for (int a = rank - 1; a >= 0 && ++idx[a] == to[a]; a--) idx[a] = 0;
    }
    return NB_OK;
}

/* Makes the constant; reports graph errors at `at`. */
static nb_node *make(nm_ctx *c, const char *name, const cvalue *v, int rank, const int64_t *shape,
                     nb_dtype dt, const yaml_node_t *at)
{
    nb_tensor t = {0};
    nb_node *n = NULL;
    nb_status st = fill(v, rank, shape, dt, &t);
    size_t numel, bytes;
    if (st == NB_ERR_NOMEM && !nb_shape_numel(rank, shape, &numel) &&
        !__builtin_mul_overflow(numel, nb_dtype_size(dt), &bytes) && bytes > nb_memory_limit())
        ny_err(&c->y, at, "constant '%s' needs %.3g GB, over the memory limit of %.3g GB "
               "(nb_set_memory_limit; nabla --max-memory)", name, (double)bytes / 1e9,
               (double)nb_memory_limit() / 1e9);  /* a refusal, not out of memory: the load goes on */
    else if (st == NB_ERR_NOMEM) c->y.oom = true;
    else if (st) ny_err(&c->y, at, "constant '%s' is too large", name);
    else if (!(n = nb_constant(c->m->g, name, &t))) nm_graph_err(c, at);
    nb_tensor_free(&t);
    return n;
}

/* A float dtype follows the graph's when the model is loaded as f64 (gradcheck). */
static nb_dtype graph_dtype(nm_ctx *c, nb_dtype dt)
{
    return dt != NB_I32 && c->dt == NB_F64 ? NB_F64 : dt;
}

/* {value: V, shape: S, dtype: D} */
static nb_node *from_mapping(nm_ctx *c, const char *name, const yaml_node_t *spec)
{
    static const char *const keys[] = {"value", "shape", "dtype"};
    size_t mark = c->y.n_msgs;
    ny_map_check(&c->y, spec, "a constant spec", keys, 3);
    const yaml_node_t *value = ny_get(&c->y, spec, "value", NULL);
    const yaml_node_t *shape = ny_get(&c->y, spec, "shape", NULL);
    const yaml_node_t *dtv = ny_get(&c->y, spec, "dtype", NULL);
    nb_dtype dt = c->m->dtype;
    if (dtv && !nm_parse_dtype(c, dtv, &dt, true)) return NULL;
    if (!value) {
        ny_err(&c->y, spec, "constant '%s' needs a value", name);
        return NULL;
    }
    nb_dim dims[NB_MAX_DIMS];
    int64_t to[NB_MAX_DIMS];
    int rank = 0;
    if (shape && !nm_parse_shape(c, shape, true, dims, to, &rank)) return NULL;
    cvalue v;
    nb_node *n = NULL;
    if (read_value(c, name, value, dt, &v) && c->y.n_msgs == mark) {
        if (!shape) {
            rank = v.rank;
            memcpy(to, v.shape, sizeof to);
        }
        char a[160], b[160];
        if (broadcasts(&v, rank, to))
            n = make(c, name, &v, rank, to, graph_dtype(c, dt), spec);
        else
            ny_err(&c->y, value, "constant '%s': a value of shape %s does not broadcast to shape %s",
                   name, nm_shape_str(a, sizeof a, v.rank, v.shape), nm_shape_str(b, sizeof b, rank, to));
    }
    nb_free(v.v);
    return n;
}

void nm_do_constant(nm_ctx *c, const yaml_node_t *key, const char *name, const yaml_node_t *spec)
{
    nb_node *n = NULL;
    if (spec->type == YAML_MAPPING_NODE) {
        n = from_mapping(c, name, spec);
    } else {
        cvalue v;
        size_t mark = c->y.n_msgs;
        if (read_value(c, name, spec, c->m->dtype, &v) && c->y.n_msgs == mark)
            n = make(c, name, &v, v.rank, v.shape, c->dt, spec);
        nb_free(v.v);
    }
    nm_define(c, name, n, ny_line(key), false);
}

nb_node *nm_literal(nm_ctx *c, const yaml_node_t *num, const char *name)
{
    double x;
    int64_t none[1] = {1};
    const nm_name *e = nm_lookup(c, name, strlen(name));
    if (e) {
        ny_err(&c->y, num, "this number would be constant '%s', a name defined at line %zu", name,
               e->line);
        return NULL;
    }
    if (!number(c, name, num, c->dt, &x)) return NULL;
    cvalue v = {.rank = 0, .v = &x, .n = 1};
    nb_node *n = make(c, name, &v, 0, none, c->dt, num);
    if (n) nm_define(c, name, n, ny_line(num), false);
    return n;
}

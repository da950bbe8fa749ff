/* Plain tensors, dtypes and status names. */
#include <string.h>

#include "nabla/core.h"

const char *nb_status_str(nb_status st)
{
    static const char *const names[] = {
        [NB_OK] = "ok",
        [NB_ERR_ARG] = "invalid argument",
        [NB_ERR_SHAPE] = "shape error",
        [NB_ERR_DTYPE] = "dtype error",
        [NB_ERR_UNKNOWN_OP] = "unknown op",
        [NB_ERR_ARITY] = "wrong number of inputs",
        [NB_ERR_NAME] = "bad name",
        [NB_ERR_OVERFLOW] = "size overflow",
        [NB_ERR_NOMEM] = "out of memory",
        [NB_ERR_UNBOUND] = "unbound dimension",
        [NB_ERR_NO_GRAD] = "no gradient rule",
        [NB_ERR_CYCLE] = "cycle",
        [NB_ERR_RUNTIME] = "run-time error",
        [NB_ERR_IO] = "I/O error",
        [NB_ERR_FORMAT] = "bad file format",
    };
    if ((unsigned)st >= sizeof names / sizeof names[0]) return "unknown status";
    return names[st];
}

size_t nb_dtype_size(nb_dtype dt) { return dt == NB_F64 ? 8 : 4; }

const char *nb_dtype_name(nb_dtype dt)
{
    switch (dt) {
    case NB_F32: return "f32";
    case NB_F64: return "f64";
    case NB_I32: return "i32";
    }
    return "?";
}

nb_status nb_shape_numel(int rank, const int64_t *shape, size_t *numel)
{
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0) return NB_ERR_SHAPE;
        if (__builtin_mul_overflow(n, (size_t)shape[i], &n)) return NB_ERR_OVERFLOW;
    }
    *numel = n;
    return NB_OK;
}

nb_status nb_tensor_alloc(nb_tensor *t, nb_dtype dt, int rank, const int64_t *shape)
{
    memset(t, 0, sizeof *t);
    if (rank < 0 || rank > NB_MAX_DIMS) return NB_ERR_ARG;
    size_t n, bytes;
    nb_status st = nb_shape_numel(rank, shape, &n);
    if (st) return st;
    if (__builtin_mul_overflow(n, nb_dtype_size(dt), &bytes)) return NB_ERR_OVERFLOW;
    if (bytes > nb_memory_limit()) return NB_ERR_NOMEM;
    t->data = nb_calloc(1, bytes);
    if (!t->data) return NB_ERR_NOMEM;
    t->dtype = dt;
    t->rank = rank;
    if (rank) memcpy(t->shape, shape, (size_t)rank * sizeof *shape);
    return NB_OK;
}

void nb_tensor_free(nb_tensor *t)
{
    if (!t) return;
    nb_free(t->data);
    memset(t, 0, sizeof *t);
}

size_t nb_tensor_numel(const nb_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= (size_t)t->shape[i];
    return n;
}

size_t nb_tensor_bytes(const nb_tensor *t) { return nb_tensor_numel(t) * nb_dtype_size(t->dtype); }

nb_status nb_tensor_convert(nb_tensor *t, nb_dtype to)
{
    if (t->dtype == to) return NB_OK;
    if (to == NB_I32) return NB_ERR_DTYPE;  /* floats never silently become labels */
    nb_tensor c;
    nb_status st = nb_tensor_alloc(&c, to, t->rank, t->shape);
    if (st) return st;
    size_t n = nb_tensor_numel(t);
    for (size_t i = 0; i < n; i++) {
        double v = t->dtype == NB_F64 ? ((const double *)t->data)[i]
                 : t->dtype == NB_F32 ? ((const float *)t->data)[i]
                                      : ((const int32_t *)t->data)[i];
        if (to == NB_F64)
            ((double *)c.data)[i] = v;
        else
            ((float *)c.data)[i] = (float)v;
    }
    nb_tensor_free(t);
    *t = c;
    return NB_OK;
}

void nb_diags_free(nb_diags *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->n; i++) nb_free(d->lines[i]);
    nb_free(d->lines);
    d->lines = NULL;
    d->n = 0;
}

/* The dataset handle: making and freeing it, its message, the queries, and
 * the held-out validation part, which views the parent's data instead of
 * copying it (the MNIST training images are 47 MB). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "data_internal.h"
#include "io_util.h"

size_t nb__field_type_size(nb_field_type t)
{
    switch (t) {
    case NB_FIELD_U8: return 1;
    case NB_FIELD_I32: return 4;
    case NB_FIELD_F32: return 4;
    case NB_FIELD_F64: return 8;
    default: return 0;
    }
}

const char *nb_field_type_name(nb_field_type t)
{
    static const char *const names[] = {"u8", "i32", "f32", "f64"};
    return t >= NB_FIELD_U8 && t <= NB_FIELD_F64 ? names[t] : "none";
}

nb_dataset *nb__dataset_new(int n_fields, char *err)
{
    nb_dataset *d = nb_calloc(1, sizeof *d);
    if (d) d->fields = nb_calloc((size_t)n_fields, sizeof *d->fields);
    if (d && d->fields) {
        d->n_fields = n_fields;
        return d;
    }
    nb_free(d);
    if (err) snprintf(err, NB_ERR_CAP, "out of memory making a dataset");
    return NULL;
}

nb_status nb__dataset_set_field(nb_dataset *d, int i, const char *name, const char *path, nb_field_type type,
                                int rank, const int64_t *shape, void *data, char *err)
{
    nb__field *f = &d->fields[i];
    f->type = type;
    f->rank = rank - 1;
    memcpy(f->shape, shape + 1, (size_t)f->rank * sizeof *shape);
    f->name = nb__strdup(name);
    f->path = nb__strdup(path);
    f->blob = nb_malloc(sizeof *f->blob);
    if (!f->name || !f->path || !f->blob) {
        nb_free(f->blob);
        f->blob = NULL;
        nb_free(data);
        return nb_io_fail(err, NB_ERR_CAP, NB_ERR_NOMEM, path, "out of memory");
    }
    atomic_init(&f->blob->refs, 1);
    f->blob->data = data;
    /* The loaders checked that the whole array fits in size_t. */
    nb_shape_numel(f->rank, f->shape, &f->numel);
    f->bytes = f->numel * nb__field_type_size(type);
    if (i == 0) d->n = (size_t)shape[0];
    return NB_OK;
}

static void release(nb__blob *b)
{
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) {
        nb_free(b->data);
        nb_free(b);
    }
}

void nb_dataset_free(nb_dataset *d)
{
    if (!d) return;
    for (int i = 0; i < d->n_fields; i++) {
        nb_free(d->fields[i].name);
        nb_free(d->fields[i].path);
        release(d->fields[i].blob);
    }
    nb_free(d->fields);
    nb_free(d);
}

nb_status nb__dataset_fail(nb_dataset *d, nb_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err, sizeof d->err, fmt, ap);
    va_end(ap);
    return d->status = st;
}

nb_status nb__dataset_ok(nb_dataset *d)
{
    d->err[0] = 0;
    return d->status = NB_OK;
}

const char *nb_dataset_error(const nb_dataset *d) { return d ? d->err : "no dataset"; }
nb_status nb_dataset_status(const nb_dataset *d) { return d ? d->status : NB_ERR_ARG; }
size_t nb_dataset_size(const nb_dataset *d) { return d ? d->n : 0; }
int nb_dataset_num_fields(const nb_dataset *d) { return d ? d->n_fields : 0; }

static const nb__field *field_at(const nb_dataset *d, int i)
{
    return d && i >= 0 && i < d->n_fields ? &d->fields[i] : NULL;
}

int nb_dataset_field(const nb_dataset *d, const char *name)
{
    for (int i = 0; d && name && i < d->n_fields; i++)
        if (!strcmp(d->fields[i].name, name)) return i;
    return -1;
}

const char *nb_dataset_field_name(const nb_dataset *d, int field)
{
    const nb__field *f = field_at(d, field);
    return f ? f->name : NULL;
}

const char *nb_dataset_field_path(const nb_dataset *d, int field)
{
    const nb__field *f = field_at(d, field);
    return f ? f->path : NULL;
}

nb_field_type nb_dataset_field_type(const nb_dataset *d, int field)
{
    const nb__field *f = field_at(d, field);
    return f ? f->type : NB_FIELD_NONE;
}

int nb_dataset_field_shape(const nb_dataset *d, int field, int64_t *shape)
{
    const nb__field *f = field_at(d, field);
    if (!f) return -1;
    if (shape) memcpy(shape, f->shape, (size_t)f->rank * sizeof *shape);
    return f->rank;
}

size_t nb_dataset_field_numel(const nb_dataset *d, int field)
{
    const nb__field *f = field_at(d, field);
    return f ? f->numel : 0;
}

/* floor(fraction * n), except that a product within a few ulps below an
 * integer counts as that integer: the user wrote a decimal such as 0.29,
 * and 0.29 * 100 is 28.999999999999996 in binary. */
static size_t held_out_count(double fraction, size_t n)
{
    double x = fraction * (double)n, k = floor(x);
    if (x > k && k + 1 - x <= 4 * DBL_EPSILON * x) k += 1;
    return (size_t)k;
}

/* A dataset of the samples [from, from + n) of d, sharing d's blobs. */
static nb_dataset *view(const nb_dataset *d, size_t from, size_t n)
{
    nb_dataset *v = nb__dataset_new(d->n_fields, NULL);
    for (int i = 0; v && i < d->n_fields; i++) {
        nb__field *f = &v->fields[i];
        *f = d->fields[i];
        f->name = nb__strdup(f->name);
        f->path = nb__strdup(f->path);
        f->first += from;
        atomic_fetch_add_explicit(&f->blob->refs, 1, memory_order_relaxed);
        if (!f->name || !f->path) {
            nb_dataset_free(v);
            return NULL;
        }
    }
    if (v) v->n = n;
    return v;
}

nb_status nb_dataset_split(nb_dataset *d, double fraction, nb_dataset **holdout)
{
    if (holdout) *holdout = NULL;
    if (!d) return NB_ERR_ARG;
    if (!holdout) return nb__dataset_fail(d, NB_ERR_ARG, "split: no place given for the held-out part");
    if (!(fraction >= 0 && fraction < 1))
        return nb__dataset_fail(d, NB_ERR_ARG, "validation fraction %g is outside [0, 1)", fraction);
    size_t k = held_out_count(fraction, d->n);
    if (k >= d->n)
        return nb__dataset_fail(d, NB_ERR_ARG,
                                "validation fraction %g of %zu samples holds out %zu and leaves none to train on",
                                fraction, d->n, k);
    *holdout = view(d, d->n - k, k);
    if (!*holdout) return nb__dataset_fail(d, NB_ERR_NOMEM, "out of memory splitting the dataset");
    d->n -= k;
    return nb__dataset_ok(d);
}

/* Batches: the samples a training step asks for, gathered into the caller's
 * buffer and converted from the stored type on the way. Called once per step,
 * so it allocates nothing and checks everything before writing. */
#include <math.h>
#include <string.h>

#include "data_internal.h"

/* How one batch is converted; the tables turn a u8 into value * scale with
 * one load, computed once per call (256 entries, a few hundred ns). */
typedef struct conv {
    nb_field_type from;
    nb_dtype to;
    double scale;
    float lut32[256];
    double lut64[256];
} conv;

static void conv_init(conv *c, nb_field_type from, nb_dtype to, double scale)
{
    c->from = from;
    c->to = to;
    c->scale = scale;
    if (from != NB_FIELD_U8) return;
    for (int v = 0; v < 256; v++) {
        if (to == NB_F32) c->lut32[v] = (float)(v * scale);
        else if (to == NB_F64) c->lut64[v] = v * scale;
    }
}

/* Converts n values of c->from at src to c->to at dst. Products are taken in
 * double and rounded once, so f64 data scaled into f32 loses nothing more
 * than the final rounding. */
static void convert(const conv *c, const unsigned char *src, void *dst, size_t n)
{
    const double s = c->scale;
    float *d32 = dst;
    double *d64 = dst;
    int32_t *di = dst;
    const float *f32 = (const float *)src;
    const double *f64 = (const double *)src;
    const int32_t *i32 = (const int32_t *)src;
    switch (c->from * 3 + (int)c->to) {
    case NB_FIELD_U8 * 3 + NB_F32: for (size_t k = 0; k < n; k++) d32[k] = c->lut32[src[k]]; break;
    case NB_FIELD_U8 * 3 + NB_F64: for (size_t k = 0; k < n; k++) d64[k] = c->lut64[src[k]]; break;
    case NB_FIELD_U8 * 3 + NB_I32: for (size_t k = 0; k < n; k++) di[k] = src[k]; break;
    case NB_FIELD_I32 * 3 + NB_F32: for (size_t k = 0; k < n; k++) d32[k] = (float)(i32[k] * s); break;
    case NB_FIELD_I32 * 3 + NB_F64: for (size_t k = 0; k < n; k++) d64[k] = i32[k] * s; break;
    case NB_FIELD_I32 * 3 + NB_I32: memcpy(dst, src, n * sizeof *di); break;
    case NB_FIELD_F32 * 3 + NB_F32:
        if (s == 1) memcpy(dst, src, n * sizeof *d32);
        else for (size_t k = 0; k < n; k++) d32[k] = (float)(f32[k] * s);
        break;
    case NB_FIELD_F32 * 3 + NB_F64: for (size_t k = 0; k < n; k++) d64[k] = f32[k] * s; break;
    case NB_FIELD_F64 * 3 + NB_F32: for (size_t k = 0; k < n; k++) d32[k] = (float)(f64[k] * s); break;
    case NB_FIELD_F64 * 3 + NB_F64:
        if (s == 1) memcpy(dst, src, n * sizeof *d64);
        else for (size_t k = 0; k < n; k++) d64[k] = f64[k] * s;
        break;
    default: break; /* float to i32 is refused before */
    }
}

static bool is_int(nb_field_type t) { return t == NB_FIELD_U8 || t == NB_FIELD_I32; }

/* The field, destination type and indices are usable. */
static nb_status check_request(nb_dataset *d, int field, const size_t *idx, size_t n, nb_dtype to, double scale)
{
    if (field < 0 || field >= d->n_fields)
        return nb__dataset_fail(d, NB_ERR_ARG, "batch: no field %d (the dataset has %d)", field, d->n_fields);
    const nb__field *f = &d->fields[field];
    if (to != NB_F32 && to != NB_F64 && to != NB_I32)
        return nb__dataset_fail(d, NB_ERR_ARG, "batch: invalid destination dtype %d", (int)to);
    if (to == NB_I32 && !is_int(f->type))
        return nb__dataset_fail(d, NB_ERR_DTYPE, "%s: field '%s' holds %s values; an i32 input takes only integers",
                                f->path, f->name, nb_field_type_name(f->type));
    if (to != NB_I32 && !isfinite(scale))
        return nb__dataset_fail(d, NB_ERR_ARG, "batch: the scale %g is not finite", scale);
    if (n && !idx) return nb__dataset_fail(d, NB_ERR_ARG, "batch: no sample indices given");
    for (size_t s = 0; s < n; s++)
        if (idx[s] >= d->n)
            return nb__dataset_fail(d, NB_ERR_ARG,
                                    "batch: sample %zu (at position %zu) is out of range; the dataset has %zu", idx[s],
                                    s, d->n);
    return NB_OK;
}

/* dst_bytes is exactly what n samples take as `to`. */
static nb_status check_dst(nb_dataset *d, const nb__field *f, size_t n, nb_dtype to, const void *dst,
                           size_t dst_bytes)
{
    size_t need;
    if (__builtin_mul_overflow(n, f->numel, &need) || __builtin_mul_overflow(need, nb_dtype_size(to), &need))
        return nb__dataset_fail(d, NB_ERR_OVERFLOW, "batch: %zu samples of '%s' are too many bytes", n, f->name);
    if (need != dst_bytes)
        return nb__dataset_fail(d, NB_ERR_ARG,
                                "batch: %zu samples of '%s' (%zu values each) as %s take %zu bytes; the buffer has %zu",
                                n, f->name, f->numel, nb_dtype_name(to), need, dst_bytes);
    if (need && !dst) return nb__dataset_fail(d, NB_ERR_ARG, "batch: no destination buffer given");
    return NB_OK;
}

nb_status nb_dataset_batch(nb_dataset *d, int field, const size_t *idx, size_t n, nb_dtype to, double scale,
                           void *dst, size_t dst_bytes)
{
    if (!d) return NB_ERR_ARG;
    nb_status st = check_request(d, field, idx, n, to, scale);
    if (st) return st;
    const nb__field *f = &d->fields[field];
    st = check_dst(d, f, n, to, dst, dst_bytes);
    if (st) return st;
    conv c;
    conv_init(&c, f->type, to, scale);
    size_t step = f->numel * nb_dtype_size(to);
    for (size_t s = 0; s < n; s++) convert(&c, nb__sample(f, idx[s]), (unsigned char *)dst + s * step, f->numel);
    return nb__dataset_ok(d);
}

/* Value k of sample i of an integer field. */
static int64_t int_at(const nb__field *f, size_t i, size_t k)
{
    const unsigned char *p = nb__sample(f, i);
    if (f->type == NB_FIELD_U8) return p[k];
    int32_t v;
    memcpy(&v, p + 4 * k, sizeof v);
    return v;
}

nb_status nb_dataset_check_labels(nb_dataset *d, int field, int64_t classes)
{
    if (!d) return NB_ERR_ARG;
    if (field < 0 || field >= d->n_fields)
        return nb__dataset_fail(d, NB_ERR_ARG, "check labels: no field %d (the dataset has %d)", field, d->n_fields);
    const nb__field *f = &d->fields[field];
    if (classes < 1) return nb__dataset_fail(d, NB_ERR_ARG, "check labels: %lld classes", (long long)classes);
    if (!is_int(f->type))
        return nb__dataset_fail(d, NB_ERR_DTYPE, "%s: field '%s' holds %s values, not integer labels", f->path,
                                f->name, nb_field_type_name(f->type));
    for (size_t i = 0; i < d->n; i++)
        for (size_t k = 0; k < f->numel; k++) {
            int64_t v = int_at(f, i, k);
            if (v >= 0 && v < classes) continue;
            if (f->numel == 1)
                return nb__dataset_fail(d, NB_ERR_RUNTIME, "%s: sample %zu has label %lld; the model has %lld classes",
                                        f->path, f->first + i, (long long)v, (long long)classes);
            return nb__dataset_fail(d, NB_ERR_RUNTIME,
                                    "%s: sample %zu, value %zu has label %lld; the model has %lld classes", f->path,
                                    f->first + i, k, (long long)v, (long long)classes);
        }
    return nb__dataset_ok(d);
}

nb_status nb_dataset_check_exact(nb_dataset *d, int field, nb_dtype to)
{
    if (!d) return NB_ERR_ARG;
    if (field < 0 || field >= d->n_fields)
        return nb__dataset_fail(d, NB_ERR_ARG, "check values: no field %d (the dataset has %d)", field, d->n_fields);
    const nb__field *f = &d->fields[field];
    /* u8 fits every float; i32 fits f64; only i32 into f32 can round */
    if (f->type != NB_FIELD_I32 || to != NB_F32) return nb__dataset_ok(d);
    const int64_t exact = (int64_t)1 << 24;
    for (size_t i = 0; i < d->n; i++)
        for (size_t k = 0; k < f->numel; k++) {
            int64_t v = int_at(f, i, k);
            if (v >= -exact && v <= exact) continue;
            return nb__dataset_fail(d, NB_ERR_DTYPE,
                                    "%s: sample %zu, value %zu is %lld, which f32 cannot hold exactly (beyond "
                                    "2^24); feed it to an f64 model or scale it first",
                                    f->path, f->first + i, k, (long long)v);
        }
    return nb__dataset_ok(d);
}

/* The ONNX file and its tensors: reading the bytes, and TensorProto (raw or
 * typed fields) into host values. The protobuf itself is decoded by the code
 * protoc-c generated from onnx.proto. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "onnx_internal.h"

bool ox_is_int_type(int type)
{
    return type == OX_UINT8 || type == OX_INT8 || type == OX_INT16 || type == OX_INT32 ||
           type == OX_INT64 || type == OX_BOOL;
}

static bool known_type(int type) { return ox_is_int_type(type) || type == OX_FLOAT || type == OX_DOUBLE; }

nb_status ox_const_alloc(ox_ctx *c, ox_const *k, int type, int rank, const int64_t *shape)
{
    memset(k, 0, sizeof *k);
    k->type = type;
    k->rank = rank;
    size_t n = 1;
    for (int d = 0; d < rank; d++) k->shape[d] = shape[d];
    nb_status st = nb_shape_numel(rank, shape, &n);
    if (st) return st;
    k->n = n;
    size_t limit = nb_memory_limit();
    if (n > limit / 8 || (n ? n : 1) * 8 > limit - c->known_bytes)  /* refused before trying */
        return ox_fail(c, NB_ERR_NOMEM, "values computed at load time (%zu elements here) "
                       "exceed the memory limit of %.3g GB (nb_set_memory_limit; nabla "
                       "--max-memory)", n, (double)limit / 1e9);
    size_t bytes = (n ? n : 1) * 8;
    c->known_bytes += bytes;
    if (ox_is_int_type(type))
        k->i = nb_calloc(1, bytes);
    else
        k->f = nb_calloc(1, bytes);
    return k->i || k->f ? NB_OK : NB_ERR_NOMEM;
}

void ox_const_free(ox_const *k)
{
    if (!k) return;
    nb_free(k->i);
    nb_free(k->f);
    nb_free((void *)k->sym);
    memset(k, 0, sizeof *k);
}

/* Element k of little-endian raw data of `type`. */
static void read_raw(const uint8_t *p, int type, size_t k, int64_t *iv, double *fv)
{
    switch (type) {  /* element types, not ops: a small closed set of encodings */
    case OX_FLOAT: { float f; memcpy(&f, p + 4 * k, 4); *fv = f; break; }
    case OX_DOUBLE: memcpy(fv, p + 8 * k, 8); break;
    case OX_INT64: memcpy(iv, p + 8 * k, 8); break;
    case OX_INT32: { int32_t v; memcpy(&v, p + 4 * k, 4); *iv = v; break; }
    case OX_INT16: { int16_t v; memcpy(&v, p + 2 * k, 2); *iv = v; break; }
    case OX_INT8: *iv = (int8_t)p[k]; break;
    default: *iv = p[k]; break;  /* uint8, bool */
    }
}

static size_t elem_size(int type)
{
    return type == OX_DOUBLE || type == OX_INT64 ? 8 : type == OX_FLOAT || type == OX_INT32 ? 4
           : type == OX_INT16 ? 2 : 1;
}

/* Number of values in the typed field that holds `type`. */
static size_t typed_count(const Onnx__TensorProto *t, int type)
{
    if (type == OX_FLOAT) return t->n_float_data;
    if (type == OX_DOUBLE) return t->n_double_data;
    if (type == OX_INT64) return t->n_int64_data;
    return t->n_int32_data;
}

static void read_typed(const Onnx__TensorProto *t, int type, size_t k, int64_t *iv, double *fv)
{
    if (type == OX_FLOAT) *fv = t->float_data[k];
    else if (type == OX_DOUBLE) *fv = t->double_data[k];
    else if (type == OX_INT64) *iv = t->int64_data[k];
    else *iv = t->int32_data[k];
}

nb_status ox_const_from_proto(ox_ctx *c, const Onnx__TensorProto *t, ox_const *k, char *err, size_t cap)
{
    memset(k, 0, sizeof *k);
    int type = t->has_data_type ? t->data_type : 0;
    const char *nm = t->name ? t->name : "";
    if (!known_type(type)) {
        snprintf(err, cap, "tensor '%s': unsupported element type %d", nm, type);
        return NB_ERR_FORMAT;
    }
    if (t->n_external_data || (t->has_data_location && t->data_location) || t->segment) {
        snprintf(err, cap, "tensor '%s': unsupported external or segmented data", nm);
        return NB_ERR_FORMAT;
    }
    if (t->n_dims > NB_MAX_DIMS) {
        snprintf(err, cap, "tensor '%s': unsupported rank %zu (nabla's limit is %d)", nm,
                 t->n_dims, NB_MAX_DIMS);
        return NB_ERR_FORMAT;
    }
    for (size_t d = 0; d < t->n_dims; d++)
        if (t->dims[d] < 0) {
            snprintf(err, cap, "tensor '%s': negative dimension", nm);
            return NB_ERR_FORMAT;
        }
    /* the values must be there before anything is allocated for them */
    size_t numel;
    bool raw = t->has_raw_data;
    size_t have = raw ? t->raw_data.len / elem_size(type) : typed_count(t, type);
    nb_status st = nb_shape_numel((int)t->n_dims, t->dims, &numel);
    if (!st && (have != numel || (raw && t->raw_data.len % elem_size(type)))) {
        snprintf(err, cap, "tensor '%s': %zu values for a shape of %zu elements", nm, have, numel);
        return NB_ERR_FORMAT;
    }
    if (!st) st = ox_const_alloc(c, k, type, (int)t->n_dims, t->dims);
    if (st) {
        snprintf(err, cap, "tensor '%s': %s", nm, nb_status_str(st));
        ox_const_free(k);
        return st;
    }
    for (size_t j = 0; j < k->n; j++) {
        int64_t iv = 0;
        double fv = 0;
        if (raw) read_raw(t->raw_data.data, type, j, &iv, &fv);
        else read_typed(t, type, j, &iv, &fv);
        if (k->i) k->i[j] = iv;
        else k->f[j] = fv;
    }
    return NB_OK;
}

nb_status ox_const_to_tensor(const ox_const *k, nb_dtype dt, nb_tensor *t, char *err, size_t cap)
{
    if (k->sym) {
        snprintf(err, cap, "a shape with free dimensions used as data: unsupported");
        return NB_ERR_FORMAT;
    }
    nb_status st = nb_tensor_alloc(t, dt, k->rank, k->shape);
    if (st) {
        snprintf(err, cap, "%s", nb_last_error());
        return st;
    }
    for (size_t j = 0; j < k->n; j++) {
        double v = k->i ? (double)k->i[j] : k->f[j];
        if (dt == NB_F32) ((float *)t->data)[j] = (float)v;
        else if (dt == NB_F64) ((double *)t->data)[j] = v;
        else if (k->i && (k->i[j] < INT32_MIN || k->i[j] > INT32_MAX)) {
            snprintf(err, cap, "integer %lld does not fit nabla's i32: unsupported",
                     (long long)k->i[j]);
            nb_tensor_free(t);
            return NB_ERR_FORMAT;
        } else {
            ((int32_t *)t->data)[j] = (int32_t)(k->i ? k->i[j] : (int64_t)v);
        }
    }
    return NB_OK;
}

nb_status ox_read_file(const char *path, uint8_t **buf, size_t *len, char *err, size_t cap)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, cap, "%s: cannot read the file (%s)", path, strerror(errno));
        return NB_ERR_IO;
    }
    size_t n = 0, room = 0;
    uint8_t *b = NULL;
    nb_status st = NB_OK;
    for (;;) {
        if (n == room) {
            room = room ? 2 * room : 1 << 16;
            uint8_t *nb = nb_realloc(b, room);
            if (!nb) {
                st = NB_ERR_NOMEM;
                snprintf(err, cap, "%s: out of memory", path);
                break;
            }
            b = nb;
        }
        size_t r = fread(b + n, 1, room - n, f);
        n += r;
        if (r) continue;
        if (ferror(f)) {
            st = NB_ERR_IO;
            snprintf(err, cap, "%s: cannot read the file (%s)", path, strerror(errno));
        }
        break;
    }
    fclose(f);
    if (st) {
        nb_free(b);
        return st;
    }
    *buf = b;
    *len = n;
    return NB_OK;
}

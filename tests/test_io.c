/* Tests of .npy and safetensors reading and writing. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nabla/io.h>

#include "testutil.h"

/* ---- helpers ---- */

/* A tensor of the given dtype and shape filled with distinct values. */
static nb_tensor make_tensor(nb_dtype dt, int rank, const int64_t *shape)
{
    nb_tensor t;
    cr_assert_eq(nb_tensor_alloc(&t, dt, rank, shape), NB_OK);
    for (size_t i = 0; i < nb_tensor_numel(&t); i++) {
        if (dt == NB_F32) ((float *)t.data)[i] = 0.25f * (float)i - 1.5f;
        if (dt == NB_F64) ((double *)t.data)[i] = 1.0 / (double)(i + 3) - 7.0;
        if (dt == NB_I32) ((int32_t *)t.data)[i] = (int32_t)(i * 7919) - 100000;
    }
    return t;
}

static void assert_same(const nb_tensor *a, const nb_tensor *b)
{
    cr_assert_eq(a->dtype, b->dtype);
    cr_assert_eq(a->rank, b->rank);
    for (int i = 0; i < a->rank; i++) cr_assert_eq(a->shape[i], b->shape[i]);
    cr_assert_eq(memcmp(a->data, b->data, nb_tensor_bytes(a)), 0);
}

static const nb_dtype dtypes[] = {NB_F32, NB_F64, NB_I32};
static const int ranks[] = {0, 1, 3};
static const int64_t shape3[] = {2, 3, 4};
static const int64_t shape1[] = {5};

static const int64_t *shape_of_rank(int r) { return r == 1 ? shape1 : shape3; }

/* Parses a version-1.0 buffer; returns the status (message: nb_last_error). */
static nb_status parse_dict(const char *dict, const void *data, size_t dlen, nb_tensor *out)
{
    size_t len;
    unsigned char *b = npy_buf(1, dict, data, dlen, &len);
    nb_status st = nb_npy_parse(b, len, out);
    free(b);
    return st;
}

static nb_status parse_fails(const char *dict, const void *data, size_t dlen)
{
    nb_tensor t;
    nb_status st = parse_dict(dict, data, dlen, &t);
    cr_assert_null(t.data, "a failed parse must leave no data");
    return st;
}

TestSuite(npy, .init = tmp_make, .fini = tmp_remove);
TestSuite(safetensors, .init = tmp_make, .fini = tmp_remove);

/* ---- .npy writing ---- */

Test(npy, round_trip_all_dtypes_and_ranks)
{
    for (int d = 0; d < 3; d++)
        for (int r = 0; r < 3; r++) {
            nb_tensor t = make_tensor(dtypes[d], ranks[r], shape_of_rank(ranks[r])), back;
            const char *p = tmp_path("a.npy");
            cr_assert_eq(nb_npy_write(p, &t), NB_OK, "%s", nb_last_error());
            cr_assert_eq(nb_npy_read(p, &back), NB_OK, "%s", nb_last_error());
            assert_same(&t, &back);
            nb_tensor_free(&t);
            nb_tensor_free(&back);
        }
    cr_assert_eq(tmp_count_files(), 1, "the temporary file was left behind");
}

/* Checks the written preamble: magic, version 1.0, 64-byte alignment, the
 * exact dict, space padding and the final newline. */
static void check_header(const nb_tensor *t, const char *dict)
{
    const char *p = tmp_path("h.npy");
    cr_assert_eq(nb_npy_write(p, t), NB_OK, "%s", nb_last_error());
    size_t len;
    unsigned char *b = (unsigned char *)read_text(p, &len);
    cr_assert_eq(memcmp(b, "\x93NUMPY\x01\x00", 8), 0);
    size_t total = 10 + (size_t)(b[8] | b[9] << 8);
    cr_assert_eq(total % 64, 0, "preamble of %zu bytes", total);
    cr_assert_eq(len, total + nb_tensor_bytes(t));
    cr_assert_eq(memcmp(b + 10, dict, strlen(dict)), 0, "header is '%.*s'", (int)(total - 10), b + 10);
    for (size_t i = 10 + strlen(dict); i < total - 1; i++) cr_assert_eq(b[i], ' ');
    cr_assert_eq(b[total - 1], '\n');
    cr_assert_eq(memcmp(b + total, t->data, nb_tensor_bytes(t)), 0);
    free(b);
}

Test(npy, header_bytes)
{
    nb_tensor t = make_tensor(NB_F32, 2, (int64_t[]){3, 4});
    check_header(&t, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }");
    nb_tensor_free(&t);
    t = make_tensor(NB_F64, 1, (int64_t[]){5});
    check_header(&t, "{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }");
    nb_tensor_free(&t);
    t = make_tensor(NB_I32, 0, NULL);
    check_header(&t, "{'descr': '<i4', 'fortran_order': False, 'shape': (), }");
    nb_tensor_free(&t);
    int64_t big[8] = {1, 1, 1, 1, 1, 1, 1, 0};
    t = make_tensor(NB_F32, 8, big);
    check_header(&t, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 0), }");
    nb_tensor_free(&t);
}

Test(npy, write_overwrites_and_reports_io_errors)
{
    nb_tensor a = make_tensor(NB_F64, 1, (int64_t[]){7}), b = make_tensor(NB_I32, 0, NULL), back;
    const char *p = tmp_path("o.npy");
    cr_assert_eq(nb_npy_write(p, &a), NB_OK, "%s", nb_last_error());
    cr_assert_eq(nb_npy_write(p, &b), NB_OK, "%s", nb_last_error());
    cr_assert_eq(nb_npy_read(p, &back), NB_OK, "%s", nb_last_error());
    assert_same(&b, &back);
    nb_tensor_free(&back);

    p = tmp_path("no/such/dir/x.npy");
    assert_error(nb_npy_write(p, &a), NB_ERR_IO, p);
    assert_error(nb_npy_read(tmp_path("missing.npy"), &back), NB_ERR_IO,
                 "missing.npy: cannot open");
    cr_assert_eq(nb_npy_read(tmp_path("missing.npy"), &back), NB_ERR_IO);
    /* A folder is not replaced (nor is anything but a regular file), and
     * no temporary file stays. */
    cr_assert_eq(mkdir(tmp_path("adir"), 0755), 0);
    assert_error(nb_npy_write(tmp_path("adir"), &a), NB_ERR_IO, "is a folder, not a regular file");
    cr_assert_eq(tmp_count_files(), 2);
    rmdir(tmp_path("adir"));
    nb_tensor_free(&a);
    nb_tensor_free(&b);
}

Test(npy, write_rejects_bad_tensors)
{
    nb_tensor t = {NB_F32, 1, {4}, NULL};
    assert_error(nb_npy_write(tmp_path("x.npy"), &t), NB_ERR_ARG, "no data");
    t.rank = 9;
    assert_error(nb_npy_write(tmp_path("x.npy"), &t), NB_ERR_ARG, "rank 9");
    cr_assert_eq(tmp_count_files(), 0);
}

/* ---- .npy parsing ---- */

Test(npy, parse_versions_2_and_3)
{
    double d[3] = {1.5, -2.25, 1e300};
    for (int v = 2; v <= 3; v++) {
        size_t len;
        unsigned char *b =
            npy_buf(v, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", d, sizeof d, &len);
        nb_tensor t;
        cr_assert_eq(nb_npy_parse(b, len, &t), NB_OK, "v%d: %s", v, nb_last_error());
        cr_assert_eq(t.dtype, NB_F64);
        cr_assert_eq(t.rank, 1);
        cr_assert_eq(t.shape[0], 3);
        cr_assert_eq(memcmp(t.data, d, sizeof d), 0);
        nb_tensor_free(&t);
        free(b);
    }
}

Test(npy, parse_accepts_python_dict_variants)
{
    float f[6] = {1, 2, 3, 4, 5, 6};
    nb_tensor t;
    cr_assert_eq(parse_dict("{\"shape\":(2,3,),\"descr\":\"<f4\",\"fortran_order\":False}", f, sizeof f, &t),
                 NB_OK, "%s", nb_last_error());
    cr_assert_eq(t.rank, 2);
    cr_assert_eq(t.shape[1], 3);
    nb_tensor_free(&t);
    cr_assert_eq(parse_dict("{ 'fortran_order' : False , 'shape' : ( ) , 'descr' : '<f4' }", f, 4, &t), NB_OK,
                 "%s", nb_last_error());
    cr_assert_eq(t.rank, 0);
    cr_assert_eq(((float *)t.data)[0], 1.0f);
    nb_tensor_free(&t);
    cr_assert_eq(parse_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", NULL, 0, &t),
                 NB_OK, "%s", nb_last_error());
    cr_assert_eq(nb_tensor_numel(&t), 0);
    nb_tensor_free(&t);
}

Test(npy, i8_converts_to_i32)
{
    int64_t v[4] = {0, -1, INT32_MAX, INT32_MIN};
    nb_tensor t;
    cr_assert_eq(parse_dict("{'descr': '<i8', 'fortran_order': False, 'shape': (2, 2), }", v, sizeof v, &t),
                 NB_OK, "%s", nb_last_error());
    cr_assert_eq(t.dtype, NB_I32);
    for (int i = 0; i < 4; i++) cr_assert_eq(((int32_t *)t.data)[i], v[i]);
    nb_tensor_free(&t);
}

Test(npy, i8_out_of_range)
{
    int64_t v[4] = {0, 1, (int64_t)INT32_MAX + 1, 5};
    assert_error(parse_fails("{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", v, sizeof v),
                 NB_ERR_FORMAT, "element 2 (2147483648) is out of the i32 range");
    v[2] = (int64_t)INT32_MIN - 1;
    assert_error(parse_fails("{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", v, sizeof v),
                 NB_ERR_FORMAT, "element 2");
}

Test(npy, rejects_unsupported_dtypes_and_order)
{
    float f[2] = {0};
    assert_error(parse_fails("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", f, 8),
                 NB_ERR_FORMAT, "big-endian");
    assert_error(parse_fails("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", f, 8), NB_ERR_FORMAT,
                 "<buffer>: fortran_order arrays are not supported");
    assert_error(parse_fails("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", f, 8), NB_ERR_FORMAT,
                 "object");
    assert_error(parse_fails("{'descr': '|u1', 'fortran_order': False, 'shape': (8,), }", f, 8),
                 NB_ERR_FORMAT, "dtype '|u1' is not supported");
    assert_error(parse_fails("{'descr': '<f2', 'fortran_order': False, 'shape': (4,), }", f, 8),
                 NB_ERR_FORMAT, "'<f2'");
    assert_error(parse_fails("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", f, 8),
                 NB_ERR_FORMAT, "structured");
}

Test(npy, rejects_truncated_and_extra_data)
{
    float f[3] = {0};
    assert_error(parse_fails("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", f, 8),
                 NB_ERR_FORMAT, "truncated: the data has 8 bytes, the shape needs 12");
    assert_error(parse_fails("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", f, 12),
                 NB_ERR_FORMAT, "trailing");
    /* A header length that runs past the end of the buffer. */
    size_t len;
    unsigned char *b = npy_buf(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", f, 4, &len);
    nb_tensor t;
    assert_error(nb_npy_parse(b, 40, &t), NB_ERR_FORMAT, "truncated in the header");
    /* cut inside the preamble: truncated, not "no magic" (issue 11) */
    assert_error(nb_npy_parse(b, 9, &t), NB_ERR_FORMAT, "truncated in the header length");
    assert_error(nb_npy_parse(b, 4, &t), NB_ERR_FORMAT, "truncated in the magic and version (4 of 8 bytes)");
    free(b);
}

Test(npy, rejects_garbage_magic_and_versions)
{
    nb_tensor t;
    const char junk[] = "PK\x03\x04 this is a zip file, not an array";
    assert_error(nb_npy_parse(junk, sizeof junk, &t), NB_ERR_FORMAT, "not a .npy file");
    cr_assert_eq(nb_npy_parse(junk, 0, &t), NB_ERR_FORMAT);
    size_t len;
    unsigned char *b = npy_buf(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", junk, 4, &len);
    b[6] = 4;
    assert_error(nb_npy_parse(b, len, &t), NB_ERR_FORMAT, "version 4.0");
    free(b);
}

Test(npy, rejects_malformed_dicts)
{
    float f[8] = {0};
    const struct {
        const char *dict, *msg;
    } cases[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", "expected ','"},
        {"{'descr': '<f4', 'fortran_order': False}", "no key 'shape'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'shape': (2,)}", "twice"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", "unknown key 'x'"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}", "True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", "non-negative"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (02,)}", "leading zeros"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,),, }", "expected a quoted string"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,) 'x'}", "',' or '}'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", "only spaces"},
        {"{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2,)}", "plain string"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,2)}", "more than 8"},
        {"['descr', '<f4']", "'{'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_error(parse_fails(cases[i].dict, f, 8), NB_ERR_FORMAT, cases[i].msg);
    assert_error(
        parse_fails("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", f, 8),
        NB_ERR_OVERFLOW, "too large");
    assert_error(
        parse_fails("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296)}", f, 8),
        NB_ERR_OVERFLOW, "too large");
}

Test(npy, reads_conformance_inputs)
{
    nb_tensor x, t;
    cr_assert_eq(nb_npy_read(test_file("conformance/mlp/in/x.npy"), &x), NB_OK, "%s", nb_last_error());
    cr_assert_eq(x.dtype, NB_F64);
    cr_assert_eq(x.rank, 2);
    cr_assert_eq(x.shape[0], 5);
    cr_assert_eq(x.shape[1], 6);
    cr_assert_eq(((double *)x.data)[0], -1.4238250364546312);
    cr_assert_eq(((double *)x.data)[29], 2.61815942636784);
    cr_assert_eq(nb_npy_read(test_file("conformance/mlp/in/t.npy"), &t), NB_OK, "%s", nb_last_error());
    cr_assert_eq(t.dtype, NB_I32);
    cr_assert_eq(t.rank, 1);
    cr_assert_eq(t.shape[0], 5);
    int32_t want[5] = {2, 2, 1, 1, 0};
    cr_assert_eq(memcmp(t.data, want, sizeof want), 0);
    nb_tensor_free(&x);
    nb_tensor_free(&t);
}

/* ---- safetensors ---- */

/* Writes a safetensors file from a JSON header and a data section. */
static const char *st_file(const char *json, const void *data, size_t dlen)
{
    size_t hl = strlen(json);
    unsigned char *b = malloc(8 + hl + dlen + 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, json, hl);
    if (dlen) memcpy(b + 8 + hl, data, dlen);
    const char *p = tmp_path("t.safetensors");
    write_file(p, b, 8 + hl + dlen);
    free(b);
    return p;
}

static nb_status st_read(const char *json, const void *data, size_t dlen, nb_tensor_set *out)
{
    nb_status st = nb_safetensors_read(st_file(json, data, dlen), out);
    if (st) cr_assert_eq(out->n + out->n_meta, 0, "a failed read must leave an empty set");
    return st;
}

Test(safetensors, round_trip_all_dtypes_and_ranks_with_metadata)
{
    nb_tensor_set set = {0}, back;
    char name[32];
    for (int d = 0; d < 3; d++)
        for (int r = 0; r < 3; r++) {
            nb_tensor t = make_tensor(dtypes[d], ranks[r], shape_of_rank(ranks[r]));
            snprintf(name, sizeof name, "%s.rank%d", nb_dtype_name(dtypes[d]), ranks[r]);
            cr_assert_eq(nb_tensor_set_add(&set, name, &t), NB_OK);
            nb_tensor_free(&t);
        }
    cr_assert_eq(nb_tensor_set_meta(&set, "format", "pt"), NB_OK);
    cr_assert_eq(nb_tensor_set_meta(&set, "note", "h\xc3\xa9llo \"quoted\""), NB_OK);
    const char *p = tmp_path("w.safetensors");
    cr_assert_eq(nb_safetensors_write(p, &set), NB_OK, "%s", nb_last_error());
    cr_assert_eq(nb_safetensors_read(p, &back), NB_OK, "%s", nb_last_error());
    cr_assert_eq(back.n, 9);
    for (size_t i = 0; i < set.n; i++) {
        cr_assert_str_eq(back.items[i].name, set.items[i].name, "tensors must keep their order");
        assert_same(&set.items[i].t, &back.items[i].t);
    }
    cr_assert_eq(back.n_meta, 2);
    cr_assert_str_eq(back.meta_keys[1], "note");
    cr_assert_str_eq(back.meta_vals[1], "h\xc3\xa9llo \"quoted\"");
    cr_assert_eq(tmp_count_files(), 1);
    nb_tensor_set_free(&set);
    nb_tensor_set_free(&back);
}

Test(safetensors, written_layout)
{
    nb_tensor_set set = {0};
    nb_tensor a = make_tensor(NB_F32, 1, (int64_t[]){3}), b = make_tensor(NB_I32, 0, NULL);
    cr_assert_eq(nb_tensor_set_add(&set, "b", &b), NB_OK);
    cr_assert_eq(nb_tensor_set_add(&set, "a", &a), NB_OK);
    const char *p = tmp_path("l.safetensors");
    cr_assert_eq(nb_safetensors_write(p, &set), NB_OK, "%s", nb_last_error());
    size_t len;
    unsigned char *f = (unsigned char *)read_text(p, &len);
    const char *json = "{\"b\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[4,16]}}";
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)f[i] << (8 * i);
    cr_assert_eq(n % 8, 0);
    cr_assert_eq(n, (strlen(json) + 7) / 8 * 8);
    cr_assert_eq(memcmp(f + 8, json, strlen(json)), 0, "header is %.*s", (int)n, f + 8);
    for (size_t i = 8 + strlen(json); i < 8 + n; i++) cr_assert_eq(f[i], ' ');
    cr_assert_eq(len, 8 + n + 16);
    cr_assert_eq(memcmp(f + 8 + n, b.data, 4), 0);
    cr_assert_eq(memcmp(f + 8 + n + 4, a.data, 12), 0);
    free(f);
    nb_tensor_free(&a);
    nb_tensor_free(&b);
    nb_tensor_set_free(&set);
}

Test(safetensors, reads_conformance_weights)
{
    nb_tensor_set set;
    cr_assert_eq(nb_safetensors_read(test_file("conformance/mlp/weights.safetensors"), &set), NB_OK,
                 "%s", nb_last_error());
    cr_assert_eq(set.n, 6);
    const nb_tensor *w = nb_tensor_set_find(&set, "h1.W"), *b = nb_tensor_set_find(&set, "h1.b");
    cr_assert_not_null(w);
    cr_assert_not_null(b);
    cr_assert_eq(w->dtype, NB_F64);
    cr_assert_eq(w->rank, 2);
    cr_assert_eq(w->shape[0], 6);
    cr_assert_eq(w->shape[1], 5);
    cr_assert_eq(((double *)w->data)[0], -0.6046941434871581);
    cr_assert_eq(((double *)w->data)[29], -0.2074268805356653);
    cr_assert_eq(b->rank, 1);
    cr_assert_eq(b->shape[0], 5);
    cr_assert_eq(((double *)b->data)[4], -0.5772647916225223);
    const nb_tensor *yb = nb_tensor_set_find(&set, "y.b");
    cr_assert_not_null(yb);
    cr_assert_eq(((double *)yb->data)[2], -0.0621709639241657);
    cr_assert_null(nb_tensor_set_find(&set, "h3.W"));
    nb_tensor_set_free(&set);
}

Test(safetensors, rejects_bad_offsets)
{
    char data[96] = {0};
    nb_tensor_set s;
    assert_error(
        st_read("{\"W1\":{\"dtype\":\"F32\",\"shape\":[25],\"data_offsets\":[0,100]}}", data, 96, &s),
        NB_ERR_FORMAT, "tensor 'W1' data [0, 100) overruns the data section of 96 bytes");
    assert_error(st_read("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                         data, 12, &s),
                 NB_ERR_FORMAT, "tensor 'b' data [4, 12) overlaps the tensor 'a'");
    assert_error(st_read("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", data, 12, &s),
                 NB_ERR_FORMAT, "gap of 4 bytes");
    assert_error(st_read("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", data, 12, &s),
                 NB_ERR_FORMAT, "cover 8 bytes of the data section of 12");
    assert_error(st_read("{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,12]}}", data, 12, &s),
                 NB_ERR_FORMAT, "has 12 bytes of data, its shape and dtype need 16");
    assert_error(st_read("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", data, 12, &s),
                 NB_ERR_FORMAT, "begin <= end");
}

Test(safetensors, rejects_duplicate_keys_and_bad_json)
{
    char data[8] = {0};
    nb_tensor_set s;
    assert_error(st_read("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                         data, 8, &s),
                 NB_ERR_FORMAT, "duplicate");
    assert_error(st_read("{\"a\":", data, 8, &s), NB_ERR_FORMAT, "not valid JSON");
    assert_error(st_read("[1, 2]", data, 0, &s), NB_ERR_FORMAT, "not a JSON object");
    assert_error(st_read("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", data, 4, &s), NB_ERR_FORMAT,
                 "has no 'data_offsets'");
    assert_error(st_read("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", data, 4, &s),
                 NB_ERR_FORMAT, "dimension 0");
    /* Header lengths that do not fit in the file. */
    assert_error(nb_safetensors_read(st_file("", NULL, 0), &s), NB_ERR_FORMAT,
                 "not valid JSON");
    unsigned char b[12] = {200, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
    write_file(tmp_path("short.safetensors"), b, sizeof b);
    assert_error(nb_safetensors_read(tmp_path("short.safetensors"), &s), NB_ERR_FORMAT,
                 "header length 200 overruns the file of 12 bytes");
    write_file(tmp_path("tiny.safetensors"), b, 5);
    assert_error(nb_safetensors_read(tmp_path("tiny.safetensors"), &s), NB_ERR_FORMAT,
                 "too short");
    assert_error(nb_safetensors_read(tmp_path("none.safetensors"), &s), NB_ERR_IO,
                 "cannot open");
}

Test(safetensors, rejects_unknown_dtype)
{
    char data[8] = {0};
    nb_tensor_set s;
    assert_error(st_read("{\"emb\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]}}", data, 8, &s),
                 NB_ERR_FORMAT, "tensor 'emb' has dtype BF16, which is not supported");
    assert_error(st_read("{\"emb\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", data, 8, &s),
                 NB_ERR_FORMAT, "dtype F16");
}

Test(safetensors, metadata_values_must_be_strings)
{
    nb_tensor_set s;
    cr_assert_eq(st_read("{\"__metadata__\":{\"k\":\"v\"}}", NULL, 0, &s), NB_OK, "%s", nb_last_error());
    cr_assert_eq(s.n, 0);
    cr_assert_eq(s.n_meta, 1);
    cr_assert_str_eq(s.meta_vals[0], "v");
    nb_tensor_set_free(&s);
    assert_error(st_read("{\"__metadata__\":{\"k\":3}}", NULL, 0, &s), NB_ERR_FORMAT,
                 "value of 'k' is not a string");
    assert_error(st_read("{\"__metadata__\":[]}", NULL, 0, &s), NB_ERR_FORMAT,
                 "__metadata__ is not a JSON object");
}

Test(safetensors, i64_converts_with_range_check)
{
    int64_t v[3] = {-5, 0, INT32_MAX};
    nb_tensor_set s;
    const char *json = "{\"t\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[0,24]}}";
    cr_assert_eq(st_read(json, v, sizeof v, &s), NB_OK, "%s", nb_last_error());
    cr_assert_eq(s.items[0].t.dtype, NB_I32);
    for (int i = 0; i < 3; i++) cr_assert_eq(((int32_t *)s.items[0].t.data)[i], v[i]);
    nb_tensor_set_free(&s);
    v[1] = INT64_MIN;
    assert_error(st_read(json, v, sizeof v, &s), NB_ERR_FORMAT, "tensor 't': I64 element 1");
}

Test(safetensors, tensor_set_api)
{
    nb_tensor_set set = {0};
    cr_assert_null(nb_tensor_set_find(&set, "x"));
    nb_tensor t = make_tensor(NB_F32, 1, (int64_t[]){2});
    char name[] = "x";
    cr_assert_eq(nb_tensor_set_add(&set, name, &t), NB_OK);
    name[0] = 'y';
    ((float *)t.data)[0] = 42.0f;
    const nb_tensor *x = nb_tensor_set_find(&set, "x");
    cr_assert_not_null(x, "the name must be copied");
    cr_assert_neq(((float *)x->data)[0], 42.0f, "the data must be copied");
    cr_assert_eq(nb_tensor_set_add(&set, "x", &t), NB_ERR_NAME);
    cr_assert_eq(nb_tensor_set_add(&set, "__metadata__", &t), NB_ERR_NAME);
    cr_assert_eq(nb_tensor_set_meta(&set, "k", "1"), NB_OK);
    cr_assert_eq(nb_tensor_set_meta(&set, "k", "2"), NB_OK);
    cr_assert_eq(set.n_meta, 1);
    cr_assert_str_eq(set.meta_vals[0], "2");
    nb_tensor_set_free(&set);
    cr_assert_eq(set.n, 0);
    cr_assert_null(set.items);
    cr_assert_null(set.meta_keys);
    nb_tensor_set_free(&set); /* a zeroed set is valid */
    cr_assert_eq(nb_safetensors_write(tmp_path("empty.safetensors"), &set), NB_OK, "%s",
                 nb_last_error());
    cr_assert_eq(nb_safetensors_read(tmp_path("empty.safetensors"), &set), NB_OK, "%s", nb_last_error());
    cr_assert_eq(set.n + set.n_meta, 0);
    nb_tensor_free(&t);
}

Test(safetensors, write_rejects_duplicate_names)
{
    nb_tensor t = make_tensor(NB_F64, 0, NULL);
    nb_named_tensor items[2] = {{"same", t, NULL}, {"same", t, NULL}};
    nb_tensor_set set = {2, items, 0, NULL, NULL, NULL};  /* filled by hand: no index */
    assert_error(nb_safetensors_write(tmp_path("d.safetensors"), &set), NB_ERR_NAME,
                 "two tensors are named 'same'");
    items[0].name = "__metadata__";
    assert_error(nb_safetensors_write(tmp_path("d.safetensors"), &set), NB_ERR_NAME,
                 "cannot be named __metadata__");
    cr_assert_eq(tmp_count_files(), 0);
    nb_tensor_free(&t);
}

/* ---- a graph's params by name ------------------------------------------- */

static nb_graph *two_params(nb_dtype dt, uint64_t seed)
{
    nb_graph *g = nb_graph_new();
    nb_param(g, "W", dt, 2, (int64_t[]){3, 2}, (nb_init){.kind = NB_INIT_HE, .seed = seed});
    nb_param(g, "b", dt, 1, (int64_t[]){2}, (nb_init){.kind = NB_INIT_UNIFORM, .a = -1, .b = 1, .seed = seed});
    cr_assert_eq(nb_graph_status(g), NB_OK);
    return g;
}

static double value(nb_graph *g, const char *name, size_t i)
{
    const nb_tensor *t = nb_param_value(nb_graph_find(g, name));
    return get_elem(t->dtype, t->data, i);
}

Test(weights, save_then_load_by_name_with_conversion, .init = tmp_make, .fini = tmp_remove)
{
    nb_graph *a = two_params(NB_F64, 1), *b = two_params(NB_F32, 2);
    const char *meta[2] = {"epoch", "3"};
    cr_assert_eq(nb_weights_save(a, tmp_path("w.safetensors"), meta, 1), NB_OK, "%s", nb_graph_error(a));
    nb_diags ignored;
    cr_assert_eq(nb_weights_load(b, tmp_path("w.safetensors"), &ignored), NB_OK, "%s", nb_graph_error(b));
    cr_expect_eq(ignored.n, 0);
    for (size_t i = 0; i < 6; i++) cr_expect_float_eq(value(b, "W", i), value(a, "W", i), 1e-6);
    for (size_t i = 0; i < 2; i++) cr_expect_float_eq(value(b, "b", i), value(a, "b", i), 1e-6);
    nb_tensor_set set = {0};
    cr_assert_eq(nb_safetensors_read(tmp_path("w.safetensors"), &set), NB_OK);
    cr_expect_eq(set.n_meta, 1);
    cr_expect_str_eq(set.meta_vals[0], "3");
    nb_tensor_set_free(&set);
    nb_graph_free(a);
    nb_graph_free(b);
}

Test(weights, a_bad_file_changes_nothing_and_names_the_param, .init = tmp_make, .fini = tmp_remove)
{
    nb_tensor_set set = {0};
    nb_tensor W = make_tensor(NB_F32, 2, (int64_t[]){3, 2}), b = make_tensor(NB_F32, 1, (int64_t[]){5});
    nb_tensor_set_add(&set, "W", &W);
    nb_tensor_set_add(&set, "b", &b);
    nb_tensor_set_add(&set, "extra", &b);
    cr_assert_eq(nb_safetensors_write(tmp_path("bad.safetensors"), &set), NB_OK);
    nb_graph *g = two_params(NB_F32, 1);
    double w0 = value(g, "W", 0);
    cr_expect_eq(nb_weights_load(g, tmp_path("bad.safetensors"), NULL), NB_ERR_SHAPE);
    cr_expect(strstr(nb_graph_error(g), "param 'b' is f32 [2] but the file's tensor is f32 [5]"), "%s", nb_graph_error(g));
    cr_expect_eq(value(g, "W", 0), w0, "W was loaded although b is misshapen");
    /* with b right, the extra tensor is reported, not an error */
    nb_tensor_set_free(&set);
    nb_tensor b2 = make_tensor(NB_F64, 1, (int64_t[]){2});
    nb_tensor_set_add(&set, "W", &W);
    nb_tensor_set_add(&set, "b", &b2);
    nb_tensor_set_add(&set, "extra", &b2);
    cr_assert_eq(nb_safetensors_write(tmp_path("ok.safetensors"), &set), NB_OK);
    nb_diags ignored;
    cr_assert_eq(nb_weights_load(g, tmp_path("ok.safetensors"), &ignored), NB_OK, "%s", nb_graph_error(g));
    cr_assert_eq(ignored.n, 1);
    cr_expect_str_eq(ignored.lines[0], "extra");
    nb_diags_free(&ignored);
    cr_expect_eq(nb_weights_load(g, tmp_path("missing.safetensors"), NULL), NB_ERR_IO);
    nb_tensor_set_free(&set);
    nb_tensor_free(&W);
    nb_tensor_free(&b);
    nb_tensor_free(&b2);
    nb_graph_free(g);
}

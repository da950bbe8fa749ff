/* Tests of datasets (include/nabla/data.h): IDX and .npy loading with their
 * error messages, the held-out part, shuffles, batches, label checks, and the
 * real Fashion-MNIST files of the Debian package dataset-fashion-mnist. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <nabla/data.h>
#include <nabla/io.h>

#include "data_internal.h" /* to see that a split shares its data */
#include "testutil.h"

/* ---- files in a fresh folder per test (the harness's temporary folder) ---- */

TestSuite(data, .init = tmp_make, .fini = tmp_remove);

/* An IDX header: 0, 0, type, rank, then the sizes big-endian. */
static size_t idx_header(unsigned char *h, int type, int rank, const uint32_t *dims)
{
    h[0] = h[1] = 0;
    h[2] = (unsigned char)type;
    h[3] = (unsigned char)rank;
    for (int i = 0; i < rank; i++)
        for (int b = 0; b < 4; b++) h[4 + 4 * i + b] = (unsigned char)(dims[i] >> (24 - 8 * b));
    return 4 + 4 * (size_t)rank;
}

/* Writes header + data (len bytes), raw or through gzip. */
static const char *write_idx(const char *name, bool gz, int type, int rank, const uint32_t *dims, const void *data,
                             size_t len)
{
    unsigned char h[4 + 4 * 255];
    size_t hl = idx_header(h, type, rank, dims);
    const char *path = tmp_path(name);
    if (gz) {
        gzFile z = gzopen(path, "wb");
        cr_assert_not_null(z);
        cr_assert_eq(gzwrite(z, h, (unsigned)hl), (int)hl);
        if (len) cr_assert_eq(gzwrite(z, data, (unsigned)len), (int)len);
        cr_assert_eq(gzclose(z), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        cr_assert_not_null(f);
        cr_assert_eq(fwrite(h, 1, hl, f), hl);
        if (len) cr_assert_eq(fwrite(data, 1, len, f), len);
        fclose(f);
    }
    return path;
}

/* n images of 2x3 pixels (pixel j of image i = 10 i + j) and labels i % 10. */
static const char *images_file(const char *name, bool gz, uint32_t n)
{
    unsigned char px[256 * 6];
    cr_assert_leq(n, 256);
    for (uint32_t i = 0; i < n * 6; i++) px[i] = (unsigned char)(10 * (i / 6) + i % 6);
    return write_idx(name, gz, 0x08, 3, (uint32_t[]){n, 2, 3}, px, n * 6);
}

static const char *labels_file(const char *name, bool gz, uint32_t n)
{
    unsigned char lb[256];
    cr_assert_leq(n, 256);
    for (uint32_t i = 0; i < n; i++) lb[i] = (unsigned char)(i % 10);
    return write_idx(name, gz, 0x08, 1, (uint32_t[]){n}, lb, n);
}

/* Loading must fail with st and a message naming the file and saying `what`. */
static void expect_load_error(const char *images, const char *labels, nb_status st, const char *file,
                              const char *what)
{
    nb_dataset *d = (nb_dataset *)1;
    cr_assert_eq(nb_dataset_load_idx(images, labels, &d), st, "got '%s'", nb_last_error());
    cr_assert_null(d);
    assert_has(nb_last_error(), file);
    assert_has(nb_last_error(), what);
}

static size_t iota[64] = {0};

static void set_iota(void)
{
    for (size_t i = 0; i < 64; i++) iota[i] = i;
}

/* ---- IDX ---- */

static void check_small(nb_dataset *d, const char *images, const char *labels)
{
    cr_assert_eq(nb_dataset_size(d), 5);
    cr_assert_eq(nb_dataset_num_fields(d), 2);
    cr_assert_eq(nb_dataset_field(d, "images"), 0);
    cr_assert_eq(nb_dataset_field(d, "labels"), 1);
    cr_assert_eq(nb_dataset_field(d, "pixels"), -1);
    cr_assert_str_eq(nb_dataset_field_path(d, 0), images);
    cr_assert_str_eq(nb_dataset_field_path(d, 1), labels);
    cr_assert_eq(nb_dataset_field_type(d, 0), NB_FIELD_U8);
    int64_t shape[NB_MAX_DIMS];
    cr_assert_eq(nb_dataset_field_shape(d, 0, shape), 2);
    cr_assert(shape[0] == 2 && shape[1] == 3);
    cr_assert_eq(nb_dataset_field_shape(d, 1, shape), 0);
    cr_assert_eq(nb_dataset_field_numel(d, 0), 6);
    cr_assert_eq(nb_dataset_field_numel(d, 1), 1);
    set_iota();
    int32_t px[5 * 6], lb[5];
    cr_assert_eq(nb_dataset_batch(d, 0, iota, 5, NB_I32, 1, px, sizeof px), NB_OK, "%s", nb_dataset_error(d));
    for (int i = 0; i < 30; i++) cr_assert_eq(px[i], 10 * (i / 6) + i % 6);
    cr_assert_eq(nb_dataset_batch(d, 1, iota, 5, NB_I32, 1, lb, sizeof lb), NB_OK);
    for (int i = 0; i < 5; i++) cr_assert_eq(lb[i], i);
}

Test(data, idx_raw_reads_back)
{
    const char *im = images_file("im", false, 5), *lb = labels_file("lb", false, 5);
    nb_dataset *d;
    cr_assert_eq(nb_dataset_load_idx(im, lb, &d), NB_OK, "%s", nb_last_error());
    check_small(d, im, lb);
    nb_dataset_free(d);
}

Test(data, idx_gzip_reads_back)
{
    const char *im = images_file("im.gz", true, 5), *lb = labels_file("lb.gz", true, 5);
    nb_dataset *d;
    cr_assert_eq(nb_dataset_load_idx(im, lb, &d), NB_OK, "%s", nb_last_error());
    check_small(d, im, lb);
    nb_dataset_free(d);
}

Test(data, idx_truncated)
{
    unsigned char px[7] = {0};
    const char *lb = labels_file("lb", false, 5);
    const char *im = write_idx("im", false, 0x08, 3, (uint32_t[]){5, 2, 2}, px, 7);
    expect_load_error(im, lb, NB_ERR_FORMAT, im,
                      "truncated: the header says 5×2×2 = 20 bytes of data, the file has 7");
    im = write_idx("im.gz", true, 0x08, 3, (uint32_t[]){5, 2, 2}, px, 7);
    expect_load_error(im, lb, NB_ERR_FORMAT, im, "the file has 7");
}

/* A gzip stream cut in the middle reads as truncated data. */
Test(data, idx_gzip_cut_short)
{
    unsigned char px[4000];
    for (int i = 0; i < 4000; i++) px[i] = (unsigned char)(i * 7919 >> 3);
    const char *im = write_idx("im.gz", true, 0x08, 2, (uint32_t[]){100, 40}, px, 4000);
    FILE *f = fopen(im, "rb+");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    cr_assert_eq(truncate(im, size / 2), 0);
    expect_load_error(im, labels_file("lb", false, 100), NB_ERR_FORMAT, im, "truncated");
}

Test(data, idx_wrong_magic)
{
    const char *lb = labels_file("lb", false, 5);
    const char *im = tmp_path("im");
    write_text(im, "P5 28 28 255\n");
    expect_load_error(im, lb, NB_ERR_FORMAT, im, "not an IDX file");
    write_file(im, "\0\0\x05", 3);  /* a magic cut short after its zero bytes */
    expect_load_error(im, lb, NB_ERR_FORMAT, im, "not an IDX file");
    write_file(im, "", 0);
    expect_load_error(im, lb, NB_ERR_FORMAT, im, "not an IDX file");
}

Test(data, idx_wrong_type)
{
    float px[5] = {0};
    const char *im = write_idx("im", false, 0x0D, 1, (uint32_t[]){5}, px, sizeof px);
    expect_load_error(im, labels_file("lb", false, 5), NB_ERR_FORMAT, im, "type 0x0d (float) is not supported");
}

Test(data, idx_dimension_counts)
{
    unsigned char px[1] = {0};
    const char *lb = labels_file("lb", false, 1);
    const char *im = write_idx("im", false, 0x08, 0, NULL, px, 1);
    expect_load_error(im, lb, NB_ERR_FORMAT, im, "has 0 dimensions");
    im = write_idx("im5", false, 0x08, 5, (uint32_t[]){1, 1, 1, 1, 1}, px, 1);
    expect_load_error(im, lb, NB_ERR_FORMAT, im, "has 5 dimensions");
    im = write_idx("im0", false, 0x08, 3, (uint32_t[]){1, 0, 3}, px, 0);
    expect_load_error(im, lb, NB_ERR_FORMAT, im, "dimension 2 of the IDX header (1×0×3) is 0");
    im = write_idx("imbig", false, 0x08, 4, (uint32_t[]){~0u, ~0u, ~0u, ~0u}, px, 1);
    expect_load_error(im, lb, NB_ERR_OVERFLOW, im, "too large");
}

Test(data, idx_truncated_header)
{
    const char *lb = labels_file("lb", false, 5);
    unsigned char h[6] = {0, 0, 8, 3, 0, 0};
    const char *im = tmp_path("im");
    write_file(im, h, sizeof h);
    expect_load_error(im, lb, NB_ERR_FORMAT, im, "truncated in the header");
}

Test(data, idx_trailing_bytes)
{
    unsigned char px[22] = {0};
    const char *lb = labels_file("lb", false, 5);
    const char *im = write_idx("im", false, 0x08, 3, (uint32_t[]){5, 2, 2}, px, 22);
    expect_load_error(im, lb, NB_ERR_FORMAT, im, "trailing data: 2 bytes after the 20");
    im = write_idx("im.gz", true, 0x08, 3, (uint32_t[]){5, 2, 2}, px, 22);
    expect_load_error(im, lb, NB_ERR_FORMAT, im, "trailing data: 2 bytes");
}

Test(data, idx_count_mismatch)
{
    const char *im = images_file("im", false, 5), *lb = labels_file("lb", true, 4);
    expect_load_error(im, lb, NB_ERR_SHAPE, im, "5 images");
    assert_has(nb_last_error(), lb);
    assert_has(nb_last_error(), "4 labels");
}

Test(data, idx_labels_must_be_1d)
{
    const char *im = images_file("im", false, 5);
    expect_load_error(im, images_file("lb", false, 5), NB_ERR_SHAPE, "lb", "labels must be 1-D");
}

Test(data, idx_missing_file)
{
    const char *lb = labels_file("lb", false, 5);
    const char *im = tmp_path("nothing-here.gz");
    expect_load_error(im, lb, NB_ERR_IO, im, "cannot open");
    expect_load_error(images_file("im", false, 5), im, NB_ERR_IO, im, "cannot open");
    nb_dataset *d = NULL;
    cr_assert_eq(nb_dataset_load_idx(NULL, lb, &d), NB_ERR_ARG);
    cr_assert_eq(nb_dataset_load_idx(im, lb, NULL), NB_ERR_ARG);
}

/* A gzip file whose checksum is wrong is corrupt, not silently accepted. */
Test(data, idx_gzip_bad_checksum)
{
    const char *im = images_file("im.gz", true, 5);
    FILE *f = fopen(im, "rb+");
    cr_assert_not_null(f);
    fseek(f, -8, SEEK_END); /* the CRC-32 of the gzip trailer */
    int c = fgetc(f);
    fseek(f, -8, SEEK_END);
    fputc(c ^ 0xff, f);
    fclose(f);
    expect_load_error(im, labels_file("lb", false, 5), NB_ERR_FORMAT, im, "corrupt gzip data");
}

/* A load that succeeds clears the thread's message (core.h, rule 3). */
Test(data, load_success_clears_message)
{
    const char *im = images_file("im", false, 5), *lb = labels_file("lb", false, 5);
    nb_dataset *d;
    cr_assert_neq(nb_dataset_load_idx(im, tmp_path("none"), &d), NB_OK);
    cr_assert_neq(nb_last_error()[0], 0);
    cr_assert_eq(nb_dataset_load_idx(im, lb, &d), NB_OK);
    cr_assert_str_eq(nb_last_error(), "");
    nb_dataset_free(d);
}

/* ---- .npy ---- */

/* Writes a tensor of the given dtype and shape whose element k is k * step. */
static const char *npy_file(const char *name, nb_dtype dt, int rank, const int64_t *shape, double step)
{
    size_t n = shape_numel(rank, shape);
    double *v = malloc(n * sizeof *v);
    cr_assert_not_null(v);
    for (size_t k = 0; k < n; k++) v[k] = k * step;
    const char *path = tmp_path(name);
    write_npy(path, dt, rank, shape, v);
    free(v);
    return path;
}

Test(data, npy_fields)
{
    const char *x = npy_file("x.npy", NB_F64, 3, (int64_t[]){4, 2, 3}, 0.5);
    const char *t = npy_file("t.npy", NB_I32, 1, (int64_t[]){4}, 1);
    nb_dataset *d;
    cr_assert_eq(nb_dataset_load_npy((const char *[]){"x", "t"}, (const char *[]){x, t}, 2, &d), NB_OK, "%s",
                 nb_last_error());
    cr_assert_eq(nb_dataset_size(d), 4);
    cr_assert_eq(nb_dataset_num_fields(d), 2);
    cr_assert_eq(nb_dataset_field(d, "t"), 1);
    cr_assert_str_eq(nb_dataset_field_name(d, 0), "x");
    cr_assert_eq(nb_dataset_field_type(d, 0), NB_FIELD_F64);
    cr_assert_eq(nb_dataset_field_type(d, 1), NB_FIELD_I32);
    cr_assert_eq(nb_dataset_field_type(d, 2), NB_FIELD_NONE);
    cr_assert_str_eq(nb_field_type_name(NB_FIELD_F64), "f64");
    int64_t shape[NB_MAX_DIMS];
    cr_assert_eq(nb_dataset_field_shape(d, 0, shape), 2);
    cr_assert(shape[0] == 2 && shape[1] == 3);
    cr_assert_eq(nb_dataset_field_shape(d, 1, NULL), 0);
    cr_assert_eq(nb_dataset_field_shape(d, -1, shape), -1);
    cr_assert_null(nb_dataset_field_name(d, 2));

    /* f64 -> f32 with a scale, samples 3 and 1 */
    float xs[2 * 6];
    cr_assert_eq(nb_dataset_batch(d, 0, (size_t[]){3, 1}, 2, NB_F32, 2.0, xs, sizeof xs), NB_OK, "%s",
                 nb_dataset_error(d));
    for (int k = 0; k < 6; k++) {
        cr_assert_eq(xs[k], (float)((18 + k) * 0.5 * 2.0));
        cr_assert_eq(xs[6 + k], (float)((6 + k) * 0.5 * 2.0));
    }
    /* i32 -> i32 and i32 -> f64 */
    int32_t ts[3];
    double tf[3];
    cr_assert_eq(nb_dataset_batch(d, 1, (size_t[]){2, 0, 3}, 3, NB_I32, 1, ts, sizeof ts), NB_OK);
    cr_assert(ts[0] == 2 && ts[1] == 0 && ts[2] == 3);
    cr_assert_eq(nb_dataset_batch(d, 1, (size_t[]){2, 0, 3}, 3, NB_F64, 0.25, tf, sizeof tf), NB_OK);
    cr_assert(tf[0] == 0.5 && tf[1] == 0 && tf[2] == 0.75);
    /* float data is not an integer input */
    int32_t xi[6];
    cr_assert_eq(nb_dataset_batch(d, 0, (size_t[]){0}, 1, NB_I32, 1, xi, sizeof xi), NB_ERR_DTYPE);
    assert_has(nb_dataset_error(d), x);
    assert_has(nb_dataset_error(d), "f64 values");
    nb_dataset_free(d);
}

/* An int64 ("<i8") .npy written by hand, as numpy writes labels by default. */
static const char *npy_i8_file(const char *name, const int64_t *v, size_t n)
{
    char dict[128];
    snprintf(dict, sizeof dict, "{'descr': '<i8', 'fortran_order': False, 'shape': (%zu,), }", n);
    size_t len;
    unsigned char *b = npy_buf(1, dict, v, n * sizeof *v, &len);
    const char *path = tmp_path(name);
    write_file(path, b, len);
    free(b);
    return path;
}

Test(data, npy_i8_labels_become_i32)
{
    const char *t = npy_i8_file("t.npy", (const int64_t[]){3, 0, 9}, 3);
    const char *bad = npy_i8_file("bad.npy", (const int64_t[]){3, 1LL << 40, 9}, 3);
    nb_dataset *d;
    cr_assert_eq(nb_dataset_load_npy((const char *[]){"t"}, (const char *[]){t}, 1, &d), NB_OK, "%s",
                 nb_last_error());
    cr_assert_eq(nb_dataset_field_type(d, 0), NB_FIELD_I32);
    int32_t v[3];
    cr_assert_eq(nb_dataset_batch(d, 0, (size_t[]){2, 1, 0}, 3, NB_I32, 1, v, sizeof v), NB_OK);
    cr_assert(v[0] == 9 && v[1] == 0 && v[2] == 3);
    nb_dataset_free(d);
    cr_assert_eq(nb_dataset_load_npy((const char *[]){"t"}, (const char *[]){bad}, 1, &d), NB_ERR_FORMAT);
    assert_has(nb_last_error(), "bad.npy");
    assert_has(nb_last_error(), "out of the i32 range");
}

/* Getters answer NULL and bad indices without crashing. */
Test(data, getters_on_null)
{
    cr_assert_eq(nb_dataset_size(NULL), 0);
    cr_assert_eq(nb_dataset_num_fields(NULL), 0);
    cr_assert_eq(nb_dataset_field(NULL, "x"), -1);
    cr_assert_eq(nb_dataset_field_shape(NULL, 0, NULL), -1);
    cr_assert_eq(nb_dataset_field_numel(NULL, 0), 0);
    cr_assert_eq(nb_dataset_field_type(NULL, 0), NB_FIELD_NONE);
    cr_assert_null(nb_dataset_field_path(NULL, 0));
    cr_assert_not_null(nb_dataset_error(NULL));
    cr_assert_eq(nb_dataset_status(NULL), NB_ERR_ARG);
    cr_assert_str_eq(nb_field_type_name(NB_FIELD_NONE), "none");
    nb_dataset *h = (nb_dataset *)1;
    cr_assert_eq(nb_dataset_split(NULL, 0.1, &h), NB_ERR_ARG);
    cr_assert_null(h);
    nb_dataset_free(NULL);
}

Test(data, npy_first_axes_must_agree)
{
    const char *x = npy_file("x.npy", NB_F32, 2, (int64_t[]){4, 3}, 1);
    const char *t = npy_file("t.npy", NB_I32, 1, (int64_t[]){5}, 1);
    nb_dataset *d = (nb_dataset *)1;
    cr_assert_eq(nb_dataset_load_npy((const char *[]){"x", "t"}, (const char *[]){x, t}, 2, &d), NB_ERR_SHAPE);
    cr_assert_null(d);
    assert_has(nb_last_error(), "t.npy: 5 samples (first axis), but");
    assert_has(nb_last_error(), "x.npy has 4");
}

Test(data, npy_bad_arrays)
{
    const char *x = npy_file("x.npy", NB_F32, 2, (int64_t[]){4, 3}, 1);
    const char *s = npy_file("s.npy", NB_F32, 0, NULL, 1);
    const char *z = npy_file("z.npy", NB_F32, 2, (int64_t[]){4, 0}, 1);
    nb_dataset *d;
    cr_assert_eq(nb_dataset_load_npy((const char *[]){"x", "s"}, (const char *[]){x, s}, 2, &d), NB_ERR_SHAPE);
    assert_has(nb_last_error(), "s.npy: a 0-d array has no samples");
    cr_assert_eq(nb_dataset_load_npy((const char *[]){"z"}, (const char *[]){z}, 1, &d), NB_ERR_SHAPE);
    assert_has(nb_last_error(), "z.npy: axis 1 has size 0");
    cr_assert_eq(nb_dataset_load_npy((const char *[]){"x", "x"}, (const char *[]){x, x}, 2, &d), NB_ERR_ARG);
    assert_has(nb_last_error(), "field 'x' is given twice");
    const char *none = tmp_path("none.npy");
    cr_assert_eq(nb_dataset_load_npy((const char *[]){"x", "t"}, (const char *[]){x, none}, 2, &d), NB_ERR_IO);
    assert_has(nb_last_error(), "none.npy");
    cr_assert_eq(nb_dataset_load_npy((const char *[]){"x"}, (const char *[]){x}, 0, &d), NB_ERR_ARG);
}

/* ---- hold-out ---- */

static nb_dataset *small(uint32_t n)
{
    nb_dataset *d;
    cr_assert_eq(nb_dataset_load_idx(images_file("im", false, n), labels_file("lb", false, n), &d), NB_OK, "%s",
                 nb_last_error());
    return d;
}

/* Labels of all samples of d (as i32) into lb. */
static void all_labels(nb_dataset *d, int32_t *lb)
{
    set_iota();
    size_t n = nb_dataset_size(d);
    cr_assert_eq(nb_dataset_batch(d, 1, iota, n, NB_I32, 1, lb, n * sizeof *lb), NB_OK, "%s", nb_dataset_error(d));
}

Test(data, split_takes_the_last_samples)
{
    nb_dataset *d = small(10), *h;
    cr_assert_eq(nb_dataset_split(d, 0.3, &h), NB_OK, "%s", nb_dataset_error(d));
    cr_assert_eq(nb_dataset_size(d), 7);
    cr_assert_eq(nb_dataset_size(h), 3);
    int32_t lb[10];
    all_labels(d, lb);
    for (int i = 0; i < 7; i++) cr_assert_eq(lb[i], i);
    all_labels(h, lb);
    for (int i = 0; i < 3; i++) cr_assert_eq(lb[i], 7 + i);
    /* images too, and the data is shared rather than copied */
    int32_t pi[6];
    cr_assert_eq(nb_dataset_batch(h, 0, (size_t[]){2}, 1, NB_I32, 1, pi, sizeof pi), NB_OK);
    cr_assert_eq(pi[0], 90);
    cr_assert_eq(h->fields[0].blob, d->fields[0].blob);
    /* the holdout outlives its parent */
    nb_dataset_free(d);
    all_labels(h, lb);
    cr_assert_eq(lb[2], 9);
    nb_dataset_free(h);
}

Test(data, split_counts)
{
    static const struct { uint32_t n; double f; size_t held; } cases[] = {
        {10, 0, 0}, {10, 0.05, 0}, {10, 0.1, 1}, {10, 0.95, 9}, {10, 0.99, 9}, {60, 0.29, 17}, {7, 0.5, 3},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        nb_dataset *d = small(cases[c].n), *h;
        cr_assert_eq(nb_dataset_split(d, cases[c].f, &h), NB_OK, "%s", nb_dataset_error(d));
        cr_assert_eq(nb_dataset_size(h), cases[c].held, "%g of %u holds out %zu", cases[c].f, cases[c].n,
                     nb_dataset_size(h));
        cr_assert_eq(nb_dataset_size(d), cases[c].n - cases[c].held);
        nb_dataset_free(h);
        nb_dataset_free(d);
    }
    /* 0.29 * 100 is 28.999999999999996 in binary; the user meant 29 */
    cr_assert_eq(floor(0.29 * 100), 28);
    nb_dataset *d, *h;
    const char *x = npy_file("x.npy", NB_F32, 1, (int64_t[]){100}, 1);
    cr_assert_eq(nb_dataset_load_npy((const char *[]){"x"}, (const char *[]){x}, 1, &d), NB_OK);
    cr_assert_eq(nb_dataset_split(d, 0.29, &h), NB_OK);
    cr_assert_eq(nb_dataset_size(h), 29);
    float v;
    cr_assert_eq(nb_dataset_batch(h, 0, (size_t[]){0}, 1, NB_F32, 1, &v, sizeof v), NB_OK);
    cr_assert_eq(v, 71);
    nb_dataset_free(h);
    nb_dataset_free(d);
}

Test(data, split_errors)
{
    nb_dataset *d = small(10), *h = (nb_dataset *)1;
    const double bad[] = {-0.1, 1.0, 1.5, NAN};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(nb_dataset_split(d, bad[i], &h), NB_ERR_ARG);
        cr_assert_null(h);
        assert_has(nb_dataset_error(d), "outside [0, 1)");
        cr_assert_eq(nb_dataset_status(d), NB_ERR_ARG);
    }
    /* within rounding of 1: everything would be held out */
    cr_assert_eq(nb_dataset_split(d, 0.9999999999999999, &h), NB_ERR_ARG);
    assert_has(nb_dataset_error(d), "holds out 10 and leaves none to train on");
    cr_assert_eq(nb_dataset_size(d), 10);
    /* a success clears the message */
    cr_assert_eq(nb_dataset_split(d, 0.2, &h), NB_OK);
    cr_assert_str_eq(nb_dataset_error(d), "");
    cr_assert_eq(nb_dataset_status(d), NB_OK);
    nb_dataset_free(h);
    nb_dataset_free(d);
}

/* ---- shuffles ---- */

static bool is_permutation(const size_t *p, size_t n)
{
    bool *seen = calloc(n + 1, 1);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        ok = p[i] < n && !seen[p[i]];
        if (ok) seen[p[i]] = true;
    }
    free(seen);
    return ok;
}

Test(data, shuffle_is_a_deterministic_permutation)
{
    enum { N = 1000 };
    static size_t a[N], b[N], c[N], e[N];
    nb_shuffle(7, 3, a, N);
    nb_shuffle(7, 3, b, N);
    nb_shuffle(7, 4, c, N);
    nb_shuffle(8, 3, e, N);
    cr_assert(is_permutation(a, N));
    cr_assert(is_permutation(c, N));
    cr_assert_arr_eq(a, b, sizeof a);
    cr_assert(memcmp(a, c, sizeof a) != 0, "epochs 3 and 4 gave the same order");
    cr_assert(memcmp(a, e, sizeof a) != 0, "seeds 7 and 8 gave the same order");
    size_t fixed = 0;
    for (size_t i = 0; i < N; i++) fixed += a[i] == i;
    cr_assert_lt(fixed, 10, "%zu of %d samples kept their place", fixed, N);
    /* The same numbers on every machine: xoshiro256** and integer
     * arithmetic only. Recorded once and checked against a separate Python
     * version of the same steps; a change of algorithm must show here. */
    size_t g[10];
    nb_shuffle(1, 0, g, 10);
    const size_t golden[10] = {1, 6, 8, 2, 9, 7, 0, 5, 4, 3};
    cr_assert_arr_eq(g, golden, sizeof g);
    nb_shuffle(1, 0, g, 0);
    nb_shuffle(1, 0, g, 1);
    cr_assert_eq(g[0], 0);
}

/* Each of the 24 orders of 4 elements over 24 000 epochs: expected 1000
 * each; allow ±15% and a chi-square below 49.7 (23 degrees of freedom,
 * p = 0.001). A modulo-biased or off-by-one Fisher-Yates fails both. */
Test(data, shuffle_is_uniform)
{
    int count[24] = {0};
    for (uint64_t epoch = 0; epoch < 24000; epoch++) {
        size_t p[4];
        nb_shuffle(2024, epoch, p, 4);
        /* rank of the permutation in the Lehmer code */
        int code = 0;
        for (int i = 0; i < 4; i++) {
            int smaller = 0;
            for (int j = i + 1; j < 4; j++) smaller += p[j] < p[i];
            code = code * (4 - i) + smaller;
        }
        count[code]++;
    }
    double chi2 = 0;
    for (int k = 0; k < 24; k++) {
        cr_assert(count[k] > 850 && count[k] < 1150, "order %d came %d times of 24000", k, count[k]);
        chi2 += (count[k] - 1000.0) * (count[k] - 1000.0) / 1000.0;
    }
    cr_assert_lt(chi2, 49.7);
}

/* ---- batches ---- */

/* 256 images of one pixel each, pixel = sample number, and labels. */
static nb_dataset *ramp(void)
{
    unsigned char px[256], lb[256];
    for (int i = 0; i < 256; i++) px[i] = (unsigned char)i, lb[i] = (unsigned char)(i % 10);
    const char *im = write_idx("ramp", false, 0x08, 2, (uint32_t[]){256, 1}, px, 256);
    const char *l = write_idx("ramp-lb", false, 0x08, 1, (uint32_t[]){256}, lb, 256);
    nb_dataset *d;
    cr_assert_eq(nb_dataset_load_idx(im, l, &d), NB_OK, "%s", nb_last_error());
    return d;
}

Test(data, batch_u8_scaled)
{
    nb_dataset *d = ramp();
    size_t idx[256];
    for (size_t i = 0; i < 256; i++) idx[i] = 255 - i;
    float f[256];
    double g[256];
    cr_assert_eq(nb_dataset_batch(d, 0, idx, 256, NB_F32, 1.0 / 255, f, sizeof f), NB_OK, "%s",
                 nb_dataset_error(d));
    cr_assert_eq(nb_dataset_batch(d, 0, idx, 256, NB_F64, 1.0 / 255, g, sizeof g), NB_OK);
    for (int i = 0; i < 256; i++) {
        int v = 255 - i;
        cr_assert_eq(f[i], (float)(v / 255.0), "pixel %d gave %.9g", v, f[i]);
        cr_assert_eq(g[i], v * (1.0 / 255));
    }
    cr_assert_eq(f[0], 1.0f);
    cr_assert_eq(f[255], 0.0f);
    cr_assert_eq(f[128], 127.0f / 255.0f);
    /* labels to i32 */
    int32_t lb[3];
    cr_assert_eq(nb_dataset_batch(d, 1, (size_t[]){17, 3, 255}, 3, NB_I32, 1.0 / 255, lb, sizeof lb), NB_OK);
    cr_assert(lb[0] == 7 && lb[1] == 3 && lb[2] == 5);
    nb_dataset_free(d);
}

Test(data, batch_errors)
{
    nb_dataset *d = ramp();
    float f[4] = {-1, -1, -1, -1};
    cr_assert_eq(nb_dataset_batch(d, 0, (size_t[]){1, 2, 3}, 3, NB_F32, 1, f, sizeof f), NB_ERR_ARG);
    assert_has(nb_dataset_error(d), "3 samples of 'images' (1 values each) as f32 take 12 bytes; the buffer has 16");
    cr_assert_eq(nb_dataset_status(d), NB_ERR_ARG);
    cr_assert_eq(nb_dataset_batch(d, 0, (size_t[]){1, 256, 3, 4}, 4, NB_F32, 1, f, sizeof f), NB_ERR_ARG);
    assert_has(nb_dataset_error(d), "sample 256 (at position 1) is out of range; the dataset has 256");
    cr_assert_eq(f[0], -1, "a failed batch wrote to dst");
    cr_assert_eq(nb_dataset_batch(d, 2, (size_t[]){1}, 1, NB_F32, 1, f, 4), NB_ERR_ARG);
    assert_has(nb_dataset_error(d), "no field 2");
    cr_assert_eq(nb_dataset_batch(d, -1, (size_t[]){1}, 1, NB_F32, 1, f, 4), NB_ERR_ARG);
    cr_assert_eq(nb_dataset_batch(d, 0, (size_t[]){1}, 1, NB_F32, INFINITY, f, 4), NB_ERR_ARG);
    cr_assert_eq(nb_dataset_batch(d, 0, NULL, 1, NB_F32, 1, f, 4), NB_ERR_ARG);
    cr_assert_eq(nb_dataset_batch(d, 0, (size_t[]){1}, 1, NB_F32, 1, NULL, 4), NB_ERR_ARG);
    cr_assert_eq(nb_dataset_batch(d, 0, (size_t[]){1}, 1, (nb_dtype)7, 1, f, 4), NB_ERR_ARG);
    cr_assert_eq(nb_dataset_batch(NULL, 0, (size_t[]){1}, 1, NB_F32, 1, f, 4), NB_ERR_ARG);
    cr_assert_eq(nb_dataset_batch(d, 0, (size_t[]){SIZE_MAX / 2}, SIZE_MAX / 2, NB_F32, 1, f, 4),
                 NB_ERR_ARG); /* the index is out of range before the size overflows */
    /* an empty batch is fine, and a success clears the message */
    cr_assert_eq(nb_dataset_batch(d, 0, NULL, 0, NB_F32, 1, NULL, 0), NB_OK);
    cr_assert_str_eq(nb_dataset_error(d), "");
    nb_dataset_free(d);
}

/* A training step gathers its batch without allocating (the caller owns dst). */
Test(data, batch_allocates_nothing)
{
    nb_dataset *d = small(50), *h;
    cr_assert_eq(nb_dataset_split(d, 0.2, &h), NB_OK);
    size_t perm[40];
    float x[8 * 6];
    int32_t t[8];
    uint64_t before = nb_alloc_count();
    nb_shuffle(1, 2, perm, 40);
    for (size_t b = 0; b < 40; b += 8) {
        cr_assert_eq(nb_dataset_batch(d, 0, perm + b, 8, NB_F32, 1.0 / 255, x, sizeof x), NB_OK);
        cr_assert_eq(nb_dataset_batch(d, 1, perm + b, 8, NB_I32, 1, t, sizeof t), NB_OK);
        for (int i = 0; i < 8; i++) cr_assert_eq(t[i], (int32_t)(perm[b + i] % 10));
    }
    cr_assert_eq(nb_dataset_batch(h, 1, perm, 8, NB_I32, 1, t, sizeof t), NB_ERR_ARG); /* an error too */
    cr_assert_eq(nb_alloc_count(), before, "%llu allocations", (unsigned long long)(nb_alloc_count() - before));
    nb_dataset_free(h);
    nb_dataset_free(d);
}

/* ---- labels ---- */

Test(data, check_labels_names_file_and_sample)
{
    unsigned char lb[30];
    for (int i = 0; i < 30; i++) lb[i] = (unsigned char)(i % 10);
    lb[17] = 12;
    lb[25] = 200;
    const char *l = write_idx("labels.idx", false, 0x08, 1, (uint32_t[]){30}, lb, 30);
    unsigned char px[30] = {0};
    const char *im = write_idx("images.idx", false, 0x08, 2, (uint32_t[]){30, 1}, px, 30);
    nb_dataset *d, *h;
    cr_assert_eq(nb_dataset_load_idx(im, l, &d), NB_OK, "%s", nb_last_error());
    cr_assert_eq(nb_dataset_check_labels(d, 1, 10), NB_ERR_RUNTIME);
    assert_has(nb_dataset_error(d), "labels.idx: sample 17 has label 12; the model has 10 classes");
    cr_assert_eq(nb_dataset_check_labels(d, 1, 13), NB_ERR_RUNTIME);
    assert_has(nb_dataset_error(d), "sample 25 has label 200");
    cr_assert_eq(nb_dataset_check_labels(d, 1, 201), NB_OK);
    cr_assert_str_eq(nb_dataset_error(d), "");
    /* in the held-out part the sample is counted in the file */
    cr_assert_eq(nb_dataset_split(d, 0.5, &h), NB_OK);
    cr_assert_eq(nb_dataset_check_labels(h, 1, 13), NB_ERR_RUNTIME);
    assert_has(nb_dataset_error(h), "sample 25 has label 200");
    cr_assert_eq(nb_dataset_check_labels(d, 1, 13), NB_OK);
    cr_assert_eq(nb_dataset_check_labels(d, 1, 0), NB_ERR_ARG);
    cr_assert_eq(nb_dataset_check_labels(d, 5, 10), NB_ERR_ARG);
    nb_dataset_free(h);
    nb_dataset_free(d);
}

Test(data, check_labels_npy)
{
    const char *t = npy_file("t.npy", NB_I32, 2, (int64_t[]){3, 2}, -1);
    const char *x = npy_file("x.npy", NB_F32, 1, (int64_t[]){3}, 1);
    nb_dataset *d;
    cr_assert_eq(nb_dataset_load_npy((const char *[]){"t", "x"}, (const char *[]){t, x}, 2, &d), NB_OK);
    cr_assert_eq(nb_dataset_check_labels(d, 0, 10), NB_ERR_RUNTIME);
    assert_has(nb_dataset_error(d), "t.npy: sample 0, value 1 has label -1");
    cr_assert_eq(nb_dataset_check_labels(d, 1, 10), NB_ERR_DTYPE);
    assert_has(nb_dataset_error(d), "x.npy: field 'x' holds f32 values");
    nb_dataset_free(d);
}

/* Integer data fed to f32 must be exact: 2^24 is, 2^24 + 1 is not; f64 holds any i32. */
Test(data, integers_beyond_f32s_exact_range)
{
    tmp_make();
    int32_t v[4] = {1 << 24, -(1 << 24), 7, (1 << 24) + 1};
    write_npy_i32(tmp_path("big.npy"), 2, (int64_t[]){2, 2}, v);
    nb_dataset *d;
    cr_assert_eq(nb_dataset_load_npy((const char *[]){"x"}, (const char *[]){tmp_path("big.npy")}, 1, &d), NB_OK);
    cr_expect_eq(nb_dataset_check_exact(d, 0, NB_F64), NB_OK);
    cr_expect_eq(nb_dataset_check_exact(d, 0, NB_F32), NB_ERR_DTYPE);
    assert_has(nb_dataset_error(d), "big.npy: sample 1, value 1 is 16777217, which f32 cannot hold exactly");
    nb_dataset *head;
    cr_assert_eq(nb_dataset_split(d, 0.5, &head), NB_OK);  /* d keeps sample 0 only */
    cr_expect_eq(nb_dataset_check_exact(d, 0, NB_F32), NB_OK);
    nb_dataset_free(head);
    nb_dataset_free(d);
    tmp_remove();
}

/* ---- Fashion-MNIST (Debian package dataset-fashion-mnist; CI installs it) ---- */

#define FASHION "/usr/share/datasets/fashion-mnist/"

/* Labels of every sample, and the sum of every pixel, checked against
 * numbers computed with numpy from the same files. */
static void check_fashion(const char *images, const char *labels, size_t n, const int *first10, long long pixels)
{
    nb_dataset *d;
    cr_assert_eq(nb_dataset_load_idx(images, labels, &d), NB_OK, "Fashion-MNIST: %s", nb_last_error());
    cr_assert_eq(nb_dataset_size(d), n);
    int64_t shape[NB_MAX_DIMS];
    cr_assert_eq(nb_dataset_field_shape(d, 0, shape), 2);
    cr_assert(shape[0] == 28 && shape[1] == 28);
    cr_assert_eq(nb_dataset_check_labels(d, 1, 10), NB_OK, "%s", nb_dataset_error(d));
    cr_assert_eq(nb_dataset_check_labels(d, 1, 9), NB_ERR_RUNTIME);

    size_t *idx = malloc(n * sizeof *idx);
    int32_t *lb = malloc(n * sizeof *lb);
    for (size_t i = 0; i < n; i++) idx[i] = i;
    cr_assert_eq(nb_dataset_batch(d, 1, idx, n, NB_I32, 1, lb, n * sizeof *lb), NB_OK);
    int count[10] = {0};
    for (size_t i = 0; i < n; i++) count[lb[i]]++;
    for (int k = 0; k < 10; k++) cr_assert_eq(count[k], (int)n / 10, "class %d: %d samples", k, count[k]);
    for (int i = 0; i < 10; i++) cr_assert_eq(lb[i], first10[i]);

    int32_t *px = malloc(1000 * 784 * sizeof *px);
    long long sum = 0;
    for (size_t b = 0; b < n; b += 1000) {
        cr_assert_eq(nb_dataset_batch(d, 0, idx + b, 1000, NB_I32, 1, px, 1000 * 784 * sizeof *px), NB_OK);
        for (size_t k = 0; k < 1000 * 784; k++) sum += px[k];
    }
    cr_assert_eq(sum, pixels);
    free(px);
    free(lb);
    free(idx);
    nb_dataset_free(d);
}

Test(data, fashion_mnist_test_set)
{
    check_fashion(FASHION "t10k-images-idx3-ubyte.gz", FASHION "t10k-labels-idx1-ubyte.gz", 10000,
                  (const int[]){9, 2, 1, 1, 6, 1, 4, 6, 5, 7}, 573469082LL);
}

Test(data, fashion_mnist_training_set)
{
    check_fashion(FASHION "train-images-idx3-ubyte.gz", FASHION "train-labels-idx1-ubyte.gz", 60000,
                  (const int[]){9, 0, 0, 3, 0, 2, 7, 2, 5, 5}, 3431114169LL);
}

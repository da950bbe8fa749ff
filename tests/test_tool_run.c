/* nabla run's summary of what it wrote (a line per file, warnings for NaN
 * and infinities, -q), and integer .npy data fed to float inputs: converted
 * exactly, or an error naming the file beyond 2^24 (f32) / 2^53 (f64). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "toolutil.h"

TestSuite(run_tool, .init = tmp_make, .fini = tmp_remove, .timeout = 60);

static const char *const SCALE_MODEL =
    "nabla: 1\ninputs:\n  x: [N, 3]\n"
    "params:\n  w: {shape: [3], init: {values: [1, 2, 3]}}\n"
    "nodes:\n  - {name: y, op: mul, in: [x, w]}\n  - {name: loss, op: sum, in: [y]}\n"
    "outputs: [y]\nloss: loss\n";

static const char *feed(const char *name, const char *file)
{
    static char buf[4][1100];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, sizeof buf[0], "%s=%s", name, tmp_path(file));
    return b;
}

/* An i8 .npy of n values (numpy's int64). */
static void write_i8(const char *file, const int64_t *v, size_t n)
{
    char dict[128];
    size_t len;
    snprintf(dict, sizeof dict, "{'descr': '<i8', 'fortran_order': False, 'shape': (%zu,), }", n);
    unsigned char *b = npy_buf(1, dict, v, n * 8, &len);
    write_file(tmp_path(file), b, len);
    free(b);
}

Test(run_tool, summary_of_the_files_written)
{
    write_text(tmp_path("m.yaml"), SCALE_MODEL);
    write_npy_f64(tmp_path("x.npy"), 2, (int64_t[]){2, 3}, (double[]){1, 1, 1, 2, 2, 2});
    tool_result r = TOOL("run", tmp_path("m.yaml"), "--in", feed("x", "x.npy"), "--grad", "-o", tmp_path("o"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    /* y = [[1, 2, 3], [2, 4, 6]]: min 1, mean 3, max 6; loss 18; grad.w = [3, 3, 3] */
    cr_expect(strstr(r.out, "wrote 4 files to "), "%s", r.out);
    cr_expect(strstr(r.out, "\n  y       [2, 3]  f32  min 1  mean 3  max 6\n"), "%s", r.out);
    cr_expect(strstr(r.out, "\n  loss    []      f32  18\n"), "%s", r.out);
    cr_expect(strstr(r.out, "\n  grad.w  [3]     f32  min 3  mean 3  max 3\n"), "%s", r.out);
    cr_expect(strstr(r.out, "\n  grad.x  [2, 3]  f32  min 1  mean 2  max 3\n"), "%s", r.out);
    cr_expect_eq(strlen(r.err), 0, "%s", r.err);
    tool_result_free(&r);
    r = TOOL("run", tmp_path("m.yaml"), "--in", feed("x", "x.npy"), "-q", "-o", tmp_path("o"));
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect_eq(strlen(r.out), 0, "-q prints nothing: %s", r.out);
    tool_result_free(&r);
}

/* log of [-1, 0, 1, 2]: one NaN, one -inf; min/mean/max of the finite rest. */
Test(run_tool, warns_about_nan_and_inf)
{
    write_text(tmp_path("m.yaml"), "nabla: 1\ninputs:\n  x: [4]\nnodes:\n  - {name: y, op: log, in: [x]}\n"
                                   "  - {name: s, op: sum, in: [y]}\noutputs: [y, s]\n");
    write_npy_f64(tmp_path("x.npy"), 1, (int64_t[]){4}, (double[]){-1, 0, 1, 1});
    tool_result r = TOOL("run", tmp_path("m.yaml"), "--in", feed("x", "x.npy"), "-o", tmp_path("o"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "\n  y  [4]  f32  min 0  mean 0  max 0\n"), "%s", r.out);
    cr_expect(strstr(r.out, "\n  s  []   f32  nan\n"), "%s", r.out);
    cr_expect(strstr(r.err, "nabla run: warning: y.npy holds 1 NaN and 1 infinite value (of 4)"), "%s", r.err);
    cr_expect(strstr(r.err, "nabla run: warning: s.npy holds 1 NaN and 0 infinite values (of 1)"), "%s", r.err);
    tool_result_free(&r);
    r = TOOL("run", tmp_path("m.yaml"), "--in", feed("x", "x.npy"), "--quiet", "-o", tmp_path("o"));
    cr_expect_eq(strlen(r.out), 0, "%s", r.out);
    cr_expect(strstr(r.err, "warning: y.npy holds 1 NaN"), "warnings stay with -q: %s", r.err);
    tool_result_free(&r);
}

/* i4 and i8 arrays feed a float input, converted. */
Test(run_tool, integer_data_for_a_float_input)
{
    write_text(tmp_path("m.yaml"), SCALE_MODEL);
    write_npy_i32(tmp_path("x4.npy"), 2, (int64_t[]){1, 3}, (int32_t[]){4, -5, 16777216});
    write_i8("x8.npy", (int64_t[]){7, 8, -9}, 3);
    tool_result r = TOOL("run", tmp_path("m.yaml"), "--in", feed("x", "x4.npy"), "-o", tmp_path("o"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    nb_tensor y = read_npy_f64(tmp_path("o/y.npy"));
    cr_expect(((double *)y.data)[0] == 4 && ((double *)y.data)[1] == -10 && ((double *)y.data)[2] == 50331648);
    nb_tensor_free(&y);
    tool_result_free(&r);
    write_text(tmp_path("v.yaml"), "nabla: 1\ninputs:\n  x: [3]\nnodes:\n  - {name: y, op: neg, in: [x]}\n"
                                   "outputs: [y]\n");
    r = TOOL("run", tmp_path("v.yaml"), "--in", feed("x", "x8.npy"), "-o", tmp_path("o"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    y = read_npy_f64(tmp_path("o/y.npy"));
    cr_expect(((double *)y.data)[0] == -7 && ((double *)y.data)[2] == 9);
    nb_tensor_free(&y);
    tool_result_free(&r);
}

Test(run_tool, integers_beyond_the_exact_range)
{
    write_text(tmp_path("m32.yaml"), "nabla: 1\ninputs:\n  x: [2]\nnodes:\n  - {name: y, op: neg, in: [x]}\n"
                                     "outputs: [y]\n");
    write_text(tmp_path("m64.yaml"), "nabla: 1\ndtype: f64\ninputs:\n  x: [2]\n"
                                     "nodes:\n  - {name: y, op: neg, in: [x]}\noutputs: [y]\n");
    write_npy_i32(tmp_path("big.npy"), 1, (int64_t[]){2}, (int32_t[]){1, -16777217});
    tool_result r = TOOL("run", tmp_path("m32.yaml"), "--in", feed("x", "big.npy"), "-o", tmp_path("o"));
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "big.npy: integer element 1 (-16777217) is beyond the range where f32 holds every "
                            "integer exactly (|v| <= 2^24)"), "%s", r.err);
    tool_result_free(&r);
    r = TOOL("run", tmp_path("m64.yaml"), "--in", feed("x", "big.npy"), "-o", tmp_path("o"));
    cr_expect_eq(r.status, 0, "f64 holds it: %s", r.err);
    tool_result_free(&r);
    int64_t two53 = INT64_C(1) << 53;
    write_i8("ok8.npy", (int64_t[]){two53, -two53}, 2);
    write_i8("big8.npy", (int64_t[]){3, two53 + 1}, 2);
    r = TOOL("run", tmp_path("m64.yaml"), "--in", feed("x", "ok8.npy"), "-o", tmp_path("o"));
    cr_expect_eq(r.status, 0, "2^53 is exact: %s", r.err);
    tool_result_free(&r);
    r = TOOL("run", tmp_path("m64.yaml"), "--in", feed("x", "big8.npy"), "-o", tmp_path("o"));
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "big8.npy: integer element 1 (9007199254740993) is beyond the range where f64") &&
                  strstr(r.err, "2^53"), "%s", r.err);
    tool_result_free(&r);
}

/* gradcheck reads --in the same way. */
Test(run_tool, gradcheck_takes_integer_data)
{
    write_text(tmp_path("m.yaml"), SCALE_MODEL);
    write_npy_i32(tmp_path("x.npy"), 2, (int64_t[]){2, 3}, (int32_t[]){1, 2, 3, -4, 5, 6});
    tool_result r = TOOL("gradcheck", tmp_path("m.yaml"), "--in", feed("x", "x.npy"));
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
    tool_result_free(&r);
}

Test(run_tool, npy_read_float_in_the_library)
{
    nb_tensor t;
    write_i8("a.npy", (int64_t[]){-3, 1 << 20}, 2);
    cr_assert_eq(nb_npy_read_float(tmp_path("a.npy"), NB_F32, &t), NB_OK, "%s", nb_last_error());
    cr_expect(t.dtype == NB_F32 && ((float *)t.data)[0] == -3 && ((float *)t.data)[1] == 1 << 20);
    nb_tensor_free(&t);
    write_npy_f64(tmp_path("f.npy"), 1, (int64_t[]){1}, (double[]){0.5});
    cr_assert_eq(nb_npy_read_float(tmp_path("f.npy"), NB_F32, &t), NB_OK, "%s", nb_last_error());
    cr_expect(t.dtype == NB_F32 && ((float *)t.data)[0] == 0.5f);
    nb_tensor_free(&t);
    cr_expect_eq(nb_npy_read_float(tmp_path("f.npy"), NB_I32, &t), NB_ERR_ARG);
}

/* Messages that said the wrong thing (issue 11), each now naming the real
 * cause: an I64 tensor called "i32"; a number beyond f32's range silently
 * becoming an infinity (weights, init values, constants); a symbol `check`
 * accepts but --dim cannot bind; an empty array reported as a dimension
 * "bound to 0"; a control character or very long name in a diagram changed
 * without a sign; a param refused for the memory limit followed by every
 * output reported "not defined". */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "toolutil.h"

TestSuite(messages, .init = tmp_make, .fini = tmp_remove, .timeout = 60);

static const char *const W2 = "nabla: 1\ninputs: {x: [N, 2]}\nparams:\n  n: {shape: [2], init: ones}\n"
                              "nodes:\n  - {name: y, op: mul, in: [x, n]}\noutputs: [y]\n";

/* A safetensors file of one tensor 'n' [2] stored as dtype (I64 or F64). */
static void write_st(const char *path, const char *dtype, const void *data)
{
    char header[160];
    int len = snprintf(header, sizeof header,
                       "{\"n\":{\"dtype\":\"%s\",\"shape\":[2],\"data_offsets\":[0,16]}}", dtype);
    while (len % 8) header[len++] = ' ';
    unsigned char buf[256];
    uint64_t n = (uint64_t)len;
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(n >> (8 * i));
    memcpy(buf + 8, header, (size_t)len);
    memcpy(buf + 8 + len, data, 16);
    write_file(path, buf, (size_t)(8 + len + 16));
}

static tool_result run_with(const char *weights)
{
    write_text(tmp_path("m.yaml"), W2);
    write_npy(tmp_path("x.npy"), NB_F32, 2, (int64_t[]){1, 2}, (double[]){1, 2});
    char in[600];
    snprintf(in, sizeof in, "x=%s", tmp_path("x.npy"));
    return TOOL("run", tmp_path("m.yaml"), "--in", in, "--weights", weights, "-o", tmp_path("out"));
}

Test(messages, i64_tensors_are_called_i64)
{
    int64_t v[2] = {1, 2};
    write_st(tmp_path("w.safetensors"), "I64", v);
    tool_result r = run_with(tmp_path("w.safetensors"));
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "w.safetensors: param 'n' is f32 [2] but the file's tensor is i64 [2]");
    tool_result_free(&r);
    /* savez.npz's n is np.int64 (tests/data/npz/README) */
    r = run_with(test_file("data/npz/savez.npz"));
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "savez.npz: param 'n' is f32 [2] but the file's tensor is i64 [2]");
    tool_result_free(&r);
}

/* The tensor set says which tensors were converted on reading. */
Test(messages, tensor_sets_keep_the_stored_dtype)
{
    nb_tensor_set set = {0};
    cr_assert_eq(nb_npz_read(test_file("data/npz/savez.npz"), &set), NB_OK, "%s", nb_last_error());
    for (size_t i = 0; i < set.n; i++) {
        bool n = !strcmp(set.items[i].name, "n");
        cr_expect(n ? set.items[i].stored && !strcmp(set.items[i].stored, "i64") : !set.items[i].stored,
                  "tensor %s", set.items[i].name);
    }
    nb_tensor_set_free(&set);
}

Test(messages, f64_beyond_f32_range)
{
    double v[2] = {2, -1e300};
    write_st(tmp_path("w.safetensors"), "F64", v);
    tool_result r = run_with(tmp_path("w.safetensors"));
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "w.safetensors: param 'n': element [1] is -1e+300, beyond f32's range (+-3.4e38): "
                      "it would become infinite");
    tool_result_free(&r);
    cr_expect(access(tmp_path("out"), F_OK) != 0, "a refused run wrote its outputs");
}

Test(messages, init_and_constants_beyond_f32_range)
{
    EXPECT_ERRORS("nabla: 1\ninputs: {x: [2]}\nparams:\n  w: {shape: [2], init: {values: [1, 1e300]}}\n"
                  "  v: {shape: [2], init: {constant: -1e39}}\nconstants:\n  c: {value: [1e300, 1]}\n"
                  "nodes:\n  - {name: y, op: mul, in: [x, w]}\n",
                  "m.yaml:4:6: param 'w': value 1 (1e+300) is beyond f32's range (+-3.4e38): it would become infinite",
                  "m.yaml:5:6: param 'v': -1e+39 is beyond f32's range (+-3.4e38): it would become infinite",
                  "m.yaml:7:15: constant 'c' is f32, whose range is +-3.4e38; got 1e300 (write dtype: f64 for a "
                  "larger value)");
    /* in f64 the same numbers are fine */
    nb_model *m = load_ok("nabla: 1\ndtype: f64\ninputs: {x: [2]}\nparams:\n  w: {shape: [2], init: {values: [1, 1e300]}}\n"
                          "constants:\n  c: {value: [1e300, 1]}\nnodes:\n  - {name: y, op: mul, in: [x, w]}\n");
    nb_model_free(m);
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    cr_assert_not_null(s);
    memset(s, c, n);
    s[n] = 0;
    return s;
}

/* The longest name a model may give a free dimension, --dim binds. */
Test(messages, long_symbols_agree)
{
    char *s = repeat('S', NB_MAX_SYM_LEN), text[1024], dim[400];
    snprintf(text, sizeof text, "nabla: 1\ninputs: {x: [%s, 2]}\nnodes:\n  - {name: y, op: exp, in: [x]}\noutputs: [y]\n", s);
    write_text(tmp_path("m.yaml"), text);
    snprintf(dim, sizeof dim, "%s=7", s);
    tool_result r = TOOL("check", tmp_path("m.yaml"), "--dim", dim);
    cr_expect_eq(r.status, 0, "%s", r.err);
    assert_has(r.out, "[7, 2]");
    tool_result_free(&r);
    free(s);
    /* one more character: refused by the loader and by --dim alike */
    s = repeat('S', NB_MAX_SYM_LEN + 1);
    snprintf(text, sizeof text, "nabla: 1\ninputs: {x: [%s, 2]}\nnodes:\n  - {name: y, op: exp, in: [x]}\n", s);
    write_text(tmp_path("m.yaml"), text);
    snprintf(dim, sizeof dim, "%s=7", s);
    r = TOOL("check", tmp_path("m.yaml"));
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "m.yaml:2:13: input 'x': the free dimension 'SSSSSSSSSSSSSSSSSSSSSSSS...' has a name "
                      "of 256 characters; at most 255");
    tool_result_free(&r);
    write_text(tmp_path("n.yaml"), "nabla: 1\ninputs: {x: [N, 2]}\nnodes:\n  - {name: y, op: exp, in: [x]}\n");
    r = TOOL("check", tmp_path("n.yaml"), "--dim", dim);
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "--dim: the symbol 'SSSSSSSSSSSSSSSSSSSSSSSS...' has 256 characters; a free dimension's "
                      "name has at most 255");
    tool_result_free(&r);
    free(s);
}

Test(messages, empty_arrays)
{
    write_text(tmp_path("m.yaml"), W2);
    write_npy(tmp_path("x.npy"), NB_F32, 2, (int64_t[]){0, 2}, NULL);
    char in[600];
    snprintf(in, sizeof in, "x=%s", tmp_path("x.npy"));
    tool_result r = TOOL("run", tmp_path("m.yaml"), "--in", in, "-o", tmp_path("out"));
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "nabla run: dimension N is 0 from input 'x'");
    assert_has(r.err, "that array is empty along the axis of N, and free dimensions must be >= 1");
    tool_result_free(&r);
}

/* Control characters show as \xNN (and the SVG stays XML); a long name is
 * cut with its length. */
Test(messages, names_in_diagrams)
{
    write_text(tmp_path("m.yaml"), "nabla: 1\nname: \"a\\x01b\\tc\"\ninputs: {x: [2]}\nnodes:\n"
                                   "  - {name: y, op: exp, in: [x]}\n");
    tool_result r = TOOL("render", tmp_path("m.yaml"), "-o", tmp_path("m.svg"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    static svg_info t;
    char *svg = read_text(tmp_path("m.svg"), NULL);
    svg_parse(svg, &t);
    cr_expect(svg_has_text(&t, "a\\x01b\\x09c"), "the name is not shown escaped");
    free(svg);
    char *name = repeat('L', 2000), text[2200];
    snprintf(text, sizeof text, "nabla: 1\nname: %s\ninputs: {x: [2]}\nnodes:\n  - {name: y, op: exp, in: [x]}\n", name);
    write_text(tmp_path("m.yaml"), text);
    r = TOOL("render", tmp_path("m.yaml"), "-o", tmp_path("m.dot"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    char *dot = read_text(tmp_path("m.dot"), NULL);
    name[200] = 0;
    char want[300];
    snprintf(want, sizeof want, "<b>%s... (2000 characters)</b>", name);
    assert_has(dot, want);
    free(dot);
    free(name);
}

/* The refusal is the only message: what depends on the param is skipped,
 * and the load goes on to report unrelated errors. */
Test(messages, memory_limit_refusals_do_not_cascade)
{
    nb_set_memory_limit(1 << 20);
    EXPECT_ERRORS("nabla: 1\ninputs:\n  x: [N, 1000]\n  t: {shape: [N], dtype: i32}\nparams:\n"
                  "  W: {shape: [1000, 1000], init: zeros}\nconstants:\n  c: {value: 0, shape: [1000, 1000]}\n"
                  "nodes:\n  - {name: h, op: matmul, in: [x, W]}\n  - {name: y, op: add, in: [h, c]}\n"
                  "  - {name: loss, op: softmax_cross_entropy, in: [y, t]}\n  - {name: z, op: exp, in: [q]}\n"
                  "outputs: [y, h]\nloss: loss\n",
                  "m.yaml:6:6: param 'W' needs 0.004 GB, over the memory limit of 0.00105 GB "
                  "(nb_set_memory_limit; nabla --max-memory)",
                  "m.yaml:8:6: constant 'c' needs 0.004 GB, over the memory limit of 0.00105 GB "
                  "(nb_set_memory_limit; nabla --max-memory)",
                  "m.yaml:13:29: 'q' is not defined above this node");
    nb_set_memory_limit(0);
}

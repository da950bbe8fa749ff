/* The ONNX importer (graph/onnx/) on small models of tests/data/onnx/, made
 * with onnx.helper by make_models.py (its reference output computed with
 * numpy): names sanitised and made unique, initializers as params, a free
 * dimension through the Shape -> Gather -> Unsqueeze -> Concat -> Reshape
 * chain of torch.onnx.export, clear errors for unsupported ops and broken
 * files, and the `nabla` command on .onnx files. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "toolutil.h"

static nb_model *load_onnx(const char *file)
{
    nb_model *m = NULL;
    nb_diags d;
    nb_status st = nb_model_load_file(test_file("data/onnx/%s", file), NULL, &m, &d);
    print_diags(&d);
    cr_assert_eq(st, NB_OK, "%s: %s", file, d.n ? d.lines[0] : nb_status_str(st));
    nb_diags_free(&d);
    return m;
}

/* Loading must fail with st and one message holding every part. */
static void expect_load_error(const char *path, nb_status want, const char *const *parts, int n)
{
    nb_model *m = (nb_model *)1;
    nb_diags d;
    nb_status st = nb_model_load_onnx(path, NULL, &m, &d);
    cr_expect_eq(st, want, "%s: status %s", path, nb_status_str(st));
    cr_expect_null(m, "nothing is half-loaded");
    cr_assert_eq(d.n, 1);
    for (int i = 0; i < n; i++) assert_has(d.lines[0], parts[i]);
    nb_diags_free(&d);
}

TestSuite(onnx, .init = tmp_make, .fini = tmp_remove, .timeout = 120);

Test(onnx, tiny_names_params_and_free_dimension)
{
    nb_model *m = load_onnx("tiny.onnx");
    nb_graph *g = nb_model_graph(m);
    cr_assert_eq(nb_model_num_inputs(m), 1);
    cr_expect_str_eq(nb_node_name(nb_model_input(m, 0)), "input_0");   /* "input:0" */
    cr_expect_str_eq(nb_node_dim_sym(g, nb_model_input(m, 0), 0), "N"); /* dim_param */
    cr_assert_eq(nb_model_num_params(m), 2);
    cr_expect_str_eq(nb_node_name(nb_model_param(m, 0)), "fc.weight");
    cr_expect_str_eq(nb_node_name(nb_model_param(m, 1)), "fc.bias");
    cr_expect_eq(nb_model_num_trainable(m), 2);
    cr_expect_null(nb_model_loss(m));
    cr_assert_eq(nb_model_num_outputs(m), 1);
    cr_expect_str_eq(nb_node_name(nb_model_output(m, 0)), "output");
    check_node(g, "_flat_Reshape_output_0", "reshape", "[N, 6]");  /* "/flat/Reshape_output_0" */
    check_node(g, "onnx__Relu_5", "add", "[N, 4]");                 /* "onnx::Relu_5" */
    /* the shape computation was folded: no Shape or Gather node is left */
    for (size_t i = 0; i < nb_graph_num_nodes(g); i++)
        cr_expect(nb_node_kind_of(nb_graph_node(g, i)) != NB_NODE_CONST, "%s", nb_node_name(nb_graph_node(g, i)));
    /* the initializer's values are the param's */
    nb_tensor *b = nb_param_value(nb_model_param(m, 1));
    nb_tensor ref = read_npy_f64(test_file("data/onnx/tiny_b.npy"));
    cr_assert(b->dtype == NB_F32 && b->rank == 1 && b->shape[0] == 4);
    for (int i = 0; i < 4; i++) cr_expect_eq(((float *)b->data)[i], (float)((double *)ref.data)[i]);
    nb_tensor_free(&ref);
    nb_model_free(m);
}

Test(onnx, tiny_matches_numpy_at_two_batch_sizes)
{
    nb_model *m = load_onnx("tiny.onnx");
    nb_graph *g = nb_model_graph(m);
    nb_tensor x = read_npy_f64(test_file("data/onnx/tiny_x.npy"));
    nb_tensor y = read_npy_f64(test_file("data/onnx/tiny_out.npy"));
    nb_node *in = nb_model_input(m, 0), *out = nb_model_output(m, 0);
    double got[12];
    int64_t shape[NB_MAX_DIMS];
    int r = eval_node_bound(g, out, got, shape, 1, &in, (const double *const[]){x.data},
                            (nb_bind[]){{"N", 3}}, 1);
    cr_assert_eq(r, 2);
    cr_expect(shape[0] == 3 && shape[1] == 4);
    expect_close(got, y.data, 12, 1e-5, 1e-5, "tiny.onnx output");
    /* N = 1: the first sample alone gives the first row */
    r = eval_node_bound(g, out, got, shape, 1, &in, (const double *const[]){x.data}, (nb_bind[]){{"N", 1}}, 1);
    cr_expect(r == 2 && shape[0] == 1);
    expect_close(got, y.data, 4, 1e-5, 1e-5, "tiny.onnx at N = 1");
    nb_tensor_free(&x);
    nb_tensor_free(&y);
    nb_model_free(m);
}

Test(onnx, colliding_names_get_suffixes)
{
    nb_model *m = load_onnx("collide.onnx");
    cr_expect_str_eq(nb_node_name(nb_model_input(m, 0)), "a_b");    /* "a:b" */
    cr_expect_str_eq(nb_node_name(nb_model_input(m, 1)), "a_b_2");  /* "a_b" */
    cr_expect_str_eq(nb_node_name(nb_model_output(m, 0)), "a_b_3"); /* "a/b" */
    cr_expect_str_eq(nb_node_name(nb_model_output(m, 1)), "grad_y"); /* "grad.y" is reserved */
    nb_model_free(m);
}

Test(onnx, unsupported_op_names_node_and_op)
{
    const char *parts[] = {"unsupported.onnx: node 'nms1' (NonMaxSuppression): unsupported op"};
    expect_load_error(test_file("data/onnx/unsupported.onnx"), NB_ERR_FORMAT, parts, 1);
}

Test(onnx, truncated_and_garbage_files)
{
    size_t len;
    char *buf = read_text(test_file("data/onnx/tiny.onnx"), &len);
    const char *cut = tmp_path("cut.onnx");
    write_file(cut, buf, len / 2);
    const char *parts[] = {"cut.onnx: not an ONNX model", "truncated"};
    expect_load_error(cut, NB_ERR_FORMAT, parts, 2);
    free(buf);
    const char *text = tmp_path("text.onnx");
    write_text(text, "nabla: 1\ninputs: {x: [2]}\n");
    const char *parts2[] = {"text.onnx: not an ONNX model"};
    expect_load_error(text, NB_ERR_FORMAT, parts2, 1);
    const char *empty = tmp_path("empty.onnx");  /* decodes as an empty ModelProto */
    write_file(empty, "", 0);
    const char *parts3[] = {"empty.onnx: not an ONNX model (no graph"};
    expect_load_error(empty, NB_ERR_FORMAT, parts3, 1);
    const char *parts4[] = {"cannot read the file"};
    expect_load_error(tmp_path("missing.onnx"), NB_ERR_IO, parts4, 1);
}

Test(onnx, tool_commands_take_onnx_files)
{
    tool_result r = TOOL("check", test_file("data/onnx/tiny.onnx"));
    cr_expect_eq(r.status, 0, "%s", r.err);
    assert_has(r.out, "_flat_Reshape_output_0");
    tool_result_free(&r);

    r = TOOL("check", test_file("data/onnx/unsupported.onnx"));
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "node 'nms1' (NonMaxSuppression): unsupported op");
    tool_result_free(&r);

    char in[600];
    snprintf(in, sizeof in, "input_0=%s", test_file("data/onnx/tiny_x.npy"));
    r = TOOL("run", test_file("data/onnx/tiny.onnx"), "--in", in, "-o", tmp_path("out"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    nb_tensor got = read_npy_f64(tmp_path("out/output.npy"));
    nb_tensor want = read_npy_f64(test_file("data/onnx/tiny_out.npy"));
    cr_assert_eq(nb_tensor_numel(&got), 12);
    expect_close(got.data, want.data, 12, 1e-5, 1e-5, "nabla run tiny.onnx");
    nb_tensor_free(&got);
    nb_tensor_free(&want);

    /* --grad without a loss: the sum of the outputs; d/d fc.bias[j] is 2 (Gemm's beta)
     * times the number of positive outputs in column j of tiny_out.npy */
    r = TOOL("run", test_file("data/onnx/tiny.onnx"), "--in", in, "--grad", "-o", tmp_path("g"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    nb_tensor gb = read_npy_f64(tmp_path("g/grad.fc.bias.npy"));
    nb_tensor out = read_npy_f64(test_file("data/onnx/tiny_out.npy"));
    double count[4] = {0};
    for (int i = 0; i < 12; i++) count[i % 4] += 2 * (((double *)out.data)[i] > 0);
    cr_assert_eq(nb_tensor_numel(&gb), 4);
    expect_close(gb.data, count, 4, 1e-6, 0, "grad.fc.bias of the sum of the outputs");
    nb_tensor_free(&gb);
    nb_tensor_free(&out);

    r = TOOL("gradcheck", test_file("data/onnx/tiny.onnx"));
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
    assert_has(r.out, "gradcheck.loss");
    tool_result_free(&r);

    r = TOOL("gradcheck", test_file("data/onnx/tiny.onnx"), "--loss", "nothing");
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "--loss nothing: the model has no such node");
    tool_result_free(&r);

    r = TOOL("render", test_file("data/onnx/tiny.onnx"), "--backward", "-o", tmp_path("tiny.dot"));
    cr_expect_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    size_t n;
    char *dot = read_text(tmp_path("tiny.dot"), &n);
    assert_has(dot, "fc.weight");
    assert_has(dot, "grad.fc.weight");  /* --backward: of the sum of the outputs */
    free(dot);
}

Test(onnx, tensor_without_its_values_is_refused)
{
    const char *parts[] = {"bad_tensor.onnx: initializer: tensor 'W': 0 values for a shape of "
                           "1000000000000 elements"};
    expect_load_error(test_file("data/onnx/bad_tensor.onnx"), NB_ERR_FORMAT, parts, 1);
}

Test(onnx, set_loss_takes_float_scalars_of_the_model)
{
    nb_model *m = load_onnx("tiny.onnx");
    nb_graph *g = nb_model_graph(m);
    nb_node *out = nb_model_output(m, 0);
    cr_expect_eq(nb_model_set_loss(m, out), NB_ERR_ARG);
    assert_has(nb_graph_error(g), "the loss must be a float scalar node of the model; 'output'");
    nb_node *s = nb_sum(g, out, NULL, 0, false);
    cr_assert_eq(nb_model_set_loss(m, s), NB_OK);
    cr_expect_eq(nb_model_loss(m), s);
    nb_model_free(m);
}

Test(onnx, unknown_attribute_is_refused)
{
    const char *parts[] = {"attr.onnx: node 'r1' (LeakyRelu): unsupported attribute 'beta'"};
    expect_load_error(test_file("data/onnx/attr.onnx"), NB_ERR_FORMAT, parts, 1);
}

/* Found by CI's fuzz pass: a Slice of a known value with a step near -2^63
 * taking one element multiplied the step by the axis stride (signed overflow,
 * UBSan in the sanitizer pass). The step of an axis that keeps at most one
 * element is never used now; this file then fails on a later node. */
Test(onnx, slice_with_a_huge_step_on_known_values)
{
    const char *parts[] = {"fuzz_slice_huge_step.onnx: node '/Pad' (Pad): 2 pads for 4 axes"};
    expect_load_error(test_file("data/onnx/fuzz_slice_huge_step.onnx"), NB_ERR_FORMAT, parts, 1);
}

/* Found by fuzz/run.sh: a Concat of known scalars (ox_axis lets axis 0 of a
 * scalar through) wrote past its one-element output; and known values whose
 * other axes differ would have too. Both refused now, naming the input. */
Test(onnx, concat_of_known_values_checks_shapes)
{
    const char *scalar[] = {"fuzz_concat_shapes.onnx: node '/Concat' (Concat): needs inputs of rank "
                            ">= 1; input 0 is a scalar"};
    expect_load_error(test_file("data/onnx/fuzz_concat_shapes.onnx"), NB_ERR_SHAPE, scalar, 1);
    const char *axes[] = {"concat_shapes.onnx: node 'cat' (Concat): input 1 has 5 on axis 1, input 0 "
                          "2 (only axis 0 may differ)"};
    expect_load_error(test_file("data/onnx/concat_shapes.onnx"), NB_ERR_SHAPE, axes, 1);
}

/* Found by fuzz/run.sh: Concats of Concats of known values, folded at load
 * time, each value under the fuzzer's 1 GiB memory limit but together 3.6 GB.
 * A load now has one budget for all it computes: the memory limit. */
Test(onnx, load_time_values_share_one_memory_budget)
{
    size_t was = nb_memory_limit();
    nb_set_memory_limit((size_t)1 << 30);
    const char *parts[] = {"fuzz_oom_concat.onnx: node '/Concat' (Concat): values computed at load "
                           "time (67108868 elements here) exceed the memory limit of 1.07 GB"};
    expect_load_error(test_file("data/onnx/fuzz_oom_concat.onnx"), NB_ERR_NOMEM, parts, 1);
    nb_set_memory_limit(was);
}

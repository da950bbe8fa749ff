/* --detect-anomaly on `nabla run` and `nabla train`: the first NaN or
 * infinity stops the run, naming the node (forward or gradient), its op, what
 * it holds and its inputs, and the step when training; nothing is written. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "toolutil.h"

static const char *model(const char *name, const char *op)
{
    char text[512];
    snprintf(text, sizeof text,
             "nabla: 1\ninputs: {x: [N, 1]}\nparams: {w: {shape: [1], init: ones}}\nnodes:\n"
             "  - {name: xw, op: mul, in: [x, w]}\n  - {name: l, op: %s, in: [xw]}\n"
             "  - {name: loss, op: mean, in: [l]}\noutputs: [l]\nloss: loss\n"
             "train:\n  data: {format: npy, train: {x: x.npy}, test: {x: ok.npy}}\n"
             "  batch: 2\n  shuffle: false\n  optimizer: {type: sgd, lr: 0.1}\n",
             op);
    write_text(tmp_path(name), text);
    return tmp_path(name);
}

static void data(void)
{
    write_npy(tmp_path("x.npy"), NB_F32, 2, (int64_t[]){4, 1}, (double[]){1, 2, -1, 3});
    write_npy(tmp_path("ok.npy"), NB_F32, 2, (int64_t[]){2, 1}, (double[]){1, 2});
}

Test(anomaly, run_names_the_forward_node, .init = tmp_make, .fini = tmp_remove)
{
    data();
    char in[1100];
    snprintf(in, sizeof in, "x=%s", tmp_path("x.npy"));
    tool_result r = TOOL("run", model("m.yaml", "log"), "--in", in, "--detect-anomaly", "-o", tmp_path("out"));
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "nabla run: anomaly: node 'l' (log) holds 1 NaN and 0 infinite of 4 values; its "
                      "inputs were finite: 'xw'");
    cr_expect_eq(tmp_count_files(), 3, "nothing written beside the model and data");
    tool_result_free(&r);
}

/* sqrt(0) is finite, its gradient 1 / (2 sqrt(0)) is not. */
Test(anomaly, run_names_a_gradient_node, .init = tmp_make, .fini = tmp_remove)
{
    write_npy(tmp_path("z.npy"), NB_F32, 2, (int64_t[]){2, 1}, (double[]){0, 4});
    char in[1100];
    snprintf(in, sizeof in, "x=%s", tmp_path("z.npy"));
    tool_result r = TOOL("run", model("m.yaml", "sqrt"), "--in", in, "--grad", "--detect-anomaly", "-o",
                         tmp_path("out"));
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "nabla run: anomaly: gradient node '");
    assert_has(r.err, "infinite");
    tool_result_free(&r);
    r = TOOL("run", tmp_path("m.yaml"), "--in", in, "--grad", "-q", "-o", tmp_path("out"));
    cr_expect_eq(r.status, 0, "without the flag the run goes through: %s", r.err);
    tool_result_free(&r);
}

Test(anomaly, train_names_the_step, .init = tmp_make, .fini = tmp_remove)
{
    data();
    tool_result r = TOOL("train", model("m.yaml", "log"), "--detect-anomaly");
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "nabla train: anomaly at step 2 (epoch 1, batch 2): node 'l' (log) holds 1 NaN "
                      "and 0 infinite of 2 values; its inputs were finite: 'xw'");
    tool_result_free(&r);
}

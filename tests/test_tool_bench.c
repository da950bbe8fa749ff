/* nabla bench, and nabla train --profile, run as a user would: the lines of
 * the report, the profile's shares adding up to the whole, bad flags. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "toolutil.h"

/* Small enough to time in a blink; dropout so that training mode matters. */
static const char *const MODEL =
    "nabla: 1\n"
    "name: tiny\n"
    "seed: 7\n"
    "inputs:\n"
    "  x: [N, 12]\n"
    "  t: {shape: [N], dtype: i32}\n"
    "nodes:\n"
    "  - {name: h, layer: dense, in: [x], units: 16, activation: relu}\n"
    "  - {name: d, op: dropout, in: [h], rate: 0.25}\n"
    "  - {name: y, layer: dense, in: [d], units: 5}\n"
    "  - {name: loss, op: softmax_cross_entropy, in: [y, t]}\n"
    "outputs: [y]\n"
    "loss: loss\n"
    "train:\n"
    "  batch: 6\n"
    "  optimizer: {type: momentum, lr: 0.01}\n";

static void setup(void)
{
    tmp_make();
    write_text(tmp_path("m.yaml"), MODEL);
}

TestSuite(tool_bench, .init = setup, .fini = tmp_remove);

/* The row of `mode` in the table: its seven numbers. */
static void mode_row(const char *out, const char *mode, double *v)
{
    const char *at = strstr(out, mode);
    cr_assert_not_null(at, "no row '%s' in:\n%s", mode, out);
    at += strlen(mode);
    at += strspn(at, " ");
    int n = sscanf(at, "%lf %lf %lf %*s %lf %lf %lf", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]);
    cr_assert_eq(n, 6, "row '%s' reads %d numbers:\n%s", mode, n, out);
}

Test(tool_bench, reports_every_mode)
{
    tool_result r = TOOL("bench", tmp_path("m.yaml"), "--steps", "3", "--warmup", "1");
    cr_assert_eq(r.status, 0, "%s", r.err);
    assert_has(r.out, "batch 6 (N=6), 1 thread");  /* the train section's batch */
    assert_has(r.out, "BLAS: OpenBLAS");
    assert_has(r.out, ", core ");
    assert_has(r.out, "3 timed steps after 1 warm-up");
    const char *modes[3] = {"forward ", "forward+backward ", "train step (momentum) "};
    double v[3][6];
    for (int k = 0; k < 3; k++) {
        mode_row(r.out, modes[k], v[k]);
        cr_expect_leq(v[k][1], v[k][0], "p10 <= median");
        cr_expect_leq(v[k][0], v[k][2], "median <= p90");
        cr_expect_gt(v[k][0], 0);
        cr_expect_gt(v[k][4], 0, "MFLOP");
        cr_expect(v[k][5] > 0 && v[k][5] <= 100, "GEMM %% %g", v[k][5]);
    }
    /* forward: 2 x 6 x (12 x 16 + 16 x 5) multiply-adds in the matmuls, and more */
    cr_expect_geq(v[0][4], 2e-6 * 6 * (12 * 16 + 16 * 5));
    cr_expect_gt(v[1][4], v[0][4], "backward adds FLOPs");
    cr_expect_geq(v[2][4], v[1][4], "the update adds FLOPs");
    assert_has(r.out, "arena: ");
    assert_has(r.out, "peak RSS: ");
    cr_expect_null(strstr(r.out, "profile of"), "no profile unless asked");
    tool_result_free(&r);
}

Test(tool_bench, flags_change_the_run)
{
    tool_result r = TOOL("bench", tmp_path("m.yaml"), "--batch", "4", "--steps", "2", "--warmup", "0",
                         "--threads", "1");
    cr_assert_eq(r.status, 0, "%s", r.err);
    assert_has(r.out, "batch 4 (N=4), 1 thread");
    assert_has(r.out, "2 timed steps after 0 warm-up");
    tool_result_free(&r);
    r = TOOL("bench", tmp_path("m.yaml"), "--dim", "N=3", "--steps", "1");
    cr_assert_eq(r.status, 0, "%s", r.err);
    assert_has(r.out, "(N=3)");
    tool_result_free(&r);
}

/* The "op type" table of a profile: the sum of its % column; *rows its rows. */
static double op_share_sum(const char *out, int *rows)
{
    const char *at = strstr(out, "op type");
    cr_assert_not_null(at, "no op type table in:\n%s", out);
    at = strchr(at, '\n') + 1;
    double sum = 0;
    *rows = 0;
    while (*at && *at != '\n') {
        char op[128];
        double ms, share;
        int nodes;
        cr_assert_eq(sscanf(at, "%127s %lf %lf %d", op, &ms, &share, &nodes), 4, "row: %.60s", at);
        sum += share;
        ++*rows;
        at = strchr(at, '\n');
        cr_assert_not_null(at);
        at++;
    }
    return sum;
}

Test(tool_bench, profile_shares_add_up)
{
    tool_result r = TOOL("bench", tmp_path("m.yaml"), "--steps", "3", "--profile", "--top", "4");
    cr_assert_eq(r.status, 0, "%s", r.err);
    assert_has(r.out, "profile of the training step, 3 runs");
    int rows;
    double sum = op_share_sum(r.out, &rows);
    cr_expect(sum > 99.5 && sum < 100.5, "op types add up to %g %%", sum);
    cr_expect_geq(rows, 6, "matmul, add, relu, dropout, the loss, momentum_update, ...");
    assert_has(r.out, "\nmatmul ");
    assert_has(r.out, "\nmomentum_update ");
    assert_has(r.out, "\nnode ");
    assert_has(r.out, "more nodes: ");  /* --top 4 of many */
    tool_result_free(&r);
}

Test(tool_bench, bad_flags_exit_2)
{
    const char *const cases[][4] = {
        {"--steps", "0", NULL},        {"--batch", "x", NULL},  {"--warmup", "-1", NULL},
        {"--bogus", NULL},             {"--threads", "0", NULL}, {"--dim", "Q=3", NULL},
        {"--steps", NULL},
    };
    const char *const says[] = {"--steps needs an integer >= 1", "--batch needs an integer",
                                "--warmup needs an integer >= 0", "unknown option '--bogus'",
                                "--threads needs an integer >= 1", "no free dimension 'Q'",
                                "option '--steps' needs a value"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tool_result r = TOOL("bench", tmp_path("m.yaml"), cases[i][0], cases[i][1], cases[i][2]);
        cr_expect_eq(r.status, 2, "%s: status %d", cases[i][0], r.status);
        cr_expect(strstr(r.err, says[i]) != NULL, "%s: stderr is '%s'", cases[i][0], r.err);
        cr_expect(strstr(r.err, "nabla bench: ") != NULL, "%s", r.err);
        tool_result_free(&r);
    }
}

Test(tool_bench, needs_a_model_with_a_loss)
{
    tool_result r = TOOL("bench");
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "needs one MODEL file");
    tool_result_free(&r);
    write_text(tmp_path("noloss.yaml"), "nabla: 1\ninputs:\n  x: [N, 3]\nnodes:\n"
                                        "  - {name: y, op: relu, in: [x]}\noutputs: [y]\n");
    r = TOOL("bench", tmp_path("noloss.yaml"));
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "names no loss");
    tool_result_free(&r);
    r = TOOL("bench", tmp_path("missing.yaml"));
    cr_expect_eq(r.status, 2);
    tool_result_free(&r);
}

Test(tool_bench, help_and_listing)
{
    tool_result r = TOOL("bench", "--help");
    cr_expect_eq(r.status, 0);
    assert_has(r.out, "usage: nabla bench MODEL");
    tool_result_free(&r);
    r = TOOL("help");
    assert_has(r.out, "  bench ");
    assert_has(r.out, "--blas-core");
    tool_result_free(&r);
}

/* nabla train --profile: the same tables after training (npy data). */
Test(tool_bench, train_profile)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "%s  epochs: 1\n  data:\n    format: npy\n    train: {x: x.npy, t: t.npy}\n", MODEL);
    write_text(tmp_path("d.yaml"), yaml);
    double x[30 * 12], t[30];
    fill_random(x, 30 * 12, 9);
    for (int i = 0; i < 30; i++) t[i] = i % 5;
    write_npy_f64(tmp_path("x.npy"), 2, (int64_t[]){30, 12}, x);
    write_npy(tmp_path("t.npy"), NB_I32, 1, (int64_t[]){30}, t);
    tool_result r = TOOL("train", tmp_path("d.yaml"), "--profile");
    cr_assert_eq(r.status, 0, "%s", r.err);
    assert_has(r.out, "epoch 1/1");
    assert_has(r.out, "profile of the training step, 5 runs");  /* 30 samples, batch 6 */
    int rows;
    double sum = op_share_sum(r.out, &rows);
    cr_expect(sum > 99.5 && sum < 100.5, "op types add up to %g %%", sum);
    tool_result_free(&r);
    r = TOOL("train", tmp_path("d.yaml"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect_null(strstr(r.out, "profile of"));
    tool_result_free(&r);
}

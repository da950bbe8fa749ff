/* Training with OpenBLAS on two threads (nabla train --threads 2), then the
 * gradients of the trained weights (nabla run --grad): both succeed. Under
 * tests/run.sh --tsan the nabla binary is built with ThreadSanitizer, which
 * makes it exit 66 on a data race: this is the "parallel kernels" pass. The
 * matrices (128 x 256 by 256 x 256) are large enough for OpenBLAS to split
 * them across its threads. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "toolutil.h"

TestSuite(threads_train, .init = tmp_make, .fini = tmp_remove, .timeout = 300);

static const char *const MODEL =
    "nabla: 1\ninputs:\n  x: [N, 256]\n  t: {shape: [N], dtype: i32}\nnodes:\n"
    "  - {name: h1, layer: dense, in: [x], units: 256, activation: relu}\n"
    "  - {name: h2, layer: dense, in: [h1], units: 256, activation: relu}\n"
    "  - {name: y, layer: dense, in: [h2], units: 10}\n"
    "  - {name: loss, op: softmax_cross_entropy, in: [y, t]}\n"
    "outputs: [y]\nloss: loss\n"
    "train:\n  data:\n    format: npy\n    train: {x: x.npy, t: t.npy}\n  batch: 128\n  epochs: 2\n"
    "  optimizer: adam\n";

Test(threads_train, openblas_threads)
{
    enum { N = 512, D = 256 };
    static double x[N * D];
    static int32_t t[N];
    fill_random(x, N * D, 7);
    for (int i = 0; i < N; i++) t[i] = (int32_t)(i * 7 % 10);
    write_npy(tmp_path("x.npy"), NB_F32, 2, (int64_t[]){N, D}, x);
    write_npy_i32(tmp_path("t.npy"), 1, (int64_t[]){N}, t);
    write_text(tmp_path("m.yaml"), MODEL);
    tool_result r = TOOL("train", tmp_path("m.yaml"), "--data", tmp_path(""), "--threads", "2", "--save",
                         tmp_path("w.safetensors"));
    cr_expect_eq(r.status, 0, "train: exit %d: %s", r.status, r.err);
    cr_expect(strstr(r.out, "epoch 2/2"), "%s", r.out);
    tool_result_free(&r);
    char in_x[600], in_t[600];
    snprintf(in_x, sizeof in_x, "x=%s", tmp_path("x.npy"));
    snprintf(in_t, sizeof in_t, "t=%s", tmp_path("t.npy"));
    r = TOOL("run", tmp_path("m.yaml"), "--in", in_x, "--in", in_t, "--weights", tmp_path("w.safetensors"),
             "--grad", "-q", "-o", tmp_path("out"));
    cr_expect_eq(r.status, 0, "run: exit %d: %s", r.status, r.err);
    tool_result_free(&r);
}

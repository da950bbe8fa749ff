/* Every example model in examples/models loads (`nabla check`), renders
 * forward and backward, and passes `nabla gradcheck`. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>

#include "toolutil.h"

static void expect_ok(tool_result r, const char *what)
{
    cr_expect_eq(r.status, 0, "%s exited %d:\n%s%s", what, r.status, r.out, r.err);
}

static const char *const names[] = {"apple", "mlp2", "mnist_mlp", "simple_convnet",
                                     "lstm_step", "attention", "bn_dropout", "deep_convnet",
                                     "transformer_block", "binary_classifier"};

/* Indices, not pointers: Criterion may run each test in a fresh process image. */
ParameterizedTestParameters(examples, model)
{
    static int idx[sizeof names / sizeof names[0]];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) idx[i] = (int)i;
    return cr_make_param_array(int, idx, sizeof names / sizeof names[0]);
}

ParameterizedTest(int *i, examples, model, .init = tmp_make, .fini = tmp_remove, .timeout = 120)
{
    char path[1024];
    snprintf(path, sizeof path, "%s", test_file("../examples/models/%s.yaml", names[*i]));
    tool_result r = TOOL("check", path);
    expect_ok(r, "check");
    cr_expect(strstr(r.out, "total"), "check prints totals");
    tool_result_free(&r);

    r = TOOL("render", path, "-o", tmp_path("f.svg"));
    expect_ok(r, "render");
    tool_result_free(&r);
    r = TOOL("render", path, "--backward", "-o", tmp_path("b.svg"));
    expect_ok(r, "render --backward");
    tool_result_free(&r);
    char *svg = read_text(tmp_path("b.svg"), NULL);
    cr_expect(strstr(svg, "<svg") && strstr(svg, "grad."), "the backward diagram has grad nodes");
    free(svg);

    r = TOOL("gradcheck", path, "--max-elems", "200", "--seed", "3");
    expect_ok(r, "gradcheck");
    cr_expect(strstr(r.out, "tensors pass"), "%s", r.out);
    cr_expect_null(strstr(r.out, "FAIL"), "%s", r.out);
    tool_result_free(&r);
}

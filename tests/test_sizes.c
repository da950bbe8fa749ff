/* Arithmetic on sizes never wraps (issue 11): shapes whose element count
 * overflows are refused when the node is made, whatever op made them; conv2d
 * and pooling attributes are bounded before any arithmetic; FLOP counts are
 * doubles that never wrap to 0 and are "unknown" (-1) when a binding makes a
 * size overflow; a plan whose buffers side by side overflow a size_t is
 * refused before its layout. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "toolutil.h"

TestSuite(sizes, .init = tmp_make, .fini = tmp_remove, .timeout = 60);

#define G32 4294967296LL /* 2^32 */

Test(sizes, huge_inputs_are_refused)
{
    EXPECT_ERRORS("nabla: 1\ninputs:\n  x: [4294967296, 4294967296]\n  y: [N, 4294967296, 536870912]\n"
                  "nodes:\n  - {name: z, op: exp, in: [x]}\n",
                  "m.yaml:3:6: input 'x' is [4294967296, 4294967296]: more than 2^63 bytes of f32",
                  "m.yaml:4:6: input 'y' is [N, 4294967296, 536870912]: more than 2^63 bytes of f32");
}

/* Each operand fits; the output does not: [2^32, 1] x [1, 2^32]. */
Test(sizes, op_outputs_that_overflow_are_refused)
{
    EXPECT_ERRORS("nabla: 1\ninputs:\n  a: [4294967296, 1]\n  b: [1, 4294967296]\nnodes:\n"
                  "  - {name: y, op: matmul, in: [a, b]}\n  - {name: s, op: add, in: [a, b]}\n"
                  "  - {name: w, op: where, in: [a, b, a]}\n",
                  "m.yaml:6:5: node 'y': matmul gives [4294967296, 4294967296]: more than 2^63 bytes of f32",
                  "m.yaml:7:5: node 's': add gives [4294967296, 4294967296]: more than 2^63 bytes of f32",
                  "m.yaml:8:5: node 'w': where gives [4294967296, 4294967296]: more than 2^63 bytes of f32");
}

/* The C API: the same check, the graph's message names the node. */
Test(sizes, c_api_broadcast_overflow)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "a", NB_F64, 2, (nb_dim[]){NB_DIM(G32), NB_DIM(1)});
    nb_node *b = nb_input(g, "b", NB_F64, 3, (nb_dim[]){NB_DIM(4), NB_DIM(1), NB_DIM(G32)});
    cr_assert(a && b, "%s", nb_graph_error(g));
    cr_expect_null(nb_mul(g, a, b));
    cr_expect_eq(nb_graph_status(g), NB_ERR_OVERFLOW);
    assert_has(nb_graph_error(g), "mul gives [4, 4294967296, 4294967296]: more than 2^63 bytes of f64");
    nb_graph_free(g);
}

Test(sizes, conv2d_and_pool_attributes_are_bounded)
{
    const char *head = "nabla: 1\ninputs: {x: [1, 1, 4, 4]}\nparams:\n  w: {shape: [1, 1, 1, 1], init: ones}\nnodes:\n";
    char yaml[512];
    snprintf(yaml, sizeof yaml, "%s  - {name: y, op: conv2d, in: [x, w], pad: 2147483646}\n", head);
    EXPECT_ERROR(yaml, "m.yaml:6:5: node 'y': conv2d pad 2147483646 must be <= 1073741824");
    snprintf(yaml, sizeof yaml, "%s  - {name: y, op: conv2d, in: [x, w], stride: 9223372036854775807}\n", head);
    EXPECT_ERROR(yaml, "m.yaml:6:5: node 'y': conv2d stride 9223372036854775807 must be <= 1073741824");
    snprintf(yaml, sizeof yaml, "%s  - {name: y, op: conv2d, in: [x, w], dilation: [1, -9223372036854775807]}\n", head);
    EXPECT_ERROR(yaml, "m.yaml:6:5: node 'y': conv2d dilation -9223372036854775807 must be >= 1");
    snprintf(yaml, sizeof yaml, "%s  - {name: y, op: max_pool2d, in: [x], size: 4294967296, pad: 2147483648}\n", head);
    EXPECT_ERROR(yaml, "m.yaml:6:5: node 'y': max_pool2d size 4294967296 must be < 2^31");
    snprintf(yaml, sizeof yaml, "%s  - {name: y, op: avg_pool2d, in: [x], size: 2, stride: 9223372036854775807}\n", head);
    EXPECT_ERROR(yaml, "m.yaml:6:5: node 'y': avg_pool2d stride 9223372036854775807 must be < 2^31");
}

/* The shape the issue reported conv2d accepting ([1, 1, 2^32, 2^32] with 0 FLOPs):
 * the largest legal padding of a large image is refused as too large. */
Test(sizes, conv2d_huge_output_is_refused)
{
    EXPECT_ERROR("nabla: 1\ninputs: {x: [1, 1, 65536, 65536]}\nparams:\n  w: {shape: [1, 1, 1, 1], init: ones}\n"
                 "nodes:\n  - {name: y, op: conv2d, in: [x, w], pad: 1073741824}\n",
                 "m.yaml:6:5: node 'y': conv2d is too large for BLAS: x is [1, 1, 65536, 65536], w is [1, 1, 1, 1]");
}

Test(sizes, dims_numel_saturates)
{
    nb_dims d = {.rank = 3, .d = {G32, G32, 2}};
    cr_expect_eq(nb_dims_numel(&d), SIZE_MAX);
    d = (nb_dims){.rank = 2, .d = {G32, G32 / 2}};
    cr_expect_eq(nb_dims_numel(&d), (size_t)1 << 63);
}

/* y = a · b with a [N, 2^30], b [2^30, 8]: 2 N 2^33 FLOPs. At N = 2^30 that is
 * 2^64, exactly (it wrapped to 0 in a size_t); at N = 2^40 a's size
 * overflows, so the count is unknown (-1), not a wrapped number. */
Test(sizes, flops_never_wrap)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "a", NB_F32, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(1 << 30)});
    nb_node *b = nb_input(g, "b", NB_F32, 2, (nb_dim[]){NB_DIM(1 << 30), NB_DIM(8)});
    nb_node *y = nb_matmul(g, a, b);
    cr_assert_not_null(y, "%s", nb_graph_error(g));
    nb_bind n30 = {"N", 1LL << 30}, n40 = {"N", 1LL << 40};
    cr_expect_eq(nb_node_flops(g, y, &n30, 1), 0x1p64);
    cr_expect_eq(nb_node_flops(g, y, &n40, 1), -1);
    nb_graph_free(g);
}

/* nabla check: the overflowing node's FLOPs and the total are "-" with a
 * line saying why; a count past 10^21 is printed in e-notation, not cut. */
Test(sizes, check_table_flops)
{
    write_text(tmp_path("m.yaml"), "nabla: 1\ninputs:\n  a: [N, 1073741824]\n  b: [1073741824, 1048576]\n"
                                   "nodes:\n  - {name: y, op: matmul, in: [a, b]}\noutputs: [y]\n");
    tool_result r = TOOL("check", tmp_path("m.yaml"), "--dim", "N=1099511627776");
    cr_assert_eq(r.status, 0, "%s", r.err);
    assert_has(r.out, "FLOPs of 1 node is unknown: its size overflows with these dimensions");
    cr_expect(strstr(r.out, "total") && strstr(strstr(r.out, "total"), "-\n"), "%s", r.out);
    tool_result_free(&r);
    r = TOOL("check", tmp_path("m.yaml"), "--dim", "N=1073741824");
    cr_assert_eq(r.status, 0, "%s", r.err);
    assert_has(r.out, "2.418e+24");  /* 2 * 2^30 * 2^20 * 2^30 = 2^81 */
    cr_expect(!strstr(r.out, "unknown"), "%s", r.out);
    tool_result_free(&r);
}

/* Nine live inputs of 2^61 bytes each pass the per-node check (each under
 * 2^63) but not side by side: refused as an overflow, not laid out in a
 * wrapped arena (or refused only by the memory limit). */
Test(sizes, plan_buffers_that_overflow_together)
{
    nb_graph *g = nb_graph_new();
    nb_node *x[9], *s = NULL;
    for (int i = 0; i < 9; i++) {
        char name[8];
        snprintf(name, sizeof name, "x%d", i);
        x[i] = nb_input(g, name, NB_F64, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(1 << 28)});
        s = i ? nb_add(g, s, x[i]) : x[0];
    }
    cr_assert_not_null(s, "%s", nb_graph_error(g));
    nb_plan *p = plan_new_ok(g, &s, 1);
    nb_status st = nb_plan_bind(p, &(nb_bind){"N", 1LL << 30}, 1);
    cr_expect_eq(st, NB_ERR_OVERFLOW, "%s", nb_plan_error(p));
    assert_has(nb_plan_error(p), "the plan's buffers overflow a 64-bit size");
    nb_plan_free(p);
    nb_graph_free(g);
}

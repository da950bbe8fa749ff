/* The memory limit (nb_set_memory_limit, nabla --max-memory): a tensor or a
 * plan arena larger than it is refused with a message before allocating,
 * instead of meeting the OOM killer. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "toolutil.h"

Test(memory_limit, the_default_is_most_of_physical_memory)
{
    size_t dflt = nb_memory_limit();
    cr_expect_gt(dflt, (size_t)1 << 26);
    nb_set_memory_limit(1000);
    cr_expect_eq(nb_memory_limit(), 1000);
    nb_set_memory_limit(0);
    cr_expect_eq(nb_memory_limit(), dflt);
}

Test(memory_limit, a_param_over_it_is_refused)
{
    nb_set_memory_limit(1 << 20);
    nb_graph *g = nb_graph_new();
    cr_expect_null(nb_param(g, "w", NB_F32, 2, (int64_t[]){1024, 512}, NB_INIT(NB_INIT_ZEROS)));
    assert_has(nb_graph_error(g), "param 'w' needs 0.0021 GB, over the memory limit of 0.00105 GB");
    cr_expect_not_null(nb_param(g, "v", NB_F32, 2, (int64_t[]){256, 256}, NB_INIT(NB_INIT_ZEROS)),
                       "%s", nb_graph_error(g));
    nb_tensor t;
    cr_expect_eq(nb_tensor_alloc(&t, NB_F64, 1, (int64_t[]){1 << 18}), NB_ERR_NOMEM);
    nb_graph_free(g);
}

/* Params and constants each under the limit but together over it: the graph
 * holds them all, so their total meets the limit too (in the C API, YAML and
 * ONNX alike). */
Test(memory_limit, a_graphs_params_and_constants_share_it)
{
    nb_set_memory_limit(1 << 20);
    nb_graph *g = nb_graph_new();
    int64_t half[2] = {512, 384};  /* 768 KiB */
    cr_assert_not_null(nb_param(g, "a", NB_F32, 2, half, NB_INIT(NB_INIT_ZEROS)), "%s", nb_graph_error(g));
    cr_expect_null(nb_param(g, "b", NB_F32, 2, half, NB_INIT(NB_INIT_ZEROS)));
    cr_expect_eq(nb_graph_status(g), NB_ERR_NOMEM);
    assert_has(nb_graph_error(g), "param 'b' (0.000786 GB) would bring the graph's params and "
                                  "constants to 0.00157 GB, over the memory limit of 0.00105 GB");
    nb_graph_clear_error(g);
    nb_tensor t;
    cr_assert_eq(nb_tensor_alloc(&t, NB_F32, 2, half), NB_OK);
    cr_expect_null(nb_constant(g, "k", &t));
    assert_has(nb_graph_error(g), "constant 'k' (0.000786 GB) would bring");
    nb_tensor_free(&t);
    nb_graph_free(g);
    g = nb_graph_new();  /* a new graph starts from nothing */
    cr_expect_not_null(nb_param(g, "b", NB_F32, 2, half, NB_INIT(NB_INIT_ZEROS)), "%s", nb_graph_error(g));
    nb_graph_free(g);
    nb_set_memory_limit(0);
}

Test(memory_limit, a_plan_arena_over_it_is_refused)
{
    nb_set_memory_limit(1 << 20);
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 2, (nb_dim[]){{0, "N"}, NB_DIM(1000)});
    nb_node *y = nb_exp(g, x);
    nb_plan *p = plan_new_ok(g, &y, 1);
    plan_bind_ok(p, (nb_bind[]){{"N", 10}}, 1);
    cr_expect_eq(nb_plan_bind(p, (nb_bind[]){{"N", 1000}}, 1), NB_ERR_NOMEM);
    assert_has(nb_plan_error(p), "the plan needs an arena of");
    assert_has(nb_plan_error(p), "over the memory limit of 0.00105 GB");
    nb_plan_free(p);
    nb_graph_free(g);
}

Test(memory_limit, the_tool_takes_max_memory, .init = tmp_make, .fini = tmp_remove)
{
    write_text(tmp_path("m.yaml"), "nabla: 1\ninputs: {x: [2]}\n"
                                   "params: {W: {shape: [100000, 100], init: zeros}}\n"
                                   "nodes:\n  - {name: y, op: exp, in: [x]}\noutputs: [y]\n");
    tool_result r = TOOL("--max-memory", "10M", "check", tmp_path("m.yaml"));
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "m.yaml:3:13: param 'W' needs 0.04 GB, over the memory limit of 0.01 GB");
    tool_result_free(&r);
    r = TOOL("check", tmp_path("m.yaml"), "--max-memory=100M");
    cr_expect_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    r = TOOL("--max-memory", "lots", "check", tmp_path("m.yaml"));
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "nabla --max-memory: needs a size such as 4G, 500M or 1048576; got 'lots'");
    tool_result_free(&r);
}

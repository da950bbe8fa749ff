/* The error contract of core.h ("Errors"), one test per rule: which handle
 * holds a failure's message, what clears it, what keeps it. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

static nb_node *vec(nb_graph *g, const char *name, int64_t n)
{
    return nb_input(g, name, NB_F64, 1, (nb_dim[]){NB_DIM(n)});
}

/* Rule 3: a failed nb_plan_new does not make the next, valid one fail. */
Test(contract, failed_plan_new_is_not_sticky)
{
    nb_graph *g = nb_graph_new(), *other = nb_graph_new();
    nb_node *a = vec(g, "a", 3), *foreign = vec(other, "f", 3);
    nb_plan *p;
    cr_assert_eq(nb_plan_new(g, &foreign, 1, &p), NB_ERR_ARG);
    cr_expect(strstr(nb_graph_error(g), "('f') is not a node of this graph"), "%s", nb_graph_error(g));
    cr_assert_eq(nb_plan_new(g, &a, 1, &p), NB_OK, "%s", nb_graph_error(g));
    cr_expect_eq(nb_graph_status(g), NB_OK);
    cr_expect_str_eq(nb_graph_error(g), "");
    nb_plan_free(p);
    nb_graph_free(g);
    nb_graph_free(other);
}

/* Rule 3: a failed builder does not make nb_grad or nb_plan_new of valid
 * nodes fail; their success clears the graph's message. */
Test(contract, failed_builder_does_not_block_grad_or_plan)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = vec(g, "a", 3), *b = vec(g, "b", 4);
    cr_assert_null(nb_add(g, a, b));
    cr_assert_eq(nb_graph_status(g), NB_ERR_SHAPE);
    nb_node *loss = nb_sum(g, nb_mul(g, a, a), NULL, 0, false), *grad;
    cr_assert_not_null(loss);
    cr_assert_eq(nb_grad(g, loss, &a, 1, &grad), NB_OK, "%s", nb_graph_error(g));
    cr_expect_eq(nb_graph_status(g), NB_OK);
    nb_plan *p;
    cr_assert_eq(nb_plan_new(g, &grad, 1, &p), NB_OK, "%s", nb_graph_error(g));
    cr_assert_eq(nb_plan_set(p, a, (double[]){1, 2, 3}), NB_OK);
    cr_assert_eq(nb_plan_run(p), NB_OK, "%s", nb_plan_error(p));
    cr_expect_eq(((const double *)nb_plan_get(p, grad))[2], 6);
    nb_plan_free(p);
    nb_graph_free(g);
}

/* Rule 3, the exception: builders keep the first failure through later
 * successes and failures. */
Test(contract, builders_keep_the_first_failure)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = vec(g, "a", 3), *b = vec(g, "b", 4);
    cr_assert_null(nb_add(g, a, b));
    cr_assert_not_null(nb_exp(g, a));                       /* a success leaves it */
    cr_assert_null(nb_op(g, "expp", "e", &a, 1, NULL, 0));  /* a second failure too */
    cr_expect_eq(nb_graph_status(g), NB_ERR_SHAPE);
    cr_expect(strstr(nb_graph_error(g), "a is [3], b is [4]"), "%s", nb_graph_error(g));
    nb_graph_clear_error(g);
    cr_expect_eq(nb_graph_status(g), NB_OK);
    cr_assert_null(nb_op(g, "expp", "e", &a, 1, NULL, 0));
    cr_expect_eq(nb_graph_status(g), NB_ERR_UNKNOWN_OP);
    nb_graph_free(g);
}

/* Rule 4: a NULL node handed on keeps the root cause; without one the
 * message says what is missing. */
Test(contract, null_nodes_keep_the_root_cause)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = vec(g, "a", 3), *grad, *missing = NULL;
    nb_plan *p;
    cr_expect_eq(nb_grad(g, NULL, &a, 1, &grad), NB_ERR_ARG);
    cr_expect(strstr(nb_graph_error(g), "loss node to differentiate is missing"), "%s", nb_graph_error(g));
    nb_graph_clear_error(g);
    nb_node *bad = nb_reshape(g, a, 1, (nb_dim[]){NB_DIM(4)});
    cr_assert_null(bad);
    char root[1024];
    snprintf(root, sizeof root, "%s", nb_graph_error(g));
    cr_expect_eq(nb_plan_new(g, &missing, 1, &p), NB_ERR_SHAPE);
    cr_expect_str_eq(nb_graph_error(g), root);
    cr_expect_eq(nb_grad(g, nb_sum(g, bad, NULL, 0, false), &a, 1, &grad), NB_ERR_SHAPE);
    cr_expect_str_eq(nb_graph_error(g), root);
    nb_graph_free(g);
}

/* Rules 2 and 3 for plans: each call's outcome is its own. */
Test(contract, plan_messages_clear_on_success)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(3)});
    nb_node *t = nb_input(g, "t", NB_I32, 1, (nb_dim[]){NB_SYM("N")});
    nb_node *loss = nb_softmax_cross_entropy(g, x, t);
    nb_plan *p;
    cr_assert_eq(nb_plan_new(g, &loss, 1, &p), NB_OK, "%s", nb_graph_error(g));
    cr_expect_eq(nb_plan_bind(p, (nb_bind[]){{"M", 2}}, 1), NB_ERR_ARG);
    cr_expect_eq(nb_plan_status(p), NB_ERR_ARG);
    cr_expect(strstr(nb_plan_error(p), "no free dimension 'M'"), "%s", nb_plan_error(p));
    cr_assert_eq(nb_plan_bind(p, (nb_bind[]){{"N", 2}}, 1), NB_OK);
    cr_expect_eq(nb_plan_status(p), NB_OK);
    cr_expect_str_eq(nb_plan_error(p), "");
    nb_plan_set(p, x, (double[]){1, 2, 3, 4, 5, 6});
    nb_plan_set(p, t, (int32_t[]){0, 7});
    cr_expect_eq(nb_plan_run(p), NB_ERR_RUNTIME);
    cr_expect_eq(nb_plan_status(p), NB_ERR_RUNTIME);
    cr_expect(strstr(nb_plan_error(p), "t"), "%s", nb_plan_error(p));
    nb_plan_set(p, t, (int32_t[]){0, 2});
    cr_expect_eq(nb_plan_run(p), NB_OK, "%s", nb_plan_error(p));
    cr_expect_eq(nb_plan_status(p), NB_OK);
    cr_expect_str_eq(nb_plan_error(p), "");
    cr_expect_eq(nb_plan_status(NULL), NB_ERR_ARG);
    nb_plan_free(p);
    nb_graph_free(g);
}

/* Rule 2: calls on files leave their message for the calling thread. */
static void *fail_elsewhere(void *arg)
{
    nb_tensor t;
    (void)arg;
    nb_npy_read("/nonexistent/other-thread.npy", &t);
    return NULL;
}

Test(contract, file_messages_belong_to_the_thread, .init = tmp_make, .fini = tmp_remove)
{
    nb_tensor t;
    cr_expect_eq(nb_npy_read(tmp_path("none.npy"), &t), NB_ERR_IO);
    cr_expect(strstr(nb_last_error(), "none.npy: cannot open"), "%s", nb_last_error());
    pthread_t th;
    pthread_create(&th, NULL, fail_elsewhere, NULL);
    pthread_join(th, NULL);
    cr_expect(strstr(nb_last_error(), "none.npy"), "another thread's failure showed here: %s",
              nb_last_error());
    nb_tensor ok;
    int64_t shape[1] = {2};
    cr_assert_eq(nb_tensor_alloc(&ok, NB_F32, 1, shape), NB_OK);
    cr_expect_eq(nb_npy_write(tmp_path("ok.npy"), &ok), NB_OK);
    cr_expect_str_eq(nb_last_error(), "", "a success clears the thread's message");
    nb_tensor_free(&ok);
    nb_tensor_set set = {0};
    cr_expect_eq(nb_tensor_set_add(&set, "__metadata__", &(nb_tensor){.dtype = NB_F32, .data = &(float){1}}),
                 NB_ERR_NAME);
    cr_expect(strstr(nb_last_error(), "'__metadata__' is reserved"), "%s", nb_last_error());
    nb_tensor_set_free(&set);
    cr_expect_eq(nb_op_register(&(nb_op_def){.name = "nothing"}), NB_ERR_ARG);
    cr_expect(strstr(nb_last_error(), "shape rule"), "%s", nb_last_error());
}

/* Rule 2: render, weights and gradcheck report on the graph they were given. */
Test(contract, graph_calls_report_on_the_graph, .init = tmp_make, .fini = tmp_remove)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = vec(g, "a", 3);
    nb_node *w = nb_param(g, "w", NB_F64, 1, (int64_t[]){3}, NB_INIT(NB_INIT_ONES));
    nb_node *loss = nb_sum(g, nb_mul(g, a, w), NULL, 0, false);
    cr_assert_not_null(loss);
    cr_expect_eq(nb_render(g, tmp_path("g.txt"), NULL, NULL), NB_ERR_ARG);
    cr_expect(strstr(nb_graph_error(g), "unknown diagram format"), "%s", nb_graph_error(g));
    cr_expect_eq(nb_weights_load(g, tmp_path("none.safetensors"), NULL), NB_ERR_IO);
    cr_expect(strstr(nb_graph_error(g), "none.safetensors"), "%s", nb_graph_error(g));
    cr_expect_eq(nb_weights_save(g, tmp_path("w.safetensors"), NULL, 0), NB_OK, "%s", nb_graph_error(g));
    cr_expect_str_eq(nb_graph_error(g), "", "a success clears the graph's message");
    nb_gc_result r;
    nb_node *i = nb_input(g, "i", NB_I32, 0, NULL);
    cr_expect_eq(nb_gradcheck(g, i, &w, 1, NULL, 0, NULL, 0, NULL, &r), NB_ERR_ARG);
    cr_expect(strstr(nb_graph_error(g), "f64 scalar loss"), "%s", nb_graph_error(g));
    nb_graph_free(g);
}

/* Getters documented as NULL-safe give their neutral answer. */
Test(contract, getters_take_null)
{
    nb_graph *g = nb_graph_new();
    char buf[32];
    int64_t shape[NB_MAX_DIMS];
    cr_expect_null(nb_node_attr(NULL, "axis"));
    cr_expect_null(nb_node_attr(vec(g, "a", 2), NULL));
    cr_expect_eq(nb_node_shape_str(g, NULL, buf, sizeof buf), 6);
    cr_expect_str_eq(buf, "(null)");
    cr_expect_eq(nb_node_shape_str_bound(g, NULL, NULL, 0, buf, sizeof buf), 6);
    cr_expect_eq(nb_node_shape_bound(g, NULL, NULL, 0, shape), -1);
    cr_expect_eq(nb_node_flops(g, NULL, NULL, 0), -1);
    cr_expect_eq(nb_node_rank(NULL), -1);
    cr_expect_eq(nb_node_dtype(NULL), NB_F32);
    cr_expect_eq(nb_node_kind_of(NULL), NB_NODE_INPUT);
    cr_expect_null(nb_graph_node(NULL, 0));
    cr_expect_eq(nb_graph_num_nodes(NULL), 0);
    cr_expect_str_eq(nb_node_name(NULL), "(null)");
    nb_graph_free(g);
}

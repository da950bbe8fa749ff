/* Each class of error: a status, a message naming the node and shapes, and
 * nothing printed or aborted. */
#include <criterion/criterion.h>
#include <string.h>

#include "testutil.h"

static nb_node *vec(nb_graph *g, const char *name, int64_t n)
{
    return nb_input(g, name, NB_F32, 1, (nb_dim[]){NB_DIM(n)});
}

Test(errors, bad_broadcast_names_node_and_shapes)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = vec(g, "a", 3), *b = vec(g, "b", 4);
    cr_assert_null(nb_op(g, "add", "s", (nb_node *[]){a, b}, 2, NULL, 0));
    cr_expect_eq(nb_graph_status(g), NB_ERR_SHAPE);
    cr_expect_str_eq(nb_graph_error(g), "node 's': add cannot broadcast: a is [3], b is [4]");
    nb_graph_free(g);
}

Test(errors, symbol_broadcasts_only_against_one_or_itself)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(3)});
    nb_node *y = nb_input(g, "y", NB_F32, 2, (nb_dim[]){NB_DIM(5), NB_DIM(3)});
    nb_node *z = nb_input(g, "z", NB_F32, 2, (nb_dim[]){NB_SYM("M"), NB_DIM(1)});
    cr_expect_null(nb_add(g, x, y));
    cr_expect(strstr(nb_graph_error(g), "x is [N, 3], y is [5, 3]"), "%s", nb_graph_error(g));
    nb_graph_clear_error(g);
    cr_expect_null(nb_add(g, x, z));
    nb_graph_clear_error(g);
    nb_node *ok = nb_add(g, x, vec(g, "v", 3));
    cr_assert_not_null(ok);
    char buf[64];
    nb_node_shape_str(g, ok, buf, sizeof buf);
    cr_expect_str_eq(buf, "[N, 3]");
    nb_graph_free(g);
}

Test(errors, unknown_op_suggests_a_name)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = vec(g, "a", 3);
    cr_assert_null(nb_op(g, "exq", "e", &a, 1, NULL, 0));
    cr_expect_eq(nb_graph_status(g), NB_ERR_UNKNOWN_OP);
    cr_expect_str_eq(nb_graph_error(g), "node 'e': unknown op 'exq' (did you mean 'exp'?)");
    nb_graph_free(g);
}

/* nb_apply takes the definition; a NULL one (e.g. a failed nb_op_find) is an
 * error on the graph, not a crash, and later calls keep its message. */
Test(errors, apply_with_a_null_op)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = vec(g, "a", 3);
    nb_node *e = nb_apply(g, nb_op_find("exp"), "e", &a, 1, NULL, 0);
    cr_assert_not_null(e, "%s", nb_graph_error(g));
    cr_expect_str_eq(nb_node_op(e), "exp");
    cr_expect_null(nb_apply(g, nb_op_find("exq"), "f", &e, 1, NULL, 0));
    cr_expect_eq(nb_graph_status(g), NB_ERR_UNKNOWN_OP);
    cr_expect_str_eq(nb_graph_error(g), "node 'f': no op given (a NULL op definition)");
    cr_expect_null(nb_exp(g, NULL));
    cr_expect_str_eq(nb_graph_error(g), "node 'f': no op given (a NULL op definition)");
    nb_graph_free(g);
}

Test(errors, suggestions_count_swapped_letters_as_one_edit)
{
    const char *keys[] = {"train", "inputs", "nodes"};
    cr_expect_str_eq(nb_suggest("trian", keys, 3), "train");
    cr_expect_str_eq(nb_suggest("ndoes", keys, 3), "nodes");
    cr_expect_null(nb_suggest("weights", keys, 3));
}

Test(errors, wrong_arity)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = vec(g, "a", 3);
    cr_assert_null(nb_op(g, "add", "s", &a, 1, NULL, 0));
    cr_expect_eq(nb_graph_status(g), NB_ERR_ARITY);
    cr_expect_str_eq(nb_graph_error(g), "node 's': add takes 2 inputs, got 1");
    nb_graph_free(g);
}

Test(errors, unknown_and_missing_attributes)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = vec(g, "a", 3);
    cr_assert_null(nb_op(g, "pow", "p", &a, 1, NULL, 0));
    cr_expect_str_eq(nb_graph_error(g), "node 'p': pow needs attribute 'exponent'");
    nb_graph_clear_error(g);
    cr_assert_null(nb_op(g, "pow", "p", &a, 1, (nb_attr[]){NB_AFLOAT("exponant", 2)}, 1));
    cr_expect_str_eq(nb_graph_error(g), "node 'p': pow has no attribute 'exponant'");
    nb_graph_free(g);
}

Test(errors, duplicate_and_invalid_names)
{
    nb_graph *g = nb_graph_new();
    vec(g, "a", 3);
    cr_expect_null(vec(g, "a", 3));
    cr_expect_eq(nb_graph_status(g), NB_ERR_NAME);
    cr_expect_str_eq(nb_graph_error(g), "duplicate name 'a'");
    nb_graph_clear_error(g);
    cr_expect_null(vec(g, "a b", 3));
    cr_expect_eq(nb_graph_status(g), NB_ERR_NAME);
    nb_graph_free(g);
}

Test(errors, first_message_is_kept_through_null_inputs)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = vec(g, "a", 3), *b = vec(g, "b", 4);
    nb_node *bad = nb_add(g, a, b);
    nb_node *later = nb_exp(g, nb_mul(g, bad, a));
    cr_expect_null(later);
    cr_expect_eq(nb_graph_status(g), NB_ERR_SHAPE);
    cr_expect(strstr(nb_graph_error(g), "a is [3], b is [4]"));
    nb_plan *p;
    cr_expect_eq(nb_plan_new(g, &a, 1, &p), NB_ERR_SHAPE, "a graph with an error cannot be planned");
    cr_expect_null(p);
    nb_graph_free(g);
}

Test(errors, dims_that_overflow)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 3,
                          (nb_dim[]){NB_SYM("N"), NB_DIM(INT64_C(1) << 30), NB_DIM(INT64_C(1) << 30)});
    nb_node *y = nb_exp(g, x);
    cr_assert_not_null(y);
    nb_plan *p;
    cr_assert_eq(nb_plan_new(g, &y, 1, &p), NB_OK);
    cr_expect_eq(nb_plan_bind(p, (nb_bind[]){{"N", INT64_C(1) << 40}}, 1), NB_ERR_OVERFLOW);
    cr_expect(strstr(nb_plan_error(p), "overflow"), "%s", nb_plan_error(p));
    nb_plan_free(p);
    int64_t huge[2] = {INT64_C(1) << 62, 8};
    cr_expect_null(nb_param(g, "W", NB_F32, 2, huge, NB_INIT(NB_INIT_ZEROS)));
    cr_expect_eq(nb_graph_status(g), NB_ERR_OVERFLOW);
    nb_graph_free(g);
}

Test(errors, unbound_and_unknown_dimensions)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 1, (nb_dim[]){NB_SYM("N")});
    nb_node *y = nb_exp(g, x);
    nb_plan *p;
    cr_assert_eq(nb_plan_new(g, &y, 1, &p), NB_OK);
    cr_expect_eq(nb_plan_run(p), NB_ERR_UNBOUND);
    cr_expect(strstr(nb_plan_error(p), "'N' is not bound"), "%s", nb_plan_error(p));
    cr_expect_eq(nb_plan_bind(p, (nb_bind[]){{"M", 3}}, 1), NB_ERR_ARG);
    cr_expect_str_eq(nb_plan_error(p), "the graph has no free dimension 'M'");
    cr_expect_eq(nb_plan_bind(p, (nb_bind[]){{"N", 0}}, 1), NB_ERR_ARG);
    nb_plan_free(p);
    nb_graph_free(g);
}

static nb_status copy_fwd(const nb_kctx *k)
{
    memcpy(k->out, k->in[0], nb_dims_numel(&k->out_shape) * nb_dtype_size(k->dtype));
    return NB_OK;
}
static nb_status copy_shape(nb_shape_ctx *c) { return nb_shape_float_inputs(c); }
static const nb_op_def opaque = {.name = "test_opaque", .min_in = 1, .max_in = 1,
                                 .shape = copy_shape, .forward = copy_fwd};

Test(errors, no_gradient_rule)
{
    nb_status st = nb_op_register(&opaque);
    cr_assert(st == NB_OK || st == NB_ERR_NAME);
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *y = nb_sum(g, nb_op(g, "test_opaque", "o", &x, 1, NULL, 0), NULL, 0, false);
    nb_node *dx;
    cr_expect_eq(nb_grad(g, y, &x, 1, &dx), NB_ERR_NO_GRAD);
    cr_expect_str_eq(nb_graph_error(g),
                     "node 'o': op test_opaque has no gradient rule, but the gradient must pass "
                     "through it");
    nb_graph_free(g);
}

Test(errors, i32_is_not_differentiable)
{
    nb_graph *g = nb_graph_new();
    nb_node *t = nb_input(g, "t", NB_I32, 1, (nb_dim[]){NB_DIM(3)});
    cr_expect_null(nb_exp(g, t));
    cr_expect_eq(nb_graph_status(g), NB_ERR_DTYPE);
    cr_expect_str_eq(nb_graph_error(g), "node 'exp_1': exp needs float inputs; t is i32");
    nb_graph_free(g);
}

/* NULL handles and arguments give statuses, not crashes. */
Test(errors, null_arguments)
{
    cr_expect_eq(nb_plan_run(NULL), NB_ERR_ARG);
    cr_expect_eq(nb_plan_bind(NULL, NULL, 0), NB_ERR_ARG);
    cr_expect_eq(nb_plan_set(NULL, NULL, NULL), NB_ERR_ARG);
    cr_expect_null(nb_plan_get(NULL, NULL));
    cr_expect_eq(nb_plan_arena_bytes(NULL), 0);
    cr_expect_eq(nb_grad(NULL, NULL, NULL, 0, NULL), NB_ERR_ARG);
    cr_expect_null(nb_add(NULL, NULL, NULL));
    cr_expect_null(nb_input(NULL, "x", NB_F32, 0, NULL));
    nb_plan *p = (nb_plan *)1;
    cr_expect_eq(nb_plan_new(NULL, NULL, 0, &p), NB_ERR_ARG);
    cr_expect_null(p);
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 1, (nb_dim[]){NB_DIM(2)});
    nb_node *y = nb_exp(g, x);
    cr_assert_eq(nb_plan_new(g, &y, 1, &p), NB_OK);
    cr_expect_eq(nb_plan_set(p, x, NULL), NB_ERR_ARG);
    cr_expect_str_eq(nb_plan_error(p), "no data given for input 'x'");
    cr_expect_eq(nb_plan_set(p, y, (float[]){1, 2}), NB_ERR_ARG);
    cr_expect_str_eq(nb_plan_error(p), "'exp_1' is not an input");
    nb_plan_free(p);
    nb_graph_free(g);
    nb_graph_free(NULL);
    nb_plan_free(NULL);
}

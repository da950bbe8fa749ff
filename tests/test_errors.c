/* Each class of error: a status, a message naming the node and shapes, and
 * nothing printed or aborted. */
#include <criterion/criterion.h>
#include <stdio.h>
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
    cr_expect_str_eq(node_shape(g, ok), "[N, 3]");
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
    /* a call given the NULL keeps the root cause */
    nb_plan *p;
    cr_expect_eq(nb_plan_new(g, &later, 1, &p), NB_ERR_SHAPE);
    cr_expect_null(p);
    cr_expect(strstr(nb_graph_error(g), "a is [3], b is [4]"), "%s", nb_graph_error(g));
    nb_node *grad;
    cr_expect_eq(nb_grad(g, later, &a, 1, &grad), NB_ERR_SHAPE);
    cr_expect(strstr(nb_graph_error(g), "a is [3], b is [4]"), "%s", nb_graph_error(g));
    nb_graph_free(g);
}

Test(errors, dims_that_overflow)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 3,
                          (nb_dim[]){NB_SYM("N"), NB_DIM(INT64_C(1) << 30), NB_DIM(INT64_C(1) << 30)});
    nb_node *y = nb_exp(g, x);
    cr_assert_not_null(y);
    nb_plan *p = plan_new_ok(g, &y, 1);
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
    nb_plan *p = plan_new_ok(g, &y, 1);
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
    register_test_op(&opaque);
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

/* ---- limits: NB_MAX_ATTRS and NB_MAX_INPUTS ---- */

/* n attributes "a0", "a1", ... (names live as long as the test binary) */
static nb_attr_def many_attrs[40];
static char many_names[40][8];
static const nb_attr_def *numbered_attrs(void)
{
    for (int i = 0; i < 40; i++) {
        snprintf(many_names[i], sizeof many_names[i], "a%d", i);
        many_attrs[i] = (nb_attr_def){many_names[i], NB_ATTR_FLOAT, false, {.f = i}};
    }
    return many_attrs;
}

/* A def with 40 attributes would overflow the node's fixed-size bookkeeping:
 * refused at registration, and by nb_apply if never registered. */
Test(errors, register_refuses_too_many_attributes)
{
    nb_op_def def = {.name = "test_forty_attrs", .min_in = 1, .max_in = 1, .attrs = numbered_attrs(),
                     .n_attrs = 40, .shape = copy_shape, .forward = copy_fwd};
    cr_expect_eq(nb_op_register(&def), NB_ERR_ARG);
    cr_expect_null(nb_op_find("test_forty_attrs"));
    nb_graph *g = nb_graph_new();
    nb_node *x = vec(g, "x", 3);
    nb_attr a39 = NB_AFLOAT("a39", 1);
    cr_expect_null(nb_apply(g, &def, "y", &x, 1, &a39, 1));
    cr_expect_eq(nb_graph_status(g), NB_ERR_ARG);
    cr_expect_str_eq(nb_graph_error(g), "node 'y': op test_forty_attrs cannot be used: an op has "
                                        "an attrs array of at most 32 (NB_MAX_ATTRS)");
    nb_graph_free(g);
}

/* NB_MAX_ATTRS attributes are fine: the last one can be given and read. */
static nb_op_def max_attrs_def = {.name = "test_max_attrs", .min_in = 1, .max_in = 1,
                                  .n_attrs = NB_MAX_ATTRS, .shape = copy_shape,
                                  .forward = copy_fwd};

Test(errors, register_takes_the_most_attributes)
{
    max_attrs_def.attrs = numbered_attrs();
    register_test_op(&max_attrs_def);
    nb_graph *g = nb_graph_new();
    nb_node *x = vec(g, "x", 3);
    char last[8];
    snprintf(last, sizeof last, "a%d", NB_MAX_ATTRS - 1);
    nb_attr a = NB_AFLOAT(last, 2.5);
    nb_node *y = nb_op(g, "test_max_attrs", "y", &x, 1, &a, 1);
    cr_assert_not_null(y, "%s", nb_graph_error(g));
    cr_expect_float_eq(nb_node_attr(y, last)->f, 2.5, 0);
    cr_expect_float_eq(nb_node_attr(y, "a0")->f, 0, 0);
    nb_graph_free(g);
}

/* Arity and state beyond NB_MAX_INPUTS are refused; max_in above it is capped. */
Test(errors, register_checks_arity_against_the_input_limit)
{
    nb_op_def def = {.name = "test_arity", .min_in = NB_MAX_INPUTS + 1, .max_in = -1,
                     .shape = copy_shape, .forward = copy_fwd};
    cr_expect_eq(nb_op_register(&def), NB_ERR_ARG, "min_in above NB_MAX_INPUTS");
    def.min_in = -1;
    cr_expect_eq(nb_op_register(&def), NB_ERR_ARG, "negative min_in");
    def.min_in = 3, def.max_in = 2;
    cr_expect_eq(nb_op_register(&def), NB_ERR_ARG, "max_in below min_in");
    def.min_in = 1, def.max_in = 1, def.n_attrs = -1;
    cr_expect_eq(nb_op_register(&def), NB_ERR_ARG, "negative n_attrs");
    def.n_attrs = 1;
    cr_expect_eq(nb_op_register(&def), NB_ERR_ARG, "attributes without a table");
    cr_expect_null(nb_op_find("test_arity"));
    /* nb_apply checks an unregistered def the same way: no kernel, no node */
    def.n_attrs = 0, def.forward = NULL;
    cr_expect_eq(nb_op_register(&def), NB_ERR_ARG, "no forward kernel");
    nb_graph *g = nb_graph_new();
    nb_node *x = vec(g, "x", 3);
    cr_expect_null(nb_apply(g, &def, "z", &x, 1, NULL, 0));
    cr_expect_str_eq(nb_graph_error(g), "node 'z': op test_arity cannot be used: an op needs a "
                                        "name, a shape rule and a forward kernel");
    nb_graph_free(g);
}

static const nb_op_def wide = {.name = "test_wide", .min_in = 1, .max_in = 1000,
                               .shape = copy_shape, .forward = copy_fwd};

Test(errors, too_many_inputs_fail_when_the_node_is_built)
{
    register_test_op(&wide);
    nb_graph *g = nb_graph_new();
    nb_node *in[NB_MAX_INPUTS + 1];
    in[0] = vec(g, "x", 2);
    for (int i = 1; i <= NB_MAX_INPUTS; i++) in[i] = in[0];
    cr_expect_null(nb_concat(g, in, NB_MAX_INPUTS + 1, 0));
    cr_expect_eq(nb_graph_status(g), NB_ERR_ARITY);
    cr_expect_str_eq(nb_graph_error(g), "node 'concat': concat has 65 inputs; a node may have at "
                                        "most 64 (NB_MAX_INPUTS)");
    nb_graph_clear_error(g);
    cr_expect_null(nb_op(g, "test_wide", "w", in, NB_MAX_INPUTS + 1, NULL, 0));
    cr_expect_str_eq(nb_graph_error(g), "node 'w': test_wide has 65 inputs; a node may have at "
                                        "most 64 (NB_MAX_INPUTS)");
    nb_graph_clear_error(g);
    cr_expect_not_null(nb_op(g, "test_wide", "w", in, NB_MAX_INPUTS, NULL, 0), "%s",
                       nb_graph_error(g));
    nb_graph_free(g);
}

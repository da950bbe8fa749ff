/* The planner: only needed nodes run, buffers are reused, bindings are
 * cached, and a planned step allocates nothing. */
#include <criterion/criterion.h>

#include "testutil.h"

/* y = exp(-(x*w)^2) chain of 6 elementwise nodes over [N, 64] */
static nb_node *chain(nb_graph *g, nb_node *x, int depth)
{
    nb_node *h = x;
    for (int i = 0; i < depth; i++) h = nb_scale(g, nb_exp(g, nb_neg(g, nb_mul(g, h, h))), 0.5, 0.1);
    return h;
}

Test(plan, a_bound_step_allocates_nothing)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(64)});
    nb_node *loss = nb_sum(g, chain(g, x, 4), NULL, 0, false);
    nb_node *dx;
    cr_assert_eq(nb_grad(g, loss, &x, 1, &dx), NB_OK);
    nb_plan *p;
    cr_assert_eq(nb_plan_new(g, (nb_node *[]){loss, dx}, 2, &p), NB_OK);
    float data[8 * 64];
    for (int i = 0; i < 8 * 64; i++) data[i] = (float)(i % 17) / 17.0f;
    cr_assert_eq(nb_plan_bind(p, (nb_bind[]){{"N", 8}}, 1), NB_OK);
    cr_assert_eq(nb_plan_set(p, x, data), NB_OK);
    cr_assert_eq(nb_plan_run(p), NB_OK);
    uint64_t before = nb_alloc_count();
    for (int step = 0; step < 10; step++) {
        cr_assert_eq(nb_plan_bind(p, (nb_bind[]){{"N", 8}}, 1), NB_OK);  /* cached */
        cr_assert_eq(nb_plan_set(p, x, data), NB_OK);
        cr_assert_eq(nb_plan_run(p), NB_OK);
    }
    cr_expect_eq(nb_alloc_count(), before, "a planned step allocated %llu times",
                 (unsigned long long)(nb_alloc_count() - before));
    nb_plan_free(p);
    nb_graph_free(g);
}

Test(plan, buffers_are_reused)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(256)});
    nb_node *y = nb_sum(g, chain(g, x, 8), NULL, 0, false);
    nb_plan *p;
    cr_assert_eq(nb_plan_new(g, &y, 1, &p), NB_OK);
    cr_assert_eq(nb_plan_bind(p, (nb_bind[]){{"N", 32}}, 1), NB_OK);
    size_t arena = nb_plan_arena_bytes(p), all = nb_plan_intermediate_bytes(p);
    /* 32 intermediates of 32 KiB; liveness keeps only ~3 alive (+ the input) */
    cr_expect_lt(arena, all / 4, "arena %zu vs sum of intermediates %zu", arena, all);
    nb_plan_free(p);
    nb_graph_free(g);
}

Test(plan, rebinding_changes_shapes_and_is_cached)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(2)});
    nb_node *y = nb_sum(g, x, (int64_t[]){0}, 1, false);
    nb_plan *p;
    cr_assert_eq(nb_plan_new(g, &y, 1, &p), NB_OK);
    int64_t shape[8];
    for (int n = 1; n <= 3; n++) {
        cr_assert_eq(nb_plan_bind(p, (nb_bind[]){{"N", n}}, 1), NB_OK);
        cr_assert_eq(nb_plan_shape(p, x, shape), 2);
        nb_plan_shape(p, x, shape);
        cr_expect_eq(shape[0], n);
        double in[6] = {1, 2, 3, 4, 5, 6};
        nb_plan_set(p, x, in);
        cr_assert_eq(nb_plan_run(p), NB_OK);
        const double *out = nb_plan_get(p, y);
        double want0 = 0, want1 = 0;
        for (int i = 0; i < n; i++) want0 += in[2 * i], want1 += in[2 * i + 1];
        cr_expect_float_eq(out[0], want0, 1e-12);
        cr_expect_float_eq(out[1], want1, 1e-12);
    }
    uint64_t before = nb_alloc_count();
    cr_assert_eq(nb_plan_bind(p, (nb_bind[]){{"N", 2}}, 1), NB_OK);
    cr_expect_eq(nb_alloc_count(), before, "binding a size seen before reuses its instance");
    nb_plan_free(p);
    nb_graph_free(g);
}

Test(plan, only_needed_nodes_run)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 1, (nb_dim[]){NB_DIM(2)});
    nb_node *bad = nb_log(g, nb_neg(g, x));  /* NaN for positive x: must not run */
    nb_node *y = nb_exp(g, x);
    (void)bad;
    nb_plan *p;
    cr_assert_eq(nb_plan_new(g, &y, 1, &p), NB_OK);
    nb_plan_set(p, x, (double[]){0, 1});
    cr_assert_eq(nb_plan_run(p), NB_OK);
    cr_expect_null(nb_plan_get(p, bad));
    cr_expect_float_eq(((const double *)nb_plan_get(p, y))[1], 2.718281828459045, 1e-12);
    nb_plan_free(p);
    nb_graph_free(g);
}

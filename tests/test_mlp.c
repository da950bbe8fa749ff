/* Multi-op graphs through the C API: XOR learned by plain gradient steps, a
 * Hessian-vector product of a small MLP against finite differences, and the
 * arena of a 5-layer MLP. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>

#include "testutil.h"

/* A dense layer whose params all tests here draw from seed 3. */
static nb_node *dense(nb_graph *g, nb_node *x, const char *name, int64_t in, int64_t out,
                      nb_dtype dt, nb_node **W, nb_node **b)
{
    return dense_layer(g, x, name, in, out, dt, 3, W, b);
}

Test(mlp, xor_is_learned)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(2)});
    nb_node *t = nb_input(g, "t", NB_I32, 1, (nb_dim[]){NB_SYM("N")});
    nb_node *p[4], *d[4];
    nb_node *h = nb_tanh(g, dense(g, x, "l1", 2, 8, NB_F32, &p[0], &p[1]));
    nb_node *loss = nb_softmax_cross_entropy(g, dense(g, h, "l2", 8, 2, NB_F32, &p[2], &p[3]), t);
    cr_assert_eq(nb_grad(g, loss, p, 4, d), NB_OK, "%s", nb_graph_error(g));
    nb_plan *plan = plan_new_ok(g, (nb_node *[]){loss, d[0], d[1], d[2], d[3]}, 5);
    plan_bind_ok(plan, (nb_bind[]){{"N", 4}}, 1);
    nb_plan_set(plan, x, (float[]){0, 0, 0, 1, 1, 0, 1, 1});
    nb_plan_set(plan, t, (int32_t[]){0, 1, 1, 0});
    float l = 1;
    int it = 0;
    for (; it < 3000 && l >= 0.01f; it++) {
        plan_run_ok(plan);
        l = *(const float *)nb_plan_get(plan, loss);
        sgd_step_f32(plan, p, d, 4, 0.5f);
    }
    cr_expect_lt(l, 0.01f, "loss %g after %d steps", l, it);
    nb_plan_free(plan);
    nb_graph_free(g);
}

/* H v for loss(W1, W2) of a tanh MLP, by differentiating (grad . v) again,
 * against (grad(W + e v) - grad(W - e v)) / 2e. */
Test(mlp, hessian_vector_product)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 2, (nb_dim[]){NB_DIM(5), NB_DIM(3)});
    nb_node *y = nb_input(g, "y", NB_F64, 2, (nb_dim[]){NB_DIM(5), NB_DIM(2)});
    nb_node *W1, *b1, *W2, *b2;
    nb_node *h = nb_tanh(g, dense(g, x, "l1", 3, 4, NB_F64, &W1, &b1));
    nb_node *out = nb_sigmoid(g, dense(g, h, "l2", 4, 2, NB_F64, &W2, &b2));
    nb_node *loss = nb_mse(g, out, y);
    nb_node *gW1;
    cr_assert_eq(nb_grad(g, loss, &W1, 1, &gW1), NB_OK, "%s", nb_graph_error(g));
    nb_node *v = nb_input(g, "v", NB_F64, 2, (nb_dim[]){NB_DIM(3), NB_DIM(4)});
    nb_node *gv = nb_sum(g, nb_mul(g, gW1, v), NULL, 0, false), *hv;
    cr_assert_eq(nb_grad(g, gv, &W1, 1, &hv), NB_OK, "%s", nb_graph_error(g));
    nb_plan *plan = plan_new_ok(g, (nb_node *[]){gW1, hv}, 2);
    nb_rng rng;
    nb_rng_seed(&rng, 9);
    double xs[15], ys[10], vs[12];
    fill_uniform(&rng, xs, 15, -1, 1);
    fill_uniform(&rng, ys, 10, 0, 1);
    fill_uniform(&rng, vs, 12, -1, 1);
    nb_plan_set(plan, x, xs);
    nb_plan_set(plan, y, ys);
    nb_plan_set(plan, v, vs);
    plan_run_ok(plan);
    double analytic[12], gp[12], eps = 1e-5;
    double *w = nb_param_value(W1)->data, w0[12];
    for (int i = 0; i < 12; i++) analytic[i] = ((const double *)nb_plan_get(plan, hv))[i], w0[i] = w[i];
    for (int i = 0; i < 12; i++) w[i] = w0[i] + eps * vs[i];
    nb_plan_run(plan);
    for (int i = 0; i < 12; i++) gp[i] = ((const double *)nb_plan_get(plan, gW1))[i];
    for (int i = 0; i < 12; i++) w[i] = w0[i] - eps * vs[i];
    nb_plan_run(plan);
    double worst = 0, scale = 0;
    for (int i = 0; i < 12; i++) {
        double num = (gp[i] - ((const double *)nb_plan_get(plan, gW1))[i]) / (2 * eps);
        worst = fmax(worst, fabs(num - analytic[i]));
        scale = fmax(scale, fabs(num));
    }
    cr_expect_gt(scale, 1e-3, "the product is not trivially zero");
    cr_expect_lt(worst, 1e-7 + 1e-5 * scale, "worst error %g (scale %g)", worst, scale);
    nb_plan_free(plan);
    nb_graph_free(g);
}

Test(mlp, arena_of_five_layers_reuses_buffers)
{
    nb_graph *g = nb_graph_new();
    nb_node *h = nb_input(g, "x", NB_F32, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(256)});
    nb_node *t = nb_input(g, "t", NB_I32, 1, (nb_dim[]){NB_SYM("N")});
    nb_node *p[10], *d[10];
    const char *names[5] = {"l1", "l2", "l3", "l4", "l5"};
    for (int i = 0; i < 5; i++) {
        h = dense(g, h, names[i], 256, i == 4 ? 10 : 256, NB_F32, &p[2 * i], &p[2 * i + 1]);
        if (i < 4) h = nb_relu(g, h);
    }
    nb_node *loss = nb_softmax_cross_entropy(g, h, t);
    cr_assert_eq(nb_grad(g, loss, p, 10, d), NB_OK, "%s", nb_graph_error(g));
    nb_node *outs[11] = {loss};
    for (int i = 0; i < 10; i++) outs[i + 1] = d[i];
    nb_plan *plan = plan_new_ok(g, outs, 11);
    plan_bind_ok(plan, (nb_bind[]){{"N", 64}}, 1);
    size_t arena = nb_plan_arena_bytes(plan), all = nb_plan_intermediate_bytes(plan);
    cr_expect_lt(arena, all, "arena %zu >= sum of intermediates %zu", arena, all);
    float *xs = nb_plan_input_buffer(plan, nb_graph_find(g, "x"));
    int32_t *ts = nb_plan_input_buffer(plan, t);
    for (int i = 0; i < 64 * 256; i++) xs[i] = (float)((i * 7919) % 101) / 101.0f;
    for (int i = 0; i < 64; i++) ts[i] = i % 10;
    plan_run_ok(plan);
    uint64_t before = nb_alloc_count();
    plan_run_ok(plan);
    cr_expect_eq(nb_alloc_count(), before, "a training step allocated");
    nb_plan_free(plan);
    nb_graph_free(g);
}

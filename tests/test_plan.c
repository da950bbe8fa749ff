/* The planner: only needed nodes run, buffers are reused, elementwise ops run
 * in place, bindings are cached, and a planned step allocates nothing; random
 * graphs give the same bits as a plan that keeps every value. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../graph/internal.h" /* nb__plan_inplace_count: tests link the static library */
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
    nb_plan *p = plan_new_ok(g, (nb_node *[]){loss, dx}, 2);
    float data[8 * 64];
    for (int i = 0; i < 8 * 64; i++) data[i] = (float)(i % 17) / 17.0f;
    plan_bind_ok(p, (nb_bind[]){{"N", 8}}, 1);
    cr_assert_eq(nb_plan_set(p, x, data), NB_OK);
    plan_run_ok(p);
    uint64_t before = nb_alloc_count();
    for (int step = 0; step < 10; step++) {
        plan_bind_ok(p, (nb_bind[]){{"N", 8}}, 1);  /* cached */
        cr_assert_eq(nb_plan_set(p, x, data), NB_OK);
        plan_run_ok(p);
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
    nb_plan *p = plan_new_ok(g, &y, 1);
    plan_bind_ok(p, (nb_bind[]){{"N", 32}}, 1);
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
    nb_plan *p = plan_new_ok(g, &y, 1);
    int64_t shape[8];
    for (int n = 1; n <= 3; n++) {
        plan_bind_ok(p, (nb_bind[]){{"N", n}}, 1);
        cr_assert_eq(nb_plan_shape(p, x, shape), 2);
        nb_plan_shape(p, x, shape);
        cr_expect_eq(shape[0], n);
        double in[6] = {1, 2, 3, 4, 5, 6};
        nb_plan_set(p, x, in);
        plan_run_ok(p);
        const double *out = nb_plan_get(p, y);
        double want0 = 0, want1 = 0;
        for (int i = 0; i < n; i++) want0 += in[2 * i], want1 += in[2 * i + 1];
        cr_expect_float_eq(out[0], want0, 1e-12);
        cr_expect_float_eq(out[1], want1, 1e-12);
    }
    uint64_t before = nb_alloc_count();
    plan_bind_ok(p, (nb_bind[]){{"N", 2}}, 1);
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
    nb_plan *p = plan_new_ok(g, &y, 1);
    nb_plan_set(p, x, (double[]){0, 1});
    plan_run_ok(p);
    cr_expect_null(nb_plan_get(p, bad));
    cr_expect_float_eq(((const double *)nb_plan_get(p, y))[1], 2.718281828459045, 1e-12);
    nb_plan_free(p);
    nb_graph_free(g);
}

/* A plan of every op node of g: nothing dies before the end, so nothing is
 * reused or written in place. */
static nb_plan *keep_everything(nb_graph *g)
{
    size_t n = nb_graph_num_nodes(g), m = 0;
    nb_node **all = malloc(n * sizeof *all);
    for (size_t i = 0; i < n; i++)
        if (nb_node_kind_of(nb_graph_node(g, i)) == NB_NODE_OP) all[m++] = nb_graph_node(g, i);
    nb_plan *p = plan_new_ok(g, all, (int)m);
    free(all);
    return p;
}

/* The same output in two plans, bit for bit. */
static void expect_same(nb_plan *p, nb_plan *ref, const nb_node *n, const char *what)
{
    size_t bytes = plan_bytes(p, n);
    const void *a = nb_plan_get(p, n), *b = nb_plan_get(ref, n);
    cr_assert(a && b, "%s: no data for '%s'", what, nb_node_name(n));
    cr_expect(!memcmp(a, b, bytes),
              "%s: '%s' (%s) differs from a plan that keeps everything", what, nb_node_name(n),
              nb_node_op(n));
}

/* x -> neg -> 4 x (mul h h, scale, add a broadcast bias, tanh) -> relu: after
 * the first op every op can write over its input, so the arena holds x and
 * one buffer (ping-ponging between two buffers would need three). */
Test(plan, elementwise_chains_run_in_place)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(256)});
    nb_node *b = nb_param(g, "b", NB_F32, 1, (int64_t[]){256},
                          (nb_init){.kind = NB_INIT_UNIFORM, .a = -0.5, .b = 0.5, .seed = 1});
    nb_node *h = nb_neg(g, x);
    for (int i = 0; i < 4; i++) h = nb_tanh(g, nb_add(g, nb_scale(g, nb_mul(g, h, h), -0.5, 0.25), b));
    nb_node *y = nb_relu(g, h);
    nb_plan *p = plan_new_ok(g, &y, 1);
    plan_bind_ok(p, (nb_bind[]){{"N", 32}}, 1);
    size_t buf = 32 * 256 * sizeof(float);
    cr_expect_leq(nb_plan_arena_bytes(p), 2 * buf, "arena %zu bytes for buffers of %zu",
                  nb_plan_arena_bytes(p), buf);
    cr_expect_eq(nb_plan_intermediate_bytes(p), 18 * buf);
    cr_expect_eq(nb__plan_inplace_count(p), 17, "every op after the first runs in place");
    float data[32 * 256];
    for (int i = 0; i < 32 * 256; i++) data[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    nb_plan *ref = keep_everything(g);
    plan_bind_ok(ref, (nb_bind[]){{"N", 32}}, 1);
    cr_expect_eq(nb__plan_inplace_count(ref), 0);
    cr_assert_eq(nb_plan_set(p, x, data), NB_OK);
    cr_assert_eq(nb_plan_set(ref, x, data), NB_OK);
    plan_run_ok(p);
    plan_run_ok(ref);
    expect_same(p, ref, y, "chain");
    nb_plan_free(ref);
    nb_plan_free(p);
    nb_graph_free(g);
}

/* y = r + e with r [1, 4] broadcast (dies here, but is not y's shape) and e
 * [N, 4] (may be written over); o1 = exp(x) is an output read by o2, so it
 * must survive o2; m = h * h reads one dying buffer twice. */
Test(plan, in_place_spares_outputs_and_broadcast_inputs)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(4)});
    nb_node *r = nb_sum(g, nb_exp(g, x), (int64_t[]){0}, 1, true);
    nb_node *e = nb_neg(g, x);
    nb_node *y = nb_add(g, r, e);
    nb_node *o1 = nb_exp(g, x), *o2 = nb_neg(g, o1);
    nb_node *h = nb_scale(g, x, 2, 0), *m = nb_mul(g, h, h);
    nb_plan *p = plan_new_ok(g, (nb_node *[]){y, o1, o2, m}, 4);
    plan_bind_ok(p, (nb_bind[]){{"N", 3}}, 1);
    cr_expect_geq(nb__plan_inplace_count(p), 2, "y over e, m over h");
    double in[12];
    for (int i = 0; i < 12; i++) in[i] = 0.25 * i - 1.5;
    cr_assert_eq(nb_plan_set(p, x, in), NB_OK);
    plan_run_ok(p);
    const double *yv = nb_plan_get(p, y), *o1v = nb_plan_get(p, o1), *o2v = nb_plan_get(p, o2),
                 *mv = nb_plan_get(p, m);
    for (int j = 0; j < 4; j++) {
        double col = exp(in[j]) + exp(in[4 + j]) + exp(in[8 + j]);
        for (int i = 0; i < 3; i++) {
            double v = in[4 * i + j];
            cr_expect_float_eq(yv[4 * i + j], col - v, 1e-12, "y[%d][%d]", i, j);
            cr_expect_float_eq(o1v[4 * i + j], exp(v), 1e-12, "o1[%d][%d]", i, j);
            cr_expect_float_eq(o2v[4 * i + j], -exp(v), 1e-12, "o2[%d][%d]", i, j);
            cr_expect_float_eq(mv[4 * i + j], 4 * v * v, 1e-12, "m[%d][%d]", i, j);
        }
    }
    nb_plan_free(p);
    nb_graph_free(g);
}

/* ---- property: random graphs against a plan that keeps everything ------ */

enum { ROWS = 0, VEC = 1 };  /* [N, 6] or [6] */

static nb_node *random_unary(nb_graph *g, nb_node *a, nb_rng *r)
{
    switch (nb_rng_next(r) % 8) {
    case 0: return nb_neg(g, a);
    case 1: return nb_tanh(g, a);
    case 2: return nb_sigmoid(g, a);
    case 3: return nb_relu(g, a);
    case 4: return nb_abs(g, a);
    case 5: return nb_leaky_relu(g, a, 0.1);
    case 6: return nb_dropout(g, a, 0.25);
    default: return nb_scale(g, a, nb_rng_uniform(r) * 2 - 1, 0.5);
    }
}

/* A graph of elementwise ops (in place where they may), broadcasts, matmuls,
 * reductions, views and softmax over x [N, 6], with the gradients of a loss;
 * the plan asks for the loss, the gradients and a few other nodes. */
static void random_graph_check(uint64_t seed, int *inplace)
{
    nb_rng r;
    nb_rng_seed(&r, seed);
    nb_graph *g = nb_graph_new();
    nb_node *pool[64], *params[8];
    int kind[64], n = 0, np = 0;
    nb_node *x = nb_input(g, "x", NB_F64, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(6)});
    pool[n] = x, kind[n++] = ROWS;
    for (int k = 0; k < 2; k++) {
        char name[8];
        snprintf(name, sizeof name, "v%d", k);
        params[np++] = pool[n] = nb_param(g, name, NB_F64, 1, (int64_t[]){6},
                                          (nb_init){.kind = NB_INIT_UNIFORM, .a = -1, .b = 1, .seed = seed + (uint64_t)k});
        kind[n++] = VEC;
    }
    nb_node *W = params[np++] = nb_param(g, "W", NB_F64, 2, (int64_t[]){6, 6},
                                         (nb_init){.kind = NB_INIT_UNIFORM, .a = -0.5, .b = 0.5, .seed = seed});
    int steps = 8 + (int)(nb_rng_next(&r) % 16);
    for (int s = 0; s < steps && n < 60; s++) {
        int a = (int)(nb_rng_next(&r) % (uint64_t)n), b = (int)(nb_rng_next(&r) % (uint64_t)n);
        if (nb_rng_uniform(&r) < 0.6) a = n - 1 - (int)(nb_rng_next(&r) % (uint64_t)(n < 3 ? n : 3));
        nb_node *y;
        int ky = kind[a];
        switch (nb_rng_next(&r) % 9) {
        case 0: case 1: case 2:
            y = random_unary(g, pool[a], &r);
            break;
        case 3: case 4: {
            nb_node *(*op[3])(nb_graph *, nb_node *, nb_node *) = {nb_add, nb_sub, nb_mul};
            y = op[nb_rng_next(&r) % 3](g, pool[a], pool[b]);
            ky = kind[a] == ROWS || kind[b] == ROWS ? ROWS : VEC;
            break;
        }
        case 5:
            if (kind[a] != ROWS) continue;
            y = nb_matmul(g, pool[a], W);
            break;
        case 6:
            if (kind[a] != ROWS) continue;
            y = nb_sum(g, pool[a], (int64_t[]){0}, 1, false);
            ky = VEC;
            break;
        case 7: {  /* an op on a view, viewed back */
            if (kind[a] != ROWS) continue;
            nb_node *v = nb_reshape(g, pool[a], 3, (nb_dim[]){NB_SYM("N"), NB_DIM(2), NB_DIM(3)});
            y = nb_reshape(g, random_unary(g, v, &r), 2, (nb_dim[]){NB_SYM("N"), NB_DIM(6)});
            break;
        }
        default:
            y = nb_softmax(g, pool[a], -1);
            break;
        }
        cr_assert_not_null(y, "%s", nb_graph_error(g));
        pool[n] = y, kind[n++] = ky;
    }
    /* loss: the last node squared, plus a few others, summed */
    nb_node *loss = nb_sum(g, nb_mul(g, pool[n - 1], pool[n - 1]), NULL, 0, false);
    for (int k = 0; k < 3; k++) loss = nb_add(g, loss, nb_sum(g, pool[nb_rng_next(&r) % (uint64_t)n], NULL, 0, false));
    nb_node *wrt[9], *grads[9], *outs[16];
    int nw = 0, no = 0;
    wrt[nw++] = x;
    for (int k = 0; k < np; k++) wrt[nw++] = params[k];
    cr_assert_eq(nb_grad(g, loss, wrt, nw, grads), NB_OK, "%s", nb_graph_error(g));
    outs[no++] = loss;
    for (int k = 0; k < nw; k++) outs[no++] = grads[k];
    for (int k = 0; k < 3; k++) {
        nb_node *o = pool[nb_rng_next(&r) % (uint64_t)n];
        if (nb_node_kind_of(o) == NB_NODE_OP) outs[no++] = o;
    }
    nb_plan *p, *ref = keep_everything(g);
    cr_assert_eq(nb_plan_new(g, outs, no, &p), NB_OK, "%s", nb_graph_error(g));
    bool training = seed % 2;
    nb_plan_set_training(p, training);
    nb_plan_set_training(ref, training);
    const int64_t sizes[] = {3, 5, 3, 1, 8, 5};
    for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++) {
        int64_t N = sizes[t];
        double data[8 * 6];
        for (int i = 0; i < N * 6; i++) data[i] = nb_rng_uniform(&r) * 3 - 1.5;
        plan_bind_ok(p, (nb_bind[]){{"N", N}}, 1);
        plan_bind_ok(ref, (nb_bind[]){{"N", N}}, 1);
        cr_assert_eq(nb_plan_set(p, x, data), NB_OK);
        cr_assert_eq(nb_plan_set(ref, x, data), NB_OK);
        nb_plan_set_seed(p, seed + t);  /* same dropout masks in both */
        nb_plan_set_seed(ref, seed + t);
        plan_run_ok(p);
        plan_run_ok(ref);
        char what[64];
        snprintf(what, sizeof what, "seed %llu, N = %lld", (unsigned long long)seed, (long long)N);
        for (int k = 0; k < no; k++) expect_same(p, ref, outs[k], what);
        *inplace += nb__plan_inplace_count(p);
    }
    nb_plan_free(p);
    nb_plan_free(ref);
    nb_graph_free(g);
}

Test(plan, random_graphs_match_a_plan_that_keeps_everything)
{
    int inplace = 0;
    for (uint64_t seed = 1; seed <= 60; seed++) random_graph_check(seed, &inplace);
    cr_expect_gt(inplace, 1000, "in place ran only %d times: the property barely tests it", inplace);
}

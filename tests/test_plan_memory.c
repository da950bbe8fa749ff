/* The planner's memory is bounded: one arena sized to the largest binding,
 * shared by a few cached layouts, whatever sizes a caller binds in turn; and
 * results stay right as layouts are evicted and the arena grows. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* The training graph of examples/models/mnist_mlp.yaml: the loss and the
 * gradient of every trainable param. */
typedef struct mlp {
    nb_model *m;
    nb_node *x, *t;
    nb_node *outs[16];
    int n_out;
} mlp;

static void mlp_load(mlp *s)
{
    s->m = load_example("mnist_mlp.yaml");
    size_t np = nb_model_num_trainable(s->m);
    cr_assert_lt(np, 15);
    s->outs[0] = nb_model_loss(s->m);
    cr_assert_eq(model_grads(s->m, true, false, s->outs + 1, 15), (int)np);
    s->n_out = (int)np + 1;
    s->x = nb_model_input(s->m, 0);
    s->t = nb_model_input(s->m, 1);
}

static nb_plan *mlp_plan(const mlp *s) { return plan_new_ok(nb_model_graph(s->m), s->outs, s->n_out); }

static void bind(nb_plan *p, int64_t n) { plan_bind_ok(p, (nb_bind[]){{"N", n}}, 1); }

/* Inputs that depend on the batch size, so that stale data would show. */
static void feed(nb_plan *p, const mlp *s, int64_t n)
{
    float *x = malloc((size_t)n * 784 * sizeof *x);
    int32_t *t = malloc((size_t)n * sizeof *t);
    for (int64_t i = 0; i < n * 784; i++) x[i] = (float)((i * 7 + n) % 23) / 23.0f;
    for (int64_t i = 0; i < n; i++) t[i] = (int32_t)((i + n) % 10);
    cr_assert_eq(nb_plan_set(p, s->x, x), NB_OK);
    cr_assert_eq(nb_plan_set(p, s->t, t), NB_OK);
    free(x);
    free(t);
}

/* Every output's bytes, one after the other. */
typedef struct snap {
    char *data;
    size_t bytes;
} snap;

static snap take(nb_plan *p, const mlp *s)
{
    snap r = {NULL, 0};
    for (int k = 0; k < s->n_out; k++) {
        size_t b = plan_bytes(p, s->outs[k]);
        r.data = realloc(r.data, r.bytes + b);
        const void *out = nb_plan_get(p, s->outs[k]);
        cr_assert_not_null(out);
        memcpy(r.data + r.bytes, out, b);
        r.bytes += b;
    }
    return r;
}

static snap run_at(nb_plan *p, const mlp *s, int64_t n)
{
    bind(p, n);
    feed(p, s, n);
    plan_run_ok(p);
    return take(p, s);
}

/* Same outputs, bit for bit, as a fresh plan bound to n once. */
static void expect_fresh(const mlp *s, int64_t n, snap got, const char *when)
{
    nb_plan *q = mlp_plan(s);
    snap want = run_at(q, s, n);
    cr_assert_eq(got.bytes, want.bytes);
    cr_expect(!memcmp(got.data, want.data, got.bytes), "N = %lld %s: outputs differ from a fresh plan's",
              (long long)n, when);
    free(want.data);
    nb_plan_free(q);
}

Test(plan_memory, binding_every_batch_size_in_turn_stays_bounded)
{
    mlp s;
    mlp_load(&s);
    nb_plan *one = mlp_plan(&s);  /* what the largest binding needs on its own */
    bind(one, 256);
    size_t need = nb_plan_memory_bytes(one);
    cr_expect_geq(need, nb_plan_arena_bytes(one));
    nb_plan_free(one);

    nb_plan *p = mlp_plan(&s);
    size_t most = 0;
    for (int64_t n = 1; n <= 256; n++) {
        bind(p, n);
        if (nb_plan_memory_bytes(p) > most) most = nb_plan_memory_bytes(p);
    }
    cr_expect_lt(most, 3 * need, "binding N = 1..256 held %zu bytes; N = 256 alone needs %zu", most,
                 need);
    nb_plan_free(p);
    nb_model_free(s.m);
}

Test(plan_memory, a_size_bound_again_after_eviction_gives_the_same_bits)
{
    mlp s;
    mlp_load(&s);
    nb_plan *p = mlp_plan(&s);
    snap first = run_at(p, &s, 8);
    for (int64_t n = 9; n <= 24; n++) bind(p, n);  /* far more sizes than the plan caches */
    snap again = run_at(p, &s, 8);
    cr_assert_eq(first.bytes, again.bytes);
    cr_expect(!memcmp(first.data, again.data, first.bytes), "N = 8 gave other bits after eviction");
    free(first.data);
    free(again.data);
    nb_plan_free(p);
    nb_model_free(s.m);
}

Test(plan_memory, a_smaller_binding_reuses_the_arena)
{
    mlp s;
    mlp_load(&s);
    nb_plan *p = mlp_plan(&s);
    bind(p, 100);
    size_t held = nb_plan_memory_bytes(p);
    bind(p, 10);
    size_t small = nb_plan_arena_bytes(p);
    cr_expect_lt(nb_plan_memory_bytes(p) - held, small,
                 "binding N = 10 after N = 100 added %zu bytes, more than an arena of %zu",
                 nb_plan_memory_bytes(p) - held, small);
    feed(p, &s, 10);
    plan_run_ok(p);
    /* both layouts are cached now: switching between them allocates nothing */
    uint64_t before = nb_alloc_count();
    for (int i = 0; i < 3; i++) {
        bind(p, 100);
        feed(p, &s, 100);  /* feed() allocates its data with malloc, not nb_malloc */
        plan_run_ok(p);
        bind(p, 10);
        feed(p, &s, 10);
        plan_run_ok(p);
    }
    cr_expect_eq(nb_alloc_count(), before, "rebinding cached sizes allocated %llu times",
                 (unsigned long long)(nb_alloc_count() - before));
    nb_plan_free(p);
    nb_model_free(s.m);
}

Test(plan_memory, outputs_are_right_after_the_arena_grows)
{
    mlp s;
    mlp_load(&s);
    nb_plan *p = mlp_plan(&s);
    snap a = run_at(p, &s, 10);
    expect_fresh(&s, 10, a, "first");
    size_t arena10 = nb_plan_memory_bytes(p);
    snap b = run_at(p, &s, 100);
    cr_expect_gt(nb_plan_memory_bytes(p), arena10, "N = 100 needs a larger arena than N = 10");
    expect_fresh(&s, 100, b, "after growing the arena");
    snap c = run_at(p, &s, 10);  /* a cached layout whose arena has moved */
    expect_fresh(&s, 10, c, "again, in the grown arena");
    free(a.data);
    free(b.data);
    free(c.data);
    nb_plan_free(p);
    nb_model_free(s.m);
}

/* The widest live set, by hand: x (an input, live throughout), a = exp(x) and
 * c = a * b (outputs, live to the end), b = tanh(x) (dead after c, so c can be
 * written over it): three buffers of 1 KiB at c's step. */
Test(plan_memory, the_widest_live_set_by_hand)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 1, (nb_dim[]){NB_DIM(256)});
    nb_node *a = nb_exp(g, x), *c = nb_mul(g, a, nb_tanh(g, x));
    nb_plan *p = plan_new_ok(g, (nb_node *[]){a, c}, 2);
    plan_bind_ok(p, NULL, 0);
    cr_expect_eq(nb_plan_live_bytes(p), 3 * 1024);
    cr_expect_eq(nb_plan_arena_bytes(p), 3 * 1024);
    nb_plan_free(p);
    nb_graph_free(g);
}

/* No arena is smaller than the widest live set (workspaces count as live),
 * and on the textbook models' training graphs the planner packs the buffers
 * into exactly that much (issue 10 asks for no more than the widest live set
 * plus scratch). */
Test(plan_memory, the_arena_is_the_widest_live_set_on_the_textbook_models)
{
    const char *models[] = {"mnist_mlp.yaml", "simple_convnet.yaml", "deep_convnet.yaml"};
    for (int i = 0; i < 3; i++) {
        nb_model *m = load_example(models[i]);
        nb_node *outs[32];
        outs[0] = nb_model_loss(m);
        int n = model_grads(m, true, false, outs + 1, 31);
        cr_assert_gt(n, 0);
        nb_plan *p = plan_new_ok(nb_model_graph(m), outs, n + 1);
        bind(p, 100);
        size_t arena = nb_plan_arena_bytes(p), live = nb_plan_live_bytes(p);
        cr_expect_gt(live, 100 * 784 * sizeof(float), "%s: the input alone is live throughout", models[i]);
        cr_expect_eq(arena, live, "%s: arena %zu bytes, widest live set %zu", models[i], arena, live);
        nb_plan_free(p);
        nb_model_free(m);
    }
}

/* What core.h promises about threads, run: two plans of one graph running at
 * the same time on two threads, and distinct graphs built and run on distinct
 * threads, give bit for bit what one thread gives.
 *
 * Criterion's asserts must not run on other threads: the workers only count
 * mismatches and failures, the test thread asserts after joining them. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#define N 16
#define IN 12
#define HIDDEN 32
#define CLASSES 5
#define RUNS 1000

/* x [N, 12] -> dense 32, [batchnorm,] relu, dropout 0.3 -> dense 5 -> softmax
 * cross-entropy against t. Without batchnorm, gamma and beta scale and shift. */
typedef struct mlp {
    nb_graph *g;
    nb_node *x, *t, *loss, *logits;
    nb_node *params[6], *grads[6];
} mlp;

/* NULL graph on failure (no assert: may run on a worker thread). */
static mlp build(bool batchnorm)
{
    mlp m = {.g = nb_graph_new()};
    nb_graph *g = m.g;
    if (!g) return m;
    m.x = nb_input(g, "x", NB_F32, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(IN)});
    m.t = nb_input(g, "t", NB_I32, 1, (nb_dim[]){NB_SYM("N")});
    nb_node *h = dense_layer(g, m.x, "l1", IN, HIDDEN, NB_F32, 11, &m.params[0], &m.params[1]);
    m.params[2] = nb_param(g, "gamma", NB_F32, 1, (int64_t[]){HIDDEN}, NB_INIT(NB_INIT_ONES));
    m.params[3] = nb_param(g, "beta", NB_F32, 1, (int64_t[]){HIDDEN}, NB_INIT(NB_INIT_ZEROS));
    h = batchnorm ? nb_batchnorm(g, h, m.params[2], m.params[3], 1e-5, 0.1)
                  : nb_add(g, nb_mul(g, h, m.params[2]), m.params[3]);
    h = nb_dropout(g, nb_relu(g, h), 0.3);
    m.logits = dense_layer(g, h, "l2", HIDDEN, CLASSES, NB_F32, 11, &m.params[4], &m.params[5]);
    m.loss = nb_softmax_cross_entropy(g, m.logits, m.t);
    if (nb_grad(g, m.loss, m.params, 6, m.grads)) {
        nb_graph_free(g);
        m.g = NULL;
    }
    return m;
}

/* Inputs of run `seed`: the same numbers for every thread that asks. */
static void inputs(uint64_t seed, float *x, int32_t *t)
{
    nb_rng r;
    nb_rng_seed(&r, seed);
    for (int i = 0; i < N * IN; i++) x[i] = (float)(2 * nb_rng_uniform(&r) - 1);
    for (int i = 0; i < N; i++) t[i] = (int32_t)(nb_rng_next(&r) % CLASSES);
}

/* One plan of the graph: its outputs, how it runs, and the bytes of every
 * output after each of the RUNS runs (run k is fed inputs(k)). */
typedef struct job {
    const mlp *m;
    nb_node *out[8];
    int n_out;
    size_t bytes[8];
    nb_plan *plan;
    unsigned char *want;   /* RUNS runs x all outputs, from one thread */
    pthread_barrier_t *start;   /* both threads begin together */
    int mismatches, failures;
} job;

static size_t total_bytes(const job *j)
{
    size_t n = 0;
    for (int i = 0; i < j->n_out; i++) n += j->bytes[i];
    return n;
}

/* Runs the plan on inputs(k) and copies its outputs to dst; false on failure. */
static bool run_once(job *j, uint64_t k, unsigned char *dst)
{
    float x[N * IN];
    int32_t t[N];
    inputs(k, x, t);
    nb_plan_set_seed(j->plan, 100 + k);   /* dropout masks of run k, whatever ran before */
    if (nb_plan_set(j->plan, j->m->x, x) || nb_plan_set(j->plan, j->m->t, t) ||
        nb_plan_run(j->plan))
        return false;
    for (int i = 0; i < j->n_out; i++) {
        memcpy(dst, nb_plan_get(j->plan, j->out[i]), j->bytes[i]);
        dst += j->bytes[i];
    }
    return true;
}

static void *run_all(void *arg)
{
    job *j = arg;
    pthread_barrier_wait(j->start);
    unsigned char *got = malloc(total_bytes(j));
    if (!got) {
        j->failures++;
        return NULL;
    }
    for (uint64_t k = 0; k < RUNS; k++) {
        if (!run_once(j, k, got)) {
            j->failures++;
            continue;
        }
        if (memcmp(got, j->want + k * total_bytes(j), total_bytes(j))) j->mismatches++;
    }
    free(got);
    return NULL;
}

static void make_plan(job *j, bool training)
{
    j->plan = plan_new_ok(j->m->g, j->out, j->n_out);
    plan_bind_ok(j->plan, (nb_bind[]){{"N", N}}, 1);
    nb_plan_set_training(j->plan, training);
    for (int i = 0; i < j->n_out; i++) j->bytes[i] = plan_bytes(j->plan, j->out[i]);
    /* the expected bytes, from this thread alone */
    j->want = malloc(RUNS * total_bytes(j));
    cr_assert_not_null(j->want);
    for (uint64_t k = 0; k < RUNS; k++)
        cr_assert(run_once(j, k, j->want + k * total_bytes(j)), "%s", nb_plan_error(j->plan));
}

/* Plans A (loss and gradients) and B (logits and loss) of one graph, each on
 * its own thread, at the same time. */
static void two_plans(bool batchnorm, bool a_trains)
{
    mlp m = build(batchnorm);
    cr_assert_not_null(m.g);
    job a = {.m = &m, .out = {m.loss, m.grads[0], m.grads[1], m.grads[2], m.grads[3], m.grads[4],
                              m.grads[5]},
             .n_out = 7};
    job b = {.m = &m, .out = {m.logits, m.loss}, .n_out = 2};
    make_plan(&a, a_trains);
    make_plan(&b, false);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    a.start = b.start = &start;
    pthread_t ta, tb;
    cr_assert_eq(pthread_create(&ta, NULL, run_all, &a), 0);
    cr_assert_eq(pthread_create(&tb, NULL, run_all, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&start);
    cr_expect_eq(a.failures + b.failures, 0, "runs failed: %d, %d", a.failures, b.failures);
    cr_expect_eq(a.mismatches, 0, "plan A differs from its single-threaded runs in %d of %d runs",
                 a.mismatches, RUNS);
    cr_expect_eq(b.mismatches, 0, "plan B differs from its single-threaded runs in %d of %d runs",
                 b.mismatches, RUNS);
    free(a.want);
    free(b.want);
    nb_plan_free(a.plan);
    nb_plan_free(b.plan);
    nb_graph_free(m.g);
}

/* A trains (dropout drops with its own masks) while B evaluates: safe, since
 * no op of this graph writes a param. */
Test(threads, two_plans_of_one_graph)
{
    two_plans(false, true);
}

/* With batchnorm both plans evaluate: its running statistics are only read
 * (a training run would write them, so it must not overlap another run). */
Test(threads, two_plans_of_one_graph_eval)
{
    two_plans(true, false);
}

/* Distinct graphs on distinct threads: each thread builds its own graph and
 * trains it (dropout drops, batchnorm updates its running statistics, an SGD
 * step writes the params) while the other does the same. */
typedef struct trainer {
    float losses[RUNS];
    int failures;
} trainer;

static void *train(void *arg)
{
    trainer *tr = arg;
    mlp m = build(true);
    nb_plan *p = NULL;
    if (!m.g || nb_plan_new(m.g, (nb_node *[]){m.loss, m.grads[0], m.grads[1], m.grads[2],
                                               m.grads[3], m.grads[4], m.grads[5]},
                            7, &p)) {
        tr->failures++;
        nb_graph_free(m.g);
        return NULL;
    }
    nb_plan_set_training(p, true);
    nb_plan_set_seed(p, 3);
    float x[N * IN];
    int32_t t[N];
    for (uint64_t k = 0; k < RUNS; k++) {
        inputs(k % 8, x, t);
        if (nb_plan_bind(p, (nb_bind[]){{"N", N}}, 1) || nb_plan_set(p, m.x, x) ||
            nb_plan_set(p, m.t, t) || nb_plan_run(p)) {
            tr->failures++;
            break;
        }
        tr->losses[k] = *(const float *)nb_plan_get(p, m.loss);
        sgd_step_f32(p, m.params, m.grads, 6, 0.1f);
    }
    nb_plan_free(p);
    nb_graph_free(m.g);
    return NULL;
}

Test(threads, distinct_graphs_train_at_once)
{
    static trainer alone, t1, t2;
    train(&alone);
    cr_assert_eq(alone.failures, 0);
    cr_assert_lt(alone.losses[RUNS - 1], alone.losses[0], "training lowers the loss");
    pthread_t a, b;
    cr_assert_eq(pthread_create(&a, NULL, train, &t1), 0);
    cr_assert_eq(pthread_create(&b, NULL, train, &t2), 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    cr_expect_eq(t1.failures + t2.failures, 0);
    cr_expect(!memcmp(t1.losses, alone.losses, sizeof alone.losses),
              "thread 1's losses differ from a single thread's");
    cr_expect(!memcmp(t2.losses, alone.losses, sizeof alone.losses),
              "thread 2's losses differ from a single thread's");
}

/* Data parallelism without MPI (nb_trainer_shard, train.h): two workers on
 * two threads, their sums and gradient averages done in shared memory, end
 * an epoch whose last batch does not split evenly with the weights and
 * metrics of one trainer on the whole batches; and the arguments a shard
 * refuses. (tests/mpi.sh does the same over MPI when built with it.) */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/"

/* tanh, not relu: the sums of a half batch round differently from the
 * whole batch's, and a relu input within rounding of 0 would switch a
 * sample's gradient on or off (seen here on Fashion-MNIST); Adam would make
 * last-bit noise in a near-zero gradient a full step. Momentum and tanh keep
 * the difference at rounding size. */
static const char *const MLP =
    "nabla: 1\n"
    "seed: 7\n"
    "inputs:\n"
    "  x: [N, 784]\n"
    "  t: {shape: [N], dtype: i32}\n"
    "nodes:\n"
    "  - {name: h, layer: dense, in: [x], units: 32, activation: tanh}\n"
    "  - {name: y, layer: dense, in: [h], units: 10}\n"
    "  - {name: loss, op: softmax_cross_entropy, in: [y, t]}\n"
    "outputs: [y]\n"
    "loss: loss\n";

/* Two workers meeting at a barrier: each publishes its values, both add
 * them in the same order (so both get the same bits), then both copy. */
typedef struct comm {
    pthread_barrier_t bar;
    const void *slot[2];
} comm;

typedef struct worker {
    comm *c;
    int rank;
    nb_model *m;
    nb_trainer *t;
    nb_dataset *train, *test;
    nb_metrics tr, te;
    nb_status st;
} worker;

static void allreduce(worker *w, void *v, size_t n, bool f32)
{
    size_t size = f32 ? sizeof(float) : sizeof(double);
    void *sum = malloc(n * size + 1);
    w->c->slot[w->rank] = v;
    pthread_barrier_wait(&w->c->bar);
    for (size_t i = 0; i < n; i++) {
        if (f32)
            ((float *)sum)[i] = ((const float *)w->c->slot[0])[i] + ((const float *)w->c->slot[1])[i];
        else
            ((double *)sum)[i] = ((const double *)w->c->slot[0])[i] + ((const double *)w->c->slot[1])[i];
    }
    pthread_barrier_wait(&w->c->bar);  /* both have read both */
    memcpy(v, sum, n * size);
    free(sum);
}

static nb_status sum(void *user, double *v, size_t n)
{
    allreduce(user, v, n, false);
    return NB_OK;
}

static nb_status average(void *user, void *grads, size_t n, nb_dtype dt)
{
    worker *w = user;
    size_t mine, all, k;
    nb_trainer_step_samples(w->t, &mine, &all);
    float *g = grads;
    for (size_t i = 0; i < n; i++) g[i] = (float)((double)g[i] * (double)mine / (double)all);
    allreduce(w, grads, n, dt == NB_F32);
    double *s = nb_trainer_step_sums(w->t, &k);
    allreduce(w, s, k, false);
    return NB_OK;
}

/* 701 training samples (10 batches of 64 and one of 61: 31 + 30) and 301 test ones. */
static void make(worker *w)
{
    nb_diags d = {0};
    nb_dataset *all;
    cr_assert_eq(nb_model_load_string(MLP, strlen(MLP), NULL, NULL, &w->m, &d), NB_OK);
    nb_graph *g = nb_model_graph(w->m);
    nb_trainer_cfg c = {.loss = nb_model_loss(w->m), .optim = nb_optim_defaults(NB_MOMENTUM), .batch = 64,
                        .shuffle = true, .seed = 3, .scores = nb_graph_find(g, "y"),
                        .labels = nb_graph_find(g, "t")};
    cr_assert_eq(nb_trainer_new(g, &c, &w->t), NB_OK, "%s", nb_graph_error(g));
    cr_assert_eq(nb_trainer_feed(w->t, nb_graph_find(g, "x"), "images", 1.0 / 255), NB_OK);
    cr_assert_eq(nb_trainer_feed(w->t, nb_graph_find(g, "t"), "labels", 1), NB_OK);
    cr_assert_eq(nb_dataset_load_idx(FMNIST "t10k-images-idx3-ubyte.gz", FMNIST "t10k-labels-idx1-ubyte.gz",
                                     &all), NB_OK, "%s", nb_last_error());
    cr_assert_eq(nb_dataset_split(all, 0.10025, &w->train), NB_OK);
    cr_assert_eq(nb_dataset_split(w->train, 301.5 / 1002, &w->test), NB_OK);
    nb_dataset_free(all);
    cr_assert_eq(nb_dataset_size(w->train), 701);
    cr_assert_eq(nb_dataset_size(w->test), 301);
}

static void drop(worker *w)
{
    nb_trainer_free(w->t);
    nb_dataset_free(w->train);
    nb_dataset_free(w->test);
    nb_model_free(w->m);
}

static void *run(void *arg)
{
    worker *w = arg;
    w->st = nb_trainer_epoch(w->t, w->train, NULL, NULL, &w->tr);
    if (!w->st) w->st = nb_trainer_evaluate(w->t, w->test, &w->te, NULL);
    return NULL;
}

Test(shard, two_workers_train_as_one)
{
    worker one = {0}, two[2] = {0};
    comm c;
    pthread_barrier_init(&c.bar, NULL, 2);
    make(&one);
    run(&one);
    cr_assert_eq(one.st, NB_OK, "%s", nb_trainer_error(one.t));
    pthread_t th[2];
    for (int r = 0; r < 2; r++) {
        two[r] = (worker){.c = &c, .rank = r};
        make(&two[r]);
        cr_assert_eq(nb_trainer_shard(two[r].t, r, 2, sum, &two[r]), NB_OK, "%s", nb_trainer_error(two[r].t));
        cr_assert_eq(nb_trainer_hook(two[r].t, average, &two[r]), NB_OK);
    }
    for (int r = 0; r < 2; r++) pthread_create(&th[r], NULL, run, &two[r]);
    for (int r = 0; r < 2; r++) pthread_join(th[r], NULL);
    for (int r = 0; r < 2; r++) {
        cr_assert_eq(two[r].st, NB_OK, "%s", nb_trainer_error(two[r].t));
        /* the metrics are the global ones */
        cr_expect_eq(two[r].tr.samples, 701);
        cr_expect_eq(two[r].tr.correct, one.tr.correct);
        cr_expect(fabs(two[r].tr.loss - one.tr.loss) < 1e-5, "%g vs %g", two[r].tr.loss, one.tr.loss);
        cr_expect_eq(two[r].te.correct, one.te.correct, "the sharded evaluation");
        cr_expect(fabs(two[r].te.loss - one.te.loss) < 1e-5, "%g vs %g", two[r].te.loss, one.te.loss);
    }
    nb_graph *g1 = nb_model_graph(one.m);
    double worst = 0;
    for (size_t i = 0; i < nb_graph_num_nodes(g1); i++) {
        nb_node *p = nb_graph_node(g1, i);
        if (nb_node_kind_of(p) != NB_NODE_PARAM || !nb_param_trainable(p)) continue;
        const nb_tensor *a = nb_param_value(p);
        for (int r = 0; r < 2; r++) {
            const nb_tensor *b = nb_param_value(nb_graph_node(nb_model_graph(two[r].m), i));
            double num = 0, den = 0;
            for (size_t j = 0; j < nb_tensor_numel(a); j++) {
                num = fmax(num, fabs(((float *)a->data)[j] - ((float *)b->data)[j]));
                den = fmax(den, fabs(((float *)a->data)[j]));
            }
            worst = fmax(worst, num / den);
        }
    }
    cr_expect(worst < 1e-5 && worst > 0, "largest relative difference %g (0: not sharded?)", worst);
    drop(&one);
    drop(&two[0]);
    drop(&two[1]);
    pthread_barrier_destroy(&c.bar);
}

Test(shard, refuses_what_cannot_be_sharded)
{
    worker w = {0};
    make(&w);
    cr_expect_eq(nb_trainer_shard(w.t, 0, 3, sum, &w), NB_ERR_ARG);
    cr_expect(strstr(nb_trainer_error(w.t), "does not divide among 3 workers; use a multiple of 3"), "%s",
              nb_trainer_error(w.t));
    cr_expect_eq(nb_trainer_shard(w.t, 2, 2, sum, &w), NB_ERR_ARG);
    cr_expect_eq(nb_trainer_shard(w.t, 0, 2, NULL, NULL), NB_ERR_ARG, "two workers need a sum");
    cr_expect_eq(nb_trainer_shard(w.t, 0, 0, sum, &w), NB_ERR_ARG);
    cr_expect_eq(nb_trainer_shard(w.t, 0, 1, NULL, NULL), NB_OK, "one worker: no sharding");
    cr_expect_eq(nb_trainer_graph(w.t), nb_model_graph(w.m));
    /* unsharded, the step's samples are the batch's: the last of 701 is 61 */
    cr_assert_eq(nb_trainer_epoch(w.t, w.train, NULL, NULL, NULL), NB_OK);
    size_t mine, all;
    nb_trainer_step_samples(w.t, &mine, &all);
    cr_expect(mine == 61 && all == 61, "%zu of %zu", mine, all);
    drop(&w);
}

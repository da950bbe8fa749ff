/* The C API of nabla/mpi.h, run by tests/mpi.sh under mpirun -n 2:
 *   mpi_api DIR        (DIR/x.npy [N, 20] f64, DIR/t.npy [N] i32, as mpi_helper makes)
 * On a model with batchnorm (and no dropout), one epoch of global batch 64:
 *  - every rank ends with the same trainable params, bit for bit (the same
 *    averaged gradients and updates everywhere), and the same metrics;
 *  - with NB_MPI_SYNC_BN the running statistics are the same on every rank
 *    too; without it each rank keeps its own, and they differ;
 *  - nb_mpi_step_bytes counts the gradients (and the statistics), and
 *    nb_mpi_seconds the steps;
 *  - the gradients reduced in buckets of 7 values give the same bits;
 *  - a batch that does not divide among the ranks fails with a message.
 * Rank 0 prints one line per check; the exit status is the number of failures. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nabla/mpi.h>
#include <nabla/nabla.h>

static const char MODEL[] =
    "nabla: 1\n"
    "seed: 3\n"
    "dtype: f64\n"
    "inputs: {x: [N, 20], t: {shape: [N], dtype: i32}}\n"
    "nodes:\n"
    "  - {name: h, layer: dense, in: [x], units: 16}\n"
    "  - {name: bn, layer: batchnorm, in: [h]}\n"
    "  - {name: a, op: relu, in: [bn]}\n"
    "  - {name: y, layer: dense, in: [a], units: 4}\n"
    "  - {name: loss, op: softmax_cross_entropy, in: [y, t]}\n"
    "outputs: [y]\n"
    "loss: loss\n";

static int rank, failures;

static void expect(bool ok, const char *what)
{
    failures += !ok;
    if (rank == 0) printf("%s: %s\n", ok ? "ok" : "FAIL", what);
}

/* Do the n doubles at v hold the same bits on every rank? */
static bool same_everywhere(const double *v, size_t n)
{
    double *r0 = malloc(n * sizeof *r0);
    memcpy(r0, v, n * sizeof *r0);
    MPI_Bcast(r0, (int)n, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    int same = !memcmp(r0, v, n * sizeof *r0), all;
    MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    free(r0);
    return all;
}

typedef struct run {
    nb_model *m;
    nb_trainer *t;
    nb_mpi *mp;
    nb_metrics metrics;
} run;

static nb_status start(run *r, int64_t batch, unsigned flags)
{
    nb_diags d = {0};
    if (nb_model_load_string(MODEL, sizeof MODEL - 1, NULL, NULL, &r->m, &d)) return NB_ERR_FORMAT;
    nb_graph *g = nb_model_graph(r->m);
    nb_trainer_cfg c = {.loss = nb_model_loss(r->m), .optim = nb_optim_defaults(NB_ADAM),
                        .batch = batch, .shuffle = true, .seed = 11,
                        .scores = nb_graph_find(g, "y"), .labels = nb_graph_find(g, "t")};
    nb_status st = nb_trainer_new(g, &c, &r->t);
    if (!st) st = nb_trainer_feed(r->t, nb_graph_find(g, "x"), "x", 1);
    if (!st) st = nb_trainer_feed(r->t, nb_graph_find(g, "t"), "t", 1);
    if (!st) st = nb_mpi_attach(r->t, MPI_COMM_WORLD, flags, &r->mp);
    return st;
}

static void stop(run *r)
{
    nb_mpi_free(r->mp);
    nb_trainer_free(r->t);
    nb_model_free(r->m);
}

/* The values of the trainable params, or of the running statistics, into
 * v (cap values); returns how many. */
static size_t gather(nb_graph *g, bool trainable, double *v, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < nb_graph_num_nodes(g); i++) {
        nb_node *p = nb_graph_node(g, i);
        if (nb_node_kind_of(p) != NB_NODE_PARAM || nb_param_trainable(p) != trainable) continue;
        if (!trainable && !strstr(nb_node_name(p), ".running_")) continue;
        nb_tensor *t = nb_param_value(p);
        for (size_t j = 0; j < nb_tensor_numel(t) && k < cap; j++) v[k++] = ((double *)t->data)[j];
    }
    return k;
}

/* One epoch with the gradients reduced 7 values per MPI_Allreduce: the same
 * params, bit for bit, as with one call (want: those values). */
static void bucketed(nb_dataset *data, const double *want, size_t n)
{
    run r = {0};
    static double v[100000];
    nb_status st = start(&r, 64, 0);
    expect(!st && nb_mpi_set_bucket(r.mp, 0) == NB_ERR_ARG && nb_mpi_set_bucket(r.mp, 7) == NB_OK,
           "nb_mpi_set_bucket: 0 refused, 7 taken");
    if (!st) st = nb_trainer_epoch(r.t, data, NULL, NULL, &r.metrics);
    size_t k = st ? 0 : gather(nb_model_graph(r.m), true, v, 100000);
    expect(k == n && !memcmp(v, want, n * sizeof *v), "buckets of 7 values: the same params, bit for bit");
    stop(&r);
}

static void train_and_compare(nb_dataset *data, unsigned flags)
{
    run r = {0};
    bool sync = flags & NB_MPI_SYNC_BN;
    const char *mode = sync ? "with NB_MPI_SYNC_BN" : "without NB_MPI_SYNC_BN";
    char what[200];
    nb_status st = start(&r, 64, flags);
    if (!st) st = nb_trainer_epoch(r.t, data, NULL, NULL, &r.metrics);
    snprintf(what, sizeof what, "an epoch on 2 ranks %s%s%s", mode, st ? ": " : "", st ? nb_trainer_error(r.t) : "");
    expect(!st, what);
    if (st) MPI_Abort(MPI_COMM_WORLD, 2);
    static double v[100000];
    nb_graph *g = nb_model_graph(r.m);
    size_t n = gather(g, true, v, 100000);
    snprintf(what, sizeof what, "%s: the %zu trainable values are the same on every rank", mode, n);
    expect(n > 0 && same_everywhere(v, n), what);
    double mt[3] = {r.metrics.loss, r.metrics.accuracy, (double)r.metrics.samples};
    snprintf(what, sizeof what, "%s: so are the epoch's metrics (loss %.4f over %zu samples)", mode,
             r.metrics.loss, r.metrics.samples);
    expect(same_everywhere(mt, 3), what);
    size_t s = gather(g, false, v, 100000);
    snprintf(what, sizeof what, "%s: the %zu running statistics are %s on every rank", mode, s,
             sync ? "the same" : "not the same");
    expect(s == 32 && same_everywhere(v, s) == sync, what);
    /* f64: the gradients, the statistics with NB_MPI_SYNC_BN, the 2 step sums */
    size_t want = 8 * (20 * 16 + 16 + 16 + 16 + 16 * 4 + 4) + (sync ? 8 * s : 0) + 8 * 2;
    snprintf(what, sizeof what, "%s: nb_mpi_step_bytes %zu (want %zu)", mode, nb_mpi_step_bytes(r.mp), want);
    expect(nb_mpi_step_bytes(r.mp) == want, what);
    size_t steps;
    double secs = nb_mpi_seconds(r.mp, &steps);
    snprintf(what, sizeof what, "%s: nb_mpi_seconds: %zu steps (want 20), %.3g s", mode, steps, secs);
    expect(steps == 20 && secs > 0, what);
    if (!sync) bucketed(data, v, gather(g, true, v, 100000));
    stop(&r);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (argc != 2) return fprintf(stderr, "usage: mpi_api DIR\n"), MPI_Abort(MPI_COMM_WORLD, 2), 2;
    char x[4096], t[4096];
    snprintf(x, sizeof x, "%s/x.npy", argv[1]);
    snprintf(t, sizeof t, "%s/t.npy", argv[1]);
    nb_dataset *data;
    if (nb_dataset_load_npy((const char *[]){"x", "t"}, (const char *[]){x, t}, 2, &data)) {
        fprintf(stderr, "mpi_api: %s\n", nb_last_error());
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    run r = {0};
    nb_status st = start(&r, 63, 0);
    expect(st == NB_ERR_ARG && !r.mp && strstr(nb_trainer_error(r.t), "use a multiple of 2"),
           "a batch of 63 on 2 ranks: NB_ERR_ARG, 'use a multiple of 2'");
    stop(&r);
    train_and_compare(data, NB_MPI_SYNC_BN);
    train_and_compare(data, 0);
    nb_dataset_free(data);
    MPI_Finalize();
    return failures;
}

/* Data-parallel training over MPI (nabla/mpi.h): the trainer's sharding
 * (nb_trainer_shard) with sums over a communicator, and a gradient hook that
 * averages the flat gradient buffer over the ranks.
 *
 * Why the weights: each rank's loss is the mean over its own samples, so its
 * gradient is (1/m_r) sum of its samples' gradients. The gradient of one
 * process on the whole batch of M samples is (1/M) sum over all of them =
 * sum over ranks of (m_r/M) x rank r's gradient: each rank scales its buffer
 * by m_r/M and the allreduce sums. With equal shards the scale is 1/N.
 *
 * One MPI_Allreduce per step (or one per bucket when larger) carries one
 * packed buffer, in the gradients' dtype, made at attach time: the weighted
 * gradients, then (NB_MPI_SYNC_BN) the weighted running statistics, then the
 * trainer's step sums (loss, correct; not weighted). Packing costs a copy of
 * the gradients, far less than a second collective, which waits for the
 * slowest rank again. Nothing is allocated during a step.
 *
 * No overlap with the backward pass: the plan gathers every gradient into
 * the flat buffer (opt.grads) before the hook runs, so the allreduce starts
 * once the backward pass is over. This file uses only the public API: it is
 * built into its own library, libnabla-mpi. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/graph.h"
#include "nabla/mpi.h"

/* Values per MPI_Allreduce call by default: keeps each count within an int,
 * and lets a large buffer travel in pieces (nb_mpi_set_bucket). */
#define BUCKET ((size_t)1 << 22)

struct nb_mpi {
    nb_trainer *t;
    MPI_Comm comm;        /* a duplicate: our collectives never meet the caller's */
    int rank, size;
    unsigned flags;
    bool checked;         /* the first step's agreement check is done */
    size_t bucket;        /* values per MPI_Allreduce call */
    size_t bytes;         /* of the last step's reductions */
    double seconds;       /* in the hook's reductions, waiting included */
    size_t steps;         /* hooks run */
    nb_tensor **stats;    /* batchnorm running statistics (NB_MPI_SYNC_BN) */
    size_t n_stats, stat_values;
    void *pack;           /* what one step reduces, pack_cap values of the gradients' dtype */
    size_t pack_cap;
    char err[256];
};

int nb_mpi_rank(const nb_mpi *m) { return m ? m->rank : 0; }
int nb_mpi_size(const nb_mpi *m) { return m ? m->size : 1; }
size_t nb_mpi_step_bytes(const nb_mpi *m) { return m ? m->bytes : 0; }

double nb_mpi_seconds(const nb_mpi *m, size_t *steps)
{
    if (steps) *steps = m ? m->steps : 0;
    return m ? m->seconds : 0;
}
const char *nb_mpi_error(const nb_mpi *m) { return m ? m->err : "no nb_mpi"; }

nb_status nb_mpi_set_bucket(nb_mpi *m, size_t values)
{
    if (!m || values < 1 || values > (size_t)1 << 30) return NB_ERR_ARG;
    m->bucket = values;
    return NB_OK;
}

static nb_status fail(nb_mpi *m, const char *what, int rc)
{
    char s[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, s, &len);
    snprintf(m->err, sizeof m->err, "%s failed on rank %d of %d: %s", what, m->rank, m->size, s);
    return NB_ERR_RUNTIME;
}

/* Sums buf[0..n) over the ranks in place, BUCKET values per call. */
static nb_status allreduce(nb_mpi *m, void *buf, size_t n, MPI_Datatype type, size_t elem)
{
    char *p = buf;
    for (size_t done = 0; done < n; done += m->bucket) {
        size_t k = n - done < m->bucket ? n - done : m->bucket;
        int rc = MPI_Allreduce(MPI_IN_PLACE, p + done * elem, (int)k, type, MPI_SUM, m->comm);
        if (rc != MPI_SUCCESS) return fail(m, "MPI_Allreduce", rc);
    }
    return NB_OK;
}

/* The trainer's nb_sum_fn: metrics, the stop flag, evaluation sums. */
static nb_status sum_doubles(void *user, double *v, size_t n)
{
    return allreduce(user, v, n, MPI_DOUBLE, sizeof *v);
}

/* Before the first reduction: every rank must bring as many gradient values
 * and count the same samples in the step, or the sums would mix unrelated
 * values. All ranks see the same maxima, so all fail together. */
static nb_status check_agreement(nb_mpi *m, size_t n, size_t all)
{
    long long v[4] = {(long long)n, (long long)all, -(long long)n, -(long long)all};
    int rc = MPI_Allreduce(MPI_IN_PLACE, v, 4, MPI_LONG_LONG, MPI_MAX, m->comm);
    if (rc != MPI_SUCCESS) return fail(m, "MPI_Allreduce", rc);
    if (v[0] != -v[2] || v[1] != -v[3]) {
        snprintf(m->err, sizeof m->err, "the ranks do not train the same thing: gradient values "
                 "per step from %lld to %lld, samples per step from %lld to %lld (same model, "
                 "data and --batch on every rank?)", -v[2], v[0], -v[3], v[1]);
        return NB_ERR_RUNTIME;
    }
    m->checked = true;
    return NB_OK;
}

/* value i of x (f32 or f64) as a double, and back */
static double get(const void *x, nb_dtype dt, size_t i)
{
    return dt == NB_F32 ? (double)((const float *)x)[i] : ((const double *)x)[i];
}

static void put(void *x, nb_dtype dt, size_t i, double v)
{
    if (dt == NB_F32) ((float *)x)[i] = (float)v;
    else ((double *)x)[i] = v;
}

/* Fills the pack: gradients x w, running statistics x w (they moved towards
 * this step's batch statistics in the forward pass), then the step sums.
 * Returns the values packed. */
static size_t pack(nb_mpi *m, const void *grads, size_t n, nb_dtype dt, double w, const double *sums, size_t k)
{
    if (dt == NB_F32) {
        const float *g = grads;
        float *p = m->pack;
        for (size_t i = 0; i < n; i++) p[i] = (float)((double)g[i] * w);
    } else {
        const double *g = grads;
        double *p = m->pack;
        for (size_t i = 0; i < n; i++) p[i] = g[i] * w;
    }
    size_t at = n;
    for (size_t i = 0; i < m->n_stats; i++) {
        const nb_tensor *t = m->stats[i];
        for (size_t j = 0; j < nb_tensor_numel(t); j++) put(m->pack, dt, at++, w * get(t->data, t->dtype, j));
    }
    for (size_t j = 0; j < k; j++) put(m->pack, dt, at++, sums[j]);
    return at;
}

/* The pack's sums back where they came from. */
static void unpack(nb_mpi *m, void *grads, size_t n, nb_dtype dt, double *sums, size_t k)
{
    memcpy(grads, m->pack, n * (dt == NB_F32 ? sizeof(float) : sizeof(double)));
    size_t at = n;
    for (size_t i = 0; i < m->n_stats; i++) {
        nb_tensor *t = m->stats[i];
        for (size_t j = 0; j < nb_tensor_numel(t); j++) put(t->data, t->dtype, j, get(m->pack, dt, at++));
    }
    for (size_t j = 0; j < k; j++) sums[j] = get(m->pack, dt, at++);
}

/* The gradient hook: grads <- sum over ranks of (m_r / M) grads_r, with the
 * statistics and the trainer's step sums in the same allreduce. */
static nb_status average(void *user, void *grads, size_t n, nb_dtype dt)
{
    nb_mpi *m = user;
    size_t mine, all, k;
    nb_trainer_step_samples(m->t, &mine, &all);
    double *sums = nb_trainer_step_sums(m->t, &k), start = MPI_Wtime();
    m->err[0] = 0;
    if (n + m->stat_values + k > m->pack_cap) {
        snprintf(m->err, sizeof m->err, "%zu gradient values, more than the %zu of opt.grads when "
                 "attached", n, m->pack_cap - m->stat_values - k);
        return NB_ERR_RUNTIME;
    }
    nb_status st = m->checked ? NB_OK : check_agreement(m, n, all);
    if (st) return st;
    size_t elem = dt == NB_F32 ? sizeof(float) : sizeof(double);
    size_t total = pack(m, grads, n, dt, all ? (double)mine / (double)all : 0, sums, k);
    st = allreduce(m, m->pack, total, dt == NB_F32 ? MPI_FLOAT : MPI_DOUBLE, elem);
    if (!st) unpack(m, grads, n, dt, sums, k);
    m->bytes = total * elem;
    m->seconds += MPI_Wtime() - start;
    m->steps++;
    return st;
}

/* The running statistics of every batchnorm node: its inputs 3 and 4. */
static nb_status find_stats(nb_mpi *m, nb_graph *g)
{
    size_t n = nb_graph_num_nodes(g);
    m->stats = calloc(2 * n + 1, sizeof *m->stats);
    if (!m->stats) return NB_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        nb_node *bn = nb_graph_node(g, i);
        if (strcmp(nb_node_op(bn), "batchnorm") || nb_node_num_inputs(bn) < 5) continue;
        for (int k = 3; k < 5; k++) {
            nb_tensor *v = nb_param_value(nb_node_input(bn, k));
            if (!v) continue;
            m->stats[m->n_stats++] = v;
            m->stat_values += nb_tensor_numel(v);
        }
    }
    return NB_OK;
}

/* The pack, sized from the flat gradient buffer opt.grads that nb_optimize
 * made: gradients, statistics, step sums. */
static nb_status make_pack(nb_mpi *m, nb_graph *g)
{
    nb_node *flat = nb_graph_find(g, "opt.grads");
    size_t k, n = flat && nb_node_rank(flat) == 1 ? (size_t)nb_node_dim(flat, 0) : 0;
    nb_trainer_step_sums(m->t, &k);
    m->pack_cap = n + m->stat_values + k;
    m->pack = calloc(m->pack_cap, sizeof(double));
    return m->pack ? NB_OK : NB_ERR_NOMEM;
}

static void release(nb_mpi *m)
{
    if (m->comm != MPI_COMM_NULL) MPI_Comm_free(&m->comm);
    free(m->stats);
    free(m->pack);
    free(m);
}

nb_status nb_mpi_attach(nb_trainer *t, MPI_Comm comm, unsigned flags, nb_mpi **out)
{
    if (!out) return NB_ERR_ARG;
    *out = NULL;
    if (!t) return NB_ERR_ARG;
    nb_mpi *m = calloc(1, sizeof *m);
    if (!m) return NB_ERR_NOMEM;
    *m = (nb_mpi){.t = t, .comm = MPI_COMM_NULL, .flags = flags, .bucket = BUCKET};
    if (MPI_Comm_dup(comm, &m->comm) != MPI_SUCCESS) {
        free(m);
        return NB_ERR_ARG;
    }
    MPI_Comm_rank(m->comm, &m->rank);
    MPI_Comm_size(m->comm, &m->size);
    nb_graph *g = nb_trainer_graph(t);
    nb_status st = (flags & NB_MPI_SYNC_BN) ? find_stats(m, g) : NB_OK;
    if (!st) st = make_pack(m, g);
    if (!st) st = nb_trainer_shard(t, m->rank, m->size, sum_doubles, m);
    if (!st) st = nb_trainer_hook(t, average, m);
    if (st) {
        release(m);
        return st;
    }
    *out = m;
    return NB_OK;
}

void nb_mpi_free(nb_mpi *m)
{
    if (!m) return;
    nb_trainer_shard(m->t, 0, 1, NULL, NULL);
    nb_trainer_hook(m->t, NULL, NULL);
    release(m);
}

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
 * No overlap with the backward pass: the plan gathers every gradient into
 * the flat buffer (opt.grads) before the hook runs, so the allreduce starts
 * once the backward pass is over. The gradient buffer is reduced in place
 * (MPI_IN_PLACE): nothing is allocated during a step. This file uses only the
 * public API: it is built into its own library, libnabla-mpi. */
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
    double *stat_buf;     /* stat_values, packed */
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

static void scale(void *x, size_t n, nb_dtype dt, double w)
{
    if (w == 1) return;
    if (dt == NB_F32) {
        float *f = x;
        for (size_t i = 0; i < n; i++) f[i] = (float)((double)f[i] * w);
    } else {
        double *d = x;
        for (size_t i = 0; i < n; i++) d[i] *= w;
    }
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

/* NB_MPI_SYNC_BN: the running statistics, weighted like the gradients (they
 * moved towards this step's batch statistics in the forward pass). */
static nb_status sync_stats(nb_mpi *m, double w)
{
    double *b = m->stat_buf;
    for (size_t i = 0; i < m->n_stats; i++) {
        const nb_tensor *s = m->stats[i];
        size_t k = nb_tensor_numel(s);
        for (size_t j = 0; j < k; j++)
            *b++ = w * (s->dtype == NB_F32 ? (double)((const float *)s->data)[j] : ((const double *)s->data)[j]);
    }
    nb_status st = allreduce(m, m->stat_buf, m->stat_values, MPI_DOUBLE, sizeof(double));
    b = m->stat_buf;
    for (size_t i = 0; i < m->n_stats && !st; i++) {
        nb_tensor *s = m->stats[i];
        size_t k = nb_tensor_numel(s);
        for (size_t j = 0; j < k; j++, b++) {
            if (s->dtype == NB_F32) ((float *)s->data)[j] = (float)*b;
            else ((double *)s->data)[j] = *b;
        }
    }
    return st;
}

/* The gradient hook: grads <- sum over ranks of (m_r / M) grads_r, and the
 * trainer's step sums (loss, correct) summed, in a non-blocking allreduce
 * that progresses while the gradients' runs: one wait per step, not two. */
static nb_status average(void *user, void *grads, size_t n, nb_dtype dt)
{
    nb_mpi *m = user;
    size_t mine, all;
    nb_trainer_step_samples(m->t, &mine, &all);
    m->err[0] = 0;
    nb_status st = m->checked ? NB_OK : check_agreement(m, n, all);
    if (st) return st;
    double w = all ? (double)mine / (double)all : 0, start = MPI_Wtime();
    size_t elem = dt == NB_F32 ? sizeof(float) : sizeof(double), k;
    double *sums = nb_trainer_step_sums(m->t, &k);
    MPI_Request req;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, sums, (int)k, MPI_DOUBLE, MPI_SUM, m->comm, &req);
    if (rc != MPI_SUCCESS) return fail(m, "MPI_Iallreduce", rc);
    scale(grads, n, dt, w);
    st = allreduce(m, grads, n, dt == NB_F32 ? MPI_FLOAT : MPI_DOUBLE, elem);
    rc = MPI_Wait(&req, MPI_STATUS_IGNORE);
    if (!st && rc != MPI_SUCCESS) st = fail(m, "MPI_Wait", rc);
    m->bytes = n * elem;
    if (!st && m->n_stats) {
        st = sync_stats(m, w);
        m->bytes += m->stat_values * sizeof(double);
    }
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
    m->stat_buf = calloc(m->stat_values + 1, sizeof *m->stat_buf);
    return m->stat_buf ? NB_OK : NB_ERR_NOMEM;
}

static void release(nb_mpi *m)
{
    if (m->comm != MPI_COMM_NULL) MPI_Comm_free(&m->comm);
    free(m->stats);
    free(m->stat_buf);
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
    nb_status st = (flags & NB_MPI_SYNC_BN) ? find_stats(m, nb_trainer_graph(t)) : NB_OK;
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

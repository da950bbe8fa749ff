/* A plan's worker threads (nb_plan_set_threads) and nb_kernel_parallel, the
 * one way kernels split a loop across them.
 *
 * A job is a range [0, n) cut into one part per thread, part t being
 * [t*n/P, (t+1)*n/P): the caller runs part 0 and each worker its own part, so
 * which thread computes what depends only on n and P, and a kernel whose
 * parts write disjoint outputs gives the same bits as a serial run.
 *
 * Cooperating with OpenBLAS on few cores: two pools of spinning threads (an
 * OpenBLAS GEMM's and nabla's) took turns on 2 cores instead of working
 * together, so nabla splits its GEMMs itself (matmul by rows or columns,
 * convolutions by sample) and the tool runs OpenBLAS on one thread: one pool
 * does all the work. Workers poll for the next job for a short while after
 * one (the next parallel op of a step comes a few microseconds later), then
 * sleep on a condition variable until the next run. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "base.h"

#define SPINS 200000  /* polls before sleeping: about a tenth of a millisecond */

struct nb__workers {
    int n;                     /* threads, the caller included */
    pthread_t *tid;            /* n - 1 workers */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    atomic_uint_fast64_t job;  /* counts jobs posted; a change wakes the workers */
    atomic_int pending;        /* workers still running the current job */
    bool quit;
    /* the current job */
    nb_part_fn fn;
    void *arg;
    int64_t len;
    int parts;
};

typedef struct worker_arg {
    struct nb__workers *w;
    int part;
} worker_arg;

static void run_part(const struct nb__workers *w, int part)
{
    if (part >= w->parts) return;
    int64_t lo = w->len * part / w->parts, hi = w->len * (part + 1) / w->parts;
    if (hi > lo) w->fn(w->arg, lo, hi, part);
}

/* Waits for a job after `seen`: spins a little, then sleeps. False on quit. */
static bool wait_job(struct nb__workers *w, uint_fast64_t seen)
{
    for (int i = 0; i < SPINS; i++) {
        if (atomic_load_explicit(&w->job, memory_order_acquire) != seen) return true;
    }
    pthread_mutex_lock(&w->mu);
    while (atomic_load_explicit(&w->job, memory_order_acquire) == seen && !w->quit)
        pthread_cond_wait(&w->go, &w->mu);
    bool quit = w->quit;
    pthread_mutex_unlock(&w->mu);
    return !quit;
}

static void *worker_main(void *p)
{
    worker_arg a = *(worker_arg *)p;
    nb_free(p);
    struct nb__workers *w = a.w;
    uint_fast64_t seen = 0;
    while (wait_job(w, seen)) {
        pthread_mutex_lock(&w->mu);  /* the job's fields were written under it */
        seen = atomic_load_explicit(&w->job, memory_order_acquire);
        pthread_mutex_unlock(&w->mu);
        run_part(w, a.part);
        if (atomic_fetch_sub_explicit(&w->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&w->mu);
            pthread_cond_signal(&w->done);
            pthread_mutex_unlock(&w->mu);
        }
    }
    return NULL;
}

nb_status nb__workers_new(int n, nb__workers **out)
{
    *out = NULL;
    struct nb__workers *w = nb_calloc(1, sizeof *w);
    if (!w) return NB_ERR_NOMEM;
    w->tid = nb_calloc((size_t)(n > 1 ? n - 1 : 1), sizeof *w->tid);
    if (!w->tid || pthread_mutex_init(&w->mu, NULL)) {
        nb_free(w->tid);
        nb_free(w);
        return NB_ERR_NOMEM;
    }
    pthread_cond_init(&w->go, NULL);
    pthread_cond_init(&w->done, NULL);
    atomic_init(&w->job, 0);
    atomic_init(&w->pending, 0);
    w->n = 1;
    for (int t = 1; t < n; t++) {
        worker_arg *a = nb_malloc(sizeof *a);
        if (a) *a = (worker_arg){w, t};
        if (!a || pthread_create(&w->tid[t - 1], NULL, worker_main, a)) {
            nb_free(a);
            nb__workers_free(w);
            return NB_ERR_RUNTIME;
        }
        w->n = t + 1;
    }
    *out = w;
    return NB_OK;
}

void nb__workers_free(nb__workers *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->quit = true;
    pthread_cond_broadcast(&w->go);
    pthread_mutex_unlock(&w->mu);
    for (int t = 1; t < w->n; t++) pthread_join(w->tid[t - 1], NULL);
    pthread_cond_destroy(&w->go);
    pthread_cond_destroy(&w->done);
    pthread_mutex_destroy(&w->mu);
    nb_free(w->tid);
    nb_free(w);
}

int nb__workers_count(const nb__workers *w) { return w ? w->n : 1; }

void nb__workers_run(nb__workers *w, int64_t n, int parts, nb_part_fn fn, void *arg)
{
    pthread_mutex_lock(&w->mu);
    w->fn = fn, w->arg = arg, w->len = n, w->parts = parts;
    atomic_store_explicit(&w->pending, w->n - 1, memory_order_release);
    atomic_fetch_add_explicit(&w->job, 1, memory_order_acq_rel);
    pthread_cond_broadcast(&w->go);
    pthread_mutex_unlock(&w->mu);
    run_part(w, 0);
    for (int i = 0; i < SPINS && atomic_load_explicit(&w->pending, memory_order_acquire); i++) {
    }
    pthread_mutex_lock(&w->mu);
    while (atomic_load_explicit(&w->pending, memory_order_acquire))
        pthread_cond_wait(&w->done, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

void nb_kernel_parallel(const nb_kctx *k, int64_t n, int64_t grain, nb_part_fn fn, void *arg)
{
    nb__workers *w = k ? k->workers : NULL;
    int64_t parts = nb__workers_count(w);
    if (grain < 1) grain = 1;
    if (parts > n / grain) parts = n / grain;
    if (parts <= 1) {
        if (n > 0) fn(arg, 0, n, 0);
        return;
    }
    nb__workers_run(w, n, (int)parts, fn, arg);
}

int nb_kernel_parts(const nb_kctx *k) { return nb__workers_count(k ? k->workers : NULL); }

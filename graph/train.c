/* The training loop (train.h): epochs of shuffled batches through one plan
 * that runs forward, backward and update, an evaluation plan, metrics, and
 * checkpoints that resume to the same bits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define MAX_FEEDS 16

typedef struct feed {
    nb_node *input;
    char field[64];
    double scale;
    size_t per_sample;   /* values of one sample of the input */
} feed;

struct nb_trainer {
    nb_graph *g;
    nb_node *loss, *scores, *labels, *step, *count;
    nb_plan *train, *eval;
    int64_t batch, classes;
    nb_lr_schedule schedule;
    double lr;           /* the optimizer's base rate */
    bool detect_anomaly;
    bool shuffle;
    uint64_t seed;
    const char *sym;     /* the batch's free dimension (the graph's string) */
    feed feeds[MAX_FEEDS];
    int n_feeds;
    /* where training stands */
    int64_t epochs;      /* completed */
    size_t done;         /* batches done of the current epoch (0: none) */
    double loss_sum;     /* of the current epoch so far: loss x samples */
    size_t samples, correct;
    double seconds;
    /* a non-finite value met by the hook */
    bool nonfinite;
    nb_grad_hook user_hook;
    void *user;
    /* data parallelism (nb_trainer_shard): this worker's rank of ranks, the
     * sum across workers, and the samples of the step under way */
    int rank, ranks;
    nb_sum_fn sum;
    void *sum_user;
    size_t step_mine, step_all;
    double step_sums[2]; /* the step's loss x samples and correct, summed by the hook */
    nb_status status;
    char err[NB_ERR_CAP];
};

static nb_status fail(nb_trainer *t, nb_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static nb_status fail(nb_trainer *t, nb_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->err, sizeof t->err, fmt, ap);
    va_end(ap);
    return t->status = st;
}

static void begin(nb_trainer *t)
{
    t->status = NB_OK;
    t->err[0] = 0;
}

nb_status nb_trainer_status(const nb_trainer *t) { return t ? t->status : NB_ERR_ARG; }
const char *nb_trainer_error(const nb_trainer *t) { return t ? t->err : "no trainer"; }
nb_node *nb_trainer_step(const nb_trainer *t) { return t ? t->step : NULL; }
nb_plan *nb_trainer_plan(const nb_trainer *t, bool training) { return !t ? NULL : training ? t->train : t->eval; }
nb_graph *nb_trainer_graph(const nb_trainer *t) { return t ? t->g : NULL; }
int64_t nb_trainer_epochs(const nb_trainer *t) { return t ? t->epochs : 0; }
bool nb_trainer_mid_epoch(const nb_trainer *t) { return t && t->done > 0; }
int64_t nb_trainer_classes(const nb_trainer *t) { return t ? t->classes : 0; }

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static nb_status guard(void *user, void *grads, size_t n, nb_dtype dt);
static nb_status sum_metrics(nb_trainer *t, double *loss_sum, size_t *correct, int64_t *confusion);
static void step_sums(nb_trainer *t);

/* ---- making one ---------------------------------------------------------- */

/* The params to train: those given, or every trainable param of g. */
static nb_node **params_of(nb_graph *g, const nb_trainer_cfg *c, int *n)
{
    *n = 0;
    nb_node **p = nb_malloc((g->n_nodes + 1) * sizeof *p);
    if (!p) return NULL;
    if (c->params) {
        memcpy(p, c->params, (size_t)c->n_params * sizeof *p);
        *n = c->n_params;
    } else {
        for (size_t i = 0; i < g->n_nodes; i++)
            if (nb_param_trainable(g->nodes[i])) p[(*n)++] = g->nodes[i];
    }
    return p;
}

/* Training plan: loss, step[, scores] in training mode; evaluation: loss[, scores]. */
static nb_status make_plans(nb_trainer *t)
{
    nb_node *out[3] = {t->loss, t->step, t->scores};
    nb_node *ev[2] = {t->loss, t->scores};
    nb_status st = nb_plan_new(t->g, ev, t->scores ? 2 : 1, &t->eval);
    if (!st && t->step) st = nb_plan_new(t->g, out, t->scores ? 3 : 2, &t->train);
    if (!st && t->step) st = nb_plan_set_training(t->train, true);
    return st;
}

/* ---- the learning-rate schedule ------------------------------------------------ */

static nb_status check_schedule(nb_graph *g, const nb_lr_schedule *s)
{
    switch (s->kind) {
    case NB_LR_CONSTANT: return NB_OK;
    case NB_LR_COSINE:
        if (s->epochs < 1 || !(s->min_lr >= 0 && isfinite(s->min_lr)))
            return nb__fail(g, NB_ERR_ARG, "trainer: a cosine schedule needs epochs >= 1 and "
                            "min_lr >= 0; got %lld and %g", (long long)s->epochs, s->min_lr);
        return NB_OK;
    case NB_LR_STEP:
        if (s->every < 1 || !(s->gamma > 0 && s->gamma <= 1))
            return nb__fail(g, NB_ERR_ARG, "trainer: a step schedule needs every >= 1 and gamma "
                            "in (0, 1]; got %lld and %g", (long long)s->every, s->gamma);
        return NB_OK;
    }
    return nb__fail(g, NB_ERR_ARG, "trainer: unknown schedule kind %d", (int)s->kind);
}

double nb_lr_at(const nb_lr_schedule *s, double lr, int64_t epoch, size_t batch, size_t batches)
{
    if (!s) return lr;
    switch (s->kind) {
    case NB_LR_COSINE: {
        double total = (double)s->epochs * (double)batches;
        double at = (double)epoch * (double)batches + (double)batch;
        if (at >= total) return s->min_lr;  /* past the horizon: stays at the floor */
        return s->min_lr + (lr - s->min_lr) * 0.5 * (1 + cos(M_PI * at / total));
    }
    case NB_LR_STEP: return lr * pow(s->gamma, (double)(epoch / (s->every > 0 ? s->every : 1)));
    default: return lr;
    }
}

/* Sets the rate of the next step (before it runs); constant rates are left
 * alone, so nb_optimize_set_lr by the caller still works with them. */
static nb_status schedule_lr(nb_trainer *t, size_t batches)
{
    if (t->schedule.kind == NB_LR_CONSTANT) return NB_OK;
    double lr = nb_lr_at(&t->schedule, t->lr, t->epochs, t->done, batches);
    return nb_optimize_set_lr(t->g, t->step, lr) ? fail(t, t->g->status, "%s", nb_graph_error(t->g)) : NB_OK;
}

static nb_status check_cfg(nb_graph *g, const nb_trainer_cfg *c)
{
    if (!c->loss) return nb__missing(g, "the loss to train");
    if (c->batch < 1) return nb__fail(g, NB_ERR_ARG, "trainer: the batch must be >= 1; got %lld", (long long)c->batch);
    if (c->scores && (c->scores->shape.rank != 2 || !nb_sdim_is_const(c->scores->shape.d[1])))
        return nb__fail(g, NB_ERR_SHAPE, "trainer: the scores '%s' must be [N, K] with a fixed K",
                        c->scores->name);
    if (c->labels && (c->labels->kind != NB_NODE_INPUT || c->labels->dtype != NB_I32))
        return nb__fail(g, NB_ERR_ARG, "trainer: the labels '%s' must be an i32 input", c->labels->name);
    return check_schedule(g, &c->schedule);
}

nb_status nb_trainer_new(nb_graph *g, const nb_trainer_cfg *c, nb_trainer **out)
{
    if (!out) return NB_ERR_ARG;
    *out = NULL;
    if (!g || !c) return g ? nb__fail(g, NB_ERR_ARG, "trainer: no configuration") : NB_ERR_ARG;
    nb__begin(g);
    nb_status st = check_cfg(g, c);
    if (st) return st;
    nb_trainer *t = nb_calloc(1, sizeof *t);
    int n;
    nb_node **params = params_of(g, c, &n);
    if (!t || !params) {
        nb_free(t), nb_free(params);
        return nb__fail(g, NB_ERR_NOMEM, "out of memory");
    }
    *t = (nb_trainer){.g = g, .loss = c->loss, .scores = c->scores, .labels = c->labels,
                      .batch = c->batch, .shuffle = c->shuffle, .seed = c->seed, .ranks = 1,
                      .schedule = c->schedule, .lr = c->optim.lr, .detect_anomaly = c->detect_anomaly};
    t->classes = c->scores ? c->scores->shape.d[1].c : 0;
    if (!c->evaluate_only) {
        t->step = nb_optimize(g, c->loss, params, n, &c->optim, NULL);
        st = t->step ? nb_optimize_hook(g, t->step, guard, t) : g->status;
        t->count = nb_graph_find(g, "opt.step");
    }
    nb_free(params);
    if (!st) st = make_plans(t);
    if (st) {
        nb_trainer_free(t);
        return st;
    }
    *out = t;
    return NB_OK;
}

void nb_trainer_free(nb_trainer *t)
{
    if (!t) return;
    nb_plan_free(t->train);
    nb_plan_free(t->eval);
    nb_free(t);
}

/* ---- feeding --------------------------------------------------------------- */

nb_status nb_trainer_feed(nb_trainer *t, nb_node *input, const char *field, double scale)
{
    if (!t) return NB_ERR_ARG;
    begin(t);
    if (!input || input->kind != NB_NODE_INPUT)
        return fail(t, NB_ERR_ARG, "trainer: '%s' is not an input", nb_node_name(input));
    if (!field || strlen(field) >= sizeof t->feeds[0].field)
        return fail(t, NB_ERR_ARG, "trainer: input '%s' needs a field name", input->name);
    if (t->n_feeds == MAX_FEEDS) return fail(t, NB_ERR_ARG, "trainer: more than %d feeds", MAX_FEEDS);
    const char *sym = nb_node_dim_sym(t->g, input, 0);
    if (!sym || (t->sym && strcmp(sym, t->sym)))
        return fail(t, NB_ERR_SHAPE, "trainer: input '%s' must have the batch as its first "
                    "dimension (a free one, %s)", input->name, t->sym ? t->sym : "such as N");
    int64_t shape[NB_MAX_DIMS];
    int rank = nb_node_shape_bound(t->g, input, (nb_bind[]){{sym, 1}}, 1, shape);
    size_t per = 1;
    for (int a = 1; a < rank; a++) per *= (size_t)shape[a];
    if (rank < 1) return fail(t, NB_ERR_SHAPE, "trainer: input '%s' has other free dimensions "
                              "than the batch", input->name);
    t->sym = sym;
    feed *f = &t->feeds[t->n_feeds++];
    *f = (feed){input, "", scale, per};
    snprintf(f->field, sizeof f->field, "%s", field);
    return NB_OK;
}

/* Checks that data has every field fed, with samples of the inputs' size,
 * and labels within the classes. */
static nb_status check_data(nb_trainer *t, nb_dataset *d)
{
    if (!d) return fail(t, NB_ERR_ARG, "trainer: no dataset given");
    if (t->n_feeds == 0) return fail(t, NB_ERR_ARG, "trainer: no input is fed (nb_trainer_feed)");
    if (nb_dataset_size(d) == 0) return fail(t, NB_ERR_ARG, "trainer: the dataset is empty");
    for (int i = 0; i < t->n_feeds; i++) {
        const feed *f = &t->feeds[i];
        int k = nb_dataset_field(d, f->field);
        if (k < 0) return fail(t, NB_ERR_ARG, "trainer: the dataset has no field '%s' for input '%s'",
                               f->field, f->input->name);
        if (nb_dataset_field_numel(d, k) != f->per_sample)
            return fail(t, NB_ERR_SHAPE, "trainer: a sample of '%s' (%s) holds %zu values; input "
                        "'%s' takes %zu per sample", f->field, nb_dataset_field_path(d, k),
                        nb_dataset_field_numel(d, k), f->input->name, f->per_sample);
        if (f->input == t->labels && t->classes > 0 && nb_dataset_check_labels(d, k, t->classes))
            return fail(t, NB_ERR_RUNTIME, "%s", nb_dataset_error(d));
        if (nb_dataset_check_exact(d, k, f->input->dtype))
            return fail(t, NB_ERR_DTYPE, "%s (input '%s')", nb_dataset_error(d), f->input->name);
    }
    return NB_OK;
}

/* Binds the batch size and copies samples idx[0..n) of every field fed. */
static nb_status load_batch(nb_trainer *t, nb_plan *p, nb_dataset *d, const size_t *idx, size_t n)
{
    if (nb_plan_bind(p, (nb_bind[]){{t->sym, (int64_t)n}}, 1))
        return fail(t, nb_plan_status(p), "%s", nb_plan_error(p));
    for (int i = 0; i < t->n_feeds; i++) {
        const feed *f = &t->feeds[i];
        void *buf = nb_plan_input_buffer(p, f->input);
        if (!buf) continue;  /* the plan does not read it */
        size_t bytes = n * f->per_sample * nb_dtype_size(f->input->dtype);
        if (nb_dataset_batch(d, nb_dataset_field(d, f->field), idx, n, f->input->dtype, f->scale, buf, bytes))
            return fail(t, NB_ERR_RUNTIME, "%s", nb_dataset_error(d));
    }
    return NB_OK;
}

/* ---- metrics ---------------------------------------------------------------- */

static size_t argmax_row(const nb_plan *p, const nb_node *scores, size_t row, int64_t k)
{
    size_t best = 0;
    if (scores->dtype == NB_F32) {
        const float *s = (const float *)nb_plan_get(p, scores) + row * (size_t)k;
        for (size_t j = 1; j < (size_t)k; j++) best = s[j] > s[best] ? j : best;
    } else {
        const double *s = (const double *)nb_plan_get(p, scores) + row * (size_t)k;
        for (size_t j = 1; j < (size_t)k; j++) best = s[j] > s[best] ? j : best;
    }
    return best;
}

/* Adds a run's loss and correct predictions to the sums (and the confusion matrix). */
static void tally(nb_trainer *t, nb_plan *p, size_t n, double *loss_sum, size_t *correct,
                  int64_t *confusion)
{
    const void *l = nb_plan_get(p, t->loss);
    *loss_sum += (t->loss->dtype == NB_F32 ? *(const float *)l : *(const double *)l) * (double)n;
    if (!t->scores || !t->labels) return;
    const int32_t *y = nb_plan_input_buffer(p, t->labels);
    for (size_t i = 0; y && i < n; i++) {
        size_t guess = argmax_row(p, t->scores, i, t->classes);
        *correct += guess == (size_t)y[i];
        if (confusion) confusion[(size_t)y[i] * (size_t)t->classes + guess]++;
    }
}

static nb_metrics metrics(const nb_trainer *t, double loss_sum, size_t samples, size_t correct,
                          double seconds)
{
    nb_metrics m = {NAN, NAN, samples, correct, seconds};
    if (samples) m.loss = loss_sum / (double)samples;
    if (samples && t->scores && t->labels) m.accuracy = (double)correct / (double)samples;
    return m;
}

/* ---- a training step, with the check for values that are not finite ---------- */

/* Runs between the gradients and the updates: a loss or gradient that is not
 * finite stops the step before any param changes. */
static nb_status guard(void *user, void *grads, size_t n, nb_dtype dt)
{
    nb_trainer *t = user;
    if (!nb__all_finite(t->loss->dtype, nb_plan_get(t->train, t->loss), 1) ||
        !nb__all_finite(dt, grads, n)) {
        t->nonfinite = true;
        return NB_ERR_RUNTIME;
    }
    if (t->ranks > 1) step_sums(t);
    return t->user_hook ? t->user_hook(t->user, grads, n, dt) : NB_OK;
}

static double step_count(const nb_trainer *t) { return *(const double *)t->count->value.data; }

/* Dropout masks are a function of (seed, step): a resumed run draws the same.
 * Workers of a sharded trainer mix in their rank, or the samples in the same
 * place of each shard would drop the same units. */
static void seed_masks(nb_trainer *t)
{
    uint64_t s = nb_mix64(t->seed ^ nb_mix64((uint64_t)step_count(t)));
    nb_plan_set_seed(t->train, t->ranks > 1 ? nb_mix64(s ^ (uint64_t)t->rank) : s);
}

/* Names the first node whose value is not finite, by running the step again
 * while looking (the params are still as before the step). */
static nb_status explain_nonfinite(nb_trainer *t)
{
    const nb_node *bad = NULL;
    seed_masks(t);
    nb_plan_run_checked(t->train, &bad);
    return fail(t, NB_ERR_RUNTIME, "step %.0f (epoch %lld, batch %zu): the %s is not finite; the "
                "first value that is not: node '%s' (%s)", step_count(t) + 1,
                (long long)t->epochs + 1, t->done + 1, bad == t->loss || !bad ? "loss" : "loss or a gradient",
                bad ? bad->name : t->loss->name, bad ? nb_node_op(bad) : "?");
}

/* ---- data parallelism ------------------------------------------------------------
 * Worker r of R takes a contiguous part of every global batch of m samples:
 * m / R each, and one more for the first m % R workers. A worker whose part
 * is empty (a last batch smaller than R) still runs the step, on the batch's
 * first samples, so that it meets the others in the gradient hook; the hook
 * weights its gradient by 0 (nb_trainer_step_samples). */

static size_t shard_of(nb_trainer *t, size_t m, size_t *off)
{
    size_t r = (size_t)t->rank, R = (size_t)t->ranks, q = m / R, extra = m % R;
    *off = r * q + (r < extra ? r : extra);
    t->step_mine = q + (r < extra);
    t->step_all = m;
    return t->step_mine;
}

/* The stand-in batch of a worker without samples (two, for batchnorm). */
static size_t dummy_of(size_t m) { return m < 2 ? m : 2; }

static nb_status sum_all(nb_trainer *t, double *v, size_t n)
{
    nb_status st = t->sum(t->sum_user, v, n);
    return st ? fail(t, st, "trainer: summing across the %d workers failed (%s)", t->ranks,
                     nb_status_str(st)) : NB_OK;
}

/* This worker's part of the step's loss and correct predictions, for the
 * gradient hook of a sharded trainer to sum across the workers with the
 * gradients (nb_trainer_step_sums): the forward pass is over by then. */
static void step_sums(nb_trainer *t)
{
    size_t correct = 0;
    t->step_sums[0] = 0;
    if (t->step_mine) tally(t, t->train, t->step_mine, &t->step_sums[0], &correct, NULL);
    t->step_sums[1] = (double)correct;
}

/* Adds the step's loss and correct predictions to the epoch's: a sharded
 * trainer's, summed over the workers by the hook, so that every worker (and
 * a checkpoint) holds the global sums. */
static void tally_step(nb_trainer *t, size_t mine, size_t m)
{
    if (t->ranks == 1) {
        tally(t, t->train, mine, &t->loss_sum, &t->correct, NULL);
    } else {
        t->loss_sum += t->step_sums[0];
        t->correct += (size_t)t->step_sums[1];
    }
    t->samples += m;
}

double *nb_trainer_step_sums(nb_trainer *t, size_t *n)
{
    if (n) *n = t ? 2 : 0;
    return t ? t->step_sums : NULL;
}

nb_status nb_trainer_shard(nb_trainer *t, int rank, int ranks, nb_sum_fn sum, void *user)
{
    if (!t) return NB_ERR_ARG;
    begin(t);
    if (ranks < 1 || rank < 0 || rank >= ranks || (ranks > 1 && !sum))
        return fail(t, NB_ERR_ARG, "trainer: worker %d of %d (and a sum function) makes no shard",
                    rank, ranks);
    if (t->batch % ranks)
        return fail(t, NB_ERR_ARG, "trainer: the batch (%lld samples, all workers together) does "
                    "not divide among %d workers; use a multiple of %d", (long long)t->batch, ranks, ranks);
    t->rank = rank;
    t->ranks = ranks;
    t->sum = sum;
    t->sum_user = user;
    return NB_OK;
}

void nb_trainer_step_samples(const nb_trainer *t, size_t *mine, size_t *all)
{
    if (mine) *mine = t ? t->step_mine : 0;
    if (all) *all = t ? t->step_all : 0;
}

/* --detect-anomaly: every value checked as it is made */
static nb_status checked_step(nb_trainer *t)
{
    const nb_node *bad = NULL;
    double step = step_count(t) + 1;
    nb_status st = nb_plan_run_checked(t->train, &bad);
    if (st || !bad) return st ? fail(t, st, "%s", nb_plan_error(t->train)) : NB_OK;
    char what[768];
    nb_plan_anomaly(t->train, bad, what, sizeof what);
    return fail(t, NB_ERR_RUNTIME, "anomaly at step %.0f (epoch %lld, batch %zu): %s", step,
                (long long)t->epochs + 1, t->done + 1, what);
}

static nb_status train_step(nb_trainer *t)
{
    seed_masks(t);
    t->nonfinite = false;
    if (t->detect_anomaly) return checked_step(t);
    nb_status st = nb_plan_run(t->train);
    if (st && t->nonfinite) return explain_nonfinite(t);
    return st ? fail(t, st, "%s", nb_plan_error(t->train)) : NB_OK;
}

/* ---- epochs ------------------------------------------------------------------ */

nb_status nb_trainer_epoch(nb_trainer *t, nb_dataset *d, nb_progress_fn progress, void *user,
                           nb_metrics *out)
{
    if (!t) return NB_ERR_ARG;
    begin(t);
    if (!t->step) return fail(t, NB_ERR_ARG, "trainer: made to evaluate only");
    nb_status st = check_data(t, d);
    if (st) return st;
    size_t n = nb_dataset_size(d), batches = (n + (size_t)t->batch - 1) / (size_t)t->batch;
    /* a checkpoint of another dataset or batch size may stand past the end */
    if (t->done > batches)
        return fail(t, NB_ERR_ARG,
                    "trainer: resumed after batch %zu of epoch %lld, but an epoch of these %zu samples has %zu "
                    "batches of %lld (another dataset or batch size than the checkpoint's?)",
                    t->done, (long long)t->epochs + 1, n, batches, (long long)t->batch);
    size_t *perm = nb_malloc(n * sizeof *perm);
    if (!perm) return fail(t, NB_ERR_NOMEM, "out of memory");
    if (t->shuffle) nb_shuffle(t->seed, (uint64_t)t->epochs, perm, n);
    else for (size_t i = 0; i < n; i++) perm[i] = i;
    double start = now() - t->seconds;
    bool go = true;
    while (t->done < batches && go) {
        size_t first = t->done * (size_t)t->batch, m = n - first < (size_t)t->batch ? n - first : (size_t)t->batch;
        size_t off, mine = shard_of(t, m, &off);
        const size_t *idx = mine ? perm + first + off : perm + first;  /* the stand-in: see shard_of */
        if ((st = load_batch(t, t->train, d, idx, mine ? mine : dummy_of(m))) ||
            (st = schedule_lr(t, batches)) || (st = train_step(t)))
            break;
        tally_step(t, mine, m);
        t->done++;
        t->seconds = now() - start;
        nb_progress pr = {t->epochs, t->done, batches,
                          metrics(t, t->loss_sum, t->samples, t->correct, t->seconds)};
        if (progress) go = progress(user, &pr);
    }
    nb_free(perm);
    if (out) *out = metrics(t, t->loss_sum, t->samples, t->correct, t->seconds);
    if (!st && t->done == batches) {  /* a whole epoch: start the next afresh */
        t->epochs++;
        t->done = t->samples = t->correct = 0;
        t->loss_sum = t->seconds = 0;
    }
    return st;
}

nb_status nb_trainer_evaluate(nb_trainer *t, nb_dataset *d, nb_metrics *out, int64_t *confusion)
{
    if (!t) return NB_ERR_ARG;
    begin(t);
    nb_status st = check_data(t, d);
    if (st) return st;
    /* a sharded trainer evaluates its part of the samples, in local batches */
    size_t n = nb_dataset_size(d), b = (size_t)t->batch / (size_t)t->ranks, correct = 0;
    size_t lo = n * (size_t)t->rank / (size_t)t->ranks, hi = n * ((size_t)t->rank + 1) / (size_t)t->ranks;
    size_t *idx = nb_malloc(b * sizeof *idx);
    if (!idx) return fail(t, NB_ERR_NOMEM, "out of memory");
    if (confusion) memset(confusion, 0, (size_t)(t->classes * t->classes) * sizeof *confusion);
    double start = now(), loss_sum = 0;
    for (size_t first = lo; first < hi && !st; first += b) {
        size_t m = hi - first < b ? hi - first : b;
        for (size_t i = 0; i < m; i++) idx[i] = first + i;
        if (!(st = load_batch(t, t->eval, d, idx, m)) && (st = nb_plan_run(t->eval)))
            fail(t, st, "%s", nb_plan_error(t->eval));
        if (!st) tally(t, t->eval, m, &loss_sum, &correct, confusion);
    }
    nb_free(idx);
    if (!st && t->ranks > 1) st = sum_metrics(t, &loss_sum, &correct, confusion);
    if (!st && out) *out = metrics(t, loss_sum, n, correct, now() - start);
    return st;
}

/* The evaluation's sums (loss, correct, the confusion matrix) across workers.
 * Counts travel as doubles: exact below 2^53. A worker whose part failed
 * returns before this and the others wait here: the caller ends the job
 * (nabla/mpi.h says how). */
static nb_status sum_metrics(nb_trainer *t, double *loss_sum, size_t *correct, int64_t *confusion)
{
    size_t k2 = confusion ? (size_t)(t->classes * t->classes) : 0;
    double *v = nb_malloc((2 + k2) * sizeof *v);
    if (!v) return fail(t, NB_ERR_NOMEM, "out of memory");
    v[0] = *loss_sum;
    v[1] = (double)*correct;
    for (size_t i = 0; i < k2; i++) v[2 + i] = (double)confusion[i];
    nb_status st = sum_all(t, v, 2 + k2);
    *loss_sum = v[0];
    *correct = (size_t)v[1];
    for (size_t i = 0; i < k2; i++) confusion[i] = (int64_t)v[2 + i];
    nb_free(v);
    return st;
}

nb_status nb_trainer_hook(nb_trainer *t, nb_grad_hook fn, void *user)
{
    if (!t) return NB_ERR_ARG;
    begin(t);
    t->user_hook = fn;
    t->user = user;
    return NB_OK;
}

/* ---- checkpoints ---------------------------------------------------------------
 * The params (optimizer state among them) and, in the metadata, where training
 * stands: the epochs completed, the batches done of the next one and its sums
 * so far, so that resuming a checkpoint saved mid-epoch continues with the next
 * batch of the same permutation. */

#define CKPT_FORMAT "nabla-checkpoint-1"

nb_status nb_trainer_save(nb_trainer *t, const char *path, const char *const *meta, size_t n_meta)
{
    if (!t) return NB_ERR_ARG;
    begin(t);
    if (!t->step) return fail(t, NB_ERR_ARG, "trainer: made to evaluate only");
    if (n_meta > 32) return fail(t, NB_ERR_ARG, "trainer: more than 32 metadata pairs");
    char v[7][40];
    snprintf(v[0], sizeof v[0], "%lld", (long long)t->epochs);
    snprintf(v[1], sizeof v[1], "%zu", t->done);
    snprintf(v[2], sizeof v[2], "%.17g", t->loss_sum);
    snprintf(v[3], sizeof v[3], "%zu", t->samples);
    snprintf(v[4], sizeof v[4], "%zu", t->correct);
    snprintf(v[5], sizeof v[5], "%llu", (unsigned long long)t->seed);
    snprintf(v[6], sizeof v[6], "%.17g", t->seconds);
    const char *all[2 * (7 + 1 + 32)] = {"format", CKPT_FORMAT, "epoch", v[0], "batch", v[1],
                                         "loss_sum", v[2], "samples", v[3], "correct", v[4],
                                         "seed", v[5], "seconds", v[6]};
    if (n_meta) memcpy(all + 16, meta, 2 * n_meta * sizeof *meta);
    if (nb_weights_save(t->g, path, all, 8 + n_meta))
        return fail(t, nb_graph_status(t->g), "%s", nb_graph_error(t->g));
    return NB_OK;
}

static const char *meta_of(const nb_tensor_set *s, const char *key)
{
    for (size_t i = 0; i < s->n_meta; i++)
        if (!strcmp(s->meta_keys[i], key)) return s->meta_vals[i];
    return NULL;
}

/* A number of the metadata into *out; false when missing or malformed. The
 * counts (epoch, batch, samples, correct) must be whole numbers up to 2^53:
 * "1e300" made the epoch count undefined behaviour (a cast out of range) and
 * training run without end, "0.5" became 0. */
static bool meta_num(const nb_tensor_set *s, const char *key, bool count, double *out)
{
    const char *v = meta_of(s, key);
    char *end;
    if (!v || !*v) return false;
    if (count && strspn(v, "0123456789") != strlen(v)) return false;
    *out = strtod(v, &end);
    return !*end && isfinite(*out) && *out >= 0 && (!count || *out <= 9007199254740992.0);
}

static nb_status bad_meta(nb_trainer *t, const char *path, const nb_tensor_set *s, const char *key, bool count)
{
    const char *v = meta_of(s, key);
    if (!v) return fail(t, NB_ERR_FORMAT, "%s: the checkpoint has no '%s' in its metadata", path, key);
    return fail(t, NB_ERR_FORMAT, "%s: the checkpoint's '%s' is '%s', not %s", path, key, v,
                count ? "a whole number from 0 to 2^53" : "a finite number >= 0");
}

/* The optimizer's step count, a param like the others: a whole number, or
 * the dropout seed (cast to an integer) is undefined behaviour and Adam's
 * bias correction NaN. Its absence is nb_weights_load's to report. */
static nb_status check_step_count(nb_trainer *t, const char *path, const nb_tensor_set *s)
{
    const nb_tensor *c = t->count ? nb_tensor_set_find(s, t->count->name) : NULL;
    if (!c || nb_tensor_numel(c) != 1 || (c->dtype != NB_F32 && c->dtype != NB_F64)) return NB_OK;
    double v = c->dtype == NB_F64 ? *(const double *)c->data : *(const float *)c->data;
    if (isfinite(v) && v >= 0 && v <= 9007199254740992.0 && v == floor(v)) return NB_OK;
    return fail(t, NB_ERR_FORMAT, "%s: the checkpoint's optimizer step count '%s' is %g, not a whole number from 0 "
                "to 2^53", path, t->count->name, v);
}

nb_status nb_trainer_resume(nb_trainer *t, const char *path)
{
    if (!t) return NB_ERR_ARG;
    begin(t);
    if (!t->step) return fail(t, NB_ERR_ARG, "trainer: made to evaluate only");
    nb_tensor_set s;
    if (nb_tensors_read(path, &s)) return fail(t, NB_ERR_FORMAT, "%s", nb_last_error());
    const char *fmt = meta_of(&s, "format");
    double v[6];
    static const char *const keys[] = {"epoch", "batch", "loss_sum", "samples", "correct", "seconds"};
    nb_status st = NB_OK;
    if (!fmt || strcmp(fmt, CKPT_FORMAT))
        st = fail(t, NB_ERR_FORMAT, "%s: not a nabla checkpoint (no format '%s' in its metadata)",
                  path, CKPT_FORMAT);
    for (int i = 0; i < 6 && !st; i++)
        if (!meta_num(&s, keys[i], i != 2 && i != 5, &v[i])) st = bad_meta(t, path, &s, keys[i], i != 2 && i != 5);
    if (!st) st = check_step_count(t, path, &s);
    nb_tensor_set_free(&s);
    if (st) return st;
    /* the file is whole and ours: now the params, all or nothing */
    if (nb_weights_load(t->g, path, NULL)) return fail(t, nb_graph_status(t->g), "%s", nb_graph_error(t->g));
    t->epochs = (int64_t)v[0];
    t->done = (size_t)v[1];
    t->loss_sum = v[2];
    t->samples = (size_t)v[3];
    t->correct = (size_t)v[4];
    t->seconds = v[5];
    return NB_OK;
}

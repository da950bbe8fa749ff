/* Gradient checks: the gradient nodes against central differences in f64.
 * An element whose one-sided differences disagree sharply straddles a kink
 * (relu at 0, a max tie) and is counted apart, not as a failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct checker {
    nb_plan *plan;       /* loss only: the many perturbed runs skip the gradient nodes */
    nb_node *loss;
    const nb_gc_opts *o;
} checker;

/* In training mode every run starts from the same seed and step, so the
 * dropout masks are the same in each of them. */
static nb_status run(nb_plan *p, const nb_gc_opts *o)
{
    if (o->training) nb_plan_set_seed(p, o->seed);
    return nb_plan_run(p);
}

static nb_status loss_at(checker *c, double *x, size_t i, double v, double *out)
{
    double keep = x[i];
    x[i] = v;
    nb_status st = run(c->plan, c->o);
    x[i] = keep;
    *out = *(const double *)nb_plan_get(c->plan, c->loss);
    return st;
}

/* The loss went non-finite at x[i] = v while it is finite at x[i]: the step
 * left an op's domain (log near 0 ...). Runs that point again, checked, to
 * name the first node that went non-finite. */
static nb_status left_domain(checker *c, nb_node *x, double *data, size_t i, double v, char *err,
                             size_t cap)
{
    const nb_node *bad = NULL;
    double keep = data[i];
    data[i] = v;
    if (c->o->training) nb_plan_set_seed(c->plan, c->o->seed);
    nb_status st = nb_plan_run_checked(c->plan, &bad);
    data[i] = keep;
    if (st) {
        snprintf(err, cap, "%s", nb_plan_error(c->plan));
        return st;
    }
    snprintf(err, cap,
             "the loss is not finite when element %zu of '%s' moves from %.17g to %.17g: node "
             "'%s' (%s) is the first that is not finite; the point is at the edge of an op's domain",
             i, x->name, keep, v, bad ? bad->name : c->loss->name,
             nb_node_op(bad ? bad : c->loss));
    return NB_ERR_RUNTIME;
}

static double *data_of(checker *c, nb_node *x)
{
    return x->kind == NB_NODE_PARAM ? x->value.data : nb_plan_input_buffer(c->plan, x);
}

/* The one-sided slopes are far apart (the difference straddles a kink such as
 * relu at 0 or a max tie) and the analytic gradient lies between them, as a
 * one-sided or averaged derivative does. A wrong gradient next to a kink, or a
 * loss that changes between runs, is still a failure. */
/* Keeps the largest errors of r and where the absolute one is; the first
 * NaN stays the worst element: nothing compares above it. */
static void note_worst(nb_gc_result *r, double abs_err, double rel, size_t i, bool first)
{
    if (!isnan(r->max_abs) && (abs_err > r->max_abs || first || isnan(abs_err))) {
        r->max_abs = abs_err;
        r->worst = i;
    }
    if (!isnan(r->max_rel) && (rel > r->max_rel || isnan(rel))) r->max_rel = rel;
}

static bool straddles_kink(double analytic, double f0, double fp, double fm, double eps, double tol)
{
    double up = (fp - f0) / eps, down = (f0 - fm) / eps;
    if (fabs(up - down) <= 100 * tol + 1e-3) return false;
    double slack = tol + 1e-6 * fabs(up - down);  /* the one-sided slopes carry O(eps) error */
    return analytic >= fmin(up, down) - slack && analytic <= fmax(up, down) + slack;
}

static nb_status check_one(checker *c, nb_node *x, const double *analytic, double f0, nb_rng *rng,
                           nb_gc_result *r, char *err, size_t cap)
{
    double *data = data_of(c, x);
    size_t n = r->numel, m = c->o->max_elems && c->o->max_elems < n ? c->o->max_elems : n;
    double eps = c->o->eps;
    r->pass = true;
    for (size_t s = 0; s < m; s++) {
        size_t i = m == n ? s : (size_t)(nb_rng_next(rng) % n);
        double fp = f0, fm = f0;
        if (data) {  /* NULL: the loss does not read x at all, so its gradient is 0 */
            double x0 = data[i];
            nb_status st = loss_at(c, data, i, x0 + eps, &fp);
            if (!st) st = loss_at(c, data, i, x0 - eps, &fm);
            if (st) {
                snprintf(err, cap, "%s", nb_plan_error(c->plan));
                return st;
            }
            if (!isfinite(fp) || !isfinite(fm))
                return left_domain(c, x, data, i, isfinite(fp) ? x0 - eps : x0 + eps, err, cap);
        }
        double num = (fp - fm) / (2 * eps), abs_err = fabs(analytic[i] - num);
        double rel = abs_err / fmax(fabs(num), 1e-12);
        double tol = c->o->atol + c->o->rtol * fabs(num);
        r->checked++;
        if (!(abs_err <= tol)) {  /* a NaN error (NaN gradient or loss) fails too */
            if (straddles_kink(analytic[i], f0, fp, fm, eps, tol)) {
                r->kinks++;
                continue;
            }
            r->failures++;
            r->pass = false;
        }
        note_worst(r, abs_err, rel, i, s == 0);
    }
    return NB_OK;
}

static nb_status feed(nb_plan *p, const nb_gc_opts *o, const nb_bind *binds, int n_binds,
                      const nb_feed *feeds, int n_feeds, char *err, size_t cap)
{
    nb_status st = nb_plan_set_training(p, o->training);
    if (!st) st = nb_plan_bind(p, binds, n_binds);
    for (int i = 0; i < n_feeds && !st; i++) st = nb_plan_set(p, feeds[i].node, feeds[i].data);
    if (st) snprintf(err, cap, "%s", nb_plan_error(p));
    return st;
}

static nb_status check(nb_graph *g, nb_node *loss, nb_node *const *wrt, int n_wrt,
                       const nb_bind *binds, int n_binds, const nb_feed *feeds, int n_feeds,
                       const nb_gc_opts *opts, nb_gc_result *results, char *err, size_t cap)
{
    nb_gc_opts o = opts ? *opts : NB_GC_DEFAULTS;
    nb_node **outs = nb_calloc((size_t)n_wrt + 1, sizeof *outs);
    double **analytic = nb_calloc((size_t)n_wrt + 1, sizeof *analytic);
    checker c = {NULL, loss, &o};
    nb_plan *full = NULL;
    nb_status st = NB_ERR_NOMEM;
    if (!outs || !analytic) goto done;
    if (loss->dtype != NB_F64 || loss->shape.rank != 0) {
        st = NB_ERR_ARG;
        snprintf(err, cap, "gradcheck needs an f64 scalar loss; '%s' is %s of rank %d", loss->name,
                 nb_dtype_name(loss->dtype), loss->shape.rank);
        goto done;
    }
    for (int k = 0; k < n_wrt; k++)
        if (wrt[k]->state) {  /* autodiff gives it none, and training runs overwrite it */
            st = NB_ERR_ARG;
            snprintf(err, cap, "'%s' is op state, not trainable: it has no gradient to check",
                     wrt[k]->name);
            goto done;
        }
    outs[0] = loss;
    if ((st = nb_grad(g, loss, wrt, n_wrt, outs + 1)) ||
        (st = nb_plan_new(g, outs, n_wrt + 1, &full)) || (st = nb_plan_new(g, &loss, 1, &c.plan))) {
        snprintf(err, cap, "%s", nb_graph_error(g));
        goto done;
    }
    if ((st = feed(full, &o, binds, n_binds, feeds, n_feeds, err, cap)) ||
        (st = feed(c.plan, &o, binds, n_binds, feeds, n_feeds, err, cap)))
        goto done;
    if ((st = run(full, &o))) {
        snprintf(err, cap, "%s", nb_plan_error(full));
        goto done;
    }
    double f0 = *(const double *)nb_plan_get(full, loss);
    for (int k = 0; k < n_wrt; k++) {
        int64_t shape[NB_MAX_DIMS];
        int rank = nb_plan_shape(full, wrt[k], shape);
        memset(&results[k], 0, sizeof results[k]);
        results[k].node = wrt[k];
        snprintf(results[k].name, sizeof results[k].name, "%s", wrt[k]->name);
        nb_shape_numel(rank, shape, &results[k].numel);
        st = NB_ERR_NOMEM;
        if (!(analytic[k] = nb_malloc(results[k].numel * sizeof(double)))) goto done;
        memcpy(analytic[k], nb_plan_get(full, outs[k + 1]), results[k].numel * sizeof(double));
    }
    nb_rng rng;
    nb_rng_seed(&rng, o.seed);
    for (int k = 0; k < n_wrt; k++)
        if ((st = check_one(&c, wrt[k], analytic[k], f0, &rng, &results[k], err, cap))) goto done;
    st = NB_OK;
done:
    if (st == NB_ERR_NOMEM && err && !err[0]) snprintf(err, cap, "out of memory");
    for (int k = 0; analytic && k < n_wrt; k++) nb_free(analytic[k]);
    nb_free(analytic);
    nb_free(outs);
    nb_plan_free(c.plan);
    nb_plan_free(full);
    return st;
}

/* What both checks need: a graph, a loss and every tensor to check; begins
 * the call on g (core.h, rule 3). */
static nb_status check_args(nb_graph *g, nb_node *loss, nb_node *const *wrt, int n_wrt)
{
    if (!g) return NB_ERR_ARG;
    if (!loss) return nb__missing(g, "the loss to check");
    for (int k = 0; k < n_wrt; k++)
        if (!wrt || !wrt[k]) return nb__missing(g, "a tensor to check");
    nb__begin(g);
    return NB_OK;
}

nb_status nb_gradcheck(nb_graph *g, nb_node *loss, nb_node *const *wrt, int n_wrt,
                       const nb_bind *binds, int n_binds, const nb_feed *feeds, int n_feeds,
                       const nb_gc_opts *opts, nb_gc_result *results)
{
    nb_status st0 = check_args(g, loss, wrt, n_wrt);
    if (st0) return st0;
    if ((n_wrt > 0 && !results) || n_wrt < 0 || (n_feeds > 0 && !feeds))
        return nb__fail(g, NB_ERR_ARG, "gradcheck: no results array or no feeds given");
    char err[NB_ERR_CAP] = "";
    nb_status st = check(g, loss, wrt, n_wrt, binds, n_binds, feeds, n_feeds, opts, results, err,
                         sizeof err);
    return st ? nb__fail(g, st, "%s", err) : NB_OK;
}

/* ---- the f32 kernels against the f64 ones ---------------------------------- */

/* One precision's side of the comparison: its loss and gradient nodes, a plan
 * computing them, and the f32 copies of the feeds. */
typedef struct side {
    nb_graph *g;
    nb_node **outs;   /* loss, then a gradient per checked tensor */
    nb_plan *plan;
    void **owned;     /* converted feeds */
} side;

static nb_status twin_of(nb_graph *g32, const nb_node *n, nb_dtype want, nb_node **out, char *err,
                         size_t cap)
{
    nb_node *t = *out = nb_graph_find(g32, n->name);
    if (!t) {
        snprintf(err, cap, "f32 check: the f32 graph has no node '%s'", n->name);
        return NB_ERR_NAME;
    }
    if (t->dtype != want || t->kind != n->kind) {
        snprintf(err, cap, "f32 check: node '%s' is %s in the f32 graph, not %s", n->name,
                 nb_dtype_name(t->dtype), nb_dtype_name(want));
        return NB_ERR_DTYPE;
    }
    return NB_OK;
}

static nb_dtype twin_dtype(nb_dtype dt) { return dt == NB_F64 ? NB_F32 : dt; }

/* The same point: every param of g32 takes the (rounded) value of g's param
 * of the same name; op state (batchnorm's running statistics) included. */
static nb_status copy_params(const nb_graph *g, nb_graph *g32, char *err, size_t cap)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        const nb_node *p = g->nodes[i];
        nb_node *q;
        if (p->kind != NB_NODE_PARAM || p->transient) continue;
        nb_status st = twin_of(g32, p, twin_dtype(p->dtype), &q, err, cap);
        if (st) return st;
        size_t n = nb_tensor_numel(&p->value);
        if (p->dtype != NB_F64) memcpy(q->value.data, p->value.data, nb_tensor_bytes(&p->value));
        else
            for (size_t k = 0; k < n; k++) ((float *)q->value.data)[k] = (float)((const double *)p->value.data)[k];
    }
    return NB_OK;
}

static nb_status plan_side(side *s, nb_node *loss, nb_node *const *wrt, int n_wrt, char *err, size_t cap)
{
    nb_status st = NB_ERR_NOMEM;
    if (!(s->outs = nb_calloc((size_t)n_wrt + 1, sizeof *s->outs))) goto fail;
    s->outs[0] = loss;
    if ((st = nb_grad(s->g, loss, wrt, n_wrt, s->outs + 1)) ||
        (st = nb_plan_new(s->g, s->outs, n_wrt + 1, &s->plan)))
        snprintf(err, cap, "%s", nb_graph_error(s->g));
    return st;
fail:
    snprintf(err, cap, "out of memory");
    return st;
}

/* Binds and feeds one side; the f32 side gets the feeds rounded to f32. */
static nb_status feed_side(side *s, bool is32, const nb_gc_opts *o, const nb_bind *binds, int n_binds,
                           const nb_feed *feeds, int n_feeds, char *err, size_t cap)
{
    nb_status st = nb_plan_set_training(s->plan, o->training);
    if (!st) st = nb_plan_bind(s->plan, binds, n_binds);
    if (st) snprintf(err, cap, "%s", nb_plan_error(s->plan));
    if (!st && is32 && !(s->owned = nb_calloc((size_t)n_feeds + 1, sizeof *s->owned))) {
        snprintf(err, cap, "out of memory");
        return NB_ERR_NOMEM;
    }
    for (int i = 0; i < n_feeds && !st; i++) {
        nb_node *x = (nb_node *)feeds[i].node;
        const void *data = feeds[i].data;
        if (is32 && !(st = twin_of(s->g, feeds[i].node, twin_dtype(x->dtype), &x, err, cap)) &&
            x->dtype == NB_F32) {
            int64_t shape[NB_MAX_DIMS];
            size_t n = 0;
            int rank = nb_plan_shape(s->plan, x, shape);
            if (rank < 0 || nb_shape_numel(rank, shape, &n) || !(s->owned[i] = nb_malloc(n ? n * 4 : 4))) {
                snprintf(err, cap, "f32 check: cannot make the f32 value of input '%s'", x->name);
                return NB_ERR_NOMEM;
            }
            for (size_t k = 0; k < n; k++) ((float *)s->owned[i])[k] = (float)((const double *)data)[k];
            data = s->owned[i];
        }
        if (!st && (st = nb_plan_set(s->plan, x, data))) snprintf(err, cap, "%s", nb_plan_error(s->plan));
    }
    return st;
}

static nb_status run_side(side *s, const nb_gc_opts *o, char *err, size_t cap)
{
    nb_status st = run(s->plan, o);
    if (st) snprintf(err, cap, "%s", nb_plan_error(s->plan));
    return st;
}

/* Where the f32 run first went non-finite: the same run again, checked. */
static void first_bad(side *s, const nb_gc_opts *o, char *name, size_t cap)
{
    const nb_node *bad = NULL;
    if (o->training) nb_plan_set_seed(s->plan, o->seed);
    if (!nb_plan_run_checked(s->plan, &bad) && bad) snprintf(name, cap, "%s (%s)", bad->name, nb_node_op(bad));
}

static double value_at(const void *data, nb_dtype dt, size_t i)
{
    return dt == NB_F32 ? ((const float *)data)[i] : ((const double *)data)[i];
}

static double max_abs(const double *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(v[i]));
    return m;
}

/* g32 against g64 over every element of one tensor, the absolute tolerance
 * scaled by `scale`; returns whether some element of the f32 gradient is not
 * finite. */
static bool compare(const double *g64, const float *g32, double scale, const nb_gc_opts *o, nb_gc_result *r)
{
    bool bad32 = false;
    r->pass = true;
    for (size_t i = 0; i < r->numel; i++) {
        double err = fabs((double)g32[i] - g64[i]), rel = err / fmax(fabs(g64[i]), 1e-12);
        bad32 |= !isfinite(g32[i]);
        r->checked++;
        if (!(err <= o->f32_atol * scale + o->f32_rtol * fabs(g64[i]))) {
            r->failures++;
            r->pass = false;
        }
        note_worst(r, err, rel, i, i == 0);
    }
    return bad32;
}

static nb_status check_f32(nb_graph *g, nb_node *loss, nb_node *const *wrt, int n_wrt, nb_graph *g32,
                           const nb_bind *binds, int n_binds, const nb_feed *feeds, int n_feeds,
                           const nb_gc_opts *opts, nb_gc_result *results, char *err, size_t cap)
{
    nb_gc_opts o = opts ? *opts : NB_GC_DEFAULTS;
    side s64 = {g, NULL, NULL, NULL}, s32 = {g32, NULL, NULL, NULL};
    nb_node *loss32, **wrt32 = nb_calloc((size_t)n_wrt + 1, sizeof *wrt32);
    nb_status st = wrt32 ? NB_OK : NB_ERR_NOMEM;
    if (!st && loss->dtype != NB_F64) {
        st = NB_ERR_ARG;
        snprintf(err, cap, "f32 check: the loss '%s' must be f64 in the f64 graph", loss->name);
    }
    if (!st) st = twin_of(g32, loss, NB_F32, &loss32, err, cap);
    for (int k = 0; k < n_wrt && !st; k++) st = twin_of(g32, wrt[k], NB_F32, &wrt32[k], err, cap);
    if (!st) st = copy_params(g, g32, err, cap);
    if (!st) st = plan_side(&s64, loss, wrt, n_wrt, err, cap);
    if (!st) st = plan_side(&s32, loss32, wrt32, n_wrt, err, cap);
    if (!st) st = feed_side(&s64, false, &o, binds, n_binds, feeds, n_feeds, err, cap);
    if (!st) st = feed_side(&s32, true, &o, binds, n_binds, feeds, n_feeds, err, cap);
    if (!st) st = run_side(&s64, &o, err, cap);
    if (!st) st = run_side(&s32, &o, err, cap);
    bool bad32 = false;
    double largest = 0;  /* of every gradient checked */
    for (int k = 0; k < n_wrt && !st; k++) {
        nb_gc_result *r = &results[k];
        int64_t shape[NB_MAX_DIMS];
        int rank = nb_plan_shape(s64.plan, wrt[k], shape);
        memset(r, 0, sizeof *r);
        r->node = wrt[k];
        snprintf(r->name, sizeof r->name, "%s", wrt[k]->name);
        nb_shape_numel(rank, shape, &r->numel);
        largest = fmax(largest, max_abs(nb_plan_get(s64.plan, s64.outs[k + 1]), r->numel));
    }
    /* atol is relative to the tensor's largest gradient, but not below 1/100
     * of the largest of all: a gradient that is zero up to rounding (a bias
     * before batchnorm) is rounding noise of that size in both precisions */
    for (int k = 0; k < n_wrt && !st; k++) {
        const double *g64 = nb_plan_get(s64.plan, s64.outs[k + 1]);
        double scale = fmax(max_abs(g64, results[k].numel), 1e-2 * largest);
        bad32 |= compare(g64, nb_plan_get(s32.plan, s32.outs[k + 1]), scale, &o, &results[k]);
    }
    if (!st && (bad32 || !isfinite(value_at(nb_plan_get(s32.plan, loss32), NB_F32, 0)))) {
        char name[128] = "";
        first_bad(&s32, &o, name, sizeof name);
        for (int k = 0; k < n_wrt; k++) snprintf(results[k].first_bad, sizeof results[k].first_bad, "%s", name);
    }
    if (st == NB_ERR_NOMEM && !err[0]) snprintf(err, cap, "out of memory");
    for (int i = 0; s32.owned && i < n_feeds; i++) nb_free(s32.owned[i]);
    nb_free(s32.owned);
    nb_plan_free(s64.plan);
    nb_plan_free(s32.plan);
    nb_free(s64.outs);
    nb_free(s32.outs);
    nb_free(wrt32);
    return st;
}

nb_status nb_gradcheck_f32(nb_graph *g, nb_node *loss, nb_node *const *wrt, int n_wrt, nb_graph *g32,
                           const nb_bind *binds, int n_binds, const nb_feed *feeds, int n_feeds,
                           const nb_gc_opts *opts, nb_gc_result *results)
{
    nb_status st0 = check_args(g, loss, wrt, n_wrt);
    if (st0) return st0;
    if (!g32 || (n_wrt > 0 && !results) || n_wrt < 0 || (n_feeds > 0 && !feeds))
        return nb__fail(g, NB_ERR_ARG, "f32 check: no f32 graph, results array or feeds given");
    char err[NB_ERR_CAP] = "";
    nb_status st = check_f32(g, loss, wrt, n_wrt, g32, binds, n_binds, feeds, n_feeds, opts, results, err,
                             sizeof err);
    return st ? nb__fail(g, st, "%s", err) : NB_OK;
}

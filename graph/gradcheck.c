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

static double *data_of(checker *c, nb_node *x)
{
    return x->kind == NB_NODE_PARAM ? x->value.data : nb_plan_input_buffer(c->plan, x);
}

/* The one-sided slopes are far apart (the difference straddles a kink such as
 * relu at 0 or a max tie) and the analytic gradient lies between them, as a
 * one-sided or averaged derivative does. A wrong gradient next to a kink, or a
 * loss that changes between runs, is still a failure. */
static bool straddles_kink(double analytic, double f0, double fp, double fm, double eps, double tol)
{
    double up = (fp - f0) / eps, down = (f0 - fm) / eps;
    if (fabs(up - down) <= 100 * tol + 1e-3) return false;
    double slack = tol + 1e-6 * fabs(up - down);  /* the one-sided slopes carry O(eps) error */
    return analytic >= fmin(up, down) - slack && analytic <= fmax(up, down) + slack;
}

static nb_status check_one(checker *c, nb_node *x, const double *analytic, double f0, nb_rng *rng,
                           nb_gc_result *r)
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
            if (st) return st;
        }
        double num = (fp - fm) / (2 * eps), abs_err = fabs(analytic[i] - num);
        double rel = abs_err / fmax(fabs(num), 1e-12);
        double tol = c->o->atol + c->o->rtol * fabs(num);
        r->checked++;
        if (abs_err > tol) {
            if (straddles_kink(analytic[i], f0, fp, fm, eps, tol)) {
                r->kinks++;
                continue;
            }
            r->failures++;
            r->pass = false;
        }
        if (abs_err > r->max_abs || s == 0) {
            r->max_abs = abs_err;
            r->worst = i;
        }
        if (rel > r->max_rel) r->max_rel = rel;
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
        if ((st = check_one(&c, wrt[k], analytic[k], f0, &rng, &results[k]))) goto plan_err;
    st = NB_OK;
    goto done;
plan_err:
    snprintf(err, cap, "%s", nb_plan_error(c.plan));
done:
    if (st == NB_ERR_NOMEM && err && !err[0]) snprintf(err, cap, "out of memory");
    for (int k = 0; analytic && k < n_wrt; k++) nb_free(analytic[k]);
    nb_free(analytic);
    nb_free(outs);
    nb_plan_free(c.plan);
    nb_plan_free(full);
    return st;
}

nb_status nb_gradcheck(nb_graph *g, nb_node *loss, nb_node *const *wrt, int n_wrt,
                       const nb_bind *binds, int n_binds, const nb_feed *feeds, int n_feeds,
                       const nb_gc_opts *opts, nb_gc_result *results)
{
    if (!g) return NB_ERR_ARG;
    if (!loss) return nb__missing(g, "the loss to check");
    for (int k = 0; k < n_wrt; k++)
        if (!wrt || !wrt[k]) return nb__missing(g, "a tensor to check");
    nb__begin(g);
    if ((n_wrt > 0 && !results) || n_wrt < 0 || (n_feeds > 0 && !feeds))
        return nb__fail(g, NB_ERR_ARG, "gradcheck: no results array or no feeds given");
    char err[NB_ERR_CAP] = "";
    nb_status st = check(g, loss, wrt, n_wrt, binds, n_binds, feeds, n_feeds, opts, results, err,
                         sizeof err);
    return st ? nb__fail(g, st, "%s", err) : NB_OK;
}

/* ---- checking one op on one case ----------------------------------------- */

static int parse_shape(const char *spec, int64_t *shape, bool *is_i32)
{
    *is_i32 = !strncmp(spec, "i32:", 4);
    if (*is_i32) spec += 4;
    int rank = 0;
    while (*spec && rank < NB_MAX_DIMS) {
        char *end;
        shape[rank++] = strtoll(spec, &end, 10);
        spec = *end == ',' ? end + 1 : end;
        if (end == spec && *end) break;
    }
    return rank;
}

static void *random_data(nb_rng *rng, bool is_i32, size_t n, const nb_op_case *c)
{
    if (is_i32) {
        int32_t *d = nb_malloc(n * sizeof *d);
        for (size_t i = 0; d && i < n; i++) d[i] = (int32_t)(nb_rng_next(rng) % (uint64_t)(c->classes > 0 ? c->classes : 2));
        return d;
    }
    double lo = c->lo, hi = c->hi, *d = nb_malloc(n * sizeof *d);
    if (lo == 0 && hi == 0) lo = -1, hi = 1;
    for (size_t i = 0; d && i < n; i++) d[i] = lo + (hi - lo) * nb_rng_uniform(rng);
    return d;
}

nb_status nb_gradcheck_op(const nb_op_def *op, const nb_op_case *c, const nb_gc_opts *opts,
                          nb_gc_result *results, int *n_results)
{
    char *err = nb__thread_err();
    size_t cap = NB_ERR_CAP;
    if (!op || !c || !results || !n_results)
        return nb__thread_fail(NB_ERR_ARG, "gradcheck: no op, case or results given");
    nb_graph *g = nb_graph_new();
    nb_gc_opts o = opts ? *opts : NB_GC_DEFAULTS;
    nb_rng rng;
    nb_rng_seed(&rng, o.seed ^ 0x5eed);
    nb_node *in[7] = {0}, *wrt[6];
    nb_feed feeds[7];
    void *data[7] = {0};
    int n_in = 0, n_wrt = 0;
    nb_status st = NB_ERR_NOMEM;
    *n_results = 0;
    if (!g) goto done;
    for (; n_in < 6 && c->in[n_in]; n_in++) {
        int64_t shape[NB_MAX_DIMS];
        nb_dim dims[NB_MAX_DIMS];
        bool is_i32;
        int rank = parse_shape(c->in[n_in], shape, &is_i32);
        size_t n;
        nb_shape_numel(rank, shape, &n);
        for (int d = 0; d < rank; d++) dims[d] = NB_DIM(shape[d]);
        char name[8] = {(char)('a' + n_in), 0};
        in[n_in] = nb_input(g, name, is_i32 ? NB_I32 : NB_F64, rank, dims);
        if (!in[n_in] || !(data[n_in] = random_data(&rng, is_i32, n, c))) goto graph_err;
        feeds[n_in] = (nb_feed){in[n_in], data[n_in]};
        uint64_t stop = op->no_grad | op->shape_only;
        if (!is_i32 && !nb_needs_grad(stop, n_in)) wrt[n_wrt++] = in[n_in];
    }
    nb_node *y = nb_apply(g, op, "y", in, n_in, c->attrs, c->n_attrs);
    if (!y) goto graph_err;
    /* loss = sum(y * R): a random R makes every output element matter differently */
    nb_dim rdims[NB_MAX_DIMS];
    int64_t rshape[NB_MAX_DIMS];
    for (int d = 0; d < y->shape.rank; d++) rdims[d] = NB_DIM(rshape[d] = y->shape.d[d].c);
    nb_node *r = nb_input(g, "R", NB_F64, y->shape.rank, rdims);
    nb_node *loss = nb_sum(g, nb_mul(g, y, r), NULL, 0, false);
    size_t rn;
    nb_shape_numel(y->shape.rank, rshape, &rn);
    nb_op_case unit = {.lo = -1, .hi = 1};
    if (!loss || !(data[n_in] = random_data(&rng, false, rn, &unit))) goto graph_err;
    feeds[n_in] = (nb_feed){r, data[n_in]};
    st = nb_gradcheck(g, loss, wrt, n_wrt, NULL, 0, feeds, n_in + 1, &o, results);
    if (!st) *n_results = n_wrt;
    else snprintf(err, cap, "%s", nb_graph_error(g));
    goto done;
graph_err:
    st = nb_graph_status(g) ? nb_graph_status(g) : NB_ERR_NOMEM;
    snprintf(err, cap, "%s", g ? nb_graph_error(g) : "out of memory");
done:
    if (st == NB_ERR_NOMEM && !err[0]) snprintf(err, cap, "out of memory");
    for (int i = 0; i < 7; i++) nb_free(data[i]);
    nb_graph_free(g);
    return st;
}

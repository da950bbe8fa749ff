/* Gradient check of a whole model (what `nabla gradcheck MODEL` does, and
 * what the tests call directly): bind the free dimensions, feed every input
 * (from files, or random data that suits it), make sure the forward pass is
 * finite, then nb_gradcheck every trainable param and float input and print a
 * row per tensor. In training mode every run starts from the same seed, so
 * dropout keeps one mask throughout. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const CMD = "gradcheck";

#define MAX_WRT 512

typedef struct gc_run {
    nb_model *m;
    nb_graph *g;
    const nbt_gc_cfg *cfg;
    nbt_dims dims;
    nbt_inputs given;
    nb_feed feeds[NBT_MAX_FEEDS * 4];
    void *owned[NBT_MAX_FEEDS * 4];  /* random data made here */
    int n_feeds, n_owned;
    nb_node *wrt[MAX_WRT];
    int n_wrt;
} gc_run;

/* ---- which data suits an input ------------------------------------------- */

/* The softmax_cross_entropy node that takes x as its labels, or NULL. */
static const nb_node *labels_of(const nb_graph *g, const nb_node *x)
{
    for (size_t i = 0; i < nb_graph_num_nodes(g); i++) {
        const nb_node *n = nb_graph_node(g, i);
        if (nb_node_kind_of(n) == NB_NODE_OP && !strcmp(nb_node_op(n), "softmax_cross_entropy") &&
            nb_node_num_inputs(n) > 1 && nb_node_input(n, 1) == x)
            return n;
    }
    return NULL;
}

/* Classes K of a labels input: the last dim of the logits it is scored
 * against; 2 when it feeds no softmax_cross_entropy. */
static int64_t classes_of(const gc_run *r, const nb_node *sce)
{
    int64_t shape[NB_MAX_DIMS];
    if (!sce) return 2;
    const nb_node *logits = nb_node_input(sce, 0);
    int rank = nb_node_shape_bound(r->g, logits, r->dims.b, r->dims.n, shape);
    return rank > 0 && shape[rank - 1] > 0 ? shape[rank - 1] : 2;
}

/* The --range of input x, or NULL. */
static const nbt_range *range_of(const gc_run *r, const nb_node *x)
{
    for (int i = 0; i < r->cfg->n_ranges; i++)
        if (!strcmp(r->cfg->ranges[i].name, nb_node_name(x))) return &r->cfg->ranges[i];
    return NULL;
}

/* i32 labels: valid class ids. Float labels of a cross-entropy: one-hot rows
 * of a permutation (a real distribution, as the loss expects). Anything
 * else: U(-1, 1). */
static void fill_random(const gc_run *r, const nb_node *x, const int64_t *shape, int rank, size_t n,
                        void *data, nb_rng *rng)
{
    const nb_node *sce = labels_of(r->g, x);
    if (nb_node_dtype(x) == NB_I32) {
        uint64_t k = (uint64_t)classes_of(r, sce);
        for (size_t i = 0; i < n; i++) ((int32_t *)data)[i] = (int32_t)(nb_rng_next(rng) % k);
        return;
    }
    double *d = data;
    const nbt_range *range = range_of(r, x);
    if (range) {
        for (size_t i = 0; i < n; i++) d[i] = range->lo + (range->hi - range->lo) * nb_rng_uniform(rng);
        return;
    }
    if (sce && rank >= 1 && shape[rank - 1] > 0) {
        /* rows of a shuffled identity: distinct classes while there are rows to spare */
        size_t k = (size_t)shape[rank - 1], *perm = malloc(k * sizeof *perm);
        for (size_t j = 0; perm && j < k; j++) perm[j] = j;
        for (size_t j = k; perm && j > 1; j--) {
            size_t o = (size_t)(nb_rng_next(rng) % j), t = perm[j - 1];
            perm[j - 1] = perm[o], perm[o] = t;
        }
        memset(d, 0, n * sizeof *d);
        for (size_t row = 0; row < n / k; row++) d[row * k + (perm ? perm[row % k] : row % k)] = 1;
        free(perm);
        return;
    }
    for (size_t i = 0; i < n; i++) d[i] = 2 * nb_rng_uniform(rng) - 1;
}

static int feed_inputs(gc_run *r)
{
    nb_rng rng;
    nb_rng_seed(&rng, r->cfg->opts.seed ^ 0x1a2b3c4dULL);
    for (size_t i = 0; i < nb_model_num_inputs(r->m); i++) {
        nb_node *x = nb_model_input(r->m, i);
        const nb_tensor *t = nbt_input_of(&r->given, x);
        int64_t shape[NB_MAX_DIMS];
        int rank = nb_node_shape_bound(r->g, x, r->dims.b, r->dims.n, shape);
        size_t n;
        if (t) {
            r->feeds[r->n_feeds++] = (nb_feed){x, t->data};
            continue;
        }
        if (rank < 0 || nb_shape_numel(rank, shape, &n))
            return nbt_fail(CMD, "input '%s': its shape cannot be bound", nb_node_name(x));
        void *data = malloc((n ? n : 1) * nb_dtype_size(nb_node_dtype(x)));
        if (!data) return nbt_fail(CMD, "out of memory");
        r->owned[r->n_owned++] = data;
        fill_random(r, x, shape, rank, n, data, &rng);
        r->feeds[r->n_feeds++] = (nb_feed){x, data};
    }
    return NBT_OK;
}

/* --dim, then sizes read from --in arrays, then --batch for the rest. */
/* Each --range names a float input that no --in gives. */
static int check_ranges(gc_run *r)
{
    int rc = NBT_OK;
    for (int i = 0; i < r->cfg->n_ranges; i++) {
        nb_node *x = nbt_find_input(CMD, r->m, r->cfg->ranges[i].name, &rc);
        if (!x) return rc;
        if (nb_node_dtype(x) == NB_I32)
            return nbt_fail(CMD, "--range %s: input '%s' is i32 (class labels get valid class ids)",
                            nb_node_name(x), nb_node_name(x));
        if (nbt_input_of(&r->given, x))
            return nbt_fail(CMD, "input '%s' has both --in and --range", nb_node_name(x));
    }
    return NBT_OK;
}

static int bind_dims(gc_run *r)
{
    r->dims = r->cfg->dims;
    if (nbt_check_dim_names(CMD, r->g, &r->dims) ||
        nbt_read_inputs(CMD, r->m, &r->cfg->feeds, &r->dims, &r->given) || check_ranges(r))
        return NBT_ERROR;
    for (int k = 0; k < nb_graph_num_syms(r->g); k++)
        if (!nbt_dim_value(&r->dims, nb_graph_sym(r->g, k)) &&
            nbt_bind(CMD, &r->dims, nb_graph_sym(r->g, k), r->cfg->batch, "--batch"))
            return NBT_ERROR;
    return NBT_OK;
}

/* ---- the forward pass must be finite -------------------------------------- */

/* How to keep random inputs inside the ops' domains: names the random float
 * inputs that `bad` depends on (all of them when bad is NULL), with their
 * range, and the two flags. "" when no random input is involved. */
static void domain_hint(const gc_run *r, const nb_node *bad, char *buf, size_t cap)
{
    size_t n = nb_model_num_inputs(r->m), len = 0, k = 0;
    const char *first = NULL;
    nb_node *in[NBT_MAX_FEEDS * 4];
    bool dep[NBT_MAX_FEEDS * 4];
    buf[0] = 0;
    for (size_t i = 0; i < n && k < NBT_MAX_FEEDS * 4; i++) {
        nb_node *x = nb_model_input(r->m, i);
        if (nb_node_dtype(x) != NB_I32 && !nbt_input_of(&r->given, x)) in[k++] = x;
    }
    if (bad && nbt_depends_on(CMD, r->g, (nb_node *const *)&bad, 1, in, (int)k, dep)) return;
    for (size_t i = 0; i < k && len < cap; i++) {
        if (bad && !dep[i]) continue;
        const nbt_range *range = range_of(r, in[i]);
        if (!first) first = nb_node_name(in[i]);
        len += (size_t)snprintf(buf + len, cap - len, "%s'%s' (U(%g, %g))",
                                len ? ", " : "; it depends on random input ", nb_node_name(in[i]),
                                range ? range->lo : -1.0, range ? range->hi : 1.0);
    }
    if (len && len < cap)
        snprintf(buf + len, cap - len, ": random inputs may leave an op's domain (log of a negative); "
                 "give the values with --in %s=FILE.npy or a range with --range %s=LO:HI", first, first);
}

static int forward_finite(gc_run *r, double *loss_value)
{
    nb_node *loss = nb_model_loss(r->m);
    nb_plan *p = NULL;
    const nb_node *bad = NULL;
    int rc = NBT_OK;
    if (nb_plan_new(r->g, &loss, 1, &p)) return nbt_fail(CMD, "%s", nb_graph_error(r->g));
    nb_status st = nb_plan_set_training(p, r->cfg->opts.training);
    nb_plan_set_seed(p, r->cfg->opts.seed);  /* the masks nb_gradcheck will use */
    if (!st) st = nb_plan_bind(p, r->dims.b, r->dims.n);
    for (int i = 0; i < r->n_feeds && !st; i++) st = nb_plan_set(p, r->feeds[i].node, r->feeds[i].data);
    if (!st) st = nb_plan_run_checked(p, &bad);
    if (st)
        rc = nbt_fail(CMD, "%s", nb_plan_error(p));
    else if (bad) {
        char hint[1024];
        domain_hint(r, bad, hint, sizeof hint);
        rc = nbt_fail(CMD, "the forward pass is not finite: node '%s' (%s) holds a NaN or an "
                      "infinity with these inputs and params%s", nb_node_name(bad), nb_node_op(bad), hint);
    }
    else
        *loss_value = *(const double *)nb_plan_get(p, loss);
    nb_plan_free(p);
    return rc;
}

/* ---- the check and its table ----------------------------------------------- */

static void print_header(const gc_run *r, double loss, FILE *out)
{
    const nb_gc_opts *o = &r->cfg->opts;
    fprintf(out, "gradcheck of '%s' in f64, %s mode, loss '%s' = %.6g", nb_model_name(r->m),
            o->training ? "training" : "eval", nb_node_name(nb_model_loss(r->m)), loss);
    for (int i = 0; i < r->dims.n; i++)
        fprintf(out, "%s%s=%" PRId64, i ? ", " : "; ", r->dims.b[i].sym, r->dims.b[i].value);
    fprintf(out, "\neps %g, pass when |analytic - numeric| <= %g + %g*|numeric|, ", o->eps, o->atol, o->rtol);
    if (o->max_elems) fprintf(out, "at most %zu elements per tensor\n\n", o->max_elems);
    else fprintf(out, "every element\n\n");
}

typedef struct widths {
    int name, shape;
} widths;

static widths measure(const gc_run *r)
{
    widths w = {6, 5};
    char sh[128];
    for (int i = 0; i < r->n_wrt; i++) {
        int ln = (int)strlen(nb_node_name(r->wrt[i]));
        int ls = nb_node_shape_str_bound(r->g, r->wrt[i], r->dims.b, r->dims.n, sh, sizeof sh);
        if (ln > w.name) w.name = ln;
        if (ls > w.shape) w.shape = ls;
    }
    return w;
}

static void print_row(const gc_run *r, widths w, const nb_gc_result *res, FILE *out)
{
    int64_t shape[NB_MAX_DIMS];
    int rank = nb_node_shape_bound(r->g, res->node, r->dims.b, r->dims.n, shape);
    char sh[128], worst[128], count[64];
    nb_node_shape_str_bound(r->g, res->node, r->dims.b, r->dims.n, sh, sizeof sh);
    nbt_unravel(res->worst, rank < 0 ? 0 : rank, shape, worst, sizeof worst);
    snprintf(count, sizeof count, "%zu/%zu", res->checked, res->numel);
    fprintf(out, "%-*s  %-*s  %11.3e  %11.3e  %-14s  %11s  %5zu  %s\n", w.name, res->name, w.shape, sh, res->max_abs,
            res->max_rel, worst, count, res->kinks, res->pass ? "pass" : "FAIL");
}

/* The header and a row per tensor; returns how many fail. */
static int print_table(const gc_run *r, const nb_gc_result *res, FILE *out)
{
    widths w = measure(r);
    int failed = 0;
    fprintf(out, "%-*s  %-*s  %11s  %11s  %-14s  %11s  %5s  %s\n", w.name, "tensor", w.shape, "shape",
            "max abs err", "max rel err", "worst at", "checked", "kinks", "result");
    for (int i = 0; i < r->n_wrt; i++) {
        print_row(r, w, &res[i], out);
        failed += !res[i].pass;
    }
    return failed;
}

static int check_all(gc_run *r, FILE *out)
{
    nb_gc_result *res = calloc((size_t)r->n_wrt + 1, sizeof *res);
    if (!res) return nbt_fail(CMD, "out of memory");
    nb_status st = nb_gradcheck(r->g, nb_model_loss(r->m), r->wrt, r->n_wrt, r->dims.b, r->dims.n,
                                r->feeds, r->n_feeds, &r->cfg->opts, res);
    int rc = NBT_OK;
    if (st) {
        char hint[1024] = "";
        if (st == NB_ERR_RUNTIME) domain_hint(r, NULL, hint, sizeof hint);
        rc = nbt_fail(CMD, "%s%s", nb_graph_error(r->g), hint);
    } else {
        int failed = print_table(r, res, out);
        fprintf(out, "\n%d of %d tensors pass\n", r->n_wrt - failed, r->n_wrt);
        rc = failed ? NBT_MISMATCH : NBT_OK;
    }
    free(res);
    return rc;
}

/* The f32 plan's gradients against the f64 plan's at the same point. */
static int check_f32(gc_run *r, FILE *out)
{
    const nb_gc_opts *o = &r->cfg->opts;
    nb_gc_result *res = calloc((size_t)r->n_wrt + 1, sizeof *res);
    if (!res) return nbt_fail(CMD, "out of memory");
    nb_status st = nb_gradcheck_f32(r->g, nb_model_loss(r->m), r->wrt, r->n_wrt, nb_model_graph(r->cfg->m32),
                                    r->dims.b, r->dims.n, r->feeds, r->n_feeds, o, res);
    int rc = NBT_OK;
    if (st) {
        rc = nbt_fail(CMD, "f32: %s", nb_graph_error(r->g));
    } else {
        fprintf(out, "\nf32 kernels: the f32 plan's gradients against the f64 plan's at the same point,\n"
                     "pass when |g32 - g64| <= %g*max|g64| + %g*|g64| (max over the tensor, at least\n"
                     "1/100 of the largest gradient of all)\n\n", o->f32_atol, o->f32_rtol);
        int failed = print_table(r, res, out);
        if (r->n_wrt && res[0].first_bad[0])
            fprintf(out, "\nthe f32 run is not finite from node %s on\n", res[0].first_bad);
        fprintf(out, "\n%d of %d tensors pass in f32\n", r->n_wrt - failed, r->n_wrt);
        rc = failed ? NBT_MISMATCH : NBT_OK;
    }
    free(res);
    return rc;
}

static int collect_wrt(gc_run *r)
{
    for (size_t i = 0; i < nb_model_num_params(r->m) && r->n_wrt < MAX_WRT; i++)
        if (nb_param_trainable(nb_model_param(r->m, i)))  /* op state has no gradient */
            r->wrt[r->n_wrt++] = nb_model_param(r->m, i);
    for (size_t i = 0; i < nb_model_num_inputs(r->m) && r->n_wrt < MAX_WRT; i++)
        if (nb_node_dtype(nb_model_input(r->m, i)) != NB_I32) r->wrt[r->n_wrt++] = nb_model_input(r->m, i);
    if (!r->n_wrt) return nbt_fail(CMD, "the model has no param and no float input to check");
    return NBT_OK;
}

int nbt_gradcheck_model(nb_model *m, const nbt_gc_cfg *cfg, FILE *out)
{
    gc_run *r = calloc(1, sizeof *r);
    if (!r) return nbt_fail(CMD, "out of memory");
    r->m = m;
    r->g = nb_model_graph(m);
    r->cfg = cfg;
    nb_node *loss = nb_model_loss(m);
    double value = 0;
    int rc = NBT_OK;
    if (!loss) rc = nbt_fail(CMD, "the model names no 'loss:' to differentiate");
    else if (nb_node_dtype(loss) != NB_F64) rc = nbt_fail(CMD, "the model must be loaded in f64");
    if (!rc) rc = bind_dims(r);
    if (!rc) rc = feed_inputs(r);
    if (!rc) rc = collect_wrt(r);
    if (!rc) rc = forward_finite(r, &value);
    if (!rc) {
        print_header(r, value, out);
        rc = check_all(r, out);
        int rc32 = rc != NBT_ERROR && cfg->m32 ? check_f32(r, out) : NBT_OK;
        if (rc32 > rc) rc = rc32;
    }
    for (int i = 0; i < r->n_owned; i++) free(r->owned[i]);
    nbt_inputs_free(&r->given);
    free(r);
    return rc;
}

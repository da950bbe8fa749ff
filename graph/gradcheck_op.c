/* Gradient checks of one registered op on one of its cases: random inputs of
 * the case's shapes, loss = sum(op(inputs) * R) with a fixed random R, then
 * nb_gradcheck (f64 against central differences) or nb_gradcheck_f32 (the
 * f32 kernels against the f64 ones). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

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
        int32_t *d = nb_malloc((n ? n : 1) * sizeof *d);
        for (size_t i = 0; d && i < n; i++) d[i] = (int32_t)(nb_rng_next(rng) % (uint64_t)(c->classes > 0 ? c->classes : 2));
        return d;
    }
    double lo = c->lo, hi = c->hi, *d = nb_malloc((n ? n : 1) * sizeof *d);
    if (lo == 0 && hi == 0) lo = -1, hi = 1;
    for (size_t i = 0; d && i < n; i++) d[i] = lo + (hi - lo) * nb_rng_uniform(rng);
    return d;
}

/* One case built in a graph of dtype dt: inputs a, b, ... and R, the node y
 * and the loss; with data (f64 side only), the random values of the inputs. */
typedef struct gc_case {
    nb_node *in[7], *wrt[6], *loss;
    nb_feed feeds[7];
    void *data[7];
    int n_in, n_wrt;
} gc_case;

static bool build(nb_graph *g, nb_dtype dt, const nb_op_def *op, const nb_op_case *c, nb_rng *rng,
                  gc_case *k)
{
    for (; k->n_in < 6 && c->in[k->n_in]; k->n_in++) {
        int64_t shape[NB_MAX_DIMS];
        nb_dim dims[NB_MAX_DIMS];
        bool is_i32;
        int i = k->n_in, rank = parse_shape(c->in[i], shape, &is_i32);
        size_t n;
        nb_shape_numel(rank, shape, &n);
        for (int d = 0; d < rank; d++) dims[d] = NB_DIM(shape[d]);
        char name[8] = {(char)('a' + i), 0};
        k->in[i] = nb_input(g, name, is_i32 ? NB_I32 : dt, rank, dims);
        if (!k->in[i] || (rng && !(k->data[i] = random_data(rng, is_i32, n, c)))) return false;
        k->feeds[i] = (nb_feed){k->in[i], k->data[i]};
        uint64_t stop = op->no_grad | op->shape_only;
        if (!is_i32 && !nb_needs_grad(stop, i)) k->wrt[k->n_wrt++] = k->in[i];
    }
    nb_node *y = nb_apply(g, op, "y", k->in, k->n_in, c->attrs, c->n_attrs);
    if (!y) return false;
    /* loss = sum(y * R): a random R makes every output element matter differently */
    nb_dim rdims[NB_MAX_DIMS];
    int64_t rshape[NB_MAX_DIMS];
    for (int d = 0; d < y->shape.rank; d++) rdims[d] = NB_DIM(rshape[d] = y->shape.d[d].c);
    nb_node *r = nb_input(g, "R", dt, y->shape.rank, rdims);
    k->loss = nb_sum(g, nb_mul(g, y, r), NULL, 0, false);
    nb_op_case unit = {.lo = -1, .hi = 1};
    size_t rn;
    nb_shape_numel(y->shape.rank, rshape, &rn);
    if (!k->loss || (rng && !(k->data[k->n_in] = random_data(rng, false, rn, &unit)))) return false;
    k->feeds[k->n_in] = (nb_feed){r, k->data[k->n_in]};
    return true;
}

static nb_status check_case(const nb_op_def *op, const nb_op_case *c, const nb_gc_opts *opts,
                            nb_gc_result *results, int *n_results, bool f32)
{
    char *err = nb__thread_err();
    size_t cap = NB_ERR_CAP;
    if (!op || !c || !results || !n_results)
        return nb__thread_fail(NB_ERR_ARG, "gradcheck: no op, case or results given");
    nb_graph *g = nb_graph_new(), *g32 = f32 ? nb_graph_new() : NULL;
    nb_gc_opts o = opts ? *opts : NB_GC_DEFAULTS;
    nb_rng rng;
    nb_rng_seed(&rng, o.seed ^ 0x5eed);
    gc_case k = {0}, k32 = {0};
    nb_status st = NB_ERR_NOMEM;
    *n_results = 0;
    if (!g || (f32 && !g32)) goto done;
    if (!build(g, NB_F64, op, c, &rng, &k)) goto graph_err;
    if (f32 && !build(g32, NB_F32, op, c, NULL, &k32)) {
        st = nb_graph_status(g32) ? nb_graph_status(g32) : NB_ERR_NOMEM;
        snprintf(err, cap, "in f32: %s", nb_graph_error(g32));
        goto done;
    }
    st = f32 ? nb_gradcheck_f32(g, k.loss, k.wrt, k.n_wrt, g32, NULL, 0, k.feeds, k.n_in + 1, &o, results)
             : nb_gradcheck(g, k.loss, k.wrt, k.n_wrt, NULL, 0, k.feeds, k.n_in + 1, &o, results);
    if (!st) *n_results = k.n_wrt;
    else snprintf(err, cap, "%s", nb_graph_error(g));
    goto done;
graph_err:
    st = nb_graph_status(g) ? nb_graph_status(g) : NB_ERR_NOMEM;
    snprintf(err, cap, "%s", nb_graph_error(g));
done:
    if (st == NB_ERR_NOMEM && !err[0]) snprintf(err, cap, "out of memory");
    for (int i = 0; i < 7; i++) nb_free(k.data[i]);
    nb_graph_free(g);
    nb_graph_free(g32);
    return st;
}

nb_status nb_gradcheck_op(const nb_op_def *op, const nb_op_case *c, const nb_gc_opts *opts,
                          nb_gc_result *results, int *n_results)
{
    return check_case(op, c, opts, results, n_results, false);
}

nb_status nb_gradcheck_op_f32(const nb_op_def *op, const nb_op_case *c, const nb_gc_opts *opts,
                              nb_gc_result *results, int *n_results)
{
    return check_case(op, c, opts, results, n_results, true);
}

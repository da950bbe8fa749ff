/* Every registered op, on every one of its gradcheck cases (random shapes,
 * broadcasting, size-1 dims, scalars): the gradient nodes agree with f64
 * central differences, for all inputs at once and for each input alone (the
 * rule is then told only that one needs a gradient). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

ParameterizedTestParameters(grad, op)
{
    static size_t idx[256];
    size_t n = nb_op_count();
    for (size_t i = 0; i < n && i < 256; i++) idx[i] = i;
    return cr_make_param_array(size_t, idx, n < 256 ? n : 256);
}

ParameterizedTest(size_t *i, grad, op)
{
    const nb_op_def *op = nb_op_at(*i);
    if (!op->backward) {
        /* gradient-only ops without their own rule are checked through their parent op */
        cr_assert_eq(op->n_cases, 0, "%s has cases but no gradient rule", op->name);
        return;
    }
    cr_assert_gt(op->n_cases, 0, "op %s has no gradcheck cases", op->name);
    for (int c = 0; c < op->n_cases; c++) {
        nb_gc_result r[6];
        int n = 0;
        char err[512] = "";
        nb_gc_opts o = NB_GC_DEFAULTS;
        o.seed = (uint64_t)c + 1;
        nb_status st = nb_gradcheck_op(op, &op->cases[c], &o, r, &n);
        cr_assert_eq(st, NB_OK, "%s case %d: %s", op->name, c, err);
        for (int k = 0; k < n; k++) {
            cr_expect(r[k].pass, "%s case %d input %d: max abs err %g at %zu (%zu failures)",
                      op->name, c, k, r[k].max_abs, r[k].worst, r[k].failures);
            cr_expect_eq(r[k].kinks, 0, "%s case %d input %d: %zu kinks", op->name, c, k, r[k].kinks);
            cr_expect_eq(r[k].checked, r[k].numel);
        }
    }
}

ParameterizedTestParameters(grad, op_one_input_at_a_time)
{
    static size_t idx[256];
    size_t n = nb_op_count();
    for (size_t i = 0; i < n && i < 256; i++) idx[i] = i;
    return cr_make_param_array(size_t, idx, n < 256 ? n : 256);
}

/* An input of a case's shape ("2,3", "" for a scalar, "i32:4" for class
 * ids) with random data from the case's range; the data goes to *data. */
static nb_node *case_input(nb_graph *g, const nb_op_case *c, int i, void **data)
{
    const char *spec = c->in[i];
    bool ids = !strncmp(spec, "i32:", 4);
    nb_dim dims[NB_MAX_DIMS];
    int rank = 0;
    size_t n = 1;
    for (const char *p = spec + (ids ? 4 : 0); *p && rank < NB_MAX_DIMS; rank++) {
        char *end;
        dims[rank] = NB_DIM(strtoll(p, &end, 10));
        n *= (size_t)dims[rank].size;
        p = *end == ',' ? end + 1 : end;
    }
    char name[2] = {(char)('a' + i), 0};
    double lo = c->lo == 0 && c->hi == 0 ? -1 : c->lo, hi = c->lo == 0 && c->hi == 0 ? 1 : c->hi;
    if (ids) {
        int32_t *d = malloc(n * sizeof *d);
        for (size_t j = 0; j < n; j++) d[j] = (int32_t)(rand() % (c->classes > 0 ? c->classes : 2));
        *data = d;
    } else {
        double *d = malloc(n * sizeof *d);
        for (size_t j = 0; j < n; j++) d[j] = lo + (hi - lo) * rand() / ((double)RAND_MAX + 1);
        *data = d;
    }
    return nb_input(g, name, ids ? NB_I32 : NB_F64, rank, dims);
}

/* d sum(op(inputs) * R) / d input k alone. */
static void check_alone(const nb_op_def *op, int ci, int k)
{
    const nb_op_case *c = &op->cases[ci];
    nb_graph *g = nb_graph_new();
    nb_node *in[6];
    nb_feed feeds[7];
    void *data[7] = {0};
    int n_in = 0;
    for (; n_in < 6 && c->in[n_in]; n_in++) {
        in[n_in] = case_input(g, c, n_in, &data[n_in]);
        feeds[n_in] = (nb_feed){in[n_in], data[n_in]};
    }
    nb_node *y = nb_apply(g, op, "y", in, n_in, c->attrs, c->n_attrs);
    cr_assert_not_null(y, "%s case %d: %s", op->name, ci, nb_graph_error(g));
    nb_dim rdims[NB_MAX_DIMS];
    size_t rn = 1;
    for (int d = 0; d < nb_node_rank(y); d++) {
        rdims[d] = NB_DIM(nb_node_dim(y, d));
        rn *= (size_t)rdims[d].size;
    }
    nb_node *r = nb_input(g, "R", NB_F64, nb_node_rank(y), rdims);
    double *rd = malloc(rn * sizeof *rd);
    for (size_t j = 0; j < rn; j++) rd[j] = 2.0 * rand() / ((double)RAND_MAX + 1) - 1;
    data[n_in] = rd;
    feeds[n_in] = (nb_feed){r, rd};
    nb_node *loss = nb_sum(g, nb_mul(g, y, r), NULL, 0, false);
    nb_gc_result res;
    nb_status st = nb_gradcheck(g, loss, &in[k], 1, NULL, 0, feeds, n_in + 1, NULL, &res);
    cr_assert_eq(st, NB_OK, "%s case %d input %d: %s", op->name, ci, k, nb_graph_error(g));
    cr_expect(res.pass, "%s case %d, input %d alone: max abs err %g at %zu (%zu failures)",
              op->name, ci, k, res.max_abs, res.worst, res.failures);
    for (int i = 0; i <= n_in; i++) free(data[i]);
    nb_graph_free(g);
}

ParameterizedTest(size_t *i, grad, op_one_input_at_a_time)
{
    const nb_op_def *op = nb_op_at(*i);
    if (!op->backward) return;
    srand(7);
    uint64_t stop = op->no_grad | op->shape_only;
    for (int c = 0; c < op->n_cases; c++) {
        int diff[6], n_diff = 0;
        for (int k = 0; k < 6 && op->cases[c].in[k]; k++)
            if (strncmp(op->cases[c].in[k], "i32:", 4) && !nb_needs_grad(stop, k)) diff[n_diff++] = k;
        for (int j = 0; n_diff > 1 && j < n_diff; j++) check_alone(op, c, diff[j]);
    }
}

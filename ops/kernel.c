/* Broadcasting iteration and common shape rules. */
#include <string.h>

#include "kernel.h"

void nb_iter_init(nb_iter *it, const nb_dims *out, int n_ops, const nb_dims *const *ops)
{
    memset(it, 0, sizeof *it);
    it->n_ops = n_ops;
    int r = out->rank;
    /* element strides of each operand, aligned with out, 0 where broadcast */
    int64_t st[NB_ITER_OPS][NB_MAX_DIMS];
    for (int k = 0; k < n_ops; k++) {
        int64_t s = 1;
        for (int i = r - 1; i >= 0; i--) {
            int j = ops[k]->rank - r + i;
            int64_t d = j >= 0 ? ops[k]->d[j] : 1;
            st[k][i] = (d == 1 && out->d[i] != 1) ? 0 : s;
            s *= d;
        }
    }
    /* merge axis i into the previous one when every operand is contiguous across them */
    int m = 0;
    for (int i = 0; i < r; i++) {
        if (out->d[i] == 1) continue;  /* size-1 axes never move */
        bool merge = m > 0;
        for (int k = 0; k < n_ops && merge; k++)
            merge = it->stride[k][m - 1] == st[k][i] * out->d[i];
        if (merge) {
            it->dim[m - 1] *= out->d[i];
            for (int k = 0; k < n_ops; k++) it->stride[k][m - 1] = st[k][i];
        } else {
            it->dim[m] = out->d[i];
            for (int k = 0; k < n_ops; k++) it->stride[k][m] = st[k][i];
            m++;
        }
    }
    if (m == 0) {  /* scalar or all ones: one row of one element */
        it->dim[0] = 1;
        for (int k = 0; k < n_ops; k++) it->stride[k][0] = 1;
        m = 1;
    }
    it->rank = m;
}

/* The rows whose index along the first axis is in [lo, hi) (rank >= 2). */
static void iter_rows_range(const nb_iter *it, void *ctx,
                            void (*row)(void *ctx, const int64_t *off, int64_t n), int64_t lo,
                            int64_t hi)
{
    int outer = it->rank - 1;
    int64_t idx[NB_MAX_DIMS] = {0}, off[NB_ITER_OPS] = {0};
    for (int64_t i = 0; i < outer; i++)
        if (it->dim[i] == 0) return;
    idx[0] = lo;
    for (int k = 0; k < it->n_ops; k++) off[k] = lo * it->stride[k][0];
    for (;;) {
        row(ctx, off, it->dim[outer]);
        int a = outer - 1;
        for (; a >= 0; a--) {
            idx[a]++;
            for (int k = 0; k < it->n_ops; k++) off[k] += it->stride[k][a];
            if (idx[a] < (a ? it->dim[a] : hi)) break;
            if (!a) return;
            for (int k = 0; k < it->n_ops; k++) off[k] -= it->stride[k][a] * it->dim[a];
            idx[a] = 0;
        }
        if (a < 0) return;
    }
}

void nb_iter_rows(const nb_iter *it, void *ctx, void (*row)(void *ctx, const int64_t *off, int64_t n))
{
    if (it->rank == 1) row(ctx, (const int64_t[NB_ITER_OPS]){0}, it->dim[0]);
    else iter_rows_range(it, ctx, row, 0, it->dim[0]);
}

/* Elementwise loops are memory-bound: a part is worth a thread from this many
 * elements on. */
#define ELEM_GRAIN 131072

typedef struct rows_job {
    const nb_iter *it;
    void *ctx;
    void (*row)(void *ctx, const int64_t *off, int64_t n);
} rows_job;

static void rows_part(void *arg, int64_t lo, int64_t hi, int part)
{
    const rows_job *j = arg;
    (void)part;
    if (j->it->rank > 1) {
        iter_rows_range(j->it, j->ctx, j->row, lo, hi);
        return;
    }
    int64_t off[NB_ITER_OPS];
    for (int k = 0; k < j->it->n_ops; k++) off[k] = lo * j->it->stride[k][0];
    j->row(j->ctx, off, hi - lo);
}

void nb_iter_rows_parallel(const nb_kctx *k, const nb_iter *it, void *ctx,
                           void (*row)(void *ctx, const int64_t *off, int64_t n))
{
    rows_job j = {it, ctx, row};
    int64_t per = 1;  /* elements per index of the axis split */
    for (int a = 1; a < it->rank; a++) per *= it->dim[a];
    int64_t grain = per >= ELEM_GRAIN ? 1 : (ELEM_GRAIN + per - 1) / (per ? per : 1);
    nb_kernel_parallel(k, it->dim[0], grain, rows_part, &j);
}

nb_status nb_rule_same(nb_shape_ctx *c)
{
    nb_status st = nb_shape_float_inputs(c);
    c->out = c->in[0];
    return st;
}

nb_status nb_rule_broadcast(nb_shape_ctx *c)
{
    nb_status st = nb_shape_float_inputs(c);
    return st ? st : nb_shape_broadcast(c, 0, 1, &c->out);
}

nb_status nb_rule_like(nb_shape_ctx *c)
{
    c->out = c->in[c->n_in - 1];
    if (c->in_dtype[0] != NB_I32) c->out_dtype = c->in_dtype[0];
    return NB_OK;
}

double nb_flops_per_out(const nb_kctx *k) { return (double)nb_dims_numel(&k->out_shape); }
double nb_flops_per_in(const nb_kctx *k) { return (double)nb_dims_numel(&k->in_shape[0]); }

double nb_flops_none(const nb_kctx *k)
{
    (void)k;
    return 0;
}

nb_status nb_grad_none(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)g, (void)y, (void)gy, (void)needs, (void)gx;
    return NB_OK;
}

struct binary_ctx {
    const char *a, *b;
    char *y;
    size_t es;
    int64_t sa, sb;
    nb_binrow row;
};

static void binary_row(void *ctx, const int64_t *off, int64_t n)
{
    struct binary_ctx *c = ctx;
    c->row(c->a + (size_t)off[1] * c->es, c->sa, c->b + (size_t)off[2] * c->es, c->sb,
           c->y + (size_t)off[0] * c->es, n);
}

nb_status nb_binary_run(const nb_kctx *k, nb_binrow f32, nb_binrow f64)
{
    nb_iter it;
    const nb_dims *ops[3] = {&k->out_shape, &k->in_shape[0], &k->in_shape[1]};
    nb_iter_init(&it, &k->out_shape, 3, ops);
    struct binary_ctx c = {k->in[0], k->in[1], k->out, nb_dtype_size(k->dtype),
                           it.stride[1][it.rank - 1], it.stride[2][it.rank - 1],
                           k->dtype == NB_F64 ? f64 : f32};
    nb_iter_rows_parallel(k, &it, &c, binary_row);
    return NB_OK;
}

typedef struct unary_job {
    const nb_kctx *k;
    nb_unrow f;
    double p0, p1;
} unary_job;

static void unary_part(void *arg, int64_t lo, int64_t hi, int part)
{
    const unary_job *j = arg;
    size_t es = nb_dtype_size(j->k->dtype);
    (void)part;
    j->f((const char *)j->k->in[0] + (size_t)lo * es, (char *)j->k->out + (size_t)lo * es, hi - lo,
         j->p0, j->p1);
}

nb_status nb_unary_run(const nb_kctx *k, nb_unrow f32, nb_unrow f64, double p0, double p1)
{
    unary_job j = {k, k->dtype == NB_F64 ? f64 : f32, p0, p1};
    nb_elementwise_parallel(k, (int64_t)nb_dims_numel(&k->out_shape), unary_part, &j);
    return NB_OK;
}

void nb_elementwise_parallel(const nb_kctx *k, int64_t n, nb_part_fn fn, void *arg)
{
    nb_kernel_parallel(k, n, ELEM_GRAIN, fn, arg);
}

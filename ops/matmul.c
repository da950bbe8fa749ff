/* matmul: y = op(a) · op(b) over the last two dims, where op transposes when
 * the attribute transpose_a / transpose_b is set; leading (batch) dims
 * broadcast as in NumPy. Gradient rules pass the flags instead of building
 * transposed copies, so every product, forward or backward, is one GEMM call
 * (or one per batch entry). */
#include <cblas.h>

#include "kernel.h"

enum { A_TA, A_TB };

static const nb_attr_def mm_attrs[] = {
    {"transpose_a", NB_ATTR_BOOL, false, {0}},
    {"transpose_b", NB_ATTR_BOOL, false, {0}},
};

/* ---- shape rule ---- */

/* The layout the inputs were expected in, for messages. */
static nb_status mm_fail(nb_shape_ctx *c, const char *why)
{
    bool ta = c->attr[A_TA].i[0], tb = c->attr[A_TB].i[0], bb = c->in[1].rank > 2;
    return nb_shape_fail(c, NB_ERR_SHAPE, "needs a %s and b %s%s; %s, %s%s",
                         ta ? "[..., K, M] (transpose_a)" : "[..., M, K]",
                         bb ? (tb ? "[..., N, K]" : "[..., K, N]") : (tb ? "[N, K]" : "[K, N]"),
                         tb ? " (transpose_b)" : "", nb_shape_desc(c, 0), nb_shape_desc(c, 1), why);
}

/* NumPy broadcast of the batch dims (all but the last two) into out. */
static bool batch_broadcast(const nb_shape *a, const nb_shape *b, nb_shape *out)
{
    int ra = a->rank - 2, rb = b->rank - 2;
    out->rank = ra > rb ? ra : rb;
    for (int i = 0; i < out->rank; i++) {
        int ia = ra - out->rank + i, ib = rb - out->rank + i;
        nb_sdim da = ia >= 0 ? a->d[ia] : nb_sdim_const(1);
        nb_sdim db = ib >= 0 ? b->d[ib] : nb_sdim_const(1);
        if (nb_sdim_eq(da, db) || nb_sdim_is(db, 1))
            out->d[i] = da;
        else if (nb_sdim_is(da, 1))
            out->d[i] = db;
        else
            return false;
    }
    return true;
}

static nb_status mm_shape(nb_shape_ctx *c)
{
    nb_status st = nb_shape_float_inputs(c);
    if (st) return st;
    const nb_shape *a = &c->in[0], *b = &c->in[1];
    if (a->rank < 2 || b->rank < 2) return mm_fail(c, " (both need rank >= 2)");
    bool ta = c->attr[A_TA].i[0], tb = c->attr[A_TB].i[0];
    nb_sdim m = a->d[a->rank - (ta ? 1 : 2)], ka = a->d[a->rank - (ta ? 2 : 1)];
    nb_sdim kb = b->d[b->rank - (tb ? 1 : 2)], n = b->d[b->rank - (tb ? 2 : 1)];
    if (!nb_sdim_eq(ka, kb)) return mm_fail(c, "");
    nb_shape out;
    if (!batch_broadcast(a, b, &out)) return mm_fail(c, " (the batch dims do not broadcast)");
    out.d[out.rank++] = m;
    out.d[out.rank++] = n;
    c->out = out;
    return NB_OK;
}

/* ---- kernel ---- */

/* One product C[M, N] = op(A) · op(B), row-major, in the output's dtype. */
typedef struct gemm {
    nb_dtype dt;
    bool ta, tb;
    blasint m, n, k, lda, ldb;
} gemm;

static void gemm_run(const gemm *p, const void *a, const void *b, void *c)
{
    enum CBLAS_TRANSPOSE ta = p->ta ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = p->tb ? CblasTrans : CblasNoTrans;
    if (p->dt == NB_F64)
        cblas_dgemm(CblasRowMajor, ta, tb, p->m, p->n, p->k, 1.0, a, p->lda, b, p->ldb, 0.0, c, p->n);
    else
        cblas_sgemm(CblasRowMajor, ta, tb, p->m, p->n, p->k, 1.0f, a, p->lda, b, p->ldb, 0.0f, c, p->n);
}

/* The batch loop: one GEMM per output batch entry, at broadcast offsets. */
typedef struct batch_ctx {
    const gemm *p;
    const char *a, *b;
    char *y;
    size_t sa, sb, sy;        /* bytes per matrix of a, b, y */
    int64_t inner[3];         /* inner strides of the batch iteration */
} batch_ctx;

static void batch_row(void *ctx, const int64_t *off, int64_t n)
{
    batch_ctx *c = ctx;
    for (int64_t i = 0; i < n; i++)
        gemm_run(c->p, c->a + (size_t)(off[1] + i * c->inner[1]) * c->sa,
                 c->b + (size_t)(off[2] + i * c->inner[2]) * c->sb,
                 c->y + (size_t)(off[0] + i * c->inner[0]) * c->sy);
}

/* The leading rank-2 dims of a shape. */
static nb_dims batch_of(const nb_dims *s)
{
    nb_dims b = *s;
    b.rank = s->rank - 2;
    return b;
}

static bool fits(int64_t v) { return v == (int64_t)(blasint)v; }

static nb_status mm_fwd(const nb_kctx *k)
{
    const nb_dims *as = &k->in_shape[0], *bs = &k->in_shape[1], *ys = &k->out_shape;
    bool ta = k->attr[A_TA].i[0], tb = k->attr[A_TB].i[0];
    int64_t m = ys->d[ys->rank - 2], n = ys->d[ys->rank - 1];
    int64_t kk = as->d[as->rank - (ta ? 2 : 1)];
    nb_dims ab = batch_of(as), bb = batch_of(bs), yb = batch_of(ys);
    int64_t a_batch = (int64_t)nb_dims_numel(&ab), b_batch = (int64_t)nb_dims_numel(&bb);
    if (!fits(m * a_batch) || !fits(n) || !fits(kk))
        return nb_kernel_fail(k, "matmul sizes exceed the BLAS integer range");
    gemm p = {k->dtype, ta, tb, (blasint)m, (blasint)n, (blasint)kk,
              (blasint)(ta ? m : kk), (blasint)(tb ? kk : n)};
    if (!ta && b_batch == 1) {
        /* a's batch rows follow one another: one GEMM with M' = batch * M */
        p.m = (blasint)(m * a_batch);
        gemm_run(&p, k->in[0], k->in[1], k->out);
        return NB_OK;
    }
    size_t es = nb_dtype_size(k->dtype);
    nb_iter it;
    const nb_dims *ops[3] = {&yb, &ab, &bb};
    nb_iter_init(&it, &yb, 3, ops);
    batch_ctx c = {&p, k->in[0], k->in[1], k->out, (size_t)(m * kk) * es, (size_t)(kk * n) * es,
                   (size_t)(m * n) * es,
                   {it.stride[0][it.rank - 1], it.stride[1][it.rank - 1], it.stride[2][it.rank - 1]}};
    nb_iter_rows(&it, &c, batch_row);
    return NB_OK;
}

/* 2 * M * N * K per batch entry */
static double mm_flops(const nb_kctx *k)
{
    const nb_dims *as = &k->in_shape[0];
    int64_t kk = as->d[as->rank - (k->attr[A_TA].i[0] ? 2 : 1)];
    return 2.0 * (double)nb_dims_numel(&k->out_shape) * (double)kk;
}

/* ---- gradient ---- */

static nb_node *mm(nb_graph *g, nb_node *a, nb_node *b, bool ta, bool tb)
{
    return nb_matmul_t(g, a, b, ta, tb);
}

/* y = op(A) · op(B): A's gradient. */
static nb_node *grad_a(nb_graph *g, nb_node *gy, nb_node *b, bool ta, bool tb)
{
    if (!ta) return tb ? mm(g, gy, b, 0, 0) : mm(g, gy, b, 0, 1);
    return tb ? mm(g, b, gy, 1, 1) : mm(g, b, gy, 0, 1);
}

/* B's gradient. With B 2-D and A [..., M, K] batched (no transpose_a), it sums
 * over the batch; viewing A and gy as (batch*M, K) and (batch*M, N) makes that
 * sum part of one GEMM. */
static nb_node *grad_b(nb_graph *g, nb_node *gy, nb_node *a, const nb_node *b, bool ta, bool tb)
{
    if (!ta && nb_node_rank(b) == 2 && nb_node_rank(a) > 2) {
        nb_node *a2 = nb_flatten(g, a, nb_node_rank(a) - 1);
        nb_node *g2 = nb_flatten(g, gy, nb_node_rank(gy) - 1);
        return tb ? mm(g, g2, a2, 1, 0) : mm(g, a2, g2, 1, 0);
    }
    if (!ta) return tb ? mm(g, gy, a, 1, 0) : mm(g, a, gy, 1, 0);
    return tb ? mm(g, gy, a, 1, 1) : mm(g, a, gy, 0, 0);
}

/* Only the sides that need a gradient: a weight's matmul with an input that
 * needs none (x W) builds W's gradient alone. */
static nb_status mm_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    nb_node *a = nb_node_input(y, 0), *b = nb_node_input(y, 1);
    bool ta = nb__attr(y, A_TA)->i[0], tb = nb__attr(y, A_TB)->i[0];
    if (nb_needs_grad(needs, 0)) gx[0] = grad_a(g, gy, b, ta, tb);
    if (nb_needs_grad(needs, 1)) gx[1] = grad_b(g, gy, a, b, ta, tb);
    return NB_OK;
}

#define TA NB_ABOOL("transpose_a", 1)
#define TB NB_ABOOL("transpose_b", 1)
static const nb_op_case mm_cases[] = {
    {.in = {"2,3", "3,4"}},
    {.in = {"2,2,3", "2,3,4"}},                       /* batched on both sides */
    {.in = {"2,1,3,4", "3,4,5"}},                     /* batch broadcast */
    {.in = {"2,3,4", "4,5"}},                         /* b 2-D: one GEMM */
    {.in = {"3,4", "2,4,5"}},                         /* a 2-D, b batched */
    {.in = {"1,1", "1,1"}},
    {.in = {"3,1", "1,2"}},
    {.in = {"1,3,1", "2,1,4"}},
    {.in = {"3,2", "3,4"}, .attrs = {TA}, .n_attrs = 1},
    {.in = {"2,3", "4,3"}, .attrs = {TB}, .n_attrs = 1},
    {.in = {"3,2", "4,3"}, .attrs = {TA, TB}, .n_attrs = 2},
    {.in = {"2,4,3", "4,5"}, .attrs = {TA}, .n_attrs = 1},
    {.in = {"2,3,4", "5,4"}, .attrs = {TB}, .n_attrs = 1},
    {.in = {"2,1,4,3", "3,5,4"}, .attrs = {TA, TB}, .n_attrs = 2},
    {.in = {"2,3,4", "2,5,4"}, .attrs = {TB}, .n_attrs = 1},
};

const nb_op_def nb_op_matmul = {
    .name = "matmul", .min_in = 2, .max_in = 2, .attrs = mm_attrs, .n_attrs = NB_NELEMS(mm_attrs),
    .shape = mm_shape, .forward = mm_fwd, .backward = mm_bwd, .flops = mm_flops,
    .cases = mm_cases, .n_cases = NB_NELEMS(mm_cases),
    .doc = "a [..., M, K] x b [K, N] or [..., K, N]; batch dims broadcast; transpose_a/b "
           "transpose the last two dims of an operand"};

nb_node *nb_matmul(nb_graph *g, nb_node *a, nb_node *b) { return nb_matmul_t(g, a, b, false, false); }

nb_node *nb_matmul_t(nb_graph *g, nb_node *a, nb_node *b, bool transpose_a, bool transpose_b)
{
    nb_attr at[2] = {NB_ABOOL("transpose_a", transpose_a), NB_ABOOL("transpose_b", transpose_b)};
    return nb_apply(g, &nb_op_matmul, NULL, (nb_node *[]){a, b}, 2, at, 2);
}

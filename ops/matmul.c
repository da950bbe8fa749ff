/* matmul: y = op(a) · op(b) over the last two dims, where op transposes when
 * the attribute transpose_a / transpose_b is set; leading (batch) dims
 * broadcast as in NumPy. Gradient rules pass the flags instead of building
 * transposed copies, so every product, forward or backward, is one GEMM call
 * (or one per batch entry). As numpy.matmul, a 1-D a [K] is taken as [1, K]
 * and a 1-D b [K] as [K, 1], and the added axis is dropped from the result
 * ([K]·[K] is a scalar): the data are laid out alike, so the kernel runs on
 * the promoted shapes (no transpose flag on a 1-D operand). */
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
                         ta ? "[..., K, M] (transpose_a)" : c->in[0].rank == 1 ? "[K]" : "[..., M, K]",
                         bb ? (tb ? "[..., N, K]" : "[..., K, N]")
                            : c->in[1].rank == 1 ? "[K]" : (tb ? "[N, K]" : "[K, N]"),
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

/* A 1-D a [K] as [1, K], a 1-D b [K] as [K, 1]. */
static nb_shape promote(const nb_shape *s, bool is_a)
{
    nb_shape p = *s;
    if (s->rank != 1) return p;
    p.rank = 2;
    p.d[is_a ? 0 : 1] = nb_sdim_const(1);
    p.d[is_a ? 1 : 0] = s->d[0];
    return p;
}

static nb_status mm_shape(nb_shape_ctx *c)
{
    nb_status st = nb_shape_float_inputs(c);
    if (st) return st;
    bool ta = c->attr[A_TA].i[0], tb = c->attr[A_TB].i[0];
    bool va = c->in[0].rank == 1, vb = c->in[1].rank == 1;
    if (c->in[0].rank < 1 || c->in[1].rank < 1) return mm_fail(c, " (both need rank >= 1)");
    if ((va && ta) || (vb && tb))
        return nb_shape_fail(c, NB_ERR_SHAPE, "%s needs %s of rank >= 2; %s, %s",
                             va && ta ? "transpose_a" : "transpose_b", va && ta ? "a" : "b",
                             nb_shape_desc(c, 0), nb_shape_desc(c, 1));
    nb_shape a = promote(&c->in[0], true), b = promote(&c->in[1], false);
    nb_sdim m = a.d[a.rank - (ta ? 1 : 2)], ka = a.d[a.rank - (ta ? 2 : 1)];
    nb_sdim kb = b.d[b.rank - (tb ? 1 : 2)], n = b.d[b.rank - (tb ? 2 : 1)];
    if (!nb_sdim_eq(ka, kb)) return mm_fail(c, "");
    nb_shape out;
    if (!batch_broadcast(&a, &b, &out)) return mm_fail(c, " (the batch dims do not broadcast)");
    if (!va) out.d[out.rank++] = m;  /* the promoted axes are dropped */
    if (!vb) out.d[out.rank++] = n;
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

static void gemm_call(const gemm *p, blasint m, blasint n, const void *a, const void *b, void *c)
{
    enum CBLAS_TRANSPOSE ta = p->ta ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = p->tb ? CblasTrans : CblasNoTrans;
    if (p->dt == NB_F64)
        cblas_dgemm(CblasRowMajor, ta, tb, m, n, p->k, 1.0, a, p->lda, b, p->ldb, 0.0, c, p->n);
    else
        cblas_sgemm(CblasRowMajor, ta, tb, m, n, p->k, 1.0f, a, p->lda, b, p->ldb, 0.0f, c, p->n);
}

/* A product split over the plan's threads: by rows of C when M is the larger
 * side, else by columns; part p computes its block with its own GEMM call
 * (OpenBLAS itself runs on one thread under nabla --threads, so that the two
 * thread pools never compete for the cores). Blocks may round differently
 * from one whole GEMM (the BLAS picks kernels by size), never from run to
 * run at a given thread count. */
typedef struct gemm_job {
    const gemm *p;
    const char *a, *b;
    char *c;
    bool by_rows;
} gemm_job;

#define GEMM_PART_FLOPS 16e6  /* a part is worth a thread from about 0.15 ms of work */

static void gemm_part(void *arg, int64_t lo, int64_t hi, int part)
{
    const gemm_job *j = arg;
    const gemm *p = j->p;
    size_t es = nb_dtype_size(p->dt);
    (void)part;
    if (j->by_rows)  /* rows lo.. of op(A): row lo of A, or column lo of A stored [K, M] */
        gemm_call(p, (blasint)(hi - lo), p->n, j->a + (size_t)lo * (p->ta ? 1 : (size_t)p->lda) * es, j->b,
                  j->c + (size_t)lo * (size_t)p->n * es);
    else  /* columns lo.. of op(B): column lo of B, or row lo of B stored [N, K] */
        gemm_call(p, p->m, (blasint)(hi - lo), j->a, j->b + (size_t)lo * (p->tb ? (size_t)p->ldb : 1) * es,
                  j->c + (size_t)lo * es);
}

static void gemm_run(const nb_kctx *k, const gemm *p, const void *a, const void *b, void *c)
{
    gemm_job j = {p, a, b, c, p->m >= p->n};
    int64_t len = j.by_rows ? p->m : p->n, other = j.by_rows ? p->n : p->m;
    double per = 2.0 * (double)other * (double)p->k;  /* FLOPs per row (or column) */
    int64_t grain = per >= GEMM_PART_FLOPS ? 1 : (int64_t)(GEMM_PART_FLOPS / (per > 0 ? per : 1)) + 1;
    nb_kernel_parallel(k, len, grain, gemm_part, &j);
}

/* The batch loop: one GEMM per output batch entry, at broadcast offsets. */
typedef struct batch_ctx {
    const nb_kctx *k;
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
        gemm_run(c->k, c->p, c->a + (size_t)(off[1] + i * c->inner[1]) * c->sa,
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

/* The shapes the GEMMs see: 1-D operands promoted, their axes back in y. */
static void promote_dims(const nb_kctx *k, nb_dims *as, nb_dims *bs, nb_dims *ys)
{
    *as = k->in_shape[0], *bs = k->in_shape[1], *ys = k->out_shape;
    bool va = as->rank == 1, vb = bs->rank == 1;
    if (va) *as = (nb_dims){.rank = 2, .d = {1, as->d[0]}};
    if (vb) *bs = (nb_dims){.rank = 2, .d = {bs->d[0], 1}};
    if (va) {  /* M = 1 goes before N, or last when N is gone too */
        int at = vb ? ys->rank : ys->rank - 1;
        for (int i = ys->rank; i > at; i--) ys->d[i] = ys->d[i - 1];
        ys->d[at] = 1;
        ys->rank++;
    }
    if (vb) ys->d[ys->rank++] = 1;
}

static nb_status mm_fwd(const nb_kctx *k)
{
    nb_dims as_, bs_, ys_;
    promote_dims(k, &as_, &bs_, &ys_);
    const nb_dims *as = &as_, *bs = &bs_, *ys = &ys_;
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
        gemm_run(k, &p, k->in[0], k->in[1], k->out);
        return NB_OK;
    }
    size_t es = nb_dtype_size(k->dtype);
    nb_iter it;
    const nb_dims *ops[3] = {&yb, &ab, &bb};
    nb_iter_init(&it, &yb, 3, ops);
    batch_ctx c = {k, &p, k->in[0], k->in[1], k->out, (size_t)(m * kk) * es, (size_t)(kk * n) * es,
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

/* B's gradient (b of rank rb). With B 2-D and A [..., M, K] batched (no
 * transpose_a), it sums over the batch; viewing A and gy as (batch*M, K) and
 * (batch*M, N) makes that sum part of one GEMM. */
static nb_node *grad_b(nb_graph *g, nb_node *gy, nb_node *a, int rb, bool ta, bool tb)
{
    if (!ta && rb == 2 && nb_node_rank(a) > 2) {
        nb_node *a2 = nb_flatten(g, a, nb_node_rank(a) - 1);
        nb_node *g2 = nb_flatten(g, gy, nb_node_rank(gy) - 1);
        return tb ? mm(g, g2, a2, 1, 0) : mm(g, a2, g2, 1, 0);
    }
    if (!ta) return tb ? mm(g, gy, a, 1, 0) : mm(g, a, gy, 1, 0);
    return tb ? mm(g, gy, a, 1, 1) : mm(g, a, gy, 0, 0);
}

/* ---- 1-D operands: the rules above on the promoted shapes ---- */

/* Dimension d of a shape as a reshape can name it: a size, a symbol, or -1
 * (once: *free counts the uses), else NB_DIM(0) (no reshape names it). */
static nb_dim name_dim(const nb_graph *g, nb_sdim d, int *free)
{
    if (nb_sdim_is_const(d)) return NB_DIM(d.c);
    int sym = -1, n = 0;
    for (int k = 0; k < NB_MAX_SYMS; k++)
        if (d.e[k]) sym = k, n += d.e[k];
    if (d.c == 1 && n == 1) return NB_SYM(g->sym[sym]);
    return (*free)++ ? NB_DIM(0) : NB_DIM(-1);
}

/* t with a unit axis inserted before axis pos, by a reshape naming t's dims. */
static nb_node *unsqueeze(nb_graph *g, nb_node *t, int pos)
{
    if (!t) return NULL;
    nb_dim d[NB_MAX_DIMS];
    int n = t->shape.rank + 1, free = 0;
    if (n > NB_MAX_DIMS) {
        nb__fail(g, NB_ERR_SHAPE, "matmul gradient: '%s' has too many dimensions to insert one",
                 t->name);
        return NULL;
    }
    for (int i = 0, j = 0; i < n; i++) d[i] = i == pos ? NB_DIM(1) : name_dim(g, t->shape.d[j++], &free);
    if (free > 1) {
        nb__fail(g, NB_ERR_SHAPE, "matmul gradient: cannot insert an axis into '%s' (more than "
                 "one dimension is a product of symbols)", t->name);
        return NULL;
    }
    return nb_reshape(g, t, n, d);
}

/* The gradient t of a promoted operand ([..., 1, K] or [..., K, 1]) summed
 * over its batch and viewed as the 1-D operand [K]. */
static nb_node *unpromote(nb_graph *g, nb_node *t)
{
    if (!t) return NULL;
    int r = nb_node_rank(t);
    if (r > 2) {
        int64_t axes[NB_MAX_DIMS];
        for (int i = 0; i < r - 2; i++) axes[i] = i;
        t = nb_sum(g, t, axes, r - 2, false);
    }
    return nb_reshape(g, t, 1, (nb_dim[]){NB_DIM(-1)});
}

static nb_status mm_bwd_vec(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    nb_node *a = nb_node_input(y, 0), *b = nb_node_input(y, 1);
    bool ta = nb__attr(y, A_TA)->i[0], tb = nb__attr(y, A_TB)->i[0];
    bool va = nb_node_rank(a) == 1, vb = nb_node_rank(b) == 1;
    nb_node *g2 = va ? unsqueeze(g, gy, nb_node_rank(gy) - (vb ? 0 : 1)) : gy;
    if (vb) g2 = unsqueeze(g, g2, nb_node_rank(gy) + va);
    if (!g2) return g->status ? g->status : NB_ERR_SHAPE;
    if (nb_needs_grad(needs, 0)) {
        nb_node *b2 = vb ? nb_reshape(g, b, 2, (nb_dim[]){NB_DIM(-1), NB_DIM(1)}) : b;
        nb_node *ga = grad_a(g, g2, b2, ta, tb);
        gx[0] = va ? unpromote(g, ga) : ga;
    }
    if (nb_needs_grad(needs, 1)) {
        nb_node *a2 = va ? nb_reshape(g, a, 2, (nb_dim[]){NB_DIM(1), NB_DIM(-1)}) : a;
        nb_node *gb = grad_b(g, g2, a2, vb ? 2 : nb_node_rank(b), ta, tb);
        gx[1] = vb ? unpromote(g, gb) : gb;
    }
    return NB_OK;
}

/* Only the sides that need a gradient: a weight's matmul with an input that
 * needs none (x W) builds W's gradient alone. */
static nb_status mm_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    nb_node *a = nb_node_input(y, 0), *b = nb_node_input(y, 1);
    if (nb_node_rank(a) == 1 || nb_node_rank(b) == 1) return mm_bwd_vec(g, y, gy, needs, gx);
    bool ta = nb__attr(y, A_TA)->i[0], tb = nb__attr(y, A_TB)->i[0];
    if (nb_needs_grad(needs, 0)) gx[0] = grad_a(g, gy, b, ta, tb);
    if (nb_needs_grad(needs, 1)) gx[1] = grad_b(g, gy, a, nb_node_rank(b), ta, tb);
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
    {.in = {"3", "3"}},                               /* 1-D forms, as numpy.matmul */
    {.in = {"3", "3,4"}},
    {.in = {"2,3", "3"}},
    {.in = {"3", "2,3,4"}},                           /* 1-D a, batched b */
    {.in = {"2,1,3,4", "4"}},                         /* batched a, 1-D b */
    {.in = {"3", "4,3"}, .attrs = {TB}, .n_attrs = 1},
    {.in = {"3,2", "3"}, .attrs = {TA}, .n_attrs = 1},
    {.in = {"2,4,3", "4"}, .attrs = {TA}, .n_attrs = 1},
    {.in = {"1", "1,2"}},
};

const nb_op_def nb_op_matmul = {
    .name = "matmul", .min_in = 2, .max_in = 2, .attrs = mm_attrs, .n_attrs = NB_NELEMS(mm_attrs),
    .shape = mm_shape, .forward = mm_fwd, .backward = mm_bwd, .flops = mm_flops,
    .cases = mm_cases, .n_cases = NB_NELEMS(mm_cases),
    .doc = "a [..., M, K] x b [K, N] or [..., K, N]; batch dims broadcast; a 1-D operand "
           "as numpy.matmul; transpose_a/b transpose the last two dims of an operand"};

nb_node *nb_matmul(nb_graph *g, nb_node *a, nb_node *b) { return nb_matmul_t(g, a, b, false, false); }

nb_node *nb_matmul_t(nb_graph *g, nb_node *a, nb_node *b, bool transpose_a, bool transpose_b)
{
    nb_attr at[2] = {NB_ABOOL("transpose_a", transpose_a), NB_ABOOL("transpose_b", transpose_b)};
    return nb_apply(g, &nb_op_matmul, NULL, (nb_node *[]){a, b}, 2, at, 2);
}

/* matmul: hand-computed products, every transpose flag and batch layout
 * against a naive triple loop in f32 and f64, shape errors naming the
 * inputs, FLOPs, and the folded gradient of a 2-D weight. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

/* Runs y = matmul_t(a, b) on the given values; fills out (as doubles) and returns y's rank. */
static int run_mm(nb_dtype dt, int ra, const int64_t *as, const double *av, int rb, const int64_t *bs,
                  const double *bv, bool ta, bool tb, double *out, int64_t *ys)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = input_shaped(g, "a", dt, ra, as), *b = input_shaped(g, "b", dt, rb, bs);
    nb_node *y = nb_matmul_t(g, a, b, ta, tb);
    cr_assert_not_null(y, "%s", nb_graph_error(g));
    int r = eval_node_bound(g, y, out, ys, 2, (nb_node *[]){a, b}, (const double *[]){av, bv}, NULL, 0);
    nb_graph_free(g);
    return r;
}

/* ---- hand-computed values ---- */

static void two_by_three(nb_dtype dt)
{
    double a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {7, 8, 9, 10, 11, 12}, y[4];
    int64_t ys[NB_MAX_DIMS];
    int r = run_mm(dt, 2, (int64_t[]){2, 3}, a, 2, (int64_t[]){3, 2}, b, false, false, y, ys);
    cr_assert_eq(r, 2);
    cr_expect(ys[0] == 2 && ys[1] == 2);
    double want[4] = {58, 64, 139, 154};
    expect_close(y, want, 4, 1e-5, 0, "y");
}

Test(matmul, two_by_three_f32) { two_by_three(NB_F32); }
Test(matmul, two_by_three_f64) { two_by_three(NB_F64); }

/* a^T b with a [3, 2]: the same product from a stored transposed */
Test(matmul, transpose_a_by_hand)
{
    double a[6] = {1, 4, 2, 5, 3, 6}, b[6] = {7, 8, 9, 10, 11, 12}, y[4];
    int64_t ys[NB_MAX_DIMS];
    run_mm(NB_F64, 2, (int64_t[]){3, 2}, a, 2, (int64_t[]){3, 2}, b, true, false, y, ys);
    double want[4] = {58, 64, 139, 154};
    expect_close(y, want, 4, 1e-12, 0, "y");
}

/* two batches: identity and 2 * identity */
static void batched(nb_dtype dt)
{
    double a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, b[8] = {1, 0, 0, 1, 2, 0, 0, 2}, y[8];
    int64_t ys[NB_MAX_DIMS], s[3] = {2, 2, 2};
    cr_assert_eq(run_mm(dt, 3, s, a, 3, s, b, false, false, y, ys), 3);
    double want[8] = {1, 2, 3, 4, 10, 12, 14, 16};
    expect_close(y, want, 8, 1e-6, 0, "y");
}

Test(matmul, batched_f32) { batched(NB_F32); }
Test(matmul, batched_f64) { batched(NB_F64); }

/* ---- against a naive loop ---- */

/* y = op(a) op(b) with NumPy batch broadcasting, in doubles. */
static void naive(int ra, const int64_t *as, const double *a, int rb, const int64_t *bs,
                  const double *b, bool ta, bool tb, int ry, const int64_t *ys, double *y)
{
    int64_t m = ys[ry - 2], n = ys[ry - 1], k = as[ra - (ta ? 2 : 1)];
    size_t batches = shape_numel(ry - 2, ys);
    for (size_t t = 0; t < batches; t++) {
        /* t as a multi-index over y's batch dims, mapped into a's and b's */
        size_t ao = 0, bo = 0, rest = t, am = 1, bm = 1;
        for (int i = ry - 3; i >= 0; i--) {
            int64_t idx = (int64_t)(rest % (size_t)ys[i]);
            rest /= (size_t)ys[i];
            int ia = ra - 2 - (ry - 2) + i, ib = rb - 2 - (ry - 2) + i;
            if (ia >= 0) ao += (size_t)(as[ia] == 1 ? 0 : idx) * am, am *= (size_t)as[ia];
            if (ib >= 0) bo += (size_t)(bs[ib] == 1 ? 0 : idx) * bm, bm *= (size_t)bs[ib];
        }
        const double *A = a + ao * (size_t)(m * k), *B = b + bo * (size_t)(k * n);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0;
                for (int64_t q = 0; q < k; q++)
                    s += (ta ? A[q * m + i] : A[i * k + q]) * (tb ? B[j * k + q] : B[q * n + j]);
                y[t * (size_t)(m * n) + (size_t)(i * n + j)] = s;
            }
    }
}

/* Layouts as [..., M, K] x [..., K, N]; the flags swap the stored last two dims. */
typedef struct layout {
    int ra, rb;
    int64_t a[4], b[4];
} layout;

static const layout layouts[] = {
    {2, 2, {3, 4}, {4, 5}},
    {3, 3, {2, 3, 4}, {2, 4, 5}},
    {4, 3, {2, 1, 3, 4}, {3, 4, 5}},
    {3, 2, {2, 3, 4}, {4, 5}},
    {2, 3, {3, 4}, {2, 4, 5}},
    {3, 3, {1, 3, 1}, {2, 1, 4}},
    {4, 3, {2, 3, 1, 4}, {1, 4, 5}},
    {3, 2, {4, 17, 33}, {33, 9}},
    {4, 4, {2, 1, 5, 7}, {1, 3, 7, 6}},
};

static void check_layout(const layout *L, nb_dtype dt, bool ta, bool tb)
{
    int64_t as[4], bs[4], ys[NB_MAX_DIMS], ws[NB_MAX_DIMS];
    memcpy(as, L->a, sizeof as);
    memcpy(bs, L->b, sizeof bs);
    if (ta) as[L->ra - 2] = L->a[L->ra - 1], as[L->ra - 1] = L->a[L->ra - 2];
    if (tb) bs[L->rb - 2] = L->b[L->rb - 1], bs[L->rb - 1] = L->b[L->rb - 2];
    size_t na = shape_numel(L->ra, as), nb = shape_numel(L->rb, bs);
    static double a[4096], b[4096], y[4096], want[4096];
    nb_rng rng;
    nb_rng_seed(&rng, 42);
    fill_uniform(&rng, a, na, -1, 1);
    fill_uniform(&rng, b, nb, -1, 1);
    if (dt == NB_F32)  /* the naive loop sees the values f32 holds */
        for (size_t i = 0; i < 4096; i++) a[i] = (float)a[i], b[i] = (float)b[i];
    int ry = run_mm(dt, L->ra, as, a, L->rb, bs, b, ta, tb, y, ys);
    /* expected shape: broadcast batch, then M, N */
    int rw = (L->ra > L->rb ? L->ra : L->rb);
    for (int i = 0; i < rw - 2; i++) {
        int ia = L->ra - rw + i, ib = L->rb - rw + i;
        int64_t da = ia >= 0 ? L->a[ia] : 1, db = ib >= 0 ? L->b[ib] : 1;
        ws[i] = da > db ? da : db;
    }
    ws[rw - 2] = L->a[L->ra - 2];
    ws[rw - 1] = L->b[L->rb - 1];
    cr_assert_eq(ry, rw, "layout %td: rank %d", L - layouts, ry);
    for (int i = 0; i < rw; i++) cr_assert_eq(ys[i], ws[i], "layout %td dim %d", L - layouts, i);
    naive(L->ra, as, a, L->rb, bs, b, ta, tb, ry, ys, want);
    double tol = dt == NB_F64 ? 1e-12 : 1e-5;
    char what[64];
    snprintf(what, sizeof what, "layout %td %s ta=%d tb=%d: y", L - layouts, nb_dtype_name(dt), ta, tb);
    expect_close(y, want, shape_numel(ry, ys), tol, tol, what);
}

Test(matmul, matches_naive_all_layouts_and_flags)
{
    for (size_t l = 0; l < sizeof layouts / sizeof *layouts; l++)
        for (int f = 0; f < 4; f++) {
            check_layout(&layouts[l], NB_F32, f & 1, f & 2);
            check_layout(&layouts[l], NB_F64, f & 1, f & 2);
        }
}

/* ---- shape errors ---- */

Test(matmul, inner_mismatch_names_both_inputs)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(128)});
    nb_node *w = nb_param(g, "W2", NB_F32, 2, (int64_t[]){256, 10}, NB_INIT(NB_INIT_ZEROS));
    nb_node *y = nb_op(g, "matmul", "logits", (nb_node *[]){x, w}, 2, NULL, 0);
    cr_expect_null(y);
    expect_graph_error(g, NB_ERR_SHAPE,
                       (const char *[]){"node 'logits': matmul needs a [..., M, K] and b [K, N]", "x is [N, 128]",
                                        "W2 is [256, 10]"},
                       3);
    nb_graph_free(g);
}

/* Rank 1 is numpy.matmul's vector (tests/test_ops_matmul_vec.c); rank 0 and a
 * transpose flag on a vector are errors. */
Test(matmul, rank_zero_and_transposed_vector_are_rejected)
{
    nb_graph *g = nb_graph_new();
    nb_node *s = nb_input(g, "s", NB_F64, 0, NULL);
    nb_node *v = nb_input(g, "v", NB_F64, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *w = nb_input(g, "w", NB_F64, 2, (nb_dim[]){NB_DIM(3), NB_DIM(2)});
    cr_expect_null(nb_matmul(g, s, w));
    expect_graph_error(g, NB_ERR_SHAPE, (const char *[]){"s is []", "w is [3, 2]", "rank >= 1"}, 3);
    nb_graph_clear_error(g);
    cr_expect_null(nb_matmul_t(g, v, w, true, false));
    expect_graph_error(g, NB_ERR_SHAPE, (const char *[]){"transpose_a needs a of rank >= 2", "v is [3]"}, 2);
    nb_graph_free(g);
}

Test(matmul, batch_mismatch_is_rejected)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "a", NB_F64, 3, (nb_dim[]){NB_DIM(2), NB_DIM(3), NB_DIM(4)});
    nb_node *b = nb_input(g, "b", NB_F64, 3, (nb_dim[]){NB_DIM(3), NB_DIM(4), NB_DIM(5)});
    cr_expect_null(nb_matmul(g, a, b));
    expect_graph_error(g, NB_ERR_SHAPE,
                       (const char *[]){"batch dims do not broadcast", "a is [2, 3, 4]", "b is [3, 4, 5]"}, 3);
    nb_graph_free(g);
}

Test(matmul, transposed_layout_in_message)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "a", NB_F64, 2, (nb_dim[]){NB_DIM(2), NB_DIM(3)});
    nb_node *b = nb_input(g, "b", NB_F64, 2, (nb_dim[]){NB_DIM(3), NB_DIM(4)});
    cr_expect_not_null(nb_matmul(g, a, b));
    cr_expect_null(nb_matmul_t(g, a, b, true, false));  /* a^T is [3, 2]: K 2 vs 3 */
    const char *e = nb_graph_error(g);
    cr_expect(strstr(e, "a [..., K, M] (transpose_a)") && strstr(e, "a is [2, 3]"), "%s", e);
    nb_graph_clear_error(g);
    cr_expect_null(nb_matmul_t(g, a, b, false, true));  /* b^T is [4, 3]: K 3 vs 4 */
    e = nb_graph_error(g);
    cr_expect(strstr(e, "b [N, K] (transpose_b)"), "%s", e);
    nb_graph_free(g);
}

Test(matmul, mixed_dtypes_are_rejected)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "a", NB_F32, 2, (nb_dim[]){NB_DIM(2), NB_DIM(3)});
    nb_node *b = nb_input(g, "b", NB_F64, 2, (nb_dim[]){NB_DIM(3), NB_DIM(4)});
    cr_expect_null(nb_matmul(g, a, b));
    cr_expect_eq(nb_graph_status(g), NB_ERR_DTYPE);
    nb_graph_free(g);
}

Test(matmul, symbolic_batch_shape)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "a", NB_F32, 3, (nb_dim[]){NB_SYM("N"), NB_DIM(1), NB_DIM(4)});
    nb_node *b = nb_input(g, "b", NB_F32, 4, (nb_dim[]){NB_DIM(2), NB_DIM(1), NB_DIM(4), NB_DIM(5)});
    nb_node *y = nb_matmul(g, a, b);
    cr_assert_not_null(y, "%s", nb_graph_error(g));
    cr_expect_str_eq(node_shape(g, y), "[2, N, 1, 5]");
    nb_graph_free(g);
}

/* 2 * M * N * K per batch entry */
Test(matmul, flops)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "a", NB_F32, 3, (nb_dim[]){NB_SYM("N"), NB_DIM(3), NB_DIM(4)});
    nb_node *b = nb_input(g, "b", NB_F32, 2, (nb_dim[]){NB_DIM(4), NB_DIM(5)});
    nb_node *y = nb_matmul(g, a, b);
    cr_expect_float_eq(nb_node_flops(g, y, (nb_bind[]){{"N", 2}}, 1), 2.0 * 2 * 3 * 5 * 4, 1e-9);
    nb_node *yt = nb_matmul_t(g, b, b, true, false);  /* [5, 4] x [4, 5]: K = 4 */
    cr_expect_float_eq(nb_node_flops(g, yt, NULL, 0), 2.0 * 5 * 5 * 4, 1e-9);
    nb_graph_free(g);
}

/* ---- gradient of a 2-D weight under a batched input ---- */

/* loss = sum(x W): dW[k, n] = sum over batch and rows of x[..., k]. It is one
 * GEMM over flattened views, not a batched product summed afterwards. */
static void folded_weight_grad(bool tb)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 3, (nb_dim[]){NB_SYM("N"), NB_DIM(2), NB_DIM(3)});
    int64_t ws[2] = {tb ? 4 : 3, tb ? 3 : 4};
    nb_node *w = nb_param(g, "W", NB_F64, 2, ws, NB_INIT(NB_INIT_ONES));
    nb_node *loss = nb_sum(g, nb_matmul_t(g, x, w, false, tb), NULL, 0, false), *dw;
    cr_assert_eq(nb_grad(g, loss, &w, 1, &dw), NB_OK, "%s", nb_graph_error(g));
    cr_expect_str_eq(nb_node_op(dw), "matmul");
    cr_expect_str_eq(nb_node_op(nb_node_input(dw, 0)), "flatten");
    cr_expect_str_eq(nb_node_op(nb_node_input(dw, 1)), "flatten");
    nb_plan *p = plan_new_ok(g, &dw, 1);
    plan_bind_ok(p, (nb_bind[]){{"N", 3}}, 1);
    double xv[18], col[3] = {0};
    for (int i = 0; i < 18; i++) col[i % 3] += xv[i] = i * 0.5 - 2;
    nb_plan_set(p, x, xv);
    plan_run_ok(p);
    const double *d = nb_plan_get(p, dw);
    for (int k = 0; k < 3; k++)
        for (int n = 0; n < 4; n++)
            cr_expect_float_eq(d[tb ? n * 3 + k : k * 4 + n], col[k], 1e-12, "dW[%d, %d]", k, n);
    nb_plan_free(p);
    nb_graph_free(g);
}

Test(matmul, weight_grad_is_one_gemm) { folded_weight_grad(false); }
Test(matmul, weight_grad_is_one_gemm_transposed) { folded_weight_grad(true); }

/* Second order: the gradient of sum(dW * R), where dW is the gradient of
 * sum((x W^T)^2), passes back through matmul, flatten and reshape_like. */
Test(matmul, second_order)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 3, (nb_dim[]){NB_SYM("N"), NB_DIM(2), NB_DIM(3)});
    nb_node *r = nb_input(g, "R", NB_F64, 2, (nb_dim[]){NB_DIM(4), NB_DIM(3)});
    nb_init init = {.kind = NB_INIT_NORMAL, .a = 1, .seed = 3};
    nb_node *w = nb_param(g, "W", NB_F64, 2, (int64_t[]){4, 3}, init);
    nb_node *loss1 = nb_sum(g, nb_pow(g, nb_matmul_t(g, x, w, false, true), 2), NULL, 0, false), *dw;
    cr_assert_eq(nb_grad(g, loss1, &w, 1, &dw), NB_OK, "%s", nb_graph_error(g));
    nb_node *loss2 = nb_sum(g, nb_mul(g, dw, r), NULL, 0, false);
    double xv[18], rv[12];
    for (int i = 0; i < 18; i++) xv[i] = (i % 7) * 0.3 - 0.8;
    for (int i = 0; i < 12; i++) rv[i] = (i % 5) * 0.4 - 1;
    nb_feed feeds[2] = {{x, xv}, {r, rv}};
    nb_gc_result res[2];
    char err[512] = "";
    nb_status st = nb_gradcheck(g, loss2, (nb_node *[]){x, w}, 2, (nb_bind[]){{"N", 3}}, 1, feeds, 2,
                                NULL, res);
    cr_assert_eq(st, NB_OK, "%s", err);
    for (int k = 0; k < 2; k++)
        cr_expect(res[k].pass, "%s: max abs err %g", res[k].name, res[k].max_abs);
    nb_graph_free(g);
}

/* Issue 9's losses against PyTorch 1.13 (float64, /usr/bin/python3; values
 * printed with %.17g): z[i] = 4 sin(1.7 i), t[i] = (cos(0.9 i) + 1) / 2,
 * v[i] = cos(0.3 i), all [3, 4];
 *   F.binary_cross_entropy_with_logits(z, t), its gradients and the HVP of z;
 *   p = sigmoid(z) with p[0] = 0 and p[1] = 1: F.binary_cross_entropy(p, t);
 *   F.nll_loss(F.log_softmax(z, 1), [2, 0, 2]). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "testutil.h"

static const nb_dtype both[2] = {NB_F32, NB_F64};

static void make(double *z, double *t, double *v)
{
    for (int i = 0; i < 12; i++) {
        z[i] = 4 * sin(1.7 * i);
        t[i] = (cos(0.9 * i) + 1) / 2;
        v[i] = cos(0.3 * i);
    }
}

/* loss(a, b), its gradients for a and b, and the HVP d/da sum(da * v) */
static void loss_and_grads(nb_dtype dt, const char *op, const double *a, const double *b,
                           const double *v, double *loss, double *da, double *db, double *hv)
{
    nb_graph *g = nb_graph_new();
    nb_dim d[2] = {NB_DIM(3), NB_DIM(4)};
    nb_node *x = nb_input(g, "a", dt, 2, d), *y = nb_input(g, "b", dt, 2, d);
    nb_node *vn = nb_input(g, "v", dt, 2, d);
    nb_node *l = nb_op(g, op, "loss", (nb_node *[]){x, y}, 2, NULL, 0), *gr[2], *h;
    cr_assert_not_null(l, "%s", nb_graph_error(g));
    cr_assert_eq(nb_grad(g, l, (nb_node *[]){x, y}, 2, gr), NB_OK, "%s", nb_graph_error(g));
    cr_assert_eq(nb_grad(g, nb_sum(g, nb_mul(g, gr[0], vn), NULL, 0, false), &x, 1, &h), NB_OK,
                 "%s", nb_graph_error(g));
    eval_graph(g, 4, (nb_node *[]){l, gr[0], gr[1], h}, (double *[]){loss, da, db, hv}, 3,
               (nb_node *[]){x, y, vn}, (const double *[]){a, b, v}, NULL, 0);
    nb_graph_free(g);
}

Test(loss2, sigmoid_cross_entropy_matches_torch)
{
    static const double want_dz[12] = {
        -0.041666666666666664, 0.014217529650529923, -0.010149411509140574, -0.0019927929325060452,
        0.068890149425796701, 0.047166984186878196, -0.063332930789717329, -0.076843677920383949,
        0.013721230950572705, 0.037663363870693099, -0.0019590299857851316, 0.0249879859891603};
    static const double want_dt[12] = {
        -0.0, -0.33055493681748954, 0.085180367342277075, 0.30860489410924413,
        -0.16470445037953604, -0.26616237087449673, 0.23329156253118077, 0.2060457040790111,
        -0.28638727161883193, -0.13224685771020456, 0.32046583062651895, 0.049666341938066266};
    static const double want_hv[12] = {
        0.020833333333333332, 0.0014520533844917007, 0.013383482189513619, 0.0012158686523144765,
        0.0032276157656395436, 0.00022307091604364043, -0.0010235852063642829,
        -0.0030186236469122072, -0.0018556530764296789, -0.010621016427178004,
        -0.0016902959001068628, -0.018848553549026398};
    double z[12], t[12], v[12];
    make(z, t, v);
    for (int d = 0; d < 2; d++) {
        double loss, dz[12], dt[12], hv[12], tol = d ? 1e-13 : 2e-6;
        loss_and_grads(both[d], "sigmoid_cross_entropy", z, t, v, &loss, dz, dt, hv);
        expect_close(&loss, (double[]){1.1488897822679591}, 1, tol, tol, "loss");
        expect_close(dz, want_dz, 12, tol, tol, "dz");
        expect_close(dt, want_dt, 12, tol, tol, "dt");
        expect_close(hv, want_hv, 12, tol, tol, "hvp");
    }
}

/* p = 0 and p = 1 hit the clamps: each log is at least -100 (loss finite),
 * dp = (p - t) / max(p (1 - p), 1e-12f) / n as torch. dt = (L1 - L0) / n with
 * the clamped logs, as model-format.md says (torch 1.13 gives +-inf there). */
Test(loss2, binary_cross_entropy_matches_torch_with_clamps)
{
    static const double want_dp[12] = {
        -83333333666.31691, 15766251385.054482, -0.052158017561324509, -0.084900888841013225,
        0.64451289703386461, 1.2464124756301824, -1.1714848333263759, -1.0709690905245037,
        0.45437504819549929, 0.26716211111250382, -0.095615654553932658, 0.10909382953834372};
    static const double want_dt[12] = {
        100.0 / 12, -100.0 / 12, 0.085180367342277061, 0.30860489410924413,
        -0.16470445037953604, -0.26616237087449662, 0.23329156253118075, 0.2060457040790111,
        -0.28638727161883215, -0.13224685771020456, 0.32046583062651895, 0.049666341938066266};
    double z[12], t[12], v[12], p[12];
    make(z, t, v);
    for (int i = 0; i < 12; i++) p[i] = 1 / (1 + exp(-z[i]));
    p[0] = 0, p[1] = 1;
    for (int d = 0; d < 2; d++) {
        double loss, dp[12], dt[12], hv[12], tol = d ? 1e-9 : 2e-5;
        loss_and_grads(both[d], "binary_cross_entropy", p, t, v, &loss, dp, dt, hv);
        expect_close(&loss, (double[]){10.936983342513507}, 1, tol, tol, "loss");
        expect_close(dp, want_dp, 12, tol, tol, "dp");
        expect_close(dt, want_dt, 12, tol, tol, "dt");
    }
}

/* Second order away from the clamps: torch's double backward */
Test(loss2, binary_cross_entropy_hvp_matches_torch)
{
    static const double want_hv[12] = {
        0.33333333333066673, 43.675960893110947, 0.45760078786993791, 4.3472040828383731,
        1.9356606977785493, 2.3020842760209277, -4.7088006115066712, -6.9491266284075728,
        -12.438422509611032, -1.6658376960180477, -8.4533096644623438, -0.22311660484712373};
    double z[12], t[12], v[12], p[12];
    make(z, t, v);
    for (int i = 0; i < 12; i++) p[i] = 1 / (1 + exp(-z[i]));
    double loss, dp[12], dt[12], hv[12];
    loss_and_grads(NB_F64, "binary_cross_entropy", p, t, v, &loss, dp, dt, hv);
    expect_close(hv, want_hv, 12, 1e-9, 1e-9, "hvp");
}

static nb_node *nll_graph(nb_graph *g, nb_dtype dt, nb_node **z, nb_node **t)
{
    *z = nb_input(g, "z", dt, 2, (nb_dim[]){NB_DIM(3), NB_DIM(4)});
    *t = nb_input(g, "t", NB_I32, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *lp = nb_log_softmax(g, *z, 1);
    return nb_nll_loss(g, lp, *t);
}

Test(loss2, nll_loss_matches_torch)
{
    double z[12], t[12], v[12];
    make(z, t, v);
    for (int d = 0; d < 2; d++) {
        nb_graph *g = nb_graph_new();
        nb_node *zn, *tn, *lp;
        nb_node *l = nll_graph(g, both[d], &zn, &tn);
        lp = nb_node_input(l, 0);
        nb_node *dlp;
        cr_assert_eq(nb_grad(g, l, &lp, 1, &dlp), NB_OK, "%s", nb_graph_error(g));
        double loss, got[12], tol = d ? 1e-14 : 1e-6;
        eval_graph(g, 2, (nb_node *[]){l, dlp}, (double *[]){&loss, got}, 2, (nb_node *[]){zn, tn},
                   (const double *[]){z, (double[]){2, 0, 2}}, NULL, 0);
        expect_close(&loss, (double[]){4.6467149064040543}, 1, tol, tol, "nll");
        double third = -1.0 / 3;
        expect_close(got, (double[]){0, 0, third, 0, third, 0, 0, 0, 0, 0, third, 0}, 12, tol, tol,
                     "d nll");
        nb_graph_free(g);
    }
}

/* f(z) = nll(log_softmax(z))^2: its HVP runs through nll_loss_backward's own
 * gradient (gy depends on z); against central differences of the gradient */
Test(loss2, nll_loss_second_order)
{
    double z[12], t[12], v[12];
    make(z, t, v);
    nb_graph *g = nb_graph_new();
    nb_node *zn, *tn, *vn = nb_input(g, "v", NB_F64, 2, (nb_dim[]){NB_DIM(3), NB_DIM(4)});
    nb_node *l = nll_graph(g, NB_F64, &zn, &tn), *dz, *hz;
    nb_node *f = nb_mul(g, l, l);
    cr_assert_eq(nb_grad(g, f, &zn, 1, &dz), NB_OK, "%s", nb_graph_error(g));
    cr_assert_eq(nb_grad(g, nb_sum(g, nb_mul(g, dz, vn), NULL, 0, false), &zn, 1, &hz), NB_OK,
                 "%s", nb_graph_error(g));
    double ids[3] = {2, 0, 2}, hv[12], gp[12], gm[12], zp[12], zm[12], eps = 1e-6, fd[12];
    nb_node *in[3] = {zn, tn, vn};
    eval_node(g, hz, hv, 3, in, (const double *[]){z, ids, v});
    for (int i = 0; i < 12; i++) zp[i] = z[i] + eps * v[i], zm[i] = z[i] - eps * v[i];
    eval_node(g, dz, gp, 3, in, (const double *[]){zp, ids, v});
    eval_node(g, dz, gm, 3, in, (const double *[]){zm, ids, v});
    for (int i = 0; i < 12; i++) fd[i] = (gp[i] - gm[i]) / (2 * eps);
    expect_close(hv, fd, 12, 1e-7, 1e-6, "nll^2 hvp");
    nb_graph_free(g);
}

Test(loss2, nll_label_out_of_range_names_node_and_row)
{
    nb_graph *g = nb_graph_new();
    nb_node *zn, *tn;
    nb_node *l = nll_graph(g, NB_F32, &zn, &tn);
    cr_assert_eq(nb_node_set_name(g, l, "loss"), NB_OK);
    nb_plan *p = plan_new_ok(g, &l, 1);
    float z[12] = {0};
    int32_t bad[3] = {1, 4, 0};
    nb_plan_set(p, zn, z);
    nb_plan_set(p, tn, bad);
    cr_expect_eq(nb_plan_run(p), NB_ERR_RUNTIME);
    assert_has(nb_plan_error(p), "node 'loss': labels 't' row 1: class 4 is outside [0, 4)");
    bad[1] = -1;
    nb_plan_set(p, tn, bad);
    cr_expect_eq(nb_plan_run(p), NB_ERR_RUNTIME);
    assert_has(nb_plan_error(p), "row 1: class -1 is outside [0, 4)");
    nb_plan_free(p);
    nb_graph_free(g);
}

Test(loss2, shapes_are_checked)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "a", NB_F32, 2, (nb_dim[]){NB_DIM(3), NB_DIM(4)});
    nb_node *b = nb_input(g, "b", NB_F32, 1, (nb_dim[]){NB_DIM(4)});
    nb_node *ids = nb_input(g, "ids", NB_I32, 1, (nb_dim[]){NB_DIM(4)});
    cr_expect_null(nb_sigmoid_cross_entropy(g, a, b));
    assert_has(nb_graph_error(g), "needs inputs and targets of one shape; a is [3, 4], b is [4]");
    nb_graph_clear_error(g);
    cr_expect_null(nb_binary_cross_entropy(g, a, ids));
    nb_graph_clear_error(g);
    cr_expect_null(nb_nll_loss(g, a, ids));
    assert_has(nb_graph_error(g), "needs float log-probabilities [N, K] and i32 labels [N]");
    nb_graph_clear_error(g);
    cr_expect_null(nb_nll_loss(g, a, b));
    nb_graph_free(g);
}

/* embedding and layernorm against PyTorch 1.13 (float64, /usr/bin/python3,
 * printed with %.17g):
 *   W[i] = sin(0.7 i) [5, 3], ids [[4, 1], [1, 0], [4, 4]], w[i] = cos(0.4 i):
 *     F.embedding(ids, W) and d sum(w * emb) / dW;
 *   x[i] = 2 sin(1.1 i) + 0.3 [2, 3, 4], gamma[i] = 1 + 0.1 i, beta[i] =
 *   0.05 i - 0.2 ([3, 4], or their last row [4]), w[i] = cos(0.4 i),
 *   v[i] = cos(0.3 i): F.layer_norm(x, shape, gamma, beta, 1e-5), the
 *   gradients of sum(w * y) and the HVP d/dx sum(dx * v). */
#include <criterion/criterion.h>
#include <math.h>

#include "testutil.h"

static const nb_dtype both[2] = {NB_F32, NB_F64};

Test(embed, embedding_and_its_gradient_match_torch)
{
    static const double want_y[18] = {
        0.85459890808828143, 0.31909836234935213, -0.36647912925192677, 0.86320936664887393,
        0.33498815015590511, -0.35078322768961984, 0.86320936664887393, 0.33498815015590511,
        -0.35078322768961984, 0, 0.64421768723769102, 0.98544972998846014, 0.85459890808828143,
        0.31909836234935213, -0.36647912925192677, 0.85459890808828143, 0.31909836234935213,
        -0.36647912925192677};
    /* rows 2 and 3 are never picked; row 4 three times, row 1 twice */
    static const double want_dw[15] = {
        -0.89675841633414699, -0.65364362086361194, -0.30733286997841935, -0.37503596106457238,
        -0.97142186296994715, -1.4144416123418955, 0, 0, 0, 0, 0, 0, 2.0476692700898131,
        2.3827625840614548, 2.3416700782072404};
    double W[15], w[18], ids[6] = {4, 1, 1, 0, 4, 4};
    for (int i = 0; i < 15; i++) W[i] = sin(0.7 * i);
    for (int i = 0; i < 18; i++) w[i] = cos(0.4 * i);
    for (int d = 0; d < 2; d++) {
        nb_graph *g = nb_graph_new();
        nb_node *id = nb_input(g, "ids", NB_I32, 2, (nb_dim[]){NB_DIM(3), NB_DIM(2)});
        nb_node *tab = nb_input(g, "W", both[d], 2, (nb_dim[]){NB_DIM(5), NB_DIM(3)});
        nb_node *wn = nb_input(g, "w", both[d], 3, (nb_dim[]){NB_DIM(3), NB_DIM(2), NB_DIM(3)});
        nb_node *y = nb_embedding(g, id, tab), *dw;
        cr_assert_not_null(y, "%s", nb_graph_error(g));
        cr_expect_str_eq(node_shape(g, y), "[3, 2, 3]");
        cr_assert_eq(nb_grad(g, nb_sum(g, nb_mul(g, y, wn), NULL, 0, false), &tab, 1, &dw), NB_OK,
                     "%s", nb_graph_error(g));
        double gy[18], gw[15], tol = d ? 1e-15 : 1e-6;
        eval_graph(g, 2, (nb_node *[]){y, dw}, (double *[]){gy, gw}, 3, (nb_node *[]){id, tab, wn},
                   (const double *[]){ids, W, w}, NULL, 0);
        expect_close(gy, want_y, 18, tol, tol, "embedding");
        expect_close(gw, want_dw, 15, tol, tol, "d table");
        nb_graph_free(g);
    }
}

Test(embed, id_out_of_range_names_node_and_index)
{
    nb_graph *g = nb_graph_new();
    nb_node *id = nb_input(g, "ids", NB_I32, 2, (nb_dim[]){NB_DIM(2), NB_DIM(3)});
    nb_node *tab = nb_param(g, "W", NB_F32, 2, (int64_t[]){4, 2}, NB_INIT(NB_INIT_ONES));
    nb_node *y = nb_op(g, "embedding", "emb", (nb_node *[]){id, tab}, 2, NULL, 0);
    nb_plan *p = plan_new_ok(g, &y, 1);
    int32_t v[6] = {0, 1, 2, 3, 4, 0};
    nb_plan_set(p, id, v);
    cr_expect_eq(nb_plan_run(p), NB_ERR_RUNTIME);
    assert_has(nb_plan_error(p), "node 'emb': ids 'ids' at [1, 1]: id 4 is outside [0, 4)");
    v[4] = 0, v[0] = -2;
    nb_plan_set(p, id, v);
    cr_expect_eq(nb_plan_run(p), NB_ERR_RUNTIME);
    assert_has(nb_plan_error(p), "ids 'ids' at [0, 0]: id -2 is outside [0, 4)");
    v[0] = 3;
    nb_plan_set(p, id, v);
    plan_run_ok(p);
    nb_plan_free(p);
    nb_graph_free(g);
}

Test(embed, embedding_shapes_are_checked)
{
    nb_graph *g = nb_graph_new();
    nb_node *f = nb_input(g, "f", NB_F32, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *tab = nb_input(g, "W", NB_F32, 2, (nb_dim[]){NB_DIM(4), NB_DIM(2)});
    nb_node *tab3 = nb_input(g, "W3", NB_F32, 3, (nb_dim[]){NB_DIM(4), NB_DIM(2), NB_DIM(1)});
    nb_node *id = nb_input(g, "ids", NB_I32, 1, (nb_dim[]){NB_SYM("N")});
    cr_expect_null(nb_embedding(g, f, tab));
    assert_has(nb_graph_error(g), "needs i32 ids [...] (rank below 8) and a float table [V, D]; f is [3] (f32)");
    nb_graph_clear_error(g);
    cr_expect_null(nb_embedding(g, id, tab3));
    nb_graph_clear_error(g);
    nb_node *y = nb_embedding(g, id, tab);
    cr_expect_str_eq(node_shape(g, y), "[N, 2]");
    nb_graph_free(g);
}

static void ln_inputs(double *x, double *gamma, double *beta, double *w, double *v)
{
    for (int i = 0; i < 24; i++) {
        x[i] = 2 * sin(1.1 * i) + 0.3;
        w[i] = cos(0.4 * i);
        v[i] = cos(0.3 * i);
    }
    for (int i = 0; i < 12; i++) gamma[i] = 1 + 0.1 * i, beta[i] = 0.05 * i - 0.2;
}

/* layernorm(x, gamma, beta) over the last axis (gamma [4]) or the last two
 * (axis 1, gamma [3, 4]): value, gradients and HVP */
static void layernorm_case(nb_dtype dt, int axis, double *y, double *dx, double *dg, double *db,
                           double *hv)
{
    double x[24], gamma[12], beta[12], w[24], v[24];
    ln_inputs(x, gamma, beta, w, v);
    int n = axis == 1 ? 12 : 4, off = 12 - n;
    nb_graph *g = nb_graph_new();
    nb_dim xd[3] = {NB_DIM(2), NB_DIM(3), NB_DIM(4)};
    nb_node *xn = nb_input(g, "x", dt, 3, xd), *wn = nb_input(g, "w", dt, 3, xd);
    nb_node *vn = nb_input(g, "v", dt, 3, xd);
    nb_node *gn = nb_input(g, "gamma", dt, axis == 1 ? 2 : 1, axis == 1 ? xd + 1 : xd + 2);
    nb_node *bn = nb_input(g, "beta", dt, axis == 1 ? 2 : 1, axis == 1 ? xd + 1 : xd + 2);
    nb_node *yn = nb_layernorm(g, xn, gn, bn, axis, 1e-5), *gr[3], *h;
    cr_assert_not_null(yn, "%s", nb_graph_error(g));
    nb_node *wrt[3] = {xn, gn, bn};
    cr_assert_eq(nb_grad(g, nb_sum(g, nb_mul(g, yn, wn), NULL, 0, false), wrt, 3, gr), NB_OK,
                 "%s", nb_graph_error(g));
    cr_assert_eq(nb_grad(g, nb_sum(g, nb_mul(g, gr[0], vn), NULL, 0, false), &xn, 1, &h), NB_OK,
                 "%s", nb_graph_error(g));
    eval_graph(g, 5, (nb_node *[]){yn, gr[0], gr[1], gr[2], h}, (double *[]){y, dx, dg, db, hv}, 5,
               (nb_node *[]){xn, gn, bn, wn, vn},
               (const double *[]){x, gamma + off, beta + off, w, v}, NULL, 0);
    nb_graph_free(g);
}

Test(embed, layernorm_over_the_last_axis_matches_torch)
{
    static const double want_y[24] = {
        -1.280704544657939, 2.3004312347589764, 2.1053473160297513, -2.0843921479726872,
        -1.7851742839017835, -1.2474720149748093, 1.325561238169076, 3.2442980126046037,
        3.0723231203075376, -0.17050600099988941, -2.0336942885305818, -0.085894846822858556,
        1.0577251425847261, 2.348419102809356, 0.33364304284633778, -3.0053098521618775,
        -2.4211795509044167, -0.50422315212025282, 2.0558543654055916, 2.3980107885823685,
        1.6435917514478635, -1.814844147407092, -1.4817130281177551, 2.8188044657580957};
    static const double want_dx[24] = {
        0.57087676962811074, 0.12006163218312671, -0.22353394502904589, -0.46740445678219134,
        0.15924523318914596, -0.17180259373495177, -0.026469420089578755, 0.039026780635384783,
        -0.08895395203352896, -0.33680505346517076, -0.16238716243414553, 0.58814616793284502,
        -0.58995412113391532, 0.25974042460328528, 0.32320913648985217, 0.0070045600407777631,
        -0.078468781664083331, 0.12549099440593847, 0.19111970701560421, -0.23814191975745913,
        1.0521634217235474, 0.22996800042297116, -0.44200305218262459, -0.84012836996389462};
    static const double want_dg[4] = {-3.9047067439951237, 2.2571092233047363, 2.2831816290833133,
                                      -4.0900059743545754};
    static const double want_db[4] = {0.90768957029298425, 0.42678124865511213,
                                      -0.12150644807684363, -0.65061094834194744};
    static const double want_hv[24] = {
        -0.033246989453998357, -0.077420132364610872, -0.019473191940316978, 0.13014031375892621,
        0.062986260633791563, -0.060692788035786441, -0.0050981951138376613, 0.0028047225158325112,
        0.027055005842815078, 0.029191223898548758, 0.0050776224720668114, -0.061323852213430619,
        -0.19326305551049983, 0.041897394636295084, 0.089211661644748017, 0.062153999229456747,
        0.0056743032002074811, -0.024632347627630745, -0.045612450573052729, 0.064570495000475986,
        0.030349850618450951, 0.05190909267425925, 0.0072224286115986774, -0.089481371904308896};
    for (int d = 0; d < 2; d++) {
        double y[24], dx[24], dg[4], db[4], hv[24], tol = d ? 1e-12 : 2e-5;
        layernorm_case(both[d], -1, y, dx, dg, db, hv);
        expect_close(y, want_y, 24, tol, tol, "y");
        expect_close(dx, want_dx, 24, tol, tol, "dx");
        expect_close(dg, want_dg, 4, tol, tol, "dgamma");
        expect_close(db, want_db, 4, tol, tol, "dbeta");
        expect_close(hv, want_hv, 24, tol, d ? 1e-10 : 1e-3, "hvp");
    }
}

Test(embed, layernorm_over_two_axes_matches_torch)
{
    static const double want_y[24] = {
        -0.18334911280491439, 1.2905073646803491, 1.3274730599846523, -0.32585418285313716,
        -1.9094135187743069, -1.4603464547292122, 0.84978126823890598, 2.6153675385800561,
        1.7573740622843956, -0.97950931279507247, -2.5681298306231395, -0.98489898555258137,
        0.62632752188422125, 1.3853936715505959, 0.39129533911001041, -1.4214041009383689,
        -1.955749011832745, -0.31437729253316754, 1.9336962790545547, 2.2785448260374204,
        0.12672541220356373, -2.2571358259588115, -2.0738058853941279, 0.79575886381315597};
    static const double want_dx[24] = {
        1.0607612411831639, 0.92343801910810608, 0.8085931265524311, 0.70308741727767055,
        0.46257123620603952, -0.0011157148667431671, -0.57175425245299027, -0.98933112664389455,
        -1.0644307873424372, -0.82510683594540757, -0.44806220633626126, -0.058650116739677627,
        -0.1565052068071042, 0.08196660170572076, 0.50317314635065014, 0.91276369101445531,
        1.0575394886540295, 0.85297612109395915, 0.44315851714655519, 0.036035702271889361,
        -0.30168789915890848, -0.66689125837506857, -1.1417302125341404, -1.6207986913620371};
    static const double want_dg[12] = {
        0.088953705347992587, 1.8601387975559167, 1.1463016329904021, -1.0897995161331857,
        -1.347618900574777, 0.20782479703796913, 0.35165471661614245, -1.0518273734647021,
        -0.85780940851948395, 1.2655263226105635, 1.900056068988534, -0.011565166053079572};
    static const double want_db[12] = {
        1.0874989834394473, 1.3895776653032623, 1.4722725878574154, 1.3225280411270393,
        0.96398539645690373, 0.45325065380268242, -0.12904240100899123, -0.69096249808640342,
        -1.1437948096033668, -1.4160470704508326, -1.464736634925268, -1.2821764913825833};
    static const double want_hv[24] = {
        -0.26518531715206961, -0.67425431850219641, -0.60435032693155422, -0.098420749288800208,
        0.34999850282073824, 0.32976408032136362, -0.048976146833354224, -0.28817990958036804,
        -0.059793611493476888, 0.42385569947073182, 0.63412840003069537, 0.30141369713829091,
        0.21465176049521661, 0.32717573296989472, 0.20975031189933446, 0.0094349950990459189,
        -0.050733817064033779, 0.079395819715586943, 0.21981294477287461, 0.15828681078331241,
        -0.11234876649602701, -0.37720998264420447, -0.42235819482395154, -0.25585761470704876};
    for (int d = 0; d < 2; d++) {
        double y[24], dx[24], dg[12], db[12], hv[24], tol = d ? 1e-12 : 2e-5;
        layernorm_case(both[d], 1, y, dx, dg, db, hv);
        expect_close(y, want_y, 24, tol, tol, "y");
        expect_close(dx, want_dx, 24, tol, tol, "dx");
        expect_close(dg, want_dg, 12, tol, tol, "dgamma");
        expect_close(db, want_db, 12, tol, tol, "dbeta");
        expect_close(hv, want_hv, 24, tol, d ? 1e-10 : 1e-3, "hvp");
    }
}

Test(embed, layernorm_shapes_are_checked)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 3, (nb_dim[]){NB_SYM("N"), NB_DIM(3), NB_DIM(4)});
    nb_node *g4 = nb_input(g, "g4", NB_F32, 1, (nb_dim[]){NB_DIM(4)});
    nb_node *g3 = nb_input(g, "g3", NB_F32, 1, (nb_dim[]){NB_DIM(3)});
    cr_expect_null(nb_layernorm(g, x, g3, g4, -1, 1e-5));
    assert_has(nb_graph_error(g), "needs gamma [4]; g3 is [3]");
    nb_graph_clear_error(g);
    cr_expect_null(nb_layernorm(g, x, g4, g4, 1, 1e-5));
    nb_graph_clear_error(g);
    cr_expect_null(nb_layernorm(g, x, g4, g4, 3, 1e-5));
    assert_has(nb_graph_error(g), "axis 3 is out of range for rank 3");
    nb_graph_clear_error(g);
    cr_expect_str_eq(node_shape(g, nb_layernorm(g, x, g4, g4, -1, 1e-5)), "[N, 3, 4]");
    nb_graph_free(g);
}

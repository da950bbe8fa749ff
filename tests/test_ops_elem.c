/* The elementwise ops of issue 9 against PyTorch, and NaN as PyTorch has it.
 *
 * Every reference below was computed once with PyTorch 1.13 in float64
 * (/usr/bin/python3): for the unary ops, y = f(x), g = d sum(y)/dx and
 * h = d sum(g)/dx (torch.autograd.grad with create_graph=True) on
 *   x = [-3, -1.5, -0.5, -1e-3, 0, 0.25, 1, 2.5, 30]
 * e.g. for gelu: y = F.gelu(x); g, = grad(y.sum(), x, create_graph=True);
 * h, = grad(g.sum(), x). The op-level gradchecks are in test_grad_ops.c. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define NX 9
static const double xs[NX] = {-3, -1.5, -0.5, -1e-3, 0, 0.25, 1, 2.5, 30};

/* got[i] against want[i]: NaN where want is NaN, the same infinity where it is
 * infinite, else |got - want| <= tol max(1, |want|). */
static void expect_vals(const double *got, const double *want, size_t n, double tol, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        bool ok = isnan(want[i]) ? isnan(got[i])
                : isinf(want[i]) ? got[i] == want[i]
                                 : fabs(got[i] - want[i]) <= tol * fmax(1, fabs(want[i]));
        cr_expect(ok, "%s [%zu]: got %.17g, want %.17g", what, i, got[i], want[i]);
    }
}

typedef nb_node *(*unary_fn)(nb_graph *, nb_node *);

/* y = f(x), its gradient and second derivative, in f32 and f64, against
 * the reference values y, g, h (h NULL: not checked). */
static void check_unary(const char *what, unary_fn f, const double *x, int n, const double *y,
                        const double *g1, const double *h)
{
    nb_dtype dts[2] = {NB_F32, NB_F64};
    for (int d = 0; d < 2; d++) {
        nb_graph *g = nb_graph_new();
        nb_node *in = nb_input(g, "x", dts[d], 1, (nb_dim[]){NB_DIM(n)});
        nb_node *out = f(g, in), *gx, *hx;
        cr_assert_not_null(out, "%s: %s", what, nb_graph_error(g));
        cr_assert_eq(nb_grad(g, nb_sum(g, out, NULL, 0, false), &in, 1, &gx), NB_OK, "%s: %s",
                     what, nb_graph_error(g));
        cr_assert_eq(nb_grad(g, nb_sum(g, gx, NULL, 0, false), &in, 1, &hx), NB_OK, "%s: %s",
                     what, nb_graph_error(g));
        double vy[NX], vg[NX], vh[NX];
        eval_graph(g, 3, (nb_node *[]){out, gx, hx}, (double *[]){vy, vg, vh}, 1, &in, &x, NULL, 0);
        char name[96];
        double tol = dts[d] == NB_F64 ? 1e-12 : 1e-5;
        snprintf(name, sizeof name, "%s in %s", what, nb_dtype_name(dts[d]));
        expect_vals(vy, y, (size_t)n, tol, name);
        snprintf(name, sizeof name, "%s' in %s", what, nb_dtype_name(dts[d]));
        expect_vals(vg, g1, (size_t)n, tol, name);
        snprintf(name, sizeof name, "%s'' in %s", what, nb_dtype_name(dts[d]));
        if (h) expect_vals(vh, h, (size_t)n, tol, name);
        nb_graph_free(g);
    }
}

static nb_node *log1p_scaled(nb_graph *g, nb_node *x) { return nb_log1p(g, nb_scale(g, x, 1 / 3.5, 0)); }
static nb_node *gelu_erf(nb_graph *g, nb_node *x) { return nb_gelu(g, x, false); }
static nb_node *gelu_tanh(nb_graph *g, nb_node *x) { return nb_gelu(g, x, true); }
static nb_node *elu_1(nb_graph *g, nb_node *x) { return nb_elu(g, x, 1); }
static nb_node *elu_half(nb_graph *g, nb_node *x) { return nb_elu(g, x, 0.5); }
static nb_node *softplus_default(nb_graph *g, nb_node *x)
{
    return nb_op(g, "softplus", NULL, &x, 1, NULL, 0);
}
static nb_node *softplus_2_1(nb_graph *g, nb_node *x) { return nb_softplus(g, x, 2, 1); }

/* torch.log1p(x / 3.5) */
Test(elem, log1p)
{
    check_unary("log1p", log1p_scaled, xs, NX,
        (double[]){-1.945910149055313, -0.5596157879354227, -0.1541506798272583, -0.0002857551098170211, 0.0, 0.06899287148695145, 0.25131442828090605, 0.538996500732687, 2.2587824703356527},
        (double[]){1.9999999999999993, 0.5, 0.3333333333333333, 0.28579594169762795, 0.2857142857142857, 0.26666666666666666, 0.22222222222222227, 0.16666666666666666, 0.029850746268656716},
        (double[]){-3.999999999999997, -0.25, -0.11111111111111109, -0.08167932029083393, -0.08163265306122448, -0.07111111111111111, -0.04938271604938272, -0.027777777777777773, -0.0008910670527957229});
}

Test(elem, sin_cos)
{
    double s[NX] = {-0.1411200080598672, -0.9974949866040544, -0.479425538604203, -0.0009999998333333417, 0.0, 0.24740395925452294, 0.8414709848078965, 0.5984721441039564, -0.9880316240928618};
    double c[NX] = {-0.9899924966004454, 0.0707372016677029, 0.8775825618903728, 0.9999995000000417, 1.0, 0.9689124217106447, 0.5403023058681398, -0.8011436155469337, 0.15425144988758405};
    double ms[NX], mc[NX];
    for (int i = 0; i < NX; i++) ms[i] = -s[i], mc[i] = -c[i];
    check_unary("sin", nb_sin, xs, NX, s, c, ms);
    check_unary("cos", nb_cos, xs, NX, c, ms, mc);
}

Test(elem, erf)
{
    check_unary("erf", nb_erf, xs, NX,
        (double[]){-0.9999779095030014, -0.9661051464753108, -0.5204998778130465, -0.0011283787909692365, 0.0, 0.27632639016823696, 0.8427007929497149, 0.999593047982555, 1.0},
        (double[]){0.00013925305194674786, 0.11893028922362936, 0.8787825789354448, 1.1283780387169096, 1.1283791670955126, 1.0600141293761143, 0.4151074974205947, 0.00217828423035271, 0.0},
        (double[]){0.0008355183116804871, 0.3567908676708881, 0.8787825789354448, 0.0022567560774338193, -0.0, -0.5300070646880571, -0.8302149948411894, -0.01089142115176355, -0.0});
}

Test(elem, gelu)
{
    check_unary("gelu", gelu_erf, xs, NX,
        (double[]){-0.00404969409489031, -0.10021080190328704, -0.15426876936299344, -0.000499601057786089, 0.0, 0.14967658142073093, 0.841344746068543, 2.4844758366855597, 30.0},
        (double[]){-0.01194564720418392, -0.1274691922299796, 0.13250487534383712, 0.4992021157051586, 0.5, 0.695373354883636, 1.0833154705876864, 1.037611085908145, 1.0},
        (double[]){-0.031022938883566054, -0.03237939891647296, 0.6161143218375241, 0.7978837629186039, 0.7978845608028654, 0.7491694763055204, 0.24197072451914337, -0.07449527709766629, -1.3233342291209357e-193});
    check_unary("gelu(tanh)", gelu_tanh, xs, NX,
        (double[]){-0.0036373920817729943, -0.10042842301976707, -0.15428599017485606, -0.000499601057786418, 0.0, 0.149675350701685, 0.8411919906082768, 2.484915733910001, 30.0},
        (double[]){-0.011584166630969648, -0.12771079315143308, 0.13263009646535764, 0.499202115706475, 0.5, 0.6953540951510604, 1.0829640838457826, 1.037951576212666, 1.0},
        (double[]){-0.03176765888607492, -0.03051819648422486, 0.615506895115985, 0.7978837589694453, 0.7978845608028654, 0.7489486142236504, 0.24214819798377302, -0.07624539207361294, 0.0});
}

Test(elem, silu)
{
    check_unary("silu", nb_silu, xs, NX,
        (double[]){-0.14227761953270035, -0.2736382857095345, -0.1887703343990727, -0.0004997500000208334, 0.0, 0.14054412522144952, 0.7310585786300049, 2.3103545499468914, 29.999999999997197},
        (double[]){-0.08810410601516962, -0.041294154299142946, 0.2600388126973482, 0.4995000000833333, 0.5, 0.6237100215701977, 0.9276705118714869, 1.0994011113415267, 1.000000000002711},
        (double[]){-0.032321404521006174, 0.15619758496353672, 0.44122902697702865, 0.4999997500000626, 0.5, 0.48461628746851704, 0.3023661188100153, -0.008462156523368874, -2.6174618028555004e-12});
}

/* at 0: elu' = alpha, elu'' = 0, as PyTorch */
Test(elem, elu)
{
    check_unary("elu", elu_1, xs, NX,
        (double[]){-0.950212931632136, -0.7768698398515702, -0.3934693402873666, -0.000999500166624978, 0.0, 0.25, 1.0, 2.5, 30.0},
        (double[]){0.049787068367863944, 0.22313016014842982, 0.6065306597126334, 0.999000499833375, 1.0, 1.0, 1.0, 1.0, 1.0},
        (double[]){0.049787068367863944, 0.22313016014842982, 0.6065306597126334, 0.999000499833375, 0.0, 0.0, 0.0, 0.0, 0.0});
    check_unary("elu(alpha 0.5)", elu_half, xs, NX,
        (double[]){-0.475106465816068, -0.3884349199257851, -0.1967346701436833, -0.000499750083312489, 0.0, 0.25, 1.0, 2.5, 30.0},
        (double[]){0.024893534183931972, 0.11156508007421491, 0.3032653298563167, 0.4995002499166875, 0.5, 1.0, 1.0, 1.0, 1.0},
        (double[]){0.024893534183931972, 0.11156508007421491, 0.3032653298563167, 0.4995002499166875, 0.0, 0.0, 0.0, 0.0, 0.0});
}

/* F.softplus(x) and F.softplus(x, beta=2, threshold=1): linear above the threshold */
Test(elem, softplus)
{
    check_unary("softplus", softplus_default, xs, NX,
        (double[]){0.04858735157374206, 0.2014132779827524, 0.4740769841801067, 0.6926473055599401, 0.6931471805599453, 0.8259394198788436, 1.3132616875182228, 2.5788897342925496, 30.0},
        (double[]){0.04742587317756679, 0.18242552380635632, 0.37754066879814546, 0.49975000002083336, 0.5, 0.5621765008857981, 0.7310585786300049, 0.9241418199787564, 1.0},
        (double[]){0.04517665973091214, 0.14914645207033286, 0.2350037122015945, 0.24999993750001046, 0.25, 0.24613408273759835, 0.19661193324148185, 0.07010371654510807, 0.0});
    check_unary("softplus(2, 1)", softplus_2_1, xs, NX,
        (double[]){0.0012378425688652247, 0.02429367578687103, 0.15663084375911143, 0.346073840279931, 0.34657359027997264, 0.48703849209005334, 1.0, 2.5, 30.0},
        (double[]){0.0024726231566347748, 0.04742587317756679, 0.2689414213699951, 0.49950000016666657, 0.5, 0.6224593312018546, 1.0, 1.0, 1.0},
        (double[]){0.004933018582720096, 0.09035331946182427, 0.3932238664829637, 0.49999950000033333, 0.5, 0.470007424403189, 0.0, 0.0, 0.0});
}

/* ---- binary and selection ops ---- */

/* y = op(a, b) with a [2, 3] and b [3] in dtype dt, and the gradients of
 * sum(y) for a and b (both NULL: not computed). */
static void eval_binary(nb_dtype dt, nb_node *(*op)(nb_graph *, nb_node *, nb_node *),
                        const double *a, const double *b, int n, double *y, double *ga, double *gb)
{
    nb_graph *g = nb_graph_new();
    nb_node *in[2] = {nb_input(g, "a", dt, 1, (nb_dim[]){NB_DIM(n)}),
                      nb_input(g, "b", dt, 1, (nb_dim[]){NB_DIM(n)})};
    nb_node *out = op(g, in[0], in[1]), *gr[2];
    cr_assert_not_null(out, "%s", nb_graph_error(g));
    int n_out = 1;
    if (ga) {
        cr_assert_eq(nb_grad(g, nb_sum(g, out, NULL, 0, false), in, 2, gr), NB_OK, "%s",
                     nb_graph_error(g));
        n_out = 3;
    }
    eval_graph(g, n_out, (nb_node *[]){out, gr[0], gr[1]}, (double *[]){y, ga, gb}, 2, in,
               (const double *[]){a, b}, NULL, 0);
    nb_graph_free(g);
}

/* torch.maximum / torch.minimum: NaN in either input gives NaN, and its
 * gradient passes to both (neither compares smaller); a tie gives each half */
Test(elem, maximum_minimum_nan_and_ties)
{
    double a[5] = {NAN, 1, 2, NAN, -1}, b[5] = {1, NAN, 2, NAN, 3};
    double y[5], ga[5], gb[5];
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = d ? NB_F64 : NB_F32;
        eval_binary(dt, nb_maximum, a, b, 5, y, ga, gb);
        expect_vals(y, (double[]){NAN, NAN, 2, NAN, 3}, 5, 0, "maximum");
        expect_vals(ga, (double[]){1, 1, 0.5, 1, 0}, 5, 0, "d maximum / da");
        expect_vals(gb, (double[]){1, 1, 0.5, 1, 1}, 5, 0, "d maximum / db");
        eval_binary(dt, nb_minimum, a, b, 5, y, ga, gb);
        expect_vals(y, (double[]){NAN, NAN, 2, NAN, -1}, 5, 0, "minimum");
        expect_vals(ga, (double[]){1, 1, 0.5, 1, 1}, 5, 0, "d minimum / da");
        expect_vals(gb, (double[]){1, 1, 0.5, 1, 0}, 5, 0, "d minimum / db");
    }
}

/* comparisons give 1/0 in the float dtype; equal is exact */
Test(elem, comparisons)
{
    double a[4] = {1, 2, -0.0, 3.5}, b[4] = {2, 2, 0.0, -1};
    double y[4];
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = d ? NB_F64 : NB_F32;
        eval_binary(dt, nb_greater, a, b, 4, y, NULL, NULL);
        expect_vals(y, (double[]){0, 0, 0, 1}, 4, 0, "greater");
        eval_binary(dt, nb_less, a, b, 4, y, NULL, NULL);
        expect_vals(y, (double[]){1, 0, 0, 0}, 4, 0, "less");
        eval_binary(dt, nb_equal, a, b, 4, y, NULL, NULL);
        expect_vals(y, (double[]){0, 1, 1, 0}, 4, 0, "equal");
    }
}

/* i32 against i32 gives the graph's float dtype (f64 here, from x); i32
 * against a float broadcasts and gives that float's dtype */
Test(elem, comparisons_of_i32)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *i = nb_input(g, "i", NB_I32, 2, (nb_dim[]){NB_DIM(2), NB_DIM(3)});
    nb_node *j = nb_input(g, "j", NB_I32, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *eq = nb_equal(g, i, j), *gt = nb_greater(g, i, x), *lt = nb_less(g, i, x);
    cr_assert_not_null(lt, "%s", nb_graph_error(g));
    cr_expect_eq(nb_node_dtype(eq), NB_F64);
    cr_expect_eq(nb_node_dtype(gt), NB_F64);
    cr_expect_str_eq(node_shape(g, gt), "[2, 3]");
    double vi[6] = {0, 1, 2, 3, 4, 5}, vj[3] = {0, 4, 5}, vx[3] = {-1, 1.5, 4};
    double yeq[6], ygt[6], ylt[6];
    eval_graph(g, 3, (nb_node *[]){eq, gt, lt}, (double *[]){yeq, ygt, ylt}, 3,
               (nb_node *[]){x, i, j}, (const double *[]){vx, vi, vj}, NULL, 0);
    expect_vals(yeq, (double[]){1, 0, 0, 0, 1, 1}, 6, 0, "equal(i, j)");
    expect_vals(ygt, (double[]){1, 0, 0, 1, 1, 1}, 6, 0, "greater(i, x)");
    expect_vals(ylt, (double[]){0, 1, 1, 0, 0, 0}, 6, 0, "less(i, x)");
    nb_graph_free(g);
}

/* where(c, a, b) with c i32 [2, 1], a [3], b a scalar: the gradient reaches a
 * where chosen and b elsewhere, exactly 0 otherwise even when gy is inf */
Test(elem, where_broadcast_and_gradient)
{
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = d ? NB_F64 : NB_F32;
        nb_graph *g = nb_graph_new();
        nb_node *c = nb_input(g, "c", NB_I32, 2, (nb_dim[]){NB_DIM(2), NB_DIM(1)});
        nb_node *a = nb_input(g, "a", dt, 1, (nb_dim[]){NB_DIM(3)});
        nb_node *b = nb_input(g, "b", dt, 0, NULL);
        nb_node *y = nb_where(g, c, a, b), *gr[2];
        cr_assert_not_null(y, "%s", nb_graph_error(g));
        cr_expect_str_eq(node_shape(g, y), "[2, 3]");
        /* loss = sum(y * w) with w = [[1, 2, 3], [inf, inf, inf]]: row 1 takes b */
        nb_node *w = nb_input(g, "w", dt, 2, (nb_dim[]){NB_DIM(2), NB_DIM(3)});
        cr_assert_eq(nb_grad(g, nb_sum(g, nb_mul(g, y, w), NULL, 0, false), (nb_node *[]){a, b}, 2, gr),
                     NB_OK, "%s", nb_graph_error(g));
        double vc[2] = {3, 0}, va[3] = {1, 2, 3}, vb[1] = {-7}, vw[6] = {1, 2, 3, INFINITY, INFINITY, INFINITY};
        double vy[6], vga[3], vgb[1];
        eval_graph(g, 3, (nb_node *[]){y, gr[0], gr[1]}, (double *[]){vy, vga, vgb}, 4,
                   (nb_node *[]){c, a, b, w}, (const double *[]){vc, va, vb, vw}, NULL, 0);
        expect_vals(vy, (double[]){1, 2, 3, -7, -7, -7}, 6, 0, "where");
        expect_vals(vga, (double[]){1, 2, 3}, 3, 0, "d where / da");
        expect_vals(vgb, (double[]){INFINITY}, 1, 0, "d where / db");
        nb_graph_free(g);
    }
}

/* torch.clamp: NaN stays NaN with gradient 0; gradient 1 on the closed
 * interval; min > max gives max everywhere and no gradient */
Test(elem, clip)
{
    double x[5] = {NAN, -2, 0.5, 3, -1};
    double y[5], gx[5];
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = d ? NB_F64 : NB_F32;
        for (int k = 0; k < 4; k++) {
            double lo[4] = {-1, 1, -1, NAN}, hi[4] = {1, -1, NAN, 1};
            nb_graph *g = nb_graph_new();
            nb_node *in = nb_input(g, "x", dt, 1, (nb_dim[]){NB_DIM(5)}), *gr;
            nb_node *out = nb_clip(g, in, lo[k], hi[k]);
            cr_assert_not_null(out, "%s", nb_graph_error(g));
            cr_assert_eq(nb_grad(g, nb_sum(g, out, NULL, 0, false), &in, 1, &gr), NB_OK);
            eval_graph(g, 2, (nb_node *[]){out, gr}, (double *[]){y, gx}, 1, &in,
                       (const double *[]){x}, NULL, 0);
            /* torch.clamp(x, -1, 1), (x, 1, -1), (x, min=-1), (x, max=1) */
            static const double want[4][5] = {{NAN, -1, 0.5, 1, -1}, {NAN, -1, -1, -1, -1},
                                              {NAN, -1, 0.5, 3, -1}, {NAN, -2, 0.5, 1, -1}};
            static const double wantg[4][5] = {{0, 0, 1, 0, 1}, {0, 0, 0, 0, 0},
                                               {0, 0, 1, 1, 1}, {0, 1, 1, 0, 1}};
            expect_vals(y, want[k], 5, 0, "clip");
            expect_vals(gx, wantg[k], 5, 0, "d clip / dx");
            nb_graph_free(g);
        }
    }
}

/* ---- NaN semantics of the older ops (regressions) ---- */

/* torch.relu: NaN stays NaN (relu used to give 0) */
Test(elem_nan, relu_of_nan_is_nan)
{
    double x[4] = {NAN, -INFINITY, INFINITY, -0.5}, y[4];
    for (int d = 0; d < 2; d++) {
        nb_graph *g = nb_graph_new();
        nb_node *in = nb_input(g, "x", d ? NB_F64 : NB_F32, 1, (nb_dim[]){NB_DIM(4)});
        eval_node(g, nb_relu(g, in), y, 1, &in, (const double *[]){x});
        expect_vals(y, (double[]){NAN, 0, INFINITY, 0}, 4, 0, "relu");
        nb_graph_free(g);
    }
}

/* The gradient of sqrt(relu(x)) is 0 at x <= 0 (relu's gradient selects:
 * it used to multiply inf by 0, giving NaN), 1/(2 sqrt x) above, NaN at NaN.
 * torch: [0, 0, 0, 0.25, nan] at x = [-1, -0, 0, 4, nan]. */
Test(elem_nan, sqrt_of_relu_has_gradient_0_below_0)
{
    double x[5] = {-1, -0.0, 0, 4, NAN}, gx[5];
    for (int d = 0; d < 2; d++) {
        nb_graph *g = nb_graph_new();
        nb_node *in = nb_input(g, "x", d ? NB_F64 : NB_F32, 1, (nb_dim[]){NB_DIM(5)}), *gr;
        nb_node *y = nb_sqrt(g, nb_relu(g, in));
        cr_assert_eq(nb_grad(g, nb_sum(g, y, NULL, 0, false), &in, 1, &gr), NB_OK);
        eval_node(g, gr, gx, 1, &in, (const double *[]){x});
        expect_vals(gx, (double[]){0, 0, 0, 0.25, NAN}, 5, 0, "d sqrt(relu(x)) / dx");
        nb_graph_free(g);
    }
}

/* relu's and leaky_relu's gradient ops on inf and NaN gradients, as
 * torch.autograd.grad(F.relu(x), x, gy) and F.leaky_relu(x, 0.1) give them */
Test(elem_nan, relu_backward_selects)
{
    double gy[6] = {INFINITY, NAN, -INFINITY, 2, NAN, 3}, a[6] = {-1, -2, 0, NAN, NAN, 1};
    double relu[6] = {0, 0, 0, 2, NAN, 3}, leaky[6] = {INFINITY, NAN, -INFINITY, 0.2, NAN, 3};
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = d ? NB_F64 : NB_F32;
        nb_graph *g = nb_graph_new();
        nb_node *in[2] = {nb_input(g, "gy", dt, 1, (nb_dim[]){NB_DIM(6)}),
                          nb_input(g, "a", dt, 1, (nb_dim[]){NB_DIM(6)})};
        nb_node *r = nb_op(g, "relu_backward", NULL, in, 2, NULL, 0);
        nb_node *l = nb_op(g, "leaky_relu_backward", NULL, in, 2,
                           (nb_attr[]){NB_AFLOAT("alpha", 0.1)}, 1);
        cr_assert_not_null(l, "%s", nb_graph_error(g));
        double vr[6], vl[6];
        eval_graph(g, 2, (nb_node *[]){r, l}, (double *[]){vr, vl}, 2, in,
                   (const double *[]){gy, a}, NULL, 0);
        expect_vals(vr, relu, 6, 0, "relu_backward");
        expect_vals(vl, leaky, 6, 1e-7, "leaky_relu_backward");
        nb_graph_free(g);
    }
}

/* torch.pow(x, 0): 1 everywhere, gradient 0 everywhere, 0 at x = 0 too (was NaN) */
Test(elem_nan, pow_0_has_gradient_0)
{
    double x[4] = {0, -0.0, 2, -3}, y[4], gx[4];
    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "x", NB_F64, 1, (nb_dim[]){NB_DIM(4)}), *gr;
    nb_node *out = nb_pow(g, in, 0);
    cr_assert_eq(nb_grad(g, nb_sum(g, out, NULL, 0, false), &in, 1, &gr), NB_OK);
    eval_graph(g, 2, (nb_node *[]){out, gr}, (double *[]){y, gx}, 1, &in, (const double *[]){x},
               NULL, 0);
    expect_vals(y, (double[]){1, 1, 1, 1}, 4, 0, "pow(x, 0)");
    expect_vals(gx, (double[]){0, 0, 0, 0}, 4, 0, "d pow(x, 0) / dx");
    nb_graph_free(g);
}

/* the new unary ops at NaN, -1, 0, 2, as torch (elu's gradient passes at NaN) */
Test(elem_nan, unary_ops_at_nan)
{
    double x[4] = {NAN, -1, 0, 2};
    struct { unary_fn f; double y[4], g[4]; } c[] = {
        {gelu_erf, {NAN, -0.15865525393145702, 0, 1.9544997361036416}, {NAN, -0.08331547058768635, 0.5, 1.085231801078197}},
        {nb_silu, {NAN, -0.2689414213699951, 0, 1.7615941559557646}, {NAN, 0.07232948812851325, 0.5, 1.0907842487848955}},
        {elu_1, {NAN, -0.6321205588285577, 0, 2}, {1, 0.36787944117144233, 1, 1}},
        {softplus_default, {NAN, 0.31326168751822286, 0.6931471805599453, 2.1269280110429727}, {NAN, 0.2689414213699951, 0.5, 0.8807970779778824}},
        {nb_log1p, {NAN, -INFINITY, 0, 1.0986122886681098}, {NAN, INFINITY, 1, 0.3333333333333333}},
    };
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
        nb_graph *g = nb_graph_new();
        nb_node *in = nb_input(g, "x", NB_F64, 1, (nb_dim[]){NB_DIM(4)}), *gr;
        nb_node *out = c[k].f(g, in);
        cr_assert_eq(nb_grad(g, nb_sum(g, out, NULL, 0, false), &in, 1, &gr), NB_OK);
        double y[4], gx[4];
        eval_graph(g, 2, (nb_node *[]){out, gr}, (double *[]){y, gx}, 1, &in,
                   (const double *[]){x}, NULL, 0);
        expect_vals(y, c[k].y, 4, 1e-14, nb_node_op(out));
        expect_vals(gx, c[k].g, 4, 1e-14, nb_node_op(out));
        nb_graph_free(g);
    }
}

/* ---- errors ---- */

static void expect_build_error(nb_graph *g, nb_node *n, const char *part)
{
    cr_expect_null(n);
    cr_expect(strstr(nb_graph_error(g), part), "message '%s' lacks '%s'", nb_graph_error(g), part);
    nb_graph_clear_error(g);
}

Test(elem_errors, bad_attributes_and_dtypes)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *d = nb_input(g, "d", NB_F64, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *i = nb_input(g, "i", NB_I32, 1, (nb_dim[]){NB_DIM(3)});
    expect_build_error(g, nb_op(g, "clip", "c", &x, 1, NULL, 0),
                       "node 'c': clip needs 'min' or 'max' (or both)");
    expect_build_error(g, nb_op(g, "gelu", "g", &x, 1, (nb_attr[]){NB_ASTRING("approximate", "tanhh")}, 1),
                       "node 'g': attribute 'approximate' must be one of none, tanh; got 'tanhh' "
                       "(did you mean 'tanh'?)");
    expect_build_error(g, nb_op(g, "gelu", "g", &x, 1, (nb_attr[]){NB_AFLOAT("approximate", 1)}, 1),
                       "attribute 'approximate' has the wrong type");
    expect_build_error(g, nb_greater(g, x, d), "mixes f32 and f64 inputs");
    expect_build_error(g, nb_where(g, x, i, x), "needs float inputs; i is i32");
    expect_build_error(g, nb_maximum(g, x, i), "needs float inputs; i is i32");
    nb_node *gl = nb_gelu(g, x, true);
    cr_assert_not_null(gl, "%s", nb_graph_error(g));
    cr_expect_str_eq(nb_node_attr(gl, "approximate")->s, "tanh");
    cr_expect_eq(nb_node_attr(gl, "approximate")->i[0], 1);
    cr_expect_str_eq(nb_node_attr(nb_gelu(g, x, false), "approximate")->s, "none");
    nb_graph_free(g);
}

/* a string attribute must list its choices */
Test(elem_errors, string_attribute_needs_choices)
{
    static const nb_attr_def attrs[] = {{"mode", NB_ATTR_STRING, false, {.s = "a"}}};
    nb_op_def def = *nb_op_find("silu");
    def.name = "silu_with_mode";
    def.attrs = attrs;
    def.n_attrs = 1;
    assert_error(nb_op_register(&def), NB_ERR_ARG, "a string attribute needs its list of choices");
}

Test(elem_errors, yaml_messages)
{
    EXPECT_ERROR("nabla: 1\ninputs: {x: [3]}\nnodes:\n"
                 "  - {name: g, op: gelu, in: [x], approximate: tanhh}\n",
                 "m.yaml:4:47: 'approximate' must be one of none, tanh; got 'tanhh' (did you mean 'tanh'?)");
    EXPECT_ERROR("nabla: 1\ninputs: {x: [3]}\nnodes:\n"
                 "  - {name: c, op: clip, in: [x]}\n",
                 "m.yaml:4:5: node 'c': clip needs 'min' or 'max' (or both)");
}

/* ---- a model file using the new ops by name ----
 * The reference is PyTorch (float64):
 *   g = F.gelu(x, approximate='tanh'); g2 = F.gelu(x); s = F.softplus(x, beta=2)
 *   mx = torch.maximum(g, w); mn = torch.minimum(g2, w)
 *   c = torch.clamp(mx, min=-0.1, max=1.5)
 *   gt = (x > w).double(); lt = (x < w).double(); eq = (gt == lt).double()
 *   wh = torch.where(m != 0, c, s); e = F.elu(wh, alpha=0.5); sl = F.silu(e)
 *   q = sl*gt + torch.log1p(s)*lt + torch.sin(x)*torch.cos(mn)*eq + torch.erf(mn)
 *   loss = q.sum(); gx, gw = torch.autograd.grad(loss, [x, w])
 * with x = [[0.5, -1.2, 0.3], [2, -0.4, 1.7]], w = [0.5, -1, 2], m = [1, 0, 1]. */
static const char *elem_model =
    "nabla: 1\n"
    "dtype: f64\n"
    "inputs:\n"
    "  x: [2, 3]\n"
    "  m: {shape: [3], dtype: i32}\n"
    "params:\n"
    "  w: {shape: [3], init: {values: [0.5, -1.0, 2.0]}}\n"
    "nodes:\n"
    "  - {name: g,  op: gelu, in: [x], approximate: tanh}\n"
    "  - {name: g2, op: gelu, in: [x]}\n"
    "  - {name: s,  op: softplus, in: [x], beta: 2}\n"
    "  - {name: mx, op: maximum, in: [g, w]}\n"
    "  - {name: mn, op: minimum, in: [g2, w]}\n"
    "  - {name: c,  op: clip, in: [mx], min: -0.1, max: 1.5}\n"
    "  - {name: gt, op: greater, in: [x, w]}\n"
    "  - {name: lt, op: less, in: [x, w]}\n"
    "  - {name: eq, op: equal, in: [gt, lt]}\n"
    "  - {name: wh, op: where, in: [m, c, s]}\n"
    "  - {name: e,  op: elu, in: [wh], alpha: 0.5}\n"
    "  - {name: sl, op: silu, in: [e]}\n"
    "  - {name: l1, op: log1p, in: [s]}\n"
    "  - {name: sn, op: sin, in: [x]}\n"
    "  - {name: cs, op: cos, in: [mn]}\n"
    "  - {name: er, op: erf, in: [mn]}\n"
    "  - {name: q1, op: mul, in: [sl, gt]}\n"
    "  - {name: q2, op: mul, in: [l1, lt]}\n"
    "  - {name: q3, op: mul, in: [sn, cs]}\n"
    "  - {name: q4, op: mul, in: [q3, eq]}\n"
    "  - {name: q5, op: add, in: [q1, q2]}\n"
    "  - {name: q6, op: add, in: [q4, er]}\n"
    "  - {name: q,  op: add, in: [q5, q6]}\n"
    "  - {name: loss, op: sum, in: [q]}\n"
    "loss: loss\n";

Test(elem_model, yaml_model_matches_pytorch)
{
    nb_model *m = load_ok(elem_model);
    nb_graph *g = nb_model_graph(m);
    cr_expect_str_eq(nb_node_attr(nb_graph_find(g, "g"), "approximate")->s, "tanh");
    nb_node *x = nb_graph_find(g, "x"), *mi = nb_graph_find(g, "m"), *w = nb_graph_find(g, "w");
    nb_node *gr[2];
    cr_assert_eq(nb_grad(g, nb_model_loss(m), (nb_node *[]){x, w}, 2, gr), NB_OK, "%s", nb_graph_error(g));
    double vx[6] = {0.5, -1.2, 0.3, 2, -0.4, 1.7}, vm[3] = {1, 0, 1};
    double loss, eq[6], gx[6], gw[3];
    eval_graph(g, 4, (nb_node *[]){nb_model_loss(m), nb_graph_find(g, "eq"), gr[0], gr[1]},
               (double *[]){&loss, eq, gx, gw}, 2, (nb_node *[]){x, mi},
               (const double *[]){vx, vm}, NULL, 0);
    expect_vals(&loss, (double[]){3.633869757373479}, 1, 1e-13, "loss");
    expect_vals(eq, (double[]){1, 0, 0, 0, 0, 0}, 6, 0, "eq");
    expect_vals(gx, (double[]){1.5532942743451628, 0.07971176501621827, 1.2235550313531716, 0.0,
                               0.1836112323342858, 0.4462178027839517}, 6, 1e-13, "grad x");
    expect_vals(gw, (double[]){0.8787825789354448, 0.8302149948411894, 0.0}, 3, 1e-13, "grad w");
    nb_model_free(m);
}

/* Second order through the whole model: the Hessian-vector product
 * d/d(x, w) of sum(gx * v) + sum(gw * u), with PyTorch's (create_graph=True)
 * v = [[1, 2, 3], [-1, 0.5, 2]], u = [0.3, -2, 1] */
Test(elem_model, yaml_model_second_order_matches_pytorch)
{
    nb_model *m = load_ok(elem_model);
    nb_graph *g = nb_model_graph(m);
    nb_node *x = nb_graph_find(g, "x"), *mi = nb_graph_find(g, "m"), *w = nb_graph_find(g, "w");
    nb_node *gr[2], *h[2];
    cr_assert_eq(nb_grad(g, nb_model_loss(m), (nb_node *[]){x, w}, 2, gr), NB_OK, "%s", nb_graph_error(g));
    nb_node *v = nb_input(g, "v", NB_F64, 2, (nb_dim[]){NB_DIM(2), NB_DIM(3)});
    nb_node *u = nb_input(g, "u", NB_F64, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *dot = nb_add(g, nb_sum(g, nb_mul(g, gr[0], v), NULL, 0, false),
                          nb_sum(g, nb_mul(g, gr[1], u), NULL, 0, false));
    cr_assert_eq(nb_grad(g, dot, (nb_node *[]){x, w}, 2, h), NB_OK, "%s", nb_graph_error(g));
    double vx[6] = {0.5, -1.2, 0.3, 2, -0.4, 1.7}, vm[3] = {1, 0, 1};
    double vv[6] = {1, 2, 3, -1, 0.5, 2}, vu[3] = {0.3, -2, 1}, hx[6], hw[3];
    eval_graph(g, 2, h, (double *[]){hx, hw}, 4, (nb_node *[]){x, mi, v, u},
               (const double *[]){vx, vm, vv, vu}, NULL, 0);
    expect_vals(hx, (double[]){-1.3107080919329057, 0.2796197593461164, 2.0939160881913397, 0.0,
                               0.15030591209789743, -0.8732736466478447}, 6, 1e-12, "Hv x");
    expect_vals(hw, (double[]){-0.2636347736806334, -3.3208599793647577, 0.0}, 3, 1e-12, "Hv w");
    nb_model_free(m);
}

/* `nabla ops` shows word attributes with their choices and optional bounds */
Test(elem_tool, ops_lists_words_and_optional_floats)
{
    int status;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' ops gelu; '%s' ops clip", test_env("NABLA_TOOL"), test_env("NABLA_TOOL"));
    char *out = run_shell(cmd, &status);
    cr_expect_eq(status, 0, "%s", out);
    assert_has(out, "approximate  word         default none; one of none, tanh");
    assert_has(out, "min          float        optional");
    assert_has(out, "max          float        optional");
    free(out);
}

/* conv2d: forward and gradients against a naive direct convolution on random
 * data (f32 and f64, strides, padding, 1x1 kernels, non-square shapes, a
 * symbolic batch), a hand-computed case, FLOPs and shape errors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct cfg {
    int N, C, H, W, O, KH, KW, s, p;
    bool bias;
} cfg;

static int out_dim(int n, int k, const cfg *c) { return (n + 2 * c->p - k) / c->s + 1; }

/* y = conv(x, w) + b and, for loss = sum(y * R), gx, gw, gb: one direct loop. */
static void naive(const cfg *c, const double *x, const double *w, const double *b,
                  const double *R, double *y, double *gx, double *gw, double *gb)
{
    int OH = out_dim(c->H, c->KH, c), OW = out_dim(c->W, c->KW, c);
    for (int n = 0; n < c->N; n++)
        for (int o = 0; o < c->O; o++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    size_t yi = (((size_t)n * c->O + o) * OH + oh) * OW + ow;
                    double acc = b ? b[o] : 0, r = R[yi];
                    if (gb) gb[o] += r;
                    for (int ch = 0; ch < c->C; ch++)
                        for (int ki = 0; ki < c->KH; ki++)
                            for (int kj = 0; kj < c->KW; kj++) {
                                int ih = oh * c->s - c->p + ki, iw = ow * c->s - c->p + kj;
                                if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W) continue;
                                size_t xi = (((size_t)n * c->C + ch) * c->H + ih) * c->W + iw;
                                size_t wi = (((size_t)o * c->C + ch) * c->KH + ki) * c->KW + kj;
                                acc += x[xi] * w[wi];
                                gx[xi] += r * w[wi];
                                gw[wi] += r * x[xi];
                            }
                    y[yi] = acc;
                }
}

/* Builds y = conv2d(x, w, b) with a symbolic batch, loss = sum(y * R), its
 * gradients, runs with N bound and compares everything with naive(). */
static void check_conv(const cfg *c, nb_dtype dt)
{
    int OH = out_dim(c->H, c->KH, c), OW = out_dim(c->W, c->KW, c);
    size_t nx = (size_t)c->N * c->C * c->H * c->W, nw = (size_t)c->O * c->C * c->KH * c->KW;
    size_t ny = (size_t)c->N * c->O * OH * OW;
    double *x = malloc(nx * 8), *w = malloc(nw * 8), *b = malloc((size_t)c->O * 8);
    double *R = malloc(ny * 8), *y = calloc(ny, 8), *gx = calloc(nx, 8), *gw = calloc(nw, 8);
    double *gb = calloc((size_t)c->O, 8);
    fill_random(x, nx, 1), fill_random(w, nw, 2), fill_random(b, (size_t)c->O, 3), fill_random(R, ny, 4);
    naive(c, x, w, c->bias ? b : NULL, R, y, gx, gw, gb);

    nb_graph *g = nb_graph_new();
    nb_node *xn = nb_input(g, "x", dt, 4, (nb_dim[]){NB_SYM("N"), NB_DIM(c->C), NB_DIM(c->H), NB_DIM(c->W)});
    nb_node *wn = nb_input(g, "w", dt, 4, (nb_dim[]){NB_DIM(c->O), NB_DIM(c->C), NB_DIM(c->KH), NB_DIM(c->KW)});
    nb_node *bn = nb_input(g, "b", dt, 1, (nb_dim[]){NB_DIM(c->O)});
    nb_node *Rn = nb_input(g, "R", dt, 4, (nb_dim[]){NB_SYM("N"), NB_DIM(c->O), NB_DIM(OH), NB_DIM(OW)});
    nb_node *yn = nb_conv2d(g, xn, wn, c->bias ? bn : NULL, c->s, c->p);
    nb_node *loss = nb_sum(g, nb_mul(g, yn, Rn), NULL, 0, false);
    nb_node *wrt[3] = {xn, wn, bn}, *d[3];
    cr_assert_eq(nb_grad(g, loss, wrt, c->bias ? 3 : 2, d), NB_OK, "%s", nb_graph_error(g));
    double *got[4] = {malloc(ny * 8), malloc(nx * 8), malloc(nw * 8), malloc((size_t)c->O * 8)};
    eval_graph(g, c->bias ? 4 : 3, (nb_node *[]){yn, d[0], d[1], d[2]}, got, c->bias ? 4 : 3,
               (nb_node *[]){xn, wn, Rn, bn}, (const double *[]){x, w, R, b}, (nb_bind[]){{"N", c->N}}, 1);
    double tol = dt == NB_F64 ? 1e-10 : 1e-4;
    char what[4][128];
    const char *names[4] = {"y", "gx", "gw", "gb"};
    for (int i = 0; i < 4; i++)
        snprintf(what[i], sizeof what[i], "%s %s [%d,%d,%d,%d] w [%d,%d,%d,%d] s%d p%d", names[i],
                 nb_dtype_name(dt), c->N, c->C, c->H, c->W, c->O, c->C, c->KH, c->KW, c->s, c->p);
    expect_close(got[0], y, ny, tol, tol, what[0]);
    expect_close(got[1], gx, nx, tol, tol, what[1]);
    expect_close(got[2], gw, nw, tol, tol, what[2]);
    if (c->bias) expect_close(got[3], gb, (size_t)c->O, tol, tol, what[3]);
    nb_graph_free(g);
    for (int i = 0; i < 4; i++) free(got[i]);
    free(x), free(w), free(b), free(R), free(y), free(gx), free(gw), free(gb);
}

static const cfg cases[] = {
    {2, 3, 5, 5, 4, 3, 3, 1, 0, true},
    {2, 3, 5, 5, 4, 3, 3, 1, 1, false},
    {2, 3, 5, 5, 4, 3, 3, 2, 0, true},
    {2, 3, 6, 7, 4, 3, 3, 2, 1, true},
    {1, 2, 4, 6, 3, 2, 3, 2, 1, true},   /* non-square kernel and input, floor */
    {2, 3, 4, 5, 2, 1, 1, 1, 0, true},   /* 1x1: the column matrix is skipped */
    {1, 3, 5, 4, 2, 1, 1, 2, 1, false},  /* 1x1 with stride and padding */
    {1, 2, 7, 7, 2, 2, 2, 3, 0, true},   /* stride past the kernel: input columns skipped */
    {1, 1, 3, 3, 1, 2, 2, 1, 2, true},   /* pad past the kernel: windows of padding only */
    {3, 4, 8, 8, 5, 5, 5, 3, 2, true},
    {4, 1, 28, 28, 6, 5, 5, 1, 0, true}, /* MNIST-like */
    /* stride 1 takes conv_t.h's row copies: output widths 1, 2, 3 (scalar),
     * 4, 5, 7 (two half chunks), 8, 9, 16, 17, 28 (chunks and an overlapping
     * last one, f32; f64's chunks are half as wide), padded and not */
    {2, 2, 3, 1, 3, 3, 3, 1, 1, true},
    {1, 2, 4, 4, 2, 3, 3, 1, 0, false},
    {1, 3, 3, 3, 2, 3, 3, 1, 1, true},
    {2, 2, 5, 4, 3, 3, 3, 1, 1, true},
    {1, 2, 6, 5, 2, 3, 3, 1, 1, false},
    {2, 3, 7, 7, 4, 3, 3, 1, 1, true},
    {1, 2, 6, 8, 3, 3, 3, 1, 1, true},
    {1, 2, 5, 11, 2, 3, 3, 1, 0, true},
    {1, 2, 4, 14, 2, 3, 3, 1, 2, false},
    {2, 2, 9, 17, 3, 3, 3, 1, 1, true},
    {1, 1, 30, 30, 2, 3, 3, 1, 0, true},
    /* 64 x 576 filters: the forward GEMM runs on blocks of 32 output columns
     * (conv.c fwd_gemm_cols), here 32 + 32 and 32 + 17 */
    {1, 64, 8, 8, 64, 3, 3, 1, 1, false},
    {2, 64, 7, 7, 64, 3, 3, 1, 1, true},
};

Test(conv, matches_direct_loop_f64)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_conv(&cases[i], NB_F64);
}

Test(conv, matches_direct_loop_f32)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_conv(&cases[i], NB_F32);
}

/* x = 1..9 in 3x3, w = [1 2; 3 4]: no kernel flip (a flip would give 23, ...). */
static void tiny(nb_dtype dt, int64_t stride, int64_t pad, const double *want, int n_out)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", dt, 4, (nb_dim[]){NB_DIM(1), NB_DIM(1), NB_DIM(3), NB_DIM(3)});
    nb_node *w = nb_input(g, "w", dt, 4, (nb_dim[]){NB_DIM(1), NB_DIM(1), NB_DIM(2), NB_DIM(2)});
    nb_node *b = nb_input(g, "b", dt, 1, (nb_dim[]){NB_DIM(1)});
    nb_node *y = nb_conv2d(g, x, w, b, stride, pad);
    cr_assert(y, "%s", nb_graph_error(g));
    cr_assert_eq(nb_node_dim(y, 2), n_out);
    cr_assert_eq(nb_node_dim(y, 3), n_out);
    double xv[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, wv[4] = {1, 2, 3, 4}, bv[1] = {0.5}, out[4];
    eval_graph(g, 1, &y, (double *[]){out}, 3, (nb_node *[]){x, w, b}, (const double *[]){xv, wv, bv}, NULL, 0);
    for (int i = 0; i < n_out * n_out; i++)
        cr_expect_eq(out[i], want[i], "%s s%lld p%lld [%d] = %g, want %g", nb_dtype_name(dt),
                     (long long)stride, (long long)pad, i, out[i], want[i]);
    nb_graph_free(g);
}

Test(conv, hand_computed)
{
    for (int t = 0; t < 2; t++) {
        nb_dtype dt = t ? NB_F32 : NB_F64;
        tiny(dt, 1, 0, (double[]){37.5, 47.5, 67.5, 77.5}, 2);
        /* padded by 1, stride 2: windows start at -1 and 1 */
        tiny(dt, 2, 1, (double[]){4.5, 18.5, 36.5, 77.5}, 2);
    }
}

Test(conv, flops)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 4, (nb_dim[]){NB_SYM("N"), NB_DIM(3), NB_DIM(8), NB_DIM(8)});
    nb_node *w = nb_input(g, "w", NB_F32, 4, (nb_dim[]){NB_DIM(4), NB_DIM(3), NB_DIM(3), NB_DIM(3)});
    nb_node *b = nb_input(g, "b", NB_F32, 1, (nb_dim[]){NB_DIM(4)});
    nb_node *y = nb_conv2d(g, x, w, b, 1, 1), *y0 = nb_conv2d(g, x, w, NULL, 2, 0);
    nb_bind n5 = {"N", 5};
    cr_expect_eq(nb_node_flops(g, y, &n5, 1), 2.0 * 5 * 4 * 8 * 8 * 27 + 5 * 4 * 8 * 8);
    cr_expect_eq(nb_node_flops(g, y0, &n5, 1), 2.0 * 5 * 4 * 3 * 3 * 27);
    nb_node *pm = nb_max_pool2d(g, x, 2, 0, 0);
    cr_expect_eq(nb_node_flops(g, pm, &n5, 1), 5.0 * 3 * 4 * 4 * 4);
    nb_graph_free(g);
}

/* ---- shape errors ---- */

static nb_graph *conv_error(const nb_dim *xd, int xrank, const nb_dim *wd, int wrank,
                            const nb_attr *at, int n_at)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "img", NB_F32, xrank, xd);
    nb_node *w = nb_input(g, "K", NB_F32, wrank, wd);
    nb_node *y = nb_op(g, "conv2d", "c1", (nb_node *[]){x, w}, 2, at, n_at);
    cr_expect_null(y);
    return g;
}

#define D4(a, b, c, d) ((nb_dim[]){a, b, c, d})
#define N(v) NB_DIM(v)

static void expect_msg(nb_graph *g, nb_status st, const char *const *parts, int n)
{
    expect_graph_error(g, st, parts, n);
    nb_graph_free(g);
}

Test(conv, channel_mismatch)
{
    nb_graph *g = conv_error(D4(NB_SYM("N"), N(3), N(5), N(5)), 4, D4(N(4), N(2), N(3), N(3)), 4, NULL, 0);
    expect_msg(g, NB_ERR_SHAPE, (const char *[]){"'c1'", "conv2d", "channel", "img is [N, 3, 5, 5]", "K is [4, 2, 3, 3]"}, 5);
}

Test(conv, output_smaller_than_one)
{
    nb_graph *g = conv_error(D4(N(1), N(3), N(4), N(9)), 4, D4(N(4), N(3), N(5), N(5)), 4,
                             (nb_attr[]){NB_AINT("pad", 0)}, 1);
    expect_msg(g, NB_ERR_SHAPE, (const char *[]){"'c1'", "smaller than 1x1", "img is [1, 3, 4, 9]", "K is [4, 3, 5, 5]"}, 4);
    /* padding makes it fit */
    g = nb_graph_new();
    nb_node *x = nb_input(g, "img", NB_F32, 4, D4(N(1), N(3), N(4), N(9)));
    nb_node *w = nb_input(g, "K", NB_F32, 4, D4(N(4), N(3), N(5), N(5)));
    nb_node *y = nb_conv2d(g, x, w, NULL, 1, 1);
    cr_assert(y, "%s", nb_graph_error(g));
    cr_expect_eq(nb_node_dim(y, 2), 2);
    cr_expect_eq(nb_node_dim(y, 3), 7);
    nb_graph_free(g);
}

Test(conv, not_4d)
{
    nb_graph *g = conv_error((nb_dim[]){N(3), N(5), N(5)}, 3, D4(N(4), N(3), N(3), N(3)), 4, NULL, 0);
    expect_msg(g, NB_ERR_SHAPE, (const char *[]){"'c1'", "[N, C, H, W]", "img is [3, 5, 5]"}, 3);
    g = conv_error(D4(N(1), N(3), N(5), N(5)), 4, (nb_dim[]){N(4), N(3), N(3)}, 3, NULL, 0);
    expect_msg(g, NB_ERR_SHAPE, (const char *[]){"'c1'", "[O, C, KH, KW]", "K is [4, 3, 3]"}, 3);
}

Test(conv, symbolic_channels_and_bad_attributes)
{
    nb_graph *g = conv_error(D4(NB_SYM("N"), NB_SYM("C"), N(5), N(5)), 4, D4(N(4), N(3), N(3), N(3)), 4, NULL, 0);
    expect_msg(g, NB_ERR_SHAPE, (const char *[]){"constant", "img is [N, C, 5, 5]"}, 2);
    g = conv_error(D4(N(1), N(3), N(5), N(5)), 4, D4(N(4), N(3), N(3), N(3)), 4, (nb_attr[]){NB_AINT("stride", 0)}, 1);
    expect_msg(g, NB_ERR_ARG, (const char *[]){"'c1'", "stride 0"}, 2);
    g = conv_error(D4(N(1), N(3), N(5), N(5)), 4, D4(N(4), N(3), N(3), N(3)), 4, (nb_attr[]){NB_AINT("pad", -1)}, 1);
    expect_msg(g, NB_ERR_ARG, (const char *[]){"'c1'", "pad -1"}, 2);
}

Test(conv, bias_shape)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 4, D4(N(1), N(3), N(5), N(5)));
    nb_node *w = nb_input(g, "w", NB_F64, 4, D4(N(4), N(3), N(3), N(3)));
    nb_node *b = nb_input(g, "bias", NB_F64, 1, (nb_dim[]){N(3)});
    cr_expect_null(nb_op(g, "conv2d", "c2", (nb_node *[]){x, w, b}, 3, NULL, 0));
    expect_msg(g, NB_ERR_SHAPE, (const char *[]){"'c2'", "bias is [3]", "w is [4, 3, 3, 3]"}, 3);
}

/* max_pool2d and avg_pool2d: hand-computed values, padding rules (max never
 * picks a padded cell, avg always divides by size*size), the max gradient on
 * ties, a naive reference on random data (f32 and f64) and shape errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define D4(a, b, c, d) ((nb_dim[]){NB_DIM(a), NB_DIM(b), NB_DIM(c), NB_DIM(d)})

/* Runs op on x [1, 1, H, W] and returns y and d sum(y) / dx (caller frees both). */
static void pool_run(nb_dtype dt, const char *op, const double *xv, int H, int W, int k, int s,
                     int p, double **y, double **gx, int64_t *oh, int64_t *ow)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", dt, 4, D4(1, 1, H, W));
    nb_attr a[3] = {NB_AINT("size", k), NB_AINT("stride", s), NB_AINT("pad", p)};
    nb_node *yn = nb_op(g, op, "y", &x, 1, a, 3), *d;
    cr_assert(yn, "%s", nb_graph_error(g));
    cr_assert_eq(nb_grad(g, nb_sum(g, yn, NULL, 0, false), &x, 1, &d), NB_OK, "%s", nb_graph_error(g));
    *oh = nb_node_dim(yn, 2), *ow = nb_node_dim(yn, 3);
    *y = malloc((size_t)(*oh * *ow) * sizeof **y), *gx = malloc((size_t)(H * W) * sizeof **gx);
    eval_graph(g, 2, (nb_node *[]){yn, d}, (double *[]){*y, *gx}, 1, &x, &xv, NULL, 0);
    nb_graph_free(g);
}

static void expect_vals(const double *got, const double *want, int n, const char *what, nb_dtype dt)
{
    char name[64];
    snprintf(name, sizeof name, "%s %s", what, nb_dtype_name(dt));
    expect_close(got, want, (size_t)n, 1e-6, 1e-6, name);
}

static const nb_dtype dtypes[2] = {NB_F64, NB_F32};

Test(pool, hand_computed)
{
    double x[16] = {1, 5, 2, 0, 3, 4, 8, 1, 0, -1, 6, 7, 9, 2, 3, -5}, *y, *gx;
    int64_t oh, ow;
    for (int t = 0; t < 2; t++) {
        pool_run(dtypes[t], "max_pool2d", x, 4, 4, 2, 0, 0, &y, &gx, &oh, &ow);
        cr_expect(oh == 2 && ow == 2);
        expect_vals(y, (double[]){5, 8, 9, 7}, 4, "max", dtypes[t]);
        expect_vals(gx, (double[]){0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0}, 16, "max grad", dtypes[t]);
        free(y), free(gx);
        pool_run(dtypes[t], "avg_pool2d", x, 4, 4, 2, 2, 0, &y, &gx, &oh, &ow);
        expect_vals(y, (double[]){3.25, 2.75, 2.5, 2.75}, 4, "avg", dtypes[t]);
        for (int i = 0; i < 16; i++) cr_expect_eq(gx[i], 0.25);
        free(y), free(gx);
    }
}

/* All inputs negative, padded by 1: a padded 0 would win if it took part. */
Test(pool, max_ignores_padding)
{
    double x[4] = {-1, -2, -3, -4}, *y, *gx;
    int64_t oh, ow;
    for (int t = 0; t < 2; t++) {
        pool_run(dtypes[t], "max_pool2d", x, 2, 2, 2, 1, 1, &y, &gx, &oh, &ow);
        cr_expect(oh == 3 && ow == 3);
        expect_vals(y, (double[]){-1, -1, -2, -1, -1, -2, -3, -3, -4}, 9, "max", dtypes[t]);
        /* windows won by x00: 4 of them; x01: 2; x10: 2; x11: 1 */
        expect_vals(gx, (double[]){4, 2, 2, 1}, 4, "max grad", dtypes[t]);
        free(y), free(gx);
    }
}

/* Ones, 3x3 windows, stride 1, pad 1: each output is (real cells) / 9. */
Test(pool, avg_counts_padding_in_divisor)
{
    double x[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, *y, *gx;
    double want[9] = {4 / 9., 6 / 9., 4 / 9., 6 / 9., 1, 6 / 9., 4 / 9., 6 / 9., 4 / 9.};
    int64_t oh, ow;
    for (int t = 0; t < 2; t++) {
        pool_run(dtypes[t], "avg_pool2d", x, 3, 3, 3, 1, 1, &y, &gx, &oh, &ow);
        cr_expect(oh == 3 && ow == 3);
        expect_vals(y, want, 9, "avg", dtypes[t]);
        expect_vals(gx, want, 9, "avg grad", dtypes[t]);  /* cell in k windows: k / 9 */
        free(y), free(gx);
    }
}

/* Ties: the whole window's gradient goes to the first maximum in row-major order. */
Test(pool, max_gradient_to_first_maximum_on_tie)
{
    double x[8] = {5, 5, 1, 3, 5, 5, 3, 3}, *y, *gx;
    int64_t oh, ow;
    for (int t = 0; t < 2; t++) {
        pool_run(dtypes[t], "max_pool2d", x, 2, 4, 2, 2, 0, &y, &gx, &oh, &ow);
        expect_vals(y, (double[]){5, 3}, 2, "max", dtypes[t]);
        expect_vals(gx, (double[]){1, 0, 0, 1, 0, 0, 0, 0}, 8, "max grad", dtypes[t]);
        free(y), free(gx);
        /* overlapping windows over equal values: each window's top-left cell */
        double z[9] = {0};
        pool_run(dtypes[t], "max_pool2d", z, 3, 3, 2, 1, 0, &y, &gx, &oh, &ow);
        expect_vals(gx, (double[]){1, 1, 0, 1, 1, 0, 0, 0, 0}, 9, "max grad", dtypes[t]);
        free(y), free(gx);
    }
}

/* Reference pooling of one plane, with d sum(y * R) / dx. */
static void naive_pool(bool is_max, const double *x, int H, int W, int k, int s, int p,
                       const double *R, double *y, double *gx)
{
    int OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
    memset(gx, 0, (size_t)(H * W) * sizeof *gx);
    for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
            double acc = is_max ? -INFINITY : 0, r = R[oh * OW + ow];
            int best = -1;
            for (int i = oh * s - p; i < oh * s - p + k; i++)
                for (int j = ow * s - p; j < ow * s - p + k; j++) {
                    if (i < 0 || i >= H || j < 0 || j >= W) continue;
                    if (!is_max) acc += x[i * W + j], gx[i * W + j] += r / (k * k);
                    else if (x[i * W + j] > acc) acc = x[i * W + j], best = i * W + j;
                }
            y[oh * OW + ow] = is_max ? acc : acc / (k * k);
            if (is_max) gx[best] += r;
        }
}

/* Random data, N = 2 planes of C = 3, through a graph with a symbolic batch. */
static void check_random_x(nb_dtype dt, bool is_max, int H, int W, int k, int s, int p, bool ties)
{
    const int N = 2, C = 3, OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
    size_t nx = (size_t)(N * C * H * W), ny = (size_t)(N * C * OH * OW);
    double *x = malloc(nx * 8), *R = malloc(ny * 8), *y = malloc(ny * 8), *gx = malloc(nx * 8);
    double *got_y = malloc(ny * 8), *got_gx = malloc(nx * 8);
    nb_rng r;
    nb_rng_seed(&r, 7);
    fill_normal(&r, x, nx);
    fill_normal(&r, R, ny);
    for (size_t i = 0; ties && i < nx; i++) x[i] = round(x[i]);  /* mostly -1, 0, 1 */
    for (int pl = 0; pl < N * C; pl++)
        naive_pool(is_max, x + pl * H * W, H, W, k, s, p, R + pl * OH * OW, y + pl * OH * OW, gx + pl * H * W);
    nb_graph *g = nb_graph_new();
    nb_node *xn = nb_input(g, "x", dt, 4, (nb_dim[]){NB_SYM("N"), NB_DIM(C), NB_DIM(H), NB_DIM(W)});
    nb_node *Rn = nb_input(g, "R", dt, 4, (nb_dim[]){NB_SYM("N"), NB_DIM(C), NB_DIM(OH), NB_DIM(OW)});
    nb_node *yn = (is_max ? nb_max_pool2d : nb_avg_pool2d)(g, xn, k, s, p), *d;
    cr_assert_eq(nb_grad(g, nb_sum(g, nb_mul(g, yn, Rn), NULL, 0, false), &xn, 1, &d), NB_OK, "%s", nb_graph_error(g));
    eval_graph(g, 2, (nb_node *[]){yn, d}, (double *[]){got_y, got_gx}, 2, (nb_node *[]){xn, Rn},
               (const double *[]){x, R}, (nb_bind[]){{"N", N}}, 1);
    for (size_t i = 0; i < ny; i++)
        cr_expect(fabs(got_y[i] - y[i]) < 1e-5, "%s k%d s%d p%d y[%zu]", nb_dtype_name(dt), k, s, p, i);
    for (size_t i = 0; i < nx; i++)
        cr_expect(fabs(got_gx[i] - gx[i]) < 1e-5, "%s k%d s%d p%d gx[%zu]", nb_dtype_name(dt), k, s, p, i);
    free(x), free(R), free(y), free(gx), free(got_y), free(got_gx);
    nb_graph_free(g);
}

static void check_random(nb_dtype dt, bool is_max, int H, int W, int k, int s, int p)
{
    check_random_x(dt, is_max, H, W, k, s, p, false);
}

Test(pool, matches_reference)
{
    static const int cfg[][5] = {{6, 6, 2, 2, 0}, {5, 5, 3, 1, 1}, {7, 6, 3, 2, 1},
                                 {5, 8, 2, 1, 0}, {5, 4, 2, 2, 1}, {28, 28, 2, 2, 0},
                                 {9, 10, 4, 2, 2}, {6, 5, 1, 1, 0}, {7, 7, 5, 3, 2}};
    for (int t = 0; t < 2; t++)
        for (int m = 0; m < 2; m++)
            for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++)
                check_random(dtypes[t], m, cfg[i][0], cfg[i][1], cfg[i][2], cfg[i][3], cfg[i][4]);
}

/* 2x2 windows at stride 2 have their own one-pass kernels: odd sizes (a last
 * row or column in no window) and values with many ties, whose gradient must
 * still go to the first maximum in row-major order. */
Test(pool, two_by_two_fast_path_odd_sizes_and_ties)
{
    static const int hw[][2] = {{7, 5}, {5, 8}, {6, 6}, {3, 2}, {2, 9}};
    for (int t = 0; t < 2; t++)
        for (size_t i = 0; i < sizeof hw / sizeof hw[0]; i++)
            for (int ties = 0; ties < 2; ties++)
                check_random_x(dtypes[t], true, hw[i][0], hw[i][1], 2, 2, 0, ties);
}

Test(pool, stride_defaults_to_size)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 4, D4(1, 2, 5, 7));
    nb_node *y = nb_op(g, "max_pool2d", NULL, &x, 1, (nb_attr[]){NB_AINT("size", 2)}, 1);
    cr_assert(y, "%s", nb_graph_error(g));
    cr_expect(nb_node_dim(y, 1) == 2 && nb_node_dim(y, 2) == 2 && nb_node_dim(y, 3) == 3);
    nb_node *y1 = nb_avg_pool2d(g, x, 2, 1, 0);
    cr_expect(nb_node_dim(y1, 2) == 4 && nb_node_dim(y1, 3) == 6);
    nb_graph_free(g);
}

/* ---- errors ---- */

static void expect_pool_error(int rank, const nb_dim *dims, const nb_attr *a, int n_a, nb_status st,
                              const char *const *parts, int n)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "feat", NB_F32, rank, dims);
    cr_expect_null(nb_op(g, "avg_pool2d", "p1", &x, 1, a, n_a));
    expect_graph_error(g, st, parts, n);
    nb_graph_free(g);
}

Test(pool, errors)
{
    expect_pool_error(4, D4(1, 1, 2, 2), (nb_attr[]){NB_AINT("size", 2), NB_AINT("pad", 2)}, 2, NB_ERR_ARG,
                      (const char *[]){"'p1'", "pad 2", "size/2 = 1"}, 3);
    expect_pool_error(4, D4(1, 1, 2, 2), (nb_attr[]){NB_AINT("size", 3)}, 1, NB_ERR_SHAPE,
                      (const char *[]){"'p1'", "avg_pool2d", "smaller than 1x1", "feat is [1, 1, 2, 2]"}, 4);
    expect_pool_error(2, (nb_dim[]){NB_DIM(3), NB_DIM(4)}, (nb_attr[]){NB_AINT("size", 2)}, 1, NB_ERR_SHAPE,
                      (const char *[]){"'p1'", "[N, C, H, W]", "feat is [3, 4]"}, 3);
    expect_pool_error(4, D4(1, 1, 4, 4), NULL, 0, NB_ERR_ARG, (const char *[]){"'p1'", "size"}, 2);
    expect_pool_error(4, D4(1, 1, 4, 4), (nb_attr[]){NB_AINT("size", 0)}, 1, NB_ERR_ARG,
                      (const char *[]){"size 0"}, 1);
    expect_pool_error(4, D4(1, 1, 4, 4), (nb_attr[]){NB_AINT("size", 2), NB_AINT("stride", -1)}, 2,
                      NB_ERR_ARG, (const char *[]){"stride -1"}, 1);
}

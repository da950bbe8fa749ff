/* Kernels split over a plan's threads (nb_plan_set_threads): convolution by
 * sample, pooling by plane, elementwise ops by rows. Each graph's values and
 * gradients at 2 and 3 threads must equal the 1-thread run bit for bit --
 * the parts write disjoint outputs -- except a convolution's filter gradient,
 * whose per-thread partial sums are added in part order: close to the serial
 * sum, and the same bits on every run at a given count. Sizes are above the
 * grains (131072 elements a part for elementwise work, 16 MFLOP for a GEMM)
 * so that every kernel splits.
 * Also built for the ThreadSanitizer pass (tests/run.sh --tsan). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define MAX_OUT 6

static size_t numel(const nb_node *n)
{
    size_t k = 1;
    for (int i = 0; i < nb_node_rank(n); i++) k *= (size_t)nb_node_dim(n, i);
    return k;
}

typedef struct job {
    nb_graph *g;
    nb_node *in[3];
    double *val[3];
    int n_in;
    nb_node *out[MAX_OUT];
    const char *what[MAX_OUT];
    bool summed[MAX_OUT];  /* a sum over parts: close, not equal, across counts */
    int n_out;
} job;

static nb_node *input(job *j, const char *name, nb_dtype dt, int64_t a, int64_t b, int64_t c, int64_t d)
{
    nb_node *x = nb_input(j->g, name, dt, 4, (nb_dim[]){NB_DIM(a), NB_DIM(b), NB_DIM(c), NB_DIM(d)});
    cr_assert(x, "%s", nb_graph_error(j->g));
    size_t n = (size_t)(a * b * c * d);
    double *v = malloc(n * sizeof *v);
    nb_rng r;
    nb_rng_seed(&r, 17 + (uint64_t)j->n_in);
    fill_normal(&r, v, n);
    j->in[j->n_in] = x, j->val[j->n_in++] = v;
    return x;
}

static void output(job *j, nb_node *y, const char *what, bool summed)
{
    cr_assert(y, "%s: %s", what, nb_graph_error(j->g));
    j->out[j->n_out] = y, j->what[j->n_out] = what, j->summed[j->n_out++] = summed;
}

/* Adds loss = sum(y * R) and the gradients of every input and of wrt[0..n). */
static void with_grads(job *j, nb_node *y, nb_node *R, nb_node *const *wrt, int n, const char *const *names,
                       const bool *summed)
{
    nb_node *loss = nb_sum(j->g, nb_mul(j->g, y, R), NULL, 0, false), *d[4];
    cr_assert_eq(nb_grad(j->g, loss, wrt, n, d), NB_OK, "%s", nb_graph_error(j->g));
    for (int i = 0; i < n; i++) output(j, d[i], names[i], summed[i]);
}

/* Every output at `threads`, as doubles (caller frees). */
static void run_at(const job *j, int threads, double **res)
{
    nb_plan *p = plan_new_ok(j->g, j->out, j->n_out);
    cr_assert_eq(nb_plan_set_threads(p, threads), NB_OK, "%s", nb_plan_error(p));
    cr_assert_eq(nb_plan_threads(p), threads);
    nb_plan_set_training(p, true);  /* dropout drops */
    nb_plan_set_seed(p, 7);
    plan_bind_ok(p, NULL, 0);
    for (int k = 0; k < j->n_in; k++) plan_feed(p, j->in[k], j->val[k]);
    plan_run_ok(p);
    for (int o = 0; o < j->n_out; o++) {
        res[o] = malloc(numel(j->out[o]) * sizeof **res);
        plan_read(p, j->out[o], res[o]);
    }
    nb_plan_free(p);
}

static void expect_same(const job *j, const double *const *a, const double *const *b, bool exact_all,
                        const char *when)
{
    for (int o = 0; o < j->n_out; o++) {
        size_t n = numel(j->out[o]), bad = 0;
        bool exact = exact_all || !j->summed[o];
        double tol = nb_node_dtype(j->out[o]) == NB_F32 ? 1e-5 : 1e-12;
        for (size_t i = 0; i < n; i++) {
            bool ok = exact ? !memcmp(&a[o][i], &b[o][i], sizeof(double))
                            : fabs(a[o][i] - b[o][i]) <= tol * fmax(1, fabs(a[o][i]));
            bad += !ok;
        }
        cr_expect_eq(bad, 0, "%s, %s: %zu of %zu values differ (%s)", j->what[o], when, bad, n,
                     exact ? "bit for bit" : "beyond rounding");
    }
}

/* 1 thread against 2 and 3, and 2 against 2 again: bit for bit. */
static void check(job *j)
{
    double *one[MAX_OUT], *two[MAX_OUT], *again[MAX_OUT], *three[MAX_OUT];
    run_at(j, 1, one);
    run_at(j, 2, two);
    run_at(j, 2, again);
    run_at(j, 3, three);
    expect_same(j, (const double *const *)one, (const double *const *)two, false, "1 vs 2 threads");
    expect_same(j, (const double *const *)one, (const double *const *)three, false, "1 vs 3 threads");
    expect_same(j, (const double *const *)two, (const double *const *)again, true, "2 threads twice");
    for (int o = 0; o < j->n_out; o++) free(one[o]), free(two[o]), free(again[o]), free(three[o]);
    for (int k = 0; k < j->n_in; k++) free(j->val[k]);
    nb_graph_free(j->g);
}

static const nb_dtype dtypes[2] = {NB_F64, NB_F32};

/* conv2d with bias (pad 1), and a grouped one: y, d/dx, d/dW (summed), d/db */
Test(parallel, conv2d_by_sample)
{
    for (int t = 0; t < 2; t++)
        for (int groups = 1; groups <= 2; groups++) {
            job j = {.g = nb_graph_new()};
            nb_node *x = input(&j, "x", dtypes[t], 5, 4, 13, 12);
            nb_node *R = input(&j, "R", dtypes[t], 5, 6, 13, 12);
            int64_t ws[4] = {6, 4 / groups, 3, 3};
            nb_node *W = nb_param(j.g, "W", dtypes[t], 4, ws, ((nb_init){.kind = NB_INIT_NORMAL, .a = 0.5}));
            nb_node *b = nb_param(j.g, "b", dtypes[t], 1, (int64_t[]){6}, ((nb_init){.kind = NB_INIT_NORMAL, .a = 1}));
            nb_attr a[3] = {NB_AINT("stride", 1), NB_AINT("pad", 1), NB_AINT("groups", groups)};
            nb_node *y = nb_op(j.g, "conv2d", "y", (nb_node *[]){x, W, b}, 3, a, 3);
            output(&j, y, "conv2d", false);
            with_grads(&j, y, R, (nb_node *[]){x, W, b}, 3,
                       (const char *[]){"conv2d d/dx", "conv2d d/dW", "conv2d d/db"},
                       (const bool[]){false, true, false});
            check(&j);
        }
}

/* max 2x2 (the one-pass kernels), max 3 stride 1 pad 1, avg 3 stride 2 pad 1:
 * y and d/dx, over 4 x 8 planes of 48 x 48 */
Test(parallel, pooling_by_plane)
{
    const int cfg[3][4] = {{0, 2, 2, 0}, {0, 3, 1, 1}, {1, 3, 2, 1}};  /* avg?, size, stride, pad */
    for (int t = 0; t < 2; t++)
        for (int c = 0; c < 3; c++) {
            job j = {.g = nb_graph_new()};
            nb_node *x = input(&j, "x", dtypes[t], 4, 8, 48, 48);
            nb_node *y = (cfg[c][0] ? nb_avg_pool2d : nb_max_pool2d)(j.g, x, cfg[c][1], cfg[c][2], cfg[c][3]);
            int64_t o = (48 + 2 * cfg[c][3] - cfg[c][1]) / cfg[c][2] + 1;
            nb_node *R = input(&j, "R", dtypes[t], 4, 8, o, o);
            output(&j, y, "pool", false);
            with_grads(&j, y, R, &x, 1, (const char *[]){"pool d/dx"}, (const bool[]){false});
            check(&j);
        }
}

/* relu(x + b) with b [C, 1, 1] broadcast (rows split along N), exp (unary),
 * dropout (its mask drawn per element index), and their gradients
 * (relu_backward, dropout_backward, the broadcast add's) */
Test(parallel, elementwise_by_rows)
{
    for (int t = 0; t < 2; t++) {
        job j = {.g = nb_graph_new()};
        nb_node *x = input(&j, "x", dtypes[t], 4, 8, 96, 96);
        nb_node *R = input(&j, "R", dtypes[t], 4, 8, 96, 96);
        nb_node *b = nb_param(j.g, "b", dtypes[t], 3, (int64_t[]){8, 1, 1}, ((nb_init){.kind = NB_INIT_NORMAL, .a = 1}));
        nb_node *h = nb_relu(j.g, nb_add(j.g, x, b));
        nb_node *y = nb_dropout(j.g, nb_add(j.g, h, nb_exp(j.g, nb_scale(j.g, x, 0.1, 0))), 0.3);
        output(&j, y, "dropout(relu(x + b) + exp(x / 10))", false);
        with_grads(&j, y, R, (nb_node *[]){x, b}, 2, (const char *[]){"elementwise d/dx", "elementwise d/db"},
                   (const bool[]){false, false});
        check(&j);
    }
}

static nb_node *input2(job *j, const char *name, nb_dtype dt, int64_t a, int64_t b)
{
    nb_node *x = input(j, name, dt, 1, 1, a, b);
    return nb_reshape(j->g, x, 2, (nb_dim[]){NB_DIM(a), NB_DIM(b)});
}

/* matmul split by rows of the product (M >= N) and by columns (N > M), with
 * both gradients (transposed operands): the blocks' GEMMs may round apart
 * from one whole GEMM, so close to 1 thread, and the same bits twice. */
Test(parallel, matmul_by_rows_or_columns)
{
    const int64_t mkn[2][3] = {{600, 400, 200}, {40, 400, 2000}};
    for (int t = 0; t < 2; t++)
        for (int c = 0; c < 2; c++) {
            job j = {.g = nb_graph_new()};
            nb_node *a = input2(&j, "a", dtypes[t], mkn[c][0], mkn[c][1]);
            nb_node *b = input2(&j, "b", dtypes[t], mkn[c][1], mkn[c][2]);
            nb_node *R = input2(&j, "R", dtypes[t], mkn[c][0], mkn[c][2]);
            nb_node *y = nb_matmul(j.g, a, b);
            output(&j, y, "matmul", true);
            with_grads(&j, y, R, (nb_node *[]){a, b}, 2, (const char *[]){"matmul d/da", "matmul d/db"},
                       (const bool[]){true, true});
            check(&j);
        }
}

Test(parallel, thread_count_is_checked_and_drops_layouts)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 1, (nb_dim[]){NB_SYM("N")});
    nb_node *y = nb_relu(g, x);
    nb_plan *p = plan_new_ok(g, &y, 1);
    cr_expect_eq(nb_plan_threads(p), 1);
    cr_expect_eq(nb_plan_set_threads(p, 0), NB_ERR_ARG);
    cr_expect_str_eq(nb_plan_error(p), "threads must be 1 to 256; got 0");
    cr_expect_eq(nb_plan_set_threads(p, 257), NB_ERR_ARG);
    cr_expect_eq(nb_plan_threads(p), 1, "a refused count changes nothing");
    plan_bind_ok(p, (nb_bind[]){{"N", 100000}}, 1);
    cr_assert_eq(nb_plan_set_threads(p, 2), NB_OK, "%s", nb_plan_error(p));
    cr_expect_eq(nb_plan_threads(p), 2);
    /* the layout was dropped: the next bind makes one with a workspace per thread */
    plan_bind_ok(p, (nb_bind[]){{"N", 100000}}, 1);
    double *v = malloc(100000 * sizeof *v), *out = malloc(100000 * sizeof *out);
    for (int i = 0; i < 100000; i++) v[i] = i % 3 - 1;
    plan_feed(p, x, v);
    plan_run_ok(p);
    plan_read(p, y, out);
    for (int i = 0; i < 100000; i++) cr_expect_eq(out[i], v[i] > 0 ? v[i] : 0);
    cr_expect_eq(nb_plan_set_threads(p, 1), NB_OK);
    cr_expect_eq(nb_plan_threads(p), 1);
    cr_expect_eq(nb_plan_set_threads(NULL, 2), NB_ERR_ARG);
    free(v), free(out);
    nb_plan_free(p);
    nb_graph_free(g);
}

/* Three Adam steps of a small convnet, none allocating (conv 3x3 -> relu -> max-pool 2 ->
 * dense; 274 400 weights in the dense layer, so its update splits too): the
 * params at 2 threads twice are the same bits, and close to 1 thread's (the
 * filter gradient's partial sums). */
static void adam_steps(int threads, double *out_w, double *out_f)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 4, (nb_dim[]){NB_DIM(8), NB_DIM(2), NB_DIM(30), NB_DIM(30)});
    nb_node *f = nb_param(g, "f", NB_F32, 4, (int64_t[]){10, 2, 3, 3}, ((nb_init){.kind = NB_INIT_NORMAL, .a = 0.3}));
    nb_node *w = nb_param(g, "w", NB_F32, 2, (int64_t[]){1960, 140}, ((nb_init){.kind = NB_INIT_NORMAL, .a = 0.05}));
    nb_node *h = nb_max_pool2d(g, nb_relu(g, nb_conv2d(g, x, f, NULL, 1, 0)), 2, 2, 0);
    nb_node *y = nb_matmul(g, nb_reshape(g, h, 2, (nb_dim[]){NB_DIM(8), NB_DIM(1960)}), w);
    nb_node *loss = nb_sum(g, nb_mul(g, y, y), NULL, 0, false);
    nb_optim_cfg cfg = nb_optim_defaults(NB_ADAM);
    nb_node *step = nb_optimize(g, loss, (nb_node *[]){f, w}, 2, &cfg, NULL);
    cr_assert(step, "%s", nb_graph_error(g));
    nb_plan *p = plan_new_ok(g, &step, 1);
    cr_assert_eq(nb_plan_set_threads(p, threads), NB_OK);
    nb_plan_set_training(p, true);
    plan_bind_ok(p, NULL, 0);
    double *v = malloc(8 * 2 * 30 * 30 * sizeof *v);
    nb_rng r;
    nb_rng_seed(&r, 5);
    fill_normal(&r, v, 8 * 2 * 30 * 30);
    plan_feed(p, x, v);
    uint64_t before = nb_alloc_count();
    for (int s = 0; s < 3; s++) plan_run_ok(p);
    cr_expect_eq(nb_alloc_count(), before, "%d threads: a step allocates nothing", threads);
    const float *wv = nb_param_value(w)->data, *fv = nb_param_value(f)->data;
    for (int i = 0; i < 1960 * 140; i++) out_w[i] = wv[i];
    for (int i = 0; i < 180; i++) out_f[i] = fv[i];
    free(v);
    nb_plan_free(p);
    nb_graph_free(g);
}

Test(parallel, adam_training_steps)
{
    static double w1[1960 * 140], w2[1960 * 140], w2b[1960 * 140], f1[180], f2[180], f2b[180];
    adam_steps(1, w1, f1);
    adam_steps(2, w2, f2);
    adam_steps(2, w2b, f2b);
    cr_expect(!memcmp(w2, w2b, sizeof w2) && !memcmp(f2, f2b, sizeof f2), "2 threads twice: the same bits");
    expect_close(w2, w1, 1960 * 140, 1e-5, 1e-4, "dense weights, 2 threads vs 1");
    expect_close(f2, f1, 180, 1e-5, 1e-4, "filters, 2 threads vs 1");
}

/* Shape ops: reshape (-1, symbols), flatten, transpose, concat, slice; their
 * errors; views sharing buffers in plans (views of views, of params, of
 * intermediates that must stay alive); and gradients of concat and slice. */
#include <criterion/criterion.h>
#include <string.h>

#include "testutil.h"

#define DIMS(...) ((nb_dim[]){__VA_ARGS__})
#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Plans y, fills x with v (converted to x's dtype), runs; y's values as
 * doubles into out, its bound shape into ys; returns its rank. */
static int run1(nb_graph *g, nb_node *x, const double *v, nb_node *y, const nb_bind *b, int nb,
                double *out, int64_t *ys)
{
    cr_assert_not_null(y, "%s", nb_graph_error(g));
    return eval_node_bound(g, y, out, ys, 1, &x, &v, b, nb);
}

static void expect_shape(int r, const int64_t *s, int want_r, const int64_t *want)
{
    cr_assert_eq(r, want_r, "rank %d, want %d", r, want_r);
    for (int i = 0; i < r; i++) cr_expect_eq(s[i], want[i], "dim %d is %lld, want %lld", i,
                                             (long long)s[i], (long long)want[i]);
}

/* ---- reshape ---- */

static void reshape_minus_one(nb_dtype dt)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", dt, 3, DIMS(NB_DIM(2), NB_DIM(3), NB_DIM(4)));
    nb_node *y = nb_reshape(g, x, 2, DIMS(NB_DIM(4), NB_DIM(-1)));
    double v[24], out[24];
    int64_t s[NB_MAX_DIMS];
    fill_iota(v, 24);
    int r = run1(g, x, v, y, NULL, 0, out, s);
    expect_shape(r, s, 2, (int64_t[]){4, 6});
    expect_close(out, v, 24, 1e-6, 0, "values");
    nb_graph_free(g);
}

Test(reshape, minus_one_f32) { reshape_minus_one(NB_F32); }
Test(reshape, minus_one_f64) { reshape_minus_one(NB_F64); }

Test(reshape, symbols)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 2, DIMS(NB_SYM("N"), NB_DIM(6)));
    nb_node *a = nb_reshape(g, x, 3, DIMS(NB_SYM("N"), NB_DIM(2), NB_DIM(3)));
    nb_node *b = nb_reshape(g, x, 2, DIMS(NB_DIM(-1), NB_DIM(3)));
    nb_node *c = nb_reshape(g, b, 2, DIMS(NB_SYM("N"), NB_DIM(-1)));
    cr_assert_not_null(c, "%s", nb_graph_error(g));
    cr_expect_str_eq(node_shape(g, a), "[N, 2, 3]");
    cr_expect_str_eq(node_shape(g, b), "[2N, 3]");
    cr_expect_str_eq(node_shape(g, c), "[N, 6]");
    double v[18], out[18];
    int64_t s[NB_MAX_DIMS];
    fill_iota(v, 18);
    int r = run1(g, x, v, b, (nb_bind[]){{"N", 3}}, 1, out, s);
    expect_shape(r, s, 2, (int64_t[]){6, 3});
    expect_close(out, v, 18, 1e-6, 0, "values");
    nb_graph_free(g);
}

/* the symbol's name is the graph's, not the caller's (freed) string */
Test(reshape, symbol_name_outlives_the_caller)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 2, DIMS(NB_SYM("N"), NB_DIM(4)));
    char name[8] = "N";
    nb_node *y = nb_reshape(g, x, 3, DIMS(NB_SYM(name), NB_DIM(2), NB_DIM(2)));
    memset(name, 'Z', sizeof name - 1);
    double v[8] = {1, 2, 3, 4, 5, 6, 7, 8}, out[8];
    int64_t s[NB_MAX_DIMS];
    int r = run1(g, x, v, y, (nb_bind[]){{"N", 2}}, 1, out, s);
    expect_shape(r, s, 3, (int64_t[]){2, 2, 2});
    nb_graph_free(g);
}

static void expect_reshape_error(int rx, const nb_dim *xd, int ry, const nb_dim *yd, nb_status st,
                                 const char *what)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, rx, xd);
    nb_input(g, "other", NB_F32, 1, DIMS(NB_SYM("M")));
    cr_expect_null(nb_op(g, "reshape", "r", &x, 1,
                         (nb_attr[]){{.name = "shape", .type = NB_ATTR_DIMS, .n = ry,
                                      .d = {yd[0], yd[1], ry > 2 ? yd[2] : NB_DIM(1)}}},
                         1));
    cr_expect_eq(nb_graph_status(g), st, "%s", nb_graph_error(g));
    const char *e = nb_graph_error(g);
    cr_expect(strstr(e, "node 'r': reshape") && strstr(e, what), "%s (want '%s')", e, what);
    nb_graph_free(g);
}

Test(reshape, errors)
{
    expect_reshape_error(2, DIMS(NB_DIM(2), NB_DIM(3)), 2, DIMS(NB_DIM(4), NB_DIM(2)), NB_ERR_SHAPE,
                         "cannot reshape x is [2, 3] to [4, 2]");
    expect_reshape_error(2, DIMS(NB_DIM(2), NB_DIM(3)), 2, DIMS(NB_DIM(-1), NB_DIM(-1)), NB_ERR_ARG,
                         "more than one -1");
    expect_reshape_error(2, DIMS(NB_DIM(2), NB_DIM(3)), 2, DIMS(NB_DIM(4), NB_DIM(-1)), NB_ERR_SHAPE,
                         "-1 does not resolve exactly");
    /* 3N elements do not split into halves for every N */
    expect_reshape_error(2, DIMS(NB_SYM("N"), NB_DIM(3)), 2, DIMS(NB_DIM(2), NB_DIM(-1)),
                         NB_ERR_SHAPE, "x is [N, 3] to [2, -1]");
    expect_reshape_error(2, DIMS(NB_SYM("N"), NB_DIM(3)), 2, DIMS(NB_SYM("M"), NB_DIM(3)),
                         NB_ERR_SHAPE, "to [M, 3]");
    expect_reshape_error(2, DIMS(NB_DIM(2), NB_DIM(3)), 2, DIMS(NB_SYM("K"), NB_DIM(-1)),
                         NB_ERR_SHAPE, "'K'");
    expect_reshape_error(2, DIMS(NB_DIM(2), NB_DIM(3)), 3, DIMS(NB_DIM(0), NB_DIM(-1), NB_DIM(6)),
                         NB_ERR_ARG, "must be >= 1");
}

/* ---- flatten ---- */

Test(flatten, axes)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 3, DIMS(NB_SYM("N"), NB_DIM(3), NB_DIM(4)));
    cr_expect_str_eq(node_shape(g, nb_flatten(g, x, 1)), "[N, 12]");
    cr_expect_str_eq(node_shape(g, nb_flatten(g, x, 0)), "[1, 12N]");
    cr_expect_str_eq(node_shape(g, nb_flatten(g, x, 2)), "[3N, 4]");
    cr_expect_str_eq(node_shape(g, nb_flatten(g, x, 3)), "[12N, 1]");
    cr_expect_str_eq(node_shape(g, nb_flatten(g, x, -1)), "[3N, 4]");
    nb_node *def = nb_op(g, "flatten", NULL, &x, 1, NULL, 0);
    cr_expect_str_eq(node_shape(g, def), "[N, 12]");
    cr_expect_null(nb_flatten(g, x, 4));
    expect_graph_error(g, NB_ERR_ARG, (const char *[]){"axis 4 is out of range 0..3 for x is [N, 3, 4]"}, 1);
    nb_graph_free(g);
}

/* ---- views in plans ---- */

/* x [N, 2, 3] -> flatten -> [N, 6] x W [6, 2]; the plan caches one instance
 * per binding, and the flatten reads x's buffer in place. */
Test(view, flatten_matmul_under_two_bindings)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 3, DIMS(NB_SYM("N"), NB_DIM(2), NB_DIM(3)));
    double wv[12];
    for (int i = 0; i < 12; i++) wv[i] = (i % 5) - 2;
    nb_init init = {.kind = NB_INIT_VALUES, .values = wv, .n_values = 12};
    nb_node *w = nb_param(g, "W", NB_F64, 2, (int64_t[]){6, 2}, init);
    nb_node *f = nb_flatten(g, x, 1), *y = nb_matmul(g, f, w);
    nb_node *outs[2] = {y, f};
    nb_plan *p = plan_new_ok(g, outs, 2);
    int64_t ns[3] = {2, 5, 2};
    for (int t = 0; t < 3; t++) {
        int64_t n = ns[t];
        plan_bind_ok(p, (nb_bind[]){{"N", n}}, 1);
        double xv[30];
        for (int i = 0; i < 6 * n; i++) xv[i] = 0.25 * i - 1 + t;
        nb_plan_set(p, x, xv);
        plan_run_ok(p);
        cr_expect_eq(nb_plan_get(p, f), nb_plan_input_buffer(p, x), "flatten is a view of x");
        int64_t s[NB_MAX_DIMS];
        expect_shape(nb_plan_shape(p, y, s), s, 2, (int64_t[]){n, 2});
        const double *yv = nb_plan_get(p, y);
        for (int r = 0; r < n; r++)
            for (int c = 0; c < 2; c++) {
                double want = 0;
                for (int k = 0; k < 6; k++) want += xv[r * 6 + k] * wv[k * 2 + c];
                cr_expect_float_eq(yv[r * 2 + c], want, 1e-12, "N=%lld y[%d, %d]", (long long)n, r, c);
            }
    }
    nb_plan_free(p);
    nb_graph_free(g);
}

/* reshape of flatten of an intermediate: the root must outlive both views
 * even though an unrelated buffer is allocated between them */
Test(view, view_of_view_keeps_its_root_alive)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 2, DIMS(NB_DIM(2), NB_DIM(3)));
    nb_node *y = nb_scale(g, x, 2, 0);
    nb_node *v = nb_flatten(g, y, 0);
    nb_node *u = nb_reshape(g, nb_scale(g, x, 10, 0), 2, DIMS(NB_DIM(1), NB_DIM(6)));
    nb_node *w = nb_reshape(g, v, 2, DIMS(NB_DIM(3), NB_DIM(2)));
    nb_node *out = nb_add(g, nb_reshape(g, w, 2, DIMS(NB_DIM(1), NB_DIM(-1))), u);
    double xv[6] = {1, -2, 3, 0.5, 5, 6}, res[6], want[6];
    int64_t s[NB_MAX_DIMS];
    int r = run1(g, x, xv, out, NULL, 0, res, s);
    expect_shape(r, s, 2, (int64_t[]){1, 6});
    for (int i = 0; i < 6; i++) want[i] = 12 * xv[i];
    expect_close(res, want, 6, 1e-6, 0, "values");
    nb_graph_free(g);
}

/* a view of a param reads the param's own (current) values */
Test(view, view_of_param)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 2, DIMS(NB_DIM(1), NB_DIM(4)));
    nb_node *w = nb_param(g, "W", NB_F64, 3, (int64_t[]){2, 2, 1}, NB_INIT(NB_INIT_ONES));
    nb_node *wf = nb_reshape(g, w, 2, DIMS(NB_DIM(4), NB_DIM(1)));
    nb_node *y = nb_matmul(g, x, wf);
    nb_node *outs[2] = {y, wf};
    nb_plan *p = plan_new_ok(g, outs, 2);
    nb_plan_set(p, x, (double[]){1, 2, 3, 4});
    plan_run_ok(p);
    cr_expect_float_eq(*(const double *)nb_plan_get(p, y), 10, 1e-12);
    cr_expect_eq(nb_plan_get(p, wf), nb_param_value(w)->data);
    ((double *)nb_param_value(w)->data)[3] = 2;
    plan_run_ok(p);
    cr_expect_float_eq(*(const double *)nb_plan_get(p, y), 14, 1e-12);
    nb_plan_free(p);
    nb_graph_free(g);
}

/* reshape's gradient is a view of gy under x's shape */
Test(view, reshape_gradient)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 2, DIMS(NB_SYM("N"), NB_DIM(4)));
    nb_node *c = nb_input(g, "c", NB_F64, 3, DIMS(NB_SYM("N"), NB_DIM(2), NB_DIM(2)));
    nb_node *y = nb_reshape(g, x, 3, DIMS(NB_DIM(-1), NB_DIM(2), NB_DIM(2)));
    nb_node *loss = nb_sum(g, nb_mul(g, y, c), NULL, 0, false), *dx;
    cr_assert_eq(nb_grad(g, loss, &x, 1, &dx), NB_OK, "%s", nb_graph_error(g));
    cr_expect_str_eq(nb_node_op(dx), "reshape_like");
    cr_expect_str_eq(node_shape(g, dx), "[N, 4]");
    nb_plan *p = plan_new_ok(g, &dx, 1);
    plan_bind_ok(p, (nb_bind[]){{"N", 2}}, 1);
    double cv[8] = {1, 2, 3, 4, 5, 6, 7, 8}, xv[8] = {0};
    nb_plan_set(p, x, xv);
    nb_plan_set(p, c, cv);
    plan_run_ok(p);
    expect_close(nb_plan_get(p, dx), cv, 8, 1e-6, 0, "values");
    nb_plan_free(p);
    nb_graph_free(g);
}

/* ---- transpose ---- */

static void transpose_2d(nb_dtype dt)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", dt, 2, DIMS(NB_DIM(2), NB_DIM(3)));
    double v[6] = {1, 2, 3, 4, 5, 6}, out[6], want[6] = {1, 4, 2, 5, 3, 6};
    int64_t s[NB_MAX_DIMS];
    int r = run1(g, x, v, nb_transpose(g, x, NULL, 0), NULL, 0, out, s);
    expect_shape(r, s, 2, (int64_t[]){3, 2});
    expect_close(out, want, 6, 1e-6, 0, "values");
    nb_graph_free(g);
}

Test(transpose, two_d_f32) { transpose_2d(NB_F32); }
Test(transpose, two_d_f64) { transpose_2d(NB_F64); }

/* y[j, k, i] = x[i, j, k] for perm (1, 2, 0) */
static void transpose_3d(nb_dtype dt)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", dt, 3, DIMS(NB_DIM(2), NB_DIM(3), NB_DIM(4)));
    double v[24], out[24];
    int64_t s[NB_MAX_DIMS];
    fill_iota(v, 24);
    int r = run1(g, x, v, nb_transpose(g, x, (int64_t[]){1, 2, 0}, 3), NULL, 0, out, s);
    expect_shape(r, s, 3, (int64_t[]){3, 4, 2});
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++)
                cr_expect_float_eq(out[(j * 4 + k) * 2 + i], v[(i * 3 + j) * 4 + k], 1e-12);
    nb_graph_free(g);
}

Test(transpose, three_d_f32) { transpose_3d(NB_F32); }
Test(transpose, three_d_f64) { transpose_3d(NB_F64); }

Test(transpose, bad_perm)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 3, DIMS(NB_DIM(2), NB_DIM(3), NB_DIM(4)));
    struct {
        int64_t perm[4];
        int n;
        const char *msg;
    } bad[] = {{{0, 1}, 2, "perm has 2 entries but x is [2, 3, 4] has rank 3"},
               {{0, 1, 1}, 3, "axis 1 appears twice"},
               {{0, 1, 3}, 3, "axis 3 is out of range"},
               {{2, -1, 0}, 3, "axis 2 appears twice"}};
    for (size_t i = 0; i < LEN(bad); i++) {
        nb_graph_clear_error(g);
        cr_expect_null(nb_transpose(g, x, bad[i].perm, bad[i].n));
        cr_expect_eq(nb_graph_status(g), NB_ERR_ARG);
        cr_expect(strstr(nb_graph_error(g), bad[i].msg), "%s", nb_graph_error(g));
    }
    nb_graph_free(g);
}

/* ---- concat ---- */

static void concat_values(nb_dtype dt)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", dt, 2, DIMS(NB_DIM(2), NB_DIM(3)));
    nb_node *b = nb_scale(g, nb_slice(g, x, 1, 0, 1), 10, 0);  /* [2, 1] */
    double v[6] = {1, 2, 3, 4, 5, 6}, out[18];
    int64_t s[NB_MAX_DIMS];
    int r = run1(g, x, v, nb_concat(g, (nb_node *[]){x, b, x}, 3, -1), NULL, 0, out, s);
    expect_shape(r, s, 2, (int64_t[]){2, 7});
    expect_close(out, (double[]){1, 2, 3, 10, 1, 2, 3, 4, 5, 6, 40, 4, 5, 6}, 14, 1e-6, 0, "values");
    r = run1(g, x, v, nb_concat(g, (nb_node *[]){x, x}, 2, 0), NULL, 0, out, s);
    expect_shape(r, s, 2, (int64_t[]){4, 3});
    expect_close(out, (double[]){1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6}, 12, 1e-6, 0, "values");
    nb_graph_free(g);
}

Test(concat, values_f32) { concat_values(NB_F32); }
Test(concat, values_f64) { concat_values(NB_F64); }

Test(concat, mismatch)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "a", NB_F32, 2, DIMS(NB_DIM(2), NB_DIM(3)));
    nb_node *b = nb_input(g, "b", NB_F32, 2, DIMS(NB_DIM(3), NB_DIM(3)));
    nb_node *n = nb_input(g, "n", NB_F32, 2, DIMS(NB_SYM("N"), NB_DIM(3)));
    cr_expect_null(nb_op(g, "concat", "cat", (nb_node *[]){a, b}, 2,
                         (nb_attr[]){NB_AINT("axis", 1)}, 1));
    expect_graph_error(g, NB_ERR_SHAPE,
                       (const char *[]){"node 'cat': concat needs equal dims except along axis 1; a is [2, 3], b is [3, 3]"}, 1);
    nb_graph_clear_error(g);
    cr_expect_null(nb_concat(g, (nb_node *[]){a, n}, 2, 0));  /* 2 + N */
    cr_expect(strstr(nb_graph_error(g), "n is [N, 3]"), "%s", nb_graph_error(g));
    nb_graph_clear_error(g);
    cr_expect_null(nb_op(g, "concat", NULL, (nb_node *[]){a, b}, 2, NULL, 0));  /* axis required */
    cr_expect_eq(nb_graph_status(g), NB_ERR_ARG);
    nb_graph_clear_error(g);
    cr_expect_str_eq(node_shape(g, nb_concat(g, (nb_node *[]){n, n, n}, 3, 0)), "[3N, 3]");
    nb_graph_free(g);
}

/* d loss / d a and d b are the matching slices of gy */
Test(concat, gradient)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "a", NB_F64, 2, DIMS(NB_SYM("N"), NB_DIM(1)));
    nb_node *b = nb_input(g, "b", NB_F64, 2, DIMS(NB_SYM("N"), NB_DIM(2)));
    nb_node *c = nb_input(g, "c", NB_F64, 2, DIMS(NB_SYM("N"), NB_DIM(3)));
    nb_node *y = nb_concat(g, (nb_node *[]){a, b}, 2, 1);
    nb_node *loss = nb_sum(g, nb_mul(g, y, c), NULL, 0, false), *d[2];
    cr_assert_eq(nb_grad(g, loss, (nb_node *[]){a, b}, 2, d), NB_OK, "%s", nb_graph_error(g));
    nb_plan *p = plan_new_ok(g, d, 2);
    plan_bind_ok(p, (nb_bind[]){{"N", 2}}, 1);
    nb_plan_set(p, a, (double[]){0, 0});
    nb_plan_set(p, b, (double[]){0, 0, 0, 0});
    nb_plan_set(p, c, (double[]){1, 2, 3, 4, 5, 6});
    plan_run_ok(p);
    expect_close(nb_plan_get(p, d[0]), (double[]){1, 4}, 2, 1e-6, 0, "values");
    expect_close(nb_plan_get(p, d[1]), (double[]){2, 3, 5, 6}, 4, 1e-6, 0, "values");
    nb_plan_free(p);
    nb_graph_free(g);
}

/* A free size along the joined axis: the gradient is still each input's part
 * (test_concat_free.c tests this on every axis and through the tool). */
Test(concat, gradient_along_a_free_axis)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "a", NB_F64, 2, DIMS(NB_SYM("N"), NB_DIM(2)));
    nb_node *b = nb_input(g, "b", NB_F64, 2, DIMS(NB_SYM("N"), NB_DIM(2)));
    nb_node *y = nb_op(g, "concat", "cat", (nb_node *[]){a, b}, 2, (nb_attr[]){NB_AINT("axis", 0)}, 1);
    nb_node *loss = nb_sum(g, nb_mul(g, y, y), NULL, 0, false), *d[2];
    cr_assert_eq(nb_grad(g, loss, (nb_node *[]){a, b}, 2, d), NB_OK, "%s", nb_graph_error(g));
    nb_plan *p = plan_new_ok(g, d, 2);
    plan_bind_ok(p, (nb_bind[]){{"N", 1}}, 1);
    nb_plan_set(p, a, (double[]){1, 2});
    nb_plan_set(p, b, (double[]){3, 4});
    plan_run_ok(p);
    expect_close(nb_plan_get(p, d[0]), (double[]){2, 4}, 2, 0, 0, "d a");
    expect_close(nb_plan_get(p, d[1]), (double[]){6, 8}, 2, 0, 0, "d b");
    nb_plan_free(p);
    nb_graph_free(g);
}

/* ---- slice ---- */

static void slice_values(nb_dtype dt)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", dt, 2, DIMS(NB_DIM(2), NB_DIM(5)));
    double v[10], out[10];
    int64_t s[NB_MAX_DIMS];
    fill_iota(v, 10);
    /* x[:, -3:100] */
    int r = run1(g, x, v, nb_slice(g, x, 1, -3, 100), NULL, 0, out, s);
    expect_shape(r, s, 2, (int64_t[]){2, 3});
    expect_close(out, (double[]){2, 3, 4, 7, 8, 9}, 6, 1e-6, 0, "values");
    /* x[-1:2] along axis 0 is the last row */
    r = run1(g, x, v, nb_slice(g, x, 0, -1, 2), NULL, 0, out, s);
    expect_shape(r, s, 2, (int64_t[]){1, 5});
    expect_close(out, (double[]){5, 6, 7, 8, 9}, 5, 1e-6, 0, "values");
    /* x[:, -10:-4]: the start clamps to 0, the end is 1 */
    r = run1(g, x, v, nb_slice(g, x, -1, -10, -4), NULL, 0, out, s);
    expect_shape(r, s, 2, (int64_t[]){2, 1});
    expect_close(out, (double[]){0, 5}, 2, 1e-6, 0, "values");
    nb_graph_free(g);
}

Test(slice, values_f32) { slice_values(NB_F32); }
Test(slice, values_f64) { slice_values(NB_F64); }

Test(slice, free_dims_elsewhere_are_fine)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 2, DIMS(NB_SYM("N"), NB_DIM(4)));
    cr_expect_str_eq(node_shape(g, nb_slice(g, x, 1, 1, 3)), "[N, 2]");
    nb_graph_free(g);
}

Test(slice, errors)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 2, DIMS(NB_SYM("N"), NB_DIM(4)));
    struct {
        int64_t axis, start, end;
        nb_status st;
        const char *msg;
    } bad[] = {{1, 3, 3, NB_ERR_SHAPE, "start 3, end 3 select nothing along axis 1 of x is [N, 4]"},
               {1, -1, 2, NB_ERR_SHAPE, "start -1, end 2 select nothing"},
               {1, 7, 9, NB_ERR_SHAPE, "select nothing"},
               {0, 0, 1, NB_ERR_SHAPE, "needs a constant size along axis 0; x is [N, 4]"},
               {2, 0, 1, NB_ERR_ARG, "axis 2 is out of range for rank 2"}};
    for (size_t i = 0; i < LEN(bad); i++) {
        nb_graph_clear_error(g);
        cr_expect_null(nb_slice(g, x, bad[i].axis, bad[i].start, bad[i].end));
        cr_expect_eq(nb_graph_status(g), bad[i].st, "case %zu: %s", i, nb_graph_error(g));
        cr_expect(strstr(nb_graph_error(g), bad[i].msg), "%s", nb_graph_error(g));
    }
    nb_graph_clear_error(g);
    cr_expect_null(nb_op(g, "slice", NULL, &x, 1, (nb_attr[]){NB_AINT("axis", 1)}, 1));
    cr_expect(strstr(nb_graph_error(g), "needs attribute 'start'"), "%s", nb_graph_error(g));
    nb_graph_free(g);
}

/* gy lands in the sliced region, zeros elsewhere */
Test(slice, gradient)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 2, DIMS(NB_DIM(2), NB_DIM(4)));
    nb_node *c = nb_input(g, "c", NB_F32, 2, DIMS(NB_DIM(2), NB_DIM(2)));
    nb_node *loss = nb_sum(g, nb_mul(g, nb_slice(g, x, 1, -3, -1), c), NULL, 0, false), *dx;
    cr_assert_eq(nb_grad(g, loss, &x, 1, &dx), NB_OK, "%s", nb_graph_error(g));
    cr_expect_str_eq(nb_node_op(dx), "slice_backward");
    nb_plan *p = plan_new_ok(g, &dx, 1);
    nb_plan_set(p, x, (float[]){9, 9, 9, 9, 9, 9, 9, 9});
    nb_plan_set(p, c, (float[]){1, 2, 3, 4});
    plan_run_ok(p);
    const float *d = nb_plan_get(p, dx);
    float want[8] = {0, 1, 2, 0, 0, 3, 4, 0};
    for (int i = 0; i < 8; i++) cr_expect_float_eq(d[i], want[i], 1e-6, "dx[%d] = %g", i, d[i]);
    nb_plan_free(p);
    nb_graph_free(g);
}

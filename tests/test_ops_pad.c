/* Issue 12's op-set additions for ONNX import. pad: hand-computed values and
 * gradients in f32 and f64 (asymmetric, fill value, crops, rank 0 and 3),
 * free dims, shape errors, second order; pad + conv2d (how the importer writes
 * asymmetric conv pads) against conv2d's own pad and central differences;
 * model files. avg_pool2d's count_include_pad: values and gradients against
 * PyTorch, model files. (gradcheck of every `cases` entry is test_grad_ops.) */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const nb_dtype dtypes[2] = {NB_F64, NB_F32};

/* y = pad(x) and gx = d sum(y * w) / dx, w = 1, 2, 3, ... (caller frees both). */
static void pad_run(nb_dtype dt, int rank, const int64_t *shape, const double *xv,
                    const int64_t *before, const int64_t *after, double value, double **y,
                    double **gx, int64_t *out_shape)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = input_shaped(g, "x", dt, rank, shape), *d;
    nb_node *yn = nb_pad(g, x, before, after, value);
    cr_assert(yn, "%s", nb_graph_error(g));
    for (int i = 0; i < rank; i++) out_shape[i] = nb_node_dim(yn, i);
    size_t ny = shape_numel(rank, out_shape), nx = shape_numel(rank, shape);
    nb_node *w = input_shaped(g, "w", dt, rank, out_shape);
    cr_assert_eq(nb_grad(g, nb_sum(g, nb_mul(g, yn, w), NULL, 0, false), &x, 1, &d), NB_OK, "%s",
                 nb_graph_error(g));
    double *wv = malloc(ny * sizeof *wv);
    for (size_t i = 0; i < ny; i++) wv[i] = (double)i + 1;
    *y = malloc(ny * sizeof **y), *gx = malloc(nx * sizeof **gx);
    eval_graph(g, 2, (nb_node *[]){yn, d}, (double *[]){*y, *gx}, 2, (nb_node *[]){x, w},
               (const double *[]){xv, wv}, NULL, 0);
    free(wv);
    nb_graph_free(g);
}

static void expect_vals(const double *got, const double *want, size_t n, const char *what)
{
    expect_close(got, want, n, 1e-6, 1e-6, what);
}

Test(pad, asymmetric_with_fill_value)
{
    double x[6] = {1, 2, 3, 4, 5, 6}, *y, *gx;
    int64_t s[2];
    for (int t = 0; t < 2; t++) {
        pad_run(dtypes[t], 2, (int64_t[]){2, 3}, x, (int64_t[]){1, 0}, (int64_t[]){0, 2}, 9, &y,
                &gx, s);
        cr_expect(s[0] == 3 && s[1] == 5, "[%lld, %lld]", (long long)s[0], (long long)s[1]);
        expect_vals(y, (double[]){9, 9, 9, 9, 9, 1, 2, 3, 9, 9, 4, 5, 6, 9, 9}, 15, "y");
        /* x[i][j] lands at y[i + 1][j]: its gradient is w there */
        expect_vals(gx, (double[]){6, 7, 8, 11, 12, 13}, 6, "gx");
        free(y), free(gx);
    }
}

/* Negative amounts crop: y[o] reads x[o - before], the fill elsewhere. */
Test(pad, negative_amounts_crop)
{
    double x[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, *y, *gx;
    int64_t s[2];
    for (int t = 0; t < 2; t++) {
        pad_run(dtypes[t], 2, (int64_t[]){2, 5}, x, (int64_t[]){-1, 1}, (int64_t[]){2, -2}, -1, &y,
                &gx, s);
        cr_expect(s[0] == 3 && s[1] == 4);
        expect_vals(y, (double[]){-1, 6, 7, 8, -1, -1, -1, -1, -1, -1, -1, -1}, 12, "y");
        expect_vals(gx, (double[]){0, 0, 0, 0, 0, 2, 3, 4, 0, 0}, 10, "gx");
        free(y), free(gx);
    }
}

Test(pad, rank3_and_scalar)
{
    double x[4] = {1, 2, 3, 4}, *y, *gx;
    int64_t s[3];
    for (int t = 0; t < 2; t++) {
        pad_run(dtypes[t], 3, (int64_t[]){1, 2, 2}, x, (int64_t[]){0, 1, 0}, (int64_t[]){1, 0, 1},
                0, &y, &gx, s);
        cr_expect(s[0] == 2 && s[1] == 3 && s[2] == 3);
        double want[18] = {0, 0, 0, 1, 2, 0, 3, 4, 0};
        expect_vals(y, want, 18, "y");
        expect_vals(gx, (double[]){4, 5, 7, 8}, 4, "gx");
        free(y), free(gx);
        pad_run(dtypes[t], 0, NULL, (double[]){2.5}, NULL, NULL, 7, &y, &gx, s);
        cr_expect_eq(y[0], 2.5);
        cr_expect_eq(gx[0], 1);
        free(y), free(gx);
    }
}

/* A free dim stays free when not padded; padding it is an error. */
Test(pad, free_dims)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(2)});
    nb_node *y = nb_pad(g, x, (int64_t[]){0, 1}, (int64_t[]){0, 0}, 3);
    cr_assert(y, "%s", nb_graph_error(g));
    cr_expect_str_eq(node_shape(g, y), "[N, 3]");
    double xv[4] = {1, 2, 3, 4}, out[6];
    int64_t shape[2];
    cr_expect_eq(eval_node_bound(g, y, out, shape, 1, &x, (const double *[]){xv},
                                 (nb_bind[]){{"N", 2}}, 1), 2);
    expect_vals(out, (double[]){3, 1, 2, 3, 3, 4}, 6, "y");
    cr_expect_null(nb_pad(g, x, (int64_t[]){1, 0}, (int64_t[]){0, 0}, 0));
    expect_graph_error(g, NB_ERR_SHAPE,
                       (const char *[]){"pad", "constant size along axis 0", "x is [N, 2]"}, 3);
    nb_graph_free(g);
}

Test(pad, errors)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = input_shaped(g, "x", NB_F32, 2, (int64_t[]){2, 3});
    nb_attr one[1] = {{.name = "before", .type = NB_ATTR_INTS, .n = 1, .i = {1}}};
    cr_expect_null(nb_op(g, "pad", "p1", &x, 1, one, 1));
    expect_graph_error(g, NB_ERR_ARG,
                       (const char *[]){"'p1'", "one 'before' and one 'after' entry per axis of x (2)",
                                        "got 1 and 1"}, 3);
    nb_graph_free(g);

    g = nb_graph_new();
    x = input_shaped(g, "x", NB_F32, 2, (int64_t[]){2, 3});
    cr_expect_null(nb_pad(g, x, (int64_t[]){0, -2}, (int64_t[]){0, -1}, 0));
    expect_graph_error(g, NB_ERR_SHAPE,
                       (const char *[]){"pads (-2, -1) leave 0 elements along axis 1", "x is [2, 3]"}, 2);
    nb_graph_free(g);

    g = nb_graph_new();
    x = input_shaped(g, "x", NB_F32, 1, (int64_t[]){2});
    cr_expect_null(nb_pad(g, x, (int64_t[]){(int64_t)1 << 50}, (int64_t[]){0}, 0));
    expect_graph_error(g, NB_ERR_ARG, (const char *[]){"beyond +-2^48"}, 1);
    nb_graph_free(g);

    g = nb_graph_new();
    x = input_shaped(g, "x", NB_I32, 1, (int64_t[]){2});
    cr_expect_null(nb_pad(g, x, (int64_t[]){1}, (int64_t[]){1}, 0));
    cr_expect_neq(nb_graph_status(g), NB_OK);
    nb_graph_free(g);
}

/* d/dx sum(S * d/dx sum(R * pad(x)^2)) against central differences: pad's
 * gradient (pad with the amounts negated) differentiates again. */
Test(pad, second_order)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = input_shaped(g, "x", NB_F64, 2, (int64_t[]){3, 4});
    nb_node *R = input_shaped(g, "R", NB_F64, 2, (int64_t[]){4, 4});
    nb_node *S = input_shaped(g, "S", NB_F64, 2, (int64_t[]){3, 4});
    nb_node *y = nb_pad(g, x, (int64_t[]){2, -1}, (int64_t[]){-1, 1}, 0.5), *G;
    nb_node *L = nb_sum(g, nb_mul(g, R, nb_mul(g, y, y)), NULL, 0, false);
    cr_assert_eq(nb_grad(g, L, &x, 1, &G), NB_OK, "%s", nb_graph_error(g));
    nb_node *H = nb_sum(g, nb_mul(g, S, G), NULL, 0, false);
    double xv[12], Rv[16], Sv[12];
    fill_random(xv, 12, 1), fill_random(Rv, 16, 2), fill_random(Sv, 12, 3);
    nb_feed feeds[3] = {{x, xv}, {R, Rv}, {S, Sv}};
    nb_gc_result r;
    nb_gc_opts o = NB_GC_DEFAULTS;
    o.max_elems = 0;
    cr_assert_eq(nb_gradcheck(g, H, &x, 1, NULL, 0, feeds, 3, &o, &r), NB_OK, "%s", nb_graph_error(g));
    cr_expect(r.pass, "max abs err %g", r.max_abs);
    cr_expect_eq(r.checked, 12);
    nb_graph_free(g);
}

/* ---- pad + conv2d: the importer's asymmetric conv pads ---- */

/* conv2d(pad(x) by 1 on H and W, w) is conv2d(x, w; pad 1). */
Test(pad_conv, symmetric_pad_is_conv_pad)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = input_shaped(g, "x", NB_F64, 4, (int64_t[]){2, 2, 5, 4});
    nb_node *w = input_shaped(g, "w", NB_F64, 4, (int64_t[]){3, 2, 3, 3});
    nb_node *p = nb_pad(g, x, (int64_t[]){0, 0, 1, 1}, (int64_t[]){0, 0, 1, 1}, 0);
    nb_node *a = nb_conv2d(g, p, w, NULL, 2, 0), *b = nb_conv2d(g, x, w, NULL, 2, 1);
    cr_assert(a && b, "%s", nb_graph_error(g));
    cr_assert_str_eq(node_shape(g, a), node_shape(g, b));
    double xv[80], wv[54], av[36], bv[36];
    fill_random(xv, 80, 4), fill_random(wv, 54, 5);
    cr_assert_eq(shape_numel(4, (int64_t[]){2, 3, 3, 2}), 36);
    eval_graph(g, 2, (nb_node *[]){a, b}, (double *[]){av, bv}, 2, (nb_node *[]){x, w},
               (const double *[]){xv, wv}, NULL, 0);
    expect_close(av, bv, 36, 1e-14, 1e-12, "pad + conv2d vs conv2d pad 1");
    nb_graph_free(g);
}

/* Asymmetric pads (1 top, 2 bottom, 0 left, 1 right), stride 2, bias:
 * gradients of x, w and b against central differences. */
Test(pad_conv, asymmetric_gradcheck)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = input_shaped(g, "x", NB_F64, 4, (int64_t[]){2, 2, 5, 4});
    nb_node *w = input_shaped(g, "w", NB_F64, 4, (int64_t[]){3, 2, 3, 3});
    nb_node *b = input_shaped(g, "b", NB_F64, 1, (int64_t[]){3});
    nb_node *p = nb_pad(g, x, (int64_t[]){0, 0, 1, 0}, (int64_t[]){0, 0, 2, 1}, 0);
    nb_node *y = nb_conv2d(g, p, w, b, 2, 0);
    cr_assert(y, "%s", nb_graph_error(g));
    cr_expect_str_eq(node_shape(g, y), "[2, 3, 3, 2]");  /* (5+3-3)/2+1, (4+1-3)/2+1 */
    nb_node *R = input_shaped(g, "R", NB_F64, 4, (int64_t[]){2, 3, 3, 2});
    nb_node *loss = nb_sum(g, nb_mul(g, R, nb_mul(g, y, y)), NULL, 0, false);
    double xv[80], wv[54], bv[3], Rv[36];
    fill_random(xv, 80, 6), fill_random(wv, 54, 7), fill_random(bv, 3, 8), fill_random(Rv, 36, 9);
    nb_feed feeds[4] = {{x, xv}, {w, wv}, {b, bv}, {R, Rv}};
    nb_gc_result r[3];
    nb_gc_opts o = NB_GC_DEFAULTS;
    o.max_elems = 0;
    cr_assert_eq(nb_gradcheck(g, loss, (nb_node *[]){x, w, b}, 3, NULL, 0, feeds, 4, &o, r), NB_OK,
                 "%s", nb_graph_error(g));
    for (int i = 0; i < 3; i++) {
        cr_expect(r[i].pass, "%s: max abs err %g", r[i].name, r[i].max_abs);
        cr_expect_eq(r[i].checked, r[i].numel);
    }
    nb_graph_free(g);
}

/* ---- model files ---- */

Test(pad_model, loads)
{
    nb_model *m = load_ok("nabla: 1\ninputs: {x: [N, 3, 4]}\nnodes:\n"
                          "  - {name: p, op: pad, in: [x], before: [0, 1, 2], after: [0, 0, -1], value: -1}\n"
                          "  - {name: q, op: pad, in: [p], before: [0, 1, 1]}\n");
    nb_graph *g = nb_model_graph(m);
    check_node(g, "p", "pad", "[N, 4, 5]");
    check_node(g, "q", "pad", "[N, 6, 7]");  /* after = before */
    cr_expect_eq(nb_node_attr(nb_graph_find(g, "p"), "value")->f, -1);
    cr_expect_eq(nb_node_attr(nb_graph_find(g, "q"), "value")->f, 0);
    nb_model_free(m);
}

Test(pad_model, errors)
{
    EXPECT_ERROR("nabla: 1\ninputs: {x: [N, 3]}\nnodes:\n"
                 "  - {name: p, op: pad, in: [x], before: [1]}\n",
                 "m.yaml:4:5: node 'p': pad needs one 'before' and one 'after' entry per axis of x "
                 "(2); got 1 and 1; x is [N, 3]");
    EXPECT_ERROR("nabla: 1\ninputs: {x: [N, 3]}\nnodes:\n"
                 "  - {name: p, op: pad, in: [x], before: [0, a]}\n",
                 "m.yaml:4:45: 'before' must be an integer; got 'a'");
    EXPECT_ERROR("nabla: 1\ninputs: {x: [N, 3]}\nnodes:\n"
                 "  - {name: p, op: pad, in: [x], after: [0, 1]}\n",
                 "m.yaml:4:5: node 'p': pad needs attribute 'before'");
    EXPECT_ERROR("nabla: 1\ninputs: {x: [N, 3]}\nnodes:\n"
                 "  - {name: p, op: pad, in: [x], before: [1, 0]}\n",
                 "m.yaml:4:5: node 'p': pad needs a constant size along axis 0 to pad it; x is [N, 3]");
    EXPECT_ERROR("nabla: 1\ninputs: {x: [N, 3]}\nnodes:\n"
                 "  - {name: p, op: pad, in: [x], before: [0, 0], valu: 1}\n",
                 "m.yaml:4:49: unknown key 'valu' (did you mean 'value'?)");
}

/* ---- avg_pool2d count_include_pad against PyTorch ---- */

/* x [1, 1, 4, 5], x[i] = (i / 2 - 3)^2 / 4, and PyTorch's avg_pool2d of it in
 * float64 with count_include_pad True and False: y, and x.grad of
 * sum(y * w) with w = 1, 2, 3, ... in y's shape. Computed with
 * /usr/bin/python3 (torch 1.13):
 *   x = (torch.arange(20.).double().reshape(1,1,4,5) * 0.5 - 3) ** 2 / 4
 *   y = F.avg_pool2d(x.requires_grad_(), K, stride=S, padding=P, count_include_pad=C)
 *   (y * torch.arange(1., y.numel() + 1).double().reshape(y.shape)).sum().backward()
 * first with K 3, S 2, P 1 (y [1, 1, 2, 3]), then K (3, 2), S (1, 2), P (1, 1)
 * (y [1, 1, 4, 3]). */
typedef struct torch_ref {
    int64_t size[2], stride[2], pad[2], oh, ow;
    bool count_pad;
    double y[12], gx[20];
} torch_ref;

static const torch_ref refs[4] = {
    {{3, 3}, {2, 2}, {1, 1}, 2, 3, true,
     {0.430555555556, 0.381944444444, 0.180555555556, 1.548611111111, 3.333333333333, 3.048611111111},
     {0.111111111111, 0.333333333333, 0.222222222222, 0.555555555556, 0.333333333333,
      0.555555555556, 1.333333333333, 0.777777777778, 1.777777777778, 1.0, 0.444444444444, 1.0,
      0.555555555556, 1.222222222222, 0.666666666667, 0.444444444444, 1.0, 0.555555555556,
      1.222222222222, 0.666666666667}},
    {{3, 3}, {2, 2}, {1, 1}, 2, 3, false,
     {0.96875, 0.572916666667, 0.40625, 2.322916666667, 3.333333333333, 4.572916666667},
     {0.25, 0.583333333333, 0.333333333333, 1.083333333333, 0.75, 0.916666666667, 1.805555555556,
      0.888888888889, 2.638888888889, 1.75, 0.666666666667, 1.222222222222, 0.555555555556,
      1.555555555556, 1.0, 0.666666666667, 1.222222222222, 0.555555555556, 1.555555555556, 1.0}},
    {{3, 2}, {1, 2}, {1, 1}, 4, 3, true,
     {0.385416666667, 0.4375, 0.270833333333, 0.552083333333, 1.072916666667, 1.447916666667,
      1.020833333333, 2.947916666667, 4.572916666667, 1.010416666667, 2.9375, 4.4375},
     {0.833333333333, 1.166666666667, 1.166666666667, 1.5, 1.5, 2.0, 2.5, 2.5, 3.0, 3.0, 3.5, 4.0,
      4.0, 4.5, 4.5, 2.833333333333, 3.166666666667, 3.166666666667, 3.5, 3.5}},
    {{3, 2}, {1, 2}, {1, 1}, 4, 3, false,
     {1.15625, 0.65625, 0.40625, 1.104166666667, 1.072916666667, 1.447916666667, 2.041666666667,
      2.947916666667, 4.572916666667, 3.03125, 4.40625, 6.65625},
     {1.833333333333, 1.333333333333, 1.333333333333, 1.75, 1.75, 4.166666666667, 2.666666666667,
      2.666666666667, 3.25, 3.25, 8.666666666667, 4.916666666667, 4.916666666667, 5.5, 5.5,
      7.333333333333, 4.083333333333, 4.083333333333, 4.5, 4.5}},
};

#define HW2(nm, v) {.name = (nm), .type = NB_ATTR_INTS, .n = 2, .i = {(v)[0], (v)[1]}}

/* explicit: give count_include_pad (else it takes its default, true) */
static void avg_vs_torch(const torch_ref *r, nb_dtype dt, bool explicit)
{
    double x[20], w[12], y[12], gx[20];
    for (int i = 0; i < 20; i++) x[i] = (i * 0.5 - 3) * (i * 0.5 - 3) / 4;
    for (int i = 0; i < 12; i++) w[i] = i + 1;
    nb_graph *g = nb_graph_new();
    nb_node *xn = input_shaped(g, "x", dt, 4, (int64_t[]){1, 1, 4, 5}), *d;
    nb_attr a[4] = {HW2("size", r->size), HW2("stride", r->stride), HW2("pad", r->pad),
                    NB_ABOOL("count_include_pad", r->count_pad)};
    nb_node *yn = nb_op(g, "avg_pool2d", "y", &xn, 1, a, explicit ? 4 : 3);
    cr_assert(yn, "%s", nb_graph_error(g));
    cr_assert(nb_node_dim(yn, 2) == r->oh && nb_node_dim(yn, 3) == r->ow);
    size_t n = (size_t)(r->oh * r->ow);
    nb_node *wn = input_shaped(g, "w", dt, 4, (int64_t[]){1, 1, r->oh, r->ow});
    cr_assert_eq(nb_grad(g, nb_sum(g, nb_mul(g, yn, wn), NULL, 0, false), &xn, 1, &d), NB_OK, "%s",
                 nb_graph_error(g));
    eval_graph(g, 2, (nb_node *[]){yn, d}, (double *[]){y, gx}, 2, (nb_node *[]){xn, wn},
               (const double *[]){x, w}, NULL, 0);
    double tol = dt == NB_F64 ? 1e-11 : 1e-6;
    expect_close(y, r->y, n, tol, tol, r->count_pad ? "y (count_include_pad)" : "y");
    expect_close(gx, r->gx, 20, tol, tol, r->count_pad ? "gx (count_include_pad)" : "gx");
    nb_graph_free(g);
}

Test(avg_pool, count_include_pad_vs_torch)
{
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < 4; i++) avg_vs_torch(&refs[i], dtypes[t], true);
}

/* Leaving it out keeps nabla's (and PyTorch's) default: padded zeros count. */
Test(avg_pool, default_counts_padding)
{
    for (int t = 0; t < 2; t++) {
        avg_vs_torch(&refs[0], dtypes[t], false);
        avg_vs_torch(&refs[2], dtypes[t], false);
    }
}

Test(avg_pool, count_include_pad_in_model_files)
{
    nb_model *m = load_ok("nabla: 1\ninputs: {x: [N, 2, 5, 5]}\nnodes:\n"
                          "  - {name: a, op: avg_pool2d, in: [x], size: 3, stride: 2, pad: 1, count_include_pad: false}\n"
                          "  - {name: b, op: avg_pool2d, in: [x], size: 3, stride: 2, pad: 1}\n");
    nb_graph *g = nb_model_graph(m);
    check_node(g, "a", "avg_pool2d", "[N, 2, 3, 3]");
    cr_expect_eq(nb_node_attr(nb_graph_find(g, "a"), "count_include_pad")->i[0], 0);
    cr_expect_eq(nb_node_attr(nb_graph_find(g, "b"), "count_include_pad")->i[0], 1);
    nb_model_free(m);
    EXPECT_ERROR("nabla: 1\ninputs: {x: [N, 2, 5, 5]}\nnodes:\n"
                 "  - {name: a, op: avg_pool2d, in: [x], size: 3, count_include_pad: 2}\n",
                 "m.yaml:4:68: 'count_include_pad' must be true or false; got '2'");
    EXPECT_ERROR("nabla: 1\ninputs: {x: [N, 2, 5, 5]}\nnodes:\n"
                 "  - {name: a, op: max_pool2d, in: [x], size: 3, count_include_pad: false}\n",
                 "m.yaml:4:49: unknown key 'count_include_pad'");
}

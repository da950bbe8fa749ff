/* Issue 9's convolution and pooling forms against PyTorch 1.13 (float64
 * references in tests/ref_convops/, made by make_refs.py there): conv2d with
 * groups (2 and depthwise), dilation and [h, w] stride/pad/dilation; pools
 * with [h, w] size/stride/pad; global_avg_pool2d; matmul with 1-D operands.
 * Each case runs in f64 and f32: the output and the gradients of
 * sum(y * R). Then max_pool2d's NaN rule, second order through max_pool2d,
 * shape errors, and a model file using the new attributes. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define HW(nm, h, w) {.name = (nm), .type = NB_ATTR_INTS, .n = 2, .i = {(h), (w)}}
#define D4(a, b, c, d) ((nb_dim[]){NB_DIM(a), NB_DIM(b), NB_DIM(c), NB_DIM(d)})

static nb_tensor ref(const char *name, const char *key)
{
    return read_npy_f64(test_file("ref_convops/%s.%s.npy", name, key));
}

/* op on the inputs keys[0..n) of case `name`; compares y and d sum(y * R) / d input. */
static void check_ref(const char *name, const char *op, const char *const *keys, int n,
                      const nb_attr *attrs, int n_attrs, nb_dtype dt)
{
    nb_tensor in[5], want[5];
    nb_node *x[5], *outs[5];
    const double *v[5];
    double *got[5];
    nb_graph *g = nb_graph_new();
    for (int k = 0; k <= n; k++) {
        in[k] = ref(name, k < n ? keys[k] : "R");
        x[k] = input_shaped(g, k < n ? keys[k] : "R", dt, in[k].rank, in[k].shape);
        v[k] = in[k].data;
    }
    nb_node *y = nb_op(g, op, "y", x, n, attrs, n_attrs);
    cr_assert(y, "%s: %s", name, nb_graph_error(g));
    nb_node *loss = nb_sum(g, nb_mul(g, y, x[n]), NULL, 0, false);
    outs[0] = y;
    cr_assert_eq(nb_grad(g, loss, x, n, outs + 1), NB_OK, "%s: %s", name, nb_graph_error(g));
    for (int k = 0; k <= n; k++) {
        char key[16];
        snprintf(key, sizeof key, "g%s", k ? keys[k - 1] : "");
        want[k] = ref(name, k ? key : "y");
        got[k] = malloc(shape_numel(want[k].rank, want[k].shape) * sizeof(double));
    }
    eval_graph(g, n + 1, outs, got, n + 1, x, v, NULL, 0);
    double tol = dt == NB_F64 ? 1e-10 : 2e-5;
    for (int k = 0; k <= n; k++) {
        char what[64];
        snprintf(what, sizeof what, "%s %s %s", name, k ? keys[k - 1] : "y", nb_dtype_name(dt));
        cr_expect_eq(nb_node_rank(k ? x[k - 1] : y), want[k].rank, "%s: rank", what);
        expect_close(got[k], want[k].data, shape_numel(want[k].rank, want[k].shape), tol, tol, what);
        free(got[k]);
        nb_tensor_free(&want[k]);
    }
    for (int k = 0; k <= n; k++) nb_tensor_free(&in[k]);
    nb_graph_free(g);
}

static const char *const XWB[] = {"x", "w", "b"}, *const AB[] = {"a", "b"};
static const nb_dtype dtypes[2] = {NB_F64, NB_F32};

static void conv_case(const char *name, bool bias, const nb_attr *a, int n)
{
    for (int d = 0; d < 2; d++) check_ref(name, "conv2d", XWB, bias ? 3 : 2, a, n, dtypes[d]);
}

Test(conv2, groups_2) { conv_case("conv_groups2", true, (nb_attr[]){NB_AINT("pad", 1), NB_AINT("groups", 2)}, 2); }
Test(conv2, depthwise)
{
    conv_case("conv_depthwise", true,
              (nb_attr[]){NB_AINT("stride", 2), NB_AINT("pad", 1), NB_AINT("groups", 3)}, 3);
}
Test(conv2, depthwise_multiplier) { conv_case("conv_depth_mult", false, (nb_attr[]){NB_AINT("groups", 2)}, 1); }
Test(conv2, dilation_2)
{
    conv_case("conv_dilation2", true, (nb_attr[]){NB_AINT("dilation", 2), NB_AINT("pad", 2)}, 2);
}
Test(conv2, asymmetric)
{
    conv_case("conv_asym", true, (nb_attr[]){HW("stride", 2, 1), HW("pad", 1, 0), HW("dilation", 1, 2)}, 3);
}
Test(conv2, all_at_once)
{
    conv_case("conv_mixed", false,
              (nb_attr[]){HW("stride", 1, 2), HW("pad", 0, 1), NB_AINT("dilation", 2), NB_AINT("groups", 2)}, 4);
}

static void pool_case(const char *name, const char *op, const nb_attr *a, int n)
{
    for (int d = 0; d < 2; d++) check_ref(name, op, XWB, 1, a, n, dtypes[d]);
}

Test(pool2, max_asymmetric)
{
    pool_case("max_asym", "max_pool2d", (nb_attr[]){HW("size", 3, 2), HW("stride", 1, 2), HW("pad", 1, 0)}, 3);
}
Test(pool2, avg_asymmetric) { pool_case("avg_asym", "avg_pool2d", (nb_attr[]){HW("size", 2, 2), HW("stride", 2, 1)}, 2); }
Test(pool2, avg_asymmetric_padded)
{
    pool_case("avg_asym_pad", "avg_pool2d", (nb_attr[]){HW("size", 3, 2), HW("stride", 1, 2), HW("pad", 1, 0)}, 3);
}
Test(pool2, global_avg) { pool_case("global_avg", "global_avg_pool2d", NULL, 0); }

static void mm_case(const char *name)
{
    for (int d = 0; d < 2; d++) check_ref(name, "matmul", AB, 2, NULL, 0, dtypes[d]);
}
Test(matmul_vec, vector_vector_is_scalar) { mm_case("mm_vv"); }
Test(matmul_vec, vector_matrix) { mm_case("mm_vm"); }
Test(matmul_vec, matrix_vector) { mm_case("mm_mv"); }
Test(matmul_vec, vector_batched) { mm_case("mm_v_batched"); }
Test(matmul_vec, batched_vector) { mm_case("mm_batched_v"); }

/* A symbolic batch on the matrix side: the gradient's reshapes name the symbol. */
Test(matmul_vec, symbolic_batch_gradcheck)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "a", NB_F64, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *b = nb_input(g, "b", NB_F64, 3, (nb_dim[]){NB_SYM("B"), NB_DIM(3), NB_DIM(2)});
    nb_node *y = nb_matmul(g, a, b);
    cr_assert(y, "%s", nb_graph_error(g));
    cr_expect_str_eq(node_shape(g, y), "[B, 2]");
    nb_node *v = nb_matmul(g, b, nb_input(g, "c", NB_F64, 1, (nb_dim[]){NB_DIM(2)}));
    cr_assert(v, "%s", nb_graph_error(g));
    cr_expect_str_eq(node_shape(g, v), "[B, 3]");
    nb_node *loss = nb_sum(g, nb_mul(g, nb_matmul(g, y, nb_node_input(v, 1)), nb_sum(g, v, (int64_t[]){1}, 1, false)), NULL, 0, false);
    cr_assert(loss, "%s", nb_graph_error(g));
    double av[3], bv[12], cv[2];
    fill_random(av, 3, 1), fill_random(bv, 12, 2), fill_random(cv, 2, 3);
    nb_feed feeds[3] = {{a, av}, {b, bv}, {nb_node_input(v, 1), cv}};
    nb_gc_result r[3];
    nb_status st = nb_gradcheck(g, loss, (nb_node *[]){a, b, nb_node_input(v, 1)}, 3,
                                (nb_bind[]){{"B", 2}}, 1, feeds, 3, NULL, r);
    cr_assert_eq(st, NB_OK, "%s", nb_graph_error(g));
    for (int i = 0; i < 3; i++) cr_expect(r[i].pass, "%s: max abs err %g", r[i].name, r[i].max_abs);
    nb_graph_free(g);
}

/* PyTorch: a NaN in a window is its maximum, and the window's gradient goes
 * to it (to the last NaN in row-major order, by `val > max || isnan(val)`).
 * Values from torch.nn.functional.max_pool2d(x, 2, 1) and its backward with
 * gy = [[1, 10], [100, 1000]] (torch 1.13, CPU). */
Test(pool2, max_nan_is_the_maximum_and_takes_the_gradient)
{
    /* plane 0 has no NaN (the fast path), plane 1 has two */
    const double x[18] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 1, NAN, 3, NAN, 2, 5, 0, 1, 2};
    const double gy[8] = {2, 20, 200, 2000, 1, 10, 100, 1000};
    const double want_gx[18] = {0, 0, 0, 0, 2, 20, 0, 200, 2000, 0, 10, 0, 101, 0, 1000, 0, 0, 0};
    for (int d = 0; d < 2; d++) {
        nb_graph *g = nb_graph_new();
        nb_node *xn = nb_input(g, "x", dtypes[d], 4, D4(1, 2, 3, 3));
        nb_node *R = nb_input(g, "R", dtypes[d], 4, D4(1, 2, 2, 2));
        nb_node *y = nb_op(g, "max_pool2d", "y", &xn, 1, (nb_attr[]){NB_AINT("size", 2), NB_AINT("stride", 1)}, 2);
        nb_node *gx;
        cr_assert_eq(nb_grad(g, nb_sum(g, nb_mul(g, y, R), NULL, 0, false), &xn, 1, &gx), NB_OK, "%s",
                     nb_graph_error(g));
        double yv[8], gv[18];
        eval_graph(g, 2, (nb_node *[]){y, gx}, (double *[]){yv, gv}, 2, (nb_node *[]){xn, R},
                   (const double *[]){x, gy}, NULL, 0);
        const double want_y0[4] = {5, 6, 8, 9};
        expect_close(yv, want_y0, 4, 0, 0, "plane 0");
        cr_expect(isnan(yv[4]) && isnan(yv[5]) && isnan(yv[6]) && yv[7] == 5, "%s: y = %g %g %g %g",
                  nb_dtype_name(dtypes[d]), yv[4], yv[5], yv[6], yv[7]);
        expect_close(gv, want_gx, 18, 0, 0, nb_dtype_name(dtypes[d]));
        nb_graph_free(g);
    }
}

/* A plane with infinities (no NaN) takes the NaN-aware path too (the scan
 * sums x - x): +inf is the maximum, its first occurrence takes the gradient.
 * Values from torch 1.13 as above. */
Test(pool2, max_with_infinities)
{
    const double x[9] = {-INFINITY, -INFINITY, 1, INFINITY, INFINITY, 0, -INFINITY, -INFINITY, -INFINITY};
    const double gy[4] = {1, 10, 100, 1000}, want_gx[9] = {0, 0, 0, 101, 1010, 0, 0, 0, 0};
    for (int d = 0; d < 2; d++) {
        nb_graph *g = nb_graph_new();
        nb_node *xn = nb_input(g, "x", dtypes[d], 4, D4(1, 1, 3, 3));
        nb_node *R = nb_input(g, "R", dtypes[d], 4, D4(1, 1, 2, 2));
        nb_node *y = nb_op(g, "max_pool2d", "y", &xn, 1, (nb_attr[]){NB_AINT("size", 2), NB_AINT("stride", 1)}, 2);
        nb_node *gx;
        cr_assert_eq(nb_grad(g, nb_sum(g, nb_mul(g, y, R), NULL, 0, false), &xn, 1, &gx), NB_OK, "%s",
                     nb_graph_error(g));
        double yv[4], gv[9];
        eval_graph(g, 2, (nb_node *[]){y, gx}, (double *[]){yv, gv}, 2, (nb_node *[]){xn, R},
                   (const double *[]){x, gy}, NULL, 0);
        for (int i = 0; i < 4; i++) cr_expect(isinf(yv[i]) && yv[i] > 0, "y[%d] = %g", i, yv[i]);
        expect_close(gv, want_gx, 9, 0, 0, nb_dtype_name(dtypes[d]));
        nb_graph_free(g);
    }
}

/* The gradient of a gradient through max_pool2d: with L = sum(R * y^2),
 * y = max_pool2d(x), G = dL/dx and H = sum(S * G), dH/dx (which needs the
 * gradient of max_pool2d_backward) against central differences of H, which
 * is computed from the analytic G; and both against PyTorch's double backward. */
Test(pool2, second_order_through_max_pool2d)
{
    nb_tensor xt = ref("max_second", "x"), Rt = ref("max_second", "R"), St = ref("max_second", "S");
    nb_tensor Gt = ref("max_second", "G"), dHt = ref("max_second", "dH");
    nb_graph *g = nb_graph_new();
    nb_node *x = input_shaped(g, "x", NB_F64, 4, xt.shape), *R = input_shaped(g, "R", NB_F64, 4, Rt.shape);
    nb_node *S = input_shaped(g, "S", NB_F64, 4, St.shape);
    nb_node *y = nb_op(g, "max_pool2d", "y", &x, 1,
                       (nb_attr[]){HW("size", 3, 2), HW("stride", 1, 2), HW("pad", 1, 0)}, 3);
    nb_node *L = nb_sum(g, nb_mul(g, R, nb_mul(g, y, y)), NULL, 0, false), *G, *dH;
    cr_assert_eq(nb_grad(g, L, &x, 1, &G), NB_OK, "%s", nb_graph_error(g));
    nb_node *H = nb_sum(g, nb_mul(g, S, G), NULL, 0, false);
    cr_assert_eq(nb_grad(g, H, &x, 1, &dH), NB_OK, "%s", nb_graph_error(g));
    size_t n = shape_numel(4, xt.shape);
    double *Gv = malloc(n * 8), *dHv = malloc(n * 8);
    eval_graph(g, 2, (nb_node *[]){G, dH}, (double *[]){Gv, dHv}, 3, (nb_node *[]){x, R, S},
               (const double *[]){xt.data, Rt.data, St.data}, NULL, 0);
    expect_close(Gv, Gt.data, n, 1e-12, 1e-10, "G vs torch");
    expect_close(dHv, dHt.data, n, 1e-12, 1e-10, "dH/dx vs torch");
    nb_feed feeds[3] = {{x, xt.data}, {R, Rt.data}, {S, St.data}};
    nb_gc_result r;
    nb_gc_opts o = NB_GC_DEFAULTS;
    o.max_elems = 0;
    cr_assert_eq(nb_gradcheck(g, H, &x, 1, NULL, 0, feeds, 3, &o, &r), NB_OK, "%s", nb_graph_error(g));
    cr_expect(r.pass, "dH/dx vs central differences: max abs err %g at %zu", r.max_abs, r.worst);
    cr_expect_eq(r.checked, n);
    free(Gv), free(dHv);
    nb_tensor *ts[5] = {&xt, &Rt, &St, &Gt, &dHt};
    for (int i = 0; i < 5; i++) nb_tensor_free(ts[i]);
    nb_graph_free(g);
}

/* ---- shape errors ---- */

static void expect_op_error(const char *op, int n, const nb_dim *const *shapes, const int *ranks,
                            const nb_attr *a, int na, nb_status st, const char *const *parts, int np)
{
    nb_graph *g = nb_graph_new();
    nb_node *in[3];
    static const char *const names[3] = {"img", "K", "bias"};
    for (int i = 0; i < n; i++) in[i] = nb_input(g, names[i], NB_F32, ranks[i], shapes[i]);
    cr_expect_null(nb_op(g, op, "c1", in, n, a, na));
    expect_graph_error(g, st, parts, np);
    nb_graph_free(g);
}

static void conv_error(const nb_dim *x, const nb_dim *w, const nb_attr *a, int na, nb_status st,
                       const char *const *parts, int np)
{
    expect_op_error("conv2d", 2, (const nb_dim *const[]){x, w}, (int[]){4, 4}, a, na, st, parts, np);
}

Test(conv2, group_errors_name_the_node_and_shapes)
{
    nb_attr g2[1] = {NB_AINT("groups", 2)};
    conv_error(D4(1, 3, 5, 5), D4(4, 1, 3, 3), g2, 1, NB_ERR_SHAPE,
               (const char *[]){"node 'c1'", "groups 2 needs channels and filters divisible by 2",
                                "img is [1, 3, 5, 5]", "K is [4, 1, 3, 3]"}, 4);
    conv_error(D4(1, 4, 5, 5), D4(3, 2, 3, 3), g2, 1, NB_ERR_SHAPE,
               (const char *[]){"node 'c1'", "divisible by 2", "K is [3, 2, 3, 3]"}, 3);
    conv_error(D4(1, 4, 5, 5), D4(4, 4, 3, 3), g2, 1, NB_ERR_SHAPE,
               (const char *[]){"node 'c1'", "C/groups = 2, got 4", "img is [1, 4, 5, 5]"}, 3);
    conv_error(D4(1, 4, 5, 5), D4(4, 2, 3, 3), (nb_attr[]){NB_AINT("groups", 0)}, 1, NB_ERR_ARG,
               (const char *[]){"node 'c1'", "groups 0 must be >= 1"}, 2);
}

Test(conv2, dilated_kernel_larger_than_the_input)
{
    conv_error(D4(1, 1, 5, 9), D4(1, 1, 3, 3), (nb_attr[]){NB_AINT("dilation", 3)}, 1, NB_ERR_SHAPE,
               (const char *[]){"node 'c1'", "smaller than 1x1", "dilation 3", "img is [1, 1, 5, 9]"}, 4);
    /* dilation 2 fits: (5 - 2*2 - 1) / 1 + 1 = 1 row */
    nb_graph *g = nb_graph_new();
    nb_node *in[2] = {nb_input(g, "x", NB_F32, 4, D4(1, 1, 5, 9)), nb_input(g, "w", NB_F32, 4, D4(1, 1, 3, 3))};
    nb_node *y = nb_op(g, "conv2d", "c", in, 2, (nb_attr[]){HW("dilation", 2, 3)}, 1);
    cr_assert(y, "%s", nb_graph_error(g));
    cr_expect_str_eq(node_shape(g, y), "[1, 1, 1, 3]");
    nb_graph_free(g);
}

Test(conv2, bad_hw_attributes)
{
    nb_attr three = {.name = "stride", .type = NB_ATTR_INTS, .n = 3, .i = {1, 2, 3}};
    conv_error(D4(1, 1, 5, 5), D4(1, 1, 3, 3), &three, 1, NB_ERR_ARG,
               (const char *[]){"node 'c1'", "stride must be one integer or [h, w]; got 3 entries"}, 2);
    conv_error(D4(1, 1, 5, 5), D4(1, 1, 3, 3), (nb_attr[]){HW("pad", 0, -1)}, 1, NB_ERR_ARG,
               (const char *[]){"pad -1 must be >= 0"}, 1);
    conv_error(D4(1, 1, 5, 5), D4(1, 1, 3, 3), (nb_attr[]){HW("dilation", 0, 1)}, 1, NB_ERR_ARG,
               (const char *[]){"dilation 0 must be >= 1"}, 1);
    conv_error(D4(1, 1, 5, 5), D4(1, 1, 3, 3), (nb_attr[]){HW("stride", 1, 1LL << 31)}, 1, NB_ERR_ARG,
               (const char *[]){"stride 2147483648 must be <= 1073741824"}, 1);
    expect_op_error("max_pool2d", 1, (const nb_dim *const[]){D4(1, 1, 5, 5)}, (int[]){4},
                    (nb_attr[]){NB_AINT("size", 1LL << 31)}, 1, NB_ERR_ARG,
                    (const char *[]){"size 2147483648 must be < 2^31"}, 1);
    nb_attr size3 = {.name = "size", .type = NB_ATTR_INTS, .n = 3, .i = {2, 2, 2}};
    expect_op_error("max_pool2d", 1, (const nb_dim *const[]){D4(1, 1, 5, 5)}, (int[]){4}, &size3, 1,
                    NB_ERR_ARG, (const char *[]){"node 'c1'", "size must be one integer or [h, w]"}, 2);
    expect_op_error("avg_pool2d", 1, (const nb_dim *const[]){D4(1, 1, 5, 5)}, (int[]){4},
                    (nb_attr[]){HW("size", 3, 3), HW("pad", 0, 2)}, 2, NB_ERR_ARG,
                    (const char *[]){"pad 2 must be between 0 and size/2 = 1"}, 1);
    expect_op_error("max_pool2d", 1, (const nb_dim *const[]){D4(1, 1, 5, 3)}, (int[]){4},
                    (nb_attr[]){HW("size", 2, 4)}, 1, NB_ERR_SHAPE,
                    (const char *[]){"smaller than 1x1", "2x4 window", "img is [1, 1, 5, 3]"}, 3);
    expect_op_error("global_avg_pool2d", 1, (const nb_dim *const[]){D4(1, 2, 3, 4)}, (int[]){3}, NULL, 0,
                    NB_ERR_SHAPE, (const char *[]){"node 'c1'", "needs x [N, C, H, W]", "img is [1, 2, 3]"}, 3);
}

Test(matmul_vec, mismatch_names_both_vectors)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "u", NB_F64, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *b = nb_input(g, "v", NB_F64, 1, (nb_dim[]){NB_DIM(4)});
    cr_expect_null(nb_matmul(g, a, b));
    expect_graph_error(g, NB_ERR_SHAPE, (const char *[]){"needs a [K] and b [K]", "u is [3]", "v is [4]"}, 3);
    nb_graph_free(g);
}

/* ---- a model file with the new attributes ---- */

static const char *MODEL =
    "nabla: 1\n"
    "dtype: f64\n"
    "inputs:\n"
    "  x: [N, 4, 8, 9]\n"
    "  t: [N, 6]\n"
    "nodes:\n"
    "  - {name: c1, layer: conv2d, in: [x], filters: 6, size: [3, 2], groups: 2, dilation: [1, 2],\n"
    "     pad: [1, 1], activation: tanh, init: {normal: 0.5}}\n"
    "  - {name: p1, op: avg_pool2d, in: [c1], size: [2, 2], stride: [2, 1]}\n"
    "  - {name: m1, op: max_pool2d, in: [p1], size: [2, 1], stride: 1, pad: [1, 0]}\n"
    "  - {name: gp, op: global_avg_pool2d, in: [m1]}\n"
    "  - {name: f, op: flatten, in: [gp]}\n"
    "  - {name: loss, op: mse, in: [f, t]}\n"
    "loss: loss\n";

Test(model, conv_layer_with_groups_dilation_and_hw_attributes)
{
    nb_model *m = load_ok(MODEL);
    nb_graph *g = nb_model_graph(m);
    check_node(g, "c1.W", "param", "[6, 2, 3, 2]");
    check_node(g, "c1.conv", "conv2d", "[N, 6, 8, 9]");
    check_node(g, "c1", "tanh", "[N, 6, 8, 9]");
    check_node(g, "p1", "avg_pool2d", "[N, 6, 4, 8]");
    check_node(g, "m1", "max_pool2d", "[N, 6, 5, 8]");
    check_node(g, "gp", "global_avg_pool2d", "[N, 6, 1, 1]");
    const nb_node *c = nb_graph_find(g, "c1.conv");
    cr_expect_eq(nb_node_attr(c, "groups")->i[0], 2);
    cr_expect_eq(nb_node_attr(c, "dilation")->n, 2);
    cr_expect_eq(nb_node_attr(c, "dilation")->i[1], 2);
    /* every param and x: the model's gradients against central differences */
    nb_node *wrt[3] = {nb_graph_find(g, "c1.W"), nb_graph_find(g, "c1.b"), nb_graph_find(g, "x")};
    size_t nx = 2 * 4 * 8 * 9;
    double *xv = malloc(nx * 8), tv[12];
    fill_random(xv, nx, 5), fill_random(tv, 12, 6);
    nb_feed feeds[2] = {{wrt[2], xv}, {nb_graph_find(g, "t"), tv}};
    nb_gc_result r[3];
    nb_status st = nb_gradcheck(g, nb_model_loss(m), wrt, 3, (nb_bind[]){{"N", 2}}, 1, feeds, 2, NULL, r);
    cr_assert_eq(st, NB_OK, "%s", nb_graph_error(g));
    for (int i = 0; i < 3; i++) cr_expect(r[i].pass, "%s: max abs err %g", r[i].name, r[i].max_abs);
    free(xv);
    nb_model_free(m);
}

Test(model, conv_layer_hw_and_group_errors)
{
    EXPECT_ERROR("nabla: 1\ninputs: {x: [N, 3, 8, 8]}\n"
                 "nodes:\n  - {name: c1, layer: conv2d, in: [x], filters: 4, size: 3, groups: 2}\n",
                 "m.yaml:4:5: node 'c1': layer conv2d with groups 2 needs channels and filters "
                 "divisible by 2; x is [N, 3, 8, 8], filters 4");
    EXPECT_ERROR("nabla: 1\ninputs: {x: [N, 3, 8, 8]}\n"
                 "nodes:\n  - {name: c1, layer: conv2d, in: [x], filters: 4, size: [3, 2, 1]}\n",
                 "m.yaml:4:58: 'size' must be one integer or [h, w]; got 3 entries");
    EXPECT_ERROR("nabla: 1\ninputs: {x: [N, 3, 8, 8]}\n"
                 "nodes:\n  - {name: c1, layer: conv2d, in: [x], filters: 4, size: 3, dilation: [1, 0]}\n",
                 "m.yaml:4:75: 'dilation' must be >= 1; got 0");
    EXPECT_ERROR("nabla: 1\ninputs: {x: [N, 3, 8, 8]}\n"
                 "nodes:\n  - {name: c1, layer: conv2d, in: [x], filters: 4, size: [3, 4000000000]}\n",
                 "m.yaml:4:62: 'size' must be <= 1073741824; got 4000000000");
}

/* he's std is sqrt(2 / fan_in) with fan_in = (C/groups)·KH·KW: 8 channels in
 * 4 groups, 3x3 kernels: fan_in 18, std 1/3 (a [64, 2, 3, 3] filter, 1152 values). */
Test(model, grouped_conv_filter_fan_in)
{
    nb_model *m = load_ok("nabla: 1\ninputs: {x: [N, 8, 6, 6]}\n"
                          "nodes:\n  - {name: c1, layer: conv2d, in: [x], filters: 64, size: 3, groups: 4}\n");
    nb_tensor *w = nb_param_value(nb_graph_find(nb_model_graph(m), "c1.W"));
    cr_assert_eq(w->shape[1], 2);
    size_t n = shape_numel(w->rank, w->shape);
    double s2 = 0;
    for (size_t i = 0; i < n; i++) s2 += get_elem(w->dtype, w->data, i) * get_elem(w->dtype, w->data, i);
    double sd = sqrt(s2 / (double)n);
    cr_expect(fabs(sd - 1.0 / 3) < 0.03, "std %g, want 1/3 (fan_in 18; 72 without groups would give %g)",
              sd, sqrt(2.0 / 72));
    nb_model_free(m);
}

/* Second order through a vector matmul: L = sum((a · B)^2) with a [3] and B
 * [2, 3, 4] batched; G = dL/da, H = sum(S * G); dH/da and dH/dB against
 * central differences of H. */
Test(matmul_vec, second_order)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "a", NB_F64, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *B = nb_input(g, "B", NB_F64, 3, (nb_dim[]){NB_DIM(2), NB_DIM(3), NB_DIM(4)});
    nb_node *S = nb_input(g, "S", NB_F64, 1, (nb_dim[]){NB_DIM(3)});
    nb_node *y = nb_matmul(g, a, B), *G;
    nb_node *L = nb_sum(g, nb_mul(g, y, y), NULL, 0, false);
    cr_assert_eq(nb_grad(g, L, &a, 1, &G), NB_OK, "%s", nb_graph_error(g));
    nb_node *H = nb_sum(g, nb_mul(g, S, G), NULL, 0, false);
    double av[3], Bv[24], Sv[3];
    fill_random(av, 3, 7), fill_random(Bv, 24, 8), fill_random(Sv, 3, 9);
    nb_feed feeds[3] = {{a, av}, {B, Bv}, {S, Sv}};
    nb_gc_result r[2];
    cr_assert_eq(nb_gradcheck(g, H, (nb_node *[]){a, B}, 2, NULL, 0, feeds, 3, NULL, r), NB_OK, "%s",
                 nb_graph_error(g));
    for (int i = 0; i < 2; i++) cr_expect(r[i].pass, "%s: max abs err %g", r[i].name, r[i].max_abs);
    nb_graph_free(g);
}

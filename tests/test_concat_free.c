/* concat's gradient along an axis whose size is free (a symbol bound when the
 * plan runs): through the C API on every axis, against a closed form and
 * central differences, and through the tool (`nabla run --grad` with T bound
 * by the .npy inputs, `nabla gradcheck --dim`) on a model that joins
 * [B, T, 4] tensors over T. Before, nb_grad refused such a concat. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "toolutil.h"

/* y = concat(a, concat(b, b), a) along `axis` of [N, T, 4] inputs (sizes 1, 2
 * and 1 times the axis's size), loss = sum(y^3): d a = 2 * 3a^2 (a appears
 * twice), d b = 2 * 3b^2; checked at N = 2, T = 3, and by central differences. */
static void concat_cubed(int64_t axis)
{
    nb_graph *g = nb_graph_new();
    nb_dim dims[3] = {NB_SYM("N"), NB_SYM("T"), NB_DIM(4)};
    nb_node *a = nb_input(g, "a", NB_F64, 3, dims), *b = nb_input(g, "b", NB_F64, 3, dims);
    nb_node *bb = nb_concat(g, (nb_node *[]){b, b}, 2, axis);
    nb_node *y = nb_concat(g, (nb_node *[]){a, bb, a}, 3, axis);
    nb_node *loss = nb_sum(g, nb_pow(g, y, 3), NULL, 0, false), *d[2];
    cr_assert_not_null(loss, "%s", nb_graph_error(g));
    cr_assert_eq(nb_grad(g, loss, (nb_node *[]){a, b}, 2, d), NB_OK, "axis %lld: %s",
                 (long long)axis, nb_graph_error(g));
    nb_bind binds[2] = {{"N", 2}, {"T", 3}};
    nb_plan *p = plan_new_ok(g, d, 2);
    plan_bind_ok(p, binds, 2);
    double av[24], bv[24], want_a[24], want_b[24], got[24];
    for (int i = 0; i < 24; i++) {
        av[i] = sin(0.7 * i + 0.1), bv[i] = cos(1.3 * i);
        want_a[i] = 6 * av[i] * av[i], want_b[i] = 6 * bv[i] * bv[i];
    }
    plan_feed(p, a, av);
    plan_feed(p, b, bv);
    plan_run_ok(p);
    cr_assert_eq(plan_read(p, d[0], got), 24);
    expect_close(got, want_a, 24, 1e-12, 1e-12, "d a");
    cr_assert_eq(plan_read(p, d[1], got), 24);
    expect_close(got, want_b, 24, 1e-12, 1e-12, "d b");
    nb_plan_free(p);
    nb_gc_opts o = NB_GC_DEFAULTS;
    o.max_elems = 0;
    nb_gc_result r[2];
    nb_status st = nb_gradcheck(g, loss, (nb_node *[]){a, b}, 2, binds, 2,
                                (nb_feed[]){{a, av}, {b, bv}}, 2, &o, r);
    cr_assert_eq(st, NB_OK, "%s", nb_graph_error(g));
    for (int k = 0; k < 2; k++)
        cr_expect(r[k].pass, "axis %lld, %s: max abs err %g", (long long)axis, r[k].name, r[k].max_abs);
    nb_graph_free(g);
}

Test(concat_free, every_axis)
{
    for (int64_t axis = -3; axis < 3; axis++) concat_cubed(axis);
}

/* The parts stay right when the free size is bound again to another value. */
Test(concat_free, rebinding)
{
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "a", NB_F64, 1, (nb_dim[]){NB_SYM("T")});
    nb_node *b = nb_input(g, "b", NB_F64, 1, (nb_dim[]){NB_SYM("T")});
    nb_node *c = nb_input(g, "c", NB_F64, 1, (nb_dim[]){NB_SYM("T")});
    nb_node *y = nb_concat(g, (nb_node *[]){a, b}, 2, 0);  /* [2T] */
    nb_node *w = nb_concat(g, (nb_node *[]){c, c}, 2, 0);
    nb_node *loss = nb_sum(g, nb_mul(g, y, w), NULL, 0, false), *d[2];
    cr_assert_eq(nb_grad(g, loss, (nb_node *[]){a, b}, 2, d), NB_OK, "%s", nb_graph_error(g));
    nb_plan *p = plan_new_ok(g, d, 2);
    for (int64_t t = 1; t <= 4; t++) {
        plan_bind_ok(p, (nb_bind[]){{"T", t}}, 1);
        double cv[4] = {1, 2, 3, 4}, got[4];
        plan_feed(p, c, cv);  /* the gradients do not depend on a and b */
        plan_run_ok(p);
        /* d loss / d y = concat(c, c): both parts are c */
        cr_assert_eq(plan_read(p, d[0], got), (size_t)t);
        expect_close(got, cv, (size_t)t, 0, 0, "d a");
        cr_assert_eq(plan_read(p, d[1], got), (size_t)t);
        expect_close(got, cv, (size_t)t, 0, 0, "d b");
    }
    nb_plan_free(p);
    nb_graph_free(g);
}

/* ---- through the tool ---- */

TestSuite(concat_free_tool, .init = tmp_make, .fini = tmp_remove, .timeout = 120);

static const char *model =
    "nabla: 1\n"
    "dtype: f64\n"
    "inputs:\n"
    "  a: [B, T, 4]\n"
    "  b: [B, T, 4]\n"
    "params:\n"
    "  W: {shape: [4, 3], init: xavier}\n"
    "nodes:\n"
    "  - {name: c,    op: concat, in: [a, b, a], axis: 1}   # [B, 3T, 4]\n"
    "  - {name: h,    op: matmul, in: [c, W]}\n"
    "  - {name: s,    op: tanh, in: [h]}\n"
    "  - {name: loss, op: sum, in: [s]}\n"
    "loss: loss\n";

/* d loss / d c = (1 - tanh(cW)^2) W^T; a gets parts 0 and 2 of it, b part 1 */
Test(concat_free_tool, run_grad_binds_T_from_the_inputs)
{
    enum { B = 2, T = 3 };
    write_text(tmp_path("cat.yaml"), model);
    double av[B * T * 4], bv[B * T * 4];
    for (int i = 0; i < B * T * 4; i++) av[i] = sin(0.3 * i), bv[i] = cos(0.5 * i + 1);
    int64_t shape[3] = {B, T, 4};
    write_npy_f64(tmp_path("a.npy"), 3, shape, av);
    write_npy_f64(tmp_path("b.npy"), 3, shape, bv);
    char ia[600], ib[600];
    snprintf(ia, sizeof ia, "a=%s", tmp_path("a.npy"));
    snprintf(ib, sizeof ib, "b=%s", tmp_path("b.npy"));
    tool_result r = TOOL("run", tmp_path("cat.yaml"), "--in", ia, "--in", ib, "--grad", "-o", tmp_path("out"),
                         "--save-weights", tmp_path("w.safetensors"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    nb_tensor_set set = {0};
    cr_assert_eq(nb_safetensors_read(tmp_path("w.safetensors"), &set), NB_OK, "%s", nb_last_error());
    const double *W = nb_tensor_set_find(&set, "W")->data;
    double ga[B * T * 4] = {0}, gb[B * T * 4] = {0};
    for (int n = 0; n < B; n++)
        for (int t = 0; t < 3 * T; t++) {
            const double *row = t < T ? av + (n * T + t) * 4 : t < 2 * T ? bv + (n * T + t - T) * 4
                                                                       : av + (n * T + t - 2 * T) * 4;
            double *grow = t < T ? ga + (n * T + t) * 4 : t < 2 * T ? gb + (n * T + t - T) * 4
                                                                  : ga + (n * T + t - 2 * T) * 4;
            for (int j = 0; j < 3; j++) {
                double h = 0;
                for (int k = 0; k < 4; k++) h += row[k] * W[k * 3 + j];
                double dh = 1 - tanh(h) * tanh(h);
                for (int k = 0; k < 4; k++) grow[k] += dh * W[k * 3 + j];
            }
        }
    nb_tensor got_a = read_npy_f64(tmp_path("out/grad.a.npy")), got_b = read_npy_f64(tmp_path("out/grad.b.npy"));
    cr_assert(got_a.rank == 3 && got_a.shape[1] == T && got_b.rank == 3 && got_b.shape[1] == T);
    expect_close(got_a.data, ga, B * T * 4, 1e-12, 1e-10, "grad.a");
    expect_close(got_b.data, gb, B * T * 4, 1e-12, 1e-10, "grad.b");
    nb_tensor_free(&got_a);
    nb_tensor_free(&got_b);
    nb_tensor_set_free(&set);
    tool_result_free(&r);
}

Test(concat_free_tool, gradcheck_binds_T)
{
    write_text(tmp_path("cat.yaml"), model);
    tool_result r = TOOL("gradcheck", tmp_path("cat.yaml"), "--dim", "B=2", "--dim", "T=3", "--max-elems", "0");
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
    tool_result_free(&r);
}

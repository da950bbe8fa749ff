/* Hessian-vector products of model files against PyTorch (tests/hvp/): the
 * shared part of test_hvp.c and test_hvp_maxpool.c. A case loads a model in
 * f64, gives every value the formula of tests/hvp/make_refs.py (`hashed`),
 * builds d loss / d params and then the gradient of sum_k grad_k . v_k, runs
 * one plan in the case's mode and compares the loss, the gradients and the
 * products with tests/hvp/CASE/ref (rtol 1e-6). Included once per test file. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define HVP_SAMPLE 4096
#define HVP_MAX_PARAMS 16
#define HVP_SEED 11       /* the plan's seed in training mode (make_refs.py SEED) */
#define HVP_RATE 0.25     /* bn_dropout's dropout rate */

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 0x811C9DC5u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x01000193u;
    return h;
}

/* make_refs.py `unit`: exact in both languages (integers, then / 2^31) */
static void unit(const char *name, double *out, size_t n)
{
    uint64_t k = fnv1a(name);
    for (size_t i = 0; i < n; i++) {
        uint64_t h = ((uint64_t)(i + 1) * 0x9E3779B1u + k * 0x85EBCA77u) & 0xFFFFFFFFu;
        out[i] = (double)h / 2147483648.0 - 1.0;
    }
}

static size_t node_numel(const nb_node *n)
{
    size_t c = 1;
    for (int d = 0; d < nb_node_rank(n); d++) c *= (size_t)nb_node_dim(n, d);
    return c;
}

/* make_refs.py `hashed` (trainable params) and `running` (batchnorm state) */
static void set_param(nb_node *p, bool trainable)
{
    const char *name = nb_node_name(p);
    size_t n = node_numel(p);
    double *d = nb_param_value(p)->data;
    unit(name, d, n);
    int r = nb_node_rank(p);
    bool var = strlen(name) > 12 && !strcmp(name + strlen(name) - 12, ".running_var");
    double scale = r >= 3 ? 1 / sqrt((double)(n / (size_t)nb_node_dim(p, 0)))
                 : r == 2 ? 1 / sqrt((double)nb_node_dim(p, 0)) : 0.5;
    for (size_t i = 0; i < n; i++)
        d[i] = trainable ? d[i] * scale : var ? 1 + d[i] / 2 : d[i] / 5;
}

/* A reference of tests/hvp/CASE/ref; *n its length. */
static double *load_ref(const char *dir, const char *file, size_t *n)
{
    nb_tensor t = read_npy_f64(test_file("hvp/%s/ref/%s.npy", dir, file));
    size_t c = 1;
    for (int d = 0; d < t.rank; d++) c *= (size_t)t.shape[d];
    *n = c;
    return t.data;
}

/* Compares all n values of got (or every s-th when n > HVP_SAMPLE, as
 * make_refs.py stores them) with the reference, rtol 1e-6 and an atol of
 * 1e-9 of the reference's largest magnitude. */
static void compare(const char *dir, const char *file, const double *got, size_t n)
{
    size_t nref, s = n > HVP_SAMPLE ? (n + HVP_SAMPLE - 1) / HVP_SAMPLE : 1;
    double *ref = load_ref(dir, file, &nref), big = 0;
    cr_assert_eq(nref, (n + s - 1) / s, "%s/%s: %zu values, want %zu", dir, file, nref, (n + s - 1) / s);
    double *pick = malloc(nref * sizeof *pick);
    for (size_t i = 0; i < nref; i++) pick[i] = got[i * s], big = fmax(big, fabs(ref[i]));
    char what[160];
    snprintf(what, sizeof what, "%s %s", dir, file);
    expect_close(pick, ref, nref, 1e-9 * big, 1e-6, what);
    free(pick);
    free(ref);
}

/* Nabla's dropout mask in this run is the stored one: d2 = a2 * mask / (1 - rate). */
static void check_mask(const char *dir, nb_plan *p, nb_graph *g)
{
    size_t n, na, checked = 0;
    double *mask = load_ref(dir, "../mask", &n);
    double *a = malloc(n * sizeof *a), *d = malloc(n * sizeof *d);
    na = plan_read(p, nb_graph_find(g, "a2"), a);
    cr_assert_eq(plan_read(p, nb_graph_find(g, "d2"), d), na);
    cr_assert_eq(na, n);
    for (size_t i = 0; i < n; i++) {
        if (a[i] == 0) continue;
        checked++;
        cr_expect(is_close(d[i], a[i] * mask[i] / (1 - HVP_RATE), 1e-12, 1e-12),
                  "%s: dropout element %zu: %g from %g, mask %g", dir, i, d[i], a[i], mask[i]);
    }
    cr_expect_gt(checked, n / 3, "too few live elements to check the mask");
    free(mask);
    free(a);
    free(d);
}

/* The case tests/hvp/DIR: model file `model` (a path), batch N, mode. */
static void check_hvp(const char *model, const char *dir, int64_t batch, bool training)
{
    nb_model *m = NULL;
    nb_diags diags = {0};
    nb_load_opts o = {.force_f64 = true};
    cr_assert_eq(nb_model_load_file(model, &o, &m, &diags), NB_OK, "%s", model);
    nb_diags_free(&diags);
    nb_graph *g = nb_model_graph(m);
    size_t np = nb_model_num_trainable(m);
    cr_assert_leq(np, HVP_MAX_PARAMS);
    nb_node *p[HVP_MAX_PARAMS], *gr[HVP_MAX_PARAMS], *hv[HVP_MAX_PARAMS], *v[HVP_MAX_PARAMS];
    for (size_t i = 0; i < nb_model_num_params(m); i++) set_param(nb_model_param(m, i), i < np);
    for (size_t i = 0; i < np; i++) p[i] = nb_model_param(m, i);
    nb_node *loss = nb_model_loss(m), *gv = NULL;
    cr_assert_eq(nb_grad(g, loss, p, (int)np, gr), NB_OK, "%s", nb_graph_error(g));
    for (size_t i = 0; i < np; i++) {
        char name[128];
        snprintf(name, sizeof name, "v.%s", nb_node_name(p[i]));
        int64_t shape[NB_MAX_DIMS];
        for (int d = 0; d < nb_node_rank(p[i]); d++) shape[d] = nb_node_dim(p[i], d);
        v[i] = input_shaped(g, name, NB_F64, nb_node_rank(p[i]), shape);
        nb_node *dot = nb_sum(g, nb_mul(g, gr[i], v[i]), NULL, 0, false);
        gv = gv ? nb_add(g, gv, dot) : dot;
    }
    cr_assert_eq(nb_grad(g, gv, p, (int)np, hv), NB_OK, "%s", nb_graph_error(g));
    nb_node *outs[2 * HVP_MAX_PARAMS + 3] = {loss};
    int n_out = 1;
    for (size_t i = 0; i < np; i++) outs[n_out++] = gr[i], outs[n_out++] = hv[i];
    if (training) outs[n_out++] = nb_graph_find(g, "a2"), outs[n_out++] = nb_graph_find(g, "d2");
    nb_plan *plan = plan_new_ok(g, outs, n_out);
    plan_bind_ok(plan, (nb_bind[]){{"N", batch}}, 1);
    cr_assert_eq(nb_plan_set_training(plan, training), NB_OK);
    if (training) nb_plan_set_seed(plan, HVP_SEED);
    nb_node *x = nb_graph_find(g, "x"), *t = nb_graph_find(g, "t");
    size_t nx = (size_t)batch * (size_t)nb_node_dim(x, 1) * (size_t)nb_node_dim(x, 2) * (size_t)nb_node_dim(x, 3);
    double *buf = malloc(nx * sizeof *buf), labels[64];
    unit("x", buf, nx);
    plan_feed(plan, x, buf);
    free(buf);
    for (int64_t i = 0; i < batch; i++) labels[i] = (double)((3 * i + 1) % 10);
    plan_feed(plan, t, labels);
    for (size_t i = 0; i < np; i++) {
        size_t n = node_numel(p[i]);
        char name[128];
        double *vv = malloc(n * sizeof *vv);
        snprintf(name, sizeof name, "v.%s", nb_node_name(p[i]));
        unit(name, vv, n);
        plan_feed(plan, v[i], vv);
        free(vv);
    }
    plan_run_ok(plan);
    double l;
    plan_read(plan, loss, &l);
    compare(dir, "loss", &l, 1);
    for (size_t i = 0; i < np; i++) {
        size_t n = node_numel(p[i]);
        double *got = malloc(n * sizeof *got);
        char file[128];
        cr_assert_eq(plan_read(plan, gr[i], got), n);
        snprintf(file, sizeof file, "grad.%s", nb_node_name(p[i]));
        compare(dir, file, got, n);
        cr_assert_eq(plan_read(plan, hv[i], got), n);
        snprintf(file, sizeof file, "hv.%s", nb_node_name(p[i]));
        compare(dir, file, got, n);
        free(got);
    }
    if (training) check_mask(dir, plan, g);
    nb_plan_free(plan);
    nb_model_free(m);
}

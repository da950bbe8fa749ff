/* A user-defined op: my_softplus(x) = log(1 + e^x) (nabla has a built-in
 * softplus with beta and threshold; this is the plain one, written as a user
 * would), registered at run time and then used like a built-in one (also
 * from model files). Its gradient rule
 * builds nodes: d softplus = sigmoid(x). The op is then checked against
 * central differences with nb_gradcheck_op, as the test suite does for every
 * built-in op. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <nabla/nabla.h>

/* Shape rule: one float input, same shape out (nb_shape_float_inputs also sets the dtype). */
static nb_status softplus_shape(nb_shape_ctx *c)
{
    nb_status st = nb_shape_float_inputs(c);
    c->out = c->in[0];
    return st;
}

/* Kernel, f32 and f64; stable for large |x|: max(x, 0) + log1p(e^-|x|). */
static nb_status softplus_forward(const nb_kctx *k)
{
    size_t n = nb_dims_numel(&k->out_shape);
    for (size_t i = 0; i < n; i++) {
        double x = k->dtype == NB_F64 ? ((const double *)k->in[0])[i] : ((const float *)k->in[0])[i];
        double y = fmax(x, 0) + log1p(exp(-fabs(x)));
        if (k->dtype == NB_F64) ((double *)k->out)[i] = y;
        else ((float *)k->out)[i] = (float)y;
    }
    return NB_OK;
}

/* Gradient rule: gx = gy * sigmoid(x), as nodes (so it differentiates twice).
 * `needs` has a bit per input that needs a gradient; with one input, autodiff
 * calls the rule only when x needs one, so it has nothing to skip. */
static nb_status softplus_backward(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs,
                                   nb_node **gx)
{
    (void)needs;
    gx[0] = nb_mul(g, gy, nb_sigmoid(g, nb_node_input(y, 0)));
    return NB_OK;
}

static double softplus_flops(const nb_kctx *k) { return 4.0 * (double)nb_dims_numel(&k->out_shape); }

/* Shapes gradcheck tries: a matrix, a scalar, a size-1 axis. */
static const nb_op_case softplus_cases[] = {{.in = {"3,4"}, .lo = -3, .hi = 3}, {.in = {""}}, {.in = {"2,1,3"}}};

static const nb_op_def softplus = {
    .name = "my_softplus", .min_in = 1, .max_in = 1, .shape = softplus_shape,
    .forward = softplus_forward, .backward = softplus_backward, .flops = softplus_flops,
    .cases = softplus_cases, .n_cases = 3, .doc = "log(1 + e^x)"};

int main(void)
{
    if (nb_op_register(&softplus)) {
        fprintf(stderr, "custom_op: cannot register my_softplus\n");
        return 1;
    }
    /* 1. checked like a built-in op */
    int failed = 0;
    for (int c = 0; c < softplus.n_cases; c++) {
        nb_gc_result r[6];
        int n;
        char err[256];
        if (nb_gradcheck_op(&softplus, &softplus.cases[c], NULL, r, &n)) {
            fprintf(stderr, "custom_op: %s\n", err);
            return 1;
        }
        printf("gradcheck my_softplus case %d: max abs error %.2e -> %s\n", c, r[0].max_abs,
               r[0].pass ? "pass" : "FAIL");
        failed += !r[0].pass;
    }
    /* 2. used from a model file like any op */
    const char *yaml = "nabla: 1\n"
                       "inputs: {x: [3]}\n"
                       "nodes:\n"
                       "  - {name: y, op: my_softplus, in: [x]}\n";
    nb_model *m;
    nb_diags d;
    if (nb_model_load_string(yaml, strlen(yaml), "inline.yaml", NULL, &m, &d)) {
        for (size_t i = 0; i < d.n; i++) fprintf(stderr, "%s\n", d.lines[i]);
        nb_diags_free(&d);
        return 1;
    }
    nb_node *y = nb_model_output(m, 0);
    nb_plan *p;
    if (nb_plan_new(nb_model_graph(m), &y, 1, &p)) return 1;
    nb_plan_set(p, nb_model_input(m, 0), (float[]){-20, 0, 20});
    if (nb_plan_run(p)) {
        fprintf(stderr, "custom_op: %s\n", nb_plan_error(p));
        return 1;
    }
    const float *v = nb_plan_get(p, y);
    printf("my_softplus([-20, 0, 20]) = [%g, %g, %g]\n", v[0], v[1], v[2]);
    nb_plan_free(p);
    nb_model_free(m);
    return failed ? 1 : 0;
}

/* Hessian-vector products against PyTorch (torch.autograd.grad with
 * create_graph=True, float64; tests/hvp/make_refs.py): a batchnorm + dropout
 * convnet (examples/models/bn_dropout.yaml with average pooling,
 * tests/hvp/bn_dropout_avg.yaml) in eval mode (running statistics, constants)
 * and in training mode (batch statistics, differentiated through; the dropout
 * mask of seed 11, checked to be the one the references used). The max-pooling
 * models are in test_hvp_maxpool.c. And third order through batchnorm. */
#include "hvp_case.h"

Test(hvp, bn_dropout_eval)
{
    check_hvp(test_file("hvp/bn_dropout_avg.yaml"), "bn_dropout_avg_eval", 4, false);
}

Test(hvp, bn_dropout_training)
{
    check_hvp(test_file("hvp/bn_dropout_avg.yaml"), "bn_dropout_avg_train", 4, true);
}

/* Third order: L3 = sum(W * d/dx sum(V * d/dx sum(R * tanh(batchnorm(x))))),
 * checked against central differences in both modes, for x and gamma: the
 * second-order rule of batchnorm_backward is itself differentiable
 * (batchnorm_invstd's rule included). */
static void third_order(bool training)
{
    nb_graph *g = nb_graph_new();
    const int64_t shape[3] = {3, 2, 2};
    nb_node *x = input_shaped(g, "x", NB_F64, 3, shape), *in[3];
    const char *names[3] = {"R", "V", "W"};
    for (int k = 0; k < 3; k++) in[k] = input_shaped(g, names[k], NB_F64, 3, shape);
    nb_init gi = {.kind = NB_INIT_UNIFORM, .a = 0.5, .b = 2, .seed = 1};
    nb_init bi = {.kind = NB_INIT_NORMAL, .a = 1, .seed = 2};
    nb_node *gamma = nb_param(g, "gamma", NB_F64, 1, &shape[1], gi);
    nb_node *beta = nb_param(g, "beta", NB_F64, 1, &shape[1], bi);
    nb_node *y = nb_batchnorm(g, x, gamma, beta, 1e-3, 0.1), *d;
    double *rm = nb_param_value(nb_node_input(y, 3))->data, *rv = nb_param_value(nb_node_input(y, 4))->data;
    rm[0] = 0.1, rm[1] = -0.3, rv[0] = 0.7, rv[1] = 1.4;  /* eval mode uses them */
    nb_node *l = nb_sum(g, nb_mul(g, nb_tanh(g, y), in[0]), NULL, 0, false);
    for (int k = 1; k < 3; k++) {
        cr_assert_eq(nb_grad(g, l, &x, 1, &d), NB_OK, "%s", nb_graph_error(g));
        l = nb_sum(g, nb_mul(g, d, in[k]), NULL, 0, false);
    }
    double v[4][12];
    nb_feed feeds[4];
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < 12; i++) v[k][i] = sin(1.1 * i + 0.7 * k + 0.3);
        feeds[k] = (nb_feed){k ? in[k - 1] : x, v[k]};
    }
    nb_gc_opts o = NB_GC_DEFAULTS;
    o.training = training;
    o.max_elems = 0;
    nb_gc_result r[2];
    cr_assert_eq(nb_gradcheck(g, l, (nb_node *[]){x, gamma}, 2, NULL, 0, feeds, 4, &o, r), NB_OK,
                 "%s", nb_graph_error(g));
    for (int k = 0; k < 2; k++)
        cr_expect(r[k].pass && !r[k].kinks, "%s mode, %s: max abs err %g, %zu kinks",
                  training ? "training" : "eval", r[k].name, r[k].max_abs, r[k].kinks);
    nb_graph_free(g);
}

Test(hvp, batchnorm_third_order)
{
    third_order(true);
    third_order(false);
}

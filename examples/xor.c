/* XOR learned by a 2-layer net built through the C API, trained by plain
 * gradient steps w <- w - lr * dL/dw on the gradient nodes' values. */
#include <stdio.h>

#include <nabla/nabla.h>

#define N_PARAMS 4

static void step(nb_plan *plan, nb_node **params, nb_node **grads, double lr)
{
    for (int i = 0; i < N_PARAMS; i++) {
        nb_tensor *w = nb_param_value(params[i]);
        const double *d = nb_plan_get(plan, grads[i]);
        for (size_t j = 0; j < nb_tensor_numel(w); j++) ((double *)w->data)[j] -= lr * d[j];
    }
}

int main(void)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(2)});
    nb_node *t = nb_input(g, "t", NB_I32, 1, (nb_dim[]){NB_SYM("N")});
    nb_node *p[N_PARAMS] = {
        nb_param(g, "W1", NB_F64, 2, (int64_t[]){2, 8}, (nb_init){.kind = NB_INIT_XAVIER, .seed = 1}),
        nb_param(g, "b1", NB_F64, 1, (int64_t[]){8}, NB_INIT(NB_INIT_ZEROS)),
        nb_param(g, "W2", NB_F64, 2, (int64_t[]){8, 2}, (nb_init){.kind = NB_INIT_XAVIER, .seed = 1}),
        nb_param(g, "b2", NB_F64, 1, (int64_t[]){2}, NB_INIT(NB_INIT_ZEROS)),
    };
    nb_node *h = nb_tanh(g, nb_add(g, nb_matmul(g, x, p[0]), p[1]));
    nb_node *y = nb_add(g, nb_matmul(g, h, p[2]), p[3]);
    nb_node *loss = nb_softmax_cross_entropy(g, y, t), *grads[N_PARAMS];
    nb_plan *plan = NULL;
    if (nb_grad(g, loss, p, N_PARAMS, grads) ||
        nb_plan_new(g, (nb_node *[]){loss, y, grads[0], grads[1], grads[2], grads[3]}, 6, &plan) ||
        nb_plan_bind(plan, (nb_bind[]){{"N", 4}}, 1)) {
        fprintf(stderr, "xor: %s\n", plan ? nb_plan_error(plan) : nb_graph_error(g));
        return 1;
    }
    const double xs[8] = {0, 0, 0, 1, 1, 0, 1, 1};
    const int32_t ts[4] = {0, 1, 1, 0};
    nb_plan_set(plan, x, xs);
    nb_plan_set(plan, t, ts);
    double l = 1;
    for (int it = 0; it <= 2000 && l >= 0.01; it++) {
        if (nb_plan_run(plan)) {
            fprintf(stderr, "xor: %s\n", nb_plan_error(plan));
            return 1;
        }
        l = *(const double *)nb_plan_get(plan, loss);
        if (it % 200 == 0) printf("step %4d  loss %.5f\n", it, l);
        step(plan, p, grads, 0.5);
    }
    const double *out = nb_plan_get(plan, y);
    for (int i = 0; i < 4; i++)
        printf("%g xor %g -> class %d (logits %+.2f %+.2f)\n", xs[2 * i], xs[2 * i + 1],
               out[2 * i + 1] > out[2 * i], out[2 * i], out[2 * i + 1]);
    printf("final loss %.5f\n", l);
    nb_plan_free(plan);
    nb_graph_free(g);
    return l < 0.01 ? 0 : 1;
}

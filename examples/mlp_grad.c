/* Builds a 784-128-10 MLP through the C API, runs one batch of 8 random
 * images and prints the loss and the norm of the gradient of every param. */
#include <math.h>
#include <stdio.h>

#include <nabla/nabla.h>

int main(void)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(784)});
    nb_node *t = nb_input(g, "t", NB_I32, 1, (nb_dim[]){NB_SYM("N")});
    nb_node *W1 = nb_param(g, "W1", NB_F32, 2, (int64_t[]){784, 128}, (nb_init){.kind = NB_INIT_HE, .seed = 7});
    nb_node *b1 = nb_param(g, "b1", NB_F32, 1, (int64_t[]){128}, NB_INIT(NB_INIT_ZEROS));
    nb_node *W2 = nb_param(g, "W2", NB_F32, 2, (int64_t[]){128, 10}, (nb_init){.kind = NB_INIT_XAVIER, .seed = 7});
    nb_node *b2 = nb_param(g, "b2", NB_F32, 1, (int64_t[]){10}, NB_INIT(NB_INIT_ZEROS));
    nb_node *h = nb_relu(g, nb_add(g, nb_matmul(g, x, W1), b1));
    nb_node *loss = nb_softmax_cross_entropy(g, nb_add(g, nb_matmul(g, h, W2), b2), t);
    nb_node *params[4] = {W1, b1, W2, b2}, *grads[4];
    nb_plan *plan = NULL;
    if (nb_grad(g, loss, params, 4, grads) ||
        nb_plan_new(g, (nb_node *[]){loss, grads[0], grads[1], grads[2], grads[3]}, 5, &plan) ||
        nb_plan_bind(plan, (nb_bind[]){{"N", 8}}, 1)) {
        fprintf(stderr, "mlp_grad: %s\n", plan ? nb_plan_error(plan) : nb_graph_error(g));
        return 1;
    }
    float *images = nb_plan_input_buffer(plan, x);
    int32_t *labels = nb_plan_input_buffer(plan, t);
    nb_rng rng;
    nb_rng_seed(&rng, 42);
    for (int i = 0; i < 8 * 784; i++) images[i] = (float)nb_rng_uniform(&rng);
    for (int i = 0; i < 8; i++) labels[i] = i % 10;
    if (nb_plan_run(plan)) {
        fprintf(stderr, "mlp_grad: %s\n", nb_plan_error(plan));
        return 1;
    }
    printf("loss of one batch of 8: %.6f (ln 10 = %.6f)\n", *(const float *)nb_plan_get(plan, loss), log(10.0));
    for (int i = 0; i < 4; i++) {
        const float *d = nb_plan_get(plan, grads[i]);
        size_t n = nb_tensor_numel(nb_param_value(params[i]));
        double s = 0;
        for (size_t j = 0; j < n; j++) s += (double)d[j] * d[j];
        printf("|%s| = %-10.6g (%zu elements)\n", nb_node_name(grads[i]), sqrt(s), n);
    }
    printf("arena: %zu bytes (inputs included) for %zu bytes of intermediates\n", nb_plan_arena_bytes(plan),
           nb_plan_intermediate_bytes(plan));
    nb_plan_free(plan);
    nb_graph_free(g);
    return 0;
}

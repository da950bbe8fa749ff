/* XOR learned by a 2-layer net built through the C API. nb_optimize adds the
 * gradient and update nodes to the graph, so one run of the plan is one
 * training step: forward, backward and the optimizer's update. */
#include <stdio.h>

#include <nabla/nabla.h>

int main(void)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(2)});
    nb_node *t = nb_input(g, "t", NB_I32, 1, (nb_dim[]){NB_SYM("N")});
    nb_node *p[4] = {
        nb_param(g, "W1", NB_F64, 2, (int64_t[]){2, 8}, (nb_init){.kind = NB_INIT_XAVIER, .seed = 1}),
        nb_param(g, "b1", NB_F64, 1, (int64_t[]){8}, NB_INIT(NB_INIT_ZEROS)),
        nb_param(g, "W2", NB_F64, 2, (int64_t[]){8, 2}, (nb_init){.kind = NB_INIT_XAVIER, .seed = 1}),
        nb_param(g, "b2", NB_F64, 1, (int64_t[]){2}, NB_INIT(NB_INIT_ZEROS)),
    };
    nb_node *h = nb_tanh(g, nb_add(g, nb_matmul(g, x, p[0]), p[1]));
    nb_node *y = nb_add(g, nb_matmul(g, h, p[2]), p[3]);
    nb_node *loss = nb_softmax_cross_entropy(g, y, t);
    nb_optim_cfg adam = nb_optim_defaults(NB_ADAM);
    adam.lr = 0.05;
    nb_node *step = nb_optimize(g, loss, p, 4, &adam, NULL);  /* NULL if anything failed */
    nb_plan *plan = NULL;
    if (!step || nb_plan_new(g, (nb_node *[]){loss, step, y}, 3, &plan) ||
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
        if (nb_plan_run(plan)) {  /* loss and y of the params before this step's update */
            fprintf(stderr, "xor: %s\n", nb_plan_error(plan));
            return 1;
        }
        l = *(const double *)nb_plan_get(plan, loss);
        if (it % 50 == 0) printf("step %4d  loss %.5f\n", it, l);
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

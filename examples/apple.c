/* The shopping example of "Deep Learning from Scratch", chapter 5, as a graph:
 * 2 apples at 100 each, tax 1.1. Prints the price and the gradient of the
 * price with respect to every input, computed by gradient nodes. */
#include <stdio.h>

#include <nabla/nabla.h>

int main(void)
{
    nb_graph *g = nb_graph_new();
    nb_node *apple = nb_input(g, "apple", NB_F64, 0, NULL);
    nb_node *count = nb_input(g, "apple_count", NB_F64, 0, NULL);
    nb_node *tax = nb_input(g, "tax", NB_F64, 0, NULL);
    nb_node *price = nb_mul(g, nb_mul(g, apple, count), tax);
    nb_node *wrt[3] = {apple, count, tax}, *grad[3];
    nb_plan *plan = NULL;
    if (nb_grad(g, price, wrt, 3, grad) ||
        nb_plan_new(g, (nb_node *[]){price, grad[0], grad[1], grad[2]}, 4, &plan)) {
        fprintf(stderr, "apple: %s\n", nb_graph_error(g));
        nb_graph_free(g);
        return 1;
    }
    const double values[3] = {100, 2, 1.1};
    for (int i = 0; i < 3; i++) nb_plan_set(plan, wrt[i], &values[i]);
    if (nb_plan_run(plan)) {
        fprintf(stderr, "apple: %s\n", nb_plan_error(plan));
        return 1;
    }
    printf("price = apple * apple_count * tax = %g\n", *(const double *)nb_plan_get(plan, price));
    for (int i = 0; i < 3; i++)
        printf("d price / d %-12s = %g\n", nb_node_name(wrt[i]),
               *(const double *)nb_plan_get(plan, grad[i]));
    nb_plan_free(plan);
    nb_graph_free(g);
    return 0;
}

/* nabla — training: optimizers as nodes of the graph.
 *
 * nb_optimize adds to a graph everything one training step does after the
 * forward pass: the gradient nodes of the loss (nb_grad), nodes that gather
 * every gradient into one flat buffer, a hook point where a program may act on
 * that buffer (average it across processes, clip it), and one update node per
 * param that changes the param in place with its optimizer state. It returns
 * a step node: a plan of the loss and the step node runs forward, backward and
 * update in one go, allocating nothing.
 *
 *   nb_node *step = nb_optimize(g, loss, params, n, &cfg, NULL);
 *   nb_plan_new(g, (nb_node *[]){loss, step}, 2, &p);
 *   for each batch: nb_plan_set(p, x, ...); nb_plan_set(p, t, ...); nb_plan_run(p);
 *
 * Names, as in a checkpoint (model-format.md, "Reserved names"): the update
 * of param W is the node opt.W, its state the params opt.W.m and opt.W.v
 * (adam), opt.W.v (momentum) or opt.W.s (adagrad); the step count is the f64
 * scalar param opt.step; the flat gradient buffer is opt.grads (scratch, left
 * out of weights files). State params are not trainable (nb_param_trainable)
 * and are saved and loaded with the weights, so a checkpoint resumes training
 * exactly. Build every other node before nb_optimize: the plan runs nodes in
 * the order they were made, and the updates must come after every reader of
 * the params. */
#ifndef NABLA_TRAIN_H
#define NABLA_TRAIN_H

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { NB_SGD, NB_MOMENTUM, NB_ADAGRAD, NB_ADAM } nb_optimizer;

/* PyTorch's definitions, with g the gradient plus weight_decay * w and t the
 * step counted from 1:
 *   sgd       w -= lr * g
 *   momentum  v = momentum * v + g;  w -= lr * v
 *   adagrad   s += g^2;  w -= lr * g / (sqrt(s) + eps)
 *   adam      m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
 *             w -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps) */
typedef struct nb_optim_cfg {
    nb_optimizer type;
    double lr;
    double momentum;      /* momentum only */
    double beta1, beta2;  /* adam only */
    double eps;           /* adam and adagrad */
    double weight_decay;
} nb_optim_cfg;

/* The defaults of model-format.md: lr 0.001 for adam and 0.01 for the others,
 * momentum 0.9, beta1 0.9, beta2 0.999, eps 1e-8 (adam) or 1e-10 (adagrad),
 * weight_decay 0. */
NB_API nb_optim_cfg nb_optim_defaults(nb_optimizer type);
/* "sgd", "momentum", "adagrad", "adam" and back; NB_ERR_ARG for another name. */
NB_API const char *nb_optimizer_name(nb_optimizer type);
NB_API nb_status nb_optimizer_parse(const char *name, nb_optimizer *out);

/* Adds the gradient, gathering and update nodes for params[0..n) (trainable
 * params of one float dtype) and returns the step node, or NULL with the
 * message on g. grads, when not NULL, receives each param's gradient node. */
NB_API nb_node *nb_optimize(nb_graph *g, nb_node *loss, nb_node *const *params, int n,
                            const nb_optim_cfg *cfg, nb_node **grads);

/* Called once per step when every gradient is in the flat buffer and before
 * any param changes: grads holds n values of dtype, param after param in the
 * order given to nb_optimize, each flattened. It may change them in place. A
 * status other than NB_OK fails the run (and no param changes). */
typedef nb_status (*nb_grad_hook)(void *user, void *grads, size_t n, nb_dtype dtype);
NB_API nb_status nb_optimize_hook(nb_graph *g, nb_node *step, nb_grad_hook fn, void *user);
/* Sets the learning rate of every update of the step from the next run on. */
NB_API nb_status nb_optimize_set_lr(nb_graph *g, nb_node *step, double lr);

#ifdef __cplusplus
}
#endif
#endif

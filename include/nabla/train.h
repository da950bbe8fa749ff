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

#include "data.h"
#include "graph.h"
#include "plan.h"

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

/* ---- the training loop ----------------------------------------------------
 *
 * A trainer runs epochs of a graph's training step over a dataset (data.h):
 * shuffled batches (nb_shuffle(seed, epoch)), the last one smaller when the
 * batch does not divide the samples, fed from dataset fields into inputs,
 * dropout masks drawn from (seed, step); it reports the mean loss and, given
 * class scores and labels, the accuracy; it saves and resumes checkpoints so
 * that a run stopped and resumed gives the same bits as one run straight
 * through (same thread count). Everything `nabla train` and `nabla eval` do
 * goes through it.
 *
 *   nb_trainer *t;
 *   nb_trainer_new(g, &cfg, &t);                         message on g
 *   nb_trainer_feed(t, x, "images", 1.0 / 255);          input <- dataset field
 *   nb_trainer_feed(t, labels, "labels", 1);
 *   for (e = 0; e < epochs; e++) nb_trainer_epoch(t, train, NULL, NULL, &m);
 *   nb_trainer_evaluate(t, test, &m, NULL);
 *
 * Calls on a trainer leave their message on it (nb_trainer_error). */
typedef struct nb_trainer nb_trainer;

/* How the learning rate changes during training (PyTorch's schedulers):
 *   NB_LR_CONSTANT  the optimizer's lr throughout
 *   NB_LR_COSINE    per step, lr_s = min_lr + (lr - min_lr)(1 + cos(pi s / S)) / 2,
 *                   s counting steps from 0 and S = epochs x batches per epoch
 *                   (CosineAnnealingLR with T_max = S, eta_min = min_lr)
 *   NB_LR_STEP      per epoch, lr x gamma^floor(epoch / every) (StepLR)
 * The rate is a function of where training stands, so a resumed run follows
 * the same rates. */
typedef enum { NB_LR_CONSTANT, NB_LR_COSINE, NB_LR_STEP } nb_lr_kind;
typedef struct nb_lr_schedule {
    nb_lr_kind kind;
    int64_t epochs;    /* cosine: epochs the rate takes to fall to min_lr */
    double min_lr;     /* cosine: the floor (0) */
    int64_t every;     /* step: epochs between decays */
    double gamma;      /* step: the factor of each decay */
} nb_lr_schedule;

/* The rate of the step after `batch` batches of epoch `epoch` (both from 0),
 * of `batches` per epoch, for a base rate lr. */
NB_API double nb_lr_at(const nb_lr_schedule *s, double lr, int64_t epoch, size_t batch,
                       size_t batches);

typedef struct nb_trainer_cfg {
    nb_node *loss;              /* the scalar to minimise */
    nb_node *const *params;     /* the params to train; NULL: every trainable param */
    int n_params;
    nb_optim_cfg optim;
    int64_t batch;              /* samples per step */
    bool shuffle;               /* a new permutation every epoch; false: file order */
    uint64_t seed;              /* shuffling and dropout */
    nb_node *scores;            /* class scores [N, K] for the accuracy, or NULL */
    nb_node *labels;            /* the input of the class ids (i32 [N]), or NULL */
    bool evaluate_only;         /* no optimizer: nb_trainer_evaluate only (nabla eval) */
    nb_lr_schedule schedule;    /* zeroed: NB_LR_CONSTANT */
    bool detect_anomaly;        /* check every value of every step (nb_plan_run_checked):
                                   the first NaN or infinity stops training, named */
} nb_trainer_cfg;

/* Builds the training step (nb_optimize) on g and two plans: training
 * (loss, step, scores) and evaluation (loss, scores, eval mode). Make the
 * trainer once the graph is complete. The free dimension of the batch is axis
 * 0 of the fed inputs. */
NB_API nb_status nb_trainer_new(nb_graph *g, const nb_trainer_cfg *cfg, nb_trainer **out);
NB_API void nb_trainer_free(nb_trainer *t);
NB_API nb_status nb_trainer_status(const nb_trainer *t);
NB_API const char *nb_trainer_error(const nb_trainer *t);
/* The step node (for nb_optimize_set_lr). */
NB_API nb_node *nb_trainer_step(const nb_trainer *t);
/* Its training plan (training true) or evaluation plan, e.g. to profile
 * (nb_plan_set_profile); owned by the trainer. Bind, feed and run it only
 * through the trainer. */
NB_API nb_plan *nb_trainer_plan(const nb_trainer *t, bool training);
/* The graph it trains. */
NB_API nb_graph *nb_trainer_graph(const nb_trainer *t);
/* The gradient hook of the trainer's step (see nb_grad_hook): the trainer
 * checks the gradients are finite first, then calls fn. */
NB_API nb_status nb_trainer_hook(nb_trainer *t, nb_grad_hook fn, void *user);

/* Input `input` takes the samples of dataset field `field` (by name),
 * converted to its dtype and multiplied by scale when float; one sample of
 * the field must hold as many values as one sample of the input ([1, 28, 28]
 * images feed [N, 784] or [N, 1, 28, 28]). */
NB_API nb_status nb_trainer_feed(nb_trainer *t, nb_node *input, const char *field, double scale);

typedef struct nb_metrics {
    double loss;          /* mean over the samples (NAN when the loss was not computed) */
    double accuracy;      /* fraction of samples whose highest score is their label (NAN: none) */
    size_t samples, correct;
    double seconds;       /* wall time */
} nb_metrics;

/* Where an epoch is, for progress reports. Returning false from the callback
 * stops the epoch after this step (SIGINT): the epoch can be resumed later
 * from the next batch (nb_trainer_save, then nb_trainer_resume). */
typedef struct nb_progress {
    int64_t epoch;        /* counted from 0 */
    size_t batch, batches;/* batches done in this epoch, of how many */
    nb_metrics so_far;    /* this epoch's samples so far */
} nb_progress;
typedef bool (*nb_progress_fn)(void *user, const nb_progress *p);

/* Runs the rest of the current epoch over `data` (all of it, unless a
 * previous epoch was stopped or resumed mid-way), calling progress (may be
 * NULL) after every step. *out (may be NULL) gets the epoch's metrics;
 * nb_trainer_epochs() counts the epochs completed. A loss or gradient that
 * is not finite stops training with NB_ERR_RUNTIME and a message naming the
 * step and the first node whose value went non-finite; the params are left
 * as they were before that step. */
NB_API nb_status nb_trainer_epoch(nb_trainer *t, nb_dataset *data, nb_progress_fn progress,
                                  void *user, nb_metrics *out);
NB_API int64_t nb_trainer_epochs(const nb_trainer *t);
/* Is an epoch under way (stopped after some batch)? */
NB_API bool nb_trainer_mid_epoch(const nb_trainer *t);

/* Loss and accuracy over every sample of data, in eval mode, params
 * unchanged. confusion, when not NULL, receives a classes x classes matrix
 * of counts (row: label, column: prediction); classes is the scores' K. */
NB_API nb_status nb_trainer_evaluate(nb_trainer *t, nb_dataset *data, nb_metrics *out,
                                     int64_t *confusion);
/* Number of classes (the scores' last dimension), or 0 without scores. */
NB_API int64_t nb_trainer_classes(const nb_trainer *t);

/* Writes every param with the optimizer state and where training stands
 * (epoch, batch, step, seed, and meta's n_meta key/value pairs) as a
 * safetensors file, atomically. */
NB_API nb_status nb_trainer_save(nb_trainer *t, const char *path, const char *const *meta,
                                 size_t n_meta);
/* Loads such a checkpoint: params, optimizer state and position, so that
 * the next nb_trainer_epoch continues where the saved run stopped. */
NB_API nb_status nb_trainer_resume(nb_trainer *t, const char *path);

/* ---- data parallelism -------------------------------------------------------
 *
 * Several processes (workers) can train one model together, each with its
 * own trainer over the same graph, dataset and configuration: the epoch's
 * permutation is the same on every worker (same seed); each global batch of
 * cfg.batch samples is cut into `ranks` contiguous parts and worker `rank`
 * computes the step on its part. Its gradient hook (nb_trainer_hook) must
 * then, in every step:
 *  - replace the gradients by their average over the workers, weighting each
 *    worker's by its share of the step's samples (nb_trainer_step_samples: a
 *    last batch that does not split evenly gives the first workers one sample
 *    more, and a worker with none weighs 0);
 *  - replace the values of nb_trainer_step_sums (the loss and accuracy sums
 *    of the step) by their sums over the workers, so that every worker's
 *    metrics, progress and checkpoint are the global ones.
 * nabla/mpi.h does both over MPI. sum adds n values across the workers in
 * place; the trainer calls it on every worker after an evaluation (which
 * each worker runs on its share of the samples). cfg.batch must be a
 * multiple of ranks (NB_ERR_ARG otherwise). Dropout masks differ between
 * workers. A progress callback must return the same on every worker. */
typedef nb_status (*nb_sum_fn)(void *user, double *values, size_t n);
NB_API nb_status nb_trainer_shard(nb_trainer *t, int rank, int ranks, nb_sum_fn sum, void *user);
/* This worker's samples in the step under way and all the workers' together
 * (for the gradient hook; both equal the batch's when unsharded). */
NB_API void nb_trainer_step_samples(const nb_trainer *t, size_t *mine, size_t *all);
/* The *n values of the step under way that the hook of a sharded trainer
 * sums across the workers, in place. */
NB_API double *nb_trainer_step_sums(nb_trainer *t, size_t *n);

#ifdef __cplusplus
}
#endif
#endif

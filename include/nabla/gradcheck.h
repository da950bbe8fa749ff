/* nabla — numerical gradient checks: analytic gradients (the gradient nodes)
 * against central differences, in f64. */
#ifndef NABLA_GRADCHECK_H
#define NABLA_GRADCHECK_H

#include "plan.h"
#include "op.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_gc_opts {
    double eps;        /* step of the central difference (1e-6) */
    double atol, rtol; /* pass when |analytic - numeric| <= atol + rtol*|numeric| (1e-5, 1e-3) */
    size_t max_elems;  /* elements checked per tensor, seeded sample; 0 = all (1000) */
    uint64_t seed;     /* the sample, random inputs of nb_gradcheck_op, and dropout masks */
    bool training;     /* run in training mode (false: eval). Every run then starts
                          with nb_plan_set_seed(seed), so each perturbed run sees the
                          same dropout masks and the loss is a smooth function. */
} nb_gc_opts;
#define NB_GC_DEFAULTS ((nb_gc_opts){1e-6, 1e-5, 1e-3, 1000, 0, false})

typedef struct nb_gc_result {
    const nb_node *node;  /* the tensor checked (invalid after nb_gradcheck_op) */
    char name[128];       /* its name */
    size_t numel, checked;
    size_t kinks;         /* elements whose difference straddles a kink (not failures) */
    size_t failures;
    double max_abs, max_rel;
    size_t worst;         /* flat index of the worst element */
    bool pass;
} nb_gc_result;

/* A value for an input node (f64 or i32 data of its bound shape). */
typedef struct nb_feed {
    const nb_node *node;
    const void *data;
} nb_feed;

/* Checks d loss / d wrt[i] for every i on an f64 graph, with the inputs fed
 * from `feeds` and free dimensions bound by `binds`. Fills results[i]; the
 * status is NB_OK when the check could run (look at .pass), otherwise an
 * error with the message on g. Adds gradient nodes to g. */
NB_API nb_status nb_gradcheck(nb_graph *g, nb_node *loss, nb_node *const *wrt, int n_wrt,
                       const nb_bind *binds, int n_binds, const nb_feed *feeds, int n_feeds,
                       const nb_gc_opts *opts, nb_gc_result *results);

/* Checks one case of a registered op: random f64 inputs of the case's shapes,
 * loss = sum(op(inputs) * R) with a fixed random R. results has room for 6;
 * *n_results is set to the number of float inputs checked. A failure's
 * message is the thread's (nb_last_error). */
NB_API nb_status nb_gradcheck_op(const nb_op_def *op, const nb_op_case *c, const nb_gc_opts *opts,
                          nb_gc_result *results, int *n_results);

#ifdef __cplusplus
}
#endif
#endif

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
    /* nb_gradcheck_f32: an f32 gradient element passes when |g32 - g64| <=
     * f32_atol * S + f32_rtol * |g64| (1e-4, 1e-3), S the largest |g64| of
     * its tensor, or 1/100 of the largest of all tensors checked when that is
     * more (a gradient that is 0 up to rounding is noise of that size) */
    double f32_atol, f32_rtol;
} nb_gc_opts;
#define NB_GC_DEFAULTS ((nb_gc_opts){1e-6, 1e-5, 1e-3, 1000, 0, false, 1e-4, 1e-3})

typedef struct nb_gc_result {
    const nb_node *node;  /* the tensor checked (invalid after nb_gradcheck_op) */
    char name[128];       /* its name */
    size_t numel, checked;
    size_t kinks;         /* elements whose difference straddles a kink (not failures) */
    size_t failures;
    double max_abs, max_rel;
    size_t worst;         /* flat index of the worst element (the first NaN if any) */
    bool pass;            /* false too when an error or a gradient is NaN */
    /* nb_gradcheck_f32: the first node of the f32 run that held a NaN or an
     * infinity ("" when none) */
    char first_bad[128];
} nb_gc_result;

/* A value for an input node (f64 or i32 data of its bound shape). */
typedef struct nb_feed {
    const nb_node *node;
    const void *data;
} nb_feed;

/* Checks d loss / d wrt[i] for every i on an f64 graph, with the inputs fed
 * from `feeds` and free dimensions bound by `binds`. Fills results[i]; the
 * status is NB_OK when the check could run (look at .pass), otherwise an
 * error with the message on g. Adds gradient nodes to g. A loss that is not
 * finite at a perturbed point (x + eps left an op's domain) is the error
 * NB_ERR_RUNTIME naming the first node that went non-finite. */
NB_API nb_status nb_gradcheck(nb_graph *g, nb_node *loss, nb_node *const *wrt, int n_wrt,
                       const nb_bind *binds, int n_binds, const nb_feed *feeds, int n_feeds,
                       const nb_gc_opts *opts, nb_gc_result *results);

/* Checks the f32 kernels: g32 is the graph of g in f32, with the same node
 * names (the same model loaded in f32). Every param of g32 takes the value of
 * g's param of its name (rounded), inputs are fed the f64 feeds (rounded; i32
 * as they are), and the analytic gradients of g32's loss for the nodes named
 * like wrt[i] are compared with g's, element by element, with opts->f32_atol
 * and f32_rtol (results[i].checked counts every element). Dropout masks are
 * the same in both (same seed). Errors go on g. Adds gradient nodes to both. */
NB_API nb_status nb_gradcheck_f32(nb_graph *g, nb_node *loss, nb_node *const *wrt, int n_wrt,
                                  nb_graph *g32, const nb_bind *binds, int n_binds,
                                  const nb_feed *feeds, int n_feeds, const nb_gc_opts *opts,
                                  nb_gc_result *results);

/* Checks one case of a registered op: random f64 inputs of the case's shapes,
 * loss = sum(op(inputs) * R) with a fixed random R. results has room for 6;
 * *n_results is set to the number of float inputs checked. A failure's
 * message is the thread's (nb_last_error). */
NB_API nb_status nb_gradcheck_op(const nb_op_def *op, const nb_op_case *c, const nb_gc_opts *opts,
                          nb_gc_result *results, int *n_results);
/* The same case through nb_gradcheck_f32: the op's f32 kernels (forward and
 * those of its gradient nodes) against its f64 ones on the same inputs. */
NB_API nb_status nb_gradcheck_op_f32(const nb_op_def *op, const nb_op_case *c, const nb_gc_opts *opts,
                                     nb_gc_result *results, int *n_results);

#ifdef __cplusplus
}
#endif
#endif

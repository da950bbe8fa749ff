/* nabla — plans: running a graph.
 *
 * A plan computes a chosen set of nodes. Binding the free dimensions fixes every
 * shape, an execution order of only the nodes needed, and one arena in which
 * intermediates share buffers once their last reader has run (an elementwise
 * op may write its output over an input that dies there). Running a bound plan
 * allocates nothing.
 *
 * Memory is bounded: a plan keeps one arena, sized to the largest binding seen,
 * and the layouts of a few recent bindings. Binding sizes whose layout is
 * cached allocates nothing; other sizes build a layout (replacing the least
 * recently bound one) and grow the arena if it is too small. Binding other
 * sizes invalidates the data of inputs and outputs (every binding lays out into
 * the same arena): after nb_plan_bind, feed the inputs again (nb_plan_set or
 * nb_plan_input_buffer, whose pointers are valid until the next bind). */
#ifndef NABLA_PLAN_H
#define NABLA_PLAN_H

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_plan nb_plan;

/* A plan for `outputs` of g. On failure *out is NULL and the message is on g. */
NB_API nb_status nb_plan_new(nb_graph *g, nb_node *const *outputs, int n_outputs, nb_plan **out);
NB_API void nb_plan_free(nb_plan *p);
/* Status and message of the plan's last call that can fail (bind, set,
 * input_buffer, run): NB_OK and "" after a success (core.h, "Errors"). */
NB_API nb_status nb_plan_status(const nb_plan *p);
NB_API const char *nb_plan_error(const nb_plan *p);

/* Binds every free dimension (graphs without symbols need none). Binding sizes
 * other than the current ones drops the inputs' data: feed them again. */
NB_API nb_status nb_plan_bind(nb_plan *p, const nb_bind *binds, int n_binds);
/* Copies an input's data (its bound shape's element count) into the plan, where
 * it stays for the runs of this binding. */
NB_API nb_status nb_plan_set(nb_plan *p, const nb_node *input, const void *data);
/* Where an input's data lives in the plan, to be filled in place (NULL if not an
 * input), until the next bind. */
NB_API void *nb_plan_input_buffer(nb_plan *p, const nb_node *input);
/* Training or eval mode (plans start in eval mode): dropout drops and
 * batchnorm normalises with batch statistics, updating its running statistics,
 * only while training. NB_ERR_ARG for a NULL plan. */
NB_API nb_status nb_plan_set_training(nb_plan *p, bool training);
NB_API bool nb_plan_training(const nb_plan *p);
/* Threads the plan's kernels split their large loops over (convolutions by
 * sample, pooling by plane, elementwise ops by rows, matrix products by rows
 * or columns): 1 to 256, 1 when made. n - 1 worker threads are started here
 * and kept, asleep between runs, until the plan is freed or set to 1 (nabla
 * starts no other thread). Changing it drops the plan's layouts: bind again
 * before setting inputs. Results do not depend on the run; they depend on
 * the count only where parts are summed (a convolution's filter gradient
 * adds its per-thread partial sums in order) or a product is computed in
 * blocks (the BLAS may round a block apart from the whole). nabla calls the
 * BLAS from each thread on its own block, so set OpenBLAS to one thread
 * (openblas_set_num_threads(1)), as `nabla --threads` does: two pools of
 * threads on the same cores take turns instead of working together.
 * NB_ERR_ARG out of range, NB_ERR_RUNTIME when a thread cannot be started
 * (the plan keeps its threads). */
NB_API nb_status nb_plan_set_threads(nb_plan *p, int n);
NB_API int nb_plan_threads(const nb_plan *p);
/* Seeds the random choices of kernels (dropout masks) and resets the step
 * counter to 0. Masks are a pure function of (seed, step, node, element):
 * setting the same seed before two runs gives the same masks. The step counts
 * training-mode runs since the seed was set (the seed is 0 until set). */
NB_API void nb_plan_set_seed(nb_plan *p, uint64_t seed);
NB_API uint64_t nb_plan_step(const nb_plan *p);
/* Runs the step: every requested output is computed. In training mode the
 * step counter then advances by one. */
NB_API nb_status nb_plan_run(nb_plan *p);
/* Runs the step like nb_plan_run, looking at every float value as it is made:
 * *first_bad is set to the first input, param or computed node (in execution
 * order) holding a NaN or an infinity, and the run stops there; NULL when
 * all are finite. Slower than nb_plan_run; meant for diagnosing a loss that
 * went non-finite. */
NB_API nb_status nb_plan_run_checked(nb_plan *p, const nb_node **first_bad);
/* Describes the node nb_plan_run_checked stopped at, into buf (cap bytes),
 * e.g. "node 'l' (log) holds 2 NaN and 0 infinite of 4 values; its inputs
 * were finite: 'x'" (as PyTorch's anomaly mode); returns the length it
 * wanted. */
NB_API int nb_plan_anomaly(const nb_plan *p, const nb_node *bad, char *buf, size_t cap);
/* A requested output's data after a run, valid until the next run or bind. */
NB_API const void *nb_plan_get(const nb_plan *p, const nb_node *n);
/* Bound shape of any node of the plan; returns its rank, -1 if not in the plan. */
NB_API int nb_plan_shape(const nb_plan *p, const nb_node *n, int64_t *shape);
/* Bytes of the arena the current binding needs. */
NB_API size_t nb_plan_arena_bytes(const nb_plan *p);
/* Every byte the plan holds: its arena (the largest binding's size), its
 * cached layouts and its own bookkeeping. */
NB_API size_t nb_plan_memory_bytes(const nb_plan *p);
/* Sum of the sizes of every intermediate buffer (what no reuse would need). */
NB_API size_t nb_plan_intermediate_bytes(const nb_plan *p);
/* The most bytes live at one step of the current binding (its widest live
 * set: inputs, the values still to be read, workspaces), the least any arena
 * could be; nb_plan_arena_bytes is at least this, more when the buffers do
 * not pack without gaps. */
NB_API size_t nb_plan_live_bytes(const nb_plan *p);

/* ---- profiling ----------------------------------------------------------
 *
 * While profiling is on, every run (nb_plan_run, nb_plan_run_checked) adds
 * the wall time of each node's kernel to that node's total and counts the
 * node's runs; off (the default), a run reads no clock. Turning it on
 * allocates the totals (once per plan) and clears them, so runs stay free of
 * allocation either way; turning it off keeps the totals for reading.
 *
 *   nb_plan_set_profile(p, true);
 *   for (s = 0; s < steps; s++) nb_plan_run(p);
 *   size_t n = nb_plan_profile(p, NULL, 0);
 *   nb_node_profile *r = malloc(n * sizeof *r);
 *   nb_plan_profile(p, r, n);      r[i].seconds / r[i].runs: time of one run
 *
 * The time is the kernel's wall time (threads it starts included), measured
 * with CLOCK_MONOTONIC around it: what the step spends between kernels
 * (stamping params, a failed node) is in no node's total. */
typedef struct nb_node_profile {
    const nb_node *node;
    double seconds;   /* summed over the profiled runs */
    uint64_t runs;    /* profiled runs that ran this node */
} nb_node_profile;

/* Profiling on (clears the totals) or off. NB_ERR_NOMEM when the totals
 * cannot be allocated, NB_ERR_ARG for a NULL plan. */
NB_API nb_status nb_plan_set_profile(nb_plan *p, bool on);
NB_API bool nb_plan_profiling(const nb_plan *p);
/* The totals of every node a run of p computes (op nodes, views such as
 * reshape included; not inputs and params), in the order the plan runs them: fills out[0..cap) and
 * returns how many there are (call with cap 0 to size out). Zeros for a
 * plan never profiled. */
NB_API size_t nb_plan_profile(const nb_plan *p, nb_node_profile *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif

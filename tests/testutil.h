/* The harness every Criterion test links (tests/testutil.c): the tree's files,
 * a temporary folder, files and .npy, values of f32/f64/i32 buffers, random
 * fills, comparisons with tolerances, small graphs and plans, models. The
 * tests of the `nabla` command add toolutil.h, which runs the tool.
 *
 * A helper that "fails" ends the test at once through a Criterion assert,
 * with a message naming what went wrong (the path, the graph's or the plan's
 * message, nb_last_error()); one that "expects" records a failure and goes on.
 * Strings marked "a ring buffer" are static, 16 in turn, so a few calls'
 * results stay valid at once. Helpers that never fail may run on any thread;
 * the others only on the test's own (Criterion asserts only there). */
#ifndef NABLA_TESTUTIL_H
#define NABLA_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nabla/nabla.h>

/* ---- the environment and the source tree ---- */

/* getenv(name); fails if it is unset or empty (run the tests through meson test). */
const char *test_env(const char *name);
/* NABLA_TEST_DIR, the tests/ folder; fails as test_env. */
const char *test_dir(void);
/* NABLA_TEST_DIR/ and the printf-formatted rest (a ring buffer); fails if missing or unreadable. */
const char *test_file(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Output (malloc'd, stderr joined) and *status (exit or 128 + signal) of sh -c cmd; fails if no start. */
char *run_shell(const char *cmd, int *status);

/* ---- a fresh temporary folder per test (each test runs in its own process) ---- */

/* Makes /tmp/nabla-test-XXXXXX (usable as .init); fails if it cannot. */
void tmp_make(void);
/* Removes the folder and all in it, following no link (usable as .fini); never fails. */
void tmp_remove(void);
/* "TMP/name" (a ring buffer; name may contain '/'); never fails. */
const char *tmp_path(const char *name);
/* How many entries not starting with '.' the folder holds (not recursive); fails if unreadable. */
int tmp_count_files(void);

/* ---- files ---- */

/* Writes len bytes to path, replacing it; fails if it cannot write them all. */
void write_file(const char *path, const void *data, size_t len);
/* Writes a NUL-terminated text to path; fails as write_file. */
void write_text(const char *path, const char *text);
/* The whole file (any bytes), malloc'd, NUL added, size in *len (may be NULL); fails if unreadable. */
char *read_text(const char *path, size_t *len);

/* ---- tensors and .npy ---- */

/* A new tensor with the values v converted to dt (v NULL: zeros); fails if allocation fails. */
nb_tensor tensor_of(nb_dtype dt, int rank, const int64_t *shape, const double *v);
/* Writes v converted to dt as a .npy through the library; fails with nb_last_error(). */
void write_npy(const char *path, nb_dtype dt, int rank, const int64_t *shape, const double *v);
/* write_npy of f64 values. */
void write_npy_f64(const char *path, int rank, const int64_t *shape, const double *v);
/* Writes i32 values as a .npy through the library; fails with nb_last_error(). */
void write_npy_i32(const char *path, int rank, const int64_t *shape, const int32_t *v);
/* A malloc'd .npy of version major, dict padded as numpy pads it, then data; size in *len; never fails. */
unsigned char *npy_buf(int major, const char *dict, const void *data, size_t dlen, size_t *len);
/* Reads a .npy of any dtype as an f64 tensor (free with nb_tensor_free); fails with nb_last_error(). */
nb_tensor read_npy_f64(const char *path);

/* ---- values of f32/f64/i32 buffers, shapes, random fills (none fails) ---- */

/* Element i of an f32, f64 or i32 buffer, as a double. */
double get_elem(nb_dtype dt, const void *buf, size_t i);
/* Stores v as element i of an f32, f64 or i32 buffer (i32: the nearest integer). */
void set_elem(nb_dtype dt, void *buf, size_t i, double v);
/* A malloc'd copy of v[0..n) converted to dt (NULL if out of memory). */
void *values_as(nb_dtype dt, const double *v, size_t n);
/* The number of elements of a shape (1 for rank 0). */
size_t shape_numel(int rank, const int64_t *shape);
/* v[i] = i. */
void fill_iota(double *v, size_t n);
/* v[i] = lo + (hi - lo) * nb_rng_uniform(r), in order. */
void fill_uniform(nb_rng *r, double *v, size_t n, double lo, double hi);
/* v[i] = nb_rng_normal(r), in order. */
void fill_normal(nb_rng *r, double *v, size_t n);
/* fill_uniform in [-1, 1) from a generator seeded with seed. */
void fill_random(double *v, size_t n, uint64_t seed);

/* ---- comparisons with tolerances ---- */

/* |got - want| <= atol + rtol |want| (NumPy's isclose); NaN is never close. */
bool is_close(double got, double want, double atol, double rtol);
/* Expects got[i] is_close to want[i] for all i; one failure names `what`, the count and the first. */
void expect_close(const double *got, const double *want, size_t n, double atol, double rtol, const char *what);
/* Expects |got[i] - want[i]| <= tol max(1, |want[i]|) for all i; reports as expect_close. */
void expect_near(const double *got, const double *want, size_t n, double tol, const char *what);
/* Fails unless text contains part, naming both. */
void assert_has(const char *text, const char *part);
/* Fails unless got is want and nb_last_error() contains part. */
void assert_error(nb_status got, nb_status want, const char *part);
/* Expects g's status to be st and its message to contain each of parts[0..n). */
void expect_graph_error(nb_graph *g, nb_status st, const char *const *parts, int n);

/* ---- small graphs and plans ---- */

/* An input of fixed dims shape[0..rank); never fails: NULL with the message on g, as nb_input. */
nb_node *input_shaped(nb_graph *g, const char *name, nb_dtype dt, int rank, const int64_t *shape);
/* x W + b, params NAME.W (Xavier) and NAME.b (U[-0.1, 0.1]) from seed into *W, *b; never fails. */
nb_node *dense_layer(nb_graph *g, nb_node *x, const char *name, int64_t in, int64_t out, nb_dtype dt,
                     uint64_t seed, nb_node **W, nb_node **b);
/* Registers a test's op unless an op of its name exists; fails if registering fails. */
void register_test_op(const nb_op_def *def);
/* A plan for outs[0..n) of g; fails with g's message. */
nb_plan *plan_new_ok(nb_graph *g, nb_node *const *outs, int n);
/* nb_plan_bind(p, b, n); fails with p's message. */
void plan_bind_ok(nb_plan *p, const nb_bind *b, int n);
/* nb_plan_run(p); fails with p's message. */
void plan_run_ok(nb_plan *p);
/* Fills input x's buffer (bound size) with v converted to x's dtype; fails if p has no such input. */
void plan_feed(nb_plan *p, const nb_node *x, const double *v);
/* Copies node y's values in p as doubles to out, returns how many; fails if p has none. */
size_t plan_read(const nb_plan *p, const nb_node *y, double *out);
/* Bytes of node n's value under p's current binding; fails if p does not hold n. */
size_t plan_bytes(const nb_plan *p, const nb_node *n);
/* w -= lr * (grads[i] in p) for the f32 params[0..n); never fails. */
void sgd_step_f32(const nb_plan *p, nb_node *const *params, nb_node *const *grads, int n, float lr);
/* Runs outs once (b bound, each in[k] read fed from v[k]) into out[j] (NULL skips); fails as plan_*_ok. */
void eval_graph(nb_graph *g, int n_out, nb_node *const *outs, double *const *out, int n_in,
                nb_node *const *in, const double *const *v, const nb_bind *b, int n_b);
/* eval_graph of one output y into out, with nothing to bind. */
void eval_node(nb_graph *g, nb_node *y, double *out, int n_in, nb_node *const *in, const double *const *v);
/* eval_graph of one output y into out; returns its bound rank and puts its bound shape in shape. */
int eval_node_bound(nb_graph *g, nb_node *y, double *out, int64_t *shape, int n_in, nb_node *const *in,
                    const double *const *v, const nb_bind *b, int n_b);
/* n's shape as nb_node_shape_str prints it (a ring buffer); never fails. */
const char *node_shape(nb_graph *g, const nb_node *n);

/* ---- models ---- */

/* Logs each line of d through cr_log_info; never fails. */
void print_diags(const nb_diags *d);
/* Loads yaml as "m.yaml" into *d (free it); fails unless the status and the model agree. */
nb_model *load_yaml(const char *yaml, nb_diags *d);
/* Loads yaml; fails unless it loads without a message. */
nb_model *load_ok(const char *yaml);
/* Expects yaml to fail with exactly the messages want[0..n), in this order; fails if it loads. */
void expect_errors(const char *yaml, const char *const *want, size_t n);
/* expect_errors with the messages as arguments; EXPECT_ERROR for one message. */
#define EXPECT_ERRORS(yaml, ...)                                                    \
    do {                                                                            \
        const char *const want_[] = {__VA_ARGS__};                                  \
        expect_errors(yaml, want_, sizeof want_ / sizeof want_[0]);                 \
    } while (0)
#define EXPECT_ERROR(yaml, msg) EXPECT_ERRORS(yaml, msg)
/* Loads a model file; fails with the path and its first message. */
nb_model *load_model_file(const char *path);
/* Loads examples/models/FILE (load_model_file). */
nb_model *load_example(const char *file);
/* Gradients of m's loss for its (trainable) params, then float inputs; returns how many; fails as nb_grad. */
int model_grads(nb_model *m, bool trainable_only, bool inputs_too, nb_node **grads, int cap);
/* Node `name` exists (fails if not); expects its op `op` and printed shape `shape`. */
void check_node(nb_graph *g, const char *name, const char *op, const char *shape);

/* User CPU seconds of this process (RUSAGE_SELF) or of its waited-for
 * children (RUSAGE_CHILDREN). Scaling tests compare these rather than wall
 * or system time: other processes and the file system's speed (which differs
 * between machines) do not count, the algorithm's work does. */
double user_cpu_seconds(int who);
/* Expects `large` (4x the work of `small`) under 8 * small + slack seconds,
 * well under the 16x of a quadratic cost; prints the figures either way. */
void expect_linear(double small, double large, double slack, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif

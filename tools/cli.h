/* The `nabla` command: what its subcommands share — option values, loading
 * a model with its errors printed, reading inputs from .npy files with their
 * shapes checked and free dimensions bound from them.
 *
 * Only tools/ prints. Every function that can fail prints one message on
 * stderr ("nabla CMD: ...") and returns the exit status to use (2). */
#ifndef NABLA_TOOLS_CLI_H
#define NABLA_TOOLS_CLI_H

#include <stdio.h>

#include <nabla/nabla.h>

enum { NBT_OK = 0, NBT_MISMATCH = 1, NBT_ERROR = 2 };

#define NBT_MAX_FEEDS 64

/* Free dimensions bound so far, with where each value came from. */
typedef struct nbt_dims {
    nb_bind b[NB_MAX_SYMS];
    char from[NB_MAX_SYMS][96];  /* "--dim", "input 'x'" */
    char sym[NB_MAX_SYMS][NB_MAX_SYM_LEN + 1];   /* storage for b[i].sym: any name a model may use */
    int n;
} nbt_dims;

/* --in NAME=FILE.npy values, pointing into argv. */
typedef struct nbt_feed_arg {
    const char *name, *path;
} nbt_feed_arg;
typedef struct nbt_feeds {
    nbt_feed_arg a[NBT_MAX_FEEDS];
    int n;
} nbt_feeds;

/* Inputs read from files, converted to their node's dtype. */
typedef struct nbt_inputs {
    nb_node *node[NBT_MAX_FEEDS];
    nb_tensor t[NBT_MAX_FEEDS];
    int n;
} nbt_inputs;

/* ---- messages ---------------------------------------------------------- */

/* Prints "nabla CMD: message" on stderr and returns NBT_ERROR. */
int nbt_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void nbt_warn(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For getopt_long's '?' (unknown option) and ':' (missing value; the option
 * strings start with ':'): names the option and points at --help. */
int nbt_bad_usage(const char *cmd, int c, const char *arg);
/* Positional arguments argv[first..argc) beyond the `max` a command takes:
 * "nabla CMD: unexpected argument 'X'" and NBT_ERROR; NBT_OK when there are none. */
int nbt_extra_args(const char *cmd, int argc, char **argv, int first, int max);

/* ---- option values ----------------------------------------------------- */

int nbt_parse_double(const char *cmd, const char *opt, const char *s, double *out);
int nbt_parse_i64(const char *cmd, const char *opt, const char *s, int64_t lo, int64_t *out);
/* "N=64", added to d (a repeated symbol takes the last value). */
int nbt_parse_dim(const char *cmd, const char *s, nbt_dims *d);
/* "train" (true) or "eval" (false), for --mode */
int nbt_parse_mode(const char *cmd, const char *s, bool *training);
/* "x=file.npy" */
int nbt_parse_feed(const char *cmd, char *s, nbt_feeds *f);
/* Value bound to sym in d, or 0. */
int64_t nbt_dim_value(const nbt_dims *d, const char *sym);
/* Adds or checks a binding: a second, different value for the same symbol is
 * an error naming both sources. */
int nbt_bind(const char *cmd, nbt_dims *d, const char *sym, int64_t v, const char *from);
/* Every --dim must name a free dimension of g. */
int nbt_check_dim_names(const char *cmd, const nb_graph *g, const nbt_dims *d);

/* ---- models and inputs ------------------------------------------------- */

/* Loads a model file; loader errors are printed one per line as
 * FILE:LINE:COL: message. */
int nbt_load(const char *cmd, const char *path, bool force_f64, nb_model **out);
/* Loads the params of graph g from a weights or checkpoint file; tensors that
 * name no param are warned about, except a checkpoint's optimizer state
 * (opt.*), which is expected there. */
int nbt_load_weights(const char *cmd, nb_graph *g, const char *path);
/* Makes the model's loss a node called `name`: the sum of every element of
 * node `node` (--loss), or when node is NULL of every float output (for
 * models without a loss, such as ONNX ones). */
int nbt_sum_loss(const char *cmd, nb_model *m, const char *node, const char *name);
/* Is path an ONNX file (read by its extension)? An ONNX model has no loss:
 * run --grad, render --backward and gradcheck use the sum of its outputs. */
bool nbt_is_onnx(const char *path);
/* Finds a model input by name (with a "did you mean" on failure). */
nb_node *nbt_find_input(const char *cmd, const nb_model *m, const char *name, int *rc);
/* Reads every --in file into in, checks its dtype and shape against the
 * input's and binds free dimensions from it into d. */
int nbt_read_inputs(const char *cmd, const nb_model *m, const nbt_feeds *f, nbt_dims *d,
                    nbt_inputs *in);
void nbt_inputs_free(nbt_inputs *in);
/* The tensor read for node, or NULL. */
const nb_tensor *nbt_input_of(const nbt_inputs *in, const nb_node *node);
/* Converts t in place to dtype to (f32 <-> f64). */
int nbt_convert(const char *cmd, nb_tensor *t, nb_dtype to);

/* ---- dependencies ------------------------------------------------------ */

/* Which of the nodes of[0..n_of) the nodes from[0..n_from) depend on, walking
 * nb_node_input back from them (a node depends on itself): dep[k] for of[k].
 * E.g. of = the model's inputs: the inputs needed to compute `from`. Prints
 * and returns NBT_ERROR only when out of memory. */
int nbt_depends_on(const char *cmd, const nb_graph *g, nb_node *const *from, int n_from,
                   nb_node *const *of, int n_of, bool *dep);

/* ---- small formatting helpers ------------------------------------------- */

/* "(1, 3)" for flat index i of a tensor of that shape; "()" for rank 0. */
void nbt_unravel(size_t i, int rank, const int64_t *shape, char *buf, size_t cap);
/* 1234 -> "1,234"; from 1e21 on "1.845e+21" (a count that long fits no column). */
void nbt_commas(double v, char *buf, size_t cap);

/* ---- outputs (output.c): nothing lost, nothing clobbered ----------------- */

/* The `format` metadata of the files nabla writes: "nabla-checkpoint-1"
 * (train --save), "nabla-weights-1" (run --save-weights). */
#define NBT_FORMAT_PREFIX "nabla-"
#define NBT_WEIGHTS_FORMAT "nabla-weights-1"
/* A safetensors or .npz file (by extension) whose metadata (read alone, not
 * the tensors) has a `format` beginning with "nabla-". */
bool nbt_is_nabla_weights(const char *path);
/* May the command write path? Nothing there: yes. Something that is not a
 * regular file (a symbolic link, FIFO, device, folder): never. A regular
 * file: with force, or when weights and nbt_is_nabla_weights. Prints why not
 * and returns NBT_ERROR. */
int nbt_check_output(const char *cmd, const char *path, bool force, bool weights);
/* Is path's folder the folder dir (the same inode)? */
bool nbt_in_folder(const char *path, const char *dir);

/* Outputs written to temporary folders (FOLDER/.nabla-stage-XXXXXX, one per
 * target folder, so that the final move is a rename) and moved in together
 * at the end: a command that fails before nbt_stage_commit leaves nothing. */
#define NBT_STAGE_DIRS 8
typedef struct nbt_staged {
    char *tmp, *final;
} nbt_staged;
typedef struct nbt_stage {
    const char *cmd;
    struct nbt_stage_dir {
        char folder[4096], tmp[4096];
    } dirs[NBT_STAGE_DIRS];
    int n_dirs;
    nbt_staged *files;
    size_t n, cap;
} nbt_stage;
/* Where to write the file that goes to `final` (same base name, so the
 * extension stays); NULL after printing why not. */
const char *nbt_stage_file(nbt_stage *s, const char *final);
/* Renames every staged file over its final path (refusing non-regular files
 * there), syncs the folders and removes the temporary ones. */
int nbt_stage_commit(nbt_stage *s);
/* Removes everything staged. */
void nbt_stage_discard(nbt_stage *s);

/* ---- the subcommands ---------------------------------------------------- */

int nbt_cmd_check(int argc, char **argv);
int nbt_cmd_render(int argc, char **argv);
int nbt_cmd_gradcheck(int argc, char **argv);
int nbt_cmd_run(int argc, char **argv);
int nbt_cmd_ops(int argc, char **argv);
int nbt_cmd_plot(int argc, char **argv);
int nbt_cmd_train(int argc, char **argv);
int nbt_cmd_eval(int argc, char **argv);
int nbt_cmd_bench(int argc, char **argv);
int nbt_cmd_convert(int argc, char **argv);
void nbt_usage_convert(FILE *f);
void nbt_usage_bench(FILE *f);
void nbt_usage_train(FILE *f);
void nbt_usage_eval(FILE *f);
void nbt_usage_check(FILE *f);
void nbt_usage_render(FILE *f);
void nbt_usage_gradcheck(FILE *f);
void nbt_usage_run(FILE *f);
void nbt_usage_ops(FILE *f);
void nbt_usage_plot(FILE *f);

/* ---- profiles (profile_print.c), for bench and train --profile ----------- */

/* Matmul and convolution ops: the ones that run on GEMM (by name prefix). */
bool nbt_is_gemm_op(const char *op);
/* Prints the totals of a profiled plan (nb_plan_set_profile): per op type
 * and per node, slowest first, ms per step and % of the nodes' time; the
 * `top` slowest nodes (0: all). step_ms > 0 is the measured step, shown
 * beside the nodes' sum. Prints and returns NBT_ERROR only when out of memory. */
int nbt_print_profile(FILE *f, const char *cmd, const nb_plan *p, double step_ms, int top);

/* ---- data of the train section (datasets.c), for train and eval --------- */

/* Finds a data file: absolute, or in the model's folder, --data, $NABLA_DATA,
 * Debian's /usr/share/datasets/fashion-mnist, in that order. */
int nbt_data_path(const char *cmd, const nb_model *m, const char *data_dir, const char *file,
                  char *out, size_t cap);
/* Loads an IDX images/labels pair found so. */
int nbt_load_idx(const char *cmd, const nb_model *m, const char *data_dir, const char *images,
                 const char *labels, nb_dataset **out);
/* The training (test false) or test data of the model's train section, in
 * its format: an IDX pair, or (format npy) one .npy file per input, loaded as
 * a field named after the input and checked against it (dtype, shape of a
 * sample). With none given, *out is NULL and the result NBT_OK, or, when
 * required, an error. */
int nbt_load_data(const char *cmd, const nb_model *m, const char *data_dir, bool test,
                  bool required, nb_dataset **out);
/* A trainer for m (base gives batch, seed, optimizer...; loss, params, scores
 * and labels come from the model) fed as its train section says: idx feeds
 * images and labels as `feed` says; npy feeds every input it names from its
 * own file (scale for float inputs) and needs a file for every input the loss
 * depends on. Labels (for the accuracy) are, with npy, the i32 input that a
 * softmax_cross_entropy or nll_loss of the loss reads as labels. */
int nbt_make_trainer(const char *cmd, nb_model *m, const nb_trainer_cfg *base, nb_trainer **out);

/* ---- gradcheck of a model, shared with the tests ----------------------- */

/* --range NAME=LO:HI: random values of input NAME from U(LO, HI). */
typedef struct nbt_range {
    const char *name;
    double lo, hi;
} nbt_range;

typedef struct nbt_gc_cfg {
    nb_gc_opts opts;
    int64_t batch;     /* value of every free dimension --dim does not name */
    nbt_dims dims;     /* --dim */
    nbt_feeds feeds;   /* --in */
    nbt_range ranges[NBT_MAX_FEEDS];  /* --range */
    int n_ranges;
    nb_model *m32;     /* the same model in f32, for the f32 check (NULL: none) */
} nbt_gc_cfg;
/* nabla gradcheck runs in training mode (model-format.md), with the dropout
 * masks fixed by opts.seed */
#define NBT_GC_DEFAULTS \
    ((nbt_gc_cfg){.opts = {.eps = 1e-6, .atol = 1e-5, .rtol = 1e-3, .max_elems = 1000, \
                           .training = true, .f32_atol = 1e-4, .f32_rtol = 1e-3},   \
                  .batch = 2})
/* "x=0.1:2" into cfg->ranges */
int nbt_parse_range(const char *cmd, char *s, nbt_gc_cfg *cfg);

/* Checks d loss / d x for every param and float input of m, which must be
 * loaded with force_f64, then (with cfg->m32) the f32 gradients against the
 * f64 ones. Prints one row per tensor on out, messages on
 * stderr. Returns NBT_OK when all pass, NBT_MISMATCH when one fails,
 * NBT_ERROR when the check cannot run (no loss, bad input, non-finite
 * forward pass, ...). */
int nbt_gradcheck_model(nb_model *m, const nbt_gc_cfg *cfg, FILE *out);

#endif

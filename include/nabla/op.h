/* nabla — the op contract.
 *
 * Every op, built in or added by a user, is one nb_op_def: its name, arity and
 * attributes (the YAML loader reads them from here), its shape rule, its f32/f64
 * forward kernel, its gradient rule (which adds nodes to the graph), its FLOP
 * count and the cases gradcheck differentiates it on. Nothing in nabla switches
 * over op names. */
#ifndef NABLA_OP_H
#define NABLA_OP_H

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- symbolic shapes (shape rules see these) ------------------------- */

/* A dimension c * prod(sym_k ^ e[k]); constant when every e[k] is 0. Symbols
 * are numbered per graph. Shape rules run on symbolic shapes when a node is
 * added and on constant ones when a plan binds the free dimensions. */
typedef struct nb_sdim {
    int64_t c;
    uint8_t e[NB_MAX_SYMS];
} nb_sdim;

typedef struct nb_shape {
    int rank;
    nb_sdim d[NB_MAX_DIMS];
} nb_shape;

NB_API nb_sdim nb_sdim_const(int64_t c);
NB_API bool nb_sdim_is_const(nb_sdim d);
NB_API bool nb_sdim_eq(nb_sdim a, nb_sdim b);
NB_API bool nb_sdim_is(nb_sdim d, int64_t c);                 /* constant equal to c */
NB_API bool nb_sdim_mul(nb_sdim a, nb_sdim b, nb_sdim *out);  /* false on overflow */
NB_API bool nb_sdim_div(nb_sdim a, nb_sdim b, nb_sdim *out);  /* false unless exact */
NB_API bool nb_sdim_add(nb_sdim a, nb_sdim b, nb_sdim *out);  /* false unless same symbols */
NB_API bool nb_shape_eq(const nb_shape *a, const nb_shape *b);
/* Product of all dims; false on overflow. */
NB_API bool nb_shape_numel_sym(const nb_shape *s, nb_sdim *out);

/* What a shape rule gets and fills. */
typedef struct nb_shape_ctx {
    const nb_graph *graph;
    const nb_node *node;
    int n_in;
    const nb_shape *in;       /* n_in shapes */
    const nb_dtype *in_dtype; /* n_in dtypes */
    const nb_attr *attr;      /* the node's attributes, in the op's attrs order */
    const int64_t *sym_value; /* bound sizes by symbol index at plan time; NULL when
                                 the rule runs on symbolic shapes */
    nb_shape out;             /* to fill */
    nb_dtype out_dtype;       /* preset to the first input's dtype */
    char scratch[4][128];     /* used by nb_shape_desc */
    int next_scratch;
    char *err;                /* message buffer, set by nb_shape_fail */
    size_t err_cap;
} nb_shape_ctx;

/* Fails the rule with a message that starts "node 'NAME': OP ". Returns st. */
NB_API nb_status nb_shape_fail(nb_shape_ctx *c, nb_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* "W2 is [256, 10]" for input i, for messages (valid for a few calls). */
NB_API const char *nb_shape_desc(nb_shape_ctx *c, int i);
/* Formats any shape with the graph's symbol names. */
NB_API int nb_shape_format(const nb_graph *g, const nb_shape *s, char *buf, size_t cap);
/* NumPy broadcast of inputs ia and ib into *out (a symbol matches only 1 or itself). */
NB_API nb_status nb_shape_broadcast(nb_shape_ctx *c, int ia, int ib, nb_shape *out);
/* Normalises a possibly negative axis of a rank-`rank` tensor into *out. */
NB_API nb_status nb_shape_axis(nb_shape_ctx *c, int64_t axis, int rank, int *out);
/* Resolves a dimension written in an attribute (a size or a symbol name) to
 * an nb_sdim: symbolic at build time, its bound size at plan time. */
NB_API nb_status nb_shape_dim(nb_shape_ctx *c, nb_dim d, nb_sdim *out);
/* Requires input i to have shape `want`, else fails with "needs WHAT [..]; IN is [..]". */
NB_API nb_status nb_shape_expect(nb_shape_ctx *c, int i, const nb_shape *want, const char *what);
/* Requires input i to be float (f32/f64) and of the same dtype as input 0. */
NB_API nb_status nb_shape_float_inputs(nb_shape_ctx *c);

/* ---- kernels --------------------------------------------------------- */

/* A bound (concrete) shape. */
typedef struct nb_dims {
    int rank;
    int64_t d[NB_MAX_DIMS];
} nb_dims;
/* Product of the dims; SIZE_MAX when it does not fit (never wraps). */
NB_API size_t nb_dims_numel(const nb_dims *s);

/* What a kernel gets. For flops() and workspace() the data pointers are NULL. */
typedef struct nb_kctx {
    const nb_node *node;
    nb_dtype dtype;            /* of the output */
    int n_in;
    const void *const *in;     /* input data */
    const nb_dims *in_shape;
    const nb_dtype *in_dtype;
    void *out;
    nb_dims out_shape;
    const nb_attr *attr;
    void *work;                /* workspace() bytes of scratch */
    size_t work_bytes;
    char *err;                 /* for nb_kernel_fail */
    size_t err_cap;
    /* The plan's mode and random stream (nb_plan_set_training, nb_plan_set_seed):
     * dropout and batchnorm behave differently while training; random choices
     * of a kernel are a pure function of (seed, step, a stream id such as the
     * node's id, element index) through nb_random_key / nb_random_uniform, so
     * that a gradient op can draw the same numbers again without storing them. */
    bool training;
    uint64_t seed;
    uint64_t step;             /* training-mode runs since the seed was set */
    /* The plan's threads (nb_plan_set_threads), for nb_kernel_parallel; NULL
     * when it has one. workspace() may ask nb_kernel_parts for a slice each. */
    struct nb__workers *workers;
} nb_kctx;

/* Part `part` of a loop split by nb_kernel_parallel: iterations [lo, hi). */
typedef void (*nb_part_fn)(void *arg, int64_t lo, int64_t hi, int part);
/* Runs fn over [0, n) in parts, one per thread of the plan but no more than
 * n / grain: part t is [t*n/P, (t+1)*n/P) on a thread of its own, so what
 * each part computes depends only on n and P (a kernel whose parts write
 * disjoint outputs gives the same bits for any thread count). Returns when
 * every part is done. With one thread, fn(arg, 0, n, 0) on the caller's. */
NB_API void nb_kernel_parallel(const nb_kctx *k, int64_t n, int64_t grain, nb_part_fn fn, void *arg);
/* The most parts nb_kernel_parallel may make for k: its plan's thread count. */
NB_API int nb_kernel_parts(const nb_kctx *k);

/* Counter-based random numbers (splitmix64, nb_mix64 in core.h): a key for
 * one (seed, step, stream), then the i-th uniform number of that key in [0, 1). */
static inline uint64_t nb_random_key(uint64_t seed, uint64_t step, uint64_t stream)
{
    return nb_mix64(nb_mix64(nb_mix64(seed) ^ step) ^ stream);
}
static inline double nb_random_uniform(uint64_t key, uint64_t i)
{
    /* the i-th output of a splitmix64 stream started at key */
    return (double)(nb_mix64(key + i * 0x9e3779b97f4a7c15ULL) >> 11) * 0x1.0p-53;
}

/* Fails a kernel at run time (bad data such as a label out of range). */
NB_API nb_status nb_kernel_fail(const nb_kctx *k, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- op definitions -------------------------------------------------- */

typedef struct nb_attr_def {
    const char *name;
    nb_attr_type type;
    bool required;
    nb_attr def;  /* default value when not required; INTS/DIMS with n == 0 mean "absent" */
} nb_attr_def;

/* One gradcheck case: shapes of the inputs as "2,3,4" ("" for a scalar,
 * "i32:5" for class labels), the range floats are drawn from, attributes. */
typedef struct nb_op_case {
    const char *in[6];
    double lo, hi;   /* both 0: U(-1, 1) */
    int classes;     /* i32 inputs are drawn from [0, classes) */
    nb_attr attrs[4];
    int n_attrs;
} nb_op_case;

/* State an op keeps across runs (batchnorm's running statistics). For each
 * entry, nb_op makes a non-trainable param named NODE.suffix once the node's
 * own inputs have passed its shape rule, and appends it to the node's inputs
 * (in entry order, after the inputs given). Its dtype is the node's, its shape
 * [size of axis `axis` of input `in`] (negative axes count from the end), or
 * with axis NB_STATE_WHOLE input `in`'s whole shape (an optimizer's moments
 * of a param) — fixed sizes either way; its value the constant rule `init`
 * (NB_INIT_ZEROS, NB_INIT_ONES). State inputs get no gradient; a kernel may
 * write to them (batchnorm's running statistics while training, an
 * optimizer's moments): they are params, whose buffers live outside the
 * plan's arena. Shape rules see them at plan time (n_in counts them), not
 * when the node is added. */
typedef struct nb_state_def {
    const char *suffix;
    nb_init_kind init;
    int in, axis;
} nb_state_def;
#define NB_STATE_WHOLE INT32_MIN
#define NB_MAX_STATE 8

enum {
    NB_OP_VIEW = 1u << 0,     /* output shares input 0's buffer (reshape) */
    NB_OP_INTERNAL = 1u << 1, /* built by gradient rules; not in the model-file op table */
    /* The output may be written into the buffer of an input of exactly the
     * output's shape and dtype (the planner does so when that input dies at
     * this node): the kernel reads that input's element i only to compute
     * output element i, and before writing it (elementwise ops, other inputs
     * possibly broadcast). */
    NB_OP_INPLACE = 1u << 2
};

/* Limits of an op and its nodes. nb_op_register refuses a def with more than
 * NB_MAX_ATTRS attributes or with min_in plus its state above NB_MAX_INPUTS;
 * a max_in above NB_MAX_INPUTS, or < 0 ("any number"), means up to
 * NB_MAX_INPUTS. A node has at most NB_MAX_INPUTS inputs, its op's state
 * included: nb_op and nb_apply refuse more, naming the node. NB_MAX_INPUTS
 * <= 64 lets a uint64_t hold a bit per input (the `needs` mask of backward). */
#define NB_MAX_ATTRS 32
#define NB_MAX_INPUTS 64

typedef struct nb_op_def {
    const char *name;
    int min_in, max_in;            /* max_in < 0: any number (up to NB_MAX_INPUTS) */
    const nb_attr_def *attrs;
    int n_attrs;
    uint32_t flags;
    uint64_t shape_only;           /* bit i: only input i's shape is used, not its data */
    uint64_t no_grad;              /* bit i: input i gets no gradient (labels) */
    const nb_state_def *state;     /* op-owned state, appended to the inputs (above) */
    int n_state;
    nb_status (*shape)(nb_shape_ctx *c);
    nb_status (*forward)(const nb_kctx *k);
    /* Adds nodes computing input i's gradient from gy (the gradient of the
     * output) into gx[i], for each input i whose bit is set in `needs` (bit i:
     * input i needs a gradient; NB_MAX_INPUTS <= 64, so a uint64_t holds a bit
     * for every input). A rule may skip inputs whose bit is clear, and should,
     * so as to leave no dead nodes in the graph: gx[i] for those is ignored.
     * Autodiff calls the rule only when some bit is set (so a rule with one
     * differentiable input may ignore the mask), and never sets the bits of
     * labels (no_grad), shape-only inputs or state. gx[i] NULL: none.
     * gx[i] may have the broadcast shape: autodiff sums it back to the input's
     * shape. NULL rule: the op is not differentiable (an error only if a
     * gradient must pass). */
    nb_status (*backward)(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx);
    double (*flops)(const nb_kctx *k);
    size_t (*workspace)(const nb_kctx *k);   /* NULL: none */
    const nb_op_case *cases;
    int n_cases;
    const char *doc;
} nb_op_def;

/* Does input i need a gradient, by the mask given to a gradient rule? */
static inline bool nb_needs_grad(uint64_t needs, int i)
{
    return i >= 0 && i < 64 && (needs >> i & 1);
}

NB_API const nb_op_def *nb_op_find(const char *name);
/* Adds a node computing `op` on `in`: nb_op without the look-up by name, for
 * code that holds the definition (a def it registered, or nb_op_find's
 * answer, kept). Everything else is as nb_op: attributes by name with the
 * op's defaults, arity and shape checked, NULL and a message on the graph on
 * failure. A NULL op fails with a message (so nb_apply(g, nb_op_find(name),
 * ...) reports a missing op), and so does a def nb_op_register would refuse.
 * Register `op` to make it usable by name (model files, nb_op) as well. */
NB_API nb_node *nb_apply(nb_graph *g, const nb_op_def *op, const char *name, nb_node *const *in,
                  int n_in, const nb_attr *attrs, int n_attrs);
NB_API size_t nb_op_count(void);
NB_API const nb_op_def *nb_op_at(size_t i);
/* Adds a user op (def must outlive its use). NB_ERR_NAME if the name is taken;
 * NB_ERR_ARG if the def is incomplete or over a limit (NB_MAX_ATTRS, ...); the
 * message of a failure is the thread's (nb_last_error). */
NB_API nb_status nb_op_register(const nb_op_def *def);
/* The registered op name closest to `name` (for "did you mean"), or NULL. */
NB_API const char *nb_op_suggest(const char *name);
/* The word of choices[0..n) closest to `word` within a few edits, or NULL. */
NB_API const char *nb_suggest(const char *word, const char *const *choices, size_t n);
/* " (did you mean 'SUGGESTION'?)" in buf, or "" when suggestion is NULL; returns buf. */
NB_API const char *nb_hint(char *buf, size_t cap, const char *suggestion);
/* The op of a node (NULL for inputs and params). */
NB_API const nb_op_def *nb_node_opdef(const nb_node *n);

#ifdef __cplusplus
}
#endif
#endif

/* nabla — building computational graphs.
 *
 * A graph owns its nodes. Inputs are fed at run time, params hold trainable
 * values, op nodes compute from earlier nodes. Shapes are inferred when a node
 * is added; a node-building call that fails returns NULL and leaves a message
 * on the graph (nb_graph_error). Later calls given a NULL input also return
 * NULL and keep the first message, so a whole model can be built and checked
 * once at the end. */
#ifndef NABLA_GRAPH_H
#define NABLA_GRAPH_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_graph nb_graph;
typedef struct nb_node nb_node;

NB_API nb_graph *nb_graph_new(void);        /* NULL when out of memory */
NB_API void nb_graph_free(nb_graph *g);      /* frees every node and param value */
/* The graph's error (core.h, "Errors"): the first failure of a node builder
 * since the last call of another kind (nb_grad, nb_plan_new, ...), or that
 * call's own failure; NB_OK and "" when there is none. */
NB_API nb_status nb_graph_status(const nb_graph *g);
NB_API const char *nb_graph_error(const nb_graph *g);
/* Forgets the graph's error (e.g. after reporting a failed builder). */
NB_API void nb_graph_clear_error(nb_graph *g);

/* ---- leaves ---------------------------------------------------------- */

/* Names beginning "grad." or "opt." are reserved: they name gradients
 * (nb_grad's "grad.W") and optimizer state ("opt.W", "opt.step"), which the
 * library makes itself. nb_input and nb_constant refuse them (NB_ERR_NAME). */

/* A tensor fed at run time; dims may be symbols (NB_SYM("N")). */
NB_API nb_node *nb_input(nb_graph *g, const char *name, nb_dtype dt, int rank, const nb_dim *dims);

typedef enum {
    NB_INIT_ZEROS, NB_INIT_ONES, NB_INIT_CONSTANT, /* a */
    NB_INIT_NORMAL,  /* mean 0, std a */
    NB_INIT_UNIFORM, /* on [a, b) */
    NB_INIT_XAVIER,  /* normal, std sqrt(1/fan_in) */
    NB_INIT_HE,      /* normal, std sqrt(2/fan_in) */
    NB_INIT_VALUES   /* values[0..n_values), row-major */
} nb_init_kind;

/* fan_in: product of all dims but the last for a matmul weight [in, out];
 * C*KH*KW for a conv filter [O, C, KH, KW]. Random rules draw from a stream
 * derived from (seed, param name), so a param's value does not depend on the
 * order params were declared in. */
typedef struct nb_init {
    nb_init_kind kind;
    double a, b;
    uint64_t seed;
    const double *values;
    size_t n_values;
} nb_init;
#define NB_INIT(k) ((nb_init){.kind = (k)})

/* A trainable tensor (float dtype, integer dims). Its value is allocated and
 * initialised here and lives with the graph. */
NB_API nb_node *nb_param(nb_graph *g, const char *name, nb_dtype dt, int rank, const int64_t *shape,
                  nb_init init);
/* Is p a trainable param? False for other nodes and for op-owned state
 * (batchnorm's running statistics, made by nb_op: see nb_state_def in op.h),
 * which optimizers and gradient checks leave alone. */
NB_API bool nb_param_trainable(const nb_node *p);
/* The value of a param (NULL for other nodes); write to it to load weights. */
NB_API nb_tensor *nb_param_value(nb_node *param);
/* Re-runs a param's init rule (e.g. after changing nothing but wanting fresh values). */
NB_API nb_status nb_param_reinit(nb_graph *g, nb_node *param);

/* A constant: a named tensor that never changes and is not trained. Its value
 * (f32, f64 or i32, any rank) is copied from `value`; `name` may be NULL for
 * an automatic one. A constant gets no gradient (nb_grad refuses it as a
 * wrt), is not saved with or required in weights files (nb_weights_save /
 * _load), and is drawn as a constant in diagrams. Plans read its value in
 * place, like a param's. */
NB_API nb_node *nb_constant(nb_graph *g, const char *name, const nb_tensor *value);
/* The value of a constant (NULL for other nodes). */
NB_API const nb_tensor *nb_constant_value(const nb_node *n);

/* ---- attributes and generic op nodes -------------------------------- */

typedef enum {
    NB_ATTR_INT, NB_ATTR_FLOAT, NB_ATTR_BOOL, NB_ATTR_INTS, NB_ATTR_DIMS,
    NB_ATTR_STRING  /* one word of the op's list of choices (gelu's approximate) */
} nb_attr_type;

/* An attribute value. INT and BOOL use i[0]; INTS uses i[0..n); DIMS (shapes
 * that may hold symbols and one -1) uses d[0..n); STRING uses s. In an op's
 * definition (nb_attr_def in op.h), a STRING attribute lists the words it
 * allows in `choices` (NULL-terminated); a node keeps the op's copy of the
 * word given in s and its index among the choices in i[0]. An optional FLOAT
 * attribute whose default has n == 0 (clip's min) keeps n == 0 when not given. */
typedef struct nb_attr {
    const char *name;
    nb_attr_type type;
    int n;
    double f;
    int64_t i[NB_MAX_DIMS];
    nb_dim d[NB_MAX_DIMS];
    const char *s;
    const char *const *choices;
} nb_attr;
/* Initialisers, for arrays: (nb_attr[]){NB_AINT("stride", 2), NB_AFLOAT("alpha", 0.1)} */
#define NB_AINT(nm, v) {.name = (nm), .type = NB_ATTR_INT, .n = 1, .i = {(v)}}
#define NB_ABOOL(nm, v) {.name = (nm), .type = NB_ATTR_BOOL, .n = 1, .i = {(v)}}
#define NB_AFLOAT(nm, v) {.name = (nm), .type = NB_ATTR_FLOAT, .n = 1, .f = (v)}
#define NB_ASTRING(nm, v) {.name = (nm), .type = NB_ATTR_STRING, .n = 1, .s = (v)}

/* Adds a node computing op `op` (a registered op name) on `in`. `name` may be
 * NULL for an automatic one. Attributes not given take the op's defaults; a
 * missing required attribute, an unknown one, a wrong arity or a bad shape
 * returns NULL with a message naming the node, the op and the shapes. Code
 * that holds the op's definition calls nb_apply (op.h) instead. */
NB_API nb_node *nb_op(nb_graph *g, const char *op, const char *name, nb_node *const *in, int n_in,
               const nb_attr *attrs, int n_attrs);

/* ---- typed helpers (each one node of a built-in op) ------------------ */
NB_API nb_node *nb_add(nb_graph *g, nb_node *a, nb_node *b);
NB_API nb_node *nb_sub(nb_graph *g, nb_node *a, nb_node *b);
NB_API nb_node *nb_mul(nb_graph *g, nb_node *a, nb_node *b);
NB_API nb_node *nb_div(nb_graph *g, nb_node *a, nb_node *b);
NB_API nb_node *nb_neg(nb_graph *g, nb_node *a);
NB_API nb_node *nb_exp(nb_graph *g, nb_node *a);
NB_API nb_node *nb_log(nb_graph *g, nb_node *a);
NB_API nb_node *nb_sqrt(nb_graph *g, nb_node *a);
NB_API nb_node *nb_abs(nb_graph *g, nb_node *a);
NB_API nb_node *nb_pow(nb_graph *g, nb_node *a, double exponent);
NB_API nb_node *nb_relu(nb_graph *g, nb_node *a);
NB_API nb_node *nb_sigmoid(nb_graph *g, nb_node *a);
NB_API nb_node *nb_tanh(nb_graph *g, nb_node *a);
NB_API nb_node *nb_leaky_relu(nb_graph *g, nb_node *a, double alpha);
/* y = alpha * a + beta, elementwise */
NB_API nb_node *nb_scale(nb_graph *g, nb_node *a, double alpha, double beta);
/* Elementwise ops of issue 9, PyTorch's definitions (docs/model-format.md). */
NB_API nb_node *nb_log1p(nb_graph *g, nb_node *a);   /* log(1 + a) */
NB_API nb_node *nb_sin(nb_graph *g, nb_node *a);
NB_API nb_node *nb_cos(nb_graph *g, nb_node *a);
NB_API nb_node *nb_erf(nb_graph *g, nb_node *a);
/* a * Phi(a) with Phi by erf, or PyTorch's tanh approximation when tanh_approx */
NB_API nb_node *nb_gelu(nb_graph *g, nb_node *a, bool tanh_approx);
NB_API nb_node *nb_silu(nb_graph *g, nb_node *a);    /* a * sigmoid(a) */
/* a where a > 0, else alpha * (e^a - 1) */
NB_API nb_node *nb_elu(nb_graph *g, nb_node *a, double alpha);
/* log(1 + e^(beta a)) / beta, or a where beta * a > threshold (defaults 1, 20) */
NB_API nb_node *nb_softplus(nb_graph *g, nb_node *a, double beta, double threshold);
/* a limited to [min, max] (torch.clamp); NAN for a bound means none, one is needed */
NB_API nb_node *nb_clip(nb_graph *g, nb_node *a, double min, double max);
/* broadcast; NaN propagates; on a tie each input gets half the gradient */
NB_API nb_node *nb_maximum(nb_graph *g, nb_node *a, nb_node *b);
NB_API nb_node *nb_minimum(nb_graph *g, nb_node *a, nb_node *b);
/* 1 where a > b (a < b, a == b), else 0, broadcast; float or i32 inputs; the result
 * has the inputs' float dtype (the graph's when both are i32); no gradient */
NB_API nb_node *nb_greater(nb_graph *g, nb_node *a, nb_node *b);
NB_API nb_node *nb_less(nb_graph *g, nb_node *a, nb_node *b);
NB_API nb_node *nb_equal(nb_graph *g, nb_node *a, nb_node *b);
/* a where c != 0, else b, all three broadcast; c float or i32, no gradient to c */
NB_API nb_node *nb_where(nb_graph *g, nb_node *c, nb_node *a, nb_node *b);
/* a [..., M, K] x b [K, N] or [..., K, N]; leading dims broadcast */
NB_API nb_node *nb_matmul(nb_graph *g, nb_node *a, nb_node *b);
/* the same with either operand transposed in its last two dims */
NB_API nb_node *nb_matmul_t(nb_graph *g, nb_node *a, nb_node *b, bool transpose_a, bool transpose_b);
/* n_axes == 0: reduce over all axes */
NB_API nb_node *nb_sum(nb_graph *g, nb_node *a, const int64_t *axes, int n_axes, bool keepdims);
NB_API nb_node *nb_mean(nb_graph *g, nb_node *a, const int64_t *axes, int n_axes, bool keepdims);
NB_API nb_node *nb_max(nb_graph *g, nb_node *a, const int64_t *axes, int n_axes, bool keepdims);
/* issue 9: min, log(sum(e^a)) (stable) over axes; argmax: i32 index along one axis */
NB_API nb_node *nb_min(nb_graph *g, nb_node *a, const int64_t *axes, int n_axes, bool keepdims);
NB_API nb_node *nb_logsumexp(nb_graph *g, nb_node *a, const int64_t *axes, int n_axes, bool keepdims);
NB_API nb_node *nb_argmax(nb_graph *g, nb_node *a, int64_t axis, bool keepdims);
/* one entry may be -1; symbols allowed */
NB_API nb_node *nb_reshape(nb_graph *g, nb_node *a, int rank, const nb_dim *shape);
/* n == 0: reverse the axes */
NB_API nb_node *nb_transpose(nb_graph *g, nb_node *a, const int64_t *perm, int n);
NB_API nb_node *nb_flatten(nb_graph *g, nb_node *a, int64_t axis);
NB_API nb_node *nb_concat(nb_graph *g, nb_node *const *in, int n, int64_t axis);
NB_API nb_node *nb_slice(nb_graph *g, nb_node *a, int64_t axis, int64_t start, int64_t end);
/* issue 12: constant padding. before[d] and after[d] cells of `value` ahead of and
 * behind axis d (arrays of x's rank; NULL: zeros); a negative amount crops. */
NB_API nb_node *nb_pad(nb_graph *g, nb_node *x, const int64_t *before, const int64_t *after,
                       double value);
NB_API nb_node *nb_softmax(nb_graph *g, nb_node *a, int64_t axis);
NB_API nb_node *nb_log_softmax(nb_graph *g, nb_node *a, int64_t axis);
/* b may be NULL */
NB_API nb_node *nb_conv2d(nb_graph *g, nb_node *x, nb_node *w, nb_node *b, int64_t stride, int64_t pad);
NB_API nb_node *nb_max_pool2d(nb_graph *g, nb_node *x, int64_t size, int64_t stride, int64_t pad);
NB_API nb_node *nb_avg_pool2d(nb_graph *g, nb_node *x, int64_t size, int64_t stride, int64_t pad);
/* labels: i32 [N] class ids or float [N, K] (one-hot or soft); mean over N */
NB_API nb_node *nb_softmax_cross_entropy(nb_graph *g, nb_node *logits, nb_node *labels);
NB_API nb_node *nb_mse(nb_graph *g, nb_node *a, nb_node *b);
/* issue 9: mean of max(z, 0) - z t + log(1 + e^-|z|) over logits z and targets t of one shape */
NB_API nb_node *nb_sigmoid_cross_entropy(nb_graph *g, nb_node *logits, nb_node *targets);
/* mean of -(t log p + (1 - t) log(1 - p)), each log clamped at -100 (torch's BCELoss) */
NB_API nb_node *nb_binary_cross_entropy(nb_graph *g, nb_node *p, nb_node *targets);
/* mean over N of -logp[n, labels[n]]: logp [N, K], labels i32 [N] */
NB_API nb_node *nb_nll_loss(nb_graph *g, nb_node *logp, nb_node *labels);
/* x with elements zeroed at `rate` (0 <= rate < 1) and the rest scaled by
 * 1/(1-rate) in training mode; x in eval mode */
NB_API nb_node *nb_dropout(nb_graph *g, nb_node *x, double rate);
/* x [N, C, ...] normalised per channel (axis 1), times gamma [C] plus beta
 * [C]; makes the params NODE.running_mean and NODE.running_var (state) */
NB_API nb_node *nb_batchnorm(nb_graph *g, nb_node *x, nb_node *gamma, nb_node *beta, double eps,
                      double momentum);
/* issue 9: rows of table [V, D] at i32 ids [...], giving [..., D]; the table gets the gradient */
NB_API nb_node *nb_embedding(nb_graph *g, nb_node *ids, nb_node *table);
/* x normalised over axes axis..last (biased variance + eps), times gamma plus beta, both
 * shaped as those axes (torch's layer_norm; axis -1 and eps 1e-5 are the defaults) */
NB_API nb_node *nb_layernorm(nb_graph *g, nb_node *x, nb_node *gamma, nb_node *beta, int64_t axis,
                             double eps);

/* ---- introspection -------------------------------------------------- */
/* Getters take a node of a live graph; given NULL they return "(null)", -1, 0,
 * false or NULL (nb_node_kind_of NB_NODE_INPUT, nb_node_dtype NB_F32). */

typedef enum { NB_NODE_INPUT, NB_NODE_PARAM, NB_NODE_OP, NB_NODE_CONST } nb_node_kind;

NB_API size_t nb_graph_num_nodes(const nb_graph *g);
NB_API nb_node *nb_graph_node(const nb_graph *g, size_t i);  /* in creation (= topological) order */
NB_API nb_node *nb_graph_find(const nb_graph *g, const char *name);

NB_API const char *nb_node_name(const nb_node *n);
NB_API nb_node_kind nb_node_kind_of(const nb_node *n);
NB_API const char *nb_node_op(const nb_node *n);        /* op name; "input" / "param" / "constant" for leaves */
NB_API nb_dtype nb_node_dtype(const nb_node *n);
NB_API int nb_node_rank(const nb_node *n);
/* Size of an axis, or -1 when it depends on a free dimension. */
NB_API int64_t nb_node_dim(const nb_node *n, int axis);
/* Writes the shape as "[N, 784]" (symbolic where free); returns what snprintf would. */
NB_API int nb_node_shape_str(const nb_graph *g, const nb_node *n, char *buf, size_t cap);
NB_API int nb_node_num_inputs(const nb_node *n);
NB_API nb_node *nb_node_input(const nb_node *n, int i);
/* Attribute value by name, or NULL when the op has no such attribute. */
NB_API const nb_attr *nb_node_attr(const nb_node *n, const char *name);
/* Was this node built by nb_grad (for diagrams)? */
NB_API bool nb_node_is_grad(const nb_node *n);
/* Renames a node; NB_ERR_NAME if the name is taken or invalid. */
NB_API nb_status nb_node_set_name(nb_graph *g, nb_node *n, const char *name);
/* Layer label for diagrams (NULL for none); the string is copied. */
NB_API nb_status nb_node_set_group(nb_graph *g, nb_node *n, const char *group);
NB_API const char *nb_node_group(const nb_node *n);
/* Floating-point operations of one evaluation of the node with the given
 * bindings of free dimensions; -1 when a dimension is unbound or a size
 * overflows with those bindings. Counted in double: never wraps. */
NB_API double nb_node_flops(const nb_graph *g, const nb_node *n, const nb_bind *binds, int n_binds);

/* Free dimensions (symbols) of the graph, in order of first use. */
NB_API int nb_graph_num_syms(const nb_graph *g);
NB_API const char *nb_graph_sym(const nb_graph *g, int i);   /* NULL out of range */
/* The symbol an axis is, when it is exactly one free dimension ("N" for an
 * input [N, 784] at axis 0); NULL for a fixed size or a product like 2*N. */
NB_API const char *nb_node_dim_sym(const nb_graph *g, const nb_node *n, int axis);
/* The node's shape with free dimensions replaced by the values in binds.
 * Returns the rank, or -1 when a dimension stays unbound or overflows. */
NB_API int nb_node_shape_bound(const nb_graph *g, const nb_node *n, const nb_bind *binds, int n_binds,
                        int64_t *shape);
/* As nb_node_shape_str, with bound symbols replaced by their values and the
 * others kept: "[64, 128]", or "[N, 128]" when N is not in binds. */
NB_API int nb_node_shape_str_bound(const nb_graph *g, const nb_node *n, const nb_bind *binds,
                            int n_binds, char *buf, size_t cap);

/* ---- reverse-mode autodiff ------------------------------------------ */

/* Adds to g the nodes that compute d(sum of loss)/d(wrt[i]) by the chain rule
 * and stores them in grads[i] (same shape as wrt[i]). Gradients reaching a
 * node along several paths are summed; broadcasting is undone by summing back
 * to each input's shape; only nodes on a path from wrt to loss get gradient
 * nodes. A wrt the loss does not depend on gets a node of zeros. The result
 * is made of ordinary nodes, so it can be differentiated again. */
NB_API nb_status nb_grad(nb_graph *g, nb_node *loss, nb_node *const *wrt, int n_wrt, nb_node **grads);

#ifdef __cplusplus
}
#endif
#endif

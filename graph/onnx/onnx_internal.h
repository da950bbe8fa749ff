/* Shared by the ONNX front-end's files (not installed):
 *   onnx_read.c    the file: protobuf-c unpacking, TensorProto -> host values
 *   onnx_names.c   ONNX names -> valid, unique nabla names
 *   onnx_load.c    the graph as a whole: inputs, initializers, nodes, outputs;
 *                  nb_model_load_onnx
 *   onnx_ops.c     the table op_type -> converter, and the helpers converters share
 *   onnx_ops_*.c   the converters, one small function per ONNX op: elementwise
 *                  (elem), shapes (shape), indexing (index), layers (nn),
 *                  reductions (reduce), compositions of ops nabla lacks (more)
 *
 * Design. Every ONNX tensor name maps to an ox_val: a graph node, or a value
 * known at load time (initializers, Constant, and whatever is computed from
 * known values only: Shape of a tensor, Gather/Concat/Unsqueeze/... on it),
 * or both. Shape computations (Shape -> Gather -> Unsqueeze -> Concat ->
 * Reshape, as torch.onnx.export writes x.view(x.size(0), -1)) are folded at
 * load time: a known integer value may hold free dimensions (the symbols of
 * dim_param), which travel as symbols into reshape's `shape` attribute and
 * are bound with the plan, as in a YAML model. Known values become graph
 * nodes (params for float initializers, constants otherwise) only when an op
 * node needs them as a tensor. */
#ifndef NABLA_ONNX_INTERNAL_H
#define NABLA_ONNX_INTERNAL_H

#include "../model/model_internal.h"
#include "onnx.pb-c.h"

/* ONNX element types (TensorProto.DataType) nabla reads. */
enum {
    OX_FLOAT = 1, OX_UINT8 = 2, OX_INT8 = 3, OX_INT16 = 5, OX_INT32 = 6, OX_INT64 = 7,
    OX_BOOL = 9, OX_DOUBLE = 11
};

/* A value known at load time. Integer types are held as int64 (i), float
 * types as double (f). An integer element may be a free dimension: sym[k]
 * non-NULL (the graph's symbol name) means element k is that symbol. */
typedef struct ox_const {
    int type;                  /* ONNX element type */
    int rank;
    int64_t shape[NB_MAX_DIMS];
    size_t n;
    int64_t *i;                /* integer types */
    double *f;                 /* float types */
    const char **sym;          /* NULL, or n entries */
} ox_const;

struct ox_ctx;
bool ox_is_int_type(int type);
/* Allocates k's values (zeroed). Everything a load allocates this way counts
 * against one budget, nb_memory_limit(), never refunded: load-time folding
 * may not build up values each under the limit but together far over it
 * (a fuzz finding: Concats of Concats took 3.6 GB). Fails through ox_fail
 * with the limit in the message. */
nb_status ox_const_alloc(struct ox_ctx *c, ox_const *k, int type, int rank, const int64_t *shape);
void ox_const_free(ox_const *k);
/* Reads a TensorProto into *k; a message in err on failure ("unsupported"
 * for element types nabla has no use for). */
nb_status ox_const_from_proto(struct ox_ctx *c, const Onnx__TensorProto *t, ox_const *k, char *err, size_t cap);
/* k as an nb_tensor of dtype dt (f32/f64 from floats, i32 from integers with a
 * range check). */
nb_status ox_const_to_tensor(const ox_const *k, nb_dtype dt, nb_tensor *t, char *err, size_t cap);
/* Reads a whole file; NB_ERR_IO with errno's text in err. */
nb_status ox_read_file(const char *path, uint8_t **buf, size_t *len, char *err, size_t cap);

/* An ONNX tensor name's meaning. */
typedef struct ox_val {
    char *name;            /* the ONNX name */
    nb_node *node;         /* NULL until needed (known values) */
    ox_const k;            /* known value when has_k */
    bool has_k;
    bool initializer;      /* a float initializer: becomes a param */
    bool own;              /* node was made for this name and carries it */
} ox_val;

typedef struct ox_ctx {
    nb_model *m;
    nb_graph *g;
    const char *file;
    bool force_f64;
    bool saw_float;        /* a float input was read (it gives the model's dtype) */
    int64_t opset;         /* of the default domain */
    ox_val **vals;
    size_t n_vals, cap_vals;
    size_t cap_outputs;    /* of m->outputs (nb_model keeps no capacity for them) */
    nb_strmap index;       /* ONNX name -> ox_val */
    nb_strmap taken;       /* nabla names given so far */
    size_t known_bytes;    /* allocated for known values so far (ox_const_alloc) */
    const Onnx__NodeProto *node;  /* the node being converted, for messages */
    nb_status st;
    char err[512];
} ox_ctx;

/* nb_model_load_onnx on bytes already read (`path` for messages and the
 * model's folder); *out and *diags must be cleared by the caller. For the
 * fuzzer, which has no file. */
nb_status ox_load_bytes(const char *path, const uint8_t *buf, size_t len, const nb_load_opts *opts,
                        nb_model **out, nb_diags *diags);

/* ---- names (onnx_names.c) ---- */
/* A valid nabla name for ONNX name `onnx` (characters outside
 * [A-Za-z0-9_.-] become '_', "_2", "_3", ... on collision), recorded as
 * taken; NULL when out of memory. Owned by the context. */
const char *ox_name(ox_ctx *c, const char *onnx);
/* The sanitised form alone, into buf. */
void ox_sanitize(const char *onnx, char *buf, size_t cap);

/* ---- values (onnx_load.c) ---- */
ox_val *ox_find(ox_ctx *c, const char *name);
ox_val *ox_define(ox_ctx *c, const char *name);
/* The graph's float dtype for an ONNX float type. */
nb_dtype ox_dtype(const ox_ctx *c, int type);
/* A node for a value: makes a param or constant for a known value first. */
nb_node *ox_node(ox_ctx *c, ox_val *v);

/* ---- converters (onnx_ops*.c) ---- */

/* What a converter gets: the node, its inputs' values (NULL for an omitted
 * optional input), and room for its outputs. A converter sets out[i] to a
 * node, or outk[i] to a known value (taking ownership); returns NB_OK or
 * fails through ox_fail / ox_unsupported. */
typedef struct ox_node_io {
    const Onnx__NodeProto *p;
    int n_in, n_out;
    ox_val *in[16];
    nb_node *out[8];
    ox_const outk[8];
    bool has_outk[8];
} ox_node_io;

typedef nb_status (*ox_convert_fn)(ox_ctx *c, ox_node_io *io);
/* attrs: the attributes the converter reads, space-separated; any other
 * attribute of the node is refused as unsupported before it runs (besides
 * opset 1's consumed_inputs, a memory hint). */
typedef struct ox_op {
    const char *op_type;
    ox_convert_fn fn;
    const char *attrs;
} ox_op;
const ox_op *ox_op_find(const char *op_type);
extern const ox_op ox_ops_elem[], ox_ops_shape[], ox_ops_index[], ox_ops_nn[], ox_ops_reduce[],
    ox_ops_more[];
extern const size_t ox_n_ops_elem, ox_n_ops_shape, ox_n_ops_index, ox_n_ops_nn, ox_n_ops_reduce,
    ox_n_ops_more;

/* Errors name the node and its op: "node 'NAME' (OP): ...". */
nb_status ox_fail(ox_ctx *c, nb_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "node 'NAME' (OP): unsupported WHAT" */
nb_status ox_unsupported(ox_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The graph's error from a failed builder, as the node's error. */
nb_status ox_graph_fail(ox_ctx *c);

/* Attributes. */
const Onnx__AttributeProto *ox_attr(const ox_node_io *io, const char *name);
int64_t ox_attr_int(const ox_node_io *io, const char *name, int64_t def);
double ox_attr_float(const ox_node_io *io, const char *name, double def);
/* The INTS attribute into out (at most cap); returns its length, -1 when absent. */
int ox_attr_ints(const ox_node_io *io, const char *name, int64_t *out, int cap);

/* Inputs. */
nb_node *ox_in(ox_ctx *c, ox_node_io *io, int i);        /* NULL: absent or failed */
bool ox_has_in(const ox_node_io *io, int i);
/* A known integer input (axes, shape, pads): its values, or NULL with an
 * "unsupported" error when it is computed at run time (an error when it
 * holds floats). */
const ox_const *ox_known(ox_ctx *c, ox_node_io *io, int i, const char *what);
/* A scalar known float input (Clip's min), or the default when absent. */
nb_status ox_known_scalar(ox_ctx *c, ox_node_io *io, int i, double def, double *out);
/* Folds an index-moving op (Slice with any step, Transpose) on a known
 * value: out, allocated with its shape (and sym when src has symbols), takes
 * at each row-major index o the element src[base + sum_d o[d] step[d]]
 * (base and steps in src's elements). */
void ox_known_strided(ox_const *out, const ox_const *src, int64_t base, const int64_t *step);
/* src's row-major strides, in elements. */
void ox_known_strides(const ox_const *src, int64_t *strides);
/* Normalises a possibly negative axis of a rank-`rank` tensor. */
nb_status ox_axis(ox_ctx *c, int64_t axis, int rank, int *out);

#endif

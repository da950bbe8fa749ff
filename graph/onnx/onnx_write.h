/* Shared by the ONNX writer's files (not installed):
 *   onnx_write.c      the model as a whole: the nodes the outputs need, inputs,
 *                     initializers, outputs, packing; nb_model_save_onnx
 *   onnx_write_ops.c  the table nabla op -> writer, one small function per op
 *
 * Design. The message tree is built from protobuf-c's generated structs, every
 * piece allocated from the context's pool and freed with it. A nabla node's
 * output is the ONNX tensor of the node's name (nabla names are valid ONNX
 * names); a writer that needs several ONNX nodes names the intermediate
 * tensors "NODE:what", which no nabla name can take. */
#ifndef NABLA_ONNX_WRITE_H
#define NABLA_ONNX_WRITE_H

#include "../model/model_internal.h"
#include "onnx.pb-c.h"

#define OW_OPSET 17

typedef struct ow_ctx {
    const nb_model *m;
    void **pool;
    size_t n_pool, cap_pool;
    Onnx__NodeProto **nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t n_inits, cap_inits;
    size_t cap_inputs;     /* of the graph's inputs */
    const nb_node *node;   /* being written, for messages and auxiliary names */
    unsigned aux;          /* counter making auxiliary names unique */
    nb_status st;          /* the first failure */
} ow_ctx;

/* Zeroed memory freed with the context; NULL (and st NOMEM) when out of memory. */
void *ow_alloc(ow_ctx *c, size_t bytes);
char *ow_str(ow_ctx *c, const char *s);
/* A fresh tensor name "NODE:what_K" for the node being written. */
const char *ow_aux(ow_ctx *c, const char *what);
/* Appends an ONNX node op_type(in[0..n_in)) -> out ("" for an omitted
 * optional input); NULL when out of memory. */
Onnx__NodeProto *ow_node(ow_ctx *c, const char *op_type, const char *const *in, int n_in,
                         const char *out);
void ow_attr_int(ow_ctx *c, Onnx__NodeProto *p, const char *name, int64_t v);
void ow_attr_float(ow_ctx *c, Onnx__NodeProto *p, const char *name, double v);
void ow_attr_ints(ow_ctx *c, Onnx__NodeProto *p, const char *name, const int64_t *v, int n);
/* Initializers made for a writer: an int64 vector, a float scalar of dtype dt. */
const char *ow_const_i64(ow_ctx *c, const char *what, const int64_t *v, int n);
const char *ow_const_scalar(ow_ctx *c, const char *what, double v, nb_dtype dt);
/* "node 'NAME' (OP): unsupported ..." */
nb_status ow_unsupported(ow_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef nb_status (*ow_fn)(ow_ctx *c, const nb_node *n);
typedef struct ow_op {
    const char *op;   /* nabla op name */
    ow_fn fn;
} ow_op;
const ow_op *ow_op_find(const char *op);

#endif

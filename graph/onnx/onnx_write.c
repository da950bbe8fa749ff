/* A model as an ONNX file: `nabla convert model.yaml -o model.onnx`.
 * onnx_write.h says how the message is built. Only what the outputs need is
 * written (a model's loss and its label inputs are training matters, which an
 * ONNX inference graph does not hold). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_write.h"
#include "../../src/io_util.h"

void *ow_alloc(ow_ctx *c, size_t bytes)
{
    if (c->n_pool == c->cap_pool) {
        size_t cap = c->cap_pool ? 2 * c->cap_pool : 256;
        void **pool = nb_realloc(c->pool, cap * sizeof *pool);
        if (!pool) goto oom;
        c->pool = pool;
        c->cap_pool = cap;
    }
    void *p = nb_calloc(1, bytes ? bytes : 1);
    if (!p) goto oom;
    return c->pool[c->n_pool++] = p;
oom:
    if (!c->st) c->st = nb__thread_fail(NB_ERR_NOMEM, "out of memory");
    return NULL;
}

char *ow_str(ow_ctx *c, const char *s)
{
    char *d = ow_alloc(c, strlen(s) + 1);
    if (d) strcpy(d, s);
    return d;
}

const char *ow_aux(ow_ctx *c, const char *what)
{
    char buf[300];
    snprintf(buf, sizeof buf, "%s:%s_%u", nb_node_name(c->node), what, ++c->aux);
    return ow_str(c, buf);
}

/* Appends p to a growing array of pointers. */
static bool push(ow_ctx *c, void ***arr, size_t *n, size_t *cap, void *p)
{
    if (!p) return false;
    if (*n == *cap) {
        size_t k = *cap ? 2 * *cap : 64;
        void **a = nb_realloc(*arr, k * sizeof *a);
        if (!a) {
            if (!c->st) c->st = nb__thread_fail(NB_ERR_NOMEM, "out of memory");
            return false;
        }
        *arr = a;
        *cap = k;
    }
    (*arr)[(*n)++] = p;
    return true;
}

Onnx__NodeProto *ow_node(ow_ctx *c, const char *op_type, const char *const *in, int n_in,
                         const char *out)
{
    Onnx__NodeProto *p = ow_alloc(c, sizeof *p);
    char **ins = ow_alloc(c, (size_t)n_in * sizeof *ins);
    char **outs = ow_alloc(c, sizeof *outs);
    if (!p || !ins || !outs) return NULL;
    onnx__node_proto__init(p);
    for (int i = 0; i < n_in; i++) ins[i] = ow_str(c, in[i] ? in[i] : "");
    outs[0] = ow_str(c, out);
    p->n_input = (size_t)n_in;
    p->input = ins;
    p->n_output = 1;
    p->output = outs;
    p->op_type = ow_str(c, op_type);
    p->name = ow_str(c, out);
    if (!push(c, (void ***)&c->nodes, &c->n_nodes, &c->cap_nodes, p)) return NULL;
    return c->st ? NULL : p;
}

static Onnx__AttributeProto *new_attr(ow_ctx *c, Onnx__NodeProto *p, const char *name,
                                      Onnx__AttributeProto__AttributeType type)
{
    if (!p) return NULL;
    Onnx__AttributeProto *a = ow_alloc(c, sizeof *a);
    Onnx__AttributeProto **arr = ow_alloc(c, (p->n_attribute + 1) * sizeof *arr);
    if (!a || !arr) return NULL;
    onnx__attribute_proto__init(a);
    a->name = ow_str(c, name);
    a->has_type = 1;
    a->type = type;
    if (p->n_attribute) memcpy(arr, p->attribute, p->n_attribute * sizeof *arr);
    arr[p->n_attribute++] = a;
    p->attribute = arr;
    return a;
}

void ow_attr_int(ow_ctx *c, Onnx__NodeProto *p, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = new_attr(c, p, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) a->has_i = 1, a->i = v;
}

void ow_attr_float(ow_ctx *c, Onnx__NodeProto *p, const char *name, double v)
{
    Onnx__AttributeProto *a = new_attr(c, p, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) a->has_f = 1, a->f = (float)v;
}

void ow_attr_ints(ow_ctx *c, Onnx__NodeProto *p, const char *name, const int64_t *v, int n)
{
    Onnx__AttributeProto *a = new_attr(c, p, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *ints = a ? ow_alloc(c, (size_t)n * sizeof *ints) : NULL;
    if (!ints) return;
    memcpy(ints, v, (size_t)n * sizeof *ints);
    a->n_ints = (size_t)n;
    a->ints = ints;
}

static int onnx_type(nb_dtype dt)
{
    return dt == NB_F64 ? ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE
         : dt == NB_I32 ? ONNX__TENSOR_PROTO__DATA_TYPE__INT32 : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
}

/* An initializer holding `bytes` of data (not copied: it outlives the packing). */
static bool add_init(ow_ctx *c, const char *name, int type, int rank, const int64_t *shape,
                     const void *data, size_t bytes)
{
    Onnx__TensorProto *t = ow_alloc(c, sizeof *t);
    int64_t *dims = ow_alloc(c, (size_t)rank * sizeof *dims);
    if (!t || !dims) return false;
    onnx__tensor_proto__init(t);
    if (rank) memcpy(dims, shape, (size_t)rank * sizeof *dims);
    t->n_dims = (size_t)rank;
    t->dims = dims;
    t->has_data_type = 1;
    t->data_type = type;
    t->name = ow_str(c, name);
    t->has_raw_data = 1;
    t->raw_data.len = bytes;
    t->raw_data.data = (uint8_t *)data;
    return push(c, (void ***)&c->inits, &c->n_inits, &c->cap_inits, t);
}

static bool add_tensor(ow_ctx *c, const char *name, const nb_tensor *v)
{
    return add_init(c, name, onnx_type(v->dtype), v->rank, v->shape, v->data,
                    nb_tensor_numel(v) * nb_dtype_size(v->dtype));
}

const char *ow_const_i64(ow_ctx *c, const char *what, const int64_t *v, int n)
{
    const char *name = ow_aux(c, what);
    int64_t *data = ow_alloc(c, (size_t)n * sizeof *data);
    if (!name || !data) return NULL;
    memcpy(data, v, (size_t)n * sizeof *data);
    int64_t shape[1] = {n};
    return add_init(c, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, shape, data,
                    (size_t)n * sizeof *data) ? name : NULL;
}

const char *ow_const_scalar(ow_ctx *c, const char *what, double v, nb_dtype dt)
{
    const char *name = ow_aux(c, what);
    double *data = ow_alloc(c, sizeof *data);
    if (!name || !data) return NULL;
    if (dt == NB_F32) *(float *)data = (float)v;
    else *data = v;
    return add_init(c, name, onnx_type(dt), 0, NULL, data, nb_dtype_size(dt)) ? name : NULL;
}

nb_status ow_unsupported(ow_ctx *c, const char *fmt, ...)
{
    char what[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return c->st = nb__thread_fail(NB_ERR_FORMAT, "node '%s' (%s): unsupported %s", nb_node_name(c->node),
                                   nb_node_op(c->node), what);
}

/* A value's type and shape, free dimensions as dim_param. */
static Onnx__ValueInfoProto *value_info(ow_ctx *c, const nb_node *n)
{
    const nb_graph *g = nb_model_graph(c->m);
    Onnx__ValueInfoProto *v = ow_alloc(c, sizeof *v);
    Onnx__TypeProto *tp = ow_alloc(c, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = ow_alloc(c, sizeof *tt);
    Onnx__TensorShapeProto *sp = ow_alloc(c, sizeof *sp);
    int rank = nb_node_rank(n);
    Onnx__TensorShapeProto__Dimension **dims = ow_alloc(c, (size_t)rank * sizeof *dims);
    if (!v || !tp || !tt || !sp || !dims) return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sp);
    for (int a = 0; a < rank; a++) {
        Onnx__TensorShapeProto__Dimension *d = dims[a] = ow_alloc(c, sizeof *d);
        if (!d) return NULL;
        onnx__tensor_shape_proto__dimension__init(d);
        const char *sym = nb_node_dim_sym(g, n, a);
        if (sym) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = ow_str(c, sym);
        } else if (nb_node_dim(n, a) >= 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = nb_node_dim(n, a);
        }
    }
    sp->n_dim = (size_t)rank;
    sp->dim = dims;
    tt->has_elem_type = 1;
    /* i32 computed by an op is an index (argmax): ONNX's indices are int64 */
    bool index = nb_node_dtype(n) == NB_I32 && nb_node_kind_of(n) == NB_NODE_OP;
    tt->elem_type = index ? ONNX__TENSOR_PROTO__DATA_TYPE__INT64 : onnx_type(nb_node_dtype(n));
    tt->shape = sp;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    v->name = ow_str(c, nb_node_name(n));
    v->type = tp;
    return v;
}

/* needed[i]: node i is an output or an output depends on it. */
static bool *mark_needed(const nb_model *m)
{
    const nb_graph *g = nb_model_graph(m);
    size_t n = nb_graph_num_nodes(g);
    bool *need = nb_calloc(n ? n : 1, sizeof *need);
    if (!need) return NULL;
    for (size_t i = 0; i < nb_model_num_outputs(m); i++) {
        nb_node *o = nb_model_output(m, i);
        for (size_t k = 0; k < n; k++)
            if (nb_graph_node(g, k) == o) need[k] = true;
    }
    for (size_t k = n; k-- > 0;) {   /* inputs come before their users */
        if (!need[k]) continue;
        nb_node *x = nb_graph_node(g, k);
        for (int i = 0; i < nb_node_num_inputs(x); i++)
            for (size_t j = k; j-- > 0;)
                if (nb_graph_node(g, j) == nb_node_input(x, i)) {
                    need[j] = true;
                    break;
                }
    }
    return need;
}

static nb_status write_node(ow_ctx *c, nb_node *n, Onnx__GraphProto *gp)
{
    c->node = n;
    switch (nb_node_kind_of(n)) {
    case NB_NODE_INPUT:
        push(c, (void ***)&gp->input, &gp->n_input, &c->cap_inputs, value_info(c, n));
        break;
    case NB_NODE_PARAM: add_tensor(c, nb_node_name(n), nb_param_value(n)); break;
    case NB_NODE_CONST: add_tensor(c, nb_node_name(n), nb_constant_value(n)); break;
    case NB_NODE_OP: {
        const ow_op *op = ow_op_find(nb_node_op(n));
        if (!op) return ow_unsupported(c, "op (nabla's '%s' has no ONNX writer)", nb_node_op(n));
        nb_status st = op->fn(c, n);
        if (st && !c->st) c->st = st;
        break;
    }
    }
    return c->st;
}

static nb_status build_graph(ow_ctx *c, Onnx__GraphProto *gp)
{
    const nb_model *m = c->m;
    const nb_graph *g = nb_model_graph(m);
    bool *need = mark_needed(m);
    if (!need) return c->st = nb__thread_fail(NB_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < nb_graph_num_nodes(g) && !c->st; k++)
        if (need[k]) write_node(c, nb_graph_node(g, k), gp);
    nb_free(need);
    if (c->st) return c->st;
    size_t n_out = nb_model_num_outputs(m);
    gp->output = ow_alloc(c, n_out * sizeof *gp->output);
    for (size_t i = 0; i < n_out && gp->output; i++) gp->output[i] = value_info(c, nb_model_output(m, i));
    gp->n_output = n_out;
    gp->n_node = c->n_nodes;
    gp->node = c->nodes;
    gp->n_initializer = c->n_inits;
    gp->initializer = c->inits;
    gp->name = ow_str(c, *nb_model_name(m) ? nb_model_name(m) : "nabla");
    return c->st;
}

static nb_status pack_and_write(ow_ctx *c, Onnx__ModelProto *mp, const char *path)
{
    size_t len = onnx__model_proto__get_packed_size(mp);
    uint8_t *buf = nb_malloc(len ? len : 1);
    if (!buf) return nb__thread_fail(NB_ERR_NOMEM, "out of memory");
    onnx__model_proto__pack(mp, buf);
    nb_status st = nb_io_write_atomic(path, &(nb_io_chunk){buf, len}, 1, nb__thread_err(), NB_ERR_CAP);
    nb_free(buf);
    (void)c;
    return st;
}

nb_status nb_model_save_onnx(const nb_model *m, const char *path)
{
    if (!m || !path) return nb__thread_fail(NB_ERR_ARG, "nb_model_save_onnx: NULL model or path");
    ow_ctx c = {.m = m};
    Onnx__GraphProto gp;
    onnx__graph_proto__init(&gp);
    Onnx__OperatorSetIdProto opset;
    onnx__operator_set_id_proto__init(&opset);
    opset.domain = "";
    opset.has_version = 1;
    opset.version = OW_OPSET;
    Onnx__OperatorSetIdProto *opsets[1] = {&opset};
    Onnx__ModelProto mp;
    onnx__model_proto__init(&mp);
    mp.has_ir_version = 1;
    mp.ir_version = 8;
    mp.n_opset_import = 1;
    mp.opset_import = opsets;
    mp.producer_name = "nabla";
    mp.producer_version = (char *)nb_version();
    mp.graph = &gp;
    nb_status st = build_graph(&c, &gp);
    if (!st) st = pack_and_write(&c, &mp, path);
    nb_free(gp.input);
    nb_free(c.nodes);
    nb_free(c.inits);
    for (size_t i = 0; i < c.n_pool; i++) nb_free(c.pool[i]);
    nb_free(c.pool);
    return st;
}

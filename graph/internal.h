/* Internal structures shared by graph/ and ops/ (the graph's and the nodes'
 * insides). Not installed. src/ never includes this: it knows no graph and
 * has its own internal header, base.h (tests/test_layers.c checks it). */
#ifndef NABLA_INTERNAL_H
#define NABLA_INTERNAL_H

#include <stdarg.h>
#include <stdio.h>

#include "base.h"

struct nb_node {
    size_t id;                  /* index in the graph, = creation order */
    char *name;
    nb_node_kind kind;
    const nb_op_def *op;        /* NULL for inputs and params */
    nb_dtype dtype;
    nb_shape shape;             /* symbolic */
    int n_in;
    nb_node **in;
    nb_attr *attr;              /* op->n_attrs values */
    nb_tensor value;            /* params */
    nb_init init;
    double *init_values;        /* owned copy of init.values */
    char *group;
    bool is_grad;
    bool state;                 /* params: op-owned state made by nb_op (not trainable) */
    bool transient;             /* params: scratch that weights files leave out (opt.grads) */
    void *ext;                  /* host data of a built-in op (the optimizer's), nb_free'd */
};

struct nb_graph {
    nb_node **nodes;
    size_t n_nodes, cap;
    char *sym[NB_MAX_SYMS];
    int n_syms;
    nb_status status;
    char err[NB_ERR_CAP];
    uint64_t auto_name;         /* counter for automatic names */
    bool building_grad;         /* nodes made now are gradient nodes */
    nb_strmap names;            /* node name -> node (graph/names.c) */
    size_t value_bytes;         /* held by its params and constants (the memory limit's) */
};

/* The built-in op definitions, one per OP(x) of ops/oplist.h: built-in code
 * builds nodes by pointer, nb_apply(g, &nb_op_add, ...), so that a misspelt
 * op fails to compile and no node costs a search of the registry. */
#define OP(x) extern const nb_op_def nb_op_##x;
#include "../ops/oplist.h"
#undef OP

/* Why def cannot be an op (a field missing, a limit passed), or NULL when it
 * can: nb_op_register refuses such defs and nb_apply, which may be given an
 * unregistered one, too. */
const char *nb__op_problem(const nb_op_def *def);

/* Attribute i of op node n, i in the order of its op's attrs: gradient rules
 * read a node's attributes by the same named indices as its shape rule and
 * kernel (c->attr[i], k->attr[i]). */
static inline const nb_attr *nb__attr(const nb_node *n, int i) { return &n->attr[i]; }

/* Errors (rules of core.h). nb__fail records the first error on g (later ones
 * are dropped) and returns st. A call that is not a node builder starts with
 * nb__begin, which clears g's message so that its outcome is its own; a NULL
 * node handed to such a call goes through nb__missing, which keeps the
 * message of the failure that produced the NULL. */
nb_status nb__begin(nb_graph *g);
nb_status nb__missing(nb_graph *g, const char *what);
nb_status nb__fail(nb_graph *g, nb_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
nb_status nb__vfail(nb_graph *g, nb_status st, const char *fmt, va_list ap);
/* The name index (graph/names.c). */
nb_status nb__names_add(nb_graph *g, nb_node *n);
void nb__names_remove(nb_graph *g, const nb_node *n);
/* Index of the free dimension (symbol) called name in g, or -1 when g has
 * none of that name or name is NULL. */
int nb__sym_find(const nb_graph *g, const char *name);
/* Index of a symbol in g, adding it if new; -1 when the table is full. */
int nb__sym_index(nb_graph *g, const char *name);
/* Shape of a node with every symbol replaced by its bound value (ops/shape_rules.c). */
nb_status nb__bind_shape(const nb_graph *g, const nb_shape *s, const int64_t *sym_value,
                         nb_dims *out, char *err, size_t cap);
/* Runs an op's shape rule, symbolic or bound (ops/shape_rules.c). */
nb_status nb__infer(const nb_graph *g, const nb_node *n, const nb_shape *in, const nb_dtype *in_dt,
                    const int64_t *sym_value, nb_shape *out, nb_dtype *out_dt, char *err,
                    size_t cap);
/* Where grad_hook (ops/optim.c) finds the hook nb_optimize_hook set. */
typedef struct nb_grad_hook_slot {
    nb_grad_hook fn;
    void *user;
} nb_grad_hook_slot;

/* Are all n values (f32 or f64; other dtypes: true) finite? (graph/plan.c) */
bool nb__all_finite(nb_dtype dt, const void *data, size_t n);

/* How many steps of the plan's current layout write over a dying input (tests). */
int nb__plan_inplace_count(const nb_plan *p);

#endif

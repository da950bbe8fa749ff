/* What the reduction files (reduce.c, reduce_sum.c, reduce_more.c) share:
 * the `axis`/`keepdims` attributes, the shape rule, and a walker that visits
 * an input against its keepdims-shaped result. Internal to ops/. */
#ifndef NABLA_OPS_REDUCE_H
#define NABLA_OPS_REDUCE_H

#include "kernel.h"

enum { NB_RED_AXIS, NB_RED_KEEPDIMS };

/* axis (ints; absent: all axes) and keepdims (false). The default of axis
 * carries f = 1, which a given attribute never has, so that `axis: []` (given,
 * empty) is told apart from no axis and refused. */
extern const nb_attr_def nb_reduce_attrs[2];
#define NB_REDUCE_ALL_AXES {.name = "axis", .type = NB_ATTR_INTS, .n = 0, .f = 1}

/* Shape rule of a float reduction over `axis`, keeping size-1 axes with keepdims. */
nb_status nb_reduce_shape(nb_shape_ctx *c);
/* The keepdims form (reduced axes as 1) of a reduction of a tensor shaped `in`. */
nb_dims nb_reduce_keep(const nb_dims *in, const nb_attr *axis);
/* gy (shaped as reduction y's output) broadcast back over y's input: the
 * gradient of sum (mean: divided by the count). */
nb_node *nb_reduce_unreduce(nb_graph *g, nb_node *gy, nb_node *x, const nb_node *y, bool mean);

/* A node of reduction op over axes[0..n_axes) (n_axes 0: all), as nb_sum. */
nb_node *nb_reduce_node(nb_graph *g, const nb_op_def *op, nb_node *a, const int64_t *axes,
                        int n_axes, bool keepdims);

/* One walk of a big operand x against keepdims-shaped operands. */
typedef struct nb_red_walk {
    const void *x;   /* the big operand */
    void *y;         /* the keepdims-shaped operand */
    const void *z;   /* a second keepdims-shaped operand, read only */
    void *dx;        /* a second big operand */
    int64_t sy;      /* y's inner stride: 0 (reduced) or 1 */
    int64_t cols, row_stride;  /* reduce_sum.c's column sums: kept row length, x's row stride */
} nb_red_walk;
/* Calls row(w, offsets {x, y}, n) on every innermost row of x (shape xs),
 * with y's shape ys broadcast against it. */
void nb_reduce_walk(nb_red_walk *w, const nb_dims *xs, const nb_dims *ys,
                    void (*row)(void *, const int64_t *, int64_t));

#endif

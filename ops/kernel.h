/* Shared machinery for op files: broadcasting iteration, f32/f64 dispatch
 * and the usual shape rules. Internal to ops/. */
#ifndef NABLA_OPS_KERNEL_H
#define NABLA_OPS_KERNEL_H

#include <math.h>

#include "../graph/internal.h"

#define NB_NELEMS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Iteration of an output of shape `dim` over up to 4 operands whose element
 * strides (0 where broadcast) line up with it. Adjacent axes that are
 * contiguous for every operand are merged, so the innermost row is as long as
 * possible and the row kernels vectorise. */
#define NB_ITER_OPS 4  /* the output and up to 3 inputs (where) */
typedef struct nb_iter {
    int rank;       /* >= 1 after init */
    int n_ops;
    int64_t dim[NB_MAX_DIMS];
    int64_t stride[NB_ITER_OPS][NB_MAX_DIMS];
} nb_iter;

/* Operand shapes are right-aligned against out (NumPy broadcasting). */
void nb_iter_init(nb_iter *it, const nb_dims *out, int n_ops, const nb_dims *const *ops);
/* Calls row(ctx, offsets, n) for every innermost row; offsets are element
 * offsets of each operand's row start; the row's inner strides are
 * it->stride[k][it->rank - 1]. */
void nb_iter_rows(const nb_iter *it, void *ctx, void (*row)(void *ctx, const int64_t *off, int64_t n));
/* The same with the rows split over the plan's threads (along the first axis,
 * or a rank-1 row's elements), for elementwise work of some size; row must
 * write only its own row's outputs. */
void nb_iter_rows_parallel(const nb_kctx *k, const nb_iter *it, void *ctx,
                           void (*row)(void *ctx, const int64_t *off, int64_t n));
/* nb_kernel_parallel over n elements with the elementwise grain (parts of at
 * least 131072 elements). */
void nb_elementwise_parallel(const nb_kctx *k, int64_t n, nb_part_fn fn, void *arg);

/* Sums x (shape xs) into y, whose shape ys broadcasts to xs (zeroes y first). */
void nb_reduce_sum(const void *x, const nb_dims *xs, void *y, const nb_dims *ys, nb_dtype dt);

/* Shape rules */
nb_status nb_rule_same(nb_shape_ctx *c);       /* float, output = input 0 */
nb_status nb_rule_broadcast(nb_shape_ctx *c);  /* float, output = broadcast(in0, in1) */
nb_status nb_rule_like(nb_shape_ctx *c);       /* output = shape of the last input */

/* FLOP counts: one per output element, one per element of input 0, none. */
double nb_flops_per_out(const nb_kctx *k);
double nb_flops_per_in(const nb_kctx *k);
double nb_flops_none(const nb_kctx *k);
/* A gradient rule under which no gradient flows (piecewise constant ops). */
nb_status nb_grad_none(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx);

/* Reads element i of an input of dtype dt as double (f32/f64/i32). */
static inline double nb_load(const void *p, nb_dtype dt, size_t i)
{
    switch (dt) {
    case NB_F32: return ((const float *)p)[i];
    case NB_F64: return ((const double *)p)[i];
    case NB_I32: return ((const int32_t *)p)[i];
    }
    return 0;
}

#endif

/* ---- elementwise kernels from one expression for f32 and f64 ---------- */

typedef void (*nb_binrow)(const void *a, int64_t sa, const void *b, int64_t sb, void *y, int64_t n);
typedef void (*nb_unrow)(const void *x, void *y, int64_t n, double p0, double p1);

/* y = f(a, b) with broadcasting; rows picked by the output dtype. */
nb_status nb_binary_run(const nb_kctx *k, nb_binrow f32, nb_binrow f64);
/* y = f(x; p0, p1) elementwise on input 0. */
nb_status nb_unary_run(const nb_kctx *k, nb_unrow f32, nb_unrow f64, double p0, double p1);

#define NB_BINARY_ROW(FN, T, EXPR)                                                      \
    static void FN(const void *pa, int64_t sa, const void *pb, int64_t sb, void *py,   \
                   int64_t n)                                                           \
    {                                                                                   \
        const T *A = pa, *B = pb;                                                       \
        T *Y = py;                                                                      \
        if (sa == 1 && sb == 1) {                                                       \
            for (int64_t i = 0; i < n; i++) { T a = A[i], b = B[i]; Y[i] = (EXPR); }    \
        } else if (sa == 0 && sb == 1) {                                                \
            T a = A[0];                                                                 \
            for (int64_t i = 0; i < n; i++) { T b = B[i]; Y[i] = (EXPR); }              \
        } else if (sa == 1 && sb == 0) {                                                \
            T b = B[0];                                                                 \
            for (int64_t i = 0; i < n; i++) { T a = A[i]; Y[i] = (EXPR); }              \
        } else {                                                                        \
            for (int64_t i = 0; i < n; i++) {                                           \
                T a = A[i * sa], b = B[i * sb];                                         \
                Y[i] = (EXPR);                                                          \
            }                                                                           \
        }                                                                               \
    }
#define NB_BINARY_ROWS(NAME, EXPR) \
    NB_BINARY_ROW(NAME##_f32, float, EXPR) NB_BINARY_ROW(NAME##_f64, double, EXPR)

#define NB_UNARY_ROW(FN, T, EXPR)                                                   \
    static void FN(const void *px, void *py, int64_t n, double p0_, double p1_)     \
    {                                                                               \
        const T *X = px;                                                            \
        T *Y = py;                                                                  \
        const T p0 = (T)p0_, p1 = (T)p1_;                                           \
        (void)p0, (void)p1;                                                         \
        for (int64_t i = 0; i < n; i++) { T x = X[i]; Y[i] = (EXPR); }             \
    }
#define NB_UNARY_ROWS(NAME, EXPR) \
    NB_UNARY_ROW(NAME##_f32, float, EXPR) NB_UNARY_ROW(NAME##_f64, double, EXPR)

/* dropout(x; rate) and its gradient op
 *   dropout_backward(gy, x; rate, node)   gy * mask / (1 - rate)
 * In training mode an element is kept with probability 1 - rate and scaled by
 * 1 / (1 - rate); in eval mode both are the identity. The mask is never
 * stored: element i is dropped when nb_random_uniform(key, i) < rate, with the
 * key a pure function of the plan's seed and step and of the dropout node's
 * id. dropout_backward gets that id as its `node` attribute, so it draws the
 * same mask in the same run. It is linear in gy, so its own gradient is itself;
 * x only gives the shape. */
#include <string.h>

#include "kernel.h"

enum { A_RATE, A_NODE };  /* dropout_attrs hold A_RATE alone; backward_attrs both */

static nb_status check_rate(nb_shape_ctx *c)
{
    double rate = c->attr[A_RATE].f;
    if (!(rate >= 0 && rate < 1))
        return nb_shape_fail(c, NB_ERR_ARG, "needs 0 <= rate < 1; got %g", rate);
    return NB_OK;
}

static nb_status dropout_shape(nb_shape_ctx *c)
{
    nb_status st = nb_rule_same(c);
    return st ? st : check_rate(c);
}

/* gy and x: float, equal shapes; the mask's node id must be one */
static nb_status backward_shape(nb_shape_ctx *c)
{
    nb_status st = nb_shape_float_inputs(c);
    if (!st) st = check_rate(c);
    if (st) return st;
    if (!nb_shape_eq(&c->in[0], &c->in[1]))
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs gy and x of equal shapes; %s, %s",
                             nb_shape_desc(c, 0), nb_shape_desc(c, 1));
    if (c->attr[A_NODE].i[0] < 0)
        return nb_shape_fail(c, NB_ERR_ARG, "needs a node id >= 0; got %lld",
                             (long long)c->attr[A_NODE].i[0]);
    c->out = c->in[0];
    return NB_OK;
}

/* ---- kernels ---- */

/* Elements [first, first + n) of the mask applied to x and y at those elements. */
#define DROP_KERNEL(T)                                                                    \
    static void drop_##T(const T *x, T *y, size_t first, size_t n, uint64_t key, double rate) \
    {                                                                                     \
        const T scale = (T)(1 / (1 - rate));                                              \
        for (size_t i = 0; i < n; i++) { /* x loaded on both paths: a select, no branch */   \
            T v = x[i] * scale;                                                           \
            y[i] = nb_random_uniform(key, first + i) < rate ? 0 : v;                      \
        }                                                                                 \
    }
DROP_KERNEL(float)
DROP_KERNEL(double)

typedef struct drop_job {
    const nb_kctx *k;
    const void *x;
    uint64_t key;
} drop_job;

/* The mask is a function of the element's index: any split gives the same bits. */
static void drop_part(void *arg, int64_t lo, int64_t hi, int part)
{
    const drop_job *j = arg;
    double rate = j->k->attr[A_RATE].f;
    size_t n = (size_t)(hi - lo), first = (size_t)lo;
    (void)part;
    if (j->k->dtype == NB_F64)
        drop_double((const double *)j->x + lo, (double *)j->k->out + lo, first, n, j->key, rate);
    else
        drop_float((const float *)j->x + lo, (float *)j->k->out + lo, first, n, j->key, rate);
}

/* y = mask(stream) * x / (1 - rate) while training, else a copy of x */
static nb_status drop(const nb_kctx *k, const void *x, uint64_t stream)
{
    size_t n = nb_dims_numel(&k->out_shape);
    if (!k->training) {
        if (k->out != x) memcpy(k->out, x, n * nb_dtype_size(k->dtype));  /* else in place */
        return NB_OK;
    }
    drop_job j = {k, x, nb_random_key(k->seed, k->step, stream)};
    nb_elementwise_parallel(k, (int64_t)n, drop_part, &j);
    return NB_OK;
}

static nb_status dropout_fwd(const nb_kctx *k) { return drop(k, k->in[0], k->node->id); }

static nb_status dropout_backward_fwd(const nb_kctx *k)
{
    return drop(k, k->in[0], (uint64_t)k->attr[A_NODE].i[0]);
}

/* ---- gradients ---- */

static nb_node *masked(nb_graph *g, nb_node *gy, nb_node *x, double rate, int64_t node)
{
    nb_attr a[2] = {NB_AFLOAT("rate", rate), NB_AINT("node", node)};
    return nb_apply(g, &nb_op_dropout_backward, NULL, (nb_node *[]){gy, x}, 2, a, 2);
}

static nb_status dropout_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    gx[0] = masked(g, gy, nb_node_input(y, 0), nb__attr(y, A_RATE)->f, (int64_t)y->id);
    return NB_OK;
}

static nb_status dropout_backward_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs,
                                      nb_node **gx)
{
    (void)needs;
    gx[0] = masked(g, gy, nb_node_input(y, 1), nb__attr(y, A_RATE)->f, nb__attr(y, A_NODE)->i[0]);
    return NB_OK;
}

/* ---- definitions ---- */

static const nb_attr_def dropout_attrs[] = {{"rate", NB_ATTR_FLOAT, true, {0}}};
static const nb_attr_def backward_attrs[] = {{"rate", NB_ATTR_FLOAT, true, {0}},
                                             {"node", NB_ATTR_INT, true, {0}}};

static const nb_op_case dropout_cases[] = {
    {.in = {"3,4"}, .attrs = {NB_AFLOAT("rate", 0.5)}, .n_attrs = 1},
    {.in = {"2,1,3"}, .attrs = {NB_AFLOAT("rate", 0)}, .n_attrs = 1},
    {.in = {""}, .attrs = {NB_AFLOAT("rate", 0.2)}, .n_attrs = 1},
};
static const nb_op_case backward_cases[] = {
    {.in = {"3,4", "3,4"}, .attrs = {NB_AFLOAT("rate", 0.3), NB_AINT("node", 7)}, .n_attrs = 2},
    {.in = {"", ""}, .attrs = {NB_AFLOAT("rate", 0.9), NB_AINT("node", 0)}, .n_attrs = 2},
};

const nb_op_def nb_op_dropout = {
    .name = "dropout", .min_in = 1, .max_in = 1, .attrs = dropout_attrs, .n_attrs = 1,
    .flags = NB_OP_INPLACE, .shape = dropout_shape, .forward = dropout_fwd, .backward = dropout_bwd,
    .flops = nb_flops_per_out, .cases = dropout_cases, .n_cases = NB_NELEMS(dropout_cases),
    .doc = "training: x with elements zeroed at rate, the rest scaled by 1/(1-rate); eval: x"};
const nb_op_def nb_op_dropout_backward = {
    .name = "dropout_backward", .min_in = 2, .max_in = 2, .attrs = backward_attrs, .n_attrs = 2,
    .flags = NB_OP_INTERNAL | NB_OP_INPLACE, .shape_only = 2, .no_grad = 2,
    .shape = backward_shape, .forward = dropout_backward_fwd, .backward = dropout_backward_bwd, .flops = nb_flops_per_out,
    .cases = backward_cases, .n_cases = NB_NELEMS(backward_cases),
    .doc = "gradient of dropout: gy through the mask of dropout node `node`, scaled by 1/(1-rate)"};

nb_node *nb_dropout(nb_graph *g, nb_node *x, double rate)
{
    return nb_apply(g, &nb_op_dropout, NULL, (nb_node *[]){x}, 1,
                    (nb_attr[]){NB_AFLOAT("rate", rate)}, 1);
}

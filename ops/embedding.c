/* embedding(ids, table): rows of table [V, D] picked by i32 ids [...], giving
 * [..., D] (torch.nn.functional.embedding). Its gradient op,
 *   embedding_backward(gy, ids, table)   the rows of gy [..., D] added into a
 *                                         zero [V, D] at their ids (repeated
 *                                         ids sum),
 * is linear in gy, and its own gradient is embedding(ids, G): the two are each
 * other's gradient, so any order works. The ids get no gradient. An id
 * outside [0, V) fails the run, naming the node, the ids input and the
 * id's index. */
#include <string.h>

#include "kernel.h"

/* ids il (i32, any rank below NB_MAX_DIMS) and table il + 1 (float [V, D]) */
static nb_status check_inputs(nb_shape_ctx *c, int il)
{
    const nb_shape *ids = &c->in[il], *tab = &c->in[il + 1];
    if (c->in_dtype[il] != NB_I32 || c->in_dtype[il + 1] == NB_I32 || tab->rank != 2 ||
        ids->rank >= NB_MAX_DIMS)
        return nb_shape_fail(c, NB_ERR_SHAPE,
                             "needs i32 ids [...] (rank below %d) and a float table [V, D]; "
                             "%s (%s), %s (%s)", NB_MAX_DIMS, nb_shape_desc(c, il),
                             nb_dtype_name(c->in_dtype[il]), nb_shape_desc(c, il + 1),
                             nb_dtype_name(c->in_dtype[il + 1]));
    return NB_OK;
}

static nb_status embedding_shape(nb_shape_ctx *c)
{
    nb_status st = check_inputs(c, 0);
    if (st) return st;
    c->out = c->in[0];
    c->out.d[c->out.rank++] = c->in[1].d[1];
    c->out_dtype = c->in_dtype[1];
    return NB_OK;
}

/* gy [..., D] as embedding's output; the result has the table's shape */
static nb_status embedding_backward_shape(nb_shape_ctx *c)
{
    nb_status st = check_inputs(c, 1);
    if (st) return st;
    nb_shape want = c->in[1];
    want.d[want.rank++] = c->in[2].d[1];
    st = nb_shape_expect(c, 0, &want, "gy");
    if (!st && c->in_dtype[0] != c->in_dtype[2])
        st = nb_shape_fail(c, NB_ERR_DTYPE, "mixes %s gy and a %s table",
                           nb_dtype_name(c->in_dtype[0]), nb_dtype_name(c->in_dtype[2]));
    c->out = c->in[2];
    c->out_dtype = c->in_dtype[2];
    return st;
}

/* Every id in [0, V); the message gives the id's index in the ids tensor. */
static nb_status check_ids(const nb_kctx *k, int il, int64_t V)
{
    const int32_t *ids = k->in[il];
    const nb_dims *s = &k->in_shape[il];
    size_t n = nb_dims_numel(s);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= 0 && ids[i] < V) continue;
        int64_t idx[NB_MAX_DIMS];
        size_t rest = i;
        for (int a = s->rank - 1; a >= 0; a--) {
            idx[a] = (int64_t)(rest % (size_t)s->d[a]);
            rest /= (size_t)s->d[a];
        }
        char at[NB_MAX_DIMS * 24 + 1] = "";
        for (int a = 0, w = 0; a < s->rank; a++)
            w += snprintf(at + w, sizeof at - (size_t)w, "%s%lld", a ? ", " : "", (long long)idx[a]);
        return nb_kernel_fail(k, "ids '%s' at [%s]: id %d is outside [0, %lld)",
                              nb_node_name(nb_node_input(k->node, il)), at, (int)ids[i],
                              (long long)V);
    }
    return NB_OK;
}

static nb_status embedding_fwd(const nb_kctx *k)
{
    int64_t V = k->in_shape[1].d[0], D = k->in_shape[1].d[1];
    nb_status st = check_ids(k, 0, V);
    if (st) return st;
    const int32_t *ids = k->in[0];
    size_t n = nb_dims_numel(&k->in_shape[0]), row = (size_t)D * nb_dtype_size(k->dtype);
    for (size_t i = 0; i < n; i++)
        memcpy((char *)k->out + i * row, (const char *)k->in[1] + (size_t)ids[i] * row, row);
    return NB_OK;
}

#define SCATTER(T)                                                                       \
    static void scatter_##T(const T *gy, const int32_t *ids, size_t n, int64_t D, T *out) \
    {                                                                                    \
        for (size_t i = 0; i < n; i++, gy += D) {                                        \
            T *o = out + (size_t)ids[i] * (size_t)D;                                     \
            for (int64_t j = 0; j < D; j++) o[j] += gy[j];                               \
        }                                                                                \
    }
SCATTER(float)
SCATTER(double)

static nb_status embedding_backward_fwd(const nb_kctx *k)
{
    int64_t V = k->in_shape[2].d[0], D = k->in_shape[2].d[1];
    nb_status st = check_ids(k, 1, V);
    if (st) return st;
    size_t n = nb_dims_numel(&k->in_shape[1]);
    memset(k->out, 0, nb_dims_numel(&k->out_shape) * nb_dtype_size(k->dtype));
    if (k->dtype == NB_F64)
        scatter_double(k->in[0], k->in[1], n, D, k->out);
    else
        scatter_float(k->in[0], k->in[1], n, D, k->out);
    return NB_OK;
}

static nb_status embedding_bwd(nb_graph *g, nb_node *y, nb_node *gy, uint64_t needs, nb_node **gx)
{
    (void)needs;
    nb_node *in[3] = {gy, nb_node_input(y, 0), nb_node_input(y, 1)};
    gx[1] = nb_apply(g, &nb_op_embedding_backward, NULL, in, 3, NULL, 0);
    return NB_OK;
}

static nb_status embedding_backward_bwd(nb_graph *g, nb_node *y, nb_node *G, uint64_t needs,
                                        nb_node **gx)
{
    (void)needs;
    gx[0] = nb_embedding(g, nb_node_input(y, 1), G);
    return NB_OK;
}

static const nb_op_case embedding_cases[] = {
    {.in = {"i32:2,3", "5,4"}, .classes = 5},
    {.in = {"i32:7", "3,2"}, .classes = 3},   /* ids repeat */
    {.in = {"i32:", "4,3"}, .classes = 4},    /* one id: [D] */
    {.in = {"i32:2,1,2", "1,5"}, .classes = 1},
};
static const nb_op_case embedding_backward_cases[] = {
    {.in = {"2,3,4", "i32:2,3", "5,4"}, .classes = 5},
    {.in = {"6,2", "i32:6", "3,2"}, .classes = 3},
};

static double copy_flops(const nb_kctx *k) { return (double)nb_dims_numel(&k->in_shape[0]); }

const nb_op_def nb_op_embedding = {
    .name = "embedding", .min_in = 2, .max_in = 2, .no_grad = 1, .shape = embedding_shape,
    .forward = embedding_fwd, .backward = embedding_bwd, .flops = nb_flops_none,
    .cases = embedding_cases, .n_cases = NB_NELEMS(embedding_cases),
    .doc = "rows of table [V, D] at i32 ids [...]: [..., D]"};
const nb_op_def nb_op_embedding_backward = {
    .name = "embedding_backward", .min_in = 3, .max_in = 3, .flags = NB_OP_INTERNAL,
    .shape_only = 4, .no_grad = 6, .shape = embedding_backward_shape,
    .forward = embedding_backward_fwd, .backward = embedding_backward_bwd, .flops = copy_flops,
    .cases = embedding_backward_cases, .n_cases = NB_NELEMS(embedding_backward_cases),
    .doc = "gradient of embedding: gy's rows added into a [V, D] zero at their ids"};

nb_node *nb_embedding(nb_graph *g, nb_node *ids, nb_node *table)
{
    return nb_apply(g, &nb_op_embedding, NULL, (nb_node *[]){ids, table}, 2, NULL, 0);
}

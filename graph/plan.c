/* Plans: which nodes to run, bound shapes, one arena with buffers reused by
 * liveness (an elementwise op may write over an input that dies at its step),
 * and a prebuilt kernel context per step so that running allocates nothing.
 *
 * Memory is bounded whatever sizes a caller binds: a plan holds one arena,
 * sized to the largest binding seen so far, and a few layouts (shapes, arena
 * offsets and steps of one set of bound dimensions) that all lay out into it.
 * Binding a size whose layout is cached costs no allocation; binding another
 * builds its layout in a free slot or in place of the least recently bound
 * one. The arena grows (one allocation, at bind time) when a layout needs
 * more than it has; a layout's data pointers are refilled from its offsets
 * when it becomes current after the arena moved. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "place.h"
#include "profile.h"

#define ALIGN 64
#define NO_BUF SIZE_MAX

/* Layouts a plan keeps. A plan is mostly bound to one or two sizes (the
 * training batch, the smaller last batch of an epoch, an evaluation batch),
 * which a few slots cover without rebuilding, while a caller binding many
 * sizes in turn (a server with arbitrary request sizes) holds at most this
 * many layouts: memory stays bounded, and a size bound again after its
 * layout was evicted costs one layout build. */
#define PLAN_CACHE 4

typedef struct step {
    nb_node *node;
    size_t idx;              /* its plan node */
    nb_kctx k;
} step;

typedef struct param_ref {  /* a step input that reads a param's value */
    nb_kctx *k;
    int input;
    nb_node *param;
} param_ref;

/* The layout of one set of bound dimensions. It and its arrays are one block
 * of p->inst_bytes, a size that depends only on the plan's nodes, so the slot
 * of an evicted layout is rebuilt in place. */
typedef struct instance {
    bool valid;              /* false while being built or after a failed build */
    int64_t sym_value[NB_MAX_SYMS];
    uint64_t used;           /* p->clock at its last bind (the least recent is evicted) */
    uint64_t gen;            /* p->arena_gen its data pointers were filled for */
    nb_dims *shape;          /* per plan node */
    size_t *offset;          /* arena offset per plan node, NO_BUF if none */
    size_t *work_off, *work_size; /* workspace per plan node */
    size_t arena_bytes, intermediate_bytes;
    size_t live_bytes;       /* the most bytes live at one step (nb__live_peak) */
    int n_inplace;           /* nodes written over a dying input's buffer */
    step *steps;
    int n_steps;
    param_ref *params;
    int n_params;
    /* storage for the steps' input arrays (p->in_base gives each step's first) */
    const void **in_ptr;
    nb_dims *in_shape;
} instance;

/* A buffer of the arena and the steps during which it holds data. */

struct nb_plan {
    nb_graph *g;
    nb_node **out;
    int n_out;
    nb_node **nodes;         /* nodes whose shape is needed, in graph order */
    bool *runs;              /* ... and whose data is computed (per plan node) */
    int *local;              /* graph node id -> plan index, -1 if absent */
    size_t n_nodes, n_graph;
    /* made on the first bind: what does not depend on the bound sizes */
    size_t *in_base;         /* per plan node: first slot in the input arrays */
    nb_dtype *in_dtype;      /* per slot: the input's dtype */
    size_t n_slots;
    /* scratch of lay_out */
    int *last;               /* per plan node: its last reader, n for outputs */
    int *buf_of;             /* per plan node: its buffer */
    buf *bufs;               /* buffers (at most 2 per plan node: output, workspace) */
    nb_placer *placer;       /* place.c's scratch */
    size_t inst_bytes;       /* bytes of one layout (instance and its arrays) */
    instance *cache[PLAN_CACHE];
    int n_cache;
    uint64_t clock;          /* counts binds, for the least recently bound */
    char *arena;             /* shared by every layout, arena_cap bytes */
    size_t arena_cap;
    uint64_t arena_gen;      /* changes whenever the arena moves */
    instance *cur;
    bool training;           /* mode, seed and step, stamped on every step's kctx */
    uint64_t seed, step;
    nb_status status;        /* of the last call that can fail (core.h, rule 3) */
    char err[NB_ERR_CAP];
    nb__profile *prof;       /* per-node times (graph/profile.c), kept once made */
    nb__profile *timing;     /* = prof while profiling is on, else NULL */
    nb__workers *workers;    /* nb_plan_set_threads: NULL for one thread */
};

static nb_status plan_fail(nb_plan *p, nb_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static nb_status plan_fail(nb_plan *p, nb_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
    p->status = st;
    return st;
}

/* Every public call that can fail starts here: its outcome is its own. */
static void plan_begin(nb_plan *p)
{
    p->status = NB_OK;
    p->err[0] = 0;
}

/* A failure whose message is already in p->err (a shape rule's, a kernel's). */
static nb_status plan_failed(nb_plan *p, nb_status st)
{
    if (!p->err[0]) return plan_fail(p, st, "%s", nb_status_str(st));
    p->status = st;
    return st;
}

const char *nb_plan_error(const nb_plan *p) { return p ? p->err : "no plan"; }
nb_status nb_plan_status(const nb_plan *p) { return p ? p->status : NB_ERR_ARG; }

static int local_of(const nb_plan *p, const nb_node *n)
{
    return n && n->id < p->n_graph ? p->local[n->id] : -1;
}

static bool is_view(const nb_node *n) { return n->op && (n->op->flags & NB_OP_VIEW); }

static bool reads_data(const nb_node *n, int i) { return !nb_needs_grad(n->op->shape_only, i); }

/* ---- which nodes ------------------------------------------------------ */

/* shape[i]: the plan needs node i's shape; run[i]: ... and its data */
static void mark_needed(nb_plan *p, bool *shape, bool *run)
{
    for (int k = 0; k < p->n_out; k++) shape[p->out[k]->id] = run[p->out[k]->id] = true;
    for (size_t i = p->n_graph; i-- > 0;) {
        const nb_node *n = p->g->nodes[i];
        if (!shape[i] || !n->op) continue;
        for (int j = 0; j < n->n_in; j++) {
            shape[n->in[j]->id] = true;
            if (run[i] && reads_data(n, j)) run[n->in[j]->id] = true;
        }
    }
}

nb_status nb_plan_new(nb_graph *g, nb_node *const *outputs, int n_outputs, nb_plan **out)
{
    if (out) *out = NULL;
    if (!g) return NB_ERR_ARG;
    for (int k = 0; outputs && k < n_outputs; k++)
        if (!outputs[k]) return nb__missing(g, "a plan output");
    nb__begin(g);
    if (!out) return nb__fail(g, NB_ERR_ARG, "no place given for the plan");
    if (n_outputs < 1 || !outputs) return nb__fail(g, NB_ERR_ARG, "a plan needs at least one output");
    for (int k = 0; k < n_outputs; k++)
        if (outputs[k]->id >= g->n_nodes || g->nodes[outputs[k]->id] != outputs[k])
            return nb__fail(g, NB_ERR_ARG, "plan output %d ('%s') is not a node of this graph", k,
                            outputs[k]->name);
    nb_plan *p = nb_calloc(1, sizeof *p);
    bool *shape = nb_calloc(g->n_nodes, sizeof *shape), *run = nb_calloc(g->n_nodes, sizeof *run);
    if (!p || !shape || !run) goto nomem;
    p->g = g;
    p->n_graph = g->n_nodes;
    p->n_out = n_outputs;
    if (!(p->out = nb_malloc((size_t)n_outputs * sizeof *p->out))) goto nomem;
    memcpy(p->out, outputs, (size_t)n_outputs * sizeof *p->out);
    mark_needed(p, shape, run);
    for (size_t i = 0; i < g->n_nodes; i++) p->n_nodes += shape[i];
    p->nodes = nb_malloc(p->n_nodes * sizeof *p->nodes);
    p->runs = nb_malloc(p->n_nodes * sizeof *p->runs);
    p->local = nb_malloc(g->n_nodes * sizeof *p->local);
    if (!p->nodes || !p->runs || !p->local) goto nomem;
    size_t m = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        p->local[i] = shape[i] ? (int)m : -1;
        if (shape[i]) {
            p->runs[m] = run[i];
            p->nodes[m++] = g->nodes[i];
        }
    }
    nb_free(shape);
    nb_free(run);
    *out = p;
    return NB_OK;
nomem:
    nb_free(shape);
    nb_free(run);
    nb_plan_free(p);
    return nb__fail(g, NB_ERR_NOMEM, "out of memory");
}

void nb_plan_free(nb_plan *p)
{
    if (!p) return;
    for (int s = 0; s < p->n_cache; s++) nb_free(p->cache[s]);
    nb_free(p->arena);
    nb_free(p->in_base);
    nb_free(p->in_dtype);
    nb_free(p->last);
    nb_free(p->buf_of);
    nb_free(p->bufs);
    nb__placer_free(p->placer);
    nb_free(p->out);
    nb_free(p->nodes);
    nb_free(p->runs);
    nb_free(p->local);
    nb__profile_free(p->prof);
    nb__workers_free(p->workers);
    nb_free(p);
}

/* ---- shapes ------------------------------------------------------------ */

static nb_shape to_shape(const nb_dims *d)
{
    nb_shape s;
    s.rank = d->rank;
    for (int i = 0; i < d->rank; i++) s.d[i] = nb_sdim_const(d->d[i]);
    return s;
}

static nb_status bind_shapes(nb_plan *p, instance *in)
{
    const nb_graph *g = p->g;
    for (size_t i = 0; i < p->n_nodes; i++) {
        const nb_node *n = p->nodes[i];
        nb_status st;
        if (!n->op) {
            char why[256];
            st = nb__bind_shape(g, &n->shape, in->sym_value, &in->shape[i], why, sizeof why);
            if (st) return plan_fail(p, st, "input '%s': %s", n->name, why);
        } else {
            nb_shape ins[NB_MAX_INPUTS], out;
            nb_dtype dts[NB_MAX_INPUTS], dt;
            if (n->n_in > NB_MAX_INPUTS) return plan_fail(p, NB_ERR_ARITY, "node '%s': too many inputs", n->name);
            for (int j = 0; j < n->n_in; j++) {
                ins[j] = to_shape(&in->shape[local_of(p, n->in[j])]);
                dts[j] = n->in[j]->dtype;
            }
            st = nb__infer(g, n, ins, dts, in->sym_value, &out, &dt, p->err, sizeof p->err);
            if (st) return st;
            in->shape[i].rank = out.rank;
            for (int j = 0; j < out.rank; j++) in->shape[i].d[j] = out.d[j].c;
        }
        size_t numel, bytes;
        st = nb_shape_numel(in->shape[i].rank, in->shape[i].d, &numel);
        if (st || __builtin_mul_overflow(numel, nb_dtype_size(n->dtype), &bytes) ||
            bytes > SIZE_MAX / 2)
            return plan_fail(p, NB_ERR_OVERFLOW, "node '%s': its size overflows with these bindings",
                             n->name);
    }
    return NB_OK;
}

/* ---- arena layout ------------------------------------------------------ */

/* Every buffer is known with the steps during which it holds data, so the
 * layout is offline: greedy by size (largest first, each at the lowest offset
 * clear of the buffers already placed that are live at the same time), which
 * mostly reaches the lower bound (the most bytes live at any one step). */

static size_t round_up(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

static size_t node_bytes(const nb_plan *p, const instance *in, size_t i)
{
    return nb_dims_numel(&in->shape[i]) * nb_dtype_size(p->nodes[i]->dtype);
}

/* The buffer a node's data lives in: views share their input's. */
static int root_of(const nb_plan *p, int i)
{
    while (is_view(p->nodes[i])) i = local_of(p, p->nodes[i]->in[0]);
    return i;
}

/* The kernel context of plan node i: shapes and dtypes now, data pointers
 * once the arena exists. */
static void fill_kctx(nb_plan *p, instance *in, size_t i, nb_kctx *k)
{
    const nb_node *nd = p->nodes[i];
    size_t b = p->in_base[i];
    memset(k, 0, sizeof *k);
    k->node = nd;
    k->dtype = nd->dtype;
    k->n_in = nd->n_in;
    k->in = in->in_ptr + b;
    k->in_shape = in->in_shape + b;
    k->in_dtype = p->in_dtype + b;
    for (int j = 0; j < nd->n_in; j++) in->in_shape[b + (size_t)j] = in->shape[local_of(p, nd->in[j])];
    k->out_shape = in->shape[i];
    k->attr = nd->attr;
    k->err = p->err;
    k->err_cap = sizeof p->err;
    k->workers = p->workers;
}

static bool same_dims(const nb_dims *a, const nb_dims *b)
{
    return a->rank == b->rank && !memcmp(a->d, b->d, (size_t)a->rank * sizeof *a->d);
}

/* The node whose buffer node i may write its output into, or -1: with
 * NB_OP_INPLACE, the buffer of an input of the output's shape and dtype
 * whose last reader is node i and that is an intermediate (its root is
 * computed by an op: not a plan input or a param; outputs live to the end, so
 * never die here). Another input of the same buffer is a view of it with as
 * many elements, so it too is read at the index being written (a broadcast
 * input would have fewer). */
static int inplace_source(const nb_plan *p, const instance *in, size_t i)
{
    const nb_node *nd = p->nodes[i];
    if (!(nd->op->flags & NB_OP_INPLACE)) return -1;
    for (int j = 0; j < nd->n_in; j++) {
        if (!reads_data(nd, j)) continue;
        int l = local_of(p, nd->in[j]), r = root_of(p, l);
        if (p->last[r] != (int)i || !p->nodes[r]->op || p->buf_of[r] < 0) continue;
        if (nd->in[j]->dtype != nd->dtype || !same_dims(&in->shape[l], &in->shape[i])) continue;
        if (node_bytes(p, in, (size_t)r) != node_bytes(p, in, i)) continue;
        return r;
    }
    return -1;
}

static int new_buf(nb_plan *p, int *n_bufs, size_t size, int first, int last, int node, bool work)
{
    p->bufs[*n_bufs] = (buf){round_up(size ? size : 1), 0, first, last, node, work};
    return (*n_bufs)++;
}

/* The buffers and their lifetimes: inputs for the plan's life, outputs until
 * the end, other nodes until their last reader has run, a workspace for its
 * step; with `inplace`, a node that may run in place shares a dying input's
 * buffer, which then lives as long as that node. Returns how many. */
static int make_bufs(nb_plan *p, instance *in, bool inplace)
{
    int n = (int)p->n_nodes, n_bufs = 0;
    for (int i = 0; i < n; i++) {
        const nb_node *nd = p->nodes[i];
        p->buf_of[i] = -1;
        if (!p->runs[i]) continue;
        int end = p->last[i] < 0 ? i : p->last[i];
        if (nd->kind == NB_NODE_INPUT) {
            p->buf_of[i] = new_buf(p, &n_bufs, node_bytes(p, in, (size_t)i), 0, n, i, false);
            continue;
        }
        if (!nd->op) continue;
        if (!is_view(nd)) {
            int r = inplace ? inplace_source(p, in, (size_t)i) : -1;
            if (r >= 0) {
                p->buf_of[i] = p->buf_of[r];
                p->bufs[p->buf_of[i]].last = end;
            } else {
                p->buf_of[i] = new_buf(p, &n_bufs, node_bytes(p, in, (size_t)i), i, end, i, false);
            }
        }
        if (in->work_size[i]) new_buf(p, &n_bufs, in->work_size[i], i, i, i, true);
    }
    return n_bufs;
}

/* Every buffer side by side must fit a size_t (with room to spare): the
 * layout's offsets never exceed that sum, so no offset or arena size wraps,
 * however large each node is. */
static nb_status check_arena_bound(nb_plan *p, const instance *in)
{
    size_t sum = 0;
    for (size_t i = 0; i < p->n_nodes; i++) {
        const nb_node *nd = p->nodes[i];
        if (!p->runs[i] || !(nd->kind == NB_NODE_INPUT || nd->op)) continue;
        size_t own = is_view(nd) ? 0 : node_bytes(p, in, i);
        if (__builtin_add_overflow(sum, round_up(own), &sum) ||
            __builtin_add_overflow(sum, round_up(in->work_size[i]), &sum) || sum > SIZE_MAX / 2)
            return plan_fail(p, NB_ERR_OVERFLOW, "the plan's buffers overflow a 64-bit size "
                             "(at node '%s')", nd->name);
    }
    return NB_OK;
}

/* Offsets of every node and workspace. In place shares buffers, which never
 * raises the bytes live at a step, but the placement is a heuristic that now
 * and then does better without: both are laid out and the smaller arena wins,
 * in place on a tie. */
static nb_status lay_out(nb_plan *p, instance *in)
{
    size_t n = p->n_nodes;
    int *last = p->last;
    for (size_t i = 0; i < n; i++) {
        const nb_node *nd = p->nodes[i];
        last[i] = -1;
        if (!p->runs[i] || !nd->op) continue;
        for (int j = 0; j < nd->n_in; j++)
            if (reads_data(nd, j)) last[root_of(p, local_of(p, nd->in[j]))] = (int)i;
        if (!is_view(nd)) in->intermediate_bytes += round_up(node_bytes(p, in, i));
        nb_kctx k;
        fill_kctx(p, in, i, &k);
        if (nd->op->workspace) in->work_size[i] = nd->op->workspace(&k);
    }
    for (int k = 0; k < p->n_out; k++) last[root_of(p, local_of(p, p->out[k]))] = (int)n;
    nb_status st = check_arena_bound(p, in);
    if (st) return st;
    size_t apart = nb__place(p->placer, p->bufs, make_bufs(p, in, false));
    int n_bufs = make_bufs(p, in, true);
    in->arena_bytes = nb__place(p->placer, p->bufs, n_bufs);
    in->n_inplace = 0;
    if (in->arena_bytes > apart) {
        n_bufs = make_bufs(p, in, false);
        in->arena_bytes = nb__place(p->placer, p->bufs, n_bufs);
    }
    in->live_bytes = nb__live_peak(p->placer, p->bufs, n_bufs);
    for (int b = 0; b < n_bufs; b++)
        if (p->bufs[b].work) in->work_off[p->bufs[b].node] = p->bufs[b].off;
    for (size_t i = 0; i < n; i++) {
        int r = p->runs[i] ? root_of(p, (int)i) : -1;
        in->offset[i] = r >= 0 && p->buf_of[r] >= 0 ? p->bufs[p->buf_of[r]].off : NO_BUF;
        if (r == (int)i && p->buf_of[r] >= 0 && p->bufs[p->buf_of[r]].node != r) in->n_inplace++;
    }
    return NB_OK;
}

/* Leaves whose value is the node's own: params, and constants (read in
 * place, never copied into the arena). */
static bool holds_value(const nb_node *n) { return n->kind == NB_NODE_PARAM || n->kind == NB_NODE_CONST; }

/* Params live in their own buffers, never in the arena. That is what makes it
 * safe for a kernel to write its op's state inputs while training (batchnorm's
 * running statistics): nb_op makes state as params, so no liveness reuse can
 * hand that memory to another node, and nodes made after the writer (later in
 * the order) read the value it wrote in the same run. */
static const void *data_of(const nb_plan *p, const instance *in, int l)
{
    const nb_node *nd = p->nodes[root_of(p, l)];  /* a view of a param reads the param */
    if (holds_value(nd)) return nd->value.data;
    return in->offset[l] == NO_BUF ? NULL : p->arena + in->offset[l];
}

/* The steps of a layout: kernel contexts with shapes, and which inputs read
 * params. Data pointers come with point_steps. */
static void make_steps(nb_plan *p, instance *in)
{
    for (size_t i = 0; i < p->n_nodes; i++) {
        const nb_node *nd = p->nodes[i];
        if (!p->runs[i] || !nd->op) continue;
        step *s = &in->steps[in->n_steps++];
        s->node = p->nodes[i];
        s->idx = i;
        fill_kctx(p, in, i, &s->k);
        s->k.work_bytes = in->work_size[i];
        for (int j = 0; j < nd->n_in; j++) {
            nb_node *src = p->nodes[root_of(p, local_of(p, nd->in[j]))];
            if (holds_value(src)) in->params[in->n_params++] = (param_ref){&s->k, j, src};
        }
    }
}

/* Fills the steps' data pointers from the layout's offsets into the arena as
 * it is now. */
static void point_steps(nb_plan *p, instance *in)
{
    for (int s = 0; s < in->n_steps; s++) {
        step *st = &in->steps[s];
        const nb_node *nd = st->node;
        size_t i = st->idx;
        st->k.out = (void *)data_of(p, in, (int)i);
        st->k.work = in->work_size[i] ? p->arena + in->work_off[i] : NULL;
        for (int j = 0; j < nd->n_in; j++)
            in->in_ptr[p->in_base[i] + (size_t)j] =
                reads_data(nd, j) ? data_of(p, in, local_of(p, nd->in[j])) : NULL;
    }
    in->gen = p->arena_gen;
}

/* Lays out the arrays of a layout after its header in one block; returns the
 * block's size (base NULL: only the size). */
static size_t carve(const nb_plan *p, instance *in)
{
    size_t at = sizeof *in, a = _Alignof(max_align_t), n = p->n_nodes, m = p->n_slots + 1;
#define CARVE(field, count)                                                   \
    do {                                                                      \
        at = (at + a - 1) / a * a;                                            \
        if (in) in->field = (void *)((char *)in + at);                        \
        at += (count) * sizeof *in->field;                                    \
    } while (0)
    CARVE(shape, n);
    CARVE(offset, n);
    CARVE(work_off, n);
    CARVE(work_size, n);
    CARVE(steps, n);
    CARVE(params, m);
    CARVE(in_ptr, m);
    CARVE(in_shape, m);
#undef CARVE
    return at;
}

/* What the first bind makes: the parts of a layout that do not depend on
 * the bound sizes, and lay_out's scratch. */
static nb_status plan_ready(nb_plan *p)
{
    if (p->in_base) return NB_OK;
    size_t n = p->n_nodes, slots = 0;
    for (size_t i = 0; i < n; i++)
        if (p->nodes[i]->op) slots += (size_t)p->nodes[i]->n_in;
    size_t *base = nb_malloc(n * sizeof *base);
    nb_dtype *dt = nb_malloc((slots + 1) * sizeof *dt);
    if (!p->last) p->last = nb_malloc(n * sizeof *p->last);
    if (!p->buf_of) p->buf_of = nb_malloc(n * sizeof *p->buf_of);
    if (!p->bufs) p->bufs = nb_malloc((2 * n + 1) * sizeof *p->bufs);
    if (!p->placer) p->placer = nb__placer_new(2 * n + 1);
    if (!base || !dt || !p->last || !p->buf_of || !p->bufs || !p->placer) {
        nb_free(base), nb_free(dt);  /* the rest is freed with the plan */
        return plan_fail(p, NB_ERR_NOMEM, "out of memory");
    }
    slots = 0;
    for (size_t i = 0; i < n; i++) {
        base[i] = slots;
        for (int j = 0; p->nodes[i]->op && j < p->nodes[i]->n_in; j++)
            dt[slots++] = p->nodes[i]->in[j]->dtype;
    }
    p->in_base = base;
    p->in_dtype = dt;
    p->n_slots = slots;
    p->inst_bytes = carve(p, NULL);
    p->arena_gen = 1;  /* a new layout (gen 0) always gets its pointers */
    return NB_OK;
}

/* Makes the arena at least `need` bytes: a fresh block, as its contents are
 * dropped anyway (inputs are fed again after a bind). */
static nb_status grow_arena(nb_plan *p, size_t need)
{
    if (need <= p->arena_cap) return NB_OK;
    if (need > nb_memory_limit())
        return plan_fail(p, NB_ERR_NOMEM, "the plan needs an arena of %.3g GB, over the memory limit "
                         "of %.3g GB (nb_set_memory_limit; nabla --max-memory)", (double)need / 1e9,
                         (double)nb_memory_limit() / 1e9);
    char *a = nb_malloc(need);
    if (!a) return plan_fail(p, NB_ERR_NOMEM, "out of memory for an arena of %zu bytes", need);
    nb_free(p->arena);
    p->arena = a;
    p->arena_cap = need;
    p->arena_gen++;
    return NB_OK;
}

/* The slot for a new layout: a new one while fewer than PLAN_CACHE exist,
 * else one without a layout, else the least recently bound. */
static instance *free_slot(nb_plan *p)
{
    if (p->n_cache < PLAN_CACHE) {
        instance *in = nb_malloc(p->inst_bytes);
        if (in) p->cache[p->n_cache++] = in;
        return in;
    }
    instance *in = p->cache[0];
    for (int s = 1; s < p->n_cache && in->valid; s++)
        if (!p->cache[s]->valid || p->cache[s]->used < in->used) in = p->cache[s];
    return in;
}

/* Builds the layout of bound sizes v in a free slot, growing the arena to fit. */
static nb_status build_instance(nb_plan *p, const int64_t *v, instance **out)
{
    nb_status st = plan_ready(p);
    if (st) return st;
    instance *in = free_slot(p);
    if (!in) return plan_fail(p, NB_ERR_NOMEM, "out of memory");
    memset(in, 0, p->inst_bytes);
    carve(p, in);
    memcpy(in->sym_value, v, sizeof in->sym_value);
    if ((st = bind_shapes(p, in)) || (st = lay_out(p, in)) || (st = grow_arena(p, in->arena_bytes)))
        return st;  /* the slot stays without a layout */
    make_steps(p, in);
    in->valid = true;
    *out = in;
    return NB_OK;
}

nb_status nb_plan_bind(nb_plan *p, const nb_bind *binds, int n_binds)
{
    if (!p) return NB_ERR_ARG;
    plan_begin(p);
    if (n_binds > 0 && !binds) return plan_fail(p, NB_ERR_ARG, "no bindings given");
    int64_t v[NB_MAX_SYMS] = {0};
    for (int b = 0; b < n_binds; b++) {
        int k = nb__sym_find(p->g, binds[b].sym);
        if (!binds[b].sym) return plan_fail(p, NB_ERR_ARG, "binding %d names no dimension", b);
        if (k < 0)
            return plan_fail(p, NB_ERR_ARG, "the graph has no free dimension '%s'", binds[b].sym);
        if (binds[b].value < 1)
            return plan_fail(p, NB_ERR_ARG, "dimension '%s' bound to %lld; sizes must be >= 1",
                             binds[b].sym, (long long)binds[b].value);
        v[k] = binds[b].value;
    }
    instance *in = NULL;
    for (int s = 0; s < p->n_cache && !in; s++)
        if (p->cache[s]->valid && !memcmp(p->cache[s]->sym_value, v, sizeof v)) in = p->cache[s];
    if (!in) {
        p->cur = NULL;
        nb_status st = build_instance(p, v, &in);
        if (st) return plan_failed(p, st);
    }
    in->used = ++p->clock;
    if (in->gen != p->arena_gen) point_steps(p, in);
    p->cur = in;
    return NB_OK;
}

/* Binds with no free dimensions if nothing is bound yet. */
static nb_status ensure_bound(nb_plan *p)
{
    return p->cur ? NB_OK : nb_plan_bind(p, NULL, 0);
}

void *nb_plan_input_buffer(nb_plan *p, const nb_node *input)
{
    if (!p) return NULL;
    plan_begin(p);
    int l = local_of(p, input);
    if (l < 0 || input->kind != NB_NODE_INPUT) {
        plan_fail(p, NB_ERR_ARG, "'%s' is not an input of this plan", nb_node_name(input));
        return NULL;
    }
    if (ensure_bound(p)) return NULL;
    return p->cur->offset[l] == NO_BUF ? NULL : p->arena + p->cur->offset[l];
}

nb_status nb_plan_set(nb_plan *p, const nb_node *input, const void *data)
{
    if (!p) return NB_ERR_ARG;
    plan_begin(p);
    if (!input || input->kind != NB_NODE_INPUT)
        return plan_fail(p, NB_ERR_ARG, "'%s' is not an input", nb_node_name(input));
    nb_status st = ensure_bound(p);
    if (st) return st;
    int l = local_of(p, input);
    if (l < 0 || p->cur->offset[l] == NO_BUF) return NB_OK;  /* the plan does not read it */
    if (!data) return plan_fail(p, NB_ERR_ARG, "no data given for input '%s'", input->name);
    memcpy(p->arena + p->cur->offset[l], data, node_bytes(p, p->cur, (size_t)l));
    return NB_OK;
}

/* ---- modes and running ------------------------------------------------- */

nb_status nb_plan_set_training(nb_plan *p, bool training)
{
    if (!p) return NB_ERR_ARG;
    p->training = training;
    return NB_OK;
}

bool nb_plan_training(const nb_plan *p) { return p && p->training; }

nb_status nb_plan_set_threads(nb_plan *p, int n)
{
    if (!p) return NB_ERR_ARG;
    plan_begin(p);
    if (n < 1 || n > 256) return plan_fail(p, NB_ERR_ARG, "threads must be 1 to 256; got %d", n);
    if (n == nb_plan_threads(p)) return NB_OK;
    nb__workers *w = NULL;
    if (n > 1 && nb__workers_new(n, &w))
        return plan_fail(p, NB_ERR_RUNTIME, "cannot start %d threads", n - 1);
    nb__workers_free(p->workers);
    p->workers = w;
    for (int s = 0; s < p->n_cache; s++) p->cache[s]->valid = false;  /* workspaces per thread */
    p->cur = NULL;
    return NB_OK;
}

int nb_plan_threads(const nb_plan *p) { return p ? nb__workers_count(p->workers) : 1; }

void nb_plan_set_seed(nb_plan *p, uint64_t seed)
{
    if (!p) return;
    p->seed = seed;
    p->step = 0;
}

uint64_t nb_plan_step(const nb_plan *p) { return p ? p->step : 0; }

/* Before a run: where params live now (they may have been reallocated) and
 * the mode, seed and step every kernel sees. */
static void stamp(nb_plan *p, instance *in)
{
    for (int i = 0; i < in->n_params; i++)
        ((const void **)in->params[i].k->in)[in->params[i].input] = in->params[i].param->value.data;
    for (int i = 0; i < in->n_steps; i++) {
        nb_kctx *k = &in->steps[i].k;
        k->training = p->training;
        k->seed = p->seed;
        k->step = p->step;
    }
}

/* After a run (even a failed one, which may have drawn masks or updated
 * running statistics already): a training run uses up one step. */
static nb_status ran(nb_plan *p, nb_status st)
{
    if (p->training) p->step++;
    return st;
}

static nb_status run_step(nb_plan *p, const step *s)
{
    double t0 = p->timing ? nb__profile_clock() : 0;
    nb_status st = s->node->op->forward(&s->k);
    if (p->timing) nb__profile_add(p->timing, s->idx, nb__profile_clock() - t0);
    if (st && !p->err[0]) plan_fail(p, st, "node '%s': %s failed", s->node->name, s->node->op->name);
    else if (st) p->status = st;
    return st;
}

nb_status nb_plan_run(nb_plan *p)
{
    if (!p) return NB_ERR_ARG;
    plan_begin(p);
    nb_status st = ensure_bound(p);
    if (st) return st;
    instance *in = p->cur;
    stamp(p, in);
    for (int i = 0; i < in->n_steps; i++)
        if ((st = run_step(p, &in->steps[i]))) return ran(p, st);
    return ran(p, NB_OK);
}

/* ---- finding where values stop being finite ----------------------------- */

/* x - x is 0 for a finite x and NaN for NaN and inf, so the sum of x - x is
 * NaN when a value is not finite; summed in 16 lanes, without an early exit,
 * so that the loop vectorises (isfinite per element was 0.075 ms of the MLP's
 * 0.6 ms training step, in the trainer's check of the gradients). */
#define ALL_FINITE(T)                                                        \
    static bool all_finite_##T(const T *x, size_t n)                       \
    {                                                                        \
        T acc[16] = {0}, s = 0;                                              \
        size_t i = 0;                                                        \
        for (; i + 16 <= n; i += 16)                                         \
            for (int k = 0; k < 16; k++) acc[k] += x[i + k] - x[i + k];      \
        for (; i < n; i++) s += x[i] - x[i];                                 \
        for (int k = 0; k < 16; k++) s += acc[k];                            \
        return s == s;                                                       \
    }
ALL_FINITE(float)
ALL_FINITE(double)

bool nb__all_finite(nb_dtype dt, const void *data, size_t n)
{
    if (!data) return true;
    if (dt == NB_F32) return all_finite_float(data, n);
    if (dt == NB_F64) return all_finite_double(data, n);
    return true;
}

/* Leaves first: a NaN fed in is the user's, not a kernel's. */
static const nb_node *bad_leaf(const nb_plan *p, const instance *in)
{
    for (size_t i = 0; i < p->n_nodes; i++) {
        const nb_node *nd = p->nodes[i];
        if (!p->runs[i] || nd->op || nd->transient) continue;  /* scratch is written before read */
        if (!nb__all_finite(nd->dtype, data_of(p, in, (int)i), nb_dims_numel(&in->shape[i]))) return nd;
    }
    return NULL;
}

nb_status nb_plan_run_checked(nb_plan *p, const nb_node **first_bad)
{
    if (!p) return NB_ERR_ARG;
    plan_begin(p);
    if (!first_bad) return plan_fail(p, NB_ERR_ARG, "no place given for the first bad node");
    *first_bad = NULL;
    nb_status st = ensure_bound(p);
    if (st) return st;
    instance *in = p->cur;
    stamp(p, in);
    if ((*first_bad = bad_leaf(p, in))) return NB_OK;
    for (int i = 0; i < in->n_steps; i++) {
        const nb_kctx *k = &in->steps[i].k;
        if ((st = run_step(p, &in->steps[i]))) return ran(p, st);
        /* checked right away: the buffer may be reused by a later step */
        if (!nb__all_finite(k->dtype, k->out, nb_dims_numel(&k->out_shape))) {
            *first_bad = in->steps[i].node;
            return ran(p, NB_OK);
        }
    }
    return ran(p, NB_OK);
}

const void *nb_plan_get(const nb_plan *p, const nb_node *n)
{
    if (!p) return NULL;
    int l = local_of(p, n);
    return l < 0 || !p->cur || !p->runs[l] ? NULL : data_of(p, p->cur, l);
}

int nb_plan_shape(const nb_plan *p, const nb_node *n, int64_t *shape)
{
    if (!p || !shape) return -1;
    int l = local_of(p, n);
    if (l < 0 || !p->cur) return -1;
    memcpy(shape, p->cur->shape[l].d, (size_t)p->cur->shape[l].rank * sizeof *shape);
    return p->cur->shape[l].rank;
}

size_t nb_plan_arena_bytes(const nb_plan *p) { return p && p->cur ? p->cur->arena_bytes : 0; }

size_t nb_plan_memory_bytes(const nb_plan *p)
{
    if (!p) return 0;
    size_t n = p->n_nodes, bytes = sizeof *p + (size_t)p->n_out * sizeof *p->out +
                                   n * (sizeof *p->nodes + sizeof *p->runs) + p->n_graph * sizeof *p->local;
    if (p->in_base)
        bytes += n * (sizeof *p->in_base + sizeof *p->last + sizeof *p->buf_of) +
                 (2 * n + 1) * sizeof *p->bufs + nb__placer_bytes(2 * n + 1) +
                 (p->n_slots + 1) * sizeof *p->in_dtype;
    if (p->prof) bytes += sizeof *p->prof + p->prof->n * (sizeof *p->prof->seconds + sizeof *p->prof->runs);
    return bytes + (size_t)p->n_cache * p->inst_bytes + p->arena_cap;
}

size_t nb_plan_intermediate_bytes(const nb_plan *p) { return p && p->cur ? p->cur->intermediate_bytes : 0; }

size_t nb_plan_live_bytes(const nb_plan *p) { return p && p->cur ? p->cur->live_bytes : 0; }

/* ---- profiling (the totals live in graph/profile.c) ----------------------- */

nb_status nb_plan_set_profile(nb_plan *p, bool on)
{
    if (!p) return NB_ERR_ARG;
    if (!on) return p->timing = NULL, NB_OK;
    if (nb__profile_start(&p->prof, p->n_nodes)) return NB_ERR_NOMEM;
    p->timing = p->prof;
    return NB_OK;
}

bool nb_plan_profiling(const nb_plan *p) { return p && p->timing; }

size_t nb_plan_profile(const nb_plan *p, nb_node_profile *out, size_t cap)
{
    return p ? nb__profile_report(p->prof, p->nodes, p->runs, p->n_nodes, out, cap) : 0;
}

/* For tests: how many nodes of the current layout run in place. */
int nb__plan_inplace_count(const nb_plan *p) { return p && p->cur ? p->cur->n_inplace : 0; }

/* ---- FLOPs of one node, for summaries ----------------------------------- */

double nb_node_flops(const nb_graph *g, const nb_node *n, const nb_bind *binds, int n_binds)
{
    if (!g || !n) return -1;
    if (!n->op || !n->op->flops) return 0;
    int64_t v[NB_MAX_SYMS] = {0};
    for (int b = 0; b < n_binds; b++) {
        int k = nb__sym_find(g, binds[b].sym);
        if (k >= 0) v[k] = binds[b].value;
    }
    nb_dims shapes[NB_MAX_INPUTS];
    nb_dtype dts[NB_MAX_INPUTS];
    char err[256];
    nb_kctx k;
    memset(&k, 0, sizeof k);
    if (n->n_in > NB_MAX_INPUTS) return -1;
    for (int j = 0; j < n->n_in; j++) {
        if (nb__bind_shape(g, &n->in[j]->shape, v, &shapes[j], err, sizeof err)) return -1;
        dts[j] = n->in[j]->dtype;
    }
    if (nb__bind_shape(g, &n->shape, v, &k.out_shape, err, sizeof err)) return -1;
    /* a size that overflows with these bindings has no meaningful count */
    size_t numel;
    for (int j = 0; j < n->n_in; j++)
        if (nb_shape_numel(shapes[j].rank, shapes[j].d, &numel)) return -1;
    if (nb_shape_numel(k.out_shape.rank, k.out_shape.d, &numel)) return -1;
    k.node = n;
    k.dtype = n->dtype;
    k.n_in = n->n_in;
    k.in_shape = shapes;
    k.in_dtype = dts;
    k.attr = n->attr;
    return n->op->flops(&k);
}

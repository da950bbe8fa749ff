/* The ops of a training step after the gradients (built by nb_optimize in
 * graph/optim.c, never by model files):
 *   grad_store(g, flat[, after]; offset)          copies gradient g into flat
 *   grad_hook(flat, after)                        calls the user's gradient hook
 *   sgd_update(w, flat, after; lr, weight_decay, offset)
 *   momentum_update(...; + momentum)              state v
 *   adagrad_update(...; + eps)                    state s
 *   adam_update(w, flat, after, step; + beta1, beta2, eps)   state m, v
 *   opt_step(step, after)                         step += 1
 * Each writes a param in place (w, the flat gradient buffer, its state, the
 * step count: params live outside the plan's arena) and outputs a rank-0
 * dummy. That dummy is the `after` input of the next op of the chain, so that
 * planning the last one (opt_step) runs them all, in order, after every
 * forward and gradient node (they are made last). None has a gradient. */
#include <string.h>

#include "kernel.h"

#define SQRT(x) _Generic((x), float: sqrtf, default: sqrt)(x)

/* update attributes, in this order for every update op (each takes a prefix) */
enum { A_LR, A_WD, A_OFFSET, A_MOMENTUM, A_EPS = A_MOMENTUM, A_BETA1 = A_MOMENTUM, A_BETA2, A_ADAM_EPS };
enum { A_STORE_OFFSET };

typedef struct hyper {
    double lr, wd, momentum, eps, beta1, beta2;
} hyper;

#define NB_TEMPLATE "optim_t.h"
#include "template.h"

/* ---- shape rules ---- */

/* The output of every op here: a rank-0 dummy of input 0's dtype. */
static nb_status dummy_out(nb_shape_ctx *c)
{
    c->out = (nb_shape){.rank = 0};
    return NB_OK;
}

/* Input `flat` is a 1-D float buffer of input v's dtype holding [offset, offset + numel(v)). */
static nb_status slice_fits(nb_shape_ctx *c, int v, int flat, int64_t offset)
{
    nb_sdim n;
    const nb_shape *f = &c->in[flat];
    if (c->in_dtype[v] == NB_I32 || c->in_dtype[flat] != c->in_dtype[v])
        return nb_shape_fail(c, NB_ERR_DTYPE, "needs float inputs of one dtype");
    if (!nb_shape_numel_sym(&c->in[v], &n) || !nb_sdim_is_const(n) || f->rank != 1 ||
        !nb_sdim_is_const(f->d[0]) || offset < 0 || offset > f->d[0].c - n.c)
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs %s of fixed size within a 1-D %s at "
                             "offset %lld", nb_shape_desc(c, v), nb_shape_desc(c, flat),
                             (long long)offset);
    return dummy_out(c);
}

static nb_status store_shape(nb_shape_ctx *c) { return slice_fits(c, 0, 1, c->attr[A_STORE_OFFSET].i[0]); }
static nb_status update_shape(nb_shape_ctx *c) { return slice_fits(c, 0, 1, c->attr[A_OFFSET].i[0]); }

static nb_status step_shape(nb_shape_ctx *c)
{
    if (c->in[0].rank != 0 || c->in_dtype[0] != NB_F64)
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs an f64 scalar step count; %s", nb_shape_desc(c, 0));
    return dummy_out(c);
}

static nb_status adam_shape(nb_shape_ctx *c)
{
    if (c->in[3].rank != 0 || c->in_dtype[3] != NB_F64)
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs an f64 scalar step count; %s", nb_shape_desc(c, 3));
    return update_shape(c);
}

/* ---- kernels ---- */

static size_t numel0(const nb_kctx *k) { return nb_dims_numel(&k->in_shape[0]); }

/* The dummy output is written so that a plan's output stays defined. */
static nb_status done(const nb_kctx *k)
{
    memset(k->out, 0, nb_dtype_size(k->dtype));
    return NB_OK;
}

static nb_status store_fwd(const nb_kctx *k)
{
    size_t es = nb_dtype_size(k->in_dtype[0]);
    memcpy((char *)k->in[1] + (size_t)k->attr[A_STORE_OFFSET].i[0] * es, k->in[0], numel0(k) * es);
    return done(k);
}

static nb_status hook_fwd(const nb_kctx *k)
{
    const nb_grad_hook_slot *h = k->node->ext;
    if (h && h->fn) {
        nb_status st = h->fn(h->user, (void *)k->in[0], nb_dims_numel(&k->in_shape[0]), k->in_dtype[0]);
        if (st) return nb_kernel_fail(k, "the gradient hook failed (%s)", nb_status_str(st));
    }
    return done(k);
}

static hyper hyper_of(const nb_kctx *k, int n_attrs)
{
    const nb_attr *a = k->attr;
    hyper h = {a[A_LR].f, a[A_WD].f, 0, 0, 0, 0};
    if (n_attrs == 4) h.momentum = h.eps = a[A_MOMENTUM].f;
    if (n_attrs == 6) h.beta1 = a[A_BETA1].f, h.beta2 = a[A_BETA2].f, h.eps = a[A_ADAM_EPS].f;
    return h;
}

/* w, its gradient slice, and state input s (NULL for none) */
#define UPDATE_ARGS(k, type)                                                                  \
    (type *)k->in[0], (const type *)k->in[1] + k->attr[A_OFFSET].i[0], numel0(k)

static nb_status sgd_fwd(const nb_kctx *k)
{
    hyper h = hyper_of(k, 3);
    if (k->in_dtype[0] == NB_F64) sgd_f64(UPDATE_ARGS(k, double), &h);
    else sgd_f32(UPDATE_ARGS(k, float), &h);
    return done(k);
}

/* An update with one state tensor (input 3): momentum's velocity, adagrad's squares. */
typedef void (*one_state_f32)(float *, const float *, float *, size_t, const hyper *);
typedef void (*one_state_f64)(double *, const double *, double *, size_t, const hyper *);

static nb_status one_state(const nb_kctx *k, one_state_f32 f32, one_state_f64 f64)
{
    hyper h = hyper_of(k, 4);
    size_t n = numel0(k);
    int64_t o = k->attr[A_OFFSET].i[0];
    if (k->in_dtype[0] == NB_F64)
        f64((double *)k->in[0], (const double *)k->in[1] + o, (double *)k->in[3], n, &h);
    else
        f32((float *)k->in[0], (const float *)k->in[1] + o, (float *)k->in[3], n, &h);
    return done(k);
}

static nb_status momentum_fwd(const nb_kctx *k) { return one_state(k, momentum_f32, momentum_f64); }
static nb_status adagrad_fwd(const nb_kctx *k) { return one_state(k, adagrad_f32, adagrad_f64); }

/* Adam over part [lo, hi) of the param: the updates are elementwise, so the
 * plan's threads split them and the bits do not change. */
typedef struct adam_job {
    const nb_kctx *k;
    hyper h;
    double t;
} adam_job;

static void adam_part(void *arg, int64_t lo, int64_t hi, int part)
{
    const adam_job *j = arg;
    const nb_kctx *k = j->k;
    int64_t o = k->attr[A_OFFSET].i[0];
    size_t n = (size_t)(hi - lo);
    (void)part;
    if (k->in_dtype[0] == NB_F64)
        adam_f64((double *)k->in[0] + lo, (const double *)k->in[1] + o + lo,
                 (double *)k->in[4] + lo, (double *)k->in[5] + lo, n, &j->h, j->t);
    else
        adam_f32((float *)k->in[0] + lo, (const float *)k->in[1] + o + lo, (float *)k->in[4] + lo,
                 (float *)k->in[5] + lo, n, &j->h, j->t);
}

/* t counts steps from 1: the step count before this step's opt_step, plus one */
static nb_status adam_fwd(const nb_kctx *k)
{
    adam_job j = {k, hyper_of(k, 6), *(const double *)k->in[3] + 1};
    nb_elementwise_parallel(k, (int64_t)numel0(k), adam_part, &j);
    return done(k);
}

static nb_status step_fwd(const nb_kctx *k)
{
    *(double *)k->in[0] += 1;
    return done(k);
}

/* FLOPs per element of the param: sgd 3, momentum 5, adagrad 7, adam 12 */
static double sgd_flops(const nb_kctx *k) { return 3.0 * (double)numel0(k); }
static double momentum_flops(const nb_kctx *k) { return 5.0 * (double)numel0(k); }
static double adagrad_flops(const nb_kctx *k) { return 7.0 * (double)numel0(k); }
static double adam_flops(const nb_kctx *k) { return 12.0 * (double)numel0(k); }

/* ---- definitions ---- */

#define HYPER_ATTRS                                                        \
    {"lr", NB_ATTR_FLOAT, true, {0}}, {"weight_decay", NB_ATTR_FLOAT, false, {.f = 0}}, \
        {"offset", NB_ATTR_INT, false, {.i = {0}}}
static const nb_attr_def sgd_attrs[] = {HYPER_ATTRS};
static const nb_attr_def momentum_attrs[] = {HYPER_ATTRS, {"momentum", NB_ATTR_FLOAT, false, {.f = 0.9}}};
static const nb_attr_def adagrad_attrs[] = {HYPER_ATTRS, {"eps", NB_ATTR_FLOAT, false, {.f = 1e-10}}};
static const nb_attr_def adam_attrs[] = {HYPER_ATTRS,
                                         {"beta1", NB_ATTR_FLOAT, false, {.f = 0.9}},
                                         {"beta2", NB_ATTR_FLOAT, false, {.f = 0.999}},
                                         {"eps", NB_ATTR_FLOAT, false, {.f = 1e-8}}};
static const nb_attr_def store_attrs[] = {{"offset", NB_ATTR_INT, false, {.i = {0}}}};

/* state of the size of the param (input 0) */
static const nb_state_def velocity[] = {{"v", NB_INIT_ZEROS, 0, NB_STATE_WHOLE}};
static const nb_state_def squares[] = {{"s", NB_INIT_ZEROS, 0, NB_STATE_WHOLE}};
static const nb_state_def moments[] = {{"m", NB_INIT_ZEROS, 0, NB_STATE_WHOLE},
                                       {"v", NB_INIT_ZEROS, 0, NB_STATE_WHOLE}};

/* internal (no model file names them), no gradient, inputs 1.. carry none */
#define OPT_OP(NAME, MIN, MAX, ATTRS, STATE, NSTATE, SHAPE, FWD, FLOPS, DOC)                  \
    const nb_op_def nb_op_##NAME = {                                                         \
        .name = #NAME, .min_in = MIN, .max_in = MAX, .attrs = ATTRS, .n_attrs = NB_NELEMS(ATTRS), \
        .flags = NB_OP_INTERNAL, .no_grad = ~0ull, .state = STATE, .n_state = NSTATE,         \
        .shape = SHAPE, .forward = FWD, .flops = FLOPS, .doc = DOC}

OPT_OP(sgd_update, 3, 3, sgd_attrs, NULL, 0, update_shape, sgd_fwd, sgd_flops,
       "w -= lr * (g + weight_decay * w)");
OPT_OP(momentum_update, 3, 3, momentum_attrs, velocity, 1, update_shape, momentum_fwd,
       momentum_flops, "v = momentum * v + g; w -= lr * v");
OPT_OP(adagrad_update, 3, 3, adagrad_attrs, squares, 1, update_shape, adagrad_fwd, adagrad_flops,
       "s += g^2; w -= lr * g / (sqrt(s) + eps)");
OPT_OP(adam_update, 4, 4, adam_attrs, moments, 2, adam_shape, adam_fwd, adam_flops,
       "Adam with bias correction (PyTorch's)");
OPT_OP(grad_store, 2, 3, store_attrs, NULL, 0, store_shape, store_fwd, nb_flops_none,
       "copies a gradient into the flat gradient buffer at offset");
static nb_status hook_shape(nb_shape_ctx *c)
{
    if (c->in[0].rank != 1 || c->in_dtype[0] == NB_I32)
        return nb_shape_fail(c, NB_ERR_SHAPE, "needs the 1-D flat gradient buffer; %s",
                             nb_shape_desc(c, 0));
    return dummy_out(c);
}

const nb_op_def nb_op_grad_hook = {
    .name = "grad_hook", .min_in = 2, .max_in = 2, .flags = NB_OP_INTERNAL, .no_grad = ~0ull,
    .shape = hook_shape, .forward = hook_fwd, .flops = nb_flops_none,
    .doc = "calls the gradient hook (nb_optimize_hook) on the flat gradient buffer"};
const nb_op_def nb_op_opt_step = {
    .name = "opt_step", .min_in = 2, .max_in = 2, .flags = NB_OP_INTERNAL, .no_grad = ~0ull,
    .shape = step_shape, .forward = step_fwd, .flops = nb_flops_none,
    .doc = "adds one to the step count"};

/* nb_optimize: the nodes of a training step after the forward pass (train.h).
 *
 *   grad_store(dW1, opt.grads) -> grad_store(dW2, opt.grads, after) -> ...
 *     -> grad_hook(opt.grads, after)
 *     -> opt.W1 = adam_update(W1, opt.grads, after, opt.step) -> opt.W2 ...
 *     -> opt_step(opt.step, after)   the step node
 *
 * Each op of the chain reads the previous one's dummy output, so planning the
 * step node runs the whole chain, in this order, after every node made before
 * it. The ops themselves are in ops/optim.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* What the step node keeps (its ext): the hook's slot and the update nodes. */
typedef struct step_info {
    nb_node *hook;
    int n;
    nb_node *update[];
} step_info;

static const char *const names[] = {"sgd", "momentum", "adagrad", "adam"};

nb_optim_cfg nb_optim_defaults(nb_optimizer type)
{
    return (nb_optim_cfg){type, type == NB_ADAM ? 1e-3 : 1e-2, 0.9, 0.9, 0.999,
                          type == NB_ADAGRAD ? 1e-10 : 1e-8, 0};
}

const char *nb_optimizer_name(nb_optimizer type)
{
    return type >= NB_SGD && type <= NB_ADAM ? names[type] : "?";
}

nb_status nb_optimizer_parse(const char *name, nb_optimizer *out)
{
    for (int i = 0; name && i < 4; i++)
        if (!strcmp(name, names[i])) {
            *out = (nb_optimizer)i;
            return NB_OK;
        }
    return NB_ERR_ARG;
}

static bool finite_at_least(double v, double lo) { return isfinite(v) && v >= lo; }

static nb_status check_cfg(nb_graph *g, const nb_optim_cfg *c)
{
    if (!c) return nb__fail(g, NB_ERR_ARG, "optimizer: no configuration given");
    if (c->type < NB_SGD || c->type > NB_ADAM)
        return nb__fail(g, NB_ERR_ARG, "optimizer: unknown type %d", (int)c->type);
    if (!(finite_at_least(c->lr, 0) && c->lr > 0))
        return nb__fail(g, NB_ERR_ARG, "optimizer %s: lr must be > 0; got %g", names[c->type], c->lr);
    if (!finite_at_least(c->weight_decay, 0) || !finite_at_least(c->eps, 0))
        return nb__fail(g, NB_ERR_ARG, "optimizer %s: weight_decay and eps must be >= 0",
                        names[c->type]);
    if (!(c->momentum >= 0 && c->momentum < 1) || !(c->beta1 >= 0 && c->beta1 < 1) ||
        !(c->beta2 >= 0 && c->beta2 < 1))
        return nb__fail(g, NB_ERR_ARG, "optimizer %s: momentum, beta1 and beta2 must be in [0, 1)",
                        names[c->type]);
    return NB_OK;
}

/* Every param trainable, of the loss's float dtype, named so that opt.NAME is free. */
static nb_status check_params(nb_graph *g, nb_node *loss, nb_node *const *params, int n)
{
    if (n < 1) return nb__fail(g, NB_ERR_ARG, "optimizer: no params to train");
    for (int i = 0; i < n; i++) {
        char name[300];
        if (!nb_param_trainable(params[i]))
            return nb__fail(g, NB_ERR_ARG, "optimizer: '%s' is not a trainable param",
                            params[i]->name);
        if (params[i]->dtype != loss->dtype)
            return nb__fail(g, NB_ERR_DTYPE, "optimizer: param '%s' is %s, the loss '%s' %s",
                            params[i]->name, nb_dtype_name(params[i]->dtype), loss->name,
                            nb_dtype_name(loss->dtype));
        snprintf(name, sizeof name, "opt.%s", params[i]->name);
        if (nb_graph_find(g, name))
            return nb__fail(g, NB_ERR_NAME, "optimizer: the update of '%s' would be named '%s', "
                            "which is taken", params[i]->name, name);
    }
    return NB_OK;
}

/* A state param made here rather than by an op: the buffer and the count. */
static nb_node *scratch(nb_graph *g, const char *name, nb_dtype dt, int rank, int64_t size)
{
    nb_node *p = nb_param(g, name, dt, rank, &size, NB_INIT(NB_INIT_ZEROS));
    if (p) p->state = true;
    return p;
}

static nb_node *update(nb_graph *g, const nb_optim_cfg *c, nb_node *w, nb_node *flat,
                       nb_node *after, nb_node *count, int64_t offset)
{
    static const nb_op_def *const ops[] = {&nb_op_sgd_update, &nb_op_momentum_update,
                                           &nb_op_adagrad_update, &nb_op_adam_update};
    nb_attr a[6] = {NB_AFLOAT("lr", c->lr), NB_AFLOAT("weight_decay", c->weight_decay),
                    NB_AINT("offset", offset)};
    int n_attrs = 3;
    if (c->type == NB_MOMENTUM) a[n_attrs++] = (nb_attr)NB_AFLOAT("momentum", c->momentum);
    if (c->type == NB_ADAGRAD) a[n_attrs++] = (nb_attr)NB_AFLOAT("eps", c->eps);
    if (c->type == NB_ADAM) {
        a[n_attrs++] = (nb_attr)NB_AFLOAT("beta1", c->beta1);
        a[n_attrs++] = (nb_attr)NB_AFLOAT("beta2", c->beta2);
        a[n_attrs++] = (nb_attr)NB_AFLOAT("eps", c->eps);
    }
    char name[300];
    snprintf(name, sizeof name, "opt.%s", w->name);
    nb_node *in[4] = {w, flat, after, count};
    return nb_apply(g, ops[c->type], name, in, c->type == NB_ADAM ? 4 : 3, a, n_attrs);
}

/* The chain after the gradients; returns the step node. */
static nb_node *chain(nb_graph *g, nb_node *const *params, nb_node *const *grads, int n,
                      const nb_optim_cfg *c)
{
    int64_t total = 0, *offset = nb_malloc((size_t)n * sizeof *offset);
    step_info *info = nb_calloc(1, sizeof *info + (size_t)n * sizeof info->update[0]);
    nb_node *flat = NULL, *count = NULL, *after = NULL, *step = NULL;
    if (!offset || !info) goto fail;
    for (int i = 0; i < n; i++) {
        offset[i] = total;
        if (__builtin_add_overflow(total, (int64_t)nb_tensor_numel(&params[i]->value), &total)) {
            nb__fail(g, NB_ERR_OVERFLOW, "optimizer: the params hold too many values");
            goto fail;
        }
    }
    if (!(flat = scratch(g, "opt.grads", params[0]->dtype, 1, total))) goto fail;
    flat->transient = true;
    if (!(count = scratch(g, "opt.step", NB_F64, 0, 0))) goto fail;
    for (int i = 0; i < n; i++) {
        nb_node *in[3] = {grads[i], flat, after};
        after = nb_apply(g, &nb_op_grad_store, NULL, in, after ? 3 : 2,
                         (nb_attr[]){NB_AINT("offset", offset[i])}, 1);
    }
    info->hook = after = nb_apply(g, &nb_op_grad_hook, NULL, (nb_node *[]){flat, after}, 2, NULL, 0);
    if (!after || !(after->ext = nb_calloc(1, sizeof(nb_grad_hook_slot)))) goto fail;
    for (int i = 0; i < n && after; i++)
        info->update[info->n++] = after = update(g, c, params[i], flat, after, count, offset[i]);
    step = nb_apply(g, &nb_op_opt_step, NULL, (nb_node *[]){count, after}, 2, NULL, 0);
    if (!step) goto fail;
    step->ext = info;
    nb_free(offset);
    return step;
fail:
    if (!g->status) nb__fail(g, NB_ERR_NOMEM, "out of memory");
    nb_free(offset);
    nb_free(info);
    return NULL;
}

nb_node *nb_optimize(nb_graph *g, nb_node *loss, nb_node *const *params, int n,
                     const nb_optim_cfg *cfg, nb_node **grads)
{
    if (!g) return NULL;
    if (!loss) return nb__missing(g, "the loss to minimise"), NULL;
    for (int i = 0; i < n; i++)
        if (!params || !params[i]) return nb__missing(g, "a param to train"), NULL;
    nb__begin(g);
    if (check_cfg(g, cfg) || check_params(g, loss, params, n)) return NULL;
    if (loss->shape.rank != 0)
        return nb__fail(g, NB_ERR_SHAPE, "optimizer: the loss '%s' must be a scalar", loss->name), NULL;
    nb_node **gr = nb_malloc((size_t)n * sizeof *gr), *step = NULL;
    if (!gr) return nb__fail(g, NB_ERR_NOMEM, "out of memory"), NULL;
    if (!nb_grad(g, loss, params, n, gr)) step = chain(g, params, gr, n, cfg);
    if (step && grads) memcpy(grads, gr, (size_t)n * sizeof *gr);
    nb_free(gr);
    return step;
}

/* The step node's information, or NULL with a message. */
static step_info *info_of(nb_graph *g, const nb_node *step)
{
    if (!step || step->op != &nb_op_opt_step || !step->ext) {
        nb__fail(g, NB_ERR_ARG, "'%s' is not a step node made by nb_optimize", nb_node_name(step));
        return NULL;
    }
    return step->ext;
}

nb_status nb_optimize_hook(nb_graph *g, nb_node *step, nb_grad_hook fn, void *user)
{
    if (!g) return NB_ERR_ARG;
    nb__begin(g);
    step_info *info = info_of(g, step);
    if (!info) return g->status;
    nb_grad_hook_slot *slot = info->hook->ext;
    slot->fn = fn;
    slot->user = user;
    return NB_OK;
}

nb_status nb_optimize_set_lr(nb_graph *g, nb_node *step, double lr)
{
    if (!g) return NB_ERR_ARG;
    nb__begin(g);
    step_info *info = info_of(g, step);
    if (!info) return g->status;
    /* 0 is allowed here: a schedule may decay the rate to nothing */
    if (!(isfinite(lr) && lr >= 0)) return nb__fail(g, NB_ERR_ARG, "optimizer: lr must be >= 0; got %g", lr);
    for (int i = 0; i < info->n; i++) info->update[i]->attr[0].f = lr;  /* A_LR of every update */
    return NB_OK;
}

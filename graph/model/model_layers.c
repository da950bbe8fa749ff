/* Layer shorthands (model-format.md, "Layer shorthands" and "Layers"): a node
 * with `layer:` expands into params NAME.W, NAME.b (or NAME.gamma, NAME.beta,
 * and the op-owned NAME.running_mean, NAME.running_var) and nodes NAME.matmul
 * / NAME.conv, NAME.add, NAME.<activation>, the last of which is named NAME.
 * Every node and param of a layer is grouped under NAME for diagrams. The ops
 * are called through nb_op by their registered names; state an op makes for
 * itself becomes the layer's too. */
#include <stdio.h>
#include <string.h>

#include "model_internal.h"

typedef enum { LA_INT, LA_FLOAT, LA_BOOL, LA_ACT, LA_INIT, LA_HW } la_type;

typedef struct la_def {
    const char *name;
    la_type type;
    bool required;
    double def;   /* INT, FLOAT, BOOL */
    int64_t min;  /* INT, HW */
} la_def;

#define MAX_LA 12

typedef struct lctx {
    nm_ctx *c;
    const yaml_node_t *map;
    const char *name;
    const char *layer;  /* dense, conv2d, ... */
    nb_node *const *in;
    int n_in;
    bool given[MAX_LA];
    int64_t i[MAX_LA];
    int64_t hw[MAX_LA][2];  /* HW: one integer or [h, w]; n_hw entries given */
    int n_hw[MAX_LA];
    double f[MAX_LA];
    bool b[MAX_LA];
    const nb_op_def *act;  /* NULL: none */
    nb_attr act_attrs[NB_MAX_ATTRS];  /* given in `activation: {op: ..., ...}` */
    int n_act_attrs;
    nm_init init;
    bool failed;
} lctx;

typedef struct layer_def {
    const char *name;
    const la_def *attrs;
    int n_attrs;
    nb_node *(*build)(lctx *L);
} layer_def;

/* ---- building blocks ------------------------------------------------ */

static bool define(lctx *L, nb_node *n, const char *name)
{
    if (nb_node_set_group(L->c->m->g, n, L->name)) {
        nm_graph_err(L->c, L->map);
        return false;
    }
    if (strcmp(name, L->name)) nm_define(L->c, name, n, ny_line(L->map), false);
    return true;
}

/* Param NAME.suffix. */
static nb_node *param(lctx *L, const char *suffix, int rank, const int64_t *shape, nm_init *init)
{
    char name[512];
    snprintf(name, sizeof name, "%s.%s", L->name, suffix);
    nb_node *p = nm_make_param(L->c, name, rank, shape, init, L->map);
    return p && define(L, p, name) ? p : NULL;
}

static nb_node *const_param(lctx *L, const char *suffix, int64_t size, nb_init_kind kind)
{
    nm_init init;
    memset(&init, 0, sizeof init);
    init.init.kind = kind;
    init.init.seed = L->c->m->seed;
    return param(L, suffix, 1, &size, &init);
}

/* Node NAME.suffix, or NAME when it is the layer's last. */
static nb_node *step(lctx *L, const char *op, const char *suffix, bool last, nb_node *const *in,
                     int n_in, const nb_attr *attrs, int n_attrs)
{
    char name[512];
    if (last)
        snprintf(name, sizeof name, "%s", L->name);
    else
        snprintf(name, sizeof name, "%s.%s", L->name, suffix);
    nb_node *n = nb_op(L->c->m->g, op, name, in, n_in, attrs, n_attrs);
    if (!n) {
        nm_graph_err(L->c, L->map);
        return NULL;
    }
    if (!nm_adopt_state(L->c, n, n_in, ny_line(L->map), L->name)) return NULL;
    return define(L, n, name) ? n : NULL;
}

/* Reports that x does not have the shape the layer needs, at the node. */
static void bad_input(lctx *L, const char *what)
{
    nb_node *x = L->in[0];
    char s[160];
    nb_node_shape_str(L->c->m->g, x, s, sizeof s);
    ny_err(&L->c->y, L->map, "node '%s': layer %s needs x %s; %s is %s", L->name, L->layer, what,
           nb_node_name(x), s);
}

/* The size of axis `axis` of x, which must be fixed (else reported: 0). */
static int64_t fixed_dim(lctx *L, int axis, const char *what)
{
    int64_t d = axis >= 0 && axis < nb_node_rank(L->in[0]) ? nb_node_dim(L->in[0], axis) : -1;
    if (d < 1) bad_input(L, what);
    return d < 1 ? 0 : d;
}

/* The tail: an optional bias add, then the activation. */
static nb_node *finish(lctx *L, nb_node *h, nb_node *bias)
{
    if (h && bias) h = step(L, "add", "add", !L->act, (nb_node *[]){h, bias}, 2, NULL, 0);
    if (h && L->act) h = step(L, L->act->name, L->act->name, true, &h, 1, L->act_attrs, L->n_act_attrs);
    return h;
}

/* ---- the layers ----------------------------------------------------- */

enum { D_UNITS, D_BIAS, D_ACT, D_INIT };
static const la_def dense_attrs[] = {
    {"units", LA_INT, true, 0, 1},
    {"bias", LA_BOOL, false, 1, 0},
    {"activation", LA_ACT, false, 0, 0},
    {"init", LA_INIT, false, 0, 0},
};

/* x [..., F] W [F, units]; a rank-1 x [F] goes through NAME.row = x as
 * [1, F] and NAME.vec = the product as [units] (views, no copies), as
 * torch.nn.Linear maps [F] to [units]. */
static nb_node *dense(lctx *L)
{
    int r = nb_node_rank(L->in[0]);
    int64_t f = fixed_dim(L, r - 1, "[..., F] or [F] with a fixed F");
    if (f < 1) return NULL;
    int64_t units = L->i[D_UNITS];
    nb_node *w = param(L, "W", 2, (int64_t[]){f, units}, &L->init);
    nb_node *b = w && L->b[D_BIAS] ? const_param(L, "b", units, NB_INIT_ZEROS) : NULL;
    if (!w || (L->b[D_BIAS] && !b)) return NULL;
    bool tail = b || L->act;  /* nodes follow the product */
    nb_node *x = L->in[0];
    if (r == 1) {
        nb_attr row = {.name = "shape", .type = NB_ATTR_DIMS, .n = 2, .d = {NB_DIM(1), NB_DIM(f)}};
        if (!(x = step(L, "reshape", "row", false, &x, 1, &row, 1))) return NULL;
    }
    nb_node *h = step(L, "matmul", "matmul", !tail && r != 1, (nb_node *[]){x, w}, 2, NULL, 0);
    if (h && r == 1) {
        nb_attr vec = {.name = "shape", .type = NB_ATTR_DIMS, .n = 1, .d = {NB_DIM(units)}};
        h = step(L, "reshape", "vec", !tail, &h, 1, &vec, 1);
    }
    return finish(L, h, b);
}

enum { C_FILTERS, C_SIZE, C_STRIDE, C_PAD, C_DIL, C_GROUPS, C_BIAS, C_ACT, C_INIT };
static const la_def conv_attrs[] = {
    {"filters", LA_INT, true, 0, 1},
    {"size", LA_HW, true, 0, 1},
    {"stride", LA_HW, false, 1, 1},
    {"pad", LA_HW, false, 0, 0},
    {"dilation", LA_HW, false, 1, 1},
    {"groups", LA_INT, false, 1, 1},
    {"bias", LA_BOOL, false, 1, 0},
    {"activation", LA_ACT, false, 0, 0},
    {"init", LA_INIT, false, 0, 0},
};

/* An HW attribute of the layer as the op's one-integer-or-[h, w] attribute. */
static nb_attr hw_attr(const lctx *L, const char *name, int k)
{
    nb_attr a = {.name = name, .type = NB_ATTR_INTS, .n = L->n_hw[k]};
    a.i[0] = L->hw[k][0], a.i[1] = L->hw[k][1];
    return a;
}

/* NAME.conv, then NAME.add of the bias viewed as [O, 1, 1] (NAME.bias) so that
 * it broadcasts over N, H and W, as model-format.md names a layer's nodes. */
static nb_node *conv2d(lctx *L)
{
    if (nb_node_rank(L->in[0]) != 4) {
        bad_input(L, "[N, C, H, W]");
        return NULL;
    }
    int64_t ch = fixed_dim(L, 1, "[N, C, H, W] with a fixed C");
    if (ch < 1) return NULL;
    int64_t o = L->i[C_FILTERS], groups = L->i[C_GROUPS];
    if (ch % groups || o % groups) {
        char s[160];
        nb_node_shape_str(L->c->m->g, L->in[0], s, sizeof s);
        ny_err(&L->c->y, L->map,
               "node '%s': layer conv2d with groups %lld needs channels and filters divisible "
               "by %lld; %s is %s, filters %lld",
               L->name, (long long)groups, (long long)groups, nb_node_name(L->in[0]), s,
               (long long)o);
        return NULL;
    }
    int64_t shape[4] = {o, ch / groups, L->hw[C_SIZE][0], L->hw[C_SIZE][1]};
    nb_node *w = param(L, "W", 4, shape, &L->init);
    nb_node *b = w && L->b[C_BIAS] ? const_param(L, "b", o, NB_INIT_ZEROS) : NULL;
    if (!w || (L->b[C_BIAS] && !b)) return NULL;
    nb_attr attrs[4] = {hw_attr(L, "stride", C_STRIDE), hw_attr(L, "pad", C_PAD),
                        hw_attr(L, "dilation", C_DIL), NB_AINT("groups", groups)};
    nb_node *h = step(L, "conv2d", "conv", !b && !L->act, (nb_node *[]){L->in[0], w}, 2, attrs, 4);
    nb_node *bias = NULL;
    if (h && b) {
        nb_attr shape = {.name = "shape", .type = NB_ATTR_DIMS, .n = 3, .d = {NB_DIM(o), NB_DIM(1), NB_DIM(1)}};
        bias = step(L, "reshape", "bias", false, &b, 1, &shape, 1);
        if (!bias) return NULL;
    }
    return finish(L, h, bias);
}

enum { B_EPS, B_MOMENTUM };
static const la_def bn_attrs[] = {
    {"eps", LA_FLOAT, false, 0, 0},
    {"momentum", LA_FLOAT, false, 0, 0},
};

/* batchnorm(x, gamma, beta) normalises over every axis but 1; the op makes its
 * running statistics NAME.running_mean and NAME.running_var itself (its state,
 * which step() adds to the model's params). eps and momentum are passed only
 * when given, so the op's defaults apply. */
static nb_node *batchnorm(lctx *L)
{
    int64_t ch = fixed_dim(L, 1, "[N, C, ...] with a fixed C");
    if (ch < 1) return NULL;
    nb_node *gamma = const_param(L, "gamma", ch, NB_INIT_ONES);
    nb_node *beta = gamma ? const_param(L, "beta", ch, NB_INIT_ZEROS) : NULL;
    if (!beta) return NULL;
    nb_attr attrs[2];
    int n = 0;
    if (L->given[B_EPS]) attrs[n++] = (nb_attr)NB_AFLOAT("eps", L->f[B_EPS]);
    if (L->given[B_MOMENTUM]) attrs[n++] = (nb_attr)NB_AFLOAT("momentum", L->f[B_MOMENTUM]);
    return step(L, "batchnorm", "batchnorm", true, (nb_node *[]){L->in[0], gamma, beta}, 3, attrs,
                n);
}

enum { E_VOCAB, E_DIM, E_INIT };
static const la_def embedding_attrs[] = {
    {"vocab", LA_INT, true, 0, 1},
    {"dim", LA_INT, true, 0, 1},
    {"init", LA_INIT, false, 0, 0},
};

/* embedding(ids, NAME.W [vocab, dim]), NAME.W drawn from N(0, 1) unless the
 * layer's init says otherwise (torch.nn.Embedding) */
static nb_node *embedding(lctx *L)
{
    if (!L->given[E_INIT]) L->init.init = (nb_init){.kind = NB_INIT_NORMAL, .a = 1, .seed = L->c->m->seed};
    nb_node *w = param(L, "W", 2, (int64_t[]){L->i[E_VOCAB], L->i[E_DIM]}, &L->init);
    return w ? step(L, "embedding", "embedding", true, (nb_node *[]){L->in[0], w}, 2, NULL, 0) : NULL;
}

enum { LN_EPS };
static const la_def ln_attrs[] = {{"eps", LA_FLOAT, false, 0, 0}};

/* layernorm over the last axis, NAME.gamma (ones) and NAME.beta (zeros) of its size */
static nb_node *layernorm(lctx *L)
{
    int64_t f = fixed_dim(L, nb_node_rank(L->in[0]) - 1, "[..., F] with a fixed F");
    if (f < 1) return NULL;
    nb_node *gamma = const_param(L, "gamma", f, NB_INIT_ONES);
    nb_node *beta = gamma ? const_param(L, "beta", f, NB_INIT_ZEROS) : NULL;
    if (!beta) return NULL;
    nb_attr eps = NB_AFLOAT("eps", L->f[LN_EPS]);
    return step(L, "layernorm", "layernorm", true, (nb_node *[]){L->in[0], gamma, beta}, 3, &eps,
                L->given[LN_EPS]);
}

#define NELEMS(a) ((int)(sizeof(a) / sizeof((a)[0])))
static const layer_def layers[] = {
    {"dense", dense_attrs, NELEMS(dense_attrs), dense},
    {"conv2d", conv_attrs, NELEMS(conv_attrs), conv2d},
    {"batchnorm", bn_attrs, NELEMS(bn_attrs), batchnorm},
    {"embedding", embedding_attrs, NELEMS(embedding_attrs), embedding},
    {"layernorm", ln_attrs, NELEMS(ln_attrs), layernorm},
};

/* What `nabla ops` says of each layer (nb_layer_describe): its input, the
 * params it makes, what it computes. */
static const struct {
    const char *layer, *in, *creates, *doc;
} layer_docs[] = {
    {"dense", "x [..., F] or [F]", "NAME.W [F, units] (init), NAME.b [units] (zeros; with bias)",
     "x W + b, then the activation: [..., units] ([units] for x [F])"},
    {"conv2d", "x [N, C, H, W]",
     "NAME.W [filters, C/groups, kh, kw] (init), NAME.b [filters] (zeros; with bias)",
     "conv2d(x, W) + b, then the activation"},
    {"batchnorm", "x [N, C, ...]",
     "NAME.gamma [C] (ones), NAME.beta [C] (zeros); state NAME.running_mean, NAME.running_var",
     "batchnorm(x, gamma, beta), normalised over every axis but 1"},
    {"embedding", "ids i32 [...]", "NAME.W [vocab, dim] (init)", "rows of W at the ids: [..., dim]"},
    {"layernorm", "x [..., F]", "NAME.gamma [F] (ones), NAME.beta [F] (zeros)",
     "layernorm(x, gamma, beta) over the last axis"},
};

/* Defaults that a la_def's number does not say (an op's own default applies
 * when the attribute is not given). Activations default to none, inits to he. */
static const struct {
    const char *layer, *attr, *text;
} default_docs[] = {
    {"batchnorm", "eps", "1e-05 (the op's)"},
    {"batchnorm", "momentum", "0.1 (the op's)"},
    {"embedding", "init", "{normal: 1}"},
    {"layernorm", "eps", "1e-05 (the op's)"},
};

bool nm_is_layer(const char *name)
{
    for (int i = 0; name && i < NELEMS(layers); i++)
        if (!strcmp(layers[i].name, name)) return true;
    return false;
}

/* ---- describing layers (nabla ops) ------------------------------------ */

static const char *default_doc(const char *layer, const char *attr)
{
    for (int i = 0; i < NELEMS(default_docs); i++)
        if (!strcmp(default_docs[i].layer, layer) && !strcmp(default_docs[i].attr, attr))
            return default_docs[i].text;
    return NULL;
}

static void describe_attr(const char *layer, const la_def *a, nb_layer_attr *out)
{
    const char *text = default_doc(layer, a->name);
    static const char *const types[] = {[LA_INT] = "int", [LA_FLOAT] = "float", [LA_BOOL] = "bool",
                                        [LA_ACT] = "activation", [LA_INIT] = "init",
                                        [LA_HW] = "int or [h,w]"};
    _Static_assert(NELEMS(types) == LA_HW + 1, "a name for every layer attribute type");
    out->name = a->name;
    out->type = types[a->type];
    out->required = a->required;
    if (a->required) snprintf(out->def, sizeof out->def, "required");
    else if (text) snprintf(out->def, sizeof out->def, "default %s", text);
    else if (a->type == LA_ACT) snprintf(out->def, sizeof out->def, "default none");
    else if (a->type == LA_INIT) snprintf(out->def, sizeof out->def, "default he");
    else if (a->type == LA_BOOL) snprintf(out->def, sizeof out->def, "default %s", a->def ? "true" : "false");
    else if (a->type == LA_INT || a->type == LA_HW)
        snprintf(out->def, sizeof out->def, "default %lld", (long long)a->def);
    else if (a->type == LA_FLOAT) snprintf(out->def, sizeof out->def, "default %g", a->def);
    else snprintf(out->def, sizeof out->def, "optional");
}

size_t nb_layer_count(void) { return (size_t)NELEMS(layers); }

nb_status nb_layer_describe(size_t i, nb_layer_info *out)
{
    if (!out || i >= (size_t)NELEMS(layers)) return NB_ERR_ARG;
    const layer_def *d = &layers[i];
    memset(out, 0, sizeof *out);
    out->name = d->name;
    out->in = "x";
    out->creates = out->doc = "";
    for (int k = 0; k < NELEMS(layer_docs); k++)
        if (!strcmp(layer_docs[k].layer, d->name)) {
            out->in = layer_docs[k].in;
            out->creates = layer_docs[k].creates;
            out->doc = layer_docs[k].doc;
        }
    for (int k = 0; k < d->n_attrs && k < NB_LAYER_MAX_ATTRS; k++)
        describe_attr(d->name, &d->attrs[k], &out->attrs[out->n_attrs++]);
    return NB_OK;
}

nb_status nb_layer_find(const char *name, nb_layer_info *out)
{
    for (int i = 0; name && i < NELEMS(layers); i++)
        if (!strcmp(layers[i].name, name)) return nb_layer_describe((size_t)i, out);
    return NB_ERR_ARG;
}

/* ---- reading a layer node ------------------------------------------- */

/* An activation: none, an op's name, or {op: NAME, attr: value} (model_act.c). */
static bool activation(lctx *L, const yaml_node_t *v)
{
    return nm_parse_activation(L->c, v, &L->act, L->act_attrs, &L->n_act_attrs);
}

/* One integer or a list [h, w], each >= def->min. */
static bool read_hw(lctx *L, const la_def *def, int k, const yaml_node_t *v, const char *w)
{
    nm_ctx *c = L->c;
    bool list = v->type == YAML_SEQUENCE_NODE;
    if (list && ny_seq_size(v) != 2) {
        ny_err(&c->y, v, "%s must be one integer or [h, w]; got %zu entries", w, ny_seq_size(v));
        return false;
    }
    L->n_hw[k] = list ? 2 : 1;
    for (int j = 0; j < L->n_hw[k]; j++) {
        const yaml_node_t *item = list ? ny_seq_item(&c->y, v, (size_t)j) : v;
        if (!ny_int(&c->y, item, w, &L->hw[k][j])) return false;
        if (L->hw[k][j] < def->min || L->hw[k][j] > (1 << 30)) {
            ny_err(&c->y, item, "%s must be %s %lld; got %lld", w,
                   L->hw[k][j] < def->min ? ">=" : "<=",
                   L->hw[k][j] < def->min ? (long long)def->min : 1LL << 30,
                   (long long)L->hw[k][j]);
            return false;
        }
    }
    if (!list) L->hw[k][1] = L->hw[k][0];
    return true;
}

static bool read_attr(lctx *L, const la_def *def, int k, const yaml_node_t *v)
{
    nm_ctx *c = L->c;
    char w[64];
    snprintf(w, sizeof w, "'%s'", def->name);
    switch (def->type) {
    case LA_INT:
        if (!ny_int(&c->y, v, w, &L->i[k])) return false;
        if (L->i[k] >= def->min) return true;
        ny_err(&c->y, v, "%s must be >= %lld; got %lld", w, (long long)def->min, (long long)L->i[k]);
        return false;
    case LA_FLOAT: return ny_num(&c->y, v, w, &L->f[k]);
    case LA_BOOL: return ny_bool(&c->y, v, w, &L->b[k]);
    case LA_HW: return read_hw(L, def, k, v, w);
    case LA_ACT: return activation(L, v);
    case LA_INIT:
        nm_init_free(&L->init);
        return nm_parse_init(c, v, (size_t)1 << 26, &L->init);
    }
    return false;
}

static nb_node *expand(lctx *L, const layer_def *def, const yaml_node_t *name_node, bool can_build)
{
    nm_ctx *c = L->c;
    size_t mark = c->y.n_msgs;
    const char *known[3 + MAX_LA];
    size_t nk = 0;
    known[nk++] = "name", known[nk++] = "layer", known[nk++] = "in";
    for (int k = 0; k < def->n_attrs; k++) {
        known[nk++] = def->attrs[k].name;
        L->i[k] = (int64_t)def->attrs[k].def;
        L->hw[k][0] = L->hw[k][1] = (int64_t)def->attrs[k].def;
        L->n_hw[k] = 1;
        L->f[k] = def->attrs[k].def;
        L->b[k] = def->attrs[k].def != 0;
    }
    ny_map_check(&c->y, L->map, "a node", known, nk);
    L->init.init.kind = NB_INIT_HE;
    L->init.init.seed = c->m->seed;
    for (int k = 0; k < def->n_attrs; k++) {
        const yaml_node_t *v = ny_get(&c->y, L->map, def->attrs[k].name, NULL);
        if (v)
            L->given[k] = read_attr(L, &def->attrs[k], k, v);
        else if (def->attrs[k].required)
            ny_err(&c->y, L->map, "node '%s': %s needs attribute '%s'", L->name ? L->name : "?",
                   def->name, def->attrs[k].name);
    }
    if (L->n_in != 1)
        ny_err(&c->y, L->map, "node '%s': layer %s takes 1 input, got %d", L->name ? L->name : "?",
               def->name, L->n_in);
    bool owns = !L->name || nm_owns_prefix(c, name_node, L->name, "layer");
    const nm_name *taken = L->name && owns ? nm_first_with_prefix(c, L->name) : NULL;
    if (taken)  /* NAME. is reserved: nothing may be called NAME.x already */
        ny_err(&c->y, name_node,
               "names beginning '%s.' are reserved for layer '%s', but '%s' is defined at line %zu",
               L->name, L->name, taken->name, taken->line);
    if (!can_build || c->y.n_msgs != mark) return NULL;
    /* the layer's name is taken now so that NAME.W etc. are recognised as its own */
    nm_name *self = nm_define(c, L->name, NULL, ny_line(name_node), true);
    nb_node *out = self ? def->build(L) : NULL;
    if (self) self->node = out;
    return out;
}

nb_node *nm_build_layer(nm_ctx *c, const yaml_node_t *map, const yaml_node_t *layer_val,
                        const char *name, const yaml_node_t *name_node, nb_node *const *in,
                        int n_in, bool can_build)
{
    const char *s;
    if (!ny_str(&c->y, layer_val, "'layer'", &s)) {
        ny_map_check(&c->y, map, "a node", NULL, 0);
        return NULL;
    }
    const layer_def *def = NULL;
    const char *names[NELEMS(layers)];
    for (int i = 0; i < NELEMS(layers); i++) {
        names[i] = layers[i].name;
        if (!strcmp(s, layers[i].name)) def = &layers[i];
    }
    if (!def) {
        char hint[96];
        ny_err(&c->y, layer_val, "unknown layer '%s'%s", s,
               ny_hint(hint, sizeof hint, s, names, NELEMS(layers)));
        ny_map_check(&c->y, map, "a node", NULL, 0);
        return NULL;
    }
    lctx L;
    memset(&L, 0, sizeof L);
    L.c = c;
    L.map = map;
    L.name = name;
    L.layer = def->name;
    L.in = in;
    L.n_in = n_in;
    nb_node *out = expand(&L, def, name_node, can_build);
    nm_init_free(&L.init);
    return out;
}

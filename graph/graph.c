/* Graph building: leaves, op nodes with attributes and shape inference,
 * names, and the error kept on the graph. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

nb_graph *nb_graph_new(void) { return nb_calloc(1, sizeof(nb_graph)); }

static void node_free(nb_node *n)
{
    if (!n) return;
    nb_free(n->name);
    nb_free(n->in);
    nb_free(n->attr);
    nb_free(n->group);
    nb_free(n->init_values);
    nb_free(n->ext);
    nb_tensor_free(&n->value);
    nb_free(n);
}

void nb_graph_free(nb_graph *g)
{
    if (!g) return;
    for (size_t i = 0; i < g->n_nodes; i++) node_free(g->nodes[i]);
    for (int k = 0; k < g->n_syms; k++) nb_free(g->sym[k]);
    nb_free(g->nodes);
    nb__strmap_free(&g->names);
    nb_free(g);
}

nb_status nb__vfail(nb_graph *g, nb_status st, const char *fmt, va_list ap)
{
    if (g && g->status == NB_OK) {
        g->status = st;
        vsnprintf(g->err, sizeof g->err, fmt, ap);
    }
    return st;
}

nb_status nb__fail(nb_graph *g, nb_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nb__vfail(g, st, fmt, ap);
    va_end(ap);
    return st;
}

nb_status nb_graph_status(const nb_graph *g) { return g ? g->status : NB_ERR_ARG; }
const char *nb_graph_error(const nb_graph *g) { return g ? g->err : "no graph"; }

void nb_graph_clear_error(nb_graph *g)
{
    if (!g) return;
    g->status = NB_OK;
    g->err[0] = 0;
}

nb_status nb__begin(nb_graph *g)
{
    nb_graph_clear_error(g);
    return NB_OK;
}

nb_status nb__missing(nb_graph *g, const char *what)
{
    if (!g) return NB_ERR_ARG;
    if (g->status) return g->status;
    return nb__fail(g, NB_ERR_ARG, "%s is missing", what);
}

/* A linear search: a graph has at most NB_MAX_SYMS symbols. */
int nb__sym_find(const nb_graph *g, const char *name)
{
    for (int k = 0; name && k < g->n_syms; k++)
        if (!strcmp(g->sym[k], name)) return k;
    return -1;
}

int nb__sym_index(nb_graph *g, const char *name)
{
    int k = nb__sym_find(g, name);
    if (k >= 0) return k;
    if (g->n_syms == NB_MAX_SYMS) return -1;
    if (!(g->sym[g->n_syms] = nb__strdup(name))) return -1;
    return g->n_syms++;
}

/* ---- names ---------------------------------------------------------- */

/* Checks a user name, or makes "op_K" when name is NULL. */
static char *take_name(nb_graph *g, const char *name, const char *op)
{
    if (name) {
        if (!nb__name_valid(name)) {
            nb__fail(g, NB_ERR_NAME,
                     "invalid node name '%s': use letters, digits, '_', '.', '-'", name);
            return NULL;
        }
        if (nb_graph_find(g, name)) {
            nb__fail(g, NB_ERR_NAME, "duplicate name '%s'", name);
            return NULL;
        }
        return nb__strdup(name);
    }
    char buf[96];
    do snprintf(buf, sizeof buf, "%s%s_%llu", g->building_grad ? "d." : "", op,
                (unsigned long long)++g->auto_name);
    while (nb_graph_find(g, buf));
    return nb__strdup(buf);
}

static nb_status append(nb_graph *g, nb_node *n)
{
    if (g->n_nodes == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 64;
        nb_node **nodes = nb_realloc(g->nodes, cap * sizeof *nodes);
        if (!nodes) return nb__fail(g, NB_ERR_NOMEM, "out of memory");
        g->nodes = nodes;
        g->cap = cap;
    }
    if (nb__names_add(g, n)) return nb__fail(g, NB_ERR_NOMEM, "out of memory");
    n->id = g->n_nodes;
    n->is_grad = g->building_grad;
    g->nodes[g->n_nodes++] = n;
    return NB_OK;
}

/* ---- leaves --------------------------------------------------------- */

/* "grad." and "opt." begin the names the library gives gradients and
 * optimizer state (graph.h); NULL when name is free of them. */
static const char *reserved_prefix(const char *name)
{
    static const char *const pre[] = {"grad.", "opt."};
    for (int i = 0; name && i < 2; i++)
        if (!strncmp(name, pre[i], strlen(pre[i]))) return pre[i];
    return NULL;
}

static const char *leaf_word(nb_node_kind kind)
{
    return kind == NB_NODE_INPUT ? "input" : kind == NB_NODE_CONST ? "constant" : "param";
}

/* name NULL: an automatic name (constants only; callers check) */
static nb_node *new_leaf(nb_graph *g, const char *name, nb_node_kind kind, nb_dtype dt, int rank)
{
    if (!g) return NULL;
    if (!name && kind != NB_NODE_CONST) {
        nb__fail(g, NB_ERR_NAME, "%s needs a name", leaf_word(kind));
        return NULL;
    }
    const char *pre = kind != NB_NODE_PARAM ? reserved_prefix(name) : NULL;
    if (pre) {  /* params too are user names, but the optimizer makes its state as params */
        nb__fail(g, NB_ERR_NAME, "%s '%s': names beginning '%s' are reserved (%s)", leaf_word(kind),
                 name, pre, *pre == 'g' ? "gradients" : "optimizer state");
        return NULL;
    }
    if (rank < 0 || rank > NB_MAX_DIMS) {
        nb__fail(g, NB_ERR_SHAPE, "'%s': rank %d is outside 0..%d", name, rank, NB_MAX_DIMS);
        return NULL;
    }
    nb_node *n = nb_calloc(1, sizeof *n);
    if (!n) {
        nb__fail(g, NB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    n->kind = kind;
    n->dtype = dt;
    n->shape.rank = rank;
    if (!(n->name = take_name(g, name, name ? NULL : "const"))) {
        node_free(n);
        return NULL;
    }
    return n;
}

/* A node's shape must fit in memory whatever its free dimensions are bound
 * to (each >= 1): its fixed factors times the element size must stay under
 * 2^63 bytes, or every later size (plans, workspaces, FLOP counts) would
 * overflow. A dimension below 1 can only come from a faulty shape rule. */
static nb_status check_size(nb_graph *g, const nb_node *n)
{
    char who[320], s[256];
    if (n->op) snprintf(who, sizeof who, "node '%s': %s gives", n->name, n->op->name);
    else snprintf(who, sizeof who, "input '%s' is", n->name);
    uint64_t bytes = nb_dtype_size(n->dtype);
    for (int i = 0; i < n->shape.rank; i++) {
        int64_t c = n->shape.d[i].c;
        if (c < 1)
            return nb__fail(g, NB_ERR_SHAPE, "%s dimension %d of size %lld", who, i, (long long)c);
        if (__builtin_mul_overflow(bytes, (uint64_t)c, &bytes) || bytes > INT64_MAX) {
            nb_shape_format(g, &n->shape, s, sizeof s);
            return nb__fail(g, NB_ERR_OVERFLOW, "%s %s: more than 2^63 bytes of %s", who, s,
                            nb_dtype_name(n->dtype));
        }
    }
    return NB_OK;
}

nb_node *nb_input(nb_graph *g, const char *name, nb_dtype dt, int rank, const nb_dim *dims)
{
    nb_node *n = new_leaf(g, name, NB_NODE_INPUT, dt, rank);
    if (!n) return NULL;
    for (int i = 0; i < rank; i++) {
        nb_sdim d = nb_sdim_const(1);
        if (dims[i].sym && strlen(dims[i].sym) > NB_MAX_SYM_LEN) {
            nb__fail(g, NB_ERR_SHAPE, "input '%s': the free dimension '%.24s...' has a name of %zu "
                     "characters; at most %d", name, dims[i].sym, strlen(dims[i].sym), NB_MAX_SYM_LEN);
            node_free(n);
            return NULL;
        }
        if (dims[i].sym) {
            int k = nb__name_valid(dims[i].sym) ? nb__sym_index(g, dims[i].sym) : -1;
            if (k < 0) {
                nb__fail(g, NB_ERR_SHAPE, "input '%s': bad or too many free dimensions ('%s')",
                         name, dims[i].sym);
                node_free(n);
                return NULL;
            }
            d.e[k] = 1;
        } else if (dims[i].size < 1) {
            nb__fail(g, NB_ERR_SHAPE, "input '%s': dimension %d is %lld; dims must be >= 1", name,
                     i, (long long)dims[i].size);
            node_free(n);
            return NULL;
        } else {
            d.c = dims[i].size;
        }
        n->shape.d[i] = d;
    }
    if (check_size(g, n) || append(g, n)) {
        node_free(n);
        return NULL;
    }
    return n;
}

/* A graph's params and constants count against the memory limit together:
 * each under it, many could still exhaust memory (a fuzz finding in the ONNX
 * loader's folding was of this kind). Refuses a value of `bytes` that would
 * take the total past it; one over the limit by itself is left to the
 * tensor's own refusal. */
static bool over_budget(nb_graph *g, const char *kind, const char *name, size_t bytes)
{
    size_t limit = nb_memory_limit();
    if (bytes > limit || g->value_bytes <= limit - bytes) return false;
    nb__fail(g, NB_ERR_NOMEM, "%s '%s' (%.3g GB) would bring the graph's params and constants "
             "to %.3g GB, over the memory limit of %.3g GB (nb_set_memory_limit; nabla "
             "--max-memory)", kind, name ? name : "?", (double)bytes / 1e9,
             (double)(g->value_bytes + bytes) / 1e9, (double)limit / 1e9);
    return true;
}

/* A value's bytes; SIZE_MAX when the count overflows. */
static size_t value_bytes(int rank, const int64_t *shape, nb_dtype dt)
{
    size_t numel, bytes;
    if (nb_shape_numel(rank, shape, &numel) || __builtin_mul_overflow(numel, nb_dtype_size(dt), &bytes))
        return SIZE_MAX;
    return bytes;
}

nb_node *nb_param(nb_graph *g, const char *name, nb_dtype dt, int rank, const int64_t *shape,
                  nb_init init)
{
    if (g && dt == NB_I32) {
        nb__fail(g, NB_ERR_DTYPE, "param '%s' must be f32 or f64", name ? name : "?");
        return NULL;
    }
    nb_node *n = new_leaf(g, name, NB_NODE_PARAM, dt, rank);
    if (!n) return NULL;
    for (int i = 0; i < rank; i++) n->shape.d[i] = nb_sdim_const(shape[i]);
    size_t bytes = value_bytes(rank, shape, dt);
    if (over_budget(g, "param", name, bytes)) {
        node_free(n);
        return NULL;
    }
    nb_status st = nb_tensor_alloc(&n->value, dt, rank, shape);
    if (st == NB_ERR_NOMEM && bytes != SIZE_MAX && bytes > nb_memory_limit()) {
        nb__fail(g, st, "param '%s' needs %.3g GB, over the memory limit of %.3g GB "
                 "(nb_set_memory_limit; nabla --max-memory)", name, (double)bytes / 1e9,
                 (double)nb_memory_limit() / 1e9);
        node_free(n);
        return NULL;
    }
    if (st) {
        nb__fail(g, st, "param '%s': cannot allocate its shape (%s)", name, nb_status_str(st));
        node_free(n);
        return NULL;
    }
    if (init.kind == NB_INIT_VALUES && init.n_values) {
        if (!(n->init_values = nb_malloc(init.n_values * sizeof(double)))) {
            node_free(n);
            nb__fail(g, NB_ERR_NOMEM, "out of memory");
            return NULL;
        }
        memcpy(n->init_values, init.values, init.n_values * sizeof(double));
        init.values = n->init_values;
    }
    n->init = init;
    char err[256];
    if ((st = nb__init_tensor(&n->value, &n->init, n->name, err, sizeof err)) ||
        (st = append(g, n))) {
        nb__fail(g, st, "param '%s': %s", name, err);
        node_free(n);
        return NULL;
    }
    g->value_bytes += nb_tensor_bytes(&n->value);
    return n;
}

nb_node *nb_constant(nb_graph *g, const char *name, const nb_tensor *value)
{
    if (!g) return NULL;
    if (!value || (value->dtype != NB_F32 && value->dtype != NB_F64 && value->dtype != NB_I32) ||
        (!value->data && nb_tensor_numel(value))) {
        nb__fail(g, NB_ERR_ARG, "constant '%s': no value, or a value of an unknown dtype",
                 name ? name : "?");
        return NULL;
    }
    nb_node *n = new_leaf(g, name, NB_NODE_CONST, value->dtype, value->rank);
    if (!n) return NULL;
    for (int i = 0; i < value->rank; i++) {
        if (value->shape[i] < 1) {
            nb__fail(g, NB_ERR_SHAPE, "constant '%s': dimension %d is %lld; dims must be >= 1",
                     n->name, i, (long long)value->shape[i]);
            node_free(n);
            return NULL;
        }
        n->shape.d[i] = nb_sdim_const(value->shape[i]);
    }
    if (over_budget(g, "constant", n->name, value_bytes(value->rank, value->shape, value->dtype))) {
        node_free(n);
        return NULL;
    }
    nb_status st = nb_tensor_alloc(&n->value, value->dtype, value->rank, value->shape);
    if (st) {
        nb__fail(g, st, "constant '%s': cannot allocate its shape (%s)", n->name, nb_status_str(st));
        node_free(n);
        return NULL;
    }
    memcpy(n->value.data, value->data, nb_tensor_bytes(&n->value));
    if (append(g, n)) {
        node_free(n);
        return NULL;
    }
    g->value_bytes += nb_tensor_bytes(&n->value);
    return n;
}

const nb_tensor *nb_constant_value(const nb_node *n)
{
    return n && n->kind == NB_NODE_CONST ? &n->value : NULL;
}

bool nb_param_trainable(const nb_node *p) { return p && p->kind == NB_NODE_PARAM && !p->state; }

nb_tensor *nb_param_value(nb_node *p) { return p && p->kind == NB_NODE_PARAM ? &p->value : NULL; }

nb_status nb_param_reinit(nb_graph *g, nb_node *p)
{
    if (!g) return NB_ERR_ARG;
    if (!p) return nb__missing(g, "the param to reinitialise");
    nb__begin(g);
    if (p->kind != NB_NODE_PARAM) return nb__fail(g, NB_ERR_ARG, "'%s' is not a param", p->name);
    char err[256];
    nb_status st = nb__init_tensor(&p->value, &p->init, p->name, err, sizeof err);
    return st ? nb__fail(g, st, "param '%s': %s", p->name, err) : NB_OK;
}

/* ---- op nodes ------------------------------------------------------- */

static int find_attr(const nb_op_def *op, const char *name)
{
    for (int i = 0; i < op->n_attrs; i++)
        if (!strcmp(op->attrs[i].name, name)) return i;
    return -1;
}

/* A STRING attribute: one of the def's choices; the node keeps the def's copy
 * of the word (which outlives the caller's string) and its index. */
static nb_status set_choice(nb_graph *g, const char *node, const nb_attr_def *def, nb_attr *v,
                            nb_attr *dst)
{
    const char *const *ch = def->def.choices;
    size_t n = 0;
    while (ch && ch[n]) n++;
    for (size_t k = 0; v->s && k < n; k++)
        if (!strcmp(v->s, ch[k])) {
            v->s = ch[k];
            v->i[0] = (int64_t)k;
            v->choices = ch;
            *dst = *v;
            return NB_OK;
        }
    char list[128] = "", hint[96];
    for (size_t k = 0, len = 0; k < n && len < sizeof list; k++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", k ? ", " : "", ch[k]);
    return nb__fail(g, NB_ERR_ARG, "node '%s': attribute '%s' must be one of %s; got '%s'%s", node,
                    def->name, list, v->s ? v->s : "(null)",
                    nb_hint(hint, sizeof hint, v->s ? nb_suggest(v->s, ch, n) : NULL));
}

/* Checks a given attribute against its definition and stores it. */
static nb_status set_attr(nb_graph *g, const char *node, const nb_attr_def *def, const nb_attr *a,
                          nb_attr *dst)
{
    nb_attr v = *a;
    v.name = def->name;
    bool ok = v.type == def->type;
    if (def->type == NB_ATTR_FLOAT && a->type == NB_ATTR_INT) {
        v.type = NB_ATTR_FLOAT;
        v.f = (double)a->i[0];
        ok = true;
    } else if (def->type == NB_ATTR_INTS && a->type == NB_ATTR_INT) {
        v.type = NB_ATTR_INTS;
        v.n = 1;
        ok = true;
    } else if (def->type == NB_ATTR_DIMS && a->type == NB_ATTR_INTS) {
        v.type = NB_ATTR_DIMS;
        for (int i = 0; i < a->n; i++) v.d[i] = NB_DIM(a->i[i]);
        ok = true;
    }
    if (!ok || v.n < 0 || v.n > NB_MAX_DIMS)
        return nb__fail(g, NB_ERR_ARG, "node '%s': attribute '%s' has the wrong type", node,
                        def->name);
    if (v.type == NB_ATTR_FLOAT) v.n = 1;  /* given, so present (optional floats: n == 0) */
    if (v.type == NB_ATTR_STRING) return set_choice(g, node, def, &v, dst);
    /* symbols in DIMS point at the graph's copy of the name, not the caller's string,
     * since shape rules read them again at plan time */
    for (int i = 0; v.type == NB_ATTR_DIMS && i < v.n; i++) {
        int k = nb__sym_find(g, v.d[i].sym);
        if (k >= 0) v.d[i].sym = g->sym[k];
    }
    *dst = v;
    return NB_OK;
}

static nb_status fill_attrs(nb_graph *g, nb_node *n, const nb_attr *attrs, int n_attrs)
{
    const nb_op_def *op = n->op;
    bool given[NB_MAX_ATTRS] = {0};  /* nb_apply checked n_attrs against it */
    if (op->n_attrs && !(n->attr = nb_calloc((size_t)op->n_attrs, sizeof *n->attr)))
        return nb__fail(g, NB_ERR_NOMEM, "out of memory");
    for (int i = 0; i < op->n_attrs; i++) {
        n->attr[i] = op->attrs[i].def;
        n->attr[i].name = op->attrs[i].name;
        n->attr[i].type = op->attrs[i].type;
    }
    for (int j = 0; j < n_attrs; j++) {
        int i = find_attr(op, attrs[j].name);
        if (i < 0)
            return nb__fail(g, NB_ERR_ARG, "node '%s': %s has no attribute '%s'", n->name,
                            op->name, attrs[j].name);
        nb_status st = set_attr(g, n->name, &op->attrs[i], &attrs[j], &n->attr[i]);
        if (st) return st;
        given[i] = true;
    }
    for (int i = 0; i < op->n_attrs; i++)
        if (op->attrs[i].required && !given[i])
            return nb__fail(g, NB_ERR_ARG, "node '%s': %s needs attribute '%s'", n->name,
                            op->name, op->attrs[i].name);
    return NB_OK;
}

/* The given inputs plus the op's state must fit NB_MAX_INPUTS. */
static nb_status check_limit(nb_graph *g, const char *name, const nb_op_def *op, int n_in)
{
    int state = op->n_state > 0 ? op->n_state : 0;
    if (n_in <= NB_MAX_INPUTS - state) return NB_OK;
    return nb__fail(g, NB_ERR_ARITY, "node '%s': %s has %d inputs%s; a node may have at most %d "
                    "(NB_MAX_INPUTS)", name, op->name, n_in, state ? " plus its state" : "",
                    NB_MAX_INPUTS);
}

static nb_status check_arity(nb_graph *g, const char *name, const nb_op_def *op, int n_in)
{
    if (n_in >= op->min_in && (op->max_in < 0 || n_in <= op->max_in))
        return check_limit(g, name, op, n_in);
    if (op->max_in == op->min_in)
        return nb__fail(g, NB_ERR_ARITY, "node '%s': %s takes %d input%s, got %d", name, op->name,
                        op->min_in, op->min_in == 1 ? "" : "s", n_in);
    if (op->max_in < 0)
        return nb__fail(g, NB_ERR_ARITY, "node '%s': %s takes at least %d inputs, got %d", name,
                        op->name, op->min_in, n_in);
    return nb__fail(g, NB_ERR_ARITY, "node '%s': %s takes %d to %d inputs, got %d", name,
                    op->name, op->min_in, op->max_in, n_in);
}

static nb_status infer_node(nb_graph *g, nb_node *n)
{
    nb_shape *in = nb_malloc(sizeof *in * (size_t)(n->n_in ? n->n_in : 1));
    nb_dtype *dt = nb_malloc(sizeof *dt * (size_t)(n->n_in ? n->n_in : 1));
    nb_status st = NB_ERR_NOMEM;
    char err[NB_ERR_CAP] = "out of memory";
    if (in && dt) {
        for (int i = 0; i < n->n_in; i++) {
            in[i] = n->in[i]->shape;
            dt[i] = n->in[i]->dtype;
        }
        st = nb__infer(g, n, in, dt, NULL, &n->shape, &n->dtype, err, sizeof err);
    }
    nb_free(in);
    nb_free(dt);
    return st ? nb__fail(g, st, "%s", err) : check_size(g, n);
}

/* ---- op-owned state ------------------------------------------------ */

/* The size of a state entry: axis `axis` of input `in`, which must be fixed. */
/* The shape of a state entry: axis `axis` of input `in`, or with
 * NB_STATE_WHOLE that input's whole shape; every size must be fixed. */
static nb_status state_shape(nb_graph *g, const nb_node *n, const nb_state_def *sd, nb_dims *out)
{
    const nb_node *src = sd->in >= 0 && sd->in < n->n_in ? n->in[sd->in] : NULL;
    bool whole = sd->axis == NB_STATE_WHOLE;
    int rank = src ? src->shape.rank : 0, axis = sd->axis < 0 && !whole ? sd->axis + rank : sd->axis;
    if (!src || (!whole && (axis < 0 || axis >= rank)))
        return nb__fail(g, NB_ERR_SHAPE, "node '%s': %s keeps '%s' sized by axis %d of input %d, "
                        "which it does not have", n->name, n->op->name, sd->suffix, sd->axis, sd->in);
    int lo = whole ? 0 : axis, hi = whole ? rank : axis + 1;
    out->rank = hi - lo;
    for (int a = lo; a < hi; a++) {
        if (!nb_sdim_is_const(src->shape.d[a])) {
            char s[128], what[48] = "shape";
            nb_shape_format(g, &src->shape, s, sizeof s);
            if (!whole) snprintf(what, sizeof what, "size of axis %d", axis);
            return nb__fail(g, NB_ERR_SHAPE, "node '%s': %s keeps '%s' of the %s of %s, which "
                            "must be fixed; %s is %s", n->name, n->op->name, sd->suffix, what,
                            src->name, src->name, s);
        }
        out->d[a - lo] = src->shape.d[a].c;
    }
    return NB_OK;
}

/* Makes the op's state params NODE.suffix and appends them to n's inputs.
 * Sizes and names are all checked first, so a failure leaves no param behind
 * (short of running out of memory). */
static nb_status add_state(nb_graph *g, nb_node *n)
{
    const nb_op_def *op = n->op;
    int k = op->n_state;
    if (k <= 0) return NB_OK;
    if (k > NB_MAX_STATE)
        return nb__fail(g, NB_ERR_ARG, "node '%s': %s has too much state", n->name, op->name);
    nb_dims shape[NB_MAX_STATE];
    char name[NB_MAX_STATE][320];
    for (int s = 0; s < k; s++) {
        nb_status st = state_shape(g, n, &op->state[s], &shape[s]);
        if (st) return st;
        if (snprintf(name[s], sizeof name[s], "%s.%s", n->name, op->state[s].suffix) >=
                (int)sizeof name[s] || !nb__name_valid(name[s]))
            return nb__fail(g, NB_ERR_NAME, "node '%s': cannot name its state '%s'", n->name,
                            op->state[s].suffix);
        if (nb_graph_find(g, name[s]))
            return nb__fail(g, NB_ERR_NAME, "node '%s': %s keeps its state as '%s', a name "
                            "already taken", n->name, op->name, name[s]);
    }
    nb_node **in = nb_realloc(n->in, (size_t)(n->n_in + k) * sizeof *in);
    if (!in) return nb__fail(g, NB_ERR_NOMEM, "out of memory");
    n->in = in;
    for (int s = 0; s < k; s++) {
        nb_node *p = nb_param(g, name[s], n->dtype, shape[s].rank, shape[s].d,
                              NB_INIT(op->state[s].init));
        if (!p) return g->status;
        p->state = true;
        n->in[n->n_in++] = p;
    }
    return NB_OK;
}

nb_node *nb_apply(nb_graph *g, const nb_op_def *op, const char *name, nb_node *const *in,
                  int n_in, const nb_attr *attrs, int n_attrs)
{
    if (!g) return NULL;
    if (!op) {
        nb__fail(g, NB_ERR_UNKNOWN_OP, "node '%s': no op given (a NULL op definition)",
                 name ? name : "?");
        return NULL;
    }
    const char *why = nb__op_problem(op);  /* a def may reach here unregistered */
    if (why) {
        nb__fail(g, NB_ERR_ARG, "node '%s': op %s cannot be used: %s", name ? name : "?",
                 op->name ? op->name : "(unnamed)", why);
        return NULL;
    }
    for (int i = 0; i < n_in; i++)
        if (!in[i]) {
            nb__fail(g, NB_ERR_ARG, "node '%s': input %d is missing (an earlier call failed)",
                     name ? name : op->name, i);
            return NULL;
        }
    if (check_arity(g, name ? name : op->name, op, n_in)) return NULL;
    nb_node *n = nb_calloc(1, sizeof *n);
    if (!n) {
        nb__fail(g, NB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    n->kind = NB_NODE_OP;
    n->op = op;
    n->n_in = n_in;
    if (!(n->name = take_name(g, name, op->name))) goto fail;
    if (n_in && !(n->in = nb_malloc((size_t)n_in * sizeof *n->in))) goto fail;
    for (int i = 0; i < n_in; i++) n->in[i] = in[i];
    if (fill_attrs(g, n, attrs, n_attrs) || infer_node(g, n) || add_state(g, n) || append(g, n))
        goto fail;
    return n;
fail:
    if (!g->status) nb__fail(g, NB_ERR_NOMEM, "out of memory");
    node_free(n);
    return NULL;
}

nb_node *nb_op(nb_graph *g, const char *opname, const char *name, nb_node *const *in, int n_in,
               const nb_attr *attrs, int n_attrs)
{
    if (!g) return NULL;
    const nb_op_def *op = opname ? nb_op_find(opname) : NULL;
    if (!op) {
        char hint[160];
        nb_hint(hint, sizeof hint, opname ? nb_op_suggest(opname) : NULL);
        nb__fail(g, NB_ERR_UNKNOWN_OP, "node '%s': unknown op '%s'%s", name ? name : "?",
                 opname ? opname : "(null)", hint);
        return NULL;
    }
    return nb_apply(g, op, name, in, n_in, attrs, n_attrs);
}

/* ---- introspection -------------------------------------------------- */

size_t nb_graph_num_nodes(const nb_graph *g) { return g ? g->n_nodes : 0; }
nb_node *nb_graph_node(const nb_graph *g, size_t i) { return g && i < g->n_nodes ? g->nodes[i] : NULL; }
const char *nb_node_name(const nb_node *n) { return n ? n->name : "(null)"; }
nb_node_kind nb_node_kind_of(const nb_node *n) { return n ? n->kind : NB_NODE_INPUT; }
const nb_op_def *nb_node_opdef(const nb_node *n) { return n ? n->op : NULL; }

const char *nb_node_op(const nb_node *n)
{
    if (!n) return "?";
    if (n->op) return n->op->name;
    return n->kind == NB_NODE_OP ? "?" : leaf_word(n->kind);
}

nb_dtype nb_node_dtype(const nb_node *n) { return n ? n->dtype : NB_F32; }
int nb_node_rank(const nb_node *n) { return n ? n->shape.rank : -1; }

int64_t nb_node_dim(const nb_node *n, int axis)
{
    if (!n) return -1;
    if (axis < 0 || axis >= n->shape.rank) return -1;
    return nb_sdim_is_const(n->shape.d[axis]) ? n->shape.d[axis].c : -1;
}

int nb_node_shape_str(const nb_graph *g, const nb_node *n, char *buf, size_t cap)
{
    if (!n) return snprintf(buf, cap, "(null)");
    return nb_shape_format(g, &n->shape, buf, cap);
}

int nb_node_num_inputs(const nb_node *n) { return n ? n->n_in : 0; }
nb_node *nb_node_input(const nb_node *n, int i) { return n && i >= 0 && i < n->n_in ? n->in[i] : NULL; }

const nb_attr *nb_node_attr(const nb_node *n, const char *name)
{
    int i = n && n->op && name ? find_attr(n->op, name) : -1;
    return i < 0 ? NULL : &n->attr[i];
}

bool nb_node_is_grad(const nb_node *n) { return n && n->is_grad; }
const char *nb_node_group(const nb_node *n) { return n ? n->group : NULL; }

nb_status nb_node_set_name(nb_graph *g, nb_node *n, const char *name)
{
    if (!g) return NB_ERR_ARG;
    if (!n) return nb__missing(g, "the node to rename");
    if (name && n->name && !strcmp(n->name, name)) return NB_OK;
    if (!name) return nb__fail(g, NB_ERR_NAME, "node '%s': a NULL name", n->name);
    char *s = take_name(g, name, NULL);
    if (!s) return g->status;
    nb__names_remove(g, n);
    nb_free(n->name);
    n->name = s;
    return nb__names_add(g, n) ? nb__fail(g, NB_ERR_NOMEM, "out of memory") : NB_OK;
}

nb_status nb_node_set_group(nb_graph *g, nb_node *n, const char *group)
{
    if (!g) return NB_ERR_ARG;
    if (!n) return nb__missing(g, "the node to group");
    char *s = NULL;
    if (group && !(s = nb__strdup(group))) return nb__fail(g, NB_ERR_NOMEM, "out of memory");
    nb_free(n->group);
    n->group = s;
    return NB_OK;
}

/* The ONNX front-end as a whole: a ModelProto becomes an nb_model built with
 * the same op builders as a YAML model (onnx_internal.h explains the design).
 * Initializers become params named as in the file (their values the params'
 * values), graph inputs that are not initializers become inputs (dim_param a
 * free dimension), nodes go through the converter table in file order, and
 * the graph's outputs are the model's outputs. The first error stops the
 * load: nothing is half-loaded. */
#include <string.h>

#include "onnx_internal.h"

/* ---- values ---------------------------------------------------------- */

ox_val *ox_find(ox_ctx *c, const char *name) { return nb__strmap_get(&c->index, name); }

ox_val *ox_define(ox_ctx *c, const char *name)
{
    if (c->n_vals == c->cap_vals) {
        size_t cap = c->cap_vals ? 2 * c->cap_vals : 64;
        ox_val **v = nb_realloc(c->vals, cap * sizeof *v);
        if (!v) return NULL;
        c->vals = v;
        c->cap_vals = cap;
    }
    ox_val *v = nb_calloc(1, sizeof *v);
    if (!v || !(v->name = nb__strdup(name)) || nb__strmap_put(&c->index, v->name, v)) {
        if (v) nb_free(v->name);
        nb_free(v);
        return NULL;
    }
    c->vals[c->n_vals++] = v;
    return v;
}

nb_dtype ox_dtype(const ox_ctx *c, int type)
{
    if (ox_is_int_type(type)) return NB_I32;
    return c->force_f64 || type == OX_DOUBLE ? NB_F64 : NB_F32;
}

static bool push(nb_node ***arr, size_t *n, size_t *cap, nb_node *x)
{
    if (*n == *cap) {
        size_t nc = *cap ? 2 * *cap : 8;
        nb_node **a = nb_realloc(*arr, nc * sizeof *a);
        if (!a) return false;
        *arr = a;
        *cap = nc;
    }
    (*arr)[(*n)++] = x;
    return true;
}

static nb_status oom(ox_ctx *c)
{
    if (!c->st) snprintf(c->err, sizeof c->err, "%s: out of memory", c->file);
    return c->st = c->st ? c->st : NB_ERR_NOMEM;
}

/* A float initializer as a param: its values are the param's initial values. */
static nb_node *make_param(ox_ctx *c, ox_val *v, const char *name)
{
    nb_init init = {.kind = NB_INIT_VALUES, .values = v->k.f, .n_values = v->k.n};
    nb_node *p = nb_param(c->g, name, ox_dtype(c, v->k.type), v->k.rank, v->k.shape, init);
    if (p && !push(&c->m->params, &c->m->n_params, &c->m->cap_params, p)) return NULL;
    return p;
}

nb_node *ox_node(ox_ctx *c, ox_val *v)
{
    if (!v || v->node || !v->has_k) return v ? v->node : NULL;
    const char *name = ox_name(c, v->name);
    if (!name) return oom(c), NULL;
    if (v->initializer) {
        v->node = make_param(c, v, name);
    } else {
        nb_tensor t;
        char why[256];
        if (ox_const_to_tensor(&v->k, ox_dtype(c, v->k.type), &t, why, sizeof why)) {
            ox_fail(c, NB_ERR_FORMAT, "value '%s': %s", v->name, why);
            return NULL;
        }
        v->node = nb_constant(c->g, name, &t);
        nb_tensor_free(&t);
    }
    if (!v->node) ox_graph_fail(c);
    v->own = true;
    return v->node;
}

/* ---- the graph's inputs and initializers ------------------------------ */

/* A free dimension's symbol: dim_param when it is an identifier, else one
 * made up for the axis. */
static const char *dim_symbol(ox_ctx *c, const char *param, const char *input, int axis,
                              char *buf, size_t cap)
{
    bool ident = param && *param && !(param[0] >= '0' && param[0] <= '9');
    for (const char *s = param; ident && *s; s++)
        ident = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                *s == '_';
    if (ident) return param;
    char base[64];
    ox_sanitize(input, base, sizeof base);
    for (char *s = base; *s; s++) if (*s == '.' || *s == '-') *s = '_';
    snprintf(buf, cap, "%s%s_dim%d", (base[0] >= '0' && base[0] <= '9') ? "d" : "", base, axis);
    (void)c;
    return buf;
}

static nb_status add_input(ox_ctx *c, const Onnx__ValueInfoProto *vi)
{
    c->node = NULL;
    const char *nm = vi->name ? vi->name : "";
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type->shape)
        return ox_fail(c, NB_ERR_FORMAT, "input '%s': unsupported type (nabla reads tensors "
                       "of known rank)", nm);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    int type = tt->has_elem_type ? tt->elem_type : 0;
    if (!ox_is_int_type(type) && type != OX_FLOAT && type != OX_DOUBLE)
        return ox_fail(c, NB_ERR_FORMAT, "input '%s': unsupported element type %d", nm, type);
    if (tt->shape->n_dim > NB_MAX_DIMS)
        return ox_fail(c, NB_ERR_FORMAT, "input '%s': unsupported rank %zu", nm, tt->shape->n_dim);
    nb_dim dims[NB_MAX_DIMS];
    char syms[NB_MAX_DIMS][96];
    for (size_t d = 0; d < tt->shape->n_dim; d++) {
        const Onnx__TensorShapeProto__Dimension *dm = tt->shape->dim[d];
        if (dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
            dm->dim_value > 0)
            dims[d] = NB_DIM(dm->dim_value);
        else if (dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
            return ox_fail(c, NB_ERR_FORMAT, "input '%s': unsupported dimension %lld (nabla "
                           "needs sizes >= 1)", nm, (long long)dm->dim_value);
        else
            dims[d] = NB_SYM(dim_symbol(c, dm->value_case ? dm->dim_param : NULL, nm, (int)d,
                                        syms[d], sizeof syms[d]));
    }
    if (!ox_is_int_type(type) && !c->saw_float) {
        c->saw_float = true;
        c->m->dtype = type == OX_DOUBLE ? NB_F64 : NB_F32;
    }
    ox_val *v = ox_define(c, nm);
    const char *name = v ? ox_name(c, nm) : NULL;
    if (!name) return oom(c);
    v->own = true;
    v->node = nb_input(c->g, name, ox_dtype(c, type), (int)tt->shape->n_dim, dims);
    if (!v->node) return ox_graph_fail(c);
    return push(&c->m->inputs, &c->m->n_inputs, &c->m->cap_inputs, v->node) ? NB_OK : oom(c);
}

static nb_status add_initializer(ox_ctx *c, const Onnx__TensorProto *t)
{
    c->node = NULL;
    ox_val *v = ox_define(c, t->name ? t->name : "");
    if (!v) return oom(c);
    char why[300];
    nb_status st = ox_const_from_proto(c, t, &v->k, why, sizeof why);
    if (st) return ox_fail(c, st, "initializer: %s", why);
    v->has_k = true;
    v->initializer = !ox_is_int_type(v->k.type);
    return NB_OK;
}

/* ---- nodes ----------------------------------------------------------- */

static bool made_since(const ox_ctx *c, size_t before, const nb_node *n)
{
    for (size_t i = before; i < nb_graph_num_nodes(c->g); i++)
        if (nb_graph_node(c->g, i) == n) return true;
    return false;
}

/* Records the converter's results under the node's output names: new nodes
 * take the (sanitised) ONNX name. */
static nb_status define_outputs(ox_ctx *c, ox_node_io *io, size_t before)
{
    for (int i = 0; i < io->n_out; i++) {
        const char *nm = io->p->output[i];
        if (!*nm) continue;  /* an omitted optional output */
        if (!io->out[i] && !io->has_outk[i])
            return ox_unsupported(c, "output %d ('%s')", i, nm);
        ox_val *v = ox_define(c, nm);
        if (!v) return oom(c);
        if (io->has_outk[i]) {
            v->k = io->outk[i];
            v->has_k = true;
            io->has_outk[i] = false;
        }
        v->node = io->out[i];
        if (v->node && made_since(c, before, v->node)) {
            const char *name = ox_name(c, nm);
            if (!name) return oom(c);
            if (nb_node_set_name(c->g, v->node, name)) return ox_graph_fail(c);
            v->own = true;
        }
    }
    return NB_OK;
}

/* Is `name` one of the space-separated words of `list`? */
static bool known_attr(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *s = list; n && (s = strstr(s, name)); s += n)
        if ((s == list || s[-1] == ' ') && (s[n] == ' ' || !s[n])) return true;
    return false;
}

static nb_status convert_node(ox_ctx *c, const Onnx__NodeProto *p)
{
    c->node = p;
    if (p->domain && *p->domain && strcmp(p->domain, "ai.onnx"))
        return ox_unsupported(c, "domain '%s'", p->domain);
    const ox_op *op = ox_op_find(p->op_type);
    if (!op) return ox_unsupported(c, "op (no converter for '%s')", p->op_type);
    for (size_t i = 0; i < p->n_attribute; i++) {
        const char *a = p->attribute[i]->name ? p->attribute[i]->name : "";
        if (!known_attr(op->attrs, a) && strcmp(a, "consumed_inputs"))
            return ox_unsupported(c, "attribute '%s'", a);
    }
    if (p->n_input > 16 || p->n_output > 8)
        return ox_unsupported(c, "number of inputs or outputs (%zu, %zu)", p->n_input, p->n_output);
    ox_node_io io;
    memset(&io, 0, sizeof io);
    io.p = p;
    io.n_in = (int)p->n_input;
    io.n_out = (int)p->n_output;
    for (int i = 0; i < io.n_in; i++) {
        if (!*p->input[i]) continue;
        if (!(io.in[i] = ox_find(c, p->input[i])))
            return ox_fail(c, NB_ERR_FORMAT, "input '%s' is not defined before this node",
                           p->input[i]);
    }
    size_t before = nb_graph_num_nodes(c->g);
    nb_status st = op->fn(c, &io);
    if (!st) st = define_outputs(c, &io, before);
    for (int i = 0; i < 8; i++)  /* values no output took (a node without outputs) */
        if (io.has_outk[i]) ox_const_free(&io.outk[i]);
    return st ? st : c->st;
}

/* ---- outputs ---------------------------------------------------------- */

static nb_status add_output(ox_ctx *c, const Onnx__ValueInfoProto *vi)
{
    c->node = NULL;
    ox_val *v = ox_find(c, vi->name ? vi->name : "");
    if (!v) return ox_fail(c, NB_ERR_FORMAT, "output '%s' is not computed by any node", vi->name);
    nb_node *n = ox_node(c, v);
    if (!n) return c->st ? c->st : ox_fail(c, NB_ERR_FORMAT, "output '%s' has no value", vi->name);
    /* An output that is an input, a param or another value (Identity): a
     * copy of its own, so that it is written under its own name. */
    bool shared = false;
    for (size_t i = 0; i < c->m->n_outputs; i++) shared |= c->m->outputs[i] == n;
    if ((!v->own || shared) && nb_node_dtype(n) != NB_I32) {
        const char *name = ox_name(c, vi->name);
        if (!name) return oom(c);
        n = nb_scale(c->g, n, 1, 0);
        if (!n || nb_node_set_name(c->g, n, name)) return ox_graph_fail(c);
    }
    return push(&c->m->outputs, &c->m->n_outputs, &c->cap_outputs, n) ? NB_OK : oom(c);
}

/* ---- the model -------------------------------------------------------- */

static nb_status build(ox_ctx *c, const Onnx__ModelProto *mp)
{
    const Onnx__GraphProto *gp = mp->graph;
    if (!gp)
        return ox_fail(c, NB_ERR_FORMAT, "not an ONNX model (no graph; is it a .onnx file?)");
    c->opset = 1;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if ((!o->domain || !*o->domain || !strcmp(o->domain, "ai.onnx")) && o->has_version)
            c->opset = o->version;
    }
    if (gp->n_sparse_initializer)
        return ox_fail(c, NB_ERR_FORMAT, "unsupported sparse initializers");
    for (size_t i = 0; i < gp->n_initializer && !c->st; i++) add_initializer(c, gp->initializer[i]);
    for (size_t i = 0; i < gp->n_input && !c->st; i++)
        if (!ox_find(c, gp->input[i]->name ? gp->input[i]->name : "")) add_input(c, gp->input[i]);
    for (size_t i = 0; i < gp->n_node && !c->st; i++) convert_node(c, gp->node[i]);
    for (size_t i = 0; i < gp->n_output && !c->st; i++) add_output(c, gp->output[i]);
    /* params for every float initializer, used or not, so that weights files
     * of the model load whatever subset of it the graph needs */
    for (size_t i = 0; i < c->n_vals && !c->st; i++)
        if (c->vals[i]->initializer) ox_node(c, c->vals[i]);
    c->m->n_trainable = c->m->n_params;
    if (!c->st && gp->name) {
        nb_free(c->m->name);
        if (!(c->m->name = nb__strdup(gp->name))) oom(c);
    }
    return c->st;
}

static void free_ctx(ox_ctx *c)
{
    for (size_t i = 0; i < c->n_vals; i++) {
        ox_const_free(&c->vals[i]->k);
        nb_free(c->vals[i]->name);
        nb_free(c->vals[i]);
    }
    nb_free(c->vals);
    nb__strmap_free(&c->index);
    const char *key;
    void *val;
    for (size_t i = 0; nb__strmap_next(&c->taken, &i, &key, &val);) nb_free(val);
    nb__strmap_free(&c->taken);
}

static void give_diag(const char *msg, nb_diags *diags)
{
    if (!diags) return;
    char *line = nb__strdup(msg);
    char **lines = line ? nb_malloc(sizeof *lines) : NULL;
    if (!lines) {
        nb_free(line);
        return;
    }
    lines[0] = line;
    diags->lines = lines;
    diags->n = 1;
}

/* model.c's directory helper is static there; the ONNX model needs the same. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return nb__strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = nb_malloc(n + 1);
    if (d) memcpy(d, path, n), d[n] = 0;
    return d;
}

nb_status ox_load_bytes(const char *path, const uint8_t *buf, size_t len, const nb_load_opts *opts,
                        nb_model **out, nb_diags *diags)
{
    ox_ctx c;
    memset(&c, 0, sizeof c);
    c.file = path;
    c.force_f64 = opts && opts->force_f64;
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    if (!mp) {
        snprintf(c.err, sizeof c.err, "%s: not an ONNX model (the protobuf cannot be decoded: "
                 "truncated or not a .onnx file)", path);
        give_diag(c.err, diags);
        return NB_ERR_FORMAT;
    }
    nb_status st;
    nb_model *m = c.m = nb_calloc(1, sizeof *m);
    if (m) {
        nm_train_defaults(&m->train);
        m->g = c.g = nb_graph_new();
        m->name = nb__strdup("");
        m->dir = dir_of(path);
        m->dtype = NB_F32;  /* the file's: f64 when its first float input is double */
    }
    if (!m || !m->g || !m->name || !m->dir || !m->train.format || !m->train.optimizer)
        st = oom(&c);
    else
        st = build(&c, mp);
    onnx__model_proto__free_unpacked(mp, NULL);
    free_ctx(&c);
    if (st) {
        give_diag(c.err, diags);
        nb_model_free(m);
        return st;
    }
    *out = m;
    return NB_OK;
}

nb_status nb_model_load_onnx(const char *path, const nb_load_opts *opts, nb_model **out,
                             nb_diags *diags)
{
    if (diags) *diags = (nb_diags){0, NULL};
    if (out) *out = NULL;
    if (!path || !out) return NB_ERR_ARG;
    uint8_t *buf;
    size_t len;
    char err[512];
    nb_status st = ox_read_file(path, &buf, &len, err, sizeof err);
    if (st) {
        give_diag(err, diags);
        return st;
    }
    st = ox_load_bytes(path, buf, len, opts, out, diags);
    nb_free(buf);
    return st;
}

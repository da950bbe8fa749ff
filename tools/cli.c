/* Shared pieces of the `nabla` command: messages, option values, loading
 * models and reading inputs. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- messages ---------------------------------------------------------- */

/* "nabla CMD: [warning: ]message" on stderr, one line. */
static void say(const char *cmd, const char *kind, const char *fmt, va_list ap)
{
    fprintf(stderr, "nabla %s: %s", cmd, kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int nbt_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say(cmd, "", fmt, ap);
    va_end(ap);
    return NBT_ERROR;
}

void nbt_warn(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say(cmd, "warning: ", fmt, ap);
    va_end(ap);
}

int nbt_bad_usage(const char *cmd, int c, const char *arg)
{
    return nbt_fail(cmd, c == ':' ? "option '%s' needs a value (see 'nabla %s --help')"
                                  : "unknown option '%s' (see 'nabla %s --help')", arg, cmd);
}

int nbt_extra_args(const char *cmd, int argc, char **argv, int first, int max)
{
    if (argc - first <= max) return NBT_OK;
    return nbt_fail(cmd, "unexpected argument '%s' (see 'nabla %s --help')", argv[first + max], cmd);
}

/* ---- option values ----------------------------------------------------- */

int nbt_parse_double(const char *cmd, const char *opt, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !(v == v))
        return nbt_fail(cmd, "%s needs a number, not '%s'", opt, s);
    *out = v;
    return NBT_OK;
}

int nbt_parse_i64(const char *cmd, const char *opt, const char *s, int64_t lo, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo)
        return nbt_fail(cmd, "%s needs an integer >= %" PRId64 ", not '%s'", opt, lo, s);
    *out = v;
    return NBT_OK;
}

int nbt_parse_mode(const char *cmd, const char *s, bool *training)
{
    if (strcmp(s, "train") && strcmp(s, "eval"))
        return nbt_fail(cmd, "--mode needs train or eval, not '%s'", s);
    *training = !strcmp(s, "train");
    return NBT_OK;
}

static bool is_identifier(const char *s, size_t n)
{
    if (!n || !(isalpha((unsigned char)s[0]) || s[0] == '_')) return false;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_') return false;
    return true;
}

int64_t nbt_dim_value(const nbt_dims *d, const char *sym)
{
    for (int i = 0; i < d->n; i++)
        if (!strcmp(d->b[i].sym, sym)) return d->b[i].value;
    return 0;
}

int nbt_bind(const char *cmd, nbt_dims *d, const char *sym, int64_t v, const char *from)
{
    /* an empty array (zero rows) is the usual way to get here: say so, not "unbound" */
    if (v < 1)
        return nbt_fail(cmd, "dimension %s is %" PRId64 " from %s: that array is empty along the "
                        "axis of %s, and free dimensions must be >= 1", sym, v, from, sym);
    for (int i = 0; i < d->n; i++) {
        if (strcmp(d->b[i].sym, sym)) continue;
        if (d->b[i].value == v) return NBT_OK;
        return nbt_fail(cmd, "dimension %s is %" PRId64 " from %s but %" PRId64 " from %s", sym,
                        d->b[i].value, d->from[i], v, from);
    }
    if (d->n == NB_MAX_SYMS || strlen(sym) >= sizeof d->sym[0])
        return nbt_fail(cmd, "too many free dimensions (or too long a name: '%s')", sym);
    snprintf(d->sym[d->n], sizeof d->sym[0], "%s", sym);
    snprintf(d->from[d->n], sizeof d->from[0], "%s", from);
    d->b[d->n] = (nb_bind){d->sym[d->n], v};
    d->n++;
    return NBT_OK;
}

int nbt_parse_dim(const char *cmd, const char *s, nbt_dims *d)
{
    const char *eq = strchr(s, '=');
    char sym[NB_MAX_SYM_LEN + 1];
    int64_t v;
    if (!eq || !is_identifier(s, (size_t)(eq - s)))
        return nbt_fail(cmd, "--dim needs SYMBOL=SIZE (like N=64), not '%s'", s);
    if ((size_t)(eq - s) >= sizeof sym)
        return nbt_fail(cmd, "--dim: the symbol '%.24s...' has %zu characters; a free dimension's name "
                        "has at most %d", s, (size_t)(eq - s), NB_MAX_SYM_LEN);
    memcpy(sym, s, (size_t)(eq - s));
    sym[eq - s] = 0;
    if (nbt_parse_i64(cmd, "--dim", eq + 1, 1, &v)) return NBT_ERROR;
    for (int i = 0; i < d->n; i++)  /* the last --dim for a symbol wins */
        if (!strcmp(d->b[i].sym, sym)) {
            d->b[i].value = v;
            return NBT_OK;
        }
    return nbt_bind(cmd, d, sym, v, "--dim");
}

int nbt_parse_feed(const char *cmd, char *s, nbt_feeds *f)
{
    char *eq = strchr(s, '=');
    if (!eq || eq == s || !eq[1])
        return nbt_fail(cmd, "--in needs NAME=FILE.npy, not '%s'", s);
    if (f->n == NBT_MAX_FEEDS) return nbt_fail(cmd, "too many --in options");
    *eq = 0;
    f->a[f->n++] = (nbt_feed_arg){s, eq + 1};
    return NBT_OK;
}

int nbt_check_dim_names(const char *cmd, const nb_graph *g, const nbt_dims *d)
{
    for (int i = 0; i < d->n; i++) {
        bool found = false;
        for (int k = 0; k < nb_graph_num_syms(g); k++) found |= !strcmp(nb_graph_sym(g, k), d->b[i].sym);
        if (found) continue;
        const char *syms[NB_MAX_SYMS];
        for (int k = 0; k < nb_graph_num_syms(g); k++) syms[k] = nb_graph_sym(g, k);
        char hint[160];
        nb_hint(hint, sizeof hint, nb_suggest(d->b[i].sym, syms, (size_t)nb_graph_num_syms(g)));
        return nbt_fail(cmd, "--dim %s: the model has no free dimension '%s'%s", d->b[i].sym,
                        d->b[i].sym, hint);
    }
    return NBT_OK;
}

/* ---- models -------------------------------------------------------------- */

int nbt_load_weights(const char *cmd, nb_graph *g, const char *path)
{
    nb_diags ignored = {0};
    if (nb_weights_load(g, path, &ignored)) return nbt_fail(cmd, "%s", nb_graph_error(g));
    for (size_t i = 0; i < ignored.n; i++)
        if (strncmp(ignored.lines[i], "opt.", 4))
            nbt_warn(cmd, "%s: tensor '%s' names no param of the model; ignored", path, ignored.lines[i]);
    nb_diags_free(&ignored);
    return NBT_OK;
}

int nbt_load(const char *cmd, const char *path, bool force_f64, nb_model **out)
{
    nb_diags diags = {0};
    nb_load_opts o = {.force_f64 = force_f64};
    nb_status st = nb_model_load_file(path, &o, out, &diags);
    for (size_t i = 0; i < diags.n; i++) fprintf(stderr, "%s\n", diags.lines[i]);
    if (st && !diags.n) nbt_fail(cmd, "%s: cannot load (%s)", path, nb_status_str(st));
    nb_diags_free(&diags);
    return st ? NBT_ERROR : NBT_OK;
}

bool nbt_is_onnx(const char *path)
{
    size_t n = strlen(path);
    return n >= 5 && !strcmp(path + n - 5, ".onnx");
}

int nbt_sum_loss(const char *cmd, nb_model *m, const char *node, const char *name)
{
    nb_graph *g = nb_model_graph(m);
    nb_node *parts[64];
    int n = 0;
    if (node) {
        if (!(parts[n++] = nb_graph_find(g, node)))
            return nbt_fail(cmd, "--loss %s: the model has no such node", node);
    } else {
        for (size_t i = 0; i < nb_model_num_outputs(m) && n < 64; i++)
            if (nb_node_dtype(nb_model_output(m, i)) != NB_I32) parts[n++] = nb_model_output(m, i);
        if (!n) return nbt_fail(cmd, "the model has no loss and no float output to differentiate");
    }
    nb_node *loss = NULL;
    for (int i = 0; i < n; i++) {
        nb_node *s = nb_sum(g, parts[i], NULL, 0, false);
        loss = loss ? nb_add(g, loss, s) : s;
    }
    if (!loss || nb_node_set_name(g, loss, name) || nb_model_set_loss(m, loss))
        return nbt_fail(cmd, "cannot make the loss: %s", nb_graph_error(g));
    return NBT_OK;
}

nb_node *nbt_find_input(const char *cmd, const nb_model *m, const char *name, int *rc)
{
    const char *names[256];
    size_t n = nb_model_num_inputs(m);
    for (size_t i = 0; i < n; i++) {
        nb_node *x = nb_model_input(m, i);
        if (!strcmp(nb_node_name(x), name)) return x;
        if (i < 256) names[i] = nb_node_name(x);
    }
    char hint[160];
    nb_hint(hint, sizeof hint, nb_suggest(name, names, n < 256 ? n : 256));
    *rc = nbt_fail(cmd, "the model has no input '%s'%s", name, hint);
    return NULL;
}

int nbt_convert(const char *cmd, nb_tensor *t, nb_dtype to)
{
    nb_status st = nb_tensor_convert(t, to);
    return st ? nbt_fail(cmd, "cannot convert %s data to %s (%s)", nb_dtype_name(t->dtype),
                         nb_dtype_name(to), nb_status_str(st))
              : NBT_OK;
}

/* ---- inputs -------------------------------------------------------------- */

static void shape_tuple(const nb_tensor *t, char *buf, size_t cap)
{
    size_t len = 0;
    buf[len++] = '(';
    for (int i = 0; i < t->rank && len + 24 < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%" PRId64, i ? ", " : "", t->shape[i]);
    snprintf(buf + len, cap - len, "%s)", t->rank == 1 ? "," : "");
}

/* Element types: class labels come as integers, everything else as floats. */
static int check_dtype(const char *cmd, const nb_node *x, const char *path, const nb_tensor *t)
{
    bool want_int = nb_node_dtype(x) == NB_I32, have_int = t->dtype == NB_I32;
    if (want_int == have_int) return NBT_OK;
    return nbt_fail(cmd, "input '%s' is %s but %s holds %s data", nb_node_name(x),
                    want_int ? "i32 (class labels)" : nb_dtype_name(nb_node_dtype(x)), path,
                    have_int ? "integer" : "float");
}

/* Each axis is a fixed size, which must match, or a symbol, which gets bound. */
static int check_shape(const char *cmd, const nb_graph *g, const nb_node *x, const char *path,
                       const nb_tensor *t, nbt_dims *d)
{
    char want[256], have[256], from[96];
    nb_node_shape_str(g, x, want, sizeof want);
    shape_tuple(t, have, sizeof have);
    if (t->rank != nb_node_rank(x))
        return nbt_fail(cmd, "input '%s' is %s (rank %d) but %s has shape %s", nb_node_name(x),
                        want, nb_node_rank(x), path, have);
    snprintf(from, sizeof from, "input '%s' (%s)", nb_node_name(x), path);
    for (int a = 0; a < t->rank; a++) {
        int64_t fixed = nb_node_dim(x, a);
        const char *sym = nb_node_dim_sym(g, x, a);
        if (fixed >= 0 && fixed != t->shape[a])
            return nbt_fail(cmd, "input '%s' is %s but %s has shape %s: axis %d must be %" PRId64,
                            nb_node_name(x), want, path, have, a, fixed);
        if (fixed < 0 && !sym)
            return nbt_fail(cmd, "input '%s': axis %d of %s is not a single free dimension",
                            nb_node_name(x), a, want);
        if (fixed < 0 && nbt_bind(cmd, d, sym, t->shape[a], from)) return NBT_ERROR;
    }
    return NBT_OK;
}

static int read_one(const char *cmd, const nb_model *m, const nbt_feed_arg *a, nbt_dims *d,
                    nbt_inputs *in)
{
    int rc = NBT_OK;
    nb_node *x = nbt_find_input(cmd, m, a->name, &rc);
    if (!x) return rc;
    if (nbt_input_of(in, x)) return nbt_fail(cmd, "input '%s' is given twice", a->name);
    nb_tensor t;
    /* a float input takes integer arrays too, converted exactly (or an error) */
    nb_dtype dt = nb_node_dtype(x);
    if (dt == NB_I32 ? nb_npy_read(a->path, &t) : nb_npy_read_float(a->path, dt, &t))
        return nbt_fail(cmd, "%s", nb_last_error());
    if ((rc = check_dtype(cmd, x, a->path, &t)) ||
        (rc = check_shape(cmd, nb_model_graph(m), x, a->path, &t, d))) {
        nb_tensor_free(&t);
        return rc;
    }
    in->node[in->n] = x;
    in->t[in->n++] = t;
    return NBT_OK;
}

int nbt_read_inputs(const char *cmd, const nb_model *m, const nbt_feeds *f, nbt_dims *d,
                    nbt_inputs *in)
{
    for (int i = 0; i < f->n; i++)
        if (read_one(cmd, m, &f->a[i], d, in)) return NBT_ERROR;
    return NBT_OK;
}

void nbt_inputs_free(nbt_inputs *in)
{
    for (int i = 0; i < in->n; i++) nb_tensor_free(&in->t[i]);
    in->n = 0;
}

const nb_tensor *nbt_input_of(const nbt_inputs *in, const nb_node *node)
{
    for (int i = 0; i < in->n; i++)
        if (in->node[i] == node) return &in->t[i];
    return NULL;
}

/* ---- dependencies -------------------------------------------------------- */

typedef struct node_ix {
    const nb_node *n;
    size_t i;
} node_ix;

static int cmp_node_ix(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const node_ix *)a)->n, y = (uintptr_t)((const node_ix *)b)->n;
    return (x > y) - (x < y);
}

/* Position of n in the graph's creation order, or -1 when it is not a node of it. */
static long index_of(const node_ix *ix, size_t n, const nb_node *x)
{
    node_ix key = {x, 0};
    const node_ix *f = x ? bsearch(&key, ix, n, sizeof *ix, cmp_node_ix) : NULL;
    return f ? (long)f->i : -1;
}

int nbt_depends_on(const char *cmd, const nb_graph *g, nb_node *const *from, int n_from,
                   nb_node *const *of, int n_of, bool *dep)
{
    size_t n = nb_graph_num_nodes(g);
    node_ix *ix = malloc((n ? n : 1) * sizeof *ix);
    bool *mark = calloc(n ? n : 1, sizeof *mark);
    if (!ix || !mark) {
        free(ix);
        free(mark);
        return nbt_fail(cmd, "out of memory");
    }
    for (size_t i = 0; i < n; i++) ix[i] = (node_ix){nb_graph_node(g, i), i};
    qsort(ix, n, sizeof *ix, cmp_node_ix);
    for (int k = 0; k < n_from; k++) {
        long i = index_of(ix, n, from[k]);
        if (i >= 0) mark[i] = true;
    }
    /* creation order is topological: a node's inputs come before it, so one
     * backward sweep marks everything the marked nodes read */
    for (size_t i = n; i-- > 0;) {
        if (!mark[i]) continue;
        const nb_node *x = nb_graph_node(g, i);
        for (int j = 0; j < nb_node_num_inputs(x); j++) {
            long k = index_of(ix, n, nb_node_input(x, j));
            if (k >= 0) mark[k] = true;
        }
    }
    for (int k = 0; k < n_of; k++) {
        long i = index_of(ix, n, of[k]);
        dep[k] = i >= 0 && mark[i];
    }
    free(ix);
    free(mark);
    return NBT_OK;
}

/* ---- formatting ----------------------------------------------------------- */

void nbt_unravel(size_t i, int rank, const int64_t *shape, char *buf, size_t cap)
{
    size_t idx[NB_MAX_DIMS] = {0}, len = 0;
    for (int a = rank; a-- > 0;) {
        idx[a] = shape[a] > 0 ? i % (size_t)shape[a] : 0;
        i = shape[a] > 0 ? i / (size_t)shape[a] : 0;
    }
    len += (size_t)snprintf(buf, cap, "(");
    for (int a = 0; a < rank && len < cap; a++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%zu", a ? ", " : "", idx[a]);
    if (len < cap) snprintf(buf + len, cap - len, ")");
}

void nbt_commas(double v, char *buf, size_t cap)
{
    char digits[64];
    if (fabs(v) >= 1e21) {  /* past 2^64 and more digits than a table column holds */
        snprintf(buf, cap, "%.3e", v);
        return;
    }
    snprintf(digits, sizeof digits, "%.0f", v);
    size_t n = strlen(digits), len = 0, lead = digits[0] == '-';
    for (size_t i = 0; i < n && len + 2 < cap; i++) {
        if (i > lead && (n - i) % 3 == 0) buf[len++] = ',';
        buf[len++] = digits[i];
    }
    buf[len] = 0;
}

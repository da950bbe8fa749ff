/* The harness every test links (see testutil.h). */
#include "testutil.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The next of 16 static buffers for returned strings. */
static char *ring(void)
{
    static char buf[16][1024];
    static int k;
    k = (k + 1) % 16;
    return buf[k];
}

/* ---- the environment and the source tree ---- */

const char *test_env(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v && *v, "%s is not set (run the tests through meson test)", name);
    return v;
}

const char *test_dir(void) { return test_env("NABLA_TEST_DIR"); }

const char *test_file(const char *fmt, ...)
{
    char *p = ring();
    int n = snprintf(p, 1024, "%s/", test_dir());
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p + n, 1024 - (size_t)n, fmt, ap);
    va_end(ap);
    cr_assert_eq(access(p, R_OK), 0, "missing or unreadable test file %s", p);
    return p;
}

char *run_shell(const char *cmd, int *status)
{
    size_t len = strlen(cmd) + 8, cap = 4096, n = 0;
    char *full = malloc(len), *out = malloc(cap);
    cr_assert(full && out);
    snprintf(full, len, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    free(full);
    cr_assert_not_null(p, "cannot run %s", cmd);
    for (size_t got; (got = fread(out + n, 1, cap - n - 1, p)) > 0;) {
        n += got;
        if (cap - n < 2) out = realloc(out, cap *= 2);
        cr_assert_not_null(out);
    }
    out[n] = 0;
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return out;
}

/* ---- the temporary folder ---- */

static char tmp_dir[64];

void tmp_make(void)
{
    strcpy(tmp_dir, "/tmp/nabla-test-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp_dir), "cannot make a temporary folder");
}

/* rm -r without following links */
static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st)) return;
    DIR *d = S_ISDIR(st.st_mode) ? opendir(path) : NULL;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char sub[1024];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        remove_tree(sub);
    }
    if (d) closedir(d);
    remove(path);
}

void tmp_remove(void)
{
    if (tmp_dir[0]) remove_tree(tmp_dir);
    tmp_dir[0] = 0;
}

const char *tmp_path(const char *name)
{
    char *p = ring();
    snprintf(p, 1024, "%s/%s", tmp_dir, name);
    return p;
}

int tmp_count_files(void)
{
    int n = 0;
    DIR *d = opendir(tmp_dir);
    cr_assert_not_null(d, "cannot read the temporary folder '%s'", tmp_dir);
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* ---- files ---- */

void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s", path);
    size_t put = fwrite(data, 1, len, f);
    cr_assert_eq(fclose(f) == 0 && put == len, true, "cannot write %zu bytes to %s", len, path);
}

void write_text(const char *path, const char *text) { write_file(path, text, strlen(text)); }

char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot read %s", path);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    for (size_t got; (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (cap - n < 2) buf = realloc(buf, cap *= 2);
        cr_assert_not_null(buf);
    }
    fclose(f);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

/* ---- tensors and .npy ---- */

nb_tensor tensor_of(nb_dtype dt, int rank, const int64_t *shape, const double *v)
{
    nb_tensor t;
    cr_assert_eq(nb_tensor_alloc(&t, dt, rank, shape), NB_OK, "%s", nb_last_error());
    for (size_t i = 0; v && i < nb_tensor_numel(&t); i++) set_elem(dt, t.data, i, v[i]);
    return t;
}

void write_npy(const char *path, nb_dtype dt, int rank, const int64_t *shape, const double *v)
{
    nb_tensor t = tensor_of(dt, rank, shape, v);
    nb_status st = nb_npy_write(path, &t);
    nb_tensor_free(&t);
    cr_assert_eq(st, NB_OK, "%s", nb_last_error());
}

void write_npy_f64(const char *path, int rank, const int64_t *shape, const double *v)
{
    write_npy(path, NB_F64, rank, shape, v);
}

void write_npy_i32(const char *path, int rank, const int64_t *shape, const int32_t *v)
{
    nb_tensor t;
    cr_assert_eq(nb_tensor_alloc(&t, NB_I32, rank, shape), NB_OK, "%s", nb_last_error());
    memcpy(t.data, v, nb_tensor_bytes(&t));
    nb_status st = nb_npy_write(path, &t);
    nb_tensor_free(&t);
    cr_assert_eq(st, NB_OK, "%s", nb_last_error());
}

unsigned char *npy_buf(int major, const char *dict, const void *data, size_t dlen, size_t *len)
{
    size_t pre = major == 1 ? 10 : 12, hl = strlen(dict) + 1;
    size_t total = (pre + hl + 63) / 64 * 64;
    unsigned char *b = malloc(total + dlen + 1);
    if (!b) return NULL;
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    size_t h = total - pre;
    for (size_t i = 0; i < pre - 8; i++) b[8 + i] = (unsigned char)(h >> (8 * i));
    memset(b + pre, ' ', h);
    memcpy(b + pre, dict, strlen(dict));
    b[total - 1] = '\n';
    if (dlen) memcpy(b + total, data, dlen);
    *len = total + dlen;
    return b;
}

nb_tensor read_npy_f64(const char *path)
{
    nb_tensor t, d;
    cr_assert_eq(nb_npy_read(path, &t), NB_OK, "%s", nb_last_error());
    if (t.dtype == NB_F64) return t;
    cr_assert_eq(nb_tensor_alloc(&d, NB_F64, t.rank, t.shape), NB_OK);
    for (size_t i = 0; i < nb_tensor_numel(&t); i++) ((double *)d.data)[i] = get_elem(t.dtype, t.data, i);
    nb_tensor_free(&t);
    return d;
}

/* ---- values, shapes, random fills ---- */

double get_elem(nb_dtype dt, const void *buf, size_t i)
{
    switch (dt) {
    case NB_F64: return ((const double *)buf)[i];
    case NB_F32: return ((const float *)buf)[i];
    default: return ((const int32_t *)buf)[i];
    }
}

void set_elem(nb_dtype dt, void *buf, size_t i, double v)
{
    switch (dt) {
    case NB_F64: ((double *)buf)[i] = v; break;
    case NB_F32: ((float *)buf)[i] = (float)v; break;
    default: ((int32_t *)buf)[i] = (int32_t)lround(v); break;
    }
}

void *values_as(nb_dtype dt, const double *v, size_t n)
{
    void *d = malloc((n ? n : 1) * nb_dtype_size(dt));
    for (size_t i = 0; d && i < n; i++) set_elem(dt, d, i, v[i]);
    return d;
}

size_t shape_numel(int rank, const int64_t *shape)
{
    size_t n = 1;
    for (int i = 0; i < rank; i++) n *= (size_t)shape[i];
    return n;
}

void fill_iota(double *v, size_t n)
{
    for (size_t i = 0; i < n; i++) v[i] = (double)i;
}

void fill_uniform(nb_rng *r, double *v, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++) v[i] = lo + (hi - lo) * nb_rng_uniform(r);
}

void fill_normal(nb_rng *r, double *v, size_t n)
{
    for (size_t i = 0; i < n; i++) v[i] = nb_rng_normal(r);
}

void fill_random(double *v, size_t n, uint64_t seed)
{
    nb_rng r;
    nb_rng_seed(&r, seed);
    fill_uniform(&r, v, n, -1, 1);
}

/* ---- comparisons ---- */

bool is_close(double got, double want, double atol, double rtol)
{
    return fabs(got - want) <= atol + rtol * fabs(want);
}

static bool is_near(double got, double want, double tol) { return fabs(got - want) <= tol * fmax(1, fabs(want)); }

/* One expectation for the whole array: how many differ, and the first. */
static void expect_all(const double *got, const double *want, size_t n, const char *what, const char *rule,
                       bool (*ok)(double, double, const double *), const double *tol)
{
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++)
        if (!ok(got[i], want[i], tol) && !bad++) first = i;
    if (bad)
        cr_expect(false, "%s: %zu of %zu differ (%s); first [%zu] = %.17g, want %.17g", what, bad, n, rule, first,
                  got[first], want[first]);
}

static bool ok_close(double g, double w, const double *t) { return is_close(g, w, t[0], t[1]); }
static bool ok_near(double g, double w, const double *t) { return is_near(g, w, t[0]); }

void expect_close(const double *got, const double *want, size_t n, double atol, double rtol, const char *what)
{
    char rule[64];
    snprintf(rule, sizeof rule, "atol %g, rtol %g", atol, rtol);
    expect_all(got, want, n, what, rule, ok_close, (const double[]){atol, rtol});
}

void expect_near(const double *got, const double *want, size_t n, double tol, const char *what)
{
    char rule[64];
    snprintf(rule, sizeof rule, "tol %g", tol);
    expect_all(got, want, n, what, rule, ok_near, (const double[]){tol});
}

void assert_has(const char *text, const char *part)
{
    cr_assert(text && strstr(text, part), "message '%s' lacks '%s'", text ? text : "(null)", part);
}

void assert_error(nb_status got, nb_status want, const char *part)
{
    const char *err = nb_last_error();
    cr_assert_eq(got, want, "status %d (%s), expected %d; message: %s", got, nb_status_str(got), want, err);
    assert_has(err, part);
}

void expect_graph_error(nb_graph *g, nb_status st, const char *const *parts, int n)
{
    cr_expect_eq(nb_graph_status(g), st, "status %d: %s", nb_graph_status(g), nb_graph_error(g));
    for (int i = 0; i < n; i++)
        cr_expect(strstr(nb_graph_error(g), parts[i]), "'%s' not in: %s", parts[i], nb_graph_error(g));
}

/* ---- graphs and plans ---- */

nb_node *input_shaped(nb_graph *g, const char *name, nb_dtype dt, int rank, const int64_t *shape)
{
    nb_dim d[NB_MAX_DIMS];
    for (int i = 0; i < rank && i < NB_MAX_DIMS; i++) d[i] = NB_DIM(shape[i]);
    return nb_input(g, name, dt, rank, d);
}

nb_node *dense_layer(nb_graph *g, nb_node *x, const char *name, int64_t in, int64_t out, nb_dtype dt,
                     uint64_t seed, nb_node **W, nb_node **b)
{
    char wn[64], bn[64];
    snprintf(wn, sizeof wn, "%s.W", name);
    snprintf(bn, sizeof bn, "%s.b", name);
    *W = nb_param(g, wn, dt, 2, (int64_t[]){in, out}, (nb_init){.kind = NB_INIT_XAVIER, .seed = seed});
    *b = nb_param(g, bn, dt, 1, (int64_t[]){out},
                  (nb_init){.kind = NB_INIT_UNIFORM, .a = -0.1, .b = 0.1, .seed = seed});
    return nb_add(g, nb_matmul(g, x, *W), *b);
}

void register_test_op(const nb_op_def *def)
{
    if (!nb_op_find(def->name))
        cr_assert_eq(nb_op_register(def), NB_OK, "registering %s: %s", def->name, nb_last_error());
}

nb_plan *plan_new_ok(nb_graph *g, nb_node *const *outs, int n)
{
    nb_plan *p;
    cr_assert_eq(nb_plan_new(g, outs, n, &p), NB_OK, "%s", nb_graph_error(g));
    return p;
}

void plan_bind_ok(nb_plan *p, const nb_bind *b, int n)
{
    cr_assert_eq(nb_plan_bind(p, b, n), NB_OK, "%s", nb_plan_error(p));
}

void plan_run_ok(nb_plan *p) { cr_assert_eq(nb_plan_run(p), NB_OK, "%s", nb_plan_error(p)); }

void plan_feed(nb_plan *p, const nb_node *x, const double *v)
{
    void *buf = nb_plan_input_buffer(p, x);  /* binds a plan without free dimensions */
    int64_t shape[NB_MAX_DIMS];
    int rank = nb_plan_shape(p, x, shape);
    cr_assert(rank >= 0 && buf, "'%s' is not an input of the plan: %s", nb_node_name(x), nb_plan_error(p));
    for (size_t i = 0, n = shape_numel(rank, shape); i < n; i++) set_elem(nb_node_dtype(x), buf, i, v[i]);
}

size_t plan_read(const nb_plan *p, const nb_node *y, double *out)
{
    int64_t shape[NB_MAX_DIMS];
    int rank = nb_plan_shape(p, y, shape);
    const void *v = nb_plan_get(p, y);
    cr_assert(rank >= 0 && v, "the plan has no value of '%s'", nb_node_name(y));
    size_t n = shape_numel(rank, shape);
    for (size_t i = 0; i < n; i++) out[i] = get_elem(nb_node_dtype(y), v, i);
    return n;
}

size_t plan_bytes(const nb_plan *p, const nb_node *n)
{
    int64_t shape[NB_MAX_DIMS];
    int rank = nb_plan_shape(p, n, shape);
    cr_assert_geq(rank, 0, "the plan has no node '%s'", nb_node_name(n));
    return shape_numel(rank, shape) * nb_dtype_size(nb_node_dtype(n));
}

void sgd_step_f32(const nb_plan *p, nb_node *const *params, nb_node *const *grads, int n, float lr)
{
    for (int k = 0; k < n; k++) {
        nb_tensor *w = nb_param_value(params[k]);
        const float *dw = nb_plan_get(p, grads[k]);
        for (size_t j = 0; j < nb_tensor_numel(w); j++) ((float *)w->data)[j] -= lr * dw[j];
    }
}

/* eval_graph, also giving outs[0]'s rank and bound shape (shape0 may be NULL). */
static int eval_plan(nb_graph *g, int n_out, nb_node *const *outs, double *const *out, int n_in,
                     nb_node *const *in, const double *const *v, const nb_bind *b, int n_b, int64_t *shape0)
{
    nb_plan *p = plan_new_ok(g, outs, n_out);
    plan_bind_ok(p, b, n_b);
    for (int k = 0; k < n_in; k++)
        if (nb_plan_input_buffer(p, in[k])) plan_feed(p, in[k], v[k]);  /* the inputs it reads */
    plan_run_ok(p);
    for (int j = 0; j < n_out; j++)
        if (out[j]) plan_read(p, outs[j], out[j]);
    int64_t shape[NB_MAX_DIMS];
    int rank = nb_plan_shape(p, outs[0], shape0 ? shape0 : shape);
    nb_plan_free(p);
    return rank;
}

void eval_graph(nb_graph *g, int n_out, nb_node *const *outs, double *const *out, int n_in,
                nb_node *const *in, const double *const *v, const nb_bind *b, int n_b)
{
    eval_plan(g, n_out, outs, out, n_in, in, v, b, n_b, NULL);
}

void eval_node(nb_graph *g, nb_node *y, double *out, int n_in, nb_node *const *in, const double *const *v)
{
    eval_plan(g, 1, &y, &out, n_in, in, v, NULL, 0, NULL);
}

int eval_node_bound(nb_graph *g, nb_node *y, double *out, int64_t *shape, int n_in, nb_node *const *in,
                    const double *const *v, const nb_bind *b, int n_b)
{
    return eval_plan(g, 1, &y, &out, n_in, in, v, b, n_b, shape);
}

const char *node_shape(nb_graph *g, const nb_node *n)
{
    char *s = ring();
    nb_node_shape_str(g, n, s, 1024);
    return s;
}

/* ---- models ---- */

void print_diags(const nb_diags *d)
{
    for (size_t i = 0; i < d->n; i++) cr_log_info("%s", d->lines[i]);
}

nb_model *load_yaml(const char *yaml, nb_diags *d)
{
    nb_model *m = NULL;
    nb_status st = nb_model_load_string(yaml, strlen(yaml), "m.yaml", NULL, &m, d);
    cr_assert((st == NB_OK) == (m != NULL), "status %d but model %p", st, (void *)m);
    return m;
}

nb_model *load_ok(const char *yaml)
{
    nb_diags d;
    nb_model *m = load_yaml(yaml, &d);
    if (!m) print_diags(&d);
    cr_assert_not_null(m, "expected the model to load; first error: %s", d.n ? d.lines[0] : "-");
    cr_assert_eq(d.n, 0);
    nb_diags_free(&d);
    return m;
}

void expect_errors(const char *yaml, const char *const *want, size_t n)
{
    nb_diags d;
    nb_model *m = NULL;
    nb_status st = nb_model_load_string(yaml, strlen(yaml), "m.yaml", NULL, &m, &d);
    bool same = d.n == n;
    for (size_t i = 0; i < n && i < d.n; i++) same &= !strcmp(d.lines[i], want[i]);
    if (!same) print_diags(&d);
    cr_assert_eq(st, NB_ERR_FORMAT, "status %d", st);
    cr_assert_null(m, "a file with errors must not give a model");
    for (size_t i = 0; i < n && i < d.n; i++) cr_expect_str_eq(d.lines[i], want[i], "message %zu", i);
    cr_assert_eq(d.n, n, "%zu messages, expected %zu", d.n, n);
    nb_diags_free(&d);
}

nb_model *load_model_file(const char *path)
{
    nb_model *m = NULL;
    nb_diags d = {0};
    nb_status st = nb_model_load_file(path, NULL, &m, &d);
    if (st) print_diags(&d);
    cr_assert_eq(st, NB_OK, "%s: %s", path, d.n ? d.lines[0] : nb_status_str(st));
    cr_assert_not_null(m);
    nb_diags_free(&d);
    return m;
}

nb_model *load_example(const char *file) { return load_model_file(test_file("../examples/models/%s", file)); }

int model_grads(nb_model *m, bool trainable_only, bool inputs_too, nb_node **grads, int cap)
{
    nb_node *wrt[256];
    int n = 0;
    for (size_t i = 0; i < nb_model_num_params(m) && n < cap && n < 256; i++)
        if (!trainable_only || nb_param_trainable(nb_model_param(m, i))) wrt[n++] = nb_model_param(m, i);
    for (size_t i = 0; inputs_too && i < nb_model_num_inputs(m) && n < cap && n < 256; i++)
        if (nb_node_dtype(nb_model_input(m, i)) != NB_I32) wrt[n++] = nb_model_input(m, i);
    nb_graph *g = nb_model_graph(m);
    cr_assert_eq(nb_grad(g, nb_model_loss(m), wrt, n, grads), NB_OK, "%s", nb_graph_error(g));
    return n;
}

void check_node(nb_graph *g, const char *name, const char *op, const char *shape)
{
    nb_node *n = nb_graph_find(g, name);
    cr_assert_not_null(n, "no node '%s'", name);
    cr_expect_str_eq(nb_node_op(n), op, "op of '%s'", name);
    cr_expect_str_eq(node_shape(g, n), shape, "shape of '%s'", name);
}

double user_cpu_seconds(int who)
{
    struct rusage u;
    getrusage(who, &u);
    return (double)u.ru_utime.tv_sec + 1e-6 * (double)u.ru_utime.tv_usec;
}

void expect_linear(double small, double large, double slack, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    printf("%s\n", what);
    cr_expect_lt(large, 8 * small + slack, "%s", what);
}

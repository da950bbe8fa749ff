/* One case of the ONNX backend tests (onnx_case.h): load model.onnx, feed
 * every test_data_set_N/input_K.pb, run, compare with output_K.pb. */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <nabla/nabla.h>

#include "../graph/onnx/onnx_internal.h"
#include "onnx_case.h"

static oc_result say(oc_result r, char *msg, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    return r;
}

/* A .pb TensorProto file as a known value; false with a message. */
static bool read_pb(const char *path, ox_const *k, char **name, char *msg, size_t cap)
{
    uint8_t *buf;
    size_t len;
    if (ox_read_file(path, &buf, &len, msg, cap)) return false;
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, len, buf);
    nb_free(buf);
    if (!t) return say(false, msg, cap, "%s: not a TensorProto", path), false;
    ox_ctx c = {.file = path};  /* its memory budget: the reference tensors' own */
    bool ok = !ox_const_from_proto(&c, t, k, msg, cap);
    *name = ok && t->name && *t->name ? strdup(t->name) : NULL;
    onnx__tensor_proto__free_unpacked(t, NULL);
    return ok;
}

/* The model input fed by input_K (by its name when the file has one). */
static nb_node *input_for(const nb_model *m, int k, const char *name)
{
    if (name) {
        char want[256];
        ox_sanitize(name, want, sizeof want);
        for (size_t i = 0; i < nb_model_num_inputs(m); i++)
            if (!strcmp(nb_node_name(nb_model_input(m, i)), want)) return nb_model_input(m, i);
    }
    return nb_model_input(m, (size_t)k);
}

/* Binds each free dimension of x from the data's shape; false on a mismatch. */
static bool bind_from(const nb_model *m, nb_node *x, const ox_const *k, nb_bind *b, int *nb)
{
    if (nb_node_rank(x) != k->rank) return false;
    for (int d = 0; d < k->rank; d++) {
        const char *s = nb_node_dim_sym(nb_model_graph(m), x, d);
        if (!s) {
            if (nb_node_dim(x, d) != k->shape[d]) return false;
            continue;
        }
        int j = 0;
        while (j < *nb && strcmp(b[j].sym, s)) j++;
        if (j == *nb) b[(*nb)++] = (nb_bind){s, k->shape[d]};
        else if (b[j].value != k->shape[d]) return false;
    }
    return true;
}

static bool close_enough(double got, double want, bool exact)
{
    if (isnan(want)) return isnan(got);
    if (exact || isinf(want)) return got == want;
    return fabs(got - want) <= 1e-5 + 1e-3 * fabs(want);
}

/* Compares output o of the plan with the expected value. */
static oc_result compare(const nb_plan *p, nb_node *o, const ox_const *want, char *msg, size_t cap)
{
    int64_t shape[NB_MAX_DIMS];
    int r = nb_plan_shape(p, o, shape);
    bool same = r == want->rank;
    for (int d = 0; same && d < r; d++) same = shape[d] == want->shape[d];
    if (!same) return say(OC_WRONG, msg, cap, "output '%s': rank %d, expected rank %d", nb_node_name(o), r, want->rank);
    const void *data = nb_plan_get(p, o);
    nb_dtype dt = nb_node_dtype(o);
    for (size_t j = 0; j < want->n; j++) {
        double got = dt == NB_F32 ? ((const float *)data)[j] : dt == NB_F64 ? ((const double *)data)[j]
                                                                            : ((const int32_t *)data)[j];
        double w = want->i ? (double)want->i[j] : want->f[j];
        if (!close_enough(got, w, want->i != NULL))
            return say(OC_WRONG, msg, cap, "output '%s' element %zu: %.9g, expected %.9g", nb_node_name(o), j, got, w);
    }
    return OC_PASS;
}

/* Feeds input k from its .pb file. */
static oc_result feed(nb_plan *p, nb_node *x, const ox_const *k, char *msg, size_t cap)
{
    nb_tensor t;
    if (ox_const_to_tensor(k, nb_node_dtype(x), &t, msg, cap)) return OC_UNSUPPORTED;
    void *buf = nb_plan_input_buffer(p, x);  /* NULL: the outputs do not need it */
    if (buf) memcpy(buf, t.data, nb_tensor_bytes(&t));
    nb_tensor_free(&t);
    return OC_PASS;
}

#define MAXIO 16
typedef struct data_set {
    ox_const in[MAXIO], out[MAXIO];
    char *in_name[MAXIO];
    int n_in, n_out;
} data_set;

static void free_set(data_set *s)
{
    for (int i = 0; i < s->n_in; i++) ox_const_free(&s->in[i]), free(s->in_name[i]);
    for (int i = 0; i < s->n_out; i++) ox_const_free(&s->out[i]);
    memset(s, 0, sizeof *s);
}

static bool read_set(const char *dir, data_set *s, char *msg, size_t cap)
{
    char path[1200], *ignored;
    struct stat st;
    for (s->n_in = 0; s->n_in < MAXIO; s->n_in++) {
        snprintf(path, sizeof path, "%s/input_%d.pb", dir, s->n_in);
        if (stat(path, &st)) break;
        if (!read_pb(path, &s->in[s->n_in], &s->in_name[s->n_in], msg, cap)) return false;
    }
    for (s->n_out = 0; s->n_out < MAXIO; s->n_out++) {
        snprintf(path, sizeof path, "%s/output_%d.pb", dir, s->n_out);
        if (stat(path, &st)) break;
        if (!read_pb(path, &s->out[s->n_out], &ignored, msg, cap)) return false;
        free(ignored);
    }
    return true;
}

static oc_result run_set(nb_model *m, const data_set *s, char *msg, size_t cap)
{
    nb_graph *g = nb_model_graph(m);
    if ((size_t)s->n_out != nb_model_num_outputs(m))
        return say(OC_ERROR, msg, cap, "%d expected outputs, the model has %zu", s->n_out, nb_model_num_outputs(m));
    nb_node *outs[MAXIO], *ins[MAXIO];
    nb_bind b[NB_MAX_SYMS * 2];
    int n_b = 0;
    for (int i = 0; i < s->n_out; i++) outs[i] = nb_model_output(m, i);
    for (int i = 0; i < s->n_in; i++) {
        if (!(ins[i] = input_for(m, i, s->in_name[i]))) return say(OC_ERROR, msg, cap, "no input %d", i);
        if (!bind_from(m, ins[i], &s->in[i], b, &n_b)) return say(OC_ERROR, msg, cap, "input %d: shape mismatch", i);
    }
    nb_plan *p;
    if (nb_plan_new(g, outs, s->n_out, &p)) return say(OC_ERROR, msg, cap, "plan: %s", nb_graph_error(g));
    oc_result r = OC_PASS;
    if (nb_plan_bind(p, b, n_b)) r = say(OC_ERROR, msg, cap, "bind: %s", nb_plan_error(p));
    for (int i = 0; !r && i < s->n_in; i++) r = feed(p, ins[i], &s->in[i], msg, cap);
    if (!r && nb_plan_run(p)) r = say(OC_ERROR, msg, cap, "run: %s", nb_plan_error(p));
    for (int i = 0; !r && i < s->n_out; i++) r = compare(p, outs[i], &s->out[i], msg, cap);
    nb_plan_free(p);
    return r;
}

oc_result oc_run_case(const char *dir, char *msg, size_t cap)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    nb_model *m;
    nb_diags d;
    nb_status st = nb_model_load_onnx(path, NULL, &m, &d);
    if (st) {
        snprintf(msg, cap, "%s", d.n ? d.lines[0] : nb_status_str(st));
        nb_diags_free(&d);
        return strstr(msg, "unsupported") ? OC_UNSUPPORTED : OC_ERROR;
    }
    oc_result r = OC_PASS;
    int sets = 0;
    for (int k = 0; !r; k++, sets++) {
        snprintf(path, sizeof path, "%s/test_data_set_%d", dir, k);
        struct stat sb;
        if (stat(path, &sb)) break;
        data_set s = {0};
        r = read_set(path, &s, msg, cap) ? run_set(m, &s, msg, cap) : OC_UNSUPPORTED;
        free_set(&s);
    }
    if (!r && !sets) r = say(OC_ERROR, msg, cap, "no test_data_set_0");
    nb_model_free(m);
    return r;
}

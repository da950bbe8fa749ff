/* What `nabla train` and `nabla eval` share: finding a model's data files,
 * loading them, and a trainer fed as the model's `train` section says. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Where Debian's dataset-fashion-mnist installs its files. */
#define DEBIAN_DATA "/usr/share/datasets/fashion-mnist"

/* A data file: as written when absolute; else relative to the model's
 * folder, then to --data, then to $NABLA_DATA, then to Debian's folder
 * (model-format.md). The first that exists wins. */
int nbt_data_path(const char *cmd, const nb_model *m, const char *data_dir, const char *file,
                  char *out, size_t cap)
{
    const char *dirs[4] = {nb_model_dir(m), data_dir, getenv("NABLA_DATA"), DEBIAN_DATA};
    if (!out || cap == 0) return NBT_ERROR;
    if (file[0] == '/') {
        snprintf(out, cap, "%s", file);
        if (access(out, R_OK) == 0) return NBT_OK;
        return nbt_fail(cmd, "%s: cannot read the data file", file);
    }
    for (int i = 0; i < 4; i++) {
        if (!dirs[i] || !dirs[i][0]) continue;
        if (snprintf(out, cap, "%s/%s", dirs[i], file) >= (int)cap) continue;
        if (access(out, R_OK) == 0) return NBT_OK;
    }
    return nbt_fail(cmd, "data file '%s' not found in the model's folder (%s), --data (%s), "
                    "$NABLA_DATA (%s) or %s (Debian's dataset-fashion-mnist)", file, nb_model_dir(m),
                    data_dir ? data_dir : "not given", getenv("NABLA_DATA") ? getenv("NABLA_DATA") : "not set",
                    DEBIAN_DATA);
}

/* The IDX pair images + labels of the train section, found and loaded. */
int nbt_load_idx(const char *cmd, const nb_model *m, const char *data_dir, const char *images,
                 const char *labels, nb_dataset **out)
{
    char ip[4096], lp[4096];
    *out = NULL;
    if (!images || !labels) return nbt_fail(cmd, "the model's train section names no such data");
    if (nbt_data_path(cmd, m, data_dir, images, ip, sizeof ip) ||
        nbt_data_path(cmd, m, data_dir, labels, lp, sizeof lp))
        return NBT_ERROR;
    if (nb_dataset_load_idx(ip, lp, out)) return nbt_fail(cmd, "%s", nb_last_error());
    return NBT_OK;
}

/* ---- format npy ------------------------------------------------------------ */

/* "[3, 2]" from dims[0..rank) */
static const char *dims_str(int rank, const int64_t *dims, char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int a = 0; a < rank && len < cap; a++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", a ? ", " : "", (long long)dims[a]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
    return buf;
}

/* "[200, 2]" for n samples of an input [N, 2]: n, then its axes after the
 * first (free ones by their symbol). */
static const char *file_shape_for(const nb_graph *g, const nb_node *x, int64_t n, char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, "[%lld", (long long)n);
    for (int a = 1; a < nb_node_rank(x) && len < cap; a++) {
        int64_t d = nb_node_dim(x, a);
        const char *sym = d < 0 ? nb_node_dim_sym(g, x, a) : NULL;
        if (d >= 0) len += (size_t)snprintf(buf + len, cap - len, ", %lld", (long long)d);
        else len += (size_t)snprintf(buf + len, cap - len, ", %s", sym ? sym : "?");
    }
    if (len < cap) snprintf(buf + len, cap - len, "]");
    return buf;
}

/* Field k, read for input `name`: data of a type the input takes (no floats
 * for an i32 input) whose samples have the input's shape after its first
 * axis (a free dimension there is left to the trainer to refuse). */
static int check_npy_field(const char *cmd, const nb_model *m, const nb_dataset *d, int k, const char *name)
{
    nb_graph *g = nb_model_graph(m);
    nb_node *x = nb_graph_find(g, name);
    const char *path = nb_dataset_field_path(d, k);
    nb_field_type ft = nb_dataset_field_type(d, k);
    if (!x || nb_node_kind_of(x) != NB_NODE_INPUT)
        return nbt_fail(cmd, "%s: '%s' is not an input of the model", path, name);
    if (nb_node_dtype(x) == NB_I32 && (ft == NB_FIELD_F32 || ft == NB_FIELD_F64))
        return nbt_fail(cmd, "%s holds %s values, but input '%s' is i32 (class ids): save the "
                        "array with an integer dtype", path, nb_field_type_name(ft), name);
    int64_t s[NB_MAX_DIMS + 1];
    s[0] = (int64_t)nb_dataset_size(d);
    int r = nb_dataset_field_shape(d, k, s + 1);
    bool fits = r >= 0 && nb_node_rank(x) == r + 1;
    for (int a = 1; fits && a <= r; a++) fits = nb_node_dim(x, a) < 0 || nb_node_dim(x, a) == s[a];
    if (!fits) {
        char whole[256], one[256], want[256], xs[256];
        nb_node_shape_str(g, x, xs, sizeof xs);
        if (r == 0) snprintf(one, sizeof one, "one value");
        return nbt_fail(cmd, "%s is %s: %lld samples of %s, but input '%s' is %s, so the file "
                        "must be %s (the first axis counts the samples, the others are one "
                        "sample's shape)", path, dims_str(r + 1, s, whole, sizeof whole), (long long)s[0],
                        r ? dims_str(r, s + 1, one, sizeof one) : one, name, xs,
                        file_shape_for(g, x, s[0], want, sizeof want));
    }
    return NBT_OK;
}

/* The npy files of `train` (or `test`), found and loaded into one field per
 * input, named after it, each checked against its input. */
static int load_npy(const char *cmd, const nb_model *m, const char *data_dir, bool test,
                    nb_dataset **out)
{
    const nb_train_cfg *tc = nb_model_train(m);
    char *const *files = test ? tc->npy_test : tc->npy_train;
    const char **names = calloc(tc->n_npy + 1, sizeof *names);
    char **paths = calloc(tc->n_npy + 1, sizeof *paths);
    int n = 0, rc = NBT_OK;
    if (!names || !paths) rc = nbt_fail(cmd, "out of memory");
    for (size_t i = 0; !rc && i < tc->n_npy; i++) {
        if (!files[i]) continue;  /* the loader makes train and test name the same inputs */
        if (!(paths[n] = malloc(4096))) {
            rc = nbt_fail(cmd, "out of memory");
            break;
        }
        names[n] = tc->npy_inputs[i];
        rc = nbt_data_path(cmd, m, data_dir, files[i], paths[n++], 4096);
    }
    if (!rc && nb_dataset_load_npy(names, (const char *const *)paths, n, out))
        rc = nbt_fail(cmd, "%s", nb_last_error());
    for (int k = 0; !rc && k < n; k++) rc = check_npy_field(cmd, m, *out, k, names[k]);
    if (rc) {
        nb_dataset_free(*out);
        *out = NULL;
    }
    for (int k = 0; paths && k < n; k++) free(paths[k]);
    free(paths);
    free((void *)names);
    return rc;
}

static bool has_npy(const nb_train_cfg *tc, bool test)
{
    for (size_t i = 0; i < tc->n_npy; i++)
        if (test ? tc->npy_test[i] : tc->npy_train[i]) return true;
    return false;
}

int nbt_load_data(const char *cmd, const nb_model *m, const char *data_dir, bool test,
                  bool required, nb_dataset **out)
{
    const nb_train_cfg *tc = nb_model_train(m);
    bool idx = !strcmp(tc->format, "idx"), npy = !strcmp(tc->format, "npy");
    *out = NULL;
    if (!idx && !npy) return nbt_fail(cmd, "data format '%s' is not supported", tc->format);
    bool given = npy ? has_npy(tc, test) : (test ? tc->test_images : tc->train_images) != NULL;
    if (!given)
        return required ? nbt_fail(cmd, "the model's train section names no %s data (train: data: %s:)",
                                   test ? "test" : "training", test ? "test" : "train")
                        : NBT_OK;
    if (npy) return load_npy(cmd, m, data_dir, test, out);
    return test ? nbt_load_idx(cmd, m, data_dir, tc->test_images, tc->test_labels, out)
                : nbt_load_idx(cmd, m, data_dir, tc->train_images, tc->train_labels, out);
}

static bool is_scores(const nb_node *y)
{
    return y && nb_node_rank(y) == 2 && nb_node_dim(y, 1) >= 1 && nb_node_dtype(y) != NB_I32;
}

/* The model's class scores when a labels input is fed: its first output when
 * it is [N, K], else the [N, K] scores that the loss op reading the labels
 * compares with them (`logits`, NULL for none), so that a model whose only
 * output is its loss still reports its accuracy. */
static nb_node *scores_of(const nb_model *m, nb_node *labels, nb_node *logits)
{
    nb_node *y = nb_model_num_outputs(m) ? nb_model_output(m, 0) : NULL;
    if (!labels) return NULL;
    return is_scores(y) ? y : is_scores(logits) ? logits : NULL;
}

/* Among the inputs cand[0..n), the i32 one that a softmax_cross_entropy or
 * nll_loss the loss depends on reads as its labels (the class ids the
 * accuracy compares with), with that op's scores input; NULL for none (an
 * i32 input read otherwise, embedding ids, is no label). */
static int find_labels(const char *cmd, nb_model *m, nb_node *const *cand, int n_cand, nb_node **labels,
                       nb_node **logits)
{
    nb_graph *g = nb_model_graph(m);
    nb_node *loss = nb_model_loss(m);
    size_t n = nb_graph_num_nodes(g);
    *labels = *logits = NULL;
    for (size_t i = 0; i < n && !*labels; i++) {
        nb_node *x = nb_graph_node(g, i);
        const char *op = nb_node_op(x);
        if ((strcmp(op, "softmax_cross_entropy") && strcmp(op, "nll_loss")) || nb_node_num_inputs(x) < 2)
            continue;
        nb_node *t = nb_node_input(x, 1);
        bool is_cand = false, used;
        for (int k = 0; k < n_cand; k++) is_cand |= cand[k] == t;
        if (!is_cand || nb_node_dtype(t) != NB_I32) continue;
        if (nbt_depends_on(cmd, g, &loss, 1, &x, 1, &used)) return NBT_ERROR;
        if (used) *labels = t, *logits = nb_node_input(x, 0);
    }
    return NBT_OK;
}

/* Every trainable param, for the trainer. */
static int make(const char *cmd, nb_model *m, nb_trainer_cfg *c, nb_trainer **out)
{
    nb_graph *g = nb_model_graph(m);
    c->loss = nb_model_loss(m);
    c->n_params = (int)nb_model_num_trainable(m);
    nb_node **p = malloc(((size_t)c->n_params + 1) * sizeof *p);
    if (!p) return nbt_fail(cmd, "out of memory");
    for (int i = 0; i < c->n_params; i++) p[i] = nb_model_param(m, (size_t)i);
    c->params = p;
    nb_status st = nb_trainer_new(g, c, out);
    free(p);
    c->params = NULL;
    if (st) return nbt_fail(cmd, "%s", nb_graph_error(g));
    return NBT_OK;
}

static int feed_failed(const char *cmd, nb_trainer **t)
{
    nbt_fail(cmd, "%s", nb_trainer_error(*t));
    nb_trainer_free(*t);
    *t = NULL;
    return NBT_ERROR;
}

static int make_idx(const char *cmd, nb_model *m, nb_trainer_cfg c, nb_trainer **out)
{
    const nb_train_cfg *tc = nb_model_train(m);
    nb_graph *g = nb_model_graph(m);
    nb_node *images = tc->images_input ? nb_graph_find(g, tc->images_input) : NULL;
    nb_node *labels = tc->labels_input ? nb_graph_find(g, tc->labels_input) : NULL;
    if (!images) return nbt_fail(cmd, "the model's train section feeds no input with images "
                                      "(train: data: feed: {x: images, t: labels})");
    if (labels && nb_node_dtype(labels) != NB_I32)
        return nbt_fail(cmd, "labels feed input '%s', which must be i32 (class ids)",
                        nb_node_name(labels));
    nb_node *found, *logits;
    if (labels && find_labels(cmd, m, &labels, 1, &found, &logits)) return NBT_ERROR;
    c.labels = labels;
    c.scores = scores_of(m, labels, labels ? logits : NULL);
    if (make(cmd, m, &c, out)) return NBT_ERROR;
    if (nb_trainer_feed(*out, images, "images", tc->scale) ||
        (labels && nb_trainer_feed(*out, labels, "labels", 1)))
        return feed_failed(cmd, out);
    return NBT_OK;
}

/* format npy: every input named in `train`/`test` fed from its own field,
 * scale for float inputs; every input the loss needs must be among them. */
static int make_npy(const char *cmd, nb_model *m, nb_trainer_cfg c, nb_trainer **out)
{
    const nb_train_cfg *tc = nb_model_train(m);
    nb_graph *g = nb_model_graph(m);
    nb_node *loss = nb_model_loss(m);
    size_t n_in = nb_model_num_inputs(m);
    nb_node **in = calloc(n_in + 1, sizeof *in), **fed = calloc(tc->n_npy + 1, sizeof *fed);
    bool *needed = calloc(n_in + 1, sizeof *needed);
    int rc = !in || !fed || !needed ? nbt_fail(cmd, "out of memory") : NBT_OK;
    for (size_t i = 0; !rc && i < tc->n_npy; i++)
        if (!(fed[i] = nb_graph_find(g, tc->npy_inputs[i])))
            rc = nbt_fail(cmd, "'%s' is not an input of the model", tc->npy_inputs[i]);
    for (size_t i = 0; !rc && i < n_in; i++) in[i] = nb_model_input(m, i);
    if (!rc) rc = nbt_depends_on(cmd, g, &loss, 1, in, (int)n_in, needed);
    for (size_t i = 0; !rc && i < n_in; i++) {
        bool given = false;
        for (size_t k = 0; k < tc->n_npy; k++) given |= fed[k] == in[i];
        if (needed[i] && !given)
            rc = nbt_fail(cmd, "the loss '%s' needs input '%s', but the train section gives it no "
                          ".npy file (train: data: train: {%s: FILE.npy, ...})", nb_node_name(loss),
                          nb_node_name(in[i]), nb_node_name(in[i]));
    }
    nb_node *logits = NULL;
    if (!rc) rc = find_labels(cmd, m, fed, (int)tc->n_npy, &c.labels, &logits);
    if (!rc) {
        c.scores = scores_of(m, c.labels, logits);
        rc = make(cmd, m, &c, out);
    }
    for (size_t i = 0; !rc && i < tc->n_npy; i++)
        if (nb_trainer_feed(*out, fed[i], tc->npy_inputs[i], nb_node_dtype(fed[i]) == NB_I32 ? 1 : tc->scale))
            rc = feed_failed(cmd, out);
    free(in);
    free(fed);
    free(needed);
    return rc;
}

int nbt_make_trainer(const char *cmd, nb_model *m, const nb_trainer_cfg *base, nb_trainer **out)
{
    const nb_train_cfg *tc = nb_model_train(m);
    *out = NULL;
    if (!nb_model_loss(m)) return nbt_fail(cmd, "the model has no 'loss:' to train or evaluate");
    if (!strcmp(tc->format, "npy")) return make_npy(cmd, m, *base, out);
    return make_idx(cmd, m, *base, out);
}

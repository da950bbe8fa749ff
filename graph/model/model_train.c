/* The `train` section of a model file, read into nb_train_cfg with the
 * defaults of model-format.md ("Training defaults"). */
#include <math.h>
#include <string.h>

#include "model_internal.h"

void nm_train_defaults(nb_train_cfg *t)
{
    memset(t, 0, sizeof *t);
    t->format = nb__strdup("idx");
    t->scale = 1;
    t->batch = 100;
    t->epochs = 1;
    t->shuffle = true;
    t->seed = 0;
    t->optimizer = nb__strdup("adam");
    t->lr = 0.001;
    t->momentum = 0.9;
    t->beta1 = 0.9;
    t->beta2 = 0.999;
    t->eps = 1e-8;
    t->weight_decay = 0;
    t->validation = 0;
    t->schedule = nb__strdup("constant");
    t->every = 1;
    t->gamma = 0.1;
}

void nm_train_free(nb_train_cfg *t)
{
    char **s[] = {&t->format,       &t->train_images, &t->train_labels, &t->test_images,
                  &t->test_labels,  &t->images_input, &t->labels_input, &t->optimizer,
                  &t->schedule};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        nb_free(*s[i]);
        *s[i] = NULL;
    }
    for (size_t i = 0; i < t->n_npy; i++) {
        nb_free(t->npy_inputs[i]);
        nb_free(t->npy_train[i]);
        nb_free(t->npy_test[i]);
    }
    nb_free(t->npy_inputs);
    nb_free(t->npy_train);
    nb_free(t->npy_test);
    t->npy_inputs = t->npy_train = t->npy_test = NULL;
    t->n_npy = 0;
}

static void set_str(nm_ctx *c, char **dst, const char *s)
{
    char *d = nm_strdup(c, s);
    if (!d) return;
    nb_free(*dst);
    *dst = d;
}

/* A string value; with `choices`, one of them ("unknown WHAT 'x' (did you mean ...)"). */
static bool get_word(nm_ctx *c, const yaml_node_t *v, const char *what,
                     const char *const *choices, size_t n, const char **out)
{
    char w[64], hint[96];
    snprintf(w, sizeof w, "'%s'", what);
    if (!ny_str(&c->y, v, w, out)) return false;
    if (!choices) {
        if (**out) return true;
        ny_err(&c->y, v, "%s must not be empty", w);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (!strcmp(choices[i], *out)) return true;
    ny_err(&c->y, v, "unknown %s '%s'%s", what, *out, ny_hint(hint, sizeof hint, *out, choices, n));
    return false;
}

/* An integer >= lo. */
static bool get_int(nm_ctx *c, const yaml_node_t *map, const char *key, int64_t lo, int64_t *out)
{
    const yaml_node_t *v = ny_get(&c->y, map, key, NULL);
    char w[64];
    snprintf(w, sizeof w, "'%s'", key);
    int64_t x;
    if (!v || !ny_int(&c->y, v, w, &x)) return false;
    if (x < lo) {
        ny_err(&c->y, v, "%s must be >= %lld; got %lld", w, (long long)lo, (long long)x);
        return false;
    }
    *out = x;
    return true;
}

/* A finite number in (lo, hi) / [lo, hi) (lo_open) with hi = INFINITY for none. */
static bool get_num(nm_ctx *c, const yaml_node_t *map, const char *key, double lo, bool lo_open,
                    double hi, double *out)
{
    const yaml_node_t *v = ny_get(&c->y, map, key, NULL);
    char w[64];
    snprintf(w, sizeof w, "'%s'", key);
    double x;
    if (!v || !ny_num(&c->y, v, w, &x)) return false;
    bool ok = (lo_open ? x > lo : x >= lo) && x < hi;
    if (!ok) {
        if (hi < INFINITY)
            ny_err(&c->y, v, "%s must be in %s%g, %g); got %g", w, lo_open ? "(" : "[", lo, hi, x);
        else
            ny_err(&c->y, v, "%s must be a finite number %s %g; got %g", w, lo_open ? ">" : ">=",
                   lo, x);
        return false;
    }
    *out = x;
    return true;
}

/* Is `in` the name of one of the model's inputs? An input whose definition
 * failed counts as one (its users stay silent); *node is NULL for it. */
static bool is_input(nm_ctx *c, const char *in, nb_node **node)
{
    nm_name *e = nm_lookup(c, in, strlen(in));
    *node = NULL;
    if (!e) return false;
    if (!e->node) return true;
    for (size_t k = 0; k < c->m->n_inputs; k++)
        if (c->m->inputs[k] == e->node) {
            *node = e->node;
            return true;
        }
    return false;
}

/* "'xx' is not an input (did you mean 'x'?)" at key, with `extra` after it. */
static void not_an_input(nm_ctx *c, const yaml_node_t *key, const char *in, const char *extra)
{
    const char **names = nb_malloc((c->m->n_inputs + 1) * sizeof *names);
    char hint[96] = "";
    if (names) {
        for (size_t k = 0; k < c->m->n_inputs; k++) names[k] = nb_node_name(c->m->inputs[k]);
        ny_hint(hint, sizeof hint, in, names, c->m->n_inputs);
        nb_free(names);
    }
    ny_err(&c->y, key, "'%s' is not an input%s%s", in, hint, extra);
}

/* train: {images: FILE, labels: FILE} */
static void file_pair(nm_ctx *c, const yaml_node_t *v, const char *what, char **images,
                      char **labels)
{
    static const char *const keys[] = {"images", "labels"};
    char w[64];
    snprintf(w, sizeof w, "'%s'", what);
    for (size_t i = 0; v->type == YAML_MAPPING_NODE && i < ny_map_size(v); i++) {
        yaml_node_t *key = ny_map_key(&c->y, v, i);  /* {x: x_train.npy}: the npy form */
        const char *k = ny_key_text(key);
        nb_node *node;
        if (k && strcmp(k, "images") && strcmp(k, "labels") && is_input(c, k, &node)) {
            ny_err(&c->y, key, "%s maps input '%s' to a file, as format npy does; this data is "
                   "format idx (write 'format: npy', or give {images: FILE, labels: FILE})", w, k);
            return;
        }
    }
    if (!ny_map_check(&c->y, v, w, keys, 2)) return;
    char **dst[2] = {images, labels};
    for (int i = 0; i < 2; i++) {
        const yaml_node_t *x = ny_get(&c->y, v, keys[i], NULL);
        const char *s;
        if (!x)
            ny_err(&c->y, v, "%s needs '%s' (a file name)", w, keys[i]);
        else if (get_word(c, x, keys[i], NULL, 0, &s))
            set_str(c, dst[i], s);
    }
}

/* feed: {INPUT: images|labels, ...} */
static void feed(nm_ctx *c, const yaml_node_t *v)
{
    static const char *const roles[] = {"images", "labels"};
    nb_train_cfg *t = &c->m->train;
    if (!ny_map_check(&c->y, v, "'feed'", NULL, 0)) return;
    const yaml_node_t *seen[2] = {NULL, NULL};
    for (size_t i = 0; i < ny_map_size(v); i++) {
        yaml_node_t *key = ny_map_key(&c->y, v, i), *val = ny_map_val(&c->y, v, i);
        const char *in, *role;
        nb_node *node;
        if (!ny_key_text(key) || ny_is_merge_key(key) || ny_map_dup(&c->y, v, i))
            continue;
        if (!ny_str(&c->y, key, "an input name", &in)) continue;
        if (!is_input(c, in, &node)) {
            not_an_input(c, key, in, "");
            continue;
        }
        if (!get_word(c, val, "feed", roles, 2, &role)) continue;
        int r = !strcmp(role, "labels");
        if (seen[r]) {
            ny_err(&c->y, val, "%s already feed '%s'", role, ny_key_text(seen[r]));
            continue;
        }
        seen[r] = key;
        if (node && r == 0 && nb_node_dtype(node) == NB_I32)
            ny_err(&c->y, val, "images feed a float input; '%s' is i32", in);
        set_str(c, r ? &t->labels_input : &t->images_input, in);
    }
}

/* The slot of input `in` in the npy lists, added when new; -1 when out of memory. */
static long npy_slot(nm_ctx *c, const char *in)
{
    nb_train_cfg *t = &c->m->train;
    for (size_t i = 0; i < t->n_npy; i++)
        if (!strcmp(t->npy_inputs[i], in)) return (long)i;
    size_t n = t->n_npy + 1;
    char **a = nb_realloc(t->npy_inputs, n * sizeof *a);
    if (a) t->npy_inputs = a;
    char **b = a ? nb_realloc(t->npy_train, n * sizeof *b) : NULL;
    if (b) t->npy_train = b;
    char **d = b ? nb_realloc(t->npy_test, n * sizeof *d) : NULL;
    if (d) t->npy_test = d;
    char *name = d ? nm_strdup(c, in) : NULL;
    if (!name) {
        c->y.oom = true;
        return -1;
    }
    t->npy_inputs[t->n_npy] = name;
    t->npy_train[t->n_npy] = t->npy_test[t->n_npy] = NULL;
    return (long)t->n_npy++;
}

/* format npy: train/test: {INPUT: FILE.npy, ...} */
static void npy_files(nm_ctx *c, const yaml_node_t *v, const char *what, bool test)
{
    nb_train_cfg *t = &c->m->train;
    char w[64];
    snprintf(w, sizeof w, "'%s'", what);
    if (!ny_map_check(&c->y, v, w, NULL, 0)) return;
    if (!ny_map_size(v)) {
        ny_err(&c->y, v, "%s must map input names to .npy files, e.g. {x: x_%s.npy, t: t_%s.npy}", w,
               what, what);
        return;
    }
    for (size_t i = 0; i < ny_map_size(v); i++) {
        yaml_node_t *key = ny_map_key(&c->y, v, i), *val = ny_map_val(&c->y, v, i);
        const char *in, *file;
        nb_node *node;
        if (!ny_key_text(key) || ny_is_merge_key(key) || ny_map_dup(&c->y, v, i)) continue;
        if (!ny_str(&c->y, key, "an input name", &in)) continue;
        if (!is_input(c, in, &node)) {
            bool idx_key = !strcmp(in, "images") || !strcmp(in, "labels");
            not_an_input(c, key, in,
                         idx_key ? "; with format npy, 'train' and 'test' map input names to .npy "
                                   "files ({x: x_train.npy, t: t_train.npy}), not images/labels"
                                 : "");
            continue;
        }
        char fw[96];
        snprintf(fw, sizeof fw, "the file of input '%s'", in);
        if (!ny_str(&c->y, val, fw, &file)) continue;
        if (!*file) {
            ny_err(&c->y, val, "%s must not be empty", fw);
            continue;
        }
        long k = npy_slot(c, in);
        if (k >= 0) set_str(c, test ? &t->npy_test[k] : &t->npy_train[k], file);
    }
}

/* With both train and test given, each must give a file for the same inputs. */
static void npy_same_inputs(nm_ctx *c, const yaml_node_t *train, const yaml_node_t *test)
{
    const nb_train_cfg *t = &c->m->train;
    for (size_t i = 0; i < t->n_npy; i++) {
        if (t->npy_train[i] && !t->npy_test[i])
            ny_err(&c->y, test, "'test' gives no file for input '%s', which 'train' feeds (%s)",
                   t->npy_inputs[i], t->npy_train[i]);
        if (t->npy_test[i] && !t->npy_train[i])
            ny_err(&c->y, train, "'train' gives no file for input '%s', which 'test' feeds (%s)",
                   t->npy_inputs[i], t->npy_test[i]);
    }
}

static void data(nm_ctx *c, const yaml_node_t *v)
{
    static const char *const keys[] = {"format", "train", "test", "feed", "scale"};
    static const char *const formats[] = {"idx", "npy"};
    nb_train_cfg *t = &c->m->train;
    if (!ny_map_check(&c->y, v, "'data'", keys, 5)) return;
    const yaml_node_t *x, *train, *test;
    yaml_node_t *feed_key;
    const char *s;
    get_num(c, v, "scale", 0, true, INFINITY, &t->scale);
    /* an unknown format leaves the default, idx, to check the rest against */
    if ((x = ny_get(&c->y, v, "format", NULL)) && get_word(c, x, "data format", formats, 2, &s))
        set_str(c, &t->format, s);
    train = ny_get(&c->y, v, "train", NULL);
    test = ny_get(&c->y, v, "test", NULL);
    x = ny_get(&c->y, v, "feed", &feed_key);
    if (t->format && !strcmp(t->format, "npy")) {
        size_t errors = c->y.n_msgs;
        if (x)
            ny_err(&c->y, feed_key, "'feed' is not used with format npy: 'train' and 'test' map "
                                    "input names straight to .npy files");
        if (train) npy_files(c, train, "train", false);
        if (test) npy_files(c, test, "test", true);
        if (train && test && c->y.n_msgs == errors) npy_same_inputs(c, train, test);
        return;
    }
    if (train) file_pair(c, train, "train", &t->train_images, &t->train_labels);
    if (test) file_pair(c, test, "test", &t->test_images, &t->test_labels);
    if (x) feed(c, x);
}

static void optimizer(nm_ctx *c, const yaml_node_t *v)
{
    static const char *const keys[] = {"type",  "lr",  "momentum",    "beta1",
                                       "beta2", "eps", "weight_decay"};
    static const char *const types[] = {"sgd", "momentum", "adagrad", "adam"};
    nb_train_cfg *t = &c->m->train;
    const char *s;
    const yaml_node_t *type = v;
    if (v->type == YAML_MAPPING_NODE) {  /* {type: adam, lr: ...} */
        ny_map_check(&c->y, v, "'optimizer'", keys, 7);
        type = ny_get(&c->y, v, "type", NULL);
        get_num(c, v, "lr", 0, true, INFINITY, &t->lr);
        get_num(c, v, "momentum", 0, false, 1, &t->momentum);
        get_num(c, v, "beta1", 0, false, 1, &t->beta1);
        get_num(c, v, "beta2", 0, false, 1, &t->beta2);
        t->eps_given = get_num(c, v, "eps", 0, true, INFINITY, &t->eps);
        get_num(c, v, "weight_decay", 0, false, INFINITY, &t->weight_decay);
    } else if (ny_value(v).kind != NY_STR) {  /* or just its type: optimizer: sgd */
        char d[64];
        ny_err(&c->y, v, "'optimizer' must be a mapping such as {type: adam, lr: 0.001}; got %s",
               ny_describe(v, d, sizeof d));
        return;
    }
    if (type && get_word(c, type, "optimizer", types, 4, &s)) set_str(c, &t->optimizer, s);
    if (!t->eps_given) t->eps = t->optimizer && !strcmp(t->optimizer, "adagrad") ? 1e-10 : 1e-8;
}

/* schedule: cosine | {type: cosine, min_lr: 0, epochs: E} | {type: step, every: 5, gamma: 0.5} */
static void schedule(nm_ctx *c, const yaml_node_t *v)
{
    static const char *const keys[] = {"type", "min_lr", "epochs", "every", "gamma"};
    static const char *const types[] = {"constant", "cosine", "step"};
    nb_train_cfg *t = &c->m->train;
    const char *s;
    const yaml_node_t *type = v;
    if (v->type == YAML_MAPPING_NODE) {
        if (!ny_map_check(&c->y, v, "'schedule'", keys, 5)) return;
        if (!(type = ny_get(&c->y, v, "type", NULL))) {
            ny_err(&c->y, v, "'schedule' needs a 'type': constant, cosine or step");
            return;
        }
        get_num(c, v, "min_lr", 0, false, INFINITY, &t->min_lr);
        get_int(c, v, "epochs", 1, &t->schedule_epochs);
        get_int(c, v, "every", 1, &t->every);
        get_num(c, v, "gamma", 0, true, 1, &t->gamma);
    } else if (ny_value(v).kind != NY_STR) {
        char d[64];
        ny_err(&c->y, v, "'schedule' must be a type (cosine) or a mapping such as "
               "{type: step, every: 5, gamma: 0.5}; got %s", ny_describe(v, d, sizeof d));
        return;
    }
    if (get_word(c, type, "schedule", types, 3, &s)) set_str(c, &t->schedule, s);
}

void nm_train_parse(nm_ctx *c, const yaml_node_t *v)
{
    static const char *const keys[] = {"data", "batch",     "epochs",    "shuffle",
                                       "seed", "optimizer", "validation", "schedule"};
    nb_train_cfg *t = &c->m->train;
    t->present = true;
    if (ny_value(v).kind == NY_NULL) return;  /* `train:` alone: all defaults */
    if (!ny_map_check(&c->y, v, "'train'", keys, 8)) return;
    const yaml_node_t *x;
    if ((x = ny_get(&c->y, v, "data", NULL))) data(c, x);
    get_int(c, v, "batch", 1, &t->batch);
    get_int(c, v, "epochs", 1, &t->epochs);
    int64_t seed;
    if (get_int(c, v, "seed", 0, &seed)) t->seed = (uint64_t)seed;
    if ((x = ny_get(&c->y, v, "shuffle", NULL))) ny_bool(&c->y, x, "'shuffle'", &t->shuffle);
    if ((x = ny_get(&c->y, v, "optimizer", NULL))) optimizer(c, x);
    get_num(c, v, "validation", 0, false, 1, &t->validation);
    if ((x = ny_get(&c->y, v, "schedule", NULL))) schedule(c, x);
}

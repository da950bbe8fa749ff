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
}

void nm_train_free(nb_train_cfg *t)
{
    char **s[] = {&t->format,       &t->train_images, &t->train_labels, &t->test_images,
                  &t->test_labels,  &t->images_input, &t->labels_input, &t->optimizer};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        nb_free(*s[i]);
        *s[i] = NULL;
    }
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

/* train: {images: FILE, labels: FILE} */
static void file_pair(nm_ctx *c, const yaml_node_t *v, const char *what, char **images,
                      char **labels)
{
    static const char *const keys[] = {"images", "labels"};
    char w[64];
    snprintf(w, sizeof w, "'%s'", what);
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
        if (!ny_key_text(key) || ny_is_merge_key(key) || ny_map_dup(&c->y, v, i))
            continue;
        if (!ny_str(&c->y, key, "an input name", &in)) continue;
        nm_name *e = nm_lookup(c, in, strlen(in));
        bool is_input = false;
        for (size_t k = 0; e && e->node && k < c->m->n_inputs; k++)
            is_input |= c->m->inputs[k] == e->node;
        if (!e || (e->node && !is_input)) {
            const char **names = nb_malloc((c->m->n_inputs + 1) * sizeof *names);
            char hint[96] = "";
            if (names) {
                for (size_t k = 0; k < c->m->n_inputs; k++)
                    names[k] = nb_node_name(c->m->inputs[k]);
                ny_hint(hint, sizeof hint, in, names, c->m->n_inputs);
                nb_free(names);
            }
            ny_err(&c->y, key, "'%s' is not an input%s", in, hint);
            continue;
        }
        if (!get_word(c, val, "feed", roles, 2, &role)) continue;
        int r = !strcmp(role, "labels");
        if (seen[r]) {
            ny_err(&c->y, val, "%s already feed '%s'", role, ny_key_text(seen[r]));
            continue;
        }
        seen[r] = key;
        if (e->node && r == 0 && nb_node_dtype(e->node) == NB_I32)
            ny_err(&c->y, val, "images feed a float input; '%s' is i32", in);
        set_str(c, r ? &t->labels_input : &t->images_input, in);
    }
}

static void data(nm_ctx *c, const yaml_node_t *v)
{
    static const char *const keys[] = {"format", "train", "test", "feed", "scale"};
    static const char *const formats[] = {"idx"};
    nb_train_cfg *t = &c->m->train;
    if (!ny_map_check(&c->y, v, "'data'", keys, 5)) return;
    const yaml_node_t *x;
    const char *s;
    if ((x = ny_get(&c->y, v, "format", NULL)) && get_word(c, x, "data format", formats, 1, &s))
        set_str(c, &t->format, s);
    if ((x = ny_get(&c->y, v, "train", NULL)))
        file_pair(c, x, "train", &t->train_images, &t->train_labels);
    if ((x = ny_get(&c->y, v, "test", NULL)))
        file_pair(c, x, "test", &t->test_images, &t->test_labels);
    if ((x = ny_get(&c->y, v, "feed", NULL))) feed(c, x);
    get_num(c, v, "scale", 0, true, INFINITY, &t->scale);
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

void nm_train_parse(nm_ctx *c, const yaml_node_t *v)
{
    static const char *const keys[] = {"data", "batch",     "epochs",    "shuffle",
                                       "seed", "optimizer", "validation"};
    nb_train_cfg *t = &c->m->train;
    t->present = true;
    if (ny_value(v).kind == NY_NULL) return;  /* `train:` alone: all defaults */
    if (!ny_map_check(&c->y, v, "'train'", keys, 7)) return;
    const yaml_node_t *x;
    if ((x = ny_get(&c->y, v, "data", NULL))) data(c, x);
    get_int(c, v, "batch", 1, &t->batch);
    get_int(c, v, "epochs", 1, &t->epochs);
    int64_t seed;
    if (get_int(c, v, "seed", 0, &seed)) t->seed = (uint64_t)seed;
    if ((x = ny_get(&c->y, v, "shuffle", NULL))) ny_bool(&c->y, x, "'shuffle'", &t->shuffle);
    if ((x = ny_get(&c->y, v, "optimizer", NULL))) optimizer(c, x);
    get_num(c, v, "validation", 0, false, 1, &t->validation);
}

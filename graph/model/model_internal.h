/* Shared by the model loader's files (not installed):
 *   model_yaml.c    the YAML layer: document, core-schema scalars, mappings, messages
 *   model.c         the file as a whole: top level, outputs, loss; the nb_model API
 *   model_names.c   the names defined so far, references, reserved layer prefixes
 *   model_specs.c   inputs, params and init rules
 *   model_consts.c  constants, and numbers written in `in` lists
 *   model_nodes.c   op nodes and their attributes (read from the op registry)
 *   model_layers.c  layer shorthands (dense, conv2d, batchnorm) and their
 *                   descriptions (nb_layer_describe)
 *   model_act.c     a layer's activation: an op's name or {op: ..., attrs}
 *   model_train.c   the `train` section */
#ifndef NABLA_MODEL_INTERNAL_H
#define NABLA_MODEL_INTERNAL_H

#include <yaml.h>

#include "../internal.h"

/* ---- the YAML layer (model_yaml.c) ------------------------------------ */

typedef struct ny_msg {
    size_t line, col;  /* 1-based */
    size_t seq;        /* order of reporting, to keep the sort stable */
    char *text;        /* "FILE:LINE:COL: message" */
} ny_msg;

typedef struct ny_dups ny_dups;  /* duplicate keys of large mappings, found once */

typedef struct ny_ctx {
    yaml_document_t doc;
    ny_dups *dups;
    bool have_doc;
    const char *file;  /* for messages */
    ny_msg *msgs;
    size_t n_msgs, cap_msgs;
    bool oom;          /* an allocation failed: the load fails with NB_ERR_NOMEM */
} ny_ctx;

/* What a node holds, with plain scalars resolved by the YAML 1.2 core schema;
 * quoted scalars are always NY_STR. */
typedef enum { NY_NULL, NY_BOOL, NY_INT, NY_FLOAT, NY_STR, NY_SEQ, NY_MAP, NY_BIGINT } ny_kind;

typedef struct ny_val {
    ny_kind kind;
    bool b;          /* NY_BOOL */
    int64_t i;       /* NY_INT */
    double f;        /* NY_INT and NY_FLOAT */
    const char *s;   /* the scalar's text (NUL-terminated by libyaml) */
    size_t len;
} ny_val;

/* Parses one document from text; syntax errors become messages. false on error. */
bool ny_parse(ny_ctx *c, const char *text, size_t len);
/* model_guard.c: refuses, with a message, nesting deeper than NY_MAX_DEPTH and
 * aliases that expand to more than NY_MAX_EXPANSION values (before ny_parse
 * builds the document). false when it did. */
#define NY_MAX_DEPTH 64
#define NY_MAX_EXPANSION 1000000
bool ny_guard(ny_ctx *c, const char *text, size_t len);
void ny_free(ny_ctx *c);
yaml_node_t *ny_root(ny_ctx *c);
ny_val ny_value(const yaml_node_t *n);

/* Records "FILE:LINE:COL: message" at the first character of node `at`. */
void ny_err(ny_ctx *c, const yaml_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ny_err_mark(ny_ctx *c, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
size_t ny_line(const yaml_node_t *n);  /* 1-based */
/* Appends " (did you mean 'X'?)" when nb_suggest finds one, else nothing. */
const char *ny_hint(char *buf, size_t cap, const char *word, const char *const *choices,
                    size_t n);

/* The pairs of a mapping. */
size_t ny_map_size(const yaml_node_t *map);
yaml_node_t *ny_map_key(ny_ctx *c, const yaml_node_t *map, size_t i);
yaml_node_t *ny_map_val(ny_ctx *c, const yaml_node_t *map, size_t i);
/* The text of a scalar key, or NULL for a complex key. */
const char *ny_key_text(const yaml_node_t *key);
/* A plain `<<` key (reported by ny_map_check). */
bool ny_is_merge_key(const yaml_node_t *key);
/* Is pair i's key the same as an earlier pair's (reported by ny_map_check)? */
bool ny_map_dup(ny_ctx *c, const yaml_node_t *map, size_t i);

/* Requires a mapping ("WHAT must be a mapping; got ..."); checks its keys:
 * scalars, no duplicates, no merge key `<<`. With `known`, also reports keys
 * not in known[0..n_known) with a "did you mean" hint. false when n is not a
 * mapping. */
bool ny_map_check(ny_ctx *c, const yaml_node_t *n, const char *what, const char *const *known,
                  size_t n_known);
/* The value of `key` in a mapping (first occurrence) or NULL; *key_node when found. */
yaml_node_t *ny_get(ny_ctx *c, const yaml_node_t *map, const char *key, yaml_node_t **key_node);

/* Typed reads: each reports "WHAT must be ...; got ..." at n and returns false. */
bool ny_int(ny_ctx *c, const yaml_node_t *n, const char *what, int64_t *out);
bool ny_num(ny_ctx *c, const yaml_node_t *n, const char *what, double *out);  /* int or float */
bool ny_bool(ny_ctx *c, const yaml_node_t *n, const char *what, bool *out);
bool ny_str(ny_ctx *c, const yaml_node_t *n, const char *what, const char **out);
bool ny_seq(ny_ctx *c, const yaml_node_t *n, const char *what);
size_t ny_seq_size(const yaml_node_t *seq);
yaml_node_t *ny_seq_item(ny_ctx *c, const yaml_node_t *seq, size_t i);
/* Describes a value for messages: "'abc'", "a list", "a mapping", "nothing". */
const char *ny_describe(const yaml_node_t *n, char *buf, size_t cap);

/* ---- the model builder (model*.c) ------------------------------------- */

struct nb_model {
    nb_graph *g;
    char *name;
    nb_dtype dtype;   /* the file's */
    uint64_t seed;
    nb_node **inputs, **params, **outputs;
    size_t n_inputs, n_params, n_outputs, cap_inputs, cap_params;
    size_t n_trainable;   /* params[0..n_trainable) are trainable, the rest op state */
    nb_node *loss;
    nb_train_cfg train;
    char *dir;
};

/* A defined name: an input, a param, a node or a layer (node NULL when its
 * definition failed, so that users of it are skipped without a message). */
typedef struct nm_name {
    char *name;
    nb_node *node;
    size_t line;
    bool layer;
    const struct nm_name *first;  /* prefix entries: the first name "PREFIX.x" */
} nm_name;

typedef struct nm_ctx {
    ny_ctx y;
    nb_model *m;
    nb_dtype dt;            /* the dtype the graph is built in */
    nb_strmap names;        /* name -> nm_name */
    nb_strmap prefixes;     /* "a" and "a.b" for a name "a.b.c", for layers' reserved names */
    nm_name **order;        /* the names in definition order (owns them) */
    size_t n_order, cap_order;
} nm_ctx;

nm_name *nm_lookup(nm_ctx *c, const char *name, size_t len);
/* Adds a name (node NULL for a failed definition); NULL when out of memory. */
nm_name *nm_define(nm_ctx *c, const char *name, nb_node *node, size_t line, bool layer);
/* The layer whose reserved prefix "LAYER." starts `name`, or NULL. */
nm_name *nm_reserved_by(nm_ctx *c, const char *name);
/* The first name defined that begins "PREFIX.", or NULL. */
const nm_name *nm_first_with_prefix(nm_ctx *c, const char *prefix);
/* Resolves a reference to a name; reports "'x' is not defined above this node"
 * (with `where` in place of "above this node") when it is unknown. Returns the
 * node, or NULL both on that error and, silently, for failed definitions. */
nb_node *nm_resolve(nm_ctx *c, const yaml_node_t *ref, const char *where);
/* Checks that a name is a string of at most NM_MAX_NAME letters, digits, '_',
 * '.', '-' (nb__name_valid). (Layers add suffixes to it in fixed buffers.) */
#define NM_MAX_NAME 255
bool nm_valid_name(nm_ctx *c, const yaml_node_t *n, const char *what, const char **out);
/* "grad." or "opt." when name begins with one (names the library gives
 * gradients and optimizer state), else NULL. */
const char *nm_reserved_prefix(const char *name);
/* A layer or node that makes names NAME.x must not be called grad or opt;
 * reports "WHAT 'grad' would make names ..." at `at`. */
bool nm_owns_prefix(nm_ctx *c, const yaml_node_t *at, const char *name, const char *what);
/* Checks that a valid name is not taken (nor reserved: by a layer, or the
 * prefixes grad. and opt.); reports at `at`. */
bool nm_new_name(nm_ctx *c, const yaml_node_t *at, const char *name);
/* Adds a param to the model's list (and the graph's). */
bool nm_add_param(nm_ctx *c, nb_node *p);
bool nm_push(nm_ctx *c, nb_node ***arr, size_t *n, size_t *cap, nb_node *x);
/* Takes a string that is not a valid name, as failed (its users stay silent). */
void nm_define_invalid(nm_ctx *c, const yaml_node_t *n);
void nm_free_names(nm_ctx *c);
bool nm_is_symbol(const char *s);  /* an identifier, as a free dimension */
bool nm_parse_dtype(nm_ctx *c, const yaml_node_t *v, nb_dtype *out, bool allow_i32);
/* A shape list: positive integers, and symbols unless ints_only; reports at the list. */
bool nm_parse_shape(nm_ctx *c, const yaml_node_t *list, bool ints_only, nb_dim *dims,
                    int64_t *ints, int *rank);
/* nm_graph_err for a failure to make a tensor of that shape: a refusal for
 * the memory limit is reported as any error, not as running out of memory. */
void nm_graph_err_sized(nm_ctx *c, const yaml_node_t *at, int rank, const int64_t *shape, nb_dtype dt);
/* Runs `fn` on each entry of an inputs/params mapping whose name is valid and new. */
void nm_each_entry(nm_ctx *c, const yaml_node_t *map, const char *what,
                   void (*fn)(nm_ctx *, const yaml_node_t *, const char *, const yaml_node_t *));
void nm_do_input(nm_ctx *c, const yaml_node_t *key, const char *name, const yaml_node_t *spec);
void nm_do_param(nm_ctx *c, const yaml_node_t *key, const char *name, const yaml_node_t *spec);
/* A `constants:` entry (model_consts.c). */
void nm_do_constant(nm_ctx *c, const yaml_node_t *key, const char *name, const yaml_node_t *spec);
/* A number written in a node's `in` list: a rank-0 constant of the model's
 * dtype named `name`, defined at the number; NULL after reporting. */
nb_node *nm_literal(nm_ctx *c, const yaml_node_t *num, const char *name);
/* Is `name` a layer shorthand (model_layers.c)? */
bool nm_is_layer(const char *name);
/* Reads attribute `def` of an op from a value, typed by the registry (model_nodes.c). */
bool nm_parse_attr(nm_ctx *c, const nb_attr_def *def, const yaml_node_t *v, nb_attr *a);
/* Builds one node spec; returns its node (NULL when it or an input failed). */
nb_node *nm_do_node(nm_ctx *c, const yaml_node_t *spec);
/* Op-owned state that nb_op appended to node n after its n_given inputs
 * (batchnorm's running statistics): adds each to the model's params and
 * defines its name (at `line`, in layer `group` when not NULL). false when out
 * of memory. */
bool nm_adopt_state(nm_ctx *c, nb_node *n, int n_given, size_t line, const char *group);
/* Reports the graph's pending error at node `at` and clears it. */
void nm_graph_err(nm_ctx *c, const yaml_node_t *at);
/* Formats integer dims as "[2, 3]". */
const char *nm_shape_str(char *buf, size_t cap, int rank, const int64_t *shape);

/* An init rule as read from the file; values (owned) are checked against the
 * shape when the param is made. */
typedef struct nm_init {
    nb_init init;
    double *values;
    size_t n_values;
    bool too_many;              /* more values than the limit given */
    const yaml_node_t *values_key;
} nm_init;
bool nm_parse_init(nm_ctx *c, const yaml_node_t *v, size_t limit, nm_init *out);
void nm_init_free(nm_init *init);
/* Makes a param from a parsed init; reports a values count mismatch at the
 * values key and graph errors at `at`. NULL on error. */
nb_node *nm_make_param(nm_ctx *c, const char *name, int rank, const int64_t *shape,
                       nm_init *init, const yaml_node_t *at);

/* ---- layers (model_layers.c, model_act.c) ---------------------------- */

/* Reads a layer's `activation` value: *act is its op (NULL for none) and
 * attrs[0..*n_attrs) the attributes a mapping gives (room for NB_MAX_ATTRS).
 * Reports what is wrong at v and returns false. */
bool nm_parse_activation(nm_ctx *c, const yaml_node_t *v, const nb_op_def **act, nb_attr *attrs,
                         int *n_attrs);

/* Checks node spec `map` with `layer: layer_val` and, when `can_build` (its
 * name is new and valid, its inputs in[0..n_in) resolved, no error so far)
 * and it has no error of its own, builds it. `name` is NULL when invalid.
 * Reports every error itself; returns the layer's last node, or NULL. */
nb_node *nm_build_layer(nm_ctx *c, const yaml_node_t *map, const yaml_node_t *layer_val,
                        const char *name, const yaml_node_t *name_node, nb_node *const *in,
                        int n_in, bool can_build);

/* ---- the train section (model_train.c) ------------------------------- */

void nm_train_defaults(nb_train_cfg *t);
void nm_train_parse(nm_ctx *c, const yaml_node_t *train);
void nm_train_free(nb_train_cfg *t);
char *nm_strdup(nm_ctx *c, const char *s);

#endif

/* nabla — model files (YAML, format version 1; see docs/model-format.md).
 *
 * Loading a file builds a graph exactly as the C API would. A file with errors
 * is never partly loaded: every error found in one pass is reported as
 * "FILE:LINE:COL: message" and no model is returned. A node that fails is
 * reported once; nodes that use it are skipped without a message.
 *
 * Ops, their arity and attributes come from the op registry (op.h), so a
 * registered user op can be used in a file like a built-in one.
 *
 * Beyond the format page, the loader accepts (extensions):
 *   - `in: x` and `outputs: y` for one-element lists;
 *   - `optimizer: sgd` for `optimizer: {type: sgd}`;
 *   - `activation:` any registered op that takes one input and has no
 *     required attribute (exp, softmax, ...), besides none and the
 *     activations the format names (relu, sigmoid, tanh, leaky_relu, gelu,
 *     silu, elu, softplus, each once its op is registered);
 *   - `params:` or `train:` with nothing after them (no params; all defaults);
 *   - `{values: 2.5}` for a param of one element.
 * Choices where the page leaves room:
 *   - `format: npy`: `train` and `test` map input names to files (both, when
 *     given, the same inputs); every key must be an input of the model, and
 *     `feed` or `images`/`labels` keys are errors. The loader checks names
 *     only: the inputs the loss needs, and the files' shapes and dtypes, are
 *     checked where the data is read (nabla train / eval). See nb_train_cfg;
 *   - the conv2d layer adds its bias through a view NAME.bias = NAME.b as
 *     [O, 1, 1], so its nodes are NAME.conv, NAME.bias, NAME.add, activation;
 *   - batchnorm's running statistics NODE.running_mean / NODE.running_var
 *     (of a batchnorm layer or an `op: batchnorm` node) are the op's state
 *     (op.h, nb_state_def): params made by nb_op, not trainable
 *     (nb_param_trainable is false), which get no gradient and which training
 *     runs update. nb_model_param lists them too, so that they are saved and
 *     loaded with the weights, but after every trainable param: the first
 *     nb_model_num_trainable(m) params are the trainable ones. Later nodes may
 *     refer to them by name;
 *   - constants (`constants:` and numbers in `in` lists, NODE.inI) are graph
 *     nodes of kind NB_NODE_CONST (nb_constant), not params: nb_model_param
 *     does not list them. Loaded with force_f64, float constants are f64. */
#ifndef NABLA_MODEL_H
#define NABLA_MODEL_H

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_model nb_model;

/* Errors come as nb_diags (core.h): lines "FILE:LINE:COL: message", in file order. */

typedef struct nb_load_opts {
    bool force_f64;   /* build the graph in f64 whatever the file's dtype (gradcheck) */
} nb_load_opts;

/* Returns NB_OK, NB_ERR_FORMAT (errors in the file, listed in *diags),
 * NB_ERR_IO (cannot read it: one line "PATH: cannot read the file (why)"),
 * NB_ERR_NOMEM or NB_ERR_ARG. `opts` and `diags` may be NULL; *diags is
 * empty on success and is freed with nb_diags_free. */
NB_API nb_status nb_model_load_file(const char *path, const nb_load_opts *opts, nb_model **out,
                             nb_diags *diags);
/* ONNX (a path ending in ".onnx" given to nb_model_load_file comes here;
 * docs/onnx.md lists the ops): initializers become params named as in the
 * file, holding its values; graph inputs that are not initializers become
 * inputs (dim_param a free dimension); the graph's outputs the outputs; no
 * loss. Names are sanitised: every character outside [A-Za-z0-9_.-] becomes
 * '_', with "_2", "_3", ... on collision. Returns NB_ERR_IO, NB_ERR_FORMAT
 * (not an ONNX file; an unsupported op, attribute or dtype: one line
 * "PATH: node 'NAME' (OP): unsupported ..."), NB_ERR_NOMEM or NB_ERR_ARG;
 * nothing is half-loaded. A nabla built without ONNX (meson option onnx)
 * returns NB_ERR_FORMAT saying so. */
NB_API nb_status nb_model_load_onnx(const char *path, const nb_load_opts *opts, nb_model **out,
                                    nb_diags *diags);
/* Writes m as a model file (format version 1; `nabla convert`), atomically:
 * inputs with their free dimensions, params with their shapes, constants,
 * every op node as {name, op, in, attributes} (optional attributes at their
 * defaults left out), outputs, loss and the `train` section (file names as
 * written in the source, relative ones found from the new file). Param values go
 * to `weights` (safetensors, or .npz by extension; op state such as
 * batchnorm's running statistics too; metadata format "nabla-weights-1",
 * model, nabla) with `init: zeros` in the file, or,
 * when weights is NULL, into the file as `init: {values: [...]}`. An op
 * that model files cannot name (internal ops) is an error naming the node.
 * The message of a failure is the thread's (nb_last_error). */
NB_API nb_status nb_model_save_yaml(const nb_model *m, const char *path, const char *weights);
/* Writes the part of m that its outputs need as an ONNX model (opset 17,
 * IR version 8), atomically: params and constants as initializers, inputs
 * with their free dimensions as dim_param, outputs with their shapes. One
 * writer per nabla op; an op with no ONNX counterpart is an error
 * "node 'NAME' (OP): unsupported ...". Without ONNX support (meson option
 * onnx), NB_ERR_FORMAT saying so. The message of a failure is the thread's. */
NB_API nb_status nb_model_save_onnx(const nb_model *m, const char *path);
/* `filename` is used in messages and to resolve relative data paths; NULL
 * gives "<string>" in messages and "." as the folder. */
NB_API nb_status nb_model_load_string(const char *yaml, size_t len, const char *filename,
                               const nb_load_opts *opts, nb_model **out, nb_diags *diags);
NB_API void nb_model_free(nb_model *m);

NB_API nb_graph *nb_model_graph(const nb_model *m);
NB_API const char *nb_model_name(const nb_model *m);   /* "" when the file has none */
NB_API nb_dtype nb_model_dtype(const nb_model *m);     /* the file's dtype (before force_f64) */
NB_API uint64_t nb_model_seed(const nb_model *m);
NB_API size_t nb_model_num_inputs(const nb_model *m);
NB_API nb_node *nb_model_input(const nb_model *m, size_t i);
/* Every param: the trainable ones first (file order), then op state. */
NB_API size_t nb_model_num_params(const nb_model *m);
NB_API nb_node *nb_model_param(const nb_model *m, size_t i);
/* How many of the params, from the first, are trainable. */
NB_API size_t nb_model_num_trainable(const nb_model *m);
NB_API size_t nb_model_num_outputs(const nb_model *m);
NB_API nb_node *nb_model_output(const nb_model *m, size_t i);
NB_API nb_node *nb_model_loss(const nb_model *m);       /* NULL when the file names none */
/* Makes `loss` (a float scalar node of the model's graph) the model's loss,
 * e.g. for an ONNX model, which has none (nabla gradcheck differentiates
 * the sum of the outputs). NB_ERR_ARG, with the message on the graph, when it is not one. */
NB_API nb_status nb_model_set_loss(nb_model *m, nb_node *loss);

/* The `train` section (defaults of model-format.md where absent). File names
 * are as written in the file (resolve them as model-format.md says, against
 * nb_model_dir first). */
typedef struct nb_train_cfg {
    bool present;                /* the file has a train section */
    char *format;                /* "idx" (default) or "npy" */
    /* format idx: the IDX pairs and the `feed` (all NULL for npy) */
    char *train_images, *train_labels, *test_images, *test_labels;  /* as written */
    char *images_input, *labels_input;   /* input names fed images / labels (NULL: no feed) */
    double scale;                /* 1 */
    int64_t batch;               /* 100 */
    int64_t epochs;              /* 1 */
    bool shuffle;                /* true */
    uint64_t seed;               /* 0 */
    char *optimizer;             /* "adam" */
    double lr, momentum, beta1, beta2, eps, weight_decay;  /* 0.001, 0.9, 0.9, 0.999, eps, 0 */
    bool eps_given;              /* eps defaults differ: adam 1e-8, adagrad 1e-10 (set
                                    accordingly when not given) */
    double validation;           /* 0 */
    /* format npy (added after the fields above, which keep their offsets):
     * `train` and `test` map input names to .npy files. npy_inputs[0..n_npy)
     * are the inputs either mapping names (train's in file order, then any
     * only test names), each an input of the model; npy_train[i] and
     * npy_test[i] are the files of input npy_inputs[i], NULL when that
     * mapping is absent. When both are given they name the same inputs (the
     * loader checks). Which inputs the loss needs, and the files' shapes and
     * dtypes, are checked when the data is loaded (nabla train / eval), not
     * here. n_npy is 0 and the arrays NULL for format idx. */
    size_t n_npy;
    char **npy_inputs, **npy_train, **npy_test;
    /* `schedule` (after the fields above, which keep their offsets): the
     * learning-rate schedule, as nb_lr_schedule. schedule_epochs 0 means the
     * run's epochs (`epochs` or `nabla train --epochs`). */
    char *schedule;              /* "constant" (default), "cosine" or "step" */
    int64_t schedule_epochs;     /* cosine: 0 */
    double min_lr;               /* cosine: 0 */
    int64_t every;               /* step: 1 */
    double gamma;                /* step: 0.1 */
} nb_train_cfg;
NB_API const nb_train_cfg *nb_model_train(const nb_model *m);
/* Folder of the model file ("." for strings without a path), for data paths. */
NB_API const char *nb_model_dir(const nb_model *m);

/* ---- layer shorthands, described (`nabla ops` lists them) ---------- */

#define NB_LAYER_MAX_ATTRS 16
typedef struct nb_layer_attr {
    const char *name;
    const char *type;     /* "int", "float", "bool", "activation", "init" */
    bool required;
    char def[48];         /* "required", "default 1", "default none", ... */
} nb_layer_attr;
typedef struct nb_layer_info {
    const char *name;     /* as written after `layer:` */
    const char *in;       /* its input, e.g. "x [N, C, H, W]" */
    const char *creates;  /* the params it makes, e.g. "NAME.W [F, units] (init), ..." */
    const char *doc;      /* what it computes */
    int n_attrs;
    nb_layer_attr attrs[NB_LAYER_MAX_ATTRS];
} nb_layer_info;
NB_API size_t nb_layer_count(void);
/* Fills *out for layer i (0 <= i < nb_layer_count()) or for the layer called
 * name; NB_ERR_ARG when there is none. The strings are static. */
NB_API nb_status nb_layer_describe(size_t i, nb_layer_info *out);
NB_API nb_status nb_layer_find(const char *name, nb_layer_info *out);

#ifdef __cplusplus
}
#endif
#endif

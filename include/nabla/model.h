/* nabla — model files (YAML, format version 1; see docs/model-format.md).
 *
 * Loading a file builds a graph exactly as the C API would. A file with errors
 * is never partly loaded: every error found in one pass is reported as
 * "FILE:LINE:COL: message" and no model is returned. */
#ifndef NABLA_MODEL_H
#define NABLA_MODEL_H

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_model nb_model;

/* Error lines, "FILE:LINE:COL: message", in file order. */
typedef struct nb_diags {
    size_t n;
    char **lines;
} nb_diags;
void nb_diags_free(nb_diags *d);

typedef struct nb_load_opts {
    bool force_f64;   /* build the graph in f64 whatever the file's dtype (gradcheck) */
} nb_load_opts;

nb_status nb_model_load_file(const char *path, const nb_load_opts *opts, nb_model **out,
                             nb_diags *diags);
/* `filename` is used in messages and to resolve relative data paths. */
nb_status nb_model_load_string(const char *yaml, size_t len, const char *filename,
                               const nb_load_opts *opts, nb_model **out, nb_diags *diags);
void nb_model_free(nb_model *m);

nb_graph *nb_model_graph(const nb_model *m);
const char *nb_model_name(const nb_model *m);   /* "" when the file has none */
nb_dtype nb_model_dtype(const nb_model *m);     /* the file's dtype (before force_f64) */
uint64_t nb_model_seed(const nb_model *m);
size_t nb_model_num_inputs(const nb_model *m);
nb_node *nb_model_input(const nb_model *m, size_t i);
size_t nb_model_num_params(const nb_model *m);
nb_node *nb_model_param(const nb_model *m, size_t i);
size_t nb_model_num_outputs(const nb_model *m);
nb_node *nb_model_output(const nb_model *m, size_t i);
nb_node *nb_model_loss(const nb_model *m);       /* NULL when the file names none */

/* The `train` section (defaults of model-format.md where absent). */
typedef struct nb_train_cfg {
    bool present;                /* the file has a train section */
    char *format;                /* "idx" */
    char *train_images, *train_labels, *test_images, *test_labels;  /* as written */
    char *images_input, *labels_input;   /* input names fed images / labels */
    double scale;                /* 1 */
    int64_t batch;               /* 100 */
    int64_t epochs;              /* 1 */
    bool shuffle;                /* true */
    uint64_t seed;               /* 0 */
    char *optimizer;             /* "adam" */
    double lr, momentum, beta1, beta2, eps, weight_decay;
    bool eps_given;              /* eps defaults differ: adam 1e-8, adagrad 1e-10 */
    double validation;           /* 0 */
} nb_train_cfg;
const nb_train_cfg *nb_model_train(const nb_model *m);
/* Folder of the model file ("." for strings without a path), for data paths. */
const char *nb_model_dir(const nb_model *m);

#ifdef __cplusplus
}
#endif
#endif

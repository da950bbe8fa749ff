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

/* The model's class scores: its first output when it is [N, K] and a labels
 * input is fed. */
static nb_node *scores_of(const nb_model *m, nb_node *labels)
{
    nb_node *y = nb_model_num_outputs(m) ? nb_model_output(m, 0) : NULL;
    if (!labels || !y || nb_node_rank(y) != 2 || nb_node_dim(y, 1) < 1 || nb_node_dtype(y) == NB_I32)
        return NULL;
    return y;
}

int nbt_make_trainer(const char *cmd, nb_model *m, const nb_trainer_cfg *base, nb_trainer **out)
{
    const nb_train_cfg *tc = nb_model_train(m);
    nb_graph *g = nb_model_graph(m);
    nb_trainer_cfg c = *base;
    nb_node *images = tc->images_input ? nb_graph_find(g, tc->images_input) : NULL;
    nb_node *labels = tc->labels_input ? nb_graph_find(g, tc->labels_input) : NULL;
    *out = NULL;
    if (!nb_model_loss(m)) return nbt_fail(cmd, "the model has no 'loss:' to train or evaluate");
    if (!images) return nbt_fail(cmd, "the model's train section feeds no input with images "
                                      "(train: data: feed: {x: images, t: labels})");
    if (labels && nb_node_dtype(labels) != NB_I32)
        return nbt_fail(cmd, "labels feed input '%s', which must be i32 (class ids)",
                        nb_node_name(labels));
    c.loss = nb_model_loss(m);
    c.labels = labels;
    c.scores = scores_of(m, labels);
    c.n_params = (int)nb_model_num_trainable(m);
    nb_node **p = malloc(((size_t)c.n_params + 1) * sizeof *p);
    if (!p) return nbt_fail(cmd, "out of memory");
    for (int i = 0; i < c.n_params; i++) p[i] = nb_model_param(m, (size_t)i);
    c.params = p;
    nb_status st = nb_trainer_new(g, &c, out);
    free(p);
    if (st) return nbt_fail(cmd, "%s", nb_graph_error(g));
    if (nb_trainer_feed(*out, images, "images", tc->scale) ||
        (labels && nb_trainer_feed(*out, labels, "labels", 1))) {
        nbt_fail(cmd, "%s", nb_trainer_error(*out));
        nb_trainer_free(*out);
        *out = NULL;
        return NBT_ERROR;
    }
    return NBT_OK;
}

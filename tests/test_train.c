/* The training loop (nb_trainer) on Fashion-MNIST from Debian's
 * dataset-fashion-mnist: a short run learns, checkpoints resume to the same
 * bits (between epochs and mid-epoch), a bad checkpoint is refused whole, and
 * a loss that stops being finite stops training with the node named. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/"

/* The MLP of examples/models/mnist_mlp.yaml, smaller. */
static const char *const MLP =
    "nabla: 1\n"
    "seed: 7\n"
    "inputs:\n"
    "  x: [N, 784]\n"
    "  t: {shape: [N], dtype: i32}\n"
    "nodes:\n"
    "  - {name: h, layer: dense, in: [x], units: 64, activation: relu}\n"
    "  - {name: d, op: dropout, in: [h], rate: 0.2}\n"
    "  - {name: y, layer: dense, in: [d], units: 10}\n"
    "  - {name: loss, op: softmax_cross_entropy, in: [y, t]}\n"
    "outputs: [y]\n"
    "loss: loss\n";

typedef struct setup {
    nb_model *m;
    nb_trainer *t;
} setup;

/* The last `keep` samples of a Fashion-MNIST file pair (a view, no copy). */
static nb_dataset *part(const char *images, const char *labels, double keep_fraction)
{
    nb_dataset *all, *tail;
    cr_assert_eq(nb_dataset_load_idx(images, labels, &all), NB_OK, "%s", nb_last_error());
    cr_assert_eq(nb_dataset_split(all, keep_fraction, &tail), NB_OK, "%s", nb_dataset_error(all));
    nb_dataset_free(all);
    return tail;
}

static setup make_scaled(nb_optimizer type, double lr, int64_t batch, double scale)
{
    setup s;
    nb_diags d = {0};
    cr_assert_eq(nb_model_load_string(MLP, strlen(MLP), NULL, NULL, &s.m, &d), NB_OK, "%s",
                 d.n ? d.lines[0] : "");
    nb_graph *g = nb_model_graph(s.m);
    nb_trainer_cfg c = {.loss = nb_model_loss(s.m), .optim = nb_optim_defaults(type), .batch = batch,
                        .shuffle = true, .seed = 3, .scores = nb_graph_find(g, "y"),
                        .labels = nb_graph_find(g, "t")};
    c.optim.lr = lr;
    cr_assert_eq(nb_trainer_new(g, &c, &s.t), NB_OK, "%s", nb_graph_error(g));
    cr_assert_eq(nb_trainer_feed(s.t, nb_graph_find(g, "x"), "images", scale), NB_OK);
    cr_assert_eq(nb_trainer_feed(s.t, nb_graph_find(g, "t"), "labels", 1), NB_OK);
    return s;
}

static setup make(nb_optimizer type, double lr, int64_t batch)
{
    return make_scaled(type, lr, batch, 1.0 / 255);
}

static void drop(setup *s)
{
    nb_trainer_free(s->t);
    nb_model_free(s->m);
}

/* Every param's bytes, the optimizer's state among them. */
static bool same_params(const setup *a, const setup *b)
{
    nb_graph *ga = nb_model_graph(a->m), *gb = nb_model_graph(b->m);
    cr_assert_eq(nb_graph_num_nodes(ga), nb_graph_num_nodes(gb));
    for (size_t i = 0; i < nb_graph_num_nodes(ga); i++) {
        nb_node *x = nb_graph_node(ga, i), *y = nb_graph_node(gb, i);
        if (nb_node_kind_of(x) != NB_NODE_PARAM) continue;
        const nb_tensor *tx = nb_param_value(x), *ty = nb_param_value(y);
        if (memcmp(tx->data, ty->data, nb_tensor_bytes(tx))) return false;
    }
    return true;
}

Test(train, a_short_run_learns, .timeout = 120)
{
    nb_dataset *train = part(FMNIST "train-images-idx3-ubyte.gz", FMNIST "train-labels-idx1-ubyte.gz", 0.05);
    nb_dataset *test = part(FMNIST "t10k-images-idx3-ubyte.gz", FMNIST "t10k-labels-idx1-ubyte.gz", 0.2);
    cr_assert_eq(nb_dataset_size(train), 3000);
    setup s = make(NB_ADAM, 1e-3, 32);
    nb_metrics before, m, e;
    cr_assert_eq(nb_trainer_evaluate(s.t, test, &before, NULL), NB_OK, "%s", nb_trainer_error(s.t));
    for (int i = 0; i < 3; i++)
        cr_assert_eq(nb_trainer_epoch(s.t, train, NULL, NULL, &m), NB_OK, "%s", nb_trainer_error(s.t));
    cr_assert_eq(nb_trainer_epochs(s.t), 3);
    cr_assert_eq(nb_trainer_evaluate(s.t, test, &e, NULL), NB_OK, "%s", nb_trainer_error(s.t));
    cr_expect_eq(e.samples, 2000);
    cr_expect(before.accuracy < 0.3, "untrained accuracy %g", before.accuracy);
    cr_expect(e.accuracy >= 0.75, "accuracy after 3 epochs on 3000 images: %.4f", e.accuracy);
    cr_expect(e.loss < before.loss);
    cr_expect_eq(m.samples, 3000, "the last, partial batch is used");
    drop(&s);
    nb_dataset_free(train);
    nb_dataset_free(test);
}

static nb_dataset *small_train(void)
{
    return part(FMNIST "train-images-idx3-ubyte.gz", FMNIST "train-labels-idx1-ubyte.gz", 0.01);
}

Test(train, one_plus_one_epochs_equal_two, .init = tmp_make, .fini = tmp_remove)
{
    nb_dataset *d = small_train();  /* 600 samples: 18 batches of 32 and one of 24 */
    setup a = make(NB_ADAM, 1e-3, 32), b = make(NB_ADAM, 1e-3, 32), c = make(NB_ADAM, 1e-3, 32);
    for (int i = 0; i < 2; i++) cr_assert_eq(nb_trainer_epoch(a.t, d, NULL, NULL, NULL), NB_OK);
    cr_assert_eq(nb_trainer_epoch(b.t, d, NULL, NULL, NULL), NB_OK);
    cr_assert_eq(nb_trainer_save(b.t, tmp_path("ck.safetensors"), NULL, 0), NB_OK, "%s", nb_trainer_error(b.t));
    cr_assert_eq(nb_trainer_resume(c.t, tmp_path("ck.safetensors")), NB_OK, "%s", nb_trainer_error(c.t));
    cr_expect_eq(nb_trainer_epochs(c.t), 1);
    cr_assert_eq(nb_trainer_epoch(c.t, d, NULL, NULL, NULL), NB_OK);
    cr_expect(same_params(&a, &c), "resumed run differs from the straight one");
    cr_expect_not(same_params(&a, &b));
    drop(&a), drop(&b), drop(&c);
    nb_dataset_free(d);
}

static bool stop_after_5(void *user, const nb_progress *p)
{
    (void)user;
    return p->batch < 5;
}

Test(train, a_stopped_epoch_resumes_with_the_next_batch, .init = tmp_make, .fini = tmp_remove)
{
    nb_dataset *d = small_train();
    setup a = make(NB_MOMENTUM, 0.05, 32), b = make(NB_MOMENTUM, 0.05, 32), c = make(NB_MOMENTUM, 0.05, 32);
    nb_metrics ma, mc;
    cr_assert_eq(nb_trainer_epoch(a.t, d, NULL, NULL, &ma), NB_OK);
    cr_assert_eq(nb_trainer_epoch(b.t, d, stop_after_5, NULL, NULL), NB_OK);
    cr_expect(nb_trainer_mid_epoch(b.t));
    cr_expect_eq(nb_trainer_epochs(b.t), 0);
    cr_assert_eq(nb_trainer_save(b.t, tmp_path("mid.safetensors"), NULL, 0), NB_OK);
    cr_assert_eq(nb_trainer_resume(c.t, tmp_path("mid.safetensors")), NB_OK, "%s", nb_trainer_error(c.t));
    cr_assert_eq(nb_trainer_epoch(c.t, d, NULL, NULL, &mc), NB_OK);
    cr_expect_eq(nb_trainer_epochs(c.t), 1);
    cr_expect(same_params(&a, &c));
    cr_expect_eq(mc.samples, ma.samples, "the epoch's metrics cover the samples before the stop");
    cr_expect_eq(mc.loss, ma.loss);
    drop(&a), drop(&b), drop(&c);
    nb_dataset_free(d);
}

/* A checkpoint cut short or not nabla's is refused whole: nothing changes. */
Test(train, bad_checkpoints_change_nothing, .init = tmp_make, .fini = tmp_remove)
{
    nb_dataset *d = small_train();
    setup a = make(NB_ADAM, 1e-3, 32), b = make(NB_ADAM, 1e-3, 32);
    cr_assert_eq(nb_trainer_epoch(a.t, d, NULL, NULL, NULL), NB_OK);
    cr_assert_eq(nb_trainer_save(a.t, tmp_path("good.safetensors"), NULL, 0), NB_OK);
    size_t len;
    char *bytes = read_text(tmp_path("good.safetensors"), &len);
    FILE *f = fopen(tmp_path("cut.safetensors"), "wb");
    fwrite(bytes, 1, len / 2, f);
    fclose(f);
    cr_expect_eq(nb_trainer_resume(b.t, tmp_path("cut.safetensors")), NB_ERR_FORMAT);
    cr_expect(strstr(nb_trainer_error(b.t), "cut.safetensors"), "%s", nb_trainer_error(b.t));
    /* plain weights (no position): not a checkpoint */
    cr_assert_eq(nb_weights_save(nb_model_graph(a.m), tmp_path("w.safetensors"), NULL, 0), NB_OK);
    cr_expect_eq(nb_trainer_resume(b.t, tmp_path("w.safetensors")), NB_ERR_FORMAT);
    cr_expect(strstr(nb_trainer_error(b.t), "not a nabla checkpoint"), "%s", nb_trainer_error(b.t));
    cr_expect_eq(nb_trainer_epochs(b.t), 0);
    setup fresh = make(NB_ADAM, 1e-3, 32);
    cr_expect(same_params(&b, &fresh), "a refused checkpoint changed params");
    /* the good file is untouched by all that */
    size_t len2;
    char *again = read_text(tmp_path("good.safetensors"), &len2);
    cr_expect(len2 == len && !memcmp(bytes, again, len));
    free(bytes), free(again);
    drop(&a), drop(&b), drop(&fresh);
    nb_dataset_free(d);
}

Test(train, a_loss_that_is_not_finite_stops_training)
{
    nb_dataset *d = small_train();
    setup s = make_scaled(NB_SGD, 0.01, 32, 1e37);  /* pixels of 2.55e39 overflow f32 */
    cr_assert_eq(nb_trainer_epoch(s.t, d, NULL, NULL, NULL), NB_ERR_RUNTIME);
    const char *e = nb_trainer_error(s.t);
    cr_expect(strstr(e, "step 1 (epoch 1, batch 1)") && strstr(e, "not finite"), "%s", e);
    cr_expect(strstr(e, "node 'x' (input)"), "%s", e);
    drop(&s);
    s = make_scaled(NB_SGD, 0.01, 32, 1e36);  /* finite pixels; their products overflow */
    cr_assert_eq(nb_trainer_epoch(s.t, d, NULL, NULL, NULL), NB_ERR_RUNTIME);
    e = nb_trainer_error(s.t);
    cr_expect(strstr(e, "node 'h.matmul' (matmul)"), "%s", e);
    /* the params were left as before the bad step: all finite */
    nb_graph *g = nb_model_graph(s.m);
    const nb_tensor *w = nb_param_value(nb_graph_find(g, "h.W"));
    for (size_t i = 0; i < nb_tensor_numel(w); i++)
        cr_assert(isfinite(((float *)w->data)[i]), "h.W[%zu] is %g", i, ((float *)w->data)[i]);
    drop(&s);
    nb_dataset_free(d);
}

Test(train, data_that_does_not_fit_is_refused)
{
    nb_dataset *d = small_train();
    setup s = make(NB_ADAM, 1e-3, 32);
    nb_graph *g = nb_model_graph(s.m);
    cr_expect_eq(nb_trainer_feed(s.t, nb_graph_find(g, "x"), "pixels", 1), NB_OK);
    cr_expect_eq(nb_trainer_epoch(s.t, d, NULL, NULL, NULL), NB_ERR_ARG);
    cr_expect(strstr(nb_trainer_error(s.t), "no field 'pixels'"), "%s", nb_trainer_error(s.t));
    drop(&s);
    nb_dataset_free(d);
}

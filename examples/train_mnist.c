/* Trains the PyTorch tutorial's MLP (784-128-256-10, ReLU, Adam, batch 64) on
 * Fashion-MNIST through the library alone: the graph from the C API, the data
 * from Debian's dataset-fashion-mnist, the loop of nb_trainer.
 *
 *   train_mnist [EPOCHS] [DATA_DIR]     (1 epoch, /usr/share/datasets/fashion-mnist) */
#include <stdio.h>
#include <stdlib.h>

#include <nabla/nabla.h>

/* y = x W + b, with W [in, out] drawn as He does, named NAME.W / NAME.b */
static nb_node *dense(nb_graph *g, nb_node *x, const char *name, int64_t in, int64_t out)
{
    char w[64], b[64];
    snprintf(w, sizeof w, "%s.W", name);
    snprintf(b, sizeof b, "%s.b", name);
    nb_node *W = nb_param(g, w, NB_F32, 2, (int64_t[]){in, out}, (nb_init){.kind = NB_INIT_HE, .seed = 7});
    nb_node *B = nb_param(g, b, NB_F32, 1, (int64_t[]){out}, NB_INIT(NB_INIT_ZEROS));
    return nb_add(g, nb_matmul(g, x, W), B);
}

static bool show(void *user, const nb_progress *p)
{
    (void)user;
    if (p->batch % 200 == 0)
        printf("  epoch %lld batch %zu/%zu: loss %.4f\n", (long long)p->epoch + 1, p->batch, p->batches,
               p->so_far.loss);
    return true;
}

static nb_dataset *load(const char *dir, const char *images, const char *labels)
{
    char ip[512], lp[512];
    nb_dataset *d = NULL;
    snprintf(ip, sizeof ip, "%s/%s", dir, images);
    snprintf(lp, sizeof lp, "%s/%s", dir, labels);
    if (nb_dataset_load_idx(ip, lp, &d)) fprintf(stderr, "train_mnist: %s\n", nb_last_error());
    return d;
}

int main(int argc, char **argv)
{
    int epochs = argc > 1 ? atoi(argv[1]) : 1;
    const char *dir = argc > 2 ? argv[2] : "/usr/share/datasets/fashion-mnist";
    nb_dataset *train = load(dir, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz");
    nb_dataset *test = load(dir, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz");
    if (!train || !test) return 1;

    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F32, 2, (nb_dim[]){NB_SYM("N"), NB_DIM(784)});
    nb_node *t = nb_input(g, "t", NB_I32, 1, (nb_dim[]){NB_SYM("N")});
    nb_node *h1 = nb_relu(g, dense(g, x, "fc1", 784, 128));
    nb_node *h2 = nb_relu(g, dense(g, h1, "fc2", 128, 256));
    nb_node *y = dense(g, h2, "out", 256, 10);
    nb_node *loss = nb_softmax_cross_entropy(g, y, t);  /* NULL if any step failed */

    nb_trainer_cfg cfg = {.loss = loss, .optim = nb_optim_defaults(NB_ADAM), .batch = 64,
                          .shuffle = true, .seed = 1, .scores = y, .labels = t};
    nb_trainer *tr = NULL;
    if (nb_trainer_new(g, &cfg, &tr)) {
        fprintf(stderr, "train_mnist: %s\n", nb_graph_error(g));
        return 1;
    }
    int rc = 0;
    if (nb_trainer_feed(tr, x, "images", 1.0 / 255) || nb_trainer_feed(tr, t, "labels", 1)) rc = 1;
    for (int e = 0; e < epochs && !rc; e++) {
        nb_metrics m, v;
        if (nb_trainer_epoch(tr, train, show, NULL, &m) || nb_trainer_evaluate(tr, test, &v, NULL)) {
            rc = 1;
            break;
        }
        printf("epoch %d: train loss %.4f accuracy %.2f%%, test loss %.4f accuracy %.2f%% (%.1f s)\n",
               e + 1, m.loss, 100 * m.accuracy, v.loss, 100 * v.accuracy, m.seconds + v.seconds);
    }
    if (rc) fprintf(stderr, "train_mnist: %s\n", nb_trainer_error(tr));
    nb_trainer_free(tr);
    nb_graph_free(g);
    nb_dataset_free(train);
    nb_dataset_free(test);
    return rc;
}

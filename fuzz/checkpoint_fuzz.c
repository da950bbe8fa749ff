/* libFuzzer target for resuming a training checkpoint (nb_trainer_resume: a
 * safetensors file whose metadata says where training stands), then running
 * the rest of the epoch on 4 samples in batches of 2. Built and run by
 * fuzz/run.sh (seeds: the checkpoints of tests/bad/checkpoint). The input goes
 * to a temporary file (fuzz_file.h); the dataset's IDX files are written once.
 * A resume must fail with a message, or leave a trainer whose next epoch
 * ends (status and message either way) with the epoch count sane. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_file.h"
#include "nabla/nabla.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len);

static const char MODEL[] = "nabla: 1\n"
                            "inputs:\n"
                            "  x: [N, 4]\n"
                            "  t: {shape: [N], dtype: i32}\n"
                            "nodes:\n"
                            "  - {name: y, layer: dense, in: [x], units: 3}\n"
                            "  - {name: loss, op: softmax_cross_entropy, in: [y, t]}\n"
                            "loss: loss\n";

static char images[4096], labels[4096];

static void remove_data(void)
{
    unlink(images);
    unlink(labels);
}

/* 4 images of 2x2 and their labels, as IDX files (once per process). */
static nb_dataset *dataset(void)
{
    static const unsigned char im[] = {0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 2,
                                       0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    static const unsigned char lb[] = {0, 0, 8, 1, 0, 0, 0, 4, 0, 1, 2, 1};
    if (!images[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(images, sizeof images, "%s/nabla-fuzz-XXXXXX", dir && dir[0] ? dir : "/tmp");
        snprintf(labels, sizeof labels, "%s", images);
        int a = mkstemp(images), b = mkstemp(labels);
        if (a < 0 || b < 0 || write(a, im, sizeof im) != (ssize_t)sizeof im ||
            write(b, lb, sizeof lb) != (ssize_t)sizeof lb)
            abort();
        close(a);
        close(b);
        atexit(remove_data);
    }
    nb_dataset *d;
    if (nb_dataset_load_idx(images, labels, &d)) abort();
    return d;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
    /* 1 GiB, under the runner's -rss_limit_mb=2048: an input that makes nabla ask for
     * more must meet the memory limit (nb_set_memory_limit) and be refused with a
     * message; the default limit (80 % of physical memory) is beyond what a fuzzer allows. */
    nb_set_memory_limit((size_t)1 << 30);
    if (len > (1u << 20)) return 0;
    const char *path = fuzz_file_write(".safetensors", data, len);
    nb_model *m;
    nb_diags diags;
    if (nb_model_load_string(MODEL, sizeof MODEL - 1, "m.yaml", NULL, &m, &diags)) abort();
    nb_graph *g = nb_model_graph(m);
    nb_trainer_cfg cfg = {.loss = nb_model_loss(m), .optim = nb_optim_defaults(NB_ADAM), .batch = 2,
                          .shuffle = true, .seed = 1, .scores = nb_graph_find(g, "y"),
                          .labels = nb_graph_find(g, "t")};
    nb_trainer *t;
    if (nb_trainer_new(g, &cfg, &t) || nb_trainer_feed(t, nb_graph_find(g, "x"), "images", 1.0 / 255) ||
        nb_trainer_feed(t, nb_graph_find(g, "t"), "labels", 1))
        abort();
    if (nb_trainer_resume(t, path) == NB_OK) {
        nb_dataset *d = dataset();
        int64_t before = nb_trainer_epochs(t);
        if (before < 0) abort();
        nb_metrics met;
        if (nb_trainer_epoch(t, d, NULL, NULL, &met) == NB_OK && nb_trainer_epochs(t) != before + 1) abort();
        if (nb_trainer_status(t) && !nb_trainer_error(t)[0]) abort();
        nb_dataset_free(d);
    } else if (!nb_trainer_error(t)[0]) {
        abort(); /* a failure has a message */
    }
    nb_trainer_free(t);
    nb_model_free(m);
    return 0;
}

/* nabla train and nabla eval, run as a user would, on small IDX files cut
 * from Fashion-MNIST (Debian's dataset-fashion-mnist) next to the model. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "toolutil.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/"

static void put_be32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                          (unsigned char)v};
    fwrite(b, 1, 4, f);
}

/* The first n samples of a Fashion-MNIST pair, as raw IDX files in the temp folder. */
static void cut(const char *images, const char *labels, size_t n, const char *name)
{
    nb_dataset *d;
    cr_assert_eq(nb_dataset_load_idx(images, labels, &d), NB_OK, "%s", nb_last_error());
    size_t *idx = malloc(n * sizeof *idx);
    float *px = malloc(n * 784 * sizeof *px);
    int32_t *lb = malloc(n * sizeof *lb);
    for (size_t i = 0; i < n; i++) idx[i] = i;
    cr_assert_eq(nb_dataset_batch(d, nb_dataset_field(d, "images"), idx, n, NB_F32, 1, px, n * 784 * 4), NB_OK);
    cr_assert_eq(nb_dataset_batch(d, nb_dataset_field(d, "labels"), idx, n, NB_I32, 1, lb, n * 4), NB_OK);
    char path[256];
    snprintf(path, sizeof path, "%s-images.idx", name);
    FILE *f = fopen(tmp_path(path), "wb");
    put_be32(f, 0x803), put_be32(f, (uint32_t)n), put_be32(f, 28), put_be32(f, 28);
    for (size_t i = 0; i < n * 784; i++) fputc((int)px[i], f);
    fclose(f);
    snprintf(path, sizeof path, "%s-labels.idx", name);
    f = fopen(tmp_path(path), "wb");
    put_be32(f, 0x801), put_be32(f, (uint32_t)n);
    for (size_t i = 0; i < n; i++) fputc(lb[i], f);
    fclose(f);
    free(idx), free(px), free(lb);
    nb_dataset_free(d);
}

static const char *const MODEL =
    "nabla: 1\n"
    "name: small\n"
    "seed: 7\n"
    "inputs:\n"
    "  x: [N, 1, 28, 28]\n"
    "  t: {shape: [N], dtype: i32}\n"
    "nodes:\n"
    "  - {name: f, op: flatten, in: [x]}\n"
    "  - {name: h, layer: dense, in: [f], units: 32, activation: relu}\n"
    "  - {name: y, layer: dense, in: [h], units: 10}\n"
    "  - {name: loss, op: softmax_cross_entropy, in: [y, t]}\n"
    "outputs: [y]\n"
    "loss: loss\n"
    "train:\n"
    "  data:\n"
    "    format: idx\n"
    "    train: {images: train-images.idx, labels: train-labels.idx}\n"
    "    test: {images: test-images.idx, labels: test-labels.idx}\n"
    "    feed: {x: images, t: labels}\n"
    "    scale: 0.00392156862745098\n"
    "  batch: 50\n"
    "  epochs: 2\n"
    "  seed: 5\n";

static void setup(void)
{
    tmp_make();
    cut(FMNIST "train-images-idx3-ubyte.gz", FMNIST "train-labels-idx1-ubyte.gz", 1000, "train");
    cut(FMNIST "t10k-images-idx3-ubyte.gz", FMNIST "t10k-labels-idx1-ubyte.gz", 300, "test");
    write_text(tmp_path("m.yaml"), MODEL);
}

TestSuite(train_tool, .init = setup, .fini = tmp_remove, .timeout = 120);

Test(train_tool, trains_logs_saves_and_evaluates)
{
    tool_result r = TOOL("train", tmp_path("m.yaml"), "--save", tmp_path("w.st"), "--log", tmp_path("log.csv"),
                         "--plot", tmp_path("curves.png"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "epoch 1/2: train loss ") && strstr(r.out, "epoch 2/2: ") &&
              strstr(r.out, "| test loss ") && strstr(r.out, "samples/s"), "%s", r.out);
    tool_result_free(&r);
    size_t len;
    char *log = read_text(tmp_path("log.csv"), &len);
    cr_expect(!strncmp(log, "epoch,train_loss,train_acc,test_loss,test_acc,samples_per_s,elapsed_s\n1,", 70),
              "%s", log);
    cr_expect(strstr(log, "\n2,"), "%s", log);
    free(log);
    char *png = read_text(tmp_path("curves.png"), &len);  /* PLplot's picture of the log */
    cr_expect(len > 1000 && !memcmp(png, "\x89PNG\r\n\x1a\n", 8), "--plot wrote no PNG (%zu bytes)", len);
    free(png);
    r = TOOL("eval", tmp_path("m.yaml"), "--weights", tmp_path("w.st"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "test: 300 samples, loss ") && strstr(r.out, "accuracy") &&
              strstr(r.out, "confusion"), "%s", r.out);
    cr_expect_eq(strlen(r.err), 0, "opt. tensors are skipped silently: %s", r.err);
    tool_result_free(&r);
}

Test(train_tool, resuming_gives_the_same_bits)
{
    tool_result r = TOOL("train", tmp_path("m.yaml"), "--save", tmp_path("straight.st"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    r = TOOL("train", tmp_path("m.yaml"), "--epochs", "1", "--save", tmp_path("split.st"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    r = TOOL("train", tmp_path("m.yaml"), "--resume", tmp_path("split.st"), "--save", tmp_path("split.st"));
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect_null(strstr(r.out, "epoch 1/2"), "epoch 1 was not trained again: %s", r.out);
    tool_result_free(&r);
    size_t a, b;
    char *x = read_text(tmp_path("straight.st"), &a), *y = read_text(tmp_path("split.st"), &b);
    cr_expect(a == b && !memcmp(x, y, a), "1 + 1 epochs differ from 2");
    free(x), free(y);
}

/* SIGINT finishes the step, saves and exits 130; the checkpoint resumes. */
Test(train_tool, sigint_saves_and_exits_130)
{
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1), dup2(null, 2);
        execl(getenv("NABLA_TOOL"), "nabla", "train", tmp_path("m.yaml"), "--epochs", "100000",
              "--save", tmp_path("int.st"), (char *)NULL);
        _exit(99);
    }
    /* once the first epoch's checkpoint is there, the handler is in place */
    for (int i = 0; i < 1200 && access(tmp_path("int.st"), F_OK); i++) usleep(50 * 1000);
    usleep(30 * 1000);
    kill(pid, SIGINT);
    int ws;
    waitpid(pid, &ws, 0);
    cr_assert(WIFEXITED(ws), "killed by a signal");
    cr_expect_eq(WEXITSTATUS(ws), 130);
    nb_tensor_set s;
    cr_assert_eq(nb_safetensors_read(tmp_path("int.st"), &s), NB_OK, "%s", nb_last_error());
    cr_expect_not_null(nb_tensor_set_find(&s, "opt.h.W.m"));
    const char *epoch = NULL;
    for (size_t i = 0; i < s.n_meta; i++)
        if (!strcmp(s.meta_keys[i], "epoch")) epoch = s.meta_vals[i];
    cr_assert_not_null(epoch, "the checkpoint says where training stands");
    char next[32];  /* --epochs is the total: one more than saved */
    snprintf(next, sizeof next, "%lld", atoll(epoch) + 1);
    nb_tensor_set_free(&s);
    tool_result r = TOOL("train", tmp_path("m.yaml"), "--resume", tmp_path("int.st"), "--epochs", next);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "epoch "), "%s", r.out);
    tool_result_free(&r);
}

Test(train_tool, says_what_is_wrong)
{
    write_text(tmp_path("nodata.yaml"), "nabla: 1\ninputs: {x: [N, 784], t: {shape: [N], dtype: i32}}\n"
               "nodes:\n  - {name: y, layer: dense, in: [x], units: 10}\n"
               "  - {name: loss, op: softmax_cross_entropy, in: [y, t]}\nloss: loss\n"
               "train:\n  data:\n    train: {images: none-images.idx, labels: none-labels.idx}\n"
               "    feed: {x: images, t: labels}\n");
    tool_result r = TOOL("train", tmp_path("nodata.yaml"));
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "data file 'none-images.idx' not found") && strstr(r.err, "--data"), "%s", r.err);
    tool_result_free(&r);
    r = TOOL("train", tmp_path("m.yaml"), "--optimizer", "adamw");
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "unknown optimizer 'adamw'"), "%s", r.err);
    tool_result_free(&r);
    r = TOOL("eval", tmp_path("m.yaml"));
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "needs --weights"), "%s", r.err);
    tool_result_free(&r);
    r = TOOL("train", tmp_path("m.yaml"), "extra");
    cr_expect_eq(r.status, 2);
    tool_result_free(&r);
    r = TOOL("train", tmp_path("m.yaml"), "--plot", tmp_path("curves.gif"));
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "curves.gif"), "%s", r.err);
    tool_result_free(&r);
}

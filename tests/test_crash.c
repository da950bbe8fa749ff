/* Crash-safe training (issue 11): a writer SIGKILLed at random points leaves
 * the whole old checkpoint or the whole new one; a full disk (RLIMIT_FSIZE,
 * SIGXFSZ ignored so that write fails with EFBIG) gives a clear error and
 * leaves the old file; a run killed mid-epoch and resumed ends with the
 * weights of a run never stopped, bit for bit; two trainers saving to one
 * path never mix their files. No timing assumption: files are polled for,
 * kills land wherever they land and the tests count what they saw. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "toolutil.h"

TestSuite(crash, .init = tmp_make, .fini = tmp_remove, .timeout = 240);

/* ---- processes ------------------------------------------------------------ */

/* Starts argv[0] with stdout to /dev/null and stderr to *err_fd (a pipe's
 * read end; NULL: /dev/null); fsize > 0 limits the files it writes to that
 * many bytes, with SIGXFSZ ignored so that write returns EFBIG. */
static pid_t spawn(const char *const *argv, long fsize, int *err_fd)
{
    int p[2] = {-1, -1};
    if (err_fd) cr_assert_eq(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(err_fd ? p[1] : null, 2);
        if (fsize > 0) {
            signal(SIGXFSZ, SIG_IGN);
            struct rlimit rl = {(rlim_t)fsize, (rlim_t)fsize};
            if (setrlimit(RLIMIT_FSIZE, &rl)) _exit(98);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (err_fd) {
        close(p[1]);
        *err_fd = p[0];
    }
    return pid;
}

static int wait_status(pid_t pid)
{
    int ws;
    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

static char *slurp(int fd)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    for (ssize_t got; (got = read(fd, buf + len, cap - len - 1)) > 0;)
        if ((len += (size_t)got) + 1 == cap) buf = realloc(buf, cap *= 2);
    buf[len] = 0;
    close(fd);
    return buf;
}

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Waits (up to 2 minutes, polling) for path to appear. */
static void wait_for(const char *path)
{
    for (int i = 0; i < 12000 && !exists(path); i++) usleep(10 * 1000);
    cr_assert(exists(path), "%s never appeared", path);
}

/* Removes the temporary files killed writers left (NAME.tmp-XXXXXX) and
 * returns how many; fails on anything else unexpected. */
static int remove_leftovers(const char *base)
{
    DIR *d = opendir(tmp_path(""));
    cr_assert_not_null(d);
    int n = 0;
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s.tmp-", base);
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, strlen(prefix))) continue;
        unlink(tmp_path(e->d_name));
        n++;
    }
    closedir(d);
    return n;
}

static const char *meta(const nb_tensor_set *s, const char *key)
{
    for (size_t i = 0; i < s->n_meta; i++)
        if (!strcmp(s->meta_keys[i], key)) return s->meta_vals[i];
    return NULL;
}

/* ---- SIGKILL while writing -------------------------------------------------- */

/* The file crash_writer writes: it loads, and its tensor is whole and of one
 * generation. Returns the generation. */
static long long check_whole(const char *path, long long n)
{
    nb_tensor_set s;
    cr_assert_eq(nb_tensors_read(path, &s), NB_OK, "a torn file: %s", nb_last_error());
    const char *g = meta(&s, "gen");
    const nb_tensor *t = nb_tensor_set_find(&s, "data");
    cr_assert(g && t, "metadata or tensor missing");
    long long gen = atoll(g);
    cr_assert_eq(t->shape[0], n + gen % 2, "generation %lld with the size of another", gen);
    for (int64_t i = 0; i < t->shape[0]; i++)
        if (((const float *)t->data)[i] != (float)gen)
            cr_assert_fail("element %lld is %g in generation %lld: two writes mixed", (long long)i,
                           ((const float *)t->data)[i], gen);
    nb_tensor_set_free(&s);
    return gen;
}

static void kill_while_writing(const char *name, long long n)
{
    const char *writer = test_env("NABLA_CRASH_WRITER");
    char path[1024];  /* tmp_path's ring buffer turns over */
    snprintf(path, sizeof path, "%s", tmp_path(name));
    char ns[32], gs[32];
    snprintf(ns, sizeof ns, "%lld", n);
    pid_t pid = spawn((const char *[]){writer, path, ns, "1", "1", NULL}, 0, NULL);
    cr_assert_eq(wait_status(pid), 0, "the first write");
    long long last = check_whole(path, n), next = 2;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    int kills = 0, torn = 0, newer = 0;
    /* until enough kills landed inside a write (a temporary file left) and
     * after one (a new file), at most 300 */
    while (kills < 300 && (kills < 12 || torn < 3 || newer < 3)) {
        snprintf(gs, sizeof gs, "%lld", next);
        pid = spawn((const char *[]){writer, path, ns, gs, NULL}, 0, NULL);
        usleep((useconds_t)(rand_r(&seed) % 200000));  /* 0-200 ms: before, during or after writes */
        kill(pid, SIGKILL);
        cr_assert_eq(wait_status(pid), 128 + SIGKILL);
        kills++;
        long long gen = check_whole(path, n);
        cr_assert(gen == last || gen >= next, "generation %lld after %lld", gen, last);
        newer += gen != last;
        last = gen;
        next = gen + 100000;  /* each writer's generations apart from the others' */
        torn += remove_leftovers(name) > 0;
    }
    cr_log_info("%s: %d kills, %d inside a write, %d after a new file", name, kills, torn, newer);
    cr_expect_geq(torn, 1, "no kill landed inside a write in %d tries (seed %u)", kills, seed);
    cr_expect_geq(newer, 1, "no write finished before a kill in %d tries (seed %u)", kills, seed);
}

Test(crash, sigkill_while_writing_safetensors_leaves_a_whole_file)
{
    kill_while_writing("ckpt.st", 1 << 21);  /* 8 MB */
}

Test(crash, sigkill_while_writing_npz_leaves_a_whole_file)
{
    kill_while_writing("ckpt.npz", 1 << 20);
}

/* ---- a full disk --------------------------------------------------------------- */

/* In a child limited to 64 KB per file: a 1 MB checkpoint over a 4 KB one. */
Test(crash, a_full_disk_gives_a_clear_error_and_keeps_the_old_file)
{
    const char *names[] = {"old.st", "old.npz"};
    for (int k = 0; k < 2; k++) {
        char path[1024];
        snprintf(path, sizeof path, "%s", tmp_path(names[k]));
        nb_tensor small = tensor_of(NB_F32, 1, (int64_t[]){1000}, NULL), big = tensor_of(NB_F32, 1, (int64_t[]){1 << 18}, NULL);
        nb_tensor_set a = {0}, b = {0};
        cr_assert_eq(nb_tensor_set_add(&a, "w", &small), NB_OK);
        cr_assert_eq(nb_tensor_set_add(&b, "w", &big), NB_OK);
        cr_assert_eq(nb_tensors_write(path, &a), NB_OK, "%s", nb_last_error());
        size_t before_len, after_len;
        char *before = read_text(path, &before_len);
        int p[2];
        cr_assert_eq(pipe(p), 0);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            signal(SIGXFSZ, SIG_IGN);
            struct rlimit rl = {64 << 10, 64 << 10};
            setrlimit(RLIMIT_FSIZE, &rl);
            nb_status st = nb_tensors_write(path, &b);
            const char *msg = nb_last_error();
            if (write(p[1], msg, strlen(msg)) < 0) _exit(99);
            _exit((int)st);
        }
        close(p[1]);
        char *msg = slurp(p[0]);
        cr_expect_eq(wait_status(pid), NB_ERR_IO, "%s", msg);
        cr_expect(strstr(msg, names[k]) && strstr(msg, "cannot write: File too large") &&
                  strstr(msg, "left as it was"), "%s", msg);
        char *after = read_text(path, &after_len);
        cr_expect(before_len == after_len && !memcmp(before, after, before_len), "the old file changed");
        cr_expect_eq(remove_leftovers(names[k]), 0, "the temporary file is removed");
        free(msg), free(before), free(after);
        nb_tensor_set_free(&a), nb_tensor_set_free(&b);
        nb_tensor_free(&small), nb_tensor_free(&big);
    }
}

/* ---- training ------------------------------------------------------------------- */

/* 96 samples of 8 features, 3 classes, batches of 4: 24 steps an epoch, 6
 * epochs, with
 * shuffling, dropout and adam, so that a resumed run must restore the
 * permutation, the dropout masks' step and the optimizer's moments. */
static void write_training(const char *features)
{
    char text[1024];
    snprintf(text, sizeof text,
             "nabla: 1\nname: crash\nseed: 11\n"
             "inputs: {x: [N, %s], t: {shape: [N], dtype: i32}}\n"
             "nodes:\n  - {name: h, layer: dense, in: [x], units: 16, activation: relu}\n"
             "  - {name: d, op: dropout, in: [h], rate: 0.25}\n"
             "  - {name: y, layer: dense, in: [d], units: 3}\n"
             "  - {name: loss, op: softmax_cross_entropy, in: [y, t]}\n"
             "outputs: [y]\nloss: loss\n"
             "train:\n  data: {format: npy, train: {x: x.npy, t: t.npy}}\n"
             "  batch: 4\n  epochs: 6\n  shuffle: true\n  seed: 5\n"
             "  optimizer: {type: adam, lr: 0.01}\n",
             features);
    write_text(tmp_path("m.yaml"), text);
    int f = atoi(features);
    double *x = malloc(96 * (size_t)f * sizeof *x);
    int32_t t[96];
    nb_rng r;
    nb_rng_seed(&r, 3);
    for (int i = 0; i < 96 * f; i++) x[i] = 2 * nb_rng_uniform(&r) - 1;
    for (int i = 0; i < 96; i++) t[i] = (int32_t)((x[i * f] > 0) + (x[i * f + 1] > 0.5));
    write_npy(tmp_path("x.npy"), NB_F32, 2, (int64_t[]){96, f}, x);
    write_npy_i32(tmp_path("t.npy"), 1, (int64_t[]){96}, t);
    free(x);
}

/* Every tensor of a and b has the same bits. */
static void expect_same_tensors(const char *a, const char *b)
{
    nb_tensor_set x, y;
    cr_assert_eq(nb_tensors_read(a, &x), NB_OK, "%s", nb_last_error());
    cr_assert_eq(nb_tensors_read(b, &y), NB_OK, "%s", nb_last_error());
    cr_expect_eq(x.n, y.n);
    for (size_t i = 0; i < x.n; i++) {
        const nb_tensor *t = nb_tensor_set_find(&y, x.items[i].name);
        cr_assert_not_null(t, "%s lacks %s", b, x.items[i].name);
        cr_expect(nb_tensor_bytes(t) == nb_tensor_bytes(&x.items[i].t) &&
                      !memcmp(t->data, x.items[i].t.data, nb_tensor_bytes(t)),
                  "tensor %s differs between %s and %s", x.items[i].name, a, b);
    }
    nb_tensor_set_free(&x), nb_tensor_set_free(&y);
}

static tool_result train(const char *save, const char *resume, const char *seed)
{
    const char *args[16] = {"train", tmp_path("m.yaml"), "--save", save};
    int n = 4;
    if (resume) args[n++] = "--resume", args[n++] = resume;
    if (seed) args[n++] = "--seed", args[n++] = seed;
    return tool_run(args);
}

/* Killed (SIGKILL: no handler runs) at random points after a checkpoint
 * within an epoch (--save-every 1), resumed each time: the end is the
 * uninterrupted run's, bit for bit. */
Test(crash, killed_mid_epoch_and_resumed_gives_the_same_weights)
{
    write_training("8");
    tool_result r = train(tmp_path("straight.st"), NULL, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    const char *tool = test_env("NABLA_TOOL");
    char ck[1024];
    snprintf(ck, sizeof ck, "%s", tmp_path("ck.st"));
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    int mid = 0, kills = 0;
    while (kills < 20 && (kills < 3 || mid < 2)) {  /* until two kills left a checkpoint within an epoch */
        const char *argv[] = {tool, "train", tmp_path("m.yaml"), "--save", ck, "--save-every", "1",
                              exists(ck) ? "--resume" : NULL, ck, NULL};
        pid_t pid = spawn(argv, 0, NULL);
        wait_for(ck);
        usleep((useconds_t)(rand_r(&seed) % 10000));
        kill(pid, SIGKILL);
        int status = wait_status(pid);
        kills++;
        nb_tensor_set s;
        cr_assert_eq(nb_tensors_read_meta(ck, &s), NB_OK, "%s", nb_last_error());
        const char *batch = meta(&s, "batch"), *epoch = meta(&s, "epoch");
        cr_assert(batch && epoch);
        mid += status == 128 + SIGKILL && atoi(batch) > 0;
        bool done = atoi(epoch) == 6;
        nb_tensor_set_free(&s);
        remove_leftovers("ck.st");
        if (done) {  /* finished before the kill: start again */
            unlink(ck);
            mid -= status == 128 + SIGKILL && atoi(batch) > 0;
        }
    }
    cr_log_info("%d kills, %d within an epoch", kills, mid);
    cr_assert_geq(mid, 1, "no kill left a checkpoint within an epoch (seed %u)", seed);
    r = train(ck, ck, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    expect_same_tensors(tmp_path("straight.st"), ck);
}

/* The same with the file size limited: the save fails with a clear error and
 * the last checkpoint stays as it was. */
Test(crash, train_on_a_full_disk_keeps_the_last_checkpoint)
{
    write_training("1000");  /* h.W is 1000 x 16: a checkpoint of ~190 KB */
    /* the run resumes the finished checkpoint for one more epoch (--epochs 7) */
    tool_result r = train(tmp_path("w.st"), NULL, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    size_t before_len, after_len;
    char *before = read_text(tmp_path("w.st"), &before_len);
    int err;
    const char *tool = test_env("NABLA_TOOL");
    pid_t pid = spawn((const char *[]){tool, "train", tmp_path("m.yaml"), "--save", tmp_path("w.st"), "--resume",
                                       tmp_path("w.st"), "--epochs", "7", NULL},
                      64 << 10, &err);
    char *msg = slurp(err);
    cr_expect_eq(wait_status(pid), 2, "%s", msg);
    cr_expect(strstr(msg, "w.st: cannot write: File too large (any file already there is left as it was)"),
              "%s", msg);
    char *after = read_text(tmp_path("w.st"), &after_len);
    cr_expect(before_len == after_len && !memcmp(before, after, before_len), "the checkpoint changed");
    cr_expect_eq(remove_leftovers("w.st"), 0);
    free(msg), free(before), free(after);
}

/* Two trainers with different seeds save to one path at every step: each
 * write is a unique temporary file renamed over the path, so the file is
 * always one of theirs, whole; at the end, the one that finished last. */
Test(crash, two_trainers_saving_to_one_path_never_mix)
{
    write_training("8");
    tool_result r = train(tmp_path("a.st"), NULL, "1");
    cr_assert_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    r = train(tmp_path("b.st"), NULL, "2");
    cr_assert_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    const char *tool = test_env("NABLA_TOOL");
    char both[1024];
    snprintf(both, sizeof both, "%s", tmp_path("both.st"));
    pid_t a = spawn((const char *[]){tool, "train", tmp_path("m.yaml"), "--save", both, "--save-every", "1",
                                     "--seed", "1", NULL}, 0, NULL);
    pid_t b = spawn((const char *[]){tool, "train", tmp_path("m.yaml"), "--save", both, "--save-every", "1",
                                     "--seed", "2", NULL}, 0, NULL);
    int reads = 0, ws[2] = {-1, -1};
    pid_t pids[2] = {a, b};
    while (ws[0] < 0 || ws[1] < 0) {  /* read it while they write */
        for (int k = 0; k < 2; k++)
            if (ws[k] < 0 && waitpid(pids[k], &ws[k], WNOHANG) != pids[k]) ws[k] = -1;
        nb_tensor_set s;
        if (exists(both)) {
            cr_assert_eq(nb_tensors_read(both, &s), NB_OK, "read %d: %s", reads, nb_last_error());
            nb_tensor_set_free(&s);
            reads++;
        }
        usleep(2000);
    }
    cr_expect(WIFEXITED(ws[0]) && WEXITSTATUS(ws[0]) == 0 && WIFEXITED(ws[1]) && WEXITSTATUS(ws[1]) == 0,
              "both trainers succeed");
    nb_tensor_set s, x;
    cr_assert_eq(nb_tensors_read(both, &s), NB_OK, "%s", nb_last_error());
    cr_assert_eq(nb_tensors_read(tmp_path("a.st"), &x), NB_OK);
    const char *seed = meta(&s, "seed");
    cr_assert(seed && meta(&x, "seed"));
    bool from_a = !strcmp(seed, meta(&x, "seed"));
    nb_tensor_set_free(&s), nb_tensor_set_free(&x);
    expect_same_tensors(tmp_path(from_a ? "a.st" : "b.st"), both);
    cr_expect_eq(remove_leftovers("both.st"), 0, "no temporary file left");
    cr_log_info("read the shared checkpoint %d times while two processes wrote it", reads);
}

Test(crash, save_every_is_checked)
{
    write_training("8");
    tool_result r = TOOL("train", tmp_path("m.yaml"), "--save-every", "3");
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "--save-every needs --save W");
    tool_result_free(&r);
    r = TOOL("train", tmp_path("m.yaml"), "--save", tmp_path("w.st"), "--save-every", "0");
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "--save-every needs an integer >= 1, not '0'");
    tool_result_free(&r);
    /* the saves within the epoch (batch 10, 20) come first; the end of the epoch saves last */
    r = TOOL("train", tmp_path("m.yaml"), "--save", tmp_path("w.st"), "--save-every", "10", "--epochs", "1");
    cr_expect_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    nb_tensor_set s;
    cr_assert_eq(nb_tensors_read_meta(tmp_path("w.st"), &s), NB_OK);
    cr_expect_str_eq(meta(&s, "epoch"), "1", "the end of the epoch saves last");
    cr_expect_str_eq(meta(&s, "batch"), "0");
    nb_tensor_set_free(&s);
}

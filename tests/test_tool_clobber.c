/* Nothing lost, nothing clobbered (issue 11): every write is atomic and
 * refuses to replace what is not a regular file (a FIFO, a link to
 * /dev/null), --force or not; without --force an existing file is replaced
 * only when it is a nabla checkpoint or weights file (its metadata's
 * `format` begins "nabla-") or a file of `run -o DIR`; a failing `nabla run`
 * writes nothing. Works as root and as a user: no test relies on
 * permissions. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "toolutil.h"

static const char *const MODEL =
    "nabla: 1\nname: tiny\nseed: 3\n"
    "inputs: {x: [N, 2], t: {shape: [N], dtype: i32}}\n"
    "nodes:\n  - {name: y, layer: dense, in: [x], units: 3}\n"
    "  - {name: loss, op: softmax_cross_entropy, in: [y, t]}\n"
    "outputs: [y]\nloss: loss\n"
    "train:\n  data: {format: npy, train: {x: x.npy, t: t.npy}}\n"
    "  batch: 2\n  epochs: 2\n  shuffle: false\n  optimizer: {type: sgd, lr: 0.1}\n";

static void setup(void)
{
    tmp_make();
    write_text(tmp_path("m.yaml"), MODEL);
    write_npy(tmp_path("x.npy"), NB_F32, 2, (int64_t[]){4, 2}, (double[]){1, 2, -1, 0.5, 0, 1, 2, -2});
    write_npy_i32(tmp_path("t.npy"), 1, (int64_t[]){4}, (int32_t[]){0, 2, 1, 2});
}

TestSuite(clobber, .init = setup, .fini = tmp_remove, .timeout = 120);

static bool is_fifo(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0 && S_ISFIFO(sb.st_mode);
}

static bool is_link(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode);
}

static bool exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

static void expect_text(const char *path, const char *want)
{
    char *got = read_text(path, NULL);
    cr_expect_str_eq(got, want, "%s was changed", path);
    free(got);
}

/* Entries of a folder, '.' ones too (the stage folders start with '.'). */
static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static const char *format_of(const char *path)
{
    static char fmt[64];
    nb_tensor_set s;
    cr_assert_eq(nb_tensors_read(path, &s), NB_OK, "%s", nb_last_error());
    fmt[0] = 0;
    for (size_t i = 0; i < s.n_meta; i++)
        if (!strcmp(s.meta_keys[i], "format")) snprintf(fmt, sizeof fmt, "%s", s.meta_vals[i]);
    nb_tensor_set_free(&s);
    return fmt;
}

/* ---- the library: every writer ------------------------------------------ */

Test(clobber, library_writers_refuse_what_is_not_a_regular_file)
{
    cr_assert_eq(mkfifo(tmp_path("fifo"), 0600), 0);
    cr_assert_eq(symlink("/dev/null", tmp_path("null")), 0);
    write_text(tmp_path("real.st"), "mine");
    cr_assert_eq(symlink(tmp_path("real.st"), tmp_path("link.st")), 0);
    nb_tensor t = tensor_of(NB_F32, 1, (int64_t[]){3}, (double[]){1, 2, 3});
    nb_tensor_set set = {0};
    cr_assert_eq(nb_tensor_set_add(&set, "a", &t), NB_OK);
    const char *paths[] = {tmp_path("fifo"), tmp_path("null"), tmp_path("link.st")};
    const char *kinds[] = {"is a FIFO (named pipe), not a regular file", "is a symbolic link",
                           "is a symbolic link"};
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(nb_npy_write(paths[i], &t), NB_ERR_IO, "%s", paths[i]);
        cr_expect(strstr(nb_last_error(), kinds[i]), "%s", nb_last_error());
        cr_expect_eq(nb_safetensors_write(paths[i], &set), NB_ERR_IO);
        cr_expect_eq(nb_npz_write(paths[i], &set), NB_ERR_IO);
        cr_expect_eq(nb_file_write(paths[i], "x", 1), NB_ERR_IO);
        cr_expect(strstr(nb_last_error(), "nabla replaces only regular files"), "%s", nb_last_error());
    }
    cr_expect(is_fifo(tmp_path("fifo")) && is_link(tmp_path("null")) && is_link(tmp_path("link.st")));
    expect_text(tmp_path("real.st"), "mine");
    struct stat sb;
    cr_expect(stat("/dev/null", &sb) == 0 && S_ISCHR(sb.st_mode), "/dev/null is still a device");
    /* a regular file is replaced, atomically, leaving no temporary file */
    cr_expect_eq(nb_safetensors_write(tmp_path("real.st"), &set), NB_OK, "%s", nb_last_error());
    cr_expect_eq(nb_file_write(tmp_path("new.txt"), "hello", 5), NB_OK);
    expect_text(tmp_path("new.txt"), "hello");
    cr_expect_eq(tmp_count_files(), 8, "no .tmp- file left: m.yaml x.npy t.npy fifo null real.st link.st new.txt");
    nb_tensor_set_free(&set);
    nb_tensor_free(&t);
}

/* The metadata alone, from the header (safetensors) or the archive comment (.npz). */
Test(clobber, metadata_is_read_without_the_tensors)
{
    nb_tensor t = tensor_of(NB_F64, 2, (int64_t[]){100, 100}, NULL);
    nb_tensor_set set = {0}, got;
    cr_assert_eq(nb_tensor_set_add(&set, "big", &t), NB_OK);
    cr_assert_eq(nb_tensor_set_meta(&set, "format", "nabla-weights-1"), NB_OK);
    cr_assert_eq(nb_safetensors_write(tmp_path("w.st"), &set), NB_OK);
    cr_assert_eq(nb_npz_write(tmp_path("w.npz"), &set), NB_OK);
    const char *paths[] = {tmp_path("w.st"), tmp_path("w.npz")};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(nb_tensors_read_meta(paths[i], &got), NB_OK, "%s", nb_last_error());
        cr_expect_eq(got.n, 0);
        cr_expect(got.n_meta == 1 && !strcmp(got.meta_vals[0], "nabla-weights-1"));
        nb_tensor_set_free(&got);
    }
    write_text(tmp_path("text.st"), "not a safetensors file");
    cr_expect_neq(nb_tensors_read_meta(tmp_path("text.st"), &got), NB_OK);
    cr_expect_neq(nb_tensors_read_meta(tmp_path("none.npz"), &got), NB_OK);
    nb_tensor_set_free(&set);
    nb_tensor_free(&t);
}

/* ---- nabla run ------------------------------------------------------------ */

static tool_result run_tool(const char *out, const char *save, bool force)
{
    char x[1100], t[1100];
    snprintf(x, sizeof x, "x=%s", tmp_path("x.npy"));
    snprintf(t, sizeof t, "t=%s", tmp_path("t.npy"));
    const char *args[16] = {"run", tmp_path("m.yaml"), "--in", x, "--in", t, "--grad", "-q", "-o", out};
    int n = 10;
    if (save) args[n++] = "--save-weights", args[n++] = save;
    if (force) args[n++] = "--force";
    return tool_run(args);
}

Test(clobber, run_replaces_only_nabla_weights_without_force)
{
    char out[1100];
    snprintf(out, sizeof out, "%s", tmp_path("out"));
    write_text(tmp_path("w.st"), "my notes");
    tool_result r = run_tool(out, tmp_path("w.st"), false);
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "w.st exists and is not a nabla checkpoint or weights file");
    assert_has(r.err, "give --force to replace it");
    tool_result_free(&r);
    expect_text(tmp_path("w.st"), "my notes");
    cr_expect_not(exists(out), "a refused run makes no folder");
    /* weights written by someone else (no format in the metadata): refused too */
    nb_tensor t = tensor_of(NB_F32, 1, (int64_t[]){1}, NULL);
    nb_tensor_set set = {0};
    cr_assert_eq(nb_tensor_set_add(&set, "y.W", &t), NB_OK);
    cr_assert_eq(nb_tensor_set_meta(&set, "model", "tiny"), NB_OK);
    cr_assert_eq(nb_npz_write(tmp_path("other.npz"), &set), NB_OK);
    r = run_tool(out, tmp_path("other.npz"), false);
    cr_expect_eq(r.status, 2, "%s", r.err);
    tool_result_free(&r);
    /* --force replaces a regular file; what nabla writes it replaces again without */
    r = run_tool(out, tmp_path("w.st"), true);
    cr_expect_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    cr_expect_str_eq(format_of(tmp_path("w.st")), "nabla-weights-1");
    r = run_tool(out, tmp_path("w.st"), false);
    cr_expect_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    r = run_tool(out, tmp_path("w.npz"), false);
    cr_expect_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    r = run_tool(out, tmp_path("w.npz"), false);
    cr_expect_eq(r.status, 0, ".npz weights are recognised by their archive comment: %s", r.err);
    tool_result_free(&r);
    cr_expect_str_eq(format_of(tmp_path("w.npz")), "nabla-weights-1");
    nb_tensor_set_free(&set);
    nb_tensor_free(&t);
}

/* The files of -o DIR are the run's own (design.md), --save-weights there too. */
Test(clobber, run_replaces_the_files_of_its_folder)
{
    cr_assert_eq(mkdir(tmp_path("out"), 0777), 0);
    write_text(tmp_path("out/y.npy"), "old");
    write_text(tmp_path("out/w.st"), "old");
    tool_result r = run_tool(tmp_path("out"), tmp_path("out/w.st"), false);
    cr_expect_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    nb_tensor y = read_npy_f64(tmp_path("out/y.npy"));
    cr_expect_eq(y.rank, 2);
    nb_tensor_free(&y);
    cr_expect_str_eq(format_of(tmp_path("out/w.st")), "nabla-weights-1");
    cr_expect_eq(entries(tmp_path("out")), 6, "y, loss, grad.y.W, grad.y.b, grad.x, w.st: no stage left");
}

/* A run that fails at its last file writes none: the outputs wait in a stage. */
Test(clobber, a_failing_run_writes_nothing)
{
    cr_assert_eq(mkdir(tmp_path("out"), 0777), 0);
    cr_assert_eq(mkfifo(tmp_path("out/grad.x.npy"), 0600), 0);
    tool_result r = run_tool(tmp_path("out"), NULL, false);
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "grad.x.npy is a FIFO (named pipe), not a regular file");
    tool_result_free(&r);
    cr_expect_eq(entries(tmp_path("out")), 1, "only the FIFO: no output, no stage folder");
    cr_expect(is_fifo(tmp_path("out/grad.x.npy")));
    /* --save-weights into a folder that is not there fails after the outputs are staged */
    r = run_tool(tmp_path("new/out"), tmp_path("none/w.st"), false);
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "none/w.st: cannot create a temporary folder in ");
    tool_result_free(&r);
    cr_expect_not(exists(tmp_path("new")), "the folders the run made are gone");
    /* a link to /dev/null, as --save-weights: refused with --force too */
    cr_assert_eq(symlink("/dev/null", tmp_path("null.st")), 0);
    r = run_tool(tmp_path("out2"), tmp_path("null.st"), true);
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "null.st is a symbolic link, not a regular file: nabla replaces only regular files");
    tool_result_free(&r);
    cr_expect(is_link(tmp_path("null.st")));
    cr_expect_not(exists(tmp_path("out2")));
}

/* ---- render, plot, train ---------------------------------------------------- */

Test(clobber, render_and_plot_replace_only_with_force)
{
    write_text(tmp_path("g.dot"), "mine");
    tool_result r = TOOL("render", tmp_path("m.yaml"), "-o", tmp_path("g.dot"));
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "g.dot exists: give --force to replace it");
    tool_result_free(&r);
    expect_text(tmp_path("g.dot"), "mine");
    r = TOOL("render", tmp_path("m.yaml"), "-o", tmp_path("g.dot"), "--force");
    cr_expect_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    char *dot = read_text(tmp_path("g.dot"), NULL);
    cr_expect(strstr(dot, "digraph"), "%s", dot);
    free(dot);
    cr_assert_eq(mkfifo(tmp_path("g2.dot"), 0600), 0);
    r = TOOL("render", tmp_path("m.yaml"), "-o", tmp_path("g2.dot"), "--force");
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "FIFO");
    tool_result_free(&r);
    cr_expect(is_fifo(tmp_path("g2.dot")));
    write_text(tmp_path("log.csv"), "epoch,train_loss,train_acc,test_loss,test_acc,samples_per_s,elapsed_s\n"
                                    "1,0.5,0.5,,,10,1\n2,0.4,0.6,,,10,1\n");
    write_text(tmp_path("p.svg"), "mine");
    r = TOOL("plot", tmp_path("log.csv"), "-o", tmp_path("p.svg"));
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "p.svg exists: give --force to replace it");
    tool_result_free(&r);
    expect_text(tmp_path("p.svg"), "mine");
    r = TOOL("plot", tmp_path("log.csv"), "-o", tmp_path("p.svg"), "--force");
    cr_expect_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    cr_assert_eq(symlink("/dev/null", tmp_path("n.svg")), 0);
    r = TOOL("plot", tmp_path("log.csv"), "-o", tmp_path("n.svg"), "--force");
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "n.svg is a symbolic link");
    tool_result_free(&r);
    cr_expect(is_link(tmp_path("n.svg")));
}

Test(clobber, train_rewrites_its_checkpoint_and_log)
{
    write_text(tmp_path("w.st"), "my notes");
    tool_result r = TOOL("train", tmp_path("m.yaml"), "--save", tmp_path("w.st"));
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "w.st exists and is not a nabla checkpoint or weights file");
    tool_result_free(&r);
    expect_text(tmp_path("w.st"), "my notes");
    /* a checkpoint: rewritten every epoch, by a second run, by a resumed one */
    r = TOOL("train", tmp_path("m.yaml"), "--save", tmp_path("c.st"), "--epochs", "1", "--log", tmp_path("l.csv"));
    cr_expect_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    cr_expect_str_eq(format_of(tmp_path("c.st")), "nabla-checkpoint-1");
    r = TOOL("train", tmp_path("m.yaml"), "--resume", tmp_path("c.st"), "--save", tmp_path("c.st"), "--log",
             tmp_path("l.csv"));
    cr_expect_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    char *log = read_text(tmp_path("l.csv"), NULL);
    cr_expect(!strncmp(log, "epoch,", 6) && strstr(log, "\n1,") && strstr(log, "\n2,"),
              "the resumed run appends: %s", log);
    free(log);
    /* a fresh run would lose the log: --force */
    r = TOOL("train", tmp_path("m.yaml"), "--save", tmp_path("c.st"), "--log", tmp_path("l.csv"));
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "l.csv exists: give --force to replace it");
    tool_result_free(&r);
    write_text(tmp_path("p.png"), "mine");
    r = TOOL("train", tmp_path("m.yaml"), "--plot", tmp_path("p.png"));
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "p.png exists: give --force to replace it");
    tool_result_free(&r);
    expect_text(tmp_path("p.png"), "mine");
    r = TOOL("train", tmp_path("m.yaml"), "--save", tmp_path("w.st"), "--log", tmp_path("l.csv"), "--force");
    cr_expect_eq(r.status, 0, "%s", r.err);
    tool_result_free(&r);
    cr_expect_str_eq(format_of(tmp_path("w.st")), "nabla-checkpoint-1");
    log = read_text(tmp_path("l.csv"), NULL);
    cr_expect(strstr(log, "\n2,") && !strstr(strstr(log, "\n2,") + 1, "\n1,"), "a fresh log: %s", log);
    free(log);
    /* a link to /dev/null as the checkpoint: never, --force or not */
    cr_assert_eq(symlink("/dev/null", tmp_path("null.st")), 0);
    r = TOOL("train", tmp_path("m.yaml"), "--save", tmp_path("null.st"), "--force");
    cr_expect_eq(r.status, 2);
    assert_has(r.err, "null.st is a symbolic link");
    tool_result_free(&r);
    cr_expect(is_link(tmp_path("null.st")));
}

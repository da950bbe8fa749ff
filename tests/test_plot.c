/* Tests of `nabla plot` and tools/plot.c: the training picture as PNG (read
 * back with libpng: size, white background, the series' colours), SVG
 * (parsed with expat: labels and legend as text, a white background) and
 * PDF; --y over several logs; --hist over .npy files; the log reader's
 * errors with FILE:LINE; nothing printed on success; no file left behind on
 * failure. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "plot.h"
#include "toolutil.h"

TestSuite(plot, .init = tmp_make, .fini = tmp_remove, .timeout = 120);

#define HEADER "epoch,train_loss,train_acc,test_loss,test_acc,samples_per_s,elapsed_s\n"

static const char *const LOG3 =
    HEADER
    "1,2.1,0.35,1.9,0.41,5000,1.2\n"
    "2,1.2,0.62,1.1,0.66,5100,2.4\n"
    "3,0.8,0.78,0.85,0.75,5050,3.6\n";

/* ---- reading the pictures back ------------------------------------------- */

typedef struct image {
    png_image info;
    unsigned char *rgb;  /* width * height * 3 */
} image;

static image read_png(const char *path)
{
    image im = {.info = {.version = PNG_IMAGE_VERSION}};
    cr_assert(png_image_begin_read_from_file(&im.info, path), "%s: %s", path, im.info.message);
    im.info.format = PNG_FORMAT_RGB;
    im.rgb = malloc(PNG_IMAGE_SIZE(im.info));
    png_color white = {255, 255, 255};  /* any transparency is composed on white */
    cr_assert(png_image_finish_read(&im.info, &white, im.rgb, 0, NULL), "%s: %s", path, im.info.message);
    return im;
}

static const unsigned char *pixel(const image *im, unsigned x, unsigned y)
{
    return im->rgb + 3 * ((size_t)y * im->info.width + x);
}

static size_t count_colour(const image *im, int r, int g, int b, int tol)
{
    size_t n = 0;
    for (unsigned y = 0; y < im->info.height; y++)
        for (unsigned x = 0; x < im->info.width; x++) {
            const unsigned char *p = pixel(im, x, y);
            n += abs(p[0] - r) <= tol && abs(p[1] - g) <= tol && abs(p[2] - b) <= tol;
        }
    return n;
}

/* The texts and the background of an SVG file (svg_parse). */
static void parse_svg(const char *path, svg_info *s)
{
    char *svg = read_text(path, NULL);
    cr_assert(!strncmp(svg, "<?xml", 5), "%s is not XML: %.40s", path, svg);
    svg_parse(svg, s);
    free(svg);
}

static void expect_texts(const svg_info *s, const char *const *words, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cr_expect(svg_has_text(s, words[i]), "'%s' is not a text of the SVG; its texts:%s", words[i],
                  s->text);
}

/* Runs the tool and asserts success with nothing printed. */
static void plot_ok(const char *const *args)
{
    tool_result r = tool_run(args);
    cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
    cr_expect_eq(r.out[0], 0, "printed on stdout: %s", r.out);
    cr_expect_eq(r.err[0], 0, "printed on stderr: %s", r.err);
    tool_result_free(&r);
}
#define PLOT_OK(...) plot_ok((const char *const[]){"plot", __VA_ARGS__, NULL})

/* Only the expected files in the temporary folder: no leftover temporaries. */
static void expect_files(const char *const *names, size_t n)
{
    DIR *d = opendir(tmp_path(""));
    cr_assert_not_null(d);
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        bool known = false;
        for (size_t i = 0; i < n; i++) known |= !strcmp(e->d_name, names[i]);
        cr_expect(known, "unexpected file %s in the folder", e->d_name);
    }
    closedir(d);
}

/* ---- the training picture ---------------------------------------------- */

Test(plot, training_png)
{
    write_text(tmp_path("run.csv"), LOG3);
    PLOT_OK(tmp_path("run.csv"), "-o", tmp_path("run.png"));
    size_t len;
    char *raw = read_text(tmp_path("run.png"), &len);
    cr_expect(!memcmp(raw, "\x89PNG\r\n\x1a\n", 8), "not a PNG");
    cr_expect(len > 10000 && len < 2000000, "implausible PNG size %zu", len);
    free(raw);
    image im = read_png(tmp_path("run.png"));
    cr_expect(im.info.width >= 800 && im.info.height >= 300 && im.info.width > im.info.height,
              "two panels side by side want a wide picture, not %ux%u", im.info.width, im.info.height);
    const unsigned char *corner = pixel(&im, 0, 0), *mid = pixel(&im, im.info.width / 2, im.info.height - 2);
    cr_expect(corner[0] == 255 && corner[1] == 255 && corner[2] == 255, "corner is %d,%d,%d, not white",
              corner[0], corner[1], corner[2]);
    cr_expect(mid[0] == 255 && mid[1] == 255 && mid[2] == 255, "bottom middle is not white");
    size_t all = (size_t)im.info.width * im.info.height;
    cr_expect_gt(count_colour(&im, 255, 255, 255, 0), all * 7 / 10, "mostly white");
    cr_expect_gt(count_colour(&im, 0, 0, 0, 40), 1000, "black axes and text");
    cr_expect_gt(count_colour(&im, 31, 119, 180, 30), 300, "no blue train lines");
    cr_expect_gt(count_colour(&im, 255, 127, 14, 30), 300, "no orange test lines");
    free(im.rgb);
    expect_files((const char *[]){"run.csv", "run.png"}, 2);
}

Test(plot, training_svg_has_labels_legend_and_white_background)
{
    write_text(tmp_path("mlp-run.csv"), LOG3);
    PLOT_OK(tmp_path("mlp-run.csv"), "-o", tmp_path("mlp.svg"));
    static svg_info s;
    parse_svg(tmp_path("mlp.svg"), &s);
    expect_texts(&s, (const char *[]){"mlp-run", "loss", "accuracy", "epoch", "train", "test"}, 6);
    cr_expect(!strcasecmp(s.bg, "#ffffff") || !strcmp(s.bg, "white"), "background fill is '%s'", s.bg);
    PLOT_OK(tmp_path("mlp-run.csv"), "--title", "MLP #2 <adam>", "-o", tmp_path("mlp.svg"), "--force");
    parse_svg(tmp_path("mlp.svg"), &s);
    expect_texts(&s, (const char *[]){"MLP #2 <adam>"}, 1);
    cr_expect(!svg_has_text(&s, "mlp-run"), "--title replaces the file name");
}

Test(plot, training_pdf)
{
    write_text(tmp_path("run.csv"), LOG3);
    PLOT_OK(tmp_path("run.csv"), "-o", tmp_path("run.PDF"));
    size_t len;
    char *pdf = read_text(tmp_path("run.PDF"), &len);
    cr_expect(!strncmp(pdf, "%PDF", 4) && len > 2000, "not a PDF");
    free(pdf);
}

/* No test set: test_* fields empty. The picture has no test lines. */
Test(plot, log_without_test_values)
{
    write_text(tmp_path("t.csv"), HEADER "1,2.0,0.3,,,900,1\n2,1.5,0.5,,,910,2\n");
    PLOT_OK(tmp_path("t.csv"), "-o", tmp_path("t.svg"));
    static svg_info s;
    parse_svg(tmp_path("t.svg"), &s);
    expect_texts(&s, (const char *[]){"train", "loss", "accuracy"}, 3);
    cr_expect(!svg_has_text(&s, "test"), "a test line without test values");
    tool_result r = TOOL("plot", tmp_path("t.csv"), "--y", "test_acc", "-o", tmp_path("u.png"));
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "test_acc has no values"), "%s", r.err);
    tool_result_free(&r);
    expect_files((const char *[]){"t.csv", "t.svg"}, 2);
}

/* ---- --y over several logs ------------------------------------------- */

Test(plot, compare_logs_with_y)
{
    write_text(tmp_path("sgd.csv"), LOG3);
    write_text(tmp_path("adam.csv"), HEADER "1,1.0,0.6,0.9,0.62,5000,1\n2,0.5,0.8,0.6,0.79,5000,2\n"
                                            "3,0.3,0.9,0.5,0.85,5000,3\n4,0.2,0.95,,,5000,4\n");
    PLOT_OK(tmp_path("sgd.csv"), tmp_path("adam.csv"), "--y", "test_acc", "-o", tmp_path("acc.svg"));
    static svg_info s;
    parse_svg(tmp_path("acc.svg"), &s);
    expect_texts(&s, (const char *[]){"sgd", "adam", "test_acc", "epoch"}, 4);
    PLOT_OK(tmp_path("sgd.csv"), tmp_path("adam.csv"), "--y", "train_loss", "--label", "SGD",
            "--label", "Adam", "--title", "optimizers", "-o", tmp_path("loss.svg"));
    parse_svg(tmp_path("loss.svg"), &s);
    expect_texts(&s, (const char *[]){"SGD", "Adam", "optimizers", "train_loss"}, 4);
    cr_expect(!svg_has_text(&s, "sgd"), "--label replaces the file name");
    PLOT_OK(tmp_path("sgd.csv"), tmp_path("adam.csv"), "--y", "samples_per_s", "-o", tmp_path("speed.png"));
    image im = read_png(tmp_path("speed.png"));
    cr_expect_gt(count_colour(&im, 31, 119, 180, 30), 200, "first log's line");
    cr_expect_gt(count_colour(&im, 255, 127, 14, 30), 200, "second log's line");
    free(im.rgb);
}

/* ---- --hist ------------------------------------------------------------ */

Test(plot, histograms_of_npy_files)
{
    enum { N = 2000 };
    double *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    for (int i = 0; i < N; i++) {
        a[i] = (i % 100) / 100.0;                  /* uniform over [0, 1) */
        b[i] = 0.5 + 0.1 * sin(i) * cos(3.0 * i);  /* around 0.5 */
    }
    write_npy_f64(tmp_path("act1.npy"), 2, (int64_t[]){20, N / 20}, a);
    write_npy_f64(tmp_path("act2.npy"), 1, (int64_t[]){N}, b);
    write_npy_i32(tmp_path("labels.npy"), 1, (int64_t[]){4}, (int32_t[]){0, 1, 1, 2});
    free(a);
    free(b);
    PLOT_OK("--hist", tmp_path("act1.npy"), tmp_path("act2.npy"), "--bins", "20", "--range", "0,1", "-o",
            tmp_path("h.png"));
    image im = read_png(tmp_path("h.png"));
    const unsigned char *corner = pixel(&im, 0, 0);
    cr_expect(corner[0] == 255 && corner[1] == 255 && corner[2] == 255, "background not white");
    cr_expect_gt(count_colour(&im, 31, 119, 180, 10), 2000, "first histogram's bars");
    cr_expect_gt(count_colour(&im, 255, 127, 14, 10), 500, "second histogram's bars");
    free(im.rgb);
    PLOT_OK("--hist", tmp_path("act1.npy"), tmp_path("act2.npy"), tmp_path("labels.npy"), "--label",
            "1-layer", "--label", "2-layer", "--label", "labels", "--title", "activations", "-o",
            tmp_path("h.svg"));
    static svg_info s;
    parse_svg(tmp_path("h.svg"), &s);
    expect_texts(&s, (const char *[]){"1-layer", "2-layer", "labels", "activations", "count", "value"}, 6);
    PLOT_OK("--hist", tmp_path("act2.npy"), "-o", tmp_path("d.svg"));  /* default range and bins */
    parse_svg(tmp_path("d.svg"), &s);
    expect_texts(&s, (const char *[]){"act2"}, 1);
}

/* ---- errors -------------------------------------------------------------- */

static void expect_error(const char *const *args, const char *want)
{
    tool_result r = tool_run(args);
    cr_expect_eq(r.status, 2, "nabla plot %s %s: exit %d", args[1], args[2] ? args[2] : "", r.status);
    cr_expect(strstr(r.err, "nabla plot: ") && strstr(r.err, want), "want '%s' in: %s", want, r.err);
    cr_expect_eq(r.out[0], 0, "%s", r.out);
    tool_result_free(&r);
}
#define EXPECT_PLOT_ERROR(want, ...) expect_error((const char *const[]){"plot", __VA_ARGS__, NULL}, want)

Test(plot, errors)
{
    char want[600];
    write_text(tmp_path("run.csv"), LOG3);
    char run[512];  /* tmp_path's results are overwritten after a few calls */
    snprintf(run, sizeof run, "%s", tmp_path("run.csv"));
    EXPECT_PLOT_ERROR(".png, .svg or .pdf", run, "-o", tmp_path("run.bmp"));
    EXPECT_PLOT_ERROR(".png, .svg or .pdf", run, "-o", tmp_path("run"));
    EXPECT_PLOT_ERROR("needs -o", run);
    EXPECT_PLOT_ERROR("needs a LOG.csv", "-o", tmp_path("x.png"));
    snprintf(want, sizeof want, "cannot read %s", tmp_path("nosuch.csv"));
    EXPECT_PLOT_ERROR(want, tmp_path("nosuch.csv"), "-o", tmp_path("x.png"));
    EXPECT_PLOT_ERROR("cannot write", run, "-o", tmp_path("no/such/dir/x.png"));
    EXPECT_PLOT_ERROR("no column 'test_ac' for --y (did you mean 'test_acc'?)", run, "--y", "test_ac", "-o",
                      tmp_path("x.png"));
    EXPECT_PLOT_ERROR("the epoch is the x axis", run, "--y", "epoch", "-o", tmp_path("x.png"));
    EXPECT_PLOT_ERROR("--y COLUMN", run, run, "-o", tmp_path("x.png"));
    EXPECT_PLOT_ERROR("2 --label for 1 file", run, "--label", "a", "--label", "b", "-o", tmp_path("x.png"));
    EXPECT_PLOT_ERROR("unknown option '--bogus'", run, "--bogus", "-o", tmp_path("x.png"));
    EXPECT_PLOT_ERROR("--bins goes with --hist", run, "--bins", "3", "-o", tmp_path("x.png"));
    EXPECT_PLOT_ERROR("--y is for training logs", "--hist", run, "--y", "train_loss", "-o", tmp_path("x.png"));
    EXPECT_PLOT_ERROR("--range needs LO,HI", "--hist", run, "--range", "1,0", "-o", tmp_path("x.png"));
    EXPECT_PLOT_ERROR("--range needs LO,HI", "--hist", run, "--range", "0;1", "-o", tmp_path("x.png"));
    EXPECT_PLOT_ERROR("--bins needs an integer", "--hist", run, "--bins", "0", "-o", tmp_path("x.png"));
    EXPECT_PLOT_ERROR("nosuch.npy", "--hist", tmp_path("nosuch.npy"), "-o", tmp_path("x.png"));
    EXPECT_PLOT_ERROR("not a .npy file", "--hist", run, "-o", tmp_path("x.png"));
    /* nothing written, no temporary left */
    expect_files((const char *[]){"run.csv"}, 1);
}

/* Malformed logs: each message names FILE:LINE. */
Test(plot, malformed_logs)
{
    struct {
        const char *text, *want;
    } cases[] = {
        {HEADER "1,2.1,0.35,1.9,0.41,5000,1.2\n2,1.2,0.62,1.1\n", "bad.csv:3: 4 fields, expected 7"},
        {HEADER "1,2.1,0.35,1.9,0.41,5000,1.2,9\n", "bad.csv:2: 8 fields, expected 7"},
        {HEADER "1,2.1,abc,1.9,0.41,5000,1.2\n", "bad.csv:2: train_acc: 'abc' is not a number"},
        {HEADER "1,2.1, 0.3,1.9,0.41,5000,1.2\n", "bad.csv:2: train_acc: ' 0.3' is not a number"},
        {HEADER "1,2.1,0.3,1.9,87.5,5000,1.2\n", "bad.csv:2: test_acc is 87.5; accuracies are fractions"},
        {HEADER ",2.1,0.3,1.9,0.4,5000,1.2\n", "bad.csv:2: epoch is empty"},
        {HEADER "1,2.1,0.3,1.9,0.4,5000,1.2\n\n2,2.1,0.3,1.9,0.4,5000,1.2\n", "bad.csv:3: empty line"},
        {"epoch,loss\n1,2\n", "bad.csv:1: not a training log"},
        {"", "bad.csv:1: empty file"},
        {HEADER, "bad.csv: no epochs"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text(tmp_path("bad.csv"), cases[i].text);
        tool_result r = TOOL("plot", tmp_path("bad.csv"), "-o", tmp_path("bad.png"));
        cr_expect_eq(r.status, 2, "case %zu: exit %d", i, r.status);
        cr_expect(strstr(r.err, cases[i].want), "case %zu: want '%s' in: %s", i, cases[i].want, r.err);
        tool_result_free(&r);
    }
    expect_files((const char *[]){"bad.csv"}, 1);
}

/* A failed plot leaves an existing picture as it was. */
Test(plot, failure_keeps_the_old_picture)
{
    write_text(tmp_path("run.csv"), LOG3);
    write_text(tmp_path("run.png"), "old");
    write_text(tmp_path("bad.csv"), HEADER "1,x,,,,,\n");
    tool_result r = TOOL("plot", tmp_path("bad.csv"), "-o", tmp_path("run.png"));
    cr_expect_eq(r.status, 2);
    tool_result_free(&r);
    char *old = read_text(tmp_path("run.png"), NULL);
    cr_expect_str_eq(old, "old");
    free(old);
    PLOT_OK(tmp_path("run.csv"), "-o", tmp_path("run.png"), "--force");  /* and a good one replaces it */
    struct stat st;
    cr_assert_eq(stat(tmp_path("run.png"), &st), 0);
    cr_expect_gt(st.st_size, 1000);
    mode_t mask = umask(0);
    umask(mask);
    cr_expect_eq(st.st_mode & 0777, 0666 & ~mask, "mode %o, want that of a new file", st.st_mode & 0777);
    expect_files((const char *[]){"run.csv", "run.png", "bad.csv"}, 3);
}

/* ---- usage -------------------------------------------------------------- */

Test(plot, help)
{
    tool_result r = TOOL("help", "plot"), h = TOOL("plot", "--help"), all = TOOL("help");
    cr_expect_eq(r.status, 0);
    cr_expect(strstr(r.out, "usage: nabla plot LOG.csv") && strstr(r.out, "nabla plot --hist"), "%s", r.out);
    const char *ex = strstr(r.out, "\nexample");
    cr_expect(ex && strstr(ex, "\n  nabla plot ") && strstr(ex, "--y "), "no example:\n%s", r.out);
    cr_expect_str_eq(h.out, r.out, "nabla plot --help differs from nabla help plot");
    cr_expect(strstr(all.out, "\n  plot "), "nabla help does not list plot:\n%s", all.out);
    tool_result_free(&r);
    tool_result_free(&h);
    tool_result_free(&all);
}

/* ---- the module in-process ---------------------------------------------- */

Test(plot, log_reader)
{
    write_text(tmp_path("crlf.csv"), "epoch,train_loss,train_acc,test_loss,test_acc,samples_per_s,elapsed_s\r\n"
                                     "1,nan,0.5,,1,100,0.5\r\n2,0.25,1e-1,3,0,200,1");
    nbt_log log;
    cr_assert_eq(nbt_log_read("test", tmp_path("crlf.csv"), &log), 0);
    cr_expect_eq(log.n, 2);
    cr_expect(isnan(log.col[NBT_LOG_TRAIN_LOSS][0]) && isnan(log.col[NBT_LOG_TEST_LOSS][0]));
    cr_expect_eq(log.col[NBT_LOG_TEST_ACC][0], 1.0);
    cr_expect_eq(log.col[NBT_LOG_TRAIN_ACC][1], 0.1);
    cr_expect_eq(log.col[NBT_LOG_ELAPSED_S][1], 1.0, "the last line needs no newline");
    nbt_log_free(&log);
    cr_expect_eq(nbt_log_column("test_acc"), NBT_LOG_TEST_ACC);
    cr_expect_eq(nbt_log_column("test"), -1);
}

/* Two pictures in one process (PLplot's state is global), lines broken at
 * missing points, an isolated point. */
Test(plot, curves_twice_in_one_process)
{
    double x[6] = {0, 1, 2, 3, 4, 5}, y1[6] = {1, 2, NAN, 4, 5, 6}, y2[6] = {NAN, 3, NAN, 2, NAN, NAN};
    nbt_series s[2] = {{"broken", x, y1, 6}, {"sparse", x, y2, 6}};
    cr_assert_eq(nbt_plot_curves("test", tmp_path("a.svg"), "first", s, 2, "x", "y"), 0);
    cr_assert_eq(nbt_plot_curves("test", tmp_path("b.png"), NULL, s, 2, NULL, NULL), 0);
    cr_expect_eq(nbt_plot_curves("test", tmp_path("c.gif"), NULL, s, 2, NULL, NULL), 2);
    nbt_series none = {"none", x, (double[6]){NAN, NAN, NAN, NAN, NAN, NAN}, 6};
    cr_expect_eq(nbt_plot_curves("test", tmp_path("d.png"), NULL, &none, 1, NULL, NULL), 2);
    static svg_info si;
    parse_svg(tmp_path("a.svg"), &si);
    expect_texts(&si, (const char *[]){"first", "broken", "sparse"}, 3);
    image im = read_png(tmp_path("b.png"));
    cr_expect_gt(count_colour(&im, 31, 119, 180, 30), 200);
    free(im.rgb);
    expect_files((const char *[]){"a.svg", "b.png"}, 2);
}

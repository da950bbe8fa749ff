/* nabla plot LOG.csv ... [--y COLUMN] -o OUT and nabla plot --hist A.npy ... -o OUT:
 * training logs and value distributions drawn with PLplot (plot.h). */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "plot.h"

static const char *const CMD = "plot";

#define MAX_FILES 64

void nbt_usage_plot(FILE *f)
{
    fprintf(f,
            "usage: nabla plot LOG.csv [LOG.csv]... [--y COLUMN] [--label NAME]... [--title T]\n"
            "                  -o OUT.{png,svg,pdf}\n"
            "       nabla plot --hist A.npy [B.npy]... [--bins N] [--range LO,HI] [--label NAME]...\n"
            "                  [--title T] -o OUT.{png,svg,pdf}\n"
            "Draws training logs (the CSV files of 'nabla train --log'), or histograms of the\n"
            "values in .npy files, with PLplot on a white background.\n\n"
            "  -o, --output FILE  the picture; its extension picks the format\n"
            "  --y COLUMN         one line per log: COLUMN against the epoch; COLUMN is one of\n"
            "                     train_loss, train_acc, test_loss, test_acc, samples_per_s,\n"
            "                     elapsed_s. Without --y, one log gives two panels: loss and\n"
            "                     accuracy per epoch, train and test\n"
            "  --label NAME       the name of each file in the legend (or over its histogram),\n"
            "                     one per file in order; default: the file name without its\n"
            "                     folder and extension\n"
            "  --title T          a title over the picture\n"
            "  --hist             one histogram per .npy file, side by side\n"
            "  --bins N           the number of bins (default 30)\n"
            "  --range LO,HI      the values the bins cover (default: smallest to largest)\n"
            "  --force            replace OUT when it exists (never a link, FIFO or device)\n"
            "  -h, --help         this text\n\n"
            "examples:\n"
            "  nabla plot mlp.csv -o mlp.png\n"
            "  nabla plot sgd.csv momentum.csv adagrad.csv adam.csv --y train_loss -o optimizers.svg\n"
            "  nabla plot --hist a1.npy a2.npy a3.npy --bins 30 --range 0,1 -o activations.png\n");
}

/* "runs/adam.csv" -> "adam" into buf */
static const char *default_label(char *buf, size_t cap, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    int len = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
    snprintf(buf, cap, "%.*s", len, base);
    return buf;
}

static int parse_range(const char *s, double *lo, double *hi)
{
    const char *comma = strchr(s, ',');
    char a[64];
    if (!comma || (size_t)(comma - s) >= sizeof a) goto bad;
    memcpy(a, s, (size_t)(comma - s));
    a[comma - s] = 0;
    char *end;
    *lo = strtod(a, &end);
    if (!a[0] || *end) goto bad;
    *hi = strtod(comma + 1, &end);
    if (!comma[1] || *end) goto bad;
    if (isfinite(*lo) && isfinite(*hi) && *lo < *hi) return NBT_OK;
bad:
    return nbt_fail(CMD, "--range needs LO,HI with LO < HI (like 0,1), not '%s'", s);
}

/* "did you mean" and the list of columns --y takes */
static int bad_column(const char *name)
{
    const char *names[NBT_LOG_COLS - 1];
    char list[200] = "", hint[160];
    for (int c = 1; c < NBT_LOG_COLS; c++) {
        names[c - 1] = nbt_log_columns[c];
        strcat(list, c > 1 ? ", " : "");
        strcat(list, nbt_log_columns[c]);
    }
    if (!strcmp(name, "epoch")) return nbt_fail(CMD, "--y epoch: the epoch is the x axis; --y takes one of %s", list);
    return nbt_fail(CMD, "no column '%s' for --y%s; a training log has %s", name,
                    nb_hint(hint, sizeof hint, nb_suggest(name, names, NBT_LOG_COLS - 1)), list);
}

/* One log: the two-panel picture. Several with --y: one line each. */
static int plot_logs(char **files, int n, const char *const *labels, const char *ycol, const char *title,
                     const char *out)
{
    int y = -1;
    if (ycol && (y = nbt_log_column(ycol)) <= 0) return bad_column(ycol);
    if (!ycol && n > 1)
        return nbt_fail(CMD, "%d logs: say which column to compare with --y COLUMN (like --y test_acc)", n);
    nbt_log logs[MAX_FILES];
    char names[MAX_FILES][256];
    nbt_series s[MAX_FILES];
    int rc = NBT_OK, read = 0;
    for (; read < n && !rc; read++) rc = nbt_log_read(CMD, files[read], &logs[read]);
    if (rc) read--;  /* the failed one freed itself */
    for (int i = 0; i < n && !rc; i++) {
        const char *name = labels[i] ? labels[i] : default_label(names[i], sizeof names[i], files[i]);
        s[i] = (nbt_series){name, logs[i].col[NBT_LOG_EPOCH], ycol ? logs[i].col[y] : NULL, logs[i].n};
    }
    if (!rc && !ycol) {
        rc = nbt_plot_training(CMD, out, title ? title : s[0].name, &logs[0]);
    } else if (!rc) {
        bool any = false;
        for (int i = 0; i < n; i++)
            for (size_t k = 0; k < s[i].n && !any; k++) any = isfinite(s[i].y[k]);
        if (!any) rc = nbt_fail(CMD, "column %s has no values in %s", ycol, n > 1 ? "any of the logs" : files[0]);
        else rc = nbt_plot_curves(CMD, out, title, s, n, "epoch", ycol);
    }
    for (int i = 0; i < read; i++) nbt_log_free(&logs[i]);
    return rc;
}

static int plot_hists(char **files, int n, const char *const *labels, int64_t bins, double lo, double hi,
                      const char *title, const char *out)
{
    nb_tensor t[MAX_FILES];
    nbt_values v[MAX_FILES];
    char names[MAX_FILES][256];
    int rc = NBT_OK, read = 0;
    for (; read < n && !rc; read++) {
        if (nb_npy_read(files[read], &t[read])) {
            rc = nbt_fail(CMD, "%s", nb_last_error());
            break;
        }
        if (nb_tensor_convert(&t[read], NB_F64)) rc = nbt_fail(CMD, "%s: %s", files[read], nb_last_error());
        else if (!nb_tensor_numel(&t[read])) rc = nbt_fail(CMD, "%s: no values (an empty array)", files[read]);
        v[read] = (nbt_values){labels[read] ? labels[read] : default_label(names[read], sizeof names[read], files[read]),
                               t[read].data, nb_tensor_numel(&t[read])};
    }
    if (!rc) rc = nbt_plot_hist(CMD, out, title, v, n, (int)bins, lo, hi);
    for (int i = 0; i < read; i++) nb_tensor_free(&t[i]);
    return rc;
}

int nbt_cmd_plot(int argc, char **argv)
{
    enum { O_Y = 256, O_LABEL, O_TITLE, O_HIST, O_BINS, O_RANGE, O_FORCE };
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"y", required_argument, NULL, O_Y},
                                         {"label", required_argument, NULL, O_LABEL},
                                         {"title", required_argument, NULL, O_TITLE},
                                         {"hist", no_argument, NULL, O_HIST},
                                         {"bins", required_argument, NULL, O_BINS},
                                         {"range", required_argument, NULL, O_RANGE},
                                         {"force", no_argument, NULL, O_FORCE},
                                         {"help", no_argument, NULL, 'h'},
                                         {0, 0, 0, 0}};
    const char *out = NULL, *ycol = NULL, *title = NULL, *bins_opt = NULL, *range_opt = NULL;
    const char *labels[MAX_FILES + 1] = {0};
    int n_labels = 0, c;
    bool hist = false, force = false;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        if (c == 'h') return nbt_usage_plot(stdout), NBT_OK;
        if (c == '?' || c == ':') return nbt_bad_usage(CMD, c, argv[optind - 1]);
        if (c == 'o') out = optarg;
        if (c == O_Y) ycol = optarg;
        if (c == O_TITLE) title = optarg;
        if (c == O_HIST) hist = true;
        if (c == O_FORCE) force = true;
        if (c == O_BINS) bins_opt = optarg;
        if (c == O_RANGE) range_opt = optarg;
        if (c == O_LABEL) {
            if (n_labels == MAX_FILES) return nbt_fail(CMD, "too many --label options (at most %d)", MAX_FILES);
            labels[n_labels++] = optarg;
        }
    }
    int n = argc - optind;
    if (n < 1)
        return nbt_fail(CMD, "needs a LOG.csv (or --hist with .npy files) (see 'nabla plot --help')");
    if (n > MAX_FILES) return nbt_extra_args(CMD, argc, argv, optind, MAX_FILES);
    if (!out) return nbt_fail(CMD, "needs -o OUT.{png,svg,pdf}");
    if (hist && ycol) return nbt_fail(CMD, "--y is for training logs; it does not go with --hist");
    if (!hist && bins_opt) return nbt_fail(CMD, "--bins goes with --hist");
    if (!hist && range_opt) return nbt_fail(CMD, "--range goes with --hist");
    if (n_labels && n_labels != n)
        return nbt_fail(CMD, "%d --label for %d file%s: give one per file, or none", n_labels, n, n == 1 ? "" : "s");
    int64_t bins = 30;
    double lo = 0, hi = 0;
    if (bins_opt && nbt_parse_i64(CMD, "--bins", bins_opt, 1, &bins)) return NBT_ERROR;
    if (bins > 10000) return nbt_fail(CMD, "--bins %s: at most 10000", bins_opt);
    if (range_opt && parse_range(range_opt, &lo, &hi)) return NBT_ERROR;
    if (nbt_plot_check_output(CMD, out) || nbt_check_output(CMD, out, force, false)) return NBT_ERROR;
    return hist ? plot_hists(argv + optind, n, labels, bins, lo, hi, title, out)
                : plot_logs(argv + optind, n, labels, ycol, title, out);
}

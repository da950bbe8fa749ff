/* Plots for the `nabla` command, drawn with PLplot: named curves, the
 * two-panel training picture (loss and accuracy per epoch) and histograms;
 * and the reader of the training log they come from.
 *
 * The output format follows the file's extension: .png and .pdf through
 * PLplot's cairo devices (pngcairo, pdfcairo), .svg through PLplot's own svg
 * device, which keeps text as <text> (searchable and checkable; svgcairo
 * turns every glyph into a path). The background is white.
 *
 * Every function that can fail prints one message ("nabla CMD: ...") and
 * returns NBT_ERROR (cli.h); on success nothing is printed. PLplot keeps
 * global state: one plot at a time. The picture is written to a temporary
 * file next to OUT and renamed over it at the end, so a failed plot leaves
 * an older OUT as it was. */
#ifndef NABLA_TOOLS_PLOT_H
#define NABLA_TOOLS_PLOT_H

#include <stddef.h>

/* One line of a plot: n points (x[i], y[i]); a NaN (or infinite) coordinate
 * is a missing point, where the line breaks. */
typedef struct nbt_series {
    const char *name;  /* legend text */
    const double *x, *y;
    size_t n;
} nbt_series;

/* The columns of a training log (`nabla train --log LOG.csv`), in order. */
enum {
    NBT_LOG_EPOCH,
    NBT_LOG_TRAIN_LOSS,
    NBT_LOG_TRAIN_ACC,
    NBT_LOG_TEST_LOSS,
    NBT_LOG_TEST_ACC,
    NBT_LOG_SAMPLES_PER_S,
    NBT_LOG_ELAPSED_S,
    NBT_LOG_COLS
};
extern const char *const nbt_log_columns[NBT_LOG_COLS];

/* A training log read in full: col[c][i] is column c of row i, NaN where
 * the field was empty ("no value"). */
typedef struct nbt_log {
    size_t n;  /* rows (epochs), at least 1 */
    double *col[NBT_LOG_COLS];
} nbt_log;

/* Reads a training log: the header line
 *   epoch,train_loss,train_acc,test_loss,test_acc,samples_per_s,elapsed_s
 * then one row per epoch, 7 fields each, every field a number or empty
 * (epoch never empty; accuracies fractions in [0, 1]). LF or CRLF line ends.
 * Errors name the place: "FILE:LINE: ...". */
int nbt_log_read(const char *cmd, const char *path, nbt_log *log);
void nbt_log_free(nbt_log *log);
/* Index of a column by name, or -1. */
int nbt_log_column(const char *name);

/* NBT_OK when out's extension names a format this module writes (.png,
 * .svg, .pdf, in any case), else a message: to check before reading inputs. */
int nbt_plot_check_output(const char *cmd, const char *out);

/* Curves with a legend (colours and line styles told apart), axes from the
 * data with a little margin; xlabel/ylabel/title may be NULL. Series with no
 * finite point are listed in the legend but draw nothing; at least one
 * series must have one. */
int nbt_plot_curves(const char *cmd, const char *out, const char *title, const nbt_series *s, int n,
                    const char *xlabel, const char *ylabel);

/* The picture of one training run: loss (train and test) per epoch on the
 * left, accuracy (train and test) per epoch on the right. Test lines are
 * drawn where the log has test values. */
int nbt_plot_training(const char *cmd, const char *out, const char *title, const nbt_log *log);

/* Values whose distribution to draw (one panel each). */
typedef struct nbt_values {
    const char *name;  /* the panel's title */
    const double *v;
    size_t n;
} nbt_values;

/* Histograms, one panel per array side by side, each with `bins` equal bins
 * over [lo, hi] (values outside are not counted, nor NaNs); lo == hi takes
 * the range of all the finite values. */
int nbt_plot_hist(const char *cmd, const char *out, const char *title, const nbt_values *v, int n,
                  int bins, double lo, double hi);

#endif

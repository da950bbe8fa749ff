/* Plots with PLplot (see plot.h).
 *
 * Keeping PLplot quiet. PLplot has no "quiet" option: its option table
 * (plsetopt, plparseopts) knows -verbose and -debug, both off by default, and
 * plsetopt("quiet", ...) matches nothing yet returns 0 without a word. What
 * it prints on its own, and what we do about each:
 *   - plabort() messages (a call that gives up): plsError() hands PLplot a
 *     buffer and a flag instead of stderr; we check the flag and report the
 *     message as ours.
 *   - plexit() (fatal: e.g. an output file it cannot open, which it first
 *     retries 11 times printing "Can't open"): we open the file ourselves
 *     before plinit, and plsexit() installs a handler that reports the
 *     message as ours and exits with status 2 before PLplot prints anything.
 *   - plwarn() writes to stderr unconditionally: we only pass what it accepts
 *     (finite, non-empty ranges, known devices, known options), so it has
 *     nothing to say.
 *   - plinit() asks on stdin/stdout for a device when the requested one is
 *     missing: we look it up with plgDevs() first.
 * Text goes through PLplot's escape sequences: '#' in a label is doubled. */
#include "plot.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <plplot.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

const char *const nbt_log_columns[NBT_LOG_COLS] = {
    "epoch", "train_loss", "train_acc", "test_loss", "test_acc", "samples_per_s", "elapsed_s",
};

/* ---- the training log ---------------------------------------------------- */

int nbt_log_column(const char *name)
{
    for (int c = 0; c < NBT_LOG_COLS; c++)
        if (!strcmp(name, nbt_log_columns[c])) return c;
    return -1;
}

void nbt_log_free(nbt_log *log)
{
    for (int c = 0; c < NBT_LOG_COLS; c++) free(log->col[c]);
    memset(log, 0, sizeof *log);
}

static void header_text(char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = 0;
    for (int c = 0; c < NBT_LOG_COLS && len < cap; c++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", c ? "," : "", nbt_log_columns[c]);
}

/* Removes the line end (LF or CRLF); false when the line holds a NUL byte. */
static bool chomp(char *line, ssize_t len)
{
    if (len > 0 && line[len - 1] == '\n') line[--len] = 0;
    if (len > 0 && line[len - 1] == '\r') line[--len] = 0;
    return strlen(line) == (size_t)len;
}

static bool is_accuracy(int c) { return c == NBT_LOG_TRAIN_ACC || c == NBT_LOG_TEST_ACC; }

/* One row into v[]; a message into err on failure. */
static bool parse_row(char *line, double *v, char *err, size_t cap)
{
    int n = 1;
    for (const char *p = line; *p; p++) n += *p == ',';
    if (n != NBT_LOG_COLS) {
        char h[160];
        header_text(h, sizeof h);
        snprintf(err, cap, "%d field%s, expected %d (%s)", n, n == 1 ? "" : "s", NBT_LOG_COLS, h);
        return false;
    }
    char *field = line;
    for (int c = 0; c < NBT_LOG_COLS; c++) {
        char *end = strchr(field, ',');
        if (end) *end = 0;
        if (!*field) {
            if (c == NBT_LOG_EPOCH) return snprintf(err, cap, "epoch is empty"), false;
            v[c] = NAN;  /* no value */
        } else {
            char *stop;
            v[c] = strtod(field, &stop);
            if (*stop || isspace((unsigned char)field[0]))
                return snprintf(err, cap, "%s: '%.40s' is not a number", nbt_log_columns[c], field), false;
            if (c == NBT_LOG_EPOCH && !isfinite(v[c]))
                return snprintf(err, cap, "epoch is %s", field), false;
            if (is_accuracy(c) && !isnan(v[c]) && !(v[c] >= 0 && v[c] <= 1))
                return snprintf(err, cap, "%s is %s; accuracies are fractions in [0, 1]",
                                nbt_log_columns[c], field), false;
        }
        field = end ? end + 1 : field + strlen(field);
    }
    return true;
}

static bool grow(nbt_log *log, size_t *cap)
{
    if (log->n < *cap) return true;
    size_t want = *cap ? 2 * *cap : 64;
    for (int c = 0; c < NBT_LOG_COLS; c++) {
        double *p = realloc(log->col[c], want * sizeof *p);
        if (!p) return false;
        log->col[c] = p;
    }
    *cap = want;
    return true;
}

int nbt_log_read(const char *cmd, const char *path, nbt_log *log)
{
    memset(log, 0, sizeof *log);
    FILE *f = fopen(path, "r");
    if (!f) return nbt_fail(cmd, "cannot read %s: %s", path, strerror(errno));
    char *line = NULL, err[256], header[160];
    size_t cap = 0, rows_cap = 0, lineno = 1;
    int rc = NBT_OK;
    header_text(header, sizeof header);
    ssize_t len = getline(&line, &cap, f);
    if (len < 0) {
        rc = ferror(f) ? nbt_fail(cmd, "cannot read %s: %s", path, strerror(errno))
                       : nbt_fail(cmd, "%s:1: empty file; a training log starts with the line %s", path, header);
    } else if (!chomp(line, len) || strcmp(line, header)) {
        rc = nbt_fail(cmd, "%s:1: not a training log: the first line must be %s", path, header);
    }
    while (!rc && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (!chomp(line, len)) rc = nbt_fail(cmd, "%s:%zu: a NUL byte in the line", path, lineno);
        else if (!*line) rc = nbt_fail(cmd, "%s:%zu: empty line", path, lineno);
        else if (!grow(log, &rows_cap)) rc = nbt_fail(cmd, "out of memory reading %s", path);
        else {
            double v[NBT_LOG_COLS];
            if (!parse_row(line, v, err, sizeof err)) rc = nbt_fail(cmd, "%s:%zu: %s", path, lineno, err);
            for (int c = 0; !rc && c < NBT_LOG_COLS; c++) log->col[c][log->n] = v[c];
            log->n += !rc;
        }
    }
    if (!rc && ferror(f)) rc = nbt_fail(cmd, "cannot read %s: %s", path, strerror(errno));
    if (!rc && !log->n) rc = nbt_fail(cmd, "%s: no epochs (only the header line)", path);
    free(line);
    fclose(f);
    if (rc) nbt_log_free(log);
    return rc;
}

/* ---- a PLplot session ------------------------------------------------------ */

/* Colour map 0: the background, then the ink of axes and text, then the
 * series colours (those of matplotlib's "tab10"). */
enum { COL_BG = 0, COL_INK = 1, COL_SERIES = 2, N_SERIES_COLS = 10, N_STYLES = 4 };
static const PLINT PALETTE[][3] = {
    {255, 255, 255}, {0, 0, 0},
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189},
    {140, 86, 75}, {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
};
/* pllsty styles: solid, short dashes, long dashes, long-short dashes */
static const PLINT STYLES[N_STYLES] = {1, 2, 3, 4};

typedef struct session {
    const char *cmd, *out;
    char tmp[4096];
    PLINT errcode;
    char errmsg[1024];
} session;

static session *active;  /* for the plexit handler: PLplot holds one plot at a time */
static double text_base = 1.0;  /* the picture's text size, as a scale of PLplot's */

/* Text at `scale` times the picture's size. */
static void text_size(double scale) { plschr(0, text_base * scale); }

/* PLplot calls this on a fatal error, before printing anything; we exit
 * here, so it never prints. */
static int on_plexit(const char *msg)
{
    if (active) {
        unlink(active->tmp);
        nbt_fail(active->cmd, "PLplot: %s", msg);
    }
    exit(NBT_ERROR);
}

static const struct {
    const char *ext, *dev;
} FORMATS[] = {{".png", "pngcairo"}, {".svg", "svg"}, {".pdf", "pdfcairo"}};

static const char *device_for(const char *out)
{
    const char *dot = strrchr(out, '.');
    if (!dot || strchr(dot, '/')) return NULL;
    for (size_t i = 0; i < sizeof FORMATS / sizeof FORMATS[0]; i++)
        if (!strcasecmp(dot, FORMATS[i].ext)) return FORMATS[i].dev;
    return NULL;
}

int nbt_plot_check_output(const char *cmd, const char *out)
{
    if (!device_for(out))
        return nbt_fail(cmd, "cannot tell the format of '%s': its name must end in .png, .svg or .pdf", out);
    return NBT_OK;
}

static bool has_device(const char *dev)
{
    const char *menu[128], *names[128];
    const char **pm = menu, **pn = names;
    int n = 128;
    plgDevs(&pm, &pn, &n);
    for (int i = 0; i < n; i++)
        if (names[i] && !strcmp(names[i], dev)) return true;
    return false;
}

/* A file next to out that PLplot writes and we rename over out at the end,
 * with the permissions a new out would get. */
static int make_tmp(session *s)
{
    const char *slash = strrchr(s->out, '/');
    int dir = slash ? (int)(slash - s->out + 1) : 0;
    if (snprintf(s->tmp, sizeof s->tmp, "%.*s.%s.XXXXXX", dir, s->out, s->out + dir) >= (int)sizeof s->tmp)
        return nbt_fail(s->cmd, "cannot write %s: the name is too long", s->out);
    int fd = mkstemp(s->tmp);
    if (fd < 0) {
        s->tmp[0] = 0;
        return nbt_fail(s->cmd, "cannot write %s: %s", s->out, strerror(errno));
    }
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    close(fd);
    return NBT_OK;
}

static int plplot_failed(session *s)
{
    char *m = s->errmsg;
    while (*m == '\n' || *m == '*' || *m == ' ') m++;
    size_t len = strlen(m);
    while (len && m[len - 1] == '\n') m[--len] = 0;
    const char *tail = ", aborting operation";  /* what plabort adds */
    if (len >= strlen(tail) && !strcmp(m + len - strlen(tail), tail)) m[len - strlen(tail)] = 0;
    return nbt_fail(s->cmd, "PLplot: %s", *m ? m : "failed");
}

/* Starts a page of width x height pixels (points for svg and pdf) writing
 * to a temporary file next to out. */
static int begin(session *s, const char *cmd, const char *out, int width, int height)
{
    memset(s, 0, sizeof *s);
    s->cmd = cmd;
    s->out = out;
    if (nbt_plot_check_output(cmd, out)) return NBT_ERROR;
    const char *dev = device_for(out);
    if (!has_device(dev))
        return nbt_fail(cmd, "PLplot has no '%s' device to write %s (Debian: install %s)", dev, out,
                        strcmp(dev, "svg") ? "plplot-driver-cairo" : "libplplot17");
    if (make_tmp(s)) return NBT_ERROR;
    active = s;
    plsexit(on_plexit);
    plsError(&s->errcode, s->errmsg);
    plsdev(dev);
    plsfnam(s->tmp);
    plspage(0, 0, width, height, 0, 0);
    PLINT r[12], g[12], b[12];
    for (int i = 0; i < 12; i++) r[i] = PALETTE[i][0], g[i] = PALETTE[i][1], b[i] = PALETTE[i][2];
    plscmap0(r, g, b, 12);
    plscolbg(255, 255, 255);  /* PLplot's default background is black */
    plinit();
    if (s->errcode) {
        plend();
        unlink(s->tmp);
        active = NULL;
        return plplot_failed(s);
    }
    pladv(0);
    plcol0(COL_INK);
    text_base = 1.0;
    return NBT_OK;
}

/* PLplot closed the file without syncing it: sync before the rename, as
 * every writer of nabla does, so that a crash leaves the old or the new file. */
static int sync_file(session *s)
{
    int fd = open(s->tmp, O_RDONLY | O_CLOEXEC);
    int rc = fd < 0 || fsync(fd) != 0 ? nbt_fail(s->cmd, "cannot write %s: %s", s->out, strerror(errno)) : NBT_OK;
    if (fd >= 0) close(fd);
    return rc;
}

/* Closes the page and puts the file in place (or removes it when failed). */
static int end(session *s, int rc)
{
    plend();
    active = NULL;
    if (!rc && s->errcode) rc = plplot_failed(s);
    if (!rc) rc = sync_file(s);
    if (!rc) rc = nbt_check_output(s->cmd, s->out, true, false);  /* never over a link or a device */
    if (!rc && rename(s->tmp, s->out)) rc = nbt_fail(s->cmd, "cannot write %s: %s", s->out, strerror(errno));
    if (rc) unlink(s->tmp);
    return rc;
}

/* ---- drawing helpers ----------------------------------------------------- */

/* Length of the UTF-8 sequence at s, or 0 when it is not a valid one. */
static size_t utf8_len(const unsigned char *s)
{
    size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 2 && s[0] < 0xC2) return 0;  /* overlong */
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return n;
}

/* Text for PLplot: its escape character '#' doubled, bytes that are not
 * UTF-8 (which PLplot refuses) shown as '?', cut at a whole character to
 * fit buf. */
static const char *esc(char *buf, size_t cap, const char *s)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        size_t len = utf8_len(p);
        const char *piece = len ? (const char *)p : "?";
        size_t out = *p == '#' ? 2 : len ? len : 1;
        if (n + out >= cap) break;
        if (*p == '#') buf[n++] = '#';
        memcpy(buf + n, piece, len ? len : 1);
        n += len ? len : 1;
        p += len ? len : 1;
    }
    buf[n] = 0;
    return buf;
}

typedef struct range {
    double lo, hi;
} range;

static range range_empty(void) { return (range){INFINITY, -INFINITY}; }

static void range_add(range *r, double v)
{
    if (!isfinite(v)) return;
    if (v < r->lo) r->lo = v;
    if (v > r->hi) r->hi = v;
}

static bool range_ok(range r) { return r.lo <= r.hi; }

/* A range to draw: the data's with a margin of `pad` of its span on each
 * side; a single value gets ±max(|v|/10, 0.5)... a visible span around it. */
static range range_padded(range r, double pad)
{
    double span = r.hi - r.lo;
    if (!(span > 0)) {
        double d = fabs(r.lo) * 0.1;
        if (!(d > 0)) d = 0.5;
        return (range){r.lo - d, r.hi + d};
    }
    return (range){r.lo - pad * span, r.hi + pad * span};
}

/* Panel k of n side by side in the current subpage, with margins in
 * character heights for tick labels and axis labels: `left` of the first,
 * `gap` between panels
 * (less when only the first has a y label); `top` leaves room for a title
 * over all panels. */
static void panel(int k, int n, double left, double gap, bool top)
{
    PLFLT xmin, xmax, ymin, ymax, def, ch;
    plgspa(&xmin, &xmax, &ymin, &ymax);
    plgchr(&def, &ch);
    double right = 2.0 * ch, bottom = 5.0 * ch, upper = (top ? 6.5 : 3.5) * ch;
    double w = (xmax - xmin - left * ch - right - (n - 1) * gap * ch) / n;
    double x0 = left * ch + k * (w + gap * ch);  /* plsvpa: mm from the subpage's corner */
    plsvpa(x0, x0 + w, bottom, ymax - ymin - upper);
}

/* A title over all panels, centred on the page. */
static void page_title(const char *title)
{
    if (!title || !*title) return;
    char t[256];
    plvpor(0.0, 1.0, 0.0, 1.0);
    text_size(1.25);
    plcol0(COL_INK);
    plmtex("t", -1.6, 0.5, 0.5, esc(t, sizeof t, title));
    text_size(1.0);
}

/* Axes over the window x by y, with ticks every xtick / ytick (0: PLplot's
 * choice; whole steps get no minor ticks) and labels. The y label sits
 * ydisp character heights left of the axis, or where pllab puts it when 0
 * (right for tick labels of up to about 4 characters). */
static void axes(range x, range y, double xtick, double ytick, double ydisp, const char *xlabel,
                 const char *ylabel, const char *title)
{
    char a[256], b[256], c[256];  /* cut: the cairo devices take strings of < 500 characters */
    plwind(x.lo, x.hi, y.lo, y.hi);
    plcol0(COL_INK);
    plwidth(1.0);
    pllsty(1);
    plbox("bcnst", xtick, xtick == 1 ? 1 : 0, "bcnstv", ytick, ytick == 1 ? 1 : 0);
    esc(b, sizeof b, ylabel ? ylabel : "");
    pllab(esc(a, sizeof a, xlabel ? xlabel : ""), ydisp > 0 ? "" : b, esc(c, sizeof c, title ? title : ""));
    if (ydisp > 0) plmtex("l", ydisp, 0.5, 0.5, b);
}

/* Lines through the finite points of s, broken at missing ones; markers at
 * every point when there are few, and always at a point with no neighbour
 * (which no line would show). */
#define MARKER "#(850)" /* a filled dot */
#define MARKER_SCALE 1.5
#define FEW_POINTS 30

static bool finite_at(const nbt_series *s, size_t i)
{
    return i < s->n && isfinite(s->x[i]) && isfinite(s->y[i]);
}

static size_t n_finite(const nbt_series *s)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) k += finite_at(s, i);
    return k;
}

static bool draws_markers(const nbt_series *s) { return n_finite(s) <= FEW_POINTS; }

static void draw_series(const nbt_series *s, int colour, int style)
{
    plcol0(colour);
    plwidth(2.0);
    pllsty(style);
    for (size_t i = 0; i < s->n;) {
        if (!finite_at(s, i)) {
            i++;
            continue;
        }
        size_t j = i;
        while (finite_at(s, j)) j++;
        if (j - i >= 2) plline((PLINT)(j - i), s->x + i, s->y + i);
        i = j;
    }
    pllsty(1);
    text_size(MARKER_SCALE);
    bool all = draws_markers(s);
    for (size_t i = 0; i < s->n; i++) {
        if (!finite_at(s, i)) continue;
        bool alone = !(i > 0 && finite_at(s, i - 1)) && !finite_at(s, i + 1);
        if (all || alone) plstring(1, s->x + i, s->y + i, MARKER);
    }
    text_size(1.0);
    plwidth(1.0);
}

/* The corner of the window where the legend hides the fewest points:
 * PL_POSITION_* flags, trying top right, bottom right, top left, bottom left. */
static PLINT legend_corner(const nbt_series *s, int n, range x, range y, int rows)
{
    static const PLINT corners[4] = {PL_POSITION_TOP | PL_POSITION_RIGHT, PL_POSITION_BOTTOM | PL_POSITION_RIGHT,
                                     PL_POSITION_TOP | PL_POSITION_LEFT, PL_POSITION_BOTTOM | PL_POSITION_LEFT};
    double w = 0.35, h = 0.06 + 0.065 * rows;  /* the legend's size as fractions of the window */
    size_t best_count = (size_t)-1;
    PLINT best = corners[0];
    for (int c = 0; c < 4; c++) {
        bool right = corners[c] & PL_POSITION_RIGHT, top = corners[c] & PL_POSITION_TOP;
        size_t count = 0;
        for (int k = 0; k < n; k++)
            for (size_t i = 0; i < s[k].n; i++) {
                if (!finite_at(&s[k], i)) continue;
                double u = (s[k].x[i] - x.lo) / (x.hi - x.lo), v = (s[k].y[i] - y.lo) / (y.hi - y.lo);
                count += (right ? u >= 1 - w : u <= w) && (top ? v >= 1 - h : v <= h);
            }
        if (count < best_count) best_count = count, best = corners[c];
    }
    return best;
}

#define MAX_LEGEND 64

static void legend(const nbt_series *s, int n, const int *colours, const int *styles, range x, range y)
{
    if (n > MAX_LEGEND) n = MAX_LEGEND;
    PLINT opt[MAX_LEGEND], tcol[MAX_LEGEND], lcol[MAX_LEGEND], lsty[MAX_LEGEND], scol[MAX_LEGEND],
        snum[MAX_LEGEND];
    PLFLT lwid[MAX_LEGEND], sscale[MAX_LEGEND];
    char text[MAX_LEGEND][256];
    const char *texts[MAX_LEGEND], *symbols[MAX_LEGEND];
    for (int k = 0; k < n; k++) {
        opt[k] = PL_LEGEND_LINE | (draws_markers(&s[k]) ? PL_LEGEND_SYMBOL : 0);
        tcol[k] = COL_INK;
        lcol[k] = scol[k] = colours[k];
        lsty[k] = styles[k];
        lwid[k] = 2.0;
        sscale[k] = MARKER_SCALE / 0.9;  /* relative to the legend's text */
        snum[k] = 1;
        symbols[k] = MARKER;
        texts[k] = esc(text[k], sizeof text[k], s[k].name ? s[k].name : "");
    }
    PLFLT w, h;
    text_size(0.9);
    pllegend(&w, &h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
             PL_POSITION_INSIDE | legend_corner(s, n, x, y, n), 0.02, 0.03, 0.08, COL_BG, COL_INK, 1, 0, 0,
             n, opt, 1.0, 1.0, 1.6, 0.0, tcol, texts, NULL, NULL, NULL, NULL, lcol, lsty, lwid, scol,
             sscale, snum, symbols);
    text_size(1.0);
}

/* The ranges of the finite points of n series; false when there is none. */
static bool series_ranges(const nbt_series *s, int n, range *x, range *y, bool *x_integral)
{
    *x = range_empty(), *y = range_empty();
    *x_integral = true;
    for (int k = 0; k < n; k++)
        for (size_t i = 0; i < s[k].n; i++) {
            if (!finite_at(&s[k], i)) continue;
            range_add(x, s[k].x[i]);
            range_add(y, s[k].y[i]);
            *x_integral &= s[k].x[i] == floor(s[k].x[i]);
        }
    return range_ok(*x) && range_ok(*y);
}

/* One panel of curves with its legend; yclip limits the y range (accuracies
 * in [0, 1]). */
static void curves_panel(const nbt_series *s, int n, const char *xlabel, const char *ylabel,
                         const char *title, const range *yclip)
{
    range x, y;
    bool integral;
    series_ranges(s, n, &x, &y, &integral);
    x = range_padded(x, 0.03);
    y = range_padded(y, 0.06);
    if (yclip) {
        if (y.lo < yclip->lo) y.lo = yclip->lo;
        if (y.hi > yclip->hi) y.hi = yclip->hi;
    }
    /* epochs: a tick at each when there are few */
    axes(x, y, integral && x.hi - x.lo <= 12 ? 1 : 0, 0, 0, xlabel, ylabel, title);
    int colours[MAX_LEGEND], styles[MAX_LEGEND];
    for (int k = 0; k < n; k++) {
        colours[k] = COL_SERIES + k % N_SERIES_COLS;
        styles[k] = STYLES[k % N_STYLES];
        draw_series(&s[k], colours[k], styles[k]);
    }
    plcol0(COL_INK);
    legend(s, n, colours, styles, x, y);
}

static int check_series(const char *cmd, const nbt_series *s, int n)
{
    range x, y;
    bool integral;
    if (n < 1) return nbt_fail(cmd, "nothing to plot");
    if (n > MAX_LEGEND) return nbt_fail(cmd, "too many lines to plot (%d; at most %d)", n, MAX_LEGEND);
    if (!series_ranges(s, n, &x, &y, &integral)) return nbt_fail(cmd, "no values to plot");
    return NBT_OK;
}

/* ---- the plots ----------------------------------------------------------- */

int nbt_plot_curves(const char *cmd, const char *out, const char *title, const nbt_series *s, int n,
                    const char *xlabel, const char *ylabel)
{
    if (nbt_plot_check_output(cmd, out) || check_series(cmd, s, n)) return NBT_ERROR;
    session ss;
    if (begin(&ss, cmd, out, 800, 560)) return NBT_ERROR;
    panel(0, 1, 7.5, 0, false);
    curves_panel(s, n, xlabel, ylabel, title, NULL);
    return end(&ss, NBT_OK);
}

int nbt_plot_training(const char *cmd, const char *out, const char *title, const nbt_log *log)
{
    if (nbt_plot_check_output(cmd, out)) return NBT_ERROR;
    const double *epoch = log->col[NBT_LOG_EPOCH];
    nbt_series loss[2] = {{"train", epoch, log->col[NBT_LOG_TRAIN_LOSS], log->n},
                          {"test", epoch, log->col[NBT_LOG_TEST_LOSS], log->n}};
    nbt_series acc[2] = {{"train", epoch, log->col[NBT_LOG_TRAIN_ACC], log->n},
                         {"test", epoch, log->col[NBT_LOG_TEST_ACC], log->n}};
    /* a panel shows the test line only when the log has test values */
    int n_loss = n_finite(&loss[1]) ? 2 : 1, n_acc = n_finite(&acc[1]) ? 2 : 1;
    if (!n_finite(&loss[0]) && n_loss == 1) return nbt_fail(cmd, "the log has no loss values to plot");
    if (!n_finite(&acc[0]) && n_acc == 1) return nbt_fail(cmd, "the log has no accuracy values to plot");
    session ss;
    if (begin(&ss, cmd, out, 1100, 480)) return NBT_ERROR;
    bool top = title && *title;
    page_title(title);
    panel(0, 2, 7.5, 8.5, top);
    curves_panel(loss, n_loss, "epoch", "loss", "loss", NULL);
    panel(1, 2, 7.5, 8.5, top);
    curves_panel(acc, n_acc, "epoch", "accuracy", "accuracy", &(range){0.0, 1.0});
    return end(&ss, NBT_OK);
}

int nbt_plot_hist(const char *cmd, const char *out, const char *title, const nbt_values *v, int n,
                  int bins, double lo, double hi)
{
    if (nbt_plot_check_output(cmd, out)) return NBT_ERROR;
    if (n < 1) return nbt_fail(cmd, "nothing to plot");
    if (bins < 1) return nbt_fail(cmd, "the number of bins must be at least 1, not %d", bins);
    if (!isfinite(lo) || !isfinite(hi) || lo > hi) return nbt_fail(cmd, "the range %g to %g is not one", lo, hi);
    if (lo == hi) {
        range r = range_empty();
        for (int k = 0; k < n; k++)
            for (size_t i = 0; i < v[k].n; i++) range_add(&r, v[k].v[i]);
        if (!range_ok(r)) return nbt_fail(cmd, "no finite values to plot");
        if (r.lo == r.hi) r = range_padded(r, 0);
        lo = r.lo, hi = r.hi;
    }
    double *count = calloc((size_t)n * (size_t)bins, sizeof *count);
    if (!count) return nbt_fail(cmd, "out of memory");
    double width = (hi - lo) / bins;
    for (int k = 0; k < n; k++)
        for (size_t i = 0; i < v[k].n; i++) {
            double x = v[k].v[i];
            if (!(x >= lo && x <= hi)) continue;
            long b = (long)((x - lo) / width);
            count[(size_t)k * (size_t)bins + (size_t)(b < bins ? b : bins - 1)]++;
        }
    session ss;
    int page_w = 400 * n + 120;
    if (begin(&ss, cmd, out, page_w < 640 ? 640 : page_w, 500)) return free(count), NBT_ERROR;
    plsyax(9, 0);  /* counts as they are, without a "(x10^4)" */
    text_base = 0.8;
    text_size(1.0);
    /* the widest count label, in digits, sets the room left of each panel */
    double most = 0;
    for (size_t i = 0; i < (size_t)n * (size_t)bins; i++)
        if (count[i] > most) most = count[i];
    int digits = most >= 1 ? (int)floor(log10(most * 1.08)) + 1 : 1;
    double ylabel_at = 0.75 * digits + 1.8;
    bool top = title && *title;
    page_title(title);
    for (int k = 0; k < n; k++) {
        const double *c = count + (size_t)k * (size_t)bins;
        double top_count = 0;
        for (int b = 0; b < bins; b++)
            if (c[b] > top_count) top_count = c[b];
        panel(k, n, ylabel_at + 1.5, 0.75 * digits + 2.0, top);
        axes((range){lo, hi}, (range){0, top_count > 0 ? top_count * 1.08 : 1}, 0, top_count < 8 ? 1 : 0,
             ylabel_at, "value", k ? "" : "count", v[k].name);
        for (int b = 0; b < bins; b++) {
            if (!c[b]) continue;
            PLFLT xs[5] = {lo + b * width, lo + (b + 1) * width, lo + (b + 1) * width, lo + b * width,
                           lo + b * width};
            PLFLT ys[5] = {0, 0, c[b], c[b], 0};
            plcol0(COL_SERIES + k % N_SERIES_COLS);
            plfill(4, xs, ys);
            plcol0(COL_INK);
            plwidth(0.5);
            plline(5, xs, ys);
            plwidth(1.0);
        }
    }
    free(count);
    return end(&ss, NBT_OK);
}

/* nabla run MODEL --in NAME=FILE.npy ... [--weights W] [--save-weights W]
 * [--grad] [--dim S=V] [--mode train|eval] [--seed S] -o DIR: one forward
 * pass (and the backward pass with --grad) on inputs from .npy files; every
 * output, and the loss when the inputs it depends on are given, are written as
 * DIR/NAME.npy, gradients as DIR/grad.NAME.npy. Only the inputs those depend
 * on are needed (--grad needs the loss); a given input nothing computed
 * depends on is a warning. Eval mode unless --mode train. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const char *const CMD = "run";

void nbt_usage_run(FILE *f)
{
    fprintf(f,
            "usage: nabla run MODEL --in NAME=FILE.npy... -o DIR [options]\n"
            "Runs MODEL forward on the given inputs and writes every output, and the loss\n"
            "when the inputs it depends on are given, as DIR/NAME.npy in the model's dtype.\n"
            "Only the inputs the outputs depend on are needed (predicting needs no labels);\n"
            "a given input that no output nor the loss depends on is a warning.\n\n"
            "  --in NAME=FILE       value of an input (f4/f8, or i4/i8 converted exactly, for\n"
            "                       float inputs; i4/i8 for labels);\n"
            "                       free dimensions are bound from the arrays' shapes\n"
            "  -o, --output DIR     where results go (created if missing); its NAME.npy files\n"
            "                       are the run's own and are replaced; all files are moved\n"
            "                       in at the end, so a run that fails writes nothing\n"
            "  --weights W          param values from a safetensors or .npz file (by its\n"
            "                       extension), by param name\n"
            "  --save-weights W     write the params used to W.npz (numpy.load reads it) or,\n"
            "                       any other name, to a safetensors file; an existing W is\n"
            "                       replaced when nabla wrote it (or it is in DIR)\n"
            "  --force              replace W even when it is not a nabla weights file\n"
            "  --grad               also write DIR/grad.NAME.npy for every trainable param\n"
            "                       and float input given (not for batchnorm's running\n"
            "                       statistics); needs the loss, so its inputs are required;\n"
            "                       an ONNX model, which has none, differentiates the sum of its\n"
            "                       float outputs, written as DIR/sum_of_outputs.npy\n"
            "  --dim SYM=SIZE       bind a free dimension no input fixes\n"
            "  --mode train|eval    eval (default): dropout is the identity and batchnorm uses\n"
            "                       its running statistics; train: dropout drops, batchnorm\n"
            "                       uses the batch's statistics and updates the running ones\n"
            "                       (written by --save-weights)\n"
            "  --seed S             seed of the dropout masks in train mode (default: the\n"
            "                       train section's seed)\n"
            "  -q, --quiet          no summary of the files written (warnings stay)\n"
            "  --detect-anomaly     check every value as it is computed; stop at the first\n"
            "                       NaN or infinity, naming the node (writes nothing)\n"
            "  -h, --help           this text\n"
            "Prints a line per file written: name, shape, dtype, and the value of a scalar or\n"
            "min/mean/max of the finite values; warns about NaN and infinite values.\n\n"
            "example (a reference case of the test suite, from the source folder):\n"
            "  nabla run tests/conformance/mlp.yaml --in x=tests/conformance/mlp/in/x.npy \\\n"
            "      --in t=tests/conformance/mlp/in/t.npy \\\n"
            "      --weights tests/conformance/mlp/weights.safetensors --grad -o out\n");
}

typedef struct run_args {
    nbt_feeds feeds;
    nbt_dims dims;
    const char *model, *out, *weights, *save;
    bool grad, training, seeded, quiet, anomaly, force;
    uint64_t seed;
} run_args;

typedef struct run_state {
    nb_model *m;
    nb_graph *g;
    nbt_inputs in;
    nb_node **nodes;     /* computed: outputs and loss, then gradients */
    nb_node **wrt;       /* with --grad: the tensors gradients are written for */
    int n_nodes, n_res, n_wrt;  /* n_res: results before the gradients */
    nb_node **inputs;    /* the model's inputs, in order */
    bool *dep;           /* scratch: which of them a node depends on */
} run_state;

/* ---- weights ------------------------------------------------------------------ */

/* Into the stage; the `format` marks the file as nabla's (nbt_is_nabla_weights),
 * so that the next run may replace it without --force. */
static int save_weights(const run_state *s, nbt_stage *stage, const char *path)
{
    const char *meta[6] = {"format", NBT_WEIGHTS_FORMAT, "model", nb_model_name(s->m), "nabla", NB_VERSION_STRING};
    const char *tmp = nbt_stage_file(stage, path);
    if (!tmp) return NBT_ERROR;
    if (nb_weights_save(s->g, tmp, meta, 3))  /* the message names the final path, not the stage */
        return nbt_fail(CMD, "%s: %s", path, nb_graph_error(s->g));
    return NBT_OK;
}

/* ---- what to compute ---------------------------------------------------------- */

/* Only the inputs that what is computed depends on are needed: every output,
 * the loss when its inputs are given (or --grad needs it), and with --grad the
 * gradients. A free dimension of a computed node comes from an input it depends
 * on (params have fixed sizes and ops keep symbolic sizes exact), so once those
 * inputs are given every dimension the plan needs is bound. */

static void add_result(run_state *s, nb_node *n)
{
    for (int i = 0; i < s->n_nodes; i++)
        if (s->nodes[i] == n) return;
    s->nodes[s->n_nodes++] = n;
}

/* The first model input that n depends on and that is not given, or NULL. */
static int missing_input(run_state *s, nb_node *n, nb_node **missing)
{
    int n_in = (int)nb_model_num_inputs(s->m);
    *missing = NULL;
    if (nbt_depends_on(CMD, s->g, &n, 1, s->inputs, n_in, s->dep)) return NBT_ERROR;
    for (int i = 0; i < n_in && !*missing; i++)
        if (s->dep[i] && !nbt_input_of(&s->in, s->inputs[i])) *missing = s->inputs[i];
    return NBT_OK;
}

/* A given input that no computed node depends on is a warning, not an error:
 * the same input files can serve predicting (no labels needed) and scoring. */
static int warn_unused(run_state *s, nb_node *skipped_loss, const nb_node *loss_needs)
{
    bool used[NBT_MAX_FEEDS], by_loss[NBT_MAX_FEEDS] = {0};
    if (nbt_depends_on(CMD, s->g, s->nodes, s->n_res, s->in.node, s->in.n, used) ||
        (skipped_loss && nbt_depends_on(CMD, s->g, &skipped_loss, 1, s->in.node, s->in.n, by_loss)))
        return NBT_ERROR;
    for (int i = 0; i < s->in.n; i++) {
        const char *name = nb_node_name(s->in.node[i]);
        if (used[i]) continue;
        if (by_loss[i])
            nbt_warn(CMD, "input '%s' is given but only the loss '%s' depends on it, which is not "
                          "computed without input '%s'", name, nb_node_name(skipped_loss),
                     nb_node_name(loss_needs));
        else
            nbt_warn(CMD, "input '%s' is given but no output%s depends on it", name,
                     nb_model_loss(s->m) ? " (nor the loss)" : "");
    }
    return NBT_OK;
}

/* Outputs, then the loss: each input an output needs must be given; the loss
 * is computed only when its inputs are given, unless --grad needs it. */
static int choose_results(run_state *s, bool grad)
{
    size_t n_in = nb_model_num_inputs(s->m);
    size_t cap = nb_model_num_outputs(s->m) + 2 * (nb_model_num_params(s->m) + n_in) + 2;
    nb_node *loss = nb_model_loss(s->m), *x = NULL;
    if (!(s->nodes = calloc(cap, sizeof *s->nodes)) || !(s->wrt = calloc(cap, sizeof *s->wrt)) ||
        !(s->inputs = calloc(n_in + 1, sizeof *s->inputs)) || !(s->dep = calloc(n_in + 1, sizeof *s->dep)))
        return nbt_fail(CMD, "out of memory");
    for (size_t i = 0; i < n_in; i++) s->inputs[i] = nb_model_input(s->m, i);
    for (size_t i = 0; i < nb_model_num_outputs(s->m); i++) {
        nb_node *y = nb_model_output(s->m, i);
        if (missing_input(s, y, &x)) return NBT_ERROR;
        if (x)
            return nbt_fail(CMD, "input '%s' is not given (--in %s=FILE.npy): output '%s' needs it",
                            nb_node_name(x), nb_node_name(x), nb_node_name(y));
        add_result(s, y);
    }
    if (grad && !loss) return nbt_fail(CMD, "--grad needs a model with a 'loss:'");
    if (loss && missing_input(s, loss, &x)) return NBT_ERROR;
    if (loss && x && grad)
        return nbt_fail(CMD, "--grad needs the loss '%s', which needs input '%s' (give --in %s=FILE.npy)",
                        nb_node_name(loss), nb_node_name(x), nb_node_name(x));
    if (loss && !x) add_result(s, loss);
    s->n_res = s->n_nodes;
    return warn_unused(s, loss && x ? loss : NULL, x);
}

/* With --grad: gradients of the loss for every trainable param and every float
 * input given (op state has none). */
static int add_gradients(run_state *s)
{
    nb_node *loss = nb_model_loss(s->m);
    for (size_t i = 0; i < nb_model_num_params(s->m); i++)  /* not op state: it has no gradient */
        if (nb_param_trainable(nb_model_param(s->m, i))) s->wrt[s->n_wrt++] = nb_model_param(s->m, i);
    for (size_t i = 0; i < nb_model_num_inputs(s->m); i++) {
        nb_node *x = nb_model_input(s->m, i);
        if (nb_node_dtype(x) != NB_I32 && nbt_input_of(&s->in, x)) s->wrt[s->n_wrt++] = x;
    }
    if (nb_grad(s->g, loss, s->wrt, s->n_wrt, s->nodes + s->n_nodes))
        return nbt_fail(CMD, "%s", nb_graph_error(s->g));
    s->n_nodes += s->n_wrt;  /* gradient nodes may repeat: each is written under its own name */
    return NBT_OK;
}

/* ---- running and writing -------------------------------------------------------- */

/* Creates the folder and its missing parents; *made (from malloc, NULL when
 * every folder was there) is the first one it created, for unmake_dir. */
static int make_dir(const char *path, char **made)
{
    char buf[4096];
    *made = NULL;
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return nbt_fail(CMD, "path too long");
    for (char *p = buf + 1;; p++) {
        bool end = !*p;
        if (*p != '/' && !end) continue;
        *p = 0;
        int r = mkdir(buf, 0777);
        if (r && errno != EEXIST) return nbt_fail(CMD, "cannot create folder %s: %s", buf, strerror(errno));
        if (!r && !*made && !(*made = strdup(buf))) return nbt_fail(CMD, "out of memory");
        if (end) break;
        *p = '/';
    }
    struct stat st;
    if (stat(path, &st) || !S_ISDIR(st.st_mode)) return nbt_fail(CMD, "%s is not a folder", path);
    return NBT_OK;
}

/* A run that fails leaves no folder it made: removes path and its parents up
 * to `made` while they are empty. */
static void unmake_dir(const char *path, char *made)
{
    char buf[4096];
    if (!made) return;
    snprintf(buf, sizeof buf, "%s", path);
    for (;;) {
        if (rmdir(buf) != 0 || !strcmp(buf, made)) break;
        char *slash = strrchr(buf, '/');
        if (!slash || slash == buf) break;
        *slash = 0;
    }
    free(made);
}

static int write_node(const nb_plan *p, nbt_stage *stage, const nb_node *n, const char *dir, const char *prefix,
                      const char *name)
{
    nb_tensor t = {.dtype = nb_node_dtype(n), .data = (void *)nb_plan_get(p, n)};
    char path[4096];
    t.rank = nb_plan_shape(p, n, t.shape);
    if (snprintf(path, sizeof path, "%s/%s%s.npy", dir, prefix, name) >= (int)sizeof path)
        return nbt_fail(CMD, "%s/%s%s.npy: path too long", dir, prefix, name);
    if (t.rank < 0 || !t.data) return nbt_fail(CMD, "node '%s' was not computed", nb_node_name(n));
    const char *tmp = nbt_stage_file(stage, path);
    if (!tmp) return NBT_ERROR;
    if (nb_npy_write(tmp, &t)) return nbt_fail(CMD, "%s: %s", path, nb_last_error());
    return NBT_OK;
}

/* Every file goes to a stage first and is moved in at the end: a run that
 * fails writes nothing (and removes the folder it made). */
static int write_all(const run_state *s, const nb_plan *p, const run_args *a)
{
    nbt_stage stage = {.cmd = CMD};
    char *made = NULL;
    int rc = make_dir(a->out, &made);
    for (int i = 0; i < s->n_res && !rc; i++)
        rc = write_node(p, &stage, s->nodes[i], a->out, "", nb_node_name(s->nodes[i]));
    for (int i = 0; i < s->n_wrt && !rc; i++)
        rc = write_node(p, &stage, s->nodes[s->n_res + i], a->out, "grad.", nb_node_name(s->wrt[i]));
    if (!rc && a->save) rc = save_weights(s, &stage, a->save);
    if (!rc) rc = nbt_stage_commit(&stage);
    else nbt_stage_discard(&stage);
    if (rc) unmake_dir(a->out, made);
    else free(made);
    return rc;
}

/* ---- the summary ------------------------------------------------------------------ */

/* What one written tensor holds: min, mean and max of its finite values, and
 * how many are NaN or infinite. */
typedef struct stats {
    size_t n, nan, inf;
    double min, mean, max;
} stats;

static double value_at(const nb_node *n, const void *data, size_t i)
{
    nb_dtype dt = nb_node_dtype(n);
    return dt == NB_F32 ? ((const float *)data)[i] : dt == NB_F64 ? ((const double *)data)[i]
                                                                  : ((const int32_t *)data)[i];
}

static stats stats_of(const nb_plan *p, const nb_node *n)
{
    int64_t shape[NB_MAX_DIMS];
    int rank = nb_plan_shape(p, n, shape);
    const void *data = nb_plan_get(p, n);
    stats st = {0};
    size_t finite = 0;
    double sum = 0;
    if (rank < 0 || nb_shape_numel(rank, shape, &st.n)) st.n = 0;
    for (size_t i = 0; data && i < st.n; i++) {
        double v = value_at(n, data, i);
        if (isnan(v)) st.nan++;
        else if (isinf(v)) st.inf++;
        else {
            st.min = finite ? fmin(st.min, v) : v;
            st.max = finite ? fmax(st.max, v) : v;
            sum += v;
            finite++;
        }
    }
    st.mean = finite ? sum / (double)finite : NAN;
    if (!finite) st.min = st.max = NAN;
    return st;
}

/* %.6g, but "nan" whatever the NaN's sign bit */
static const char *num(double v, char *buf)
{
    if (isnan(v)) snprintf(buf, 32, "nan");
    else snprintf(buf, 32, "%.6g", v);
    return buf;
}

/* One line: name, shape, dtype, then the value of a scalar or min/mean/max. */
static void print_summary_line(const nb_plan *p, const nb_node *n, const stats *st, const char *name,
                               int wname, int wshape)
{
    int64_t shape[NB_MAX_DIMS];
    int rank = nb_plan_shape(p, n, shape), len = 1;
    char sh[256] = "[";
    for (int k = 0; k < rank && len < 200; k++)
        len += snprintf(sh + len, sizeof sh - (size_t)len, "%s%lld", k ? ", " : "", (long long)shape[k]);
    snprintf(sh + len, sizeof sh - (size_t)len, "]");
    printf("  %-*s  %-*s  %s  ", wname, name, wshape, sh, nb_dtype_name(nb_node_dtype(n)));
    char a[32], b[32], c[32];
    if (rank == 0 && st->n == 1 && nb_plan_get(p, n))
        printf("%s\n", num(value_at(n, nb_plan_get(p, n), 0), a));
    else
        printf("min %s  mean %s  max %s\n", num(st->min, a), num(st->mean, b), num(st->max, c));
}

/* The name of result i's file without ".npy": NAME, or grad.NAME for a gradient. */
static const char *file_name(const run_state *s, int i, char *buf, size_t cap)
{
    bool grad = i >= s->n_res;
    snprintf(buf, cap, "%s%s", grad ? "grad." : "", nb_node_name(grad ? s->wrt[i - s->n_res] : s->nodes[i]));
    return buf;
}

/* Files written: a line each on stdout (unless quiet), and a warning on
 * stderr for each that holds NaN or infinite values. */
static void summarize(const run_state *s, const nb_plan *p, const run_args *a)
{
    int total = s->n_res + s->n_wrt, wname = 1, wshape = 1;
    char name[512];
    for (int i = 0; i < total; i++) {
        file_name(s, i, name, sizeof name);
        int64_t shape[NB_MAX_DIMS];
        int rank = nb_plan_shape(p, s->nodes[i], shape), ls = 2;
        for (int d = 0; d < rank; d++) ls += snprintf(NULL, 0, "%lld", (long long)shape[d]) + (d ? 2 : 0);
        if ((int)strlen(name) > wname) wname = (int)strlen(name);
        if (ls > wshape) wshape = ls;
    }
    if (!a->quiet) printf("wrote %d file%s to %s:\n", total, total == 1 ? "" : "s", a->out);
    for (int i = 0; i < total; i++) {
        const nb_node *n = s->nodes[i];
        file_name(s, i, name, sizeof name);
        stats st = stats_of(p, n);
        if (!a->quiet) print_summary_line(p, n, &st, name, wname, wshape);
        if (st.nan || st.inf)
            nbt_warn(CMD, "%s.npy holds %zu NaN and %zu infinite value%s (of %zu)", name, st.nan, st.inf,
                     st.inf == 1 ? "" : "s", st.n);
    }
}

static int run_plan(run_state *s, const run_args *a)
{
    nb_plan *p = NULL;
    if (nb_plan_new(s->g, s->nodes, s->n_nodes, &p)) return nbt_fail(CMD, "%s", nb_graph_error(s->g));
    nb_status st = nb_plan_set_training(p, a->training);
    nb_plan_set_seed(p, a->seeded ? a->seed : nb_model_train(s->m)->seed);
    if (!st) st = nb_plan_bind(p, a->dims.b, a->dims.n);
    for (int i = 0; i < s->in.n && !st; i++) st = nb_plan_set(p, s->in.node[i], s->in.t[i].data);
    const nb_node *bad = NULL;
    if (!st) st = a->anomaly ? nb_plan_run_checked(p, &bad) : nb_plan_run(p);
    if (!st && bad) {
        char what[1024];
        nb_plan_anomaly(p, bad, what, sizeof what);
        nb_plan_free(p);
        return nbt_fail(CMD, "anomaly: %s", what);
    }
    int rc = st ? nbt_fail(CMD, "%s", nb_plan_error(p)) : write_all(s, p, a);
    if (!rc) summarize(s, p, a);
    nb_plan_free(p);
    return rc;
}

/* Before any work: -o is a folder (or nothing yet), and --save-weights may
 * be replaced: a nabla weights file, a file of the -o folder (the run's own),
 * or anything regular with --force. The files of the folder are checked as
 * they are moved in (nbt_stage_commit). */
static int check_outputs(const run_args *a)
{
    struct stat sb;
    if (stat(a->out, &sb) == 0 && !S_ISDIR(sb.st_mode)) return nbt_fail(CMD, "-o %s is not a folder", a->out);
    if (a->save && nbt_check_output(CMD, a->save, a->force || nbt_in_folder(a->save, a->out), true))
        return NBT_ERROR;
    return NBT_OK;
}

static int parse(int argc, char **argv, run_args *a)
{
    static const struct option opts[] = {
        {"in", required_argument, NULL, 'i'},      {"output", required_argument, NULL, 'o'},
        {"weights", required_argument, NULL, 'w'}, {"save-weights", required_argument, NULL, 's'},
        {"grad", no_argument, NULL, 'g'},          {"dim", required_argument, NULL, 'd'},
        {"mode", required_argument, NULL, 'm'},    {"seed", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},          {"quiet", no_argument, NULL, 'q'},
        {"detect-anomaly", no_argument, NULL, 'A'}, {"force", no_argument, NULL, 'F'},
        {0, 0, 0, 0}};
    int c, rc = NBT_OK;
    int64_t v = 0;
    optind = 0;
    opterr = 0;
    while (!rc && (c = getopt_long(argc, argv, ":ho:q", opts, NULL)) != -1) {
        switch (c) {
        case 'h': nbt_usage_run(stdout); return -1;
        case 'i': rc = nbt_parse_feed(CMD, optarg, &a->feeds); break;
        case 'o': a->out = optarg; break;
        case 'w': a->weights = optarg; break;
        case 's': a->save = optarg; break;
        case 'g': a->grad = true; break;
        case 'q': a->quiet = true; break;
        case 'A': a->anomaly = true; break;
        case 'F': a->force = true; break;
        case 'd': rc = nbt_parse_dim(CMD, optarg, &a->dims); break;
        case 'm': rc = nbt_parse_mode(CMD, optarg, &a->training); break;
        case 'e':
            rc = nbt_parse_i64(CMD, "--seed", optarg, 0, &v);
            a->seed = (uint64_t)v, a->seeded = true;
            break;
        default: return nbt_bad_usage(CMD, c, argv[optind - 1]);
        }
    }
    if (rc) return rc;
    if (argc - optind < 1) return nbt_fail(CMD, "needs one MODEL file (see 'nabla run --help')");
    if (nbt_extra_args(CMD, argc, argv, optind, 1)) return NBT_ERROR;
    if (!a->out) return nbt_fail(CMD, "needs -o DIR");
    a->model = argv[optind];
    return check_outputs(a);
}

int nbt_cmd_run(int argc, char **argv)
{
    run_args a = {0};
    run_state s = {0};
    int rc = parse(argc, argv, &a);
    if (rc) return rc < 0 ? NBT_OK : rc;
    if (nbt_load(CMD, a.model, false, &s.m)) return NBT_ERROR;
    s.g = nb_model_graph(s.m);
    rc = nbt_check_dim_names(CMD, s.g, &a.dims);
    /* an ONNX model has no loss: --grad differentiates the sum of its outputs */
    if (!rc && a.grad && !nb_model_loss(s.m) && nbt_is_onnx(a.model)) rc = nbt_sum_loss(CMD, s.m, NULL, "sum_of_outputs");
    if (!rc) rc = nbt_read_inputs(CMD, s.m, &a.feeds, &a.dims, &s.in);
    if (!rc) rc = choose_results(&s, a.grad);
    if (!rc && a.weights) rc = nbt_load_weights(CMD, s.g, a.weights);
    if (!rc && a.grad) rc = add_gradients(&s);
    if (!rc) rc = run_plan(&s, &a);
    nbt_inputs_free(&s.in);
    free(s.nodes);
    free(s.wrt);
    free(s.inputs);
    free(s.dep);
    nb_model_free(s.m);
    return rc;
}

/* nabla bench MODEL: how fast a model's steps run, on random data of a
 * chosen batch size: forward only, forward and backward, and a whole
 * training step with the optimizer of its train section, each in a plan of
 * its own (freed before the next, so the peak RSS is the largest one's);
 * median and spread of the per-step wall time, samples/s, GFLOP/s from the
 * ops' FLOP counts and the share of them in GEMM ops, the arena, the peak
 * RSS and the OpenBLAS core. --profile adds each node's and each op type's
 * time in the training step (nbt_print_profile, shared with nabla train). */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "blas_core.h"
#include "cli.h"

char *openblas_get_corename(void);
char *openblas_get_config(void);

static const char *const CMD = "bench";

void nbt_usage_bench(FILE *f)
{
    fprintf(f,
            "usage: nabla bench MODEL [--batch B] [--steps S] [--warmup W] [--threads T]\n"
            "                         [--dim SYM=SIZE] [--profile] [--top K]\n"
            "Times the steps of MODEL on random data: forward only, forward + backward, and a\n"
            "full training step with the optimizer of its train section (adam by default),\n"
            "all in training mode (dropout drops). Per mode: median, 10th and 90th percentile\n"
            "of the wall time of one step, samples/s, GFLOP/s (from the ops' FLOP counts),\n"
            "MFLOP per step and the share of them in GEMM ops (matmul, conv); then the arena\n"
            "of the training step beside its widest live set (the least any arena could be),\n"
            "the peak RSS of the process and the OpenBLAS core.\n\n"
            "  --batch B        samples per step: every free dimension --dim does not name\n"
            "                   (default: the train section's batch)\n"
            "  --steps S        timed steps per mode (20)\n"
            "  --warmup W       untimed steps before them (3)\n"
            "  --threads T      threads of the plans (default 1, or $OPENBLAS_NUM_THREADS);\n"
            "                   with more than one, warm-up lasts 0.2 s at least\n"
            "  --dim SYM=SIZE   size of one free dimension\n"
            "  --profile        time every node of the training step: op types and the\n"
            "                   slowest nodes, sorted, with their share of the step\n"
            "  --top K          nodes listed by --profile (20; 0 = all)\n"
            "  -h, --help       this text\n\n"
            "example:\n"
            "  nabla bench examples/models/simple_convnet.yaml --batch 100 --profile\n");
}

typedef struct opts {
    const char *model;
    int64_t batch, steps, warmup, threads, top;
    nbt_dims dims;
    bool profile;
} opts;

static int parse_one(int c, const char *arg, opts *o)
{
    switch (c) {
    case 'b': return nbt_parse_i64(CMD, "--batch", arg, 1, &o->batch);
    case 's': return nbt_parse_i64(CMD, "--steps", arg, 1, &o->steps);
    case 'w': return nbt_parse_i64(CMD, "--warmup", arg, 0, &o->warmup);
    case 't': return nbt_parse_i64(CMD, "--threads", arg, 1, &o->threads);
    case 'k': return nbt_parse_i64(CMD, "--top", arg, 0, &o->top);
    case 'D': return nbt_parse_dim(CMD, arg, &o->dims);
    case 'p': return o->profile = true, NBT_OK;
    default: return NBT_OK;
    }
}

/* -1: --help was printed. */
static int parse(int argc, char **argv, opts *o)
{
    static const struct option longs[] = {
        {"batch", required_argument, NULL, 'b'},   {"steps", required_argument, NULL, 's'},
        {"warmup", required_argument, NULL, 'w'},  {"threads", required_argument, NULL, 't'},
        {"top", required_argument, NULL, 'k'},     {"dim", required_argument, NULL, 'D'},
        {"profile", no_argument, NULL, 'p'},       {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0}};
    *o = (opts){.batch = -1, .steps = 20, .warmup = 3, .threads = -1, .top = 20};
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longs, NULL)) != -1) {
        if (c == 'h') return nbt_usage_bench(stdout), -1;
        if (c == '?' || c == ':') return nbt_bad_usage(CMD, c, argv[optind - 1]);
        if (parse_one(c, optarg, o)) return NBT_ERROR;
    }
    if (argc - optind < 1) return nbt_fail(CMD, "needs one MODEL file (see 'nabla bench --help')");
    if (nbt_extra_args(CMD, argc, argv, optind, 1)) return NBT_ERROR;
    o->model = argv[optind];
    return NBT_OK;
}

/* ---- the graph: loss, gradients, optimizer step ------------------------------ */

enum { FWD, FWD_BWD, TRAIN, N_MODES };

typedef struct bench {
    opts o;
    nb_model *m;
    nb_graph *g;
    nb_node **outs[N_MODES];  /* each mode's outputs */
    int n_outs[N_MODES];
    nb_node **params, **grads;
    int n_params;
    nb_optimizer optimizer;
    nbt_dims dims;
    nb_rng rng;
    int threads;              /* of the plans (nbt_threads); OpenBLAS runs on one */
    /* results */
    double ms[N_MODES][3];    /* median, p10, p90 */
    double flops[N_MODES], gemm[N_MODES];
    size_t arena, live, held;
} bench;

static const char *const mode_name[N_MODES] = {"forward", "forward+backward", "train step"};

/* The optimizer of the train section (adam without one). */
static int optimizer(const nb_model *m, nb_optim_cfg *out)
{
    const nb_train_cfg *tc = nb_model_train(m);
    nb_optimizer type;
    if (nb_optimizer_parse(tc->optimizer, &type))
        return nbt_fail(CMD, "unknown optimizer '%s' in the train section", tc->optimizer);
    *out = (nb_optim_cfg){type, tc->lr, tc->momentum, tc->beta1, tc->beta2, tc->eps, tc->weight_decay};
    return NBT_OK;
}

static int collect_params(bench *b)
{
    size_t n = nb_model_num_params(b->m);
    b->params = calloc(n ? n : 1, sizeof *b->params);
    b->grads = calloc(n ? n : 1, sizeof *b->grads);
    if (!b->params || !b->grads) return nbt_fail(CMD, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (nb_param_trainable(nb_model_param(b->m, i))) b->params[b->n_params++] = nb_model_param(b->m, i);
    if (!b->n_params) return nbt_fail(CMD, "%s has no trainable param: nothing to train", b->o.model);
    return NBT_OK;
}

/* Outputs of each mode: {loss}, {loss, gradients}, {loss, step}. */
static int build(bench *b)
{
    nb_node *loss = nb_model_loss(b->m);
    nb_optim_cfg cfg;
    if (!loss) return nbt_fail(CMD, "%s names no loss: bench times training steps", b->o.model);
    if (collect_params(b) || optimizer(b->m, &cfg)) return NBT_ERROR;
    b->optimizer = cfg.type;
    nb_node *step = nb_optimize(b->g, loss, b->params, b->n_params, &cfg, b->grads);
    if (!step) return nbt_fail(CMD, "%s", nb_graph_error(b->g));
    for (int k = 0; k < N_MODES; k++) {
        int n = k == FWD_BWD ? 1 + b->n_params : k == TRAIN ? 2 : 1;
        if (!(b->outs[k] = calloc((size_t)n, sizeof *b->outs[k]))) return nbt_fail(CMD, "out of memory");
        b->outs[k][0] = loss;
        b->n_outs[k] = n;
    }
    memcpy(b->outs[FWD_BWD] + 1, b->grads, (size_t)b->n_params * sizeof *b->grads);
    b->outs[TRAIN][1] = step;
    return NBT_OK;
}

/* --dim, then --batch (or the train section's) for every other free dimension. */
static int bind_dims(bench *b)
{
    int64_t batch = b->o.batch > 0 ? b->o.batch : nb_model_train(b->m)->batch;
    b->dims = b->o.dims;
    if (nbt_check_dim_names(CMD, b->g, &b->dims)) return NBT_ERROR;
    for (int k = 0; k < nb_graph_num_syms(b->g); k++)
        if (!nbt_dim_value(&b->dims, nb_graph_sym(b->g, k)) &&
            nbt_bind(CMD, &b->dims, nb_graph_sym(b->g, k), batch, "--batch"))
            return NBT_ERROR;
    b->o.batch = batch;
    return NBT_OK;
}

/* ---- random inputs ----------------------------------------------------------- */

/* Classes of an i32 input: the last dim of the scores a loss reads it
 * against (input 1 of softmax_cross_entropy or nll_loss); 2 otherwise. */
static int64_t classes_of(const bench *b, nb_plan *p, const nb_node *labels)
{
    for (size_t i = 0; i < nb_graph_num_nodes(b->g); i++) {
        const nb_node *n = nb_graph_node(b->g, i);
        if (nb_node_num_inputs(n) < 2 || nb_node_input(n, 1) != labels) continue;
        if (strcmp(nb_node_op(n), "softmax_cross_entropy") && strcmp(nb_node_op(n), "nll_loss")) continue;
        int64_t shape[NB_MAX_DIMS];
        int rank = nb_plan_shape(p, nb_node_input(n, 0), shape);
        if (rank > 0 && shape[rank - 1] > 0) return shape[rank - 1];
    }
    return 2;
}

/* Floats U(0, 1) (like scaled pixels), labels valid class ids. */
static void fill_input(bench *b, nb_plan *p, nb_node *x)
{
    int64_t shape[NB_MAX_DIMS];
    size_t n;
    void *buf = nb_plan_input_buffer(p, x);
    int rank = nb_plan_shape(p, x, shape);
    if (!buf || rank < 0 || nb_shape_numel(rank, shape, &n)) return;  /* not read by this plan */
    nb_dtype dt = nb_node_dtype(x);
    uint64_t k = dt == NB_I32 ? (uint64_t)classes_of(b, p, x) : 1;
    for (size_t i = 0; i < n; i++) {
        if (dt == NB_I32) ((int32_t *)buf)[i] = (int32_t)(nb_rng_next(&b->rng) % k);
        else if (dt == NB_F32) ((float *)buf)[i] = (float)nb_rng_uniform(&b->rng);
        else ((double *)buf)[i] = nb_rng_uniform(&b->rng);
    }
}

/* ---- timing -------------------------------------------------------------------- */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* q-quantile of sorted v[0..n), linear between ranks (numpy's default). */
static double quantile(const double *v, size_t n, double q)
{
    double pos = q * (double)(n - 1);
    size_t i = (size_t)pos;
    return i + 1 < n ? v[i] + (pos - (double)i) * (v[i + 1] - v[i]) : v[n - 1];
}

/* FLOPs of one run of p, and how many of them are in GEMM ops. */
static int count_flops(bench *b, nb_plan *p, double *all, double *gemm)
{
    size_t n = nb_plan_profile(p, NULL, 0);
    nb_node_profile *r = calloc(n ? n : 1, sizeof *r);
    if (!r) return nbt_fail(CMD, "out of memory");
    nb_plan_profile(p, r, n);
    *all = *gemm = 0;
    for (size_t i = 0; i < n; i++) {
        double f = nb_node_flops(b->g, r[i].node, b->dims.b, b->dims.n);
        if (f <= 0) continue;
        *all += f;
        if (nbt_is_gemm_op(nb_node_op(r[i].node))) *gemm += f;
    }
    free(r);
    return NBT_OK;
}

static int run_ok(nb_plan *p)
{
    return nb_plan_run(p) ? nbt_fail(CMD, "%s", nb_plan_error(p)) : NBT_OK;
}

/* Warm-up, then the timed steps (profiled when asked): median, p10, p90 in ms. */
static int time_steps(bench *b, nb_plan *p, bool profile, double *ms)
{
    size_t n = (size_t)b->o.steps;
    double *t = calloc(n, sizeof *t);
    if (!t) return nbt_fail(CMD, "out of memory");
    int rc = NBT_OK;
    /* With several threads, warm up for 0.2 s at least: new worker threads
     * run slowly for their first milliseconds (a 2-thread matrix-product step
     * measured twice as long after 3 warm-up steps as after 0.2 s), which a
     * few short steps do not cover; the steady state is what a training run
     * sees. */
    double until = now() + (b->threads > 1 ? 0.2 : 0);
    for (int64_t s = 0; (s < b->o.warmup || now() < until) && !rc; s++) rc = run_ok(p);
    if (!rc && profile && nb_plan_set_profile(p, true)) rc = nbt_fail(CMD, "out of memory");
    for (size_t s = 0; s < n && !rc; s++) {
        double t0 = now();
        rc = run_ok(p);
        t[s] = 1e3 * (now() - t0);
    }
    qsort(t, n, sizeof *t, cmp_double);
    ms[0] = quantile(t, n, 0.5);
    ms[1] = quantile(t, n, 0.1);
    ms[2] = quantile(t, n, 0.9);
    free(t);
    return rc;
}

static int plan_for(bench *b, int mode, nb_plan **out)
{
    *out = NULL;
    if (nb_plan_new(b->g, b->outs[mode], b->n_outs[mode], out))
        return nbt_fail(CMD, "%s", nb_graph_error(b->g));
    nb_plan_set_training(*out, true);
    nb_plan_set_seed(*out, 1);
    if (nb_plan_set_threads(*out, b->threads) ||
        nb_plan_bind(*out, b->dims.b, b->dims.n)) return nbt_fail(CMD, "%s", nb_plan_error(*out));
    for (size_t i = 0; i < nb_model_num_inputs(b->m); i++) fill_input(b, *out, nb_model_input(b->m, i));
    return NBT_OK;
}

/* ---- the report ---------------------------------------------------------------- */

static void header(const bench *b)
{
    const char *config = openblas_get_config(), *core = openblas_get_corename();
    int blas = 0, threads = b->threads;
    if (config && !strncmp(config, "OpenBLAS ", 9)) blas = 9 + (int)strcspn(config + 9, " ");
    printf("nabla bench %s", b->o.model);
    if (*nb_model_name(b->m)) printf(" (%s)", nb_model_name(b->m));
    printf(": batch %lld", (long long)b->o.batch);
    for (int i = 0; i < b->dims.n; i++)
        printf("%s%s=%lld", i ? ", " : " (", b->dims.b[i].sym, (long long)b->dims.b[i].value);
    printf("%s, %d thread%s\n", b->dims.n ? ")" : "", threads, threads == 1 ? "" : "s");
    printf("BLAS: %.*s, core %s\n", blas ? blas : 8, blas ? config : "OpenBLAS", core ? core : "unknown");
    printf("%lld timed steps after %lld warm-up, per mode, in training mode\n\n", (long long)b->o.steps,
           (long long)b->o.warmup);
    printf("%-22s %9s %9s %9s %11s %9s %11s %7s\n", "mode", "median ms", "p10 ms", "p90 ms",
           "samples/s", "GFLOP/s", "MFLOP", "GEMM %");
}

static void report_mode(const bench *b, int mode)
{
    char name[64], rate[32];
    const double *ms = b->ms[mode];
    snprintf(name, sizeof name, mode == TRAIN ? "%s (%s)" : "%s", mode_name[mode],
             nb_optimizer_name(b->optimizer));
    nbt_commas((double)b->o.batch / (ms[0] * 1e-3), rate, sizeof rate);
    printf("%-22s %9.3f %9.3f %9.3f %11s %9.2f %11.4f %7.1f\n", name, ms[0], ms[1], ms[2], rate,
           b->flops[mode] / (ms[0] * 1e6), b->flops[mode] * 1e-6,
           b->flops[mode] > 0 ? 100 * b->gemm[mode] / b->flops[mode] : 0.0);
    fflush(stdout);
}

static void footer(const bench *b)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("\narena: %.2f MiB (training step; its widest live set %.2f MiB; its plan holds %.2f MiB "
           "in all)\n", (double)b->arena / 1048576.0, (double)b->live / 1048576.0,
           (double)b->held / 1048576.0);
    printf("peak RSS: %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);  /* ru_maxrss is in KiB */
}

/* One mode: its plan, timed. The training step's plan is kept in *keep (to
 * print its profile last), the others freed. */
static int measure(bench *b, int mode, nb_plan **keep)
{
    nb_plan *p;
    int rc = plan_for(b, mode, &p);
    if (!rc) rc = count_flops(b, p, &b->flops[mode], &b->gemm[mode]);
    if (!rc) rc = time_steps(b, p, b->o.profile && mode == TRAIN, b->ms[mode]);
    if (!rc && mode == TRAIN) {
        b->arena = nb_plan_arena_bytes(p);
        b->live = nb_plan_live_bytes(p);
        b->held = nb_plan_memory_bytes(p);
    }
    if (!rc) report_mode(b, mode);
    if (!rc && mode == TRAIN) *keep = p;
    else nb_plan_free(p);
    return rc;
}

static void bench_free(bench *b)
{
    for (int k = 0; k < N_MODES; k++) free(b->outs[k]);
    free(b->params);
    free(b->grads);
    nb_model_free(b->m);
}

int nbt_cmd_bench(int argc, char **argv)
{
    bench b = {0};
    int rc = parse(argc, argv, &b.o);
    if (rc) return rc < 0 ? NBT_OK : rc;
    b.threads = nbt_threads(b.o.threads);
    if (nbt_load(CMD, b.o.model, false, &b.m)) return NBT_ERROR;
    b.g = nb_model_graph(b.m);
    nb_rng_seed(&b.rng, 1);
    nb_plan *train = NULL;
    rc = build(&b);
    if (!rc) rc = bind_dims(&b);
    if (!rc) header(&b);
    for (int k = 0; k < N_MODES && !rc; k++) rc = measure(&b, k, &train);
    if (!rc) footer(&b);
    if (!rc && b.o.profile) {
        printf("\n");
        rc = nbt_print_profile(stdout, CMD, train, b.ms[TRAIN][0], (int)b.o.top);
    }
    nb_plan_free(train);
    bench_free(&b);
    return rc;
}

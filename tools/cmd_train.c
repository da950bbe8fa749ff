/* nabla train MODEL: the training loop of the library (train.h) with a
 * progress bar, a line per epoch, a CSV log, checkpoints after every epoch,
 * and SIGINT finishing the step, saving and exiting 130. */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blas_core.h"
#include "cli.h"
#include "plot.h"
#include "train_mpi.h"


static const char *const CMD = "train";

void nbt_usage_train(FILE *f)
{
    fprintf(f,
            "usage: nabla train MODEL [--epochs E] [--batch B] [--lr LR] [--optimizer NAME]\n"
            "                         [--seed S] [--data DIR] [--save W.safetensors]\n"
            "                         [--resume W.safetensors] [--threads T] [--log LOG.csv]\n"
            "                         [--plot LOSS.{png,svg,pdf}] [--profile] [--sync-bn]\n"
            "                         [--detect-anomaly] [--save-every N] [--force]\n"
            "Trains MODEL as its `train:` section says; each flag overrides that key. One line\n"
            "per epoch: train loss and accuracy, test (or validation) loss and accuracy,\n"
            "samples/s and time; a progress bar while an epoch runs, on a terminal.\n\n"
            "  --epochs E         epochs in all (a resumed run trains the ones left)\n"
            "  --batch B          samples per step\n"
            "  --lr LR            learning rate\n"
            "  --optimizer NAME   sgd, momentum, adagrad or adam\n"
            "  --seed S           shuffling and dropout (the model's `seed` initialises params)\n"
            "  --data DIR         where data files are, after the model's own folder\n"
            "                     (then $NABLA_DATA, then /usr/share/datasets/fashion-mnist)\n"
            "  --save W           checkpoint after every epoch (params, optimizer state, where\n"
            "                     training stands), written atomically: W is always a whole\n"
            "                     checkpoint, old or new; an existing W must be a nabla\n"
            "                     checkpoint or weights file (or give --force)\n"
            "  --save-every N     also checkpoint every N steps within an epoch\n"
            "  --resume W         continue from a checkpoint (--resume W --save W goes on\n"
            "                     saving to it)\n"
            "  --force            replace --save, --log and --plot files that nabla cannot\n"
            "                     tell are its own (never a link, FIFO, device or folder)\n"
            "  --threads T        threads of the step (default 1, or $OPENBLAS_NUM_THREADS):\n"
            "                     nabla splits its kernels and GEMMs over them, with\n"
            "                     OpenBLAS on one\n"
            "  --log LOG.csv      the epoch lines as CSV (appended to when resuming; rewritten\n"
            "                     atomically after every epoch)\n"
            "  --plot FILE        loss and accuracy per epoch, drawn after every epoch (the\n"
            "                     whole --log when given, else this run's epochs)\n"
            "  --detect-anomaly   check every value of every step; the first NaN or infinity\n"
            "                     stops training, naming the node, its op and the step\n"
            "  --profile          time every node of the training step; at the end, print\n"
            "                     the time per op type and the slowest nodes (nabla bench)\n"
            "  --sync-bn          under mpirun: average batchnorm's running statistics over\n"
            "                     the processes after every step (default: each its own;\n"
            "                     the checkpoint holds process 0's)\n"
            "  -h, --help         this text\n\n"
            "Ctrl-C finishes the step, saves the checkpoint (with --save) and exits with 130.\n\n"
            "Under mpirun with N > 1 processes (a build with MPI), training is data-parallel:\n"
            "--batch is the global batch (a multiple of N), each process computes the step on\n"
            "its N-th of every batch and the gradients are averaged; process 0 alone prints\n"
            "and saves. The weights are those of one process with the same batch, up to the\n"
            "order of the sums. mpirun ends the job on Ctrl-C (the last epoch's checkpoint\n"
            "stays). Run with --allow-run-as-root as root:\n"
            "  mpirun -n 2 nabla train examples/models/mnist_mlp.yaml --save mlp.safetensors\n\n"
            "example:\n"
            "  nabla train examples/models/mnist_mlp.yaml --epochs 1 --save mlp.safetensors\n");
}

typedef struct opts {
    const char *model, *data, *save, *resume, *log, *plot, *optimizer;
    int64_t epochs, batch, threads, seed, save_every;
    double lr;
    bool force;
    bool profile;
    bool sync_bn;
    bool anomaly;
} opts;

static int parse(int argc, char **argv, opts *o)
{
    static const struct option longs[] = {
        {"epochs", required_argument, NULL, 'e'}, {"batch", required_argument, NULL, 'b'},
        {"lr", required_argument, NULL, 'l'},     {"optimizer", required_argument, NULL, 'O'},
        {"seed", required_argument, NULL, 's'},   {"data", required_argument, NULL, 'd'},
        {"save", required_argument, NULL, 'S'},   {"resume", required_argument, NULL, 'r'},
        {"threads", required_argument, NULL, 't'}, {"log", required_argument, NULL, 'L'},
        {"plot", required_argument, NULL, 'P'},   {"profile", no_argument, NULL, 'f'},
        {"sync-bn", no_argument, NULL, 'B'},     {"detect-anomaly", no_argument, NULL, 'A'},
        {"save-every", required_argument, NULL, 'E'}, {"force", no_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},         {0, 0, 0, 0}};
    *o = (opts){.epochs = -1, .batch = -1, .threads = -1, .seed = -1, .lr = -1};
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longs, NULL)) != -1) {
        int rc = NBT_OK;
        if (c == 'h') return nbt_usage_train(stdout), -1;
        if (c == '?' || c == ':') return nbt_bad_usage(CMD, c, argv[optind - 1]);
        if (c == 'e') rc = nbt_parse_i64(CMD, "--epochs", optarg, 1, &o->epochs);
        if (c == 'b') rc = nbt_parse_i64(CMD, "--batch", optarg, 1, &o->batch);
        if (c == 't') rc = nbt_parse_i64(CMD, "--threads", optarg, 1, &o->threads);
        if (c == 'E') rc = nbt_parse_i64(CMD, "--save-every", optarg, 1, &o->save_every);
        if (c == 'F') o->force = true;
        if (c == 's') rc = nbt_parse_i64(CMD, "--seed", optarg, 0, &o->seed);
        if (c == 'l') rc = nbt_parse_double(CMD, "--lr", optarg, &o->lr);
        if (c == 'l' && !rc && !(o->lr > 0)) rc = nbt_fail(CMD, "--lr must be > 0; got %s", optarg);
        if (c == 'O') o->optimizer = optarg;
        if (c == 'd') o->data = optarg;
        if (c == 'S') o->save = optarg;
        if (c == 'r') o->resume = optarg;
        if (c == 'L') o->log = optarg;
        if (c == 'P') o->plot = optarg;
        if (c == 'f') o->profile = true;
        if (c == 'B') o->sync_bn = true;
        if (c == 'A') o->anomaly = true;
        if (rc) return rc;
    }
    if (argc - optind < 1) return nbt_fail(CMD, "needs one MODEL file (see 'nabla train --help')");
    if (nbt_extra_args(CMD, argc, argv, optind, 1)) return NBT_ERROR;
    if (o->save_every && !o->save) return nbt_fail(CMD, "--save-every needs --save W");
    o->model = argv[optind];
    return o->plot ? nbt_plot_check_output(CMD, o->plot) : NBT_OK;
}

/* The optimizer of the file, with --optimizer and --lr over it. */
static int optimizer(const nb_train_cfg *tc, const opts *o, nb_optim_cfg *out)
{
    const char *name = o->optimizer ? o->optimizer : tc->optimizer;
    nb_optimizer type;
    if (nb_optimizer_parse(name, &type))
        return nbt_fail(CMD, "unknown optimizer '%s': use sgd, momentum, adagrad or adam", name);
    *out = (nb_optim_cfg){type, tc->lr, tc->momentum, tc->beta1, tc->beta2, tc->eps, tc->weight_decay};
    if (o->optimizer && strcmp(o->optimizer, tc->optimizer)) {  /* the file's eps may be another's */
        out->eps = nb_optim_defaults(type).eps;
        if (!tc->present) out->lr = nb_optim_defaults(type).lr;
    }
    if (o->lr > 0) out->lr = o->lr;
    return NBT_OK;
}

/* The file's learning-rate schedule; a cosine spans the run's epochs unless
 * the file says otherwise. */
static nb_lr_schedule lr_schedule(const nb_train_cfg *tc, int64_t epochs)
{
    nb_lr_schedule s = {NB_LR_CONSTANT, 0, 0, 0, 0};
    if (!strcmp(tc->schedule, "cosine"))
        s = (nb_lr_schedule){NB_LR_COSINE, tc->schedule_epochs ? tc->schedule_epochs : epochs,
                             tc->min_lr, 0, 0};
    if (!strcmp(tc->schedule, "step")) s = (nb_lr_schedule){NB_LR_STEP, 0, 0, tc->every, tc->gamma};
    return s;
}

/* ---- SIGINT -------------------------------------------------------------- */

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* ---- progress ------------------------------------------------------------- */

typedef struct run {
    opts o;
    nb_model *m;
    nb_trainer *t;
    nb_dataset *train, *test;
    const char *test_name;   /* "test" or "validation" */
    char *log;               /* --log's text: rewritten whole after every epoch */
    size_t log_len;
    int failed;              /* a checkpoint within the epoch failed: its status */
    nbt_log rows;            /* this run's epochs, for --plot without --log */
    bool tty;
    nbt_mpi w;               /* the processes of mpirun (0 of 1 without) */
    bool lead;               /* process 0: prints, logs, plots and saves */
    bool everywhere;         /* the error is every process's (no MPI_Abort needed) */
} run;

static int save(run *r);

static bool progress(void *user, const nb_progress *p)
{
    run *r = user;
    if (r->o.save_every && p->batch % (size_t)r->o.save_every == 0 && p->batch < p->batches &&
        (r->failed = save(r)))
        return false;  /* the end of the epoch saves anyway */
    if (r->tty && (p->batch % 10 == 0 || p->batch == p->batches)) {
        const nb_metrics *s = &p->so_far;
        double rate = s->seconds > 0 ? (double)s->samples / s->seconds : 0;
        double left = rate > 0 ? (double)(p->batches - p->batch) * (double)s->samples / (double)p->batch / rate : 0;
        int width = 24, done = (int)((double)width * (double)p->batch / (double)p->batches);
        char bar[32], rs[32];
        for (int i = 0; i < width; i++) bar[i] = i < done ? '=' : i == done ? '>' : ' ';
        bar[width] = 0;
        nbt_commas(rate, rs, sizeof rs);
        fprintf(stderr, "\r  epoch %lld [%s] %zu/%zu  loss %.4f", (long long)p->epoch + 1, bar,
                p->batch, p->batches, s->loss);
        if (!isnan(s->accuracy)) fprintf(stderr, "  acc %.2f%%", 100 * s->accuracy);
        fprintf(stderr, "  %s samples/s  %.0f s left ", rs, left);
        fflush(stderr);
    }
    return !interrupted;
}

static void clear_bar(const run *r)
{
    if (r->tty) fprintf(stderr, "\r%*s\r", 110, "");
}

/* "0.4851" or "" for a value not measured */
static const char *num(double v, int digits, char *buf, size_t cap)
{
    if (isnan(v)) return "";
    snprintf(buf, cap, "%.*f", digits, v);
    return buf;
}

/* Appends to the log's text and writes it whole, atomically. */
static int log_add(run *r, const char *text, size_t n)
{
    char *p = realloc(r->log, r->log_len + n + 1);
    if (!p) return nbt_fail(CMD, "out of memory");
    memcpy(p + r->log_len, text, n + 1);
    r->log = p;
    r->log_len += n;
    return nb_file_write(r->o.log, r->log, r->log_len) ? nbt_fail(CMD, "%s", nb_last_error()) : NBT_OK;
}

static int report(run *r, const nb_metrics *tr, const nb_metrics *te)
{
    if (!r->lead) return NBT_OK;
    char rs[32], a[4][32];
    double rate = tr->seconds > 0 ? (double)tr->samples / tr->seconds : 0;
    nbt_commas(rate, rs, sizeof rs);
    printf("epoch %lld/%lld: train loss %.4f", (long long)nb_trainer_epochs(r->t),
           (long long)r->o.epochs, tr->loss);
    if (!isnan(tr->accuracy)) printf(" acc %.2f%%", 100 * tr->accuracy);
    if (te) {
        printf(" | %s loss %.4f", r->test_name, te->loss);
        if (!isnan(te->accuracy)) printf(" acc %.2f%%", 100 * te->accuracy);
    }
    printf(" | %s samples/s | %.1f s\n", rs, tr->seconds + (te ? te->seconds : 0));
    fflush(stdout);
    if (r->log) {
        char line[512];
        int n = snprintf(line, sizeof line, "%lld,%s,%s,%s,%s,%.1f,%.3f\n", (long long)nb_trainer_epochs(r->t),
                         num(tr->loss, 6, a[0], 32), num(tr->accuracy, 6, a[1], 32),
                         te ? num(te->loss, 6, a[2], 32) : "", te ? num(te->accuracy, 6, a[3], 32) : "", rate,
                         tr->seconds + (te ? te->seconds : 0));
        return log_add(r, line, (size_t)n);
    }
    return NBT_OK;
}

/* Keeps the epoch's numbers for --plot. */
static int remember(run *r, const nb_metrics *tr, const nb_metrics *te)
{
    double v[NBT_LOG_COLS] = {(double)nb_trainer_epochs(r->t), tr->loss, tr->accuracy,
                              te ? te->loss : NAN, te ? te->accuracy : NAN,
                              tr->seconds > 0 ? (double)tr->samples / tr->seconds : NAN,
                              tr->seconds + (te ? te->seconds : 0)};
    for (int c = 0; c < NBT_LOG_COLS; c++) {
        double *col = realloc(r->rows.col[c], (r->rows.n + 1) * sizeof *col);
        if (!col) return nbt_fail(CMD, "out of memory");
        col[r->rows.n] = v[c];
        r->rows.col[c] = col;
    }
    r->rows.n++;
    return NBT_OK;
}

/* The picture of --plot: the whole log when there is one (a resumed run's too). */
static int draw(run *r)
{
    if (!r->o.plot || !r->lead) return NBT_OK;
    if (!r->log) return nbt_plot_training(CMD, r->o.plot, nb_model_name(r->m), &r->rows);
    nbt_log whole;
    if (nbt_log_read(CMD, r->o.log, &whole)) return NBT_ERROR;
    int rc = nbt_plot_training(CMD, r->o.plot, nb_model_name(r->m), &whole);
    nbt_log_free(&whole);
    return rc;
}

static int save(run *r)
{
    if (!r->o.save || !r->lead) return NBT_OK;
    /* before every save: another process may have put something else there */
    if (nbt_check_output(CMD, r->o.save, r->o.force, true)) return NBT_ERROR;
    const char *meta[4] = {"model", nb_model_name(r->m), "nabla", NB_VERSION_STRING};
    if (nb_trainer_save(r->t, r->o.save, meta, 2)) return nbt_fail(CMD, "%s", nb_trainer_error(r->t));
    return NBT_OK;
}

/* ---- the run ---------------------------------------------------------------- */

static int load_data(run *r)
{
    const nb_train_cfg *tc = nb_model_train(r->m);
    if (nbt_load_data(CMD, r->m, r->o.data, false, true, &r->train)) return NBT_ERROR;
    r->test_name = "test";
    if (tc->validation > 0) {
        r->test_name = "validation";
        if (nb_dataset_split(r->train, tc->validation, &r->test))
            return nbt_fail(CMD, "%s", nb_dataset_error(r->train));
        return NBT_OK;
    }
    return nbt_load_data(CMD, r->m, r->o.data, true, false, &r->test);
}

/* Under mpirun: --batch is the global batch, split among the processes. */
static int parallel(run *r, int64_t batch)
{
    int n = r->w.size;
    if (n == 1) return NBT_OK;
    if (batch % n) {
        r->everywhere = true;  /* every process finds it: one message, no abort */
        if (!r->lead) return NBT_ERROR;
        return nbt_fail(CMD, "the batch (%lld%s) is the global batch, split among the %d "
                        "processes: it must be a multiple of %d (e.g. --batch %lld)", (long long)batch,
                        r->o.batch > 0 ? ", --batch" : ", the model's train: batch", n, n,
                        (long long)((batch + n - 1) / n * n));
    }
    if (nbt_mpi_attach(CMD, &r->w, r->t, r->o.sync_bn)) return NBT_ERROR;
    if (r->lead)
        printf("data-parallel: %d processes x %lld samples per step (global batch %lld)%s\n", n,
               (long long)(batch / n), (long long)batch, r->o.sync_bn ? ", batchnorm statistics averaged" : "");
    return NBT_OK;
}

#define LOG_HEADER "epoch,train_loss,train_acc,test_loss,test_acc,samples_per_s,elapsed_s\n"

/* A resumed run appends to a log nabla wrote (it starts with the header);
 * any other existing file is replaced only with --force. */
static int open_log(run *r)
{
    FILE *f = NULL;
    struct stat sb;
    bool there = lstat(r->o.log, &sb) == 0, ours = false;
    if (there && S_ISREG(sb.st_mode) && r->o.resume && (f = fopen(r->o.log, "r"))) {
        char head[sizeof LOG_HEADER] = "";
        ours = fread(head, 1, sizeof head - 1, f) == sizeof head - 1 && !strcmp(head, LOG_HEADER);
        if (ours && fseek(f, 0, SEEK_END) == 0 && sb.st_size > 0 && (r->log = malloc((size_t)sb.st_size + 1))) {
            rewind(f);
            r->log_len = fread(r->log, 1, (size_t)sb.st_size, f);
            r->log[r->log_len] = 0;
        }
        fclose(f);
        if (ours && !r->log) return nbt_fail(CMD, "%s: cannot read the log", r->o.log);
    }
    if (!ours && nbt_check_output(CMD, r->o.log, r->o.force, false)) return NBT_ERROR;
    return ours ? log_add(r, "", 0) : log_add(r, LOG_HEADER, strlen(LOG_HEADER));
}

/* Before the first epoch, so that a refusal costs nothing: --save (a
 * checkpoint being resumed from is one), --plot, --log. */
static int check_outputs(run *r)
{
    if (r->o.save && nbt_check_output(CMD, r->o.save, r->o.force, true)) return NBT_ERROR;
    if (r->o.plot && nbt_check_output(CMD, r->o.plot, r->o.force, false)) return NBT_ERROR;
    return r->o.log ? open_log(r) : NBT_OK;
}

static int setup(run *r)
{
    const nb_train_cfg *tc = nb_model_train(r->m);
    nb_trainer_cfg c = {.batch = r->o.batch > 0 ? r->o.batch : tc->batch, .shuffle = tc->shuffle,
                        .seed = r->o.seed >= 0 ? (uint64_t)r->o.seed : tc->seed};
    if (r->o.epochs < 0) r->o.epochs = tc->epochs;
    c.schedule = lr_schedule(tc, r->o.epochs);
    c.detect_anomaly = r->o.anomaly;
    int threads = nbt_threads(r->o.threads);
    if (optimizer(tc, &r->o, &c.optim) || load_data(r) || nbt_make_trainer(CMD, r->m, &c, &r->t))
        return NBT_ERROR;
    if (r->o.profile && nb_plan_set_profile(nb_trainer_plan(r->t, true), true))
        return nbt_fail(CMD, "out of memory");
    for (int training = 0; training < 2; training++) {
        nb_plan *p = nb_trainer_plan(r->t, training);
        if (p && nb_plan_set_threads(p, threads))
            return nbt_fail(CMD, "%s", nb_plan_error(p));
    }
    if (r->o.resume && nb_trainer_resume(r->t, r->o.resume))
        return nbt_fail(CMD, "%s", nb_trainer_error(r->t));
    if (parallel(r, c.batch)) return NBT_ERROR;
    return r->lead ? check_outputs(r) : NBT_OK;
}

static int epochs(run *r)
{
    while (nb_trainer_epochs(r->t) < r->o.epochs) {
        nb_metrics tr, te;
        nb_status st = nb_trainer_epoch(r->t, r->train, progress, r, &tr);
        clear_bar(r);
        if (st) return nbt_fail(CMD, "%s", nb_trainer_error(r->t));
        if (r->failed) return r->failed;  /* a checkpoint within the epoch */
        if (nb_trainer_mid_epoch(r->t)) {  /* interrupted */
            int rc = save(r);
            fprintf(stderr, "nabla train: interrupted in epoch %lld after %zu samples; %s\n",
                    (long long)nb_trainer_epochs(r->t) + 1, tr.samples,
                    r->o.save ? "saved the checkpoint" : "nothing saved (no --save)");
            return rc ? rc : 130;
        }
        if (r->test && nb_trainer_evaluate(r->t, r->test, &te, NULL))
            return nbt_fail(CMD, "%s", nb_trainer_error(r->t));
        if (report(r, &tr, r->test ? &te : NULL) || save(r) || remember(r, &tr, r->test ? &te : NULL) || draw(r)) return NBT_ERROR;
        if (interrupted) {
            fprintf(stderr, "nabla train: interrupted after epoch %lld; %s\n",
                    (long long)nb_trainer_epochs(r->t),
                    r->o.save ? "saved the checkpoint" : "nothing saved (no --save)");
            return 130;
        }
    }
    return NBT_OK;
}

int nbt_cmd_train(int argc, char **argv)
{
    run r = {.tty = isatty(2)};
    int rc = parse(argc, argv, &r.o);
    if (rc) return rc < 0 ? NBT_OK : rc;
    if (nbt_mpi_begin(CMD, &r.w)) return NBT_ERROR;
    r.lead = r.w.rank == 0;
    r.tty = r.tty && r.lead;
    if (nbt_load(CMD, r.o.model, false, &r.m)) return nbt_mpi_end(&r.w, NBT_ERROR, true);
    struct sigaction sa = {.sa_handler = on_sigint}, old;
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, &old);
    sigset_t intr;  /* a parent may have blocked it, and exec keeps that */
    sigemptyset(&intr);
    sigaddset(&intr, SIGINT);
    sigprocmask(SIG_UNBLOCK, &intr, NULL);
    rc = setup(&r);
    if (!rc) rc = epochs(&r);
    if ((rc == NBT_OK || rc == 130) && r.o.profile && r.lead)
        nbt_print_profile(stdout, CMD, nb_trainer_plan(r.t, true), 0, 20);
    if (!rc) nbt_mpi_summary(&r.w);
    /* before the trainer goes; a process stopping alone (an error, SIGINT) aborts the job,
     * as the others wait in the next allreduce */
    rc = nbt_mpi_end(&r.w, rc, !r.everywhere);
    sigaction(SIGINT, &old, NULL);
    free(r.log);
    nbt_log_free(&r.rows);
    nb_trainer_free(r.t);
    nb_dataset_free(r.train);
    nb_dataset_free(r.test);
    nb_model_free(r.m);
    return rc;
}

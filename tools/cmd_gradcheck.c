/* nabla gradcheck MODEL [options] | --op NAME | --op all: gradients against
 * central differences in f64, for a model (gradcheck_model.c) or for the
 * registered ops on their own test cases. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const CMD = "gradcheck";

void nbt_usage_gradcheck(FILE *f)
{
    fprintf(f,
            "usage: nabla gradcheck MODEL [options]\n"
            "       nabla gradcheck --op NAME|all [--eps E] [--atol A] [--rtol R] [--seed S]\n"
            "Loads MODEL in f64 and compares d loss / d x for every trainable param and float input\n"
            "with central differences; an element passes when |analytic - numeric| <= atol +\n"
            "rtol*|numeric|. Runs in training mode (dropout drops, batchnorm uses batch statistics)\n"
            "with the dropout masks fixed by --seed, unless --mode eval.\n"
            "Then checks the f32 kernels: the f32 plan's gradients against the f64 plan's at the\n"
            "same point pass when |g32 - g64| <= 1e-4*max|g64| + 1e-3*|g64|, max over the tensor\n"
            "but at least 1/100 of the largest gradient of all (not for a model of dtype f64).\n"
            "A NaN error fails.\n"
            "With --op, checks the named op (or every op) on its built-in cases, in f64 and f32.\n\n"
            "  --eps E          step of the central difference (1e-6)\n"
            "  --atol A         absolute tolerance (1e-5)\n"
            "  --rtol R         relative tolerance (1e-3)\n"
            "  --batch B        size of every free dimension --dim does not name (2)\n"
            "  --dim SYM=SIZE   size of one free dimension\n"
            "  --seed S         seed for random inputs, sampled elements and dropout masks (0)\n"
            "  --mode train|eval  the mode the model (or op) runs in (train)\n"
            "  --max-elems K    elements checked per tensor, a seeded sample (1000; 0 = all)\n"
            "  --in NAME=FILE   take an input from a .npy file instead of random data\n"
            "  --loss NODE      differentiate the sum of NODE's elements instead of the model's\n"
            "                   loss; an ONNX model, which has none, checks the sum of its\n"
            "                   float outputs\n"
            "                   (float inputs are U(-1, 1), labels valid class ids)\n"
            "  --range NAME=LO:HI  random values of float input NAME from U(LO, HI) instead,\n"
            "                   to stay in the ops' domains (e.g. --range x=0.1:2 before a log)\n"
            "  --op NAME|all    check primitive ops instead of a model\n"
            "  -h, --help       this text\n"
            "exit status: 0 all pass, 1 a mismatch, 2 an error\n\n"
            "examples:\n"
            "  nabla gradcheck examples/models/bn_dropout.yaml --batch 4 --seed 5\n"
            "  nabla gradcheck --op conv2d\n");
}

/* ---- ops on their cases ----------------------------------------------------- */

static void case_shapes(const nb_op_case *c, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < 6 && c->in[i] && len < cap; i++) {
        bool labels = !strncmp(c->in[i], "i32:", 4);
        len += (size_t)snprintf(buf + len, cap - len, "%s%s[%s]", i ? " " : "", labels ? "i32" : "",
                                c->in[i] + (labels ? 4 : 0));
    }
}

/* Shape of input `which` of a case, parsed from "2,3,4" (after "i32:"). */
static int case_shape(const nb_op_case *c, int which, int64_t *shape)
{
    const char *s = c->in[which];
    int rank = 0;
    if (!strncmp(s, "i32:", 4)) s += 4;
    while (*s && rank < NB_MAX_DIMS) {
        char *end;
        shape[rank++] = strtoll(s, &end, 10);
        if (end == s) break;
        s = *end == ',' ? end + 1 : end;
    }
    return rank;
}

/* The checked inputs of a case are its float inputs that carry a gradient,
 * in order; find which case input result k is. */
static int input_of_result(const nb_op_def *op, const nb_op_case *c, int k)
{
    uint64_t stop = op->no_grad | op->shape_only;
    for (int i = 0; i < 6 && c->in[i]; i++)
        if (strncmp(c->in[i], "i32:", 4) && !nb_needs_grad(stop, i) && k-- == 0) return i;
    return 0;
}

/* One case in f64 (against central differences) or f32 (against f64). */
static int check_case(const nb_op_def *op, int ci, bool f32, const nb_gc_opts *o, int *failed)
{
    const nb_op_case *c = &op->cases[ci];
    nb_gc_result res[6];
    int n = 0;
    char shapes[160], worst[96];
    if ((f32 ? nb_gradcheck_op_f32 : nb_gradcheck_op)(op, c, o, res, &n))
        return nbt_fail(CMD, "op %s, case %d%s: %s", op->name, ci, f32 ? " in f32" : "", nb_last_error());
    case_shapes(c, shapes, sizeof shapes);
    for (int k = 0; k < n; k++) {
        int64_t shape[NB_MAX_DIMS];
        int which = input_of_result(op, c, k), rank = case_shape(c, which, shape);
        nbt_unravel(res[k].worst, rank, shape, worst, sizeof worst);
        printf("%-22s  %4d  %-5c  %-5s  %-28s  %11.3e  %11.3e  %-12s  %7zu  %5zu  %s\n", op->name, ci,
               'a' + which, f32 ? "f32" : "f64", shapes, res[k].max_abs, res[k].max_rel, worst,
               res[k].checked, res[k].kinks, res[k].pass ? "pass" : "FAIL");
        *failed += !res[k].pass;
    }
    return NBT_OK;
}

static int check_op(const nb_op_def *op, const nb_gc_opts *o, int *failed)
{
    for (int ci = 0; ci < op->n_cases; ci++)
        if (check_case(op, ci, false, o, failed) || check_case(op, ci, true, o, failed)) return NBT_ERROR;
    return NBT_OK;
}

static int check_ops(const char *name, const nb_gc_opts *o)
{
    bool all = !strcmp(name, "all");
    const nb_op_def *one = all ? NULL : nb_op_find(name);
    if (!all && !one) {
        char hint[160];
        return nbt_fail(CMD, "no op named '%s'%s", name, nb_hint(hint, sizeof hint, nb_op_suggest(name)));
    }
    if (one && (!one->backward || !one->n_cases))
        return nbt_fail(CMD, "op %s has %s; nothing to check", name,
                        one->backward ? "no gradcheck cases" : "no gradient rule");
    int failed = 0;
    printf("%-22s  %4s  %-5s  %-5s  %-28s  %11s  %11s  %-12s  %7s  %5s  %s\n", "op", "case", "input",
           "dtype", "shapes", "max abs err", "max rel err", "worst at", "checked", "kinks", "result");
    for (size_t i = 0; i < nb_op_count(); i++) {
        const nb_op_def *op = nb_op_at(i);
        if ((one && op != one) || !op->backward) continue;  /* ops without a rule: nothing to check */
        if (check_op(op, o, &failed)) return NBT_ERROR;
    }
    printf("\n%s\n", failed ? "some gradients are wrong" : "all pass");
    return failed ? NBT_MISMATCH : NBT_OK;
}

/* ---- options ----------------------------------------------------------------- */

int nbt_parse_range(const char *cmd, char *s, nbt_gc_cfg *cfg)
{
    char *eq = strchr(s, '='), *colon = eq ? strchr(eq, ':') : NULL;
    if (!eq || eq == s || !colon)
        return nbt_fail(cmd, "--range needs NAME=LO:HI (like x=0.1:2), not '%s'", s);
    if (cfg->n_ranges == NBT_MAX_FEEDS) return nbt_fail(cmd, "too many --range options");
    nbt_range *r = &cfg->ranges[cfg->n_ranges];
    *colon = 0;
    int rc = nbt_parse_double(cmd, "--range (LO)", eq + 1, &r->lo);
    *colon = ':';
    if (!rc) rc = nbt_parse_double(cmd, "--range (HI)", colon + 1, &r->hi);
    if (rc) return rc;
    if (!isfinite(r->lo) || !isfinite(r->hi) || !(r->lo < r->hi))
        return nbt_fail(cmd, "--range %s: LO must be below HI, both finite", s);
    *eq = 0;
    r->name = s;
    for (int i = 0; i < cfg->n_ranges; i++)
        if (!strcmp(cfg->ranges[i].name, s)) return nbt_fail(cmd, "--range %s is given twice", s);
    cfg->n_ranges++;
    return NBT_OK;
}

static int parse(int argc, char **argv, nbt_gc_cfg *cfg, const char **op, const char **model,
                 const char **loss)
{
    static const struct option opts[] = {
        {"eps", required_argument, NULL, 'e'},      {"atol", required_argument, NULL, 'a'},
        {"rtol", required_argument, NULL, 'r'},     {"batch", required_argument, NULL, 'b'},
        {"seed", required_argument, NULL, 's'},     {"max-elems", required_argument, NULL, 'm'},
        {"dim", required_argument, NULL, 'd'},      {"in", required_argument, NULL, 'i'},
        {"op", required_argument, NULL, 'o'},       {"help", no_argument, NULL, 'h'},
        {"mode", required_argument, NULL, 'M'},     {"range", required_argument, NULL, 'R'},
        {"loss", required_argument, NULL, 'L'},     {0, 0, 0, 0}};
    int c, rc = NBT_OK;
    int64_t v = 0;
    optind = 0;
    opterr = 0;
    while (!rc && (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': nbt_usage_gradcheck(stdout); return -1;
        case 'e': rc = nbt_parse_double(CMD, "--eps", optarg, &cfg->opts.eps); break;
        case 'a': rc = nbt_parse_double(CMD, "--atol", optarg, &cfg->opts.atol); break;
        case 'r': rc = nbt_parse_double(CMD, "--rtol", optarg, &cfg->opts.rtol); break;
        case 'b': rc = nbt_parse_i64(CMD, "--batch", optarg, 1, &cfg->batch); break;
        case 's': rc = nbt_parse_i64(CMD, "--seed", optarg, 0, &v), cfg->opts.seed = (uint64_t)v; break;
        case 'm': rc = nbt_parse_i64(CMD, "--max-elems", optarg, 0, &v), cfg->opts.max_elems = (size_t)v; break;
        case 'd': rc = nbt_parse_dim(CMD, optarg, &cfg->dims); break;
        case 'i': rc = nbt_parse_feed(CMD, optarg, &cfg->feeds); break;
        case 'o': *op = optarg; break;
        case 'M': rc = nbt_parse_mode(CMD, optarg, &cfg->opts.training); break;
        case 'R': rc = nbt_parse_range(CMD, optarg, cfg); break;
        case 'L': *loss = optarg; break;
        default: return nbt_bad_usage(CMD, c, argv[optind - 1]);
        }
    }
    if (rc) return rc;
    if (!(cfg->opts.eps > 0) || cfg->opts.atol < 0 || cfg->opts.rtol < 0)
        return nbt_fail(CMD, "--eps must be > 0 and the tolerances >= 0");
    if (!*op && argc - optind < 1) return nbt_fail(CMD, "needs one MODEL file or --op (see 'nabla gradcheck --help')");
    if (*op && argc - optind > 0)
        return nbt_fail(CMD, "unexpected argument '%s' (--op takes no MODEL)", argv[optind]);
    if (nbt_extra_args(CMD, argc, argv, optind, 1)) return NBT_ERROR;
    *model = *op ? NULL : argv[optind];
    return NBT_OK;
}

int nbt_cmd_gradcheck(int argc, char **argv)
{
    nbt_gc_cfg cfg = NBT_GC_DEFAULTS;
    const char *op = NULL, *path = NULL, *loss = NULL;
    int rc = parse(argc, argv, &cfg, &op, &path, &loss);
    if (rc) return rc < 0 ? NBT_OK : rc;
    if (op) return check_ops(op, &cfg.opts);
    nb_model *m = NULL;
    if (nbt_load(CMD, path, true, &m)) return NBT_ERROR;
    /* the same file as it runs, for the f32 check; a model of dtype f64 has no f32 kernels to check */
    if (nb_model_dtype(m) == NB_F32 && nbt_load(CMD, path, false, &cfg.m32)) {
        nb_model_free(m);
        return NBT_ERROR;
    }
    /* made alike in the f64 and f32 models: the f32 check finds it by name */
    if ((loss || (!nb_model_loss(m) && nbt_is_onnx(path))) && (nbt_sum_loss(CMD, m, loss, "gradcheck.loss") ||
                                        (cfg.m32 && nbt_sum_loss(CMD, cfg.m32, loss, "gradcheck.loss")))) {
        nb_model_free(cfg.m32);
        nb_model_free(m);
        return NBT_ERROR;
    }
    rc = nbt_gradcheck_model(m, &cfg, stdout);
    if (!cfg.m32 && rc != NBT_ERROR) printf("\nthe model is f64: no f32 kernels to check\n");
    nb_model_free(cfg.m32);
    nb_model_free(m);
    return rc;
}

/* What nb_plan_run_checked found, in words (plan.h): PyTorch's anomaly mode
 * names the function whose result went non-finite; this names the node, its
 * op, whether it computes a gradient, what it holds and its inputs' state. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

typedef struct count {
    size_t nan, inf, n;
    bool known;
} count;

static count count_of(const nb_plan *p, const nb_node *n)
{
    count c = {0, 0, 0, false};
    const void *data = nb_plan_get(p, n);
    int64_t shape[NB_MAX_DIMS];
    int rank = nb_plan_shape(p, n, shape);
    if (!data || rank < 0 || (n->dtype != NB_F32 && n->dtype != NB_F64)) return c;
    if (nb_shape_numel(rank, shape, &c.n)) return c;
    c.known = true;
    for (size_t i = 0; i < c.n; i++) {
        double v = n->dtype == NB_F32 ? ((const float *)data)[i] : ((const double *)data)[i];
        c.nan += isnan(v) ? 1 : 0;
        c.inf += isinf(v) ? 1 : 0;  /* glibc's isinf is -1 for -inf */
    }
    return c;
}

/* Appends to buf at `at` (the length so far, or more once it is full). */
static int put(char *buf, size_t cap, int at, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int put(char *buf, size_t cap, int at, const char *fmt, ...)
{
    if (at < 0 || (size_t)at >= cap) return at;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + at, cap - (size_t)at, fmt, ap);
    va_end(ap);
    return k < 0 ? at : at + k;
}

int nb_plan_anomaly(const nb_plan *p, const nb_node *bad, char *buf, size_t cap)
{
    if (!buf || !cap) return 0;
    buf[0] = 0;
    if (!p || !bad) return 0;
    count c = count_of(p, bad);
    char what[96] = "NaN or infinite values";
    if (c.known) snprintf(what, sizeof what, "%zu NaN and %zu infinite of %zu values", c.nan, c.inf, c.n);
    const char *kind = bad->kind == NB_NODE_INPUT ? "input" : bad->kind == NB_NODE_PARAM ? "param"
                       : nb_node_is_grad(bad) ? "gradient node" : "node";
    int at = put(buf, cap, 0, "%s '%s'", kind, bad->name);
    if (bad->op) at = put(buf, cap, at, " (%s)", bad->op->name);
    at = put(buf, cap, at, " holds %s", what);
    if (!bad->op || bad->n_in == 0) return at;
    /* run_checked stops at the first non-finite value, so every input it made
     * was finite; inputs the plan holds are shown with their state */
    at = put(buf, cap, at, "; its inputs were finite:");
    for (int j = 0; j < bad->n_in; j++)
        at = put(buf, cap, at, "%s '%s'", j ? "," : "", bad->in[j]->name);
    return at;
}

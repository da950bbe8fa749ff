/* The --profile tables of nabla bench and nabla train: time per op type and
 * per node of a profiled plan (nb_plan_profile), slowest first, with each
 * one's share of the time its nodes took. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

bool nbt_is_gemm_op(const char *op)
{
    return !strncmp(op, "matmul", 6) || !strncmp(op, "conv", 4);
}

typedef struct op_total {
    const char *op;
    double seconds;
    int nodes;
} op_total;

static int by_seconds_op(const void *a, const void *b)
{
    double x = ((const op_total *)a)->seconds, y = ((const op_total *)b)->seconds;
    return (x < y) - (x > y);
}

static int by_seconds_node(const void *a, const void *b)
{
    double x = ((const nb_node_profile *)a)->seconds, y = ((const nb_node_profile *)b)->seconds;
    return (x < y) - (x > y);
}

/* Sums r[0..n) per op type into t (room for n); returns the number of types. */
static size_t per_op(const nb_node_profile *r, size_t n, op_total *t)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *op = nb_node_op(r[i].node);
        size_t j = 0;
        while (j < k && strcmp(t[j].op, op)) j++;
        if (j == k) t[k++] = (op_total){op, 0, 0};
        t[j].seconds += r[i].seconds;
        t[j].nodes++;
    }
    qsort(t, k, sizeof *t, by_seconds_op);
    return k;
}

static double pct(double part, double whole) { return whole > 0 ? 100 * part / whole : 0; }

static void print_ops(FILE *f, const op_total *t, size_t k, double total, double runs)
{
    fprintf(f, "%-32s %10s %7s %6s\n", "op type", "ms/step", "%", "nodes");
    for (size_t j = 0; j < k; j++)
        fprintf(f, "%-32s %10.4f %7.2f %6d\n", t[j].op, 1e3 * t[j].seconds / runs,
                pct(t[j].seconds, total), t[j].nodes);
}

/* The slowest `top` nodes (0: all), then what the others add up to. */
static void print_nodes(FILE *f, const nb_node_profile *r, size_t n, double total, double runs,
                        size_t top)
{
    int width = 24;
    size_t shown = top && top < n ? top : n;
    for (size_t i = 0; i < shown; i++) {
        int len = (int)strlen(nb_node_name(r[i].node));
        if (len > width) width = len < 60 ? len : 60;
    }
    fprintf(f, "%-*s %-32s %10s %7s\n", width, "node", "op", "ms/step", "%");
    for (size_t i = 0; i < shown; i++)
        fprintf(f, "%-*s %-32s %10.4f %7.2f\n", width, nb_node_name(r[i].node), nb_node_op(r[i].node),
                1e3 * r[i].seconds / runs, pct(r[i].seconds, total));
    double rest = 0;
    for (size_t i = shown; i < n; i++) rest += r[i].seconds;
    if (shown < n)
        fprintf(f, "(%zu more nodes: %.4f ms/step, %.2f %%)\n", n - shown, 1e3 * rest / runs,
                pct(rest, total));
}

int nbt_print_profile(FILE *f, const char *cmd, const nb_plan *p, double step_ms, int top)
{
    size_t n = nb_plan_profile(p, NULL, 0);
    nb_node_profile *r = calloc(n ? n : 1, sizeof *r);
    op_total *t = calloc(n ? n : 1, sizeof *t);
    if (!r || !t) {
        free(r);
        free(t);
        return nbt_fail(cmd, "out of memory");
    }
    nb_plan_profile(p, r, n);
    double total = 0, runs = 0;
    for (size_t i = 0; i < n; i++) {
        total += r[i].seconds;
        if ((double)r[i].runs > runs) runs = (double)r[i].runs;
    }
    if (runs == 0) runs = 1;
    fprintf(f, "profile of the training step, %.0f runs: its %zu nodes take %.3f ms per step", runs, n,
            1e3 * total / runs);
    if (step_ms > 0) fprintf(f, " (the median step: %.3f ms)", step_ms);
    fprintf(f, "\n\n");
    size_t k = per_op(r, n, t);
    print_ops(f, t, k, total, runs);
    fprintf(f, "\n");
    qsort(r, n, sizeof *r, by_seconds_node);
    print_nodes(f, r, n, total, runs, top > 0 ? (size_t)top : 0);
    free(r);
    free(t);
    return NBT_OK;
}

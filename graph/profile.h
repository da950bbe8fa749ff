/* Per-node run times of a plan (nb_plan_set_profile, nb_plan_profile): the
 * totals live here, indexed by plan node; graph/plan.c owns one per plan and
 * times each kernel only while profiling is on. Not installed. */
#ifndef NABLA_PROFILE_H
#define NABLA_PROFILE_H

#include "internal.h"

typedef struct nb__profile {
    double *seconds;
    uint64_t *runs;
    size_t n;
} nb__profile;

/* *pr holds zeroed totals for n plan nodes: allocated on the first call, then
 * cleared. NB_ERR_NOMEM leaves *pr as it was. */
nb_status nb__profile_start(nb__profile **pr, size_t n);
void nb__profile_free(nb__profile *pr);
/* CLOCK_MONOTONIC in seconds. */
double nb__profile_clock(void);
static inline void nb__profile_add(nb__profile *pr, size_t i, double seconds)
{
    pr->seconds[i] += seconds;
    pr->runs[i]++;
}
/* Records of the plan nodes nodes[i] with runs[i] and an op (the steps), in
 * order; fills out[0..cap), returns how many. pr may be NULL (zeros). */
size_t nb__profile_report(const nb__profile *pr, nb_node *const *nodes, const bool *runs, size_t n,
                          nb_node_profile *out, size_t cap);

#endif

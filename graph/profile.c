/* Per-node run times of a plan: see profile.h and include/nabla/plan.h. */
#include "profile.h"

#include <string.h>
#include <time.h>

nb_status nb__profile_start(nb__profile **pr, size_t n)
{
    nb__profile *p = *pr;
    if (!p) {
        if (!(p = nb_calloc(1, sizeof *p))) return NB_ERR_NOMEM;
        p->seconds = nb_calloc(n ? n : 1, sizeof *p->seconds);
        p->runs = nb_calloc(n ? n : 1, sizeof *p->runs);
        p->n = n;
        if (!p->seconds || !p->runs) {
            nb__profile_free(p);
            return NB_ERR_NOMEM;
        }
        *pr = p;
    }
    memset(p->seconds, 0, p->n * sizeof *p->seconds);
    memset(p->runs, 0, p->n * sizeof *p->runs);
    return NB_OK;
}

void nb__profile_free(nb__profile *pr)
{
    if (!pr) return;
    nb_free(pr->seconds);
    nb_free(pr->runs);
    nb_free(pr);
}

double nb__profile_clock(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

size_t nb__profile_report(const nb__profile *pr, nb_node *const *nodes, const bool *runs, size_t n,
                          nb_node_profile *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!runs[i] || !nodes[i]->op) continue;
        if (k < cap)
            out[k] = (nb_node_profile){nodes[i], pr && i < pr->n ? pr->seconds[i] : 0,
                                       pr && i < pr->n ? pr->runs[i] : 0};
        k++;
    }
    return k;
}

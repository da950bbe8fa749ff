/* Seeded shuffles of the sample order, one per epoch.
 *
 * Fisher-Yates with an unbiased bounded draw: a plain `r % bound` favours
 * small results whenever bound does not divide 2^64, so draws below
 * 2^64 mod bound are rejected and redrawn. Everything is 64-bit integer
 * arithmetic on nb_rng (xoshiro256**), so a (seed, epoch) pair gives the same
 * permutation on every machine. */
#include "nabla/data.h"

/* A uniform integer in [0, bound), bound >= 1. */
static uint64_t below(nb_rng *r, uint64_t bound)
{
    uint64_t reject = (0 - bound) % bound; /* 2^64 mod bound */
    uint64_t x;
    do x = nb_rng_next(r);
    while (x < reject);
    return x % bound;
}

void nb_shuffle(uint64_t seed, uint64_t epoch, size_t *perm, size_t n)
{
    if (!perm) return;
    nb_rng r;
    nb_rng_seed(&r, seed ^ nb_mix64(epoch));
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)below(&r, i);
        size_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

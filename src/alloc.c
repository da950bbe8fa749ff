/* nabla's allocator: plain malloc with a counter, so tests can prove that a
 * planned step allocates nothing. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "nabla/core.h"

static _Atomic uint64_t alloc_calls;

void *nb_malloc(size_t n)
{
    atomic_fetch_add_explicit(&alloc_calls, 1, memory_order_relaxed);
    return malloc(n ? n : 1);
}

void *nb_calloc(size_t n, size_t size)
{
    atomic_fetch_add_explicit(&alloc_calls, 1, memory_order_relaxed);
    return calloc(n ? n : 1, size ? size : 1);
}

void *nb_realloc(void *p, size_t n)
{
    atomic_fetch_add_explicit(&alloc_calls, 1, memory_order_relaxed);
    return realloc(p, n ? n : 1);
}

void nb_free(void *p) { free(p); }

uint64_t nb_alloc_count(void) { return atomic_load_explicit(&alloc_calls, memory_order_relaxed); }

/* ---- the memory limit ------------------------------------------------------
 * One tensor or one plan arena larger than this is refused with a message
 * before anything is allocated: a 200-byte model declaring an 8 GB param
 * should get an error, not the OOM killer. */
static _Atomic size_t memory_limit;  /* 0: the default */

void nb_set_memory_limit(size_t bytes) { atomic_store(&memory_limit, bytes); }

size_t nb_memory_limit(void)
{
    size_t set = atomic_load(&memory_limit);
    if (set) return set;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return SIZE_MAX;
    double bytes = 0.8 * (double)pages * (double)page;
    return bytes >= (double)SIZE_MAX ? SIZE_MAX : (size_t)bytes;
}

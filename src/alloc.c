/* nabla's allocator: plain malloc with a counter, so tests can prove that a
 * planned step allocates nothing. */
#include <stdatomic.h>
#include <stdlib.h>

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

/* Symbolic dimensions: c * prod(sym_k ^ e_k). Enough algebra for shape rules
 * to multiply (flatten), divide (reshape with -1) and compare dimensions that
 * involve free sizes such as the batch N. */
#include <stdint.h>
#include <string.h>

#include "nabla/op.h"

nb_sdim nb_sdim_const(int64_t c)
{
    nb_sdim d;
    memset(&d, 0, sizeof d);
    d.c = c;
    return d;
}

bool nb_sdim_is_const(nb_sdim d)
{
    for (int k = 0; k < NB_MAX_SYMS; k++)
        if (d.e[k]) return false;
    return true;
}

bool nb_sdim_eq(nb_sdim a, nb_sdim b) { return a.c == b.c && !memcmp(a.e, b.e, sizeof a.e); }

bool nb_sdim_is(nb_sdim d, int64_t c) { return d.c == c && nb_sdim_is_const(d); }

bool nb_sdim_mul(nb_sdim a, nb_sdim b, nb_sdim *out)
{
    nb_sdim r;
    if (__builtin_mul_overflow(a.c, b.c, &r.c)) return false;
    for (int k = 0; k < NB_MAX_SYMS; k++) {
        if (a.e[k] + b.e[k] > 255) return false;
        r.e[k] = (uint8_t)(a.e[k] + b.e[k]);
    }
    *out = r;
    return true;
}

bool nb_sdim_div(nb_sdim a, nb_sdim b, nb_sdim *out)
{
    nb_sdim r;
    if (b.c == 0 || a.c % b.c) return false;
    r.c = a.c / b.c;
    for (int k = 0; k < NB_MAX_SYMS; k++) {
        if (a.e[k] < b.e[k]) return false;
        r.e[k] = (uint8_t)(a.e[k] - b.e[k]);
    }
    *out = r;
    return true;
}

bool nb_sdim_add(nb_sdim a, nb_sdim b, nb_sdim *out)
{
    if (memcmp(a.e, b.e, sizeof a.e)) return false;
    nb_sdim r = a;
    if (__builtin_add_overflow(a.c, b.c, &r.c)) return false;
    *out = r;
    return true;
}

bool nb_shape_eq(const nb_shape *a, const nb_shape *b)
{
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (!nb_sdim_eq(a->d[i], b->d[i])) return false;
    return true;
}

bool nb_shape_numel_sym(const nb_shape *s, nb_sdim *out)
{
    nb_sdim n = nb_sdim_const(1);
    for (int i = 0; i < s->rank; i++)
        if (!nb_sdim_mul(n, s->d[i], &n)) return false;
    *out = n;
    return true;
}

/* Saturates at SIZE_MAX instead of wrapping (a wrapped count reads as a small
 * tensor, or 0 FLOPs); shapes that reach a kernel are checked long before. */
size_t nb_dims_numel(const nb_dims *s)
{
    size_t n = 1;
    for (int i = 0; i < s->rank; i++)
        if (s->d[i] < 0 || __builtin_mul_overflow(n, (size_t)s->d[i], &n)) return SIZE_MAX;
    return n;
}

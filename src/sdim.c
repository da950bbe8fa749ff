/* Symbolic dimensions: c * prod(sym_k ^ e_k). Enough algebra for shape rules
 * to multiply (flatten), divide (reshape with -1) and compare dimensions that
 * involve free sizes such as the batch N. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

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

size_t nb_dims_numel(const nb_dims *s)
{
    size_t n = 1;
    for (int i = 0; i < s->rank; i++) n *= (size_t)s->d[i];
    return n;
}

/* "N", "2N", "N*T" */
static int format_sdim(const nb_graph *g, nb_sdim d, char *buf, size_t cap)
{
    if (nb_sdim_is_const(d)) return snprintf(buf, cap, "%lld", (long long)d.c);
    size_t len = 0;
    int w = 0;
    if (d.c != 1) w = snprintf(buf, cap, "%lld", (long long)d.c);
    len += (size_t)(w > 0 ? w : 0);
    bool first = true;
    for (int k = 0; k < NB_MAX_SYMS; k++)
        for (int e = 0; e < d.e[k]; e++) {
            const char *name = g && k < g->n_syms ? g->sym[k] : "?";
            w = snprintf(len < cap ? buf + len : NULL, len < cap ? cap - len : 0, "%s%s",
                         first ? "" : "*", name);
            len += (size_t)(w > 0 ? w : 0);
            first = false;
        }
    return (int)len;
}

int nb_shape_format(const nb_graph *g, const nb_shape *s, char *buf, size_t cap)
{
    size_t len = 0;
    int w;
#define PUT(...)                                                                     \
    (w = snprintf(len < cap ? buf + len : NULL, len < cap ? cap - len : 0, __VA_ARGS__), \
     len += (size_t)(w > 0 ? w : 0))
    PUT("[");
    for (int i = 0; i < s->rank; i++) {
        if (i) PUT(", ");
        w = format_sdim(g, s->d[i], len < cap ? buf + len : NULL, len < cap ? cap - len : 0);
        len += (size_t)(w > 0 ? w : 0);
    }
    PUT("]");
#undef PUT
    return (int)len;
}

nb_status nb__bind_shape(const nb_graph *g, const nb_shape *s, const int64_t *sym_value,
                         nb_dims *out, char *err, size_t cap)
{
    out->rank = s->rank;
    for (int i = 0; i < s->rank; i++) {
        int64_t v = s->d[i].c;
        for (int k = 0; k < NB_MAX_SYMS; k++)
            for (int e = 0; e < s->d[i].e[k]; e++) {
                if (sym_value[k] < 1) {
                    snprintf(err, cap, "free dimension '%s' is not bound", g->sym[k]);
                    return NB_ERR_UNBOUND;
                }
                if (__builtin_mul_overflow(v, sym_value[k], &v)) {
                    snprintf(err, cap, "dimension %d overflows with the bound sizes", i);
                    return NB_ERR_OVERFLOW;
                }
            }
        out->d[i] = v;
    }
    return NB_OK;
}

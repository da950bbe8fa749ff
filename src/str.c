/* Strings: nabla's own copies, through nb_malloc like everything it frees,
 * and the rule for names. */
#include <string.h>

#include "base.h"

char *nb__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = nb_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

uint64_t nb__hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* Not isalnum(), which follows the locale: a model file must mean the same
 * on every machine. */
static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

bool nb__name_valid(const char *s)
{
    if (!s || !*s) return false;
    for (; *s; s++)
        if (!name_char(*s)) return false;
    return true;
}

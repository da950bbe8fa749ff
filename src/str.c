/* Strings: nabla's own copies, through nb_malloc like everything it frees. */
#include <string.h>

#include "base.h"

char *nb__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = nb_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

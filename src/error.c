/* The calling thread's message for failures of calls that have no handle
 * (file formats, tensor sets, op registration): rule 2 of core.h. */
#include <stdio.h>

#include "base.h"

static _Thread_local char last_error[NB_ERR_CAP];

const char *nb_last_error(void) { return last_error; }

char *nb__thread_err(void)
{
    last_error[0] = 0;
    return last_error;
}

nb_status nb__thread_fail(nb_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return st;
}

/* Running the `nabla` command as a separate process (its path comes from the
 * NABLA_TOOL environment variable), for the tests of the tool; linked with the
 * harness (testutil.h) into those tests only. Failures assert through Criterion. */
#ifndef NABLA_TOOLUTIL_H
#define NABLA_TOOLUTIL_H

#include "testutil.h"

typedef struct tool_result {
    int status;   /* exit status, or 128 + signal */
    char *out;    /* everything printed on stdout */
    char *err;    /* ... and on stderr */
} tool_result;

/* Runs `nabla ARGS...` (args ends with NULL); fails if NABLA_TOOL is unset or it cannot fork. */
tool_result tool_run(const char *const *args);
/* Frees what tool_run captured. */
void tool_result_free(tool_result *r);
/* tool_run of the arguments given. */
#define TOOL(...) tool_run((const char *const[]){__VA_ARGS__, NULL})

#endif

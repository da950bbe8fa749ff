/* Internal helpers of the ground floor (src/), which knows no graph: graph/
 * and ops/ build on these through graph/internal.h. Not installed. */
#ifndef NABLA_BASE_H
#define NABLA_BASE_H

#include <stdarg.h>
#include <stdio.h>  /* messages are formatted everywhere */

#include "nabla/nabla.h"

#define NB_ERR_CAP 1024

/* The thread's message for calls without a handle: nb__thread_err clears it
 * and returns its buffer (NB_ERR_CAP bytes), nb__thread_fail sets it. */
char *nb__thread_err(void);
nb_status nb__thread_fail(nb_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copy of a string through nb_malloc, or NULL. */
char *nb__strdup(const char *s);

/* Fills t from an init rule; `name` seeds its own random stream, so that
 * every param of a model draws different numbers from one seed. */
nb_status nb__init_tensor(nb_tensor *t, const nb_init *in, const char *name, char *err, size_t cap);

#endif

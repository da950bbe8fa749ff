/* Internal helpers of the ground floor (src/), which knows no graph: graph/
 * and ops/ build on these through graph/internal.h. Not installed. */
#ifndef NABLA_BASE_H
#define NABLA_BASE_H

#include <stdarg.h>
#include <stdio.h>  /* messages are formatted everywhere */

#include "nabla/nabla.h"

#define NB_ERR_CAP 1024

/* Worker threads (src/workers.c): n threads in all, the caller's included;
 * nb__workers_run runs fn over [0, n) in `parts` parts (<= the thread count). */
typedef struct nb__workers nb__workers;
nb_status nb__workers_new(int n, nb__workers **out);
void nb__workers_free(nb__workers *w);
int nb__workers_count(const nb__workers *w);
void nb__workers_run(nb__workers *w, int64_t n, int parts, nb_part_fn fn, void *arg);

/* The thread's message for calls without a handle: nb__thread_err clears it
 * and returns its buffer (NB_ERR_CAP bytes), nb__thread_fail sets it. */
char *nb__thread_err(void);
nb_status nb__thread_fail(nb_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copy of a string through nb_malloc, or NULL. */
char *nb__strdup(const char *s);
/* FNV-1a of len bytes: nb_strmap's hash, and the seed of each param's init
 * stream, so it must not change: a model's seed gives the same params in
 * every version. */
uint64_t nb__hash(const char *s, size_t len);
/* The one rule for the names of nodes, params and inputs, in the C API and in
 * model files alike (and of free dimensions in the C API; model files ask
 * identifiers there): not NULL, not empty, only ASCII letters, digits, '_',
 * '.' and '-', whatever the locale. */
bool nb__name_valid(const char *s);

/* Fills t from an init rule; `name` seeds its own random stream, so that
 * every param of a model draws different numbers from one seed. */
nb_status nb__init_tensor(nb_tensor *t, const nb_init *in, const char *name, char *err, size_t cap);

/* A string -> pointer hash table (src/strmap.c): O(1) finds, grows as
 * needed. Keys are not copied: each must stay valid and unchanged while it is
 * in the table (the graph's keys are node names, the loader's its entries'
 * names). Start from nb_strmap m = {0}; nb__strmap_free frees the table
 * itself, not keys or values. */
typedef struct nb_strmap_slot nb_strmap_slot;
typedef struct nb_strmap {
    nb_strmap_slot *slot;
    size_t cap, n;  /* cap: 0 or a power of two; n entries */
} nb_strmap;

/* Adds key -> value, or replaces the key and value of an equal key.
 * NB_ERR_ARG for a NULL key; NB_ERR_NOMEM when the table cannot grow. */
nb_status nb__strmap_put(nb_strmap *m, const char *key, void *value);
/* The value of key ("" is a key like any other), or NULL when it is absent
 * or NULL. A NULL value reads the same as an absent key. */
void *nb__strmap_get(const nb_strmap *m, const char *key);
/* The same for the key made of key's first len bytes. */
void *nb__strmap_getn(const nb_strmap *m, const char *key, size_t len);
/* Removes key; false when it was not there. */
bool nb__strmap_remove(nb_strmap *m, const char *key);
/* Visits the entries in table order (key and value may be NULL):
 *   for (size_t i = 0; nb__strmap_next(m, &i, &key, &value);) ...
 * The table must not change during the visit. */
bool nb__strmap_next(const nb_strmap *m, size_t *i, const char **key, void **value);
void nb__strmap_free(nb_strmap *m);

#endif

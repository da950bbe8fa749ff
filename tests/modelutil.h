/* Helpers of the model-loader tests (test_model.c, test_model_errors.c). */
#ifndef NABLA_MODELUTIL_H
#define NABLA_MODELUTIL_H
#include "testutil.h"

/* Loads yaml as "m.yaml"; status and model agree. */
nb_model *load(const char *yaml, nb_diags *d);
void print_diags(const nb_diags *d);
/* Loads yaml and asserts it loads without a message. */
nb_model *load_ok(const char *yaml);
/* The file must fail with exactly these messages, in this order. */
void expect_errors(const char *yaml, const char *const *want, size_t n);
#define EXPECT_ERRORS(yaml, ...)                                                    \
    do {                                                                            \
        const char *const want_[] = {__VA_ARGS__};                                  \
        expect_errors(yaml, want_, sizeof want_ / sizeof want_[0]);                 \
    } while (0)
#define EXPECT_ERROR(yaml, msg) EXPECT_ERRORS(yaml, msg)
/* Node `name` exists, has op `op` and prints its shape as `shape`. */
void check_node(nb_graph *g, const char *name, const char *op, const char *shape);
#endif

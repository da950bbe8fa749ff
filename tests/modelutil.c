/* Helpers of the model-loader tests: loading strings, expected errors, nodes. */
#include <criterion/criterion.h>
#include <string.h>

#include "modelutil.h"

nb_model *load(const char *yaml, nb_diags *d)
{
    nb_model *m = NULL;
    nb_status st = nb_model_load_string(yaml, strlen(yaml), "m.yaml", NULL, &m, d);
    cr_assert((st == NB_OK) == (m != NULL), "status %d but model %p", st, (void *)m);
    return m;
}

void print_diags(const nb_diags *d)
{
    for (size_t i = 0; i < d->n; i++) cr_log_info("%s", d->lines[i]);
}

nb_model *load_ok(const char *yaml)
{
    nb_diags d;
    nb_model *m = load(yaml, &d);
    if (!m) print_diags(&d);
    cr_assert_not_null(m, "expected the model to load; first error: %s", d.n ? d.lines[0] : "-");
    cr_assert_eq(d.n, 0);
    nb_diags_free(&d);
    return m;
}

/* The file must fail with exactly these messages, in this order. */
void expect_errors(const char *yaml, const char *const *want, size_t n)
{
    nb_diags d;
    nb_model *m = NULL;
    nb_status st = nb_model_load_string(yaml, strlen(yaml), "m.yaml", NULL, &m, &d);
    bool same = d.n == n;
    for (size_t i = 0; i < n && i < d.n; i++) same &= !strcmp(d.lines[i], want[i]);
    if (!same) print_diags(&d);
    cr_assert_eq(st, NB_ERR_FORMAT, "status %d", st);
    cr_assert_null(m, "a file with errors must not give a model");
    for (size_t i = 0; i < n && i < d.n; i++) cr_expect_str_eq(d.lines[i], want[i], "message %zu", i);
    cr_assert_eq(d.n, n, "%zu messages, expected %zu", d.n, n);
    nb_diags_free(&d);
}

void check_node(nb_graph *g, const char *name, const char *op, const char *shape)
{
    nb_node *n = nb_graph_find(g, name);
    cr_assert_not_null(n, "no node '%s'", name);
    cr_expect_str_eq(nb_node_op(n), op, "op of '%s'", name);
    char s[128];
    nb_node_shape_str(g, n, s, sizeof s);
    cr_expect_str_eq(s, shape, "shape of '%s'", name);
}

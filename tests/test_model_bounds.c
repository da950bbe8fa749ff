/* Model files that cost without bound are refused before libyaml builds a
 * document: aliases that expand to millions of values (a "billion laughs"
 * file) and nesting deeper than 64 levels. Ordinary anchors still work. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static nb_status load(const char *text, nb_diags *d)
{
    nb_model *m = NULL;
    *d = (nb_diags){0};
    nb_status st = nb_model_load_string(text, strlen(text), "m.yaml", NULL, &m, d);
    nb_model_free(m);
    return st;
}

/* Nine levels, each a list of ten aliases of the level below: 10^9 values. */
Test(model_bounds, alias_bombs_are_refused, .timeout = 20)
{
    char text[4096];
    int n = snprintf(text, sizeof text,
                     "nabla: 1\ninputs: {x: [2]}\nparams:\n  w:\n    shape: [2]\n    init:\n"
                     "      values:\n        - &a0 [1, 1]\n");
    for (int i = 1; i < 10; i++) {
        n += snprintf(text + n, sizeof text - (size_t)n, "        - &a%d [", i);
        for (int k = 0; k < 10; k++) n += snprintf(text + n, sizeof text - (size_t)n, "%s*a%d", k ? ", " : "", i - 1);
        n += snprintf(text + n, sizeof text - (size_t)n, "]\n");
    }
    snprintf(text + n, sizeof text - (size_t)n, "nodes:\n  - {name: y, op: mul, in: [x, w]}\n");
    nb_diags d;
    cr_expect_neq(load(text, &d), NB_OK);
    cr_assert_eq(d.n, 1);
    /* level 6 holds 10^6 values: the alias that crosses the bound is on its line */
    assert_has(d.lines[0], "m.yaml:14:");
    assert_has(d.lines[0], "aliases expand to more than 1000000 values");
    nb_diags_free(&d);
}

Test(model_bounds, deep_nesting_is_refused, .timeout = 20)
{
    size_t depth = 100000;
    char *text = malloc(2 * depth + 64);
    cr_assert_not_null(text);
    int n = sprintf(text, "nabla: 1\nname: ");
    memset(text + n, '[', depth);
    memset(text + n + depth, ']', depth);
    strcpy(text + n + 2 * depth, "\n");
    nb_diags d;
    cr_expect_neq(load(text, &d), NB_OK);
    cr_assert_eq(d.n, 1);
    assert_has(d.lines[0], "m.yaml:2:70: nesting deeper than 64 levels");
    nb_diags_free(&d);
    free(text);
}

/* Anchors and aliases of ordinary size load as before, also when an anchored
 * node is used many times. */
Test(model_bounds, ordinary_aliases_load)
{
    const char *text = "nabla: 1\n"
                       "inputs: {x: [N, 4]}\n"
                       "params:\n"
                       "  a: {shape: [4, 4], init: &init {normal: 0.1}}\n"
                       "  b: {shape: [4, 4], init: *init}\n"
                       "nodes:\n"
                       "  - &mm {name: h, op: matmul, in: [x, a]}\n"
                       "  - {name: y, op: matmul, in: [h, b]}\n"
                       "outputs: [y]\n";
    nb_diags d;
    cr_expect_eq(load(text, &d), NB_OK, "%s", d.n ? d.lines[0] : "");
    nb_diags_free(&d);
}

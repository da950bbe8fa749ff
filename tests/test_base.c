/* The ground floor's internal helpers (src/base.h): the string -> pointer
 * hash table nb_strmap, the name rule, string copies. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "base.h"

/* n distinct keys "k0", "k1", ... in one buffer of 16 bytes each. */
static char *make_keys(size_t n)
{
    char *keys = nb_malloc(16 * n);
    cr_assert_not_null(keys);
    for (size_t i = 0; i < n; i++) snprintf(keys + 16 * i, 16, "k%zu", i);
    return keys;
}

Test(strmap, an_empty_table_finds_nothing)
{
    nb_strmap m = {0};
    size_t i = 0;
    cr_expect_null(nb__strmap_get(&m, "a"));
    cr_expect_null(nb__strmap_getn(&m, "a", 1));
    cr_expect_not(nb__strmap_remove(&m, "a"));
    cr_expect_not(nb__strmap_next(&m, &i, NULL, NULL));
    nb__strmap_free(&m);
    nb__strmap_free(NULL);
}

Test(strmap, put_get_replace_remove)
{
    nb_strmap m = {0};
    int a, b, c;
    cr_assert_eq(nb__strmap_put(&m, "alpha", &a), NB_OK);
    cr_assert_eq(nb__strmap_put(&m, "beta", &b), NB_OK);
    cr_expect_eq(nb__strmap_get(&m, "alpha"), &a);
    cr_expect_eq(nb__strmap_get(&m, "beta"), &b);
    cr_expect_null(nb__strmap_get(&m, "gamma"));
    cr_expect_null(nb__strmap_get(&m, "alph"));
    cr_expect_null(nb__strmap_get(&m, "alphaa"));
    cr_assert_eq(nb__strmap_put(&m, "alpha", &c), NB_OK);  /* replaces */
    cr_expect_eq(nb__strmap_get(&m, "alpha"), &c);
    cr_expect_eq(m.n, 2);
    cr_expect(nb__strmap_remove(&m, "alpha"));
    cr_expect_not(nb__strmap_remove(&m, "alpha"));
    cr_expect_null(nb__strmap_get(&m, "alpha"));
    cr_expect_eq(nb__strmap_get(&m, "beta"), &b);
    cr_expect_eq(m.n, 1);
    nb__strmap_free(&m);
    cr_expect_eq(m.cap, 0);
}

Test(strmap, null_and_empty_keys)
{
    nb_strmap m = {0};
    int x;
    cr_expect_eq(nb__strmap_put(&m, NULL, &x), NB_ERR_ARG);
    cr_expect_eq(nb__strmap_put(NULL, "a", &x), NB_ERR_ARG);
    cr_expect_eq(m.n, 0);
    cr_expect_null(nb__strmap_get(&m, NULL));
    cr_expect_not(nb__strmap_remove(&m, NULL));
    cr_assert_eq(nb__strmap_put(&m, "", &x), NB_OK);  /* "" is a key like any other */
    cr_expect_eq(nb__strmap_get(&m, ""), &x);
    cr_expect_null(nb__strmap_get(&m, NULL));
    cr_expect_null(nb__strmap_get(NULL, ""));
    cr_expect(nb__strmap_remove(&m, ""));
    cr_expect_null(nb__strmap_get(&m, ""));
    nb__strmap_free(&m);
}

Test(strmap, keys_are_borrowed_not_copied)
{
    nb_strmap m = {0};
    char key[] = "w1";
    int x;
    const char *k = NULL;
    void *v = NULL;
    size_t i = 0;
    cr_assert_eq(nb__strmap_put(&m, key, &x), NB_OK);
    cr_assert(nb__strmap_next(&m, &i, &k, &v));
    cr_expect_eq(k, key);
    cr_expect_eq(v, &x);
    cr_expect_not(nb__strmap_next(&m, &i, &k, &v));
    nb__strmap_free(&m);
}

Test(strmap, getn_reads_a_prefix)
{
    nb_strmap m = {0};
    int a, ab;
    cr_assert_eq(nb__strmap_put(&m, "a", &a), NB_OK);
    cr_assert_eq(nb__strmap_put(&m, "a.b", &ab), NB_OK);
    const char *name = "a.b.c";
    cr_expect_eq(nb__strmap_getn(&m, name, 1), &a);
    cr_expect_eq(nb__strmap_getn(&m, name, 3), &ab);
    cr_expect_null(nb__strmap_getn(&m, name, 2));
    cr_expect_null(nb__strmap_getn(&m, name, 5));
    cr_expect_null(nb__strmap_getn(&m, name, 0));
    nb__strmap_free(&m);
}

/* Past several thousand keys: every key found, at most half full, and each
 * entry visited once. */
Test(strmap, grows_past_thousands_of_keys)
{
    enum { N = 20000 };
    char *keys = make_keys(N);
    nb_strmap m = {0};
    for (size_t i = 0; i < N; i++) cr_assert_eq(nb__strmap_put(&m, keys + 16 * i, keys + 16 * i), NB_OK);
    cr_expect_eq(m.n, N);
    cr_expect_geq(m.cap, 2 * (size_t)N);
    cr_expect_eq(m.cap & (m.cap - 1), 0, "capacity %zu is not a power of two", m.cap);
    for (size_t i = 0; i < N; i++) cr_assert_eq(nb__strmap_get(&m, keys + 16 * i), keys + 16 * i);
    cr_expect_null(nb__strmap_get(&m, "k20000"));
    size_t seen = 0;
    const char *k;
    void *v;
    for (size_t i = 0; nb__strmap_next(&m, &i, &k, &v); seen++) cr_assert_eq(k, v);
    cr_expect_eq(seen, N);
    nb__strmap_free(&m);
    nb_free(keys);
}

/* Removals in the middle of probe runs, wrapping round the end of the table:
 * random puts and removes checked against a plain array after every step. */
Test(strmap, removal_keeps_every_other_key_reachable)
{
    enum { KEYS = 300, STEPS = 30000 };
    char *keys = make_keys(KEYS);
    bool in[KEYS] = {false};
    size_t count = 0;
    uint64_t r = 12345;
    nb_strmap m = {0};
    for (int step = 0; step < STEPS; step++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        size_t k = (size_t)(r >> 33) % KEYS;
        char *key = keys + 16 * k;
        if ((r >> 20) & 1) {
            cr_assert_eq(nb__strmap_put(&m, key, key), NB_OK);
            count += !in[k];
            in[k] = true;
        } else {
            cr_assert_eq(nb__strmap_remove(&m, key), in[k], "step %d: removing %s", step, key);
            count -= in[k];
            in[k] = false;
        }
        cr_assert_eq(m.n, count);
        if (step % 97) continue;
        for (size_t j = 0; j < KEYS; j++)
            cr_assert_eq(nb__strmap_get(&m, keys + 16 * j), in[j] ? keys + 16 * j : NULL,
                         "step %d: %s", step, keys + 16 * j);
    }
    nb__strmap_free(&m);
    nb_free(keys);
}

Test(strmap, allocates_through_nb_malloc)
{
    nb_strmap m = {0};
    int x;
    uint64_t before = nb_alloc_count();
    cr_assert_eq(nb__strmap_put(&m, "x", &x), NB_OK);
    cr_expect_gt(nb_alloc_count(), before);
    before = nb_alloc_count();
    cr_expect_eq(nb__strmap_get(&m, "x"), &x);  /* finding allocates nothing */
    cr_expect_eq(nb_alloc_count(), before);
    nb__strmap_free(&m);
}

Test(names, the_one_rule)
{
    const char *good[] = {"x", "W1", "layer.0.weight", "a-b_c", "_", ".", "-", "0"};
    const char *bad[] = {"", "a b", "a/b", "a:b", "x\n", "caf\xc3\xa9", "a\tb", "[x]"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        cr_expect(nb__name_valid(good[i]), "'%s' should be a valid name", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_not(nb__name_valid(bad[i]), "'%s' should not be a valid name", bad[i]);
    cr_expect_not(nb__name_valid(NULL));
}

Test(names, the_graph_and_the_loader_apply_it)
{
    nb_graph *g = nb_graph_new();
    cr_expect_null(nb_input(g, "caf\xc3\xa9", NB_F32, 0, NULL));
    cr_expect_eq(nb_graph_status(g), NB_ERR_NAME);
    nb_graph_clear_error(g);
    cr_expect_not_null(nb_input(g, "a.b-c_1", NB_F32, 0, NULL), "%s", nb_graph_error(g));
    nb_graph_free(g);
    const char *yaml = "nabla: 1\nname: m\ninputs:\n  \"a b\": [2]\n"
                       "nodes:\n  - {name: y, op: relu, in: [\"a b\"]}\noutputs: [y]\n";
    nb_model *m = NULL;
    nb_diags d = {0};
    cr_expect_eq(nb_model_load_string(yaml, strlen(yaml), "m.yaml", NULL, &m, &d), NB_ERR_FORMAT);
    cr_expect_eq(d.n, 1);
    cr_expect(d.n && strstr(d.lines[0], "invalid name 'a b'"), "%s", d.n ? d.lines[0] : "");
    nb_diags_free(&d);
    nb_model_free(m);
}

Test(strings, copies_through_nb_malloc)
{
    uint64_t before = nb_alloc_count();
    char *s = nb__strdup("layer.0");
    cr_assert_not_null(s);
    cr_expect_str_eq(s, "layer.0");
    cr_expect_gt(nb_alloc_count(), before);
    nb_free(s);
}

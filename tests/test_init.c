/* Parameter init rules: statistics, seeds, explicit values. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "testutil.h"

static void stats(const nb_tensor *t, double *mean, double *std)
{
    size_t n = nb_tensor_numel(t);
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        double v = get_elem(t->dtype, t->data, i);
        s += v, s2 += v * v;
    }
    *mean = s / (double)n;
    *std = sqrt(s2 / (double)n - *mean * *mean);
}

Test(init, he_and_xavier_have_the_textbook_std)
{
    nb_graph *g = nb_graph_new();
    nb_node *he = nb_param(g, "he", NB_F32, 2, (int64_t[]){200, 300}, (nb_init){.kind = NB_INIT_HE, .seed = 1});
    nb_node *xa = nb_param(g, "xa", NB_F64, 2, (int64_t[]){200, 300}, (nb_init){.kind = NB_INIT_XAVIER, .seed = 1});
    nb_node *cv = nb_param(g, "cv", NB_F32, 4, (int64_t[]){30, 3, 5, 5}, (nb_init){.kind = NB_INIT_HE, .seed = 1});
    double m, s;
    stats(nb_param_value(he), &m, &s);
    cr_expect_lt(fabs(m), 0.005);
    cr_expect_lt(fabs(s - sqrt(2.0 / 200)), 0.002, "he std %g", s);
    stats(nb_param_value(xa), &m, &s);
    cr_expect_lt(fabs(s - sqrt(1.0 / 200)), 0.002, "xavier std %g", s);
    stats(nb_param_value(cv), &m, &s);  /* conv fan_in = C*KH*KW = 75 */
    cr_expect_lt(fabs(s - sqrt(2.0 / 75)), 0.01, "conv he std %g", s);
    nb_graph_free(g);
}

Test(init, uniform_normal_constant)
{
    nb_graph *g = nb_graph_new();
    nb_node *u = nb_param(g, "u", NB_F64, 1, (int64_t[]){10000}, (nb_init){.kind = NB_INIT_UNIFORM, .a = -2, .b = 3});
    nb_node *n = nb_param(g, "n", NB_F64, 1, (int64_t[]){10000}, (nb_init){.kind = NB_INIT_NORMAL, .a = 0.5});
    nb_node *c = nb_param(g, "c", NB_F32, 1, (int64_t[]){7}, (nb_init){.kind = NB_INIT_CONSTANT, .a = 1.5});
    const double *ud = nb_param_value(u)->data;
    for (int i = 0; i < 10000; i++) cr_assert(ud[i] >= -2 && ud[i] < 3);
    double m, s;
    stats(nb_param_value(u), &m, &s);
    cr_expect_lt(fabs(m - 0.5), 0.05);
    stats(nb_param_value(n), &m, &s);
    cr_expect_lt(fabs(s - 0.5), 0.02);
    for (int i = 0; i < 7; i++) cr_expect_eq(((float *)nb_param_value(c)->data)[i], 1.5f);
    nb_graph_free(g);
}

Test(init, same_seed_same_values_in_any_order)
{
    nb_graph *a = nb_graph_new(), *b = nb_graph_new();
    nb_init he = {.kind = NB_INIT_HE, .seed = 42};
    nb_node *a1 = nb_param(a, "W1", NB_F32, 2, (int64_t[]){4, 5}, he);
    nb_node *a2 = nb_param(a, "W2", NB_F32, 2, (int64_t[]){5, 3}, he);
    nb_node *b2 = nb_param(b, "W2", NB_F32, 2, (int64_t[]){5, 3}, he);
    nb_node *b1 = nb_param(b, "W1", NB_F32, 2, (int64_t[]){4, 5}, he);
    cr_expect(!memcmp(nb_param_value(a1)->data, nb_param_value(b1)->data, 20 * sizeof(float)));
    cr_expect(!memcmp(nb_param_value(a2)->data, nb_param_value(b2)->data, 15 * sizeof(float)));
    cr_expect(memcmp(nb_param_value(a1)->data, nb_param_value(a2)->data, 15 * sizeof(float)),
              "two params get different streams");
    he.seed = 43;
    nb_node *c1 = nb_param(b, "W1c", NB_F32, 2, (int64_t[]){4, 5}, he);
    cr_expect(memcmp(nb_param_value(a1)->data, nb_param_value(c1)->data, 20 * sizeof(float)));
    nb_graph_free(a);
    nb_graph_free(b);
}

Test(init, explicit_values_and_count_mismatch)
{
    nb_graph *g = nb_graph_new();
    double v[6] = {1, 2, 3, 4, 5, 6};
    nb_node *w = nb_param(g, "w", NB_F64, 2, (int64_t[]){2, 3},
                          (nb_init){.kind = NB_INIT_VALUES, .values = v, .n_values = 6});
    cr_assert_not_null(w);
    v[0] = 100;  /* the graph keeps its own copy */
    cr_expect_eq(((double *)nb_param_value(w)->data)[0], 1);
    cr_expect_eq(nb_param_reinit(g, w), NB_OK);
    cr_expect_eq(((double *)nb_param_value(w)->data)[5], 6);
    cr_expect_eq(((double *)nb_param_value(w)->data)[0], 1);
    cr_expect_null(nb_param(g, "bad", NB_F64, 1, (int64_t[]){4},
                            (nb_init){.kind = NB_INIT_VALUES, .values = v, .n_values = 6}));
    cr_expect_str_eq(nb_graph_error(g), "param 'bad': values has 6 numbers but the shape holds 4");
    nb_graph_free(g);
}

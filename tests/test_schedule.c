/* Learning-rate schedules (nb_lr_schedule): the rates of PyTorch's
 * CosineAnnealingLR and StepLR, applied by the trainer before each step, and
 * the `schedule` key of a model file's train section. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

/* CosineAnnealingLR's closed form, written out here rather than taken from
 * the library. */
static double cosine(double lr, double min_lr, double step, double total)
{
    return min_lr + (lr - min_lr) * (1 + cos(M_PI * step / total)) / 2;
}

Test(schedule, rates_follow_pytorch)
{
    nb_lr_schedule c = {NB_LR_COSINE, 4, 0.001, 0, 0};
    cr_expect(is_close(nb_lr_at(&c, 0.1, 0, 0, 10), 0.1, 0, 1e-15));
    cr_expect(is_close(nb_lr_at(&c, 0.1, 2, 0, 10), (0.1 + 0.001) / 2, 0, 1e-15));
    cr_expect(is_close(nb_lr_at(&c, 0.1, 3, 9, 10), cosine(0.1, 0.001, 39, 40), 0, 1e-15));
    cr_expect(is_close(nb_lr_at(&c, 0.1, 7, 3, 10), 0.001, 0, 1e-15), "past the horizon: the floor");
    nb_lr_schedule s = {NB_LR_STEP, 0, 0, 3, 0.5};
    double want[] = {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025};
    for (int e = 0; e < 7; e++) cr_expect(is_close(nb_lr_at(&s, 0.1, e, 5, 10), want[e], 0, 1e-15), "epoch %d", e);
    nb_lr_schedule k = {NB_LR_CONSTANT, 0, 0, 0, 0};
    cr_expect_eq(nb_lr_at(&k, 0.1, 5, 5, 10), 0.1);
    cr_expect_eq(nb_lr_at(NULL, 0.1, 5, 5, 10), 0.1);
}

/* w starts at 0 and every sample's gradient of mean(x * w) is 1, so plain
 * SGD leaves w = -(sum of the rates of the steps taken). */
static double train_sum_of_rates(nb_lr_schedule sched, int epochs)
{
    tmp_make();
    double ones[6] = {1, 1, 1, 1, 1, 1};
    write_npy_f64(tmp_path("x.npy"), 2, (int64_t[]){6, 1}, ones);
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", NB_F64, 2, (nb_dim[]){{0, "N"}, NB_DIM(1)});
    nb_node *w = nb_param(g, "w", NB_F64, 1, (int64_t[]){1}, NB_INIT(NB_INIT_ZEROS));
    nb_node *loss = nb_mean(g, nb_mul(g, x, w), NULL, 0, false);
    nb_trainer_cfg c = {.loss = loss, .optim = nb_optim_defaults(NB_SGD), .batch = 2,
                        .schedule = sched};
    c.optim.lr = 0.1;
    nb_trainer *t;
    cr_assert_eq(nb_trainer_new(g, &c, &t), NB_OK, "%s", nb_graph_error(g));
    cr_assert_eq(nb_trainer_feed(t, x, "x", 1), NB_OK, "%s", nb_trainer_error(t));
    nb_dataset *d;
    const char *names[] = {"x"}, *paths[] = {tmp_path("x.npy")};
    cr_assert_eq(nb_dataset_load_npy(names, paths, 1, &d), NB_OK, "%s", nb_last_error());
    for (int e = 0; e < epochs; e++) cr_assert_eq(nb_trainer_epoch(t, d, NULL, NULL, NULL), NB_OK, "%s", nb_trainer_error(t));
    double got = -((const double *)nb_param_value(w)->data)[0];
    nb_dataset_free(d);
    nb_trainer_free(t);
    nb_graph_free(g);
    tmp_remove();
    return got;
}

Test(schedule, the_trainer_sets_each_steps_rate)
{
    /* 3 steps per epoch */
    double want = 0;
    for (int s = 0; s < 9; s++) want += cosine(0.1, 0.01, s, 9);
    cr_expect(is_close(train_sum_of_rates((nb_lr_schedule){NB_LR_COSINE, 3, 0.01, 0, 0}, 3), want, 0, 1e-12));
    want = 3 * (0.1 + 0.1 + 0.05 + 0.05);
    cr_expect(is_close(train_sum_of_rates((nb_lr_schedule){NB_LR_STEP, 0, 0, 2, 0.5}, 4), want, 0, 1e-12));
    cr_expect(is_close(train_sum_of_rates((nb_lr_schedule){0}, 2), 0.6, 0, 1e-12));
}

Test(schedule, bad_schedules_are_refused)
{
    nb_graph *g = nb_graph_new();
    nb_node *w = nb_param(g, "w", NB_F64, 1, (int64_t[]){1}, NB_INIT(NB_INIT_ZEROS));
    nb_trainer_cfg c = {.loss = nb_sum(g, w, NULL, 0, false), .optim = nb_optim_defaults(NB_SGD),
                        .batch = 2, .schedule = {NB_LR_STEP, 0, 0, 0, 0.5}};
    nb_trainer *t;
    cr_expect_eq(nb_trainer_new(g, &c, &t), NB_ERR_ARG);
    assert_has(nb_graph_error(g), "step schedule needs every >= 1");
    c.schedule = (nb_lr_schedule){NB_LR_COSINE, 0, 0, 0, 0};
    cr_expect_eq(nb_trainer_new(g, &c, &t), NB_ERR_ARG);
    assert_has(nb_graph_error(g), "cosine schedule needs epochs >= 1");
    nb_graph_free(g);
}

static const nb_train_cfg *load(const char *train, nb_model **m, nb_diags *d)
{
    char text[1024];
    snprintf(text, sizeof text,
             "nabla: 1\ninputs: {x: [N, 2]}\nparams: {w: {shape: [2], init: ones}}\n"
             "nodes:\n  - {name: loss, op: sum, in: [x]}\nloss: loss\ntrain:\n%s", train);
    *d = (nb_diags){0};
    if (nb_model_load_string(text, strlen(text), "m.yaml", NULL, m, d)) return NULL;
    return nb_model_train(*m);
}

Test(schedule, model_files_say_it)
{
    nb_model *m;
    nb_diags d;
    const nb_train_cfg *t = load("  epochs: 3\n", &m, &d);
    cr_assert(t, "%s", d.n ? d.lines[0] : "");
    cr_expect_str_eq(t->schedule, "constant");
    nb_model_free(m);
    t = load("  schedule: cosine\n", &m, &d);
    cr_assert(t, "%s", d.n ? d.lines[0] : "");
    cr_expect_str_eq(t->schedule, "cosine");
    cr_expect_eq(t->schedule_epochs, 0);
    nb_model_free(m);
    t = load("  schedule: {type: cosine, min_lr: 0.0001, epochs: 7}\n", &m, &d);
    cr_assert(t, "%s", d.n ? d.lines[0] : "");
    cr_expect_eq(t->schedule_epochs, 7);
    cr_expect_eq(t->min_lr, 0.0001);
    nb_model_free(m);
    t = load("  schedule: {type: step, every: 5, gamma: 0.5}\n", &m, &d);
    cr_assert(t, "%s", d.n ? d.lines[0] : "");
    cr_expect_str_eq(t->schedule, "step");
    cr_expect_eq(t->every, 5);
    cr_expect_eq(t->gamma, 0.5);
    nb_model_free(m);
}

Test(schedule, model_file_errors_point_at_the_value)
{
    static const struct { const char *train, *msg; } bad[] = {
        {"  schedule: cosin\n", "m.yaml:8:13: unknown schedule 'cosin' (did you mean 'cosine'?)"},
        {"  schedule: {type: step, gamma: 2}\n", "m.yaml:8:33: 'gamma' must be in (0, 1); got 2"},
        {"  schedule: {every: 2}\n", "m.yaml:8:13: 'schedule' needs a 'type'"},
        {"  schedule: {type: step, evry: 2}\n", "m.yaml:8:26: unknown key 'evry' (did you mean 'every'?)"},
        {"  schedule: [cosine]\n", "m.yaml:8:13: 'schedule' must be a type"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nb_model *m = NULL;
        nb_diags d;
        cr_expect_null(load(bad[i].train, &m, &d), "%s", bad[i].train);
        cr_assert_gt(d.n, 0, "%s", bad[i].train);
        assert_has(d.lines[0], bad[i].msg);
        nb_diags_free(&d);
    }
}

/* `nabla check` and `nabla run --grad` (which writes a file per gradient,
 * so it is tested smaller) cost about linearly in the model's
 * size: 4x the layers cost well under 16x (the quadratic cost that made
 * `check` take 51 s on 16 000 dense layers). Measured as user CPU time (see
 * user_cpu_seconds). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <sys/resource.h>

#include "toolutil.h"

static void write_dense_chain(const char *path, int layers)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "nabla: 1\ninputs:\n  x: [N, 4]\nnodes:\n");
    const char *prev = "x";
    char name[32];
    for (int i = 0; i < layers; i++) {
        fprintf(f, "  - {name: d%d, layer: %s, in: [%s]%s}\n", i, i % 2 ? "batchnorm" : "dense", prev,
                i % 2 ? "" : ", units: 4, activation: tanh");
        snprintf(name, sizeof name, "d%d", i);
        prev = name;
    }
    fprintf(f, "  - {name: loss, op: sum, in: [%s]}\nloss: loss\n", prev);
    fclose(f);
}

/* The user CPU time of the tool's process, the least of two runs. */
static double tool_cpu(const char *const *args)
{
    double best = INFINITY;
    for (int k = 0; k < 2; k++) {
        double t0 = user_cpu_seconds(RUSAGE_CHILDREN);
        tool_result r = tool_run(args);
        cr_assert_eq(r.status, 0, "%s", r.err);
        tool_result_free(&r);
        best = fmin(best, user_cpu_seconds(RUSAGE_CHILDREN) - t0);
    }
    return best;
}

Test(tool_scale, check_is_linear, .init = tmp_make, .fini = tmp_remove, .timeout = 240)
{
    write_dense_chain(tmp_path("small.yaml"), 2000);
    write_dense_chain(tmp_path("large.yaml"), 8000);
    double small = tool_cpu((const char *const[]){"check", tmp_path("small.yaml"), NULL});
    double large = tool_cpu((const char *const[]){"check", tmp_path("large.yaml"), NULL});
    expect_linear(small, large, 0.1, "check: 2 000 layers %.2f s, 8 000 layers %.2f s", small, large);
}

Test(tool_scale, run_grad_is_linear, .init = tmp_make, .fini = tmp_remove, .timeout = 240)
{
    write_dense_chain(tmp_path("small.yaml"), 500);
    write_dense_chain(tmp_path("large.yaml"), 2000);
    double ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    write_npy_f64(tmp_path("x.npy"), 2, (int64_t[]){2, 4}, ones);
    char in[1100];
    snprintf(in, sizeof in, "x=%s", tmp_path("x.npy"));
    double small = tool_cpu((const char *const[]){"run", tmp_path("small.yaml"), "--in", in, "--grad",
                                                   "-q", "-o", tmp_path("o1"), NULL});
    double large = tool_cpu((const char *const[]){"run", tmp_path("large.yaml"), "--in", in, "--grad",
                                                   "-q", "-o", tmp_path("o2"), NULL});
    expect_linear(small, large, 0.2, "run --grad: 500 layers %.2f s, 2 000 layers %.2f s", small, large);
}

/* Adding n named tensors and metadata keys, saving, reading back and finding
 * every name: 4x the names cost well under 16x. */
static double set_round_trip_cpu(int n, const char *path, bool meta)
{
    double t0 = user_cpu_seconds(RUSAGE_SELF);
    nb_tensor_set set = {0}, back = {0};
    double v = 1;
    nb_tensor t = tensor_of(NB_F64, 0, NULL, &v);
    char name[32];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "layer%d.W", i);
        cr_assert_eq(nb_tensor_set_add(&set, name, &t), NB_OK, "%s", nb_last_error());
        if (meta) cr_assert_eq(nb_tensor_set_meta(&set, name, "x"), NB_OK);  /* .npz: 64 KiB at most */
    }
    cr_assert_eq(nb_tensor_set_add(&set, "layer0.W", &t), NB_ERR_NAME, "a taken name is refused");
    cr_assert_eq(nb_tensors_write(path, &set), NB_OK, "%s", nb_last_error());
    cr_assert_eq(nb_tensors_read(path, &back), NB_OK, "%s", nb_last_error());
    cr_assert_eq(back.n, (size_t)n);
    for (int i = n - 1; i >= 0; i--) {
        snprintf(name, sizeof name, "layer%d.W", i);
        cr_assert_not_null(nb_tensor_set_find(&back, name), "%s", name);
    }
    cr_expect_null(nb_tensor_set_find(&back, "layer.W"));
    nb_tensor_set_free(&set);
    nb_tensor_set_free(&back);
    nb_tensor_free(&t);
    return user_cpu_seconds(RUSAGE_SELF) - t0;
}

Test(tool_scale, weights_files_are_linear, .init = tmp_make, .fini = tmp_remove, .timeout = 240)
{
    const char *const paths[] = {"w.safetensors", "w.npz"};
    for (int k = 0; k < 2; k++) {
        double small = set_round_trip_cpu(5000, tmp_path(paths[k]), k == 0);
        double large = set_round_trip_cpu(20000, tmp_path(paths[k]), k == 0);
        expect_linear(small, large, 0.1, "%s: 5 000 tensors %.2f s, 20 000 tensors %.2f s", paths[k],
                      small, large);
    }
}

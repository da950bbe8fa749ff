/* Times forward + backward steps of a model file on random data:
 *   build/bench/bench_step MODEL [BATCH [STEPS]]
 * Prints the OpenBLAS core in use, ms per step, samples/s and GFLOP/s (FLOPs
 * of every node planned, forward and gradient nodes, from the ops' counts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nabla/nabla.h>

char *openblas_get_corename(void);

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void fill(nb_plan *p, nb_node *in, int64_t classes, nb_rng *rng)
{
    int64_t shape[NB_MAX_DIMS];
    size_t n;
    nb_shape_numel(nb_plan_shape(p, in, shape), shape, &n);
    void *buf = nb_plan_input_buffer(p, in);
    for (size_t i = 0; buf && i < n; i++) {
        if (nb_node_dtype(in) == NB_I32) ((int32_t *)buf)[i] = (int32_t)(nb_rng_next(rng) % (uint64_t)classes);
        else if (nb_node_dtype(in) == NB_F32) ((float *)buf)[i] = (float)nb_rng_uniform(rng);
        else ((double *)buf)[i] = nb_rng_uniform(rng);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [BATCH [STEPS]]\n", argv[0]);
        return 2;
    }
    int64_t batch = argc > 2 ? atoll(argv[2]) : 100, steps = argc > 3 ? atoll(argv[3]) : 20;
    nb_model *m;
    nb_diags d;
    if (nb_model_load_file(argv[1], NULL, &m, &d)) {
        for (size_t i = 0; i < d.n; i++) fprintf(stderr, "%s\n", d.lines[i]);
        return 2;
    }
    nb_graph *g = nb_model_graph(m);
    size_t np = nb_model_num_params(m);
    nb_node **outs = calloc(np + 1, sizeof *outs);
    outs[0] = nb_model_loss(m);
    for (size_t i = 0; i < np; i++) outs[i + 1] = nb_model_param(m, i);
    nb_plan *p;
    nb_bind b = {"N", batch};
    if (!outs[0] || nb_grad(g, outs[0], outs + 1, (int)np, outs + 1) ||
        nb_plan_new(g, outs, (int)np + 1, &p) || nb_plan_bind(p, &b, nb_graph_num_syms(g))) {
        fprintf(stderr, "%s\n", nb_graph_error(g));
        return 2;
    }
    double flops = 0;
    for (size_t i = 0; i < nb_graph_num_nodes(g); i++) {
        int64_t s[NB_MAX_DIMS];
        if (nb_plan_shape(p, nb_graph_node(g, i), s) >= 0) flops += nb_node_flops(g, nb_graph_node(g, i), &b, 1);
    }
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    for (size_t i = 0; i < nb_model_num_inputs(m); i++) fill(p, nb_model_input(m, i), 10, &rng);
    nb_plan_run(p);  /* warm up */
    double t0 = now();
    for (int64_t s = 0; s < steps; s++)
        if (nb_plan_run(p)) {
            fprintf(stderr, "%s\n", nb_plan_error(p));
            return 2;
        }
    double dt = (now() - t0) / (double)steps;
    printf("%s: batch %lld, OpenBLAS core %s\n", argv[1], (long long)batch, openblas_get_corename());
    /* OpenBLAS 0.3.21 does not know newer CPUs and falls back to its generic kernels */
    if (!strcmp(openblas_get_corename(), "Prescott") && __builtin_cpu_supports("avx2"))
        printf("(this CPU has AVX2: OPENBLAS_CORETYPE=Haswell selects faster kernels)\n");
    printf("%.3f ms per step (forward + backward), %.0f samples/s, %.2f GFLOP/s, arena %.1f MiB\n",
           1e3 * dt, (double)batch / dt, flops / dt * 1e-9, (double)nb_plan_arena_bytes(p) / 1048576.0);
    nb_plan_free(p);
    free(outs);
    nb_model_free(m);
    return 0;
}

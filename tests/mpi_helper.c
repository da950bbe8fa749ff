/* Helper of tests/mpi.sh (no Python in tests):
 *   mpi_helper data DIR N SEED     DIR/x.npy [N, 20] f64, DIR/t.npy [N] i32: a
 *                                  random linear teacher's classes (4 of them)
 *   mpi_helper meta CK KEY         prints a metadata value of checkpoint CK
 *   mpi_helper compare A B RTOL    every float tensor of checkpoint A against
 *                                  B's: max |a - b| <= RTOL * max |b| per tensor
 *                                  (opt.step, a count, must be equal); exit 1
 *                                  on a mismatch, printing the worst tensor
 *   mpi_helper differ A B          exit 0 when some float tensor differs (a
 *                                  control: the comparison can fail) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nabla/nabla.h>

enum { FEATURES = 20, CLASSES = 4 };

static int make_data(const char *dir, size_t n, uint64_t seed)
{
    nb_rng r;
    nb_rng_seed(&r, 12345);  /* one teacher for every data set, the samples from seed */
    nb_tensor x, t;
    if (nb_tensor_alloc(&x, NB_F64, 2, (int64_t[]){(int64_t)n, FEATURES}) ||
        nb_tensor_alloc(&t, NB_I32, 1, (int64_t[]){(int64_t)n}))
        return 2;
    double teacher[FEATURES][CLASSES];
    for (int i = 0; i < FEATURES; i++)
        for (int k = 0; k < CLASSES; k++) teacher[i][k] = 2 * nb_rng_uniform(&r) - 1;
    nb_rng_seed(&r, seed);
    double *xv = x.data;
    int32_t *tv = t.data;
    for (size_t s = 0; s < n; s++) {
        double score[CLASSES] = {0};
        for (int i = 0; i < FEATURES; i++) {
            xv[s * FEATURES + i] = 2 * nb_rng_uniform(&r) - 1;
            for (int k = 0; k < CLASSES; k++) score[k] += xv[s * FEATURES + i] * teacher[i][k];
        }
        int best = 0;
        for (int k = 1; k < CLASSES; k++) best = score[k] > score[best] ? k : best;
        tv[s] = best;
    }
    char px[4096], pt[4096];
    snprintf(px, sizeof px, "%s/x.npy", dir);
    snprintf(pt, sizeof pt, "%s/t.npy", dir);
    int rc = nb_npy_write(px, &x) || nb_npy_write(pt, &t) ? 2 : 0;
    if (rc) fprintf(stderr, "mpi_helper: %s\n", nb_last_error());
    nb_tensor_free(&x);
    nb_tensor_free(&t);
    return rc;
}

static double at(const nb_tensor *t, size_t i)
{
    return t->dtype == NB_F32 ? ((const float *)t->data)[i] : ((const double *)t->data)[i];
}

/* max |a - b| / max |b| over one tensor (0 when b is all zeros and a equals it) */
static double rel_diff(const nb_tensor *a, const nb_tensor *b)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < nb_tensor_numel(b); i++) {
        num = fmax(num, fabs(at(a, i) - at(b, i)));
        den = fmax(den, fabs(at(b, i)));
    }
    return den > 0 ? num / den : num;
}

/* Worst relative difference over the float tensors of A and B, or -1 when
 * they do not hold the same tensors. */
static double worst(const char *pa, const char *pb, char *name, size_t cap)
{
    nb_tensor_set a, b;
    if (nb_safetensors_read(pa, &a)) return fprintf(stderr, "%s\n", nb_last_error()), -1;
    if (nb_safetensors_read(pb, &b)) return fprintf(stderr, "%s\n", nb_last_error()), -1;
    double w = a.n == b.n ? 0 : -1;
    for (size_t i = 0; i < a.n && w >= 0; i++) {
        const nb_tensor *ta = &a.items[i].t, *tb = nb_tensor_set_find(&b, a.items[i].name);
        if (!tb || tb->dtype != ta->dtype || nb_tensor_numel(ta) != nb_tensor_numel(tb)) {
            snprintf(name, cap, "%s (missing or misshapen)", a.items[i].name);
            w = -1;
        } else if (ta->dtype == NB_F32 || ta->dtype == NB_F64) {
            double d = rel_diff(ta, tb);
            if (!strcmp(a.items[i].name, "opt.step") && d != 0) d = INFINITY;
            if (d > w) w = d, snprintf(name, cap, "%s", a.items[i].name);
        }
    }
    nb_tensor_set_free(&a);
    nb_tensor_set_free(&b);
    return w;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "data"))
        return make_data(argv[2], strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10));
    char name[256] = "";
    if (argc == 4 && !strcmp(argv[1], "meta")) {
        nb_tensor_set s;
        if (nb_safetensors_read(argv[2], &s)) return fprintf(stderr, "%s\n", nb_last_error()), 2;
        int rc = 1;
        for (size_t i = 0; i < s.n_meta; i++)
            if (!strcmp(s.meta_keys[i], argv[3])) printf("%s\n", s.meta_vals[i]), rc = 0;
        nb_tensor_set_free(&s);
        return rc;
    }
    if (argc == 5 && !strcmp(argv[1], "compare")) {
        double tol = strtod(argv[4], NULL), w = worst(argv[2], argv[3], name, sizeof name);
        printf("%s vs %s: worst relative difference %.3g (%s), tolerance %g\n", argv[2], argv[3], w,
               name, tol);
        return w >= 0 && w <= tol ? 0 : 1;
    }
    if (argc == 4 && !strcmp(argv[1], "differ")) {
        double w = worst(argv[2], argv[3], name, sizeof name);
        printf("%s vs %s: worst relative difference %.3g (%s)\n", argv[2], argv[3], w, name);
        return w > 0 ? 0 : 1;
    }
    fprintf(stderr, "usage: mpi_helper data DIR N SEED | meta CK KEY | compare A B RTOL | differ A B\n");
    return 2;
}

/* Parameter initialisation rules (model-format.md, "Param specs"). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base.h"

/* fan_in: all dims but the last for a matmul weight [in, out]; C*KH*KW for a
 * conv filter [O, C, KH, KW] (with groups the filter is [O, C/groups, KH, KW],
 * so this is (C/groups)*KH*KW, as PyTorch). */
static double fan_in(const nb_tensor *t)
{
    double f = 1;
    if (t->rank == 4) {
        for (int i = 1; i < 4; i++) f *= (double)t->shape[i];
    } else {
        for (int i = 0; i + 1 < t->rank; i++) f *= (double)t->shape[i];
    }
    return f > 0 ? f : 1;
}

static void store(nb_tensor *t, size_t i, double v)
{
    if (t->dtype == NB_F64)
        ((double *)t->data)[i] = v;
    else
        ((float *)t->data)[i] = (float)v;
}

/* A finite number that f32 cannot hold would silently become an infinity. */
static nb_status check_f32(const nb_tensor *t, const double *v, size_t n, bool indexed, char *err,
                           size_t cap)
{
    if (t->dtype != NB_F32) return NB_OK;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i]) && !isfinite((float)v[i])) {
            int w = indexed ? snprintf(err, cap, "value %zu (%g)", i, v[i]) : snprintf(err, cap, "%g", v[i]);
            if (w >= 0 && (size_t)w < cap)
                snprintf(err + w, cap - (size_t)w, " is beyond f32's range (+-3.4e38): it would become "
                         "infinite");
            return NB_ERR_ARG;
        }
    return NB_OK;
}

nb_status nb__init_tensor(nb_tensor *t, const nb_init *in, const char *name, char *err, size_t cap)
{
    size_t n = nb_tensor_numel(t);
    nb_rng rng;
    nb_rng_seed(&rng, in->seed ^ nb__hash(name, strlen(name)));  /* a stream per name */
    double std = 0;
    switch (in->kind) {
    case NB_INIT_VALUES:
        if (in->n_values != n) {
            snprintf(err, cap, "values has %zu numbers but the shape holds %zu", in->n_values, n);
            return NB_ERR_SHAPE;
        }
        if (check_f32(t, in->values, n, true, err, cap)) return NB_ERR_ARG;
        for (size_t i = 0; i < n; i++) store(t, i, in->values[i]);
        return NB_OK;
    case NB_INIT_ZEROS:
    case NB_INIT_ONES:
    case NB_INIT_CONSTANT: {
        double v = in->kind == NB_INIT_ZEROS ? 0 : in->kind == NB_INIT_ONES ? 1 : in->a;
        if (check_f32(t, &v, 1, false, err, cap)) return NB_ERR_ARG;
        for (size_t i = 0; i < n; i++) store(t, i, v);
        return NB_OK;
    }
    case NB_INIT_UNIFORM:
        if (!(in->b > in->a)) {
            snprintf(err, cap, "uniform needs a < b, got [%g, %g]", in->a, in->b);
            return NB_ERR_ARG;
        }
        for (size_t i = 0; i < n; i++) store(t, i, in->a + (in->b - in->a) * nb_rng_uniform(&rng));
        return NB_OK;
    case NB_INIT_NORMAL: std = in->a; break;
    case NB_INIT_XAVIER: std = sqrt(1.0 / fan_in(t)); break;
    case NB_INIT_HE: std = sqrt(2.0 / fan_in(t)); break;
    }
    if (!(std >= 0)) {
        snprintf(err, cap, "normal needs a standard deviation >= 0, got %g", std);
        return NB_ERR_ARG;
    }
    for (size_t i = 0; i < n; i++) store(t, i, std * nb_rng_normal(&rng));
    return NB_OK;
}

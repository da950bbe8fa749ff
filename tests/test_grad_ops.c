/* Every registered op, on every one of its gradcheck cases (random shapes,
 * broadcasting, size-1 dims, scalars): the gradient nodes agree with f64
 * central differences. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "testutil.h"

ParameterizedTestParameters(grad, op)
{
    static size_t idx[256];
    size_t n = nb_op_count();
    for (size_t i = 0; i < n && i < 256; i++) idx[i] = i;
    return cr_make_param_array(size_t, idx, n < 256 ? n : 256);
}

ParameterizedTest(size_t *i, grad, op)
{
    const nb_op_def *op = nb_op_at(*i);
    if (!op->backward) {
        /* gradient-only ops without their own rule are checked through their parent op */
        cr_assert_eq(op->n_cases, 0, "%s has cases but no gradient rule", op->name);
        return;
    }
    cr_assert_gt(op->n_cases, 0, "op %s has no gradcheck cases", op->name);
    for (int c = 0; c < op->n_cases; c++) {
        nb_gc_result r[6];
        int n = 0;
        char err[512] = "";
        nb_gc_opts o = NB_GC_DEFAULTS;
        o.seed = (uint64_t)c + 1;
        nb_status st = nb_gradcheck_op(op, &op->cases[c], &o, r, &n);
        cr_assert_eq(st, NB_OK, "%s case %d: %s", op->name, c, err);
        for (int k = 0; k < n; k++) {
            cr_expect(r[k].pass, "%s case %d input %d: max abs err %g at %zu (%zu failures)",
                      op->name, c, k, r[k].max_abs, r[k].worst, r[k].failures);
            cr_expect_eq(r[k].kinks, 0, "%s case %d input %d: %zu kinks", op->name, c, k, r[k].kinks);
            cr_expect_eq(r[k].checked, r[k].numel);
        }
    }
}

/* The example programs run and print what they promise (README's demo among
 * them). Their folder comes from NABLA_EXAMPLES. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Runs examples/NAME, returns its exit status and its output (malloc'd) in *out. */
static int run_example(const char *name, char **out)
{
    char cmd[1024];
    int st;
    snprintf(cmd, sizeof cmd, "'%s/%s'", test_env("NABLA_EXAMPLES"), name);
    *out = run_shell(cmd, &st);
    return st;
}

Test(programs, apple_prints_price_and_gradients)
{
    char *out;
    cr_assert_eq(run_example("apple", &out), 0, "%s", out);
    cr_expect(strstr(out, "= 220\n"), "%s", out);
    cr_expect(strstr(out, "d price / d apple        = 2.2\n"), "%s", out);
    cr_expect(strstr(out, "d price / d apple_count  = 110\n"), "%s", out);
    cr_expect(strstr(out, "d price / d tax          = 200\n"), "%s", out);
    free(out);
}

Test(programs, xor_learns)
{
    char *out;
    cr_assert_eq(run_example("xor", &out), 0, "xor did not reach loss < 0.01:\n%s", out);
    cr_expect(strstr(out, "0 xor 1 -> class 1") && strstr(out, "1 xor 1 -> class 0"), "%s", out);
    free(out);
}

Test(programs, mlp_grad_and_custom_op)
{
    char *out;
    cr_assert_eq(run_example("mlp_grad", &out), 0, "%s", out);
    cr_expect(strstr(out, "|grad.W1| = ") && strstr(out, "|grad.b2| = "), "%s", out);
    free(out);
    cr_assert_eq(run_example("custom_op", &out), 0, "%s", out);
    cr_expect(strstr(out, "case 2: max abs error") && !strstr(out, "FAIL"), "%s", out);
    cr_expect(strstr(out, "my_softplus([-20, 0, 20]) = [2.06115e-09, 0.693147, 20]"), "%s", out);
    free(out);
}

/* The C API trains without a hand-written loop: one epoch on Fashion-MNIST. */
Test(programs, train_mnist_learns, .timeout = 240)
{
    char *out;
    cr_assert_eq(run_example("train_mnist", &out), 0, "%s", out);
    const char *e = strstr(out, "test loss ");
    cr_assert_not_null(e, "%s", out);
    double loss, acc;
    cr_assert_eq(sscanf(e, "test loss %lf accuracy %lf%%", &loss, &acc), 2, "%s", out);
    cr_expect(acc >= 80, "test accuracy after one epoch: %.2f%%", acc);
    free(out);
}

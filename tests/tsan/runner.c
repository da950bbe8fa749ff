/* Runs the Tests registered through tests/tsan/criterion/criterion.h in
 * this process, in order, each between its suite's and its own init and
 * fini; prints "[====] Synthesis: Tested: N | Passing: P | ..." as
 * Criterion does, and exits 1 when a test failed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>

#include "criterion/criterion.h"

#define MAX_TESTS 256

static struct test {
    const char *suite, *name;
    void (*fn)(void);
    struct nbt_opts o;
} tests[MAX_TESTS];
static int n_tests;
static struct suite {
    const char *name;
    struct nbt_opts o;
} suites[32];
static int n_suites;
static jmp_buf bail;
static bool failed;

void nbt_register(const char *suite, const char *name, void (*fn)(void), struct nbt_opts o)
{
    if (n_tests < MAX_TESTS) tests[n_tests++] = (struct test){suite, name, fn, o};
}

void nbt_suite(const char *suite, struct nbt_opts o)
{
    if (n_suites < 32) suites[n_suites++] = (struct suite){suite, o};
}

void nbt_fail(const char *file, int line, bool fatal, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[----] %s:%d: %s failed: ", file, line, fatal ? "assertion" : "expectation");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    failed = true;
    if (fatal) longjmp(bail, 1);
}

void nbt_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[----] ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static const struct nbt_opts *suite_of(const char *name)
{
    for (int i = 0; i < n_suites; i++)
        if (!strcmp(suites[i].name, name)) return &suites[i].o;
    return NULL;
}

static void run(const struct test *t)
{
    const struct nbt_opts *s = suite_of(t->suite);
    void (*volatile init)(void) = t->o.init ? t->o.init : s ? s->init : NULL;
    void (*volatile fini)(void) = t->o.fini ? t->o.fini : s ? s->fini : NULL;
    failed = false;
    if (!setjmp(bail)) {
        if (init) init();
        t->fn();
    }
    if (fini) fini();
}

int main(void)
{
    int passing = 0;
    for (int i = 0; i < n_tests; i++) {
        if (tests[i].o.disabled) continue;
        run(&tests[i]);
        fprintf(stderr, "[%s] %s::%s\n", failed ? "FAIL" : "PASS", tests[i].suite, tests[i].name);
        passing += !failed;
    }
    fprintf(stderr, "[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | Crashing: 0 \n",
            n_tests, passing, n_tests - passing);
    return passing == n_tests ? 0 : 1;
}

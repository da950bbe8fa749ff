/* A stand-in for Criterion's API, for the ThreadSanitizer build only
 * (tests/run.sh --tsan). Criterion's runner cannot start under TSan: it maps
 * an arena shared with its forked workers at fixed random addresses, which
 * TSan's shadow memory takes (Snaipe/Criterion#274, "Could not initialize
 * inheritable arena"). With this header first on the include path, the same
 * test files register their Tests here, and tests/tsan/runner.c runs them in
 * one process, one after another, printing Criterion's synthesis line for
 * tests/run.sh. Only what the thread tests and testutil.c use is here. */
#ifndef NBT_TSAN_CRITERION_H
#define NBT_TSAN_CRITERION_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nbt_opts {
    void (*init)(void), (*fini)(void);
    double timeout;
    bool disabled;
    int signal, exit_code;
    const char *description;
    int end_;  /* set by the macros below, so that the options may be left out */
};

void nbt_register(const char *suite, const char *name, void (*fn)(void), struct nbt_opts o);
void nbt_suite(const char *suite, struct nbt_opts o);
/* Records a failed check at file:line; fatal ones end the test (longjmp). */
void nbt_fail(const char *file, int line, bool fatal, const char *fmt, ...);
void nbt_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define Test(...) NBT_TEST(__VA_ARGS__, .end_ = 0)
#define NBT_TEST(suite, name, ...)                                                      \
    static void suite##_##name(void);                                                   \
    __attribute__((constructor)) static void suite##_##name##_reg(void)                 \
    {                                                                                   \
        nbt_register(#suite, #name, suite##_##name, (struct nbt_opts){__VA_ARGS__});    \
    }                                                                                   \
    static void suite##_##name(void)
#define TestSuite(...) NBT_SUITE(__VA_ARGS__, .end_ = 0)
#define NBT_SUITE(suite, ...)                                                           \
    __attribute__((constructor)) static void suite##_suite_reg(void)                    \
    {                                                                                   \
        nbt_suite(#suite, (struct nbt_opts){__VA_ARGS__});                              \
    }                                                                                   \
    extern int nbt_swallows_the_semicolon

/* Every macro appends "" so that the format may be left out (-Wpedantic
 * wants an argument for "..."); nbt_fail has no format attribute for that
 * extra argument's sake. */
#define NBT_CHECK(fatal, c, ...)                                                        \
    do {                                                                                \
        if (!(c)) nbt_fail(__FILE__, __LINE__, fatal, __VA_ARGS__);                     \
    } while (0)
#define NBT_CMP(fatal, op, a, b, ...) NBT_CHECK(fatal, (a)op(b), __VA_ARGS__)
#define NBT_PTR(fatal, op, p, ...) NBT_CHECK(fatal, (p)op NULL, __VA_ARGS__)
#define cr_assert(...) NBT_CHECK(true, __VA_ARGS__, "")
#define cr_expect(...) NBT_CHECK(false, __VA_ARGS__, "")
#define cr_assert_eq(...) NBT_CMP(true, ==, __VA_ARGS__, "")
#define cr_assert_neq(...) NBT_CMP(true, !=, __VA_ARGS__, "")
#define cr_assert_lt(...) NBT_CMP(true, <, __VA_ARGS__, "")
#define cr_assert_geq(...) NBT_CMP(true, >=, __VA_ARGS__, "")
#define cr_assert_null(...) NBT_PTR(true, ==, __VA_ARGS__, "")
#define cr_assert_not_null(...) NBT_PTR(true, !=, __VA_ARGS__, "")
#define cr_expect_eq(...) NBT_CMP(false, ==, __VA_ARGS__, "")
#define cr_expect_neq(...) NBT_CMP(false, !=, __VA_ARGS__, "")
#define cr_expect_lt(...) NBT_CMP(false, <, __VA_ARGS__, "")
#define cr_expect_null(...) NBT_PTR(false, ==, __VA_ARGS__, "")
#define cr_expect_str_eq(...) NBT_STR(__VA_ARGS__, "")
#define NBT_STR(a, b, ...) NBT_CHECK(false, !strcmp((a), (b)), __VA_ARGS__)
#define cr_log_info(...) nbt_log(__VA_ARGS__)

#endif

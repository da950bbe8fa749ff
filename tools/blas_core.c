/* The OpenBLAS core of the `nabla` command: see blas_core.h. */
#include "blas_core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <nabla/nabla.h>

char *openblas_get_corename(void);

/* ---- what the CPU has ------------------------------------------------------ */

nbt_isa nbt_cpu_isa(void)
{
#if defined(__x86_64__) || defined(__i386__)
    /* libgcc's (and compiler-rt's) tests also check that the OS enabled the
     * registers (XCR0), which the CPUID bits alone do not say */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
        return NBT_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return NBT_ISA_AVX2;
    if (__builtin_cpu_supports("avx")) return NBT_ISA_AVX;
    return NBT_ISA_SSE;
#else
    return NBT_ISA_UNKNOWN;
#endif
}

const char *nbt_isa_name(nbt_isa isa)
{
    static const char *const names[] = {"sse", "avx", "avx2", "avx512"};
    return isa >= NBT_ISA_SSE && isa <= NBT_ISA_AVX512 ? names[isa] : "unknown";
}

/* ---- OpenBLAS's x86-64 cores (driver/others/dynamic.c, 0.3.21 and later) -- */

typedef struct core {
    const char *name;
    nbt_isa isa;
} core;

static const core cores[] = {
    {"Katmai", NBT_ISA_SSE},        {"Coppermine", NBT_ISA_SSE},  {"Northwood", NBT_ISA_SSE},
    {"Prescott", NBT_ISA_SSE},      {"Banias", NBT_ISA_SSE},      {"Atom", NBT_ISA_SSE},
    {"Core2", NBT_ISA_SSE},         {"Penryn", NBT_ISA_SSE},      {"Dunnington", NBT_ISA_SSE},
    {"Nehalem", NBT_ISA_SSE},       {"Athlon", NBT_ISA_SSE},      {"Opteron", NBT_ISA_SSE},
    {"Opteron_SSE3", NBT_ISA_SSE},  {"Barcelona", NBT_ISA_SSE},   {"Nano", NBT_ISA_SSE},
    {"Bobcat", NBT_ISA_SSE},        {"Sandybridge", NBT_ISA_AVX}, {"Bulldozer", NBT_ISA_AVX},
    {"Piledriver", NBT_ISA_AVX},    {"Steamroller", NBT_ISA_AVX}, {"Excavator", NBT_ISA_AVX},
    {"Haswell", NBT_ISA_AVX2},      {"Zen", NBT_ISA_AVX2},        {"SkylakeX", NBT_ISA_AVX512},
    {"Cooperlake", NBT_ISA_AVX512}, {"SapphireRapids", NBT_ISA_AVX512},
};
#define N_CORES (sizeof cores / sizeof cores[0])

/* The core auto picks for each level (none below AVX: OpenBLAS's own
 * detection knows every SSE-only CPU there is). */
static const char *const best_core[] = {NULL, "Sandybridge", "Haswell", "SkylakeX"};

static const core *find_core(const char *name)
{
    for (size_t i = 0; name && i < N_CORES; i++)
        if (!strcasecmp(name, cores[i].name)) return &cores[i];
    return NULL;
}

nbt_isa nbt_core_isa(const char *name)
{
    const core *c = find_core(name);
    return c ? c->isa : NBT_ISA_UNKNOWN;
}

const char *nbt_core_canonical(const char *name)
{
    const core *c = find_core(name);
    return c ? c->name : NULL;
}

const char *nbt_core_upgrade(const char *running, nbt_isa cpu)
{
    nbt_isa have = nbt_core_isa(running);
    if (have == NBT_ISA_UNKNOWN || cpu == NBT_ISA_UNKNOWN || have >= cpu) return NULL;
    return best_core[cpu];
}

/* ---- the decision ---------------------------------------------------------- */

/* --blas-core NAME: known, and runnable here. */
static bool decide_named(const char *choice, const char *running, nbt_isa cpu, const char **target,
                         char *note, size_t cap)
{
    const core *c = find_core(choice);
    if (!c) {
        const char *names[N_CORES];
        for (size_t i = 0; i < N_CORES; i++) names[i] = cores[i].name;
        char hint[160];
        nb_hint(hint, sizeof hint, nb_suggest(choice, names, N_CORES));
        snprintf(note, cap, "unknown BLAS core '%s'%s; use auto, none or an OpenBLAS core name "
                 "such as Haswell or SkylakeX", choice, hint);
        return false;
    }
    if (cpu != NBT_ISA_UNKNOWN && c->isa > cpu) {
        snprintf(note, cap, "BLAS core %s needs %s, which this CPU does not have (it has %s)",
                 c->name, nbt_isa_name(c->isa), nbt_isa_name(cpu));
        return false;
    }
    if (!strcasecmp(running, c->name)) {
        snprintf(note, cap, "BLAS core %s (--blas-core %s)", running, choice);
        return true;
    }
    *target = c->name;
    snprintf(note, cap, "OpenBLAS chose core %s; running again with OPENBLAS_CORETYPE=%s",
             running, c->name);
    return true;
}

/* auto: respect the user's OPENBLAS_CORETYPE, else upgrade a fallback. */
static void decide_auto(const char *running, nbt_isa cpu, const char *user_core,
                        const char **target, char *note, size_t cap)
{
    if (user_core && *user_core) {
        snprintf(note, cap, "BLAS core %s (OPENBLAS_CORETYPE=%s from the environment)", running,
                 user_core);
        return;
    }
    *target = nbt_core_upgrade(running, cpu);
    if (*target)
        snprintf(note, cap, "OpenBLAS chose core %s (%s) but this CPU has %s; running again "
                 "with OPENBLAS_CORETYPE=%s", running, nbt_isa_name(nbt_core_isa(running)),
                 nbt_isa_name(cpu), *target);
    else
        snprintf(note, cap, "BLAS core %s (OpenBLAS's choice, kept: this CPU has %s)", running,
                 nbt_isa_name(cpu));
}

bool nbt_blas_core_decide(const char *choice, const char *running, nbt_isa cpu,
                          const char *user_core, const char *was, const char **target,
                          char *note, size_t cap)
{
    *target = NULL;
    if (!running) running = "unknown";
    if (!choice || !*choice) choice = "auto";
    if (was) {  /* the re-exec: never again */
        snprintf(note, cap, "BLAS core %s (OpenBLAS had chosen %s; nabla set OPENBLAS_CORETYPE=%s)",
                 running, was, user_core ? user_core : "");
        return true;
    }
    if (!strcasecmp(choice, "none")) {
        snprintf(note, cap, "BLAS core %s (OpenBLAS's choice; --blas-core none)", running);
        return true;
    }
    if (!strcasecmp(choice, "auto")) {
        decide_auto(running, cpu, user_core, target, note, cap);
        return true;
    }
    return decide_named(choice, running, cpu, target, note, cap);
}

/* ---- acting on it ------------------------------------------------------------ */

/* The re-exec did not give the core asked for (a name this OpenBLAS was not
 * built with is ignored silently): say so, whatever -v says. */
static void check_taken(const char *running)
{
    const char *asked = getenv("OPENBLAS_CORETYPE");
    if (asked && strcasecmp(asked, running))
        fprintf(stderr, "nabla: warning: OPENBLAS_CORETYPE=%s was not taken: OpenBLAS runs core %s\n",
                asked, running);
}

/* Runs the tool again with OPENBLAS_CORETYPE=target; returns only on failure. */
static void run_again(const char *target, const char *running, char **argv)
{
    const char *old = getenv("OPENBLAS_CORETYPE");
    char *saved = old ? strdup(old) : NULL;
    if (setenv("OPENBLAS_CORETYPE", target, 1) || setenv(NBT_BLAS_GUARD_ENV, running, 1)) {
        fprintf(stderr, "nabla: warning: cannot set OPENBLAS_CORETYPE; going on with core %s\n", running);
    } else {
        fflush(stdout);
        fflush(stderr);
        execv("/proc/self/exe", argv);
        fprintf(stderr, "nabla: warning: cannot run again with OPENBLAS_CORETYPE=%s (%s); going "
                "on with core %s\n", target, strerror(errno), running);
    }
    if (saved) setenv("OPENBLAS_CORETYPE", saved, 1);
    else unsetenv("OPENBLAS_CORETYPE");
    unsetenv(NBT_BLAS_GUARD_ENV);
    free(saved);
}

int nbt_blas_core_apply(const char *choice, bool verbose, char **argv)
{
    const char *running = openblas_get_corename(), *target, *env = getenv(NBT_BLAS_CORE_ENV);
    char *was = getenv(NBT_BLAS_GUARD_ENV) ? strdup(getenv(NBT_BLAS_GUARD_ENV)) : NULL;
    char note[512];
    if (!running) running = "unknown";
    unsetenv(NBT_BLAS_GUARD_ENV);  /* programs this one starts decide for themselves */
    bool ok = nbt_blas_core_decide(choice ? choice : env, running, nbt_cpu_isa(),
                                   getenv("OPENBLAS_CORETYPE"), was, &target, note, sizeof note);
    if (!ok) {
        free(was);
        fprintf(stderr, "nabla: %s%s\n", choice ? "--blas-core: " : NBT_BLAS_CORE_ENV ": ", note);
        return 2;
    }
    if (was) check_taken(running);
    free(was);
    if (verbose) fprintf(stderr, "nabla: %s\n", note);
    if (target) run_again(target, running, argv);
    return 0;
}

void openblas_set_num_threads(int n);

int nbt_threads(long long requested)
{
    long long n = requested;
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    if (n < 1 && env) {
        char *end;
        n = strtoll(env, &end, 10);
        if (*end || end == env) n = 1;
    }
    if (n < 1) n = 1;
    if (n > 256) n = 256;
    openblas_set_num_threads(1);
    return (int)n;
}

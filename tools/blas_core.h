/* Which OpenBLAS kernels (its "core") the `nabla` command runs on.
 *
 * An OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels once, when
 * the library is loaded, from what it recognises of the CPU; a release older
 * than the CPU falls back to generic SSE kernels (Prescott), 3-5x slower on
 * sgemm than the AVX2 or AVX-512 ones the CPU could run. The environment
 * variable OPENBLAS_CORETYPE, read at load time, names the core to use
 * instead, so the tool, seeing a fallback, runs itself again (execv of
 * /proc/self/exe, same arguments) with OPENBLAS_CORETYPE set; a guard
 * variable makes sure that happens at most once.
 *
 * The choice: --blas-core NAME|auto|none, else $NABLA_BLAS_CORE, else auto.
 *   auto  switch only when OpenBLAS chose a core of a lower instruction set
 *         than the CPU has and OPENBLAS_CORETYPE is not set by the user
 *   none  leave OpenBLAS alone
 *   NAME  that core (an OpenBLAS core name, any case), if the CPU can run it */
#ifndef NABLA_TOOLS_BLAS_CORE_H
#define NABLA_TOOLS_BLAS_CORE_H

#include <stdbool.h>
#include <stddef.h>

/* Instruction-set levels that matter to OpenBLAS's x86-64 kernels. */
typedef enum {
    NBT_ISA_UNKNOWN = -1,  /* not x86, or a core name we do not know */
    NBT_ISA_SSE = 0,       /* Prescott, Core2, Nehalem, ... */
    NBT_ISA_AVX,           /* Sandybridge, Bulldozer, ... */
    NBT_ISA_AVX2,          /* Haswell, Zen, ... (with FMA) */
    NBT_ISA_AVX512,        /* SkylakeX, Cooperlake, ... (F, CD, BW, DQ, VL) */
} nbt_isa;

/* Environment variables: the user's choice, and the guard of the re-exec
 * (holds the core OpenBLAS had chosen, for the -v message). */
#define NBT_BLAS_CORE_ENV "NABLA_BLAS_CORE"
#define NBT_BLAS_GUARD_ENV "NABLA_BLAS_CORE_WAS"

/* What this CPU (and its OS, which must save the wide registers) supports. */
nbt_isa nbt_cpu_isa(void);
/* "avx512", "avx2", "avx", "sse", "unknown" */
const char *nbt_isa_name(nbt_isa isa);
/* Level a core's kernels need, NBT_ISA_UNKNOWN for a name not in the table. */
nbt_isa nbt_core_isa(const char *core);
/* The table's spelling of a core name given in any case, or NULL. */
const char *nbt_core_canonical(const char *name);
/* The core auto switches to when OpenBLAS runs `running` on a CPU of level
 * cpu: NULL when running already uses what the CPU has (or either is unknown). */
const char *nbt_core_upgrade(const char *running, nbt_isa cpu);

/* What to do, decided from plain values (tested without a re-exec):
 *   choice      "auto", "none" or a core name (NULL means "auto")
 *   running     openblas_get_corename()
 *   cpu         nbt_cpu_isa()
 *   user_core   $OPENBLAS_CORETYPE, or NULL
 *   was         $NBT_BLAS_GUARD_ENV (this process is the re-exec), or NULL
 * Sets *target to the core to run again with, or NULL to go on as is; writes
 * the -v line to note (no "nabla: " prefix). Returns false, with the error in
 * note, for an unknown name or a core this CPU cannot run. */
bool nbt_blas_core_decide(const char *choice, const char *running, nbt_isa cpu,
                          const char *user_core, const char *was, const char **target,
                          char *note, size_t cap);

/* Applies the choice for a command that computes: may not return (it runs
 * the tool again). argv is main's, unchanged. Prints the -v line when
 * verbose. Returns 0, or 2 after printing an error (bad --blas-core). */
int nbt_blas_core_apply(const char *choice, bool verbose, char **argv);

/* The thread count of a computing command: --threads T (requested > 0), else
 * $OPENBLAS_NUM_THREADS, else 1, at most 256. nabla's plans run that many
 * (nb_plan_set_threads) and split their GEMMs themselves, and OpenBLAS is set
 * to one thread here: two pools of threads spinning on 2 cores took turns
 * instead of working together (a second thread made SimpleConvNet slower). */
int nbt_threads(long long requested);

#endif

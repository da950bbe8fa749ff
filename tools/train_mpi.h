/* nabla train under mpirun: the process world, MPI_Init only when there is
 * more than one process, attaching the trainer (nabla/mpi.h), and the end of
 * the job (MPI_Finalize, or MPI_Abort after an error so no rank waits
 * forever). Without the meson feature `mpi` the world is still read, so that
 * `mpirun -n 2 nabla train` says it cannot work instead of training twice. */
#ifndef NABLA_TOOLS_TRAIN_MPI_H
#define NABLA_TOOLS_TRAIN_MPI_H

#include <stdbool.h>

#include <nabla/nabla.h>

typedef struct nbt_mpi {
    int rank, size;     /* from the launcher's environment; 0 of 1 without one */
    bool started;       /* MPI_Init was called */
    void *attached;     /* the nb_mpi */
} nbt_mpi;

/* Reads the world (OMPI_COMM_WORLD_SIZE / _RANK, or PMI_SIZE / PMI_RANK) and,
 * with more than one process, calls MPI_Init: NBT_OK or an error printed. */
int nbt_mpi_begin(const char *cmd, nbt_mpi *w);
/* Makes the trainer one of the world's ranks (sync_bn: NB_MPI_SYNC_BN). */
int nbt_mpi_attach(const char *cmd, nbt_mpi *w, nb_trainer *t, bool sync_bn);
/* Ends MPI: rc is the exit status; an error that may be one rank's alone
 * (alone: true) aborts the whole job with it. Returns rc. */
int nbt_mpi_end(nbt_mpi *w, int rc, bool alone);
/* On process 0: one line on what the allreduces cost, e.g. "allreduce: 544,296
 * bytes per step, 0.41 ms per step on average over 938 steps (waiting for the
 * other processes included)". Nothing when not attached. */
void nbt_mpi_summary(const nbt_mpi *w);

#endif

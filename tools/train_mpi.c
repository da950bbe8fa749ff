/* nabla train under mpirun (train_mpi.h). */
#include <stdlib.h>

#include "cli.h"
#include "train_mpi.h"

#ifdef NABLA_HAVE_MPI
#include <nabla/mpi.h>
#endif

/* The first of the variables that is set, as a number; def otherwise. */
static int env_int(const char *const *names, int n, int def)
{
    for (int i = 0; i < n; i++) {
        const char *v = getenv(names[i]);
        char *end;
        long x = v && *v ? strtol(v, &end, 10) : -1;
        if (v && *v && !*end && x >= 0 && x < (1 << 24)) return (int)x;
    }
    return def;
}

static void read_world(nbt_mpi *w)
{
    /* OpenMPI's mpirun, then the PMI launchers (MPICH's hydra, Slurm's srun) */
    static const char *const size[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    static const char *const rank[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK"};
    *w = (nbt_mpi){.rank = env_int(rank, 2, 0), .size = env_int(size, 2, 1)};
    if (w->size < 1) w->size = 1;
}

#ifdef NABLA_HAVE_MPI

int nbt_mpi_begin(const char *cmd, nbt_mpi *w)
{
    read_world(w);
    if (w->size == 1) return NBT_OK;  /* alone: no MPI at all (no singleton start-up) */
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) return nbt_fail(cmd, "MPI_Init failed");
    w->started = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &w->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &w->size);
    return NBT_OK;
}

int nbt_mpi_attach(const char *cmd, nbt_mpi *w, nb_trainer *t, bool sync_bn)
{
    if (!w->started) return NBT_OK;
    nb_mpi *m;
    if (nb_mpi_attach(t, MPI_COMM_WORLD, sync_bn ? NB_MPI_SYNC_BN : 0, &m))
        return nbt_fail(cmd, "%s", nb_trainer_error(t));
    w->attached = m;
    return NBT_OK;
}

int nbt_mpi_end(nbt_mpi *w, int rc, bool alone)
{
    if (!w->started) return rc;
    fflush(stdout);
    fflush(stderr);
    if (rc && alone) MPI_Abort(MPI_COMM_WORLD, rc);  /* the others may wait in a collective */
    nb_mpi_free(w->attached);
    w->attached = NULL;
    MPI_Finalize();
    w->started = false;
    return rc;
}

void nbt_mpi_summary(const nbt_mpi *w)
{
    size_t steps;
    double s = nb_mpi_seconds(w->attached, &steps);
    char bytes[32];
    if (!w->attached || w->rank != 0 || !steps) return;
    nbt_commas((double)nb_mpi_step_bytes(w->attached), bytes, sizeof bytes);
    printf("allreduce: %s bytes per process per step, %.3g ms per step on average over %zu steps "
           "(waiting for the other processes included)\n", bytes, 1e3 * s / (double)steps, steps);
}

#else  /* built without MPI */

int nbt_mpi_begin(const char *cmd, nbt_mpi *w)
{
    read_world(w);
    if (w->size == 1) return NBT_OK;
    if (w->rank != 0) return NBT_ERROR;  /* one message for the job */
    return nbt_fail(cmd, "runs as %d processes (mpirun), but this nabla was built without MPI: "
                    "install libopenmpi-dev and build with meson -Dmpi=enabled", w->size);
}

int nbt_mpi_attach(const char *cmd, nbt_mpi *w, nb_trainer *t, bool sync_bn)
{
    (void)cmd, (void)w, (void)t, (void)sync_bn;
    return NBT_OK;
}

int nbt_mpi_end(nbt_mpi *w, int rc, bool alone)
{
    (void)w, (void)alone;
    return rc;
}

void nbt_mpi_summary(const nbt_mpi *w) { (void)w; }

#endif

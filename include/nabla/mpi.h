/* nabla — data-parallel training over MPI (library libnabla-mpi, pkg-config
 * nabla-mpi; built and installed only with the meson feature `mpi`).
 *
 * Every process (rank) of a communicator builds the same graph and trainer
 * (train.h) over the same dataset with the same seed, then attaches it:
 *
 *   MPI_Init(&argc, &argv);
 *   nb_trainer_new(g, &cfg, &t);             cfg.batch: the global batch
 *   nb_mpi *mp;
 *   if (nb_mpi_attach(t, MPI_COMM_WORLD, 0, &mp)) error: nb_trainer_error(t)
 *   for each epoch: nb_trainer_epoch(t, train, ...); nb_trainer_evaluate(t, test, ...);
 *                   rank 0: nb_trainer_save(t, path, ...)
 *   nb_mpi_free(mp); MPI_Finalize();
 *
 * Each rank computes the step on its part of every global batch
 * (nb_trainer_shard); the gradient hook then averages the gradients over the
 * ranks with one MPI_Allreduce per step (one per 2^22 values when larger:
 * nb_mpi_set_bucket) on a packed copy of the flat gradient buffer, each
 * rank's gradients weighted by its share of the step's samples, so that N
 * ranks give the weights one process would with the same global batch, up
 * to the order of the sums. The step's loss and accuracy sums (and, with
 * NB_MPI_SYNC_BN, the batchnorm statistics) travel in the same buffer, and
 * an evaluation's sums take one allreduce, so every rank sees the global
 * numbers; let rank 0 alone print and save.
 *
 * Errors: a call that fails on one rank leaves the others waiting in their
 * next collective. End the job with MPI_Abort (as `nabla train` does) rather
 * than MPI_Finalize. The communicator's error handler is left as it is (by
 * default MPI errors abort the job).
 *
 * This header is the only one of nabla that includes <mpi.h>; libnabla and
 * its ABI do not depend on MPI. */
#ifndef NABLA_MPI_H
#define NABLA_MPI_H

#include <mpi.h>

#include "train.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_mpi nb_mpi;

/* Flags of nb_mpi_attach. */
enum {
    /* Average the batchnorm running statistics over the ranks after every
     * step (weighted by samples, in the gradients' allreduce), so that every
     * rank evaluates and saves the same model.
     * Without it each rank keeps its own running statistics (those of its
     * own batches) and a checkpoint holds rank 0's. Within a step each rank
     * normalises with its own batch's statistics either way. */
    NB_MPI_SYNC_BN = 1u << 0,
};

/* Makes t one of the ranks of comm: shards its batches (nb_trainer_shard),
 * sums its metrics across comm, and installs the gradient hook that averages
 * gradients (nb_trainer_hook; it replaces a hook set before). Call it on
 * every rank of comm; cfg.batch must be a multiple of the ranks. On failure
 * the message is on t (nb_trainer_error) and *out is NULL. The first step
 * checks that every rank has as many gradient values and samples per step
 * (else that step fails on every rank, the reason in nb_mpi_error). */
NB_API nb_status nb_mpi_attach(nb_trainer *t, MPI_Comm comm, unsigned flags, nb_mpi **out);
/* Detaches the trainer (it trains alone again) and frees m. */
NB_API void nb_mpi_free(nb_mpi *m);
NB_API int nb_mpi_rank(const nb_mpi *m);
NB_API int nb_mpi_size(const nb_mpi *m);
/* Why the last step's hook failed ("" when it did not): a step that fails
 * in the hook reports "the gradient hook failed" on the trainer. */
NB_API const char *nb_mpi_error(const nb_mpi *m);

/* Values per MPI_Allreduce call (default 2^22 = 4194304; 1 to 2^30): a larger
 * gradient buffer is reduced in pieces of this many, one after the other
 * (the sums are the same; with more than 2 ranks MPI may add in another
 * order for other message sizes). NB_ERR_ARG out of range. */
NB_API nb_status nb_mpi_set_bucket(nb_mpi *m, size_t values);

/* Bytes one step's allreduce carries per rank: the gradients, with
 * NB_MPI_SYNC_BN the running statistics, and the trainer's 2 step sums, all
 * in the gradients' dtype (0 before the first step). */
NB_API size_t nb_mpi_step_bytes(const nb_mpi *m);
/* Seconds spent in the gradient hook's reductions so far, waiting for the
 * other ranks included, and (*steps, may be NULL) over how many steps. */
NB_API double nb_mpi_seconds(const nb_mpi *m, size_t *steps);

#ifdef __cplusplus
}
#endif
#endif

/* Hessian-vector products against PyTorch (torch.autograd.grad with
 * create_graph=True, float64; tests/hvp/make_refs.py): a batchnorm + dropout
 * convnet (examples/models/bn_dropout.yaml with average pooling,
 * tests/hvp/bn_dropout_avg.yaml) in eval mode (running statistics, constants)
 * and in training mode (batch statistics, differentiated through; the dropout
 * mask of seed 11, checked to be the one the references used). The max-pooling
 * models are in test_hvp_maxpool.c. */
#include "hvp_case.h"

Test(hvp, bn_dropout_eval)
{
    check_hvp(test_file("hvp/bn_dropout_avg.yaml"), "bn_dropout_avg_eval", 4, false);
}

Test(hvp, bn_dropout_training)
{
    check_hvp(test_file("hvp/bn_dropout_avg.yaml"), "bn_dropout_avg_train", 4, true);
}

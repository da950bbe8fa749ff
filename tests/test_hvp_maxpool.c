/* Hessian-vector products against PyTorch (tests/hvp/make_refs.py) of the
 * models with max pooling: examples/models/simple_convnet.yaml and
 * examples/models/bn_dropout.yaml in eval and training mode. They need second
 * order through max_pool2d (max_pool2d_backward's gradient rule); register
 * this file in tests/meson.build once that is in. */
#include "hvp_case.h"

Test(hvp_maxpool, simple_convnet)
{
    check_hvp(test_file("../examples/models/simple_convnet.yaml"), "simple_convnet", 2, false);
}

Test(hvp_maxpool, bn_dropout_eval)
{
    check_hvp(test_file("../examples/models/bn_dropout.yaml"), "bn_dropout_eval", 4, false);
}

Test(hvp_maxpool, bn_dropout_training)
{
    check_hvp(test_file("../examples/models/bn_dropout.yaml"), "bn_dropout_train", 4, true);
}

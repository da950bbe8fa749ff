#include <criterion/criterion.h>

#include "testutil.h"

Test(tensor, alloc_zeroed_and_shape)
{
    nb_tensor t;
    cr_assert_eq(nb_tensor_alloc(&t, NB_F32, 2, (int64_t[]){3, 4}), NB_OK);
    cr_assert_eq(nb_tensor_numel(&t), 12);
    cr_assert_eq(nb_tensor_bytes(&t), 48);
    for (int i = 0; i < 12; i++) cr_assert_eq(((float *)t.data)[i], 0.0f);
    nb_tensor_free(&t);
    cr_assert_null(t.data);
}

Test(tensor, overflow_is_an_error)
{
    nb_tensor t;
    int64_t huge[3] = {INT64_C(1) << 40, INT64_C(1) << 40, 4};
    cr_assert_eq(nb_tensor_alloc(&t, NB_F64, 3, huge), NB_ERR_OVERFLOW);
    cr_assert_eq(nb_tensor_alloc(&t, NB_F64, 1, (int64_t[]){-1}), NB_ERR_SHAPE);
    cr_assert_eq(nb_tensor_alloc(&t, NB_F64, 9, huge), NB_ERR_ARG);
}

Test(tensor, scalar_has_one_element)
{
    nb_tensor t;
    cr_assert_eq(nb_tensor_alloc(&t, NB_I32, 0, NULL), NB_OK);
    cr_assert_eq(nb_tensor_numel(&t), 1);
    nb_tensor_free(&t);
}

/* The ONNX importer's Pad, asymmetric Conv/pool pads (nb_pad ahead of the
 * op; ConvTranspose crops after it) and AveragePool's count_include_pad:
 * small backend-style cases in tests/data/onnx_pad (made by make_cases.py
 * there, expected outputs from torch), each loaded, run and compared by
 * onnx_case.c. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_case.h"

static oc_result run(const char *name, char *msg, size_t cap)
{
    const char *root = getenv("NABLA_TEST_DIR");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/data/onnx_pad/%s", root ? root : "tests", name);
    msg[0] = 0;
    return oc_run_case(dir, msg, cap);
}

static void expect_pass(const char *name)
{
    char msg[600];
    oc_result r = run(name, msg, sizeof msg);
    cr_expect_eq(r, OC_PASS, "%s: verdict %d: %s", name, r, msg);
}

static void expect_unsupported(const char *name, const char *why)
{
    char msg[600];
    oc_result r = run(name, msg, sizeof msg);
    cr_expect_eq(r, OC_UNSUPPORTED, "%s: verdict %d: %s", name, r, msg);
    cr_expect(strstr(msg, why), "%s: message '%s' lacks '%s'", name, msg, why);
}

Test(onnx_pad, pad_attribute_opset2_with_value_and_crop) { expect_pass("pad_v2_attr"); }
Test(onnx_pad, pad_input_opset11_with_constant_value) { expect_pass("pad_v11_input"); }
Test(onnx_pad, pad_input_opset11_without_value) { expect_pass("pad_v11_no_value"); }
Test(onnx_pad, pad_opset18_axes_input) { expect_pass("pad_v18_axes"); }
Test(onnx_pad, conv_asymmetric_pads) { expect_pass("conv_asym"); }
Test(onnx_pad, conv1d_asymmetric_pads) { expect_pass("conv1d_asym"); }
Test(onnx_pad, convtranspose_asymmetric_pads_crop) { expect_pass("convtranspose_asym"); }
Test(onnx_pad, maxpool_asymmetric_pads_fill_minus_inf) { expect_pass("maxpool_asym"); }
Test(onnx_pad, maxpool_pads_beyond_half_the_kernel) { expect_pass("maxpool_big_pads"); }
Test(onnx_pad, avgpool_asymmetric_pads_counted) { expect_pass("avgpool_asym_include"); }
Test(onnx_pad, avgpool_symmetric_pads_not_counted) { expect_pass("avgpool_sym_exclude"); }

Test(onnx_pad, avgpool_asymmetric_pads_not_counted_is_unsupported)
{
    expect_unsupported("avgpool_asym_exclude", "count_include_pad=0 with asymmetric pads");
}

Test(onnx_pad, pad_reflect_is_unsupported) { expect_unsupported("pad_reflect", "mode 'reflect'"); }

/* One case of the ONNX project's backend tests (Debian libonnx-testdata):
 * a folder with model.onnx and test_data_set_N/{input,output}_K.pb. */
#ifndef NABLA_ONNX_CASE_H
#define NABLA_ONNX_CASE_H

#include <stddef.h>

typedef enum { OC_PASS, OC_WRONG, OC_UNSUPPORTED, OC_ERROR, OC_CRASH } oc_result;

/* Loads the model, runs every data set, compares (rtol 1e-3, atol 1e-5; NaN
 * equals NaN; integer outputs exactly). msg: why, when not OC_PASS. */
oc_result oc_run_case(const char *dir, char *msg, size_t cap);

#endif

/* libFuzzer target for the .npy parser. fuzz/run.sh builds and runs it (with
 * the other targets); by hand, build as fuzz/model_fuzz.c says with this file,
 * seed a corpus with tests/conformance's and tests/bad/npy's .npy files and
 * run ./npy_fuzz -max_total_time=60 -dict=fuzz/npy.dict corpus
 *
 * A parse must either fail with a message or give a tensor whose data is as
 * large as its shape says; the sanitizers catch everything else. */
#include <stdlib.h>
#include <string.h>

#include "nabla/core.h"
#include "nabla/io.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
    /* 1 GiB, under the runner's -rss_limit_mb=2048: an input that makes nabla ask for
     * more must meet the memory limit (nb_set_memory_limit) and be refused with a
     * message; the default limit (80 % of physical memory) is beyond what a fuzzer allows. */
    nb_set_memory_limit((size_t)1 << 30);
    nb_tensor t;
    if (nb_npy_parse(data, len, &t) == NB_OK) {
        /* Touch every byte so that ASan checks the allocation size. */
        volatile unsigned char sum = 0;
        for (size_t i = 0; i < nb_tensor_bytes(&t); i++) sum += ((unsigned char *)t.data)[i];
        nb_tensor_free(&t);
    } else if (t.data || !nb_last_error()[0]) {
        abort(); /* a failure must leave no tensor and a message */
    }
    return 0;
}

/* libFuzzer target for the safetensors reader (fuzz/run.sh builds and runs
 * it). Build by hand as fuzz/model_fuzz.c says
 * (with this file), seed the corpus with tests/conformance's weights.safetensors
 * files, and run:  ./safetensors_fuzz -max_total_time=120 corpus-st
 * A parse must either fail with a message and no tensors, or give tensors whose
 * data is as large as their shapes say (ASan checks every byte is readable). */
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
    nb_tensor_set set;
    if (nb_safetensors_parse(data, len, &set) == NB_OK) {
        volatile unsigned char sum = 0;
        for (size_t i = 0; i < set.n; i++)
            for (size_t b = 0; b < nb_tensor_bytes(&set.items[i].t); b++)
                sum += ((unsigned char *)set.items[i].t.data)[b];
        for (size_t i = 0; i < set.n_meta; i++) sum += (unsigned char)set.meta_vals[i][0];
        nb_tensor_set_free(&set);
    } else if (set.n || set.items || !nb_last_error()[0]) {
        abort(); /* a failure leaves an empty set and a message */
    }
    return 0;
}

/* libFuzzer target for the .npy parser. Not built by meson; build and run with
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Ibuild/include -Isrc \
 *       fuzz/npy_fuzz.c src/io_npy.c src/io_util.c src/tensor.c src/alloc.c -o npy_fuzz
 *   (build/include holds the generated nabla/version.h: `meson setup build` first)
 *   mkdir -p corpus && cp tests/conformance/mlp/in/x.npy tests/conformance/mlp/in/t.npy corpus/
 *   ./npy_fuzz -max_total_time=60 -dict=fuzz/npy.dict corpus
 *
 * A parse must either fail with a message or give a tensor whose data is as
 * large as its shape says; the sanitizers catch everything else. */
#include <stdlib.h>
#include <string.h>

#include "nabla/io.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
    nb_tensor t;
    char err[256];
    if (nb_npy_parse(data, len, &t) == NB_OK) {
        /* Touch every byte so that ASan checks the allocation size. */
        volatile unsigned char sum = 0;
        for (size_t i = 0; i < nb_tensor_bytes(&t); i++) sum += ((unsigned char *)t.data)[i];
        nb_tensor_free(&t);
    } else if (t.data || !memchr(err, '\0', sizeof err) || err[0] == '\0') {
        abort(); /* a failure must leave no tensor and a message */
    }
    return 0;
}

/* libFuzzer target for the .npz reader (nb_npz_read: libzip, then the .npy
 * parser on every member). Built and run by fuzz/run.sh; by hand, as
 * fuzz/idx_fuzz.c says with this file, seeded with tests/data/npz/ *.npz.
 * nb_npz_read takes a path: the input goes to a temporary file (fuzz_file.h).
 * A read must either fail with a message naming the file and leave an empty
 * set, or give tensors whose data is as large as their shapes say (ASan
 * checks every byte is readable). */
#include <stdlib.h>
#include <string.h>

#include "fuzz_file.h"
#include "nabla/nabla.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
    /* 1 GiB, under the runner's -rss_limit_mb=2048: an input that makes nabla ask for
     * more must meet the memory limit (nb_set_memory_limit) and be refused with a
     * message; the default limit (80 % of physical memory) is beyond what a fuzzer allows. */
    nb_set_memory_limit((size_t)1 << 30);
    if (len > (1u << 20)) return 0;
    const char *path = fuzz_file_write(".npz", data, len);
    nb_tensor_set set;
    if (nb_npz_read(path, &set) == NB_OK) {
        volatile unsigned char sum = 0;
        for (size_t i = 0; i < set.n; i++) {
            for (size_t b = 0; b < nb_tensor_bytes(&set.items[i].t); b++)
                sum += ((unsigned char *)set.items[i].t.data)[b];
        }
        for (size_t i = 0; i < set.n_meta; i++) sum += (unsigned char)set.meta_vals[i][0];
        nb_tensor_set_free(&set);
    } else if (set.n || set.items || !strstr(nb_last_error(), path)) {
        abort(); /* a failure leaves an empty set and a message naming the file */
    }
    return 0;
}

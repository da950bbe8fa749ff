/* libFuzzer target for the IDX reader (nb_dataset_load_idx), raw or, built
 * with -DFUZZ_GZ (idx_gz_fuzz), with every input gzip-compressed first so
 * that the fuzzer mutates what zlib unpacks. The raw target's corpus holds
 * .gz files too, so it also feeds zlib broken gzip streams. fuzz/run.sh
 * builds and runs both; by hand:
 *
 *   CC=clang meson setup build-fuzz -Db_sanitize=address,undefined -Db_lundef=false \
 *       -Dtests=false -Dwerror=false -Dc_args=-fsanitize=fuzzer-no-link
 *   ninja -C build-fuzz libnabla.a
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Ibuild-fuzz/include fuzz/idx_fuzz.c \
 *       build-fuzz/libnabla.a $(pkg-config --libs openblas yaml-0.1 libcgraph libgvc \
 *       jansson zlib libzip) -lm -o idx_fuzz
 *   ./idx_fuzz -max_total_time=60 corpus-idx
 *
 * The file is read as both images and labels: 1-D files then pass the pair
 * check and make a dataset, whose every sample is copied out as f32 (ASan
 * checks the data is as large as the header says). A failure must give a
 * message that names the file and no dataset. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fuzz_file.h"
#include "nabla/nabla.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len);

#ifdef FUZZ_GZ
static const char *write_input(const unsigned char *data, size_t len)
{
    const char *path = fuzz_file_path(".gz");
    gzFile z = gzopen(path, "wb");
    if (!z || (len && gzwrite(z, data, (unsigned)len) != (int)len) || gzclose(z) != Z_OK) abort();
    return path;
}
#else
static const char *write_input(const unsigned char *data, size_t len) { return fuzz_file_write("", data, len); }
#endif

/* Copies every sample of every field out, one at a time. */
static void touch(nb_dataset *d)
{
    for (int f = 0; f < nb_dataset_num_fields(d); f++) {
        size_t numel = nb_dataset_field_numel(d, f);
        float *buf = malloc(numel * sizeof *buf);
        if (!buf) abort();
        for (size_t i = 0; i < nb_dataset_size(d); i++)
            if (nb_dataset_batch(d, f, &i, 1, NB_F32, 1.0, buf, numel * sizeof *buf)) abort();
        free(buf);
    }
    if (nb_dataset_check_labels(d, 1, 256)) abort();  /* u8 labels are all below 256 */
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
    /* 1 GiB, under the runner's -rss_limit_mb=2048: an input that makes nabla ask for
     * more must meet the memory limit (nb_set_memory_limit) and be refused with a
     * message; the default limit (80 % of physical memory) is beyond what a fuzzer allows. */
    nb_set_memory_limit((size_t)1 << 30);
    if (len > (1u << 20)) return 0;
    const char *path = write_input(data, len);
    nb_dataset *d = (nb_dataset *)1;
    if (nb_dataset_load_idx(path, path, &d) == NB_OK) {
        if (!d || nb_dataset_size(d) == 0) abort();
        touch(d);
        nb_dataset_free(d);
    } else if (d || !strstr(nb_last_error(), path)) {
        abort(); /* a failure leaves no dataset and a message naming the file */
    }
    return 0;
}

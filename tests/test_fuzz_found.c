/* Bugs found by fuzzing (fuzz/run.sh, issue 11), one regression test each. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

TestSuite(fuzz_found, .init = tmp_make, .fini = tmp_remove);

/* An IDX header of [2^32 - 1, 2^30] (4.6e18 bytes) with no data: the reader
 * allocated what the header claims before reading, which fails (or, under
 * ASan, aborts) instead of saying the file is truncated. With no memory
 * limit in the way, the error must be that the data is missing. */
Test(fuzz_found, idx_header_claiming_exabytes_allocates_only_what_is_there)
{
    const unsigned char head[] = {0, 0, 8, 2, 0xff, 0xff, 0xff, 0xff, 0x40, 0, 0, 0, 1, 2, 3};
    write_file(tmp_path("i.idx"), head, sizeof head);
    nb_set_memory_limit(SIZE_MAX);
    nb_dataset *d = (nb_dataset *)1;
    cr_assert_eq(nb_dataset_load_idx(tmp_path("i.idx"), tmp_path("i.idx"), &d), NB_ERR_FORMAT, "%s",
                 nb_last_error());
    cr_expect_null(d);
    cr_expect(strstr(nb_last_error(), "truncated: the header says 4294967295×1073741824 = 4611686017353646080 "
                                      "bytes of data, the file has 3"), "%s", nb_last_error());
}

/* The same header under a memory limit: refused before reading, naming it. */
Test(fuzz_found, idx_header_over_the_memory_limit_is_refused)
{
    const unsigned char head[] = {0, 0, 8, 1, 0, 0x10, 0, 0, 1, 2, 3};  /* 1 MB of labels */
    write_file(tmp_path("l.idx"), head, sizeof head);
    nb_set_memory_limit(1000);
    nb_dataset *d = NULL;
    cr_assert_eq(nb_dataset_load_idx(tmp_path("l.idx"), tmp_path("l.idx"), &d), NB_ERR_NOMEM);
    cr_expect(strstr(nb_last_error(), "the IDX header's sizes (1048576) need 0.00105 GB, over the memory limit "
                                      "of 1e-06 GB"), "%s", nb_last_error());
}

/* The buffer grows as the data arrives (1, 2, 4 MB, then the size the header
 * says): every byte of a 3 MB + 5 file arrives in place. */
Test(fuzz_found, idx_data_larger_than_the_first_buffer_reads_whole)
{
    size_t n = (3u << 20) + 5;
    unsigned char *file = malloc(8 + n);
    cr_assert_not_null(file);
    const unsigned char head[] = {0, 0, 8, 1, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                                  (unsigned char)(n >> 8), (unsigned char)n};
    memcpy(file, head, 8);
    for (size_t i = 0; i < n; i++) file[8 + i] = (unsigned char)(i * 7 + i / 251);
    write_file(tmp_path("big.idx"), file, 8 + n);
    nb_dataset *d;
    cr_assert_eq(nb_dataset_load_idx(tmp_path("big.idx"), tmp_path("big.idx"), &d), NB_OK, "%s", nb_last_error());
    cr_assert_eq(nb_dataset_size(d), n);
    size_t idx[] = {0, (1u << 20) - 1, 1u << 20, (2u << 20) + 17, n - 1};
    int32_t got[5];
    cr_assert_eq(nb_dataset_batch(d, 0, idx, 5, NB_I32, 1, got, sizeof got), NB_OK, "%s", nb_dataset_error(d));
    for (int i = 0; i < 5; i++) cr_expect_eq(got[i], file[8 + idx[i]], "sample %zu", idx[i]);
    nb_dataset_free(d);
    free(file);
}

/* For test_crash: writes checkpoints to PATH in a loop until killed, each a
 * tensor "data" of N + (gen % 2) f32 values all equal to gen, with metadata
 * gen, so that a reader can tell a whole file from a torn one.
 *   crash_writer PATH N FIRST_GEN [COUNT]   (COUNT 0 or absent: forever) */
#include <stdio.h>
#include <stdlib.h>

#include <nabla/nabla.h>

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: crash_writer PATH N FIRST_GEN [COUNT]\n");
        return 2;
    }
    long long n = atoll(argv[2]), gen = atoll(argv[3]), count = argc > 4 ? atoll(argv[4]) : 0;
    for (long long done = 0; !count || done < count; done++, gen++) {
        nb_tensor t;
        int64_t shape[1] = {n + gen % 2};
        if (nb_tensor_alloc(&t, NB_F32, 1, shape)) return 3;
        for (int64_t i = 0; i < shape[0]; i++) ((float *)t.data)[i] = (float)gen;
        char g[32];
        snprintf(g, sizeof g, "%lld", gen);
        nb_tensor_set s = {0};
        nb_status st = nb_tensor_set_add(&s, "data", &t);
        if (!st) st = nb_tensor_set_meta(&s, "gen", g);
        if (!st) st = nb_tensors_write(argv[1], &s);
        nb_tensor_set_free(&s);
        nb_tensor_free(&t);
        if (st) {
            fprintf(stderr, "%s\n", nb_last_error());
            return 1;
        }
    }
    return 0;
}

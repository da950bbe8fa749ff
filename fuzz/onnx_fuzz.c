/* libFuzzer target for the ONNX importer: any bytes must either load (and
 * then plan its outputs with every free dimension 2) or fail with one
 * message, never crash or leak. Not built by meson; with clang (as
 * model_fuzz.c says, plus the ONNX feature's generated code and protobuf-c):
 *
 *   CC=clang meson setup build-fuzz -Db_sanitize=address,undefined -Db_lundef=false \
 *       -Dtests=false -Dwerror=false -Dc_args=-fsanitize=fuzzer-no-link
 *   ninja -C build-fuzz libnabla.a
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc -Ibuild-fuzz/include \
 *       -Ibuild-fuzz/graph/onnx fuzz/onnx_fuzz.c build-fuzz/libnabla.a $(pkg-config --libs \
 *       openblas yaml-0.1 libcgraph libgvc jansson zlib libzip libprotobuf-c) -lm -o onnx_fuzz
 *   mkdir -p corpus-onnx && cp tests/data/onnx/ *.onnx corpus-onnx/
 *   ./onnx_fuzz -max_total_time=120 corpus-onnx
 *
 * (no space before *.onnx in the cp line; it keeps this comment a comment) */
#include <stdlib.h>

#include "../graph/onnx/onnx_internal.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
    /* 1 GiB, under the runner's -rss_limit_mb=2048: an input that makes nabla ask for
     * more must meet the memory limit (nb_set_memory_limit) and be refused with a
     * message; the default limit (80 % of physical memory) is beyond what a fuzzer allows. */
    nb_set_memory_limit((size_t)1 << 30);
    nb_model *m = NULL;
    nb_diags d = {0, NULL};
    nb_status st = ox_load_bytes("f.onnx", data, len, NULL, &m, &d);
    if (st == NB_OK) {
        if (!m || d.n) abort();  /* success gives a model and no messages */
        nb_graph *g = nb_model_graph(m);
        nb_node *outs[64];
        int n = 0;
        for (size_t i = 0; i < nb_model_num_outputs(m) && n < 64; i++) outs[n++] = nb_model_output(m, i);
        nb_bind b[NB_MAX_SYMS];
        for (int i = 0; i < nb_graph_num_syms(g); i++) b[i] = (nb_bind){nb_graph_sym(g, i), 2};
        nb_plan *p = NULL;
        if (n && nb_plan_new(g, outs, n, &p) == NB_OK) nb_plan_bind(p, b, nb_graph_num_syms(g));
        nb_plan_free(p);
        nb_model_free(m);
    } else if (m || d.n != 1) {
        abort();  /* nothing half-loaded; one message */
    }
    nb_diags_free(&d);
    return 0;
}

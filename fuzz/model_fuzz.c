/* libFuzzer target for the YAML model loader: any bytes must either load (and
 * then plan for N = 2) or fail with FILE:LINE:COL messages, never crash or leak.
 * Not built by meson: fuzz/run.sh builds and runs every target; by hand, with clang:
 *
 *   CC=clang meson setup build-fuzz -Db_sanitize=address,undefined -Db_lundef=false \
 *       -Dtests=false -Dwerror=false -Dc_args=-fsanitize=fuzzer-no-link
 *   ninja -C build-fuzz libnabla.a
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Ibuild-fuzz/include fuzz/model_fuzz.c \
 *       build-fuzz/libnabla.a $(pkg-config --libs openblas yaml-0.1 libcgraph libgvc \
 *       jansson zlib libzip) -lm -o model_fuzz
 *   mkdir -p corpus-model && cp examples/models/ *.yaml tests/conformance/ *.yaml corpus-model/
 *   ./model_fuzz -max_total_time=120 -dict=fuzz/model.dict corpus-model
 *
 * (no space before *.yaml in the cp line; it is there to keep this comment a comment) */
#include <stdlib.h>
#include <string.h>

#include "nabla/nabla.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
    /* 1 GiB, under the runner's -rss_limit_mb=2048: an input that makes nabla ask for
     * more must meet the memory limit (nb_set_memory_limit) and be refused with a
     * message; the default limit (80 % of physical memory) is beyond what a fuzzer allows. */
    nb_set_memory_limit((size_t)1 << 30);
    nb_model *m = NULL;
    nb_diags d;
    nb_status st = nb_model_load_string((const char *)data, len, "f.yaml", NULL, &m, &d);
    if (st == NB_OK) {
        if (!m || d.n) abort();  /* success gives a model and no messages */
        nb_graph *g = nb_model_graph(m);
        nb_node *out = nb_model_loss(m) ? nb_model_loss(m) : nb_model_output(m, 0);
        nb_plan *p = NULL;
        if (nb_graph_num_syms(g) <= 1 && nb_plan_new(g, &out, 1, &p) == NB_OK) {
            nb_bind b = {nb_graph_num_syms(g) ? nb_graph_sym(g, 0) : "N", 2};
            nb_plan_bind(p, &b, nb_graph_num_syms(g));
        }
        nb_plan_free(p);
        nb_model_free(m);
    } else {
        if (m) abort();  /* a file with errors is never partly loaded */
        if (st == NB_ERR_FORMAT && d.n == 0) abort();
        for (size_t i = 0; i < d.n; i++)
            if (!strstr(d.lines[i], "f.yaml:")) abort();  /* every error has its place */
    }
    nb_diags_free(&d);
    return 0;
}

/* ONNX names ("onnx::Gemm_0", "/fc1/Gemm_output_0") as nabla names: every
 * character outside [A-Za-z0-9_.-] becomes '_', and a name already taken
 * gets "_2", "_3", ... The backend tests' names are valid already, so their
 * inputs and outputs keep them. Names the library gives itself (grad.W,
 * opt.W), which nb_input and nb_constant refuse, begin grad_ and opt_ instead. */
#include <string.h>

#include "onnx_internal.h"

static bool name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '.' || ch == '-';
}

void ox_sanitize(const char *onnx, char *buf, size_t cap)
{
    size_t k = 0;
    for (const char *s = onnx ? onnx : ""; *s && k + 1 < cap; s++) buf[k++] = name_char(*s) ? *s : '_';
    if (k == 0 && cap > 1) buf[k++] = '_';  /* "" is not a name */
    buf[k] = 0;
}

static bool taken(ox_ctx *c, const char *s)
{
    return nb__strmap_get(&c->taken, s) || nb_graph_find(c->g, s);
}

const char *ox_name(ox_ctx *c, const char *onnx)
{
    char base[NM_MAX_NAME - 16], cand[NM_MAX_NAME + 1];
    ox_sanitize(onnx, base, sizeof base);
    /* no suffix frees a reserved prefix: "grad.W" is "grad_W" from the start */
    if (!strncmp(base, "grad.", 5)) base[4] = '_';
    if (!strncmp(base, "opt.", 4)) base[3] = '_';
    snprintf(cand, sizeof cand, "%s", base);
    for (int k = 2; taken(c, cand); k++) snprintf(cand, sizeof cand, "%s_%d", base, k);
    char *s = nb__strdup(cand);
    if (!s || nb__strmap_put(&c->taken, s, s)) {
        nb_free(s);
        return NULL;
    }
    return s;
}

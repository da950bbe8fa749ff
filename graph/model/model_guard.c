/* Bounds on what a model file may cost before libyaml builds its document:
 * a pass over libyaml's events (no recursion, no tree) that refuses
 *   - nesting deeper than NY_MAX_DEPTH (100 000 nested flow lists kept
 *     yaml_parser_load busy for minutes), and
 *   - aliases that expand to more than NY_MAX_EXPANSION values (a 487-byte
 *     file nesting aliases eight deep took 30 s and 870 MB to read: each alias
 *     stands for its whole anchored node, which may hold aliases in turn).
 * Syntax errors are left to the loader, which reports them as before. */
#include <string.h>

#include "model_internal.h"

typedef struct anchor {
    char *name;
    double size;   /* values in the node, aliases expanded */
} anchor;

typedef struct guard {
    ny_ctx *c;
    double stack[NY_MAX_DEPTH + 2];  /* the open collections' sizes so far */
    char *open[NY_MAX_DEPTH + 2];    /* ... and their anchors (NULL: none) */
    int depth;
    anchor *anchors;
    size_t n_anchors, cap;
    double expanded;  /* values added by aliases */
    bool failed;
} guard;

static double anchor_size(const guard *g, const char *name)
{
    for (size_t i = g->n_anchors; i-- > 0;)  /* the latest of a name wins, as in YAML */
        if (!strcmp(g->anchors[i].name, name)) return g->anchors[i].size;
    return 1;  /* unknown: the loader says so */
}

static void remember(guard *g, const yaml_char_t *name, double size)
{
    if (!name) return;
    if (g->n_anchors == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 16;
        anchor *a = nb_realloc(g->anchors, cap * sizeof *a);
        if (!a) return;  /* the count of this anchor is lost: it counts 1, harmless */
        g->anchors = a, g->cap = cap;
    }
    char *copy = nb__strdup((const char *)name);
    if (copy) g->anchors[g->n_anchors++] = (anchor){copy, size};
}

static void add(guard *g, double size) { g->stack[g->depth] += size; }

/* One event; false stops the pass (a bound crossed, or the end). */
static bool step(guard *g, const yaml_event_t *e)
{
    switch (e->type) {
    case YAML_SCALAR_EVENT:
        add(g, 1);
        remember(g, e->data.scalar.anchor, 1);
        return true;
    case YAML_ALIAS_EVENT: {
        double size = anchor_size(g, (const char *)e->data.alias.anchor);
        g->expanded += size;
        add(g, size);
        if (g->expanded <= NY_MAX_EXPANSION) return true;
        ny_err_mark(g->c, e->start_mark, "aliases expand to more than %d values (each alias stands "
                    "for its whole anchored node); write the values out or use fewer aliases",
                    NY_MAX_EXPANSION);
        return g->failed = true, false;
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        if (g->depth == NY_MAX_DEPTH) {
            ny_err_mark(g->c, e->start_mark, "nesting deeper than %d levels", NY_MAX_DEPTH);
            return g->failed = true, false;
        }
        const yaml_char_t *a = e->type == YAML_SEQUENCE_START_EVENT ? e->data.sequence_start.anchor
                                                                    : e->data.mapping_start.anchor;
        g->stack[++g->depth] = 1;
        g->open[g->depth] = a ? nb__strdup((const char *)a) : NULL;
        return true;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: {
        if (g->depth == 0) return true;
        double size = g->stack[g->depth];
        char *name = g->open[g->depth];
        g->open[g->depth--] = NULL;
        add(g, size);
        remember(g, (const yaml_char_t *)name, size);  /* its aliases stand for all of it */
        nb_free(name);
        return true;
    }
    case YAML_STREAM_END_EVENT: return false;
    default: return true;
    }
}

bool ny_guard(ny_ctx *c, const char *text, size_t len)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) return true;  /* the loader will say it */
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    guard g = {.c = c};
    for (bool go = true; go;) {
        yaml_event_t e;
        if (!yaml_parser_parse(&p, &e)) break;  /* a syntax error: the loader reports it */
        go = step(&g, &e);
        yaml_event_delete(&e);
    }
    for (int d = 1; d <= g.depth; d++) nb_free(g.open[d]);
    for (size_t i = 0; i < g.n_anchors; i++) nb_free(g.anchors[i].name);
    nb_free(g.anchors);
    yaml_parser_delete(&p);
    return !g.failed;
}

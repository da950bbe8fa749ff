/* The YAML layer of the model loader: one document read with libyaml's
 * document API, plain scalars resolved by the YAML 1.2 core schema, checked
 * mappings (no duplicate keys, no merge keys), typed reads, and messages
 * "FILE:LINE:COL: message" at the first character of a node. */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model_internal.h"

struct ny_dups {
    const yaml_node_t *map;
    bool *dup;
    ny_dups *next;
};

/* ---- messages ------------------------------------------------------- */

static void add_msg(ny_ctx *c, size_t line, size_t col, const char *fmt, va_list ap)
{
    char body[1024];
    vsnprintf(body, sizeof body, fmt, ap);
    int need = snprintf(NULL, 0, "%s:%zu:%zu: %s", c->file, line, col, body);
    if (need < 0) return;
    if (c->n_msgs == c->cap_msgs) {
        size_t cap = c->cap_msgs ? 2 * c->cap_msgs : 16;
        ny_msg *m = nb_realloc(c->msgs, cap * sizeof *m);
        if (!m) {
            c->oom = true;
            return;
        }
        c->msgs = m;
        c->cap_msgs = cap;
    }
    char *text = nb_malloc((size_t)need + 1);
    if (!text) {
        c->oom = true;
        return;
    }
    snprintf(text, (size_t)need + 1, "%s:%zu:%zu: %s", c->file, line, col, body);
    c->msgs[c->n_msgs] = (ny_msg){line, col, c->n_msgs, text};
    c->n_msgs++;
}

void ny_err_mark(ny_ctx *c, yaml_mark_t m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_msg(c, m.line + 1, m.column + 1, fmt, ap);
    va_end(ap);
}

void ny_err(ny_ctx *c, const yaml_node_t *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_msg(c, at ? at->start_mark.line + 1 : 1, at ? at->start_mark.column + 1 : 1, fmt, ap);
    va_end(ap);
}

size_t ny_line(const yaml_node_t *n) { return n ? n->start_mark.line + 1 : 1; }

const char *ny_hint(char *buf, size_t cap, const char *word, const char *const *choices, size_t n)
{
    /* a one-letter word is one edit from every other one-letter name: no hint */
    return nb_hint(buf, cap, word && strlen(word) > 1 ? nb_suggest(word, choices, n) : NULL);
}

/* ---- parsing -------------------------------------------------------- */

static void parse_error(ny_ctx *c, const yaml_parser_t *p, const char *text, size_t len)
{
    if (p->error == YAML_MEMORY_ERROR) {
        c->oom = true;
        return;
    }
    yaml_mark_t m = p->problem_mark;
    if (p->error == YAML_READER_ERROR) {  /* only an offset: count lines up to it */
        m.line = m.column = 0;
        for (size_t i = 0; i < p->problem_offset && i < len; i++) {
            if (text[i] == '\n')
                m.line++, m.column = 0;
            else
                m.column++;
        }
    }
    const char *problem = p->problem ? p->problem : "syntax error";
    if (p->context)
        ny_err_mark(c, m, "invalid YAML: %s (%s at line %zu)", problem, p->context,
                    p->context_mark.line + 1);
    else
        ny_err_mark(c, m, "invalid YAML: %s", problem);
}

bool ny_parse(ny_ctx *c, const char *text, size_t len)
{
    if (!ny_guard(c, text, len)) return false;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        c->oom = true;
        return false;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    bool ok = false;
    if (!yaml_parser_load(&p, &c->doc)) {
        parse_error(c, &p, text, len);
    } else {
        c->have_doc = true;
        yaml_document_t extra;
        if (!yaml_parser_load(&p, &extra)) {
            parse_error(c, &p, text, len);
        } else {
            ok = !yaml_document_get_root_node(&extra);
            if (!ok)
                ny_err_mark(c, extra.start_mark,
                            "a model file holds one YAML document; another starts here");
            yaml_document_delete(&extra);
        }
    }
    yaml_parser_delete(&p);
    return ok;
}

void ny_free(ny_ctx *c)
{
    if (c->have_doc) yaml_document_delete(&c->doc);
    c->have_doc = false;
    while (c->dups) {
        ny_dups *next = c->dups->next;
        nb_free(c->dups->dup);
        nb_free(c->dups);
        c->dups = next;
    }
    for (size_t i = 0; i < c->n_msgs; i++) nb_free(c->msgs[i].text);
    nb_free(c->msgs);
    c->msgs = NULL;
    c->n_msgs = c->cap_msgs = 0;
}

yaml_node_t *ny_root(ny_ctx *c) { return c->have_doc ? yaml_document_get_root_node(&c->doc) : NULL; }

/* ---- the core schema ------------------------------------------------ */

static bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }

static bool one_of(const char *s, const char *a, const char *b, const char *c)
{
    return !strcmp(s, a) || !strcmp(s, b) || !strcmp(s, c);
}

/* [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+ ; *big on overflow of int64 */
static bool parse_int(const char *s, size_t len, int64_t *out, bool *big)
{
    unsigned base = 10;
    size_t i = 0;
    bool neg = false;
    if (len > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
        base = s[1] == 'o' ? 8 : 16;
        i = 2;
    } else if (len && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == len) return false;
    uint64_t v = 0;
    *big = false;
    for (; i < len; i++) {
        char ch = s[i];
        unsigned d;
        if (is_digit(ch))
            d = (unsigned)(ch - '0');
        else if (base == 16 && ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else if (base == 16 && ch >= 'A' && ch <= 'F')
            d = (unsigned)(ch - 'A' + 10);
        else
            return false;
        if (d >= base) return false;
        if (v > (UINT64_MAX - d) / base)
            *big = true;
        else
            v = v * base + d;
    }
    uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (v > lim) *big = true;
    if (!*big) *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool is_float(const char *s, size_t len)
{
    size_t i = 0, digits = 0;
    if (i < len && (s[i] == '-' || s[i] == '+')) i++;
    while (i < len && is_digit(s[i])) i++, digits++;
    if (i < len && s[i] == '.') {
        i++;
        size_t frac = 0;
        while (i < len && is_digit(s[i])) i++, frac++;
        if (!digits && !frac) return false;
    } else if (!digits) {
        return false;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '-' || s[i] == '+')) i++;
        size_t ed = 0;
        while (i < len && is_digit(s[i])) i++, ed++;
        if (!ed) return false;
    }
    return i == len;
}

/* strtod in the "C" notation whatever the process locale is. */
static double to_double(const char *s, size_t len)
{
    char small[128], *buf = len < sizeof small ? small : nb_malloc(len + 1);
    if (!buf) return NAN;
    memcpy(buf, s, len);
    buf[len] = 0;
    const struct lconv *lc = localeconv();
    char dp = lc && lc->decimal_point && lc->decimal_point[0] ? lc->decimal_point[0] : '.';
    if (dp != '.')
        for (size_t i = 0; i < len; i++)
            if (buf[i] == '.') buf[i] = dp;
    double v = strtod(buf, NULL);
    if (buf != small) nb_free(buf);
    return v;
}

ny_val ny_value(const yaml_node_t *n)
{
    ny_val v;
    memset(&v, 0, sizeof v);
    v.s = "";
    if (!n) return v;
    if (n->type == YAML_SEQUENCE_NODE) {
        v.kind = NY_SEQ;
        return v;
    }
    if (n->type == YAML_MAPPING_NODE) {
        v.kind = NY_MAP;
        return v;
    }
    if (n->type != YAML_SCALAR_NODE) return v;
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    v.s = s;
    v.len = len;
    v.kind = NY_STR;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return v;
    if (len == 0 || !strcmp(s, "~") || one_of(s, "null", "Null", "NULL")) {
        v.kind = NY_NULL;
    } else if (one_of(s, "true", "True", "TRUE")) {
        v.kind = NY_BOOL;
        v.b = true;
    } else if (one_of(s, "false", "False", "FALSE")) {
        v.kind = NY_BOOL;
    } else {
        bool big = false;
        if (parse_int(s, len, &v.i, &big)) {
            v.kind = big ? NY_BIGINT : NY_INT;
            v.f = big ? to_double(s, len) : (double)v.i;
            if (big && (s[1] == 'x' || s[1] == 'o')) v.f = INFINITY;
        } else if (is_float(s, len)) {
            v.kind = NY_FLOAT;
            v.f = to_double(s, len);
        } else {
            const char *t = s + (s[0] == '-' || s[0] == '+');
            if (one_of(t, ".inf", ".Inf", ".INF")) {
                v.kind = NY_FLOAT;
                v.f = s[0] == '-' ? -INFINITY : INFINITY;
            } else if (one_of(s, ".nan", ".NaN", ".NAN")) {
                v.kind = NY_FLOAT;
                v.f = NAN;
            }
        }
    }
    return v;
}

/* ---- mappings and sequences ----------------------------------------- */

size_t ny_map_size(const yaml_node_t *map)
{
    if (!map || map->type != YAML_MAPPING_NODE) return 0;
    return (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
}

yaml_node_t *ny_map_key(ny_ctx *c, const yaml_node_t *map, size_t i)
{
    return yaml_document_get_node(&c->doc, map->data.mapping.pairs.start[i].key);
}

yaml_node_t *ny_map_val(ny_ctx *c, const yaml_node_t *map, size_t i)
{
    return yaml_document_get_node(&c->doc, map->data.mapping.pairs.start[i].value);
}

const char *ny_key_text(const yaml_node_t *key)
{
    return key && key->type == YAML_SCALAR_NODE ? (const char *)key->data.scalar.value : NULL;
}

bool ny_is_merge_key(const yaml_node_t *key)
{
    return key && key->type == YAML_SCALAR_NODE && key->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           !strcmp((const char *)key->data.scalar.value, "<<");
}

static bool same_key(const yaml_node_t *a, const yaml_node_t *b)
{
    const char *ta = ny_key_text(a), *tb = ny_key_text(b);
    if (!ta || !tb) return false;
    return ny_value(a).kind == ny_value(b).kind && !strcmp(ta, tb);
}

typedef struct key_ref {
    const yaml_node_t *key;
    ny_kind kind;
    size_t index;
} key_ref;

static int key_cmp(const void *a, const void *b)
{
    const key_ref *x = a, *y = b;
    const char *tx = ny_key_text(x->key), *ty = ny_key_text(y->key);
    if (!tx || !ty) {
        if (tx || ty) return tx ? 1 : -1;
    } else {
        int d = strcmp(tx, ty);
        if (d) return d;
        if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1;
    }
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Large mappings: sort the keys once and remember which repeat an earlier one. */
static const bool *dups_of(ny_ctx *c, const yaml_node_t *map)
{
    for (ny_dups *d = c->dups; d; d = d->next)
        if (d->map == map) return d->dup;
    size_t n = ny_map_size(map);
    ny_dups *d = nb_calloc(1, sizeof *d);
    key_ref *k = nb_malloc(n * sizeof *k);
    if (!d || !k || !(d->dup = nb_calloc(n, sizeof *d->dup))) {
        nb_free(d);
        nb_free(k);
        c->oom = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        k[i].key = ny_map_key(c, map, i);
        k[i].kind = ny_value(k[i].key).kind;
        k[i].index = i;
    }
    qsort(k, n, sizeof *k, key_cmp);
    for (size_t i = 1; i < n; i++)
        if (same_key(k[i - 1].key, k[i].key)) d->dup[k[i].index] = true;
    nb_free(k);
    d->map = map;
    d->next = c->dups;
    c->dups = d;
    return d->dup;
}

bool ny_map_dup(ny_ctx *c, const yaml_node_t *map, size_t i)
{
    if (ny_map_size(map) > 32) {
        const bool *dup = dups_of(c, map);
        return dup && dup[i];
    }
    yaml_node_t *k = ny_map_key(c, map, i);
    for (size_t j = 0; j < i; j++)
        if (same_key(ny_map_key(c, map, j), k)) return true;
    return false;
}

const char *ny_describe(const yaml_node_t *n, char *buf, size_t cap)
{
    if (!n) return "nothing";
    if (n->type == YAML_SEQUENCE_NODE) return "a list";
    if (n->type == YAML_MAPPING_NODE) return "a mapping";
    ny_val v = ny_value(n);
    if (v.kind == NY_NULL && v.len == 0) return "nothing";
    if (v.len > 40)
        snprintf(buf, cap, "'%.37s...'", v.s);
    else
        snprintf(buf, cap, "'%s'", v.s);
    return buf;
}

bool ny_map_check(ny_ctx *c, const yaml_node_t *n, const char *what, const char *const *known,
                  size_t n_known)
{
    char d[64], hint[96];
    if (!n || n->type != YAML_MAPPING_NODE) {
        ny_err(c, n, "%s must be a mapping; got %s", what, ny_describe(n, d, sizeof d));
        return false;
    }
    for (size_t i = 0; i < ny_map_size(n); i++) {
        yaml_node_t *key = ny_map_key(c, n, i);
        const char *text = ny_key_text(key);
        if (!text) {
            ny_err(c, key, "a key must be a name, not %s", ny_describe(key, d, sizeof d));
        } else if (ny_is_merge_key(key)) {
            ny_err(c, key, "merge keys ('<<') are not supported; write the keys out");
        } else if (ny_map_dup(c, n, i)) {
            ny_err(c, key, "duplicate key '%s'", text);
        } else if (known) {
            bool found = false;
            for (size_t k = 0; k < n_known && !found; k++) found = !strcmp(known[k], text);
            if (!found)
                ny_err(c, key, "unknown key '%s'%s", text,
                       ny_hint(hint, sizeof hint, text, known, n_known));
        }
    }
    return true;
}

yaml_node_t *ny_get(ny_ctx *c, const yaml_node_t *map, const char *key, yaml_node_t **key_node)
{
    for (size_t i = 0; i < ny_map_size(map); i++) {
        yaml_node_t *k = ny_map_key(c, map, i);
        const char *t = ny_key_text(k);
        if (t && !ny_is_merge_key(k) && !strcmp(t, key)) {
            if (key_node) *key_node = k;
            return ny_map_val(c, map, i);
        }
    }
    if (key_node) *key_node = NULL;
    return NULL;
}

size_t ny_seq_size(const yaml_node_t *seq)
{
    if (!seq || seq->type != YAML_SEQUENCE_NODE) return 0;
    return (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

yaml_node_t *ny_seq_item(ny_ctx *c, const yaml_node_t *seq, size_t i)
{
    return yaml_document_get_node(&c->doc, seq->data.sequence.items.start[i]);
}

/* ---- typed reads ---------------------------------------------------- */

bool ny_int(ny_ctx *c, const yaml_node_t *n, const char *what, int64_t *out)
{
    ny_val v = ny_value(n);
    char d[64];
    if (v.kind == NY_INT) {
        *out = v.i;
        return true;
    }
    if (v.kind == NY_BIGINT)
        ny_err(c, n, "%s is out of range: %s", what, ny_describe(n, d, sizeof d));
    else
        ny_err(c, n, "%s must be an integer; got %s", what, ny_describe(n, d, sizeof d));
    return false;
}

bool ny_num(ny_ctx *c, const yaml_node_t *n, const char *what, double *out)
{
    ny_val v = ny_value(n);
    char d[64];
    if (v.kind == NY_INT || v.kind == NY_FLOAT || v.kind == NY_BIGINT) {
        *out = v.f;
        return true;
    }
    ny_err(c, n, "%s must be a number; got %s", what, ny_describe(n, d, sizeof d));
    return false;
}

bool ny_bool(ny_ctx *c, const yaml_node_t *n, const char *what, bool *out)
{
    ny_val v = ny_value(n);
    char d[64];
    if (v.kind == NY_BOOL) {
        *out = v.b;
        return true;
    }
    bool yesno = v.kind == NY_STR && (!strcmp(v.s, "yes") || !strcmp(v.s, "no") ||
                                      !strcmp(v.s, "on") || !strcmp(v.s, "off"));
    ny_err(c, n, "%s must be true or false; got %s%s", what, ny_describe(n, d, sizeof d),
           yesno ? " (in YAML 1.2 yes/no/on/off are strings)" : "");
    return false;
}

bool ny_str(ny_ctx *c, const yaml_node_t *n, const char *what, const char **out)
{
    ny_val v = ny_value(n);
    char d[64];
    if (v.kind == NY_STR && strlen(v.s) == v.len) {
        *out = v.s;
        return true;
    }
    if (v.kind == NY_STR)
        ny_err(c, n, "%s must not contain NUL characters", what);
    else
        ny_err(c, n, "%s must be a string; got %s%s", what, ny_describe(n, d, sizeof d),
               n && n->type == YAML_SCALAR_NODE && v.len ? " (quote it to use it as text)" : "");
    return false;
}

bool ny_seq(ny_ctx *c, const yaml_node_t *n, const char *what)
{
    char d[64];
    if (n && n->type == YAML_SEQUENCE_NODE) return true;
    ny_err(c, n, "%s must be a list; got %s", what, ny_describe(n, d, sizeof d));
    return false;
}

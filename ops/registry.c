/* The op registry: the built-in table (ops/oplist.h) plus ops registered by
 * users at run time. Everything that needs to know about ops asks here. */
#include <stdio.h>
#include <string.h>

#include "../graph/internal.h"

static const nb_op_def *const builtin[] = {
#define OP(x) &nb_op_##x,
#include "oplist.h"
#undef OP
};
#define N_BUILTIN (sizeof builtin / sizeof builtin[0])

/* User ops: registered before graphs are built (not thread-safe against
 * concurrent registration). */
#define MAX_USER_OPS 64
static const nb_op_def *user_ops[MAX_USER_OPS];
static size_t n_user_ops;

size_t nb_op_count(void) { return N_BUILTIN + n_user_ops; }

const nb_op_def *nb_op_at(size_t i)
{
    if (i < N_BUILTIN) return builtin[i];
    i -= N_BUILTIN;
    return i < n_user_ops ? user_ops[i] : NULL;
}

const nb_op_def *nb_op_find(const char *name)
{
    for (size_t i = 0; i < nb_op_count(); i++)
        if (!strcmp(nb_op_at(i)->name, name)) return nb_op_at(i);
    return NULL;
}

#define STR_(x) #x
#define STR(x) STR_(x)

/* Arity and state within NB_MAX_INPUTS, attributes within NB_MAX_ATTRS (nodes
 * keep fixed-size arrays of both), and no field a node would need missing. */
const char *nb__op_problem(const nb_op_def *def)
{
    if (!def->name || !def->shape || !def->forward)
        return "an op needs a name, a shape rule and a forward kernel";
    if (def->min_in < 0 || (def->max_in >= 0 && def->max_in < def->min_in))
        return "min_in must be >= 0 and max_in >= min_in (or < 0: any number)";
    if (def->n_attrs < 0 || def->n_attrs > NB_MAX_ATTRS || (def->n_attrs && !def->attrs))
        return "an op has an attrs array of at most " STR(NB_MAX_ATTRS) " (NB_MAX_ATTRS)";
    for (int i = 0; i < def->n_attrs; i++) {
        if (!def->attrs[i].name) return "every attribute needs a name";
        if (def->attrs[i].type == NB_ATTR_STRING && !def->attrs[i].def.choices)
            return "a string attribute needs its list of choices (def.choices)";
    }
    if (def->n_state < 0 || def->n_state > NB_MAX_STATE || (def->n_state && !def->state))
        return "an op has a state array of at most " STR(NB_MAX_STATE) " (NB_MAX_STATE)";
    if (def->min_in + def->n_state > NB_MAX_INPUTS)
        return "min_in plus the state is more than " STR(NB_MAX_INPUTS) " inputs (NB_MAX_INPUTS)";
    for (int s = 0; s < def->n_state; s++)  /* state is sized by an input always given */
        if (!def->state[s].suffix || def->state[s].in < 0 || def->state[s].in >= def->min_in)
            return "each state entry needs a suffix and an input below min_in";
    return NULL;
}

nb_status nb_op_register(const nb_op_def *def)
{
    nb__thread_err();
    const char *why = def ? nb__op_problem(def) : "no def given";
    if (why)
        return nb__thread_fail(NB_ERR_ARG, "op '%s' cannot be registered: %s",
                               def && def->name ? def->name : "(null)", why);
    if (nb_op_find(def->name))
        return nb__thread_fail(NB_ERR_NAME, "op '%s' is registered already", def->name);
    if (n_user_ops == MAX_USER_OPS)
        return nb__thread_fail(NB_ERR_NOMEM, "op '%s': no room for more than %d user ops",
                               def->name, MAX_USER_OPS);
    user_ops[n_user_ops++] = def;
    return NB_OK;
}

static int min3(int a, int b, int c) { return a < b ? (a < c ? a : c) : (b < c ? b : c); }

/* Edit distance counting a swap of two neighbours as one edit ("trian" is one
 * from "train"); words are capped at 255 characters. */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 255 || lb > 255) return 1 << 20;
    int rows[3][256], *before = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            cur[j] = min3(prev[j - 1] + (a[i - 1] != b[j - 1]), prev[j] + 1, cur[j - 1] + 1);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                before[j - 2] + 1 < cur[j])
                cur[j] = before[j - 2] + 1;
        }
        int *t = before;
        before = prev, prev = cur, cur = t;
    }
    return prev[lb];
}

const char *nb_suggest(const char *word, const char *const *choices, size_t n)
{
    const char *best = NULL;
    int best_d = 1 << 20;
    for (size_t i = 0; i < n; i++) {
        int d = edit_distance(word, choices[i]);
        if (d < best_d) best_d = d, best = choices[i];
    }
    /* close enough: at most a third of the word (at least 1, at most 3 edits) */
    int limit = (int)strlen(word) / 3;
    limit = limit < 1 ? 1 : limit > 3 ? 3 : limit;
    return best_d <= limit ? best : NULL;
}

const char *nb_hint(char *buf, size_t cap, const char *suggestion)
{
    if (suggestion)
        snprintf(buf, cap, " (did you mean '%s'?)", suggestion);
    else if (cap)
        buf[0] = 0;
    return buf;
}

const char *nb_op_suggest(const char *name)
{
    const char *names[N_BUILTIN + MAX_USER_OPS];
    size_t n = 0;
    for (size_t i = 0; i < nb_op_count(); i++)
        if (!(nb_op_at(i)->flags & NB_OP_INTERNAL)) names[n++] = nb_op_at(i)->name;
    return nb_suggest(name, names, n);
}

/* nabla's one string → pointer hash table: open addressing with linear
 * probing, at most half full, backward-shift deletion (no tombstones, so a
 * table that sees many removals stays as fast as a fresh one). Each slot
 * keeps its key's hash and length: probes compare those first and growing
 * rehashes no string. The graph's name index and the model loader's names
 * use it, so that finding a name stays O(1) however large the model. */
#include <stdint.h>
#include <string.h>

#include "base.h"

struct nb_strmap_slot {
    const char *key;  /* NULL: empty */
    size_t len;
    uint64_t hash;
    void *value;
};

/* The slot holding the key, or the empty slot where it would go; cap > 0. */
static size_t probe(const nb_strmap *m, const char *key, size_t len, uint64_t h)
{
    size_t mask = m->cap - 1, i = h & mask;
    for (const nb_strmap_slot *s; (s = &m->slot[i])->key; i = (i + 1) & mask)
        if (s->hash == h && s->len == len && !memcmp(s->key, key, len)) break;
    return i;
}

/* Doubles the table (16 slots at first); NB_ERR_NOMEM when it cannot. */
static nb_status grow(nb_strmap *m)
{
    if (m->cap > SIZE_MAX / 2 / sizeof *m->slot) return NB_ERR_NOMEM;
    size_t cap = m->cap ? 2 * m->cap : 16;
    nb_strmap bigger = {nb_calloc(cap, sizeof *m->slot), cap, m->n};
    if (!bigger.slot) return NB_ERR_NOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        const nb_strmap_slot *s = &m->slot[i];
        if (s->key) bigger.slot[probe(&bigger, s->key, s->len, s->hash)] = *s;
    }
    nb_free(m->slot);
    *m = bigger;
    return NB_OK;
}

nb_status nb__strmap_put(nb_strmap *m, const char *key, void *value)
{
    if (!m || !key) return NB_ERR_ARG;
    size_t len = strlen(key);
    uint64_t h = nb__hash(key, len);
    size_t i = m->cap ? probe(m, key, len, h) : 0;
    if (m->cap && m->slot[i].key) {
        m->slot[i].key = key;  /* the caller's key lives with its value */
        m->slot[i].value = value;
        return NB_OK;
    }
    if (2 * (m->n + 1) > m->cap) {
        if (grow(m)) return NB_ERR_NOMEM;
        i = probe(m, key, len, h);
    }
    m->slot[i] = (nb_strmap_slot){key, len, h, value};
    m->n++;
    return NB_OK;
}

void *nb__strmap_getn(const nb_strmap *m, const char *key, size_t len)
{
    if (!m || !m->cap || !key) return NULL;
    const nb_strmap_slot *s = &m->slot[probe(m, key, len, nb__hash(key, len))];
    return s->key ? s->value : NULL;
}

void *nb__strmap_get(const nb_strmap *m, const char *key)
{
    return key ? nb__strmap_getn(m, key, strlen(key)) : NULL;
}

/* Is slot `home` outside the cyclic run (hole, j]? Then the entry at j, whose
 * probe started at home, may move back into the hole. */
static bool may_fill(size_t hole, size_t j, size_t home)
{
    return hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
}

bool nb__strmap_remove(nb_strmap *m, const char *key)
{
    if (!m || !m->cap || !key) return false;
    size_t len = strlen(key), mask = m->cap - 1;
    size_t hole = probe(m, key, len, nb__hash(key, len));
    if (!m->slot[hole].key) return false;
    m->slot[hole].key = NULL;
    m->n--;
    /* shift back the entries of the run that follows, so lookups still reach them */
    for (size_t j = (hole + 1) & mask; m->slot[j].key; j = (j + 1) & mask)
        if (may_fill(hole, j, m->slot[j].hash & mask)) {
            m->slot[hole] = m->slot[j];
            m->slot[j].key = NULL;
            hole = j;
        }
    return true;
}

bool nb__strmap_next(const nb_strmap *m, size_t *i, const char **key, void **value)
{
    for (; m && *i < m->cap; ++*i) {
        const nb_strmap_slot *s = &m->slot[*i];
        if (!s->key) continue;
        if (key) *key = s->key;
        if (value) *value = s->value;
        ++*i;
        return true;
    }
    return false;
}

void nb__strmap_free(nb_strmap *m)
{
    if (!m) return;
    nb_free(m->slot);
    *m = (nb_strmap){0};
}

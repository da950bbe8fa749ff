/* Tensor sets (io.h): named tensors and string metadata, as safetensors and
 * .npz files hold them. Names and metadata keys are found through hash tables
 * that the set keeps beside its arrays, so filling a set of n tensors and
 * looking each up costs O(n), not O(n^2) (a 50 000-param model took 9 s to
 * save and load). A set filled by hand, without nb_tensor_set_add, still
 * works: its lookups scan the array. */
#include <stdint.h>
#include <string.h>

#include "base.h"
#include "io_util.h"
#include "nabla/io.h"

#define META_KEY "__metadata__"

struct nb_tensor_index {
    nb_strmap names, meta;  /* -> position + 1 */
    size_t n, n_meta;       /* what the tables hold: valid while equal to the set's */
    size_t cap, cap_meta;   /* of the arrays */
};

static void *pos(size_t i) { return (void *)(uintptr_t)(i + 1); }

/* The index when it matches the arrays; NULL for a set filled by hand. */
static struct nb_tensor_index *valid_index(const nb_tensor_set *set)
{
    struct nb_tensor_index *x = set->index;
    return x && x->n == set->n && x->n_meta == set->n_meta ? x : NULL;
}

/* The index, made for an empty set; NULL when the set was filled by hand (or
 * out of memory): the caller then scans. */
static struct nb_tensor_index *index_of(nb_tensor_set *set)
{
    if (!set->index && set->n == 0 && set->n_meta == 0) set->index = nb_calloc(1, sizeof *set->index);
    return valid_index(set);
}

static bool grow(void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return true;
    size_t c = *cap ? 2 * *cap : 16;
    while (c < need) c *= 2;
    void *a = nb_realloc(*arr, c * size);
    if (!a) return false;
    *arr = a, *cap = c;
    return true;
}

nb_status nb_io_set_push(nb_tensor_set *set, char *name, const nb_tensor *t)
{
    struct nb_tensor_index *x = index_of(set);
    size_t need = set->n + 1, byhand = 0;
    if (!grow((void **)&set->items, x ? &x->cap : &byhand, need, sizeof *set->items)) return NB_ERR_NOMEM;
    if (x && nb__strmap_put(&x->names, name, pos(set->n))) return NB_ERR_NOMEM;
    set->items[set->n].name = name;
    set->items[set->n].t = *t;
    set->items[set->n].stored = NULL;
    set->n++;
    if (x) x->n = set->n;
    return NB_OK;
}

nb_status nb_tensor_set_add(nb_tensor_set *set, const char *name, const nb_tensor *t)
{
    size_t bytes;
    char *err = nb__thread_err();
    if (!set || !name || !t) return nb__thread_fail(NB_ERR_ARG, "tensor set: no set, name or tensor given");
    nb_status st = nb_io_check_tensor("tensor set", name, t, &bytes, err, NB_ERR_CAP);
    if (st) return st;
    /* A second tensor of the same name, or one named like the metadata,
     * would make a file that no reader accepts. */
    if (nb_tensor_set_find(set, name) || !strcmp(name, META_KEY))
        return nb__thread_fail(NB_ERR_NAME, "tensor set: the name '%s' is %s", name,
                               strcmp(name, META_KEY) ? "taken" : "reserved");
    nb_tensor copy;
    char *dup = nb__strdup(name);
    st = dup ? nb_tensor_alloc(&copy, t->dtype, t->rank, t->shape) : NB_ERR_NOMEM;
    if (!st) {
        memcpy(copy.data, t->data, bytes);
        st = nb_io_set_push(set, dup, &copy);
        if (st) nb_tensor_free(&copy);
    }
    if (st) nb_free(dup);
    return st == NB_ERR_NOMEM ? nb__thread_fail(st, "tensor set: out of memory") : st;
}

static size_t meta_find(const nb_tensor_set *set, const char *key)
{
    const struct nb_tensor_index *x = valid_index(set);
    if (x) {
        void *v = nb__strmap_get(&x->meta, key);
        return v ? (size_t)(uintptr_t)v - 1 : SIZE_MAX;
    }
    for (size_t i = 0; i < set->n_meta; i++)
        if (!strcmp(set->meta_keys[i], key)) return i;
    return SIZE_MAX;
}

static nb_status set_meta(nb_tensor_set *set, const char *key, const char *value)
{
    size_t at = meta_find(set, key);
    char *v = nb__strdup(value);
    if (!v) return NB_ERR_NOMEM;
    if (at != SIZE_MAX) {
        nb_free(set->meta_vals[at]);
        set->meta_vals[at] = v;
        return NB_OK;
    }
    struct nb_tensor_index *x = index_of(set);
    size_t need = set->n_meta + 1, cap = x ? x->cap_meta : 0, cap2 = cap;
    char *k = nb__strdup(key);
    /* both arrays grow to the same capacity; a failure leaves them larger, which is harmless */
    if (!k || !grow((void **)&set->meta_keys, &cap, need, sizeof(char *)) ||
        !grow((void **)&set->meta_vals, &cap2, need, sizeof(char *)) ||
        (x && nb__strmap_put(&x->meta, k, pos(set->n_meta)))) {
        nb_free(k), nb_free(v);
        return NB_ERR_NOMEM;
    }
    if (x) x->cap_meta = cap;
    set->meta_keys[set->n_meta] = k;
    set->meta_vals[set->n_meta] = v;
    set->n_meta++;
    if (x) x->n_meta = set->n_meta;
    return NB_OK;
}

nb_status nb_tensor_set_meta(nb_tensor_set *set, const char *key, const char *value)
{
    nb__thread_err();
    if (!set || !key || !value) return nb__thread_fail(NB_ERR_ARG, "tensor set: no set, key or value given");
    nb_status st = set_meta(set, key, value);
    return st ? nb__thread_fail(st, "tensor set: out of memory") : NB_OK;
}

const nb_tensor *nb_tensor_set_find(const nb_tensor_set *set, const char *name)
{
    if (!set || !name) return NULL;
    const struct nb_tensor_index *x = valid_index(set);
    if (x) {
        void *v = nb__strmap_get(&x->names, name);
        return v ? &set->items[(size_t)(uintptr_t)v - 1].t : NULL;
    }
    for (size_t i = 0; i < set->n; i++)
        if (!strcmp(set->items[i].name, name)) return &set->items[i].t;
    return NULL;
}

void nb_tensor_set_free(nb_tensor_set *set)
{
    if (!set) return;
    for (size_t i = 0; i < set->n; i++) {
        nb_free(set->items[i].name);
        nb_tensor_free(&set->items[i].t);
    }
    for (size_t i = 0; i < set->n_meta; i++) {
        nb_free(set->meta_keys[i]);
        nb_free(set->meta_vals[i]);
    }
    nb_free(set->items);
    nb_free(set->meta_keys);
    nb_free(set->meta_vals);
    if (set->index) {
        nb__strmap_free(&set->index->names);
        nb__strmap_free(&set->index->meta);
        nb_free(set->index);
    }
    memset(set, 0, sizeof *set);
}

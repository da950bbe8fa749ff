/* Buffer placement (place.h). Two strategies: the size-ordered first fit
 * packs tightly but compares every buffer with every placed one, so past a
 * few thousand buffers (a 200 000-node chain and its gradient) buffers are
 * instead placed as a memory allocator would hand them out over time. */
#include <stdlib.h>
#include <string.h>

#include "../src/base.h"
#include "place.h"

typedef struct key {
    size_t size;
    int time, idx;
} key;

typedef struct gap {
    size_t off, size;
} gap;

struct nb_placer {
    size_t cap;
    key *keys, *ends;  /* buffers in placing order; by death (in time) */
    int *placed;       /* placed buffers by offset (by size) */
    gap *gaps;         /* free gaps below the top, by offset (in time) */
};

size_t nb__placer_bytes(size_t cap)
{
    return sizeof(nb_placer) + cap * (2 * sizeof(key) + sizeof(int) + sizeof(gap));
}

nb_placer *nb__placer_new(size_t cap)
{
    nb_placer *pl = nb_calloc(1, sizeof *pl);
    if (!pl) return NULL;
    pl->cap = cap;
    pl->keys = nb_malloc(cap * sizeof *pl->keys);
    pl->ends = nb_malloc(cap * sizeof *pl->ends);
    pl->placed = nb_malloc(cap * sizeof *pl->placed);
    pl->gaps = nb_malloc(cap * sizeof *pl->gaps);
    if (!pl->keys || !pl->ends || !pl->placed || !pl->gaps) {
        nb__placer_free(pl);
        return NULL;
    }
    return pl;
}

void nb__placer_free(nb_placer *pl)
{
    if (!pl) return;
    nb_free(pl->keys);
    nb_free(pl->ends);
    nb_free(pl->placed);
    nb_free(pl->gaps);
    nb_free(pl);
}

static int by_size(const void *a, const void *b)
{
    const key *x = a, *y = b;
    if (x->size != y->size) return x->size > y->size ? -1 : 1;
    if (x->time != y->time) return x->time < y->time ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static int by_time(const void *a, const void *b)
{
    const key *x = a, *y = b;
    if (x->time != y->time) return x->time < y->time ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Largest first (then earliest), each at the lowest offset where it overlaps
 * no placed buffer live at the same time. */
static size_t place_by_size(nb_placer *pl, buf *bufs, int n)
{
    for (int b = 0; b < n; b++) pl->keys[b] = (key){bufs[b].size, bufs[b].first, b};
    qsort(pl->keys, (size_t)n, sizeof *pl->keys, by_size);
    size_t peak = 0;
    int n_placed = 0;
    for (int q = 0; q < n; q++) {
        buf *b = &bufs[pl->keys[q].idx];
        size_t off = 0;
        for (int k = 0; k < n_placed; k++) {  /* placed buffers, by offset */
            const buf *c = &bufs[pl->placed[k]];
            if (c->last < b->first || c->first > b->last) continue;  /* never live together */
            if (c->off >= off + b->size) break;
            if (c->off + c->size > off) off = c->off + c->size;
        }
        b->off = off;
        int at = n_placed;
        while (at > 0 && bufs[pl->placed[at - 1]].off > off) at--;
        memmove(&pl->placed[at + 1], &pl->placed[at], (size_t)(n_placed - at) * sizeof *pl->placed);
        pl->placed[at] = pl->keys[q].idx;
        n_placed++;
        if (off + b->size > peak) peak = off + b->size;
    }
    return peak;
}

/* Returns c's memory to the gaps, merged with the gaps it touches. */
static void release(nb_placer *pl, int *n_gaps, const buf *c)
{
    if (!c->size) return;
    int lo = 0, hi = *n_gaps;  /* the first gap above c */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (pl->gaps[mid].off < c->off) lo = mid + 1;
        else hi = mid;
    }
    gap g = {c->off, c->size};
    bool left = lo > 0 && pl->gaps[lo - 1].off + pl->gaps[lo - 1].size == g.off;
    bool right = lo < *n_gaps && g.off + g.size == pl->gaps[lo].off;
    if (left && right) {
        pl->gaps[lo - 1].size += g.size + pl->gaps[lo].size;
        memmove(&pl->gaps[lo], &pl->gaps[lo + 1], (size_t)(*n_gaps - lo - 1) * sizeof *pl->gaps);
        (*n_gaps)--;
    } else if (left) {
        pl->gaps[lo - 1].size += g.size;
    } else if (right) {
        pl->gaps[lo].off = g.off;
        pl->gaps[lo].size += g.size;
    } else {
        memmove(&pl->gaps[lo + 1], &pl->gaps[lo], (size_t)(*n_gaps - lo) * sizeof *pl->gaps);
        pl->gaps[lo] = g;
        (*n_gaps)++;
    }
}

/* The smallest gap that holds size (the lowest of equals); else the gap that
 * ends at the top, which grows; else the top. */
static size_t take(nb_placer *pl, int *n_gaps, size_t *top, size_t size)
{
    int best = -1;
    for (int k = 0; k < *n_gaps; k++)
        if (pl->gaps[k].size >= size && (best < 0 || pl->gaps[k].size < pl->gaps[best].size)) best = k;
    if (best < 0 && *n_gaps && pl->gaps[*n_gaps - 1].off + pl->gaps[*n_gaps - 1].size == *top)
        best = *n_gaps - 1;
    if (best < 0) {
        *top += size;
        return *top - size;
    }
    gap *g = &pl->gaps[best];
    size_t off = g->off;
    if (off + size > *top) *top = off + size;
    if (g->size > size) {
        g->off += size;
        g->size -= size;
    } else {
        memmove(g, g + 1, (size_t)(*n_gaps - best - 1) * sizeof *g);
        (*n_gaps)--;
    }
    return off;
}

/* In the order buffers come alive (their first step), each takes memory that
 * every buffer dead by then has given back. */
static size_t place_in_time(nb_placer *pl, buf *bufs, int n)
{
    for (int b = 0; b < n; b++) {
        pl->keys[b] = (key){bufs[b].size, bufs[b].first, b};
        pl->ends[b] = (key){bufs[b].size, bufs[b].last, b};
    }
    qsort(pl->keys, (size_t)n, sizeof *pl->keys, by_time);
    qsort(pl->ends, (size_t)n, sizeof *pl->ends, by_time);
    size_t top = 0;
    int n_gaps = 0, e = 0;
    for (int q = 0; q < n; q++) {
        buf *b = &bufs[pl->keys[q].idx];
        for (; e < n && pl->ends[e].time < b->first; e++) release(pl, &n_gaps, &bufs[pl->ends[e].idx]);
        b->off = b->size ? take(pl, &n_gaps, &top, b->size) : 0;
    }
    return top;
}

size_t nb__place(nb_placer *pl, buf *bufs, int n)
{
    return n <= NB_PLACE_BEST ? place_by_size(pl, bufs, n) : place_in_time(pl, bufs, n);
}

/* The most bytes live at one step: buffers come alive at `first` and die
 * after `last`, swept in time order (the placer's scratch, no allocation). */
size_t nb__live_peak(nb_placer *pl, const buf *bufs, int n)
{
    for (int b = 0; b < n; b++) {
        pl->keys[b] = (key){bufs[b].size, bufs[b].first, b};
        pl->ends[b] = (key){bufs[b].size, bufs[b].last, b};
    }
    qsort(pl->keys, (size_t)n, sizeof *pl->keys, by_time);
    qsort(pl->ends, (size_t)n, sizeof *pl->ends, by_time);
    size_t live = 0, peak = 0;
    for (int q = 0, e = 0; q < n; q++) {
        for (; e < n && pl->ends[e].time < pl->keys[q].time; e++) live -= pl->ends[e].size;
        live += pl->keys[q].size;
        if (live > peak) peak = live;
    }
    return peak;
}

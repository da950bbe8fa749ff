/* Placement of a plan's buffers in its one arena: offsets such that no two
 * buffers live at the same step share a byte. Internal to graph/. */
#ifndef NABLA_GRAPH_PLACE_H
#define NABLA_GRAPH_PLACE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct buf {
    size_t size, off;
    int first, last;  /* plan node indices, inclusive */
    int node;         /* whose output (the first, if others run in place) or workspace */
    bool work;
} buf;

/* Scratch for up to `cap` buffers, made once per plan. */
typedef struct nb_placer nb_placer;
nb_placer *nb__placer_new(size_t cap);
void nb__placer_free(nb_placer *pl);
size_t nb__placer_bytes(size_t cap);

/* Sets bufs[i].off for n <= cap buffers and returns the arena size. Up to
 * NB_PLACE_BEST buffers are placed largest first, each at the lowest offset
 * free for its lifetime (tighter, quadratic); more are placed in the order
 * they come alive into the best-fitting free gap (n log n plus the gaps). */
#define NB_PLACE_BEST 4096
size_t nb__place(nb_placer *pl, buf *bufs, int n);
/* The most bytes of the n buffers live at one step: no arena can be smaller. */
size_t nb__live_peak(nb_placer *pl, const buf *bufs, int n);

#endif

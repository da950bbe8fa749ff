/* nb_reduce_sum: the one summing kernel of sum, mean and sum_to (bias
 * gradients), accurate to PyTorch's level in f32 (model-format.md,
 * "Reductions": 2e7 values from U(0, 1) within 1e-6 of the exact sum).
 * A running f32 sum of n terms errs by up to n ulps of the total, so:
 *  - a contiguous run of reduced elements (a whole tensor, the rows of an
 *    `axis: -1` sum) is summed pairwise: blocks of up to 1024 elements with 8
 *    partial sums (which vectorise), blocks combined by halving, an error of
 *    O(log n) ulps;
 *  - rows summed into a row of kept elements (column sums, `axis: 0`) go
 *    into f64 accumulators, a chunk of columns at a time on the stack, so the
 *    rows are read once, in order, and no buffer is needed.
 * Both orders are fixed, so every run gives the same bits. */
#include <string.h>

#include "reduce.h"

enum { BLOCK = 1024, CHUNK = 2048, ROWS = 32 };

#define SUM_KERNELS(T)                                                                   \
    static T sum_##T(const T *restrict x, int64_t n)                                     \
    {                                                                                    \
        if (n > BLOCK) { /* halves cut at a multiple of 8 keep the blocks aligned */     \
            int64_t h = (n / 2 + 7) / 8 * 8;                                             \
            return sum_##T(x, h) + sum_##T(x + h, n - h);                                \
        }                                                                                \
        T p[8] = {0};                                                                    \
        int64_t i = 0;                                                                   \
        for (; i + 8 <= n; i += 8)                                                       \
            for (int j = 0; j < 8; j++) p[j] += x[i + j];                                \
        T s = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));         \
        for (; i < n; i++) s += x[i];                                                    \
        return s;                                                                        \
    }                                                                                    \
    static void sum_row_##T(void *ctx, const int64_t *off, int64_t n)                    \
    {                                                                                    \
        nb_red_walk *w = ctx;                                                            \
        const T *x = (const T *)w->x + off[0];                                           \
        T *y = (T *)w->y + off[1];                                                       \
        if (w->sy == 0) {                                                                \
            y[0] += sum_##T(x, n);                                                       \
        } else {                                                                         \
            for (int64_t i = 0; i < n; i++) y[i] += x[i];                                \
        }                                                                                \
    }                                                                                    \
    /* rows r < n of x, w->cols long and w->row_stride apart, into one row of y:  \
     * blocks of ROWS rows summed in y itself (a local array runs 3x slower      \
     * here), each block's sums then added to f64 accumulators */                    \
    static void sum_cols_##T(void *ctx, const int64_t *off, int64_t n)                   \
    {                                                                                    \
        nb_red_walk *w = ctx;                                                            \
        const T *x = (const T *)w->x + off[0];                                           \
        T *y = (T *)w->y + off[1];                                                       \
        int64_t len = w->cols, stride = w->row_stride;                                   \
        for (int64_t c0 = 0; c0 < len; c0 += CHUNK, y += CHUNK, x += CHUNK) {            \
            int64_t m = len - c0 < CHUNK ? len - c0 : CHUNK;                             \
            double acc[CHUNK];                                                           \
            for (int64_t j = 0; j < m; j++) acc[j] = y[j];                               \
            for (int64_t r0 = 0; r0 < n; r0 += ROWS) {                                   \
                int64_t r1 = n - r0 < ROWS ? n : r0 + ROWS;                              \
                for (int64_t j = 0; j < m; j++) y[j] = 0;                                \
                for (int64_t r = r0; r < r1; r++) {                                      \
                    const T *xr = x + r * stride;                                        \
                    for (int64_t j = 0; j < m; j++) y[j] += xr[j];                       \
                }                                                                        \
                for (int64_t j = 0; j < m; j++) acc[j] += y[j];                          \
            }                                                                            \
            for (int64_t j = 0; j < m; j++) y[j] = (T)acc[j];                            \
        }                                                                                \
    }
SUM_KERNELS(float)
SUM_KERNELS(double)

void nb_reduce_walk(nb_red_walk *w, const nb_dims *xs, const nb_dims *ys,
                    void (*row)(void *, const int64_t *, int64_t))
{
    nb_iter it;
    const nb_dims *ops[2] = {xs, ys};
    nb_iter_init(&it, xs, 2, ops);
    w->sy = it.stride[1][it.rank - 1];
    nb_iter_rows(&it, w, row);
}

void nb_reduce_sum(const void *x, const nb_dims *xs, void *y, const nb_dims *ys, nb_dtype dt)
{
    nb_red_walk w = {.x = x, .y = y};
    bool f64 = dt == NB_F64;
    memset(y, 0, nb_dims_numel(ys) * nb_dtype_size(dt));
    nb_iter it;
    const nb_dims *ops[2] = {xs, ys};
    nb_iter_init(&it, xs, 2, ops);
    int r = it.rank;
    /* Merged axes alternate kept and reduced. A reduced axis just outside a
     * kept innermost one: walk blocks of rows (the reduced axis becomes the
     * "row" of the walk) and sum each block down its columns. */
    if (r >= 2 && it.stride[1][r - 1] == 1 && it.stride[1][r - 2] == 0) {
        w.cols = it.dim[r - 1];
        w.row_stride = it.stride[0][r - 2];
        it.rank = r - 1;
        nb_iter_rows(&it, &w, f64 ? sum_cols_double : sum_cols_float);
        return;
    }
    w.sy = it.stride[1][r - 1];
    nb_iter_rows(&it, &w, f64 ? sum_row_double : sum_row_float);
}

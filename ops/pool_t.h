/* The type-generic pooling kernels, included by pool.c once per float type
 * with T (float or double) and F(name) (name_f32 or name_f64) defined.
 *
 * Windows are separable, so each plane is pooled in two passes: along each
 * input row first (rv[ih][ow] over the window's columns, in the workspace),
 * then down the window's rows. With padding, a row is first copied between
 * pad cells (-inf for max, 0 for avg), so every window of the row pass is
 * whole; the row passes take the window size as a constant for the common
 * sizes (WITH_SIZE) so their inner loops unroll. Padding never wins a max,
 * and avg divides by size^2 whatever the window holds. For max, the strict >
 * in row-major order keeps each window's first maximum: the first row that
 * holds the window's maximum, at that row's first maximum. */

/* Row xr as the row pass sees it: indices -p .. W+p-1 (pad cells = fill). */
static const T *F(pad_row)(const T *xr, const pgeom *g, T fill, T *buf)
{
    if (!g->p) return xr;
    for (int64_t i = 0; i < g->p; i++) buf[i] = buf[g->p + g->W + i] = fill;
    memcpy(buf + g->p, xr, (size_t)g->W * sizeof(T));
    return buf + g->p;
}

static inline void F(row_max)(const T *restrict r, const pgeom *g, int64_t K, T *restrict rv)
{
    for (int64_t ow = 0; ow < g->OW; ow++) {
        const T *q = r + ow * g->s - g->p;
        T m = q[0];
        for (int64_t j = 1; j < K; j++) m = q[j] > m ? q[j] : m;
        rv[ow] = m;
    }
}

/* ... with ri[ow] the column of the row's first maximum in the window. */
static inline void F(row_argmax)(const T *restrict r, const pgeom *g, int64_t K, T *restrict rv,
                                 int32_t *restrict ri)
{
    for (int64_t ow = 0; ow < g->OW; ow++) {
        int32_t c0 = (int32_t)(ow * g->s - g->p), at = c0 < 0 ? 0 : c0;  /* a real cell */
        const T *q = r + c0;
        T m = -INFINITY;
        for (int64_t j = 0; j < K; j++) {
            int32_t gt = -(int32_t)(q[j] > m);  /* a mask, not a branch: maxima are random */
            m = q[j] > m ? q[j] : m;
            at = ((c0 + (int32_t)j) & gt) | (at & ~gt);
        }
        rv[ow] = m;
        ri[ow] = at;
    }
}

static inline void F(row_sum)(const T *restrict r, const pgeom *g, int64_t K, T *restrict rv)
{
    for (int64_t ow = 0; ow < g->OW; ow++) {
        const T *q = r + ow * g->s - g->p;
        T sum = 0;
        for (int64_t j = 0; j < K; j++) sum += q[j];
        rv[ow] = sum;
    }
}

/* The transposed row pass: gr[ow*s - p + j] += rv[ow] (gr padded like a row). */
static inline void F(row_spread)(const T *restrict rv, const pgeom *g, int64_t K, T *restrict gr)
{
    for (int64_t ow = 0; ow < g->OW; ow++) {
        T *q = gr + ow * g->s - g->p;
        for (int64_t j = 0; j < K; j++) q[j] += rv[ow];
    }
}

static void F(max_pool_fwd)(const T *restrict x, const pgeom *g, void *work, T *restrict y)
{
    T *rv = work, *buf = rv + g->H * g->OW;
    for (int64_t pl = 0; pl < g->planes; pl++, x += g->H * g->W) {
        for (int64_t ih = 0; ih < g->H; ih++) {
            const T *r = F(pad_row)(x + ih * g->W, g, -INFINITY, buf);
            WITH_SIZE(g->k, F(row_max)(r, g, K, rv + ih * g->OW));
        }
        for (int64_t oh = 0; oh < g->OH; oh++, y += g->OW) {
            int64_t h0, h1;
            window(oh, g, g->H, &h0, &h1);
            memcpy(y, rv + h0 * g->OW, (size_t)g->OW * sizeof(T));
            for (int64_t ih = h0 + 1; ih < h1; ih++)
                for (int64_t ow = 0; ow < g->OW; ow++) {
                    T v = rv[ih * g->OW + ow];
                    y[ow] = v > y[ow] ? v : y[ow];
                }
        }
    }
}

/* Each window's gradient to its first maximum, recomputed from x. */
static void F(max_pool_bwd)(const T *restrict gy, const T *restrict x, const pgeom *g, void *work,
                            T *restrict gx)
{
    const int64_t HW = g->H * g->W, n = g->H * g->OW;
    T *rv = work, *bv = rv + n, *buf = bv + g->OW;
    int32_t *ri = (int32_t *)(buf + g->W + 2 * g->p), *bi = ri + n;
    memset(gx, 0, (size_t)(g->planes * HW) * sizeof(T));
    for (int64_t pl = 0; pl < g->planes; pl++, x += HW, gx += HW) {
        for (int64_t ih = 0; ih < g->H; ih++) {
            const T *r = F(pad_row)(x + ih * g->W, g, -INFINITY, buf);
            WITH_SIZE(g->k, F(row_argmax)(r, g, K, rv + ih * g->OW, ri + ih * g->OW));
        }
        for (int64_t oh = 0; oh < g->OH; oh++, gy += g->OW) {
            int64_t h0, h1;
            window(oh, g, g->H, &h0, &h1);
            for (int64_t ow = 0; ow < g->OW; ow++) {
                bv[ow] = rv[h0 * g->OW + ow];
                bi[ow] = (int32_t)(h0 * g->W) + ri[h0 * g->OW + ow];
            }
            for (int64_t ih = h0 + 1; ih < h1; ih++)
                for (int64_t ow = 0; ow < g->OW; ow++) {
                    T v = rv[ih * g->OW + ow], cur = bv[ow];
                    int32_t at = (int32_t)(ih * g->W) + ri[ih * g->OW + ow];
                    int32_t gt = -(int32_t)(v > cur);
                    bv[ow] = v > cur ? v : cur;
                    bi[ow] = (at & gt) | (bi[ow] & ~gt);
                }
            for (int64_t ow = 0; ow < g->OW; ow++) gx[bi[ow]] += gy[ow];
        }
    }
}

static void F(avg_pool_fwd)(const T *restrict x, const pgeom *g, void *work, T *restrict y)
{
    const T scale = (T)1 / (T)(g->k * g->k);
    T *rv = work, *buf = rv + g->H * g->OW;
    for (int64_t pl = 0; pl < g->planes; pl++, x += g->H * g->W) {
        for (int64_t ih = 0; ih < g->H; ih++) {
            const T *r = F(pad_row)(x + ih * g->W, g, 0, buf);
            WITH_SIZE(g->k, F(row_sum)(r, g, K, rv + ih * g->OW));
        }
        for (int64_t oh = 0; oh < g->OH; oh++, y += g->OW) {
            int64_t h0, h1;
            window(oh, g, g->H, &h0, &h1);
            for (int64_t ow = 0; ow < g->OW; ow++) {
                T sum = 0;
                for (int64_t ih = h0; ih < h1; ih++) sum += rv[ih * g->OW + ow];
                y[ow] = sum * scale;
            }
        }
    }
}

/* The two passes transposed: gy / size^2 summed over the windows holding
 * each input row (rv), then spread along the row. */
static void F(avg_pool_bwd)(const T *restrict gy, const pgeom *g, void *work, T *restrict gx)
{
    const T scale = (T)1 / (T)(g->k * g->k);
    T *rv = work, *buf = rv + g->H * g->OW;
    for (int64_t pl = 0; pl < g->planes; pl++, gx += g->H * g->W) {
        memset(rv, 0, (size_t)(g->H * g->OW) * sizeof(T));
        for (int64_t oh = 0; oh < g->OH; oh++, gy += g->OW) {
            int64_t h0, h1;
            window(oh, g, g->H, &h0, &h1);
            for (int64_t ih = h0; ih < h1; ih++)
                for (int64_t ow = 0; ow < g->OW; ow++) rv[ih * g->OW + ow] += gy[ow] * scale;
        }
        for (int64_t ih = 0; ih < g->H; ih++) {
            T *gr = g->p ? buf + g->p : gx + ih * g->W;  /* padded rows go through buf */
            memset(gr - g->p, 0, (size_t)(g->W + 2 * g->p) * sizeof(T));
            WITH_SIZE(g->k, F(row_spread)(rv + ih * g->OW, g, K, gr));
            if (g->p) memcpy(gx + ih * g->W, gr, (size_t)g->W * sizeof(T));
        }
    }
}

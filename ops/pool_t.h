/* The type-generic pooling kernels, included by pool.c once per float type
 * with T (float or double) and F(name) (name_f32 or name_f64) defined.
 *
 * Windows are separable, so each plane is pooled in two passes: along each
 * input row first (rv[ih][ow] over the window's kw columns, in the
 * workspace), then down the window's kh rows. With padding, a row is first
 * copied between pad cells (-inf for max, 0 for avg), so every window of the
 * row pass is whole; the row passes take the window width as a constant for
 * the common sizes (WITH_SIZE) so their inner loops unroll. Padding never
 * wins a max, and avg divides by kh*kw whatever the window holds (by its
 * real cells with count_include_pad false: avg_scale). For max,
 * a value wins when it is greater than the maximum so far or NaN (PyTorch's
 * rule, `val > max || isnan(val)`): a window holding a NaN has the maximum
 * NaN and its gradient goes to its last NaN; otherwise to its first maximum,
 * both in row-major order, which the two passes keep (the row pass picks
 * within a row, the column pass between rows by the same rule). Testing for
 * NaN costs about a tenth of the pooling time, so a plane is first scanned
 * for NaN (in cache for the pooling after) and only a plane holding one is
 * pooled by the NaN-aware compare: max_plane and route_plane are inlined
 * twice, with `nan` a constant. */

/* Row xr as the row pass sees it: indices -pw .. W+pw-1 (pad cells = fill). */
static const T *F(pad_row)(const T *xr, const pgeom *g, T fill, T *buf)
{
    if (!g->pw) return xr;
    for (int64_t i = 0; i < g->pw; i++) buf[i] = buf[g->pw + g->W + i] = fill;
    memcpy(buf + g->pw, xr, (size_t)g->W * sizeof(T));
    return buf + g->pw;
}

/* v wins over the maximum m so far (NaN always wins, as in PyTorch, when the
 * plane may hold one: `nan` is a compile-time constant where this is used). */
#define WINS(v, m) ((v) > (m) || (nan && (v) != (v)))
#define INLINE static inline __attribute__((always_inline))

/* May x[0..n) hold a NaN? (inf also counts: it takes the NaN-aware path,
 * which handles it alike.) */
static bool F(has_nan)(const T *restrict x, int64_t n)
{
    return !nb__all_finite(sizeof(T) == sizeof(float) ? NB_F32 : NB_F64, x, (size_t)n);
}

INLINE void F(row_max)(const T *restrict r, const pgeom *g, int64_t K, T *restrict rv, bool nan)
{
    for (int64_t ow = 0; ow < g->OW; ow++) {
        const T *q = r + ow * g->sw - g->pw;
        T m = q[0];
        for (int64_t j = 1; j < K; j++) m = WINS(q[j], m) ? q[j] : m;
        rv[ow] = m;
    }
}

/* ... with ri[ow] the column of the row's winner in the window. */
INLINE void F(row_argmax)(const T *restrict r, const pgeom *g, int64_t K, T *restrict rv,
                          int32_t *restrict ri, bool nan)
{
    for (int64_t ow = 0; ow < g->OW; ow++) {
        int32_t c0 = (int32_t)(ow * g->sw - g->pw), at = c0 < 0 ? 0 : c0;  /* a real cell */
        const T *q = r + c0;
        T m = -INFINITY;
        for (int64_t j = 0; j < K; j++) {
            int32_t gt = -(int32_t)WINS(q[j], m);  /* a mask, not a branch: maxima are random */
            m = WINS(q[j], m) ? q[j] : m;
            at = ((c0 + (int32_t)j) & gt) | (at & ~gt);
        }
        rv[ow] = m;
        ri[ow] = at;
    }
}

static inline void F(row_sum)(const T *restrict r, const pgeom *g, int64_t K, T *restrict rv)
{
    for (int64_t ow = 0; ow < g->OW; ow++) {
        const T *q = r + ow * g->sw - g->pw;
        T sum = 0;
        for (int64_t j = 0; j < K; j++) sum += q[j];
        rv[ow] = sum;
    }
}

/* The transposed row pass: gr[ow*sw - pw + j] += rv[ow] (gr padded like a row). */
static inline void F(row_spread)(const T *restrict rv, const pgeom *g, int64_t K, T *restrict gr)
{
    for (int64_t ow = 0; ow < g->OW; ow++) {
        T *q = gr + ow * g->sw - g->pw;
        for (int64_t j = 0; j < K; j++) q[j] += rv[ow];
    }
}

/* One plane x [H, W] into y [OH, OW]. */
INLINE void F(max_plane)(const T *restrict x, const pgeom *g, T *restrict rv, T *restrict buf,
                         T *restrict y, bool nan)
{
    for (int64_t ih = 0; ih < g->H; ih++) {
        const T *r = F(pad_row)(x + ih * g->W, g, -INFINITY, buf);
        WITH_SIZE(g->kw, F(row_max)(r, g, K, rv + ih * g->OW, nan));
    }
    for (int64_t oh = 0; oh < g->OH; oh++, y += g->OW) {
        int64_t h0, h1;
        window(oh, g, &h0, &h1);
        memcpy(y, rv + h0 * g->OW, (size_t)g->OW * sizeof(T));
        for (int64_t ih = h0 + 1; ih < h1; ih++)
            for (int64_t ow = 0; ow < g->OW; ow++) {
                T v = rv[ih * g->OW + ow];
                y[ow] = WINS(v, y[ow]) ? v : y[ow];
            }
    }
}

/* 2x2 windows at stride 2 without padding (the textbook CNNs' pool), on a
 * plane without NaN: one pass without workspace, whose loops vectorise (GCC
 * splits even and odd columns); 10x faster than the two passes for this
 * case. The compares are the two passes' own in the same order (within each
 * row, then the second row only when greater), so values and routes are
 * identical (is_2x2 in pool.c says when). */
INLINE void F(max2_plane)(const T *restrict x, const pgeom *g, T *restrict y)
{
    for (int64_t oh = 0; oh < g->OH; oh++, y += g->OW) {
        const T *r0 = x + 2 * oh * g->W, *r1 = r0 + g->W;
        for (int64_t ow = 0; ow < g->OW; ow++) {
            T a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
            T m0 = b > a ? b : a, m1 = d > c ? d : c;
            y[ow] = m1 > m0 ? m1 : m0;
        }
    }
}

/* gy of each window to its winner in gx, 0 to the others; gx's cells outside
 * every window (a last odd row or column) are the caller's to clear. */
INLINE void F(max2_route)(const T *restrict gy, const T *restrict x, const pgeom *g,
                          T *restrict gx)
{
    for (int64_t oh = 0; oh < g->OH; oh++, gy += g->OW) {
        const T *r0 = x + 2 * oh * g->W, *r1 = r0 + g->W;
        T *g0 = gx + 2 * oh * g->W, *g1 = g0 + g->W;
        for (int64_t ow = 0; ow < g->OW; ow++) {
            T a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
            T m0 = b > a ? b : a, m1 = d > c ? d : c, v = gy[ow];
            T top = m1 > m0 ? 0 : v, bottom = m1 > m0 ? v : 0;  /* selects, no branch */
            g0[2 * ow] = b > a ? 0 : top;
            g0[2 * ow + 1] = b > a ? top : 0;
            g1[2 * ow] = d > c ? 0 : bottom;
            g1[2 * ow + 1] = d > c ? bottom : 0;
        }
    }
}

static void F(max_pool_fwd)(const T *restrict x, const pgeom *g, void *work, T *restrict y)
{
    T *rv = work, *buf = rv + g->H * g->OW;
    bool two = is_2x2(g);
    for (int64_t pl = 0; pl < g->planes; pl++, x += g->H * g->W, y += g->OH * g->OW) {
        if (F(has_nan)(x, g->H * g->W)) F(max_plane)(x, g, rv, buf, y, true);
        else if (two) F(max2_plane)(x, g, y);
        else F(max_plane)(x, g, rv, buf, y, false);
    }
}

/* One plane of max_pool_route: src and dst at the plane's start. */
INLINE void F(route_plane)(const T *restrict src, const T *restrict x, const pgeom *g, void *work,
                           T *restrict dst, bool gather, bool nan)
{
    const int64_t n = g->H * g->OW;
    T *rv = work, *bv = rv + n, *buf = bv + g->OW;
    int32_t *ri = (int32_t *)(buf + g->W + 2 * g->pw), *bi = ri + n;
    for (int64_t ih = 0; ih < g->H; ih++) {
        const T *r = F(pad_row)(x + ih * g->W, g, -INFINITY, buf);
        WITH_SIZE(g->kw, F(row_argmax)(r, g, K, rv + ih * g->OW, ri + ih * g->OW, nan));
    }
    for (int64_t oh = 0; oh < g->OH; oh++) {
        int64_t h0, h1;
        window(oh, g, &h0, &h1);
        for (int64_t ow = 0; ow < g->OW; ow++) {
            bv[ow] = rv[h0 * g->OW + ow];
            bi[ow] = (int32_t)(h0 * g->W) + ri[h0 * g->OW + ow];
        }
        for (int64_t ih = h0 + 1; ih < h1; ih++)
            for (int64_t ow = 0; ow < g->OW; ow++) {
                T v = rv[ih * g->OW + ow], cur = bv[ow];
                int32_t at = (int32_t)(ih * g->W) + ri[ih * g->OW + ow];
                int32_t gt = -(int32_t)WINS(v, cur);
                bv[ow] = WINS(v, cur) ? v : cur;
                bi[ow] = (at & gt) | (bi[ow] & ~gt);
            }
        if (gather)
            for (int64_t ow = 0; ow < g->OW; ow++) dst[oh * g->OW + ow] = src[bi[ow]];
        else
            for (int64_t ow = 0; ow < g->OW; ow++) dst[bi[ow]] += src[oh * g->OW + ow];
    }
}

/* Routes between each window and its winner in x, recomputed from x: with
 * gather false, dst (x's shape) gets each window's src value added at its
 * winner (max_pool2d_backward); with gather true, dst (the pooled shape)
 * takes src (x's shape) at each window's winner (its gradient). */
static void F(max_pool_route)(const T *restrict src, const T *restrict x, const pgeom *g,
                              void *work, T *restrict dst, bool gather)
{
    const int64_t HW = g->H * g->W, OHW = g->OH * g->OW;
    bool two = is_2x2(g) && !gather;  /* writes every covered cell: no clearing first */
    if (!gather && (!two || g->H % 2 || g->W % 2)) memset(dst, 0, (size_t)(g->planes * HW) * sizeof(T));
    for (int64_t pl = 0; pl < g->planes; pl++, x += HW) {
        bool nan = F(has_nan)(x, HW);  /* four copies, each flag a constant */
        if (two && nan) memset(dst, 0, (size_t)HW * sizeof(T));
        if (two && !nan) F(max2_route)(src, x, g, dst);
        else if (gather && nan) F(route_plane)(src, x, g, work, dst, true, true);
        else if (gather) F(route_plane)(src, x, g, work, dst, true, false);
        else if (nan) F(route_plane)(src, x, g, work, dst, false, true);
        else F(route_plane)(src, x, g, work, dst, false, false);
        src += gather ? HW : OHW;
        dst += gather ? OHW : HW;
    }
}

/* 1 / the divisor of output cell (oh, ow) whose window holds rows [h0, h1):
 * kh kw, or with real_only its real cells, (h1 - h0) times its real columns. */
static inline T F(avg_scale)(const pgeom *g, int64_t h0, int64_t h1, int64_t ow)
{
    if (!g->real_only) return (T)1 / (T)(g->kh * g->kw);
    int64_t c0 = ow * g->sw - g->pw, c1 = c0 + g->kw;
    c0 = c0 < 0 ? 0 : c0;
    c1 = c1 > g->W ? g->W : c1;
    return (T)1 / (T)((h1 - h0) * (c1 - c0));
}

static void F(avg_pool_fwd)(const T *restrict x, const pgeom *g, void *work, T *restrict y)
{
    T *rv = work, *buf = rv + g->H * g->OW;
    for (int64_t pl = 0; pl < g->planes; pl++, x += g->H * g->W) {
        for (int64_t ih = 0; ih < g->H; ih++) {
            const T *r = F(pad_row)(x + ih * g->W, g, 0, buf);
            WITH_SIZE(g->kw, F(row_sum)(r, g, K, rv + ih * g->OW));
        }
        for (int64_t oh = 0; oh < g->OH; oh++, y += g->OW) {
            int64_t h0, h1;
            window(oh, g, &h0, &h1);
            for (int64_t ow = 0; ow < g->OW; ow++) {
                T sum = 0;
                for (int64_t ih = h0; ih < h1; ih++) sum += rv[ih * g->OW + ow];
                y[ow] = sum * F(avg_scale)(g, h0, h1, ow);
            }
        }
    }
}

/* The two passes transposed: gy / divisor summed over the windows holding
 * each input row (rv), then spread along the row. */
static void F(avg_pool_bwd)(const T *restrict gy, const pgeom *g, void *work, T *restrict gx)
{
    T *rv = work, *buf = rv + g->H * g->OW;
    for (int64_t pl = 0; pl < g->planes; pl++, gx += g->H * g->W) {
        memset(rv, 0, (size_t)(g->H * g->OW) * sizeof(T));
        for (int64_t oh = 0; oh < g->OH; oh++, gy += g->OW) {
            int64_t h0, h1;
            window(oh, g, &h0, &h1);
            for (int64_t ow = 0; ow < g->OW; ow++) {
                T share = gy[ow] * F(avg_scale)(g, h0, h1, ow);
                for (int64_t ih = h0; ih < h1; ih++) rv[ih * g->OW + ow] += share;
            }
        }
        for (int64_t ih = 0; ih < g->H; ih++) {
            T *gr = g->pw ? buf + g->pw : gx + ih * g->W;  /* padded rows go through buf */
            memset(gr - g->pw, 0, (size_t)(g->W + 2 * g->pw) * sizeof(T));
            WITH_SIZE(g->kw, F(row_spread)(rv + ih * g->OW, g, K, gr));
            if (g->pw) memcpy(gx + ih * g->W, gr, (size_t)g->W * sizeof(T));
        }
    }
}

/* Mean of each plane of H*W cells, summed in double (a plane may be large). */
static void F(global_avg_fwd)(const T *restrict x, int64_t planes, int64_t hw, T *restrict y)
{
    for (int64_t pl = 0; pl < planes; pl++, x += hw) {
        double s = 0;
        for (int64_t i = 0; i < hw; i++) s += x[i];
        y[pl] = (T)(s / (double)hw);
    }
}
#undef WINS
#undef INLINE

/* The type-generic conv kernels, included by conv.c once per float type with
 * T (float or double), F(name) (name_f32 or name_f64) and GEMM (cblas_sgemm
 * or cblas_dgemm) defined. One sample's column matrix col [C*KH*KW, OH*OW]
 * has a row per (channel, kernel row, kernel column) and a column per output
 * pixel: col[(c*KH + ki)*KW + kj][oh*OW + ow] = x[c][oh*s - p + ki][ow*s - p + kj],
 * 0 in the padding. Every GEMM is row-major. */

/* x [C, H, W] of one sample into col. */
static void F(im2col)(const T *restrict x, const geom *g, T *restrict col)
{
    const int64_t OW = g->OW, s = g->s;
    for (int64_t c = 0; c < g->C; c++) {
        const T *xc = x + c * g->H * g->W;
        for (int64_t ki = 0; ki < g->KH; ki++)
            for (int64_t kj = 0; kj < g->KW; kj++) {
                int64_t lo, hi;
                valid_cols(g, kj, &lo, &hi);
                for (int64_t oh = 0; oh < g->OH; oh++, col += OW) {
                    int64_t ih = oh * s - g->p + ki;
                    if (ih < 0 || ih >= g->H) {
                        memset(col, 0, (size_t)OW * sizeof(T));
                        continue;
                    }
                    for (int64_t ow = 0; ow < lo; ow++) col[ow] = 0;
                    if (hi > lo) {
                        const T *src = xc + ih * g->W + lo * s - g->p + kj;
                        if (s == 1)
                            memcpy(col + lo, src, (size_t)(hi - lo) * sizeof(T));
                        else
                            for (int64_t j = 0; j < hi - lo; j++) col[lo + j] = src[j * s];
                    }
                    for (int64_t ow = hi; ow < OW; ow++) col[ow] = 0;
                }
            }
    }
}

/* The adjoint of im2col: adds col's entries back into x [C, H, W] (padding dropped). */
static void F(col2im)(const T *restrict col, const geom *g, T *restrict x)
{
    const int64_t OW = g->OW, s = g->s;
    for (int64_t c = 0; c < g->C; c++) {
        T *xc = x + c * g->H * g->W;
        for (int64_t ki = 0; ki < g->KH; ki++)
            for (int64_t kj = 0; kj < g->KW; kj++) {
                int64_t lo, hi;
                valid_cols(g, kj, &lo, &hi);
                for (int64_t oh = 0; oh < g->OH; oh++, col += OW) {
                    int64_t ih = oh * s - g->p + ki;
                    if (ih < 0 || ih >= g->H || hi <= lo) continue;
                    T *dst = xc + ih * g->W + lo * s - g->p + kj;
                    const T *src = col + lo;
                    if (s == 1)
                        for (int64_t j = 0; j < hi - lo; j++) dst[j] += src[j];
                    else
                        for (int64_t j = 0; j < hi - lo; j++) dst[j * s] += src[j];
                }
            }
    }
}

/* y_n [O, OH*OW] = W [O, C*KH*KW] · col(x_n) (+ b, preloaded so GEMM adds to it). */
static void F(conv_fwd)(const nb_kctx *k, const geom *g)
{
    const T *x = k->in[0], *w = k->in[1], *b = k->n_in > 2 ? k->in[2] : NULL;
    T *y = k->out, *col = k->work;
    const int64_t xs = g->C * g->H * g->W, ys = g->O * g->ohw;
    for (int64_t n = 0; n < g->N; n++) {
        const T *xn = x + n * xs, *src = xn;
        T *yn = y + n * ys;
        if (!g->direct) {
            F(im2col)(xn, g, col);
            src = col;
        }
        for (int64_t o = 0; b && o < g->O; o++)
            for (int64_t j = 0; j < g->ohw; j++) yn[o * g->ohw + j] = b[o];
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g->O, (int)g->ohw, (int)g->ckk, 1, w,
             (int)g->ckk, src, (int)g->ohw, b ? 1 : 0, yn, (int)g->ohw);
    }
}

/* gx_n = col2im(Wᵀ [C*KH*KW, O] · gy_n [O, OH*OW]) */
static void F(conv_bwd_input)(const nb_kctx *k, const geom *g)
{
    const T *gy = k->in[0], *w = k->in[1];
    T *gx = k->out, *col = k->work;
    const int64_t xs = g->C * g->H * g->W, ys = g->O * g->ohw;
    if (!g->direct) memset(gx, 0, (size_t)(g->N * xs) * sizeof(T));
    for (int64_t n = 0; n < g->N; n++) {
        T *dst = g->direct ? gx + n * xs : col;
        GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)g->ckk, (int)g->ohw, (int)g->O, 1, w,
             (int)g->ckk, gy + n * ys, (int)g->ohw, 0, dst, (int)g->ohw);
        if (!g->direct) F(col2im)(col, g, gx + n * xs);
    }
}

/* gw [O, C*KH*KW] = Σ_n gy_n [O, OH*OW] · col(x_n)ᵀ */
static void F(conv_bwd_filter)(const nb_kctx *k, const geom *g)
{
    const T *gy = k->in[0], *x = k->in[1];
    T *gw = k->out, *col = k->work;
    const int64_t xs = g->C * g->H * g->W, ys = g->O * g->ohw;
    memset(gw, 0, (size_t)(g->O * g->ckk) * sizeof(T));
    for (int64_t n = 0; n < g->N; n++) {
        const T *src = x + n * xs;
        if (!g->direct) {
            F(im2col)(src, g, col);
            src = col;
        }
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)g->O, (int)g->ckk, (int)g->ohw, 1,
             gy + n * ys, (int)g->ohw, src, (int)g->ohw, 1, gw, (int)g->ckk);
    }
}

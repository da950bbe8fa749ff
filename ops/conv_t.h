/* The type-generic conv kernels, included by conv.c once per float type with
 * T (float or double), F(name) (name_f32 or name_f64) and GEMM (cblas_sgemm
 * or cblas_dgemm) defined. One sample's column matrix col [C*KH*KW, OH*OW]
 * has a row per (channel, kernel row, kernel column) and a column per output
 * pixel: col[(c*KH + ki)*KW + kj][oh*OW + ow] =
 * x[c][oh*sh - ph + ki*dh][ow*sw - pw + kj*dw], 0 in the padding. Group g's
 * rows are the ckk = (C/G)*KH*KW rows from g*ckk on. Every GEMM is row-major. */

/* x [C, H, W] of one sample into col. */
static void F(im2col)(const T *restrict x, const geom *g, T *restrict col)
{
    const int64_t OW = g->OW, s = g->sw;
    for (int64_t c = 0; c < g->C; c++) {
        const T *xc = x + c * g->H * g->W;
        for (int64_t ki = 0; ki < g->KH; ki++)
            for (int64_t kj = 0; kj < g->KW; kj++) {
                int64_t lo, hi;
                valid_cols(g, kj, &lo, &hi);
                for (int64_t oh = 0; oh < g->OH; oh++, col += OW) {
                    int64_t ih = oh * g->sh - g->ph + ki * g->dh;
                    if (ih < 0 || ih >= g->H) {
                        memset(col, 0, (size_t)OW * sizeof(T));
                        continue;
                    }
                    for (int64_t ow = 0; ow < lo; ow++) col[ow] = 0;
                    if (hi > lo) {
                        const T *src = xc + ih * g->W + lo * s - g->pw + kj * g->dw;
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
    const int64_t OW = g->OW, s = g->sw;
    for (int64_t c = 0; c < g->C; c++) {
        T *xc = x + c * g->H * g->W;
        for (int64_t ki = 0; ki < g->KH; ki++)
            for (int64_t kj = 0; kj < g->KW; kj++) {
                int64_t lo, hi;
                valid_cols(g, kj, &lo, &hi);
                for (int64_t oh = 0; oh < g->OH; oh++, col += OW) {
                    int64_t ih = oh * g->sh - g->ph + ki * g->dh;
                    if (ih < 0 || ih >= g->H || hi <= lo) continue;
                    T *dst = xc + ih * g->W + lo * s - g->pw + kj * g->dw;
                    const T *src = col + lo;
                    if (s == 1)
                        for (int64_t j = 0; j < hi - lo; j++) dst[j] += src[j];
                    else
                        for (int64_t j = 0; j < hi - lo; j++) dst[j * s] += src[j];
                }
            }
    }
}

/* ---- stride-1 rows (sw == 1): no bounds in the inner loops ----
 * With horizontal stride 1, col's row for (c, ki, kj, oh) is OW consecutive
 * entries of the zero-padded plane xp [C, Hp, Wp] (Hp = H + 2ph, Wp = W + 2pw),
 * at row oh*sh + ki*dh, column kj*dw. Copying whole rows that way is several
 * times faster than im2col's per-row bounds and memcpy/memset calls on small
 * images (7x7 planes: 9 ns a row, most of a 3x3 layer's time outside GEMM). */

/* n entries of s to d, n small: fixed-size copies inline to vector moves; the
 * last chunk overlaps the one before it instead of a tail loop. */
static inline void F(copy_row)(T *restrict d, const T *restrict s, int64_t n)
{
    enum { C = 32 / sizeof(T), H = C / 2 };
    if (n >= C) {
        int64_t j = 0;
        for (; j + C <= n; j += C) memcpy(d + j, s + j, C * sizeof(T));
        if (j < n) memcpy(d + n - C, s + n - C, C * sizeof(T));
    } else if (n >= H) {
        memcpy(d, s, H * sizeof(T));
        memcpy(d + n - H, s + n - H, H * sizeof(T));
    } else {
        for (int64_t j = 0; j < n && j < H; j++) d[j] = s[j];
    }
}

/* x [C, H, W] of one sample into the interior of xp, whose border stays zero
 * (set once per part); without padding, columns reads the rows from x itself. */
static void F(pad_planes)(const T *restrict x, const geom *g, T *restrict xp)
{
    const int64_t Wp = g->W + 2 * g->pw, plane = (g->H + 2 * g->ph) * Wp;
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t h = 0; h < g->H; h++)
            F(copy_row)(xp + c * plane + (h + g->ph) * Wp + g->pw, x + (c * g->H + h) * g->W, g->W);
}

/* col from the padded planes xp (sw == 1). */
static void F(im2col_rows)(const T *restrict xp, const geom *g, T *restrict col)
{
    const int64_t Wp = g->W + 2 * g->pw, plane = (g->H + 2 * g->ph) * Wp, OW = g->OW;
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t ki = 0; ki < g->KH; ki++)
            for (int64_t kj = 0; kj < g->KW; kj++) {
                const T *src = xp + c * plane + ki * g->dh * Wp + kj * g->dw;
                for (int64_t oh = 0; oh < g->OH; oh++, col += OW)
                    F(copy_row)(col, src + oh * g->sh * Wp, OW);
            }
}

/* The adjoint of im2col_rows: adds col into the padded planes gxp (sw == 1). */
static void F(col2im_rows)(const T *restrict col, const geom *g, T *restrict gxp)
{
    const int64_t Wp = g->W + 2 * g->pw, plane = (g->H + 2 * g->ph) * Wp, OW = g->OW;
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t ki = 0; ki < g->KH; ki++)
            for (int64_t kj = 0; kj < g->KW; kj++) {
                T *dst = gxp + c * plane + ki * g->dh * Wp + kj * g->dw;
                for (int64_t oh = 0; oh < g->OH; oh++, col += OW) {
                    T *d = dst + oh * g->sh * Wp;
                    for (int64_t ow = 0; ow < OW; ow++) d[ow] += col[ow];
                }
            }
}

/* The interior of gxp into gx [C, H, W]. */
static void F(crop_planes)(const T *restrict gxp, const geom *g, T *restrict gx)
{
    const int64_t Wp = g->W + 2 * g->pw, plane = (g->H + 2 * g->ph) * Wp;
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t h = 0; h < g->H; h++)
            F(copy_row)(gx + (c * g->H + h) * g->W, gxp + c * plane + (h + g->ph) * Wp + g->pw, g->W);
}

/* Each kernel splits its samples over the plan's threads (nb_kernel_parallel),
 * part p using scratch p of the workspace (part_len each): a column matrix,
 * then padded planes when by_rows and padded. */

/* Part p's column matrix. */
static T *F(col_of)(const nb_kctx *k, const geom *g, int part)
{
    return (T *)k->work + part * part_len(g);
}

/* The column matrix of sample x_n: into col, by rows (through the part's
 * padded planes xp, whose border the caller zeroed) or by im2col; x_n itself
 * for a direct 1x1. */
static const T *F(columns)(const T *xn, const geom *g, T *col, T *xp)
{
    if (g->direct) return xn;
    if (!by_rows(g)) {
        F(im2col)(xn, g, col);
        return col;
    }
    if (pad_len(g)) F(pad_planes)(xn, g, xp);
    F(im2col_rows)(pad_len(g) ? xp : xn, g, col);
    return col;
}

/* y_n,g [O/G, OH*OW] = W_g [O/G, ckk] · col(x_n)_g (+ b, preloaded so GEMM adds to it). */
static void F(fwd_part)(void *arg, int64_t lo, int64_t hi, int part)
{
    const conv_job *j = arg;
    const nb_kctx *k = j->k;
    const geom *g = j->g;
    const T *x = k->in[0], *w = k->in[1], *b = k->n_in > 2 ? k->in[2] : NULL;
    T *y = k->out, *col = F(col_of)(k, g, part), *xp = col + col_len(g);
    const int64_t xs = g->C * g->H * g->W, ys = g->O * g->ohw, og = g->O / g->G;
    if (pad_len(g)) memset(xp, 0, (size_t)pad_len(g) * sizeof(T));
    for (int64_t n = lo; n < hi; n++) {
        const T *src = F(columns)(x + n * xs, g, col, xp);
        T *yn = y + n * ys;
        for (int64_t o = 0; b && o < g->O; o++)
            for (int64_t q = 0; q < g->ohw; q++) yn[o * g->ohw + q] = b[o];
        for (int64_t gi = 0; gi < g->G; gi++)
            for (int64_t c0 = 0; c0 < g->ohw; c0 += j->cols) {
                int64_t nc = g->ohw - c0 < j->cols ? g->ohw - c0 : j->cols;
                GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)og, (int)nc, (int)g->ckk, 1,
                     w + gi * og * g->ckk, (int)g->ckk, src + gi * g->ckk * g->ohw + c0,
                     (int)g->ohw, b ? 1 : 0, yn + gi * og * g->ohw + c0, (int)g->ohw);
            }
    }
}

/* The gradient of sample n from its column matrix col: by rows into the part's
 * padded planes gxp (then cropped) or into gx_n itself, or by col2im into gx_n
 * (zeroed by the caller). */
static void F(uncolumns)(const T *col, const geom *g, T *gxn, T *gxp)
{
    if (!by_rows(g)) {
        F(col2im)(col, g, gxn);
        return;
    }
    T *acc = pad_len(g) ? gxp : gxn;
    memset(acc, 0, (size_t)(pad_len(g) ? pad_len(g) : g->C * g->H * g->W) * sizeof(T));
    F(col2im_rows)(col, g, acc);
    if (pad_len(g)) F(crop_planes)(gxp, g, gxn);
}

/* gx_n = col2im(W_gᵀ [ckk, O/G] · gy_n,g [O/G, OH*OW]) */
static void F(bwd_input_part)(void *arg, int64_t lo, int64_t hi, int part)
{
    const conv_job *j = arg;
    const nb_kctx *k = j->k;
    const geom *g = j->g;
    const T *gy = k->in[0], *w = k->in[1];
    T *gx = k->out, *col = F(col_of)(k, g, part), *gxp = col + col_len(g);
    const int64_t xs = g->C * g->H * g->W, ys = g->O * g->ohw, og = g->O / g->G;
    if (!g->direct && !by_rows(g)) memset(gx + lo * xs, 0, (size_t)((hi - lo) * xs) * sizeof(T));
    for (int64_t n = lo; n < hi; n++) {
        T *dst = g->direct ? gx + n * xs : col;
        for (int64_t gi = 0; gi < g->G; gi++)
            GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)g->ckk, (int)g->ohw, (int)og, 1,
                 w + gi * og * g->ckk, (int)g->ckk, gy + n * ys + gi * og * g->ohw, (int)g->ohw,
                 0, dst + gi * g->ckk * g->ohw, (int)g->ohw);
        if (!g->direct) F(uncolumns)(col, g, gx + n * xs, gxp);
    }
}

/* Part p's (p >= 1) partial sum of the filter gradient: after the plan's
 * threads' scratch, one [O, ckk] per thread but the first. */
static T *F(partial_sum)(const nb_kctx *k, const geom *g, int p)
{
    return (T *)k->work + nb_kernel_parts(k) * part_len(g) + (p - 1) * g->O * g->ckk;
}

/* gw_g [O/G, ckk] = Σ_n gy_n,g [O/G, OH*OW] · col(x_n)_gᵀ, part p's samples
 * added into gw (p = 0) or its partial sum after the column matrices (both
 * zeroed by conv_bwd_filter). */
static void F(bwd_filter_part)(void *arg, int64_t lo, int64_t hi, int part)
{
    conv_job *j = arg;
    const nb_kctx *k = j->k;
    const geom *g = j->g;
    const T *gy = k->in[0], *x = k->in[1];
    T *col = F(col_of)(k, g, part), *xp = col + col_len(g);
    T *gw = part ? F(partial_sum)(k, g, part) : k->out;
    const int64_t xs = g->C * g->H * g->W, ys = g->O * g->ohw, og = g->O / g->G;
    j->ran[part] = true;
    if (pad_len(g)) memset(xp, 0, (size_t)pad_len(g) * sizeof(T));
    for (int64_t n = lo; n < hi; n++) {
        const T *src = F(columns)(x + n * xs, g, col, xp);
        for (int64_t gi = 0; gi < g->G; gi++)
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)og, (int)g->ckk, (int)g->ohw, 1,
                 gy + n * ys + gi * og * g->ohw, (int)g->ohw, src + gi * g->ckk * g->ohw,
                 (int)g->ohw, 1, gw + gi * og * g->ckk, (int)g->ckk);
    }
}

static void F(conv_fwd)(const nb_kctx *k, const geom *g)
{
    conv_job j = {k, g, fwd_gemm_cols(g), {false}};
    nb_kernel_parallel(k, g->N, 1, F(fwd_part), &j);
}

static void F(conv_bwd_input)(const nb_kctx *k, const geom *g)
{
    conv_job j = {k, g, g->ohw, {false}};
    nb_kernel_parallel(k, g->N, 1, F(bwd_input_part), &j);
}

/* The parts' sums are added in part order: the same bits at a thread count.
 * The parts say which of them ran, so this need not know how many parts
 * nb_kernel_parallel makes. */
static void F(conv_bwd_filter)(const nb_kctx *k, const geom *g)
{
    const int64_t m = g->O * g->ckk;
    const int threads = nb_kernel_parts(k);
    T *gw = k->out;
    memset(gw, 0, (size_t)m * sizeof(T));
    if (threads > 1) memset(F(partial_sum)(k, g, 1), 0, (size_t)((threads - 1) * m) * sizeof(T));
    conv_job j = {k, g, g->ohw, {false}};
    nb_kernel_parallel(k, g->N, 1, F(bwd_filter_part), &j);
    for (int p = 1; p < threads; p++) {
        const T *partial = F(partial_sum)(k, g, p);
        for (int64_t i = 0; j.ran[p] && i < m; i++) gw[i] += partial[i];
    }
}

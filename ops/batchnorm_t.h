/* The type-generic batchnorm kernels, included by batchnorm.c once per float
 * type with T (float or double) and F(name) (name_f32 or name_f64) defined.
 * x is viewed as [n, c, s] (bnl): channel ch holds the elements
 * x[(i * c + ch) * s + j]. Sums and per-channel constants are doubles. */

/* Mean and biased variance of channel ch, in two passes (no cancellation). */
static void F(moments)(const T *x, const bnl *L, int64_t ch, double *mean, double *var)
{
    double sum = 0, ss = 0;
    for (int64_t i = 0; i < L->n; i++) {
        const T *r = x + (i * L->c + ch) * L->s;
        for (int64_t j = 0; j < L->s; j++) sum += r[j];
    }
    double m = sum / (double)L->count;
    for (int64_t i = 0; i < L->n; i++) {
        const T *r = x + (i * L->c + ch) * L->s;
        for (int64_t j = 0; j < L->s; j++) ss += ((double)r[j] - m) * ((double)r[j] - m);
    }
    *mean = m;
    *var = ss / (double)L->count;
}

/* y = (x - mean) * scale + shift on channel ch. */
static void F(affine)(const T *x, T *y, const bnl *L, int64_t ch, double mean, double scale,
                      double shift)
{
    for (int64_t i = 0; i < L->n; i++) {
        int64_t o = (i * L->c + ch) * L->s;
        for (int64_t j = 0; j < L->s; j++) y[o + j] = (T)(((double)x[o + j] - mean) * scale + shift);
    }
}

/* The mean and 1/sqrt(var + eps) of channel ch: the batch's while training
 * (the biased variance also in *bvar), else the running statistics'. */
static void F(stats)(const nb_kctx *k, const T *x, const T *rm, const T *rv, const bnl *L,
                     int64_t ch, double eps, double *mean, double *inv, double *bvar)
{
    if (k->training) {
        F(moments)(x, L, ch, mean, bvar);
        *inv = 1 / sqrt(*bvar + eps);
    } else {
        *mean = rm[ch];
        *inv = 1 / sqrt((double)rv[ch] + eps);
    }
}

/* batchnorm(x, gamma, beta, running_mean, running_var); while training, the
 * running statistics move towards the batch's (unbiased variance), as PyTorch. */
static void F(bn_forward)(const nb_kctx *k, const bnl *L)
{
    const T *x = k->in[0], *gamma = k->in[1], *beta = k->in[2];
    T *rm = (T *)k->in[3], *rv = (T *)k->in[4];  /* state: written while training */
    double eps = k->attr[A_EPS].f, mom = k->attr[A_MOMENTUM].f;
    double unbias = (double)L->count / (double)(L->count - 1);
    for (int64_t ch = 0; ch < L->c; ch++) {
        double mean, inv, var = 0;
        F(stats)(k, x, rm, rv, L, ch, eps, &mean, &inv, &var);
        F(affine)(x, k->out, L, ch, mean, inv * gamma[ch], beta[ch]);
        if (k->training) {
            rm[ch] = (T)((1 - mom) * rm[ch] + mom * mean);
            rv[ch] = (T)((1 - mom) * rv[ch] + mom * var * unbias);
        }
    }
}

/* batchnorm_xhat(x, running_mean, running_var) = (x - mean) / sqrt(var + eps) */
static void F(bn_xhat)(const nb_kctx *k, const bnl *L)
{
    const T *x = k->in[0], *rm = k->in[1], *rv = k->in[2];
    double eps = k->attr[A_EPS].f;
    for (int64_t ch = 0; ch < L->c; ch++) {
        double mean, inv, var = 0;
        F(stats)(k, x, rm, rv, L, ch, eps, &mean, &inv, &var);
        F(affine)(x, k->out, L, ch, mean, inv, 0);
    }
}

/* batchnorm_invstd(x, running_mean, running_var) = 1 / sqrt(var + eps) of the
 * batch per channel while training; 0 in eval mode (see batchnorm.c). */
static void F(bn_invstd)(const nb_kctx *k, const bnl *L)
{
    const T *x = k->in[0], *rm = k->in[1], *rv = k->in[2];
    T *z = k->out;
    double eps = k->attr[A_EPS].f;
    for (int64_t ch = 0; ch < L->c; ch++) {
        double mean, inv = 0, var = 0;
        if (k->training) F(stats)(k, x, rm, rv, L, ch, eps, &mean, &inv, &var);
        z[ch] = (T)inv;
    }
}

/* batchnorm_backward(gy, x, running_mean, running_var[, gamma]):
 *   training  gx = gamma/σ · (gy − mean(gy) − x̂·mean(gy·x̂))   (σ, x̂ of the batch)
 *   eval      gx = gy · gamma / sqrt(running_var + eps)
 * with means over the channel and gamma 1 when not given. */
static void F(bn_backward)(const nb_kctx *k, const bnl *L)
{
    const T *gy = k->in[0], *x = k->in[1], *rm = k->in[2], *rv = k->in[3];
    const T *gamma = k->n_in > 4 ? k->in[4] : NULL;
    T *gx = k->out;
    double eps = k->attr[A_EPS].f, n = (double)L->count;
    for (int64_t ch = 0; ch < L->c; ch++) {
        double mean, inv, var = 0, g = gamma ? (double)gamma[ch] : 1;
        F(stats)(k, x, rm, rv, L, ch, eps, &mean, &inv, &var);
        if (!k->training) {  /* a per-channel scale: gy · g · inv */
            F(affine)(gy, gx, L, ch, 0, g * inv, 0);
            continue;
        }
        double sg = 0, sgx = 0;
        for (int64_t i = 0; i < L->n; i++) {
            int64_t o = (i * L->c + ch) * L->s;
            for (int64_t j = 0; j < L->s; j++) {
                sg += gy[o + j];
                sgx += (double)gy[o + j] * ((double)x[o + j] - mean) * inv;
            }
        }
        double mg = sg / n, mgx = sgx / n, s = g * inv;
        for (int64_t i = 0; i < L->n; i++) {
            int64_t o = (i * L->c + ch) * L->s;
            for (int64_t j = 0; j < L->s; j++) {
                double xh = ((double)x[o + j] - mean) * inv;
                gx[o + j] = (T)(s * ((double)gy[o + j] - mg - xh * mgx));
            }
        }
    }
}

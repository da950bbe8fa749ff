/* The type-generic optimizer updates, included by optim.c once per float type
 * with T and F(name) defined. w is the param, g its gradient (a slice of the
 * flat gradient buffer), n their length; h holds the hyperparameters. Each
 * adds weight_decay * w to the gradient first (PyTorch's L2 decay). */

static void F(sgd)(T *w, const T *g, size_t n, const hyper *h)
{
    const T lr = (T)h->lr, wd = (T)h->wd;
    for (size_t i = 0; i < n; i++) w[i] -= lr * (g[i] + wd * w[i]);
}

/* v <- momentum * v + g; w <- w - lr * v */
static void F(momentum)(T *w, const T *g, T *v, size_t n, const hyper *h)
{
    const T lr = (T)h->lr, wd = (T)h->wd, mu = (T)h->momentum;
    for (size_t i = 0; i < n; i++) {
        v[i] = mu * v[i] + (g[i] + wd * w[i]);
        w[i] -= lr * v[i];
    }
}

/* s <- s + g^2; w <- w - lr * g / (sqrt(s) + eps) */
static void F(adagrad)(T *w, const T *g, T *s, size_t n, const hyper *h)
{
    const T lr = (T)h->lr, wd = (T)h->wd, eps = (T)h->eps;
    for (size_t i = 0; i < n; i++) {
        T gi = g[i] + wd * w[i];
        s[i] += gi * gi;
        w[i] -= lr * gi / (SQRT(s[i]) + eps);
    }
}

/* m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2;
 * w <- w - lr * (m / c1) / (sqrt(v / c2) + eps), with c1 = 1 - b1^t, c2 = 1 - b2^t.
 * Written as PyTorch does: w -= (lr / c1) * m / (sqrt(v) / sqrt(c2) + eps). */
static void F(adam)(T *w, const T *g, T *m, T *v, size_t n, const hyper *h, double t)
{
    const T b1 = (T)h->beta1, b2 = (T)h->beta2, wd = (T)h->wd, eps = (T)h->eps;
    const T step = (T)(h->lr / (1 - pow(h->beta1, t)));
    const T root_c2 = (T)sqrt(1 - pow(h->beta2, t));
    for (size_t i = 0; i < n; i++) {
        T gi = g[i] + wd * w[i];
        m[i] = b1 * m[i] + (1 - b1) * gi;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
        w[i] -= step * m[i] / (SQRT(v[i]) / root_c2 + eps);
    }
}

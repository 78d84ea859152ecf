/* Fused CPU kernels for the multi-resolution hash grid (see hashgrid.py for the definition).
 *
 * Plain C, no torch headers: Python passes raw float/int64 buffer addresses and ranges, and
 * runs ranges on several threads (the GIL is released inside). Layout and arithmetic follow
 * tinycudann's GridEncoding: level scale s = base * b^l - 1, grid position x * s + 0.5,
 * dense indexing where the level's grid fits in its table, else the xor-prime hash, then
 * modulo the level's table size. Tables are [entries, F] row-major, levels back to back.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_DIMS 4
#define MAX_FEAT 8

static const uint32_t PRIMES[MAX_DIMS] = {1u, 2654435761u, 805459861u, 3674653429u};

typedef struct {
    int d, n_levels, n_feat;
    const float *scales;     /* [L] */
    const int64_t *res;      /* [L] */
    const int64_t *sizes;    /* [L] */
    const int64_t *offsets;  /* [L] first entry of each level */
    const int64_t *hashed;   /* [L] 0/1 */
} Layout;

/* Table entries (within the level) and weights of the 2^D corners around point x at one
 * level. Per dimension only the two candidate coordinates are hashed; corners are formed by
 * doubling (corner c has bit k set -> +1 along dim k). D is a literal at every call site, so
 * the compiler unrolls all of it. Hashed levels have power-of-two tables: a mask replaces
 * the modulo. */
/* floor() without a libm call (x86-64's baseline has no rounding instruction). */
static inline float fast_floor(float p) {
    const float t = (float)(int32_t)p;
    return t > p ? t - 1.0f : t;
}

static inline void corners(const float *x, const int D, float scale, int64_t res, int64_t size,
                           int64_t hashed, int64_t *idx, float *w) {
    uint32_t t0[MAX_DIMS], t1[MAX_DIMS];
    float w0[MAX_DIMS], w1[MAX_DIMS];
    uint32_t stride = 1;
    for (int k = 0; k < D; ++k) {
        const float p = x[k] * scale + 0.5f;
        const float f = fast_floor(p);
        const uint32_t c = (uint32_t)(int32_t)f;
        w1[k] = p - f;
        w0[k] = 1.0f - w1[k];
        if (hashed) {
            t0[k] = c * PRIMES[k];
            t1[k] = (c + 1u) * PRIMES[k];
        } else {
            t0[k] = c * stride;
            t1[k] = (c + 1u) * stride;
            stride *= (uint32_t)res;
        }
    }
    uint32_t h[1 << MAX_DIMS];
    h[0] = 0u;
    w[0] = 1.0f;
    for (int k = 0; k < D; ++k) {
        const int half = 1 << k;
        for (int j = 0; j < half; ++j) {
            if (hashed) {
                h[j + half] = h[j] ^ t1[k];
                h[j] ^= t0[k];
            } else {
                h[j + half] = h[j] + t1[k];
                h[j] += t0[k];
            }
            w[j + half] = w[j] * w1[k];
            w[j] *= w0[k];
        }
    }
    if (hashed) {
        const uint32_t mask = (uint32_t)size - 1u;
        for (int c = 0; c < (1 << D); ++c) idx[c] = (int64_t)(h[c] & mask);
    } else {
        for (int c = 0; c < (1 << D); ++c) idx[c] = (int64_t)(h[c] < (uint32_t)size ? h[c] : h[c] % (uint32_t)size);
    }
}

/* out[i, l, f] for points [i0, i1) and levels l0, l0 + lstep, ... Level-major: one level's
 * table stays in cache while all points visit it; threads interleave levels so coarse
 * (cached) and fine (uncached) levels are shared evenly. */
#define BLOCK 16 /* points whose corners are located (and prefetched) before gathering */

#define FORWARD_BODY(D)                                                                     \
    for (int l = l0; l < nl; l += lstep) {                                                  \
        const float *tl = table + L->offsets[l] * nf;                                       \
        const float s = L->scales[l];                                                       \
        const int64_t res = L->res[l], size = L->sizes[l], hashed = L->hashed[l];           \
        for (int64_t b0 = i0; b0 < i1; b0 += BLOCK) {                                       \
            const int nb = (int)((i1 - b0) < BLOCK ? (i1 - b0) : BLOCK);                    \
            int64_t idx[BLOCK][1 << D];                                                     \
            float w[BLOCK][1 << D];                                                         \
            for (int j = 0; j < nb; ++j) {                                                  \
                corners(x + (b0 + j) * D, D, s, res, size, hashed, idx[j], w[j]);           \
                for (int c = 0; c < (1 << D); ++c) __builtin_prefetch(tl + idx[j][c] * nf); \
            }                                                                               \
            for (int j = 0; j < nb; ++j) {                                                  \
                float *o = out + ((b0 + j) * nl + l) * nf;                                  \
                if (nf == 2) {                                                              \
                    float a0 = 0.f, a1 = 0.f;                                               \
                    for (int c = 0; c < (1 << D); ++c) {                                    \
                        const float *v = tl + idx[j][c] * 2;                                \
                        a0 += w[j][c] * v[0];                                               \
                        a1 += w[j][c] * v[1];                                               \
                    }                                                                       \
                    o[0] = a0;                                                              \
                    o[1] = a1;                                                              \
                } else {                                                                    \
                    float acc[MAX_FEAT] = {0};                                              \
                    for (int c = 0; c < (1 << D); ++c) {                                    \
                        const float *v = tl + idx[j][c] * nf;                               \
                        for (int f = 0; f < nf; ++f) acc[f] += w[j][c] * v[f];              \
                    }                                                                       \
                    for (int f = 0; f < nf; ++f) o[f] = acc[f];                             \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
    }

static void forward_range(const Layout *L, const float *x, const float *table, float *out,
                          int64_t i0, int64_t i1, int l0, int lstep) {
    const int nf = L->n_feat, nl = L->n_levels;
    switch (L->d) {
        case 1: FORWARD_BODY(1) break;
        case 2: FORWARD_BODY(2) break;
        case 3: FORWARD_BODY(3) break;
        default: FORWARD_BODY(4) break;
    }
}

/* grad_table += scatter of grad_out for levels l0, l0 + lstep, ... over all points (no
 * races: levels own disjoint parts of the table). */
#define BACKWARD_TABLE_BODY(D)                                                              \
    for (int l = l0; l < nl; l += lstep) {                                                  \
        float *gl = grad_table + L->offsets[l] * nf;                                        \
        const float s = L->scales[l];                                                       \
        const int64_t res = L->res[l], size = L->sizes[l], hashed = L->hashed[l];           \
        for (int64_t b0 = 0; b0 < n; b0 += BLOCK) {                                         \
            const int nb = (int)((n - b0) < BLOCK ? (n - b0) : BLOCK);                      \
            int64_t idx[BLOCK][1 << D];                                                     \
            float w[BLOCK][1 << D];                                                         \
            for (int j = 0; j < nb; ++j) {                                                  \
                corners(x + (b0 + j) * D, D, s, res, size, hashed, idx[j], w[j]);           \
                for (int c = 0; c < (1 << D); ++c) __builtin_prefetch(gl + idx[j][c] * nf, 1); \
            }                                                                               \
            for (int j = 0; j < nb; ++j) {                                                  \
                const float *g = grad_out + ((b0 + j) * nl + l) * nf;                       \
                for (int c = 0; c < (1 << D); ++c) {                                        \
                    float *v = gl + idx[j][c] * nf;                                         \
                    for (int f = 0; f < nf; ++f) v[f] += w[j][c] * g[f];                    \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
    }

static void backward_table_levels(const Layout *L, const float *x, const float *grad_out,
                                  float *grad_table, int64_t n, int l0, int lstep) {
    const int nf = L->n_feat, nl = L->n_levels;
    switch (L->d) {
        case 1: BACKWARD_TABLE_BODY(1) break;
        case 2: BACKWARD_TABLE_BODY(2) break;
        case 3: BACKWARD_TABLE_BODY(3) break;
        default: BACKWARD_TABLE_BODY(4) break;
    }
}

/* grad_x[i, k] = sum_l,f grad_out[i, l, f] * d out[i, l, f] / d x[i, k] for points [i0, i1).
 * d w_c / d x_k = scale * (+-1 along k) * prod_{j != k} (weights along j). */
static void backward_input_range(const Layout *L, const float *x, const float *table,
                                 const float *grad_out, float *grad_x, int64_t i0, int64_t i1) {
    const int d = L->d, nf = L->n_feat, nl = L->n_levels, nc = 1 << d;
    for (int64_t i = i0; i < i1; ++i) {
        float gx[MAX_DIMS] = {0};
        const float *xi = x + i * d;
        for (int l = 0; l < nl; ++l) {
            const float *g = grad_out + (i * nl + l) * nf;
            const float s = L->scales[l];
            int64_t idx[1 << MAX_DIMS];
            float w[1 << MAX_DIMS];
            corners(xi, d, s, L->res[l], L->sizes[l], L->hashed[l], idx, w);
            float frac[MAX_DIMS];
            for (int k = 0; k < d; ++k) {
                const float p = xi[k] * s + 0.5f;
                frac[k] = p - fast_floor(p);
            }
            const float *tl = table + L->offsets[l] * nf;
            for (int c = 0; c < nc; ++c) {
                const float *v = tl + idx[c] * nf;
                float gv = 0.0f;
                for (int f = 0; f < nf; ++f) gv += g[f] * v[f];
                for (int k = 0; k < d; ++k) {
                    float dw = s * (((c >> k) & 1) ? 1.0f : -1.0f);
                    for (int j = 0; j < d; ++j)
                        if (j != k) dw *= ((c >> j) & 1) ? frac[j] : 1.0f - frac[j];
                    gx[k] += dw * gv;
                }
            }
        }
        for (int k = 0; k < d; ++k) grad_x[i * d + k] = gx[k];
    }
}

/* -- Python bindings: addresses as unsigned long long ---------------------------------- */

static int parse_layout(PyObject *args, Layout *L, unsigned long long *a, int n_extra) {
    unsigned long long sc, rs, sz, of, hs;
    /* layout first: d, n_levels, n_feat, scales, res, sizes, offsets, hashed, then extras */
    if (n_extra == 6) {
        if (!PyArg_ParseTuple(args, "iiiKKKKKKKKKKK", &L->d, &L->n_levels, &L->n_feat, &sc, &rs,
                              &sz, &of, &hs, &a[0], &a[1], &a[2], &a[3], &a[4], &a[5]))
            return 0;
    } else {
        if (!PyArg_ParseTuple(args, "iiiKKKKKKKKKKKK", &L->d, &L->n_levels, &L->n_feat, &sc, &rs,
                              &sz, &of, &hs, &a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &a[6]))
            return 0;
    }
    if (L->d < 1 || L->d > MAX_DIMS || L->n_feat < 1 || L->n_feat > MAX_FEAT) {
        PyErr_SetString(PyExc_ValueError, "hash grid: 1-4 dims and 1-8 features per level");
        return 0;
    }
    L->scales = (const float *)(uintptr_t)sc;
    L->res = (const int64_t *)(uintptr_t)rs;
    L->sizes = (const int64_t *)(uintptr_t)sz;
    L->offsets = (const int64_t *)(uintptr_t)of;
    L->hashed = (const int64_t *)(uintptr_t)hs;
    return 1;
}

/* forward(d, L, F, scales, res, sizes, offsets, hashed, x, table, out, i0, i1, l0, lstep) */
static PyObject *py_forward(PyObject *self, PyObject *args) {
    Layout L;
    unsigned long long a[7];
    if (!parse_layout(args, &L, a, 7)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    forward_range(&L, (const float *)(uintptr_t)a[0], (const float *)(uintptr_t)a[1],
                  (float *)(uintptr_t)a[2], (int64_t)a[3], (int64_t)a[4], (int)a[5], (int)a[6]);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* backward_table(d, L, F, scales, res, sizes, offsets, hashed, x, grad_out, grad_table, n, l0, lstep) */
static PyObject *py_backward_table(PyObject *self, PyObject *args) {
    Layout L;
    unsigned long long a[6];
    if (!parse_layout(args, &L, a, 6)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    backward_table_levels(&L, (const float *)(uintptr_t)a[0], (const float *)(uintptr_t)a[1],
                          (float *)(uintptr_t)a[2], (int64_t)a[3], (int)a[4], (int)a[5]);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* backward_input(d, L, F, scales, res, sizes, offsets, hashed, x, table, grad_out, grad_x, i0, i1, unused) */
static PyObject *py_backward_input(PyObject *self, PyObject *args) {
    Layout L;
    unsigned long long a[7];
    if (!parse_layout(args, &L, a, 7)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    backward_input_range(&L, (const float *)(uintptr_t)a[0], (const float *)(uintptr_t)a[1],
                         (const float *)(uintptr_t)a[2], (float *)(uintptr_t)a[3],
                         (int64_t)a[4], (int64_t)a[5]);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"forward", py_forward, METH_VARARGS, "Hash-grid encoding of a range of points."},
    {"backward_table", py_backward_table, METH_VARARGS, "Scatter output gradients into the table for a range of levels."},
    {"backward_input", py_backward_input, METH_VARARGS, "Gradient of the encoding w.r.t. the input points."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_hashgrid_cpu",
                                    "Fused CPU hash-grid kernels.", -1, methods};

PyMODINIT_FUNC PyInit__hashgrid_cpu(void) { return PyModule_Create(&module); }

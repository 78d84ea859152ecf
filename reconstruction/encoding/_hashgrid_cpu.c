/* Fused CPU kernels for the multi-resolution hash grid (see hashgrid.py for the definition).
 *
 * Plain C, no torch headers: Python passes raw buffer addresses and ranges, and runs ranges
 * on several threads (the GIL is released inside). Layout and arithmetic follow
 * tinycudann's GridEncoding: level scale s = base * b^l - 1, grid position x * s + 0.5,
 * dense indexing where the level's grid fits in its table, else the xor-prime hash, then
 * modulo the level's table size. Tables are [entries, F] row-major, levels back to back.
 *
 * Speed comes from three things, measured on 2 cores:
 *  - points are processed CHUNK at a time with every level of the thread run over a chunk
 *    before the next, so the chunk's rows of the [N, L*F] output (or output gradient) stay
 *    in cache instead of streaming through memory once per level;
 *  - within a chunk, corner indices and weights of a BLOCK of points are computed in
 *    structure-of-arrays loops the compiler vectorises (8 points per AVX2 instruction);
 *  - the table rows of a block are prefetched before they are read or updated, which
 *    hides most of the cache misses of the large (hashed) levels.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_DIMS 4
#define MAX_FEAT 8
#define CHUNK 1024 /* points per chunk (a multiple of BLOCK) */
#define BLOCK 64   /* points whose corners are computed together */
#define TOUCH_SHIFT 6 /* one "touched" flag per 64 table entries: the flags stay in cache */

static const uint32_t PRIMES[MAX_DIMS] = {1u, 2654435761u, 805459861u, 3674653429u};

typedef struct {
    int d, n_levels, n_feat;
    const float *scales;     /* [L] */
    const int64_t *res;      /* [L] */
    const int64_t *sizes;    /* [L] */
    const int64_t *offsets;  /* [L] first entry of each level */
    const int64_t *hashed;   /* [L] 0/1 */
} Layout;

/* Corner entries idx[c][j] (within the level) and weights w[c][j] of points j < nb of a
 * block whose coordinates are xs[k][j] (structure of arrays). Corner c has bit k set ->
 * +1 along dim k. Per dimension only the two candidate coordinates are hashed (or strided)
 * and the 2^D corners formed by xor (or sum). Hashed levels have power-of-two tables, so a
 * mask is the modulo. D and HASHED are literals at every call site. */
static inline __attribute__((always_inline)) void block_corners(
    const float xs[MAX_DIMS][BLOCK], const int D, const int HASHED, int nb, float scale,
    uint32_t res, uint32_t size, uint32_t idx[1 << MAX_DIMS][BLOCK],
    float w[1 << MAX_DIMS][BLOCK]) {
    uint32_t t0[MAX_DIMS][BLOCK], t1[MAX_DIMS][BLOCK];
    float w0[MAX_DIMS][BLOCK], w1[MAX_DIMS][BLOCK];
    uint32_t stride = 1;
    for (int k = 0; k < D; ++k) {
        const uint32_t mul = HASHED ? PRIMES[k] : stride;
        for (int j = 0; j < BLOCK; ++j) {
            const float p = xs[k][j] * scale + 0.5f;
            const float t = (float)(int32_t)p; /* floor for p >= 0 after the fix-up below */
            const float f = t > p ? t - 1.0f : t;
            const uint32_t c = (uint32_t)(int32_t)f;
            w1[k][j] = p - f;
            w0[k][j] = 1.0f - (p - f);
            t0[k][j] = c * mul;
            t1[k][j] = (c + 1u) * mul;
        }
        stride *= res;
    }
    for (int c = 0; c < (1 << D); ++c) {
        for (int j = 0; j < BLOCK; ++j) {
            uint32_t h = (c & 1) ? t1[0][j] : t0[0][j];
            float ww = (c & 1) ? w1[0][j] : w0[0][j];
            for (int k = 1; k < D; ++k) {
                const uint32_t tk = ((c >> k) & 1) ? t1[k][j] : t0[k][j];
                h = HASHED ? (h ^ tk) : (h + tk);
                ww *= ((c >> k) & 1) ? w1[k][j] : w0[k][j];
            }
            idx[c][j] = HASHED ? (h & (size - 1u)) : (h < size ? h : h % size);
            w[c][j] = ww;
        }
    }
    (void)nb;
}

/* xs[k][j] = x[i0 + j, k] for j < nb (zero-padded to BLOCK). */
static inline void load_block(const float *x, int D, int64_t i0, int nb, float xs[MAX_DIMS][BLOCK]) {
    for (int j = 0; j < BLOCK; ++j)
        for (int k = 0; k < D; ++k) xs[k][j] = j < nb ? x[(i0 + j) * D + k] : 0.0f;
}

/* ---- forward: out[i, l, f] for points [i0, i1) and levels l0, l0 + lstep, ... ------------
 * Software pipeline over blocks: the corners of the next block are computed first, then
 * while each point of the current block is gathered, the rows of the matching point of the
 * next block are prefetched (one block of distance hides the cache misses of hashed levels). */

#define GATHER_POINT(D, IDX, W, j)                                                         \
    {                                                                                      \
        float *o = out + ((b0 + (j)) * nl + l) * nf;                                       \
        if (nf == 2) {                                                                     \
            float a0 = 0.f, a1 = 0.f;                                                      \
            for (int c = 0; c < (1 << D); ++c) {                                           \
                const float *v = tl + (int64_t)IDX[c][j] * 2;                              \
                a0 += W[c][j] * v[0];                                                      \
                a1 += W[c][j] * v[1];                                                      \
            }                                                                              \
            o[0] = a0;                                                                     \
            o[1] = a1;                                                                     \
        } else {                                                                           \
            float acc[MAX_FEAT] = {0};                                                     \
            for (int c = 0; c < (1 << D); ++c) {                                           \
                const float *v = tl + (int64_t)IDX[c][j] * nf;                             \
                for (int f = 0; f < nf; ++f) acc[f] += W[c][j] * v[f];                     \
            }                                                                              \
            for (int f = 0; f < nf; ++f) o[f] = acc[f];                                    \
        }                                                                                  \
    }

#define FORWARD_LEVEL(D, HASHED)                                                           \
    {                                                                                      \
        int cur = 0;                                                                       \
        int nb = (int)((c1 - c0) < BLOCK ? (c1 - c0) : BLOCK);                             \
        load_block(x, D, c0, nb, xs);                                                      \
        block_corners(xs, D, HASHED, nb, s, (uint32_t)res, (uint32_t)size, idx[0], w[0]);  \
        for (int j = 0; j < nb; ++j)                                                       \
            for (int c = 0; c < (1 << D); ++c) __builtin_prefetch(tl + (int64_t)idx[0][c][j] * nf); \
        for (int64_t b0 = c0; b0 < c1; b0 += BLOCK) {                                      \
            const int64_t n0 = b0 + BLOCK;                                                 \
            const int nn = n0 < c1 ? (int)((c1 - n0) < BLOCK ? (c1 - n0) : BLOCK) : 0;     \
            if (nn) {                                                                      \
                load_block(x, D, n0, nn, xs);                                              \
                block_corners(xs, D, HASHED, nn, s, (uint32_t)res, (uint32_t)size,         \
                              idx[cur ^ 1], w[cur ^ 1]);                                   \
            }                                                                              \
            for (int j = 0; j < nb; ++j) {                                                 \
                if (j < nn)                                                                \
                    for (int c = 0; c < (1 << D); ++c)                                     \
                        __builtin_prefetch(tl + (int64_t)idx[cur ^ 1][c][j] * nf);         \
                GATHER_POINT(D, idx[cur], w[cur], j)                                       \
            }                                                                              \
            cur ^= 1;                                                                      \
            nb = nn;                                                                       \
        }                                                                                  \
    }

#define FORWARD_BODY(D)                                                                    \
    for (int64_t c0 = i0; c0 < i1; c0 += CHUNK) {                                         \
        const int64_t c1 = (i1 - c0) < CHUNK ? i1 : c0 + CHUNK;                            \
        for (int l = l0; l < nl; l += lstep) {                                             \
            const float *tl = table + L->offsets[l] * nf;                                  \
            const float s = L->scales[l];                                                  \
            const int64_t res = L->res[l], size = L->sizes[l];                             \
            if (L->hashed[l]) FORWARD_LEVEL(D, 1) else FORWARD_LEVEL(D, 0)                 \
        }                                                                                  \
    }

static void forward_range(const Layout *L, const float *x, const float *table, float *out,
                          int64_t i0, int64_t i1, int l0, int lstep) {
    const int nf = L->n_feat, nl = L->n_levels;
    float xs[MAX_DIMS][BLOCK];
    uint32_t idx[2][1 << MAX_DIMS][BLOCK];
    float w[2][1 << MAX_DIMS][BLOCK];
    switch (L->d) {
        case 1: FORWARD_BODY(1) break;
        case 2: FORWARD_BODY(2) break;
        case 3: FORWARD_BODY(3) break;
        default: FORWARD_BODY(4) break;
    }
}

/* ---- table gradient: grad_table += scatter of grad_out, levels l0, l0 + lstep, ... --------
 * A thread owns whole levels, which own disjoint parts of the table: no atomics. When
 * `touched` is given, the group of 2^TOUCH_SHIFT entries around every updated entry is
 * flagged (a byte per group; two threads may both write 1 to a group straddling levels). */

#define SCATTER_POINT(D, IDX, W, j)                                                        \
    {                                                                                      \
        const float *g = grad_out + ((b0 + (j)) * nl + l) * nf;                            \
        for (int c = 0; c < (1 << D); ++c) {                                               \
            float *v = gl + (int64_t)IDX[c][j] * nf;                                       \
            for (int f = 0; f < nf; ++f) v[f] += W[c][j] * g[f];                           \
        }                                                                                  \
        if (touched)                                                                       \
            for (int c = 0; c < (1 << D); ++c)                                             \
                touched[(L->offsets[l] + IDX[c][j]) >> TOUCH_SHIFT] = 1;                   \
    }

#define BACKWARD_LEVEL(D, HASHED)                                                          \
    {                                                                                      \
        int cur = 0;                                                                       \
        int nb = (int)((c1 - c0) < BLOCK ? (c1 - c0) : BLOCK);                             \
        load_block(x, D, c0, nb, xs);                                                      \
        block_corners(xs, D, HASHED, nb, s, (uint32_t)res, (uint32_t)size, idx[0], w[0]);  \
        for (int j = 0; j < nb; ++j)                                                       \
            for (int c = 0; c < (1 << D); ++c) __builtin_prefetch(gl + (int64_t)idx[0][c][j] * nf, 1); \
        for (int64_t b0 = c0; b0 < c1; b0 += BLOCK) {                                      \
            const int64_t n0 = b0 + BLOCK;                                                 \
            const int nn = n0 < c1 ? (int)((c1 - n0) < BLOCK ? (c1 - n0) : BLOCK) : 0;     \
            if (nn) {                                                                      \
                load_block(x, D, n0, nn, xs);                                              \
                block_corners(xs, D, HASHED, nn, s, (uint32_t)res, (uint32_t)size,         \
                              idx[cur ^ 1], w[cur ^ 1]);                                   \
            }                                                                              \
            for (int j = 0; j < nb; ++j) {                                                 \
                if (j < nn)                                                                \
                    for (int c = 0; c < (1 << D); ++c)                                     \
                        __builtin_prefetch(gl + (int64_t)idx[cur ^ 1][c][j] * nf, 1);      \
                SCATTER_POINT(D, idx[cur], w[cur], j)                                      \
            }                                                                              \
            cur ^= 1;                                                                      \
            nb = nn;                                                                       \
        }                                                                                  \
    }

#define BACKWARD_TABLE_BODY(D)                                                             \
    for (int64_t c0 = 0; c0 < n; c0 += CHUNK) {                                            \
        const int64_t c1 = (n - c0) < CHUNK ? n : c0 + CHUNK;                              \
        for (int l = l0; l < nl; l += lstep) {                                             \
            float *gl = grad_table + L->offsets[l] * nf;                                   \
            const float s = L->scales[l];                                                  \
            const int64_t res = L->res[l], size = L->sizes[l];                             \
            if (L->hashed[l]) BACKWARD_LEVEL(D, 1) else BACKWARD_LEVEL(D, 0)               \
        }                                                                                  \
    }

static void backward_table_levels(const Layout *L, const float *x, const float *grad_out,
                                  float *grad_table, uint8_t *touched, int64_t n, int l0,
                                  int lstep) {
    const int nf = L->n_feat, nl = L->n_levels;
    float xs[MAX_DIMS][BLOCK];
    uint32_t idx[2][1 << MAX_DIMS][BLOCK];
    float w[2][1 << MAX_DIMS][BLOCK];
    switch (L->d) {
        case 1: BACKWARD_TABLE_BODY(1) break;
        case 2: BACKWARD_TABLE_BODY(2) break;
        case 3: BACKWARD_TABLE_BODY(3) break;
        default: BACKWARD_TABLE_BODY(4) break;
    }
}

/* ---- input gradient: grad_x[i, k] = sum_l,f grad_out[i, l, f] d out[i, l, f] / d x[i, k] ---
 * d w_c / d x_k = scale * (+-1 along k) * prod_{j != k} (weights along j). Plain loops: used
 * by surface methods for normals, not in the hot path of radiance training. */
static void backward_input_range(const Layout *L, const float *x, const float *table,
                                 const float *grad_out, float *grad_x, int64_t i0, int64_t i1) {
    const int d = L->d, nf = L->n_feat, nl = L->n_levels, nc = 1 << d;
    for (int64_t i = i0; i < i1; ++i) {
        float gx[MAX_DIMS] = {0};
        const float *xi = x + i * d;
        for (int l = 0; l < nl; ++l) {
            const float *g = grad_out + (i * nl + l) * nf;
            const float s = L->scales[l];
            const uint32_t res = (uint32_t)L->res[l], size = (uint32_t)L->sizes[l];
            const float *tl = table + L->offsets[l] * nf;
            uint32_t cell[MAX_DIMS];
            float frac[MAX_DIMS];
            for (int k = 0; k < d; ++k) {
                const float p = xi[k] * s + 0.5f;
                const float t = (float)(int32_t)p;
                const float f = t > p ? t - 1.0f : t;
                cell[k] = (uint32_t)(int32_t)f;
                frac[k] = p - f;
            }
            for (int c = 0; c < nc; ++c) {
                uint32_t h = 0, stride = 1;
                for (int k = 0; k < d; ++k) {
                    const uint32_t ck = cell[k] + ((c >> k) & 1u);
                    if (L->hashed[l]) h ^= ck * PRIMES[k];
                    else { h += ck * stride; stride *= res; }
                }
                const uint32_t e = L->hashed[l] ? (h & (size - 1u)) : (h % size);
                const float *v = tl + (int64_t)e * nf;
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

/* ---- sparse Adam over the touched parameters of levels l0, l0 + lstep, ... ----------------
 * In flagged groups, parameters whose gradient is non-zero get an Adam update with the
 * global step's bias correction; gradients are then cleared (the flags are cleared by the
 * caller once every thread is done). Untouched parameters keep their values and moments
 * (instant-ngp's approximation: no moment decay without gradient). */
static void adam_levels(const Layout *L, float *params, float *grad, float *m, float *v,
                        const uint8_t *touched, float lr, float b1, float b2, float eps,
                        float bc1, float bc2, float weight_decay, int l0, int lstep) {
    const int nf = L->n_feat, nl = L->n_levels;
    const int64_t group = (int64_t)1 << TOUCH_SHIFT;
    const float step = lr / bc1, inv_bc2 = 1.0f / bc2;
    for (int l = l0; l < nl; l += lstep) {
        const int64_t e0 = L->offsets[l], e1 = e0 + L->sizes[l];
        for (int64_t g0 = e0; g0 < e1;) {
            const int64_t g1 = ((g0 >> TOUCH_SHIFT) + 1) * group < e1 ? ((g0 >> TOUCH_SHIFT) + 1) * group : e1;
            if (touched[g0 >> TOUCH_SHIFT]) {
                /* branch-free over the group's parameters so the loop vectorises; a
                 * parameter whose gradient is exactly zero keeps its value and moments */
                for (int64_t q = g0 * nf; q < g1 * nf; ++q) {
                    const float g = grad[q];
                    const int hit = g != 0.0f;
                    const float gw = g + weight_decay * params[q];
                    const float mq = b1 * m[q] + (1.0f - b1) * gw;
                    const float vq = b2 * v[q] + (1.0f - b2) * gw * gw;
                    const float pq = params[q] - step * mq / (sqrtf(vq * inv_bc2) + eps);
                    m[q] = hit ? mq : m[q];
                    v[q] = hit ? vq : v[q];
                    params[q] = hit ? pq : params[q];
                    grad[q] = 0.0f;
                }
            }
            g0 = g1;
        }
    }
}

/* -- Python bindings: addresses as unsigned long long ---------------------------------- */

static int parse_layout(PyObject *args, Layout *L, unsigned long long *a, int n_extra) {
    unsigned long long sc, rs, sz, of, hs;
    /* layout first: d, n_levels, n_feat, scales, res, sizes, offsets, hashed, then extras */
    PyObject *extra;
    if (!PyArg_ParseTuple(args, "iiiKKKKKO!", &L->d, &L->n_levels, &L->n_feat, &sc, &rs, &sz,
                          &of, &hs, &PyTuple_Type, &extra))
        return 0;
    if (PyTuple_GET_SIZE(extra) != n_extra) {
        PyErr_Format(PyExc_TypeError, "expected %d extra arguments", n_extra);
        return 0;
    }
    for (int i = 0; i < n_extra; ++i) {
        a[i] = PyLong_AsUnsignedLongLongMask(PyTuple_GET_ITEM(extra, i));
        if (PyErr_Occurred()) return 0;
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

#define PTR(T, v) ((T *)(uintptr_t)(v))

/* forward(layout..., (x, table, out, i0, i1, l0, lstep)) */
static PyObject *py_forward(PyObject *self, PyObject *args) {
    Layout L;
    unsigned long long a[7];
    if (!parse_layout(args, &L, a, 7)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    forward_range(&L, PTR(const float, a[0]), PTR(const float, a[1]), PTR(float, a[2]),
                  (int64_t)a[3], (int64_t)a[4], (int)a[5], (int)a[6]);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* backward_table(layout..., (x, grad_out, grad_table, touched or 0, n, l0, lstep)) */
static PyObject *py_backward_table(PyObject *self, PyObject *args) {
    Layout L;
    unsigned long long a[7];
    if (!parse_layout(args, &L, a, 7)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    backward_table_levels(&L, PTR(const float, a[0]), PTR(const float, a[1]), PTR(float, a[2]),
                          PTR(uint8_t, a[3]), (int64_t)a[4], (int)a[5], (int)a[6]);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* backward_input(layout..., (x, table, grad_out, grad_x, i0, i1)) */
static PyObject *py_backward_input(PyObject *self, PyObject *args) {
    Layout L;
    unsigned long long a[6];
    if (!parse_layout(args, &L, a, 6)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    backward_input_range(&L, PTR(const float, a[0]), PTR(const float, a[1]),
                         PTR(const float, a[2]), PTR(float, a[3]), (int64_t)a[4], (int64_t)a[5]);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* adam(layout..., (params, grad, m, v, touched, l0, lstep), lr, b1, b2, eps, bc1, bc2, wd) */
static PyObject *py_adam(PyObject *self, PyObject *args) {
    Layout L;
    unsigned long long sc, rs, sz, of, hs, a[7];
    PyObject *extra;
    float lr, b1, b2, eps, bc1, bc2, wd;
    if (!PyArg_ParseTuple(args, "iiiKKKKKO!fffffff", &L.d, &L.n_levels, &L.n_feat, &sc, &rs,
                          &sz, &of, &hs, &PyTuple_Type, &extra, &lr, &b1, &b2, &eps, &bc1, &bc2,
                          &wd))
        return NULL;
    if (PyTuple_GET_SIZE(extra) != 7) {
        PyErr_SetString(PyExc_TypeError, "adam: expected 7 addresses/ints");
        return NULL;
    }
    for (int i = 0; i < 7; ++i) a[i] = PyLong_AsUnsignedLongLongMask(PyTuple_GET_ITEM(extra, i));
    if (PyErr_Occurred()) return NULL;
    L.scales = PTR(const float, sc);
    L.res = PTR(const int64_t, rs);
    L.sizes = PTR(const int64_t, sz);
    L.offsets = PTR(const int64_t, of);
    L.hashed = PTR(const int64_t, hs);
    Py_BEGIN_ALLOW_THREADS
    adam_levels(&L, PTR(float, a[0]), PTR(float, a[1]), PTR(float, a[2]), PTR(float, a[3]),
                PTR(const uint8_t, a[4]), lr, b1, b2, eps, bc1, bc2, wd, (int)a[5], (int)a[6]);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"forward", py_forward, METH_VARARGS, "Hash-grid encoding of a range of points."},
    {"backward_table", py_backward_table, METH_VARARGS,
     "Scatter output gradients into the table for some levels, flagging touched entries."},
    {"backward_input", py_backward_input, METH_VARARGS, "Gradient of the encoding w.r.t. the points."},
    {"adam", py_adam, METH_VARARGS, "Adam update of the flagged entries of some levels."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_hashgrid_cpu",
                                    "Fused CPU hash-grid kernels.", -1, methods};

PyMODINIT_FUNC PyInit__hashgrid_cpu(void) { return PyModule_Create(&module); }

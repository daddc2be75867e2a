// facebias all-pairs kernels for NVIDIA GPUs, compiled at run time by NVRTC (no CUDA toolkit at build
// time). The same file is compiled by g++ with a small shim in the tests (tests/gpu_emulator/), which
// runs every kernel on the CPU with one thread per CUDA thread, so the logic below is tested on
// machines without a GPU; the shim is why only plain CUDA C++ is used here (no warp intrinsics, no
// inline PTX, no headers).
//
// fb_tiles_*: one 256-thread block per 128×128 tile of the upper triangle of S = E·Eᵀ, where E holds
// the n embeddings sorted by (group, subject), stored k-major (`emb[k·np + p]`, np = n rounded up to
// 128). Each thread owns an 8×8 register tile of scores (rows ty·4+{0..3} and 64+ty·4+{0..3}, columns
// likewise with tx) and accumulates it with one fmaf per k in increasing k, starting from 0 — the same
// sequence of roundings as the CPU's AVX2 micro-kernel, so fp32 scores are bit-identical to it.
// Every score with column > row < n is then either a mated pair (same subject rank: appended with its
// score) or a non-mated pair, binned exactly as compare::bin_of and counted with one atomicAdd into the
// u32 histogram of its (group_a, group_b) cell; with `collect_from` < 2^16, non-mated pairs whose bin
// is at least that are also appended (the bootstrap's second pass). Only histograms and these short
// lists ever leave the device.
//
// fb_flush: adds the u32 histograms into u64 totals and zeroes them; the host launches it after every
// batch of at most 2^30 pairs, so no u32 bin can overflow.

#define FB_TILE 128
#define FB_BK 8
#define FB_THREADS 256
#define FB_BINS 65536u
#define FB_NONE 0xFFFFFFFFu

// Upper-triangle cell index of groups (a, b), as CellHistograms::index.
__device__ __forceinline__ unsigned fb_cell(unsigned a, unsigned b, unsigned groups) {
    if (a > b) { unsigned t = a; a = b; b = t; }
    return a * groups - (a > 0 ? a * (a - 1) / 2 : 0) + b - a;
}

// compare::bin_of: floor(s·2^15) + 2^15 clamped to [0, 2^16 − 1]; NaN → 0 (fmaxf returns the number).
__device__ __forceinline__ unsigned fb_bin(float s) {
    float f = floorf(s * 32768.0f) + 32768.0f;
    f = fminf(fmaxf(f, 0.0f), 65535.0f);
    return (unsigned)f;
}

__device__ __forceinline__ float fb_load_f32(const float* __restrict__ p, unsigned long long i) {
    return p[i];
}

// bfloat16 → float is exact: the 16 bits are the top half of the float.
__device__ __forceinline__ float fb_load_bf16(const unsigned short* __restrict__ p, unsigned long long i) {
    return __uint_as_float(((unsigned)p[i]) << 16);
}

// IEEE binary16 → float, exact (subnormals included), in integer arithmetic.
__device__ __forceinline__ float fb_load_f16(const unsigned short* __restrict__ p, unsigned long long i) {
    unsigned h = p[i];
    unsigned sign = (h & 0x8000u) << 16;
    unsigned e = (h >> 10) & 0x1Fu;
    unsigned m = h & 0x3FFu;
    float v;
    if (e == 0) {
        v = (float)m * 5.9604644775390625e-8f; // m · 2^-24, exact
        return sign ? -v : v;
    }
    if (e == 31) {
        return __uint_as_float(sign | 0x7F800000u | (m << 13));
    }
    return __uint_as_float(sign | ((e + 112u) << 23) | (m << 13));
}

// The body shared by the three input precisions; LOAD converts one stored element to float.
#define FB_TILES_BODY(LOAD)                                                                         \
    __shared__ float As[FB_BK][FB_TILE];                                                            \
    __shared__ float Bs[FB_BK][FB_TILE];                                                            \
    const unsigned tid = threadIdx.x;                                                               \
    const unsigned tx = tid % 16, ty = tid / 16;                                                    \
    const unsigned ti = tiles[2 * blockIdx.x], tj = tiles[2 * blockIdx.x + 1];                      \
    const unsigned row0 = ti * FB_TILE, col0 = tj * FB_TILE;                                        \
    float acc[8][8];                                                                                \
    _Pragma("unroll") for (int i = 0; i < 8; ++i)                                                   \
        _Pragma("unroll") for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;                             \
    for (unsigned k0 = 0; k0 < dim; k0 += FB_BK) {                                                  \
        /* 256 threads stage 8 k-rows × 128 floats of each operand: 4 elements each, coalesced. */  \
        _Pragma("unroll") for (unsigned m = 0; m < 4; ++m) {                                        \
            const unsigned idx = tid + m * FB_THREADS;                                              \
            const unsigned kk = idx / FB_TILE, c = idx % FB_TILE;                                   \
            const unsigned k = k0 + kk;                                                             \
            float a = 0.0f, b = 0.0f;                                                               \
            if (k < dim) {                                                                          \
                a = LOAD(emb, (unsigned long long)k * np + row0 + c);                               \
                b = LOAD(emb, (unsigned long long)k * np + col0 + c);                               \
            }                                                                                       \
            As[kk][c] = a;                                                                          \
            Bs[kk][c] = b;                                                                          \
        }                                                                                           \
        __syncthreads();                                                                            \
        const unsigned kend = dim - k0 < FB_BK ? dim - k0 : FB_BK;                                  \
        for (unsigned kk = 0; kk < kend; ++kk) {                                                    \
            float a[8], b[8];                                                                       \
            _Pragma("unroll") for (int i = 0; i < 4; ++i) {                                         \
                a[i] = As[kk][ty * 4 + i];                                                          \
                a[4 + i] = As[kk][64 + ty * 4 + i];                                                 \
                b[i] = Bs[kk][tx * 4 + i];                                                          \
                b[4 + i] = Bs[kk][64 + tx * 4 + i];                                                 \
            }                                                                                       \
            _Pragma("unroll") for (int i = 0; i < 8; ++i)                                           \
                _Pragma("unroll") for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]); \
        }                                                                                           \
        __syncthreads();                                                                            \
    }                                                                                               \
    fb_emit(acc, n, row0, col0, tx, ty, grp, subj, groups, hist, collect_from, mated, mated_score,  \
            mated_count, mated_cap, high, high_count, high_cap);

// Routes the 8×8 scores of one thread: mated pairs to the list, non-mated pairs to the histogram of
// their cell (and to the high list when their bin reaches collect_from).
__device__ __forceinline__ void fb_emit(
    float acc[8][8], unsigned n, unsigned row0, unsigned col0, unsigned tx, unsigned ty,
    const unsigned* __restrict__ grp, const unsigned* __restrict__ subj, unsigned groups,
    unsigned* __restrict__ hist, unsigned collect_from,
    unsigned* __restrict__ mated, float* __restrict__ mated_score, unsigned* mated_count, unsigned mated_cap,
    unsigned* __restrict__ high, unsigned* high_count, unsigned high_cap) {
    unsigned rows[8], cols[8];
    #pragma unroll
    for (int i = 0; i < 4; ++i) {
        rows[i] = row0 + ty * 4 + i;
        rows[4 + i] = row0 + 64 + ty * 4 + i;
        cols[i] = col0 + tx * 4 + i;
        cols[4 + i] = col0 + 64 + tx * 4 + i;
    }
    // Fast path: the whole tile lies strictly right of the diagonal and inside n, in one cell, and no
    // subject can occur on both sides (ranks are non-decreasing along the sorted rows).
    const unsigned last_row = row0 + FB_TILE - 1, last_col = col0 + FB_TILE - 1;
    const bool uniform = col0 > last_row && last_col < n && grp[row0] == grp[last_row] &&
                         grp[col0] == grp[last_col] && subj[last_row] < subj[col0];
    if (uniform) {
        unsigned* h = hist ? hist + (unsigned long long)fb_cell(grp[row0], grp[col0], groups) * FB_BINS : 0;
        #pragma unroll
        for (int i = 0; i < 8; ++i) {
            #pragma unroll
            for (int j = 0; j < 8; ++j) {
                const unsigned bin = fb_bin(acc[i][j]);
                if (h) atomicAdd(h + bin, 1u);
                if (bin >= collect_from) {
                    const unsigned slot = atomicAdd(high_count, 1u);
                    if (slot < high_cap) {
                        high[3 * slot] = rows[i];
                        high[3 * slot + 1] = cols[j];
                        high[3 * slot + 2] = bin;
                    }
                }
            }
        }
        return;
    }
    #pragma unroll
    for (int i = 0; i < 8; ++i) {
        const unsigned r = rows[i];
        if (r >= n) continue;
        const unsigned gr = grp[r], sr = subj[r];
        #pragma unroll
        for (int j = 0; j < 8; ++j) {
            const unsigned c = cols[j];
            if (c <= r || c >= n) continue;
            const float s = acc[i][j];
            if (subj[c] == sr) {
                if (mated) {
                    const unsigned slot = atomicAdd(mated_count, 1u);
                    if (slot < mated_cap) {
                        mated[2 * slot] = r;
                        mated[2 * slot + 1] = c;
                        mated_score[slot] = s;
                    }
                }
                continue;
            }
            const unsigned bin = fb_bin(s);
            if (hist) atomicAdd(hist + (unsigned long long)fb_cell(gr, grp[c], groups) * FB_BINS + bin, 1u);
            if (bin >= collect_from) {
                const unsigned slot = atomicAdd(high_count, 1u);
                if (slot < high_cap) {
                    high[3 * slot] = r;
                    high[3 * slot + 1] = c;
                    high[3 * slot + 2] = bin;
                }
            }
        }
    }
}

#define FB_TILES_PARAMS(T)                                                                          \
    const T* __restrict__ emb, unsigned np, unsigned n, unsigned dim,                               \
    const unsigned* __restrict__ grp, const unsigned* __restrict__ subj, unsigned groups,           \
    const unsigned* __restrict__ tiles, unsigned* __restrict__ hist, unsigned collect_from,         \
    unsigned* __restrict__ mated, float* __restrict__ mated_score, unsigned* mated_count,           \
    unsigned mated_cap, unsigned* __restrict__ high, unsigned* high_count, unsigned high_cap

extern "C" __global__ void __launch_bounds__(FB_THREADS) fb_tiles_f32(FB_TILES_PARAMS(float)) {
    FB_TILES_BODY(fb_load_f32)
}

extern "C" __global__ void __launch_bounds__(FB_THREADS) fb_tiles_bf16(FB_TILES_PARAMS(unsigned short)) {
    FB_TILES_BODY(fb_load_bf16)
}

extern "C" __global__ void __launch_bounds__(FB_THREADS) fb_tiles_f16(FB_TILES_PARAMS(unsigned short)) {
    FB_TILES_BODY(fb_load_f16)
}

extern "C" __global__ void fb_flush(unsigned* __restrict__ h32, unsigned long long* __restrict__ h64,
                                    unsigned long long len) {
    const unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len;
         i += stride) {
        const unsigned v = h32[i];
        if (v) {
            h64[i] += v;
            h32[i] = 0;
        }
    }
}

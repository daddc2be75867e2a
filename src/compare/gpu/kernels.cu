// facebias all-pairs kernels for NVIDIA GPUs, compiled at run time by NVRTC (no CUDA toolkit at build
// time). The same file is compiled by g++ with a small shim in the tests (tests/gpu_emulator/), which
// runs every kernel on the CPU with one thread per CUDA thread, so the logic below is tested on
// machines without a GPU; the shim is why only plain CUDA C++ is used here (no warp intrinsics, no
// inline PTX, no headers).
//
// fb_tiles_*: 256-thread blocks over 128×128 tiles of the upper triangle of S = E·Eᵀ, where E holds
// the n embeddings sorted by (group, subject), stored k-major (`emb[k·np + p]`, np = n rounded up to
// 128). Each thread owns an 8×8 register tile of scores (rows ty·4+{0..3} and 64+ty·4+{0..3}, columns
// likewise with tx) and accumulates it with one fmaf per k in increasing k, starting from 0 — the same
// sequence of roundings as the CPU's AVX2 micro-kernel, so fp32 scores are bit-identical to it.
// Every score with column > row < n is then either a mated pair (same subject rank: appended with its
// score) or a non-mated pair, binned exactly as compare::bin_of and counted into the u32 histogram of
// its (group_a, group_b) cell: through a block-private window of 16-bit counters in shared memory for
// tiles that lie in one cell (most of them), else with one global atomicAdd. With `collect_from` <
// 2^16, non-mated pairs whose bin is at least that are also appended (the bootstrap's second pass).
// Only histograms and these short lists ever leave the device. Where the window sits changes the
// speed, never the counts.
//
// fb_flush: adds the u32 histograms into u64 totals and zeroes them; the host launches it after every
// batch of at most 2^30 pairs, so no u32 bin can overflow.
//
// fb_search_f32 (at the end of the file): the 1:N search, exact top-L lists per probe and gallery
// chunk, merged on the host into the lists of every nested gallery size.

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

// Loaders: one stored element → float, for the three storage precisions.
struct FbF32 {
    typedef float T;
    static __device__ __forceinline__ float load(const float* __restrict__ p, unsigned long long i) {
        return fb_load_f32(p, i);
    }
};
struct FbBf16 {
    typedef unsigned short T;
    static __device__ __forceinline__ float load(const unsigned short* __restrict__ p, unsigned long long i) {
        return fb_load_bf16(p, i);
    }
};
struct FbF16 {
    typedef unsigned short T;
    static __device__ __forceinline__ float load(const unsigned short* __restrict__ p, unsigned long long i) {
        return fb_load_f16(p, i);
    }
};

// The rows and columns of a thread's 8×8 scores: ty·4+{0..3}, 64+ty·4+{0..3} (and likewise with tx).
// One thread's 8×8 register tile over the staged k-rows: rows ty·4..+4 and 64+ty·4..+4 of As against
// columns tx·4..+4 and 64+tx·4..+4 of Bs, one fmaf per k in increasing order (the score contract).
__device__ __forceinline__ void fb_fma_8x8(const float (*As)[FB_TILE], const float (*Bs)[FB_TILE],
                                           unsigned kend, unsigned tx, unsigned ty, float acc[8][8]) {
    for (unsigned kk = 0; kk < kend; ++kk) {
        float a[8], b[8];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            a[i] = As[kk][ty * 4 + i];
            a[4 + i] = As[kk][64 + ty * 4 + i];
            b[i] = Bs[kk][tx * 4 + i];
            b[4 + i] = Bs[kk][64 + tx * 4 + i];
        }
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
            for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
}

__device__ __forceinline__ void fb_rows_cols(unsigned row0, unsigned col0, unsigned tx, unsigned ty,
                                             unsigned rows[8], unsigned cols[8]) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        rows[i] = row0 + ty * 4 + i;
        rows[4 + i] = row0 + 64 + ty * 4 + i;
        cols[i] = col0 + tx * 4 + i;
        cols[4 + i] = col0 + 64 + tx * 4 + i;
    }
}

// Appends (row, col, bin) to the high list when the bin reaches collect_from (the bootstrap pass);
// the host checks the final count against the histograms, so a full list cannot pass silently.
__device__ __forceinline__ void fb_push_high(unsigned bin, unsigned collect_from, unsigned r, unsigned c,
                                             unsigned* __restrict__ high, unsigned* high_count,
                                             unsigned high_cap) {
    if (bin >= collect_from) {
        const unsigned slot = atomicAdd(high_count, 1u);
        if (slot < high_cap) {
            high[3 * slot] = r;
            high[3 * slot + 1] = c;
            high[3 * slot + 2] = bin;
        }
    }
}

// Routes the 8×8 scores of one thread: mated pairs to the list, non-mated pairs to the histogram of
// their cell (and to the high list when their bin reaches collect_from).
__device__ __forceinline__ void fb_emit(
    float acc[8][8], unsigned n, unsigned row0, unsigned col0, unsigned tx, unsigned ty,
    const unsigned* __restrict__ grp, const unsigned* __restrict__ subj, unsigned groups,
    unsigned* __restrict__ hist, unsigned collect_from,
    unsigned* __restrict__ mated, float* __restrict__ mated_score, unsigned* mated_count, unsigned mated_cap,
    unsigned* __restrict__ high, unsigned* high_count, unsigned high_cap) {
    unsigned rows[8], cols[8];
    fb_rows_cols(row0, col0, tx, ty, rows, cols);
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
                fb_push_high(bin, collect_from, rows[i], cols[j], high, high_count, high_cap);
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
            fb_push_high(bin, collect_from, r, c, high, high_count, high_cap);
        }
    }
}

// Block-private histogram window: FB_WIN bins starting at the (even) bin `win_lo`, two 16-bit counters
// per 32-bit word of shared memory (32 KiB, within the 48 KiB of static shared memory). A tile adds at
// most 2^14 to a counter, so the window is flushed after FB_MAX_PENDING = 3 tiles (≤ 49,152 < 2^16),
// and whenever the block moves to another cell.
#define FB_WIN 16384u
#define FB_MAX_PENDING 3u

// Adds the window's counts into the cell's u32 histogram in global memory and zeroes the window.
__device__ __forceinline__ void fb_flush_window(unsigned* win, unsigned* __restrict__ cell_hist,
                                                unsigned win_lo, unsigned tid) {
    __syncthreads();
    for (unsigned w = tid; w < FB_WIN / 2; w += FB_THREADS) {
        const unsigned v = win[w];
        if (v) {
            if (v & 0xFFFFu) atomicAdd(cell_hist + win_lo + 2 * w, v & 0xFFFFu);
            if (v >> 16) atomicAdd(cell_hist + win_lo + 2 * w + 1, v >> 16);
            win[w] = 0;
        }
    }
    __syncthreads();
}

// Each block scores `per_block` consecutive tiles of the list (the same tile row, neighbouring
// columns): acc = fmaf chain over k, then the scores are routed. Tiles that lie in one cell with no
// mated pair possible count into the shared-memory window (bins outside it go straight to global
// memory); the others take the general path of fb_emit.
template <class L>
__device__ __forceinline__ void fb_tiles(
    const typename L::T* __restrict__ emb, unsigned np, unsigned n, unsigned dim,
    const unsigned* __restrict__ grp, const unsigned* __restrict__ subj, unsigned groups,
    const unsigned* __restrict__ tiles, unsigned ntiles, unsigned per_block, unsigned win_lo,
    unsigned* __restrict__ hist, unsigned collect_from,
    unsigned* __restrict__ mated, float* __restrict__ mated_score, unsigned* mated_count, unsigned mated_cap,
    unsigned* __restrict__ high, unsigned* high_count, unsigned high_cap) {
    __shared__ __align__(16) float As[FB_BK][FB_TILE];
    __shared__ __align__(16) float Bs[FB_BK][FB_TILE];
    __shared__ unsigned win[FB_WIN / 2];
    const unsigned tid = threadIdx.x;
    const unsigned tx = tid % 16, ty = tid / 16;
    for (unsigned w = tid; w < FB_WIN / 2; w += FB_THREADS) win[w] = 0;
    // Every thread keeps the same copy of the block's window state (all decisions are per tile).
    unsigned win_cell = FB_NONE, pending = 0;
    const unsigned first = blockIdx.x * per_block;
    const unsigned last = first + per_block < ntiles ? first + per_block : ntiles;
    for (unsigned t = first; t < last; ++t) {
        const unsigned row0 = tiles[2 * t] * FB_TILE, col0 = tiles[2 * t + 1] * FB_TILE;
        float acc[8][8];
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
            for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;
        for (unsigned k0 = 0; k0 < dim; k0 += FB_BK) {
            // 256 threads stage 8 k-rows × 128 values of each operand: 4 each, coalesced.
#pragma unroll
            for (unsigned m = 0; m < 4; ++m) {
                const unsigned idx = tid + m * FB_THREADS;
                const unsigned kk = idx / FB_TILE, c = idx % FB_TILE;
                const unsigned k = k0 + kk;
                float a = 0.0f, b = 0.0f;
                if (k < dim) {
                    a = L::load(emb, (unsigned long long)k * np + row0 + c);
                    b = L::load(emb, (unsigned long long)k * np + col0 + c);
                }
                As[kk][c] = a;
                Bs[kk][c] = b;
            }
            __syncthreads();
            fb_fma_8x8(As, Bs, dim - k0 < FB_BK ? dim - k0 : FB_BK, tx, ty, acc);
            __syncthreads();
        }
        // The tile lies strictly right of the diagonal and inside n, in one cell, and no subject
        // can occur on both sides (ranks are non-decreasing along the sorted rows).
        const unsigned last_row = row0 + FB_TILE - 1, last_col = col0 + FB_TILE - 1;
        const bool uniform = hist && col0 > last_row && last_col < n && grp[row0] == grp[last_row] &&
                             grp[col0] == grp[last_col] && subj[last_row] < subj[col0];
        if (!uniform) {
            fb_emit(acc, n, row0, col0, tx, ty, grp, subj, groups, hist, collect_from, mated,
                    mated_score, mated_count, mated_cap, high, high_count, high_cap);
            continue;
        }
        const unsigned cell = fb_cell(grp[row0], grp[col0], groups);
        unsigned* const cell_hist = hist + (unsigned long long)cell * FB_BINS;
        if (cell != win_cell || pending == FB_MAX_PENDING) {
            if (win_cell != FB_NONE) fb_flush_window(win, hist + (unsigned long long)win_cell * FB_BINS, win_lo, tid);
            win_cell = cell;
            pending = 0;
        }
        pending += 1;
        unsigned rows[8], cols[8];
        fb_rows_cols(row0, col0, tx, ty, rows, cols);
#pragma unroll
        for (int i = 0; i < 8; ++i) {
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                const unsigned bin = fb_bin(acc[i][j]);
                const unsigned off = bin - win_lo; // wraps to a large value below the window
                if (off < FB_WIN) {
                    atomicAdd(win + off / 2, 1u << (16 * (off & 1u)));
                } else {
                    atomicAdd(cell_hist + bin, 1u);
                }
                fb_push_high(bin, collect_from, rows[i], cols[j], high, high_count, high_cap);
            }
        }
    }
    if (win_cell != FB_NONE) fb_flush_window(win, hist + (unsigned long long)win_cell * FB_BINS, win_lo, tid);
}

#define FB_TILES_PARAMS(T)                                                                          \
    const T* __restrict__ emb, unsigned np, unsigned n, unsigned dim,                               \
    const unsigned* __restrict__ grp, const unsigned* __restrict__ subj, unsigned groups,           \
    const unsigned* __restrict__ tiles, unsigned ntiles, unsigned per_block, unsigned win_lo,       \
    unsigned* __restrict__ hist, unsigned collect_from,                                             \
    unsigned* __restrict__ mated, float* __restrict__ mated_score, unsigned* mated_count,           \
    unsigned mated_cap, unsigned* __restrict__ high, unsigned* high_count, unsigned high_cap
#define FB_TILES_ARGS                                                                               \
    emb, np, n, dim, grp, subj, groups, tiles, ntiles, per_block, win_lo, hist, collect_from, mated, \
        mated_score, mated_count, mated_cap, high, high_count, high_cap

extern "C" __global__ void __launch_bounds__(FB_THREADS) fb_tiles_f32(FB_TILES_PARAMS(float)) {
    fb_tiles<FbF32>(FB_TILES_ARGS);
}

extern "C" __global__ void __launch_bounds__(FB_THREADS) fb_tiles_bf16(FB_TILES_PARAMS(unsigned short)) {
    fb_tiles<FbBf16>(FB_TILES_ARGS);
}

extern "C" __global__ void __launch_bounds__(FB_THREADS) fb_tiles_f16(FB_TILES_PARAMS(unsigned short)) {
    fb_tiles<FbF16>(FB_TILES_ARGS);
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

// ---------------------------------------------------------------------------------------------------
// fb_search_f32: the 1:N search (compare::search's contract, scored on the device).
//
// One block per work item (probe tile, gallery chunk): 128 probes (`probes[k·pp + p]`, k-major, pp a
// multiple of 128, padded probes zero) against the chunk's entries [begin, end) (`gallery[k·gp + e]`,
// k-major), 128 entries at a time. Each thread owns an 8×8 register tile of scores (entries
// ty·4+{0..3} and 64+ty·4+{0..3}, probes likewise with tx), accumulated with one fmaf per k in
// increasing k from 0 — the score contract, so every score is bit-identical to the CPU's dot_fma.
//
// Top-L per probe of the chunk, exactly: each probe has a candidate buffer of `cap` = 2l + 128 slots
// in global memory and an admission threshold in shared memory (−∞ at first). A score at or above the
// threshold is appended (ties are admitted: they can still win on the row); NaN never is (every
// comparison with NaN is false). After each 128-entry tile, a buffer holding more than 2l candidates
// is cut to its best l in the exact order (score desc, then lower rows[e], then lower e), and the
// threshold becomes its l-th score; a tile adds at most 128, so a buffer never overflows. The
// threshold is never above the l-th best score of the entries scanned so far, so no entry of the
// chunk's top l is ever refused. At the end each probe's best min(count, l) are written, in order, to
// the block's output lists. The host merges the chunks of each probe in entry order; chunks never
// straddle a gallery size, so a size's top L is the top L of its chunks' lists.

// Whether (s, r, e) goes before (cs, cr, ce): higher score, then lower row, then lower entry.
__device__ __forceinline__ bool fb_before(float s, unsigned r, unsigned e, float cs, unsigned cr, unsigned ce) {
    return s > cs || (s == cs && (r < cr || (r == cr && e < ce)));
}

// Moves the best m of the n candidates (s[i], e[i]) to slots 0..m−1, in order (partial selection
// sort; the candidates are never NaN, so the order is total).
__device__ __forceinline__ void fb_select(float* s, unsigned* e, unsigned n, unsigned m,
                                          const unsigned* __restrict__ rows) {
    for (unsigned i = 0; i < m; ++i) {
        unsigned b = i;
        float bs = s[i];
        unsigned be = e[i], br = rows[be];
        for (unsigned j = i + 1; j < n; ++j) {
            const float js = s[j];
            const unsigned je = e[j];
            if (js > bs || (js == bs && fb_before(js, rows[je], je, bs, br, be))) {
                b = j;
                bs = js;
                be = je;
                br = rows[je];
            }
        }
        s[b] = s[i];
        e[b] = e[i];
        s[i] = bs;
        e[i] = be;
    }
}

extern "C" __global__ void __launch_bounds__(FB_THREADS) fb_search_f32(
    const float* __restrict__ probes, unsigned pp, unsigned nprobes,
    const float* __restrict__ gallery, unsigned gp, unsigned dim,
    const unsigned* __restrict__ rows, const unsigned* __restrict__ items,
    unsigned l, unsigned cap, float* __restrict__ buf_score, unsigned* __restrict__ buf_entry,
    float* __restrict__ out_score, unsigned* __restrict__ out_entry, unsigned* __restrict__ out_count) {
    __shared__ __align__(16) float As[FB_BK][FB_TILE];
    __shared__ __align__(16) float Bs[FB_BK][FB_TILE];
    __shared__ float thr[FB_TILE];
    __shared__ unsigned cnt[FB_TILE];
    const unsigned tid = threadIdx.x;
    const unsigned tx = tid % 16, ty = tid / 16;
    const unsigned item = blockIdx.x;
    const unsigned p0 = items[3 * item] * FB_TILE, begin = items[3 * item + 1], end = items[3 * item + 2];
    // This block's 128 lists: buffers at (item·128 + probe lane)·cap, outputs at (item·128 + lane)·l.
    const unsigned long long first_list = (unsigned long long)item * FB_TILE;
    float* const bs = buf_score + first_list * cap;
    unsigned* const be = buf_entry + first_list * cap;
    if (tid < FB_TILE) {
        thr[tid] = __uint_as_float(0xFF800000u); // −∞
        cnt[tid] = 0;
    }
    __syncthreads();
    for (unsigned e0 = begin; e0 < end; e0 += FB_TILE) {
        float acc[8][8];
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
            for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;
        for (unsigned k0 = 0; k0 < dim; k0 += FB_BK) {
            // 256 threads stage 8 k-rows × 128 values of each operand: 4 each, coalesced.
#pragma unroll
            for (unsigned m = 0; m < 4; ++m) {
                const unsigned idx = tid + m * FB_THREADS;
                const unsigned kk = idx / FB_TILE, c = idx % FB_TILE;
                const unsigned k = k0 + kk;
                float a = 0.0f, b = 0.0f;
                if (k < dim) {
                    if (e0 + c < end) a = gallery[(unsigned long long)k * gp + e0 + c];
                    b = probes[(unsigned long long)k * pp + p0 + c];
                }
                As[kk][c] = a;
                Bs[kk][c] = b;
            }
            __syncthreads();
            fb_fma_8x8(As, Bs, dim - k0 < FB_BK ? dim - k0 : FB_BK, tx, ty, acc);
            __syncthreads();
        }
        // Admission: entry rows of this thread against its probe columns.
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const unsigned e = e0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + (i - 4));
            if (e >= end) continue;
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                const unsigned c = j < 4 ? tx * 4 + j : 64 + tx * 4 + (j - 4);
                if (p0 + c >= nprobes) continue;
                const float s = acc[i][j];
                if (s >= thr[c]) {
                    const unsigned slot = atomicAdd(&cnt[c], 1u);
                    bs[(unsigned long long)c * cap + slot] = s;
                    be[(unsigned long long)c * cap + slot] = e;
                }
            }
        }
        __syncthreads();
        if (tid < FB_TILE && cnt[tid] > 2 * l) {
            float* s = bs + (unsigned long long)tid * cap;
            unsigned* en = be + (unsigned long long)tid * cap;
            fb_select(s, en, cnt[tid], l, rows);
            cnt[tid] = l;
            thr[tid] = s[l - 1];
        }
        __syncthreads();
    }
    if (tid < FB_TILE) {
        const unsigned n = cnt[tid], m = n < l ? n : l;
        float* s = bs + (unsigned long long)tid * cap;
        unsigned* en = be + (unsigned long long)tid * cap;
        fb_select(s, en, n, m, rows);
        const unsigned long long out = (first_list + tid) * l;
        for (unsigned i = 0; i < m; ++i) {
            out_score[out + i] = s[i];
            out_entry[out + i] = en[i];
        }
        out_count[first_list + tid] = m;
    }
}

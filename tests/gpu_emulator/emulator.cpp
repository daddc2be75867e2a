// A CPU emulation of the CUDA execution model, just large enough for src/compare/gpu/kernels.cu (the
// all-pairs tiles, the flush and the 1:N search):
// blocks run one after another, each with one std::thread per CUDA thread; __shared__ arrays are
// statics (one block at a time), __syncthreads is a std::barrier over the block's threads, atomicAdd is
// an atomic read-modify-write. fmaf, floorf, fminf and fmaxf are the C library's, which round as the
// GPU does (IEEE fused multiply-add; exact floor, min, max). Built by tests/gpu.rs with
//   g++ -std=c++20 -O2 -ffp-contract=off -shared -fPIC -pthread emulator.cpp
// and driven through `fb_emulate`, with the same argument convention as cuLaunchKernel (an array of
// pointers to the argument values).

#include <barrier>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};
static thread_local dim3 threadIdx;
static dim3 blockIdx, blockDim, gridDim;
static std::barrier<>* fb_block_barrier = nullptr;

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(x)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

static inline void __syncthreads() { fb_block_barrier->arrive_and_wait(); }
static inline unsigned atomicAdd(unsigned* p, unsigned v) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
static inline float __uint_as_float(unsigned u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

#include "../../src/compare/gpu/kernels.cu"

template <class F>
static void run_grid(unsigned grid, unsigned block, F body) {
    gridDim.x = grid;
    blockDim.x = block;
    for (unsigned b = 0; b < grid; ++b) {
        blockIdx.x = b;
        std::barrier<> bar(block);
        fb_block_barrier = &bar;
        std::vector<std::thread> threads;
        threads.reserve(block);
        for (unsigned t = 0; t < block; ++t) {
            threads.emplace_back([t, &body] {
                threadIdx.x = t;
                body();
            });
        }
        for (auto& th : threads) th.join();
    }
}

template <class T>
static T arg(void** a, int i) {
    return *static_cast<T*>(a[i]);
}

#define FB_TILE_ARGS(T)                                                                             \
    arg<const T*>(a, 0), arg<unsigned>(a, 1), arg<unsigned>(a, 2), arg<unsigned>(a, 3),             \
        arg<const unsigned*>(a, 4), arg<const unsigned*>(a, 5), arg<unsigned>(a, 6),                \
        arg<const unsigned*>(a, 7), arg<unsigned>(a, 8), arg<unsigned>(a, 9), arg<unsigned>(a, 10), \
        arg<unsigned*>(a, 11), arg<unsigned>(a, 12), arg<unsigned*>(a, 13), arg<float*>(a, 14),     \
        arg<unsigned*>(a, 15), arg<unsigned>(a, 16), arg<unsigned*>(a, 17), arg<unsigned*>(a, 18),  \
        arg<unsigned>(a, 19)

// Returns 0 on success, 1 for an unknown kernel name.
extern "C" int fb_emulate(const char* name, unsigned grid, unsigned block, void** a) {
    if (!std::strcmp(name, "fb_tiles_f32")) {
        run_grid(grid, block, [&] { fb_tiles_f32(FB_TILE_ARGS(float)); });
    } else if (!std::strcmp(name, "fb_tiles_bf16")) {
        run_grid(grid, block, [&] { fb_tiles_bf16(FB_TILE_ARGS(unsigned short)); });
    } else if (!std::strcmp(name, "fb_tiles_f16")) {
        run_grid(grid, block, [&] { fb_tiles_f16(FB_TILE_ARGS(unsigned short)); });
    } else if (!std::strcmp(name, "fb_search_f32")) {
        run_grid(grid, block, [&] {
            fb_search_f32(arg<const float*>(a, 0), arg<unsigned>(a, 1), arg<unsigned>(a, 2),
                          arg<const float*>(a, 3), arg<unsigned>(a, 4), arg<unsigned>(a, 5),
                          arg<const unsigned*>(a, 6), arg<const unsigned*>(a, 7), arg<unsigned>(a, 8),
                          arg<unsigned>(a, 9), arg<float*>(a, 10), arg<unsigned*>(a, 11),
                          arg<float*>(a, 12), arg<unsigned*>(a, 13), arg<unsigned*>(a, 14));
        });
    } else if (!std::strcmp(name, "fb_flush")) {
        run_grid(grid, block, [&] {
            fb_flush(arg<unsigned*>(a, 0), arg<unsigned long long*>(a, 1), arg<unsigned long long>(a, 2));
        });
    } else {
        return 1;
    }
    return 0;
}

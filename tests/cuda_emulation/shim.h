// Just enough of CUDA C++ to run kernels/conv.cu's block-level kernels on the CPU: one block
// at a time, each CUDA thread a std::thread, __syncthreads a std::barrier, __shared__ arrays
// static (one copy, shared by the threads of the running block). Warp intrinsics are absent:
// kernels that use them cannot run here (global_avgpool).
#pragma once
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

using std::max;
using std::min;

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};
struct int4 {
    int x, y, z, w;
};
struct alignas(16) float4 {
    float x, y, z, w;
};

inline thread_local dim3 threadIdx;
inline dim3 blockIdx, blockDim;
inline std::barrier<>* block_barrier = nullptr;

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __restrict__ __restrict
#define __align__(n) __attribute__((aligned(n)))

inline void __syncthreads() { block_barrier->arrive_and_wait(); }
template <class T>
T __ldg(const T* p) { return *p; }
inline float __int_as_float(int i) {
    float f;
    std::memcpy(&f, &i, sizeof f);
    return f;
}
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline void __stcs(float4* p, float4 v) { *p = v; }
inline double __shfl_down_sync(unsigned, double, int) { std::abort(); }

// Runs `kernel` on every block of `grid` with `threads` threads per block.
inline void launch(dim3 grid, unsigned threads, const std::function<void()>& kernel) {
    blockDim = {threads, 1, 1};
    for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
            for (unsigned x = 0; x < grid.x; ++x) {
                blockIdx = {x, y, z};
                std::barrier<> barrier(threads);
                block_barrier = &barrier;
                std::vector<std::thread> block;
                for (unsigned t = 0; t < threads; ++t)
                    block.emplace_back([t, &kernel] {
                        threadIdx = {t, 0, 0};
                        kernel();
                    });
                for (auto& thread : block) thread.join();
            }
}

// Just enough of CUDA C++ to run the block-level kernels of kernels/conv.cu and
// kernels/ensemble.cu on the CPU: one block at a time, each CUDA thread a std::thread,
// __syncthreads a std::barrier, __shared__ arrays static (one copy, shared by the threads of
// the running block), a warp shuffle an exchange through memory between two barrier waits of
// the warp's 32 threads (every lane must take part, as with a full mask). The _rn intrinsics
// are plain IEEE operations: compile with -ffp-contract=off so that none is fused.
#pragma once
#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

using std::fma;
using std::fmax;
using std::fmin;
using std::log;
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
inline dim3 blockIdx, blockDim, gridDim;
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
inline double __longlong_as_double(long long i) {
    double d;
    std::memcpy(&d, &i, sizeof d);
    return d;
}
inline long long __double_as_longlong(double d) {
    long long i;
    std::memcpy(&i, &d, sizeof i);
    return i;
}
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline void __stcs(float4* p, float4 v) { *p = v; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __drcp_rn(double a) { return 1.0 / a; }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __double2float_rn(double a) { return static_cast<float>(a); }
// The SFU's exp as CUDA computes it, 2^(x log2 e) with the product rounded to binary32 (the
// SFU's own 2 ulp are not modelled).
inline float __expf(float x) { return std::exp2(x * 1.44269504f); }
inline unsigned __umulhi(unsigned a, unsigned b) { return static_cast<unsigned>((uint64_t{a} * b) >> 32); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return std::atomic_ref<unsigned>(*p).fetch_add(v); }

// A warp's exchange: each lane writes its value to its slot, waits for the warp, reads the
// source lane's slot. Slots alternate between two sets, so one barrier wait per shuffle
// suffices: a lane cannot write a set again before every lane has read it (that takes another
// barrier wait of the whole warp).
struct Warp {
    std::unique_ptr<std::barrier<>> barrier;
    uint64_t slots[2][32];
};
inline std::vector<Warp> warps;
inline thread_local unsigned shuffle_parity = 0;

template <class T>
T shuffle(T value, unsigned source_lane) {
    static_assert(sizeof(T) <= sizeof(uint64_t));
    Warp& warp = warps[threadIdx.x / 32];
    uint64_t* slots = warp.slots[shuffle_parity];
    shuffle_parity ^= 1;
    std::memcpy(&slots[threadIdx.x % 32], &value, sizeof value);
    warp.barrier->arrive_and_wait();
    std::memcpy(&value, &slots[source_lane], sizeof value);
    return value;
}
template <class T>
T __shfl_up_sync(unsigned, T value, int delta) {
    const unsigned lane = threadIdx.x % 32;
    return shuffle(value, lane >= unsigned(delta) ? lane - delta : lane);
}
template <class T>
T __shfl_down_sync(unsigned, T value, int delta) {
    const unsigned lane = threadIdx.x % 32;
    return shuffle(value, lane + delta < 32 ? lane + delta : lane);
}
template <class T>
T __shfl_xor_sync(unsigned, T value, int mask) { return shuffle(value, (threadIdx.x % 32) ^ mask); }

// Runs `kernel` on every block of `grid` with `threads` threads per block.
inline void launch(dim3 grid, unsigned threads, const std::function<void()>& kernel) {
    gridDim = grid;
    blockDim = {threads, 1, 1};
    warps = std::vector<Warp>((threads + 31) / 32);
    for (unsigned w = 0; w < warps.size(); ++w)
        warps[w].barrier = std::make_unique<std::barrier<>>(std::min(32u, threads - 32 * w));
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
                        shuffle_parity = 0;
                        kernel();
                    });
                for (auto& thread : block) thread.join();
            }
}

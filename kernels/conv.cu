// Convolution and pooling kernels of the GPU path (issue 7 (c)); host side: src/gpu/conv.rs.
// FP32 throughout, NCHW, 32-bit indices (the host splits batches so that every index of a
// launch fits: see MAX_INDEX there). Built into kernels/ptx/conv.ptx by scripts/build-ptx.sh.
//
// Convolution (cross-correlation, as crkernels_core::nn::conv): per group g a matrix product
//   out[s][g Mg + m][p] = bias[g Mg + m] + sum over k < K of W[g][k][m] * B[k][(s, p)]
// with Mg = C_out/G output channels, K = C_in/G kh kw, and B the implicit patch matrix:
// row k = (c, i, j), column (s, p = y w_out + x) is
//   in[s][g C_in/G + c][y sH + i dH - top][x sW + j dW - left]   (0 outside the input).
// B is never built: each block gathers its BK x BN slice from the input, through a per-k
// table of (c H W, i dH, j dW) made by the host. Tiles: BM output channels x BN positions per
// block, BK of K per stage, double-buffered in shared memory; each thread accumulates TM x TN
// outputs in registers (rows and columns in groups of 4 spread over the tile so that the
// shared-memory reads are conflict-free float4 loads). Plain FP32 FMAs, no tensor cores.

#include <cstdint>

// A named namespace, not an anonymous one: nvcc names internal-linkage symbols after a hash of
// the source path, which would make the PTX differ between checkouts.
namespace crk_conv {

// One aligned 16-byte store with the streaming hint (the output is not read again): an
// intrinsic, because a plain float4 assignment here was split into 4 scalar stores by NVVM.
__device__ __forceinline__ void store4(float* cell, float x, float y, float z, float w) {
    __stcs(reinterpret_cast<float4*>(cell), make_float4(x, y, z, w));
}

template <int BM, int BN, int BK, int TM, int TN>
struct Tile {
    static constexpr int THREADS = (BM / TM) * (BN / TN);
    static constexpr int GROUPS_M = TM / 4;  // groups of 4 rows per thread
    static constexpr int GROUPS_N = TN / 4;
    static constexpr int SPAN_M = BM / GROUPS_M;  // distance between a thread's row groups
    static constexpr int SPAN_N = BN / GROUPS_N;
    static_assert(TM % 4 == 0 && TN % 4 == 0, "thread tiles are groups of 4");
    static_assert(THREADS == BN, "each thread gathers one column of B");
    static_assert(THREADS % BM == 0 && (BK * BM) % THREADS == 0, "A tile loads evenly");
    static constexpr int A_PER_THREAD = BK * BM / THREADS;
};

// The geometry of one convolution launch (passed by value).
struct ConvShape {
    int c_in;         // input channels
    int h, w;         // input height, width
    int h_out, w_out; // output height, width
    int c_out;        // output channels
    int m_group;      // output channels per group, Mg
    int k;            // K = C_in/G kh kw
    int stride_h, stride_w;
    int pad_top, pad_left;
    int columns;      // samples x h_out x w_out (the GEMM's N)
};

template <int BM, int BN, int BK, int TM, int TN>
__device__ __forceinline__ void conv_igemm(
    const float* __restrict__ input,    // [samples][c_in][h][w]
    const float* __restrict__ weight,   // [G][K][Mg]: per group, k-major
    const float* __restrict__ bias,     // [c_out]
    const int4* __restrict__ k_table,   // [K]: (c h w, i dH, j dW, unused)
    float* __restrict__ output,         // [samples][c_out][h_out][w_out]
    const ConvShape s) {
    using T = Tile<BM, BN, BK, TM, TN>;
    __shared__ __align__(16) float a_tile[2][BK][BM];
    __shared__ __align__(16) float b_tile[2][BK][BN];

    const int tid = threadIdx.x;
    const int group = blockIdx.z;
    const int m0 = blockIdx.y * BM;
    const int n0 = blockIdx.x * BN;
    const int positions = s.h_out * s.w_out;
    const int c_in_group = s.c_in / (s.c_out / s.m_group);

    // The B column this thread gathers: sample, window origin.
    const int column = n0 + tid;
    const bool column_valid = column < s.columns;
    int sample = 0, y0 = 0, x0 = 0;
    if (column_valid) {
        sample = column / positions;
        const int p = column - sample * positions;
        const int y = p / s.w_out;
        y0 = y * s.stride_h - s.pad_top;
        x0 = (p - y * s.w_out) * s.stride_w - s.pad_left;
    }
    const float* sample_input =
        input + (static_cast<size_t>(sample) * s.c_in + static_cast<size_t>(group) * c_in_group) * s.h * s.w;

    // The A element(s) this thread loads: row m = tid % BM, stage rows kk = tid / BM + r step.
    const int a_m = tid % BM;
    const int a_k = tid / BM;
    constexpr int A_K_STEP = T::THREADS / BM;
    const float* group_weight = weight + static_cast<size_t>(group) * s.k * s.m_group;

    float a_next[T::A_PER_THREAD];
    float b_next[BK];

    auto gather = [&](int k0) {
#pragma unroll
        for (int r = 0; r < T::A_PER_THREAD; ++r) {
            const int kk = k0 + a_k + r * A_K_STEP;
            const int m = m0 + a_m;
            a_next[r] = (kk < s.k && m < s.m_group) ? __ldg(group_weight + kk * s.m_group + m) : 0.0f;
        }
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            float v = 0.0f;
            if (column_valid && k0 + kk < s.k) {
                const int4 entry = __ldg(k_table + k0 + kk);
                const int iy = y0 + entry.y;
                const int ix = x0 + entry.z;
                if (static_cast<unsigned>(iy) < static_cast<unsigned>(s.h) &&
                    static_cast<unsigned>(ix) < static_cast<unsigned>(s.w)) {
                    v = __ldg(sample_input + entry.x + iy * s.w + ix);
                }
            }
            b_next[kk] = v;
        }
    };
    auto stash = [&](int buffer) {
#pragma unroll
        for (int r = 0; r < T::A_PER_THREAD; ++r) a_tile[buffer][a_k + r * A_K_STEP][a_m] = a_next[r];
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) b_tile[buffer][kk][tid] = b_next[kk];
    };

    const int ty = tid / (BN / TN);  // row group index of this thread
    const int tx = tid % (BN / TN);  // column group index
    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

    gather(0);
    stash(0);
    __syncthreads();
    int buffer = 0;
    for (int k0 = 0; k0 < s.k; k0 += BK) {
        const bool more = k0 + BK < s.k;
        if (more) gather(k0 + BK);
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            float a[TM], b[TN];
#pragma unroll
            for (int gm = 0; gm < T::GROUPS_M; ++gm) {
                const float4 v = *reinterpret_cast<const float4*>(&a_tile[buffer][kk][gm * T::SPAN_M + ty * 4]);
                a[gm * 4 + 0] = v.x; a[gm * 4 + 1] = v.y; a[gm * 4 + 2] = v.z; a[gm * 4 + 3] = v.w;
            }
#pragma unroll
            for (int gn = 0; gn < T::GROUPS_N; ++gn) {
                const float4 v = *reinterpret_cast<const float4*>(&b_tile[buffer][kk][gn * T::SPAN_N + tx * 4]);
                b[gn * 4 + 0] = v.x; b[gn * 4 + 1] = v.y; b[gn * 4 + 2] = v.z; b[gn * 4 + 3] = v.w;
            }
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        if (more) {
            stash(buffer ^ 1);
            __syncthreads();
            buffer ^= 1;
        }
    }

    // Write: row i -> channel, column j -> (sample, position). A thread's columns come in runs
    // of 4 that start at a multiple of 4; when a sample's positions are a multiple of 4 (and
    // the output 16-byte aligned) each run is one aligned float4 inside one sample.
    const bool vector_store = positions % 4 == 0 && (reinterpret_cast<uintptr_t>(output) & 15) == 0;
#pragma unroll
    for (int gn = 0; gn < T::GROUPS_N; ++gn) {
        const int run = n0 + gn * T::SPAN_N + tx * 4;
#pragma unroll
        for (int q = 0; q < (vector_store ? 1 : 4); ++q) {
            const int n = run + q;
            if (n >= s.columns) continue;
            const int out_sample = n / positions;
            const int p = n - out_sample * positions;
            float* sample_output = output + static_cast<size_t>(out_sample) * s.c_out * positions + p;
#pragma unroll
            for (int gm = 0; gm < T::GROUPS_M; ++gm) {
#pragma unroll
                for (int r = 0; r < 4; ++r) {
                    const int m = m0 + gm * T::SPAN_M + ty * 4 + r;
                    if (m >= s.m_group) continue;
                    const int channel = group * s.m_group + m;
                    const float b = __ldg(bias + channel);
                    const int i = gm * 4 + r, j = gn * 4;
                    float* cell = sample_output + static_cast<size_t>(channel) * positions;
                    if (vector_store) {
                        store4(cell, acc[i][j] + b, acc[i][j + 1] + b, acc[i][j + 2] + b, acc[i][j + 3] + b);
                    } else {
                        *cell = acc[i][j + q] + b;
                    }
                }
            }
        }
    }
}

}  // namespace crk_conv

using namespace crk_conv;

// 64 output channels x 128 positions per block, 8 x 8 per thread, 128 threads: for groups of
// more than 32 output channels.
extern "C" __global__ void __launch_bounds__(128, 4) conv2d_igemm_64x128(
    const float* __restrict__ input, const float* __restrict__ weight, const float* __restrict__ bias,
    const int4* __restrict__ k_table, float* __restrict__ output, const ConvShape shape) {
    conv_igemm<64, 128, 8, 8, 8>(input, weight, bias, k_table, output, shape);
}

// 32 output channels x 128 positions per block, 4 x 8 per thread, 128 threads: for groups of
// at most 32 output channels (the seed conv1d, depthwise layers).
extern "C" __global__ void __launch_bounds__(128) conv2d_igemm_32x128(
    const float* __restrict__ input, const float* __restrict__ weight, const float* __restrict__ bias,
    const int4* __restrict__ k_table, float* __restrict__ output, const ConvShape shape) {
    conv_igemm<32, 128, 8, 4, 8>(input, weight, bias, k_table, output, shape);
}

// The geometry of one pooling launch (as crkernels_core::nn::pool::Pool2d).
struct PoolShape {
    int h, w;           // input height, width
    int h_out, w_out;   // output height, width
    int kernel_h, kernel_w;
    int stride_h, stride_w;
    int pad_top, pad_left;
    int planes;         // samples x channels
    int is_max;         // 1: max pooling; 0: average
    int count_include_pad;  // average: 1 divides by kh kw, 0 by the input cells in the window
};

// One thread per output cell: the window clipped to the input, max (padded cells ignored,
// NaN never wins: a comparison, as on the CPU) or sum in row-major order then the divisor.
extern "C" __global__ void pool2d(const float* __restrict__ input, float* __restrict__ output,
                                  const PoolShape s) {
    const int cells = s.h_out * s.w_out;
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= s.planes * cells) return;
    const int plane = index / cells;
    const int p = index - plane * cells;
    const int y = p / s.w_out;
    const int x = p - y * s.w_out;
    const int top = y * s.stride_h - s.pad_top;
    const int left = x * s.stride_w - s.pad_left;
    const int y_begin = max(top, 0), y_end = min(top + s.kernel_h, s.h);
    const int x_begin = max(left, 0), x_end = min(left + s.kernel_w, s.w);
    const float* plane_input = input + static_cast<size_t>(plane) * s.h * s.w;
    float result;
    if (s.is_max) {
        result = __int_as_float(0xff800000);  // -inf
        for (int iy = y_begin; iy < y_end; ++iy)
            for (int ix = x_begin; ix < x_end; ++ix) {
                const float v = __ldg(plane_input + iy * s.w + ix);
                result = v > result ? v : result;
            }
    } else {
        float sum = 0.0f;
        for (int iy = y_begin; iy < y_end; ++iy)
            for (int ix = x_begin; ix < x_end; ++ix) sum += __ldg(plane_input + iy * s.w + ix);
        const int divisor =
            s.count_include_pad ? s.kernel_h * s.kernel_w : (y_end - y_begin) * (x_end - x_begin);
        result = sum / static_cast<float>(divisor);
    }
    output[index] = result;
}

// Global average pooling: one warp per plane of `plane` values, summed in FP64 (as the CPU)
// and reduced across the warp; output[i] = sum / plane.
extern "C" __global__ void global_avgpool(const float* __restrict__ input, float* __restrict__ output,
                                          const int planes, const int plane) {
    const int warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (warp >= planes) return;
    const float* values = input + static_cast<size_t>(warp) * plane;
    double sum = 0.0;
    for (int i = lane; i < plane; i += 32) sum += static_cast<double>(__ldg(values + i));
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
    if (lane == 0) output[warp] = static_cast<float>(sum / plane);
}

// The FP32 FMA peak probe of benches/gpu_conv.rs: each thread runs 8 independent chains of
// `rounds` x 16 FMAs (2 FLOPs each) and writes one sum so nothing is optimised away.
extern "C" __global__ void fma_peak(float* __restrict__ sink, const int rounds, const float seed) {
    float chain[8];
#pragma unroll
    for (int c = 0; c < 8; ++c) chain[c] = seed + c + threadIdx.x;
    const float a = 0.999999f, b = 1e-7f;
    for (int r = 0; r < rounds; ++r) {
#pragma unroll
        for (int u = 0; u < 16; ++u)
#pragma unroll
            for (int c = 0; c < 8; ++c) chain[c] = fmaf(chain[c], a, b);
    }
    float total = 0.0f;
#pragma unroll
    for (int c = 0; c < 8; ++c) total += chain[c];
    sink[blockIdx.x * blockDim.x + threadIdx.x] = total;
}

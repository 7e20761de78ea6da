// kernels/conv.cu's convolution and pooling kernels, run on the CPU through shim.h with the
// host-side preparation of src/gpu/conv.rs (weights k-major per group, the patch table, the
// launch grid), against naive loops written from the definitions (crkernels_core::nn::conv,
// nn::pool) in double. Exit status 0 when every case agrees to 1e-5 of the max-norm and every
// output was written. Built and run by tests/cuda_emulation.rs.
#include "shim.h"
#include "conv.cu"

#include <cstdio>
#include <random>

namespace {

std::mt19937 generator(1);

std::vector<float> random_values(size_t n) {
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = uniform(generator);
    return v;
}

struct Conv {
    int n, c_in, h, w, c_out, kh, kw, stride_h, stride_w, top, bottom, left, right, dil_h, dil_w, groups;
};

// Max |gpu - reference| / max |reference|, or infinity if an output was not written.
double conv_error(const Conv& c) {
    const int h_out = (c.h + c.top + c.bottom - c.dil_h * (c.kh - 1) - 1) / c.stride_h + 1;
    const int w_out = (c.w + c.left + c.right - c.dil_w * (c.kw - 1) - 1) / c.stride_w + 1;
    const int c_in_group = c.c_in / c.groups, m_group = c.c_out / c.groups, k = c_in_group * c.kh * c.kw;
    const auto input = random_values(size_t(c.n) * c.c_in * c.h * c.w);
    const auto weight = random_values(size_t(c.c_out) * k), bias = random_values(c.c_out);
    std::vector<float> k_major(weight.size());
    for (int o = 0; o < c.c_out; ++o)
        for (int kk = 0; kk < k; ++kk) k_major[(size_t(o / m_group) * k + kk) * m_group + o % m_group] = weight[size_t(o) * k + kk];
    std::vector<int4> table;
    for (int ch = 0; ch < c_in_group; ++ch)
        for (int i = 0; i < c.kh; ++i)
            for (int j = 0; j < c.kw; ++j) table.push_back({ch * c.h * c.w, i * c.dil_h, j * c.dil_w, 0});
    std::vector<float> output(size_t(c.n) * c.c_out * h_out * w_out, NAN);
    const int columns = c.n * h_out * w_out;
    const ConvShape shape{c.c_in, c.h, c.w, h_out, w_out, c.c_out, m_group, k,
                          c.stride_h, c.stride_w, c.top, c.left, columns};
    const bool large = m_group > 32;
    const unsigned tile = large ? 64 : 32;
    const dim3 grid{unsigned(columns + 127) / 128, (unsigned(m_group) + tile - 1) / tile, unsigned(c.groups)};
    launch(grid, 128, [&] {
        if (large)
            conv2d_igemm_64x128(input.data(), k_major.data(), bias.data(), table.data(), output.data(), shape);
        else
            conv2d_igemm_32x128(input.data(), k_major.data(), bias.data(), table.data(), output.data(), shape);
    });
    double error = 0.0, scale = 0.0;
    for (int s = 0; s < c.n; ++s)
        for (int o = 0; o < c.c_out; ++o)
            for (int y = 0; y < h_out; ++y)
                for (int x = 0; x < w_out; ++x) {
                    double want = bias[o];
                    const int g = o / m_group;
                    for (int ch = 0; ch < c_in_group; ++ch)
                        for (int i = 0; i < c.kh; ++i)
                            for (int j = 0; j < c.kw; ++j) {
                                const int iy = y * c.stride_h + i * c.dil_h - c.top;
                                const int ix = x * c.stride_w + j * c.dil_w - c.left;
                                if (iy < 0 || ix < 0 || iy >= c.h || ix >= c.w) continue;
                                want += double(weight[(size_t(o) * c_in_group + ch) * c.kh * c.kw + i * c.kw + j]) *
                                        input[((size_t(s) * c.c_in + g * c_in_group + ch) * c.h + iy) * c.w + ix];
                            }
                    const float got = output[((size_t(s) * c.c_out + o) * h_out + y) * w_out + x];
                    if (!std::isfinite(got)) return INFINITY;
                    error = std::max(error, std::fabs(got - want));
                    scale = std::max(scale, std::fabs(want));
                }
    return error / scale;
}

struct Pool {
    int n, c, h, w, kh, kw, stride_h, stride_w, top, bottom, left, right, is_max, count_include_pad;
};

double pool_error(const Pool& p) {
    const int h_out = (p.h + p.top + p.bottom - p.kh) / p.stride_h + 1;
    const int w_out = (p.w + p.left + p.right - p.kw) / p.stride_w + 1;
    const auto input = random_values(size_t(p.n) * p.c * p.h * p.w);
    std::vector<float> output(size_t(p.n) * p.c * h_out * w_out, NAN);
    const PoolShape shape{p.h, p.w, h_out, w_out, p.kh, p.kw, p.stride_h, p.stride_w,
                          p.top, p.left, p.n * p.c, p.is_max, p.count_include_pad};
    const int cells = p.n * p.c * h_out * w_out;
    launch(dim3{unsigned(cells + 255) / 256, 1, 1}, 256, [&] { pool2d(input.data(), output.data(), shape); });
    double error = 0.0, scale = 0.0;
    for (int plane = 0; plane < p.n * p.c; ++plane)
        for (int y = 0; y < h_out; ++y)
            for (int x = 0; x < w_out; ++x) {
                double largest = -INFINITY, sum = 0.0;
                int count = 0;
                for (int i = 0; i < p.kh; ++i)
                    for (int j = 0; j < p.kw; ++j) {
                        const int iy = y * p.stride_h + i - p.top, ix = x * p.stride_w + j - p.left;
                        if (iy < 0 || ix < 0 || iy >= p.h || ix >= p.w) continue;
                        const double v = input[(size_t(plane) * p.h + iy) * p.w + ix];
                        largest = std::max(largest, v);
                        sum += v;
                        ++count;
                    }
                const double want = p.is_max ? largest : sum / (p.count_include_pad ? p.kh * p.kw : count);
                const float got = output[(size_t(plane) * h_out + y) * w_out + x];
                if (!std::isfinite(got)) return INFINITY;
                error = std::max(error, std::fabs(got - want));
                scale = std::max(scale, std::fabs(want));
            }
    return error / scale;
}

}  // namespace

int main() {
    int failures = 0;
    const Conv convs[] = {
        // n, c_in, h, w, c_out, kh, kw, stride, padding (top, bottom, left, right), dilation, groups
        {3, 32, 8, 8, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},     // the seed conv2d
        {3, 2, 1, 256, 32, 1, 5, 1, 1, 0, 0, 2, 2, 1, 1, 1},    // the seed conv1d
        {3, 3, 7, 5, 65, 3, 2, 1, 1, 0, 0, 0, 0, 1, 1, 1},      // 65 channels: two channel tiles
        {2, 4, 9, 10, 40, 3, 3, 2, 3, 1, 0, 2, 1, 1, 1, 1},     // strides, asymmetric padding
        {2, 6, 11, 12, 70, 3, 2, 1, 1, 2, 2, 0, 3, 2, 3, 1},    // dilation
        {2, 9, 8, 6, 99, 2, 2, 1, 2, 0, 0, 0, 0, 1, 1, 3},      // 3 groups of 33
        {3, 16, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 16},    // depthwise
        {2, 37, 6, 9, 130, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1},    // K = 925, not a multiple of 8
        {1, 1, 13, 3, 1, 4, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},      // one channel in, one out
        {2, 3, 1, 50, 20, 1, 4, 1, 3, 0, 0, 0, 0, 1, 2, 1},     // conv1d, stride 3, dilation 2
    };
    for (const auto& c : convs) {
        const double error = conv_error(c);
        std::printf("conv2d c_in %d %dx%d -> c_out %d, kernel %dx%d, groups %d: relative error %.2e\n", c.c_in, c.h,
                    c.w, c.c_out, c.kh, c.kw, c.groups, error);
        failures += !(error <= 1e-5);
    }
    const Pool pools[] = {
        // n, c, h, w, kh, kw, stride, padding (top, bottom, left, right), is_max, count_include_pad
        {2, 5, 9, 7, 3, 3, 2, 2, 1, 1, 1, 0, 1, 0},
        {2, 5, 9, 7, 3, 3, 2, 2, 1, 1, 1, 0, 0, 1},
        {2, 5, 9, 7, 3, 3, 2, 2, 1, 1, 1, 0, 0, 0},
        {2, 2, 11, 13, 4, 2, 3, 1, 2, 1, 0, 1, 0, 0},
        {3, 4, 1, 50, 1, 3, 1, 2, 0, 0, 1, 1, 1, 0},
    };
    for (const auto& p : pools) {
        const double error = pool_error(p);
        std::printf("pool2d %dx%d kernel %dx%d max %d: relative error %.2e\n", p.h, p.w, p.kh, p.kw, p.is_max, error);
        failures += !(error <= 1e-6);
    }
    std::printf(failures ? "%d failures\n" : "all cases agree\n", failures);
    return failures != 0;
}

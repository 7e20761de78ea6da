// MADE with Gaussian-mixture outputs on the GPU (issue 7 (b); the CPU model is
// crkernels-core/src/nn/made.rs, whose layout this follows: every layer's units sorted by
// degree, so a masked row sees a prefix of its inputs, and the weights are stored dense with
// zeros outside the mask).
//
// Equivalence with the CPU. The CPU's masked dense kernel computes each unit as
// acc = bias; acc = fma(w_j, in_j, acc) for j = 0, 1, ... in order (AVX2/AVX-512 FMAs). Every
// kernel here does the same fused multiply-adds in the same order (extra terms beyond a row's
// prefix have w = 0 and leave acc unchanged), and the elementwise steps (standardisation,
// sigmoid, affine, residual) are written with explicitly rounded intrinsics (__fmul_rn ...),
// so that nvcc's default FMA contraction cannot change them: the f32 network outputs equal the
// CPU's bit for bit, except after tanh (CUDA's tanhf and glibc's may differ in the last bit).
// The mixture arithmetic is in double. Sampling draws from the same Philox4x32-10 stream as
// crkernels-core/src/rng.rs (integer arithmetic: exact) with the same uniform mapping, the same
// component choice and the same AS241 normal quantile written with rounded intrinsics; only
// exp, log and log1p come from CUDA's library (faithfully rounded, like glibc's).
//
// Layouts. Activations of the log-density path are feature-major in global memory,
// buffer[feature][stride] with stride a multiple of 64 samples; every buffer's first
// n_context rows hold the standardised context (as on the CPU). The sampler keeps one
// sample's buffers per thread in shared memory, [row][blockDim.x].

#include <stdint.h>

#define ACT_IDENTITY 0
#define ACT_SIGMOID 1
#define ACT_TANH 2
#define ACT_RELU 3

#define SCALE_EXP 0
#define SCALE_SOFTPLUS 1

#define STAGE_DENSE 0
#define STAGE_AFFINE 1

// ln(2 pi) / 2.
#define HALF_LN_2PI 0.9189385332046728

// ---------------------------------------------------------------------------------------------
// Elementwise functions, bit for bit as on the CPU.

// e^x in f32 without branches on the argument: crkernels-core math::exp_branchless_f32, the
// same operations in the same order.
__device__ __forceinline__ float exp_branchless_f32(float x) {
    const float LOG2_E = 1.44269504088896340736f;
    const float LN2_HI = 0.69314575f;
    const float LN2_LO = 1.4286068e-6f;
    const float SHIFTER = 12582912.0f;
    float clamped = fminf(fmaxf(x, -104.0f), 88.72f);
    float shifted = __fadd_rn(__fmul_rn(clamped, LOG2_E), SHIFTER);
    float k = __fsub_rn(shifted, SHIFTER);
    float r = __fsub_rn(__fsub_rn(clamped, __fmul_rn(k, LN2_HI)), __fmul_rn(k, LN2_LO));
    float r2 = __fmul_rn(r, r);
    float low = __fadd_rn(__fadd_rn(1.0f, r), __fmul_rn(__fadd_rn(0.5f, __fmul_rn(r, 1.0f / 6.0f)), r2));
    float high = __fadd_rn(__fadd_rn(1.0f / 24.0f, __fmul_rn(r, 1.0f / 120.0f)),
                           __fmul_rn(__fadd_rn(1.0f / 720.0f, __fmul_rn(r, 1.0f / 5040.0f)), r2));
    float p = __fadd_rn(low, __fmul_rn(high, __fmul_rn(r2, r2)));
    int ki = (int)(__float_as_uint(shifted) - __float_as_uint(SHIFTER));
    int k_high = ki >> 1;
    int k_low = ki - k_high;
    float value = __fmul_rn(__fmul_rn(p, __uint_as_float((uint32_t)(k_high + 127) << 23)),
                            __uint_as_float((uint32_t)(k_low + 127) << 23));
    return x < -104.0f ? 0.0f : value;
}

// The layer activations of crkernels-core nn::activation (ActivationFn::apply).
__device__ __forceinline__ float activate(int activation, float x) {
    switch (activation) {
        case ACT_SIGMOID: {
            float e = exp_branchless_f32(-fabsf(x));
            float numerator = x >= 0.0f ? 1.0f : e;
            return __fdiv_rn(numerator, __fadd_rn(1.0f, e));
        }
        case ACT_TANH:
            return tanhf(x);
        case ACT_RELU:
            return fmaxf(x, 0.0f);
        default:
            return x;
    }
}

// ln sigma from the raw scale output r: r (sigma = e^r) or ln(softplus(r) + epsilon), softplus
// as in PyTorch (r > 20: r).
__device__ __forceinline__ double log_scale_of(int scale_kind, double epsilon, float raw) {
    double r = (double)raw;
    if (scale_kind == SCALE_EXP) return r;
    double softplus = r > 20.0 ? r : log1p(exp(r));
    return log(__dadd_rn(softplus, epsilon));
}

// ---------------------------------------------------------------------------------------------
// Log-density path.

// Standardises one chunk: buffer0[t][s] = (x[s][order[t]] - x_mean[t]) / x_std[t] below the
// context rows buffer0[j][s] = (c[s][context_order[j]] - c_mean[j]) / c_std[j], in double then
// rounded to f32; samples n..stride get zeros.
extern "C" __global__ void made_standardize(const float *__restrict__ x, const float *__restrict__ context,
                                            int n, int stride, int n_dims, int n_context,
                                            const int *__restrict__ data_order,
                                            const double *__restrict__ x_mean, const double *__restrict__ x_std,
                                            const int *__restrict__ context_order,
                                            const double *__restrict__ context_mean,
                                            const double *__restrict__ context_std, float *__restrict__ buffer0) {
    int s = blockIdx.x * blockDim.x + threadIdx.x;
    if (s >= stride) return;
    for (int j = 0; j < n_context; ++j) {
        float v = 0.0f;
        if (s < n) {
            double c = (double)context[(size_t)s * n_context + context_order[j]];
            v = __double2float_rn(__ddiv_rn(__dsub_rn(c, context_mean[j]), context_std[j]));
        }
        buffer0[(size_t)j * stride + s] = v;
    }
    for (int t = 0; t < n_dims; ++t) {
        float v = 0.0f;
        if (s < n) {
            double value = (double)x[(size_t)s * n_dims + data_order[t]];
            v = __double2float_rn(__ddiv_rn(__dsub_rn(value, x_mean[t]), x_std[t]));
        }
        buffer0[(size_t)(n_context + t) * stride + s] = v;
    }
}

#define GEMM_ROWS 64
#define GEMM_SAMPLES 64
#define GEMM_DEPTH 16
#define GEMM_THREADS 256

// One masked dense layer over a chunk: output[r][s] = act(bias[r] + sum_j W[r][j] in[j][s])
// (+ residual[r][s]), W [n_rows][n_cols] row-major with zeros outside the mask, row_prefix[r]
// the columns row r sees (non-decreasing in r). A 64 x 64 tile per block, 4 x 4 outputs per
// thread; the depth loop stops at the tile's last prefix and accumulates with fmaf in column
// order, starting from the bias, as the CPU does. stride is a multiple of 64.
extern "C" __global__ void __launch_bounds__(GEMM_THREADS)
    made_dense(const float *__restrict__ weight, const float *__restrict__ bias,
               const int *__restrict__ row_prefix, int n_rows, int n_cols, const float *__restrict__ input,
               int stride, int activation, const float *__restrict__ residual, float *__restrict__ output) {
    __shared__ __align__(16) float w_tile[GEMM_DEPTH][GEMM_ROWS];
    __shared__ __align__(16) float x_tile[GEMM_DEPTH][GEMM_SAMPLES];
    int row0 = blockIdx.y * GEMM_ROWS;
    int sample0 = blockIdx.x * GEMM_SAMPLES;
    int tid = threadIdx.x;
    int tx = tid % 16, ty = tid / 16;
    int depth = row_prefix[min(row0 + GEMM_ROWS, n_rows) - 1];
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        int r = row0 + ty * 4 + i;
        float b = r < n_rows ? bias[r] : 0.0f;
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = b;
    }
    // Loader roles: the weight tile as 64 rows x 16 columns (4 per thread), the input tile as
    // 16 rows x 64 samples (one float4 per thread).
    int w_row = tid / 4, w_col = (tid % 4) * 4;
    int x_row = tid / 16, x_col = (tid % 16) * 4;
    for (int k0 = 0; k0 < depth; k0 += GEMM_DEPTH) {
        int r = row0 + w_row;
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            int k = k0 + w_col + q;
            w_tile[w_col + q][w_row] = (r < n_rows && k < depth) ? weight[(size_t)r * n_cols + k] : 0.0f;
        }
        {
            int k = k0 + x_row;
            float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (k < depth) v = *reinterpret_cast<const float4 *>(&input[(size_t)k * stride + sample0 + x_col]);
            *reinterpret_cast<float4 *>(&x_tile[x_row][x_col]) = v;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < GEMM_DEPTH; ++kk) {
            float4 w = *reinterpret_cast<const float4 *>(&w_tile[kk][ty * 4]);
            float4 v = *reinterpret_cast<const float4 *>(&x_tile[kk][tx * 4]);
            float wr[4] = {w.x, w.y, w.z, w.w};
            float xv[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(wr[i], xv[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        int r = row0 + ty * 4 + i;
        if (r >= n_rows) continue;
        size_t at = (size_t)r * stride + sample0 + tx * 4;
        float out[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            out[j] = activate(activation, acc[i][j]);
            if (residual != nullptr) out[j] = __fadd_rn(out[j], residual[at + j]);
        }
        *reinterpret_cast<float4 *>(&output[at]) = make_float4(out[0], out[1], out[2], out[3]);
    }
}

// A per-unit affine layer (nflows' batch norm in eval mode): output[u][s] =
// act(scale[u] in[u][s] + shift[u]), the product and the sum rounded separately.
extern "C" __global__ void made_affine(const float *__restrict__ scale, const float *__restrict__ shift, int n_units,
                                       const float *__restrict__ input, int stride, int activation,
                                       float *__restrict__ output) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)n_units * stride) return;
    int u = (int)(i / stride);
    output[i] = activate(activation, __fadd_rn(__fmul_rn(scale[u], input[i]), shift[u]));
}

// The mixture log-density of each sample of a chunk from the head outputs heads[t * 3K + j][s]
// (logits, means, raw scales of internal dimension t): log p = log_jacobian +
// sum_t [LSE_k(l_k - ln sigma_k - ln(2 pi)/2 - z_k^2/2) - LSE_k(l_k)], z_k = (xs - mu_k) /
// sigma_k with xs the standardised value in double; clamped to [-FLT_MAX, FLT_MAX]. A sample
// whose network outputs are not finite writes its index into *overflow (the smallest wins).
extern "C" __global__ void made_mixture_log_prob(const float *__restrict__ heads, int stride,
                                                 const float *__restrict__ x, int n, int n_dims, int n_components,
                                                 const int *__restrict__ data_order,
                                                 const double *__restrict__ x_mean,
                                                 const double *__restrict__ x_std, int scale_kind, double epsilon,
                                                 double log_jacobian, float *__restrict__ log_prob,
                                                 unsigned long long *__restrict__ overflow) {
    int s = blockIdx.x * blockDim.x + threadIdx.x;
    if (s >= n) return;
    int k_count = n_components;
    double total = log_jacobian;
    bool finite = true;
    for (int t = 0; t < n_dims; ++t) {
        double xs = __ddiv_rn(__dsub_rn((double)x[(size_t)s * n_dims + data_order[t]], x_mean[t]), x_std[t]);
        const float *row = heads + (size_t)t * 3 * k_count * stride + s;
        // Online log-sum-exps of the component terms and of the logits.
        double max_term = -INFINITY, sum_terms = 0.0, max_logit = -INFINITY, sum_logits = 0.0;
        for (int k = 0; k < k_count; ++k) {
            float logit_raw = row[(size_t)k * stride];
            float mean_raw = row[(size_t)(k_count + k) * stride];
            float scale_raw = row[(size_t)(2 * k_count + k) * stride];
            finite &= isfinite(logit_raw) && isfinite(mean_raw) && isfinite(scale_raw);
            double logit = (double)logit_raw;
            double log_scale = log_scale_of(scale_kind, epsilon, scale_raw);
            double distance = xs - (double)mean_raw;
            double z = distance == 0.0 ? 0.0 : distance * exp(-log_scale);
            double term = logit - log_scale - HALF_LN_2PI - 0.5 * z * z;
            if (term > max_term) {
                sum_terms = (max_term == -INFINITY ? 0.0 : sum_terms * exp(max_term - term)) + 1.0;
                max_term = term;
            } else if (term != -INFINITY) {
                sum_terms += exp(term - max_term);
            }
            if (logit > max_logit) {
                sum_logits = (max_logit == -INFINITY ? 0.0 : sum_logits * exp(max_logit - logit)) + 1.0;
                max_logit = logit;
            } else {
                sum_logits += exp(logit - max_logit);
            }
        }
        total += max_term == -INFINITY ? -INFINITY : (max_term + log(sum_terms)) - (max_logit + log(sum_logits));
    }
    if (!finite) atomicMin(overflow, (unsigned long long)s);
    log_prob[s] = (float)fmin(fmax(total, -3.4028234663852886e38), 3.4028234663852886e38);
}

// The index of the first non-finite value of values[0..count) into *first (smallest wins).
extern "C" __global__ void made_find_non_finite(const float *__restrict__ values, unsigned long long count,
                                                unsigned long long *__restrict__ first) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (; i < count; i += step) {
        if (!isfinite(values[i])) atomicMin(first, i);
    }
}

// ---------------------------------------------------------------------------------------------
// Philox4x32-10 streams and the normal quantile: crkernels-core/src/rng.rs.

struct Stream {
    uint32_t key0, key1;
    uint64_t stream;
    uint64_t next_block;
    uint32_t words[4];
    int used;
};

__device__ __forceinline__ Stream stream_new(uint64_t seed, uint64_t stream) {
    Stream st;
    st.key0 = (uint32_t)seed;
    st.key1 = (uint32_t)(seed >> 32);
    st.stream = stream;
    st.next_block = 0;
    st.words[0] = st.words[1] = st.words[2] = st.words[3] = 0;
    st.used = 4;
    return st;
}

__device__ __forceinline__ void philox_refill(Stream &st) {
    uint64_t b = st.next_block;
    uint32_t x0 = (uint32_t)b, x1 = (uint32_t)(b >> 32), x2 = (uint32_t)st.stream, x3 = (uint32_t)(st.stream >> 32);
    uint32_t k0 = st.key0, k1 = st.key1;
#pragma unroll
    for (int round = 0; round < 10; ++round) {
        uint32_t hi0 = __umulhi(0xD2511F53u, x0), lo0 = 0xD2511F53u * x0;
        uint32_t hi1 = __umulhi(0xCD9E8D57u, x2), lo1 = 0xCD9E8D57u * x2;
        uint32_t y0 = hi1 ^ x1 ^ k0, y2 = hi0 ^ x3 ^ k1;
        x0 = y0;
        x1 = lo1;
        x2 = y2;
        x3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    st.words[0] = x0;
    st.words[1] = x1;
    st.words[2] = x2;
    st.words[3] = x3;
    st.next_block = b + 1;
    st.used = 0;
}

__device__ __forceinline__ uint32_t word_at(const Stream &st, int i) {
    return i == 0 ? st.words[0] : i == 1 ? st.words[1] : i == 2 ? st.words[2] : st.words[3];
}

__device__ __forceinline__ uint32_t next_u32(Stream &st) {
    if (st.used == 4) philox_refill(st);
    uint32_t w = word_at(st, st.used);
    st.used += 1;
    return w;
}

// Two words, the first one low.
__device__ __forceinline__ uint64_t next_u64(Stream &st) {
    uint32_t low = next_u32(st);
    uint32_t high = next_u32(st);
    return (uint64_t)low | ((uint64_t)high << 32);
}

// m 2^-53 with m the top 53 bits of a 64-bit draw, redrawn when m = 0: in (0, 1).
__device__ __forceinline__ double uniform(Stream &st) {
    for (;;) {
        uint64_t m = next_u64(st) >> 11;
        if (m != 0) return __dmul_rn((double)m, 1.0 / 9007199254740992.0);
    }
}

// ((c0 x + c1) x + ...) + c7 by Horner's rule, every operation rounded.
__device__ __forceinline__ double horner8(const double c[8], double x) {
    double sum = c[0];
#pragma unroll
    for (int i = 1; i < 8; ++i) sum = __dadd_rn(__dmul_rn(sum, x), c[i]);
    return sum;
}

// Phi^-1(p), algorithm AS241 (Wichura 1988), the operations of rng::standard_normal_quantile.
__device__ double standard_normal_quantile(double p) {
    const double central_num[8] = {2.5090809287301226727e+3, 3.3430575583588128105e+4, 6.7265770927008700853e+4,
                                   4.5921953931549871457e+4, 1.3731693765509461125e+4, 1.9715909503065514427e+3,
                                   1.3314166789178437745e+2, 3.3871328727963666080e+0};
    const double central_den[8] = {5.2264952788528545610e+3, 2.8729085735721942674e+4, 3.9307895800092710610e+4,
                                   2.1213794301586595867e+4, 5.3941960214247511077e+3, 6.8718700749205790830e+2,
                                   4.2313330701600911252e+1, 1.0};
    const double near_num[8] = {7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1,
                                1.27045825245236838258e+0, 3.64784832476320460504e+0, 5.76949722146069140550e+0,
                                4.63033784615654529590e+0, 1.42343711074968357734e+0};
    const double near_den[8] = {1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2,
                                1.48103976427480074590e-1, 6.89767334985100004550e-1, 1.67638483018380384940e+0,
                                2.05319162663775882187e+0, 1.0};
    const double far_num[8] = {2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3,
                               2.65321895265761230930e-2, 2.96560571828504891230e-1, 1.78482653991729133580e+0,
                               5.46378491116411436990e+0, 6.65790464350110377720e+0};
    const double far_den[8] = {2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5,
                               7.86869131145613259100e-4, 1.48753612908506148525e-2, 1.36929880922735805310e-1,
                               5.99832206555887937690e-1, 1.0};
    double q = __dsub_rn(p, 0.5);
    if (fabs(q) <= 0.425) {
        double r = __dsub_rn(0.180625, __dmul_rn(q, q));
        return __ddiv_rn(__dmul_rn(horner8(central_num, r), q), horner8(central_den, r));
    }
    double tail = q <= 0.0 ? p : __dsub_rn(1.0, p);
    double r = __dsqrt_rn(-log(tail));
    double x;
    if (r <= 5.0) {
        r = __dsub_rn(r, 1.6);
        x = __ddiv_rn(horner8(near_num, r), horner8(near_den, r));
    } else {
        r = __dsub_rn(r, 5.0);
        x = __ddiv_rn(horner8(far_num, r), horner8(far_den, r));
    }
    return q < 0.0 ? -x : x;
}

// ---------------------------------------------------------------------------------------------
// Sampling: one thread per sample, its buffers in shared memory.

// One compiled layer (nn::made Stage). Dense: weight [units][cols], bias, row_prefix (int32);
// Affine: weight = scale, bias = shift, no prefix.
struct StageDesc {
    uint64_t weight;
    uint64_t bias;
    uint64_t row_prefix;
    int32_t kind;
    int32_t input;
    int32_t uses_context;
    int32_t activation;
    int32_t residual;
    int32_t units;
    int32_t cols;
    int32_t padding;
};

struct SampleParams {
    uint64_t stages;         // StageDesc [n_stages]
    uint64_t units_below;    // int32 [n_stages][n_dims]: units of stage s with degree < that of dimension t
    uint64_t head_weight;    // float [n_dims * 3K][head_cols]
    uint64_t head_bias;      // float [n_dims * 3K]
    uint64_t head_prefix;    // int32 [n_dims * 3K]
    uint64_t data_order;     // int32 [n_dims]: internal position -> user's dimension
    uint64_t context_order;  // int32 [n_context]
    uint64_t x_mean;         // double [n_dims], internal order
    uint64_t x_std;          // double [n_dims]
    uint64_t context_mean;   // double [n_context]
    uint64_t context_std;    // double [n_context]
    uint64_t context;        // float [n][n_context] of this chunk
    uint64_t given;          // float [n][n_dims] of this chunk, or 0
    uint64_t x_out;          // float [n][n_dims] of this chunk
    uint64_t seed;
    uint64_t first_sample;   // stream number of the chunk's row 0
    double epsilon;
    int32_t n;
    int32_t n_context;
    int32_t n_dims;
    int32_t n_components;
    int32_t n_stages;
    int32_t n_given;
    int32_t scale_kind;
    int32_t head_cols;
};

// Rows [first, end) of a masked dense layer for this thread's sample, row r written to out row
// r - out_first: groups of 4 rows, each acc = bias; acc = fmaf(w_j, in_j, acc) over the group's
// largest prefix.
__device__ __forceinline__ void dense_rows(const float *__restrict__ weight, const float *__restrict__ bias,
                                           const int *__restrict__ row_prefix, int cols, int first, int end,
                                           const float *in, float *out, int out_first, int lanes, int activation,
                                           const float *residual) {
    for (int r = first; r < end; r += 4) {
        int count = min(4, end - r);
        int depth = row_prefix[r + count - 1];
        float acc[4];
        const float *w[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            int row = r + min(i, count - 1);
            acc[i] = __ldg(&bias[row]);
            w[i] = weight + (size_t)row * cols;
        }
#pragma unroll 4
        for (int j = 0; j < depth; ++j) {
            float v = in[j * lanes];
#pragma unroll
            for (int i = 0; i < 4; ++i) acc[i] = fmaf(__ldg(&w[i][j]), v, acc[i]);
        }
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            if (i < count) {
                float value = activate(activation, acc[i]);
                if (residual != nullptr) value = __fadd_rn(value, residual[(r + i) * lanes]);
                out[(r + i - out_first) * lanes] = value;
            }
        }
    }
}

// Draws one sample per thread in degree order (Made::sample_tile): before dimension t, the
// units of degree in [g_{t-1}, g_t) of every layer and the 3K head rows of t, then one uniform
// (component) and one normal (value) from Stream(seed, first_sample + row). Dynamic shared
// memory: per thread, each buffer's n_context + units rows, then 3K head values.
extern "C" __global__ void made_sample(SampleParams p) {
    extern __shared__ float shared[];
    int lanes = blockDim.x;
    int lane = threadIdx.x;
    int s = blockIdx.x * blockDim.x + lane;
    float *mine = shared + lane;
    const StageDesc *stages = reinterpret_cast<const StageDesc *>(p.stages);
    const int *units_below = reinterpret_cast<const int *>(p.units_below);
    const int *data_order = reinterpret_cast<const int *>(p.data_order);
    const int *context_order = reinterpret_cast<const int *>(p.context_order);
    const double *x_mean = reinterpret_cast<const double *>(p.x_mean);
    const double *x_std = reinterpret_cast<const double *>(p.x_std);
    const double *context_mean = reinterpret_cast<const double *>(p.context_mean);
    const double *context_std = reinterpret_cast<const double *>(p.context_std);
    const float *context = reinterpret_cast<const float *>(p.context);
    const float *given = reinterpret_cast<const float *>(p.given);
    float *x_out = reinterpret_cast<float *>(p.x_out);
    int c = p.n_context, d = p.n_dims, k_count = p.n_components;
    if (s >= p.n) return;  // no block-wide synchronisation below: each thread is independent

    // Row offsets of the buffers (buffer 0 is the data), then the head scratch.
    int head_rows = 3 * k_count;
    int total_rows = c + d;
    for (int st = 0; st < p.n_stages; ++st) total_rows += c + stages[st].units;
    for (int row = 0; row < total_rows + head_rows; ++row) mine[row * lanes] = 0.0f;
    for (int j = 0; j < c; ++j) {
        double value = (double)context[(size_t)s * c + context_order[j]];
        mine[j * lanes] = __double2float_rn(__ddiv_rn(__dsub_rn(value, context_mean[j]), context_std[j]));
    }
    {
        int offset = c + d;
        for (int st = 0; st < p.n_stages; ++st) {
            for (int j = 0; j < c; ++j) mine[(offset + j) * lanes] = mine[j * lanes];
            offset += c + stages[st].units;
        }
    }
    for (int t = 0; t < p.n_given; ++t) {
        int u = data_order[t];
        float value = given[(size_t)s * d + u];
        mine[(c + t) * lanes] = __double2float_rn(__ddiv_rn(__dsub_rn((double)value, x_mean[t]), x_std[t]));
        x_out[(size_t)s * d + u] = value;
    }
    Stream stream = stream_new(p.seed, p.first_sample + (uint64_t)s);
    float *heads = mine + total_rows * lanes;
    const float *head_weight = reinterpret_cast<const float *>(p.head_weight);
    const float *head_bias = reinterpret_cast<const float *>(p.head_bias);
    const int *head_prefix = reinterpret_cast<const int *>(p.head_prefix);
    for (int t = p.n_given; t < d; ++t) {
        // The units whose degree lies in [g_{t-1}, g_t) (from 0 at the first drawn dimension).
        int offset = c + d;
        int last_offset = 0;
        for (int st = 0; st < p.n_stages; ++st) {
            const StageDesc &stage = stages[st];
            int done = t > p.n_given ? units_below[st * d + t - 1] : 0;
            int needed = units_below[st * d + t];
            int in_offset = 0;
            for (int b = 0; b < stage.input; ++b) in_offset += c + (b == 0 ? d : stages[b - 1].units);
            float *out = mine + (offset + c) * lanes;
            if (needed > done) {
                if (stage.kind == STAGE_DENSE) {
                    const float *in = mine + (in_offset + (stage.uses_context ? 0 : c)) * lanes;
                    const float *residual = nullptr;
                    if (stage.residual >= 0) {
                        int r_offset = 0;
                        for (int b = 0; b < stage.residual; ++b) r_offset += c + (b == 0 ? d : stages[b - 1].units);
                        residual = mine + (r_offset + c) * lanes;
                    }
                    dense_rows(reinterpret_cast<const float *>(stage.weight), reinterpret_cast<const float *>(stage.bias),
                               reinterpret_cast<const int *>(stage.row_prefix), stage.cols, done, needed, in, out, 0, lanes,
                               stage.activation, residual);
                } else {
                    const float *scale = reinterpret_cast<const float *>(stage.weight);
                    const float *shift = reinterpret_cast<const float *>(stage.bias);
                    const float *in = mine + (in_offset + c) * lanes;
                    for (int u = done; u < needed; ++u)
                        out[u * lanes] = activate(stage.activation, __fadd_rn(__fmul_rn(scale[u], in[u * lanes]), shift[u]));
                }
            }
            last_offset = offset;
            offset += c + stage.units;
        }
        // The head rows of dimension t, from the last buffer's units (no context).
        const float *hidden = mine + (last_offset + c) * lanes;
        dense_rows(head_weight, head_bias, head_prefix, p.head_cols, t * head_rows, (t + 1) * head_rows, hidden,
                   heads, t * head_rows, lanes, ACT_IDENTITY, nullptr);
        // The component: the first k with u sum_j e^(l_j - m) < sum_{i <= k} e^(l_i - m).
        double u = uniform(stream);
        double max_logit = -INFINITY;
        for (int k = 0; k < k_count; ++k) max_logit = fmax(max_logit, (double)heads[k * lanes]);
        double total = 0.0;
        for (int k = 0; k < k_count; ++k) total = __dadd_rn(total, exp((double)heads[k * lanes] - max_logit));
        double target = __dmul_rn(u, total);
        double partial = 0.0;
        int chosen = k_count - 1;
        for (int k = 0; k < k_count; ++k) {
            partial = __dadd_rn(partial, exp((double)heads[k * lanes] - max_logit));
            if (target < partial) {
                chosen = k;
                break;
            }
        }
        double mean = (double)heads[(k_count + chosen) * lanes];
        double log_scale = log_scale_of(p.scale_kind, p.epsilon, heads[(2 * k_count + chosen) * lanes]);
        double z = standard_normal_quantile(uniform(stream));
        double xs = __dadd_rn(mean, __dmul_rn(exp(log_scale), z));
        mine[(c + t) * lanes] = __double2float_rn(xs);
        x_out[(size_t)s * d + data_order[t]] = __double2float_rn(__dadd_rn(__dmul_rn(xs, x_std[t]), x_mean[t]));
    }
}

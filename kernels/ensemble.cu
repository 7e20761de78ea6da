// The stochastic ensemble of electron spectra on a GPU (issue 7; PHYSICS.md, "The stochastic
// ensemble"). One block computes one realisation: it draws the realisation's young sources
// from the same Philox4x32-10 stream as the CPU (Stream::new(seed, k)) and sums their
// contributions at every energy of the pass. The algorithm is DeviceTables::realisation in
// crkernels-core/src/physics/ensemble/device_tables.rs (for_each_source is the stream layout);
// the tables come from DeviceTables. Floating-point operations that the CPU does unfused are
// written with __dmul_rn/__dadd_rn so that nvcc cannot contract them: the sources (ages and
// distances) are the CPU's bit for bit.
//
// The sources are drawn in age-bin order, so nothing is sorted. From word p of the stream (a
// block start), one 32-bit word per source gives its age bin (its top log2(bins) bits): the
// block histograms them in shared memory and scans the counts into each bin's first slot. Then
// sorted slot j (bin 0's sources first, then bin 1's, ...) finds its bin by a binary search of
// those starts and takes words q + 2j and q + 2j + 1 (q the first block start after the bin
// words): its position u1 in the bin and its distance uniform u2, each u = (word + 1/2) 2^-32,
// so one Philox block serves two slots. In bin order the threads of a warp share their cells
// (broadcast loads), and an energy's contributing sources, those younger than its last
// contributing age, are a prefix.
//
// Sum order: per energy, thread i sums sorted sources i, i + BLOCK_THREADS, ...; then lanes and
// warps are added in a fixed tree: the same bits on every run and GPU.
//
// Two kernels: ensemble_realisations (the exact tier) and ensemble_realisations_f32 (the f32
// tier, Precision::F32: the plain cells' terms in binary32 with the SFU's exp, summed in
// binary64; DeviceTables::realisation_f32 is its specification).

#include <stdint.h>

#define BLOCK_THREADS 256
#define WARPS (BLOCK_THREADS / 32)
// Age bins of the shared histogram: a power of two (the bin search halves it).
#define MAX_BINS 8192
#define SOURCES_IN_FLIGHT 4
#define BINS_PER_THREAD (MAX_BINS / BLOCK_THREADS)
#define CELL_POINTS 9
#define ENERGIES_PER_PASS 20
#define NO_CELL 0xffffffffu
#define FORM_PLAIN 0
#define FORM_LOG_AGE 1
// The f32 tier (ensemble.rs, F32_EXPONENT_FLOOR and F32_UNDERFLOW_FRACTION).
#define F32_EXPONENT_FLOOR -87.0f
#define F32_UNDERFLOW_FRACTION 1e-7

// Philox4x32-10 (Salmon et al. 2011): multipliers and key increments.
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

// One cell of DeviceTables (crkernels::physics::ensemble::DeviceCell, 176 bytes).
struct Cell {
    double right;
    double inverse_width;
    double index;
    unsigned long long form;
    double a[CELL_POINTS];
    double h[CELL_POINTS];
};

// The f32 tier's form of a cell (crkernels::physics::ensemble::DeviceSingleCell, 88 bytes):
// scale e^(da(x) - s^2 h(x)), scale 0 for a cell evaluated in binary64.
struct SingleCell {
    float da[CELL_POINTS];
    float h[CELL_POINTS];
    double scale;
    double underflow_bound;
};

// DeviceTables, with device pointers (crkernels::gpu::ensemble::KernelTables).
struct Tables {
    double bin_width_myr;
    double inverse_bin_width;
    double light_speed;
    double s_max;
    double sampler_lo;
    double guide_scale;
    unsigned long long bins;
    unsigned long long energies;
    unsigned long long guide_cells;
    unsigned long long pieces;
    unsigned long long single_step;
    const double* max_age;
    const unsigned int* cell_of_bin;
    const Cell* cells;
    const unsigned int* guide;
    const double* guide_right;
    const double* piece_right;
    const double* piece_center;
    const double* piece_inv_half_width;
    const double* piece_coefficients;  // [pieces][8]
    const SingleCell* single_cells;     // one per cell
};

__device__ __forceinline__ void philox(uint32_t x[4], uint32_t key0, uint32_t key1) {
#pragma unroll
    for (int round = 0; round < 10; ++round) {
        uint32_t hi0 = __umulhi(PHILOX_M0, x[0]);
        uint32_t lo0 = PHILOX_M0 * x[0];
        uint32_t hi1 = __umulhi(PHILOX_M1, x[2]);
        uint32_t lo1 = PHILOX_M1 * x[2];
        uint32_t y0 = hi1 ^ x[1] ^ key0;
        uint32_t y2 = hi0 ^ x[3] ^ key1;
        x[0] = y0;
        x[1] = lo1;
        x[2] = y2;
        x[3] = lo0;
        key0 += PHILOX_W0;
        key1 += PHILOX_W1;
    }
}

// Block `block` of stream `stream` under `seed`: words 4 block .. 4 block + 3 (the kernel reads
// whole blocks: one Philox call gives four words).
__device__ __forceinline__ void stream_block(uint64_t seed, uint64_t stream, uint64_t block, uint32_t out[4]) {
    out[0] = (uint32_t)block;
    out[1] = (uint32_t)(block >> 32);
    out[2] = (uint32_t)stream;
    out[3] = (uint32_t)(stream >> 32);
    philox(out, (uint32_t)seed, (uint32_t)(seed >> 32));
}

// The uniform (word + 1/2) 2^-32 in (0, 1), exact (crkernels_core::rng::uniform_from_word).
__device__ __forceinline__ double uniform_from_word(uint32_t word) {
    return __dmul_rn(__dadd_rn((double)word, 0.5), 0x1p-32);
}

// SpatialDistribution::sample through SamplerTables, operation for operation.
__device__ double distance_at(const Tables& t, double u) {
    const double w = __dsqrt_rn(fmin(fmax(u, 0.0), 1.0));
    if (t.pieces == 0) return __dmul_rn(t.s_max, w);
    const double scaled = __dmul_rn(__dsub_rn(w, t.sampler_lo), t.guide_scale);
    uint64_t cell = scaled > 0.0 ? (uint64_t)scaled : 0;  // Rust's saturating `as usize`
    if (cell > t.guide_cells - 1) cell = t.guide_cells - 1;
    uint64_t i = __ldg(t.guide + cell);
    if (t.single_step) {
        if (w > __ldg(t.guide_right + cell)) ++i;
        if (i > t.pieces - 1) i = t.pieces - 1;
    } else {
        while (w > __ldg(t.piece_right + i) && i + 1 < t.pieces) ++i;
    }
    const double x = __dmul_rn(__dsub_rn(w, __ldg(t.piece_center + i)), __ldg(t.piece_inv_half_width + i));
    double c[8];
#pragma unroll
    for (int n = 0; n < 8; ++n) c[n] = __ldg(t.piece_coefficients + 8 * i + n);
    const double x2 = __dmul_rn(x, x);
    const double x4 = __dmul_rn(x2, x2);
    const double low = __dadd_rn(__dadd_rn(c[0], __dmul_rn(c[1], x)),
                                 __dmul_rn(__dadd_rn(c[2], __dmul_rn(c[3], x)), x2));
    const double high = __dadd_rn(__dadd_rn(c[4], __dmul_rn(c[5], x)),
                                  __dmul_rn(__dadd_rn(c[6], __dmul_rn(c[7], x)), x2));
    const double s = __dadd_rn(low, __dmul_rn(high, x4));
    return fmin(fmax(s, 0.0), t.s_max);
}

// A product rounded once, never contracted into a fused multiply-add.
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }

// A degree-8 polynomial by Estrin's scheme with fused multiply-adds, in binary64 (ensemble.rs,
// `estrin`) or binary32 (`estrin_f32`); the coefficients are read through the read-only cache.
template <typename T>
__device__ __forceinline__ T estrin(const T* __restrict__ coefficients, T x) {
    T c[CELL_POINTS];
#pragma unroll
    for (int i = 0; i < CELL_POINTS; ++i) c[i] = __ldg(coefficients + i);
    const T x2 = mul_rn(x, x);
    const T x4 = mul_rn(x2, x2);
    const T low = fma(fma(c[3], x, c[2]), x2, fma(c[1], x, c[0]));
    const T high = fma(c[8], x4, fma(fma(c[7], x, c[6]), x2, fma(c[5], x, c[4])));
    return fma(high, x4, low);
}

// crkernels_core::math::exp_branchless, operation for operation (the CPU's exp in the ensemble):
// Cody-Waite reduction, the degree-12 Taylor polynomial by Estrin's scheme, 2^k in the exponent
// bits; about 20 instructions and no branches (CUDA's exp has a slow path).
__device__ __forceinline__ double exp_branchless(double x) {
    const double LOG2_E = 1.4426950408889634;
    const double LN2_HI = __longlong_as_double(0x3fe62e42fee00000LL);
    const double LN2_LO = __longlong_as_double(0x3dea39ef35793c76LL);
    const double SHIFTER = 6755399441055744.0;
    const double clamped = fmin(fmax(x, -708.0), 709.0);
    const double shifted = fma(clamped, LOG2_E, SHIFTER);
    const double k = __dsub_rn(shifted, SHIFTER);
    const double r = fma(-k, LN2_LO, fma(-k, LN2_HI, clamped));
    const double r2 = __dmul_rn(r, r);
    const double r4 = __dmul_rn(r2, r2);
    const double low = fma(fma(1.0 / 6.0, r, 0.5), r2, fma(1.0, r, 1.0));
    const double middle = fma(fma(1.0 / 5040.0, r, 1.0 / 720.0), r2, fma(1.0 / 120.0, r, 1.0 / 24.0));
    const double high = fma(1.0 / 479001600.0, r4,
                            fma(fma(1.0 / 39916800.0, r, 1.0 / 3628800.0), r2, fma(1.0 / 362880.0, r, 1.0 / 40320.0)));
    const double p = fma(r4, fma(r4, high, middle), low);
    const unsigned long long exponent =
        ((unsigned long long)__double_as_longlong(shifted) - (unsigned long long)__double_as_longlong(SHIFTER)) << 52;
    const double value = __longlong_as_double((long long)((unsigned long long)__double_as_longlong(p) + exponent));
    return x < -708.0 ? 0.0 : value;
}

// DeviceTables::term for a source that contributes (age below the energy's limit, a cell).
__device__ __forceinline__ double term(const Cell* cells, unsigned first, double age, double distance2,
                                       bool& needs_host) {
    unsigned i = first;
    while (age >= cells[i].right) ++i;
    const Cell* cell = cells + i;
    const double x = __dsub_rn(__dmul_rn(2.0, fma(age, cell->inverse_width, -cell->index)), 1.0);
    const double a = estrin(cell->a, x);
    const double h = estrin(cell->h, x);
    double exponent;
    if (cell->form == FORM_PLAIN) {
        exponent = fma(-distance2, h, a);
    } else if (cell->form == FORM_LOG_AGE) {
        exponent = __dsub_rn(fma(-1.5, log(age), a), __dmul_rn(__dmul_rn(distance2, h), __drcp_rn(age)));
    } else {
        needs_host = true;
        return 0.0;
    }
    return exp_branchless(exponent);
}

// The f32 tier's term (DeviceTables::term_f32): binary32 polynomials and the SFU's exp
// (__expf: 2^(y log2 e), 2 ulp plus the rounding of the product) for a plain cell, scaled in
// binary64; a term whose exponent is below F32_EXPONENT_FLOOR is flushed and its bound added to
// `flushed`. Other cells as in the exact tier.
__device__ __forceinline__ double term_f32(const Tables& t, unsigned first, double age, double distance2,
                                           bool& needs_host, double& flushed) {
    unsigned i = first;
    while (age >= t.cells[i].right) ++i;
    const SingleCell* single = t.single_cells + i;
    const double scale = __ldg(&single->scale);
    if (scale == 0.0) return term(t.cells, i, age, distance2, needs_host);
    const Cell* cell = t.cells + i;
    const float x = __double2float_rn(__dsub_rn(__dmul_rn(2.0, fma(age, cell->inverse_width, -cell->index)), 1.0));
    const float y = fmaf(-__double2float_rn(distance2), estrin(single->h, x), estrin(single->da, x));
    if (y < F32_EXPONENT_FLOOR) {
        flushed += __ldg(&single->underflow_bound);
        return 0.0;
    }
    return scale * (double)__expf(y);
}

// A source of age bin `bin` from its two words, u1 (its position in the bin) and u2 (its
// distance uniform): its age t = (bin + u1) width [Myr] and squared distance [kpc^2]; false
// where it adds nothing (outside the causal horizon).
__device__ __forceinline__ bool draw_source(const Tables& t, unsigned bin, uint32_t word_u1, uint32_t word_u2,
                                            double& age, double& distance2) {
    const double a = __dmul_rn(__dadd_rn((double)bin, uniform_from_word(word_u1)), t.bin_width_myr);
    const double s = distance_at(t, uniform_from_word(word_u2));
    if (!(a > 0.0 && s <= __dmul_rn(t.light_speed, a))) return false;
    age = a;
    distance2 = __dmul_rn(s, s);
    return true;
}

// The bin of sorted slot j < count, given each bin's first slot (MAX_BINS entries, the bins
// past the last one starting at count): the last bin that starts at or before j (bin 0 starts
// at 0; an empty bin starts where the next one does, so the last such bin holds j).
__device__ __forceinline__ unsigned bin_of_slot(const unsigned* bin_start, unsigned j) {
    unsigned bin = 0;
#pragma unroll
    for (unsigned step = MAX_BINS / 2; step > 0; step >>= 1) {
        if (bin_start[bin + step] <= j) bin += step;
    }
    return bin;
}

// Realisations first .. first + n of seed `seed`: young_sources[r] and word_position[r] from
// Ensemble::realisation_start. Writes flux[r * flux_stride + first_energy + e] for the pass's
// energies e < n_energies, and needs_host[r] = 1 where the host must compute realisation r (a
// source in a host cell).
// Block b works in scratch + 2 b scratch_capacity (2 scratch_capacity values: the sources'
// ages and squared distances in bin order), and scratch_capacity >= max_r young_sources[r].
// t.bins <= MAX_BINS, a power of two.
// The first pass of a launch sequence (first_energy 0) sets needs_host[r], later passes only add
// to it. SINGLE: the f32 tier (term_f32), which also leaves a realisation to the host where the
// flushed terms could move an energy by F32_UNDERFLOW_FRACTION (the CPU's f32 tier sums that
// energy exactly).
template <bool SINGLE>
__device__ __forceinline__ void realisations(const Tables& t, uint64_t seed, uint64_t first_realisation,
                                             const unsigned long long* young_sources,
                                             const unsigned long long* word_position, unsigned int n_realisations,
                                             unsigned int first_energy, unsigned int n_energies, double* flux,
                                             unsigned long long flux_stride, unsigned int* needs_host,
                                             double* scratch, unsigned long long scratch_capacity) {
    // Per bin: its count, then (after the scan) its first slot; bin_start[MAX_BINS] is the
    // number of sources (bins from t.bins on are empty: their starts are that number too).
    __shared__ unsigned int bin_start[MAX_BINS + 1];
    __shared__ unsigned int warp_totals[WARPS];
    __shared__ double warp_sums[WARPS][ENERGIES_PER_PASS];
    __shared__ double warp_flushed[SINGLE ? WARPS : 1][ENERGIES_PER_PASS];
    __shared__ int host_flag;

    const unsigned lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    // Two arrays of scratch_capacity values per block: the sources in bin order. A source that
    // the causal cut drops keeps its slot with age +infinity, which no energy's sum takes (it is
    // not below any last contributing age).
    double* sorted_age = scratch + 2 * blockIdx.x * scratch_capacity;
    double* sorted_distance2 = sorted_age + scratch_capacity;
    const unsigned bins = (unsigned)t.bins;
    for (unsigned r = blockIdx.x; r < n_realisations; r += gridDim.x) {
        const uint64_t k = first_realisation + r;
        const unsigned count = (unsigned)young_sources[r];
        // The bin words from word p, a block start; the uniforms from the next block start
        // after them, q = 4 ceil((p + count) / 4), two words a source.
        const uint64_t bin_block = word_position[r] >> 2;
        const unsigned bin_blocks = (count + 3) / 4;
        const uint64_t uniform_block = bin_block + bin_blocks;
        const unsigned uniform_blocks = (count + 1) / 2;
        bool needs_host_here = false;

        // 1. Histogram of the sources' age bins: thread i takes blocks i, i + BLOCK_THREADS, ...
        // of the bin words, four bins per Philox call (the last block may hold fewer).
        for (unsigned b = threadIdx.x; b < MAX_BINS; b += BLOCK_THREADS) bin_start[b] = 0;
        if (threadIdx.x == 0) {
            bin_start[MAX_BINS] = count;
            host_flag = 0;
        }
        __syncthreads();
        for (unsigned c = threadIdx.x; c < bin_blocks; c += BLOCK_THREADS) {
            uint32_t words[4];
            stream_block(seed, k, bin_block + c, words);
            const unsigned in_block = count - 4 * c;
#pragma unroll
            for (unsigned w = 0; w < 4; ++w) {
                // The word's top log2(bins) bits: word * bins / 2^32.
                if (w < in_block) atomicAdd(&bin_start[__umulhi(words[w], bins)], 1u);
            }
        }
        __syncthreads();

        // 2. Exclusive scan: each thread owns BINS_PER_THREAD consecutive bins.
        {
            const unsigned first_bin = threadIdx.x * BINS_PER_THREAD;
            unsigned local = 0;
#pragma unroll 8
            for (int i = 0; i < BINS_PER_THREAD; ++i) local += bin_start[first_bin + i];
            unsigned inclusive = local;
#pragma unroll
            for (int offset = 1; offset < 32; offset <<= 1) {
                const unsigned other = __shfl_up_sync(0xffffffffu, inclusive, offset);
                if (lane >= (unsigned)offset) inclusive += other;
            }
            if (lane == 31) warp_totals[warp] = inclusive;
            __syncthreads();
            unsigned before = inclusive - local;
            for (unsigned w = 0; w < warp; ++w) before += warp_totals[w];
#pragma unroll 8
            for (int i = 0; i < BINS_PER_THREAD; ++i) {
                const unsigned c = bin_start[first_bin + i];
                bin_start[first_bin + i] = before;
                before += c;
            }
        }
        __syncthreads();

        // 3. The draw in bin order: slots 2c and 2c + 1 take the four words of uniform block c;
        // thread i takes blocks c = i, i + BLOCK_THREADS, ...
        for (unsigned c = threadIdx.x; c < uniform_blocks; c += BLOCK_THREADS) {
            uint32_t words[4];
            stream_block(seed, k, uniform_block + c, words);
#pragma unroll
            for (unsigned half = 0; half < 2; ++half) {
                const unsigned j = 2 * c + half;
                if (j >= count) break;
                // A source the causal cut drops keeps its slot with age +infinity (see above).
                double age = __longlong_as_double(0x7ff0000000000000LL), distance2 = 0.0;
                draw_source(t, bin_of_slot(bin_start, j), words[2 * half], words[2 * half + 1], age, distance2);
                sorted_age[j] = age;
                sorted_distance2[j] = distance2;
            }
        }
        __syncthreads();

        // 4. The sum, energy by energy, in age order: an energy's contributing sources are in a
        // prefix of the sorted ones (those below its last contributing age; the dropped sources
        // among them fail that test too), so each thread keeps one accumulator and few lanes wait
        // on a source that adds nothing. A source's first cell is looked up from the bin of its
        // age: its drawn bin up to rounding at a bin edge, where either bin's cell serves.
        for (unsigned e = 0; e < n_energies; ++e) {
            const unsigned energy = first_energy + e;
            const double limit = t.max_age[energy];
            const unsigned* first_cell_of_bin = t.cell_of_bin + (uint64_t)energy * t.bins;
            // Sources in the bins up to the one holding the limit (its own are checked below).
            const uint64_t limit_bin = (uint64_t)__dmul_rn(limit, t.inverse_bin_width);
            const unsigned n_candidates = limit_bin < t.bins ? bin_start[limit_bin + 1] : count;
            // SOURCES_IN_FLIGHT sources per thread and step: their loads are issued together
            // (each term is a chain of dependent loads: age, cell index, cell).
            double sum = 0.0, flushed = 0.0;
            for (unsigned base = threadIdx.x; base < n_candidates; base += SOURCES_IN_FLIGHT * BLOCK_THREADS) {
                double age[SOURCES_IN_FLIGHT], distance2[SOURCES_IN_FLIGHT];
                unsigned first_cell[SOURCES_IN_FLIGHT];
#pragma unroll
                for (int u = 0; u < SOURCES_IN_FLIGHT; ++u) {
                    const unsigned i = base + u * BLOCK_THREADS;
                    age[u] = i < n_candidates ? sorted_age[i] : limit;
                    distance2[u] = i < n_candidates ? sorted_distance2[i] : 0.0;
                }
#pragma unroll
                for (int u = 0; u < SOURCES_IN_FLIGHT; ++u) {
                    const uint64_t b = (uint64_t)__dmul_rn(age[u], t.inverse_bin_width);
                    first_cell[u] = age[u] < limit ? __ldg(first_cell_of_bin + (b < t.bins - 1 ? b : t.bins - 1)) : NO_CELL;
                }
#pragma unroll
                for (int u = 0; u < SOURCES_IN_FLIGHT; ++u) {
                    if (first_cell[u] == NO_CELL) continue;
                    if (SINGLE) {
                        sum += term_f32(t, first_cell[u], age[u], distance2[u], needs_host_here, flushed);
                    } else {
                        sum += term(t.cells, first_cell[u], age[u], distance2[u], needs_host_here);
                    }
                }
            }
            // Fixed-order reduction: lanes by a butterfly, then (below) warps in order.
#pragma unroll
            for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
            if (lane == 0) warp_sums[warp][e] = sum;
            if (SINGLE) {
#pragma unroll
                for (int offset = 16; offset > 0; offset >>= 1) flushed += __shfl_xor_sync(0xffffffffu, flushed, offset);
                if (lane == 0) warp_flushed[warp][e] = flushed;
            }
        }

        // 5. The warps' sums in order.
        if (needs_host_here) host_flag = 1;
        __syncthreads();
        if (threadIdx.x < n_energies) {
            double total = 0.0;
            for (int w = 0; w < WARPS; ++w) total += warp_sums[w][threadIdx.x];
            flux[(uint64_t)r * flux_stride + first_energy + threadIdx.x] = total;
            if (SINGLE) {
                double bound = 0.0;
                for (int w = 0; w < WARPS; ++w) bound += warp_flushed[w][threadIdx.x];
                if (bound > F32_UNDERFLOW_FRACTION * total) host_flag = 1;
            }
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            if (first_energy == 0) {
                needs_host[r] = host_flag;
            } else if (host_flag) {
                needs_host[r] = 1;
            }
        }
        __syncthreads();  // shared arrays are reused by the next realisation
    }
}

// The exact tier.
extern "C" __global__ void __launch_bounds__(BLOCK_THREADS, 4)
ensemble_realisations(Tables t, uint64_t seed, uint64_t first_realisation,
                      const unsigned long long* young_sources, const unsigned long long* word_position,
                      unsigned int n_realisations, unsigned int first_energy, unsigned int n_energies,
                      double* flux, unsigned long long flux_stride, unsigned int* needs_host,
                      double* scratch, unsigned long long scratch_capacity) {
    realisations<false>(t, seed, first_realisation, young_sources, word_position, n_realisations, first_energy,
                        n_energies, flux, flux_stride, needs_host, scratch, scratch_capacity);
}

// The f32 tier: the same arguments.
extern "C" __global__ void __launch_bounds__(BLOCK_THREADS, 4)
ensemble_realisations_f32(Tables t, uint64_t seed, uint64_t first_realisation,
                          const unsigned long long* young_sources, const unsigned long long* word_position,
                          unsigned int n_realisations, unsigned int first_energy, unsigned int n_energies,
                          double* flux, unsigned long long flux_stride, unsigned int* needs_host,
                          double* scratch, unsigned long long scratch_capacity) {
    realisations<true>(t, seed, first_realisation, young_sources, word_position, n_realisations, first_energy,
                       n_energies, flux, flux_stride, needs_host, scratch, scratch_capacity);
}

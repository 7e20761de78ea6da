// kernels/ensemble.cu's kernels ensemble_realisations (the exact tier) and
// ensemble_realisations_f32 (the f32 tier), run on the CPU through shim.h, launched as
// src/gpu/ensemble.rs launches them: passes of ENERGIES_PER_PASS energies, each block looping
// over realisations. Built and run by tests/cuda_emulation.rs, which writes the input (an
// Ensemble's DeviceTables and realisation starts) and checks the output against the
// specification (DeviceTables::realisation, realisation_f32) and the CPU. This checks the
// kernels' indexing, the synchronisation of a block's threads and the arithmetic, not the GPU's
// memory model, speed, nvcc's contractions or the SFU's exp (shim.h's __expf leaves out its
// 2 ulp): tests/ensemble_gpu.rs does that on a device.
//
// Usage: ensemble_kernels INPUT OUTPUT. All little-endian; an array is its length (u64) then
// its elements.
// INPUT: f64 bin_width_myr, inverse_bin_width, light_speed, s_max, sampler_lo, guide_scale;
// u64 bins, energies, single_step; arrays max_age (f64), cell_of_bin (u32), cells (Cell),
// guide (u32), guide_right, piece_right, piece_center, piece_inv_half_width,
// piece_coefficients (f64, 8 per piece), single_cells (SingleCell); u64 seed,
// first_realisation, blocks; arrays young_sources, word_position (u64, one per realisation).
// OUTPUT: for the exact tier, then the f32 tier: flux [realisations][energies] (f64), then
// needs_host [realisations] (u32). Flux starts as NaN and needs_host as 7, so that what a
// kernel leaves unwritten shows.
#include "shim.h"
#include "ensemble.cu"

#include <cstdio>
#include <fstream>
#include <iterator>

namespace {

struct Input {
    std::vector<char> bytes;
    size_t at = 0;

    template <class T>
    T scalar() {
        T value;
        take(&value, sizeof value);
        return value;
    }
    template <class T>
    std::vector<T> array() {
        std::vector<T> values(scalar<uint64_t>());
        take(values.data(), values.size() * sizeof(T));
        return values;
    }
    void take(void* out, size_t n) {
        if (n > bytes.size() - at) {
            std::fprintf(stderr, "the input ends early\n");
            std::exit(2);
        }
        std::memcpy(out, bytes.data() + at, n);
        at += n;
    }
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s INPUT OUTPUT\n", argv[0]);
        return 2;
    }
    std::ifstream file(argv[1], std::ios::binary);
    Input in{{std::istreambuf_iterator<char>(file), {}}};

    static_assert(sizeof(Cell) == 176 && sizeof(SingleCell) == 88, "DeviceCell and DeviceSingleCell layouts");
    Tables t{};
    t.bin_width_myr = in.scalar<double>();
    t.inverse_bin_width = in.scalar<double>();
    t.light_speed = in.scalar<double>();
    t.s_max = in.scalar<double>();
    t.sampler_lo = in.scalar<double>();
    t.guide_scale = in.scalar<double>();
    t.bins = in.scalar<uint64_t>();
    t.energies = in.scalar<uint64_t>();
    t.single_step = in.scalar<uint64_t>();
    const auto max_age = in.array<double>();
    const auto cell_of_bin = in.array<unsigned>();
    const auto cells = in.array<Cell>();
    const auto guide = in.array<unsigned>();
    const auto guide_right = in.array<double>();
    const auto piece_right = in.array<double>();
    const auto piece_center = in.array<double>();
    const auto piece_inv_half_width = in.array<double>();
    const auto piece_coefficients = in.array<double>();
    const auto single_cells = in.array<SingleCell>();
    t.guide_cells = guide.size();
    t.pieces = piece_right.size();
    t.max_age = max_age.data();
    t.cell_of_bin = cell_of_bin.data();
    t.cells = cells.data();
    t.guide = guide.data();
    t.guide_right = guide_right.data();
    t.piece_right = piece_right.data();
    t.piece_center = piece_center.data();
    t.piece_inv_half_width = piece_inv_half_width.data();
    t.piece_coefficients = piece_coefficients.data();
    t.single_cells = single_cells.data();
    const auto seed = in.scalar<uint64_t>(), first = in.scalar<uint64_t>();
    const auto blocks = unsigned(in.scalar<uint64_t>());
    const auto young_sources = in.array<unsigned long long>();
    const auto word_position = in.array<unsigned long long>();
    if (in.at != in.bytes.size() || t.bins > MAX_BINS || young_sources.empty() ||
        word_position.size() != young_sources.size()) {
        std::fprintf(stderr, "malformed input\n");
        return 2;
    }

    const unsigned n = unsigned(young_sources.size()), energies = unsigned(t.energies);
    const unsigned long long capacity = *std::max_element(young_sources.begin(), young_sources.end());
    std::vector<double> scratch(2 * capacity * blocks, NAN);
    std::ofstream out(argv[2], std::ios::binary);
    for (const auto kernel : {ensemble_realisations, ensemble_realisations_f32}) {
        std::vector<double> flux(size_t(n) * energies, NAN);
        std::vector<unsigned> needs_host(n, 7);
        for (unsigned first_energy = 0; first_energy < energies; first_energy += ENERGIES_PER_PASS) {
            const unsigned pass_energies = std::min(energies - first_energy, unsigned(ENERGIES_PER_PASS));
            launch({blocks, 1, 1}, BLOCK_THREADS, [&] {
                kernel(t, seed, first, young_sources.data(), word_position.data(), n, first_energy, pass_energies,
                       flux.data(), energies, needs_host.data(), scratch.data(), capacity);
            });
        }
        out.write(reinterpret_cast<const char*>(flux.data()), std::streamsize(flux.size() * sizeof(double)));
        out.write(reinterpret_cast<const char*>(needs_host.data()), std::streamsize(n * sizeof(unsigned)));
    }
    return out.good() ? 0 : 2;
}

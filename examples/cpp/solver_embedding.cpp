// Embedding crkernels in a propagation solver, from C++ (include/crkernels.hpp).
//
// A solver builds the energy-loss and transport tables once, at set-up, and then calls the
// kernels from inside its own loops and its own OpenMP threads: handles are immutable and
// shareable across threads, and every call writes only to the caller's arrays. Errors come
// back as crk::error carrying the crk_status and the library's message.
//
// Build (static library):
//   g++ -std=c++17 -O2 -fopenmp -Iinclude examples/cpp/solver_embedding.cpp
//       target/release/libcrkernels.a -lm -lpthread -ldl -o solver_embedding
#include "crkernels.hpp"

#include <cmath>
#include <cstdio>
#include <vector>

namespace {

// The solver's own energy grid: n log-spaced points in [e_min, e_max] GeV.
std::vector<double> log_grid(double e_min, double e_max, std::size_t n) {
    std::vector<double> grid(n);
    for (std::size_t i = 0; i < n; ++i)
        grid[i] = e_min * std::pow(e_max / e_min, static_cast<double>(i) / static_cast<double>(n - 1));
    return grid;
}

}  // namespace

int main() {
    try {
        // Set-up, once: Klein-Nishina losses on the Delahaye (2010) ISRF plus 3 microgauss,
        // and the loss tables for kappa = 3e28 (E/GeV)^0.6 cm^2/s, a 4 kpc halo, 1 GeV..10 PeV.
        const crk::losses losses = crk::losses_new_preset(CRK_LOSS_KN_EXACT, CRK_ISRF_DELAHAYE2010, 3.0);
        const crk::transport transport = crk::transport_new(losses, 3e28, 0.6, 4.0, 1.0, 1e7);

        const std::size_t n_energy = 64;
        const std::vector<double> energy = log_grid(10.0, 1e4, n_energy);
        std::vector<double> rate(n_energy);
        losses.rate(energy.data(), energy.size(), rate.data());

        // The solver's time loop: at each step, every energy bin's particles are traced back
        // over the step (initial energy) in parallel over the bins with OpenMP; each thread
        // calls the kernel on its own slice.
        const std::size_t n_steps = 20;
        const double dt_Myr = 0.05;
        std::vector<double> age(n_energy), e0(n_energy), tau(n_energy);
        double worst = 0.0;  // largest |tau(E, E0(E, t)) - t| / t: the tables invert each other
        for (std::size_t step = 1; step <= n_steps; ++step) {
            const double t = dt_Myr * static_cast<double>(step);
            for (std::size_t i = 0; i < n_energy; ++i) age[i] = t;
            long long failures = 0;
#pragma omp parallel for schedule(static) reduction(+ : failures)
            for (long long i = 0; i < static_cast<long long>(n_energy); ++i) {
                const std::size_t k = static_cast<std::size_t>(i);
                try {
                    transport.initial_energy(&energy[k], &age[k], 1, &e0[k]);
                    if (std::isfinite(e0[k])) transport.loss_time(&energy[k], &e0[k], 1, &tau[k]);
                    else tau[k] = INFINITY;
                } catch (const crk::error &) {
                    // Exceptions must not leave an OpenMP region: count and report after.
                    ++failures;
                }
            }
            if (failures != 0) {
                std::fprintf(stderr, "step %zu: %lld kernel calls failed\n", step, failures);
                return 1;
            }
            for (std::size_t i = 0; i < n_energy; ++i)
                if (std::isfinite(tau[i])) worst = std::fmax(worst, std::fabs(tau[i] - t) / t);
        }
        std::printf("b(10 GeV) = %.4e GeV/s, b(10 TeV) = %.4e GeV/s\n", rate.front(), rate.back());
        std::printf("E0(10 GeV, %.2f Myr) = %.4f GeV; max |tau - t| / t = %.2e\n",
                    dt_Myr * static_cast<double>(n_steps), e0.front(), worst);
        if (!(worst < 1e-6)) {
            std::fprintf(stderr, "loss time does not invert the initial energy\n");
            return 1;
        }

        // Bad input: a negative energy. The wrapper throws crk::error with the status and the
        // library's message; the solver decides what to do (here: report and go on).
        try {
            (void)losses.rate(-1.0);
            std::fprintf(stderr, "a negative energy was accepted\n");
            return 1;
        } catch (const crk::error &e) {
            std::printf("rejected as expected (%s): %s\n", crk::status_name(e.status()), e.what());
        }
    } catch (const crk::error &e) {
        std::fprintf(stderr, "crkernels error %d: %s\n", static_cast<int>(e.status()), e.what());
        return 1;
    }
    return 0;
}

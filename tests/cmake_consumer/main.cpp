// A CMake consumer of the installed crkernels package (tests/install.rs).
#include <crkernels.hpp>

#include <cstdio>

int main() {
    try {
        const crk::losses losses = crk::losses_new_preset(CRK_LOSS_KN_EXACT, CRK_ISRF_DELAHAYE2010, 3.0);
        const crk::transport tr = crk::transport_new(losses, 3e28, 0.6, 4.0, 1.0, 1e7);
        const double rate = losses.rate(100.0);
        const double e0 = tr.initial_energy(100.0, 0.1);
        if (!(rate > 0.0) || !(e0 > 100.0)) return 1;
        std::printf("crkernels %s via find_package: b(100 GeV) = %.4e GeV/s, E0 = %.3f GeV\n",
                    crk::version(), rate, e0);
        try {
            (void)losses.rate(-1.0);
            return 2;
        } catch (const crk::error &e) {
            if (e.status() != CRK_ERR_INVALID_ARGUMENT) return 3;
        }
    } catch (const crk::error &e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 4;
    }
    return 0;
}

// The header must compile as C++17 with all warnings as errors, and link from C++.
#include "crkernels.h"

#include <cstdio>
#include <cstring>

int main() {
    const char *version = crk_version();
    if (version == nullptr || std::strlen(version) == 0) return 1;
    crk_losses *losses = nullptr;
    if (crk_losses_new_preset(CRK_LOSS_KN_EXACT, CRK_ISRF_DELAHAYE2010, 3.0, &losses) != CRK_OK) return 2;
    const double energy = 100.0;
    double rate = 0.0;
    const crk_status status = crk_losses_rate(losses, &energy, 1, &rate);
    crk_losses_free(losses);
    if (status != CRK_OK || !(rate > 0.0)) return 3;
    std::printf("crkernels %s from C++: b(100 GeV) = %.6e GeV/s\n", version, rate);
    return 0;
}

/* Loss rates and initial energies from C.
 *   cargo build --release
 *   cc -std=c99 -I include examples/c/loss_rates.c target/release/libcrkernels.a -lm -lpthread -ldl
 */
#include "crkernels.h"

#include <stdio.h>

int main(void) {
    crk_losses *losses = NULL;
    crk_transport *transport = NULL;
    double energy[3] = {10.0, 100.0, 1000.0}; /* GeV */
    double age[3] = {0.1, 0.1, 0.1};          /* Myr */
    double rate[3], e0[3];
    int i;

    /* Exact Klein-Nishina losses on the Delahaye et al. (2010) ISRF plus 3 microgauss. */
    if (crk_losses_new_preset(CRK_LOSS_KN_EXACT, CRK_ISRF_DELAHAYE2010, 3.0, &losses) != CRK_OK ||
        crk_losses_rate(losses, energy, 3, rate) != CRK_OK ||
        crk_transport_new(losses, 3e28, 0.6, 4.0, 1.0, 1e7, &transport) != CRK_OK ||
        crk_transport_initial_energy(transport, energy, age, 3, e0) != CRK_OK) {
        fprintf(stderr, "crkernels: %s\n", crk_last_error_message());
        return 1;
    }
    for (i = 0; i < 3; ++i)
        printf("E = %6.0f GeV: b = %.4e GeV/s, E0(t = 0.1 Myr) = %.2f GeV\n", energy[i], rate[i], e0[i]);
    crk_transport_free(transport);
    crk_losses_free(losses);
    return 0;
}

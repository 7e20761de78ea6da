/* The C contract of issue 2: loss rates and transport look-ups against closed forms computed
 * here in C, and every bad-input path with its status and message. */
#include "crkernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond, ...)                                  \
    do {                                                  \
        if (!(cond)) {                                    \
            ++failures;                                   \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);   \
            printf(__VA_ARGS__);                          \
            printf("\n");                                 \
        }                                                 \
    } while (0)

/* Constants of PHYSICS.md, independent of the library's own. */
static const double SIGMA_T = 6.6524587321e-25;  /* cm^2 */
static const double C_LIGHT = 2.99792458e10;     /* cm/s */
static const double ME_GEV = 0.51099895e-3;
static const double ME_EV = 0.51099895e6;
static const double KB_EV = 8.617333262e-5;
static const double MYR = 3.15576e13;            /* s */
static const double KPC = 3.0856775814913673e21; /* cm */
static const double PI = 3.14159265358979323846;

static double rel(double a, double b) { return fabs(a - b) / fabs(b); }

static double thomson_coefficient(double u_ev_per_cm3) {
    return 4.0 / 3.0 * SIGMA_T * C_LIGHT * u_ev_per_cm3 * 1e-9 / (ME_GEV * ME_GEV);
}

static double magnetic_energy_density(double b_ug) {
    /* B^2/(8 pi) in erg/cm^3 -> eV/cm^3 */
    return (b_ug * 1e-6) * (b_ug * 1e-6) / (8.0 * PI) * 6.24150907446e11;
}

static void expect_error(crk_status got, crk_status want, const char *what) {
    CHECK(got == want, "%s: status %d, want %d", what, (int)got, (int)want);
    CHECK(strlen(crk_last_error_message()) > 0, "%s: empty error message", what);
}

static void test_version_and_messages(void) {
    CHECK(strlen(crk_version()) > 0, "empty version");
    CHECK(strcmp(crk_last_error_message(), "") == 0, "message not empty at start");
}

static void test_thomson_rates(void) {
    crk_losses *losses = NULL;
    const double b0 = 1.3e-16;
    double e[3] = {1.0, 100.0, 1e5};
    double rate[3];
    int i;
    CHECK(crk_losses_new_thomson(b0, &losses) == CRK_OK, "new_thomson");
    CHECK(crk_losses_rate(losses, e, 3, rate) == CRK_OK, "rate");
    for (i = 0; i < 3; ++i) CHECK(rel(rate[i], b0 * e[i] * e[i]) < 1e-15, "b0 E^2 at %g", e[i]);
    /* In place. */
    CHECK(crk_losses_rate(losses, e, 3, e) == CRK_OK, "in place");
    CHECK(rel(e[1], b0 * 1e4) < 1e-15, "in-place value");
    crk_losses_free(losses);
}

static void test_field_models(void) {
    const crk_photon_field fields[2] = {{2.7255, 0.2606}, {5000.0, 0.3}};
    const double b_ug = 3.0;
    const double ub = magnetic_energy_density(b_ug);
    crk_losses *thomson = NULL, *expansion = NULL, *exact = NULL;
    double e = 10.0, r_thomson, r_expansion, r_exact;
    double want, bracket_sum = 0.0;
    int i;
    CHECK(crk_losses_new(CRK_LOSS_THOMSON, fields, 2, b_ug, &thomson) == CRK_OK, "thomson");
    CHECK(crk_losses_new(CRK_LOSS_KN_EXPANSION, fields, 2, b_ug, &expansion) == CRK_OK, "expansion");
    CHECK(crk_losses_new(CRK_LOSS_KN_EXACT, fields, 2, b_ug, &exact) == CRK_OK, "exact");
    CHECK(crk_losses_rate(thomson, &e, 1, &r_thomson) == CRK_OK, "thomson rate");
    want = thomson_coefficient(0.2606 + 0.3 + ub) * e * e;
    CHECK(rel(r_thomson, want) < 1e-14, "thomson %.17g vs %.17g", r_thomson, want);

    /* SECRET eq. 2.4 with <eps^2>/<eps> = 3.832229496 k_B T. */
    CHECK(crk_losses_rate(expansion, &e, 1, &r_expansion) == CRK_OK, "expansion rate");
    for (i = 0; i < 2; ++i) {
        double gamma = e / ME_GEV;
        double ratio = 3.832229496 * KB_EV * fields[i].temperature_K / ME_EV;
        bracket_sum += fields[i].energy_density_eV_per_cm3 * (1.0 - 6.3 * gamma * ratio);
    }
    want = thomson_coefficient(bracket_sum + ub) * e * e;
    CHECK(rel(r_expansion, want) < 1e-9, "expansion %.17g vs %.17g", r_expansion, want);

    /* Exact KN lies between the expansion (which overshoots the suppression) and Thomson. */
    CHECK(crk_losses_rate(exact, &e, 1, &r_exact) == CRK_OK, "exact rate");
    CHECK(r_exact < r_thomson && r_exact > r_expansion, "ordering %g %g %g", r_expansion, r_exact, r_thomson);

    /* The expansion turns negative for starlight above ~25 GeV (5000 K): out of domain. */
    e = 1000.0;
    expect_error(crk_losses_rate(expansion, &e, 1, &r_expansion), CRK_ERR_OUT_OF_DOMAIN, "expansion bracket <= 0");
    crk_losses_free(thomson);
    crk_losses_free(expansion);
    crk_losses_free(exact);
}

static void test_cmb_thomson_limit(void) {
    /* CMB at 1 GeV: u = 4 gamma k T / m c^2 ~ 3.6e-6, R = 1 - 6.0353 u + O(u^2 = 1e-11). */
    const crk_photon_field cmb = {2.7255, 0.2606};
    crk_losses *exact = NULL;
    double e = 1.0, rate;
    double u = 4.0 * (e / ME_GEV) * KB_EV * 2.7255 / ME_EV;
    double r_series = 1.0 - 63.0 / 40.0 * 3.8322294961 * u;
    CHECK(crk_losses_new(CRK_LOSS_KN_EXACT, &cmb, 1, 0.0, &exact) == CRK_OK, "cmb");
    CHECK(crk_losses_rate(exact, &e, 1, &rate) == CRK_OK, "cmb rate");
    CHECK(rel(rate / thomson_coefficient(0.2606), r_series) < 1e-9, "R = %.15g vs %.15g",
          rate / thomson_coefficient(0.2606), r_series);
    crk_losses_free(exact);
}

static void test_thomson_transport(double delta) {
    const double b0 = 2e-16;              /* 1/(GeV s) */
    const double kappa0 = 3e28;           /* cm^2/s */
    const double b0_myr = b0 * MYR;       /* 1/(GeV Myr) */
    const double k_kpc2_myr = kappa0 * MYR / (KPC * KPC);
    double e[4] = {10.0, 100.0, 1000.0, 3e4};
    double t[4] = {0.5, 1.0, 0.1, 0.005}; /* below 1/(b0 E): 15.8, 1.58, 0.158, 0.0053 Myr */
    double e0[4], tau[4], l2[4];
    crk_losses *losses = NULL;
    crk_transport *tr = NULL;
    int i;
    CHECK(crk_losses_new_thomson(b0, &losses) == CRK_OK, "losses");
    CHECK(crk_transport_new(losses, kappa0, delta, 4.0, 1.0, 1e7, &tr) == CRK_OK, "transport: %s",
          crk_last_error_message());
    CHECK(crk_transport_initial_energy(tr, e, t, 4, e0) == CRK_OK, "E0");
    for (i = 0; i < 4; ++i) {
        double want = e[i] / (1.0 - b0_myr * e[i] * t[i]);
        CHECK(rel(e0[i], want) < 1e-9, "E0(%g, %g) = %.15g vs %.15g", e[i], t[i], e0[i], want);
        e0[i] = want;
    }
    CHECK(crk_transport_loss_time(tr, e, e0, 4, tau) == CRK_OK, "tau");
    CHECK(crk_transport_loss_length2(tr, e, e0, 4, l2) == CRK_OK, "l2");
    for (i = 0; i < 4; ++i) {
        double want_tau = (1.0 / e[i] - 1.0 / e0[i]) / b0_myr;
        double want_l2 = delta == 1.0
                             ? k_kpc2_myr / b0_myr * log(e0[i] / e[i])
                             : k_kpc2_myr / (b0_myr * (1.0 - delta)) *
                                   (pow(e[i], delta - 1.0) - pow(e0[i], delta - 1.0));
        CHECK(rel(tau[i], want_tau) < 1e-9, "tau %.15g vs %.15g", tau[i], want_tau);
        CHECK(rel(l2[i], want_l2) < 1e-9, "l2 (delta %g) %.15g vs %.15g", delta, l2[i], want_l2);
    }
    /* Beyond the divergence t = 1/(b0 E) no E0 <= E_max exists: +infinity, and the loss length
     * of such a source is +infinity too. */
    t[0] = 2.0 / (b0_myr * e[0]);
    CHECK(crk_transport_initial_energy(tr, e, t, 1, e0) == CRK_OK && isinf(e0[0]), "E0 = inf");
    CHECK(crk_transport_loss_length2(tr, e, e0, 1, l2) == CRK_OK && isinf(l2[0]), "l2 = inf");
    crk_transport_free(tr);
    crk_losses_free(losses);
}

static void test_bad_input(void) {
    crk_losses *losses = NULL;
    crk_transport *tr = NULL;
    const crk_photon_field good = {5000.0, 0.3};
    crk_photon_field bad;
    double e = 10.0, out = -1.0, t = 1.0;
    double nan_value = nan("");

    expect_error(crk_losses_new_thomson(1e-16, NULL), CRK_ERR_NULL_POINTER, "null out");
    expect_error(crk_losses_new_thomson(-1e-16, &losses), CRK_ERR_INVALID_ARGUMENT, "negative b0");
    CHECK(losses == NULL, "out set on failure");
    expect_error(crk_losses_new_thomson(nan_value, &losses), CRK_ERR_INVALID_ARGUMENT, "NaN b0");
    expect_error(crk_losses_new(7, &good, 1, 3.0, &losses), CRK_ERR_INVALID_ARGUMENT, "unknown model");
    expect_error(crk_losses_new(-1, &good, 1, 3.0, &losses), CRK_ERR_INVALID_ARGUMENT, "negative model");
    expect_error(crk_losses_new(CRK_LOSS_KN_EXACT, NULL, 1, 3.0, &losses), CRK_ERR_NULL_POINTER, "null fields");
    bad = good;
    bad.temperature_K = 0.0;
    expect_error(crk_losses_new(CRK_LOSS_KN_EXACT, &bad, 1, 3.0, &losses), CRK_ERR_INVALID_ARGUMENT, "T = 0");
    bad.temperature_K = -3.0;
    expect_error(crk_losses_new(CRK_LOSS_KN_EXACT, &bad, 1, 3.0, &losses), CRK_ERR_INVALID_ARGUMENT, "T < 0");
    bad = good;
    bad.energy_density_eV_per_cm3 = -0.1;
    expect_error(crk_losses_new(CRK_LOSS_KN_EXACT, &bad, 1, 3.0, &losses), CRK_ERR_INVALID_ARGUMENT, "U < 0");
    bad.energy_density_eV_per_cm3 = INFINITY;
    expect_error(crk_losses_new(CRK_LOSS_KN_EXACT, &bad, 1, 3.0, &losses), CRK_ERR_INVALID_ARGUMENT, "U = inf");
    expect_error(crk_losses_new(CRK_LOSS_KN_EXACT, &good, 1, -3.0, &losses), CRK_ERR_INVALID_ARGUMENT, "B < 0");
    expect_error(crk_losses_new_preset(CRK_LOSS_KN_EXACT, 99, 3.0, &losses), CRK_ERR_INVALID_ARGUMENT, "preset");

    CHECK(crk_losses_new(CRK_LOSS_KN_EXACT, &good, 1, 3.0, &losses) == CRK_OK, "good losses");
    CHECK(strcmp(crk_last_error_message(), "") == 0, "success clears the message");
    expect_error(crk_losses_rate(NULL, &e, 1, &out), CRK_ERR_NULL_POINTER, "null losses");
    expect_error(crk_losses_rate(losses, NULL, 1, &out), CRK_ERR_NULL_POINTER, "null energies");
    expect_error(crk_losses_rate(losses, &e, 1, NULL), CRK_ERR_NULL_POINTER, "null rates");
    CHECK(crk_losses_rate(losses, NULL, 0, NULL) == CRK_OK, "n = 0 no-op");
    e = nan_value;
    expect_error(crk_losses_rate(losses, &e, 1, &out), CRK_ERR_INVALID_ARGUMENT, "NaN energy");
    CHECK(out == -1.0, "output written on failure");
    e = -5.0;
    expect_error(crk_losses_rate(losses, &e, 1, &out), CRK_ERR_INVALID_ARGUMENT, "negative energy");
    e = 0.0;
    expect_error(crk_losses_rate(losses, &e, 1, &out), CRK_ERR_INVALID_ARGUMENT, "zero energy");
    e = INFINITY;
    expect_error(crk_losses_rate(losses, &e, 1, &out), CRK_ERR_INVALID_ARGUMENT, "infinite energy");

    expect_error(crk_transport_new(losses, 3e28, 0.5, 4.0, 100.0, 10.0, &tr), CRK_ERR_INVALID_ARGUMENT, "Emin > Emax");
    expect_error(crk_transport_new(losses, 3e28, 0.5, 4.0, 10.0, 10.0, &tr), CRK_ERR_INVALID_ARGUMENT, "Emin = Emax");
    expect_error(crk_transport_new(losses, -3e28, 0.5, 4.0, 1.0, 10.0, &tr), CRK_ERR_INVALID_ARGUMENT, "kappa0 < 0");
    expect_error(crk_transport_new(losses, 3e28, nan_value, 4.0, 1.0, 10.0, &tr), CRK_ERR_INVALID_ARGUMENT, "NaN delta");
    expect_error(crk_transport_new(losses, 3e28, 0.5, nan_value, 1.0, 10.0, &tr), CRK_ERR_INVALID_ARGUMENT, "NaN z_max");
    expect_error(crk_transport_new(losses, 3e28, 0.5, 4.0, 0.0, 10.0, &tr), CRK_ERR_INVALID_ARGUMENT, "Emin = 0");
    expect_error(crk_transport_new(NULL, 3e28, 0.5, 4.0, 1.0, 10.0, &tr), CRK_ERR_NULL_POINTER, "null losses");
    CHECK(crk_transport_new(losses, 3e28, 0.5, 4.0, 1.0, 1e4, &tr) == CRK_OK, "transport");
    e = 1e5;
    expect_error(crk_transport_initial_energy(tr, &e, &t, 1, &out), CRK_ERR_OUT_OF_DOMAIN, "E above table");
    e = 0.5;
    expect_error(crk_transport_initial_energy(tr, &e, &t, 1, &out), CRK_ERR_OUT_OF_DOMAIN, "E below table");
    e = 10.0;
    t = -1.0;
    expect_error(crk_transport_initial_energy(tr, &e, &t, 1, &out), CRK_ERR_INVALID_ARGUMENT, "negative age");
    t = nan_value;
    expect_error(crk_transport_initial_energy(tr, &e, &t, 1, &out), CRK_ERR_INVALID_ARGUMENT, "NaN age");
    t = 5.0; /* E0 < E */
    expect_error(crk_transport_loss_time(tr, &e, &t, 1, &out), CRK_ERR_OUT_OF_DOMAIN, "E0 < E");
    t = 2e4; /* E0 > E_max */
    expect_error(crk_transport_loss_length2(tr, &e, &t, 1, &out), CRK_ERR_OUT_OF_DOMAIN, "E0 > Emax");
    expect_error(crk_transport_max_age(tr, NULL, 1, &out), CRK_ERR_NULL_POINTER, "null energies");
    CHECK(crk_transport_initial_energy(tr, NULL, NULL, 0, NULL) == CRK_OK, "n = 0 no-op");
    crk_transport_free(tr);
    crk_transport_free(NULL);
    crk_losses_free(losses);
    crk_losses_free(NULL);

    /* No field and no magnetic field: no losses, no loss-time table. */
    CHECK(crk_losses_new(CRK_LOSS_KN_EXACT, NULL, 0, 0.0, &losses) == CRK_OK, "empty field");
    expect_error(crk_transport_new(losses, 3e28, 0.5, 4.0, 1.0, 1e4, &tr), CRK_ERR_INVALID_ARGUMENT, "no losses");
    crk_losses_free(losses);

    /* The expansion cannot build a table across its zero. */
    CHECK(crk_losses_new(CRK_LOSS_KN_EXPANSION, &good, 1, 3.0, &losses) == CRK_OK, "expansion");
    expect_error(crk_transport_new(losses, 3e28, 0.5, 4.0, 1.0, 1e4, &tr), CRK_ERR_OUT_OF_DOMAIN, "expansion table");
    crk_losses_free(losses);
}

static void test_presets(void) {
    crk_photon_field fields[CRK_ISRF_MAX_COMPONENTS];
    size_t n = 0;
    CHECK(crk_isrf_preset_components(CRK_ISRF_DELAHAYE2010, NULL, 0, &n) == CRK_OK && n == 6, "count %zu", n);
    CHECK(crk_isrf_preset_components(CRK_ISRF_DELAHAYE2010, fields, CRK_ISRF_MAX_COMPONENTS, &n) == CRK_OK, "fill");
    CHECK(fields[3].temperature_K == 3249.3 && fields[3].energy_density_eV_per_cm3 == 0.370, "component 3");
    expect_error(crk_isrf_preset_components(CRK_ISRF_DELAHAYE2010, fields, 2, &n), CRK_ERR_INVALID_ARGUMENT,
                 "capacity");
    CHECK(n == 6, "size needed reported");
}

/* Requests whose working memory cannot fit fail with a status and a message naming the limit,
   before allocating (issue 15, item 5). */
static void test_bounded_resources(void) {
    crk_losses *losses = NULL;
    crk_transport *tr = NULL;
    crk_surrogate *s = NULL;
    crk_ensemble *ens = NULL;
    double *x = calloc(20 * 1000, sizeof(double));
    double nll[20];
    size_t degrees[2] = {1, 5}, count = 0, i;
    double alpha = 1e-3, energies[3] = {300.0, 1e3, 3e3};
    crk_surrogate_options options;
    crk_ensemble_params params;

    CHECK(crk_losses_new_thomson(1e-16, &losses) == CRK_OK, "thomson");
    expect_error(crk_transport_new(losses, 3e28, 0.6, 4.0, 1e-300, 1e300, &tr), CRK_ERR_OUT_OF_DOMAIN,
                 "absurd energy range");
    CHECK(tr == NULL, "no handle after a failure");
    CHECK(crk_transport_new(losses, 3e28, 0.6, 4.0, 1e-150, 1e150, &tr) == CRK_OK, "widest range");
    crk_transport_free(tr);
    CHECK(crk_transport_new(losses, 3e28, 0.6, 4.0, 1.0, 1e7, &tr) == CRK_OK, "transport");

    /* 1000 parameters at degree 5: 8.5e12 features. */
    CHECK(crk_polynomial_feature_count(1000, 5, &count) == CRK_OK && count == 8459043543950ULL, "count %zu", count);
    CHECK(x != NULL, "calloc");
    for (i = 0; i < 20; ++i) nll[i] = (double)i;
    options.weighting = CRK_WEIGHTS_NONE;
    options.custom_weights = NULL;
    options.start_index = -1;
    options.degrees = degrees;
    options.n_degrees = 2;
    options.alphas = &alpha;
    options.n_alphas = 1;
    expect_error(crk_surrogate_fit(x, 20, 1000, nll, &options, &s), CRK_ERR_INVALID_ARGUMENT, "too many features");
    CHECK(strstr(crk_last_error_message(), "limit of 32768 features") != NULL, "message: %s",
          crk_last_error_message());
    CHECK(s == NULL, "no surrogate");

    /* 1e9 supernovae per Myr: about 3e8 young sources a realisation. */
    params.sn_rate_per_Myr = 1e9;
    params.t_max_Myr = 7.0;
    params.s_max_kpc = 10.0;
    params.spatial = CRK_SPATIAL_SPIRAL_ARMS;
    params.poisson_count = 1;
    params.spectrum.q_star_per_GeV = 1e50;
    params.spectrum.gamma = 2.2;
    params.spectrum.cutoff_GeV = 1e4;
    expect_error(crk_ensemble_new(tr, &params, energies, 3, &ens), CRK_ERR_INVALID_ARGUMENT, "too many sources");
    CHECK(strstr(crk_last_error_message(), "young sources") != NULL, "message: %s", crk_last_error_message());
    CHECK(ens == NULL, "no ensemble");

    free(x);
    crk_transport_free(tr);
    crk_losses_free(losses);
}

int main(void) {
    test_version_and_messages();
    test_thomson_rates();
    test_field_models();
    test_cmb_thomson_limit();
    test_thomson_transport(0.6);
    test_thomson_transport(1.0);
    test_bad_input();
    test_presets();
    test_bounded_resources();
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("C contract tests passed\n");
    return 0;
}

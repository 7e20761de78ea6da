/* The C contract of issue 6: propagation ingredients, solar modulation, fit statistics, the
 * modulation fit and the ridge surrogate, with bad input from C. */
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

static void expect_error(crk_status got, crk_status want, const char *what) {
    CHECK(got == want, "%s: status %d, want %d (%s)", what, (int)got, (int)want, crk_last_error_message());
    CHECK(strlen(crk_last_error_message()) > 0, "%s: empty error message", what);
}

static void statistics(void) {
    double nll = -1.0, p = -1.0;
    size_t count = 0;
    crk_experiment_result results[2];
    crk_nll_summary summary;
    double chi2[2] = {4.0, 3000.0}, ndof[2] = {2.0, 2.0};

    CHECK(crk_chi2_neg_log_pvalue(3000.0, 2.0, &nll) == CRK_OK && fabs(nll - 1500.0) < 1e-10, "nll %g", nll);
    CHECK(crk_chi2_pvalue(2.0, 2.0, &p) == CRK_OK && fabs(p - exp(-1.0)) < 1e-15, "p %g", p);
    expect_error(crk_chi2_neg_log_pvalue(-1.0, 3.0, &nll), CRK_ERR_INVALID_ARGUMENT, "chi2 < 0");
    expect_error(crk_chi2_neg_log_pvalue(1.0, 0.0, &nll), CRK_ERR_INVALID_ARGUMENT, "ndof = 0");
    expect_error(crk_chi2_neg_log_pvalue(NAN, 3.0, &nll), CRK_ERR_INVALID_ARGUMENT, "chi2 NaN");
    expect_error(crk_chi2_neg_log_pvalue(1.0, 3.0, NULL), CRK_ERR_NULL_POINTER, "NULL nll");

    CHECK(crk_experiment_statistics(chi2, ndof, 2, results, &summary) == CRK_OK, "experiment statistics");
    CHECK(summary.worst_experiment == 1 && fabs(summary.max_nll - 1500.0) < 1e-10, "max nll %g", summary.max_nll);
    CHECK(fabs(summary.sum_nll - 1502.0) < 1e-10, "sum nll %g", summary.sum_nll);
    expect_error(crk_experiment_statistics(chi2, ndof, 0, results, &summary), CRK_ERR_INVALID_ARGUMENT,
                 "no experiments");

    CHECK(crk_polynomial_feature_count(18, 3, &count) == CRK_OK && count == 1329, "feature count %zu", count);
    expect_error(crk_polynomial_feature_count(0, 3, &count), CRK_ERR_INVALID_ARGUMENT, "0 parameters");
}

static void propagation(void) {
    crk_diffusion_params d = {3e28, 5.0, 2.0, -0.5, 5.0, 0.1, 0.5, 300.0, 0.2, 0.3};
    crk_injection_params q = {1.0, 2.3, 300.0, 0.1, 2.0, 1e5};
    crk_particle proton = {1, 1, CRK_PROTON_MASS_GEV};
    crk_particle bad = {1, 0, CRK_PROTON_MASS_GEV};
    crk_modulation_params phi = {0.35, 0.45, 0.15}, nan_phi = {NAN, 0.0, 0.0};
    double r[3] = {0.0, 8.5, 12.0}, z[3] = {0.0, 1.0, 3.0}, rig[3] = {1.0, 4.0, 1000.0}, out[3], t_is[3];
    double t[3] = {0.5, 5.0, 50.0}, bad_rig[3] = {1.0, -4.0, 10.0};

    CHECK(crk_diffusion_coefficient(&d, r, z, rig, 3, out) == CRK_OK, "diffusion: %s", crk_last_error_message());
    CHECK(out[0] > 0.0 && out[1] > out[0], "D %g %g", out[0], out[1]);
    expect_error(crk_diffusion_coefficient(&d, r, z, bad_rig, 3, out), CRK_ERR_INVALID_ARGUMENT, "rigidity < 0");
    d.softness_low = 0.0;
    expect_error(crk_diffusion_coefficient(&d, r, z, rig, 3, out), CRK_ERR_INVALID_ARGUMENT, "softness 0");
    d.softness_low = 0.1;
    d.delta = NAN;
    expect_error(crk_diffusion_rigidity_dependence(&d, rig, 3, out), CRK_ERR_INVALID_ARGUMENT, "NaN delta");
    expect_error(crk_diffusion_coefficient(NULL, r, z, rig, 3, out), CRK_ERR_NULL_POINTER, "NULL params");

    CHECK(crk_injection_rigidity(&q, rig, 3, out) == CRK_OK && out[0] > out[1], "injection");
    q.softness = -1.0;
    expect_error(crk_injection_rigidity(&q, rig, 3, out), CRK_ERR_INVALID_ARGUMENT, "injection softness < 0");

    CHECK(crk_rigidity_from_kinetic(&proton, t, 3, out) == CRK_OK, "rigidity");
    CHECK(crk_kinetic_from_rigidity(&proton, out, 3, out) == CRK_OK && fabs(out[1] / 5.0 - 1.0) < 1e-14,
          "round trip %g", out[1]);
    expect_error(crk_rigidity_from_kinetic(&bad, t, 3, out), CRK_ERR_INVALID_ARGUMENT, "charge 0");

    CHECK(crk_force_field_map(&proton, &phi, t, 3, t_is, out) == CRK_OK, "force field");
    CHECK(t_is[0] > 0.5 + 0.35 && out[0] < 1.0, "T_IS %g factor %g", t_is[0], out[0]);
    expect_error(crk_force_field_map(&proton, &nan_phi, t, 3, t_is, out), CRK_ERR_INVALID_ARGUMENT, "NaN Phi0");
}

static void modulation_fit(void) {
    double grid[3] = {0.1, 10.0, 1000.0}, flux[3] = {100.0, 1.0, 1e-4};
    crk_fit_species species = {{1, 1, CRK_PROTON_MASS_GEV}, grid, flux, 3, 0};
    crk_fit_parameter norm = {1.0, 0.1, 10.0};
    crk_fit_parameter modulation[3] = {{0.5, 0.0, 3.0}, {0.0, 0.0, 0.0}, {0.0, 0.0, 0.0}};
    crk_data_point points[4];
    double parameters[4], uncertainties[4];
    crk_experiment_result experiments[2];
    crk_fit_summary summary;
    size_t i;

    for (i = 0; i < 4; ++i) {
        points[i].experiment = 0;
        points[i].numerator = 0;
        points[i].denominator = -1;
        points[i].abscissa = CRK_ABSCISSA_KINETIC_PER_NUCLEON;
        points[i].x = 1.0 + 3.0 * (double)i;
        points[i].value = 1.0;
        points[i].sigma = 0.1;
    }
    CHECK(crk_modulation_fit(&species, 1, &norm, 1, modulation, points, 4, 1, parameters, uncertainties,
                             experiments, &summary) == CRK_OK,
          "fit: %s", crk_last_error_message());
    CHECK(summary.iterations > 0 && experiments[0].ndof == 4.0, "fit summary");
    expect_error(crk_modulation_fit(&species, 1, &norm, 1, modulation, points, 4, 2, parameters, uncertainties,
                                    experiments, &summary),
                 CRK_ERR_INVALID_ARGUMENT, "empty experiment");
    points[2].sigma = 0.0;
    expect_error(crk_modulation_fit(&species, 1, &norm, 1, modulation, points, 4, 1, parameters, uncertainties,
                                    experiments, &summary),
                 CRK_ERR_INVALID_ARGUMENT, "sigma 0");
    points[2].sigma = 0.1;
    points[1].abscissa = 7;
    expect_error(crk_modulation_fit(&species, 1, &norm, 1, modulation, points, 4, 1, parameters, uncertainties,
                                    experiments, &summary),
                 CRK_ERR_INVALID_ARGUMENT, "unknown abscissa");
}

#define N_POINTS 60
#define N_PARAMS 2

static void surrogate(void) {
    double x[N_POINTS * N_PARAMS], y[N_POINTS], zeros[N_POINTS], new_point[N_PARAMS], predicted[1];
    double alphas[2] = {1e-6, 1e-2};
    size_t degrees[2] = {1, 2}, high[1] = {10}, n = 0, i;
    crk_surrogate_options options;
    crk_surrogate *s = NULL;
    crk_surrogate_info info;
    crk_surrogate_step step;

    for (i = 0; i < N_POINTS; ++i) {
        x[2 * i] = (double)((i * 37) % 61) / 61.0;
        x[2 * i + 1] = (double)((i * 53) % 59) / 59.0;
        y[i] = 10.0 + pow(x[2 * i] - 0.3, 2) + 2.0 * pow(x[2 * i + 1] - 0.6, 2);
        zeros[i] = 0.0;
    }
    options.weighting = CRK_WEIGHTS_DISTANCE;
    options.custom_weights = NULL;
    options.start_index = -1;
    options.degrees = degrees;
    options.n_degrees = 2;
    options.alphas = alphas;
    options.n_alphas = 2;
    CHECK(crk_surrogate_fit(x, N_POINTS, N_PARAMS, y, &options, &s) == CRK_OK, "fit: %s", crk_last_error_message());
    CHECK(crk_surrogate_get_info(s, &info) == CRK_OK && info.degree == 2 && info.n_features == 5, "info");
    CHECK(crk_surrogate_coefficients(s, NULL, 0, &n) == CRK_OK && n == 5, "coefficient count %zu", n);
    CHECK(crk_surrogate_propose_step(s, 1.0, new_point, &step) == CRK_OK, "step: %s", crk_last_error_message());
    /* The quadratic is exact: the step lands on the minimum (0.3, 0.6) up to the line search. */
    CHECK(crk_surrogate_predict(s, new_point, 1, predicted) == CRK_OK && fabs(predicted[0] - step.predicted_nll) < 1e-10,
          "prediction at the new point");
    CHECK(step.predicted_nll < y[info.start_index], "step decreases the NLL");
    expect_error(crk_surrogate_propose_step(s, 0.0, new_point, &step), CRK_ERR_INVALID_ARGUMENT, "max step 0");
    crk_surrogate_free(s);
    crk_surrogate_free(NULL);

    s = NULL;
    options.degrees = high;
    options.n_degrees = 1;
    expect_error(crk_surrogate_fit(x, N_POINTS, N_PARAMS, y, &options, &s), CRK_ERR_INVALID_ARGUMENT,
                 "fewer points than features");
    CHECK(s == NULL, "no handle on failure");
    options.degrees = degrees;
    options.n_degrees = 2;
    options.weighting = CRK_WEIGHTS_CUSTOM;
    options.custom_weights = zeros;
    expect_error(crk_surrogate_fit(x, N_POINTS, N_PARAMS, y, &options, &s), CRK_ERR_INVALID_ARGUMENT,
                 "singular weights");
    options.weighting = 42;
    expect_error(crk_surrogate_fit(x, N_POINTS, N_PARAMS, y, &options, &s), CRK_ERR_INVALID_ARGUMENT,
                 "unknown weighting");
    options.weighting = CRK_WEIGHTS_NONE;
    x[3] = NAN;
    expect_error(crk_surrogate_fit(x, N_POINTS, N_PARAMS, y, &options, &s), CRK_ERR_INVALID_ARGUMENT, "NaN x");
    expect_error(crk_surrogate_fit(x, N_POINTS, N_PARAMS, y, NULL, &s), CRK_ERR_NULL_POINTER, "NULL options");
}

int main(void) {
    statistics();
    propagation();
    modulation_fit();
    surrogate();
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("test_fit: all passed\n");
    return 0;
}

/* The C contract of issue 3: the summation kernel, the ensemble, its sources, the progress
 * callback with cancellation, and bad input. */
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

#define N_E 19

static void expect_error(crk_status got, crk_status want, const char *what) {
    CHECK(got == want, "%s: status %d, want %d (%s)", what, (int)got, (int)want, crk_last_error_message());
    CHECK(strlen(crk_last_error_message()) > 0, "%s: empty error message", what);
}

static int calls = 0;
static int32_t cancel_after_first(size_t done, size_t total, void *user_data) {
    (void)done;
    (void)total;
    ++*(int *)user_data;
    ++calls;
    return 1; /* cancel */
}

int main(void) {
    crk_losses *losses = NULL;
    crk_transport *tr = NULL;
    crk_ensemble *ensemble = NULL;
    crk_ensemble_params params;
    double energy[N_E], flux[4 * N_E], again[4 * N_E], row[N_E];
    double *distance, *age;
    size_t n_sources = 0, i;
    int user_calls = 0;

    for (i = 0; i < N_E; ++i) energy[i] = pow(10.0, 2.4 + 0.1 * (double)i);
    CHECK(crk_losses_new_preset(CRK_LOSS_KN_EXACT, CRK_ISRF_DELAHAYE2010, 3.0, &losses) == CRK_OK, "losses");
    CHECK(crk_transport_new(losses, 3e28, 0.6, 4.0, 100.0, 1e7, &tr) == CRK_OK, "transport");
    params.sn_rate_per_Myr = 4e3;
    params.t_max_Myr = 7.0;
    params.s_max_kpc = 10.0;
    params.spatial = CRK_SPATIAL_SPIRAL_ARMS;
    params.poisson_count = 0;
    CHECK(crk_source_spectrum_from_energy(1e48, 1.0, 2.2, 1e4, &params.spectrum) == CRK_OK, "spectrum");
    CHECK(params.spectrum.q_star_per_GeV > 0.0 && params.spectrum.gamma == 2.2, "spectrum values");

    /* The contract's one-call form, on two threads, then the handle form: identical. */
    CHECK(crk_ensemble_generate(tr, &params, energy, N_E, 42, 10, 4, 2, flux) == CRK_OK, "generate: %s",
          crk_last_error_message());
    CHECK(crk_ensemble_new(tr, &params, energy, N_E, &ensemble) == CRK_OK, "ensemble_new");
    CHECK(crk_ensemble_run(ensemble, 42, 10, 4, 1, again, NULL, NULL) == CRK_OK, "run");
    CHECK(memcmp(flux, again, sizeof flux) == 0, "thread count changed the result");

    /* Realisation 12 equals the summation kernel on its own sources. */
    CHECK(crk_ensemble_sources(ensemble, 42, 12, NULL, NULL, 0, &n_sources) == CRK_OK && n_sources > 0,
          "source count %zu", n_sources);
    distance = malloc(n_sources * sizeof *distance);
    age = malloc(n_sources * sizeof *age);
    expect_error(crk_ensemble_sources(ensemble, 42, 12, distance, age, n_sources - 1, &n_sources),
                 CRK_ERR_INVALID_ARGUMENT, "capacity too small");
    CHECK(crk_ensemble_sources(ensemble, 42, 12, distance, age, n_sources, &n_sources) == CRK_OK, "sources");
    CHECK(crk_flux_from_sources(tr, &params.spectrum, distance, age, n_sources, energy, N_E, row) == CRK_OK,
          "flux_from_sources");
    for (i = 0; i < N_E; ++i)
        CHECK(fabs(row[i] / flux[2 * N_E + i] - 1.0) < 1e-12, "energy %zu: %.17g vs %.17g", i, row[i],
              flux[2 * N_E + i]);

    /* Cancellation: a distinct status; rows are either finished (equal) or NaN. */
    {
        enum { N = 32 };
        static double big[N * N_E], ref[N * N_E];
        size_t r;
        CHECK(crk_ensemble_run(ensemble, 1, 0, N, 2, ref, NULL, NULL) == CRK_OK, "reference run");
        expect_error(crk_ensemble_run(ensemble, 1, 0, N, 2, big, cancel_after_first, &user_calls),
                     CRK_ERR_CANCELLED, "cancelled run");
        CHECK(user_calls >= 1 && calls == user_calls, "callback calls %d", user_calls);
        for (r = 0; r < N; ++r) {
            int nan_row = isnan(big[r * N_E]), same = memcmp(big + r * N_E, ref + r * N_E, N_E * sizeof(double)) == 0;
            CHECK(nan_row || same, "row %zu neither finished nor NaN", r);
        }
    }

    /* The f32 tier: the same sources, each flux within 1e-5 of the exact tier's, the same bits
       on one and two threads; an unknown precision is refused. */
    {
        crk_ensemble *single = NULL, *refused = (crk_ensemble *)&calls;
        double one[4 * N_E], two[4 * N_E];
        size_t n_single = 0;
        CHECK(crk_ensemble_new_with_precision(tr, &params, energy, N_E, CRK_PRECISION_F32, &single) == CRK_OK,
              "f32 ensemble: %s", crk_last_error_message());
        CHECK(crk_ensemble_run(single, 42, 10, 4, 1, one, NULL, NULL) == CRK_OK, "f32 run");
        CHECK(crk_ensemble_run(single, 42, 10, 4, 2, two, NULL, NULL) == CRK_OK, "f32 run, 2 threads");
        CHECK(memcmp(one, two, sizeof one) == 0, "f32 tier: thread count changed the result");
        for (i = 0; i < 4 * N_E; ++i)
            CHECK(fabs(one[i] / flux[i] - 1.0) < 1e-5, "f32 value %zu: %.17g vs %.17g", i, one[i], flux[i]);
        CHECK(crk_ensemble_sources(single, 42, 12, NULL, NULL, 0, &n_single) == CRK_OK && n_single == n_sources,
              "f32 tier: %zu sources, exact %zu", n_single, n_sources);
        crk_ensemble_free(single);
        expect_error(crk_ensemble_new_with_precision(tr, &params, energy, N_E, 2, &refused),
                     CRK_ERR_INVALID_ARGUMENT, "unknown precision");
        CHECK(refused == NULL, "a refused handle is set to NULL");
        CHECK(crk_ensemble_new_with_precision(tr, &params, energy, N_E, CRK_PRECISION_EXACT, &single) == CRK_OK,
              "exact ensemble");
        CHECK(crk_ensemble_run(single, 42, 10, 4, 2, two, NULL, NULL) == CRK_OK, "exact run");
        CHECK(memcmp(flux, two, sizeof two) == 0, "CRK_PRECISION_EXACT differs from crk_ensemble_new");
        crk_ensemble_free(single);
    }

    /* Bad input. */
    expect_error(crk_ensemble_generate(NULL, &params, energy, N_E, 1, 0, 1, 1, flux), CRK_ERR_NULL_POINTER, "null tr");
    expect_error(crk_ensemble_generate(tr, NULL, energy, N_E, 1, 0, 1, 1, flux), CRK_ERR_NULL_POINTER, "null params");
    expect_error(crk_ensemble_generate(tr, &params, NULL, N_E, 1, 0, 1, 1, flux), CRK_ERR_NULL_POINTER, "null E");
    expect_error(crk_ensemble_generate(tr, &params, energy, N_E, 1, 0, 1, 1, NULL), CRK_ERR_NULL_POINTER, "null flux");
    params.spatial = 7;
    expect_error(crk_ensemble_generate(tr, &params, energy, N_E, 1, 0, 1, 1, flux), CRK_ERR_INVALID_ARGUMENT,
                 "unknown spatial model");
    params.spatial = CRK_SPATIAL_UNIFORM_DISC;
    params.t_max_Myr = 0.0;
    expect_error(crk_ensemble_generate(tr, &params, energy, N_E, 1, 0, 1, 1, flux), CRK_ERR_INVALID_ARGUMENT, "t_max");
    params.t_max_Myr = 7.0;
    params.s_max_kpc = -1.0;
    expect_error(crk_ensemble_generate(tr, &params, energy, N_E, 1, 0, 1, 1, flux), CRK_ERR_INVALID_ARGUMENT, "s_max");
    params.s_max_kpc = 10.0;
    params.sn_rate_per_Myr = nan("");
    expect_error(crk_ensemble_generate(tr, &params, energy, N_E, 1, 0, 1, 1, flux), CRK_ERR_INVALID_ARGUMENT, "rate");
    params.sn_rate_per_Myr = 4e3;
    params.poisson_count = 2;
    expect_error(crk_ensemble_generate(tr, &params, energy, N_E, 1, 0, 1, 1, flux), CRK_ERR_INVALID_ARGUMENT,
                 "poisson_count");
    params.poisson_count = 1;
    energy[0] = 50.0; /* below the transport table */
    expect_error(crk_ensemble_generate(tr, &params, energy, N_E, 1, 0, 1, 1, flux), CRK_ERR_OUT_OF_DOMAIN,
                 "energy outside the table");
    energy[0] = 251.0;
    distance[0] = -1.0;
    expect_error(crk_flux_from_sources(tr, &params.spectrum, distance, age, n_sources, energy, N_E, row),
                 CRK_ERR_INVALID_ARGUMENT, "negative distance");
    distance[0] = 1.0;
    age[0] = nan("");
    expect_error(crk_flux_from_sources(tr, &params.spectrum, distance, age, n_sources, energy, N_E, row),
                 CRK_ERR_INVALID_ARGUMENT, "NaN age");
    expect_error(crk_flux_from_sources(tr, &params.spectrum, NULL, age, n_sources, energy, N_E, row),
                 CRK_ERR_NULL_POINTER, "null distances");
    CHECK(crk_flux_from_sources(tr, &params.spectrum, NULL, NULL, 0, energy, N_E, row) == CRK_OK && row[0] == 0.0,
          "no sources: zero flux");

    /* The GPU path: with no device (no driver, no GPU, or a build without `cuda`) the count
       is 0 and every GPU call says why; with one, the GPU's realisations are the CPU's. */
    {
        int32_t count = -1;
        char name[64];
        double gpu[4 * N_E];
        CHECK(crk_device_count(&count) == CRK_OK && count >= 0, "device count");
        expect_error(crk_device_count(NULL), CRK_ERR_NULL_POINTER, "device count into NULL");
        expect_error(crk_device_info(-1, name, sizeof name, NULL, NULL, NULL, NULL), CRK_ERR_NO_DEVICE,
                     "negative device");
        expect_error(crk_ensemble_run_gpu(NULL, 0, 42, 10, 4, gpu), CRK_ERR_NULL_POINTER, "GPU run, no ensemble");
        expect_error(crk_ensemble_run_gpu_device(ensemble, 0, 42, 10, 4, NULL), CRK_ERR_NULL_POINTER,
                     "GPU run into a NULL device pointer");
        if (count == 0) {
            expect_error(crk_device_info(0, name, sizeof name, NULL, NULL, NULL, NULL), CRK_ERR_NO_DEVICE,
                         "device info without a device");
            expect_error(crk_ensemble_run_gpu(ensemble, 0, 42, 10, 4, gpu), CRK_ERR_NO_DEVICE, "GPU run without a device");
            expect_error(crk_ensemble_generate_gpu(tr, &params, energy, N_E, 42, 10, 4, 0, gpu), CRK_ERR_NO_DEVICE,
                         "GPU generate without a device");
        } else {
            uint64_t total = 0;
            CHECK(crk_device_info(0, name, sizeof name, &total, NULL, NULL, NULL) == CRK_OK && total > 0, "device info");
            CHECK(crk_ensemble_run_gpu(ensemble, 0, 42, 10, 4, gpu) == CRK_OK, "GPU run: %s", crk_last_error_message());
            for (i = 0; i < 4 * N_E; ++i)
                CHECK(fabs(gpu[i] / flux[i] - 1.0) < 1e-12, "GPU value %zu: %.17g vs %.17g", i, gpu[i], flux[i]);
        }
        expect_error(crk_ensemble_run_gpu(ensemble, count + 5, 42, 10, 4, gpu), CRK_ERR_NO_DEVICE, "missing device");
        /* The f32 tier on the GPU: within its 1e-5 of the exact realisations, or no device. */
        {
            crk_ensemble *single = NULL;
            CHECK(crk_ensemble_new_with_precision(tr, &params, energy, N_E, CRK_PRECISION_F32, &single) == CRK_OK,
                  "f32 ensemble: %s", crk_last_error_message());
            if (count == 0) {
                expect_error(crk_ensemble_run_gpu(single, 0, 42, 10, 4, gpu), CRK_ERR_NO_DEVICE,
                             "f32 GPU run without a device");
            } else {
                CHECK(crk_ensemble_run_gpu(single, 0, 42, 10, 4, gpu) == CRK_OK, "f32 GPU run: %s",
                      crk_last_error_message());
                for (i = 0; i < 4 * N_E; ++i)
                    CHECK(fabs(gpu[i] / flux[i] - 1.0) < 1e-5, "f32 GPU value %zu: %.17g vs %.17g", i, gpu[i], flux[i]);
            }
            crk_ensemble_free(single);
        }
    }

    free(distance);
    free(age);
    crk_ensemble_free(ensemble);
    crk_ensemble_free(NULL);
    crk_transport_free(tr);
    crk_losses_free(losses);
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("C ensemble tests passed\n");
    return 0;
}

/* The classifier two-sample test (SECRET section 3.2.2) from C: defaults, two separated
 * Gaussian samples (accuracy near the Bayes value Phi(delta/2)), the same distribution (near
 * 0.5), determinism, and bad input (status, message, nothing written). */
#include "crkernels.h"

#include <math.h>
#include <stdint.h>
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

/* A small xorshift generator and Box-Muller: independent of the library's Philox. */
static uint64_t state = 88172645463325252ull;
static double uniform01(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return ((double)(state >> 11) + 0.5) / 9007199254740992.0;
}
static double normal(void) {
    return sqrt(-2.0 * log(uniform01())) * cos(6.283185307179586 * uniform01());
}

enum { N = 5000, D = 3 };

int main(void) {
    static float a[N * D], b[N * D];
    crk_two_sample_options o;
    crk_two_sample_report r, r2, untouched;
    size_t i;

    crk_two_sample_options_default(&o);
    CHECK(o.n_hidden_layers == 1 && o.hidden_units[0] == 32, "default architecture");
    CHECK(o.max_epochs == 100 && o.learning_rate == 1e-3 && o.batch_size == 50, "default training");
    CHECK(o.validation_fraction == 0.1 && o.test_fraction == 0.1 && o.patience == 0, "default split");
    crk_two_sample_options_default(NULL);

    /* delta = 1 on the first coordinate: Bayes accuracy Phi(1/2) = 0.6915. */
    for (i = 0; i < N * D; ++i) {
        a[i] = (float)normal();
        b[i] = (float)(normal() + (i % D == 0 ? 1.0 : 0.0));
    }
    o.max_epochs = 10;
    o.test_fraction = 0.2;
    o.seed = 7;
    CHECK(crk_two_sample_test(a, N, b, N, D, &o, &r) == CRK_OK, "two-sample: %s", crk_last_error_message());
    CHECK(r.n_per_class == N && r.n_test == 2000 && r.n_validation == 1000 && r.n_train == 7000, "counts");
    {
        double se = sqrt(0.6915 * 0.3085 / (double)r.n_test);
        CHECK(fabs(r.test_accuracy - 0.6915) < 4.0 * se, "accuracy %g vs Bayes 0.6915 (SE %g)", r.test_accuracy, se);
    }
    CHECK(crk_two_sample_test(a, N, b, N, D, &o, &r2) == CRK_OK && memcmp(&r, &r2, sizeof r) == 0,
          "same seed, same report");

    /* Both from N(0, I): accuracy 0.5 within 3 null standard errors. */
    for (i = 0; i < N * D; ++i) b[i] = (float)normal();
    CHECK(crk_two_sample_test(a, N, b, N, D, &o, &r) == CRK_OK, "null: %s", crk_last_error_message());
    CHECK(fabs(r.test_accuracy - 0.5) < 3.0 * r.null_standard_error, "null accuracy %g +- %g", r.test_accuracy,
          r.null_standard_error);

    /* Bad input: a status, a message, nothing written. */
    memset(&untouched, 0xAB, sizeof untouched);
    r = untouched;
    expect_error(crk_two_sample_test(NULL, N, b, N, D, &o, &r), CRK_ERR_NULL_POINTER, "NULL a");
    expect_error(crk_two_sample_test(a, N, NULL, N, D, &o, &r), CRK_ERR_NULL_POINTER, "NULL b");
    expect_error(crk_two_sample_test(a, N, b, N, D, &o, NULL), CRK_ERR_NULL_POINTER, "NULL report");
    expect_error(crk_two_sample_test(a, N, b, N, 0, &o, &r), CRK_ERR_INVALID_ARGUMENT, "0 features");
    expect_error(crk_two_sample_test(a, 10, b, N, D, &o, &r), CRK_ERR_INVALID_ARGUMENT, "too few rows");
    a[5] = NAN;
    expect_error(crk_two_sample_test(a, N, b, N, D, &o, &r), CRK_ERR_INVALID_ARGUMENT, "NaN");
    a[5] = INFINITY;
    expect_error(crk_two_sample_test(a, N, b, N, D, &o, &r), CRK_ERR_INVALID_ARGUMENT, "infinity");
    a[5] = 0.0f;
    for (i = 1; i < N * D; i += D) a[i] = b[i] = 1.5f;
    expect_error(crk_two_sample_test(a, N, b, N, D, &o, &r), CRK_ERR_INVALID_ARGUMENT, "zero variance");
    for (i = 1; i < N * D; i += D) a[i] = (float)normal();
    {
        crk_two_sample_options bad = o;
        bad.n_hidden_layers = 0;
        expect_error(crk_two_sample_test(a, N, b, N, D, &bad, &r), CRK_ERR_INVALID_ARGUMENT, "0 layers");
        bad.n_hidden_layers = 9;
        expect_error(crk_two_sample_test(a, N, b, N, D, &bad, &r), CRK_ERR_INVALID_ARGUMENT, "9 layers");
        bad = o;
        bad.hidden_units[0] = 0;
        expect_error(crk_two_sample_test(a, N, b, N, D, &bad, &r), CRK_ERR_INVALID_ARGUMENT, "0 units");
        bad = o;
        bad.batch_size = 0;
        expect_error(crk_two_sample_test(a, N, b, N, D, &bad, &r), CRK_ERR_INVALID_ARGUMENT, "batch 0");
        bad = o;
        bad.learning_rate = 0.0;
        expect_error(crk_two_sample_test(a, N, b, N, D, &bad, &r), CRK_ERR_INVALID_ARGUMENT, "lr 0");
        bad.learning_rate = NAN;
        expect_error(crk_two_sample_test(a, N, b, N, D, &bad, &r), CRK_ERR_INVALID_ARGUMENT, "lr NaN");
        bad = o;
        bad.test_fraction = 0.0;
        expect_error(crk_two_sample_test(a, N, b, N, D, &bad, &r), CRK_ERR_INVALID_ARGUMENT, "test fraction 0");
        bad = o;
        bad.validation_fraction = 1.0;
        expect_error(crk_two_sample_test(a, N, b, N, D, &bad, &r), CRK_ERR_INVALID_ARGUMENT, "validation 1");
    }
    CHECK(memcmp(&r, &untouched, sizeof r) == 0, "a failed call wrote the report");

    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("test_classifier: all passed\n");
    return 0;
}

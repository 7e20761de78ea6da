/* The C contract of issue 4: the MADE emulator (load from a file and a buffer, sizes, order,
 * log-densities, samples, conditional samples, saving) and the 1-D mixture kernels, and bad input
 * from C: NULL pointers, n = 0, corrupt buffers, NaN input. Run from the package root. */
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

static void expect_error(crk_status got, crk_status want, const char *mention, const char *what) {
    CHECK(got == want, "%s: status %d, want %d (%s)", what, (int)got, (int)want, crk_last_error_message());
    CHECK(strlen(crk_last_error_message()) > 0, "%s: empty error message", what);
    if (mention != NULL) {
        CHECK(strstr(crk_last_error_message(), mention) != NULL, "%s: message '%s' does not name '%s'", what,
              crk_last_error_message(), mention);
    }
}

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    unsigned char *bytes;
    long size;
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    bytes = (unsigned char *)malloc((size_t)size);
    if (bytes != NULL && fread(bytes, 1, (size_t)size, f) != (size_t)size) {
        free(bytes);
        bytes = NULL;
    }
    fclose(f);
    *len = (size_t)size;
    return bytes;
}

#define MODEL "tests/data/made/plain_h2_relu_k10_ctx0_std.safetensors"
#define N 40

int main(void) {
    crk_made *made = NULL, *from_buffer = NULL, *bad = (crk_made *)&failures;
    size_t n_context = 0, n_dims = 0, n_components = 0, order[8], i, j, len = 0;
    float context[N * 3], x[N * 8], again[N * 8], lp1[N], lp2[N], lp3[N];
    size_t given_dims[2];
    unsigned char *bytes;

    CHECK(crk_made_load(MODEL, &made) == CRK_OK, "load: %s", crk_last_error_message());
    if (made == NULL) return 1;
    CHECK(crk_made_dims(made, &n_context, &n_dims, &n_components) == CRK_OK, "dims");
    CHECK(n_context == 3 && n_dims == 5 && n_components == 10, "dims %zu %zu %zu", n_context, n_dims, n_components);
    CHECK(crk_made_order(made, order) == CRK_OK, "order");

    for (i = 0; i < N * n_context; ++i) context[i] = (float)sin(0.37 * (double)i);
    /* Samples: the same on 1 and 2 threads, and for the same seed. */
    CHECK(crk_made_sample(made, context, N, 42, 1, x) == CRK_OK, "sample: %s", crk_last_error_message());
    CHECK(crk_made_sample(made, context, N, 42, 2, again) == CRK_OK, "sample 2 threads");
    CHECK(memcmp(x, again, sizeof(float) * N * n_dims) == 0, "samples depend on the thread count");
    for (i = 0; i < N * n_dims; ++i) CHECK(isfinite(x[i]), "sample %zu not finite", i);

    /* Log-densities: finite, the same on any thread count and for a model loaded from memory. */
    CHECK(crk_made_log_prob(made, context, x, N, 1, lp1) == CRK_OK, "log_prob: %s", crk_last_error_message());
    CHECK(crk_made_log_prob(made, context, x, N, 2, lp2) == CRK_OK, "log_prob 2 threads");
    CHECK(memcmp(lp1, lp2, sizeof lp1) == 0, "log_prob depends on the thread count");
    for (i = 0; i < N; ++i) CHECK(isfinite(lp1[i]) && lp1[i] < 100.0f, "log_prob %zu = %g", i, lp1[i]);
    bytes = read_file(MODEL, &len);
    CHECK(bytes != NULL, "read " MODEL);
    if (bytes != NULL) {
        CHECK(crk_made_load_buffer(bytes, len, &from_buffer) == CRK_OK, "load_buffer: %s", crk_last_error_message());
        CHECK(crk_made_log_prob(from_buffer, context, x, N, 0, lp3) == CRK_OK, "log_prob buffer model");
        CHECK(memcmp(lp1, lp3, sizeof lp1) == 0, "file and buffer models differ");
        /* A truncated or corrupt buffer: CRK_ERR_FORMAT, out set to NULL. */
        bad = (crk_made *)&failures;
        expect_error(crk_made_load_buffer(bytes, len / 2, &bad), CRK_ERR_FORMAT, NULL, "truncated buffer");
        CHECK(bad == NULL, "out not cleared on failure");
        bytes[3] ^= 0x40;
        expect_error(crk_made_load_buffer(bytes, len, &bad), CRK_ERR_FORMAT, NULL, "corrupt header size");
        free(bytes);
    }

    /* Gradients of log p (issue 16): log_prob equals crk_made_log_prob's, the same on any thread count,
     * a central difference of log_prob agrees in sign and size; bad input writes nothing. */
    {
        static float gc1[N * 3], gx1[N * 8], gc2[N * 3], gx2[N * 8], step[N * 8];
        float up[2], down[2], h = 1e-2f;
        CHECK(crk_made_log_prob_grad(made, context, x, N, 1, lp3, gc1, gx1) == CRK_OK, "log_prob_grad: %s",
              crk_last_error_message());
        CHECK(memcmp(lp1, lp3, sizeof lp1) == 0, "log_prob_grad's log_prob differs from crk_made_log_prob");
        CHECK(crk_made_log_prob_grad(made, context, x, N, 2, NULL, gc2, gx2) == CRK_OK, "log_prob_grad 2 threads");
        CHECK(memcmp(gc1, gc2, sizeof(float) * N * n_context) == 0 && memcmp(gx1, gx2, sizeof(float) * N * n_dims) == 0,
              "log_prob_grad depends on the thread count");
        memcpy(step, x, sizeof(float) * n_dims);
        step[1] = x[1] + h;
        CHECK(crk_made_log_prob(made, context, step, 1, 1, up) == CRK_OK, "log_prob up");
        step[1] = x[1] - h;
        CHECK(crk_made_log_prob(made, context, step, 1, 1, down) == CRK_OK, "log_prob down");
        CHECK(fabs((up[0] - down[0]) / (2.0 * h) - gx1[1]) <= 1e-2 * (1.0 + fabs(gx1[1])), "grad_x %g vs difference %g",
              gx1[1], (up[0] - down[0]) / (2.0 * h));
        gx2[0] = 123.0f;
        expect_error(crk_made_log_prob_grad(made, NULL, x, N, 1, NULL, NULL, gx2), CRK_ERR_NULL_POINTER, "context",
                     "grad NULL context");
        expect_error(crk_made_log_prob_grad(made, context, NULL, N, 1, NULL, NULL, gx2), CRK_ERR_NULL_POINTER, "x",
                     "grad NULL x");
        expect_error(crk_made_log_prob_grad(made, context, x, 0, 1, NULL, NULL, gx2), CRK_ERR_INVALID_ARGUMENT, "n = 0",
                     "grad n = 0");
        CHECK(gx2[0] == 123.0f, "log_prob_grad wrote its output on bad input");
    }

    /* Saving (issue 16): the saved file loads to the same log-densities, bit for bit; NULL
     * pointers, a directory and an nflows model (not storable in the plain layout) are refused. */
    {
        crk_made *saved = NULL, *nflows = NULL;
        const char *tmp = getenv("TMPDIR");
        char path[4096];
        snprintf(path, sizeof path, "%s/crk_test_made_saved.safetensors", tmp != NULL && *tmp ? tmp : "/tmp");
        CHECK(crk_made_save(made, path) == CRK_OK, "save: %s", crk_last_error_message());
        CHECK(crk_made_load(path, &saved) == CRK_OK, "load the saved model: %s", crk_last_error_message());
        CHECK(crk_made_log_prob(saved, context, x, N, 1, lp3) == CRK_OK, "log_prob saved model");
        CHECK(memcmp(lp1, lp3, sizeof lp1) == 0, "the saved model differs from the original");
        crk_made_free(saved);
        remove(path);
        expect_error(crk_made_save(NULL, path), CRK_ERR_NULL_POINTER, "m", "save NULL model");
        expect_error(crk_made_save(made, NULL), CRK_ERR_NULL_POINTER, "path", "save NULL path");
        expect_error(crk_made_save(made, "tests"), CRK_ERR_IO, "tests", "save to a directory");
        CHECK(crk_made_load("tests/data/made/nflows_sbi_ctx_2blk_k5.safetensors", &nflows) == CRK_OK,
              "load nflows: %s", crk_last_error_message());
        expect_error(crk_made_save(nflows, path), CRK_ERR_INVALID_ARGUMENT, "plain", "save an nflows model");
        crk_made_free(nflows);
    }

    /* Conditional sampling: the first two dimensions of the order keep their values. */
    given_dims[0] = order[1];
    given_dims[1] = order[0];
    memcpy(again, x, sizeof(float) * N * n_dims);
    CHECK(crk_made_sample_given(made, context, given_dims, 2, N, 7, 2, again) == CRK_OK, "sample_given: %s",
          crk_last_error_message());
    for (i = 0; i < N; ++i) {
        for (j = 0; j < 2; ++j) CHECK(again[i * n_dims + order[j]] == x[i * n_dims + order[j]], "given value changed");
    }
    given_dims[0] = order[2];
    expect_error(crk_made_sample_given(made, context, given_dims, 2, N, 7, 1, again), CRK_ERR_INVALID_ARGUMENT,
                 "autoregressive order", "given dims not leading");

    /* Splitting a sample (issue 17): row r of the sample with seed s is drawn from the Philox
     * stream (s, r), so 5000 rows in one call equal calls of 1234 and 3766 rows with first_row 0
     * and 1234, bit for bit, on any thread count; crk_made_sample is crk_made_sample_from with
     * first_row 0; first_row + n past 2^64 and NULL pointers are refused, nothing written. */
    {
        enum { ROWS = 5000, HEAD = 1234 };
        static float ctx[ROWS * 3], whole[ROWS * 5], split[ROWS * 5], other[ROWS * 5];
        const uint64_t seed = 20250117u;
        size_t given1[1];
        CHECK(n_context == 3 && n_dims == 5, "the split test assumes 3 context inputs and 5 dimensions");
        for (i = 0; i < ROWS * 3; ++i) ctx[i] = (float)cos(0.011 * (double)i);
        CHECK(crk_made_sample_from(made, ctx, ROWS, seed, 0, 1, whole) == CRK_OK, "sample_from: %s",
              crk_last_error_message());
        CHECK(crk_made_sample_from(made, ctx, HEAD, seed, 0, 2, split) == CRK_OK, "sample_from head: %s",
              crk_last_error_message());
        CHECK(crk_made_sample_from(made, ctx + HEAD * 3, ROWS - HEAD, seed, HEAD, 2, split + HEAD * 5) == CRK_OK,
              "sample_from tail: %s", crk_last_error_message());
        CHECK(memcmp(whole, split, sizeof whole) == 0, "a sample split at row %d differs from one call", HEAD);
        CHECK(crk_made_sample_from(made, ctx, ROWS, seed, 0, 3, other) == CRK_OK, "sample_from 3 threads");
        CHECK(memcmp(whole, other, sizeof whole) == 0, "sample_from on 3 threads differs from 1 thread");
        CHECK(crk_made_sample(made, ctx, ROWS, seed, 3, other) == CRK_OK, "sample");
        CHECK(memcmp(whole, other, sizeof whole) == 0, "crk_made_sample differs from crk_made_sample_from at 0");
        CHECK(crk_made_sample_from(made, ctx + HEAD * 3, ROWS - HEAD, seed, 0, 1, other) == CRK_OK, "sample_from");
        CHECK(memcmp(split + HEAD * 5, other, sizeof(float) * (ROWS - HEAD) * 5) != 0,
              "first_row is ignored: the tail drawn from row 0 equals the tail drawn from row %d", HEAD);

        /* The same for conditional samples. */
        given1[0] = order[0];
        memcpy(split, whole, sizeof whole);
        for (i = 0; i < ROWS; ++i) split[i * 5 + order[0]] = 0.125f;
        memcpy(other, split, sizeof whole);
        CHECK(crk_made_sample_given_from(made, ctx, given1, 1, ROWS, seed, 0, 1, split) == CRK_OK,
              "sample_given_from: %s", crk_last_error_message());
        CHECK(crk_made_sample_given_from(made, ctx, given1, 1, HEAD, seed, 0, 3, other) == CRK_OK,
              "sample_given_from head: %s", crk_last_error_message());
        CHECK(crk_made_sample_given_from(made, ctx + HEAD * 3, given1, 1, ROWS - HEAD, seed, HEAD, 3,
                                         other + HEAD * 5) == CRK_OK,
              "sample_given_from tail: %s", crk_last_error_message());
        CHECK(memcmp(split, other, sizeof whole) == 0, "a conditional sample split at row %d differs from one call",
              HEAD);
        for (i = 0; i < ROWS; ++i) CHECK(split[i * 5 + order[0]] == 0.125f, "given value changed in row %zu", i);

        /* Row numbers: the last ones below 2^64 are fine; past 2^64 is an error, nothing written. */
        CHECK(crk_made_sample_from(made, ctx, 100, seed, UINT64_MAX - 100, 1, other) == CRK_OK,
              "sample_from up to row 2^64 - 1: %s", crk_last_error_message());
        other[0] = 123.0f;
        expect_error(crk_made_sample_from(made, ctx, 100, seed, UINT64_MAX - 10, 1, other), CRK_ERR_INVALID_ARGUMENT,
                     "overflow", "sample_from rows past 2^64");
        expect_error(crk_made_sample_given_from(made, ctx, given1, 1, 100, seed, UINT64_MAX - 10, 1, other),
                     CRK_ERR_INVALID_ARGUMENT, "overflow", "sample_given_from rows past 2^64");
        expect_error(crk_made_sample_gpu_from(made, 0, ctx, 100, seed, UINT64_MAX - 10, other),
                     CRK_ERR_INVALID_ARGUMENT, "overflow", "sample_gpu_from rows past 2^64");
        expect_error(crk_made_sample_given_gpu_from(made, 0, ctx, given1, 1, 100, seed, UINT64_MAX - 10, other),
                     CRK_ERR_INVALID_ARGUMENT, "overflow", "sample_given_gpu_from rows past 2^64");
        expect_error(crk_made_sample_gpu_device_from(made, 0, ctx, 100, seed, UINT64_MAX - 10, other),
                     CRK_ERR_INVALID_ARGUMENT, "overflow", "sample_gpu_device_from rows past 2^64");
        CHECK(other[0] == 123.0f, "sample_from wrote its output on an overflow");
        expect_error(crk_made_sample_from(NULL, ctx, 100, seed, 5, 1, other), CRK_ERR_NULL_POINTER, "m",
                     "sample_from NULL model");
        expect_error(crk_made_sample_from(made, NULL, 100, seed, 5, 1, other), CRK_ERR_NULL_POINTER, "context",
                     "sample_from NULL context");
        expect_error(crk_made_sample_from(made, ctx, 100, seed, 5, 1, NULL), CRK_ERR_NULL_POINTER, "x_out",
                     "sample_from NULL x_out");
        expect_error(crk_made_sample_from(made, ctx, 0, seed, 5, 1, other), CRK_ERR_INVALID_ARGUMENT, "n = 0",
                     "sample_from n = 0");
        expect_error(crk_made_sample_given_from(NULL, ctx, given1, 1, 100, seed, 5, 1, other), CRK_ERR_NULL_POINTER,
                     "m", "sample_given_from NULL model");
        expect_error(crk_made_sample_given_from(made, ctx, NULL, 1, 100, seed, 5, 1, other), CRK_ERR_NULL_POINTER,
                     "given_dims", "sample_given_from NULL given_dims");
        expect_error(crk_made_sample_given_from(made, ctx, given1, 1, 100, seed, 5, 1, NULL), CRK_ERR_NULL_POINTER,
                     "x", "sample_given_from NULL x");
        CHECK(other[0] == 123.0f, "sample_from wrote its output on bad input");
        /* Without a device, the GPU variants get past the argument checks to CRK_ERR_NO_DEVICE. */
        expect_error(crk_made_sample_gpu_from(made, 0, ctx, 100, seed, HEAD, other), CRK_ERR_NO_DEVICE, "GPU",
                     "sample_gpu_from");
        expect_error(crk_made_sample_given_gpu_from(made, 0, ctx, given1, 1, 100, seed, HEAD, other),
                     CRK_ERR_NO_DEVICE, "GPU", "sample_given_gpu_from");
        expect_error(crk_made_sample_gpu_device_from(made, 0, ctx, 100, seed, HEAD, other), CRK_ERR_NO_DEVICE, "GPU",
                     "sample_gpu_device_from");
        expect_error(crk_made_sample_gpu_from(made, 0, ctx, 100, seed, HEAD, NULL), CRK_ERR_NULL_POINTER, "x_out",
                     "sample_gpu_from NULL x_out");
    }

    /* The GPU variants (issue 7): this library has no CUDA device (the C tests build it without the
     * `cuda` feature), so every call that gets past the argument checks says CRK_ERR_NO_DEVICE;
     * bad arguments are reported first, and nothing is written. */
    {
        int32_t devices = -1;
        CHECK(crk_device_count(&devices) == CRK_OK && devices == 0, "device count %d", (int)devices);
        lp3[0] = 123.0f;
        expect_error(crk_made_log_prob_gpu(made, 0, context, x, N, lp3), CRK_ERR_NO_DEVICE, "GPU", "log_prob_gpu");
        CHECK(lp3[0] == 123.0f, "log_prob_gpu wrote its output without a device");
        expect_error(crk_made_sample_gpu(made, 0, context, N, 42, again), CRK_ERR_NO_DEVICE, "GPU", "sample_gpu");
        given_dims[0] = order[0];
        expect_error(crk_made_sample_given_gpu(made, 0, context, given_dims, 1, N, 42, again), CRK_ERR_NO_DEVICE,
                     "GPU", "sample_given_gpu");
        expect_error(crk_made_log_prob_gpu(made, -1, context, x, N, lp3), CRK_ERR_NO_DEVICE, "negative",
                     "negative device");
        /* Device pointers are never dereferenced on the host: any non-NULL address reaches the
         * device check. */
        expect_error(crk_made_log_prob_gpu_device(made, 0, context, x, N, lp3), CRK_ERR_NO_DEVICE, "GPU",
                     "log_prob_gpu_device");
        expect_error(crk_made_sample_gpu_device(made, 0, context, N, 42, again), CRK_ERR_NO_DEVICE, "GPU",
                     "sample_gpu_device");
        expect_error(crk_made_log_prob_gpu(NULL, 0, context, x, N, lp3), CRK_ERR_NULL_POINTER, "m", "GPU NULL model");
        expect_error(crk_made_log_prob_gpu(made, 0, context, x, 0, lp3), CRK_ERR_INVALID_ARGUMENT, "n = 0",
                     "GPU n = 0");
        expect_error(crk_made_log_prob_gpu(made, 0, context, NULL, N, lp3), CRK_ERR_NULL_POINTER, "x", "GPU NULL x");
        expect_error(crk_made_sample_gpu(made, 0, context, N, 42, NULL), CRK_ERR_NULL_POINTER, "x_out",
                     "GPU NULL x_out");
        expect_error(crk_made_log_prob_gpu_device(made, 0, context, NULL, N, lp3), CRK_ERR_NULL_POINTER, "x",
                     "GPU device NULL x");
        expect_error(crk_made_sample_gpu_device(made, 0, context, 0, 42, again), CRK_ERR_INVALID_ARGUMENT, "n = 0",
                     "GPU device n = 0");
        memcpy(again, x, sizeof(float) * N * n_dims);
        again[2 * n_dims + 1] = (float)NAN;
        expect_error(crk_made_log_prob_gpu(made, 0, context, again, N, lp3), CRK_ERR_INVALID_ARGUMENT, "x[2][1]",
                     "GPU NaN in x");
        CHECK(lp3[0] == 123.0f, "log_prob_gpu wrote its output on bad input");
    }

    /* Bad input. */
    expect_error(crk_made_load(NULL, &bad), CRK_ERR_NULL_POINTER, "path", "NULL path");
    expect_error(crk_made_load(MODEL, NULL), CRK_ERR_NULL_POINTER, "out", "NULL out");
    expect_error(crk_made_load("tests/data/made/no_such_model.safetensors", &bad), CRK_ERR_IO, "no_such_model",
                 "missing file");
    expect_error(crk_made_load("tests/data/made/bad_format.safetensors", &bad), CRK_ERR_FORMAT, "format",
                 "wrong format string");
    expect_error(crk_made_load("tests/data/made/bad_degrees.safetensors", &bad), CRK_ERR_FORMAT, "hidden.0.degrees",
                 "inconsistent degrees");
    expect_error(crk_made_load("tests/data/made/bad_context_degree.safetensors", &bad), CRK_ERR_FORMAT,
                 "degrees.input", "context degree among data degrees");
    expect_error(crk_made_load_buffer(NULL, 10, &bad), CRK_ERR_NULL_POINTER, "bytes", "NULL buffer");
    expect_error(crk_made_dims(NULL, &n_context, NULL, NULL), CRK_ERR_NULL_POINTER, "m", "NULL model");
    expect_error(crk_made_log_prob(made, context, x, 0, 1, lp1), CRK_ERR_INVALID_ARGUMENT, "n = 0", "n = 0");
    expect_error(crk_made_sample(made, context, 0, 1, 1, x), CRK_ERR_INVALID_ARGUMENT, "n = 0", "sample n = 0");
    expect_error(crk_made_log_prob(made, NULL, x, N, 1, lp1), CRK_ERR_NULL_POINTER, "context", "NULL context");
    expect_error(crk_made_log_prob(made, context, NULL, N, 1, lp1), CRK_ERR_NULL_POINTER, "x", "NULL x");
    expect_error(crk_made_log_prob(made, context, x, N, 1, NULL), CRK_ERR_NULL_POINTER, "log_prob", "NULL out");
    x[3 * n_dims + 2] = (float)NAN;
    lp1[0] = 123.0f;
    expect_error(crk_made_log_prob(made, context, x, N, 2, lp1), CRK_ERR_INVALID_ARGUMENT, "x[3][2]", "NaN in x");
    CHECK(lp1[0] == 123.0f, "output written on failure");
    context[5] = (float)INFINITY;
    expect_error(crk_made_sample(made, context, N, 1, 1, again), CRK_ERR_INVALID_ARGUMENT, "context[1][2]",
                 "infinite context");

    /* The 1-D mixture kernels: one Gaussian N(1, 2^2) and a two-component mixture. */
    {
        double logit[2] = {0.0, 0.5}, mean[2] = {1.0, -2.0}, log_scale[2] = {0.69314718055994531, 0.0};
        double at[3] = {1.0, 3.0, 1e6}, out[3], p[2] = {0.5, 0.9}, q[2], draws[1000], sum = 0.0;
        CHECK(crk_mixture_log_pdf(logit, mean, log_scale, 1, at, 3, out) == CRK_OK, "mixture log_pdf");
        CHECK(fabs(out[1] - (-0.69314718055994531 - 0.91893853320467274 - 0.5)) < 1e-14, "log_pdf %.17g", out[1]);
        CHECK(isfinite(out[2]) && out[2] < -1e10, "far tail %g", out[2]);
        CHECK(crk_mixture_cdf(logit, mean, log_scale, 1, at, 1, out) == CRK_OK && fabs(out[0] - 0.5) < 1e-15,
              "cdf at the mean");
        CHECK(crk_mixture_quantile(logit, mean, log_scale, 2, p, 2, q) == CRK_OK, "quantile");
        CHECK(crk_mixture_cdf(logit, mean, log_scale, 2, q, 2, out) == CRK_OK, "cdf of quantiles");
        CHECK(fabs(out[0] - 0.5) < 1e-12 && fabs(out[1] - 0.9) < 1e-12, "quantile round trip %g %g", out[0], out[1]);
        CHECK(crk_mixture_sample(logit, mean, log_scale, 1, 3, 0, 1000, draws) == CRK_OK, "mixture sample");
        for (i = 0; i < 1000; ++i) sum += draws[i];
        CHECK(fabs(sum / 1000.0 - 1.0) < 0.3, "sample mean %g", sum / 1000.0);
        expect_error(crk_mixture_log_pdf(logit, mean, log_scale, 0, at, 3, out), CRK_ERR_INVALID_ARGUMENT, "k = 0",
                     "k = 0");
        expect_error(crk_mixture_log_pdf(logit, mean, log_scale, 1, at, 0, out), CRK_ERR_INVALID_ARGUMENT, "n = 0",
                     "mixture n = 0");
        expect_error(crk_mixture_quantile(logit, mean, log_scale, 1, at, 1, out), CRK_ERR_INVALID_ARGUMENT, "p[0]",
                     "p = 1");
        expect_error(crk_mixture_cdf(NULL, mean, log_scale, 1, at, 1, out), CRK_ERR_NULL_POINTER, "logits",
                     "NULL logits");
    }

    crk_made_free(made);
    crk_made_free(from_buffer);
    crk_made_free(NULL);
    if (failures == 0) printf("test_made: all checks passed\n");
    return failures == 0 ? 0 : 1;
}

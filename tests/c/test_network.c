/* The C contract of issue 5: conv1d / conv2d, output shapes, pooling, dense, activations,
 * softmax and the network runner, checked against naive loops written here, and bad input
 * from C: NULL pointers, zero sizes, kernels larger than the padded input, channels not
 * divisible by the groups, overflowing sizes, NaN weights and inputs, bad network files.
 * Run from the package root. */
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

static void expect_error(crk_status got, crk_status want, const char *mention, const char *what) {
    CHECK(got == want, "%s: status %d, want %d (%s)", what, (int)got, (int)want, crk_last_error_message());
    CHECK(strlen(crk_last_error_message()) > 0, "%s: empty error message", what);
    if (mention != NULL) {
        CHECK(strstr(crk_last_error_message(), mention) != NULL, "%s: message '%s' does not name '%s'", what,
              crk_last_error_message(), mention);
    }
}

static float value(size_t i, size_t seed) { return (float)sin(0.7 * (double)i + 1.3 * (double)seed); }

/* The definition, with explicit bounds tests (symmetric padding). */
static void naive_conv2d(const float *x, size_t n, size_t c_in, size_t h, size_t w, const float *wt,
                         const float *b, size_t c_out, size_t kh, size_t kw, const crk_conv_params *p,
                         size_t h_out, size_t w_out, double *y) {
    size_t s, o, oy, ox, c, i, j, cig = c_in / p->groups, cog = c_out / p->groups;
    for (s = 0; s < n; ++s)
        for (o = 0; o < c_out; ++o)
            for (oy = 0; oy < h_out; ++oy)
                for (ox = 0; ox < w_out; ++ox) {
                    double acc = b ? b[o] : 0.0;
                    for (c = 0; c < cig; ++c)
                        for (i = 0; i < kh; ++i)
                            for (j = 0; j < kw; ++j) {
                                long iy = (long)(oy * p->stride[0] + i * p->dilation[0]) - (long)p->padding[0];
                                long ix = (long)(ox * p->stride[1] + j * p->dilation[1]) - (long)p->padding[1];
                                size_t ci = o / cog * cig + c;
                                if (iy < 0 || ix < 0 || iy >= (long)h || ix >= (long)w) continue;
                                acc += (double)wt[((o * cig + c) * kh + i) * kw + j] *
                                       (double)x[((s * c_in + ci) * h + (size_t)iy) * w + (size_t)ix];
                            }
                    y[((s * c_out + o) * h_out + oy) * w_out + ox] = acc;
                }
}

static double max_error(const float *got, const double *want, size_t n) {
    double err = 0.0, scale = 1e-30;
    size_t i;
    for (i = 0; i < n; ++i) {
        if (fabs(want[i]) > scale) scale = fabs(want[i]);
    }
    for (i = 0; i < n; ++i) {
        double e = fabs((double)got[i] - want[i]);
        if (!(e <= err)) err = e;
    }
    return err / scale;
}

static void test_convolutions(void) {
    /* conv2d: 3 samples, 6 -> 8 channels, 7 x 9, 3 x 2 kernel, stride [2, 1], padding [1, 2],
     * dilation [1, 2], 2 groups. */
    enum { N = 3, CI = 6, H = 7, W = 9, CO = 8, KH = 3, KW = 2 };
    crk_conv_params p = {{2, 1}, {1, 2}, {1, 2}, 2};
    crk_conv_params depthwise = {{1, 1}, {1, 1}, {1, 1}, CI};
    size_t h_out = 0, w_out = 0, len_out = 0, i;
    float x[N * CI * H * W], wt[CO * (CI / 2) * KH * KW], b[CO], y[N * CI * H * W], y1[N * CO * 32];
    double ref[N * CI * H * W];
    for (i = 0; i < sizeof x / sizeof x[0]; ++i) x[i] = value(i, 1);
    for (i = 0; i < sizeof wt / sizeof wt[0]; ++i) wt[i] = value(i, 2);
    for (i = 0; i < CO; ++i) b[i] = value(i, 3);

    CHECK(crk_conv2d_output_shape(H, W, KH, KW, &p, &h_out, &w_out) == CRK_OK, "%s", crk_last_error_message());
    CHECK(h_out == 4 && w_out == 11, "output shape %zu x %zu, want 4 x 11", h_out, w_out);
    CHECK(crk_conv2d_f32(x, N, CI, H, W, wt, b, CO, KH, KW, &p, y) == CRK_OK, "conv2d: %s",
          crk_last_error_message());
    naive_conv2d(x, N, CI, H, W, wt, b, CO, KH, KW, &p, 4, 11, ref);
    CHECK(max_error(y, ref, N * CO * 4 * 11) < 1e-5, "conv2d error %g", max_error(y, ref, N * CO * 4 * 11));
    /* The same numbers on 2 threads and on all cores. */
    {
        size_t threads[2] = {2, 0}, t;
        for (t = 0; t < 2; ++t) {
            float yt[N * CO * 4 * 11];
            CHECK(crk_conv2d_f32_threads(x, N, CI, H, W, wt, b, CO, KH, KW, &p, threads[t], yt) == CRK_OK,
                  "conv2d threads: %s", crk_last_error_message());
            CHECK(memcmp(yt, y, sizeof yt) == 0, "conv2d on %zu threads differs", threads[t]);
        }
    }

    /* Depthwise 3x3 'same' without bias. */
    CHECK(crk_conv2d_f32(x, N, CI, H, W, wt, NULL, CI, 3, 3, &depthwise, y) == CRK_OK, "depthwise: %s",
          crk_last_error_message());
    naive_conv2d(x, N, CI, H, W, wt, NULL, CI, 3, 3, &depthwise, H, W, ref);
    CHECK(max_error(y, ref, N * CI * H * W) < 1e-5, "depthwise error %g", max_error(y, ref, N * CI * H * W));

    /* conv1d = conv2d of height 1 (index 1 of the parameters): 6 -> 8 channels, length 9. */
    CHECK(crk_conv1d_output_length(W, KW, &p, &len_out) == CRK_OK && len_out == 11, "conv1d length %zu", len_out);
    CHECK(crk_conv1d_f32(x, N, CI, W, wt, b, CO, KW, &p, y1) == CRK_OK, "conv1d: %s", crk_last_error_message());
    {
        crk_conv_params p1 = {{1, 1}, {0, 2}, {1, 2}, 2};
        float w1[CO * 3 * KW];
        for (i = 0; i < sizeof w1 / sizeof w1[0]; ++i) w1[i] = wt[i];
        naive_conv2d(x, N, CI, 1, W, w1, b, CO, 1, KW, &p1, 1, 11, ref);
        CHECK(max_error(y1, ref, N * CO * 11) < 1e-5, "conv1d error %g", max_error(y1, ref, N * CO * 11));
    }

    /* Bad input: a status and a message, nothing written. */
    expect_error(crk_conv2d_f32(NULL, N, CI, H, W, wt, b, CO, KH, KW, &p, y), CRK_ERR_NULL_POINTER, "input",
                 "NULL input");
    expect_error(crk_conv2d_f32(x, N, CI, H, W, NULL, b, CO, KH, KW, &p, y), CRK_ERR_NULL_POINTER, "weight",
                 "NULL weight");
    expect_error(crk_conv2d_f32(x, N, CI, H, W, wt, b, CO, KH, KW, NULL, y), CRK_ERR_NULL_POINTER, "params",
                 "NULL params");
    expect_error(crk_conv2d_f32(x, N, CI, H, W, wt, b, CO, KH, KW, &p, NULL), CRK_ERR_NULL_POINTER, "output",
                 "NULL output");
    expect_error(crk_conv2d_f32(x, 0, CI, H, W, wt, b, CO, KH, KW, &p, y), CRK_ERR_INVALID_ARGUMENT, "n",
                 "n = 0");
    expect_error(crk_conv2d_f32(x, N, CI, 0, W, wt, b, CO, KH, KW, &p, y), CRK_ERR_INVALID_ARGUMENT, ">= 1",
                 "h = 0");
    expect_error(crk_conv2d_f32(x, N, CI, H, W, wt, b, CO, 12, KW, &p, y), CRK_ERR_INVALID_ARGUMENT, "larger",
                 "kernel larger than the padded input");
    {
        crk_conv_params bad = p;
        bad.groups = 4;
        expect_error(crk_conv2d_f32(x, N, CI, H, W, wt, b, CO, KH, KW, &bad, y), CRK_ERR_INVALID_ARGUMENT,
                     "divisible", "c_in not divisible by groups");
        bad.groups = 0;
        expect_error(crk_conv2d_f32(x, N, CI, H, W, wt, b, CO, KH, KW, &bad, y), CRK_ERR_INVALID_ARGUMENT,
                     NULL, "groups = 0");
        bad = p;
        bad.stride[1] = 0;
        expect_error(crk_conv2d_output_shape(H, W, KH, KW, &bad, &h_out, &w_out), CRK_ERR_INVALID_ARGUMENT,
                     "stride", "stride 0");
    }
    expect_error(crk_conv2d_f32(x, SIZE_MAX / 4, CI, H, W, wt, b, CO, KH, KW, &p, y), CRK_ERR_INVALID_ARGUMENT,
                 "overflow", "n c h w overflows");
    expect_error(crk_conv2d_f32(x, N, SIZE_MAX / 2, H, W, wt, b, CO, KH, KW, &p, y), CRK_ERR_INVALID_ARGUMENT,
                 "overflow", "c_in overflows");
    {
        float nan_w[CO * (CI / 2) * KH * KW];
        memcpy(nan_w, wt, sizeof nan_w);
        nan_w[5] = NAN;
        expect_error(crk_conv2d_f32(x, N, CI, H, W, nan_w, b, CO, KH, KW, &p, y), CRK_ERR_INVALID_ARGUMENT,
                     "weight[5]", "NaN weight");
        x[7] = NAN;
        expect_error(crk_conv2d_f32(x, N, CI, H, W, wt, b, CO, KH, KW, &p, y), CRK_ERR_INVALID_ARGUMENT,
                     "input[7]", "NaN input");
        x[7] = value(7, 1);
        /* On threads, the batch's first bad value is named (here in the last sample). */
        x[2 * CI * H * W + 11] = INFINITY;
        expect_error(crk_conv2d_f32_threads(x, N, CI, H, W, wt, b, CO, KH, KW, &p, 2, y),
                     CRK_ERR_INVALID_ARGUMENT, "input[767]", "infinite input on threads");
        expect_error(crk_conv1d_f32_threads(x, N, CI, W, wt, b, CO, KW, NULL, 2, y1), CRK_ERR_NULL_POINTER,
                     "params", "conv1d threads, params NULL");
        x[2 * CI * H * W + 11] = value(2 * CI * H * W + 11, 1);
    }
    expect_error(crk_conv1d_f32(x, N, CI, W, wt, b, CO, 0, &p, y1), CRK_ERR_INVALID_ARGUMENT, NULL, "k = 0");
}

static void test_pooling_dense_activations(void) {
    /* 1 x 3 x 3 input 1..9; 2x2 windows, stride 1, padding 1 on both axes -> 4 x 4. */
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, y[16], d[6];
    float w[6] = {1, 0, -1, 2, 1, 0}, bias[2] = {0.5f, -0.5f}, a[4] = {-2.0f, -0.5f, 0.0f, 3.0f};
    crk_pool_params p = {{2, 2}, {1, 1}, {1, 1}, 0};
    size_t h_out = 0, w_out = 0;
    CHECK(crk_pool2d_output_shape(3, 3, &p, &h_out, &w_out) == CRK_OK && h_out == 4 && w_out == 4, "pool shape");
    CHECK(crk_maxpool2d_f32(x, 1, 1, 3, 3, &p, y) == CRK_OK, "maxpool: %s", crk_last_error_message());
    CHECK(y[0] == 1 && y[5] == 5 && y[15] == 9 && y[3] == 3, "maxpool values %g %g %g %g", y[0], y[5], y[15], y[3]);
    CHECK(crk_avgpool2d_f32(x, 1, 1, 3, 3, &p, y) == CRK_OK, "avgpool");
    CHECK(y[0] == 1 && y[5] == 3 && y[1] == 1.5f, "avgpool (padding excluded) %g %g %g", y[0], y[5], y[1]);
    p.count_include_pad = 1;
    CHECK(crk_avgpool2d_f32(x, 1, 1, 3, 3, &p, y) == CRK_OK && y[0] == 0.25f, "avgpool (padding included) %g", y[0]);
    CHECK(crk_maxpool1d_f32(x, 1, 1, 9, &p, y) == CRK_OK && y[0] == 1 && y[9] == 9, "maxpool1d %g %g", y[0], y[9]);
    CHECK(crk_global_avgpool_f32(x, 1, 1, 9, y) == CRK_OK && y[0] == 5, "global avgpool %g", y[0]);
    p.count_include_pad = 2;
    expect_error(crk_avgpool2d_f32(x, 1, 1, 3, 3, &p, y), CRK_ERR_INVALID_ARGUMENT, "count_include_pad",
                 "bad count_include_pad");
    p.count_include_pad = 0;
    p.padding[0] = 2;
    expect_error(crk_maxpool2d_f32(x, 1, 1, 3, 3, &p, y), CRK_ERR_INVALID_ARGUMENT, "padding",
                 "padding not smaller than the kernel");
    expect_error(crk_maxpool2d_f32(x, 1, 1, 3, 3, NULL, y), CRK_ERR_NULL_POINTER, "params", "NULL pool params");

    /* Dense: x = [1 2 3], [4 5 6] (2 samples), W = [[1 0 -1], [2 1 0]], b = [0.5, -0.5]. */
    CHECK(crk_dense_f32(x, 2, 3, w, bias, 2, d) == CRK_OK, "dense: %s", crk_last_error_message());
    CHECK(d[0] == -1.5f && d[1] == 3.5f && d[2] == -1.5f && d[3] == 12.5f, "dense %g %g %g %g", d[0], d[1], d[2],
          d[3]);
    expect_error(crk_dense_f32(x, 2, 0, w, bias, 2, d), CRK_ERR_INVALID_ARGUMENT, NULL, "dense n_in = 0");

    /* Activations in place. */
    CHECK(crk_activation_f32(CRK_ACTIVATION_LEAKY_RELU, 0.1f, a, 4, a) == CRK_OK, "leaky relu");
    CHECK(a[0] == -0.2f && a[3] == 3.0f, "leaky relu %g %g", a[0], a[3]);
    CHECK(crk_activation_f32(CRK_ACTIVATION_ELU, 1.0f, a, 4, d) == CRK_OK, "elu");
    CHECK(fabs(d[0] - (exp(-0.2) - 1.0)) < 1e-7, "elu %g", d[0]);
    expect_error(crk_activation_f32(99, 0.0f, a, 4, a), CRK_ERR_INVALID_ARGUMENT, "unknown activation",
                 "unknown activation");
    a[0] = 1000.0f;
    a[1] = 1001.0f;
    CHECK(crk_softmax_f32(a, 2, 2, d) == CRK_OK, "softmax");
    CHECK(fabs(d[1] - 1.0 / (1.0 + exp(-1.0))) < 1e-7 && fabs(d[2] + d[3] - 1.0) < 1e-6, "softmax %g", d[1]);
}

#define NET "tests/data/conv/net_sd_two_branch.safetensors"
#define BATCH 40

static void test_network(void) {
    crk_network *net = NULL, *bad = NULL;
    size_t count = 0, n_dims = 0, shape[4] = {0, 0, 0, 0}, size = 0, out_size = 0, i, j;
    float *inputs[3], *out1, *out2;
    const float *const_inputs[3];
    size_t sizes[3];

    CHECK(crk_network_load(NET, &net) == CRK_OK, "load: %s", crk_last_error_message());
    if (net == NULL) return;
    CHECK(crk_network_input_count(net, &count) == CRK_OK && count == 3, "input count %zu", count);
    CHECK(crk_network_input_shape(net, 1, shape, 4, &n_dims, &size) == CRK_OK, "input shape");
    CHECK(n_dims == 3 && shape[0] == 4 && shape[1] == 8 && shape[2] == 8 && size == 256, "grid shape %zu %zu",
          n_dims, size);
    CHECK(crk_network_output_size(net, &out_size) == CRK_OK && out_size == 2, "output size %zu", out_size);
    expect_error(crk_network_input_shape(net, 3, shape, 4, &n_dims, &size), CRK_ERR_INVALID_ARGUMENT, "index",
                 "input index out of range");
    for (j = 0; j < 3; ++j) {
        CHECK(crk_network_input_shape(net, j, NULL, 0, &n_dims, &sizes[j]) == CRK_OK, "input size %zu", j);
        inputs[j] = (float *)malloc(sizeof(float) * BATCH * sizes[j]);
        for (i = 0; i < BATCH * sizes[j]; ++i) inputs[j][i] = value(i, j);
        const_inputs[j] = inputs[j];
    }
    out1 = (float *)malloc(sizeof(float) * BATCH * out_size);
    out2 = (float *)malloc(sizeof(float) * BATCH * out_size);
    CHECK(crk_network_run(net, const_inputs, 3, BATCH, 1, out1, BATCH * out_size) == CRK_OK, "run: %s",
          crk_last_error_message());
    CHECK(crk_network_run(net, const_inputs, 3, BATCH, 2, out2, BATCH * out_size) == CRK_OK, "run 2 threads");
    CHECK(memcmp(out1, out2, sizeof(float) * BATCH * out_size) == 0, "results depend on the thread count");
    for (i = 0; i < BATCH * out_size; ++i) CHECK(isfinite(out1[i]), "output %zu not finite", i);

    expect_error(crk_network_run(net, const_inputs, 3, BATCH, 1, out1, BATCH * out_size - 1),
                 CRK_ERR_INVALID_ARGUMENT, "output_len", "wrong output_len");
    expect_error(crk_network_run(net, const_inputs, 2, BATCH, 1, out1, BATCH * out_size), CRK_ERR_INVALID_ARGUMENT,
                 "n_inputs", "wrong n_inputs");
    expect_error(crk_network_run(net, const_inputs, 3, 0, 1, out1, 0), CRK_ERR_INVALID_ARGUMENT, "batch",
                 "batch 0");
    expect_error(crk_network_run(net, NULL, 3, BATCH, 1, out1, BATCH * out_size), CRK_ERR_NULL_POINTER, "inputs",
                 "NULL inputs");
    expect_error(crk_network_run(NULL, const_inputs, 3, BATCH, 1, out1, BATCH * out_size), CRK_ERR_NULL_POINTER,
                 "net", "NULL network");
    expect_error(crk_network_run(net, const_inputs, 3, SIZE_MAX, 1, out1, BATCH * out_size),
                 CRK_ERR_INVALID_ARGUMENT, "overflow", "overflowing batch");
    inputs[2][5] = NAN;
    expect_error(crk_network_run(net, const_inputs, 3, BATCH, 1, out1, BATCH * out_size), CRK_ERR_INVALID_ARGUMENT,
                 "features", "NaN input");
    const_inputs[0] = NULL;
    expect_error(crk_network_run(net, const_inputs, 3, BATCH, 1, out1, BATCH * out_size), CRK_ERR_NULL_POINTER,
                 "traces", "NULL input array");

    /* Bad files: a status, a message naming the layer or tensor, no handle. */
    expect_error(crk_network_load("tests/data/conv/bad_net_missing_tensor.safetensors", &bad), CRK_ERR_FORMAT,
                 "layers.5.bias", "missing tensor");
    CHECK(bad == NULL, "handle written on failure");
    expect_error(crk_network_load("tests/data/conv/bad_net_shape_mismatch.safetensors", &bad), CRK_ERR_FORMAT,
                 "layer 5 (dense)", "shape mismatch");
    expect_error(crk_network_load("tests/data/conv/bad_net_format.safetensors", &bad), CRK_ERR_FORMAT, "format",
                 "wrong format");
    expect_error(crk_network_load("tests/data/conv/no_such_file.safetensors", &bad), CRK_ERR_IO, "no_such_file",
                 "missing file");
    expect_error(crk_network_load(NULL, &bad), CRK_ERR_NULL_POINTER, "path", "NULL path");
    expect_error(crk_network_load(NET, NULL), CRK_ERR_NULL_POINTER, "out", "NULL out");
    {
        unsigned char garbage[64];
        memset(garbage, 0xff, sizeof garbage);
        expect_error(crk_network_load_buffer(garbage, sizeof garbage, &bad), CRK_ERR_FORMAT, "safetensors",
                     "garbage buffer");
    }
    crk_network_free(NULL);
    crk_network_free(net);
    for (j = 0; j < 3; ++j) free(inputs[j]);
    free(out1);
    free(out2);
}

/* The GPU variants (issue 7) where there is no usable device (this library is built without
 * `cuda`, or has no CUDA driver, or the ordinal does not exist): CRK_ERR_NO_DEVICE and a
 * message from every entry point, for host and device arrays; bad arguments are still
 * reported first. */
static void test_gpu_without_device(void) {
    enum { N = 2, C = 3, H = 4, W = 5, CO = 4 };
    crk_conv_params p = {{1, 1}, {1, 1}, {1, 1}, 1};
    crk_pool_params pool = {{2, 2}, {2, 2}, {0, 0}, 1};
    float x[N * C * H * W], wt[CO * C * 3 * 3], y[N * CO * H * W];
    int32_t count = -1, device;
    size_t i;
    /* Never dereferenced: the calls fail before touching device memory. */
    const float *device_in = (const float *)(uintptr_t)0x10000;
    float *device_out = (float *)(uintptr_t)0x80000;
    for (i = 0; i < sizeof x / sizeof x[0]; ++i) x[i] = value(i, 5);
    for (i = 0; i < sizeof wt / sizeof wt[0]; ++i) wt[i] = value(i, 6);
    CHECK(crk_device_count(&count) == CRK_OK, "device count: %s", crk_last_error_message());
    device = count; /* one past the last device: never exists */
    expect_error(crk_conv2d_f32_gpu(device, x, N, C, H, W, wt, NULL, CO, 3, 3, &p, y), CRK_ERR_NO_DEVICE, NULL,
                 "conv2d gpu");
    expect_error(crk_conv2d_f32_gpu_device(device, device_in, N, C, H, W, wt, NULL, CO, 3, 3, &p, device_out),
                 CRK_ERR_NO_DEVICE, NULL, "conv2d gpu device arrays");
    expect_error(crk_conv1d_f32_gpu(device, x, N, C, W, wt, NULL, CO, 3, &p, y), CRK_ERR_NO_DEVICE, NULL,
                 "conv1d gpu");
    expect_error(crk_conv1d_f32_gpu_device(device, device_in, N, C, W, wt, NULL, CO, 3, &p, device_out),
                 CRK_ERR_NO_DEVICE, NULL, "conv1d gpu device arrays");
    expect_error(crk_maxpool2d_f32_gpu(device, x, N, C, H, W, &pool, y), CRK_ERR_NO_DEVICE, NULL, "maxpool2d gpu");
    expect_error(crk_avgpool2d_f32_gpu_device(device, device_in, N, C, H, W, &pool, device_out), CRK_ERR_NO_DEVICE,
                 NULL, "avgpool2d gpu device arrays");
    expect_error(crk_maxpool1d_f32_gpu(device, x, N, C, W, &pool, y), CRK_ERR_NO_DEVICE, NULL, "maxpool1d gpu");
    expect_error(crk_avgpool1d_f32_gpu(device, x, N, C, W, &pool, y), CRK_ERR_NO_DEVICE, NULL, "avgpool1d gpu");
    expect_error(crk_global_avgpool_f32_gpu(device, x, N, C, H * W, y), CRK_ERR_NO_DEVICE, NULL,
                 "global avgpool gpu");
    expect_error(crk_global_avgpool_f32_gpu_device(device, device_in, N, C, H * W, device_out), CRK_ERR_NO_DEVICE,
                 NULL, "global avgpool gpu device arrays");
    expect_error(crk_conv2d_f32_gpu(-1, x, N, C, H, W, wt, NULL, CO, 3, 3, &p, y), CRK_ERR_NO_DEVICE, "negative",
                 "negative device");
    /* Argument errors come first, as on the CPU. */
    expect_error(crk_conv2d_f32_gpu(device, x, 0, C, H, W, wt, NULL, CO, 3, 3, &p, y), CRK_ERR_INVALID_ARGUMENT,
                 "n", "gpu n = 0");
    expect_error(crk_conv2d_f32_gpu(device, NULL, N, C, H, W, wt, NULL, CO, 3, 3, &p, y), CRK_ERR_NULL_POINTER,
                 "input", "gpu NULL input");
    expect_error(crk_conv2d_f32_gpu_device(device, NULL, N, C, H, W, wt, NULL, CO, 3, 3, &p, device_out),
                 CRK_ERR_NULL_POINTER, "input", "gpu NULL device input");
    expect_error(crk_maxpool2d_f32_gpu(device, x, N, C, H, W, NULL, y), CRK_ERR_NULL_POINTER, "params",
                 "gpu NULL params");
}

int main(void) {
    test_convolutions();
    test_pooling_dense_activations();
    test_network();
    test_gpu_without_device();
    if (failures > 0) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("test_network: all passed\n");
    return 0;
}

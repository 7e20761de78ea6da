/* The SD-reconstruction-style network of seed 002 (1-D convolutions along detector time
 * traces, 2-D convolutions over the 8 x 8 detector grid, extra detector features, dense
 * layers; random weights) run from C on a batch of synthetic air-shower events.
 * Build: cc -std=c99 -Iinclude examples/c/sd_reconstruction.c target/release/libcrkernels.a
 *        -lm -lpthread -ldl; run from the package root. */
#include "crkernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define NETWORK "tests/data/conv/net_sd_two_branch.safetensors"
#define N_EVENTS 512

/* Traces: a pulse rising at a detector-dependent time and decaying over ~20 bins, in two
 * scintillator layers. Grid: signal falling off with distance from the core, arrival times
 * on a tilted plane, on/off state, saturation. Features: core x, y and zenith angle. */
static void synthetic_event(size_t k, float *traces, float *grid, float *features) {
    double core_x = 0.4 * sin(1.7 * (double)k), core_y = 0.4 * cos(2.3 * (double)k);
    double zenith = 0.6 * (1.0 + sin(0.9 * (double)k)), onset = 60.0 + 20.0 * sin(0.3 * (double)k);
    size_t layer, t, x, y;
    for (layer = 0; layer < 2; ++layer) {
        for (t = 0; t < 256; ++t) {
            double dt = (double)t - onset, rise = dt / 4.0 < 1.0 ? dt / 4.0 : 1.0;
            traces[layer * 256 + t] = dt > 0.0 ? (float)((5.0 + 0.5 * (double)layer) * rise * exp(-dt / 20.0)) : 0.0f;
        }
    }
    for (y = 0; y < 8; ++y) {
        for (x = 0; x < 8; ++x) {
            double dx = (double)x - 3.5 - core_x, dy = (double)y - 3.5 - core_y;
            double signal = 30.0 / (1.0 + dx * dx + dy * dy);
            grid[y * 8 + x] = (float)signal;
            grid[64 + y * 8 + x] = (float)(zenith * ((double)x - 3.5) * 0.3);
            grid[128 + y * 8 + x] = 1.0f;
            grid[192 + y * 8 + x] = signal > 20.0 ? 1.0f : 0.0f;
        }
    }
    features[0] = (float)core_x;
    features[1] = (float)core_y;
    features[2] = (float)zenith;
}

int main(void) {
    crk_network *net = NULL;
    size_t n_inputs = 0, sizes[3], n_dims = 0, out_size = 0, j, k;
    float *inputs[3], *output;
    const float *views[3];

    if (crk_network_load(NETWORK, &net) != CRK_OK) {
        fprintf(stderr, "load failed: %s\n", crk_last_error_message());
        return 1;
    }
    crk_network_input_count(net, &n_inputs);
    if (n_inputs != 3) {
        fprintf(stderr, "expected 3 inputs (traces, grid, features), got %zu\n", n_inputs);
        crk_network_free(net);
        return 1;
    }
    for (j = 0; j < 3; ++j) {
        crk_network_input_shape(net, j, NULL, 0, &n_dims, &sizes[j]);
        inputs[j] = (float *)malloc(sizeof(float) * N_EVENTS * sizes[j]);
        views[j] = inputs[j];
    }
    crk_network_output_size(net, &out_size);
    output = (float *)malloc(sizeof(float) * N_EVENTS * out_size);
    for (k = 0; k < N_EVENTS; ++k) {
        synthetic_event(k, inputs[0] + k * sizes[0], inputs[1] + k * sizes[1], inputs[2] + k * sizes[2]);
    }
    if (crk_network_run(net, views, 3, N_EVENTS, 0, output, N_EVENTS * out_size) != CRK_OK) {
        fprintf(stderr, "run failed: %s\n", crk_last_error_message());
        return 1;
    }
    printf("%d events through %s (%zu outputs each)\n", N_EVENTS, NETWORK, out_size);
    for (k = 0; k < 4; ++k) {
        printf("event %zu:", k);
        for (j = 0; j < out_size; ++j) printf(" %+.5f", (double)output[k * out_size + j]);
        printf("\n");
    }
    for (j = 0; j < 3; ++j) free(inputs[j]);
    free(output);
    crk_network_free(net);
    return 0;
}

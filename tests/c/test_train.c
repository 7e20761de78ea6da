/* The MADE trainer from C (issue 16): the paper's defaults, a conditional Gaussian whose true
 * NLL is known in closed form (the trained model comes within 0.05 nats per row), progress and
 * cancellation, the trainer handle with a checkpoint that resumes bit for bit, saving, and
 * every bad input the issue lists (status, message, nothing written). */
#include "crkernels.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond, ...)                                \
    do {                                                \
        if (!(cond)) {                                  \
            ++failures;                                 \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                        \
            printf("\n");                               \
        }                                               \
    } while (0)

static void expect_error(crk_status got, crk_status want, const char *what) {
    CHECK(got == want, "%s: status %d, want %d (%s)", what, (int)got, (int)want, crk_last_error_message());
    CHECK(strlen(crk_last_error_message()) > 0, "%s: empty error message", what);
}

/* xorshift and Box-Muller: independent of the library's Philox. */
static uint64_t state = 88172645463325252ull;
static double uniform01(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return ((double)(state >> 11) + 0.5) / 9007199254740992.0;
}
static double normal(void) { return sqrt(-2.0 * log(uniform01())) * cos(6.283185307179586 * uniform01()); }

static double log_normal_pdf(double x, double mean, double sd) {
    double z = (x - mean) / sd;
    return -0.5 * z * z - log(sd) - 0.9189385332046727;
}

/* c ~ U(0, 1); x1 | c ~ N(2 c, 0.3); x2 | x1, c ~ N(0.5 x1 - c, 0.2). Returns the true -ln p. */
static double draw(float *c, float *x) {
    double cv = uniform01();
    double x1 = 2.0 * cv + 0.3 * normal();
    double x2 = 0.5 * x1 - cv + 0.2 * normal();
    c[0] = (float)cv;
    x[0] = (float)x1;
    x[1] = (float)x2;
    return -(log_normal_pdf(x1, 2.0 * cv, 0.3) + log_normal_pdf(x2, 0.5 * x1 - cv, 0.2));
}

static int32_t count_calls(size_t done, size_t total, void *user_data) {
    (void)done;
    (void)total;
    ++*(int *)user_data;
    return 0;
}

static int32_t cancel_at_once(size_t done, size_t total, void *user_data) {
    (void)done;
    (void)total;
    (void)user_data;
    return 1;
}

enum { N = 6000, N_TEST = 4000 };

static double mean_nll(const crk_made *m, const float *c, const float *x, size_t n) {
    static float lp[N_TEST];
    double sum = 0.0;
    size_t i;
    if (crk_made_log_prob(m, c, x, n, 0, lp) != CRK_OK) return NAN;
    for (i = 0; i < n; ++i) sum -= lp[i];
    return sum / (double)n;
}

int main(void) {
    static float c[N], x[2 * N], ct[N_TEST], xt[2 * N_TEST], lp1[N_TEST], lp2[N_TEST];
    crk_made_train_options o, bad;
    crk_made_train_report r, untouched;
    crk_made_epoch_report e;
    crk_made *m = NULL, *m2 = NULL, *loaded = NULL;
    crk_made_trainer *t = NULL, *t2 = NULL;
    double true_nll = 0.0, nll;
    int calls = 0, finished = -1;
    size_t i;
    const char *checkpoint = "test_train_checkpoint.safetensors";
    const char *model_path = "test_train_model.safetensors";

    crk_made_train_options_default(&o);
    CHECK(o.n_hidden_layers == 1 && o.hidden_units[0] == 200 && o.n_components == 10, "default architecture");
    CHECK(o.activation == CRK_ACTIVATION_SIGMOID && o.order == CRK_ORDER_RANDOM, "default activation and order");
    CHECK(o.batch_size == 50 && o.learning_rate == 1e-3 && o.validation_fraction == 0.1, "default recipe");
    crk_made_train_options_default(NULL);

    for (i = 0; i < N; ++i) draw(&c[i], &x[2 * i]);
    for (i = 0; i < N_TEST; ++i) true_nll += draw(&ct[i], &xt[2 * i]) / N_TEST;

    o.hidden_units[0] = 32;
    o.n_components = 3;
    o.batch_size = 64;
    o.max_epochs = 60;
    o.patience = 10;
    o.seed = 7;
    memset(&r, 0, sizeof r);
    CHECK(crk_made_train(c, 1, x, 2, N, &o, count_calls, &calls, &m, &r) == CRK_OK, "train: %s",
          crk_last_error_message());
    CHECK(m != NULL && calls > 0, "a model and progress calls");
    CHECK(r.epochs_run >= 1 && r.epochs_run <= 60 && r.best_epoch >= 1 && r.best_epoch <= r.epochs_run,
          "report epochs %zu best %zu", r.epochs_run, r.best_epoch);
    nll = mean_nll(m, ct, xt, N_TEST);
    CHECK(fabs(nll - true_nll) < 0.05, "test NLL %.4f vs true %.4f", nll, true_nll);
    CHECK(fabs(r.best_validation_nll - true_nll) < 0.1, "validation NLL %.4f vs true %.4f", r.best_validation_nll,
          true_nll);

    /* Save and load: the same log-densities bit for bit. */
    CHECK(crk_made_save(m, model_path) == CRK_OK, "save: %s", crk_last_error_message());
    CHECK(crk_made_load(model_path, &loaded) == CRK_OK, "load: %s", crk_last_error_message());
    crk_made_log_prob(m, ct, xt, N_TEST, 0, lp1);
    crk_made_log_prob(loaded, ct, xt, N_TEST, 0, lp2);
    CHECK(memcmp(lp1, lp2, sizeof lp1) == 0, "saved model differs");
    remove(model_path);

    /* Cancellation: status, out left NULL. */
    expect_error(crk_made_train(c, 1, x, 2, N, &o, cancel_at_once, NULL, &m2, NULL), CRK_ERR_CANCELLED, "cancel");
    CHECK(m2 == NULL, "cancelled run wrote a model");

    /* The handle: 2 epochs, checkpoint, resume in a fresh trainer, 1 more epoch; against 3
     * epochs straight (patience 0 so that nothing stops early). */
    o.patience = 0;
    o.max_epochs = 3;
    CHECK(crk_made_train(c, 1, x, 2, N, &o, NULL, NULL, &m2, NULL) == CRK_OK, "straight run");
    CHECK(crk_made_trainer_new(c, 1, x, 2, N, &o, &t) == CRK_OK, "trainer_new: %s", crk_last_error_message());
    CHECK(crk_made_trainer_epoch(t, NULL, NULL, &e) == CRK_OK && e.epoch == 1, "epoch 1");
    CHECK(isfinite(e.train_nll) && isfinite(e.validation_nll) && e.learning_rate == 1e-3, "epoch figures");
    CHECK(crk_made_trainer_epoch(t, NULL, NULL, NULL) == CRK_OK, "epoch 2");
    CHECK(crk_made_trainer_finished(t, &finished) == CRK_OK && finished == 0, "not finished after 2 of 3");
    CHECK(crk_made_trainer_checkpoint(t, checkpoint) == CRK_OK, "checkpoint: %s", crk_last_error_message());
    o.n_threads = 1;
    CHECK(crk_made_trainer_new(c, 1, x, 2, N, &o, &t2) == CRK_OK, "second trainer");
    CHECK(crk_made_trainer_resume(t2, checkpoint) == CRK_OK, "resume: %s", crk_last_error_message());
    CHECK(crk_made_trainer_epoch(t2, NULL, NULL, &e) == CRK_OK && e.epoch == 3, "epoch 3 after resume");
    CHECK(crk_made_trainer_finished(t2, &finished) == CRK_OK && finished == 1, "finished after 3");
    CHECK(crk_made_trainer_report(t2, &r) == CRK_OK && r.epochs_run == 3, "report after resume");
    crk_made_free(loaded);
    loaded = NULL;
    CHECK(crk_made_trainer_model(t2, &loaded) == CRK_OK, "trainer model");
    crk_made_log_prob(m2, ct, xt, N_TEST, 0, lp1);
    crk_made_log_prob(loaded, ct, xt, N_TEST, 0, lp2);
    CHECK(memcmp(lp1, lp2, sizeof lp1) == 0, "resumed run differs from the straight run");
    /* A checkpoint of another model is refused and changes nothing. */
    bad = o;
    bad.hidden_units[0] = 33;
    crk_made_trainer_free(t2);
    t2 = NULL;
    CHECK(crk_made_trainer_new(c, 1, x, 2, N, &bad, &t2) == CRK_OK, "third trainer");
    expect_error(crk_made_trainer_resume(t2, checkpoint), CRK_ERR_INVALID_ARGUMENT, "checkpoint of another model");
    expect_error(crk_made_trainer_resume(t2, model_path), CRK_ERR_IO, "missing checkpoint file");
    expect_error(crk_made_trainer_resume(t2, NULL), CRK_ERR_NULL_POINTER, "NULL path");
    expect_error(crk_made_trainer_epoch(NULL, NULL, NULL, NULL), CRK_ERR_NULL_POINTER, "NULL trainer");
    remove(checkpoint);

    /* Bad input: a status and a message, out NULL, report untouched. */
    memset(&untouched, 0x5a, sizeof untouched);
#define REFUSE(call, status, what)                                          \
    do {                                                                    \
        crk_made *got = (crk_made *)&failures;                              \
        crk_made_train_report rep = untouched;                              \
        expect_error(call, status, what);                                   \
        CHECK(got == NULL, "%s: out not NULL", what);                       \
        CHECK(memcmp(&rep, &untouched, sizeof rep) == 0, "%s: report written", what); \
    } while (0)
    o.max_epochs = 2;
    REFUSE(crk_made_train(c, 1, NULL, 2, N, &o, NULL, NULL, &got, &rep), CRK_ERR_NULL_POINTER, "NULL x");
    REFUSE(crk_made_train(NULL, 1, x, 2, N, &o, NULL, NULL, &got, &rep), CRK_ERR_NULL_POINTER, "NULL context");
    REFUSE(crk_made_train(c, 1, x, 2, N, NULL, NULL, NULL, &got, &rep), CRK_ERR_NULL_POINTER, "NULL options");
    expect_error(crk_made_train(c, 1, x, 2, N, &o, NULL, NULL, NULL, NULL), CRK_ERR_NULL_POINTER, "NULL out");
    REFUSE(crk_made_train(c, 1, x, 2, 0, &o, NULL, NULL, &got, &rep), CRK_ERR_INVALID_ARGUMENT, "n = 0");
    REFUSE(crk_made_train(c, 1, x, 2, 60, &o, NULL, NULL, &got, &rep), CRK_ERR_INVALID_ARGUMENT,
           "n smaller than a minibatch");
    x[7] = NAN;
    REFUSE(crk_made_train(c, 1, x, 2, N, &o, NULL, NULL, &got, &rep), CRK_ERR_INVALID_ARGUMENT, "NaN data");
    x[7] = INFINITY;
    REFUSE(crk_made_train(c, 1, x, 2, N, &o, NULL, NULL, &got, &rep), CRK_ERR_INVALID_ARGUMENT, "infinite data");
    x[7] = 0.5f;
    {
        static float flat[2 * N];
        for (i = 0; i < 2 * N; ++i) flat[i] = i % 2 ? 1.0f : x[i];
        REFUSE(crk_made_train(c, 1, flat, 2, N, &o, NULL, NULL, &got, &rep), CRK_ERR_INVALID_ARGUMENT,
               "zero variance");
    }
#define REFUSE_OPTION(field, value, what)                                                             \
    do {                                                                                              \
        bad = o;                                                                                      \
        bad.field = value;                                                                            \
        REFUSE(crk_made_train(c, 1, x, 2, N, &bad, NULL, NULL, &got, &rep), CRK_ERR_INVALID_ARGUMENT, \
               what);                                                                                 \
    } while (0)
    REFUSE_OPTION(hidden_units[0], 0, "hidden_units 0");
    REFUSE_OPTION(n_hidden_layers, 9, "more than 8 layers");
    REFUSE_OPTION(n_hidden_layers, 0, "no hidden layer");
    REFUSE_OPTION(n_components, 0, "K = 0");
    REFUSE_OPTION(batch_size, 0, "batch 0");
    REFUSE_OPTION(learning_rate, 0.0, "learning rate 0");
    REFUSE_OPTION(learning_rate, -1e-3, "negative learning rate");
    REFUSE_OPTION(learning_rate, NAN, "NaN learning rate");
    REFUSE_OPTION(validation_fraction, 1.0, "validation fraction 1");
    REFUSE_OPTION(validation_fraction, -0.1, "negative validation fraction");
    REFUSE_OPTION(activation, 99, "unknown activation");
    REFUSE_OPTION(order, 7, "unknown order");
    REFUSE_OPTION(context_degrees, 5, "unknown context degrees");
    REFUSE_OPTION(schedule, 9, "unknown schedule");
    REFUSE_OPTION(max_epochs, 0, "no epoch");

    crk_made_trainer_free(t);
    crk_made_trainer_free(t2);
    crk_made_trainer_free(NULL);
    crk_made_free(m);
    crk_made_free(m2);
    crk_made_free(loaded);
    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("test_train: all checks passed\n");
    return 0;
}

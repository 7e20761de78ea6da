// Tests of include/crkernels.hpp: RAII owners, exceptions, and numbers against the C API.
// Built as C++17 and as C++20 (std::span overloads) by tests/c_abi.rs.
#include "crkernels.hpp"

#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

static int failures = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            ++failures;                                                          \
        }                                                                        \
    } while (0)

// Runs `f`, expecting a crk::error with `status` and a non-empty message.
template <class F>
static void expect_error(crk_status status, F f, const char *what) {
    try {
        f();
        std::fprintf(stderr, "%s: no exception\n", what);
        ++failures;
    } catch (const crk::error &e) {
        if (e.status() != status) {
            std::fprintf(stderr, "%s: status %d, expected %d (%s)\n", what, static_cast<int>(e.status()),
                         static_cast<int>(status), e.what());
            ++failures;
        }
        const char *colon = std::strstr(e.what(), ": ");
        if (colon == nullptr || std::strlen(colon) < 4 || std::strncmp(colon + 2, " [", 2) == 0) {
            std::fprintf(stderr, "%s: empty message: '%s'\n", what, e.what());
            ++failures;
        }
    } catch (...) {
        std::fprintf(stderr, "%s: an exception other than crk::error\n", what);
        ++failures;
    }
}

static bool close(double a, double b, double rel) { return std::fabs(a - b) <= rel * std::fabs(b); }

static_assert(!std::is_copy_constructible<crk::losses>::value, "owners are move-only");
static_assert(!std::is_copy_assignable<crk::transport>::value, "owners are move-only");
static_assert(std::is_nothrow_move_constructible<crk::ensemble>::value, "owners move without throwing");
static_assert(std::is_nothrow_move_assignable<crk::made>::value, "owners move without throwing");
static_assert(!std::is_copy_constructible<crk::made_trainer>::value, "owners are move-only");
static_assert(std::is_nothrow_move_constructible<crk::made_trainer>::value, "owners move without throwing");
static_assert(std::is_base_of<std::runtime_error, crk::error>::value, "crk::error is a runtime_error");

static void test_raii() {
    crk::losses empty;
    CHECK(!empty);
    CHECK(empty.get() == nullptr);

    crk::losses a = crk::losses_new_preset(CRK_LOSS_KN_EXACT, CRK_ISRF_DELAHAYE2010, 3.0);
    CHECK(static_cast<bool>(a));
    crk_losses *raw = a.get();
    crk::losses b(std::move(a));
    CHECK(!a && b.get() == raw);
    crk::losses c;
    c = std::move(b);
    CHECK(!b && c.get() == raw);
    c = crk::losses_new_thomson(1e-16);  // frees the old handle
    CHECK(c.get() != nullptr);
    c.reset();
    c.reset();  // idempotent
    CHECK(!c);

    // release() hands ownership back to C; adopting a C handle frees it in the destructor.
    crk::losses d = crk::losses_new_thomson(1e-16);
    crk_losses *released = d.release();
    CHECK(!d && released != nullptr);
    crk_losses_free(released);
    crk_losses *from_c = nullptr;
    CHECK(crk_losses_new_thomson(1e-16, &from_c) == CRK_OK);
    { crk::losses adopted(from_c); }
}

static void test_numbers_against_c() {
    const double energy[4] = {1.0, 10.0, 100.0, 1000.0};
    const double age[4] = {0.01, 0.1, 0.2, 0.05};

    crk_losses *cl = nullptr;
    crk_transport *ct = nullptr;
    CHECK(crk_losses_new_preset(CRK_LOSS_KN_EXACT, CRK_ISRF_DELAHAYE2010, 3.0, &cl) == CRK_OK);
    CHECK(crk_transport_new(cl, 3e28, 0.6, 4.0, 1.0, 1e7, &ct) == CRK_OK);
    double c_rate[4], c_e0[4], c_l2[4];
    CHECK(crk_losses_rate(cl, energy, 4, c_rate) == CRK_OK);
    CHECK(crk_transport_initial_energy(ct, energy, age, 4, c_e0) == CRK_OK);
    CHECK(crk_transport_loss_length2(ct, energy, c_e0, 4, c_l2) == CRK_OK);

    const crk::losses losses = crk::losses_new_preset(CRK_LOSS_KN_EXACT, CRK_ISRF_DELAHAYE2010, 3.0);
    const crk::transport tr = crk::transport_new(losses, 3e28, 0.6, 4.0, 1.0, 1e7);
    double rate[4], e0[4], l2[4];
    losses.rate(energy, 4, rate);
    tr.initial_energy(energy, age, 4, e0);
    crk::transport_loss_length2(tr.get(), energy, e0, 4, l2);  // the free-function form
    for (int i = 0; i < 4; ++i) {
        CHECK(rate[i] == c_rate[i]);
        CHECK(e0[i] == c_e0[i]);
        CHECK(l2[i] == c_l2[i]);
    }
    CHECK(losses.rate(100.0) == c_rate[2]);
    CHECK(tr.initial_energy(10.0, 0.1) == c_e0[1]);
#if __cplusplus >= 202002L
    std::vector<double> span_rate(4);
    losses.rate(std::span<const double>(energy, 4), std::span<double>(span_rate));
    CHECK(span_rate[3] == c_rate[3]);
    expect_error(CRK_ERR_INVALID_ARGUMENT,
                 [&] { losses.rate(std::span<const double>(energy, 4), std::span<double>(span_rate.data(), 3)); },
                 "span size mismatch");
#endif

    // Scalar special functions, value-returning overloads.
    double q = 0.0;
    CHECK(crk_gamma_q(2.5, 1.5, &q) == CRK_OK);
    CHECK(crk::gamma_q(2.5, 1.5) == q);
    CHECK(close(crk::gamma_p(2.5, 1.5), 1.0 - q, 1e-12));
    double pv = 0.0;
    CHECK(crk_chi2_pvalue(12.0, 10.0, &pv) == CRK_OK);
    CHECK(crk::chi2_pvalue(12.0, 10.0) == pv);
    CHECK(crk::polynomial_feature_count(18, 3) == 1329);

    // An ensemble: the owner's run equals crk_ensemble_generate from C.
    crk_ensemble_params params{};
    params.sn_rate_per_Myr = 3e4;  // about one per 30 yr
    params.t_max_Myr = 10.0;
    params.s_max_kpc = 2.0;
    params.spatial = CRK_SPATIAL_UNIFORM_DISC;
    params.poisson_count = 0;
    params.spectrum = crk::source_spectrum_from_energy(1e49, 1.0, 2.2, 1e4);
    const double grid[3] = {10.0, 100.0, 1000.0};
    double c_flux[2 * 3], flux[2 * 3];
    CHECK(crk_ensemble_generate(ct, &params, grid, 3, 7, 0, 2, 1, c_flux) == CRK_OK);
    const crk::ensemble ens = crk::ensemble_new(tr, params, grid, 3);
    ens.run(7, 0, 2, 1, flux, nullptr, nullptr);
    for (int i = 0; i < 6; ++i) CHECK(close(flux[i], c_flux[i], 1e-12) || flux[i] == c_flux[i]);
    size_t n_sources = 0;
    ens.sources(7, 0, nullptr, nullptr, 0, &n_sources);
    CHECK(n_sources > 0);

    crk_transport_free(ct);
    crk_losses_free(cl);
}

static void test_errors() {
    expect_error(CRK_ERR_INVALID_ARGUMENT, [] { (void)crk::losses_new_thomson(-1.0); }, "negative b0");
    const crk::losses losses = crk::losses_new_thomson(1e-16);
    expect_error(CRK_ERR_INVALID_ARGUMENT, [&] { (void)losses.rate(std::nan("")); }, "NaN energy");
    expect_error(CRK_ERR_INVALID_ARGUMENT, [] { (void)crk::transport_new(crk::losses_new_thomson(1e-16), -1.0, 0.6, 4.0, 1.0, 1e7); },
                 "negative kappa0");
    const crk::transport tr = crk::transport_new(losses, 3e28, 0.6, 4.0, 1.0, 1e4);
    expect_error(CRK_ERR_OUT_OF_DOMAIN, [&] { (void)tr.initial_energy(1e5, 0.1); }, "energy above the table");
    expect_error(CRK_ERR_NULL_POINTER, [&] { crk::losses_rate(nullptr, nullptr, 1, nullptr); }, "NULL handle");
    expect_error(CRK_ERR_IO, [] { (void)crk::made_load(std::string("/nonexistent/model.safetensors")); }, "missing file");
    expect_error(CRK_ERR_INVALID_ARGUMENT, [] { (void)crk::chi2_pvalue(-1.0, 3.0); }, "negative chi2");
    // A successful call after a failure: no stale error.
    CHECK(crk::gamma_q(1.0, 0.0) == 1.0);
    CHECK(std::strlen(crk::last_error_message()) == 0);
    CHECK(std::strlen(crk::version()) > 0);
}

static void test_gpu_wrappers() {
    // Without CUDA (or a build without the `cuda` feature) the count is 0 and the GPU calls
    // throw CRK_ERR_NO_DEVICE; with a device they run.
    const std::int32_t count = crk::device_count();
    CHECK(count >= 0);
    if (count == 0) {
        expect_error(CRK_ERR_NO_DEVICE, [] { (void)crk::device_info(0); }, "device_info without a device");
        float in[4] = {1, 2, 3, 4}, out[4];
        expect_error(CRK_ERR_NO_DEVICE, [&] { crk::global_avgpool_f32_gpu(0, in, 1, 1, 4, out); }, "pool on no device");
    } else {
        const crk::device_properties p = crk::device_info(0);
        CHECK(!p.name.empty() && p.total_bytes > 0);
        float in[4] = {1, 2, 3, 4}, out[1] = {0};
        crk::global_avgpool_f32_gpu(0, in, 1, 1, 4, out);
        CHECK(std::fabs(out[0] - 2.5f) < 1e-6f);
    }
}

// The trainer (crk_made_train, crk::made_trainer): a straight run of 3 epochs against 2 epochs,
// a checkpoint and 1 more epoch in a fresh trainer (bit for bit), and a bad option.
static void test_trainer() {
    const std::size_t n = 600;
    std::vector<float> c(n), x(2 * n);
    std::uint64_t state = 88172645463325252ull;
    auto uniform = [&state] {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return static_cast<double>(state >> 11) / 9007199254740992.0;
    };
    for (std::size_t i = 0; i < n; ++i) {
        c[i] = static_cast<float>(uniform());
        x[2 * i] = static_cast<float>(2.0 * c[i] + 0.3 * (uniform() - 0.5));
        x[2 * i + 1] = static_cast<float>(0.5 * x[2 * i] - c[i] + 0.2 * (uniform() - 0.5));
    }
    crk_made_train_options o = crk::made_train_options_default();
    CHECK(o.n_hidden_layers == 1 && o.hidden_units[0] == 200 && o.n_components == 10);
    o.hidden_units[0] = 8;
    o.n_components = 2;
    o.max_epochs = 3;
    o.patience = 0;
    o.seed = 3;
    o.n_threads = 1;
    crk_made_train_report report{};
    const crk::made straight = crk::made_train(c.data(), 1, x.data(), 2, n, o, &report);
    CHECK(report.epochs_run == 3 && std::isfinite(report.final_train_nll));

    crk::made_trainer t = crk::made_trainer_new(c.data(), 1, x.data(), 2, n, o);
    const crk_made_epoch_report e1 = t.epoch();
    CHECK(e1.epoch == 1 && std::isfinite(e1.train_nll));
    t.epoch();
    CHECK(t.finished() == 0);
    const std::string path = "test_wrappers_checkpoint.safetensors";
    t.checkpoint(path);
    crk::made_trainer resumed = crk::made_trainer_new(c.data(), 1, x.data(), 2, n, o);
    resumed.resume(path);
    CHECK(resumed.epoch().epoch == 3);
    CHECK(resumed.finished() == 1 && resumed.report().epochs_run == 3);
    const crk::made model = resumed.model();
    std::vector<float> a(n), b(n);
    straight.log_prob(c.data(), x.data(), n, 1, a.data());
    model.log_prob(c.data(), x.data(), n, 1, b.data());
    CHECK(std::memcmp(a.data(), b.data(), n * sizeof(float)) == 0);
    std::remove(path.c_str());

    crk_made_train_options bad = o;
    bad.n_hidden_layers = 9;
    expect_error(CRK_ERR_INVALID_ARGUMENT, [&] { (void)crk::made_train(c.data(), 1, x.data(), 2, n, bad); },
                 "more than 8 layers");
    crk::made_trainer fresh = crk::made_trainer_new(c.data(), 1, x.data(), 2, n, o);
    expect_error(CRK_ERR_IO, [&] { fresh.resume(std::string("/nonexistent/checkpoint.safetensors")); },
                 "missing checkpoint");
}

int main() {
    try {
        test_raii();
        test_numbers_against_c();
        test_errors();
        test_gpu_wrappers();
        test_trainer();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "unexpected exception: %s\n", e.what());
        return 2;
    }
    if (failures != 0) {
        std::fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    std::printf("C++ wrapper tests passed (crkernels %s)\n", crk::version());
    return 0;
}

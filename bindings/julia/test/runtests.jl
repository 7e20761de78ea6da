# Untested here (no Julia on the development machine): run with
#   cargo build --release && julia --project=bindings/julia bindings/julia/test/runtests.jl
using Test
using Crkernels

@testset "Crkernels" begin
    @test occursin(r"^\d+\.\d+\.\d+$", version())
    @test length(Crkernels.C_FUNCTIONS) > 50

    # Thomson losses: b(E) = b0 E^2, and the transport's closed form E0 = E / (1 - b0 E t).
    b0 = 2e-16
    thomson = Losses(b0)
    @test loss_rate(thomson, [10.0, 100.0]) ≈ b0 .* [10.0, 100.0] .^ 2 rtol = 1e-12
    tr = Transport(thomson, 3e28, 0.6, 4.0, 1.0, 1e7)
    myr = 3.15576e13
    e = [10.0, 100.0, 1000.0]
    @test initial_energy(tr, e, fill(0.1, 3)) ≈ e ./ (1 .- b0 * myr .* e .* 0.1) rtol = 1e-9

    # Errors carry the status and the library's message.
    err = try
        loss_rate(thomson, [-1.0]); nothing
    catch ex
        ex
    end
    @test err isa CrkError && err.status == Crkernels.CRK_ERR_INVALID_ARGUMENT
    @test occursin("finite and > 0", err.message)

    # An ensemble: realisation 12 equals the flux of its own sources.
    losses = Losses(Crkernels.CRK_LOSS_KN_EXACT, Crkernels.CRK_ISRF_DELAHAYE2010, 3.0)
    tr = Transport(losses, 3e28, 0.6, 4.0, 100.0, 1e7)
    energy = 10 .^ (2.4 .+ 0.1 .* (0:5))
    params = EnsembleParams(4e3, 7.0, 10.0, Crkernels.CRK_SPATIAL_SPIRAL_ARMS, 0,
                            SourceSpectrum(1e48, 1.0, 2.2, 1e4))
    ens = Ensemble(tr, params, energy)
    flux = run_ensemble(ens, 42, 10, 3; threads=2)
    @test size(flux) == (6, 3)
    d, t = sources(ens, 42, 12)
    row = similar(energy)
    spectrum = Ref(params.spectrum)
    GC.@preserve tr @test Crkernels.crk_flux_from_sources(tr.ptr, spectrum, d, t, length(d), energy,
                                                          length(energy), row) == Crkernels.CRK_OK
    @test row ≈ flux[:, 3] rtol = 1e-12
    @test device_count() >= 0
end

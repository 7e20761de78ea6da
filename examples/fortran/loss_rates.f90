! Loss rates, transport and a source ensemble from Fortran, through bindings/fortran/crkernels.f90.
!   cargo build --release
!   gfortran -std=f2008 bindings/fortran/crkernels.f90 examples/fortran/loss_rates.f90 \
!       target/release/libcrkernels.a -lm -lpthread -ldl && ./a.out
! Uses the handle-owning derived types (freed by their final procedures), checks the Thomson
! closed form, the stat/errmsg error path, a size check, an ensemble realisation against its
! own sources, the GPU entry points (CRK_ERR_NO_DEVICE without a GPU) and one raw bind(C)
! call, so tests/c_abi.rs runs it as a test. It exits non-zero on any failure.
program loss_rates
  use, intrinsic :: iso_c_binding
  use crkernels
  implicit none

  print '(2a)', "crkernels ", crk_version_string()
  call losses_and_transport()
  call ensemble()
  call raw_interface()
  print '(a)', "all Fortran checks passed"

contains

  subroutine require(condition, what)
    logical, intent(in) :: condition
    character(len=*), intent(in) :: what
    if (.not. condition) then
      print '(2a)', "FAILED: ", what
      error stop 1
    end if
  end subroutine require

  subroutine losses_and_transport()
    type(crk_losses_t) :: losses, thomson
    type(crk_transport_t) :: transport
    real(c_double), parameter :: b0 = 2.0d-16, myr = 3.15576d13
    real(c_double) :: energy(3) = [10.0d0, 100.0d0, 1000.0d0], age(3) = 0.1d0
    real(c_double) :: rate(3), e0(3), short(2)
    character(len=:), allocatable :: errmsg
    integer :: i, stat

    ! Klein-Nishina losses on the CMB plus a 5000 K component, B = 3 uG.
    call losses%init(CRK_LOSS_KN_EXACT, [crk_photon_field(2.7255d0, 0.2606d0), &
        crk_photon_field(5000.0d0, 0.3d0)], 3.0d0)
    call losses%rate(energy, rate)
    do i = 1, 3
      print '(a, f7.1, a, es11.4, a)', "E = ", energy(i), " GeV: b = ", rate(i), " GeV/s"
    end do
    call require(all(rate > 0) .and. rate(3) > rate(2), "loss rates positive and increasing")

    ! Thomson transport against its closed form E0 = E / (1 - b0 E t).
    call thomson%thomson(b0)
    call transport%init(thomson, 3.0d28, 0.6d0, 4.0d0, 1.0d0, 1.0d7)
    call transport%initial_energy(energy, age, e0)
    do i = 1, 3
      call require(abs(e0(i) / (energy(i) / (1 - b0 * myr * energy(i) * age(i))) - 1) < 1d-9, &
          "E0 equals the Thomson closed form")
    end do
    print '(a, f10.3, a)', "E0(1000 GeV, 0.1 Myr) = ", e0(3), " GeV (Thomson, b0 = 2e-16 /GeV/s)"

    ! Errors: with stat present the call returns the status and the message.
    call losses%rate([-1.0d0], short(1:1), stat, errmsg)
    call require(stat == CRK_ERR_INVALID_ARGUMENT .and. len(errmsg) > 0, "negative energy rejected")
    print '(2a)', "negative energy: ", errmsg
    call losses%rate(energy, short, stat, errmsg)
    call require(stat == CRK_ERR_INVALID_ARGUMENT, "size mismatch rejected")
    print '(2a)', "size mismatch: ", errmsg
    call losses%rate(energy, rate, stat)
    call require(stat == CRK_OK, "stat is CRK_OK after a good call")
  end subroutine losses_and_transport

  subroutine ensemble()
    integer, parameter :: n_e = 6
    type(crk_losses_t) :: losses
    type(crk_transport_t) :: transport
    type(crk_ensemble_t) :: ens
    type(crk_ensemble_params) :: params
    real(c_double) :: energy(n_e), flux(n_e, 3), row(n_e), gpu_flux(n_e, 1)
    real(c_double), allocatable :: distance(:), age(:)
    character(len=:), allocatable :: errmsg
    integer :: i, stat, devices

    energy = [(10.0d0**(2.4d0 + 0.1d0 * i), i = 0, n_e - 1)]
    call losses%preset(CRK_LOSS_KN_EXACT, CRK_ISRF_DELAHAYE2010, 3.0d0)
    call transport%init(losses, 3.0d28, 0.6d0, 4.0d0, 100.0d0, 1.0d7)
    params%sn_rate_per_Myr = 4.0d3
    params%t_max_Myr = 7.0d0
    params%s_max_kpc = 10.0d0
    params%spatial = CRK_SPATIAL_SPIRAL_ARMS
    params%poisson_count = 0
    call require(crk_source_spectrum_from_energy(1.0d48, 1.0d0, 2.2d0, 1.0d4, params%spectrum) &
        == CRK_OK, "crk_source_spectrum_from_energy")
    call ens%init(transport, params, energy)

    ! Realisations 10, 11, 12 (columns), then realisation 12 again from its own sources.
    call ens%run(42_c_int64_t, 10_c_int64_t, flux, n_threads=2)
    call ens%sources(42_c_int64_t, 12_c_int64_t, distance, age)
    call require(size(distance) > 0, "realisation 12 has sources")
    call require(crk_flux_from_sources(transport%ptr, params%spectrum, distance, age, &
        size(distance, kind=c_size_t), energy, int(n_e, c_size_t), row) == CRK_OK, &
        "crk_flux_from_sources")
    call require(all(abs(row / flux(:, 3) - 1) < 1d-12), "sources reproduce the realisation")
    print '(a, i0, a, es11.4)', "realisation 12: ", size(distance), " sources, flux(E1) = ", flux(1, 3)

    ! A flux array of the wrong shape is refused before any work.
    call ens%run(42_c_int64_t, 0_c_int64_t, flux(1:n_e - 1, :), stat=stat, errmsg=errmsg)
    call require(stat == CRK_ERR_INVALID_ARGUMENT, "flux shape checked")

    ! The GPU path: CRK_ERR_NO_DEVICE where there is no CUDA device (or no `cuda` feature).
    devices = crk_device_count_checked()
    call ens%run_gpu(0, 42_c_int64_t, 12_c_int64_t, gpu_flux, stat, errmsg)
    if (devices == 0) then
      call require(stat == CRK_ERR_NO_DEVICE, "no device: CRK_ERR_NO_DEVICE")
      print '(2a)', "GPU: ", errmsg
    else
      call require(stat == CRK_OK, "GPU run")
      call require(all(abs(gpu_flux(:, 1) / flux(:, 3) - 1) < 1d-10), "GPU equals CPU")
      print '(a, i0, a)', "GPU: ", devices, " device(s), run matches the CPU"
    end if
  end subroutine ensemble

  ! The raw layer: the C function under its own name, status returned.
  subroutine raw_interface()
    type(c_ptr) :: losses
    real(c_double) :: rate(1)
    call require(crk_losses_new_thomson(1.0d-16, losses) == CRK_OK, "crk_losses_new_thomson")
    call require(crk_losses_rate(losses, [100.0d0], 1_c_size_t, rate) == CRK_OK, "crk_losses_rate")
    call require(abs(rate(1) / 1.0d-12 - 1) < 1d-12, "Thomson b(E) = b0 E^2")
    call crk_losses_free(losses)
  end subroutine raw_interface
end program loss_rates

! Loss rates and initial energies from Fortran, through include/crkernels.f90.
!   cargo build --release
!   gfortran -std=f2008 include/crkernels.f90 examples/fortran/loss_rates.f90 \
!       target/release/libcrkernels.a -lm -lpthread -ldl
! Checks the Thomson closed forms and a bad-input status, so it doubles as a test.
program loss_rates
  use, intrinsic :: iso_c_binding
  use crkernels
  implicit none
  type(c_ptr) :: losses, thomson, transport
  real(c_double) :: energy(3) = [10.0d0, 100.0d0, 1000.0d0], age(3) = [0.1d0, 0.1d0, 0.1d0]
  real(c_double) :: rate(3), e0(3), bad(1) = [-1.0d0], out(1)
  real(c_double), parameter :: b0 = 2.0d-16, myr = 3.15576d13
  type(crk_photon_field) :: fields(2)
  integer(c_int32_t) :: status
  integer :: i

  fields(1) = crk_photon_field(2.7255d0, 0.2606d0)
  fields(2) = crk_photon_field(5000.0d0, 0.3d0)
  call check(crk_losses_new(CRK_LOSS_KN_EXACT, fields, 2_c_size_t, 3.0d0, losses), "crk_losses_new")
  call check(crk_losses_rate(losses, energy, 3_c_size_t, rate), "crk_losses_rate")
  do i = 1, 3
    print '(a, f7.1, a, es11.4, a)', "E = ", energy(i), " GeV: b = ", rate(i), " GeV/s"
  end do

  ! Thomson transport against its closed form E0 = E / (1 - b0 E t).
  call check(crk_losses_new_thomson(b0, thomson), "crk_losses_new_thomson")
  call check(crk_transport_new(thomson, 3.0d28, 0.6d0, 4.0d0, 1.0d0, 1.0d7, transport), "crk_transport_new")
  call check(crk_transport_initial_energy(transport, energy, age, 3_c_size_t, e0), "initial energy")
  do i = 1, 3
    if (abs(e0(i) / (energy(i) / (1.0d0 - b0 * myr * energy(i) * age(i))) - 1.0d0) > 1.0d-9) then
      print *, "E0 differs from the closed form at E =", energy(i), e0(i)
      stop 1
    end if
  end do
  print '(a, f10.3, a)', "E0(1000 GeV, 0.1 Myr) = ", e0(3), " GeV (Thomson, b0 = 2e-16 /GeV/s)"

  status = crk_losses_rate(losses, bad, 1_c_size_t, out)
  if (status /= CRK_ERR_INVALID_ARGUMENT .or. len(crk_error_message()) == 0) then
    print *, "a negative energy must give CRK_ERR_INVALID_ARGUMENT"
    stop 1
  end if
  print '(a, a)', "negative energy: ", crk_error_message()

  call crk_transport_free(transport)
  call crk_losses_free(thomson)
  call crk_losses_free(losses)

contains
  subroutine check(status, what)
    integer(c_int32_t), intent(in) :: status
    character(len=*), intent(in) :: what
    if (status /= CRK_OK) then
      print *, what, " failed: ", crk_error_message()
      stop 1
    end if
  end subroutine check
end program loss_rates

! Fortran 2003 bindings (iso_c_binding) for the crkernels C ABI in crkernels.h.
! Written by hand to match the header; tests/c_abi.rs compiles and runs
! examples/fortran/loss_rates.f90 against the static library to keep them in step.
!
! Every function returns a status (CRK_OK = 0); crk_error_message() returns the reason for the
! last failure on this thread. Arrays are passed as plain double precision arrays; n is
! integer(c_size_t). Handles are type(c_ptr), released with crk_losses_free /
! crk_transport_free.
module crkernels
  use, intrinsic :: iso_c_binding
  implicit none


  integer(c_int32_t), parameter :: CRK_OK = 0
  integer(c_int32_t), parameter :: CRK_ERR_NULL_POINTER = 1
  integer(c_int32_t), parameter :: CRK_ERR_INVALID_ARGUMENT = 2
  integer(c_int32_t), parameter :: CRK_ERR_OUT_OF_DOMAIN = 3
  integer(c_int32_t), parameter :: CRK_ERR_IO = 4
  integer(c_int32_t), parameter :: CRK_ERR_FORMAT = 5
  integer(c_int32_t), parameter :: CRK_ERR_NO_DEVICE = 6
  integer(c_int32_t), parameter :: CRK_ERR_DEVICE = 7
  integer(c_int32_t), parameter :: CRK_ERR_PANIC = 8

  integer(c_int32_t), parameter :: CRK_LOSS_THOMSON = 0
  integer(c_int32_t), parameter :: CRK_LOSS_KN_EXPANSION = 1
  integer(c_int32_t), parameter :: CRK_LOSS_KN_EXACT = 2

  integer(c_int32_t), parameter :: CRK_ISRF_CMB = 0
  integer(c_int32_t), parameter :: CRK_ISRF_DELAHAYE2010 = 1
  integer(c_int32_t), parameter :: CRK_ISRF_GALPROP_6_5KPC = 2
  integer(c_int32_t), parameter :: CRK_ISRF_SCHLICKEISER2002 = 3

  ! One greybody component: temperature [K], energy density [eV/cm^3].
  type, bind(C) :: crk_photon_field
    real(c_double) :: temperature_K
    real(c_double) :: energy_density_eV_per_cm3
  end type crk_photon_field

  interface
    function crk_losses_new(model, fields, n_fields, magnetic_field_uG, out) bind(C, name="crk_losses_new")
      import :: c_int32_t, c_size_t, c_double, c_ptr, crk_photon_field
      integer(c_int32_t), value :: model
      type(crk_photon_field), intent(in) :: fields(*)
      integer(c_size_t), value :: n_fields
      real(c_double), value :: magnetic_field_uG
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: crk_losses_new
    end function

    function crk_losses_new_preset(model, preset, magnetic_field_uG, out) bind(C, name="crk_losses_new_preset")
      import :: c_int32_t, c_double, c_ptr
      integer(c_int32_t), value :: model, preset
      real(c_double), value :: magnetic_field_uG
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: crk_losses_new_preset
    end function

    function crk_losses_new_thomson(b0_per_GeV_per_s, out) bind(C, name="crk_losses_new_thomson")
      import :: c_int32_t, c_double, c_ptr
      real(c_double), value :: b0_per_GeV_per_s
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: crk_losses_new_thomson
    end function

    function crk_losses_rate(losses, energy_GeV, n, rate_GeV_per_s) bind(C, name="crk_losses_rate")
      import :: c_int32_t, c_size_t, c_double, c_ptr
      type(c_ptr), value :: losses
      real(c_double), intent(in) :: energy_GeV(*)
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: rate_GeV_per_s(*)
      integer(c_int32_t) :: crk_losses_rate
    end function

    subroutine crk_losses_free(losses) bind(C, name="crk_losses_free")
      import :: c_ptr
      type(c_ptr), value :: losses
    end subroutine

    function crk_transport_new(losses, kappa0_cm2_per_s, delta, z_max_kpc, energy_min_GeV, energy_max_GeV, out) &
        bind(C, name="crk_transport_new")
      import :: c_int32_t, c_double, c_ptr
      type(c_ptr), value :: losses
      real(c_double), value :: kappa0_cm2_per_s, delta, z_max_kpc, energy_min_GeV, energy_max_GeV
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: crk_transport_new
    end function

    function crk_transport_initial_energy(tr, energy_GeV, age_Myr, n, initial_energy_GeV) &
        bind(C, name="crk_transport_initial_energy")
      import :: c_int32_t, c_size_t, c_double, c_ptr
      type(c_ptr), value :: tr
      real(c_double), intent(in) :: energy_GeV(*), age_Myr(*)
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: initial_energy_GeV(*)
      integer(c_int32_t) :: crk_transport_initial_energy
    end function

    function crk_transport_loss_length2(tr, energy_GeV, initial_energy_GeV, n, l2_kpc2) &
        bind(C, name="crk_transport_loss_length2")
      import :: c_int32_t, c_size_t, c_double, c_ptr
      type(c_ptr), value :: tr
      real(c_double), intent(in) :: energy_GeV(*), initial_energy_GeV(*)
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: l2_kpc2(*)
      integer(c_int32_t) :: crk_transport_loss_length2
    end function

    function crk_transport_loss_time(tr, energy_GeV, initial_energy_GeV, n, tau_Myr) &
        bind(C, name="crk_transport_loss_time")
      import :: c_int32_t, c_size_t, c_double, c_ptr
      type(c_ptr), value :: tr
      real(c_double), intent(in) :: energy_GeV(*), initial_energy_GeV(*)
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: tau_Myr(*)
      integer(c_int32_t) :: crk_transport_loss_time
    end function

    function crk_transport_max_age(tr, energy_GeV, n, max_age_Myr) bind(C, name="crk_transport_max_age")
      import :: c_int32_t, c_size_t, c_double, c_ptr
      type(c_ptr), value :: tr
      real(c_double), intent(in) :: energy_GeV(*)
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: max_age_Myr(*)
      integer(c_int32_t) :: crk_transport_max_age
    end function

    subroutine crk_transport_free(tr) bind(C, name="crk_transport_free")
      import :: c_ptr
      type(c_ptr), value :: tr
    end subroutine

    function crk_last_error_message() bind(C, name="crk_last_error_message")
      import :: c_ptr
      type(c_ptr) :: crk_last_error_message
    end function

    function crk_c_strlen(s) bind(C, name="strlen")
      import :: c_ptr, c_size_t
      type(c_ptr), value :: s
      integer(c_size_t) :: crk_c_strlen
    end function
  end interface

contains

  ! The reason for the last failed call on this thread, as a Fortran string.
  function crk_error_message() result(message)
    character(len=:), allocatable :: message
    type(c_ptr) :: p
    character(kind=c_char), pointer :: chars(:)
    integer :: i, n
    p = crk_last_error_message()
    n = int(crk_c_strlen(p))
    call c_f_pointer(p, chars, [n])
    allocate(character(len=n) :: message)
    do i = 1, n
      message(i:i) = chars(i)
    end do
  end function crk_error_message
end module crkernels

! Fortran 2008 bindings for the crkernels C ABI (include/crkernels.h).
!
! Two layers, in one module (`use crkernels`):
!
! 1. Raw interfaces, GENERATED from the header by scripts/gen_fortran.py (between the BEGIN
!    and END GENERATED markers; CI checks them with --check): the CRK_* constants, bind(C)
!    derived types mirroring the C structs (crk_photon_field, crk_ensemble_params, ...) and one
!    `bind(C, name="crk_...")` interface per exported C function, under the C name. They
!    return the crk_status (CRK_OK = 0); handles are type(c_ptr); arrays are assumed-size;
!    uint64_t is integer(c_int64_t); in the *_gpu_device functions the data arguments are
!    DEVICE pointers, type(c_ptr) by value (from cudaMalloc, e.g. via CUDA Fortran's c_devloc
!    or a C helper).
!
! 2. A thin checked layer, written by hand below: derived types that own a handle and free it
!    in a final procedure (crk_losses_t, crk_transport_t, crk_ensemble_t, crk_made_t,
!    crk_network_t, crk_surrogate_t), with type-bound procedures on assumed-shape arrays whose
!    sizes are checked. Each takes optional `stat` (integer, CRK_OK or a CRK_ERR_* code) and
!    `errmsg` (character(:), allocatable) arguments: without `stat`, an error stops the program
!    (error stop) with the message; with it, the procedure returns at once, writes nothing
!    else, and the caller must test stat. Handles are not meant to be copied (intrinsic
!    assignment would copy the pointer and both copies would free it): pass them as arguments.
!    Free procedures in the same style take the C arrays in Fortran order (a C [n][c][h][w] is
!    x(w, h, c, n)): crk_conv2d, crk_conv1d, crk_maxpool2d, crk_avgpool2d, crk_global_avgpool,
!    and crk_<name>_checked for crk_device_count, crk_diffusion_coefficient,
!    crk_injection_rigidity, crk_force_field_map and crk_mixture_log_pdf.
!
! Build: compile this file before the code that uses it, link libcrkernels.a (or .so):
!   gfortran -std=f2008 bindings/fortran/crkernels.f90 my_program.f90 \
!       target/release/libcrkernels.a -lm -lpthread -ldl
module crkernels
  use, intrinsic :: iso_c_binding
  use, intrinsic :: iso_fortran_env, only: error_unit
  implicit none

  ! BEGIN GENERATED (scripts/gen_fortran.py)
  ! Do not edit by hand: regenerate with python3 scripts/gen_fortran.py.

  integer(c_int32_t), parameter :: CRK_ISRF_MAX_COMPONENTS = 6
  real(c_double), parameter :: CRK_PROTON_MASS_GEV = 0.93827208816_c_double
  real(c_double), parameter :: CRK_ELECTRON_MASS_GEV = 0.51099895000e-3_c_double
  real(c_double), parameter :: CRK_ATOMIC_MASS_UNIT_GEV = 0.93149410242_c_double
  real(c_double), parameter :: CRK_CHOLIS_R0_GV = 0.5_c_double
  integer(c_int32_t), parameter :: CRK_ORDER_RANDOM = 0
  integer(c_int32_t), parameter :: CRK_ORDER_NATURAL = 1
  integer(c_int32_t), parameter :: CRK_CONTEXT_SECRET = 0
  integer(c_int32_t), parameter :: CRK_CONTEXT_PLAIN = 1
  integer(c_int32_t), parameter :: CRK_SCHEDULE_CONSTANT = 0
  integer(c_int32_t), parameter :: CRK_SCHEDULE_COSINE = 1
  integer(c_int32_t), parameter :: CRK_SCHEDULE_STEP = 2
  integer(c_int32_t), parameter :: CRK_OK = 0
  integer(c_int32_t), parameter :: CRK_ERR_NULL_POINTER = 1
  integer(c_int32_t), parameter :: CRK_ERR_INVALID_ARGUMENT = 2
  integer(c_int32_t), parameter :: CRK_ERR_OUT_OF_DOMAIN = 3
  integer(c_int32_t), parameter :: CRK_ERR_IO = 4
  integer(c_int32_t), parameter :: CRK_ERR_FORMAT = 5
  integer(c_int32_t), parameter :: CRK_ERR_NO_DEVICE = 6
  integer(c_int32_t), parameter :: CRK_ERR_DEVICE = 7
  integer(c_int32_t), parameter :: CRK_ERR_PANIC = 8
  integer(c_int32_t), parameter :: CRK_ERR_CANCELLED = 9
  integer(c_int32_t), parameter :: CRK_SPATIAL_UNIFORM_DISC = 0
  integer(c_int32_t), parameter :: CRK_SPATIAL_RADIAL_CB98 = 1
  integer(c_int32_t), parameter :: CRK_SPATIAL_SPIRAL_ARMS = 2
  integer(c_int32_t), parameter :: CRK_PRECISION_EXACT = 0
  integer(c_int32_t), parameter :: CRK_PRECISION_F32 = 1
  integer(c_int32_t), parameter :: CRK_LOSS_THOMSON = 0
  integer(c_int32_t), parameter :: CRK_LOSS_KN_EXPANSION = 1
  integer(c_int32_t), parameter :: CRK_LOSS_KN_EXACT = 2
  integer(c_int32_t), parameter :: CRK_ISRF_CMB = 0
  integer(c_int32_t), parameter :: CRK_ISRF_DELAHAYE2010 = 1
  integer(c_int32_t), parameter :: CRK_ISRF_GALPROP_6_5KPC = 2
  integer(c_int32_t), parameter :: CRK_ISRF_SCHLICKEISER2002 = 3
  integer(c_int32_t), parameter :: CRK_ACTIVATION_FROM_FILE = -1
  integer(c_int32_t), parameter :: CRK_ACTIVATION_SIGMOID = 0
  integer(c_int32_t), parameter :: CRK_ACTIVATION_TANH = 1
  integer(c_int32_t), parameter :: CRK_ACTIVATION_RELU = 2
  integer(c_int32_t), parameter :: CRK_ACTIVATION_LEAKY_RELU = 3
  integer(c_int32_t), parameter :: CRK_ACTIVATION_ELU = 4
  integer(c_int32_t), parameter :: CRK_ABSCISSA_RIGIDITY = 0
  integer(c_int32_t), parameter :: CRK_ABSCISSA_KINETIC_PER_NUCLEON = 1
  integer(c_int32_t), parameter :: CRK_WEIGHTS_NONE = 0
  integer(c_int32_t), parameter :: CRK_WEIGHTS_DISTANCE = 1
  integer(c_int32_t), parameter :: CRK_WEIGHTS_EXPONENTIAL = 2
  integer(c_int32_t), parameter :: CRK_WEIGHTS_CUSTOM = 3

  type, bind(C) :: crk_two_sample_options
    integer(c_size_t) :: n_hidden_layers
    integer(c_size_t) :: hidden_units(8)
    integer(c_size_t) :: batch_size
    real(c_double) :: learning_rate
    integer(c_size_t) :: max_epochs
    integer(c_size_t) :: patience
    real(c_double) :: validation_fraction
    real(c_double) :: test_fraction
    integer(c_int64_t) :: seed
  end type crk_two_sample_options

  type, bind(C) :: crk_two_sample_report
    real(c_double) :: test_accuracy
    real(c_double) :: test_bce
    real(c_double) :: null_standard_error
    real(c_double) :: validation_accuracy
    real(c_double) :: best_validation_bce
    real(c_double) :: final_train_bce
    integer(c_size_t) :: epochs_run
    integer(c_size_t) :: best_epoch
    integer(c_size_t) :: n_per_class
    integer(c_size_t) :: n_train
    integer(c_size_t) :: n_validation
    integer(c_size_t) :: n_test
  end type crk_two_sample_report

  type, bind(C) :: crk_source_spectrum
    real(c_double) :: q_star_per_GeV
    real(c_double) :: gamma
    real(c_double) :: cutoff_GeV
  end type crk_source_spectrum

  type, bind(C) :: crk_ensemble_params
    real(c_double) :: sn_rate_per_Myr
    real(c_double) :: t_max_Myr
    real(c_double) :: s_max_kpc
    integer(c_int32_t) :: spatial
    integer(c_int32_t) :: poisson_count
    type(crk_source_spectrum) :: spectrum
  end type crk_ensemble_params

  type, bind(C) :: crk_photon_field
    real(c_double) :: temperature_K
    real(c_double) :: energy_density_eV_per_cm3
  end type crk_photon_field

  type, bind(C) :: crk_made_load_options
    integer(c_int32_t) :: activation
    real(c_double) :: epsilon
    integer(c_int32_t) :: sbi_dummy_input
  end type crk_made_load_options

  type, bind(C) :: crk_conv_params
    integer(c_size_t) :: stride(2)
    integer(c_size_t) :: padding(2)
    integer(c_size_t) :: dilation(2)
    integer(c_size_t) :: groups
  end type crk_conv_params

  type, bind(C) :: crk_pool_params
    integer(c_size_t) :: kernel(2)
    integer(c_size_t) :: stride(2)
    integer(c_size_t) :: padding(2)
    integer(c_int32_t) :: count_include_pad
  end type crk_pool_params

  type, bind(C) :: crk_diffusion_params
    real(c_double) :: d0_cm2_per_s
    real(c_double) :: radial_scale_kpc
    real(c_double) :: vertical_scale_kpc
    real(c_double) :: delta_low
    real(c_double) :: break_low_GV
    real(c_double) :: softness_low
    real(c_double) :: delta
    real(c_double) :: break_high_GV
    real(c_double) :: softness_high
    real(c_double) :: delta_high
  end type crk_diffusion_params

  type, bind(C) :: crk_injection_params
    real(c_double) :: q0
    real(c_double) :: gamma_low
    real(c_double) :: break_GV
    real(c_double) :: softness
    real(c_double) :: gamma_high
    real(c_double) :: cutoff_GV
  end type crk_injection_params

  type, bind(C) :: crk_particle
    integer(c_int32_t) :: mass_number
    integer(c_int32_t) :: charge
    real(c_double) :: nucleon_mass_GeV
  end type crk_particle

  type, bind(C) :: crk_modulation_params
    real(c_double) :: phi0_GV
    real(c_double) :: phi1_plus_GV
    real(c_double) :: phi1_minus_GV
  end type crk_modulation_params

  type, bind(C) :: crk_experiment_result
    real(c_double) :: chi2
    real(c_double) :: ndof
    real(c_double) :: p_value
    real(c_double) :: nll
  end type crk_experiment_result

  type, bind(C) :: crk_nll_summary
    real(c_double) :: sum_nll
    real(c_double) :: max_nll
    integer(c_size_t) :: worst_experiment
  end type crk_nll_summary

  type, bind(C) :: crk_fit_species
    type(crk_particle) :: particle
    type(c_ptr) :: rigidity_GV
    type(c_ptr) :: flux_per_GV
    integer(c_size_t) :: n_grid
    integer(c_size_t) :: normalisation
  end type crk_fit_species

  type, bind(C) :: crk_fit_parameter
    real(c_double) :: start
    real(c_double) :: lower
    real(c_double) :: upper
  end type crk_fit_parameter

  type, bind(C) :: crk_data_point
    integer(c_size_t) :: experiment
    integer(c_int32_t) :: numerator
    integer(c_int32_t) :: denominator
    integer(c_int32_t) :: abscissa
    real(c_double) :: x
    real(c_double) :: value
    real(c_double) :: sigma
  end type crk_data_point

  type, bind(C) :: crk_fit_summary
    real(c_double) :: chi2
    real(c_double) :: sum_nll
    real(c_double) :: max_nll
    integer(c_size_t) :: worst_experiment
    integer(c_size_t) :: iterations
    integer(c_int32_t) :: converged
  end type crk_fit_summary

  type, bind(C) :: crk_surrogate_options
    integer(c_int32_t) :: weighting
    type(c_ptr) :: custom_weights
    integer(c_int64_t) :: start_index
    type(c_ptr) :: degrees
    integer(c_size_t) :: n_degrees
    type(c_ptr) :: alphas
    integer(c_size_t) :: n_alphas
  end type crk_surrogate_options

  type, bind(C) :: crk_surrogate_info
    integer(c_size_t) :: n_params
    integer(c_size_t) :: degree
    integer(c_size_t) :: n_features
    integer(c_size_t) :: start_index
    real(c_double) :: alpha
  end type crk_surrogate_info

  type, bind(C) :: crk_surrogate_step
    real(c_double) :: distance
    real(c_double) :: gradient_norm
    real(c_double) :: predicted_nll
    integer(c_int32_t) :: zero_gradient
    integer(c_int32_t) :: at_max_distance
  end type crk_surrogate_step

  type, bind(C) :: crk_made_train_options
    integer(c_size_t) :: n_hidden_layers
    integer(c_size_t) :: hidden_units(8)
    integer(c_size_t) :: n_components
    integer(c_int32_t) :: activation
    integer(c_int32_t) :: order
    integer(c_size_t) :: batch_size
    real(c_double) :: learning_rate
    integer(c_size_t) :: max_epochs
    integer(c_size_t) :: patience
    real(c_double) :: validation_fraction
    integer(c_int64_t) :: seed
    integer(c_size_t) :: n_threads
    integer(c_int32_t) :: context_degrees
    real(c_double) :: weight_decay
    integer(c_int32_t) :: schedule
    real(c_double) :: schedule_value
    integer(c_size_t) :: schedule_every
    real(c_double) :: adam_beta1
    real(c_double) :: adam_beta2
    real(c_double) :: adam_epsilon
  end type crk_made_train_options

  type, bind(C) :: crk_made_train_report
    integer(c_size_t) :: epochs_run
    integer(c_size_t) :: best_epoch
    real(c_double) :: best_validation_nll
    real(c_double) :: final_train_nll
    real(c_double) :: last_validation_nll
    real(c_double) :: seconds
  end type crk_made_train_report

  type, bind(C) :: crk_made_epoch_report
    integer(c_size_t) :: epoch
    real(c_double) :: train_nll
    real(c_double) :: validation_nll
    real(c_double) :: learning_rate
    real(c_double) :: seconds
  end type crk_made_epoch_report

  interface
    function crk_last_error_message() &
        bind(C, name="crk_last_error_message")
      import
      type(c_ptr) :: crk_last_error_message
    end function crk_last_error_message
    function crk_version() &
        bind(C, name="crk_version")
      import
      type(c_ptr) :: crk_version
    end function crk_version
    function crk_vector_isa() &
        bind(C, name="crk_vector_isa")
      import
      type(c_ptr) :: crk_vector_isa
    end function crk_vector_isa
    subroutine crk_two_sample_options_default(options) &
        bind(C, name="crk_two_sample_options_default")
      import
      type(crk_two_sample_options), intent(out) :: options
    end subroutine crk_two_sample_options_default
    function crk_two_sample_test(a, n_a, b, n_b, n_features, options, report) &
        bind(C, name="crk_two_sample_test")
      import
      real(c_float), intent(in) :: a(*)
      integer(c_size_t), value :: n_a
      real(c_float), intent(in) :: b(*)
      integer(c_size_t), value :: n_b
      integer(c_size_t), value :: n_features
      type(crk_two_sample_options), intent(in) :: options
      type(crk_two_sample_report), intent(out) :: report
      integer(c_int32_t) :: crk_two_sample_test
    end function crk_two_sample_test
    function crk_flux_from_sources(tr, spectrum, distance_kpc, age_Myr, n_sources, energy_GeV, &
        n_energies, flux) &
        bind(C, name="crk_flux_from_sources")
      import
      type(c_ptr), value :: tr
      type(crk_source_spectrum), intent(in) :: spectrum
      real(c_double), intent(in) :: distance_kpc(*)
      real(c_double), intent(in) :: age_Myr(*)
      integer(c_size_t), value :: n_sources
      real(c_double), intent(in) :: energy_GeV(*)
      integer(c_size_t), value :: n_energies
      real(c_double), intent(out) :: flux(*)
      integer(c_int32_t) :: crk_flux_from_sources
    end function crk_flux_from_sources
    function crk_source_spectrum_from_energy(energy_erg, energy_min_GeV, gamma, cutoff_GeV, out) &
        bind(C, name="crk_source_spectrum_from_energy")
      import
      real(c_double), value :: energy_erg
      real(c_double), value :: energy_min_GeV
      real(c_double), value :: gamma
      real(c_double), value :: cutoff_GeV
      type(crk_source_spectrum), intent(out) :: out
      integer(c_int32_t) :: crk_source_spectrum_from_energy
    end function crk_source_spectrum_from_energy
    function crk_ensemble_new(tr, params, energy_GeV, n_energies, out) &
        bind(C, name="crk_ensemble_new")
      import
      type(c_ptr), value :: tr
      type(crk_ensemble_params), intent(in) :: params
      real(c_double), intent(in) :: energy_GeV(*)
      integer(c_size_t), value :: n_energies
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: crk_ensemble_new
    end function crk_ensemble_new
    function crk_ensemble_new_with_precision(tr, params, energy_GeV, n_energies, precision, out) &
        bind(C, name="crk_ensemble_new_with_precision")
      import
      type(c_ptr), value :: tr
      type(crk_ensemble_params), intent(in) :: params
      real(c_double), intent(in) :: energy_GeV(*)
      integer(c_size_t), value :: n_energies
      integer(c_int32_t), value :: precision
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: crk_ensemble_new_with_precision
    end function crk_ensemble_new_with_precision
    function crk_ensemble_run(ensemble, seed, first_realisation, n_realisations, n_threads, &
        flux, progress, user_data) &
        bind(C, name="crk_ensemble_run")
      import
      type(c_ptr), value :: ensemble
      integer(c_int64_t), value :: seed
      integer(c_int64_t), value :: first_realisation
      integer(c_size_t), value :: n_realisations
      integer(c_size_t), value :: n_threads
      real(c_double), intent(out) :: flux(*)
      type(c_funptr), value :: progress
      type(c_ptr), value :: user_data
      integer(c_int32_t) :: crk_ensemble_run
    end function crk_ensemble_run
    function crk_ensemble_generate(tr, params, energy_GeV, n_energies, seed, first_realisation, &
        n_realisations, n_threads, flux) &
        bind(C, name="crk_ensemble_generate")
      import
      type(c_ptr), value :: tr
      type(crk_ensemble_params), intent(in) :: params
      real(c_double), intent(in) :: energy_GeV(*)
      integer(c_size_t), value :: n_energies
      integer(c_int64_t), value :: seed
      integer(c_int64_t), value :: first_realisation
      integer(c_size_t), value :: n_realisations
      integer(c_size_t), value :: n_threads
      real(c_double), intent(out) :: flux(*)
      integer(c_int32_t) :: crk_ensemble_generate
    end function crk_ensemble_generate
    function crk_ensemble_sources(ensemble, seed, realisation, distance_kpc, age_Myr, capacity, &
        n_sources) &
        bind(C, name="crk_ensemble_sources")
      import
      type(c_ptr), value :: ensemble
      integer(c_int64_t), value :: seed
      integer(c_int64_t), value :: realisation
      real(c_double), intent(out) :: distance_kpc(*)
      real(c_double), intent(out) :: age_Myr(*)
      integer(c_size_t), value :: capacity
      integer(c_size_t), intent(out) :: n_sources
      integer(c_int32_t) :: crk_ensemble_sources
    end function crk_ensemble_sources
    subroutine crk_ensemble_free(ensemble) &
        bind(C, name="crk_ensemble_free")
      import
      type(c_ptr), value :: ensemble
    end subroutine crk_ensemble_free
    function crk_ensemble_run_gpu(ensemble, device, seed, first_realisation, n_realisations, &
        flux) &
        bind(C, name="crk_ensemble_run_gpu")
      import
      type(c_ptr), value :: ensemble
      integer(c_int32_t), value :: device
      integer(c_int64_t), value :: seed
      integer(c_int64_t), value :: first_realisation
      integer(c_size_t), value :: n_realisations
      real(c_double), intent(out) :: flux(*)
      integer(c_int32_t) :: crk_ensemble_run_gpu
    end function crk_ensemble_run_gpu
    function crk_ensemble_run_gpu_device(ensemble, device, seed, first_realisation, &
        n_realisations, flux_device) &
        bind(C, name="crk_ensemble_run_gpu_device")
      import
      type(c_ptr), value :: ensemble
      integer(c_int32_t), value :: device
      integer(c_int64_t), value :: seed
      integer(c_int64_t), value :: first_realisation
      integer(c_size_t), value :: n_realisations
      type(c_ptr), value :: flux_device
      integer(c_int32_t) :: crk_ensemble_run_gpu_device
    end function crk_ensemble_run_gpu_device
    function crk_ensemble_generate_gpu(tr, params, energy_GeV, n_energies, seed, &
        first_realisation, n_realisations, device, flux) &
        bind(C, name="crk_ensemble_generate_gpu")
      import
      type(c_ptr), value :: tr
      type(crk_ensemble_params), intent(in) :: params
      real(c_double), intent(in) :: energy_GeV(*)
      integer(c_size_t), value :: n_energies
      integer(c_int64_t), value :: seed
      integer(c_int64_t), value :: first_realisation
      integer(c_size_t), value :: n_realisations
      integer(c_int32_t), value :: device
      real(c_double), intent(out) :: flux(*)
      integer(c_int32_t) :: crk_ensemble_generate_gpu
    end function crk_ensemble_generate_gpu
    function crk_device_count(count) &
        bind(C, name="crk_device_count")
      import
      integer(c_int32_t), intent(out) :: count
      integer(c_int32_t) :: crk_device_count
    end function crk_device_count
    function crk_device_info(device, name, capacity, total_bytes, free_bytes, major, minor) &
        bind(C, name="crk_device_info")
      import
      integer(c_int32_t), value :: device
      character(kind=c_char), intent(out) :: name(*)
      integer(c_size_t), value :: capacity
      integer(c_int64_t), intent(out) :: total_bytes
      integer(c_int64_t), intent(out) :: free_bytes
      integer(c_int32_t), intent(out) :: major
      integer(c_int32_t), intent(out) :: minor
      integer(c_int32_t) :: crk_device_info
    end function crk_device_info
    function crk_losses_new(model, fields, n_fields, magnetic_field_uG, out) &
        bind(C, name="crk_losses_new")
      import
      integer(c_int32_t), value :: model
      type(crk_photon_field), intent(in) :: fields(*)
      integer(c_size_t), value :: n_fields
      real(c_double), value :: magnetic_field_uG
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: crk_losses_new
    end function crk_losses_new
    function crk_losses_new_preset(model, preset, magnetic_field_uG, out) &
        bind(C, name="crk_losses_new_preset")
      import
      integer(c_int32_t), value :: model
      integer(c_int32_t), value :: preset
      real(c_double), value :: magnetic_field_uG
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: crk_losses_new_preset
    end function crk_losses_new_preset
    function crk_losses_new_thomson(b0_per_GeV_per_s, out) &
        bind(C, name="crk_losses_new_thomson")
      import
      real(c_double), value :: b0_per_GeV_per_s
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: crk_losses_new_thomson
    end function crk_losses_new_thomson
    function crk_isrf_preset_components(preset, fields, capacity, n_fields) &
        bind(C, name="crk_isrf_preset_components")
      import
      integer(c_int32_t), value :: preset
      type(crk_photon_field), intent(out) :: fields(*)
      integer(c_size_t), value :: capacity
      integer(c_size_t), intent(out) :: n_fields
      integer(c_int32_t) :: crk_isrf_preset_components
    end function crk_isrf_preset_components
    function crk_losses_rate(losses, energy_GeV, n, rate_GeV_per_s) &
        bind(C, name="crk_losses_rate")
      import
      type(c_ptr), value :: losses
      real(c_double), intent(in) :: energy_GeV(*)
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: rate_GeV_per_s(*)
      integer(c_int32_t) :: crk_losses_rate
    end function crk_losses_rate
    subroutine crk_losses_free(losses) &
        bind(C, name="crk_losses_free")
      import
      type(c_ptr), value :: losses
    end subroutine crk_losses_free
    function crk_made_load(path, out) &
        bind(C, name="crk_made_load")
      import
      character(kind=c_char), intent(in) :: path(*)
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: crk_made_load
    end function crk_made_load
    function crk_made_load_with_options(path, options, out) &
        bind(C, name="crk_made_load_with_options")
      import
      character(kind=c_char), intent(in) :: path(*)
      type(crk_made_load_options), intent(in) :: options
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: crk_made_load_with_options
    end function crk_made_load_with_options
    function crk_made_load_buffer(bytes, len, out) &
        bind(C, name="crk_made_load_buffer")
      import
      integer(c_int8_t), intent(in) :: bytes(*)
      integer(c_size_t), value :: len
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: crk_made_load_buffer
    end function crk_made_load_buffer
    function crk_made_load_buffer_with_options(bytes, len, options, out) &
        bind(C, name="crk_made_load_buffer_with_options")
      import
      integer(c_int8_t), intent(in) :: bytes(*)
      integer(c_size_t), value :: len
      type(crk_made_load_options), intent(in) :: options
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: crk_made_load_buffer_with_options
    end function crk_made_load_buffer_with_options
    function crk_made_save(m, path) &
        bind(C, name="crk_made_save")
      import
      type(c_ptr), value :: m
      character(kind=c_char), intent(in) :: path(*)
      integer(c_int32_t) :: crk_made_save
    end function crk_made_save
    function crk_made_workspace_bytes(m, bytes) &
        bind(C, name="crk_made_workspace_bytes")
      import
      type(c_ptr), value :: m
      integer(c_size_t), intent(out) :: bytes
      integer(c_int32_t) :: crk_made_workspace_bytes
    end function crk_made_workspace_bytes
    function crk_made_dims(m, n_context, n_dims, n_components) &
        bind(C, name="crk_made_dims")
      import
      type(c_ptr), value :: m
      integer(c_size_t), intent(out) :: n_context
      integer(c_size_t), intent(out) :: n_dims
      integer(c_size_t), intent(out) :: n_components
      integer(c_int32_t) :: crk_made_dims
    end function crk_made_dims
    function crk_made_order(m, order) &
        bind(C, name="crk_made_order")
      import
      type(c_ptr), value :: m
      integer(c_size_t), intent(out) :: order(*)
      integer(c_int32_t) :: crk_made_order
    end function crk_made_order
    function crk_made_log_prob(m, context, x, n, n_threads, log_prob) &
        bind(C, name="crk_made_log_prob")
      import
      type(c_ptr), value :: m
      real(c_float), intent(in) :: context(*)
      real(c_float), intent(in) :: x(*)
      integer(c_size_t), value :: n
      integer(c_size_t), value :: n_threads
      real(c_float), intent(out) :: log_prob(*)
      integer(c_int32_t) :: crk_made_log_prob
    end function crk_made_log_prob
    function crk_made_log_prob_grad(m, context, x, n, n_threads, log_prob, grad_context, grad_x) &
        bind(C, name="crk_made_log_prob_grad")
      import
      type(c_ptr), value :: m
      real(c_float), intent(in) :: context(*)
      real(c_float), intent(in) :: x(*)
      integer(c_size_t), value :: n
      integer(c_size_t), value :: n_threads
      real(c_float), intent(out) :: log_prob(*)
      real(c_float), intent(out) :: grad_context(*)
      real(c_float), intent(out) :: grad_x(*)
      integer(c_int32_t) :: crk_made_log_prob_grad
    end function crk_made_log_prob_grad
    function crk_made_sample(m, context, n, seed, n_threads, x_out) &
        bind(C, name="crk_made_sample")
      import
      type(c_ptr), value :: m
      real(c_float), intent(in) :: context(*)
      integer(c_size_t), value :: n
      integer(c_int64_t), value :: seed
      integer(c_size_t), value :: n_threads
      real(c_float), intent(out) :: x_out(*)
      integer(c_int32_t) :: crk_made_sample
    end function crk_made_sample
    function crk_made_sample_from(m, context, n, seed, first_row, n_threads, x_out) &
        bind(C, name="crk_made_sample_from")
      import
      type(c_ptr), value :: m
      real(c_float), intent(in) :: context(*)
      integer(c_size_t), value :: n
      integer(c_int64_t), value :: seed
      integer(c_int64_t), value :: first_row
      integer(c_size_t), value :: n_threads
      real(c_float), intent(out) :: x_out(*)
      integer(c_int32_t) :: crk_made_sample_from
    end function crk_made_sample_from
    function crk_made_sample_given(m, context, given_dims, n_given, n, seed, n_threads, x) &
        bind(C, name="crk_made_sample_given")
      import
      type(c_ptr), value :: m
      real(c_float), intent(in) :: context(*)
      integer(c_size_t), intent(in) :: given_dims(*)
      integer(c_size_t), value :: n_given
      integer(c_size_t), value :: n
      integer(c_int64_t), value :: seed
      integer(c_size_t), value :: n_threads
      real(c_float), intent(inout) :: x(*)
      integer(c_int32_t) :: crk_made_sample_given
    end function crk_made_sample_given
    function crk_made_sample_given_from(m, context, given_dims, n_given, n, seed, first_row, &
        n_threads, x) &
        bind(C, name="crk_made_sample_given_from")
      import
      type(c_ptr), value :: m
      real(c_float), intent(in) :: context(*)
      integer(c_size_t), intent(in) :: given_dims(*)
      integer(c_size_t), value :: n_given
      integer(c_size_t), value :: n
      integer(c_int64_t), value :: seed
      integer(c_int64_t), value :: first_row
      integer(c_size_t), value :: n_threads
      real(c_float), intent(inout) :: x(*)
      integer(c_int32_t) :: crk_made_sample_given_from
    end function crk_made_sample_given_from
    function crk_made_log_prob_gpu(m, device, context, x, n, log_prob) &
        bind(C, name="crk_made_log_prob_gpu")
      import
      type(c_ptr), value :: m
      integer(c_int32_t), value :: device
      real(c_float), intent(in) :: context(*)
      real(c_float), intent(in) :: x(*)
      integer(c_size_t), value :: n
      real(c_float), intent(out) :: log_prob(*)
      integer(c_int32_t) :: crk_made_log_prob_gpu
    end function crk_made_log_prob_gpu
    function crk_made_sample_gpu(m, device, context, n, seed, x_out) &
        bind(C, name="crk_made_sample_gpu")
      import
      type(c_ptr), value :: m
      integer(c_int32_t), value :: device
      real(c_float), intent(in) :: context(*)
      integer(c_size_t), value :: n
      integer(c_int64_t), value :: seed
      real(c_float), intent(out) :: x_out(*)
      integer(c_int32_t) :: crk_made_sample_gpu
    end function crk_made_sample_gpu
    function crk_made_sample_gpu_from(m, device, context, n, seed, first_row, x_out) &
        bind(C, name="crk_made_sample_gpu_from")
      import
      type(c_ptr), value :: m
      integer(c_int32_t), value :: device
      real(c_float), intent(in) :: context(*)
      integer(c_size_t), value :: n
      integer(c_int64_t), value :: seed
      integer(c_int64_t), value :: first_row
      real(c_float), intent(out) :: x_out(*)
      integer(c_int32_t) :: crk_made_sample_gpu_from
    end function crk_made_sample_gpu_from
    function crk_made_sample_given_gpu(m, device, context, given_dims, n_given, n, seed, x) &
        bind(C, name="crk_made_sample_given_gpu")
      import
      type(c_ptr), value :: m
      integer(c_int32_t), value :: device
      real(c_float), intent(in) :: context(*)
      integer(c_size_t), intent(in) :: given_dims(*)
      integer(c_size_t), value :: n_given
      integer(c_size_t), value :: n
      integer(c_int64_t), value :: seed
      real(c_float), intent(inout) :: x(*)
      integer(c_int32_t) :: crk_made_sample_given_gpu
    end function crk_made_sample_given_gpu
    function crk_made_sample_given_gpu_from(m, device, context, given_dims, n_given, n, seed, &
        first_row, x) &
        bind(C, name="crk_made_sample_given_gpu_from")
      import
      type(c_ptr), value :: m
      integer(c_int32_t), value :: device
      real(c_float), intent(in) :: context(*)
      integer(c_size_t), intent(in) :: given_dims(*)
      integer(c_size_t), value :: n_given
      integer(c_size_t), value :: n
      integer(c_int64_t), value :: seed
      integer(c_int64_t), value :: first_row
      real(c_float), intent(inout) :: x(*)
      integer(c_int32_t) :: crk_made_sample_given_gpu_from
    end function crk_made_sample_given_gpu_from
    function crk_made_log_prob_gpu_device(m, device, context, x, n, log_prob) &
        bind(C, name="crk_made_log_prob_gpu_device")
      import
      type(c_ptr), value :: m
      integer(c_int32_t), value :: device
      type(c_ptr), value :: context
      type(c_ptr), value :: x
      integer(c_size_t), value :: n
      type(c_ptr), value :: log_prob
      integer(c_int32_t) :: crk_made_log_prob_gpu_device
    end function crk_made_log_prob_gpu_device
    function crk_made_sample_gpu_device(m, device, context, n, seed, x_out) &
        bind(C, name="crk_made_sample_gpu_device")
      import
      type(c_ptr), value :: m
      integer(c_int32_t), value :: device
      type(c_ptr), value :: context
      integer(c_size_t), value :: n
      integer(c_int64_t), value :: seed
      type(c_ptr), value :: x_out
      integer(c_int32_t) :: crk_made_sample_gpu_device
    end function crk_made_sample_gpu_device
    function crk_made_sample_gpu_device_from(m, device, context, n, seed, first_row, x_out) &
        bind(C, name="crk_made_sample_gpu_device_from")
      import
      type(c_ptr), value :: m
      integer(c_int32_t), value :: device
      real(c_float), intent(in) :: context(*)
      integer(c_size_t), value :: n
      integer(c_int64_t), value :: seed
      integer(c_int64_t), value :: first_row
      real(c_float), intent(out) :: x_out(*)
      integer(c_int32_t) :: crk_made_sample_gpu_device_from
    end function crk_made_sample_gpu_device_from
    subroutine crk_made_free(m) &
        bind(C, name="crk_made_free")
      import
      type(c_ptr), value :: m
    end subroutine crk_made_free
    function crk_mixture_log_pdf(logits, means, log_scales, k, x, n, out) &
        bind(C, name="crk_mixture_log_pdf")
      import
      real(c_double), intent(in) :: logits(*)
      real(c_double), intent(in) :: means(*)
      real(c_double), intent(in) :: log_scales(*)
      integer(c_size_t), value :: k
      real(c_double), intent(in) :: x(*)
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: out(*)
      integer(c_int32_t) :: crk_mixture_log_pdf
    end function crk_mixture_log_pdf
    function crk_mixture_cdf(logits, means, log_scales, k, x, n, out) &
        bind(C, name="crk_mixture_cdf")
      import
      real(c_double), intent(in) :: logits(*)
      real(c_double), intent(in) :: means(*)
      real(c_double), intent(in) :: log_scales(*)
      integer(c_size_t), value :: k
      real(c_double), intent(in) :: x(*)
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: out(*)
      integer(c_int32_t) :: crk_mixture_cdf
    end function crk_mixture_cdf
    function crk_mixture_quantile(logits, means, log_scales, k, p, n, out) &
        bind(C, name="crk_mixture_quantile")
      import
      real(c_double), intent(in) :: logits(*)
      real(c_double), intent(in) :: means(*)
      real(c_double), intent(in) :: log_scales(*)
      integer(c_size_t), value :: k
      real(c_double), intent(in) :: p(*)
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: out(*)
      integer(c_int32_t) :: crk_mixture_quantile
    end function crk_mixture_quantile
    function crk_mixture_sample(logits, means, log_scales, k, seed, first_sample, n, out) &
        bind(C, name="crk_mixture_sample")
      import
      real(c_double), intent(in) :: logits(*)
      real(c_double), intent(in) :: means(*)
      real(c_double), intent(in) :: log_scales(*)
      integer(c_size_t), value :: k
      integer(c_int64_t), value :: seed
      integer(c_int64_t), value :: first_sample
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: out(*)
      integer(c_int32_t) :: crk_mixture_sample
    end function crk_mixture_sample
    function crk_conv2d_f32(input, n, c_in, h, w, weight, bias, c_out, kh, kw, params, output) &
        bind(C, name="crk_conv2d_f32")
      import
      real(c_float), intent(in) :: input(*)
      integer(c_size_t), value :: n
      integer(c_size_t), value :: c_in
      integer(c_size_t), value :: h
      integer(c_size_t), value :: w
      real(c_float), intent(in) :: weight(*)
      real(c_float), intent(in) :: bias(*)
      integer(c_size_t), value :: c_out
      integer(c_size_t), value :: kh
      integer(c_size_t), value :: kw
      type(crk_conv_params), intent(in) :: params
      real(c_float), intent(out) :: output(*)
      integer(c_int32_t) :: crk_conv2d_f32
    end function crk_conv2d_f32
    function crk_conv1d_f32(input, n, c_in, len, weight, bias, c_out, k, params, output) &
        bind(C, name="crk_conv1d_f32")
      import
      real(c_float), intent(in) :: input(*)
      integer(c_size_t), value :: n
      integer(c_size_t), value :: c_in
      integer(c_size_t), value :: len
      real(c_float), intent(in) :: weight(*)
      real(c_float), intent(in) :: bias(*)
      integer(c_size_t), value :: c_out
      integer(c_size_t), value :: k
      type(crk_conv_params), intent(in) :: params
      real(c_float), intent(out) :: output(*)
      integer(c_int32_t) :: crk_conv1d_f32
    end function crk_conv1d_f32
    function crk_conv2d_f32_threads(input, n, c_in, h, w, weight, bias, c_out, kh, kw, params, &
        n_threads, output) &
        bind(C, name="crk_conv2d_f32_threads")
      import
      real(c_float), intent(in) :: input(*)
      integer(c_size_t), value :: n
      integer(c_size_t), value :: c_in
      integer(c_size_t), value :: h
      integer(c_size_t), value :: w
      real(c_float), intent(in) :: weight(*)
      real(c_float), intent(in) :: bias(*)
      integer(c_size_t), value :: c_out
      integer(c_size_t), value :: kh
      integer(c_size_t), value :: kw
      type(crk_conv_params), intent(in) :: params
      integer(c_size_t), value :: n_threads
      real(c_float), intent(out) :: output(*)
      integer(c_int32_t) :: crk_conv2d_f32_threads
    end function crk_conv2d_f32_threads
    function crk_conv1d_f32_threads(input, n, c_in, len, weight, bias, c_out, k, params, &
        n_threads, output) &
        bind(C, name="crk_conv1d_f32_threads")
      import
      real(c_float), intent(in) :: input(*)
      integer(c_size_t), value :: n
      integer(c_size_t), value :: c_in
      integer(c_size_t), value :: len
      real(c_float), intent(in) :: weight(*)
      real(c_float), intent(in) :: bias(*)
      integer(c_size_t), value :: c_out
      integer(c_size_t), value :: k
      type(crk_conv_params), intent(in) :: params
      integer(c_size_t), value :: n_threads
      real(c_float), intent(out) :: output(*)
      integer(c_int32_t) :: crk_conv1d_f32_threads
    end function crk_conv1d_f32_threads
    function crk_conv2d_output_shape(h, w, kh, kw, params, h_out, w_out) &
        bind(C, name="crk_conv2d_output_shape")
      import
      integer(c_size_t), value :: h
      integer(c_size_t), value :: w
      integer(c_size_t), value :: kh
      integer(c_size_t), value :: kw
      type(crk_conv_params), intent(in) :: params
      integer(c_size_t), intent(out) :: h_out
      integer(c_size_t), intent(out) :: w_out
      integer(c_int32_t) :: crk_conv2d_output_shape
    end function crk_conv2d_output_shape
    function crk_conv1d_output_length(len, k, params, len_out) &
        bind(C, name="crk_conv1d_output_length")
      import
      integer(c_size_t), value :: len
      integer(c_size_t), value :: k
      type(crk_conv_params), intent(in) :: params
      integer(c_size_t), intent(out) :: len_out
      integer(c_int32_t) :: crk_conv1d_output_length
    end function crk_conv1d_output_length
    function crk_pool2d_output_shape(h, w, params, h_out, w_out) &
        bind(C, name="crk_pool2d_output_shape")
      import
      integer(c_size_t), value :: h
      integer(c_size_t), value :: w
      type(crk_pool_params), intent(in) :: params
      integer(c_size_t), intent(out) :: h_out
      integer(c_size_t), intent(out) :: w_out
      integer(c_int32_t) :: crk_pool2d_output_shape
    end function crk_pool2d_output_shape
    function crk_maxpool2d_f32(input, n, c, h, w, params, output) &
        bind(C, name="crk_maxpool2d_f32")
      import
      real(c_float), intent(in) :: input(*)
      integer(c_size_t), value :: n
      integer(c_size_t), value :: c
      integer(c_size_t), value :: h
      integer(c_size_t), value :: w
      type(crk_pool_params), intent(in) :: params
      real(c_float), intent(out) :: output(*)
      integer(c_int32_t) :: crk_maxpool2d_f32
    end function crk_maxpool2d_f32
    function crk_avgpool2d_f32(input, n, c, h, w, params, output) &
        bind(C, name="crk_avgpool2d_f32")
      import
      real(c_float), intent(in) :: input(*)
      integer(c_size_t), value :: n
      integer(c_size_t), value :: c
      integer(c_size_t), value :: h
      integer(c_size_t), value :: w
      type(crk_pool_params), intent(in) :: params
      real(c_float), intent(out) :: output(*)
      integer(c_int32_t) :: crk_avgpool2d_f32
    end function crk_avgpool2d_f32
    function crk_maxpool1d_f32(input, n, c, len, params, output) &
        bind(C, name="crk_maxpool1d_f32")
      import
      real(c_float), intent(in) :: input(*)
      integer(c_size_t), value :: n
      integer(c_size_t), value :: c
      integer(c_size_t), value :: len
      type(crk_pool_params), intent(in) :: params
      real(c_float), intent(out) :: output(*)
      integer(c_int32_t) :: crk_maxpool1d_f32
    end function crk_maxpool1d_f32
    function crk_avgpool1d_f32(input, n, c, len, params, output) &
        bind(C, name="crk_avgpool1d_f32")
      import
      real(c_float), intent(in) :: input(*)
      integer(c_size_t), value :: n
      integer(c_size_t), value :: c
      integer(c_size_t), value :: len
      type(crk_pool_params), intent(in) :: params
      real(c_float), intent(out) :: output(*)
      integer(c_int32_t) :: crk_avgpool1d_f32
    end function crk_avgpool1d_f32
    function crk_global_avgpool_f32(input, n, c, plane, output) &
        bind(C, name="crk_global_avgpool_f32")
      import
      real(c_float), intent(in) :: input(*)
      integer(c_size_t), value :: n
      integer(c_size_t), value :: c
      integer(c_size_t), value :: plane
      real(c_float), intent(out) :: output(*)
      integer(c_int32_t) :: crk_global_avgpool_f32
    end function crk_global_avgpool_f32
    function crk_conv2d_f32_gpu(device, input, n, c_in, h, w, weight, bias, c_out, kh, kw, &
        params, output) &
        bind(C, name="crk_conv2d_f32_gpu")
      import
      integer(c_int32_t), value :: device
      real(c_float), intent(in) :: input(*)
      integer(c_size_t), value :: n
      integer(c_size_t), value :: c_in
      integer(c_size_t), value :: h
      integer(c_size_t), value :: w
      real(c_float), intent(in) :: weight(*)
      real(c_float), intent(in) :: bias(*)
      integer(c_size_t), value :: c_out
      integer(c_size_t), value :: kh
      integer(c_size_t), value :: kw
      type(crk_conv_params), intent(in) :: params
      real(c_float), intent(out) :: output(*)
      integer(c_int32_t) :: crk_conv2d_f32_gpu
    end function crk_conv2d_f32_gpu
    function crk_conv2d_f32_gpu_device(device, input, n, c_in, h, w, weight, bias, c_out, kh, &
        kw, params, output) &
        bind(C, name="crk_conv2d_f32_gpu_device")
      import
      integer(c_int32_t), value :: device
      type(c_ptr), value :: input
      integer(c_size_t), value :: n
      integer(c_size_t), value :: c_in
      integer(c_size_t), value :: h
      integer(c_size_t), value :: w
      type(c_ptr), value :: weight
      type(c_ptr), value :: bias
      integer(c_size_t), value :: c_out
      integer(c_size_t), value :: kh
      integer(c_size_t), value :: kw
      type(crk_conv_params), intent(in) :: params
      type(c_ptr), value :: output
      integer(c_int32_t) :: crk_conv2d_f32_gpu_device
    end function crk_conv2d_f32_gpu_device
    function crk_conv1d_f32_gpu(device, input, n, c_in, len, weight, bias, c_out, k, params, &
        output) &
        bind(C, name="crk_conv1d_f32_gpu")
      import
      integer(c_int32_t), value :: device
      real(c_float), intent(in) :: input(*)
      integer(c_size_t), value :: n
      integer(c_size_t), value :: c_in
      integer(c_size_t), value :: len
      real(c_float), intent(in) :: weight(*)
      real(c_float), intent(in) :: bias(*)
      integer(c_size_t), value :: c_out
      integer(c_size_t), value :: k
      type(crk_conv_params), intent(in) :: params
      real(c_float), intent(out) :: output(*)
      integer(c_int32_t) :: crk_conv1d_f32_gpu
    end function crk_conv1d_f32_gpu
    function crk_conv1d_f32_gpu_device(device, input, n, c_in, len, weight, bias, c_out, k, &
        params, output) &
        bind(C, name="crk_conv1d_f32_gpu_device")
      import
      integer(c_int32_t), value :: device
      type(c_ptr), value :: input
      integer(c_size_t), value :: n
      integer(c_size_t), value :: c_in
      integer(c_size_t), value :: len
      type(c_ptr), value :: weight
      type(c_ptr), value :: bias
      integer(c_size_t), value :: c_out
      integer(c_size_t), value :: k
      type(crk_conv_params), intent(in) :: params
      type(c_ptr), value :: output
      integer(c_int32_t) :: crk_conv1d_f32_gpu_device
    end function crk_conv1d_f32_gpu_device
    function crk_maxpool2d_f32_gpu(device, input, n, c, h, w, params, output) &
        bind(C, name="crk_maxpool2d_f32_gpu")
      import
      integer(c_int32_t), value :: device
      real(c_float), intent(in) :: input(*)
      integer(c_size_t), value :: n
      integer(c_size_t), value :: c
      integer(c_size_t), value :: h
      integer(c_size_t), value :: w
      type(crk_pool_params), intent(in) :: params
      real(c_float), intent(out) :: output(*)
      integer(c_int32_t) :: crk_maxpool2d_f32_gpu
    end function crk_maxpool2d_f32_gpu
    function crk_maxpool2d_f32_gpu_device(device, input, n, c, h, w, params, output) &
        bind(C, name="crk_maxpool2d_f32_gpu_device")
      import
      integer(c_int32_t), value :: device
      type(c_ptr), value :: input
      integer(c_size_t), value :: n
      integer(c_size_t), value :: c
      integer(c_size_t), value :: h
      integer(c_size_t), value :: w
      type(crk_pool_params), intent(in) :: params
      type(c_ptr), value :: output
      integer(c_int32_t) :: crk_maxpool2d_f32_gpu_device
    end function crk_maxpool2d_f32_gpu_device
    function crk_avgpool2d_f32_gpu(device, input, n, c, h, w, params, output) &
        bind(C, name="crk_avgpool2d_f32_gpu")
      import
      integer(c_int32_t), value :: device
      real(c_float), intent(in) :: input(*)
      integer(c_size_t), value :: n
      integer(c_size_t), value :: c
      integer(c_size_t), value :: h
      integer(c_size_t), value :: w
      type(crk_pool_params), intent(in) :: params
      real(c_float), intent(out) :: output(*)
      integer(c_int32_t) :: crk_avgpool2d_f32_gpu
    end function crk_avgpool2d_f32_gpu
    function crk_avgpool2d_f32_gpu_device(device, input, n, c, h, w, params, output) &
        bind(C, name="crk_avgpool2d_f32_gpu_device")
      import
      integer(c_int32_t), value :: device
      type(c_ptr), value :: input
      integer(c_size_t), value :: n
      integer(c_size_t), value :: c
      integer(c_size_t), value :: h
      integer(c_size_t), value :: w
      type(crk_pool_params), intent(in) :: params
      type(c_ptr), value :: output
      integer(c_int32_t) :: crk_avgpool2d_f32_gpu_device
    end function crk_avgpool2d_f32_gpu_device
    function crk_maxpool1d_f32_gpu(device, input, n, c, len, params, output) &
        bind(C, name="crk_maxpool1d_f32_gpu")
      import
      integer(c_int32_t), value :: device
      real(c_float), intent(in) :: input(*)
      integer(c_size_t), value :: n
      integer(c_size_t), value :: c
      integer(c_size_t), value :: len
      type(crk_pool_params), intent(in) :: params
      real(c_float), intent(out) :: output(*)
      integer(c_int32_t) :: crk_maxpool1d_f32_gpu
    end function crk_maxpool1d_f32_gpu
    function crk_maxpool1d_f32_gpu_device(device, input, n, c, len, params, output) &
        bind(C, name="crk_maxpool1d_f32_gpu_device")
      import
      integer(c_int32_t), value :: device
      type(c_ptr), value :: input
      integer(c_size_t), value :: n
      integer(c_size_t), value :: c
      integer(c_size_t), value :: len
      type(crk_pool_params), intent(in) :: params
      type(c_ptr), value :: output
      integer(c_int32_t) :: crk_maxpool1d_f32_gpu_device
    end function crk_maxpool1d_f32_gpu_device
    function crk_avgpool1d_f32_gpu(device, input, n, c, len, params, output) &
        bind(C, name="crk_avgpool1d_f32_gpu")
      import
      integer(c_int32_t), value :: device
      real(c_float), intent(in) :: input(*)
      integer(c_size_t), value :: n
      integer(c_size_t), value :: c
      integer(c_size_t), value :: len
      type(crk_pool_params), intent(in) :: params
      real(c_float), intent(out) :: output(*)
      integer(c_int32_t) :: crk_avgpool1d_f32_gpu
    end function crk_avgpool1d_f32_gpu
    function crk_avgpool1d_f32_gpu_device(device, input, n, c, len, params, output) &
        bind(C, name="crk_avgpool1d_f32_gpu_device")
      import
      integer(c_int32_t), value :: device
      type(c_ptr), value :: input
      integer(c_size_t), value :: n
      integer(c_size_t), value :: c
      integer(c_size_t), value :: len
      type(crk_pool_params), intent(in) :: params
      type(c_ptr), value :: output
      integer(c_int32_t) :: crk_avgpool1d_f32_gpu_device
    end function crk_avgpool1d_f32_gpu_device
    function crk_global_avgpool_f32_gpu(device, input, n, c, plane, output) &
        bind(C, name="crk_global_avgpool_f32_gpu")
      import
      integer(c_int32_t), value :: device
      real(c_float), intent(in) :: input(*)
      integer(c_size_t), value :: n
      integer(c_size_t), value :: c
      integer(c_size_t), value :: plane
      real(c_float), intent(out) :: output(*)
      integer(c_int32_t) :: crk_global_avgpool_f32_gpu
    end function crk_global_avgpool_f32_gpu
    function crk_global_avgpool_f32_gpu_device(device, input, n, c, plane, output) &
        bind(C, name="crk_global_avgpool_f32_gpu_device")
      import
      integer(c_int32_t), value :: device
      type(c_ptr), value :: input
      integer(c_size_t), value :: n
      integer(c_size_t), value :: c
      integer(c_size_t), value :: plane
      type(c_ptr), value :: output
      integer(c_int32_t) :: crk_global_avgpool_f32_gpu_device
    end function crk_global_avgpool_f32_gpu_device
    function crk_dense_f32(input, n, n_in, weight, bias, n_out, output) &
        bind(C, name="crk_dense_f32")
      import
      real(c_float), intent(in) :: input(*)
      integer(c_size_t), value :: n
      integer(c_size_t), value :: n_in
      real(c_float), intent(in) :: weight(*)
      real(c_float), intent(in) :: bias(*)
      integer(c_size_t), value :: n_out
      real(c_float), intent(out) :: output(*)
      integer(c_int32_t) :: crk_dense_f32
    end function crk_dense_f32
    function crk_activation_f32(kind, alpha, input, n, output) &
        bind(C, name="crk_activation_f32")
      import
      integer(c_int32_t), value :: kind
      real(c_float), value :: alpha
      real(c_float), intent(in) :: input(*)
      integer(c_size_t), value :: n
      real(c_float), intent(out) :: output(*)
      integer(c_int32_t) :: crk_activation_f32
    end function crk_activation_f32
    function crk_softmax_f32(input, n, row_len, output) &
        bind(C, name="crk_softmax_f32")
      import
      real(c_float), intent(in) :: input(*)
      integer(c_size_t), value :: n
      integer(c_size_t), value :: row_len
      real(c_float), intent(out) :: output(*)
      integer(c_int32_t) :: crk_softmax_f32
    end function crk_softmax_f32
    function crk_network_load(path, out) &
        bind(C, name="crk_network_load")
      import
      character(kind=c_char), intent(in) :: path(*)
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: crk_network_load
    end function crk_network_load
    function crk_network_load_buffer(bytes, len, out) &
        bind(C, name="crk_network_load_buffer")
      import
      integer(c_int8_t), intent(in) :: bytes(*)
      integer(c_size_t), value :: len
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: crk_network_load_buffer
    end function crk_network_load_buffer
    function crk_network_input_count(net, count) &
        bind(C, name="crk_network_input_count")
      import
      type(c_ptr), value :: net
      integer(c_size_t), intent(out) :: count
      integer(c_int32_t) :: crk_network_input_count
    end function crk_network_input_count
    function crk_network_input_shape(net, index, shape, max_dims, n_dims, size) &
        bind(C, name="crk_network_input_shape")
      import
      type(c_ptr), value :: net
      integer(c_size_t), value :: index
      integer(c_size_t), intent(out) :: shape(*)
      integer(c_size_t), value :: max_dims
      integer(c_size_t), intent(out) :: n_dims
      integer(c_size_t), intent(out) :: size
      integer(c_int32_t) :: crk_network_input_shape
    end function crk_network_input_shape
    function crk_network_workspace_bytes(net, bytes, chunk, bytes_per_sample) &
        bind(C, name="crk_network_workspace_bytes")
      import
      type(c_ptr), value :: net
      integer(c_size_t), intent(out) :: bytes
      integer(c_size_t), intent(out) :: chunk
      integer(c_size_t), intent(out) :: bytes_per_sample
      integer(c_int32_t) :: crk_network_workspace_bytes
    end function crk_network_workspace_bytes
    function crk_network_macs_per_sample(net, macs) &
        bind(C, name="crk_network_macs_per_sample")
      import
      type(c_ptr), value :: net
      integer(c_int64_t), intent(out) :: macs
      integer(c_int32_t) :: crk_network_macs_per_sample
    end function crk_network_macs_per_sample
    function crk_network_output_size(net, size) &
        bind(C, name="crk_network_output_size")
      import
      type(c_ptr), value :: net
      integer(c_size_t), intent(out) :: size
      integer(c_int32_t) :: crk_network_output_size
    end function crk_network_output_size
    function crk_network_run(net, inputs, n_inputs, batch, n_threads, output, output_len) &
        bind(C, name="crk_network_run")
      import
      type(c_ptr), value :: net
      type(c_ptr), intent(in) :: inputs(*)
      integer(c_size_t), value :: n_inputs
      integer(c_size_t), value :: batch
      integer(c_size_t), value :: n_threads
      real(c_float), intent(out) :: output(*)
      integer(c_size_t), value :: output_len
      integer(c_int32_t) :: crk_network_run
    end function crk_network_run
    subroutine crk_network_free(net) &
        bind(C, name="crk_network_free")
      import
      type(c_ptr), value :: net
    end subroutine crk_network_free
    function crk_diffusion_coefficient(params, radius_kpc, height_kpc, rigidity_GV, n, &
        D_cm2_per_s) &
        bind(C, name="crk_diffusion_coefficient")
      import
      type(crk_diffusion_params), intent(in) :: params
      real(c_double), intent(in) :: radius_kpc(*)
      real(c_double), intent(in) :: height_kpc(*)
      real(c_double), intent(in) :: rigidity_GV(*)
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: D_cm2_per_s(*)
      integer(c_int32_t) :: crk_diffusion_coefficient
    end function crk_diffusion_coefficient
    function crk_diffusion_rigidity_dependence(params, rigidity_GV, n, D_cm2_per_s) &
        bind(C, name="crk_diffusion_rigidity_dependence")
      import
      type(crk_diffusion_params), intent(in) :: params
      real(c_double), intent(in) :: rigidity_GV(*)
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: D_cm2_per_s(*)
      integer(c_int32_t) :: crk_diffusion_rigidity_dependence
    end function crk_diffusion_rigidity_dependence
    function crk_diffusion_electron_kappa(params, radius_kpc, height_kpc, energy_GeV, n, &
        kappa_cm2_per_s) &
        bind(C, name="crk_diffusion_electron_kappa")
      import
      type(crk_diffusion_params), intent(in) :: params
      real(c_double), value :: radius_kpc
      real(c_double), value :: height_kpc
      real(c_double), intent(in) :: energy_GeV(*)
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: kappa_cm2_per_s(*)
      integer(c_int32_t) :: crk_diffusion_electron_kappa
    end function crk_diffusion_electron_kappa
    function crk_injection_rigidity(params, rigidity_GV, n, q_per_GV) &
        bind(C, name="crk_injection_rigidity")
      import
      type(crk_injection_params), intent(in) :: params
      real(c_double), intent(in) :: rigidity_GV(*)
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: q_per_GV(*)
      integer(c_int32_t) :: crk_injection_rigidity
    end function crk_injection_rigidity
    function crk_injection_kinetic(params, particle_in, kinetic_GeV, n, q_per_GeV) &
        bind(C, name="crk_injection_kinetic")
      import
      type(crk_injection_params), intent(in) :: params
      type(crk_particle), intent(in) :: particle_in
      real(c_double), intent(in) :: kinetic_GeV(*)
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: q_per_GeV(*)
      integer(c_int32_t) :: crk_injection_kinetic
    end function crk_injection_kinetic
    function crk_rigidity_from_kinetic(particle, kinetic_GeV, n, rigidity_GV) &
        bind(C, name="crk_rigidity_from_kinetic")
      import
      type(crk_particle), intent(in) :: particle
      real(c_double), intent(in) :: kinetic_GeV(*)
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: rigidity_GV(*)
      integer(c_int32_t) :: crk_rigidity_from_kinetic
    end function crk_rigidity_from_kinetic
    function crk_kinetic_from_rigidity(particle, rigidity_GV, n, kinetic_GeV) &
        bind(C, name="crk_kinetic_from_rigidity")
      import
      type(crk_particle), intent(in) :: particle
      real(c_double), intent(in) :: rigidity_GV(*)
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: kinetic_GeV(*)
      integer(c_int32_t) :: crk_kinetic_from_rigidity
    end function crk_kinetic_from_rigidity
    function crk_rigidity_jacobian(particle, kinetic_GeV, n, dR_dT) &
        bind(C, name="crk_rigidity_jacobian")
      import
      type(crk_particle), intent(in) :: particle
      real(c_double), intent(in) :: kinetic_GeV(*)
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: dR_dT(*)
      integer(c_int32_t) :: crk_rigidity_jacobian
    end function crk_rigidity_jacobian
    function crk_force_field_map(particle_in, params, kinetic_GeV, n, interstellar_kinetic_GeV, &
        flux_factor) &
        bind(C, name="crk_force_field_map")
      import
      type(crk_particle), intent(in) :: particle_in
      type(crk_modulation_params), intent(in) :: params
      real(c_double), intent(in) :: kinetic_GeV(*)
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: interstellar_kinetic_GeV(*)
      real(c_double), intent(out) :: flux_factor(*)
      integer(c_int32_t) :: crk_force_field_map
    end function crk_force_field_map
    function crk_force_field_modulate(particle_in, params, lis_kinetic_GeV, lis_flux, n_lis, &
        kinetic_GeV, n, flux_toa) &
        bind(C, name="crk_force_field_modulate")
      import
      type(crk_particle), intent(in) :: particle_in
      type(crk_modulation_params), intent(in) :: params
      real(c_double), intent(in) :: lis_kinetic_GeV(*)
      real(c_double), intent(in) :: lis_flux(*)
      integer(c_size_t), value :: n_lis
      real(c_double), intent(in) :: kinetic_GeV(*)
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: flux_toa(*)
      integer(c_int32_t) :: crk_force_field_modulate
    end function crk_force_field_modulate
    function crk_gamma_q(a, x, q) &
        bind(C, name="crk_gamma_q")
      import
      real(c_double), value :: a
      real(c_double), value :: x
      real(c_double), intent(out) :: q
      integer(c_int32_t) :: crk_gamma_q
    end function crk_gamma_q
    function crk_gamma_p(a, x, p) &
        bind(C, name="crk_gamma_p")
      import
      real(c_double), value :: a
      real(c_double), value :: x
      real(c_double), intent(out) :: p
      integer(c_int32_t) :: crk_gamma_p
    end function crk_gamma_p
    function crk_gamma_q_neg_log(a, x, neg_log_q) &
        bind(C, name="crk_gamma_q_neg_log")
      import
      real(c_double), value :: a
      real(c_double), value :: x
      real(c_double), intent(out) :: neg_log_q
      integer(c_int32_t) :: crk_gamma_q_neg_log
    end function crk_gamma_q_neg_log
    function crk_chi2_pvalue(chi2, ndof, p_value) &
        bind(C, name="crk_chi2_pvalue")
      import
      real(c_double), value :: chi2
      real(c_double), value :: ndof
      real(c_double), intent(out) :: p_value
      integer(c_int32_t) :: crk_chi2_pvalue
    end function crk_chi2_pvalue
    function crk_chi2_neg_log_pvalue(chi2, ndof, nll) &
        bind(C, name="crk_chi2_neg_log_pvalue")
      import
      real(c_double), value :: chi2
      real(c_double), value :: ndof
      real(c_double), intent(out) :: nll
      integer(c_int32_t) :: crk_chi2_neg_log_pvalue
    end function crk_chi2_neg_log_pvalue
    function crk_experiment_statistics(chi2, ndof, n, results, summary) &
        bind(C, name="crk_experiment_statistics")
      import
      real(c_double), intent(in) :: chi2(*)
      real(c_double), intent(in) :: ndof(*)
      integer(c_size_t), value :: n
      type(crk_experiment_result), intent(out) :: results(*)
      type(crk_nll_summary), intent(out) :: summary
      integer(c_int32_t) :: crk_experiment_statistics
    end function crk_experiment_statistics
    function crk_modulation_fit(species, n_species, normalisations, n_normalisations, &
        modulation, points, n_points, n_experiments, parameters, uncertainties, experiments, &
        summary) &
        bind(C, name="crk_modulation_fit")
      import
      type(crk_fit_species), intent(in) :: species(*)
      integer(c_size_t), value :: n_species
      type(crk_fit_parameter), intent(in) :: normalisations(*)
      integer(c_size_t), value :: n_normalisations
      type(crk_fit_parameter), intent(in) :: modulation(*)
      type(crk_data_point), intent(in) :: points(*)
      integer(c_size_t), value :: n_points
      integer(c_size_t), value :: n_experiments
      real(c_double), intent(out) :: parameters(*)
      real(c_double), intent(out) :: uncertainties(*)
      type(crk_experiment_result), intent(out) :: experiments(*)
      type(crk_fit_summary), intent(out) :: summary
      integer(c_int32_t) :: crk_modulation_fit
    end function crk_modulation_fit
    function crk_polynomial_feature_count(n_params, degree, count) &
        bind(C, name="crk_polynomial_feature_count")
      import
      integer(c_size_t), value :: n_params
      integer(c_size_t), value :: degree
      integer(c_size_t), intent(out) :: count
      integer(c_int32_t) :: crk_polynomial_feature_count
    end function crk_polynomial_feature_count
    function crk_surrogate_fit(x, n_points, n_params, nll, options, out) &
        bind(C, name="crk_surrogate_fit")
      import
      real(c_double), intent(in) :: x(*)
      integer(c_size_t), value :: n_points
      integer(c_size_t), value :: n_params
      real(c_double), intent(in) :: nll(*)
      type(crk_surrogate_options), intent(in) :: options
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: crk_surrogate_fit
    end function crk_surrogate_fit
    function crk_surrogate_fit_threads(x, n_points, n_params, nll, options, n_threads, out) &
        bind(C, name="crk_surrogate_fit_threads")
      import
      real(c_double), intent(in) :: x(*)
      integer(c_size_t), value :: n_points
      integer(c_size_t), value :: n_params
      real(c_double), intent(in) :: nll(*)
      type(crk_surrogate_options), intent(in) :: options
      integer(c_size_t), value :: n_threads
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: crk_surrogate_fit_threads
    end function crk_surrogate_fit_threads
    function crk_surrogate_get_info(surrogate, info) &
        bind(C, name="crk_surrogate_get_info")
      import
      type(c_ptr), value :: surrogate
      type(crk_surrogate_info), intent(out) :: info
      integer(c_int32_t) :: crk_surrogate_get_info
    end function crk_surrogate_get_info
    function crk_surrogate_coefficients(surrogate, coefficients, capacity, n) &
        bind(C, name="crk_surrogate_coefficients")
      import
      type(c_ptr), value :: surrogate
      real(c_double), intent(out) :: coefficients(*)
      integer(c_size_t), value :: capacity
      integer(c_size_t), intent(out) :: n
      integer(c_int32_t) :: crk_surrogate_coefficients
    end function crk_surrogate_coefficients
    function crk_surrogate_validation_scores(surrogate, scores, capacity, n) &
        bind(C, name="crk_surrogate_validation_scores")
      import
      type(c_ptr), value :: surrogate
      real(c_double), intent(out) :: scores(*)
      integer(c_size_t), value :: capacity
      integer(c_size_t), intent(out) :: n
      integer(c_int32_t) :: crk_surrogate_validation_scores
    end function crk_surrogate_validation_scores
    function crk_surrogate_predict(surrogate, x, n_points, nll) &
        bind(C, name="crk_surrogate_predict")
      import
      type(c_ptr), value :: surrogate
      real(c_double), intent(in) :: x(*)
      integer(c_size_t), value :: n_points
      real(c_double), intent(out) :: nll(*)
      integer(c_int32_t) :: crk_surrogate_predict
    end function crk_surrogate_predict
    function crk_surrogate_gradient(surrogate, x, gradient) &
        bind(C, name="crk_surrogate_gradient")
      import
      type(c_ptr), value :: surrogate
      real(c_double), intent(in) :: x(*)
      real(c_double), intent(out) :: gradient(*)
      integer(c_int32_t) :: crk_surrogate_gradient
    end function crk_surrogate_gradient
    function crk_surrogate_propose_step(surrogate, max_distance, new_point, step) &
        bind(C, name="crk_surrogate_propose_step")
      import
      type(c_ptr), value :: surrogate
      real(c_double), value :: max_distance
      real(c_double), intent(out) :: new_point(*)
      type(crk_surrogate_step), intent(out) :: step
      integer(c_int32_t) :: crk_surrogate_propose_step
    end function crk_surrogate_propose_step
    subroutine crk_surrogate_free(surrogate) &
        bind(C, name="crk_surrogate_free")
      import
      type(c_ptr), value :: surrogate
    end subroutine crk_surrogate_free
    subroutine crk_made_train_options_default(options) &
        bind(C, name="crk_made_train_options_default")
      import
      type(crk_made_train_options), intent(out) :: options
    end subroutine crk_made_train_options_default
    function crk_made_train(context, n_context, x, n_dims, n, options, progress, user_data, &
        out, report) &
        bind(C, name="crk_made_train")
      import
      real(c_float), intent(in) :: context(*)
      integer(c_size_t), value :: n_context
      real(c_float), intent(in) :: x(*)
      integer(c_size_t), value :: n_dims
      integer(c_size_t), value :: n
      type(crk_made_train_options), intent(in) :: options
      type(c_funptr), value :: progress
      type(c_ptr), value :: user_data
      type(c_ptr), intent(out) :: out
      type(crk_made_train_report), intent(out) :: report
      integer(c_int32_t) :: crk_made_train
    end function crk_made_train
    function crk_made_trainer_new(context, n_context, x, n_dims, n, options, out) &
        bind(C, name="crk_made_trainer_new")
      import
      real(c_float), intent(in) :: context(*)
      integer(c_size_t), value :: n_context
      real(c_float), intent(in) :: x(*)
      integer(c_size_t), value :: n_dims
      integer(c_size_t), value :: n
      type(crk_made_train_options), intent(in) :: options
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: crk_made_trainer_new
    end function crk_made_trainer_new
    function crk_made_trainer_epoch(trainer, progress, user_data, epoch) &
        bind(C, name="crk_made_trainer_epoch")
      import
      type(c_ptr), value :: trainer
      type(c_funptr), value :: progress
      type(c_ptr), value :: user_data
      type(crk_made_epoch_report), intent(out) :: epoch
      integer(c_int32_t) :: crk_made_trainer_epoch
    end function crk_made_trainer_epoch
    function crk_made_trainer_finished(trainer, finished) &
        bind(C, name="crk_made_trainer_finished")
      import
      type(c_ptr), value :: trainer
      integer(c_int32_t), intent(out) :: finished
      integer(c_int32_t) :: crk_made_trainer_finished
    end function crk_made_trainer_finished
    function crk_made_trainer_report(trainer, report) &
        bind(C, name="crk_made_trainer_report")
      import
      type(c_ptr), value :: trainer
      type(crk_made_train_report), intent(out) :: report
      integer(c_int32_t) :: crk_made_trainer_report
    end function crk_made_trainer_report
    function crk_made_trainer_model(trainer, out) &
        bind(C, name="crk_made_trainer_model")
      import
      type(c_ptr), value :: trainer
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: crk_made_trainer_model
    end function crk_made_trainer_model
    function crk_made_trainer_checkpoint(trainer, path) &
        bind(C, name="crk_made_trainer_checkpoint")
      import
      type(c_ptr), value :: trainer
      character(kind=c_char), intent(in) :: path(*)
      integer(c_int32_t) :: crk_made_trainer_checkpoint
    end function crk_made_trainer_checkpoint
    function crk_made_trainer_resume(trainer, path) &
        bind(C, name="crk_made_trainer_resume")
      import
      type(c_ptr), value :: trainer
      character(kind=c_char), intent(in) :: path(*)
      integer(c_int32_t) :: crk_made_trainer_resume
    end function crk_made_trainer_resume
    subroutine crk_made_trainer_free(trainer) &
        bind(C, name="crk_made_trainer_free")
      import
      type(c_ptr), value :: trainer
    end subroutine crk_made_trainer_free
    function crk_transport_new(losses, kappa0_cm2_per_s, delta, z_max_kpc, energy_min_GeV, &
        energy_max_GeV, out) &
        bind(C, name="crk_transport_new")
      import
      type(c_ptr), value :: losses
      real(c_double), value :: kappa0_cm2_per_s
      real(c_double), value :: delta
      real(c_double), value :: z_max_kpc
      real(c_double), value :: energy_min_GeV
      real(c_double), value :: energy_max_GeV
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: crk_transport_new
    end function crk_transport_new
    function crk_transport_initial_energy(tr, energy_GeV, age_Myr, n, initial_energy_GeV) &
        bind(C, name="crk_transport_initial_energy")
      import
      type(c_ptr), value :: tr
      real(c_double), intent(in) :: energy_GeV(*)
      real(c_double), intent(in) :: age_Myr(*)
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: initial_energy_GeV(*)
      integer(c_int32_t) :: crk_transport_initial_energy
    end function crk_transport_initial_energy
    function crk_transport_loss_length2(tr, energy_GeV, initial_energy_GeV, n, l2_kpc2) &
        bind(C, name="crk_transport_loss_length2")
      import
      type(c_ptr), value :: tr
      real(c_double), intent(in) :: energy_GeV(*)
      real(c_double), intent(in) :: initial_energy_GeV(*)
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: l2_kpc2(*)
      integer(c_int32_t) :: crk_transport_loss_length2
    end function crk_transport_loss_length2
    function crk_transport_loss_time(tr, energy_GeV, initial_energy_GeV, n, tau_Myr) &
        bind(C, name="crk_transport_loss_time")
      import
      type(c_ptr), value :: tr
      real(c_double), intent(in) :: energy_GeV(*)
      real(c_double), intent(in) :: initial_energy_GeV(*)
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: tau_Myr(*)
      integer(c_int32_t) :: crk_transport_loss_time
    end function crk_transport_loss_time
    function crk_transport_max_age(tr, energy_GeV, n, max_age_Myr) &
        bind(C, name="crk_transport_max_age")
      import
      type(c_ptr), value :: tr
      real(c_double), intent(in) :: energy_GeV(*)
      integer(c_size_t), value :: n
      real(c_double), intent(out) :: max_age_Myr(*)
      integer(c_int32_t) :: crk_transport_max_age
    end function crk_transport_max_age
    subroutine crk_transport_free(tr) &
        bind(C, name="crk_transport_free")
      import
      type(c_ptr), value :: tr
    end subroutine crk_transport_free
  end interface
  ! END GENERATED

  interface
    function crk_c_strlen(s) bind(C, name="strlen")
      import :: c_ptr, c_size_t
      type(c_ptr), value :: s
      integer(c_size_t) :: crk_c_strlen
    end function crk_c_strlen
  end interface

  ! An energy-loss model (crk_losses_new*). Free with final or %free().
  type :: crk_losses_t
    type(c_ptr) :: ptr = c_null_ptr
  contains
    procedure :: init => losses_init
    procedure :: preset => losses_preset
    procedure :: thomson => losses_thomson
    procedure :: rate => losses_rate
    procedure :: free => losses_free
    final :: losses_final
  end type crk_losses_t

  ! Propagation of electrons through the losses (crk_transport_new).
  type :: crk_transport_t
    type(c_ptr) :: ptr = c_null_ptr
  contains
    procedure :: init => transport_init
    procedure :: initial_energy => transport_initial_energy
    procedure :: loss_length2 => transport_loss_length2
    procedure :: loss_time => transport_loss_time
    procedure :: max_age => transport_max_age
    procedure :: free => transport_free
    final :: transport_final
  end type crk_transport_t

  ! A source ensemble on an energy grid (crk_ensemble_new); remembers the grid size.
  type :: crk_ensemble_t
    type(c_ptr) :: ptr = c_null_ptr
    integer(c_size_t) :: n_energies = 0
  contains
    procedure :: init => ensemble_init
    procedure :: run => ensemble_run
    procedure :: run_gpu => ensemble_run_gpu
    procedure :: sources => ensemble_sources
    procedure :: free => ensemble_free
    final :: ensemble_final
  end type crk_ensemble_t

  ! A MADE mixture emulator (crk_made_load).
  type :: crk_made_t
    type(c_ptr) :: ptr = c_null_ptr
  contains
    procedure :: load => made_load
    procedure :: dims => made_dims
    procedure :: log_prob => made_log_prob
    procedure :: sample => made_sample
    procedure :: free => made_free
    final :: made_final
  end type crk_made_t

  ! A convolutional network (crk_network_load).
  type :: crk_network_t
    type(c_ptr) :: ptr = c_null_ptr
  contains
    procedure :: load => network_load
    procedure :: output_size => network_output_size
    procedure :: run => network_run
    procedure :: free => network_free
    final :: network_final
  end type crk_network_t

  ! A polynomial surrogate of an NLL surface (crk_surrogate_fit).
  type :: crk_surrogate_t
    type(c_ptr) :: ptr = c_null_ptr
    integer(c_size_t) :: n_params = 0
  contains
    procedure :: fit => surrogate_fit
    procedure :: predict => surrogate_predict
    procedure :: free => surrogate_free
    final :: surrogate_final
  end type crk_surrogate_t

  private :: c_string, checked, size_error, int_text, shape_text, pool_setup, conv_setup
  private :: losses_init, losses_preset, losses_thomson, losses_rate, losses_free, losses_final
  private :: transport_init, transport_initial_energy, transport_loss_length2
  private :: transport_loss_time, transport_max_age, transport_free, transport_final
  private :: ensemble_init, ensemble_run, ensemble_run_gpu, ensemble_sources, ensemble_free
  private :: ensemble_final, made_load, made_dims, made_log_prob, made_sample, made_free
  private :: made_final, network_load, network_output_size, network_run, network_free
  private :: network_final
  private :: surrogate_fit, surrogate_predict, surrogate_free, surrogate_final

contains

  ! ---------------------------------------------------------------- errors and strings

  ! A NUL-terminated C string as a Fortran string ("" for NULL).
  function c_string(p) result(text)
    type(c_ptr), intent(in) :: p
    character(len=:), allocatable :: text
    character(kind=c_char), pointer :: chars(:)
    integer :: i, n
    if (.not. c_associated(p)) then
      text = ""
      return
    end if
    n = int(crk_c_strlen(p))
    call c_f_pointer(p, chars, [n])
    allocate(character(len=n) :: text)
    do i = 1, n
      text(i:i) = chars(i)
    end do
  end function c_string

  ! The reason for the last failed call on this thread.
  function crk_error_message() result(message)
    character(len=:), allocatable :: message
    message = c_string(crk_last_error_message())
  end function crk_error_message

  ! The library version (crk_version).
  function crk_version_string() result(version)
    character(len=:), allocatable :: version
    version = c_string(crk_version())
  end function crk_version_string

  ! Reports `status` of the call `what`: .true. for CRK_OK. Otherwise sets stat and errmsg
  ! when present and returns .false., or stops the program when stat is absent.
  logical function checked(status, what, stat, message)
    integer(c_int32_t), intent(in) :: status
    character(len=*), intent(in) :: what
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(out) :: message
    checked = status == CRK_OK
    if (present(stat)) stat = int(status)
    message = ""
    if (checked) return
    message = what // ": " // crk_error_message()
    if (.not. present(stat)) then
      ! F2008 wants a constant stop code: print the message, then stop.
      write (error_unit, '(a)') "crkernels error: " // message
      error stop 1
    end if
  end function checked

  ! An argument-size error (CRK_ERR_INVALID_ARGUMENT), reported like a failed call.
  subroutine size_error(text, stat, message)
    character(len=*), intent(in) :: text
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(out) :: message
    if (present(stat)) stat = int(CRK_ERR_INVALID_ARGUMENT)
    message = text
    if (.not. present(stat)) then
      ! F2008 wants a constant stop code: print the message, then stop.
      write (error_unit, '(a)') "crkernels error: " // message
      error stop 1
    end if
  end subroutine size_error

  ! An integer as text, "42", for size-error messages.
  function int_text(i) result(text)
    integer, intent(in) :: i
    character(len=:), allocatable :: text
    character(len=24) :: item
    write (item, '(i0)') i
    text = trim(item)
  end function int_text

  ! Sizes as text, "(5, 3, 4, 2)", for size-error messages.
  function shape_text(sizes) result(text)
    integer, intent(in) :: sizes(:)
    character(len=:), allocatable :: text
    integer :: i
    text = "("
    do i = 1, size(sizes)
      if (i > 1) text = text // ", "
      text = text // int_text(sizes(i))
    end do
    text = text // ")"
  end function shape_text

  ! The number of CUDA devices (0 without a driver, a device or the `cuda` feature).
  function crk_device_count_checked(stat, errmsg) result(count)
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    integer :: count
    integer(c_int32_t) :: n
    count = 0
    if (checked(crk_device_count(n), "crk_device_count", stat, msg)) count = int(n)
    if (present(errmsg)) errmsg = msg
  end function crk_device_count_checked

  ! ---------------------------------------------------------------- losses

  subroutine losses_init(self, model, fields, magnetic_field_uG, stat, errmsg)
    class(crk_losses_t), intent(inout) :: self
    integer(c_int32_t), intent(in) :: model
    type(crk_photon_field), intent(in) :: fields(:)
    real(c_double), intent(in) :: magnetic_field_uG
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    type(c_ptr) :: p
    call self%free()
    if (checked(crk_losses_new(model, fields, size(fields, kind=c_size_t), magnetic_field_uG, p), &
        "crk_losses_new", stat, msg)) self%ptr = p
    if (present(errmsg)) errmsg = msg
  end subroutine losses_init

  subroutine losses_preset(self, model, preset, magnetic_field_uG, stat, errmsg)
    class(crk_losses_t), intent(inout) :: self
    integer(c_int32_t), intent(in) :: model, preset
    real(c_double), intent(in) :: magnetic_field_uG
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    type(c_ptr) :: p
    call self%free()
    if (checked(crk_losses_new_preset(model, preset, magnetic_field_uG, p), &
        "crk_losses_new_preset", stat, msg)) self%ptr = p
    if (present(errmsg)) errmsg = msg
  end subroutine losses_preset

  subroutine losses_thomson(self, b0_per_GeV_per_s, stat, errmsg)
    class(crk_losses_t), intent(inout) :: self
    real(c_double), intent(in) :: b0_per_GeV_per_s
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    type(c_ptr) :: p
    call self%free()
    if (checked(crk_losses_new_thomson(b0_per_GeV_per_s, p), "crk_losses_new_thomson", &
        stat, msg)) self%ptr = p
    if (present(errmsg)) errmsg = msg
  end subroutine losses_thomson

  ! rate_GeV_per_s(i) = b(energy_GeV(i)); the arrays must have the same size.
  subroutine losses_rate(self, energy_GeV, rate_GeV_per_s, stat, errmsg)
    class(crk_losses_t), intent(in) :: self
    real(c_double), intent(in) :: energy_GeV(:)
    real(c_double), intent(out) :: rate_GeV_per_s(:)
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    real(c_double), allocatable :: work(:)
    if (size(rate_GeV_per_s) /= size(energy_GeV)) then
      call size_error("crk_losses_t%rate: rate_GeV_per_s and energy_GeV differ in size", &
          stat, msg)
      if (present(errmsg)) errmsg = msg
      return
    end if
    allocate(work(size(energy_GeV)))
    if (checked(crk_losses_rate(self%ptr, energy_GeV, size(energy_GeV, kind=c_size_t), work), &
        "crk_losses_rate", stat, msg)) rate_GeV_per_s = work
    if (present(errmsg)) errmsg = msg
  end subroutine losses_rate

  subroutine losses_free(self)
    class(crk_losses_t), intent(inout) :: self
    call crk_losses_free(self%ptr)
    self%ptr = c_null_ptr
  end subroutine losses_free

  subroutine losses_final(self)
    type(crk_losses_t), intent(inout) :: self
    call self%free()
  end subroutine losses_final

  ! ---------------------------------------------------------------- transport

  subroutine transport_init(self, losses, kappa0_cm2_per_s, delta, z_max_kpc, energy_min_GeV, &
      energy_max_GeV, stat, errmsg)
    class(crk_transport_t), intent(inout) :: self
    type(crk_losses_t), intent(in) :: losses
    real(c_double), intent(in) :: kappa0_cm2_per_s, delta, z_max_kpc
    real(c_double), intent(in) :: energy_min_GeV, energy_max_GeV
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    type(c_ptr) :: p
    call self%free()
    if (checked(crk_transport_new(losses%ptr, kappa0_cm2_per_s, delta, z_max_kpc, &
        energy_min_GeV, energy_max_GeV, p), "crk_transport_new", stat, msg)) self%ptr = p
    if (present(errmsg)) errmsg = msg
  end subroutine transport_init

  ! E0 of electrons observed at energy_GeV after age_Myr (arrays of one size).
  subroutine transport_initial_energy(self, energy_GeV, age_Myr, initial_energy_GeV, stat, &
      errmsg)
    class(crk_transport_t), intent(in) :: self
    real(c_double), intent(in) :: energy_GeV(:), age_Myr(:)
    real(c_double), intent(out) :: initial_energy_GeV(:)
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    real(c_double), allocatable :: work(:)
    if (size(age_Myr) /= size(energy_GeV) .or. size(initial_energy_GeV) /= size(energy_GeV)) then
      call size_error("crk_transport_t%initial_energy: arrays differ in size", stat, msg)
      if (present(errmsg)) errmsg = msg
      return
    end if
    allocate(work(size(energy_GeV)))
    if (checked(crk_transport_initial_energy(self%ptr, energy_GeV, age_Myr, &
        size(energy_GeV, kind=c_size_t), work), "crk_transport_initial_energy", stat, msg)) &
        initial_energy_GeV = work
    if (present(errmsg)) errmsg = msg
  end subroutine transport_initial_energy

  ! lambda^2 [kpc^2] from E0 down to E.
  subroutine transport_loss_length2(self, energy_GeV, initial_energy_GeV, l2_kpc2, stat, errmsg)
    class(crk_transport_t), intent(in) :: self
    real(c_double), intent(in) :: energy_GeV(:), initial_energy_GeV(:)
    real(c_double), intent(out) :: l2_kpc2(:)
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    real(c_double), allocatable :: work(:)
    if (size(initial_energy_GeV) /= size(energy_GeV) .or. size(l2_kpc2) /= size(energy_GeV)) then
      call size_error("crk_transport_t%loss_length2: arrays differ in size", stat, msg)
      if (present(errmsg)) errmsg = msg
      return
    end if
    allocate(work(size(energy_GeV)))
    if (checked(crk_transport_loss_length2(self%ptr, energy_GeV, initial_energy_GeV, &
        size(energy_GeV, kind=c_size_t), work), "crk_transport_loss_length2", stat, msg)) &
        l2_kpc2 = work
    if (present(errmsg)) errmsg = msg
  end subroutine transport_loss_length2

  ! The loss time [Myr] from E0 down to E.
  subroutine transport_loss_time(self, energy_GeV, initial_energy_GeV, tau_Myr, stat, errmsg)
    class(crk_transport_t), intent(in) :: self
    real(c_double), intent(in) :: energy_GeV(:), initial_energy_GeV(:)
    real(c_double), intent(out) :: tau_Myr(:)
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    real(c_double), allocatable :: work(:)
    if (size(initial_energy_GeV) /= size(energy_GeV) .or. size(tau_Myr) /= size(energy_GeV)) then
      call size_error("crk_transport_t%loss_time: arrays differ in size", stat, msg)
      if (present(errmsg)) errmsg = msg
      return
    end if
    allocate(work(size(energy_GeV)))
    if (checked(crk_transport_loss_time(self%ptr, energy_GeV, initial_energy_GeV, &
        size(energy_GeV, kind=c_size_t), work), "crk_transport_loss_time", stat, msg)) &
        tau_Myr = work
    if (present(errmsg)) errmsg = msg
  end subroutine transport_loss_time

  ! The largest age [Myr] inside the table for electrons seen at energy_GeV.
  subroutine transport_max_age(self, energy_GeV, max_age_Myr, stat, errmsg)
    class(crk_transport_t), intent(in) :: self
    real(c_double), intent(in) :: energy_GeV(:)
    real(c_double), intent(out) :: max_age_Myr(:)
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    real(c_double), allocatable :: work(:)
    if (size(max_age_Myr) /= size(energy_GeV)) then
      call size_error("crk_transport_t%max_age: arrays differ in size", stat, msg)
      if (present(errmsg)) errmsg = msg
      return
    end if
    allocate(work(size(energy_GeV)))
    if (checked(crk_transport_max_age(self%ptr, energy_GeV, size(energy_GeV, kind=c_size_t), &
        work), "crk_transport_max_age", stat, msg)) max_age_Myr = work
    if (present(errmsg)) errmsg = msg
  end subroutine transport_max_age

  subroutine transport_free(self)
    class(crk_transport_t), intent(inout) :: self
    call crk_transport_free(self%ptr)
    self%ptr = c_null_ptr
  end subroutine transport_free

  subroutine transport_final(self)
    type(crk_transport_t), intent(inout) :: self
    call self%free()
  end subroutine transport_final

  ! ---------------------------------------------------------------- ensemble

  subroutine ensemble_init(self, transport, params, energy_GeV, stat, errmsg)
    class(crk_ensemble_t), intent(inout) :: self
    type(crk_transport_t), intent(in) :: transport
    type(crk_ensemble_params), intent(in) :: params
    real(c_double), intent(in) :: energy_GeV(:)
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    type(c_ptr) :: p
    call self%free()
    if (checked(crk_ensemble_new(transport%ptr, params, energy_GeV, &
        size(energy_GeV, kind=c_size_t), p), "crk_ensemble_new", stat, msg)) then
      self%ptr = p
      self%n_energies = size(energy_GeV, kind=c_size_t)
    end if
    if (present(errmsg)) errmsg = msg
  end subroutine ensemble_init

  ! Realisations first_realisation .. first_realisation + size(flux, 2) - 1 into
  ! flux(n_energies, n_realisations) (column j is realisation first_realisation + j - 1) on
  ! n_threads threads (absent or 0: all cores).
  subroutine ensemble_run(self, seed, first_realisation, flux, n_threads, stat, errmsg)
    class(crk_ensemble_t), intent(in) :: self
    integer(c_int64_t), intent(in) :: seed, first_realisation
    real(c_double), intent(out) :: flux(:, :)
    integer, intent(in), optional :: n_threads
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    real(c_double), allocatable :: work(:, :)
    integer(c_size_t) :: threads
    if (size(flux, 1, kind=c_size_t) /= self%n_energies) then
      call size_error("crk_ensemble_t%run: size(flux, 1) must be the number of energies", &
          stat, msg)
      if (present(errmsg)) errmsg = msg
      return
    end if
    threads = 0
    if (present(n_threads)) threads = int(n_threads, c_size_t)
    allocate(work(size(flux, 1), size(flux, 2)))
    if (checked(crk_ensemble_run(self%ptr, seed, first_realisation, &
        size(flux, 2, kind=c_size_t), threads, work, c_null_funptr, c_null_ptr), &
        "crk_ensemble_run", stat, msg)) flux = work
    if (present(errmsg)) errmsg = msg
  end subroutine ensemble_run

  ! %run on CUDA device `device` (CRK_ERR_NO_DEVICE without one).
  subroutine ensemble_run_gpu(self, device, seed, first_realisation, flux, stat, errmsg)
    class(crk_ensemble_t), intent(in) :: self
    integer, intent(in) :: device
    integer(c_int64_t), intent(in) :: seed, first_realisation
    real(c_double), intent(out) :: flux(:, :)
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    real(c_double), allocatable :: work(:, :)
    if (size(flux, 1, kind=c_size_t) /= self%n_energies) then
      call size_error("crk_ensemble_t%run_gpu: size(flux, 1) must be the number of energies", &
          stat, msg)
      if (present(errmsg)) errmsg = msg
      return
    end if
    allocate(work(size(flux, 1), size(flux, 2)))
    if (checked(crk_ensemble_run_gpu(self%ptr, int(device, c_int32_t), seed, first_realisation, &
        size(flux, 2, kind=c_size_t), work), "crk_ensemble_run_gpu", stat, msg)) flux = work
    if (present(errmsg)) errmsg = msg
  end subroutine ensemble_run_gpu

  ! The young sources of one realisation, into arrays allocated to their number.
  subroutine ensemble_sources(self, seed, realisation, distance_kpc, age_Myr, stat, errmsg)
    class(crk_ensemble_t), intent(in) :: self
    integer(c_int64_t), intent(in) :: seed, realisation
    real(c_double), allocatable, intent(out) :: distance_kpc(:), age_Myr(:)
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    integer(c_size_t) :: n, capacity
    real(c_double) :: no_distance(1), no_age(1)
    if (.not. checked(crk_ensemble_sources(self%ptr, seed, realisation, no_distance, no_age, &
        0_c_size_t, n), "crk_ensemble_sources", stat, msg)) then
      if (present(errmsg)) errmsg = msg
      return
    end if
    capacity = n
    allocate(distance_kpc(capacity), age_Myr(capacity))
    if (capacity == 0) return
    if (.not. checked(crk_ensemble_sources(self%ptr, seed, realisation, distance_kpc, age_Myr, &
        capacity, n), "crk_ensemble_sources", stat, msg)) then
      deallocate(distance_kpc, age_Myr)
      allocate(distance_kpc(0), age_Myr(0))
    end if
    if (present(errmsg)) errmsg = msg
  end subroutine ensemble_sources

  subroutine ensemble_free(self)
    class(crk_ensemble_t), intent(inout) :: self
    call crk_ensemble_free(self%ptr)
    self%ptr = c_null_ptr
    self%n_energies = 0
  end subroutine ensemble_free

  subroutine ensemble_final(self)
    type(crk_ensemble_t), intent(inout) :: self
    call self%free()
  end subroutine ensemble_final

  ! ---------------------------------------------------------------- MADE emulator

  subroutine made_load(self, path, stat, errmsg)
    class(crk_made_t), intent(inout) :: self
    character(len=*), intent(in) :: path
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    type(c_ptr) :: p
    call self%free()
    if (checked(crk_made_load(path // c_null_char, p), "crk_made_load(" // path // ")", stat, &
        msg)) self%ptr = p
    if (present(errmsg)) errmsg = msg
  end subroutine made_load

  subroutine made_dims(self, n_context, n_dims, n_components, stat, errmsg)
    class(crk_made_t), intent(in) :: self
    integer, intent(out) :: n_context, n_dims, n_components
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    integer(c_size_t) :: c, d, k
    n_context = 0
    n_dims = 0
    n_components = 0
    if (checked(crk_made_dims(self%ptr, c, d, k), "crk_made_dims", stat, msg)) then
      n_context = int(c)
      n_dims = int(d)
      n_components = int(k)
    end if
    if (present(errmsg)) errmsg = msg
  end subroutine made_dims

  ! log p(x(:, i) | context(:, i)) into log_prob(i): context(n_context, n), x(n_dims, n).
  subroutine made_log_prob(self, context, x, log_prob, n_threads, stat, errmsg)
    class(crk_made_t), intent(in) :: self
    real(c_float), intent(in) :: context(:, :), x(:, :)
    real(c_float), intent(out) :: log_prob(:)
    integer, intent(in), optional :: n_threads
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    integer(c_size_t) :: c, d, k, threads
    real(c_float), allocatable :: work(:)
    if (.not. checked(crk_made_dims(self%ptr, c, d, k), "crk_made_dims", stat, msg)) then
      if (present(errmsg)) errmsg = msg
      return
    end if
    if (size(context, 1, kind=c_size_t) /= c .or. size(x, 1, kind=c_size_t) /= d .or. &
        size(context, 2) /= size(log_prob) .or. size(x, 2) /= size(log_prob)) then
      call size_error("crk_made_t%log_prob: need context(n_context, n), x(n_dims, n), " // &
          "log_prob(n)", stat, msg)
      if (present(errmsg)) errmsg = msg
      return
    end if
    threads = 0
    if (present(n_threads)) threads = int(n_threads, c_size_t)
    allocate(work(size(log_prob)))
    if (checked(crk_made_log_prob(self%ptr, context, x, size(log_prob, kind=c_size_t), threads, &
        work), "crk_made_log_prob", stat, msg)) log_prob = work
    if (present(errmsg)) errmsg = msg
  end subroutine made_log_prob

  ! Draws x(:, i) ~ p(. | context(:, i)): context(n_context, n), x(n_dims, n).
  subroutine made_sample(self, context, seed, x, n_threads, stat, errmsg)
    class(crk_made_t), intent(in) :: self
    real(c_float), intent(in) :: context(:, :)
    integer(c_int64_t), intent(in) :: seed
    real(c_float), intent(out) :: x(:, :)
    integer, intent(in), optional :: n_threads
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    integer(c_size_t) :: c, d, k, threads
    real(c_float), allocatable :: work(:, :)
    if (.not. checked(crk_made_dims(self%ptr, c, d, k), "crk_made_dims", stat, msg)) then
      if (present(errmsg)) errmsg = msg
      return
    end if
    if (size(context, 1, kind=c_size_t) /= c .or. size(x, 1, kind=c_size_t) /= d .or. &
        size(context, 2) /= size(x, 2)) then
      call size_error("crk_made_t%sample: need context(n_context, n) and x(n_dims, n)", stat, &
          msg)
      if (present(errmsg)) errmsg = msg
      return
    end if
    threads = 0
    if (present(n_threads)) threads = int(n_threads, c_size_t)
    allocate(work(size(x, 1), size(x, 2)))
    if (checked(crk_made_sample(self%ptr, context, size(x, 2, kind=c_size_t), seed, threads, &
        work), "crk_made_sample", stat, msg)) x = work
    if (present(errmsg)) errmsg = msg
  end subroutine made_sample

  subroutine made_free(self)
    class(crk_made_t), intent(inout) :: self
    call crk_made_free(self%ptr)
    self%ptr = c_null_ptr
  end subroutine made_free

  subroutine made_final(self)
    type(crk_made_t), intent(inout) :: self
    call self%free()
  end subroutine made_final

  ! ---------------------------------------------------------------- network

  subroutine network_load(self, path, stat, errmsg)
    class(crk_network_t), intent(inout) :: self
    character(len=*), intent(in) :: path
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    type(c_ptr) :: p
    call self%free()
    if (checked(crk_network_load(path // c_null_char, p), "crk_network_load(" // path // ")", &
        stat, msg)) self%ptr = p
    if (present(errmsg)) errmsg = msg
  end subroutine network_load

  ! The number of output values per batch row.
  function network_output_size(self, stat, errmsg) result(n)
    class(crk_network_t), intent(in) :: self
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    integer :: n
    integer(c_size_t) :: size_c
    n = 0
    if (checked(crk_network_output_size(self%ptr, size_c), "crk_network_output_size", stat, &
        msg)) n = int(size_c)
    if (present(errmsg)) errmsg = msg
  end function network_output_size

  ! Runs the network on a batch: input1 .. input3 (the network's inputs in file order, as many
  ! as it declares) are input_j(values per sample of input j, batch), each sample's values in
  ! C order (channels first: a [c][len] input is input_j(len * c, batch) or, reshaped,
  ! (len, c, batch)); output(output_size, batch). n_threads absent or 0: all cores (the same
  ! numbers on any count). A non-finite input value is CRK_ERR_INVALID_ARGUMENT.
  subroutine network_run(self, output, input1, input2, input3, n_threads, stat, errmsg)
    class(crk_network_t), intent(in) :: self
    real(c_float), intent(out) :: output(:, :)
    real(c_float), intent(in), target, contiguous :: input1(:, :)
    real(c_float), intent(in), target, contiguous, optional :: input2(:, :), input3(:, :)
    integer, intent(in), optional :: n_threads
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    integer(c_size_t) :: n_inputs, out_size, per_sample, n_dims, threads
    integer(c_size_t) :: no_shape(1)
    integer :: rows(3), n_given, j
    type(c_ptr) :: inputs(3)
    real(c_float), allocatable :: work(:, :)
    if (.not. checked(crk_network_input_count(self%ptr, n_inputs), "crk_network_input_count", &
        stat, msg)) then
      if (present(errmsg)) errmsg = msg
      return
    end if
    if (.not. checked(crk_network_output_size(self%ptr, out_size), "crk_network_output_size", &
        stat, msg)) then
      if (present(errmsg)) errmsg = msg
      return
    end if
    rows = 0
    rows(1) = size(input1, 1)
    n_given = 1
    if (present(input2)) then
      rows(2) = size(input2, 1)
      n_given = 2
    end if
    if (present(input3)) then
      rows(3) = size(input3, 1)
      n_given = 3
    end if
    if (present(input3) .and. .not. present(input2)) then
      call size_error("crk_network_t%run: input3 without input2", stat, msg)
      if (present(errmsg)) errmsg = msg
      return
    end if
    if (int(n_given, c_size_t) /= n_inputs) then
      call size_error("crk_network_t%run: the network takes " // int_text(int(n_inputs)) // &
          " inputs, not " // int_text(n_given), stat, msg)
      if (present(errmsg)) errmsg = msg
      return
    end if
    if (size(output, 1, kind=c_size_t) /= out_size .or. size(output, 2) == 0) then
      call size_error("crk_network_t%run: need output(output_size, batch) = output(" // &
          int_text(int(out_size)) // ", batch), batch >= 1", stat, msg)
      if (present(errmsg)) errmsg = msg
      return
    end if
    if (size(input1, 2) /= size(output, 2)) then
      call size_error("crk_network_t%run: input1 and output differ in batch size", stat, msg)
      if (present(errmsg)) errmsg = msg
      return
    end if
    if (present(input2)) then
      if (size(input2, 2) /= size(output, 2)) then
        call size_error("crk_network_t%run: input2 and output differ in batch size", stat, msg)
        if (present(errmsg)) errmsg = msg
        return
      end if
    end if
    if (present(input3)) then
      if (size(input3, 2) /= size(output, 2)) then
        call size_error("crk_network_t%run: input3 and output differ in batch size", stat, msg)
        if (present(errmsg)) errmsg = msg
        return
      end if
    end if
    do j = 1, n_given
      if (.not. checked(crk_network_input_shape(self%ptr, int(j - 1, c_size_t), no_shape, &
          0_c_size_t, n_dims, per_sample), "crk_network_input_shape", stat, msg)) then
        if (present(errmsg)) errmsg = msg
        return
      end if
      if (int(rows(j), c_size_t) /= per_sample) then
        call size_error("crk_network_t%run: need input" // int_text(j) // "(values per " // &
            "sample, batch) = input" // int_text(j) // &
            shape_text([int(per_sample), size(output, 2)]), stat, msg)
        if (present(errmsg)) errmsg = msg
        return
      end if
    end do
    inputs = c_null_ptr
    inputs(1) = c_loc(input1)
    if (present(input2)) inputs(2) = c_loc(input2)
    if (present(input3)) inputs(3) = c_loc(input3)
    threads = 0
    if (present(n_threads)) threads = int(n_threads, c_size_t)
    allocate(work(size(output, 1), size(output, 2)))
    if (checked(crk_network_run(self%ptr, inputs, n_inputs, size(output, 2, kind=c_size_t), &
        threads, work, size(work, kind=c_size_t)), "crk_network_run", stat, msg)) output = work
    if (present(errmsg)) errmsg = msg
  end subroutine network_run

  subroutine network_free(self)
    class(crk_network_t), intent(inout) :: self
    call crk_network_free(self%ptr)
    self%ptr = c_null_ptr
  end subroutine network_free

  subroutine network_final(self)
    type(crk_network_t), intent(inout) :: self
    call self%free()
  end subroutine network_final

  ! ---------------------------------------------------------------- convolution and pooling

  ! 2-D convolution (crk_conv2d_f32_threads, cross-correlation as PyTorch's conv2d) with the
  ! C arrays in Fortran order: x(w, h, c_in, n), weight(kw, kh, c_in/groups, c_out),
  ! y(w_out, h_out, c_out, n) with h_out, w_out from crk_conv2d_output_shape, bias(c_out)
  ! (absent: none). stride, padding and dilation are [height, width] as in crk_conv_params
  ! (absent: 1, 0 and 1); groups absent: 1; n_threads absent: 1 (0: all cores; the same
  ! numbers on any count).
  subroutine crk_conv2d(x, weight, y, bias, stride, padding, dilation, groups, n_threads, &
      stat, errmsg)
    real(c_float), intent(in) :: x(:, :, :, :), weight(:, :, :, :)
    real(c_float), intent(out) :: y(:, :, :, :)
    real(c_float), intent(in), optional :: bias(:)
    integer, intent(in), optional :: stride(2), padding(2), dilation(2), groups, n_threads
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    type(crk_conv_params) :: params
    integer(c_size_t) :: h_out, w_out, threads
    real(c_float), allocatable :: bias_c(:), work(:, :, :, :)
    integer :: expected(4)
    params%stride = 1
    params%padding = 0
    params%dilation = 1
    params%groups = 1
    if (present(stride)) params%stride = int(stride, c_size_t)
    if (present(padding)) params%padding = int(padding, c_size_t)
    if (present(dilation)) params%dilation = int(dilation, c_size_t)
    if (present(groups)) params%groups = int(groups, c_size_t)
    if (.not. conv_setup("crk_conv2d", size(x, 3), size(weight, 3), size(weight, 4), bias, params, &
        bias_c, stat, msg)) then
      if (present(errmsg)) errmsg = msg
      return
    end if
    if (.not. checked(crk_conv2d_output_shape(size(x, 2, kind=c_size_t), &
        size(x, 1, kind=c_size_t), size(weight, 2, kind=c_size_t), &
        size(weight, 1, kind=c_size_t), params, h_out, w_out), "crk_conv2d_output_shape", &
        stat, msg)) then
      if (present(errmsg)) errmsg = msg
      return
    end if
    expected = [int(w_out), int(h_out), size(weight, 4), size(x, 4)]
    if (any(shape(y) /= expected)) then
      call size_error("crk_conv2d: need y(w_out, h_out, c_out, n) = y" // &
          shape_text(expected) // ", not y" // shape_text(shape(y)), stat, msg)
      if (present(errmsg)) errmsg = msg
      return
    end if
    threads = 1
    if (present(n_threads)) threads = int(n_threads, c_size_t)
    allocate(work(size(y, 1), size(y, 2), size(y, 3), size(y, 4)))
    if (checked(crk_conv2d_f32_threads(x, size(x, 4, kind=c_size_t), size(x, 3, kind=c_size_t), &
        size(x, 2, kind=c_size_t), size(x, 1, kind=c_size_t), weight, bias_c, &
        size(weight, 4, kind=c_size_t), size(weight, 2, kind=c_size_t), &
        size(weight, 1, kind=c_size_t), params, threads, work), "crk_conv2d_f32_threads", stat, &
        msg)) y = work
    if (present(errmsg)) errmsg = msg
  end subroutine crk_conv2d

  ! 1-D convolution (crk_conv1d_f32_threads): x(len, c_in, n), weight(k, c_in/groups, c_out),
  ! y(len_out, c_out, n) with len_out from crk_conv1d_output_length, bias(c_out) (absent:
  ! none); stride, dilation and groups absent: 1, padding absent: 0; n_threads as crk_conv2d.
  subroutine crk_conv1d(x, weight, y, bias, stride, padding, dilation, groups, n_threads, &
      stat, errmsg)
    real(c_float), intent(in) :: x(:, :, :), weight(:, :, :)
    real(c_float), intent(out) :: y(:, :, :)
    real(c_float), intent(in), optional :: bias(:)
    integer, intent(in), optional :: stride, padding, dilation, groups, n_threads
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    type(crk_conv_params) :: params
    integer(c_size_t) :: len_out, threads
    real(c_float), allocatable :: bias_c(:), work(:, :, :)
    integer :: expected(3)
    ! Both entries of each pair: the C side reads one of them.
    params%stride = 1
    params%padding = 0
    params%dilation = 1
    params%groups = 1
    if (present(stride)) params%stride = int(stride, c_size_t)
    if (present(padding)) params%padding = int(padding, c_size_t)
    if (present(dilation)) params%dilation = int(dilation, c_size_t)
    if (present(groups)) params%groups = int(groups, c_size_t)
    if (.not. conv_setup("crk_conv1d", size(x, 2), size(weight, 2), size(weight, 3), bias, params, &
        bias_c, stat, msg)) then
      if (present(errmsg)) errmsg = msg
      return
    end if
    if (.not. checked(crk_conv1d_output_length(size(x, 1, kind=c_size_t), &
        size(weight, 1, kind=c_size_t), params, len_out), "crk_conv1d_output_length", stat, &
        msg)) then
      if (present(errmsg)) errmsg = msg
      return
    end if
    expected = [int(len_out), size(weight, 3), size(x, 3)]
    if (any(shape(y) /= expected)) then
      call size_error("crk_conv1d: need y(len_out, c_out, n) = y" // shape_text(expected) // &
          ", not y" // shape_text(shape(y)), stat, msg)
      if (present(errmsg)) errmsg = msg
      return
    end if
    threads = 1
    if (present(n_threads)) threads = int(n_threads, c_size_t)
    allocate(work(size(y, 1), size(y, 2), size(y, 3)))
    if (checked(crk_conv1d_f32_threads(x, size(x, 3, kind=c_size_t), size(x, 2, kind=c_size_t), &
        size(x, 1, kind=c_size_t), weight, bias_c, size(weight, 3, kind=c_size_t), &
        size(weight, 1, kind=c_size_t), params, threads, work), "crk_conv1d_f32_threads", stat, &
        msg)) y = work
    if (present(errmsg)) errmsg = msg
  end subroutine crk_conv1d

  ! Checks a convolution's parameters (stride, dilation, groups >= 1, padding >= 0), that the
  ! weight's input channels times groups is c_in, and makes the C bias (absent: zeros); or
  ! .false. with stat and msg set (`what` names the caller in messages).
  logical function conv_setup(what, c_in, c_in_group, c_out, bias, params, bias_c, stat, msg)
    character(len=*), intent(in) :: what
    integer, intent(in) :: c_in, c_in_group, c_out
    real(c_float), intent(in), optional :: bias(:)
    type(crk_conv_params), intent(in) :: params
    real(c_float), allocatable, intent(out) :: bias_c(:)
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(out) :: msg
    conv_setup = .false.
    msg = ""
    if (any(params%stride < 1) .or. any(params%padding < 0) .or. any(params%dilation < 1) .or. &
        params%groups < 1) then
      call size_error(what // ": stride, dilation and groups must be >= 1, padding >= 0", stat, &
          msg)
      return
    end if
    if (int(c_in_group, c_size_t) * params%groups /= int(c_in, c_size_t)) then
      call size_error(what // ": the weight's input channels times groups must be c_in = " // &
          int_text(c_in), stat, msg)
      return
    end if
    allocate(bias_c(c_out))
    bias_c = 0
    if (present(bias)) then
      if (size(bias) /= c_out) then
        call size_error(what // ": need bias(c_out), c_out = " // int_text(c_out), stat, msg)
        return
      end if
      bias_c = bias
    end if
    if (present(stat)) stat = CRK_OK
    conv_setup = .true.
  end function conv_setup

  ! The crk_pool_params of a 2-D pooling and y's expected shape (w_out, h_out, c, n), or
  ! .false. with stat and msg set (`what` names the caller in messages).
  logical function pool_setup(what, x, y, kernel, stride, padding, count_include_pad, params, &
      stat, msg)
    character(len=*), intent(in) :: what
    real(c_float), intent(in) :: x(:, :, :, :), y(:, :, :, :)
    integer, intent(in) :: kernel(2)
    integer, intent(in), optional :: stride(2), padding(2)
    logical, intent(in), optional :: count_include_pad
    type(crk_pool_params), intent(out) :: params
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(out) :: msg
    integer(c_size_t) :: h_out, w_out
    integer :: expected(4)
    pool_setup = .false.
    if (any(kernel < 1)) then
      call size_error(what // ": kernel must be >= 1", stat, msg)
      return
    end if
    params%kernel = int(kernel, c_size_t)
    params%stride = params%kernel
    params%padding = 0
    params%count_include_pad = 1
    if (present(stride)) params%stride = int(stride, c_size_t)
    if (present(padding)) params%padding = int(padding, c_size_t)
    if (present(count_include_pad)) then
      if (.not. count_include_pad) params%count_include_pad = 0
    end if
    if (any(params%stride < 1) .or. any(params%padding < 0)) then
      call size_error(what // ": stride must be >= 1, padding >= 0", stat, msg)
      return
    end if
    if (.not. checked(crk_pool2d_output_shape(size(x, 2, kind=c_size_t), &
        size(x, 1, kind=c_size_t), params, h_out, w_out), "crk_pool2d_output_shape", stat, &
        msg)) return
    expected = [int(w_out), int(h_out), size(x, 3), size(x, 4)]
    if (any(shape(y) /= expected)) then
      call size_error(what // ": need y(w_out, h_out, c, n) = y" // shape_text(expected) // &
          ", not y" // shape_text(shape(y)), stat, msg)
      return
    end if
    pool_setup = .true.
  end function pool_setup

  ! Max pooling over 2-D windows (crk_maxpool2d_f32): x(w, h, c, n) to y(w_out, h_out, c, n)
  ! (crk_pool2d_output_shape). kernel, stride and padding are [height, width] as in
  ! crk_pool_params (stride absent: kernel; padding absent: 0); padded cells are ignored.
  subroutine crk_maxpool2d(x, y, kernel, stride, padding, stat, errmsg)
    real(c_float), intent(in) :: x(:, :, :, :)
    real(c_float), intent(out) :: y(:, :, :, :)
    integer, intent(in) :: kernel(2)
    integer, intent(in), optional :: stride(2), padding(2)
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    type(crk_pool_params) :: params
    real(c_float), allocatable :: work(:, :, :, :)
    if (.not. pool_setup("crk_maxpool2d", x, y, kernel, stride, padding, .true., params, stat, &
        msg)) then
      if (present(errmsg)) errmsg = msg
      return
    end if
    allocate(work(size(y, 1), size(y, 2), size(y, 3), size(y, 4)))
    if (checked(crk_maxpool2d_f32(x, size(x, 4, kind=c_size_t), size(x, 3, kind=c_size_t), &
        size(x, 2, kind=c_size_t), size(x, 1, kind=c_size_t), params, work), &
        "crk_maxpool2d_f32", stat, msg)) y = work
    if (present(errmsg)) errmsg = msg
  end subroutine crk_maxpool2d

  ! Average pooling over 2-D windows (crk_avgpool2d_f32), arguments as crk_maxpool2d;
  ! count_include_pad (absent: .true., as PyTorch) divides by the full window (padded cells
  ! count as zeros), .false. by the number of input cells in the window.
  subroutine crk_avgpool2d(x, y, kernel, stride, padding, count_include_pad, stat, errmsg)
    real(c_float), intent(in) :: x(:, :, :, :)
    real(c_float), intent(out) :: y(:, :, :, :)
    integer, intent(in) :: kernel(2)
    integer, intent(in), optional :: stride(2), padding(2)
    logical, intent(in), optional :: count_include_pad
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    type(crk_pool_params) :: params
    real(c_float), allocatable :: work(:, :, :, :)
    if (.not. pool_setup("crk_avgpool2d", x, y, kernel, stride, padding, count_include_pad, &
        params, stat, msg)) then
      if (present(errmsg)) errmsg = msg
      return
    end if
    allocate(work(size(y, 1), size(y, 2), size(y, 3), size(y, 4)))
    if (checked(crk_avgpool2d_f32(x, size(x, 4, kind=c_size_t), size(x, 3, kind=c_size_t), &
        size(x, 2, kind=c_size_t), size(x, 1, kind=c_size_t), params, work), &
        "crk_avgpool2d_f32", stat, msg)) y = work
    if (present(errmsg)) errmsg = msg
  end subroutine crk_avgpool2d

  ! Global average pooling (crk_global_avgpool_f32): x(w, h, c, n) to y(c, n).
  subroutine crk_global_avgpool(x, y, stat, errmsg)
    real(c_float), intent(in) :: x(:, :, :, :)
    real(c_float), intent(out) :: y(:, :)
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    real(c_float), allocatable :: work(:, :)
    if (size(y, 1) /= size(x, 3) .or. size(y, 2) /= size(x, 4)) then
      call size_error("crk_global_avgpool: need y(c, n) = y" // &
          shape_text([size(x, 3), size(x, 4)]) // ", not y" // shape_text(shape(y)), stat, msg)
      if (present(errmsg)) errmsg = msg
      return
    end if
    allocate(work(size(y, 1), size(y, 2)))
    if (checked(crk_global_avgpool_f32(x, size(x, 4, kind=c_size_t), size(x, 3, kind=c_size_t), &
        size(x, 1, kind=c_size_t) * size(x, 2, kind=c_size_t), work), &
        "crk_global_avgpool_f32", stat, msg)) y = work
    if (present(errmsg)) errmsg = msg
  end subroutine crk_global_avgpool

  ! ---------------------------------------------------------------- propagation

  ! D_cm2_per_s(i) [cm^2/s] at radius_kpc(i), height_kpc(i), rigidity_GV(i) (arrays of one
  ! size; crk_diffusion_coefficient).
  subroutine crk_diffusion_coefficient_checked(params, radius_kpc, height_kpc, rigidity_GV, &
      D_cm2_per_s, stat, errmsg)
    type(crk_diffusion_params), intent(in) :: params
    real(c_double), intent(in) :: radius_kpc(:), height_kpc(:), rigidity_GV(:)
    real(c_double), intent(out) :: D_cm2_per_s(:)
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    real(c_double), allocatable :: work(:)
    if (size(height_kpc) /= size(radius_kpc) .or. size(rigidity_GV) /= size(radius_kpc) .or. &
        size(D_cm2_per_s) /= size(radius_kpc)) then
      call size_error("crk_diffusion_coefficient_checked: arrays differ in size", stat, msg)
      if (present(errmsg)) errmsg = msg
      return
    end if
    allocate(work(size(radius_kpc)))
    if (checked(crk_diffusion_coefficient(params, radius_kpc, height_kpc, rigidity_GV, &
        size(radius_kpc, kind=c_size_t), work), "crk_diffusion_coefficient", stat, msg)) &
        D_cm2_per_s = work
    if (present(errmsg)) errmsg = msg
  end subroutine crk_diffusion_coefficient_checked

  ! The injection spectrum q_per_GV(i) = Q(rigidity_GV(i)) (crk_injection_rigidity).
  subroutine crk_injection_rigidity_checked(params, rigidity_GV, q_per_GV, stat, errmsg)
    type(crk_injection_params), intent(in) :: params
    real(c_double), intent(in) :: rigidity_GV(:)
    real(c_double), intent(out) :: q_per_GV(:)
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    real(c_double), allocatable :: work(:)
    if (size(q_per_GV) /= size(rigidity_GV)) then
      call size_error("crk_injection_rigidity_checked: q_per_GV and rigidity_GV differ in " // &
          "size", stat, msg)
      if (present(errmsg)) errmsg = msg
      return
    end if
    allocate(work(size(rigidity_GV)))
    if (checked(crk_injection_rigidity(params, rigidity_GV, size(rigidity_GV, kind=c_size_t), &
        work), "crk_injection_rigidity", stat, msg)) q_per_GV = work
    if (present(errmsg)) errmsg = msg
  end subroutine crk_injection_rigidity_checked

  ! The force-field map at Earth kinetic energies per nucleon kinetic_GeV(i) [GeV/n]: the
  ! interstellar energies and flux_TOA / flux_IS factors (crk_force_field_map; arrays of one
  ! size).
  subroutine crk_force_field_map_checked(particle, params, kinetic_GeV, &
      interstellar_kinetic_GeV, flux_factor, stat, errmsg)
    type(crk_particle), intent(in) :: particle
    type(crk_modulation_params), intent(in) :: params
    real(c_double), intent(in) :: kinetic_GeV(:)
    real(c_double), intent(out) :: interstellar_kinetic_GeV(:), flux_factor(:)
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    real(c_double), allocatable :: work_kinetic(:), work_factor(:)
    if (size(interstellar_kinetic_GeV) /= size(kinetic_GeV) .or. &
        size(flux_factor) /= size(kinetic_GeV)) then
      call size_error("crk_force_field_map_checked: arrays differ in size", stat, msg)
      if (present(errmsg)) errmsg = msg
      return
    end if
    allocate(work_kinetic(size(kinetic_GeV)), work_factor(size(kinetic_GeV)))
    if (checked(crk_force_field_map(particle, params, kinetic_GeV, &
        size(kinetic_GeV, kind=c_size_t), work_kinetic, work_factor), "crk_force_field_map", &
        stat, msg)) then
      interstellar_kinetic_GeV = work_kinetic
      flux_factor = work_factor
    end if
    if (present(errmsg)) errmsg = msg
  end subroutine crk_force_field_map_checked

  ! ---------------------------------------------------------------- mixtures

  ! out(i) = ln p(x(i)) of the 1-D Gaussian mixture with weights softmax(logits), means and
  ! scales exp(log_scales) (crk_mixture_log_pdf): logits, means, log_scales of one size k >= 1,
  ! x and out of one size n >= 1.
  subroutine crk_mixture_log_pdf_checked(logits, means, log_scales, x, out, stat, errmsg)
    real(c_double), intent(in) :: logits(:), means(:), log_scales(:), x(:)
    real(c_double), intent(out) :: out(:)
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    real(c_double), allocatable :: work(:)
    if (size(means) /= size(logits) .or. size(log_scales) /= size(logits) .or. &
        size(out) /= size(x)) then
      call size_error("crk_mixture_log_pdf_checked: need logits(k), means(k), " // &
          "log_scales(k), x(n) and out(n)", stat, msg)
      if (present(errmsg)) errmsg = msg
      return
    end if
    allocate(work(size(x)))
    if (checked(crk_mixture_log_pdf(logits, means, log_scales, size(logits, kind=c_size_t), x, &
        size(x, kind=c_size_t), work), "crk_mixture_log_pdf", stat, msg)) out = work
    if (present(errmsg)) errmsg = msg
  end subroutine crk_mixture_log_pdf_checked

  ! ---------------------------------------------------------------- surrogate

  ! Fits nll(i) at the points x(:, i) (x(n_params, n_points)), choosing the polynomial degree
  ! among `degrees` and the ridge alpha among `alphas` (at least one of each); `weighting` is a
  ! CRK_WEIGHTS_* other than CUSTOM (absent: CRK_WEIGHTS_NONE); the start point is the lowest NLL.
  subroutine surrogate_fit(self, x, nll, degrees, alphas, weighting, stat, errmsg)
    class(crk_surrogate_t), intent(inout) :: self
    real(c_double), intent(in) :: x(:, :), nll(:)
    integer, intent(in) :: degrees(:)
    real(c_double), intent(in) :: alphas(:)
    integer, intent(in), optional :: weighting
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    type(c_ptr) :: p
    type(crk_surrogate_options) :: options
    integer(c_size_t), allocatable, target :: degrees_c(:)
    real(c_double), allocatable, target :: alphas_c(:)
    call self%free()
    if (size(x, 2) /= size(nll) .or. size(degrees) == 0 .or. size(alphas) == 0) then
      call size_error("crk_surrogate_t%fit: need x(n_params, n_points), nll(n_points) and " // &
          "at least one degree and alpha", stat, msg)
      if (present(errmsg)) errmsg = msg
      return
    end if
    allocate(degrees_c(size(degrees)), alphas_c(size(alphas)))
    degrees_c = int(degrees, c_size_t)
    alphas_c = alphas
    options%weighting = CRK_WEIGHTS_NONE
    if (present(weighting)) options%weighting = int(weighting, c_int32_t)
    options%custom_weights = c_null_ptr
    options%start_index = -1
    options%degrees = c_loc(degrees_c)
    options%n_degrees = size(degrees_c, kind=c_size_t)
    options%alphas = c_loc(alphas_c)
    options%n_alphas = size(alphas_c, kind=c_size_t)
    if (checked(crk_surrogate_fit(x, size(x, 2, kind=c_size_t), size(x, 1, kind=c_size_t), nll, &
        options, p), "crk_surrogate_fit", stat, msg)) then
      self%ptr = p
      self%n_params = size(x, 1, kind=c_size_t)
    end if
    if (present(errmsg)) errmsg = msg
  end subroutine surrogate_fit

  ! The surrogate's NLL at x(:, i) into nll(i).
  subroutine surrogate_predict(self, x, nll, stat, errmsg)
    class(crk_surrogate_t), intent(in) :: self
    real(c_double), intent(in) :: x(:, :)
    real(c_double), intent(out) :: nll(:)
    integer, intent(out), optional :: stat
    character(len=:), allocatable, intent(inout), optional :: errmsg
    character(len=:), allocatable :: msg
    real(c_double), allocatable :: work(:)
    if (size(x, 1, kind=c_size_t) /= self%n_params .or. size(x, 2) /= size(nll)) then
      call size_error("crk_surrogate_t%predict: need x(n_params, n) and nll(n)", stat, msg)
      if (present(errmsg)) errmsg = msg
      return
    end if
    allocate(work(size(nll)))
    if (checked(crk_surrogate_predict(self%ptr, x, size(nll, kind=c_size_t), work), &
        "crk_surrogate_predict", stat, msg)) nll = work
    if (present(errmsg)) errmsg = msg
  end subroutine surrogate_predict

  subroutine surrogate_free(self)
    class(crk_surrogate_t), intent(inout) :: self
    call crk_surrogate_free(self%ptr)
    self%ptr = c_null_ptr
    self%n_params = 0
  end subroutine surrogate_free

  subroutine surrogate_final(self)
    type(crk_surrogate_t), intent(inout) :: self
    call self%free()
  end subroutine surrogate_final
end module crkernels

! The checked layer's convolution, pooling, network, propagation and mixture wrappers of
! bindings/fortran/crkernels.f90 against independent numbers: naive loops written from the
! definitions in include/crkernels.h, the documented formulas, and the raw bind(C) interface.
! tests/c_abi.rs runs it with the path of tests/data/conv/net_sd_two_branch.safetensors as its
! first argument (default: that path relative to the repository root). It prints a line per
! check and stops with error stop on any mismatch.
program layer
  use, intrinsic :: iso_c_binding
  use, intrinsic :: ieee_arithmetic, only: ieee_value, ieee_quiet_nan, ieee_is_finite
  use crkernels
  implicit none

  integer(c_int64_t) :: rng_state = 12345_c_int64_t

  call conv2d_checks()
  call conv1d_checks()
  call pool_checks()
  call network_checks()
  call propagation_checks()
  call mixture_checks()
  print '(a)', "all Fortran layer checks passed"

contains

  subroutine require(condition, what)
    logical, intent(in) :: condition
    character(len=*), intent(in) :: what
    if (.not. condition) then
      print '(2a)', "FAILED: ", what
      error stop 1
    end if
    print '(2a)', "ok: ", what
  end subroutine require

  ! A reproducible uniform number in (-1, 1) (Park-Miller; no dependence on the compiler).
  real(c_float) function rnd()
    rng_state = mod(16807_c_int64_t * rng_state, 2147483647_c_int64_t)
    rnd = real(2 * real(rng_state, c_double) / 2147483647.0_c_double - 1, c_float)
  end function rnd

  ! a and b (n values each, any shape by sequence association) hold the same bits.
  logical function same_bits(a, b, n)
    integer, intent(in) :: n
    real(c_float), intent(in) :: a(n), b(n)
    same_bits = all(transfer(a, 0_c_int32_t, n) == transfer(b, 0_c_int32_t, n))
  end function same_bits

  subroutine fill4(a)
    real(c_float), intent(out) :: a(:, :, :, :)
    integer :: i, j, k, l
    do l = 1, size(a, 4)
      do k = 1, size(a, 3)
        do j = 1, size(a, 2)
          do i = 1, size(a, 1)
            a(i, j, k, l) = rnd()
          end do
        end do
      end do
    end do
  end subroutine fill4

  subroutine fill3(a)
    real(c_float), intent(out) :: a(:, :, :)
    integer :: i, j, k
    do k = 1, size(a, 3)
      do j = 1, size(a, 2)
        do i = 1, size(a, 1)
          a(i, j, k) = rnd()
        end do
      end do
    end do
  end subroutine fill3

  ! ---------------------------------------------------------------- conv2d

  subroutine conv2d_checks()
    ! C in[n][c_in][h][w] = x(w, h, c_in, n); groups 2, stride 2 in height, padding 1,
    ! dilation 2 in width.
    integer, parameter :: n = 3, c_in = 4, h = 7, w = 6, groups = 2, c_out = 6, kh = 3, kw = 2
    integer, parameter :: stride(2) = [2, 1], padding(2) = [1, 1], dilation(2) = [1, 2]
    integer, parameter :: h_out = (h + 2 * padding(1) - dilation(1) * (kh - 1) - 1) / stride(1) + 1
    integer, parameter :: w_out = (w + 2 * padding(2) - dilation(2) * (kw - 1) - 1) / stride(2) + 1
    real(c_float) :: x(w, h, c_in, n), weight(kw, kh, c_in / groups, c_out), bias(c_out)
    real(c_float) :: y1(w_out, h_out, c_out, n), y2(w_out, h_out, c_out, n)
    real(c_float) :: y0(w_out, h_out, c_out, n), wrong(w_out, h_out + 1, c_out, n)
    real(c_double) :: ref(w_out, h_out, c_out, n), acc
    integer :: b, o, yy, xx, c, i, j, g, py, px, stat
    character(len=:), allocatable :: errmsg
    call fill4(x)
    call fill4(weight)
    do o = 1, c_out
      bias(o) = rnd()
    end do
    do b = 1, n
      do o = 1, c_out
        g = (o - 1) / (c_out / groups)
        do yy = 0, h_out - 1
          do xx = 0, w_out - 1
            acc = bias(o)
            do c = 0, c_in / groups - 1
              do i = 0, kh - 1
                do j = 0, kw - 1
                  py = yy * stride(1) + i * dilation(1) - padding(1)
                  px = xx * stride(2) + j * dilation(2) - padding(2)
                  if (py < 0 .or. py >= h .or. px < 0 .or. px >= w) cycle
                  acc = acc + real(weight(j + 1, i + 1, c + 1, o), c_double) * &
                      real(x(px + 1, py + 1, g * (c_in / groups) + c + 1, b), c_double)
                end do
              end do
            end do
            ref(xx + 1, yy + 1, o, b) = acc
          end do
        end do
      end do
    end do
    call crk_conv2d(x, weight, y1, bias, stride=stride, padding=padding, dilation=dilation, &
        groups=groups, n_threads=1, stat=stat, errmsg=errmsg)
    call require(stat == CRK_OK, "conv2d runs: " // errmsg)
    call require(maxval(abs(y1 - ref)) <= 1.0d-5 * maxval(abs(ref)), &
        "conv2d (groups 2, stride 2x1, padding 1, dilation 1x2) matches a naive loop")
    call crk_conv2d(x, weight, y2, bias, stride=stride, padding=padding, dilation=dilation, &
        groups=groups, n_threads=2)
    call require(same_bits(y2, y1, size(y1)), "conv2d on 2 threads is bit-identical to 1 thread")
    call crk_conv2d(x, weight, y0, stride=stride, padding=padding, dilation=dilation, &
        groups=groups)
    do o = 1, c_out
      ref(:, :, o, :) = ref(:, :, o, :) - bias(o)
    end do
    call require(maxval(abs(y0 - ref)) <= 1.0d-5 * maxval(abs(ref)), &
        "conv2d without bias matches the naive loop less the bias")
    call crk_conv2d(x, weight, wrong, bias, stride=stride, padding=padding, dilation=dilation, &
        groups=groups, stat=stat, errmsg=errmsg)
    call require(stat == CRK_ERR_INVALID_ARGUMENT .and. index(errmsg, "y(6, 4, 6, 3)") > 0, &
        "conv2d with a wrong-shaped y: stat /= 0, message '" // errmsg // "'")
    call crk_conv2d(x, weight(:, :, 1:1, :), y1, stat=stat, errmsg=errmsg)
    call require(stat /= CRK_OK, "conv2d with weight not matching c_in/groups: '" // errmsg // "'")
  end subroutine conv2d_checks

  ! ---------------------------------------------------------------- conv1d

  subroutine conv1d_checks()
    ! C in[n][c_in][len] = x(len, c_in, n); no bias, stride 2, padding 2, dilation 2.
    integer, parameter :: n = 2, c_in = 3, length = 9, c_out = 4, k = 3
    integer, parameter :: stride = 2, padding = 2, dilation = 2
    integer, parameter :: len_out = (length + 2 * padding - dilation * (k - 1) - 1) / stride + 1
    real(c_float) :: x(length, c_in, n), weight(k, c_in, c_out), bias(c_out)
    real(c_float) :: y1(len_out, c_out, n), y2(len_out, c_out, n), wrong(len_out - 1, c_out, n)
    real(c_double) :: ref(len_out, c_out, n), acc
    integer :: b, o, t, c, j, p, stat
    character(len=:), allocatable :: errmsg
    call fill3(x)
    call fill3(weight)
    do o = 1, c_out
      bias(o) = rnd()
    end do
    do b = 1, n
      do o = 1, c_out
        do t = 0, len_out - 1
          acc = bias(o)
          do c = 1, c_in
            do j = 0, k - 1
              p = t * stride + j * dilation - padding
              if (p < 0 .or. p >= length) cycle
              acc = acc + real(weight(j + 1, c, o), c_double) * real(x(p + 1, c, b), c_double)
            end do
          end do
          ref(t + 1, o, b) = acc
        end do
      end do
    end do
    call crk_conv1d(x, weight, y1, bias, stride=stride, padding=padding, dilation=dilation, &
        stat=stat, errmsg=errmsg)
    call require(stat == CRK_OK, "conv1d runs: " // errmsg)
    call require(maxval(abs(y1 - ref)) <= 1.0d-5 * maxval(abs(ref)), &
        "conv1d (stride 2, padding 2, dilation 2) matches a naive loop")
    call crk_conv1d(x, weight, y2, bias, stride=stride, padding=padding, dilation=dilation, &
        n_threads=2)
    call require(same_bits(y2, y1, size(y1)), "conv1d on 2 threads is bit-identical to 1 thread")
    call crk_conv1d(x, weight, wrong, bias, stride=stride, padding=padding, dilation=dilation, &
        stat=stat, errmsg=errmsg)
    call require(stat == CRK_ERR_INVALID_ARGUMENT .and. index(errmsg, "y(5, 4, 2)") > 0, &
        "conv1d with a wrong-shaped y: stat /= 0, message '" // errmsg // "'")
  end subroutine conv1d_checks

  ! ---------------------------------------------------------------- pooling

  subroutine pool_checks()
    ! kernel 3x2, stride 2x2, padding 1 in height only.
    integer, parameter :: n = 2, c = 3, h = 6, w = 7
    integer, parameter :: kernel(2) = [3, 2], stride(2) = [2, 2], padding(2) = [1, 0]
    ! (in + 2 padding - kernel) / stride + 1: (6 + 2 - 3) / 2 + 1 and (7 - 2) / 2 + 1.
    integer, parameter :: h_out = 3, w_out = 3
    real(c_float) :: x(w, h, c, n), ymax(w_out, h_out, c, n), yinc(w_out, h_out, c, n)
    real(c_float) :: yexc(w_out, h_out, c, n), ymean(c, n), wrong(w_out + 1, h_out, c, n)
    real(c_float) :: wrong_mean(c + 1, n)
    real(c_double) :: rmax(w_out, h_out, c, n), rinc(w_out, h_out, c, n)
    real(c_double) :: rexc(w_out, h_out, c, n), rmean(c, n), total, best
    integer :: b, ch, yy, xx, i, j, py, px, cells, stat
    character(len=:), allocatable :: errmsg
    call fill4(x)
    do b = 1, n
      do ch = 1, c
        rmean(ch, b) = sum(real(x(:, :, ch, b), c_double)) / (h * w)
        do yy = 0, h_out - 1
          do xx = 0, w_out - 1
            best = -huge(best)
            total = 0
            cells = 0
            do i = 0, kernel(1) - 1
              do j = 0, kernel(2) - 1
                py = yy * stride(1) + i - padding(1)
                px = xx * stride(2) + j - padding(2)
                if (py < 0 .or. py >= h .or. px < 0 .or. px >= w) cycle
                best = max(best, real(x(px + 1, py + 1, ch, b), c_double))
                total = total + x(px + 1, py + 1, ch, b)
                cells = cells + 1
              end do
            end do
            rmax(xx + 1, yy + 1, ch, b) = best
            rinc(xx + 1, yy + 1, ch, b) = total / (kernel(1) * kernel(2))
            rexc(xx + 1, yy + 1, ch, b) = total / cells
          end do
        end do
      end do
    end do
    call crk_maxpool2d(x, ymax, kernel, stride=stride, padding=padding, stat=stat, errmsg=errmsg)
    call require(stat == CRK_OK .and. maxval(abs(ymax - rmax)) <= 0, &
        "maxpool2d (kernel 3x2, stride 2, padding 1x0) equals a naive loop")
    call crk_avgpool2d(x, yinc, kernel, stride=stride, padding=padding, &
        count_include_pad=.true., stat=stat, errmsg=errmsg)
    call require(stat == CRK_OK .and. maxval(abs(yinc - rinc)) <= 1.0d-6, &
        "avgpool2d count_include_pad matches a naive loop")
    call crk_avgpool2d(x, yexc, kernel, stride=stride, padding=padding, &
        count_include_pad=.false., stat=stat, errmsg=errmsg)
    call require(stat == CRK_OK .and. maxval(abs(yexc - rexc)) <= 1.0d-6, &
        "avgpool2d without count_include_pad matches a naive loop")
    ! kernel 2x2 with the default stride (the kernel) on the first sample: 3 x 3 windows.
    call crk_maxpool2d(x(:, :, :, 1:1), ymax(:, :, :, 1:1), [2, 2])
    do ch = 1, c
      do yy = 0, 2
        do xx = 0, 2
          rmax(xx + 1, yy + 1, ch, 1) = &
              maxval(x(2 * xx + 1:2 * xx + 2, 2 * yy + 1:2 * yy + 2, ch, 1))
        end do
      end do
    end do
    call require(maxval(abs(ymax(:, :, :, 1) - rmax(:, :, :, 1))) <= 0, &
        "maxpool2d 2x2 with the default stride equals a naive loop")
    call crk_global_avgpool(x, ymean, stat=stat, errmsg=errmsg)
    call require(stat == CRK_OK .and. maxval(abs(ymean - rmean)) <= 1.0d-6, &
        "global_avgpool matches the mean over the plane")
    call crk_avgpool2d(x, wrong, kernel, stride=stride, padding=padding, stat=stat, errmsg=errmsg)
    call require(stat == CRK_ERR_INVALID_ARGUMENT .and. index(errmsg, "y(3, 3, 3, 2)") > 0, &
        "avgpool2d with a wrong-shaped y: stat /= 0, message '" // errmsg // "'")
    call crk_global_avgpool(x, wrong_mean, stat=stat, errmsg=errmsg)
    call require(stat == CRK_ERR_INVALID_ARGUMENT .and. index(errmsg, "y(3, 2)") > 0, &
        "global_avgpool with a wrong-shaped y: stat /= 0, message '" // errmsg // "'")
  end subroutine pool_checks

  ! ---------------------------------------------------------------- network

  subroutine network_checks()
    ! Inputs (metadata): traces [2, 256], grid [4, 8, 8], features [3]; output 2 values.
    integer, parameter :: batch = 5
    type(crk_network_t) :: net
    real(c_float), target :: traces(256, 2, batch), grid(8, 8, 4, batch), features(3, batch)
    real(c_float) :: out(2, batch), raw(2, batch), wrong(2, batch + 1)
    type(c_ptr) :: pointers(3)
    character(len=4096) :: path
    integer :: length, arg_stat, stat, i, j, k, b
    character(len=:), allocatable :: errmsg
    path = "tests/data/conv/net_sd_two_branch.safetensors"
    if (command_argument_count() >= 1) then
      call get_command_argument(1, path, length, arg_stat)
      call require(arg_stat == 0, "network path argument")
    end if
    call net%load(trim(path))
    call require(net%output_size() == 2, "network output size 2")
    do b = 1, batch
      do k = 1, 2
        do i = 1, 256
          traces(i, k, b) = real(0.5 * sin(0.05 * i + k + 0.3 * b), c_float)
        end do
      end do
      do k = 1, 4
        do j = 1, 8
          do i = 1, 8
            grid(i, j, k, b) = real(0.1 * (i - j) + 0.05 * k - 0.02 * b, c_float)
          end do
        end do
      end do
      features(:, b) = [0.1 * b, -0.2, 0.3 * b - 0.5]
    end do
    call net%run(out, reshape(traces, [512, batch]), reshape(grid, [256, batch]), features, &
        n_threads=1, stat=stat, errmsg=errmsg)
    call require(stat == CRK_OK, "network%run runs: " // errmsg)
    call require(all(ieee_is_finite(out)), "network%run output is finite")
    pointers = [c_loc(traces), c_loc(grid), c_loc(features)]
    call require(crk_network_run(net%ptr, pointers, 3_c_size_t, int(batch, c_size_t), &
        1_c_size_t, raw, size(raw, kind=c_size_t)) == CRK_OK, "raw crk_network_run runs")
    call require(same_bits(out, raw, size(raw)), &
        "network%run is bit-identical to the raw crk_network_run")
    call net%run(out, reshape(traces, [512, batch]), reshape(grid, [256, batch]), features, &
        n_threads=2)
    call require(same_bits(out, raw, size(raw)), "network%run on 2 threads is bit-identical")
    call net%run(wrong, reshape(traces, [512, batch]), reshape(grid, [256, batch]), features, &
        stat=stat, errmsg=errmsg)
    call require(stat == CRK_ERR_INVALID_ARGUMENT, "network%run with a wrong batch size: '" // &
        errmsg // "'")
    call net%run(out, reshape(traces, [512, batch]), features, stat=stat, errmsg=errmsg)
    call require(stat == CRK_ERR_INVALID_ARGUMENT .and. index(errmsg, "3 inputs") > 0, &
        "network%run with two inputs: '" // errmsg // "'")
    call net%run(out, reshape(traces, [512, batch]), features, reshape(grid, [256, batch]), &
        stat=stat, errmsg=errmsg)
    call require(stat == CRK_ERR_INVALID_ARGUMENT .and. index(errmsg, "input2(256, 5)") > 0, &
        "network%run with inputs of the wrong size: '" // errmsg // "'")
    features(2, 4) = ieee_value(features(2, 4), ieee_quiet_nan)
    call net%run(out, reshape(traces, [512, batch]), reshape(grid, [256, batch]), features, &
        stat=stat, errmsg=errmsg)
    call require(stat /= CRK_OK .and. index(errmsg, "NaN") > 0, &
        "network%run with a NaN input: '" // errmsg // "'")
  end subroutine network_checks

  ! ---------------------------------------------------------------- propagation

  subroutine propagation_checks()
    type(crk_diffusion_params) :: dp
    type(crk_injection_params) :: ip
    type(crk_particle) :: helium, antiproton
    type(crk_modulation_params) :: mp
    real(c_double), parameter :: r(5) = [0.0d0, 1.5d0, 3.0d0, 8.5d0, 12.0d0]
    real(c_double), parameter :: z(5) = [0.0d0, -0.1d0, 0.4d0, -1.2d0, 2.0d0]
    real(c_double), parameter :: rig(5) = [0.3d0, 2.0d0, 15.0d0, 300.0d0, 5.0d3]
    real(c_double), parameter :: t(4) = [0.05d0, 0.7d0, 5.0d0, 120.0d0]
    real(c_double) :: d(5), d_ref(5), q(5), q_ref(5), d_short(4)
    real(c_double) :: t_is(4), factor(4), ref_t_is(4), ref_factor(4), m, phi, rr, beta, x0
    integer :: i, stat
    character(len=:), allocatable :: errmsg

    dp = crk_diffusion_params(d0_cm2_per_s=4.0d28, radial_scale_kpc=5.0d0, &
        vertical_scale_kpc=0.8d0, delta_low=-0.2d0, break_low_GV=3.0d0, softness_low=0.1d0, &
        delta=0.45d0, break_high_GV=250.0d0, softness_high=0.2d0, delta_high=0.3d0)
    do i = 1, 5
      d_ref(i) = dp%d0_cm2_per_s * max(exp((r(i) - 2.0d0) / dp%radial_scale_kpc), 1.0d0) * &
          max(exp((abs(z(i)) - 0.15d0) / dp%vertical_scale_kpc), 1.0d0) * &
          (rig(i) / 4.0d0)**dp%delta_low * &
          (1 + (rig(i) / dp%break_low_GV)**((dp%delta - dp%delta_low) / dp%softness_low)) &
          **dp%softness_low * &
          (1 + (rig(i) / dp%break_high_GV)**((dp%delta - dp%delta_high) / dp%softness_high)) &
          **(-dp%softness_high)
    end do
    call crk_diffusion_coefficient_checked(dp, r, z, rig, d, stat=stat, errmsg=errmsg)
    call require(stat == CRK_OK .and. maxval(abs(d / d_ref - 1)) < 1.0d-12, &
        "diffusion coefficient (two breaks, radial and vertical zones) matches the formula")
    ! No breaks (delta_low = delta = delta_high, equal softness), central zone.
    dp = crk_diffusion_params(3.0d28, huge(1.0d0), huge(1.0d0), 0.5d0, 1.0d0, 0.5d0, 0.5d0, &
        100.0d0, 0.5d0, 0.5d0)
    call crk_diffusion_coefficient_checked(dp, r(1:2), [0.0d0, 0.1d0], rig(1:2), d(1:2))
    call require(maxval(abs(d(1:2) / (3.0d28 * (rig(1:2) / 4.0d0)**0.5d0) - 1)) < 1.0d-12, &
        "diffusion coefficient without breaks is D0 (R / 4 GV)^delta")
    call crk_diffusion_coefficient_checked(dp, r, z, rig(1:4), d_short, stat=stat, errmsg=errmsg)
    call require(stat == CRK_ERR_INVALID_ARGUMENT, "diffusion coefficient size check: '" // &
        errmsg // "'")

    ip = crk_injection_params(q0=2.5d0, gamma_low=1.8d0, break_GV=8.0d0, softness=0.3d0, &
        gamma_high=2.4d0, cutoff_GV=1.0d4)
    do i = 1, 5
      x0 = rig(i) / ip%break_GV
      q_ref(i) = ip%q0 * x0**(-ip%gamma_low) * &
          (1 + x0**((ip%gamma_high - ip%gamma_low) / ip%softness))**(-ip%softness) * &
          exp(-rig(i) / ip%cutoff_GV)
    end do
    call crk_injection_rigidity_checked(ip, rig, q, stat=stat, errmsg=errmsg)
    call require(stat == CRK_OK .and. maxval(abs(q / q_ref - 1)) < 1.0d-12, &
        "injection rigidity spectrum matches the formula")

    ! Gleeson-Axford (constant potential): T_IS = T + (|Z|/A) phi0.
    helium = crk_particle(mass_number=4, charge=2, nucleon_mass_GeV=CRK_ATOMIC_MASS_UNIT_GEV)
    mp = crk_modulation_params(phi0_GV=0.6d0, phi1_plus_GV=0.0d0, phi1_minus_GV=0.0d0)
    m = helium%nucleon_mass_GeV
    ref_t_is = t + 2.0d0 / 4.0d0 * 0.6d0
    ref_factor = t * (t + 2 * m) / (ref_t_is * (ref_t_is + 2 * m))
    call crk_force_field_map_checked(helium, mp, t, t_is, factor, stat=stat, errmsg=errmsg)
    call require(stat == CRK_OK .and. maxval(abs(t_is / ref_t_is - 1)) < 1.0d-12 .and. &
        maxval(abs(factor / ref_factor - 1)) < 1.0d-12, &
        "force-field map (helium, constant potential) matches Gleeson-Axford")
    ! Charge-sign dependent potential: an antiproton sees phi1_minus.
    antiproton = crk_particle(1, -1, CRK_PROTON_MASS_GEV)
    mp = crk_modulation_params(0.5d0, 0.9d0, 0.2d0)
    m = antiproton%nucleon_mass_GeV
    do i = 1, 4
      rr = sqrt(t(i) * (t(i) + 2 * m))
      beta = rr / (t(i) + m)
      phi = 0.5d0 + 0.2d0 * (1 + (rr / CRK_CHOLIS_R0_GV)**2) / (beta * (rr / CRK_CHOLIS_R0_GV)**3)
      ref_t_is(i) = t(i) + phi
      ref_factor(i) = t(i) * (t(i) + 2 * m) / (ref_t_is(i) * (ref_t_is(i) + 2 * m))
    end do
    call crk_force_field_map_checked(antiproton, mp, t, t_is, factor, stat=stat, errmsg=errmsg)
    call require(stat == CRK_OK .and. maxval(abs(t_is / ref_t_is - 1)) < 1.0d-12 .and. &
        maxval(abs(factor / ref_factor - 1)) < 1.0d-12, &
        "force-field map (antiproton, phi1_minus) matches the charge-sign dependent formula")
  end subroutine propagation_checks

  ! ---------------------------------------------------------------- mixtures

  subroutine mixture_checks()
    real(c_double), parameter :: pi = 3.14159265358979323846d0
    real(c_double), parameter :: logits(2) = [0.3d0, -0.2d0], means(2) = [0.1d0, 1.5d0]
    real(c_double), parameter :: x(5) = [-2.0d0, 0.0d0, 0.8d0, 1.5d0, 4.0d0]
    real(c_double) :: log_scales(2), out(5), ref(5), weights(2), s(2)
    integer :: i, stat
    character(len=:), allocatable :: errmsg
    s = [0.7d0, 1.3d0]
    log_scales = log(s)
    weights = exp(logits) / sum(exp(logits))
    do i = 1, 5
      ref(i) = log(sum(weights * exp(-0.5d0 * ((x(i) - means) / s)**2) / (s * sqrt(2 * pi))))
    end do
    call crk_mixture_log_pdf_checked(logits, means, log_scales, x, out, stat=stat, errmsg=errmsg)
    call require(stat == CRK_OK .and. maxval(abs(out - ref)) < 1.0d-12, &
        "mixture log-pdf (K = 2) matches a direct sum of normal densities")
    call crk_mixture_log_pdf_checked(logits, means(1:1), log_scales, x, out, stat=stat, &
        errmsg=errmsg)
    call require(stat == CRK_ERR_INVALID_ARGUMENT, "mixture log-pdf size check: '" // errmsg // "'")
  end subroutine mixture_checks
end program layer

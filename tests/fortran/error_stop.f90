! Without `stat`, an error in the checked layer must stop the program (error stop) with the
! message on stderr, never continue: tests/c_abi.rs runs this and expects a failing exit status.
program error_stop
  use, intrinsic :: iso_c_binding
  use crkernels
  implicit none
  type(crk_losses_t) :: losses
  real(c_double) :: rate(1)
  call losses%thomson(1.0d-16)
  call losses%rate([-1.0d0], rate)
  print '(a)', "continued after an error"
end program error_stop

//! Physics kernels: photon fields, electron energy losses and the loss-time integrals of
//! transport (PHYSICS.md, "Energy losses" and "Transport").

pub mod ensemble;
pub mod green;
pub mod klein_nishina;
pub mod losses;
pub mod photon_field;
pub mod sources;
pub mod transport;

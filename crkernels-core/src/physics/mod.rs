//! Physics kernels: photon fields, electron energy losses and the loss-time integrals of
//! transport (PHYSICS.md, "Energy losses" and "Transport"); species kinematics, diffusion and
//! injection models and solar modulation ("Propagation ingredients", "Solar modulation").

pub mod ensemble;
pub mod green;
pub mod klein_nishina;
pub mod losses;
pub mod modulation;
pub mod particle;
pub mod photon_field;
pub mod propagation;
pub mod sources;
pub mod transport;

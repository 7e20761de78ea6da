//! Run-time choice of the vector instruction set for loops written in plain Rust over
//! fixed-width lanes: the same source is compiled once for the baseline target and once per
//! wider instruction set (`#[target_feature]`), and the widest one this CPU has is called. No
//! build needs `-C target-cpu=native`.
//!
//! The environment variable `CRKERNELS_ISA` (`baseline`, `avx2`, `avx512`, `neon`) overrides
//! the choice, so that every path can be tested and timed on one machine. It is read once, at
//! the first kernel call. A value that is unknown, or names a set this CPU cannot run, makes
//! [`VectorIsa::selected`] return an error naming the value and the sets available: every C
//! entry point and every constructor that picks a kernel checks it, so the error reaches the
//! caller at first use (never an illegal instruction); kernels reached past that check run the
//! baseline path.
//!
//! Every variant gives bit-identical results: Rust never contracts a * b + c into a fused
//! multiply-add by itself, and where a kernel asks for one ([`super::mul_add`]) it is a
//! correctly rounded fused operation on every path (the FMA instruction on AVX2, AVX-512 and
//! aarch64, the C library's or `libm`'s `fma` on the x86-64 baseline, slower but the same
//! bits).
//!
//! On aarch64, NEON (Advanced SIMD, 2 f64 or 4 f32 lanes) is part of the base architecture:
//! the `baseline` set runs the lane loops (compiled with NEON by LLVM where it can), and the
//! `neon` set runs them too, except in the kernels that have hand-written NEON intrinsics:
//! Philox's batch (`Stream::fill_words`, `fill_uniform`; little-endian aarch64), the source
//! draws (`SpatialDistribution::sample_each`), the f32 GEMM tile (convolutions, dense layers,
//! the MADE trainer) and MADE's masked dense kernel, the same bits as the lane loops. So
//! `CRKERNELS_ISA=baseline` compares the two on one aarch64 machine.

use crate::error::{Error, Result};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// A vector instruction set a kernel can be compiled for.
/// Ordered from narrowest to widest within one architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum VectorIsa {
    /// The target's baseline (SSE2 on x86-64; NEON on aarch64; any other architecture).
    Baseline,
    /// aarch64 Advanced SIMD (NEON; 2 f64 lanes): hand-written intrinsics in Philox's batch,
    /// the source draws and the f32 GEMM and masked dense kernels, elsewhere the same lane loops
    /// as the aarch64 baseline.
    Neon,
    /// x86-64 AVX2 with FMA (4 f64 lanes).
    Avx2,
    /// x86-64 AVX-512F and DQ with FMA (8 f64 lanes).
    Avx512,
}

/// The environment variable that overrides the run-time choice.
pub const ISA_ENV_VAR: &str = "CRKERNELS_ISA";

impl VectorIsa {
    /// Every set, in the spelling of `CRKERNELS_ISA` and [`VectorIsa::name`].
    pub const ALL: [VectorIsa; 4] = [Self::Baseline, Self::Neon, Self::Avx2, Self::Avx512];

    /// The name used by `CRKERNELS_ISA` and `crk_vector_isa()`: `baseline`, `neon`, `avx2`,
    /// `avx512`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::Neon => "neon",
            Self::Avx2 => "avx2",
            Self::Avx512 => "avx512",
        }
    }

    /// The set with this name (exact, lower case), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|isa| isa.name() == name)
    }

    /// The widest set this CPU supports, ignoring `CRKERNELS_ISA` (std builds on x86-64 detect
    /// it at run time; aarch64 always has NEON; other builds use the baseline).
    pub fn hardware() -> Self {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        {
            let fma = std::arch::is_x86_feature_detected!("fma");
            let avx2 = std::arch::is_x86_feature_detected!("avx2");
            let avx512 = std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512dq");
            // Every CPU with AVX-512 has AVX2 (the AVX-512 paths call some AVX2 kernels).
            if fma && avx2 && avx512 {
                return Self::Avx512;
            }
            if fma && avx2 {
                return Self::Avx2;
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            return Self::Neon;
        }
        #[allow(unreachable_code)]
        Self::Baseline
    }

    /// The sets this CPU can run, narrowest first (for tests that compare them).
    pub fn available() -> impl Iterator<Item = Self> {
        let widest = Self::hardware();
        Self::ALL.into_iter().filter(move |&isa| match isa {
            Self::Baseline => true,
            Self::Neon => widest == Self::Neon,
            Self::Avx2 | Self::Avx512 => widest >= Self::Avx2 && isa <= widest,
        })
    }

    /// The names of [`VectorIsa::available`], comma separated (for messages).
    pub fn available_names() -> String {
        Self::available().map(Self::name).collect::<Vec<_>>().join(", ")
    }

    /// The set the kernels use: `CRKERNELS_ISA` where set, the widest this CPU has otherwise.
    /// An unknown value, or a set this CPU cannot run, is an [`Error::InvalidArgument`] that
    /// names the value and the sets available. The choice is made once per process.
    pub fn selected() -> Result<Self> {
        match selection::get() {
            Ok(isa) => Ok(isa),
            Err(value) => Err(Error::InvalidArgument(format!(
                "{ISA_ENV_VAR}={value:?} cannot be used: {}; this CPU can run: {}",
                if Self::from_name(&value).is_some() {
                    "this CPU does not have that instruction set"
                } else {
                    "unknown instruction set (expected baseline, avx2, avx512 or neon)"
                },
                Self::available_names()
            ))),
        }
    }

    /// This set, where this CPU can run it; an [`Error::InvalidArgument`] naming the sets
    /// available otherwise (for APIs that take a set explicitly).
    pub fn require(self) -> Result<Self> {
        if Self::available().any(|isa| isa == self) {
            Ok(self)
        } else {
            Err(Error::InvalidArgument(format!(
                "instruction set {} is not available on this CPU; it can run: {}",
                self.name(),
                Self::available_names()
            )))
        }
    }

    /// The set the kernels dispatch on: [`VectorIsa::selected`], or the baseline where that is
    /// an error (which [`VectorIsa::selected`] reports at the entry points).
    #[inline]
    pub fn detect() -> Self {
        selection::get().unwrap_or(Self::Baseline)
    }
}

/// The process-wide choice, resolved at first use and cached in one atomic byte.
mod selection {
    use super::VectorIsa;
    use alloc::string::String;
    use core::sync::atomic::{AtomicU8, Ordering};

    const UNRESOLVED: u8 = 0;
    const INVALID: u8 = 0xff;
    static CHOICE: AtomicU8 = AtomicU8::new(UNRESOLVED);

    /// The chosen set, or the offending value of the environment variable.
    #[inline]
    pub(super) fn get() -> Result<VectorIsa, String> {
        match CHOICE.load(Ordering::Relaxed) {
            UNRESOLVED => resolve(),
            INVALID => Err(override_value().unwrap_or_default()),
            code => Ok(VectorIsa::ALL[usize::from(code - 1)]),
        }
    }

    #[cold]
    fn resolve() -> Result<VectorIsa, String> {
        let choice = match override_value() {
            None => Ok(VectorIsa::hardware()),
            Some(value) => match VectorIsa::from_name(value.trim()) {
                Some(isa) if VectorIsa::available().any(|a| a == isa) => Ok(isa),
                _ => Err(value),
            },
        };
        let code = match &choice {
            Ok(isa) => 1 + VectorIsa::ALL.iter().position(|a| a == isa).unwrap_or(0) as u8,
            Err(_) => INVALID,
        };
        CHOICE.store(code, Ordering::Relaxed);
        choice
    }

    /// `CRKERNELS_ISA`, where set and not empty (std builds only).
    fn override_value() -> Option<String> {
        #[cfg(feature = "std")]
        {
            std::env::var(super::ISA_ENV_VAR).ok().filter(|v| !v.trim().is_empty())
        }
        #[cfg(not(feature = "std"))]
        {
            None
        }
    }
}

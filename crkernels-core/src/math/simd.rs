//! Run-time choice of the vector instruction set for loops written in plain Rust over
//! fixed-width lanes: the same source is compiled once for the baseline target and once per
//! wider instruction set (`#[target_feature]`), and the widest one this CPU has is called. No
//! build needs `-C target-cpu=native`.
//!
//! Every variant gives bit-identical results: Rust never contracts a * b + c into a fused
//! multiply-add by itself, and where a kernel asks for one ([`super::mul_add`]) it is a
//! correctly rounded fused operation on every path (the FMA instruction on AVX2 and AVX-512,
//! the C library's or `libm`'s `fma` on the baseline, slower but the same bits).

/// A vector instruction set a kernel can be compiled for.
/// Ordered from narrowest to widest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum VectorIsa {
    /// The target's baseline (SSE2 on x86-64; any other architecture).
    Baseline,
    /// x86-64 AVX2 with FMA (4 f64 lanes).
    Avx2,
    /// x86-64 AVX-512F and DQ with FMA (8 f64 lanes).
    Avx512,
}

impl VectorIsa {
    /// The widest set this CPU supports (std builds on x86-64 detect it at run time; other
    /// builds use the baseline).
    pub fn detect() -> Self {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        {
            let fma = std::arch::is_x86_feature_detected!("fma");
            let avx512 = std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512dq");
            if fma && avx512 {
                return Self::Avx512;
            }
            if fma && std::arch::is_x86_feature_detected!("avx2") {
                return Self::Avx2;
            }
        }
        Self::Baseline
    }

    /// The sets this CPU can run, narrowest first (for tests that compare them).
    pub fn available() -> impl Iterator<Item = Self> {
        let widest = Self::detect();
        [Self::Baseline, Self::Avx2, Self::Avx512].into_iter().filter(move |&isa| isa <= widest)
    }
}

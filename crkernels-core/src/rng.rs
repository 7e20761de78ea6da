//! Counter-based random numbers: the Philox4x32-10 generator and the distributions built on it.
//!
//! # Why counter-based
//!
//! Realisation `k` of an ensemble with seed `s` draws from [`Stream::new(s, k)`](Stream::new).
//! The n-th 32-bit word of that stream is a pure function of `(s, k, n)`: one call of the
//! Philox4x32-10 block function, with no state carried between realisations. So realisation `k`
//! gets the same numbers on any thread count, in any batch split, and on a GPU running the same
//! arithmetic.
//!
//! # The generator
//!
//! Philox4x32-10 (J. K. Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw, "Parallel random numbers:
//! as easy as 1, 2, 3", SC11, 2011), bit for bit as in Random123 and cuRAND: a
//! 128-bit counter and a 64-bit key go through 10 rounds of
//!
//! ```text
//! (hi0, lo0) = M0 * x0,  (hi1, lo1) = M1 * x2       (32 x 32 -> 64-bit products)
//! x' = [hi1 ^ x1 ^ k0,  lo1,  hi0 ^ x3 ^ k1,  lo0]
//! ```
//!
//! with M0 = 0xD2511F53 and M1 = 0xCD9E8D57; between rounds the key is bumped by the Weyl
//! constants (k0, k1) += (0x9E3779B9, 0xBB67AE85) (mod 2^32). Checked against Random123's
//! known-answer vectors in tests/rng.rs.
//!
//! # Stream layout
//!
//! - key = [low, high 32 bits of the seed];
//! - counter of block b = [low, high 32 bits of b, low, high 32 bits of the stream number];
//! - the words of block 0 are used in order (word 0 first), then block 1, and so on: 2^64 blocks
//!   (2^66 words) per stream, 2^64 streams per seed.
//! - a 64-bit number is two consecutive words, the first one low: `w0 | w1 << 32`.
//!
//! # What each draw consumes
//!
//! | method | 32-bit words |
//! | --- | --- |
//! | `next_u32` | 1 |
//! | `next_u64` | 2 |
//! | `uniform`, `exponential`, `normal` | 2 (2 more with probability 2^-53) |
//! | `poisson`, mean < 10 | 2 (one uniform) |
//! | `poisson`, mean >= 10 | 4 per trial; 1.33 trials on average at mean 10, 1.13 above 1e3 |
//! | `binomial`, n = 0 or p = 0 or p = 1 | 0 |
//! | `binomial`, n min(p, 1-p) < 10 | 2 (one uniform) |
//! | `binomial`, n min(p, 1-p) >= 10 | 4 per trial; 1.35 trials on average at n p = 10, 1.14 above 1e3 |
//!
//! The inversion methods (one uniform) draw a second uniform only when rounding made the
//! computed probabilities sum to less than the uniform (probability ~1e-16). The counts are
//! variable for the rejection methods, but every number is still a function of (seed, stream,
//! position), so the stream stays reproducible.
//!
//! # Porting to CUDA: what is bit-identical and what is not
//!
//! The integer part (Philox, the word order, the uniform mapping, `floor_i64`) is exact
//! everywhere. The
//! floating-point transforms are written as single IEEE-754 binary64 operations in a fixed order;
//! a port must evaluate the same expressions in the same order without contracting `a * b + c`
//! into a fused multiply-add (Rust never contracts; nvcc does by default: compile with
//! `-fmad=false`, or write `__dmul_rn`/`__dadd_rn`). +, -, *, / and sqrt are correctly rounded
//! on both sides, so what uses only them is identical: uniforms, the central 85% of normals,
//! the accepted-by-squeeze draws of PTRS and BTRS (most Poisson and binomial draws of large
//! mean). `ln`, `ln_1p` and `exp` come from the platform's math library (glibc through std,
//! the `libm` crate without std, CUDA's own on a GPU), all faithfully rounded but not
//! necessarily identical in the last bit:
//! - [`exponential`](Stream::exponential) and the normal tails (|z| > 1.44, 15% of draws) can
//!   differ in the last bit;
//! - Poisson and binomial draws (integers) use those functions only in set-up values and
//!   acceptance tests: a last-bit difference changes a draw only if a comparison falls within
//!   that last bit, with probability ~1e-16 per draw.

#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon", target_endian = "little")
))]
use crate::math::simd::VectorIsa;
use crate::math::{exp, ln, ln_1p, sqrt};

/// Philox4x32's multipliers (Salmon et al. 2011; Random123's PHILOX_M4x32_0 and _1).
const PHILOX_M0: u32 = 0xD251_1F53;
const PHILOX_M1: u32 = 0xCD9E_8D57;
/// The key schedule's Weyl constants: the golden ratio and sqrt(3) - 1, times 2^32.
const PHILOX_W0: u32 = 0x9E37_79B9;
const PHILOX_W1: u32 = 0xBB67_AE85;
/// Rounds of Philox4x32-10.
const PHILOX_ROUNDS: usize = 10;
/// Blocks computed together by the batch path: four AVX-512 registers of 64-bit lanes per
/// word, so that four independent multiply chains hide each other's latency (8 blocks, one
/// register, ran at 1.08 ns a uniform, latency-bound; 32 blocks at 0.62 ns).
const BATCH_BLOCKS: usize = 32;
/// Words of one batch of [`BATCH_BLOCKS`] blocks.
const BATCH_WORDS: usize = 4 * BATCH_BLOCKS;
/// Blocks that go through Philox's rounds together where the vector registers are 16 x 256
/// (AVX2) or 128 bits wide: 8 blocks are 8 AVX2 registers of state, two independent chains.
const SMALL_GROUP: usize = 8;
/// Uniforms converted per batch of [`Stream::fill_uniform`].
const UNIFORM_BATCH: usize = 128;

/// 2^-53, the spacing of the uniform lattice.
pub(crate) const TWO_POW_MINUS_53: f64 = 1.0 / 9_007_199_254_740_992.0;
/// 2^-32.
const TWO_POW_MINUS_32: f64 = 1.0 / 4_294_967_296.0;

/// 2 pi.
const TWO_PI: f64 = core::f64::consts::TAU;
/// 2^63: Poisson means at or above it could give counts beyond u64.
const MAX_POISSON_MEAN: f64 = 9_223_372_036_854_775_808.0;

/// The uniform number (w + 1/2) 2^-32 of one 32-bit word w: in the open interval (0, 1) (never
/// 0 or 1), on the 2^32 midpoints of its lattice, mean exactly 1/2, exact in binary64. For
/// draws that 32 bits resolve beyond what the model needs (ages within an age bin, distances:
/// see the ensemble); [`Stream::uniform`] gives 53 bits.
#[inline(always)]
pub fn uniform_from_word(word: u32) -> f64 {
    (f64::from(word) + 0.5) * TWO_POW_MINUS_32
}

/// The Philox4x32-10 block function: a 4 x 32-bit counter and a 2 x 32-bit key to 4 x 32 random
/// bits (Salmon et al. 2011; Random123's `philox4x32_R(10, ctr, key)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Philox4x32 {
    key: [u32; 2],
}

impl Philox4x32 {
    /// The block function with this key.
    pub fn new(key: [u32; 2]) -> Self {
        Self { key }
    }

    /// The 10-round bijection of `counter` under this generator's key.
    #[inline]
    pub fn block(&self, counter: [u32; 4]) -> [u32; 4] {
        let mut x = counter;
        let mut key = self.key;
        for _ in 0..PHILOX_ROUNDS {
            let (hi0, lo0) = mul_hi_lo(PHILOX_M0, x[0]);
            let (hi1, lo1) = mul_hi_lo(PHILOX_M1, x[2]);
            x = [hi1 ^ x[1] ^ key[0], lo1, hi0 ^ x[3] ^ key[1], lo0];
            // Bumped after every round; the bump after the last one is never used.
            key = [key[0].wrapping_add(PHILOX_W0), key[1].wrapping_add(PHILOX_W1)];
        }
        x
    }

    /// The blocks of counters [b + j (low, high 32 bits), stream (low, high)] for
    /// j = 0..BATCH_BLOCKS, word-major (`out[w][j]` is word w of block j): the same bijection as
    /// [`block`](Self::block), written over lanes so that it vectorises. The blocks go through
    /// the rounds in groups of `GROUP` (independent multiply chains that fit the vector
    /// registers: 32 blocks are 4 AVX-512 registers a word, but 8 AVX2 ones, which spill).
    #[inline(always)]
    #[allow(clippy::needless_range_loop)] // lane j of four arrays at once
    fn blocks<const GROUP: usize>(&self, first_block: u64, stream: u64) -> [[u32; BATCH_BLOCKS]; 4] {
        // Each 32-bit word sits in a 64-bit lane, so that the 32 x 32 -> 64-bit products are
        // single vector multiplies (vpmuludq) with no shuffling. Only a lane's low 32 bits are
        // the word: the multiplies read them through `as u32` (which vpmuludq does by itself),
        // so the lanes are never masked (masked lanes through the round loop made LLVM use the
        // slower 64 x 64-bit multiply and keep the masks).
        const LOW: u64 = 0xffff_ffff;
        let mut words = [[0u32; BATCH_BLOCKS]; 4];
        for group in (0..BATCH_BLOCKS).step_by(GROUP) {
            let mut x = [[0u64; GROUP]; 4];
            for j in 0..GROUP {
                let b = first_block.wrapping_add((group + j) as u64);
                x[0][j] = b & LOW;
                x[1][j] = b >> 32;
                x[2][j] = stream & LOW;
                x[3][j] = stream >> 32;
            }
            let mut key = [u64::from(self.key[0]), u64::from(self.key[1])];
            for _ in 0..PHILOX_ROUNDS {
                for j in 0..GROUP {
                    let product0 = u64::from(PHILOX_M0) * u64::from(x[0][j] as u32);
                    let product1 = u64::from(PHILOX_M1) * u64::from(x[2][j] as u32);
                    x[0][j] = (product1 >> 32) ^ x[1][j] ^ key[0];
                    x[1][j] = product1;
                    x[2][j] = (product0 >> 32) ^ x[3][j] ^ key[1];
                    x[3][j] = product0;
                }
                key = [(key[0] + u64::from(PHILOX_W0)) & LOW, (key[1] + u64::from(PHILOX_W1)) & LOW];
            }
            for (word, lanes) in words.iter_mut().zip(&x) {
                for (w, &lane) in word[group..group + GROUP].iter_mut().zip(lanes) {
                    *w = lane as u32;
                }
            }
        }
        words
    }
}

/// The two kernels of the batch paths ([`Stream::fill_words`], [`Stream::fill_uniform`]),
/// chosen by type so that they inline into the callers compiled for AVX2 and AVX-512 (a
/// closure or a function passed as a value was left out of line, compiled for the baseline
/// set: 4.5 times the instructions).
trait BatchKernels {
    /// The words of the blocks of counters [first_block + j, stream], j < [`BATCH_BLOCKS`],
    /// word-major: `out[w][j]` is word w of block j (the caller puts them in stream order, as
    /// before this trait: writing stream order here changed the AVX2 code, +0.8% instructions).
    fn blocks(generator: &Philox4x32, first_block: u64, stream: u64) -> [[u32; BATCH_BLOCKS]; 4];

    /// `out[i]` = m 2^-53 with m = (w0 | w1 << 32) >> 11 for the pair (w0, w1) =
    /// `words[2i..2i + 2]` (the mapping of [`Stream::uniform`]); true where some m is 0 (its
    /// `out[i]` is then 0).
    fn uniforms(words: &[u32], out: &mut [f64]) -> bool;
}

/// The plain-Rust lane loops, Philox's rounds over `GROUP` blocks at a time: the reference on
/// every instruction set.
struct Lanes<const GROUP: usize>;

impl<const GROUP: usize> BatchKernels for Lanes<GROUP> {
    #[inline(always)]
    fn blocks(generator: &Philox4x32, first_block: u64, stream: u64) -> [[u32; BATCH_BLOCKS]; 4] {
        generator.blocks::<GROUP>(first_block, stream)
    }

    #[inline(always)]
    fn uniforms(words: &[u32], out: &mut [f64]) -> bool {
        uniforms_from_words(words, out)
    }
}

/// The high and low 32 bits of the 64-bit product a * b.
#[inline(always)]
fn mul_hi_lo(a: u32, b: u32) -> (u32, u32) {
    let product = u64::from(a) * u64::from(b);
    ((product >> 32) as u32, product as u32)
}

/// Philox's batch and the uniforms' conversion in NEON intrinsics (aarch64's Advanced SIMD, in
/// its base architecture): the same bits as the lane loops ([`Lanes`]).
/// LLVM turns the lane loops' 32 x 32 -> 64-bit products into scalar multiplies on aarch64;
/// here each word of 4 blocks is one register of 32-bit lanes, and a product is `umull`
/// (lanes 0-1) and `umull2` (lanes 2-3). Little-endian only: the high and low halves of the
/// 64-bit products are taken as the odd and even 32-bit lanes, and a pair of words as one
/// 64-bit lane.
#[cfg(all(target_arch = "aarch64", target_feature = "neon", target_endian = "little"))]
mod neon {
    use super::{
        BATCH_BLOCKS, BatchKernels, PHILOX_M0, PHILOX_M1, PHILOX_ROUNDS, PHILOX_W0, PHILOX_W1, Philox4x32,
    };
    use core::arch::aarch64::*;

    /// The NEON kernels.
    pub(super) struct Neon;

    impl BatchKernels for Neon {
        #[inline]
        fn blocks(generator: &Philox4x32, first_block: u64, stream: u64) -> [[u32; BATCH_BLOCKS]; 4] {
            // SAFETY: this build's target has NEON (the module's cfg).
            unsafe { blocks(generator.key, first_block, stream) }
        }

        #[inline]
        fn uniforms(words: &[u32], out: &mut [f64]) -> bool {
            // SAFETY: as above.
            unsafe { uniforms_from_words(words, out) }
        }
    }

    /// Registers of 4 blocks each that go through the rounds together: two independent
    /// multiply chains. With 4, their state (16 of the 32 vector registers), products and the
    /// round keys that LLVM precomputes spilled: 1.5 times the instructions.
    const REGISTERS: usize = 2;
    /// Blocks that go through the rounds together.
    const GROUP_BLOCKS: usize = 4 * REGISTERS;

    /// [`BatchKernels::blocks`] under `key`: 4 blocks a register, [`REGISTERS`] registers at a
    /// time.
    ///
    /// # Safety
    /// NEON must be available (it is wherever the target enables it).
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn blocks(key: [u32; 2], first_block: u64, stream: u64) -> [[u32; BATCH_BLOCKS]; 4] {
        let mut words = [[0; BATCH_BLOCKS]; 4];
        for group in (0..BATCH_BLOCKS).step_by(GROUP_BLOCKS) {
            let first = first_block.wrapping_add(group as u64);
            // Register r holds blocks first + 4 r + (0, 1, 2, 3): their 64-bit numbers in two
            // registers, split into low and high words (the even and odd 32-bit lanes).
            let counters: [(uint32x4_t, uint32x4_t); REGISTERS] = core::array::from_fn(|r| {
                let number = |j: u64| first.wrapping_add(4 * r as u64 + j);
                let (blocks_0_1, blocks_2_3) =
                    (pair_u64(number(0), number(1)), pair_u64(number(2), number(3)));
                let (a, b) = (vreinterpretq_u32_u64(blocks_0_1), vreinterpretq_u32_u64(blocks_2_3));
                (vuzp1q_u32(a, b), vuzp2q_u32(a, b))
            });
            let mut x0 = counters.map(|(low, _)| low);
            let mut x1 = counters.map(|(_, high)| high);
            let mut x2 = [vdupq_n_u32(stream as u32); REGISTERS];
            let mut x3 = [vdupq_n_u32((stream >> 32) as u32); REGISTERS];
            let (mut key0, mut key1) = (vdupq_n_u32(key[0]), vdupq_n_u32(key[1]));
            for _ in 0..PHILOX_ROUNDS {
                for r in 0..REGISTERS {
                    let (hi0, lo0) = mul_hi_lo(PHILOX_M0, x0[r]);
                    let (hi1, lo1) = mul_hi_lo(PHILOX_M1, x2[r]);
                    // x1 ^ k0 and x3 ^ k1 do not wait for the products.
                    x0[r] = veorq_u32(hi1, veorq_u32(x1[r], key0));
                    x1[r] = lo1;
                    x2[r] = veorq_u32(hi0, veorq_u32(x3[r], key1));
                    x3[r] = lo0;
                }
                key0 = vaddq_u32(key0, vdupq_n_u32(PHILOX_W0));
                key1 = vaddq_u32(key1, vdupq_n_u32(PHILOX_W1));
            }
            for (word, x) in words.iter_mut().zip([x0, x1, x2, x3]) {
                for (blocks, x) in word[group..group + GROUP_BLOCKS].as_chunks_mut::<4>().0.iter_mut().zip(x)
                {
                    // SAFETY: `blocks` holds the 4 words written.
                    unsafe { vst1q_u32(blocks.as_mut_ptr(), x) };
                }
            }
        }
        words
    }

    /// The register of 64-bit lanes (a, b).
    #[inline]
    #[target_feature(enable = "neon")]
    fn pair_u64(a: u64, b: u64) -> uint64x2_t {
        vcombine_u64(vcreate_u64(a), vcreate_u64(b))
    }

    /// The high and low 32 bits of the products m * x (lanes of 32 x 32 -> 64 bits).
    #[inline]
    #[target_feature(enable = "neon")]
    fn mul_hi_lo(m: u32, x: uint32x4_t) -> (uint32x4_t, uint32x4_t) {
        let m = vdupq_n_u32(m);
        let products_0_1 = vreinterpretq_u32_u64(vmull_u32(vget_low_u32(m), vget_low_u32(x)));
        let products_2_3 = vreinterpretq_u32_u64(vmull_high_u32(m, x));
        (vuzp2q_u32(products_0_1, products_2_3), vuzp1q_u32(products_0_1, products_2_3))
    }

    /// [`BatchKernels::uniforms`], two uniforms a register: the pair read as a 64-bit lane,
    /// shifted, and converted with `ucvtf #53` (m 2^-53 as a fixed-point number with 53
    /// fraction bits: exact, since m < 2^53). Pairs past the last whole register go through
    /// `uniforms_from_words`.
    ///
    /// # Safety
    /// NEON must be available (it is wherever the target enables it).
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn uniforms_from_words(words: &[u32], out: &mut [f64]) -> bool {
        let (pairs, words_rest) = words.as_chunks::<4>();
        let (uniforms, out_rest) = out.as_chunks_mut::<2>();
        // The smallest uniform so far: 0 exactly where some m is 0.
        let mut smallest = vdupq_n_f64(1.0);
        for (u, w) in uniforms.iter_mut().zip(pairs) {
            // SAFETY: `w` holds the 4 words read, `u` the 2 uniforms written.
            let words = unsafe { vld1q_u32(w.as_ptr()) };
            let m = vshrq_n_u64::<11>(vreinterpretq_u64_u32(words));
            let uniform = vcvtq_n_f64_u64::<53>(m);
            smallest = vminq_f64(smallest, uniform);
            // SAFETY: as above.
            unsafe { vst1q_f64(u.as_mut_ptr(), uniform) };
        }
        let any_zero = vminvq_f64(smallest) == 0.0;
        super::uniforms_from_words(words_rest, out_rest) | any_zero
    }
}

/// The sequence of random numbers of one (seed, stream) pair; see the module documentation for
/// the counter layout and what each draw consumes.
///
/// A `Stream` is cheap (48 bytes, no allocation): make one per realisation, per thread.
#[derive(Clone, Debug)]
pub struct Stream {
    generator: Philox4x32,
    /// The stream number: the high half of every counter.
    stream: u64,
    /// The block the next refill computes.
    next_block: u64,
    /// The current block's words ...
    buffer: [u32; 4],
    /// ... of which this many have been used (4: none left).
    used: usize,
}

/// m as f64 for m < 2^53 (exact), from integer operations and two exact subtractions:
/// (2^84 + 2^32 hi) - 2^84 and (2^52 + lo) - 2^52 for the high 21 and low 32 bits, whose sum
/// m is representable, so rounds to itself. The same value as `m as f64`, but it vectorises
/// on AVX2 and NEON, which have no 64-bit integer to double conversion (AVX-512DQ has one).
#[inline(always)]
fn exact_below_2_pow_53(m: u64) -> f64 {
    const TWO_POW_52: f64 = 4_503_599_627_370_496.0;
    const TWO_POW_84: f64 = 19_342_813_113_834_066_795_298_816.0;
    let high = f64::from_bits(TWO_POW_84.to_bits() | (m >> 32)) - TWO_POW_84;
    let low = f64::from_bits(TWO_POW_52.to_bits() | (m & 0xffff_ffff)) - TWO_POW_52;
    high + low
}

/// [`BatchKernels::uniforms`] in plain Rust (its lanes vectorise where the set has a 64-bit
/// shift, see [`exact_below_2_pow_53`]).
#[inline(always)]
fn uniforms_from_words(words: &[u32], out: &mut [f64]) -> bool {
    let mut any_zero = false;
    for (u, pair) in out.iter_mut().zip(words.chunks_exact(2)) {
        let m = (u64::from(pair[0]) | (u64::from(pair[1]) << 32)) >> 11;
        any_zero |= m == 0;
        *u = exact_below_2_pow_53(m) * TWO_POW_MINUS_53;
    }
    any_zero
}

impl Stream {
    /// The stream `stream` of seed `seed`, positioned at its first word.
    pub fn new(seed: u64, stream: u64) -> Self {
        Self {
            generator: Philox4x32::new([seed as u32, (seed >> 32) as u32]),
            stream,
            next_block: 0,
            buffer: [0; 4],
            used: 4,
        }
    }

    /// Moves to the start of block `block` (word 4 * `block` of the stream), forward or back.
    ///
    /// Useful to split one stream between workers: worker j can start at block j * 2^40.
    pub fn skip_to_block(&mut self, block: u64) {
        self.next_block = block;
        self.used = 4;
    }

    /// Moves to the start of the next block, skipping the words left in the current one (none
    /// at the start of a block): the batch fills that follow then run on whole batches only.
    pub fn skip_to_block_start(&mut self) {
        self.used = 4;
    }

    /// The position of the stream: the index of the next word it gives (word w is word w mod 4
    /// of block w / 4), modulo 2^64.
    pub fn word_position(&self) -> u64 {
        (self.next_block << 2).wrapping_add(self.used as u64).wrapping_sub(4)
    }

    /// The next 32 random bits.
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        if self.used == 4 {
            let b = self.next_block;
            let counter = [b as u32, (b >> 32) as u32, self.stream as u32, (self.stream >> 32) as u32];
            self.buffer = self.generator.block(counter);
            self.next_block = b.wrapping_add(1);
            self.used = 0;
        }
        let word = self.buffer[self.used];
        self.used += 1;
        word
    }

    /// The next 64 random bits: two words, the first one low.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let (low, high) = if self.used <= 2 {
            // Both words from the current block.
            self.used += 2;
            (self.buffer[self.used - 2], self.buffer[self.used - 1])
        } else {
            (self.next_u32(), self.next_u32())
        };
        u64::from(low) | (u64::from(high) << 32)
    }

    /// A uniform number in the open interval (0, 1).
    ///
    /// Mapping: m = `next_u64() >> 11` (the top 53 bits), u = m 2^-53, exact in binary64. If
    /// m = 0 (probability 2^-53) another 64 bits are drawn, so u is uniform on the 2^53 - 1
    /// points {1, 2, ..., 2^53 - 1} 2^-53: never 0 or 1, mean exactly 1/2, and 1 - u exact and on
    /// the same lattice. Extremes: 2^-53 = 1.1e-16 and 1 - 2^-53.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        loop {
            let m = self.next_u64() >> 11;
            if m != 0 {
                return m as f64 * TWO_POW_MINUS_53;
            }
        }
    }

    /// Shuffles `items` in place (Fisher-Yates, from the last position down: position i swaps
    /// with j = floor(u (i + 1)), one uniform each); a function of the stream's position only.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = ((self.uniform() * (i + 1) as f64) as usize).min(i);
            items.swap(i, j);
        }
    }

    /// Fills `out` with the next `out.len()` words: the same words as that many calls of
    /// [`next_u32`](Self::next_u32), whole blocks computed 8 at a time on the widest vector
    /// instruction set of the CPU.
    pub fn fill_words(&mut self, out: &mut [u32]) {
        #[cfg(target_arch = "x86_64")]
        match VectorIsa::detect() {
            // SAFETY: VectorIsa::detect found the instruction set on this CPU.
            VectorIsa::Avx512 => return unsafe { self.fill_words_avx512(out) },
            VectorIsa::Avx2 => return unsafe { self.fill_words_avx2(out) },
            VectorIsa::Baseline | VectorIsa::Neon => {}
        }
        #[cfg(all(target_arch = "aarch64", target_feature = "neon", target_endian = "little"))]
        if VectorIsa::detect() == VectorIsa::Neon {
            return self.fill_words_by::<neon::Neon>(out);
        }
        self.fill_words_by::<Lanes<SMALL_GROUP>>(out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn fill_words_avx512(&mut self, out: &mut [u32]) {
        self.fill_words_by::<Lanes<BATCH_BLOCKS>>(out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn fill_words_avx2(&mut self, out: &mut [u32]) {
        self.fill_words_by::<Lanes<SMALL_GROUP>>(out)
    }

    /// [`fill_words`](Self::fill_words) with the kernels `K`: the rest of the current block,
    /// then [`BATCH_BLOCKS`] blocks at a time, then word by word.
    #[inline(always)]
    fn fill_words_by<K: BatchKernels>(&mut self, out: &mut [u32]) {
        let mut filled = 0;
        while self.used < 4 && filled < out.len() {
            out[filled] = self.next_u32();
            filled += 1;
        }
        while out.len() - filled >= BATCH_WORDS {
            let words = K::blocks(&self.generator, self.next_block, self.stream);
            for (j, block) in out[filled..filled + BATCH_WORDS].chunks_exact_mut(4).enumerate() {
                for (w, word) in block.iter_mut().enumerate() {
                    *word = words[w][j];
                }
            }
            self.next_block = self.next_block.wrapping_add(BATCH_BLOCKS as u64);
            filled += BATCH_WORDS;
        }
        for word in &mut out[filled..] {
            *word = self.next_u32();
        }
    }

    /// Fills `out` with the next `out.len()` uniforms: the same numbers, in the same order, as
    /// that many calls of [`uniform`](Self::uniform), with the words from
    /// [`fill_words`](Self::fill_words).
    pub fn fill_uniform(&mut self, out: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        match VectorIsa::detect() {
            // SAFETY: VectorIsa::detect found the instruction set on this CPU.
            VectorIsa::Avx512 => return unsafe { self.fill_uniform_avx512(out) },
            VectorIsa::Avx2 => return unsafe { self.fill_uniform_avx2(out) },
            VectorIsa::Baseline | VectorIsa::Neon => {}
        }
        #[cfg(all(target_arch = "aarch64", target_feature = "neon", target_endian = "little"))]
        if VectorIsa::detect() == VectorIsa::Neon {
            return self.fill_uniform_by::<neon::Neon>(out);
        }
        self.fill_uniform_by::<Lanes<SMALL_GROUP>>(out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,fma")]
    unsafe fn fill_uniform_avx512(&mut self, out: &mut [f64]) {
        self.fill_uniform_by::<Lanes<BATCH_BLOCKS>>(out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn fill_uniform_avx2(&mut self, out: &mut [f64]) {
        self.fill_uniform_by::<Lanes<SMALL_GROUP>>(out)
    }

    /// [`fill_uniform`](Self::fill_uniform) with the kernels `K`, up to [`UNIFORM_BATCH`]
    /// uniforms at a time.
    #[inline(always)]
    fn fill_uniform_by<K: BatchKernels>(&mut self, out: &mut [f64]) {
        let mut done = 0;
        let mut words = [0u32; 2 * UNIFORM_BATCH];
        while done < out.len() {
            let n = (out.len() - done).min(UNIFORM_BATCH);
            let start = (self.next_block, self.used);
            self.fill_words_by::<K>(&mut words[..2 * n]);
            // Branch-free conversion; a zero (uniform() would draw again) is found afterwards.
            let any_zero = K::uniforms(&words[..2 * n], &mut out[done..done + n]);
            if !any_zero {
                done += n;
                continue;
            }
            // uniform() draws again at the first zero (probability 2^-53), which moves every
            // later number: go back to just after that pair and redraw as it does.
            let j = out[done..done + n].iter().position(|&u| u == 0.0).unwrap_or(n - 1);
            self.seek_words_after(start, 2 * (j + 1));
            out[done + j] = self.uniform();
            done += j + 1;
        }
    }

    /// Moves to `words` words after the position `(next_block, used)` of this stream.
    fn seek_words_after(&mut self, (next_block, used): (u64, usize), words: usize) {
        // Word index of the position, mod 2^66 (the stream's length in words).
        let position = (u128::from(next_block) << 2) + used as u128 + words as u128 + (1 << 66) - 4;
        self.skip_to_block((position / 4) as u64);
        for _ in 0..position % 4 {
            self.next_u32();
        }
    }

    /// An exponential number of mean 1: -ln u with u = [`uniform`](Self::uniform)(), in
    /// [1.1e-16, 36.74].
    ///
    /// Uses the platform's `ln` (see the module documentation on portability).
    #[inline]
    pub fn exponential(&mut self) -> f64 {
        -ln(self.uniform())
    }

    /// A standard normal number by inversion: [`standard_normal_quantile`] of one
    /// [`uniform`](Self::uniform), so |z| <= 8.21.
    ///
    /// Inversion costs one uniform per normal with no cached state, and its central 85% is pure
    /// arithmetic (bit-identical on a GPU); Box-Muller would need ln, sin and cos on every draw.
    #[inline]
    pub fn normal(&mut self) -> f64 {
        standard_normal_quantile(self.uniform())
    }

    /// A Poisson number of mean `mean` [counts], exact in distribution (up to the rounding of
    /// the probabilities computed in binary64).
    ///
    /// - mean < 10: inversion by sequential search (L. Devroye, "Non-Uniform Random Variate
    ///   Generation", Springer 1986, sections III.2 and X.3): with p_0 = e^-mean and
    ///   p_k = p_{k-1} mean / k, return the first k with u <= p_0 + ... + p_k, for one
    ///   uniform u (expected mean + 1 steps).
    /// - mean >= 10: PTRS, transformed rejection with squeeze (W. Hörmann, "The transformed
    ///   rejection method for generating Poisson random variables", Insurance: Mathematics and
    ///   Economics 12 (1993) 39-45, algorithm PTRS; the constants as in NumPy's
    ///   `random_poisson_ptrs`). Two uniforms per trial; most trials end in the squeeze, which
    ///   uses only +, -, *, / and sqrt. The others compare with the log-pmf computed without
    ///   cancellation (see `ln_poisson_pmf`), accurate to a few 1e-16 at any mean. The
    ///   proposal floor(x + mean) is taken as floor(mean) + floor(x + frac(mean)), so that
    ///   its rounding does not grow with the mean. Above 2^53 the pmf is evaluated at k rounded
    ///   to binary64: a relative error of about 2^-53 sqrt(mean) in the probabilities.
    ///
    /// # Panics
    ///
    /// If `mean` is NaN or outside [0, 2^63).
    pub fn poisson(&mut self, mean: f64) -> u64 {
        assert!((0.0..MAX_POISSON_MEAN).contains(&mean), "Poisson mean {mean} is not in [0, 2^63)");
        if mean < 10.0 { self.poisson_inversion(mean) } else { self.poisson_ptrs(mean) }
    }

    /// Poisson by sequential search, for mean < 10.
    fn poisson_inversion(&mut self, mean: f64) -> u64 {
        let p0 = exp(-mean);
        'draw: loop {
            let mut u = self.uniform();
            let mut k = 0u64;
            let mut p = p0;
            while u > p {
                u -= p;
                k += 1;
                // mean / k is off the dependency chain through p: one multiply per step.
                p *= mean / k as f64;
                // p underflows to 0 only if rounding left u above the whole computed mass.
                if p == 0.0 {
                    continue 'draw;
                }
            }
            return k;
        }
    }

    /// Hörmann's PTRS, for 10 <= mean < 2^63.
    fn poisson_ptrs(&mut self, mean: f64) -> u64 {
        let whole = mean as u64; // floor
        let fraction = mean - whole as f64;
        let b = 0.931 + 2.53 * sqrt(mean);
        let a = -0.059 + 0.02483 * b;
        let alpha = 1.1239 + 1.1328 / (b - 3.4);
        let v_r = 0.9277 - 3.6224 / (b - 2.0);
        loop {
            let u = self.uniform() - 0.5;
            let v = self.uniform();
            let us = 0.5 - u.abs();
            // The proposal k = floor((2a/us + b) u + mean + 0.43), rejected below 0.
            let x = (2.0 * a / us + b) * u + fraction + 0.43;
            let Some(k) = whole.checked_add_signed(floor_i64(x)) else { continue };
            if us >= 0.07 && v <= v_r {
                return k;
            }
            if us < 0.013 && v > us {
                continue;
            }
            if ln(v * alpha / (a / (us * us) + b)) <= ln_poisson_pmf(k as f64, mean) {
                return k;
            }
        }
    }

    /// A binomial number of `n` trials of probability `p`, exact in distribution (up to the
    /// rounding of the probabilities computed in binary64).
    ///
    /// With p' = min(p, 1 - p) (and n - B(n, 1 - p) returned when p > 1/2):
    /// - n = 0 or p' = 0: the certain answer, no random numbers used;
    /// - n p' < 10: inversion by sequential search, algorithm BINV of V. Kachitvichyanukul and
    ///   B. W. Schmeiser, "Binomial random variate generation", Comm. ACM 31 (1988) 216-222:
    ///   f(0) = (1 - p')^n, f(x) = f(x-1) ((n+1) s / x - s) with s = p'/(1-p'), for one uniform
    ///   (expected n p' + 1 steps);
    /// - n p' >= 10: BTRS, transformed rejection with squeeze (W. Hörmann, "The generation of
    ///   binomial random variates", J. Statist. Comput. Simul. 46 (1993) 101-110, algorithm
    ///   BTRS; accepting when ln(v alpha / (a/us^2 + b)) <= ln(f(k)/f(m)), with the log that the
    ///   paper's listing omits, as in TensorFlow and CPython). Two uniforms per trial; the log-pmf
    ///   comes from `ln_binomial_pmf`, without cancellation at any n. As for the Poisson
    ///   numbers, the integer part of n p' is added in integer arithmetic.
    ///
    /// # Panics
    ///
    /// If `p` is not in [0, 1] (NaN included).
    pub fn binomial(&mut self, n: u64, p: f64) -> u64 {
        assert!((0.0..=1.0).contains(&p), "binomial probability {p} is not in [0, 1]");
        if p > 0.5 {
            // 1 - p is exact here.
            return n - self.binomial_at_most_half(n, 1.0 - p);
        }
        self.binomial_at_most_half(n, p)
    }

    /// Binomial for p <= 1/2.
    fn binomial_at_most_half(&mut self, n: u64, p: f64) -> u64 {
        if n == 0 || p == 0.0 {
            0
        } else if n as f64 * p < 10.0 {
            self.binomial_inversion(n, p)
        } else {
            self.binomial_btrs(n, p)
        }
    }

    /// BINV of Kachitvichyanukul and Schmeiser, for 0 < p <= 1/2 and n p < 10.
    fn binomial_inversion(&mut self, n: u64, p: f64) -> u64 {
        let s = p / (1.0 - p);
        let a = (n as f64 + 1.0) * s;
        let f0 = exp(n as f64 * ln_1p(-p));
        'draw: loop {
            let mut u = self.uniform();
            let mut x = 0u64;
            let mut f = f0;
            while u > f {
                u -= f;
                x += 1;
                f *= a / x as f64 - s;
                // Past n (or after underflow) only if rounding left u above the computed mass.
                if x > n || f <= 0.0 {
                    continue 'draw;
                }
            }
            return x;
        }
    }

    /// Hörmann's BTRS, for p <= 1/2 and n p >= 10.
    fn binomial_btrs(&mut self, n: u64, p: f64) -> u64 {
        let n_f = n as f64;
        let q = 1.0 - p;
        let spq = sqrt(n_f * p * q);
        let b = 1.15 + 2.53 * spq;
        let a = -0.0873 + 0.0248 * b + 0.01 * p;
        // c = n p + 1/2 of the paper, as whole + fraction + 1/2.
        let whole = (n_f * p) as u64; // floor
        let fraction = n_f * p - whole as f64;
        let alpha = (2.83 + 5.1 / b) * spq;
        let v_r = 0.92 - 4.2 / b;
        let mode = ((n_f + 1.0) * p) as u64; // floor
        // ln f(mode), computed the first time a trial reaches the full test.
        let mut ln_f_mode = None;
        loop {
            let u = self.uniform() - 0.5;
            let v = self.uniform();
            let us = 0.5 - u.abs();
            // The proposal k = floor((2a/us + b) u + c), rejected outside [0, n].
            let x = (2.0 * a / us + b) * u + fraction + 0.5;
            let k = match whole.checked_add_signed(floor_i64(x)) {
                Some(k) if k <= n => k,
                _ => continue,
            };
            if us >= 0.07 && v <= v_r {
                return k;
            }
            let ln_f_mode = *ln_f_mode.get_or_insert_with(|| ln_binomial_pmf(mode, n, p, q));
            if ln(v * alpha / (a / (us * us) + b)) <= ln_binomial_pmf(k, n, p, q) - ln_f_mode {
                return k;
            }
        }
    }
}

/// floor(y) as an integer, for |y| < 2^63 (saturating beyond): `as` truncates toward zero, and
/// the truncation exceeds y exactly when y is negative and not an integer.
#[inline(always)]
fn floor_i64(y: f64) -> i64 {
    let t = y as i64;
    t - i64::from(t as f64 > y)
}

/// The standard normal quantile Phi^-1(p) for p in (0, 1): algorithm AS241 (PPND16) of
/// M. J. Wichura, "The percentage points of the normal distribution", Applied Statistics 37
/// (1988) 477-484, relative accuracy about 1e-16.
///
/// Three rational functions of degree 7/7: in q = p - 1/2 for |q| <= 0.425 (pure arithmetic),
/// else in r = sqrt(-ln min(p, 1-p)), split at r = 5. The coefficients and the order of the
/// operations are those of CPython's `statistics.NormalDist.inv_cdf`, so the two agree bit for
/// bit (tests/rng.rs). Phi^-1(1 - p) = -Phi^-1(p) exactly when 1 - p is exact.
/// p outside (0, 1) gives a NaN or an infinity.
pub fn standard_normal_quantile(p: f64) -> f64 {
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        return polynomial(&AS241_CENTRAL_NUMERATOR, r) * q / polynomial(&AS241_CENTRAL_DENOMINATOR, r);
    }
    let tail = if q <= 0.0 { p } else { 1.0 - p };
    let r = sqrt(-ln(tail));
    let x = if r <= 5.0 {
        let r = r - 1.6;
        polynomial(&AS241_NEAR_NUMERATOR, r) / polynomial(&AS241_NEAR_DENOMINATOR, r)
    } else {
        let r = r - 5.0;
        polynomial(&AS241_FAR_NUMERATOR, r) / polynomial(&AS241_FAR_DENOMINATOR, r)
    };
    if q < 0.0 { -x } else { x }
}

/// c[0] x^7 + c[1] x^6 + ... + c[7] by Horner's rule: ((c[0] x + c[1]) x + c[2]) x + ...
#[inline(always)]
fn polynomial(c: &[f64; 8], x: f64) -> f64 {
    let mut sum = c[0];
    for &ci in &c[1..] {
        sum = sum * x + ci;
    }
    sum
}

// Wichura's coefficients as published (20 digits; the literals round to the nearest binary64),
// highest degree first.
#[allow(clippy::excessive_precision)]
const AS241_CENTRAL_NUMERATOR: [f64; 8] = [
    2.5090809287301226727e+3,
    3.3430575583588128105e+4,
    6.7265770927008700853e+4,
    4.5921953931549871457e+4,
    1.3731693765509461125e+4,
    1.9715909503065514427e+3,
    1.3314166789178437745e+2,
    3.3871328727963666080e+0,
];
#[allow(clippy::excessive_precision)]
const AS241_CENTRAL_DENOMINATOR: [f64; 8] = [
    5.2264952788528545610e+3,
    2.8729085735721942674e+4,
    3.9307895800092710610e+4,
    2.1213794301586595867e+4,
    5.3941960214247511077e+3,
    6.8718700749205790830e+2,
    4.2313330701600911252e+1,
    1.0,
];
#[allow(clippy::excessive_precision)]
const AS241_NEAR_NUMERATOR: [f64; 8] = [
    7.74545014278341407640e-4,
    2.27238449892691845833e-2,
    2.41780725177450611770e-1,
    1.27045825245236838258e+0,
    3.64784832476320460504e+0,
    5.76949722146069140550e+0,
    4.63033784615654529590e+0,
    1.42343711074968357734e+0,
];
#[allow(clippy::excessive_precision)]
const AS241_NEAR_DENOMINATOR: [f64; 8] = [
    1.05075007164441684324e-9,
    5.47593808499534494600e-4,
    1.51986665636164571966e-2,
    1.48103976427480074590e-1,
    6.89767334985100004550e-1,
    1.67638483018380384940e+0,
    2.05319162663775882187e+0,
    1.0,
];
#[allow(clippy::excessive_precision)]
const AS241_FAR_NUMERATOR: [f64; 8] = [
    2.01033439929228813265e-7,
    2.71155556874348757815e-5,
    1.24266094738807843860e-3,
    2.65321895265761230930e-2,
    2.96560571828504891230e-1,
    1.78482653991729133580e+0,
    5.46378491116411436990e+0,
    6.65790464350110377720e+0,
];
#[allow(clippy::excessive_precision)]
const AS241_FAR_DENOMINATOR: [f64; 8] = [
    2.04426310338993978564e-15,
    1.42151175831644588870e-7,
    1.84631831751005468180e-5,
    7.86869131145613259100e-4,
    1.48753612908506148525e-2,
    1.36929880922735805310e-1,
    5.99832206555887937690e-1,
    1.0,
];

/// ln f(k) for the Poisson pmf f(k) = mean^k e^-mean / k!, mean > 0, k an integer >= 0:
///
/// ln f(k) = -delta(k) - bd0(k, mean) - ln(2 pi k) / 2   (k >= 1),   ln f(0) = -mean,
///
/// the saddle-point form of C. Loader, "Fast and accurate computation of binomial
/// probabilities" (2000), as in R's `dpois_raw`. The direct k ln(mean) - mean - ln k! loses
/// about log10(mean) digits to cancellation (8 at mean 1e7); this form loses none.
fn ln_poisson_pmf(k: f64, mean: f64) -> f64 {
    if k == 0.0 {
        return -mean;
    }
    -stirling_error(k) - bd0(k, mean) - 0.5 * ln(TWO_PI * k)
}

/// ln f(k) for the binomial pmf f(k) = C(n, k) p^k q^(n-k), 0 < p < 1, q = 1 - p, k <= n:
///
/// ln f(k) = delta(n) - delta(k) - delta(n-k) - bd0(k, n p) - bd0(n-k, n q)
///           - ln(2 pi k (n-k) / n) / 2                    (0 < k < n),
///
/// Loader's saddle-point form (R's `dbinom_raw`); f(0) = q^n and f(n) = p^n directly.
fn ln_binomial_pmf(k: u64, n: u64, p: f64, q: f64) -> f64 {
    let n_f = n as f64;
    if k == 0 {
        return n_f * ln_1p(-p);
    }
    if k == n {
        return n_f * ln(p);
    }
    let k_f = k as f64;
    let rest = (n - k) as f64;
    stirling_error(n_f)
        - stirling_error(k_f)
        - stirling_error(rest)
        - bd0(k_f, n_f * p)
        - bd0(rest, n_f * q)
        - 0.5 * ln(TWO_PI * k_f * (rest / n_f))
}

/// delta(n) = ln n! - [(n + 1/2) ln n - n + ln(2 pi) / 2], the error of Stirling's formula, for
/// integers n >= 1: a table for n <= 16 (computed with 50-digit arithmetic), above it the
/// series 1/(12n) - 1/(360n^3) + 1/(1260n^5) - 1/(1680n^7) + 1/(1188n^9), whose truncation
/// error at n = 17 is 6e-17.
fn stirling_error(n: f64) -> f64 {
    /// delta(1), ..., delta(16).
    const TABLE: [f64; 16] = [
        0.08106146679532726,
        0.0413406959554093,
        0.02767792568499834,
        0.020790672103765093,
        0.016644691189821193,
        0.013876128823070748,
        0.01189670994589177,
        0.010411265261972096,
        0.009255462182712733,
        0.00833056343336287,
        0.007573675487951841,
        0.00694284010720953,
        0.006408994188004207,
        0.0059513701127588475,
        0.005554733551962801,
        0.0052076559196096404,
    ];
    if n <= 16.0 {
        return TABLE[n as usize - 1];
    }
    let x2 = 1.0 / (n * n);
    (1.0 / 12.0 - x2 * (1.0 / 360.0 - x2 * (1.0 / 1260.0 - x2 * (1.0 / 1680.0 - x2 * (1.0 / 1188.0))))) / n
}

/// bd0(x, m) = x ln(x/m) + m - x >= 0, for x > 0, m > 0, without the cancellation of the
/// direct form when x is close to m (Loader 2000): with v = (x - m)/(x + m),
///
/// bd0 = (x - m) v + 2 x (v^3/3 + v^5/5 + v^7/7 + ...),
///
/// summed to v^19/19 when |v| < 0.1 (the remainder is below 1e-19 of the sum); the direct form
/// otherwise, where bd0 is not small against its terms.
fn bd0(x: f64, m: f64) -> f64 {
    let d = x - m;
    let s = x + m;
    if d.abs() < 0.1 * s {
        let v = d / s;
        let v2 = v * v;
        let odd = v2
            * (1.0 / 3.0
                + v2 * (1.0 / 5.0
                    + v2 * (1.0 / 7.0
                        + v2 * (1.0 / 9.0
                            + v2 * (1.0 / 11.0
                                + v2 * (1.0 / 13.0 + v2 * (1.0 / 15.0 + v2 * (1.0 / 17.0 + v2 / 19.0))))))));
        d * v + 2.0 * x * v * odd
    } else {
        x * ln(x / m) + m - x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ln k! by summing logarithms: slow and independent of the Stirling machinery.
    fn ln_factorial(k: u64) -> f64 {
        (2..=k).map(|j| (j as f64).ln()).sum()
    }

    /// The integer-to-double conversion of the batch uniforms equals the hardware one on the
    /// edges of both halves and on a sweep of bit patterns.
    #[test]
    fn conversion_below_2_pow_53_is_exact() {
        let edges = [0, 1, 2, 0xffff_ffff, 1 << 32, (1 << 32) + 1, (1 << 52) - 1, 1 << 52, (1 << 53) - 1];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let sweep = (0..100_000).map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            x >> 11
        });
        for m in edges.into_iter().chain(sweep) {
            assert_eq!(exact_below_2_pow_53(m).to_bits(), (m as f64).to_bits(), "{m}");
        }
    }

    #[test]
    fn stirling_error_table_and_series_meet() {
        for n in 1..=40u64 {
            let x = n as f64;
            let direct = ln_factorial(n) - ((x + 0.5) * x.ln() - x + 0.5 * TWO_PI.ln());
            // The direct form loses ~ 1e-16 ln n! to cancellation.
            let tolerance = 4e-16 * ln_factorial(n).max(1.0);
            assert!((stirling_error(x) - direct).abs() < tolerance, "n = {n}");
        }
        // The series at 17 against the 50-digit value of delta(17): the truncation error.
        assert!((stirling_error(17.0) - 0.004901395948434738).abs() < 1e-16);
    }

    #[test]
    fn bd0_agrees_with_the_direct_form_away_from_the_mean() {
        for &(x, m) in &[(10.0, 12.0), (100.0, 90.5), (5e6, 5.2e6), (7.0, 3.1)] {
            let direct = x * f64::ln(x / m) + m - x;
            assert!((bd0(x, m) / direct - 1.0).abs() < 1e-12, "{x} {m}");
        }
        // Near the mean, against the series with terms summed to convergence in another order.
        let (x, m) = (1e7 + 3000.0, 1e7);
        let v: f64 = (x - m) / (x + m);
        let tail: f64 = (1..30).map(|j| v.powi(2 * j + 1) / (2 * j + 1) as f64).sum();
        assert!((bd0(x, m) / ((x - m) * v + 2.0 * x * tail) - 1.0).abs() < 1e-15);
    }

    #[test]
    fn log_pmfs_against_sums_of_logarithms() {
        for &mean in &[10.0, 57.0, 1e4] {
            for k in [0u64, 1, 5, 9, 10, 11, 40, 57, 100, 9_900, 10_000, 10_350] {
                let terms = [k as f64 * f64::ln(mean), -mean, -ln_factorial(k)];
                let direct: f64 = terms.iter().sum();
                // The direct form's own rounding error grows with its terms.
                let tolerance = 1e-14 * terms.iter().map(|t| t.abs()).sum::<f64>() + 1e-14;
                let got = ln_poisson_pmf(k as f64, mean);
                assert!((got - direct).abs() < tolerance, "{mean} {k}: {got} {direct}");
            }
        }
        for &(n, p) in &[(1000u64, 0.5f64), (100_000, 0.117), (40, 0.25)] {
            let q = 1.0 - p;
            for k in [0u64, 1, 10, 11, 20, 39, 40, 500, 11_700, 12_000, 100_000] {
                if k > n {
                    continue;
                }
                let terms = [
                    ln_factorial(n),
                    -ln_factorial(k),
                    -ln_factorial(n - k),
                    k as f64 * p.ln(),
                    (n - k) as f64 * q.ln(),
                ];
                let direct: f64 = terms.iter().sum();
                let tolerance = 1e-14 * terms.iter().map(|t| t.abs()).sum::<f64>() + 1e-14;
                let got = ln_binomial_pmf(k, n, p, q);
                assert!((got - direct).abs() < tolerance, "{n} {p} {k}: {got} {direct}");
            }
        }
    }

    /// The NEON batch gives the lane loops' words and uniforms bit for bit: from every offset
    /// in a block, for lengths around the batch sizes, across the carry into the high half of
    /// the block counter and the wrap at 2^64 blocks.
    #[cfg(all(target_arch = "aarch64", target_feature = "neon", target_endian = "little"))]
    #[test]
    fn neon_batch_matches_the_lane_loops() {
        for first_block in [0u64, 0xffff_fff0, u64::MAX - 40] {
            for offset in 0..4 {
                for len in [0usize, 1, 2, 3, 5, 63, 64, 65, 127, 128, 129, 255, 256, 257, 300, 1001] {
                    let mut neon = Stream::new(0x0123_4567_89ab_cdef, 0xdead_beef_0000_0009);
                    neon.skip_to_block(first_block);
                    (0..offset).for_each(|_| {
                        neon.next_u32();
                    });
                    let mut lanes = neon.clone();
                    let (mut neon_words, mut lane_words) = (vec![0; len], vec![1; len]);
                    neon.fill_words_by::<neon::Neon>(&mut neon_words);
                    lanes.fill_words_by::<Lanes<SMALL_GROUP>>(&mut lane_words);
                    assert_eq!(
                        neon_words, lane_words,
                        "words: block {first_block} offset {offset} len {len}"
                    );
                    let (mut neon_uniforms, mut lane_uniforms) = (vec![0.0; len], vec![1.0; len]);
                    neon.fill_uniform_by::<neon::Neon>(&mut neon_uniforms);
                    lanes.fill_uniform_by::<Lanes<SMALL_GROUP>>(&mut lane_uniforms);
                    let bits = |u: &[f64]| u.iter().map(|u| u.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&neon_uniforms),
                        bits(&lane_uniforms),
                        "block {first_block} offset {offset}"
                    );
                    assert_eq!(neon.next_u32(), lanes.next_u32());
                }
            }
        }
    }

    /// The NEON conversion of word pairs to uniforms equals the lanes' on every length and
    /// finds a zero (a pair whose top 53 bits are 0) wherever it is, the last odd pair included.
    #[cfg(all(target_arch = "aarch64", target_feature = "neon", target_endian = "little"))]
    #[test]
    fn neon_conversion_matches_the_lane_loop() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let words: Vec<u32> = (0..2 * 37)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                (x >> 32) as u32
            })
            .collect();
        // The extremes of the lattice: m = 1 and m = 2^53 - 1.
        let edges = [[1 << 11, 0], [u32::MAX, u32::MAX]];
        for len in 0..=37 {
            for zero_at in (0..len).map(Some).chain([None]) {
                let mut words = words[..2 * len].to_vec();
                for (pair, edge) in words.chunks_exact_mut(2).zip(edges) {
                    pair.copy_from_slice(&edge);
                }
                if let Some(i) = zero_at {
                    // The low 11 bits of the first word are dropped: still m = 0.
                    words[2 * i..2 * i + 2].copy_from_slice(&[0x7ff, 0]);
                }
                let (mut neon, mut lanes) = (vec![0.5; len], vec![0.25; len]);
                let neon_zero = neon::Neon::uniforms(&words, &mut neon);
                let lane_zero = Lanes::<SMALL_GROUP>::uniforms(&words, &mut lanes);
                assert_eq!(
                    (neon_zero, lane_zero),
                    (zero_at.is_some(), zero_at.is_some()),
                    "{len} {zero_at:?}"
                );
                let bits = |u: &[f64]| u.iter().map(|u| u.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&neon), bits(&lanes), "{len} {zero_at:?}");
            }
        }
    }

    /// Seeking forward from a saved position lands on the word the sequential stream reaches.
    #[test]
    fn seek_lands_on_the_sequential_word() {
        for first_block in [0u64, 5, u64::MAX - 1] {
            for offset in 0..4 {
                for words in 0..11 {
                    let mut sequential = Stream::new(3, 4);
                    sequential.skip_to_block(first_block);
                    (0..offset).for_each(|_| {
                        sequential.next_u32();
                    });
                    let saved = (sequential.next_block, sequential.used);
                    let mut seeking = sequential.clone();
                    (0..words).for_each(|_| {
                        sequential.next_u32();
                    });
                    seeking.seek_words_after(saved, words);
                    assert_eq!(seeking.next_u32(), sequential.next_u32(), "{first_block} {offset} {words}");
                }
            }
        }
    }
}

//! Philox4x32-10 and its distributions (crkernels::rng): Random123's known-answer vectors, the
//! documented stream layout, a pure-Python reference, reproducibility across streams, and
//! statistical tests with fixed seeds (Kolmogorov-Smirnov, moments, chi-square against pmfs
//! computed here by recursion in log space).
//!
//! Every statistical test draws from fixed (seed, stream) pairs chosen once, so none is flaky;
//! each asserts a p-value above 1e-3 or a moment within 5 standard errors.

use crkernels::rng::{Philox4x32, Stream, standard_normal_quantile, uniform_from_word};

mod isa_support;

/// The seed of every statistical test; each test uses its own stream numbers.
const SEED: u64 = 0x5eed_2026_0611;

// ---------------------------------------------------------------------------------------------
// Statistics used by the tests, written here from their textbook definitions.

/// ln Gamma(a) for a = 1/2, 1, 3/2, 2, ...: the recursion Gamma(a + 1) = a Gamma(a) from
/// Gamma(1) = 1 or Gamma(1/2) = sqrt(pi).
fn ln_gamma_half_integer(a: f64) -> f64 {
    assert!(a > 0.0 && (2.0 * a).fract() == 0.0);
    let (mut x, mut sum) = if a.fract() == 0.0 { (1.0, 0.0) } else { (0.5, 0.5 * std::f64::consts::PI.ln()) };
    while x < a {
        sum += x.ln();
        x += 1.0;
    }
    sum
}

/// The regularised upper incomplete gamma function Q(a, x), a a multiple of 1/2: the series of
/// P for x < a + 1, else Legendre's continued fraction by the modified Lentz method (Numerical
/// Recipes, 3rd ed., section 6.2).
fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let prefactor = (-x + a * x.ln() - ln_gamma_half_integer(a)).exp();
    if x < a + 1.0 {
        let (mut term, mut sum, mut ap) = (1.0 / a, 1.0 / a, a);
        while term.abs() > 1e-17 * sum.abs() {
            ap += 1.0;
            term *= x / ap;
            sum += term;
        }
        1.0 - prefactor * sum
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        prefactor * h
    }
}

/// The standard normal CDF, Phi(x) = erfc(-x/sqrt 2)/2 with erfc(z) = Q(1/2, z^2) for z >= 0.
fn normal_cdf(x: f64) -> f64 {
    let tail = 0.5 * gamma_q(0.5, 0.5 * x * x);
    if x < 0.0 { tail } else { 1.0 - tail }
}

/// The chi-square survival function: P(chi2_dof > statistic) = Q(dof/2, statistic/2).
fn chi_square_p_value(statistic: f64, dof: usize) -> f64 {
    gamma_q(0.5 * dof as f64, 0.5 * statistic)
}

/// The Kolmogorov-Smirnov statistic D = sup |F_n - F| of `samples` against the CDF `cdf`, and
/// its asymptotic p-value P(D_n > D) = 2 sum_{j>=1} (-1)^(j-1) exp(-2 j^2 t^2) with Stephens'
/// t = (sqrt n + 0.12 + 0.11/sqrt n) D (Stephens 1970, J. R. Statist. Soc. B 32, 115).
fn kolmogorov_smirnov(mut samples: Vec<f64>, cdf: impl Fn(f64) -> f64) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let n = samples.len() as f64;
    let d = samples
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = cdf(x);
            (f - i as f64 / n).max((i + 1) as f64 / n - f)
        })
        .fold(0.0, f64::max);
    let t = (n.sqrt() + 0.12 + 0.11 / n.sqrt()) * d;
    let p = if t < 0.2 {
        1.0
    } else {
        (1..=100).map(|j| (-1f64).powi(j - 1) * (-2.0 * (j * j) as f64 * t * t).exp()).sum::<f64>() * 2.0
    };
    (d, p.clamp(0.0, 1.0))
}

/// Sample mean and variance (two passes).
fn mean_and_variance(samples: &[f64]) -> (f64, f64) {
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let variance = samples.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, variance)
}

/// Asserts that the sample mean and variance of `samples` are within 5 standard errors of the
/// distribution's mean, variance and fourth central moment mu4:
/// SE(mean)^2 = var/N, SE(s^2)^2 = mu4/N - var^2 (N-3)/(N(N-1)).
fn assert_moments(label: &str, samples: &[f64], mean: f64, variance: f64, mu4: f64) {
    let n = samples.len() as f64;
    let (m, v) = mean_and_variance(samples);
    let se_mean = (variance / n).sqrt();
    let se_variance = (mu4 / n - variance * variance * (n - 3.0) / (n * (n - 1.0))).sqrt();
    println!(
        "{label}: mean {m:.8e} ({:+.2} SE), variance {v:.8e} ({:+.2} SE)",
        (m - mean) / se_mean,
        (v - variance) / se_variance
    );
    assert!((m - mean).abs() <= 5.0 * se_mean, "{label}: mean {m} vs {mean} (SE {se_mean})");
    assert!(
        (v - variance).abs() <= 5.0 * se_variance,
        "{label}: variance {v} vs {variance} (SE {se_variance})"
    );
}

/// Pearson's chi-square of integer `samples` against `pmf[k]`, k = 0, 1, ...: consecutive
/// values are merged into bins of expected count >= 20, the last bin takes everything above.
/// Returns (statistic, degrees of freedom, p-value).
fn chi_square(samples: &[u64], pmf: &[f64]) -> (f64, usize, f64) {
    let n = samples.len() as f64;
    let mut observed = vec![0u64; pmf.len() + 1];
    for &k in samples {
        observed[(k as usize).min(pmf.len())] += 1;
    }
    let mut bins: Vec<(f64, f64)> = Vec::new();
    let (mut expected_so_far, mut bin_expected, mut bin_observed) = (0.0, 0.0, 0.0);
    for (k, &p) in pmf.iter().enumerate() {
        bin_expected += n * p;
        bin_observed += observed[k] as f64;
        if bin_expected >= 20.0 && n - expected_so_far - bin_expected >= 20.0 {
            bins.push((bin_observed, bin_expected));
            expected_so_far += bin_expected;
            (bin_expected, bin_observed) = (0.0, 0.0);
        }
    }
    bins.push((bin_observed + observed[pmf.len()] as f64, n - expected_so_far));
    let statistic = bins.iter().map(|(o, e)| (o - e) * (o - e) / e).sum();
    let dof = bins.len() - 1;
    (statistic, dof, chi_square_p_value(statistic, dof))
}

/// Poisson pmf for k = 0..=k_max by ln f(k) = ln f(k-1) + ln(mean) - ln k from ln f(0) = -mean.
fn poisson_pmf(mean: f64, k_max: usize) -> Vec<f64> {
    let mut ln_f = -mean;
    let mut pmf = vec![ln_f.exp()];
    for k in 1..=k_max {
        ln_f += mean.ln() - (k as f64).ln();
        pmf.push(ln_f.exp());
    }
    pmf
}

/// Binomial pmf for k = 0..=min(n, k_max) by ln f(k) = ln f(k-1) + ln((n-k+1)/k) + ln(p/(1-p))
/// from ln f(0) = n ln(1-p).
fn binomial_pmf(n: u64, p: f64, k_max: usize) -> Vec<f64> {
    let mut ln_f = n as f64 * (-p).ln_1p();
    let mut pmf = vec![ln_f.exp()];
    for k in 1..=(k_max as u64).min(n) {
        ln_f += ((n - k + 1) as f64 / k as f64).ln() + (p / (1.0 - p)).ln();
        pmf.push(ln_f.exp());
    }
    pmf
}

// ---------------------------------------------------------------------------------------------
// The generator and the stream layout.

/// Philox4x32-10 known-answer vectors from Random123 (counter, key, expected): the three of
/// tests/kat_vectors, then eight of examples/kat_vectors (as mirrored in
/// github.com/girving/random123-manual).
const KNOWN_ANSWERS: [([u32; 4], [u32; 2], [u32; 4]); 11] = [
    ([0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]),
    ([u32::MAX; 4], [u32::MAX; 2], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]),
    (
        [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
        [0xa4093822, 0x299f31d0],
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
    ),
    ([1, 0, 0, 0], [1, 0], [0xac08141b, 0xdfc5ccbe, 0x79c07a47, 0xa7f66093]),
    ([0, 0, 0, 0x80000000], [1, 0], [0xdde26e4e, 0x17666f3b, 0xfc1f5b3a, 0x83ac805d]),
    (
        [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
        [1, 0],
        [0x38527b8f, 0xfad9a48c, 0x20e675c0, 0xf2fea26a],
    ),
    (
        [0xa4093822, 0x299f31d0, 0x082efa98, 0xec4e6c89],
        [0, 1],
        [0x1c28fa3f, 0x8c5bf977, 0xbb989783, 0x0c1a3737],
    ),
    ([0, 0xffffffff, 0, 0], [0, 0xffffffff], [0x5f9c47aa, 0x19861d86, 0xff2be81d, 0x4c7db17e]),
    (
        [0x452821e6, 0x38d01377, 0xbe5466cf, 0x34e90c6c],
        [0, 0xffffffff],
        [0x72ce44b3, 0xb44f9b78, 0x49af0267, 0x726813ac],
    ),
    ([0, 0, 0x80000000, 0], [0, 0x80000000], [0xae56ca02, 0x7609ba67, 0x25abd7df, 0x46ce39a3]),
    (
        [0x452821e6, 0x38d01377, 0xbe5466cf, 0x34e90c6c],
        [0, 0x80000000],
        [0x94ca5566, 0x14924b2f, 0x28214292, 0x59faeaee],
    ),
];

#[test]
fn philox_matches_random123_known_answers() {
    for (counter, key, expected) in KNOWN_ANSWERS {
        assert_eq!(Philox4x32::new(key).block(counter), expected, "counter {counter:08x?}, key {key:08x?}");
    }
}

#[test]
fn stream_words_are_the_documented_philox_blocks() {
    for (seed, stream) in
        [(0u64, 0u64), (0x0123_4567_89ab_cdef, 3), (7, 0xfedc_ba98_7654_3210), (u64::MAX, u64::MAX)]
    {
        let philox = Philox4x32::new([seed as u32, (seed >> 32) as u32]);
        let block = |b: u64| philox.block([b as u32, (b >> 32) as u32, stream as u32, (stream >> 32) as u32]);
        let mut s = Stream::new(seed, stream);
        for b in 0..3 {
            for word in block(b) {
                assert_eq!(s.next_u32(), word);
            }
        }
        // Far into the stream, where the block index has a high half.
        let far = (1u64 << 40) + 5;
        s.skip_to_block(far);
        for b in far..far + 2 {
            for word in block(b) {
                assert_eq!(s.next_u32(), word);
            }
        }
    }
    // Seed 0, stream 0 starts with Random123's all-zero known answer.
    assert_eq!(Stream::new(0, 0).next_u32(), 0x6627e8d5);
}

/// The batch paths give the words of the Random123-checked block function, from any word
/// offset, for any length, and across the carry into the high half of the block counter.
#[test]
fn batches_of_words_and_uniforms_match_single_draws() {
    let seed = 0x0123_4567_89ab_cdef;
    let stream = 9;
    let philox = Philox4x32::new([seed as u32, (seed >> 32) as u32]);
    // Word w of the stream (2^66 words: block numbers wrap at 2^64).
    let word_at = |w: u128| {
        let b = (w / 4) as u64;
        philox.block([b as u32, (b >> 32) as u32, stream as u32, (stream >> 32) as u32])[(w % 4) as usize]
    };
    for first_block in [0u64, 0xffff_fffc, u64::MAX - 3] {
        for offset in 0..4u64 {
            for len in [0usize, 1, 3, 31, 32, 33, 70, 257] {
                let mut s = Stream::new(seed, stream);
                s.skip_to_block(first_block);
                (0..offset).for_each(|_| {
                    s.next_u32();
                });
                let mut words = vec![0; len];
                s.fill_words(&mut words);
                let start = u128::from(first_block) * 4 + u128::from(offset);
                for (i, &word) in words.iter().enumerate() {
                    assert_eq!(word, word_at(start + i as u128), "block {first_block} offset {offset}");
                }
                // The stream goes on where the batch ended.
                assert_eq!(s.next_u32(), word_at(start + len as u128));
            }
        }
    }
    for offset in 0..4 {
        for len in [1usize, 5, 64, 65, 200] {
            let mut single = Stream::new(seed, stream);
            (0..offset).for_each(|_| {
                single.next_u32();
            });
            let mut batch = single.clone();
            let expected: Vec<f64> = (0..len).map(|_| single.uniform()).collect();
            let mut uniforms = vec![0.0; len];
            batch.fill_uniform(&mut uniforms);
            assert_eq!(uniforms, expected);
            assert_eq!(batch.next_u32(), single.next_u32());
        }
    }
}

#[test]
fn next_u64_and_uniform_follow_the_documented_mapping() {
    let mut words = Stream::new(SEED, 1);
    let mut wide = Stream::new(SEED, 1);
    let mut uniforms = Stream::new(SEED, 1);
    for _ in 0..1000 {
        let (low, high) = (u64::from(words.next_u32()), u64::from(words.next_u32()));
        let x = low | high << 32;
        assert_eq!(wide.next_u64(), x);
        assert_ne!(x >> 11, 0, "a zero draw would be skipped: this test would need another stream");
        assert_eq!(uniforms.uniform(), (x >> 11) as f64 / 2f64.powi(53));
    }
}

#[test]
fn word_uniforms_are_the_midpoints_of_the_32_bit_lattice() {
    // (w + 1/2) / 2^32, exact: the extremes are 2^-33 and 1 - 2^-33, never 0 or 1.
    assert_eq!(uniform_from_word(0), 2f64.powi(-33));
    assert_eq!(uniform_from_word(u32::MAX), 1.0 - 2f64.powi(-33));
    assert_eq!(uniform_from_word(1 << 31), 0.5 + 2f64.powi(-33));
    // Symmetric about 1/2: u(w) + u(!w) = 1 exactly, so the lattice's mean is exactly 1/2.
    let mut stream = Stream::new(SEED, 2);
    for _ in 0..1000 {
        let w = stream.next_u32();
        assert_eq!(uniform_from_word(w) + uniform_from_word(!w), 1.0);
    }
}

#[test]
fn continuous_draws_consume_two_words() {
    let mut reference = Stream::new(SEED, 2);
    let mut s = Stream::new(SEED, 2);
    for i in 0..300 {
        let _ = match i % 3 {
            0 => s.uniform(),
            1 => s.exponential(),
            _ => s.normal(),
        };
        reference.next_u64();
        // Both streams are now at the same word.
        assert_eq!(s.clone().next_u32(), reference.clone().next_u32());
    }
}

/// The Python reference's values: words and uniforms bit for bit; normals bit for bit in the
/// central region (pure arithmetic); exponentials and normal tails within 2 units in the last
/// place, since they call the platform's log (identical here: both use glibc's).
#[test]
fn matches_the_python_reference() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/philox_reference.txt");
    let text = std::fs::read_to_string(path).expect("tests/data/philox_reference.txt");
    let hex = |s: &str| u64::from_str_radix(s, 16).expect("a hex number");
    let ulps = |a: f64, b: f64| (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs();
    let (mut checked, mut worst_ulps) = (0, 0);
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields[0] == "quantile" {
            let (p, expected) = (f64::from_bits(hex(fields[1])), f64::from_bits(hex(fields[2])));
            let got = standard_normal_quantile(p);
            let allowed = if (p - 0.5).abs() <= 0.425 { 0 } else { 2 };
            assert!(ulps(got, expected) <= allowed, "quantile({p:e}) = {got:e}, Python {expected:e}");
            worst_ulps = worst_ulps.max(ulps(got, expected));
            checked += 1;
            continue;
        }
        let [kind, seed, stream, index, value] = fields[..] else { panic!("bad line {line}") };
        let mut s = Stream::new(seed.parse().unwrap(), stream.parse().unwrap());
        let index: usize = index.parse().unwrap();
        let expected = hex(value);
        match kind {
            "word" => {
                let word = (0..=index).map(|_| s.next_u32()).last().unwrap();
                assert_eq!(u64::from(word), expected, "{line}");
            }
            "uniform" => {
                let u = (0..=index).map(|_| s.uniform()).last().unwrap();
                assert_eq!(u.to_bits(), expected, "{line}");
            }
            "exponential" | "normal" => {
                // The uniform behind the draw tells whether a normal is central.
                let mut behind = s.clone();
                let u = (0..=index).map(|_| behind.uniform()).last().unwrap();
                let draw = if kind == "normal" {
                    (0..=index).map(|_| s.normal()).last().unwrap()
                } else {
                    (0..=index).map(|_| s.exponential()).last().unwrap()
                };
                let central = kind == "normal" && (u - 0.5).abs() <= 0.425;
                let expected = f64::from_bits(expected);
                let allowed = if central { 0 } else { 2 };
                assert!(ulps(draw, expected) <= allowed, "{line}: {draw:e} vs {expected:e}");
                worst_ulps = worst_ulps.max(ulps(draw, expected));
            }
            _ => panic!("unknown kind in {line}"),
        }
        checked += 1;
    }
    println!("{checked} reference values, worst difference {worst_ulps} ulp");
    assert!(checked > 250);
}

// ---------------------------------------------------------------------------------------------
// Reproducibility.

/// Draws a mixture of every distribution from one stream.
fn mixed_draws(s: &mut Stream, count: usize) -> Vec<f64> {
    (0..count)
        .map(|i| match i % 6 {
            0 => s.uniform(),
            1 => s.normal(),
            2 => s.exponential(),
            3 => s.poisson(3.7) as f64,
            4 => s.poisson(1234.5) as f64,
            _ => s.binomial(100_000, 0.3) as f64,
        })
        .collect()
}

#[test]
fn a_stream_does_not_depend_on_other_streams() {
    let alone = mixed_draws(&mut Stream::new(SEED, 42), 600);
    // The same stream, drawn six numbers at a time between draws from many other streams and
    // seeds, as a thread pool would interleave them.
    let mut target = Stream::new(SEED, 42);
    let mut others: Vec<Stream> = (0..16).map(|j| Stream::new(SEED ^ (j % 3), 40 + j)).collect();
    let mut interleaved = Vec::new();
    for slice in 0..100 {
        for (j, other) in others.iter_mut().enumerate() {
            mixed_draws(other, (slice + j) % 7);
        }
        interleaved.extend(mixed_draws(&mut target, 6));
    }
    assert_eq!(alone, interleaved);
    // A clone continues identically; a fresh stream restarts.
    let mut a = Stream::new(SEED, 7);
    mixed_draws(&mut a, 33);
    let mut b = a.clone();
    assert_eq!(mixed_draws(&mut a, 50), mixed_draws(&mut b, 50));
    assert_eq!(mixed_draws(&mut Stream::new(SEED, 7), 20), mixed_draws(&mut Stream::new(SEED, 7), 20));
}

/// Pearson correlation of two equally long samples.
fn correlation(x: &[f64], y: &[f64]) -> f64 {
    let (mx, vx) = mean_and_variance(x);
    let (my, vy) = mean_and_variance(y);
    let covariance = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum::<f64>() / (x.len() as f64 - 1.0);
    covariance / (vx * vy).sqrt()
}

#[test]
fn different_streams_and_seeds_are_uncorrelated() {
    const N: usize = 200_000;
    let uniforms = |seed: u64, stream: u64| {
        let mut s = Stream::new(seed, stream);
        (0..N).map(|_| s.uniform()).collect::<Vec<f64>>()
    };
    let base = uniforms(SEED, 100);
    // Neighbouring stream numbers, a stream differing in its high half, neighbouring seeds, a
    // seed differing in its high half.
    let others = [
        ("stream + 1", uniforms(SEED, 101)),
        ("stream + 2^32", uniforms(SEED, 100 + (1 << 32))),
        ("seed + 1", uniforms(SEED + 1, 100)),
        ("seed + 2^32", uniforms(SEED + (1 << 32), 100)),
    ];
    // Under independence the correlation is ~ N(0, 1/N).
    let bound = 5.0 / (N as f64).sqrt();
    for (label, other) in &others {
        let r = correlation(&base, other);
        println!("{label}: correlation {r:+.2e} (bound {bound:.1e})");
        assert!(r.abs() < bound, "{label}: correlation {r}");
        assert_ne!(base[..4], other[..4]);
    }
    // Within a stream: lag-1 and lag-2 autocorrelation (the two uniforms of a block, and across).
    for lag in 1..=2 {
        let r = correlation(&base[..N - lag], &base[lag..]);
        assert!(r.abs() < bound, "lag {lag}: autocorrelation {r}");
    }
}

// ---------------------------------------------------------------------------------------------
// Continuous distributions.

const N_CONTINUOUS: usize = 1_000_000;

fn draw(stream: u64, f: impl Fn(&mut Stream) -> f64) -> Vec<f64> {
    let mut s = Stream::new(SEED, stream);
    (0..N_CONTINUOUS).map(|_| f(&mut s)).collect()
}

#[test]
fn uniform_is_in_the_open_interval_and_uniform() {
    let u = draw(10, Stream::uniform);
    let (min, max) = u.iter().fold((1.0f64, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    assert!(min > 0.0 && max < 1.0, "min {min:e}, max {max}");
    assert_moments("uniform", &u, 0.5, 1.0 / 12.0, 1.0 / 80.0);
    let (d, p) = kolmogorov_smirnov(u, |x| x);
    println!("uniform: KS D = {d:.3e}, p = {p:.3}");
    assert!(p > 1e-3, "uniform: KS D = {d}, p = {p}");
}

#[test]
fn exponential_matches_its_distribution() {
    let x = draw(11, Stream::exponential);
    assert!(x.iter().all(|&x| x > 0.0 && x <= 53.0 * std::f64::consts::LN_2));
    assert_moments("exponential", &x, 1.0, 1.0, 9.0);
    let (d, p) = kolmogorov_smirnov(x, |x| -(-x).exp_m1());
    println!("exponential: KS D = {d:.3e}, p = {p:.3}");
    assert!(p > 1e-3, "exponential: KS D = {d}, p = {p}");
}

#[test]
fn normal_matches_its_distribution() {
    let z = draw(12, Stream::normal);
    assert_moments("normal", &z, 0.0, 1.0, 3.0);
    // The tails: |z| > 3 has probability 2 Phi(-3) = 2.6998e-3, binomial counting error.
    let tail = z.iter().filter(|z| z.abs() > 3.0).count() as f64;
    let expected = N_CONTINUOUS as f64 * 2.0 * normal_cdf(-3.0);
    assert!((tail - expected).abs() < 5.0 * expected.sqrt(), "{tail} beyond 3 sigma, expected {expected}");
    let (d, p) = kolmogorov_smirnov(z, normal_cdf);
    println!("normal: KS D = {d:.3e}, p = {p:.3}");
    assert!(p > 1e-3, "normal: KS D = {d}, p = {p}");
}

/// Phi(Phi^-1(p)) = p, with Phi computed here from the incomplete gamma function, from p = 1e-300
/// to 1/2; and Phi^-1(1 - p) = -Phi^-1(p) where 1 - p is exact.
#[test]
fn standard_normal_quantile_inverts_the_normal_cdf() {
    let mut worst: f64 = 0.0;
    let mut p = 1e-300;
    while p < 0.5 {
        let x = standard_normal_quantile(p);
        // A relative error e in x is an error of about x phi(x)/Phi(x) e ~ max(1, x^2) e in p.
        let error = (normal_cdf(x) / p - 1.0).abs() / x.abs().powi(2).max(1.0);
        worst = worst.max(error);
        assert!(error < 1e-14, "p = {p:e}: x = {x}, Phi(x) = {:e}", normal_cdf(x));
        p *= 1.37;
    }
    println!("quantile: worst relative error in p / max(1, x^2) = {worst:.2e}");
    for k in 1..=20 {
        let p = k as f64 / 64.0;
        assert_eq!(standard_normal_quantile(1.0 - p), -standard_normal_quantile(p));
    }
    assert_eq!(standard_normal_quantile(0.5), 0.0);
}

// ---------------------------------------------------------------------------------------------
// Discrete distributions.

const N_DISCRETE: usize = 200_000;

#[test]
fn poisson_matches_its_distribution() {
    for (i, mean) in [0.3, 4.0, 9.9, 10.0, 57.0, 1e4, 1e7].into_iter().enumerate() {
        let mut s = Stream::new(SEED, 20 + i as u64);
        let k: Vec<u64> = (0..N_DISCRETE).map(|_| s.poisson(mean)).collect();
        let x: Vec<f64> = k.iter().map(|&k| k as f64).collect();
        assert_moments(&format!("poisson({mean})"), &x, mean, mean, mean * (1.0 + 3.0 * mean));
        if mean <= 1e4 {
            let k_max = (mean + 15.0 * mean.sqrt() + 30.0) as usize;
            let (statistic, dof, p) = chi_square(&k, &poisson_pmf(mean, k_max));
            println!("poisson({mean}): chi2 = {statistic:.1} for {dof} dof, p = {p:.3}");
            assert!(p > 1e-3, "poisson({mean}): chi2 = {statistic} for {dof} dof, p = {p}");
        }
    }
}

/// Means far beyond the chi-square tests: the moments still hold (the acceptance test would
/// lose its accuracy here if it cancelled large terms).
#[test]
fn poisson_at_huge_means() {
    for (i, mean) in [1e12, 3e15, 4e18].into_iter().enumerate() {
        let mut s = Stream::new(SEED, 30 + i as u64);
        let x: Vec<f64> = (0..50_000).map(|_| s.poisson(mean) as f64).collect();
        assert_moments(&format!("poisson({mean:e})"), &x, mean, mean, mean * (1.0 + 3.0 * mean));
    }
}

#[test]
fn binomial_matches_its_distribution() {
    let cases: [(u64, f64); 8] = [
        (10, 0.3),
        (1000, 0.5),
        (100_000, 0.117),
        (1_000_000, 1e-5),
        (50, 0.97),
        (0, 0.5),
        (7, 0.0),
        (7, 1.0),
    ];
    for (i, (n, p)) in cases.into_iter().enumerate() {
        let mut s = Stream::new(SEED, 40 + i as u64);
        let k: Vec<u64> = (0..N_DISCRETE).map(|_| s.binomial(n, p)).collect();
        let label = format!("binomial({n}, {p})");
        let (mean, variance) = (n as f64 * p, n as f64 * p * (1.0 - p));
        if variance == 0.0 {
            assert!(k.iter().all(|&k| k as f64 == mean), "{label}");
            continue;
        }
        let mu4 = variance * (1.0 + 3.0 * (n as f64 - 2.0) * p * (1.0 - p));
        let x: Vec<f64> = k.iter().map(|&k| k as f64).collect();
        assert_moments(&label, &x, mean, variance, mu4);
        assert!(k.iter().all(|&k| k <= n), "{label}");
        let k_max = (mean + 15.0 * variance.sqrt() + 30.0) as usize;
        let (statistic, dof, p_value) = chi_square(&k, &binomial_pmf(n, p, k_max));
        println!("{label}: chi2 = {statistic:.1} for {dof} dof, p = {p_value:.3}");
        assert!(p_value > 1e-3, "{label}: chi2 = {statistic} for {dof} dof, p = {p_value}");
    }
}

#[test]
fn binomial_at_huge_n() {
    for (i, (n, p)) in [(1u64 << 40, 0.3), (1 << 50, 1e-9), (1 << 52, 0.75)].into_iter().enumerate() {
        let mut s = Stream::new(SEED, 50 + i as u64);
        let x: Vec<f64> = (0..50_000).map(|_| s.binomial(n, p) as f64).collect();
        let (mean, variance) = (n as f64 * p, n as f64 * p * (1.0 - p));
        let mu4 = variance * (1.0 + 3.0 * (n as f64 - 2.0) * p * (1.0 - p));
        assert_moments(&format!("binomial({n}, {p})"), &x, mean, variance, mu4);
    }
}

#[test]
fn degenerate_parameters_and_consumption() {
    let mut s = Stream::new(SEED, 60);
    let mut reference = s.clone();
    // Certain outcomes use no random numbers.
    assert_eq!(s.binomial(0, 0.5), 0);
    assert_eq!(s.binomial(7, 0.0), 0);
    assert_eq!(s.binomial(7, 1.0), 7);
    assert_eq!(s.binomial(u64::MAX, 1.0), u64::MAX);
    assert_eq!(s.next_u32(), reference.next_u32());
    // Poisson of mean 0 is 0 and, like every mean below 10, takes one uniform.
    assert_eq!(s.poisson(0.0), 0);
    assert_eq!(s.poisson(1e-300), 0);
    reference.uniform();
    reference.uniform();
    for mean in [0.5, 3.0, 9.99] {
        s.poisson(mean);
        reference.uniform();
    }
    // So does a binomial of n p < 10.
    s.binomial(20, 0.4);
    reference.uniform();
    assert_eq!(s.next_u32(), reference.next_u32());
}

#[test]
#[should_panic(expected = "Poisson mean")]
fn poisson_refuses_a_negative_mean() {
    Stream::new(SEED, 0).poisson(-1.0);
}

#[test]
#[should_panic(expected = "Poisson mean")]
fn poisson_refuses_nan() {
    Stream::new(SEED, 0).poisson(f64::NAN);
}

#[test]
#[should_panic(expected = "Poisson mean")]
fn poisson_refuses_a_mean_beyond_u64_counts() {
    Stream::new(SEED, 0).poisson(1e19);
}

#[test]
#[should_panic(expected = "binomial probability")]
fn binomial_refuses_a_probability_above_one() {
    Stream::new(SEED, 0).binomial(10, 1.5);
}

/// The equivalence and accuracy tests above, again under every instruction set this CPU has
/// (`CRKERNELS_ISA`, one child process each).
#[test]
fn equivalence_tests_pass_under_every_instruction_set() {
    isa_support::rerun_under_every_isa(&[
        "batches_of_words_and_uniforms_match_single_draws",
        "matches_the_python_reference",
        "uniform_is_in_the_open_interval_and_uniform",
    ]);
}

#[test]
fn the_selected_set_is_the_requested_one() {
    isa_support::assert_selected_set_is_requested();
}

//! The shape every batch kernel shares: check all inputs first (an error names the first bad
//! element and nothing is written), then compute.

use crate::error::{Error, Result, invalid};

/// Checks that two arrays of a batch call have the same length.
pub(crate) fn check_lengths(a_name: &str, a: usize, b_name: &str, b: usize) -> Result<()> {
    if a == b { Ok(()) } else { Err(invalid!("{a_name} and {b_name} arrays differ in length ({a} and {b})")) }
}

/// Prefixes an error's message with the batch index it concerns ("what element i: ...").
fn at_index(err: Error, what: &str, index: usize) -> Error {
    let with_index = |m: &str| {
        if what.is_empty() {
            alloc::format!("element {index}: {m}")
        } else {
            alloc::format!("{what} element {index}: {m}")
        }
    };
    match err {
        Error::InvalidArgument(m) => Error::InvalidArgument(with_index(&m)),
        Error::OutOfDomain(m) => Error::OutOfDomain(with_index(&m)),
        other => other,
    }
}

/// out[i] = kernel(input[i]) once `check` has accepted every input.
pub(crate) fn map_checked(
    input: &[f64],
    out: &mut [f64],
    check: impl Fn(f64) -> Result<()>,
    kernel: impl Fn(f64) -> f64,
) -> Result<()> {
    check_lengths("input", input.len(), "output", out.len())?;
    for (i, &x) in input.iter().enumerate() {
        check(x).map_err(|err| at_index(err, "", i))?;
    }
    for (o, &x) in out.iter_mut().zip(input) {
        *o = kernel(x);
    }
    Ok(())
}

/// out[i] = kernel(a[i], b[i]) once `check` has accepted every pair.
pub(crate) fn map2_checked(
    (a_name, a): (&str, &[f64]),
    (b_name, b): (&str, &[f64]),
    out: &mut [f64],
    check: impl Fn(f64, f64) -> Result<()>,
    kernel: impl Fn(f64, f64) -> f64,
) -> Result<()> {
    check_lengths(a_name, a.len(), b_name, b.len())?;
    check_lengths(a_name, a.len(), "output", out.len())?;
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        check(x, y).map_err(|err| at_index(err, "", i))?;
    }
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = kernel(x, y);
    }
    Ok(())
}

/// Checks every value of an array; the error names the array and the first bad element.
pub(crate) fn check_each(what: &str, values: &[f64], check: impl Fn(f64) -> Result<()>) -> Result<()> {
    for (i, &v) in values.iter().enumerate() {
        check(v).map_err(|err| at_index(err, what, i))?;
    }
    Ok(())
}

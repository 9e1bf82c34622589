//! Scalars (elements of Fr, the BN254 scalar field) as buffers of 32-byte words, and batch
//! inversion.
//!
//! **Encoding.** A scalar is one 32-byte *little-endian* word holding the canonical
//! representative `x` in `[0, R)`; a vector of `n` scalars is `32 n` bytes, word `i` at byte
//! offset `32 i`. Little-endian so a word is the four `u64` limbs of arkworks' `BigInt<4>`
//! in order, and so a NumPy `(n, 4)` `uint64` array (limb 0 = the value of a small column)
//! is a valid buffer as it stands. Words `>= R` are rejected (`NonCanonical`), never reduced.
//! This is the in-memory format of the native core only; the transcript and the proof keep
//! EVM words (big-endian).
//!
//! Small unsigned values (columns of flags, limbs, counts) may also cross as 8-byte
//! little-endian `u64` words (`decode_u64s`).

use ark_bn254::Fr;
use ark_ff::{BigInt, PrimeField, Zero};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rayon::prelude::*;

use crate::buffers::{self, new_bytes};
use crate::error::{Error, Result};
use crate::pool;

/// Bytes per scalar word.
pub const SCALAR_BYTES: usize = 32;
/// Bytes per small (`u64`) word.
pub const U64_BYTES: usize = 8;

/// The canonical integer of a scalar, as arkworks' MSM consumes it.
pub type ScalarInt = BigInt<4>;

fn limb(bytes: &[u8]) -> u64 {
    let mut le = [0u8; 8];
    le.copy_from_slice(bytes);
    u64::from_le_bytes(le)
}

/// The integer of one 32-byte little-endian word (not checked against `R`).
pub fn word_to_int(word: &[u8]) -> ScalarInt {
    BigInt::new([
        limb(&word[0..8]),
        limb(&word[8..16]),
        limb(&word[16..24]),
        limb(&word[24..32]),
    ])
}

/// Write an integer as one 32-byte little-endian word.
pub fn int_to_word(x: &ScalarInt, word: &mut [u8]) {
    for (chunk, l) in word.chunks_exact_mut(U64_BYTES).zip(x.0.iter()) {
        chunk.copy_from_slice(&l.to_le_bytes());
    }
}

fn check_words(bytes: &[u8], width: usize, what: &str) -> Result<usize> {
    if bytes.len() % width != 0 {
        return Err(Error::Length(format!(
            "{what}: {} bytes is not a whole number of {width}-byte words",
            bytes.len()
        )));
    }
    Ok(bytes.len() / width)
}

fn non_canonical(what: &str, index: usize, value: &ScalarInt) -> Error {
    Error::NonCanonical(format!(
        "{what}[{index}] = {value} is not a canonical scalar: it is not below \
         R = {} (scalars are 32-byte little-endian words in [0, R))",
        Fr::MODULUS
    ))
}

/// The canonical integers of a scalar buffer, checked `< R`.
pub fn decode_ints(bytes: &[u8], what: &str) -> Result<Vec<ScalarInt>> {
    check_words(bytes, SCALAR_BYTES, what)?;
    let ints: Vec<ScalarInt> = bytes
        .par_chunks_exact(SCALAR_BYTES)
        .map(word_to_int)
        .collect();
    if let Some(i) = ints.par_iter().position_first(|x| *x >= Fr::MODULUS) {
        return Err(non_canonical(what, i, &ints[i]));
    }
    Ok(ints)
}

/// `decode_ints` on the calling thread (a few words).
pub fn decode_ints_serial(bytes: &[u8], what: &str) -> Result<Vec<ScalarInt>> {
    check_words(bytes, SCALAR_BYTES, what)?;
    let ints: Vec<ScalarInt> = bytes.chunks_exact(SCALAR_BYTES).map(word_to_int).collect();
    if let Some(i) = ints.iter().position(|x| *x >= Fr::MODULUS) {
        return Err(non_canonical(what, i, &ints[i]));
    }
    Ok(ints)
}

/// The field elements of a scalar buffer (each word checked `< R`).
pub fn decode_scalars(bytes: &[u8], what: &str) -> Result<Vec<Fr>> {
    check_words(bytes, SCALAR_BYTES, what)?;
    let xs: Vec<Option<Fr>> = bytes
        .par_chunks_exact(SCALAR_BYTES)
        .map(|w| Fr::from_bigint(word_to_int(w)))
        .collect();
    if let Some(i) = xs.par_iter().position_first(Option::is_none) {
        let value = word_to_int(&bytes[i * SCALAR_BYTES..(i + 1) * SCALAR_BYTES]);
        return Err(non_canonical(what, i, &value));
    }
    Ok(xs.into_iter().flatten().collect())
}

/// One scalar from a buffer of exactly one word.
pub fn decode_scalar(bytes: &[u8], what: &str) -> Result<Fr> {
    if bytes.len() != SCALAR_BYTES {
        return Err(Error::Length(format!(
            "{what}: a scalar is one {SCALAR_BYTES}-byte word, got {} bytes",
            bytes.len()
        )));
    }
    decode_scalars(bytes, what).map(|v| v[0])
}

/// One scalar from a Python buffer argument of exactly one word (`what` names it in errors).
pub fn scalar_arg(arg: &Bound<'_, PyAny>, what: &str) -> PyResult<Fr> {
    let input = buffers::read(arg, what)?;
    Ok(decode_scalar(input.as_slice(), what)?)
}

/// Write field elements as canonical little-endian words (`out.len() == 32 * xs.len()`).
pub fn encode_scalars(xs: &[Fr], out: &mut [u8]) {
    out.par_chunks_exact_mut(SCALAR_BYTES)
        .zip(xs.par_iter())
        .for_each(|(word, x)| int_to_word(&x.into_bigint(), word));
}

/// The values of a buffer of 8-byte little-endian `u64` words.
pub fn decode_u64s(bytes: &[u8], what: &str) -> Result<Vec<u64>> {
    check_words(bytes, U64_BYTES, what)?;
    Ok(bytes.par_chunks_exact(U64_BYTES).map(limb).collect())
}

/// `[1/x for x in xs]` in place, by Montgomery's trick (arkworks' `batch_inversion`, one
/// field inversion in all, parallel by chunks). Refuses any zero, naming the first one.
pub fn batch_inverse_in_place(xs: &mut [Fr], what: &str) -> Result<()> {
    if let Some(i) = xs.par_iter().position_first(|x| x.is_zero()) {
        return Err(Error::ZeroInverse(format!(
            "{what}[{i}] is zero in Fr: it has no inverse"
        )));
    }
    ark_ff::batch_inversion(xs);
    Ok(())
}

/// Run `f` with the GIL released, inside this process's thread pool.
pub fn run<R: Send>(py: Python<'_>, f: impl FnOnce() -> Result<R> + Send) -> PyResult<R> {
    py.detach(|| pool::install(f).and_then(|r| r))
        .map_err(Into::into)
}

/// A new `bytes` holding `xs` as scalar words (encoded in parallel, GIL released).
pub fn scalars_to_bytes<'py>(py: Python<'py>, xs: &[Fr]) -> PyResult<Bound<'py, PyBytes>> {
    let mut failure = None;
    let out = new_bytes(py, xs.len() * SCALAR_BYTES, |out| {
        if let Err(e) = pool::install(|| encode_scalars(xs, out)) {
            failure = Some(e);
        }
    })?;
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(out),
    }
}

/// `batch_inverse(values) -> bytes`: the inverses of a scalar buffer, as a scalar buffer.
/// Raises `ZeroDivisionError` naming the first zero, `ValueError` for a malformed buffer.
#[pyfunction]
pub fn batch_inverse<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let input = buffers::read(values, "values")?;
    let bytes = input.as_slice();
    let xs = run(py, || {
        let mut xs = decode_scalars(bytes, "values")?;
        batch_inverse_in_place(&mut xs, "values")?;
        Ok(xs)
    })?;
    scalars_to_bytes(py, &xs)
}

/// `scalars_check(values) -> int`: the number of words of a scalar buffer, after checking
/// every word is canonical (`ValueError` naming the first that is not).
#[pyfunction]
pub fn scalars_check(py: Python<'_>, values: &Bound<'_, PyAny>) -> PyResult<usize> {
    let input = buffers::read(values, "values")?;
    let bytes = input.as_slice();
    run(py, || decode_ints(bytes, "values").map(|v| v.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::UniformRand;
    use ark_std::rand::{rngs::StdRng, SeedableRng};

    fn encode(xs: &[Fr]) -> Vec<u8> {
        let mut out = vec![0u8; xs.len() * SCALAR_BYTES];
        encode_scalars(xs, &mut out);
        out
    }

    #[test]
    fn words_round_trip_and_are_little_endian() {
        let mut rng = StdRng::seed_from_u64(1);
        let xs: Vec<Fr> = (0..100).map(|_| Fr::rand(&mut rng)).collect();
        assert_eq!(decode_scalars(&encode(&xs), "xs").unwrap(), xs);
        let two = encode(&[Fr::from(2u64)]);
        assert_eq!(two[0], 2);
        assert!(two[1..].iter().all(|b| *b == 0));
    }

    #[test]
    fn r_minus_one_is_accepted_and_r_is_refused() {
        let mut r_minus_one = Fr::MODULUS;
        r_minus_one.0[0] -= 1;
        let mut word = [0u8; 32];
        int_to_word(&r_minus_one, &mut word);
        assert_eq!(decode_scalar(&word, "x").unwrap(), -Fr::from(1u64));
        int_to_word(&Fr::MODULUS, &mut word);
        let mut buf = vec![0u8; 64];
        buf[32..].copy_from_slice(&word);
        match decode_scalars(&buf, "xs") {
            Err(Error::NonCanonical(m)) => assert!(m.contains("xs[1]"), "{m}"),
            other => panic!("expected NonCanonical, got {other:?}"),
        }
        assert!(matches!(
            decode_ints(&buf, "xs"),
            Err(Error::NonCanonical(_))
        ));
    }

    #[test]
    fn ragged_buffers_are_refused() {
        assert!(matches!(
            decode_scalars(&[0u8; 33], "xs"),
            Err(Error::Length(_))
        ));
        assert!(matches!(decode_u64s(&[0u8; 9], "v"), Err(Error::Length(_))));
        assert!(matches!(
            decode_scalar(&[0u8; 64], "z"),
            Err(Error::Length(_))
        ));
    }

    #[test]
    fn batch_inverse_inverts_and_refuses_zero() {
        let mut rng = StdRng::seed_from_u64(2);
        let xs: Vec<Fr> = (0..257).map(|_| Fr::rand(&mut rng)).collect();
        let mut inv = xs.clone();
        batch_inverse_in_place(&mut inv, "xs").unwrap();
        for (x, y) in xs.iter().zip(&inv) {
            assert_eq!(*x * y, Fr::from(1u64));
        }
        let mut with_zero = vec![Fr::from(3u64), Fr::zero(), Fr::zero()];
        match batch_inverse_in_place(&mut with_zero, "xs") {
            Err(Error::ZeroInverse(m)) => assert!(m.contains("xs[1]"), "{m}"),
            other => panic!("expected ZeroInverse, got {other:?}"),
        }
    }
}

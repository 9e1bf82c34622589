//! G1 and G2 points in their EVM encodings (EIP-196, EIP-197), decoded with full checks.
//!
//! * G1: 64 bytes, `x || y`, each a 32-byte **big-endian** word `< P`; `(0, 0)` (64 zero
//!   bytes) is the point at infinity. Decoding checks `y^2 = x^3 + 3`; G1 has cofactor 1, so
//!   a point on the curve is in the order-`R` group.
//! * G2: 128 bytes, `x_im || x_re || y_im || y_re` (EIP-197: the imaginary coefficient
//!   first), each a big-endian word `< P`, `x = x_re + x_im u` in `F_p^2 = F_p[u]/(u^2 + 1)`;
//!   all zeros is infinity. Decoding checks the twist equation `y^2 = x^3 + 3/(9 + u)` *and*
//!   membership of the order-`R` subgroup (arkworks' endomorphism-based test): the twist has
//!   a large cofactor, so "on the curve" is not enough for an untrusted G2 point.

use ark_bn254::{Fq, Fq2, G1Affine, G2Affine};
use ark_ec::AffineRepr;
use ark_ff::{BigInt, PrimeField};
use rayon::prelude::*;

use crate::error::{Error, Result};

/// Bytes of one EVM word.
pub const WORD: usize = 32;
/// Bytes of an encoded G1 point.
pub const G1_BYTES: usize = 2 * WORD;
/// Bytes of an encoded G2 point.
pub const G2_BYTES: usize = 4 * WORD;
/// Below this many points, decoding runs on the calling thread: the verifier's few points
/// cost less than a hand-off to the pool (milliseconds on a loaded machine).
pub const SERIAL_BELOW: usize = 256;

fn be_limb(bytes: &[u8]) -> u64 {
    let mut be = [0u8; 8];
    be.copy_from_slice(bytes);
    u64::from_be_bytes(be)
}

/// A base-field coordinate from one big-endian word, refused unless `< P`.
fn decode_fq(word: &[u8], what: &dyn Fn() -> String) -> Result<Fq> {
    let int = BigInt::new([
        be_limb(&word[24..32]),
        be_limb(&word[16..24]),
        be_limb(&word[8..16]),
        be_limb(&word[0..8]),
    ]);
    Fq::from_bigint(int).ok_or_else(|| {
        Error::NonCanonical(format!(
            "{}: coordinate {int} is not below the base-field modulus P",
            what()
        ))
    })
}

fn encode_fq(x: &Fq, word: &mut [u8]) {
    let int = x.into_bigint();
    for (k, l) in int.0.iter().enumerate() {
        let at = WORD - 8 * (k + 1);
        word[at..at + 8].copy_from_slice(&l.to_be_bytes());
    }
}

/// Decode one G1 point (64 bytes; see the module note).
pub fn decode_g1(bytes: &[u8], what: &dyn Fn() -> String) -> Result<G1Affine> {
    if bytes.iter().all(|b| *b == 0) {
        return Ok(G1Affine::identity());
    }
    let x = decode_fq(&bytes[..WORD], what)?;
    let y = decode_fq(&bytes[WORD..G1_BYTES], what)?;
    let point = G1Affine::new_unchecked(x, y);
    if !point.is_on_curve() {
        return Err(Error::OffCurve(format!(
            "{}: ({x}, {y}) is not on the curve y^2 = x^3 + 3",
            what()
        )));
    }
    Ok(point)
}

/// Decode a buffer of `n` G1 points (`64 n` bytes), in parallel; errors name the first bad
/// point's index.
pub fn decode_g1s(bytes: &[u8], what: &str) -> Result<Vec<G1Affine>> {
    if bytes.len() % G1_BYTES != 0 {
        return Err(Error::Length(format!(
            "{what}: {} bytes is not a whole number of {G1_BYTES}-byte G1 points",
            bytes.len()
        )));
    }
    if bytes.len() < SERIAL_BELOW * G1_BYTES {
        // A handful of points (a proof's commitments): no thread hand-off.
        return bytes
            .chunks_exact(G1_BYTES)
            .enumerate()
            .map(|(i, chunk)| decode_g1(chunk, &|| format!("{what}[{i}]")))
            .collect();
    }
    let decoded: Vec<Result<G1Affine>> = bytes
        .par_chunks_exact(G1_BYTES)
        .enumerate()
        .map(|(i, chunk)| decode_g1(chunk, &|| format!("{what}[{i}]")))
        .collect();
    decoded.into_iter().collect()
}

/// Write one G1 point (infinity as 64 zero bytes).
pub fn encode_g1(point: &G1Affine, out: &mut [u8]) {
    match point.xy() {
        None => out[..G1_BYTES].fill(0),
        Some((x, y)) => {
            encode_fq(&x, &mut out[..WORD]);
            encode_fq(&y, &mut out[WORD..G1_BYTES]);
        }
    }
}

/// The 64-byte encoding of one G1 point.
pub fn g1_to_array(point: &G1Affine) -> [u8; G1_BYTES] {
    let mut out = [0u8; G1_BYTES];
    encode_g1(point, &mut out);
    out
}

/// Write many G1 points (`out.len() == 64 * points.len()`), in parallel.
pub fn encode_g1s(points: &[G1Affine], out: &mut [u8]) {
    out.par_chunks_exact_mut(G1_BYTES)
        .zip(points.par_iter())
        .for_each(|(chunk, p)| encode_g1(p, chunk));
}

/// Decode one G2 point (128 bytes, EIP-197 word order), checking the twist equation and
/// subgroup membership.
pub fn decode_g2(bytes: &[u8], what: &dyn Fn() -> String) -> Result<G2Affine> {
    if bytes.len() != G2_BYTES {
        return Err(Error::Length(format!(
            "{}: a G2 point is {G2_BYTES} bytes, got {}",
            what(),
            bytes.len()
        )));
    }
    if bytes.iter().all(|b| *b == 0) {
        return Ok(G2Affine::identity());
    }
    let x_im = decode_fq(&bytes[0..WORD], what)?;
    let x_re = decode_fq(&bytes[WORD..2 * WORD], what)?;
    let y_im = decode_fq(&bytes[2 * WORD..3 * WORD], what)?;
    let y_re = decode_fq(&bytes[3 * WORD..4 * WORD], what)?;
    let point = G2Affine::new_unchecked(Fq2::new(x_re, x_im), Fq2::new(y_re, y_im));
    if !point.is_on_curve() {
        return Err(Error::OffCurve(format!(
            "{}: not on the twist y^2 = x^3 + 3/(9 + u)",
            what()
        )));
    }
    if !point.is_in_correct_subgroup_assuming_on_curve() {
        return Err(Error::NotInSubgroup(format!(
            "{}: on the twist but not in the order-R subgroup G2",
            what()
        )));
    }
    Ok(point)
}

/// Write one G2 point in EIP-197 word order (infinity as 128 zero bytes).
pub fn encode_g2(point: &G2Affine, out: &mut [u8]) {
    match point.xy() {
        None => out[..G2_BYTES].fill(0),
        Some((x, y)) => {
            encode_fq(&x.c1, &mut out[0..WORD]);
            encode_fq(&x.c0, &mut out[WORD..2 * WORD]);
            encode_fq(&y.c1, &mut out[2 * WORD..3 * WORD]);
            encode_fq(&y.c0, &mut out[3 * WORD..4 * WORD]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_bn254::{G1Projective, G2Projective};
    use ark_ec::short_weierstrass::SWCurveConfig;
    use ark_ec::{CurveGroup, PrimeGroup};
    use ark_ff::{Field, UniformRand};
    use ark_std::rand::{rngs::StdRng, SeedableRng};

    fn name() -> String {
        "p".to_owned()
    }

    #[test]
    fn g1_generator_is_1_2_big_endian() {
        let mut out = [0u8; G1_BYTES];
        encode_g1(&G1Affine::generator(), &mut out);
        assert_eq!(out[31], 1);
        assert_eq!(out[63], 2);
        assert!(out[..31].iter().chain(&out[32..63]).all(|b| *b == 0));
        assert_eq!(decode_g1(&out, &name).unwrap(), G1Affine::generator());
    }

    #[test]
    fn g1_round_trip_infinity_and_rejections() {
        let mut rng = StdRng::seed_from_u64(3);
        let points: Vec<G1Affine> = (0..20)
            .map(|_| G1Projective::rand(&mut rng).into_affine())
            .collect();
        let mut buf = vec![0u8; points.len() * G1_BYTES];
        encode_g1s(&points, &mut buf);
        assert_eq!(decode_g1s(&buf, "pts").unwrap(), points);
        assert!(decode_g1(&[0u8; 64], &name).unwrap().is_zero());
        // (1, 3) is off the curve.
        let mut off = [0u8; 64];
        off[31] = 1;
        off[63] = 3;
        assert!(matches!(decode_g1(&off, &name), Err(Error::OffCurve(_))));
        // x = P is not canonical.
        let mut big = [0u8; 64];
        for (k, l) in Fq::MODULUS.0.iter().enumerate() {
            big[32 - 8 * (k + 1)..32 - 8 * k].copy_from_slice(&l.to_be_bytes());
        }
        big[63] = 2;
        assert!(matches!(
            decode_g1(&big, &name),
            Err(Error::NonCanonical(_))
        ));
        let mut buf2 = buf.clone();
        buf2[5 * 64 + 63] ^= 1;
        match decode_g1s(&buf2, "pts") {
            Err(Error::OffCurve(m)) => assert!(m.contains("pts[5]"), "{m}"),
            other => panic!("expected OffCurve, got {other:?}"),
        }
        assert!(matches!(
            decode_g1s(&buf[..65], "pts"),
            Err(Error::Length(_))
        ));
    }

    #[test]
    fn g2_round_trip_and_subgroup_check() {
        let mut rng = StdRng::seed_from_u64(4);
        let q = G2Projective::rand(&mut rng).into_affine();
        let mut buf = [0u8; G2_BYTES];
        encode_g2(&q, &mut buf);
        assert_eq!(decode_g2(&buf, &name).unwrap(), q);
        assert!(decode_g2(&[0u8; G2_BYTES], &name).unwrap().is_zero());
        // A point on the twist outside G2: find x with x^3 + b' a square, skip the cofactor
        // clearing that `rand` does.
        let b = ark_bn254::g2::Config::COEFF_B;
        let mut x = Fq2::new(Fq::from(1u64), Fq::from(0u64));
        let outside = loop {
            if let Some(y) = (x.square() * x + b).sqrt() {
                let p = G2Affine::new_unchecked(x, y);
                if !p.is_in_correct_subgroup_assuming_on_curve() {
                    break p;
                }
            }
            x += Fq2::ONE;
        };
        encode_g2(&outside, &mut buf);
        assert!(matches!(
            decode_g2(&buf, &name),
            Err(Error::NotInSubgroup(_))
        ));
        buf[127] ^= 1;
        assert!(matches!(decode_g2(&buf, &name), Err(Error::OffCurve(_))));
        assert!(G2Projective::generator().into_affine().is_on_curve());
    }
}

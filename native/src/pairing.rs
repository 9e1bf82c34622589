//! The BN254 pairing-product check of the EIP-197 precompile: `prod_i e(A_i, B_i) == 1`.
//!
//! arkworks' `Bn254::multi_pairing` (optimal ate: one multi-Miller loop over all pairs and
//! one final exponentiation). G1 points are decoded with the curve check, G2 points with the
//! twist *and* subgroup checks (`points::decode_g2`): they come from proofs, keys and files.
//! Pairs with a point at infinity contribute 1, as in the precompile.

use ark_bn254::{Bn254, G1Affine, G2Affine};
use ark_ec::pairing::Pairing;
use ark_ff::Zero;
use pyo3::prelude::*;

use crate::buffers;
use crate::error::{Error, Result};
use crate::points::{decode_g1s, decode_g2, G1_BYTES, G2_BYTES};
use crate::scalars::run;

/// Decode `k` G1 points (`64 k` bytes) and `k` G2 points (`128 k` bytes, EIP-197 order).
pub fn decode_pairs(g1: &[u8], g2: &[u8]) -> Result<(Vec<G1Affine>, Vec<G2Affine>)> {
    let a = decode_g1s(g1, "g1")?;
    if g2.len() % G2_BYTES != 0 {
        return Err(Error::Length(format!(
            "g2: {} bytes is not a whole number of {G2_BYTES}-byte G2 points",
            g2.len()
        )));
    }
    let b = g2
        .chunks_exact(G2_BYTES)
        .enumerate()
        .map(|(i, chunk)| decode_g2(chunk, &|| format!("g2[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    if a.len() != b.len() {
        return Err(Error::Length(format!(
            "{} G1 points ({} bytes) but {} G2 points: one of each per pair",
            a.len(),
            a.len() * G1_BYTES,
            b.len()
        )));
    }
    Ok((a, b))
}

/// `prod_i e(a_i, b_i) == 1` in GT (true for no pairs).
pub fn product_is_one(a: &[G1Affine], b: &[G2Affine]) -> bool {
    Bn254::multi_pairing(a, b).is_zero()
}

/// `pairing_product_is_one(g1, g2) -> bool`: `g1` holds `k` EIP-196 points (`64 k` bytes),
/// `g2` `k` EIP-197 points (`128 k` bytes); `ValueError` for a malformed, off-curve or
/// out-of-subgroup point.
#[pyfunction]
pub fn pairing_product_is_one(
    py: Python<'_>,
    g1: &Bound<'_, PyAny>,
    g2: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let g1_input = buffers::read(g1, "g1")?;
    let g2_input = buffers::read(g2, "g2")?;
    let (g1_bytes, g2_bytes) = (g1_input.as_slice(), g2_input.as_slice());
    run(py, || {
        let (a, b) = decode_pairs(g1_bytes, g2_bytes)?;
        Ok(product_is_one(&a, &b))
    })
}

/// `g2_check(point) -> None`: decode one 128-byte EIP-197 G2 point with every check, raising
/// `ValueError` if it is malformed, off the twist or outside the order-`R` subgroup.
#[pyfunction]
pub fn g2_check(point: &Bound<'_, PyAny>) -> PyResult<()> {
    let input = buffers::read(point, "point")?;
    let _point = decode_g2(input.as_slice(), &|| "point".to_owned())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::points::{encode_g1, encode_g2};
    use ark_bn254::{Fr, G1Projective, G2Projective};
    use ark_ec::{CurveGroup, PrimeGroup};
    use ark_ff::UniformRand;
    use ark_std::rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn bilinearity_passes_and_a_wrong_scalar_fails() {
        let mut rng = StdRng::seed_from_u64(11);
        let (x, y) = (Fr::rand(&mut rng), Fr::rand(&mut rng));
        let g1 = G1Projective::generator();
        let g2 = G2Projective::generator();
        // e(x G1, y G2) * e(-(x y) G1, G2) = 1
        let a = vec![(g1 * x).into_affine(), (-(g1 * (x * y))).into_affine()];
        let b = vec![(g2 * y).into_affine(), g2.into_affine()];
        assert!(product_is_one(&a, &b));
        let wrong = vec![a[0], (-(g1 * (x * y + Fr::from(1u64)))).into_affine()];
        assert!(!product_is_one(&wrong, &b));
        assert!(product_is_one(&[], &[]));
        // Through the byte encodings.
        let mut g1_bytes = vec![0u8; 2 * G1_BYTES];
        let mut g2_bytes = vec![0u8; 2 * G2_BYTES];
        for i in 0..2 {
            encode_g1(&a[i], &mut g1_bytes[i * G1_BYTES..]);
            encode_g2(&b[i], &mut g2_bytes[i * G2_BYTES..]);
        }
        let (da, db) = decode_pairs(&g1_bytes, &g2_bytes).unwrap();
        assert!(product_is_one(&da, &db));
        assert!(matches!(
            decode_pairs(&g1_bytes, &g2_bytes[..G2_BYTES]),
            Err(Error::Length(_))
        ));
        // Infinity in a pair contributes 1.
        let with_infinity = vec![G1Affine::identity(), a[0], a[1]];
        let b3 = vec![b[0], b[0], b[1]];
        assert!(product_is_one(&with_infinity, &b3));
    }
}

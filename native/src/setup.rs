//! SRS set-up at scale: development powers of tau, the Lagrange basis from a known tau, and
//! the G1 points of snarkjs `.ptau` files.
//!
//! * `g1_powers_of_tau(tau, n)`: `[tau^i]_1` for `i < n` (powers in parallel chunks, then
//!   arkworks' fixed-base `batch_mul` and one batch normalisation);
//! * `g1_lagrange_from_tau(tau, k)`: `[L_i(tau)]_1` for `i < N = 2^k` with
//!   `L_i(tau) = omega^i (tau^N - 1) / (N (tau - omega^i))` (one batch inversion), or the
//!   unit vector when `tau` lies in `H`: `N` fixed-base multiplications instead of the
//!   `(N/2) log2 N` of the G1 FFT, for a development SRS whose tau is known;
//! * `ptau_g1_points(data)`: G1 points as snarkjs (ffjavascript) stores them, each
//!   coordinate 32 bytes little-endian in Montgomery form `x 2^256 mod P` (arkworks' own
//!   representation of `Fq`), to EIP-196 words, each coordinate checked `< P` and each point
//!   on the curve; all zeros is infinity.

use ark_bn254::{Fq, Fr, G1Affine, G1Projective};
use ark_ec::{PrimeGroup, ScalarMul};
use ark_ff::{BigInt, Field, PrimeField, Zero};
use ark_poly::EvaluationDomain;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rayon::prelude::*;

use crate::buffers::{self, new_bytes};
use crate::column::powers;
use crate::error::{Error, Result};
use crate::ntt::{domain, k_arg};
use crate::points::{encode_g1s, G1_BYTES};
use crate::scalars::{batch_inverse_in_place, decode_scalar, run};

/// `[tau^i]_1` for `i < n`.
pub fn powers_of_tau(tau: Fr, n: usize) -> Vec<G1Affine> {
    G1Projective::generator().batch_mul(&powers(tau, n))
}

/// `[L_i(tau)]_1` for `i < 2^k` (see the module note).
pub fn lagrange_from_tau(tau: Fr, k: u32) -> Result<Vec<G1Affine>> {
    Ok(G1Projective::generator().batch_mul(&lagrange_scalars(tau, k)?))
}

/// The scalars `L_i(tau)`, `i < N = 2^k`: `omega^i (tau^N - 1) / (N (tau - omega^i))`, or
/// the unit vector `[omega^i = tau]` when `tau` lies in `H`.
pub fn lagrange_scalars(tau: Fr, k: u32) -> Result<Vec<Fr>> {
    let dom = domain(k)?;
    let n = dom.size();
    let omegas = powers(dom.group_gen(), n);
    let vanishing = tau.pow([n as u64]) - Fr::ONE;
    let scalars: Vec<Fr> = if vanishing.is_zero() {
        omegas
            .iter()
            .map(|w| if *w == tau { Fr::ONE } else { Fr::zero() })
            .collect()
    } else {
        let size = Fr::from(n as u64);
        let mut d: Vec<Fr> = omegas.par_iter().map(|w| size * (tau - w)).collect();
        batch_inverse_in_place(&mut d, "N (tau - omega^i)")?;
        omegas
            .par_iter()
            .zip(&d)
            .map(|(w, inv)| *w * vanishing * inv)
            .collect()
    };
    Ok(scalars)
}

fn montgomery_coordinate(bytes: &[u8], what: &dyn Fn() -> String) -> Result<Fq> {
    let mut limbs = [0u64; 4];
    for (k, l) in limbs.iter_mut().enumerate() {
        let mut le = [0u8; 8];
        le.copy_from_slice(&bytes[8 * k..8 * k + 8]);
        *l = u64::from_le_bytes(le);
    }
    let repr = BigInt::new(limbs);
    if repr >= Fq::MODULUS {
        return Err(Error::NonCanonical(format!(
            "{}: Montgomery coordinate {repr} is not below P",
            what()
        )));
    }
    Ok(Fq::new_unchecked(repr))
}

/// snarkjs' G1 points (Montgomery, little-endian) to arkworks points, checked.
pub fn decode_ptau_g1s(data: &[u8], what: &str) -> Result<Vec<G1Affine>> {
    if data.len() % G1_BYTES != 0 {
        return Err(Error::Length(format!(
            "{what}: {} bytes is not a whole number of 64-byte G1 points",
            data.len()
        )));
    }
    data.par_chunks_exact(G1_BYTES)
        .enumerate()
        .map(|(i, chunk)| {
            if chunk.iter().all(|b| *b == 0) {
                return Ok(G1Affine::identity());
            }
            let name = || format!("{what}[{i}]");
            let x = montgomery_coordinate(&chunk[..32], &name)?;
            let y = montgomery_coordinate(&chunk[32..], &name)?;
            let p = G1Affine::new_unchecked(x, y);
            if !p.is_on_curve() {
                return Err(Error::OffCurve(format!(
                    "{}: not on the curve y^2 = x^3 + 3",
                    name()
                )));
            }
            Ok(p)
        })
        .collect()
}

fn points_bytes<'py>(py: Python<'py>, points: &[G1Affine]) -> PyResult<Bound<'py, PyBytes>> {
    new_bytes(py, points.len() * G1_BYTES, |out| encode_g1s(points, out))
}

/// `g1_powers_of_tau(tau, n) -> bytes`: `[tau^i]_1`, `i < n`, as `64 n` bytes of EIP-196.
#[pyfunction]
pub fn g1_powers_of_tau<'py>(
    py: Python<'py>,
    tau: &Bound<'py, PyAny>,
    n: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let input = buffers::read(tau, "tau")?;
    let bytes = input.as_slice();
    let points = run(py, || Ok(powers_of_tau(decode_scalar(bytes, "tau")?, n)))?;
    points_bytes(py, &points)
}

/// `g1_lagrange_from_tau(tau, k) -> bytes`: `[L_i(tau)]_1`, `i < 2^k`, as EIP-196 bytes.
#[pyfunction]
pub fn g1_lagrange_from_tau<'py>(
    py: Python<'py>,
    tau: &Bound<'py, PyAny>,
    k: i64,
) -> PyResult<Bound<'py, PyBytes>> {
    let k = k_arg(k)?;
    let input = buffers::read(tau, "tau")?;
    let bytes = input.as_slice();
    let points = run(py, || lagrange_from_tau(decode_scalar(bytes, "tau")?, k))?;
    points_bytes(py, &points)
}

/// `ptau_g1_points(data) -> bytes`: snarkjs G1 points (Montgomery LE) as EIP-196 bytes;
/// `ValueError` naming the first coordinate `>= P` or point off the curve.
#[pyfunction]
pub fn ptau_g1_points<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let input = buffers::read(data, "ptau points")?;
    let bytes = input.as_slice();
    let points = run(py, || decode_ptau_g1s(bytes, "ptau points"))?;
    points_bytes(py, &points)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ec::{AffineRepr, CurveGroup};
    use ark_ff::{BigInteger, UniformRand};
    use ark_std::rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn lagrange_from_tau_matches_the_g1_fft() {
        let mut rng = StdRng::seed_from_u64(21);
        let tau = Fr::rand(&mut rng);
        for k in 0..=5u32 {
            let monomial = powers_of_tau(tau, 1 << k);
            let by_fft = crate::g1fft::lagrange_from_monomial(&monomial, k).unwrap();
            assert_eq!(lagrange_from_tau(tau, k).unwrap(), by_fft, "k = {k}");
        }
        // tau in H: a unit vector.
        let w = domain(3).unwrap().group_gen();
        let unit = lagrange_from_tau(w, 3).unwrap();
        assert!(unit[0].is_zero() && unit[2].is_zero());
        assert_eq!(unit[1], G1Affine::generator());
    }

    #[test]
    fn ptau_points_are_montgomery_little_endian() {
        let mut rng = StdRng::seed_from_u64(22);
        let p = G1Projective::rand(&mut rng).into_affine();
        let (x, y) = p.xy().unwrap();
        let mut data = vec![0u8; 128];
        data[..32].copy_from_slice(&x.0.to_bytes_le());
        data[32..64].copy_from_slice(&y.0.to_bytes_le());
        let decoded = decode_ptau_g1s(&data, "pts").unwrap();
        assert_eq!(decoded, vec![p, G1Affine::identity()]);
        data[0] ^= 1;
        assert!(matches!(
            decode_ptau_g1s(&data, "pts"),
            Err(Error::OffCurve(_))
        ));
        data[..32].copy_from_slice(&Fq::MODULUS.to_bytes_le());
        assert!(matches!(
            decode_ptau_g1s(&data, "pts"),
            Err(Error::NonCanonical(_))
        ));
    }
}

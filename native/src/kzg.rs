//! KZG helpers over coefficient vectors (Kate, Zaverucha, Goldberg 2010, §3.2): evaluation,
//! the opening quotient `(p(X) - p(z)) / (X - z)`, and commitments against the monomial SRS.
//!
//! Polynomials are scalar buffers of coefficients, lowest degree first. Evaluation is
//! arkworks' `DensePolynomial::evaluate` (Horner's rule, in parallel chunks); division by the
//! linear `X - z` is arkworks' `DenseOrSparsePolynomial::divide_with_q_and_r` (schoolbook
//! division, linear time for a degree-1 divisor); a commitment `[p(tau)]_1 = sum_i p_i
//! [tau^i]_1` is arkworks' MSM over the SRS handle.

use ark_bn254::{Fr, G1Affine};
use ark_ff::{PrimeField, Zero};
use ark_poly::univariate::DensePolynomial;
use ark_poly::{DenseUVPolynomial, Polynomial};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buffers;
use crate::error::{Error, Result};
use crate::msm::{msm_ints, G1Bases};
use crate::points::g1_to_array;
use crate::scalars::{decode_scalar, decode_scalars, run, scalars_to_bytes, ScalarInt};

/// `p(z)`; `0` for no coefficients.
pub fn evaluate(coeffs: Vec<Fr>, z: Fr) -> Fr {
    DensePolynomial::from_coefficients_vec(coeffs).evaluate(&z)
}

/// `(q, p(z))` with `p(X) = q(X)(X - z) + p(z)`; `q` has `len(coeffs) - 1` coefficients
/// (zero-padded at the top when `p` has trailing zeros; empty for fewer than 2). Synthetic
/// division (Horner's scheme run from the top): `q_(n-2) = c_(n-1)`, `q_(i-1) = c_i + z q_i`,
/// `p(z) = c_0 + z q_0`, computed in place in `coeffs`' memory.
pub fn divide_by_linear(mut coeffs: Vec<Fr>, z: Fr) -> (Vec<Fr>, Fr) {
    let Some(&first) = coeffs.first() else {
        return (Vec::new(), Fr::zero());
    };
    let mut acc = Fr::zero();
    // Walking down, coeffs[i] becomes q_(i-1) once it has been read as c_i.
    for i in (1..coeffs.len()).rev() {
        acc = acc * z + coeffs[i];
        coeffs[i] = acc;
    }
    let remainder = acc * z + first;
    coeffs.remove(0);
    (coeffs, remainder)
}

/// `[p(tau)]_1 = sum_i coeffs[i] [tau^i]_1`; trailing zero coefficients are ignored and a
/// degree above `len(srs) - 1` is refused.
pub fn commit(srs: &[G1Affine], coeffs: &[Fr]) -> Result<G1Affine> {
    let len = coeffs
        .iter()
        .rposition(|c| !c.is_zero())
        .map_or(0, |d| d + 1);
    if len > srs.len() {
        return Err(Error::Length(format!(
            "a polynomial of degree {} exceeds the SRS's max degree {}",
            len - 1,
            srs.len().saturating_sub(1)
        )));
    }
    let ints: Vec<ScalarInt> = coeffs[..len].iter().map(|c| c.into_bigint()).collect();
    msm_ints(srs, &ints)
}

/// `poly_evaluate(coeffs, z) -> bytes`: `p(z)` as one scalar word.
#[pyfunction]
pub fn poly_evaluate<'py>(
    py: Python<'py>,
    coeffs: &Bound<'py, PyAny>,
    z: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let input = buffers::read(coeffs, "coeffs")?;
    let z_input = buffers::read(z, "z")?;
    let (bytes, z_bytes) = (input.as_slice(), z_input.as_slice());
    let y = run(py, || {
        Ok(evaluate(
            decode_scalars(bytes, "coeffs")?,
            decode_scalar(z_bytes, "z")?,
        ))
    })?;
    scalars_to_bytes(py, &[y])
}

/// `poly_divide_by_linear(coeffs, z) -> (bytes, bytes)`: the quotient `(p(X) - p(z))/(X - z)`
/// (`n - 1` words) and the remainder `p(z)` (one word).
#[pyfunction]
pub fn poly_divide_by_linear<'py>(
    py: Python<'py>,
    coeffs: &Bound<'py, PyAny>,
    z: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
    let input = buffers::read(coeffs, "coeffs")?;
    let z_input = buffers::read(z, "z")?;
    let (bytes, z_bytes) = (input.as_slice(), z_input.as_slice());
    let (q, r) = run(py, || {
        Ok(divide_by_linear(
            decode_scalars(bytes, "coeffs")?,
            decode_scalar(z_bytes, "z")?,
        ))
    })?;
    Ok((scalars_to_bytes(py, &q)?, scalars_to_bytes(py, &[r])?))
}

/// `kzg_commit(srs, coeffs) -> bytes`: `[p(tau)]_1` as a 64-byte EIP-196 point, `srs` the
/// handle on the monomial powers `[tau^i]_1`.
#[pyfunction]
pub fn kzg_commit<'py>(
    py: Python<'py>,
    srs: &Bound<'py, G1Bases>,
    coeffs: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let points = &srs.get().points;
    let input = buffers::read(coeffs, "coeffs")?;
    let bytes = input.as_slice();
    let c = run(py, || commit(points, &decode_scalars(bytes, "coeffs")?))?;
    Ok(PyBytes::new(py, &g1_to_array(&c)))
}

/// `kzg_open(srs, coeffs, z) -> (bytes, bytes)`: `(y, W)` with `y = p(z)` (one scalar word)
/// and `W = [(p(X) - y)/(X - z)](tau)]_1` (64 bytes), the opening `verifier.kzg` checks.
#[pyfunction]
pub fn kzg_open<'py>(
    py: Python<'py>,
    srs: &Bound<'py, G1Bases>,
    coeffs: &Bound<'py, PyAny>,
    z: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
    let points = &srs.get().points;
    let input = buffers::read(coeffs, "coeffs")?;
    let z_input = buffers::read(z, "z")?;
    let (bytes, z_bytes) = (input.as_slice(), z_input.as_slice());
    let (y, w) = run(py, || {
        let (q, y) = divide_by_linear(
            decode_scalars(bytes, "coeffs")?,
            decode_scalar(z_bytes, "z")?,
        );
        Ok((y, commit(points, &q)?))
    })?;
    Ok((
        scalars_to_bytes(py, &[y])?,
        PyBytes::new(py, &g1_to_array(&w)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_bn254::G1Projective;
    use ark_ec::{AffineRepr, CurveGroup, PrimeGroup};
    use ark_ff::{Field, UniformRand};
    use ark_std::rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn division_by_linear_gives_quotient_and_value() {
        let mut rng = StdRng::seed_from_u64(9);
        for n in [0usize, 1, 2, 3, 17, 64] {
            let mut c: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
            if n > 3 {
                c[n - 1] = Fr::zero(); // trailing zeros keep the quotient's width
                c[n - 2] = Fr::zero();
            }
            let z = Fr::rand(&mut rng);
            let (q, r) = divide_by_linear(c.clone(), z);
            assert_eq!(q.len(), n.saturating_sub(1));
            assert_eq!(r, evaluate(c.clone(), z));
            // p(x) = q(x)(x - z) + r at a random x.
            let x = Fr::rand(&mut rng);
            let at = |v: &[Fr]| v.iter().rev().fold(Fr::zero(), |a, b| a * x + b);
            assert_eq!(at(&c), at(&q) * (x - z) + r, "n = {n}");
        }
    }

    #[test]
    fn commit_is_p_of_tau_times_g_and_refuses_high_degree() {
        let mut rng = StdRng::seed_from_u64(10);
        let tau = Fr::rand(&mut rng);
        let g = G1Projective::generator();
        let srs: Vec<G1Affine> = (0..8)
            .map(|j| (g * tau.pow([j as u64])).into_affine())
            .collect();
        let mut c: Vec<Fr> = (0..8).map(|_| Fr::rand(&mut rng)).collect();
        assert_eq!(
            commit(&srs, &c).unwrap(),
            (g * evaluate(c.clone(), tau)).into_affine()
        );
        c.extend([Fr::zero(), Fr::zero()]); // longer than the SRS, but degree 7: fine
        assert!(commit(&srs, &c).is_ok());
        c.push(Fr::from(1u64));
        assert!(matches!(commit(&srs, &c), Err(Error::Length(_))));
        assert!(commit(&srs, &[]).unwrap().is_zero());
    }
}

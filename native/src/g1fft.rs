//! The Lagrange basis `[L_i(tau)]_1` from the monomial SRS `[tau^j]_1`, by an inverse FFT
//! over G1.
//!
//! For polynomials of degree `< N`, `L_i(X) = (1/N) sum_j omega^(-i j) X^j`, so
//! `[L_i(tau)]_1 = (1/N) sum_j omega^(-i j) [tau^j]_1`: the inverse DFT over G1 of the first
//! `N` powers, in the ordering of `prover.srs.lagrange_basis` (`L_i(omega^j) = [i = j]`,
//! `omega` the generator of `H`). arkworks' radix-2 domain transforms any `DomainCoeff`,
//! and G1 projective points are one (`MulAssign<Fr>` is a GLV scalar multiplication on
//! BN254): `(N/2) log2 N` twiddle multiplications, parallel on rayon, then one batch
//! normalisation to affine.

use ark_bn254::{G1Affine, G1Projective};
use ark_ec::{AffineRepr, CurveGroup};
use ark_poly::EvaluationDomain;
use pyo3::prelude::*;

use crate::error::{Error, Result};
use crate::msm::G1Bases;
use crate::ntt::{domain, k_arg};
use crate::scalars::run;

/// `[L_i(tau)]_1` for `i < 2^k` from the first `2^k` monomial points.
pub fn lagrange_from_monomial(monomial: &[G1Affine], k: u32) -> Result<Vec<G1Affine>> {
    let dom = domain(k)?;
    let n = dom.size();
    if monomial.len() < n {
        return Err(Error::Length(format!(
            "a Lagrange basis of size 2^{k} needs {n} monomial points, got {}",
            monomial.len()
        )));
    }
    let mut points: Vec<G1Projective> = monomial[..n].iter().map(|p| p.into_group()).collect();
    dom.ifft_in_place(&mut points);
    Ok(G1Projective::normalize_batch(&points))
}

/// `g1_lagrange_basis(monomial, k) -> G1Bases`: the Lagrange basis of the domain of
/// size `2^k` from a handle on (at least) `[tau^0]_1 .. [tau^(N-1)]_1`.
#[pyfunction]
pub fn g1_lagrange_basis(
    py: Python<'_>,
    monomial: &Bound<'_, G1Bases>,
    k: i64,
) -> PyResult<G1Bases> {
    let k = k_arg(k)?;
    let points = &monomial.get().points;
    let lagrange = run(py, || lagrange_from_monomial(points, k))?;
    Ok(G1Bases { points: lagrange })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_bn254::Fr;
    use ark_ec::PrimeGroup;
    use ark_ff::{Field, UniformRand};
    use ark_std::rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn lagrange_points_are_the_lagrange_values_at_tau() {
        let mut rng = StdRng::seed_from_u64(8);
        let tau = Fr::rand(&mut rng);
        let g = G1Projective::generator();
        for k in 0..=4u32 {
            let n = 1usize << k;
            let monomial: Vec<G1Affine> = (0..n + 2)
                .map(|j| (g * tau.pow([j as u64])).into_affine())
                .collect();
            let lagrange = lagrange_from_monomial(&monomial, k).unwrap();
            let dom = domain(k).unwrap();
            // L_i(tau) = omega^i (tau^n - 1) / (n (tau - omega^i)).
            let z = tau.pow([n as u64]) - Fr::ONE;
            let mut w = Fr::ONE;
            for point in &lagrange {
                let l = w * z / (Fr::from(n as u64) * (tau - w));
                assert_eq!(*point, (g * l).into_affine(), "k {k}");
                w *= dom.group_gen();
            }
        }
        assert!(matches!(
            lagrange_from_monomial(&[G1Affine::generator()], 1),
            Err(Error::Length(_))
        ));
    }
}

//! Columns kept native: the `FrVec` handle and the vector arithmetic of the prover's rounds.
//!
//! A `FrVec` is a vector of field elements (Fr, in arkworks' Montgomery form) that lives in
//! native memory: a witness column on `H`, a polynomial's coefficients, a column on a coset.
//! The prover (`prover/native_prover.py`) keeps every column of a proof in such handles from
//! the witness to the openings, so no column crosses the boundary element by element; only
//! commitments (64-byte points) and single scalars (32-byte words) come back to Python.
//!
//! Functions here, named after the math (PROTOCOL §6):
//!
//! * `fr_interpolate_blinded` values on `H` -> the coefficients of `c(X) + r(X) Z_H(X)`, `c`
//!                        the interpolant (degree < N), `Z_H = X^N - 1` (PLONK §8 blinding);
//! * `fr_msm`             `sum_i c_i P_i` with full-width scalars (`msm::msm_bigints`: our
//!                        batch-affine Pippenger, or arkworks' `msm_bigint` by `ZKMETER_MSM`);
//! * `fr_msm_column`      the same point, computed the cheapest way the values allow: by runs
//!                        of equal values (`sum_v v sum_{c_i = v} P_i`), or by small-scalar
//!                        MSMs when every value is below 2^64;
//! * `fr_evaluate_many`   `[p_k(z)]`: the powers of `z` once, then a dot product each;
//! * `fr_open`            `[(P(X) - P(z))/(X - z)]_1` for `P = sum_k w_k p_k` (GWC19 §3).

use ark_bn254::{Fr, G1Affine, G1Projective};
use ark_ec::CurveGroup;
use ark_ff::{BigInteger, Field, PrimeField, Zero};
use ark_poly::EvaluationDomain;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rayon::prelude::*;

use crate::buffers;
use crate::error::{Error, Result};
use crate::kzg::divide_by_linear;
use crate::msm::{msm_bigints, msm_small, G1Bases, MsmAlgorithm};
use crate::ntt::{domain, k_arg};
use crate::points::g1_to_array;
use crate::scalars::{decode_scalars, decode_u64s, run, scalar_arg, scalars_to_bytes};

/// A vector of field elements held natively (see the module note).
///
/// `FrVec.from_words(buf)`: `32 n` bytes of canonical little-endian words (`ValueError` for a
/// word `>= R`); `FrVec.from_u64(buf)`: `8 n` bytes of little-endian `u64` values;
/// `to_words()` gives the words back; `word(i)` one of them.
#[pyclass(frozen, module = "zkmeter_native")]
pub struct FrVec {
    pub values: Vec<Fr>,
}

#[pymethods]
impl FrVec {
    #[staticmethod]
    fn from_words(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let input = buffers::read(data, "words")?;
        let bytes = input.as_slice();
        let values = run(py, || decode_scalars(bytes, "words"))?;
        Ok(Self { values })
    }

    #[staticmethod]
    fn from_u64(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let input = buffers::read(data, "values")?;
        let bytes = input.as_slice();
        let values = run(py, || {
            Ok(decode_u64s(bytes, "values")?
                .into_par_iter()
                .map(Fr::from)
                .collect())
        })?;
        Ok(Self { values })
    }

    fn to_words<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        scalars_to_bytes(py, &self.values)
    }

    fn word<'py>(&self, py: Python<'py>, index: usize) -> PyResult<Bound<'py, PyBytes>> {
        let x = self.values.get(index).ok_or_else(|| {
            Error::Length(format!(
                "index {index} is outside a vector of {}",
                self.values.len()
            ))
        })?;
        scalars_to_bytes(py, &[*x])
    }

    /// The number of trailing zeros (the degree is `len - 1 - trailing_zeros`).
    fn trailing_zeros(&self) -> usize {
        self.values.iter().rev().take_while(|x| x.is_zero()).count()
    }

    fn __len__(&self) -> usize {
        self.values.len()
    }

    fn __repr__(&self) -> String {
        format!("FrVec(n={})", self.values.len())
    }
}

/// `c(X) + r(X) (X^N - 1)` from the coefficients of `c` (degree < N), in place: `c` padded
/// to `N + len(r)`, then `r_j` subtracted at `j` and added at `N + j`.
pub fn blind_in_place(coeffs: &mut Vec<Fr>, n: usize, r: &[Fr]) -> Result<()> {
    if coeffs.len() > n {
        return Err(Error::Length(format!(
            "blind: {} coefficients for a column of degree < {n}",
            coeffs.len()
        )));
    }
    coeffs.resize(n + r.len(), Fr::zero());
    for (j, r_j) in r.iter().enumerate() {
        coeffs[j] -= r_j;
        coeffs[n + j] += r_j;
    }
    Ok(())
}

/// The coefficients of `c(X) + r(X)(X^N - 1)`, `c` the interpolant of `values` on `H`
/// (`N = 2^k = len(values)`): one copy of the column (with room for `r`), an inverse FFT and
/// the blinding, all in that one buffer.
pub fn interpolate_blinded(values: &[Fr], k: u32, r: &[Fr]) -> Result<Vec<Fr>> {
    let n = 1usize << k;
    let mut out = Vec::with_capacity(values.len().max(n) + r.len());
    out.extend_from_slice(values);
    crate::ntt::ifft_in_place_scaled(&mut out, k, Fr::ONE)?;
    blind_in_place(&mut out, n, r)?;
    Ok(out)
}

/// `[p_k(z)]` for every polynomial: `z^j` once for the longest, then each `p_k(z) = sum_j
/// c_j z^j` as a parallel dot product (where Horner's rule is one sequential chain each).
pub fn evaluate_many(polys: &[&[Fr]], z: Fr) -> Vec<Fr> {
    let len = polys.iter().map(|p| p.len()).max().unwrap_or(0);
    let z_powers = powers(z, len);
    polys
        .iter()
        .map(|p| p.par_iter().zip(&z_powers).map(|(c, x)| *c * x).sum())
        .collect()
}

/// `sum_i c_i P_i` with full-width scalars over the first `c.len()` bases (trailing zeros
/// are dropped first; both MSMs skip zero scalars inside), by the process's MSM
/// (`MsmAlgorithm::from_env`: ours unless `ZKMETER_MSM=arkworks`).
pub fn msm_full(bases: &[G1Affine], c: &[Fr]) -> Result<G1Affine> {
    msm_full_with(bases, c, MsmAlgorithm::from_env()?)
}

/// `msm_full` by a given algorithm.
pub fn msm_full_with(bases: &[G1Affine], c: &[Fr], algorithm: MsmAlgorithm) -> Result<G1Affine> {
    let len = c.iter().rposition(|x| !x.is_zero()).map_or(0, |d| d + 1);
    if len > bases.len() {
        return Err(Error::Length(format!(
            "{len} scalars for {} bases (at most one scalar per base)",
            bases.len()
        )));
    }
    let ints: Vec<_> = c[..len].par_iter().map(|x| x.into_bigint()).collect();
    Ok(msm_bigints(&bases[..len], &ints, algorithm).into_affine())
}

/// Maximal runs `[start, end)` of equal consecutive values.
pub fn runs(c: &[Fr]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=c.len() {
        if i == c.len() || c[i] != c[start] {
            out.push((start, i));
            start = i;
        }
    }
    out
}

/// `[sum_{i in run} P_i for run in runs]` (parallel over fixed-size pieces of each run,
/// then one batch normalisation).
pub fn run_sums(bases: &[G1Affine], runs: &[(usize, usize)]) -> Vec<G1Affine> {
    const PIECE: usize = 1 << 12;
    let pieces: Vec<(usize, usize, usize)> = runs
        .iter()
        .enumerate()
        .flat_map(|(r, &(start, end))| {
            (start..end)
                .step_by(PIECE)
                .map(move |s| (r, s, (s + PIECE).min(end)))
        })
        .collect();
    let partial: Vec<(usize, G1Projective)> = pieces
        .par_iter()
        .map(|&(r, s, e)| {
            let mut acc = G1Projective::zero();
            for p in &bases[s..e] {
                acc += p;
            }
            (r, acc)
        })
        .collect();
    let mut sums = vec![G1Projective::zero(); runs.len()];
    for (r, p) in partial {
        sums[r] += p;
    }
    G1Projective::normalize_batch(&sums)
}

fn small_value(x: &Fr) -> Option<u64> {
    let int = x.into_bigint();
    if int.0[1..].iter().all(|l| *l == 0) {
        Some(int.0[0])
    } else {
        None
    }
}

/// `sum_i c_i P_i`, the same point as `msm_full`, computed the cheapest way the values
/// allow (the commitment of a witness column does not depend on how it is computed):
///
/// * every value below 2^64 (flags, limbs, multiplicities, nonces): arkworks'
///   `msm_u1/u8/u16/u32/u64` by the largest value;
/// * few runs of equal values (the channel key, constant along a channel's rows):
///   `sum_v v (sum_{i in run} P_i)`, one addition per row and an MSM over the runs;
/// * otherwise the full-width MSM.
pub fn msm_column(bases: &[G1Affine], c: &[Fr]) -> Result<G1Affine> {
    let len = c.iter().rposition(|x| !x.is_zero()).map_or(0, |d| d + 1);
    if len > bases.len() {
        return Err(Error::Length(format!(
            "{len} scalars for {} bases (at most one scalar per base)",
            bases.len()
        )));
    }
    let c = &c[..len];
    let bases = &bases[..len];
    let small: Option<Vec<u64>> = c.par_iter().map(small_value).collect();
    if let Some(values) = &small {
        if values.iter().all(|v| *v <= 1) {
            return msm_small(bases, values);
        }
    }
    let column_runs = runs(c);
    if column_runs.len() * 16 <= len {
        let sums = run_sums(bases, &column_runs);
        let values: Vec<Fr> = column_runs.iter().map(|&(s, _)| c[s]).collect();
        return msm_full(&sums, &values);
    }
    if let Some(values) = small {
        return msm_small(bases, &values);
    }
    msm_full(bases, c)
}

/// `(P(X) - P(z)) / (X - z)` for `P = sum_k w_k p_k` (division is linear: the polynomials
/// are combined first and divided once).
pub fn opening_quotient(polys: &[&[Fr]], weights: &[Fr], z: Fr) -> Result<Vec<Fr>> {
    if polys.len() != weights.len() || polys.is_empty() {
        return Err(Error::Length(format!(
            "{} polynomials and {} weights (one weight each, at least one)",
            polys.len(),
            weights.len()
        )));
    }
    let len = polys.iter().map(|p| p.len()).max().unwrap_or(0);
    let combined: Vec<Fr> = (0..len)
        .into_par_iter()
        .map(|i| {
            polys
                .iter()
                .zip(weights)
                .filter_map(|(p, w)| p.get(i).map(|c| *c * w))
                .sum()
        })
        .collect();
    Ok(divide_by_linear(combined, z).0)
}

fn refs<'a, 'py>(v: &'a [Bound<'py, FrVec>]) -> Vec<&'a [Fr]> {
    v.iter().map(|b| b.get().values.as_slice()).collect()
}

/// `fr_interpolate_blinded(values, k, r) -> FrVec`: the coefficients of `c(X) + r(X)(X^N -
/// 1)`, `c` the interpolant of `values` on `H` (`N = 2^k`), `r` given as scalar words.
#[pyfunction]
pub fn fr_interpolate_blinded(
    py: Python<'_>,
    values: &Bound<'_, FrVec>,
    k: i64,
    r: &Bound<'_, PyAny>,
) -> PyResult<FrVec> {
    let k = k_arg(k)?;
    let v = &values.get().values;
    let r_input = buffers::read(r, "r")?;
    let r_bytes = r_input.as_slice();
    let out = run(py, || {
        interpolate_blinded(v, k, &decode_scalars(r_bytes, "r")?)
    })?;
    Ok(FrVec { values: out })
}

/// `fr_msm(bases, scalars) -> bytes`: `sum_i s_i P_i` (full width) as a 64-byte point.
#[pyfunction]
pub fn fr_msm<'py>(
    py: Python<'py>,
    bases: &Bound<'py, G1Bases>,
    scalars: &Bound<'py, FrVec>,
) -> PyResult<Bound<'py, PyBytes>> {
    let (points, c) = (&bases.get().points, &scalars.get().values);
    let sum = run(py, || msm_full(points, c))?;
    Ok(PyBytes::new(py, &g1_to_array(&sum)))
}

/// `fr_msm_column(bases, column) -> bytes`: the commitment `sum_i c_i P_i` of a column,
/// computed by runs or small-scalar MSMs where the values allow (`msm_column`).
#[pyfunction]
pub fn fr_msm_column<'py>(
    py: Python<'py>,
    bases: &Bound<'py, G1Bases>,
    column: &Bound<'py, FrVec>,
) -> PyResult<Bound<'py, PyBytes>> {
    let (points, c) = (&bases.get().points, &column.get().values);
    let sum = run(py, || msm_column(points, c))?;
    Ok(PyBytes::new(py, &g1_to_array(&sum)))
}

/// `fr_evaluate_many(polys, z) -> bytes`: `[p_k(z)]` as scalar words, in the order given.
#[pyfunction]
pub fn fr_evaluate_many<'py>(
    py: Python<'py>,
    polys: Vec<Bound<'py, FrVec>>,
    z: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let polys = refs(&polys);
    let z = scalar_arg(z, "z")?;
    let ys = run(py, || Ok(evaluate_many(&polys, z)))?;
    scalars_to_bytes(py, &ys)
}

/// `fr_open(srs, polys, weights, z) -> bytes`: the KZG opening `[(P(X) - P(z))/(X - z)]_1`
/// of `P = sum_k weights[k] polys[k]` against the monomial SRS handle.
#[pyfunction]
pub fn fr_open<'py>(
    py: Python<'py>,
    srs: &Bound<'py, G1Bases>,
    polys: Vec<Bound<'py, FrVec>>,
    weights: &Bound<'py, PyAny>,
    z: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let points = &srs.get().points;
    let polys = refs(&polys);
    let w_input = buffers::read(weights, "weights")?;
    let w_bytes = w_input.as_slice();
    let z = scalar_arg(z, "z")?;
    let w = run(py, || {
        let q = opening_quotient(&polys, &decode_scalars(w_bytes, "weights")?, z)?;
        msm_full(points, &q)
    })?;
    Ok(PyBytes::new(py, &g1_to_array(&w)))
}

/// `(x^N - 1)` is constant on a coset `s H`: `s^N - 1`.
pub fn vanishing_on_coset(shift: Fr, n: usize) -> Fr {
    shift.pow([n as u64]) - Fr::ONE
}

/// Evaluations of `p` (any degree) on `shift * H`, `|H| = 2^k`: coefficient `j` scaled by
/// `shift^j`, folded modulo `X^N - 1`, then an FFT of size `N`.
pub fn evaluate_on_coset(coeffs: &[Fr], shift_powers: &[Fr], k: u32) -> Result<Vec<Fr>> {
    let dom = domain(k)?;
    let n = dom.size();
    if coeffs.len() > shift_powers.len() {
        return Err(Error::Length(format!(
            "{} coefficients but {} shift powers",
            coeffs.len(),
            shift_powers.len()
        )));
    }
    let mut folded: Vec<Fr> = (0..n)
        .into_par_iter()
        .map(|j| {
            let mut acc = Fr::zero();
            let mut i = j;
            while i < coeffs.len() {
                acc += coeffs[i] * shift_powers[i];
                i += n;
            }
            acc
        })
        .collect();
    crate::ntt::fft_in_place(&mut folded, k)?;
    Ok(folded)
}

/// `[1, x, x^2, ..., x^(len-1)]`, in parallel chunks.
pub fn powers(x: Fr, len: usize) -> Vec<Fr> {
    const CHUNK: usize = 1 << 12;
    let chunks = len.div_ceil(CHUNK);
    let mut out = vec![Fr::zero(); len];
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(c, chunk)| {
            let mut acc = x.pow([(c * CHUNK) as u64]);
            for v in chunk.iter_mut() {
                *v = acc;
                acc *= x;
            }
        });
    let _ = chunks;
    out
}

/// Is `x`'s canonical integer below `2^bits`?
pub fn fits_bits(x: &Fr, bits: u32) -> bool {
    x.into_bigint().num_bits() <= bits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kzg::evaluate;
    use ark_ff::UniformRand;
    use ark_std::rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn interpolate_blinded_is_the_blinded_interpolant() {
        // Oracle: arkworks' inverse FFT, then c(X) + r(X)(X^N - 1) written out term by term.
        let mut rng = StdRng::seed_from_u64(21);
        for (k, blinding) in [(0u32, 2usize), (3, 3), (14, 2), (14, 0)] {
            let n = 1usize << k;
            let values: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
            let r: Vec<Fr> = (0..blinding).map(|_| Fr::rand(&mut rng)).collect();
            let mut c = values.clone();
            domain(k).unwrap().ifft_in_place(&mut c);
            let mut expected = vec![Fr::zero(); n + blinding];
            expected[..n].copy_from_slice(&c);
            for (j, r_j) in r.iter().enumerate() {
                expected[j] -= r_j;
                expected[n + j] += r_j;
            }
            let got = crate::pool::install(|| interpolate_blinded(&values, k, &r))
                .unwrap()
                .unwrap();
            assert_eq!(got, expected, "k = {k}, {blinding} blinding terms");
        }
        let three = vec![Fr::ONE; 3];
        assert!(matches!(
            interpolate_blinded(&three, 2, &[]),
            Err(Error::Length(_))
        ));
    }

    #[test]
    fn evaluate_many_agrees_with_horner() {
        let mut rng = StdRng::seed_from_u64(22);
        let polys: Vec<Vec<Fr>> = [0usize, 1, 5, 4099]
            .iter()
            .map(|len| (0..*len).map(|_| Fr::rand(&mut rng)).collect())
            .collect();
        let refs: Vec<&[Fr]> = polys.iter().map(|p| p.as_slice()).collect();
        let z = Fr::rand(&mut rng);
        let expected: Vec<Fr> = polys.iter().map(|p| evaluate(p.clone(), z)).collect();
        assert_eq!(evaluate_many(&refs, z), expected);
        assert!(evaluate_many(&[], z).is_empty());
    }
}

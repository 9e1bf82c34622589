//! Commitments of the limb columns, the range helpers `h_range_j`, and the round-2 columns
//! `h_agg` and `phi` without a full-width MSM over `N` points, from the structure of their
//! values. A commitment is the group element
//! `sum_i c_i P_i` whatever way it is computed, so these give the same points (and the same
//! proofs) as `msm_full` on the values; when a witness lacks the structure (a cheating
//! prover's columns), they fall back to `msm_full` on the values they are given.
//!
//! **limb_j, h_range_j** (PROTOCOL §3): a limb takes at most `2^b = 256` values, so with the
//! bucket sums `B_t = sum_(i: limb_j,i = t) P_i` (`N` additions, made once in round 1 from
//! the limb's values, before `beta` is known) `[limb_j] = sum_t t B_t` and
//! `[h_range_j] = sum_t 1/(beta - t) B_t`: MSMs of 256 points (`limb_buckets`).
//!
//! **h_agg** (PROTOCOL §3): `h_agg_i = inv_r (q_i + delta q_i x_i + delta^2 s_i u_i +
//! delta^3 s_i)` with `inv_r = 1/(gamma - key)` constant on each run `r` of equal keys,
//! `x_i` the row's tokens and `u_i` its nonce. By linearity
//!
//!     sum_i h_agg_i P_i = sum_r inv_r (Q_r + delta X_r + delta^2 U_r + delta^3 S_r),
//!
//! `Q_r = sum_(i in r) q_i P_i`, `X_r = sum q_i x_i P_i`, `U_r = sum s_i u_i P_i`,
//! `S_r = sum s_i P_i`: small-scalar MSMs (flags, 32-bit tokens, 64-bit nonces) over each
//! run, then one full-width MSM over `4 runs` points.
//!
//! **phi**: `phi_i = sum_(j < i) y_j` with `y_j = c_j - A/N` the row contribution, so
//!
//!     sum_i phi_i L_i = sum_j y_j S_j,    S_j = sum_(i > j) L_i    (suffix sums of the basis).
//!
//! With `c_j = sum_l h_range_l,j - h_table_j + h_agg_j = sum_l 1/(beta - limb_l,j) -
//! h_table_j + h_agg_j`:
//!
//!     [phi] = sum_l sum_t 1/(beta - t) B_l,t - sum_j h_table_j S_j + [h_agg over S]
//!             - (A/N) sum_j S_j,
//!
//! `B_l,t = sum_(j: limb_l,j = t) S_j` bucket sums over the `2^b` limb values: `L N`
//! additions and MSMs of `2^b` points instead of a full-width MSM of `N`.

use ark_bn254::{Fr, G1Affine, G1Projective};
use ark_ec::{CurveGroup, VariableBaseMSM};
use ark_ff::{Field, PrimeField, Zero};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rayon::prelude::*;

use crate::buffers;
use crate::column::{msm_full, runs, FrVec};
use crate::error::{Error, Result};
use crate::msm::G1Bases;
use crate::points::g1_to_array;
use crate::scalars::{batch_inverse_in_place, run, scalar_arg};

fn small(x: &Fr) -> Option<u64> {
    let int = x.into_bigint();
    int.0[1..].iter().all(|l| *l == 0).then_some(int.0[0])
}

fn flag(x: &Fr) -> Option<bool> {
    match small(x) {
        Some(0) => Some(false),
        Some(1) => Some(true),
        _ => None,
    }
}

/// The columns `h_agg` is made of, on `H`.
pub struct AggregateInputs<'a> {
    pub key: &'a [Fr],
    pub q: &'a [Fr],
    pub s: &'a [Fr],
    pub nonce: &'a [Fr],
    pub limbs: Vec<&'a [Fr]>,
    pub limb_bits: u32,
    pub gamma: Fr,
    pub delta: Fr,
}

/// Per row: (q, s, tokens, s * nonce) as small integers, if every row has them.
fn aggregate_rows(inp: &AggregateInputs<'_>) -> Option<Vec<(bool, bool, u64, u64)>> {
    let n = inp.key.len();
    (0..n)
        .into_par_iter()
        .map(|i| {
            let q = flag(&inp.q[i])?;
            let s = flag(&inp.s[i])?;
            let mut tokens: u128 = 0;
            for (j, limb) in inp.limbs.iter().enumerate() {
                let v = small(&limb[i])? as u128;
                tokens = tokens.checked_add(v.checked_shl(inp.limb_bits * j as u32)?)?;
            }
            let tokens = u64::try_from(tokens).ok()?;
            let nonce = if s { small(&inp.nonce[i])? } else { 0 };
            Some((q, s, if q { tokens } else { 0 }, nonce))
        })
        .collect()
}

/// What `[h_agg]` is committed from by runs (module note): the runs of the key and each row's
/// `(q, s, tokens, s * nonce)` as small integers. Found once per proof and used over both
/// bases, the Lagrange basis for `[h_agg]` and the suffix sums for `[phi]`.
pub struct AggregateStructure {
    runs: Vec<(usize, usize)>,
    rows: Vec<(bool, bool, u64, u64)>,
}

impl AggregateStructure {
    /// `None` when the columns lack the structure (more than one run per 16 rows, a flag not
    /// 0/1, tokens or a nonce not small): the caller then commits the values.
    pub fn of(inp: &AggregateInputs<'_>) -> Option<Self> {
        let runs = runs(inp.key);
        if runs.len() * 16 > inp.key.len() {
            return None;
        }
        Some(Self {
            runs,
            rows: aggregate_rows(inp)?,
        })
    }

    /// `sum_i h_agg_i P_i` over `bases` (module note).
    pub fn commitment(&self, bases: &[G1Affine], inp: &AggregateInputs<'_>) -> Result<G1Affine> {
        let (key_runs, rows) = (&self.runs, &self.rows);
        let n = rows.len();
        if bases.len() < n {
            return Err(Error::Length(format!("{n} rows for {} bases", bases.len())));
        }
        let sums: Vec<[G1Projective; 4]> = key_runs
            .par_iter()
            .map(|&(start, end)| {
                let mut q_sum = G1Projective::zero();
                let mut s_sum = G1Projective::zero();
                let mut token_bases = Vec::new();
                let mut token_scalars = Vec::new();
                let mut nonce_bases = Vec::new();
                let mut nonce_scalars = Vec::new();
                for i in start..end {
                    let (q, s, tokens, nonce) = rows[i];
                    if q {
                        q_sum += bases[i];
                        if tokens != 0 {
                            token_bases.push(bases[i]);
                            token_scalars.push(tokens);
                        }
                    }
                    if s {
                        s_sum += bases[i];
                        if nonce != 0 {
                            nonce_bases.push(bases[i]);
                            nonce_scalars.push(nonce);
                        }
                    }
                }
                let x_sum = G1Projective::msm_u64(&token_bases, &token_scalars);
                let u_sum = G1Projective::msm_u64(&nonce_bases, &nonce_scalars);
                [q_sum, x_sum, u_sum, s_sum]
            })
            .collect();
        let mut inv: Vec<Fr> = key_runs
            .iter()
            .map(|&(s, _)| inp.gamma - inp.key[s])
            .collect();
        batch_inverse_in_place(&mut inv, "gamma - key")?;
        let delta2 = inp.delta.square();
        let weights = [Fr::ONE, inp.delta, delta2, delta2 * inp.delta];
        let points: Vec<G1Projective> = sums.iter().flatten().copied().collect();
        let scalars: Vec<Fr> = inv
            .iter()
            .flat_map(|x| weights.iter().map(move |w| *x * w))
            .collect();
        msm_full(&G1Projective::normalize_batch(&points), &scalars)
    }
}

/// `sum_i h_agg_i P_i` by runs of the key; `None` when the columns lack the structure.
pub fn aggregate_commitment(
    bases: &[G1Affine],
    inp: &AggregateInputs<'_>,
) -> Result<Option<G1Affine>> {
    AggregateStructure::of(inp)
        .map(|structure| structure.commitment(bases, inp))
        .transpose()
}

/// `[sum_(i > j) P_i for j < n]`: suffix sums (the last is the point at infinity), in
/// parallel chunks, each normalised to affine by its own batch inversion as it is made (no
/// projective copy of all `n`: 96 MiB at 2^20).
pub fn suffix_sums(bases: &[G1Affine]) -> Vec<G1Affine> {
    const CHUNK: usize = 1 << 12;
    let n = bases.len();
    // Sum of each chunk, then the sum of every later chunk.
    let totals: Vec<G1Projective> = bases
        .par_chunks(CHUNK)
        .map(|c| c.iter().fold(G1Projective::zero(), |acc, p| acc + p))
        .collect();
    let mut after = vec![G1Projective::zero(); totals.len()];
    for c in (0..totals.len().saturating_sub(1)).rev() {
        after[c] = after[c + 1] + totals[c + 1];
    }
    let mut out = vec![G1Affine::identity(); n];
    out.par_chunks_mut(CHUNK)
        .zip(bases.par_chunks(CHUNK))
        .zip(after.par_iter())
        .for_each(|((out, chunk), tail)| {
            let mut acc = *tail;
            let mut sums = vec![G1Projective::zero(); chunk.len()];
            for (o, p) in sums.iter_mut().zip(chunk).rev() {
                *o = acc;
                acc += p;
            }
            out.copy_from_slice(&G1Projective::normalize_batch(&sums));
        });
    out
}

/// `B_t = sum_(j: values_j = t) P_(j mod n)` for `t < buckets`, `n = len(bases)` (so several
/// columns of values over the same bases go into one set of buckets), as affine points: by
/// the MSM's batch-affine buckets (`pippenger::bucket_sums`; 0.37 s for the four limbs of a
/// 2^20 proof where projective additions took 0.53 s). Every value is below `buckets` (the
/// callers check).
pub fn bucket_sums(bases: &[G1Affine], values: &[u64], buckets: usize) -> Vec<G1Affine> {
    G1Projective::normalize_batch(&crate::pippenger::bucket_sums(bases, values, buckets))
}

/// `limb_buckets(bases, values, buckets) -> G1Bases | None`: the bucket sums
/// `B_t = sum_(i: values_i = t) P_i`, `t < buckets`, over the first `len(values)` bases, or
/// `None` when a value is not an integer below `buckets` (a cheating witness's limb: its
/// columns are then committed from their values).
#[pyfunction]
pub fn limb_buckets(
    py: Python<'_>,
    bases: &Bound<'_, G1Bases>,
    values: &Bound<'_, FrVec>,
    buckets: usize,
) -> PyResult<Option<G1Bases>> {
    if buckets == 0 || buckets > 1 << 16 {
        return Err(Error::Domain(format!("{buckets} buckets is not in 1..=65536")).into());
    }
    let (points, values) = (&bases.get().points, &values.get().values);
    if points.len() < values.len() {
        return Err(Error::Length(format!(
            "{} values for {} bases",
            values.len(),
            points.len()
        ))
        .into());
    }
    let sums = run(py, || {
        let small: Option<Vec<u64>> = values
            .par_iter()
            .map(|x| small(x).filter(|v| (*v as usize) < buckets))
            .collect();
        Ok(small.map(|v| bucket_sums(&points[..v.len()], &v, buckets)))
    })?;
    Ok(sums.map(|points| G1Bases { points }))
}

/// `[phi]` by buckets only when `N >= 4 * 2^b`: it then costs two MSMs of `2^b` points (the
/// buckets and `h_table`) and `L N` additions instead of one full MSM of `N` points.
pub const PHI_MIN_ROWS_PER_BUCKET: usize = 4;

/// The inputs of `[phi]` besides those of `h_agg`.
pub struct RunningSumInputs<'a> {
    pub aggregate: AggregateInputs<'a>,
    pub h_table: &'a [Fr],
    pub beta: Fr,
    pub a_over_n: Fr,
}

/// `[phi] = sum_j (c_j - A/N) S_j` (module note) over the suffix bases `S` and their sum
/// `sum_j S_j`, `[h_agg over S]` from `h_agg`'s structure; `None` when a limb is not below
/// `2^limb_bits`.
pub fn running_sum_commitment(
    suffix: &[G1Affine],
    suffix_total: G1Affine,
    inp: &RunningSumInputs<'_>,
    aggregate: &AggregateStructure,
) -> Result<Option<G1Affine>> {
    let agg = &inp.aggregate;
    let n = agg.key.len();
    if suffix.len() < n {
        return Err(Error::Length(format!(
            "{n} rows for {} suffix bases",
            suffix.len()
        )));
    }
    let buckets = 1usize << agg.limb_bits;
    if n < PHI_MIN_ROWS_PER_BUCKET * buckets {
        // Two MSMs of 2^b points cost more than one of N: commit the values.
        return Ok(None);
    }
    // All limbs go into one set of buckets: sum_l sum_t inv_t B_l,t = sum_t inv_t sum_l B_l,t.
    let mut values = Vec::with_capacity(agg.limbs.len() * n);
    for limb in &agg.limbs {
        let column: Option<Vec<u64>> = limb
            .par_iter()
            .map(|x| small(x).filter(|v| (*v as usize) < buckets))
            .collect();
        match column {
            Some(v) => values.extend(v),
            None => return Ok(None),
        }
    }
    let agg_part = aggregate.commitment(suffix, agg)?;
    let mut inv_table: Vec<Fr> = (0..buckets as u64)
        .map(|t| inp.beta - Fr::from(t))
        .collect();
    batch_inverse_in_place(&mut inv_table, "beta - t")?;
    let sums = bucket_sums(&suffix[..n], &values, buckets);
    let mut total: G1Projective = agg_part.into();
    total += msm_full(&sums, &inv_table)?;
    total -= msm_full(suffix, inp.h_table)?;
    total -= suffix_total * inp.a_over_n;
    Ok(Some(total.into_affine()))
}

// --------------------------------------------------------------------------- Python

/// `G1Bases.suffix_sums()` as a function: `suffix_bases(bases) -> (G1Bases, bytes)`, the
/// suffix sums `S_j = sum_(i > j) P_i` and their total `sum_j S_j` (64 bytes).
#[pyfunction]
pub fn suffix_bases<'py>(
    py: Python<'py>,
    bases: &Bound<'py, G1Bases>,
) -> PyResult<(G1Bases, Bound<'py, PyBytes>)> {
    let points = &bases.get().points;
    let (suffix, total) = run(py, || {
        let suffix = suffix_sums(points);
        let total = suffix
            .par_iter()
            .fold(G1Projective::zero, |acc, p| acc + p)
            .reduce(G1Projective::zero, |a, b| a + b)
            .into_affine();
        Ok((suffix, total))
    })?;
    Ok((
        G1Bases { points: suffix },
        PyBytes::new(py, &g1_to_array(&total)),
    ))
}

/// `commit_round2_structured(lagrange, suffix, suffix_total, key, q, s, nonce, limbs,
/// limb_bits, h_table, h_agg, phi, beta, gamma, delta, a_over_n) -> (bytes, bytes, str)`:
/// `[h_agg]` and `[phi]` (64-byte points) computed from the structure where the columns
/// have it, else from the values, and which way each went ("runs"/"values").
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn commit_round2_structured<'py>(
    py: Python<'py>,
    lagrange: &Bound<'py, G1Bases>,
    suffix: &Bound<'py, G1Bases>,
    suffix_total: &Bound<'py, PyAny>,
    key: &Bound<'py, FrVec>,
    q: &Bound<'py, FrVec>,
    s: &Bound<'py, FrVec>,
    nonce: &Bound<'py, FrVec>,
    limbs: Vec<Bound<'py, FrVec>>,
    limb_bits: u32,
    h_table: &Bound<'py, FrVec>,
    h_agg: &Bound<'py, FrVec>,
    phi: &Bound<'py, FrVec>,
    beta: &Bound<'py, PyAny>,
    gamma: &Bound<'py, PyAny>,
    delta: &Bound<'py, PyAny>,
    a_over_n: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>, String)> {
    if limb_bits == 0 || limb_bits > 16 {
        return Err(Error::Domain(format!("limb_bits {limb_bits} is not in 1..=16")).into());
    }
    let total_input = buffers::read(suffix_total, "suffix_total")?;
    let total = crate::points::decode_g1(total_input.as_slice(), &|| "suffix_total".to_owned())?;
    let inputs = RunningSumInputs {
        aggregate: AggregateInputs {
            key: &key.get().values,
            q: &q.get().values,
            s: &s.get().values,
            nonce: &nonce.get().values,
            limbs: limbs.iter().map(|l| l.get().values.as_slice()).collect(),
            limb_bits,
            gamma: scalar_arg(gamma, "gamma")?,
            delta: scalar_arg(delta, "delta")?,
        },
        h_table: &h_table.get().values,
        beta: scalar_arg(beta, "beta")?,
        a_over_n: scalar_arg(a_over_n, "a_over_n")?,
    };
    let (lag, suf) = (&lagrange.get().points, &suffix.get().points);
    let (agg_values, phi_values) = (&h_agg.get().values, &phi.get().values);
    let (agg, phi_point, how) = run(py, || {
        let structure = AggregateStructure::of(&inputs.aggregate);
        let (agg, agg_how) = match &structure {
            Some(st) => (st.commitment(lag, &inputs.aggregate)?, "runs"),
            None => (msm_full(lag, agg_values)?, "values"),
        };
        let phi_by_runs = match &structure {
            Some(st) => running_sum_commitment(suf, total, &inputs, st)?,
            None => None,
        };
        let (phi_point, phi_how) = match phi_by_runs {
            Some(p) => (p, "runs"),
            None => (msm_full(lag, phi_values)?, "values"),
        };
        Ok((agg, phi_point, format!("h_agg: {agg_how}, phi: {phi_how}")))
    })?;
    Ok((
        PyBytes::new(py, &g1_to_array(&agg)),
        PyBytes::new(py, &g1_to_array(&phi_point)),
        how,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ec::AffineRepr;
    use ark_ff::UniformRand;
    use ark_std::rand::{rngs::StdRng, Rng, SeedableRng};

    fn naive(bases: &[G1Affine], c: &[Fr]) -> G1Affine {
        bases
            .iter()
            .zip(c)
            .map(|(p, s)| *p * s)
            .sum::<G1Projective>()
            .into_affine()
    }

    #[test]
    fn suffix_sums_and_buckets_match_naive_sums() {
        let mut rng = StdRng::seed_from_u64(31);
        let bases: Vec<G1Affine> = (0..9000)
            .map(|_| G1Projective::rand(&mut rng).into_affine())
            .collect();
        let suffix = suffix_sums(&bases);
        assert!(suffix[8999].is_zero());
        let tail: G1Projective = bases[5001..].iter().map(|p| p.into_group()).sum();
        assert_eq!(suffix[5000], tail.into_affine());
        let values: Vec<u64> = (0..9000).map(|_| rng.gen_range(0..16)).collect();
        let sums = bucket_sums(&bases, &values, 16);
        let seven: G1Projective = bases
            .iter()
            .zip(&values)
            .filter(|(_, v)| **v == 7)
            .map(|(p, _)| p.into_group())
            .sum();
        assert_eq!(sums[7], seven.into_affine());
    }

    #[test]
    fn limb_and_helper_commitments_by_buckets_equal_the_values() {
        let mut rng = StdRng::seed_from_u64(33);
        let n = 700;
        let bases: Vec<G1Affine> = (0..n)
            .map(|_| G1Projective::rand(&mut rng).into_affine())
            .collect();
        let limb: Vec<u64> = (0..n).map(|_| rng.gen_range(0..256)).collect();
        let sums = bucket_sums(&bases, &limb, 256);
        let beta = Fr::rand(&mut rng);
        let t: Vec<Fr> = (0..256u64).map(Fr::from).collect();
        let inv: Vec<Fr> = t.iter().map(|t| (beta - t).inverse().unwrap()).collect();
        let limb_fr: Vec<Fr> = limb.iter().map(|v| Fr::from(*v)).collect();
        let helper: Vec<Fr> = limb_fr
            .iter()
            .map(|v| (beta - v).inverse().unwrap())
            .collect();
        assert_eq!(msm_full(&sums, &t).unwrap(), naive(&bases, &limb_fr));
        assert_eq!(msm_full(&sums, &inv).unwrap(), naive(&bases, &helper));
    }

    #[test]
    fn aggregate_commitment_by_runs_equals_the_values() {
        let mut rng = StdRng::seed_from_u64(32);
        let n = 512;
        let bases: Vec<G1Affine> = (0..n)
            .map(|_| G1Projective::rand(&mut rng).into_affine())
            .collect();
        let (gamma, delta) = (Fr::rand(&mut rng), Fr::rand(&mut rng));
        let mut key = vec![Fr::zero(); n];
        let (mut q, mut s, mut nonce) = (key.clone(), key.clone(), key.clone());
        let (mut l0, mut l1) = (key.clone(), key.clone());
        for i in 0..400 {
            key[i] = Fr::from(1000 + (i / 100) as u64);
            q[i] = Fr::ONE;
            s[i] = if i % 100 == 0 { Fr::ONE } else { Fr::zero() };
            nonce[i] = Fr::from(77 + i as u64);
            l0[i] = Fr::from(rng.gen_range(0..65536u64));
            l1[i] = Fr::from(rng.gen_range(0..65536u64));
        }
        let inp = AggregateInputs {
            key: &key,
            q: &q,
            s: &s,
            nonce: &nonce,
            limbs: vec![&l0, &l1],
            limb_bits: 16,
            gamma,
            delta,
        };
        let values: Vec<Fr> = (0..n)
            .map(|i| {
                let tokens = l0[i] + l1[i] * Fr::from(65536u64);
                (q[i] * (Fr::ONE + delta * tokens)
                    + s[i] * (delta.square() * nonce[i] + delta.square() * delta))
                    / (gamma - key[i])
            })
            .collect();
        let by_runs = aggregate_commitment(&bases, &inp).unwrap().unwrap();
        assert_eq!(by_runs, naive(&bases, &values));
        // A flag that is not 0/1: no structure, the caller commits the values.
        let mut q2 = q.clone();
        q2[3] = Fr::from(2u64);
        let inp = AggregateInputs { q: &q2, ..inp };
        assert!(aggregate_commitment(&bases, &inp).unwrap().is_none());
    }
}

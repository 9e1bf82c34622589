//! G1 multi-scalar multiplication `sum_i s_i P_i` over bases kept native.
//!
//! Full-width scalars go to `msm_bigints`, which runs one of two MSMs (`MsmAlgorithm`):
//! ours, `crate::pippenger` (signed digits, batch-affine buckets; the default from
//! `PIPPENGER_FROM` points), or arkworks' `VariableBaseMSM::msm_bigint` (it splits the scalars
//! by size and runs signed-digit Pippenger (Pippenger 1976; the bucket method of Bernstein,
//! Doumen, Lange, Oosterwijk 2012) with XYZZ buckets on the wide ones, in parallel on rayon),
//! kept as the oracle and selectable (`ZKMETER_MSM=arkworks`, or the `algorithm` argument of
//! `g1_msm`). Both give the same point. `msm_u1/u8/u16/u32/u64` (arkworks) serve scalars
//! known to fit in that many bits. Bases are decoded and checked once into a `G1Bases`
//! handle (the SRS, the Lagrange basis) and reused by every call.

use std::time::Instant;

use ark_bn254::{Fr, G1Affine, G1Projective};
use ark_ec::{AffineRepr, CurveGroup, PrimeGroup, ScalarMul, VariableBaseMSM};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buffers::{self, new_bytes};
use crate::error::{Error, Result};
use crate::points::{decode_g1s, encode_g1s, g1_to_array, G1_BYTES};
use crate::scalars::{decode_ints, decode_scalars, decode_u64s, run, ScalarInt};

/// Affine G1 points decoded once (EIP-196 words, on-curve checked) for many MSMs.
///
/// `G1Bases.from_affine_bytes(buf)` takes `64 n` bytes: `n` points `x || y`, 32-byte
/// big-endian words, `(0, 0)` for infinity. `to_affine_bytes()` gives them back.
#[pyclass(frozen, module = "zkmeter_native")]
pub struct G1Bases {
    pub points: Vec<G1Affine>,
}

#[pymethods]
impl G1Bases {
    /// Decode and check `64 n` bytes of EIP-196 points (`ValueError` naming the first bad
    /// point).
    #[staticmethod]
    fn from_affine_bytes(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let input = buffers::read(data, "bases")?;
        let bytes = input.as_slice();
        let points = if inline(bytes.len() / G1_BYTES) {
            py.detach(|| decode_g1s(bytes, "bases"))?
        } else {
            run(py, || decode_g1s(bytes, "bases"))?
        };
        Ok(Self { points })
    }

    /// The points as `64 n` bytes of EIP-196 words.
    fn to_affine_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let points = &self.points;
        new_bytes(py, points.len() * G1_BYTES, |out| encode_g1s(points, out))
    }

    /// A new handle holding points `start .. stop` (Python slice bounds, clamped).
    fn slice(&self, start: usize, stop: usize) -> Self {
        let stop = stop.min(self.points.len());
        let start = start.min(stop);
        Self {
            points: self.points[start..stop].to_vec(),
        }
    }

    fn __len__(&self) -> usize {
        self.points.len()
    }

    fn __repr__(&self) -> String {
        format!("G1Bases(n={})", self.points.len())
    }
}

fn check_count(n: usize, bases: usize, what: &str) -> Result<()> {
    if n > bases {
        return Err(Error::Length(format!(
            "{what}: {n} scalars for {bases} bases (at most one scalar per base)"
        )));
    }
    Ok(())
}

/// Which full-width MSM runs (`msm_bigints`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsmAlgorithm {
    /// `crate::pippenger` from `PIPPENGER_FROM` points, arkworks' below (the default).
    Pippenger,
    /// arkworks' `msm_bigint` at every size (the oracle, and the baseline of the benchmarks).
    Arkworks,
}

/// The environment variable selecting the full-width MSM for the whole process.
pub const MSM_ENV: &str = "ZKMETER_MSM";

impl MsmAlgorithm {
    /// `"pippenger"` or `"arkworks"`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "pippenger" => Ok(Self::Pippenger),
            "arkworks" => Ok(Self::Arkworks),
            other => Err(Error::Domain(format!(
                "unknown MSM algorithm {other:?}: expected \"pippenger\" or \"arkworks\""
            ))),
        }
    }

    /// `ZKMETER_MSM` if set (read at every call, so tests and benchmarks can switch), else
    /// `Pippenger`.
    pub fn from_env() -> Result<Self> {
        match std::env::var(MSM_ENV) {
            Ok(name) if !name.is_empty() => {
                Self::parse(&name).map_err(|e| Error::Domain(format!("{MSM_ENV}: {e}")))
            }
            _ => Ok(Self::Pippenger),
        }
    }

    /// The argument if given, else `from_env`.
    pub fn choose(name: Option<&str>) -> Result<Self> {
        name.map_or_else(Self::from_env, Self::parse)
    }
}

/// From this many points `MsmAlgorithm::Pippenger` runs ours (below, batches of few
/// additions share an inversion and arkworks' XYZZ buckets are as fast or faster: measured
/// equal at 2^12, arkworks faster at 2^10).
pub const PIPPENGER_FROM: usize = 1 << 12;

/// `sum_i s_i P_i` over `min(len)` terms with full-width canonical scalars, by `algorithm`.
pub fn msm_bigints(
    bases: &[G1Affine],
    scalars: &[ScalarInt],
    algorithm: MsmAlgorithm,
) -> G1Projective {
    let n = bases.len().min(scalars.len());
    match algorithm {
        MsmAlgorithm::Pippenger if n >= PIPPENGER_FROM => crate::pippenger::msm(bases, scalars),
        _ => G1Projective::msm_bigint(bases, scalars),
    }
}

/// `sum_i s_i P_i` for canonical integers `s_i` over the first `scalars.len()` bases, by
/// the process's MSM (`MsmAlgorithm::from_env`). A few terms (the verifier's linear
/// combinations) are summed directly on the calling thread: arkworks' parallel MSM starts a
/// thread pool per call.
pub fn msm_ints(bases: &[G1Affine], scalars: &[ScalarInt]) -> Result<G1Affine> {
    msm_ints_with(bases, scalars, MsmAlgorithm::from_env()?)
}

/// `msm_ints` by a given algorithm.
pub fn msm_ints_with(
    bases: &[G1Affine],
    scalars: &[ScalarInt],
    algorithm: MsmAlgorithm,
) -> Result<G1Affine> {
    check_count(scalars.len(), bases.len(), "scalars")?;
    if scalars.len() <= DIRECT_BELOW {
        let sum: G1Projective = bases
            .iter()
            .zip(scalars)
            .map(|(p, s)| p.mul_bigint(s))
            .sum();
        return Ok(sum.into_affine());
    }
    Ok(msm_bigints(&bases[..scalars.len()], scalars, algorithm).into_affine())
}

/// Up to this many terms an MSM is a plain sum of scalar multiplications (`msm_ints`).
pub const DIRECT_BELOW: usize = 32;

/// Whether a call on `n` points is small enough to run on the calling thread.
pub fn inline(n: usize) -> bool {
    n < crate::points::SERIAL_BELOW
}

/// `sum_i v_i P_i` for small unsigned `v_i`: arkworks' `msm_u1/u8/u16/u32/u64`, chosen by the
/// largest value (each is documented faster than `msm_bigint` for scalars of that size).
pub fn msm_small(bases: &[G1Affine], values: &[u64]) -> Result<G1Affine> {
    check_count(values.len(), bases.len(), "values")?;
    let bases = &bases[..values.len()];
    let max = values.iter().copied().max().unwrap_or(0);
    let sum = if max <= 1 {
        let bits: Vec<bool> = values.iter().map(|v| *v == 1).collect();
        G1Projective::msm_u1(bases, &bits)
    } else if max <= u64::from(u8::MAX) {
        let v: Vec<u8> = values.iter().map(|v| *v as u8).collect();
        G1Projective::msm_u8(bases, &v)
    } else if max <= u64::from(u16::MAX) {
        let v: Vec<u16> = values.iter().map(|v| *v as u16).collect();
        G1Projective::msm_u16(bases, &v)
    } else if max <= u64::from(u32::MAX) {
        let v: Vec<u32> = values.iter().map(|v| *v as u32).collect();
        G1Projective::msm_u32(bases, &v)
    } else {
        G1Projective::msm_u64(bases, values)
    };
    Ok(sum.into_affine())
}

fn point_bytes<'py>(py: Python<'py>, p: &G1Affine) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &g1_to_array(p))
}

/// `g1_msm(bases, scalars, algorithm=None) -> bytes`: `sum_i s_i P_i` as a 64-byte EIP-196
/// point, over the first `n` bases for `n` scalar words (`32 n` bytes, little-endian
/// canonical); `algorithm` `"pippenger"` or `"arkworks"`, else `ZKMETER_MSM`'s.
#[pyfunction]
#[pyo3(signature = (bases, scalars, algorithm = None))]
pub fn g1_msm<'py>(
    py: Python<'py>,
    bases: &Bound<'py, G1Bases>,
    scalars: &Bound<'py, PyAny>,
    algorithm: Option<&str>,
) -> PyResult<Bound<'py, PyBytes>> {
    let algorithm = MsmAlgorithm::choose(algorithm)?;
    let points = &bases.get().points;
    let input = buffers::read(scalars, "scalars")?;
    let bytes = input.as_slice();
    let n = bytes.len() / crate::scalars::SCALAR_BYTES;
    let sum = if n <= DIRECT_BELOW {
        py.detach(|| {
            msm_ints_with(
                points,
                &crate::scalars::decode_ints_serial(bytes, "scalars")?,
                algorithm,
            )
        })?
    } else {
        run(py, || {
            msm_ints_with(points, &decode_ints(bytes, "scalars")?, algorithm)
        })?
    };
    Ok(point_bytes(py, &sum))
}

/// `g1_msm_u64(bases, values) -> bytes`: `sum_i v_i P_i` for `n` small values given as `8 n`
/// bytes of little-endian `u64` words (e.g. a NumPy `uint64` column viewed as `uint8`).
#[pyfunction]
pub fn g1_msm_u64<'py>(
    py: Python<'py>,
    bases: &Bound<'py, G1Bases>,
    values: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let points = &bases.get().points;
    let input = buffers::read(values, "values")?;
    let bytes = input.as_slice();
    let sum = run(py, || msm_small(points, &decode_u64s(bytes, "values")?))?;
    Ok(point_bytes(py, &sum))
}

fn msm_seconds_with(
    py: Python<'_>,
    bases: &Bound<'_, G1Bases>,
    scalars: &Bound<'_, PyAny>,
    repeats: usize,
    algorithm: MsmAlgorithm,
) -> PyResult<Vec<f64>> {
    let points = &bases.get().points;
    let input = buffers::read(scalars, "scalars")?;
    let bytes = input.as_slice();
    run(py, || {
        let ints = decode_ints(bytes, "scalars")?;
        check_count(ints.len(), points.len(), "scalars")?;
        let sub = &points[..ints.len()];
        Ok((0..repeats)
            .map(|_| {
                let start = Instant::now();
                let sum = msm_bigints(sub, &ints, algorithm);
                let seconds = start.elapsed().as_secs_f64();
                let _ = std::hint::black_box(sum);
                seconds
            })
            .collect())
    })
}

/// `arkworks_msm_seconds(bases, scalars, repeats) -> list[float]`: wall-clock seconds of
/// `repeats` calls of arkworks' `G1Projective::msm_bigint` timed inside Rust, on scalars
/// decoded beforehand: the baseline the binding's overhead is measured against.
#[pyfunction]
pub fn arkworks_msm_seconds(
    py: Python<'_>,
    bases: &Bound<'_, G1Bases>,
    scalars: &Bound<'_, PyAny>,
    repeats: usize,
) -> PyResult<Vec<f64>> {
    msm_seconds_with(py, bases, scalars, repeats, MsmAlgorithm::Arkworks)
}

/// `msm_seconds(bases, scalars, repeats, algorithm) -> list[float]`: the same timing for
/// `"pippenger"` (ours from `PIPPENGER_FROM` points) or `"arkworks"`.
#[pyfunction]
pub fn msm_seconds(
    py: Python<'_>,
    bases: &Bound<'_, G1Bases>,
    scalars: &Bound<'_, PyAny>,
    repeats: usize,
    algorithm: &str,
) -> PyResult<Vec<f64>> {
    let algorithm = MsmAlgorithm::parse(algorithm)?;
    msm_seconds_with(py, bases, scalars, repeats, algorithm)
}

/// `g1_generator_multiples(scalars) -> bytes`: `[s_i G1]` for a scalar buffer, as `64 n`
/// bytes: arkworks' fixed-base `batch_mul` (a window table of the generator, then one
/// batch normalisation). For SRS generation and benchmark bases.
#[pyfunction]
pub fn g1_generator_multiples<'py>(
    py: Python<'py>,
    scalars: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let input = buffers::read(scalars, "scalars")?;
    let bytes = input.as_slice();
    let points = run(py, || {
        let xs: Vec<Fr> = decode_scalars(bytes, "scalars")?;
        Ok(G1Projective::generator().batch_mul(&xs))
    })?;
    let points_ref = &points;
    new_bytes(py, points.len() * G1_BYTES, |out| {
        encode_g1s(points_ref, out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ec::AffineRepr;
    use ark_ff::{PrimeField, UniformRand};
    use ark_std::rand::{rngs::StdRng, Rng, SeedableRng};

    fn naive(bases: &[G1Affine], scalars: &[Fr]) -> G1Affine {
        bases
            .iter()
            .zip(scalars)
            .map(|(p, s)| *p * s)
            .sum::<G1Projective>()
            .into_affine()
    }

    fn random_bases(n: usize, rng: &mut StdRng) -> Vec<G1Affine> {
        let mut points: Vec<G1Affine> = (0..n)
            .map(|_| G1Projective::rand(rng).into_affine())
            .collect();
        if n > 3 {
            points[1] = G1Affine::identity(); // infinity among the bases
            points[3] = points[2]; // a repeated base
        }
        points
    }

    #[test]
    fn msm_ints_matches_naive_sum_including_edge_scalars() {
        let mut rng = StdRng::seed_from_u64(5);
        let bases = random_bases(200, &mut rng);
        let mut xs: Vec<Fr> = (0..200).map(|_| Fr::rand(&mut rng)).collect();
        xs[0] = Fr::from(0u64);
        xs[4] = -Fr::from(1u64); // R - 1
        xs[5] = Fr::from(1u64);
        let ints: Vec<ScalarInt> = xs.iter().map(|x| x.into_bigint()).collect();
        assert_eq!(msm_ints(&bases, &ints).unwrap(), naive(&bases, &xs));
        // A prefix of the bases: 7 scalars use the first 7 points.
        assert_eq!(
            msm_ints(&bases, &ints[..7]).unwrap(),
            naive(&bases[..7], &xs[..7])
        );
        assert!(msm_ints(&bases, &[]).unwrap().is_zero());
        assert!(matches!(
            msm_ints(&bases[..2], &ints[..3]),
            Err(Error::Length(_))
        ));
    }

    #[test]
    fn both_algorithms_give_the_same_point_above_the_threshold() {
        let mut rng = StdRng::seed_from_u64(7);
        let n = PIPPENGER_FROM + 1000;
        let bases = random_bases(n, &mut rng);
        let mut ints: Vec<ScalarInt> = (0..n).map(|_| Fr::rand(&mut rng).into_bigint()).collect();
        ints[0] = Fr::from(0u64).into_bigint();
        ints[2] = (-Fr::from(1u64)).into_bigint();
        let ours = msm_ints_with(&bases, &ints, MsmAlgorithm::Pippenger).unwrap();
        let theirs = msm_ints_with(&bases, &ints, MsmAlgorithm::Arkworks).unwrap();
        assert_eq!(ours, theirs);
        assert_eq!(ours, crate::pippenger::msm(&bases, &ints).into_affine());
        // Negative twin: one scalar changed, another point.
        ints[5] = Fr::from(5u64).into_bigint();
        assert_ne!(
            msm_ints_with(&bases, &ints, MsmAlgorithm::Pippenger).unwrap(),
            ours
        );
    }

    #[test]
    fn algorithm_names() {
        assert_eq!(
            MsmAlgorithm::parse("pippenger").unwrap(),
            MsmAlgorithm::Pippenger
        );
        assert_eq!(
            MsmAlgorithm::parse("arkworks").unwrap(),
            MsmAlgorithm::Arkworks
        );
        assert!(matches!(MsmAlgorithm::parse("fast"), Err(Error::Domain(_))));
        assert_eq!(
            MsmAlgorithm::choose(Some("arkworks")).unwrap(),
            MsmAlgorithm::Arkworks
        );
    }

    #[test]
    fn msm_small_matches_naive_sum_at_every_width() {
        let mut rng = StdRng::seed_from_u64(6);
        let bases = random_bases(300, &mut rng);
        for bits in [1u32, 8, 16, 32, 64] {
            let values: Vec<u64> = (0..300)
                .map(|_| {
                    let v: u64 = rng.gen();
                    if bits == 64 {
                        v
                    } else {
                        v % (1u64 << bits)
                    }
                })
                .collect();
            let xs: Vec<Fr> = values.iter().map(|v| Fr::from(*v)).collect();
            assert_eq!(
                msm_small(&bases, &values).unwrap(),
                naive(&bases, &xs),
                "{bits} bits"
            );
        }
        assert!(msm_small(&bases, &[0, 0, 0]).unwrap().is_zero());
    }
}

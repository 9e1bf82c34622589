//! Prepared snarkjs powers of tau (`.ptau`) from known development secrets, by fixed-base
//! multiplications: no G1 or G2 FFT.
//!
//! `snarkjs powersoftau prepare phase2` computes the Lagrange bases of a `.ptau` file by
//! inverse FFTs over G1 and G2, for every domain up to the file's, about `p 2^p` group
//! operations per section (38 min at `2^16` on our machines). When `tau`, `alpha` and `beta`
//! are known, every point of the file is `s·G` for a scalar `s` computed in `Fr`, so the
//! file costs one fixed-base multiplication per point: arkworks' `BatchMulPreprocessing`,
//! one table of multiples of the generator per group, then about `254 / w` mixed additions
//! per point for the table's window `w`.
//!
//! Layout (iden3 binfileutils; snarkjs `powersoftau_new.js`, `powersoftau_preparephase2.js`):
//! magic `ptau`, u32 version 1, u32 section count 11, then sections `(u32 id, u64 length,
//! payload)`, every integer little-endian. With `N = 2^power`:
//!
//! * 1: u32 `n8` = 32, the base-field prime `P` (32 bytes), u32 `power`, u32
//!   `ceremonyPower` = `power`;
//! * 2: `[tau^i]_1`, `i < 2N - 1`; 3: `[tau^i]_2`, `i < N`;
//! * 4: `[alpha tau^i]_1`, 5: `[beta tau^i]_1`, `i < N`; 6: `[beta]_2`;
//! * 7: u32 0, no contributions (what `powersoftau new` writes);
//! * 12: for `m = 2^q`, `q = 0 ..= power + 1` in turn, `[L^m_i(tau)]_1`, `i < m`;
//! * 13: `[L^m_i(tau)]_2`, 14: `[alpha L^m_i(tau)]_1`, 15: `[beta L^m_i(tau)]_1`, for
//!   `q = 0 ..= power`.
//!
//! `L^m_i` is the Lagrange polynomial of `H_m = <omega_m>` (`L^m_i(omega_m^j) = [i = j]`;
//! the roots of unity of docs/PROTOCOL.md, which are snarkjs' own):
//! `L^m_i(tau) = omega^i (tau^m - 1) / (m (tau - omega^i))`, or `[omega^i = tau]` when `tau`
//! lies in `H_m` (`setup::lagrange_scalars`; only a test uses such a tau: `tau = alpha =
//! beta = 1` is what `powersoftau new` writes, so our file then equals snarkjs' `new` +
//! `prepare phase2` byte for byte). snarkjs makes the last block of section 12 (`m = 2N`) from the
//! `2N - 1` points of section 2 and a point at infinity for `[tau^(2N-1)]_1`, so that block
//! is the inverse DFT of `(1, tau, .., tau^(2N-2), 0)`: `L^m_i(tau) - omega^i tau^(m-1) / m`
//! (the term `j = m - 1` of `L^m_i(tau) = (1/m) sum_j omega^(-ij) tau^j`, as
//! `omega^(-i(m-1)) = omega^i`).
//!
//! Points are affine, each base-field coordinate 32 bytes little-endian in Montgomery form
//! `x 2^256 mod P` (arkworks' own representation, as `setup::decode_ptau_g1s` reads it),
//! G2 coordinates `c0` (real part) then `c1`; all zeros is infinity.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use ark_bn254::{Fq, Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::scalar_mul::BatchMulPreprocessing;
use ark_ec::{AffineRepr, PrimeGroup, ScalarMul};
use ark_ff::{BigInteger, Field, PrimeField, Zero};
use ark_poly::EvaluationDomain;
use pyo3::prelude::*;
use rayon::prelude::*;

use crate::buffers;
use crate::column::powers;
use crate::error::{Error, Result};
use crate::ntt::{domain, MAX_K};
use crate::scalars::{decode_scalar, run};
use crate::setup::lagrange_scalars;

/// The `.ptau` version snarkjs writes and reads.
pub const PTAU_VERSION: u32 = 1;
/// A G1 point in a `.ptau` file: `x, y`, 32 bytes each.
pub const PTAU_G1_BYTES: usize = 64;
/// A G2 point: `x.c0, x.c1, y.c0, y.c1`, 32 bytes each.
pub const PTAU_G2_BYTES: usize = 128;
/// Section 12 holds the domain `2^(power+1)`, which must exist in `Fr`.
pub const MAX_PTAU_POWER: u32 = MAX_K - 1;
/// Points multiplied, encoded and written at a time (bounds the memory of the points).
const CHUNK: usize = 1 << 16;

/// The development secrets the file is made from: whoever knows them can forge proofs.
#[derive(Clone, Copy, Debug)]
pub struct Secrets {
    pub tau: Fr,
    pub alpha: Fr,
    pub beta: Fr,
}

/// `(id, payload length)` of every section, in file order.
pub fn section_lengths(power: u32) -> [(u32, u64); 11] {
    let n = 1u64 << power;
    let g1 = PTAU_G1_BYTES as u64;
    let g2 = PTAU_G2_BYTES as u64;
    [
        (1, 4 + 32 + 4 + 4),
        (2, (2 * n - 1) * g1),
        (3, n * g2),
        (4, n * g1),
        (5, n * g1),
        (6, g2),
        (7, 4),
        (12, (4 * n - 1) * g1), // domains 2^0 .. 2^(power+1)
        (13, (2 * n - 1) * g2), // domains 2^0 .. 2^power
        (14, (2 * n - 1) * g1),
        (15, (2 * n - 1) * g1),
    ]
}

/// The size of the whole file: magic, version, count, and `12 + length` per section.
pub fn file_size(power: u32) -> u64 {
    12 + section_lengths(power)
        .iter()
        .map(|(_, len)| 12 + len)
        .sum::<u64>()
}

fn check(power: u32, s: &Secrets) -> Result<()> {
    if !(1..=MAX_PTAU_POWER).contains(&power) {
        return Err(Error::Domain(format!(
            "power must be in 1..={MAX_PTAU_POWER}, got {power}"
        )));
    }
    for (name, x) in [("tau", s.tau), ("alpha", s.alpha), ("beta", s.beta)] {
        if x.is_zero() {
            return Err(Error::Domain(format!("{name} must not be zero")));
        }
    }
    Ok(())
}

fn encode_fq(x: &Fq, out: &mut [u8]) {
    // `x.0` is the Montgomery form x 2^256 mod P, four 64-bit limbs, least significant first.
    out.copy_from_slice(&x.0.to_bytes_le());
}

fn encode_ptau_g1(p: &G1Affine, out: &mut [u8]) {
    match p.xy() {
        None => out.fill(0),
        Some((x, y)) => {
            encode_fq(&x, &mut out[..32]);
            encode_fq(&y, &mut out[32..]);
        }
    }
}

fn encode_ptau_g2(p: &G2Affine, out: &mut [u8]) {
    match p.xy() {
        None => out.fill(0),
        Some((x, y)) => {
            encode_fq(&x.c0, &mut out[..32]);
            encode_fq(&x.c1, &mut out[32..64]);
            encode_fq(&y.c0, &mut out[64..96]);
            encode_fq(&y.c1, &mut out[96..]);
        }
    }
}

/// A writer that counts its bytes (to check each section against its declared length).
struct Counted<W: Write> {
    out: W,
    written: u64,
}

impl<W: Write> Counted<W> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| Error::Io(format!("cannot write the ptau file: {e}")))?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// `s_i·G` for each scalar, encoded by `encode` in `size` bytes, chunk by chunk.
    fn points<G>(
        &mut self,
        table: &BatchMulPreprocessing<G>,
        scalars: &[Fr],
        size: usize,
        encode: fn(&G::MulBase, &mut [u8]),
    ) -> Result<()>
    where
        G: ScalarMul<ScalarField = Fr>,
    {
        let mut buf = vec![0u8; scalars.len().min(CHUNK) * size];
        for chunk in scalars.chunks(CHUNK) {
            let points = table.batch_mul(chunk);
            let bytes = &mut buf[..chunk.len() * size];
            bytes
                .par_chunks_mut(size)
                .zip(points.par_iter())
                .for_each(|(out, p)| encode(p, out));
            self.put(bytes)?;
        }
        Ok(())
    }
}

fn scaled(c: Fr, xs: &[Fr]) -> Vec<Fr> {
    xs.par_iter().map(|x| c * x).collect()
}

/// The scalars of section 12's block for `m = 2^q`: `L^m_i(tau)`, less `omega^i tau^(m-1)/m`
/// for the last block (`q = power + 1`, see the module note).
fn lagrange_block(tau: Fr, q: u32, last: bool) -> Result<Vec<Fr>> {
    let mut l = lagrange_scalars(tau, q)?;
    if last {
        let m = l.len();
        let dom = domain(q)?;
        let m_inv = Fr::from(m as u64)
            .inverse()
            .ok_or_else(|| Error::ZeroInverse("the domain size".into()))?;
        let c = tau.pow([(m - 1) as u64]) * m_inv;
        let omegas = powers(dom.group_gen(), m);
        l.par_iter_mut()
            .zip(&omegas)
            .for_each(|(x, w)| *x -= *w * c);
    }
    Ok(l)
}

/// Write a prepared `.ptau` file of `2^power` (see the module note) to `out`; returns the
/// number of bytes written (`file_size(power)`). Refuses a power outside
/// `1..=MAX_PTAU_POWER` and a zero secret.
pub fn write_prepared_ptau<W: Write>(out: W, power: u32, s: &Secrets) -> Result<u64> {
    check(power, s)?;
    let n = 1usize << power;
    // One table per group, its window sized for all of that group's multiplications.
    let g1_count = (2 * n - 1) + 2 * n + (4 * n - 1) + 2 * (2 * n - 1);
    let g2_count = n + 1 + (2 * n - 1);
    let g1 = BatchMulPreprocessing::new(G1Projective::generator(), g1_count);
    let g2 = BatchMulPreprocessing::new(G2Projective::generator(), g2_count);
    let taus = powers(s.tau, 2 * n - 1);

    let mut w = Counted { out, written: 0 };
    w.put(b"ptau")?;
    w.put(&PTAU_VERSION.to_le_bytes())?;
    let lengths = section_lengths(power);
    w.put(&(lengths.len() as u32).to_le_bytes())?;
    for (id, len) in lengths {
        w.put(&id.to_le_bytes())?;
        w.put(&len.to_le_bytes())?;
        let start = w.written;
        match id {
            1 => {
                w.put(&32u32.to_le_bytes())?;
                w.put(&Fq::MODULUS.to_bytes_le())?;
                w.put(&power.to_le_bytes())?;
                w.put(&power.to_le_bytes())?;
            }
            2 => w.points(&g1, &taus, PTAU_G1_BYTES, encode_ptau_g1)?,
            3 => w.points(&g2, &taus[..n], PTAU_G2_BYTES, encode_ptau_g2)?,
            4 => w.points(
                &g1,
                &scaled(s.alpha, &taus[..n]),
                PTAU_G1_BYTES,
                encode_ptau_g1,
            )?,
            5 => w.points(
                &g1,
                &scaled(s.beta, &taus[..n]),
                PTAU_G1_BYTES,
                encode_ptau_g1,
            )?,
            6 => w.points(&g2, &[s.beta], PTAU_G2_BYTES, encode_ptau_g2)?,
            7 => w.put(&0u32.to_le_bytes())?,
            12 => {
                for q in 0..=power + 1 {
                    let l = lagrange_block(s.tau, q, q == power + 1)?;
                    w.points(&g1, &l, PTAU_G1_BYTES, encode_ptau_g1)?;
                }
            }
            _ => {
                for q in 0..=power {
                    let l = lagrange_scalars(s.tau, q)?;
                    match id {
                        13 => w.points(&g2, &l, PTAU_G2_BYTES, encode_ptau_g2)?,
                        14 => w.points(&g1, &scaled(s.alpha, &l), PTAU_G1_BYTES, encode_ptau_g1)?,
                        _ => w.points(&g1, &scaled(s.beta, &l), PTAU_G1_BYTES, encode_ptau_g1)?,
                    }
                }
            }
        }
        if w.written - start != len {
            return Err(Error::Length(format!(
                "section {id}: wrote {} bytes, declared {len}",
                w.written - start
            )));
        }
    }
    w.out
        .flush()
        .map_err(|e| Error::Io(format!("cannot write the ptau file: {e}")))?;
    Ok(w.written)
}

/// `write_prepared_ptau` to a new file at `path` (created or truncated).
pub fn write_prepared_ptau_file(path: &Path, power: u32, s: &Secrets) -> Result<u64> {
    let named = |m: String| Error::Io(format!("{}: {m}", path.display()));
    check(power, s)?;
    let file = File::create(path).map_err(|e| named(e.to_string()))?;
    write_prepared_ptau(BufWriter::with_capacity(1 << 20, file), power, s).map_err(|e| match e {
        Error::Io(m) => named(m),
        other => other,
    })
}

/// `write_prepared_ptau(path, power, tau, alpha, beta) -> int`: a prepared snarkjs `.ptau`
/// file of `2^power` from known secrets (32-byte little-endian scalar words), its size in
/// bytes. `ValueError` for a power outside `1..=27` or a zero secret; `OSError` if the file
/// cannot be written.
#[pyfunction]
#[pyo3(name = "write_prepared_ptau")]
pub fn py_write_prepared_ptau(
    py: Python<'_>,
    path: PathBuf,
    power: i64,
    tau: &Bound<'_, PyAny>,
    alpha: &Bound<'_, PyAny>,
    beta: &Bound<'_, PyAny>,
) -> PyResult<u64> {
    let power = u32::try_from(power).map_err(|_| {
        Error::Domain(format!(
            "power must be in 1..={MAX_PTAU_POWER}, got {power}"
        ))
    })?;
    let (t, a, b) = (
        buffers::read(tau, "tau")?,
        buffers::read(alpha, "alpha")?,
        buffers::read(beta, "beta")?,
    );
    let (t, a, b) = (t.as_slice(), a.as_slice(), b.as_slice());
    run(py, || {
        let secrets = Secrets {
            tau: decode_scalar(t, "tau")?,
            alpha: decode_scalar(a, "alpha")?,
            beta: decode_scalar(b, "beta")?,
        };
        write_prepared_ptau_file(&path, power, &secrets)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::g1fft::lagrange_from_monomial;
    use crate::setup::{decode_ptau_g1s, powers_of_tau};
    use ark_ec::CurveGroup;
    use ark_ff::UniformRand;
    use ark_std::rand::{rngs::StdRng, SeedableRng};

    const POWER: u32 = 4;

    fn secrets(seed: u64) -> Secrets {
        let mut rng = StdRng::seed_from_u64(seed);
        Secrets {
            tau: Fr::rand(&mut rng),
            alpha: Fr::rand(&mut rng),
            beta: Fr::rand(&mut rng),
        }
    }

    /// The file's sections by id, after checking magic, version and the section table.
    fn sections(file: &[u8]) -> Vec<(u32, &[u8])> {
        assert_eq!(&file[..4], b"ptau");
        let u32_at = |o: usize| u32::from_le_bytes(file[o..o + 4].try_into().unwrap());
        assert_eq!(u32_at(4), PTAU_VERSION);
        let mut out = Vec::new();
        let mut pos = 12;
        for _ in 0..u32_at(8) {
            let id = u32_at(pos);
            let len = u64::from_le_bytes(file[pos + 4..pos + 12].try_into().unwrap()) as usize;
            out.push((id, &file[pos + 12..pos + 12 + len]));
            pos += 12 + len;
        }
        assert_eq!(pos, file.len());
        out
    }

    fn section(file: &[u8], id: u32) -> &[u8] {
        sections(file)
            .into_iter()
            .find(|(i, _)| *i == id)
            .unwrap()
            .1
    }

    fn montgomery(bytes: &[u8]) -> Fq {
        let mut limbs = [0u64; 4];
        for (k, l) in limbs.iter_mut().enumerate() {
            *l = u64::from_le_bytes(bytes[8 * k..8 * k + 8].try_into().unwrap());
        }
        Fq::new_unchecked(ark_ff::BigInt::new(limbs))
    }

    fn decode_g2s(data: &[u8]) -> Vec<G2Affine> {
        data.chunks_exact(PTAU_G2_BYTES)
            .map(|c| {
                let x = ark_bn254::Fq2::new(montgomery(&c[..32]), montgomery(&c[32..64]));
                let y = ark_bn254::Fq2::new(montgomery(&c[64..96]), montgomery(&c[96..]));
                let p = G2Affine::new_unchecked(x, y);
                assert!(p.is_on_curve() && p.is_in_correct_subgroup_assuming_on_curve());
                p
            })
            .collect()
    }

    fn write(power: u32, s: &Secrets) -> Vec<u8> {
        let mut file = Vec::new();
        let size = write_prepared_ptau(&mut file, power, s).unwrap();
        assert_eq!(size, file.len() as u64);
        assert_eq!(size, file_size(power));
        file
    }

    /// The inverse DFT over G2 of `points`, by arkworks' radix-2 domain (what snarkjs does).
    fn ifft_g2(points: &[G2Affine], k: u32) -> Vec<G2Affine> {
        let mut v: Vec<G2Projective> = points.iter().map(|p| p.into_group()).collect();
        domain(k).unwrap().ifft_in_place(&mut v);
        G2Projective::normalize_batch(&v)
    }

    #[test]
    fn header_and_section_table_are_snarkjs_layout() {
        let file = write(POWER, &secrets(1));
        let ids: Vec<u32> = sections(&file).iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, vec![1, 2, 3, 4, 5, 6, 7, 12, 13, 14, 15]);
        let header = section(&file, 1);
        assert_eq!(&header[..4], &32u32.to_le_bytes());
        assert_eq!(&header[4..36], &Fq::MODULUS.to_bytes_le()[..]);
        assert_eq!(&header[36..40], &POWER.to_le_bytes());
        assert_eq!(&header[40..], &POWER.to_le_bytes());
        assert_eq!(section(&file, 7), &[0u8; 4]);
    }

    #[test]
    fn powers_are_the_secrets_times_the_generators() {
        let s = secrets(2);
        let file = write(POWER, &s);
        let n = 1usize << POWER;
        let tau_g1 = decode_ptau_g1s(section(&file, 2), "tauG1").unwrap();
        assert_eq!(tau_g1, powers_of_tau(s.tau, 2 * n - 1));
        let g1 = G1Projective::generator();
        let g2 = G2Projective::generator();
        let alpha = decode_ptau_g1s(section(&file, 4), "alphaTauG1").unwrap();
        let beta = decode_ptau_g1s(section(&file, 5), "betaTauG1").unwrap();
        let tau_g2 = decode_g2s(section(&file, 3));
        for i in 0..n {
            let t = s.tau.pow([i as u64]);
            assert_eq!(alpha[i], (g1 * (s.alpha * t)).into_affine());
            assert_eq!(beta[i], (g1 * (s.beta * t)).into_affine());
            assert_eq!(tau_g2[i], (g2 * t).into_affine());
        }
        assert_eq!(
            decode_g2s(section(&file, 6)),
            vec![(g2 * s.beta).into_affine()]
        );
    }

    /// Sections 12..15 equal what `prepare phase2` computes: the inverse DFT of each
    /// domain's first powers (with a point at infinity for the missing last power of
    /// section 12's largest domain).
    #[test]
    fn lagrange_sections_equal_the_inverse_dft_of_the_powers() {
        let s = secrets(3);
        let file = write(POWER, &s);
        let n = 1usize << POWER;
        let tau_g1 = decode_ptau_g1s(section(&file, 2), "tauG1").unwrap();
        let tau_g2 = decode_g2s(section(&file, 3));
        let alpha = decode_ptau_g1s(section(&file, 4), "alphaTauG1").unwrap();
        let beta = decode_ptau_g1s(section(&file, 5), "betaTauG1").unwrap();
        let l12 = decode_ptau_g1s(section(&file, 12), "lagrange").unwrap();
        let l13 = decode_g2s(section(&file, 13));
        let l14 = decode_ptau_g1s(section(&file, 14), "alpha lagrange").unwrap();
        let l15 = decode_ptau_g1s(section(&file, 15), "beta lagrange").unwrap();
        assert_eq!(l12.len(), 4 * n - 1);
        for q in 0..=POWER {
            let (m, at) = (1usize << q, (1usize << q) - 1);
            let block = at..at + m;
            assert_eq!(
                l12[block.clone()],
                lagrange_from_monomial(&tau_g1, q).unwrap()[..]
            );
            assert_eq!(l13[block.clone()], ifft_g2(&tau_g2[..m], q)[..]);
            assert_eq!(
                l14[block.clone()],
                lagrange_from_monomial(&alpha, q).unwrap()[..]
            );
            assert_eq!(l15[block], lagrange_from_monomial(&beta, q).unwrap()[..]);
        }
        let mut padded = tau_g1.clone();
        padded.push(G1Affine::identity());
        let last = lagrange_from_monomial(&padded, POWER + 1).unwrap();
        assert_eq!(l12[2 * n - 1..], last[..]);
        // ... which differs from the true Lagrange basis of that domain.
        let true_basis = crate::setup::lagrange_from_tau(s.tau, POWER + 1).unwrap();
        assert_ne!(l12[2 * n - 1], true_basis[0]);
    }

    #[test]
    fn refuses_bad_powers_and_secrets() {
        let good = secrets(4);
        let mut sink = Vec::new();
        for power in [0, MAX_PTAU_POWER + 1] {
            let r = write_prepared_ptau(&mut sink, power, &good);
            assert!(matches!(r, Err(Error::Domain(_))), "power {power}");
        }
        for which in 0..3 {
            let mut s = good;
            *[&mut s.tau, &mut s.alpha, &mut s.beta][which] = Fr::zero();
            let r = write_prepared_ptau(&mut sink, POWER, &s);
            assert!(matches!(r, Err(Error::Domain(_))), "zero secret {which}");
        }
        assert!(sink.is_empty());
    }

    /// `tau` in `H_m` (`tau^m = 1`): the Lagrange values are the unit vector `[omega^i =
    /// tau]`, still the inverse DFT of the powers, as snarkjs computes them.
    #[test]
    fn tau_in_a_domain_gives_unit_vectors() {
        let w = domain(2).unwrap().group_gen(); // in H_4, H_8, ...
        let s = Secrets {
            tau: w,
            ..secrets(6)
        };
        let file = write(2, &s);
        let tau_g1 = decode_ptau_g1s(section(&file, 2), "tauG1").unwrap();
        let l12 = decode_ptau_g1s(section(&file, 12), "lagrange").unwrap();
        for q in 0..=2u32 {
            let at = (1usize << q) - 1;
            let block = &l12[at..at + (1 << q)];
            assert_eq!(block, &lagrange_from_monomial(&tau_g1, q).unwrap()[..]);
        }
        // H_4: L_1(omega_4) = 1, the others 0.
        let g = G1Affine::generator();
        let zero = G1Affine::identity();
        assert_eq!(&l12[3..7], &[zero, g, zero, zero]);
        let mut padded = tau_g1.clone();
        padded.push(zero);
        assert_eq!(&l12[7..], &lagrange_from_monomial(&padded, 3).unwrap()[..]);
    }

    #[test]
    fn unwritable_path_is_an_io_error_naming_it() {
        let path = Path::new("/nonexistent-dir/x.ptau");
        let err = write_prepared_ptau_file(path, 1, &secrets(5)).unwrap_err();
        assert!(matches!(&err, Error::Io(m) if m.contains("/nonexistent-dir/x.ptau")));
    }
}

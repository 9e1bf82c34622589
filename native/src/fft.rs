//! Our radix-2 FFT over Fr: the transforms of `ntt` without arkworks' per-call overhead.
//!
//! Same maps as arkworks' `Radix2EvaluationDomain::{fft,ifft}_in_place` (which stays the
//! oracle in the tests here and the baseline in `benches/bench_native.py`), computed as:
//!
//! * a decimation-in-frequency (Gentleman–Sande) pass, natural order in, bit-reversed order
//!   out, then the bit-reversal permutation (Cooley and Tukey 1965; Gentleman and Sande 1966);
//! * **depth first**: after the top butterfly layer of a block the two halves are transformed
//!   one after the other (or on two threads), so once a block fits the core's L2 cache every
//!   remaining layer runs from it, where a layer-by-layer FFT streams the whole array through
//!   memory once per layer (Frigo et al. 1999, "cache-oblivious algorithms");
//! * **tabled twiddles**: `w[h + t] = omega_(2h)^t` for every half-span `h` and `t < h`, one
//!   contiguous run per layer, built once per domain size and direction and kept for the
//!   process (`n` scalars: 32 MiB at `2^20`); arkworks recomputes its roots at every call;
//! * the `t = 0` butterfly of every block has twiddle 1 and skips its multiplication.
//!
//! `omega` is the domain's generator as arkworks has it (`ntt::domain(k).group_gen()`), so
//! the results are the same field elements, checked against arkworks for every `k <= 12`.

use std::sync::{Arc, Mutex};

use ark_bn254::Fr;
use ark_ff::{Field, One};
use ark_poly::EvaluationDomain;
use rayon::prelude::*;

use crate::error::Result;
use crate::ntt::domain;

/// Blocks of at least this many scalars split their butterfly layer over threads, and their
/// halves go to `rayon::join`; below it a block is one thread's.
const PARALLEL_FROM: usize = 1 << 13;
/// Blocks up to this size run their layers one after the other (they sit in L1 / L2).
const LEAF: usize = 1 << 10;
/// Butterflies per task in a parallel layer.
const LAYER_CHUNK: usize = 1 << 11;

/// Direction of a transform: `Forward` uses `omega`, `Inverse` uses `omega^-1` (and the
/// caller scales by `n^-1`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Direction {
    Forward,
    Inverse,
}

type Table = Arc<Vec<Fr>>;

/// Twiddle tables by `(k, direction)`, built on first use.
static TABLES: Mutex<Vec<(u32, Direction, Table)>> = Mutex::new(Vec::new());

/// `w[h + t] = root_(2h)^t` for `h = 1, 2, 4, ..., n/2` and `t < h`, where `root_(2h)` is
/// `omega^(n/2h)` (`Forward`) or its inverse; `w[0]` is unused.
fn twiddles(k: u32, direction: Direction) -> Result<Table> {
    let mut tables = TABLES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, _, table)) = tables
        .iter()
        .find(|(tk, td, _)| *tk == k && *td == direction)
    {
        return Ok(table.clone());
    }
    let dom = domain(k)?;
    let n = dom.size();
    let root = match direction {
        Direction::Forward => dom.group_gen(),
        Direction::Inverse => dom.group_gen_inv(),
    };
    let mut w = vec![Fr::one(); n.max(1)];
    if n >= 2 {
        // The top layer (h = n/2): root^t; each lower layer takes every other element of the
        // one above it, since root_(2h)^t = root_(4h)^(2t).
        let top = crate::column::powers(root, n / 2);
        w[n / 2..].copy_from_slice(&top);
        let mut h = n / 4;
        while h >= 1 {
            for t in 0..h {
                w[h + t] = w[2 * h + 2 * t];
            }
            h /= 2;
        }
    }
    let table = Arc::new(w);
    tables.push((k, direction, table.clone()));
    Ok(table)
}

/// One decimation-in-frequency layer on a block `lo ++ hi` of half-span `h = lo.len()`:
/// `(a, b) <- (a + b, (a - b) w_t)`.
#[inline]
fn butterflies(lo: &mut [Fr], hi: &mut [Fr], w: &[Fr], first: bool) {
    let start = if first {
        let (a, b) = (lo[0], hi[0]);
        lo[0] = a + b;
        hi[0] = a - b;
        1
    } else {
        0
    };
    for ((a, b), w) in lo[start..]
        .iter_mut()
        .zip(hi[start..].iter_mut())
        .zip(&w[start..])
    {
        let sum = *a + *b;
        *b = (*a - *b) * w;
        *a = sum;
    }
}

/// Decimation in frequency over `x` (a power of two long), depth first: natural order in,
/// bit-reversed out.
fn dif(x: &mut [Fr], w: &[Fr]) {
    let n = x.len();
    if n <= LEAF {
        dif_leaf(x, w);
        return;
    }
    let h = n / 2;
    let tw = &w[h..n];
    let (lo, hi) = x.split_at_mut(h);
    if n >= PARALLEL_FROM {
        lo.par_chunks_mut(LAYER_CHUNK)
            .zip(hi.par_chunks_mut(LAYER_CHUNK))
            .zip(tw.par_chunks(LAYER_CHUNK))
            .enumerate()
            .for_each(|(c, ((lo, hi), tw))| butterflies(lo, hi, tw, c == 0));
        rayon::join(|| dif(lo, w), || dif(hi, w));
    } else {
        butterflies(lo, hi, tw, true);
        dif(lo, w);
        dif(hi, w);
    }
}

/// A small block's layers one after the other; the last two (half-spans 2 and 1, twiddles
/// `1, omega_4` and `1`) as one radix-4 step per group of four, since a call per block of
/// two or four would cost more than its butterflies.
fn dif_leaf(x: &mut [Fr], w: &[Fr]) {
    let n = x.len();
    let mut h = n / 2;
    while h >= 4 {
        let tw = &w[h..2 * h];
        for block in x.chunks_exact_mut(2 * h) {
            let (lo, hi) = block.split_at_mut(h);
            butterflies(lo, hi, tw, true);
        }
        h /= 2;
    }
    if n >= 4 {
        let omega_4 = w[3];
        for g in x.chunks_exact_mut(4) {
            // half-span 2: (g0, g2) with 1, (g1, g3) with omega_4
            let (a0, a1, a2, a3) = (g[0], g[1], g[2], g[3]);
            let (b0, b2) = (a0 + a2, a0 - a2);
            let (b1, b3) = (a1 + a3, (a1 - a3) * omega_4);
            // half-span 1: (b0, b1) and (b2, b3), twiddle 1
            g[0] = b0 + b1;
            g[1] = b0 - b1;
            g[2] = b2 + b3;
            g[3] = b2 - b3;
        }
    } else if n == 2 {
        let (a, b) = (x[0], x[1]);
        x[0] = a + b;
        x[1] = a - b;
    }
}

/// `x[i] <-> x[rev(i)]` for the `k`-bit reversal `rev`.
fn bit_reverse_permutation(x: &mut [Fr]) {
    let n = x.len();
    if n <= 2 {
        return;
    }
    let shift = usize::BITS - n.trailing_zeros();
    for i in 0..n {
        let j = i.reverse_bits() >> shift;
        if i < j {
            x.swap(i, j);
        }
    }
}

/// `x <- [p(root^i)]` for `p(X) = sum_j x_j X^j`, `root` = `omega` or `omega^-1` of the domain
/// of size `x.len() = 2^k` (no `n^-1` scaling).
pub fn transform_in_place(x: &mut [Fr], direction: Direction) -> Result<()> {
    let n = x.len();
    if n <= 1 {
        return Ok(());
    }
    let k = n.trailing_zeros();
    if n != 1 << k {
        return Err(crate::error::Error::Length(format!(
            "an FFT needs a power-of-two length, got {n}"
        )));
    }
    let w = twiddles(k, direction)?;
    dif(x, &w);
    bit_reverse_permutation(x);
    Ok(())
}

/// `[p(omega^i) for i < n]`: the forward transform.
pub fn fft_in_place(x: &mut [Fr]) -> Result<()> {
    transform_in_place(x, Direction::Forward)
}

/// The inverse transform, `n^-1 sum_i v_i omega^(-ij)`, optionally times `scale` too (the
/// callers fold a constant factor into the `n^-1` pass).
pub fn ifft_in_place_scaled(x: &mut [Fr], scale: Fr) -> Result<()> {
    transform_in_place(x, Direction::Inverse)?;
    let n = x.len() as u64;
    let factor = scale
        * Fr::from(n)
            .inverse()
            .expect("a power of two is invertible in Fr");
    x.par_iter_mut().for_each(|v| *v *= factor);
    Ok(())
}

/// The inverse transform (`n^-1` included).
pub fn ifft_in_place(x: &mut [Fr]) -> Result<()> {
    ifft_in_place_scaled(x, Fr::one())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::UniformRand;
    use ark_std::rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn matches_arkworks_in_both_directions() {
        let mut rng = StdRng::seed_from_u64(11);
        for k in 0..=12u32 {
            let n = 1usize << k;
            let dom = domain(k).unwrap();
            let x: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
            let mut ours = x.clone();
            fft_in_place(&mut ours).unwrap();
            let mut theirs = x.clone();
            dom.fft_in_place(&mut theirs);
            assert_eq!(ours, theirs, "fft k = {k}");
            let mut ours = x.clone();
            ifft_in_place(&mut ours).unwrap();
            let mut theirs = x.clone();
            dom.ifft_in_place(&mut theirs);
            assert_eq!(ours, theirs, "ifft k = {k}");
            let mut back = ours.clone();
            fft_in_place(&mut back).unwrap();
            assert_eq!(back, x, "round trip k = {k}");
        }
    }

    #[test]
    fn large_domain_matches_arkworks() {
        // Above PARALLEL_FROM, so the threaded layers and rayon::join run.
        let mut rng = StdRng::seed_from_u64(12);
        let k = 15u32;
        let x: Vec<Fr> = (0..1usize << k).map(|_| Fr::rand(&mut rng)).collect();
        let mut ours = x.clone();
        crate::pool::install(|| fft_in_place(&mut ours).unwrap()).unwrap();
        let mut theirs = x;
        domain(k).unwrap().fft_in_place(&mut theirs);
        assert_eq!(ours, theirs);
    }

    #[test]
    fn scaled_inverse_and_bad_lengths() {
        let mut rng = StdRng::seed_from_u64(13);
        let x: Vec<Fr> = (0..64).map(|_| Fr::rand(&mut rng)).collect();
        let s = Fr::from(7u64);
        let mut scaled = x.clone();
        ifft_in_place_scaled(&mut scaled, s).unwrap();
        let mut plain = x;
        ifft_in_place(&mut plain).unwrap();
        assert!(scaled.iter().zip(&plain).all(|(a, b)| *a == *b * s));
        let mut three = vec![Fr::one(); 3];
        assert!(fft_in_place(&mut three).is_err());
    }
}

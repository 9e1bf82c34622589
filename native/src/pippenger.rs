//! Our full-width G1 MSM: Pippenger's bucket method with batch-affine bucket accumulation.
//!
//! `sum_i s_i P_i` for canonical scalars `s_i < R` over affine bases (Pippenger 1976; the
//! bucket method as in Bernstein, Doumen, Lange, Oosterwijk 2012, §4):
//!
//! 1. **Scalars.** Each `s` is replaced by `min(s, R - s)` (below `2^253`), the base negated
//!    when `R - s` was taken. It is then written in `W = ceil(254 / c)` signed digits
//!    `d_w in [-(2^(c-1) - 1), 2^(c-1)]`, `s = sum_w d_w 2^(c w)`: adding
//!    `K = (2^(c-1) - 1) sum_w 2^(c w)` turns them into plain base-`2^c` digits of `s + K`,
//!    so `d_w = ((s + K) >> c w) mod 2^c - (2^(c-1) - 1)` with no carry chain. A digit `d`
//!    sends `sign(d) P` to bucket `|d| - 1` of its window: `2^(c-1)` buckets a window.
//! 2. **Buckets, batch-affine.** The buckets of a window are affine points. An affine addition
//!    `B + Q` needs `1/(x_Q - x_B)`; additions are collected into a batch (at most one per
//!    bucket) and their denominators inverted together by Montgomery's trick (Montgomery
//!    1987: one inversion and three multiplications each), then `lambda`, `x3`, `y3` cost two
//!    multiplications and a squaring: about 5M + 1S an addition against 8M + 2S for the
//!    mixed XYZZ addition arkworks uses. A point whose bucket already waits in the batch is
//!    deferred to a queue, retried after the batch runs; when the queue is full it goes into
//!    a side bucket of XYZZ coordinates (rare: many equal digits). Special cases never enter a
//!    batch: an empty bucket takes the point, `B + (-B)` empties the bucket, infinity among
//!    the bases is skipped; `B + B` (the same point twice) enters with the tangent's slope
//!    `3 x^2 / 2 y` instead (BN254 has no point of order 2, so `y != 0`).
//! 3. **Window sums** `sum_b (b + 1) B_b` by running sums from the top bucket down (XYZZ),
//!    and `sum_w 2^(c w) S_w` by Horner (`c` doublings a window).
//!
//! The same batch-affine buckets give `bucket_sums` (`B_t = sum_(values_i = t) P_i`), the
//! limb buckets of `structured.rs`.
//!
//! Windows are independent and run in parallel (rayon, the caller's pool). The window size
//! `c` is chosen by `n` (`window_bits`). The result is a group element, so it is exactly
//! arkworks' `msm_bigint` result (tested against it).

use ark_bn254::{g1::Config, Fq, G1Affine, G1Projective};
use ark_ec::short_weierstrass::Bucket;
use ark_ec::AffineRepr;
use ark_ff::{AdditiveGroup, Field, PrimeField, Zero};
use rayon::prelude::*;

use crate::scalars::ScalarInt;

/// XYZZ coordinates (arkworks' MSM bucket type): the side buckets and the running sums.
type Xyzz = Bucket<Config>;

/// Bits of `min(s, R - s)` (below `(R - 1)/2 < 2^253`), plus one for the signed digits.
const SIGNED_BITS: usize = 254;

/// Window sizes we choose from.
const MIN_WINDOW: usize = 2;
const MAX_WINDOW: usize = 20;

/// At most this many deferred points per window before they go to the side buckets.
const MAX_QUEUE: usize = 256;

/// A scalar prepared for digit extraction: `min(s, R - s) + K` in five limbs (up to
/// `254 + c` bits), and whether `R - s` was taken (bit 63 of limb 4).
#[derive(Clone, Copy)]
struct Recoded([u64; 5]);

const NEGATED: u64 = 1 << 63;

impl Recoded {
    fn new(s: &ScalarInt, offset: &[u64; 5]) -> Self {
        let modulus = ark_bn254::Fr::MODULUS;
        let half = ark_bn254::Fr::MODULUS_MINUS_ONE_DIV_TWO;
        let (value, negated) = if *s > half {
            let mut m = modulus;
            ark_ff::BigInteger::sub_with_borrow(&mut m, s);
            (m, true)
        } else {
            (*s, false)
        };
        let mut out = [0u64; 5];
        let mut carry = 0u128;
        for (i, o) in out.iter_mut().enumerate() {
            let v = if i < 4 { value.0[i] } else { 0 };
            let sum = u128::from(v) + u128::from(offset[i]) + carry;
            *o = sum as u64;
            carry = sum >> 64;
        }
        if negated {
            out[4] |= NEGATED;
        }
        Self(out)
    }

    fn negated(&self) -> bool {
        self.0[4] & NEGATED != 0
    }

    /// Bits `start .. start + c` of `min(s, R - s) + K`.
    fn bits(&self, start: usize, c: usize) -> u64 {
        let (limb, shift) = (start / 64, start % 64);
        let mut v = self.0[limb] >> shift;
        if shift + c > 64 && limb < 4 {
            v |= self.0[limb + 1] << (64 - shift);
        }
        v & ((1u64 << c) - 1) // bit 63 of limb 4 is never read: 254 + c < 319
    }
}

/// `K = (2^(c-1) - 1) sum_(w < windows) 2^(c w)` in five limbs.
fn digit_offset(c: usize, windows: usize) -> [u64; 5] {
    let mut out = [0u64; 5];
    let half_minus_one = (1u64 << (c - 1)) - 1;
    for w in 0..windows {
        // Add half_minus_one << (c w) with carries.
        let (limb, shift) = ((c * w) / 64, (c * w) % 64);
        let wide = u128::from(half_minus_one) << shift;
        let mut carry = 0u128;
        for (i, part) in [wide as u64, (wide >> 64) as u64].into_iter().enumerate() {
            let j = limb + i;
            if j < 5 {
                let sum = u128::from(out[j]) + u128::from(part) + carry;
                out[j] = sum as u64;
                carry = sum >> 64;
            }
        }
        let mut j = limb + 2;
        while carry != 0 && j < 5 {
            let sum = u128::from(out[j]) + carry;
            out[j] = sum as u64;
            carry = sum >> 64;
            j += 1;
        }
    }
    out
}

/// The number of `c`-bit signed windows: `c W >= 254` so the top digit needs no carry out.
pub fn window_count(c: usize) -> usize {
    SIGNED_BITS.div_ceil(c)
}

/// The inversion of a batch in batch-affine additions: an `Fq` inversion took 7-9 us here
/// against 30-40 ns a multiplication, about 25 bucket additions.
const INVERSION_COST: f64 = 25.0;

/// The window size for `n` points on `threads` threads: the `c` minimising an operation
/// count per thread, `ceil(W / threads) (n A (1 + I / batch) + 2^(c-1) R)`, with `A` the cost
/// of a batch-affine bucket addition, `I` an inversion shared by a batch, `R` one bucket's
/// running sums (two XYZZ additions). By field multiplications `R/A` would be about 4;
/// timings here (c = 12, 13, 14 at 2^16; c = 9, 10, 11 at 2^12) fit 2 better: a bucket
/// addition also pays its scheduling and the bucket's cache miss. On 2 threads this gives
/// c = 11 at 2^12, 13 at 2^16 and 16 at 2^20.
pub fn window_bits(n: usize, threads: usize) -> usize {
    const RUNNING_SUM_COST: f64 = 2.0;
    let threads = threads.max(1);
    let cost = |c: usize| {
        let buckets = 1usize << (c - 1);
        let rounds = window_count(c).div_ceil(threads) as f64;
        let per_point = 1.0 + INVERSION_COST / batch_size(buckets) as f64;
        rounds * (n as f64 * per_point + RUNNING_SUM_COST * buckets as f64)
    };
    (MIN_WINDOW..=16)
        .min_by(|&a, &b| cost(a).total_cmp(&cost(b)))
        .unwrap_or(MIN_WINDOW)
}

/// The batch size for `buckets` buckets: large enough to amortise the inversion, small
/// enough that few points find their bucket already in the batch (about 1 in 16).
fn batch_size(buckets: usize) -> usize {
    (buckets / 8).clamp(1, 1024)
}

/// One window's buckets and the batch of additions waiting for their shared inversion.
struct Window {
    buckets: Vec<G1Affine>,
    /// Buckets with an addition in the current batch.
    busy: Vec<bool>,
    /// XYZZ buckets for points the queue had no room for (allocated on first use).
    side: Vec<Xyzz>,
    batch_bucket: Vec<u32>,
    batch_point: Vec<G1Affine>,
    /// Denominators, then their prefix products.
    den: Vec<Fq>,
    prefix: Vec<Fq>,
    queue: Vec<(u32, G1Affine)>,
    max_batch: usize,
}

impl Window {
    fn new(buckets: usize) -> Self {
        let max_batch = batch_size(buckets);
        Self {
            buckets: vec![G1Affine::zero(); buckets],
            busy: vec![false; buckets],
            side: Vec::new(),
            batch_bucket: Vec::with_capacity(max_batch),
            batch_point: Vec::with_capacity(max_batch),
            den: Vec::with_capacity(max_batch),
            prefix: Vec::with_capacity(max_batch),
            queue: Vec::with_capacity(MAX_QUEUE),
            max_batch,
        }
    }

    /// Add `p` (not infinity) to bucket `b`, which has no addition in the batch: at once
    /// for an empty bucket or `B + (-B)`, else into the batch (run when full).
    fn add(&mut self, b: u32, p: G1Affine) {
        let bucket = &mut self.buckets[b as usize];
        if bucket.is_zero() {
            *bucket = p;
            return;
        }
        if bucket.x == p.x && bucket.y != p.y {
            // B + (-B): same x, so y_p = -y_B (the other point with this x).
            *bucket = G1Affine::zero();
            return;
        }
        // B + Q with x_Q != x_B, or B + B (tangent): both go into the batch.
        self.busy[b as usize] = true;
        self.batch_bucket.push(b);
        self.batch_point.push(p);
        if self.batch_point.len() == self.max_batch {
            self.run_batch();
        }
    }

    /// Offer `p` for bucket `b`: added, or deferred while `b` waits in the batch.
    fn offer(&mut self, b: u32, p: G1Affine) {
        if !self.busy[b as usize] {
            self.add(b, p);
            if self.batch_point.is_empty() && !self.queue.is_empty() {
                // The batch just ran: every bucket is free again.
                self.drain_queue();
            }
        } else if self.queue.len() < MAX_QUEUE {
            self.queue.push((b, p));
        } else {
            self.add_to_side(b, p);
        }
    }

    fn add_to_side(&mut self, b: u32, p: G1Affine) {
        if self.side.is_empty() {
            self.side = vec![Xyzz::ZERO; self.buckets.len()];
        }
        self.side[b as usize] += &p;
    }

    /// Retry the deferred points whose bucket is free (once each).
    fn drain_queue(&mut self) {
        let queue = std::mem::take(&mut self.queue);
        for (b, p) in queue {
            if self.busy[b as usize] {
                self.queue.push((b, p));
            } else {
                self.add(b, p);
            }
        }
    }

    /// All additions of the batch with one inversion (Montgomery's trick).
    fn run_batch(&mut self) {
        let len = self.batch_point.len();
        if len == 0 {
            return;
        }
        self.den.clear();
        self.prefix.clear();
        let mut acc = Fq::ONE;
        for (b, p) in self.batch_bucket.iter().zip(&self.batch_point) {
            let bucket = &self.buckets[*b as usize];
            let mut d = p.x - bucket.x;
            if d.is_zero() {
                d = bucket.y.double(); // B + B: the tangent's denominator 2 y
            }
            self.prefix.push(acc);
            acc *= d;
            self.den.push(d);
        }
        // acc = prod of all denominators, none zero (x_Q != x_B, or y != 0).
        let mut inv = acc.inverse().expect("batch denominators are non-zero");
        for k in (0..len).rev() {
            let inv_k = inv * self.prefix[k];
            inv *= self.den[k];
            let b = self.batch_bucket[k] as usize;
            let p = self.batch_point[k];
            let bucket = self.buckets[b];
            let lambda = if p.x == bucket.x {
                let x2 = bucket.x.square();
                (x2.double() + x2) * inv_k
            } else {
                (p.y - bucket.y) * inv_k
            };
            let x3 = lambda.square() - bucket.x - p.x;
            let y3 = lambda * (bucket.x - x3) - bucket.y;
            self.buckets[b] = G1Affine::new_unchecked(x3, y3);
            self.busy[b] = false;
        }
        self.batch_bucket.clear();
        self.batch_point.clear();
    }

    /// Run what is left: batches while they stay useful, the rest into the side buckets.
    fn finish(&mut self) {
        loop {
            self.run_batch();
            if self.queue.is_empty() {
                return;
            }
            self.drain_queue();
            if self.batch_point.len() < 16 {
                // Few additions left to share an inversion: finish them in XYZZ.
                let pending: Vec<(u32, G1Affine)> = std::mem::take(&mut self.queue);
                self.run_batch();
                for (b, p) in pending {
                    self.add_to_side(b, p);
                }
                return;
            }
        }
    }

    /// `sum_b (b + 1) B_b` by running sums from the top bucket down.
    fn sum(&self) -> G1Projective {
        let mut running = Xyzz::ZERO;
        let mut total = Xyzz::ZERO;
        for b in (0..self.buckets.len()).rev() {
            running += &self.buckets[b];
            if let Some(s) = self.side.get(b) {
                if !s.is_zero() {
                    running += s;
                }
            }
            total += &running;
        }
        total.into()
    }
}

/// The sum of window `w` (`c`-bit digits) over the recoded scalars.
fn window_sum(bases: &[G1Affine], scalars: &[Recoded], w: usize, c: usize) -> G1Projective {
    let buckets = 1usize << (c - 1);
    let half_minus_one = (buckets - 1) as i64;
    let mut window = Window::new(buckets);
    let start = c * w;
    for (p, s) in bases.iter().zip(scalars) {
        let digit = s.bits(start, c) as i64 - half_minus_one;
        if digit == 0 || p.is_zero() {
            continue;
        }
        let negative = (digit < 0) != s.negated();
        let b = (digit.unsigned_abs() - 1) as u32;
        window.offer(b, if negative { -*p } else { *p });
    }
    window.finish();
    window.sum()
}

/// `sum_i s_i P_i` over `min(len)` terms with `c`-bit windows (`c` in `2..=20`).
pub fn msm_with_window(bases: &[G1Affine], scalars: &[ScalarInt], c: usize) -> G1Projective {
    assert!((MIN_WINDOW..=MAX_WINDOW).contains(&c), "window size {c}");
    let n = bases.len().min(scalars.len());
    let (bases, scalars) = (&bases[..n], &scalars[..n]);
    if n == 0 {
        return G1Projective::zero();
    }
    let windows = window_count(c);
    let offset = digit_offset(c, windows);
    let recoded: Vec<Recoded> = scalars
        .par_iter()
        .map(|s| Recoded::new(s, &offset))
        .collect();
    let sums: Vec<G1Projective> = (0..windows)
        .into_par_iter()
        .map(|w| window_sum(bases, &recoded, w, c))
        .collect();
    let mut total = G1Projective::zero();
    for s in sums.iter().rev() {
        for _ in 0..c {
            total.double_in_place();
        }
        total += s;
    }
    total
}

/// `sum_i s_i P_i` over `min(len)` terms, the window size chosen by `n` and the pool's
/// thread count.
pub fn msm(bases: &[G1Affine], scalars: &[ScalarInt]) -> G1Projective {
    let n = bases.len().min(scalars.len());
    msm_with_window(bases, scalars, window_bits(n, rayon::current_num_threads()))
}

/// With fewer buckets than this, `bucket_sums` keeps interleaved copies of them (point `i`
/// in copy `i mod copies`), so that a batch can still hold enough additions to share an
/// inversion (256 buckets alone would allow batches of 32).
const BATCHED_BUCKETS: usize = 4096;

/// `B_t = sum_(i: values_i = t) P_(i mod n)` for `t < buckets`, `n = len(bases)` (several
/// columns over the same bases go into one set), by the MSM's batch-affine buckets
/// (`Window`): about 5M + 1S an addition where a projective mixed addition costs 8M + 3S
/// (measured here about 170 ns against 240 ns, the bookkeeping included). Every value must be
/// below `buckets`; infinity among the bases is skipped. Per-thread parts of the values, each
/// into its own buckets, summed at the end.
pub fn bucket_sums(bases: &[G1Affine], values: &[u64], buckets: usize) -> Vec<G1Projective> {
    let rows = values.len();
    let n = bases.len();
    let mut total = vec![G1Projective::zero(); buckets];
    if n == 0 || buckets == 0 || rows == 0 {
        return total;
    }
    let copies = (BATCHED_BUCKETS / buckets).clamp(1, 16);
    let threads = rayon::current_num_threads().max(1);
    let chunk = rows.div_ceil(threads).max(1);
    let parts: Vec<Vec<G1Projective>> = (0..rows.div_ceil(chunk))
        .into_par_iter()
        .map(|c| {
            let mut window = Window::new(buckets * copies);
            for i in c * chunk..((c + 1) * chunk).min(rows) {
                let b = values[i] as usize;
                assert!(b < buckets, "bucket_sums: value {b} is not below {buckets}");
                let p = bases[i % n];
                if !p.is_zero() {
                    window.offer(((i % copies) * buckets + b) as u32, p);
                }
            }
            window.finish();
            (0..buckets)
                .map(|b| {
                    let mut sum = G1Projective::zero();
                    for copy in 0..copies {
                        let k = copy * buckets + b;
                        sum += &window.buckets[k];
                        if let Some(side) = window.side.get(k) {
                            if !side.is_zero() {
                                sum += G1Projective::from(*side);
                            }
                        }
                    }
                    sum
                })
                .collect()
        })
        .collect();
    for part in parts {
        total.par_iter_mut().zip(part).for_each(|(t, p)| *t += p);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_bn254::Fr;
    use ark_ec::{CurveGroup, VariableBaseMSM};
    use ark_ff::UniformRand;
    use ark_std::rand::{rngs::StdRng, Rng, SeedableRng};

    fn to_int(x: &Fr) -> ScalarInt {
        x.into_bigint()
    }

    fn oracle(bases: &[G1Affine], scalars: &[ScalarInt]) -> G1Affine {
        G1Projective::msm_bigint(bases, scalars).into_affine()
    }

    /// A scalar from the edge cases or uniform: 0, 1, 2, R - 1, R - 2, (R-1)/2, (R+1)/2,
    /// small, small negative, a power of two, uniform.
    fn edge_scalar(rng: &mut StdRng) -> Fr {
        let half = Fr::from(Fr::MODULUS_MINUS_ONE_DIV_TWO);
        match rng.gen_range(0..12) {
            0 => Fr::from(0u64),
            1 => Fr::from(1u64),
            2 => Fr::from(2u64),
            3 => -Fr::from(1u64),
            4 => -Fr::from(2u64),
            5 => half,
            6 => half + Fr::from(1u64),
            7 => Fr::from(rng.gen_range(0..1u64 << 16)),
            8 => -Fr::from(rng.gen_range(0..1u64 << 16)),
            9 => Fr::from(2u64).pow([rng.gen_range(0..254u64)]),
            _ => Fr::rand(rng),
        }
    }

    /// `n` bases drawn from a small pool (repeats), with infinity and negated points.
    fn pool_bases(n: usize, pool: &[G1Affine], rng: &mut StdRng) -> Vec<G1Affine> {
        (0..n)
            .map(|_| match rng.gen_range(0..8) {
                0 => G1Affine::zero(),
                1 => -pool[rng.gen_range(0..pool.len())],
                _ => pool[rng.gen_range(0..pool.len())],
            })
            .collect()
    }

    fn random_pool(size: usize, rng: &mut StdRng) -> Vec<G1Affine> {
        (0..size)
            .map(|_| G1Projective::rand(rng).into_affine())
            .collect()
    }

    #[test]
    fn matches_arkworks_at_every_window_size_on_edge_inputs() {
        let mut rng = StdRng::seed_from_u64(2);
        let pool = random_pool(16, &mut rng);
        let n = 700;
        let bases = pool_bases(n, &pool, &mut rng);
        let xs: Vec<Fr> = (0..n).map(|_| edge_scalar(&mut rng)).collect();
        let ints: Vec<ScalarInt> = xs.iter().map(to_int).collect();
        let want = oracle(&bases, &ints);
        for c in MIN_WINDOW..=MAX_WINDOW {
            assert_eq!(
                msm_with_window(&bases, &ints, c).into_affine(),
                want,
                "c {c}"
            );
        }
    }

    /// Randomised cases (seeded; proptest-style without shrinking): sizes 0 to 3000, bases
    /// from pools of 1 to 64 points (repeats, P and -P, infinity), edge or uniform scalars,
    /// the chosen window or a random one.
    #[test]
    fn matches_arkworks_on_random_cases() {
        let mut rng = StdRng::seed_from_u64(3);
        let pool = random_pool(64, &mut rng);
        for case in 0..120 {
            let n = match case % 4 {
                0 => rng.gen_range(0..8),
                1 => rng.gen_range(8..200),
                2 => rng.gen_range(200..1000),
                _ => rng.gen_range(1000..3000),
            };
            let pool_size = [1, 2, 8, 64][rng.gen_range(0..4)];
            let bases = pool_bases(n, &pool[..pool_size], &mut rng);
            let uniform = rng.gen_bool(0.5);
            let ints: Vec<ScalarInt> = (0..n)
                .map(|_| {
                    if uniform {
                        to_int(&Fr::rand(&mut rng))
                    } else {
                        to_int(&edge_scalar(&mut rng))
                    }
                })
                .collect();
            let c = if rng.gen_bool(0.5) {
                window_bits(n, 2)
            } else {
                rng.gen_range(MIN_WINDOW..=MAX_WINDOW)
            };
            assert_eq!(
                msm_with_window(&bases, &ints, c).into_affine(),
                oracle(&bases, &ints),
                "case {case}: n {n}, pool {pool_size}, c {c}"
            );
        }
    }

    #[test]
    fn degenerate_inputs_fill_the_queue_and_the_side_buckets() {
        let mut rng = StdRng::seed_from_u64(4);
        let p = G1Projective::rand(&mut rng).into_affine();
        let x = Fr::rand(&mut rng);
        for n in [1, 2, 3, 300, 5000] {
            // Every point in the same bucket of every window: B + B, then the queue, then
            // the side buckets.
            let bases = vec![p; n];
            let ints = vec![to_int(&x); n];
            for c in [4, 13] {
                assert_eq!(
                    msm_with_window(&bases, &ints, c).into_affine(),
                    (p * x * Fr::from(n as u64)).into_affine(),
                    "n {n} c {c}"
                );
            }
            // P and -P alternating with the same scalar: the buckets empty again and again.
            let signed: Vec<G1Affine> = (0..n).map(|i| if i % 2 == 0 { p } else { -p }).collect();
            let want = if n % 2 == 1 {
                (p * x).into_affine()
            } else {
                G1Affine::zero()
            };
            assert_eq!(
                msm_with_window(&signed, &ints, 9).into_affine(),
                want,
                "n {n}"
            );
        }
        // Only infinity, only zero scalars, nothing at all.
        let zeros = vec![G1Affine::zero(); 100];
        let ints: Vec<ScalarInt> = (0..100).map(|_| to_int(&Fr::rand(&mut rng))).collect();
        assert!(msm(&zeros, &ints).is_zero());
        assert!(msm(&vec![p; 100], &vec![ScalarInt::zero(); 100]).is_zero());
        assert!(msm(&[], &[]).is_zero());
        // Extra bases (or scalars) beyond the shorter slice are ignored, as in arkworks.
        assert_eq!(
            msm(&[p, p], &ints[..1]).into_affine(),
            (p * Fr::from(ints[0])).into_affine()
        );
    }

    #[test]
    fn window_bits_at_the_documented_sizes() {
        assert_eq!(window_bits(1 << 12, 2), 11);
        assert_eq!(window_bits(1 << 16, 2), 13);
        assert_eq!(window_bits(1 << 20, 2), 16);
    }

    #[test]
    fn window_bits_grow_with_n() {
        let mut last = 0;
        for log in 0..=24 {
            let c = window_bits(1 << log, 2);
            assert!((MIN_WINDOW..=16).contains(&c) && c >= last, "2^{log}: {c}");
            last = c;
        }
    }

    #[test]
    fn signed_digits_reconstruct_the_scalar() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut xs: Vec<Fr> = (0..200).map(|_| Fr::rand(&mut rng)).collect();
        xs.extend([
            Fr::from(0u64),
            Fr::from(1u64),
            -Fr::from(1u64),
            -Fr::from(2u64),
        ]);
        xs.push(Fr::from(Fr::MODULUS_MINUS_ONE_DIV_TWO));
        xs.push(Fr::from(Fr::MODULUS_MINUS_ONE_DIV_TWO) + Fr::from(1u64));
        for c in MIN_WINDOW..=MAX_WINDOW {
            let windows = window_count(c);
            let offset = digit_offset(c, windows);
            let half = 1i64 << (c - 1);
            for x in &xs {
                let r = Recoded::new(&to_int(x), &offset);
                let mut acc = Fr::from(0u64);
                for w in (0..windows).rev() {
                    let d = r.bits(c * w, c) as i64 - (half - 1);
                    assert!(d > -half && d <= half, "c {c} digit {d}");
                    acc *= Fr::from(1u64 << c);
                    acc += if d < 0 {
                        -Fr::from(d.unsigned_abs())
                    } else {
                        Fr::from(d as u64)
                    };
                }
                let want = if r.negated() { -*x } else { *x };
                assert_eq!(acc, want, "c {c}");
            }
        }
    }

    #[test]
    fn bucket_sums_match_projective_sums_on_edge_inputs() {
        let mut rng = StdRng::seed_from_u64(41);
        let pool: Vec<G1Affine> = (0..8)
            .map(|_| G1Projective::rand(&mut rng).into_affine())
            .collect();
        let fresh: Vec<G1Affine> = (0..3000)
            .map(|_| G1Projective::rand(&mut rng).into_affine())
            .collect();
        let repeats = pool_bases(3000, &pool, &mut rng);
        for (bases, buckets, spread) in [
            (&fresh, 256usize, 256u64), // uniform values
            (&fresh, 256, 1),           // every value the same: queue and side buckets
            (&repeats, 256, 3),         // equal, negated and infinite points, few values
            (&repeats, 1, 1),
        ] {
            // More values than bases: value j goes with base j mod n.
            let values: Vec<u64> = (0..7000).map(|_| rng.gen_range(0..spread)).collect();
            let mut expected = vec![G1Projective::zero(); buckets];
            for (j, v) in values.iter().enumerate() {
                expected[*v as usize] += bases[j % bases.len()];
            }
            let got = crate::pool::install(|| bucket_sums(bases, &values, buckets)).unwrap();
            let got: Vec<G1Affine> = got.iter().map(|p| p.into_affine()).collect();
            let expected: Vec<G1Affine> = expected.iter().map(|p| p.into_affine()).collect();
            assert_eq!(got, expected, "{buckets} buckets, values below {spread}");
        }
        assert!(bucket_sums(&[], &[0, 1], 4).iter().all(|p| p.is_zero()));
    }
}

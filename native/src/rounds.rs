//! The arithmetic of the prover's rounds 2 and 3 (PROTOCOL §3, §6) on native columns.
//!
//! * `logup_round2`: the logUp helpers and the running sum from the round-1 columns and the
//!   challenges (`h_range_j = 1/(beta - limb_j)`, `h_table = m/(beta - T)`,
//!   `h_agg = (q(1 + delta tokens) + s(delta^2 nonce + delta^3))/(gamma - key)`,
//!   `phi[i+1] = phi[i] + c[i] - A/N`), each denominator inverted by one batch inversion;
//! * `GateProgram` / `quotient_on_coset`: the folded constraint `G = sum_i alpha^i gate_i`
//!   evaluated pointwise on a coset `s H` by a small register machine whose code is
//!   generated from the gate expression tree (`circuits.expr.compile_vector_program`), then
//!   divided by `Z_H = s^N - 1` and brought back to coefficients:
//!   `F[j] = sum_m t_(j + mN) (s^N)^m`;
//! * `quotient_unfold`: per `j`, the Vandermonde solve in the nodes `s_c^N` that gives `t`,
//!   the degree check, and the split `t = t_0 + X^N t_1` (one chunk per coset) with `rho`
//!   blinding.

use ark_bn254::Fr;
use ark_ff::{Field, Zero};
use ark_poly::EvaluationDomain;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rayon::prelude::*;

use crate::buffers;
use crate::column::{evaluate_on_coset, powers, vanishing_on_coset, FrVec};
use crate::error::{Error, Result};
use crate::ntt::{domain, k_arg};
use crate::scalars::{batch_inverse_in_place, decode_scalars, decode_u64s, run, scalar_arg};

// ------------------------------------------------------------------------- round 2

/// The round-2 columns (PROTOCOL §3) and the running sum's closing value
/// `phi[N-1] + c[N-1] - A/N` (zero exactly when the lookups balance).
pub struct Round2 {
    pub h_range: Vec<Vec<Fr>>,
    pub h_table: Vec<Fr>,
    pub h_agg: Vec<Fr>,
    pub phi: Vec<Fr>,
    pub closing: Fr,
}

/// The inputs of round 2: the round-1 columns on `H` and the challenges.
pub struct Round2Inputs<'a> {
    pub limbs: Vec<&'a [Fr]>,
    pub m: &'a [Fr],
    pub table: &'a [Fr],
    pub key: &'a [Fr],
    pub nonce: &'a [Fr],
    pub q: &'a [Fr],
    pub s: &'a [Fr],
    pub limb_bits: u32,
    pub beta: Fr,
    pub gamma: Fr,
    pub delta: Fr,
    pub a_over_n: Fr,
}

fn inverses_of_differences(x: Fr, column: &[Fr], what: &str) -> Result<Vec<Fr>> {
    let mut d: Vec<Fr> = column.par_iter().map(|c| x - c).collect();
    batch_inverse_in_place(&mut d, what)?;
    Ok(d)
}

/// The logUp helpers and running sum (see the module note).
pub fn compute_round2(inp: &Round2Inputs<'_>) -> Result<Round2> {
    let n = inp.key.len();
    let columns = [inp.m, inp.table, inp.nonce, inp.q, inp.s];
    if inp.limbs.iter().any(|l| l.len() != n) || columns.iter().any(|c| c.len() != n) {
        return Err(Error::Length(format!(
            "round 2: every column needs {n} values"
        )));
    }
    // One helper per limb: h_range_j = 1/(beta - limb_j), each a batch inversion.
    let h_range: Vec<Vec<Fr>> = inp
        .limbs
        .iter()
        .map(|l| inverses_of_differences(inp.beta, l, "beta - limb"))
        .collect::<Result<_>>()?;
    let inv_table = inverses_of_differences(inp.beta, inp.table, "beta - T")?;
    let inv_key = inverses_of_differences(inp.gamma, inp.key, "gamma - key")?;
    let mut contribution = vec![Fr::zero(); n];
    for h in &h_range {
        contribution
            .par_iter_mut()
            .zip(h)
            .for_each(|(c, x)| *c += x);
    }
    let h_table: Vec<Fr> = inp
        .m
        .par_iter()
        .zip(&inv_table)
        .map(|(m, i)| *m * i)
        .collect();
    let delta2 = inp.delta.square();
    let delta3 = delta2 * inp.delta;
    let h_agg: Vec<Fr> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut tokens = Fr::zero();
            let mut scale = Fr::ONE;
            let radix = Fr::from(1u64 << inp.limb_bits);
            for limb in &inp.limbs {
                tokens += limb[i] * scale;
                scale *= radix;
            }
            let numerator = inp.q[i] * (Fr::ONE + inp.delta * tokens)
                + inp.s[i] * (delta2 * inp.nonce[i] + delta3);
            numerator * inv_key[i]
        })
        .collect();
    contribution
        .par_iter_mut()
        .enumerate()
        .for_each(|(i, c)| *c += h_agg[i] - h_table[i] - inp.a_over_n);
    let mut phi = vec![Fr::zero(); n];
    let mut acc = Fr::zero();
    for i in 0..n.saturating_sub(1) {
        acc += contribution[i];
        phi[i + 1] = acc;
    }
    let closing = acc + contribution[n - 1];
    Ok(Round2 {
        h_range,
        h_table,
        h_agg,
        phi,
        closing,
    })
}

// ------------------------------------------------------------------- gate program

/// Where an input register of the gate program takes its value at point `i` of a coset.
#[derive(Clone, Copy, Debug)]
pub enum Source {
    /// column `c` at point `i` (rotation 0)
    Column(usize),
    /// column `c` at point `i + 1` (rotation 1: `c(omega X)`), wrapping around
    Next(usize),
    /// `L_0(x_i)`
    FirstLagrange,
    /// `x_i - omega^(N-1)`
    XMinusLast,
    /// a scalar fixed for the whole coset (challenge, public value or constant)
    Scalar(Fr),
}

/// One instruction `dst = a op b` over registers.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    Add(usize, usize, usize),
    Sub(usize, usize, usize),
    Mul(usize, usize, usize),
    Neg(usize, usize),
}

/// A straight-line program: registers `0 .. sources.len()` are loaded from `sources`, the
/// rest written by `code`; the result is register `output`.
pub struct GateProgram {
    pub sources: Vec<Source>,
    /// Instructions whose operands are all uniform on the coset (scalars, constants and
    /// what is computed from them only): run once per chunk of points, not per point.
    pub uniform: Vec<Op>,
    /// The rest, run at every point.
    pub code: Vec<Op>,
    /// Registers that hold the same value at every point (scalars and `uniform`'s results).
    pub is_uniform: Vec<bool>,
    pub registers: usize,
    pub output: usize,
}

/// Opcodes of the encoded program (`circuits.expr.VectorProgram.encoded`).
const OP_ADD: u32 = 0;
const OP_SUB: u32 = 1;
const OP_MUL: u32 = 2;
const OP_NEG: u32 = 3;
/// Source kinds of the encoded program.
const SRC_COLUMN: u32 = 0;
const SRC_NEXT: u32 = 1;
const SRC_L0: u32 = 2;
const SRC_X_MINUS_LAST: u32 = 3;
const SRC_SCALAR: u32 = 4;

impl GateProgram {
    /// Decode `sources` (pairs `(kind, index)`), `scalars` (words, indexed by
    /// `SRC_SCALAR` sources), `code` (quadruples `(op, dst, a, b)`), checking every
    /// register index.
    pub fn decode(
        sources: &[u64],
        scalars: &[Fr],
        code: &[u64],
        registers: usize,
        output: usize,
        columns: usize,
    ) -> Result<Self> {
        let bad = |m: String| Error::Domain(format!("gate program: {m}"));
        if sources.len() % 2 != 0 || code.len() % 4 != 0 {
            return Err(bad(
                "sources come in pairs, instructions in quadruples".into()
            ));
        }
        let inputs = sources.len() / 2;
        if inputs > registers || output >= registers {
            return Err(bad(format!("{registers} registers for {inputs} inputs")));
        }
        let mut decoded = Vec::with_capacity(inputs);
        for pair in sources.chunks_exact(2) {
            let (kind, index) = (pair[0] as u32, pair[1] as usize);
            let source = match kind {
                SRC_COLUMN | SRC_NEXT if index >= columns => {
                    return Err(bad(format!("column {index} of {columns}")))
                }
                SRC_COLUMN => Source::Column(index),
                SRC_NEXT => Source::Next(index),
                SRC_L0 => Source::FirstLagrange,
                SRC_X_MINUS_LAST => Source::XMinusLast,
                SRC_SCALAR => Source::Scalar(
                    *scalars
                        .get(index)
                        .ok_or_else(|| bad(format!("scalar {index} of {}", scalars.len())))?,
                ),
                other => return Err(bad(format!("unknown source kind {other}"))),
            };
            decoded.push(source);
        }
        let mut is_uniform: Vec<bool> = (0..registers)
            .map(|r| matches!(decoded.get(r), Some(Source::Scalar(_))))
            .collect();
        let mut uniform = Vec::new();
        let mut ops = Vec::with_capacity(code.len() / 4);
        for q in code.chunks_exact(4) {
            let (dst, a, b) = (q[1] as usize, q[2] as usize, q[3] as usize);
            if dst < inputs || dst >= registers || a >= registers || b >= registers {
                return Err(bad(format!(
                    "instruction {q:?} outside {registers} registers"
                )));
            }
            let op = match q[0] as u32 {
                OP_ADD => Op::Add(dst, a, b),
                OP_SUB => Op::Sub(dst, a, b),
                OP_MUL => Op::Mul(dst, a, b),
                OP_NEG => Op::Neg(dst, a),
                other => return Err(bad(format!("unknown opcode {other}"))),
            };
            let operands_uniform = match op {
                Op::Neg(_, a) => is_uniform[a],
                _ => is_uniform[a] && is_uniform[b],
            };
            is_uniform[dst] = operands_uniform;
            if operands_uniform {
                uniform.push(op);
            } else {
                ops.push(op);
            }
        }
        Ok(Self {
            sources: decoded,
            uniform,
            code: ops,
            is_uniform,
            registers,
            output,
        })
    }

    #[inline]
    fn run_ops(ops: &[Op], regs: &mut [Fr]) {
        for op in ops {
            match *op {
                Op::Add(d, a, b) => regs[d] = regs[a] + regs[b],
                Op::Sub(d, a, b) => regs[d] = regs[a] - regs[b],
                Op::Mul(d, a, b) => regs[d] = regs[a] * regs[b],
                Op::Neg(d, a) => regs[d] = -regs[a],
            }
        }
    }

    /// Run `ops` on `LANES` points at once: register `r` of lane `l` is `regs[r * LANES + l]`,
    /// so each instruction is decoded once for `LANES` points and its loop runs over
    /// adjacent memory (the per-point interpreter spent about a third of its time decoding).
    #[inline]
    fn run_ops_lanes(ops: &[Op], regs: &mut [Fr]) {
        const L: usize = LANES;
        for op in ops {
            match *op {
                Op::Add(d, a, b) => {
                    for l in 0..L {
                        regs[d * L + l] = regs[a * L + l] + regs[b * L + l];
                    }
                }
                Op::Sub(d, a, b) => {
                    for l in 0..L {
                        regs[d * L + l] = regs[a * L + l] - regs[b * L + l];
                    }
                }
                Op::Mul(d, a, b) => {
                    for l in 0..L {
                        regs[d * L + l] = regs[a * L + l] * regs[b * L + l];
                    }
                }
                Op::Neg(d, a) => {
                    for l in 0..L {
                        regs[d * L + l] = -regs[a * L + l];
                    }
                }
            }
        }
    }

    /// `G(x_i)` for every point `x_i = shift omega^i` of a coset, from the columns there:
    /// `LANES` points at a time (`run_ops_lanes`), the scalar-only instructions once per
    /// task and their registers broadcast to every lane.
    pub fn evaluate_on_coset(&self, columns: &[Vec<Fr>], shift: Fr, k: u32) -> Result<Vec<Fr>> {
        let dom = domain(k)?;
        let n = dom.size();
        if columns.iter().any(|c| c.len() != n) {
            return Err(Error::Length(format!(
                "every coset column needs {n} values"
            )));
        }
        let points: Vec<Fr> = powers(dom.group_gen(), n)
            .into_par_iter()
            .map(|w| shift * w)
            .collect();
        // L_0(x) = (x^N - 1) / (N (x - 1)); x^N = shift^N on the coset.
        let first_scale = vanishing_on_coset(shift, n) * dom.size_inv();
        let mut first: Vec<Fr> = points.par_iter().map(|x| *x - Fr::ONE).collect();
        batch_inverse_in_place(&mut first, "x - 1")?;
        first.par_iter_mut().for_each(|v| *v *= first_scale);
        let last = dom.group_gen_inv();
        // The uniform registers' values, once.
        let mut uniform = vec![Fr::zero(); self.registers];
        for (r, source) in self.sources.iter().enumerate() {
            if let Source::Scalar(x) = source {
                uniform[r] = *x;
            }
        }
        Self::run_ops(&self.uniform, &mut uniform);
        const CHUNK: usize = 1 << 10;
        let mut out = vec![Fr::zero(); n];
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(c, chunk)| {
                let mut regs = vec![Fr::zero(); self.registers * LANES];
                for r in (0..self.registers).filter(|r| self.is_uniform[*r]) {
                    regs[r * LANES..(r + 1) * LANES].fill(uniform[r]);
                }
                for (g, group) in chunk.chunks_mut(LANES).enumerate() {
                    let base = c * CHUNK + g * LANES;
                    let lanes = group.len();
                    for (r, source) in self.sources.iter().enumerate() {
                        let dst = &mut regs[r * LANES..r * LANES + lanes];
                        match *source {
                            Source::Column(col) => {
                                dst.copy_from_slice(&columns[col][base..base + lanes])
                            }
                            Source::Next(col) => {
                                for (l, v) in dst.iter_mut().enumerate() {
                                    *v = columns[col][(base + l + 1) % n];
                                }
                            }
                            Source::FirstLagrange => {
                                dst.copy_from_slice(&first[base..base + lanes])
                            }
                            Source::XMinusLast => {
                                for (l, v) in dst.iter_mut().enumerate() {
                                    *v = points[base + l] - last;
                                }
                            }
                            Source::Scalar(_) => {}
                        }
                    }
                    Self::run_ops_lanes(&self.code, &mut regs);
                    group.copy_from_slice(&regs[self.output * LANES..self.output * LANES + lanes]);
                }
            });
        Ok(out)
    }
}

/// Points evaluated together by `GateProgram::evaluate_on_coset` (a divisor of its chunk).
const LANES: usize = 16;

/// `F[j] = sum_m t_(j + mN) (shift^N)^m` on the coset `shift H` (PROTOCOL §6 step 4):
/// every column evaluated on the coset, the gate program pointwise, divided by
/// `Z_H = shift^N - 1`, an inverse FFT, and `shift^-j` on coefficient `j`.
pub fn quotient_on_coset(
    program: &GateProgram,
    coeffs: &[&[Fr]],
    shift: Fr,
    k: u32,
) -> Result<Vec<Fr>> {
    let dom = domain(k)?;
    let n = dom.size();
    let longest = coeffs.iter().map(|c| c.len()).max().unwrap_or(0).max(n);
    let shift_powers = powers(shift, longest);
    let on_coset: Vec<Vec<Fr>> = coeffs
        .iter()
        .map(|c| evaluate_on_coset(c, &shift_powers, k))
        .collect::<Result<_>>()?;
    let mut values = program.evaluate_on_coset(&on_coset, shift, k)?;
    drop(on_coset);
    let z_h = vanishing_on_coset(shift, n);
    let z_inv = z_h
        .inverse()
        .ok_or_else(|| Error::ZeroInverse("Z_H vanishes on the coset".to_owned()))?;
    crate::ntt::ifft_in_place_scaled(&mut values, k, z_inv)?;
    let shift_inv = shift
        .inverse()
        .ok_or_else(|| Error::ZeroInverse("the coset shift is zero".to_owned()))?;
    let unshift = powers(shift_inv, n);
    values
        .par_iter_mut()
        .zip(&unshift)
        .for_each(|(v, s)| *v *= s);
    Ok(values)
}

/// `t` from the folded quotients (`t[mN + j] = sum_c inverse[m][c] F_c[j]`, one coset per
/// chunk), whether it has any non-zero term above `bound`, and its chunks blinded by `rho`:
/// chunk `i` is `t[iN:(i+1)N] - rho_(i-1) + rho_i X^N`, the last one ending at `t[bound]`
/// (two cosets: `t_0 = t[0:N] + rho_0 X^N`, `t_1 = t[N:bound+1] - rho_0`).
pub fn quotient_unfold(
    folded: &[&[Fr]],
    inverse: &[Fr],
    n: usize,
    bound: usize,
    rho: &[Fr],
) -> Result<(bool, Vec<Vec<Fr>>)> {
    let size = folded.len();
    if size < 1 || inverse.len() != size * size || rho.len() != size - 1 {
        return Err(Error::Length(
            "quotient_unfold: c cosets, a c x c inverse and c - 1 rho".to_owned(),
        ));
    }
    if folded.iter().any(|f| f.len() != n) || bound < (size - 1) * n || bound >= size * n {
        return Err(Error::Length(format!(
            "quotient_unfold: folded quotients of {n} values, (c - 1) N <= bound < c N"
        )));
    }
    let t: Vec<Fr> = (0..size * n)
        .into_par_iter()
        .map(|idx| {
            let (m, j) = (idx / n, idx % n);
            (0..size)
                .map(|c| inverse[m * size + c] * folded[c][j])
                .sum()
        })
        .collect();
    let excess = t[bound + 1..].par_iter().any(|x| !x.is_zero());
    let mut chunks = Vec::with_capacity(size);
    for i in 0..size {
        let last = i + 1 == size;
        let end = if last { bound + 1 } else { (i + 1) * n };
        let mut chunk = t[i * n..end].to_vec();
        if i > 0 {
            chunk[0] -= rho[i - 1];
        }
        if !last {
            chunk.push(rho[i]);
        }
        chunks.push(chunk);
    }
    Ok((excess, chunks))
}

/// `t` from the folded quotient `F` of ONE coset and `t`'s coefficients above `N` (`top`,
/// taken from the top of `G` by the caller): `F[j] = t_j + node t_(N+j)` with `node = s^N`, so
/// `t_j = F[j] - node top[j]`, and the chunks `t_0 = t[0:N] + rho X^N`, `t_1 = top - rho`.
pub fn quotient_one_coset(folded: &[Fr], node: Fr, top: &[Fr], rho: Fr) -> Result<Vec<Vec<Fr>>> {
    let n = folded.len();
    if top.is_empty() || top.len() > n {
        return Err(Error::Length(format!(
            "quotient_one_coset: {} top coefficients for N = {n}",
            top.len()
        )));
    }
    let mut t0 = folded.to_vec();
    for (t, high) in t0.iter_mut().zip(top) {
        *t -= node * high;
    }
    t0.push(rho);
    let mut t1 = top.to_vec();
    t1[0] -= rho;
    Ok(vec![t0, t1])
}

// --------------------------------------------------------------------- Python side

/// `logup_round2(limbs, m, table, key, nonce, q, s, limb_bits, beta, gamma, delta,
/// a_over_n) -> (h_range list, h_table, h_agg, phi, closing word)`; columns are `FrVec`
/// on `H`, challenges scalar words.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn logup_round2<'py>(
    py: Python<'py>,
    limbs: Vec<Bound<'py, FrVec>>,
    m: &Bound<'py, FrVec>,
    table: &Bound<'py, FrVec>,
    key: &Bound<'py, FrVec>,
    nonce: &Bound<'py, FrVec>,
    q: &Bound<'py, FrVec>,
    s: &Bound<'py, FrVec>,
    limb_bits: u32,
    beta: &Bound<'py, PyAny>,
    gamma: &Bound<'py, PyAny>,
    delta: &Bound<'py, PyAny>,
    a_over_n: &Bound<'py, PyAny>,
) -> PyResult<(Vec<FrVec>, FrVec, FrVec, FrVec, Bound<'py, PyBytes>)> {
    if limb_bits == 0 || limb_bits > 32 {
        return Err(Error::Domain(format!("limb_bits {limb_bits} is not in 1..=32")).into());
    }
    let inputs = Round2Inputs {
        limbs: limbs.iter().map(|l| l.get().values.as_slice()).collect(),
        m: &m.get().values,
        table: &table.get().values,
        key: &key.get().values,
        nonce: &nonce.get().values,
        q: &q.get().values,
        s: &s.get().values,
        limb_bits,
        beta: scalar_arg(beta, "beta")?,
        gamma: scalar_arg(gamma, "gamma")?,
        delta: scalar_arg(delta, "delta")?,
        a_over_n: scalar_arg(a_over_n, "a_over_n")?,
    };
    let out = run(py, || logup_round2_checked(&inputs))?;
    let closing = crate::scalars::scalars_to_bytes(py, &[out.closing])?;
    Ok((
        out.h_range
            .into_iter()
            .map(|values| FrVec { values })
            .collect(),
        FrVec {
            values: out.h_table,
        },
        FrVec { values: out.h_agg },
        FrVec { values: out.phi },
        closing,
    ))
}

fn logup_round2_checked(inputs: &Round2Inputs<'_>) -> Result<Round2> {
    if inputs.key.is_empty() {
        return Err(Error::Length("round 2 needs at least one row".to_owned()));
    }
    compute_round2(inputs)
}

/// A gate program's three buffers as Python passed them (`sources`, `scalars`, `code`), read
/// while the GIL is held.
struct ProgramBuffers<'py> {
    sources: buffers::Input<'py>,
    scalars: buffers::Input<'py>,
    code: buffers::Input<'py>,
}

impl<'py> ProgramBuffers<'py> {
    fn read(
        sources: &Bound<'py, PyAny>,
        scalars: &Bound<'py, PyAny>,
        code: &Bound<'py, PyAny>,
    ) -> PyResult<Self> {
        Ok(Self {
            sources: buffers::read(sources, "sources")?,
            scalars: buffers::read(scalars, "scalars")?,
            code: buffers::read(code, "code")?,
        })
    }

    /// Their bytes, which may cross to the threads that run without the GIL.
    fn bytes(&self) -> ProgramBytes<'_> {
        ProgramBytes {
            sources: self.sources.as_slice(),
            scalars: self.scalars.as_slice(),
            code: self.code.as_slice(),
        }
    }
}

#[derive(Clone, Copy)]
struct ProgramBytes<'a> {
    sources: &'a [u8],
    scalars: &'a [u8],
    code: &'a [u8],
}

impl ProgramBytes<'_> {
    /// The program over `columns` input columns (`GateProgram::decode` checks every index).
    fn program(&self, registers: usize, output: usize, columns: usize) -> Result<GateProgram> {
        GateProgram::decode(
            &decode_u64s(self.sources, "sources")?,
            &decode_scalars(self.scalars, "scalars")?,
            &decode_u64s(self.code, "code")?,
            registers,
            output,
            columns,
        )
    }
}

/// `quotient_on_coset(coeffs, sources, scalars, code, registers, output, k, shift) -> FrVec`:
/// the folded quotient `F` on the coset `shift H` (see `quotient_on_coset` above). `sources`
/// is `8 (2 s)` bytes of `u64` pairs `(kind, index)`, `code` `8 (4 c)` bytes of `u64`
/// quadruples `(op, dst, a, b)`, `scalars` scalar words.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(name = "quotient_on_coset")]
pub fn py_quotient_on_coset<'py>(
    py: Python<'py>,
    coeffs: Vec<Bound<'py, FrVec>>,
    sources: &Bound<'py, PyAny>,
    scalars: &Bound<'py, PyAny>,
    code: &Bound<'py, PyAny>,
    registers: usize,
    output: usize,
    k: i64,
    shift: &Bound<'py, PyAny>,
) -> PyResult<FrVec> {
    let k = k_arg(k)?;
    let columns: Vec<&[Fr]> = coeffs.iter().map(|c| c.get().values.as_slice()).collect();
    let buffers = ProgramBuffers::read(sources, scalars, code)?;
    let program_bytes = buffers.bytes();
    let shift = scalar_arg(shift, "shift")?;
    let values = run(py, || {
        let program = program_bytes.program(registers, output, columns.len())?;
        quotient_on_coset(&program, &columns, shift, k)
    })?;
    Ok(FrVec { values })
}

/// `gates_on_coset(columns, sources, scalars, code, registers, output, k, shift) -> FrVec`:
/// the gate program alone, on columns already evaluated on the coset `shift H` (the drift
/// test compares it with the Python compilation of the same expression tree).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn gates_on_coset<'py>(
    py: Python<'py>,
    columns: Vec<Bound<'py, FrVec>>,
    sources: &Bound<'py, PyAny>,
    scalars: &Bound<'py, PyAny>,
    code: &Bound<'py, PyAny>,
    registers: usize,
    output: usize,
    k: i64,
    shift: &Bound<'py, PyAny>,
) -> PyResult<FrVec> {
    let k = k_arg(k)?;
    let cols: Vec<Vec<Fr>> = columns.iter().map(|c| c.get().values.clone()).collect();
    let buffers = ProgramBuffers::read(sources, scalars, code)?;
    let program_bytes = buffers.bytes();
    let shift = scalar_arg(shift, "shift")?;
    let values = run(py, || {
        let program = program_bytes.program(registers, output, cols.len())?;
        program.evaluate_on_coset(&cols, shift, k)
    })?;
    Ok(FrVec { values })
}

/// `quotient_one_coset(folded, node, top, rho) -> [t_0, t_1]` (see the function above;
/// `node`, `rho` one scalar word each, `top` scalar words).
#[pyfunction]
#[pyo3(name = "quotient_one_coset")]
pub fn py_quotient_one_coset<'py>(
    py: Python<'py>,
    folded: &Bound<'py, FrVec>,
    node: &Bound<'py, PyAny>,
    top: &Bound<'py, PyAny>,
    rho: &Bound<'py, PyAny>,
) -> PyResult<Vec<FrVec>> {
    let f = folded.get().values.as_slice();
    let (node, rho) = (scalar_arg(node, "node")?, scalar_arg(rho, "rho")?);
    let top_in = buffers::read(top, "top")?;
    let top_b = top_in.as_slice();
    let chunks = run(py, || {
        quotient_one_coset(f, node, &decode_scalars(top_b, "top")?, rho)
    })?;
    Ok(chunks.into_iter().map(|values| FrVec { values }).collect())
}

/// `quotient_unfold(folded, inverse, n, bound, rho) -> (excess, [t_0, t_1])`.
#[pyfunction]
#[pyo3(name = "quotient_unfold")]
pub fn py_quotient_unfold<'py>(
    py: Python<'py>,
    folded: Vec<Bound<'py, FrVec>>,
    inverse: &Bound<'py, PyAny>,
    n: usize,
    bound: usize,
    rho: &Bound<'py, PyAny>,
) -> PyResult<(bool, Vec<FrVec>)> {
    let f: Vec<&[Fr]> = folded.iter().map(|c| c.get().values.as_slice()).collect();
    let (inv_in, rho_in) = (
        buffers::read(inverse, "inverse")?,
        buffers::read(rho, "rho")?,
    );
    let (inv_b, rho_b) = (inv_in.as_slice(), rho_in.as_slice());
    let (excess, chunks) = run(py, || {
        quotient_unfold(
            &f,
            &decode_scalars(inv_b, "inverse")?,
            n,
            bound,
            &decode_scalars(rho_b, "rho")?,
        )
    })?;
    Ok((
        excess,
        chunks.into_iter().map(|values| FrVec { values }).collect(),
    ))
}

//! `zkmeter_native`: zkmeter's native arithmetic core, arkworks on BN254 bound to Python.
//!
//! An implementation detail of the `prover` and `verifier` packages (see `prover/native.py`,
//! the typed Python front): every function here binds an arkworks routine and adds only the
//! byte encodings and checks at the boundary.
//!
//! * `scalars`  – scalar buffers (32-byte little-endian canonical words), batch inversion
//! * `points`   – EIP-196 G1 / EIP-197 G2 encodings with curve and subgroup checks
//! * `msm`      – the `G1Bases` handle, MSM (full-width and small scalars), arkworks timing
//! * `pippenger` – our full-width MSM: signed digits, batch-affine buckets (see its note);
//!   bucket sums by the same buckets
//! * `ntt`      – NTT / inverse / coset NTT on the radix-2 domains of docs/PROTOCOL.md
//! * `fft`      – our radix-2 FFT under `ntt` (depth first, tabled twiddles; arkworks' is the oracle)
//! * `heap`     – freed memory kept for reuse while a proof runs (glibc's malloc settings)
//! * `g1fft`    – the Lagrange basis `[L_i(tau)]_1` by an inverse FFT over G1
//! * `kzg`      – polynomial evaluation, division by `X - z`, commitments and openings
//! * `pairing`  – the EIP-197 pairing-product check
//! * `structured` – `[limb_j]`, `[h_range_j]`, `[h_agg]` and `[phi]` by runs of keys and
//!   buckets of limbs, not full MSMs
//! * `setup`    – development powers of tau, Lagrange bases from a known tau, `.ptau` points
//! * `ptau`     – prepared snarkjs `.ptau` files from known development secrets
//! * `column`   – the `FrVec` handle: columns and polynomials kept native through the rounds
//! * `rounds`   – round 2 (logUp helpers, running sum), the gate program on cosets, the
//!   quotient's unfolding and split
//!
//! Heavy work runs with the GIL released, in a per-process rayon pool (`pool`). Errors are
//! Python exceptions (`ValueError` for bad input, `ZeroDivisionError` for inverting zero),
//! never panics.

pub mod buffers;
pub mod column;
pub mod error;
pub mod fft;
pub mod g1fft;
pub mod heap;
pub mod kzg;
pub mod msm;
pub mod ntt;
pub mod pairing;
pub mod pippenger;
pub mod points;
pub mod pool;
pub mod ptau;
pub mod rounds;
pub mod scalars;
pub mod setup;
pub mod structured;

use pyo3::prelude::*;

/// `num_threads() -> int`: the worker threads of this process's pool (`RAYON_NUM_THREADS`,
/// else the CPU count).
#[pyfunction]
fn num_threads() -> PyResult<usize> {
    Ok(pool::num_threads()?)
}

#[pymodule]
fn zkmeter_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("SCALAR_BYTES", scalars::SCALAR_BYTES)?;
    m.add("G1_BYTES", points::G1_BYTES)?;
    m.add("G2_BYTES", points::G2_BYTES)?;
    m.add("MAX_K", ntt::MAX_K)?;
    m.add("PIPPENGER_FROM", msm::PIPPENGER_FROM)?;
    m.add_class::<msm::G1Bases>()?;
    m.add_class::<column::FrVec>()?;
    m.add_function(wrap_pyfunction!(setup::g1_powers_of_tau, m)?)?;
    m.add_function(wrap_pyfunction!(structured::suffix_bases, m)?)?;
    m.add_function(wrap_pyfunction!(structured::commit_round2_structured, m)?)?;
    m.add_function(wrap_pyfunction!(structured::limb_buckets, m)?)?;
    m.add_function(wrap_pyfunction!(setup::g1_lagrange_from_tau, m)?)?;
    m.add_function(wrap_pyfunction!(setup::ptau_g1_points, m)?)?;
    m.add_function(wrap_pyfunction!(ptau::py_write_prepared_ptau, m)?)?;
    m.add_function(wrap_pyfunction!(column::fr_interpolate_blinded, m)?)?;
    m.add_function(wrap_pyfunction!(column::fr_msm, m)?)?;
    m.add_function(wrap_pyfunction!(column::fr_msm_column, m)?)?;
    m.add_function(wrap_pyfunction!(column::fr_evaluate_many, m)?)?;
    m.add_function(wrap_pyfunction!(column::fr_open, m)?)?;
    m.add_function(wrap_pyfunction!(rounds::logup_round2, m)?)?;
    m.add_function(wrap_pyfunction!(rounds::py_quotient_on_coset, m)?)?;
    m.add_function(wrap_pyfunction!(rounds::gates_on_coset, m)?)?;
    m.add_function(wrap_pyfunction!(rounds::py_quotient_unfold, m)?)?;
    m.add_function(wrap_pyfunction!(rounds::py_quotient_one_coset, m)?)?;
    m.add_function(wrap_pyfunction!(num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(heap::heap_reuse_enter, m)?)?;
    m.add_function(wrap_pyfunction!(heap::heap_reuse_exit, m)?)?;
    m.add_function(wrap_pyfunction!(scalars::batch_inverse, m)?)?;
    m.add_function(wrap_pyfunction!(scalars::scalars_check, m)?)?;
    m.add_function(wrap_pyfunction!(msm::g1_msm, m)?)?;
    m.add_function(wrap_pyfunction!(msm::g1_msm_u64, m)?)?;
    m.add_function(wrap_pyfunction!(msm::arkworks_msm_seconds, m)?)?;
    m.add_function(wrap_pyfunction!(msm::msm_seconds, m)?)?;
    m.add_function(wrap_pyfunction!(msm::g1_generator_multiples, m)?)?;
    m.add_function(wrap_pyfunction!(ntt::py_ntt, m)?)?;
    m.add_function(wrap_pyfunction!(ntt::py_intt, m)?)?;
    m.add_function(wrap_pyfunction!(ntt::py_coset_ntt, m)?)?;
    m.add_function(wrap_pyfunction!(ntt::py_coset_intt, m)?)?;
    m.add_function(wrap_pyfunction!(ntt::root_of_unity, m)?)?;
    m.add_function(wrap_pyfunction!(ntt::ntt_seconds, m)?)?;
    m.add_function(wrap_pyfunction!(g1fft::g1_lagrange_basis, m)?)?;
    m.add_function(wrap_pyfunction!(kzg::poly_evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(kzg::poly_divide_by_linear, m)?)?;
    m.add_function(wrap_pyfunction!(kzg::kzg_commit, m)?)?;
    m.add_function(wrap_pyfunction!(kzg::kzg_open, m)?)?;
    m.add_function(wrap_pyfunction!(pairing::pairing_product_is_one, m)?)?;
    m.add_function(wrap_pyfunction!(pairing::g2_check, m)?)?;
    Ok(())
}

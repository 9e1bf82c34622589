"""The native prover's rounds against the pure-Python reference, piece by piece: the gate
program generated from the expression tree (drift test: Python interpreter, native
interpreter and ``compile_gates`` agree), round 2's logUp helpers and running sum, the
quotient on a coset and its unfolding, column commitments by runs and small scalars, and the
native SRS set-up (powers of tau, Lagrange basis from tau)."""

from __future__ import annotations

import random
import warnings
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from circuits.constants import R
from circuits.expr import Col, Gate, Opcode, Scalar, compile_gates, compile_vector_program
from circuits.usage_batch import QUOTIENT_CHUNKS, Layout
from prover import native
from prover.native_prover import program_sources
from prover.quotient import coset_shifts, quotient_on_coset, unfold
from prover.srs import G1Points, InsecureSRSWarning, insecure_development_with_tau
from prover.timings import ProofTimings
from tests.support.proofs import build_witness, proving_key, random_rows, seeded
from verifier.backend import use_backend
from verifier.domain import Domain

pytestmark = pytest.mark.skipif(
    not native.available(), reason=f"zkmeter_native not built: {native.unavailable_reason()}"
)

K = 8


def _sources(
    layout: Layout, scalars: dict[str, int]
) -> tuple[list[str], list[tuple[int, int]], list[int]]:
    """The program's inputs as the native prover loads them."""
    program = layout.vector_program()
    return program_sources(program.parameters, program.constants, scalars)


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_vector_program_matches_the_compiled_gates(data: st.DataObject) -> None:
    """Drift test of the third back end: the register program evaluates sum_i alpha^i gate_i
    exactly as the Python compilation of the same tree, at random points."""
    layout = Layout(data.draw(st.sampled_from([8, 16])))
    compiled, program = layout.compiled(), layout.vector_program()
    assert set(program.parameters) == set(compiled.parameters)
    values = {name: data.draw(st.integers(0, R - 1)) for name in compiled.parameters}
    assert program.evaluate(values) == compiled.evaluate(values)


def test_vector_program_shares_subexpressions_and_negative_twin() -> None:
    x, y = Col("x"), Col("y")
    shared = x * y
    gates = [Gate("a", shared - 1), Gate("b", shared * Scalar("c") + (-y))]
    program = compile_vector_program(gates)
    assert sum(1 for op, *_ in program.code if op == Opcode.MUL) == 3  # x*y once
    values = {"x": 3, "y": 5, "c": 7, "alpha": 11}
    assert program.evaluate(values) == compile_gates(gates).evaluate(values)
    other = compile_vector_program([Gate("a", shared - 2), gates[1]])
    assert other.evaluate(values) != program.evaluate(values)
    with pytest.raises(KeyError):
        program.evaluate({"x": 1})


@settings(max_examples=4, deadline=None)
@given(st.integers(0, 2**32))
def test_native_gate_program_matches_python_on_a_coset(seed: int) -> None:
    """The native interpreter over whole coset columns equals CompiledGates point by point,
    L_0 and X - omega^(N-1) computed natively included."""
    layout = Layout(K)
    rng = random.Random(seed)
    scalars = {name: rng.randrange(R) for name in ("beta", "gamma", "delta", "alpha", "A_over_N")}
    names, sources, values = _sources(layout, scalars)
    n = layout.size
    columns = {name: [rng.randrange(R) for _ in range(n)] for name in names}
    program = layout.vector_program()
    shift = coset_shifts(K, 1)[0]
    out = native.column_ints(
        native.gates_on_coset(
            [native.column(columns[name]) for name in names],
            sources,
            values,
            program.code,
            program.registers,
            program.output,
            K,
            shift,
        )
    )
    domain = Domain(K)
    compiled = layout.compiled()
    # The first and last points (the rotation wraps), the edges of the native interpreter's
    # groups of 16 lanes, and a random sample.
    for i in [0, 15, 16, 17, n - 17, n - 16, n - 1, *rng.sample(range(n), 12)]:
        x = shift * pow(domain.omega, i, R) % R
        point = dict(scalars)
        for name in names:
            point[name] = columns[name][i]
            point[f"{name}_next"] = columns[name][(i + 1) % n]
        point["L0"] = (pow(x, n, R) - 1) * pow(n * (x - 1), -1, R) % R
        point["X_minus_last"] = (x - domain.omega_inv) % R
        assert out[i] == compiled.evaluate(point)


def _witness_columns(seed: int) -> tuple[Layout, dict[str, list[int]]]:
    witness = build_witness(random_rows(seeded(seed), channels=3, max_calls=30), K)
    return witness.layout, dict(witness.columns)


@settings(max_examples=4, deadline=None)
@given(st.integers(0, 2**32), st.integers(1 << 40, R - 1), st.integers(1 << 230, R - 1))
def test_native_round_2_matches_the_python_rounds(seed: int, beta: int, gamma: int) -> None:
    """h_range, h_table, h_agg and phi from logup_round2 equal the reference PythonRounds._round_2
    (same witness, same challenges), and the running sum closes on the honest A/N."""
    from circuits.public_inputs import PublicInputs
    from prover.prover import PythonRounds
    from tests.support.proofs import HEADER
    from verifier.usage_verifier import public_sum

    layout, columns = _witness_columns(seed)
    witness = build_witness(random_rows(seeded(seed), channels=3, max_calls=30), K)
    pk = proving_key(K)
    public = PublicInputs(HEADER, K, witness.aggregates)
    delta = (beta * 7 + 3) % R
    with use_backend("python"):
        reference = PythonRounds(pk, public, witness, 1, lambda: 1, None, ProofTimings())
        reference._round_2(beta, gamma, delta)
    A_over_N = public_sum(public, gamma, delta) * pow(layout.size, -1, R) % R

    def round2(a_over_n: int) -> Any:
        return native.logup_round2(
            [native.column(columns[name]) for name in layout.limb_columns],
            native.column(columns["m"]),
            native.column(pk.table_values),
            native.column(columns["key"]),
            native.column(columns["nonce"]),
            native.column(columns["q"]),
            native.column(columns["s"]),
            layout.limb_bits,
            (beta, gamma, delta),
            a_over_n,
        )

    h_range, h_table, h_agg, phi, closing = round2(A_over_N)
    assert closing == 0
    for name, ours in zip(layout.range_helper_columns, h_range, strict=True):
        assert native.column_ints(ours) == reference.values[name]
    assert native.column_ints(h_table) == reference.values["h_table"]
    assert native.column_ints(h_agg) == reference.values["h_agg"]
    assert native.column_ints(phi) == reference.values["phi"]
    # Negative twin: a wrong public sum does not close.
    *_, wrong = round2((A_over_N + 1) % R)
    assert wrong != 0


@settings(max_examples=3, deadline=None)
@given(st.integers(0, 2**32))
def test_native_quotient_matches_prover_quotient(seed: int) -> None:
    """quotient_on_coset (native) equals prover.quotient.quotient_on_coset (Python) on every
    coset for random column polynomials, and the unfolding and split equal unfold +
    split_quotient (the degree check as well: random columns break the gates)."""
    from prover.quotient import matrix_inverse, split_quotient

    layout = Layout(K)
    rng = random.Random(seed)
    n = layout.size
    scalars = {name: rng.randrange(R) for name in ("beta", "gamma", "delta", "alpha", "A_over_N")}
    degrees = {name: n - 1 + layout.blinding_coeffs(name) for name in layout.witness_columns}
    coeffs = {name: [rng.randrange(R) for _ in range(d + 1)] for name, d in degrees.items()}
    coeffs["T"] = [rng.randrange(R) for _ in range(n)]
    names, sources, values = _sources(layout, scalars)
    program = layout.vector_program()
    shifts = coset_shifts(K, QUOTIENT_CHUNKS)
    ours, theirs = [], []
    for shift in shifts:
        ours.append(
            native.quotient_on_coset(
                [native.column(coeffs[name]) for name in names],
                sources,
                values,
                program.code,
                program.registers,
                program.output,
                K,
                shift,
            )
        )
        with use_backend("python"):
            theirs.append(quotient_on_coset(layout, coeffs, scalars, shift, ProofTimings()))
        assert native.column_ints(ours[-1]) == [int(v) for v in theirs[-1]]
    nodes = [pow(s, n, R) for s in shifts]
    inverse = matrix_inverse([[pow(node, m, R) for m in range(len(nodes))] for node in nodes])
    rho = [rng.randrange(R) for _ in range(QUOTIENT_CHUNKS - 1)]
    bound = layout.quotient_degree_bound()
    excess, chunks = native.quotient_unfold(ours, inverse, n, bound, rho)
    t = unfold(theirs, nodes, n)
    assert excess == any(t[bound + 1 :])
    expected = split_quotient(t, n, bound, rho)
    assert [native.column_ints(c) for c in chunks] == [[int(v) for v in c] for c in expected]


def test_column_commitments_by_runs_and_small_scalars_equal_the_full_msm() -> None:
    """msm_column (runs of equal keys, 0/1 flags, limbs, nonces, a cheating R - 1) gives the
    same point as the full-width MSM and as the Python MSM."""
    from prover.msm import msm_python

    pk = proving_key(K)
    lagrange = native.bases_for(pk.lagrange_points)
    layout, columns = _witness_columns(5)
    columns["cheat"] = [R - 1 if i % 7 == 0 else i for i in range(layout.size)]
    columns["wide_runs"] = [(1 << 200) + i // 64 for i in range(layout.size)]
    for name, values in columns.items():
        handle = native.column(values)
        by_column = native.msm_column(lagrange, handle)
        assert by_column == native.msm_full(lagrange, handle), name
        if name in ("key", "q", "cheat"):
            assert by_column == msm_python(list(pk.lagrange_points), values), name


def test_native_srs_set_up_matches_python() -> None:
    """Development powers of tau and the Lagrange basis from tau: native bytes equal the
    pure-Python fixed-base multiplications."""
    from prover.srs import lagrange_basis_from_tau

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureSRSWarning)
        with use_backend("native"):
            fast, tau = insecure_development_with_tau(40, seed=99)
        with use_backend("python"):
            slow, _ = insecure_development_with_tau(40, seed=99)
    assert isinstance(fast.g1_powers, G1Points)
    assert fast.digest == slow.digest and list(fast.g1_powers) == slow.g1_powers
    with use_backend("native"):
        basis = lagrange_basis_from_tau(tau, 4)
    with use_backend("python"):
        reference = lagrange_basis_from_tau(tau, 4)
    assert list(basis) == list(reference)
    assert basis != lagrange_basis_from_tau(tau + 1, 4)  # negative twin


def test_limb_and_range_helper_commitments_by_buckets_equal_the_full_msms() -> None:
    """[limb_j] = sum_t t B_t and [h_range_j] = sum_t 1/(beta - t) B_t over the limb's bucket
    sums equal the full-width MSMs of the values; a limb of 256 (outside the table) has no
    buckets, so the prover commits such a column from its values."""
    from verifier.fr import batch_inverse

    pk = proving_key(K)
    lagrange = native.bases_for(pk.lagrange_points)
    layout, columns = _witness_columns(7)
    beta = (1 << 250) + 3
    inverses = native.column(batch_inverse([(beta - t) % R for t in range(256)]))
    for name in layout.limb_columns:
        limb = native.column(columns[name])
        buckets = native.limb_buckets(lagrange, limb, 256)
        assert buckets is not None
        assert native.msm_full(buckets, native.column(list(range(256)))) == native.msm_full(
            lagrange, limb
        )
        helper = native.column(batch_inverse([(beta - v) % R for v in columns[name]]))
        assert native.msm_full(buckets, inverses) == native.msm_full(lagrange, helper)
    cheating = list(columns["limb_3"])
    cheating[0] = 256
    assert native.limb_buckets(lagrange, native.column(cheating), 256) is None
    cheating[0] = R - 1
    assert native.limb_buckets(lagrange, native.column(cheating), 256) is None


@pytest.mark.parametrize("cheat", [False, True], ids=["honest", "limb_out_of_table"])
def test_round2_commitments_by_structure_equal_the_full_msms(cheat: bool) -> None:
    """[h_agg] by runs of keys and [phi] by buckets of limbs over the suffix bases are the
    full-width MSMs of the values; a limb outside the table makes [phi] fall back to the
    values (and the points still agree)."""
    from verifier.usage_verifier import public_sum

    k = 10  # N = 4 * 2^8: [phi] by buckets pays from here (PHI_MIN_ROWS_PER_BUCKET)
    pk = proving_key(k)
    witness = build_witness(random_rows(seeded(11), channels=4, max_calls=50), k)
    layout = witness.layout
    columns = dict(witness.columns)
    if cheat:
        columns["limb_1"] = [
            v + (1 << layout.limb_bits) if i == 2 else v for i, v in enumerate(columns["limb_1"])
        ]
    round1 = {name: native.column(columns[name]) for name in layout.round1_columns}
    beta, gamma, delta = (1 << 240) + 5, (1 << 241) + 7, 12345
    from circuits.public_inputs import PublicInputs
    from tests.support.proofs import HEADER

    A_over_N = (
        public_sum(PublicInputs(HEADER, k, witness.aggregates), gamma, delta)
        * pow(layout.size, -1, R)
        % R
    )
    _h_range, h_table, h_agg, phi, _closing = native.logup_round2(
        [round1[name] for name in layout.limb_columns],
        round1["m"],
        native.column(pk.table_values),
        round1["key"],
        round1["nonce"],
        round1["q"],
        round1["s"],
        layout.limb_bits,
        (beta, gamma, delta),
        A_over_N,
    )
    lagrange = native.bases_for(pk.lagrange_points)
    agg, running, how = native.round2_commitments(
        lagrange,
        native.suffix_bases(lagrange),
        round1,
        layout.limb_columns,
        layout.limb_bits,
        {"h_table": h_table, "h_agg": h_agg, "phi": phi},
        (beta, gamma, delta),
        A_over_N,
    )
    assert how == ("h_agg: runs, phi: values" if cheat else "h_agg: runs, phi: runs")
    assert agg == native.msm_full(lagrange, h_agg)
    assert running == native.msm_full(lagrange, phi)
    assert running != native.msm_full(lagrange, h_agg)  # negative twin

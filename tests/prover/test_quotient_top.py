"""The top of the quotient (``prover.quotient.top_coefficients``): with degree-2 gates,
t's coefficients above N are the top coefficients of G = t (X^N - 1), which depend only on
the columns' coefficients N - 2 .. N + 2; the native prover takes them instead of a second
coset (PROTOCOL §6 step 4)."""

from __future__ import annotations

import random

import pytest

from circuits.constants import R
from circuits.public_inputs import PublicInputs
from prover.prover import PythonRounds
from prover.quotient import coset_shifts, quotient_on_coset, top_coefficients, top_window, unfold
from prover.timings import ProofTimings
from tests.support.proofs import HEADER, build_witness, proving_key, random_rows, seeded
from verifier.backend import use_backend


def _rounds_through_2(seed: int) -> tuple[PythonRounds, dict[str, int]]:
    witness = build_witness(random_rows(seeded(seed), channels=3, max_calls=30), 8)
    public = PublicInputs(HEADER, 8, witness.aggregates)
    rng = random.Random(seed)
    rounds = PythonRounds(
        proving_key(8), public, witness, 1, lambda: rng.randrange(R), None, ProofTimings()
    )
    rounds._commit_columns(witness.layout.round1_columns)
    beta, gamma, delta = (rng.randrange(R) for _ in range(3))
    rounds._round_2(beta, gamma, delta)
    rounds._commit_columns(witness.layout.round2_columns)
    scalars = dict(beta=beta, gamma=gamma, delta=delta, alpha=rng.randrange(R))
    scalars["A_over_N"] = rounds.A_over_N
    return rounds, scalars


def _t_from_two_cosets(rounds: PythonRounds, scalars: dict[str, int]) -> list[int]:
    layout = rounds.layout
    shifts = coset_shifts(layout.k, 2)
    folded = [quotient_on_coset(layout, rounds.coeffs, scalars, s, ProofTimings()) for s in shifts]
    t = unfold(folded, [pow(s, layout.size, R) for s in shifts], layout.size)
    return [int(v) for v in t]


def _windows(rounds: PythonRounds) -> dict[str, list[int]]:
    lo, hi = top_window(rounds.layout)
    return {
        name: [int(c[i]) if i < len(c) else 0 for i in range(lo, hi + 1)]
        for name, c in rounds.coeffs.items()
    }


@pytest.mark.parametrize("seed", [1, 2])
def test_top_of_the_gates_is_the_top_of_t(seed: int) -> None:
    with use_backend("python"):
        rounds, scalars = _rounds_through_2(seed)
        t = _t_from_two_cosets(rounds, scalars)
    n = rounds.layout.size
    assert top_window(rounds.layout) == (n - 2, n + 2)
    assert rounds.layout.quotient_degree_bound() == n + 4 and not any(t[n + 5 :])
    assert top_coefficients(rounds.layout, _windows(rounds), scalars) == t[n : n + 5]
    # Negative twin: another alpha gives another top.
    other = dict(scalars, alpha=(scalars["alpha"] + 1) % R)
    assert top_coefficients(rounds.layout, _windows(rounds), other) != t[n : n + 5]

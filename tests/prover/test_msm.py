"""prover.msm: Pippenger (in-process and forked) and py_ecc multiply-and-add, both checked
against an independent oracle: the bases have known discrete logs a_i (P_i = a_i G), so
sum_i s_i P_i = (sum_i s_i a_i mod R) G, one py_ecc multiplication."""

import random
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py_ecc.optimized_bn128.optimized_curve import G1, add, multiply, normalize

import prover.msm as msm_module
from prover.msm import (
    MSMInputError,
    best_window,
    msm,
    msm_many,
    msm_reference,
    prepare_bases,
    signed_digits,
    windows_for,
)
from verifier.constants import P, R
from verifier.curve import G1Affine, g1_to_affine

POOL_SIZE = 300
_rng = random.Random(1)
_A0 = _rng.randrange(1, R)
_DELTA = _rng.randrange(1, R)


def _pool() -> tuple[list[G1Affine], list[int]]:
    """Points P_i = (a0 + i delta) G, i < POOL_SIZE, by successive py_ecc additions."""
    logs = [(_A0 + i * _DELTA) % R for i in range(POOL_SIZE)]
    step = multiply(G1, _DELTA)
    cur = multiply(G1, _A0)
    pts = []
    for _ in range(POOL_SIZE):
        x, y = normalize(cur)
        pts.append((int(x), int(y)))
        cur = add(cur, step)
    return pts, logs


POINTS, LOGS = _pool()


def expected_msm(logs: Sequence[int], scalars: Sequence[int]) -> G1Affine:
    """(sum_i s_i a_i mod R) G with py_ecc: the oracle."""
    k = sum(s * a for s, a in zip(scalars, logs, strict=True)) % R
    return g1_to_affine(multiply(G1, k))


def _fast_1(points: Sequence[G1Affine], scalars: Sequence[int]) -> G1Affine:
    return msm(points, scalars, processes=1)


def _fast_2(points: Sequence[G1Affine], scalars: Sequence[int]) -> G1Affine:
    return msm(points, scalars, processes=2)


def _many_2(points: Sequence[G1Affine], scalars: Sequence[int]) -> G1Affine:
    # Two vectors: the real one and its negation, spread over two forked workers.
    neg = [(-s) % R for s in scalars]
    first, second = msm_many(points, [scalars, neg], processes=2)
    assert first[0] == second[0] and (first == (0, 0) or first[1] != second[1])
    return first


IMPLS: dict[str, Callable[[Sequence[G1Affine], Sequence[int]], G1Affine]] = {
    "py_ecc": msm_reference,
    "pippenger": _fast_1,
    "pippenger-2proc": _fast_2,
    "msm_many-2proc": _many_2,
}


@pytest.fixture(autouse=True)
def _always_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make processes=2 really fork even at these small sizes."""
    monkeypatch.setattr(msm_module, "PARALLEL_MIN_COST_US", 0.0)


def _scalars(kind: str, n: int, rng: random.Random) -> list[int]:
    if kind == "random":
        return [rng.randrange(R) for _ in range(n)]
    if kind == "zero":
        return [0] * n
    if kind == "r_minus_1":
        return [R - 1] * n
    if kind == "bits01":
        return [rng.randrange(2) for _ in range(n)]
    if kind == "bits16":
        return [rng.getrandbits(16) for _ in range(n)]
    if kind == "bits32":
        return [rng.getrandbits(32) for _ in range(n)]
    raise ValueError(kind)


KINDS = ["random", "zero", "r_minus_1", "bits01", "bits16", "bits32"]


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 300])
def test_msm_matches_oracle(impl: str, kind: str, n: int) -> None:
    if impl == "py_ecc" and n == 300 and kind in ("random", "r_minus_1", "bits32"):
        pytest.skip("py_ecc multiply-and-add at n=300 with wide scalars: covered at n <= 64")
    rng = random.Random(n * 1000 + KINDS.index(kind))
    scalars = _scalars(kind, n, rng)
    got = IMPLS[impl](POINTS[:n], scalars)
    assert got == expected_msm(LOGS[:n], scalars)


@pytest.mark.parametrize("impl", list(IMPLS))
def test_msm_tampered_scalar_differs(impl: str) -> None:
    """Negative twin: changing one scalar changes the result."""
    rng = random.Random(5)
    scalars = _scalars("random", 7, rng)
    good = expected_msm(LOGS[:7], scalars)
    scalars[3] = (scalars[3] + 1) % R
    assert IMPLS[impl](POINTS[:7], scalars) != good


@pytest.mark.parametrize("impl", list(IMPLS))
def test_msm_duplicate_points(impl: str) -> None:
    idx = [5, 5, 5, 9, 5, 9, 9]
    rng = random.Random(11)
    scalars = [rng.randrange(R) for _ in idx]
    points = [POINTS[i] for i in idx]
    assert IMPLS[impl](points, scalars) == expected_msm([LOGS[i] for i in idx], scalars)
    # equal small scalars on duplicates exercise bucket doubling
    small = [3, 3, 3, 1, 1, 3, 1]
    assert IMPLS[impl](points, small) == expected_msm([LOGS[i] for i in idx], small)


@pytest.mark.parametrize("impl", list(IMPLS))
def test_msm_points_and_negatives(impl: str) -> None:
    """P and -P with equal scalars cancel (bucket sum hits P + (-P) = O)."""
    p = POINTS[17]
    minus = (p[0], P - p[1])
    for scalars in ([5, 5], [1, 1], [R - 1, R - 1], [2**20 + 3, 2**20 + 3]):
        assert IMPLS[impl]([p, minus], scalars) == (0, 0)
    logs = [LOGS[17], (-LOGS[17]) % R, LOGS[18]]
    pts = [p, minus, POINTS[18]]
    for scalars in ([5, 5, 7], [1, 1, 1], [9, 4, 2]):
        assert IMPLS[impl](pts, scalars) == expected_msm(logs, scalars)


def test_msm_skips_infinity_bases_and_reduces_scalars() -> None:
    pts = [POINTS[0], (0, 0), POINTS[1]]
    scalars = [R + 3, 12345, -2]
    got = msm(pts, scalars)
    assert got == expected_msm([LOGS[0], 0, LOGS[1]], [3, 0, R - 2])
    assert msm(pts, scalars, processes=2) == got
    assert msm([(0, 0)], [5]) == (0, 0)
    assert msm([], []) == (0, 0)


def test_msm_length_mismatch() -> None:
    with pytest.raises(MSMInputError, match="index 2"):
        msm(POINTS[:3], [1, 2])
    with pytest.raises(ValueError, match="index 2"):
        msm(POINTS[:2], [1, 2, 3])
    with pytest.raises(MSMInputError, match="vector 1"):
        msm_many(POINTS[:2], [[1, 2], [1]])
    with pytest.raises(MSMInputError):
        msm_reference(POINTS[:2], [1])
    with pytest.raises(ValueError, match="processes"):
        msm(POINTS[:2], [1, 2], processes=0)


def _fail_on_odd(k: int) -> int:
    if k % 2:
        raise ArithmeticError(f"share {k} refused")
    return k


def test_fork_map_runs_shares_and_reports_child_failure() -> None:
    assert msm_module.fork_map(lambda k: k * k, [1, 2, 3]) == [1, 4, 9]
    assert msm_module.fork_map(_fail_on_odd, [0, 2]) == [0, 2]
    with pytest.raises(RuntimeError, match="share 1 refused"):
        msm_module.fork_map(_fail_on_odd, [0, 1])


def test_processes_1_and_2_agree_on_prepared_bases() -> None:
    rng = random.Random(3)
    bases = prepare_bases(POINTS)
    for kind in ("random", "bits16", "bits01"):
        scalars = _scalars(kind, POOL_SIZE, rng)
        one = msm(bases, scalars, processes=1)
        assert msm(bases, scalars, processes=2) == one
        assert msm(POINTS, scalars, processes=3) == one


def test_msm_many_matches_single_calls() -> None:
    rng = random.Random(4)
    vectors = [_scalars(k, 64, rng) for k in ("random", "bits01", "bits32", "zero", "random")]
    singles = [msm(POINTS[:64], v) for v in vectors]
    assert msm_many(POINTS[:64], vectors, processes=2) == singles
    assert msm_many(POINTS[:64], vectors, processes=1) == singles
    assert msm_many(POINTS[:64], vectors[:1], processes=2) == singles[:1]
    assert msm_many(POINTS[:64], [], processes=2) == []


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=POOL_SIZE - 1),
            st.one_of(
                st.integers(min_value=0, max_value=R - 1),
                st.integers(min_value=0, max_value=2**16),
                st.sampled_from([0, 1, R - 1]),
            ),
        ),
        max_size=20,
    )
)
def test_msm_property(terms: list[tuple[int, int]]) -> None:
    points = [POINTS[i] for i, _ in terms]
    scalars = [s for _, s in terms]
    assert msm(points, scalars) == expected_msm([LOGS[i] for i, _ in terms], scalars)


# ----------------------------------------------------------------- window machinery


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=R - 1), min_size=1, max_size=8),
    st.integers(min_value=1, max_value=20),
)
def test_signed_digits_reconstruct_scalars(scalars: list[int], c: int) -> None:
    matrix, reduced = msm_module._scalar_bytes(scalars)
    bits = max(reduced).bit_length()
    w = windows_for(bits, c)
    digits = signed_digits(matrix, c, w)
    half = 1 << (c - 1)
    assert digits.max(initial=0) <= half and digits.min(initial=0) > -half
    for col, s in enumerate(reduced):
        assert sum(int(digits[k, col]) << (k * c) for k in range(w)) == s


def test_signed_digits_too_few_windows() -> None:
    matrix, _ = msm_module._scalar_bytes([R - 1])
    with pytest.raises(ValueError, match="too few"):
        signed_digits(matrix, 8, 10)
    with pytest.raises(ValueError, match="window of 0 bits"):
        signed_digits(matrix, 0, 10)


def test_window_choice_depends_on_bit_length() -> None:
    n = 1 << 16
    c_full, c_32, c_16 = best_window(n, 254), best_window(n, 32), best_window(n, 16)
    assert 10 <= c_full <= 16
    assert windows_for(32, c_32) <= 3
    assert windows_for(16, c_16) <= 2
    assert windows_for(254, c_full) >= 5 * windows_for(32, c_32)
    # larger n -> wider windows
    assert best_window(1 << 10, 254) < best_window(1 << 16, 254)
    assert np.all(np.diff([best_window(1 << k, 254) for k in range(4, 17)]) >= 0)


@pytest.mark.parametrize("distinct", [1, 3, 16])
def test_few_distinct_wide_scalars_are_grouped_correctly(distinct: int) -> None:
    """A column of channel keys: n points, a handful of 224-bit values, each repeated."""
    rng = random.Random(distinct)
    n = 256
    logs = [rng.randrange(1, R) for _ in range(n)]
    points = [g1_to_affine(multiply(G1, a)) for a in logs]
    values = [rng.getrandbits(224) for _ in range(distinct)]
    scalars = [values[i * distinct // n] for i in range(n)]
    expected = g1_to_affine(
        multiply(G1, sum(s * a for s, a in zip(scalars, logs, strict=True)) % R)
    )
    bases = msm_module.prepare_bases(points)
    grouped = msm_module._grouped_by_scalar(bases.xs, bases.ys, scalars, list(range(n)))
    assert grouped is not None and len(grouped[1]) == distinct  # the grouping path is taken
    assert msm(points, scalars) == expected
    assert msm(points, [*scalars[:-1], scalars[-1] + 1]) != expected

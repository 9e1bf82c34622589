"""zkmeter_native MSM against the pure-Python Pippenger (prover.msm.msm_python) and an
independent oracle: bases with known discrete logs a_i (P_i = a_i G), so
sum_i s_i P_i = (sum_i s_i a_i mod R) G, one py_ecc multiplication."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import random
import threading
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py_ecc.optimized_bn128.optimized_curve import G1, add, multiply, normalize

from prover import native
from prover.msm import MSMInputError, msm, msm_many, msm_python, prepare_bases
from verifier.backend import use_backend
from verifier.constants import P, R
from verifier.curve import G1Affine, g1_to_affine

pytestmark = pytest.mark.skipif(
    not native.available(), reason=f"zkmeter_native not built: {native.unavailable_reason()}"
)

POOL_SIZE = 64
_rng = random.Random(20)
_A0, _DELTA = _rng.randrange(1, R), _rng.randrange(1, R)


def _pool() -> tuple[list[G1Affine], list[int]]:
    """P_i = (a0 + i delta) G by successive py_ecc additions, and the point at infinity
    (log 0) as the last element."""
    step, cur = multiply(G1, _DELTA), multiply(G1, _A0)
    points, logs = [], []
    for i in range(POOL_SIZE - 1):
        x, y = normalize(cur)
        points.append((int(x), int(y)))
        logs.append((_A0 + i * _DELTA) % R)
        cur = add(cur, step)
    return [*points, (0, 0)], [*logs, 0]


POINTS, LOGS = _pool()
HANDLE = native.g1_bases(POINTS)


def expected(logs: Sequence[int], scalars: Sequence[int]) -> G1Affine:
    return g1_to_affine(multiply(G1, sum(s * a for s, a in zip(scalars, logs, strict=True)) % R))


scalar = st.one_of(st.integers(0, R - 1), st.sampled_from([0, 1, 2, R - 1, R - 2]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, POOL_SIZE - 1), scalar), min_size=0, max_size=40))
def test_msm_matches_python_and_oracle(terms: list[tuple[int, int]]) -> None:
    """Random bases from the pool (repeats and infinity included) and scalars (0, 1, R-1
    included): native == pure-Python Pippenger == discrete-log oracle."""
    idx = [i for i, _ in terms]
    scalars = [s for _, s in terms]
    points = [POINTS[i] for i in idx]
    want = expected([LOGS[i] for i in idx], scalars)
    got = native.msm(native.g1_bases(points), native.scalars_to_buffer(scalars))
    assert got == want
    assert msm_python(points, scalars) == want


@pytest.mark.parametrize("bits", [1, 8, 16, 32, 64])
def test_msm_small_matches_python(bits: int) -> None:
    rng = random.Random(bits)
    values = np.array([rng.getrandbits(bits) for _ in range(POOL_SIZE)], dtype=np.uint64)
    values[3] = 0
    want = expected(LOGS, values.tolist())
    assert native.msm_small(HANDLE, values) == want
    assert msm_python(POINTS, values.tolist()) == want
    # the same column through the full-width path
    assert native.msm(HANDLE, native.small_values_to_buffer(values)) == want


# ---------------------------------------------------- our Pippenger against arkworks' MSM

_big_rng = random.Random(21)
GEN_LOGS = [_big_rng.randrange(1, R) for _ in range(64)]
GEN_POINTS = native.g1_from_buffer(native.generator_multiples(native.scalars_to_buffer(GEN_LOGS)))
HALF = (R - 1) // 2


def _edge_scalar(rng: random.Random) -> int:
    """0, 1, 2, R-1, R-2, (R-1)/2, (R+1)/2, small, R - small, a power of two."""
    return rng.choice(
        [
            0,
            1,
            2,
            R - 1,
            R - 2,
            HALF,
            HALF + 1,
            rng.getrandbits(16),
            R - rng.getrandbits(16) - 1,
            1 << rng.randrange(254),
        ]
    )


@settings(max_examples=12, deadline=None)
@given(
    n=st.integers(native.PIPPENGER_FROM, native.PIPPENGER_FROM + 2000),
    seed=st.integers(0, 2**32 - 1),
    pool=st.sampled_from([1, 2, 64]),
    edge=st.sampled_from([0.0, 0.1, 1.0]),
)
def test_pippenger_matches_arkworks_and_oracle(n: int, seed: int, pool: int, edge: float) -> None:
    """Through the binding, at sizes where ours runs: bases from a pool of 1, 2 or 64 points
    with known logs (repeats), negated (P and -P) or infinity; scalars uniform or edge
    cases. ``algorithm="pippenger"`` == ``"arkworks"`` == the discrete-log oracle."""
    rng = random.Random(seed)
    points: list[G1Affine] = []
    logs: list[int] = []
    for _ in range(n):
        roll = rng.randrange(16)
        i = rng.randrange(pool)
        if roll == 0:
            points.append((0, 0))
            logs.append(0)
        elif roll < 3:
            x, y = GEN_POINTS[i]
            points.append((x, (P - y) % P))
            logs.append(R - GEN_LOGS[i])
        else:
            points.append(GEN_POINTS[i])
            logs.append(GEN_LOGS[i])
    scalars = [_edge_scalar(rng) if rng.random() < edge else rng.randrange(R) for _ in range(n)]
    bases = native.g1_bases(points)
    buffer = native.scalars_to_buffer(scalars)
    ours = native.msm(bases, buffer, algorithm="pippenger")
    assert ours == native.msm(bases, buffer, algorithm="arkworks")
    assert ours == expected(logs, scalars)


def test_pippenger_default_env_switch_and_bad_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ours is the default; ``ZKMETER_MSM=arkworks`` selects arkworks' for the process (read
    at every call); an unknown name is a ``ValueError``, never a silent fallback."""
    import zkmeter_native

    assert native.PIPPENGER_FROM == zkmeter_native.PIPPENGER_FROM
    n = native.PIPPENGER_FROM
    rng = random.Random(22)
    idx = [rng.randrange(64) for _ in range(n)]
    scalars = [rng.randrange(R) for _ in range(n)]
    bases = native.g1_bases([GEN_POINTS[i] for i in idx])
    buffer = native.scalars_to_buffer(scalars)
    want = expected([GEN_LOGS[i] for i in idx], scalars)
    monkeypatch.delenv("ZKMETER_MSM", raising=False)
    assert native.msm(bases, buffer) == want
    monkeypatch.setenv("ZKMETER_MSM", "arkworks")
    assert native.msm(bases, buffer) == want
    monkeypatch.setenv("ZKMETER_MSM", "fastest")
    with pytest.raises(ValueError, match=r"ZKMETER_MSM.*unknown MSM algorithm"):
        native.msm(bases, buffer)
    monkeypatch.delenv("ZKMETER_MSM")
    with pytest.raises(ValueError, match="unknown MSM algorithm"):
        native.msm(bases, buffer, algorithm="fastest")
    # Negative twin: one scalar changed, another point.
    scalars[7] = (scalars[7] + 1) % R
    assert native.msm(bases, native.scalars_to_buffer(scalars), algorithm="pippenger") != want


def test_msm_seconds_times_both_algorithms() -> None:
    buffer = native.scalars_to_buffer(list(range(1, POOL_SIZE + 1)))
    for algorithm in native.MSM_ALGORITHMS:
        seconds = native.msm_seconds(HANDLE, buffer, algorithm, 2)
        assert len(seconds) == 2 and all(s > 0 for s in seconds)
    with pytest.raises(ValueError, match="unknown MSM algorithm"):
        native.msm_seconds(HANDLE, buffer, "fastest", 1)


def test_msm_small_zero_column_and_negative_values() -> None:
    assert native.msm_small(HANDLE, np.zeros(POOL_SIZE, dtype=np.int64)) == (0, 0)
    with pytest.raises(ValueError, match="non-negative"):
        native.msm_small(HANDLE, np.array([1, -1]))


def test_msm_uses_a_prefix_of_the_bases_and_refuses_too_many_scalars() -> None:
    scalars = [5, 7, R - 1]
    assert native.msm(HANDLE, native.scalars_to_buffer(scalars)) == expected(LOGS[:3], scalars)
    assert native.msm(HANDLE, b"") == (0, 0)
    too_many = native.scalars_to_buffer([1] * (POOL_SIZE + 1))
    with pytest.raises(ValueError, match=f"{POOL_SIZE + 1} scalars for {POOL_SIZE} bases"):
        native.msm(HANDLE, too_many)
    with pytest.raises(ValueError, match="not below"):
        native.msm(HANDLE, R.to_bytes(32, "little"))


def test_tampered_scalar_changes_the_result() -> None:
    """Negative twin of the oracle test."""
    scalars = [random.Random(3).randrange(R) for _ in range(POOL_SIZE)]
    good = native.msm(HANDLE, native.scalars_to_buffer(scalars))
    scalars[10] = (scalars[10] + 1) % R
    assert native.msm(HANDLE, native.scalars_to_buffer(scalars)) != good


# --------------------------------------------------------------------------- G1 handles


def test_handle_round_trip_and_slice() -> None:
    raw = native.g1_to_buffer(POINTS)
    assert HANDLE.to_affine_bytes() == raw
    assert len(HANDLE) == POOL_SIZE
    assert native.g1_from_buffer(HANDLE.slice(2, 5).to_affine_bytes()) == POINTS[2:5]
    assert len(HANDLE.slice(60, 1000)) == POOL_SIZE - 60
    assert native.g1_bases(raw).to_affine_bytes() == raw
    assert native.g1_bases(HANDLE) is HANDLE


def test_handle_refuses_bad_points_by_index() -> None:
    good = native.g1_to_buffer(POINTS[:3])
    off_curve = native.g1_to_buffer([(1, 3)])
    with pytest.raises(ValueError, match=r"bases\[3\].*not on the curve"):
        native.g1_bases(good + off_curve)
    too_big = P.to_bytes(32, "big") + (2).to_bytes(32, "big")
    with pytest.raises(ValueError, match=r"bases\[0\].*not below the base-field modulus"):
        native.g1_bases(too_big)
    with pytest.raises(ValueError, match="whole number of 64-byte G1 points"):
        native.g1_bases(good[:-1])
    # (0, y) is not infinity: only (0, 0) is
    with pytest.raises(ValueError, match="not on the curve"):
        native.g1_bases(bytes(63) + b"\x01")


def test_prepared_bases_are_converted_once() -> None:
    prepared = prepare_bases(POINTS)
    first = native.bases_for(prepared)
    assert native.bases_for(prepared) is first
    assert first.to_affine_bytes() == HANDLE.to_affine_bytes()


# ------------------------------------------------------------------- dispatch in prover.msm


@pytest.mark.parametrize("as_prepared", [False, True])
def test_prover_msm_dispatches_to_native_with_the_same_result(as_prepared: bool) -> None:
    rng = random.Random(11)
    scalars = [rng.randrange(R) for _ in range(POOL_SIZE)]
    scalars[0], scalars[1] = -5, R + 3  # prover.msm reduces mod R on both paths
    points = prepare_bases(POINTS) if as_prepared else POINTS
    with use_backend("native"):
        on_native = msm(points, scalars)
        many_native = msm_many(points, [scalars, [1] * POOL_SIZE], processes=2)
        with pytest.raises(MSMInputError):
            msm(points, scalars[:-1])
    with use_backend("python"):
        on_python = msm(points, scalars)
        many_python = msm_many(points, [scalars, [1] * POOL_SIZE], processes=1)
    assert on_native == on_python == expected(LOGS, [s % R for s in scalars])
    assert many_native == many_python


def _child_msm(conn: multiprocessing.connection.Connection) -> None:
    conn.send(native.msm(HANDLE, native.scalars_to_buffer(list(range(POOL_SIZE)))))
    conn.close()


def test_native_calls_work_in_a_forked_child_after_the_parent_used_them() -> None:
    """The prover forks workers after the proving key used the native pool: the child must
    build its own pool instead of waiting forever on the parent's (absent) threads."""
    want = native.msm(HANDLE, native.scalars_to_buffer(list(range(POOL_SIZE))))
    ctx = multiprocessing.get_context("fork")
    recv_end, send_end = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child_msm, args=(send_end,), daemon=True)
    child.start()
    send_end.close()
    try:
        assert recv_end.poll(60), "the forked child did not answer within 60 s (deadlock?)"
        assert recv_end.recv() == want
    finally:
        child.join(timeout=5)
        if child.is_alive():
            child.terminate()
    assert child.exitcode == 0


def test_concurrent_calls_from_python_threads() -> None:
    """Calls release the GIL and share the pool: results stay exact under concurrency."""
    rng = random.Random(12)
    jobs = [[rng.randrange(R) for _ in range(POOL_SIZE)] for _ in range(6)]
    results: list[G1Affine | None] = [None] * len(jobs)

    def run(k: int) -> None:
        results[k] = native.msm(HANDLE, native.scalars_to_buffer(jobs[k]))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [expected(LOGS, job) for job in jobs]


# ------------------------------------------------------------------- timing and generators


def test_arkworks_timing_runs_the_requested_repeats() -> None:
    seconds = native.arkworks_msm_seconds(HANDLE, native.scalars_to_buffer([7] * POOL_SIZE), 4)
    assert len(seconds) == 4 and all(s > 0 for s in seconds)
    with pytest.raises(ValueError, match="repeats"):
        native.arkworks_msm_seconds(HANDLE, b"", 0)


def test_generator_multiples_match_py_ecc() -> None:
    scalars = [0, 1, 2, R - 1, random.Random(4).randrange(R)]
    points = native.g1_from_buffer(native.generator_multiples(native.scalars_to_buffer(scalars)))
    assert points == [g1_to_affine(multiply(G1, s)) for s in scalars]
